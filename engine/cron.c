/*
 * cron.c: parsing cron expressions and finding the next time they fire
 * in a time zone, with the DST rules of cron.h. Not the scheduler's loop
 * or clock (cmd-schedule.c, schedule.c): only calendar arithmetic.
 *
 * The next time is found by walking local dates forward and, on a date
 * the day fields accept, trying its hours and minutes in order. Each
 * local time is turned into an instant with mktime() twice (as standard
 * time and as daylight time): the results that convert back to the same
 * wall clock are the instants it names; none means it falls in a gap.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cron.h"

static const char *const month_names[] = { "JAN", "FEB", "MAR", "APR", "MAY", "JUN",
					   "JUL", "AUG", "SEP", "OCT", "NOV", "DEC" };
static const char *const dow_names[] = { "SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT" };

struct field {
	const char *name;
	int lo, hi;
	const char *const *names;   /* names for lo, lo+1, ... or NULL */
	int nnames;
};

static const struct field fields[5] = {
	{ "minute", 0, 59, NULL, 0 },
	{ "hour", 0, 23, NULL, 0 },
	{ "day of month", 1, 31, NULL, 0 },
	{ "month", 1, 12, month_names, 12 },
	{ "day of week", 0, 7, dow_names, 7 },
};

/* A number or a name; advances *s. -1 when neither. */
static int field_value(const struct field *f, const char **s)
{
	int i, v = 0;

	if (isdigit((unsigned char)**s)) {
		while (isdigit((unsigned char)**s) && v < 1000)
			v = v * 10 + (*(*s)++ - '0');
		return v;
	}
	for (i = 0; i < f->nnames; i++)
		if (!strncasecmp(*s, f->names[i], 3)) {
			*s += 3;
			return f->lo + i;
		}
	return -1;
}

/* One field's text (without spaces) into a bit set. */
static int parse_field(const struct field *f, const char *s, uint64_t *bits, int *any, char *why, size_t n)
{
	const char *text = s;

	*bits = 0;
	*any = !strcmp(s, "*");
	for (;;) {
		int a, b, step = 1, v;
		if (*s == '*') {
			a = f->lo;
			b = f->hi == 7 ? 6 : f->hi;
			s++;
		} else {
			if ((a = field_value(f, &s)) < 0)
				goto bad;
			b = a;
			if (*s == '-') {
				s++;
				if ((b = field_value(f, &s)) < 0)
					goto bad;
			}
		}
		if (*s == '/') {
			s++;
			if (!isdigit((unsigned char)*s))
				goto bad;
			step = atoi(s);
			while (isdigit((unsigned char)*s))
				s++;
			if (step < 1)
				goto bad;
			if (a == b && text[0] != '*')
				b = f->hi == 7 ? 6 : f->hi;   /* "5/15": from 5 to the end */
		}
		if (a < f->lo || b > f->hi || a > b) {
			snprintf(why, n, "%s: '%s' is out of range %d-%d", f->name, text, f->lo, f->hi);
			return -1;
		}
		for (v = a; v <= b; v += step)
			*bits |= 1ULL << (f->hi == 7 && v == 7 ? 0 : v);
		if (*s == '\0')
			return 0;
		if (*s++ != ',')
			goto bad;
	}
bad:
	snprintf(why, n, "%s: cannot read '%s'", f->name, text);
	return -1;
}

static const struct { const char *name, *expr; } macros[] = {
	{ "@hourly", "0 * * * *" }, { "@daily", "0 0 * * *" }, { "@midnight", "0 0 * * *" },
	{ "@weekly", "0 0 * * 0" }, { "@monthly", "0 0 1 * *" }, { "@yearly", "0 0 1 1 *" },
	{ "@annually", "0 0 1 1 *" },
};

int cron_parse(const char *expr, struct cron *c, char *why, size_t n)
{
	char part[5][64];
	uint64_t bits[5];
	int any[5], i, k, len;
	const char *s = expr;

	memset(c, 0, sizeof(*c));
	while (isspace((unsigned char)*s))
		s++;
	if (*s == '@') {
		for (k = 0; k < (int)(sizeof(macros) / sizeof(macros[0])); k++)
			if (!strcasecmp(s, macros[k].name))
				return cron_parse(macros[k].expr, c, why, n);
		snprintf(why, n, "unknown '%s' (known: @hourly, @daily, @weekly, @monthly, @yearly)", s);
		return -1;
	}
	for (i = 0; i < 5; i++) {
		while (isspace((unsigned char)*s))
			s++;
		for (len = 0; s[len] && !isspace((unsigned char)s[len]); len++)
			;
		if (!len || len >= (int)sizeof(part[i])) {
			snprintf(why, n, "expected 5 fields (minute hour day-of-month month day-of-week), not '%s'", expr);
			return -1;
		}
		memcpy(part[i], s, (size_t)len);
		part[i][len] = '\0';
		s += len;
	}
	while (isspace((unsigned char)*s))
		s++;
	if (*s) {
		snprintf(why, n, "expected 5 fields (minute hour day-of-month month day-of-week), not '%s'", expr);
		return -1;
	}
	for (i = 0; i < 5; i++)
		if (parse_field(&fields[i], part[i], &bits[i], &any[i], why, n))
			return -1;
	c->minute = bits[0];
	c->hour = (uint32_t)bits[1];
	c->dom = (uint32_t)bits[2];
	c->month = (uint16_t)bits[3];
	c->dow = (uint8_t)bits[4];
	c->dom_any = any[2];
	c->dow_any = any[4];
	return 0;
}

int cron_zone_ok(const char *tz)
{
	const char *dir = getenv("TZDIR");
	char path[4096];

	if (!*tz || !strcmp(tz, "UTC"))
		return 1;
	if (tz[0] == '/' || strstr(tz, ".."))
		return 0;
	snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", tz);
	return access(path, R_OK) == 0;
}

/* A wall-clock minute as one comparable number. */
static long long wall_key(const struct tm *tm)
{
	return ((((long long)tm->tm_year * 12 + tm->tm_mon) * 31 + tm->tm_mday - 1) * 24 + tm->tm_hour) * 60 +
	       tm->tm_min;
}

static long long local_key(time_t t)
{
	struct tm tm;

	localtime_r(&t, &tm);
	return wall_key(&tm);
}

/*
 * The instant a local wall time (TZ already set) fires at: the earlier
 * of two when it happens twice, the end of the gap when it never does.
 */
static time_t local_instant(int year, int mon, int mday, int hour, int min)
{
	struct tm want = { 0 };
	time_t best = (time_t)-1, lo, hi;
	long long key;
	int dst;

	want.tm_year = year;
	want.tm_mon = mon;
	want.tm_mday = mday;
	want.tm_hour = hour;
	want.tm_min = min;
	key = wall_key(&want);
	for (dst = 0; dst <= 1; dst++) {
		struct tm tm = want;
		time_t t;
		tm.tm_isdst = dst;
		t = mktime(&tm);
		if (t != (time_t)-1 && local_key(t) == key && (best == (time_t)-1 || t < best))
			best = t;
	}
	if (best != (time_t)-1)
		return best;
	/* In a gap: the first instant whose wall clock is past it. Offsets lie within -12h..+14h. */
	lo = timegm(&want) - 15 * 3600;
	hi = timegm(&want) + 13 * 3600;
	while (hi - lo > 1) {
		time_t mid = lo + (hi - lo) / 2;
		if (local_key(mid) >= key)
			hi = mid;
		else
			lo = mid;
	}
	return hi;
}

static int day_matches(const struct cron *c, int mday, int wday)
{
	int dom = (c->dom >> mday) & 1, dow = (c->dow >> wday) & 1;

	if (c->dom_any || c->dow_any)
		return dom && dow;
	return dom || dow;
}

static int find_next(const struct cron *c, time_t after, time_t *next)
{
	struct tm start;
	int day;

	localtime_r(&after, &start);
	/* Back one day: a gap or a repeated hour can put the answer on the day before the wall clock says. */
	for (day = -1; day < 366 * 8; day++) {
		struct tm d = { 0 };
		time_t noon;
		int h, m;
		d.tm_year = start.tm_year;
		d.tm_mon = start.tm_mon;
		d.tm_mday = start.tm_mday + day;
		d.tm_hour = 12;
		noon = timegm(&d);      /* normalises the date and gives its weekday */
		gmtime_r(&noon, &d);
		if (!((c->month >> (d.tm_mon + 1)) & 1) || !day_matches(c, d.tm_mday, d.tm_wday))
			continue;
		for (h = 0; h < 24; h++) {
			if (!((c->hour >> h) & 1))
				continue;
			for (m = 0; m < 60; m++) {
				time_t t;
				if (!((c->minute >> m) & 1))
					continue;
				t = local_instant(d.tm_year, d.tm_mon, d.tm_mday, h, m);
				if (t > after) {
					*next = t;
					return 0;
				}
			}
		}
	}
	return -1;
}

/* Switch TZ to tz; returns what to give tz_restore. */
static char *tz_switch(const char *tz)
{
	const char *old = getenv("TZ");
	char *saved = old ? strdup(old) : NULL;

	setenv("TZ", tz && *tz ? tz : "UTC", 1);
	tzset();
	return saved;
}

static void tz_restore(char *saved)
{
	if (saved) {
		setenv("TZ", saved, 1);
		free(saved);
	} else {
		unsetenv("TZ");
	}
	tzset();
}

int cron_next(const struct cron *c, const char *tz, time_t after, time_t *next)
{
	char *saved = tz_switch(tz);
	int rc = find_next(c, after, next);

	tz_restore(saved);
	return rc;
}

void cron_format_local(time_t t, const char *tz, char *out, size_t n)
{
	char *saved = tz_switch(tz);
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(out, n, "%Y-%m-%d %H:%M %Z", &tm);
	tz_restore(saved);
}
