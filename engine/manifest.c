/*
 * manifest.c: from a loaded project to nodes with final config, relations
 * and edges; and the rendering of a node's SQL with its refs resolved.
 *
 * Dependencies are found statically (every literal ref()/source() in any
 * branch, as dbt's parser does), so the DAG never depends on runtime state.
 * A ref() that only appears at render time must already be a dependency.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../connectors/connector.h"
#include "context.h"
#include "datatest.h"
#include "dialect.h"
#include "manifest.h"
#include "shell.h"
#include "util/hash.h"
#include "util/xalloc.h"

static const char *const mat_names[MAT__COUNT] = {
	[MAT_VIEW] = "view",
	[MAT_TABLE] = "table",
	[MAT_INCREMENTAL] = "incremental",
	[MAT_EPHEMERAL] = "ephemeral",
	[MAT_UNLOAD] = "unload",
	[MAT_LOAD] = "load",
	[MAT_SHELL] = "shell",
	[MAT_SEED] = "seed",
	[MAT_SNAPSHOT] = "snapshot",
};

struct node *manifest_node(const struct manifest *m, const char *name)
{
	return strmap_get(&m->by_name, name);
}

static const char *arg_str(const struct tpl_call *c, size_t i)
{
	return i < c->nargs && c->args[i].kind == V_STR ? c->args[i].u.str.s : NULL;
}

/* ref('m') or ref('package', 'm'): the model name. */
static const char *ref_name(const struct tpl_call *c)
{
	return arg_str(c, c->nargs >= 2 ? 1 : 0);
}

static int call_error(struct sluice_err *err, const struct tpl_call *c, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int call_error(struct sluice_err *err, const struct tpl_call *c, const char *fmt, ...)
{
	struct buf msg = BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(&msg, fmt, ap);
	va_end(ap);
	err_set(err, SLUICE_EUSAGE, "%s:%d:%d: %s", c->path, c->line, c->col, msg.s);
	buf_release(&msg);
	return SLUICE_EUSAGE;
}

/* ---- building ---- */

struct build_ctx {
	struct manifest *m;
	struct node *node;
	struct sluice_err *err;
	const char **model_names;
	size_t nmodel_names;
};

static int apply_config_call(void *ud, const struct tpl_call *c)
{
	struct build_ctx *b = ud;
	struct arena *a = &b->m->project->arena;
	size_t i;

	for (i = 0; i < c->nkw; i++) {
		char *key = arena_strdup(a, c->kwnames[i]), *p;
		for (p = key; *p; p++)
			if (*p == '-')
				*p = '_';
		if (!strcmp(key, "tags")) {
			/* tags accumulate, as in dbt */
			struct val tags = val_list_new();
			const struct val *old = val_get(&b->node->config, "tags");
			size_t k;
			if (old && old->kind == V_LIST)
				for (k = 0; k < old->u.list.n; k++)
					val_list_push(a, &tags, old->u.list.items[k]);
			if (c->kwargs[i].kind == V_LIST)
				for (k = 0; k < c->kwargs[i].u.list.n; k++)
					val_list_push(a, &tags, val_clone(a, &c->kwargs[i].u.list.items[k]));
			else
				val_list_push(a, &tags, val_clone(a, &c->kwargs[i]));
			val_dict_set(a, &b->node->config, key, tags);
		} else {
			val_dict_set(a, &b->node->config, key, val_clone(a, &c->kwargs[i]));
		}
		{
			struct val pos = val_list_new();
			val_list_push(a, &pos, val_num(c->line));
			val_list_push(a, &pos, val_num(c->col));
			val_dict_set(a, &b->node->config_pos, key, pos);
		}
	}
	if (c->nargs)
		return call_error(b->err, c, "config() takes keyword arguments only");
	return 0;
}

/* ref('x') inside config(): its name, as depends_on=['x'] would give it. */
static int config_inner_call(void *ud, const struct tpl_call *c, struct val *out)
{
	struct build_ctx *b = ud;
	const char *name = ref_name(c);

	if (strcmp(c->name, "ref") || !name)
		return 1;
	strmap_put(&b->m->depends_on_refs, arena_printf(&b->m->project->arena, "%s:%d:%d", c->path, c->line, c->col),
		   (void *)1);
	*out = val_str(name);
	return 0;
}

static int is_shell(const struct node *n)
{
	return n->model && !strcmp(n->model->lang, "sh");
}

/* A shell model without relation=true has no relation to read: only depends_on may name it. */
static int check_shell_ref(struct build_ctx *b, const struct tpl_call *c, const struct node *parent)
{
	struct buf key = BUF_INIT;
	int in_depends_on;

	if (!is_shell(parent) || val_get_bool(&parent->config, "relation", 0))
		return 0;
	buf_printf(&key, "%s:%d:%d", c->path, c->line, c->col);
	in_depends_on = strmap_get(&b->m->depends_on_refs, key.s) != NULL;
	buf_release(&key);
	if (in_depends_on)
		return 0;
	return call_error(b->err, c, "ref('%s') names a shell model that creates no relation: to run after it, "
			  "put depends_on=[ref('%s')] in config(); if the script creates the relation %s, declare "
			  "config(relation=true) in %s", parent->name, parent->name, parent->name, parent->model->path);
}

static int ref_edge(struct build_ctx *b, const struct tpl_call *c)
{
	const char *name = ref_name(c);
	struct node *parent;

	if (!name)
		return call_error(b->err, c, "ref() needs a model name");
	parent = strmap_get(&b->m->by_name, name);
	if (!parent && strmap_get(&b->m->disabled, name)) {
		const struct model *off = strmap_get(&b->m->disabled, name);
		return call_error(b->err, c, "ref('%s'): %s '%s' (%s) is disabled (enabled: false)", name, off->resource,
				  name, off->path);
	}
	if (!parent) {
		const char *s = dag_suggest(name, b->model_names, b->nmodel_names);
		if (s)
			return call_error(b->err, c, "unknown ref '%s' (did you mean '%s'?)", name, s);
		return call_error(b->err, c, "unknown ref '%s'", name);
	}
	if (c->nargs >= 2 && parent->model && arg_str(c, 0) && strcmp(arg_str(c, 0), parent->model->fqn[0]))
		return call_error(b->err, c, "ref('%s', '%s'): '%s' is in %s '%s', not in '%s'", arg_str(c, 0), name,
				  name, strcmp(parent->model->fqn[0], b->m->project->name) ? "package" : "project",
				  parent->model->fqn[0], arg_str(c, 0));
	if (parent == b->node)
		return call_error(b->err, c, "model '%s' refers to itself (use {{ this }})", name);
	if (check_shell_ref(b, c, parent))
		return SLUICE_EUSAGE;
	dag_add_edge(b->m->dag, parent->idx, b->node->idx);
	return 0;
}

/* Each ref() is independent: with an error list, all of a project's bad refs are shown. */
static int add_ref_edge(void *ud, const struct tpl_call *c)
{
	struct build_ctx *b = ud;

	return err_collect(b->m->project->errors, b->err, ref_edge(b, c));
}

static int source_edge(struct build_ctx *b, const struct tpl_call *c)
{
	const char *s = arg_str(c, 0), *t = arg_str(c, 1);
	struct buf key = BUF_INIT;
	struct node *src;

	if (!s || !t || c->nargs != 2)
		return call_error(b->err, c, "source() needs a source name and a table name");
	buf_printf(&key, "%s.%s", s, t);
	src = strmap_get(&b->m->by_source, key.s);
	buf_release(&key);
	/* probably declared where a properties error (already reported) stopped the reading */
	if (!src && b->m->project->sources_incomplete)
		return 0;
	if (!src)
		return call_error(b->err, c, "unknown source '%s.%s' (declare it under sources: in a properties file)", s, t);
	dag_add_edge(b->m->dag, src->idx, b->node->idx);
	return 0;
}

static int add_source_edge(void *ud, const struct tpl_call *c)
{
	struct build_ctx *b = ud;

	return err_collect(b->m->project->errors, b->err, source_edge(b, c));
}

static int node_template(struct arena *a, const struct node *n, struct tpl **out, struct sluice_err *err);

/* "path:line:col" of the config() call that set key, or the model's path. */
static const char *config_place(struct arena *a, const struct node *n, const char *key)
{
	const struct val *pos = val_get(&n->config_pos, key);

	if (pos && pos->kind == V_LIST && pos->u.list.n == 2)
		return arena_printf(a, "%s:%d:%d", n->model->path, (int)pos->u.list.items[0].u.num,
				    (int)pos->u.list.items[1].u.num);
	return n->model->path;
}

static int set_materialization(struct arena *a, struct node *n, struct sluice_err *err)
{
	const char *mat = val_get_str(&n->config, "materialized", "view");
	int i;

	/* A seed or a snapshot is what its file is, whatever the folder config says. */
	if (strcmp(n->model->resource, "model")) {
		n->mat = !strcmp(n->model->resource, "seed") ? MAT_SEED : MAT_SNAPSHOT;
		n->mat_name = mat_names[n->mat];
		return 0;
	}

	/* A script is a script: folder defaults for SQL models do not apply to it. */
	if (is_shell(n) && (!val_get(&n->config_pos, "materialized") || !strcmp(mat, "shell"))) {
		n->mat = MAT_SHELL;
		n->mat_name = mat_names[MAT_SHELL];
		return 0;
	}
	if (is_shell(n) || !strcmp(mat, "shell"))
		return err_set(err, SLUICE_EUSAGE, "%s: materialized='%s': shell models (.sh) and only they are materialized as 'shell'",
			       config_place(a, n, "materialized"), mat);
	for (i = 0; i < MAT_SEED; i++)
		if (!strcmp(mat, mat_names[i])) {
			n->mat = i;
			n->mat_name = mat_names[i];
			return 0;
		}
	{
		const char *s = dag_suggest(mat, (const char *const *)mat_names, MAT_SEED);
		return err_set(err, SLUICE_EUSAGE, "%s: unknown materialization '%s'%s%s%s (known: view, table, incremental, ephemeral)",
			       config_place(a, n, "materialized"), mat, s ? " (did you mean '" : "", s ? s : "", s ? "'?)" : "");
	}
}

static void set_tags(struct arena *a, struct node *n)
{
	const struct val *t = val_get(&n->config, "tags");
	size_t i;

	if (!t || t->kind != V_LIST)
		return;
	n->tags = arena_alloc(a, t->u.list.n * sizeof(char *));
	for (i = 0; i < t->u.list.n; i++)
		if (t->u.list.items[i].kind == V_STR)
			n->tags[n->ntags++] = t->u.list.items[i].u.str.s;
}

static int check_connection(const struct project *p, const char *conn, const char *where,
			    struct sluice_err *err)
{
	struct buf known = BUF_INIT;
	size_t i;

	if (project_conn(p, conn))
		return 0;
	for (i = 0; i < p->target.nconns; i++)
		buf_printf(&known, "%s%s", i ? ", " : "", p->target.conns[i].name);
	err_set(err, SLUICE_EUSAGE, "%s: unknown connection '%s' (target '%s' has: %s)", where, conn,
		p->target.name, known.s);
	buf_release(&known);
	return SLUICE_EUSAGE;
}

static char *relation_of(struct arena *a, const char *schema, const char *ident)
{
	struct buf b = BUF_INIT;
	char *s;

	dialect_relation(&b, schema, ident);
	s = arena_strndup(a, b.s, b.len);
	buf_release(&b);
	return s;
}

static void init_source_node(struct manifest *m, struct node *n, struct source_table *t)
{
	struct arena *a = &m->project->arena;

	n->type = NODE_SOURCE;
	n->source = t;
	n->unique_id = t->unique_id;
	n->name = t->name;
	n->config = t->config;
	n->schema = t->schema;
	n->identifier = t->identifier;
	n->relation = relation_of(a, t->schema, t->identifier);
	n->display = arena_printf(a, "%s.%s", t->schema, t->identifier);
	n->connection = t->connection ? t->connection : "default";
	n->info.name = t->name;
	n->info.source_name = t->source_name;
	n->info.unique_id = t->unique_id;
	n->info.path = t->path;
	n->info.config = &n->config;
	n->info.is_source = 1;
	strmap_put(&m->by_source, arena_printf(a, "%s.%s", t->source_name, t->name), n);
}

static int project_name_macro(struct manifest *m, struct node *n, const char *macro, const char *custom,
			      const char **name, struct sluice_err *err);

static int finish_model_node(struct manifest *m, struct node *n, struct sluice_err *err)
{
	struct project *p = m->project;
	struct arena *a = &p->arena;
	const char *custom = val_get_str(&n->config, "schema", NULL);
	int rc, rc2;

	/* on an error every field is still set: the project's other errors are checked with it */
	if ((rc = set_materialization(a, n, err))) {
		n->mat = MAT_VIEW;
		n->mat_name = mat_names[MAT_VIEW];
	}
	n->schema = custom ? arena_printf(a, "%s_%s", p->target.schema, custom) : p->target.schema;
	if ((rc2 = project_name_macro(m, n, "generate_schema_name", custom, &n->schema, err)))
		return rc2;
	/* dbt's snapshots before 1.9 name their schema whole */
	if (n->mat == MAT_SNAPSHOT && val_get_str(&n->config, "target_schema", NULL))
		n->schema = val_get_str(&n->config, "target_schema", NULL);
	n->identifier = val_get_str(&n->config, "alias", n->name);
	if ((rc2 = project_name_macro(m, n, "generate_alias_name", val_get_str(&n->config, "alias", NULL),
				      &n->identifier, err)))
		return rc2;
	n->relation = relation_of(a, n->schema, n->identifier);
	n->display = arena_printf(a, "%s.%s", n->schema, n->identifier);
	n->connection = val_get_str(&n->config, "connection", "default");
	set_tags(a, n);
	n->info.tags = n->tags;
	n->info.ntags = n->ntags;
	n->info.config = &n->config;
	if (!rc)
		rc = check_connection(p, n->connection, config_place(a, n, "connection"), err);
	if (!rc && n->mat == MAT_SHELL) {
		struct shell_config sc;
		if ((rc = shell_config(n, a, &sc, err)))
			return rc;
		if (!sc.relation)   /* nothing in the database: name it by its file */
			n->display = n->model->path;
	}
	return rc;
}

struct find_ref {
	const char *name;
	int line, col;
};

static int find_ref_call(void *ud, const struct tpl_call *c)
{
	struct find_ref *f = ud;
	const char *name = ref_name(c);

	if (!name || strcmp(name, f->name))
		return 0;
	f->line = c->line;
	f->col = c->col;
	return 1;
}

/* "models/b.sql:3:8: dependency cycle: a -> b -> a", placed at the ref() closing it. */
static int format_cycle(struct manifest *m, size_t *cycle, size_t ncycle, struct sluice_err *err)
{
	struct buf b = BUF_INIT, place = BUF_INIT;
	const struct node *from = &m->nodes[cycle[0]], *to = &m->nodes[cycle[ncycle > 1 ? 1 : 0]];
	struct find_ref f = { from->name, 0, 0 };
	size_t i;

	for (i = 0; i < ncycle; i++)
		buf_printf(&b, "%s%s", i ? " -> " : "", m->nodes[cycle[i]].name);
	if (to->tpl || to->model) {
		struct sluice_err ignored = SLUICE_ERR_INIT;
		struct arena tmp = ARENA_INIT;
		struct tpl *t;
		if (!node_template(&tmp, to, &t, &ignored))
			tpl_each_call(t, "ref", find_ref_call, &f, &tmp);
		arena_release(&tmp);
	}
	if (f.line)
		buf_printf(&place, "%s:%d:%d: ", to->model->path, f.line, f.col);
	else if (to->model)
		buf_printf(&place, "%s: ", to->model->path);
	err_set(err, SLUICE_EUSAGE, "%sdependency cycle: %s", place.s, b.s);
	buf_release(&b);
	buf_release(&place);
	return SLUICE_EUSAGE;
}

/* The macros, dispatched by the dialect of the target's own connection. */
static int load_macros(struct manifest *m, struct sluice_err *err)
{
	const struct sluice_connector *drv;
	const char *dialect = NULL;
	struct sluice_err ignored = SLUICE_ERR_INIT;

	/* a bad profile is reported where the connection is opened; dispatch then finds default__ */
	if (connector_resolve(&m->project->target.conns[0].settings, &drv, &dialect, &ignored))
		dialect = NULL;
	return macros_load(&m->macros, m->project, dialect, err);
}

static void init_target_var(struct manifest *m)
{
	struct project *p = m->project;
	struct arena *a = &p->arena;
	const struct val *s = &p->target.conns[0].settings;
	struct val t = val_dict_new();

	val_dict_set(a, &t, "name", val_str(p->target.name));
	val_dict_set(a, &t, "profile_name", val_str(p->target.profile));
	val_dict_set(a, &t, "schema", val_str(p->target.schema));
	val_dict_set(a, &t, "type", val_str(p->target.type));
	val_dict_set(a, &t, "threads", val_num(p->target.threads));
	val_dict_set(a, &t, "dbname", val_str(val_get_str(s, "dbname", "")));
	val_dict_set(a, &t, "database", val_str(val_get_str(s, "dbname", "")));
	m->target = t;
}

/*
 * A seed's template is a line naming its file and the file's content hash:
 * its code fingerprint, so that an edit to the CSV rebuilds it and nothing
 * else does. It is what target/compiled shows for it.
 */
static int parse_resource(struct arena *a, const struct model *mod, struct tpl **out, struct sluice_err *err)
{
	char hex[HASH_HEX];
	const char *text;

	if (strcmp(mod->resource, "seed"))
		return tpl_parse(a, mod->path, mod->src, mod->src_len, out, err);
	hash_hex(mod->src, mod->src_len, hex);
	/* not a comment: fingerprints hash SQL without its comments */
	text = arena_printf(a, "seed '%s' content '%s'", mod->path, hex);
	return tpl_parse(a, mod->path, text, strlen(text), out, err);
}

/*
 * A node's template. A model's is parsed again each time it is needed, in
 * the caller's arena: a parsed template is several times its source, and
 * 10,000 of them held for a whole run were most of its memory. Singular
 * tests keep theirs (n->tpl, datatest.c).
 */
static int node_template(struct arena *a, const struct node *n, struct tpl **out, struct sluice_err *err)
{
	if (n->tpl) {
		*out = n->tpl;
		return 0;
	}
	return parse_resource(a, n->model, out, err);
}

int manifest_build(struct manifest *m, struct project *p, struct sluice_err *err)
{
	struct arena *a = &p->arena;
	struct build_ctx b = { m, NULL, err, NULL, 0 };
	struct arena tmp = ARENA_INIT;   /* a model's template, while its config and refs are read */
	struct sluice_err ignored = SLUICE_ERR_INIT;
	struct datatest_list tests;
	struct tpl *t;
	size_t i, k, *cycle, ncycle;
	int rc;

	memset(m, 0, sizeof(*m));
	m->project = p;
	init_target_var(m);
	if ((rc = load_macros(m, err)))
		return rc;
	if ((rc = datatest_parse(p, &m->macros, &tests, err)))
		return rc;
	m->nodes = arena_alloc(a, (p->nsources + p->nmodels + tests.n) * sizeof(struct node));
	for (i = 0; i < p->nsources; i++) {
		struct node *n = &m->nodes[m->n];
		n->idx = m->n++;
		init_source_node(m, n, p->sources[i]);
		if ((rc = err_collect(p->errors, err, check_connection(p, n->connection, n->source->path, err))))
			return rc;
	}
	b.model_names = arena_alloc(a, p->nmodels * sizeof(char *));
	for (i = 0; i < p->nmodels; i++) {
		struct model *mod = p->models[i];
		struct node *n = &m->nodes[m->n];

		n->idx = m->n++;
		n->type = NODE_MODEL;
		n->model = mod;
		n->unique_id = mod->unique_id;
		n->name = mod->name;
		n->config = val_dict_merge(a, &mod->config, NULL);
		n->config_pos = val_dict_new();
		n->info.name = mod->name;
		n->info.unique_id = mod->unique_id;
		n->info.path = mod->path;
		/* each model is independent: with an error list, all their errors are shown */
		b.node = n;
		if ((rc = parse_resource(&tmp, mod, &t, err)))
			rc = err_collect(p->errors, err, rc);   /* checked as a node without refs */
		else
			rc = err_collect(p->errors, err,
					 tpl_each_call_nested(t, "config", apply_config_call, config_inner_call, &b, &tmp));
		arena_release(&tmp);
		if (rc)
			return rc;
		if (!val_get_bool(&n->config, "enabled", 1)) {
			strmap_put(&m->disabled, mod->name, mod);
			m->n--;   /* disabled models are not nodes (dbt) */
			continue;
		}
		b.model_names[b.nmodel_names++] = mod->name;
		strmap_put(&m->by_name, mod->name, n);
	}
	if ((rc = datatest_add_nodes(m, &tests, err)))
		return rc;
	m->dag = dag_new(a, m->n);
	for (i = p->nsources; i < m->n; i++) {
		struct node *n = &m->nodes[i];
		if (n->type != NODE_MODEL)
			continue;
		b.node = n;
		if ((rc = err_collect(p->errors, err, finish_model_node(m, n, err))))
			return rc;
		/* a template that does not parse was reported above */
		if (!parse_resource(&tmp, n->model, &t, &ignored) &&
		    !(rc = tpl_each_call(t, "ref", add_ref_edge, &b, &tmp)))
			rc = tpl_each_call(t, "source", add_source_edge, &b, &tmp);
		arena_release(&tmp);
		if (rc)
			return rc;
		/* depends_on=['x'] in config: ordering without a ref in the SQL */
		const struct val *dep = val_get(&n->config, "depends_on");
		if (dep && dep->kind == V_LIST)
			for (k = 0; k < dep->u.list.n; k++) {
				struct node *par = dep->u.list.items[k].kind == V_STR ?
					strmap_get(&m->by_name, dep->u.list.items[k].u.str.s) : NULL;
				if (!par) {
					err_set(err, SLUICE_EUSAGE, "%s: depends_on names unknown model '%s'", n->model->path,
						dep->u.list.items[k].kind == V_STR ? dep->u.list.items[k].u.str.s : "?");
					if ((rc = err_collect(p->errors, err, SLUICE_EUSAGE)))
						return rc;
					continue;
				}
				dag_add_edge(m->dag, par->idx, n->idx);
			}
	}
	if ((rc = datatest_link(m, err)))
		return rc;
	if (dag_check(m->dag, &cycle, &ncycle))
		return err_collect(p->errors, err, format_cycle(m, cycle, ncycle, err));
	return 0;
}

void manifest_release(struct manifest *m)
{
	macros_release(&m->macros);
	strmap_release(&m->depends_on_refs);
	strmap_release(&m->disabled);
	strmap_release(&m->by_name);
	strmap_release(&m->by_source);
}

/* ---- rendering ---- */

struct render_ctx {
	const struct manifest *m;
	const char *package;           /* whose macros unqualified names find first */
	const struct node *self;       /* whose refs must be declared dependencies */
	const struct node *this_node;  /* what {{ this }} names */
	const struct compile_opts *o;
	struct arena *scratch;
	struct val *used;
	struct buf *ctes;              /* "name" AS (...) pieces, comma-separated */
	unsigned char *cte_done;       /* per node: already in ctes */
	int depth;
	int shell;                     /* rendering a shell model: relations are shell-escaped */
	struct val *results;           /* statement results by name (load_result) */
	struct query_replay *replay;   /* the answers of its queries (context.h) */
};

static int render_node_sql(struct render_ctx *r, const struct node *n, struct buf *out,
			   struct sluice_err *err);

static int is_parent(const struct manifest *m, const struct node *self, const struct node *p)
{
	size_t i;

	for (i = 0; i < m->dag->nparents[self->idx]; i++)
		if (m->dag->parents[self->idx][i] == p->idx)
			return 1;
	return 0;
}

/* A relation as the template prints it: in a shell model, escaped for use inside "...". */
static struct val relation_val(struct render_ctx *r, const char *relation)
{
	struct buf b = BUF_INIT;
	struct val v;

	if (!r->shell)
		return val_str(relation);
	shell_escape_dq(&b, relation);
	v = val_str_dup(r->scratch, b.s, b.len);
	buf_release(&b);
	return v;
}

/* A node's relation as a template object: it prints as rendered, and has .schema, .identifier, ... */
static struct val relation_obj(struct render_ctx *r, const struct node *n, struct val rendered)
{
	return context_relation(r->scratch, val_get_str(&r->m->target, "database", NULL), n->schema, n->identifier,
				rendered);
}

static void render_context(const struct render_ctx *r, struct context *cx)
{
	memset(cx, 0, sizeof(*cx));
	cx->m = r->m;
	cx->node = r->this_node;
	cx->logical = r->o && r->o->logical;
	cx->started_at = r->m->run_started_at;
	cx->warnings = r->m->project->warnings;
	cx->conn = r->this_node && r->this_node->connection ? r->this_node->connection : "default";
	cx->used = r->used;
	cx->results = r->results;
	cx->replay = r->replay;
}

static int host_ref(struct render_ctx *r, const struct tpl_call *c, struct val *out, struct sluice_err *err)
{
	const char *name = ref_name(c);
	const struct node *n = name ? manifest_node(r->m, name) : NULL;

	if (!name)
		return err_set(err, SLUICE_EUSAGE, "ref() needs a model name");
	if (!n)
		return err_set(err, SLUICE_EUSAGE, "unknown ref '%s'", name);
	if (r->self && !is_parent(r->m, r->self, n))
		return err_set(err, SLUICE_EUSAGE,
			       "ref('%s') was not found by the parser: write ref() with literal arguments", name);
	if (n->mat != MAT_EPHEMERAL) {
		*out = relation_obj(r, n, r->o && r->o->logical ? val_str(arena_printf(r->scratch, "ref('%s')", n->name))
								 : relation_val(r, n->relation));
		return 0;
	}
	if (r->shell)
		return err_set(err, SLUICE_EUSAGE, "ref('%s'): an ephemeral model has no relation a script can read", name);
	/* Ephemeral: inline as a CTE, its own CTEs first. */
	{
		struct buf cte_name = BUF_INIT;
		buf_printf(&cte_name, "__sluice_cte__%s", n->name);
		if (!r->cte_done[n->idx]) {
			struct buf sql = BUF_INIT, q = BUF_INIT;
			const struct node *saved = r->self;
			int rc;
			r->cte_done[n->idx] = 1;
			if (++r->depth > 64) {
				buf_release(&cte_name);
				return err_set(err, SLUICE_EUSAGE, "ephemeral models nest too deeply");
			}
			r->self = r->this_node = n;
			rc = render_node_sql(r, n, &sql, err);
			r->self = r->this_node = saved;
			r->depth--;
			if (rc) {
				buf_release(&sql);
				buf_release(&cte_name);
				return rc;
			}
			dialect_quote_ident(&q, cte_name.s);
			buf_printf(r->ctes, "%s%s AS (\n%s\n)", r->ctes->len ? ",\n" : "", q.s, sql.s);
			buf_release(&sql);
			buf_release(&q);
		}
		{
			struct buf q = BUF_INIT;
			dialect_quote_ident(&q, cte_name.s);
			*out = val_str_dup(r->scratch, q.s, q.len);
			buf_release(&q);
		}
		buf_release(&cte_name);
	}
	return 0;
}

static int host_call(void *ud, const struct tpl_call *c, struct val *out, struct sluice_err *err)
{
	struct render_ctx *r = ud;
	const char *name = c->name;
	struct context cx;
	int rc;

	if (!strcmp(name, "ref"))
		return host_ref(r, c, out, err);
	if (!strcmp(name, "source")) {
		const char *s = arg_str(c, 0), *t = arg_str(c, 1);
		struct buf key = BUF_INIT;
		const struct node *n;
		if (!s || !t)
			return err_set(err, SLUICE_EUSAGE, "source() needs a source name and a table name");
		buf_printf(&key, "%s.%s", s, t);
		n = strmap_get(&r->m->by_source, key.s);
		buf_release(&key);
		if (!n)
			return err_set(err, SLUICE_EUSAGE, "unknown source '%s.%s'", s, t);
		*out = relation_obj(r, n, r->o && r->o->logical ? val_str(arena_printf(r->scratch, "source('%s', '%s')", s, t))
							       : relation_val(r, n->relation));
		return 0;
	}
	if (!strcmp(name, "config")) {
		*out = val_str("");
		return 0;
	}
	if (!strcmp(name, "is_incremental")) {
		*out = val_bool(r->o && r->o->is_incremental && r->depth == 0);
		return 0;
	}
	if (!strcmp(name, "adapter.dispatch")) {
		const char *mname = arg_str(c, 0), *ns = arg_str(c, 1);
		const struct macro_def *d;
		size_t i;

		for (i = 0; i < c->nkw; i++)
			if (!strcmp(c->kwnames[i], "macro_namespace") && c->kwargs[i].kind == V_STR)
				ns = c->kwargs[i].u.str.s;
		if (!mname)
			return err_set(err, SLUICE_EUSAGE, "adapter.dispatch() needs a macro name");
		if (!(d = macros_dispatch(&r->m->macros, r->package, mname, ns, err)))
			return SLUICE_EUSAGE;
		*out = tpl_macro_value(d->m);
		return 0;
	}
	if (!strcmp(name, "adapter.quote")) {
		struct buf q = BUF_INIT;

		if (!arg_str(c, 0))
			return err_set(err, SLUICE_EUSAGE, "adapter.quote() needs a name");
		dialect_quote_ident(&q, arg_str(c, 0));
		*out = val_str_dup(c->arena, q.s, q.len);
		buf_release(&q);
		return 0;
	}
	render_context(r, &cx);
	if ((rc = context_call(&cx, c, out, err)) <= 0)
		return rc;
	return project_call_builtin(r->m->project, c, out, r->used, err);
}

/* A host function as a template value: adapter.quote in `adapter`. */
static struct val host_fn(const char *name)
{
	struct val v = { V_FUNC, { 0 } };

	v.u.fn.fn = name;
	v.u.fn.tag = TPL_FN_HOST;
	return v;
}

/* The package a node belongs to: the first part of its fqn. */
static const char *node_package(const struct manifest *m, const struct node *n)
{
	if (n && n->type == NODE_MODEL && n->model->nfqn)
		return n->model->fqn[0];
	return m->project->name;
}

/* Each macro of the project or a package that a render calls is one of its inputs. */
static void host_on_macro(void *ud, const struct tpl_macro *m)
{
	struct render_ctx *r = ud;
	const struct macro_def *d = macros_def_of(m);

	const struct project *p = r->m->project;
	size_t i;

	if (!r->used || !d || !strcmp(d->package, "dbt"))
		return;
	val_dict_set(r->scratch, r->used, arena_printf(r->scratch, "macro.%s", d->qualified), val_str(d->hash));
	/* a package's version is an input too: an upgrade rebuilds what uses it, and says so */
	for (i = 0; i < p->npackages; i++)
		if (!strcmp(p->packages[i].name, d->package))
			val_dict_set(r->scratch, r->used, arena_printf(r->scratch, "package.%s", d->package),
				     val_str(p->packages[i].version ? p->packages[i].version : "(no version)"));
}

static int host_lookup(void *ud, const char *name, struct arena *a, struct val *out)
{
	struct render_ctx *r = ud;
	const struct macro_def *d;
	const struct val *ns;
	struct context cx;

	if (!strcmp(name, "this") && r->this_node) {
		*out = relation_obj(r, r->this_node, r->o && r->o->logical ? val_str("this")
									   : relation_val(r, r->this_node->relation));
		return 0;
	}
	if (!strcmp(name, "target")) {
		*out = r->m->target;
		return 0;
	}
	if (!strcmp(name, "watermark")) {
		*out = val_str(r->o && r->o->logical ? "watermark" : r->o && r->o->watermark ? r->o->watermark : "NULL");
		return 0;
	}
	if (!strcmp(name, "invocation_id") && r->o && r->o->invocation_id) {
		*out = val_str(r->o->logical ? "invocation_id" : r->o->invocation_id);
		return 0;
	}
	if ((d = macros_resolve(&r->m->macros, r->package, name))) {
		*out = tpl_macro_value(d->m);
		return 0;
	}
	if ((ns = macros_namespace(&r->m->macros, name))) {
		*out = *ns;
		return 0;
	}
	if (!strcmp(name, "adapter")) {
		*out = val_dict_new();
		val_dict_set(a, out, "dispatch", host_fn("adapter.dispatch"));
		val_dict_set(a, out, "quote", host_fn("adapter.quote"));
		val_dict_set(a, out, "get_relation", host_fn("adapter.get_relation"));
		val_dict_set(a, out, "get_columns_in_relation", host_fn("adapter.get_columns_in_relation"));
		return 0;
	}
	render_context(r, &cx);
	return context_lookup(&cx, name, a, out);
}

/* Names of dbt's context that sluice does not have yet: the error says so, and what it costs. */
static const char *host_why(void *ud, const char *name)
{
	static const char *const dbt_names[] = {
		"api", "store_result", "store_raw_result", "doc", "selected_resources", "invocation_args_dict",
		"dbt_version", "local_md5", "set_strict", "try_or_compiler_error", "diff_of_two_dicts",
		"context", "schemas", "database", "write", "render", "zip_strict", "set", "dbt_metadata_envs",
		"get_where_subquery", "sql_header",
		"adapter_macro", "submission_method", "model_name", "metric", "source_meta",
		NULL
	};
	size_t i;

	(void)ud;
	if (!strncmp(name, "dbt.", 4) || !strncmp(name, "adapter.", 8))
		return "dbt has it, sluice does not yet: a model or macro that needs it cannot compile "
		       "(docs/templates.md lists what sluice has)";
	for (i = 0; dbt_names[i]; i++)
		if (!strcmp(dbt_names[i], name))
			return "dbt has it, sluice does not yet: a model or macro that needs it cannot compile "
			       "(docs/templates.md lists what sluice has)";
	return NULL;
}

/*
 * dbt's generate_schema_name and generate_alias_name: when the project
 * defines one, it names the node's relation (trimmed) instead of sluice's
 * rule, which has set *name already. It gets the custom name (or none) and
 * the node, as in dbt.
 */
static int project_name_macro(struct manifest *m, struct node *n, const char *macro, const char *custom,
			      const char **name, struct sluice_err *err)
{
	const struct macro_def *d = macros_resolve(&m->macros, m->project->name, macro);
	struct render_ctx r;
	struct tpl_host host = { &r, host_call, host_lookup, NULL, host_why };
	struct arena tmp = ARENA_INIT;
	struct val args[2], out;
	struct buf b = BUF_INIT;
	int rc;

	if (!d || !strcmp(d->package, "dbt"))
		return 0;
	memset(&r, 0, sizeof(r));
	r.m = m;
	r.package = m->project->name;
	r.this_node = n;
	r.scratch = &tmp;
	args[0] = custom ? val_str(custom) : val_none();
	args[1] = context_node(m, n, &tmp);
	rc = tpl_call(d->m, args, 2, &host, &tmp, &out, err);
	if (!rc) {
		const char *text;

		val_format(&out, &b);
		buf_rtrim(&b);
		for (text = b.s ? b.s : ""; isspace((unsigned char)*text); text++)
			;
		if (!*text)
			rc = err_set(err, SLUICE_EUSAGE, "%s:%d: %s gave an empty name for %s", d->path,
				     tpl_macro_line(d->m), macro, n->name);
		else
			*name = arena_strdup(&m->project->arena, text);
	}
	buf_release(&b);
	arena_release(&tmp);
	return rc;
}

static void strip_trailing_semicolons(struct buf *b)
{
	for (;;) {
		buf_rtrim(b);
		if (!b->len || b->s[b->len - 1] != ';')
			return;
		b->s[--b->len] = '\0';
	}
}

static int render_node_sql(struct render_ctx *r, const struct node *n, struct buf *out,
			   struct sluice_err *err)
{
	struct tpl_host host = { r, host_call, host_lookup, host_on_macro, host_why };
	struct tpl *t;
	int rc = node_template(r->scratch, n, &t, err);

	if (!rc)
		rc = tpl_render(t, &host, r->scratch, out, err);
	if (!rc && n->mat != MAT_SHELL)
		strip_trailing_semicolons(out);
	return rc;
}

/* Skip whitespace and SQL comments; returns the offset of the first token. */
static size_t skip_sql_space(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		if (isspace((unsigned char)s[i])) {
			i++;
		} else if (s[i] == '-' && i + 1 < len && s[i + 1] == '-') {
			while (i < len && s[i] != '\n')
				i++;
		} else if (s[i] == '/' && i + 1 < len && s[i + 1] == '*') {
			char *e = strstr(s + i + 2, "*/");
			i = e ? (size_t)(e - s) + 2 : len;
		} else {
			break;
		}
	}
	return i;
}

static int word_at(const char *s, size_t len, size_t i, const char *w)
{
	size_t n = strlen(w);

	return i + n <= len && !strncasecmp(s + i, w, n) &&
	       (i + n == len || !(isalnum((unsigned char)s[i + n]) || s[i + n] == '_'));
}

/* Put the ephemeral CTEs in front of sql, merging with its own WITH. */
static void inject_ctes(const struct buf *sql, const struct buf *ctes, struct buf *out)
{
	size_t i = skip_sql_space(sql->s, sql->len);

	buf_add(out, sql->s, i);
	if (word_at(sql->s, sql->len, i, "with")) {
		size_t j = skip_sql_space(sql->s + i + 4, sql->len - i - 4) + i + 4;
		if (word_at(sql->s, sql->len, j, "recursive")) {
			buf_printf(out, "WITH RECURSIVE %s,\n", ctes->s);
			buf_add(out, sql->s + j + 9, sql->len - j - 9);
		} else {
			buf_printf(out, "WITH %s,\n", ctes->s);
			buf_add(out, sql->s + i + 4, sql->len - i - 4);
		}
	} else {
		buf_printf(out, "WITH %s\n", ctes->s);
		buf_add(out, sql->s + i, sql->len - i);
	}
}

static int compile_node(const struct manifest *m, const struct node *n, const struct compile_opts *o,
			struct arena *scratch, struct buf *out, struct val *used, struct query_replay *rp,
			struct sluice_err *err);

struct replay_ud {
	const struct manifest *m;
	const struct node *n;
	const struct compile_opts *o;
	struct arena *scratch;
};

/* A logical render's queries: render the node physically once, keeping its answers. */
static int replay_run(struct query_replay *rp, struct sluice_err *err)
{
	const struct replay_ud *u = rp->ud;
	struct compile_opts phys = *u->o;
	struct buf sql = BUF_INIT;
	int rc;

	phys.logical = 0;
	rp->recording = 1;
	rc = compile_node(u->m, u->n, &phys, u->scratch, &sql, NULL, rp, err);
	rp->recording = 0;
	rp->done = 1;
	buf_release(&sql);
	return rc;
}

int manifest_compile(const struct manifest *m, const struct node *n, const struct compile_opts *o,
		     struct arena *scratch, struct buf *out, struct val *used, struct sluice_err *err)
{
	struct replay_ud u = { m, n, o, scratch };
	struct query_replay rp;

	memset(&rp, 0, sizeof(rp));
	rp.answers = val_list_new();
	rp.run = replay_run;
	rp.ud = &u;
	return compile_node(m, n, o, scratch, out, used, &rp, err);
}

static int compile_node(const struct manifest *m, const struct node *n, const struct compile_opts *o,
			struct arena *scratch, struct buf *out, struct val *used, struct query_replay *rp,
			struct sluice_err *err)
{
	struct buf ctes = BUF_INIT, sql = BUF_INIT;
	struct render_ctx r = { m, node_package(m, n), n, n, o, scratch, used, &ctes, NULL, 0, n->mat == MAT_SHELL, NULL, rp };
	int rc;

	r.cte_done = arena_alloc(scratch, m->n);
	r.results = arena_alloc(scratch, sizeof(*r.results));
	*r.results = val_dict_new();
	rc = render_node_sql(&r, n, &sql, err);
	if (!rc) {
		if (ctes.len)
			inject_ctes(&sql, &ctes, out);
		else
			buf_add(out, sql.s, sql.len);
	}
	buf_release(&ctes);
	buf_release(&sql);
	return rc;
}

int manifest_read_sql(const struct manifest *m, const struct node *n, const struct compile_opts *o,
		      struct arena *scratch, struct buf *out, struct sluice_err *err)
{
	int rc;

	if (n->type != NODE_MODEL || n->mat != MAT_EPHEMERAL) {
		if (!o || !o->logical)
			buf_puts(out, n->relation);
		else if (n->type == NODE_SOURCE)
			buf_printf(out, "source('%s', '%s')", n->source->source_name, n->source->name);
		else
			buf_printf(out, "ref('%s')", n->name);
		return 0;
	}
	buf_puts(out, "(\n");
	rc = manifest_compile(m, n, o, scratch, out, NULL, err);
	buf_puts(out, "\n)");
	return rc;
}

int manifest_render_string(const struct manifest *m, const struct node *n, const char *what,
			   const char *src, const struct compile_opts *o, struct arena *scratch,
			   struct buf *out, struct sluice_err *err)
{
	struct buf ctes = BUF_INIT;
	/* hooks may use {{ this }}; their refs are not dependencies */
	struct render_ctx r = { m, m->project->name, NULL, n, o, scratch, NULL, &ctes, NULL, 0, 0, NULL, NULL };
	struct tpl_host host = { &r, host_call, host_lookup, host_on_macro, host_why };
	struct tpl *t;
	int rc;

	r.cte_done = arena_alloc(scratch, m->n);
	r.results = arena_alloc(scratch, sizeof(*r.results));
	*r.results = val_dict_new();
	rc = tpl_parse(scratch, what, src, strlen(src), &t, err);
	if (!rc)
		rc = tpl_render(t, &host, scratch, out, err);
	buf_release(&ctes);
	return rc;
}
