/*
 * test_dag.c: unit tests for engine/dag.c: edge deduplication, cycle
 * reports, topological order, critical-path priorities, dbt selection and
 * "did you mean" suggestions. Graphs are built in memory; no project
 * loading, no database.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "../../engine/dag.h"
#include "../../engine/util/xalloc.h"

/* ---- helpers ---- */

static struct dag *chain_of(struct arena *a, size_t n)
{
	struct dag *d = dag_new(a, n);
	size_t i;

	for (i = 0; i + 1 < n; i++)
		dag_add_edge(d, i, i + 1);
	return d;
}

static int has_edge(const struct dag *d, size_t p, size_t c)
{
	size_t k;

	for (k = 0; k < d->nchildren[p]; k++)
		if (d->children[p][k] == c)
			return 1;
	return 0;
}

/* Every edge goes from an earlier to a later position, and order is a permutation. */
static void assert_topological(const struct dag *d)
{
	size_t *pos = xmalloc(d->n * sizeof(*pos)), i, k;

	for (i = 0; i < d->n; i++)
		pos[i] = SIZE_MAX;
	for (i = 0; i < d->n; i++) {
		assert_true(d->order[i] < d->n);
		assert_int_equal(pos[d->order[i]], SIZE_MAX);
		pos[d->order[i]] = i;
	}
	for (i = 0; i < d->n; i++)
		for (k = 0; k < d->nchildren[i]; k++)
			assert_true(pos[i] < pos[d->children[i][k]]);
	free(pos);
}

/*
 * The selection fixture, a small clinic project:
 *
 *   lake.patients -> stg_patients -> int_patient_visits -> patients_summary -> accounts_report
 *   lake.visits   -> stg_visits   -/                         crm.accounts -> stg_accounts -/
 *   lake.patients -> stg_patients_v2 (in models/staging_old/)
 */
enum { F_PATIENTS, F_VISITS, F_ACCOUNTS, F_STG_PATIENTS, F_STG_VISITS, F_STG_ACCOUNTS,
       F_INT, F_SUMMARY, F_REPORT, F_STG_V2, F_N };

struct fixture {
	struct arena arena;
	struct dag *d;
	struct dag_node_info info[F_N];
	struct val config[F_N];
	unsigned char selected[F_N];
	char out[1024];
	struct sluice_err err;
};

static const char *const tags_stg_patients[] = { "staging", "pii" };
static const char *const tags_staging[] = { "staging" };
static const char *const tags_nightly[] = { "nightly" };
static const char *const tags_crm[] = { "crm" };

static void fx_node(struct fixture *f, size_t i, const char *source, const char *name, const char *path,
		    const char *const *tags, size_t ntags, const char *materialized)
{
	struct dag_node_info *ni = &f->info[i];

	ni->name = name;
	ni->source_name = source;
	ni->is_source = source != NULL;
	ni->path = path;
	ni->tags = tags;
	ni->ntags = ntags;
	f->config[i] = val_dict_new();
	if (materialized)
		val_dict_set(&f->arena, &f->config[i], "materialized", val_str(materialized));
	ni->config = &f->config[i];
}

static int fx_setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	struct val tags = val_list_new(), meta = val_dict_new();
	struct arena *a = &f->arena;

	arena_init(a);
	fx_node(f, F_PATIENTS, "lake", "patients", "models/sources.yml", NULL, 0, NULL);
	fx_node(f, F_VISITS, "lake", "visits", "models/sources.yml", NULL, 0, NULL);
	fx_node(f, F_ACCOUNTS, "crm", "accounts", "models/sources.yml", tags_crm, 1, NULL);
	fx_node(f, F_STG_PATIENTS, NULL, "stg_patients", "models/staging/stg_patients.sql",
		tags_stg_patients, 2, "view");
	fx_node(f, F_STG_VISITS, NULL, "stg_visits", "models/staging/stg_visits.sql", tags_staging, 1, "view");
	fx_node(f, F_STG_ACCOUNTS, NULL, "stg_accounts", "models/staging/crm/stg_accounts.sql",
		tags_staging, 1, "table");
	fx_node(f, F_INT, NULL, "int_patient_visits", "models/intermediate/int_patient_visits.sql",
		NULL, 0, "ephemeral");
	fx_node(f, F_SUMMARY, NULL, "patients_summary", "models/marts/patients_summary.sql",
		tags_nightly, 1, "table");
	fx_node(f, F_REPORT, NULL, "accounts_report", "models/marts/accounts_report.sql", NULL, 0, "incremental");
	fx_node(f, F_STG_V2, NULL, "stg_patients_v2", "./models/staging_old/stg_patients_v2.sql",
		NULL, 0, "view");

	val_list_push(a, &tags, val_str("finance"));
	val_list_push(a, &tags, val_str("nightly"));
	val_dict_set(a, &f->config[F_SUMMARY], "tags", tags);
	val_dict_set(a, &f->config[F_SUMMARY], "enabled", val_bool(1));
	val_dict_set(a, &f->config[F_SUMMARY], "priority", val_num(2));
	val_dict_set(a, &meta, "owner", val_str("ana"));
	val_dict_set(a, &f->config[F_SUMMARY], "meta", meta);
	val_dict_set(a, &f->config[F_STG_V2], "enabled", val_bool(0));

	f->d = dag_new(a, F_N);
	dag_add_edge(f->d, F_PATIENTS, F_STG_PATIENTS);
	dag_add_edge(f->d, F_VISITS, F_STG_VISITS);
	dag_add_edge(f->d, F_ACCOUNTS, F_STG_ACCOUNTS);
	dag_add_edge(f->d, F_STG_PATIENTS, F_INT);
	dag_add_edge(f->d, F_STG_VISITS, F_INT);
	dag_add_edge(f->d, F_INT, F_SUMMARY);
	dag_add_edge(f->d, F_SUMMARY, F_REPORT);
	dag_add_edge(f->d, F_STG_ACCOUNTS, F_REPORT);
	dag_add_edge(f->d, F_PATIENTS, F_STG_V2);
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fixture *f = *state;

	arena_release(&f->arena);
	free(f);
	return 0;
}

/* Selected nodes in index order, "source.table" for sources, space-separated. */
static const char *sel(struct fixture *f, const char *select, const char *exclude)
{
	size_t i, len = 0;
	int rc;

	memset(f->selected, 0xAA, sizeof(f->selected));
	rc = dag_select(f->d, f->info, select, exclude, f->selected, &f->err);
	if (rc)
		fail_msg("select '%s' exclude '%s': %s", select ? select : "(null)",
			 exclude ? exclude : "(null)", f->err.msg);
	f->out[0] = '\0';
	for (i = 0; i < F_N; i++) {
		const struct dag_node_info *ni = &f->info[i];

		assert_true(f->selected[i] == 0 || f->selected[i] == 1);
		if (!f->selected[i])
			continue;
		len += (size_t)snprintf(f->out + len, sizeof(f->out) - len, "%s%s%s%s", len ? " " : "",
					ni->is_source ? ni->source_name : "", ni->is_source ? "." : "", ni->name);
	}
	return f->out;
}

/* The error message a bad selection produces. */
static const char *sel_err(struct fixture *f, const char *select, const char *exclude)
{
	int rc;

	f->err.msg[0] = '\0';
	rc = dag_select(f->d, f->info, select, exclude, f->selected, &f->err);
	assert_int_equal(rc, SLUICE_EUSAGE);
	return f->err.msg;
}

#define ALL_MODELS "stg_patients stg_visits stg_accounts int_patient_visits patients_summary " \
	"accounts_report stg_patients_v2"
#define ALL "lake.patients lake.visits crm.accounts " ALL_MODELS

/* ---- edges ---- */

static void test_edges_deduplicated(void **state)
{
	struct arena a = ARENA_INIT;
	struct dag *d = dag_new(&a, 3);

	(void)state;
	dag_add_edge(d, 0, 1);
	dag_add_edge(d, 0, 2);
	dag_add_edge(d, 0, 1);
	dag_add_edge(d, 1, 2);
	dag_add_edge(d, 0, 2);
	assert_int_equal(d->nchildren[0], 2);
	assert_int_equal(d->children[0][0], 1);
	assert_int_equal(d->children[0][1], 2);
	assert_int_equal(d->nparents[2], 2);
	assert_int_equal(d->parents[2][0], 0);
	assert_int_equal(d->parents[2][1], 1);
	assert_int_equal(d->nparents[1], 1);
	assert_int_equal(d->nchildren[2], 0);
	arena_release(&a);
}

/* A hub with thousands of children and a sink with thousands of parents, each edge added twice. */
static void test_edges_hub_and_sink(void **state)
{
	enum { N = 6000 };
	struct arena a = ARENA_INIT;
	struct dag *d = dag_new(&a, N + 2);
	size_t i, k;

	(void)state;
	for (k = 0; k < 2; k++)
		for (i = 1; i <= N; i++) {
			dag_add_edge(d, 0, i);
			dag_add_edge(d, i, N + 1);
		}
	assert_int_equal(d->nchildren[0], N);
	assert_int_equal(d->nparents[N + 1], N);
	for (i = 1; i <= N; i++) {
		assert_int_equal(d->children[0][i - 1], i);
		assert_int_equal(d->parents[N + 1][i - 1], i);
		assert_int_equal(d->nparents[i], 1);
		assert_int_equal(d->nchildren[i], 1);
	}
	assert_int_equal(dag_check(d, NULL, NULL), 0);
	assert_int_equal(d->prio[0], 3);
	assert_int_equal(d->order[0], 0);
	assert_int_equal(d->order[N + 1], N + 1);
	arena_release(&a);
}

/* ---- cycles ---- */

static void test_cycle_reported_as_path(void **state)
{
	struct arena a = ARENA_INIT;
	struct dag *d = dag_new(&a, 4);
	size_t *cycle = NULL, ncycle = 0;

	(void)state;
	dag_add_edge(d, 0, 1);
	dag_add_edge(d, 1, 2);
	dag_add_edge(d, 2, 0);
	dag_add_edge(d, 2, 3);
	assert_int_equal(dag_check(d, &cycle, &ncycle), SLUICE_EUSAGE);
	assert_int_equal(ncycle, 4);
	assert_int_equal(cycle[0], 0);
	assert_int_equal(cycle[1], 1);
	assert_int_equal(cycle[2], 2);
	assert_int_equal(cycle[3], 0);
	assert_null(d->order);
	assert_null(d->prio);
	arena_release(&a);
}

static void test_cycle_self_loop(void **state)
{
	struct arena a = ARENA_INIT;
	struct dag *d = dag_new(&a, 3);
	size_t *cycle = NULL, ncycle = 0;

	(void)state;
	dag_add_edge(d, 0, 1);
	dag_add_edge(d, 2, 2);
	assert_int_equal(dag_check(d, &cycle, &ncycle), SLUICE_EUSAGE);
	assert_int_equal(ncycle, 2);
	assert_int_equal(cycle[0], 2);
	assert_int_equal(cycle[1], 2);
	arena_release(&a);
}

/* A cycle away from node 0, entered from outside and feeding a node below it. */
static void test_cycle_elsewhere_follows_edges(void **state)
{
	struct arena a = ARENA_INIT;
	struct dag *d = dag_new(&a, 6);
	size_t *cycle = NULL, ncycle = 0, i;

	(void)state;
	dag_add_edge(d, 0, 4);
	dag_add_edge(d, 4, 3);
	dag_add_edge(d, 3, 2);
	dag_add_edge(d, 2, 4);
	dag_add_edge(d, 2, 5);
	dag_add_edge(d, 1, 5);
	assert_int_equal(dag_check(d, &cycle, &ncycle), SLUICE_EUSAGE);
	assert_int_equal(ncycle, 4);
	assert_int_equal(cycle[0], 2);
	assert_int_equal(cycle[1], 4);
	assert_int_equal(cycle[2], 3);
	assert_int_equal(cycle[3], 2);
	for (i = 0; i + 1 < ncycle; i++)
		assert_true(has_edge(d, cycle[i], cycle[i + 1]));
	arena_release(&a);
}

/* The report starts at the cycle's lowest index even when found from a node below it. */
static void test_cycle_found_from_downstream(void **state)
{
	struct arena a = ARENA_INIT;
	struct dag *d = dag_new(&a, 5);
	size_t *cycle = NULL, ncycle = 0;

	(void)state;
	dag_add_edge(d, 4, 0);
	dag_add_edge(d, 3, 4);
	dag_add_edge(d, 4, 2);
	dag_add_edge(d, 2, 3);
	dag_add_edge(d, 1, 0);
	assert_int_equal(dag_check(d, &cycle, &ncycle), SLUICE_EUSAGE);
	assert_int_equal(ncycle, 4);
	assert_int_equal(cycle[0], 2);
	assert_int_equal(cycle[1], 3);
	assert_int_equal(cycle[2], 4);
	assert_int_equal(cycle[3], 2);
	arena_release(&a);
}

static void test_cycle_fixed_then_checks(void **state)
{
	struct arena a = ARENA_INIT;
	struct dag *d = dag_new(&a, 2);

	(void)state;
	dag_add_edge(d, 0, 1);
	assert_int_equal(dag_check(d, NULL, NULL), 0);
	assert_int_equal(d->order[0], 0);
	dag_add_edge(d, 1, 0);
	assert_int_equal(dag_check(d, NULL, NULL), SLUICE_EUSAGE);
	assert_null(d->order);
	arena_release(&a);
}

/* Deep graphs must not recurse: 20,000 levels, then the same chain closed into a cycle. */
static void test_deep_chain(void **state)
{
	enum { N = 20000 };
	struct arena a = ARENA_INIT;
	struct dag *d = chain_of(&a, N);
	struct dag_node_info *info = arena_alloc(&a, N * sizeof(*info));
	unsigned char *selected = arena_alloc(&a, N);
	struct sluice_err err = SLUICE_ERR_INIT;
	size_t *cycle = NULL, ncycle = 0, i, count;

	(void)state;
	assert_int_equal(dag_check(d, &cycle, &ncycle), 0);
	assert_null(cycle);
	for (i = 0; i < N; i++) {
		assert_int_equal(d->order[i], i);
		assert_int_equal(d->prio[i], N - i);
	}

	for (i = 0; i < N; i++)
		info[i].name = arena_printf(&a, "n%zu", i);
	assert_int_equal(dag_select(d, info, "+n19999", NULL, selected, &err), 0);
	for (i = 0, count = 0; i < N; i++)
		count += selected[i];
	assert_int_equal(count, N);
	assert_int_equal(dag_select(d, info, "n10000+5", NULL, selected, &err), 0);
	for (i = 0, count = 0; i < N; i++)
		count += selected[i];
	assert_int_equal(count, 6);
	assert_true(selected[10005] && !selected[10006] && !selected[9999]);

	dag_add_edge(d, N - 1, 0);
	assert_int_equal(dag_check(d, &cycle, &ncycle), SLUICE_EUSAGE);
	assert_int_equal(ncycle, N + 1);
	for (i = 0; i < N; i++)
		assert_int_equal(cycle[i], i);
	assert_int_equal(cycle[N], 0);
	arena_release(&a);
}

/* ---- order and priorities ---- */

static void test_order_prefers_lower_index(void **state)
{
	struct arena a = ARENA_INIT;
	struct dag *d = dag_new(&a, 5);
	static const size_t want[] = { 2, 3, 0, 4, 1 };
	size_t i;

	(void)state;
	dag_add_edge(d, 3, 0);
	dag_add_edge(d, 4, 1);
	assert_int_equal(dag_check(d, NULL, NULL), 0);
	for (i = 0; i < 5; i++)
		assert_int_equal(d->order[i], want[i]);
	arena_release(&a);
}

/* Random DAG under shuffled labels: order valid, and independent of edge insertion order. */
static void test_order_valid_and_deterministic(void **state)
{
	enum { N = 3000, E = 9000 };
	struct arena a = ARENA_INIT;
	struct dag *fwd = dag_new(&a, N), *rev = dag_new(&a, N);
	size_t *label = arena_alloc(&a, N * sizeof(*label)), (*edge)[2] = arena_alloc(&a, E * sizeof(*edge));
	unsigned long long seed = 42;
	size_t i;

	(void)state;
	for (i = 0; i < N; i++)
		label[i] = i;
	for (i = N - 1; i > 0; i--) {
		size_t j, t;

		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		j = (size_t)(seed >> 33) % (i + 1);
		t = label[i];
		label[i] = label[j];
		label[j] = t;
	}
	for (i = 0; i < E; i++) {
		size_t x, y;

		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		x = (size_t)(seed >> 33) % N;
		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		y = (size_t)(seed >> 33) % N;
		if (x == y)
			y = (y + 1) % N;
		edge[i][0] = label[x < y ? x : y];
		edge[i][1] = label[x < y ? y : x];
	}
	for (i = 0; i < E; i++)
		dag_add_edge(fwd, edge[i][0], edge[i][1]);
	for (i = E; i-- > 0;)
		dag_add_edge(rev, edge[i][0], edge[i][1]);
	assert_int_equal(dag_check(fwd, NULL, NULL), 0);
	assert_int_equal(dag_check(rev, NULL, NULL), 0);
	assert_topological(fwd);
	assert_memory_equal(fwd->order, rev->order, N * sizeof(size_t));
	assert_memory_equal(fwd->prio, rev->prio, N * sizeof(size_t));
	arena_release(&a);
}

static void test_prio_is_longest_path_to_sink(void **state)
{
	struct arena a = ARENA_INIT;
	struct dag *d = dag_new(&a, 7);
	static const size_t want[] = { 4, 3, 2, 1, 2, 1, 3 };
	size_t i;

	(void)state;
	/* 0 -> 1 -> 2 -> 3, 0 -> 4 -> 3, 6 -> 4, 5 alone. */
	dag_add_edge(d, 0, 1);
	dag_add_edge(d, 1, 2);
	dag_add_edge(d, 2, 3);
	dag_add_edge(d, 0, 4);
	dag_add_edge(d, 4, 3);
	dag_add_edge(d, 6, 4);
	assert_int_equal(dag_check(d, NULL, NULL), 0);
	for (i = 0; i < 7; i++)
		assert_int_equal(d->prio[i], want[i]);
	assert_topological(d);
	arena_release(&a);
}

static void test_empty_graph(void **state)
{
	struct arena a = ARENA_INIT;
	struct dag *d = dag_new(&a, 0);
	struct sluice_err err = SLUICE_ERR_INIT;
	unsigned char none[1] = { 7 };

	(void)state;
	assert_int_equal(dag_check(d, NULL, NULL), 0);
	assert_int_equal(dag_select(d, NULL, "tag:x", "y", none, &err), 0);
	assert_int_equal(none[0], 7);
	arena_release(&a);
}

/* ---- selection ---- */

static void test_select_everything(void **state)
{
	struct fixture *f = *state;

	assert_string_equal(sel(f, NULL, NULL), ALL);
	assert_string_equal(sel(f, "", NULL), ALL);
	assert_string_equal(sel(f, " \t\n", ""), ALL);
}

static void test_select_name(void **state)
{
	struct fixture *f = *state;

	assert_string_equal(sel(f, "stg_patients", NULL), "stg_patients");
	assert_string_equal(sel(f, "patients_summary", NULL), "patients_summary");
	/* A source's table name is not a model name. */
	assert_string_equal(sel(f, "patients", NULL), "");
	/* Matching nothing is not an error. */
	assert_string_equal(sel(f, "stg_order", NULL), "");
}

static void test_select_wildcards(void **state)
{
	struct fixture *f = *state;

	assert_string_equal(sel(f, "stg_*", NULL), "stg_patients stg_visits stg_accounts stg_patients_v2");
	assert_string_equal(sel(f, "stg_?isits", NULL), "stg_visits");
	assert_string_equal(sel(f, "*", NULL), ALL_MODELS);
}

static void test_select_tag(void **state)
{
	struct fixture *f = *state;

	assert_string_equal(sel(f, "tag:staging", NULL), "stg_patients stg_visits stg_accounts");
	assert_string_equal(sel(f, "tag:pii", NULL), "stg_patients");
	assert_string_equal(sel(f, "tag:night*", NULL), "patients_summary");
	assert_string_equal(sel(f, "tag:crm", NULL), "crm.accounts");
	assert_string_equal(sel(f, "tag:stag", NULL), "");
}

static void test_select_path(void **state)
{
	struct fixture *f = *state;

	assert_string_equal(sel(f, "path:models/staging", NULL), "stg_patients stg_visits stg_accounts");
	assert_string_equal(sel(f, "path:models/staging/", NULL), "stg_patients stg_visits stg_accounts");
	assert_string_equal(sel(f, "path:./models/staging", NULL), "stg_patients stg_visits stg_accounts");
	assert_string_equal(sel(f, "path:models/staging/crm", NULL), "stg_accounts");
	assert_string_equal(sel(f, "path:models/marts/patients_summary.sql", NULL), "patients_summary");
	assert_string_equal(sel(f, "path:./models/marts/patients_summary.sql", NULL), "patients_summary");
	/* The node's own path may carry "./" too. */
	assert_string_equal(sel(f, "path:models/staging_old", NULL), "stg_patients_v2");
	/* Directory prefixes stop at a '/': "models/stag" is not "models/staging". */
	assert_string_equal(sel(f, "path:models/stag", NULL), "");
	assert_string_equal(sel(f, "path:models/marts/patients_summary", NULL), "");
	assert_string_equal(sel(f, "path:models/sources.yml", NULL), "lake.patients lake.visits crm.accounts");
	/* The project root holds everything. */
	assert_string_equal(sel(f, "path:.", NULL), ALL);
	assert_string_equal(sel(f, "path:./", NULL), ALL);
	assert_string_equal(sel(f, "path:models/*/stg_*.sql", NULL),
			    "stg_patients stg_visits stg_accounts stg_patients_v2");
}

static void test_select_source(void **state)
{
	struct fixture *f = *state;

	assert_string_equal(sel(f, "source:lake", NULL), "lake.patients lake.visits");
	assert_string_equal(sel(f, "source:lake.visits", NULL), "lake.visits");
	assert_string_equal(sel(f, "source:lake.*", NULL), "lake.patients lake.visits");
	assert_string_equal(sel(f, "source:*.accounts", NULL), "crm.accounts");
	assert_string_equal(sel(f, "source:*", NULL), "lake.patients lake.visits crm.accounts");
	assert_string_equal(sel(f, "source:lake.accounts", NULL), "");
	assert_string_equal(sel(f, "source:stg_patients", NULL), "");
}

static void test_select_config(void **state)
{
	struct fixture *f = *state;

	assert_string_equal(sel(f, "config.materialized:table", NULL), "stg_accounts patients_summary");
	assert_string_equal(sel(f, "config.materialized:view", NULL), "stg_patients stg_visits stg_patients_v2");
	assert_string_equal(sel(f, "config.materialized:tab", NULL), "");
	/* A list value matches any member. */
	assert_string_equal(sel(f, "config.tags:nightly", NULL), "patients_summary");
	assert_string_equal(sel(f, "config.tags:finance", NULL), "patients_summary");
	assert_string_equal(sel(f, "config.enabled:true", NULL), "patients_summary");
	assert_string_equal(sel(f, "config.enabled:false", NULL), "stg_patients_v2");
	assert_string_equal(sel(f, "config.priority:2", NULL), "patients_summary");
	assert_string_equal(sel(f, "config.meta.owner:ana", NULL), "patients_summary");
	assert_string_equal(sel(f, "config.nosuchkey:x", NULL), "");
}

static void test_select_ancestors_descendants(void **state)
{
	struct fixture *f = *state;

	assert_string_equal(sel(f, "+stg_visits", NULL), "lake.visits stg_visits");
	assert_string_equal(sel(f, "patients_summary+", NULL), "patients_summary accounts_report");
	assert_string_equal(sel(f, "+int_patient_visits+", NULL),
			    "lake.patients lake.visits stg_patients stg_visits int_patient_visits "
			    "patients_summary accounts_report");
	assert_string_equal(sel(f, "1+int_patient_visits", NULL), "stg_patients stg_visits int_patient_visits");
	assert_string_equal(sel(f, "2+int_patient_visits", NULL),
			    "lake.patients lake.visits stg_patients stg_visits int_patient_visits");
	assert_string_equal(sel(f, "stg_patients+1", NULL), "stg_patients int_patient_visits");
	assert_string_equal(sel(f, "stg_patients+2", NULL), "stg_patients int_patient_visits patients_summary");
	assert_string_equal(sel(f, "source:lake+", NULL),
			    "lake.patients lake.visits stg_patients stg_visits int_patient_visits "
			    "patients_summary accounts_report stg_patients_v2");
	assert_string_equal(sel(f, "+tag:nightly", NULL),
			    "lake.patients lake.visits stg_patients stg_visits int_patient_visits patients_summary");
	/* 0+x is x alone, and a depth beyond the graph is everything. */
	assert_string_equal(sel(f, "0+stg_visits+0", NULL), "stg_visits");
	assert_string_equal(sel(f, "stg_patients+99999999999999999999999", NULL),
			    "stg_patients int_patient_visits patients_summary accounts_report");
}

/* @x also pulls in what x's descendants need; +x+ does not. */
static void test_select_at(void **state)
{
	struct fixture *f = *state;

	assert_string_equal(sel(f, "+stg_patients+", NULL),
			    "lake.patients stg_patients int_patient_visits patients_summary accounts_report");
	assert_string_equal(sel(f, "@stg_patients", NULL),
			    "lake.patients lake.visits crm.accounts stg_patients stg_visits stg_accounts "
			    "int_patient_visits patients_summary accounts_report");
	assert_string_equal(sel(f, "@accounts_report", NULL), "lake.patients lake.visits crm.accounts "
			    "stg_patients stg_visits stg_accounts int_patient_visits patients_summary accounts_report");
	assert_string_equal(sel(f, "@stg_patients_v2", NULL), "lake.patients stg_patients_v2");
}

static void test_select_union_intersection(void **state)
{
	struct fixture *f = *state;

	assert_string_equal(sel(f, "stg_visits stg_accounts", NULL), "stg_visits stg_accounts");
	assert_string_equal(sel(f, "  stg_visits\tstg_accounts\n", NULL), "stg_visits stg_accounts");
	assert_string_equal(sel(f, "tag:staging,config.materialized:view", NULL), "stg_patients stg_visits");
	assert_string_equal(sel(f, "tag:staging,path:models/staging/crm", NULL), "stg_accounts");
	assert_string_equal(sel(f, "tag:staging,tag:nightly", NULL), "");
	assert_string_equal(sel(f, "+patients_summary,source:*", NULL), "lake.patients lake.visits");
	assert_string_equal(sel(f, "tag:staging,config.materialized:table patients_summary", NULL),
			    "stg_accounts patients_summary");
	assert_string_equal(sel(f, "stg_visits stg_visits", NULL), "stg_visits");
}

static void test_select_exclude(void **state)
{
	struct fixture *f = *state;

	assert_string_equal(sel(f, "tag:staging", "stg_visits"), "stg_patients stg_accounts");
	assert_string_equal(sel(f, NULL, "+stg_visits source:crm+"),
			    "lake.patients stg_patients int_patient_visits patients_summary stg_patients_v2");
	assert_string_equal(sel(f, "stg_*", "tag:staging,config.materialized:view"), "stg_accounts stg_patients_v2");
	assert_string_equal(sel(f, "+accounts_report", "source:*"),
			    "stg_patients stg_visits stg_accounts int_patient_visits patients_summary accounts_report");
	assert_string_equal(sel(f, "stg_visits", "stg_visits"), "");
	assert_string_equal(sel(f, "stg_visits", "nothing_matches"), "stg_visits");
}

/* Leading digits are a depth only when a '+' follows; trailing ones only after a '+'. */
static void test_select_names_with_digits(void **state)
{
	struct arena a = ARENA_INIT;
	struct dag *d = chain_of(&a, 3);
	struct dag_node_info info[3] = { { .name = "2020_orders" }, { .name = "orders_2" }, { .name = "x" } };
	struct sluice_err err = SLUICE_ERR_INIT;
	unsigned char s[3];

	(void)state;
	assert_int_equal(dag_select(d, info, "2020_orders", NULL, s, &err), 0);
	assert_true(s[0] && !s[1] && !s[2]);
	assert_int_equal(dag_select(d, info, "orders_2", NULL, s, &err), 0);
	assert_true(!s[0] && s[1] && !s[2]);
	assert_int_equal(dag_select(d, info, "2020_orders+1", NULL, s, &err), 0);
	assert_true(s[0] && s[1] && !s[2]);
	assert_int_equal(dag_select(d, info, "1+orders_2", NULL, s, &err), 0);
	assert_true(s[0] && s[1] && !s[2]);
	arena_release(&a);
}

static void test_select_invalid(void **state)
{
	static const struct { const char *sel, *msg; } cases[] = {
		{ "foo:bar", "invalid selector 'foo:bar': unknown method 'foo'" },
		{ "tags:nightly", "invalid selector 'tags:nightly': unknown method 'tags' (did you mean 'tag'?)" },
		{ "+", "invalid selector '+': missing a name or method:value" },
		{ "2+", "invalid selector '2+': missing a name or method:value" },
		{ "@", "invalid selector '@': missing a name or method:value" },
		{ "tag:", "invalid selector 'tag:': missing value after 'tag:'" },
		{ "x++", "invalid selector 'x++': unexpected '+'" },
		{ "++x", "invalid selector '++x': unexpected '+'" },
		{ "a+b", "invalid selector 'a+b': unexpected '+'" },
		{ "@x+", "invalid selector '@x+': '@' cannot be combined with '+'" },
		{ "@+x", "invalid selector '@+x': '@' cannot be combined with '+'" },
		{ "+@x", "invalid selector '+@x': '@' must come first" },
		{ ":x", "invalid selector ':x': missing method before ':'" },
		{ "config:view", "invalid selector 'config:view': expected config.<key>:<value>" },
		{ "config.:view", "invalid selector 'config.:view': expected config.<key>:<value>" },
		{ "config.meta..owner:a", "invalid selector 'config.meta..owner:a': empty key in config.<key>" },
		{ "source:lake.", "invalid selector 'source:lake.': expected source:<source> or source:<source>.<table>" },
		{ "a,,b", "invalid selector 'a,,b': empty part in a ',' intersection" },
		{ "tag:x,", "invalid selector 'tag:x,': empty part in a ',' intersection" },
		{ "stg_visits fqn:x", "invalid selector 'fqn:x': unknown method 'fqn'" },
	};
	struct fixture *f = *state;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_string_equal(sel_err(f, cases[i].sel, NULL), cases[i].msg);
		/* A bad --exclude is as fatal as a bad --select. */
		assert_string_equal(sel_err(f, "stg_visits", cases[i].sel), cases[i].msg);
	}
}

/*
 * 10,000 nodes in layers, where index order is a topological order; the
 * selection is checked against a plain sweep over that order.
 */
static void test_select_large_graph(void **state)
{
	enum { W = 100, L = 100, N = W * L, X = 50 * W };
	struct arena a = ARENA_INIT;
	struct dag *d = dag_new(&a, N);
	struct dag_node_info *info = arena_alloc(&a, N * sizeof(*info));
	unsigned char *s = arena_alloc(&a, N), *want = arena_alloc(&a, N);
	struct sluice_err err = SLUICE_ERR_INIT;
	size_t i, k, count;

	(void)state;
	/* Node l*W+w depends on (l-1)*W+w and (l-1)*W+(w+1)%W. */
	for (i = 0; i < N; i++) {
		info[i].name = arena_printf(&a, "m_%zu_%zu", i / W, i % W);
		if (i >= W) {
			dag_add_edge(d, i - W, i);
			dag_add_edge(d, i - W - i % W + (i % W + 1) % W, i);
		}
	}
	assert_int_equal(dag_check(d, NULL, NULL), 0);
	assert_int_equal(d->prio[0], L);

	/* @m_50_0: descendants of X forwards, then their ancestors backwards. */
	for (i = 0; i < N; i++) {
		want[i] = i == X;
		for (k = 0; k < d->nparents[i]; k++)
			want[i] |= want[d->parents[i][k]];
	}
	for (i = N; i-- > 0;)
		for (k = 0; k < d->nchildren[i]; k++)
			want[i] |= want[d->children[i][k]];
	for (i = 0; i < N; i++) {
		if (i % W == 7)
			want[i] = 1;
		if (i / W == L - 1)
			want[i] = 0;
	}
	assert_int_equal(dag_select(d, info, "@m_50_0 m_*_7", "m_99_*", s, &err), 0);
	assert_memory_equal(s, want, N);
	for (i = 0, count = 0; i < N; i++)
		count += s[i];
	assert_true(count > W && count < N - W);

	assert_int_equal(dag_select(d, info, "+m_3_0", NULL, s, &err), 0);
	for (i = 0, count = 0; i < N; i++)
		count += s[i];
	assert_int_equal(count, 1 + 2 + 3 + 4);
	assert_true(s[0] && s[1] && s[2] && s[3] && !s[4]);
	arena_release(&a);
}

/* ---- suggestions ---- */

static void test_suggest(void **state)
{
	static const char *const names[] = { "stg_orders", "stg_customers", "orders", "customers", NULL, "ab" };
	static const char *const tied[] = { "cat", "cut", "cot" };

	(void)state;
	assert_string_equal(dag_suggest("stg_order", names, 6), "stg_orders");
	assert_string_equal(dag_suggest("stg_custmoers", names, 6), "stg_customers");
	assert_string_equal(dag_suggest("order", names, 6), "orders");
	assert_string_equal(dag_suggest("ac", names, 6), "ab");
	assert_null(dag_suggest("zzzzzz", names, 6));
	assert_null(dag_suggest("payments", names, 6));
	/* Ties go to the first candidate. */
	assert_string_equal(dag_suggest("cxt", tied, 3), "cat");
	/* The threshold grows with length: 12 characters allow 4 edits, not 5. */
	assert_string_equal(dag_suggest("abcdefghijkl", (const char *const[]){ "abcdefghWXYZ" }, 1), "abcdefghWXYZ");
	assert_null(dag_suggest("abcdefghijkl", (const char *const[]){ "abcdefgVWXYZ" }, 1));
	/* Short names allow 2 edits, not 3. */
	assert_string_equal(dag_suggest("abc", (const char *const[]){ "xyc" }, 1), "xyc");
	assert_null(dag_suggest("abc", (const char *const[]){ "xyz" }, 1));
	assert_null(dag_suggest("stg_order", names, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_edges_deduplicated),
		cmocka_unit_test(test_edges_hub_and_sink),
		cmocka_unit_test(test_cycle_reported_as_path),
		cmocka_unit_test(test_cycle_self_loop),
		cmocka_unit_test(test_cycle_elsewhere_follows_edges),
		cmocka_unit_test(test_cycle_found_from_downstream),
		cmocka_unit_test(test_cycle_fixed_then_checks),
		cmocka_unit_test(test_deep_chain),
		cmocka_unit_test(test_order_prefers_lower_index),
		cmocka_unit_test(test_order_valid_and_deterministic),
		cmocka_unit_test(test_prio_is_longest_path_to_sink),
		cmocka_unit_test(test_empty_graph),
		cmocka_unit_test_setup_teardown(test_select_everything, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_select_name, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_select_wildcards, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_select_tag, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_select_path, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_select_source, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_select_config, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_select_ancestors_descendants, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_select_at, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_select_union_intersection, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_select_exclude, fx_setup, fx_teardown),
		cmocka_unit_test(test_select_names_with_digits),
		cmocka_unit_test_setup_teardown(test_select_invalid, fx_setup, fx_teardown),
		cmocka_unit_test(test_select_large_graph),
		cmocka_unit_test(test_suggest),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
