/*
 * dag.h: the node graph, independent of what a node is. Cycle detection,
 * topological order, critical-path priorities, and dbt's selection syntax.
 *
 * Nodes are indices 0..n-1. Edges point parent -> child (child depends on
 * parent). The dag lives in the arena given to dag_new.
 */
#ifndef SLUICE_DAG_H
#define SLUICE_DAG_H

#include <stddef.h>
#include "util/arena.h"
#include "util/buf.h"
#include "util/err.h"
#include "value.h"

/* What selection needs to know of a node. */
struct dag_node_info {
	const char *name;          /* model name, or for sources "table" */
	const char *source_name;   /* sources only: the source's name ("lake"); NULL for models */
	const char *unique_id;     /* "model.proj.name" / "source.proj.lake.patients" */
	const char *path;          /* relative file path, e.g. "models/staging/x.sql" */
	const char *const *tags;
	size_t ntags;
	const struct val *config;  /* dict; "config.<key>:<value>" matches against it */
	int is_source;
};

struct dag {
	size_t n;
	size_t **parents, *nparents;    /* parents[i][k], deduplicated */
	size_t **children, *nchildren;  /* children[i][k], deduplicated */
	size_t *order;                  /* after dag_check: a topological order */
	size_t *prio;                   /* after dag_check: longest path (in nodes) from i to a sink */
	struct arena *arena;
	/* builder state */
	size_t *pcap, *ccap;
};

struct dag *dag_new(struct arena *a, size_t n);
/* Adds parent -> child; duplicates are ignored. */
void dag_add_edge(struct dag *d, size_t parent, size_t child);

/*
 * Check for cycles and compute order and prio. On a cycle returns
 * SLUICE_EUSAGE and writes the cycle as indices into *cycle and *ncycle (arena
 * memory), first node repeated at the end: a -> b -> c -> a.
 */
int dag_check(struct dag *d, size_t **cycle, size_t *ncycle);

/*
 * Selection, dbt syntax. `select` and `exclude` are space-separated unions
 * of comma-separated intersections of selectors; NULL or "" select means
 * everything. Selector: [N+|+][@]method:value[+|+N] where method is one of
 * (none: name, with * ? wildcards), tag:, path: (file or directory prefix),
 * source: (s or s.t, wildcards ok), config.<key>: (string value or member of
 * a list value), fqn: is not needed. "+x" adds ancestors, "x+" descendants,
 * "2+x"/"x+1" limit depth, "@x" adds descendants and their ancestors.
 * Fills selected[i] = 1 for selected nodes (sources included; callers decide
 * what to run). A selector that matches no node is not an error: the caller
 * warns. Malformed input: SLUICE_EUSAGE naming the selector.
 */
int dag_select(const struct dag *d, const struct dag_node_info *info,
	       const char *select, const char *exclude, unsigned char *selected,
	       struct sluice_err *err);

/* Closest name by edit distance (<= max(2, len/3)), for "did you mean"; or NULL. */
const char *dag_suggest(const char *name, const char *const *candidates, size_t n);

#endif
