/*
 * kind-snapshot.c: dbt's snapshots (slowly changing dimensions, type 2)
 * as a node kind. A snapshot's query gives the current state of some
 * rows; its table keeps every version of each row, with dbt's meta
 * columns (renamed by snapshot_meta_column_names): dbt_scd_id (a hash of
 * the key and the version's time), dbt_updated_at and dbt_valid_from
 * (when this version became true: the row's updated_at with the
 * timestamp strategy, the run's time with the check strategy),
 * dbt_valid_to (NULL, or dbt_valid_to_current's value, while it is the
 * current one) and, with hard_deletes: new_record, dbt_is_deleted
 * ('True' on a row recording that the key was gone, else 'False').
 *
 * The first run creates the table from the query. A later run, in one
 * transaction: the query into a temporary table; its columns that the
 * table lacks are added; current versions whose row changed are closed;
 * changed and new rows get a new current version; with hard deletes
 * handled, a key that is gone gets a deletion row (new_record) and its
 * current version is closed at the run's time. A failure rolls all of it
 * back. The table is never rebuilt, --full-refresh included: it is
 * history.
 *
 * A snapshot is reused only when its fingerprint says its inputs did not
 * change; when a source's version cannot be read it runs.
 */
#include <ctype.h>
#include <string.h>
#include "build.h"
#include "util/xalloc.h"

#define SNAPSHOT_NOW "CAST(CURRENT_TIMESTAMP AS timestamp)"

/* dbt's meta columns, in the order a new version lists them. */
enum snap_meta { META_SCD_ID, META_UPDATED_AT, META_VALID_FROM, META_VALID_TO, META_IS_DELETED, META_N };
static const char *const meta_default[META_N] = {
	"dbt_scd_id", "dbt_updated_at", "dbt_valid_from", "dbt_valid_to", "dbt_is_deleted",
};

/* How a snapshot finds changes, from its config. Strings borrowed from the config. */
struct snap_cfg {
	int check;                     /* strategy check (else timestamp) */
	const char *updated_at;        /* timestamp: the column */
	const char **keys;             /* unique_key: one column or a list */
	size_t nkeys;
	const char **cols;             /* check_cols, or NULL with check_all */
	size_t ncols;
	int check_all;
	int invalidate;                /* hard deletes: invalidate or new_record (close a gone key) */
	int new_record;                /* hard deletes: new_record (and add a row saying so) */
	const char *valid_to_current;  /* dbt_valid_to_current: SQL, or NULL for NULL */
	const char *meta[META_N];      /* the meta columns' names */
};

/*
 * Columns for the statements, already quoted: the query's (exact, from
 * the catalog) or the config's (folded). Before the run knows them, one
 * placeholder such as "<the query's columns>" stands for them in the
 * plan's text.
 */
struct snap_cols {
	const char *const *q;
	size_t n;
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

/* snapshot_meta_column_names: dbt's name -> the column's name, for any of the five. */
static int meta_names(const struct node *n, struct snap_cfg *c, struct sluice_err *err)
{
	const struct val *v = val_get(&n->config, "snapshot_meta_column_names");
	size_t i, m;

	memcpy(c->meta, meta_default, sizeof(c->meta));
	if (!v || v->kind == V_NONE)
		return 0;
	if (v->kind != V_DICT)
		return err_set(err, SLUICE_EUSAGE, "%s: snapshot_meta_column_names must be a map such as {dbt_valid_to: valid_to}",
			       n->model->path);
	for (i = 0; i < v->u.dict.n; i++) {
		const struct val *name = &v->u.dict.vals[i];
		for (m = 0; m < META_N && strcmp(v->u.dict.keys[i], meta_default[m]); m++)
			;
		if (m == META_N)
			return err_set(err, SLUICE_EUSAGE, "%s: snapshot_meta_column_names: unknown column '%s' "
				       "(known: dbt_scd_id, dbt_updated_at, dbt_valid_from, dbt_valid_to, dbt_is_deleted)",
				       n->model->path, v->u.dict.keys[i]);
		if (name->kind == V_NONE)
			continue;
		if (name->kind != V_STR || !dialect_is_ident(name->u.str.s))
			return err_set(err, SLUICE_EUSAGE, "%s: snapshot_meta_column_names: %s must be a column name",
				       n->model->path, meta_default[m]);
		c->meta[m] = name->u.str.s;
	}
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
	if (hd && strcmp(hd, "ignore") && strcmp(hd, "invalidate") && strcmp(hd, "new_record"))
		return err_set(err, SLUICE_EUSAGE, "%s: unknown hard_deletes '%s' (known: ignore, invalidate, new_record)",
			       n->model->path, hd);
	c->new_record = hd && !strcmp(hd, "new_record");
	c->invalidate = c->new_record || (hd && !strcmp(hd, "invalidate")) || val_get_bool(cfg, "invalidate_hard_deletes", 0);
	c->valid_to_current = val_get_str(cfg, "dbt_valid_to_current", NULL);
	if (c->valid_to_current && !*c->valid_to_current)
		c->valid_to_current = NULL;
	return meta_names(n, c, err);
}

/* ---- SQL ---- */

/* alias.name (alias NULL: name alone) for a name from the config, folded as the warehouse folds it. */
static void col(struct buf *b, const char *alias, const char *name)
{
	if (alias)
		buf_printf(b, "%s.", alias);
	dialect_folded_ident(b, name);
}

static void meta(struct buf *b, const struct snap_cfg *c, const char *alias, enum snap_meta m)
{
	col(b, alias, c->meta[m]);
}

/* Whether version t is the current one: its dbt_valid_to is NULL, or dbt_valid_to_current. */
static void is_current(struct buf *b, const struct snap_cfg *c, const char *t)
{
	buf_puts(b, "(");
	meta(b, c, t, META_VALID_TO);
	buf_puts(b, " IS NULL");
	if (c->valid_to_current) {
		buf_puts(b, " OR ");
		meta(b, c, t, META_VALID_TO);
		buf_printf(b, " = (%s)", c->valid_to_current);
	}
	buf_puts(b, ")");
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

/* After the value of meta column m: " AS name" when named. */
static void meta_as(struct buf *b, const struct snap_cfg *c, enum snap_meta m, int named)
{
	if (named) {
		buf_puts(b, " AS ");
		meta(b, c, NULL, m);
	}
}

/* ", <meta values>" of a new current version of row s; named: each with AS and its name. */
static void new_version(struct buf *b, const struct snap_cfg *c, const char *s, int named)
{
	buf_puts(b, ", ");
	scd_id(b, c, s);
	meta_as(b, c, META_SCD_ID, named);
	buf_puts(b, ", ");
	version_time(b, c, s);
	meta_as(b, c, META_UPDATED_AT, named);
	buf_puts(b, ", ");
	version_time(b, c, s);
	meta_as(b, c, META_VALID_FROM, named);
	/* NULL (or dbt_valid_to_current) typed as the version's time */
	buf_puts(b, c->valid_to_current ? ", coalesce(nullif(" : ", nullif(");
	version_time(b, c, s);
	buf_puts(b, ", ");
	version_time(b, c, s);
	if (c->valid_to_current)
		buf_printf(b, "), %s)", c->valid_to_current);
	else
		buf_puts(b, ")");
	meta_as(b, c, META_VALID_TO, named);
	if (c->new_record) {
		buf_puts(b, ", 'False'");
		meta_as(b, c, META_IS_DELETED, named);
	}
}

/* "INSERT INTO target (<query's columns>, <meta columns>)\nSELECT " */
static void insert_into(struct buf *b, const struct plan *p, const struct snap_cfg *c, const struct snap_cols *q)
{
	int m;

	buf_printf(b, "INSERT INTO %s (", p->target);
	dialect_col_list(b, "", q->q, q->n);
	for (m = 0; m < META_N; m++)
		if (m != META_IS_DELETED || c->new_record) {
			buf_puts(b, ", ");
			meta(b, c, NULL, (enum snap_meta)m);
		}
	buf_puts(b, ")\nSELECT ");
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

/*
 * Whether current version t differs from row s: NULL-safe, without IS
 * DISTINCT FROM (Redshift). all_changed: a checked column is new to the
 * table, and dbt then counts every row as changed. With new_record, a
 * row recording a deletion is closed when its key comes back.
 */
static void changed(struct buf *b, const struct snap_cfg *c, const struct snap_cols *checked, int all_changed)
{
	size_t i;

	buf_puts(b, "(");
	if (!c->check) {
		meta(b, c, "t", META_VALID_FROM);
		buf_puts(b, " < ");
		col(b, "s", c->updated_at);
	} else if (all_changed || !checked->n) {
		buf_puts(b, all_changed ? "TRUE" : "FALSE");
	}
	for (i = 0; c->check && !all_changed && i < checked->n; i++) {
		const char *k = checked->q[i];
		buf_printf(b, "%st.%s <> s.%s OR (t.%s IS NULL) <> (s.%s IS NULL)", i ? "\n     OR " : "", k, k, k, k);
	}
	if (c->new_record) {
		buf_puts(b, "\n     OR ");
		meta(b, c, "t", META_IS_DELETED);
		buf_puts(b, " = 'True'");
	}
	buf_puts(b, ")");
}

/*
 * The current versions t whose key the query no longer has (and, with
 * new_record, that do not record a deletion already: rows from before
 * new_record was set have NULL there and count as not deleted).
 */
static void gone(struct buf *b, const struct snap_cfg *c, const char *qtmp)
{
	is_current(b, c, "t");
	if (c->new_record) {
		buf_puts(b, " AND (");
		meta(b, c, "t", META_IS_DELETED);
		buf_puts(b, " IS NULL OR ");
		meta(b, c, "t", META_IS_DELETED);
		buf_puts(b, " <> 'True')");
	}
	buf_printf(b, "\n  AND NOT EXISTS (SELECT 1 FROM %s AS s WHERE ", qtmp);
	same_key(b, c);
	buf_puts(b, ")");
}

/* The statements of a later run, in order; the inserts count as the run's rows. */
enum { SNAP_CLOSE_CHANGED, SNAP_INSERT_NEW, SNAP_INSERT_DELETED, SNAP_CLOSE_GONE, SNAP_NSTMTS };

/*
 * The statements of a later run, given the query's columns q, the
 * columns compared (check) and the temporary table: close changed
 * versions, add new ones, add deletion rows, close deleted keys. A
 * statement that does not apply is left empty.
 */
static void update_sql(const struct plan *p, const struct snap_cfg *c, const char *tmp, const struct snap_cols *q,
		       const struct snap_cols *checked, int all_changed, struct buf stmts[SNAP_NSTMTS])
{
	struct buf qt = BUF_INIT, *s;

	dialect_quote_ident(&qt, tmp);
	s = &stmts[SNAP_CLOSE_CHANGED];
	buf_printf(s, "UPDATE %s AS t SET ", p->target);
	meta(s, c, NULL, META_VALID_TO);
	buf_puts(s, " = ");
	version_time(s, c, "s");
	buf_printf(s, "\nFROM %s AS s\nWHERE ", qt.s);
	same_key(s, c);
	buf_puts(s, " AND ");
	is_current(s, c, "t");
	buf_puts(s, "\n  AND ");
	changed(s, c, checked, all_changed);

	s = &stmts[SNAP_INSERT_NEW];
	insert_into(s, p, c, q);
	dialect_col_list(s, "s.", q->q, q->n);
	new_version(s, c, "s", 0);
	buf_printf(s, "\nFROM %s AS s\nWHERE NOT EXISTS (SELECT 1 FROM %s AS t WHERE ", qt.s, p->target);
	same_key(s, c);
	buf_puts(s, " AND ");
	is_current(s, c, "t");
	buf_puts(s, ")");

	if (c->new_record) {
		/* the key's last values, at the run's time, still current, hashed from the version it follows */
		s = &stmts[SNAP_INSERT_DELETED];
		insert_into(s, p, c, q);
		dialect_col_list(s, "t.", q->q, q->n);
		buf_puts(s, ", md5(coalesce(cast(");
		meta(s, c, "t", META_SCD_ID);
		buf_puts(s, " as varchar), '') || '|' || coalesce(cast(" SNAPSHOT_NOW " as varchar), '')), "
			 SNAPSHOT_NOW ", " SNAPSHOT_NOW ", ");
		meta(s, c, "t", META_VALID_TO);
		buf_printf(s, ", 'True'\nFROM %s AS t\nWHERE ", p->target);
		gone(s, c, qt.s);
	}
	if (c->invalidate) {
		s = &stmts[SNAP_CLOSE_GONE];
		buf_printf(s, "UPDATE %s AS t SET ", p->target);
		meta(s, c, NULL, META_VALID_TO);
		buf_puts(s, " = " SNAPSHOT_NOW "\nWHERE ");
		gone(s, c, qt.s);
	}
	buf_release(&qt);
}

/* ---- the run's columns ---- */

/* Column names (and types, when the query gives them) as the catalog has them. */
struct colset {
	struct arena *a;
	const char **name, **type;
	size_t n, cap;
};

static int colset_row(void *ud, const struct sluice_row *row)
{
	struct colset *cs = ud;

	if (!row->values[0])
		return 0;
	if (cs->n == cs->cap) {
		size_t cap = cs->cap ? 2 * cs->cap : 16;
		cs->name = arena_grow(cs->a, cs->name, cs->n, cap, sizeof(char *));
		cs->type = arena_grow(cs->a, cs->type, cs->n, cap, sizeof(char *));
		cs->cap = cap;
	}
	cs->name[cs->n] = arena_strdup(cs->a, row->values[0]);
	cs->type[cs->n] = row->ncols > 1 && row->values[1] ? arena_strdup(cs->a, row->values[1]) : NULL;
	cs->n++;
	return 0;
}

/* Whether catalog name have is name from the config, folded as the warehouse folds it. */
static int folded_eq(const char *have, const char *name)
{
	for (; *name && *have == tolower((unsigned char)*name); name++, have++)
		;
	return !*name && !*have;
}

/* Whether cs has a column named name (folded: a name from the config). */
static int colset_has(const struct colset *cs, const char *name, int folded)
{
	size_t i;

	for (i = 0; i < cs->n; i++)
		if (folded ? folded_eq(cs->name[i], name) : !strcmp(cs->name[i], name))
			return 1;
	return 0;
}

/* The temporary table's columns and types, in order. */
static int query_columns(const struct plan *p, struct sluice_conn *c, const char *tmp, struct colset *out,
			 struct sluice_err *err)
{
	struct buf sql = BUF_INIT, setup = BUF_INIT, q = BUF_INIT, cleanup = BUF_INIT;
	int rc = 0;

	if (!p->dialect->describe)
		return err_set(err, SLUICE_EUSAGE, "%s: the %s dialect cannot describe a query, which a snapshot needs",
			       p->target, p->dialect->name);
	buf_puts(&sql, "SELECT * FROM ");
	dialect_quote_ident(&sql, tmp);
	p->dialect->describe(&setup, &q, &cleanup, sql.s);
	if (setup.len)
		rc = conn_send_exec(c, p->audit, setup.s, NULL, err);
	if (!rc)
		rc = conn_send_query(c, p->audit, q.s, colset_row, out, err);
	if (!rc && cleanup.len)
		rc = conn_send_exec(c, p->audit, cleanup.s, NULL, err);
	buf_release(&sql);
	buf_release(&setup);
	buf_release(&q);
	buf_release(&cleanup);
	return rc;
}

/*
 * Bring the table up to the query, as dbt does: check that it has the
 * meta columns, then add the query's columns it lacks (older versions get
 * NULL there) and, with new_record, dbt_is_deleted. *all_changed: a
 * column the check strategy compares was among them.
 */
static int add_columns(const struct plan *p, struct sluice_conn *c, const struct snap_cfg *cfg,
		       const struct colset *qc, struct arena *a, int *all_changed, struct sluice_err *err)
{
	struct colset tc = { a, NULL, NULL, 0, 0 };
	struct buf q = BUF_INIT;
	size_t i, k;
	int rc, m;

	*all_changed = 0;
	p->dialect->columns_query(&q, p->schema, p->ident);
	rc = conn_send_query(c, p->audit, q.s, colset_row, &tc, err);
	for (m = 0; m < META_IS_DELETED && !rc; m++)
		if (!colset_has(&tc, cfg->meta[m], 1))
			rc = err_set(err, SLUICE_EDB, "%s has no column %s: not a snapshot's table, or its "
				     "snapshot_meta_column_names changed (existing columns are never renamed)",
				     p->target, cfg->meta[m]);
	for (i = 0; i < qc->n && !rc; i++) {
		if (colset_has(&tc, qc->name[i], 0))
			continue;
		buf_reset(&q);
		buf_printf(&q, "ALTER TABLE %s ADD COLUMN ", p->target);
		dialect_quote_ident(&q, qc->name[i]);
		buf_printf(&q, " %s", qc->type[i] ? qc->type[i] : "text");
		rc = conn_send_exec(c, p->audit, q.s, NULL, err);
		*all_changed |= cfg->check_all;
		for (k = 0; k < cfg->ncols; k++)
			*all_changed |= folded_eq(qc->name[i], cfg->cols[k]);
	}
	if (!rc && cfg->new_record && !colset_has(&tc, cfg->meta[META_IS_DELETED], 1)) {
		buf_reset(&q);
		buf_printf(&q, "ALTER TABLE %s ADD COLUMN ", p->target);
		meta(&q, cfg, NULL, META_IS_DELETED);
		buf_puts(&q, " text");
		rc = conn_send_exec(c, p->audit, q.s, NULL, err);
	}
	buf_release(&q);
	return rc;
}

/* names quoted: exactly (from the catalog), or folded (from the config). */
static struct snap_cols quoted(struct arena *a, const char *const *names, size_t n, int folded)
{
	const char **v = arena_alloc(a, (n ? n : 1) * sizeof(char *));
	struct buf b = BUF_INIT;
	size_t i;

	for (i = 0; i < n; i++) {
		buf_reset(&b);
		if (folded)
			dialect_folded_ident(&b, names[i]);
		else
			dialect_quote_ident(&b, names[i]);
		v[i] = arena_strdup(a, b.s);
	}
	buf_release(&b);
	return (struct snap_cols){ v, n };
}

/* ---- the kind ---- */

struct snap_at {
	struct build *b;
	size_t idx;
};

/* The stage step of a later run: the statements, on c, inside the plan's transaction. */
static int snap_update(void *ud, const struct plan *p, struct sluice_conn *c, long long *rows, struct sluice_err *err)
{
	const struct snap_at *at = ud;
	struct snap_run *sr = snaprun(at->b, at->idx);
	const struct snap_cfg *cfg = &sr->cfg;
	struct colset qc = { &sr->arena, NULL, NULL, 0, 0 };
	struct buf stmts[SNAP_NSTMTS] = { BUF_INIT, BUF_INIT, BUF_INIT, BUF_INIT };
	struct snap_cols q, checked;
	int rc, all_changed = 0, k;

	*rows = 0;
	rc = query_columns(p, c, sr->tmp, &qc, err);
	if (!rc)
		rc = add_columns(p, c, cfg, &qc, &sr->arena, &all_changed, err);
	if (!rc) {
		q = quoted(&sr->arena, qc.name, qc.n, 0);
		checked = cfg->check_all ? q : quoted(&sr->arena, cfg->cols, cfg->ncols, 1);
		update_sql(p, cfg, sr->tmp, &q, &checked, all_changed, stmts);
	}
	for (k = 0; k < SNAP_NSTMTS && !rc; k++) {
		long long n = 0;
		if (stmts[k].len)
			rc = conn_send_exec(c, p->audit, stmts[k].s, &n, err);
		if ((k == SNAP_INSERT_NEW || k == SNAP_INSERT_DELETED) && n > 0)
			*rows += n;
	}
	for (k = 0; k < SNAP_NSTMTS; k++)
		buf_release(&stmts[k]);
	return rc;
}

/* target/compiled and target/run: one file per snapshot, named after it. */
static const char *snap_path(struct arena *a, const struct node *n)
{
	const char *slash = strrchr(n->model->path, '/');
	int dir = slash ? (int)(slash - n->model->path) : 0;

	return dir ? arena_printf(a, "%.*s/%s.sql", dir, n->model->path, n->name) : arena_printf(a, "%s.sql", n->name);
}

/* What a later run does, as text for target/run and plan: its columns are known only then. */
static void update_text(const struct plan *p, const struct snap_cfg *cfg, const char *tmp, struct arena *a,
			struct buf *text)
{
	static const char *const query_ph[] = { "<the query's columns>" }, *const all_ph[] = { "<every column of the query>" };
	struct snap_cols q = { query_ph, 1 }, all = { all_ph, 1 };
	struct snap_cols checked = cfg->check_all ? all : quoted(a, cfg->cols, cfg->ncols, 1);
	struct buf stmts[SNAP_NSTMTS] = { BUF_INIT, BUF_INIT, BUF_INIT, BUF_INIT };
	int k;

	update_sql(p, cfg, tmp, &q, &checked, 0, stmts);
	buf_puts(text, "-- add the query's new columns to the table, close changed versions, add new ones");
	buf_puts(text, cfg->new_record ? ", add a row for each deleted key" : "");
	buf_puts(text, cfg->invalidate ? ", close deleted keys:\n" : ":\n");
	for (k = 0; k < SNAP_NSTMTS; k++) {
		if (stmts[k].len)
			buf_printf(text, "%s;\n", stmts[k].s);
		buf_release(&stmts[k]);
	}
}

static int snap_plan(struct build *b, size_t idx, const char *sql, struct arena *a)
{
	const struct node *n = &b->s->manifest.nodes[idx];
	struct node_run *r = &b->runs[idx];
	struct snap_run *sr = snaprun(b, idx);
	const struct dialect *d = build_dialect(b, n);
	struct buf audit = BUF_INIT, s = BUF_INIT, text = BUF_INIT;

	if (r->existing != REL_NONE && r->existing != REL_TABLE)
		return err_set(run_err(r), SLUICE_EDB, "%s exists and is not a table: a snapshot keeps its history in a table",
			       n->relation);
	build_audit_comment(b, n, &audit);
	plan_init(&r->plan, n, d, audit.s);
	plan_add_sql(&r->plan, d->begin, 0);
	if (r->existing == REL_NONE) {
		buf_printf(&s, "CREATE TABLE %s AS\nSELECT s.*", n->relation);
		new_version(&s, &sr->cfg, "s", 1);
		buf_printf(&s, "\nFROM (\n%s\n) AS s", sql);
		plan_add_sql(&r->plan, s.s, 1);
	} else {
		d->create_temp_as(&s, sr->tmp, sql);
		plan_add_sql(&r->plan, s.s, 0);
		update_text(&r->plan, &sr->cfg, sr->tmp, a, &text);
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
	struct sluice_err e = SLUICE_ERR_INIT;
	int rc;

	arena_init(&sr->arena);
	r->kind_data = sr;
	sr->tmp = plan_side_name(n->identifier, "snap");
	rc = snap_config(&sr->arena, n, &sr->cfg, &e);
	if (!rc)
		rc = manifest_compile(&b->s->manifest, n, &o, &scratch, &sql, NULL, &e);
	if (!rc)
		rc = snap_plan(b, idx, sql.s, &scratch);
	buf_release(&sql);
	arena_release(&scratch);
	if (e.code)   /* else snap_plan said why, in the node's record */
		*run_err(r) = e;
	return rc ? (run_err_code(r) ? run_err_code(r) : rc) : 0;
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
	.flags = KIND_COPYABLE,     /* its history must be its own to add to */
	.what = BUILD_SNAPSHOTS,
	.prepare = snap_prepare,
	.reads = snap_reads,
	.run = snap_run,
	.release = snap_release,
};
