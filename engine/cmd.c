/*
 * cmd.c: what the subcommands (cmd-*.c) share: opening and closing a
 * project session from the command line, and turning an error into
 * the process exit code. See cmd.h for the codes.
 *
 * Not the dispatch table (main.c) and not any one command's work: a
 * helper belongs here only when more than one cmd-*.c needs it.
 */
#include <malloc.h>
#include <signal.h>
#include "artifacts.h"
#include "cmd.h"
#include "history.h"
#include "report.h"
#include "session.h"
#include "ui.h"

int cmd_fail(const struct sluice_err *err)
{
	ui_error("%s", err->msg[0] ? err->msg : "failed");
	return err_exit_code(err->code ? err->code : SLUICE_EUSAGE);
}

int cmd_exit_status(int rc, int signo, const struct sluice_err *err)
{
	if (rc == SLUICE_ECANCEL)
		return 128 + (signo ? signo : SIGINT);
	if (rc == SLUICE_EDB && !err->msg[0])
		return 1;   /* nodes failed: each was reported */
	return rc ? err_exit_code(err->code ? err->code : SLUICE_EUSAGE) : 0;
}

int cmd_nodes_exit(int rc, int signo, const struct sluice_err *err)
{
	if (ui_flush() < 0 && !rc)
		return 1;
	/* an error not reported yet is printed, with the code cmd_exit_status gives it */
	if (rc && rc != SLUICE_ECANCEL && !(rc == SLUICE_EDB && !err->msg[0]))
		return cmd_fail(err);
	return cmd_exit_status(rc, signo, err);
}

int cmd_build_end(struct build *b, const char *which, int rc, const struct sluice_err *err)
{
	struct sluice_err aerr = SLUICE_ERR_INIT;
	int code = cmd_exit_status(rc, b->ex.signo, err);
	struct session *s;
	struct report_in *in;

	if (!b->executed) {
		history_record(b, which, code);
		return 0;
	}
	/* the report takes the results as they are written: it does not read them back */
	in = report_in_new(b->s->project.target_path);
	if (artifacts_write_run_results(b, which, code, report_in_result, in, &aerr))
		ui_error("%s", aerr.msg);
	build_summary(b, now_seconds() - b->s->started_at);
	/* history first: the report shows it */
	history_record(b, which, code);
	s = b->s;
	/* the build's memory can go before the report is made */
	build_release(b);
	malloc_trim(0);
	if (aerr.code) {
		report_in_free(in);
		return 0;
	}
	return cmd_report_run(s, in);
}

int cmd_open(int argc, char **argv, const char *const *extra, struct cli *cli, struct session *s)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	int code;

	if (!cli_parse(cli, argc, argv, extra, &err)) {
		ui_init(cli->log_format);
		if (!session_open(s, cli, &err))
			return 0;
		/* several errors of the project: each on its own line, as the one would be */
		if (s->errors.total > 1) {
			ui_list(&s->errors, 0);
			code = err_exit_code(err.code);
		} else {
			code = cmd_fail(&err);
		}
		session_close(s);
		cli_release(cli);
		return code;
	}
	cli_release(cli);
	return cmd_fail(&err);
}

void cmd_close(struct cli *cli, struct session *s)
{
	session_close(s);
	cli_release(cli);
}

int cmd_report_run(struct session *s, struct report_in *in)
{
	const struct project *p = &s->project;
	const char *dest = s->cli->report_to ? s->cli->report_to : val_get_str(&p->raw, "report", NULL);
	struct sluice_err err = SLUICE_ERR_INIT;
	struct buf where = BUF_INIT;
	int rc;

	/* the manifest as this run wrote it, made again rather than read back */
	rc = artifacts_manifest_entries(s, report_in_manifest, in);
	if (!rc)
		rc = report_in_write(in, &err);
	report_in_free(in);
	if (rc) {
		ui_error("%s", err.msg);
		return -1;
	}
	ui_info("report: %s/report.html", p->target_path);
	if (!dest || !*dest)
		return 0;
	rc = report_publish(p->target_path, dest, p->dir,
			    p->target.nconns ? val_get(&p->target.conns[0].settings, "s3") : NULL, &where, &err);
	if (rc)
		ui_error("%s", err.msg);
	else
		ui_info("published: %s", where.s);
	buf_release(&where);
	return rc ? -1 : 0;
}
