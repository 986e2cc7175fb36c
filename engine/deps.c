/*
 * deps.c: installing dbt packages (deps.h). Three steps, so that a
 * failure anywhere leaves the installed packages as they were:
 *
 *   resolve  every requirement, breadth first, into a work folder
 *            (<install path>/.sluice-deps.<pid>): local folders copied,
 *            git repositories cloned and checked out, hub names turned
 *            into repositories and a version chosen among their tags;
 *   check    the commit checked out is the one resolved (or locked), the
 *            package's dbt_project.yml exists and names it as expected;
 *   install  rename each package folder into place, then write the lock.
 *
 * Local packages are copied, not symlinked as dbt does: the install is
 * then the same whatever the source, and renaming a finished copy into
 * place is what keeps a failed install from showing half a package.
 * Git is run as a child process with an argument vector (no shell), so a
 * URL or revision is never interpreted.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "deps.h"
#include "project.h"
#include "semver.h"
#include "template.h"
#include "yaml.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/xalloc.h"

extern char **environ;

#define MAX_REQS 16
#define MAX_RESTARTS 8

/* ---- the hub's common packages ---------------------------------------------- */

/*
 * dbt Hub names of commonly used packages and the repositories the hub
 * points at. sluice never asks the hub itself: these, or a mirror folder,
 * are where hub packages come from.
 */
static const struct {
	const char *package;
	const char *url;
} hub_table[] = {
	{ "dbt-labs/dbt_utils", "https://github.com/dbt-labs/dbt-utils.git" },
	{ "dbt-labs/audit_helper", "https://github.com/dbt-labs/dbt-audit-helper.git" },
	{ "dbt-labs/codegen", "https://github.com/dbt-labs/dbt-codegen.git" },
	{ "dbt-labs/dbt_external_tables", "https://github.com/dbt-labs/dbt-external-tables.git" },
	{ "dbt-labs/dbt_project_evaluator", "https://github.com/dbt-labs/dbt-project-evaluator.git" },
	{ "dbt-labs/spark_utils", "https://github.com/dbt-labs/spark-utils.git" },
	{ "dbt-labs/redshift", "https://github.com/dbt-labs/redshift.git" },
	{ "dbt-labs/snowplow", "https://github.com/dbt-labs/snowplow.git" },
	{ "calogica/dbt_date", "https://github.com/calogica/dbt-date.git" },
	{ "calogica/dbt_expectations", "https://github.com/calogica/dbt-expectations.git" },
	{ "godatadriven/dbt_date", "https://github.com/godatadriven/dbt-date.git" },
	{ "metaplane/dbt_expectations", "https://github.com/metaplane/dbt-expectations.git" },
	{ "elementary-data/elementary", "https://github.com/elementary-data/dbt-data-reliability.git" },
	{ "fivetran/fivetran_utils", "https://github.com/fivetran/dbt_fivetran_utils.git" },
	{ "brooklyn-data/dbt_artifacts", "https://github.com/brooklyn-data/dbt_artifacts.git" },
	{ "data-mie/dbt_profiler", "https://github.com/data-mie/dbt-profiler.git" },
	{ "Snowflake-Labs/dbt_constraints", "https://github.com/Snowflake-Labs/dbt_constraints.git" },
	{ "entechlog/dbt_snow_mask", "https://github.com/entechlog/dbt-snow-mask.git" },
	{ "tnightengale/dbt_meta_testing", "https://github.com/tnightengale/dbt-meta-testing.git" },
};

static const char *hub_table_url(const char *package)
{
	size_t i;

	for (i = 0; i < sizeof(hub_table) / sizeof(hub_table[0]); i++)
		if (!strcasecmp(hub_table[i].package, package))
			return hub_table[i].url;
	return NULL;
}

const char *deps_hub_url(struct arena *a, const char *package)
{
	const char *mirror = getenv("SLUICE_PACKAGE_MIRROR"), *url = hub_table_url(package);
	const char *slash = strchr(package, '/');
	char repo[256] = "";
	size_t i;

	if (url) {
		/* the repository's own name, for a mirror made by cloning it */
		const char *r = strrchr(url, '/') + 1;
		snprintf(repo, sizeof(repo), "%.*s", (int)(strlen(r) - (strlen(r) > 4 ? 4 : 0)), r);
	}
	if (mirror && *mirror && slash) {
		const char *names[4];
		names[0] = arena_printf(a, "%s/%s", mirror, package);
		names[1] = arena_printf(a, "%s/%s.git", mirror, package);
		names[2] = *repo ? arena_printf(a, "%s/%.*s/%s", mirror, (int)(slash - package), package, repo) : NULL;
		names[3] = *repo ? arena_printf(a, "%s/%.*s/%s.git", mirror, (int)(slash - package), package, repo) : NULL;
		for (i = 0; i < 4; i++)
			if (names[i] && fs_is_dir(names[i]))
				return names[i];
	}
	return url ? arena_strdup(a, url) : NULL;
}

/*
 * A git: URL's mirror: for ".../<org>/<repo>[.git]", the folder
 * <mirror>/<org>/<repo> (or <repo>.git) when it exists, so that a project
 * whose packages name GitHub installs offline. Otherwise the URL itself.
 */
static const char *git_mirror(struct arena *a, const char *url)
{
	const char *mirror = getenv("SLUICE_PACKAGE_MIRROR"), *end, *repo, *org, *p;
	size_t rlen, i;

	if (!mirror || !*mirror)
		return url;
	end = url + strlen(url);
	while (end > url && end[-1] == '/')
		end--;
	if (end - url > 4 && !strncmp(end - 4, ".git", 4))
		end -= 4;
	for (repo = end; repo > url && repo[-1] != '/' && repo[-1] != ':'; repo--)
		;
	if (repo == url || repo == end)
		return url;
	for (org = repo - 1; org > url && org[-1] != '/' && org[-1] != ':'; org--)
		;
	if (org == repo - 1)
		return url;
	rlen = (size_t)(end - org);
	for (i = 0; i < 2; i++) {
		p = arena_printf(a, "%s/%.*s%s", mirror, (int)rlen, org, i ? ".git" : "");
		if (fs_is_dir(p))
			return p;
	}
	return url;
}

/* ---- requirements ------------------------------------------------------------ */

enum spec_kind { SPEC_LOCAL, SPEC_GIT, SPEC_HUB };

struct spec {
	enum spec_kind kind;
	const char *local;         /* as written */
	const char *local_abs;     /* resolved against base */
	const char *git, *revision, *subdirectory, *package;
	const char *git_url;       /* git rendered: env_var() may hold a token, so only git sees it */
	struct semver_req reqs[MAX_REQS];
	size_t nreqs;
	const char *version_text;  /* the range as written, for messages */
	int prerelease, warn_unpinned;
	const char *name;          /* a lock's name:, checked against the package */
	const char *requirer;      /* "the project" or a package's name */
	const char *where;         /* "packages.yml:3:5" */
};

struct pkg {
	struct spec *spec;         /* the first requirement that brought it */
	const char *key;
	const char *name;
	const char *clone;         /* absolute: the work folder fetched into */
	const char *dir;           /* absolute: the package's root in it (subdirectory) */
	const char *sha;
	char version[64];
};

struct ctx {
	struct arena *a;
	const char *dir;           /* the project, absolute */
	const char *install_rel, *install_abs, *work;
	struct spec **specs;
	size_t nspecs, cap;
	struct pkg *pkgs;
	size_t npkgs;
	const char **pin_keys, **pin_versions;   /* hub versions forced by an earlier conflict */
	size_t npins;
	int restart;
	int from_lock;
	size_t serial;
	struct err_list *warnings;
	struct sluice_err *err;
};

static int is_null(const struct ynode *n)
{
	return !n || (n->kind == Y_SCALAR && n->plain && (!n->len || !strcmp(n->scalar, "~") || !strcmp(n->scalar, "null")));
}

static int scalar_text(struct ctx *c, const struct ynode *n, const char *key, const char **out)
{
	if (is_null(n) || n->kind != Y_SCALAR || !n->len)
		return yaml_error(c->err, n, "%s must be text", key);
	*out = arena_strndup(c->a, n->scalar, n->len);
	return 0;
}

static int render_call(void *ud, const struct tpl_call *call, struct val *out, struct sluice_err *err)
{
	/* an empty project: env_var() as everywhere, var() only with a default */
	return project_call_builtin(ud, call, out, NULL, err);
}

/*
 * A value as dbt renders packages.yml: env_var() (for a token in a git
 * URL, typically). The text as written is what the lock keeps.
 */
static int render_text(struct ctx *c, const struct ynode *n, const char *text, const char **out)
{
	struct project empty;
	struct tpl_host host = { .ud = &empty, .call = render_call };
	struct buf b = BUF_INIT;
	struct tpl *t;
	int rc;

	*out = text;
	if (tpl_is_plain(text, strlen(text)))
		return 0;
	memset(&empty, 0, sizeof(empty));
	rc = tpl_parse(c->a, n->path, text, strlen(text), &t, c->err);
	if (!rc)
		rc = tpl_render(t, &host, c->a, &b, c->err);
	if (!rc)
		*out = arena_strndup(c->a, b.s, b.len);
	buf_release(&b);
	if (rc) {
		/* the template's position is within the value: give the value's */
		char msg[sizeof(c->err->msg)];
		const char *m = strstr(c->err->msg, ": ");
		snprintf(msg, sizeof(msg), "%s", m ? m + 2 : c->err->msg);
		return yaml_error(c->err, n, "%s", msg);
	}
	return 0;
}

/* A text value as written (raw, may be NULL) and rendered. */
static int text_value(struct ctx *c, const struct ynode *n, const char *key, const char **raw, const char **out)
{
	const char *text;
	int rc = scalar_text(c, n, key, &text);

	if (raw)
		*raw = text;
	return rc ? rc : render_text(c, n, text, out);
}

static int bool_value(struct ctx *c, const struct ynode *n, const char *key, int *out)
{
	if (n->kind == Y_SCALAR && (!strcasecmp(n->scalar, "true") || !strcasecmp(n->scalar, "false"))) {
		*out = !strcasecmp(n->scalar, "true");
		return 0;
	}
	return yaml_error(c->err, n, "%s must be true or false", key);
}

/* A URL without its user and password, for every message and printed line. */
static const char *url_display(struct arena *a, const char *url)
{
	const char *scheme = strstr(url, "://"), *at, *slash;

	if (!scheme)
		return url;
	at = strchr(scheme + 3, '@');
	slash = strchr(scheme + 3, '/');
	if (!at || (slash && slash < at))
		return url;
	return arena_printf(a, "%.*s%s", (int)(scheme + 3 - url), url, at + 1);
}

static int version_range(struct ctx *c, struct spec *s, const struct ynode *n)
{
	size_t i, cnt = n->kind == Y_SEQ ? n->n : 1;
	struct buf text = BUF_INIT;

	if (n->kind == Y_MAP || (n->kind == Y_SEQ && !n->n) || is_null(n))
		return yaml_error(c->err, n, "version must be a version like \"1.3.0\" or a list of ranges like "
				  "[\">=1.0.0\", \"<2.0.0\"]");
	s->nreqs = 0;
	for (i = 0; i < cnt; i++) {
		const struct ynode *item = n->kind == Y_SEQ ? n->items[i] : n;
		int got;
		if (item->kind != Y_SCALAR ||
		    (got = semver_reqs_parse(item->scalar, s->reqs + s->nreqs, MAX_REQS - s->nreqs)) < 0) {
			buf_release(&text);
			return yaml_error(c->err, item, "bad version range '%s': expected versions like 1.3.0, each with "
					  "an optional >=, >, <=, < or =", item->kind == Y_SCALAR ? item->scalar : "...");
		}
		s->nreqs += (size_t)got;
		buf_printf(&text, "%s%s", text.len ? ", " : "", item->scalar);
	}
	s->version_text = arena_strdup(c->a, text.s);
	buf_release(&text);
	return 0;
}

static int spec_add(struct ctx *c, struct spec *s)
{
	if (c->nspecs == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 16;
		c->specs = xrealloc(c->specs, c->cap * sizeof(*c->specs));
	}
	c->specs[c->nspecs++] = s;
	return 0;
}

/*
 * One entry of a packages: list. base is the folder local: paths are
 * relative to; requirer names who asked, for conflicts.
 */
static int parse_entry(struct ctx *c, const struct ynode *e, const char *base, const char *requirer, int lock)
{
	static const char *const keys[] = { "local", "git", "revision", "subdirectory", "warn-unpinned",
					    "package", "version", "install-prerelease", "name", NULL };
	struct spec *s = arena_alloc(c->a, sizeof(*s));
	const struct ynode *kind_node = NULL;
	size_t i, k;
	int rc, kinds = 0;

	memset(s, 0, sizeof(*s));
	s->warn_unpinned = 1;
	s->requirer = requirer;
	s->where = arena_printf(c->a, "%s:%d:%d", e->path, e->line, e->col);
	if (e->kind != Y_MAP)
		return yaml_error(c->err, e, "a package entry must be a map with local:, git: or package:");
	for (i = 0; i < e->n; i++) {
		const struct ynode *kn = e->items[2 * i], *v = e->items[2 * i + 1];
		const char *key = kn->scalar;
		for (k = 0; keys[k] && strcmp(keys[k], key); k++)
			;
		if (!keys[k]) {
			if (!strcmp(key, "private") || !strcmp(key, "tarball"))
				return yaml_error(c->err, kn, "%s: packages are not supported yet (use git: with a URL)", key);
			return yaml_error(c->err, kn, "unknown key '%s' in a package entry (expected local:, git: with "
					  "revision: and subdirectory:, or package: with version:)", key);
		}
		if (!strcmp(key, "local") || !strcmp(key, "git") || !strcmp(key, "package")) {
			kinds++;
			kind_node = kn;
		}
		if (!strcmp(key, "local"))
			rc = scalar_text(c, v, key, &s->local), s->kind = SPEC_LOCAL;
		else if (!strcmp(key, "git"))
			rc = text_value(c, v, key, &s->git, &s->git_url), s->kind = SPEC_GIT;
		else if (!strcmp(key, "package"))
			rc = scalar_text(c, v, key, &s->package), s->kind = SPEC_HUB;
		else if (!strcmp(key, "revision"))
			rc = text_value(c, v, key, NULL, &s->revision);
		else if (!strcmp(key, "subdirectory"))
			rc = text_value(c, v, key, NULL, &s->subdirectory);
		else if (!strcmp(key, "version"))
			rc = version_range(c, s, v);
		else if (!strcmp(key, "install-prerelease"))
			rc = bool_value(c, v, key, &s->prerelease);
		else if (!strcmp(key, "warn-unpinned"))
			rc = bool_value(c, v, key, &s->warn_unpinned);
		else
			rc = scalar_text(c, v, key, &s->name);
		if (rc)
			return rc;
	}
	if (kinds != 1)
		return yaml_error(c->err, kinds ? kind_node : e, "a package entry needs exactly one of local:, git: or "
				  "package:");
	if (s->kind != SPEC_GIT && (s->revision || s->subdirectory))
		return yaml_error(c->err, e, "revision: and subdirectory: belong to git: packages");
	if (s->kind != SPEC_HUB && s->version_text)
		return yaml_error(c->err, ymap_get(e, "version"), "version: belongs to hub packages (package:); "
				  "a git: package takes revision:");
	if (s->kind == SPEC_HUB && !s->version_text)
		return yaml_error(c->err, e, "package '%s' needs version: (a version or a range)", s->package);
	if (s->kind == SPEC_HUB && !strchr(s->package, '/'))
		return yaml_error(c->err, ymap_get(e, "package"), "package must be a hub name like dbt-labs/dbt_utils");
	if (s->subdirectory && (s->subdirectory[0] == '/' || strstr(s->subdirectory, "..")))
		return yaml_error(c->err, ymap_get(e, "subdirectory"), "subdirectory must be a path inside the repository");
	if (lock && s->kind == SPEC_GIT && !s->revision)
		return yaml_error(c->err, e, "a locked git package needs its revision:");
	if (s->kind == SPEC_LOCAL) {
		const char *path;
		if ((rc = render_text(c, ymap_get(e, "local"), s->local, &path)))
			return rc;
		s->local_abs = path[0] == '/' ? path : arena_printf(c->a, "%s/%s", base, path);
	}
	return spec_add(c, s);
}

/* A YAML file whose messages name it display (relative to the project). */
static int load_yaml(struct ctx *c, const char *abs, const char *display, struct ynode **root)
{
	struct buf text = BUF_INIT;
	int rc = fs_read_file(abs, &text, c->err);

	if (!rc)
		rc = yaml_load_str(c->a, arena_strdup(c->a, display), text.s, text.len, root, c->warnings, c->err);
	buf_release(&text);
	return rc;
}

/* The packages: list of a file; *root gets the tree (NULL for an empty file). */
/* The entries of a packages.yml (or lock) tree. */
static int parse_spec(struct ctx *c, const struct ynode *root, const char *base, const char *requirer, int lock)
{
	const struct ynode *list;
	size_t i;
	int rc;

	if (!root)
		return 0;
	if (root->kind != Y_MAP)
		return yaml_error(c->err, root, "expected a map with packages:");
	list = ymap_get(root, "packages");
	if (is_null(list))
		return 0;
	if (list->kind != Y_SEQ)
		return yaml_error(c->err, list, "packages must be a list of entries");
	for (i = 0; i < list->n; i++)
		if ((rc = parse_entry(c, list->items[i], base, requirer, lock)))
			return rc;
	return 0;
}

static int parse_spec_file(struct ctx *c, const char *abs, const char *display, const char *base,
			   const char *requirer, int lock, struct ynode **rootp)
{
	int rc = load_yaml(c, abs, display, rootp);

	return rc ? rc : parse_spec(c, *rootp, base, requirer, lock);
}

/* ---- git --------------------------------------------------------------------- */

/*
 * Run git with args (cwd: dir, or the current one). Its output goes to
 * out when not NULL; its error output becomes the message when it fails.
 */
static int git(struct ctx *c, const char *dir, const char *const *args, struct buf *out, const char *what)
{
	const char *argv[24] = { "git" };
	posix_spawn_file_actions_t fa;
	struct buf errout = BUF_INIT, scratch = BUF_INIT;
	int ofd[2], efd[2], status = 0, rc, open_fds = 2;
	size_t i = 1, k;
	pid_t pid;

	if (dir) {
		argv[i++] = "-C";
		argv[i++] = dir;
	}
	argv[i++] = "-c";
	argv[i++] = "advice.detachedHead=false";
	for (k = 0; args[k] && i + 1 < 24; k++)
		argv[i++] = args[k];
	argv[i] = NULL;
	if (pipe2(ofd, O_CLOEXEC) < 0)
		return err_set(c->err, SLUICE_EIO, "%s: pipe: %s", what, strerror(errno));
	if (pipe2(efd, O_CLOEXEC) < 0) {
		close(ofd[0]);
		close(ofd[1]);
		return err_set(c->err, SLUICE_EIO, "%s: pipe: %s", what, strerror(errno));
	}
	setenv("GIT_TERMINAL_PROMPT", "0", 1);   /* never wait for a password nobody will type */
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, ofd[1], 1);
	posix_spawn_file_actions_adddup2(&fa, efd[1], 2);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	rc = posix_spawnp(&pid, "git", &fa, NULL, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(ofd[1]);
	close(efd[1]);
	if (rc) {
		close(ofd[0]);
		close(efd[0]);
		return err_set(c->err, SLUICE_EIO, "%s: cannot run git: %s (install git)", what, strerror(rc));
	}
	while (open_fds) {
		struct pollfd p[2] = { { ofd[0], POLLIN, 0 }, { efd[0], POLLIN, 0 } };
		char tmp[4096];
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		for (k = 0; k < 2; k++) {
			ssize_t n;
			if (p[k].fd < 0 || !(p[k].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			n = read(p[k].fd, tmp, sizeof(tmp));
			if (n <= 0) {
				close(p[k].fd);
				if (k == 0)
					ofd[0] = -1;
				else
					efd[0] = -1;
				open_fds--;
				continue;
			}
			buf_add(k == 0 ? (out ? out : &scratch) : &errout, tmp, (size_t)n);
		}
	}
	if (ofd[0] >= 0)
		close(ofd[0]);
	if (efd[0] >= 0)
		close(efd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	buf_release(&scratch);
	rc = 0;
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		const char *line;
		buf_rtrim(&errout);
		line = strrchr(errout.s, '\n');
		line = line ? line + 1 : errout.s;
		rc = err_set(c->err, SLUICE_EIO, "%s: git %s failed%s%s", what, args[0], *line ? ": " : "", line);
	}
	buf_release(&errout);
	return rc;
}

/* A commit id for rev in the clone, or NULL: tags, then remote branches, then commits. */
static const char *git_resolve(struct ctx *c, const char *clone, const char *rev)
{
	const char *tries[3];
	size_t i;

	tries[0] = arena_printf(c->a, "refs/tags/%s^{commit}", rev);
	tries[1] = arena_printf(c->a, "refs/remotes/origin/%s^{commit}", rev);
	tries[2] = arena_printf(c->a, "%s^{commit}", rev);
	for (i = 0; i < 3; i++) {
		const char *args[] = { "rev-parse", "--verify", "--quiet", "--end-of-options", tries[i], NULL };
		struct buf out = BUF_INIT;
		struct sluice_err ignored = SLUICE_ERR_INIT;
		struct sluice_err *saved = c->err;
		int rc;
		c->err = &ignored;
		rc = git(c, clone, args, &out, "rev-parse");
		c->err = saved;
		buf_rtrim(&out);
		if (!rc && out.len == 40) {
			const char *sha = arena_strdup(c->a, out.s);
			buf_release(&out);
			return sha;
		}
		buf_release(&out);
	}
	return NULL;
}

/* Check out sha and make sure that is what the folder now holds. */
static int git_checkout(struct ctx *c, const char *clone, const char *sha, const char *what)
{
	const char *co[] = { "checkout", "--quiet", "--detach", sha, "--", NULL };
	const char *head[] = { "rev-parse", "HEAD", NULL };
	struct buf out = BUF_INIT;
	int rc;

	if ((rc = git(c, clone, co, NULL, what)) || (rc = git(c, clone, head, &out, what)))
		goto out;
	buf_rtrim(&out);
	if (strcmp(out.s, sha))
		rc = err_set(c->err, SLUICE_EUSAGE, "%s: checked out %s, expected %s", what, out.s, sha);
out:
	buf_release(&out);
	return rc;
}

static int git_clone(struct ctx *c, const char *url, const char *dest, const char *what)
{
	const char *args[] = { "clone", "--quiet", "--no-checkout", "--", url, dest, NULL };

	return git(c, NULL, args, NULL, what);
}

/* The highest tag that is a version in range (and satisfies extra, when given). */
static int pick_tag(struct ctx *c, const char *clone, const struct spec *s, const struct spec *extra,
		    char *tag, size_t cap, struct semver *best)
{
	const char *args[] = { "tag", "--list", NULL };
	struct buf out = BUF_INIT;
	char *line, *next;
	int found = 0, rc;

	if ((rc = git(c, clone, args, &out, s->package)))
		return rc;
	for (line = out.s; line && *line; line = next) {
		struct semver v;
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (semver_parse(line, &v) || !semver_match(s->reqs, s->nreqs, &v, s->prerelease) ||
		    (extra && !semver_match(extra->reqs, extra->nreqs, &v, extra->prerelease)))
			continue;
		if (!found || semver_cmp(&v, best) > 0) {
			*best = v;
			snprintf(tag, cap, "%s", line);
			found = 1;
		}
	}
	buf_release(&out);
	return found ? 0 : 1;
}

/* ---- copying a local package -------------------------------------------------- */

static int copy_file(struct ctx *c, const char *from, const char *to, mode_t mode)
{
	struct buf data = BUF_INIT;
	int rc = fs_read_file(from, &data, c->err);

	if (!rc)
		rc = fs_write_file(to, data.s, data.len, c->err);
	if (!rc && chmod(to, mode & 0777) < 0)
		rc = err_set(c->err, SLUICE_EIO, "chmod %s: %s", to, strerror(errno));
	buf_release(&data);
	return rc;
}

/*
 * Copy a folder. At the top, what a project makes for itself (its own
 * installed packages, target/, logs/) and dot files are left out: a local
 * package is often the folder above the project.
 */
static int copy_tree(struct ctx *c, const char *from, const char *to, int depth)
{
	DIR *d;
	struct dirent *de;
	int rc = 0;

	if (depth > 64)
		return err_set(c->err, SLUICE_EUSAGE, "%s: folders nested too deep (a symlink loop?)", from);
	if (mkdir(to, 0777) < 0 && errno != EEXIST)
		return err_set(c->err, SLUICE_EIO, "mkdir %s: %s", to, strerror(errno));
	if (!(d = opendir(from)))
		return err_set(c->err, SLUICE_EIO, "%s: %s", from, strerror(errno));
	while (!rc && (de = readdir(d))) {
		const char *src, *dst;
		struct stat st;
		if (de->d_name[0] == '.')
			continue;
		if (!depth && (!strcmp(de->d_name, "dbt_packages") || !strcmp(de->d_name, "target") ||
			       !strcmp(de->d_name, "logs") || !strcmp(de->d_name, "dbt_modules")))
			continue;
		src = arena_printf(c->a, "%s/%s", from, de->d_name);
		dst = arena_printf(c->a, "%s/%s", to, de->d_name);
		if (!strcmp(src, c->install_abs) || !strcmp(src, c->work))
			continue;
		if (stat(src, &st) < 0)
			rc = err_set(c->err, SLUICE_EIO, "%s: %s", src, strerror(errno));
		else if (S_ISDIR(st.st_mode))
			rc = copy_tree(c, src, dst, depth + 1);
		else if (S_ISREG(st.st_mode))
			rc = copy_file(c, src, dst, st.st_mode);
	}
	closedir(d);
	return rc;
}

/* ---- resolving ---------------------------------------------------------------- */

static const char *spec_key(struct ctx *c, const struct spec *s)
{
	char real[PATH_MAX];
	size_t i;
	char *k;

	switch (s->kind) {
	case SPEC_LOCAL:
		return arena_printf(c->a, "local:%s", realpath(s->local_abs, real) ? real : s->local_abs);
	case SPEC_GIT:
		return arena_printf(c->a, "git:%s#%s", s->git, s->subdirectory ? s->subdirectory : "");
	case SPEC_HUB:
		k = arena_printf(c->a, "hub:%s", s->package);
		for (i = 0; k[i]; i++)
			k[i] = (char)tolower((unsigned char)k[i]);
		return k;
	}
	return "";
}

static const char *spec_display(struct ctx *c, const struct spec *s)
{
	switch (s->kind) {
	case SPEC_LOCAL:
		return arena_printf(c->a, "local %s", s->local);
	case SPEC_GIT:
		return arena_printf(c->a, "git %s%s%s", url_display(c->a, s->git), s->subdirectory ? " subdirectory " : "",
				    s->subdirectory ? s->subdirectory : "");
	case SPEC_HUB:
		return arena_printf(c->a, "package %s", s->package);
	}
	return "";
}

/* The package's name from its dbt_project.yml, checked. */
static int package_name(struct ctx *c, struct pkg *p)
{
	const char *file = arena_printf(c->a, "%s/dbt_project.yml", p->dir), *what = spec_display(c, p->spec);
	struct ynode *root;
	const struct ynode *n;
	struct sluice_err inner = SLUICE_ERR_INIT;
	size_t i;

	if (!fs_exists(file))
		return err_set(c->err, SLUICE_EUSAGE, "%s: %s has no dbt_project.yml%s: it is not a dbt package",
			       p->spec->where, what, p->spec->subdirectory ? " in that subdirectory" : "");
	if (yaml_load_file(c->a, file, &root, NULL, &inner))
		return err_set(c->err, SLUICE_EUSAGE, "%s: %s: dbt_project.yml: %s", p->spec->where, what, inner.msg);
	n = root && root->kind == Y_MAP ? ymap_get(root, "name") : NULL;
	if (is_null(n) || n->kind != Y_SCALAR)
		return err_set(c->err, SLUICE_EUSAGE, "%s: %s: its dbt_project.yml has no name:", p->spec->where, what);
	for (i = 0; n->scalar[i]; i++)
		if (!(isalnum((unsigned char)n->scalar[i]) || n->scalar[i] == '_'))
			return err_set(c->err, SLUICE_EUSAGE, "%s: %s: its dbt_project.yml name '%s' is not an identifier",
				       p->spec->where, what, n->scalar);
	p->name = arena_strdup(c->a, n->scalar);
	if (p->spec->kind == SPEC_HUB) {
		const char *want = strchr(p->spec->package, '/') + 1;
		if (strcmp(want, p->name))
			return err_set(c->err, SLUICE_EUSAGE, "%s: package %s is named '%s' in its dbt_project.yml, not '%s': "
				       "the repository is not that package", p->spec->where, p->spec->package, p->name, want);
	}
	if (p->spec->name && strcmp(p->spec->name, p->name))
		return err_set(c->err, SLUICE_EUSAGE, "%s: %s is named '%s' in its dbt_project.yml, not '%s' as locked",
			       p->spec->where, what, p->name, p->spec->name);
	return 0;
}

static const char *pin_of(struct ctx *c, const char *key)
{
	size_t i;

	for (i = 0; i < c->npins; i++)
		if (!strcmp(c->pin_keys[i], key))
			return c->pin_versions[i];
	return NULL;
}

/* Fetch what s names into a new work folder. */
static int fetch(struct ctx *c, struct pkg *p)
{
	struct spec *s = p->spec;
	const char *what = spec_display(c, s), *url, *rev;
	int rc;

	p->clone = arena_printf(c->a, "%s/%zu", c->work, ++c->serial);
	p->dir = p->clone;
	if (s->kind == SPEC_LOCAL) {
		if (!fs_is_dir(s->local_abs))
			return err_set(c->err, SLUICE_EUSAGE, "%s: local package %s: no such folder", s->where, s->local);
		return copy_tree(c, s->local_abs, p->clone, 0);
	}
	url = s->kind == SPEC_GIT ? git_mirror(c->a, s->git_url) : deps_hub_url(c->a, s->package);
	if (!url)
		return err_set(c->err, SLUICE_EUSAGE, "%s: package %s: sluice does not know its repository and does not "
			       "ask the hub; put a clone at $SLUICE_PACKAGE_MIRROR/%s or use git: with its URL",
			       s->where, s->package, s->package);
	if ((rc = git_clone(c, url, p->clone, arena_printf(c->a, "%s: %s", s->where, what)))) {
		struct buf msg = BUF_INIT;
		const char *shown = url_display(c->a, url), *scheme = strstr(url, "://");
		/* git may print the URL with its user and password: keep only what is safe */
		buf_puts(&msg, c->err->msg);
		if (strcmp(shown, url) && scheme) {
			const char *user = scheme + 3, *at = strchr(user, '@'), *colon = strchr(user, ':');
			buf_scrub(&msg, url);
			buf_scrub(&msg, arena_strndup(c->a, user, (size_t)(at - user)));
			if (colon && colon < at)
				buf_scrub(&msg, arena_strndup(c->a, colon + 1, (size_t)(at - colon - 1)));
		}
		err_set(c->err, rc, "%s", msg.s);
		buf_release(&msg);
		return rc;
	}
	if (s->kind == SPEC_HUB) {
		const char *pin = pin_of(c, p->key);
		struct semver best;
		struct spec exact;
		char tag[128];
		if (pin) {
			memset(&exact, 0, sizeof(exact));
			exact.nreqs = (size_t)semver_reqs_parse(pin, exact.reqs, MAX_REQS);
			exact.prerelease = 1;
		}
		rc = pick_tag(c, p->clone, s, pin ? &exact : NULL, tag, sizeof(tag), &best);
		if (rc < 0)
			return rc;
		if (rc)
			return err_set(c->err, SLUICE_EUSAGE, "%s: package %s: no tag of %s satisfies version %s",
				       s->where, s->package, url_display(c->a, url), s->version_text);
		semver_format(&best, p->version, sizeof(p->version));
		rev = arena_strdup(c->a, tag);
	} else {
		rev = s->revision ? s->revision : "HEAD";
		if (!s->revision && s->warn_unpinned && !c->from_lock)
			err_list_add(c->warnings, "%s: git package %s is not pinned (no revision:): installing the head "
				     "of its default branch", s->where, url_display(c->a, s->git));
	}
	p->sha = git_resolve(c, p->clone, rev);
	if (!p->sha)
		return err_set(c->err, SLUICE_EUSAGE, "%s: %s: no tag, branch or commit '%s'", s->where, what, rev);
	if (c->from_lock && s->kind == SPEC_GIT && strcmp(p->sha, s->revision) &&
	    strncmp(p->sha, s->revision, strlen(s->revision)))
		return err_set(c->err, SLUICE_EUSAGE, "%s: %s: the locked revision %s resolves to %s", s->where, what,
			       s->revision, p->sha);
	if ((rc = git_checkout(c, p->clone, p->sha, arena_printf(c->a, "%s: %s", s->where, what))))
		return rc;
	if (s->subdirectory) {
		p->dir = arena_printf(c->a, "%s/%s", p->clone, s->subdirectory);
		if (!fs_is_dir(p->dir))
			return err_set(c->err, SLUICE_EUSAGE, "%s: %s: no subdirectory '%s' at %s", s->where, what,
				       s->subdirectory, p->sha);
	}
	return 0;
}

/* The package's own requirements, read from its fetched copy. */
static int follow(struct ctx *c, const struct pkg *p)
{
	static const char *const files[] = { "packages.yml", "dependencies.yml" };
	struct ynode *root;
	size_t i;

	for (i = 0; i < 2; i++) {
		const char *abs = arena_printf(c->a, "%s/%s", p->dir, files[i]);
		const char *base = p->spec->kind == SPEC_LOCAL ? p->spec->local_abs : p->dir;
		if (!fs_exists(abs))
			continue;
		/* messages name the file where it will be installed */
		return parse_spec_file(c, abs, arena_printf(c->a, "%s/%s/%s", c->install_rel, p->name, files[i]), base,
				       p->name, 0, &root);
	}
	return 0;
}

static int conflict(struct ctx *c, struct pkg *have, struct spec *s)
{
	struct spec *first = have->spec;

	if (s->kind == SPEC_LOCAL)
		return 0;
	if (s->kind == SPEC_GIT) {
		const char *sha;
		if ((first->revision && s->revision && !strcmp(first->revision, s->revision)) ||
		    (!first->revision && !s->revision))
			return 0;
		sha = git_resolve(c, have->clone, s->revision ? s->revision : "HEAD");
		if (sha && !strcmp(sha, have->sha))
			return 0;
		return err_set(c->err, SLUICE_EUSAGE, "conflicting revisions of %s: %s (%s) wants %s, %s (%s) wants %s",
			       url_display(c->a, s->git), first->where, first->requirer,
			       first->revision ? first->revision : "its default branch", s->where, s->requirer,
			       s->revision ? s->revision : "its default branch");
	}
	{
		struct semver v, best;
		char tag[128];
		int rc;
		semver_parse(have->version, &v);
		if (semver_match(s->reqs, s->nreqs, &v, s->prerelease))
			return 0;
		rc = pick_tag(c, have->clone, first, s, tag, sizeof(tag), &best);
		if (rc < 0)
			return rc;
		if (rc || c->npins >= MAX_RESTARTS)
			return err_set(c->err, SLUICE_EUSAGE, "conflicting versions of %s: %s (%s) wants %s, %s (%s) wants "
				       "%s, and no version satisfies both", s->package, first->where, first->requirer,
				       first->version_text, s->where, s->requirer, s->version_text);
		/* a version both accept: start again with it */
		c->pin_keys = arena_grow(c->a, c->pin_keys, c->npins, c->npins + 1, sizeof(char *));
		c->pin_versions = arena_grow(c->a, c->pin_versions, c->npins, c->npins + 1, sizeof(char *));
		c->pin_keys[c->npins] = have->key;
		semver_format(&best, tag, sizeof(tag));
		c->pin_versions[c->npins++] = arena_printf(c->a, "=%s", tag);
		c->restart = 1;
		return 0;
	}
}

/* Resolve specs[first...] breadth first; each fetched package adds its own. */
static int resolve(struct ctx *c, size_t first)
{
	size_t i, k;
	int rc;

	for (i = first; i < c->nspecs && !c->restart; i++) {
		struct spec *s = c->specs[i];
		const char *key = spec_key(c, s);
		struct pkg *p = NULL;
		for (k = 0; k < c->npkgs; k++)
			if (!strcmp(c->pkgs[k].key, key))
				p = &c->pkgs[k];
		if (p) {
			if ((rc = conflict(c, p, s)))
				return rc;
			continue;
		}
		c->pkgs = arena_grow(c->a, c->pkgs, c->npkgs, c->npkgs + 1, sizeof(*c->pkgs));
		p = &c->pkgs[c->npkgs++];
		memset(p, 0, sizeof(*p));
		p->spec = s;
		p->key = key;
		if ((rc = fetch(c, p)) || (rc = package_name(c, p)))
			return rc;
		for (k = 0; k + 1 < c->npkgs; k++)
			if (!strcmp(c->pkgs[k].name, p->name))
				return err_set(c->err, SLUICE_EUSAGE, "two packages are named '%s': %s (%s) and %s (%s)",
					       p->name, c->pkgs[k].spec->where, spec_display(c, c->pkgs[k].spec), s->where,
					       spec_display(c, s));
		if (!c->from_lock && (rc = follow(c, p)))
			return rc;
	}
	return 0;
}

/* ---- installing and the lock ----------------------------------------------------- */

/*
 * Put every package in place, or none: the old folders move into the work
 * folder first, then the new ones into place; a rename that fails moves
 * everything back. Renames within one file system, so nothing is copied.
 */
static int install_all(struct ctx *c)
{
	const char **final = arena_alloc(c->a, (c->npkgs + 1) * sizeof(char *));
	const char **old = arena_alloc(c->a, (c->npkgs + 1) * sizeof(char *));
	size_t i, moved = 0, placed = 0;
	int rc = 0;

	for (i = 0; i < c->npkgs && !rc; i++) {
		const struct pkg *p = &c->pkgs[i];
		final[i] = arena_printf(c->a, "%s/%s", c->install_abs, p->name);
		old[i] = fs_exists(final[i]) ? arena_printf(c->a, "%s/old-%s", c->work, p->name) : NULL;
		if (p->spec->kind != SPEC_LOCAL)
			rc = fs_remove_tree(arena_printf(c->a, "%s/.git", p->clone), c->err);
	}
	for (; !rc && moved < c->npkgs; moved++)
		if (old[moved] && rename(final[moved], old[moved]) < 0) {
			rc = err_set(c->err, SLUICE_EIO, "rename %s: %s", final[moved], strerror(errno));
			break;
		}
	for (; !rc && placed < c->npkgs; placed++)
		if (rename(c->pkgs[placed].dir, final[placed]) < 0) {
			rc = err_set(c->err, SLUICE_EIO, "rename into %s: %s", final[placed], strerror(errno));
			break;
		}
	if (!rc)
		return 0;
	while (placed-- > 0)
		rename(final[placed], c->pkgs[placed].dir);
	while (moved-- > 0)
		if (old[moved])
			rename(old[moved], final[moved]);
	return rc;
}

/* s as a YAML scalar: plain when nothing in it could read as something else. */
static void yaml_scalar(struct buf *b, const char *s, int quote)
{
	size_t i;
	int plain = !quote && *s && strcspn(s, ":#'\"{}[],&*!|>%@`\\ \t") == strlen(s) && !isdigit((unsigned char)s[0]);

	if (plain) {
		buf_puts(b, s);
		return;
	}
	buf_addc(b, '"');
	for (i = 0; s[i]; i++) {
		if (s[i] == '"' || s[i] == '\\')
			buf_addc(b, '\\');
		buf_addc(b, s[i]);
	}
	buf_addc(b, '"');
}

static void lock_line(struct buf *b, const char *key, const char *v, int first)
{
	buf_printf(b, "%s%s: ", first ? "  - " : "    ", key);
	/* a commit id of digits and one 'e' would read as a number */
	yaml_scalar(b, v, !strcmp(key, "revision"));
	buf_addc(b, '\n');
}

static int write_lock(struct ctx *c, const char *hash)
{
	struct buf b = BUF_INIT;
	size_t i;
	int rc;

	buf_puts(&b, "packages:\n");
	for (i = 0; i < c->npkgs; i++) {
		const struct pkg *p = &c->pkgs[i];
		const struct spec *s = p->spec;
		lock_line(&b, "name", p->name, 1);
		if (s->kind == SPEC_LOCAL) {
			lock_line(&b, "local", s->local, 0);
		} else if (s->kind == SPEC_GIT) {
			lock_line(&b, "git", s->git, 0);
			lock_line(&b, "revision", p->sha, 0);
			if (s->subdirectory)
				lock_line(&b, "subdirectory", s->subdirectory, 0);
		} else {
			lock_line(&b, "package", s->package, 0);
			/* dbt locks hub packages by version: the commit is a comment, for people */
			buf_printf(&b, "    version: \"%s\"  # %s\n", p->version, p->sha);
		}
	}
	buf_printf(&b, "sha1_hash: %s\n", hash);
	rc = fs_write_atomic(arena_printf(c->a, "%s/package-lock.yml", c->dir), b.s, b.len, c->err);
	buf_release(&b);
	return rc;
}

/* The SHA-1 of the specification's packages: list, in a canonical form. */
static int spec_hash(struct ctx *c, const struct ynode *root, char *hex)
{
	const struct ynode *list = root && root->kind == Y_MAP ? ymap_get(root, "packages") : NULL;
	struct val v = list ? yaml_to_val(c->a, list) : val_none();
	struct buf text = BUF_INIT;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0, i;

	val_repr(&v, &text);
	if (!EVP_Digest(text.s, text.len, md, &n, EVP_sha1(), NULL)) {
		buf_release(&text);
		return err_set(c->err, SLUICE_EIO, "sha1: digest failed");
	}
	buf_release(&text);
	for (i = 0; i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return 0;
}

/* packages-install-path from the project file, default dbt_packages. */
static int install_path(struct ctx *c, const char **rel)
{
	const char *file = arena_printf(c->a, "%s/sluice.yml", c->dir);
	struct ynode *root;
	const struct ynode *n;
	int rc;

	*rel = "dbt_packages";
	if (!fs_exists(file))
		file = arena_printf(c->a, "%s/dbt_project.yml", c->dir);
	if (!fs_exists(file))
		return err_set(c->err, SLUICE_EUSAGE, "no sluice.yml or dbt_project.yml in %s (run sluice deps in a "
			       "project directory or pass --project-dir)", c->dir);
	if ((rc = load_yaml(c, file, strrchr(file, '/') + 1, &root)))
		return rc;
	n = root && root->kind == Y_MAP ? ymap_get(root, "packages-install-path") : NULL;
	if (!n && root && root->kind == Y_MAP)
		n = ymap_get(root, "packages_install_path");
	if (is_null(n))
		return 0;
	if (n->kind != Y_SCALAR || n->scalar[0] == '/' || strstr(n->scalar, ".."))
		return yaml_error(c->err, n, "packages-install-path must be a folder inside the project");
	*rel = arena_strdup(c->a, n->scalar);
	return 0;
}

int deps_install(const struct deps_opts *o, struct deps_result *r, struct sluice_err *err)
{
	const char *dir = o && o->project_dir && *o->project_dir ? o->project_dir : ".";
	struct ctx c;
	char real[PATH_MAX], hash[2 * EVP_MAX_MD_SIZE + 1];
	const char *spec_abs, *lock_abs;
	struct ynode *root = NULL, *lock_root = NULL;
	size_t nroot, i;
	int rc, work_made = 0;

	memset(r, 0, sizeof(*r));
	arena_init(&r->arena);
	memset(&c, 0, sizeof(c));
	c.a = &r->arena;
	c.err = err;
	c.warnings = &r->warnings;
	if (!realpath(dir, real))
		return err_set(err, SLUICE_EUSAGE, "project directory %s: %s", dir, strerror(errno));
	c.dir = arena_strdup(c.a, real);
	if ((rc = install_path(&c, &c.install_rel)))
		return rc;
	r->install_path = c.install_rel;
	c.install_abs = arena_printf(c.a, "%s/%s", c.dir, c.install_rel);
	c.work = arena_printf(c.a, "%s/.sluice-deps.%ld", c.install_abs, (long)getpid());
	r->spec_file = "packages.yml";
	spec_abs = arena_printf(c.a, "%s/packages.yml", c.dir);
	if (!fs_exists(spec_abs)) {
		r->spec_file = "dependencies.yml";
		spec_abs = arena_printf(c.a, "%s/dependencies.yml", c.dir);
		if (!fs_exists(spec_abs)) {
			r->spec_file = NULL;
			return 0;
		}
	} else if (fs_exists(arena_printf(c.a, "%s/dependencies.yml", c.dir))) {
		struct ynode *dep;
		if ((rc = load_yaml(&c, arena_printf(c.a, "%s/dependencies.yml", c.dir), "dependencies.yml", &dep)))
			return rc;
		if (dep && dep->kind == Y_MAP && !is_null(ymap_get(dep, "packages")))
			return yaml_error(err, ymap_get(dep, "packages"), "packages are listed in both packages.yml and "
					  "dependencies.yml: keep one");
	}
	if ((rc = parse_spec_file(&c, spec_abs, r->spec_file, c.dir, "the project", 0, &root)) ||
	    (rc = spec_hash(&c, root, hash)))
		goto out;
	nroot = c.nspecs;
	lock_abs = arena_printf(c.a, "%s/package-lock.yml", c.dir);
	if (!o->upgrade && fs_exists(lock_abs)) {
		struct spec **saved = c.specs;
		size_t nsaved = c.nspecs;
		const struct ynode *h;
		if ((rc = load_yaml(&c, lock_abs, "package-lock.yml", &lock_root)))
			goto out;
		h = lock_root && lock_root->kind == Y_MAP ? ymap_get(lock_root, "sha1_hash") : NULL;
		if (h && h->kind == Y_SCALAR && !strcmp(h->scalar, hash)) {
			/* the lock is for this specification: install exactly what it says */
			c.specs = NULL;
			c.nspecs = c.cap = 0;
			c.from_lock = 1;
			if ((rc = parse_spec_file(&c, lock_abs, "package-lock.yml", c.dir, "package-lock.yml", 1, &lock_root))) {
				free(saved);
				goto out;
			}
			free(saved);
			nroot = c.nspecs;
		} else {
			c.specs = saved;
			c.nspecs = nsaved;
		}
	}
	r->from_lock = c.from_lock;
	if ((rc = fs_mkdir_p(c.install_abs, err)))
		goto out;
	for (;;) {
		if ((rc = fs_remove_tree(c.work, err)) || (rc = fs_mkdir_p(c.work, err)))
			goto out;
		work_made = 1;
		c.npkgs = 0;
		c.nspecs = nroot;   /* what packages added is found again */
		c.restart = 0;
		if ((rc = resolve(&c, 0)))
			goto out;
		if (!c.restart)
			break;
	}
	rc = install_all(&c);
	if (!rc && !c.from_lock)
		rc = write_lock(&c, hash);
	if (rc)
		goto out;
	r->pkgs = arena_alloc(c.a, (c.npkgs ? c.npkgs : 1) * sizeof(*r->pkgs));
	for (i = 0; i < c.npkgs; i++) {
		const struct pkg *p = &c.pkgs[i];
		struct deps_pkg *d = &r->pkgs[i];
		d->name = p->name;
		d->sha = p->sha;
		d->kind = p->spec->kind == SPEC_LOCAL ? "local" : p->spec->kind == SPEC_GIT ? "git" : "hub";
		d->source = p->spec->kind == SPEC_LOCAL ? p->spec->local :
			    p->spec->kind == SPEC_GIT ? url_display(c.a, p->spec->git) : p->spec->package;
		d->version = p->spec->kind == SPEC_HUB ? arena_strdup(c.a, p->version) : p->spec->revision;
	}
	r->npkgs = c.npkgs;
out:
	if (work_made) {
		struct sluice_err ignored = SLUICE_ERR_INIT;
		fs_remove_tree(c.work, &ignored);
	}
	free(c.specs);
	return rc;
}

int deps_parse(const char *display, const char *text, size_t len, int lock, size_t *n, struct sluice_err *err)
{
	struct arena a = ARENA_INIT;
	struct err_list warnings = { { NULL }, 0, 0 };
	struct ynode *root;
	struct ctx c;
	char hash[2 * EVP_MAX_MD_SIZE + 1];
	int rc;

	memset(&c, 0, sizeof(c));
	c.a = &a;
	c.err = err;
	c.warnings = &warnings;
	c.dir = c.install_abs = c.work = "/nonexistent";
	*n = 0;
	rc = yaml_load_str(&a, display, text, len, &root, &warnings, err);
	if (!rc)
		rc = parse_spec(&c, root, c.dir, "the project", lock);
	if (!rc)
		rc = spec_hash(&c, root, hash);
	*n = c.nspecs;
	free(c.specs);
	err_list_release(&warnings);
	arena_release(&a);
	return rc;
}

void deps_result_release(struct deps_result *r)
{
	if (!r)
		return;
	err_list_release(&r->warnings);
	arena_release(&r->arena);
	memset(r, 0, sizeof(*r));
}
