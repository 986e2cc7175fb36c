/*
 * test_semver.c: unit tests for engine/semver.c: which versions a
 * package's version range admits, and in which order versions sort.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "../../engine/semver.h"

static int cmp(const char *a, const char *b)
{
	struct semver x, y;

	assert_int_equal(semver_parse(a, &x), 0);
	assert_int_equal(semver_parse(b, &y), 0);
	return semver_cmp(&x, &y);
}

/* Whether version v is in the comma-separated range r. */
static int in_range(const char *r, const char *v, int prerelease)
{
	struct semver_req req[8];
	struct semver x;
	int n = semver_reqs_parse(r, req, 8);

	assert_true(n > 0);
	assert_int_equal(semver_parse(v, &x), 0);
	return semver_match(req, (size_t)n, &x, prerelease);
}

static void test_order(void **state)
{
	(void)state;
	assert_true(cmp("1.3.0", "1.2.9") > 0);
	assert_true(cmp("1.10.0", "1.9.0") > 0);   /* numbers, not text */
	assert_true(cmp("v1.3.0", "1.3.0") == 0);   /* tags may carry a v */
	assert_true(cmp("1.0.0-b1", "1.0.0") < 0);  /* a pre-release comes before its release */
	assert_true(cmp("1.0.0-rc.2", "1.0.0-rc.10") < 0);
	assert_true(cmp("1.0.0-1", "1.0.0-alpha") < 0);
	assert_true(cmp("1.0.0+build5", "1.0.0") == 0);
}

static void test_bad(void **state)
{
	struct semver v;
	struct semver_req r[4];

	(void)state;
	assert_int_equal(semver_parse("1.2", &v), -1);
	assert_int_equal(semver_parse("1.2.x", &v), -1);
	assert_int_equal(semver_parse("latest", &v), -1);
	assert_int_equal(semver_parse("1.2.3 4", &v), -1);
	assert_int_equal(semver_reqs_parse(">=1.0", r, 4), -1);
	assert_int_equal(semver_reqs_parse("=>1.0.0", r, 4), -1);
	assert_int_equal(semver_reqs_parse(">=1.0.0,", r, 4), -1);
	assert_int_equal(semver_reqs_parse("1.0.0,1.0.0,1.0.0,1.0.0,1.0.0", r, 4), -1);
}

static void test_ranges(void **state)
{
	(void)state;
	assert_true(in_range("1.3.0", "1.3.0", 0));
	assert_false(in_range("1.3.0", "1.3.1", 0));
	assert_true(in_range(">=1.0.0,<2.0.0", "1.9.9", 0));
	assert_false(in_range(">=1.0.0,<2.0.0", "2.0.0", 0));
	assert_false(in_range(">=1.0.0,<2.0.0", "0.9.9", 0));
	assert_true(in_range(">0.8.0, <=0.9.0", "0.9.0", 0));
	assert_false(in_range(">0.8.0", "0.8.0", 0));
	assert_true(in_range("==0.8.0", "v0.8.0", 0));
	/* pre-releases: only when asked for, or pinned */
	assert_false(in_range(">=1.0.0-a,<2.0.0", "1.5.0-b1", 0));
	assert_true(in_range(">=1.0.0,<2.0.0", "1.5.0-b1", 1));
	assert_true(in_range("1.5.0-b1", "1.5.0-b1", 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_ranges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
