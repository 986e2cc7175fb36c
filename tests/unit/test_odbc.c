/*
 * test_odbc.c: the unixODBC driver (connectors/odbc.c) against a real
 * PostgreSQL through the real psqlODBC driver, loaded by path so that no
 * odbcinst.ini registration is needed. It runs only under the test
 * harness, which starts a server with tests/harness/pg.sh and exports
 * SLUICE_TEST_PG*. It is not a test of the engine's SQL or of the CLI.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../connectors/connector.h"
#include "../../connectors/odbc.h"
#include "../../connectors/postgres.h"
#include "../../engine/util/clock.h"
#include "../../engine/util/fs.h"
#include "../../engine/util/xalloc.h"

/* Debian's psqlODBC (package odbc-postgresql); SLUICE_TEST_ODBC_DRIVER overrides. */
#define PSQLODBC_DEFAULT "/usr/lib/x86_64-linux-gnu/odbc/psqlodbcw.so"

static struct arena arena;
static const char *pg_host, *pg_port, *pg_user, *pg_password, *psqlodbc;

/* Arenas are not thread-safe: test_threads' workers build their settings
 * at the same time. */
static pthread_mutex_t arena_lock = PTHREAD_MUTEX_INITIALIZER;

/* A settings dict from key, value string pairs ending with NULL. */
static struct val settings(const char *key, ...)
{
	struct val d = val_dict_new();
	va_list ap;

	pthread_mutex_lock(&arena_lock);
	va_start(ap, key);
	for (; key; key = va_arg(ap, const char *)) {
		const char *v = va_arg(ap, const char *);
		val_dict_set(&arena, &d, key, val_str(arena_strdup(&arena, v)));
	}
	va_end(ap);
	pthread_mutex_unlock(&arena_lock);
	return d;
}

static struct val harness_settings(void)
{
	return settings("type", "odbc", "driver", psqlodbc, "host", pg_host, "port", pg_port,
			"user", pg_user, "password", pg_password, "database", "postgres", NULL);
}

static int open_conn(const struct val *s, struct sluice_conn **c, struct sluice_err *err)
{
	struct sluice_conn_params p = { "test", s, NULL, "sluice/test" };

	return odbc_connector.connect(&p, c, err);
}

static struct sluice_conn *connect_harness(void)
{
	struct val s = harness_settings();
	struct sluice_err err = SLUICE_ERR_INIT;
	struct sluice_conn *c = NULL;

	if (open_conn(&s, &c, &err))
		fail_msg("connect: %s", err.msg);
	return c;
}

static void exec_ok(struct sluice_conn *c, const char *sql)
{
	struct sluice_err err = SLUICE_ERR_INIT;

	if (c->drv->exec(c, sql, NULL, &err))
		fail_msg("%s: %s", sql, err.msg);
}

static long long exec_rows(struct sluice_conn *c, const char *sql)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	long long n = -99;

	if (c->drv->exec(c, sql, &n, &err))
		fail_msg("%s: %s", sql, err.msg);
	return n;
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

/* ---- connection strings ---- */

static void assert_cs(const char *key, const char *value, const char *want)
{
	struct buf cs = BUF_INIT;

	buf_puts(&cs, "A=1");
	odbc_cs_add(&cs, key, value);
	assert_string_equal(cs.s, want);
	buf_release(&cs);
}

static void test_brace_quoting(void **state)
{
	(void)state;
	assert_cs("PWD", "plain", "A=1;PWD=plain");
	assert_cs("PWD", "a;b", "A=1;PWD={a;b}");
	assert_cs("PWD", "a=b", "A=1;PWD={a=b}");
	assert_cs("PWD", "{x}", "A=1;PWD={{x}}}");
	assert_cs("PWD", "p;w{x}=y}", "A=1;PWD={p;w{x}}=y}}}");
	assert_cs("PWD", " edge ", "A=1;PWD={ edge }");
	assert_cs("Driver", "PostgreSQL Unicode", "A=1;Driver=PostgreSQL Unicode");
}

/* The quoting as the driver manager and psqlODBC read it: a role whose
 * password holds every special character logs in. */
static void test_brace_quoting_end_to_end(void **state)
{
	const char *secret = "p;w{x}=y}};z";
	struct sluice_conn *admin = connect_harness(), *c = NULL;
	struct sluice_err err = SLUICE_ERR_INIT;
	struct first_value fv;
	struct val s;
	(void)state;

	exec_ok(admin, "drop role if exists sluice_odbc_braces");
	exec_ok(admin, "create role sluice_odbc_braces login password 'p;w{x}=y}};z'");
	s = settings("type", "odbc", "driver", psqlodbc, "host", pg_host, "port", pg_port, "uid",
		     "sluice_odbc_braces", "pwd", secret, "dbname", "postgres", NULL);
	if (open_conn(&s, &c, &err))
		fail_msg("connect with %s: %s", secret, err.msg);
	assert_string_equal(scalar(c, "select current_user", &fv), "sluice_odbc_braces");
	odbc_connector.close(c);
	exec_ok(admin, "drop role sluice_odbc_braces");
	odbc_connector.close(admin);
}

/* ---- connecting ---- */

static void test_connect_by_settings(void **state)
{
	struct sluice_conn *c = connect_harness();
	struct first_value fv;
	(void)state;

	assert_string_equal(c->name, "test");
	assert_ptr_equal(c->drv, &odbc_connector);
	assert_null(c->drv->copy_out);
	assert_null(c->drv->copy_in);
	assert_string_equal(scalar(c, "select current_user", &fv), pg_user);
	assert_string_equal(scalar(c, "select current_setting('application_name')", &fv),
			    "sluice/test");
	odbc_connector.close(c);
	odbc_connector.close(NULL);
}

static void test_connect_by_connection_string(void **state)
{
	struct buf cs = BUF_INIT;
	struct sluice_err err = SLUICE_ERR_INIT;
	struct sluice_conn *c = NULL;
	struct first_value fv;
	struct val s;
	(void)state;

	buf_printf(&cs, "Driver={%s};Server=%s;Port=%s;Database=template1", psqlodbc, pg_host,
		   pg_port);
	/* The password from its own key, as profiles keep it in env_var(). */
	s = settings("type", "odbc", "connection_string", cs.s, "user", pg_user, "password",
		     pg_password, NULL);
	if (open_conn(&s, &c, &err))
		fail_msg("connect: %s", err.msg);
	assert_string_equal(scalar(c, "select current_database()", &fv), "template1");
	odbc_connector.close(c);

	/* The same key twice: which copy wins differs between drivers. */
	s = settings("type", "odbc", "connection_string", cs.s, "database", "postgres", NULL);
	assert_int_equal(open_conn(&s, &c, &err), SLUICE_EUSAGE);
	assert_null(c);
	assert_non_null(strstr(err.msg, "Database is set both"));

	s = settings("type", "odbc", "dsn", "x", "connection_string", cs.s, NULL);
	assert_int_equal(open_conn(&s, &c, &err), SLUICE_EUSAGE);
	s = settings("type", "odbc", "host", "x", NULL);
	assert_int_equal(open_conn(&s, &c, &err), SLUICE_EUSAGE);
	assert_non_null(strstr(err.msg, "needs dsn, connection_string or driver"));
	buf_release(&cs);
}

static void test_wrong_password(void **state)
{
	const char *secret = "not-the-secret-7f3a9";
	struct val s = settings("type", "odbc", "driver", psqlodbc, "host", pg_host, "port", pg_port,
				"user", pg_user, "password", secret, "database", "postgres", NULL);
	struct sluice_err err = SLUICE_ERR_INIT;
	struct sluice_conn *c = NULL;
	(void)state;

	assert_int_equal(open_conn(&s, &c, &err), SLUICE_ECONN);
	assert_null(c);
	assert_true(!strncmp(err.msg, "connection 'test' (odbc): ", 26));
	assert_non_null(strstr(err.msg, "password authentication failed"));
	assert_null(strstr(err.msg, secret));
	assert_null(strstr(err.msg, "PWD"));
	assert_string_equal(err.sqlstate, "08001");
	assert_null(strchr(err.msg, '\n'));
}

static void test_password_echoed_is_scrubbed(void **state)
{
	/* A password pasted into the host comes back in "could not translate
	 * host name": the driver's words, our scrubbing. */
	const char *secret = "hunter2-pasted-in-host";
	struct val s = settings("type", "odbc", "driver", psqlodbc, "host",
				"hunter2-pasted-in-host.invalid", "port", pg_port, "user", pg_user,
				"password", secret, "connect_timeout", "3", NULL);
	struct sluice_err err = SLUICE_ERR_INIT;
	struct sluice_conn *c = NULL;
	(void)state;

	assert_int_equal(open_conn(&s, &c, &err), SLUICE_ECONN);
	assert_null(strstr(err.msg, secret));
	assert_true(!strncmp(err.msg, "connection 'test' (odbc): ", 26));
}

static void test_unknown_driver(void **state)
{
	struct val s = settings("type", "odbc", "driver", "No Such Driver 9", "host", pg_host, NULL);
	struct sluice_err err = SLUICE_ERR_INIT, ierr = SLUICE_ERR_INIT;
	struct buf ini = BUF_INIT;
	struct sluice_conn *c = NULL;
	(void)state;

	assert_int_equal(open_conn(&s, &c, &err), SLUICE_ECONN);
	assert_null(c);
	assert_non_null(strstr(err.msg, "installed ODBC drivers: "));
	assert_non_null(strstr(err.msg, "odbc-postgresql"));
	/* odbc-postgresql registers "PostgreSQL Unicode" in odbcinst.ini;
	 * where it did, the list must name it. */
	if (!fs_read_file("/etc/odbcinst.ini", &ini, &ierr) && strstr(ini.s, "[PostgreSQL Unicode]"))
		assert_non_null(strstr(err.msg, "PostgreSQL Unicode"));
	buf_release(&ini);

	s = settings("type", "odbc", "dsn", "no-such-dsn-9", NULL);
	assert_int_equal(open_conn(&s, &c, &err), SLUICE_ECONN);
	assert_string_equal(err.sqlstate, "IM002");
	assert_non_null(strstr(err.msg, "odbc-postgresql"));
	assert_null(strstr(err.msg, "[unixODBC]"));
}

/*
 * Append this process's psqlODBC log files (/tmp/psqlodbc_<prog>_<user><pid>.log)
 * to all, and remove them. psqlODBC writes a "PQfinish" line
 * to one at disconnect whenever odbcinst.ini says CommLog=1, whatever the
 * connection string says: harmless, but the rest must not be there.
 */
static void driver_logs(struct buf *all)
{
	char suffix[32], path[512];
	struct buf text = BUF_INIT;
	struct sluice_err err = SLUICE_ERR_INIT;
	struct dirent *d;
	DIR *dir;

	snprintf(suffix, sizeof(suffix), "%ld.log", (long)getpid());
	dir = opendir("/tmp");
	assert_non_null(dir);
	while ((d = readdir(dir))) {
		size_t n = strlen(d->d_name), m = strlen(suffix);

		if (strncmp(d->d_name, "psqlodbc_", 9) || n <= m ||
		    strcmp(d->d_name + n - m, suffix) ||
		    (d->d_name[n - m - 1] >= '0' && d->d_name[n - m - 1] <= '9'))
			continue;
		snprintf(path, sizeof(path), "/tmp/%s", d->d_name);
		buf_reset(&text);
		if (!fs_read_file(path, &text, &err))
			buf_puts(all, text.s);
		unlink(path);
	}
	closedir(dir);
	buf_release(&text);
}

/* psqlODBC's CommLog writes every statement and the connection string,
 * password and all, to /tmp: Debian's odbcinst.ini switches it on for the
 * registered driver names. Only checked where that driver is registered. */
static void test_no_driver_log(void **state)
{
	struct val s = settings("type", "odbc", "driver", "PostgreSQL Unicode", "host", pg_host,
				"port", pg_port, "user", pg_user, "password", pg_password,
				"database", "postgres", NULL);
	struct sluice_err err = SLUICE_ERR_INIT;
	struct sluice_conn *c = NULL;
	struct buf logs = BUF_INIT;
	(void)state;

	if (open_conn(&s, &c, &err)) {
		if (strstr(err.msg, "installed ODBC drivers: "))
			skip();  /* "PostgreSQL Unicode" not registered here */
		fail_msg("connect: %s", err.msg);
	}
	exec_ok(c, "select 'sluice-odbc-log-probe'");
	odbc_connector.close(c);
	driver_logs(&logs);
	assert_null(strstr(logs.s, pg_password));
	assert_null(strstr(logs.s, "sluice-odbc-log-probe"));
	buf_release(&logs);
}

static void test_resolve(void **state)
{
	const struct sluice_connector *drv;
	const char *dialect;
	struct sluice_err err = SLUICE_ERR_INIT;
	struct val s;
	(void)state;

	s = settings("type", "odbc", "dsn", "x", NULL);
	assert_int_equal(connector_resolve(&s, &drv, &dialect, &err), 0);
	assert_ptr_equal(drv, &odbc_connector);
	assert_string_equal(dialect, "postgres");
	s = settings("type", "odbc", "dsn", "x", "dialect", "redshift", NULL);
	assert_int_equal(connector_resolve(&s, &drv, &dialect, &err), 0);
	assert_string_equal(dialect, "redshift");
	s = settings("type", "redshift", "driver", "Amazon Redshift (x64)", NULL);
	assert_int_equal(connector_resolve(&s, &drv, &dialect, &err), 0);
	assert_ptr_equal(drv, &odbc_connector);
	assert_string_equal(dialect, "redshift");
	s = settings("type", "redshift", "host", "x", NULL);
	assert_int_equal(connector_resolve(&s, &drv, &dialect, &err), 0);
	assert_string_equal(drv->name, "postgres");
}

/* ---- exec ---- */

static void test_exec_rows(void **state)
{
	struct sluice_conn *c = connect_harness();
	struct first_value fv;
	(void)state;

	exec_ok(c, "drop table if exists odbc_t");
	exec_ok(c, "create table odbc_t (id int, v text)");
	assert_int_equal(exec_rows(c, "insert into odbc_t select g, 'v' || g from generate_series(1, 5) g"), 5);
	assert_int_equal(exec_rows(c, "create temp table odbc_t2 as select * from odbc_t"), 5);
	assert_int_equal(exec_rows(c, "drop table odbc_t2"), -1);
	assert_int_equal(exec_rows(c, "update odbc_t set v = 'x' where id <= 2"), 2);
	assert_int_equal(exec_rows(c, "delete from odbc_t where id > 100"), 0);
	/* Several statements: the last one's count. */
	assert_int_equal(exec_rows(c, "update odbc_t set v = 'y'; delete from odbc_t where id = 5"), 1);
	assert_string_equal(scalar(c, "select count(*) from odbc_t where v = 'y'", &fv), "4");

	/* The engine's own BEGIN/ROLLBACK pass through autocommit, even around
	 * a query whose cursor psqlODBC wraps in a transaction of its own. */
	exec_ok(c, "begin");
	exec_ok(c, "insert into odbc_t values (99, 'gone')");
	assert_string_equal(scalar(c, "select count(*) from odbc_t where id = 99", &fv), "1");
	exec_ok(c, "rollback");
	assert_string_equal(scalar(c, "select count(*) from odbc_t where id = 99", &fv), "0");
	exec_ok(c, "begin; insert into odbc_t values (98, 'kept'); commit");
	assert_string_equal(scalar(c, "select count(*) from odbc_t where id = 98", &fv), "1");
	exec_ok(c, "drop table odbc_t");

	/* A SELECT through exec runs whole (psqlODBC's cursor would only
	 * compute the rows fetched) and counts its rows. */
	exec_ok(c, "create temp sequence odbc_sq");
	assert_int_equal(exec_rows(c, "select nextval('odbc_sq') from generate_series(1, 5000)"), 5000);
	assert_string_equal(scalar(c, "select currval('odbc_sq')", &fv), "5000");
	odbc_connector.close(c);
}

static void test_exec_errors(void **state)
{
	struct sluice_conn *c = connect_harness();
	struct sluice_err err = SLUICE_ERR_INIT;
	struct first_value fv;
	long long n = 7;
	(void)state;

	assert_int_equal(c->drv->exec(c, "select * from no_such_table_x", &n, &err), SLUICE_EDB);
	assert_int_equal(err.code, SLUICE_EDB);
	assert_string_equal(err.sqlstate, "42P01");
	assert_non_null(strstr(err.msg, "no_such_table_x"));
	assert_null(strstr(err.msg, "[unixODBC]"));
	assert_null(strchr(err.msg, '\n'));
	assert_int_equal(n, -1);

	/* The server's words in the shape the libpq connector gives them. */
	assert_string_equal(err.msg, "relation \"no_such_table_x\" does not exist");
	assert_int_equal(c->drv->exec(c, "do $$ begin raise exception 'boom' using detail = 'the\n detail', "
				      "hint = 'a hint'; end $$", NULL, &err), SLUICE_EDB);
	/* psqlODBC drops the hint. */
	assert_string_equal(err.msg, "boom (DETAIL: the detail)");
	assert_string_equal(err.sqlstate, "P0001");
	assert_int_equal(c->drv->exec(c, "selec 1", NULL, &err), SLUICE_EDB);
	assert_string_equal(err.sqlstate, "42601");
	assert_int_equal(c->drv->query(c, "select 1/0", keep_first, &fv, &err), SLUICE_EDB);
	assert_string_equal(err.sqlstate, "22012");
	/* A failure in the middle of a multi-statement text. */
	assert_int_equal(c->drv->exec(c, "select 1; select * from no_such_table_y", NULL, &err),
			 SLUICE_EDB);
	assert_string_equal(err.sqlstate, "42P01");
	/* Still usable. */
	assert_string_equal(scalar(c, "select 'usable'", &fv), "usable");
	odbc_connector.close(c);
}

/* Inside the engine's own transaction the server sees the statement as
 * sent (no driver SAVEPOINT in front of the audit comment), and a failed
 * statement loses the transaction's work, as over libpq. */
static void test_transaction_as_sent(void **state)
{
	struct sluice_conn *c = connect_harness();
	struct sluice_err err = SLUICE_ERR_INIT;
	struct first_value fv;
	(void)state;

	exec_ok(c, "drop table if exists odbc_tx");
	exec_ok(c, "create table odbc_tx (id int)");
	exec_ok(c, "begin");
	exec_ok(c, "insert into odbc_tx values (1)");
	assert_string_equal(scalar(c, "/* sluice audit */ select current_query()", &fv),
			    "/* sluice audit */ select current_query()");
	assert_int_equal(c->drv->exec(c, "insert into odbc_tx values (1/0)", NULL, &err), SLUICE_EDB);
	assert_string_equal(err.sqlstate, "22012");
	exec_ok(c, "rollback");
	assert_string_equal(scalar(c, "select count(*) from odbc_tx", &fv), "0");
	/* A failed query outside a transaction leaves none open behind it. */
	assert_int_equal(c->drv->query(c, "select 1/0", keep_first, &fv, &err), SLUICE_EDB);
	assert_string_equal(scalar(c, "select count(*) from odbc_tx", &fv), "0");
	exec_ok(c, "drop table odbc_tx");
	odbc_connector.close(c);
}

static void test_connection_lost(void **state)
{
	struct sluice_conn *c = connect_harness(), *admin = connect_harness();
	struct sluice_err err = SLUICE_ERR_INIT;
	struct first_value fv;
	char sql[128];
	(void)state;

	snprintf(sql, sizeof(sql), "select pg_terminate_backend(%s)",
		 scalar(c, "select pg_backend_pid()", &fv));
	exec_ok(admin, sql);
	assert_int_equal(c->drv->exec(c, "select 1", NULL, &err), SLUICE_ECONN);
	assert_string_equal(err.msg, "connection 'test' (odbc) lost: terminating connection due to "
			    "administrator command");
	odbc_connector.close(c);
	odbc_connector.close(admin);
}

/* ---- query ---- */

struct stream_check {
	long long rows, sum, nulls;
	int types_ok, names_ok;
	int stop_after;
};

static int check_row(void *ud, const struct sluice_row *row)
{
	struct stream_check *sc = ud;

	if (!sc->rows) {
		sc->names_ok = row->ncols == 3 && !strcmp(row->names[0], "id") &&
			       !strcmp(row->names[1], "label") && !strcmp(row->names[2], "maybe");
		sc->types_ok = !strcmp(row->types[0], "integer") && !strcmp(row->types[1], "text") &&
			       !strcmp(row->types[2], "bigint");
	}
	sc->rows++;
	sc->sum += strtoll(row->values[0], NULL, 10);
	if (!row->values[2]) {
		sc->nulls++;
		if (row->lens[2] != 0)
			return -100;
	}
	if (strlen(row->values[1]) != row->lens[1] || strncmp(row->values[1], "row ", 4))
		return -101;
	return sc->stop_after && sc->rows >= sc->stop_after;
}

static void test_query_streams_rows(void **state)
{
	struct sluice_conn *c = connect_harness();
	struct sluice_err err = SLUICE_ERR_INIT;
	struct stream_check sc = { 0 };
	(void)state;

	assert_int_equal(c->drv->query(c,
				       "select g::int as id, 'row ' || g as label, "
				       "case when g % 10 = 0 then null else g::bigint end as maybe "
				       "from generate_series(1, 100000) g",
				       check_row, &sc, &err), 0);
	assert_int_equal(sc.rows, 100000);
	assert_int_equal(sc.sum, 5000050000LL);
	assert_int_equal(sc.nulls, 10000);
	assert_true(sc.names_ok);
	assert_true(sc.types_ok);
	odbc_connector.close(c);
}

struct long_check {
	size_t len;
	char head[8], tail[8], after[32], utf8[16];
	const char *type0;
	int rows;
};

static int check_long(void *ud, const struct sluice_row *row)
{
	struct long_check *lc = ud;

	lc->rows++;
	lc->len = row->lens[0];
	if (strlen(row->values[0]) != row->lens[0])
		return -100;
	snprintf(lc->head, sizeof(lc->head), "%.3s", row->values[0]);
	snprintf(lc->tail, sizeof(lc->tail), "%s", row->values[0] + row->lens[0] - 3);
	snprintf(lc->after, sizeof(lc->after), "%s", row->values[1]);
	snprintf(lc->utf8, sizeof(lc->utf8), "%s", row->values[2]);
	lc->type0 = row->types[0];
	return 0;
}

static void test_query_long_values(void **state)
{
	struct sluice_conn *c = connect_harness();
	struct sluice_err err = SLUICE_ERR_INIT;
	struct long_check lc = { 0 };
	(void)state;

	/* > 64 KiB, read in pieces; a bound column and a text one after it. */
	assert_int_equal(c->drv->query(c,
				       "select 'abc' || repeat('x', 300000) || 'xyz' as big, "
				       "42 as n, 'caf\u00e9' as u",
				       check_long, &lc, &err), 0);
	assert_int_equal(lc.rows, 1);
	assert_int_equal(lc.len, 300006);
	assert_string_equal(lc.head, "abc");
	assert_string_equal(lc.tail, "xyz");
	assert_string_equal(lc.after, "42");
	assert_string_equal(lc.utf8, "caf\xc3\xa9");
	assert_string_equal(lc.type0, "text");

	/* Several long rows in a row: each value whole, buffer reused. */
	memset(&lc, 0, sizeof(lc));
	assert_int_equal(c->drv->query(c,
				       "select 'abc' || repeat('y', g * 40000) || 'xyz', g, '' "
				       "from generate_series(1, 4) g",
				       check_long, &lc, &err), 0);
	assert_int_equal(lc.rows, 4);
	assert_int_equal(lc.len, 160006);
	assert_string_equal(lc.after, "4");
	odbc_connector.close(c);
}

struct types_seen {
	char types[16][64];
	char values[16][64];
	size_t n;
};

static int keep_types(void *ud, const struct sluice_row *row)
{
	struct types_seen *ts = ud;
	size_t i;

	for (i = 0; i < row->ncols && i < 16; i++) {
		snprintf(ts->types[i], sizeof(ts->types[i]), "%s", row->types[i]);
		snprintf(ts->values[i], sizeof(ts->values[i]), "%s",
			 row->values[i] ? row->values[i] : "NULL");
	}
	ts->n = row->ncols;
	return 0;
}

static void test_query_type_names(void **state)
{
	struct sluice_conn *c = connect_harness();
	struct sluice_err err = SLUICE_ERR_INIT;
	struct types_seen ts = { 0 };
	(void)state;

	assert_int_equal(c->drv->query(c,
				       "select 1::smallint, 2::bigint, 1.5::numeric(10,2), "
				       "'x'::varchar(10), date '2024-02-29', 2.5::float8, "
				       "'{\"a\":1}'::jsonb, null::int, true, false, "
				       "'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'::uuid, '\\x0aff'::bytea, "
				       "timestamp '2024-01-02 03:04:05.123456'",
				       keep_types, &ts, &err), 0);
	assert_int_equal(ts.n, 13);
	assert_string_equal(ts.types[0], "smallint");
	assert_string_equal(ts.types[1], "bigint");
	assert_string_equal(ts.types[2], "numeric");
	assert_string_equal(ts.values[2], "1.50");
	assert_string_equal(ts.types[3], "character varying");
	assert_string_equal(ts.types[4], "date");
	assert_string_equal(ts.values[4], "2024-02-29");
	assert_string_equal(ts.types[5], "double precision");
	assert_string_equal(ts.values[5], "2.5");
	/* psqlODBC has no name for jsonb: the ODBC type's. */
	assert_true(!strcmp(ts.types[6], "text") || !strcmp(ts.types[6], "character varying"));
	assert_string_equal(ts.values[6], "{\"a\": 1}");
	assert_string_equal(ts.values[7], "NULL");
	/* PostgreSQL's own text forms, as the libpq driver gives them. */
	assert_string_equal(ts.types[8], "boolean");
	assert_string_equal(ts.values[8], "t");
	assert_string_equal(ts.values[9], "f");
	assert_string_equal(ts.types[10], "uuid");
	assert_string_equal(ts.values[10], "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
	assert_string_equal(ts.types[11], "bytea");
	assert_string_equal(ts.values[11], "\\x0aff");
	assert_string_equal(ts.types[12], "timestamp without time zone");
	assert_string_equal(ts.values[12], "2024-01-02 03:04:05.123456");
	odbc_connector.close(c);
}

struct sets_seen {
	char shape[128];
};

static int keep_shape(void *ud, const struct sluice_row *row)
{
	struct sets_seen *ss = ud;
	size_t n = strlen(ss->shape);

	snprintf(ss->shape + n, sizeof(ss->shape) - n, "%s%s=%s/%zu", n ? " " : "", row->names[0],
		 row->values[0] ? row->values[0] : "NULL", row->ncols);
	return 0;
}

static void test_query_several_statements(void **state)
{
	struct sluice_conn *c = connect_harness();
	struct sluice_err err = SLUICE_ERR_INIT;
	struct sets_seen ss = { "" };
	(void)state;

	/* Each result set streams with its own columns; statements without
	 * rows in between are skipped. */
	assert_int_equal(c->drv->query(c,
				       "select 1 as a; create temp table odbc_q (x int); "
				       "select 'x' as b, 2 as c union all select 'y', 3",
				       keep_shape, &ss, &err), 0);
	assert_string_equal(ss.shape, "a=1/1 b=x/2 b=y/2");
	odbc_connector.close(c);
}

static void test_query_stops_early(void **state)
{
	struct sluice_conn *c = connect_harness();
	struct sluice_err err = SLUICE_ERR_INIT;
	struct stream_check sc = { .stop_after = 10 };
	struct first_value fv;
	double t0, took;
	(void)state;

	/* A hundred million rows, produced lazily (generate_series in the
	 * select list): only a streaming cursor gets the first ten back
	 * quickly and in bounded memory; psqlODBC without UseDeclareFetch
	 * reads them all first. An hour's sleep follows the rows, so reading
	 * to the end takes an hour and stopping after ten a moment: the
	 * bound below tells the two apart on any loaded machine. */
	t0 = clock_monotonic();
	assert_int_equal(c->drv->query(c,
				       "select g::int as id, 'row ' || g as label, g::bigint as maybe "
				       "from (select generate_series(1, 100000000) as g "
				       "union all select 0 from pg_sleep(3600)) s",
				       check_row, &sc, &err), 1);
	took = clock_monotonic() - t0;
	assert_int_equal(sc.rows, 10);
	assert_true(took < 300.0);
	assert_string_equal(scalar(c, "select 'usable'", &fv), "usable");
	odbc_connector.close(c);
}

/* ---- cancel ---- */

struct canceller {
	struct sluice_conn *c;
	int rc;
};

static void *cancel_soon(void *arg)
{
	struct canceller *k = arg;

	usleep(500 * 1000);
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
	assert_true(took < 3.0);
	assert_string_equal(scalar(c, "select 'usable'", &fv), "usable");

	/* query() too. */
	k.rc = -99;
	assert_int_equal(pthread_create(&th, NULL, cancel_soon, &k), 0);
	t0 = clock_monotonic();
	assert_int_equal(c->drv->query(c, "select pg_sleep(30)", keep_first, &fv, &err),
			 SLUICE_ECANCEL);
	took = clock_monotonic() - t0;
	pthread_join(th, NULL);
	assert_int_equal(k.rc, 0);
	assert_true(took < 3.0);

	/* statement_timeout raises 57014 too, but nobody cancelled. */
	assert_int_equal(c->drv->exec(c, "set statement_timeout = 100; select pg_sleep(5)", NULL,
				      &err), SLUICE_EDB);
	assert_string_equal(err.sqlstate, "57014");
	exec_ok(c, "set statement_timeout = 0");
	/* Nothing running: a no-op. */
	assert_int_equal(c->drv->cancel(c), 0);
	odbc_connector.close(c);
}

/* ---- load_csv ---- */

/* A CSV source handing out at most chunk bytes a call (1 byte: every
 * field and quote pair crosses a read boundary), failing at fail_at. */
struct csv_source {
	const char *data;
	size_t len, pos, chunk, fail_at;
};

static ssize_t csv_read(void *ud, void *buf, size_t cap, struct sluice_err *err)
{
	struct csv_source *src = ud;
	size_t n = src->len - src->pos;

	if (src->fail_at && src->pos >= src->fail_at)
		return err_set(err, SLUICE_EIO, "rows.csv: read error (test)");
	if (src->chunk && n > src->chunk)
		n = src->chunk;
	if (n > cap)
		n = cap;
	memcpy(buf, src->data + src->pos, n);
	src->pos += n;
	return (ssize_t)n;
}

static int load(struct sluice_conn *c, const char *rel, size_t ncols, const char *csv, size_t chunk,
		long long *rows, struct sluice_err *err)
{
	struct csv_source src = { csv, strlen(csv), 0, chunk, 0 };

	return c->drv->load_csv(c, rel, ncols, csv_read, &src, rows, err);
}

static struct sluice_conn *connect_libpq(void)
{
	struct val s = settings("type", "postgres", "host", pg_host, "port", pg_port, "user", pg_user,
				"password", pg_password, "dbname", "postgres", NULL);
	struct sluice_conn_params p = { "libpq", &s, NULL, "sluice/test" };
	struct sluice_err err = SLUICE_ERR_INIT;
	struct sluice_conn *c = NULL;
	const struct sluice_connector *drv;
	const char *dialect;

	if (connector_resolve(&s, &drv, &dialect, &err) || drv->connect(&p, &c, &err))
		fail_msg("libpq connect: %s", err.msg);
	return c;
}

/* What makes CSV hard, each in its own row: quotes, separators and line
 * ends inside quotes, CR LF, NULL against the empty string, a quote in
 * the middle of a field, UTF-8, and values the server must cast. */
static const char tricky_csv[] =
	"1,plain,,2024-01-02,t,1.50\n"
	"2,\"\",\"\",2024-02-29,f,-3\n"
	"3,\"say \"\"hi\"\"\",\"a,b\",,,\n"
	"4,\"line one\nline two\r\nline three\",\"\"\"\",2000-01-01,true,1e3\n"
	"5,caf\xc3\xa9 \xe2\x82\xac,x\"y,z\"w,1999-12-31,0,0\n"
	"6,  spaced  ,\"\"\"quoted\"\" \"\"start\"\"\",,,\n"
	"7,\\N,\\,,,\n"
	"8,,last,2024-12-31,false,42";  /* no line end after the last row */

static const char tricky_table[] =
	"(id int, a text, b text, d date, flag boolean, n numeric, extra text default 'dflt')";

static void test_load_csv_like_copy(void **state)
{
	struct sluice_conn *c = connect_harness(), *pg = connect_libpq();
	struct sluice_err err = SLUICE_ERR_INIT;
	struct csv_source src = { tricky_csv, sizeof(tricky_csv) - 1, 0, 0, 0 };
	struct first_value fv;
	struct buf sql = BUF_INIT;
	long long rows = -1;
	size_t chunk;
	(void)state;

	assert_non_null(c->drv->load_csv);
	exec_ok(c, "drop table if exists lc_odbc, lc_copy");
	buf_printf(&sql, "create table lc_odbc %s; create table lc_copy %s", tricky_table, tricky_table);
	exec_ok(c, sql.s);
	/* The reference: PostgreSQL's own COPY ... CSV through libpq. */
	if (pg->drv->copy_in(pg, "copy lc_copy (id, a, b, d, flag, n) from stdin with (format csv)",
			     csv_read, &src, &rows, &err))
		fail_msg("copy: %s", err.msg);
	assert_int_equal(rows, 8);

	/* Whole, and in reads of 1, 2 and 3 bytes. */
	for (chunk = 0; chunk <= 3; chunk++) {
		rows = -1;
		exec_ok(c, "truncate lc_odbc");
		if (load(c, "lc_odbc", 6, tricky_csv, chunk, &rows, &err))
			fail_msg("chunk %zu: %s", chunk, err.msg);
		assert_int_equal(rows, 8);
		/* Row for row, NULLs and empty strings alike. */
		assert_string_equal(scalar(c, "select count(*) from (select * from lc_odbc except all "
					   "select * from lc_copy) d", &fv), "0");
		assert_string_equal(scalar(c, "select count(*) from (select * from lc_copy except all "
					   "select * from lc_odbc) d", &fv), "0");
	}
	/* What the comparison rests on, seen directly. */
	assert_string_equal(scalar(c, "select count(*) from lc_odbc where b is null", &fv), "1");
	assert_string_equal(scalar(c, "select count(*) from lc_odbc where a = '' and b = ''", &fv), "1");
	assert_string_equal(scalar(c, "select a from lc_odbc where id = 3", &fv), "say \"hi\"");
	assert_string_equal(scalar(c, "select b from lc_odbc where id = 5", &fv), "xy,zw");
	assert_string_equal(scalar(c, "select a from lc_odbc where id = 4", &fv),
			    "line one\nline two\r\nline three");
	assert_string_equal(scalar(c, "select a from lc_odbc where id = 7", &fv), "\\N");
	assert_string_equal(scalar(c, "select extra from lc_odbc where id = 8", &fv), "dflt");
	assert_string_equal(scalar(c, "select a from lc_odbc where id = 5", &fv),
			    "caf\xc3\xa9 \xe2\x82\xac");
	exec_ok(c, "drop table lc_odbc, lc_copy");
	buf_release(&sql);
	odbc_connector.close(c);
	pg_connector.close(pg);
}

/* Many rows (several batches, a row count) and values longer than a read
 * buffer and than a batch's byte budget, in bounded memory. */
static void test_load_csv_batches(void **state)
{
	struct sluice_conn *c = connect_harness();
	struct sluice_err err = SLUICE_ERR_INIT;
	struct first_value fv;
	struct buf csv = BUF_INIT;
	long long rows = -1;
	int i;
	(void)state;

	exec_ok(c, "drop table if exists lc_many");
	exec_ok(c, "create table lc_many (id int primary key, v text, big text)");
	for (i = 1; i <= 25000; i++) {
		buf_printf(&csv, "%d,\"v,%d\"\"\",", i, i);
		if (i % 5000 == 0) {
			/* 5 MiB with quotes and a line end inside. */
			buf_puts(&csv, "\"<");
			for (int k = 0; k < 5 * 1024 * 1024 / 8; k++)
				buf_puts(&csv, k % 100 ? "abcdefgh" : "\"\"\nabcde");
			buf_puts(&csv, ">\"");
		}
		buf_addc(&csv, '\n');
	}
	assert_int_equal(load(c, "lc_many", 3, csv.s, 0, &rows, &err), 0);
	assert_int_equal(rows, 25000);
	assert_string_equal(scalar(c, "select count(*) || ' ' || sum(id) from lc_many", &fv),
			    "25000 312512500");
	assert_string_equal(scalar(c, "select v from lc_many where id = 12345", &fv), "v,12345\"");
	assert_string_equal(scalar(c, "select count(*) from lc_many where big is null", &fv), "24995");
	assert_string_equal(scalar(c, "select string_agg(distinct length(big)::text || ':' || "
				   "left(big, 4) || right(big, 1), ' ') from lc_many", &fv),
			    "5236328:<\"\na>");
	exec_ok(c, "drop table lc_many");

	/* A wide table: fewer rows per INSERT (PostgreSQL's parameter
	 * limits), the same rows in the end. */
	buf_reset(&csv);
	for (i = 1; i <= 3000; i++) {
		for (int k = 0; k < 12; k++)
			buf_printf(&csv, "%s%d", k ? "," : "", i * 100 + k);
		buf_addc(&csv, '\n');
	}
	exec_ok(c, "drop table if exists lc_wide");
	exec_ok(c, "create table lc_wide (c0 int, c1 int, c2 int, c3 int, c4 int, c5 int, "
		"c6 int, c7 int, c8 int, c9 int, c10 int, c11 bigint)");
	assert_int_equal(load(c, "lc_wide", 12, csv.s, 0, &rows, &err), 0);
	assert_int_equal(rows, 3000);
	assert_string_equal(scalar(c, "select count(distinct c0) || ' ' || sum(c11 - c0) from lc_wide", &fv),
			    "3000 33000");
	exec_ok(c, "drop table lc_wide");

	/* The count is the server's: a trigger that skips rows lowers it,
	 * in full batches and in the rest alike, as it does COPY's. */
	exec_ok(c, "create table lc_trig (id int)");
	exec_ok(c, "create function lc_skip_even() returns trigger language plpgsql as "
		"$$ begin if new.id % 2 = 0 then return null; end if; return new; end $$");
	exec_ok(c, "create trigger lc_skip before insert on lc_trig for each row execute function lc_skip_even()");
	buf_reset(&csv);
	for (i = 1; i <= 2500; i++)
		buf_printf(&csv, "%d\n", i);
	assert_int_equal(load(c, "lc_trig", 1, csv.s, 0, &rows, &err), 0);
	assert_int_equal(rows, 1250);
	assert_string_equal(scalar(c, "select count(*) from lc_trig", &fv), "1250");
	exec_ok(c, "drop table lc_trig; drop function lc_skip_even()");
	buf_release(&csv);
	odbc_connector.close(c);
}

/* Rows made up as they are read, never all in memory; the resident set
 * size is sampled while the loader runs. n < 0: without end. */
struct gen_source {
	long long n, i;
	long peak_kb;
	unsigned calls;
};

static long rss_kb(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

static ssize_t gen_read(void *ud, void *buf, size_t cap, struct sluice_err *err)
{
	struct gen_source *g = ud;
	size_t len = 0;
	int n;
	(void)err;

	if (g->calls++ % 64 == 0 && rss_kb() > g->peak_kb)
		g->peak_kb = rss_kb();
	while ((g->n < 0 || g->i < g->n) && cap - len > 128) {
		g->i++;
		n = snprintf((char *)buf + len, cap - len, "%lld,\"row %lld, \"\"quoted\"\"\",%s\n", g->i,
			     g->i, g->i % 3 ? "2024-01-01 10:00:00" : "");
		len += (size_t)n;
	}
	return (ssize_t)len;
}

static void test_load_csv_bounded_memory(void **state)
{
	struct sluice_conn *c = connect_harness();
	struct sluice_err err = SLUICE_ERR_INIT;
	struct gen_source g = { 400000, 0, 0, 0 };
	struct first_value fv;
	long long rows = -1;
	long before;
	(void)state;

	exec_ok(c, "drop table if exists lc_mem");
	exec_ok(c, "create table lc_mem (id int, v text, at timestamp)");
	/* Memory earlier tests freed would hide growth: give it back first. */
	malloc_trim(0);
	before = rss_kb();
	/* 20 MB of CSV: held whole, it would show. */
	assert_int_equal(c->drv->load_csv(c, "lc_mem", 3, gen_read, &g, &rows, &err), 0);
	assert_int_equal(rows, 400000);
	assert_string_equal(scalar(c, "select count(*) || ' ' || count(at) || ' ' || max(v) from lc_mem", &fv),
			    "400000 266667 row 99999, \"quoted\"");
#ifndef __SANITIZE_ADDRESS__
	if (g.peak_kb - before > 8 * 1024)
		fail_msg("resident set grew by %ld KiB while loading", g.peak_kb - before);
#else
	/* AddressSanitizer keeps freed memory in quarantine: the resident
	 * set says nothing here. */
	(void)before;
#endif
	exec_ok(c, "drop table lc_mem");
	odbc_connector.close(c);
}

static void test_load_csv_cancel(void **state)
{
	struct sluice_conn *c = connect_harness();
	struct sluice_err err = SLUICE_ERR_INIT;
	struct gen_source g = { -1, 0, 0, 0 };
	struct canceller k = { c, -99 };
	struct first_value fv;
	long long rows = -1;
	pthread_t th;
	double t0;
	(void)state;

	exec_ok(c, "drop table if exists lc_cancel");
	exec_ok(c, "create table lc_cancel (id int, v text, at timestamp)");
	/* A source without end: only cancel() stops it. */
	assert_int_equal(pthread_create(&th, NULL, cancel_soon, &k), 0);
	t0 = clock_monotonic();
	assert_int_equal(c->drv->load_csv(c, "lc_cancel", 3, gen_read, &g, &rows, &err), SLUICE_ECANCEL);
	pthread_join(th, NULL);
	assert_true(clock_monotonic() - t0 < 3.0);
	assert_int_equal(k.rc, 0);
	assert_string_equal(scalar(c, "select 'usable'", &fv), "usable");
	exec_ok(c, "drop table lc_cancel");
	odbc_connector.close(c);
}

/* load_csv's parser without a connection: the same rows and errors whatever the chunks. */
static void test_csv_parse(void **state)
{
	const char *csv = "1,\"a,\"\"b\"\"\r\nc\"\r\n2,\n\"3\",x";
	struct sluice_err err = SLUICE_ERR_INIT;
	long long rows = -1;
	size_t chunk;
	(void)state;

	for (chunk = 0; chunk < 5; chunk++) {
		assert_int_equal(odbc_csv_parse(csv, strlen(csv), chunk, 2, &rows, &err), 0);
		assert_int_equal(rows, 3);
	}
	assert_int_equal(odbc_csv_parse("1,a\n2,b,c\n", 10, 3, 2, &rows, &err), SLUICE_EDB);
	assert_string_equal(err.msg, "CSV row 2 has 3 fields, 2 expected");
	assert_int_equal(odbc_csv_parse("1,a\n2,\"open\n", 12, 1, 2, &rows, &err), SLUICE_EDB);
	assert_string_equal(err.msg, "CSV row 2: a quoted field is not closed at the end of the input");
	assert_int_equal(rows, 0);
}

static void test_load_csv_errors(void **state)
{
	struct sluice_conn *c = connect_harness();
	struct sluice_err err = SLUICE_ERR_INIT;
	struct csv_source src = { "1,a\n2,b\n3,c\n", 12, 0, 1, 7 };
	struct first_value fv;
	struct buf csv = BUF_INIT;
	long long rows = -1;
	int i, first = 0, last = 0;
	(void)state;

	exec_ok(c, "drop table if exists lc_err");
	exec_ok(c, "create table lc_err (id int, v text)");
	assert_int_equal(load(c, "lc_err", 2, "1,a\n2,b,c\n", 0, &rows, &err), SLUICE_EDB);
	assert_string_equal(err.msg, "loading lc_err: CSV row 2 has 3 fields, 2 expected");
	assert_int_equal(load(c, "lc_err", 2, "1,a\n2\n", 0, &rows, &err), SLUICE_EDB);
	assert_string_equal(err.msg, "loading lc_err: CSV row 2 has 1 field, 2 expected");
	assert_int_equal(load(c, "lc_err", 2, "1,a\n2,\"open\n", 0, &rows, &err), SLUICE_EDB);
	assert_non_null(strstr(err.msg, "CSV row 2: a quoted field is not closed"));
	assert_int_equal(rows, 0);

	/* The server's error, its SQLSTATE and the CSV rows it came from:
	 * the 1500th, in the second batch, is among those named. */
	for (i = 1; i <= 2000; i++)
		buf_printf(&csv, "%s,v\n", i == 1500 ? "x1500" : "1");
	exec_ok(c, "begin");
	assert_int_equal(load(c, "lc_err", 2, csv.s, 0, &rows, &err), SLUICE_EDB);
	assert_string_equal(err.sqlstate, "22P02");
	if (strncmp(err.msg, "loading lc_err: CSV row", 23) ||
	    sscanf(err.msg + 23, "%*[s] %d to %d:", &first, &last) != 2 || first > 1500 ||
	    last < 1500 || first < 1001)
		fail_msg("%s", err.msg);
	assert_non_null(strstr(err.msg, "x1500"));
	exec_ok(c, "rollback");
	/* In the caller's transaction nothing stays. */
	assert_string_equal(scalar(c, "select count(*) from lc_err", &fv), "0");

	/* The source's own error comes back as it was. */
	assert_int_equal(c->drv->load_csv(c, "lc_err", 2, csv_read, &src, &rows, &err), SLUICE_EIO);
	assert_string_equal(err.msg, "loading lc_err: rows.csv: read error (test)");
	assert_int_equal(load(c, "no_such_table_lc", 2, "1,a\n", 0, &rows, &err), SLUICE_EDB);
	assert_string_equal(err.sqlstate, "42P01");
	assert_string_equal(scalar(c, "select 'usable'", &fv), "usable");
	exec_ok(c, "drop table lc_err");
	buf_release(&csv);
	odbc_connector.close(c);
}

/* ---- threads ---- */

/* Each worker thread connects and works on its own handles at once, as
 * the executor's workers do. */
struct worker {
	int id, failed;
	long long sum;
	char msg[2304];
};

static void *work(void *arg)
{
	struct worker *w = arg;
	struct val s = harness_settings();
	struct sluice_err err = SLUICE_ERR_INIT;
	struct sluice_conn *c = NULL;
	struct stream_check sc = { 0 };
	char sql[256];
	long long n = -1;
	int i;

	if (open_conn(&s, &c, &err)) {
		w->failed = 1;
		snprintf(w->msg, sizeof(w->msg), "connect: %s", err.msg);
		return NULL;
	}
	for (i = 0; i < 5 && !w->failed; i++) {
		memset(&sc, 0, sizeof(sc));
		snprintf(sql, sizeof(sql), "create temp table if not exists odbc_w%d (x int); "
			 "insert into odbc_w%d select g from generate_series(1, %d) g", w->id, w->id, 100 + w->id);
		if (c->drv->exec(c, sql, &n, &err) || n != 100 + w->id ||
		    c->drv->query(c, "select g::int as id, 'row ' || g as label, null::bigint as maybe "
				  "from generate_series(1, 20000) g", check_row, &sc, &err) ||
		    sc.rows != 20000) {
			w->failed = 1;
			snprintf(w->msg, sizeof(w->msg), "%s (rows %lld, count %lld)", err.msg, sc.rows, n);
		}
		w->sum += sc.sum;
	}
	odbc_connector.close(c);
	return NULL;
}

static void test_threads(void **state)
{
	struct worker w[4];
	pthread_t th[4];
	int i;
	(void)state;

	memset(w, 0, sizeof(w));
	for (i = 0; i < 4; i++) {
		w[i].id = i;
		assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
	}
	for (i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < 4; i++) {
		if (w[i].failed)
			fail_msg("worker %d: %s", i, w[i].msg);
		assert_int_equal(w[i].sum, 5 * 200010000LL);
	}
}

/* ---- about the connection ---- */

static void test_server_version(void **state)
{
	struct sluice_conn *c = connect_harness();
	struct sluice_err err = SLUICE_ERR_INIT;
	struct buf v = BUF_INIT, want = BUF_INIT;
	struct first_value fv;
	(void)state;

	/* As the server spells it ("15.18"), not psqlODBC ("15.0.18"). */
	assert_int_equal(c->drv->server_version(c, &v, &err), 0);
	buf_printf(&want, "PostgreSQL %s", scalar(c, "select split_part(current_setting('server_version'), ' ', 1)", &fv));
	assert_string_equal(v.s, want.s);
	buf_reset(&v);
	assert_int_equal(c->drv->driver_version(c, &v, &err), 0);
	assert_true(!strncmp(v.s, "psqlodbc", 8));
	assert_non_null(strchr(v.s, ' '));
	buf_release(&v);
	buf_release(&want);
	odbc_connector.close(c);
}

static void test_child_env(void **state)
{
	struct sluice_conn *c = connect_harness();
	struct sluice_err err = SLUICE_ERR_INIT;
	struct buf env = BUF_INIT, pwd = BUF_INIT;
	(void)state;

	assert_int_equal(c->drv->child_env(c, &env, &err), 0);
	assert_true(!strncmp(env.s, "SLUICE_ODBC_CONNECTION_STRING=Driver=", 37));
	assert_int_equal(env.s[env.len - 1], '\n');
	assert_ptr_equal(strchr(env.s, '\n'), env.s + env.len - 1);
	buf_printf(&pwd, ";PWD=%s;", pg_password);
	assert_non_null(strstr(env.s, pwd.s));
	assert_non_null(strstr(env.s, ";CommLog=0;"));
	assert_non_null(strstr(env.s, ";UseDeclareFetch=1;"));
	buf_release(&env);
	buf_release(&pwd);
	odbc_connector.close(c);
}

/* The secrets slot's list, joined with '|' after each, for comparing. */
static void assert_secrets(const struct sluice_connector *drv, const struct val *s, const char *want)
{
	const char **v = drv->secrets(s, &arena);
	struct buf got = BUF_INIT;

	for (; *v; v++)
		buf_printf(&got, "%s|", *v);
	assert_string_equal(got.s, want);
	buf_release(&got);
}

/* What a shell model's log must not show: the connection string whole,
 * then its password as meant and as brace-quoting writes it, then the
 * password keys. Nothing empty. */
static void test_secrets(void **state)
{
	struct val s;
	(void)state;

	s = settings("type", "odbc", "connection_string", "Driver=x;UID=u;PWD={a;b}}c};Server=h", NULL);
	assert_secrets(&odbc_connector, &s, "Driver=x;UID=u;PWD={a;b}}c};Server=h|a;b}c|a;b}}c|");
	s = settings("type", "odbc", "connection_string", "Driver=x;password=plain", "pwd", "k2", NULL);
	assert_secrets(&odbc_connector, &s, "Driver=x;password=plain|plain|k2|");
	s = settings("type", "odbc", "connection_string", "Driver=x;PWD={br;aced};Password=other", NULL);
	assert_secrets(&odbc_connector, &s, "Driver=x;PWD={br;aced};Password=other|br;aced|other|");
	s = settings("type", "odbc", "connection_string", "Driver=x;PWD=;Server=h", "password", "k1", NULL);
	assert_secrets(&odbc_connector, &s, "Driver=x;PWD=;Server=h|k1|");
	s = settings("type", "odbc", "dsn", "d", NULL);
	assert_secrets(&odbc_connector, &s, "");
	/* libpq's driver: dbt's two spellings */
	s = settings("type", "postgres", "password", "k1", "pass", "k2", "user", "u", NULL);
	assert_secrets(&pg_connector, &s, "k1|k2|");
	s = settings("type", "postgres", "password", "", NULL);
	assert_secrets(&pg_connector, &s, "");
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
			"test_odbc: %s is not set. This test needs the harness's PostgreSQL:\n"
			"  eval \"$(sh tests/harness/pg.sh start DIR)\"; export SLUICE_TEST_PGHOST "
			"SLUICE_TEST_PGPORT SLUICE_TEST_PGUSER SLUICE_TEST_PGPASSWORD\n", name);
		exit(1);
	}
	return v;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_brace_quoting),
		cmocka_unit_test(test_csv_parse),
		cmocka_unit_test(test_brace_quoting_end_to_end),
		cmocka_unit_test(test_connect_by_settings),
		cmocka_unit_test(test_connect_by_connection_string),
		cmocka_unit_test(test_wrong_password),
		cmocka_unit_test(test_password_echoed_is_scrubbed),
		cmocka_unit_test(test_unknown_driver),
		cmocka_unit_test(test_no_driver_log),
		cmocka_unit_test(test_resolve),
		cmocka_unit_test(test_exec_rows),
		cmocka_unit_test(test_exec_errors),
		cmocka_unit_test(test_transaction_as_sent),
		cmocka_unit_test(test_connection_lost),
		cmocka_unit_test(test_query_streams_rows),
		cmocka_unit_test(test_query_long_values),
		cmocka_unit_test(test_query_type_names),
		cmocka_unit_test(test_query_several_statements),
		cmocka_unit_test(test_query_stops_early),
		cmocka_unit_test(test_cancel_from_other_thread),
		cmocka_unit_test(test_load_csv_like_copy),
		cmocka_unit_test(test_load_csv_batches),
		cmocka_unit_test(test_load_csv_bounded_memory),
		cmocka_unit_test(test_load_csv_cancel),
		cmocka_unit_test(test_load_csv_errors),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_server_version),
		cmocka_unit_test(test_child_env),
		cmocka_unit_test(test_secrets),
	};

	pg_host = need_env("SLUICE_TEST_PGHOST");
	pg_port = need_env("SLUICE_TEST_PGPORT");
	pg_user = need_env("SLUICE_TEST_PGUSER");
	pg_password = need_env("SLUICE_TEST_PGPASSWORD");
	psqlodbc = getenv("SLUICE_TEST_ODBC_DRIVER");
	if (!psqlodbc || !*psqlodbc)
		psqlodbc = PSQLODBC_DEFAULT;
	if (access(psqlodbc, R_OK)) {
		fprintf(stderr, "test_odbc: no psqlODBC at %s: install the Debian package "
			"odbc-postgresql, or set SLUICE_TEST_ODBC_DRIVER\n", psqlodbc);
		return 1;
	}
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
