/*
 * test_shell.c: unit tests for engine/shell.c (quoting, durations, running
 * a script: exit status, log, tail, scrubbing, timeout, cancel, #! lines)
 * and engine/fileset.c (globs, directories, the size+mtime fast path).
 * Scripts run for real under /bin/sh in a scratch directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include <cmocka.h>
#include "../../engine/fileset.h"
#include "../../engine/shell.h"
#include "../../engine/util/clock.h"
#include "../../engine/util/fs.h"

static char dir[] = "/tmp/sluice-test-shell.XXXXXX";

static void put(const char *name, const char *text)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct buf path = BUF_INIT;

	buf_printf(&path, "%s/%s", dir, name);
	assert_int_equal(fs_mkdir_parent(path.s, &err), 0);
	assert_int_equal(fs_write_file(path.s, text, strlen(text), &err), 0);
	buf_release(&path);
}

static char *slurp(const char *name)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct buf path = BUF_INIT, b = BUF_INIT;

	buf_printf(&path, "%s/%s", dir, name);
	if (fs_read_file(path.s, &b, &err))
		buf_puts(&b, "(missing)");
	buf_release(&path);
	return buf_detach(&b, NULL);
}

/* ---- quoting and durations ---- */

static void test_escape_dq(void **state)
{
	struct buf b = BUF_INIT;

	(void)state;
	shell_escape_dq(&b, "\"analytics\".\"orders\"");
	assert_string_equal(b.s, "\\\"analytics\\\".\\\"orders\\\"");
	buf_reset(&b);
	shell_escape_dq(&b, "\"a$b`c\\d\"\"e\"");
	assert_string_equal(b.s, "\\\"a\\$b\\`c\\\\d\\\"\\\"e\\\"");
	buf_release(&b);
}

/* What sh makes of the escaped relation inside "..." and as a bare word. */
static void test_escape_dq_through_sh(void **state)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct buf rel = BUF_INIT, script = BUF_INIT, log = BUF_INIT;
	struct shell_cmd cmd = { 0 };
	struct shell_proc p;
	char *got;

	(void)state;
	shell_escape_dq(&rel, "\"my $chema\".\"o`x\\\"\"y\"");
	buf_printf(&script, "printf '%%s\\n' \"select * from %s;\" > out.txt\nprintf '%%s\\n' %s >> out.txt\n",
		   rel.s, rel.s);
	put("quote.sh", script.s);
	buf_printf(&log, "%s/quote.log", dir);
	cmd.script = script.s;
	cmd.script_path = "quote.sh";
	cmd.dir = dir;
	cmd.log_path = log.s;
	shell_proc_init(&p, "t", NULL);
	assert_int_equal(shell_run(&cmd, &p, NULL, &err), 0);
	got = slurp("out.txt");
	/* the bare word splits at the space: inside quotes it does not */
	assert_string_equal(got, "select * from \"my $chema\".\"o`x\\\"\"y\";\n\"my\n$chema\".\"o`x\\\"\"y\"\n");
	free(got);
	buf_release(&rel);
	buf_release(&script);
	buf_release(&log);
}

/* A timeout's seconds, or -1 when it is not a duration. */
static double timeout_of(const struct val *v)
{
	double secs;

	return val_duration(v, &secs) ? -1 : secs;
}

static void test_durations(void **state)
{
	(void)state;
	assert_true(timeout_of(&(struct val){ V_NUM, { .num = 12 } }) == 12);
	assert_true(timeout_of(&(struct val){ V_STR, { .str = { "90s", 3 } } }) == 90);
	assert_true(timeout_of(&(struct val){ V_STR, { .str = { "10m", 3 } } }) == 600);
	assert_true(timeout_of(&(struct val){ V_STR, { .str = { "1.5h", 4 } } }) == 5400);
	assert_true(timeout_of(&(struct val){ V_STR, { .str = { "2d", 2 } } }) == 172800);
	assert_true(timeout_of(&(struct val){ V_STR, { .str = { "45", 2 } } }) == 45);
	assert_true(timeout_of(&(struct val){ V_STR, { .str = { "soon", 4 } } }) < 0);
	assert_true(timeout_of(&(struct val){ V_STR, { .str = { "5 weeks", 7 } } }) < 0);
	assert_true(timeout_of(&(struct val){ V_STR, { .str = { "-1s", 3 } } }) < 0);
	assert_true(timeout_of(&(struct val){ V_BOOL, { .b = 1 } }) < 0);
}

/* ---- running ---- */

struct run {
	struct shell_cmd cmd;
	struct shell_proc p;
	struct shell_result res;
	struct sluice_err err;
	struct buf log;
	int rc;
};

static void run_script(struct run *r, const char *name, const char *text, double timeout,
		       const char *env, const char *const *secrets)
{
	memset(r, 0, sizeof(*r));
	buf_init(&r->log);
	put(name, text);
	buf_printf(&r->log, "%s/logs/%s.log", dir, name);
	r->cmd.script = text;
	r->cmd.script_path = name;
	r->cmd.dir = dir;
	r->cmd.env = env;
	r->cmd.log_path = r->log.s;
	r->cmd.secrets = secrets;
	r->cmd.timeout = timeout;
	r->cmd.grace = 1;
	shell_proc_init(&r->p, "t", NULL);
	r->rc = shell_run(&r->cmd, &r->p, &r->res, &r->err);
}

static void run_release(struct run *r)
{
	shell_result_release(&r->res);
	buf_release(&r->log);
}

static void test_run_ok_env_and_log(void **state)
{
	struct run r;
	char *log;

	(void)state;
	setenv("SLUICE_TEST_KEEP", "inherited", 1);
	setenv("SLUICE_TEST_OVER", "old", 1);
	run_script(&r, "ok.sh", "echo \"$SLUICE_TEST_KEEP $SLUICE_TEST_OVER $SLUICE_TEST_NEW\"\necho to stderr >&2\n"
		   "pwd\nread x || echo stdin is empty\n", 0,
		   "SLUICE_TEST_OVER=new\nSLUICE_TEST_NEW=a=b c\n", NULL);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.res.status, 0);
	log = slurp("logs/ok.sh.log");
	assert_non_null(strstr(log, "inherited new a=b c\nto stderr\n"));
	assert_non_null(strstr(log, dir));
	assert_non_null(strstr(log, "stdin is empty\n[sluice] exited with status 0 after "));
	free(log);
	run_release(&r);
}

static void test_run_failure_tail_and_scrub(void **state)
{
	const char *const secrets[] = { "hunter22", NULL };
	struct run r;
	char *log;

	(void)state;
	run_script(&r, "fail.sh",
		   "i=1; while [ $i -le 30 ]; do echo line $i; i=$((i+1)); done\n"
		   "echo \"password is hunter22, twice: hunter22\"\nprintf 'no newline'\nexit 3\n",
		   0, NULL, secrets);
	assert_int_equal(r.rc, SLUICE_EDB);
	assert_int_equal(r.res.status, 3);
	/* the last 20 lines, oldest first, scrubbed: lines 1 to 12 are gone */
	assert_non_null(strstr(r.err.msg, "exited with status 3; last lines of "));
	assert_null(strstr(r.err.msg, "line 12\n"));
	assert_non_null(strstr(r.err.msg, ".log:\n    | line 13\n"));
	assert_non_null(strstr(r.err.msg, "    | line 30\n    | password is ***, twice: ***\n    | no newline"));
	assert_null(strstr(r.err.msg, "hunter22"));
	log = slurp("logs/fail.sh.log");
	assert_non_null(strstr(log, "line 1\n"));
	assert_non_null(strstr(log, "password is ***, twice: ***\nno newline"));
	assert_null(strstr(log, "hunter22"));
	free(log);
	run_release(&r);
}

static void test_run_shebang(void **state)
{
	struct run r;
	char *log;

	(void)state;
	/* the #! line picks the interpreter, with its one argument */
	run_script(&r, "awk.sh", "#!/usr/bin/awk -f\nBEGIN { print \"from awk\"; exit 4 }\n", 0, NULL, NULL);
	assert_int_equal(r.res.status, 4);
	log = slurp("logs/awk.sh.log");
	assert_non_null(strstr(log, "from awk\n"));
	free(log);
	run_release(&r);

	run_script(&r, "none.sh", "#!/no/such/interpreter\necho hi\n", 0, NULL, NULL);
	assert_int_equal(r.rc, SLUICE_EIO);
	assert_non_null(strstr(r.err.msg, "cannot start /no/such/interpreter (the script's #! line)"));
	run_release(&r);
}

static int alive(pid_t pid)
{
	char path[64], stat[256];
	FILE *f;
	int running = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (!(f = fopen(path, "r")))
		return 0;
	if (fgets(stat, sizeof(stat), f) && strrchr(stat, ')'))
		running = strrchr(stat, ')')[2] != 'Z';
	fclose(f);
	return running;
}

static void test_run_timeout_kills_group(void **state)
{
	struct run r;
	char *pid;
	double t0, secs;

	(void)state;
	t0 = clock_monotonic();
	run_script(&r, "slow.sh", "sleep 300 &\necho $! > sleep.pid\necho started\nwait\n", 0.5, NULL, NULL);
	secs = clock_monotonic() - t0;
	assert_int_equal(r.rc, SLUICE_EDB);
	assert_true(r.res.timed_out);
	assert_non_null(strstr(r.err.msg, "timed out after 0.5s"));
	assert_non_null(strstr(r.err.msg, "    | started"));
	assert_true(secs < 3);
	pid = slurp("sleep.pid");
	assert_false(alive((pid_t)atoi(pid)));
	free(pid);
	run_release(&r);
}

static void test_run_term_ignored_then_kill(void **state)
{
	struct run r;

	(void)state;
	/* TERM is trapped: KILL follows after the grace (1 s here) */
	run_script(&r, "stubborn.sh", "trap 'echo got TERM' TERM\nwhile :; do sleep 0.05; done\n", 0.3, NULL, NULL);
	assert_int_equal(r.rc, SLUICE_EDB);
	assert_true(r.res.timed_out);
	assert_int_equal(r.res.signo, SIGKILL);
	assert_true(r.res.elapsed >= 1.2 && r.res.elapsed < 4);
	run_release(&r);
}

static void *cancel_later(void *arg)
{
	struct shell_proc *p = arg;
	struct timespec d = { 0, 300 * 1000 * 1000 };

	nanosleep(&d, NULL);
	p->base.drv->cancel(&p->base);
	return NULL;
}

static void test_run_cancel_forwards_signal(void **state)
{
	const char *text = "sh -c 'trap \"echo child got INT > int.txt; exit 9\" INT; while :; do sleep 0.05; done'\n";
	struct sluice_err err = SLUICE_ERR_INIT;
	struct shell_cmd cmd = { 0 };
	struct buf log = BUF_INIT;
	struct shell_proc p;
	pthread_t t;
	char *got;
	int signo = SIGINT, rc;

	(void)state;
	put("cancel.sh", text);
	buf_printf(&log, "%s/logs/cancel.log", dir);
	cmd.script = text;
	cmd.script_path = "cancel.sh";
	cmd.dir = dir;
	cmd.log_path = log.s;
	cmd.grace = 1;
	shell_proc_init(&p, "t", &signo);
	pthread_create(&t, NULL, cancel_later, &p);
	rc = shell_run(&cmd, &p, NULL, &err);
	pthread_join(t, NULL);
	assert_int_equal(rc, SLUICE_ECANCEL);
	assert_non_null(strstr(err.msg, "cancelled"));
	got = slurp("int.txt");
	assert_string_equal(got, "child got INT\n");
	free(got);
	buf_release(&log);
}

/* ---- fileset ---- */

static void set_mtime(const char *name, time_t sec)
{
	struct buf path = BUF_INIT;
	struct timespec ts[2] = { { sec, 0 }, { sec, 0 } };

	buf_printf(&path, "%s/%s", dir, name);
	assert_int_equal(utimensat(AT_FDCWD, path.s, ts, 0), 0);
	buf_release(&path);
}

static void test_fileset_globs_and_fast_path(void **state)
{
	struct arena a = ARENA_INIT;
	struct sluice_err err = SLUICE_ERR_INIT;
	struct val pats = val_list_new(), first, second;
	size_t rehashed;
	char hash[33];
	struct buf path = BUF_INIT;

	(void)state;
	put("ref/b.csv", "b\n");
	put("ref/a.csv", "a\n");
	put("ref/skip.txt", "x\n");
	put("ref/deep/c.csv", "c\n");
	put("ref/deep/.hidden.csv", "h\n");
	put("ref/deep/more/d.txt", "d\n");
	set_mtime("ref/a.csv", 1000);
	val_list_push(&a, &pats, val_str("ref/*.csv"));
	val_list_push(&a, &pats, val_str("ref/{a,b}.csv"));   /* overlaps: listed once */
	val_list_push(&a, &pats, val_str("ref/deep"));        /* a directory: everything under it */
	val_list_push(&a, &pats, val_str("ref/none-*.csv"));  /* matches nothing: fine */
	assert_int_equal(fileset_scan(dir, &pats, FILESET_GLOB, NULL, &a, &first, &rehashed, &err), 0);
	assert_int_equal(first.u.dict.n, 4);
	assert_string_equal(first.u.dict.keys[0], "ref/a.csv");
	assert_string_equal(first.u.dict.keys[1], "ref/b.csv");
	assert_string_equal(first.u.dict.keys[2], "ref/deep/c.csv");
	assert_string_equal(first.u.dict.keys[3], "ref/deep/more/d.txt");
	assert_int_equal(rehashed, 4);
	buf_printf(&path, "%s/ref/a.csv", dir);
	assert_int_equal(fileset_hash_file(path.s, hash, &err), 0);
	assert_string_equal(val_get_str(val_get(&first, "ref/a.csv"), "hash", ""), hash);
	assert_string_equal(val_get_str(val_get(&first, "ref/a.csv"), "mtime_ns", ""), "1000000000000");
	assert_int_equal(val_get_int(val_get(&first, "ref/a.csv"), "size", -1), 2);

	/* nothing moved: nothing is read */
	assert_int_equal(fileset_scan(dir, &pats, FILESET_GLOB, &first, &a, &second, &rehashed, &err), 0);
	assert_int_equal(rehashed, 0);

	/* touched, same content: read again, same hash, new mtime */
	set_mtime("ref/a.csv", 2000);
	assert_int_equal(fileset_scan(dir, &pats, FILESET_GLOB, &first, &a, &second, &rehashed, &err), 0);
	assert_int_equal(rehashed, 1);
	assert_string_equal(val_get_str(val_get(&second, "ref/a.csv"), "hash", ""), hash);
	assert_string_equal(val_get_str(val_get(&second, "ref/a.csv"), "mtime_ns", ""), "2000000000000");

	/* same size and mtime but other content: the fast path trusts the stats (as documented) */
	put("ref/a.csv", "z\n");
	set_mtime("ref/a.csv", 2000);
	assert_int_equal(fileset_scan(dir, &pats, FILESET_GLOB, &second, &a, &first, &rehashed, &err), 0);
	assert_int_equal(rehashed, 0);
	/* without a previous scan, the new content shows */
	assert_int_equal(fileset_scan(dir, &pats, FILESET_GLOB, NULL, &a, &first, &rehashed, &err), 0);
	assert_string_not_equal(val_get_str(val_get(&first, "ref/a.csv"), "hash", ""), hash);

	/* unreadable: an error naming the file (not as root, who reads anything) */
	if (geteuid() != 0) {
		assert_int_equal(chmod(path.s, 0), 0);
		assert_int_equal(fileset_scan(dir, &pats, FILESET_GLOB, NULL, &a, &first, &rehashed, &err), SLUICE_EIO);
		assert_non_null(strstr(err.msg, "'ref/a.csv'"));
		chmod(path.s, 0644);
	}
	buf_release(&path);
	arena_release(&a);
}

static void test_fileset_paths(void **state)
{
	struct arena a = ARENA_INIT;
	struct sluice_err err = SLUICE_ERR_INIT;
	struct val paths = val_list_new(), out;

	(void)state;
	put("out/x.csv", "x\n");
	val_list_push(&a, &paths, val_str("out/x.csv"));
	val_list_push(&a, &paths, val_str("out/missing.csv"));
	val_list_push(&a, &paths, val_str("out/*.csv"));   /* not a pattern here: a name that does not exist */
	assert_int_equal(fileset_scan(dir, &paths, FILESET_PATHS, NULL, &a, &out, NULL, &err), 0);
	assert_int_equal(out.u.dict.n, 1);
	assert_non_null(val_get(&out, "out/x.csv"));
	/* a directory is not an output file */
	paths = val_list_new();
	val_list_push(&a, &paths, val_str("out"));
	assert_int_equal(fileset_scan(dir, &paths, FILESET_PATHS, NULL, &a, &out, NULL, &err), SLUICE_EIO);
	assert_non_null(strstr(err.msg, "'out' is not a regular file"));
	arena_release(&a);
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	struct sluice_err err = SLUICE_ERR_INIT;

	(void)state;
	return fs_remove_tree(dir, &err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape_dq),
		cmocka_unit_test(test_escape_dq_through_sh),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_run_ok_env_and_log),
		cmocka_unit_test(test_run_failure_tail_and_scrub),
		cmocka_unit_test(test_run_shebang),
		cmocka_unit_test(test_run_timeout_kills_group),
		cmocka_unit_test(test_run_term_ignored_then_kill),
		cmocka_unit_test(test_run_cancel_forwards_signal),
		cmocka_unit_test(test_fileset_globs_and_fast_path),
		cmocka_unit_test(test_fileset_paths),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
