/*
 * kind-seed.c: seeds (dbt's CSV files under seed-paths) as a node kind.
 * A seed is a table: its plan (materialize.c) creates a side table, fills
 * it, swaps it in and re-creates dependent views, in one transaction. The
 * fill is this file's: create the side table with the seed's columns and
 * types (seed.c), then stream the rows through the connector's COPY (the
 * dialect's copy_in_csv) or, for a connector without one, its batched
 * inserts (load_csv).
 *
 * Its fingerprint is its code (a line naming the file's content hash,
 * manifest.c) and its config (column_types, quote_columns, delimiter):
 * an unchanged seed is reused, --full-refresh reloads it.
 */
#include <string.h>
#include <sys/types.h>
#include "build.h"
#include "seed.h"
#include "util/xalloc.h"

/* What a seed keeps of its run (node_run.kind_data). */
struct seed_run {
	struct arena arena;
	struct seed_table table;
	struct buf csv;                /* the rows as COPY reads them */
	size_t at;                     /* how much of csv the reader gave */
};

static struct seed_run *seedrun(const struct build *b, size_t idx)
{
	return b->runs[idx].kind_data;
}

/* delimiter: one byte, default ','. */
static int seed_delimiter(const struct node *n, char *out, struct sluice_err *err)
{
	const char *d = val_get_str(&n->config, "delimiter", ",");

	if (!strcmp(d, "\\t"))
		d = "\t";
	if (strlen(d) != 1)
		return err_set(err, SLUICE_EUSAGE, "%s: delimiter must be one character, not '%s'", n->model->path, d);
	*out = d[0];
	return 0;
}

/* CREATE TABLE rel with the seed's columns and types. */
static void seed_create_sql(const struct node *n, const struct seed_run *sr, const char *rel, struct buf *out)
{
	size_t i;

	buf_printf(out, "CREATE TABLE %s (", rel);
	for (i = 0; i < sr->table.ncols; i++) {
		buf_puts(out, i ? ", " : "");
		seed_column_sql(&sr->table, i, val_get_bool(&n->config, "quote_columns", 0), out);
		buf_printf(out, " %s", sr->table.types[i]);
	}
	buf_puts(out, ")");
}

static void seed_describe(const struct build *b, const struct node *n, const char *sql, struct buf *out)
{
	const struct dialect *d = build_dialect(b, n);
	const struct seed_run *sr = seedrun(b, n->idx);

	(void)sql;
	buf_printf(out, "-- load %s (%zu rows) into the side table:\n", n->model->path, sr->table.nrows);
	seed_create_sql(n, sr, "<side table>", out);
	buf_puts(out, ";\n");
	if (d->copy_in_csv)
		d->copy_in_csv(out, "<side table>");
	else
		buf_puts(out, "-- INSERT the rows in batches");
}

static int seed_prepare(struct build *b, size_t idx)
{
	const struct node *n = &b->s->manifest.nodes[idx];
	struct node_run *r = &b->runs[idx];
	struct seed_run *sr = xcalloc(1, sizeof(*sr));
	struct compile_opts o = { .invocation_id = b->s->invocation_id };
	const struct val *types = val_get(&n->config, "column_types");
	struct sluice_err e = SLUICE_ERR_INIT;
	char delim = ',';

	arena_init(&sr->arena);
	r->kind_data = sr;
	if (types && types->kind != V_DICT)
		return err_set(run_err(r), SLUICE_EUSAGE, "%s: column_types must be a map of column: type", n->model->path);
	if (seed_delimiter(n, &delim, &e) ||
	    seed_parse(&sr->arena, n->model->path, n->model->src, n->model->src_len, delim, types, &sr->table, &e)) {
		*run_err(r) = e;
		return e.code;
	}
	return build_plan_node(b, idx, &o, 0, seed_describe);
}

static ssize_t seed_read(void *ud, void *buf, size_t cap, struct sluice_err *err)
{
	struct seed_run *sr = ud;
	size_t n = sr->csv.len - sr->at;

	(void)err;
	if (n > cap)
		n = cap;
	memcpy(buf, sr->csv.s + sr->at, n);
	sr->at += n;
	return (ssize_t)n;
}

/* Which seed a stage step fills. */
struct seed_at {
	struct build *b;
	size_t idx;
};

/* The stage step: create the side table, then COPY (or insert) the rows, inside the plan's transaction. */
static int seed_fill(void *ud, const struct plan *p, struct sluice_conn *c, long long *rows, struct sluice_err *err)
{
	const struct seed_at *at = ud;
	const struct node *n = &at->b->s->manifest.nodes[at->idx];
	struct seed_run *sr = seedrun(at->b, at->idx);
	struct buf sql = BUF_INIT;
	int rc;

	buf_puts(&sql, p->audit);
	seed_create_sql(n, sr, p->stage_into, &sql);
	rc = c->drv->exec(c, sql.s, NULL, err);
	buf_reset(&sql);
	buf_reset(&sr->csv);
	seed_write_csv(&sr->table, &sr->csv);
	sr->at = 0;
	if (rc) {
		/* nothing more */
	} else if (!sr->table.nrows) {
		*rows = 0;
	} else if (c->drv->copy_in && p->dialect->copy_in_csv) {
		buf_puts(&sql, p->audit);
		p->dialect->copy_in_csv(&sql, p->stage_into);
		rc = c->drv->copy_in(c, sql.s, seed_read, sr, rows, err);
	} else if (c->drv->load_csv) {
		rc = c->drv->load_csv(c, p->stage_into, sr->table.ncols, seed_read, sr, rows, err);
	} else {
		rc = err_set(err, SLUICE_ENOTSUP, "connection '%s' (%s) can neither COPY nor insert CSV rows", c->name,
			     c->drv->name);
	}
	buf_release(&sql);
	if (rc)
		err_prefix(err, "%s", n->model->path);
	return rc;
}

static int seed_run(struct build *b, struct exec_worker *w, size_t idx, struct sluice_err *err)
{
	struct seed_at at = { b, idx };
	struct plan_runtime rt = { seed_fill, &at };

	return build_run_plan(b, w, idx, &rt, err);
}

static void seed_release(struct build *b, size_t idx)
{
	struct seed_run *sr = seedrun(b, idx);

	if (!sr)
		return;
	buf_release(&sr->csv);
	arena_release(&sr->arena);
	free(sr);
	b->runs[idx].kind_data = NULL;
}

const struct node_kind kind_seed = {
	.name = "seed",
	.flags = KIND_SHAREABLE | KIND_COPYABLE,
	.what = BUILD_SEEDS,
	.prepare = seed_prepare,
	.run = seed_run,
	.release = seed_release,
};
