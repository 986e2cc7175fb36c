/*
 * semver.c: versions and ranges for package resolution (semver.h). The
 * order is semantic versioning's: numbers compare as numbers, a
 * pre-release sorts before its release, and pre-release identifiers
 * compare numerically when both are numbers, as text otherwise.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "semver.h"

static int parse_num(const char **s, long *out)
{
	const char *p = *s;
	long n = 0;

	if (!isdigit((unsigned char)*p))
		return -1;
	while (isdigit((unsigned char)*p)) {
		if (n > 100000000)
			return -1;
		n = n * 10 + (*p++ - '0');
	}
	*out = n;
	*s = p;
	return 0;
}

int semver_parse(const char *s, struct semver *v)
{
	const char *p = s, *end;
	size_t len;

	memset(v, 0, sizeof(*v));
	while (*p == ' ')
		p++;
	if (*p == 'v' || *p == 'V')
		p++;
	if (parse_num(&p, &v->major) || *p++ != '.' || parse_num(&p, &v->minor) || *p++ != '.' ||
	    parse_num(&p, &v->patch))
		return -1;
	if (*p == '-') {
		p++;
		end = p;
		while (isalnum((unsigned char)*end) || *end == '.' || *end == '-')
			end++;
		len = (size_t)(end - p);
		if (!len || len >= sizeof(v->pre))
			return -1;
		memcpy(v->pre, p, len);
		v->pre[len] = '\0';
		p = end;
	}
	if (*p == '+') {
		p++;
		if (!isalnum((unsigned char)*p))
			return -1;
		while (isalnum((unsigned char)*p) || *p == '.' || *p == '-')
			p++;
	}
	while (*p == ' ')
		p++;
	return *p ? -1 : 0;
}

static int all_digits(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return 0;
	return n > 0;
}

static int cmp_pre(const char *a, const char *b)
{
	if (!*a || !*b)
		return !*a && !*b ? 0 : !*a ? 1 : -1;   /* a release sorts after its pre-releases */
	for (;;) {
		size_t la = strcspn(a, "."), lb = strcspn(b, ".");
		int da = all_digits(a, la), db = all_digits(b, lb), c;
		if (da && db) {
			long na = strtol(a, NULL, 10), nb = strtol(b, NULL, 10);
			c = na < nb ? -1 : na > nb;
		} else if (da != db) {
			c = da ? -1 : 1;   /* numbers sort before words */
		} else {
			c = strncmp(a, b, la < lb ? la : lb);
			if (!c)
				c = la < lb ? -1 : la > lb;
		}
		if (c)
			return c;
		a += la;
		b += lb;
		if (!*a || !*b)
			return !*a && !*b ? 0 : !*a ? -1 : 1;
		a++;
		b++;
	}
}

int semver_cmp(const struct semver *a, const struct semver *b)
{
	if (a->major != b->major)
		return a->major < b->major ? -1 : 1;
	if (a->minor != b->minor)
		return a->minor < b->minor ? -1 : 1;
	if (a->patch != b->patch)
		return a->patch < b->patch ? -1 : 1;
	return cmp_pre(a->pre, b->pre);
}

int semver_req_parse(const char *s, struct semver_req *r)
{
	while (*s == ' ')
		s++;
	r->op = SEMVER_EQ;
	if (s[0] == '>' && s[1] == '=')
		r->op = SEMVER_GE, s += 2;
	else if (s[0] == '<' && s[1] == '=')
		r->op = SEMVER_LE, s += 2;
	else if (s[0] == '=' && s[1] == '=')
		s += 2;
	else if (s[0] == '>')
		r->op = SEMVER_GT, s++;
	else if (s[0] == '<')
		r->op = SEMVER_LT, s++;
	else if (s[0] == '=')
		s++;
	return semver_parse(s, &r->v);
}

int semver_reqs_parse(const char *s, struct semver_req *out, size_t cap)
{
	char piece[128];
	size_t n = 0;

	for (;;) {
		size_t len = strcspn(s, ",");
		if (len >= sizeof(piece) || n == cap)
			return -1;
		memcpy(piece, s, len);
		piece[len] = '\0';
		if (semver_req_parse(piece, &out[n++]))
			return -1;
		if (!s[len])
			return (int)n;
		s += len + 1;
	}
}

int semver_match(const struct semver_req *r, size_t n, const struct semver *v, int prerelease)
{
	size_t i;
	int named = 0;

	for (i = 0; i < n; i++) {
		int c = semver_cmp(v, &r[i].v);
		int ok = r[i].op == SEMVER_EQ ? c == 0 : r[i].op == SEMVER_GT ? c > 0 : r[i].op == SEMVER_GE ? c >= 0 :
			 r[i].op == SEMVER_LT ? c < 0 : c <= 0;
		if (!ok)
			return 0;
		if (v->pre[0] && !c)
			named = 1;
	}
	return !v->pre[0] || prerelease || named;
}

void semver_format(const struct semver *v, char *out, size_t cap)
{
	snprintf(out, cap, "%ld.%ld.%ld%s%s", v->major, v->minor, v->patch, v->pre[0] ? "-" : "", v->pre);
}
