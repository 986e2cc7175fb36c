/*
 * sources.c: the versions change detection compares (sources.h), and the
 * work behind `sluice sources instrument`. Wanted nodes are grouped by
 * connection and by method, and each group costs one batched metadata
 * query whose SQL the dialect writes: this file never names a warehouse
 * and never sends one query per table.
 *
 * Not here: what a changed version means for a model (fingerprint.c), or
 * where versions are kept between runs (state.c).
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "conn.h"
#include "sources.h"
#include "stage.h"
#include "ui.h"
#include "util/arena.h"
#include "util/clock.h"
#include "util/strmap.h"
#include "util/xalloc.h"

enum cd_method { CD_STATS, CD_TRIGGER, CD_QUERY, CD_LOADED_AT, CD_ALWAYS, CD_NEVER, CD__COUNT };

static const char *const cd_names[CD__COUNT] = {
	"stats", "trigger", "query", "loaded_at_field", "always", "never"
};

#define CD_KNOWN "stats, trigger, query, loaded_at_field, always, never"
/* A typo such as `lag_tolerance: 2h` should not park every run for hours. */
#define LAG_MAX_MS 600000L

/* How one wanted node is checked. */
struct cd {
	const struct node *n;
	enum cd_method method;
	long lag_ms;               /* stats: lag_tolerance */
	const char *arg;           /* query: the SQL; loaded_at_field: the expression */
};

/* "<props path>:<line>: source <source>.<table>: <message>" (sources), "model <name>: ..." */
static int node_err(struct sluice_err *err, int code, const struct node *n, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int node_err(struct sluice_err *err, int code, const struct node *n, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n->type == NODE_SOURCE)
		return err_set(err, code, "%s:%d: source %s.%s: %s", n->source->path, n->source->line,
			       n->source->source_name, n->source->name, msg);
	return err_set(err, code, "model %s: %s", n->name, msg);
}

static char *str_concat(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *s = xmalloc(la + lb + 1);

	memcpy(s, a, la);
	memcpy(s + la, b, lb + 1);
	return s;
}

/* lag_tolerance in milliseconds, up to LAG_MAX_MS. */
static int parse_lag(const struct val *v, long *ms)
{
	double secs;

	if (val_duration(v, &secs) || secs * 1000 > LAG_MAX_MS)
		return -1;
	*ms = lround(secs * 1000);
	return 0;
}

/* A config value for an error message. */
static void shown(const struct val *v, char *out, size_t n)
{
	struct buf b = BUF_INIT;

	val_format(v, &b);
	snprintf(out, n, "%s", b.s);
	buf_release(&b);
}

static int present(const struct val *v)
{
	return v && v->kind != V_NONE;
}

/* Which method checks node n, from its config (sources) or by rule (models). */
static int classify(const struct node *n, struct cd *out, struct sluice_err *err)
{
	const struct val *cfg = &n->config, *v, *lag;
	char text[256];
	int m;

	memset(out, 0, sizeof(*out));
	out->n = n;
	out->method = CD_STATS;
	if (n->type != NODE_SOURCE)
		return 0;
	v = val_get(cfg, "change_detection");
	if (present(v)) {
		for (m = 0; m < CD__COUNT; m++)
			if (v->kind == V_STR && !strcmp(v->u.str.s, cd_names[m]))
				break;
		if (m == CD__COUNT) {
			shown(v, text, sizeof(text));
			return node_err(err, SLUICE_EUSAGE, n, "unknown change_detection '%s' (known: " CD_KNOWN ")",
					text);
		}
		out->method = (enum cd_method)m;
	} else if (present(val_get(cfg, "query"))) {
		out->method = CD_QUERY;
	} else if (present(val_get(cfg, "loaded_at_field"))) {
		out->method = CD_LOADED_AT;
	}
	if (out->method == CD_QUERY) {
		out->arg = val_get_str(cfg, "query", NULL);
		if (!out->arg || !*out->arg)
			return node_err(err, SLUICE_EUSAGE, n,
					"change_detection query needs `query: <SQL returning one value>`");
	} else if (out->method == CD_LOADED_AT) {
		out->arg = val_get_str(cfg, "loaded_at_field", NULL);
		if (!out->arg || !*out->arg)
			return node_err(err, SLUICE_EUSAGE, n,
					"change_detection loaded_at_field needs `loaded_at_field: <column>`");
	}
	lag = val_get(cfg, "lag_tolerance");
	if (present(lag) && parse_lag(lag, &out->lag_ms)) {
		shown(lag, text, sizeof(text));
		return node_err(err, SLUICE_EUSAGE, n,
				"lag_tolerance takes a duration up to 10m such as 2s or 500ms, not '%s'", text);
	}
	if (out->method != CD_STATS)
		out->lag_ms = 0;
	return 0;
}

static int text_true(const char *s)
{
	return s && (!strcmp(s, "t") || !strcmp(s, "true") || !strcmp(s, "1"));
}

/* ---- one batch: the distinct tables of some nodes on one connection ---- */

struct batch {
	struct session *s;
	const char *conn_name;
	struct sluice_conn *conn;
	const struct dialect *d;
	struct source_versions *out;
	struct cd **items;
	size_t n;
	/* distinct tables: items[j] is table tab[j] */
	const char **schemas, **idents;
	size_t ntables;
	size_t *tab;
	struct strmap index;           /* "schema\x1fident" (in arena) -> table + 1 */
	struct arena arena;
	struct buf key;
};

static void batch_init(struct batch *bt, struct session *s, const char *conn_name, struct sluice_conn *conn,
		       const struct dialect *d, struct source_versions *out, struct cd **items, size_t n)
{
	size_t j, cap = n ? n : 1;

	memset(bt, 0, sizeof(*bt));
	bt->s = s;
	bt->conn_name = conn_name;
	bt->conn = conn;
	bt->d = d;
	bt->out = out;
	bt->items = items;
	bt->n = n;
	bt->schemas = xcalloc(cap, sizeof(*bt->schemas));
	bt->idents = xcalloc(cap, sizeof(*bt->idents));
	bt->tab = xcalloc(cap, sizeof(*bt->tab));
	arena_init(&bt->arena);
	buf_init(&bt->key);
	for (j = 0; j < n; j++) {
		const struct node *nd = items[j]->n;
		char *k = arena_printf(&bt->arena, "%s\x1f%s", nd->schema, nd->identifier);
		uintptr_t t = (uintptr_t)strmap_get(&bt->index, k);
		if (!t) {
			bt->schemas[bt->ntables] = nd->schema;
			bt->idents[bt->ntables] = nd->identifier;
			t = ++bt->ntables;
			strmap_put(&bt->index, k, (void *)t);
		}
		bt->tab[j] = t - 1;
	}
}

static void batch_release(struct batch *bt)
{
	free(bt->schemas);
	free(bt->idents);
	free(bt->tab);
	strmap_release(&bt->index);
	arena_release(&bt->arena);
	buf_release(&bt->key);
}

/* The distinct table a (schema, name) row is about, or -1. */
static long batch_table(struct batch *bt, const char *schema, const char *name)
{
	uintptr_t t;

	if (!schema || !name)
		return -1;
	buf_reset(&bt->key);
	buf_printf(&bt->key, "%s\x1f%s", schema, name);
	t = (uintptr_t)strmap_get(&bt->index, bt->key.s);
	return t ? (long)t - 1 : -1;
}

static int batch_query(struct batch *bt, const char *sql, sluice_row_fn fn, void *ud, struct sluice_err *err)
{
	bt->out->queries++;
	return bt->conn->drv->query(bt->conn, sql, fn, ud, err);
}

static void set_version(struct batch *bt, size_t j, char *v)
{
	size_t i = bt->items[j]->n->idx;

	free(bt->out->version[i]);
	bt->out->version[i] = v;
}

/* ---- stats ---- */

struct pending {
	size_t n;
	double longest;                /* seconds the slowest may still take */
	struct buf pids;               /* the first few, for the message */
	char *as_of;                   /* the server's time of the first look, quoted (heap) */
};

static int pending_row(void *ud, const struct sluice_row *row)
{
	struct pending *p = ud;
	double left;

	if (row->ncols < 3 || !row->values[0] || !row->values[1] || !row->values[2])
		return 0;
	if (!p->as_of) {
		struct buf q = BUF_INIT;
		dialect_quote_literal(&q, row->values[2]);
		p->as_of = buf_detach(&q, NULL);
	}
	left = strtod(row->values[1], NULL);
	if (left > p->longest)
		p->longest = left;
	if (p->n++ < 5)
		buf_printf(&p->pids, "%s%s", p->pids.len ? ", " : "", row->values[0]);
	return 0;
}

#define PENDING_WAIT_MAX 11.0          /* seconds: the longest a session holds counts, and a margin */

/*
 * Before counting: wait while another session of the database may still
 * hold the counts of a write it committed (dialect pending_stats_query),
 * so that every write committed before the run started shows, whether
 * its writer went idle or ended. Bounded; polls every 100 ms; says so
 * once when it waits. What it cannot wait for is in
 * docs/change-detection.md.
 */
static void wait_pending_stats(struct batch *bt)
{
	double start = clock_monotonic();
	struct pending p = { 0, 0, BUF_INIT, NULL };
	struct buf q = BUF_INIT;
	int told = 0;

	if (!bt->d->pending_stats_query)
		return;
	for (;;) {
		struct sluice_err ignored = SLUICE_ERR_INIT;
		double waited = clock_monotonic() - start;
		int rc;
		p.n = 0;
		p.longest = 0;
		buf_reset(&p.pids);
		buf_reset(&q);
		bt->d->pending_stats_query(&q, p.as_of);
		rc = bt->conn->drv->query(bt->conn, q.s, pending_row, &p, &ignored);
		if (rc || !p.n || waited >= PENDING_WAIT_MAX)
			break;
		/* a session on its way out is gone in milliseconds: say nothing for those */
		if (waited >= 0.5 && !told++)
			ui_info("connection '%s': waiting up to %.1f s more for %zu session%s that may not have "
				"published the row counts of %s last commit yet (pid %s%s)",
				bt->conn_name, p.longest < PENDING_WAIT_MAX - waited ? p.longest : PENDING_WAIT_MAX - waited,
				p.n, p.n == 1 ? "" : "s", p.n == 1 ? "its" : "their", p.pids.s, p.n > 5 ? ", ..." : "");
		sleep_ms(100);
	}
	buf_release(&p.pids);
	buf_release(&q);
	free(p.as_of);
}

/* Per distinct table: seen in the catalog, and its version (NULL: untrackable). */
struct stats_read {
	struct batch *bt;
	unsigned char *found;
	const char **version;
};

static int stats_row(void *ud, const struct sluice_row *row)
{
	struct stats_read *r = ud;
	long t;

	if (row->ncols < 3 || (t = batch_table(r->bt, row->values[0], row->values[1])) < 0)
		return 0;
	r->found[t] = 1;
	r->version[t] = row->values[2] ? arena_strdup(&r->bt->arena, row->values[2]) : NULL;
	return 0;
}

/* Run the stats query once over the batch's tables into r (reset first). */
static int stats_read(struct batch *bt, const char *sql, struct stats_read *r, struct sluice_err *err)
{
	memset(r->found, 0, bt->ntables);
	memset(r->version, 0, bt->ntables * sizeof(*r->version));
	return batch_query(bt, sql, stats_row, r, err);
}

/*
 * Statistics cannot track a view or a foreign table: such a source is
 * "changed" every run (safe), while a model's own view is left alone,
 * since sluice re-creates views only for definition changes anyway.
 */
static char *untracked(const struct batch *bt, const struct node *n)
{
	return n->type == NODE_SOURCE ? str_concat("untracked:", bt->s->invocation_id) : xstrdup("untracked");
}

/*
 * The role may not read the statistics the dialect's query uses (on
 * Redshift, svv_table_info is for superusers unless granted): rather than
 * stop every run, sources are treated as `always` (changed), with a
 * warning saying why, and sluice's own relations go unchecked.
 */
static void stats_unreadable(struct batch *bt, struct sluice_err *err)
{
	size_t j;

	ui_warn("connection '%s': cannot read table statistics (%s); sources using change_detection stats are "
		"treated as always changed until the role may read them (docs/change-detection.md#privileges)",
		bt->conn_name, err->msg);
	for (j = 0; j < bt->n; j++)
		if (bt->items[j]->n->type == NODE_SOURCE)
			set_version(bt, j, str_concat("always:", bt->s->invocation_id));
	*err = (struct sluice_err)SLUICE_ERR_INIT;
}

static int run_stats(struct batch *bt, struct sluice_err *err)
{
	struct stats_read r = { bt, NULL, NULL };
	struct buf sql = BUF_INIT;
	long lag = 0;
	size_t j;
	int rc = 0, unreadable = 0;

	if (!bt->d->source_stats_query) {
		for (j = 0; j < bt->n; j++)
			if (bt->items[j]->n->type == NODE_SOURCE)
				set_version(bt, j, untracked(bt, bt->items[j]->n));
		return 0;
	}
	for (j = 0; j < bt->n; j++)
		if (bt->items[j]->lag_ms > lag)
			lag = bt->items[j]->lag_ms;
	r.found = xcalloc(bt->ntables, 1);
	r.version = xcalloc(bt->ntables, sizeof(*r.version));
	bt->d->source_stats_query(&sql, bt->schemas, bt->idents, bt->ntables);
	/*
	 * With lag_tolerance, two readings that far apart, the later one
	 * used (sources.h): counters a writer had not yet published when the
	 * first was taken have had that long to arrive. One sleep covers the
	 * whole batch.
	 */
	wait_pending_stats(bt);
	rc = stats_read(bt, sql.s, &r, err);
	if (!rc && lag) {
		sleep_ms(lag);
		rc = stats_read(bt, sql.s, &r, err);
	}
	if (rc == SLUICE_EDB && !strcmp(err->sqlstate, "42501")) {
		stats_unreadable(bt, err);
		unreadable = 1;
		rc = 0;
	}
	for (j = 0; !rc && !unreadable && j < bt->n; j++) {
		size_t t = bt->tab[j];
		if (!r.found[t])
			set_version(bt, j, xstrdup("missing"));
		else if (!r.version[t])
			set_version(bt, j, untracked(bt, bt->items[j]->n));
		else
			set_version(bt, j, xstrdup(r.version[t]));
	}
	if (rc)
		err_prefix(err, "reading table statistics on connection '%s'", bt->conn_name);
	free(r.found);
	free(r.version);
	buf_release(&sql);
	return rc;
}

/* ---- trigger ---- */

struct trigger_read {
	struct batch *bt;
	unsigned char *found, *instrumented;
	const char **counter;
};

static int trigger_row(void *ud, const struct sluice_row *row)
{
	struct trigger_read *r = ud;
	long t;

	if (row->ncols < 4 || (t = batch_table(r->bt, row->values[0], row->values[1])) < 0)
		return 0;
	r->found[t] = 1;
	r->instrumented[t] = text_true(row->values[2]);
	r->counter[t] = row->values[3] ? arena_strdup(&r->bt->arena, row->values[3]) : NULL;
	return 0;
}

static int not_instrumented(struct sluice_err *err, const struct node *n)
{
	return err_set(err, SLUICE_EUSAGE,
		       "%s:%d: source %s.%s uses change_detection: trigger but is not instrumented "
		       "(run sluice sources instrument)",
		       n->source->path, n->source->line, n->source->source_name, n->source->name);
}

/*
 * The counter table does not exist: nothing was ever instrumented on this
 * connection. Tables that are missing are still just "missing"; the first
 * one that exists is the error. Only this failure path costs a second query.
 */
static int trigger_never_installed(struct batch *bt, struct trigger_read *tr, struct sluice_err *err)
{
	struct stats_read r = { bt, tr->found, NULL };
	struct buf sql = BUF_INIT;
	size_t j;
	int rc;

	if (!bt->d->source_stats_query)
		return not_instrumented(err, bt->items[0]->n);
	r.version = xcalloc(bt->ntables, sizeof(*r.version));
	bt->d->source_stats_query(&sql, bt->schemas, bt->idents, bt->ntables);
	rc = stats_read(bt, sql.s, &r, err);
	free(r.version);
	buf_release(&sql);
	if (rc)
		return rc;
	memset(tr->instrumented, 0, bt->ntables);
	for (j = 0; j < bt->n; j++)
		if (tr->found[bt->tab[j]])
			return not_instrumented(err, bt->items[j]->n);
	return 0;
}

static int run_trigger(struct batch *bt, struct sluice_err *err)
{
	struct trigger_read r = { bt, NULL, NULL, NULL };
	struct buf sql = BUF_INIT;
	size_t j;
	int rc;

	if (!bt->d->trigger_versions_query)
		return node_err(err, SLUICE_ENOTSUP, bt->items[0]->n,
				"change_detection trigger is not available on connection '%s' (dialect %s)",
				bt->conn_name, bt->d->name);
	r.found = xcalloc(bt->ntables, 1);
	r.instrumented = xcalloc(bt->ntables, 1);
	r.counter = xcalloc(bt->ntables, sizeof(*r.counter));
	bt->d->trigger_versions_query(&sql, bt->schemas, bt->idents, bt->ntables);
	rc = batch_query(bt, sql.s, trigger_row, &r, err);
	if (rc == SLUICE_EDB && !strcmp(err->sqlstate, "42P01")) {
		memset(r.found, 0, bt->ntables);
		rc = trigger_never_installed(bt, &r, err);
	} else if (rc) {
		err_prefix(err, "reading trigger versions on connection '%s'", bt->conn_name);
	}
	/* Uninstrumented tables fail before any version is set. */
	for (j = 0; !rc && j < bt->n; j++)
		if (r.found[bt->tab[j]] && !r.instrumented[bt->tab[j]])
			rc = not_instrumented(err, bt->items[j]->n);
	for (j = 0; !rc && j < bt->n; j++) {
		size_t t = bt->tab[j];
		if (!r.found[t])
			set_version(bt, j, xstrdup("missing"));
		else
			set_version(bt, j, str_concat("trigger:", r.counter[t] ? r.counter[t] : "0"));
	}
	free(r.found);
	free(r.instrumented);
	free(r.counter);
	buf_release(&sql);
	return rc;
}

/* ---- query and loaded_at_field: one value per node ---- */

struct value_read {
	struct batch *bt;
	size_t base, n;                /* rows i = 0..n-1 are items base + i */
	unsigned char *found, *exists;
	const char **value;
};

static int value_row(void *ud, const struct sluice_row *row)
{
	struct value_read *r = ud;
	unsigned long i;
	char *end;

	if (row->ncols < 3 || !row->values[0])
		return 0;
	i = strtoul(row->values[0], &end, 10);
	if (*end || i >= r->n)
		return 0;
	i += r->base;
	r->found[i] = 1;
	r->exists[i] = text_true(row->values[1]);
	r->value[i] = row->values[2] ? arena_strdup(&r->bt->arena, row->values[2]) : NULL;
	return 0;
}

/* Name the source whose SQL the database refused, keeping the SQLSTATE. */
static void place_db_err(struct sluice_err *err, const struct node *n, const char *what)
{
	char state[sizeof(err->sqlstate)];

	memcpy(state, err->sqlstate, sizeof(state));
	node_err(err, err->code, n, "%s: %s", what, err->msg);
	memcpy(err->sqlstate, state, sizeof(state));
}

typedef void (*value_query_fn)(struct buf *b, const char *const *schemas, const char *const *idents,
			       const char *const *args, size_t n);

/* Items base..base+n-1 in one query. */
static int value_read(struct batch *bt, value_query_fn fn, struct value_read *r, const char **schemas,
		      const char **idents, const char **args, size_t base, size_t n, struct sluice_err *err)
{
	struct buf sql = BUF_INIT;
	int rc;

	r->base = base;
	r->n = n;
	fn(&sql, schemas + base, idents + base, args + base, n);
	rc = batch_query(bt, sql.s, value_row, r, err);
	buf_release(&sql);
	return rc;
}

static int run_values(struct batch *bt, enum cd_method method, struct sluice_err *err)
{
	value_query_fn fn = method == CD_QUERY ? bt->d->source_value_query : bt->d->loaded_at_query;
	const char *prefix = method == CD_QUERY ? "query:" : "loaded_at:";
	struct value_read r = { bt, 0, 0, NULL, NULL, NULL };
	const char **schemas, **idents, **args;
	size_t j;
	int rc;

	if (!fn)
		return node_err(err, SLUICE_ENOTSUP, bt->items[0]->n,
				"change_detection %s is not available on connection '%s' (dialect %s)",
				cd_names[method], bt->conn_name, bt->d->name);
	schemas = xcalloc(bt->n, sizeof(*schemas));
	idents = xcalloc(bt->n, sizeof(*idents));
	args = xcalloc(bt->n, sizeof(*args));
	r.found = xcalloc(bt->n, 1);
	r.exists = xcalloc(bt->n, 1);
	r.value = xcalloc(bt->n, sizeof(*r.value));
	for (j = 0; j < bt->n; j++) {
		schemas[j] = bt->items[j]->n->schema;
		idents[j] = bt->items[j]->n->identifier;
		args[j] = bt->items[j]->arg;
	}
	rc = value_read(bt, fn, &r, schemas, idents, args, 0, bt->n, err);
	/*
	 * One source's bad SQL fails the whole batch without saying whose it
	 * was: on that (rare) path, ask for each source alone, which names it.
	 */
	if (rc == SLUICE_EDB && bt->n > 1) {
		rc = 0;
		for (j = 0; !rc && j < bt->n; j++)
			if ((rc = value_read(bt, fn, &r, schemas, idents, args, j, 1, err)))
				place_db_err(err, bt->items[j]->n, cd_names[method]);
	} else if (rc == SLUICE_EDB) {
		place_db_err(err, bt->items[0]->n, cd_names[method]);
	} else if (rc) {
		err_prefix(err, "reading source versions on connection '%s'", bt->conn_name);
	}
	for (j = 0; !rc && j < bt->n; j++) {
		if (!r.found[j] || !r.exists[j])
			set_version(bt, j, xstrdup("missing"));
		else
			set_version(bt, j, str_concat(prefix, r.value[j] ? r.value[j] : ""));
	}
	free(schemas);
	free(idents);
	free(args);
	free(r.found);
	free(r.exists);
	free(r.value);
	return rc;
}

/* ---- per connection ---- */

static int versions_on(struct session *s, struct conn_pool *pool, const char *name, struct cd *cds, size_t ncd,
		       struct source_versions *out, struct sluice_err *err)
{
	struct sluice_conn *conn = NULL;
	const struct dialect *d = NULL;
	struct cd **items;
	size_t j, k, slot = conn_slot_of(&s->project, name);
	int rc, m;

	if (pool) {
		d = conn_pool_dialect(pool, slot);
		rc = (conn = conn_pool_main(pool, slot, err)) ? 0 : err->code;
	} else {
		rc = conn_open(s, name, &conn, &d, err);
	}
	if (rc)
		return rc;
	items = xcalloc(ncd ? ncd : 1, sizeof(*items));
	for (m = CD_STATS; !rc && m <= CD_LOADED_AT; m++) {
		struct batch bt;
		for (j = k = 0; j < ncd; j++)
			if ((int)cds[j].method == m && !strcmp(cds[j].n->connection, name))
				items[k++] = &cds[j];
		if (!k)
			continue;
		batch_init(&bt, s, name, conn, d, out, items, k);
		if (m == CD_STATS)
			rc = run_stats(&bt, err);
		else if (m == CD_TRIGGER)
			rc = run_trigger(&bt, err);
		else
			rc = run_values(&bt, (enum cd_method)m, err);
		batch_release(&bt);
	}
	if (!pool)
		conn_close(conn);
	free(items);
	return rc;
}

/*
 * A source with `location:` (files in object storage) is versioned by
 * listing it: new, changed or removed files change the version, and
 * nothing is read.
 */
static int listing_version(struct session *s, const struct node *n, char **out, struct sluice_err *err)
{
	const struct val *settings = &s->project.target.conns[0].settings;
	struct objstore *store = NULL;
	struct buf v = BUF_INIT;
	char *url = NULL;
	int rc;

	rc = stage_store_open_url(val_get_str(&n->config, "location", ""), settings, s->project.dir, &store, &url, err);
	if (!rc)
		rc = stage_listing_version(store, "", &v, err);
	if (rc)
		node_err(err, rc, n, "%s", err->msg);
	else
		*out = buf_detach(&v, NULL);
	objstore_close(store);
	buf_release(&v);
	free(url);
	return rc;
}

/* Distinct connection names of cds, in order of first use. */
static size_t connections_of(const struct cd *cds, size_t ncd, const char **names)
{
	size_t j, k, n = 0;

	for (j = 0; j < ncd; j++) {
		for (k = 0; k < n && strcmp(names[k], cds[j].n->connection); k++)
			;
		if (k == n)
			names[n++] = cds[j].n->connection;
	}
	return n;
}

int sources_versions(struct session *s, struct conn_pool *pool, const unsigned char *want,
		     struct source_versions *out, struct sluice_err *err)
{
	const struct manifest *m = &s->manifest;
	size_t cap = m->n ? m->n : 1, ncd = 0, nconns, i;
	struct cd *cds = xcalloc(cap, sizeof(*cds));
	const char **conns = xcalloc(cap, sizeof(*conns));
	int rc = 0;

	memset(out, 0, sizeof(*out));
	out->n = m->n;
	out->version = xcalloc(cap, sizeof(*out->version));
	/* Every config error before any connection is opened. */
	for (i = 0; !rc && i < m->n; i++) {
		struct cd c;
		if (!want[i] || (rc = classify(&m->nodes[i], &c, err)))
			continue;
		if (val_get_str(&m->nodes[i].config, "location", NULL))
			rc = listing_version(s, &m->nodes[i], &out->version[i], err);
		else if (c.method == CD_ALWAYS)
			out->version[i] = str_concat("always:", s->invocation_id);
		else if (c.method == CD_NEVER)
			out->version[i] = xstrdup("never");
		else
			cds[ncd++] = c;
	}
	nconns = rc ? 0 : connections_of(cds, ncd, conns);
	for (i = 0; !rc && i < nconns; i++)
		rc = versions_on(s, pool, conns[i], cds, ncd, out, err);
	free(cds);
	free(conns);
	return rc;
}

void source_versions_release(struct source_versions *v)
{
	size_t i;

	if (!v->version)
		return;
	for (i = 0; i < v->n; i++)
		free(v->version[i]);
	free(v->version);
	memset(v, 0, sizeof(*v));
}

/* ---- sluice sources instrument|uninstrument ---- */

static int instrument_on(struct session *s, const char *name, struct cd *cds, size_t ncd, int install,
			 int *count, struct sluice_err *err)
{
	struct sluice_conn *conn = NULL;
	const struct dialect *d = NULL;
	struct cd **items = xcalloc(ncd ? ncd : 1, sizeof(*items));
	struct buf sql = BUF_INIT;
	struct batch bt;
	size_t j, k;
	int rc;
	void (*fn)(struct buf *, const char *const *, const char *const *, size_t);

	for (j = k = 0; j < ncd; j++)
		if (!strcmp(cds[j].n->connection, name))
			items[k++] = &cds[j];
	if ((rc = conn_open(s, name, &conn, &d, err))) {
		free(items);
		return rc;
	}
	fn = install ? d->instrument_sql : d->uninstrument_sql;
	batch_init(&bt, s, name, conn, d, NULL, items, k);
	if (!fn) {
		rc = node_err(err, SLUICE_ENOTSUP, items[0]->n,
			      "change_detection trigger is not available on connection '%s' (dialect %s)", name, d->name);
	} else {
		fn(&sql, bt.schemas, bt.idents, bt.ntables);
		rc = (d->begin ? conn->drv->exec(conn, d->begin, NULL, err) : 0);
		if (!rc)
			rc = conn->drv->exec(conn, sql.s, NULL, err);
		if (!rc && d->commit)
			rc = conn->drv->exec(conn, d->commit, NULL, err);
		if (rc && d->rollback) {
			struct sluice_err ignored = SLUICE_ERR_INIT;
			conn->drv->exec(conn, d->rollback, NULL, &ignored);
		}
		if (rc)
			err_prefix(err, "%s source tables on connection '%s'", install ? "instrumenting" : "uninstrumenting",
				   name);
		else
			*count += (int)bt.ntables;
	}
	batch_release(&bt);
	buf_release(&sql);
	conn_close(conn);
	free(items);
	return rc;
}

int sources_instrument(struct session *s, int install, int *count, struct sluice_err *err)
{
	const struct manifest *m = &s->manifest;
	size_t cap = m->n ? m->n : 1, ncd = 0, nconns, i;
	struct cd *cds = xcalloc(cap, sizeof(*cds));
	const char **conns = xcalloc(cap, sizeof(*conns));
	int rc = 0;

	*count = 0;
	for (i = 0; !rc && i < m->n; i++) {
		struct cd c;
		if (!s->selected[i] || m->nodes[i].type != NODE_SOURCE || (rc = classify(&m->nodes[i], &c, err)))
			continue;
		if (c.method == CD_TRIGGER)
			cds[ncd++] = c;
	}
	nconns = rc ? 0 : connections_of(cds, ncd, conns);
	for (i = 0; !rc && i < nconns; i++)
		rc = instrument_on(s, conns[i], cds, ncd, install, count, err);
	free(cds);
	free(conns);
	return rc;
}
