/*
 * test_project.c: engine/project.c: what a project loads to (sluice.yml
 * keys and defaults, folder config, property YAML, sources, profiles and
 * targets, vars) and the exact message of every load error a user can hit.
 * The fixture tests/fixtures/project-basic is the dbt-shaped happy path;
 * error cases write small projects into a fresh temporary directory.
 * Not for templates themselves (test_template.c) or YAML syntax (test_yaml.c).
 */
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include "../../engine/project.h"
#include "../../engine/schedule.h"
#include "../../engine/util/buf.h"
#include "../../engine/util/fs.h"

static char fixture[PATH_MAX];   /* absolute path of tests/fixtures/project-basic */
static char home[PATH_MAX];      /* an empty $HOME, so ~/.sluice never leaks in */
static char tmp[PATH_MAX];       /* this test's scratch project */
static struct project P;
static struct sluice_err E;
static struct err_list W, L;     /* the warnings and errors of load_lists */

/* ---- helpers ---------------------------------------------------------------- */

static void put(const char *rel, const char *text)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	char path[2 * PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", tmp, rel);
	if (fs_mkdir_parent(path, &err) || fs_write_file(path, text, strlen(text), &err))
		fail_msg("%s", err.msg);
}

static int load_opts(const struct project_opts *o)
{
	project_release(&P);   /* a test may load several times */
	memset(&E, 0, sizeof(E));
	return project_load(&P, o, &E);
}

static int load_dir(const char *dir)
{
	struct project_opts o = { dir, NULL, NULL, NULL, NULL, NULL };

	return load_opts(&o);
}

static void load_ok(const char *dir)
{
	if (load_dir(dir))
		fail_msg("load failed: %s", E.msg);
}

/* Load the scratch project; expect a usage error and return its message. */
static const char *load_err(void)
{
	int rc = load_dir(tmp);

	if (!rc)
		fail_msg("expected an error, the project loaded");
	assert_int_equal(rc, SLUICE_EUSAGE);
	return E.msg;
}

/* Load the scratch project collecting warnings in W and errors in L; returns project_load's code. */
static int load_lists(void)
{
	struct project_opts o = { tmp, NULL, NULL, NULL, &L, &W };

	err_list_release(&W);
	err_list_release(&L);
	return load_opts(&o);
}

/* Load the scratch project; it loads with one warning: return it. */
static const char *load_warn(void)
{
	if (load_lists())
		fail_msg("load failed: %s", E.msg);
	assert_int_equal(L.total, 0);
	assert_int_equal(W.total, 1);
	return W.msg[0];
}

static void assert_tags(const struct val *cfg, const char *want)
{
	const struct val *t = val_get(cfg, "tags");
	struct buf b = BUF_INIT;

	assert_non_null(t);
	val_format(t, &b);
	assert_string_equal(b.s, want);
	buf_release(&b);
}

static void assert_repr(const struct val *v, const char *want)
{
	struct buf b = BUF_INIT;

	assert_non_null(v);
	val_repr(v, &b);
	assert_string_equal(b.s, want);
	buf_release(&b);
}

static int setup(void **state)
{
	(void)state;
	snprintf(tmp, sizeof(tmp), "/tmp/sluice_project_XXXXXX");
	if (!mkdtemp(tmp))
		return -1;
	memset(&P, 0, sizeof(P));
	unsetenv("SLUICE_PROFILES_DIR");
	unsetenv("SLUICE_TEST_TARGET");
	unsetenv("SLUICE_TEST_PASSWORD");
	unsetenv("SLUICE_TEST_SUFFIX");
	return 0;
}

static int teardown(void **state)
{
	struct sluice_err err = SLUICE_ERR_INIT;

	(void)state;
	project_release(&P);
	err_list_release(&W);
	err_list_release(&L);
	fs_remove_tree(tmp, &err);
	return 0;
}

static int group_setup(void **state)
{
	char path[PATH_MAX + 64];
	const char *slash = strrchr(__FILE__, '/');

	(void)state;
	/* __FILE__ is tests/unit/test_project.c, relative to the repo root */
	snprintf(path, sizeof(path), "%.*s/../fixtures/project-basic", (int)(slash - __FILE__), __FILE__);
	if (!realpath(path, fixture))
		return -1;
	snprintf(home, sizeof(home), "/tmp/sluice_home_XXXXXX");
	if (!mkdtemp(home))
		return -1;
	setenv("HOME", home, 1);
	return 0;
}

static int group_teardown(void **state)
{
	struct sluice_err err = SLUICE_ERR_INIT;

	(void)state;
	fs_remove_tree(home, &err);
	return 0;
}

/* ---- defaults and sluice.yml -------------------------------------------------- */

static void test_defaults(void **state)
{
	char real[PATH_MAX], cwd[PATH_MAX];
	const struct conn_cfg *c;
	struct model *m;

	(void)state;
	put("sluice.yml", "name: demo\n");
	put("models/a.sql", "select 1\n");
	/* project_dir defaults to "." and is made absolute */
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(tmp), 0);
	assert_int_equal(load_opts(NULL), 0);
	assert_int_equal(chdir(cwd), 0);
	assert_non_null(realpath(tmp, real));
	assert_string_equal(P.dir, real);
	assert_string_equal(P.name, "demo");
	assert_string_equal(P.profile, "demo");
	assert_int_equal(P.nmodel_paths, 1);
	assert_string_equal(P.model_paths[0], "models");
	assert_int_equal(P.ntest_paths, 1);
	assert_string_equal(P.test_paths[0], "tests");
	assert_non_null(strstr(P.target_path, "/target"));
	assert_int_equal(strncmp(P.target_path, real, strlen(real)), 0);
	assert_string_equal(P.target_path + strlen(real), "/target");
	assert_int_equal(P.on_run_start.kind, V_LIST);
	assert_int_equal(P.on_run_start.u.list.n, 0);
	assert_int_equal(P.on_run_end.u.list.n, 0);
	assert_int_equal(P.vars.kind, V_DICT);
	assert_int_equal(P.vars.u.dict.n, 0);
	assert_string_equal(val_get_str(&P.raw, "name", NULL), "demo");

	assert_int_equal(P.nmodels, 1);
	m = P.models[0];
	assert_string_equal(m->name, "a");
	assert_string_equal(m->unique_id, "model.demo.a");
	assert_string_equal(m->path, "models/a.sql");
	assert_string_equal(m->lang, "sql");
	assert_string_equal(m->src, "select 1\n");
	assert_int_equal(m->src_len, 9);
	assert_int_equal(m->nfqn, 2);
	assert_string_equal(m->fqn[0], "demo");
	assert_string_equal(m->fqn[1], "a");
	assert_int_equal(m->config.kind, V_DICT);
	assert_int_equal(m->config.u.dict.n, 0);
	assert_null(m->description);
	assert_int_equal(m->props.kind, V_NONE);
	assert_null(m->props_path);
	assert_ptr_equal(project_find_model(&P, "a"), m);
	assert_null(project_find_model(&P, "b"));
	assert_int_equal(P.nsources, 0);

	/* no profiles.yml anywhere: the embedded PostgreSQL */
	assert_null(P.target.profiles_path);
	assert_string_equal(P.target.profile, "demo");
	assert_string_equal(P.target.name, "dev");
	assert_string_equal(P.target.type, "postgres");
	assert_string_equal(P.target.schema, "public");
	assert_int_equal(P.target.threads, 4);
	assert_int_equal(P.target.nconns, 1);
	c = project_conn(&P, "default");
	assert_ptr_equal(c, &P.target.conns[0]);
	assert_repr(&c->settings,
		    "{'type': 'postgres', 'embedded': True, 'dbname': 'sluice', 'schema': 'public', 'threads': 4}");
	assert_null(project_conn(&P, "lake"));
}

static void test_missing_sluice_yml(void **state)
{
	char real[PATH_MAX], want[PATH_MAX + 128];

	(void)state;
	assert_non_null(realpath(tmp, real));
	snprintf(want, sizeof(want),
		 "no sluice.yml or dbt_project.yml in %s (run sluice in a project directory or pass --project-dir)", real);
	assert_string_equal(load_err(), want);
	/* a failed load leaves nothing to free, and releasing twice is harmless */
	project_release(&P);
	assert_int_equal(load_dir("/nonexistent/sluice-dir"), SLUICE_EUSAGE);
	assert_string_equal(E.msg, "project directory /nonexistent/sluice-dir: No such file or directory");
}

static void test_name_is_required_and_an_identifier(void **state)
{
	(void)state;
	put("sluice.yml", "profile: x\n");
	assert_string_equal(load_err(), "sluice.yml:1:1: missing required key 'name' (the project name)");
	put("sluice.yml", "# demo\nname: my-proj\n");
	assert_string_equal(load_err(),
			    "sluice.yml:2:7: name must be an identifier (letters, digits and _, not starting with a digit)");
	put("sluice.yml", "name: 1abc\n");
	assert_string_equal(load_err(),
			    "sluice.yml:1:7: name must be an identifier (letters, digits and _, not starting with a digit)");
	put("sluice.yml", "name: [a]\n");
	assert_string_equal(load_err(),
			    "sluice.yml:1:7: name must be an identifier (letters, digits and _, not starting with a digit)");
	put("sluice.yml", "");
	assert_string_equal(load_err(), "sluice.yml: the file is empty (it needs at least 'name:')");
	put("sluice.yml", "- name: x\n");
	assert_string_equal(load_err(), "sluice.yml:1:1: sluice.yml must be a map of settings");
	put("sluice.yml", "name: _ok9\n");
	load_ok(tmp);
}

static void test_sluice_yml_yaml_errors(void **state)
{
	(void)state;
	put("sluice.yml", "name: demo\nvars:\n  a: 1\n  a: 2\n");
	assert_string_equal(load_warn(), "sluice.yml:4:3: duplicate key 'a' (first at line 3): the last value is used");
	assert_int_equal(val_get(&P.vars, "a")->u.num, 2);
	put("sluice.yml", "name: demo\nmodel-paths: [models\n");
	assert_string_equal(load_err(),
			    "sluice.yml:3:1: did not find expected ',' or ']' (while parsing a flow sequence at line 2)");
}

static void test_wrong_types_are_located(void **state)
{
	(void)state;
	put("sluice.yml", "name: demo\nmodel-paths: {a: 1}\n");
	assert_string_equal(load_err(), "sluice.yml:2:14: model-paths must be a path or a list of paths");
	put("sluice.yml", "name: demo\nmodel-paths:\n  - models\n  - [x]\n");
	assert_string_equal(load_err(), "sluice.yml:4:5: model-paths must be a path or a list of paths");
	put("sluice.yml", "name: demo\ntest_paths: 5\n");
	assert_string_equal(load_err(), "sluice.yml:2:13: test_paths must be a path or a list of paths");
	put("sluice.yml", "name: demo\nmodel-paths: /abs/models\n");
	assert_string_equal(load_err(), "sluice.yml:2:14: model-paths must be relative to the project directory");
	put("sluice.yml", "name: demo\ntarget-path: [a]\n");
	assert_string_equal(load_err(), "sluice.yml:2:14: target-path must be a path");
	put("sluice.yml", "name: demo\non-run-start: {a: b}\n");
	assert_string_equal(load_err(), "sluice.yml:2:15: on-run-start must be a string or a list of strings");
	put("sluice.yml", "name: demo\non-run-end: [\"ok\", [x]]\n");
	assert_string_equal(load_err(), "sluice.yml:2:20: on-run-end must be a string or a list of strings");
	put("sluice.yml", "name: demo\nvars: [1]\n");
	assert_string_equal(load_err(), "sluice.yml:2:7: vars must be a map");
	put("sluice.yml", "name: demo\nprofile: [x]\n");
	assert_string_equal(load_err(), "sluice.yml:2:10: profile must be a profile name");
	put("sluice.yml", "name: demo\nmodels: [x]\n");
	assert_string_equal(load_err(), "sluice.yml:2:9: expected a map of folders and +config keys");
	put("sluice.yml", "name: demo\nmodels:\n  demo:\n    +tags: {a: 1}\n");
	assert_string_equal(load_err(), "sluice.yml:4:12: tags must be a string or a list of strings");
	put("sluice.yml", "name: demo\nmodels:\n  demo:\n    sub:\n      tags: [a, [b]]\n");
	assert_string_equal(load_err(), "sluice.yml:5:17: tags must be strings");
}

static void test_underscore_spellings_and_paths(void **state)
{
	(void)state;
	put("sluice.yml", "name: demo\nmodel_paths: [./src/, more]\ntarget_path: out/t\n"
			  "on_run_start: \"select 1\"\nversion: 2\nrequire-dbt-version: '>=1.0'\n");
	put("src/x.sql", "select 1");
	put("more/deep/y.sql", "select 2");
	put("models/ignored.sql", "select 3");
	load_ok(tmp);
	assert_int_equal(P.nmodel_paths, 2);
	assert_string_equal(P.model_paths[0], "src");
	assert_string_equal(P.model_paths[1], "more");
	assert_string_equal(P.target_path + strlen(P.dir), "/out/t");
	assert_int_equal(P.on_run_start.u.list.n, 1);
	assert_int_equal(P.nmodels, 2);
	assert_string_equal(P.models[0]->path, "more/deep/y.sql");
	assert_int_equal(P.models[0]->nfqn, 3);
	assert_string_equal(P.models[0]->fqn[1], "deep");
	assert_string_equal(P.models[1]->path, "src/x.sql");
	project_release(&P);

	put("sluice.yml", "name: demo\ntarget-path: /var/tmp/sluice-target\nmodel-paths: nowhere\n");
	load_ok(tmp);
	assert_string_equal(P.target_path, "/var/tmp/sluice-target");
	assert_int_equal(P.nmodels, 0);   /* a missing model path is not an error */
}

/* ---- the fixture: folder config, properties, sources, profile -------------------- */

static void test_fixture_models_and_paths(void **state)
{
	const char *want[] = {
		"models/export.sh", "models/marts/finance/revenue.sql", "models/marts/orders.sql",
		"models/staging/stg_patients.sql", "models/staging/stg_visits.sql",
	};
	struct model *m;
	size_t i;

	(void)state;
	load_ok(fixture);
	assert_string_equal(P.name, "clinic");
	assert_string_equal(P.profile, "clinic_pg");
	assert_string_equal(P.target_path + strlen(P.dir), "/build/out");
	/* sorted by path; shell models in, dot files/dirs and .txt skipped */
	assert_int_equal(P.nmodels, 5);
	for (i = 0; i < 5; i++)
		assert_string_equal(P.models[i]->path, want[i]);
	assert_string_equal(P.models[0]->lang, "sh");
	assert_string_equal(P.models[1]->lang, "sql");
	m = project_find_model(&P, "revenue");
	assert_non_null(m);
	assert_int_equal(m->nfqn, 4);
	assert_string_equal(m->fqn[0], "clinic");
	assert_string_equal(m->fqn[1], "marts");
	assert_string_equal(m->fqn[2], "finance");
	assert_string_equal(m->fqn[3], "revenue");
	assert_string_equal(m->src, "select * from {{ ref('orders') }}\n");
	assert_null(project_find_model(&P, "ignored"));
	assert_null(project_find_model(&P, "notes"));

	/* hooks are kept as templates, as a list */
	assert_int_equal(P.on_run_start.u.list.n, 1);
	assert_string_equal(P.on_run_start.u.list.items[0].u.str.s,
			    "create schema if not exists {{ target.schema }}_audit");
	assert_int_equal(P.on_run_end.u.list.n, 1);
	assert_string_equal(P.on_run_end.u.list.items[0].u.str.s,
			    "grant usage on schema {{ target.schema }} to reporter");
	/* models: is kept raw (with its + keys), but rendered */
	assert_non_null(val_get(val_get(&P.models_config, "clinic"), "+materialized"));
	assert_non_null(val_get(&P.raw, "config-version"));
}

static void test_fixture_folder_config(void **state)
{
	const struct val *c;

	(void)state;
	load_ok(fixture);
	/* project level + marts + finance + the model's own key + property config */
	c = &project_find_model(&P, "revenue")->config;
	assert_repr(c, "{'materialized': 'incremental', 'tags': ['base', 'mart', 'fin', 'rev', 'extra'], "
		       "'enabled': True, 'meta': {'owner': 'finance'}, 'schema': 'dev_dev', 'unique_key': 'id'}");
	c = &project_find_model(&P, "orders")->config;
	assert_repr(c, "{'materialized': 'table', 'tags': ['base', 'mart'], 'enabled': True, "
		       "'meta': {'owner': 'finance'}}");
	/* hooks are not rendered; the property config overrides and adds tags */
	c = &project_find_model(&P, "stg_patients")->config;
	assert_repr(c, "{'materialized': 'table', 'tags': ['base', 'stg', 'pii'], 'enabled': True, "
		       "'schema': 'staging', 'pre_hook': 'analyze {{ this }}'}");
	c = &project_find_model(&P, "stg_visits")->config;
	assert_string_equal(val_get_str(c, "materialized", NULL), "view");
	assert_tags(c, "['base', 'stg']");
}

static void test_fixture_templates_see_vars_and_target(void **state)
{
	(void)state;
	setenv("SLUICE_TEST_SUFFIX", "blue", 1);
	load_ok(fixture);
	assert_string_equal(val_get_str(&project_find_model(&P, "revenue")->config, "schema", NULL), "blue_dev");
	assert_string_equal(val_get_str(&P.vars, "suffix", NULL), "blue");
}

static void test_fixture_properties(void **state)
{
	struct model *m;

	(void)state;
	load_ok(fixture);
	m = project_find_model(&P, "stg_patients");
	assert_string_equal(m->description, "Patients, cleaned.");
	assert_string_equal(m->props_path, "models/staging/_staging.yml");
	assert_int_equal(m->props_line, 27);
	assert_int_equal(m->props.kind, V_DICT);
	assert_string_equal(val_get_str(&m->props, "name", NULL), "stg_patients");
	assert_non_null(val_get(&m->props, "columns"));
	m = project_find_model(&P, "revenue");
	assert_string_equal(m->description, "Revenue by day.");
	assert_string_equal(m->props_path, "models/marts/_marts.yaml");
	assert_int_equal(m->props_line, 3);
	m = project_find_model(&P, "orders");
	assert_null(m->description);
	assert_null(m->props_path);
}

static void test_fixture_sources(void **state)
{
	struct source_table *t;

	(void)state;
	load_ok(fixture);
	assert_int_equal(P.nsources, 3);
	assert_string_equal(P.sources[0]->unique_id, "source.clinic.billing.invoices");
	assert_string_equal(P.sources[1]->unique_id, "source.clinic.emr.patients");
	assert_string_equal(P.sources[2]->unique_id, "source.clinic.emr.visits");

	t = project_find_source(&P, "emr", "visits");
	assert_ptr_equal(t, P.sources[2]);
	assert_string_equal(t->source_name, "emr");
	assert_string_equal(t->name, "visits");
	assert_string_equal(t->schema, "raw_emr");
	assert_string_equal(t->identifier, "visit_log");
	assert_string_equal(t->connection, "warehouse");
	assert_null(t->database);
	assert_string_equal(t->description, "One row per visit.");
	assert_string_equal(t->path, "models/staging/_staging.yml");
	assert_int_equal(t->line, 13);
	/* source keys, source config, table keys (win), table config; tags add up */
	assert_repr(&t->config, "{'loaded_at_field': 'visit_ts', 'tags': ['raw', 'pii'], "
				"'change_detection': 'updated_at', 'enabled': True}");
	assert_string_equal(val_get_str(&t->props, "identifier", NULL), "visit_log");

	t = project_find_source(&P, "emr", "patients");
	assert_string_equal(t->identifier, "patients");
	assert_null(t->description);
	assert_repr(&t->config, "{'loaded_at_field': '_loaded_at', 'tags': ['raw'], 'change_detection': 'updated_at'}");

	t = project_find_source(&P, "billing", "invoices");
	assert_string_equal(t->schema, "billing");           /* defaults to the source name */
	assert_string_equal(t->database, "finance_db");
	assert_null(t->connection);
	assert_int_equal(t->config.u.dict.n, 0);
	assert_null(project_find_source(&P, "billing", "nope"));
	assert_null(project_find_source(&P, "emr.visits", ""));
}

static void test_fixture_profile(void **state)
{
	char want[PATH_MAX + 32];
	const struct conn_cfg *c;

	(void)state;
	load_ok(fixture);
	snprintf(want, sizeof(want), "%s/profiles.yml", fixture);
	assert_string_equal(P.target.profiles_path, want);
	assert_string_equal(P.target.profile, "clinic_pg");
	assert_string_equal(P.target.name, "dev");
	assert_string_equal(P.target.type, "postgres");
	assert_string_equal(P.target.schema, "analytics");
	assert_int_equal(P.target.threads, 8);
	assert_int_equal(P.target.nconns, 3);
	/* conns[0] is the output minus connections:, then by name */
	assert_string_equal(P.target.conns[0].name, "default");
	assert_repr(&P.target.conns[0].settings,
		    "{'type': 'postgres', 'host': 'localhost', 'port': 5432, 'user': 'clinic', "
		    "'password': 'not-set', 'dbname': 'clinic', 'schema': 'analytics', 'threads': 8}");
	assert_string_equal(P.target.conns[1].name, "lake");
	assert_string_equal(P.target.conns[2].name, "warehouse");
	c = project_conn(&P, "warehouse");
	/* a connection inherits nothing; var() sees the project-scoped value */
	assert_repr(&c->settings, "{'type': 'odbc', 'dsn': 'scoped-dsn'}");
	assert_repr(&project_conn(&P, "lake")->settings, "{'type': 's3', 'bucket': 'lake'}");
	assert_null(project_conn(&P, "other"));
}

static void test_fixture_target_from_env_and_option(void **state)
{
	struct project_opts o = { NULL, NULL, "dev", NULL, NULL, NULL };

	(void)state;
	setenv("SLUICE_TEST_TARGET", "ci", 1);
	setenv("SLUICE_TEST_PASSWORD", "s3cret", 1);
	load_ok(fixture);
	/* target: is rendered; an embedded output without type is postgres */
	assert_string_equal(P.target.name, "ci");
	assert_string_equal(P.target.type, "postgres");
	assert_string_equal(P.target.schema, "ci");
	assert_int_equal(P.target.threads, 4);
	assert_int_equal(P.target.nconns, 1);
	assert_repr(&P.target.conns[0].settings, "{'embedded': True, 'schema': 'ci', 'type': 'postgres'}");
	project_release(&P);
	/* --target beats the profile's target: */
	o.project_dir = fixture;
	assert_int_equal(load_opts(&o), 0);
	assert_string_equal(P.target.name, "dev");
	assert_string_equal(val_get_str(&P.target.conns[0].settings, "password", NULL), "s3cret");
	project_release(&P);
	o.target = "prod";
	assert_int_equal(load_opts(&o), SLUICE_EUSAGE);
	assert_string_equal(E.msg, "--target prod: profile 'clinic_pg' in profiles.yml has no such output (outputs: dev, ci)");
}

/* ---- folder config rules ----------------------------------------------------------- */

static void test_folder_config_rules(void **state)
{
	const struct val *c;

	(void)state;
	put("sluice.yml",
	    "name: demo\n"
	    "models:\n"
	    "  +persist-docs: {relation: true}\n"      /* top level applies to everything */
	    "  demo:\n"
	    "    materialized: view\n"                  /* no '+', not a map: config */
	    "    tags: a\n"
	    "    +pre-hook: [\"select 1\", \"select {{ this }}\"]\n"
	    "    a:\n"                                  /* no '+', a map: a folder */
	    "      +materialized: table\n"
	    "      +tags: [b, a, c]\n"
	    "      +meta: {owner: x}\n"                 /* '+' map: config, not a folder */
	    "      b:\n"
	    "        +tags: d\n"
	    "        leaf:\n"                           /* model-level key */
	    "          +tags: [e]\n"
	    "          full-refresh: false\n"
	    "    other:\n"
	    "      leaf:\n"                             /* a different folder: no effect */
	    "        +materialized: ephemeral\n"
	    "    b:\n"                                  /* names match by path, not by folder name */
	    "      +schema: wrong\n");
	put("models/a/b/leaf.sql", "select 1");
	put("models/a/b/sibling.sql", "select 1");
	put("models/b/top.sql", "select 1");
	put("models/root.sql", "select 1");
	load_ok(tmp);
	c = &project_find_model(&P, "leaf")->config;
	assert_repr(c, "{'persist_docs': {'relation': True}, 'materialized': 'table', 'tags': ['a', 'b', 'c', 'd', 'e'], "
		       "'pre_hook': ['select 1', 'select {{ this }}'], 'meta': {'owner': 'x'}, 'full_refresh': False}");
	c = &project_find_model(&P, "sibling")->config;
	assert_tags(c, "['a', 'b', 'c', 'd']");
	assert_null(val_get(c, "full_refresh"));
	c = &project_find_model(&P, "top")->config;
	assert_string_equal(val_get_str(c, "schema", NULL), "wrong");
	assert_string_equal(val_get_str(c, "materialized", NULL), "view");
	c = &project_find_model(&P, "root")->config;
	assert_repr(c, "{'persist_docs': {'relation': True}, 'materialized': 'view', 'tags': ['a'], "
		       "'pre_hook': ['select 1', 'select {{ this }}']}");
}

static void test_property_config_overrides(void **state)
{
	const struct val *c;

	(void)state;
	put("sluice.yml", "name: demo\nmodels:\n  demo:\n    +materialized: view\n    +tags: [x]\n    +schema: s\n");
	put("models/m.sql", "select 1");
	put("models/props.yml", "version: 2\nmodels:\n  - name: m\n    config:\n      materialized: table\n"
				"      tags: [y, x]\n      post-hook: \"select 1\"\n");
	load_ok(tmp);
	c = &project_find_model(&P, "m")->config;
	assert_repr(c, "{'materialized': 'table', 'tags': ['x', 'y'], 'schema': 's', 'post_hook': 'select 1'}");
}

/* ---- property YAML errors ------------------------------------------------------------- */

static void test_properties_for_unknown_model(void **state)
{
	(void)state;
	put("sluice.yml", "name: demo\n");
	put("models/stg_orders.sql", "select 1");
	put("models/customers.sql", "select 1");
	/* a warning, as in dbt: a model removed, its YAML left behind */
	put("models/schema.yml", "version: 2\nmodels:\n  - name: customers\n    description: kept\n  - name: stg_order\n");
	assert_string_equal(load_warn(),
			    "models/schema.yml:5:11: properties for unknown model 'stg_order' (did you mean 'stg_orders'?): ignored");
	assert_string_equal(project_find_model(&P, "customers")->description, "kept");
	put("models/schema.yml", "version: 2\nmodels:\n  - name: zzzzzz\n");
	assert_string_equal(load_warn(), "models/schema.yml:3:11: properties for unknown model 'zzzzzz': ignored");
}

static void test_model_described_twice(void **state)
{
	(void)state;
	put("sluice.yml", "name: demo\n");
	put("models/m.sql", "select 1");
	put("models/a.yml", "version: 2\nmodels:\n  - name: m\n    description: one\n");
	put("models/sub/b.yml", "models:\n  - description: two\n    name: m\n");
	assert_string_equal(load_err(), "models/sub/b.yml:3:11: model 'm' is already described at models/a.yml:3");
}

static void test_property_shape_errors(void **state)
{
	(void)state;
	put("sluice.yml", "name: demo\n");
	put("models/m.sql", "select 1");
	put("models/a.yml", "models:\n  - description: no name\n");
	assert_string_equal(load_err(), "models/a.yml:2:5: model entry needs a name");
	put("models/a.yml", "models: {name: m}\n");
	assert_string_equal(load_err(), "models/a.yml:1:9: models must be a list of entries with name:");
	put("models/a.yml", "models:\n  - name: m\n    config: [table]\n");
	assert_string_equal(load_err(), "models/a.yml:3:13: config must be a map");
	put("models/a.yml", "models:\n  - name: m\n    config:\n      tags: {a: b}\n");
	assert_string_equal(load_err(), "models/a.yml:4:13: tags must be a string or a list of strings");
	put("models/a.yml", "- just a list\n");
	assert_string_equal(load_err(), "models/a.yml:1:1: expected a map with version: 2, models: and sources:");
	put("models/a.yml", "sources:\n  - name: s\n    tables: {name: t}\n");
	assert_string_equal(load_err(), "models/a.yml:3:13: tables must be a list of {name: ...}");
	put("models/a.yml", "sources:\n  - name: s\n    schema: [x]\n");
	assert_string_equal(load_err(), "models/a.yml:3:13: schema must be text");
	put("models/a.yml", "models:\n  - name: m\n  bad\n");
	assert_string_equal(load_err(), "models/a.yml:4:1: could not find expected ':' (while scanning a simple key at line 3)");
	/* an empty property file is fine */
	put("models/a.yml", "# nothing yet\n");
	load_ok(tmp);
}

static void test_duplicate_source_table(void **state)
{
	(void)state;
	put("sluice.yml", "name: demo\n");
	put("models/a.yml", "sources:\n  - name: lake\n    tables:\n      - name: t1\n      - name: t2\n");
	put("models/b.yml", "version: 2\nsources:\n  - name: lake\n    tables:\n      - name: t2\n");
	assert_string_equal(load_err(), "models/b.yml:5:15: source table 'lake.t2' is already defined at models/a.yml:5");
	/* the same source name in two files with different tables is fine */
	put("models/b.yml", "sources:\n  - name: lake\n    tables:\n      - name: t3\n");
	load_ok(tmp);
	assert_int_equal(P.nsources, 3);
	assert_string_equal(P.sources[2]->unique_id, "source.demo.lake.t3");
}

static void test_duplicate_model_name(void **state)
{
	(void)state;
	put("sluice.yml", "name: demo\n");
	put("models/b/x.sql", "select 2");
	put("models/a/x.sql", "select 1");
	assert_string_equal(load_err(), "duplicate model name 'x': models/a/x.sql and models/b/x.sql");
	/* overlapping model paths do not count a file twice */
	put("sluice.yml", "name: demo\nmodel-paths: [models/a, models]\n");
	{
		char path[PATH_MAX + 32];
		snprintf(path, sizeof(path), "%s/models/b/x.sql", tmp);
		assert_int_equal(remove(path), 0);
	}
	load_ok(tmp);
	assert_int_equal(P.nmodels, 1);
}

/* With an error list, every model file and properties entry is checked: one load shows them all. */
static void test_errors_collected(void **state)
{
	(void)state;
	put("sluice.yml", "name: demo\n");
	put("models/a/x.sql", "select 1");
	put("models/b/x.sql", "select 2");
	put("models/m.sql", "select 3");
	put("models/a.yml", "models:\n  - description: no name\n  - name: m\n    config: [table]\n"
	    "  - name: x\n    description: fine\n");
	put("models/b.yml", "models:\n  - name: m\n  bad\n");
	assert_int_equal(load_lists(), 0);
	assert_int_equal(L.total, 4);
	assert_string_equal(L.msg[0], "duplicate model name 'x': models/a/x.sql and models/b/x.sql");
	assert_string_equal(L.msg[1], "models/a.yml:2:5: model entry needs a name");
	assert_string_equal(L.msg[2], "models/a.yml:4:13: config must be a map");
	assert_string_equal(L.msg[3], "models/b.yml:4:1: could not find expected ':' (while scanning a simple key at line 3)");
	/* the first of two files stays, and entries after a bad one are read */
	assert_string_equal(project_find_model(&P, "x")->path, "models/a/x.sql");
	assert_string_equal(project_find_model(&P, "x")->description, "fine");
	/* what makes going on meaningless still stops at once */
	put("sluice.yml", "name: demo\nmodel-paths: [models\n");
	assert_int_equal(load_lists(), SLUICE_EUSAGE);
	assert_int_equal(L.total, 0);
	err_list_release(&W);
	err_list_release(&L);
}

/* ---- profiles ---------------------------------------------------------------------------- */

static void put_profile(const char *rel, const char *target_name)
{
	char text[256];

	snprintf(text, sizeof(text), "demo:\n  target: t\n  outputs:\n    t:\n      type: postgres\n      schema: %s\n",
		 target_name);
	put(rel, text);
}

static void test_profiles_search_order(void **state)
{
	char envdir[PATH_MAX + 8], optdir[PATH_MAX + 8], homedir[PATH_MAX + 8];
	struct project_opts o = { tmp, NULL, NULL, NULL, NULL, NULL };

	(void)state;
	put("sluice.yml", "name: demo\n");
	snprintf(homedir, sizeof(homedir), "%s/.sluice", home);
	/* $HOME/.sluice is last */
	{
		struct sluice_err err = SLUICE_ERR_INIT;
		char f[PATH_MAX + 32];
		snprintf(f, sizeof(f), "%s/profiles.yml", homedir);
		const char *text = "demo:\n  target: t\n  outputs:\n    t: {type: postgres, schema: home}\n";
		assert_int_equal(fs_mkdir_parent(f, &err), 0);
		assert_int_equal(fs_write_file(f, text, strlen(text), &err), 0);
	}
	load_ok(tmp);
	assert_string_equal(P.target.schema, "home");
	project_release(&P);
	/* then the project dir */
	put_profile("profiles.yml", "project");
	load_ok(tmp);
	assert_string_equal(P.target.schema, "project");
	assert_string_equal(P.target.profiles_path + strlen(P.dir), "/profiles.yml");
	project_release(&P);
	/* then $SLUICE_PROFILES_DIR */
	put_profile("env/profiles.yml", "env");
	snprintf(envdir, sizeof(envdir), "%s/env", tmp);
	setenv("SLUICE_PROFILES_DIR", envdir, 1);
	load_ok(tmp);
	assert_string_equal(P.target.schema, "env");
	project_release(&P);
	/* then --profiles-dir */
	put_profile("opt/profiles.yml", "opt");
	snprintf(optdir, sizeof(optdir), "%s/opt", tmp);
	o.profiles_dir = optdir;
	assert_int_equal(load_opts(&o), 0);
	assert_string_equal(P.target.schema, "opt");
	project_release(&P);
	/* an explicit --profiles-dir without a profiles.yml is an error, not a fallback */
	o.profiles_dir = "/nonexistent/dir";
	assert_int_equal(load_opts(&o), SLUICE_EUSAGE);
	assert_string_equal(E.msg, "--profiles-dir /nonexistent/dir: no profiles.yml there");
	{
		struct sluice_err err = SLUICE_ERR_INIT;
		fs_remove_tree(homedir, &err);
	}
}

static void test_profile_errors(void **state)
{
	(void)state;
	put("sluice.yml", "name: demo\nprofile: warehouse\n");
	put("profiles.yml", "config: {x: 1}\ndemo: {target: a, outputs: {a: {type: postgres}}}\nother: {}\n");
	assert_string_equal(load_err(), "profiles.yml: no profile 'warehouse' (available: demo, other)");
	put("profiles.yml", "# empty\n");
	assert_string_equal(load_err(), "profiles.yml: no profile 'warehouse' (available: none)");
	put("profiles.yml", "warehouse:\n  target: prod\n  outputs:\n    dev: {type: postgres}\n    ci: {type: postgres}\n");
	assert_string_equal(load_err(), "profiles.yml:2:11: profile 'warehouse' has no output 'prod' (outputs: dev, ci)");
	put("profiles.yml", "warehouse:\n  outputs:\n    dev: {type: postgres}\n");
	assert_string_equal(load_err(), "profiles.yml:2:3: profile 'warehouse' has no output 'default' (outputs: dev)");
	put("profiles.yml", "warehouse:\n  target: dev\n");
	assert_string_equal(load_err(), "profiles.yml:2:3: profile 'warehouse' needs outputs: (a map of targets)");
	put("profiles.yml", "warehouse:\n  target: dev\n  outputs:\n    dev:\n      host: h\n");
	assert_string_equal(load_err(), "profiles.yml:5:7: output 'dev' has no type");
	put("profiles.yml", "warehouse:\n  target: dev\n  outputs:\n    dev:\n      type: postgres\n"
			    "      connections:\n        lake:\n          bucket: b\n");
	assert_string_equal(load_err(), "profiles.yml:8:11: connection 'lake' has no type");
	put("profiles.yml", "warehouse:\n  target: dev\n  outputs:\n    dev:\n      type: postgres\n"
			    "      connections:\n        default: {type: s3}\n");
	assert_string_equal(load_err(), "profiles.yml:7:9: 'default' is the output's own connection: pick another name");
	put("profiles.yml", "warehouse:\n  target: dev\n  outputs:\n    dev:\n      type: postgres\n      threads: 0\n");
	assert_string_equal(load_err(), "profiles.yml:6:16: threads must be a whole number from 1 to 64");
	put("profiles.yml", "warehouse:\n  target: dev\n  outputs:\n    dev:\n      type: postgres\n      threads: 65\n");
	assert_string_equal(load_err(), "profiles.yml:6:16: threads must be a whole number from 1 to 64");
	put("profiles.yml", "warehouse:\n  target: dev\n  outputs:\n    dev:\n      type: postgres\n      threads: 2.5\n");
	assert_string_equal(load_err(), "profiles.yml:6:16: threads must be a whole number from 1 to 64");
	put("profiles.yml", "warehouse:\n  target: dev\n  outputs:\n    dev: [postgres]\n");
	assert_string_equal(load_err(), "profiles.yml:4:10: output 'dev' must be a map of settings");
	put("profiles.yml", "warehouse:\n  target: dev\n  outputs:\n    dev:\n      type: postgres\n      threads: \"64\"\n");
	load_ok(tmp);
	assert_int_equal(P.target.threads, 64);
	assert_string_equal(P.target.schema, "public");
}

static void test_env_var_rendering(void **state)
{
	(void)state;
	put("sluice.yml", "name: demo\n");
	put("profiles.yml",
	    "demo:\n  target: dev\n  outputs:\n    dev:\n      type: postgres\n"
	    "      user: \"{{ env_var('SLUICE_TEST_USER', 'analyst') }}\"\n"
	    "      password: \"{{ env_var('SLUICE_TEST_PASSWORD') }}\"\n"
	    "      port: \"{{ env_var('SLUICE_TEST_PORT', 5433) }}\"\n");
	unsetenv("SLUICE_TEST_USER");
	/* missing without default: the key and place, no value */
	assert_string_equal(load_err(),
			    "profiles.yml:7:17: cannot render 'password': environment variable 'SLUICE_TEST_PASSWORD' "
			    "is not set and has no default");
	setenv("SLUICE_TEST_PASSWORD", "hunter2", 1);
	setenv("SLUICE_TEST_USER", "", 1);
	load_ok(tmp);
	assert_string_equal(val_get_str(&P.target.conns[0].settings, "password", NULL), "hunter2");
	assert_string_equal(val_get_str(&P.target.conns[0].settings, "user", NULL), "");
	assert_string_equal(val_get_str(&P.target.conns[0].settings, "port", NULL), "5433");
	project_release(&P);
	/* a value that fails after reading a secret must not show it */
	put("profiles.yml",
	    "demo:\n  target: dev\n  outputs:\n    dev:\n      type: postgres\n"
	    "      password: \"{{ env_var('SLUICE_TEST_PASSWORD') ~ var('pw_suffix') }}\"\n");
	assert_string_equal(load_err(),
			    "profiles.yml:6:17: cannot render 'password': undefined variable 'pw_suffix' "
			    "(set it under vars: in sluice.yml or with --vars)");
	assert_null(strstr(E.msg, "hunter2"));
	/* template syntax errors and unknown functions are located the same way */
	put("profiles.yml", "demo:\n  target: dev\n  outputs:\n    dev:\n      type: postgres\n"
			    "      schema: \"{{ ref('x') }}\"\n");
	assert_string_equal(load_err(), "profiles.yml:6:15: cannot render 'schema': undefined function 'ref'");
	put("profiles.yml", "demo:\n  target: dev\n  outputs:\n    dev:\n      type: postgres\n"
			    "      schema: \"{{ env_var( }}\"\n");
	load_err();
	assert_int_equal(strncmp(E.msg, "profiles.yml:6:15: cannot render 'schema': ", 43), 0);
	assert_true(strlen(E.msg) > 43);
}

/* ---- vars ------------------------------------------------------------------------------------ */

static void test_vars_global_scoped_and_cli(void **state)
{
	struct project_opts o = { tmp, NULL, NULL, "{\"c\": \"cli\", \"n\": 5, \"q\": \"5\"}", NULL, NULL };

	(void)state;
	put("sluice.yml",
	    "name: demo\n"
	    "vars:\n"
	    "  a: global\n"
	    "  b: global\n"
	    "  c: global\n"
	    "  other_pkg: {a: not ours}\n"
	    "  demo:\n"
	    "    b: scoped\n"
	    "    c: scoped\n"
	    "    home: \"{{ env_var('HOME') }}\"\n"
	    "    needs_cli: \"{{ env_var('SLUICE_TEST_UNSET_VAR') }}\"\n");
	unsetenv("SLUICE_TEST_UNSET_VAR");
	assert_int_equal(load_dir(tmp), SLUICE_EUSAGE);
	assert_string_equal(E.msg, "sluice.yml:11:16: cannot render 'needs_cli': environment variable "
				   "'SLUICE_TEST_UNSET_VAR' is not set and has no default");
	/* --vars hides the value, so it is not rendered */
	o.vars_json = "{\"c\": \"cli\", \"n\": 5, \"q\": \"5\", needs_cli: given}";
	assert_int_equal(load_opts(&o), 0);
	assert_string_equal(val_get_str(&P.vars, "a", NULL), "global");
	assert_string_equal(val_get_str(&P.vars, "b", NULL), "scoped");
	assert_string_equal(val_get_str(&P.vars, "c", NULL), "cli");
	assert_string_equal(val_get_str(&P.vars, "home", NULL), home);
	assert_string_equal(val_get_str(&P.vars, "needs_cli", NULL), "given");
	assert_string_equal(val_get_str(val_get(&P.vars, "other_pkg"), "a", NULL), "not ours");
	assert_null(val_get(&P.vars, "demo"));
	assert_int_equal(val_get(&P.vars, "n")->kind, V_NUM);
	assert_int_equal(val_get(&P.vars, "q")->kind, V_STR);
}

static void test_cli_vars_errors(void **state)
{
	struct project_opts o = { tmp, NULL, NULL, "{a: [1, 2}", NULL, NULL };

	(void)state;
	put("sluice.yml", "name: demo\n");
	assert_int_equal(load_opts(&o), SLUICE_EUSAGE);
	assert_string_equal(E.msg, "--vars: 1:10: did not find expected ',' or ']' (while parsing a flow sequence)");
	o.vars_json = "[1, 2]";
	assert_int_equal(load_opts(&o), SLUICE_EUSAGE);
	assert_string_equal(E.msg, "--vars: 1:1: expected a map like '{key: value}'");
	o.vars_json = "{a: 1, a: 2}";   /* as in a YAML file: the last value wins */
	assert_int_equal(load_opts(&o), 0);
	assert_int_equal(val_get(&P.vars, "a")->u.num, 2);
	o.vars_json = "key: value";   /* block YAML is fine too */
	assert_int_equal(load_opts(&o), 0);
	assert_string_equal(val_get_str(&P.vars, "key", NULL), "value");
}

/* ---- project_call_builtin ------------------------------------------------------------------------ */

static int call(const char *name, const struct val *args, size_t nargs, const char *kw, const struct val *kwval,
		struct arena *a, struct val *used, struct val *out)
{
	const char *kwnames[1] = { kw };
	struct tpl_call c;

	memset(&c, 0, sizeof(c));
	c.name = name;
	c.args = args;
	c.nargs = nargs;
	c.kwnames = kwnames;
	c.kwargs = kwval;
	c.nkw = kw ? 1 : 0;
	c.path = "m.sql";
	c.line = c.col = 1;
	c.arena = a;
	memset(&E, 0, sizeof(E));
	return project_call_builtin(&P, &c, out, used, &E);
}

static void test_builtin_var_and_env_var(void **state)
{
	struct arena a = ARENA_INIT;
	struct val used = val_dict_new(), out, args[3];

	(void)state;
	put("sluice.yml", "name: demo\nvars:\n  x: 7\n");
	load_ok(tmp);
	setenv("SLUICE_TEST_ENV", "from-env", 1);
	unsetenv("SLUICE_TEST_NOPE");

	args[0] = val_str("x");
	assert_int_equal(call("var", args, 1, NULL, NULL, &a, &used, &out), 0);
	assert_int_equal(out.kind, V_NUM);
	args[0] = val_str("missing");
	args[1] = val_str("dflt");
	assert_int_equal(call("var", args, 2, NULL, NULL, &a, &used, &out), 0);
	assert_string_equal(out.u.str.s, "dflt");
	assert_int_equal(call("var", args, 1, NULL, NULL, &a, &used, &out), SLUICE_EUSAGE);
	assert_string_equal(E.msg, "undefined variable 'missing' (set it under vars: in sluice.yml or with --vars)");

	args[0] = val_str("SLUICE_TEST_ENV");
	assert_int_equal(call("env_var", args, 1, NULL, NULL, &a, &used, &out), 0);
	assert_string_equal(out.u.str.s, "from-env");
	args[0] = val_str("SLUICE_TEST_NOPE");
	assert_int_equal(call("env_var", args, 1, "default", &args[1], &a, &used, &out), 0);
	assert_string_equal(out.u.str.s, "dflt");
	assert_int_equal(call("env_var", args, 1, NULL, NULL, &a, NULL, &out), SLUICE_EUSAGE);
	assert_string_equal(E.msg, "environment variable 'SLUICE_TEST_NOPE' is not set and has no default");

	/* what was read, for fingerprints */
	assert_repr(&used, "{'var.x': 7, 'var.missing': 'dflt', 'env_var.SLUICE_TEST_ENV': 'from-env', "
			   "'env_var.SLUICE_TEST_NOPE': 'dflt'}");

	/* wrong calls */
	assert_int_equal(call("var", args, 0, NULL, NULL, &a, NULL, &out), SLUICE_EUSAGE);
	assert_string_equal(E.msg, "var() takes a name and an optional default");
	assert_int_equal(call("env_var", args, 3, NULL, NULL, &a, NULL, &out), SLUICE_EUSAGE);
	assert_string_equal(E.msg, "env_var() takes a name and an optional default");
	assert_int_equal(call("var", args, 2, "default", &args[1], &a, NULL, &out), SLUICE_EUSAGE);
	assert_string_equal(E.msg, "var() takes a name and an optional default");
	assert_int_equal(call("var", args, 1, "other", &args[1], &a, NULL, &out), SLUICE_EUSAGE);
	args[0] = val_num(1);
	assert_int_equal(call("var", args, 1, NULL, NULL, &a, NULL, &out), SLUICE_EUSAGE);
	assert_string_equal(E.msg, "var(): the name must be a string");
	/* not ours: 1, error untouched */
	assert_int_equal(call("ref", args, 1, NULL, NULL, &a, NULL, &out), 1);
	assert_string_equal(E.msg, "");
	arena_release(&a);
}

struct thread_arg {
	int ok;
};

static void *call_many(void *ud)
{
	struct thread_arg *t = ud;
	struct arena a = ARENA_INIT;
	struct val used = val_dict_new(), out, args[1];
	struct tpl_call c;
	struct sluice_err err = SLUICE_ERR_INIT;
	int i;

	t->ok = 1;
	memset(&c, 0, sizeof(c));
	c.args = args;
	c.nargs = 1;
	c.arena = &a;
	for (i = 0; i < 2000; i++) {
		c.name = i % 2 ? "var" : "env_var";
		args[0] = val_str(i % 2 ? "x" : "HOME");
		if (project_call_builtin(&P, &c, &out, &used, &err) || out.kind == V_NONE)
			t->ok = 0;
	}
	if (used.u.dict.n != 2 || val_get_int(&used, "var.x", 0) != 7)
		t->ok = 0;
	arena_release(&a);
	return NULL;
}

static void test_builtin_from_threads(void **state)
{
	pthread_t th[4];
	struct thread_arg args[4];
	int i;

	(void)state;
	put("sluice.yml", "name: demo\nvars:\n  x: 7\n");
	load_ok(tmp);
	for (i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, call_many, &args[i]), 0);
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_true(args[i].ok);
	}
}

/* ---- scale -------------------------------------------------------------------------------------------- */

static void test_many_models(void **state)
{
	char rel[64];
	int i;

	(void)state;
	put("sluice.yml", "name: demo\nmodels:\n  demo:\n    d3:\n      +tags: [three]\n");
	for (i = 0; i < 1000; i++) {
		snprintf(rel, sizeof(rel), "models/d%d/m%04d.sql", i % 10, i);
		put(rel, "select 1");
	}
	load_ok(tmp);
	assert_int_equal(P.nmodels, 1000);
	for (i = 1; i < 1000; i++)
		assert_true(strcmp(P.models[i - 1]->path, P.models[i]->path) < 0);
	assert_string_equal(project_find_model(&P, "m0234")->path, "models/d4/m0234.sql");
	assert_tags(&project_find_model(&P, "m0013")->config, "['three']");
	assert_null(val_get(&project_find_model(&P, "m0014")->config, "tags"));
}

/* schedules: and notifications: (engine/schedule.c), errors at file:line:col. */
static void test_schedules(void **state)
{
	const struct schedule *sc;

	(void)state;
	unsetenv("OPS_HOOK_FOR_TEST");
	put("sluice.yml", "name: demo\n"
	    "schedules:\n"
	    "  - name: nightly\n"
	    "    cron: \"0 2 * * MON-FRI\"\n"
	    "    timezone: Europe/Athens\n"
	    "    command: build\n"
	    "    select: tag:nightly\n"
	    "    retries: 2\n"
	    "    retry-delay: 1m\n"
	    "    notify: [ops]\n"
	    "  - {name: hourly, cron: \"@hourly\"}\n"
	    "notifications:\n"
	    "  ops: {webhook: \"{{ env_var('OPS_HOOK_FOR_TEST') }}\", on: [failure, recovery], format: slack}\n");
	load_ok(tmp);   /* the webhook's variable is not set: only sending needs it */
	assert_int_equal(P.nschedules, 2);
	sc = schedule_find(P.schedules, P.nschedules, "nightly");
	assert_non_null(sc);
	assert_string_equal(sc->timezone, "Europe/Athens");
	assert_string_equal(sc->command, "build");
	assert_string_equal(sc->select, "tag:nightly");
	assert_int_equal(sc->retries, 2);
	assert_true(sc->retry_delay == 60);
	assert_int_equal(sc->nnotify, 1);
	assert_string_equal(sc->notify[0]->webhook, "{{ env_var('OPS_HOOK_FOR_TEST') }}");
	assert_int_equal(sc->notify[0]->on, NOTIFY_FAILURE | NOTIFY_RECOVERY);
	assert_true(sc->notify[0]->slack);
	sc = schedule_find(P.schedules, P.nschedules, "hourly");
	assert_string_equal(sc->command, "run");
	assert_string_equal(sc->timezone, "UTC");
	assert_int_equal(sc->line, 11);
	project_release(&P);

	put("sluice.yml", "name: demo\nschedules:\n  - name: n\n    cron: \"60 2 * * *\"\n");
	assert_string_equal(load_err(), "sluice.yml:4:11: schedule 'n': cron: minute: '60' is out of range 0-59");
	put("sluice.yml", "name: demo\nschedules:\n  - {name: n, cron: \"0 2 * * *\", timezone: Europe/Athen}\n");
	assert_string_equal(load_err(),
			    "sluice.yml:3:44: schedule 'n': unknown time zone 'Europe/Athen' (an IANA name such as Europe/Athens)");
	put("sluice.yml", "name: demo\nschedules:\n  - {name: n, cron: \"0 2 * * *\", notify: [ops]}\n");
	assert_string_equal(load_err(), "sluice.yml:3:42: schedule 'n': notify: no notification 'ops' under notifications:");
	put("sluice.yml", "name: demo\nschedules:\n  - {name: n, cron: \"0 2 * * *\", command: seed}\n");
	assert_string_equal(load_err(), "sluice.yml:3:43: schedule 'n': command must be run, build or test, not 'seed'");
	put("sluice.yml", "name: demo\nschedules:\n  - {name: n, cronn: \"0 2 * * *\"}\n");
	assert_string_equal(load_err(), "sluice.yml:3:15: schedule 'n': unknown key 'cronn'");
	put("sluice.yml", "name: demo\nschedules:\n  - {name: n, cron: \"@daily\"}\n  - {name: n, cron: \"@daily\"}\n");
	assert_string_equal(load_err(), "sluice.yml:4:5: schedule 'n' is defined twice (first at line 3)");
	put("sluice.yml", "name: demo\nnotifications:\n  ops: {webhook: x, on: [sometimes]}\n");
	assert_string_equal(load_err(),
			    "sluice.yml:3:25: notification 'ops': on: 'sometimes' is not one of failure, success, recovery, always");
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_defaults),
		T(test_schedules),
		T(test_missing_sluice_yml),
		T(test_name_is_required_and_an_identifier),
		T(test_sluice_yml_yaml_errors),
		T(test_wrong_types_are_located),
		T(test_underscore_spellings_and_paths),
		T(test_fixture_models_and_paths),
		T(test_fixture_folder_config),
		T(test_fixture_templates_see_vars_and_target),
		T(test_fixture_properties),
		T(test_fixture_sources),
		T(test_fixture_profile),
		T(test_fixture_target_from_env_and_option),
		T(test_folder_config_rules),
		T(test_property_config_overrides),
		T(test_properties_for_unknown_model),
		T(test_model_described_twice),
		T(test_property_shape_errors),
		T(test_duplicate_source_table),
		T(test_duplicate_model_name),
		T(test_errors_collected),
		T(test_profiles_search_order),
		T(test_profile_errors),
		T(test_env_var_rendering),
		T(test_vars_global_scoped_and_cli),
		T(test_cli_vars_errors),
		T(test_builtin_var_and_env_var),
		T(test_builtin_from_threads),
		T(test_many_models),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
