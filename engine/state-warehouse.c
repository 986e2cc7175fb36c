/*
 * state-warehouse.c: the `warehouse` state backend, two tables in the
 * sluice_meta schema of the default connection, so that a fresh checkout
 * on an ephemeral worker sees what yesterday's run remembered:
 *
 *   sluice_meta.node_state  one row per (project, target, unique_id): the record as JSON text
 *   sluice_meta.locks       who holds the run lock of a (project, target), for messages
 *   sluice_meta.run_history one row per run: its history record as JSON text
 *
 * run_history is created by the first run that writes history, not at
 * open: a schema an administrator prepared with the first two tables
 * only keeps working, with history as a warning until it is added.
 *
 * The lock itself is the dialect's session lock (pg_try_advisory_lock on
 * PostgreSQL) on a dedicated connection: the server drops it when the
 * session ends, so a run killed with -9 cannot leave it behind. The SQL is
 * deliberately plain (text columns, DELETE + INSERT instead of upserts) so
 * that Redshift runs it too. Not for the run's own statements: this
 * connection is the state's alone.
 */
#define SLUICE_STATE_BACKEND
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>
#include "json.h"
#include "state.h"
#include "util/xalloc.h"

/* Redshift's varchar limit, in bytes; the record column is declared with it. */
#define RECORD_MAX 65535

static const char *const schema_sql[] = {
	"CREATE SCHEMA IF NOT EXISTS sluice_meta",
	"CREATE TABLE IF NOT EXISTS sluice_meta.node_state (project varchar(256), target varchar(256), "
	"unique_id varchar(1024), record varchar(65535), updated_at timestamp, invocation_id varchar(64))",
	"CREATE TABLE IF NOT EXISTS sluice_meta.locks (project varchar(256), target varchar(256), "
	"holder varchar(1024), since timestamp)",
};

struct wh_state {
	struct state base;
	struct sluice_conn *conn;
	const struct dialect *d;
	long long key;           /* the lock's key: a hash of project and target */
	char *holder;            /* how our row in sluice_meta.locks names us, once locked */
	pthread_mutex_t mu;      /* one connection: one statement at a time */
};

static int db_error(struct sluice_err *err)
{
	return err_prefix(err, "state (warehouse)");
}

static int run(struct wh_state *w, const char *sql, struct sluice_err *err)
{
	if (w->conn->drv->exec(w->conn, sql, NULL, err))
		return db_error(err);
	return 0;
}

/* Statements wrapped in the dialect's BEGIN/COMMIT, sent at once; rolled back on error. */
static int run_transaction(struct wh_state *w, const char *body, struct sluice_err *err)
{
	struct buf sql = BUF_INIT;
	int rc;

	buf_printf(&sql, "%s;\n%s;\n%s", w->d->begin, body, w->d->commit);
	rc = w->conn->drv->exec(w->conn, sql.s, NULL, err);
	if (rc) {
		struct sluice_err ignored = SLUICE_ERR_INIT;
		w->conn->drv->exec(w->conn, w->d->rollback, NULL, &ignored);
	}
	buf_release(&sql);
	return rc;
}

/* "project = '...' AND target = '...'": st's, or target's of the same project */
static void where_target(struct wh_state *w, const char *target, struct buf *b)
{
	buf_puts(b, "project = ");
	dialect_literal(w->d, b, w->base.project);
	buf_puts(b, " AND target = ");
	dialect_literal(w->d, b, target);
}

static void where_scope(struct wh_state *w, struct buf *b)
{
	where_target(w, w->base.target, b);
}

/* "(lit, lit, ...)" of n strings. */
static void values_row(struct wh_state *w, struct buf *b, const char *const *vals, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		buf_puts(b, i ? ", " : "(");
		dialect_literal(w->d, b, vals[i]);
	}
	buf_addc(b, ')');
}

/* Concurrent CREATE ... IF NOT EXISTS can still collide in the catalog: that means it exists. */
static int already_there(const struct sluice_err *err)
{
	return !strcmp(err->sqlstate, "23505") || !strcmp(err->sqlstate, "42P06") ||
	       !strcmp(err->sqlstate, "42P07");
}

static int create_tables(struct wh_state *w, struct sluice_err *err)
{
	size_t i;
	int rc = 0, tries;

	for (i = 0; i < sizeof(schema_sql) / sizeof(schema_sql[0]); i++) {
		for (tries = 0; tries < 3; tries++) {
			rc = run(w, schema_sql[i], err);
			if (!rc || !already_there(err))
				break;
		}
		if (rc)
			return rc;
	}
	return 0;
}

static void wh_free(struct wh_state *w)
{
	conn_close(w->conn);
	free(w->holder);
	pthread_mutex_destroy(&w->mu);
	state_base_release(&w->base);
	free(w);
}

static int wh_open(const struct state_opts *o, struct state **out, struct sluice_err *err)
{
	struct wh_state *w;
	struct buf name = BUF_INIT;
	XXH64_hash_t h;
	int rc;

	if (!o->connect)
		return err_set(err, SLUICE_EUSAGE, "state: the warehouse backend needs a connection (internal error)");
	w = xcalloc(1, sizeof(*w));
	state_base_init(&w->base, &state_warehouse, o);
	pthread_mutex_init(&w->mu, NULL);
	buf_printf(&name, "sluice:%s:%s", o->project, o->target);
	h = XXH3_64bits(name.s, name.len);
	memcpy(&w->key, &h, sizeof(w->key));
	buf_release(&name);

	if ((rc = o->connect(o->connect_ud, &w->conn, &w->d, err))) {
		w->conn = NULL;
		db_error(err);
		goto fail;
	}
	if ((rc = create_tables(w, err)))
		goto fail;
	*out = &w->base;
	return 0;
fail:
	wh_free(w);
	return rc;
}

/* First column of the first row. */
struct first {
	struct buf v[2];
	int rows;
};

static int keep_first(void *ud, const struct sluice_row *row)
{
	struct first *f = ud;
	size_t i;

	if (f->rows++)
		return 0;
	for (i = 0; i < 2 && i < row->ncols; i++)
		if (row->values[i])
			buf_add(&f->v[i], row->values[i], row->lens[i]);
	return 0;
}

static int query_first(struct wh_state *w, const char *sql, struct first *f, struct sluice_err *err)
{
	memset(f, 0, sizeof(*f));
	buf_init(&f->v[0]);
	buf_init(&f->v[1]);
	if (w->conn->drv->query(w->conn, sql, keep_first, f, err))
		return db_error(err);
	return 0;
}

static void first_release(struct first *f)
{
	buf_release(&f->v[0]);
	buf_release(&f->v[1]);
}

static int is_true(const char *s)
{
	return !strcmp(s, "t") || !strcmp(s, "true") || !strcmp(s, "TRUE") || !strcmp(s, "1");
}

static void unlock_quietly(struct wh_state *w)
{
	struct sluice_err ignored = SLUICE_ERR_INIT;
	struct buf sql = BUF_INIT;
	struct first f;

	w->d->unlock(&sql, w->key);
	if (!query_first(w, sql.s, &f, &ignored))
		first_release(&f);
	buf_release(&sql);
}

/* Who holds it, from the row the holder wrote; nothing when there is none. */
static int read_holder(struct wh_state *w, struct buf *holder, struct buf *since, struct sluice_err *err)
{
	struct buf sql = BUF_INIT;
	struct first f;
	int rc;

	/* Formatted here rather than by DateStyle; made ISO-8601 below ("T", "Z": it is UTC). */
	buf_puts(&sql, "SELECT holder, to_char(since, 'YYYY-MM-DD HH24:MI:SS') FROM sluice_meta.locks WHERE ");
	where_scope(w, &sql);
	buf_puts(&sql, " ORDER BY since DESC LIMIT 1");
	rc = query_first(w, sql.s, &f, err);
	if (!rc) {
		char *sp = memchr(f.v[1].s, ' ', f.v[1].len);
		buf_add(holder, f.v[0].s, f.v[0].len);
		if (sp)
			*sp = 'T';
		if (f.v[1].len)
			buf_printf(since, "%sZ", f.v[1].s);
		first_release(&f);
	}
	buf_release(&sql);
	return rc;
}

static int write_holder(struct wh_state *w, struct sluice_err *err)
{
	struct buf h = BUF_INIT, sql = BUF_INIT;
	char now[32];
	int rc;

	state_holder_text(&h, w->base.user, (long long)getpid(), w->base.host, w->base.invocation_id);
	state_now_utc(now, 1);
	buf_puts(&sql, "DELETE FROM sluice_meta.locks WHERE ");
	where_scope(w, &sql);
	buf_puts(&sql, ";\nINSERT INTO sluice_meta.locks (project, target, holder, since) VALUES (");
	dialect_literal(w->d, &sql, w->base.project);
	buf_puts(&sql, ", ");
	dialect_literal(w->d, &sql, w->base.target);
	buf_puts(&sql, ", ");
	dialect_literal(w->d, &sql, h.s);
	buf_puts(&sql, ", ");
	dialect_literal(w->d, &sql, now);
	buf_addc(&sql, ')');
	rc = run_transaction(w, sql.s, err);
	buf_release(&sql);
	if (rc) {
		buf_release(&h);
		return db_error(err);
	}
	w->holder = buf_detach(&h, NULL);
	return rc;
}

static int wh_lock(struct state *st, struct buf *holder, struct buf *since, struct sluice_err *err)
{
	struct wh_state *w = (struct wh_state *)st;
	struct buf sql = BUF_INIT;
	struct first f;
	int rc, got;

	if (!w->d->try_lock || !w->d->unlock)
		return err_set(err, SLUICE_ENOTSUP, "state: warehouse locking is not supported by dialect %s", w->d->name);
	pthread_mutex_lock(&w->mu);
	w->d->try_lock(&sql, w->key);
	rc = query_first(w, sql.s, &f, err);
	buf_release(&sql);
	if (rc)
		goto out;
	got = f.rows && is_true(f.v[0].s);
	first_release(&f);
	if (!got) {
		/* Without the row (being written, or unreadable) the message says so. */
		struct sluice_err ignored = SLUICE_ERR_INIT;
		read_holder(w, holder, since, &ignored);
		rc = err_set(err, SLUICE_ELOCK, "state (warehouse): locked");
		goto out;
	}
	if ((rc = write_holder(w, err)))
		unlock_quietly(w);
out:
	pthread_mutex_unlock(&w->mu);
	return rc;
}

struct load_ctx {
	struct arena *a;
	struct val *records;
	struct sluice_err *err;
	int bad_row;             /* err says which record */
};

static int load_row(void *ud, const struct sluice_row *row)
{
	struct load_ctx *c = ud;
	const char *uid = row->values[0];
	json_error_t je;
	json_t *j;

	if (!uid)
		return 0;
	c->bad_row = 1;
	if (!row->values[1])
		return err_set(c->err, SLUICE_EIO, "state (warehouse): the record of %s in sluice_meta.node_state is NULL; "
			       "delete that row to rebuild the node", uid);
	j = json_loadb(row->values[1], row->lens[1], 0, &je);
	if (!j || !json_is_object(j)) {
		err_set(c->err, SLUICE_EIO, "state (warehouse): the record of %s in sluice_meta.node_state is not a JSON "
			"object (%s); delete that row to rebuild the node", uid, j ? "another JSON value" : je.text);
		json_decref(j);
		return SLUICE_EIO;
	}
	c->bad_row = 0;
	/* Rows come oldest first, so a duplicate left by a crash is replaced by the newest. */
	val_dict_set(c->a, c->records, arena_strndup(c->a, uid, row->lens[0]), json_to_val(c->a, j));
	json_decref(j);
	return 0;
}

static int wh_load_target(struct state *st, const char *target, struct arena *a, struct val *records,
			  struct sluice_err *err)
{
	struct wh_state *w = (struct wh_state *)st;
	struct load_ctx c = { a, records, err, 0 };
	struct buf sql = BUF_INIT;
	int rc;

	buf_puts(&sql, "SELECT unique_id, record FROM sluice_meta.node_state WHERE ");
	where_target(w, target, &sql);
	buf_puts(&sql, " ORDER BY updated_at");
	pthread_mutex_lock(&w->mu);
	rc = w->conn->drv->query(w->conn, sql.s, load_row, &c, err);
	pthread_mutex_unlock(&w->mu);
	/* A row callback's own error already says where; the driver's needs the prefix. */
	if (rc && !c.bad_row)
		db_error(err);
	buf_release(&sql);
	return rc;
}

static int wh_load(struct state *st, struct arena *a, struct val *records, struct sluice_err *err)
{
	return wh_load_target(st, st->target, a, records, err);
}

static int wh_put(struct state *st, const char *unique_id, const char *record, size_t len,
		  struct sluice_err *err)
{
	struct wh_state *w = (struct wh_state *)st;
	struct buf sql = BUF_INIT;
	char now[32];
	int rc;

	if (len > RECORD_MAX)
		return err_set(err, SLUICE_EIO, "state (warehouse): the record of %s is %zu bytes, more than the %d "
			       "sluice_meta.node_state.record holds", unique_id, len, RECORD_MAX);
	state_now_utc(now, 1);
	buf_puts(&sql, "DELETE FROM sluice_meta.node_state WHERE ");
	where_scope(w, &sql);
	buf_puts(&sql, " AND unique_id = ");
	dialect_literal(w->d, &sql, unique_id);
	buf_puts(&sql, ";\nINSERT INTO sluice_meta.node_state (project, target, unique_id, record, updated_at, "
		 "invocation_id) VALUES ");
	{
		const char *row[] = { w->base.project, w->base.target, unique_id, record, now, w->base.invocation_id };
		values_row(w, &sql, row, 6);
	}
	pthread_mutex_lock(&w->mu);
	rc = run_transaction(w, sql.s, err);
	pthread_mutex_unlock(&w->mu);
	buf_release(&sql);
	if (rc)
		err_prefix(err, "state (warehouse): record for %s not saved", unique_id);
	return rc;
}

static int wh_forget(struct state *st, const char *unique_id, struct sluice_err *err)
{
	struct wh_state *w = (struct wh_state *)st;
	struct buf sql = BUF_INIT;
	int rc;

	buf_puts(&sql, "DELETE FROM sluice_meta.node_state WHERE ");
	where_scope(w, &sql);
	buf_puts(&sql, " AND unique_id = ");
	dialect_literal(w->d, &sql, unique_id);
	pthread_mutex_lock(&w->mu);
	rc = run(w, sql.s, err);
	pthread_mutex_unlock(&w->mu);
	buf_release(&sql);
	if (rc)
		err_prefix(err, "record for %s not forgotten", unique_id);
	return rc;
}

static const char history_table_sql[] =
	"CREATE TABLE IF NOT EXISTS sluice_meta.run_history (project varchar(256), target varchar(256), "
	"invocation_id varchar(64), record varchar(65535), started_at timestamp)";

static int wh_history_put(struct state *st, const char *run, size_t len, struct sluice_err *err)
{
	struct wh_state *w = (struct wh_state *)st;
	struct buf sql = BUF_INIT;
	char now[32];
	int rc = 0, tries;

	if (len > RECORD_MAX)
		return err_set(err, SLUICE_EIO, "state (warehouse): run history not saved: the record is %zu bytes, more "
			       "than the %d sluice_meta.run_history.record holds", len, RECORD_MAX);
	state_now_utc(now, 1);
	buf_puts(&sql, "INSERT INTO sluice_meta.run_history (project, target, invocation_id, record, started_at) VALUES ");
	{
		const char *row[] = { w->base.project, w->base.target, w->base.invocation_id, run, now };
		values_row(w, &sql, row, 5);
	}
	pthread_mutex_lock(&w->mu);
	for (tries = 0; tries < 3; tries++) {
		rc = w->conn->drv->exec(w->conn, history_table_sql, NULL, err);
		if (!rc || !already_there(err))
			break;
	}
	if (!rc)
		rc = w->conn->drv->exec(w->conn, sql.s, NULL, err);
	pthread_mutex_unlock(&w->mu);
	buf_release(&sql);
	if (rc)
		err_prefix(err, "state (warehouse): run history not saved");
	return rc;
}

static int history_row(void *ud, const struct sluice_row *row)
{
	json_t *j;

	if (row->ncols < 1 || !row->values[0])
		return 0;
	/* a damaged row is left out: history is a report, not a decision */
	if ((j = json_loadb(row->values[0], row->lens[0], 0, NULL)) && json_is_object(j))
		json_array_append(ud, j);
	json_decref(j);
	return 0;
}

static int wh_history_load(struct state *st, int n, json_t *runs, struct sluice_err *err)
{
	struct wh_state *w = (struct wh_state *)st;
	struct buf sql = BUF_INIT;
	int rc;

	/* invocation ids are UUIDv7: they sort by start time */
	buf_puts(&sql, "SELECT record FROM sluice_meta.run_history WHERE ");
	where_scope(w, &sql);
	buf_printf(&sql, " ORDER BY invocation_id DESC LIMIT %d", n);
	pthread_mutex_lock(&w->mu);
	rc = w->conn->drv->query(w->conn, sql.s, history_row, runs, err);
	pthread_mutex_unlock(&w->mu);
	buf_release(&sql);
	if (rc && !strcmp(err->sqlstate, "42P01")) {
		/* no run has written history here yet */
		memset(err, 0, sizeof(*err));
		json_array_clear(runs);
		return 0;
	}
	return rc ? db_error(err) : 0;
}

static int wh_finish(struct state *st, struct sluice_err *err)
{
	(void)st;
	(void)err;
	return 0;
}

static void wh_close(struct state *st)
{
	struct wh_state *w = (struct wh_state *)st;

	if (st->locked && w->holder) {
		struct sluice_err ignored = SLUICE_ERR_INIT;
		struct buf sql = BUF_INIT;

		buf_puts(&sql, "DELETE FROM sluice_meta.locks WHERE ");
		where_scope(w, &sql);
		buf_puts(&sql, " AND holder = ");
		dialect_literal(w->d, &sql, w->holder);
		run(w, sql.s, &ignored);
		buf_release(&sql);
		unlock_quietly(w);
	}
	wh_free(w);
}

const struct state_backend state_warehouse = {
	.name = "warehouse",
	.open = wh_open,
	.lock = wh_lock,
	.load = wh_load,
	.load_target = wh_load_target,
	.put = wh_put,
	.forget = wh_forget,
	.history_put = wh_history_put,
	.history_load = wh_history_load,
	.finish = wh_finish,
	.close = wh_close,
};
