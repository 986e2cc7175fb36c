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

	*out = val_str("");
	if (!strcmp(name, "relation.include"))
		return relation_include(c, out);
	if (!strcmp(name, "relation.render")) {
		*out = c->self ? *c->self : val_str("");
		return 0;
	}
	if (!strcmp(name, "log") || !strcmp(name, "print"))
		return 0;
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
		int rc;

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
