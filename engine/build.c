/*
 * build.c: from selection to finished nodes; see build.h. Schedules,
 * decides and records; what each node does is its kind's (kind.h).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "audit.h"
#include "build.h"
#include "reuse.h"
#include "ui.h"
#include "util/clock.h"
#include "util/fs.h"
#include "util/xalloc.h"

/* Kinds whose nodes build what children read: build.c fingerprints them (unless their decide slot does). */
static int builds_for_children(const struct node_kind *k)
{
	return (k->what & BUILD_RELATIONS) != 0;
}

static const struct node *node_at(const struct build *b, size_t idx)
{
	return &b->s->manifest.nodes[idx];
}

/* ---- what exists ---- */

/* The relation cache's key: "schema<US>ident". */
static void rel_key_into(struct buf *b, const char *schema, const char *ident)
{
	buf_printf(b, "%s\x1f%s", schema, ident);
}

static char *rel_key(struct arena *a, const char *schema, const char *ident)
{
	struct buf b = BUF_INIT;
	char *key;

	rel_key_into(&b, schema, ident);
	key = arena_strndup(a, b.s, b.len);
	buf_release(&b);
	return key;
}

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

/* A seed or a snapshot: built by its own command (sluice seed, sluice snapshot), read by others. */
static int own_command(const struct node *n)
{
	return n->model && strcmp(n->model->resource, "model");
}

/*
 * One catalog query per connection for the schemas this run writes, and
 * those of seeds and snapshots, which it may read without building them.
 */
static int load_relations(struct build *b, size_t slot, struct sluice_err *err)
{
	struct manifest *m = &b->s->manifest;
	struct project *p = &b->s->project;
	const char **schemas = xcalloc(m->n + 1, sizeof(char *));
	struct strmap seen = STRMAP_INIT;
	struct sluice_conn *c;
	struct buf q = BUF_INIT;
	size_t i, n = 0;
	int rc;

	for (i = 0; i < m->n; i++)
		if ((b->todo[i] == EXEC_RUN || own_command(&m->nodes[i])) && m->nodes[i].schema &&
		    conn_slot_of(p, m->nodes[i].connection) == slot &&
		    !strmap_get(&seen, m->nodes[i].schema)) {
			strmap_put(&seen, m->nodes[i].schema, (void *)1);
			schemas[n++] = m->nodes[i].schema;
		}
	conn_pool_dialect(&b->conns, slot)->relations_query(&q, schemas, n);
	if (!(c = conn_pool_main(&b->conns, slot, err)))
		rc = err->code;
	else
		rc = c->drv->query(c, q.s, relation_row, b, err);
	buf_release(&q);
	strmap_release(&seen);
	free(schemas);
	return rc;
}

static enum rel_kind existing_kind(struct build *b, const struct node *n)
{
	struct buf key = BUF_INIT;
	void *v;

	if (!n->schema || !n->identifier)
		return REL_NONE;
	rel_key_into(&key, n->schema, n->identifier);
	v = strmap_get(&b->relations, key.s);
	buf_release(&key);
	return v ? (enum rel_kind)((uintptr_t)v - 1) : REL_NONE;
}

/* ---- target/ ---- */

/*
 * Whether the directory of path was created by this run (so no file in it
 * can hold old content worth comparing). Creates it when missing. Looking
 * up files that cannot exist costs more than writing them on some file
 * systems. Workers call it too: the arena is only touched under the lock.
 */
static int fresh_dir(struct build *b, const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t len = slash ? (size_t)(slash - path) : 0;
	struct sluice_err err = SLUICE_ERR_INIT;
	struct buf dir = BUF_INIT;
	uintptr_t state;

	buf_add(&dir, path, len);
	pthread_mutex_lock(&b->dirs_lock);
	state = (uintptr_t)strmap_get(&b->dirs, dir.s);
	if (!state) {
		state = fs_is_dir(dir.s) ? 1 : 2;
		if (state == 2 && fs_mkdir_p(dir.s, &err))
			state = 1;      /* let the write report it */
		strmap_put(&b->dirs, arena_strndup(&b->dir_arena, dir.s, dir.len), (void *)state);
	}
	pthread_mutex_unlock(&b->dirs_lock);
	buf_release(&dir);
	return state == 2;
}

static void target_write_now(struct build *b, const char *path, const char *text, size_t len)
{
	struct sluice_err err = SLUICE_ERR_INIT;

	if (fresh_dir(b, path) ? fs_write_file(path, text, len, &err) : fs_write_if_changed(path, text, len, &err))
		ui_warn("%s", err.msg);
}

/*
 * A no-op run at 10,000 models compares 20,000 files in target/ with what
 * it would write, a third of its preparing; one thread does that while the
 * main thread goes on compiling and deciding. The queue holds copies, at
 * most TARGET_QUEUE_MAX bytes, so memory stays bounded however far behind
 * the thread falls.
 */
#define TARGET_QUEUE_MAX (1 << 20)

struct target_file {
	struct target_file *next;
	size_t len;
	char *text;                    /* after the path, in the same allocation */
	char path[];
};

struct target_writer {
	pthread_t th;
	pthread_mutex_t lock;
	pthread_cond_t cond;           /* a file queued, room made, or closing */
	struct target_file *head, *tail;
	size_t pending;                /* bytes queued */
	int closing;
};

static void *target_writer_main(void *ud)
{
	struct build *b = ud;
	struct target_writer *w = b->writer;
	struct target_file *f;

	for (;;) {
		pthread_mutex_lock(&w->lock);
		while (!w->head && !w->closing)
			pthread_cond_wait(&w->cond, &w->lock);
		if (!(f = w->head)) {
			pthread_mutex_unlock(&w->lock);
			return NULL;
		}
		pthread_mutex_unlock(&w->lock);
		target_write_now(b, f->path, f->text, f->len);
		pthread_mutex_lock(&w->lock);
		if (!(w->head = f->next))
			w->tail = NULL;
		w->pending -= f->len;
		pthread_cond_broadcast(&w->cond);
		pthread_mutex_unlock(&w->lock);
		free(f);
	}
}

/* Start the writer; without a thread, files are written at once. Main thread, before any worker. */
static void target_writer_start(struct build *b)
{
	struct target_writer *w = xcalloc(1, sizeof(*w));

	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	b->writer = w;
	if (pthread_create(&w->th, NULL, target_writer_main, b)) {
		pthread_mutex_destroy(&w->lock);
		pthread_cond_destroy(&w->cond);
		free(w);
		b->writer = NULL;
	}
}

void build_flush_target(struct build *b)
{
	struct target_writer *w = b->writer;

	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->closing = 1;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->th, NULL);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	free(w);
	b->writer = NULL;
}

void build_write_target_file(struct build *b, const char *dir, const char *path, const char *text)
{
	struct target_writer *w = b->writer;
	struct target_file *f;
	size_t len = strlen(text), plen;
	struct buf file = BUF_INIT;

	buf_printf(&file, "%s/%s/%s", b->s->project.target_path, dir, path);
	if (!w) {
		target_write_now(b, file.s, text, len);
		buf_release(&file);
		return;
	}
	plen = file.len + 1;
	f = xmalloc(sizeof(*f) + plen + len + 1);
	f->next = NULL;
	f->len = len;
	memcpy(f->path, file.s, plen);
	f->text = f->path + plen;
	memcpy(f->text, text, len + 1);
	buf_release(&file);
	pthread_mutex_lock(&w->lock);
	while (w->pending && w->pending + len > TARGET_QUEUE_MAX)
		pthread_cond_wait(&w->cond, &w->lock);
	if (w->tail)
		w->tail->next = f;
	else
		w->head = f;
	w->tail = f;
	w->pending += len;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

/* ---- for the kinds ---- */

struct sluice_err *run_err(struct node_run *r)
{
	if (!r->err)
		r->err = xcalloc(1, sizeof(*r->err));
	return r->err;
}

int run_err_code(const struct node_run *r)
{
	return r->err ? r->err->code : 0;
}

const char *run_err_msg(const struct node_run *r)
{
	return r->err ? r->err->msg : "";
}

void build_audit_comment(const struct build *b, const struct node *n, struct buf *out)
{
	conn_audit_comment(b->s, n->unique_id, out);
}

const struct dialect *build_dialect(const struct build *b, const struct node *n)
{
	return conn_pool_dialect(&b->conns, conn_slot_of(&b->s->project, n->connection));
}

struct sluice_conn *build_worker_conn(struct build *b, struct exec_worker *w, const struct node *n,
				      struct sluice_err *err)
{
	return conn_pool_worker(&b->conns, w->id, conn_slot_of(&b->s->project, n->connection), err);
}

struct sluice_conn *build_main_conn(struct build *b, const struct node *n, struct sluice_err *err)
{
	return conn_pool_main(&b->conns, conn_slot_of(&b->s->project, n->connection), err);
}

struct arena *build_worker_arena(struct build *b, const struct exec_worker *w)
{
	return &b->worker_arenas[w->id - 1];
}

void **build_kind_data(const struct build *b, const struct node_kind *k)
{
	size_t i;

	for (i = 0; i < node_kinds_n; i++)
		if (node_kinds[i] == k)
			return &b->kind_data[i];
	return NULL;
}

void build_set_exec_dag(struct build *b, const struct dag *dag, unsigned char *todo, const struct node_kind *owner)
{
	b->exec_dag = dag;
	b->exec_todo = todo;
	b->extra_owner = owner;
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

int build_plan_node(struct build *b, size_t idx, const struct compile_opts *o, int incremental,
		    void (*describe)(const struct build *b, const struct node *n, const char *sql, struct buf *out))
{
	const struct node *n = node_at(b, idx);
	struct node_run *r = &b->runs[idx];
	struct arena scratch = ARENA_INIT;
	struct buf sql = BUF_INIT, audit = BUF_INIT, run = BUF_INIT, stage = BUF_INIT;
	struct plan_input in = { 0 };
	struct sluice_err e = SLUICE_ERR_INIT;
	int rc;

	plan_release(&r->plan);
	rc = manifest_compile(&b->s->manifest, n, o, &scratch, &sql, NULL, &e);
	if (!rc && describe) {
		describe(b, n, sql.s, &stage);
		in.stage_text = stage.s;
	}
	if (!rc) {
		build_audit_comment(b, n, &audit);
		in.node = n;
		in.dialect = build_dialect(b, n);
		in.sql = sql.s;
		in.existing = r->existing;
		in.incremental = incremental;
		in.audit = audit.s;
		in.pre_hooks = render_hooks(b, n, "pre_hook", o, &scratch, &in.npre, &e);
		if (e.code)
			rc = e.code;
		in.post_hooks = render_hooks(b, n, "post_hook", o, &scratch, &in.npost, &e);
		if (!rc && e.code)
			rc = e.code;
	}
	if (!rc)
		rc = plan_build(&in, &r->plan, &e);
	if (rc)
		*run_err(r) = e;
	if (!rc && b->mode != BUILD_PLAN) {
		/* plan changes nothing, target/ included */
		build_write_target_file(b, "compiled", n->model->path, sql.s);
		plan_write(&r->plan, &run);
		build_write_target_file(b, "run", n->model->path, run.s);
	}
	buf_release(&sql);
	buf_release(&audit);
	buf_release(&run);
	buf_release(&stage);
	arena_release(&scratch);
	return rc;
}

/* ---- fingerprints ---- */

const struct val *build_prev_record(const struct build *b, size_t idx)
{
	const struct val *r = strmap_get(&b->record_index, node_at(b, idx)->unique_id);

	return r && r->kind == V_DICT ? r : NULL;
}

static void node_fp(const struct build *b, size_t idx, const char *def, struct arena *a, struct fp *out);

const char *build_effective(const struct build *b, size_t p, struct arena *a)
{
	const struct node_run *r = &b->runs[p];
	const char *def = NULL;
	struct fp fp;

	if (r->effective[0])
		return r->effective;
	/*
	 * A live node not settled: what it reads now. An ephemeral model is
	 * inlined as its code is now; a view not selected is read as the
	 * warehouse holds it, with the definition it was last built with.
	 */
	if (!(r->kind->flags & KIND_PASS))
		def = val_get_str(build_prev_record(b, p), "def_fingerprint", NULL);
	node_fp(b, p, def, a, &fp);
	return arena_strdup(a, fp.full);
}

static void node_fp(const struct build *b, size_t idx, const char *def, struct arena *a, struct fp *out)
{
	const struct manifest *m = &b->s->manifest;
	const struct dag *d = m->dag;
	size_t np = d->nparents[idx], i;
	const char **pfp = arena_alloc(a, (np + 1) * sizeof(char *));
	const char **pver = arena_alloc(a, (np + 1) * sizeof(char *));
	struct fp_input in = { b->runs[idx].logical_sql, &b->runs[idx].used_vars, pfp, pver, &b->runs[idx].inputs,
			       def };

	for (i = 0; i < np; i++) {
		size_t p = d->parents[idx][i];
		if (m->nodes[p].type == NODE_SOURCE) {
			const char *v = b->versions.version ? b->versions.version[p] : NULL;
			pver[i] = v ? v : "unknown";
		} else {
			pfp[i] = build_effective(b, p, a);
		}
	}
	fp_compute(m, &m->nodes[idx], &in, a, out);
}

/* Fingerprint node idx and decide build or reuse (runs[idx].fp, .decision). */
static void decide(struct build *b, size_t idx, struct arena *a)
{
	struct node_run *r = &b->runs[idx];
	const struct node_kind *k = r->kind;
	struct fp_context ctx = { 0 };

	if (k->decide) {
		k->decide(b, idx, a);
		return;
	}
	if (k->reads)
		k->reads(b, idx, a, &ctx);   /* its files, before they feed the fingerprint */
	node_fp(b, idx, NULL, a, &r->fp);
	ctx.prev = build_prev_record(b, idx);
	ctx.relation_exists = k->exists ? k->exists(b, idx) : r->existing != REL_NONE;
	ctx.relation_version = b->versions.version ? b->versions.version[idx] : NULL;
	ctx.force = b->s->cli->force;
	ctx.full_refresh = b->s->cli->full_refresh;
	fp_decide(&b->s->manifest, node_at(b, idx), &r->fp, &ctx, a, &r->decision);
	r->decided = 1;
}

/*
 * After deciding: reuse from another environment (reuse.h), asked on the
 * worker's connection, or the main one when w is NULL (plan).
 */
static void decide_reuse(struct build *b, size_t idx, struct exec_worker *w, struct arena *a)
{
	const struct node *n = node_at(b, idx);
	struct sluice_err ignored = SLUICE_ERR_INIT;

	if (!reuse_wanted(b, idx))
		return;
	reuse_decide(b, idx, w ? build_worker_conn(b, w, n, &ignored) : build_main_conn(b, n, &ignored), a);
}

void build_set_effective(struct build *b, size_t idx)
{
	struct node_run *r = &b->runs[idx];
	const char *prev = val_get_str(build_prev_record(b, idx), "effective_fingerprint", NULL);

	if ((r->kind->flags & KIND_LIVE) || r->decision.build || !prev) {
		/* A view always passes on what it reads now. */
		snprintf(r->effective, sizeof(r->effective), "%s", r->fp.full);
		if (r->output_checksum) {
			char buf[FP_HEX + 64];
			snprintf(buf, sizeof(buf), "cutoff:%s", r->output_checksum);
			hash_hex(buf, strlen(buf), r->effective);
		} else if (r->decision.kept_outside) {
			/*
			 * An incremental run keeps a write made outside sluice: what
			 * reads this relation has not seen it yet, so it sees a change
			 * (the version that showed the write makes it this write's).
			 */
			char buf[FP_HEX + 512];
			snprintf(buf, sizeof(buf), "kept:%s:%s", r->fp.full,
				 b->versions.version && b->versions.version[idx] ? b->versions.version[idx] : "");
			hash_hex(buf, strlen(buf), r->effective);
		}
	} else {
		snprintf(r->effective, sizeof(r->effective), "%s", prev);
	}
}

static void set_effective(struct build *b, size_t idx, int built)
{
	const struct node_kind *k = b->runs[idx].kind;

	if (k->effective)
		k->effective(b, idx, built);
	else
		build_set_effective(b, idx);
}

void build_release_children(struct build *b, struct exec_worker *w, size_t idx)
{
	/* children decide on it: set before they can start, and never again (node_job) */
	set_effective(b, idx, 1);
	exec_release_children(w, idx);
}

static void render_logical(struct build *b)
{
	const struct manifest *m = &b->s->manifest;
	struct compile_opts o = { .invocation_id = b->s->invocation_id, .logical = 1 };
	size_t i;

	for (i = 0; i < m->n; i++) {
		struct node_run *r = &b->runs[i];
		struct buf sql = BUF_INIT;
		struct sluice_err ignored = SLUICE_ERR_INIT;
		struct arena scratch = ARENA_INIT;
		struct val used = val_dict_new();
		if (!builds_for_children(r->kind))
			continue;
		/* A render error shows when the node itself compiles. */
		if (!manifest_compile(m, &m->nodes[i], &o, &scratch, &sql, &used, &ignored))
			r->logical_sql = buf_detach(&sql, NULL);
		/* keep what was read, not the render's temporaries */
		r->used_vars = val_clone(&b->arena, &used);
		buf_release(&sql);
		arena_release(&scratch);
	}
}

/*
 * Nodes not run now show children what they last built (or, never built,
 * what they would build). Live nodes are not settled: they pass on what
 * they read now, computed when a child asks (build_effective).
 */
static void settle_unselected(struct build *b)
{
	const struct manifest *m = &b->s->manifest;
	size_t k;

	for (k = 0; k < m->n; k++) {
		size_t i = m->dag->order[k];
		const char *prev;
		struct fp fp;
		if (!builds_for_children(b->runs[i].kind) || b->todo[i])
			continue;
		prev = val_get_str(build_prev_record(b, i), "effective_fingerprint", NULL);
		if (prev) {
			snprintf(b->runs[i].effective, FP_HEX, "%s", prev);
		} else {
			node_fp(b, i, NULL, &b->arena, &fp);
			snprintf(b->runs[i].effective, FP_HEX, "%s", fp.full);
		}
	}
}

/* ---- state ---- */

static int state_connect(void *ud, struct sluice_conn **out, const struct dialect **d, struct sluice_err *err)
{
	struct session *s = ud;

	return conn_open(s, "default", out, d, err);
}

static const char *state_spec(const struct build *b)
{
	return val_get_str(&b->s->project.raw, "state", "local");
}

int build_state_open(struct session *s, struct state **out, struct sluice_err *err)
{
	return build_state_open_target(s, s->project.target.name, out, err);
}

int build_state_open_target(struct session *s, const char *target, struct state **out, struct sluice_err *err)
{
	struct project *p = &s->project;
	struct state_opts o = { 0 };

	o.spec = val_get_str(&p->raw, "state", "local");
	o.project_dir = p->dir;
	o.project = p->name;
	o.target = target;
	o.user = s->user;
	o.invocation_id = s->invocation_id;
	o.connect = state_connect;
	o.connect_ud = s;
	o.s3 = val_get(&p->target.conns[0].settings, "s3");
	return state_open(out, &o, err);
}

static int open_state(struct build *b, struct sluice_err *err)
{
	int rc;

	if ((rc = build_state_open(b->s, &b->state, err)))
		return rc;
	if (b->mode == BUILD_RUN && (rc = state_lock(b->state, b->s->cli->wait_lock, err)))
		return rc;
	b->records = val_dict_new();
	if ((rc = state_load(b->state, &b->arena, &b->records, err)))
		return rc;
	for (size_t i = 0; i < b->records.u.dict.n; i++)
		strmap_put(&b->record_index, b->records.u.dict.keys[i], &b->records.u.dict.vals[i]);
	return 0;
}

/*
 * The state record of a node that just ran: what build.c decided, then
 * the kind's own fields. A failed write fails the node: a record lost
 * would make the next run redo, or worse repeat, what this one did.
 */
static int put_record(struct build *b, size_t idx, const char *status, struct arena *a, struct sluice_err *err)
{
	const struct node *n = node_at(b, idx);
	struct node_run *r = &b->runs[idx];
	int ok = !strcmp(status, "success");
	struct val rec = val_dict_new();

	if (!b->state)
		return 0;
	val_dict_set(a, &rec, "unique_id", val_str(n->unique_id));
	val_dict_set(a, &rec, "status", val_str(status));
	val_dict_set(a, &rec, "invocation_id", val_str(b->s->invocation_id));
	val_dict_set(a, &rec, "finished_at", val_num(r->finished ? r->finished : now_seconds()));
	val_dict_set(a, &rec, "duration", val_num(r->finished > r->started ? r->finished - r->started : 0));
	/* who built it, from what: what `sluice blame` tells (docs/blame.md) */
	val_dict_set(a, &rec, "user", val_str(b->s->id.user));
	val_dict_set(a, &rec, "user_source", val_str(b->s->id.user_source));
	/* null: not in a git repository (a record without the key predates it) */
	val_dict_set(a, &rec, "git_commit", b->s->id.git_commit[0] ? val_str(b->s->id.git_commit) : val_none());
	val_dict_set(a, &rec, "git_dirty", val_bool(b->s->id.git_dirty));
	if (!r->kind->decide) {
		/* where it is, for another target reusing it (docs/environments.md) */
		val_dict_set(a, &rec, "target", val_str(b->s->project.target.name));
		val_dict_set(a, &rec, "relation", val_str(n->display));
		if (n->schema && n->identifier) {
			val_dict_set(a, &rec, "schema", val_str(n->schema));
			val_dict_set(a, &rec, "identifier", val_str(n->identifier));
		}
		val_dict_set(a, &rec, "materialized", val_str(n->mat_name));
	}
	if (ok && r->reused_from.kind == V_DICT)
		val_dict_set(a, &rec, "reused_from", r->reused_from);
	if (!r->kind->decide && ok) {
		val_dict_set(a, &rec, "fingerprint", val_str(arena_strdup(a, r->fp.full)));
		val_dict_set(a, &rec, "def_fingerprint", val_str(arena_strdup(a, r->fp.def)));
		val_dict_set(a, &rec, "code_hash", val_str(arena_strdup(a, r->fp.code)));
		val_dict_set(a, &rec, "config_hash", val_str(arena_strdup(a, r->fp.config)));
		val_dict_set(a, &rec, "vars_hash", val_str(arena_strdup(a, r->fp.vars)));
		val_dict_set(a, &rec, "vars", r->fp.var_hashes);
		val_dict_set(a, &rec, "upstream", r->fp.upstream);
		val_dict_set(a, &rec, "sources", r->fp.sources);
		val_dict_set(a, &rec, "rows", val_num((double)r->rows));
		val_dict_set(a, &rec, "effective_fingerprint", val_str(arena_strdup(a, r->effective)));
		if (r->output_checksum)
			val_dict_set(a, &rec, "output_checksum", val_str(arena_strdup(a, r->output_checksum)));
		if (r->relation_version)
			val_dict_set(a, &rec, "relation_version", val_str(arena_strdup(a, r->relation_version)));
	}
	if (!r->kind->decide && ok && r->inputs.kind == V_DICT)
		val_dict_set(a, &rec, "inputs", r->inputs);
	if (r->kind->record)
		r->kind->record(b, idx, ok, &rec, a);
	/* the backend's message names itself, the node and the cause */
	return state_put(b->state, n->unique_id, &rec, err);
}

/* One batched version query per connection: sources the run reads, relations it may rebuild. */
static int read_versions(struct build *b, struct sluice_err *err)
{
	const struct manifest *m = &b->s->manifest;
	unsigned char *want = xcalloc(m->n ? m->n : 1, 1);
	size_t i, k;
	int rc;

	for (i = 0; i < m->n; i++) {
		if (!b->todo[i])
			continue;
		if (b->todo[i] == EXEC_RUN && b->runs[i].kind->wants)
			b->runs[i].kind->wants(b, i, want);
		for (k = 0; k < m->dag->nparents[i]; k++)
			if (m->nodes[m->dag->parents[i][k]].type == NODE_SOURCE)
				want[m->dag->parents[i][k]] = 1;
		if (b->todo[i] == EXEC_RUN && b->runs[i].existing != REL_NONE)
			want[i] = 1;
	}
	rc = sources_versions(b->s, &b->conns, want, &b->versions, err);
	free(want);
	return rc;
}

/* ---- preparing ---- */

int build_prepare(struct build *b, struct session *s, enum build_mode mode, struct sluice_err *err)
{
	return build_prepare_nodes(b, s, mode, BUILD_MODELS, err);
}

/* The kinds this command runs. */
static int kind_in_run(const struct build *b, const struct node_kind *k)
{
	return (k->what & b->what) != 0;
}

/* Whether node i is chosen for this command: its kind runs here and it is selected. */
static int chosen(struct build *b, size_t i)
{
	const struct node_kind *k = b->runs[i].kind;

	return kind_in_run(b, k) && (k->selected ? k->selected(b, i) : b->s->selected[i]);
}

/* Whether slot i needs its main connection now: the default one, and those models of this run use. */
static int slot_used(const struct build *b, size_t slot)
{
	const struct manifest *m = &b->s->manifest;
	size_t k;

	if (slot == 0)
		return 1;
	for (k = 0; k < m->n; k++)
		if (b->todo[k] == EXEC_RUN && builds_for_children(b->runs[k].kind) &&
		    conn_slot_of(&b->s->project, m->nodes[k].connection) == slot)
			return 1;
	return 0;
}

/*
 * A seed or snapshot that node idx reads, that this command does not
 * build now and whose relation is not there (on a connection whose
 * catalog was read): the database would only say "relation does not
 * exist". Ephemeral parents are looked through: their SQL is inlined.
 */
static const struct node *missing_input(struct build *b, size_t idx)
{
	const struct dag *d = b->s->manifest.dag;
	const struct node *found;
	size_t k;

	for (k = 0; k < d->nparents[idx]; k++) {
		size_t p = d->parents[idx][k];
		const struct node *pn = node_at(b, p);
		if (b->runs[p].kind->flags & KIND_PASS) {
			if ((found = missing_input(b, p)))
				return found;
		} else if (b->todo[p] != EXEC_RUN && own_command(pn) &&
			   slot_used(b, conn_slot_of(&b->s->project, pn->connection)) && existing_kind(b, pn) == REL_NONE) {
			return pn;
		}
	}
	return NULL;
}

int build_prepare_nodes(struct build *b, struct session *s, enum build_mode mode, unsigned what,
			struct sluice_err *err)
{
	int offline = mode == BUILD_OFFLINE;
	struct manifest *m = &s->manifest;
	size_t i;
	int rc;

	memset(b, 0, sizeof(*b));
	b->s = s;
	b->mode = mode;
	b->what = what;
	arena_init(&b->arena);
	arena_init(&b->dir_arena);
	pthread_mutex_init(&b->dirs_lock, NULL);
	if (mode != BUILD_PLAN)
		target_writer_start(b);
	b->runs = xcalloc(m->n ? m->n : 1, sizeof(*b->runs));
	b->todo = xcalloc(m->n ? m->n : 1, 1);
	b->kind_data = xcalloc(node_kinds_n, sizeof(void *));
	for (i = 0; i < m->n; i++)
		b->runs[i].kind = node_kind_of(&m->nodes[i]);
	if ((rc = conn_pool_init(&b->conns, s, err)))
		return rc;
	for (i = 0; i < node_kinds_n; i++)
		if (kind_in_run(b, node_kinds[i]) && node_kinds[i]->begin && (rc = node_kinds[i]->begin(b, err)))
			return rc;
	for (i = 0; i < m->n; i++) {
		const struct node_kind *k = b->runs[i].kind;
		if (k->flags & KIND_PASS) {
			/* never built, but children wait for its parents */
			b->todo[i] = EXEC_PASS;
		} else if (chosen(b, i)) {
			b->todo[i] = EXEC_RUN;
			b->ntodo++;
		} else if (k->flags & KIND_LIVE) {
			/*
			 * Not selected, but a view is read as it is now: its children
			 * see its parents' state now, so they wait for its parents
			 * like they would for it (docs/fingerprints.md, selection).
			 */
			b->todo[i] = EXEC_PASS;
		}
	}
	/*
	 * The lock comes first: a run that waited for another must see the
	 * catalog and state as that run left them.
	 */
	if (!offline && (rc = open_state(b, err)))
		return rc;
	if (!offline)
		for (i = 0; i < b->conns.nslots; i++)
			if (slot_used(b, i) && (rc = load_relations(b, i, err)))
				return rc;
	if (!offline && (rc = reuse_prepare(b, err)))
		return rc;
	for (i = 0; i < m->n; i++) {
		struct node_run *r = &b->runs[i];
		const struct node *missing;
		/* a node that never runs is prepared when chosen, for target/ alone */
		if (b->todo[i] != EXEC_RUN && !((r->kind->flags & KIND_PASS) && chosen(b, i)))
			continue;
		r->compile_started = now_seconds();
		r->existing = offline ? REL_NONE : existing_kind(b, &m->nodes[i]);
		if (r->kind->prepare && r->kind->prepare(b, i)) {
			r->failed_early = 1;
		} else if (!offline && b->todo[i] == EXEC_RUN && (missing = missing_input(b, i))) {
			/* its resource type names the command that builds it */
			err_set(run_err(r), SLUICE_EDB, "'%s' is a %s: run sluice %s (%s does not exist)", missing->name,
				missing->model->resource, missing->model->resource, missing->display);
			r->failed_early = 1;
		}
		r->compile_done = now_seconds();
	}
	for (i = 0; i < node_kinds_n; i++)
		if (kind_in_run(b, node_kinds[i]) && node_kinds[i]->link && (rc = node_kinds[i]->link(b, err)))
			return rc;
	if (offline)
		return 0;
	render_logical(b);
	if ((rc = read_versions(b, err)))
		return rc;
	settle_unselected(b);
	return 0;
}

void build_plan(struct build *b)
{
	const struct manifest *m = &b->s->manifest;
	size_t k;

	for (k = 0; k < m->n; k++) {
		size_t i = m->dag->order[k];
		if (b->todo[i] != EXEC_RUN)
			continue;
		decide(b, i, &b->arena);
		decide_reuse(b, i, NULL, &b->arena);
		set_effective(b, i, b->runs[i].decision.build);
		/* as in a run: a node to reuse would send nothing */
		if (!b->runs[i].decision.build)
			plan_release(&b->runs[i].plan);
	}
}

/* ---- running a plan ---- */

struct version_row {
	const char *schema, *ident;
	char *version;
};

static int version_row(void *ud, const struct sluice_row *row)
{
	struct version_row *v = ud;

	if (!v->version && row->ncols >= 3 && row->values[0] && row->values[1] && row->values[2] &&
	    !strcmp(row->values[0], v->schema) && !strcmp(row->values[1], v->ident))
		v->version = xstrdup(row->values[2]);
	return 0;
}

/*
 * The statistics version of a relation just built, read on the session
 * that built it right after after_write flushed its counters, so it holds
 * sluice's own write and nothing later: a write made outside sluice
 * afterwards, even during this run, shows as a change next time.
 */
static char *relation_version_now(const struct dialect *d, struct sluice_conn *c, const struct node *n)
{
	return build_relation_version(d, c, n->schema, n->identifier);
}

char *build_relation_version(const struct dialect *d, struct sluice_conn *c, const char *schema, const char *ident)
{
	struct version_row v = { schema, ident, NULL };
	struct sluice_err err = SLUICE_ERR_INIT;
	struct buf q = BUF_INIT;

	if (!d->source_stats_query)
		return NULL;
	d->source_stats_query(&q, &schema, &ident, 1);
	if (c->drv->query(c, q.s, version_row, &v, &err)) {
		free(v.version);
		v.version = NULL;
	}
	buf_release(&q);
	return v.version;
}

#define SCRIPT_SESSIONS_WAIT 5.0        /* seconds: a script's sessions on their way out */

static int count_row(void *ud, const struct sluice_row *row)
{
	*(long *)ud = row->ncols && row->values[0] ? strtol(row->values[0], NULL, 10) : 0;
	return 0;
}

void build_script_wrote(struct build *b, size_t idx, struct sluice_conn *c, const char *app)
{
	const struct node *n = node_at(b, idx);
	const struct dialect *d = build_dialect(b, n);
	double start = clock_monotonic();
	struct buf q = BUF_INIT;
	long left = 1;

	if (d->sessions_named_query) {
		d->sessions_named_query(&q, app);
		for (;;) {
			struct sluice_err ignored = SLUICE_ERR_INIT;
			if (c->drv->query(c, q.s, count_row, &left, &ignored) || !left ||
			    clock_monotonic() - start >= SCRIPT_SESSIONS_WAIT)
				break;
			sleep_ms(20);
		}
		if (left)
			ui_warn("%s: a session of the script is still open (application_name '%s'); a write it "
				"publishes later will show as a change made outside sluice", n->name, app);
	}
	buf_release(&q);
	b->runs[idx].relation_version = relation_version_now(d, c, n);
}

/* cutoff: checksum: what the rebuilt relation holds, so equal output can stop the cascade. */
static void checksum_output(struct build *b, size_t idx, const struct dialect *d, struct sluice_conn *c)
{
	const struct node *n = node_at(b, idx);
	struct node_run *r = &b->runs[idx];
	struct sluice_err err = SLUICE_ERR_INIT;
	struct buf q = BUF_INIT;

	if (strcmp(val_get_str(&n->config, "cutoff", ""), "checksum") || (r->kind->flags & KIND_LIVE))
		return;
	if (!d->checksum_query) {
		ui_warn("%s: cutoff: checksum is not supported on dialect %s", n->model->path, d->name);
		return;
	}
	d->checksum_query(&q, n->relation);
	if (c->drv->query(c, q.s, conn_first_value, &r->output_checksum, &err))
		ui_warn("%s: output checksum failed, no cutoff this time: %s", n->name, err.msg);
	buf_release(&q);
}

/*
 * A deadlock or a serialization failure is the server choosing a victim
 * among transactions that could each have gone alone: the victim was
 * rolled back whole and may run again, a bounded number of times.
 */
#define PLAN_ATTEMPTS 3

static int retryable(const struct sluice_err *err)
{
	return err->code == SLUICE_EDB && (!strcmp(err->sqlstate, "40P01") || !strcmp(err->sqlstate, "40001"));
}

int build_run_plan(struct build *b, struct exec_worker *w, size_t idx, const struct plan_runtime *rt,
		   struct sluice_err *err)
{
	const struct node *n = node_at(b, idx);
	struct node_run *r = &b->runs[idx];
	const struct dialect *d = build_dialect(b, n);
	struct sluice_conn *c;
	int rc, attempt;

	if (!(c = build_worker_conn(b, w, n, err)))
		return err->code;
	exec_worker_busy(w, c);
	rc = plan_exec(&r->plan, c, rt, &r->rows, err);
	for (attempt = 2; rc && retryable(err) && attempt <= PLAN_ATTEMPTS && !exec_cancelled(w); attempt++) {
		/* rolled back whole: nothing of it is left to redo or undo */
		ui_warn("%s: %s; running it again (attempt %d of %d)", n->name, err->msg, attempt, PLAN_ATTEMPTS);
		memset(err, 0, sizeof(*err));
		rc = plan_exec(&r->plan, c, rt, &r->rows, err);
	}
	if (!rc && !(r->kind->flags & KIND_NO_RELATION)) {
		if (d->after_write) {
			struct sluice_err ignored = SLUICE_ERR_INIT;
			c->drv->exec(c, d->after_write, NULL, &ignored);
		}
		checksum_output(b, idx, d, c);
		r->relation_version = relation_version_now(d, c, n);
	}
	exec_worker_busy(w, NULL);
	return rc;
}

/* ---- the jobs ---- */

static const char *status_word(int rc)
{
	return !rc ? "success" : rc == SLUICE_ECANCEL ? "cancelled" : "error";
}

/* A node of the manifest, on worker w: decide, run through its kind, record. */
static int node_job(struct build *b, struct exec_worker *w, size_t idx, int *reused, struct sluice_err *err)
{
	const struct node *n = node_at(b, idx);
	struct node_run *r = &b->runs[idx];
	const struct node_kind *k = r->kind;
	struct arena *a = build_worker_arena(b, w);
	struct sluice_err serr = SLUICE_ERR_INIT;
	int rc;

	if (r->failed_early) {
		if (r->err)
			*err = *r->err;
		rc = run_err_code(r) ? run_err_code(r) : SLUICE_EUSAGE;
		/* the relation, if any, is as the last run left it, and so is its record */
		if ((k->flags & KIND_RECORDS_RESULT) && put_record(b, idx, "error", a, &serr))
			ui_error("%s", serr.msg);
		return rc;
	}
	decide(b, idx, a);
	if (run_err_code(r)) {   /* what it reads could not be read */
		*err = *r->err;
		if (put_record(b, idx, "error", a, &serr))
			ui_error("%s", serr.msg);
		return err->code;
	}
	decide_reuse(b, idx, w, a);
	if (!r->decision.build) {
		if (k->reuse)
			k->reuse(b, idx, a);
		/* it sends nothing: its statements (in target/run already) can go */
		plan_release(&r->plan);
		set_effective(b, idx, 0);
		*reused = 1;
		return 0;
	}
	if (k->started && r->reused_from.kind != V_DICT)
		k->started(b, idx);
	else
		ui_node_start(r->seq, b->ntodo, n->mat_name, n->display, n->unique_id);
	/* reused from another environment: the same for every kind that allows it */
	rc = r->reused_from.kind == V_DICT ? reuse_run(b, w, idx, err) : k->run(b, w, idx, err);
	if (!rc)
		reuse_tidy(b, w, idx);
	r->finished = now_seconds();
	/* already set when it let its children start early: they may be reading it */
	if (!rc && !r->effective[0])
		set_effective(b, idx, 1);
	if (put_record(b, idx, status_word(rc), a, rc ? &serr : err)) {
		if (!rc)
			rc = err->code;
		else
			ui_error("%s", serr.msg);
	}
	if (rc == SLUICE_ECONN)   /* reconnect for the next job rather than reuse a dead session */
		conn_pool_drop(&b->conns, w->id, conn_slot_of(&b->s->project, n->connection));
	return rc;
}

static int job_run(void *ud, struct exec_worker *w, size_t idx, int *reused, struct sluice_err *err)
{
	struct build *b = ud;
	int rc;

	*reused = 0;
	if (idx >= b->s->manifest.n) {
		/* a kind's shared job (a combined scan) is no one node's */
		audit_set_node(NULL);
		rc = b->extra_owner->extra_run(b, w, idx - b->s->manifest.n, reused, err);
		conn_pool_job_done(&b->conns, w->id);
		return rc;
	}
	audit_set_node(node_at(b, idx)->unique_id);
	rc = node_job(b, w, idx, reused, err);
	audit_set_node(NULL);
	conn_pool_job_done(&b->conns, w->id);
	return rc;
}

static const char *job_name(void *ud, size_t idx)
{
	struct build *b = ud;

	if (idx >= b->s->manifest.n)
		return b->extra_owner->extra_name(b, idx - b->s->manifest.n);
	return node_at(b, idx)->name;
}

static void job_started(void *ud, struct exec_worker *w, size_t idx, int seq)
{
	struct build *b = ud;

	(void)seq;
	if (idx >= b->s->manifest.n)
		return;   /* a kind's extra jobs are not nodes: they print nothing and take no number */
	b->runs[idx].started = now_seconds();
	b->runs[idx].seq = ++b->nseq;
	b->runs[idx].thread_id = w->id;
	/* The START line waits for the decision: reused nodes print one line. */
}

static void model_finished(struct build *b, size_t idx, int seq, enum exec_status st)
{
	static const char *const words[] = { "PENDING", "OK", "ERROR", "SKIP", "REUSED" };
	const struct node *n = node_at(b, idx);
	const struct node_run *r = &b->runs[idx];

	if (st == EXEC_SUCCESS && r->reused_from.kind == V_DICT) {
		struct buf note = BUF_INIT;
		b->reused++;
		reuse_describe(&r->reused_from, &note);
		ui_node_done(seq ? r->seq : 0, b->ntodo, "REUSED", n->mat_name, n->display, n->unique_id,
			     r->finished - r->started, -1, note.s);
		buf_release(&note);
		return;
	}
	switch (st) {
	case EXEC_SUCCESS: b->ok++; break;
	case EXEC_ERROR: b->errors++; break;
	case EXEC_SKIPPED: b->skipped++; break;
	case EXEC_REUSED: b->reused++; break;
	default: break;
	}
	ui_node_done(seq ? r->seq : 0, b->ntodo, words[st], n->mat_name, n->display, n->unique_id, r->finished - r->started,
		     st == EXEC_SUCCESS ? r->rows : -1,
		     st == EXEC_SUCCESS ? r->note : st == EXEC_REUSED ? NULL : run_err_msg(r));
}

static void job_finished(void *ud, struct exec_worker *w, size_t idx, int seq, enum exec_status st,
			 const struct sluice_err *err)
{
	struct build *b = ud;
	struct node_run *r;

	(void)w;
	if (idx >= b->s->manifest.n)
		return;
	r = &b->runs[idx];
	r->finished = now_seconds();
	if (!r->started)
		r->started = r->finished;
	r->status = st;
	if (st != EXEC_SUCCESS && err && err->msg[0] && !run_err_msg(r)[0])
		*run_err(r) = *err;
	if (r->kind->finished)
		r->kind->finished(b, idx, st);
	else
		model_finished(b, idx, seq, st);
}

static const struct exec_ops build_ops = {
	.run = job_run,
	.name = job_name,
	.started = job_started,
	.finished = job_finished,
};

/* ---- the run ---- */

static int run_hooks(struct build *b, const struct val *hooks, const char *what, struct sluice_err *err)
{
	struct compile_opts o = { .invocation_id = b->s->invocation_id };
	struct sluice_conn *c;
	size_t i;
	int rc = 0;

	if (!hooks || hooks->kind != V_LIST || !hooks->u.list.n)
		return 0;
	if (!(c = conn_pool_main(&b->conns, 0, err)))
		return err->code;
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
			struct buf audit = BUF_INIT;
			conn_audit_comment(b->s, what, &audit);
			rc = conn_send_exec(c, audit.s, sql.s, NULL, err);
			buf_release(&audit);
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
		size_t slot = conn_slot_of(&b->s->project, m->nodes[i].connection);
		struct sluice_conn *c;
		struct buf q = BUF_INIT;
		char *key;
		if (b->todo[i] != EXEC_RUN || b->runs[i].failed_early || !m->nodes[i].schema ||
		    (b->runs[i].kind->flags & KIND_NO_RELATION))
			continue;
		key = rel_key(&b->s->project.arena, m->nodes[i].connection, m->nodes[i].schema);
		if (strmap_get(&seen, key))
			continue;
		strmap_put(&seen, key, (void *)1);
		conn_pool_dialect(&b->conns, slot)->create_schema(&q, m->nodes[i].schema);
		/* a test's audit schema may be on a connection no model of this run uses */
		if (!(c = conn_pool_main(&b->conns, slot, err)))
			rc = err->code;
		else
			rc = c->drv->exec(c, q.s, NULL, err);
		buf_release(&q);
	}
	strmap_release(&seen);
	return rc;
}

/*
 * The workers that fit in what each server this run uses still allows
 * (conn.h), at most `threads`; says so when fewer fit. A server that does
 * not answer the question leaves threads as they are.
 */
static int plan_workers(struct build *b, int threads)
{
	const struct manifest *m = &b->s->manifest;
	size_t nslots = b->conns.nslots, i, k;
	unsigned char *used = xcalloc(nslots ? nslots : 1, 2);
	struct buf why = BUF_INIT;
	int workers = threads;

	for (i = 0; i < m->n; i++) {
		if (b->todo[i] != EXEC_RUN || b->runs[i].failed_early)
			continue;
		k = conn_slot_of(&b->s->project, m->nodes[i].connection);
		used[2 * k] = 1;
		if (b->runs[i].kind->flags & KIND_OWN_SESSIONS)
			used[2 * k + 1] = 1;
	}
	for (k = 0; k < nslots; k++) {
		struct sluice_err ignored = SLUICE_ERR_INIT;
		struct buf w_why = BUF_INIT;
		int w;
		if (used[2 * k] && !conn_pool_plan(&b->conns, k, threads, used[2 * k + 1], &w, &w_why, &ignored) &&
		    w < workers) {
			workers = w;
			buf_reset(&why);
			buf_puts(&why, w_why.s);
		}
		buf_release(&w_why);
	}
	if (workers < threads)
		ui_info("threads: %d of the %d asked for: %s", workers, threads, why.s);
	buf_release(&why);
	free(used);
	return workers;
}

static int build_give_up(void *ud)
{
	struct build *b = ud;

	return __atomic_load_n(&b->ex.signo, __ATOMIC_SEQ_CST) != 0;
}

int build_execute(struct build *b, struct sluice_err *err)
{
	struct project *p = &b->s->project;
	int rc;

	b->executed = 1;
	build_flush_target(b);   /* a script runs its file in target/run */
	if ((rc = create_schemas(b, err)) || (rc = run_hooks(b, &p->on_run_start, "on-run-start", err)))
		return rc;
	b->threads = plan_workers(b, b->s->cli->threads ? b->s->cli->threads : p->target.threads);
	conn_pool_add_workers(&b->conns, b->threads, build_give_up, b);
	b->worker_arenas = xcalloc((size_t)b->threads, sizeof(*b->worker_arenas));
	b->ex.dag = b->exec_dag ? b->exec_dag : b->s->manifest.dag;
	b->ex.todo = b->exec_todo ? b->exec_todo : b->todo;
	b->ex.threads = b->threads;
	b->ex.ops = &build_ops;
	b->ex.ud = b;
	rc = executor_run(&b->ex);
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
	if (b->state) {
		struct sluice_err serr = SLUICE_ERR_INIT;
		if (state_finish(b->state, &serr)) {
			err_prefix(&serr, "state '%s'", state_spec(b));
			if (rc)
				ui_error("%s", serr.msg);
			else
				rc = (*err = serr).code;
		}
	}
	b->finished_at = now_seconds();
	return rc;
}

void build_summary(const struct build *b, double elapsed)
{
	size_t i;

	if (b->what & BUILD_RELATIONS) {
		ui_summary(b->ok, b->errors, b->skipped, b->reused, elapsed);
		elapsed = -1;   /* said once */
	}
	for (i = 0; i < node_kinds_n; i++)
		if (kind_in_run(b, node_kinds[i]) && node_kinds[i]->summary)
			node_kinds[i]->summary(b, elapsed);
}

void build_result_json(const struct build *b, size_t idx, json_t *o)
{
	if (b->runs[idx].kind->result)
		b->runs[idx].kind->result(b, idx, o);
}

void build_release(struct build *b)
{
	struct manifest *m = b->s ? &b->s->manifest : NULL;
	size_t i;

	if (!b->s)
		return;
	build_flush_target(b);
	for (i = 0; i < m->n; i++) {
		struct node_run *r = &b->runs[i];
		if (r->kind && r->kind->release)
			r->kind->release(b, i);
		plan_release(&r->plan);
		free(r->logical_sql);
		free(r->err);
		free(r->output_checksum);
		free(r->relation_version);
	}
	for (i = 0; b->kind_data && i < node_kinds_n; i++)
		if (node_kinds[i]->end)
			node_kinds[i]->end(b);
	free(b->kind_data);
	reuse_release(b);
	state_close(b->state);
	source_versions_release(&b->versions);
	if (b->worker_arenas)
		for (i = 0; i < (size_t)b->threads; i++)
			arena_release(&b->worker_arenas[i]);
	free(b->worker_arenas);
	arena_release(&b->arena);
	conn_pool_release(&b->conns);
	executor_release(&b->ex);
	strmap_release(&b->relations);
	strmap_release(&b->record_index);
	strmap_release(&b->dirs);
	arena_release(&b->dir_arena);
	pthread_mutex_destroy(&b->dirs_lock);
	free(b->runs);
	free(b->todo);
	b->runs = NULL;
	b->todo = NULL;
	b->s = NULL;   /* released: a second call does nothing */
}
