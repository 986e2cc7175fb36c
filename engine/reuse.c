/*
 * reuse.c: reuse across environments; see reuse.h and docs/environments.md.
 * It decides and makes the view or copy; it is not where fingerprints are
 * computed (fingerprint.c) nor where records are stored (state*.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "conn.h"
#include "reuse.h"
#include "ui.h"
#include "util/xalloc.h"

struct reuse_env {
	const char *target;
	struct val records;        /* unique_id -> record, in the build arena */
	struct strmap index;
};

static int known_output(const struct target *t, const char *name)
{
	size_t i;

	for (i = 0; i < t->noutputs; i++)
		if (!strcmp(t->outputs[i], name))
			return 1;
	return 0;
}

static void add_env(struct build *b, const char *target)
{
	struct reuse_env *e;
	struct sluice_err err = SLUICE_ERR_INIT;
	size_t i;

	for (i = 0; i < b->nreuse_envs; i++)
		if (!strcmp(b->reuse_envs[i].target, target))
			return;
	b->reuse_envs = xrealloc(b->reuse_envs, (b->nreuse_envs + 1) * sizeof(*b->reuse_envs));
	e = &b->reuse_envs[b->nreuse_envs];
	memset(e, 0, sizeof(*e));
	e->target = arena_strdup(&b->arena, target);
	if (state_load_target(b->state, target, &b->arena, &e->records, &err)) {
		ui_warn("reuse_from %s: its state cannot be read, nothing is reused from it: %s", target, err.msg);
		return;
	}
	b->nreuse_envs++;
	for (i = 0; i < e->records.u.dict.n; i++)
		strmap_put(&e->index, e->records.u.dict.keys[i], &e->records.u.dict.vals[i]);
}

int reuse_prepare(struct build *b, struct sluice_err *err)
{
	const struct target *t = &b->s->project.target;
	const char *cli = b->s->cli->reuse_from.s;
	size_t i;

	b->reuse_copy = t->reuse_copy;
	if (cli && *cli) {
		char *list = xstrdup(cli), *p = list;
		int rc = 0;
		while (p && !rc) {
			char *comma = strchr(p, ',');
			if (comma)
				*comma = '\0';
			if (!*p || !known_output(t, p))
				rc = err_set(err, SLUICE_EUSAGE, "--reuse-from %s: profile '%s' has no such output", p,
					     t->profile ? t->profile : "");
			else if (!strcmp(p, t->name))
				rc = err_set(err, SLUICE_EUSAGE, "--reuse-from %s: that is the target of this run", p);
			else
				add_env(b, p);
			p = comma ? comma + 1 : NULL;
		}
		free(list);
		return rc;
	}
	for (i = 0; i < t->nreuse_from; i++)
		add_env(b, t->reuse_from[i]);
	return 0;
}

/* ---- what the database says of a relation of another environment ---- */

static int ignore_row(void *ud, const struct sluice_row *row)
{
	(void)ud;
	(void)row;
	return 0;
}

/*
 * Whether we can read schema.ident on c (it exists, and we hold SELECT),
 * and its statistics version now (heap, or NULL when the dialect has
 * none). why says what went wrong.
 */
static int readable(const struct dialect *d, struct sluice_conn *c, const char *schema, const char *ident,
		    char **version, struct buf *why)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct buf q = BUF_INIT;
	int rc;

	*version = NULL;
	buf_puts(&q, "SELECT 1 FROM ");
	dialect_relation(&q, schema, ident);
	buf_puts(&q, " WHERE 1 = 0");
	rc = c->drv->query(c, q.s, ignore_row, NULL, &err);
	if (rc)
		buf_puts(why, err.msg);
	else
		*version = build_relation_version(d, c, schema, ident);
	buf_release(&q);
	return rc ? -1 : 0;
}

/* ---- deciding ---- */

void reuse_describe(const struct val *from, struct buf *out)
{
	time_t at = (time_t)val_get_int(from, "finished_at", 0);
	const char *run = val_get_str(from, "invocation_id", "");
	struct tm tm;
	char when[32] = "";

	if (at && gmtime_r(&at, &tm))
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm);
	const char *mode = val_get_str(from, "mode", "view");

	static const char *const words[][2] = {
		{ "copy", "a copy, built" },
		{ "remade", "made again here over our own relations, as built" },
		{ "stage", "its stage generation, written" },
		{ "files", "its output files, written" },
	};
	const char *how = "built";
	size_t i;

	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (!strcmp(mode, words[i][0]))
			how = words[i][1];
	buf_printf(out, "reuse from %s%s%s (%s %s by %s, run %.4s…)", val_get_str(from, "target", "?"),
		   val_get(from, "via") ? " via " : "", val_get_str(from, "via", ""), how, when,
		   val_get_str(from, "user", "?"), run);
}

static void prepend_reason(struct arena *a, struct fp_decision *d, const char *text)
{
	struct val l = val_list_new();
	size_t i;

	val_list_push(a, &l, val_str(arena_strdup(a, text)));
	for (i = 0; i < d->reasons.u.list.n; i++)
		val_list_push(a, &l, d->reasons.u.list.items[i]);
	d->reasons = l;
}

static void add_reason(struct arena *a, struct fp_decision *d, const char *text)
{
	val_list_push(a, &d->reasons, val_str(arena_strdup(a, text)));
	d->build = 1;
}

/* Last time this node was reused: is what it reused still there as it was? */
static void recheck(struct build *b, size_t idx, struct sluice_conn *c, struct arena *a)
{
	struct node_run *r = &b->runs[idx];
	const struct val *prev = build_prev_record(b, idx);
	const struct val *from = prev ? val_get(prev, "reused_from") : NULL;
	const char *schema = val_get_str(from, "schema", NULL), *ident = val_get_str(from, "identifier", NULL);
	const char *then = val_get_str(from, "relation_version", NULL);
	struct buf why = BUF_INIT, msg = BUF_INIT;
	char *now = NULL;

	if (!from || from->kind != V_DICT || !schema || !ident || r->decision.build)
		return;
	if (readable(build_dialect(b, &b->s->manifest.nodes[idx]), c, schema, ident, &now, &why))
		buf_printf(&msg, "reused from %s's %s.%s, which can no longer be read (%s)", val_get_str(from, "target", "?"),
			   schema, ident, why.s);
	else if (then && now && strcmp(then, now))
		buf_printf(&msg, "reused from %s's %s.%s, which changed since (%s -> %s): rebuilt there, "
			   "or written outside sluice", val_get_str(from, "target", "?"), schema, ident, then, now);
	if (msg.len)
		add_reason(a, &r->decision, msg.s);
	free(now);
	buf_release(&why);
	buf_release(&msg);
}

/* Where a reused node comes from: src, the record of the environment `where` (its relation, if any). */
static struct val from_record(struct arena *a, const struct val *src, const char *where, const char *via,
			      const char *mode, const char *schema, const char *ident, const char *version)
{
	struct val from = val_dict_new();

	val_dict_set(a, &from, "target", val_str(where));
	if (via)
		val_dict_set(a, &from, "via", val_str(via));
	val_dict_set(a, &from, "mode", val_str(mode));
	if (schema && ident) {
		val_dict_set(a, &from, "schema", val_str(schema));
		val_dict_set(a, &from, "identifier", val_str(ident));
		val_dict_set(a, &from, "relation", val_str(val_get_str(src, "relation", "")));
		val_dict_set(a, &from, "relation_version", version ? val_str(arena_strdup(a, version)) : val_none());
	}
	val_dict_set(a, &from, "user", val_str(val_get_str(src, "user", "")));
	val_dict_set(a, &from, "finished_at", val_num((double)val_get_int(src, "finished_at", 0)));
	val_dict_set(a, &from, "invocation_id", val_str(val_get_str(src, "invocation_id", "")));
	return from;
}

int reuse_wanted(const struct build *b, size_t idx)
{
	const struct node_run *r = &b->runs[idx];
	const struct val *prev = build_prev_record(b, idx);

	if (!r->decided)
		return 0;
	return (r->decision.build && b->nreuse_envs) ||
	       (!r->decision.build && prev && val_get(prev, "reused_from") &&
		val_get(prev, "reused_from")->kind == V_DICT);
}

/*
 * Whether a node made again here (KIND_REMADE) is what env's is now: the
 * same definition over relations that hold what theirs hold. Its own
 * fingerprint may be older than theirs, as a view is not rebuilt when
 * only the data under it moved; its parents' records are current.
 */
static int remade_matches(const struct build *b, size_t idx, const struct reuse_env *env, const struct val *rec,
			  struct arena *a)
{
	const struct manifest *m = &b->s->manifest;
	size_t i;

	if (strcmp(val_get_str(rec, "def_fingerprint", ""), b->runs[idx].fp.def))
		return 0;
	for (i = 0; i < m->dag->nparents[idx]; i++) {
		size_t p = m->dag->parents[idx][i];
		const struct val *theirs = strmap_get(&env->index, m->nodes[p].unique_id);
		/* a source is read where it is, by both */
		if (m->nodes[p].type == NODE_SOURCE)
			continue;
		if (!theirs || strcmp(val_get_str(theirs, "effective_fingerprint", ""), build_effective(b, p, a)))
			return 0;
	}
	return 1;
}

/* How a node of this kind is reused here: "view", "copy", "remade", the kind's own word, or NULL: never. */
static const char *reuse_mode(const struct build *b, const struct node_kind *k)
{
	if (k->flags & KIND_ADOPTS)
		return k->adopted;
	if (k->flags & KIND_REMADE)
		return "remade";
	if ((k->flags & KIND_SHAREABLE) && !b->reuse_copy)
		return "view";
	return k->flags & KIND_COPYABLE ? "copy" : NULL;
}

void reuse_decide(struct build *b, size_t idx, struct sluice_conn *c, struct arena *a)
{
	struct node_run *r = &b->runs[idx];
	const struct node *n = &b->s->manifest.nodes[idx];
	unsigned flags = r->kind->flags;
	const char *mode = reuse_mode(b, r->kind);
	size_t e;

	if (!r->decided || !c)
		return;
	recheck(b, idx, c, a);
	if (!r->decision.build || !b->nreuse_envs || b->s->cli->force || b->s->cli->full_refresh || !mode)
		return;
	for (e = 0; e < b->nreuse_envs; e++) {
		const struct reuse_env *env = &b->reuse_envs[e];
		const struct val *rec = strmap_get(&env->index, n->unique_id), *src = rec, *via;
		const char *schema, *ident, *then, *where = env->target;
		struct buf why = BUF_INIT, msg = BUF_INIT;
		char *now = NULL;
		if (!rec || rec->kind != V_DICT || strcmp(val_get_str(rec, "status", ""), "success") ||
		    !(flags & KIND_REMADE ? remade_matches(b, idx, env, rec, a) :
		      !strcmp(val_get_str(rec, "fingerprint", ""), r->fp.full)))
			continue;
		/*
		 * Theirs is a view over a third environment's relation: reuse
		 * that one, checked against the version they saw, so a change
		 * there is seen here too.
		 */
		/* what it keeps beyond a relation must serve this target too (a stage generation) */
		if (r->kind->adopt && !r->kind->adopt(b, idx, rec, 0, &why)) {
			buf_printf(&msg, "cannot reuse %s's %s: %s", where, n->name, why.s);
			add_reason(a, &r->decision, msg.s);
			buf_release(&why);
			buf_release(&msg);
			continue;
		}
		if (flags & (KIND_ADOPTS | KIND_REMADE)) {
			/*
			 * Nothing of theirs to read: what the kind adopts is all
			 * there is to reuse, or it is made again over our own
			 * relations, which the same fingerprint says hold what
			 * theirs held.
			 */
			r->reused_from = from_record(a, rec, where, NULL, mode, NULL, NULL, NULL);
			r->reused_record = rec;
			reuse_describe(&r->reused_from, &msg);
			prepend_reason(a, &r->decision, msg.s);
			buf_release(&msg);
			return;
		}
		via = val_get(rec, "reused_from");
		if (via && via->kind == V_DICT && !strcmp(val_get_str(via, "mode", ""), "view")) {
			src = via;
			where = val_get_str(via, "target", "?");
		}
		schema = val_get_str(src, "schema", NULL);
		ident = val_get_str(src, "identifier", NULL);
		then = val_get_str(src, "relation_version", NULL);
		/* a target sharing this one's schema would make a view over itself */
		if (!schema || !ident || (n->schema && n->identifier && !strcmp(schema, n->schema) &&
					   !strcmp(ident, n->identifier)))
			continue;
		if (readable(build_dialect(b, n), c, schema, ident, &now, &why)) {
			buf_printf(&msg, "cannot reuse %s's %s.%s: %s", where, schema, ident, why.s);
			add_reason(a, &r->decision, msg.s);
		} else if (then && now && strcmp(then, now)) {
			buf_printf(&msg, "cannot reuse %s's %s.%s: changed since %s built it (%s -> %s)", where, schema,
				   ident, where, then, now);
			add_reason(a, &r->decision, msg.s);
		} else {
			r->reused_from = from_record(a, src, where, src != rec ? env->target : NULL, mode, schema, ident,
						     now);
			r->reused_record = rec;
			buf_reset(&msg);
			reuse_describe(&r->reused_from, &msg);
			prepend_reason(a, &r->decision, msg.s);
		}
		free(now);
		buf_release(&why);
		buf_release(&msg);
		if (r->reused_from.kind == V_DICT)
			return;
	}
}

/* ---- making it ---- */

/* The two values of read_columns_query's row (heap). */
static int two_values(void *ud, const struct sluice_row *row)
{
	char **v = ud;

	if (!v[0] && row->ncols == 2 && row->values[0] && row->values[1]) {
		v[0] = xstrdup(row->values[0]);
		v[1] = xstrdup(row->values[1]);
	}
	return 0;
}

/* The function a late view of node n reads through (quoted). */
static void late_fn(const struct node *n, struct buf *out)
{
	char *name = plan_side_name(n->identifier, "reuse");

	dialect_relation(out, n->schema, name);
	free(name);
}

/*
 * Where views bind early, a view over theirs would hold their relation
 * by identity: each of their swaps would have to drop and re-create it,
 * in our schema. The view reads through a function instead (late_view),
 * and before gets the statement that makes it.
 */
static int late_view(struct build *b, struct exec_worker *w, const struct node *n, const char *theirs, const char *audit,
		     struct buf *before, struct buf *sql, struct sluice_err *err)
{
	const struct dialect *d = build_dialect(b, n);
	struct sluice_conn *c = build_worker_conn(b, w, n, err);
	struct buf q = BUF_INIT, fn = BUF_INIT;
	char *cols[2] = { NULL, NULL };
	int rc;

	if (!c)
		return err->code;
	d->read_columns_query(&q, theirs);
	rc = conn_send_query(c, audit, q.s, two_values, cols, err);
	if (!rc && !cols[0])
		rc = err_set(err, SLUICE_EDB, "%s: no columns", theirs);
	if (!rc) {
		late_fn(n, &fn);
		buf_reset(sql);
		d->late_view(before, sql, fn.s, theirs, cols[0], cols[1]);
	}
	free(cols[0]);
	free(cols[1]);
	buf_release(&q);
	buf_release(&fn);
	return rc;
}

int reuse_run(struct build *b, struct exec_worker *w, size_t idx, struct sluice_err *err)
{
	struct node_run *r = &b->runs[idx];
	struct node alt = b->s->manifest.nodes[idx];
	const struct val *from = &r->reused_from;
	struct plan_input in = { 0 };
	struct buf sql = BUF_INIT, audit = BUF_INIT, why = BUF_INIT, before = BUF_INIT, theirs = BUF_INIT;
	const char *pre[1];
	int rc = 0;

	/* what it keeps beyond a relation, checked again: it may have gone since the decision */
	if (r->kind->adopt && !r->kind->adopt(b, idx, r->reused_record, 1, &why)) {
		rc = err_set(err, SLUICE_EDB, "%s: cannot reuse %s's: %s", alt.name,
			     val_get_str(from, "target", "?"), why.s);
		buf_release(&why);
		return rc;
	}
	if (r->kind->flags & KIND_ADOPTS)
		return 0;
	if (r->kind->flags & KIND_REMADE)
		return r->kind->run(b, w, idx, err);
	/* a view over theirs, or a table copied from it: swapped in like any view or table */
	alt.mat = strcmp(val_get_str(from, "mode", "view"), "copy") ? MAT_VIEW : MAT_TABLE;
	in.dialect = build_dialect(b, &alt);
	dialect_relation(&theirs, val_get_str(from, "schema", ""), val_get_str(from, "identifier", ""));
	buf_printf(&sql, "SELECT * FROM %s", theirs.s);
	build_audit_comment(b, &alt, &audit);
	if (alt.mat == MAT_VIEW && in.dialect->late_view &&
	    !(rc = late_view(b, w, &alt, theirs.s, audit.s, &before, &sql, err))) {
		pre[0] = before.s;
		in.pre_hooks = pre;
		in.npre = 1;
	}
	in.node = &alt;
	in.sql = sql.s;
	in.existing = r->existing;
	in.audit = audit.s;
	plan_release(&r->plan);
	if (!rc)
		rc = plan_build(&in, &r->plan, err);
	buf_release(&sql);
	buf_release(&audit);
	buf_release(&theirs);
	buf_release(&before);
	if (rc)
		return rc;
	return build_run_plan(b, w, idx, NULL, err);
}

void reuse_tidy(struct build *b, struct exec_worker *w, size_t idx)
{
	const struct node *n = &b->s->manifest.nodes[idx];
	const struct val *was = val_get(build_prev_record(b, idx), "reused_from");
	const struct dialect *d = build_dialect(b, n);
	struct sluice_err err = SLUICE_ERR_INIT;
	struct buf fn = BUF_INIT, q = BUF_INIT;
	struct sluice_conn *c;

	if (!d->late_view_drop || !n->schema || strcmp(val_get_str(was, "mode", ""), "view") ||
	    !strcmp(val_get_str(&b->runs[idx].reused_from, "mode", ""), "view") || !(c = build_worker_conn(b, w, n, &err)))
		return;
	late_fn(n, &fn);
	d->late_view_drop(&q, fn.s);
	if (c->drv->exec(c, q.s, NULL, &err))
		ui_warn("%s: %s", n->name, err.msg);
	buf_release(&fn);
	buf_release(&q);
}

const struct val *reuse_record(const struct build *b, const char *target, const char *unique_id)
{
	size_t i;

	for (i = 0; i < b->nreuse_envs; i++)
		if (target && !strcmp(b->reuse_envs[i].target, target))
			return strmap_get(&b->reuse_envs[i].index, unique_id);
	return NULL;
}

void reuse_release(struct build *b)
{
	size_t i;

	for (i = 0; i < b->nreuse_envs; i++)
		strmap_release(&b->reuse_envs[i].index);
	free(b->reuse_envs);
	b->reuse_envs = NULL;
	b->nreuse_envs = 0;
}
