/* clock.c: CLOCK_MONOTONIC as seconds, sleeping, and the wall clock; see clock.h. */
#include <errno.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>
#include "clock.h"

double clock_monotonic(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);   /* cannot fail for CLOCK_MONOTONIC on Linux */
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

double now_seconds(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

void format_iso_time(double t, char *out, size_t n)
{
	time_t secs = (time_t)t;
	struct tm tm;
	char base[32];

	gmtime_r(&secs, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, n, "%s.%06dZ", base, (int)((t - (double)secs) * 1e6));
}
