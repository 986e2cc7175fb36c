/*
 * kind-shell.c: shell models as a node kind: render the script, scan the
 * files it declares so they feed its fingerprint, run it with the
 * environment its connection gives (shell.h), check what it promised to
 * leave behind (output files, a relation), and record it.
 *
 * The script's effective fingerprint (what children see) is its own
 * fingerprint and the content hashes of its declared outputs, so a child
 * that reads an output notices when the file it reads is different.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "build.h"
#include "fileset.h"
#include "shell.h"
#include "ui.h"
#include "util/fs.h"
#include "util/xalloc.h"

/* What a shell model keeps of its run (node_run.kind_data); its input files are node_run.inputs. */
struct shell_run {
	char *script;                  /* the rendered script (heap) */
	struct val outputs;            /* declared outputs on disk: when decided, then after the run */
	size_t rehashed;               /* files the last scan had to read */
};

static struct shell_run *shrun(const struct build *b, size_t idx)
{
	return b->runs[idx].kind_data;
}

static int shell_prepare(struct build *b, size_t idx)
{
	const struct node *n = &b->s->manifest.nodes[idx];
	struct node_run *r = &b->runs[idx];
	struct shell_run *sr = xcalloc(1, sizeof(*sr));
	struct compile_opts o = { .invocation_id = b->s->invocation_id };
	struct arena scratch = ARENA_INIT;
	struct buf script = BUF_INIT;
	struct sluice_err e = SLUICE_ERR_INIT;
	int rc;

	r->kind_data = sr;
	rc = manifest_compile(&b->s->manifest, n, &o, &scratch, &script, NULL, &e);
	if (rc)
		*run_err(r) = e;
	if (!rc) {
		sr->script = xstrndup(script.s, script.len);
		if (b->mode != BUILD_PLAN) {
			/* target/run holds what runs: for a script, the script itself */
			build_write_target_file(b, "compiled", n->model->path, script.s);
			build_write_target_file(b, "run", n->model->path, script.s);
		}
	}
	buf_release(&script);
	arena_release(&scratch);
	return rc;
}

/* Its files, before they feed the fingerprint. */
static void shell_reads(struct build *b, size_t idx, struct arena *a, struct fp_context *ctx)
{
	const struct node *n = &b->s->manifest.nodes[idx];
	const struct val *prev = build_prev_record(b, idx);
	struct node_run *r = &b->runs[idx];
	struct shell_run *sr = shrun(b, idx);
	struct sluice_err err = SLUICE_ERR_INIT;
	struct shell_config sc;
	size_t nin = 0, nout = 0;

	r->inputs = val_none();
	sr->outputs = val_none();
	sr->rehashed = 0;
	if (shell_config(n, a, &sc, &err))
		return;   /* manifest_build checked it */
	if (sc.inputs.u.list.n &&
	    fileset_scan(b->s->project.dir, &sc.inputs, FILESET_GLOB, val_get(prev, "inputs"), a, &r->inputs, &nin, &err))
		err_prefix(&err, "%s: input", n->model->path);
	if (sc.outputs.u.list.n) {
		struct val *declared = arena_alloc(a, sizeof(*declared));
		struct sluice_err oerr = SLUICE_ERR_INIT;
		*declared = sc.outputs;
		/* an unreadable output is as good as missing: the script rewrites it */
		fileset_scan(b->s->project.dir, declared, FILESET_PATHS, val_get(prev, "outputs"), a, &sr->outputs, &nout, &oerr);
		ctx->outputs_declared = declared;
		ctx->outputs = &sr->outputs;
	}
	sr->rehashed = nin + nout;
	if (err.code && !run_err_code(r))
		*run_err(r) = err;
}

/* What children see: the fingerprint and the outputs' content. */
static void shell_effective(struct build *b, size_t idx, int built)
{
	struct node_run *r = &b->runs[idx];
	const struct shell_run *sr = shrun(b, idx);
	const char *prev = val_get_str(build_prev_record(b, idx), "effective_fingerprint", NULL);
	struct buf text = BUF_INIT;
	size_t i;

	if (!built && prev) {
		snprintf(r->effective, sizeof(r->effective), "%s", prev);
		return;
	}
	if (sr->outputs.kind != V_DICT || !sr->outputs.u.dict.n) {
		snprintf(r->effective, sizeof(r->effective), "%s", r->fp.full);
		return;
	}
	/* outputs keep their declared order, which is part of the config hash */
	buf_printf(&text, "shell-outputs\n%s\n", r->fp.full);
	for (i = 0; i < sr->outputs.u.dict.n; i++)
		buf_printf(&text, "%s\t%s\n", sr->outputs.u.dict.keys[i],
			   val_get_str(&sr->outputs.u.dict.vals[i], "hash", ""));
	hash_hex(text.s, text.len, r->effective);
	buf_release(&text);
}

/*
 * A reused script whose files were touched (same content, new mtime):
 * keep the new size+mtime in its record, so the next run takes the fast
 * path again instead of reading those files every time.
 */
static void shell_reuse(struct build *b, size_t idx, struct arena *a)
{
	const struct val *prev = build_prev_record(b, idx);
	const struct node_run *r = &b->runs[idx];
	const struct shell_run *sr = shrun(b, idx);
	struct sluice_err err = SLUICE_ERR_INIT;
	struct val rec;

	if (!prev || !b->state || !sr->rehashed)
		return;
	rec = val_dict_merge(a, prev, NULL);
	if (r->inputs.kind == V_DICT)
		val_dict_set(a, &rec, "inputs", r->inputs);
	if (sr->outputs.kind == V_DICT)
		val_dict_set(a, &rec, "outputs", sr->outputs);
	if (state_put(b->state, b->s->manifest.nodes[idx].unique_id, &rec, &err))
		ui_warn("%s", err.msg);
}

static int env_line(struct buf *env, const char *name, const char *value, struct sluice_err *err)
{
	if (strchr(value, '\n'))
		return err_set(err, SLUICE_EUSAGE, "%s would contain a newline", name);
	buf_printf(env, "%s=%s\n", name, value);
	return 0;
}

/* AWS_* from the s3: block of the node's connection, else of the target's output. */
static int aws_env(const struct project *p, const char *connection, struct buf *env, struct sluice_err *err)
{
	static const char *const keys[][2] = {
		{ "endpoint", "AWS_ENDPOINT_URL" },
		{ "region", "AWS_REGION" },
		{ "region", "AWS_DEFAULT_REGION" },
		{ "access_key_id", "AWS_ACCESS_KEY_ID" },
		{ "secret_access_key", "AWS_SECRET_ACCESS_KEY" },
		{ "session_token", "AWS_SESSION_TOKEN" },
	};
	const struct conn_cfg *c = project_conn(p, connection);
	const struct val *s3 = c ? val_get(&c->settings, "s3") : NULL;
	size_t i;
	int rc;

	if (!s3 || s3->kind != V_DICT)
		s3 = val_get(&p->target.conns[0].settings, "s3");
	if (!s3 || s3->kind != V_DICT)
		return 0;
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char tmp[64];
		const char *v = val_get_text(s3, keys[i][0], tmp, sizeof(tmp));
		if (v && *v && (rc = env_line(env, keys[i][1], v, err)))
			return err_prefix(err, "s3 block");
	}
	return 0;
}

/* Values the log must not show: variables named like secrets, and what the connection's driver calls secret. */
static const char **secrets_of(const char *env, const struct sluice_connector *drv, const struct conn_cfg *c,
			       struct arena *a)
{
	static const char *const words[] = { "PASSWORD", "SECRET", "TOKEN", "CONNECTION_STRING" };
	const char *password[2] = { NULL, NULL }, *const *conn = password;
	size_t n = 0, cap = 1, i;
	const char *p, **out;

	if (c && drv->secrets)
		conn = drv->secrets(&c->settings, a);
	else if (c)
		password[0] = val_get_str(&c->settings, "password", NULL);
	for (i = 0; conn[i]; i++)
		cap++;
	for (p = env; *p; p++)
		cap += *p == '\n';
	out = arena_alloc(a, (cap + 1) * sizeof(char *));
	for (p = env; *p;) {
		const char *eq = strchr(p, '='), *nl = strchr(p, '\n');
		char *name;
		if (!nl)
			nl = p + strlen(p);
		if (eq && eq < nl && nl > eq + 1) {
			name = arena_strndup(a, p, (size_t)(eq - p));
			for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
				if (strstr(name, words[i])) {
					out[n++] = arena_strndup(a, eq + 1, (size_t)(nl - eq - 1));
					break;
				}
		}
		p = *nl ? nl + 1 : nl;
	}
	for (i = 0; conn[i]; i++)
		out[n++] = conn[i];
	out[n] = NULL;
	return out;
}

struct find_rel {
	const struct node *n;
	int found;
};

static int find_relation(void *ud, const struct sluice_row *row)
{
	struct find_rel *f = ud;

	if (row->ncols >= 2 && row->values[0] && row->values[1] && !strcmp(row->values[0], f->n->schema) &&
	    !strcmp(row->values[1], f->n->identifier))
		f->found = 1;
	return 0;
}

/* config(relation=true): the script must have created schema.name. */
static int check_relation(const struct node *n, struct sluice_conn *c, const struct dialect *d,
			  struct sluice_err *err)
{
	struct find_rel f = { n, 0 };
	struct buf q = BUF_INIT;
	int rc;

	d->relations_query(&q, &n->schema, 1);
	rc = c->drv->query(c, q.s, find_relation, &f, err);
	buf_release(&q);
	if (!rc && !f.found)
		rc = err_set(err, SLUICE_EDB, "the script exited 0 but did not create %s (config(relation=true) says it does)",
			     n->display);
	return rc;
}

/* Every declared output must exist now; their hashes go into the record and the effective fingerprint. */
static int check_outputs(struct build *b, size_t idx, const struct shell_config *sc, struct arena *a,
			 struct sluice_err *err)
{
	struct shell_run *sr = shrun(b, idx);
	const struct val *before = sr->outputs.kind == V_DICT ? &sr->outputs : val_get(build_prev_record(b, idx), "outputs");
	struct val now;
	size_t i;
	int rc;

	if (!sc->outputs.u.list.n)
		return 0;
	if ((rc = fileset_scan(b->s->project.dir, &sc->outputs, FILESET_PATHS, before, a, &now, NULL, err)))
		return err_prefix(err, "output");
	for (i = 0; i < sc->outputs.u.list.n; i++) {
		const char *path = sc->outputs.u.list.items[i].u.str.s;
		if (!val_get(&now, path))
			return err_set(err, SLUICE_EDB, "the script exited 0 but did not write its declared output '%s'", path);
	}
	sr->outputs = now;
	return 0;
}

static int run_script(struct build *b, struct exec_worker *w, size_t idx, const struct shell_config *sc,
		      struct arena *a, struct sluice_err *err)
{
	const struct node *n = &b->s->manifest.nodes[idx];
	const struct shell_run *sr = shrun(b, idx);
	struct project *p = &b->s->project;
	const struct dialect *d = build_dialect(b, n);
	struct sluice_conn *c = build_worker_conn(b, w, n, err);
	struct buf env = BUF_INIT, script_path = BUF_INIT, log_path = BUF_INIT, app = BUF_INIT;
	struct shell_cmd cmd = { 0 };
	struct shell_proc proc;
	int rc = c ? 0 : err->code;

	if (!rc && !(rc = env_line(&env, "SLUICE_TARGET", p->target.name, err)) &&
	    !(rc = env_line(&env, "SLUICE_INVOCATION_ID", b->s->invocation_id, err)) &&
	    !(rc = env_line(&env, "SLUICE_NODE", n->unique_id, err)) &&
	    !(rc = env_line(&env, "SLUICE_SCHEMA", n->schema, err)) &&
	    !(rc = sc->relation ? env_line(&env, "SLUICE_RELATION", n->relation, err) : 0) &&
	    !(rc = c->drv->child_env ? c->drv->child_env(c, &env, err) : 0) &&
	    !(rc = aws_env(p, n->connection, &env, err)) && d->app_name_env) {
		/* its sessions show in the database under the node's name */
		buf_printf(&app, "sluice-script/%.48s", n->name);
		rc = env_line(&env, d->app_name_env, app.s, err);
	}
	if (!rc) {
		buf_printf(&script_path, "%s/run/%s", p->target_path, n->model->path);
		buf_printf(&log_path, "%s/logs/%s.log", p->target_path, n->name);
		rc = fs_write_if_changed(script_path.s, sr->script, strlen(sr->script), err);
	}
	if (!rc) {
		cmd.script = sr->script;
		cmd.script_path = script_path.s;
		cmd.dir = p->dir;
		cmd.env = env.s;
		cmd.log_path = log_path.s;
		cmd.secrets = secrets_of(env.s, c->drv, project_conn(p, n->connection), a);
		cmd.timeout = sc->timeout;
		shell_proc_init(&proc, n->connection, &w->ex->signo);
		exec_worker_busy(w, &proc.base);
		/* a signal before it was marked busy found nothing to cancel: do not start */
		if (exec_cancelled(w))
			rc = err_set(err, SLUICE_ECANCEL, "cancelled before the script started");
		else
			rc = shell_run(&cmd, &proc, NULL, err);
		exec_worker_busy(w, NULL);
	}
	if (!rc)
		rc = check_outputs(b, idx, sc, a, err);
	if (!rc && sc->relation && !(rc = check_relation(n, c, d, err)))
		build_script_wrote(b, idx, c, app.s ? app.s : "");
	if (rc)
		err_prefix(err, "%s", n->model->path);
	buf_release(&env);
	buf_release(&script_path);
	buf_release(&log_path);
	buf_release(&app);
	return rc;
}

static int shell_job(struct build *b, struct exec_worker *w, size_t idx, struct sluice_err *err)
{
	const struct node *n = &b->s->manifest.nodes[idx];
	struct arena *a = build_worker_arena(b, w);
	struct shell_config sc;
	int rc;

	b->runs[idx].rows = -1;
	if ((rc = shell_config(n, a, &sc, err)))
		return rc;
	return run_script(b, w, idx, &sc, a, err);
}

/*
 * Another environment ran this script with the fingerprint it has now:
 * its files serve this target when every one it declares is here with the
 * content it wrote there (one checkout, or a shared disk). A script that
 * declares none, or makes a relation, is run here: what it did is out of
 * sight.
 */
static int shell_adopt(struct build *b, size_t idx, const struct val *theirs, int apply, struct buf *why)
{
	const struct node *n = &b->s->manifest.nodes[idx];
	const struct shell_run *sr = shrun(b, idx);
	const struct val *wrote = val_get(theirs, "outputs");
	struct sluice_err err = SLUICE_ERR_INIT;
	struct arena scratch = ARENA_INIT;
	struct shell_config sc;
	size_t i;
	int ok;

	(void)apply;
	if (shell_config(n, &scratch, &sc, &err) || sc.relation || !sc.outputs.u.list.n) {
		buf_puts(why, sc.relation ? "the script makes a relation of its own" : "the script declares no output files");
		arena_release(&scratch);
		return 0;
	}
	for (i = 0, ok = 1; i < sc.outputs.u.list.n && ok; i++) {
		const char *path = sc.outputs.u.list.items[i].u.str.s;
		const char *here = val_get_str(val_get(&sr->outputs, path), "hash", NULL);
		const char *there = val_get_str(val_get(wrote, path), "hash", NULL);
		if (!here || !there || strcmp(here, there)) {
			buf_printf(why, "its output %s is not here as %s wrote it", path, val_get_str(theirs, "target", "?"));
			ok = 0;
		}
	}
	arena_release(&scratch);
	return ok;
}

static void shell_record(struct build *b, size_t idx, int ok, struct val *rec, struct arena *a)
{
	const struct shell_run *sr = shrun(b, idx);

	if (ok && sr->outputs.kind == V_DICT)
		val_dict_set(a, rec, "outputs", sr->outputs);
}

static void shell_release(struct build *b, size_t idx)
{
	struct shell_run *sr = shrun(b, idx);

	if (!sr)
		return;
	free(sr->script);
	free(sr);
	b->runs[idx].kind_data = NULL;
}

const struct node_kind kind_shell = {
	.name = "shell",
	/* another environment's run serves this one when its files are here (adopt) */
	.flags = KIND_OWN_SESSIONS | KIND_ADOPTS,
	.adopted = "files",
	.adopt = shell_adopt,
	.what = BUILD_MODELS,
	.prepare = shell_prepare,
	.reads = shell_reads,
	.reuse = shell_reuse,
	.run = shell_job,
	.effective = shell_effective,
	.record = shell_record,
	.release = shell_release,
};
