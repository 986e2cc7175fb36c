/*
 * seed.c: a seed's CSV as a typed table, and back to CSV for COPY; see
 * seed.h for the rules. Seeds are small files (dbt's advice, and what
 * they are for), so the whole table is held in memory.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include "dialect.h"
#include "seed.h"
#include "util/xalloc.h"

/* ---- reading CSV ---- */

struct csv {
	const char *s;
	size_t len, at;
	int line;
	char delim;
};

/* One field into out (NUL-terminated, in a); *end_of_row when it ended a line. */
static int csv_field(struct csv *c, struct arena *a, const char **out, int *quoted, int *end_of_row)
{
	struct buf b = BUF_INIT;

	*quoted = 0;
	*end_of_row = 0;
	if (c->at < c->len && c->s[c->at] == '"') {
		int start = c->line;
		*quoted = 1;
		c->at++;
		for (;;) {
			if (c->at >= c->len) {
				buf_release(&b);
				return start;   /* unterminated: the line it started on */
			}
			if (c->s[c->at] == '"') {
				if (c->at + 1 < c->len && c->s[c->at + 1] == '"') {
					buf_addc(&b, '"');
					c->at += 2;
					continue;
				}
				c->at++;
				break;
			}
			if (c->s[c->at] == '\r' && c->at + 1 < c->len && c->s[c->at + 1] == '\n') {
				c->at++;   /* a CRLF inside quotes is one newline */
				continue;
			}
			if (c->s[c->at] == '\n')
				c->line++;
			buf_addc(&b, c->s[c->at++]);
		}
	}
	while (c->at < c->len && c->s[c->at] != c->delim && c->s[c->at] != '\n' && c->s[c->at] != '\r')
		buf_addc(&b, c->s[c->at++]);
	if (c->at >= c->len) {
		*end_of_row = 1;
	} else if (c->s[c->at] == c->delim) {
		c->at++;
	} else {
		if (c->s[c->at] == '\r')
			c->at++;
		if (c->at < c->len && c->s[c->at] == '\n')
			c->at++;
		c->line++;
		*end_of_row = 1;
	}
	*out = arena_strndup(a, b.s ? b.s : "", b.len);
	buf_release(&b);
	return 0;
}

/* One row; *n fields into a growing array in a. Returns 0, or the line of an unterminated quote. */
static int csv_row(struct csv *c, struct arena *a, const char ***fields, int **quoted, size_t *n)
{
	size_t cap = 8;
	int eor = 0, q, bad;

	*n = 0;
	*fields = arena_alloc(a, cap * sizeof(char *));
	*quoted = arena_alloc(a, cap * sizeof(int));
	while (!eor) {
		const char *f = NULL;
		if ((bad = csv_field(c, a, &f, &q, &eor)))
			return bad;
		if (*n == cap) {
			*fields = arena_grow(a, *fields, *n, cap * 2, sizeof(char *));
			*quoted = arena_grow(a, *quoted, *n, cap * 2, sizeof(int));
			cap *= 2;
		}
		(*fields)[*n] = f;
		(*quoted)[(*n)++] = q;
	}
	return 0;
}

static int is_blank_line(const struct csv *c)
{
	size_t i = c->at;

	while (i < c->len && (c->s[i] == ' ' || c->s[i] == '\t'))
		i++;
	return i >= c->len || c->s[i] == '\n' || c->s[i] == '\r';
}

static void skip_line(struct csv *c)
{
	while (c->at < c->len && c->s[c->at] != '\n')
		c->at++;
	if (c->at < c->len)
		c->at++;
	c->line++;
}

/* ---- types ---- */

static int is_null_text(const char *v)
{
	return !v || !*v || !strcasecmp(v, "null");
}

/* A number as Python's Decimal reads one; *frac: it has a fractional part or an exponent. */
static int is_number(const char *s, int *frac, int *big)
{
	const char *p = s;
	int digits = 0;
	char *end;
	long long v;

	*frac = 0;
	while (*p == ' ')
		p++;
	if (*p == '+' || *p == '-')
		p++;
	while (isdigit((unsigned char)*p))
		p++, digits++;
	if (*p == '.') {
		*frac = 1;
		for (p++; isdigit((unsigned char)*p); p++)
			digits++;
	}
	if (!digits)
		return 0;
	if (*p == 'e' || *p == 'E') {
		*frac = 1;
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!isdigit((unsigned char)*p))
			return 0;
		while (isdigit((unsigned char)*p))
			p++;
	}
	while (*p == ' ')
		p++;
	if (*p)
		return 0;
	if (!*frac) {
		errno = 0;
		v = strtoll(s, &end, 10);
		if (errno || v > INT_MAX || v < INT_MIN)
			*big = 1;
	}
	return 1;
}

static int digits_at(const char *s, size_t n, size_t min)
{
	size_t i;

	for (i = 0; i < n && isdigit((unsigned char)s[i]); i++)
		;
	return i >= min && i <= n ? (int)i : 0;
}

/* YYYY-M(M)-D(D); returns the length read, 0 if not a date. */
static size_t date_len(const char *s)
{
	size_t i = 0;
	int k;

	if (digits_at(s, 4, 4) != 4 || s[4] != '-')
		return 0;
	i = 5;
	if (!(k = digits_at(s + i, 2, 1)) || s[i + k] != '-')
		return 0;
	i += k + 1;
	if (!(k = digits_at(s + i, 2, 1)))
		return 0;
	return i + k;
}

static int is_date(const char *s)
{
	size_t n = date_len(s);

	return n && !s[n];
}

/* YYYY-MM-DD HH:MM:SS, or ISO 8601: T, fractions, Z or an offset. */
static int is_timestamp(const char *s)
{
	size_t n = date_len(s);
	const char *p;

	if (!n || (s[n] != ' ' && s[n] != 'T'))
		return 0;
	p = s + n + 1;
	if (digits_at(p, 2, 2) != 2 || p[2] != ':' || digits_at(p + 3, 2, 2) != 2)
		return 0;
	p += 5;
	if (*p == ':') {
		if (digits_at(p + 1, 2, 2) != 2)
			return 0;
		p += 3;
		if (*p == '.') {
			for (p++; isdigit((unsigned char)*p); p++)
				;
		}
	}
	if (!*p)
		return 1;
	if (s[n] != 'T')
		return 0;
	if (*p == 'Z')
		return !p[1];
	if ((*p == '+' || *p == '-') && digits_at(p + 1, 2, 2) == 2)
		return !p[3] || (p[3] == ':' && digits_at(p + 4, 2, 2) == 2 && !p[6]) ||
		       (digits_at(p + 3, 2, 2) == 2 && !p[5]);
	return 0;
}

static int is_bool(const char *s)
{
	return !strcasecmp(s, "true") || !strcasecmp(s, "false");
}

const char *seed_infer_type(const char *const *values, size_t n)
{
	int num = 1, date = 1, ts = 1, bl = 1, frac = 0, big = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		const char *v = values[i];
		int f = 0, bg = 0;
		if (!v)
			continue;
		if (num && is_number(v, &f, &bg)) {
			frac |= f;
			big |= bg;
		} else {
			num = 0;
		}
		date = date && is_date(v);
		ts = ts && is_timestamp(v);
		bl = bl && is_bool(v);
	}
	if (num)
		return frac ? "float8" : big ? "bigint" : "integer";
	if (date)
		return "date";
	if (ts)
		return "timestamp without time zone";
	if (bl)
		return "boolean";
	return "text";
}

/* ---- the table ---- */

int seed_parse(struct arena *a, const char *path, const char *src, size_t len, char delimiter,
	       const struct val *column_types, struct seed_table *t, struct sluice_err *err)
{
	struct csv c = { src, len, 0, 1, delimiter ? delimiter : ',' };
	const char **fields;
	int *quoted, bad;
	size_t n, cap = 64, i, r;

	memset(t, 0, sizeof(*t));
	if (len >= 3 && !memcmp(src, "\xEF\xBB\xBF", 3))
		c.at = 3;
	while (c.at < c.len && is_blank_line(&c))
		skip_line(&c);
	if (c.at >= c.len)
		return err_set(err, SLUICE_EUSAGE, "%s: the file is empty (a seed needs a header line)", path);
	if ((bad = csv_row(&c, a, &fields, &quoted, &n)))
		return err_set(err, SLUICE_EUSAGE, "%s:%d: a quoted field is not closed", path, bad);
	t->ncols = n;
	t->names = fields;
	for (i = 0; i < n; i++)
		if (!*fields[i])
			return err_set(err, SLUICE_EUSAGE, "%s:1: column %zu has no name", path, i + 1);
	t->rows = arena_alloc(a, cap * sizeof(*t->rows));
	while (c.at < c.len) {
		int line = c.line;
		if (is_blank_line(&c)) {
			skip_line(&c);
			continue;
		}
		if ((bad = csv_row(&c, a, &fields, &quoted, &n)))
			return err_set(err, SLUICE_EUSAGE, "%s:%d: a quoted field is not closed", path, bad);
		if (n != t->ncols)
			return err_set(err, SLUICE_EUSAGE, "%s:%d: %zu field%s, the header has %zu", path, line, n,
				       n == 1 ? "" : "s", t->ncols);
		for (i = 0; i < n; i++)
			if (is_null_text(fields[i]))
				fields[i] = NULL;
		if (t->nrows == cap) {
			t->rows = arena_grow(a, t->rows, t->nrows, cap * 2, sizeof(*t->rows));
			cap *= 2;
		}
		t->rows[t->nrows++] = fields;
	}
	t->types = arena_alloc(a, (t->ncols ? t->ncols : 1) * sizeof(char *));
	for (i = 0; i < t->ncols; i++) {
		const char *given = column_types ? val_get_str(column_types, t->names[i], NULL) : NULL;
		const char **col;
		if (given) {
			t->types[i] = given;
			continue;
		}
		col = xcalloc(t->nrows ? t->nrows : 1, sizeof(char *));
		for (r = 0; r < t->nrows; r++)
			col[r] = t->rows[r][i];
		t->types[i] = seed_infer_type(col, t->nrows);
		free(col);
	}
	return 0;
}

void seed_write_csv(const struct seed_table *t, struct buf *out)
{
	size_t r, c;

	for (r = 0; r < t->nrows; r++) {
		for (c = 0; c < t->ncols; c++) {
			const char *v = t->rows[r][c], *p;
			if (c)
				buf_addc(out, ',');
			if (!v)
				continue;
			buf_addc(out, '"');
			for (p = v; *p; p++) {
				if (*p == '"')
					buf_addc(out, '"');
				buf_addc(out, *p);
			}
			buf_addc(out, '"');
		}
		buf_addc(out, '\n');
	}
}

void seed_column_sql(const struct seed_table *t, size_t c, int quote_columns, struct buf *out)
{
	const char *name = t->names[c];

	if (quote_columns || !dialect_is_ident(name))
		dialect_quote_ident(out, name);
	else
		dialect_folded_ident(out, name);
}
