/*
 * macros.h: the macros a project's templates can call. Its own (.sql files
 * under macro-paths, and generic tests under <test path>/generic/), those
 * of its packages, and the `dbt` namespace built into sluice
 * (engine/builtin-macros.sql). Loaded once per project; read-only after,
 * so any thread may look names up.
 *
 * Not here: rendering (template.c) and the names that are not macros
 * (ref, this, target: manifest.c).
 */
#ifndef SLUICE_MACROS_H
#define SLUICE_MACROS_H

#include "project.h"
#include "template.h"
#include "util/arena.h"
#include "util/err.h"
#include "util/hash.h"
#include "util/strmap.h"

struct macro_def {
	const struct tpl_macro *m;
	const char *package;       /* the root project's name, a package's, or "dbt" */
	const char *name;          /* "star"; a generic test: "test_unique" */
	const char *qualified;     /* "dbt_utils.star": what fingerprints and errors name */
	const char *path;          /* where it is defined */
	char hash[HASH_HEX];       /* of its text */
};

struct macro_set {
	struct arena arena;
	const char *root;          /* the root project's name */
	const char *adapter;       /* the dispatch prefix: "postgres", "redshift" */
	struct strmap by_qualified;   /* "pkg.name" -> struct macro_def * */
	struct strmap namespaces;     /* "pkg" -> struct val * (a dict of its macros as functions) */
	const struct val *dispatch;   /* dbt_project.yml `dispatch:`, or NULL */
};

/*
 * Parse every macro file of p and the built-in ones. A file of the root
 * project that does not parse, or two macros of one name in one package,
 * are errors (added to p->errors when it has a list; the first returned
 * otherwise); a package's file that does not parse is a warning, and its
 * macros are missing. adapter is the target's dialect name.
 */
int macros_load(struct macro_set *ms, const struct project *p, const char *adapter, struct sluice_err *err);
void macros_release(struct macro_set *ms);

/*
 * What `name` means in a template of package pkg: a macro of pkg itself,
 * then of the root project, then of dbt. NULL when none.
 */
const struct macro_def *macros_resolve(const struct macro_set *ms, const char *pkg, const char *name);

/* A package's namespace (dbt_utils in dbt_utils.star): a dict of functions, or NULL. */
const struct val *macros_namespace(const struct macro_set *ms, const char *pkg);

/*
 * adapter.dispatch(name, ns) called from a template of package pkg: in
 * the search order dbt_project.yml's dispatch: gives ns (else the root
 * project, then ns; with no ns, the names pkg resolves), the first of
 * <adapter>__name (redshift also tries postgres__name) and default__name.
 * NULL with err set when none exists.
 */
const struct macro_def *macros_dispatch(const struct macro_set *ms, const char *pkg, const char *name,
					 const char *ns, struct sluice_err *err);

/* The definition behind a macro a template called, or NULL (a model's own macro). */
static inline const struct macro_def *macros_def_of(const struct tpl_macro *m)
{
	return tpl_macro_data(m);
}

#endif
