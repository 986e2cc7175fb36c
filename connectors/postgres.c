/*
 * postgres.c: the libpq driver behind struct sluice_connector, for
 * PostgreSQL and for Redshift spoken to over the PostgreSQL protocol. It
 * turns profile settings into a connection, runs statements, streams rows
 * and COPY data in bounded memory, and maps server errors onto sluice_err.
 * It writes no SQL of its own beyond catalog look-ups (engine/dialect-*.c
 * owns SQL) and does not manage the embedded server's files (pg-embedded.c
 * does): it only asks for that server when settings say `embedded: true`.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libpq-fe.h>
#include "postgres.h"
#include "pg-embedded.h"
#include "../engine/util/xalloc.h"

#define COPY_CHUNK 65536
#define DEFAULT_CONNECT_TIMEOUT 10
#define EMBEDDED_DB "sluice"

struct oid_name {
	Oid oid;
	const char *name;
};

struct pg_conn {
	struct sluice_conn base;
	PGconn *pg;
	PGcancel *cancel;
	char *name;
	/* Set by cancel(), cleared when a statement starts: tells our cancel
	 * apart from statement_timeout's or an administrator's (all 57014). */
	atomic_int cancel_requested;

	/* Type names of oids outside builtin_types, looked up once. */
	struct oid_name *types;
	size_t ntypes, cap_types;

	/* Scaffolding of the current result set, reused row after row. */
	char **names;
	const char **typev;
	const char **values;
	size_t *lens;
	size_t ncols, cap_cols;
};

/* format_type(oid, null) of the common built-in types; these oids are fixed
 * in PostgreSQL's catalog (and shared by Redshift). Sorted by oid. */
static const struct oid_name builtin_types[] = {
	{ 16, "boolean" }, { 17, "bytea" }, { 18, "\"char\"" }, { 19, "name" },
	{ 20, "bigint" }, { 21, "smallint" }, { 23, "integer" }, { 25, "text" },
	{ 26, "oid" }, { 114, "json" }, { 142, "xml" }, { 199, "json[]" },
	{ 650, "cidr" }, { 700, "real" }, { 701, "double precision" }, { 705, "unknown" },
	{ 790, "money" }, { 829, "macaddr" }, { 869, "inet" }, { 1000, "boolean[]" },
	{ 1005, "smallint[]" }, { 1007, "integer[]" }, { 1009, "text[]" },
	{ 1014, "character[]" }, { 1015, "character varying[]" }, { 1016, "bigint[]" },
	{ 1021, "real[]" }, { 1022, "double precision[]" }, { 1042, "character" },
	{ 1043, "character varying" }, { 1082, "date" }, { 1083, "time without time zone" },
	{ 1114, "timestamp without time zone" }, { 1115, "timestamp without time zone[]" },
	{ 1182, "date[]" }, { 1184, "timestamp with time zone" },
	{ 1185, "timestamp with time zone[]" }, { 1186, "interval" }, { 1231, "numeric[]" },
	{ 1266, "time with time zone" }, { 1560, "bit" }, { 1562, "bit varying" },
	{ 1700, "numeric" }, { 2205, "regclass" }, { 2249, "record" }, { 2278, "void" },
	{ 2950, "uuid" }, { 2951, "uuid[]" }, { 3614, "tsvector" }, { 3802, "jsonb" },
	{ 3807, "jsonb[]" },
};

/* ---- the embedded server, shared by every connection of this process ---- */

struct emb_project {
	struct emb_project *next;
	char *dir;
	struct pg_embedded e;
	int started;          /* this process started it: shutdown() stops it */
	char **dbs;           /* databases known to exist */
	size_t ndbs;
};

static pthread_mutex_t emb_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct emb_project *emb_projects;

static void emb_forget_dbs(struct emb_project *ep)
{
	size_t i;

	for (i = 0; i < ep->ndbs; i++)
		free(ep->dbs[i]);
	free(ep->dbs);
	ep->dbs = NULL;
	ep->ndbs = 0;
}

static struct emb_project *emb_find(const char *project_dir)
{
	struct emb_project *ep;

	for (ep = emb_projects; ep; ep = ep->next)
		if (!strcmp(ep->dir, project_dir))
			break;
	return ep;
}

static int emb_has_db(const struct emb_project *ep, const char *dbname)
{
	size_t i;

	for (i = 0; i < ep->ndbs; i++)
		if (!strcmp(ep->dbs[i], dbname))
			return 1;
	return 0;
}

static void emb_add_db(struct emb_project *ep, const char *dbname)
{
	ep->dbs = xrealloc(ep->dbs, (ep->ndbs + 1) * sizeof(*ep->dbs));
	ep->dbs[ep->ndbs++] = xstrdup(dbname);
}

/*
 * The embedded server of project_dir, started once per process, with
 * database dbname created. recheck: the cached address failed, so ask
 * again (someone may have stopped or restarted the server).
 *
 * Without recheck, *unsure = 1 when the address is only where the server
 * should be (its pid file, or the process's own server with a database
 * not yet seen): the caller's connection checks it, saving a session
 * for each check, and on failure comes back with recheck. emb_confirm
 * records a connection that worked.
 */
static int emb_ready(const char *project_dir, const char *dbname, int recheck,
		     struct pg_embedded *out, int *unsure, struct sluice_err *err)
{
	struct emb_project *ep;
	int rc = 0, started = 0;

	*unsure = 0;
	pthread_mutex_lock(&emb_mutex);
	ep = emb_find(project_dir);
	if (!recheck && (ep ? !emb_has_db(ep, dbname) : pg_embedded_address(project_dir, out) == PG_EMBEDDED_RUNNING)) {
		if (ep)
			*out = ep->e;
		*unsure = 1;
		goto out;
	}
	if (!ep || recheck) {
		struct pg_embedded e;

		rc = pg_embedded_ensure(project_dir, &e, &started, err);
		if (rc)
			goto out;
		if (!ep) {
			ep = xcalloc(1, sizeof(*ep));
			ep->dir = xstrdup(project_dir);
			ep->next = emb_projects;
			emb_projects = ep;
		}
		ep->e = e;
		ep->started |= started;
		emb_forget_dbs(ep);
	}
	if (!emb_has_db(ep, dbname)) {
		rc = pg_embedded_create_db(&ep->e, dbname, err);
		if (rc)
			goto out;
		emb_add_db(ep, dbname);
	}
	*out = ep->e;
out:
	pthread_mutex_unlock(&emb_mutex);
	return rc;
}

/* A connection to dbname at e worked: the server and the database are known. */
static void emb_confirm(const char *project_dir, const char *dbname, const struct pg_embedded *e)
{
	struct emb_project *ep;

	pthread_mutex_lock(&emb_mutex);
	if (!(ep = emb_find(project_dir))) {
		ep = xcalloc(1, sizeof(*ep));
		ep->dir = xstrdup(project_dir);
		ep->e = *e;
		ep->next = emb_projects;
		emb_projects = ep;
	}
	if (!emb_has_db(ep, dbname))
		emb_add_db(ep, dbname);
	pthread_mutex_unlock(&emb_mutex);
}

static void pg_shutdown(void)
{
	struct emb_project *ep, *next;
	struct sluice_err ignore = SLUICE_ERR_INIT;

	pthread_mutex_lock(&emb_mutex);
	for (ep = emb_projects; ep; ep = next) {
		next = ep->next;
		if (ep->started)
			pg_embedded_stop(ep->dir, &ignore);
		emb_forget_dbs(ep);
		free(ep->dir);
		free(ep);
	}
	emb_projects = NULL;
	pthread_mutex_unlock(&emb_mutex);
}

/* ---- messages (folding and scrubbing live in util/buf.c) ---- */

static int conn_error(const char *name, PGconn *pg, const char *password,
		      struct sluice_err *err)
{
	struct buf msg = BUF_INIT;
	int rc;

	buf_add_folded(&msg, pg ? PQerrorMessage(pg) : "out of memory");
	buf_scrub(&msg, password);
	rc = err_set(err, SLUICE_ECONN, "connection '%s' (postgres): %s", name,
		     msg.len ? msg.s : "unknown error");
	buf_release(&msg);
	return rc;
}

static int lost_error(struct pg_conn *pc, const char *text, struct sluice_err *err)
{
	struct buf msg = BUF_INIT;
	int rc;

	buf_add_folded(&msg, text && *text ? text : PQerrorMessage(pc->pg));
	rc = err_set(err, SLUICE_ECONN, "connection '%s' (postgres) lost: %s", pc->name,
		     msg.len ? msg.s : "server closed the connection");
	buf_release(&msg);
	return rc;
}

/* 1-based line of the pos-th character (1-based, as the server counts). */
static long line_of(const char *sql, long pos)
{
	const unsigned char *s = (const unsigned char *)sql;
	long line = 1, ch = 0;

	for (; *s; s++) {
		if ((*s & 0xC0) == 0x80)
			continue;  /* UTF-8 continuation byte: same character */
		if (++ch >= pos)
			break;
		if (*s == '\n')
			line++;
	}
	return line;
}

/* An error result to SLUICE_EDB (or _ECANCEL, _ECONN) with SQLSTATE. */
static int result_error(struct pg_conn *pc, const PGresult *res, const char *sql,
			struct sluice_err *err)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
	const char *hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
	const char *pos = PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION);
	struct buf msg = BUF_INIT;
	int code = SLUICE_EDB;

	if (PQstatus(pc->pg) == CONNECTION_BAD)
		return lost_error(pc, PQresultErrorMessage(res), err);
	if (primary) {
		buf_add_folded(&msg, primary);
	} else {
		buf_add_folded(&msg, PQresultErrorMessage(res));
		if (!msg.len)
			buf_add_folded(&msg, PQerrorMessage(pc->pg));
	}
	if (detail) {
		buf_puts(&msg, " (DETAIL: ");
		buf_add_folded(&msg, detail);
		buf_addc(&msg, ')');
	}
	if (hint) {
		buf_puts(&msg, " (HINT: ");
		buf_add_folded(&msg, hint);
		buf_addc(&msg, ')');
	}
	if (pos && sql)
		buf_printf(&msg, " at line %ld", line_of(sql, strtol(pos, NULL, 10)));
	if (state && !strcmp(state, "57014") && atomic_load(&pc->cancel_requested))
		code = SLUICE_ECANCEL;
	err_set(err, code, "%s", msg.len ? msg.s : "unknown error");
	if (state)
		snprintf(err->sqlstate, sizeof(err->sqlstate), "%s", state);
	buf_release(&msg);
	return code;
}

/*
 * After the results are drained: a server that ends the session (admin
 * shutdown, pg_terminate_backend) first sends an ordinary-looking error,
 * and libpq only then sees the socket close. Report that as a lost
 * connection, keeping the server's words, unless rc is someone else's.
 */
static int check_lost(struct pg_conn *pc, int rc, struct sluice_err *err)
{
	char why[sizeof(err->msg)];

	if (PQstatus(pc->pg) != CONNECTION_BAD || rc == SLUICE_ECONN)
		return rc;
	if (rc == SLUICE_EDB || rc == SLUICE_ECANCEL) {
		snprintf(why, sizeof(why), "%s", err->msg);
		return lost_error(pc, why, err);
	}
	return rc ? rc : lost_error(pc, NULL, err);
}

/* PQsendQuery or a COPY call failed before any result. */
static int send_error(struct pg_conn *pc, struct sluice_err *err)
{
	struct buf msg = BUF_INIT;
	int rc;

	if (PQstatus(pc->pg) == CONNECTION_BAD)
		return lost_error(pc, NULL, err);
	buf_add_folded(&msg, PQerrorMessage(pc->pg));
	rc = err_set(err, SLUICE_EDB, "%s", msg.len ? msg.s : "could not send the statement");
	buf_release(&msg);
	return rc;
}

/* ---- connect / close ---- */

static void notice_discard(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/* Keyword/value arrays for PQconnectdbParams, kept NULL-terminated. */
struct conn_kv {
	const char *kw[16];
	const char *val[16];
	int n;
};

static void kv_add(struct conn_kv *kv, const char *key, const char *val)
{
	kv->kw[kv->n] = key;
	kv->val[kv->n++] = val;
	kv->kw[kv->n] = NULL;
	kv->val[kv->n] = NULL;
}

static PGconn *open_pg(const struct conn_kv *kv)
{
	/* expand_dbname 0: a dbname with '=' in it is a name, not a conninfo. */
	PGconn *pg = PQconnectdbParams(kv->kw, kv->val, 0);

	if (pg && PQstatus(pg) == CONNECTION_OK)
		PQsetNoticeProcessor(pg, notice_discard, NULL);
	return pg;
}

/* The embedded server could not be had: for the engine that is a failed
 * connection, unless the project itself is wrong (no initdb, bad path). */
static int embedded_error(const char *name, struct sluice_err *err)
{
	err_prefix(err, "connection '%s' (postgres)", name);
	if (err->code != SLUICE_EUSAGE)
		err->code = SLUICE_ECONN;
	return err->code;
}

static int pg_connect(const struct sluice_conn_params *p, struct sluice_conn **out,
		      struct sluice_err *err)
{
	const struct val *s = p->settings;
	const char *name = p->name ? p->name : "default";
	struct conn_kv kv = { { NULL }, { NULL }, 0 };
	const char *dbname, *password, *opt;
	char port[32], timeout[32];
	struct pg_embedded e;
	struct pg_conn *pc;
	PGconn *pg;
	int embedded = val_get_bool(s, "embedded", 0), unsure = 0, rc;

	*out = NULL;
	/* dbt accepts both spellings; so do we. */
	dbname = val_get_str(s, "dbname", val_get_str(s, "database", NULL));
	password = val_get_str(s, "password", val_get_str(s, "pass", NULL));
	if (embedded) {
		if (!p->project_dir)
			return err_set(err, SLUICE_EUSAGE,
				       "connection '%s' (postgres): embedded: true needs a project directory",
				       name);
		if (!dbname)
			dbname = EMBEDDED_DB;
		if ((rc = emb_ready(p->project_dir, dbname, 0, &e, &unsure, err)))
			return embedded_error(name, err);
		snprintf(port, sizeof(port), "%d", e.port);
		kv_add(&kv, "host", e.sockdir);
		kv_add(&kv, "port", port);
		kv_add(&kv, "user", "sluice");
		password = NULL;
	} else {
		if ((opt = val_get_str(s, "host", NULL)))
			kv_add(&kv, "host", opt);
		if ((opt = val_get_text(s, "port", port, sizeof(port))) || (opt = connector_default_port(s)))
			kv_add(&kv, "port", opt);
		if ((opt = val_get_str(s, "user", NULL)))
			kv_add(&kv, "user", opt);
		if (password)
			kv_add(&kv, "password", password);
		if ((opt = val_get_str(s, "sslmode", NULL)))
			kv_add(&kv, "sslmode", opt);
	}
	if (dbname)
		kv_add(&kv, "dbname", dbname);
	snprintf(timeout, sizeof(timeout), "%lld",
		 val_get_int(s, "connect_timeout", DEFAULT_CONNECT_TIMEOUT));
	kv_add(&kv, "connect_timeout", timeout);
	if (p->application_name)
		kv_add(&kv, "application_name", p->application_name);
	if ((opt = val_get_str(s, "options", NULL)))
		kv_add(&kv, "options", opt);
	/* Rows reach the engine as UTF-8 whatever the server's encoding. */
	kv_add(&kv, "client_encoding", "UTF8");

	pg = open_pg(&kv);
	if (embedded && PQstatus(pg) != CONNECTION_OK) {
		/* Not started, or stopped or restarted behind our back, or no such database yet. */
		PQfinish(pg);
		if ((rc = emb_ready(p->project_dir, dbname, 1, &e, &unsure, err)))
			return embedded_error(name, err);
		/* kv points at e.sockdir and port: refreshed in place. */
		snprintf(port, sizeof(port), "%d", e.port);
		pg = open_pg(&kv);
	} else if (unsure) {
		emb_confirm(p->project_dir, dbname, &e);
	}
	if (PQstatus(pg) != CONNECTION_OK) {
		rc = conn_error(name, pg, password, err);
		PQfinish(pg);
		return rc;
	}
	pc = xcalloc(1, sizeof(*pc));
	pc->base.drv = &pg_connector;
	pc->name = xstrdup(name);
	pc->base.name = pc->name;
	pc->pg = pg;
	pc->cancel = PQgetCancel(pg);
	atomic_init(&pc->cancel_requested, 0);
	*out = &pc->base;
	return 0;
}

static void pg_close(struct sluice_conn *c)
{
	struct pg_conn *pc = (struct pg_conn *)c;
	size_t i;

	if (!pc)
		return;
	if (pc->cancel)
		PQfreeCancel(pc->cancel);
	PQfinish(pc->pg);
	for (i = 0; i < pc->ntypes; i++)
		free((char *)pc->types[i].name);
	free(pc->types);
	for (i = 0; i < pc->ncols; i++)
		free(pc->names[i]);
	free(pc->names);
	free(pc->typev);
	free(pc->values);
	free(pc->lens);
	free(pc->name);
	free(pc);
}

/* Cancel whatever pc runs; a cancel of our own (not the user's). */
static void cancel_running(struct pg_conn *pc)
{
	char msg[256];

	if (pc->cancel)
		PQcancel(pc->cancel, msg, sizeof(msg));
}

static int pg_cancel(struct sluice_conn *c)
{
	struct pg_conn *pc = (struct pg_conn *)c;
	char msg[256];

	atomic_store(&pc->cancel_requested, 1);
	if (!pc->cancel)
		return SLUICE_ENOTSUP;
	return PQcancel(pc->cancel, msg, sizeof(msg)) ? 0 : SLUICE_ECONN;
}

/* ---- exec ---- */

static long long cmd_rows(PGresult *res)
{
	const char *t = PQcmdTuples(res);

	return t && *t ? strtoll(t, NULL, 10) : -1;
}

/* A COPY that exec or query was not asked to run: end it, report misuse. */
static int refuse_copy(struct pg_conn *pc, PGresult *res, struct sluice_err *err)
{
	char *chunk;

	if (PQresultStatus(res) == PGRES_COPY_IN) {
		PQputCopyEnd(pc->pg, "sluice: COPY FROM STDIN must go through copy_in");
		return err_set(err, SLUICE_EUSAGE, "COPY FROM STDIN must go through copy_in");
	}
	while (PQgetCopyData(pc->pg, &chunk, 0) > 0)
		PQfreemem(chunk);
	return err_set(err, SLUICE_EUSAGE, "COPY TO STDOUT must go through copy_out");
}

static int pg_exec(struct sluice_conn *c, const char *sql, long long *rows,
		   struct sluice_err *err)
{
	struct pg_conn *pc = (struct pg_conn *)c;
	PGresult *res;
	long long n = -1;
	int rc = 0;

	if (rows)
		*rows = -1;
	atomic_store(&pc->cancel_requested, 0);
	if (!PQsendQuery(pc->pg, sql))
		return send_error(pc, err);
	/* Drain every result, even after an error, so the connection is idle. */
	while ((res = PQgetResult(pc->pg))) {
		switch (PQresultStatus(res)) {
		case PGRES_COMMAND_OK:
		case PGRES_TUPLES_OK:
			n = cmd_rows(res);
			break;
		case PGRES_EMPTY_QUERY:
			n = -1;
			break;
		case PGRES_COPY_IN:
		case PGRES_COPY_OUT:
			if (!rc)
				rc = refuse_copy(pc, res, err);
			else
				refuse_copy(pc, res, NULL);
			break;
		default:
			if (!rc)
				rc = result_error(pc, res, sql, err);
			break;
		}
		PQclear(res);
	}
	rc = check_lost(pc, rc, err);
	if (!rc && rows)
		*rows = n;
	return rc;
}

/* ---- query ---- */

static const char *builtin_type(Oid oid)
{
	size_t lo = 0, hi = sizeof(builtin_types) / sizeof(builtin_types[0]);

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (builtin_types[mid].oid == oid)
			return builtin_types[mid].name;
		if (builtin_types[mid].oid < oid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static const char *known_type(const struct pg_conn *pc, Oid oid)
{
	const char *name = builtin_type(oid);
	size_t i;

	for (i = 0; !name && i < pc->ntypes; i++)
		if (pc->types[i].oid == oid)
			name = pc->types[i].name;
	return name;
}

static void remember_type(struct pg_conn *pc, Oid oid, const char *name)
{
	if (known_type(pc, oid))
		return;
	if (pc->ntypes == pc->cap_types) {
		pc->cap_types = pc->cap_types ? 2 * pc->cap_types : 8;
		pc->types = xrealloc(pc->types, pc->cap_types * sizeof(*pc->types));
	}
	pc->types[pc->ntypes].oid = oid;
	pc->types[pc->ntypes++].name = xstrdup(name);
}

/*
 * Name types outside the built-in table (enums, extension types) with one
 * catalog query. pc's own session is busy streaming the very result that
 * needs the names, so the query runs on a short-lived second session with
 * the same settings (PQconninfo); it happens once per type per connection.
 */
static void lookup_types(struct pg_conn *pc, const Oid *oids, size_t n)
{
	PQconninfoOption *opts = PQconninfo(pc->pg), *o;
	struct buf sql = BUF_INIT, fallback = BUF_INIT;
	const char **kw, **vals;
	PGconn *side = NULL;
	PGresult *res;
	size_t k = 0, i;
	int r;

	for (o = opts; o && o->keyword; o++)
		k++;
	kw = xcalloc(k + 1, sizeof(*kw));
	vals = xcalloc(k + 1, sizeof(*vals));
	k = 0;
	for (o = opts; o && o->keyword; o++)
		if (o->val && *o->val) {
			kw[k] = o->keyword;
			vals[k++] = o->val;
		}
	if (opts)
		side = PQconnectdbParams(kw, vals, 0);
	if (side && PQstatus(side) == CONNECTION_OK) {
		/* `in (...)` rather than `= any(array)`: Redshift lacks arrays. */
		buf_puts(&sql, "select oid, format_type(oid, null) from pg_type where oid in (");
		for (i = 0; i < n; i++)
			buf_printf(&sql, "%s%u", i ? ", " : "", oids[i]);
		buf_addc(&sql, ')');
		res = PQexec(side, sql.s);
		if (PQresultStatus(res) == PGRES_TUPLES_OK)
			for (r = 0; r < PQntuples(res); r++)
				remember_type(pc, (Oid)strtoul(PQgetvalue(res, r, 0), NULL, 10),
					      PQgetvalue(res, r, 1));
		PQclear(res);
	}
	/* Whatever could not be named gets its number, once. */
	for (i = 0; i < n; i++) {
		buf_reset(&fallback);
		buf_printf(&fallback, "oid %u", oids[i]);
		remember_type(pc, oids[i], fallback.s);
	}
	PQfinish(side);
	PQconninfoFree(opts);
	free(kw);
	free(vals);
	buf_release(&sql);
	buf_release(&fallback);
}

static void set_columns(struct pg_conn *pc, const PGresult *res)
{
	size_t n = (size_t)PQnfields(res), i, nunknown = 0;
	Oid *unknown;

	for (i = 0; i < pc->ncols; i++)
		free(pc->names[i]);
	if (n > pc->cap_cols) {
		pc->names = xrealloc(pc->names, n * sizeof(*pc->names));
		pc->typev = xrealloc(pc->typev, n * sizeof(*pc->typev));
		pc->values = xrealloc(pc->values, n * sizeof(*pc->values));
		pc->lens = xrealloc(pc->lens, n * sizeof(*pc->lens));
		pc->cap_cols = n;
	}
	pc->ncols = n;
	unknown = xcalloc(n ? n : 1, sizeof(*unknown));
	for (i = 0; i < n; i++) {
		Oid t = PQftype(res, (int)i);
		pc->names[i] = xstrdup(PQfname(res, (int)i));
		if (!known_type(pc, t))
			unknown[nunknown++] = t;
	}
	if (nunknown)
		lookup_types(pc, unknown, nunknown);
	/* Names live in builtin_types or in pc->types' heap strings, both
	 * stable while the connection lives. */
	for (i = 0; i < n; i++)
		pc->typev[i] = known_type(pc, PQftype(res, (int)i));
	free(unknown);
}

static int pg_query(struct sluice_conn *c, const char *sql, sluice_row_fn fn, void *ud,
		    struct sluice_err *err)
{
	struct pg_conn *pc = (struct pg_conn *)c;
	struct sluice_row row;
	PGresult *res;
	int rc = 0, stop = 0, have_cols = 0, r;
	size_t i;

	atomic_store(&pc->cancel_requested, 0);
	if (!PQsendQuery(pc->pg, sql))
		return send_error(pc, err);
	/* One row per PGresult: memory stays bounded whatever the row count. */
	PQsetSingleRowMode(pc->pg);
	while ((res = PQgetResult(pc->pg))) {
		switch (PQresultStatus(res)) {
		case PGRES_SINGLE_TUPLE:
		case PGRES_TUPLES_OK:
			/* Rows come one per result in single-row mode; a set that
			 * arrives whole anyway (TUPLES_OK with rows) is walked too.
			 * A TUPLES_OK ends the set: the next has its own columns. */
			for (r = 0; !stop && !rc && r < PQntuples(res); r++) {
				if (!have_cols) {
					set_columns(pc, res);
					have_cols = 1;
				}
				for (i = 0; i < pc->ncols; i++) {
					int null = PQgetisnull(res, r, (int)i);
					pc->values[i] = null ? NULL : PQgetvalue(res, r, (int)i);
					pc->lens[i] = null ? 0 : (size_t)PQgetlength(res, r, (int)i);
				}
				row.ncols = pc->ncols;
				row.names = (const char *const *)pc->names;
				row.types = pc->typev;
				row.values = pc->values;
				row.lens = pc->lens;
				stop = fn(ud, &row);
				/* Stop the server producing rows nobody reads;
				 * the rest of the stream (and its 57014) drains. */
				if (stop)
					cancel_running(pc);
			}
			if (PQresultStatus(res) == PGRES_TUPLES_OK)
				have_cols = 0;
			break;
		case PGRES_COMMAND_OK:
		case PGRES_EMPTY_QUERY:
			break;
		case PGRES_COPY_IN:
		case PGRES_COPY_OUT:
			if (!rc && !stop)
				rc = refuse_copy(pc, res, err);
			else
				refuse_copy(pc, res, NULL);
			break;
		default:
			if (!rc && !stop)
				rc = result_error(pc, res, sql, err);
			break;
		}
		PQclear(res);
	}
	if (stop)
		return stop;
	return check_lost(pc, rc, err);
}

/* ---- COPY ---- */

/* Read and drop the remaining results (ending any COPY the text starts:
 * in COPY state PQgetResult would return the same state forever). */
static void discard_results(struct pg_conn *pc)
{
	PGresult *res;

	while ((res = PQgetResult(pc->pg))) {
		if (PQresultStatus(res) == PGRES_COPY_IN || PQresultStatus(res) == PGRES_COPY_OUT)
			refuse_copy(pc, res, NULL);
		PQclear(res);
	}
}

/* Send a COPY statement and wait for the server to enter want. */
static int copy_start(struct pg_conn *pc, const char *sql, ExecStatusType want,
		      struct sluice_err *err)
{
	PGresult *res;
	int rc = 0;

	atomic_store(&pc->cancel_requested, 0);
	if (!PQsendQuery(pc->pg, sql))
		return send_error(pc, err);
	res = PQgetResult(pc->pg);
	if (!res)
		return send_error(pc, err);
	if (PQresultStatus(res) != want) {
		if (PQresultStatus(res) == PGRES_COPY_IN || PQresultStatus(res) == PGRES_COPY_OUT)
			refuse_copy(pc, res, NULL);
		if (PQresultStatus(res) == PGRES_FATAL_ERROR || PQresultStatus(res) == PGRES_BAD_RESPONSE)
			rc = result_error(pc, res, sql, err);
		else
			rc = err_set(err, SLUICE_EUSAGE, "statement did not start COPY %s",
				     want == PGRES_COPY_OUT ? "TO STDOUT" : "FROM STDIN");
		PQclear(res);
		discard_results(pc);
		return rc;
	}
	PQclear(res);
	return 0;
}

/* The results after the copy data: the row count, or the error. */
static int copy_finish(struct pg_conn *pc, const char *sql, int rc, long long *rows,
		       struct sluice_err *err)
{
	PGresult *res;

	while ((res = PQgetResult(pc->pg))) {
		switch (PQresultStatus(res)) {
		case PGRES_COMMAND_OK:
			if (rows)
				*rows = cmd_rows(res);
			break;
		case PGRES_COPY_IN:
		case PGRES_COPY_OUT:
			/* A second COPY in the same text: one per call. */
			refuse_copy(pc, res, NULL);
			if (!rc)
				rc = err_set(err, SLUICE_EUSAGE, "one COPY statement per copy_in/copy_out");
			break;
		case PGRES_TUPLES_OK:
		case PGRES_EMPTY_QUERY:
			break;
		default:
			if (!rc)
				rc = result_error(pc, res, sql, err);
			break;
		}
		PQclear(res);
	}
	return check_lost(pc, rc, err);
}

static int pg_copy_out(struct sluice_conn *c, const char *sql, sluice_write_fn fn, void *ud,
		       long long *rows, struct sluice_err *err)
{
	struct pg_conn *pc = (struct pg_conn *)c;
	char *chunk;
	int n, rc;

	if (rows)
		*rows = -1;
	if ((rc = copy_start(pc, sql, PGRES_COPY_OUT, err)))
		return rc;
	while ((n = PQgetCopyData(pc->pg, &chunk, 0)) > 0) {
		if (!rc && (rc = fn(ud, chunk, (size_t)n, err)) != 0)
			cancel_running(pc);  /* then drain what is already on its way */
		PQfreemem(chunk);
	}
	if (n == -2 && !rc)
		rc = send_error(pc, err);
	if (rc) {
		struct sluice_err ignore = SLUICE_ERR_INIT;
		copy_finish(pc, sql, 0, NULL, &ignore);
		return rc;
	}
	return copy_finish(pc, sql, 0, rows, err);
}

static int pg_copy_in(struct sluice_conn *c, const char *sql, sluice_read_fn fn, void *ud,
		      long long *rows, struct sluice_err *err)
{
	struct pg_conn *pc = (struct pg_conn *)c;
	char *chunk;
	ssize_t n;
	int rc;

	if (rows)
		*rows = -1;
	if ((rc = copy_start(pc, sql, PGRES_COPY_IN, err)))
		return rc;
	chunk = xmalloc(COPY_CHUNK);
	while ((n = fn(ud, chunk, COPY_CHUNK, err)) > 0)
		if (PQputCopyData(pc->pg, chunk, (int)n) != 1)
			break;
	free(chunk);
	if (n < 0) {
		struct buf why = BUF_INIT;
		struct sluice_err ignore = SLUICE_ERR_INIT;

		/* The source failed: abort the COPY, keep the source's error. */
		buf_printf(&why, "sluice: source failed: %s", err->msg);
		PQputCopyEnd(pc->pg, why.s);
		buf_release(&why);
		copy_finish(pc, sql, 0, NULL, &ignore);
		return (int)n;
	}
	if (n > 0 || PQputCopyEnd(pc->pg, NULL) != 1) {
		rc = send_error(pc, err);
		copy_finish(pc, sql, rc, NULL, err);
		return rc;
	}
	return copy_finish(pc, sql, 0, rows, err);
}

/* ---- about the connection ---- */

static int pg_server_version(struct sluice_conn *c, struct buf *out, struct sluice_err *err)
{
	struct pg_conn *pc = (struct pg_conn *)c;
	const char *v = PQparameterStatus(pc->pg, "server_version");
	int num;

	if (v && *v) {
		/* "15.18 (Debian 15.18-0+deb12u1)": the version is the first word. */
		buf_printf(out, "PostgreSQL %.*s", (int)strcspn(v, " "), v);
		return 0;
	}
	num = PQserverVersion(pc->pg);
	if (!num)
		return lost_error(pc, NULL, err);
	if (num >= 100000)
		buf_printf(out, "PostgreSQL %d.%d", num / 10000, num % 10000);
	else
		buf_printf(out, "PostgreSQL %d.%d.%d", num / 10000, num / 100 % 100, num % 100);
	return 0;
}

static int pg_child_env(struct sluice_conn *c, struct buf *out, struct sluice_err *err)
{
	struct pg_conn *pc = (struct pg_conn *)c;
	const char *const names[] = { "PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD" };
	const char *vals[5];
	size_t i;

	vals[0] = PQhost(pc->pg);
	vals[1] = PQport(pc->pg);
	vals[2] = PQuser(pc->pg);
	vals[3] = PQdb(pc->pg);
	vals[4] = PQpass(pc->pg);
	/* One variable per line: a newline inside a value would forge another. */
	for (i = 0; i < 5; i++)
		if (vals[i] && strchr(vals[i], '\n'))
			return err_set(err, SLUICE_EUSAGE, "connection '%s': %s contains a newline",
				       pc->name, names[i]);
	for (i = 0; i < 5; i++)
		if (vals[i] && *vals[i])
			buf_printf(out, "%s=%s\n", names[i], vals[i]);
	return 0;
}

/* pg_connect() logs in with password:, or dbt's spelling pass:. */
static const char **pg_secrets(const struct val *s, struct arena *a)
{
	static const char *const keys[] = { "password", "pass" };
	const char **out = arena_alloc(a, (sizeof(keys) / sizeof(keys[0]) + 1) * sizeof(char *));
	size_t n = 0, i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		const char *v = val_get_str(s, keys[i], NULL);
		if (v && *v)
			out[n++] = v;
	}
	out[n] = NULL;
	return out;
}

const struct sluice_connector pg_connector = {
	.name = "postgres",
	.connect = pg_connect,
	.close = pg_close,
	.exec = pg_exec,
	.query = pg_query,
	.cancel = pg_cancel,
	.copy_out = pg_copy_out,
	.copy_in = pg_copy_in,
	.server_version = pg_server_version,
	.child_env = pg_child_env,
	.secrets = pg_secrets,
	.shutdown = pg_shutdown,
};
