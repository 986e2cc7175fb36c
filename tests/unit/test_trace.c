/*
 * test_trace.c: unit tests for the pure parts of traceability: naming a
 * relation and comparing versions for `sluice blame` (engine/blame.c),
 * escaping names for dot and Mermaid and the edges `sluice graph` draws
 * (engine/graph.c), the command line with its secrets left out
 * (engine/identity.c) and the audit log's statement hash (engine/audit.c).
 * No database, no project on disk.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "../../engine/audit.h"
#include "../../engine/blame.h"
#include "../../engine/dag.h"
#include "../../engine/graph.h"
#include "../../engine/identity.h"
#include "../../engine/util/hash.h"

static void expect_relation(const char *text, const char *schema, const char *ident)
{
	struct buf s = BUF_INIT, i = BUF_INIT;

	assert_int_equal(blame_parse_relation(text, &s, &i), 0);
	assert_string_equal(s.s, schema);
	assert_string_equal(i.s, ident);
	buf_release(&s);
	buf_release(&i);
}

static void expect_not_relation(const char *text)
{
	struct buf s = BUF_INIT, i = BUF_INIT;

	assert_int_equal(blame_parse_relation(text, &s, &i), -1);
	buf_release(&s);
	buf_release(&i);
}

static void test_parse_relation(void **state)
{
	(void)state;
	expect_relation("analytics.orders", "analytics", "orders");
	expect_relation("Analytics.Orders", "analytics", "orders");            /* unquoted: folded */
	expect_relation("\"Analytics\".\"Orders\"", "Analytics", "Orders");   /* quoted: as written */
	expect_relation("\"my schema\".\"a.b\"", "my schema", "a.b");          /* dots inside quotes */
	expect_relation("\"we\"\"ird\".x", "we\"ird", "x");                    /* "" is one quote */
	expect_relation("analytics.\"Mixed\"", "analytics", "Mixed");
	expect_not_relation("orders");
	expect_not_relation("a.b.c");
	expect_not_relation("\"open.x");
	expect_not_relation(".x");
	expect_not_relation("x.");
	expect_not_relation("\"a\"b.c");
}

static void test_compare(void **state)
{
	(void)state;
	assert_int_equal(blame_compare("stats:1:3:0:0:", "stats:1:3:0:0:", 1), BLAME_NOW_SAME);
	assert_int_equal(blame_compare("stats:1:3:0:0:", "stats:1:4:0:0:", 1), BLAME_NOW_CHANGED);
	assert_int_equal(blame_compare("stats:1:3:0:0:", "missing", 1), BLAME_NOW_DROPPED);
	assert_int_equal(blame_compare("stats:1:3:0:0:", NULL, 0), BLAME_NOW_DROPPED);
	/* a view records no version: existence is all that can be said */
	assert_int_equal(blame_compare(NULL, "untracked", 1), BLAME_NOW_UNKNOWN);
	assert_int_equal(blame_compare(NULL, NULL, 0), BLAME_NOW_DROPPED);
}

/* A little manifest: source -> a -> b, a -> test; names chosen to need escaping. */
struct fixture {
	struct arena arena;
	struct node nodes[4];
	struct manifest m;
};

static struct fixture fx;

static int fx_setup(void **state)
{
	struct fixture *f = &fx;

	memset(f, 0, sizeof(*f));
	f->nodes[0] = (struct node){ .idx = 0, .type = NODE_SOURCE, .unique_id = "source.p.raw.t", .name = "t",
				     .display = "raw.t" };
	f->nodes[1] = (struct node){ .idx = 1, .type = NODE_MODEL, .unique_id = "model.p.a", .name = "a",
				     .mat_name = "view", .schema = "analytics", .identifier = "a" };
	f->nodes[2] = (struct node){ .idx = 2, .type = NODE_MODEL, .unique_id = "model.p.we\"ird<b>", .name = "we\"ird<b>",
				     .mat_name = "table", .schema = "Sales", .identifier = "we\"ird<b>" };
	f->nodes[3] = (struct node){ .idx = 3, .type = NODE_TEST, .unique_id = "test.p.not_null_a_id",
				     .name = "not_null_a_id" };
	f->m.n = 4;
	f->m.nodes = f->nodes;
	f->m.dag = dag_new(&f->arena, 4);
	dag_add_edge(f->m.dag, 0, 1);
	dag_add_edge(f->m.dag, 1, 2);
	dag_add_edge(f->m.dag, 1, 3);
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	arena_release(&((struct fixture *)*state)->arena);
	return 0;
}

static void test_find(void **state)
{
	struct fixture *f = *state;

	assert_ptr_equal(blame_find(&f->m, "a"), &f->nodes[1]);
	assert_ptr_equal(blame_find(&f->m, "model.p.a"), &f->nodes[1]);
	assert_ptr_equal(blame_find(&f->m, "analytics.a"), &f->nodes[1]);
	assert_ptr_equal(blame_find(&f->m, "\"Sales\".\"we\"\"ird<b>\""), &f->nodes[2]);
	assert_null(blame_find(&f->m, "sales.x"));
	/* sources and tests are not built by sluice */
	assert_null(blame_find(&f->m, "source.p.raw.t"));
	assert_null(blame_find(&f->m, "not_null_a_id"));
}

static void test_dot_quote(void **state)
{
	struct buf b = BUF_INIT;

	(void)state;
	graph_dot_quote(&b, "a \"b\" \\c\nd");
	assert_string_equal(b.s, "\"a \\\"b\\\" \\\\c\\nd\"");
	buf_release(&b);
}

static void test_mermaid_label(void **state)
{
	struct buf b = BUF_INIT;

	(void)state;
	graph_mermaid_label(&b, "we\"ird <b> & #1\nx");
	assert_string_equal(b.s, "\"we#quot;ird #lt;b#gt; #amp; #35;1 x\"");
	buf_release(&b);
}

static void test_graph_selection(void **state)
{
	struct fixture *f = *state;
	unsigned char keep[4] = { 0, 1, 1, 0 };
	struct buf b = BUF_INIT;

	graph_write(&b, &f->m, keep, GRAPH_DOT);
	assert_string_equal(b.s, "digraph sluice {\n  rankdir=LR;\n"
				 "  \"model.p.a\" [label=\"a\", shape=box];\n"
				 "  \"model.p.we\\\"ird<b>\" [label=\"we\\\"ird<b>\", shape=box];\n"
				 "  \"model.p.a\" -> \"model.p.we\\\"ird<b>\";\n}\n");
	buf_reset(&b);
	keep[0] = keep[3] = 1;
	graph_write(&b, &f->m, keep, GRAPH_MERMAID);
	assert_string_equal(b.s, "flowchart LR\n  n0[(\"raw.t\")]\n  n1[\"a\"]\n  n2[\"we#quot;ird#lt;b#gt;\"]\n"
				 "  n3{{\"not_null_a_id\"}}\n  n0 --> n1\n  n1 --> n2\n  n1 --> n3\n");
	buf_release(&b);
}

static void test_command_line(void **state)
{
	char *argv[] = { "run", "-s", "orders", "+marts", "--vars", "{password: x}", "--target", "prod",
			 "--vars={k: v}", "--threads=4", "stray", "--full-refresh", "--exclude", "tag:slow" };
	struct buf b = BUF_INIT;

	(void)state;
	identity_command_line(&b, (int)(sizeof(argv) / sizeof(argv[0])), argv);
	assert_string_equal(b.s, "sluice run -s orders +marts --vars <omitted> --target prod --vars=<omitted> "
				 "--threads=4 <omitted> --full-refresh --exclude tag:slow");
	buf_release(&b);
}

static void test_sql_hash(void **state)
{
	char with[HASH_HEX], without[HASH_HEX], plain[HASH_HEX];

	(void)state;
	/* the comment names the run: the same statement hashes alike in every run */
	audit_sql_hash("/* sluice run=1 node=model.p.a user=u */\nselect 1", with);
	audit_sql_hash("/* sluice run=2 node=model.p.a user=v */\nselect 1", without);
	assert_string_equal(with, without);
	hash_hex("select 1", 8, plain);
	assert_string_equal(with, plain);
	audit_sql_hash("select 2", without);
	assert_string_not_equal(with, without);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_relation),
		cmocka_unit_test(test_compare),
		cmocka_unit_test_setup_teardown(test_find, fx_setup, fx_teardown),
		cmocka_unit_test(test_dot_quote),
		cmocka_unit_test(test_mermaid_label),
		cmocka_unit_test_setup_teardown(test_graph_selection, fx_setup, fx_teardown),
		cmocka_unit_test(test_command_line),
		cmocka_unit_test(test_sql_hash),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
