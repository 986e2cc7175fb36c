/*
 * odbc.c: the unixODBC driver behind struct sluice_connector, for
 * PostgreSQL through psqlODBC and for Redshift through a vendor driver
 * (`type: redshift` with `driver:`). It builds a connection string from
 * profile settings, runs statements, streams rows in bounded memory and
 * maps ODBC diagnostics onto sluice_err. ODBC has no COPY: copy_out and
 * copy_in are NULL, and load_csv inserts CSV rows instead. Apart from
 * those INSERTs (plain SQL, the relation named by the caller) it writes
 * no SQL of its own: engine/dialect-*.c owns SQL.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sql.h>
#include <sqlext.h>
#include "odbc.h"
#include "../engine/util/xalloc.h"

#define DEFAULT_CONNECT_TIMEOUT 10
#define DEFAULT_FETCH_ROWS 1000
#define DIAG_TEXT 2048
/* Text form of the fixed-size types (numbers, dates, uuid) fits here. */
#define FIXED_CAP 128
/* Bound room for a value of the other types; longer ones are re-read. */
#define TEXT_CAP 256
/* Rows a fetch brings at most, and the bytes their bound buffers take. */
#define BLOCK_ROWS 500
#define BLOCK_BYTES (1024 * 1024)
/* First SQLGetData buffer of a long column; grows to the longest value. */
#define LONG_CAP 4096
/* A buffer grown past this by one huge value is given back after the query. */
#define KEEP_CAP (1024 * 1024)

struct odbc_col {
	char *name;
	const char *type;        /* static, or type_owned */
	char *type_owned;
	int bound;               /* SQLBindCol'ed; else read with SQLGetData */
	enum { FIX_NONE, FIX_BOOL, FIX_LOWER, FIX_HEX } fix;
	/* Bound: one slot of slot bytes, and a length, per row of a block. */
	char *slots;
	size_t slot, slots_cap;
	SQLLEN *inds;
	size_t inds_cap;
	/* A value read with SQLGetData (or copied to be fixed), growing. */
	char *buf;
	size_t cap;
};

struct odbc_conn {
	struct sluice_conn base;
	SQLHENV env;
	SQLHDBC dbc;
	char *name;
	char *connstr;           /* holds the password: child_env only, never messages */
	char *password;          /* scrubbed from every message */
	int getdata_any;         /* SQLGetData may read any column in any order */
	int getdata_bound;       /* ... and bound ones (so every column is bound) */
	int getdata_block;       /* ... and in a block of rows (so fetch blocks) */
	int param_counts_apart;  /* a row count per parameter set (SQL_PARC_BATCH) */

	/* The statement exec/query is running, for cancel() from other threads:
	 * set and cleared under lock, and freed only after it is cleared. */
	pthread_mutex_t lock;
	SQLHSTMT running;
	atomic_int cancel_requested;

	/* Scaffolding of the current result set, reused row after row. */
	struct odbc_col *cols;
	const char **names, **typev, **values;
	size_t *lens;
	size_t ncols, cap_cols;
	size_t block;            /* rows a fetch brings (SQL_ATTR_ROW_ARRAY_SIZE) */
	SQLULEN fetched;
	SQLUSMALLINT *row_status;
	size_t row_status_cap;
};

/* ---- connection strings ---- */

void odbc_cs_add(struct buf *cs, const char *key, const char *value)
{
	size_t n = strlen(value);
	const char *p;

	if (cs->len && cs->s[cs->len - 1] != ';')
		buf_addc(cs, ';');
	buf_printf(cs, "%s=", key);
	if (!value[strcspn(value, ";{}=")] && !(n && (value[0] == ' ' || value[n - 1] == ' '))) {
		buf_puts(cs, value);
		return;
	}
	buf_addc(cs, '{');
	for (p = value; *p; p++) {
		if (*p == '}')
			buf_addc(cs, '}');
		buf_addc(cs, *p);
	}
	buf_addc(cs, '}');
}

/*
 * Find key (case-insensitive) in a connection string; with out, append
 * its value, braces removed and "}}" undoubled. Returns 1 when found.
 */
static int cs_get(const char *cs, const char *key, struct buf *out)
{
	const char *p = cs, *k, *ke;
	int hit;

	while (*p) {
		while (*p == ' ' || *p == ';')
			p++;
		if (!*p)
			break;
		k = p;
		while (*p && *p != '=' && *p != ';')
			p++;
		ke = p;
		while (ke > k && ke[-1] == ' ')
			ke--;
		hit = (size_t)(ke - k) == strlen(key) && !strncasecmp(k, key, (size_t)(ke - k));
		if (*p != '=')
			continue;
		p++;
		if (*p == '{') {
			for (p++; *p; p++) {
				if (*p == '}' && p[1] == '}') {
					if (hit && out)
						buf_addc(out, '}');
					p++;
				} else if (*p == '}') {
					p++;
					break;
				} else if (hit && out) {
					buf_addc(out, *p);
				}
			}
			while (*p && *p != ';')
				p++;
		} else {
			const char *v = p;
			while (*p && *p != ';')
				p++;
			if (hit && out)
				buf_add(out, v, (size_t)(p - v));
		}
		if (hit)
			return 1;
	}
	return 0;
}

/* Profile keys that become connection-string keys (first spelling wins). */
static const struct cs_key {
	const char *setting, *alias, *key;
} cs_keys[] = {
	{ "driver", NULL, "Driver" },
	{ "host", "server", "Server" },
	{ "port", NULL, "Port" },
	{ "database", "dbname", "Database" },
	{ "user", "uid", "UID" },
	{ "password", "pwd", "PWD" },
	{ "sslmode", NULL, "SSLmode" },
};

/*
 * psqlODBC defaults we want unless the connection string says otherwise:
 * its CommLog and Debug logs (switched on per driver in some odbcinst.ini)
 * would write every statement, and the connection string, to /tmp;
 * without UseDeclareFetch it reads a whole result into memory before the
 * first row; and by default ("Protocol=7.4-2") it puts a SAVEPOINT of its
 * own in front of every statement inside a transaction, so the server
 * sees "SAVEPOINT _EXEC_SVP_...;" before the audit comment that should
 * come first, and a failed statement leaves the
 * transaction usable where PostgreSQL would abort it. "-1" rolls the
 * transaction back on error instead: the engine's own BEGIN ... ROLLBACK
 * (its ROLLBACK then only draws a warning), or the one psqlODBC opened for
 * a cursor, which "-0" would leave aborted. Other drivers ignore keys
 * they do not know.
 */
static const char *const cs_defaults[][2] = {
	{ "CommLog", "0" },
	{ "Debug", "0" },
	{ "UseDeclareFetch", "1" },
	{ "Protocol", "7.4-1" },
};

/*
 * psqlODBC hands "pqopt" to libpq as a conninfo string: the session shows
 * up as application_name in pg_stat_activity, as it does over libpq.
 */
static void add_application_name(struct buf *cs, const char *app)
{
	struct buf opt = BUF_INIT;
	const char *p;

	buf_puts(&opt, "application_name='");
	for (p = app; *p; p++) {
		if (*p == '\'' || *p == '\\')
			buf_addc(&opt, '\\');
		buf_addc(&opt, *p);
	}
	buf_addc(&opt, '\'');
	odbc_cs_add(cs, "pqopt", opt.s);
	buf_release(&opt);
}

int odbc_iam_keys(const char *name, const struct val *settings, struct buf *cs, struct sluice_err *err)
{
	static const char *const keys[][2] = {
		{ "cluster_id", "ClusterID" }, { "region", "Region" }, { "db_user", "DbUser" }, { "profile", "Profile" },
	};
	const struct val *iam = val_get(settings, "iam");
	const char *v;
	size_t i;

	if (!iam || iam->kind != V_DICT)
		return 0;
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (cs_get(cs->s, keys[i][1], NULL))
			return err_set(err, SLUICE_EUSAGE,
				       "connection '%s' (odbc): %s is set both in connection_string and as iam.%s:",
				       name, keys[i][1], keys[i][0]);
	odbc_cs_add(cs, "IAM", "1");
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		v = val_get_str(iam, keys[i][0], NULL);
		/* The database user defaults to user:, as the profile spells it. */
		if (!v && !strcmp(keys[i][0], "db_user"))
			v = val_get_str(settings, "user", NULL);
		if (v)
			odbc_cs_add(cs, keys[i][1], v);
	}
	return 0;
}

static int build_connstr(const char *name, const struct sluice_conn_params *p, struct buf *cs,
			 char **password, struct sluice_err *err)
{
	const struct val *s = p->settings;
	const char *dsn = val_get_str(s, "dsn", NULL);
	const char *given = val_get_str(s, "connection_string", NULL);
	struct buf pwd = BUF_INIT;
	char tmp[32], fetch[32];
	int iam = val_get(s, "iam") != NULL, rc;
	size_t i;

	*password = NULL;
	if (dsn && given)
		return err_set(err, SLUICE_EUSAGE,
			       "connection '%s' (odbc): set dsn or connection_string, not both", name);
	if (!dsn && !given && !val_get(s, "driver"))
		return err_set(err, SLUICE_EUSAGE,
			       "connection '%s' (odbc): needs dsn, connection_string or driver", name);
	if (given)
		buf_puts(cs, given);
	if (dsn)
		odbc_cs_add(cs, "DSN", dsn);
	for (i = 0; i < sizeof(cs_keys) / sizeof(cs_keys[0]); i++) {
		const struct cs_key *k = &cs_keys[i];
		const char *v;

		/* With IAM the driver logs in as iam.db_user, with credentials it fetches. */
		if (iam && !strcmp(k->setting, "user"))
			continue;
		if (k->alias && !val_get(s, k->setting) && val_get(s, k->alias))
			v = val_get_str(s, k->alias, NULL);
		else if (!strcmp(k->setting, "port"))
			v = val_get_text(s, "port", tmp, sizeof(tmp));
		else
			v = val_get_str(s, k->setting, NULL);
		/* A DSN or connection string names its own port. */
		if (!v && !strcmp(k->setting, "port") && !dsn && !cs_get(cs->s, k->key, NULL))
			v = connector_default_port(s);
		if (!v)
			continue;
		/* Which of two copies a driver honours differs between drivers. */
		if (cs_get(cs->s, k->key, NULL))
			return err_set(err, SLUICE_EUSAGE,
				       "connection '%s' (odbc): %s is set both in connection_string and as %s:",
				       name, k->key, k->setting);
		odbc_cs_add(cs, k->key, v);
	}
	if ((rc = odbc_iam_keys(name, s, cs, err)))
		return rc;
	for (i = 0; i < sizeof(cs_defaults) / sizeof(cs_defaults[0]); i++)
		if (!cs_get(cs->s, cs_defaults[i][0], NULL))
			odbc_cs_add(cs, cs_defaults[i][0], cs_defaults[i][1]);
	if (!cs_get(cs->s, "Fetch", NULL)) {
		snprintf(fetch, sizeof(fetch), "%lld",
			 val_get_int(s, "fetch_rows", DEFAULT_FETCH_ROWS));
		odbc_cs_add(cs, "Fetch", fetch);
	}
	if (p->application_name && !cs_get(cs->s, "pqopt", NULL))
		add_application_name(cs, p->application_name);
	if (cs_get(cs->s, "PWD", &pwd) || cs_get(cs->s, "Password", &pwd))
		*password = pwd.len ? buf_detach(&pwd, NULL) : NULL;
	buf_release(&pwd);
	return 0;
}

/* ---- messages (folding and scrubbing live in util/buf.c) ---- */

/* Append n bytes of s, white space folded. */
static void add_folded_n(struct buf *msg, const char *s, size_t n)
{
	struct buf tmp = BUF_INIT;

	buf_add(&tmp, s, n);
	buf_add_folded(msg, tmp.s);
	buf_release(&tmp);
}

/*
 * psqlODBC hands a server error on as "ERROR: primary\nDETAIL: d;\n<what
 * the driver was doing>" (it drops the HINT). Give it the shape the libpq
 * connector gives, "primary (DETAIL: d)", so that a model's error reads
 * the same through either. Returns 0 (and appends nothing) for any other
 * text, other drivers' included.
 */
static int add_server_text(struct buf *msg, const char *t)
{
	static const char *const severities[] = { "ERROR:", "FATAL:", "PANIC:" };
	const char *p = NULL, *end = t + strlen(t), *last = strrchr(t, '\n'), *nl;
	size_t i, n;
	int open = 0;

	for (i = 0; !p && i < sizeof(severities) / sizeof(severities[0]); i++)
		if (!strncmp(t, severities[i], strlen(severities[i])))
			p = t + strlen(severities[i]);
	if (!p)
		return 0;
	while (*p == ' ')
		p++;
	if (last && last > p && last[-1] == ';')
		end = last - 1;
	for (i = 0; p < end; i++, p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			nl = end;
		n = (size_t)(nl - p);
		if (!i) {
			add_folded_n(msg, p, n);
		} else if ((n > 7 && !strncmp(p, "DETAIL:", 7)) || (n > 5 && !strncmp(p, "HINT:", 5))) {
			buf_puts(msg, open ? ") (" : " (");
			add_folded_n(msg, p, n);
			open = 1;
		} else {
			/* The next line of a message that has several. */
			buf_addc(msg, ' ');
			add_folded_n(msg, p, n);
		}
	}
	if (open)
		buf_addc(msg, ')');
	return 1;
}

/*
 * Every diagnostic record of h, joined with "; ", without the
 * "[unixODBC][Driver Manager]" style tags. state gets the first state that
 * is not a warning (01xxx), else the first.
 */
static void diag(SQLSMALLINT type, SQLHANDLE h, struct buf *msg, char state[6])
{
	SQLCHAR st[6], text[DIAG_TEXT];
	SQLINTEGER native;
	SQLSMALLINT len, i;
	const char *t;

	state[0] = '\0';
	for (i = 1; h; i++) {
		if (!SQL_SUCCEEDED(SQLGetDiagRec(type, h, i, st, &native, text, sizeof(text), &len)))
			break;
		if (!state[0] || (!strncmp(state, "01", 2) && strncmp((char *)st, "01", 2)))
			snprintf(state, 6, "%s", (char *)st);
		for (t = (const char *)text; *t == '['; ) {
			const char *e = strchr(t, ']');
			if (!e)
				break;
			t = e + 1;
		}
		if (!*t)
			continue;
		if (msg->len)
			buf_puts(msg, "; ");
		if (!add_server_text(msg, t))
			buf_add_folded(msg, t);
	}
}

/* Drivers the driver manager knows (odbcinst.ini), for "not found" errors. */
static void list_drivers(SQLHENV env, struct buf *msg)
{
	SQLCHAR desc[256], attrs[1024];
	SQLSMALLINT dlen, alen;
	SQLUSMALLINT dir = SQL_FETCH_FIRST;
	size_t n = 0;

	buf_puts(msg, " (installed ODBC drivers: ");
	while (SQL_SUCCEEDED(SQLDrivers(env, dir, desc, sizeof(desc), &dlen, attrs, sizeof(attrs),
					&alen))) {
		buf_printf(msg, "%s%s", n++ ? ", " : "", (char *)desc);
		dir = SQL_FETCH_NEXT;
	}
	if (!n)
		buf_puts(msg, "none registered in odbcinst.ini");
	buf_puts(msg, "; psqlODBC comes in the Debian package odbc-postgresql)");
}

static int conn_error(const char *name, SQLHENV env, SQLHDBC dbc, const char *connstr,
		      const char *password, struct sluice_err *err)
{
	struct buf msg = BUF_INIT, dsn = BUF_INIT;
	char state[6];
	int rc;

	diag(SQL_HANDLE_DBC, dbc, &msg, state);
	/* IM002: no such DSN or driver name; IM003 or "Can't open lib": a
	 * driver registered or named by a path that is not there. The driver
	 * manager's "Data source name not found" does not say which. */
	if (!strcmp(state, "IM002") && cs_get(connstr, "DSN", &dsn)) {
		struct buf tmp = BUF_INIT;

		buf_printf(&tmp, "data source '%s': %s", dsn.s, msg.s);
		buf_release(&msg);
		msg = tmp;
	}
	if (!strcmp(state, "IM002") || !strcmp(state, "IM003") || strstr(msg.s, "Can't open lib"))
		list_drivers(env, &msg);
	buf_release(&dsn);
	buf_scrub(&msg, password);
	rc = err_set(err, SLUICE_ECONN, "connection '%s' (odbc): %s", name,
		     msg.len ? msg.s : "could not connect");
	snprintf(err->sqlstate, sizeof(err->sqlstate), "%s", state);
	buf_release(&msg);
	return rc;
}

/* A server that ends the session (pg_terminate_backend: 57P01, admin
 * shutdown) reports an ordinary-looking SQLSTATE; the handle knows better. */
static int conn_dead(struct odbc_conn *oc)
{
	SQLUINTEGER dead = SQL_CD_FALSE;

	return SQL_SUCCEEDED(SQLGetConnectAttr(oc->dbc, SQL_ATTR_CONNECTION_DEAD, &dead, 0, NULL)) &&
	       dead == SQL_CD_TRUE;
}

/* A failed statement call to SLUICE_EDB, _ECANCEL or _ECONN, with SQLSTATE. */
static int stmt_error(struct odbc_conn *oc, SQLHSTMT st, struct sluice_err *err)
{
	struct buf msg = BUF_INIT;
	char state[6];
	int code = SLUICE_EDB;

	diag(SQL_HANDLE_STMT, st, &msg, state);
	if (!msg.len)
		diag(SQL_HANDLE_DBC, oc->dbc, &msg, state);
	buf_scrub(&msg, oc->password);
	/* HY008 is ODBC's "cancelled"; 57014 is the server's, which
	 * statement_timeout raises too: ours only if we asked. */
	if (!strcmp(state, "HY008") ||
	    (!strcmp(state, "57014") && atomic_load(&oc->cancel_requested)))
		code = SLUICE_ECANCEL;
	else if (!strncmp(state, "08", 2) || conn_dead(oc))
		code = SLUICE_ECONN;
	if (code == SLUICE_ECONN)
		err_set(err, code, "connection '%s' (odbc) lost: %s", oc->name,
			msg.len ? msg.s : "unknown error");
	else
		err_set(err, code, "%s", msg.len ? msg.s : "unknown error");
	snprintf(err->sqlstate, sizeof(err->sqlstate), "%s", state);
	buf_release(&msg);
	return code;
}

/* ---- connect / close ---- */

static void free_handles(SQLHENV env, SQLHDBC dbc, int connected)
{
	if (connected)
		SQLDisconnect(dbc);
	if (dbc)
		SQLFreeHandle(SQL_HANDLE_DBC, dbc);
	if (env)
		SQLFreeHandle(SQL_HANDLE_ENV, env);
}

/*
 * psqlODBC switches the process's locale (setlocale) while it connects,
 * to learn the client encoding, and setlocale is not thread-safe: worker
 * threads that connect at once race on it (ThreadSanitizer shows it). So
 * connects take turns; everything after them runs in parallel.
 */
static pthread_mutex_t connect_lock = PTHREAD_MUTEX_INITIALIZER;

static int odbc_connect(const struct sluice_conn_params *p, struct sluice_conn **out,
			struct sluice_err *err)
{
	const char *name = p->name ? p->name : "default";
	struct buf cs = BUF_INIT;
	char *password = NULL;
	SQLHENV env = SQL_NULL_HENV;
	SQLHDBC dbc = SQL_NULL_HDBC;
	SQLUINTEGER gd = 0, parc = 0;
	struct odbc_conn *oc;
	SQLRETURN r;
	int rc;

	*out = NULL;
	if ((rc = build_connstr(name, p, &cs, &password, err)))
		goto fail;
	/* Per-connection environments: no state shared between threads. */
	if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_ENV, SQL_NULL_HANDLE, &env)) ||
	    !SQL_SUCCEEDED(SQLSetEnvAttr(env, SQL_ATTR_ODBC_VERSION, (SQLPOINTER)SQL_OV_ODBC3, 0)) ||
	    !SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_DBC, env, &dbc))) {
		rc = err_set(err, SLUICE_ECONN,
			     "connection '%s' (odbc): cannot allocate ODBC handles (is unixODBC installed?)",
			     name);
		goto fail;
	}
	SQLSetConnectAttr(dbc, SQL_ATTR_LOGIN_TIMEOUT,
			  (SQLPOINTER)(SQLULEN)val_get_int(p->settings, "connect_timeout",
							   DEFAULT_CONNECT_TIMEOUT), 0);
	pthread_mutex_lock(&connect_lock);
	r = SQLDriverConnect(dbc, NULL, (SQLCHAR *)cs.s, SQL_NTS, NULL, 0, NULL,
			     SQL_DRIVER_NOPROMPT);
	pthread_mutex_unlock(&connect_lock);
	if (!SQL_SUCCEEDED(r)) {
		rc = conn_error(name, env, dbc, cs.s, password, err);
		goto fail;
	}
	/* The engine sends BEGIN/COMMIT itself. */
	SQLSetConnectAttr(dbc, SQL_ATTR_AUTOCOMMIT, (SQLPOINTER)SQL_AUTOCOMMIT_ON, 0);
	SQLGetInfo(dbc, SQL_GETDATA_EXTENSIONS, &gd, sizeof(gd), NULL);
	SQLGetInfo(dbc, SQL_PARAM_ARRAY_ROW_COUNTS, &parc, sizeof(parc), NULL);

	oc = xcalloc(1, sizeof(*oc));
	oc->base.drv = &odbc_connector;
	oc->name = xstrdup(name);
	oc->base.name = oc->name;
	oc->env = env;
	oc->dbc = dbc;
	oc->connstr = buf_detach(&cs, NULL);
	oc->password = password;
	oc->getdata_any = (gd & SQL_GD_ANY_COLUMN) && (gd & SQL_GD_ANY_ORDER);
	oc->getdata_bound = oc->getdata_any && (gd & SQL_GD_BOUND);
	oc->getdata_block = oc->getdata_bound && (gd & SQL_GD_BLOCK);
	oc->param_counts_apart = parc == SQL_PARC_BATCH;
	pthread_mutex_init(&oc->lock, NULL);
	atomic_init(&oc->cancel_requested, 0);
	*out = &oc->base;
	return 0;
fail:
	free_handles(env, dbc, 0);
	buf_release(&cs);
	free(password);
	return rc;
}

static void free_columns(struct odbc_conn *oc)
{
	size_t i;

	for (i = 0; i < oc->ncols; i++) {
		free(oc->cols[i].name);
		free(oc->cols[i].type_owned);
		oc->cols[i].name = NULL;
		oc->cols[i].type_owned = NULL;
	}
	oc->ncols = 0;
}

static void odbc_close(struct sluice_conn *c)
{
	struct odbc_conn *oc = (struct odbc_conn *)c;
	size_t i;

	if (!oc)
		return;
	free_handles(oc->env, oc->dbc, 1);
	free_columns(oc);
	for (i = 0; i < oc->cap_cols; i++) {
		free(oc->cols[i].buf);
		free(oc->cols[i].slots);
		free(oc->cols[i].inds);
	}
	free(oc->cols);
	free(oc->row_status);
	free(oc->names);
	free(oc->typev);
	free(oc->values);
	free(oc->lens);
	pthread_mutex_destroy(&oc->lock);
	if (oc->connstr)
		memset(oc->connstr, 0, strlen(oc->connstr));
	free(oc->connstr);
	free(oc->password);
	free(oc->name);
	free(oc);
}

/* ---- statements ---- */

static int stmt_begin(struct odbc_conn *oc, SQLHSTMT *st, struct sluice_err *err)
{
	if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, oc->dbc, st))) {
		struct buf msg = BUF_INIT;
		char state[6];
		int rc;

		diag(SQL_HANDLE_DBC, oc->dbc, &msg, state);
		rc = err_set(err, SLUICE_ECONN, "connection '%s' (odbc) lost: %s", oc->name,
			     msg.len ? msg.s : "cannot allocate a statement handle");
		snprintf(err->sqlstate, sizeof(err->sqlstate), "%s", state);
		buf_release(&msg);
		return rc;
	}
	pthread_mutex_lock(&oc->lock);
	oc->running = *st;
	atomic_store(&oc->cancel_requested, 0);
	pthread_mutex_unlock(&oc->lock);
	return 0;
}

static void stmt_end(struct odbc_conn *oc, SQLHSTMT st)
{
	pthread_mutex_lock(&oc->lock);
	oc->running = SQL_NULL_HSTMT;
	pthread_mutex_unlock(&oc->lock);
	SQLFreeHandle(SQL_HANDLE_STMT, st);
}

static int odbc_cancel(struct sluice_conn *c)
{
	struct odbc_conn *oc = (struct odbc_conn *)c;
	int rc = 0;

	pthread_mutex_lock(&oc->lock);
	atomic_store(&oc->cancel_requested, 1);
	if (oc->running && !SQL_SUCCEEDED(SQLCancel(oc->running)))
		rc = SLUICE_ECONN;
	pthread_mutex_unlock(&oc->lock);
	return rc;
}

static long long row_count(SQLHSTMT st)
{
	SQLLEN n = -1;

	if (!SQL_SUCCEEDED(SQLRowCount(st, &n)))
		return -1;
	return (long long)n;
}

/* SQLExecDirect's outcome: 0, or the error. SQL_NO_DATA is a statement
 * that touched no rows, not a failure. */
static int exec_direct(struct odbc_conn *oc, SQLHSTMT st, const char *sql,
		       struct sluice_err *err)
{
	SQLRETURN r = SQLExecDirect(st, (SQLCHAR *)sql, SQL_NTS);

	if (SQL_SUCCEEDED(r) || r == SQL_NO_DATA)
		return 0;
	return stmt_error(oc, st, err);
}

/*
 * The count of the current result. A result with columns is read to its
 * end: under UseDeclareFetch psqlODBC runs a SELECT as a cursor, and the
 * server only computes the rows somebody fetches, so an unread
 * `select f(x) from t` would call f for the first batch alone. Fetching
 * without bound columns moves the rows but keeps none; the count is the
 * rows seen, as PostgreSQL's "SELECT n" would say.
 */
static int result_count(struct odbc_conn *oc, SQLHSTMT st, long long *n, struct sluice_err *err)
{
	SQLSMALLINT ncols = 0;
	long long rows = 0;
	SQLRETURN r;

	if (!SQL_SUCCEEDED(SQLNumResultCols(st, &ncols)))
		return stmt_error(oc, st, err);
	if (ncols <= 0) {
		*n = row_count(st);
		return 0;
	}
	while ((r = SQLFetch(st)) != SQL_NO_DATA) {
		if (!SQL_SUCCEEDED(r))
			return stmt_error(oc, st, err);
		rows++;
	}
	*n = rows;
	return 0;
}

static int odbc_exec(struct sluice_conn *c, const char *sql, long long *rows,
		     struct sluice_err *err)
{
	struct odbc_conn *oc = (struct odbc_conn *)c;
	long long n = -1;
	SQLHSTMT st;
	SQLRETURN r;
	int rc;

	if (rows)
		*rows = -1;
	if ((rc = stmt_begin(oc, &st, err)))
		return rc;
	if (!(rc = exec_direct(oc, st, sql, err)) && !(rc = result_count(oc, st, &n, err))) {
		/* One result per statement of a multi-statement text: the
		 * count is the last one's. */
		while ((r = SQLMoreResults(st)) != SQL_NO_DATA) {
			if (!SQL_SUCCEEDED(r)) {
				rc = stmt_error(oc, st, err);
				break;
			}
			if ((rc = result_count(oc, st, &n, err)))
				break;
		}
	}
	SQLFreeStmt(st, SQL_CLOSE);
	stmt_end(oc, st);
	if (!rc && rows)
		*rows = n;
	return rc;
}

/* ---- query ---- */

/* ODBC's concise types as PostgreSQL names them (format_type). */
static const char *sql_type_name(SQLSMALLINT t)
{
	switch (t) {
	case SQL_CHAR: case SQL_WCHAR: return "character";
	case SQL_VARCHAR: case SQL_WVARCHAR: return "character varying";
	case SQL_LONGVARCHAR: case SQL_WLONGVARCHAR: return "text";
	case SQL_BIT: return "boolean";
	case SQL_TINYINT: case SQL_SMALLINT: return "smallint";
	case SQL_INTEGER: return "integer";
	case SQL_BIGINT: return "bigint";
	case SQL_REAL: return "real";
	case SQL_FLOAT: case SQL_DOUBLE: return "double precision";
	case SQL_NUMERIC: case SQL_DECIMAL: return "numeric";
	case SQL_TYPE_DATE: case SQL_DATE: return "date";
	case SQL_TYPE_TIME: case SQL_TIME: return "time without time zone";
	case SQL_TYPE_TIMESTAMP: case SQL_TIMESTAMP: return "timestamp without time zone";
	case SQL_GUID: return "uuid";
	case SQL_BINARY: case SQL_VARBINARY: case SQL_LONGVARBINARY: return "bytea";
	case SQL_INTERVAL_YEAR: case SQL_INTERVAL_MONTH: case SQL_INTERVAL_DAY:
	case SQL_INTERVAL_HOUR: case SQL_INTERVAL_MINUTE: case SQL_INTERVAL_SECOND:
	case SQL_INTERVAL_YEAR_TO_MONTH: case SQL_INTERVAL_DAY_TO_HOUR:
	case SQL_INTERVAL_DAY_TO_MINUTE: case SQL_INTERVAL_DAY_TO_SECOND:
	case SQL_INTERVAL_HOUR_TO_MINUTE: case SQL_INTERVAL_HOUR_TO_SECOND:
	case SQL_INTERVAL_MINUTE_TO_SECOND: return "interval";
	default: return NULL;
	}
}

/* The database's own short names (psqlODBC reports typname) to format_type's. */
static const char *const pg_type_names[][2] = {
	{ "bool", "boolean" }, { "int2", "smallint" }, { "int4", "integer" },
	{ "int8", "bigint" }, { "float4", "real" }, { "float8", "double precision" },
	{ "varchar", "character varying" }, { "bpchar", "character" }, { "char", "character" },
	{ "timestamp", "timestamp without time zone" },
	{ "timestamptz", "timestamp with time zone" }, { "time", "time without time zone" },
	{ "timetz", "time with time zone" }, { "decimal", "numeric" },
};

static void set_type(struct odbc_col *col, SQLHSTMT st, SQLUSMALLINT i, SQLSMALLINT sqltype)
{
	SQLCHAR tn[128];
	SQLSMALLINT len = 0;
	size_t k;

	col->type = NULL;
	tn[0] = '\0';
	/* psqlODBC calls types it has no ODBC mapping for (jsonb, enums)
	 * "unknown": the ODBC type then says more. */
	/* Some types (interval) come back "succeeded" with nothing written. */
	if (SQL_SUCCEEDED(SQLColAttribute(st, i, SQL_DESC_TYPE_NAME, tn, sizeof(tn), &len, NULL)) &&
	    len > 0 && (size_t)len < sizeof(tn) && (tn[len] = '\0', 1) &&
	    strcasecmp((char *)tn, "unknown")) {
		for (k = 0; k < sizeof(pg_type_names) / sizeof(pg_type_names[0]); k++)
			if (!strcasecmp((char *)tn, pg_type_names[k][0]))
				col->type = pg_type_names[k][1];
		if (!col->type) {
			col->type_owned = xstrdup((char *)tn);
			col->type = col->type_owned;
		}
		return;
	}
	col->type = sql_type_name(sqltype);
	if (!col->type) {
		char tmp[32];

		snprintf(tmp, sizeof(tmp), "sql type %d", (int)sqltype);
		col->type_owned = xstrdup(tmp);
		col->type = col->type_owned;
	}
}

/* Types whose text form is short whatever the declared size says. */
static int fixed_size(SQLSMALLINT t)
{
	switch (t) {
	case SQL_BIT: case SQL_TINYINT: case SQL_SMALLINT: case SQL_INTEGER: case SQL_BIGINT:
	case SQL_REAL: case SQL_FLOAT: case SQL_DOUBLE:
	case SQL_TYPE_DATE: case SQL_TYPE_TIME: case SQL_TYPE_TIMESTAMP:
	case SQL_DATE: case SQL_TIME: case SQL_TIMESTAMP: case SQL_GUID:
		return 1;
	default:
		return 0;
	}
}

static void ensure_cols(struct odbc_conn *oc, size_t n)
{
	size_t i;

	if (n <= oc->cap_cols)
		return;
	oc->cols = xrealloc(oc->cols, n * sizeof(*oc->cols));
	for (i = oc->cap_cols; i < n; i++)
		memset(&oc->cols[i], 0, sizeof(oc->cols[i]));
	oc->names = xrealloc(oc->names, n * sizeof(*oc->names));
	oc->typev = xrealloc(oc->typev, n * sizeof(*oc->typev));
	oc->values = xrealloc(oc->values, n * sizeof(*oc->values));
	oc->lens = xrealloc(oc->lens, n * sizeof(*oc->lens));
	oc->cap_cols = n;
}

static void col_reserve(struct odbc_col *col, size_t cap)
{
	if (col->cap >= cap)
		return;
	col->buf = xrealloc(col->buf, cap);
	col->cap = cap;
}

/* Bound room for a value of a column of this type and declared size. */
static size_t slot_size(SQLSMALLINT sqltype, SQLULEN size)
{
	if (fixed_size(sqltype))
		return FIXED_CAP;
	/* varchar(n): n characters, up to 4 bytes each in UTF-8. */
	if (size > 0 && size < TEXT_CAP / 4)
		return 4 * size + 1;
	return TEXT_CAP;
}

/*
 * Describe the result set and bind it. Where the driver lets SQLGetData
 * read a bound column again (SQL_GD_BOUND; psqlODBC does), every column
 * is bound with room for a usual value, and the rare longer one is read
 * again whole; with SQL_GD_BLOCK too, a fetch brings a block of rows.
 * Drivers without that bind only the fixed-size columns (numbers, dates,
 * uuid), a row at a time, and read text, numeric and binary columns with
 * SQLGetData in pieces. Plain ODBC only allows SQLGetData on columns after
 * the last bound one, in order: then binding stops at the first column
 * read with SQLGetData.
 */
static int set_columns(struct odbc_conn *oc, SQLHSTMT st, size_t n, struct sluice_err *err)
{
	SQLCHAR cname[512];
	SQLSMALLINT nlen, sqltype, digits, nullable;
	SQLULEN size;
	size_t i, row_bytes = 0;
	int binding = 1;

	free_columns(oc);
	ensure_cols(oc, n);
	oc->ncols = n;
	for (i = 0; i < n; i++) {
		struct odbc_col *col = &oc->cols[i];
		SQLUSMALLINT ci = (SQLUSMALLINT)(i + 1);

		if (!SQL_SUCCEEDED(SQLDescribeCol(st, ci, cname, sizeof(cname), &nlen, &sqltype,
						  &size, &digits, &nullable)))
			return stmt_error(oc, st, err);
		col->name = xstrdup((char *)cname);
		set_type(col, st, ci, sqltype);
		col->bound = oc->getdata_bound || (fixed_size(sqltype) && (binding || oc->getdata_any));
		if (!col->bound)
			binding = 0;
		col->slot = col->bound ? slot_size(sqltype, size) : 0;
		row_bytes += col->slot + sizeof(SQLLEN);
		col_reserve(col, col->bound ? FIXED_CAP : LONG_CAP);
		oc->names[i] = col->name;
		oc->typev[i] = col->type;
		col->fix = !strcmp(col->type, "boolean") ? FIX_BOOL :
			   !strcmp(col->type, "uuid") ? FIX_LOWER :
			   !strcmp(col->type, "bytea") ? FIX_HEX : FIX_NONE;
	}
	oc->block = 1;
	if (oc->getdata_block)
		oc->block = BLOCK_BYTES / row_bytes > BLOCK_ROWS ? BLOCK_ROWS
			: BLOCK_BYTES / row_bytes ? BLOCK_BYTES / row_bytes : 1;
	if (oc->row_status_cap < oc->block) {
		oc->row_status = xrealloc(oc->row_status, oc->block * sizeof(*oc->row_status));
		oc->row_status_cap = oc->block;
	}
	for (i = 0; i < n; i++) {
		struct odbc_col *col = &oc->cols[i];

		if (!col->bound)
			continue;
		if (col->slots_cap < col->slot * oc->block) {
			free(col->slots);
			col->slots_cap = col->slot * oc->block;
			col->slots = xmalloc(col->slots_cap);
		}
		if (col->inds_cap < oc->block) {
			free(col->inds);
			col->inds_cap = oc->block;
			col->inds = xmalloc(col->inds_cap * sizeof(*col->inds));
		}
		if (!SQL_SUCCEEDED(SQLBindCol(st, (SQLUSMALLINT)(i + 1), SQL_C_CHAR, col->slots,
					      (SQLLEN)col->slot, col->inds)))
			return stmt_error(oc, st, err);
	}
	oc->fetched = 0;
	if (!SQL_SUCCEEDED(SQLSetStmtAttr(st, SQL_ATTR_ROW_ARRAY_SIZE, (SQLPOINTER)oc->block, 0)) ||
	    !SQL_SUCCEEDED(SQLSetStmtAttr(st, SQL_ATTR_ROWS_FETCHED_PTR, &oc->fetched, 0)) ||
	    !SQL_SUCCEEDED(SQLSetStmtAttr(st, SQL_ATTR_ROW_STATUS_PTR, oc->row_status, 0)))
		return stmt_error(oc, st, err);
	return 0;
}

/*
 * psqlODBC reformats some types on the way to text: booleans as 1/0, uuids
 * in capitals, bytea as bare hex. Give them PostgreSQL's own text form,
 * which is what the libpq driver hands on, so the engine sees the same
 * values whichever driver it talks to. bytea gets its \x in get_long
 * and fill_row.
 */
static void fix_value(const struct odbc_col *col, char *v, size_t len)
{
	size_t i;

	switch (col->fix) {
	case FIX_BOOL:
		if (len == 1 && (v[0] == '1' || v[0] == '0'))
			v[0] = v[0] == '1' ? 't' : 'f';
		break;
	case FIX_LOWER:
		for (i = 0; i < len; i++)
			if (v[i] >= 'A' && v[i] <= 'Z')
				v[i] = (char)(v[i] - 'A' + 'a');
		break;
	default:
		break;
	}
}

/* Read column i of the current row whole with SQLGetData, growing its buffer. */
static int get_long(struct odbc_conn *oc, SQLHSTMT st, size_t i, struct sluice_err *err)
{
	struct odbc_col *col = &oc->cols[i];
	size_t have = 0;
	SQLLEN ind;
	SQLRETURN r;

	if (col->fix == FIX_HEX) {
		memcpy(col->buf, "\\x", 2);
		have = 2;
	}

	for (;;) {
		size_t room = col->cap - have;

		r = SQLGetData(st, (SQLUSMALLINT)(i + 1), SQL_C_CHAR, col->buf + have,
			       (SQLLEN)room, &ind);
		if (r == SQL_NO_DATA)
			break;
		if (!SQL_SUCCEEDED(r))
			return stmt_error(oc, st, err);
		if (ind == SQL_NULL_DATA) {
			oc->values[i] = NULL;
			oc->lens[i] = 0;
			return 0;
		}
		if (ind != SQL_NO_TOTAL && (size_t)ind < room) {
			have += (size_t)ind;
			break;
		}
		/* Truncated: room - 1 bytes and a NUL arrived; more follows. */
		have += room - 1;
		if (ind != SQL_NO_TOTAL)
			col_reserve(col, have + (size_t)ind - (room - 1) + 1);
		else
			col_reserve(col, 2 * col->cap);
	}
	col->buf[have] = '\0';
	fix_value(col, col->buf, have);
	oc->values[i] = col->buf;
	oc->lens[i] = have;
	return 0;
}

/* Row r of the block fetched last into values and lens. */
static int fill_row(struct odbc_conn *oc, SQLHSTMT st, size_t r, struct sluice_err *err)
{
	size_t i;
	int rc, positioned = oc->block == 1;

	if (oc->row_status[r] == SQL_ROW_ERROR)
		return stmt_error(oc, st, err);
	for (i = 0; i < oc->ncols; i++) {
		struct odbc_col *col = &oc->cols[i];
		SQLLEN ind = col->bound ? col->inds[r] : 0;
		char *v = col->bound ? col->slots + r * col->slot : NULL;

		if (col->bound && ind == SQL_NULL_DATA) {
			oc->values[i] = NULL;
			oc->lens[i] = 0;
		} else if (col->bound && ind != SQL_NO_TOTAL && (size_t)ind < col->slot) {
			if (col->fix == FIX_HEX) {
				col_reserve(col, (size_t)ind + 3);
				memcpy(col->buf, "\\x", 2);
				memcpy(col->buf + 2, v, (size_t)ind + 1);
				v = col->buf;
				ind += 2;
			}
			fix_value(col, v, (size_t)ind);
			oc->values[i] = v;
			oc->lens[i] = (size_t)ind;
		} else if (!col->bound || oc->getdata_bound) {
			/* Read whole: the row must be the current one first. */
			if (!positioned && !SQL_SUCCEEDED(SQLSetPos(st, (SQLSETPOSIROW)(r + 1), SQL_POSITION,
								    SQL_LOCK_NO_CHANGE)))
				return stmt_error(oc, st, err);
			positioned = 1;
			if ((rc = get_long(oc, st, i, err)))
				return rc;
		} else {
			/* Only fixed-size columns are bound here: never hand
			 * on a cut value. */
			return err_set(err, SLUICE_EDB,
				       "column %s (%s): value longer than %zu bytes, not read whole",
				       col->name, col->type, col->slot - 1);
		}
	}
	return 0;
}

/* Give back buffers one huge value or a wide block grew, so an idle
 * connection is small. */
static void trim_buffers(struct odbc_conn *oc)
{
	size_t i;

	for (i = 0; i < oc->cap_cols; i++) {
		if (oc->cols[i].cap > KEEP_CAP) {
			free(oc->cols[i].buf);
			oc->cols[i].buf = NULL;
			oc->cols[i].cap = 0;
		}
		if (oc->cols[i].slots_cap > KEEP_CAP) {
			free(oc->cols[i].slots);
			oc->cols[i].slots = NULL;
			oc->cols[i].slots_cap = 0;
		}
	}
}

static int odbc_query(struct sluice_conn *c, const char *sql, sluice_row_fn fn, void *ud,
		      struct sluice_err *err)
{
	struct odbc_conn *oc = (struct odbc_conn *)c;
	struct sluice_row row;
	SQLSMALLINT ncols;
	SQLRETURN r;
	SQLHSTMT st;
	size_t k;
	int rc, stop = 0;

	if ((rc = stmt_begin(oc, &st, err)))
		return rc;
	if ((rc = exec_direct(oc, st, sql, err)))
		goto out;
	/* Each statement of the text is a result; those with columns stream. */
	for (;;) {
		if (!SQL_SUCCEEDED(SQLNumResultCols(st, &ncols))) {
			rc = stmt_error(oc, st, err);
			goto out;
		}
		if (ncols > 0 && (rc = set_columns(oc, st, (size_t)ncols, err)))
			goto out;
		while (ncols > 0 && (r = SQLFetch(st)) != SQL_NO_DATA) {
			if (!SQL_SUCCEEDED(r)) {
				rc = stmt_error(oc, st, err);
				goto out;
			}
			for (k = 0; k < oc->fetched; k++) {
				if ((rc = fill_row(oc, st, k, err)))
					goto out;
				row.ncols = oc->ncols;
				row.names = oc->names;
				row.types = oc->typev;
				row.values = oc->values;
				row.lens = oc->lens;
				/* Closing the cursor below stops the rest: with
				 * UseDeclareFetch the server never produces it. */
				if ((stop = fn(ud, &row)))
					goto out;
			}
		}
		SQLFreeStmt(st, SQL_UNBIND);
		r = SQLMoreResults(st);
		if (r == SQL_NO_DATA)
			break;
		if (!SQL_SUCCEEDED(r)) {
			rc = stmt_error(oc, st, err);
			goto out;
		}
	}
out:
	SQLFreeStmt(st, SQL_CLOSE);
	stmt_end(oc, st);
	trim_buffers(oc);
	return stop ? stop : rc;
}

/* ---- load_csv: CSV rows as batched parameter-array INSERTs ---- */

/*
 * ODBC has no COPY. load_csv parses CSV as PostgreSQL's COPY ... CSV does
 * (a quote anywhere in a field opens a quoted part, "" inside one is a
 * quote, an unquoted empty field is NULL and a quoted one the empty
 * string, CR LF or LF end a row) and sends them in batches of k rows
 * (LOAD_BATCH_ROWS, fewer for wide tables): a full batch is one prepared
 * INSERT of k rows (a VALUES list), and a short one (the last, or one cut
 * short by LOAD_BATCH_BYTES) a one-row INSERT executed over an array of
 * parameter sets. Both bind the batch row-wise, every value as text
 * (SQL_C_CHAR) for the server to cast to its column's type, as COPY does.
 * Why not always the one-row INSERT over arrays of 1000 sets, as ODBC
 * intends: psqlODBC sends such an array as one statement per set, and
 * the server's per-statement work made that 12 times slower than COPY;
 * a k-row INSERT is one statement (measured in docs/odbc.md).
 *
 * Memory: one read buffer, the row being parsed, and one batch twice (as
 * parsed, and laid out for row-wise binding), which LOAD_BATCH_BYTES
 * bounds unless a single row is larger.
 */
#define LOAD_BATCH_ROWS 1000
/* psqlODBC describes a prepared statement through libpq, which takes the
 * server's description (4 bytes a parameter) as lost sync past 30000 bytes. */
#define LOAD_MAX_PARAMS 7000
#define LOAD_BATCH_BYTES (4 * 1024 * 1024)
#define LOAD_READ_CAP (64 * 1024)

struct csv_field {
	size_t off, len;
	int null;
};

struct loader {
	struct odbc_conn *oc;
	SQLHSTMT multi, one;     /* INSERTs of k rows and of one row */
	size_t ncols, k;         /* k: rows in a full batch */
	long long seen, loaded;  /* rows parsed, rows the server says it took */

	/* The row being parsed: its bytes, each field NUL-terminated. */
	struct buf row;
	struct csv_field *rf;    /* ncols of them */
	size_t nf, fstart;
	int quoted;
	enum { CSV_OUT, CSV_IN, CSV_QUOTE } state;
	int skip_lf;

	/* The batch: rows as parsed, and the widest value of each column. */
	struct buf data;
	struct csv_field *bf;    /* LOAD_BATCH_ROWS * ncols, row-major */
	size_t *width;
	size_t nrows;

	/*
	 * The batch laid out for row-wise binding: every row is stride bytes,
	 * its ncols length indicators first, then its values at voff[c], each
	 * width[c] + 1 bytes. A parameter set of g rows is g rows in a row.
	 */
	char *block;
	size_t block_cap, stride, *voff;
	SQLUSMALLINT *status;
};

/* oc NULL: no statements, rows are parsed and counted (odbc_csv_parse). */
static void loader_init(struct loader *l, struct odbc_conn *oc, size_t ncols)
{
	memset(l, 0, sizeof(*l));
	l->oc = oc;
	l->ncols = ncols;
	l->k = ncols * LOAD_BATCH_ROWS <= LOAD_MAX_PARAMS ? LOAD_BATCH_ROWS
		: LOAD_MAX_PARAMS / ncols ? LOAD_MAX_PARAMS / ncols : 1;
	buf_init(&l->row);
	buf_init(&l->data);
	l->rf = xcalloc(ncols, sizeof(*l->rf));
	l->bf = xcalloc(ncols * LOAD_BATCH_ROWS, sizeof(*l->bf));
	l->width = xcalloc(ncols, sizeof(*l->width));
	l->voff = xcalloc(ncols, sizeof(*l->voff));
	l->status = xcalloc(LOAD_BATCH_ROWS, sizeof(*l->status));
}

static void loader_release(struct loader *l)
{
	buf_release(&l->row);
	buf_release(&l->data);
	free(l->rf);
	free(l->bf);
	free(l->width);
	free(l->block);
	free(l->voff);
	free(l->status);
}

/*
 * A statement error of parameter sets of g rows starting at the batch's
 * row first, naming the CSV rows it came from. The status array marks
 * the sets that failed; psqlODBC sends sets in groups of its BatchSize
 * and marks the whole group.
 */
static int sets_error(struct loader *l, SQLHSTMT st, size_t g, size_t nsets, size_t first_row,
		      struct sluice_err *err)
{
	long long base = l->seen - (long long)l->nrows + (long long)first_row;
	long long first = 0, last = 0;
	size_t s;
	int rc = stmt_error(l->oc, st, err);

	for (s = 0; s < nsets; s++)
		if (l->status[s] == SQL_PARAM_ERROR) {
			if (!first)
				first = base + (long long)(s * g) + 1;
			last = base + (long long)((s + 1) * g);
		}
	if (rc == SLUICE_EDB && first && first == last)
		err_prefix(err, "CSV row %lld", first);
	else if (rc == SLUICE_EDB && first)
		err_prefix(err, "CSV rows %lld to %lld", first, last);
	return rc;
}

/* Execute st (an INSERT of g rows) over nsets sets from the batch's row first_row. */
static int run_sets(struct loader *l, SQLHSTMT st, size_t g, size_t nsets, size_t first_row,
		    struct sluice_err *err)
{
	char *base = l->block + first_row * l->stride;
	SQLRETURN ret;
	size_t r, c, s;
	long long n, m;

	for (r = 0; r < g; r++) {
		char *row = base + r * l->stride;

		for (c = 0; c < l->ncols; c++)
			if (!SQL_SUCCEEDED(SQLBindParameter(st, (SQLUSMALLINT)(r * l->ncols + c + 1),
							    SQL_PARAM_INPUT, SQL_C_CHAR, SQL_VARCHAR,
							    l->width[c] ? l->width[c] : 1, 0,
							    row + l->voff[c], (SQLLEN)(l->width[c] + 1),
							    (SQLLEN *)row + c)))
				return stmt_error(l->oc, st, err);
	}
	if (!SQL_SUCCEEDED(SQLSetStmtAttr(st, SQL_ATTR_PARAM_BIND_TYPE, (SQLPOINTER)(g * l->stride), 0)) ||
	    !SQL_SUCCEEDED(SQLSetStmtAttr(st, SQL_ATTR_PARAMSET_SIZE, (SQLPOINTER)nsets, 0)))
		return stmt_error(l->oc, st, err);
	/* The running statement, for cancel(). */
	pthread_mutex_lock(&l->oc->lock);
	l->oc->running = st;
	pthread_mutex_unlock(&l->oc->lock);
	ret = SQLExecute(st);
	if (!SQL_SUCCEEDED(ret) && ret != SQL_NO_DATA)
		return sets_error(l, st, g, nsets, first_row, err);
	for (s = 0; s < nsets; s++)
		if (l->status[s] == SQL_PARAM_ERROR)
			return sets_error(l, st, g, nsets, first_row, err);
	/* The server's counts (a trigger may skip rows, as under COPY): one
	 * per set where the driver keeps them apart (SQL_PARC_BATCH, as
	 * psqlODBC does), each a result of its own; else one for all. */
	n = row_count(st);
	while (nsets > 1 && l->oc->param_counts_apart && (ret = SQLMoreResults(st)) != SQL_NO_DATA) {
		if (!SQL_SUCCEEDED(ret))
			return stmt_error(l->oc, st, err);
		m = row_count(st);
		n = n >= 0 && m >= 0 ? n + m : -1;
	}
	l->loaded += n >= 0 ? n : (long long)(g * nsets);
	return 0;
}

static int flush_batch(struct loader *l, struct sluice_err *err)
{
	size_t r, c, nsets = l->nrows / l->k, tail = l->nrows % l->k;
	int rc = 0;

	if (!l->nrows)
		return 0;
	/* Without a connection (odbc_csv_parse) the rows are only counted. */
	if (!l->oc) {
		l->loaded += (long long)l->nrows;
		goto done;
	}
	l->stride = l->ncols * sizeof(SQLLEN);
	for (c = 0; c < l->ncols; c++) {
		l->voff[c] = l->stride;
		l->stride += l->width[c] + 1;
	}
	l->stride = (l->stride + sizeof(SQLLEN) - 1) / sizeof(SQLLEN) * sizeof(SQLLEN);
	if (l->block_cap < l->stride * l->nrows) {
		free(l->block);
		l->block_cap = l->stride * l->nrows;
		l->block = xmalloc(l->block_cap);
	}
	for (r = 0; r < l->nrows; r++) {
		char *row = l->block + r * l->stride;
		SQLLEN *ind = (SQLLEN *)row;

		for (c = 0; c < l->ncols; c++) {
			const struct csv_field *f = &l->bf[r * l->ncols + c];

			memcpy(row + l->voff[c], l->data.s + f->off, f->len + 1);
			ind[c] = f->null ? SQL_NULL_DATA : (SQLLEN)f->len;
		}
	}
	if (nsets)
		rc = run_sets(l, l->multi, l->k, nsets, 0, err);
	if (!rc && tail)
		rc = run_sets(l, l->one, 1, tail, nsets * l->k, err);
	if (rc)
		return rc;
done:
	l->nrows = 0;
	buf_reset(&l->data);
	memset(l->width, 0, l->ncols * sizeof(*l->width));
	if (l->oc && atomic_load(&l->oc->cancel_requested))
		return err_set(err, SLUICE_ECANCEL, "cancelled");
	return 0;
}

static void end_field(struct loader *l)
{
	struct csv_field *f;

	if (l->nf < l->ncols) {
		f = &l->rf[l->nf];
		f->off = l->fstart;
		f->len = l->row.len - l->fstart;
		f->null = !f->len && !l->quoted;
	}
	l->nf++;
	buf_addc(&l->row, '\0');
	l->fstart = l->row.len;
	l->quoted = 0;
}

/* The row is complete: check its width, then add it to the batch. */
static int end_row(struct loader *l, struct sluice_err *err)
{
	size_t c, cost = l->ncols * sizeof(SQLLEN) + sizeof(SQLLEN);
	int rc;

	end_field(l);
	if (l->nf != l->ncols)
		return err_set(err, SLUICE_EDB, "CSV row %lld has %zu field%s, %zu expected",
			       l->seen + 1, l->nf, l->nf == 1 ? "" : "s", l->ncols);
	for (c = 0; c < l->ncols; c++)
		cost += (l->width[c] > l->rf[c].len ? l->width[c] : l->rf[c].len) + 1;
	if (l->nrows && (l->nrows == l->k || cost * (l->nrows + 1) > LOAD_BATCH_BYTES) &&
	    (rc = flush_batch(l, err)))
		return rc;
	for (c = 0; c < l->ncols; c++) {
		struct csv_field *f = &l->bf[l->nrows * l->ncols + c];

		*f = l->rf[c];
		f->off += l->data.len;
		if (f->len > l->width[c])
			l->width[c] = f->len;
	}
	buf_add(&l->data, l->row.s, l->row.len);
	l->nrows++;
	l->seen++;
	buf_reset(&l->row);
	l->nf = l->fstart = 0;
	return 0;
}

/* Feed n bytes of CSV to the parser; fields may span calls. */
static int parse_csv(struct loader *l, const char *p, size_t n, struct sluice_err *err)
{
	const char *end = p + n, *run;
	int rc;

	while (p < end) {
		char ch = *p;

		if (l->skip_lf) {
			l->skip_lf = 0;
			if (ch == '\n') {
				p++;
				continue;
			}
		}
		switch (l->state) {
		case CSV_IN:
			/* Copy a run of plain bytes at once. */
			for (run = p; p < end && *p != '"'; p++)
				;
			buf_add(&l->row, run, (size_t)(p - run));
			if (p < end) {
				l->state = CSV_QUOTE;
				p++;
			}
			continue;
		case CSV_QUOTE:
			if (ch == '"') {
				buf_addc(&l->row, '"');
				l->state = CSV_IN;
				p++;
				continue;
			}
			/* The quoted part ended; ch is read outside quotes. */
			l->state = CSV_OUT;
			/* fall through */
		case CSV_OUT:
			for (run = p; p < end && *p != '"' && *p != ',' && *p != '\n' && *p != '\r'; p++)
				;
			buf_add(&l->row, run, (size_t)(p - run));
			if (p == end)
				continue;
			ch = *p++;
			if (ch == '"') {
				l->quoted = 1;
				l->state = CSV_IN;
			} else if (ch == ',') {
				end_field(l);
			} else {
				l->skip_lf = ch == '\r';
				if ((rc = end_row(l, err)))
					return rc;
			}
			continue;
		}
	}
	return 0;
}

/* The input ended: an open quote is an error, a last row may lack its line end. */
static int parse_end(struct loader *l, struct sluice_err *err)
{
	int rc;

	if (l->state == CSV_IN)
		return err_set(err, SLUICE_EDB,
			       "CSV row %lld: a quoted field is not closed at the end of the input",
			       l->seen + 1);
	if ((l->nf || l->row.len || l->quoted) && (rc = end_row(l, err)))
		return rc;
	return flush_batch(l, err);
}

int odbc_csv_parse(const char *csv, size_t len, size_t chunk, size_t ncols, long long *rows,
		   struct sluice_err *err)
{
	struct loader l;
	size_t off, n;
	int rc = 0;

	*rows = 0;
	if (!ncols)
		return err_set(err, SLUICE_EUSAGE, "no columns");
	loader_init(&l, NULL, ncols);
	for (off = 0; off < len && !rc; off += n) {
		n = chunk && chunk < len - off ? chunk : len - off;
		rc = parse_csv(&l, csv + off, n, err);
	}
	if (!rc)
		rc = parse_end(&l, err);
	if (!rc)
		*rows = l.loaded;
	loader_release(&l);
	return rc;
}

/* Prepare "INSERT INTO rel VALUES (?, ...), ..." for rows rows. */
static int prepare_insert(struct loader *l, const char *rel, size_t rows, SQLHSTMT *st,
			  struct sluice_err *err)
{
	struct buf sql = BUF_INIT;
	size_t r, c;
	int rc = 0;

	buf_printf(&sql, "INSERT INTO %s VALUES ", rel);
	for (r = 0; r < rows; r++)
		for (c = 0; c < l->ncols; c++)
			buf_puts(&sql, c ? ", ?" : r ? "), (?" : "(?");
	buf_addc(&sql, ')');
	if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, l->oc->dbc, st))) {
		*st = SQL_NULL_HSTMT;
		rc = err_set(err, SLUICE_ECONN, "connection '%s' (odbc): cannot allocate a statement handle",
			     l->oc->name);
	} else if (!SQL_SUCCEEDED(SQLPrepare(*st, (SQLCHAR *)sql.s, SQL_NTS)) ||
		   !SQL_SUCCEEDED(SQLSetStmtAttr(*st, SQL_ATTR_PARAM_STATUS_PTR, l->status, 0))) {
		rc = stmt_error(l->oc, *st, err);
	}
	buf_release(&sql);
	return rc;
}

static int odbc_load_csv(struct sluice_conn *c, const char *rel, size_t ncols, sluice_read_fn fn,
			 void *ud, long long *rows, struct sluice_err *err)
{
	struct odbc_conn *oc = (struct odbc_conn *)c;
	struct loader l;
	char *rbuf;
	ssize_t got;
	int rc;

	if (rows)
		*rows = 0;
	if (!ncols)
		return err_set(err, SLUICE_EUSAGE, "loading %s: no columns", rel);
	loader_init(&l, oc, ncols);
	rbuf = xmalloc(LOAD_READ_CAP);

	pthread_mutex_lock(&oc->lock);
	atomic_store(&oc->cancel_requested, 0);
	pthread_mutex_unlock(&oc->lock);
	if ((rc = prepare_insert(&l, rel, l.k, &l.multi, err)) ||
	    (rc = prepare_insert(&l, rel, 1, &l.one, err)))
		goto out;
	while ((got = fn(ud, rbuf, LOAD_READ_CAP, err)) > 0)
		if ((rc = parse_csv(&l, rbuf, (size_t)got, err)))
			goto out;
	if (got < 0) {
		rc = (int)got;
		goto out;
	}
	rc = parse_end(&l, err);
out:
	pthread_mutex_lock(&oc->lock);
	oc->running = SQL_NULL_HSTMT;
	pthread_mutex_unlock(&oc->lock);
	if (l.multi)
		SQLFreeHandle(SQL_HANDLE_STMT, l.multi);
	if (l.one)
		SQLFreeHandle(SQL_HANDLE_STMT, l.one);
	if (rc)
		err_prefix(err, "loading %s", rel);
	else if (rows)
		*rows = l.loaded;
	free(rbuf);
	loader_release(&l);
	return rc;
}

/* ---- about the connection ---- */

/* SQLGetInfo strings a and b of the connection, as "a b". */
static int info_pair(struct odbc_conn *oc, SQLUSMALLINT a, SQLUSMALLINT b, struct buf *out,
		     struct sluice_err *err)
{
	SQLCHAR va[128], vb[128];
	SQLSMALLINT len;
	struct buf msg = BUF_INIT;
	char state[6];
	int rc, major, minor, patch, end = 0;

	if (SQL_SUCCEEDED(SQLGetInfo(oc->dbc, a, va, sizeof(va), &len)) &&
	    SQL_SUCCEEDED(SQLGetInfo(oc->dbc, b, vb, sizeof(vb), &len))) {
		/* psqlODBC spells PostgreSQL 15.18 "15.0.18" (major, minor,
		 * patch of the version number): give the server's own spelling. */
		if (a == SQL_DBMS_NAME && !strcmp((char *)va, "PostgreSQL") &&
		    sscanf((char *)vb, "%d.%d.%d%n", &major, &minor, &patch, &end) == 3 &&
		    !vb[end] && major >= 10 && minor == 0)
			snprintf((char *)vb, sizeof(vb), "%d.%d", major, patch);
		buf_printf(out, "%s %s", (char *)va, (char *)vb);
		return 0;
	}
	diag(SQL_HANDLE_DBC, oc->dbc, &msg, state);
	buf_scrub(&msg, oc->password);
	rc = err_set(err, SLUICE_ECONN, "connection '%s' (odbc): %s", oc->name,
		     msg.len ? msg.s : "cannot read the server or driver version");
	buf_release(&msg);
	return rc;
}

static int odbc_server_version(struct sluice_conn *c, struct buf *out, struct sluice_err *err)
{
	return info_pair((struct odbc_conn *)c, SQL_DBMS_NAME, SQL_DBMS_VER, out, err);
}

/* The ODBC driver's library and version, e.g. "psqlodbcw.so 13.02.0000". */
static int odbc_driver_version(struct sluice_conn *c, struct buf *out, struct sluice_err *err)
{
	return info_pair((struct odbc_conn *)c, SQL_DRIVER_NAME, SQL_DRIVER_VER, out, err);
}

/* The connection string holds the password: it goes into a child's
 * environment only, and never into a message. */
static int odbc_child_env(struct sluice_conn *c, struct buf *out, struct sluice_err *err)
{
	struct odbc_conn *oc = (struct odbc_conn *)c;

	/* One variable per line: a newline inside a value would forge another. */
	if (strchr(oc->connstr, '\n'))
		return err_set(err, SLUICE_EUSAGE,
			       "connection '%s': the ODBC connection string contains a newline",
			       oc->name);
	buf_printf(out, "SLUICE_ODBC_CONNECTION_STRING=%s\n", oc->connstr);
	return 0;
}

/*
 * A password reaches the driver from password: or pwd:, or inside
 * connection_string: as PWD or Password. There it may be brace-quoted,
 * with '}' doubled, so a script printing the string shows "a}}b" for the
 * password "a}b": both spellings are listed, after the whole string.
 */
static const char **odbc_secrets(const struct val *s, struct arena *a)
{
	static const char *const settings_keys[] = { "password", "pwd" };
	static const char *const cs_keys_pwd[] = { "PWD", "Password" };
	const char *given = val_get_str(s, "connection_string", NULL);
	/* the string, two spellings per key inside it, the settings keys, NULL */
	const char **out = arena_alloc(a, (1 + 2 * sizeof(cs_keys_pwd) / sizeof(cs_keys_pwd[0]) +
					   sizeof(settings_keys) / sizeof(settings_keys[0]) + 1) * sizeof(char *));
	size_t n = 0, i;

	if (given && *given)
		out[n++] = given;
	for (i = 0; given && i < sizeof(cs_keys_pwd) / sizeof(cs_keys_pwd[0]); i++) {
		struct buf v = BUF_INIT, quoted = BUF_INIT;
		const char *p;

		if (cs_get(given, cs_keys_pwd[i], &v) && v.len) {
			out[n++] = arena_strndup(a, v.s, v.len);
			if (strchr(v.s, '}')) {
				for (p = v.s; *p; p++) {
					buf_addc(&quoted, *p);
					if (*p == '}')
						buf_addc(&quoted, '}');
				}
				out[n++] = arena_strndup(a, quoted.s, quoted.len);
			}
		}
		buf_release(&v);
		buf_release(&quoted);
	}
	for (i = 0; i < sizeof(settings_keys) / sizeof(settings_keys[0]); i++) {
		const char *v = val_get_str(s, settings_keys[i], NULL);
		if (v && *v)
			out[n++] = v;
	}
	out[n] = NULL;
	return out;
}

const struct sluice_connector odbc_connector = {
	.name = "odbc",
	.connect = odbc_connect,
	.close = odbc_close,
	.exec = odbc_exec,
	.query = odbc_query,
	.cancel = odbc_cancel,
	.copy_out = NULL,
	.copy_in = NULL,
	.load_csv = odbc_load_csv,
	.server_version = odbc_server_version,
	.driver_version = odbc_driver_version,
	.child_env = odbc_child_env,
	.secrets = odbc_secrets,
	.shutdown = NULL,
};
