/*
 * macros.c: the macros of a project, its packages and the dbt namespace;
 * see macros.h. Parsing happens once, at load; lookups are by
 * "package.name" in one map.
 */
#include <stdio.h>
#include <string.h>
#include "macros.h"

/* engine/builtin-macros.sql, made a C string by the Makefile */
extern const char builtin_macros[];

#define BUILTIN_PATH "<sluice>/builtin-macros.sql"

static const struct macro_def *find(const struct macro_set *ms, const char *pkg, const char *name)
{
	char key[512];

	if ((size_t)snprintf(key, sizeof(key), "%s.%s", pkg, name) >= sizeof(key))
		return NULL;
	return strmap_get(&ms->by_qualified, key);
}

/* Add every macro of t to package pkg. 1 when one of them was already there (reported). */
static int add_file(struct macro_set *ms, struct tpl *t, const char *pkg, const char *path,
		    struct err_list *problems, struct sluice_err *err)
{
	struct val *ns = strmap_get(&ms->namespaces, pkg);
	size_t i, n = tpl_macro_count(t), len;
	int dup = 0;

	if (!ns) {
		ns = arena_alloc(&ms->arena, sizeof(*ns));
		*ns = val_dict_new();
		strmap_put(&ms->namespaces, pkg, ns);
	}
	for (i = 0; i < n; i++) {
		const struct tpl_macro *m = tpl_macro_at(t, i);
		struct macro_def *d = arena_alloc(&ms->arena, sizeof(*d)), *old;
		const char *text = tpl_macro_text(m, &len);

		d->m = m;
		d->package = pkg;
		d->name = tpl_macro_name(m);
		d->qualified = arena_printf(&ms->arena, "%s.%s", pkg, d->name);
		d->path = path;
		hash_hex(text, len, d->hash);
		if ((old = strmap_get(&ms->by_qualified, d->qualified))) {
			err_set(err, SLUICE_EUSAGE, "%s:%d: macro '%s' is defined twice in %s (also at %s:%d)",
				path, tpl_macro_line(m), d->name, pkg, old->path, tpl_macro_line(old->m));
			err_list_add(problems, "%s", err->msg);
			dup = 1;
			continue;
		}
		tpl_macro_set_data(t, i, d);
		strmap_put(&ms->by_qualified, d->qualified, d);
		val_dict_set(&ms->arena, ns, d->name, tpl_macro_value(m));
	}
	return dup;
}

int macros_load(struct macro_set *ms, const struct project *p, const char *adapter, struct sluice_err *err)
{
	struct tpl *t;
	size_t i;
	int rc;

	memset(ms, 0, sizeof(*ms));
	arena_init(&ms->arena);
	ms->root = p->name;
	ms->adapter = adapter;
	ms->dispatch = val_get(&p->raw, "dispatch");
	if ((rc = tpl_parse(&ms->arena, BUILTIN_PATH, builtin_macros, strlen(builtin_macros), &t, err)))
		return rc;   /* a defect of the build itself */
	add_file(ms, t, "dbt", BUILTIN_PATH, NULL, err);
	for (i = 0; i < p->nmacro_files; i++) {
		const struct macro_file *f = &p->macro_files[i];
		int root = !strcmp(f->package, p->name);

		if ((rc = tpl_parse(&ms->arena, f->path, f->src, f->src_len, &t, err))) {
			if (!root) {
				/* a package's file sluice cannot read yet: its macros are missing, the rest works */
				err_list_add(p->warnings, "%s (its macros are not available)", err->msg);
				continue;
			}
			if ((rc = err_collect(p->errors, err, rc)))
				return rc;
			continue;
		}
		if (add_file(ms, t, f->package, f->path, root ? p->errors : p->warnings, err) && root &&
		    !p->errors)
			return SLUICE_EUSAGE;
	}
	return 0;
}

void macros_release(struct macro_set *ms)
{
	strmap_release(&ms->by_qualified);
	strmap_release(&ms->namespaces);
	arena_release(&ms->arena);
}

const struct macro_def *macros_resolve(const struct macro_set *ms, const char *pkg, const char *name)
{
	const struct macro_def *d;

	if (pkg && (d = find(ms, pkg, name)))
		return d;
	if ((d = find(ms, ms->root, name)))
		return d;
	return find(ms, "dbt", name);
}

const struct val *macros_namespace(const struct macro_set *ms, const char *pkg)
{
	return strmap_get(&ms->namespaces, pkg);
}

/* dispatch: [{macro_namespace: ns, search_order: [...]}] of dbt_project.yml: ns's list, or NULL. */
static const struct val *search_order(const struct macro_set *ms, const char *ns)
{
	size_t i;

	for (i = 0; ms->dispatch && ms->dispatch->kind == V_LIST && i < ms->dispatch->u.list.n; i++) {
		const struct val *e = &ms->dispatch->u.list.items[i];
		const char *name = val_get_str(e, "macro_namespace", NULL);
		const struct val *order = val_get(e, "search_order");

		if (name && !strcmp(name, ns) && order && order->kind == V_LIST)
			return order;
	}
	return NULL;
}

const struct macro_def *macros_dispatch(const struct macro_set *ms, const char *pkg, const char *name,
					 const char *ns, struct sluice_err *err)
{
	const char *prefixes[3] = { ms->adapter, NULL, "default" };
	const char *defaults[2] = { ms->root, ns }, *where;
	const struct val *order = ns ? search_order(ms, ns) : NULL;
	const struct macro_def *d;
	size_t i, k, npk = ns ? 2 : 1;
	char full[256];

	if (strchr(name, '.'))
		return err_set(err, SLUICE_EUSAGE, "adapter.dispatch('%s'): a macro name has no '.'; "
			       "give the package as macro_namespace", name), NULL;
	/* dbt-redshift is built on dbt-postgres: postgres__ forms serve Redshift too */
	if (ms->adapter && !strcmp(ms->adapter, "redshift"))
		prefixes[1] = "postgres";
	if (order)
		npk = order->u.list.n;
	for (i = 0; i < npk; i++) {
		where = order ? (order->u.list.items[i].kind == V_STR ? order->u.list.items[i].u.str.s : NULL)
			      : defaults[i];
		for (k = 0; where && k < 3; k++) {
			if (!prefixes[k] || (size_t)snprintf(full, sizeof(full), "%s__%s", prefixes[k], name) >= sizeof(full))
				continue;
			d = ns ? find(ms, where, full) : macros_resolve(ms, pkg, full);
			if (d)
				return d;
		}
	}
	err_set(err, SLUICE_EUSAGE, "adapter.dispatch('%s'%s%s%s): no %s__%s or default__%s macro in %s", name,
		ns ? ", '" : "", ns ? ns : "", ns ? "'" : "", ms->adapter ? ms->adapter : "?", name, name,
		ns ? ns : "the project");
	return NULL;
}
