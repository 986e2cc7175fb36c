/*
 * registry.c: which driver serves a profile output, and which SQL dialect
 * the engine should speak to it. The engine calls connector_resolve() and
 * then only talks to the vtable it got; this is the one place that knows
 * driver names. It does not open connections or read other settings.
 */
#include <ctype.h>
#include <string.h>
#include "connector.h"
#include "odbc.h"
#include "postgres.h"

/* Every driver built into sluice: adding one is adding its line here. */
static const struct sluice_connector *const drivers[] = {
	&pg_connector,
	&odbc_connector,
};

#define N_DRIVERS (sizeof(drivers) / sizeof(drivers[0]))

/*
 * Connection types. `native` is the driver used without a `driver:` key;
 * `with_driver` the one used when `driver:` names an ODBC driver, NULL
 * when the key means nothing for the type. Drivers are named, not pointed
 * to, so a type can list a driver this build does not have yet.
 */
static const struct conn_type {
	const char *type;
	const char *dialect;      /* default; settings `dialect:` overrides */
	const char *native;
	const char *with_driver;
} types[] = {
	{ "postgres", "postgres", "postgres", NULL },
	{ "redshift", "redshift", "postgres", "odbc" },
	{ "odbc", "postgres", "odbc", "odbc" },
};

#define N_TYPES (sizeof(types) / sizeof(types[0]))

static const struct sluice_connector *find_driver(const char *name)
{
	size_t i;

	for (i = 0; i < N_DRIVERS; i++)
		if (!strcmp(drivers[i]->name, name))
			return drivers[i];
	return NULL;
}

static int unknown_type(const char *type, struct sluice_err *err)
{
	struct buf known = BUF_INIT;
	size_t i;
	int rc;

	for (i = 0; i < N_TYPES; i++)
		buf_printf(&known, "%s%s", i ? ", " : "", types[i].type);
	if (type)
		rc = err_set(err, SLUICE_EUSAGE, "unknown connection type '%s' (known: %s)", type,
			     known.s);
	else
		rc = err_set(err, SLUICE_EUSAGE, "connection settings have no type: (known: %s)", known.s);
	buf_release(&known);
	return rc;
}

int connector_resolve(const struct val *settings, const struct sluice_connector **drv,
		      const char **dialect, struct sluice_err *err)
{
	const char *type = val_get_str(settings, "type", NULL);
	const struct conn_type *t = NULL;
	const char *want;
	char label[32];
	size_t i;
	int via_driver;

	*drv = NULL;
	*dialect = NULL;
	for (i = 0; type && i < N_TYPES; i++)
		if (!strcmp(types[i].type, type))
			t = &types[i];
	if (!t)
		return unknown_type(type, err);
	via_driver = t->with_driver && val_get(settings, "driver");
	want = via_driver ? t->with_driver : t->native;
	*drv = find_driver(want);
	if (!*drv) {
		for (i = 0; want[i] && i + 1 < sizeof(label); i++)
			label[i] = (char)toupper((unsigned char)want[i]);
		label[i] = '\0';
		return err_set(err, SLUICE_ENOTSUP, "type %s%s needs the %s connector, not built yet",
			       type, via_driver && strcmp(want, t->native) ? " with driver:" : "", label);
	}
	*dialect = val_get_str(settings, "dialect", t->dialect);
	return 0;
}

void connectors_shutdown(void)
{
	size_t i;

	for (i = 0; i < N_DRIVERS; i++)
		if (drivers[i]->shutdown)
			drivers[i]->shutdown();
}
