/*
 * clock.h: the one monotonic clock, for timeouts, deadlines and elapsed
 * times. It never jumps when the wall clock is set, and its zero means
 * nothing: only differences between two readings do. For timestamps a
 * user reads (run_results.json, logs), use the wall clock instead
 * (now_seconds, format_iso_time).
 */
#include <stddef.h>
#ifndef SLUICE_CLOCK_H
#define SLUICE_CLOCK_H

/* Seconds on CLOCK_MONOTONIC, with nanosecond resolution. Never blocks. */
double clock_monotonic(void);
/* Sleep ms milliseconds, on through signals that interrupt it. */
void sleep_ms(long ms);

/* Wall clock in epoch seconds, with microseconds. */
double now_seconds(void);
/* ISO 8601 UTC with microseconds, as dbt writes it. */
void format_iso_time(double t, char *out, size_t n);

#endif
