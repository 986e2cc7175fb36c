/*
 * cmd-run.c: `sluice run`: build the selected models in DAG order, in
 * parallel, atomically, and write the artifacts.
 */
#include "artifacts.h"
#include "build.h"
#include "cmd.h"
#include "ui.h"

int cmd_run(int argc, char **argv)
{
	struct cli cli = { 0 };
	struct session s;
	struct build b = { 0 };
	struct sluice_err err = SLUICE_ERR_INIT;
	int rc, code;

	cli.identity_git = 1;   /* its artifacts and records name the commit */
	if ((code = cmd_open(argc, argv, NULL, &cli, &s)))
		return code;
	if (cli.nargs) {
		rc = err_set(&err, SLUICE_EUSAGE, "run takes no arguments (did you mean -s %s?)", cli.args[0]);
		goto out;
	}
	if ((rc = artifacts_write_manifest(&s, &err)) || (rc = session_audit(&s, &err)))
		goto out;
	if ((rc = build_prepare(&b, &s, BUILD_RUN, &err)))
		goto out_build;
	if (!b.ntodo)
		ui_warn("nothing to run: no models selected");
	rc = build_execute(&b, &err);
out_build:
	if (cmd_build_end(&b, "run", rc, &err) && !rc)
		rc = SLUICE_EDB;   /* the report failed: exit 1 */
	build_release(&b);
out:
	cmd_close(&cli, &s);
	return cmd_nodes_exit(rc, b.ex.signo, &err);
}
