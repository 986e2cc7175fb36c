/*
 * deps.h: `sluice deps`, dbt's package installer. Reads packages.yml (or
 * dependencies.yml's packages:), resolves every package (local folders,
 * git repositories at a revision, hub names through a built-in table of
 * repositories or $SLUICE_PACKAGE_MIRROR), follows each package's own
 * packages.yml, installs them under packages-install-path (default
 * dbt_packages/) and writes package-lock.yml. With a lock whose
 * sha1_hash matches the specification, the locked revisions are installed
 * as they are. Git runs as the real git command (no shell); nothing else
 * touches the network. What installed packages mean to a project is
 * project.c's business, not this file's.
 */
#ifndef SLUICE_DEPS_H
#define SLUICE_DEPS_H

#include <stddef.h>
#include "util/arena.h"
#include "util/err.h"

struct deps_opts {
	const char *project_dir;   /* default "." */
	int upgrade;               /* --upgrade: resolve again, ignoring package-lock.yml */
};

/* One installed package. Strings live in the result's arena. */
struct deps_pkg {
	const char *name;          /* its dbt_project.yml name: the folder under the install path */
	const char *kind;          /* "local", "git" or "hub" */
	const char *source;        /* the path, URL (without user or password) or hub name */
	const char *version;       /* hub: the version chosen; git: the revision asked; local: NULL */
	const char *sha;           /* the commit checked out; local: NULL */
};

struct deps_result {
	struct arena arena;
	const char *spec_file;     /* "packages.yml", "dependencies.yml", or NULL when there is none */
	const char *install_path;  /* relative to the project, as configured: "dbt_packages" */
	int from_lock;             /* the lock was used as it is */
	struct deps_pkg *pkgs;     /* in resolution order */
	size_t npkgs;
	struct err_list warnings;  /* unpinned git packages */
};

/*
 * Install. 0 with r filled (r->spec_file NULL: nothing to install); or a
 * negative code and err: SLUICE_EUSAGE for bad packages.yml or lock
 * content ("packages.yml:4:7: ..."), a package that is not what it claims,
 * or conflicting requirements; SLUICE_EIO for a failed fetch or write.
 * On failure no package folder is left half-installed: each one is built
 * in a work folder beside them and renamed into place once everything
 * was fetched and checked. Always call deps_result_release.
 */
int deps_install(const struct deps_opts *o, struct deps_result *r, struct sluice_err *err);
void deps_result_release(struct deps_result *r);

/*
 * Only read a packages.yml (lock set: a package-lock.yml) given as text:
 * every check of its entries, nothing fetched. 0 and *n entries, or
 * SLUICE_EUSAGE with "display:line:col: ...". For fuzzing and tests.
 */
int deps_parse(const char *display, const char *text, size_t len, int lock, size_t *n, struct sluice_err *err);

/*
 * Where a hub package ("dbt-labs/dbt_utils") is fetched from: a folder
 * under $SLUICE_PACKAGE_MIRROR (<mirror>/<org>/<name>, or named after the
 * repository, with or without .git), else the repository the built-in
 * table gives. NULL when neither knows it. The result is in arena a.
 */
const char *deps_hub_url(struct arena *a, const char *package);

#endif
