/*
 * kind.c: the one table from a node to its kind (kind.h). Adding a kind
 * is a line here and its own kind-<name>.c.
 */
#include "kind.h"

const struct node_kind *const node_kinds[] = {
	&kind_view, &kind_table, &kind_incremental, &kind_ephemeral,
	&kind_unload, &kind_load, &kind_shell, &kind_datatest, &kind_source, &kind_seed, &kind_snapshot,
};
const size_t node_kinds_n = sizeof(node_kinds) / sizeof(node_kinds[0]);

/* By materialization, in enum materialization's order (manifest.h). */
static const struct node_kind *const by_mat[MAT__COUNT] = {
	[MAT_VIEW] = &kind_view,
	[MAT_TABLE] = &kind_table,
	[MAT_INCREMENTAL] = &kind_incremental,
	[MAT_EPHEMERAL] = &kind_ephemeral,
	[MAT_UNLOAD] = &kind_unload,
	[MAT_LOAD] = &kind_load,
	[MAT_SHELL] = &kind_shell,
	[MAT_SEED] = &kind_seed,
	[MAT_SNAPSHOT] = &kind_snapshot,
};

const struct node_kind *node_kind_of(const struct node *n)
{
	if (n->type == NODE_TEST)
		return &kind_datatest;
	if (n->type == NODE_SOURCE)
		return &kind_source;
	return by_mat[n->mat];
}

/* Sources are read, never run: no slot applies. */
const struct node_kind kind_source = {
	.name = "source",
};
