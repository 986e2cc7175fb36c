/*
 * registry.c: which driver serves a profile output, and which SQL dialect
 * the engine should speak to it; which object store serves a URL. The
 * engine calls connector_resolve() or objstore_open() and then only talks
 * to the vtable it got; this is the one place that knows driver names and
 * URL schemes. It does not read settings beyond choosing, and the small
 * wrappers here (conn_close, objstore_close) only forward to the vtable.
 */
#include <ctype.h>
#include <string.h>
#include "connector.h"
#include "objstore.h"
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
static int check_redshift(const struct val *settings, int via_driver, struct sluice_err *err);

static const struct conn_type {
	const char *type;
	const char *dialect;      /* default; settings `dialect:` overrides */
	const char *native;
	const char *with_driver;
	const char *default_port; /* when settings have host: but no port: */
	/* Settings that cannot work together, before any connection is tried. */
	int (*check)(const struct val *settings, int via_driver, struct sluice_err *err);
} types[] = {
	{ "postgres", "postgres", "postgres", NULL, NULL, NULL },
	{ "redshift", "redshift", "postgres", "odbc", "5439", check_redshift },
	{ "odbc", "postgres", "odbc", "odbc", NULL, NULL },
};

#define N_TYPES (sizeof(types) / sizeof(types[0]))

static const struct conn_type *find_type(const struct val *settings)
{
	const char *type = val_get_str(settings, "type", NULL);
	size_t i;

	for (i = 0; type && i < N_TYPES; i++)
		if (!strcmp(types[i].type, type))
			return &types[i];
	return NULL;
}

const char *connector_default_port(const struct val *settings)
{
	const struct conn_type *t = find_type(settings);

	return t ? t->default_port : NULL;
}

static int present(const struct val *v)
{
	return v && v->kind != V_NONE;
}

/*
 * type: redshift authenticates with password: (or a libpq password file)
 * or with iam: {cluster_id, region, db_user}, which only Amazon's ODBC
 * driver can turn into temporary credentials. Messages name keys, never
 * their values.
 */
static int check_redshift(const struct val *s, int via_driver, struct sluice_err *err)
{
	static const char *const iam_keys[] = { "cluster_id", "region", "db_user", "profile" };
	const struct val *iam = val_get(s, "iam"), *role = val_get(s, "iam_role");
	size_t i, k;

	if (present(role) && (role->kind != V_STR || strncmp(role->u.str.s, "arn:", 4)))
		return err_set(err, SLUICE_EUSAGE,
			       "type redshift: iam_role must be the ARN of an IAM role (arn:aws:iam::<account>:role/<name>), "
			       "which UNLOAD and COPY run as");
	if (!present(iam))
		return 0;
	if (iam->kind != V_DICT)
		return err_set(err, SLUICE_EUSAGE, "type redshift: iam must be a map: {cluster_id, region, db_user}");
	if (present(val_get(s, "password")) || present(val_get(s, "pass")))
		return err_set(err, SLUICE_EUSAGE, "type redshift: set password or iam, not both");
	if (!via_driver)
		return err_set(err, SLUICE_EUSAGE,
			       "type redshift: iam authentication needs the Amazon Redshift ODBC driver (driver:); "
			       "through libpq sluice cannot get temporary credentials (that takes AWS "
			       "GetClusterCredentials), so use password: there");
	for (i = 0; i < iam->u.dict.n; i++) {
		for (k = 0; k < sizeof(iam_keys) / sizeof(iam_keys[0]); k++)
			if (!strcmp(iam->u.dict.keys[i], iam_keys[k]))
				break;
		if (k == sizeof(iam_keys) / sizeof(iam_keys[0]))
			return err_set(err, SLUICE_EUSAGE,
				       "type redshift: unknown key iam.%s (known: cluster_id, region, db_user, profile)",
				       iam->u.dict.keys[i]);
	}
	if (!val_get_str(iam, "cluster_id", NULL) || !val_get_str(iam, "region", NULL))
		return err_set(err, SLUICE_EUSAGE, "type redshift: iam needs cluster_id and region");
	if (!val_get_str(iam, "db_user", NULL) && !val_get_str(s, "user", NULL))
		return err_set(err, SLUICE_EUSAGE, "type redshift: iam needs db_user (or user:), the database user to log in as");
	return 0;
}

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
	const struct conn_type *t = find_type(settings);
	const char *want;
	char label[32];
	size_t i;
	int via_driver, rc;

	*drv = NULL;
	*dialect = NULL;
	if (!t)
		return unknown_type(type, err);
	via_driver = t->with_driver && val_get(settings, "driver");
	if (t->check && (rc = t->check(settings, via_driver, err)))
		return rc;
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

void conn_close(struct sluice_conn *c)
{
	if (c)
		c->drv->close(c);
}

int objstore_open(const char *url, const struct val *settings, struct objstore **out,
		  struct sluice_err *err)
{
	*out = NULL;
	if (strncmp(url, "s3://", 5) == 0)
		return s3_store_open(url, settings, out, err);
	if (strncmp(url, "file://", 7) == 0)
		return file_store_open(url, out, err);
	return err_set(err, SLUICE_EUSAGE, "%s: unknown storage URL scheme (want s3:// or file://)", url);
}

void objstore_close(struct objstore *s)
{
	if (s)
		s->ops->close(s);
}

void connectors_shutdown(void)
{
	size_t i;

	for (i = 0; i < N_DRIVERS; i++)
		if (drivers[i]->shutdown)
			drivers[i]->shutdown();
}
