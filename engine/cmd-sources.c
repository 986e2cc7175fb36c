/*
 * cmd-sources.c: `sluice sources instrument|uninstrument|versions`.
 * instrument installs (and uninstrument removes) the triggers of sources
 * with change_detection: trigger; versions prints the version each
 * selected source has now, which is what `sluice run` compares (see
 * docs/change-detection.md). The work itself is in sources.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cmd.h"
#include "session.h"
#include "sources.h"
#include "ui.h"
#include "util/xalloc.h"

#define SOURCES_USAGE "usage: sluice sources instrument|uninstrument|versions [-s SELECTOR...]"

/* "source.proj.lake.patients<TAB>version" per selected source, then "# N metadata queries". */
static int print_versions(struct session *s, struct sluice_err *err)
{
	const struct manifest *m = &s->manifest;
	unsigned char *want = xcalloc(m->n ? m->n : 1, 1);
	struct source_versions v;
	size_t i;
	int rc;

	for (i = 0; i < m->n; i++)
		want[i] = s->selected[i] && m->nodes[i].type == NODE_SOURCE;
	rc = sources_versions(s, NULL, want, &v, err);
	for (i = 0; !rc && i < m->n; i++)
		if (want[i])
			printf("%s\t%s\n", m->nodes[i].unique_id, v.version[i] ? v.version[i] : "unknown");
	if (!rc)
		printf("# %d metadata quer%s\n", v.queries, v.queries == 1 ? "y" : "ies");
	source_versions_release(&v);
	free(want);
	return rc;
}

int cmd_sources(int argc, char **argv)
{
	struct cli cli = { 0 };
	struct session s;
	struct sluice_err err = SLUICE_ERR_INIT;
	const char *action;
	int rc, count = 0, install;

	if ((rc = cmd_open(argc, argv, NULL, &cli, &s)))
		return rc;
	action = cli.nargs == 1 ? cli.args[0] : "";
	if (strcmp(action, "instrument") && strcmp(action, "uninstrument") && strcmp(action, "versions")) {
		if (cli.nargs > 1)
			err_set(&err, SLUICE_EUSAGE, "sources takes one action, not %d (" SOURCES_USAGE ")", cli.nargs);
		else if (*action)
			err_set(&err, SLUICE_EUSAGE, "unknown sources action '%s' (" SOURCES_USAGE ")", action);
		else
			err_set(&err, SLUICE_EUSAGE, SOURCES_USAGE);
		cmd_close(&cli, &s);
		return cmd_fail(&err);
	}
	if (!strcmp(action, "versions")) {
		rc = print_versions(&s, &err);
	} else {
		install = !strcmp(action, "instrument");
		rc = sources_instrument(&s, install, &count, &err);
		if (!rc) {
			printf("%s %d source table%s\n", install ? "instrumented" : "uninstrumented", count,
			       count == 1 ? "" : "s");
			if (!count)
				ui_warn("no selected source has change_detection: trigger");
		}
	}
	cmd_close(&cli, &s);
	if (rc)
		return cmd_fail(&err);
	return ui_flush() < 0 ? 1 : 0;
}
