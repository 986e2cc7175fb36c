/*
 * cmd-debug.c: `sluice debug`: where the project and profile came from,
 * and for each connection of the target: driver, dialect, server version
 * and latency. Secrets are never printed.
 */
#include <stdio.h>
#include <string.h>
#include "conn.h"
#include "cmd.h"
#include "ui.h"
#include "version.h"

/* models, seeds and snapshots are in one list, told apart by resource */
static void debug_counts(const struct project *p)
{
	size_t i, models = 0, seeds = 0, snapshots = 0;

	for (i = 0; i < p->nmodels; i++) {
		const char *r = p->models[i]->resource;
		*(!strcmp(r, "seed") ? &seeds : !strcmp(r, "snapshot") ? &snapshots : &models) += 1;
	}
	printf("models:   %zu, sources: %zu", models, p->nsources);
	if (seeds || snapshots)
		printf(", seeds: %zu, snapshots: %zu", seeds, snapshots);
	printf("\n");
	if (!p->npackages)
		return;
	printf("packages:");
	for (i = 0; i < p->npackages; i++)
		printf("%s %s%s%s", i ? "," : "", p->packages[i].name, p->packages[i].version ? " " : "",
		       p->packages[i].version ? p->packages[i].version : "");
	printf(" (in %s/)\n", p->packages_install_path);
}

int cmd_debug(int argc, char **argv)
{
	struct cli cli = { 0 };
	struct session s;
	size_t i;
	int rc, failed = 0;

	if ((rc = cmd_open(argc, argv, NULL, &cli, &s)))
		return rc;
	printf("sluice %s\n", SLUICE_VERSION);
	printf("project:  %s (%s/%s)\n", s.project.name, s.project.dir, s.project.file);
	printf("profile:  %s, target %s, from %s\n", s.project.target.profile, s.project.target.name,
	       s.project.target.profiles_path ? s.project.target.profiles_path : "(embedded default)");
	debug_counts(&s.project);
	printf("user:     %s\n", s.user);
	for (i = 0; i < s.project.target.nconns; i++) {
		const struct conn_cfg *c = &s.project.target.conns[i];
		const struct dialect *d = NULL;
		struct sluice_conn *conn = NULL;
		struct sluice_err cerr = SLUICE_ERR_INIT;
		struct buf ver = BUF_INIT, drv = BUF_INIT;
		double t0 = now_seconds(), ms;

		rc = conn_open(&s, c->name, &conn, &d, &cerr);
		if (!rc && conn->drv->exec)
			rc = conn->drv->exec(conn, "SELECT 1", NULL, &cerr);
		ms = (now_seconds() - t0) * 1000;
		if (!rc && conn->drv->server_version)
			conn->drv->server_version(conn, &ver, &cerr);
		if (!rc && conn->drv->driver_version)
			conn->drv->driver_version(conn, &drv, &cerr);
		if (rc) {
			printf("connection %s: FAILED: %s\n", c->name, cerr.msg);
			failed = 1;
		} else {
			printf("connection %s: OK driver=%s%s%s%s dialect=%s server=\"%s\" latency=%.1fms\n",
			       c->name, conn->drv->name, drv.len ? " (" : "", drv.len ? drv.s : "",
			       drv.len ? ")" : "", d ? d->name : "?", ver.len ? ver.s : "unknown", ms);
		}
		conn_close(conn);
		buf_release(&ver);
		buf_release(&drv);
	}
	cmd_close(&cli, &s);
	if (ui_flush() < 0)
		return 1;
	return failed ? 3 : 0;
}
