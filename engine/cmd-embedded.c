/*
 * cmd-embedded.c: `sluice embedded start|stop|remove|status|env`: the
 * embedded PostgreSQL by hand. A server started here keeps running across commands
 * until `stop`; one started on demand by a command stops with it.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../connectors/pg-embedded.h"
#include "cmd.h"
#include "session.h"

int cmd_embedded(int argc, char **argv)
{
	struct cli cli = { 0 };
	struct sluice_err err = SLUICE_ERR_INIT;
	struct pg_embedded e;
	char dir[PATH_MAX];
	const char *action;
	int rc, started = 0, code = 0;

	if ((rc = cli_parse(&cli, argc, argv, NULL, &err))) {
		cli_release(&cli);
		return cmd_fail(&err);
	}
	action = cli.nargs ? cli.args[0] : "status";
	if (!realpath(cli.project_dir ? cli.project_dir : ".", dir)) {
		err_set(&err, SLUICE_EUSAGE, "%s: no such directory", cli.project_dir ? cli.project_dir : ".");
		cli_release(&cli);
		return cmd_fail(&err);
	}
	if (!strcmp(action, "start")) {
		if ((rc = pg_embedded_ensure(dir, &e, &started, &err)))
			code = cmd_fail(&err);
		else
			printf("embedded PostgreSQL %s on port %d (socket %s)\n", started ? "started" : "already running",
			       e.port, e.sockdir);
	} else if (!strcmp(action, "stop")) {
		if ((rc = pg_embedded_stop(dir, &err)))
			code = cmd_fail(&err);
		else
			printf("embedded PostgreSQL stopped\n");
	} else if (!strcmp(action, "remove")) {
		if ((rc = pg_embedded_remove(dir, &err)))
			code = cmd_fail(&err);
		else
			printf("embedded PostgreSQL removed\n");
	} else if (!strcmp(action, "status") || !strcmp(action, "env")) {
		int st = pg_embedded_status(dir, &e);
		if (!strcmp(action, "env")) {
			if (st != PG_EMBEDDED_RUNNING) {
				err_set(&err, SLUICE_ECONN, "the embedded PostgreSQL is not running (sluice embedded start)");
				code = cmd_fail(&err);
			} else {
				printf("export PGHOST='%s' PGPORT='%d' PGUSER='sluice' PGDATABASE='sluice'\n", e.sockdir, e.port);
			}
		} else if (st == PG_EMBEDDED_RUNNING) {
			printf("running: pid %ld, port %d, socket %s, data %s\n", e.pid, e.port, e.sockdir, e.datadir);
		} else {
			printf("%s\n", st == PG_EMBEDDED_STOPPED ? "stopped" : "not initialised");
			code = 1;   /* not running: scripts can test for it */
		}
	} else {
		err_set(&err, SLUICE_EUSAGE, "embedded takes start, stop, remove, status or env, not '%s'", action);
		code = cmd_fail(&err);
	}
	cli_release(&cli);
	return code;
}
