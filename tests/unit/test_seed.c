/*
 * test_seed.c: unit tests for engine/seed.c: reading a seed's CSV (byte
 * order mark, CRLF, quotes, delimiters, malformed rows) and inferring
 * column types as dbt does.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "../../engine/seed.h"

static const char *infer(const char *a, const char *b, const char *c)
{
	const char *v[3] = { a, b, c };

	return seed_infer_type(v, 3);
}

static void test_infer(void **state)
{
	(void)state;
	assert_string_equal(infer("1", "-2", NULL), "integer");
	assert_string_equal(infer("1", "2.5", NULL), "float8");
	assert_string_equal(infer("1e3", "2", "3"), "float8");
	assert_string_equal(infer("1", "3000000000", NULL), "bigint");
	assert_string_equal(infer("2024-01-02", "2024-1-3", NULL), "date");
	assert_string_equal(infer("2024-01-02 10:00:00", "2024-01-02T10:00:00Z", "2024-01-02T10:00:00.5+02:00"),
			    "timestamp without time zone");
	assert_string_equal(infer("2024-01-02", "2024-01-02 10:00:00", NULL), "text");
	assert_string_equal(infer("true", "FALSE", NULL), "boolean");
	/* 1 and 0 are numbers first, as in dbt */
	assert_string_equal(infer("1", "0", NULL), "integer");
	assert_string_equal(infer("02134", "abc", NULL), "text");
	assert_string_equal(infer("1.2.3", NULL, NULL), "text");
	assert_string_equal(infer("2024-13", NULL, NULL), "text");
	/* no value at all: integer, as dbt */
	assert_string_equal(infer(NULL, NULL, NULL), "integer");
}

static void test_parse(void **state)
{
	struct arena a = ARENA_INIT;
	struct sluice_err err = SLUICE_ERR_INIT;
	struct seed_table t;
	struct buf csv = BUF_INIT;
	const char *src = "\xEF\xBB\xBFid;name;n\r\n1;\"a;\"\"b\"\"\r\nc\";NULL\r\n\r\n2;;7\r\n";

	(void)state;
	assert_int_equal(seed_parse(&a, "s.csv", src, strlen(src), ';', NULL, &t, &err), 0);
	assert_int_equal(t.ncols, 3);
	assert_int_equal(t.nrows, 2);
	assert_string_equal(t.names[0], "id");
	assert_string_equal(t.rows[0][1], "a;\"b\"\nc");
	assert_null(t.rows[0][2]);
	assert_null(t.rows[1][1]);
	assert_string_equal(t.types[0], "integer");
	assert_string_equal(t.types[1], "text");
	assert_string_equal(t.types[2], "integer");
	seed_write_csv(&t, &csv);
	assert_string_equal(csv.s, "\"1\",\"a;\"\"b\"\"\nc\",\n\"2\",,\"7\"\n");
	buf_release(&csv);
	arena_release(&a);
}

static void test_column_types_and_names(void **state)
{
	struct arena a = ARENA_INIT;
	struct sluice_err err = SLUICE_ERR_INIT;
	struct seed_table t;
	struct buf b = BUF_INIT;
	struct val types = val_dict_new();
	const char *src = "Zip,Order\n02134,1\n";

	(void)state;
	val_dict_set(&a, &types, "Zip", val_str("varchar(5)"));
	assert_int_equal(seed_parse(&a, "s.csv", src, strlen(src), ',', &types, &t, &err), 0);
	assert_string_equal(t.types[0], "varchar(5)");
	assert_string_equal(t.types[1], "integer");
	seed_column_sql(&t, 0, 0, &b);
	buf_puts(&b, " ");
	seed_column_sql(&t, 1, 1, &b);
	assert_string_equal(b.s, "\"zip\" \"Order\"");
	buf_release(&b);
	arena_release(&a);
}

static void test_errors(void **state)
{
	struct arena a = ARENA_INIT;
	struct sluice_err err = SLUICE_ERR_INIT;
	struct seed_table t;

	(void)state;
	assert_int_not_equal(seed_parse(&a, "s.csv", "a,b\n1,2\n3\n", 10, ',', NULL, &t, &err), 0);
	assert_string_equal(err.msg, "s.csv:3: 1 field, the header has 2");
	assert_int_not_equal(seed_parse(&a, "s.csv", "a\n\"x\n", 5, ',', NULL, &t, &err), 0);
	assert_string_equal(err.msg, "s.csv:2: a quoted field is not closed");
	assert_int_not_equal(seed_parse(&a, "s.csv", "\n\n", 2, ',', NULL, &t, &err), 0);
	assert_string_equal(err.msg, "s.csv: the file is empty (a seed needs a header line)");
	arena_release(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_infer),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_column_types_and_names),
		cmocka_unit_test(test_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
