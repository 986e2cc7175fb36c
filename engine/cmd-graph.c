/*
 * cmd-graph.c: `sluice graph [--format dot|mermaid|json] [-s ...]
 * [--exclude ...]`: the selected nodes of the DAG and the edges between
 * them, on stdout. Offline: reads the project only.
 */
#include <stdio.h>
#include "cmd.h"
#include "graph.h"
#include "session.h"
#include "ui.h"

int cmd_graph(int argc, char **argv)
{
	struct cli cli = { 0 };
	struct session s;
	struct sluice_err err = SLUICE_ERR_INIT;
	enum graph_format f;
	struct buf out = BUF_INIT;
	int rc = 0;

	if ((rc = cmd_open(argc, argv, NULL, &cli, &s)))
		return rc;
	if (graph_format_parse(cli.format, &f))
		rc = err_set(&err, SLUICE_EUSAGE, "--format takes dot, mermaid or json, not '%s'", cli.format);
	else if (cli.nargs)
		rc = err_set(&err, SLUICE_EUSAGE, "graph takes no arguments (did you mean -s %s?)", cli.args[0]);
	if (!rc) {
		graph_write(&out, &s.manifest, s.selected, f);
		fwrite(out.s, 1, out.len, stdout);
	}
	buf_release(&out);
	cmd_close(&cli, &s);
	if (rc)
		return cmd_fail(&err);
	return ui_flush() < 0 ? 1 : 0;
}
