/*
 * datatest.c: data tests from property YAML and test-paths to manifest
 * nodes, and the SQL they run; see datatest.h.
 *
 * Names follow dbt's rule, so existing selectors and dashboards keep
 * working: <test>_<model>_<arguments>, the arguments sorted by name, their
 * values joined with "__" and every run of other characters than letters,
 * digits and _ made one "_" (not_null_stg_patients_site,
 * relationships_orders_customer_id__id__ref_customers_). Tests on sources
 * start with source_ and name the table as <source>_<table>. Where two
 * tests would get one name, the later one (in file order) gets _2, _3.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include "datatest.h"
#include "json.h"
#include "util/hash.h"
#include "util/strmap.h"
#include "util/xalloc.h"

static const char *const kind_names[DT__COUNT] = {
	[DT_NOT_NULL] = "not_null",
	[DT_UNIQUE] = "unique",
	[DT_ACCEPTED_VALUES] = "accepted_values",
	[DT_RELATIONSHIPS] = "relationships",
	[DT_ROW_COUNT] = "row_count",
	[DT_EQUAL_ROW_COUNT] = "equal_row_count",
	[DT_ROW_COUNT_DELTA] = "row_count_delta",
	[DT_EXPRESSION] = "expression",
	[DT_FRESHER_THAN] = "fresher_than",
	[DT_UNIQUE_COMBINATION] = "unique_combination",
	[DT_SINGULAR] = "singular",
};

#define KNOWN_TESTS "not_null, unique, accepted_values, relationships, row_count, equal_row_count, " \
	"row_count_delta, expression, fresher_than, unique_combination"

/* Keys of a test entry that configure it rather than say what it checks. */
static const char *const config_keys[] = {
	"severity", "warn_if", "error_if", "store_failures", "where", "limit", "enabled", "tags", "meta",
	"description", NULL
};

/* The arguments each kind takes (besides column_name, which every column test may name). */
static const char *const kind_args[DT__COUNT][4] = {
	[DT_NOT_NULL] = { NULL },
	[DT_UNIQUE] = { NULL },
	[DT_ACCEPTED_VALUES] = { "values", "quote", NULL },
	[DT_RELATIONSHIPS] = { "to", "field", NULL },
	[DT_ROW_COUNT] = { "min", "max", NULL },
	[DT_EQUAL_ROW_COUNT] = { "to", NULL },
	[DT_ROW_COUNT_DELTA] = { "max_pct", NULL },
	[DT_EXPRESSION] = { "expression", NULL },
	[DT_FRESHER_THAN] = { "field", "within", NULL },
	[DT_UNIQUE_COMBINATION] = { "columns", "combination_of_columns", NULL },
};

static int in_list(const char *const *list, const char *s)
{
	for (; *list; list++)
		if (!strcmp(*list, s))
			return 1;
	return 0;
}

static int place_error(struct sluice_err *err, const struct dt_place *at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int place_error(struct sluice_err *err, const struct dt_place *at, const char *fmt, ...)
{
	struct buf msg = BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(&msg, fmt, ap);
	va_end(ap);
	if (at->line)
		err_set(err, SLUICE_EUSAGE, "%s:%d:%d: %s", at->path, at->line, at->col, msg.s);
	else
		err_set(err, SLUICE_EUSAGE, "%s: %s", at->path, msg.s);
	buf_release(&msg);
	return SLUICE_EUSAGE;
}

static struct dt_place place_of(const struct ynode *n)
{
	struct dt_place p = { n->path, n->line, n->col };

	return p;
}

static int is_null_node(const struct ynode *n)
{
	return !n || (n->kind == Y_SCALAR && n->plain &&
		      (!n->len || !strcmp(n->scalar, "null") || !strcmp(n->scalar, "~") || !strcmp(n->scalar, "Null") ||
		       !strcmp(n->scalar, "NULL")));
}

/* ---- small parsers ---- */

static int parse_threshold(const char *s, struct dt_threshold *th)
{
	static const struct { const char *w, *op; } ops[] = {
		{ ">=", ">=" }, { "<=", "<=" }, { "!=", "!=" }, { "<>", "!=" }, { "==", "=" },
		{ ">", ">" }, { "<", "<" }, { "=", "=" },
	};
	const char *p = s;
	char *end;
	size_t i;

	while (isspace((unsigned char)*p))
		p++;
	for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (!strncmp(p, ops[i].w, strlen(ops[i].w)))
			break;
	if (i == sizeof(ops) / sizeof(ops[0]))
		return -1;
	p += strlen(ops[i].w);
	while (isspace((unsigned char)*p))
		p++;
	if (!isdigit((unsigned char)*p))
		return -1;
	errno = 0;
	th->n = strtoll(p, &end, 10);
	while (isspace((unsigned char)*end))
		end++;
	if (errno || *end)
		return -1;
	snprintf(th->op, sizeof(th->op), "%s", ops[i].op);
	th->text = s;
	return 0;
}

int datatest_threshold_hit(const struct dt_threshold *th, long long f)
{
	if (!strcmp(th->op, ">"))
		return f > th->n;
	if (!strcmp(th->op, ">="))
		return f >= th->n;
	if (!strcmp(th->op, "<"))
		return f < th->n;
	if (!strcmp(th->op, "<="))
		return f <= th->n;
	if (!strcmp(th->op, "="))
		return f == th->n;
	return f != th->n;
}

/*
 * `to:` as dbt writes it: ref('m'), ref('package', 'm') or
 * source('s', 't'), quoted either way. Fills t->to_*.
 */
static int parse_to(struct arena *a, const char *s, struct datatest *t)
{
	const char *args[2];
	size_t nargs = 0, n;
	int is_ref;

	while (isspace((unsigned char)*s))
		s++;
	if (!strncmp(s, "ref", 3))
		is_ref = 1, s += 3;
	else if (!strncmp(s, "source", 6))
		is_ref = 0, s += 6;
	else
		return -1;
	while (isspace((unsigned char)*s))
		s++;
	if (*s++ != '(')
		return -1;
	for (;;) {
		char q;
		const char *e;
		while (isspace((unsigned char)*s))
			s++;
		if (*s == ')' && nargs)
			break;
		q = *s;
		if ((q != '\'' && q != '"') || nargs == 2)
			return -1;
		e = strchr(s + 1, q);
		if (!e || e == s + 1)
			return -1;
		n = (size_t)(e - s - 1);
		args[nargs++] = arena_strndup(a, s + 1, n);
		s = e + 1;
		while (isspace((unsigned char)*s))
			s++;
		if (*s == ',')
			s++;
		else if (*s != ')')
			return -1;
	}
	for (s++; isspace((unsigned char)*s); s++)
		;
	if (*s)
		return -1;
	if (is_ref) {
		t->to_model = args[nargs - 1];
	} else {
		if (nargs != 2)
			return -1;
		t->to_source = args[0];
		t->to_table = args[1];
	}
	return 0;
}

/* ---- names ---- */

/* Every run of characters other than [0-9A-Za-z_] becomes one "_". */
static void add_clean(struct buf *b, const char *s)
{
	int run = 0;

	for (; *s; s++) {
		if (isalnum((unsigned char)*s) || *s == '_') {
			buf_addc(b, *s);
			run = 0;
		} else if (!run) {
			buf_addc(b, '_');
			run = 1;
		}
	}
}

static int cmp_key(const void *x, const void *y)
{
	return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* The "__"-joined, cleaned argument values of args (a dict), sorted by argument name. */
static void name_args(const struct val *args, struct buf *out)
{
	const char **keys;
	size_t n = args->kind == V_DICT ? args->u.dict.n : 0, i, k, parts = 0;

	keys = xcalloc(n ? n : 1, sizeof(char *));
	for (i = 0; i < n; i++)
		keys[i] = args->u.dict.keys[i];
	qsort(keys, n, sizeof(char *), cmp_key);
	for (i = 0; i < n; i++) {
		const struct val *v = val_get(args, keys[i]);
		const struct val *items = v;
		size_t nitems = 1;
		if (v->kind == V_LIST) {
			items = v->u.list.items;
			nitems = v->u.list.n;
		} else if (v->kind == V_DICT) {
			items = v->u.dict.vals;
			nitems = v->u.dict.n;
		}
		for (k = 0; k < nitems; k++) {
			struct buf part = BUF_INIT;
			val_format(&items[k], &part);
			if (parts++)
				buf_puts(out, "__");
			add_clean(out, part.s);
			buf_release(&part);
		}
	}
	free(keys);
}

/* ---- parsing one test ---- */

struct parse_ctx {
	struct project *p;
	struct arena *a;
	struct datatest_list *list;
	size_t cap;
	struct strmap names;
	const struct val *defaults;     /* sluice.yml tests: block (dict) or NULL */
	const struct macro_set *macros; /* for generic tests written as {% test %} macros */
	struct sluice_err *err;
};

static const char *scalar_text(const struct ynode *n)
{
	return n && n->kind == Y_SCALAR ? n->scalar : NULL;
}

/* A count written as a number or as digits in a string: 0 and *out, or -1. */
static int whole_number(const struct val *v, long long *out)
{
	char *end;

	if (v->kind == V_NUM && v->u.num >= 0 && v->u.num < 1e18 && v->u.num == floor(v->u.num)) {
		*out = (long long)v->u.num;
		return 0;
	}
	if (v->kind != V_STR || !isdigit((unsigned char)v->u.str.s[0]))
		return -1;
	errno = 0;
	*out = strtoll(v->u.str.s, &end, 10);
	return errno || *end ? -1 : 0;
}

static int apply_config(struct parse_ctx *c, struct datatest *t, const char *key, const struct val *v,
			struct dt_place at)
{
	struct arena *a = c->a;
	const char *s = v->kind == V_STR ? v->u.str.s : NULL;

	if (!strcmp(key, "severity")) {
		if (!s || (strcasecmp(s, "warn") && strcasecmp(s, "error")))
			return place_error(c->err, &at, "severity must be warn or error");
		t->warn_only = !strcasecmp(s, "warn");
		val_dict_set(a, &t->config, "severity", val_str(t->warn_only ? "warn" : "error"));
	} else if (!strcmp(key, "warn_if") || !strcmp(key, "error_if")) {
		struct dt_threshold th;
		if (!s || parse_threshold(s, &th))
			return place_error(c->err, &at, "%s must be a threshold such as \">10\", \">=1\" or \"!=0\"", key);
		th.text = arena_strdup(a, s);
		*(key[0] == 'w' ? &t->warn_if : &t->error_if) = th;
		val_dict_set(a, &t->config, key, val_str(th.text));
	} else if (!strcmp(key, "store_failures") || !strcmp(key, "enabled")) {
		int b;
		if (v->kind == V_BOOL)
			b = v->u.b;
		else if (s && (!strcmp(s, "true") || !strcmp(s, "false")))
			b = !strcmp(s, "true");
		else
			return place_error(c->err, &at, "%s must be true or false", key);
		if (key[0] == 's')
			t->store_failures = b;
		val_dict_set(a, &t->config, key, val_bool(b));
	} else if (!strcmp(key, "where")) {
		if (!s || !*s)
			return place_error(c->err, &at, "where must be a SQL condition");
		t->where = arena_strdup(a, s);
		val_dict_set(a, &t->config, "where", val_str(t->where));
	} else if (!strcmp(key, "limit")) {
		/* null, dbt's default, is no limit */
		if (v->kind == V_NONE)
			t->limit = -1;
		else if (whole_number(v, &t->limit))
			return place_error(c->err, &at, "limit must be a whole number of rows");
		val_dict_set(a, &t->config, "limit", t->limit < 0 ? val_none() : val_num((double)t->limit));
	} else if (!strcmp(key, "tags")) {
		size_t i, n = v->kind == V_LIST ? v->u.list.n : 1;
		const struct val *items = v->kind == V_LIST ? v->u.list.items : v;
		const char **tags = arena_alloc(a, (t->ntags + n) * sizeof(char *));
		memcpy(tags, t->tags, t->ntags * sizeof(char *));
		for (i = 0; i < n; i++) {
			if (items[i].kind != V_STR)
				return place_error(c->err, &at, "tags must be a name or a list of names");
			tags[t->ntags++] = arena_strdup(a, items[i].u.str.s);
		}
		t->tags = tags;
	} else if (strcmp(key, "meta") && strcmp(key, "description")) {
		return place_error(c->err, &at, "unknown config '%s' for a test (known: severity, warn_if, error_if, "
				   "store_failures, where, limit, enabled, tags)", key);
	}
	return 0;
}

/* sluice.yml `tests:`: project-wide defaults, "+key" or "key". */
static int apply_defaults(struct parse_ctx *c, struct datatest *t)
{
	const struct val *d = c->defaults;
	struct dt_place at = { "sluice.yml", 0, 0 };
	size_t i;
	int rc;

	for (i = 0; d && i < d->u.dict.n; i++) {
		const char *k = d->u.dict.keys[i];
		if (*k == '+')
			k++;
		if (!strcmp(k, "combine"))
			continue;
		if ((rc = apply_config(c, t, k, &d->u.dict.vals[i], at)))
			return err_prefix(c->err, "tests");
	}
	return 0;
}

/* ---- dbt's names for long tests and its unique_id suffix ---- */

/* md5 of s as 32 hex digits (dbt hashes test names with md5). */
static void md5_hex(const char *s, size_t len, char out[33])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0, i;

	if (!EVP_Digest(s, len, md, &n, EVP_md5(), NULL))
		n = 0;
	for (i = 0; i < n && i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	out[2 * i] = '\0';
}

/* Python's repr() of a str: dbt hashes repr() of its test metadata. */
static void py_repr(struct buf *b, const char *s)
{
	char q = strchr(s, '\'') && !strchr(s, '"') ? '"' : '\'';

	buf_addc(b, q);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '\\' || ch == (unsigned char)q)
			buf_printf(b, "\\%c", ch);
		else if (ch == '\n')
			buf_puts(b, "\\n");
		else if (ch == '\r')
			buf_puts(b, "\\r");
		else if (ch == '\t')
			buf_puts(b, "\\t");
		else if (ch < 0x20 || ch == 0x7f)
			buf_printf(b, "\\x%02x", ch);
		else
			buf_addc(b, (char)ch);
	}
	buf_addc(b, q);
}

/* str() of a YAML scalar as Python would have loaded it: true -> 'True', null -> 'None'. */
static void py_str_scalar(struct arena *a, struct buf *b, const struct ynode *n)
{
	struct val v;
	char tmp[64];

	if (!n->plain) {
		py_repr(b, n->scalar);
		return;
	}
	v = yaml_to_val(a, n);
	if (v.kind == V_NONE)
		py_repr(b, "None");
	else if (v.kind == V_BOOL)
		py_repr(b, v.u.b ? "True" : "False");
	else if (v.kind == V_NUM && v.u.num == (double)(long long)v.u.num && !strpbrk(n->scalar, ".eE"))
		snprintf(tmp, sizeof(tmp), "%lld", (long long)v.u.num), py_repr(b, tmp);
	else if (v.kind == V_NUM)
		snprintf(tmp, sizeof(tmp), "%.17g", v.u.num), py_repr(b, tmp);
	else
		py_repr(b, n->scalar);
}

static int cmp_key_node(const void *x, const void *y)
{
	return strcmp((*(const struct ynode *const *)x)->scalar, (*(const struct ynode *const *)y)->scalar);
}

/* repr() of a YAML value with dict keys sorted and every leaf str()'d: dbt's get_hashable_md. */
static void py_repr_node(struct arena *a, struct buf *b, const struct ynode *n)
{
	size_t i;

	if (!n) {
		py_repr(b, "None");
	} else if (n->kind == Y_SEQ) {
		buf_addc(b, '[');
		for (i = 0; i < n->n; i++) {
			buf_puts(b, i ? ", " : "");
			py_repr_node(a, b, n->items[i]);
		}
		buf_addc(b, ']');
	} else if (n->kind == Y_MAP) {
		const struct ynode **keys = xcalloc(n->n ? n->n : 1, sizeof(*keys));
		for (i = 0; i < n->n; i++)
			keys[i] = n->items[2 * i];
		qsort(keys, n->n, sizeof(*keys), cmp_key_node);
		buf_addc(b, '{');
		for (i = 0; i < n->n; i++) {
			buf_puts(b, i ? ", " : "");
			py_repr(b, keys[i]->scalar);
			buf_puts(b, ": ");
			py_repr_node(a, b, ymap_get(n, keys[i]->scalar));
		}
		buf_addc(b, '}');
		free(keys);
	} else {
		py_str_scalar(a, b, n);
	}
}

/* A test's kwargs as dbt builds them: its arguments, column_name, and the model it reads. */
struct kwarg {
	const char *key;
	const struct ynode *node;  /* or NULL: text */
	const char *text;
};

static int cmp_kwarg(const void *x, const void *y)
{
	return strcmp(((const struct kwarg *)x)->key, ((const struct kwarg *)y)->key);
}

/* The project or package a test is named after: the one whose file declares it. */
static const char *test_project(const struct parse_ctx *c, const struct datatest *t)
{
	const struct package *pkg = project_package_of(c->p, t->at.path);

	return pkg ? pkg->name : c->p->name;
}

/*
 * dbt's unique_id for a generic test: test.<project>.<name>.<hash>, the
 * hash being the last 10 hex digits of md5(name + repr(metadata)), where
 * metadata is {kwargs, name, namespace} with sorted keys and str() leaves.
 */
static const char *dbt_test_unique_id(struct parse_ctx *c, const struct datatest *t, const struct ynode *args)
{
	struct buf md = BUF_INIT, model = BUF_INIT;
	struct kwarg *kw = xcalloc((args && args->kind == Y_MAP ? args->n : 0) + 2, sizeof(*kw));
	size_t n = 0, i;
	char hex[33];
	const char *id;

	for (i = 0; args && args->kind == Y_MAP && i < args->n; i++) {
		const char *k = args->items[2 * i]->scalar;
		if (!strcmp(k, "config") || !strcmp(k, "name") || in_list(config_keys, k) || !strcmp(k, "column_name"))
			continue;
		kw[n].key = k;
		kw[n++].node = args->items[2 * i + 1];
	}
	if (t->column) {
		kw[n].key = "column_name";
		kw[n++].text = t->column;
	}
	if (t->source)
		buf_printf(&model, "{{ get_where_subquery(source('%s', '%s')) }}", t->source->source_name, t->source->name);
	else
		buf_printf(&model, "{{ get_where_subquery(ref('%s')) }}", t->model->name);
	kw[n].key = "model";
	kw[n++].text = model.s;
	qsort(kw, n, sizeof(*kw), cmp_kwarg);
	buf_puts(&md, t->name);
	buf_puts(&md, "{'kwargs': {");
	for (i = 0; i < n; i++) {
		buf_puts(&md, i ? ", " : "");
		py_repr(&md, kw[i].key);
		buf_puts(&md, ": ");
		if (kw[i].node)
			py_repr_node(c->a, &md, kw[i].node);
		else
			py_repr(&md, kw[i].text);
	}
	buf_puts(&md, "}, 'name': ");
	py_repr(&md, t->kind_name);
	buf_puts(&md, ", 'namespace': 'None'}");
	md5_hex(md.s, md.len, hex);
	id = arena_printf(c->a, "test.%s.%s.%s", test_project(c, t), t->name, hex + 22);
	free(kw);
	buf_release(&md);
	buf_release(&model);
	return id;
}

/* Name the test (dbt's rule) and make it unique in the project. */
static void set_name(struct parse_ctx *c, struct datatest *t, const char *custom, const struct val *args)
{
	struct arena *a = c->a;
	struct buf b = BUF_INIT, id = BUF_INIT;
	const char *base;
	int k;

	if (custom) {
		buf_puts(&b, custom);
	} else {
		if (t->source)
			buf_printf(&id, "source_%s_%s_%s", t->kind_name, t->source->source_name, t->source->name);
		else
			buf_printf(&id, "%s_%s", t->kind_name, t->model->name);
		buf_puts(&b, id.s);
		if (args->kind == V_DICT && args->u.dict.n) {
			buf_addc(&b, '_');
			name_args(args, &b);
		}
	}
	base = arena_strndup(a, b.s, b.len);
	t->name = base;
	for (k = 2; strmap_get(&c->names, t->name); k++)
		t->name = arena_printf(a, "%s_%d", base, k);
	strmap_put(&c->names, t->name, t);
	t->unique_id = arena_printf(a, "test.%s.%s", test_project(c, t), t->name);
	/* Identifiers (the audit table) stay under 64 bytes, as dbt's aliases do. */
	if (strlen(t->name) >= 64) {
		char hex[33];
		const char *pre = id.len ? id.s : t->name;
		md5_hex(t->name, strlen(t->name), hex);   /* dbt's alias for the same test */
		t->short_name = arena_printf(a, "%.30s_%s", pre, hex);
	} else {
		t->short_name = t->name;
	}
	buf_release(&b);
	buf_release(&id);
}

static void set_definition(struct parse_ctx *c, struct datatest *t, const struct val *args)
{
	struct val d = val_dict_new();
	json_t *j;
	char *text;

	val_dict_set(c->a, &d, "kind", val_str(t->kind_name));
	val_dict_set(c->a, &d, "on", val_str(t->model ? t->model->unique_id : t->source ? t->source->unique_id : ""));
	if (t->column)
		val_dict_set(c->a, &d, "column", val_str(t->column));
	val_dict_set(c->a, &d, "quote_column", val_bool(t->quote_column));
	val_dict_set(c->a, &d, "args", *args);
	val_dict_set(c->a, &d, "config", t->config);
	if (t->file)
		val_dict_set(c->a, &d, "path", val_str(t->file->path));
	j = json_from_val_new(&d);
	text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	t->definition = arena_strdup(c->a, text ? text : "");
	free(text);
	json_decref(j);
}

static int need_column(struct parse_ctx *c, const struct datatest *t)
{
	if (t->column)
		return 0;
	return place_error(c->err, &t->at, "%s is a column test: put it under a column's tests:, or give column_name:",
			   t->kind_name);
}

/* A list of plain values; with nulls, a null entry is a NULL pointer. */
static int list_of_names(struct parse_ctx *c, const struct ynode *n, const char *what, int nulls,
			 const char ***out, size_t *count)
{
	size_t i;

	if (!n || n->kind != Y_SEQ || !n->n)
		return yaml_error(c->err, n, "%s must be a non-empty list", what);
	*out = arena_alloc(c->a, n->n * sizeof(char *));
	for (i = 0; i < n->n; i++) {
		if (nulls && is_null_node(n->items[i]))
			continue;
		if (n->items[i]->kind != Y_SCALAR || is_null_node(n->items[i]))
			return yaml_error(c->err, n->items[i], "%s entries must be plain values", what);
		(*out)[i] = n->items[i]->scalar;
	}
	*count = n->n;
	return 0;
}

static int int_arg(struct parse_ctx *c, const struct ynode *n, const char *what, long long *out)
{
	char *end;
	const char *s = scalar_text(n);

	errno = 0;
	*out = s ? strtoll(s, &end, 10) : 0;
	if (!s || !*s || *end || errno || *out < 0)
		return yaml_error(c->err, n, "%s must be a whole number of rows", what);
	return 0;
}

/* The kind's own arguments, from the entry's argument map (config keys already taken out). */
static int kind_arguments(struct parse_ctx *c, struct datatest *t, const struct ynode *args)
{
	const struct ynode *v;
	const char *s;
	double secs;

	switch (t->kind) {
	case DT_NOT_NULL:
	case DT_UNIQUE:
		return need_column(c, t);
	case DT_ACCEPTED_VALUES:
		if (need_column(c, t))
			return SLUICE_EUSAGE;
		v = ymap_get(args, "values");
		if (!v)
			return place_error(c->err, &t->at, "accepted_values needs values: [...]");
		/* null is allowed, as in dbt: a null value never fails the test anyway */
		if (list_of_names(c, v, "values", 1, &t->values, &t->nvalues))
			return SLUICE_EUSAGE;
		t->quote_values = 1;
		if ((v = ymap_get(args, "quote"))) {
			if (!scalar_text(v) || (strcmp(v->scalar, "true") && strcmp(v->scalar, "false")))
				return yaml_error(c->err, v, "quote must be true or false");
			t->quote_values = !strcmp(v->scalar, "true");
		}
		return 0;
	case DT_RELATIONSHIPS:
	case DT_EQUAL_ROW_COUNT:
		if (t->kind == DT_RELATIONSHIPS && need_column(c, t))
			return SLUICE_EUSAGE;
		v = ymap_get(args, "to");
		if (!v)
			return place_error(c->err, &t->at, "%s needs to: ref('model') or source('source', 'table')",
					   t->kind_name);
		t->to_at = place_of(v);
		if (!(s = scalar_text(v)) || parse_to(c->a, s, t))
			return yaml_error(c->err, v, "to: must be ref('model') or source('source', 'table')");
		if (t->to_model && !project_find_model(c->p, t->to_model))
			return yaml_error(c->err, v, "unknown model '%s' in to:", t->to_model);
		if (t->to_source && !project_find_source(c->p, t->to_source, t->to_table))
			return yaml_error(c->err, v, "unknown source '%s.%s' in to: (declare it under sources:)",
					  t->to_source, t->to_table);
		if (t->kind == DT_EQUAL_ROW_COUNT)
			return 0;
		v = ymap_get(args, "field");
		if (!v || !(s = scalar_text(v)) || is_null_node(v))
			return place_error(c->err, &t->at, "relationships needs field: (the column of to:)");
		t->field = s;
		return 0;
	case DT_ROW_COUNT:
		if ((v = ymap_get(args, "min"))) {
			if (int_arg(c, v, "min", &t->min))
				return SLUICE_EUSAGE;
			t->has_min = 1;
		}
		if ((v = ymap_get(args, "max"))) {
			if (int_arg(c, v, "max", &t->max))
				return SLUICE_EUSAGE;
			t->has_max = 1;
		}
		if (!t->has_min && !t->has_max)
			return place_error(c->err, &t->at, "row_count needs min:, max: or both");
		if (t->has_min && t->has_max && t->min > t->max)
			return place_error(c->err, &t->at, "row_count: min %lld is above max %lld", t->min, t->max);
		return 0;
	case DT_ROW_COUNT_DELTA: {
		char *end;
		v = ymap_get(args, "max_pct");
		s = scalar_text(v);
		if (!v)
			return place_error(c->err, &t->at, "row_count_delta needs max_pct: (a percentage)");
		t->max_pct = s ? strtod(s, &end) : -1;
		if (!s || !*s || *end || !isfinite(t->max_pct) || t->max_pct < 0)
			return yaml_error(c->err, v, "max_pct must be a percentage (a number, 0 or more)");
		return 0;
	}
	case DT_EXPRESSION:
		v = args && args->kind == Y_MAP ? ymap_get(args, "expression") : args;
		if (!v || !(s = scalar_text(v)) || is_null_node(v))
			return place_error(c->err, &t->at, "expression needs a SQL condition: expression: \"amount >= 0\"");
		t->expression = s;
		return 0;
	case DT_FRESHER_THAN:
		v = ymap_get(args, "field");
		if (v && (!(s = scalar_text(v)) || is_null_node(v)))
			return yaml_error(c->err, v, "field must be a column name");
		t->field = v ? v->scalar : t->column;
		if (!t->field)
			return place_error(c->err, &t->at, "fresher_than needs field: (a timestamp column)");
		v = ymap_get(args, "within");
		if (!v)
			return place_error(c->err, &t->at, "fresher_than needs within: (such as 30m, 24h or 7d)");
		if (!(s = scalar_text(v)) || val_parse_duration(s, &secs) || secs > 1e12 ||
		    !(t->within_seconds = llround(secs)))
			return yaml_error(c->err, v, "within must be a duration such as 30m, 24h or 7d");
		t->within = s;
		return 0;
	case DT_UNIQUE_COMBINATION:
		v = args && args->kind == Y_MAP ? ymap_get(args, "columns") : args;
		if (!v && args && args->kind == Y_MAP)
			v = ymap_get(args, "combination_of_columns");
		if (!v)
			return place_error(c->err, &t->at, "unique_combination needs a list of columns: [a, b]");
		return list_of_names(c, v, "unique_combination columns", 0, &t->columns, &t->ncolumns);
	default:
		return 0;
	}
}

static void add_test(struct parse_ctx *c, struct datatest *t)
{
	struct datatest_list *l = c->list;

	if (l->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 64;
		l->v = arena_grow(c->a, l->v, l->n, c->cap, sizeof(*l->v));
	}
	l->v[l->n++] = t;
}

/*
 * dbt 1.10 puts a test's arguments under `arguments:`, beside `config:`:
 * the same test as the arguments written next to config. The entry is
 * read as that flat map (a new node in the arena; positions kept).
 */
static int flatten_arguments(struct parse_ctx *c, const struct ynode **args)
{
	const struct ynode *in = *args, *inner;
	struct ynode *out;
	size_t i, k = 0;

	if (!in || in->kind != Y_MAP || !(inner = ymap_get(in, "arguments")))
		return 0;
	if (is_null_node(inner))
		inner = NULL;
	else if (inner->kind != Y_MAP)
		return yaml_error(c->err, inner, "arguments must be a map of argument: value");
	out = arena_alloc(c->a, sizeof(*out));
	*out = *in;
	out->items = arena_alloc(c->a, (2 * (in->n + (inner ? inner->n : 0)) + 1) * sizeof(*out->items));
	out->n = 0;
	for (i = 0; i < in->n; i++) {
		if (!strcmp(in->items[2 * i]->scalar, "arguments"))
			continue;
		out->items[2 * k] = in->items[2 * i];
		out->items[2 * k++ + 1] = in->items[2 * i + 1];
		out->n = k;
	}
	for (i = 0; inner && i < inner->n; i++) {
		if (ymap_get(out, inner->items[2 * i]->scalar))
			return yaml_error(c->err, inner->items[2 * i], "'%s' is given twice: under arguments: and beside it",
					  inner->items[2 * i]->scalar);
		out->items[2 * k] = inner->items[2 * i];
		out->items[2 * k++ + 1] = inner->items[2 * i + 1];
		out->n = k;
	}
	*args = out;
	return 0;
}

/*
 * The {% test %} macro a tests: entry names: x (test_x), or package.x. A
 * bare x is looked up as from pkg, the project or package whose file
 * holds the entry.
 */
static const struct macro_def *test_macro(struct parse_ctx *c, const char *pkg_of_entry, const char *name)
{
	const char *dot = strchr(name, '.');
	const struct val *ns, *f;
	char *pkg;

	if (!c->macros)
		return NULL;
	if (!dot)
		return macros_resolve(c->macros, pkg_of_entry, arena_printf(c->a, "test_%s", name));
	pkg = arena_strndup(c->a, name, (size_t)(dot - name));
	ns = macros_namespace(c->macros, pkg);
	f = ns ? val_get(ns, arena_printf(c->a, "test_%s", dot + 1)) : NULL;
	return f && f->kind == V_FUNC ? macros_def_of(f->u.fn.fn) : NULL;
}

/*
 * The SQL of a test written as a macro: a template that calls it with
 * model (the tested relation), column_name and the entry's arguments, as
 * dbt calls it. A string argument that is a ref() or source() call is
 * passed as that call, as dbt renders them.
 */
static struct test_file *macro_test_file(struct parse_ctx *c, struct datatest *t, const char *name,
					 const struct macro_def *macro, const struct val *args)
{
	struct test_file *f = arena_alloc(c->a, sizeof(*f));
	const char *dot = strchr(name, '.');
	struct buf b = BUF_INIT;
	size_t i;

	if (dot)
		buf_printf(&b, "{{ %.*s.test_%s(", (int)(dot - name), name, dot + 1);
	else if (strcmp(macro->package, c->p->name) && strcmp(macro->package, "dbt"))
		/* a package's own test, named bare in its YAML: the render is not the package's */
		buf_printf(&b, "{{ %s.test_%s(", macro->package, name);
	else
		buf_printf(&b, "{{ test_%s(", name);
	if (t->source)
		buf_printf(&b, "model=source('%s', '%s')", t->source->source_name, t->source->name);
	else
		buf_printf(&b, "model=ref('%s')", t->model->name);
	if (t->column) {
		buf_puts(&b, ", column_name=");
		val_repr(&(struct val){ V_STR, { .str = { t->column, strlen(t->column), NULL } } }, &b);
	}
	for (i = 0; i < args->u.dict.n; i++) {
		const struct val *v = &args->u.dict.vals[i];

		buf_printf(&b, ", %s=", args->u.dict.keys[i]);
		if (v->kind == V_STR && (!strncmp(v->u.str.s, "ref(", 4) || !strncmp(v->u.str.s, "source(", 7)))
			buf_puts(&b, v->u.str.s);
		else
			val_repr(v, &b);
	}
	buf_puts(&b, ") }}");
	f->name = t->kind_name;
	f->path = t->at.path;
	f->src = arena_strndup(c->a, b.s, b.len);
	f->src_len = b.len;
	buf_release(&b);
	return f;
}

/*
 * One entry of a tests: list: "not_null", or {accepted_values: {values:
 * [...], severity: warn}}, or {unique_combination: [a, b]}.
 */
static int parse_test(struct parse_ctx *c, struct model *model, struct source_table *source,
		      const struct ynode *col, int quote_column, const struct ynode *e)
{
	struct arena *a = c->a;
	struct datatest *t = arena_alloc(a, sizeof(*t));
	const struct ynode *name_node = e, *args = NULL;
	struct val argv = val_dict_new();
	const char *custom = NULL;
	const struct macro_def *macro = NULL;
	int enabled = 1, rc, k;
	size_t i;

	t->model = model;
	t->source = source;
	t->at = place_of(e);
	t->config = val_dict_new();
	parse_threshold("!=0", &t->warn_if);
	parse_threshold("!=0", &t->error_if);
	t->warn_if.text = t->error_if.text = "!=0";
	t->limit = -1;
	if (col) {
		t->column = col->scalar;
		t->column_at = place_of(col);
		t->quote_column = quote_column;
	}
	if (e->kind == Y_MAP) {
		if (e->n != 1)
			return yaml_error(c->err, e, "a test is a name, or a map with one key: the test's name "
					  "(found %zu keys; indent its arguments under the name)", e->n);
		name_node = e->items[0];
		args = e->items[1];
		if (is_null_node(args))
			args = NULL;
	} else if (e->kind != Y_SCALAR || is_null_node(e)) {
		return yaml_error(c->err, e, "a test is a name, or a map with one key: the test's name");
	}
	/* a project's own test_<name> macro overrides a built-in test of that name, as in dbt */
	macro = test_macro(c, test_project(c, t), name_node->scalar);
	for (k = 0; k < DT_SINGULAR && !macro; k++)
		if (!strcmp(name_node->scalar, kind_names[k]))
			break;
	if (macro)
		k = DT_SINGULAR;
	if (k == DT_SINGULAR && macro) {
		/* a {% test %} macro: run as a singular test whose SQL is the macro's call */
		t->kind_name = arena_strdup(a, name_node->scalar);
		for (char *dot = strchr((char *)t->kind_name, '.'); dot; dot = strchr(dot, '.'))
			*dot = '_';
	} else if (k == DT_SINGULAR) {
		const char *s = dag_suggest(name_node->scalar, kind_names, DT_SINGULAR);
		if (s)
			return yaml_error(c->err, name_node, "unknown test '%s' (did you mean '%s'?)", name_node->scalar, s);
		return yaml_error(c->err, name_node, "unknown test '%s' (known: " KNOWN_TESTS ")", name_node->scalar);
	}
	t->kind = (enum datatest_kind)k;
	if (!macro)
		t->kind_name = kind_names[k];
	if ((rc = apply_defaults(c, t)) || (rc = flatten_arguments(c, &args)))
		return rc;
	if (args && args->kind == Y_MAP) {
		/* Config first (the entry's own keys, then config:), then what the kind takes. */
		for (i = 0; i < args->n; i++) {
			const char *key = args->items[2 * i]->scalar;
			const struct ynode *v = args->items[2 * i + 1];
			if (!strcmp(key, "config")) {
				size_t j;
				if (is_null_node(v))
					continue;
				if (v->kind != Y_MAP)
					return yaml_error(c->err, v, "config must be a map");
				for (j = 0; j < v->n; j++) {
					struct val cv = yaml_to_val(a, v->items[2 * j + 1]);
					if ((rc = apply_config(c, t, v->items[2 * j]->scalar, &cv, place_of(v->items[2 * j + 1]))))
						return rc;
				}
			} else if (!strcmp(key, "name")) {
				if (!scalar_text(v) || is_null_node(v))
					return yaml_error(c->err, v, "name must be text");
				custom = v->scalar;
			} else if (in_list(config_keys, key)) {
				struct val cv = yaml_to_val(a, v);
				if ((rc = apply_config(c, t, key, &cv, place_of(v))))
					return rc;
			} else if (!strcmp(key, "column_name") && !col) {
				if (!scalar_text(v) || is_null_node(v))
					return yaml_error(c->err, v, "column_name must be a column");
				t->column = v->scalar;
				t->column_at = place_of(v);
			} else if (macro || in_list(kind_args[t->kind], key)) {
				val_dict_set(a, &argv, key, yaml_to_val(a, v));
			} else {
				struct buf known = BUF_INIT;
				const char *const *ka;
				for (ka = kind_args[t->kind]; *ka; ka++)
					buf_printf(&known, "%s, ", *ka);
				rc = yaml_error(c->err, args->items[2 * i], "unknown argument '%s' for %s (it takes %sand the "
						"config keys severity, warn_if, error_if, store_failures, where, limit)",
						key, t->kind_name, known.s);
				buf_release(&known);
				return rc;
			}
		}
	} else if (args && args->kind == Y_SEQ && t->kind == DT_UNIQUE_COMBINATION) {
		val_dict_set(a, &argv, "columns", yaml_to_val(a, args));
	} else if (args && args->kind == Y_SCALAR && t->kind == DT_EXPRESSION) {
		val_dict_set(a, &argv, "expression", yaml_to_val(a, args));
	} else if (args) {
		return yaml_error(c->err, args, "the arguments of %s must be a map", t->kind_name);
	}
	if (macro)
		t->file = macro_test_file(c, t, name_node->scalar, macro, &argv);
	else if ((rc = kind_arguments(c, t, args)))
		return rc;
	enabled = val_get_bool(&t->config, "enabled", 1);
	{
		/* dbt counts column_name among the arguments a name is made of */
		struct val named = val_dict_merge(a, &argv, NULL);
		if (t->column)
			val_dict_set(a, &named, "column_name", val_str(t->column));
		set_name(c, t, custom, &named);
		/* its SQL's place, as target/compiled shows it: next to the YAML, as dbt does */
		if (macro)
			t->file->path = arena_printf(a, "%s/%s.sql", t->at.path, t->name);
		/* a dbt project keeps dbt's ids, which dashboards and --select strings hold */
		if (c->p->dbt)
			t->unique_id = dbt_test_unique_id(c, t, args);
		set_definition(c, t, &named);
	}
	if (enabled)
		add_test(c, t);
	return 0;
}

static int parse_tests(struct parse_ctx *c, struct model *model, struct source_table *source,
		       const struct ynode *entry, const struct ynode *col, int quote_column)
{
	static const char *const keys[] = { "tests", "data_tests" };
	size_t k, i;
	int rc;

	for (k = 0; k < 2; k++) {
		const struct ynode *l = ymap_get(entry, keys[k]);
		if (is_null_node(l))
			continue;
		if (l->kind != Y_SEQ)
			return yaml_error(c->err, l, "%s must be a list of tests", keys[k]);
		for (i = 0; i < l->n; i++)
			if ((rc = parse_test(c, model, source, col, quote_column, l->items[i])))
				return rc;
	}
	return 0;
}

/* A model's or a source table's property entry: its tests and its columns' tests. */
static int parse_entry(struct parse_ctx *c, struct model *model, struct source_table *source,
		       const struct ynode *e)
{
	const struct ynode *cols;
	size_t i;
	int rc;

	if (!e || e->kind != Y_MAP)
		return 0;
	if ((rc = parse_tests(c, model, source, e, NULL, 0)))
		return rc;
	cols = ymap_get(e, "columns");
	if (is_null_node(cols))
		return 0;
	if (cols->kind != Y_SEQ)
		return yaml_error(c->err, cols, "columns must be a list of {name: ...}");
	for (i = 0; i < cols->n; i++) {
		const struct ynode *col = cols->items[i], *name, *q;
		int quote = 0;
		if (col->kind != Y_MAP)
			return yaml_error(c->err, col, "a column entry must be a map with name:");
		if (!ymap_get(col, "tests") && !ymap_get(col, "data_tests"))
			continue;
		name = ymap_get(col, "name");
		if (!name || name->kind != Y_SCALAR || is_null_node(name))
			return yaml_error(c->err, name ? name : col, "a column with tests needs a name");
		if ((q = ymap_get(col, "quote")))
			quote = q->kind == Y_SCALAR && !strcmp(q->scalar, "true");
		if ((rc = parse_tests(c, model, source, col, name, quote)))
			return rc;
	}
	return 0;
}

static int parse_singular(struct parse_ctx *c, struct test_file *f)
{
	struct datatest *t = arena_alloc(c->a, sizeof(*t));
	struct val none = val_dict_new();
	int rc;

	t->kind = DT_SINGULAR;
	t->kind_name = kind_names[DT_SINGULAR];
	t->file = f;
	t->at.path = f->path;
	t->config = val_dict_new();
	parse_threshold("!=0", &t->warn_if);
	parse_threshold("!=0", &t->error_if);
	t->warn_if.text = t->error_if.text = "!=0";
	t->limit = -1;
	if ((rc = apply_defaults(c, t)))
		return rc;
	set_name(c, t, f->name, &none);
	/* config() in the file is applied by datatest_add_nodes; the SQL is hashed at run time */
	add_test(c, t);
	return 0;
}

const struct val *datatest_settings(const struct project *p)
{
	const struct val *d = val_get(&p->raw, "tests");

	if (!d)
		d = val_get(&p->raw, "data_tests");
	if (!d)
		d = val_get(&p->raw, "data-tests");
	return d;
}

int datatest_parse(struct project *p, const struct macro_set *macros, struct datatest_list *list,
		   struct sluice_err *err)
{
	struct parse_ctx c;
	const struct val *d = datatest_settings(p);
	size_t i;
	int rc = 0;

	memset(&c, 0, sizeof(c));
	memset(list, 0, sizeof(*list));
	c.p = p;
	c.a = &p->arena;
	c.list = list;
	c.macros = macros;
	c.err = err;
	if (d && d->kind != V_NONE) {
		if (d->kind != V_DICT)
			return err_set(err, SLUICE_EUSAGE, "sluice.yml: tests: must be a map of settings (+severity: warn, ...)");
		c.defaults = d;
	}
	/* each entry is independent: with an error list, all their errors are shown */
	for (i = 0; !rc && i < p->nmodels; i++)
		rc = err_collect(p->errors, err, parse_entry(&c, p->models[i], NULL, p->models[i]->props_node));
	for (i = 0; !rc && i < p->nsources; i++)
		rc = err_collect(p->errors, err, parse_entry(&c, NULL, p->sources[i], p->sources[i]->props_node));
	for (i = 0; !rc && i < p->ntest_files; i++)
		rc = err_collect(p->errors, err, parse_singular(&c, p->test_files[i]));
	strmap_release(&c.names);
	return rc;
}

/* ---- nodes ---- */

struct singular_ctx {
	struct manifest *m;
	struct datatest *t;
	struct sluice_err *err;
};

static int singular_config(void *ud, const struct tpl_call *call)
{
	struct singular_ctx *s = ud;
	struct parse_ctx c;
	struct dt_place at = { call->path, call->line, call->col };
	size_t i;
	int rc;

	memset(&c, 0, sizeof(c));
	c.p = s->m->project;
	c.a = &s->m->project->arena;
	c.err = s->err;
	if (call->nargs)
		return place_error(s->err, &at, "config() takes keyword arguments only");
	for (i = 0; i < call->nkw; i++) {
		struct val v = val_clone(c.a, &call->kwargs[i]);
		if ((rc = apply_config(&c, s->t, call->kwnames[i], &v, at)))
			return rc;
	}
	return 0;
}

int datatest_add_nodes(struct manifest *m, const struct datatest_list *list, struct sluice_err *err)
{
	struct arena *a = &m->project->arena;
	size_t i;
	int rc;

	for (i = 0; i < list->n; i++) {
		struct datatest *t = list->v[i];
		struct node *n;
		if (t->model && !manifest_node(m, t->model->name))
			continue;   /* a disabled model takes its tests with it */
		n = &m->nodes[m->n];
		n->idx = m->n++;
		n->type = NODE_TEST;
		n->test = t;
		n->unique_id = t->unique_id;
		n->name = t->name;
		n->display = t->name;
		n->mat_name = "test";
		n->config_pos = val_dict_new();
		if (t->file) {
			struct singular_ctx s = { m, t, err };
			if ((rc = tpl_parse(a, t->file->path, t->file->src, t->file->src_len, &n->tpl, err)) ||
			    (rc = tpl_each_call(n->tpl, "config", singular_config, &s, a))) {
				if ((rc = err_collect(m->project->errors, err, rc)))
					return rc;
				if (!n->tpl)   /* a test without refs, to check the rest */
					tpl_parse(a, t->file->path, "", 0, &n->tpl, err);
			}
			{
				struct val none = val_dict_new();
				struct parse_ctx c;
				memset(&c, 0, sizeof(c));
				c.a = a;
				set_definition(&c, t, &none);
			}
			if (!val_get_bool(&t->config, "enabled", 1)) {
				m->n--;
				memset(n, 0, sizeof(*n));
				continue;
			}
		}
		n->config = t->config;
		n->tags = t->tags;
		n->ntags = t->ntags;
		n->info.name = t->name;
		n->info.unique_id = t->unique_id;
		n->info.path = t->at.path;
		n->info.tags = t->tags;
		n->info.ntags = t->ntags;
		n->info.config = &n->config;
		t->node = n;
	}
	return 0;
}

static struct node *resolve(struct manifest *m, const char *model, const char *source, const char *table)
{
	struct buf key = BUF_INIT;
	struct node *n;

	if (model)
		return manifest_node(m, model);
	buf_printf(&key, "%s.%s", source, table);
	n = strmap_get(&m->by_source, key.s);
	buf_release(&key);
	return n;
}

struct link_ctx {
	struct manifest *m;
	struct node *n;
	struct sluice_err *err;
};

static int link_ref(void *ud, const struct tpl_call *call)
{
	struct link_ctx *l = ud;
	struct dt_place at = { call->path, call->line, call->col };
	const struct val *arg = call->nargs ? &call->args[call->nargs - 1] : NULL;
	struct node *p;

	if (!arg || arg->kind != V_STR)
		return err_collect(l->m->project->errors, l->err, place_error(l->err, &at, "ref() needs a model name"));
	p = manifest_node(l->m, arg->u.str.s);
	if (!p)
		return err_collect(l->m->project->errors, l->err, place_error(l->err, &at, "unknown ref '%s'", arg->u.str.s));
	dag_add_edge(l->m->dag, p->idx, l->n->idx);
	return 0;
}

static int link_source(void *ud, const struct tpl_call *call)
{
	struct link_ctx *l = ud;
	struct dt_place at = { call->path, call->line, call->col };
	struct node *p;

	if (call->nargs != 2 || call->args[0].kind != V_STR || call->args[1].kind != V_STR)
		return err_collect(l->m->project->errors, l->err,
				   place_error(l->err, &at, "source() needs a source name and a table name"));
	p = resolve(l->m, NULL, call->args[0].u.str.s, call->args[1].u.str.s);
	if (!p && l->m->project->sources_incomplete)
		return 0;   /* as in manifest.c: a properties error already reported */
	if (!p)
		return err_collect(l->m->project->errors, l->err, place_error(l->err, &at, "unknown source '%s.%s'",
										 call->args[0].u.str.s, call->args[1].u.str.s));
	dag_add_edge(l->m->dag, p->idx, l->n->idx);
	return 0;
}

static int link_singular(struct manifest *m, struct node *n, struct sluice_err *err)
{
	struct arena *a = &m->project->arena;
	struct datatest *t = n->test;
	struct link_ctx l = { m, n, err };
	const struct dag *d = m->dag;
	size_t i;
	int rc;

	if ((rc = tpl_each_call(n->tpl, "ref", link_ref, &l, a)) ||
	    (rc = tpl_each_call(n->tpl, "source", link_source, &l, a)))
		return rc;
	n->connection = "default";
	n->relation = "";
	for (i = 0; i < d->nparents[n->idx]; i++) {
		const struct node *p = &m->nodes[d->parents[n->idx][i]];
		if (!i)
			n->connection = p->connection;
		else if (strcmp(p->connection, n->connection))
			return place_error(err, &t->at, "a singular test reads one connection, but '%s' is on '%s' and '%s' on '%s'",
					   m->nodes[d->parents[n->idx][0]].name, n->connection, p->name, p->connection);
	}
	if (t->store_failures)
		n->schema = arena_printf(a, "%s_audit", m->project->target.schema);
	return 0;
}

/* A generic test: its tested relation (and the other one, with to:) as parents. */
static int link_generic(struct manifest *m, struct node *n, struct sluice_err *err)
{
	struct arena *a = &m->project->arena;
	struct datatest *t = n->test;

	/* an ephemeral model is read as its query (manifest_read_sql) */
	t->tested = t->model ? manifest_node(m, t->model->name) : resolve(m, NULL, t->source->source_name, t->source->name);
	dag_add_edge(m->dag, t->tested->idx, n->idx);
	if (t->to_model || t->to_source) {
		t->other = resolve(m, t->to_model, t->to_source, t->to_table);
		if (!t->other)
			return place_error(err, &t->to_at, "model '%s' in to: is disabled", t->to_model);
		if (t->other != t->tested)
			dag_add_edge(m->dag, t->other->idx, n->idx);
		if (strcmp(t->other->connection, t->tested->connection) &&
		    (t->kind == DT_RELATIONSHIPS || t->store_failures))
			return place_error(err, &t->to_at, "%s joins %s (connection '%s') with %s (connection '%s'): "
					   "a join needs one connection (equal_row_count without store_failures "
					   "compares across connections)",
					   t->kind_name, t->tested->display, t->tested->connection, t->other->display,
					   t->other->connection);
	}
	n->connection = t->tested->connection;
	n->relation = t->tested->relation;
	if (t->store_failures)
		n->schema = t->tested->type == NODE_MODEL ? arena_printf(a, "%s_audit", t->tested->schema)
							  : arena_printf(a, "%s_audit", m->project->target.schema);
	return 0;
}

int datatest_link(struct manifest *m, struct sluice_err *err)
{
	size_t i;
	int rc;

	/* each test is independent: with an error list, all their errors are shown */
	for (i = 0; i < m->n; i++) {
		struct node *n = &m->nodes[i];
		if (n->type != NODE_TEST)
			continue;
		rc = n->test->kind == DT_SINGULAR ? link_singular(m, n, err) : link_generic(m, n, err);
		if ((rc = err_collect(m->project->errors, err, rc)))
			return rc;
	}
	return 0;
}

/* ---- SQL ---- */

int datatest_scannable(const struct datatest *t)
{
	switch (t->kind) {
	case DT_NOT_NULL:
	case DT_ACCEPTED_VALUES:
	case DT_EXPRESSION:
	case DT_ROW_COUNT:
	case DT_ROW_COUNT_DELTA:
	case DT_FRESHER_THAN:
		return !t->where && !t->store_failures;
	default:
		return 0;
	}
}

int datatest_aggregate(const struct datatest *t)
{
	return t->kind == DT_ROW_COUNT || t->kind == DT_ROW_COUNT_DELTA || t->kind == DT_FRESHER_THAN;
}

size_t datatest_scan_width(const struct datatest *t)
{
	return t->kind == DT_FRESHER_THAN ? 2 : 1;
}

#define REL_ALIAS "sluice_rel"

static int plain_ident(const char *s)
{
	if (!(islower((unsigned char)*s) || *s == '_'))
		return 0;
	for (s++; *s; s++)
		if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '_' || *s == '$'))
			return 0;
	return 1;
}

/*
 * A column as SQL: a plain lower-case name (or any name with quote: true)
 * is quoted and qualified; anything else is written as given, so a column
 * test may name an expression, as in dbt.
 */
static void column_sql(struct buf *b, const char *alias, const char *name, int quote)
{
	if (quote || plain_ident(name)) {
		if (alias)
			buf_printf(b, "%s.", alias);
		dialect_quote_ident(b, name);
	} else {
		buf_puts(b, name);
	}
}

void datatest_from(const struct datatest *t, const char *rel, struct buf *out)
{
	/* a subquery (an ephemeral model) needs a name in FROM: PostgreSQL before 16, Redshift */
	if (t->where)
		buf_printf(out, "(SELECT * FROM %s%s WHERE %s)", rel, *rel == '(' ? " AS " REL_ALIAS : "", t->where);
	else
		buf_puts(out, rel);
}

/* The condition a failing row meets (not_null, accepted_values, expression, relationships). */
static void row_predicate(const struct datatest *t, const struct dialect *d, const char *other, struct buf *b)
{
	struct buf list = BUF_INIT;
	size_t i;

	switch (t->kind) {
	case DT_NOT_NULL:
		column_sql(b, REL_ALIAS, t->column, t->quote_column);
		buf_puts(b, " IS NULL");
		break;
	case DT_ACCEPTED_VALUES:
		/*
		 * NOT IN is null for a null value: nulls are not_null's business,
		 * as in dbt. A null in the list is left out: it would make NOT IN
		 * null for every value, and a list of nulls only accepts none.
		 */
		for (i = 0; i < t->nvalues; i++) {
			if (!t->values[i])
				continue;
			if (list.len)
				buf_puts(&list, ", ");
			if (t->quote_values)
				dialect_literal(d, &list, t->values[i]);
			else
				buf_puts(&list, t->values[i]);
		}
		column_sql(b, REL_ALIAS, t->column, t->quote_column);
		if (list.len)
			buf_printf(b, " NOT IN (%s)", list.s);
		else
			buf_puts(b, " IS NOT NULL");
		break;
	case DT_EXPRESSION:
		buf_puts(b, "NOT (");
		if (t->column) {
			column_sql(b, REL_ALIAS, t->column, t->quote_column);
			buf_addc(b, ' ');
		}
		buf_printf(b, "%s)", t->expression);
		break;
	case DT_RELATIONSHIPS:
		column_sql(b, REL_ALIAS, t->column, t->quote_column);
		buf_printf(b, " IS NOT NULL AND NOT EXISTS (SELECT 1 FROM %s AS sluice_to WHERE ", other);
		column_sql(b, "sluice_to", t->field, 0);
		buf_puts(b, " = ");
		column_sql(b, REL_ALIAS, t->column, t->quote_column);
		buf_addc(b, ')');
		break;
	default:
		buf_puts(b, "false");
		break;
	}
	buf_release(&list);
}

/* fresher_than: whether max(field) is recent enough, as 0 (fresh) or 1. */
static void stale_flag(const struct datatest *t, const struct dialect *d, struct buf *b)
{
	buf_puts(b, "CASE WHEN max(");
	column_sql(b, REL_ALIAS, t->field, 0);
	buf_puts(b, ") >= ");
	d->now_minus(b, t->within_seconds);
	buf_puts(b, " THEN 0 ELSE 1 END");
}

void datatest_scan_items(const struct datatest *t, const struct dialect *d, const char *prefix,
			 struct buf *out)
{
	struct buf pred = BUF_INIT;

	switch (t->kind) {
	case DT_ROW_COUNT:
	case DT_ROW_COUNT_DELTA:
		buf_printf(out, "count(*) AS %s_0", prefix);
		break;
	case DT_FRESHER_THAN:
		stale_flag(t, d, out);
		buf_printf(out, " AS %s_0, max(", prefix);
		column_sql(out, REL_ALIAS, t->field, 0);
		buf_printf(out, ") AS %s_1", prefix);
		break;
	default:
		row_predicate(t, d, NULL, &pred);
		d->count_if(out, pred.s);
		buf_printf(out, " AS %s_0", prefix);
		break;
	}
	buf_release(&pred);
}

int datatest_scan_filter(const struct datatest *t, const struct dialect *d, struct buf *out)
{
	if (!datatest_scannable(t) || datatest_aggregate(t))
		return 0;
	buf_addc(out, '(');
	row_predicate(t, d, NULL, out);
	buf_addc(out, ')');
	return 1;
}

static void column_list(struct buf *b, const char *const *cols, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (i)
			buf_puts(b, ", ");
		column_sql(b, REL_ALIAS, cols[i], 0);
	}
}

void datatest_failing_sql(const struct datatest *t, const struct dialect *d, const struct dt_reads *reads,
			  long long baseline, struct buf *out)
{
	struct buf from = BUF_INIT;
	const char *col = t->column;

	datatest_from(t, reads->tested, &from);
	switch (t->kind) {
	case DT_NOT_NULL:
	case DT_ACCEPTED_VALUES:
	case DT_EXPRESSION:
	case DT_RELATIONSHIPS:
		buf_printf(out, "SELECT * FROM %s AS " REL_ALIAS " WHERE ", from.s);
		row_predicate(t, d, reads->other, out);
		break;
	case DT_UNIQUE:
	case DT_UNIQUE_COMBINATION:
		buf_puts(out, "SELECT ");
		if (t->kind == DT_UNIQUE)
			column_list(out, &col, 1);
		else
			column_list(out, t->columns, t->ncolumns);
		buf_printf(out, ", count(*) AS n_records FROM %s AS " REL_ALIAS, from.s);
		if (t->kind == DT_UNIQUE) {
			buf_puts(out, " WHERE ");
			column_list(out, &col, 1);
			buf_puts(out, " IS NOT NULL");
		}
		buf_puts(out, " GROUP BY ");
		if (t->kind == DT_UNIQUE)
			column_list(out, &col, 1);
		else
			column_list(out, t->columns, t->ncolumns);
		buf_puts(out, " HAVING count(*) > 1");
		break;
	case DT_ROW_COUNT:
		buf_printf(out, "SELECT count(*) AS row_count FROM %s AS " REL_ALIAS " HAVING ", from.s);
		if (t->has_min)
			buf_printf(out, "count(*) < %lld", t->min);
		if (t->has_min && t->has_max)
			buf_puts(out, " OR ");
		if (t->has_max)
			buf_printf(out, "count(*) > %lld", t->max);
		break;
	case DT_ROW_COUNT_DELTA:
		if (baseline < 0) {
			buf_printf(out, "SELECT count(*) AS row_count FROM %s AS " REL_ALIAS " HAVING false", from.s);
			break;
		}
		buf_printf(out, "SELECT count(*) AS row_count, %lld AS previous_row_count FROM %s AS " REL_ALIAS
			   " HAVING abs(count(*) - %lld) * 100.0 > %.17g * %lld", baseline, from.s, baseline,
			   t->max_pct, baseline);
		break;
	case DT_EQUAL_ROW_COUNT: {
		struct buf other = BUF_INIT;
		datatest_from(t, reads->other, &other);
		buf_printf(out, "SELECT a.n AS row_count, b.n AS to_row_count FROM (SELECT count(*) AS n FROM %s AS "
			   REL_ALIAS ") AS a CROSS JOIN (SELECT count(*) AS n FROM %s AS sluice_to) AS b WHERE a.n <> b.n",
			   from.s, other.s);
		buf_release(&other);
		break;
	}
	case DT_FRESHER_THAN:
		buf_puts(out, "SELECT max(");
		column_sql(out, REL_ALIAS, t->field, 0);
		buf_printf(out, ") AS latest FROM %s AS " REL_ALIAS " HAVING ", from.s);
		stale_flag(t, d, out);
		buf_puts(out, " = 1");
		break;
	default:
		buf_puts(out, "SELECT 1 WHERE false");
		break;
	}
	buf_release(&from);
}

long long datatest_row_limit(const struct datatest *t)
{
	return datatest_aggregate(t) || t->kind == DT_EQUAL_ROW_COUNT ? -1 : t->limit;
}

static int parse_count(const char *s, long long *out)
{
	char *end;

	if (!s)
		return -1;
	errno = 0;
	*out = strtoll(s, &end, 10);
	return errno || end == s || *end ? -1 : 0;
}

int datatest_eval_aggregate(const struct datatest *t, const char *const *vals, long long baseline,
			    long long *failures, json_t **sample, struct buf *detail, struct sluice_err *err)
{
	json_t *o;
	long long n;

	*failures = 0;
	*sample = NULL;
	if (t->kind == DT_FRESHER_THAN) {
		if (parse_count(vals[0], failures))
			return err_set(err, SLUICE_EDB, "fresher_than: unexpected value '%s'", vals[0] ? vals[0] : "NULL");
		if (!*failures)
			return 0;
		if (vals[1])
			buf_printf(detail, "latest %s is %s, older than %s", t->field, vals[1], t->within);
		else
			buf_printf(detail, "no %s at all (no rows, or all null)", t->field);
		o = json_object();
		json_object_set_new(o, "latest", vals[1] ? json_string(vals[1]) : json_null());
		json_object_set_new(o, "within", json_string(t->within));
		*sample = o;
		return 0;
	}
	if (parse_count(vals[0], &n))
		return err_set(err, SLUICE_EDB, "%s: unexpected count '%s'", t->kind_name, vals[0] ? vals[0] : "NULL");
	o = json_object();
	json_object_set_new(o, "row_count", json_integer(n));
	if (t->kind == DT_ROW_COUNT) {
		if (t->has_min && n < t->min) {
			*failures = t->min - n;
			buf_printf(detail, "%lld rows, %lld fewer than min %lld", n, *failures, t->min);
		} else if (t->has_max && n > t->max) {
			*failures = n - t->max;
			buf_printf(detail, "%lld rows, %lld more than max %lld", n, *failures, t->max);
		}
		if (t->has_min)
			json_object_set_new(o, "min", json_integer(t->min));
		if (t->has_max)
			json_object_set_new(o, "max", json_integer(t->max));
	} else {
		long long change = baseline < 0 ? 0 : llabs(n - baseline);
		double pct = baseline <= 0 ? (change ? 100.0 : 0) : change * 100.0 / (double)baseline;
		if (baseline >= 0 && pct > t->max_pct) {
			*failures = change;
			buf_printf(detail, "%lld rows: %s%lld (%.1f%%) against %lld at the last successful run; max_pct is %g",
				   n, n >= baseline ? "+" : "-", change, pct, baseline, t->max_pct);
		}
		json_object_set_new(o, "previous_row_count", baseline < 0 ? json_null() : json_integer(baseline));
		json_object_set_new(o, "change_pct", json_real(pct));
	}
	if (*failures)
		*sample = o;
	else
		json_decref(o);
	return 0;
}
