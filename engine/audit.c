/*
 * audit.c: the statement log and the connection shim that feeds it; see
 * audit.h. One wrapper vtable per driver, made on first use, so the
 * engine's capability checks (copy_in? load_csv?) see what the driver has.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "audit.h"
#include "ui.h"
#include "util/clock.h"
#include "util/hash.h"
#include "util/xalloc.h"

struct audit_log {
	int fd;
	char *invocation_id, *user;
	pthread_mutex_t mu;          /* one line at a time */
	int failed;                  /* a write failed: said once */
};

struct audit_conn {
	struct sluice_conn base;
	struct sluice_conn *inner;
	struct audit_log *log;
};

static _Thread_local const char *current_node;

void audit_set_node(const char *unique_id)
{
	current_node = unique_id;
}

const char *audit_node(void)
{
	return current_node;
}

int audit_open(struct audit_log **out, const char *path, const char *invocation_id, const char *user,
	       struct sluice_err *err)
{
	struct audit_log *l;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);

	*out = NULL;
	if (fd < 0)
		return err_set(err, SLUICE_EIO, "%s: %s", path, strerror(errno));
	l = xcalloc(1, sizeof(*l));
	l->fd = fd;
	l->invocation_id = xstrdup(invocation_id);
	l->user = xstrdup(user);
	pthread_mutex_init(&l->mu, NULL);
	*out = l;
	return 0;
}

void audit_close(struct audit_log *l)
{
	if (!l)
		return;
	close(l->fd);
	free(l->invocation_id);
	free(l->user);
	pthread_mutex_destroy(&l->mu);
	free(l);
}

void audit_sql_hash(const char *sql, char out[33])
{
	/* the comment names the run: leave it out, so one statement hashes alike in every run */
	if (!strncmp(sql, "/* sluice run=", 14)) {
		const char *end = strstr(sql, "*/");
		if (end) {
			sql = end + 2;
			if (*sql == '\n')
				sql++;
		}
	}
	hash_hex(sql, strlen(sql), out);
}

/* One line, with its newline, in one write() under the mutex. */
static void log_line(struct audit_log *l, const char *line)
{
	struct buf b = BUF_INIT;
	ssize_t n;

	buf_printf(&b, "%s\n", line);
	pthread_mutex_lock(&l->mu);
	do
		n = write(l->fd, b.s, b.len);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)b.len && !l->failed) {
		l->failed = 1;
		ui_warn("target/audit.jsonl: %s: statements are no longer logged", n < 0 ? strerror(errno) : "short write");
	}
	pthread_mutex_unlock(&l->mu);
	buf_release(&b);
}

/* One call to the driver, timed. */
struct call {
	double started_wall, started;
	const char *what;
	const char *sql;
};

static void call_begin(struct call *c, const char *what, const char *sql)
{
	c->started_wall = now_seconds();
	c->started = clock_monotonic();
	c->what = what;
	c->sql = sql;
}

static void call_end(struct audit_conn *a, const struct call *c, int rc, long long rows, const struct sluice_err *err)
{
	struct audit_log *l = a->log;
	json_t *o = json_object();
	char ts[64], hash[HASH_HEX];
	char *line;

	format_iso_time(c->started_wall, ts, sizeof(ts));
	audit_sql_hash(c->sql, hash);
	json_object_set_new(o, "time", json_string(ts));
	json_object_set_new(o, "invocation_id", json_string(l->invocation_id));
	json_object_set_new(o, "node", current_node ? json_string(current_node) : json_null());
	json_object_set_new(o, "user", json_string(l->user));
	json_object_set_new(o, "connection", json_string(a->base.name ? a->base.name : ""));
	json_object_set_new(o, "call", json_string(c->what));
	json_object_set_new(o, "sql_hash", json_string(hash));
	json_object_set_new(o, "rows", !rc && rows >= 0 ? json_integer(rows) : json_null());
	json_object_set_new(o, "duration_ms", json_real((clock_monotonic() - c->started) * 1000.0));
	json_object_set_new(o, "status", json_string(!rc ? "ok" : rc == SLUICE_ECANCEL ? "cancelled" : "error"));
	if (rc && err && err->sqlstate[0])
		json_object_set_new(o, "sqlstate", json_string(err->sqlstate));
	line = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!line)
		return;
	log_line(l, line);
	free(line);
}

/* ---- the shim ---- */

static struct sluice_conn *inner(struct sluice_conn *c)
{
	return ((struct audit_conn *)c)->inner;
}

static void a_close(struct sluice_conn *c)
{
	conn_close(inner(c));
	free(c);
}

static int a_exec(struct sluice_conn *c, const char *sql, long long *rows, struct sluice_err *err)
{
	struct sluice_conn *in = inner(c);
	long long n = -1;
	struct call k;
	int rc;

	call_begin(&k, "exec", sql);
	rc = in->drv->exec(in, sql, &n, err);
	call_end((struct audit_conn *)c, &k, rc, n, err);
	if (rows)
		*rows = n;
	return rc;
}

struct counted {
	sluice_row_fn fn;
	void *ud;
	long long rows;
};

static int count_row(void *ud, const struct sluice_row *row)
{
	struct counted *k = ud;

	k->rows++;
	return k->fn(k->ud, row);
}

static int a_query(struct sluice_conn *c, const char *sql, sluice_row_fn fn, void *ud, struct sluice_err *err)
{
	struct sluice_conn *in = inner(c);
	struct counted cnt = { fn, ud, 0 };
	struct call k;
	int rc;

	call_begin(&k, "query", sql);
	rc = in->drv->query(in, sql, count_row, &cnt, err);
	call_end((struct audit_conn *)c, &k, rc, cnt.rows, err);
	return rc;
}

static int a_cancel(struct sluice_conn *c)
{
	struct sluice_conn *in = inner(c);

	return in->drv->cancel(in);
}

static int a_copy_out(struct sluice_conn *c, const char *sql, sluice_write_fn fn, void *ud, long long *rows,
		      struct sluice_err *err)
{
	struct sluice_conn *in = inner(c);
	long long n = -1;
	struct call k;
	int rc;

	call_begin(&k, "copy_out", sql);
	rc = in->drv->copy_out(in, sql, fn, ud, &n, err);
	call_end((struct audit_conn *)c, &k, rc, n, err);
	if (rows)
		*rows = n;
	return rc;
}

static int a_copy_in(struct sluice_conn *c, const char *sql, sluice_read_fn fn, void *ud, long long *rows,
		     struct sluice_err *err)
{
	struct sluice_conn *in = inner(c);
	long long n = -1;
	struct call k;
	int rc;

	call_begin(&k, "copy_in", sql);
	rc = in->drv->copy_in(in, sql, fn, ud, &n, err);
	call_end((struct audit_conn *)c, &k, rc, n, err);
	if (rows)
		*rows = n;
	return rc;
}

static int a_load_csv(struct sluice_conn *c, const char *rel, size_t ncols, sluice_read_fn fn, void *ud,
		      long long *rows, struct sluice_err *err)
{
	struct sluice_conn *in = inner(c);
	long long n = -1;
	struct call k;
	int rc;

	/* the batched INSERTs into rel: hashed as the relation's name */
	call_begin(&k, "load_csv", rel);
	rc = in->drv->load_csv(in, rel, ncols, fn, ud, &n, err);
	call_end((struct audit_conn *)c, &k, rc, n, err);
	if (rows)
		*rows = n;
	return rc;
}

static int a_server_version(struct sluice_conn *c, struct buf *out, struct sluice_err *err)
{
	struct sluice_conn *in = inner(c);

	return in->drv->server_version(in, out, err);
}

static int a_driver_version(struct sluice_conn *c, struct buf *out, struct sluice_err *err)
{
	struct sluice_conn *in = inner(c);

	return in->drv->driver_version(in, out, err);
}

static int a_child_env(struct sluice_conn *c, struct buf *out, struct sluice_err *err)
{
	struct sluice_conn *in = inner(c);

	return in->drv->child_env(in, out, err);
}

/* One shim vtable per driver; there are a handful of drivers. */
#define SHIMS 16
static struct {
	const struct sluice_connector *drv;
	struct sluice_connector shim;
} shims[SHIMS];
static size_t nshims;
static pthread_mutex_t shims_mu = PTHREAD_MUTEX_INITIALIZER;

#define SLOT(name, fn) (d->name ? fn : NULL)

static const struct sluice_connector *shim_of(const struct sluice_connector *d)
{
	const struct sluice_connector *found = NULL;
	size_t i;

	pthread_mutex_lock(&shims_mu);
	for (i = 0; i < nshims && !found; i++)
		if (shims[i].drv == d)
			found = &shims[i].shim;
	if (!found && nshims < SHIMS) {
		struct sluice_connector *w = &shims[nshims].shim;
		shims[nshims++].drv = d;
		w->name = d->name;
		w->close = a_close;
		w->exec = a_exec;
		w->query = a_query;
		w->cancel = SLOT(cancel, a_cancel);
		w->copy_out = SLOT(copy_out, a_copy_out);
		w->copy_in = SLOT(copy_in, a_copy_in);
		w->load_csv = SLOT(load_csv, a_load_csv);
		w->server_version = SLOT(server_version, a_server_version);
		w->driver_version = SLOT(driver_version, a_driver_version);
		w->child_env = SLOT(child_env, a_child_env);
		w->secrets = d->secrets;   /* reads settings, not a connection */
		found = w;
	}
	pthread_mutex_unlock(&shims_mu);
	return found;
}

struct sluice_conn *audit_wrap(struct audit_log *log, struct sluice_conn *c)
{
	const struct sluice_connector *shim;
	struct audit_conn *a;

	if (!log || !c || !(shim = shim_of(c->drv)))
		return c;
	a = xcalloc(1, sizeof(*a));
	a->base.drv = shim;
	a->base.name = c->name;
	a->inner = c;
	a->log = log;
	return &a->base;
}
