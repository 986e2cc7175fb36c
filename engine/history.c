/*
 * history.c: one record per run, appended to the state and listed in
 * target/history.json; see history.h. Its fields are the contract with
 * the report (docs/artifacts.md): change them only by adding.
 */
#include <stdio.h>
#include <string.h>
#include "history.h"
#include "json.h"
#include "ui.h"
#include "util/fs.h"

static struct val run_record(const struct build *b, const char *which, int exit_status, struct arena *a)
{
	const struct session *s = b->s;
	struct val rec = val_dict_new();
	int built = 0, reused = 0, failed = 0, skipped = 0, tests = 0;
	double end = b->finished_at ? b->finished_at : now_seconds();
	char started[64], finished[64];
	size_t i;

	for (i = 0; i < s->manifest.n; i++) {
		if (b->todo[i] != EXEC_RUN)
			continue;
		if (!(b->runs[i].kind->what & BUILD_MODELS)) {
			/* a data test builds nothing; its failure fails the run all the same */
			tests++;
			failed += b->runs[i].status == EXEC_ERROR;
			continue;
		}
		switch (b->runs[i].status) {
		case EXEC_SUCCESS: built++; break;
		case EXEC_REUSED: reused++; break;
		case EXEC_ERROR: failed++; break;
		case EXEC_SKIPPED: skipped++; break;
		default: break;
		}
	}
	format_iso_time(s->started_at, started, sizeof(started));
	format_iso_time(end, finished, sizeof(finished));
	val_dict_set(a, &rec, "invocation_id", val_str(s->invocation_id));
	val_dict_set(a, &rec, "started_at", val_str_dup(a, started, strlen(started)));
	val_dict_set(a, &rec, "finished_at", val_str_dup(a, finished, strlen(finished)));
	val_dict_set(a, &rec, "elapsed_time", val_num(end - s->started_at));
	val_dict_set(a, &rec, "user", val_str(s->id.user));
	val_dict_set(a, &rec, "user_source", val_str(s->id.user_source));
	val_dict_set(a, &rec, "command", val_str(s->id.command_line.s));
	val_dict_set(a, &rec, "which", val_str(which));
	val_dict_set(a, &rec, "status", val_str(exit_status == 0 ? "success" : exit_status >= 128 ? "cancelled" : "error"));
	val_dict_set(a, &rec, "exit_status", val_num(exit_status));
	val_dict_set(a, &rec, "built", val_num(built));
	val_dict_set(a, &rec, "reused", val_num(reused));
	val_dict_set(a, &rec, "failed", val_num(failed));
	val_dict_set(a, &rec, "skipped", val_num(skipped));
	val_dict_set(a, &rec, "tests", val_num(tests));
	val_dict_set(a, &rec, "git_commit", s->id.git_commit[0] ? val_str(s->id.git_commit) : val_none());
	val_dict_set(a, &rec, "git_dirty", val_bool(s->id.git_dirty));
	return rec;
}

static void write_history_json(const struct build *b, const struct val *runs, const struct val *now)
{
	json_t *root = json_object(), *list = json_array();
	struct sluice_err err = SLUICE_ERR_INIT;
	char path[4096];
	size_t i;

	/* This run first, even when the state could not keep it. */
	if (!runs->u.list.n || strcmp(val_get_str(&runs->u.list.items[0], "invocation_id", ""), b->s->invocation_id))
		json_array_append_new(list, json_from_val_new(now));
	for (i = 0; i < runs->u.list.n && json_array_size(list) < HISTORY_SHOWN; i++)
		json_array_append_new(list, json_from_val_new(&runs->u.list.items[i]));
	for (i = 0; i < json_array_size(list); i++) {
		json_t *r = json_array_get(list, i);
		char report[128];
		snprintf(report, sizeof(report), "%s/report.html", json_string_value(json_object_get(r, "invocation_id")));
		json_object_set_new(r, "report", json_string(report));
	}
	json_object_set_new(root, "runs", list);
	snprintf(path, sizeof(path), "%s/history.json", b->s->project.target_path);
	if (fs_mkdir_parent(path, &err) || json_write_file(root, path, &err))
		ui_warn("%s", err.msg);
	json_decref(root);
}

void history_record(struct build *b, const char *which, int exit_status)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct arena a = ARENA_INIT;
	struct val rec, runs;

	if (!b->state || !state_is_locked(b->state))
		return;
	rec = run_record(b, which, exit_status, &a);
	if (state_history_put(b->state, &rec, &err)) {
		ui_warn("%s", err.msg);
		memset(&err, 0, sizeof(err));
	}
	if (state_history_load(b->state, HISTORY_SHOWN, &a, &runs, &err)) {
		ui_warn("state: reading the run history: %s", err.msg);
		runs = val_list_new();
	}
	write_history_json(b, &runs, &rec);
	arena_release(&a);
}
