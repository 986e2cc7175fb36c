/*
 * test_postgres.c: the libpq driver (connectors/postgres.c), the connector
 * registry and the embedded server (connectors/pg-embedded.c), against a
 * real PostgreSQL. It runs only under the test harness, which starts a
 * server with tests/harness/pg.sh and exports SLUICE_TEST_PG*; the embedded
 * tests run initdb themselves in fresh temporary project directories. It is
 * not a test of the engine's SQL (dialects) or of the CLI.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <libpq-fe.h>

#include "../../connectors/connector.h"
#include "../../connectors/pg-embedded.h"
#include "../../connectors/postgres.h"
#include "../../engine/util/clock.h"
#include "../../engine/util/fs.h"
#include "../../engine/util/xalloc.h"

static struct arena arena;
static const char *pg_host, *pg_port, *pg_user, *pg_password, *pg_sockdir;

/* A settings dict from key, value string pairs ending with NULL. */
static struct val settings(const char *key, ...)
{
	struct val d = val_dict_new();
	va_list ap;

	va_start(ap, key);
	for (; key; key = va_arg(ap, const char *)) {
		const char *v = va_arg(ap, const char *);
		val_dict_set(&arena, &d, key, val_str(arena_strdup(&arena, v)));
	}
	va_end(ap);
	return d;
}

static struct val harness_settings(void)
{
	return settings("type", "postgres", "host", pg_host, "port", pg_port, "user", pg_user,
			"password", pg_password, "dbname", "postgres", NULL);
}

static int open_conn(const struct val *s, const char *project, struct sluice_conn **c,
		     struct sluice_err *err)
{
	struct sluice_conn_params p = { "test", s, project, "sluice/test" };

	return pg_connector.connect(&p, c, err);
}

static struct sluice_conn *connect_harness(void)
{
	struct val s = harness_settings();
	struct sluice_err err = SLUICE_ERR_INIT;
	struct sluice_conn *c = NULL;

	if (open_conn(&s, NULL, &c, &err))
		fail_msg("connect: %s", err.msg);
	return c;
}

static void exec_ok(struct sluice_conn *c, const char *sql)
{
	struct sluice_err err = SLUICE_ERR_INIT;

	if (c->drv->exec(c, sql, NULL, &err))
		fail_msg("%s: %s", sql, err.msg);
}

/* First column of the first row, as text ("" for none). */
struct first_value {
	char text[256];
	int rows;
};

static int keep_first(void *ud, const struct sluice_row *row)
{
	struct first_value *fv = ud;

	if (!fv->rows++ && row->values[0])
		snprintf(fv->text, sizeof(fv->text), "%s", row->values[0]);
	return 0;
}

static const char *scalar(struct sluice_conn *c, const char *sql, struct first_value *fv)
{
	struct sluice_err err = SLUICE_ERR_INIT;

	memset(fv, 0, sizeof(*fv));
	if (c->drv->query(c, sql, keep_first, fv, &err))
		fail_msg("%s: %s", sql, err.msg);
	return fv->text;
}

static int unused_port(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int s = socket(AF_INET, SOCK_STREAM, 0), port;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&sa, &len), 0);
	port = ntohs(sa.sin_port);
	close(s);
	return port;
}

/* ---- connecting ---- */

static void test_connect_ok(void **state)
{
	struct sluice_conn *c = connect_harness();
	struct first_value fv;
	struct buf v = BUF_INIT;
	struct sluice_err err = SLUICE_ERR_INIT;
	(void)state;

	assert_string_equal(c->name, "test");
	assert_ptr_equal(c->drv, &pg_connector);
	assert_string_equal(scalar(c, "select current_user", &fv), "sluice_test");
	assert_string_equal(scalar(c, "select current_setting('application_name')", &fv),
			    "sluice/test");
	assert_string_equal(scalar(c, "select current_setting('client_encoding')", &fv), "UTF8");
	assert_int_equal(c->drv->server_version(c, &v, &err), 0);
	/* "PostgreSQL 15.18": the name, then a version number and nothing else. */
	assert_true(!strncmp(v.s, "PostgreSQL ", 11) && v.s[11] >= '1' && v.s[11] <= '9');
	assert_null(strchr(v.s + 11, ' '));
	buf_release(&v);
	pg_connector.close(c);
	pg_connector.close(NULL);
}

static void test_connect_numeric_port_and_socket(void **state)
{
	struct val s = settings("type", "postgres", "host", pg_sockdir, "user", "sluice",
				"dbname", "postgres", NULL);
	struct sluice_err err = SLUICE_ERR_INIT;
	struct sluice_conn *c = NULL;
	struct first_value fv;
	(void)state;

	/* YAML `port: 5432` arrives as a number, not a string. */
	val_dict_set(&arena, &s, "port", val_num(atof(pg_port)));
	assert_int_equal(open_conn(&s, NULL, &c, &err), 0);
	assert_string_equal(scalar(c, "select current_user", &fv), "sluice");
	pg_connector.close(c);
}

static void test_wrong_password(void **state)
{
	const char *secret = "not-the-secret-7f3a9";
	struct val s = settings("type", "postgres", "host", pg_host, "port", pg_port, "user",
				pg_user, "password", secret, "dbname", "postgres", NULL);
	struct sluice_err err = SLUICE_ERR_INIT;
	struct sluice_conn *c = NULL;
	(void)state;

	assert_int_equal(open_conn(&s, NULL, &c, &err), SLUICE_ECONN);
	assert_null(c);
	assert_int_equal(err.code, SLUICE_ECONN);
	assert_true(!strncmp(err.msg, "connection 'test' (postgres): ", 30));
	assert_non_null(strstr(err.msg, "password authentication failed"));
	assert_null(strstr(err.msg, secret));
	assert_null(strchr(err.msg, '\n'));
}

static void test_password_echoed_is_scrubbed(void **state)
{
	/* A password pasted into the host field comes back in libpq's
	 * "could not translate host name" message; it must not reach us. */
	const char *secret = "hunter2-pasted-in-host";
	struct val s = settings("type", "postgres", "host", "hunter2-pasted-in-host.invalid",
				"port", pg_port, "user", pg_user, "password", secret,
				"connect_timeout", "3", NULL);
	struct sluice_err err = SLUICE_ERR_INIT;
	struct sluice_conn *c = NULL;
	(void)state;

	assert_int_equal(open_conn(&s, NULL, &c, &err), SLUICE_ECONN);
	assert_null(strstr(err.msg, secret));
	assert_non_null(strstr(err.msg, "***"));
}

static void test_refused_port(void **state)
{
	char port[16];
	struct val s;
	struct sluice_err err = SLUICE_ERR_INIT;
	struct sluice_conn *c = NULL;
	(void)state;

	snprintf(port, sizeof(port), "%d", unused_port());
	s = settings("type", "postgres", "host", "127.0.0.1", "port", port, "user", pg_user,
		     "password", pg_password, NULL);
	assert_int_equal(open_conn(&s, NULL, &c, &err), SLUICE_ECONN);
	assert_null(c);
	assert_true(!strncmp(err.msg, "connection 'test' (postgres): ", 30));
	assert_non_null(strstr(err.msg, "refused"));
	assert_non_null(strstr(err.msg, port));
}

/* ---- exec ---- */

static void test_exec_rows(void **state)
{
	struct sluice_conn *c = connect_harness();
	struct sluice_err err = SLUICE_ERR_INIT;
	long long rows = 42;
	(void)state;

	assert_int_equal(c->drv->exec(c, "create temp table t (id int primary key, v text)", &rows,
				      &err), 0);
	assert_int_equal(rows, -1);
	assert_int_equal(c->drv->exec(c, "insert into t select i, 'v' || i from generate_series(1, 25) i",
				      &rows, &err), 0);
	assert_int_equal(rows, 25);
	/* Several statements: the count is the last one's. */
	assert_int_equal(c->drv->exec(c, "update t set v = 'x' where id <= 10;\n"
					 "delete from t where id > 22;", &rows, &err), 0);
	assert_int_equal(rows, 3);
	assert_int_equal(c->drv->exec(c, "", &rows, &err), 0);
	assert_int_equal(rows, -1);
	/* Notices (drop ... if exists) are swallowed, not an error. */
	assert_int_equal(c->drv->exec(c, "drop table if exists no_such_table_here", NULL, &err), 0);
	pg_connector.close(c);
}

static void test_exec_errors(void **state)
{
	struct sluice_conn *c = connect_harness();
	struct sluice_err err = SLUICE_ERR_INIT;
	long long rows = 5;
	(void)state;

	assert_int_equal(c->drv->exec(c, "select 1;\n\nselect *\n  from no_such_table", &rows, &err),
			 SLUICE_EDB);
	assert_string_equal(err.sqlstate, "42P01");
	assert_string_equal(err.msg, "relation \"no_such_table\" does not exist at line 4");
	assert_int_equal(rows, -1);

	/* The server counts characters, not bytes: 20 two-byte characters on
	 * line 1 must not pull the error up a line. */
	assert_int_equal(c->drv->exec(c, "select 'éééééééééééééééééééé',\n"
					 "  1,\n"
					 "  nope", NULL, &err), SLUICE_EDB);
	assert_string_equal(err.sqlstate, "42703");
	assert_string_equal(err.msg, "column \"nope\" does not exist at line 3");

	exec_ok(c, "create temp table u (id int primary key)");
	exec_ok(c, "insert into u values (1)");
	assert_int_equal(c->drv->exec(c, "insert into u values (1)", NULL, &err), SLUICE_EDB);
	assert_string_equal(err.sqlstate, "23505");
	assert_non_null(strstr(err.msg, " (DETAIL: Key (id)=(1) already exists.)"));

	assert_int_equal(c->drv->exec(c, "select no_such_fn(1)", NULL, &err), SLUICE_EDB);
	assert_string_equal(err.sqlstate, "42883");
	assert_non_null(strstr(err.msg, " (HINT: No function matches"));
	assert_non_null(strstr(err.msg, "at line 1"));

	/* A failed statement leaves the connection usable. */
	assert_int_equal(c->drv->exec(c, "select 1", &rows, &err), 0);
	assert_int_equal(rows, 1);

	/* COPY belongs to copy_in/copy_out; exec says so and stays in sync. */
	assert_int_equal(c->drv->exec(c, "copy u to stdout", NULL, &err), SLUICE_EUSAGE);
	assert_int_equal(c->drv->exec(c, "copy u from stdin", NULL, &err), SLUICE_EUSAGE);
	assert_int_equal(c->drv->exec(c, "select 1", &rows, &err), 0);
	pg_connector.close(c);
}

static void test_connection_lost(void **state)
{
	struct sluice_conn *c = connect_harness(), *killer = connect_harness();
	struct sluice_err err = SLUICE_ERR_INIT;
	struct first_value fv;
	char sql[128];
	(void)state;

	snprintf(sql, sizeof(sql), "select pg_terminate_backend(%s)",
		 scalar(c, "select pg_backend_pid()", &fv));
	exec_ok(killer, sql);
	assert_int_equal(c->drv->exec(c, "select 1", NULL, &err), SLUICE_ECONN);
	assert_non_null(strstr(err.msg, "connection 'test' (postgres) lost"));
	pg_connector.close(c);
	pg_connector.close(killer);
}

/* ---- query ---- */

struct collect {
	int rows, stop_after, stop_code, nulls;
	size_t ncols;
	char names[4][32], types[4][64];
	long long sum_i;
	size_t sum_len;
	int bad;
};

static int collect_row(void *ud, const struct sluice_row *row)
{
	struct collect *cl = ud;
	size_t i;

	if (!cl->rows) {
		cl->ncols = row->ncols;
		for (i = 0; i < row->ncols && i < 4; i++) {
			snprintf(cl->names[i], sizeof(cl->names[i]), "%s", row->names[i]);
			snprintf(cl->types[i], sizeof(cl->types[i]), "%s", row->types[i]);
		}
	}
	cl->rows++;
	if (row->ncols >= 3) {
		long long id = atoll(row->values[0]);
		int even = id % 2 == 0;
		cl->sum_i += id;
		if (!row->values[2])
			cl->nulls++;
		/* NULL exactly where the SQL says, and lens match the text. */
		if (even != !row->values[2] || strlen(row->values[1]) != row->lens[1])
			cl->bad++;
		cl->sum_len += row->lens[1];
	}
	if (cl->stop_after && cl->rows == cl->stop_after)
		return cl->stop_code;
	return 0;
}

static void test_query_streams_rows(void **state)
{
	struct sluice_conn *c = connect_harness();
	struct sluice_err err = SLUICE_ERR_INIT;
	struct collect cl;
	(void)state;

	memset(&cl, 0, sizeof(cl));
	assert_int_equal(c->drv->query(c,
		"select i, 'row ' || i as label,\n"
		"       case when i % 2 = 1 then i * 1.5 end as val,\n"
		"       date '2024-01-01' + i as day\n"
		"from generate_series(1, 5000) i", collect_row, &cl, &err), 0);
	assert_int_equal(cl.rows, 5000);
	assert_int_equal(cl.ncols, 4);
	assert_string_equal(cl.names[0], "i");
	assert_string_equal(cl.names[1], "label");
	assert_string_equal(cl.names[2], "val");
	assert_string_equal(cl.names[3], "day");
	assert_string_equal(cl.types[0], "integer");
	assert_string_equal(cl.types[1], "text");
	assert_string_equal(cl.types[2], "numeric");
	assert_string_equal(cl.types[3], "date");
	assert_int_equal(cl.nulls, 2500);
	assert_int_equal(cl.bad, 0);
	assert_int_equal(cl.sum_i, 5000LL * 5001 / 2);

	/* No rows: fn is never called, and that is success. */
	memset(&cl, 0, sizeof(cl));
	assert_int_equal(c->drv->query(c, "select 1 where false", collect_row, &cl, &err), 0);
	assert_int_equal(cl.rows, 0);

	assert_int_equal(c->drv->query(c, "select 1/0", collect_row, &cl, &err), SLUICE_EDB);
	assert_string_equal(err.sqlstate, "22012");
	pg_connector.close(c);
}

/* Rows as "name:type=value,...;" for exact comparisons. */
static int describe_row(void *ud, const struct sluice_row *row)
{
	struct buf *b = ud;
	size_t i;

	for (i = 0; i < row->ncols; i++)
		buf_printf(b, "%s%s:%s=%s", i ? "," : "", row->names[i], row->types[i],
			   row->values[i] ? row->values[i] : "NULL");
	buf_addc(b, ';');
	return 0;
}

static void test_query_several_statements(void **state)
{
	struct sluice_conn *c = connect_harness();
	struct sluice_err err = SLUICE_ERR_INIT;
	struct buf got = BUF_INIT;
	(void)state;

	/* Each statement's rows arrive with that statement's columns. */
	assert_int_equal(c->drv->query(c, "select 1 as a union all select 2;\n"
					  "create temp table q (x int);\n"
					  "select 'x' as b, null::bigint as c",
				       describe_row, &got, &err), 0);
	assert_string_equal(got.s, "a:integer=1;a:integer=2;b:text=x,c:bigint=NULL;");
	buf_release(&got);
	pg_connector.close(c);
}

static void test_query_type_names(void **state)
{
	struct sluice_conn *c = connect_harness(), *admin = connect_harness();
	struct sluice_err err = SLUICE_ERR_INIT;
	struct collect cl;
	(void)state;

	/* An enum is not in the driver's built-in table: its name comes from
	 * the catalog. Committed by another session, as a model would do. */
	exec_ok(admin, "drop type if exists sluice_test_mood; "
		       "create type sluice_test_mood as enum ('ok', 'sad')");
	memset(&cl, 0, sizeof(cl));
	assert_int_equal(c->drv->query(c,
		"select 'ok'::sluice_test_mood as m, 'x'::varchar(3) as v, "
		"now() as ts, array[1, 2] as a", collect_row, &cl, &err), 0);
	assert_int_equal(cl.rows, 1);
	assert_string_equal(cl.types[0], "sluice_test_mood");
	assert_string_equal(cl.types[1], "character varying");
	assert_string_equal(cl.types[2], "timestamp with time zone");
	assert_string_equal(cl.types[3], "integer[]");
	/* And the connection is still in step after the look-up. */
	memset(&cl, 0, sizeof(cl));
	assert_int_equal(c->drv->query(c, "select 'sad'::sluice_test_mood", collect_row, &cl, &err), 0);
	assert_string_equal(cl.types[0], "sluice_test_mood");
	exec_ok(admin, "drop type sluice_test_mood");
	pg_connector.close(c);
	pg_connector.close(admin);
}

static void test_query_stops_early(void **state)
{
	struct sluice_conn *c = connect_harness();
	struct sluice_err err = SLUICE_ERR_INIT;
	struct first_value fv;
	struct collect cl;
	double t0;
	(void)state;

	memset(&cl, 0, sizeof(cl));
	cl.stop_after = 10;
	cl.stop_code = 7;
	t0 = clock_monotonic();
	/* Fifty million rows, then an hour's sleep: a query read to its end
	 * takes an hour, one stopped after ten rows a moment. The bound is
	 * that difference, not a speed: it holds on any loaded machine.
	 * (generate_series in the select list streams; in FROM it would be
	 * materialised before the first row.) */
	assert_int_equal(c->drv->query(c, "select g, 'x', null from (select generate_series(1, 50000000) as g "
				       "union all select 0 from pg_sleep(3600)) s",
				       collect_row, &cl, &err), 7);
	assert_true(clock_monotonic() - t0 < 300.0);
	assert_int_equal(cl.rows, 10);
	/* Stopping (and its cancel) must not spill onto the next statements. */
	assert_int_equal(c->drv->exec(c, "select pg_sleep(0.3)", NULL, &err), 0);
	assert_string_equal(scalar(c, "select 'still fine'", &fv), "still fine");
	pg_connector.close(c);
}

/* ---- COPY ---- */

struct sink {
	size_t bytes, lines, chunks, fail_after;
};

static int count_sink(void *ud, const void *data, size_t len, struct sluice_err *err)
{
	struct sink *s = ud;
	const char *p = data;
	size_t i;

	s->chunks++;
	s->bytes += len;
	for (i = 0; i < len; i++)
		s->lines += p[i] == '\n';
	if (s->fail_after && s->chunks == s->fail_after)
		return err_set(err, SLUICE_EIO, "disk full (test)");
	return 0;
}

static void test_copy_out(void **state)
{
	struct sluice_conn *c = connect_harness();
	struct sluice_err err = SLUICE_ERR_INIT;
	struct first_value fv;
	struct sink s;
	long long rows = 0;
	size_t expect;
	double t0;
	(void)state;

	expect = (size_t)atoll(scalar(c, "select sum(length(i::text) + 1 + 32 + 1) "
					 "from generate_series(1, 100000) i", &fv));
	memset(&s, 0, sizeof(s));
	assert_int_equal(c->drv->copy_out(c, "copy (select i, md5(i::text) from "
					     "generate_series(1, 100000) i) to stdout",
					  count_sink, &s, &rows, &err), 0);
	assert_int_equal(rows, 100000);
	assert_int_equal(s.lines, 100000);
	assert_int_equal(s.bytes, expect);

	/* The sink fails: its error comes back and the connection recovers. */
	memset(&s, 0, sizeof(s));
	s.fail_after = 3;
	rows = 0;
	t0 = clock_monotonic();
	/* Fifty million rows: only a cancelled COPY ends within the bound. */
	assert_int_equal(c->drv->copy_out(c, "copy (select i, md5(i::text) from (select "
					     "generate_series(1, 50000000) as i) g) to stdout",
					  count_sink, &s, &rows, &err), SLUICE_EIO);
	assert_true(clock_monotonic() - t0 < 5.0);
	assert_string_equal(err.msg, "disk full (test)");
	assert_int_equal(s.chunks, 3);
	assert_int_equal(rows, -1);
	assert_string_equal(scalar(c, "select 'after'", &fv), "after");

	/* Not a COPY at all, or not first: refused, and the session is
	 * still in step afterwards (no COPY left half-open). */
	assert_int_equal(c->drv->copy_out(c, "select 1", count_sink, &s, &rows, &err), SLUICE_EUSAGE);
	assert_int_equal(c->drv->copy_out(c, "select 1; copy (select 2) to stdout", count_sink, &s,
					  &rows, &err), SLUICE_EUSAGE);
	assert_string_equal(scalar(c, "select 'in step'", &fv), "in step");
	assert_int_equal(c->drv->copy_out(c, "copy no_such_table to stdout", count_sink, &s, &rows,
					  &err), SLUICE_EDB);
	assert_string_equal(err.sqlstate, "42P01");
	pg_connector.close(c);
}

/* Serves text in awkward 7-byte reads (lines split across chunks). */
struct source {
	const char *data;
	size_t len, pos, fail_at;
};

static ssize_t text_source(void *ud, void *buf, size_t cap, struct sluice_err *err)
{
	struct source *src = ud;
	size_t n = src->len - src->pos;

	if (src->fail_at && src->pos >= src->fail_at)
		return err_set(err, SLUICE_EIO, "source.csv: read error (test)");
	if (n > 7)
		n = 7;
	if (n > cap)
		n = cap;
	memcpy(buf, src->data + src->pos, n);
	src->pos += n;
	return (ssize_t)n;
}

struct grow_sink {
	struct buf b;
};

static int buf_sink(void *ud, const void *data, size_t len, struct sluice_err *err)
{
	struct grow_sink *g = ud;
	(void)err;

	buf_add(&g->b, data, len);
	return 0;
}

static void test_copy_in_round_trip(void **state)
{
	struct sluice_conn *c = connect_harness();
	struct sluice_err err = SLUICE_ERR_INIT;
	struct buf text = BUF_INIT;
	struct grow_sink back = { BUF_INIT };
	struct source src;
	struct first_value fv;
	long long rows = 0;
	int i;
	(void)state;

	for (i = 1; i <= 1000; i++)
		buf_printf(&text, "%d\tname %d with ü\t%s\n", i, i, i % 3 ? "x" : "\\N");
	exec_ok(c, "create temp table ci (id int, name text, note text)");
	memset(&src, 0, sizeof(src));
	src.data = text.s;
	src.len = text.len;
	assert_int_equal(c->drv->copy_in(c, "copy ci from stdin", text_source, &src, &rows, &err), 0);
	assert_int_equal(rows, 1000);
	assert_string_equal(scalar(c, "select count(*) from ci where note is null", &fv), "333");

	rows = 0;
	assert_int_equal(c->drv->copy_out(c, "copy (select * from ci order by id) to stdout",
					  buf_sink, &back, &rows, &err), 0);
	assert_int_equal(rows, 1000);
	assert_int_equal(back.b.len, text.len);
	assert_memory_equal(back.b.s, text.s, text.len);

	/* The source fails half-way: its error is returned, nothing is loaded. */
	memset(&src, 0, sizeof(src));
	src.data = text.s;
	src.len = text.len;
	src.fail_at = text.len / 2;
	assert_int_equal(c->drv->copy_in(c, "copy ci from stdin", text_source, &src, &rows, &err),
			 SLUICE_EIO);
	assert_string_equal(err.msg, "source.csv: read error (test)");
	assert_string_equal(scalar(c, "select count(*) from ci", &fv), "1000");

	/* Two COPYs in one text: refused, and neither loads anything. */
	memset(&src, 0, sizeof(src));
	src.data = "5001\ttwice\tx\n";
	src.len = strlen(src.data);
	assert_int_equal(c->drv->copy_in(c, "copy ci from stdin; copy ci from stdin", text_source,
					 &src, &rows, &err), SLUICE_EUSAGE);
	assert_string_equal(scalar(c, "select count(*) from ci", &fv), "1000");

	/* Bad data: the server's error, with its SQLSTATE. */
	memset(&src, 0, sizeof(src));
	src.data = "1\tok\tx\nnot-a-number\tbad\tx\n";
	src.len = strlen(src.data);
	assert_int_equal(c->drv->copy_in(c, "copy ci from stdin", text_source, &src, &rows, &err),
			 SLUICE_EDB);
	assert_string_equal(err.sqlstate, "22P02");
	assert_string_equal(scalar(c, "select count(*) from ci", &fv), "1000");

	buf_release(&text);
	buf_release(&back.b);
	pg_connector.close(c);
}

/* ---- cancel ---- */

struct canceller {
	struct sluice_conn *c;
	int rc;
};

static void *cancel_soon(void *ud)
{
	struct canceller *k = ud;
	struct timespec nap = { 0, 300 * 1000 * 1000 };

	nanosleep(&nap, NULL);
	k->rc = k->c->drv->cancel(k->c);
	return NULL;
}

static void test_cancel_from_other_thread(void **state)
{
	struct sluice_conn *c = connect_harness();
	struct sluice_err err = SLUICE_ERR_INIT;
	struct canceller k = { c, -99 };
	struct first_value fv;
	pthread_t th;
	double t0, took;
	(void)state;

	assert_int_equal(pthread_create(&th, NULL, cancel_soon, &k), 0);
	t0 = clock_monotonic();
	assert_int_equal(c->drv->exec(c, "select pg_sleep(30)", NULL, &err), SLUICE_ECANCEL);
	took = clock_monotonic() - t0;
	pthread_join(th, NULL);
	assert_int_equal(k.rc, 0);
	assert_string_equal(err.sqlstate, "57014");
	assert_true(took < 2.5);
	assert_string_equal(scalar(c, "select 'usable'", &fv), "usable");

	/* statement_timeout also raises 57014, but nobody cancelled: the
	 * statement failed, and the run must not look interrupted. */
	assert_int_equal(c->drv->exec(c, "set statement_timeout = 100; select pg_sleep(5)", NULL,
				      &err), SLUICE_EDB);
	assert_string_equal(err.sqlstate, "57014");
	pg_connector.close(c);
}

/* ---- child_env ---- */

static void test_child_env(void **state)
{
	struct sluice_conn *c = connect_harness();
	struct val s = settings("type", "postgres", "host", pg_sockdir, "port", pg_port, "user",
				"sluice", "dbname", "postgres", NULL);
	struct sluice_err err = SLUICE_ERR_INIT;
	struct buf env = BUF_INIT, want = BUF_INIT;
	(void)state;

	assert_int_equal(c->drv->child_env(c, &env, &err), 0);
	buf_printf(&want, "PGHOST=%s\nPGPORT=%s\nPGUSER=%s\nPGDATABASE=postgres\nPGPASSWORD=%s\n",
		   pg_host, pg_port, pg_user, pg_password);
	assert_string_equal(env.s, want.s);
	pg_connector.close(c);

	/* Over the socket without a password: no PGPASSWORD line at all. */
	assert_int_equal(open_conn(&s, NULL, &c, &err), 0);
	buf_reset(&env);
	buf_reset(&want);
	assert_int_equal(c->drv->child_env(c, &env, &err), 0);
	buf_printf(&want, "PGHOST=%s\nPGPORT=%s\nPGUSER=sluice\nPGDATABASE=postgres\n", pg_sockdir,
		   pg_port);
	assert_string_equal(env.s, want.s);
	pg_connector.close(c);
	buf_release(&env);
	buf_release(&want);
}

/* ---- registry ---- */

static void resolve_to(struct val s, const char *driver, const char *dialect)
{
	const struct sluice_connector *drv = NULL;
	const char *d = NULL;
	struct sluice_err err = SLUICE_ERR_INIT;

	if (connector_resolve(&s, &drv, &d, &err))
		fail_msg("resolve: %s", err.msg);
	assert_string_equal(drv->name, driver);
	assert_string_equal(d, dialect);
}

static void resolve_ok(struct val s, const char *dialect)
{
	resolve_to(s, "postgres", dialect);
}

static void resolve_fails(struct val s, int code, const char *msg)
{
	const struct sluice_connector *drv = &pg_connector;
	const char *d = "x";
	struct sluice_err err = SLUICE_ERR_INIT;

	assert_int_equal(connector_resolve(&s, &drv, &d, &err), code);
	assert_null(drv);
	assert_string_equal(err.msg, msg);
}

static void test_resolve(void **state)
{
	(void)state;
	resolve_ok(settings("type", "postgres", NULL), "postgres");
	resolve_ok(settings("type", "redshift", "host", "x", NULL), "redshift");
	resolve_ok(settings("type", "postgres", "dialect", "redshift", NULL), "redshift");
	/* a driver: key means the ODBC connector, with the type's dialect */
	resolve_to(settings("type", "redshift", "driver", "Amazon Redshift (x64)", NULL), "odbc", "redshift");
	resolve_to(settings("type", "odbc", "driver", "PostgreSQL Unicode", NULL), "odbc", "postgres");
	resolve_fails(settings("type", "mysql", NULL), SLUICE_EUSAGE,
		      "unknown connection type 'mysql' (known: postgres, redshift, odbc)");
	resolve_fails(settings("host", "x", NULL), SLUICE_EUSAGE,
		      "connection settings have no type: (known: postgres, redshift, odbc)");
}

/* ---- the embedded server ---- */

/* The embedded test's project, and the socket directory its server used,
 * for drop_project() to clean up even after a failed assertion. */
static char project[64], project_sock[4096];

/* A fresh project dir: mkdtemp's mode 0700, so as root the server user
 * cannot traverse it unless open_to_all. */
static void make_project(int open_to_all)
{
	snprintf(project, sizeof(project), "/tmp/sluice-test-XXXXXX");
	project_sock[0] = '\0';
	assert_non_null(mkdtemp(project));
	if (open_to_all)
		assert_int_equal(chmod(project, 0755), 0);
}

static void note_sockdir(const struct pg_embedded *e)
{
	snprintf(project_sock, sizeof(project_sock), "%s", e->sockdir);
}

/* Teardown: stop the project's server, remove the project and whatever
 * the server put outside it (/var/tmp cluster, /tmp socket directory). */
static int drop_project(void **state)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct pg_embedded e;
	struct buf link = BUF_INIT;
	char target[PATH_MAX];
	ssize_t n;
	(void)state;

	if (!project[0])
		return 0;
	if (pg_embedded_status(project, &e) == PG_EMBEDDED_RUNNING)
		note_sockdir(&e);
	if (pg_embedded_stop(project, &err))
		fprintf(stderr, "drop_project: %s\n", err.msg);
	buf_printf(&link, "%s/.sluice/pg", project);
	n = readlink(link.s, target, sizeof(target) - 1);
	if (n > 0) {
		target[n] = '\0';
		fs_remove_tree(dirname(target), &err);
	}
	if (!strncmp(project_sock, "/tmp/sluice-", 12))
		fs_remove_tree(project_sock, &err);
	fs_remove_tree(project, &err);
	buf_release(&link);
	project[0] = '\0';
	return 0;
}

static int answers(const char *sockdir, int port)
{
	char ps[16];
	const char *const kw[] = { "host", "port", "dbname", "user", NULL };
	const char *const vals[] = { sockdir, ps, "postgres", "sluice", NULL };

	snprintf(ps, sizeof(ps), "%d", port);
	return PQpingParams(kw, vals, 0) == PQPING_OK;
}

static void test_embedded_lifecycle(void **state)
{
	struct val s = settings("type", "postgres", "embedded", "true", "dbname", "x_db", NULL);
	struct sluice_err err = SLUICE_ERR_INIT;
	struct pg_embedded e, e2;
	struct sluice_conn *c = NULL;
	struct first_value fv;
	struct buf env = BUF_INIT, want = BUF_INIT, path = BUF_INIT;
	struct stat st;
	int started = 0;
	(void)state;

	make_project(0);
	assert_int_equal(pg_embedded_status(project, &e), PG_EMBEDDED_ABSENT);

	assert_int_equal(open_conn(&s, project, &c, &err), 0);
	assert_string_equal(scalar(c, "select current_database()", &fv), "x_db");
	assert_string_equal(scalar(c, "select current_user", &fv), "sluice");
	exec_ok(c, "create table keep (v text); insert into keep values ('still here')");

	assert_int_equal(pg_embedded_status(project, &e), PG_EMBEDDED_RUNNING);
	assert_true(e.pid > 0 && e.port > 0);
	note_sockdir(&e);
	assert_int_equal(c->drv->child_env(c, &env, &err), 0);
	buf_printf(&want, "PGHOST=%s\nPGPORT=%d\nPGUSER=sluice\nPGDATABASE=x_db\n", e.sockdir,
		   e.port);
	assert_string_equal(env.s, want.s);

	/* The cluster belongs to an unprivileged user; as root, with the
	 * project not traversable by that user, it lives under /var/tmp and
	 * .sluice/pg links to it. */
	buf_printf(&path, "%s/.sluice/pg", project);
	assert_int_equal(stat(e.datadir, &st), 0);
	if (geteuid() == 0) {
		assert_int_not_equal(st.st_uid, 0);
		assert_true(!strncmp(e.datadir, "/var/tmp/sluice-embedded-", 25));
		assert_int_equal(lstat(path.s, &st), 0);
		assert_true(S_ISLNK(st.st_mode));
	} else {
		assert_int_equal(st.st_uid, geteuid());
		assert_string_equal(e.datadir, path.s);
	}
	pg_connector.close(c);

	assert_int_equal(pg_embedded_stop(project, &err), 0);
	assert_int_equal(pg_embedded_status(project, &e2), PG_EMBEDDED_STOPPED);
	assert_false(answers(project_sock, e.port));
	/* Stopping a stopped server is fine. */
	assert_int_equal(pg_embedded_stop(project, &err), 0);

	assert_int_equal(pg_embedded_ensure(project, &e2, &started, &err), 0);
	assert_int_equal(started, 1);
	assert_int_equal(pg_embedded_status(project, &e), PG_EMBEDDED_RUNNING);
	assert_int_equal(e.pid, e2.pid);
	/* Ensuring a running server does not start another. */
	assert_int_equal(pg_embedded_ensure(project, &e2, &started, &err), 0);
	assert_int_equal(started, 0);
	assert_int_equal(e2.pid, e.pid);

	/* The connector's cached address may be stale now (a new port): it
	 * must notice, and the data must have survived the restart. */
	assert_int_equal(open_conn(&s, project, &c, &err), 0);
	assert_string_equal(scalar(c, "select v from keep", &fv), "still here");
	pg_connector.close(c);

	/* shutdown() stops the server this process started. */
	pg_connector.shutdown();
	assert_int_equal(pg_embedded_status(project, &e), PG_EMBEDDED_STOPPED);

	buf_release(&want);
	buf_release(&env);
	buf_release(&path);
}

/* Several processes start the same fresh project at once: one initdb, one
 * server, every process gets it and the database it asked for. */
static void test_embedded_concurrent_start(void **state)
{
	enum { N = 3 };
	struct sluice_err err = SLUICE_ERR_INIT;
	struct pg_embedded e;
	struct buf path = BUF_INIT;
	struct stat st;
	pid_t kids[N];
	int i, status, started_total = 0;
	(void)state;

	/* Traversable, so as root the cluster stays inside the project. */
	make_project(1);
	for (i = 0; i < N; i++) {
		kids[i] = fork();
		assert_true(kids[i] >= 0);
		if (kids[i] == 0) {
			struct pg_embedded ke;
			struct sluice_err kerr = SLUICE_ERR_INIT;
			int kstarted = 0;

			if (pg_embedded_ensure(project, &ke, &kstarted, &kerr) ||
			    pg_embedded_create_db(&ke, "race db", &kerr)) {
				fprintf(stderr, "child: %s\n", kerr.msg);
				_exit(1);
			}
			_exit(10 + kstarted);
		}
	}
	for (i = 0; i < N; i++) {
		assert_int_equal(waitpid(kids[i], &status, 0), kids[i]);
		assert_true(WIFEXITED(status));
		assert_true(WEXITSTATUS(status) == 10 || WEXITSTATUS(status) == 11);
		started_total += WEXITSTATUS(status) - 10;
	}
	assert_int_equal(started_total, 1);
	assert_int_equal(pg_embedded_status(project, &e), PG_EMBEDDED_RUNNING);
	note_sockdir(&e);
	buf_printf(&path, "%s/.sluice/pg", project);
	assert_string_equal(e.datadir, path.s);
	assert_int_equal(lstat(path.s, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	if (geteuid() == 0)
		assert_int_not_equal(st.st_uid, 0);

	assert_int_equal(pg_embedded_stop(project, &err), 0);
	assert_int_equal(pg_embedded_status(project, &e), PG_EMBEDDED_STOPPED);
	buf_release(&path);
}

static void test_embedded_missing_project(void **state)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct pg_embedded e;
	int started = 5;
	(void)state;

	assert_int_equal(pg_embedded_ensure("/nonexistent/sluice/project", &e, &started, &err),
			 SLUICE_EUSAGE);
	assert_int_equal(started, 0);
	assert_non_null(strstr(err.msg, "/nonexistent/sluice/project"));
	assert_int_equal(pg_embedded_status("/nonexistent/sluice/project", &e), PG_EMBEDDED_ABSENT);
	assert_int_equal(pg_embedded_stop("/nonexistent/sluice/project", &err), 0);
}

/* initdb fails: the connection fails, and says why in initdb's words. */
static void test_embedded_initdb_fails(void **state)
{
	char bindir[128], script[192];
	struct val s = settings("type", "postgres", "embedded", "true", NULL);
	struct sluice_err err = SLUICE_ERR_INIT;
	struct sluice_conn *c = NULL;
	FILE *f;
	(void)state;

	make_project(0);
	snprintf(bindir, sizeof(bindir), "%s/bin", project);
	assert_int_equal(mkdir(bindir, 0755), 0);
	snprintf(script, sizeof(script), "%s/initdb", bindir);
	f = fopen(script, "w");
	assert_non_null(f);
	fputs("#!/bin/sh\necho 'initdb: error: disk on fire'\nexit 1\n", f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(script, 0755), 0);
	/* As root the fake initdb runs as the server user: let it in. */
	assert_int_equal(chmod(project, 0755), 0);

	setenv("SLUICE_PG_BINDIR", bindir, 1);
	assert_int_equal(open_conn(&s, project, &c, &err), SLUICE_ECONN);
	unsetenv("SLUICE_PG_BINDIR");
	assert_null(c);
	assert_true(!strncmp(err.msg, "connection 'test' (postgres): embedded PostgreSQL: initdb failed", 64));
	assert_non_null(strstr(err.msg, "initdb: error: disk on fire"));
	/* Nothing half-made is left to confuse the next attempt. */
	assert_int_equal(pg_embedded_status(project, &(struct pg_embedded){ 0 }), PG_EMBEDDED_ABSENT);
}

static int group_setup(void **state)
{
	(void)state;
	arena_init(&arena);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	connectors_shutdown();
	arena_release(&arena);
	return 0;
}

static const char *need_env(const char *name)
{
	const char *v = getenv(name);

	if (!v || !*v) {
		fprintf(stderr,
			"test_postgres: %s is not set. This test needs the harness's PostgreSQL:\n"
			"  eval \"$(sh tests/harness/pg.sh start DIR)\"; export SLUICE_TEST_PGHOST "
			"SLUICE_TEST_PGPORT SLUICE_TEST_PGUSER SLUICE_TEST_PGPASSWORD "
			"SLUICE_TEST_PGSOCKDIR\n", name);
		exit(1);
	}
	return v;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connect_ok),
		cmocka_unit_test(test_connect_numeric_port_and_socket),
		cmocka_unit_test(test_wrong_password),
		cmocka_unit_test(test_password_echoed_is_scrubbed),
		cmocka_unit_test(test_refused_port),
		cmocka_unit_test(test_exec_rows),
		cmocka_unit_test(test_exec_errors),
		cmocka_unit_test(test_connection_lost),
		cmocka_unit_test(test_query_streams_rows),
		cmocka_unit_test(test_query_several_statements),
		cmocka_unit_test(test_query_type_names),
		cmocka_unit_test(test_query_stops_early),
		cmocka_unit_test(test_copy_out),
		cmocka_unit_test(test_copy_in_round_trip),
		cmocka_unit_test(test_cancel_from_other_thread),
		cmocka_unit_test(test_child_env),
		cmocka_unit_test(test_resolve),
		cmocka_unit_test(test_embedded_missing_project),
		cmocka_unit_test_teardown(test_embedded_initdb_fails, drop_project),
		cmocka_unit_test_teardown(test_embedded_lifecycle, drop_project),
		cmocka_unit_test_teardown(test_embedded_concurrent_start, drop_project),
	};

	pg_host = need_env("SLUICE_TEST_PGHOST");
	pg_port = need_env("SLUICE_TEST_PGPORT");
	pg_user = need_env("SLUICE_TEST_PGUSER");
	pg_password = need_env("SLUICE_TEST_PGPASSWORD");
	pg_sockdir = need_env("SLUICE_TEST_PGSOCKDIR");
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
