/*
 * artifacts.c: JSON artifacts (Jansson). json_object_set_new steals the
 * reference it is given; json_object_get borrows.
 */
#include <stdio.h>
#include <string.h>
#include "artifacts.h"
#include "datatest.h"
#include "json.h"
#include "reuse.h"
#include "version.h"

static json_t *metadata_new(const struct session *s)
{
	json_t *md = json_object();
	char ts[64];

	format_iso_time(now_seconds(), ts, sizeof(ts));
	json_object_set_new(md, "sluice_version", json_string(SLUICE_VERSION));
	json_object_set_new(md, "generated_at", json_string(ts));
	json_object_set_new(md, "invocation_id", json_string(s->invocation_id));
	json_object_set_new(md, "project_name", json_string(s->project.name));
	json_object_set_new(md, "user", json_string(s->user));
	json_object_set_new(md, "target", json_string(s->project.target.name));
	/* who ran it and from what: the run identity (docs/blame.md) */
	json_object_set_new(md, "user_source", json_string(s->id.user_source));
	json_object_set_new(md, "git_commit", s->id.git_commit[0] ? json_string(s->id.git_commit) : json_null());
	json_object_set_new(md, "git_dirty", json_boolean(s->id.git_dirty));
	json_object_set_new(md, "command_line", json_string(s->id.command_line.s));
	format_iso_time(s->started_at, ts, sizeof(ts));
	json_object_set_new(md, "started_at", json_string(ts));
	if (s->schedule[0])
		json_object_set_new(md, "schedule", json_string(s->schedule));
	return md;
}

static json_t *id_list_new(const struct manifest *m, size_t *idx, size_t n)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; i < n; i++)
		json_array_append_new(a, json_string(m->nodes[idx[i]].unique_id));
	return a;
}

static json_t *node_json_new(const struct session *s, const struct node *n)
{
	const struct manifest *m = &s->manifest;
	json_t *o = json_object(), *deps = json_object(), *tags = json_array();
	size_t i;

	json_object_set_new(o, "unique_id", json_string(n->unique_id));
	json_object_set_new(o, "name", json_string(n->name));
	json_object_set_new(o, "resource_type", json_string(n->type == NODE_MODEL ? "model" :
							      n->type == NODE_TEST ? "test" : "source"));
	json_object_set_new(o, "schema", json_string(n->schema));
	json_object_set_new(o, "identifier", json_string(n->identifier));
	json_object_set_new(o, "relation_name", json_string(n->relation));
	json_object_set_new(o, "connection", json_string(n->connection));
	json_object_set_new(o, "config", json_from_val_new(&n->config));
	for (i = 0; i < n->ntags; i++)
		json_array_append_new(tags, json_string(n->tags[i]));
	json_object_set_new(o, "tags", tags);
	if (n->type == NODE_MODEL) {
		char path[4096];
		json_object_set_new(o, "alias", json_string(n->identifier));
		json_object_set_new(o, "original_file_path", json_string(n->model->path));
		json_object_set_new(o, "path", json_string(n->model->path));
		json_object_set_new(o, "materialized", json_string(n->mat_name));
		json_object_set_new(o, "description", json_string(n->model->description ? n->model->description : ""));
		snprintf(path, sizeof(path), "%s/compiled/%s", s->project.target_path, n->model->path);
		json_object_set_new(o, "compiled_path", json_string(path));
		json_object_set_new(o, "fqn", json_array());
		for (i = 0; i < n->model->nfqn; i++)
			json_array_append_new(json_object_get(o, "fqn"), json_string(n->model->fqn[i]));
	} else if (n->type == NODE_TEST) {
		const struct datatest *t = n->test;
		json_t *md = json_object();
		json_object_set_new(o, "original_file_path", json_string(t->at.path));
		json_object_set_new(o, "path", json_string(t->at.path));
		json_object_set_new(md, "name", json_string(t->kind_name));
		json_object_set_new(o, "test_metadata", md);
		json_object_set_new(o, "column_name", t->column ? json_string(t->column) : json_null());
		json_object_set_new(o, "attached_node", t->tested ? json_string(t->tested->unique_id) : json_null());
		if (t->at.line)
			json_object_set_new(o, "line", json_integer(t->at.line));
	} else {
		json_object_set_new(o, "source_name", json_string(n->source->source_name));
		json_object_set_new(o, "original_file_path", json_string(n->source->path ? n->source->path : ""));
		json_object_set_new(o, "description", json_string(n->source->description ? n->source->description : ""));
	}
	json_object_set_new(deps, "nodes", id_list_new(m, m->dag->parents[n->idx], m->dag->nparents[n->idx]));
	json_object_set_new(o, "depends_on", deps);
	return o;
}

/* "key": v at the document's top level (v stolen). */
static void stream_member(struct json_stream *js, const char *key, json_t *v, int first)
{
	json_stream_key(js, key, first, 2);
	json_stream_value(js, v, 2);
	json_decref(v);
}

enum manifest_section { SECTION_NODES, SECTION_SOURCES, SECTION_PARENTS, SECTION_CHILDREN };

/* One of manifest.json's maps by unique_id, written an entry at a time. */
static void stream_section(struct json_stream *js, const struct session *s, const char *key, enum manifest_section which)
{
	const struct manifest *m = &s->manifest;
	size_t i;
	int first = 1;

	json_stream_key(js, key, 0, 2);
	json_stream_text(js, "{");
	for (i = 0; i < m->n; i++) {
		const struct node *n = &m->nodes[i];
		json_t *v;
		if ((which == SECTION_NODES && n->type == NODE_SOURCE) || (which == SECTION_SOURCES && n->type != NODE_SOURCE))
			continue;
		if (which == SECTION_PARENTS)
			v = id_list_new(m, m->dag->parents[i], m->dag->nparents[i]);
		else if (which == SECTION_CHILDREN)
			v = id_list_new(m, m->dag->children[i], m->dag->nchildren[i]);
		else
			v = node_json_new(s, n);
		json_stream_key(js, n->unique_id, first, 4);
		json_stream_value(js, v, 4);
		json_decref(v);
		first = 0;
	}
	json_stream_text(js, first ? "}" : "\n  }");
}

int artifacts_manifest_entries(const struct session *s, json_member_fn fn, void *ud)
{
	const struct manifest *m = &s->manifest;
	size_t i;
	int pass, rc = 0;

	/* in manifest.json's order: its nodes, then its sources */
	for (pass = 0; pass < 2; pass++)
		for (i = 0; i < m->n && !rc; i++) {
			const struct node *n = &m->nodes[i];
			if ((n->type == NODE_SOURCE) == pass)
				rc = fn(ud, pass ? "sources" : "nodes", n->unique_id, node_json_new(s, n), 1);
		}
	return rc;
}

/* Written an entry at a time: 10,000 nodes as one JSON tree were 45 MB. */
int artifacts_write_manifest(const struct session *s, struct sluice_err *err)
{
	struct json_stream js;
	char path[4096];

	snprintf(path, sizeof(path), "%s/manifest.json", s->project.target_path);
	if (json_stream_open(&js, path, err))
		return err->code;
	json_stream_text(&js, "{");
	stream_member(&js, "metadata", metadata_new(s), 1);
	stream_section(&js, s, "nodes", SECTION_NODES);
	stream_section(&js, s, "sources", SECTION_SOURCES);
	stream_section(&js, s, "parent_map", SECTION_PARENTS);
	stream_section(&js, s, "child_map", SECTION_CHILDREN);
	json_stream_text(&js, "\n}");
	return json_stream_close(&js, err);
}

static json_t *timing_new(const char *name, double start, double end)
{
	json_t *t = json_object();
	char a[64], b[64];

	format_iso_time(start, a, sizeof(a));
	format_iso_time(end, b, sizeof(b));
	json_object_set_new(t, "name", json_string(name));
	json_object_set_new(t, "started_at", json_string(a));
	json_object_set_new(t, "completed_at", json_string(b));
	return t;
}

/*
 * Each source's version as this run read it, and as the last run that
 * built one of its readers saw it (from that reader's state record):
 * {unique_id, version, previous, changed}; changed is null when no reader
 * was built before.
 */
static json_t *sources_json_new(const struct build *b)
{
	const struct manifest *m = &b->s->manifest;
	json_t *list = json_array();
	size_t i, k;

	for (i = 0; i < m->n && i < b->versions.n; i++) {
		const char *now = b->versions.version ? b->versions.version[i] : NULL, *prev = NULL;
		json_t *o;
		if (m->nodes[i].type != NODE_SOURCE || !now)
			continue;
		for (k = 0; k < m->dag->nchildren[i] && !prev; k++) {
			const struct val *rec = build_prev_record(b, m->dag->children[i][k]);
			const struct val *v = rec ? val_get(val_get(rec, "sources"), m->nodes[i].unique_id) : NULL;
			if (v && v->kind == V_STR)
				prev = v->u.str.s;
		}
		o = json_object();
		json_object_set_new(o, "unique_id", json_string(m->nodes[i].unique_id));
		json_object_set_new(o, "version", json_string(now));
		json_object_set_new(o, "previous", prev ? json_string(prev) : json_null());
		json_object_set_new(o, "changed", prev ? json_boolean(strcmp(prev, now) != 0) : json_null());
		json_array_append_new(list, o);
	}
	return list;
}

/* Node i's entry in run_results.json. */
static json_t *result_json_new(const struct build *b, size_t i)
{
	static const char *const status_words[] = { "skipped", "success", "error", "skipped", "reused" };
	const struct node_run *r = &b->runs[i];
	json_t *o = json_object(), *resp = json_object(), *timing = json_array();

	json_object_set_new(o, "unique_id", json_string(b->s->manifest.nodes[i].unique_id));
	json_object_set_new(o, "status", json_string(status_words[r->status]));
	json_object_set_new(o, "execution_time", json_real(r->finished > r->started ? r->finished - r->started : 0));
	{
		char tid[32];
		snprintf(tid, sizeof(tid), "Thread-%d", r->thread_id);
		json_object_set_new(o, "thread_id", r->thread_id ? json_string(tid) : json_null());
	}
	json_object_set_new(resp, "rows_affected", r->status == EXEC_SUCCESS && r->rows >= 0 ? json_integer(r->rows) : json_null());
	json_object_set_new(o, "adapter_response", resp);
	if (r->status == EXEC_REUSED) {
		json_object_set_new(o, "message", json_string("up to date: fingerprint unchanged"));
	} else if (r->status == EXEC_SUCCESS && r->reused_from.kind == V_DICT) {
		/* made from another environment's relation (docs/environments.md) */
		struct buf note = BUF_INIT;
		reuse_describe(&r->reused_from, &note);
		json_object_set_new(o, "message", json_string(note.s));
		json_object_set_new(o, "reused_from", json_from_val_new(&r->reused_from));
		buf_release(&note);
	} else
		json_object_set_new(o, "message", r->status == EXEC_SUCCESS ? json_string("OK") : json_string(run_err_msg(r)));
	/* why it ran (or, empty, why it did not need to) */
	json_object_set_new(o, "reasons", r->decided ? json_from_val_new(&r->decision.reasons) : json_array());
	if (r->decided)
		json_object_set_new(o, "fingerprint", json_string(r->fp.full));
	if (r->err && r->err->sqlstate[0])
		json_object_set_new(o, "sqlstate", json_string(r->err->sqlstate));
	json_object_set_new(o, "relation_name", json_string(b->s->manifest.nodes[i].relation));
	if (r->compile_started)
		json_array_append_new(timing, timing_new("compile", r->compile_started, r->compile_done));
	if (r->started && r->status != EXEC_SKIPPED)
		json_array_append_new(timing, timing_new("execute", r->started, r->finished));
	json_object_set_new(o, "timing", timing);
	json_object_set_new(o, "failures", json_null());
	/* stage hops: every row count checked, as {name, expected, actual, status} */
	if (r->validations.kind == V_LIST)
		json_object_set_new(o, "validations", json_from_val_new(&r->validations));
	build_result_json(b, i, o);
	return o;
}

/* The member handed to tee as json_load_members would read it back (a new reference), then written. */
static void result_member(struct json_stream *js, const char *key, json_t *v, int first, json_member_fn tee, void *ud)
{
	if (tee)
		tee(ud, key, NULL, json_incref(v), 0);
	stream_member(js, key, v, first);
}

/*
 * Written one result at a time, each freed once written (or handed to
 * tee): 10,000 results as one JSON tree were the largest thing a no-op
 * run held.
 */

int artifacts_write_run_results(const struct build *b, const char *command, int exit_status, json_member_fn tee,
				void *ud, struct sluice_err *err)
{
	const struct session *s = b->s;
	const struct manifest *m = &s->manifest;
	json_t *md = metadata_new(s), *args = json_object();
	struct json_stream js;
	char path[4096];
	size_t i;
	int first = 1;

	json_object_set_new(md, "exit_status", json_integer(exit_status));
	json_object_set_new(args, "which", json_string(command));
	json_object_set_new(args, "select", json_string(s->cli->select.s));
	json_object_set_new(args, "exclude", json_string(s->cli->exclude.s));
	json_object_set_new(args, "full_refresh", json_boolean(s->cli->full_refresh));
	json_object_set_new(args, "threads", json_integer(b->threads));
	snprintf(path, sizeof(path), "%s/run_results.json", s->project.target_path);
	if (json_stream_open(&js, path, err)) {
		json_decref(md);
		json_decref(args);
		return err->code;
	}
	json_stream_text(&js, "{");
	result_member(&js, "metadata", md, 1, tee, ud);
	result_member(&js, "elapsed_time",
		      json_real((b->finished_at ? b->finished_at : now_seconds()) - s->started_at), 0, tee, ud);
	result_member(&js, "args", args, 0, tee, ud);
	json_stream_key(&js, "results", 0, 2);
	json_stream_text(&js, "[");
	if (tee)
		tee(ud, "results", NULL, json_array(), 0);
	for (i = 0; i < m->n; i++) {
		json_t *o;
		if (b->todo[i] != EXEC_RUN)
			continue;
		o = result_json_new(b, i);
		json_stream_text(&js, first ? "\n    " : ",\n    ");
		json_stream_value(&js, o, 4);
		if (tee)
			tee(ud, "results", NULL, o, 1);
		else
			json_decref(o);
		first = 0;
	}
	json_stream_text(&js, first ? "]" : "\n  ]");
	result_member(&js, "sources", sources_json_new(b), 0, tee, ud);
	json_stream_text(&js, "\n}");
	return json_stream_close(&js, err);
}
