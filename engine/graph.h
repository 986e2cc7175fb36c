/*
 * graph.h: the DAG as text for other tools: Graphviz dot, Mermaid
 * flowcharts, or JSON (nodes and edges), for `sluice graph`. Every node
 * kind is drawn: models (SQL, shell, stages), sources and data tests.
 *
 * Not here: the graph itself or the selection (dag.c), or the report's
 * drawing of it.
 */
#ifndef SLUICE_GRAPH_H
#define SLUICE_GRAPH_H

#include "manifest.h"
#include "util/buf.h"

enum graph_format { GRAPH_DOT, GRAPH_MERMAID, GRAPH_JSON };

/* "dot", "mermaid" or "json": 0 and *out, or -1. */
int graph_format_parse(const char *name, enum graph_format *out);

/*
 * The nodes with keep[i] set and the edges between two of them, in
 * manifest order, appended to out.
 */
void graph_write(struct buf *out, const struct manifest *m, const unsigned char *keep, enum graph_format f);

/* s as a dot double-quoted ID: "a \"b\"" (backslashes doubled, newlines as \n). */
void graph_dot_quote(struct buf *out, const char *s);
/* s as a Mermaid quoted label: "..." with " < > & # and newlines as entity codes. */
void graph_mermaid_label(struct buf *out, const char *s);

#endif
