/* clock.c: CLOCK_MONOTONIC as seconds; see clock.h. */
#include <errno.h>
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
