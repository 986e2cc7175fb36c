/*
 * load-csv.c: a benchmark helper for tests/bench/odbc.sh, not a test. It
 * loads one CSV file into a fresh table through a connector's own path:
 * COPY FROM STDIN (copy_in) where the connector has it, else batched
 * parameter-array INSERTs (load_csv), and prints "rows seconds". The
 * connection comes from the environment: BENCH_TYPE (postgres or odbc),
 * BENCH_DRIVER or BENCH_CONNECTION_STRING (odbc), PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "../../connectors/connector.h"
#include "../../engine/util/arena.h"
#include "../../engine/util/clock.h"

static ssize_t file_read(void *ud, void *buf, size_t cap, struct sluice_err *err)
{
	size_t n = fread(buf, 1, cap, ud);

	if (!n && ferror((FILE *)ud))
		return err_set(err, SLUICE_EIO, "read error");
	return (ssize_t)n;
}

static void set(struct arena *a, struct val *d, const char *key, const char *env)
{
	const char *v = getenv(env);

	if (v && *v)
		val_dict_set(a, d, key, val_str(arena_strdup(a, v)));
}

int main(int argc, char **argv)
{
	struct arena a;
	struct val s;
	struct sluice_conn_params p = { "bench", NULL, NULL, "sluice/bench" };
	struct sluice_err err = SLUICE_ERR_INIT;
	const struct sluice_connector *drv;
	struct sluice_conn *c = NULL;
	const char *dialect, *table, *cols;
	long long rows = -1;
	struct buf sql = BUF_INIT;
	double t0;
	FILE *f;
	int rc;

	if (argc != 4) {
		fprintf(stderr, "usage: load-csv TABLE \"COLUMN DEFINITIONS\" FILE.csv\n");
		return 2;
	}
	table = argv[1];
	cols = argv[2];
	if (!(f = fopen(argv[3], "rb"))) {
		perror(argv[3]);
		return 1;
	}
	arena_init(&a);
	s = val_dict_new();
	set(&a, &s, "type", "BENCH_TYPE");
	set(&a, &s, "driver", "BENCH_DRIVER");
	set(&a, &s, "connection_string", "BENCH_CONNECTION_STRING");
	set(&a, &s, "host", "PGHOST");
	set(&a, &s, "port", "PGPORT");
	set(&a, &s, "user", "PGUSER");
	set(&a, &s, "password", "PGPASSWORD");
	set(&a, &s, "dbname", "PGDATABASE");
	p.settings = &s;
	if ((rc = connector_resolve(&s, &drv, &dialect, &err)) || (rc = drv->connect(&p, &c, &err)))
		goto out;
	buf_printf(&sql, "DROP TABLE IF EXISTS %s; CREATE TABLE %s (%s)", table, table, cols);
	if ((rc = drv->exec(c, sql.s, NULL, &err)))
		goto out;
	buf_reset(&sql);
	/* In one transaction, as a build step would run it. */
	t0 = clock_monotonic();
	if ((rc = drv->exec(c, "BEGIN", NULL, &err)))
		goto out;
	if (drv->copy_in) {
		buf_printf(&sql, "COPY %s FROM STDIN WITH (FORMAT csv)", table);
		rc = drv->copy_in(c, sql.s, file_read, f, &rows, &err);
	} else if (drv->load_csv) {
		size_t ncols = 1;
		const char *q;

		for (q = cols; *q; q++)
			ncols += *q == ',';
		rc = drv->load_csv(c, table, ncols, file_read, f, &rows, &err);
	} else {
		rc = err_set(&err, SLUICE_ENOTSUP, "%s can neither COPY nor load CSV", drv->name);
	}
	if (!rc)
		rc = drv->exec(c, "COMMIT", NULL, &err);
	if (!rc)
		printf("%lld %.3f\n", rows, clock_monotonic() - t0);
out:
	if (rc)
		fprintf(stderr, "load-csv: %s\n", err.msg);
	if (c)
		drv->close(c);
	connectors_shutdown();
	buf_release(&sql);
	arena_release(&a);
	fclose(f);
	return rc ? 1 : 0;
}
