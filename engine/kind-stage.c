/*
 * kind-stage.c: unload and load models as node kinds (stage.h moves the
 * bytes): which generation a load reads, the watermark an incremental
 * transfer renders, the counts it records as validations, what their
 * state records keep, and stage retention.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "build.h"
#include "conn.h"
#include "reuse.h"
#include "stage.h"
#include "ui.h"
#include "util/xalloc.h"

/* What an unload or a load keeps of its run (node_run.kind_data). */
struct stage_run {
	char *watermark;               /* unload: the literal {{ watermark }} renders (heap), or NULL */
	char *stage_generation;        /* unload: "<model>/<target>/<invocation_id>/" it wrote (heap) */
	int stage_delta;               /* unload: only rows past a watermark */
	char *loaded_generation;       /* load: the generation it loaded (heap) */
	/*
	 * unload: its parts as they complete, for the loads it lets start
	 * while it writes them (stage.h); freed once the build is over.
	 */
	struct stage_feed *feed;
	char note[32];                 /* load: "3 streams", for its line */
};

/* Node idx's stage_run: NULL for a node this run did not prepare. */
static struct stage_run *srun(const struct build *b, size_t idx)
{
	return b->runs[idx].kind_data;
}

static const struct conn_cfg *default_conn(const struct build *b)
{
	return &b->s->project.target.conns[0];
}

/* The role Redshift assumes for UNLOAD and COPY (profile `iam_role:`), or NULL. */
static const char *iam_role(const struct build *b)
{
	return val_get_str(&default_conn(b)->settings, "iam_role", NULL);
}

static int open_stage(const struct build *b, struct objstore **store, char **url, struct sluice_err *err)
{
	return stage_store_open(&default_conn(b)->settings, b->s->project.dir, store, url, err);
}

/* The one parent a load reads: an unload model or a source with a location. */
static const struct node *load_input(const struct build *b, const struct node *n)
{
	const struct dag *d = b->s->manifest.dag;

	return d->nparents[n->idx] == 1 ? &b->s->manifest.nodes[d->parents[n->idx][0]] : NULL;
}

static int is_s3_source(const struct node *p)
{
	return p->type == NODE_SOURCE && val_get_str(&p->config, "location", NULL);
}

/* The generation an unload last wrote: this run's, else its state record's. */
static const char *generation_of(const struct build *b, const struct node *u, long long *rows, int *delta)
{
	const struct stage_run *st = srun(b, u->idx);
	const struct val *rec = build_prev_record(b, u->idx);

	if (st && st->stage_generation) {
		/* while the unload may still run, its count comes from the feed (stage_load) */
		*rows = st->feed ? -1 : b->runs[u->idx].rows;
		*delta = st->stage_delta;
		return st->stage_generation;
	}
	*rows = val_get_int(rec, "rows", -1);
	*delta = val_get_int(rec, "stage_delta", 0) != 0;
	return val_get_str(rec, "stage_generation", NULL);
}

/*
 * max(watermark column) of the load target, as a quoted literal; NULL
 * when there is none. Main thread: it reads on the main connection.
 */
static char *read_watermark(struct build *b, const struct node *load, const char *column)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct sluice_conn *c = build_main_conn(b, load, &err);
	struct buf q = BUF_INIT, lit = BUF_INIT, audit = BUF_INIT;
	char *value = NULL;

	if (!c)
		return NULL;
	build_audit_comment(b, load, &audit);
	/* the server's own text form: a driver's may drop a time zone */
	buf_puts(&q, "SELECT CAST(max(");
	dialect_quote_ident(&q, column);
	buf_printf(&q, ") AS VARCHAR) FROM %s", load->relation);
	/* a target that does not exist yet means a full transfer */
	if (!conn_send_query(c, audit.s, q.s, conn_first_value, &value, &err) && value) {
		dialect_literal(build_dialect(b, load), &lit, value);
		free(value);
		value = buf_detach(&lit, NULL);
	} else {
		free(value);
		value = NULL;
	}
	buf_release(&q);
	buf_release(&lit);
	buf_release(&audit);
	return value;
}

/* The load below unload u that asks for a watermark, if any. */
static const struct node *watermark_load(const struct build *b, const struct node *u, const char **column)
{
	const struct manifest *m = &b->s->manifest;
	size_t i;

	for (i = 0; i < m->dag->nchildren[u->idx]; i++) {
		const struct node *c = &m->nodes[m->dag->children[u->idx][i]];
		if (c->mat == MAT_LOAD && (*column = val_get_str(&c->config, "watermark", NULL)))
			return c;
	}
	return NULL;
}

static void describe(const struct build *b, const struct node *n, const char *sql, struct buf *out);

static struct stage_run *srun_new(struct build *b, size_t idx)
{
	if (!b->runs[idx].kind_data)
		b->runs[idx].kind_data = xcalloc(1, sizeof(struct stage_run));
	return b->runs[idx].kind_data;
}

/* Plan an unload: rows past its watermark when it has one. Thread-safe for distinct nodes. */
static int unload_plan(struct build *b, size_t idx)
{
	const struct stage_run *st = srun(b, idx);
	struct compile_opts o = { .invocation_id = b->s->invocation_id };

	o.watermark = st->watermark;
	o.is_incremental = st->watermark != NULL;
	return build_plan_node(b, idx, &o, 0, describe);
}

static int unload_prepare(struct build *b, size_t idx)
{
	const struct node *n = &b->s->manifest.nodes[idx];
	struct stage_run *st = srun_new(b, idx);
	const struct node *load;
	const char *column;

	if (stage_config_check(&n->config, run_err(&b->runs[idx])))
		return err_prefix(run_err(&b->runs[idx]), "%s", n->model->path);
	/* read here, on the main thread, once: a worker's re-plan only drops it */
	if ((load = watermark_load(b, n, &column)) && b->mode == BUILD_RUN && !b->s->cli->full_refresh)
		st->watermark = read_watermark(b, load, column);
	return unload_plan(b, idx);
}

/* Whether a load appends/merges (its input is a delta, or it has a unique_key) rather than replaces. */
static int load_incremental(const struct build *b, const struct node *n);

static int load_plan(struct build *b, size_t idx, int incremental)
{
	struct compile_opts o = { .invocation_id = b->s->invocation_id };

	o.is_incremental = incremental;
	return build_plan_node(b, idx, &o, incremental, describe);
}

static int load_prepare(struct build *b, size_t idx)
{
	const struct node *n = &b->s->manifest.nodes[idx];
	const struct node *p = load_input(b, n);

	srun_new(b, idx);
	if (!p || (p->type == NODE_MODEL && p->mat != MAT_UNLOAD) || (p->type == NODE_SOURCE && !is_s3_source(p)))
		return err_set(run_err(&b->runs[idx]), SLUICE_EUSAGE,
			       "%s: a load model's body is one {{ ref('<unload model>') }} or {{ source('<s3 source>', '<table>') }}",
			       n->model->path);
	/* settled again when it runs, once the unload above has run or been reused */
	return load_plan(b, idx, load_incremental(b, n));
}

/* What the transfer does, for target/run. */
static void describe(const struct build *b, const struct node *n, const char *sql, struct buf *out)
{
	const struct dialect *d = build_dialect(b, n);
	const struct node *p;
	int binary;

	if (n->mat == MAT_UNLOAD) {
		binary = stage_binary(&n->config);
		buf_printf(out, "-- unload to <stage>/%s/%s/<invocation_id>/ (%s parts and a manifest)%s\n", n->name,
			   b->s->project.target.name, binary ? "binary COPY" : "CSV",
			   srun(b, n->idx)->watermark ? ", rows past the watermark" : "");
		if (binary && d->copy_out_binary)
			d->copy_out_binary(out, sql);
		else if (d->copy_out_csv)
			d->copy_out_csv(out, sql);
		else if (d->unload)
			d->unload(out, sql, "<stage>/<generation>/", iam_role(b),
				  &n->config);
		return;
	}
	p = load_input(b, n);
	buf_printf(out, "-- load every part of %s into the side table, then check that the rows unloaded,\n"
		   "-- the manifest's record_count and the rows loaded are equal\n",
		   p ? (p->type == NODE_SOURCE ? val_get_str(&p->config, "location", "?") : p->name) : "?");
	binary = p && p->type == NODE_MODEL && stage_binary(&p->config);
	if (binary && d->copy_in_binary)
		d->copy_in_binary(out, "<side table>");
	else if (d->copy_in_csv)
		d->copy_in_csv(out, "<side table>");
	else if (d->copy_from_manifest)
		d->copy_from_manifest(out, "<side table>", "<stage>/<generation>/manifest",
				      iam_role(b), 0);
}

/* Whether generation gen (NULL: none) is complete in this target's stage: its manifest is there. */
static int generation_present(const struct build *b, const char *gen)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct objstore_info info = { 0 };
	struct objstore *store = NULL;
	struct buf key = BUF_INIT;
	char *url = NULL;
	int exists = 0;

	if (!gen)
		return 0;
	buf_printf(&key, "%s%s", gen, STAGE_MANIFEST);
	if (!open_stage(b, &store, &url, &err) && !store->ops->head(store, key.s, &info, &err))
		exists = info.exists;
	objstore_close(store);
	free(url);
	buf_release(&key);
	return exists;
}

/* Whether the generation an unload last wrote is still in the stage. */
static int unload_exists(struct build *b, size_t idx)
{
	return generation_present(b, val_get_str(build_prev_record(b, idx), "stage_generation", NULL));
}

/*
 * An unload whose last generation is a delta serves its loads only while
 * they hold the rows before it: when the watermark load reads none now
 * (its table was dropped, or never loaded here), it must send everything.
 */
/* The watermark load below unload idx when it holds no rows (it read no watermark), else NULL. */
static const struct node *empty_load(const struct build *b, size_t idx)
{
	const struct stage_run *st = srun(b, idx);
	const char *column;

	if (b->mode != BUILD_RUN || !st || st->watermark)
		return NULL;
	return watermark_load(b, &b->s->manifest.nodes[idx], &column);
}

static void unload_reads(struct build *b, size_t idx, struct arena *a, struct fp_context *ctx)
{
	const struct node *load = empty_load(b, idx);

	if (load && val_get_int(build_prev_record(b, idx), "stage_delta", 0))
		ctx->must_build = arena_printf(a, "its last generation holds only rows past a watermark, and %s "
					       "holds none before them", load->display);
}

/* Whether every child of unload idx is a load that, in env target, loaded generation gen. */
static int loads_took(const struct build *b, size_t idx, const char *target, const char *gen)
{
	const struct manifest *m = &b->s->manifest;
	size_t i;

	for (i = 0; i < m->dag->nchildren[idx]; i++) {
		const struct node *c = &m->nodes[m->dag->children[idx][i]];
		const struct val *rec = reuse_record(b, target, c->unique_id);
		if (c->mat != MAT_LOAD || strcmp(val_get_str(rec, "status", ""), "success") ||
		    strcmp(val_get_str(rec, "loaded_generation", ""), gen))
			return 0;
	}
	return 1;
}

/*
 * Another environment's generation serves this target when it is in this
 * target's stage (the two share it) and holds every row. A delta holds
 * only rows past their watermark, which says nothing of this target's: it
 * serves only when every load below took it there too, so that each is
 * copied from theirs (a load that is built here from a delta fails).
 */
static int unload_adopt(struct build *b, size_t idx, const struct val *theirs, int apply, struct buf *why)
{
	const char *gen = val_get_str(theirs, "stage_generation", NULL);
	int delta = val_get_int(theirs, "stage_delta", 0) != 0;
	struct stage_run *st = srun(b, idx);
	const struct node *empty = delta ? empty_load(b, idx) : NULL;

	if (!gen || !generation_present(b, gen)) {
		buf_puts(why, "its stage generation is not in this target's stage");
		return 0;
	}
	/* a delta this target took before and could not build on is not taken again */
	if (empty && val_get_int(build_prev_record(b, idx), "stage_delta", 0)) {
		buf_printf(why, "its stage generation holds only rows past a watermark, and %s holds none before them",
			   empty->display);
		return 0;
	}
	if (delta && !loads_took(b, idx, val_get_str(theirs, "target", NULL), gen)) {
		buf_puts(why, "its stage generation holds only rows past a watermark, and not every load below took it there");
		return 0;
	}
	if (apply && st) {
		free(st->stage_generation);
		st->stage_generation = xstrdup(gen);
		st->stage_delta = delta;
		b->runs[idx].rows = val_get_int(theirs, "rows", 0);
	}
	return 1;
}

static void add_validation(struct arena *a, struct val *list, const char *name, long long expected,
			   long long actual)
{
	struct val v = val_dict_new();

	if (expected < 0)
		return;
	val_dict_set(a, &v, "name", val_str(name));
	val_dict_set(a, &v, "expected", val_num((double)expected));
	val_dict_set(a, &v, "actual", val_num((double)actual));
	val_dict_set(a, &v, "status", val_str(expected == actual ? "pass" : "fail"));
	val_list_push(a, list, v);
}

/* Whether every child of unload n is a load, which can read n's parts while n writes them. */
static int feeds_loads(const struct build *b, const struct node *n)
{
	const struct manifest *m = &b->s->manifest;
	size_t i;

	for (i = 0; i < m->dag->nchildren[n->idx]; i++)
		if (m->nodes[m->dag->children[n->idx][i]].mat != MAT_LOAD)
			return 0;
	return m->dag->nchildren[n->idx] > 0;
}

/* Connections a load may read parts on at once (stage.h), besides its own. */
#define LOAD_MAX_STREAMS 8

/*
 * How many streams an unload or a load that replaces its target uses:
 * its `streams` config, else the run's threads, at most 4 (more wait on
 * the same two or four cores of a server, and each is a connection).
 * A load uses only as many as there are parts ever read one, and an
 * unload only one per few MiB of its table, so a small table stays one
 * stream.
 *
 * shared: an unload whose loads read its parts while it writes them
 * takes half of that, rounded up. A server spends about half as much on
 * a row's COPY TO as on its COPY FROM (docs/benchmarks.md), so one
 * unload stream keeps two load streams busy; a second one only takes
 * cores from them.
 */
static int config_streams(const struct build *b, const struct node *n, int most, int shared)
{
	long long want = val_get_int(&n->config, "streams", -1);

	if (want < 0) {
		want = b->threads < 4 ? b->threads : 4;
		if (shared)
			want = (want + 1) / 2;
	}
	return want > most ? most : (int)want;
}

/* Where a node's streams come from: connections like c, within the connection budget. */
struct stream_src {
	struct build *b;
	const struct node *n;
	struct sluice_conn *c;
	int base;                      /* streams besides the extra connections (an unload's own) */
};

static int stage_cancelled(void *ud)
{
	return exec_cancelled(ud);
}

/*
 * Open up to want extra connections like x->c's, each with a stage store
 * of its own; returns how many opened. They count in the connection
 * plan's budget (conn.h): fewer when the server has no room for them.
 */
static size_t open_streams(void *ud, size_t want, struct sluice_conn **aux, struct objstore **stores)
{
	struct stream_src *x = ud;
	struct build *b = x->b;
	size_t slot = conn_slot_of(&b->s->project, x->c->name), k = 0;
	int room = conn_pool_extra_take(&b->conns, slot, (int)want);
	struct sluice_err e = SLUICE_ERR_INIT;

	if ((size_t)room < want)
		ui_info("%s: %d stream%s, not %zu: connection '%s' has room for %d more session%s",
			x->n->name, x->base + room, x->base + room == 1 ? "" : "s", x->base + want, x->c->name,
			room, room == 1 ? "" : "s");
	while ((int)k < room) {
		char *url = NULL;
		int rc = open_stage(b, &stores[k], &url, &e);
		free(url);
		if (!rc && (rc = conn_open(b->s, x->c->name, &aux[k], NULL, &e)))
			objstore_close(stores[k]);
		if (rc) {
			/* the server has no room for more after all: fewer streams, said once */
			size_t got = x->base + k ? x->base + k : 1;
			ui_warn("%s: %zu stream%s, not %zu: %s", x->n->name, got, got > 1 ? "s" : "",
				x->base + want, e.msg);
			break;
		}
		k++;
	}
	conn_pool_extra_done(&b->conns, slot, room - (int)k);
	return k;
}

static void close_streams(void *ud, struct sluice_conn **aux, struct objstore **stores, size_t n)
{
	struct stream_src *x = ud;
	size_t i;

	for (i = 0; i < n; i++) {
		conn_close(aux[i]);
		objstore_close(stores[i]);
	}
	conn_pool_extra_done(&x->b->conns, conn_slot_of(&x->b->s->project, x->c->name), (int)n);
}

static int run_unload(struct build *b, struct exec_worker *w, const struct node *n, const struct plan *p,
		      struct sluice_conn *c, long long *rows, struct sluice_err *err)
{
	struct node_run *r = &b->runs[n->idx];
	struct stage_run *st = srun(b, n->idx);
	struct arena *a = build_worker_arena(b, w);
	struct compile_opts o = { .is_incremental = st->watermark != NULL, .invocation_id = b->s->invocation_id,
				  .watermark = st->watermark };
	struct stage_unload u = { 0 };
	struct stream_src src = { b, n, c, 1 };
	struct objstore *store = NULL;
	struct arena scratch = ARENA_INIT;
	struct buf sql = BUF_INIT, dir = BUF_INIT, prefix = BUF_INIT;
	char *url = NULL;
	long long reported = -1;
	int rc, streams = 1, feeding;

	/* under the target: its stage_retention must never delete another environment's generations */
	buf_printf(&dir, "%s/%s", n->name, b->s->project.target.name);
	buf_printf(&prefix, "%s/%s/", dir.s, b->s->invocation_id);
	rc = manifest_compile(&b->s->manifest, n, &o, &scratch, &sql, NULL, err);
	if (!rc)
		rc = open_stage(b, &store, &url, err);
	if (!rc) {
		u.c = c;
		u.d = p->dialect;
		u.audit = p->audit;
		u.sql = sql.s;
		u.store = store;
		u.store_url = url;
		u.prefix = prefix.s;
		u.config = &n->config;
		u.iam_role = iam_role(b);
		/* once: a retried attempt leaves the loads to the first one's outcome */
		feeding = !st->feed && feeds_loads(b, n);
		u.streams = config_streams(b, n, STAGE_MAX_STREAMS, feeding);
		u.open_streams = open_streams;
		u.close_streams = close_streams;
		u.streams_ud = &src;
		u.cancelled = stage_cancelled;
		u.cancel_ud = w;
		/* what the loads below read: settled before they may start, never changed (a retry writes the same) */
		if (!st->stage_generation)
			st->stage_generation = xstrdup(prefix.s);
		st->stage_delta = st->watermark != NULL;
		if (feeding) {
			u.feed = st->feed = stage_feed_new(n->name);
			build_release_children(b, w, n->idx);
		}
		rc = stage_unload(&u, rows, &reported, &streams, err);
		if (u.feed)
			stage_feed_end(u.feed, rc, err->msg, *rows);
	}
	if (!rc && streams > 1) {
		snprintf(st->note, sizeof(st->note), "%d streams", streams);
		r->note = st->note;
	}
	if (!rc) {
		long long keep = val_get_int(&n->config, "stage_retention", 0), deleted = 0;
		struct sluice_err rerr = SLUICE_ERR_INIT;
		r->validations = val_list_new();
		add_validation(a, &r->validations, "rows the database sent = rows written to the stage", reported, *rows);
		if (keep > 0 && stage_retain(store, dir.s, (int)keep, &deleted, &rerr))
			ui_warn("%s: stage_retention: %s", n->name, rerr.msg);
	}
	objstore_close(store);
	free(url);
	buf_release(&sql);
	buf_release(&dir);
	buf_release(&prefix);
	arena_release(&scratch);
	return rc;
}

/* Columns a listing load creates its table with: the source's declared columns. */
static size_t declared_columns(const struct node *src, struct arena *a, const char ***names, const char ***types)
{
	const struct val *cols = val_get(&src->source->props, "columns");
	size_t i, n = 0;

	*names = *types = NULL;
	if (!cols || cols->kind != V_LIST)
		return 0;
	*names = arena_alloc(a, (cols->u.list.n + 1) * sizeof(char *));
	*types = arena_alloc(a, (cols->u.list.n + 1) * sizeof(char *));
	for (i = 0; i < cols->u.list.n; i++) {
		const char *name = val_get_str(&cols->u.list.items[i], "name", NULL);
		const char *type = val_get_str(&cols->u.list.items[i], "data_type", NULL);
		if (!name)
			continue;
		(*names)[n] = name;
		(*types)[n++] = type ? type : "text";
	}
	return n;
}

/*
 * The generation a load last put in its target is also kept in the
 * warehouse, in the load's own transaction: sluice_stage_loads in the
 * target's schema, one row per relation. A state record lost after the
 * load committed (a failed state write, kill -9) then cannot make the next
 * run append the same delta again (docs/stages.md).
 */
static void loads_table(struct buf *q, const struct node *n)
{
	dialect_quote_ident(q, n->schema);
	buf_puts(q, ".sluice_stage_loads");
}

/* Outside any transaction, before the load's: another load may create it at the same moment. */
static void loads_table_create(struct sluice_conn *c, const char *audit, const struct node *n)
{
	struct sluice_err ignored = SLUICE_ERR_INIT;
	struct buf q = BUF_INIT;

	buf_puts(&q, "CREATE TABLE IF NOT EXISTS ");
	loads_table(&q, n);
	buf_puts(&q, " (relation VARCHAR(1024) NOT NULL, generation VARCHAR(1024) NOT NULL)");
	conn_send_exec(c, audit, q.s, NULL, &ignored);   /* a failed load says what is missing */
	buf_release(&q);
}

/* Inside the load's transaction: gen is what the target now holds. */
static int loads_mark(const struct node *n, const struct plan *p, struct sluice_conn *c, const char *gen,
		      struct sluice_err *err)
{
	struct buf q = BUF_INIT;
	int rc;

	buf_puts(&q, "DELETE FROM ");
	loads_table(&q, n);
	buf_puts(&q, " WHERE relation = ");
	dialect_literal(p->dialect, &q, n->relation);
	if (!(rc = conn_send_exec(c, p->audit, q.s, NULL, err))) {
		buf_reset(&q);
		buf_puts(&q, "INSERT INTO ");
		loads_table(&q, n);
		buf_puts(&q, " (relation, generation) VALUES (");
		dialect_literal(p->dialect, &q, n->relation);
		buf_puts(&q, ", ");
		dialect_literal(p->dialect, &q, gen);
		buf_puts(&q, ")");
		rc = conn_send_exec(c, p->audit, q.s, NULL, err);
	}
	buf_release(&q);
	return rc;
}

/* The generation the warehouse says the target holds (heap), or NULL. */
static char *loads_read(const struct build *b, const struct node *n, struct sluice_conn *c, const char *audit)
{
	struct sluice_err ignored = SLUICE_ERR_INIT;
	struct buf q = BUF_INIT;
	char *gen = NULL;

	buf_puts(&q, "SELECT generation FROM ");
	loads_table(&q, n);
	buf_puts(&q, " WHERE relation = ");
	dialect_literal(build_dialect(b, n), &q, n->relation);
	if (conn_send_query(c, audit, q.s, conn_first_value, &gen, &ignored)) {
		free(gen);
		gen = NULL;
	}
	buf_release(&q);
	return gen;
}

static int run_load(struct build *b, struct exec_worker *w, const struct node *n, const struct plan *p,
		    struct sluice_conn *c, long long *rows, struct sluice_err *err)
{
	struct node_run *r = &b->runs[n->idx];
	struct arena *a = build_worker_arena(b, w);
	const struct node *in = load_input(b, n);
	struct stage_load l = { 0 };
	struct stage_counts counts = { -1, -1, 0, 1 };
	struct stream_src src = { b, n, c, 0 };
	struct objstore *store = NULL;
	struct sluice_conn *aux[LOAD_MAX_STREAMS];
	struct objstore *aux_stores[LOAD_MAX_STREAMS];
	struct buf like = BUF_INIT, streams_rel = BUF_INIT;
	char *url = NULL, *streams_side = NULL, *into_ident = NULL;
	int rc, delta = 0, want;

	l.c = c;
	l.d = p->dialect;
	l.audit = p->audit;
	l.into = p->stage_into;
	l.create = p->stage_create;
	l.iam_role = iam_role(b);
	if (l.create && r->existing == REL_TABLE && !b->s->cli->full_refresh) {
		/* keep the target's column types; a first load takes the manifest's */
		buf_puts(&like, n->relation);
		l.like = like.s;
	}
	if (in->type == NODE_SOURCE) {
		const char *loc = val_get_str(&in->config, "location", "");
		l.listing = 1;
		l.prefix = "";
		l.header = val_get_bool(&in->config, "header", 0);
		l.ncols = declared_columns(in, a, (const char ***)&l.col_names, (const char ***)&l.col_types);
		rc = stage_store_open_url(loc, &default_conn(b)->settings, b->s->project.dir, &store, &url, err);
	} else {
		l.prefix = generation_of(b, in, &counts.unloaded, &delta);
		if (!l.prefix) {
			buf_release(&like);
			return err_set(err, SLUICE_EDB, "%s: unload '%s' has not written a generation yet", n->name, in->name);
		}
		rc = open_stage(b, &store, &url, err);
	}
	/* several streams: only where the parts go into a table every connection can see */
	if (!rc && l.create && !l.listing && (want = config_streams(b, n, LOAD_MAX_STREAMS, 0)) > 1 && c->drv->copy_in && p->dialect->copy_in_csv) {
		streams_side = plan_side_name(p->ident, "streams");
		into_ident = plan_side_name(p->ident, "new");
		dialect_relation(&streams_rel, p->schema, streams_side);
		l.aux = aux;
		l.aux_stores = aux_stores;
		l.naux = open_streams(&src, (size_t)want, aux, aux_stores);
		l.streams_rel = streams_rel.s;
		l.into_ident = into_ident;
		l.cancelled = stage_cancelled;
		l.cancel_ud = w;
		if (l.naux < 2) {
			close_streams(&src, aux, aux_stores, l.naux);
			l.naux = 0;
		}
	}
	if (!rc) {
		l.store = store;
		l.store_url = url;
		/* the unload is running now, or ran in this build: read as it writes */
		if (in->type == NODE_MODEL && srun(b, in->idx))
			l.feed = srun(b, in->idx)->feed;
		rc = stage_load(&l, &counts, err);
	}
	close_streams(&src, aux, aux_stores, l.naux);
	if (!rc && counts.streams > 1) {
		snprintf(srun(b, n->idx)->note, sizeof(srun(b, n->idx)->note), "%d streams", counts.streams);
		r->note = srun(b, n->idx)->note;
	}
	r->validations = val_list_new();
	if (in->type != NODE_SOURCE) {
		add_validation(a, &r->validations, "rows unloaded = manifest record_count", counts.unloaded, counts.manifest);
		if (!rc || counts.manifest >= 0)
			add_validation(a, &r->validations, "manifest record_count = rows loaded", counts.manifest,
				       counts.loaded);
	}
	if (!rc && l.prefix && in->type != NODE_SOURCE) {
		rc = loads_mark(n, p, c, l.prefix, err);
		srun(b, n->idx)->loaded_generation = xstrdup(l.prefix);
	}
	*rows = counts.loaded;
	objstore_close(store);
	free(url);
	free(streams_side);
	free(into_ident);
	buf_release(&streams_rel);
	buf_release(&like);
	return rc;
}

/* What a plan's STEP_STAGE does for the node a worker runs. */
struct stage_job {
	struct build *b;
	struct exec_worker *w;
	size_t idx;
	int (*transfer)(struct build *b, struct exec_worker *w, const struct node *n, const struct plan *p,
			struct sluice_conn *c, long long *rows, struct sluice_err *err);
};

static int stage_step(void *ud, const struct plan *p, struct sluice_conn *c, long long *rows, struct sluice_err *err)
{
	struct stage_job *j = ud;

	return j->transfer(j->b, j->w, &j->b->s->manifest.nodes[j->idx], p, c, rows, err);
}

static int load_incremental(const struct build *b, const struct node *n)
{
	const struct node *in = load_input(b, n);
	long long rows;
	int delta = 0;

	if (b->runs[n->idx].existing != REL_TABLE || b->s->cli->full_refresh)
		return 0;
	if (val_get_str(&n->config, "watermark", NULL)) {
		/* a delta is appended (or merged); a whole generation replaces */
		if (in && in->type == NODE_MODEL)
			generation_of(b, in, &rows, &delta);
		return delta;
	}
	return val_get(&n->config, "unique_key") || val_get_str(&n->config, "incremental_strategy", NULL);
}

/*
 * A load whose input is a delta it has already loaded has nothing to do:
 * the generation, or NULL. The state record says so, or, when it was lost
 * after the load committed, the warehouse's sluice_stage_loads (read on c).
 */
static const char *already_loaded(const struct build *b, const struct node *n, struct sluice_conn *c,
				  const char *audit)
{
	const struct node *in = load_input(b, n);
	const char *gen, *loaded = val_get_str(build_prev_record(b, n->idx), "loaded_generation", NULL);
	char *held;
	long long rows;
	int delta, same;

	if (!in || in->type != NODE_MODEL)
		return NULL;
	gen = generation_of(b, in, &rows, &delta);
	if (!delta || !gen)
		return NULL;
	/* re-appending a delta already loaded would duplicate its rows */
	if (loaded && !strcmp(gen, loaded))
		return gen;
	if (b->runs[n->idx].existing != REL_TABLE)
		return NULL;
	held = loads_read(b, n, c, audit);
	same = held && !strcmp(held, gen);
	free(held);
	return same ? gen : NULL;
}

static int unload_run(struct build *b, struct exec_worker *w, size_t idx, struct sluice_err *err)
{
	struct node_run *r = &b->runs[idx];
	struct stage_run *st = srun(b, idx);
	struct stage_job job = { b, w, idx, run_unload };
	struct plan_runtime rt = { stage_step, &job };

	if (r->decision.full_refresh && st->watermark) {
		/* everything this time: its query changed, or the target must be rebuilt */
		free(st->watermark);
		st->watermark = NULL;
		if (unload_plan(b, idx)) {
			*err = *run_err(r);
			return err->code;
		}
	}
	return build_run_plan(b, w, idx, &rt, err);
}

static int load_run(struct build *b, struct exec_worker *w, size_t idx, struct sluice_err *err)
{
	const struct node *n = &b->s->manifest.nodes[idx];
	struct node_run *r = &b->runs[idx];
	struct stage_job job = { b, w, idx, run_load };
	struct plan_runtime rt = { stage_step, &job };
	/* known only now that the unload above has run or been reused */
	int incremental = load_incremental(b, n);
	const struct node *in = load_input(b, n);
	struct buf audit = BUF_INIT;
	struct sluice_conn *c;
	const char *held;
	long long rows;
	int delta;

	if (incremental != (r->plan.strategy != NULL) && load_plan(b, idx, incremental)) {
		*err = *run_err(r);
		return err->code;
	}
	/* the rows before the watermark are nowhere else: replacing the table with a delta would lose them */
	if (!incremental && in && in->type == NODE_MODEL && generation_of(b, in, &rows, &delta) && delta)
		return err_set(err, SLUICE_EDB, "%s: unload '%s' sent only rows past the watermark, but this load would "
			       "replace its target and lose the rows before them; run `sluice build --full-refresh -s %s+`",
			       n->name, in->name, in->name);
	if (!(c = build_worker_conn(b, w, n, err)))
		return err->code;
	build_audit_comment(b, n, &audit);
	if ((held = already_loaded(b, n, c, audit.s))) {
		/* the target already holds this delta: appending it again would duplicate it */
		srun(b, idx)->loaded_generation = xstrdup(held);
		r->rows = 0;
	} else if (in && in->type == NODE_MODEL) {
		/* what run_load notes the generation in, inside the load's transaction */
		loads_table_create(c, audit.s, n);
	}
	buf_release(&audit);
	return held ? 0 : build_run_plan(b, w, idx, &rt, err);
}

/*
 * A load copied from another environment holds every row of its input as
 * of its fingerprint, so the generation this target's unload holds now
 * (a delta of ours included) is in the copy: noted as loaded, it is never
 * appended to it again.
 */
static int load_adopt(struct build *b, size_t idx, const struct val *theirs, int apply, struct buf *why)
{
	const struct node *in = load_input(b, &b->s->manifest.nodes[idx]);
	struct stage_run *st = srun(b, idx);
	const char *gen;
	long long rows;
	int delta;

	(void)theirs;
	(void)why;
	if (apply && st && in && in->type == NODE_MODEL && (gen = generation_of(b, in, &rows, &delta))) {
		free(st->loaded_generation);
		st->loaded_generation = xstrdup(gen);
	}
	return 1;
}

static void stage_record(struct build *b, size_t idx, int ok, struct val *rec, struct arena *a)
{
	const struct stage_run *st = srun(b, idx);

	if (!ok)
		return;
	if (st->stage_generation) {
		val_dict_set(a, rec, "stage_generation", val_str(arena_strdup(a, st->stage_generation)));
		val_dict_set(a, rec, "stage_delta", val_num(st->stage_delta));
	}
	if (st->loaded_generation)
		val_dict_set(a, rec, "loaded_generation", val_str(arena_strdup(a, st->loaded_generation)));
}

static void stage_release(struct build *b, size_t idx)
{
	struct stage_run *st = srun(b, idx);

	if (!st)
		return;
	free(st->watermark);
	free(st->stage_generation);
	free(st->loaded_generation);
	stage_feed_free(st->feed);
	free(st);
	b->runs[idx].kind_data = NULL;
}

const struct node_kind kind_unload = {
	.name = "unload",
	/* its generation may be another environment's (reuse.h): no relation to view or copy */
	.flags = KIND_NO_RELATION | KIND_ADOPTS,
	.adopted = "stage",
	.what = BUILD_MODELS,
	.prepare = unload_prepare,
	.reads = unload_reads,
	.exists = unload_exists,
	.adopt = unload_adopt,
	.run = unload_run,
	.record = stage_record,
	.release = stage_release,
};

const struct node_kind kind_load = {
	.name = "load",
	/* a copy, never a view: its next delta is appended to its own table */
	.flags = KIND_COPYABLE,
	.what = BUILD_MODELS,
	.adopt = load_adopt,
	.prepare = load_prepare,
	.run = load_run,
	.record = stage_record,
	.release = stage_release,
};
