/*
 * main.c: command dispatch (a table, as in git.c) and process-wide setup.
 * Only main and cmd-*.c print errors or choose exit codes.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include "../connectors/connector.h"
#include "cmd.h"
#include "session.h"
#include "ui.h"
#include "version.h"

struct cmd_entry {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

static int cmd_help(int argc, char **argv);

static const struct cmd_entry commands[] = {
	{ "run", cmd_run, "build the selected models (only what needs building)" },
	{ "test", cmd_test, "run the data tests of the selected models (--no-combine: one query per test)" },
	{ "build", cmd_build, "run and test the selected models in DAG order; a failing test stops what reads its model" },
	{ "plan", cmd_plan, "show what run would build or reuse, and why (changes nothing)" },
	{ "compile", cmd_compile, "render models to target/compiled and their statements to target/run" },
	{ "ls", cmd_ls, "list the selected nodes" },
	{ "show", cmd_show, "print a model's rows (--limit N, --format table|csv|json)" },
	{ "debug", cmd_debug, "check the project, the profile and every connection" },
	{ "sources", cmd_sources, "instrument|uninstrument|versions: source change detection" },
	{ "embedded", cmd_embedded, "start|stop|status|env of the embedded PostgreSQL" },
	{ "help", cmd_help, "show this help" },
};

int cmd_fail(const struct sluice_err *err)
{
	ui_error("%s", err->msg[0] ? err->msg : "failed");
	return err_exit_code(err->code ? err->code : SLUICE_EUSAGE);
}

int cmd_nodes_exit(int rc, int signo, const struct sluice_err *err)
{
	if (ui_flush() < 0 && !rc)
		return 1;
	if (rc == SLUICE_ECANCEL)
		return 128 + (signo ? signo : SIGINT);
	if (rc == SLUICE_EDB && !err->msg[0])
		return 1;   /* nodes failed: each was reported */
	return rc ? cmd_fail(err) : 0;
}

int cmd_open(int argc, char **argv, const char *const *extra, struct cli *cli, struct session *s)
{
	struct sluice_err err = SLUICE_ERR_INIT;

	if (!cli_parse(cli, argc, argv, extra, &err)) {
		ui_init(cli->log_format);
		if (!session_open(s, cli, &err))
			return 0;
		session_close(s);
	}
	cli_release(cli);
	return cmd_fail(&err);
}

void cmd_close(struct cli *cli, struct session *s)
{
	session_close(s);
	cli_release(cli);
}

static int cmd_help(int argc, char **argv)
{
	size_t i;

	(void)argc;
	(void)argv;
	printf("usage: sluice <command> [options]\n\ncommands:\n");
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		printf("  %-10s %s\n", commands[i].name, commands[i].summary);
	printf("\ncommon options:\n"
	       "  --project-dir DIR     the project (default: .)\n"
	       "  --profiles-dir DIR    where profiles.yml is (default: project dir, then ~/.sluice)\n"
	       "  -t, --target NAME     profile output to use\n"
	       "  --vars '{k: v}'       override vars (JSON or YAML)\n"
	       "  -s, --select SEL...   nodes to act on (name, +name, name+, tag:x, path:p, source:s.t, config.k:v)\n"
	       "  --exclude SEL...      nodes to leave out\n"
	       "  --threads N           parallel workers (default: the profile's threads)\n"
	       "  --full-refresh        rebuild incremental models from scratch\n"
	       "  --force               rebuild even what is up to date\n"
	       "  --wait-lock SECONDS   wait for another run holding the state lock\n"
	       "  --log-format text|json\n"
	       "  --version\n"
	       "\nexit codes: 0 ok, 1 a node failed, 2 usage or project error, 3 connection error,\n"
	       "130/143 interrupted. Docs: docs/ in the source tree.\n");
	return ui_flush() < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
	size_t i;
	int code;

	/* A closed pipe is reported as a write error, not a silent death mid-run. */
	signal(SIGPIPE, SIG_IGN);
	ui_init(NULL);
	if (argc < 2) {
		cmd_help(0, NULL);
		return 2;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		printf("sluice %s\n", SLUICE_VERSION);
		return ui_flush() < 0 ? 1 : 0;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
		return cmd_help(0, NULL);
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name)) {
			code = commands[i].fn(argc - 1, argv + 1);
			connectors_shutdown();
			return code;
		}
	fprintf(stderr, "sluice: error: unknown command '%s' (see sluice help)\n", argv[1]);
	return 2;
}
