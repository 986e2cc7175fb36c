/*
 * test_retry.c: unit tests for engine/retry.c: which errors a scheduled
 * run retries, and the backoff.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "../../engine/retry.h"

static void test_transient(void **state)
{
	(void)state;
	assert_true(retry_transient("57P01", "terminating connection due to administrator command"));
	assert_true(retry_transient("57P03", "the database system is starting up"));
	assert_true(retry_transient("08006", "connection failure"));
	assert_true(retry_transient("08S01", "communication link failure"));
	assert_true(retry_transient("40001", "could not serialize access"));
	assert_true(retry_transient("40P01", "deadlock detected"));
	assert_true(retry_transient("", "connection to server at \"127.0.0.1\", port 1 failed: Connection refused"));
	assert_true(retry_transient(NULL, "server closed the connection unexpectedly"));
	assert_true(retry_transient("", "s3 PUT s3://b/k: InternalError: boom (HTTP 503)"));
}

static void test_permanent(void **state)
{
	(void)state;
	assert_false(retry_transient("42P01", "relation \"nope\" does not exist"));
	assert_false(retry_transient("22012", "division by zero"));
	/* the SQLSTATE decides, whatever the words say */
	assert_false(retry_transient("42601", "syntax error at or near \"connection refused\""));
	assert_false(retry_transient("", "s3 GET s3://b/k: NoSuchKey: gone (HTTP 404)"));
	assert_false(retry_transient("", "sluice.yml:3:5: unknown key"));
	assert_false(retry_transient(NULL, NULL));
}

static void test_backoff(void **state)
{
	(void)state;
	assert_true(retry_backoff(30, 2) == 30);
	assert_true(retry_backoff(30, 3) == 60);
	assert_true(retry_backoff(30, 4) == 120);
	assert_true(retry_backoff(30, 30) == 3600);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_transient),
		cmocka_unit_test(test_permanent),
		cmocka_unit_test(test_backoff),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
