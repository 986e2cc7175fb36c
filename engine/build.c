/*
 * build.c: from selection to finished relations; see build.h.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "build.h"
#include "ui.h"
#include "util/fs.h"
#include "util/xalloc.h"

static size_t slot_of(const struct project *p, const char *conn)
{
	size_t i;

	for (i = 0; i < p->target.nconns; i++)
		if (!strcmp(p->target.conns[i].name, conn))
			return i;
	return 0;   /* manifest_build already rejected unknown names */
}

int build_connect(struct session *s, const char *name, struct sluice_conn **out,
		  const struct dialect **dialect, struct sluice_err *err)
{
	const struct conn_cfg *cfg = project_conn(&s->project, name);
	const struct sluice_connector *drv;
	const char *dname;
	struct sluice_conn_params params;
	int rc;

	if (!cfg)
		return err_set(err, SLUICE_EUSAGE, "unknown connection '%s'", name);
	if ((rc = connector_resolve(&cfg->settings, &drv, &dname, err)))
		return rc;
	if (dialect && !(*dialect = dialect_find(dname)))
		return err_set(err, SLUICE_EUSAGE, "connection '%s': unknown dialect '%s'", name, dname);
	params.name = cfg->name;
	params.settings = &cfg->settings;
	params.project_dir = s->project.dir;
	params.application_name = s->app_name;
	return drv->connect(&params, out, err);
}

static char *rel_key(struct arena *a, const char *schema, const char *ident)
{
	return arena_printf(a, "%s\x1f%s", schema, ident);
}

struct rel_ctx {
	struct build *b;
};

static int relation_row(void *ud, const struct sluice_row *row)
{
	struct build *b = ud;
	struct arena *a = &b->s->project.arena;
	enum rel_kind k;

	if (row->ncols < 3 || !row->values[0] || !row->values[1] || !row->values[2])
		return 0;
	k = !strcmp(row->values[2], "table") ? REL_TABLE : !strcmp(row->values[2], "view") ? REL_VIEW : REL_OTHER;
	strmap_put(&b->relations, rel_key(a, row->values[0], row->values[1]), (void *)(uintptr_t)(k + 1));
	return 0;
}

/* One catalog query per connection for the schemas this run writes. */
static int load_relations(struct build *b, size_t slot, struct sluice_err *err)
{
	struct manifest *m = &b->s->manifest;
	struct project *p = &b->s->project;
	const char **schemas = xcalloc(m->n + 1, sizeof(char *));
	struct strmap seen = STRMAP_INIT;
	struct buf q = BUF_INIT;
	size_t i, n = 0;
	int rc;

	for (i = 0; i < m->n; i++)
		if (b->todo[i] == EXEC_RUN && slot_of(p, m->nodes[i].connection) == slot && !strmap_get(&seen, m->nodes[i].schema)) {
			strmap_put(&seen, m->nodes[i].schema, (void *)1);
			schemas[n++] = m->nodes[i].schema;
		}
	b->slots[slot].dialect->relations_query(&q, schemas, n);
	rc = b->slots[slot].main->drv->query(b->slots[slot].main, q.s, relation_row, b, err);
	buf_release(&q);
	strmap_release(&seen);
	free(schemas);
	return rc;
}

static enum rel_kind existing_kind(struct build *b, const struct node *n)
{
	struct arena tmp = ARENA_INIT;
	void *v = strmap_get(&b->relations, rel_key(&tmp, n->schema, n->identifier));

	arena_release(&tmp);
	return v ? (enum rel_kind)((uintptr_t)v - 1) : REL_NONE;
}

static const char **render_hooks(struct build *b, const struct node *n, const char *key,
				 const struct compile_opts *o, struct arena *a, size_t *count,
				 struct sluice_err *err)
{
	const struct val *h = val_get(&n->config, key);
	const struct val *items = h;
	size_t nitems = 1, i;
	const char **out;

	*count = 0;
	if (!h || h->kind == V_NONE)
		return NULL;
	if (h->kind == V_LIST) {
		items = h->u.list.items;
		nitems = h->u.list.n;
	}
	out = arena_alloc(a, (nitems ? nitems : 1) * sizeof(char *));
	for (i = 0; i < nitems; i++) {
		struct buf sql = BUF_INIT;
		const struct val *it = &items[i];
		const char *src = it->kind == V_STR ? it->u.str.s : val_get_str(it, "sql", NULL);
		char what[512];
		if (!src) {
			err_set(err, SLUICE_EUSAGE, "%s: %s entries must be SQL strings", n->model->path, key);
			return NULL;
		}
		snprintf(what, sizeof(what), "%s (%s)", n->model->path, key);
		if (manifest_render_string(&b->s->manifest, n, arena_strdup(a, what), src, o, a, &sql, err)) {
			buf_release(&sql);
			return NULL;
		}
		out[(*count)++] = arena_strndup(a, sql.s, sql.len);
		buf_release(&sql);
	}
	return out;
}

static void write_target_file(struct build *b, const char *dir, const char *path, const char *text)
{
	struct buf file = BUF_INIT;
	struct sluice_err err = SLUICE_ERR_INIT;

	buf_printf(&file, "%s/%s/%s", b->s->project.target_path, dir, path);
	if (fs_write_if_changed(file.s, text, strlen(text), &err))
		ui_warn("%s", err.msg);
	buf_release(&file);
}

static void audit_comment(struct build *b, const struct node *n, struct buf *out)
{
	buf_printf(out, "/* sluice run=%s node=%s user=%s */\n", b->s->invocation_id, n->unique_id, b->s->user);
}

static int prepare_node(struct build *b, struct node *n)
{
	struct node_run *r = &b->runs[n->idx];
	struct compile_opts o = { 0, b->s->invocation_id };
	struct arena scratch = ARENA_INIT;
	struct buf sql = BUF_INIT, audit = BUF_INIT, run = BUF_INIT;
	struct plan_input in = { 0 };
	int rc;

	r->compile_started = now_seconds();
	r->existing = b->offline ? REL_NONE : existing_kind(b, n);
	o.is_incremental = n->mat == MAT_INCREMENTAL && r->existing == REL_TABLE && !b->s->cli->full_refresh;
	rc = manifest_compile(&b->s->manifest, n, &o, &scratch, &sql, NULL, &r->err);
	if (!rc) {
		audit_comment(b, n, &audit);
		in.node = n;
		in.dialect = b->slots[slot_of(&b->s->project, n->connection)].dialect;
		in.sql = sql.s;
		in.existing = r->existing;
		in.incremental = o.is_incremental;
		in.audit = audit.s;
		in.pre_hooks = render_hooks(b, n, "pre_hook", &o, &scratch, &in.npre, &r->err);
		if (r->err.code)
			rc = r->err.code;
		in.post_hooks = render_hooks(b, n, "post_hook", &o, &scratch, &in.npost, &r->err);
		if (!rc && r->err.code)
			rc = r->err.code;
	}
	if (!rc)
		rc = plan_build(&in, &r->plan, &r->err);
	if (!rc) {
		write_target_file(b, "compiled", n->model->path, sql.s);
		plan_write(&r->plan, &run);
		write_target_file(b, "run", n->model->path, run.s);
	}
	r->failed_early = rc != 0;
	r->compile_done = now_seconds();
	buf_release(&sql);
	buf_release(&audit);
	buf_release(&run);
	arena_release(&scratch);
	return rc;
}

int build_prepare(struct build *b, struct session *s, int offline, struct sluice_err *err)
{
	struct manifest *m = &s->manifest;
	struct project *p = &s->project;
	size_t i;
	int rc;

	memset(b, 0, sizeof(*b));
	b->s = s;
	b->offline = offline;
	b->runs = xcalloc(m->n ? m->n : 1, sizeof(*b->runs));
	b->todo = xcalloc(m->n ? m->n : 1, 1);
	b->slots = xcalloc(p->target.nconns, sizeof(*b->slots));
	for (i = 0; i < m->n; i++) {
		if (m->nodes[i].type != NODE_MODEL)
			continue;
		if (m->nodes[i].mat == MAT_EPHEMERAL) {
			/* never built, but children wait for its parents */
			b->todo[i] = EXEC_PASS;
		} else if (s->selected[i]) {
			b->todo[i] = EXEC_RUN;
			b->ntodo++;
		}
	}
	for (i = 0; i < p->target.nconns; i++) {
		const char *dname;
		if ((rc = connector_resolve(&p->target.conns[i].settings, &b->slots[i].drv, &dname, err)))
			return err_prefix(err, "%s: connection '%s'", p->target.profiles_path ? p->target.profiles_path : "profile",
					  p->target.conns[i].name);
		if (!(b->slots[i].dialect = dialect_find(dname)))
			return err_set(err, SLUICE_EUSAGE, "connection '%s': unknown dialect '%s'", p->target.conns[i].name, dname);
	}
	if (!offline) {
		for (i = 0; i < p->target.nconns; i++) {
			size_t k;
			int used = i == 0;
			for (k = 0; k < m->n && !used; k++)
				used = b->todo[k] == EXEC_RUN && slot_of(p, m->nodes[k].connection) == i;
			if (!used)
				continue;
			if ((rc = build_connect(s, p->target.conns[i].name, &b->slots[i].main, NULL, err)))
				return rc;
			if ((rc = load_relations(b, i, err)))
				return rc;
		}
	}
	for (i = 0; i < m->n; i++)
		if (b->todo[i] == EXEC_RUN)
			prepare_node(b, &m->nodes[i]);
	return 0;
}

/* ---- execution ---- */

static struct sluice_conn *worker_conn(struct build *b, struct exec_worker *w, size_t slot,
				       struct sluice_err *err)
{
	struct sluice_conn **c = &b->worker_conns[w->id - 1][slot];

	if (!*c && build_connect(b->s, b->s->project.target.conns[slot].name, c, NULL, err))
		return NULL;
	return *c;
}

static int job_run(void *ud, struct exec_worker *w, size_t idx, int *reused, struct sluice_err *err)
{
	struct build *b = ud;
	struct node *n = &b->s->manifest.nodes[idx];
	struct node_run *r = &b->runs[idx];
	size_t slot = slot_of(&b->s->project, n->connection);
	struct sluice_conn *c;
	int rc;

	*reused = 0;
	if (r->failed_early) {
		*err = r->err;
		return r->err.code ? r->err.code : SLUICE_EUSAGE;
	}
	if (!(c = worker_conn(b, w, slot, err)))
		return err->code;
	exec_worker_busy(w, c);
	rc = plan_exec(&r->plan, c, &r->rows, err);
	exec_worker_busy(w, NULL);
	if (rc == SLUICE_ECONN) {
		/* Reconnect for the next job rather than reuse a dead session. */
		c->drv->close(c);
		b->worker_conns[w->id - 1][slot] = NULL;
	}
	return rc;
}

static const char *job_name(void *ud, size_t idx)
{
	struct build *b = ud;

	return b->s->manifest.nodes[idx].name;
}

static void job_started(void *ud, struct exec_worker *w, size_t idx, int seq)
{
	struct build *b = ud;
	struct node *n = &b->s->manifest.nodes[idx];

	b->runs[idx].started = now_seconds();
	b->runs[idx].seq = seq;
	b->runs[idx].thread_id = w->id;
	ui_node_start(seq, b->ntodo, n->mat_name, n->display, n->unique_id);
}

static void job_finished(void *ud, struct exec_worker *w, size_t idx, int seq, enum exec_status st,
			 const struct sluice_err *err)
{
	struct build *b = ud;
	struct node *n = &b->s->manifest.nodes[idx];
	struct node_run *r = &b->runs[idx];
	static const char *const words[] = { "PENDING", "OK", "ERROR", "SKIP", "REUSED" };

	(void)w;
	r->finished = now_seconds();
	if (!r->started)
		r->started = r->finished;
	r->status = st;
	if (st != EXEC_SUCCESS && err && err->msg[0] && !r->err.msg[0])
		r->err = *err;
	switch (st) {
	case EXEC_SUCCESS: b->ok++; break;
	case EXEC_ERROR: b->errors++; break;
	case EXEC_SKIPPED: b->skipped++; break;
	case EXEC_REUSED: b->reused++; break;
	default: break;
	}
	ui_node_done(seq, b->ntodo, words[st], n->mat_name, n->display, n->unique_id, r->finished - r->started,
		     st == EXEC_SUCCESS ? r->rows : -1, st == EXEC_SUCCESS ? NULL : r->err.msg);
}

static const struct exec_ops build_ops = {
	.run = job_run,
	.name = job_name,
	.started = job_started,
	.finished = job_finished,
};

static int run_hooks(struct build *b, const struct val *hooks, const char *what, struct sluice_err *err)
{
	struct conn_slot *slot = &b->slots[0];
	struct compile_opts o = { 0, b->s->invocation_id };
	size_t i;
	int rc = 0;

	if (!hooks || hooks->kind != V_LIST || !hooks->u.list.n)
		return 0;
	if (!slot->main && (rc = build_connect(b->s, "default", &slot->main, NULL, err)))
		return rc;
	for (i = 0; i < hooks->u.list.n && !rc; i++) {
		struct arena scratch = ARENA_INIT;
		struct buf sql = BUF_INIT;
		const struct val *h = &hooks->u.list.items[i];
		if (h->kind != V_STR) {
			arena_release(&scratch);
			return err_set(err, SLUICE_EUSAGE, "sluice.yml: %s entries must be SQL strings", what);
		}
		rc = manifest_render_string(&b->s->manifest, NULL, "sluice.yml", h->u.str.s, &o, &scratch, &sql, err);
		if (!rc && sql.len) {
			struct buf q = BUF_INIT;
			buf_printf(&q, "/* sluice run=%s node=%s user=%s */\n%s", b->s->invocation_id, what, b->s->user, sql.s);
			rc = slot->main->drv->exec(slot->main, q.s, NULL, err);
			buf_release(&q);
			if (rc)
				err_prefix(err, "%s hook %zu", what, i + 1);
		}
		buf_release(&sql);
		arena_release(&scratch);
	}
	return rc;
}

/* Schemas are created up front: concurrent CREATE SCHEMA IF NOT EXISTS can collide. */
static int create_schemas(struct build *b, struct sluice_err *err)
{
	struct manifest *m = &b->s->manifest;
	struct strmap seen = STRMAP_INIT;
	size_t i;
	int rc = 0;

	for (i = 0; i < m->n && !rc; i++) {
		size_t slot = slot_of(&b->s->project, m->nodes[i].connection);
		struct buf q = BUF_INIT;
		char *key;
		if (b->todo[i] != EXEC_RUN || b->runs[i].failed_early)
			continue;
		key = rel_key(&b->s->project.arena, m->nodes[i].connection, m->nodes[i].schema);
		if (strmap_get(&seen, key))
			continue;
		strmap_put(&seen, key, (void *)1);
		b->slots[slot].dialect->create_schema(&q, m->nodes[i].schema);
		rc = b->slots[slot].main->drv->exec(b->slots[slot].main, q.s, NULL, err);
		buf_release(&q);
	}
	strmap_release(&seen);
	return rc;
}

int build_execute(struct build *b, struct sluice_err *err)
{
	struct project *p = &b->s->project;
	int rc, t;
	void **wud;

	if ((rc = create_schemas(b, err)) || (rc = run_hooks(b, &p->on_run_start, "on-run-start", err)))
		return rc;
	b->threads = b->s->cli->threads ? b->s->cli->threads : p->target.threads;
	b->worker_conns = xcalloc((size_t)b->threads, sizeof(*b->worker_conns));
	wud = xcalloc((size_t)b->threads, sizeof(void *));
	for (t = 0; t < b->threads; t++)
		b->worker_conns[t] = xcalloc(p->target.nconns, sizeof(struct sluice_conn *));
	b->ex.dag = b->s->manifest.dag;
	b->ex.todo = b->todo;
	b->ex.threads = b->threads;
	b->ex.ops = &build_ops;
	b->ex.ud = b;
	b->ex.worker_ud = wud;
	rc = executor_run(&b->ex);
	free(wud);
	if (rc != SLUICE_ECANCEL) {
		struct sluice_err hook_err = SLUICE_ERR_INIT;
		int hrc = run_hooks(b, &p->on_run_end, "on-run-end", &hook_err);
		if (hrc && !rc) {
			*err = hook_err;
			rc = hrc;
		} else if (hrc) {
			ui_error("%s", hook_err.msg);
		}
	} else {
		err_set(err, SLUICE_ECANCEL, "run cancelled by signal %d", b->ex.signo);
	}
	b->finished_at = now_seconds();
	return rc;
}

void build_release(struct build *b)
{
	struct manifest *m = b->s ? &b->s->manifest : NULL;
	size_t i, k;

	if (!b->s)
		return;
	for (i = 0; i < m->n; i++)
		plan_release(&b->runs[i].plan);
	for (k = 0; k < b->s->project.target.nconns; k++)
		if (b->slots && b->slots[k].main)
			b->slots[k].main->drv->close(b->slots[k].main);
	if (b->worker_conns) {
		for (i = 0; i < (size_t)b->threads; i++) {
			for (k = 0; k < b->s->project.target.nconns; k++)
				if (b->worker_conns[i][k])
					b->worker_conns[i][k]->drv->close(b->worker_conns[i][k]);
			free(b->worker_conns[i]);
		}
		free(b->worker_conns);
	}
	executor_release(&b->ex);
	strmap_release(&b->relations);
	free(b->slots);
	free(b->runs);
	free(b->todo);
}
