/*
 * kind-datatest.c: data tests as a node kind (`sluice test`, `sluice
 * build`): which tests run, the DAG the executor walks when they do,
 * whether a test may be reused, the queries, the state records, the
 * progress lines and the run_results entries. The SQL text itself is
 * datatest.c's.
 *
 * The executor's DAG is the manifest's plus two kinds of additions:
 *  - a scan job per relation with two or more tests that can share one
 *    pass (datatest_scannable): it runs between the relation and those
 *    tests, counts all their failures in one query and leaves each test
 *    its result, so the test jobs only report (and fall back to their own
 *    query when the shared one failed);
 *  - with models in the run, an edge from each test to the models that
 *    read what it tests, so a test that fails skips them like a failed
 *    model would (dbt's rule, including its exception: no edge to a
 *    model that another input of the test depends on, which would make
 *    a cycle).
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "build.h"
#include "datatest.h"
#include "json.h"
#include "ui.h"
#include "util/xalloc.h"

#define SAMPLE_ROWS 20       /* kept in run_results.json */
#define SHOWN_ROWS 5         /* printed under FAIL / WARN */
#define CELL_MAX 200         /* bytes of a value kept in a sample */

enum test_outcome { TO_NONE, TO_PASS, TO_WARN, TO_FAIL, TO_ERROR };

struct test_run {
	int decided, reused;
	int have_result;             /* failures and sample are known */
	int combined;                /* ... from a shared scan */
	enum test_outcome outcome;
	long long failures;
	long long observed;          /* row_count_delta: the count seen now, or -1 */
	long long baseline;          /* row_count_delta: the count of the last successful run, or -1 */
	json_t *sample;              /* array of row objects */
	char *detail;                /* aggregate tests: what was wrong (heap) */
	char *lines[SHOWN_ROWS + 2]; /* what the progress line shows under it (heap) */
	size_t nlines;
	char *sql;                   /* singular: the compiled SQL (heap) */
	char *logical;               /* the SQL it runs with relations named logically, for its fingerprint (heap):
	                                singular: all of it; generic: the queries of ephemeral models it reads */
	char *read[2];               /* generic: what it reads as FROM text (dt_reads: tested, other) (heap) */
	char *audit;                 /* store_failures: the table written (heap) */
	char fp_def[FP_HEX], fp[FP_HEX];
	struct val inputs;           /* what the fingerprint covered: key -> version (worker arena) */
	struct val reasons;          /* why it ran (worker arena) */
	double scan_started, scan_finished;
};

struct scan_group {
	size_t tested;               /* manifest index of the relation */
	size_t *members;             /* test node indices */
	size_t n;
};

/* The kind's run-wide data (build_kind_data). */
struct build_tests {
	struct test_run *runs;       /* per manifest node (tests only) */
	size_t nnodes;
	unsigned char *excluded;     /* what --exclude names, and tests of it; NULL without --exclude */
	struct scan_group *groups;   /* exec-DAG node nnodes + g */
	size_t ngroups;
	int pass, warn, fail, error, skipped, reused;
};

static const char *const outcome_words[] = { "skipped", "pass", "warn", "fail", "error" };

static struct build_tests *tests_of(const struct build *b)
{
	return *build_kind_data(b, &kind_datatest);
}

static struct test_run *trun(const struct build *b, size_t idx)
{
	return &tests_of(b)->runs[idx];
}

/* A scan job is named after the relation it scans. */
static const char *scan_name(const struct build *b, size_t gi)
{
	return b->s->manifest.nodes[tests_of(b)->groups[gi].tested].name;
}

/* ---- preparing ---- */

/* Whether test i runs: selected itself, or something it reads is (dbt's eager selection). */
static int test_selected(struct build *b, size_t i)
{
	const struct dag *d = b->s->manifest.dag;
	const unsigned char *excluded = tests_of(b)->excluded;
	size_t k;

	if (excluded && excluded[i])
		return 0;
	if (b->s->selected[i])
		return 1;
	for (k = 0; k < d->nparents[i]; k++)
		if (b->s->selected[d->parents[i][k]])
			return 1;
	return 0;
}

/* Nodes --exclude names, and tests of what it names (NULL when there is no --exclude). */
static unsigned char *excluded_nodes(const struct build *b, struct sluice_err *err, int *rc)
{
	const struct manifest *m = &b->s->manifest;
	struct dag_node_info *info;
	unsigned char *keep, *out;
	size_t i;

	*rc = 0;
	if (!b->s->cli->exclude.len)
		return NULL;
	info = xcalloc(m->n ? m->n : 1, sizeof(*info));
	keep = xcalloc(m->n ? m->n : 1, 1);
	out = xcalloc(m->n ? m->n : 1, 1);
	for (i = 0; i < m->n; i++)
		info[i] = m->nodes[i].info;
	*rc = dag_select(m->dag, info, NULL, b->s->cli->exclude.s, keep, err);
	for (i = 0; i < m->n; i++) {
		size_t k;
		out[i] = !keep[i];
		for (k = 0; m->nodes[i].type == NODE_TEST && k < m->dag->nparents[i]; k++)
			out[i] |= !keep[m->dag->parents[i][k]];
	}
	free(info);
	free(keep);
	return out;
}

static long long prev_observed(const struct build *b, size_t idx)
{
	const struct val *v = val_get(build_prev_record(b, idx), "observed_rows");

	return v && v->kind == V_NUM ? (long long)v->u.num : -1;
}


/* Where target/compiled keeps a test's SQL: next to its YAML, as dbt does, or its own path. */
static char *compiled_path(const struct datatest *t)
{
	struct buf p = BUF_INIT;

	if (t->file)
		buf_puts(&p, t->file->path);
	else
		buf_printf(&p, "%s/%s.sql", t->at.path, t->name);
	return buf_detach(&p, NULL);
}

static struct dt_reads reads_of(const struct test_run *tr)
{
	struct dt_reads r = { tr->read[0], tr->read[1] };

	return r;
}

/*
 * What generic test t reads, as FROM text (tr->read): relations, or an
 * ephemeral model's query, which has no relation. That query is code the
 * test runs: its logical form joins the test's fingerprint (tr->logical),
 * so that a change to the ephemeral model, or to one it inlines, runs the
 * test again. (Its upstream's data is walk_inputs' business.)
 */
static int compile_reads(struct build *b, const struct datatest *t, struct test_run *tr, struct sluice_err *e)
{
	const struct manifest *m = &b->s->manifest;
	struct compile_opts real = { .invocation_id = b->s->invocation_id },
			    logical = { .invocation_id = b->s->invocation_id, .logical = 1 };
	const struct node *what[2] = { t->tested, t->other };
	struct arena scratch = ARENA_INIT;
	struct buf lsql = BUF_INIT;
	size_t k;
	int rc = 0;

	for (k = 0; k < 2 && !rc; k++) {
		struct buf sql = BUF_INIT;
		if (!what[k])
			continue;
		rc = manifest_read_sql(m, what[k], &real, &scratch, &sql, e);
		if (!rc && what[k]->type == NODE_MODEL && what[k]->mat == MAT_EPHEMERAL)
			rc = manifest_read_sql(m, what[k], &logical, &scratch, &lsql, e);
		tr->read[k] = buf_detach(&sql, NULL);
	}
	if (!rc && lsql.len)
		tr->logical = buf_detach(&lsql, NULL);
	buf_release(&lsql);
	arena_release(&scratch);
	return rc;
}

static int compile_test(struct build *b, size_t idx)
{
	const struct manifest *m = &b->s->manifest;
	const struct node *n = &m->nodes[idx];
	const struct datatest *t = n->test;
	struct test_run *tr = trun(b, idx);
	const struct dialect *d = build_dialect(b, n);
	struct sluice_err e = SLUICE_ERR_INIT;
	struct buf sql = BUF_INIT;
	char *path;

	tr->baseline = prev_observed(b, idx);
	if (!d->failures_query || !d->sample_query || !d->now_minus) {
		err_set(&e, SLUICE_ENOTSUP, "%s: test %s: data tests are not supported on dialect %s", t->at.path,
			t->name, d->name);
	} else if (t->file) {
		struct compile_opts real = { .invocation_id = b->s->invocation_id },
				    logical = { .invocation_id = b->s->invocation_id, .logical = 1 };
		struct arena scratch = ARENA_INIT;
		struct buf lsql = BUF_INIT;
		if (manifest_compile(m, n, &real, &scratch, &sql, NULL, &e) ||
		    manifest_compile(m, n, &logical, &scratch, &lsql, NULL, &e)) {
			/* e says why */
		} else {
			tr->sql = xstrdup(sql.s);
			tr->logical = buf_detach(&lsql, NULL);
		}
		buf_release(&lsql);
		arena_release(&scratch);
	} else if (!compile_reads(b, t, tr, &e)) {
		struct dt_reads reads = reads_of(tr);
		datatest_failing_sql(t, d, &reads, tr->baseline, &sql);
	}
	if (!e.code) {
		path = compiled_path(t);
		build_write_target_file(b, "compiled", path, sql.s);
		free(path);
	}
	buf_release(&sql);
	*run_err(&b->runs[idx]) = e;
	return e.code;
}

/* Whether to is reachable from from in x (the DAG being built). */
static int reaches(const struct dag *x, size_t from, size_t to, unsigned char *seen, size_t *stack)
{
	size_t top = 0, k, n = 0, *touched = stack + x->n;
	int found = 0;

	stack[top++] = from;
	seen[from] = 1;
	touched[n++] = from;
	while (top && !found) {
		size_t v = stack[--top];
		for (k = 0; k < x->nchildren[v] && !found; k++) {
			size_t c = x->children[v][k];
			if (c == to)
				found = 1;
			else if (!seen[c]) {
				seen[c] = 1;
				touched[n++] = c;
				stack[top++] = c;
			}
		}
	}
	while (n)
		seen[touched[--n]] = 0;
	return found;
}

/*
 * Models that read what test i tests wait for it (build only). A test
 * with one input cannot close a cycle this way (its only way in is from
 * that input, which its children cannot reach), but one joining two
 * models can: an edge to a model from which the test is reachable is
 * left out, as dbt leaves out edges to the ancestors of a test's other
 * inputs.
 */
static void add_blocking_edges(struct build *b, struct dag *x, size_t i, unsigned char *seen, size_t *stack)
{
	const struct manifest *m = &b->s->manifest;
	const struct dag *d = m->dag;
	size_t k, c;

	for (k = 0; k < d->nparents[i]; k++) {
		size_t p = d->parents[i][k];
		for (c = 0; c < d->nchildren[p]; c++) {
			size_t child = d->children[p][c];
			if (m->nodes[child].type != NODE_MODEL || !b->todo[child])
				continue;
			if (d->nparents[i] > 1 && reaches(x, child, i, seen, stack))
				continue;
			dag_add_edge(x, i, child);
		}
	}
}

static int combine_setting(const struct build *b)
{
	const struct val *t = datatest_settings(&b->s->project);
	const struct val *v = val_get(t, "+combine");

	if (!v)
		v = val_get(t, "combine");
	return v ? val_truthy(v) : 1;
}

/* Relations with two or more tests that can share a scan get a scan job. */
static void make_groups(struct build *b)
{
	const struct manifest *m = &b->s->manifest;
	struct build_tests *bt = tests_of(b);
	size_t *count = xcalloc(m->n ? m->n : 1, sizeof(size_t)), i;
	size_t *slot_of_group = xcalloc(m->n ? m->n : 1, sizeof(size_t));

	for (i = 0; i < m->n; i++) {
		const struct node *n = &m->nodes[i];
		if (n->type != NODE_TEST || b->todo[i] != EXEC_RUN || b->runs[i].failed_early ||
		    !datatest_scannable(n->test) || !build_dialect(b, n)->count_if)
			continue;
		count[n->test->tested->idx]++;
	}
	for (i = 0; i < m->n; i++)
		if (count[i] >= 2)
			bt->ngroups++;
	bt->groups = xcalloc(bt->ngroups ? bt->ngroups : 1, sizeof(*bt->groups));
	bt->ngroups = 0;
	for (i = 0; i < m->n; i++)
		if (count[i] >= 2) {
			struct scan_group *g = &bt->groups[bt->ngroups];
			g->tested = i;
			g->members = xcalloc(count[i], sizeof(size_t));
			slot_of_group[i] = ++bt->ngroups;
		}
	for (i = 0; i < m->n; i++) {
		const struct node *n = &m->nodes[i];
		size_t gi;
		if (n->type != NODE_TEST || b->todo[i] != EXEC_RUN || b->runs[i].failed_early ||
		    !datatest_scannable(n->test) || !build_dialect(b, n)->count_if)
			continue;
		if ((gi = slot_of_group[n->test->tested->idx])) {
			struct scan_group *g = &bt->groups[gi - 1];
			g->members[g->n++] = i;
		}
	}
	free(count);
	free(slot_of_group);
}

static int tests_begin(struct build *b, struct sluice_err *err)
{
	const struct manifest *m = &b->s->manifest;
	struct build_tests *bt = xcalloc(1, sizeof(*bt));
	size_t i;
	int rc;

	*build_kind_data(b, &kind_datatest) = bt;
	bt->nnodes = m->n;
	bt->runs = xcalloc(m->n ? m->n : 1, sizeof(*bt->runs));
	for (i = 0; i < m->n; i++)
		bt->runs[i].observed = bt->runs[i].baseline = -1;
	bt->excluded = excluded_nodes(b, err, &rc);
	return rc;
}

/*
 * The DAG the executor walks: the manifest's, plus one scan job per
 * relation whose tests share a pass, plus (when models run too) edges
 * from each test to the models downstream of what it tests, so a failing
 * test skips them.
 */
static int tests_link(struct build *b, struct sluice_err *err)
{
	const struct manifest *m = &b->s->manifest;
	const struct dag *d = m->dag;
	struct build_tests *bt = tests_of(b);
	unsigned char *todo;
	struct dag *x;
	size_t i, k, nx, *cycle, ncycle;

	if (!(b->what & BUILD_NO_COMBINE) && combine_setting(b))
		make_groups(b);
	nx = m->n + bt->ngroups;
	x = dag_new(&b->arena, nx);
	for (i = 0; i < m->n; i++)
		for (k = 0; k < d->nchildren[i]; k++)
			dag_add_edge(x, i, d->children[i][k]);
	if (b->what & BUILD_MODELS) {
		unsigned char *seen = xcalloc(nx ? nx : 1, 1);
		size_t *stack = xmalloc(2 * (nx ? nx : 1) * sizeof(size_t));
		for (i = 0; i < m->n; i++)
			if (m->nodes[i].type == NODE_TEST && b->todo[i] == EXEC_RUN)
				add_blocking_edges(b, x, i, seen, stack);
		free(seen);
		free(stack);
	}
	for (i = 0; i < bt->ngroups; i++) {
		const struct scan_group *g = &bt->groups[i];
		dag_add_edge(x, g->tested, m->n + i);
		for (k = 0; k < g->n; k++)
			dag_add_edge(x, m->n + i, g->members[k]);
	}
	if (dag_check(x, &cycle, &ncycle))
		return err_set(err, SLUICE_EUSAGE, "data tests make a dependency cycle through '%s'",
			       cycle[0] < m->n ? m->nodes[cycle[0]].name : "a scan");
	todo = arena_alloc(&b->arena, nx ? nx : 1);
	memcpy(todo, b->todo, m->n);
	for (i = m->n; i < nx; i++)
		todo[i] = EXEC_RUN;
	build_set_exec_dag(b, x, todo, &kind_datatest);
	return 0;
}

/* ---- fingerprints ---- */

/*
 * What a test's result depends on besides its definition: the data it
 * reads. Walking up through views (and ephemeral models) to what holds
 * rows: each model's effective fingerprint, each table's version now (a
 * write outside sluice shows), each source's version.
 */
static void walk_inputs(const struct build *b, size_t idx, unsigned char *want, struct arena *a, struct val *out)
{
	const struct manifest *m = &b->s->manifest;
	const struct dag *d = m->dag;
	unsigned char *seen = xcalloc(m->n ? m->n : 1, 1);
	size_t *stack = xmalloc((m->n ? m->n : 1) * sizeof(size_t)), top = 0, k;

	for (k = 0; k < d->nparents[idx]; k++) {
		seen[d->parents[idx][k]] = 1;
		stack[top++] = d->parents[idx][k];
	}
	while (top) {
		size_t p = stack[--top];
		const struct node *n = &m->nodes[p];
		const char *v;
		int through = 0;
		if (n->type == NODE_SOURCE) {
			if (want)
				want[p] = 1;
			else {
				v = b->versions.version ? b->versions.version[p] : NULL;
				val_dict_set(a, out, n->unique_id, val_str(arena_strdup(a, v ? v : "unknown")));
			}
		} else if (n->type == NODE_MODEL) {
			through = n->mat == MAT_VIEW || n->mat == MAT_EPHEMERAL;
			if (want) {
				if (!through)
					want[p] = 1;
			} else {
				/* a view not run here shows what it reads now, as it would to a model */
				if (n->mat != MAT_EPHEMERAL)
					val_dict_set(a, out, n->unique_id, val_str(arena_strdup(a, build_effective(b, p, a))));
				if (!through) {
					v = b->runs[p].relation_version ? b->runs[p].relation_version
						: b->versions.version ? b->versions.version[p] : NULL;
					val_dict_set(a, out, arena_printf(a, "%s@relation", n->unique_id),
						     val_str(arena_strdup(a, v ? v : "unknown")));
				}
			}
		}
		if (through)
			for (k = 0; k < d->nparents[p]; k++)
				if (!seen[d->parents[p][k]]) {
					seen[d->parents[p][k]] = 1;
					stack[top++] = d->parents[p][k];
				}
	}
	free(seen);
	free(stack);
}

static void test_wants(const struct build *b, size_t idx, unsigned char *want)
{
	walk_inputs(b, idx, want, NULL, NULL);
}

static int cmp_str(const void *x, const void *y)
{
	return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* "model.p.x" -> "x"; "source.p.s.t" -> "s.t" */
static const char *short_id(const char *uid)
{
	const char *p = strchr(uid, '.');

	p = p ? strchr(p + 1, '.') : NULL;
	return p ? p + 1 : uid;
}

static void reason(struct arena *a, struct val *reasons, const char *text)
{
	val_list_push(a, reasons, val_str(arena_strdup(a, text)));
}

static void decide_test(struct build *b, size_t idx, struct arena *a)
{
	const struct node *n = &b->s->manifest.nodes[idx];
	struct test_run *tr = trun(b, idx);
	const struct val *prev = build_prev_record(b, idx), *pin = val_get(prev, "inputs");
	const char *status = val_get_str(prev, "status", NULL);
	const char **keys;
	struct buf text = BUF_INIT, norm = BUF_INIT, why = BUF_INIT;
	size_t i, nk;

	tr->inputs = val_dict_new();
	tr->reasons = val_list_new();
	walk_inputs(b, idx, NULL, a, &tr->inputs);
	buf_printf(&text, "sluice-test-1\n%s\n", n->test->definition);
	if (tr->logical)
		fp_normalize_sql(tr->logical, &norm);
	buf_puts(&text, norm.s);
	hash_hex(text.s, text.len, tr->fp_def);
	nk = tr->inputs.u.dict.n;
	keys = xcalloc(nk ? nk : 1, sizeof(char *));
	for (i = 0; i < nk; i++)
		keys[i] = tr->inputs.u.dict.keys[i];
	qsort(keys, nk, sizeof(char *), cmp_str);
	buf_reset(&text);
	buf_printf(&text, "%s\n", tr->fp_def);
	for (i = 0; i < nk; i++)
		buf_printf(&text, "%s=%s\n", keys[i], val_get_str(&tr->inputs, keys[i], ""));
	hash_hex(text.s, text.len, tr->fp);

	if (b->s->cli->force)
		reason(a, &tr->reasons, "--force");
	if (!prev) {
		reason(a, &tr->reasons, "never run");
	} else {
		if (!status || strcmp(status, "pass")) {
			buf_reset(&why);
			buf_printf(&why, "last run: %s", status ? status : "unknown");
			reason(a, &tr->reasons, why.s);
		}
		if (strcmp(val_get_str(prev, "def_fingerprint", ""), tr->fp_def))
			reason(a, &tr->reasons, "definition changed");
		for (i = 0; i < nk; i++) {
			const char *old = val_get_str(pin, keys[i], NULL), *now = val_get_str(&tr->inputs, keys[i], "");
			const char *at = strstr(keys[i], "@relation");
			if (old && !strcmp(old, now))
				continue;
			buf_reset(&why);
			if (at)
				buf_printf(&why, "relation of '%.*s' changed", (int)(at - short_id(keys[i])), short_id(keys[i]));
			else
				buf_printf(&why, "%s '%s' changed", !strncmp(keys[i], "source.", 7) ? "source" : "upstream",
					   short_id(keys[i]));
			reason(a, &tr->reasons, why.s);
		}
		if (!tr->reasons.u.list.n && strcmp(val_get_str(prev, "fingerprint", ""), tr->fp))
			reason(a, &tr->reasons, "fingerprint changed");
	}
	tr->reused = !tr->reasons.u.list.n;
	tr->decided = 1;
	free(keys);
	buf_release(&text);
	buf_release(&norm);
	buf_release(&why);
}

/* A shared scan may have decided already. */
static void test_decide(struct build *b, size_t idx, struct arena *a)
{
	struct test_run *tr = trun(b, idx);

	if (!tr->decided)
		decide_test(b, idx, a);
	b->runs[idx].decision.build = !tr->reused;
}

/* ---- results ---- */

/* A sample value: text as the database printed it, cut to CELL_MAX bytes on a character boundary. */
static json_t *cell_new(const char *v, size_t len)
{
	json_t *j;
	char *copy;
	size_t i;

	if (!v)
		return json_null();
	if (len > CELL_MAX) {
		len = CELL_MAX;
		while (len && ((unsigned char)v[len] & 0xc0) == 0x80)
			len--;
	}
	if ((j = json_stringn(v, len)))
		return j;
	/* not UTF-8 (a SQL_ASCII database): keep what is ASCII */
	copy = xmalloc(len + 1);
	for (i = 0; i < len; i++)
		copy[i] = (unsigned char)v[i] < 0x80 ? v[i] : '?';
	copy[len] = '\0';
	j = json_stringn(copy, len);
	free(copy);
	return j ? j : json_null();
}

struct failing_rows {
	json_t *sample;
	long long failures;
	int counted;                 /* the first column is failures_query's count */
};

static int failing_row(void *ud, const struct sluice_row *row)
{
	struct failing_rows *f = ud;
	json_t *o;
	size_t k = 0;

	if (f->counted) {
		if (!f->failures && row->ncols && row->values[0])
			f->failures = strtoll(row->values[0], NULL, 10);
		k = 1;
	}
	if (json_array_size(f->sample) >= SAMPLE_ROWS)
		return 0;
	o = json_object();
	for (; k < row->ncols; k++)
		json_object_set_new(o, row->names[k], cell_new(row->values[k], row->lens ? row->lens[k] : 0));
	json_array_append_new(f->sample, o);
	return 0;
}

struct one_row {
	char **vals;
	size_t n;
	int got;
};

static int one_row(void *ud, const struct sluice_row *row)
{
	struct one_row *r = ud;
	size_t k;

	if (r->got++)
		return 0;
	r->n = row->ncols;
	r->vals = xcalloc(row->ncols ? row->ncols : 1, sizeof(char *));
	for (k = 0; k < row->ncols; k++)
		r->vals[k] = row->values[k] ? xstrdup(row->values[k]) : NULL;
	return 0;
}

static void one_row_release(struct one_row *r)
{
	size_t k;

	for (k = 0; k < r->n; k++)
		free(r->vals[k]);
	free(r->vals);
	memset(r, 0, sizeof(*r));
}

/* "a=1, b=NULL, c=x" for one sample row, cut to a screen line. */
static char *row_line(json_t *row)
{
	struct buf b = BUF_INIT;
	const char *key;
	json_t *v;

	json_object_foreach(row, key, v) {
		if (b.len)
			buf_puts(&b, ", ");
		if (json_is_string(v))
			buf_printf(&b, "%s=%s", key, json_string_value(v));
		else if (json_is_null(v))
			buf_printf(&b, "%s=NULL", key);
		else {
			char *t = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
			buf_printf(&b, "%s=%s", key, t ? t : "?");
			free(t);
		}
	}
	if (b.len > 160) {
		b.len = 157;
		while (b.len && ((unsigned char)b.s[b.len] & 0xc0) == 0x80)
			b.len--;
		b.s[b.len] = '\0';
		buf_puts(&b, "...");
	}
	return buf_detach(&b, NULL);
}

/* Severity and thresholds turn failures into an outcome; the lines to show follow. */
static void finish_result(const struct datatest *t, struct test_run *tr)
{
	size_t i, shown = 0;

	if (!t->warn_only && datatest_threshold_hit(&t->error_if, tr->failures))
		tr->outcome = TO_FAIL;
	else if (datatest_threshold_hit(&t->warn_if, tr->failures))
		tr->outcome = TO_WARN;
	else
		tr->outcome = TO_PASS;
	tr->have_result = 1;
	if (tr->outcome == TO_PASS)
		return;
	if (tr->detail && *tr->detail)
		tr->lines[tr->nlines++] = xstrdup(tr->detail);
	if (!datatest_aggregate(t) && t->kind != DT_EQUAL_ROW_COUNT) {
		for (i = 0; i < json_array_size(tr->sample) && shown < SHOWN_ROWS; i++, shown++)
			tr->lines[tr->nlines++] = row_line(json_array_get(tr->sample, i));
		if (tr->failures > (long long)shown) {
			struct buf more = BUF_INIT;
			buf_printf(&more, "... %lld more failing row%s", tr->failures - (long long)shown,
				   tr->failures - (long long)shown == 1 ? "" : "s");
			tr->lines[tr->nlines++] = buf_detach(&more, NULL);
		}
	}
}

static void set_detail(struct test_run *tr, const struct buf *detail)
{
	free(tr->detail);
	tr->detail = detail->len ? xstrdup(detail->s) : NULL;
}

/* ---- running ---- */

static int run_query(struct build *b, const struct node *n, struct sluice_conn *c, const char *sql,
		     sluice_row_fn fn, void *ud, struct sluice_err *err)
{
	struct buf audit = BUF_INIT;
	int rc;

	build_audit_comment(b, n, &audit);
	rc = conn_send_query(c, audit.s, sql, fn, ud, err);
	buf_release(&audit);
	return rc;
}

static int run_exec(struct build *b, const struct node *n, struct sluice_conn *c, const char *sql,
		    struct sluice_err *err)
{
	struct buf audit = BUF_INIT;
	int rc;

	build_audit_comment(b, n, &audit);
	rc = conn_send_exec(c, audit.s, sql, NULL, err);
	buf_release(&audit);
	return rc;
}

/* The aggregate query of one test: SELECT <items> FROM rel. */
static int run_aggregate(struct build *b, const struct node *n, const struct dialect *d, struct sluice_conn *c,
			 struct test_run *tr, struct sluice_err *err)
{
	const struct datatest *t = n->test;
	struct buf sql = BUF_INIT, from = BUF_INIT, detail = BUF_INIT;
	struct one_row r = { 0 };
	json_t *sample = NULL;
	int rc;

	buf_puts(&sql, "SELECT ");
	datatest_scan_items(t, d, "v", &sql);
	datatest_from(t, tr->read[0], &from);
	buf_printf(&sql, " FROM %s AS sluice_rel", from.s);
	rc = run_query(b, n, c, sql.s, one_row, &r, err);
	if (!rc && r.n < datatest_scan_width(t))
		rc = err_set(err, SLUICE_EDB, "the test query returned no row");
	if (!rc)
		rc = datatest_eval_aggregate(t, (const char *const *)r.vals, tr->baseline, &tr->failures, &sample, &detail, err);
	if (!rc) {
		if (t->kind == DT_ROW_COUNT_DELTA && r.vals[0])
			tr->observed = strtoll(r.vals[0], NULL, 10);
		if (sample)
			json_array_append_new(tr->sample, sample);
		set_detail(tr, &detail);
	}
	one_row_release(&r);
	buf_release(&sql);
	buf_release(&from);
	buf_release(&detail);
	return rc;
}

/* count(*) of of, read as rel (a dt_reads member). */
static int count_rows(struct build *b, const struct node *n, struct sluice_conn *c, const struct datatest *t,
		      const struct node *of, const char *rel, long long *out, struct sluice_err *err)
{
	struct buf sql = BUF_INIT, from = BUF_INIT;
	struct one_row r = { 0 };
	int rc;

	datatest_from(t, rel, &from);
	buf_printf(&sql, "SELECT count(*) FROM %s AS sluice_rel", from.s);
	rc = run_query(b, n, c, sql.s, one_row, &r, err);
	if (!rc && (!r.n || !r.vals[0]))
		rc = err_set(err, SLUICE_EDB, "count(*) of %s returned nothing", of->display);
	if (!rc)
		*out = strtoll(r.vals[0], NULL, 10);
	one_row_release(&r);
	buf_release(&sql);
	buf_release(&from);
	return rc;
}

/* equal_row_count: each side counted on its own connection. */
static int run_equal_counts(struct build *b, struct exec_worker *w, const struct node *n, struct sluice_conn *c,
			    struct test_run *tr, struct sluice_err *err)
{
	const struct datatest *t = n->test;
	size_t oslot = conn_slot_of(&b->s->project, t->other->connection);
	struct sluice_conn *oc;
	long long a = 0, o = 0;
	int rc;

	if ((rc = count_rows(b, n, c, t, t->tested, tr->read[0], &a, err)))
		return rc;
	if (!(oc = build_worker_conn(b, w, t->other, err)))
		return err->code;
	exec_worker_busy(w, oc);
	rc = count_rows(b, n, oc, t, t->other, tr->read[1], &o, err);
	exec_worker_busy(w, c);
	if (rc == SLUICE_ECONN)
		conn_pool_drop(&b->conns, w->id, oslot);
	if (rc)
		return rc;
	tr->failures = a > o ? a - o : o - a;
	if (tr->failures) {
		json_t *row = json_object();
		struct buf detail = BUF_INIT;
		json_object_set_new(row, "row_count", json_integer(a));
		json_object_set_new(row, "to_row_count", json_integer(o));
		json_array_append_new(tr->sample, row);
		buf_printf(&detail, "%s has %lld rows, %s has %lld", t->tested->display, a, t->other->display, o);
		set_detail(tr, &detail);
		buf_release(&detail);
	}
	return 0;
}

/* The failing rows query of a row test, counted and sampled in one pass. */
static int run_failing(struct build *b, const struct node *n, const struct dialect *d, struct sluice_conn *c,
		       const char *fq, struct test_run *tr, struct sluice_err *err)
{
	struct buf sql = BUF_INIT;
	struct failing_rows f = { tr->sample, 0, 1 };
	int rc;

	d->failures_query(&sql, fq, SAMPLE_ROWS);
	rc = run_query(b, n, c, sql.s, failing_row, &f, err);
	if (!rc)
		tr->failures = f.failures;
	buf_release(&sql);
	return rc;
}

/* store_failures: the failing rows replace <schema>_audit.<test> in one transaction. */
static int store_failures(struct build *b, const struct node *n, const struct dialect *d, struct sluice_conn *c,
			  const char *fq, struct test_run *tr, struct sluice_err *err)
{
	const char *ident = n->test->short_name;
	char *side = plan_side_name(ident, "new");
	struct buf rel = BUF_INIT, side_rel = BUF_INIT, q = BUF_INIT;
	struct sluice_err ignored = SLUICE_ERR_INIT;
	int rc;

	dialect_relation(&rel, n->schema, ident);
	dialect_relation(&side_rel, n->schema, side);
	rc = d->begin ? run_exec(b, n, c, d->begin, err) : 0;
	if (!rc) {
		d->drop(&q, side_rel.s, REL_TABLE, 0);
		rc = run_exec(b, n, c, q.s, err);
	}
	if (!rc) {
		buf_reset(&q);
		d->create_table_as(&q, side_rel.s, fq, &n->config);
		rc = run_exec(b, n, c, q.s, err);
	}
	if (!rc) {
		buf_reset(&q);
		d->drop(&q, rel.s, REL_TABLE, 0);
		rc = run_exec(b, n, c, q.s, err);
	}
	if (!rc) {
		buf_reset(&q);
		d->rename(&q, side_rel.s, REL_TABLE, ident);
		rc = run_exec(b, n, c, q.s, err);
	}
	if (!rc && d->commit)
		rc = run_exec(b, n, c, d->commit, err);
	if (rc && rc != SLUICE_ECONN && d->rollback)
		c->drv->exec(c, d->rollback, NULL, &ignored);
	if (!rc) {
		free(tr->audit);
		tr->audit = xstrdup(rel.s);
		if (!datatest_aggregate(n->test) && n->test->kind != DT_EQUAL_ROW_COUNT) {
			buf_reset(&q);
			buf_printf(&q, "SELECT * FROM %s", rel.s);
			rc = run_failing(b, n, d, c, q.s, tr, err);
		}
	} else {
		err_prefix(err, "store_failures into %s", rel.s);
	}
	free(side);
	buf_release(&rel);
	buf_release(&side_rel);
	buf_release(&q);
	return rc;
}

struct column_names {
	const char **v;
	size_t n;
	struct arena *a;
};

static int column_name_row(void *ud, const struct sluice_row *row)
{
	struct column_names *c = ud;

	if (row->ncols && row->values[0]) {
		c->v = arena_grow(c->a, c->v, c->n, c->n + 1, sizeof(char *));
		c->v[c->n++] = arena_strdup(c->a, row->values[0]);
	}
	return 0;
}

/* Whether a column the test names is missing from the relation; 0 when every one is there. */
static int missing_column(struct build *b, const struct node *n, const struct dialect *d, struct sluice_conn *c,
			  const struct node *of, const char *col, const struct dt_place *at, struct arena *a,
			  struct sluice_err *err)
{
	struct column_names cols = { NULL, 0, a };
	struct sluice_err ignored = SLUICE_ERR_INIT;
	struct buf q = BUF_INIT;
	const char *s;
	size_t i;

	if (!col || !d->columns_query)
		return 0;
	for (s = col; *s; s++)   /* an expression is the database's to judge */
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '$'))
			return 0;
	d->columns_query(&q, of->schema, of->identifier);
	if (run_query(b, n, c, q.s, column_name_row, &cols, &ignored) || !cols.n) {
		buf_release(&q);
		return 0;
	}
	buf_release(&q);
	for (i = 0; i < cols.n; i++)
		if (!strcmp(cols.v[i], col))
			return 0;
	s = dag_suggest(col, cols.v, cols.n);
	err_set(err, SLUICE_EUSAGE, "%s:%d:%d: test %s: unknown column '%s' in %s%s%s%s", at->path, at->line, at->col,
		n->name, col, of->display, s ? " (did you mean '" : "", s ? s : "", s ? "'?)" : "");
	return 1;
}

/* Name the place of a failed test query; an undefined column is looked up to say which. */
static void explain_error(struct build *b, const struct node *n, const struct dialect *d, struct sluice_conn *c,
			  struct arena *a, struct sluice_err *err)
{
	const struct datatest *t = n->test;
	size_t i;

	if (err->code == SLUICE_ECANCEL || err->code == SLUICE_ECONN)
		return;
	if (!strcmp(err->sqlstate, "42703") && t->tested) {
		if (missing_column(b, n, d, c, t->tested, t->column, &t->column_at, a, err))
			return;
		if (t->kind == DT_FRESHER_THAN && missing_column(b, n, d, c, t->tested, t->field, &t->at, a, err))
			return;
		if (t->kind == DT_RELATIONSHIPS && missing_column(b, n, d, c, t->other, t->field, &t->at, a, err))
			return;
		for (i = 0; i < t->ncolumns; i++)
			if (missing_column(b, n, d, c, t->tested, t->columns[i], &t->at, a, err))
				return;
	}
	if (t->at.line)
		err_prefix(err, "%s:%d:%d: test %s", t->at.path, t->at.line, t->at.col, t->name);
	else
		err_prefix(err, "%s: test %s", t->at.path, t->name);
}

/* `limit`: the failing rows, counted, kept and shown, are at most that many (dbt's rule). */
static void limit_rows(const struct datatest *t, const struct dialect *d, struct buf *fq)
{
	long long limit = datatest_row_limit(t);
	struct buf q = BUF_INIT;

	if (limit < 0)
		return;
	d->sample_query(&q, fq->s, limit > INT_MAX ? INT_MAX : (int)limit);
	buf_reset(fq);
	buf_add(fq, q.s, q.len);
	buf_release(&q);
}

/* Run one test by itself on w's connection of the test. */
static int run_single(struct build *b, struct exec_worker *w, size_t idx, struct sluice_err *err)
{
	const struct node *n = &b->s->manifest.nodes[idx];
	const struct datatest *t = n->test;
	struct test_run *tr = trun(b, idx);
	const struct dialect *d = build_dialect(b, n);
	struct arena *a = build_worker_arena(b, w);
	struct sluice_conn *c;
	struct buf fq = BUF_INIT;
	int rc;

	if (!(c = build_worker_conn(b, w, n, err)))
		return err->code;
	ui_node_start(b->runs[idx].seq, b->ntodo, "test", n->name, n->unique_id);
	json_decref(tr->sample);
	tr->sample = json_array();
	if (t->file) {
		buf_puts(&fq, tr->sql);
	} else {
		struct dt_reads reads = reads_of(tr);
		datatest_failing_sql(t, d, &reads, tr->baseline, &fq);
	}
	limit_rows(t, d, &fq);
	exec_worker_busy(w, c);
	if (t->store_failures)
		rc = store_failures(b, n, d, c, fq.s, tr, err);
	else
		rc = 0;
	if (!rc && t->kind == DT_EQUAL_ROW_COUNT)
		rc = run_equal_counts(b, w, n, c, tr, err);
	else if (!rc && datatest_aggregate(t))
		rc = run_aggregate(b, n, d, c, tr, err);
	else if (!rc && !t->store_failures)
		rc = run_failing(b, n, d, c, fq.s, tr, err);
	if (rc)
		explain_error(b, n, d, c, a, err);
	exec_worker_busy(w, NULL);
	if (!rc)
		finish_result(t, tr);
	buf_release(&fq);
	return rc;
}

/* A shared scan: every member that must run is counted in one query. */
static int scan_job(struct build *b, struct exec_worker *w, size_t gi, int *reused, struct sluice_err *err)
{
	const struct manifest *m = &b->s->manifest;
	const struct scan_group *g = &tests_of(b)->groups[gi];
	const struct node *rel = &m->nodes[g->tested];
	struct arena *a = build_worker_arena(b, w);
	size_t *run = xcalloc(g->n, sizeof(size_t)), nrun = 0, k, col = 0, slot;
	const struct dialect *d;
	struct sluice_conn *c;
	struct buf sql = BUF_INIT;
	struct one_row r = { 0 };
	struct sluice_err serr = SLUICE_ERR_INIT;
	double started, finished;
	int rc;

	for (k = 0; k < g->n; k++) {
		size_t i = g->members[k];
		if (b->runs[i].failed_early)
			continue;
		decide_test(b, i, a);
		if (!trun(b, i)->reused)
			run[nrun++] = i;
	}
	if (nrun < 2) {
		/* nothing to share: a lone test runs its own query */
		*reused = nrun == 0;
		free(run);
		return 0;
	}
	slot = conn_slot_of(&b->s->project, rel->connection);
	d = build_dialect(b, rel);
	if (!(c = build_worker_conn(b, w, rel, &serr))) {
		free(run);
		return 0;   /* the tests try by themselves and report it */
	}
	buf_puts(&sql, "SELECT ");
	for (k = 0; k < nrun; k++) {
		char prefix[32];
		snprintf(prefix, sizeof(prefix), "t%zu", k);
		if (k)
			buf_puts(&sql, ",\n  ");
		datatest_scan_items(m->nodes[run[k]].test, d, prefix, &sql);
	}
	/* the members read one node: the first one's text is theirs */
	buf_printf(&sql, "\nFROM %s AS sluice_rel", trun(b, run[0])->read[0]);
	{
		/* rows that fail no test need no aggregate work (when no test needs every row) */
		struct buf where = BUF_INIT;
		for (k = 0; k < nrun; k++) {
			if (k)
				buf_puts(&where, " OR ");
			if (!datatest_scan_filter(m->nodes[run[k]].test, d, &where))
				break;
		}
		if (k == nrun)
			buf_printf(&sql, "\nWHERE %s", where.s);
		buf_release(&where);
	}
	started = now_seconds();
	exec_worker_busy(w, c);
	rc = run_query(b, &m->nodes[run[0]], c, sql.s, one_row, &r, &serr);
	finished = now_seconds();
	if (rc == SLUICE_ECANCEL) {
		exec_worker_busy(w, NULL);
		*err = serr;
		one_row_release(&r);
		buf_release(&sql);
		free(run);
		return rc;
	}
	if (rc == SLUICE_ECONN)
		conn_pool_drop(&b->conns, w->id, slot);
	for (k = 0; !rc && k < nrun; k++) {
		const struct node *n = &m->nodes[run[k]];
		const struct datatest *t = n->test;
		struct test_run *tr = trun(b, run[k]);
		struct buf detail = BUF_INIT;
		json_t *sample = NULL;
		json_decref(tr->sample);
		tr->sample = json_array();
		if (col + datatest_scan_width(t) > r.n) {
			rc = -1;
			break;
		}
		if (datatest_aggregate(t)) {
			if (datatest_eval_aggregate(t, (const char *const *)r.vals + col, tr->baseline, &tr->failures,
						    &sample, &detail, &serr)) {
				col += datatest_scan_width(t);
				buf_release(&detail);
				continue;   /* this one runs by itself */
			}
			if (t->kind == DT_ROW_COUNT_DELTA && r.vals[col])
				tr->observed = strtoll(r.vals[col], NULL, 10);
			if (sample)
				json_array_append_new(tr->sample, sample);
			set_detail(tr, &detail);
		} else {
			long long limit = datatest_row_limit(t);
			tr->failures = r.vals[col] ? strtoll(r.vals[col], NULL, 10) : 0;
			if (limit >= 0 && tr->failures > limit)
				tr->failures = limit;   /* as counted over the first limit failing rows */
			if (tr->failures) {
				struct buf fq = BUF_INIT, q = BUF_INIT;
				struct failing_rows f = { tr->sample, 0, 0 };
				struct sluice_err ignored = SLUICE_ERR_INIT;
				struct dt_reads reads = reads_of(tr);
				datatest_failing_sql(t, d, &reads, tr->baseline, &fq);
				d->sample_query(&q, fq.s, tr->failures < SAMPLE_ROWS ? (int)tr->failures : SAMPLE_ROWS);
				if (run_query(b, n, c, q.s, failing_row, &f, &ignored) == SLUICE_ECANCEL) {
					*err = ignored;
					rc = SLUICE_ECANCEL;
				}
				buf_release(&fq);
				buf_release(&q);
			}
		}
		col += datatest_scan_width(t);
		buf_release(&detail);
		if (rc)
			break;
		tr->combined = 1;
		tr->scan_started = started;
		tr->scan_finished = finished;
		finish_result(t, tr);
	}
	exec_worker_busy(w, NULL);
	one_row_release(&r);
	buf_release(&sql);
	free(run);
	return rc == SLUICE_ECANCEL ? rc : 0;
}

/* ---- state ---- */

/* The record of a test is its last result: status is the outcome when it has one. */
static void test_record(struct build *b, size_t idx, int ok, struct val *rec, struct arena *a)
{
	struct test_run *tr = trun(b, idx);
	long long baseline = tr->baseline;

	(void)ok;
	if (tr->outcome == TO_PASS || tr->outcome == TO_WARN || tr->outcome == TO_FAIL)
		val_dict_set(a, rec, "status", val_str(outcome_words[tr->outcome]));
	if (tr->decided) {
		val_dict_set(a, rec, "def_fingerprint", val_str(arena_strdup(a, tr->fp_def)));
		val_dict_set(a, rec, "inputs", tr->inputs);
	}
	if (tr->have_result) {
		val_dict_set(a, rec, "fingerprint", val_str(arena_strdup(a, tr->fp)));
		val_dict_set(a, rec, "failures", val_num((double)tr->failures));
	}
	/* row_count_delta's baseline moves only with a run that passed or warned */
	if (tr->observed >= 0 && (tr->outcome == TO_PASS || tr->outcome == TO_WARN))
		baseline = tr->observed;
	if (baseline >= 0)
		val_dict_set(a, rec, "observed_rows", val_num((double)baseline));
}

/* A test whose shared scan left its result only reports it; the others run their own query. */
static int test_job(struct build *b, struct exec_worker *w, size_t idx, struct sluice_err *err)
{
	const struct node *n = &b->s->manifest.nodes[idx];
	const struct datatest *t = n->test;
	struct test_run *tr = trun(b, idx);
	int rc;

	if (!tr->have_result && (rc = run_single(b, w, idx, err))) {
		tr->outcome = TO_ERROR;
		return rc;
	}
	if (tr->outcome == TO_FAIL)
		return err_set(err, SLUICE_EDB, "test %s failed: %lld failing row%s (error_if %s)", t->name, tr->failures,
			       tr->failures == 1 ? "" : "s", t->error_if.text);
	return 0;
}

/* run_single prints the START line once it has a connection; a result from a shared scan prints none. */
static void test_started(struct build *b, size_t idx)
{
	(void)b;
	(void)idx;
}

/* ---- reporting ---- */

static void test_finished(struct build *b, size_t idx, enum exec_status st)
{
	const struct node *n = &b->s->manifest.nodes[idx];
	struct build_tests *bt = tests_of(b);
	struct node_run *r = &b->runs[idx];
	struct test_run *tr = trun(b, idx);
	const char *word = "ERROR", *msg = run_err_msg(r);
	double elapsed = tr->combined ? tr->scan_finished - tr->scan_started : r->finished - r->started;

	switch (st) {
	case EXEC_REUSED:
		word = "REUSED";
		bt->reused++;
		break;
	case EXEC_SKIPPED:
		word = "SKIP";
		bt->skipped++;
		break;
	case EXEC_SUCCESS:
		word = tr->outcome == TO_WARN ? "WARN" : "PASS";
		*(tr->outcome == TO_WARN ? &bt->warn : &bt->pass) += 1;
		break;
	default:
		if (tr->outcome == TO_FAIL) {
			word = "FAIL";
			bt->fail++;
		} else {
			tr->outcome = TO_ERROR;
			bt->error++;
		}
		break;
	}
	if (!strcmp(word, "SKIP") || !strcmp(word, "ERROR"))
		ui_test_done(st == EXEC_SKIPPED ? 0 : r->seq, b->ntodo, word, 0, n->name, n->unique_id, elapsed,
			     (const char *const *)&msg, msg && *msg ? 1 : 0);
	else
		ui_test_done(r->seq, b->ntodo, word, tr->failures, n->name, n->unique_id, elapsed,
			     (const char *const *)tr->lines, tr->nlines);
}

static void tests_summary(const struct build *b, double elapsed)
{
	const struct build_tests *bt = tests_of(b);

	ui_test_summary(bt->pass, bt->warn, bt->fail, bt->error, bt->skipped, bt->reused, elapsed);
}

static void test_result(const struct build *b, size_t idx, json_t *o)
{
	const struct node *n = &b->s->manifest.nodes[idx];
	const struct datatest *t = n->test;
	const struct node_run *r = &b->runs[idx];
	const struct test_run *tr;
	json_t *def = json_object();
	const char *status;

	tr = trun(b, idx);
	status = r->status == EXEC_REUSED ? "reused" : r->status == EXEC_SKIPPED || r->status == EXEC_PENDING
		? "skipped" : outcome_words[tr->outcome];
	json_object_set_new(o, "status", json_string(status));
	json_object_set_new(o, "failures", tr->have_result && r->status != EXEC_REUSED ? json_integer(tr->failures)
										       : json_null());
	if (!strcmp(status, "pass"))
		json_object_set_new(o, "message", json_null());
	else if (!strcmp(status, "warn") || !strcmp(status, "fail")) {
		char msg[512];
		snprintf(msg, sizeof(msg), "Got %lld failing row%s, configured to %s if %s%s%s", tr->failures,
			 tr->failures == 1 ? "" : "s", !strcmp(status, "fail") ? "fail" : "warn",
			 !strcmp(status, "fail") ? t->error_if.text : t->warn_if.text, tr->detail ? ": " : "",
			 tr->detail ? tr->detail : "");
		json_object_set_new(o, "message", json_string(msg));
	}
	json_object_set_new(o, "samples", tr->sample && r->status != EXEC_REUSED ? json_incref(tr->sample) : json_array());
	if (tr->decided) {
		json_object_set_new(o, "reasons", json_from_val_new(&tr->reasons));
		json_object_set_new(o, "fingerprint", json_string(tr->fp));
	}
	json_object_set_new(o, "combined_scan", json_boolean(tr->combined));
	if (tr->combined) {
		json_object_set_new(o, "execution_time", json_real(tr->scan_finished - tr->scan_started));
	}
	json_object_set_new(o, "relation_name", t->tested ? json_string(t->tested->relation) : json_null());
	if (tr->audit)
		json_object_set_new(o, "audit_relation", json_string(tr->audit));
	json_object_set_new(def, "kind", json_string(t->kind_name));
	if (t->column)
		json_object_set_new(def, "column", json_string(t->column));
	json_object_set_new(def, "severity", json_string(t->warn_only ? "warn" : "error"));
	json_object_set_new(def, "warn_if", json_string(t->warn_if.text));
	json_object_set_new(def, "error_if", json_string(t->error_if.text));
	json_object_set_new(def, "path", json_string(t->at.path));
	if (t->at.line)
		json_object_set_new(def, "line", json_integer(t->at.line));
	json_object_set_new(o, "test", def);
}

static void tests_end(struct build *b)
{
	struct build_tests *bt = tests_of(b);
	size_t i, k;

	if (!bt)
		return;
	for (i = 0; i < bt->nnodes; i++) {
		struct test_run *tr = &bt->runs[i];
		json_decref(tr->sample);
		free(tr->detail);
		for (k = 0; k < tr->nlines; k++)
			free(tr->lines[k]);
		free(tr->sql);
		free(tr->logical);
		free(tr->read[0]);
		free(tr->read[1]);
		free(tr->audit);
	}
	for (i = 0; i < bt->ngroups; i++)
		free(bt->groups[i].members);
	free(bt->groups);
	free(bt->runs);
	free(bt->excluded);
	free(bt);
	*build_kind_data(b, &kind_datatest) = NULL;
}

const struct node_kind kind_datatest = {
	.name = "data test",
	.flags = KIND_RECORDS_RESULT,
	.what = BUILD_TESTS,
	.begin = tests_begin,
	.selected = test_selected,
	.link = tests_link,
	.summary = tests_summary,
	.end = tests_end,
	.extra_run = scan_job,
	.extra_name = scan_name,
	.prepare = compile_test,
	.wants = test_wants,
	.decide = test_decide,
	.run = test_job,
	.record = test_record,
	.started = test_started,
	.finished = test_finished,
	.result = test_result,
};
