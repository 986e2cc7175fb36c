/*
 * yaml.c: YAML text to a struct ynode tree (see yaml.h), built from libyaml
 * parser events so every node keeps its line and column; and the tree to a
 * struct val with YAML 1.2 core typing. It knows nothing about what the
 * keys of sluice.yml or profiles.yml mean: that is project.c.
 *
 * Aliases share the anchored node. An anchor is registered only once its
 * node is complete, so a node cannot contain itself and the tree is a DAG.
 */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>          /* libyaml: <> never finds engine/yaml.h */
#include "yaml.h"          /* ours */
#include "util/buf.h"
#include "util/fs.h"
#include "util/strmap.h"
#include "util/xalloc.h"

struct frame {
	struct ynode *node;        /* Y_SEQ or Y_MAP being filled */
	const char *anchor;        /* registered when the node ends */
	struct ynode **items;      /* heap, copied to the arena at the end */
	size_t n, cap;
};

struct ybuild {
	struct arena *a;
	const char *path;
	const char *src;
	size_t len;
	struct frame *stack;
	size_t depth, cap;
	struct strmap anchors;     /* anchor name (arena) -> struct ynode * */
	struct ynode *root;
	int have_root;
	struct sluice_err *err;
	struct err_list *warnings;
};

int yaml_error(struct sluice_err *err, const struct ynode *n, const char *fmt, ...)
{
	struct buf msg = BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(&msg, fmt, ap);
	va_end(ap);
	if (n)
		err_set(err, SLUICE_EUSAGE, "%s:%d:%d: %s", n->path ? n->path : "<yaml>", n->line, n->col, msg.s);
	else
		err_set(err, SLUICE_EUSAGE, "%s", msg.s);
	buf_release(&msg);
	return SLUICE_EUSAGE;
}

void yaml_warn(struct err_list *l, const struct ynode *n, const char *fmt, ...)
{
	struct buf msg = BUF_INIT;
	va_list ap;

	if (!l)
		return;
	va_start(ap, fmt);
	buf_vprintf(&msg, fmt, ap);
	va_end(ap);
	err_list_add(l, "%s:%d:%d: %s", n->path ? n->path : "<yaml>", n->line, n->col, msg.s);
	buf_release(&msg);
}

static int error_at(struct ybuild *b, const yaml_mark_t *m, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int error_at(struct ybuild *b, const yaml_mark_t *m, const char *fmt, ...)
{
	struct buf msg = BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(&msg, fmt, ap);
	va_end(ap);
	err_set(b->err, SLUICE_EUSAGE, "%s:%zu:%zu: %s", b->path, m->line + 1, m->column + 1, msg.s);
	buf_release(&msg);
	return SLUICE_EUSAGE;
}

/* libyaml's own message, at its mark; reader errors only carry an offset. */
static int parser_error(struct ybuild *b, const yaml_parser_t *ps)
{
	const char *problem = ps->problem ? ps->problem : "invalid YAML";
	yaml_mark_t m = ps->problem_mark;

	if (ps->error == YAML_READER_ERROR) {
		size_t i, line = 0, col = 0;
		for (i = 0; i < ps->problem_offset && i < b->len; i++) {
			if (b->src[i] == '\n') {
				line++;
				col = 0;
			} else if (((unsigned char)b->src[i] & 0xC0) != 0x80) {
				col++;
			}
		}
		m.line = line;
		m.column = col;
	}
	if (ps->error == YAML_SCANNER_ERROR && m.index < b->len && b->src[m.index] == '\t')
		return error_at(b, &m, "%s: a tab (YAML indents with spaces)", problem);
	if (ps->context && ps->context_mark.line != m.line)
		return error_at(b, &m, "%s (%s at line %zu)", problem, ps->context, ps->context_mark.line + 1);
	if (ps->context)
		return error_at(b, &m, "%s (%s)", problem, ps->context);
	return error_at(b, &m, "%s", problem);
}

static struct ynode *new_node(struct ybuild *b, enum ynode_kind kind, const yaml_mark_t *m)
{
	struct ynode *n = arena_alloc(b->a, sizeof(*n));

	n->kind = kind;
	n->line = (int)m->line + 1;
	n->col = (int)m->column + 1;
	n->path = b->path;
	return n;
}

static void register_anchor(struct ybuild *b, const char *anchor, struct ynode *n)
{
	if (anchor)
		strmap_put(&b->anchors, anchor, n);
}

static const char *copy_anchor(struct ybuild *b, const yaml_char_t *anchor)
{
	return anchor ? arena_strdup(b->a, (const char *)anchor) : NULL;
}

/* A finished node goes into the open container, or becomes the root. */
static int add_node(struct ybuild *b, struct ynode *n)
{
	struct frame *f;

	if (!b->depth) {
		b->root = n;
		b->have_root = 1;
		return 0;
	}
	f = &b->stack[b->depth - 1];
	if (f->node->kind == Y_MAP && f->n % 2 == 0 && n->kind != Y_SCALAR)
		return yaml_error(b->err, n, "only plain text keys are supported in a map");
	if (f->n == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 8;
		f->items = xrealloc(f->items, f->cap * sizeof(*f->items));
	}
	f->items[f->n++] = n;
	return 0;
}

static int push_frame(struct ybuild *b, struct ynode *n, const char *anchor)
{
	struct frame *f;

	if (b->depth == b->cap) {
		b->cap = b->cap ? b->cap * 2 : 16;
		b->stack = xrealloc(b->stack, b->cap * sizeof(*b->stack));
	}
	f = &b->stack[b->depth++];
	memset(f, 0, sizeof(*f));
	f->node = n;
	f->anchor = anchor;
	return 0;
}

static int is_merge_key(const struct ynode *k)
{
	return k->plain && k->len == 2 && !memcmp(k->scalar, "<<", 2);
}

static int key_eq(const struct ynode *a, const struct ynode *b)
{
	return a->len == b->len && !memcmp(a->scalar, b->scalar, a->len);
}

/* Index of key in items[0..n) (pairs), or -1; only the keys before `upto`. */
static long find_key(struct ynode **items, size_t upto, const struct ynode *key)
{
	size_t i;

	for (i = 0; i < upto; i += 2)
		if (key_eq(items[i], key))
			return (long)i;
	return -1;
}

/*
 * A duplicate key keeps its last value, in the first key's place, as
 * PyYAML's dict (and so dbt) reads it; each one is a warning. Big maps
 * find earlier keys with a hash (of the key's C string, checked whole).
 */
static void drop_duplicates(struct ybuild *b, struct frame *f)
{
	struct strmap seen = STRMAP_INIT;
	size_t i, out = 0;

	for (i = 0; i < f->n; i += 2) {
		struct ynode *k = f->items[i];
		long j = -1;
		if (!is_merge_key(k) && f->n <= 64) {
			j = find_key(f->items, out, k);
		} else if (!is_merge_key(k)) {
			uintptr_t at = (uintptr_t)strmap_get(&seen, k->scalar);
			if (at && key_eq(f->items[at - 1], k))
				j = (long)at - 1;
			else if (!at)
				strmap_put(&seen, k->scalar, (void *)(uintptr_t)(out + 1));
		}
		if (j >= 0) {
			yaml_warn(b->warnings, k, "duplicate key '%s' (first at line %d): the last value is used",
				  k->scalar, f->items[j]->line);
			f->items[j + 1] = f->items[i + 1];
			continue;
		}
		f->items[out++] = k;
		f->items[out++] = f->items[i + 1];
	}
	f->n = out;
	strmap_release(&seen);
}

/*
 * YAML 1.1 merge keys (`<<: *defaults`), which dbt users rely on: merged
 * pairs come first and explicit keys override them; with a list of maps
 * the earlier map wins, as in PyYAML.
 */
static int expand_merges(struct ybuild *b, struct frame *f)
{
	struct ynode **out, **src = NULL;
	size_t nsrc = 0, nout = 0, cap, i, k, j;
	int rc = 0;

	for (i = 0; i < f->n && !rc; i += 2) {
		struct ynode *v = f->items[i + 1];
		if (!is_merge_key(f->items[i]))
			continue;
		if (v->kind == Y_MAP) {
			src = xrealloc(src, (nsrc + 1) * sizeof(*src));
			src[nsrc++] = v;
		} else if (v->kind == Y_SEQ) {
			for (k = 0; k < v->n && !rc; k++) {
				if (v->items[k]->kind != Y_MAP) {
					rc = yaml_error(b->err, v->items[k], "'<<' merges maps only");
					break;
				}
				src = xrealloc(src, (nsrc + 1) * sizeof(*src));
				src[nsrc++] = v->items[k];
			}
		} else {
			rc = yaml_error(b->err, v, "'<<' needs a map or a list of maps");
		}
	}
	if (rc || !nsrc) {
		free(src);
		return rc;
	}
	cap = f->n;
	for (k = 0; k < nsrc; k++)
		cap += src[k]->n * 2;
	out = xmalloc(cap * sizeof(*out));
	for (k = 0; k < nsrc; k++) {
		for (j = 0; j < src[k]->n; j++) {
			struct ynode *key = src[k]->items[2 * j];
			if (find_key(f->items, f->n, key) >= 0 || find_key(out, nout, key) >= 0)
				continue;
			out[nout++] = key;
			out[nout++] = src[k]->items[2 * j + 1];
		}
	}
	for (i = 0; i < f->n; i += 2) {
		if (is_merge_key(f->items[i]))
			continue;
		out[nout++] = f->items[i];
		out[nout++] = f->items[i + 1];
	}
	free(src);
	free(f->items);
	f->items = out;
	f->n = nout;
	f->cap = cap;
	return 0;
}

static int pop_frame(struct ybuild *b)
{
	struct frame *f = &b->stack[b->depth - 1];
	struct ynode *n = f->node;
	int rc = 0;

	if (n->kind == Y_MAP) {
		drop_duplicates(b, f);
		if ((rc = expand_merges(b, f)))
			goto out;
	}
	n->n = n->kind == Y_MAP ? f->n / 2 : f->n;
	if (f->n) {
		n->items = arena_alloc(b->a, f->n * sizeof(*n->items));
		memcpy(n->items, f->items, f->n * sizeof(*n->items));
	}
	register_anchor(b, f->anchor, n);
out:
	free(f->items);
	b->depth--;
	return rc ? rc : add_node(b, n);
}

static int on_event(struct ybuild *b, yaml_event_t *ev)
{
	struct ynode *n;

	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		n = new_node(b, Y_SCALAR, &ev->start_mark);
		n->len = ev->data.scalar.length;
		n->scalar = arena_strndup(b->a, (const char *)ev->data.scalar.value, n->len);
		/* An explicit tag (!!str 5) makes it text even when unquoted. */
		n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && ev->data.scalar.plain_implicit;
		register_anchor(b, copy_anchor(b, ev->data.scalar.anchor), n);
		return add_node(b, n);
	case YAML_ALIAS_EVENT:
		n = strmap_get(&b->anchors, (const char *)ev->data.alias.anchor);
		if (!n)
			return error_at(b, &ev->start_mark, "unknown anchor '%s'", (const char *)ev->data.alias.anchor);
		return add_node(b, n);
	case YAML_SEQUENCE_START_EVENT:
		n = new_node(b, Y_SEQ, &ev->start_mark);
		return push_frame(b, n, copy_anchor(b, ev->data.sequence_start.anchor));
	case YAML_MAPPING_START_EVENT:
		n = new_node(b, Y_MAP, &ev->start_mark);
		return push_frame(b, n, copy_anchor(b, ev->data.mapping_start.anchor));
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		return pop_frame(b);
	default:
		return 0;
	}
}

int yaml_load_str(struct arena *a, const char *path, const char *src, size_t len,
		  struct ynode **root, struct err_list *warnings, struct sluice_err *err)
{
	struct ybuild b;
	yaml_parser_t ps;
	yaml_event_t ev;
	int rc = 0, done = 0;

	memset(&b, 0, sizeof(b));
	b.a = a;
	b.path = path;
	b.src = src;
	b.len = len;
	b.err = err;
	b.warnings = warnings;
	*root = NULL;
	if (!yaml_parser_initialize(&ps))
		return err_set(err, SLUICE_EIO, "%s: cannot initialise the YAML parser", path);
	yaml_parser_set_input_string(&ps, (const unsigned char *)src, len);
	while (!done && !rc) {
		if (!yaml_parser_parse(&ps, &ev)) {
			rc = parser_error(&b, &ps);
			break;
		}
		/* Only the first document is read. */
		done = ev.type == YAML_STREAM_END_EVENT || ev.type == YAML_DOCUMENT_END_EVENT;
		rc = on_event(&b, &ev);
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&ps);
	while (b.depth) {
		free(b.stack[b.depth - 1].items);
		b.depth--;
	}
	free(b.stack);
	strmap_release(&b.anchors);
	if (rc)
		return rc;
	/* "---" alone is an empty document, like a file of comments. */
	if (b.root && b.root->kind == Y_SCALAR && b.root->plain && !b.root->len)
		b.root = NULL;
	*root = b.root;
	return 0;
}

int yaml_load_file(struct arena *a, const char *path, struct ynode **root, struct err_list *warnings,
		   struct sluice_err *err)
{
	struct buf text = BUF_INIT;
	int rc;

	*root = NULL;
	if ((rc = fs_read_file(path, &text, err)))
		return rc;
	rc = yaml_load_str(a, path, text.s, text.len, root, warnings, err);
	buf_release(&text);
	return rc;
}

struct ynode *ymap_get(const struct ynode *map, const char *key)
{
	size_t i, len;

	if (!map || map->kind != Y_MAP)
		return NULL;
	len = strlen(key);
	for (i = 0; i < map->n; i++) {
		const struct ynode *k = map->items[2 * i];
		if (k->len == len && !memcmp(k->scalar, key, len))
			return map->items[2 * i + 1];
	}
	return NULL;
}

static int all_in(const char *s, const char *end, const char *set)
{
	if (s == end)
		return 0;
	for (; s < end; s++)
		if (!strchr(set, *s))
			return 0;
	return 1;
}

/* YAML 1.2 core schema: int (decimal, 0o, 0x), float, .inf, .nan. */
static int core_number(const char *s, size_t len, double *out)
{
	const char *p = s, *end = s + len, *start;
	int neg = 0, seen;

	if (!strcmp(s, ".nan") || !strcmp(s, ".NaN") || !strcmp(s, ".NAN")) {
		*out = NAN;
		return 1;
	}
	if (p < end && (*p == '+' || *p == '-'))
		neg = *p++ == '-';
	if (!strcmp(p, ".inf") || !strcmp(p, ".Inf") || !strcmp(p, ".INF")) {
		*out = neg ? -INFINITY : INFINITY;
		return 1;
	}
	if (p == s && end - p > 2 && p[0] == '0' && (p[1] == 'o' || p[1] == 'x')) {
		int base = p[1] == 'o' ? 8 : 16;
		if (!all_in(p + 2, end, base == 8 ? "01234567" : "0123456789abcdefABCDEF"))
			return 0;
		*out = (double)strtoull(p + 2, NULL, base);
		return 1;
	}
	start = p;
	while (p < end && isdigit((unsigned char)*p))
		p++;
	seen = p > start;
	if (p < end && *p == '.') {
		start = ++p;
		while (p < end && isdigit((unsigned char)*p))
			p++;
		seen |= p > start;
	}
	if (!seen)
		return 0;
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		start = p;
		while (p < end && isdigit((unsigned char)*p))
			p++;
		if (p == start)
			return 0;
	}
	if (p != end)
		return 0;
	*out = strtod(s, NULL);
	return 1;
}

static int word_is(const struct ynode *n, const char *lower)
{
	size_t i, len = strlen(lower);
	int title = 1, upper = 1;

	/* true, True, TRUE: the core schema's three spellings */
	if (n->len != len)
		return 0;
	if (!memcmp(n->scalar, lower, len))
		return 1;
	for (i = 0; i < len; i++) {
		char c = n->scalar[i];
		if (c != toupper((unsigned char)lower[i]))
			upper = 0;
		if (c != (i ? lower[i] : toupper((unsigned char)lower[i])))
			title = 0;
	}
	return upper || title;
}

struct val yaml_to_val(struct arena *a, const struct ynode *n)
{
	struct val v;
	double num;
	size_t i;

	if (!n)
		return val_none();
	switch (n->kind) {
	case Y_SCALAR:
		if (n->plain) {
			if (!n->len || word_is(n, "null") || !strcmp(n->scalar, "~"))
				return val_none();
			if (word_is(n, "true"))
				return val_bool(1);
			if (word_is(n, "false"))
				return val_bool(0);
			if (core_number(n->scalar, n->len, &num))
				return val_num(num);
		}
		return val_str_dup(a, n->scalar, n->len);
	case Y_SEQ:
		v = val_list_new();
		for (i = 0; i < n->n; i++)
			val_list_push(a, &v, yaml_to_val(a, n->items[i]));
		return v;
	case Y_MAP:
		v = val_dict_new();
		for (i = 0; i < n->n; i++)
			val_dict_set(a, &v, arena_strndup(a, n->items[2 * i]->scalar, n->items[2 * i]->len),
				     yaml_to_val(a, n->items[2 * i + 1]));
		return v;
	}
	return val_none();
}
