/*
 * cmd-compile.c: `sluice compile`: render every selected model to
 * target/compiled/<path> (ephemeral models too, which have no statements)
 * and its statements to target/run/<path>, and
 * every selected data test's query to target/compiled, with no database
 * connection (relations are assumed not to exist yet).
 */
#include "artifacts.h"
#include "build.h"
#include "cmd.h"
#include "ui.h"

int cmd_compile(int argc, char **argv)
{
	struct cli cli = { 0 };
	struct session s;
	struct build b = { 0 };
	struct sluice_err err = SLUICE_ERR_INIT;
	size_t i;
	int rc, failed = 0;

	cli.identity_git = 1;   /* its artifacts and records name the commit */
	if ((rc = cmd_open(argc, argv, NULL, &cli, &s)))
		return rc;
	if (!(rc = artifacts_write_manifest(&s, &err)) && !(rc = build_prepare_nodes(&b, &s, BUILD_OFFLINE, BUILD_RELATIONS | BUILD_TESTS, &err))) {
		build_flush_target(&b);
		for (i = 0; i < s.manifest.n; i++)
			if (b.runs[i].failed_early) {   /* ephemeral models included: they are never run */
				ui_error("%s", run_err_msg(&b.runs[i]));
				failed++;
			}
		if (!failed)
			ui_info("Compiled %d node%s (models and data tests) to %s/compiled and %s/run", b.ntodo,
				b.ntodo == 1 ? "" : "s", s.project.target_path, s.project.target_path);
	}
	build_release(&b);
	cmd_close(&cli, &s);
	if (rc)
		return cmd_fail(&err);
	return failed ? 2 : (ui_flush() < 0 ? 1 : 0);
}
