/*
 * project.h: a sluice project as plain structs: sluice.yml, the chosen
 * profile target, the model files and the property YAML (sources, model
 * properties). Loading reads files and YAML only: templates in model files
 * are not parsed here (see manifest.h), but env_var()/var() in profile and
 * sluice.yml values are rendered.
 *
 * Everything lives in project->arena and is freed by project_release().
 */
#ifndef SLUICE_PROJECT_H
#define SLUICE_PROJECT_H

#include <stddef.h>
#include "util/arena.h"
#include "util/err.h"
#include "util/strmap.h"
#include "template.h"
#include "value.h"
#include "yaml.h"

struct schedule;
struct notifier;

struct model {
	const char *name;          /* file name without extension (a snapshot: its block's name) */
	const char *resource;      /* "model", "seed" (a CSV under seed-paths) or "snapshot" */
	const char *unique_id;     /* "<resource>.<project>.<name>" */
	const char *path;          /* relative to the project dir: "models/staging/stg_patients.sql" */
	const char *lang;          /* "sql", "sh" or "csv", from the extension */
	const char *src;           /* file contents, NUL-terminated (a snapshot: its block only,
	                              the rest blanked so that lines and columns stay) */
	size_t src_len;
	const char **fqn;          /* [project, folder..., name] */
	size_t nfqn;
	/*
	 * Config from sluice.yml folder config, overridden by the property YAML
	 * `config:`; keys normalised ('-' -> '_', no '+'); `tags` accumulate.
	 * In-file {{ config() }} is applied later, by the manifest.
	 */
	struct val config;
	const char *description;   /* from property YAML, or NULL */
	struct val props;          /* the whole property YAML entry (dict), or none */
	const struct ynode *props_node; /* the same entry as a YAML tree, with positions, or NULL */
	const char *props_path;    /* where that entry is, or NULL */
	int props_line;
};

struct source_table {
	const char *source_name;   /* "lake" */
	const char *name;          /* "patients" */
	const char *unique_id;     /* "source.<project>.lake.patients" */
	const char *database;      /* or NULL */
	const char *schema;        /* source `schema:`, default the source name */
	const char *identifier;    /* table `identifier:`, default its name */
	const char *connection;    /* source `connection:`, NULL = default */
	struct val config;         /* source-level keys overridden by table-level keys
	                              (change_detection, loaded_at_field, ...) */
	struct val props;          /* the table's whole YAML entry */
	const struct ynode *props_node; /* the same as a YAML tree, with positions */
	const char *description;
	const char *path;          /* property file, relative */
	int line;
};

/* A singular data test: a .sql file under test-paths returning failing rows. */
struct test_file {
	const char *name;          /* file name without extension */
	const char *path;          /* relative to the project dir */
	const char *src;           /* contents, NUL-terminated */
	size_t src_len;
};

/*
 * A file of macros: a .sql file under macro-paths or under a test path's
 * generic/ folder (dbt's generic tests), of the root project or of a
 * package. engine/macros.c parses them.
 */
struct macro_file {
	const char *package;       /* the project's name, or the package's */
	const char *path;          /* relative to the project dir */
	const char *src;           /* contents, NUL-terminated */
	size_t src_len;
};

/* One database connection of the target. */
struct conn_cfg {
	const char *name;          /* "default" for the output itself, else the key under connections: */
	struct val settings;       /* dict: type, host, port, user, password, dbname, schema, ... */
};

struct target {
	const char *profile;       /* profile name */
	const char *name;          /* target name, e.g. "dev" */
	const char *type;          /* settings.type of the default connection */
	const char *schema;        /* target schema */
	int threads;               /* default 4 */
	const char *profiles_path; /* file it came from, NULL for the embedded default */
	struct conn_cfg *conns;    /* conns[0] is the output itself */
	size_t nconns;
	/*
	 * The output's reuse_from: other targets of the profile whose builds
	 * this one may reuse, in order, and reuse_mode: copy (else views).
	 * docs/environments.md. The profile's output names, for checking
	 * --reuse-from and for `sluice cache ls`.
	 */
	const char **reuse_from;
	size_t nreuse_from;
	int reuse_copy;
	const char **outputs;
	size_t noutputs;
};

/*
 * An installed dbt package: a folder under packages-install-path (default
 * dbt_packages/) holding a dbt_project.yml, installed by `sluice deps` or
 * not. Its models, seeds, snapshots, tests and property files join the
 * project under its name (docs/packages.md). Every path is relative to
 * the project dir, the package's folder included.
 */
struct package {
	const char *name;          /* its dbt_project.yml name: fqn[0] and unique_id of its nodes */
	const char *dir;           /* "dbt_packages/dbt_utils" */
	const char *version;       /* its dbt_project.yml version:, or NULL */
	const char **macro_paths;  /* "dbt_packages/dbt_utils/macros": macro-paths, default ["macros"] */
	size_t nmacro_paths;
	const char **model_paths, **seed_paths, **test_paths, **snapshot_paths;
	size_t nmodel_paths, nseed_paths, ntest_paths, nsnapshot_paths;
	/*
	 * What var() gives in its files: its own vars (global, then under its
	 * name), overridden by the root project's global vars, then the root's
	 * vars under the package's name, then --vars.
	 */
	struct val vars;
	struct val models_config, seeds_config, snapshots_config;  /* its own config trees */
};

struct project {
	struct arena arena;
	const char *dir;           /* absolute, no trailing slash */
	const char *file;          /* the project file read: "sluice.yml" or "dbt_project.yml" */
	int dbt;                   /* it was dbt_project.yml (no sluice.yml): dbt's defaults apply */
	const char *name;
	const char *profile;
	const char **model_paths;  /* relative, default ["models"] */
	size_t nmodel_paths;
	const char **test_paths;   /* relative, default ["tests"] */
	size_t ntest_paths;
	const char **seed_paths;   /* relative, default ["seeds"] (dbt; sluice.yml may set it too) */
	size_t nseed_paths;
	const char **snapshot_paths; /* relative, default ["snapshots"] */
	size_t nsnapshot_paths;
	const char **macro_paths;  /* relative, default ["macros"]: read by the macros issue */
	size_t nmacro_paths;
	const char *target_path;   /* absolute, default <dir>/target */
	struct val vars;           /* sluice.yml vars (global and this project's), then --vars */
	struct val on_run_start;   /* list of SQL strings (templates) */
	struct val on_run_end;
	struct val models_config;  /* the raw `models:` block of sluice.yml */
	struct val seeds_config;   /* the raw `seeds:` block */
	struct val snapshots_config; /* the raw `snapshots:` block */
	struct val raw;            /* the whole sluice.yml, for keys later issues add */
	const char *packages_install_path; /* relative, default "dbt_packages" */
	struct package *packages;  /* installed packages, sorted by name */
	size_t npackages;
	struct model **models;     /* sorted by path: models, then seeds, then snapshots */
	size_t nmodels;
	struct source_table **sources;   /* sorted by unique_id */
	size_t nsources;
	struct test_file **test_files;   /* .sql files under test_paths, sorted by path */
	size_t ntest_files;
	struct macro_file *macro_files;  /* sorted by path within a package, the root project first */
	size_t nmacro_files;
	struct target target;
	struct schedule *schedules;      /* sluice.yml `schedules:` (schedule.h), in file order */
	size_t nschedules;
	struct notifier *notifiers;      /* `notifications:` */
	size_t nnotifiers;
	const char *report;              /* `report:` where reports are published, or NULL */
	struct err_list *errors;         /* project_opts' lists (borrowed): manifest_build adds to errors */
	struct err_list *warnings;
	int sources_incomplete;          /* a properties file or a sources: entry had an error (in errors):
	                                    a source it declares may be missing, so unknown ones are no news */
	/* private to project.c: name -> struct model *, "source.table" -> struct source_table * */
	struct strmap model_index, source_index;
};

struct project_opts {
	const char *project_dir;   /* default "." */
	const char *profiles_dir;  /* default: $SLUICE_PROFILES_DIR, $DBT_PROFILES_DIR, the project dir,
	                              ~/.sluice, ~/.dbt */
	const char *target;        /* default: the profile's target: */
	const char *vars_json;     /* --vars, a JSON (or YAML flow) object, or NULL */
	/*
	 * Where errors of independent parts (a model file, a properties entry,
	 * a ref) are collected so that one run shows them all; NULL: stop at
	 * the first. Warnings (a duplicate YAML key, properties of a missing
	 * model) go to warnings; NULL: not shown. Both are the caller's.
	 */
	struct err_list *errors, *warnings;
};

/*
 * Load everything. Errors name the file and line: "sluice.yml:3:5: ...".
 * Bad project files and usage errors: SLUICE_EUSAGE. With o->errors, an
 * error in one model file or properties entry is added there and loading
 * goes on: 0 is returned and the caller checks the list. What makes going
 * on meaningless (sluice.yml, profiles.yml) still stops at once.
 */
int project_load(struct project *p, const struct project_opts *o, struct sluice_err *err);
void project_release(struct project *p);

struct model *project_find_model(const struct project *p, const char *name);
/* The package whose folder holds path (relative to the project dir), or NULL: the root project's. */
const struct package *project_package_of(const struct project *p, const char *path);
struct source_table *project_find_source(const struct project *p, const char *source, const char *table);
const struct conn_cfg *project_conn(const struct project *p, const char *name);

/*
 * The template functions every template may use whatever it renders:
 * var(name[, default]) and env_var(name[, default]); var() reads the vars of
 * the package whose file calls it (call->path), else the project's. Same contract as
 * tpl_host.call: 0 and *out, negative with err, or 1 when `call` is not one
 * of these. When used is not NULL, every var/env_var read is recorded in it
 * (a dict name -> value, keys "var.x" / "env_var.X") for fingerprints.
 */
int project_call_builtin(const struct project *p, const struct tpl_call *call, struct val *out,
			 struct val *used, struct sluice_err *err);

#endif
