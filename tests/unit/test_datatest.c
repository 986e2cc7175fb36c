/*
 * test_datatest.c: engine/datatest.c without a database: tests parsed
 * from property YAML and test-paths, their dbt-style names, the places
 * their errors name, thresholds and durations, the DAG edges they add and
 * the SQL each kind runs. Each case writes a small project into a fresh
 * temporary directory and builds its manifest.
 * Running tests against PostgreSQL is tests/cli/t06*.sh.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "../../engine/datatest.h"
#include "../../engine/manifest.h"
#include "../../engine/util/buf.h"
#include "../../engine/util/fs.h"

static char tmp[PATH_MAX];
static char home[PATH_MAX];
static struct project P;
static struct manifest M;
static struct sluice_err E;
static int loaded, built;

static void put(const char *rel, const char *text)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	char path[2 * PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", tmp, rel);
	if (fs_mkdir_parent(path, &err) || fs_write_file(path, text, strlen(text), &err))
		fail_msg("%s", err.msg);
}

/* A project with models a (table), b (view) and c (ephemeral), a source lake.t, and this schema.yml. */
static void project_with(const char *schema_yml)
{
	put("sluice.yml", "name: p\nprofile: p\n");
	put("profiles.yml", "p:\n  target: t\n  outputs:\n    t:\n      type: postgres\n      schema: an\n");
	put("models/a.sql", "{{ config(materialized='table') }}\nselect 1 as id");
	put("models/b.sql", "select * from {{ ref('a') }}");
	put("models/c.sql", "{{ config(materialized='ephemeral') }}\nselect 1 as id");
	put("models/schema.yml", schema_yml);
}

static int build(void)
{
	struct project_opts o = { tmp, NULL, NULL, NULL, NULL, NULL };
	int rc;

	memset(&E, 0, sizeof(E));
	if ((rc = project_load(&P, &o, &E)))
		return rc;
	loaded = 1;
	rc = manifest_build(&M, &P, &E);
	built = 1;
	return rc;
}

static void build_ok(void)
{
	if (build())
		fail_msg("build failed: %s", E.msg);
}

static const char *build_err(void)
{
	if (!build())
		fail_msg("expected an error, the project built");
	return E.msg;
}

static const struct datatest *test_named(const char *name)
{
	size_t i;

	for (i = 0; i < M.n; i++)
		if (M.nodes[i].type == NODE_TEST && !strcmp(M.nodes[i].name, name))
			return M.nodes[i].test;
	fail_msg("no test named %s", name);
	return NULL;
}

static size_t ntests(void)
{
	size_t i, n = 0;

	for (i = 0; i < M.n; i++)
		n += M.nodes[i].type == NODE_TEST;
	return n;
}

static int setup(void **state)
{
	(void)state;
	snprintf(tmp, sizeof(tmp), "/tmp/sluice_datatest_XXXXXX");
	if (!mkdtemp(tmp))
		return -1;
	memset(&P, 0, sizeof(P));
	memset(&M, 0, sizeof(M));
	loaded = built = 0;
	return 0;
}

static int teardown(void **state)
{
	struct sluice_err err = SLUICE_ERR_INIT;

	(void)state;
	if (built)
		manifest_release(&M);
	if (loaded)
		project_release(&P);
	fs_remove_tree(tmp, &err);
	return 0;
}

static int group_setup(void **state)
{
	(void)state;
	snprintf(home, sizeof(home), "/tmp/sluice_home_XXXXXX");
	if (!mkdtemp(home))
		return -1;
	setenv("HOME", home, 1);
	unsetenv("SLUICE_PROFILES_DIR");
	return 0;
}

static int group_teardown(void **state)
{
	struct sluice_err err = SLUICE_ERR_INIT;

	(void)state;
	fs_remove_tree(home, &err);
	return 0;
}

/* ---- names ---- */

static void test_dbt_names(void **state)
{
	(void)state;
	project_with("version: 2\n"
		     "sources:\n"
		     "  - name: lake\n"
		     "    tables:\n"
		     "      - name: t\n"
		     "        columns:\n"
		     "          - name: id\n"
		     "            tests: [not_null]\n"
		     "models:\n"
		     "  - name: b\n"
		     "    columns:\n"
		     "      - name: id\n"
		     "        tests:\n"
		     "          - unique\n"
		     "          - accepted_values: {values: [x, 'y z']}\n"
		     "          - relationships:\n"
		     "              to: ref('a')\n"
		     "              field: id\n"
		     "    data_tests:\n"
		     "      - row_count: {min: 1, max: 5}\n"
		     "      - unique_combination: [id, name]\n"
		     "      - expression: \"id > 0\"\n"
		     "      - fresher_than: {field: ts, within: 24h}\n"
		     "      - equal_row_count:\n"
		     "          to: source('lake', 't')\n"
		     "      - not_null: {column_name: id, name: my_own}\n");
	build_ok();
	assert_int_equal(ntests(), 10);
	assert_string_equal(test_named("source_not_null_lake_t_id")->unique_id, "test.p.source_not_null_lake_t_id");
	test_named("unique_b_id");
	test_named("accepted_values_b_id__x__y_z");
	test_named("relationships_b_id__id__ref_a_");
	test_named("row_count_b_5__1");
	test_named("unique_combination_b_id__name");
	test_named("expression_b_id_0");
	test_named("fresher_than_b_ts__24h");
	test_named("equal_row_count_b_source_lake_t_");
	assert_int_equal(test_named("my_own")->kind, DT_NOT_NULL);
	assert_int_equal(test_named("fresher_than_b_ts__24h")->within_seconds, 86400);
}

static void test_duplicate_names_get_a_suffix_and_long_ones_a_short_form(void **state)
{
	const struct datatest *t;

	(void)state;
	project_with("version: 2\n"
		     "models:\n"
		     "  - name: b\n"
		     "    columns:\n"
		     "      - name: id\n"
		     "        tests:\n"
		     "          - not_null\n"
		     "          - not_null: {severity: warn}\n"
		     "          - accepted_values:\n"
		     "              values: [alpha, beta, gamma, delta, epsilon, zeta, eta, theta, iota]\n");
	build_ok();
	assert_int_equal(test_named("not_null_b_id_2")->warn_only, 1);
	assert_int_equal(test_named("not_null_b_id")->warn_only, 0);
	t = test_named("accepted_values_b_id__alpha__beta__gamma__delta__epsilon__zeta__eta__theta__iota");
	assert_true(strlen(t->short_name) < 64);
	assert_memory_equal(t->short_name, "accepted_values_b", 17);
}

/* ---- config ---- */

static void test_config_thresholds_and_where(void **state)
{
	const struct datatest *t;

	(void)state;
	project_with("version: 2\n"
		     "models:\n"
		     "  - name: b\n"
		     "    columns:\n"
		     "      - name: id\n"
		     "        tests:\n"
		     "          - not_null:\n"
		     "              config:\n"
		     "                severity: warn\n"
		     "                warn_if: \">= 10\"\n"
		     "                error_if: \"<>0\"\n"
		     "                where: \"id > 3\"\n"
		     "                store_failures: true\n"
		     "          - unique: {enabled: false}\n");
	build_ok();
	assert_int_equal(ntests(), 1);
	t = test_named("not_null_b_id");
	assert_int_equal(t->warn_only, 1);
	assert_string_equal(t->warn_if.op, ">=");
	assert_int_equal(t->warn_if.n, 10);
	assert_string_equal(t->error_if.op, "!=");
	assert_false(datatest_threshold_hit(&t->warn_if, 9));
	assert_true(datatest_threshold_hit(&t->warn_if, 10));
	assert_false(datatest_threshold_hit(&t->error_if, 0));
	assert_string_equal(t->where, "id > 3");
	assert_true(t->store_failures);
	/* an audit schema beside the tested model's */
	assert_string_equal(t->node->schema, "an_audit");
	assert_false(datatest_scannable(t));
}

static void test_project_defaults(void **state)
{
	(void)state;
	project_with("version: 2\n"
		     "models:\n"
		     "  - name: b\n"
		     "    columns:\n"
		     "      - name: id\n"
		     "        tests: [not_null, {unique: {severity: error}}]\n");
	put("sluice.yml", "name: p\nprofile: p\ntests:\n  +severity: warn\n  +combine: false\n  +limit: 50\n");
	build_ok();
	assert_int_equal(test_named("not_null_b_id")->warn_only, 1);
	assert_int_equal(test_named("unique_b_id")->warn_only, 0);
	assert_int_equal(datatest_row_limit(test_named("unique_b_id")), 50);
}

/* A within: duration in whole seconds, or -1 when it is not one. */
static long long within_of(const char *text)
{
	double secs;

	return val_parse_duration(text, &secs) ? -1 : llround(secs);
}

static void test_durations(void **state)
{
	(void)state;
	assert_int_equal(within_of("30m"), 1800);
	assert_int_equal(within_of("7d"), 7 * 86400);
	assert_int_equal(within_of("90"), 90);
	assert_int_equal(within_of("1.5h"), 5400);
	assert_int_equal(within_of("2w"), 14 * 86400);
	assert_int_equal(within_of("soon"), -1);
	assert_int_equal(within_of("5 parsecs"), -1);
	assert_int_equal(within_of("-1h"), -1);
}

/* ---- errors name the place ---- */

static void test_errors_name_file_line_col(void **state)
{
	static const struct { const char *yml, *msg; } cases[] = {
		{ "        tests: [not_nul]\n", "models/schema.yml:6:17: unknown test 'not_nul' (did you mean 'not_null'?)" },
		{ "        tests: [frobnicate]\n", "models/schema.yml:6:17: unknown test 'frobnicate' (known: not_null, unique, " },
		{ "        tests:\n          - accepted_values: {valeus: [x]}\n",
		  "models/schema.yml:7:31: unknown argument 'valeus' for accepted_values" },
		{ "        tests:\n          - accepted_values: {quote: false}\n",
		  "models/schema.yml:7:13: accepted_values needs values: [...]" },
		{ "        tests:\n          - not_null: {config: {limit: lots}}\n",
		  "models/schema.yml:7:40: limit must be a whole number of rows" },
		{ "        tests:\n          - relationships: {to: 'a', field: id}\n",
		  "models/schema.yml:7:33: to: must be ref('model') or source('source', 'table')" },
		{ "        tests:\n          - relationships: {to: \"ref('zzz')\", field: id}\n",
		  "models/schema.yml:7:33: unknown model 'zzz' in to:" },
		{ "        tests:\n          - not_null: {severity: fatal}\n",
		  "models/schema.yml:7:34: severity must be warn or error" },
		{ "        tests:\n          - not_null: {warn_if: lots}\n",
		  "models/schema.yml:7:33: warn_if must be a threshold such as \">10\", \">=1\" or \"!=0\"" },
		{ "        tests:\n          - fresher_than: {within: ages}\n",
		  "models/schema.yml:7:36: within must be a duration such as 30m, 24h or 7d" },
		{ "        tests:\n          - not_null: 3\n",
		  "models/schema.yml:7:23: the arguments of not_null must be a map" },
		{ "        tests:\n          - {not_null: {}, unique: {}}\n",
		  "models/schema.yml:7:13: a test is a name, or a map with one key: the test's name (found 2 keys" },
		{ "        tests: not_null\n", "models/schema.yml:6:16: tests must be a list of tests" },
		{ "    tests:\n      - row_count: {}\n", "models/schema.yml:5:9: row_count needs min:, max: or both" },
		{ "    tests:\n      - not_null\n",
		  "models/schema.yml:5:9: not_null is a column test: put it under a column's tests:, or give column_name:" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf y = BUF_INIT;
		const char *msg;
		int column = !strncmp(cases[i].yml, "        ", 8);
		buf_printf(&y, "version: 2\nmodels:\n  - name: b\n%s%s",
			   column ? "    columns:\n      - name: id\n" : "", cases[i].yml);
		project_with(y.s);
		buf_release(&y);
		msg = build_err();
		if (getenv("SHOW"))
			print_message("%zu: %s\n", i, msg);
		else if (strncmp(msg, cases[i].msg, strlen(cases[i].msg)))
			fail_msg("case %zu:\n expected: %s\n      got: %s", i, cases[i].msg, msg);
		if (built)
			manifest_release(&M);
		if (loaded)
			project_release(&P);
		loaded = built = 0;
	}
}

/* A test's failing-rows query, reading what it reads as manifest_read_sql gives it (logical: for fingerprints). */
static void failing_sql(const char *name, int logical, struct buf *out)
{
	const struct datatest *t = test_named(name);
	struct compile_opts o = { .logical = logical };
	struct arena a = ARENA_INIT;
	struct buf tested = BUF_INIT, other = BUF_INIT;
	struct sluice_err err = SLUICE_ERR_INIT;
	struct dt_reads reads;

	if (manifest_read_sql(&M, t->tested, &o, &a, &tested, &err) ||
	    (t->other && manifest_read_sql(&M, t->other, &o, &a, &other, &err)))
		fail_msg("%s", err.msg);
	reads.tested = tested.s;
	reads.other = t->other ? other.s : NULL;
	datatest_failing_sql(t, dialect_find("postgres"), &reads, -1, out);
	buf_release(&tested);
	buf_release(&other);
	arena_release(&a);
}

static void test_ephemeral_models_are_read_as_their_query(void **state)
{
	struct buf b = BUF_INIT;

	(void)state;
	project_with("version: 2\nmodels:\n  - name: c\n    columns:\n      - name: id\n        tests:\n"
		     "          - not_null: {where: \"id > 0\"}\n"
		     "  - name: b\n    columns:\n      - name: id\n        tests:\n"
		     "          - relationships: {to: \"ref('d')\", field: id}\n");
	/* an ephemeral model reading another and a table */
	put("models/d.sql", "{{ config(materialized='ephemeral') }}\nselect id from {{ ref('c') }} join {{ ref('a') }} using (id)");
	build_ok();
	failing_sql("not_null_c_id", 0, &b);
	/* a subquery in FROM has a name: PostgreSQL before 16 and Redshift want one */
	assert_string_equal(b.s, "SELECT * FROM (SELECT * FROM (\n\nselect 1 as id\n) AS sluice_rel WHERE id > 0) AS sluice_rel "
			    "WHERE sluice_rel.\"id\" IS NULL");
	buf_reset(&b);
	failing_sql("relationships_b_id__id__ref_d_", 0, &b);
	assert_string_equal(b.s, "SELECT * FROM \"an\".\"b\" AS sluice_rel WHERE sluice_rel.\"id\" IS NOT NULL AND NOT EXISTS "
			    "(SELECT 1 FROM (\n\nWITH \"__sluice_cte__c\" AS (\n\nselect 1 as id\n)\nselect id from "
			    "\"__sluice_cte__c\" join \"an\".\"a\" using (id)\n) AS sluice_to WHERE sluice_to.\"id\" = "
			    "sluice_rel.\"id\")");
	/* for fingerprints: the ephemeral models' code, relations named logically */
	buf_reset(&b);
	failing_sql("relationships_b_id__id__ref_d_", 1, &b);
	assert_non_null(strstr(b.s, "FROM ref('b') AS sluice_rel"));
	assert_non_null(strstr(b.s, "select id from \"__sluice_cte__c\" join ref('a') using (id)"));
	buf_release(&b);
}

static void test_limit(void **state)
{
	(void)state;
	project_with("version: 2\nmodels:\n  - name: b\n    columns:\n      - name: id\n        tests:\n"
		     "          - not_null: {config: {limit: 3}}\n"
		     "          - unique: {limit: \"7\"}\n"
		     "          - expression: {expression: \"> 0\", config: {limit: null}}\n"
		     "    tests:\n"
		     "      - row_count: {min: 1, limit: 2}\n");
	build_ok();
	assert_int_equal(datatest_row_limit(test_named("not_null_b_id")), 3);
	assert_int_equal(datatest_row_limit(test_named("unique_b_id")), 7);
	/* null is dbt's default: no limit */
	assert_int_equal(datatest_row_limit(test_named("expression_b_id___0")), -1);
	/* an aggregate test's count is not of rows */
	assert_int_equal(test_named("row_count_b_1")->limit, 2);
	assert_int_equal(datatest_row_limit(test_named("row_count_b_1")), -1);
}

static void test_null_in_accepted_values(void **state)
{
	struct buf b = BUF_INIT;

	(void)state;
	project_with("version: 2\nmodels:\n  - name: b\n    columns:\n      - name: id\n        tests:\n"
		     "          - accepted_values: {values: [x, null]}\n"
		     "          - accepted_values: {values: [~], quote: false}\n");
	build_ok();
	/* named None as dbt names it, left out of NOT IN (where it would accept every row) */
	failing_sql("accepted_values_b_id__x__None", 0, &b);
	assert_string_equal(b.s, "SELECT * FROM \"an\".\"b\" AS sluice_rel WHERE sluice_rel.\"id\" NOT IN ('x')");
	buf_reset(&b);
	failing_sql("accepted_values_b_id__False__None", 0, &b);
	assert_string_equal(b.s, "SELECT * FROM \"an\".\"b\" AS sluice_rel WHERE sluice_rel.\"id\" IS NOT NULL");
	buf_release(&b);
}

/* ---- singular tests and edges ---- */

static void test_singular_and_edges(void **state)
{
	const struct datatest *t;
	const struct dag *d;
	size_t i;

	(void)state;
	project_with("version: 2\nmodels:\n  - name: b\n    columns:\n      - name: id\n        tests:\n"
		     "          - relationships: {to: \"ref('a')\", field: id}\n");
	put("tests/no_negatives.sql", "{{ config(severity='warn', store_failures=true) }}\n"
	    "select * from {{ ref('b') }} join {{ ref('a') }} using (id) where id < 0");
	build_ok();
	t = test_named("no_negatives");
	assert_int_equal(t->kind, DT_SINGULAR);
	assert_int_equal(t->warn_only, 1);
	assert_string_equal(t->node->schema, "an_audit");
	d = M.dag;
	assert_int_equal(d->nparents[t->node->idx], 2);
	t = test_named("relationships_b_id__id__ref_a_");
	assert_int_equal(d->nparents[t->node->idx], 2);
	for (i = 0; i < d->nparents[t->node->idx]; i++)
		assert_int_equal(M.nodes[d->parents[t->node->idx][i]].type, NODE_MODEL);
	assert_string_equal(t->node->connection, "default");
}

static void test_disabled_model_takes_its_tests(void **state)
{
	(void)state;
	project_with("version: 2\nmodels:\n  - name: b\n    config: {enabled: false}\n    columns:\n"
		     "      - name: id\n        tests: [not_null]\n");
	build_ok();
	assert_int_equal(ntests(), 0);
}

/* ---- SQL ---- */

static void test_sql(void **state)
{
	const struct dialect *d = dialect_find("postgres");
	struct buf b = BUF_INIT;

	(void)state;
	project_with("version: 2\n"
		     "models:\n"
		     "  - name: b\n"
		     "    columns:\n"
		     "      - name: id\n"
		     "        tests:\n"
		     "          - accepted_values: {values: [x, \"it's\"]}\n"
		     "          - relationships: {to: \"ref('a')\", field: id}\n"
		     "          - expression: \">= 0\"\n"
		     "      - name: lower(email)\n"
		     "        tests: [unique]\n"
		     "    tests:\n"
		     "      - row_count: {min: 2}\n"
		     "      - not_null: {column_name: id, where: \"id > 1\"}\n");
	build_ok();
	failing_sql("accepted_values_b_id__x__it_s", 0, &b);
	assert_string_equal(b.s, "SELECT * FROM \"an\".\"b\" AS sluice_rel WHERE sluice_rel.\"id\" NOT IN ('x', 'it''s')");
	buf_reset(&b);
	failing_sql("relationships_b_id__id__ref_a_", 0, &b);
	assert_string_equal(b.s, "SELECT * FROM \"an\".\"b\" AS sluice_rel WHERE sluice_rel.\"id\" IS NOT NULL AND NOT EXISTS "
			    "(SELECT 1 FROM \"an\".\"a\" AS sluice_to WHERE sluice_to.\"id\" = sluice_rel.\"id\")");
	buf_reset(&b);
	failing_sql("unique_b_lower_email_", 0, &b);
	assert_string_equal(b.s, "SELECT lower(email), count(*) AS n_records FROM \"an\".\"b\" AS sluice_rel WHERE "
			    "lower(email) IS NOT NULL GROUP BY lower(email) HAVING count(*) > 1");
	buf_reset(&b);
	failing_sql("not_null_b_id", 0, &b);
	assert_string_equal(b.s, "SELECT * FROM (SELECT * FROM \"an\".\"b\" WHERE id > 1) AS sluice_rel WHERE sluice_rel.\"id\" IS NULL");
	assert_false(datatest_scannable(test_named("not_null_b_id")));
	buf_reset(&b);
	datatest_scan_items(test_named("expression_b_id___0"), d, "t3", &b);
	assert_string_equal(b.s, "count(*) FILTER (WHERE NOT (sluice_rel.\"id\" >= 0)) AS t3_0");
	buf_reset(&b);
	assert_int_equal(datatest_scan_filter(test_named("row_count_b_2"), d, &b), 0);
	datatest_scan_items(test_named("row_count_b_2"), d, "t0", &b);
	assert_string_equal(b.s, "count(*) AS t0_0");
	buf_release(&b);
}

static void test_aggregate_eval(void **state)
{
	const char *vals[2];
	long long failures;
	json_t *sample;
	struct buf detail = BUF_INIT;
	struct sluice_err err = SLUICE_ERR_INIT;
	const struct datatest *t;

	(void)state;
	project_with("version: 2\nmodels:\n  - name: b\n    tests:\n      - row_count: {min: 10, max: 20}\n"
		     "      - row_count_delta: {max_pct: 10}\n");
	build_ok();
	t = test_named("row_count_b_20__10");
	vals[0] = "7";
	assert_int_equal(datatest_eval_aggregate(t, vals, -1, &failures, &sample, &detail, &err), 0);
	assert_int_equal(failures, 3);
	assert_string_equal(detail.s, "7 rows, 3 fewer than min 10");
	assert_int_equal(json_integer_value(json_object_get(sample, "row_count")), 7);
	json_decref(sample);
	vals[0] = "15";
	buf_reset(&detail);
	assert_int_equal(datatest_eval_aggregate(t, vals, -1, &failures, &sample, &detail, &err), 0);
	assert_int_equal(failures, 0);
	assert_null(sample);
	t = test_named("row_count_delta_b_10");
	vals[0] = "105";
	assert_int_equal(datatest_eval_aggregate(t, vals, 100, &failures, &sample, &detail, &err), 0);
	assert_int_equal(failures, 0);
	vals[0] = "150";
	assert_int_equal(datatest_eval_aggregate(t, vals, 100, &failures, &sample, &detail, &err), 0);
	assert_int_equal(failures, 50);
	json_decref(sample);
	vals[0] = "150";
	assert_int_equal(datatest_eval_aggregate(t, vals, -1, &failures, &sample, &detail, &err), 0);
	assert_int_equal(failures, 0);   /* no baseline yet */
	vals[0] = "lots";
	assert_int_equal(datatest_eval_aggregate(t, vals, 100, &failures, &sample, &detail, &err), SLUICE_EDB);
	buf_release(&detail);
}

/*
 * In a dbt project (dbt_project.yml) a generic test's unique_id ends in
 * dbt's hash, and a long name's short form is dbt's alias. The expected
 * ids are those dbt gives the same tests in dbt-labs/jaffle_shop.
 */
static void test_dbt_unique_ids(void **state)
{
	const struct datatest *t;
	size_t i;

	(void)state;
	put("dbt_project.yml", "name: jaffle_shop\nprofile: p\n");
	put("profiles.yml", "p:\n  target: t\n  outputs:\n    t:\n      type: postgres\n      schema: an\n");
	put("models/customers.sql", "select 1 as customer_id");
	put("models/orders.sql", "select 1 as order_id, 1 as customer_id, 'placed' as status");
	put("models/schema.yml", "version: 2\n"
	    "models:\n"
	    "  - name: customers\n"
	    "    columns:\n"
	    "      - name: customer_id\n"
	    "        tests: [unique, not_null]\n"
	    "  - name: orders\n"
	    "    columns:\n"
	    "      - name: order_id\n"
	    "        data_tests: [unique]\n"
	    "      - name: status\n"
	    "        tests:\n"
	    "          - accepted_values:\n"
	    "              values: ['placed', 'shipped', 'completed', 'return_pending', 'returned']\n"
	    "      - name: customer_id\n"
	    "        data_tests:\n"
	    "          - relationships:\n"
	    "              arguments:\n"
	    "                to: ref('customers')\n"
	    "                field: customer_id\n"
	    "              config: {severity: warn}\n");
	build_ok();
	assert_string_equal(test_named("unique_customers_customer_id")->unique_id,
			    "test.jaffle_shop.unique_customers_customer_id.c5af1ff4b1");
	assert_string_equal(test_named("not_null_customers_customer_id")->unique_id,
			    "test.jaffle_shop.not_null_customers_customer_id.5c9bf9911d");
	assert_string_equal(test_named("unique_orders_order_id")->unique_id,
			    "test.jaffle_shop.unique_orders_order_id.fed79b3a6e");
	/* the 1.10 arguments: form hashes as the flat form does; config stays out */
	assert_string_equal(test_named("relationships_orders_customer_id__customer_id__ref_customers_")->unique_id,
			    "test.jaffle_shop.relationships_orders_customer_id__customer_id__ref_customers_.c6ec7f58f2");
	t = test_named("accepted_values_orders_status__placed__shipped__completed__return_pending__returned");
	assert_string_equal(t->unique_id, "test.jaffle_shop.accepted_values_orders_status__placed__shipped__completed"
			    "__return_pending__returned.be6b5b5ec3");
	assert_string_equal(t->short_name, "accepted_values_orders_1ce6ab157c285f7cd2ac656013faf758");
	for (i = 0; i < M.n; i++)
		if (M.nodes[i].type == NODE_TEST)
			assert_string_equal(M.nodes[i].unique_id, M.nodes[i].test->unique_id);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_dbt_names),
		T(test_dbt_unique_ids),
		T(test_duplicate_names_get_a_suffix_and_long_ones_a_short_form),
		T(test_config_thresholds_and_where),
		T(test_project_defaults),
		T(test_durations),
		T(test_errors_name_file_line_col),
		T(test_ephemeral_models_are_read_as_their_query),
		T(test_null_in_accepted_values),
		T(test_limit),
		T(test_singular_and_edges),
		T(test_disabled_model_takes_its_tests),
		T(test_sql),
		T(test_aggregate_eval),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
