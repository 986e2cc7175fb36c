/*
 * test_yaml.c: engine/yaml.c: the node tree (positions, anchors, merge
 * keys), YAML 1.2 core typing in yaml_to_val, and the error messages a user
 * sees for broken YAML. Not for what the keys mean: see test_project.c.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "../../engine/yaml.h"
#include "../../engine/util/buf.h"

static struct arena A;

static int teardown(void **state)
{
	(void)state;
	arena_release(&A);
	return 0;
}

static struct ynode *parse_ok(const char *src)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct ynode *root = NULL;
	int rc = yaml_load_str(&A, "t.yml", src, strlen(src), &root, NULL, &err);

	if (rc)
		fail_msg("unexpected error: %s", err.msg);
	return root;
}

/* The error message for src, or "" if it parsed. */
static const char *parse_err(const char *src)
{
	static struct sluice_err err;
	struct ynode *root;

	memset(&err, 0, sizeof(err));
	if (!yaml_load_str(&A, "t.yml", src, strlen(src), &root, NULL, &err))
		return "";
	assert_int_equal(err.code, SLUICE_EUSAGE);
	return err.msg;
}

static struct val scalar_val(const char *src)
{
	struct ynode *root = parse_ok(src);

	assert_non_null(root);
	assert_int_equal(root->kind, Y_SCALAR);
	return yaml_to_val(&A, root);
}

static void assert_str_val(struct val v, const char *s)
{
	assert_int_equal(v.kind, V_STR);
	assert_string_equal(v.u.str.s, s);
}

static void assert_num_val(struct val v, double n)
{
	assert_int_equal(v.kind, V_NUM);
	assert_true(v.u.num == n);
}

static void test_core_schema_typing(void **state)
{
	(void)state;
	assert_int_equal(scalar_val("null").kind, V_NONE);
	assert_int_equal(scalar_val("Null").kind, V_NONE);
	assert_int_equal(scalar_val("NULL").kind, V_NONE);
	assert_int_equal(scalar_val("~").kind, V_NONE);
	assert_int_equal(yaml_to_val(&A, ymap_get(parse_ok("a:\n"), "a")).kind, V_NONE);

	assert_int_equal(scalar_val("true").kind, V_BOOL);
	assert_true(scalar_val("True").u.b);
	assert_true(scalar_val("TRUE").u.b);
	assert_int_equal(scalar_val("false").kind, V_BOOL);
	assert_false(scalar_val("False").u.b);
	assert_false(scalar_val("FALSE").u.b);
	/* YAML 1.2: yes/no/on and odd casings are text */
	assert_str_val(scalar_val("yes"), "yes");
	assert_str_val(scalar_val("no"), "no");
	assert_str_val(scalar_val("on"), "on");
	assert_str_val(scalar_val("tRUE"), "tRUE");

	assert_num_val(scalar_val("42"), 42);
	assert_num_val(scalar_val("-7"), -7);
	assert_num_val(scalar_val("+3"), 3);
	assert_num_val(scalar_val("0x1F"), 31);
	assert_num_val(scalar_val("0o17"), 15);
	assert_num_val(scalar_val("1.5"), 1.5);
	assert_num_val(scalar_val(".5"), 0.5);
	assert_num_val(scalar_val("2."), 2);
	assert_num_val(scalar_val("1e3"), 1000);
	assert_num_val(scalar_val("-2.5E-1"), -0.25);
	assert_true(isinf(scalar_val(".inf").u.num) && scalar_val(".inf").u.num > 0);
	assert_true(isinf(scalar_val("-.Inf").u.num) && scalar_val("-.Inf").u.num < 0);
	assert_true(isnan(scalar_val(".nan").u.num));
	assert_str_val(scalar_val("1.2.3"), "1.2.3");
	assert_str_val(scalar_val("1e"), "1e");
	assert_str_val(scalar_val("0x"), "0x");
	assert_str_val(scalar_val("0o9"), "0o9");
	assert_str_val(scalar_val("1_000"), "1_000");
	assert_str_val(scalar_val("."), ".");
	assert_str_val(scalar_val("2020-01-01"), "2020-01-01");
}

static void test_quoted_scalars_stay_strings(void **state)
{
	(void)state;
	assert_str_val(scalar_val("'42'"), "42");
	assert_str_val(scalar_val("\"true\""), "true");
	assert_str_val(scalar_val("''"), "");
	assert_str_val(scalar_val("'null'"), "null");
	assert_str_val(scalar_val("!!str 5"), "5");
	assert_str_val(scalar_val("|\n  5\n"), "5\n");
	assert_false(parse_ok("'x'")->plain);
	assert_true(parse_ok("x")->plain);
}

static void test_escapes_and_embedded_nul(void **state)
{
	struct ynode *n;
	struct val v;

	(void)state;
	n = parse_ok("\"a\\0b\\tc\"");
	assert_int_equal(n->len, 5);
	v = yaml_to_val(&A, n);
	assert_int_equal(v.u.str.len, 5);
	assert_memory_equal(v.u.str.s, "a\0b\tc", 5);
}

static void test_positions(void **state)
{
	struct ynode *root, *m, *list;

	(void)state;
	root = parse_ok("# comment\nname: demo\nnested:\n  key: 'v'\n  list:\n    - one\n    - {a: 1}\n");
	assert_int_equal(root->kind, Y_MAP);
	assert_int_equal(root->n, 2);
	assert_int_equal(root->line, 2);
	assert_int_equal(root->col, 1);
	assert_string_equal(root->path, "t.yml");
	assert_int_equal(root->items[0]->line, 2);      /* key "name" */
	assert_int_equal(ymap_get(root, "name")->line, 2);
	assert_int_equal(ymap_get(root, "name")->col, 7);
	m = ymap_get(root, "nested");
	assert_int_equal(m->line, 4);
	assert_int_equal(m->col, 3);
	assert_int_equal(ymap_get(m, "key")->col, 8);
	list = ymap_get(m, "list");
	assert_int_equal(list->kind, Y_SEQ);
	assert_int_equal(list->n, 2);
	assert_int_equal(list->items[0]->line, 6);
	assert_int_equal(list->items[0]->col, 7);
	assert_int_equal(list->items[1]->kind, Y_MAP);
	assert_int_equal(list->items[1]->line, 7);
	assert_int_equal(list->items[1]->col, 7);
	assert_null(ymap_get(root, "missing"));
	assert_null(ymap_get(list, "x"));
	assert_null(ymap_get(NULL, "x"));
}

static void test_to_val_keeps_order_and_nesting(void **state)
{
	struct val v;
	const struct val *l;

	(void)state;
	v = yaml_to_val(&A, parse_ok("{\"z\": [1, \"x\", null, {\"k\": false}], \"a\": {\"b\": \"c\"}}"));
	assert_int_equal(v.kind, V_DICT);
	assert_int_equal(v.u.dict.n, 2);
	assert_string_equal(v.u.dict.keys[0], "z");
	assert_string_equal(v.u.dict.keys[1], "a");
	l = val_get(&v, "z");
	assert_int_equal(l->kind, V_LIST);
	assert_int_equal(l->u.list.n, 4);
	assert_num_val(l->u.list.items[0], 1);
	assert_str_val(l->u.list.items[1], "x");
	assert_int_equal(l->u.list.items[2].kind, V_NONE);
	assert_int_equal(val_get(&l->u.list.items[3], "k")->kind, V_BOOL);
	assert_string_equal(val_get_str(val_get(&v, "a"), "b", NULL), "c");
	assert_int_equal(yaml_to_val(&A, NULL).kind, V_NONE);
}

static void test_anchors_share_nodes(void **state)
{
	struct ynode *root;

	(void)state;
	root = parse_ok("base: &b {x: 1}\nname: &n hello\nuse: *b\nagain: *n\nlist: [*b, *n]\n");
	assert_ptr_equal(ymap_get(root, "use"), ymap_get(root, "base"));
	assert_ptr_equal(ymap_get(root, "again"), ymap_get(root, "name"));
	assert_ptr_equal(ymap_get(root, "list")->items[0], ymap_get(root, "base"));
	assert_string_equal(parse_err("a: *nope\n"), "t.yml:1:4: unknown anchor 'nope'");
	/* a node cannot contain itself */
	assert_string_equal(parse_err("a: &x [1, *x]\n"), "t.yml:1:11: unknown anchor 'x'");
}

static void test_merge_keys(void **state)
{
	struct val v;

	(void)state;
	v = yaml_to_val(&A, parse_ok("defaults: &d {type: postgres, port: 5432}\n"
				     "extra: &e {port: 1, sslmode: require}\n"
				     "dev:\n  <<: [*d, *e]\n  port: 6543\n  host: h\n"));
	v = *val_get(&v, "dev");
	assert_int_equal(v.u.dict.n, 4);
	assert_string_equal(val_get_str(&v, "type", NULL), "postgres");
	assert_num_val(*val_get(&v, "port"), 6543);              /* explicit wins */
	assert_string_equal(val_get_str(&v, "sslmode", NULL), "require");
	assert_string_equal(val_get_str(&v, "host", NULL), "h");
	assert_null(val_get(&v, "<<"));
	assert_string_equal(parse_err("a:\n  <<: 5\n"), "t.yml:2:7: '<<' needs a map or a list of maps");
	/* a quoted "<<" is an ordinary key */
	v = yaml_to_val(&A, parse_ok("\"<<\": 1\n"));
	assert_num_val(*val_get(&v, "<<"), 1);
}

/* src parses; its one warning is want, and the map's value at key is the last one given. */
static struct val parse_warns(const char *src, const char *want)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct err_list warnings = { { NULL }, 0, 0 };
	struct ynode *root = NULL;
	struct val v;

	if (yaml_load_str(&A, "t.yml", src, strlen(src), &root, &warnings, &err))
		fail_msg("unexpected error: %s", err.msg);
	assert_int_equal(warnings.total, 1);
	assert_string_equal(warnings.msg[0], want);
	err_list_release(&warnings);
	v = yaml_to_val(&A, root);
	return v;
}

static void test_duplicate_keys(void **state)
{
	struct buf big = BUF_INIT;
	struct val v;
	int i;

	(void)state;
	/* the last value wins, in the first key's place, as PyYAML (so dbt) reads it */
	v = parse_warns("a: 1\nb: 2\na: 3\n", "t.yml:3:1: duplicate key 'a' (first at line 1): the last value is used");
	assert_num_val(*val_get(&v, "a"), 3);
	assert_int_equal(v.u.dict.n, 2);
	assert_string_equal(v.u.dict.keys[0], "a");
	v = parse_warns("outer:\n  x: 1\n  x: 2\n", "t.yml:3:3: duplicate key 'x' (first at line 2): the last value is used");
	assert_num_val(*val_get(val_get(&v, "outer"), "x"), 2);
	v = parse_warns("m: {k: 1, k: 2}\n", "t.yml:1:11: duplicate key 'k' (first at line 1): the last value is used");
	assert_num_val(*val_get(val_get(&v, "m"), "k"), 2);
	/* big maps take another path */
	for (i = 0; i < 100; i++)
		buf_printf(&big, "k%d: %d\n", i, i);
	buf_puts(&big, "k42: again\n");
	v = parse_warns(big.s, "t.yml:101:1: duplicate key 'k42' (first at line 43): the last value is used");
	assert_str_val(*val_get(&v, "k42"), "again");
	assert_int_equal(v.u.dict.n, 100);
	buf_release(&big);
	/* without a list, the warning is not kept and the value is the same */
	assert_string_equal(parse_err("a: 1\na: 2\n"), "");
	/* same text under different parents is fine */
	assert_string_equal(parse_err("a: {x: 1}\nb: {x: 2}\n"), "");
}

static void test_syntax_errors_have_positions(void **state)
{
	(void)state;
	assert_string_equal(parse_err("a: [1, 2\nb: 3\n"),
			    "t.yml:2:2: did not find expected ',' or ']' (while parsing a flow sequence at line 1)");
	assert_string_equal(parse_err("a: 1\n b: 2\n"),
			    "t.yml:2:3: mapping values are not allowed in this context");
	assert_string_equal(parse_err("a:\n\t- 1\n"),
			    "t.yml:2:1: found character that cannot start any token: a tab (YAML indents with spaces)");
	assert_string_equal(parse_err("k: 'open\n"),
			    "t.yml:2:1: found unexpected end of stream (while scanning a quoted scalar at line 1)");
	assert_string_equal(parse_err("ok: 1\nbad: \"\xff\"\n"),
			    "t.yml:2:7: invalid leading UTF-8 octet");
	assert_string_equal(parse_err("[a, b]: 1\n"), "t.yml:1:1: only plain text keys are supported in a map");
}

/* found by fuzz_project: a setting of 4e105 as an integer was a conversion out of range */
static void test_huge_numbers_clamp(void **state)
{
	struct val v = yaml_to_val(&A, parse_ok("port: 4e105\nthreads: -4e105\nn: 42\n"));

	(void)state;
	assert_true(val_get_int(&v, "port", 0) == 1000000000000000000LL);
	assert_true(val_get_int(&v, "threads", 0) == -1000000000000000000LL);
	assert_int_equal(val_get_int(&v, "n", 0), 42);
}

static void test_empty_documents(void **state)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct ynode *root = (struct ynode *)&err;

	(void)state;
	assert_int_equal(yaml_load_str(&A, "t.yml", "", 0, &root, NULL, &err), 0);
	assert_null(root);
	assert_null(parse_ok("# only a comment\n"));
	assert_null(parse_ok("---\n"));
	assert_non_null(parse_ok("''"));
}

static void test_only_first_document(void **state)
{
	struct ynode *root;

	(void)state;
	root = parse_ok("a: 1\n---\nb: [unclosed\n");
	assert_int_equal(root->n, 1);
	assert_non_null(ymap_get(root, "a"));
}

static void test_load_file(void **state)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct ynode *root;
	char path[] = "/tmp/test_yaml_XXXXXX";
	FILE *f;
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fputs("x: 1\ny: [\n", f);
	fclose(f);
	assert_int_equal(yaml_load_file(&A, path, &root, NULL, &err), SLUICE_EUSAGE);
	assert_true(strncmp(err.msg, path, strlen(path)) == 0);
	assert_string_equal(err.msg + strlen(path), ":3:1: did not find expected node content (while parsing a flow node)");
	remove(path);
	assert_int_equal(yaml_load_file(&A, path, &root, NULL, &err), SLUICE_EIO);
	assert_non_null(strstr(err.msg, "No such file"));
}

static void test_yaml_error_format(void **state)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct ynode *root = parse_ok("a:\n  b: 7\n");

	(void)state;
	assert_int_equal(yaml_error(&err, ymap_get(ymap_get(root, "a"), "b"), "bad %s", "value"), SLUICE_EUSAGE);
	assert_string_equal(err.msg, "t.yml:2:6: bad value");
	assert_int_equal(err.code, SLUICE_EUSAGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_core_schema_typing, teardown),
		cmocka_unit_test_teardown(test_quoted_scalars_stay_strings, teardown),
		cmocka_unit_test_teardown(test_escapes_and_embedded_nul, teardown),
		cmocka_unit_test_teardown(test_positions, teardown),
		cmocka_unit_test_teardown(test_to_val_keeps_order_and_nesting, teardown),
		cmocka_unit_test_teardown(test_anchors_share_nodes, teardown),
		cmocka_unit_test_teardown(test_merge_keys, teardown),
		cmocka_unit_test_teardown(test_duplicate_keys, teardown),
		cmocka_unit_test_teardown(test_syntax_errors_have_positions, teardown),
		cmocka_unit_test_teardown(test_empty_documents, teardown),
		cmocka_unit_test_teardown(test_only_first_document, teardown),
		cmocka_unit_test_teardown(test_load_file, teardown),
		cmocka_unit_test_teardown(test_yaml_error_format, teardown),
		cmocka_unit_test_teardown(test_huge_numbers_clamp, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
