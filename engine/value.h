/*
 * value.h: the one dynamic value type, shared by templates, YAML config,
 * vars and connection settings: none, bool, number, string, list, dict.
 *
 * Values are immutable once built and live in an arena; copying a struct val
 * is a shallow, cheap copy. Dict keys keep insertion order (YAML order), and
 * lookups are linear: dicts here are small (config, kwargs, settings).
 */
#ifndef SLUICE_VALUE_H
#define SLUICE_VALUE_H

#include <stddef.h>
#include "util/arena.h"
#include "util/buf.h"

enum val_kind { V_NONE = 0, V_BOOL, V_NUM, V_STR, V_LIST, V_DICT, V_FUNC };

struct val {
	enum val_kind kind;
	union {
		int b;
		double num;
		/*
		 * NUL-terminated too. attrs: a dict of attributes the string
		 * carries (a relation renders as its quoted name and has
		 * .schema, .identifier, ...), or NULL for a plain string.
		 */
		struct { const char *s; size_t len; const struct val *attrs; } str;
		/* attrs: as a string's (a query's table has .rows, .columns), or NULL */
		struct { struct val *items; size_t n; const struct val *attrs; } list;
		struct { const char **keys; struct val *vals; size_t n; } dict;
		/*
		 * Something a template can call: what fn points at depends on
		 * tag, which only the template engine reads (template.h). It
		 * prints as "<function name>" and is always true.
		 */
		struct { const void *fn; const void *self; int tag; } fn;
	} u;
};

static inline struct val val_none(void) { struct val v = { V_NONE, { 0 } }; return v; }
struct val val_bool(int b);
struct val val_num(double n);
/* Borrows s: it must outlive the value (arena strings do). */
struct val val_str(const char *s);
struct val val_strn(const char *s, size_t len);
/* Copies s into the arena. */
struct val val_str_dup(struct arena *a, const char *s, size_t len);

/* Append to a list or dict built in arena a (amortised by doubling). */
void val_list_push(struct arena *a, struct val *list, struct val item);
/* Set key in dict (replacing an existing key in place); key is borrowed. */
void val_dict_set(struct arena *a, struct val *dict, const char *key, struct val v);
/* Append key without looking for it first: only for keys known to be new (e.g. from a JSON object). */
void val_dict_append(struct arena *a, struct val *dict, const char *key, struct val v);
struct val val_list_new(void);
struct val val_dict_new(void);
/*
 * A list (dict) of n entries for the caller to fill (items[i]; keys[i]
 * and vals[i]), allocated once: what is built whole need not grow.
 * Appending to it later works as to any other.
 */
struct val val_list_of(struct arena *a, size_t n);
struct val val_dict_of(struct arena *a, size_t n);

/* The attributes a string or a list carries (a dict), or NULL. */
static inline const struct val *val_attrs(const struct val *v)
{
	return v->kind == V_STR ? v->u.str.attrs : v->kind == V_LIST ? v->u.list.attrs : NULL;
}

/* Borrowed pointer to dict[key], or NULL when absent or not a dict. */
const struct val *val_get(const struct val *dict, const char *key);
/* dict[key] as a string, or def when absent / not a string. */
const char *val_get_str(const struct val *dict, const char *key, const char *def);
/*
 * dict[key] as text whether YAML gave a string or a number (a port: 5432
 * or "5432"): the string itself, or the integer printed into tmp; NULL
 * when absent or of another kind.
 */
const char *val_get_text(const struct val *dict, const char *key, char *tmp, size_t cap);
/* A number as a long long, clamped to +-1e18 (NaN: 0): no conversion out of range. */
long long val_num_ll(double d);
/* dict[key] as an integer (number or numeric string), or def. */
long long val_get_int(const struct val *dict, const char *key, long long def);
/*
 * A duration in seconds, as every setting writes one (timeout,
 * lag_tolerance, within): text "<number>[ ]<unit>" with unit ms, s, m or
 * min, h, d or w (none: seconds), or a plain number of seconds. 0, or -1
 * when malformed or negative.
 */
int val_parse_duration(const char *s, double *seconds);
int val_duration(const struct val *v, double *seconds);
/* dict[key] truthiness (bool, "true"/"false" strings), or def. */
int val_get_bool(const struct val *dict, const char *key, int def);

int val_truthy(const struct val *v);
int val_equal(const struct val *a, const struct val *b);
/* -1/0/1 for numbers and strings; other kinds compare by kind. */
int val_compare(const struct val *a, const struct val *b);

/* Render as Jinja prints it: strings raw, numbers without a needless ".0",
 * none as "None", bools as "True"/"False", lists/dicts in Python repr. */
void val_format(const struct val *v, struct buf *out);
/* Python repr (strings quoted) — used inside lists and by val_format. */
void val_repr(const struct val *v, struct buf *out);

/* Merge: a new dict with base's keys overridden by over's keys (shallow). */
struct val val_dict_merge(struct arena *a, const struct val *base, const struct val *over);
/* Deep copy into arena a (for values that must outlive a scratch arena). */
struct val val_clone(struct arena *a, const struct val *v);

#endif
