/*
 * context.c: the dbt context beyond ref, source and config; see context.h.
 * Objects are values: a relation is a string with attributes, a module a
 * dict of functions, and each function is a host function (TPL_FN_HOST)
 * whose name this file answers in context_call.
 */
#include <ctype.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "context.h"
#include "dialect.h"
#include "util/hash.h"
#include "json.h"
#include "manifest.h"
#include "yaml.h"

static struct val fn(const char *name, const struct val *self)
{
	struct val v = { V_FUNC, { 0 } };

	v.u.fn.fn = name;
	v.u.fn.self = self;
	v.u.fn.tag = TPL_FN_HOST;
	return v;
}

static const struct val *kwarg(const struct tpl_call *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->nkw; i++)
		if (!strcmp(c->kwnames[i], name))
			return &c->kwargs[i];
	return NULL;
}

/* Argument i, or the keyword argument name, or NULL. */
static const struct val *arg(const struct tpl_call *c, size_t i, const char *name)
{
	return i < c->nargs ? &c->args[i] : kwarg(c, name);
}

static const char *arg_text(const struct tpl_call *c, size_t i, const char *name)
{
	const struct val *v = arg(c, i, name);

	return v && v->kind == V_STR ? v->u.str.s : NULL;
}

/* ---- relations ------------------------------------------------------------ */

struct val context_relation(struct arena *a, const char *database, const char *schema, const char *identifier,
			    struct val rendered)
{
	struct val *attrs = arena_alloc(a, sizeof(*attrs)), *self = arena_alloc(a, sizeof(*self));

	*attrs = val_dict_new();
	val_dict_set(a, attrs, "database", database && *database ? val_str(database) : val_none());
	val_dict_set(a, attrs, "schema", schema ? val_str(schema) : val_none());
	val_dict_set(a, attrs, "identifier", identifier ? val_str(identifier) : val_none());
	val_dict_set(a, attrs, "name", identifier ? val_str(identifier) : val_none());
	val_dict_set(a, attrs, "table", identifier ? val_str(identifier) : val_none());
	rendered.u.str.attrs = attrs;
	*self = rendered;
	val_dict_set(a, attrs, "include", fn("relation.include", self));
	val_dict_set(a, attrs, "render", fn("relation.render", self));
	val_dict_set(a, attrs, "quote", fn("relation.render", self));
	return rendered;
}

/* relation.include(database=, schema=, identifier=): the parts kept, quoted. */
static int relation_include(const struct tpl_call *c, struct val *out)
{
	const struct val *rel = c->self, *attrs = rel ? rel->u.str.attrs : NULL;
	static const char *const parts[] = { "database", "schema", "identifier" };
	struct buf b = BUF_INIT;
	size_t i;

	for (i = 0; i < 3; i++) {
		const struct val *keep = kwarg(c, parts[i]), *v = val_get(attrs, parts[i]);

		if ((keep && !val_truthy(keep)) || !v || v->kind != V_STR || (i == 0 && !keep))
			continue;   /* sluice names relations schema.identifier unless asked */
		if (b.len)
			buf_addc(&b, '.');
		dialect_quote_ident(&b, v->u.str.s);
	}
	*out = context_relation(c->arena, val_get_str(attrs, "database", NULL), val_get_str(attrs, "schema", NULL),
				val_get_str(attrs, "identifier", NULL), val_str_dup(c->arena, b.s ? b.s : "", b.len));
	buf_release(&b);
	return 0;
}

/* ---- the node ------------------------------------------------------------- */

struct val context_node(const struct manifest *m, const struct node *n, struct arena *a)
{
	struct val d = val_dict_new(), fqn = val_list_new();
	const char *resource = n->type == NODE_SOURCE ? "source" : n->type == NODE_TEST ? "test" :
			       n->model ? n->model->resource : "model";
	size_t i;

	val_dict_set(a, &d, "name", val_str(n->name));
	val_dict_set(a, &d, "unique_id", val_str(n->unique_id));
	val_dict_set(a, &d, "resource_type", val_str(resource));
	val_dict_set(a, &d, "package_name", val_str(n->model && n->model->nfqn ? n->model->fqn[0] : m->project->name));
	if (n->model) {
		for (i = 0; i < n->model->nfqn; i++)
			val_list_push(a, &fqn, val_str(n->model->fqn[i]));
		val_dict_set(a, &d, "path", val_str(n->model->path));
		val_dict_set(a, &d, "original_file_path", val_str(n->model->path));
	}
	val_dict_set(a, &d, "fqn", fqn);
	val_dict_set(a, &d, "config", n->config);
	val_dict_set(a, &d, "schema", n->schema ? val_str(n->schema) : val_none());
	val_dict_set(a, &d, "alias", n->identifier ? val_str(n->identifier) : val_none());
	val_dict_set(a, &d, "database", val_str(val_get_str(&m->target, "database", "")));
	val_dict_set(a, &d, "tags", val_get(&n->config, "tags") ? *val_get(&n->config, "tags") : val_list_new());
	return d;
}

/* ---- modules.re ------------------------------------------------------------ */

/* Python's \d \w \s and (?i) in the ERE regcomp reads. */
static int re_compile(const char *pat, int icase, regex_t *re, struct sluice_err *err)
{
	struct buf b = BUF_INIT;
	char msg[128];
	int rc, flags = REG_EXTENDED;

	if (!strncmp(pat, "(?i)", 4)) {
		pat += 4;
		icase = 1;
	}
	for (; *pat; pat++) {
		if (*pat == '\\' && pat[1] && strchr("dwsDWS", pat[1])) {
			const char *cls = pat[1] == 'd' ? "[0-9]" : pat[1] == 'w' ? "[[:alnum:]_]" :
					  pat[1] == 's' ? "[[:space:]]" : pat[1] == 'D' ? "[^0-9]" :
					  pat[1] == 'W' ? "[^[:alnum:]_]" : "[^[:space:]]";
			buf_puts(&b, cls);
			pat++;
		} else {
			buf_addc(&b, *pat);
		}
	}
	rc = regcomp(re, b.s ? b.s : "", flags | (icase ? REG_ICASE : 0));
	buf_release(&b);
	if (rc) {
		regerror(rc, re, msg, sizeof(msg));
		return err_set(err, SLUICE_EUSAGE, "modules.re: bad pattern: %s", msg);
	}
	return 0;
}

/* re.match, re.search, re.findall, re.sub. */
static int re_call(const char *what, const struct tpl_call *c, struct val *out, struct sluice_err *err)
{
	const char *pat = arg_text(c, 0, "pattern");
	const struct val *flags = kwarg(c, "flags");
	const char *s = arg_text(c, !strcmp(what, "sub") ? 2 : 1, "string");
	const char *repl = !strcmp(what, "sub") ? arg_text(c, 1, "repl") : NULL;
	regmatch_t g[10];
	regex_t re;
	struct buf b = BUF_INIT;
	size_t i;
	int rc;

	if (!pat || !s || (!strcmp(what, "sub") && !repl))
		return err_set(err, SLUICE_EUSAGE, "modules.re.%s() needs a pattern and a string", what);
	if ((rc = re_compile(pat, flags && val_truthy(flags), &re, err)))
		return rc;
	*out = val_none();
	if (!strcmp(what, "match") || !strcmp(what, "search") || !strcmp(what, "fullmatch")) {
		if (!regexec(&re, s, 10, g, 0) && (what[0] == 's' || g[0].rm_so == 0) &&
		    (what[0] != 'f' || s[g[0].rm_eo] == '\0')) {
			struct val groups = val_list_new(), *self = arena_alloc(c->arena, sizeof(*self)), *attrs;

			for (i = 0; i < 10 && g[i].rm_so >= 0; i++)
				val_list_push(c->arena, &groups, val_str_dup(c->arena, s + g[i].rm_so,
									    (size_t)(g[i].rm_eo - g[i].rm_so)));
			attrs = arena_alloc(c->arena, sizeof(*attrs));
			*attrs = val_dict_new();
			*out = groups.u.list.items[0];
			out->u.str.attrs = attrs;
			*self = *out;
			val_dict_set(c->arena, attrs, "_groups", groups);
			val_dict_set(c->arena, attrs, "group", fn("re.group", self));
			val_dict_set(c->arena, attrs, "groups", fn("re.groups", self));
		}
	} else if (!strcmp(what, "findall") || !strcmp(what, "sub")) {
		const char *p = s;

		*out = val_list_new();
		while (*p && !regexec(&re, p, 10, g, p == s ? 0 : REG_NOTBOL)) {
			if (repl) {
				buf_add(&b, p, (size_t)g[0].rm_so);
				buf_puts(&b, repl);
			} else {
				i = g[1].rm_so >= 0 ? 1 : 0;
				val_list_push(c->arena, out, val_str_dup(c->arena, p + g[i].rm_so,
									  (size_t)(g[i].rm_eo - g[i].rm_so)));
			}
			if (g[0].rm_eo == 0) {
				if (repl)
					buf_addc(&b, *p);
				p++;
			} else {
				p += g[0].rm_eo;
			}
		}
		if (repl) {
			buf_puts(&b, p);
			*out = val_str_dup(c->arena, b.s ? b.s : "", b.len);
		}
	}
	regfree(&re);
	buf_release(&b);
	return 0;
}

static struct val module_re(struct arena *a)
{
	static const char *const names[] = { "match", "search", "fullmatch", "findall", "sub" };
	struct val d = val_dict_new();
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		val_dict_set(a, &d, names[i], fn(arena_printf(a, "re.%s", names[i]), NULL));
	val_dict_set(a, &d, "IGNORECASE", val_num(2));
	val_dict_set(a, &d, "I", val_num(2));
	return d;
}

/* ---- time ------------------------------------------------------------------ */

/* A moment as dbt's datetime shows it: "YYYY-MM-DD HH:MM:SS.ffffff", with strftime, isoformat. */
static struct val moment(struct arena *a, const char *text)
{
	struct val *self = arena_alloc(a, sizeof(*self)), *attrs = arena_alloc(a, sizeof(*attrs));
	struct val v = val_str(text);
	int y = 0, mo = 0, d = 0;

	*attrs = val_dict_new();
	sscanf(text, "%d-%d-%d", &y, &mo, &d);
	val_dict_set(a, attrs, "year", val_num(y));
	val_dict_set(a, attrs, "month", val_num(mo));
	val_dict_set(a, attrs, "day", val_num(d));
	v.u.str.attrs = attrs;
	*self = v;
	val_dict_set(a, attrs, "strftime", fn("datetime.strftime", self));
	val_dict_set(a, attrs, "isoformat", fn("datetime.isoformat", self));
	return v;
}

static struct val now(const struct context *cx, struct arena *a)
{
	struct timespec ts;
	struct tm tm;
	char b[64];

	if (cx->logical)
		return moment(a, "0000-00-00 00:00:00.000000");
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(b, sizeof(b), "%Y-%m-%d %H:%M:%S", &tm);
	return moment(a, arena_printf(a, "%s.%06ld", b, ts.tv_nsec / 1000));
}

static int datetime_format(const struct tpl_call *c, int iso, struct val *out, struct sluice_err *err)
{
	const char *text = c->self ? c->self->u.str.s : NULL, *fmt = iso ? "%Y-%m-%dT%H:%M:%S" : arg_text(c, 0, "format");
	struct tm tm;
	char b[256];

	if (!text || !fmt)
		return err_set(err, SLUICE_EUSAGE, "strftime() needs a format");
	memset(&tm, 0, sizeof(tm));
	sscanf(text, "%d-%d-%d %d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec);
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	/* the format is the template's, as Python's strftime takes it */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	if (!strftime(b, sizeof(b), fmt, &tm))
		b[0] = '\0';
#pragma GCC diagnostic pop
	*out = val_str(arena_strdup(c->arena, b));
	return 0;
}

static struct val module_datetime(struct arena *a)
{
	struct val dt = val_dict_new(), date = val_dict_new(), mod = val_dict_new();

	val_dict_set(a, &dt, "now", fn("datetime.now", NULL));
	val_dict_set(a, &dt, "utcnow", fn("datetime.now", NULL));
	val_dict_set(a, &date, "today", fn("datetime.today", NULL));
	val_dict_set(a, &mod, "datetime", dt);
	val_dict_set(a, &mod, "date", date);
	return mod;
}

/* ---- the warehouse --------------------------------------------------------- */

struct table_build {
	struct arena *a;
	struct val rows, data, names;  /* rows as dicts, the same as lists, column names */
	struct hasher h;               /* of every value: what the render read */
	long long n;
};

/* A value of a result: numbers and booleans as such, by the column's type. */
static struct val cell(struct arena *a, const char *type, const char *text, size_t len)
{
	static const char *const numeric[] = { "int", "numeric", "decimal", "float", "double", "real", "bigint",
					       "smallint", "oid", NULL };
	char *end;
	double d;
	size_t i;

	if (!text)
		return val_none();
	for (i = 0; type && numeric[i]; i++)
		if (strstr(type, numeric[i])) {
			d = strtod(text, &end);
			if (end != text && !*end)
				return val_num(d);
		}
	if (type && (!strcmp(type, "bool") || !strcmp(type, "boolean")))
		return val_bool(text[0] == 't' || text[0] == '1');
	return val_str_dup(a, text, len);
}

static int table_row(void *ud, const struct sluice_row *row)
{
	struct table_build *t = ud;
	struct val d = val_dict_of(t->a, row->ncols), l = val_list_of(t->a, row->ncols);
	size_t i;

	for (i = 0; i < row->ncols; i++) {
		d.u.dict.keys[i] = arena_strdup(t->a, row->names[i]);
		d.u.dict.vals[i] = l.u.list.items[i] = cell(t->a, row->types ? row->types[i] : NULL, row->values[i],
							     row->values[i] ? row->lens[i] : 0);
		hasher_add(&t->h, row->values[i] ? "v" : "n", 1);
		if (row->values[i])
			hasher_add(&t->h, row->values[i], row->lens[i] + 1);
		if (!t->n)
			val_list_push(t->a, &t->names, val_str(d.u.dict.keys[i]));
	}
	val_list_push(t->a, &t->rows, d);
	val_list_push(t->a, &t->data, l);
	t->n++;
	return 0;
}

/*
 * Run sql (read-only) on the render's connection: *table as agate's table
 * shows it (a list of rows, each a dict that row[0] also reads, with
 * .rows, .columns[i].values(), .column_names), *data as a list of lists.
 */
static int run_sql(const struct context *cx, const char *sql, struct arena *a, struct val *table, struct val *data,
		   struct sluice_err *err)
{
	const struct render_db *db = cx->m->db;
	struct table_build t;
	struct val *attrs, cols = val_list_new();
	char rh[HASH_HEX];
	size_t i, j;
	int rc;

	if (!db)
		return err_set(err, SLUICE_EUSAGE, "this command does not read the warehouse while it renders");
	if (cx->logical && cx->replay) {
		struct query_replay *rp = cx->replay;
		const struct val *ans;

		if (!rp->done && (rc = rp->run(rp, err)))
			return rc;
		if (rp->next >= rp->answers.u.list.n)
			return err_set(err, SLUICE_EUSAGE, "a query the template runs depends on how relations are named");
		ans = &rp->answers.u.list.items[rp->next++];
		*table = *val_get(ans, "table");
		if (data)
			*data = *val_get(ans, "data");
		if (cx->used)
			val_dict_set(a, cx->used, arena_printf(a, "query.%zu", rp->next),
				     *val_get(ans, "hash"));
		return 0;
	}
	memset(&t, 0, sizeof(t));
	t.a = a;
	t.rows = t.data = t.names = val_list_new();
	hasher_init(&t.h);
	rc = db->query(db, cx->conn ? cx->conn : "default", sql, table_row, &t, err);
	hasher_finish(&t.h, rh);
	if (rc)
		return rc;
	for (i = 0; i < t.names.u.list.n; i++) {
		struct val col = val_list_of(a, t.rows.u.list.n), *ca = arena_alloc(a, sizeof(*ca)), *self;

		for (j = 0; j < t.rows.u.list.n; j++)
			col.u.list.items[j] = t.data.u.list.items[j].u.list.items[i];
		self = arena_alloc(a, sizeof(*self));
		*self = col;
		*ca = val_dict_new();
		val_dict_set(a, ca, "name", t.names.u.list.items[i]);
		val_dict_set(a, ca, "values", fn("agate.values", self));
		col.u.list.attrs = ca;
		val_list_push(a, &cols, col);
	}
	attrs = arena_alloc(a, sizeof(*attrs));
	*attrs = val_dict_new();
	val_dict_set(a, attrs, "rows", t.rows);
	val_dict_set(a, attrs, "columns", cols);
	val_dict_set(a, attrs, "column_names", t.names);
	*table = t.rows;
	table->u.list.attrs = attrs;
	if (data)
		*data = t.data;
	/* the answer is an input of the render, as a var is: numbered in the order asked */
	rh[16] = '\0';
	if (cx->replay && cx->replay->recording) {
		struct val ans = val_dict_new();

		val_dict_set(a, &ans, "table", *table);
		val_dict_set(a, &ans, "data", t.data);
		val_dict_set(a, &ans, "hash", val_str(arena_strdup(a, rh)));
		val_list_push(a, &cx->replay->answers, ans);
	}
	return 0;
}

/* information_schema rows of one relation: its type (get_relation) or its columns. */
static int relation_query(const struct context *cx, const char *what, const char *schema, const char *ident,
			  struct arena *a, struct val *table, struct sluice_err *err)
{
	struct buf q = BUF_INIT;
	int rc;

	if (!strcmp(what, "columns"))
		buf_puts(&q, "select column_name, data_type, character_maximum_length, numeric_precision, numeric_scale "
			     "from information_schema.columns where table_schema = ");
	else
		buf_puts(&q, "select table_type from information_schema.tables where table_schema = ");
	dialect_quote_literal(&q, schema);
	buf_puts(&q, " and table_name = ");
	dialect_quote_literal(&q, ident);
	if (!strcmp(what, "columns"))
		buf_puts(&q, " order by ordinal_position");
	rc = run_sql(cx, q.s, a, table, NULL, err);
	buf_release(&q);
	return rc;
}

/* adapter.get_relation(database, schema, identifier), load_relation(relation): the relation, or none. */
static int get_relation(const struct context *cx, const struct tpl_call *c, const char *schema, const char *ident,
			struct val *out, struct sluice_err *err)
{
	struct val t;
	struct buf b = BUF_INIT;
	int rc;

	*out = val_none();
	if (!schema || !ident)
		return err_set(err, SLUICE_EUSAGE, "%s() needs a schema and an identifier", c->name);
	if ((rc = relation_query(cx, "tables", schema, ident, c->arena, &t, err)) || !t.u.list.n)
		return rc;
	dialect_relation(&b, schema, ident);
	*out = context_relation(c->arena, val_get_str(&cx->m->target, "database", NULL), schema, ident,
				val_str_dup(c->arena, b.s, b.len));
	val_dict_set(c->arena, (struct val *)out->u.str.attrs, "type",
		     val_str(strstr(val_get_str(&t.u.list.items[0], "table_type", ""), "VIEW") ? "view" : "table"));
	buf_release(&b);
	return 0;
}

/* adapter.get_columns_in_relation(relation): its columns as dbt's Column objects show them. */
static int get_columns(const struct context *cx, const struct tpl_call *c, struct val *out, struct sluice_err *err)
{
	const struct val *rel = arg(c, 0, "relation"), *attrs = rel ? val_attrs(rel) : NULL;
	const char *schema = val_get_str(attrs, "schema", NULL), *ident = val_get_str(attrs, "identifier", NULL);
	struct val t;
	size_t i;
	int rc;

	if (!schema || !ident)
		return err_set(err, SLUICE_EUSAGE, "adapter.get_columns_in_relation() needs a relation");
	if ((rc = relation_query(cx, "columns", schema, ident, c->arena, &t, err)))
		return rc;
	*out = val_list_new();
	for (i = 0; i < t.u.list.n; i++) {
		const struct val *row = &t.u.list.items[i];
		struct val col = val_dict_new();
		struct buf q = BUF_INIT;
		const char *name = val_get_str(row, "column_name", "");

		dialect_quote_ident(&q, name);
		val_dict_set(c->arena, &col, "name", val_str(name));
		val_dict_set(c->arena, &col, "column", val_str(name));
		val_dict_set(c->arena, &col, "quoted", val_str_dup(c->arena, q.s, q.len));
		val_dict_set(c->arena, &col, "data_type", *val_get(row, "data_type"));
		val_dict_set(c->arena, &col, "dtype", *val_get(row, "data_type"));
		val_dict_set(c->arena, &col, "char_size", *val_get(row, "character_maximum_length"));
		val_dict_set(c->arena, &col, "numeric_precision", *val_get(row, "numeric_precision"));
		val_dict_set(c->arena, &col, "numeric_scale", *val_get(row, "numeric_scale"));
		val_list_push(c->arena, out, col);
		buf_release(&q);
	}
	return 0;
}

/* run_query(sql), {% call statement(name, fetch_result=true) %}sql{% endcall %}, load_result(name). */
static int warehouse_call(const struct context *cx, const struct tpl_call *c, struct val *out, struct sluice_err *err)
{
	const char *name = c->name, *text;
	struct val table, data, res;
	const struct val *v;
	int rc;

	if (!strcmp(name, "run_query")) {
		if (!(text = arg_text(c, 0, "sql")))
			return err_set(err, SLUICE_EUSAGE, "run_query() needs the SQL to run");
		return run_sql(cx, text, c->arena, out, NULL, err);
	}
	if (!strcmp(name, "statement")) {
		const char *sname = arg_text(c, 0, "name");

		if (!c->body || c->body->kind != V_STR)
			return err_set(err, SLUICE_EUSAGE, "statement() is a block: {%% call statement('name') %%}sql{%% endcall %%}");
		if ((rc = run_sql(cx, c->body->u.str.s, c->arena, &table, &data, err)))
			return rc;
		v = kwarg(c, "fetch_result");
		if (sname && cx->results && v && val_truthy(v)) {
			res = val_dict_new();
			val_dict_set(c->arena, &res, "data", data);
			val_dict_set(c->arena, &res, "table", table);
			val_dict_set(c->arena, &res, "response", val_dict_new());
			val_dict_set(c->arena, cx->results, arena_strdup(c->arena, sname), res);
		}
		*out = val_str("");
		return 0;
	}
	if (!strcmp(name, "load_result")) {
		if (!(text = arg_text(c, 0, "name")))
			return err_set(err, SLUICE_EUSAGE, "load_result() needs a statement's name");
		*out = cx->results && (v = val_get(cx->results, text)) ? *v : val_none();
		return 0;
	}
	if (!strcmp(name, "adapter.get_relation"))
		return get_relation(cx, c, arg_text(c, 1, "schema"), arg_text(c, 2, "identifier"), out, err);
	if (!strcmp(name, "load_relation")) {
		const struct val *rel = arg(c, 0, "relation"), *attrs = rel ? val_attrs(rel) : NULL;

		return get_relation(cx, c, val_get_str(attrs, "schema", NULL), val_get_str(attrs, "identifier", NULL),
				    out, err);
	}
	if (!strcmp(name, "adapter.get_columns_in_relation"))
		return get_columns(cx, c, out, err);
	if (!strcmp(name, "agate.values")) {
		*out = c->self ? *c->self : val_list_new();
		out->u.list.attrs = NULL;
		return 0;
	}
	return 1;
}

/* ---- the context ----------------------------------------------------------- */

/* graph: {nodes: {unique_id: node}, sources: {...}}, as dbt's graph shows the project. */
static struct val graph(const struct manifest *m, struct arena *a)
{
	struct val g = val_dict_new(), nodes = val_dict_new(), sources = val_dict_new();
	size_t i;

	for (i = 0; i < m->n; i++) {
		const struct node *n = &m->nodes[i];

		val_dict_append(a, n->type == NODE_SOURCE ? &sources : &nodes, n->unique_id, context_node(m, n, a));
	}
	val_dict_set(a, &g, "nodes", nodes);
	val_dict_set(a, &g, "sources", sources);
	return g;
}

int context_lookup(const struct context *cx, const char *name, struct arena *a, struct val *out)
{
	if (!strcmp(name, "execute")) {
		*out = val_bool(1);
	} else if (!strcmp(name, "model") && cx->node) {
		*out = context_node(cx->m, cx->node, a);
	} else if (!strcmp(name, "run_started_at")) {
		*out = moment(a, cx->logical || !cx->started_at ? "0000-00-00 00:00:00.000000" : cx->started_at);
	} else if (!strcmp(name, "project_name")) {
		*out = val_str(cx->m->project->name);
	} else if (!strcmp(name, "exceptions")) {
		*out = val_dict_new();
		val_dict_set(a, out, "raise_compiler_error", fn("exceptions.raise_compiler_error", NULL));
		val_dict_set(a, out, "warn", fn("exceptions.warn", NULL));
	} else if (!strcmp(name, "modules")) {
		*out = val_dict_new();
		val_dict_set(a, out, "re", module_re(a));
		val_dict_set(a, out, "datetime", module_datetime(a));
	} else if (!strcmp(name, "config")) {
		*out = val_dict_new();
		val_dict_set(a, out, "get", fn("config.get", NULL));
		val_dict_set(a, out, "require", fn("config.require", NULL));
	} else if (!strcmp(name, "builtins")) {
		*out = val_dict_new();
		val_dict_set(a, out, "ref", fn("ref", NULL));
		val_dict_set(a, out, "source", fn("source", NULL));
		val_dict_set(a, out, "config", fn("config", NULL));
	} else if (!strcmp(name, "graph")) {
		*out = graph(cx->m, a);
	} else if (!strcmp(name, "flags")) {
		*out = val_dict_new();
		val_dict_set(a, out, "FULL_REFRESH", val_bool(0));
		val_dict_set(a, out, "WHICH", val_str("run"));
	} else {
		return 1;
	}
	return 0;
}

int context_call(const struct context *cx, const struct tpl_call *c, struct val *out, struct sluice_err *err)
{
	const char *name = c->name, *text;
	const struct val *v;
	int rc;

	*out = val_str("");
	if ((rc = warehouse_call(cx, c, out, err)) <= 0)
		return rc;
	if (!strcmp(name, "relation.include"))
		return relation_include(c, out);
	if (!strcmp(name, "relation.render")) {
		*out = c->self ? *c->self : val_str("");
		return 0;
	}
	if (!strcmp(name, "log") || !strcmp(name, "print"))
		return 0;
	if (!strcmp(name, "should_store_failures") || !strcmp(name, "should_full_refresh")) {
		/* the node's config (a test's store_failures; a model's full_refresh: true) */
		v = cx->node ? val_get(&cx->node->config, name[7] == 's' ? "store_failures" : "full_refresh") : NULL;
		*out = val_bool(v && val_truthy(v));
		return 0;
	}
	if (!strcmp(name, "exceptions.raise_compiler_error"))
		return err_set(err, SLUICE_EUSAGE, "%s", (text = arg_text(c, 0, "msg")) ? text : "compilation error");
	if (!strcmp(name, "exceptions.warn")) {
		err_list_add(cx->warnings, "%s:%d:%d: %s", c->path, c->line, c->col,
			     (text = arg_text(c, 0, "msg")) ? text : "warning");
		return 0;
	}
	if (!strcmp(name, "config.get") || !strcmp(name, "config.require")) {
		if (!(text = arg_text(c, 0, "name")))
			return err_set(err, SLUICE_EUSAGE, "%s() needs a key", name);
		v = cx->node ? val_get(&cx->node->config, text) : NULL;
		if (!v && cx->node && cx->node->mat_name && !strcmp(text, "materialized")) {
			*out = val_str(cx->node->mat_name);
			return 0;
		}
		if (!v && name[7] == 'r')
			return err_set(err, SLUICE_EUSAGE, "config '%s' is required and not set", text);
		*out = v ? *v : (v = arg(c, 1, "default")) ? *v : val_none();
		return 0;
	}
	if (!strcmp(name, "tojson") || !strcmp(name, "toyaml")) {
		json_t *j;
		char *s;

		if (!c->nargs)
			return err_set(err, SLUICE_EUSAGE, "%s() needs a value", name);
		j = json_from_val_new(&c->args[0]);
		s = json_dumps(j, JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
		*out = val_str(arena_strdup(c->arena, s ? s : "null"));
		free(s);
		json_decref(j);
		return 0;
	}
	if (!strcmp(name, "fromjson")) {
		if (!(text = arg_text(c, 0, "string")))
			return err_set(err, SLUICE_EUSAGE, "fromjson() needs a string");
		return json_parse_val(c->arena, "fromjson()", text, out, err);
	}
	if (!strcmp(name, "fromyaml")) {
		struct ynode *root = NULL;

		if (!(text = arg_text(c, 0, "string")))
			return err_set(err, SLUICE_EUSAGE, "fromyaml() needs a string");
		if ((rc = yaml_load_str(c->arena, "fromyaml()", text, strlen(text), &root, NULL, err)))
			return rc;
		*out = root ? yaml_to_val(c->arena, root) : val_none();
		return 0;
	}
	if (!strncmp(name, "re.", 3)) {
		if (!strcmp(name, "re.group") || !strcmp(name, "re.groups")) {
			const struct val *groups = c->self ? val_get(c->self->u.str.attrs, "_groups") : NULL;
			double i = 0;

			if (!groups)
				return err_set(err, SLUICE_EUSAGE, "group() of no match");
			if (name[8] == 's') {
				*out = val_list_new();
				for (i = 1; (size_t)i < groups->u.list.n; i++)
					val_list_push(c->arena, out, groups->u.list.items[(size_t)i]);
				return 0;
			}
			if (c->nargs && c->args[0].kind == V_NUM)
				i = c->args[0].u.num;
			if (i < 0 || (size_t)i >= groups->u.list.n)
				return err_set(err, SLUICE_EUSAGE, "no such group: %g", i);
			*out = groups->u.list.items[(size_t)i];
			return 0;
		}
		return re_call(name + 3, c, out, err);
	}
	if (!strcmp(name, "datetime.now") || !strcmp(name, "datetime.today")) {
		*out = now(cx, c->arena);
		return 0;
	}
	if (!strcmp(name, "datetime.strftime") || !strcmp(name, "datetime.isoformat"))
		return datetime_format(c, name[9] == 'i', out, err);
	return 1;
}
