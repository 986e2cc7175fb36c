/*
 * materialize.c: materializations as plans of steps (see materialize.h).
 * The SQL words come from the dialect; this file decides the order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "conn.h"
#include "materialize.h"
#include "util/xalloc.h"

#define IDENT_MAX 63   /* PostgreSQL and Redshift truncate identifiers past this */

char *plan_side_name(const char *ident, const char *what)
{
	struct buf b = BUF_INIT;
	size_t room = IDENT_MAX - strlen("__sluice_") - strlen(what);
	size_t n = strlen(ident);

	buf_add(&b, ident, n < room ? n : room);
	buf_printf(&b, "__sluice_%s", what);
	return buf_detach(&b, NULL);
}

static void add_step(struct plan *p, enum step_op op, struct buf *sql, int counts)
{
	struct step *s;

	if (p->n == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 16;
		p->steps = xrealloc(p->steps, p->cap * sizeof(*p->steps));
	}
	s = &p->steps[p->n++];
	s->op = op;
	s->sql = sql ? buf_detach(sql, NULL) : NULL;
	s->counts_rows = counts;
}

static void add_sql(struct plan *p, const char *sql)
{
	plan_add_sql(p, sql, 0);
}

static void add_hooks(struct plan *p, const char *const *hooks, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (hooks[i][0])
			add_sql(p, hooks[i]);
}

static int collect_keys(struct plan *p, const struct node *n, struct sluice_err *err)
{
	const struct val *k = val_get(&n->config, "unique_key");
	size_t i;

	if (!k || k->kind == V_NONE)
		return 0;
	if (k->kind == V_STR) {
		p->keys = xcalloc(1, sizeof(char *));
		struct buf b = BUF_INIT;
		dialect_quote_ident(&b, k->u.str.s);
		p->keys[p->nkeys++] = buf_detach(&b, NULL);
		return 0;
	}
	if (k->kind != V_LIST)
		return err_set(err, SLUICE_EUSAGE, "%s: unique_key must be a column name or a list of them", n->model->path);
	p->keys = xcalloc(k->u.list.n ? k->u.list.n : 1, sizeof(char *));
	for (i = 0; i < k->u.list.n; i++) {
		struct buf b = BUF_INIT;
		if (k->u.list.items[i].kind != V_STR)
			return err_set(err, SLUICE_EUSAGE, "%s: unique_key entries must be column names", n->model->path);
		dialect_quote_ident(&b, k->u.list.items[i].u.str.s);
		p->keys[p->nkeys++] = buf_detach(&b, NULL);
	}
	return 0;
}

static void add_stage(struct plan *p, const struct plan_input *in)
{
	plan_add_stage(p, in->stage_text ? in->stage_text : "-- stage transfer");
}

/*
 * Build under a side name, then swap it in; re-create dependent views.
 * A load fills the side table from the stage instead of a query.
 */
static void plan_swap(struct plan *p, const struct plan_input *in, enum rel_kind kind)
{
	const struct dialect *d = in->dialect;
	char *side = plan_side_name(p->ident, "new"), *old = plan_side_name(p->ident, "old");
	struct buf b = BUF_INIT, side_rel = BUF_INIT, old_rel = BUF_INIT;
	int replacing = in->existing != REL_NONE;

	dialect_relation(&side_rel, p->schema, side);
	dialect_relation(&old_rel, p->schema, old);
	if (in->node->mat == MAT_LOAD || in->node->mat == MAT_SEED) {
		/* filled by the caller's stage step; a side table left by a crashed run is in the way */
		d->drop(&b, side_rel.s, REL_TABLE, 0);
		add_step(p, STEP_SQL, &b, 0);
		p->stage_into = xstrdup(side_rel.s);
		p->stage_create = 1;
		add_stage(p, in);
	} else if (kind == REL_TABLE) {
		d->create_table_as(&b, side_rel.s, in->sql, &in->node->config);
		add_step(p, STEP_SQL, &b, 1);
	} else {
		d->create_view(&b, side_rel.s, in->sql);
		add_step(p, STEP_SQL, &b, 0);
	}
	if (replacing) {
		if (d->dependents_query) {
			if (d->swap_lock)
				add_sql(p, d->swap_lock);
			add_sql(p, d->search_path_qualify);
			add_step(p, STEP_CAPTURE, NULL, 0);
		}
		d->rename(&b, p->target, in->existing, old);
		add_step(p, STEP_SQL, &b, 0);
	}
	d->rename(&b, side_rel.s, kind, p->ident);
	add_step(p, STEP_SQL, &b, 0);
	if (replacing) {
		d->drop(&b, old_rel.s, in->existing, d->dependents_query != NULL);
		add_step(p, STEP_SQL, &b, 0);
		if (d->dependents_query)
			add_step(p, STEP_RECREATE, NULL, 0);
	}
	free(side);
	free(old);
	buf_release(&side_rel);
	buf_release(&old_rel);
}

static int plan_incremental(struct plan *p, const struct plan_input *in, struct sluice_err *err)
{
	const struct node *n = in->node;
	const char *strategy = val_get_str(&n->config, "incremental_strategy", NULL);
	struct buf b = BUF_INIT;
	int rc;

	if ((rc = collect_keys(p, n, err)))
		return rc;
	if (!strategy)
		strategy = p->nkeys ? "merge" : "append";
	if (strcmp(strategy, "append") && strcmp(strategy, "delete+insert") && strcmp(strategy, "merge"))
		return err_set(err, SLUICE_EUSAGE, "%s: unknown incremental_strategy '%s' (known: append, delete+insert, merge)",
			       n->model->path, strategy);
	if (strcmp(strategy, "append") && !p->nkeys)
		return err_set(err, SLUICE_EUSAGE, "%s: incremental_strategy '%s' needs a unique_key",
			       n->model->path, strategy);
	p->strategy = xstrdup(strategy);
	p->tmp = plan_side_name(p->ident, "tmp");
	if (n->mat == MAT_LOAD) {
		/* an empty scratch table shaped like the target, filled from the stage */
		struct buf empty = BUF_INIT;
		buf_printf(&empty, "SELECT * FROM %s WHERE 1 = 0", p->target);
		in->dialect->create_temp_as(&b, p->tmp, empty.s);
		buf_release(&empty);
		add_step(p, STEP_SQL, &b, 0);
		dialect_quote_ident(&b, p->tmp);
		p->stage_into = buf_detach(&b, NULL);
		add_stage(p, in);
	} else {
		in->dialect->create_temp_as(&b, p->tmp, in->sql);
		add_step(p, STEP_SQL, &b, 1);
	}
	add_step(p, STEP_APPLY, NULL, 0);
	return 0;
}

/* Prefix err with "path:line:col" of the config() call that set key, or the model's path. */
static int config_error(const struct node *n, const char *key, struct sluice_err *err)
{
	const struct val *pos = key ? val_get(&n->config_pos, key) : NULL;

	if (pos && pos->kind == V_LIST && pos->u.list.n == 2)
		return err_prefix(err, "%s:%d:%d", n->model->path, (int)pos->u.list.items[0].u.num,
				  (int)pos->u.list.items[1].u.num);
	return err_prefix(err, "%s", n->model->path);
}

void plan_init(struct plan *p, const struct node *n, const struct dialect *d, const char *audit)
{
	memset(p, 0, sizeof(*p));
	p->dialect = d;
	p->audit = xstrdup(audit ? audit : "");
	p->target = xstrdup(n->relation);
	p->schema = xstrdup(n->schema);
	p->ident = xstrdup(n->identifier);
}

void plan_add_sql(struct plan *p, const char *sql, int counts_rows)
{
	struct buf b = BUF_INIT;

	buf_puts(&b, sql);
	add_step(p, STEP_SQL, &b, counts_rows);
}

void plan_add_stage(struct plan *p, const char *text)
{
	struct buf b = BUF_INIT;

	buf_puts(&b, text);
	add_step(p, STEP_STAGE, &b, 1);
}

int plan_build(const struct plan_input *in, struct plan *p, struct sluice_err *err)
{
	const struct node *n = in->node;
	const struct dialect *d = in->dialect;
	const char *key = NULL;
	struct buf b = BUF_INIT;
	int rc = 0;

	plan_init(p, n, d, in->audit);
	if (n->mat == MAT_EPHEMERAL)
		return 0;
	if (n->mat == MAT_UNLOAD) {
		/* writes objects, not a relation: nothing to swap, no transaction */
		add_hooks(p, in->pre_hooks, in->npre);
		add_stage(p, in);
		add_hooks(p, in->post_hooks, in->npost);
		return 0;
	}
	if (in->existing == REL_OTHER)
		return err_set(err, SLUICE_EDB, "%s exists and is neither a table nor a view: drop it or choose another alias",
			       n->relation);
	if (d->check_config && (rc = d->check_config(&n->config, &key, err)))
		return config_error(n, key, err);
	add_sql(p, d->begin);
	add_hooks(p, in->pre_hooks, in->npre);
	if (n->mat == MAT_VIEW)
		plan_swap(p, in, REL_VIEW);
	else if (n->mat == MAT_TABLE || !in->incremental)
		plan_swap(p, in, REL_TABLE);
	else
		rc = plan_incremental(p, in, err);
	add_hooks(p, in->post_hooks, in->npost);
	add_sql(p, d->commit);
	buf_release(&b);
	return rc;
}

void plan_release(struct plan *p)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		free(p->steps[i].sql);
	for (i = 0; i < p->nkeys; i++)
		free(p->keys[i]);
	free(p->keys);
	free(p->steps);
	free((char *)p->audit);
	free(p->target);
	free(p->schema);
	free(p->ident);
	free(p->tmp);
	free(p->strategy);
	free(p->stage_into);
	memset(p, 0, sizeof(*p));
}

/* The incremental statements for a given column list. */
static void apply_sql(const struct plan *p, const char *const *cols, size_t ncols, struct buf *out)
{
	const struct dialect *d = p->dialect;

	if (!strcmp(p->strategy, "merge") && d->merge) {
		d->merge(out, p->target, p->tmp, (const char *const *)p->keys, p->nkeys, cols, ncols);
		return;
	}
	if (strcmp(p->strategy, "append")) {
		d->delete_matching(out, p->target, p->tmp, (const char *const *)p->keys, p->nkeys);
		buf_puts(out, ";\n");
	}
	d->insert_from(out, p->target, p->tmp, cols, ncols);
}

void plan_write(const struct plan *p, struct buf *out)
{
	size_t i;

	if (!p->n) {
		buf_puts(out, "-- ephemeral: inlined into the models that use it, never built\n");
		return;
	}
	for (i = 0; i < p->n; i++) {
		const struct step *s = &p->steps[i];
		switch (s->op) {
		case STEP_SQL:
			buf_printf(out, "%s;\n\n", s->sql);
			break;
		case STEP_CAPTURE:
			buf_puts(out, "-- capture the views that depend on ");
			buf_puts(out, p->target);
			buf_puts(out, ":\n");
			p->dialect->dependents_query(out, p->target);
			buf_puts(out, ";\n\n");
			break;
		case STEP_RECREATE:
			buf_puts(out, "-- re-create each captured view from its definition, in dependency order\n\n");
			break;
		case STEP_APPLY: {
			const char *cols[] = { "/* columns of the target */" };
			apply_sql(p, cols, 1, out);
			buf_puts(out, ";\n\n");
			break;
		}
		case STEP_STAGE:
			buf_printf(out, "%s\n\n", s->sql);
			break;
		}
	}
}

/* ---- execution ---- */

struct captured {
	struct buf sql;       /* CREATE statements, ';'-separated, readers after what they read */
	char **drops;         /* DROP statements, in the same order (heap) */
	size_t ndrops;
	const struct dialect *d;
};

static int capture_row(void *ud, const struct sluice_row *row)
{
	struct captured *c = ud;
	struct buf rel = BUF_INIT, drop = BUF_INIT;
	const char *relkind;

	if (row->ncols < 4 || !row->values[0] || !row->values[1] || !row->values[3])
		return 0;
	relkind = row->values[2] ? row->values[2] : "v";
	dialect_relation(&rel, row->values[0], row->values[1]);
	c->d->recreate_dependent(&c->sql, rel.s, relkind, row->values[3]);
	buf_puts(&c->sql, ";\n");
	c->d->drop_dependent(&drop, rel.s, relkind);
	c->drops = xrealloc(c->drops, (c->ndrops + 1) * sizeof(char *));
	c->drops[c->ndrops++] = buf_detach(&drop, NULL);
	buf_release(&rel);
	return 0;
}

/* The drops, readers before what they read: the reverse of the capture's order. */
static int drop_captured(const struct plan *p, struct sluice_conn *c, const struct captured *cap,
			 struct sluice_err *err)
{
	struct buf sql = BUF_INIT;
	size_t i;
	int rc = 0;

	for (i = cap->ndrops; i > 0; i--)
		buf_printf(&sql, "%s;\n", cap->drops[i - 1]);
	if (sql.len)
		rc = conn_send_exec(c, p->audit, sql.s, NULL, err);
	buf_release(&sql);
	return rc;
}

struct columns {
	char **v;
	size_t n, cap;
};

static int column_row(void *ud, const struct sluice_row *row)
{
	struct columns *c = ud;
	struct buf b = BUF_INIT;

	if (!row->values[0])
		return 0;
	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 16;
		c->v = xrealloc(c->v, c->cap * sizeof(char *));
	}
	dialect_quote_ident(&b, row->values[0]);
	c->v[c->n++] = buf_detach(&b, NULL);
	return 0;
}

static int exec_apply(const struct plan *p, struct sluice_conn *c, struct sluice_err *err)
{
	struct columns cols = { 0 };
	struct buf q = BUF_INIT, sql = BUF_INIT;
	size_t i;
	int rc;

	p->dialect->columns_query(&q, p->schema, p->ident);
	rc = conn_send_query(c, p->audit, q.s, column_row, &cols, err);
	if (!rc && !cols.n)
		rc = err_set(err, SLUICE_EDB, "%s has no columns (was it dropped?)", p->target);
	if (!rc) {
		apply_sql(p, (const char *const *)cols.v, cols.n, &sql);
		rc = conn_send_exec(c, p->audit, sql.s, NULL, err);
	}
	for (i = 0; i < cols.n; i++)
		free(cols.v[i]);
	free(cols.v);
	buf_release(&q);
	buf_release(&sql);
	return rc;
}

int plan_exec(const struct plan *p, struct sluice_conn *c, const struct plan_runtime *rt, long long *rows,
	      struct sluice_err *err)
{
	struct captured cap = { BUF_INIT, NULL, 0, p->dialect };
	int in_txn = 0, rc = 0;
	size_t i;

	*rows = -1;
	for (i = 0; i < p->n && !rc; i++) {
		const struct step *s = &p->steps[i];
		struct buf q = BUF_INIT;
		long long r = -1;

		switch (s->op) {
		case STEP_SQL:
			rc = conn_send_exec(c, p->audit, s->sql, &r, err);
			if (!rc && i == 0 && !strcmp(s->sql, p->dialect->begin))
				in_txn = 1;
			if (!rc && !strcmp(s->sql, p->dialect->commit))
				in_txn = 0;
			if (!rc && s->counts_rows)
				*rows = r;
			break;
		case STEP_CAPTURE:
			p->dialect->dependents_query(&q, p->target);
			rc = conn_send_query(c, p->audit, q.s, capture_row, &cap, err);
			/*
			 * Dropped before the swap touches the target, in the order
			 * a reader locks them (the view it names first): a reader
			 * then either finishes first or waits for the new views,
			 * and never holds a view the swap needs while waiting
			 * for the table the swap holds.
			 */
			if (!rc)
				rc = drop_captured(p, c, &cap, err);
			break;
		case STEP_RECREATE:
			if (cap.sql.len)
				rc = conn_send_exec(c, p->audit, cap.sql.s, NULL, err);
			if (rc)
				err_prefix(err, "re-creating views that depend on %s", p->target);
			break;
		case STEP_APPLY:
			rc = exec_apply(p, c, err);
			break;
		case STEP_STAGE:
			if (!rt || !rt->stage)
				rc = err_set(err, SLUICE_EUSAGE, "%s: a stage step needs a runtime", p->target);
			else
				rc = rt->stage(rt->ud, p, c, &r, err);
			if (!rc && s->counts_rows)
				*rows = r;
			break;
		}
		buf_release(&q);
	}
	if (rc && in_txn) {
		struct sluice_err ignored = SLUICE_ERR_INIT;
		/* A lost connection rolls back by itself; a cancelled one needs it. */
		c->drv->exec(c, p->dialect->rollback, NULL, &ignored);
	}
	buf_release(&cap.sql);
	for (i = 0; i < cap.ndrops; i++)
		free(cap.drops[i]);
	free(cap.drops);
	return rc;
}
