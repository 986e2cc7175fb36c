/*
 * cmd-report.c: `sluice report [--open]`: rebuild target/report.html from
 * the artifacts the last run, build or test left in target/ (report.c),
 * and with --open show it (xdg-open when there is one, else print the path).
 * It connects to nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "cmd.h"
#include "report.h"
#include "session.h"
#include "ui.h"

static const char *const report_flags[] = { "--open", NULL };

/* Is prog an executable file in $PATH? */
static int on_path(const char *prog)
{
	const char *path = getenv("PATH"), *p, *end;
	char f[4096];

	for (p = path; p && *p; p = *end ? end + 1 : end) {
		end = p + strcspn(p, ":");
		snprintf(f, sizeof(f), "%.*s/%s", (int)(end - p), p, prog);
		if (access(f, X_OK) == 0)
			return 1;
	}
	return 0;
}

static void open_page(const char *path)
{
	pid_t pid;
	int status;

	if (!on_path("xdg-open")) {
		printf("%s\n", path);
		return;
	}
	fflush(NULL);
	if ((pid = fork()) == 0) {
		execlp("xdg-open", "xdg-open", path, (char *)NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
		ui_warn("xdg-open could not open %s", path);
}

int cmd_report(int argc, char **argv)
{
	struct cli cli = { 0 };
	struct session s;
	struct sluice_err err = SLUICE_ERR_INIT;
	char path[4096];
	int code, i, open = 0;

	if ((code = cmd_open(argc, argv, report_flags, &cli, &s)))
		return code;
	for (i = 0; i < cli.nargs && !err.code; i++) {
		if (!strcmp(cli.args[i], "--open"))
			open = 1;
		else
			err_set(&err, SLUICE_EUSAGE, "report takes no arguments but --open, not '%s'", cli.args[i]);
	}
	if (!err.code && !report_write(s.project.target_path, &err)) {
		snprintf(path, sizeof(path), "%s/report.html", s.project.target_path);
		ui_info("report: %s", path);
		if (open)
			open_page(path);
	}
	cmd_close(&cli, &s);
	if (err.code)
		return cmd_fail(&err);
	return ui_flush() < 0 ? 1 : 0;
}
