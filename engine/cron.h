/*
 * cron.h: cron expressions and the next time one fires in an IANA time
 * zone. Pure computation: no clock, no I/O except reading the time zone
 * database (tzdata) through the C library.
 *
 * Expressions: five fields (minute hour day-of-month month day-of-week)
 * with `*`, lists `a,b`, ranges `a-b`, steps `*` `/n` and `a-b/n`, names
 * (JAN-DEC, SUN-SAT, 7 is Sunday too), and @hourly, @daily (@midnight),
 * @weekly, @monthly, @yearly (@annually). As in Vixie cron, when both
 * day fields are restricted a day matches either of them.
 *
 * Times are local wall-clock times in the zone. On the DST edges:
 *   - a local time that does not exist (the clock jumps 03:00 -> 04:00)
 *     fires once, at the first instant after the jump;
 *   - a local time that happens twice (04:00 -> 03:00) fires once, at
 *     the first of the two instants.
 *
 * Threads: cron_next switches the process's TZ (setenv + tzset), because
 * glibc converts local times only through TZ. Call it from the main
 * thread only, while no other thread converts local times (the scheduler
 * is single-threaded: its runs are child processes). TZ is restored on
 * return.
 */
#ifndef SLUICE_CRON_H
#define SLUICE_CRON_H

#include <stdint.h>
#include <time.h>

struct cron {
	uint64_t minute;     /* bit i: minute i (0-59) */
	uint32_t hour;       /* 0-23 */
	uint32_t dom;        /* 1-31 */
	uint16_t month;      /* 1-12 */
	uint8_t dow;         /* 0-6, Sunday 0 */
	int dom_any, dow_any;  /* the field was `*` */
};

/*
 * Parse expr. 0, or -1 with why (a sentence naming the field) written
 * into why[n].
 */
int cron_parse(const char *expr, struct cron *c, char *why, size_t n);

/*
 * Whether tz names a zone of the time zone database ("UTC" and "" are
 * UTC). glibc falls back to UTC for a name it cannot find, so this is
 * checked before use.
 */
int cron_zone_ok(const char *tz);

/*
 * The first time strictly after `after` (epoch seconds) when c fires in
 * zone tz: 0 and *next, or -1 when it never fires (e.g. "0 0 30 2 *")
 * within the next eight years.
 */
int cron_next(const struct cron *c, const char *tz, time_t after, time_t *next);

/* t as local time in tz, "2026-03-29 04:00 EEST", into out[n]. Same thread rule as cron_next. */
void cron_format_local(time_t t, const char *tz, char *out, size_t n);

#endif
