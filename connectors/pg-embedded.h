/*
 * pg-embedded.h: sluice's own PostgreSQL server, used when no profile is
 * found or an output says {type: postgres, embedded: true}.
 *
 * The cluster lives in <project>/.sluice/pg (initdb on first use). The server
 * listens on a Unix socket and a free port on 127.0.0.1. As root it runs as
 * an unprivileged user ("postgres" if it exists, else "nobody"). The
 * superuser is "sluice", trusted on the socket only.
 */
#ifndef SLUICE_PG_EMBEDDED_H
#define SLUICE_PG_EMBEDDED_H

#include "../engine/util/err.h"

struct pg_embedded {
	char datadir[4096];   /* absolute path of the cluster */
	char sockdir[4096];   /* directory holding .s.PGSQL.<port> */
	int port;
	long pid;             /* postmaster pid, 0 when stopped */
};

enum { PG_EMBEDDED_RUNNING = 0, PG_EMBEDDED_STOPPED = 1, PG_EMBEDDED_ABSENT = 2 };

/*
 * Initialise (if needed) and start (if not running) the server of project_dir.
 * *started is set to 1 when this call started it (so the caller stops it).
 * Blocks until the server accepts connections. Safe to call from several
 * processes at once (a lock file serialises start-up).
 */
int pg_embedded_ensure(const char *project_dir, struct pg_embedded *e, int *started,
		       struct sluice_err *err);
/* Stop the server (fast shutdown) if it runs; 0 when stopped or absent. */
int pg_embedded_stop(const char *project_dir, struct sluice_err *err);
/*
 * Stop it and delete its cluster: the one in the project, or the one in
 * /var/tmp that the project links to (which deleting the project leaves
 * behind). 0 when there was none.
 */
int pg_embedded_remove(const char *project_dir, struct sluice_err *err);
/* PG_EMBEDDED_RUNNING (e filled), _STOPPED or _ABSENT. */
int pg_embedded_status(const char *project_dir, struct pg_embedded *e);
/*
 * The same, but from the pid file alone: the server is not asked, so
 * RUNNING only says where it should answer. A connection that then
 * fails goes through pg_embedded_ensure.
 */
int pg_embedded_address(const char *project_dir, struct pg_embedded *e);
/* Create database `name` if it does not exist (connects as sluice). */
int pg_embedded_create_db(const struct pg_embedded *e, const char *name, struct sluice_err *err);

#endif
