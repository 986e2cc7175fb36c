/*
 * clock.h: the one monotonic clock, for timeouts, deadlines and elapsed
 * times. It never jumps when the wall clock is set, and its zero means
 * nothing: only differences between two readings do. For timestamps a
 * user reads (run_results.json, logs), use the wall clock instead.
 */
#ifndef SLUICE_CLOCK_H
#define SLUICE_CLOCK_H

/* Seconds on CLOCK_MONOTONIC, with nanosecond resolution. Never blocks. */
double clock_monotonic(void);
/* Sleep ms milliseconds, on through signals that interrupt it. */
void sleep_ms(long ms);

#endif
