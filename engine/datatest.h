/*
 * datatest.h: data tests as definitions and SQL. Generic tests come from
 * property YAML (`tests:` / `data_tests:` on a model, a source table or
 * one of their columns), singular tests from .sql files under test-paths.
 * This module parses them with their file:line, names them as dbt does,
 * turns them into manifest nodes with edges from what they read, and
 * writes the SQL each one runs: its failing-rows query and, for the tests
 * that can share one pass over a table, the aggregates a combined scan
 * selects.
 *
 * Not here: connections, state, deciding what runs, printing. Running
 * tests is kind-datatest.c; docs/data-tests.md is the user's view.
 */
#ifndef SLUICE_DATATEST_H
#define SLUICE_DATATEST_H

#include <stddef.h>
#include <jansson.h>
#include "dialect.h"
#include "manifest.h"
#include "project.h"
#include "util/buf.h"
#include "util/err.h"

enum datatest_kind {
	DT_NOT_NULL,
	DT_UNIQUE,
	DT_ACCEPTED_VALUES,
	DT_RELATIONSHIPS,
	DT_ROW_COUNT,
	DT_EQUAL_ROW_COUNT,
	DT_ROW_COUNT_DELTA,
	DT_EXPRESSION,
	DT_FRESHER_THAN,
	DT_UNIQUE_COMBINATION,
	DT_SINGULAR,
	DT__COUNT
};

/* A threshold as dbt writes it: "!=0", ">10", ">=1", "=0", "<5". */
struct dt_threshold {
	char op[3];                 /* ">", ">=", "<", "<=", "=", "!=" */
	long long n;
	const char *text;           /* as written, for messages */
};

/* A place in a file, for messages. */
struct dt_place {
	const char *path;
	int line, col;
};

struct datatest {
	enum datatest_kind kind;
	const char *kind_name;      /* "not_null", ..., "singular" */
	const char *name;           /* dbt-style, unique in the project */
	const char *unique_id;      /* test.<project>.<name> */
	const char *short_name;     /* name, or its first 30 bytes and a hash: fits an identifier */
	struct dt_place at;         /* the test's entry (or its .sql file) */

	/* What a generic test reads: exactly one of model / source. */
	struct model *model;
	struct source_table *source;
	const char *column;         /* column tests, else NULL */
	struct dt_place column_at;
	int quote_column;           /* column `quote: true` */
	/* relationships, equal_row_count: `to:` */
	const char *to_model, *to_source, *to_table;
	struct dt_place to_at;
	const char *field;          /* relationships: column of `to`; fresher_than: the timestamp */
	const char **values;        /* accepted_values; NULL for a null in the list, which accepts nothing more */
	size_t nvalues;
	int quote_values;
	const char **columns;       /* unique_combination */
	size_t ncolumns;
	int has_min, has_max;       /* row_count */
	long long min, max;
	double max_pct;             /* row_count_delta */
	const char *expression;     /* expression (column tests: appended to the column) */
	long long within_seconds;   /* fresher_than */
	const char *within;

	/* Config: the entry's keys, its `config:`, sluice.yml `tests:`, in-file config() for singular tests. */
	int warn_only;              /* severity: warn */
	struct dt_threshold warn_if, error_if;
	int store_failures;
	const char *where;          /* filter on the tested relation, or NULL */
	long long limit;            /* the most failing rows counted, kept and shown; -1: no limit */
	struct val config;          /* the effective config, for manifest.json */
	const char **tags;
	size_t ntags;
	/* Everything above that defines the test, canonically: what its fingerprint hashes. */
	const char *definition;

	struct test_file *file;     /* singular tests */

	/* Filled by datatest_link. */
	struct node *node;
	struct node *tested;        /* generic tests: the model or source node; singular: NULL */
	struct node *other;         /* the `to:` node */
};

struct datatest_list {
	struct datatest **v;
	size_t n;
};

/*
 * Parse every test of the project (property YAML of models and sources,
 * and p->test_files) into list, in the project arena. Errors name the
 * file, line and column: bad shapes, unknown test names (with a
 * suggestion), bad thresholds or durations, unknown models in `to:`.
 */
int datatest_parse(struct project *p, const struct macro_set *macros, struct datatest_list *list,
		   struct sluice_err *err);

/* sluice.yml `tests:` (or `data_tests:`): project-wide test settings, or NULL. */
const struct val *datatest_settings(const struct project *p);

/*
 * Append a NODE_TEST to m->nodes (room for list->n more was allocated)
 * for each enabled test of an enabled model or source, and parse the
 * singular tests' templates. Call before the DAG is made.
 */
int datatest_add_nodes(struct manifest *m, const struct datatest_list *list, struct sluice_err *err);

/*
 * After the models' relations and edges are known: give each test its
 * connection, relation and audit schema, add the edges from what it reads
 * and check that it can run (one connection for a join).
 */
int datatest_link(struct manifest *m, struct sluice_err *err);

/* ---- SQL ---- */

/*
 * Whether t's failures can come from aggregates over one pass of its
 * relation, shared with other such tests of the same relation: not_null,
 * accepted_values, expression, row_count, row_count_delta, fresher_than,
 * without `where` and store_failures.
 */
int datatest_scannable(const struct datatest *t);

/* Whether it is an aggregate test (row_count, row_count_delta, fresher_than): one row of values, not failing rows. */
int datatest_aggregate(const struct datatest *t);

/* How many values a scannable test adds to a scan's row. */
size_t datatest_scan_width(const struct datatest *t);

/*
 * Append t's select items to a scan over its relation, aliased
 * "<prefix>_0", "<prefix>_1": comma-separated, no leading comma.
 */
void datatest_scan_items(const struct datatest *t, const struct dialect *d, const char *prefix,
			 struct buf *out);

/*
 * The condition every row a scannable row test counts meets, in
 * parentheses, appended to out; 0 (nothing appended) for aggregate tests,
 * which need every row. A scan whose tests all have one may skip the
 * other rows: WHERE c1 OR c2 ... changes no count.
 */
int datatest_scan_filter(const struct datatest *t, const struct dialect *d, struct buf *out);

/*
 * What a generic test reads, as text a FROM clause takes: the tested
 * node's and the `to:` node's (or NULL). A relation's quoted name, or an
 * ephemeral model's query in parentheses (manifest_read_sql).
 */
struct dt_reads {
	const char *tested, *other;
};

/* What rel (a dt_reads member) gives t's query, `where` applied: rel itself or "(SELECT ...)". */
void datatest_from(const struct datatest *t, const char *rel, struct buf *out);

/*
 * A generic test's failing-rows query (every kind but singular, whose SQL
 * is its rendered template): the rows store_failures keeps and samples
 * show, before `limit`. baseline: row_count_delta's previous count, or -1
 * for none.
 */
void datatest_failing_sql(const struct datatest *t, const struct dialect *d, const struct dt_reads *reads,
			  long long baseline, struct buf *out);

/*
 * The most failing rows t counts, keeps and shows (config `limit`, as
 * dbt's: the failures are counted over at most that many rows), or -1
 * when there is no limit or t is an aggregate test, whose count is not of
 * rows.
 */
long long datatest_row_limit(const struct datatest *t);

/*
 * An aggregate test's failures from its scan values (datatest_scan_width
 * of them, NULL for SQL NULL): fills *failures and, when it fails, a
 * sample row (*sample, a new JSON object; else NULL) and a one-line
 * explanation appended to detail. baseline as above. Returns 0, or
 * SLUICE_EDB when a value is not what the SQL promised.
 */
int datatest_eval_aggregate(const struct datatest *t, const char *const *vals, long long baseline,
			    long long *failures, json_t **sample, struct buf *detail, struct sluice_err *err);

/* Whether failures crosses threshold th. */
int datatest_threshold_hit(const struct dt_threshold *th, long long failures);


#endif
