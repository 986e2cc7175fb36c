/*
 * main.c: command dispatch (a table, as in git.c) and process-wide setup.
 * Only main and cmd-*.c print errors or choose exit codes; what the
 * commands share is in cmd.c, not here.
 */
#include <pthread.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include "../connectors/connector.h"
#include "cmd.h"
#include "ui.h"
#include "version.h"

struct cmd_entry {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
	int runs_nodes;   /* stops on SIGINT/SIGTERM through the executor (below) */
};

static int cmd_help(int argc, char **argv);

static const struct cmd_entry commands[] = {
	{ "run", cmd_run, "build the selected models (only what needs building)", 1 },
	{ "test", cmd_test, "run the data tests of the selected models (--no-combine: one query per test)", 1 },
	{ "seed", cmd_seed, "load the CSV files under seed-paths into tables (dbt's seeds)", 1 },
	{ "snapshot", cmd_snapshot, "run the snapshots under snapshot-paths (SCD type 2)", 1 },
	{ "build", cmd_build, "run and test the selected models in DAG order; a failing test stops what reads its model", 1 },
	{ "plan", cmd_plan, "show what run would build or reuse, and why (changes nothing)", 0 },
	{ "compile", cmd_compile, "render models to target/compiled and their statements to target/run", 0 },
	{ "ls", cmd_ls, "list the selected nodes", 0 },
	{ "blame", cmd_blame, "which run built a relation as it is now: who, when, from what (--format json)", 0 },
	{ "cache", cmd_cache, "ls: what each environment built (fingerprint, builder, age, size); prune --older-than 30d", 0 },
	{ "graph", cmd_graph, "print the DAG of the selected nodes (--format dot|mermaid|json)", 0 },
	{ "show", cmd_show, "print a model's rows (--limit N, --format table|csv|json)", 0 },
	{ "report", cmd_report, "rebuild target/report.html from target/ (--open: show it)", 0 },
	{ "deps", cmd_deps, "install the packages of packages.yml into dbt_packages/ (--upgrade: ignore package-lock.yml)", 0 },
	{ "debug", cmd_debug, "check the project, the profile and every connection", 0 },
	{ "sources", cmd_sources, "instrument|uninstrument|versions: source change detection", 0 },
	{ "schedule", cmd_schedule, "run the schedules of sluice.yml (--once NAME, --list, --print-systemd, --print-crontab)", 0 },
	{ "embedded", cmd_embedded, "start|stop|remove|status|env of the embedded PostgreSQL", 0 },
	{ "help", cmd_help, "show this help", 0 },
};

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
	       "  -s, --select SEL...   nodes to act on (name, +name, name+, tag:x, path:p, source:s.t, config.k:v,\n"
	       "                        package:p)\n"
	       "  --exclude SEL...      nodes to leave out\n"
	       "  --threads N           parallel workers (default: the profile's threads)\n"
	       "  --full-refresh        rebuild incremental models from scratch\n"
	       "  --force               rebuild even what is up to date\n"
	       "  --wait-lock SECONDS   wait for another run holding the state lock\n"
	       "  --reuse-from TARGET   run, build, plan: reuse what these targets built (repeat, or a,b)\n"
	       "  --report-to DEST      run, build, test: publish the report to s3://bucket/prefix or a directory\n"
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
	/*
	 * SIGUSR1 drains a run (executor.h); outside a run it must not kill
	 * the process. An ignored signal still reaches a thread that blocks
	 * and waits for it, as the executor's signal thread does.
	 */
	signal(SIGUSR1, SIG_IGN);
	/*
	 * Two malloc arenas, not one for each thread: glibc gives each worker
	 * its own, which keeps what the worker freed for that worker alone (at
	 * 10,000 models, 6 MB more at the peak of a no-op run). Workers mostly
	 * wait on the database. The second arena is for the threads that do
	 * allocate while the main thread does (the state snapshot's second
	 * reader): with one, they took turns at its lock and were no faster
	 * than one thread.
	 */
	mallopt(M_ARENA_MAX, 2);
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
			sigset_t stop, pending;

			/*
			 * A command that runs nodes holds SIGINT and SIGTERM from
			 * its first instant: the executor's signal thread takes
			 * them and cancels cleanly, releasing the state lock, even
			 * when one came before the first node. One it never took
			 * (the command ended before running) still ends it as
			 * interrupted.
			 */
			sigemptyset(&stop);
			sigaddset(&stop, SIGINT);
			sigaddset(&stop, SIGTERM);
			if (commands[i].runs_nodes)
				pthread_sigmask(SIG_BLOCK, &stop, NULL);
			code = commands[i].fn(argc - 1, argv + 1);
			connectors_shutdown();
			if (commands[i].runs_nodes && !sigpending(&pending)) {
				if (sigismember(&pending, SIGTERM))
					code = 128 + SIGTERM;
				else if (sigismember(&pending, SIGINT))
					code = 128 + SIGINT;
			}
			return code;
		}
	fprintf(stderr, "sluice: error: unknown command '%s' (see sluice help)\n", argv[1]);
	return 2;
}
