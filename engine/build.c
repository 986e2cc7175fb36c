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

size_t build_slot_of(const struct project *p, const char *conn)
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
		if (b->todo[i] == EXEC_RUN && build_slot_of(p, m->nodes[i].connection) == slot && !strmap_get(&seen, m->nodes[i].schema)) {
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
	struct buf key = BUF_INIT;
	void *v;

	rel_key_into(&key, n->schema, n->identifier);
	v = strmap_get(&b->relations, key.s);
	buf_release(&key);
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

/*
 * Whether the directory of path was created by this run (so no file in it
 * can hold old content worth comparing). Creates it when missing. Looking
 * up files that cannot exist costs more than writing them on some file
 * systems.
 */
static int fresh_dir(struct build *b, const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir = arena_strndup(&b->dir_arena, path, slash ? (size_t)(slash - path) : 0);
	struct sluice_err err = SLUICE_ERR_INIT;
	uintptr_t state;

	pthread_mutex_lock(&b->dirs_lock);
	state = (uintptr_t)strmap_get(&b->dirs, dir);
	if (!state) {
		state = fs_is_dir(dir) ? 1 : 2;
		if (state == 2 && fs_mkdir_p(dir, &err))
			state = 1;      /* let the write report it */
		strmap_put(&b->dirs, dir, (void *)state);
	}
	pthread_mutex_unlock(&b->dirs_lock);
	return state == 2;
}

void build_write_target_file(struct build *b, const char *dir, const char *path, const char *text)
{
	struct buf file = BUF_INIT;
	struct sluice_err err = SLUICE_ERR_INIT;

	buf_printf(&file, "%s/%s/%s", b->s->project.target_path, dir, path);
	if (fresh_dir(b, file.s) ? fs_write_file(file.s, text, strlen(text), &err)
				 : fs_write_if_changed(file.s, text, strlen(text), &err))
		ui_warn("%s", err.msg);
	buf_release(&file);
}

/* The comment naming run, node (or hook) and user in front of every statement. */
static void audit_line(const struct build *b, const char *node, struct buf *out)
{
	buf_printf(out, "/* sluice run=%s node=%s user=%s */\n", b->s->invocation_id, node, b->s->user);
}

void build_audit_comment(struct build *b, const struct node *n, struct buf *out)
{
	audit_line(b, n->unique_id, out);
}

/*
 * Compile n and plan its statements for the given incremental mode, and
 * write target/compiled and target/run. Thread-safe for distinct nodes.
 */
static int prepare_plan(struct build *b, struct node *n, int incremental)
{
	struct node_run *r = &b->runs[n->idx];
	struct compile_opts o = { .invocation_id = b->s->invocation_id };
	struct arena scratch = ARENA_INIT;
	struct buf sql = BUF_INIT, audit = BUF_INIT, run = BUF_INIT, stage = BUF_INIT;
	struct plan_input in = { 0 };
	int rc = 0;

	plan_release(&r->plan);
	memset(&r->err, 0, sizeof(r->err));
	o.is_incremental = incremental;
	if (n->mat == MAT_UNLOAD || n->mat == MAT_LOAD)
		rc = build_stage_prepare(b, n, &o, &r->err);
	if (!rc)
		rc = manifest_compile(&b->s->manifest, n, &o, &scratch, &sql, NULL, &r->err);
	if (!rc && (n->mat == MAT_UNLOAD || n->mat == MAT_LOAD)) {
		build_stage_describe(b, n, sql.s, &stage);
		in.stage_text = stage.s;
	}
	if (!rc) {
		build_audit_comment(b, n, &audit);
		in.node = n;
		in.dialect = b->slots[build_slot_of(&b->s->project, n->connection)].dialect;
		in.sql = sql.s;
		in.existing = r->existing;
		in.incremental = incremental;
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
	if (!rc && b->mode != BUILD_PLAN) {
		/* plan changes nothing, target/ included */
		build_write_target_file(b, "compiled", n->model->path, sql.s);
		plan_write(&r->plan, &run);
		build_write_target_file(b, "run", n->model->path, run.s);
	}
	r->failed_early = rc != 0;
	buf_release(&sql);
	buf_release(&audit);
	buf_release(&run);
	buf_release(&stage);
	arena_release(&scratch);
	return rc;
}

/* An incremental model, or a load that appends or merges, whose target exists. */
static int runs_incremental(const struct build *b, const struct node *n, enum rel_kind existing)
{
	if (n->mat == MAT_LOAD)
		return build_stage_load_incremental(b, n);   /* settled again when it runs */
	return n->mat == MAT_INCREMENTAL && existing == REL_TABLE && !b->s->cli->full_refresh;
}

static int prepare_node(struct build *b, struct node *n)
{
	struct node_run *r = &b->runs[n->idx];
	int rc;

	r->compile_started = now_seconds();
	r->existing = b->mode == BUILD_OFFLINE ? REL_NONE : existing_kind(b, n);
	if (n->mat == MAT_SHELL)
		rc = build_shell_prepare(b, n);
	else
		rc = prepare_plan(b, n, runs_incremental(b, n, r->existing));
	r->compile_done = now_seconds();
	return rc;
}

/* ---- fingerprints ---- */

const struct val *build_prev_record(const struct build *b, size_t idx)
{
	const struct val *r = strmap_get(&b->record_index, b->s->manifest.nodes[idx].unique_id);

	return r && r->kind == V_DICT ? r : NULL;
}

static void node_fp(struct build *b, size_t idx, struct arena *a, struct fp *out);

/* The fingerprint parent p shows its children. */
static const char *parent_effective(struct build *b, size_t p, struct arena *a)
{
	struct node_run *r = &b->runs[p];
	struct fp fp;

	if (r->effective[0])
		return r->effective;
	/* Ephemeral models are inlined: what they read is what their children read. */
	node_fp(b, p, a, &fp);
	return arena_strdup(a, fp.full);
}

static void node_fp(struct build *b, size_t idx, struct arena *a, struct fp *out)
{
	const struct manifest *m = &b->s->manifest;
	const struct dag *d = m->dag;
	size_t np = d->nparents[idx], i;
	const char **pfp = arena_alloc(a, (np + 1) * sizeof(char *));
	const char **pver = arena_alloc(a, (np + 1) * sizeof(char *));
	struct fp_input in = { b->runs[idx].logical_sql, &b->runs[idx].used_vars, pfp, pver, &b->runs[idx].inputs };

	for (i = 0; i < np; i++) {
		size_t p = d->parents[idx][i];
		if (m->nodes[p].type == NODE_SOURCE) {
			const char *v = b->versions.version ? b->versions.version[p] : NULL;
			pver[i] = v ? v : "unknown";
		} else {
			pfp[i] = parent_effective(b, p, a);
		}
	}
	fp_compute(m, &m->nodes[idx], &in, a, out);
}

void build_decide(struct build *b, size_t idx, struct arena *a)
{
	struct node_run *r = &b->runs[idx];
	struct fp_context ctx = { 0 };

	if (b->s->manifest.nodes[idx].mat == MAT_SHELL)
		build_shell_scan(b, idx, a, &ctx);   /* its files, before they feed the fingerprint */
	node_fp(b, idx, a, &r->fp);
	ctx.prev = build_prev_record(b, idx);
	ctx.relation_exists = b->s->manifest.nodes[idx].mat == MAT_UNLOAD ? build_stage_exists(b, &b->s->manifest.nodes[idx])
									  : r->existing != REL_NONE;
	ctx.relation_version = b->versions.version ? b->versions.version[idx] : NULL;
	ctx.force = b->s->cli->force;
	ctx.full_refresh = b->s->cli->full_refresh;
	fp_decide(&b->s->manifest, &b->s->manifest.nodes[idx], &r->fp, &ctx, a, &r->decision);
	r->decided = 1;
}

/* What children of a decided node see. */
static void set_effective(struct build *b, size_t idx)
{
	struct node_run *r = &b->runs[idx];
	const struct node *n = &b->s->manifest.nodes[idx];
	const char *prev = val_get_str(build_prev_record(b, idx), "effective_fingerprint", NULL);

	if (n->mat == MAT_VIEW || r->decision.build || !prev) {
		/* A view always passes on what it reads now. */
		snprintf(r->effective, sizeof(r->effective), "%s", r->fp.full);
		if (r->output_checksum) {
			char buf[FP_HEX + 64];
			snprintf(buf, sizeof(buf), "cutoff:%s", r->output_checksum);
			hash_hex(buf, strlen(buf), r->effective);
		}
	} else {
		snprintf(r->effective, sizeof(r->effective), "%s", prev);
	}
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
		if (m->nodes[i].type != NODE_MODEL)
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

/* Nodes not run now show children what they last built (or would build). */
static void settle_unselected(struct build *b)
{
	const struct manifest *m = &b->s->manifest;
	size_t k;

	for (k = 0; k < m->n; k++) {
		size_t i = m->dag->order[k];
		const char *prev;
		struct fp fp;
		if (m->nodes[i].type != NODE_MODEL || b->todo[i])
			continue;
		prev = val_get_str(build_prev_record(b, i), "effective_fingerprint", NULL);
		if (prev) {
			snprintf(b->runs[i].effective, FP_HEX, "%s", prev);
		} else {
			node_fp(b, i, &b->arena, &fp);
			snprintf(b->runs[i].effective, FP_HEX, "%s", fp.full);
		}
	}
}

static int state_connect(void *ud, struct sluice_conn **out, const struct dialect **d, struct sluice_err *err)
{
	struct build *b = ud;

	return build_connect(b->s, "default", out, d, err);
}

static int open_state(struct build *b, struct sluice_err *err)
{
	struct project *p = &b->s->project;
	struct state_opts o = { 0 };
	int rc;

	o.spec = val_get_str(&p->raw, "state", "local");
	o.project_dir = p->dir;
	o.project = p->name;
	o.target = p->target.name;
	o.user = b->s->user;
	o.invocation_id = b->s->invocation_id;
	o.connect = state_connect;
	o.connect_ud = b;
	o.s3 = val_get(&p->target.conns[0].settings, "s3");
	if ((rc = state_open(&b->state, &o, err)))
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

/* One batched version query per connection: sources the run reads, relations it may rebuild. */
static int read_versions(struct build *b, struct sluice_err *err)
{
	const struct manifest *m = &b->s->manifest;
	unsigned char *want = xcalloc(m->n ? m->n : 1, 1);
	size_t i, k;
	int rc;

	if (b->tests)
		build_tests_want_versions(b, want);
	for (i = 0; i < m->n; i++) {
		if (!b->todo[i])
			continue;
		for (k = 0; k < m->dag->nparents[i]; k++)
			if (m->nodes[m->dag->parents[i][k]].type == NODE_SOURCE)
				want[m->dag->parents[i][k]] = 1;
		if (b->todo[i] == EXEC_RUN && b->runs[i].existing != REL_NONE)
			want[i] = 1;
	}
	rc = sources_versions(b->s, want, &b->versions, err);
	free(want);
	return rc;
}

int build_prepare(struct build *b, struct session *s, enum build_mode mode, struct sluice_err *err)
{
	return build_prepare_nodes(b, s, mode, BUILD_MODELS, err);
}

int build_prepare_nodes(struct build *b, struct session *s, enum build_mode mode, unsigned what,
			struct sluice_err *err)
{
	int offline = mode == BUILD_OFFLINE;
	struct manifest *m = &s->manifest;
	struct project *p = &s->project;
	size_t i;
	int rc;

	memset(b, 0, sizeof(*b));
	b->s = s;
	b->mode = mode;
	b->what = what;
	arena_init(&b->arena);
	arena_init(&b->dir_arena);
	pthread_mutex_init(&b->dirs_lock, NULL);
	b->runs = xcalloc(m->n ? m->n : 1, sizeof(*b->runs));
	b->todo = xcalloc(m->n ? m->n : 1, 1);
	b->slots = xcalloc(p->target.nconns, sizeof(*b->slots));
	for (i = 0; i < m->n; i++) {
		if (m->nodes[i].type != NODE_MODEL)
			continue;
		if (m->nodes[i].mat == MAT_EPHEMERAL) {
			/* never built, but children wait for its parents */
			b->todo[i] = EXEC_PASS;
		} else if (s->selected[i] && (what & BUILD_MODELS)) {
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
	/*
	 * The lock comes first: a run that waited for another must see the
	 * catalog and state as that run left them.
	 */
	if (!offline && (rc = open_state(b, err)))
		return rc;
	if (!offline) {
		for (i = 0; i < p->target.nconns; i++) {
			size_t k;
			int used = i == 0;
			for (k = 0; k < m->n && !used; k++)
				used = b->todo[k] == EXEC_RUN && build_slot_of(p, m->nodes[k].connection) == i;
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
	if ((what & BUILD_TESTS) && (rc = build_tests_prepare(b, err)))
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
		build_decide(b, i, &b->arena);
		set_effective(b, i);
	}
}

/* ---- execution ---- */

static struct sluice_conn *worker_conn(struct build *b, struct exec_worker *w, size_t slot,
				       struct sluice_err *err)
{
	struct sluice_conn **c = &b->worker_conns[w->id - 1][slot];
	const struct dialect *d = b->slots[slot].dialect;

	if (*c)
		return *c;
	if (build_connect(b->s, b->s->project.target.conns[slot].name, c, NULL, err))
		return NULL;
	if (d->session_tag) {
		/* The warehouse's query log can then tell this run's sessions apart. */
		struct sluice_err ignored = SLUICE_ERR_INIT;
		struct buf tag = BUF_INIT, sql = BUF_INIT;
		dialect_session_tag_text(&tag, b->s->invocation_id, b->s->user);
		d->session_tag(&sql, tag.s);
		(*c)->drv->exec(*c, sql.s, NULL, &ignored);
		buf_release(&tag);
		buf_release(&sql);
	}
	return *c;
}

struct sluice_conn *build_worker_conn(struct build *b, struct exec_worker *w, const char *connection,
				      const struct dialect **dialect, struct sluice_err *err)
{
	size_t slot = build_slot_of(&b->s->project, connection);

	if (dialect)
		*dialect = b->slots[slot].dialect;
	return worker_conn(b, w, slot, err);
}

void build_drop_worker_conn(struct build *b, struct exec_worker *w, size_t slot)
{
	struct sluice_conn **c = &b->worker_conns[w->id - 1][slot];

	if (*c)
		(*c)->drv->close(*c);
	*c = NULL;
}

/* The state record of a node that just ran. */
static struct val make_record(struct build *b, size_t idx, const char *status, struct arena *a)
{
	const struct node *n = &b->s->manifest.nodes[idx];
	struct node_run *r = &b->runs[idx];
	struct val rec = val_dict_new();

	val_dict_set(a, &rec, "unique_id", val_str(n->unique_id));
	val_dict_set(a, &rec, "status", val_str(status));
	val_dict_set(a, &rec, "invocation_id", val_str(b->s->invocation_id));
	val_dict_set(a, &rec, "finished_at", val_num(r->finished ? r->finished : now_seconds()));
	val_dict_set(a, &rec, "duration", val_num(r->finished > r->started ? r->finished - r->started : 0));
	val_dict_set(a, &rec, "relation", val_str(n->display));
	val_dict_set(a, &rec, "materialized", val_str(n->mat_name));
	if (!strcmp(status, "success")) {
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
		if (r->stage_generation) {
			val_dict_set(a, &rec, "stage_generation", val_str(arena_strdup(a, r->stage_generation)));
			val_dict_set(a, &rec, "stage_delta", val_num(r->stage_delta));
		}
		if (r->loaded_generation)
			val_dict_set(a, &rec, "loaded_generation", val_str(arena_strdup(a, r->loaded_generation)));
		if (r->inputs.kind == V_DICT)
			val_dict_set(a, &rec, "inputs", r->inputs);
		if (r->outputs.kind == V_DICT)
			val_dict_set(a, &rec, "outputs", r->outputs);
	}
	return rec;
}

void build_put_record(struct build *b, size_t idx, const char *status, struct arena *a)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct val rec;

	if (!b->state)
		return;
	rec = make_record(b, idx, status, a);
	if (state_put(b->state, b->s->manifest.nodes[idx].unique_id, &rec, &err))
		ui_error("%s", err.msg);
}

int build_first_value(void *ud, const struct sluice_row *row)
{
	char **out = ud;

	if (!*out && row->ncols && row->values[0])
		*out = xstrdup(row->values[0]);
	return 0;
}

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
	struct version_row v = { n->schema, n->identifier, NULL };
	struct sluice_err err = SLUICE_ERR_INIT;
	struct buf q = BUF_INIT;

	if (!d->source_stats_query)
		return NULL;
	d->source_stats_query(&q, &n->schema, &n->identifier, 1);
	if (c->drv->query(c, q.s, version_row, &v, &err)) {
		free(v.version);
		v.version = NULL;
	}
	buf_release(&q);
	return v.version;
}

/* cutoff: checksum: what the rebuilt relation holds, so equal output can stop the cascade. */
static void checksum_output(struct build *b, const struct node *n, const struct dialect *d, struct sluice_conn *c)
{
	struct node_run *r = &b->runs[n->idx];
	struct sluice_err err = SLUICE_ERR_INIT;
	struct buf q = BUF_INIT;

	if (strcmp(val_get_str(&n->config, "cutoff", ""), "checksum") || n->mat == MAT_VIEW)
		return;
	if (!d->checksum_query) {
		ui_warn("%s: cutoff: checksum is not supported on dialect %s", n->model->path, d->name);
		return;
	}
	d->checksum_query(&q, n->relation);
	if (c->drv->query(c, q.s, build_first_value, &r->output_checksum, &err))
		ui_warn("%s: output checksum failed, no cutoff this time: %s", n->name, err.msg);
	buf_release(&q);
}

static int model_run(struct build *b, struct exec_worker *w, size_t idx, int *reused, struct sluice_err *err)
{
	struct node *n = &b->s->manifest.nodes[idx];
	struct node_run *r = &b->runs[idx];
	struct arena *a = &b->worker_arenas[w->id - 1];
	size_t slot = build_slot_of(&b->s->project, n->connection);
	const struct dialect *d = b->slots[slot].dialect;
	struct sluice_conn *c;
	int rc;

	if (r->failed_early) {
		*err = r->err;
		return r->err.code ? r->err.code : SLUICE_EUSAGE;
	}
	if (n->mat == MAT_SHELL)
		return build_shell_job(b, w, idx, reused, err);
	build_decide(b, idx, a);
	if (!r->decision.build) {
		set_effective(b, idx);
		*reused = 1;
		return 0;
	}
	ui_node_start(r->seq, b->ntodo, n->mat_name, n->display, n->unique_id);
	if (r->decision.full_refresh && r->plan.strategy && prepare_plan(b, n, 0)) {
		*err = r->err;
		return r->err.code;
	}
	if (n->mat == MAT_UNLOAD && r->decision.full_refresh && r->watermark) {
		r->no_watermark = 1;
		if (prepare_plan(b, n, 0)) {
			*err = r->err;
			return r->err.code;
		}
	}
	if (n->mat == MAT_LOAD) {
		/* known only now that the unload above has run or been reused */
		int incremental = build_stage_load_incremental(b, n);
		if (incremental != (r->plan.strategy != NULL) && prepare_plan(b, n, incremental)) {
			*err = r->err;
			return r->err.code;
		}
	}
	if (n->mat == MAT_LOAD && build_stage_nothing_new(b, n)) {
		/* the target already holds this delta: appending it again would duplicate it */
		const char *keep = val_get_str(build_prev_record(b, idx), "loaded_generation", NULL);
		r->loaded_generation = xstrdup(keep);
		r->rows = 0;
		r->finished = now_seconds();
		set_effective(b, idx);
		build_put_record(b, idx, "success", a);
		return 0;
	}
	if (!(c = worker_conn(b, w, slot, err)))
		return err->code;
	exec_worker_busy(w, c);
	{
		struct build_stage_job job = { b, w, idx };
		struct plan_runtime rt = { build_stage_run, &job };
		rc = plan_exec(&r->plan, c, &rt, &r->rows, err);
	}
	if (!rc && d->after_write && n->mat != MAT_UNLOAD) {
		struct sluice_err ignored = SLUICE_ERR_INIT;
		c->drv->exec(c, d->after_write, NULL, &ignored);
	}
	if (!rc && n->mat != MAT_UNLOAD) {
		checksum_output(b, n, d, c);
		r->relation_version = relation_version_now(d, c, n);
	}
	exec_worker_busy(w, NULL);
	r->finished = now_seconds();
	if (!rc) {
		set_effective(b, idx);
		build_put_record(b, idx, "success", a);
	} else {
		build_put_record(b, idx, rc == SLUICE_ECANCEL ? "cancelled" : "error", a);
	}
	if (rc == SLUICE_ECONN) {
		/* Reconnect for the next job rather than reuse a dead session. */
		c->drv->close(c);
		b->worker_conns[w->id - 1][slot] = NULL;
	}
	return rc;
}

static int job_run(void *ud, struct exec_worker *w, size_t idx, int *reused, struct sluice_err *err)
{
	struct build *b = ud;

	*reused = 0;
	if (b->tests && build_tests_owns(b, idx))
		return build_tests_run(b, w, idx, reused, err);
	return model_run(b, w, idx, reused, err);
}

static const char *job_name(void *ud, size_t idx)
{
	struct build *b = ud;

	if (idx >= b->s->manifest.n)
		return build_tests_job_name(b, idx);
	return b->s->manifest.nodes[idx].name;
}

static void job_started(void *ud, struct exec_worker *w, size_t idx, int seq)
{
	struct build *b = ud;

	(void)seq;
	if (idx >= b->s->manifest.n)
		return;   /* scan jobs are not nodes: they print nothing and take no number */
	b->runs[idx].started = now_seconds();
	b->runs[idx].seq = ++b->nseq;
	b->runs[idx].thread_id = w->id;
	/* The START line waits for the decision: reused nodes print one line. */
}

static void job_finished(void *ud, struct exec_worker *w, size_t idx, int seq, enum exec_status st,
			 const struct sluice_err *err)
{
	struct build *b = ud;
	struct node *n;
	struct node_run *r;
	static const char *const words[] = { "PENDING", "OK", "ERROR", "SKIP", "REUSED" };

	(void)w;
	if (idx >= b->s->manifest.n)
		return;
	n = &b->s->manifest.nodes[idx];
	r = &b->runs[idx];
	r->finished = now_seconds();
	if (!r->started)
		r->started = r->finished;
	r->status = st;
	if (st != EXEC_SUCCESS && err && err->msg[0] && !r->err.msg[0])
		r->err = *err;
	if (n->type == NODE_TEST) {
		build_tests_finished(b, idx, st);
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
		     st == EXEC_SUCCESS || st == EXEC_REUSED ? NULL : r->err.msg);
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
	struct compile_opts o = { .invocation_id = b->s->invocation_id };
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
			struct buf audit = BUF_INIT;
			audit_line(b, what, &audit);
			rc = plan_send_exec(slot->main, audit.s, sql.s, NULL, err);
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
		size_t slot = build_slot_of(&b->s->project, m->nodes[i].connection);
		struct buf q = BUF_INIT;
		char *key;
		if (b->todo[i] != EXEC_RUN || b->runs[i].failed_early || !m->nodes[i].schema ||
		    m->nodes[i].mat == MAT_UNLOAD)
			continue;
		key = rel_key(&b->s->project.arena, m->nodes[i].connection, m->nodes[i].schema);
		if (strmap_get(&seen, key))
			continue;
		strmap_put(&seen, key, (void *)1);
		b->slots[slot].dialect->create_schema(&q, m->nodes[i].schema);
		/* a test's audit schema may be on a connection no model of this run uses */
		if (!b->slots[slot].main)
			rc = build_connect(b->s, b->s->project.target.conns[slot].name, &b->slots[slot].main, NULL, err);
		if (!rc)
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

	if ((rc = create_schemas(b, err)) || (rc = run_hooks(b, &p->on_run_start, "on-run-start", err)))
		return rc;
	b->threads = b->s->cli->threads ? b->s->cli->threads : p->target.threads;
	b->worker_conns = xcalloc((size_t)b->threads, sizeof(*b->worker_conns));
	b->worker_arenas = xcalloc((size_t)b->threads, sizeof(*b->worker_arenas));
	for (t = 0; t < b->threads; t++)
		b->worker_conns[t] = xcalloc(p->target.nconns, sizeof(struct sluice_conn *));
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
		if (state_finish(b->state, &serr))
			ui_error("%s", serr.msg);
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
	build_tests_release(b);
	for (i = 0; i < m->n; i++) {
		plan_release(&b->runs[i].plan);
		free(b->runs[i].logical_sql);
		free(b->runs[i].output_checksum);
		free(b->runs[i].relation_version);
		free(b->runs[i].watermark);
		free(b->runs[i].stage_generation);
		free(b->runs[i].loaded_generation);
		free(b->runs[i].script);
	}
	state_close(b->state);
	source_versions_release(&b->versions);
	if (b->worker_arenas)
		for (i = 0; i < (size_t)b->threads; i++)
			arena_release(&b->worker_arenas[i]);
	free(b->worker_arenas);
	arena_release(&b->arena);
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
	strmap_release(&b->record_index);
	strmap_release(&b->dirs);
	arena_release(&b->dir_arena);
	pthread_mutex_destroy(&b->dirs_lock);
	free(b->slots);
	free(b->runs);
	free(b->todo);
}
