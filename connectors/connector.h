/*
 * connector.h: the one interface between the engine and a database driver.
 *
 * A driver is a `const struct sluice_connector` filled with designated
 * initializers. A NULL slot means "not supported": the engine asks the
 * vtable, never the driver's name. Driver connections embed struct
 * sluice_conn first: struct pg_conn { struct sluice_conn base; PGconn *pg; }.
 *
 * Threading: a connection is used by one thread at a time, except cancel(),
 * which may be called from any thread while another is inside exec/query.
 * Every call may block on the network.
 */
#ifndef SLUICE_CONNECTOR_H
#define SLUICE_CONNECTOR_H

#include <stddef.h>
#include <sys/types.h>
#include "../engine/util/buf.h"
#include "../engine/util/err.h"
#include "../engine/value.h"

struct arena;
struct sluice_connector;

struct sluice_conn {
	const struct sluice_connector *drv;
	const char *name;            /* connection name in the profile: "default", "lake" (borrowed) */
};

/* One result row. values[i] == NULL is SQL NULL. All borrowed for the call. */
struct sluice_row {
	size_t ncols;
	const char *const *names;
	const char *const *types;    /* database type names, e.g. "integer", "text" */
	const char *const *values;   /* text form */
	const size_t *lens;
};

/* Return 0 to continue, non-zero to stop (query() then returns that code). */
typedef int (*sluice_row_fn)(void *ud, const struct sluice_row *row);
/* Sink for copy_out: return 0, or a negative code with err set. */
typedef int (*sluice_write_fn)(void *ud, const void *data, size_t len, struct sluice_err *err);
/* Source for copy_in: bytes read, 0 at end, or a negative code with err set. */
typedef ssize_t (*sluice_read_fn)(void *ud, void *buf, size_t cap, struct sluice_err *err);

struct sluice_conn_params {
	const char *name;              /* connection name, for messages */
	const struct val *settings;    /* profile output or connections entry, env_var rendered */
	const char *project_dir;       /* absolute; embedded servers live under it */
	const char *application_name;  /* "sluice/<user>" */
};

struct sluice_connector {
	const char *name;              /* "postgres", "odbc": for messages and `sluice debug` */

	/* Open a connection. Errors: SLUICE_ECONN, message without secrets. */
	int (*connect)(const struct sluice_conn_params *p, struct sluice_conn **out,
		       struct sluice_err *err);
	/* Close and free; accepts NULL. */
	void (*close)(struct sluice_conn *c);

	/*
	 * Run one or more statements that return no rows. *rows (if rows is
	 * not NULL) gets the affected/selected count of the last statement, or
	 * -1 when the server reports none. Errors: SLUICE_EDB with sqlstate,
	 * SLUICE_ECANCEL when cancel() interrupted it, SLUICE_ECONN when the
	 * connection was lost.
	 */
	int (*exec)(struct sluice_conn *c, const char *sql, long long *rows, struct sluice_err *err);

	/* Run a query and stream its rows to fn (bounded memory). */
	int (*query)(struct sluice_conn *c, const char *sql, sluice_row_fn fn, void *ud,
		     struct sluice_err *err);

	/* Ask the server to cancel what c is running. Thread-safe. */
	int (*cancel)(struct sluice_conn *c);

	/* Optional: COPY (sql) TO STDOUT streamed to fn; *rows from the server's count. */
	int (*copy_out)(struct sluice_conn *c, const char *sql, sluice_write_fn fn, void *ud,
			long long *rows, struct sluice_err *err);
	/* Optional: COPY ... FROM STDIN fed by fn; *rows from the server's count. */
	int (*copy_in)(struct sluice_conn *c, const char *sql, sluice_read_fn fn, void *ud,
		       long long *rows, struct sluice_err *err);

	/*
	 * Optional, for drivers without copy_in: insert the CSV rows fn yields
	 * (RFC 4180, no header; an unquoted empty field is NULL, a quoted one
	 * the empty string, as COPY ... CSV reads them) into rel, whose first
	 * ncols columns take them in order, with batched parameter-array
	 * INSERTs, in bounded memory. *rows: rows inserted. Unlike a COPY it
	 * is several statements: call it inside BEGIN ... COMMIT for all or
	 * nothing. Errors name the CSV row(s); SLUICE_ECANCEL after cancel().
	 */
	int (*load_csv)(struct sluice_conn *c, const char *rel, size_t ncols, sluice_read_fn fn, void *ud,
			long long *rows, struct sluice_err *err);

	/* Optional: one line describing the server, e.g. "PostgreSQL 15.18". */
	int (*server_version)(struct sluice_conn *c, struct buf *out, struct sluice_err *err);
	/* Optional: the client-side driver behind c, when the connector is a
	 * gateway to several, e.g. "psqlodbcw.so 13.02.0000" under odbc. */
	int (*driver_version)(struct sluice_conn *c, struct buf *out, struct sluice_err *err);

	/*
	 * Optional: environment a child process (shell model, psql) needs to
	 * reach the same database, as "NAME=value" lines appended to out.
	 */
	int (*child_env)(struct sluice_conn *c, struct buf *out, struct sluice_err *err);

	/*
	 * Optional: the values in settings (as connect() gets them) that must
	 * never be shown, such as passwords, for the engine to scrub ("***")
	 * from output it does not control: a shell model's log. Each value in
	 * every spelling a child could print it in (an ODBC password as the
	 * connection string writes it and unquoted), and a value that holds
	 * others (a whole connection string) before them, so it is masked
	 * whole. Returns a NULL-terminated array allocated in a, never NULL;
	 * the strings are non-empty, borrowed from settings or allocated in a.
	 * Reads settings only: no I/O, cannot fail, and any thread may call
	 * it (with an arena of its own).
	 * NULL slot: the engine takes settings' `password` as the only secret.
	 */
	const char **(*secrets)(const struct val *settings, struct arena *a);

	/* Optional: called once at process end (stops servers this process started). */
	void (*shutdown)(void);
};

/*
 * Pick the driver for a profile output: by `type:` (postgres, redshift,
 * odbc) and, for redshift, by whether `driver:` is set. Also names the SQL
 * dialect: settings `dialect:` if present, else the type's default.
 * Unknown type: SLUICE_EUSAGE listing the known types; settings that
 * cannot work together (redshift: iam: without driver:, or with
 * password:): SLUICE_EUSAGE naming the keys.
 */
int connector_resolve(const struct val *settings, const struct sluice_connector **drv,
		      const char **dialect, struct sluice_err *err);

/*
 * The port a type's server listens on by default (redshift: "5439"), for
 * drivers to use when settings name a host but no port; NULL when the
 * driver's own default is right.
 */
const char *connector_default_port(const struct val *settings);

/*
 * Close and free a connection from its driver's connect(); accepts NULL,
 * so cleanup paths need no check. May block while the driver says goodbye.
 */
void conn_close(struct sluice_conn *c);

/* Call every driver's shutdown(). */
void connectors_shutdown(void);

#endif
