/*
 * test_cron.c: unit tests for engine/cron.c: parsing (fields, names,
 * steps, macros, errors) and the next time in a zone, across the DST
 * edges of Europe/Athens and America/New_York (tzdata).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>
#include "../../engine/cron.h"

/* "2026-03-29T00:59:00Z" to epoch seconds. */
static time_t utc(const char *iso)
{
	struct tm tm = { 0 };

	assert_non_null(strptime(iso, "%Y-%m-%dT%H:%M:%SZ", &tm));
	return timegm(&tm);
}

static void iso(time_t t, char out[32])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The next n firing times of expr in tz after `after`, as UTC text joined by spaces. */
static void expect_next(const char *expr, const char *tz, const char *after, const char *want)
{
	struct cron c;
	char why[256], buf[1024] = "", one[32];
	time_t t = utc(after);
	const char *w;
	int n = 1;

	if (cron_parse(expr, &c, why, sizeof(why)))
		fail_msg("%s: %s", expr, why);
	for (w = want; *w; w++)
		n += *w == ' ';
	while (n--) {
		assert_int_equal(cron_next(&c, tz, t, &t), 0);
		iso(t, one);
		if (buf[0])
			strncat(buf, " ", sizeof(buf) - strlen(buf) - 1);
		strncat(buf, one, sizeof(buf) - strlen(buf) - 1);
	}
	if (strcmp(buf, want))
		fail_msg("%s in %s after %s:\n  want %s\n   got %s", expr, tz, after, want, buf);
}

static void test_parse(void **state)
{
	struct cron c;
	char why[256];

	(void)state;
	assert_int_equal(cron_parse("*/15 9-17 * JAN,jul mon-fri", &c, why, sizeof(why)), 0);
	assert_true(c.minute == ((1ULL << 0) | (1ULL << 15) | (1ULL << 30) | (1ULL << 45)));
	assert_int_equal(c.hour, 0x3fe00);
	assert_int_equal(c.month, (1 << 1) | (1 << 7));
	assert_int_equal(c.dow, 0x3e);
	assert_true(c.dom_any);
	assert_false(c.dow_any);
	assert_int_equal(cron_parse("0 0 * * 7", &c, why, sizeof(why)), 0);
	assert_int_equal(c.dow, 1);       /* 7 is Sunday */
	assert_int_equal(cron_parse("5/20 * * * *", &c, why, sizeof(why)), 0);
	assert_true(c.minute == ((1ULL << 5) | (1ULL << 25) | (1ULL << 45)));
	assert_int_equal(cron_parse("@daily", &c, why, sizeof(why)), 0);
	assert_true(c.minute == 1 && c.hour == 1);
	assert_int_equal(cron_parse("@hourly", &c, why, sizeof(why)), 0);
	assert_int_equal(c.hour, 0xffffff);
}

static void test_parse_errors(void **state)
{
	struct cron c;
	char why[256];

	(void)state;
	assert_int_equal(cron_parse("0 2 * *", &c, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "expected 5 fields"));
	assert_int_equal(cron_parse("60 2 * * *", &c, why, sizeof(why)), -1);
	assert_string_equal(why, "minute: '60' is out of range 0-59");
	assert_int_equal(cron_parse("0 2 * FOO *", &c, why, sizeof(why)), -1);
	assert_string_equal(why, "month: cannot read 'FOO'");
	assert_int_equal(cron_parse("0 2 * * 1-", &c, why, sizeof(why)), -1);
	assert_int_equal(cron_parse("*/0 * * * *", &c, why, sizeof(why)), -1);
	assert_int_equal(cron_parse("@sometimes", &c, why, sizeof(why)), -1);
	assert_int_equal(cron_parse("0 2 * * * *", &c, why, sizeof(why)), -1);
}

static void test_next_plain(void **state)
{
	(void)state;
	expect_next("0 2 * * *", "UTC", "2026-01-01T02:00:00Z", "2026-01-02T02:00:00Z 2026-01-03T02:00:00Z");
	expect_next("*/20 * * * *", "UTC", "2026-01-01T23:45:00Z", "2026-01-02T00:00:00Z 2026-01-02T00:20:00Z");
	/* Both day fields restricted: either matches (1st of the month, or a Monday). */
	expect_next("0 0 1 * MON", "UTC", "2026-01-31T00:00:00Z", "2026-02-01T00:00:00Z 2026-02-02T00:00:00Z");
	expect_next("0 0 29 FEB *", "UTC", "2026-01-01T00:00:00Z", "2028-02-29T00:00:00Z");
	/* Athens is UTC+2 in winter: 02:00 local is 00:00 UTC. */
	expect_next("0 2 * * *", "Europe/Athens", "2026-01-10T12:00:00Z", "2026-01-11T00:00:00Z");
}

static void test_next_never(void **state)
{
	struct cron c;
	char why[256];
	time_t t;

	(void)state;
	assert_int_equal(cron_parse("0 0 30 2 *", &c, why, sizeof(why)), 0);
	assert_int_equal(cron_next(&c, "UTC", utc("2026-01-01T00:00:00Z"), &t), -1);
}

/*
 * Europe/Athens, 2026-03-29: 03:00 EET (01:00 UTC) jumps to 04:00 EEST.
 * 03:30 does not exist that day: it fires once, at 04:00 local (01:00 UTC),
 * and the day after at 03:30 EEST (00:30 UTC).
 */
static void test_athens_spring(void **state)
{
	(void)state;
	expect_next("30 3 * * *", "Europe/Athens", "2026-03-28T12:00:00Z",
		    "2026-03-29T01:00:00Z 2026-03-30T00:30:00Z");
	/*
	 * Every quarter hour through the gap: 03:00, 03:15, 03:30, 03:45 and
	 * 04:00 fire once together, at 04:00 EEST; then 04:15.
	 */
	expect_next("*/15 3-4 * * *", "Europe/Athens", "2026-03-29T00:40:00Z",
		    "2026-03-29T01:00:00Z 2026-03-29T01:15:00Z 2026-03-29T01:30:00Z");
	/* A time before the gap is unaffected. */
	expect_next("0 2 * * *", "Europe/Athens", "2026-03-28T12:00:00Z",
		    "2026-03-29T00:00:00Z 2026-03-29T23:00:00Z");
}

/*
 * Europe/Athens, 2026-10-25: 04:00 EEST (01:00 UTC) goes back to 03:00 EET.
 * 03:30 happens twice (00:30 and 01:30 UTC): it fires once, the first time.
 */
static void test_athens_autumn(void **state)
{
	(void)state;
	expect_next("30 3 * * *", "Europe/Athens", "2026-10-24T12:00:00Z",
		    "2026-10-25T00:30:00Z 2026-10-26T01:30:00Z");
	expect_next("0 * * * *", "Europe/Athens", "2026-10-24T23:30:00Z",
		    "2026-10-25T00:00:00Z 2026-10-25T02:00:00Z 2026-10-25T03:00:00Z");
}

/*
 * America/New_York, 2026-03-08: 02:00 EST (07:00 UTC) jumps to 03:00 EDT;
 * 2026-11-01: 02:00 EDT (06:00 UTC) goes back to 01:00 EST.
 */
static void test_new_york(void **state)
{
	(void)state;
	expect_next("30 2 * * *", "America/New_York", "2026-03-07T12:00:00Z",
		    "2026-03-08T07:00:00Z 2026-03-09T06:30:00Z");
	expect_next("30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z",
		    "2026-11-01T05:30:00Z 2026-11-02T06:30:00Z");
	/* @daily at midnight, either side of the change */
	expect_next("@daily", "America/New_York", "2026-10-31T12:00:00Z",
		    "2026-11-01T04:00:00Z 2026-11-02T05:00:00Z");
}

static void test_zone_ok(void **state)
{
	(void)state;
	assert_true(cron_zone_ok("Europe/Athens"));
	assert_true(cron_zone_ok("UTC"));
	assert_false(cron_zone_ok("Europe/Athen"));
	assert_false(cron_zone_ok("../../etc/passwd"));
}

/* TZ is put back as it was. */
static void test_tz_restored(void **state)
{
	struct cron c;
	char why[256];
	time_t t;

	(void)state;
	setenv("TZ", "Asia/Tokyo", 1);
	assert_int_equal(cron_parse("@hourly", &c, why, sizeof(why)), 0);
	assert_int_equal(cron_next(&c, "Europe/Athens", 0, &t), 0);
	assert_string_equal(getenv("TZ"), "Asia/Tokyo");
	unsetenv("TZ");
	assert_int_equal(cron_next(&c, "Europe/Athens", 0, &t), 0);
	assert_null(getenv("TZ"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_next_plain),
		cmocka_unit_test(test_next_never),
		cmocka_unit_test(test_athens_spring),
		cmocka_unit_test(test_athens_autumn),
		cmocka_unit_test(test_new_york),
		cmocka_unit_test(test_zone_ok),
		cmocka_unit_test(test_tz_restored),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
