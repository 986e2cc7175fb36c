/*
 * cmd-blame.c: `sluice blame <model | unique id | schema.relation>`: which
 * run built the version of the relation that exists now, who ran it, from
 * which commit, what it read, and whether the relation was changed or
 * dropped outside sluice since. Reads the state without its lock, like
 * plan, so it works on a fresh worker when the state is in the warehouse
 * or in S3. Changes nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "blame.h"
#include "build.h"
#include "cmd.h"
#include "json.h"
#include "ui.h"
#include "util/xalloc.h"

/* The history entry of run id, as a new reference, or NULL. */
static json_t *run_of(struct build *b, const char *id, struct arena *a)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct val runs;
	size_t i;

	if (!id || state_history_load(b->state, STATE_HISTORY_KEEP, a, &runs, &err))
		return NULL;   /* the command line is a nicety: blame answers without it */
	for (i = 0; i < runs.u.list.n; i++)
		if (!strcmp(val_get_str(&runs.u.list.items[i], "invocation_id", ""), id))
			return json_from_val_new(&runs.u.list.items[i]);
	return NULL;
}

#define BLAME_HOPS 8   /* environments reusing from environments: a chain, never a loop */

/*
 * A node reused from another environment (docs/environments.md): its
 * record says from where, and that environment's record says who built
 * it. Each hop's verdict goes under "reused_from" of the one before.
 */
static void follow_reuse(struct build *b, const struct node *n, const struct val *rec, json_t *verdict, struct arena *a)
{
	int hop;

	for (hop = 0; hop < BLAME_HOPS && rec; hop++) {
		const struct val *from = val_get(rec, "reused_from");
		struct sluice_err err = SLUICE_ERR_INIT;
		struct val theirs;
		json_t *record, *next;
		if (!from || from->kind != V_DICT)
			return;
		json_object_set_new(verdict, "reused_from", json_from_val_new(from));
		if (state_load_target(b->state, val_get_str(from, "target", ""), a, &theirs, &err))
			return;
		rec = val_get(&theirs, n->unique_id);
		if (!rec || rec->kind != V_DICT)
			return;
		record = json_from_val_new(rec);
		next = blame_json_new(n, record, NULL, BLAME_NOW_UNKNOWN, NULL);
		json_object_set_new(next, "target", json_string(val_get_str(from, "target", "")));
		json_object_set_new(next, "relation", json_string(val_get_str(rec, "relation", "")));
		json_object_set(verdict, "reused_record", next);
		json_decref(record);
		verdict = next;
		json_decref(next);
	}
}

/* Print the verdict on n (stdout's errors are ui_flush's to report). */
static void blame(struct build *b, const struct node *n, int as_json)
{
	const struct val *rec = build_prev_record(b, n->idx);
	const struct node_run *r = &b->runs[n->idx];
	const char *now = b->versions.version ? b->versions.version[n->idx] : NULL;
	json_t *record = rec ? json_from_val_new(rec) : NULL, *run, *verdict;
	struct arena a = ARENA_INIT;
	enum blame_now state;
	struct buf out = BUF_INIT;

	run = run_of(b, json_string_value(json_object_get(record, "invocation_id")), &a);
	state = blame_compare(json_string_value(json_object_get(record, "relation_version")), now,
			      r->existing != REL_NONE);
	verdict = blame_json_new(n, record, run, state, now);
	follow_reuse(b, n, rec, verdict, &a);
	if (as_json) {
		char *text = json_dumps(verdict, JSON_INDENT(2));
		if (text)
			buf_printf(&out, "%s\n", text);
		free(text);
	} else {
		blame_text(&out, verdict);
	}
	fwrite(out.s, 1, out.len, stdout);
	buf_release(&out);
	json_decref(verdict);
	json_decref(run);
	json_decref(record);
	arena_release(&a);
}

static int unknown_name(const struct manifest *m, const char *name, struct sluice_err *err)
{
	const char **names = xcalloc(m->n ? m->n : 1, sizeof(char *));
	const char *hint;
	size_t i, k = 0;

	for (i = 0; i < m->n; i++)
		if (m->nodes[i].type == NODE_MODEL)
			names[k++] = m->nodes[i].name;
	hint = dag_suggest(name, names, k);
	err_set(err, SLUICE_EUSAGE, "blame: no model, unique id or relation named '%s'%s%s%s", name,
		hint ? " (did you mean '" : "", hint ? hint : "", hint ? "'?)" : "");
	free(names);
	return SLUICE_EUSAGE;
}

int cmd_blame(int argc, char **argv)
{
	struct cli cli = { 0 };
	struct session s;
	struct build b = { 0 };
	struct sluice_err err = SLUICE_ERR_INIT;
	const struct node *n = NULL;
	int rc = 0;

	if ((rc = cmd_open(argc, argv, NULL, &cli, &s)))
		return rc;
	if (cli.format && strcmp(cli.format, "text") && strcmp(cli.format, "json"))
		rc = err_set(&err, SLUICE_EUSAGE, "--format takes text or json, not '%s'", cli.format);
	else if (cli.nargs != 1)
		rc = err_set(&err, SLUICE_EUSAGE, "usage: sluice blame <model | unique id | schema.relation> [--format json]");
	else if (!(n = blame_find(&s.manifest, cli.args[0])))
		rc = unknown_name(&s.manifest, cli.args[0], &err);
	if (!rc) {
		/* read the state, the catalog and the version of this one relation only */
		memset(s.selected, 0, s.manifest.n);
		s.selected[n->idx] = 1;
		if (!(rc = build_prepare(&b, &s, BUILD_PLAN, &err)))
			blame(&b, n, cli.format && !strcmp(cli.format, "json"));
	}
	build_release(&b);
	cmd_close(&cli, &s);
	if (rc)
		return cmd_fail(&err);
	return ui_flush() < 0 ? 1 : 0;
}
