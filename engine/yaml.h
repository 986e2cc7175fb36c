/*
 * yaml.h: a YAML document as a small tree with line numbers, built with
 * libyaml's parser events. Everything lives in the caller's arena.
 *
 * Only the parts of YAML project files use: block and flow maps and
 * sequences, scalars of every style, anchors/aliases (resolved by sharing),
 * YAML 1.1 merge keys (`<<: *defaults`, expanded in place, as PyYAML and so
 * dbt read them). Keys must be scalars; a duplicate key keeps its last
 * value, with a warning (as PyYAML, and so dbt, reads it).
 * Multiple documents: only the first is read.
 */
#ifndef SLUICE_YAML_H
#define SLUICE_YAML_H

#include <stddef.h>
#include "util/arena.h"
#include "util/err.h"
#include "value.h"

enum ynode_kind { Y_SCALAR, Y_SEQ, Y_MAP };

struct ynode {
	enum ynode_kind kind;
	int line, col;                 /* 1-based start position */
	const char *path;              /* file, for messages (borrowed) */
	const char *scalar;            /* Y_SCALAR: NUL-terminated text */
	size_t len;
	int plain;                     /* Y_SCALAR: unquoted (so null/bool/number may apply) */
	struct ynode **items;          /* Y_SEQ: n items; Y_MAP: n keys and n values, */
	size_t n;                      /*   items[2*i] key, items[2*i+1] value */
};

/*
 * Parse a file or a string. An empty document gives *root == NULL and 0.
 * Syntax errors: SLUICE_EUSAGE with "path:line:col: message". Warnings
 * ("path:line:col: duplicate key ...") are added to warnings, which may
 * be NULL.
 */
int yaml_load_file(struct arena *a, const char *path, struct ynode **root, struct err_list *warnings,
		   struct sluice_err *err);
int yaml_load_str(struct arena *a, const char *path, const char *src, size_t len,
		  struct ynode **root, struct err_list *warnings, struct sluice_err *err);

/* Value of key in a map node, or NULL. */
struct ynode *ymap_get(const struct ynode *map, const char *key);
/* Convert to a value: plain scalars null/~/"" -> none, true/false -> bool,
 * numbers -> number; quoted scalars stay strings. */
struct val yaml_to_val(struct arena *a, const struct ynode *n);
/* Error at node: "path:line:col: fmt..." with code SLUICE_EUSAGE. */
int yaml_error(struct sluice_err *err, const struct ynode *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The same message as a warning, added to l (which may be NULL). */
void yaml_warn(struct err_list *l, const struct ynode *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
