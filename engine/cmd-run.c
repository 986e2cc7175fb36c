/*
 * cmd-run.c: `sluice run`: build the selected models in DAG order, in
 * parallel, atomically, and write the artifacts.
 */
#include <signal.h>
#include "artifacts.h"
#include "build.h"
#include "cmd.h"
#include "ui.h"

int cmd_run(int argc, char **argv)
{
	struct cli cli = { 0 };
	struct session s;
	struct build b = { 0 };
	struct sluice_err err = SLUICE_ERR_INIT, aerr = SLUICE_ERR_INIT;
	int rc, code;

	if ((code = cmd_open(argc, argv, NULL, &cli, &s)))
		return code;
	if (cli.nargs) {
		rc = err_set(&err, SLUICE_EUSAGE, "run takes no arguments (did you mean -s %s?)", cli.args[0]);
		goto out;
	}
	if ((rc = artifacts_write_manifest(&s, &err)))
		goto out;
	if ((rc = build_prepare(&b, &s, BUILD_RUN, &err)))
		goto out_build;
	if (!b.ntodo)
		ui_warn("nothing to run: no models selected");
	rc = build_execute(&b, &err);
	if (artifacts_write_run_results(&b, "run", &aerr))
		ui_error("%s", aerr.msg);
	ui_summary(b.ok, b.errors, b.skipped, b.reused, now_seconds() - s.started_at);
out_build:
	build_release(&b);
out:
	cmd_close(&cli, &s);
	if (ui_flush() < 0 && !rc)
		return 1;
	if (rc == SLUICE_ECANCEL)
		return 128 + (b.ex.signo ? b.ex.signo : SIGINT);
	if (rc == SLUICE_EDB && !err.msg[0])
		return 1;   /* nodes failed: each was reported */
	return rc ? cmd_fail(&err) : 0;
}
