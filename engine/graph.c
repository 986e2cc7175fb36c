/*
 * graph.c: writing the DAG as dot, Mermaid or JSON; see graph.h. Names
 * are escaped for each format, so any model or source name draws as
 * itself and cannot break out of its quotes.
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include "graph.h"

int graph_format_parse(const char *name, enum graph_format *out)
{
	if (!name || !strcmp(name, "dot"))
		*out = GRAPH_DOT;
	else if (!strcmp(name, "mermaid"))
		*out = GRAPH_MERMAID;
	else if (!strcmp(name, "json"))
		*out = GRAPH_JSON;
	else
		return -1;
	return 0;
}

void graph_dot_quote(struct buf *out, const char *s)
{
	buf_addc(out, '"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			buf_addc(out, '\\');
		if (*s == '\n')
			buf_puts(out, "\\n");
		else if (*s != '\r')
			buf_addc(out, *s);
	}
	buf_addc(out, '"');
}

void graph_mermaid_label(struct buf *out, const char *s)
{
	buf_addc(out, '"');
	for (; *s; s++) {
		switch (*s) {
		case '"': buf_puts(out, "#quot;"); break;
		case '<': buf_puts(out, "#lt;"); break;
		case '>': buf_puts(out, "#gt;"); break;
		case '&': buf_puts(out, "#amp;"); break;
		case '#': buf_puts(out, "#35;"); break;
		case '\n': case '\r': buf_addc(out, ' '); break;
		default: buf_addc(out, *s);
		}
	}
	buf_addc(out, '"');
}

static const char *resource_type(const struct node *n)
{
	return n->type == NODE_MODEL ? "model" : n->type == NODE_TEST ? "test" : "source";
}

/* What a person reads on the node: the model's name, source.table, the test's name. */
static const char *label(const struct node *n)
{
	return n->type == NODE_SOURCE && n->display ? n->display : n->name;
}

static void write_dot(struct buf *out, const struct manifest *m, const unsigned char *keep)
{
	size_t i, k;

	buf_puts(out, "digraph sluice {\n  rankdir=LR;\n");
	for (i = 0; i < m->n; i++) {
		const struct node *n = &m->nodes[i];
		if (!keep[i])
			continue;
		buf_puts(out, "  ");
		graph_dot_quote(out, n->unique_id);
		buf_puts(out, " [label=");
		graph_dot_quote(out, label(n));
		buf_printf(out, ", shape=%s];\n", n->type == NODE_SOURCE ? "cylinder" : n->type == NODE_TEST ? "note" : "box");
	}
	for (i = 0; i < m->n; i++)
		for (k = 0; keep[i] && k < m->dag->nchildren[i]; k++) {
			size_t c = m->dag->children[i][k];
			if (!keep[c])
				continue;
			buf_puts(out, "  ");
			graph_dot_quote(out, m->nodes[i].unique_id);
			buf_puts(out, " -> ");
			graph_dot_quote(out, m->nodes[c].unique_id);
			buf_puts(out, ";\n");
		}
	buf_puts(out, "}\n");
}

static void write_mermaid(struct buf *out, const struct manifest *m, const unsigned char *keep)
{
	size_t i, k;

	/* ids are n<index>: unique ids may hold characters Mermaid reads as syntax */
	buf_puts(out, "flowchart LR\n");
	for (i = 0; i < m->n; i++) {
		const struct node *n = &m->nodes[i];
		if (!keep[i])
			continue;
		buf_printf(out, "  n%zu%s", i, n->type == NODE_SOURCE ? "[(" : n->type == NODE_TEST ? "{{" : "[");
		graph_mermaid_label(out, label(n));
		buf_printf(out, "%s\n", n->type == NODE_SOURCE ? ")]" : n->type == NODE_TEST ? "}}" : "]");
	}
	for (i = 0; i < m->n; i++)
		for (k = 0; keep[i] && k < m->dag->nchildren[i]; k++)
			if (keep[m->dag->children[i][k]])
				buf_printf(out, "  n%zu --> n%zu\n", i, m->dag->children[i][k]);
}

static void write_json(struct buf *out, const struct manifest *m, const unsigned char *keep)
{
	json_t *root = json_object(), *nodes = json_array(), *edges = json_array();
	size_t i, k;
	char *text;

	for (i = 0; i < m->n; i++) {
		const struct node *n = &m->nodes[i];
		json_t *o;
		if (!keep[i])
			continue;
		o = json_object();
		json_object_set_new(o, "unique_id", json_string(n->unique_id));
		json_object_set_new(o, "name", json_string(label(n)));
		json_object_set_new(o, "resource_type", json_string(resource_type(n)));
		if (n->type == NODE_MODEL)
			json_object_set_new(o, "materialized", json_string(n->mat_name));
		json_array_append_new(nodes, o);
		for (k = 0; k < m->dag->nchildren[i]; k++)
			if (keep[m->dag->children[i][k]])
				json_array_append_new(edges, json_pack("{s:s, s:s}", "from", n->unique_id, "to",
								       m->nodes[m->dag->children[i][k]].unique_id));
	}
	json_object_set_new(root, "nodes", nodes);
	json_object_set_new(root, "edges", edges);
	text = json_dumps(root, JSON_INDENT(2));
	if (text)
		buf_printf(out, "%s\n", text);
	free(text);
	json_decref(root);
}

void graph_write(struct buf *out, const struct manifest *m, const unsigned char *keep, enum graph_format f)
{
	if (f == GRAPH_DOT)
		write_dot(out, m, keep);
	else if (f == GRAPH_MERMAID)
		write_mermaid(out, m, keep);
	else
		write_json(out, m, keep);
}
