/*
 * cmd-plan.c: `sluice plan`: for each selected model, whether `run` would
 * build or reuse it, and why. Changes nothing (reads the state without
 * taking its lock).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "build.h"
#include "cmd.h"
#include "json.h"
#include "ui.h"

static void print_text(const struct build *b)
{
	const struct manifest *m = &b->s->manifest;
	size_t k, r;
	int build = 0, reuse = 0;

	for (k = 0; k < m->n; k++) {
		size_t i = m->dag->order[k];
		const struct node_run *nr = &b->runs[i];
		if (b->todo[i] != EXEC_RUN)
			continue;
		if (nr->failed_early) {
			printf("error  %s: %s\n", m->nodes[i].name, run_err_msg(nr));
			continue;
		}
		/* reused from another environment: made here, but not built (reuse.h) */
		printf("%s  %s", nr->decision.build && nr->reused_from.kind != V_DICT ? "build" : "reuse", m->nodes[i].name);
		if (nr->decision.full_refresh && nr->reused_from.kind != V_DICT)
			printf(" (full refresh)");
		for (r = 0; r < nr->decision.reasons.u.list.n; r++)
			printf("%s%s", r ? "; " : ": ", nr->decision.reasons.u.list.items[r].u.str.s);
		putchar('\n');
		if (nr->decision.build && nr->reused_from.kind != V_DICT)
			build++;
		else
			reuse++;
	}
	printf("%d to build, %d to reuse\n", build, reuse);
}

static void print_json(const struct build *b)
{
	const struct manifest *m = &b->s->manifest;
	json_t *a = json_array();
	char *text;
	size_t k;

	for (k = 0; k < m->n; k++) {
		size_t i = m->dag->order[k];
		const struct node_run *nr = &b->runs[i];
		json_t *o;
		if (b->todo[i] != EXEC_RUN)
			continue;
		o = json_object();
		json_object_set_new(o, "unique_id", json_string(m->nodes[i].unique_id));
		json_object_set_new(o, "action", json_string(nr->failed_early ? "error"
							     : nr->decision.build && nr->reused_from.kind != V_DICT ? "build" : "reuse"));
		if (nr->reused_from.kind == V_DICT)
			json_object_set_new(o, "reuse_from", json_from_val_new(&nr->reused_from));
		json_object_set_new(o, "reasons", nr->failed_early ? json_pack("[s]", run_err_msg(nr))
								 : json_from_val_new(&nr->decision.reasons));
		if (nr->decision.full_refresh)
			json_object_set_new(o, "full_refresh", json_true());
		json_array_append_new(a, o);
	}
	text = json_dumps(a, JSON_INDENT(2));
	printf("%s\n", text);
	free(text);
	json_decref(a);
}

int cmd_plan(int argc, char **argv)
{
	struct cli cli = { 0 };
	struct session s;
	struct build b = { 0 };
	struct sluice_err err = SLUICE_ERR_INIT;
	int rc;

	if ((rc = cmd_open(argc, argv, NULL, &cli, &s)))
		return rc;
	if (cli.format && strcmp(cli.format, "text") && strcmp(cli.format, "json"))
		rc = err_set(&err, SLUICE_EUSAGE, "--format takes text or json, not '%s'", cli.format);
	if (!rc && !(rc = build_prepare(&b, &s, BUILD_PLAN, &err))) {
		build_plan(&b);
		if (cli.format && !strcmp(cli.format, "json"))
			print_json(&b);
		else
			print_text(&b);
	}
	build_release(&b);
	cmd_close(&cli, &s);
	if (rc)
		return cmd_fail(&err);
	return ui_flush() < 0 ? 1 : 0;
}
