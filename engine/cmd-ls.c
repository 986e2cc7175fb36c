/*
 * cmd-ls.c: `sluice ls`: list the selected nodes, as dbt ls does. Needs
 * no database.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cmd.h"
#include "json.h"
#include "session.h"
#include "ui.h"

static void print_fqn(const struct node *n, const struct project *p)
{
	/* the project or package: the unique_id's second part ("source.<package>.lake.t") */
	const char *dot = n->unique_id ? strchr(n->unique_id, '.') : NULL, *end = dot ? strchr(dot + 1, '.') : NULL;
	int plen = end ? (int)(end - dot - 1) : (int)strlen(p->name);
	const char *project = end ? dot + 1 : p->name;
	size_t i;

	if (n->type == NODE_SOURCE) {
		printf("source:%.*s.%s.%s\n", plen, project, n->source->source_name, n->name);
		return;
	}
	if (n->type == NODE_TEST) {
		printf("test:%.*s.%s\n", plen, project, n->name);
		return;
	}
	for (i = 0; i < n->model->nfqn; i++)
		printf("%s%s", i ? "." : "", n->model->fqn[i]);
	putchar('\n');
}

int cmd_ls(int argc, char **argv)
{
	struct cli cli = { 0 };
	struct session s;
	struct sluice_err err = SLUICE_ERR_INIT;
	const char *out, *type;
	size_t i;
	int rc;

	if ((rc = cmd_open(argc, argv, NULL, &cli, &s)))
		return rc;
	out = cli.output ? cli.output : "selector";
	type = cli.resource_type ? cli.resource_type : "all";
	if (strcmp(out, "selector") && strcmp(out, "name") && strcmp(out, "path") && strcmp(out, "json")) {
		err_set(&err, SLUICE_EUSAGE, "--output takes selector, name, path or json, not '%s'", out);
		rc = SLUICE_EUSAGE;
	} else if (strcmp(type, "all") && strcmp(type, "model") && strcmp(type, "source") && strcmp(type, "test")) {
		err_set(&err, SLUICE_EUSAGE, "--resource-type takes model, source, test or all, not '%s'", type);
		rc = SLUICE_EUSAGE;
	}
	if (rc) {
		cmd_close(&cli, &s);
		return cmd_fail(&err);
	}
	for (i = 0; i < s.manifest.n; i++) {
		const struct node *n = &s.manifest.nodes[i];
		if (!s.selected[i])
			continue;
		if ((!strcmp(type, "model") && n->type != NODE_MODEL) || (!strcmp(type, "source") && n->type != NODE_SOURCE) ||
		    (!strcmp(type, "test") && n->type != NODE_TEST))
			continue;
		if (!strcmp(out, "name"))
			printf("%s\n", n->type == NODE_SOURCE ? n->unique_id + strlen("source.") + strlen(s.project.name) + 1 : n->name);
		else if (!strcmp(out, "path"))
			printf("%s\n", n->type == NODE_MODEL ? n->model->path : n->type == NODE_TEST ? n->info.path : n->source->path);
		else if (!strcmp(out, "json")) {
			json_t *o = json_object();
			char *text;
			json_object_set_new(o, "unique_id", json_string(n->unique_id));
			json_object_set_new(o, "name", json_string(n->name));
			json_object_set_new(o, "resource_type", json_string(n->type == NODE_MODEL ? "model" :
									      n->type == NODE_TEST ? "test" : "source"));
			json_object_set_new(o, "relation_name", json_string(n->relation));
			if (n->type == NODE_MODEL) {
				json_object_set_new(o, "materialized", json_string(n->mat_name));
				json_object_set_new(o, "path", json_string(n->model->path));
			}
			json_object_set_new(o, "config", json_from_val_new(&n->config));
			text = json_dumps(o, JSON_COMPACT);
			printf("%s\n", text);
			free(text);
			json_decref(o);
		} else
			print_fqn(n, &s.project);
	}
	cmd_close(&cli, &s);
	return ui_flush() < 0 ? 1 : 0;
}
