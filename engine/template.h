/*
 * template.h: the Jinja subset that dbt projects use, for SQL and shell models
 * and for profile values. Lexer, parser and evaluator; no I/O.
 *
 * Supported: {{ expr }}, {% if/elif/else/endif %}, {% for x in list %} with
 * loop.first/last/index/index0/length, {% set x = expr %}, {% set ns.x = v %},
 * {% set x %}...{% endset %}, {% do %}, {% macro %} and {% test %}
 * definitions with defaults, varargs, kwargs and return(), {% call %} with
 * caller(), {% filter %}, {# comments #}, whitespace control; literals,
 * names, attributes, indexing, calls of functions, methods and values,
 * operators, filters and tests (docs/templates.md lists them all).
 *
 * What is NOT here: includes, imports, blocks, inheritance.
 *
 * Functions the template does not define (ref, source, config, var, env_var,
 * is_incremental, ...) and free names (this, target, ...) are asked of the
 * host through struct tpl_host. The template owns positions: any error,
 * its own or the host's, reaches the caller as "path:line:col: message".
 */
#ifndef SLUICE_TEMPLATE_H
#define SLUICE_TEMPLATE_H

#include <stddef.h>
#include "util/arena.h"
#include "util/buf.h"
#include "util/err.h"
#include "value.h"

struct tpl;   /* a parsed template; lives in the arena given to tpl_parse */

/* One call of a host function, as the host sees it. */
struct tpl_call {
	const char *name;                /* function name, e.g. "ref" */
	const struct val *args;          /* positional arguments */
	size_t nargs;
	const char *const *kwnames;      /* keyword argument names */
	const struct val *kwargs;        /* keyword argument values */
	size_t nkw;
	const char *path;                /* template path, for messages */
	int line, col;                   /* 1-based position of the call */
	struct arena *arena;             /* where the host allocates results */
	const struct val *self;          /* a method's object (a V_FUNC's self), or NULL */
	const struct val *body;          /* called by {% call %}: the block's text, rendered; or NULL */
};

/*
 * What a V_FUNC value (value.h) holds, by its tag. A host makes
 * TPL_FN_HOST values (fn: the name its call slot receives; self: given
 * back as tpl_call.self) and TPL_FN_MACRO ones with tpl_macro_value.
 */
enum tpl_fn_tag { TPL_FN_MACRO = 1, TPL_FN_CALLER, TPL_FN_HOST };

/* A {% macro %} or {% test %} definition; lives as long as its template. */
struct tpl_macro;

struct tpl_host {
	void *ud;
	/*
	 * Call a host function. Return 0 and set *out, or a negative code with a
	 * message in err (without position: the template adds "path:line:col: ").
	 * Return 1 (and leave err alone) when the function is unknown: the
	 * template then reports "undefined function 'name'".
	 * May be NULL: every function is then undefined.
	 */
	int (*call)(void *ud, const struct tpl_call *call, struct val *out, struct sluice_err *err);
	/*
	 * Look up a free name not set by {% set %} / {% for %}. Return 0 and set
	 * *out, or 1 when undefined (the template reports "undefined name 'x'").
	 * May be NULL.
	 */
	int (*lookup)(void *ud, const char *name, struct arena *a, struct val *out);
	/* Told of every call of a macro, before it runs (fingerprints record them). May be NULL. */
	void (*on_macro)(void *ud, const struct tpl_macro *m);
	/*
	 * Why a name is undefined, when the host knows (a name of dbt's it
	 * does not have yet): appended to the error. NULL, or a NULL answer:
	 * nothing to add.
	 */
	const char *(*why_undefined)(void *ud, const char *name);
};

/*
 * Parse src (len bytes, need not be NUL-terminated). path is used in
 * messages and must outlive the template. On a syntax error returns
 * SLUICE_EUSAGE with "path:line:col: message".
 */
int tpl_parse(struct arena *a, const char *path, const char *src, size_t len,
	      struct tpl **out, struct sluice_err *err);

/*
 * Render into out (appended). Deterministic: the same template, host
 * answers and variables give the same bytes. Scratch values are allocated
 * in scratch (the caller releases it). Errors are "path:line:col: message"
 * and carry the host's code (SLUICE_EUSAGE for undefined names).
 */
int tpl_render(const struct tpl *t, const struct tpl_host *host, struct arena *scratch,
	       struct buf *out, struct sluice_err *err);

/*
 * Static walk: call cb for every call of function `name` anywhere in the
 * template, in any branch, whose arguments are all literals (the call's
 * args/kwargs are filled; non-literal calls are skipped). Used to find
 * ref()/source()/config() without choosing branches. cb returns 0 to go
 * on, non-zero to stop (that value is returned).
 */
int tpl_each_call(const struct tpl *t, const char *name,
		  int (*cb)(void *ud, const struct tpl_call *call), void *ud, struct arena *a);

/*
 * As tpl_each_call, but an argument may also be a list or dict holding
 * calls of other functions whose own arguments are literals, as in
 * config(depends_on=[ref('x')]): inner gives each such call's value (0
 * and *out), or returns 1 when it cannot (the outer call is then skipped,
 * as a non-literal one), or a negative code to stop the walk.
 */
int tpl_each_call_nested(const struct tpl *t, const char *name,
			 int (*cb)(void *ud, const struct tpl_call *call),
			 int (*inner)(void *ud, const struct tpl_call *call, struct val *out),
			 void *ud, struct arena *a);

/*
 * The macros t defines (in order, wherever they stand in the file). A
 * test's name is test_<name>. tpl_macro_text is the definition as written,
 * from its "{%" to its end tag's "%}": what fingerprints hash.
 */
size_t tpl_macro_count(const struct tpl *t);
const struct tpl_macro *tpl_macro_at(const struct tpl *t, size_t i);
const char *tpl_macro_name(const struct tpl_macro *m);
int tpl_macro_is_test(const struct tpl_macro *m);
const char *tpl_macro_text(const struct tpl_macro *m, size_t *len);
int tpl_macro_line(const struct tpl_macro *m);
const char *tpl_path(const struct tpl *t);
/* A pointer of the host's own, kept with the i-th macro of t (NULL until set). */
void tpl_macro_set_data(struct tpl *t, size_t i, const void *data);
const void *tpl_macro_data(const struct tpl_macro *m);
/* A value that calls m: what a host's lookup gives for a macro's name. */
struct val tpl_macro_value(const struct tpl_macro *m);

/*
 * Call macro m with args, as a template would: its printed text (or what
 * its return() gave) in *out, allocated in scratch. Errors are as
 * tpl_render's. For hosts that call a project's macro themselves
 * (generate_schema_name).
 */
int tpl_call(const struct tpl_macro *m, const struct val *args, size_t nargs, const struct tpl_host *host,
	     struct arena *scratch, struct val *out, struct sluice_err *err);

/*
 * Static walk of the names a template body (m NULL) or a macro uses: cb
 * gets each name read or called (attr NULL), each name.attr read or
 * called (dbt_utils.star, adapter.dispatch), and a call's first argument
 * when it is a literal (adapter.dispatch('x') gives 'x'), or NULL.
 * Macros defined in t are not walked by the body's walk.
 */
typedef int tpl_name_fn(void *ud, const char *name, const char *attr, const struct val *arg0);
int tpl_each_name(const struct tpl *t, const struct tpl_macro *m, tpl_name_fn *cb, void *ud);

/* True when src contains no template syntax at all ({{, {%, {#). */
int tpl_is_plain(const char *src, size_t len);

#endif
