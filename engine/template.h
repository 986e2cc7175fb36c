/*
 * template.h: the Jinja subset that dbt projects use, for SQL and shell models
 * and for profile values. Lexer, parser and evaluator; no I/O.
 *
 * Supported: {{ expr }}, {% if/elif/else/endif %}, {% for x in list %} with
 * loop.first/last/index/index0/length, {% set x = expr %}, {# comments #},
 * whitespace control {%- -%} {{- -}}; literals (string, number, list, dict,
 * true/false/none, True/False/None), names, attribute access a.b, indexing
 * a[0], calls f(a, k=v), operators == != < > <= >= and or not in ~ + -,
 * parentheses, filters |upper |lower |join(sep) |default(v) |replace(a,b)
 * |trim |length.
 *
 * What is NOT here: macros, includes, blocks, inheritance.
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
};

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

/* True when src contains no template syntax at all ({{, {%, {#). */
int tpl_is_plain(const char *src, size_t len);

#endif
