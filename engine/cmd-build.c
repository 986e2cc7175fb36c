/*
 * cmd-build.c: `sluice build`: the selected models and their data tests
 * in one DAG, each model's tests right after it; a failing test (severity
 * error) skips what reads the model it tests. Also the body `sluice test`
 * shares (cmd-test.c).
 */
#include <string.h>
#include "artifacts.h"
#include "build.h"
#include "cmd.h"
#include "ui.h"

static const char *const test_flags[] = { "--no-combine", NULL };

static const char *which_nodes(unsigned what)
{
	return what & BUILD_TESTS ? "tests" : what & BUILD_SEEDS ? "seeds" : "snapshots";
}

int cmd_build_like(int argc, char **argv, const char *which, unsigned what)
{
	struct cli cli = { 0 };
	struct session s;
	struct build b = { 0 };
	struct sluice_err err = SLUICE_ERR_INIT;
	int rc = 0, code, i;

	cli.identity_git = 1;   /* its artifacts and records name the commit */
	if ((code = cmd_open(argc, argv, test_flags, &cli, &s)))
		return code;
	for (i = 0; i < cli.nargs && !rc; i++) {
		if (!strcmp(cli.args[i], "--no-combine"))
			what |= BUILD_NO_COMBINE;
		else
			rc = err_set(&err, SLUICE_EUSAGE, "%s takes no arguments (did you mean -s %s?)", which, cli.args[i]);
	}
	if (rc)
		goto out;
	if ((rc = artifacts_write_manifest(&s, &err)) || (rc = session_audit(&s, &err)))
		goto out;
	if ((rc = build_prepare_nodes(&b, &s, BUILD_RUN, what, &err)))
		goto out_build;
	if (!b.ntodo)
		ui_warn("nothing to run: no %s selected", what & BUILD_MODELS ? "models or tests" : which_nodes(what));
	rc = build_execute(&b, &err);
out_build:
	if (cmd_build_end(&b, which, rc, &err) && !rc)
		rc = SLUICE_EDB;   /* the report failed: exit 1 */
	build_release(&b);
out:
	cmd_close(&cli, &s);
	return cmd_nodes_exit(rc, b.ex.signo, &err);
}

int cmd_build(int argc, char **argv)
{
	/* as dbt's build: seeds and snapshots too, where `run` has models only */
	return cmd_build_like(argc, argv, "build", BUILD_MODELS | BUILD_TESTS | BUILD_SEEDS | BUILD_SNAPSHOTS);
}
