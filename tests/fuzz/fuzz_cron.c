/*
 * fuzz_cron.c: cron expressions (engine/cron.c). The input is an
 * expression, then optionally a line "%%" and a time zone name (fuzz.h).
 * An expression that parses is asked for its next three times after a
 * fixed instant, in that zone when it is one, else in UTC and in a zone
 * with DST gaps and repeated hours.
 */
#include <string.h>
#include "../../engine/cron.h"
#include "fuzz.h"

static void next_three(const struct cron *c, const char *tz)
{
	time_t t = 1774746000;   /* 2026-03-29 01:00 UTC: Europe/Berlin springs forward */
	char when[64];
	int i;

	for (i = 0; i < 3 && cron_next(c, tz, t, &t) == 0; i++)
		cron_format_local(t, tz, when, sizeof(when));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char expr[256], tz[128], why[256];
	const char *part[2];
	size_t len[2];
	struct cron c;

	fuzz_split(data, size, part, len, 2);
	if (len[0] >= sizeof(expr) || len[1] >= sizeof(tz))
		return 0;
	memcpy(expr, part[0], len[0]);
	expr[len[0]] = '\0';
	memcpy(tz, part[1], len[1]);
	tz[len[1]] = '\0';
	if (cron_parse(expr, &c, why, sizeof(why)) != 0)
		return 0;
	if (len[1] && cron_zone_ok(tz)) {
		next_three(&c, tz);
	} else {
		next_three(&c, "UTC");
		next_three(&c, "Europe/Berlin");
	}
	return 0;
}
