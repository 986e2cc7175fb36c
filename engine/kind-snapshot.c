/*
 * kind-snapshot.c: dbt's snapshots (slowly changing dimensions, type 2)
 * as a node kind. A snapshot's query gives the current state of some
 * rows; its table keeps every version of each row, with dbt's four
 * columns: dbt_scd_id (a hash of the key and the version's time),
 * dbt_updated_at and dbt_valid_from (when this version became true: the
 * row's updated_at with the timestamp strategy, the run's time with the
 * check strategy), and dbt_valid_to (NULL while it is the current one).
 *
 * The first run creates the table from the query. A later run, in one
 * transaction: the query into a temporary table; current versions whose
 * row changed are closed; changed and new rows get a new current version;
 * with hard deletes invalidated, current versions whose key is gone are
 * closed at the run's time. A failure rolls all of it back. The table is
 * never rebuilt, --full-refresh included: it is history.
 *
 * A snapshot is reused only when its fingerprint says its inputs did not
 * change; when a source's version cannot be read it runs.
 */
#include <string.h>
#include "build.h"
#include "util/xalloc.h"

#define SNAPSHOT_NOW "CAST(CURRENT_TIMESTAMP AS timestamp)"

/* How a snapshot finds changes, from its config. Strings borrowed from the config. */
struct snap_cfg {
	int check;                     /* strategy check (else timestamp) */
	const char *updated_at;        /* timestamp: the column */
	const char **keys;             /* unique_key: one column or a list */
	size_t nkeys;
	const char **cols;             /* check_cols, or NULL with check_all */
	size_t ncols;
	int check_all;
	int invalidate;                /* hard deletes: invalidate */
};

/* What a snapshot keeps of its run (node_run.kind_data). */
struct snap_run {
	struct snap_cfg cfg;
	char *tmp;                     /* the query's rows this run (a temporary table) */
	struct arena arena;
};

static struct snap_run *snaprun(const struct build *b, size_t idx)
{
	return b->runs[idx].kind_data;
}

/* ---- config ---- */

/* A column name, or a list of them, into *out. */
static int column_list(struct arena *a, const struct node *n, const char *key, const struct val *v,
		       const char ***out, size_t *nout, struct sluice_err *err)
{
	size_t i, cnt = v->kind == V_LIST ? v->u.list.n : 1;

	*out = arena_alloc(a, (cnt ? cnt : 1) * sizeof(char *));
	*nout = 0;
	for (i = 0; i < cnt; i++) {
		const struct val *e = v->kind == V_LIST ? &v->u.list.items[i] : v;
		if (e->kind != V_STR || !dialect_is_ident(e->u.str.s))
			return err_set(err, SLUICE_EUSAGE, "%s: %s must be a column name or a list of them", n->model->path,
				       key);
		(*out)[(*nout)++] = e->u.str.s;
	}
	if (!*nout)
		return err_set(err, SLUICE_EUSAGE, "%s: %s names no column", n->model->path, key);
	return 0;
}

static int snap_config(struct arena *a, const struct node *n, struct snap_cfg *c, struct sluice_err *err)
{
	const struct val *cfg = &n->config, *v;
	const char *strategy = val_get_str(cfg, "strategy", NULL), *hd = val_get_str(cfg, "hard_deletes", NULL);
	int rc;

	memset(c, 0, sizeof(*c));
	if (!strategy)
		return err_set(err, SLUICE_EUSAGE, "%s: snapshot '%s' needs a strategy (timestamp or check)", n->model->path,
			       n->name);
	if (!(v = val_get(cfg, "unique_key")) || v->kind == V_NONE)
		return err_set(err, SLUICE_EUSAGE, "%s: snapshot '%s' needs a unique_key", n->model->path, n->name);
	if ((rc = column_list(a, n, "unique_key", v, &c->keys, &c->nkeys, err)))
		return rc;
	if (!strcmp(strategy, "timestamp")) {
		c->updated_at = val_get_str(cfg, "updated_at", NULL);
		if (!dialect_is_ident(c->updated_at))
			return err_set(err, SLUICE_EUSAGE, "%s: the timestamp strategy needs updated_at: a column name",
				       n->model->path);
	} else if (!strcmp(strategy, "check")) {
		c->check = 1;
		v = val_get(cfg, "check_cols");
		if (v && v->kind == V_STR && !strcmp(v->u.str.s, "all"))
			c->check_all = 1;
		else if (!v || v->kind == V_NONE)
			return err_set(err, SLUICE_EUSAGE, "%s: the check strategy needs check_cols: a list of columns or 'all'",
				       n->model->path);
		else if ((rc = column_list(a, n, "check_cols", v, &c->cols, &c->ncols, err)))
			return rc;
	} else {
		return err_set(err, SLUICE_EUSAGE, "%s: unknown snapshot strategy '%s' (known: timestamp, check)",
			       n->model->path, strategy);
	}
	if (hd && strcmp(hd, "ignore") && strcmp(hd, "invalidate"))
		return err_set(err, SLUICE_EUSAGE, "%s: hard_deletes '%s' is not supported (supported: ignore, invalidate)",
			       n->model->path, hd);
	c->invalidate = (hd && !strcmp(hd, "invalidate")) || val_get_bool(cfg, "invalidate_hard_deletes", 0);
	return 0;
}

/* ---- SQL ---- */

static void col(struct buf *b, const char *alias, const char *name)
{
	buf_printf(b, "%s.", alias);
	dialect_folded_ident(b, name);
}

/* When version s of a row became true: its updated_at, or the run's time. */
static void version_time(struct buf *b, const struct snap_cfg *c, const char *s)
{
	if (c->check)
		buf_puts(b, SNAPSHOT_NOW);
	else
		col(b, s, c->updated_at);
}

/* dbt_scd_id: md5 of the key columns and the version's time, '|'-separated. */
static void scd_id(struct buf *b, const struct snap_cfg *c, const char *s)
{
	size_t i;

	buf_puts(b, "md5(");
	for (i = 0; i < c->nkeys; i++) {
		buf_puts(b, "coalesce(cast(");
		col(b, s, c->keys[i]);
		buf_puts(b, " as varchar), '') || '|' || ");
	}
	buf_puts(b, "coalesce(cast(");
	version_time(b, c, s);
	buf_puts(b, " as varchar), ''))");
}

/* s.*, then the four columns of a new current version. */
static void new_version(struct buf *b, const struct snap_cfg *c, const char *s)
{
	buf_printf(b, "SELECT %s.*, ", s);
	scd_id(b, c, s);
	buf_puts(b, " AS dbt_scd_id, ");
	version_time(b, c, s);
	buf_puts(b, " AS dbt_updated_at, ");
	version_time(b, c, s);
	buf_puts(b, " AS dbt_valid_from, nullif(");
	version_time(b, c, s);
	buf_puts(b, ", ");
	version_time(b, c, s);
	buf_puts(b, ") AS dbt_valid_to");
}

static void same_key(struct buf *b, const struct snap_cfg *c)
{
	size_t i;

	for (i = 0; i < c->nkeys; i++) {
		buf_puts(b, i ? " AND " : "");
		col(b, "t", c->keys[i]);
		buf_puts(b, " = ");
		col(b, "s", c->keys[i]);
	}
}

/* Whether current version t differs from row s: NULL-safe, without IS DISTINCT FROM (Redshift). */
static void changed(struct buf *b, const struct snap_cfg *c, const char *const *cols, size_t ncols)
{
	size_t i;

	if (!c->check) {
		buf_puts(b, "t.dbt_valid_from < ");
		col(b, "s", c->updated_at);
		return;
	}
	buf_puts(b, "(");
	for (i = 0; i < ncols; i++) {
		buf_puts(b, i ? "\n     OR " : "");
		col(b, "t", cols[i]);
		buf_puts(b, " <> ");
		col(b, "s", cols[i]);
		buf_puts(b, " OR (");
		col(b, "t", cols[i]);
		buf_puts(b, " IS NULL) <> (");
		col(b, "s", cols[i]);
		buf_puts(b, " IS NULL)");
	}
	buf_puts(b, ncols ? ")" : "FALSE)");
}

/*
 * The statements of a later run, given the columns compared (check) and
 * the temporary table: close changed versions, add new ones, close deleted
 * keys. stmts[k] is filled for k < 3 (the last may be empty).
 */
static void update_sql(const struct plan *p, const struct snap_cfg *c, const char *tmp, const char *const *cols,
		       size_t ncols, struct buf stmts[3])
{
	struct buf qt = BUF_INIT;

	dialect_quote_ident(&qt, tmp);
	buf_printf(&stmts[0], "UPDATE %s AS t SET dbt_valid_to = ", p->target);
	version_time(&stmts[0], c, "s");
	buf_printf(&stmts[0], "\nFROM %s AS s\nWHERE ", qt.s);
	same_key(&stmts[0], c);
	buf_puts(&stmts[0], " AND t.dbt_valid_to IS NULL\n  AND ");
	changed(&stmts[0], c, cols, ncols);

	buf_printf(&stmts[1], "INSERT INTO %s\n", p->target);
	new_version(&stmts[1], c, "s");
	buf_printf(&stmts[1], "\nFROM %s AS s\nWHERE NOT EXISTS (SELECT 1 FROM %s AS t WHERE ", qt.s, p->target);
	same_key(&stmts[1], c);
	buf_puts(&stmts[1], " AND t.dbt_valid_to IS NULL)");

	if (c->invalidate) {
		buf_printf(&stmts[2], "UPDATE %s AS t SET dbt_valid_to = " SNAPSHOT_NOW "\n"
			   "WHERE t.dbt_valid_to IS NULL AND NOT EXISTS (SELECT 1 FROM %s AS s WHERE ", p->target, qt.s);
		same_key(&stmts[2], c);
		buf_puts(&stmts[2], ")");
	}
	buf_release(&qt);
}

/* ---- the kind ---- */

struct snap_at {
	struct build *b;
	size_t idx;
};

/* The first row's column names: the columns check_cols 'all' compares. */
struct names {
	struct arena *a;
	const char **v;
	size_t n;
};

static int names_row(void *ud, const struct sluice_row *row)
{
	struct names *nm = ud;
	size_t i;

	nm->v = arena_alloc(nm->a, (row->ncols ? row->ncols : 1) * sizeof(char *));
	for (i = 0; i < row->ncols; i++)
		nm->v[nm->n++] = arena_strdup(nm->a, row->names[i]);
	return 1;   /* one row is enough */
}

/* The stage step of a later run: the statements, on c, inside the plan's transaction. */
static int snap_update(void *ud, const struct plan *p, struct sluice_conn *c, long long *rows, struct sluice_err *err)
{
	const struct snap_at *at = ud;
	struct snap_run *sr = snaprun(at->b, at->idx);
	const struct snap_cfg *cfg = &sr->cfg;
	struct names nm = { &sr->arena, NULL, 0 };
	struct buf stmts[3] = { BUF_INIT, BUF_INIT, BUF_INIT }, q = BUF_INIT;
	long long inserted = 0;
	int rc = 0, k;

	if (cfg->check_all) {
		buf_puts(&q, "SELECT * FROM ");
		dialect_quote_ident(&q, sr->tmp);
		rc = conn_send_query(c, p->audit, q.s, names_row, &nm, err);
		if (rc == 1)
			rc = 0;
	}
	update_sql(p, cfg, sr->tmp, cfg->check_all ? nm.v : cfg->cols, cfg->check_all ? nm.n : cfg->ncols, stmts);
	for (k = 0; k < 3 && !rc; k++)
		if (stmts[k].len)
			rc = conn_send_exec(c, p->audit, stmts[k].s, k == 1 ? &inserted : NULL, err);
	*rows = inserted;
	for (k = 0; k < 3; k++)
		buf_release(&stmts[k]);
	buf_release(&q);
	return rc;
}

/* target/compiled and target/run: one file per snapshot, named after it. */
static const char *snap_path(struct arena *a, const struct node *n)
{
	const char *slash = strrchr(n->model->path, '/');
	int dir = slash ? (int)(slash - n->model->path) : 0;

	return dir ? arena_printf(a, "%.*s/%s.sql", dir, n->model->path, n->name) : arena_printf(a, "%s.sql", n->name);
}

static int snap_plan(struct build *b, size_t idx, const char *sql, struct arena *a)
{
	const struct node *n = &b->s->manifest.nodes[idx];
	struct node_run *r = &b->runs[idx];
	struct snap_run *sr = snaprun(b, idx);
	const struct dialect *d = build_dialect(b, n);
	struct buf audit = BUF_INIT, s = BUF_INIT, text = BUF_INIT;
	struct buf stmts[3] = { BUF_INIT, BUF_INIT, BUF_INIT };
	const char *const all[] = { "<every column of the query>" };
	int k;

	if (r->existing != REL_NONE && r->existing != REL_TABLE)
		return err_set(&r->err, SLUICE_EDB, "%s exists and is not a table: a snapshot keeps its history in a table",
			       n->relation);
	build_audit_comment(b, n, &audit);
	plan_init(&r->plan, n, d, audit.s);
	plan_add_sql(&r->plan, d->begin, 0);
	if (r->existing == REL_NONE) {
		buf_printf(&s, "CREATE TABLE %s AS\n", n->relation);
		new_version(&s, &sr->cfg, "s");
		buf_printf(&s, "\nFROM (\n%s\n) AS s", sql);
		plan_add_sql(&r->plan, s.s, 1);
	} else {
		d->create_temp_as(&s, sr->tmp, sql);
		plan_add_sql(&r->plan, s.s, 0);
		update_sql(&r->plan, &sr->cfg, sr->tmp, sr->cfg.check_all ? all : sr->cfg.cols,
			   sr->cfg.check_all ? 1 : sr->cfg.ncols, stmts);
		buf_puts(&text, "-- close changed versions, add new ones");
		buf_puts(&text, sr->cfg.invalidate ? ", close deleted keys:\n" : ":\n");
		for (k = 0; k < 3; k++)
			if (stmts[k].len)
				buf_printf(&text, "%s;\n", stmts[k].s);
		plan_add_stage(&r->plan, text.s);
	}
	plan_add_sql(&r->plan, d->commit, 0);
	if (b->mode != BUILD_PLAN) {
		struct buf run = BUF_INIT;
		build_write_target_file(b, "compiled", snap_path(a, n), sql);
		plan_write(&r->plan, &run);
		build_write_target_file(b, "run", snap_path(a, n), run.s);
		buf_release(&run);
	}
	for (k = 0; k < 3; k++)
		buf_release(&stmts[k]);
	buf_release(&audit);
	buf_release(&s);
	buf_release(&text);
	return 0;
}

static int snap_prepare(struct build *b, size_t idx)
{
	const struct node *n = &b->s->manifest.nodes[idx];
	struct node_run *r = &b->runs[idx];
	struct snap_run *sr = xcalloc(1, sizeof(*sr));
	struct compile_opts o = { .invocation_id = b->s->invocation_id };
	struct arena scratch = ARENA_INIT;
	struct buf sql = BUF_INIT;
	int rc;

	arena_init(&sr->arena);
	r->kind_data = sr;
	memset(&r->err, 0, sizeof(r->err));
	sr->tmp = plan_side_name(n->identifier, "snap");
	rc = snap_config(&sr->arena, n, &sr->cfg, &r->err);
	if (!rc)
		rc = manifest_compile(&b->s->manifest, n, &o, &scratch, &sql, NULL, &r->err);
	if (!rc)
		rc = snap_plan(b, idx, sql.s, &scratch);
	buf_release(&sql);
	arena_release(&scratch);
	return rc ? r->err.code : 0;
}

/* A source whose version cannot be read may have changed: run. */
static void snap_reads(struct build *b, size_t idx, struct arena *a, struct fp_context *ctx)
{
	const struct manifest *m = &b->s->manifest;
	size_t i;

	for (i = 0; i < m->dag->nparents[idx]; i++) {
		size_t p = m->dag->parents[idx][i];
		if (m->nodes[p].type != NODE_SOURCE || (b->versions.version && b->versions.version[p]))
			continue;
		ctx->must_build = arena_printf(a, "the version of source '%s.%s' cannot be read",
					       m->nodes[p].source->source_name, m->nodes[p].name);
		return;
	}
}

static int snap_run(struct build *b, struct exec_worker *w, size_t idx, struct sluice_err *err)
{
	struct snap_at at = { b, idx };
	struct plan_runtime rt = { snap_update, &at };

	return build_run_plan(b, w, idx, &rt, err);
}

static void snap_release(struct build *b, size_t idx)
{
	struct snap_run *sr = snaprun(b, idx);

	if (!sr)
		return;
	free(sr->tmp);
	arena_release(&sr->arena);
	free(sr);
	b->runs[idx].kind_data = NULL;
}

const struct node_kind kind_snapshot = {
	.name = "snapshot",
	.what = BUILD_SNAPSHOTS,
	.prepare = snap_prepare,
	.reads = snap_reads,
	.run = snap_run,
	.release = snap_release,
};
