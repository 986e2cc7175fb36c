/*
 * value.c: the dynamic value type; see value.h. Knows nothing of templates
 * or YAML, only how values are built, compared and printed.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "value.h"

struct val val_bool(int b)
{
	struct val v = { V_BOOL, { 0 } };
	v.u.b = !!b;
	return v;
}

struct val val_num(double n)
{
	struct val v = { V_NUM, { 0 } };
	v.u.num = n;
	return v;
}

struct val val_strn(const char *s, size_t len)
{
	struct val v = { V_STR, { 0 } };
	v.u.str.s = s;
	v.u.str.len = len;
	return v;
}

struct val val_str(const char *s)
{
	return val_strn(s, strlen(s));
}

struct val val_str_dup(struct arena *a, const char *s, size_t len)
{
	return val_strn(arena_strndup(a, s, len), len);
}

struct val val_list_new(void)
{
	struct val v = { V_LIST, { 0 } };
	return v;
}

struct val val_dict_new(void)
{
	struct val v = { V_DICT, { 0 } };
	return v;
}

/* Capacity is implicit: the next power of two >= n (min 4). */
static size_t cap_for(size_t n)
{
	size_t c = 4;

	while (c < n)
		c *= 2;
	return c;
}

struct val val_list_of(struct arena *a, size_t n)
{
	struct val v = val_list_new();

	if (n) {
		v.u.list.items = arena_alloc(a, cap_for(n) * sizeof(struct val));
		v.u.list.n = n;
	}
	return v;
}

struct val val_dict_of(struct arena *a, size_t n)
{
	struct val v = val_dict_new();

	if (n) {
		v.u.dict.keys = arena_alloc(a, cap_for(n) * sizeof(char *));
		v.u.dict.vals = arena_alloc(a, cap_for(n) * sizeof(struct val));
		v.u.dict.n = n;
	}
	return v;
}

void val_list_push(struct arena *a, struct val *list, struct val item)
{
	size_t n = list->u.list.n;

	if (n == 0 || (n >= 4 && (n & (n - 1)) == 0))
		list->u.list.items = arena_grow(a, list->u.list.items, n, cap_for(n + 1), sizeof(struct val));
	list->u.list.items[n] = item;
	list->u.list.n = n + 1;
}

void val_dict_set(struct arena *a, struct val *dict, const char *key, struct val v)
{
	size_t i, n = dict->u.dict.n;

	for (i = 0; i < n; i++)
		if (!strcmp(dict->u.dict.keys[i], key)) {
			dict->u.dict.vals[i] = v;
			return;
		}
	val_dict_append(a, dict, key, v);
}

void val_dict_append(struct arena *a, struct val *dict, const char *key, struct val v)
{
	size_t n = dict->u.dict.n;

	if (n == 0 || (n >= 4 && (n & (n - 1)) == 0)) {
		dict->u.dict.keys = arena_grow(a, dict->u.dict.keys, n, cap_for(n + 1), sizeof(char *));
		dict->u.dict.vals = arena_grow(a, dict->u.dict.vals, n, cap_for(n + 1), sizeof(struct val));
	}
	dict->u.dict.keys[n] = key;
	dict->u.dict.vals[n] = v;
	dict->u.dict.n = n + 1;
}

const struct val *val_get(const struct val *dict, const char *key)
{
	size_t i;

	if (!dict || dict->kind != V_DICT)
		return NULL;
	for (i = 0; i < dict->u.dict.n; i++)
		if (!strcmp(dict->u.dict.keys[i], key))
			return &dict->u.dict.vals[i];
	return NULL;
}

const char *val_get_str(const struct val *dict, const char *key, const char *def)
{
	const struct val *v = val_get(dict, key);

	return v && v->kind == V_STR ? v->u.str.s : def;
}

const char *val_get_text(const struct val *dict, const char *key, char *tmp, size_t cap)
{
	const struct val *v = val_get(dict, key);

	if (v && v->kind == V_NUM) {
		snprintf(tmp, cap, "%lld", (long long)v->u.num);
		return tmp;
	}
	return v && v->kind == V_STR ? v->u.str.s : NULL;
}

long long val_num_ll(double d)
{
	if (isnan(d))
		return 0;
	return d >= 1e18 ? (long long)1e18 : d <= -1e18 ? -(long long)1e18 : (long long)d;
}

long long val_get_int(const struct val *dict, const char *key, long long def)
{
	const struct val *v = val_get(dict, key);
	char *end;
	long long n;

	if (!v)
		return def;
	if (v->kind == V_NUM)
		return val_num_ll(v->u.num);   /* port: 4e105 is out of any range check, not undefined */
	if (v->kind == V_STR) {
		n = strtoll(v->u.str.s, &end, 10);
		if (end != v->u.str.s && !*end)
			return n;
	}
	return def;
}

int val_get_bool(const struct val *dict, const char *key, int def)
{
	const struct val *v = val_get(dict, key);

	if (!v)
		return def;
	if (v->kind == V_STR)
		return !strcasecmp(v->u.str.s, "true") || !strcmp(v->u.str.s, "1") || !strcasecmp(v->u.str.s, "yes");
	return val_truthy(v);
}

int val_truthy(const struct val *v)
{
	switch (v->kind) {
	case V_NONE: return 0;
	case V_BOOL: return v->u.b;
	case V_NUM: return v->u.num != 0;
	case V_STR: return v->u.str.len != 0;
	case V_LIST: return v->u.list.n != 0;
	case V_DICT: return v->u.dict.n != 0;
	case V_FUNC: return 1;
	}
	return 0;
}

int val_equal(const struct val *a, const struct val *b)
{
	size_t i;

	if (a->kind != b->kind) {
		/* Python: True == 1 */
		if ((a->kind == V_BOOL || a->kind == V_NUM) && (b->kind == V_BOOL || b->kind == V_NUM))
			return (a->kind == V_BOOL ? a->u.b : a->u.num) == (b->kind == V_BOOL ? b->u.b : b->u.num);
		return 0;
	}
	switch (a->kind) {
	case V_NONE: return 1;
	case V_BOOL: return a->u.b == b->u.b;
	case V_NUM: return a->u.num == b->u.num;
	case V_STR: return a->u.str.len == b->u.str.len && !memcmp(a->u.str.s, b->u.str.s, a->u.str.len);
	case V_LIST:
		if (a->u.list.n != b->u.list.n)
			return 0;
		for (i = 0; i < a->u.list.n; i++)
			if (!val_equal(&a->u.list.items[i], &b->u.list.items[i]))
				return 0;
		return 1;
	case V_DICT:
		if (a->u.dict.n != b->u.dict.n)
			return 0;
		for (i = 0; i < a->u.dict.n; i++) {
			const struct val *o = val_get(b, a->u.dict.keys[i]);
			if (!o || !val_equal(&a->u.dict.vals[i], o))
				return 0;
		}
		return 1;
	case V_FUNC:
		return a->u.fn.fn == b->u.fn.fn && a->u.fn.self == b->u.fn.self && a->u.fn.tag == b->u.fn.tag;
	}
	return 0;
}

int val_compare(const struct val *a, const struct val *b)
{
	if (a->kind == V_NUM && b->kind == V_NUM)
		return a->u.num < b->u.num ? -1 : a->u.num > b->u.num;
	if (a->kind == V_STR && b->kind == V_STR) {
		int c = strcmp(a->u.str.s, b->u.str.s);
		return c < 0 ? -1 : c > 0;
	}
	return (int)a->kind - (int)b->kind;
}

static void format_num(double n, struct buf *out)
{
	char tmp[32];
	int prec;

	if (isfinite(n) && n == floor(n) && fabs(n) < 1e15) {
		buf_printf(out, "%lld", (long long)n);
		return;
	}
	/* The shortest form that reads back as the same number, as Python prints it. */
	for (prec = 15; prec < 17; prec++) {
		snprintf(tmp, sizeof(tmp), "%.*g", prec, n);
		if (strtod(tmp, NULL) == n)
			break;
	}
	buf_printf(out, "%.*g", prec, n);
}

void val_repr(const struct val *v, struct buf *out)
{
	size_t i;

	switch (v->kind) {
	case V_STR:
		buf_addc(out, '\'');
		for (i = 0; i < v->u.str.len; i++) {
			char c = v->u.str.s[i];
			if (c == '\'' || c == '\\')
				buf_addc(out, '\\');
			buf_addc(out, c);
		}
		buf_addc(out, '\'');
		break;
	case V_LIST:
		buf_addc(out, '[');
		for (i = 0; i < v->u.list.n; i++) {
			if (i)
				buf_puts(out, ", ");
			val_repr(&v->u.list.items[i], out);
		}
		buf_addc(out, ']');
		break;
	case V_DICT:
		buf_addc(out, '{');
		for (i = 0; i < v->u.dict.n; i++) {
			if (i)
				buf_puts(out, ", ");
			val_repr(&(struct val){ V_STR, { .str = { v->u.dict.keys[i], strlen(v->u.dict.keys[i]), NULL } } }, out);
			buf_puts(out, ": ");
			val_repr(&v->u.dict.vals[i], out);
		}
		buf_addc(out, '}');
		break;
	default:
		val_format(v, out);
	}
}

void val_format(const struct val *v, struct buf *out)
{
	switch (v->kind) {
	case V_NONE: buf_puts(out, "None"); break;
	case V_BOOL: buf_puts(out, v->u.b ? "True" : "False"); break;
	case V_NUM: format_num(v->u.num, out); break;
	case V_STR: buf_add(out, v->u.str.s, v->u.str.len); break;
	case V_FUNC: buf_puts(out, "<function>"); break;
	default: val_repr(v, out);
	}
}

struct val val_dict_merge(struct arena *a, const struct val *base, const struct val *over)
{
	struct val d = val_dict_new();
	size_t i;

	if (base && base->kind == V_DICT)
		for (i = 0; i < base->u.dict.n; i++)
			val_dict_set(a, &d, base->u.dict.keys[i], base->u.dict.vals[i]);
	if (over && over->kind == V_DICT)
		for (i = 0; i < over->u.dict.n; i++)
			val_dict_set(a, &d, over->u.dict.keys[i], over->u.dict.vals[i]);
	return d;
}

struct val val_clone(struct arena *a, const struct val *v)
{
	struct val c = *v;
	size_t i;

	switch (v->kind) {
	case V_STR:
		c.u.str.s = arena_strndup(a, v->u.str.s, v->u.str.len);
		if (v->u.str.attrs) {
			struct val *attrs = arena_alloc(a, sizeof(*attrs));

			*attrs = val_clone(a, v->u.str.attrs);
			c.u.str.attrs = attrs;
		}
		break;
	case V_LIST:
		c = val_list_new();
		for (i = 0; i < v->u.list.n; i++)
			val_list_push(a, &c, val_clone(a, &v->u.list.items[i]));
		if (v->u.list.attrs) {
			struct val *attrs = arena_alloc(a, sizeof(*attrs));

			*attrs = val_clone(a, v->u.list.attrs);
			c.u.list.attrs = attrs;
		}
		break;
	case V_DICT:
		c = val_dict_new();
		for (i = 0; i < v->u.dict.n; i++)
			val_dict_set(a, &c, arena_strdup(a, v->u.dict.keys[i]), val_clone(a, &v->u.dict.vals[i]));
		break;
	default:
		break;
	}
	return c;
}

int val_parse_duration(const char *s, double *seconds)
{
	static const struct {
		const char *unit;
		double scale;
	} units[] = {
		{ "", 1 }, { "ms", 0.001 }, { "s", 1 }, { "m", 60 }, { "min", 60 },
		{ "h", 3600 }, { "d", 86400 }, { "w", 7 * 86400 },
	};
	char *end;
	double x;
	size_t i;

	while (isspace((unsigned char)*s))
		s++;
	errno = 0;
	x = strtod(s, &end);
	if (end == s || errno || !isfinite(x) || x < 0)
		return -1;
	while (*end == ' ')
		end++;
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (!strcmp(end, units[i].unit)) {
			*seconds = x * units[i].scale;
			return 0;
		}
	return -1;
}

int val_duration(const struct val *v, double *seconds)
{
	if (v && v->kind == V_NUM && v->u.num >= 0 && isfinite(v->u.num)) {
		*seconds = v->u.num;
		return 0;
	}
	return v && v->kind == V_STR ? val_parse_duration(v->u.str.s, seconds) : -1;
}
