/*
 * project.c: loads a project into the plain structs of project.h: sluice.yml
 * (with dbt's folder config and vars), the profile target from profiles.yml,
 * the model files and the property YAML (model properties, sources). It
 * renders var()/env_var() in sluice.yml and profiles.yml values and answers
 * those two functions for every other template. It does not parse model
 * SQL, resolve refs or decide materializations: that is manifest.c.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "dialect.h"
#include "project.h"
#include "schedule.h"
#include "yaml.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/xalloc.h"

#define MAX_DIR_DEPTH 64

/* Model file extensions; a language is switched on by setting enabled. */
static const struct {
	const char *ext;
	const char *lang;
	int enabled;
} model_langs[] = {
	{ ".sql", "sql", 1 },
	{ ".sh", "sh", 1 },
};

struct loader {
	struct project *p;
	const struct project_opts *o;
	struct arena tmp;          /* sluice.yml and profiles.yml trees */
	struct val cli_vars;       /* --vars, dict or none */
	struct val target;         /* `target` for templates in sluice.yml, once known */
	int have_target;
	const struct package *pkg; /* whose files are being added, NULL: the root project's */
	struct sluice_err *err;
};

/* ---- small helpers ------------------------------------------------------ */

static int is_null(const struct ynode *n)
{
	/* the same spellings yaml_to_val reads as none */
	return !n || (n->kind == Y_SCALAR && n->plain &&
		      (!n->len || !strcmp(n->scalar, "~") || !strcmp(n->scalar, "null") ||
		       !strcmp(n->scalar, "Null") || !strcmp(n->scalar, "NULL")));
}

/* The dash spelling of sluice.yml keys, or dbt's underscore one. */
static struct ynode *ykey(const struct ynode *map, const char *dash, const char **found)
{
	char under[64];
	struct ynode *n = ymap_get(map, dash);
	size_t i;

	*found = dash;
	if (n)
		return n;
	snprintf(under, sizeof(under), "%s", dash);
	for (i = 0; under[i]; i++)
		if (under[i] == '-')
			under[i] = '_';
	n = ymap_get(map, under);
	if (n) {
		size_t k;
		for (k = 0; k < map->n; k++)
			if (map->items[2 * k + 1] == n)
				*found = map->items[2 * k]->scalar;
	}
	return n;
}

/* Config key as stored: no leading '+', '-' -> '_'. Borrows k when already so. */
static const char *norm_key(struct arena *a, const char *k)
{
	char *c, *q;

	if (*k == '+')
		k++;
	if (!strchr(k, '-'))
		return k;
	c = arena_strdup(a, k);
	for (q = c; *q; q++)
		if (*q == '-')
			*q = '_';
	return c;
}

static int is_hook_key(const char *k)
{
	while (*k == '+' || *k == ' ')
		k++;
	return !strcmp(k, "pre-hook") || !strcmp(k, "post-hook") ||
	       !strcmp(k, "pre_hook") || !strcmp(k, "post_hook");
}

static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j, *row, prev, d;

	if (la > 256 || lb > 256)
		return (size_t)-1;
	row = xmalloc((lb + 1) * sizeof(*row));
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			size_t sub = prev + (a[i - 1] != b[j - 1]);
			size_t del = row[j] + 1, ins = row[j - 1] + 1;
			prev = row[j];
			d = sub < del ? sub : del;
			row[j] = d < ins ? d : ins;
		}
	}
	d = row[lb];
	free(row);
	return d;
}

static const char *suggest_model(const struct project *p, const char *name)
{
	size_t i, best = (size_t)-1, limit = strlen(name) / 3 + 1;
	const char *s = NULL;

	for (i = 0; i < p->nmodels; i++) {
		size_t d = edit_distance(name, p->models[i]->name);
		if (d < best) {
			best = d;
			s = p->models[i]->name;
		}
	}
	return best <= limit ? s : NULL;
}

/* Read an open file into the arena, NUL-terminated; closes fd. */
static int read_fd_into_arena(struct arena *a, int fd, const char *path, const char **out, size_t *len,
			      struct sluice_err *err)
{
	struct stat st;
	size_t got = 0, size;
	char *data;

	if (fstat(fd, &st)) {
		close(fd);
		return err_set(err, SLUICE_EIO, "%s: %s", path, strerror(errno));
	}
	size = (size_t)st.st_size;
	data = arena_alloc(a, size + 1);
	while (got < size) {
		ssize_t n = read(fd, data + got, size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err_set(err, SLUICE_EIO, "%s: %s", path, strerror(errno));
			close(fd);
			return SLUICE_EIO;
		}
		if (n == 0)
			break;   /* shrank while we read: take what is there */
		got += (size_t)n;
	}
	close(fd);
	data[got] = '\0';
	*out = data;
	*len = got;
	return 0;
}

static int read_into_arena(struct arena *a, const char *path, const char **out, size_t *len,
			   struct sluice_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return err_set(err, SLUICE_EIO, "%s: %s", path, strerror(errno));
	return read_fd_into_arena(a, fd, path, out, len, err);
}

/* Parse a YAML file; messages name it by `display`. */
static int load_yaml(struct loader *L, struct arena *a, const char *abs, const char *display, struct ynode **root)
{
	const char *text;
	size_t len;
	int rc;

	if ((rc = read_into_arena(a, abs, &text, &len, L->err)))
		return rc;
	return yaml_load_str(a, display, text, len, root, L->p->warnings, L->err);
}

/* ---- rendering env_var()/var() in YAML values --------------------------- */

static int load_host_call(void *ud, const struct tpl_call *c, struct val *out, struct sluice_err *err)
{
	struct loader *L = ud;

	return project_call_builtin(L->p, c, out, NULL, err);
}

static int load_host_lookup(void *ud, const char *name, struct arena *a, struct val *out)
{
	struct loader *L = ud;

	(void)a;
	if (L->have_target && !strcmp(name, "target")) {
		*out = L->target;
		return 0;
	}
	return 1;
}

/* The template reports "path:line:col: msg" relative to the scalar: keep msg. */
static const char *strip_position(const char *msg, const char *path)
{
	size_t n = strlen(path);
	const char *s;

	if (strncmp(msg, path, n) || msg[n] != ':')
		return msg;
	s = msg + n + 1;
	while (isdigit((unsigned char)*s))
		s++;
	if (*s++ != ':')
		return msg;
	while (isdigit((unsigned char)*s))
		s++;
	if (s[0] != ':' || s[1] != ' ')
		return msg;
	return s + 2;
}

/*
 * Render a scalar holding template syntax. A failure names the key and the
 * place, never the value: it may be a password.
 */
static int render_scalar(struct loader *L, const struct ynode *n, const char *key, struct val *out)
{
	struct tpl_host host = { L, load_host_call, load_host_lookup, NULL, NULL };
	struct arena scratch = ARENA_INIT;
	struct buf text = BUF_INIT;
	struct tpl *t;
	int rc;

	rc = tpl_parse(&scratch, n->path, n->scalar, n->len, &t, L->err);
	if (!rc)
		rc = tpl_render(t, &host, &scratch, &text, L->err);
	if (rc) {
		char msg[sizeof(L->err->msg)];
		snprintf(msg, sizeof(msg), "%s", strip_position(L->err->msg, n->path));
		rc = yaml_error(L->err, n, "cannot render '%s': %s", key ? key : "value", msg);
	} else {
		*out = val_str_dup(&L->p->arena, text.s, text.len);
	}
	buf_release(&text);
	arena_release(&scratch);
	return rc;
}

/*
 * YAML node to value in the project arena, rendering template strings when
 * render is set. Hooks are SQL for later (they use this, ref...): never
 * rendered here, as dbt does.
 */
static int conv(struct loader *L, const struct ynode *n, int render, const char *key, struct val *out)
{
	struct arena *a = &L->p->arena;
	struct val item;
	size_t i;
	int rc;

	switch (n->kind) {
	case Y_SCALAR:
		*out = yaml_to_val(a, n);
		if (render && out->kind == V_STR && !tpl_is_plain(n->scalar, n->len))
			return render_scalar(L, n, key, out);
		return 0;
	case Y_SEQ:
		*out = val_list_new();
		for (i = 0; i < n->n; i++) {
			if ((rc = conv(L, n->items[i], render, key, &item)))
				return rc;
			val_list_push(a, out, item);
		}
		return 0;
	case Y_MAP:
		*out = val_dict_new();
		for (i = 0; i < n->n; i++) {
			const struct ynode *k = n->items[2 * i];
			const char *ks = arena_strndup(a, k->scalar, k->len);
			if ((rc = conv(L, n->items[2 * i + 1], render && !is_hook_key(ks), ks, &item)))
				return rc;
			val_dict_set(a, out, ks, item);
		}
		return 0;
	}
	*out = val_none();
	return 0;
}

/* ---- config: folder config, property config, source config --------------- */

/* tags: a string or a list of strings. */
static int check_tags(struct loader *L, const struct ynode *n)
{
	size_t i;

	if (n->kind == Y_SCALAR && !is_null(n))
		return 0;
	if (n->kind == Y_SEQ) {
		for (i = 0; i < n->n; i++)
			if (n->items[i]->kind != Y_SCALAR || is_null(n->items[i]))
				return yaml_error(L->err, n->items[i], "tags must be strings");
		return 0;
	}
	return yaml_error(L->err, n, "tags must be a string or a list of strings");
}

static int tag_in(const struct val *list, const struct val *t)
{
	size_t i;

	for (i = 0; i < list->u.list.n; i++)
		if (val_equal(&list->u.list.items[i], t))
			return 1;
	return 0;
}

static void tag_add(struct arena *a, struct val *list, const struct val *t)
{
	struct val s = *t;

	if (s.kind == V_NUM || s.kind == V_BOOL) {
		/* tags: [2024] is the tag "2024" */
		struct buf b = BUF_INIT;
		val_format(t, &b);
		s = val_str_dup(a, b.s, b.len);
		buf_release(&b);
	}
	if (s.kind == V_STR && !tag_in(list, &s))
		val_list_push(a, list, s);
}

/*
 * Set one config key in acc (which the caller owns): tags accumulate in
 * order of first appearance, everything else overrides.
 */
static void cfg_set(struct arena *a, struct val *acc, const char *key, const struct val *v)
{
	const struct val *old;
	struct val tags;
	size_t i;

	if (strcmp(key, "tags")) {
		val_dict_set(a, acc, key, *v);
		return;
	}
	tags = val_list_new();
	old = val_get(acc, "tags");
	if (old && old->kind == V_LIST)
		for (i = 0; i < old->u.list.n; i++)
			tag_add(a, &tags, &old->u.list.items[i]);
	if (v->kind == V_LIST)
		for (i = 0; i < v->u.list.n; i++)
			tag_add(a, &tags, &v->u.list.items[i]);
	else
		tag_add(a, &tags, v);
	val_dict_set(a, acc, "tags", tags);
}

/* One folder level: '+key' is config; 'key: {map}' a subfolder; 'key: scalar' config. */
static void cfg_apply_level(struct arena *a, struct val *acc, const struct val *level)
{
	size_t i;

	for (i = 0; i < level->u.dict.n; i++) {
		const char *k = level->u.dict.keys[i];
		const struct val *v = &level->u.dict.vals[i];
		if (*k != '+' && v->kind == V_DICT)
			continue;
		cfg_set(a, acc, norm_key(a, k), v);
	}
}

/* Check the `models:` block of sluice.yml before it is used: maps, tags. */
static int check_folder_config(struct loader *L, const struct ynode *n)
{
	size_t i;
	int rc;

	if (n->kind != Y_MAP)
		return yaml_error(L->err, n, "expected a map of folders and +config keys");
	for (i = 0; i < n->n; i++) {
		const struct ynode *k = n->items[2 * i], *v = n->items[2 * i + 1];
		const char *name = k->scalar[0] == '+' ? k->scalar + 1 : k->scalar;
		if (k->scalar[0] != '+' && v->kind == Y_MAP) {
			if ((rc = check_folder_config(L, v)))
				return rc;
		} else if (!strcmp(name, "tags") && (rc = check_tags(L, v))) {
			return rc;
		}
	}
	return 0;
}

/*
 * A map node of config keys, checked (tags) and converted. skip lists keys
 * that are not config (NULL-terminated), for source entries.
 */
static int cfg_from_node(struct loader *L, const struct ynode *n, const char *const *skip,
			 struct val *acc)
{
	struct arena *a = &L->p->arena;
	size_t i, k;
	int rc;

	if (is_null(n))
		return 0;
	if (n->kind != Y_MAP)
		return yaml_error(L->err, n, "config must be a map");
	for (i = 0; i < n->n; i++) {
		const struct ynode *key = n->items[2 * i], *v = n->items[2 * i + 1];
		const char *name = norm_key(&L->tmp, key->scalar);
		struct val val;
		int skipped = 0;
		for (k = 0; skip && skip[k]; k++)
			if (!strcmp(name, skip[k]))
				skipped = 1;
		if (skipped)
			continue;
		name = arena_strdup(a, name);   /* the tree goes away, the config stays */
		if (!strcmp(name, "tags") && (rc = check_tags(L, v)))
			return rc;
		val = yaml_to_val(a, v);
		cfg_set(a, acc, name, &val);
	}
	return 0;
}

/* ---- sluice.yml ---------------------------------------------------------- */

static int load_cli_vars(struct loader *L)
{
	const char *s = L->o ? L->o->vars_json : NULL;
	struct ynode *root;
	int rc;

	L->cli_vars = val_none();
	if (!s || !*s)
		return 0;
	rc = yaml_load_str(&L->tmp, "--vars", s, strlen(s), &root, L->p->warnings, L->err);
	if (rc) {
		char msg[sizeof(L->err->msg)];
		const char *m = L->err->msg;
		if (!strncmp(m, "--vars:", 7))
			m += 7;
		snprintf(msg, sizeof(msg), "%s", m);
		return err_set(L->err, rc, "--vars: %s", msg);
	}
	if (!root)
		return 0;
	if (root->kind != Y_MAP)
		return err_set(L->err, SLUICE_EUSAGE, "--vars: %d:%d: expected a map like '{key: value}'",
			       root->line, root->col);
	L->cli_vars = yaml_to_val(&L->p->arena, root);
	return 0;
}

/*
 * vars: top-level keys are global; a key equal to the project name (scope)
 * holding a map gives this project's vars, which override; --vars
 * overrides both when cli is set. With render set, values are rendered,
 * except those an override hides (so --vars can stand in for a missing
 * env var).
 */
static int build_vars_scoped(struct loader *L, const struct ynode *vars, const char *scope, int cli, int render,
			     struct val *out)
{
	const struct val none = val_none(), *over = cli ? &L->cli_vars : &none;
	const struct ynode *scoped = NULL;
	struct val v;
	size_t i, pass;
	int rc;

	*out = val_dict_new();
	if (!is_null(vars) && vars->kind != Y_MAP)
		return yaml_error(L->err, vars, "vars must be a map");
	if (!is_null(vars)) {
		scoped = ymap_get(vars, scope);
		if (scoped && scoped->kind != Y_MAP)
			scoped = NULL;
	}
	for (pass = 0; pass < 2 && !is_null(vars); pass++) {
		const struct ynode *m = pass ? scoped : vars;
		for (i = 0; m && i < m->n; i++) {
			const char *k = m->items[2 * i]->scalar;
			const struct ynode *vn = m->items[2 * i + 1];
			if (!pass && vn == scoped)
				continue;
			if (val_get(over, k) || (!pass && ymap_get(scoped, k)))
				continue;
			if ((rc = conv(L, vn, render, k, &v)))
				return rc;
			val_dict_set(&L->p->arena, out, arena_strdup(&L->p->arena, k), v);
		}
	}
	if (over->kind == V_DICT)
		for (i = 0; i < over->u.dict.n; i++)
			val_dict_set(&L->p->arena, out, over->u.dict.keys[i], over->u.dict.vals[i]);
	return 0;
}

static int build_vars(struct loader *L, const struct ynode *vars, int render, struct val *out)
{
	return build_vars_scoped(L, vars, L->p->name, 1, render, out);
}

/* model-paths and test-paths: a path or a list of paths, relative. */
static int path_list_of(struct loader *L, const struct ynode *root, const struct val *raw, const char *key,
			const char *def, const char ***out, size_t *n)
{
	struct arena *a = &L->p->arena;
	const char *found;
	const struct ynode *node = ykey(root, key, &found);
	const struct val *v = val_get(raw, found);
	size_t i, cnt;

	if (is_null(node)) {
		*out = arena_alloc(a, sizeof(char *));
		(*out)[0] = def;
		*n = 1;
		return 0;
	}
	if (node->kind == Y_MAP || (node->kind == Y_SEQ && !node->n))
		return yaml_error(L->err, node, "%s must be a path or a list of paths", found);
	cnt = node->kind == Y_SEQ ? node->n : 1;
	*out = arena_alloc(a, cnt * sizeof(char *));
	for (i = 0; i < cnt; i++) {
		const struct ynode *in = node->kind == Y_SEQ ? node->items[i] : node;
		const struct val *iv = node->kind == Y_SEQ ? &v->u.list.items[i] : v;
		char *s;
		size_t len;
		if (in->kind != Y_SCALAR || iv->kind != V_STR || !iv->u.str.len)
			return yaml_error(L->err, in, "%s must be a path or a list of paths", found);
		s = arena_strdup(a, iv->u.str.s);
		while (s[0] == '.' && s[1] == '/')
			s += 2;
		len = strlen(s);
		while (len > 1 && s[len - 1] == '/')
			s[--len] = '\0';
		if (s[0] == '/')
			return yaml_error(L->err, in, "%s must be relative to the project directory", found);
		(*out)[i] = s;
	}
	*n = cnt;
	return 0;
}

static int path_list(struct loader *L, const struct ynode *root, const char *key, const char *def,
		     const char ***out, size_t *n)
{
	return path_list_of(L, root, &L->p->raw, key, def, out, n);
}

/* on-run-start / on-run-end: a string or a list of strings, kept as a list. */
static int hook_list(struct loader *L, const struct ynode *root, const char *key, struct val *out)
{
	const char *found;
	const struct ynode *node = ykey(root, key, &found);
	const struct val *v = val_get(&L->p->raw, found);
	size_t i;

	*out = val_list_new();
	if (is_null(node))
		return 0;
	if (node->kind == Y_SCALAR && v->kind == V_STR) {
		val_list_push(&L->p->arena, out, *v);
		return 0;
	}
	if (node->kind != Y_SEQ)
		return yaml_error(L->err, node, "%s must be a string or a list of strings", found);
	for (i = 0; i < node->n; i++) {
		if (v->u.list.items[i].kind != V_STR)
			return yaml_error(L->err, node->items[i], "%s must be a string or a list of strings", found);
		val_list_push(&L->p->arena, out, v->u.list.items[i]);
	}
	return 0;
}

static int is_late_key(const char *k)
{
	static const char *const late[] = {
		"on-run-start", "on-run-end", "on_run_start", "on_run_end",
		"query-comment", "query_comment",
		"notifications",   /* webhooks are secrets: rendered only when sent (schedule.h) */
		NULL
	};
	size_t i;

	for (i = 0; late[i]; i++)
		if (!strcmp(k, late[i]))
			return 1;
	return 0;
}

/* The whole file as a value: rendered, except vars (see build_vars) and hooks. */
static int convert_root(struct loader *L, const struct ynode *root)
{
	struct arena *a = &L->p->arena;
	struct val v;
	size_t i;
	int rc;

	L->p->raw = val_dict_new();
	for (i = 0; i < root->n; i++) {
		const char *k = arena_strdup(a, root->items[2 * i]->scalar);
		const struct ynode *vn = root->items[2 * i + 1];
		if (!strcmp(k, "vars"))
			v = yaml_to_val(a, vn);
		else if ((rc = conv(L, vn, !is_late_key(k), k, &v)))
			return rc;
		val_dict_set(a, &L->p->raw, k, v);
	}
	return 0;
}

/* ---- dbt_project.yml -------------------------------------------------------- */

/*
 * The project file: sluice.yml, or dbt's dbt_project.yml when there is no
 * sluice.yml, so that a dbt project runs as it is. Both read the same
 * way (sluice.yml takes dbt's keys); what differs for a dbt project is
 * where profiles.yml may be (find_profiles) and that the embedded server
 * is never a silent fallback.
 */
static int dbt_project_file(struct loader *L, const char **abs)
{
	struct project *p = L->p;

	p->file = "sluice.yml";
	*abs = arena_printf(&L->tmp, "%s/sluice.yml", p->dir);
	if (fs_exists(*abs))
		return 0;
	*abs = arena_printf(&L->tmp, "%s/dbt_project.yml", p->dir);
	if (fs_exists(*abs)) {
		p->file = "dbt_project.yml";
		p->dbt = 1;
		return 0;
	}
	return err_set(L->err, SLUICE_EUSAGE,
		       "no sluice.yml or dbt_project.yml in %s (run sluice in a project directory or pass --project-dir)",
		       p->dir);
}

/* seed-paths, snapshot-paths, macro-paths (analysis-paths is accepted and ignored). */
static int dbt_paths(struct loader *L, const struct ynode *root)
{
	struct project *p = L->p;
	int rc;

	if ((rc = path_list(L, root, "seed-paths", "seeds", &p->seed_paths, &p->nseed_paths)) ||
	    (rc = path_list(L, root, "snapshot-paths", "snapshots", &p->snapshot_paths, &p->nsnapshot_paths)) ||
	    (rc = path_list(L, root, "macro-paths", "macros", &p->macro_paths, &p->nmacro_paths)))
		return rc;
	return 0;
}

/* The `seeds:` and `snapshots:` config trees, keyed by project name like `models:`. */
static int dbt_config_trees(struct loader *L, const struct ynode *root)
{
	static const char *const keys[] = { "seeds", "snapshots" };
	struct val *trees[] = { &L->p->seeds_config, &L->p->snapshots_config };
	size_t i;
	int rc;

	for (i = 0; i < 2; i++) {
		const struct ynode *n = ymap_get(root, keys[i]);
		*trees[i] = val_none();
		if (is_null(n))
			continue;
		if ((rc = check_folder_config(L, n)))
			return rc;
		*trees[i] = *val_get(&L->p->raw, keys[i]);
	}
	return 0;
}

static int read_sluice_yml(struct loader *L, struct ynode **rootp)
{
	struct project *p = L->p;
	const char *abs;
	struct ynode *root, *n;
	const char *found;
	struct val v;
	int rc;

	if ((rc = dbt_project_file(L, &abs)))
		return rc;
	if ((rc = load_yaml(L, &L->tmp, abs, p->file, &root)))
		return rc;
	if (!root)
		return err_set(L->err, SLUICE_EUSAGE, "%s: the file is empty (it needs at least 'name:')", p->file);
	if (root->kind != Y_MAP)
		return yaml_error(L->err, root, "%s must be a map of settings", p->file);
	n = ymap_get(root, "name");
	if (is_null(n))
		return yaml_error(L->err, root, "missing required key 'name' (the project name)");
	if (n->kind != Y_SCALAR || !dialect_is_ident(n->scalar))
		return yaml_error(L->err, n,
				  "name must be an identifier (letters, digits and _, not starting with a digit)");
	p->name = arena_strdup(&p->arena, n->scalar);
	if ((rc = load_cli_vars(L)))
		return rc;
	/* Raw vars first: profiles.yml may use var() before vars are rendered. */
	if ((rc = build_vars(L, ykey(root, "vars", &found), 0, &p->vars)))
		return rc;
	p->profile = p->name;
	n = ymap_get(root, "profile");
	if (!is_null(n)) {
		if ((rc = conv(L, n, 1, "profile", &v)))
			return rc;
		if (n->kind != Y_SCALAR || v.kind != V_STR || !v.u.str.len)
			return yaml_error(L->err, n, "profile must be a profile name");
		p->profile = v.u.str.s;
	}
	*rootp = root;
	return 0;
}

/* Everything in sluice.yml after the profile is known (templates may use target). */
static int finish_sluice_yml(struct loader *L, const struct ynode *root)
{
	struct project *p = L->p;
	const struct ynode *n;
	const char *found;
	const struct val *v;
	struct val vars;
	int rc;

	if ((rc = build_vars(L, ykey(root, "vars", &found), 1, &vars)))
		return rc;
	p->vars = vars;
	if ((rc = convert_root(L, root)))
		return rc;
	if ((rc = path_list(L, root, "model-paths", "models", &p->model_paths, &p->nmodel_paths)) ||
	    (rc = path_list(L, root, "test-paths", "tests", &p->test_paths, &p->ntest_paths)) ||
	    (rc = dbt_paths(L, root)) || (rc = dbt_config_trees(L, root)))
		return rc;
	n = ykey(root, "target-path", &found);
	p->target_path = arena_printf(&p->arena, "%s/target", p->dir);
	if (!is_null(n)) {
		v = val_get(&p->raw, found);
		if (n->kind != Y_SCALAR || v->kind != V_STR || !v->u.str.len)
			return yaml_error(L->err, n, "%s must be a path", found);
		p->target_path = v->u.str.s[0] == '/' ? v->u.str.s : arena_printf(&p->arena, "%s/%s", p->dir, v->u.str.s);
	}
	if ((rc = hook_list(L, root, "on-run-start", &p->on_run_start)) ||
	    (rc = hook_list(L, root, "on-run-end", &p->on_run_end)))
		return rc;
	if ((rc = schedule_load(&p->arena, ymap_get(root, "schedules"), ymap_get(root, "notifications"),
				&p->schedules, &p->nschedules, &p->notifiers, &p->nnotifiers, L->err)))
		return rc;
	n = ymap_get(root, "report");
	if (!is_null(n)) {
		v = val_get(&p->raw, "report");
		if (n->kind != Y_SCALAR || v->kind != V_STR || !v->u.str.len)
			return yaml_error(L->err, n, "report must be a URL or path where reports are published");
		p->report = v->u.str.s;
	}
	n = ymap_get(root, "models");
	p->models_config = val_none();
	if (!is_null(n)) {
		if ((rc = check_folder_config(L, n)))
			return rc;
		p->models_config = *val_get(&p->raw, "models");
	}
	return 0;
}

/* ---- profiles.yml --------------------------------------------------------- */

static int find_profiles(struct loader *L, const char **abs, const char **display)
{
	struct arena *a = &L->p->arena;
	const char *env = getenv("SLUICE_PROFILES_DIR"), *dbt_env = getenv("DBT_PROFILES_DIR"), *home = getenv("HOME");
	const char *dirs[5];
	size_t i;

	*abs = *display = NULL;
	if (L->o && L->o->profiles_dir && *L->o->profiles_dir) {
		const char *f = arena_printf(a, "%s/profiles.yml", L->o->profiles_dir);
		/* An explicit flag that finds nothing is a mistake, not a fallback. */
		if (!fs_exists(f))
			return err_set(L->err, SLUICE_EUSAGE, "--profiles-dir %s: no profiles.yml there",
				       L->o->profiles_dir);
		*abs = *display = f;
		return 0;
	}
	/* sluice's places and dbt's, each in its own order */
	dirs[0] = env && *env ? env : NULL;
	dirs[1] = dbt_env && *dbt_env ? dbt_env : NULL;
	dirs[2] = L->p->dir;
	dirs[3] = home && *home ? arena_printf(a, "%s/.sluice", home) : NULL;
	dirs[4] = home && *home ? arena_printf(a, "%s/.dbt", home) : NULL;
	for (i = 0; i < 5; i++) {
		const char *f;
		if (!dirs[i])
			continue;
		f = arena_printf(a, "%s/profiles.yml", dirs[i]);
		if (fs_exists(f)) {
			*abs = f;
			*display = i == 2 ? "profiles.yml" : f;
			return 0;
		}
	}
	if (!L->p->dbt)
		return 0;
	/* A dbt project means a warehouse: starting an empty local one would hide the mistake. */
	{
		struct buf where = BUF_INIT;
		static const char *const names[] = { "$SLUICE_PROFILES_DIR", "$DBT_PROFILES_DIR", "the project directory",
						     "~/.sluice", "~/.dbt" };
		for (i = 0; i < 5; i++) {
			if (!dirs[i])
				buf_printf(&where, "%s%s (not set)", where.len ? ", " : "", names[i]);
			else
				buf_printf(&where, "%s%s/profiles.yml", where.len ? ", " : "", dirs[i]);
		}
		err_set(L->err, SLUICE_EUSAGE, "dbt_project.yml: no profiles.yml found for profile '%s' (looked in: %s); "
			"pass --profiles-dir or set DBT_PROFILES_DIR", L->p->profile, where.s);
		buf_release(&where);
		return SLUICE_EUSAGE;
	}
}

static void embedded_target(struct loader *L)
{
	struct arena *a = &L->p->arena;
	struct target *t = &L->p->target;
	struct val s = val_dict_new();

	val_dict_set(a, &s, "type", val_str("postgres"));
	val_dict_set(a, &s, "embedded", val_bool(1));
	val_dict_set(a, &s, "dbname", val_str("sluice"));
	val_dict_set(a, &s, "schema", val_str("public"));
	val_dict_set(a, &s, "threads", val_num(4));
	t->profile = L->p->profile;
	t->name = "dev";
	t->type = "postgres";
	t->schema = "public";
	t->threads = 4;
	t->profiles_path = NULL;
	t->conns = arena_alloc(a, sizeof(*t->conns));
	t->conns[0].name = "default";
	t->conns[0].settings = s;
	t->nconns = 1;
}

/* Keys of a map as "a, b, c" (skipping `skip`), for messages. */
static void list_keys(const struct ynode *map, const char *skip, struct buf *out)
{
	size_t i;

	for (i = 0; map && map->kind == Y_MAP && i < map->n; i++) {
		const char *k = map->items[2 * i]->scalar;
		if (skip && !strcmp(k, skip))
			continue;
		buf_printf(out, "%s%s", out->len ? ", " : "", k);
	}
	if (!out->len)
		buf_puts(out, "none");
}

/* One output or connection entry: every string rendered, type required. */
static int conn_settings(struct loader *L, const struct ynode *n, const char *what, const char *name,
			 int skip_connections, struct val *out)
{
	struct arena *a = &L->p->arena;
	const struct val *type;
	struct val v;
	size_t i;
	int rc;

	if (n->kind != Y_MAP)
		return yaml_error(L->err, n, "%s '%s' must be a map of settings", what, name);
	*out = val_dict_new();
	for (i = 0; i < n->n; i++) {
		const char *k = arena_strdup(a, n->items[2 * i]->scalar);
		if (skip_connections && !strcmp(k, "connections"))
			continue;
		if ((rc = conv(L, n->items[2 * i + 1], 1, k, &v)))
			return rc;
		val_dict_set(a, out, k, v);
	}
	type = val_get(out, "type");
	if (type && type->kind == V_NONE)
		type = NULL;
	if (!type && val_get_bool(out, "embedded", 0)) {
		val_dict_set(a, out, "type", val_str("postgres"));
		return 0;
	}
	if (!type)
		return yaml_error(L->err, n, "%s '%s' has no type", what, name);
	if (type->kind != V_STR || !type->u.str.len)
		return yaml_error(L->err, ymap_get(n, "type"), "%s '%s': type must be a connector name", what, name);
	return 0;
}

static int cmp_conn(const void *x, const void *y)
{
	return strcmp(((const struct conn_cfg *)x)->name, ((const struct conn_cfg *)y)->name);
}

static int load_output(struct loader *L, const struct ynode *out, const char *tname)
{
	struct arena *a = &L->p->arena;
	struct target *t = &L->p->target;
	const struct ynode *conns, *tn;
	const struct val *s;
	size_t i;
	int rc;

	conns = ymap_get(out, "connections");
	if (!is_null(conns) && conns->kind != Y_MAP)
		return yaml_error(L->err, conns, "connections must be a map of name: {type: ..., ...}");
	t->nconns = 1 + (is_null(conns) ? 0 : conns->n);
	t->conns = arena_alloc(a, t->nconns * sizeof(*t->conns));
	t->conns[0].name = "default";
	if ((rc = conn_settings(L, out, "output", tname, 1, &t->conns[0].settings)))
		return rc;
	for (i = 1; i < t->nconns; i++) {
		const struct ynode *k = conns->items[2 * (i - 1)];
		if (!strcmp(k->scalar, "default"))
			return yaml_error(L->err, k, "'default' is the output's own connection: pick another name");
		t->conns[i].name = arena_strdup(a, k->scalar);
		if ((rc = conn_settings(L, conns->items[2 * (i - 1) + 1], "connection", k->scalar, 0,
					&t->conns[i].settings)))
			return rc;
	}
	qsort(t->conns + 1, t->nconns - 1, sizeof(*t->conns), cmp_conn);
	s = &t->conns[0].settings;
	t->type = val_get_str(s, "type", NULL);
	t->schema = val_get_str(s, "schema", "public");
	t->threads = 4;
	tn = ymap_get(out, "threads");
	if (!is_null(tn)) {
		const struct val *v = val_get(s, "threads");
		long long n = val_get_int(s, "threads", -1);
		if ((v->kind == V_NUM && v->u.num != (double)n) || n < 1 || n > 64)
			return yaml_error(L->err, tn, "threads must be a whole number from 1 to 64");
		t->threads = (int)n;
	}
	return 0;
}

/*
 * reuse_from: [prod, ci] and reuse_mode: view | copy on an output: the
 * other outputs of the same profile (docs/environments.md).
 */
static int load_reuse(struct loader *L, const struct ynode *outputs, const struct ynode *out)
{
	struct arena *a = &L->p->arena;
	struct target *t = &L->p->target;
	const struct ynode *from = ymap_get(out, "reuse_from"), *mode = ymap_get(out, "reuse_mode");
	size_t i, n;

	t->noutputs = outputs->n;
	t->outputs = arena_alloc(a, (outputs->n ? outputs->n : 1) * sizeof(char *));
	for (i = 0; i < outputs->n; i++)
		t->outputs[i] = arena_strdup(a, outputs->items[2 * i]->scalar);
	if (!is_null(mode)) {
		if (mode->kind != Y_SCALAR || (strcmp(mode->scalar, "view") && strcmp(mode->scalar, "copy")))
			return yaml_error(L->err, mode, "reuse_mode must be view or copy");
		t->reuse_copy = !strcmp(mode->scalar, "copy");
	}
	if (is_null(from))
		return 0;
	if (from->kind != Y_SEQ && from->kind != Y_SCALAR)
		return yaml_error(L->err, from, "reuse_from must be a list of target names, e.g. [prod, ci]");
	n = from->kind == Y_SEQ ? from->n : 1;
	t->reuse_from = arena_alloc(a, (n ? n : 1) * sizeof(char *));
	for (i = 0; i < n; i++) {
		const struct ynode *it = from->kind == Y_SEQ ? from->items[i] : from;
		struct buf names = BUF_INIT;
		if (it->kind != Y_SCALAR || !it->len)
			return yaml_error(L->err, it, "reuse_from entries must be target names");
		if (!strcmp(it->scalar, t->name))
			return yaml_error(L->err, it, "reuse_from: '%s' is this target itself", it->scalar);
		if (!ymap_get(outputs, it->scalar)) {
			list_keys(outputs, NULL, &names);
			yaml_error(L->err, it, "reuse_from: profile '%s' has no output '%s' (outputs: %s)", t->profile,
				   it->scalar, names.s);
			buf_release(&names);
			return SLUICE_EUSAGE;
		}
		t->reuse_from[t->nreuse_from++] = arena_strdup(a, it->scalar);
	}
	return 0;
}

static int load_profiles(struct loader *L)
{
	struct project *p = L->p;
	struct target *t = &p->target;
	const char *abs, *display, *tname = NULL;
	const struct ynode *root, *prof, *tnode = NULL, *outputs, *out;
	struct ynode *r;
	char real[PATH_MAX];
	struct buf names = BUF_INIT;
	int rc;

	if ((rc = find_profiles(L, &abs, &display)))
		return rc;
	if (!abs) {
		embedded_target(L);
		return 0;
	}
	display = arena_strdup(&p->arena, display);
	if ((rc = load_yaml(L, &L->tmp, abs, display, &r)))
		return rc;
	root = r;
	if (root && root->kind != Y_MAP)
		return yaml_error(L->err, root, "profiles.yml must be a map of profile names");
	prof = ymap_get(root, p->profile);
	if (!prof) {
		list_keys(root, "config", &names);
		err_set(L->err, SLUICE_EUSAGE, "%s: no profile '%s' (available: %s)", display, p->profile, names.s);
		buf_release(&names);
		return SLUICE_EUSAGE;
	}
	if (prof->kind != Y_MAP)
		return yaml_error(L->err, prof, "profile '%s' must be a map with target: and outputs:", p->profile);
	t->profile = p->profile;
	t->profiles_path = arena_strdup(&p->arena, realpath(abs, real) ? real : abs);
	outputs = ymap_get(prof, "outputs");
	if (is_null(outputs) || outputs->kind != Y_MAP)
		return yaml_error(L->err, outputs ? outputs : prof, "profile '%s' needs outputs: (a map of targets)",
				  p->profile);
	if (L->o && L->o->target && *L->o->target) {
		tname = L->o->target;
	} else {
		struct val v;
		tnode = ymap_get(prof, "target");
		if (is_null(tnode)) {
			tname = "default";   /* as dbt */
			tnode = prof;
		} else {
			if ((rc = conv(L, tnode, 1, "target", &v)))
				return rc;
			if (tnode->kind != Y_SCALAR || v.kind != V_STR)
				return yaml_error(L->err, tnode, "target must be the name of an output");
			tname = v.u.str.s;
		}
	}
	out = ymap_get(outputs, tname);
	if (!out) {
		list_keys(outputs, NULL, &names);
		if (tnode)
			yaml_error(L->err, tnode, "profile '%s' has no output '%s' (outputs: %s)", p->profile, tname, names.s);
		else
			err_set(L->err, SLUICE_EUSAGE, "--target %s: profile '%s' in %s has no such output (outputs: %s)",
				tname, p->profile, display, names.s);
		buf_release(&names);
		return SLUICE_EUSAGE;
	}
	t->name = arena_strdup(&p->arena, tname);
	if ((rc = load_output(L, out, t->name)))
		return rc;
	return load_reuse(L, outputs, out);
}

/* `target` as templates in sluice.yml see it. */
static void set_target_var(struct loader *L)
{
	struct arena *a = &L->p->arena;
	const struct target *t = &L->p->target;
	const char *db = val_get_str(&t->conns[0].settings, "dbname", "");
	struct val v = val_dict_new();

	val_dict_set(a, &v, "name", val_str(t->name));
	val_dict_set(a, &v, "profile_name", val_str(t->profile));
	val_dict_set(a, &v, "type", val_str(t->type));
	val_dict_set(a, &v, "schema", val_str(t->schema));
	val_dict_set(a, &v, "threads", val_num(t->threads));
	val_dict_set(a, &v, "dbname", val_str(db));
	val_dict_set(a, &v, "database", val_str(db));
	L->target = v;
	L->have_target = 1;
}

/* ---- installed packages ------------------------------------------------------ */

/* A package's path list, relative to the project dir. */
static int package_paths(struct loader *L, const struct package *pkg, const struct ynode *root, const struct val *raw,
			 const char *key, const char *def, const char ***out, size_t *n)
{
	size_t i;
	int rc = path_list_of(L, root, raw, key, def, out, n);

	for (i = 0; !rc && i < *n; i++)
		(*out)[i] = arena_printf(&L->p->arena, "%s/%s", pkg->dir, (*out)[i]);
	return rc;
}

static int package_tree(struct loader *L, const struct ynode *root, const struct val *raw, const char *key,
			struct val *out)
{
	const struct ynode *n = ymap_get(root, key);
	int rc;

	*out = val_none();
	if (is_null(n))
		return 0;
	if ((rc = check_folder_config(L, n)))
		return rc;
	*out = *val_get(raw, key);
	return 0;
}

/* One folder under the install path: its dbt_project.yml, read as a package's. */
static int load_package(struct loader *L, const char *rel, const struct ynode *root_vars, struct package *pkg)
{
	struct project *p = L->p;
	const char *file = arena_printf(&p->arena, "%s/dbt_project.yml", rel), *found;
	struct ynode *root;
	const struct ynode *n;
	struct val raw, own, over;
	int rc;

	memset(pkg, 0, sizeof(*pkg));
	pkg->dir = rel;
	if ((rc = load_yaml(L, &L->tmp, arena_printf(&L->tmp, "%s/%s", p->dir, file), file, &root)))
		return rc;
	if (!root || root->kind != Y_MAP)
		return err_set(L->err, SLUICE_EUSAGE, "%s: a package's dbt_project.yml must be a map with name:", file);
	n = ymap_get(root, "name");
	if (is_null(n) || n->kind != Y_SCALAR || !dialect_is_ident(n->scalar))
		return yaml_error(L->err, n ? n : root, "a package needs a name: that is an identifier");
	pkg->name = arena_strdup(&p->arena, n->scalar);
	if (!strcmp(pkg->name, p->name))
		return yaml_error(L->err, n, "package '%s' has the name of the project itself", pkg->name);
	n = ymap_get(root, "version");
	if (!is_null(n) && n->kind == Y_SCALAR)
		pkg->version = arena_strdup(&p->arena, n->scalar);
	/* a package's file is not rendered: its templates are for dbt's parse, not for paths */
	raw = yaml_to_val(&p->arena, root);
	if ((rc = package_paths(L, pkg, root, &raw, "model-paths", "models", &pkg->model_paths, &pkg->nmodel_paths)) ||
	    (rc = package_paths(L, pkg, root, &raw, "seed-paths", "seeds", &pkg->seed_paths, &pkg->nseed_paths)) ||
	    (rc = package_paths(L, pkg, root, &raw, "test-paths", "tests", &pkg->test_paths, &pkg->ntest_paths)) ||
	    (rc = package_paths(L, pkg, root, &raw, "snapshot-paths", "snapshots", &pkg->snapshot_paths,
				&pkg->nsnapshot_paths)) ||
	    (rc = package_paths(L, pkg, root, &raw, "macro-paths", "macros", &pkg->macro_paths, &pkg->nmacro_paths)) ||
	    (rc = package_tree(L, root, &raw, "models", &pkg->models_config)) ||
	    (rc = package_tree(L, root, &raw, "seeds", &pkg->seeds_config)) ||
	    (rc = package_tree(L, root, &raw, "snapshots", &pkg->snapshots_config)))
		return rc;
	/* dbt's scoping: the package's own vars, then the root project's for it */
	if ((rc = build_vars_scoped(L, ykey(root, "vars", &found), pkg->name, 0, 0, &own)) ||
	    (rc = build_vars_scoped(L, root_vars, pkg->name, 1, 1, &over)))
		return rc;
	pkg->vars = val_dict_merge(&p->arena, &own, &over);
	return 0;
}

static int cmp_package(const void *x, const void *y)
{
	return strcmp(((const struct package *)x)->name, ((const struct package *)y)->name);
}

/* Every folder under packages-install-path with a dbt_project.yml is a package. */
static int load_packages(struct loader *L, const struct ynode *root)
{
	struct project *p = L->p;
	const char *found, *abs;
	const struct ynode *n = ykey(root, "packages-install-path", &found);
	struct dirent *de;
	size_t i, cap = 0;
	DIR *d;
	int rc = 0;

	p->packages_install_path = "dbt_packages";
	if (!is_null(n)) {
		const struct val *v = val_get(&p->raw, found);
		if (n->kind != Y_SCALAR || v->kind != V_STR || !v->u.str.len || v->u.str.s[0] == '/')
			return yaml_error(L->err, n, "%s must be a folder inside the project", found);
		p->packages_install_path = v->u.str.s;
	}
	abs = arena_printf(&L->tmp, "%s/%s", p->dir, p->packages_install_path);
	if (!(d = opendir(abs)))
		return errno == ENOENT || errno == ENOTDIR ? 0 : err_set(L->err, SLUICE_EIO, "%s: %s",
									 p->packages_install_path, strerror(errno));
	while (!rc && (de = readdir(d))) {
		const char *rel;
		if (de->d_name[0] == '.')
			continue;
		rel = arena_printf(&p->arena, "%s/%s", p->packages_install_path, de->d_name);
		if (!fs_exists(arena_printf(&L->tmp, "%s/%s/dbt_project.yml", p->dir, rel)))
			continue;
		if (p->npackages == cap) {
			cap = cap ? 2 * cap : 8;
			p->packages = arena_grow(&p->arena, p->packages, p->npackages, cap, sizeof(*p->packages));
		}
		rc = load_package(L, rel, ykey(root, "vars", &found), &p->packages[p->npackages]);
		if (!rc)
			p->npackages++;
	}
	closedir(d);
	if (rc)
		return rc;
	if (p->npackages)
		qsort(p->packages, p->npackages, sizeof(*p->packages), cmp_package);
	for (i = 1; i < p->npackages; i++)
		if (!strcmp(p->packages[i - 1].name, p->packages[i].name))
			return err_set(L->err, SLUICE_EUSAGE, "two installed packages are named '%s': %s and %s",
				       p->packages[i].name, p->packages[i - 1].dir, p->packages[i].dir);
	return 0;
}

/* ---- finding files under the model paths -------------------------------- */

struct found {
	const char *rel;        /* relative to the project dir (project arena) */
	size_t prefix;          /* length of "<model path>/" at the start of rel */
	const char *lang;       /* model language, or NULL for property YAML */
	const char *src;        /* model file contents, read during the walk */
	size_t src_len;
};

struct walk {
	struct loader *L;
	struct found *v;
	size_t n, cap;
	const char *(*lang_of)(const char *name);   /* which files are read: NULL for model files */
};

static const char *lang_of(const char *name)
{
	size_t i, len = strlen(name);

	for (i = 0; i < sizeof(model_langs) / sizeof(model_langs[0]); i++) {
		size_t el = strlen(model_langs[i].ext);
		if (model_langs[i].enabled && len > el && !strcmp(name + len - el, model_langs[i].ext))
			return model_langs[i].lang;
	}
	return NULL;
}

static int is_yaml_name(const char *name)
{
	size_t len = strlen(name);

	return (len > 4 && !strcmp(name + len - 4, ".yml")) || (len > 5 && !strcmp(name + len - 5, ".yaml"));
}

static struct found *walk_add(struct walk *w, const char *rel, size_t prefix, const char *lang)
{
	struct found *f;

	if (w->n == w->cap) {
		w->cap = w->cap ? w->cap * 2 : 256;
		w->v = xrealloc(w->v, w->cap * sizeof(*w->v));
	}
	f = &w->v[w->n++];
	memset(f, 0, sizeof(*f));
	f->rel = arena_strdup(&w->L->p->arena, rel);
	f->prefix = prefix;
	f->lang = lang;
	return f;
}

/* Model files are read here, relative to the open directory: no path walks. */
static int walk_read(struct walk *w, DIR *d, const char *name, struct found *f)
{
	int fd = openat(dirfd(d), name, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return err_set(w->L->err, SLUICE_EIO, "%s: %s", f->rel, strerror(errno));
	return read_fd_into_arena(&w->L->p->arena, fd, f->rel, &f->src, &f->src_len, w->L->err);
}

/* rel is the directory relative to the project dir; it is restored on return. */
static int walk_dir(struct walk *w, struct buf *rel, size_t prefix, int depth)
{
	struct sluice_err *err = w->L->err;
	struct buf abs = BUF_INIT;
	struct dirent *de;
	size_t base = rel->len;
	DIR *d;
	int rc = 0;

	if (depth > MAX_DIR_DEPTH)
		return err_set(err, SLUICE_EUSAGE, "%s: directories nested too deep (a symlink loop?)", rel->s);
	buf_printf(&abs, "%s/%s", w->L->p->dir, rel->s);
	d = opendir(abs.s);
	if (!d) {
		rc = depth == 0 && errno == ENOENT ? 0 : err_set(err, SLUICE_EIO, "%s: %s", rel->s, strerror(errno));
		buf_release(&abs);
		return rc;
	}
	while (!rc && (de = readdir(d))) {
		int is_dir = de->d_type == DT_DIR, is_reg = de->d_type == DT_REG;
		const char *lang;
		if (de->d_name[0] == '.')
			continue;
		buf_addc(rel, '/');
		buf_puts(rel, de->d_name);
		if (de->d_type == DT_UNKNOWN || de->d_type == DT_LNK) {
			struct stat st;
			if (!fstatat(dirfd(d), de->d_name, &st, 0)) {
				is_dir = S_ISDIR(st.st_mode);
				is_reg = S_ISREG(st.st_mode);
			}
		}
		if (is_dir)
			rc = walk_dir(w, rel, prefix, depth + 1);
		else if (is_reg && (lang = (w->lang_of ? w->lang_of : lang_of)(de->d_name)))
			rc = walk_read(w, d, de->d_name, walk_add(w, rel->s, prefix, lang));
		else if (is_reg && is_yaml_name(de->d_name))
			walk_add(w, rel->s, prefix, NULL);
		rel->len = base;
		rel->s[base] = '\0';
	}
	closedir(d);
	buf_release(&abs);
	return rc;
}

static int cmp_found(const void *x, const void *y)
{
	return strcmp(((const struct found *)x)->rel, ((const struct found *)y)->rel);
}

/* Walk every path of a list into w (model, seed, snapshot or test paths). */
static int walk_paths(struct walk *w, const char *const *paths, size_t npaths)
{
	struct buf rel = BUF_INIT;
	size_t i;
	int rc = 0;

	for (i = 0; i < npaths && !rc; i++) {
		buf_reset(&rel);
		buf_puts(&rel, paths[i]);
		rc = walk_dir(w, &rel, rel.len + 1, 0);
	}
	buf_release(&rel);
	if (!rc && w->n)
		qsort(w->v, w->n, sizeof(*w->v), cmp_found);
	return rc;
}

/* ---- models ---------------------------------------------------------------- */

/* Folder config is the same for every model of a directory: computed once. */
struct dir_cfg {
	const char *dir;        /* rel up to the last '/', not NUL-terminated */
	size_t len;
	struct val cfg;
	/* deepest level reached, if every folder matched: the package's own tree, the root's */
	const struct val *level[2];
};

/* One project's config tree (its `models:` block, say) along m's fqn into acc. */
static const struct val *tree_config(struct arena *a, struct val *acc, const struct val *root, const struct model *m)
{
	const struct val *level;
	size_t i;

	if (root->kind != V_DICT)
		return NULL;
	cfg_apply_level(a, acc, root);
	level = val_get(root, m->fqn[0]);
	for (i = 1; level && level->kind == V_DICT; i++) {
		cfg_apply_level(a, acc, level);
		if (i + 1 >= m->nfqn)
			return level;
		level = val_get(level, m->fqn[i]);
	}
	return NULL;
}

/*
 * A package's node: its own project's tree first, then the root
 * project's, which overrides (dbt's order).
 */
static void folder_config(struct loader *L, const struct model *m, struct dir_cfg *dc)
{
	struct arena *a = &L->p->arena;
	const struct package *pkg = L->pkg;
	int seed = !strcmp(m->resource, "seed"), snap = !strcmp(m->resource, "snapshot");
	const struct val *root = seed ? &L->p->seeds_config : snap ? &L->p->snapshots_config : &L->p->models_config;
	const char *slash = strrchr(m->path, '/');
	size_t len = slash ? (size_t)(slash - m->path) : 0;

	if (dc->dir && dc->len == len && !memcmp(dc->dir, m->path, len))
		return;
	dc->dir = m->path;
	dc->len = len;
	dc->cfg = val_dict_new();
	dc->level[0] = pkg ? tree_config(a, &dc->cfg, seed ? &pkg->seeds_config : snap ? &pkg->snapshots_config :
					 &pkg->models_config, m) : NULL;
	dc->level[1] = tree_config(a, &dc->cfg, root, m);
}

/* A model, seed or snapshot from file f; name NULL: the file's name. */
static int add_resource(struct loader *L, const struct found *f, struct dir_cfg *dc, const char *resource,
			const char *name, const char *src, size_t src_len)
{
	struct project *p = L->p;
	struct arena *a = &p->arena;
	struct model *m = arena_alloc(a, sizeof(*m)), *prev;
	const char *base = strrchr(f->rel, '/'), *dot, *s;
	const char *project = L->pkg ? L->pkg->name : p->name;
	size_t nf, i;

	base = base ? base + 1 : f->rel;
	dot = strrchr(base, '.');
	m->name = name ? name : arena_strndup(a, base, (size_t)(dot - base));
	m->resource = resource;
	m->unique_id = arena_printf(a, "%s.%s.%s", resource, project, m->name);
	m->path = f->rel;
	m->lang = f->lang;
	prev = strmap_put(&p->model_index, m->name, m);
	if (prev) {
		const char *what = strcmp(resource, prev->resource) ? "name" : arena_printf(a, "%s name", resource);
		strmap_put(&p->model_index, m->name, prev);   /* the first one stays */
		return err_set(L->err, SLUICE_EUSAGE, "duplicate %s '%s': %s and %s", what, m->name, prev->path, m->path);
	}
	/* fqn: project, folders below the model path, name */
	nf = 2;
	for (s = f->rel + f->prefix; *s; s++)
		nf += *s == '/';
	m->fqn = arena_alloc(a, nf * sizeof(char *));
	m->fqn[0] = project;
	for (i = 1, s = f->rel + f->prefix; i + 1 < nf; i++) {
		const char *e = strchr(s, '/');
		m->fqn[i] = arena_strndup(a, s, (size_t)(e - s));
		s = e + 1;
	}
	m->fqn[nf - 1] = m->name;
	m->nfqn = nf;
	m->src = src;
	m->src_len = src_len;
	folder_config(L, m, dc);
	m->config = val_dict_merge(a, &dc->cfg, NULL);
	for (i = 0; i < 2; i++) {
		const struct val *own = dc->level[i] ? val_get(dc->level[i], m->name) : NULL;
		if (own && own->kind == V_DICT)
			cfg_apply_level(a, &m->config, own);
	}
	m->props = val_none();
	p->models[p->nmodels++] = m;
	return 0;
}

/* ---- property YAML ----------------------------------------------------------- */

static const char *const source_skip[] = {
	"name", "description", "tables", "columns", "tests", "data_tests", "meta", "schema",
	"database", "identifier", "connection", "config", "loader", NULL
};

struct props_ctx {
	struct loader *L;
	const char *rel;
	struct source_table **sources;
	size_t nsources, cap;
};

/* An optional text field: missing or null gives NULL. */
static int opt_text(struct loader *L, const struct ynode *map, const char *key, const char **out)
{
	const struct ynode *n = ymap_get(map, key);

	*out = NULL;
	if (is_null(n))
		return 0;
	if (n->kind != Y_SCALAR)
		return yaml_error(L->err, n, "%s must be text", key);
	*out = arena_strndup(&L->p->arena, n->scalar, n->len);
	return 0;
}

static int entry_name(struct loader *L, const struct ynode *e, const char *what, const struct ynode **name)
{
	if (e->kind != Y_MAP)
		return yaml_error(L->err, e, "%s entry must be a map with name:", what);
	*name = ymap_get(e, "name");
	if (is_null(*name) || (*name)->kind != Y_SCALAR)
		return yaml_error(L->err, *name && !is_null(*name) ? *name : e, "%s entry needs a name", what);
	return 0;
}

static int props_model(struct props_ctx *c, const struct ynode *e)
{
	struct loader *L = c->L;
	struct arena *a = &L->p->arena;
	const struct ynode *name;
	struct model *m;
	int rc;

	if ((rc = entry_name(L, e, "model", &name)))
		return rc;
	m = strmap_get(&L->p->model_index, name->scalar);
	if (!m) {
		/* dbt ignores them with a warning: a model removed, its YAML left behind */
		const char *s = suggest_model(L->p, name->scalar);
		yaml_warn(L->p->warnings, name, "properties for unknown model '%s'%s%s%s: ignored", name->scalar,
			  s ? " (did you mean '" : "", s ? s : "", s ? "'?)" : "");
		return 0;
	}
	if (m->props_path)
		return yaml_error(L->err, name, "model '%s' is already described at %s:%d", m->name,
				  m->props_path, m->props_line);
	if ((rc = opt_text(L, e, "description", &m->description)))
		return rc;
	if ((rc = cfg_from_node(L, ymap_get(e, "config"), NULL, &m->config)))
		return rc;
	m->props = yaml_to_val(a, e);
	m->props_node = e;
	m->props_path = c->rel;
	m->props_line = e->line;
	return 0;
}

static int props_table(struct props_ctx *c, const struct source_table *proto,
		       const struct val *src_cfg, const struct ynode *e)
{
	struct loader *L = c->L;
	struct project *p = L->p;
	struct arena *a = &p->arena;
	struct source_table *t, *prev;
	const struct ynode *name;
	int rc;

	if ((rc = entry_name(L, e, "table", &name)))
		return rc;
	t = arena_alloc(a, sizeof(*t));
	*t = *proto;
	t->name = arena_strndup(a, name->scalar, name->len);
	t->unique_id = arena_printf(a, "source.%s.%s.%s", L->pkg ? L->pkg->name : p->name, t->source_name, t->name);
	if ((rc = opt_text(L, e, "identifier", &t->identifier)) ||
	    (rc = opt_text(L, e, "description", &t->description)))
		return rc;
	if (!t->identifier)
		t->identifier = t->name;
	t->config = val_dict_merge(a, src_cfg, NULL);
	if ((rc = cfg_from_node(L, e, source_skip, &t->config)) ||
	    (rc = cfg_from_node(L, ymap_get(e, "config"), NULL, &t->config)))
		return rc;
	t->props = yaml_to_val(a, e);
	t->props_node = e;
	t->path = c->rel;
	t->line = e->line;
	prev = strmap_put(&p->source_index, arena_printf(a, "%s.%s", t->source_name, t->name), t);
	if (prev)
		return yaml_error(L->err, name, "source table '%s.%s' is already defined at %s:%d", t->source_name,
				  t->name, prev->path, prev->line);
	if (c->nsources == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 16;
		c->sources = xrealloc(c->sources, c->cap * sizeof(*c->sources));
	}
	c->sources[c->nsources++] = t;
	return 0;
}

static int props_source(struct props_ctx *c, const struct ynode *e)
{
	struct loader *L = c->L;
	struct arena *a = &L->p->arena;
	struct source_table proto;
	const struct ynode *name, *tables;
	struct val cfg = val_dict_new();
	size_t i;
	int rc;

	memset(&proto, 0, sizeof(proto));
	if ((rc = entry_name(L, e, "source", &name)))
		return rc;
	proto.source_name = arena_strndup(a, name->scalar, name->len);
	if ((rc = opt_text(L, e, "schema", &proto.schema)) || (rc = opt_text(L, e, "database", &proto.database)) ||
	    (rc = opt_text(L, e, "connection", &proto.connection)))
		return rc;
	if (!proto.schema)
		proto.schema = proto.source_name;
	if ((rc = cfg_from_node(L, e, source_skip, &cfg)) ||
	    (rc = cfg_from_node(L, ymap_get(e, "config"), NULL, &cfg)))
		return rc;
	tables = ymap_get(e, "tables");
	if (is_null(tables))
		return 0;
	if (tables->kind != Y_SEQ)
		return yaml_error(L->err, tables, "tables must be a list of {name: ...}");
	for (i = 0; i < tables->n; i++)
		if ((rc = props_table(c, &proto, &cfg, tables->items[i])))
			return rc;
	return 0;
}

static int props_list(struct props_ctx *c, const struct ynode *root, const char *key,
		      int (*fn)(struct props_ctx *, const struct ynode *))
{
	const struct ynode *n = ymap_get(root, key);
	size_t i;
	int rc;

	if (is_null(n))
		return 0;
	if (n->kind != Y_SEQ)
		return yaml_error(c->L->err, n, "%s must be a list of entries with name:", key);
	/* each entry is independent: with an error list, all their errors are shown */
	for (i = 0; i < n->n; i++) {
		if (!(rc = fn(c, n->items[i])))
			continue;
		if (!strcmp(key, "sources"))
			c->L->p->sources_incomplete = 1;
		if ((rc = err_collect(c->L->p->errors, c->L->err, rc)))
			return rc;
	}
	return 0;
}

static int dbt_props_snapshot(struct props_ctx *c, const struct ynode *e);

static int props_file(struct props_ctx *c, const char *rel)
{
	struct project *p = c->L->p;
	struct arena tmp = ARENA_INIT;
	struct ynode *root;
	char *abs = arena_printf(&tmp, "%s/%s", p->dir, rel);
	int rc;

	c->rel = rel;
	/* In the project arena: data tests read the entries' positions later. */
	rc = load_yaml(c->L, &p->arena, abs, rel, &root);
	if (!rc && root && root->kind != Y_MAP)
		rc = yaml_error(c->L->err, root, "expected a map with version: 2, models: and sources:");
	if (!rc && root)
		rc = props_list(c, root, "models", props_model);
	if (!rc && root)
		rc = props_list(c, root, "seeds", props_model);
	if (!rc && root)
		rc = props_list(c, root, "snapshots", dbt_props_snapshot);
	if (!rc && root)
		rc = props_list(c, root, "sources", props_source);
	arena_release(&tmp);
	return rc;
}

static int cmp_source(const void *x, const void *y)
{
	return strcmp((*(struct source_table *const *)x)->unique_id, (*(struct source_table *const *)y)->unique_id);
}

/* ---- seeds and snapshots (dbt) ------------------------------------------------ */

static const char *dbt_seed_lang(const char *name)
{
	size_t len = strlen(name);

	return len > 4 && !strcmp(name + len - 4, ".csv") ? "csv" : NULL;
}

static const char *dbt_snapshot_lang(const char *name)
{
	size_t len = strlen(name);

	return len > 4 && !strcmp(name + len - 4, ".sql") ? "sql" : NULL;
}

/*
 * Find the next "{% snapshot name %}" (or, with name NULL, "{% endsnapshot %}")
 * tag at or after from: its start and end offsets and the name's span.
 */
static int snapshot_tag(const char *s, size_t from, int end, size_t *t0, size_t *t1, size_t *n0, size_t *n1)
{
	const char *word = end ? "endsnapshot" : "snapshot";
	const char *p = s + from;

	while ((p = strstr(p, "{%"))) {
		const char *q = p + 2;
		if (*q == '-' || *q == '+')
			q++;
		while (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')
			q++;
		if (!strncmp(q, word, strlen(word)) && !(isalnum((unsigned char)q[strlen(word)]) || q[strlen(word)] == '_')) {
			const char *e;
			q += strlen(word);
			while (*q == ' ' || *q == '\t')
				q++;
			*n0 = (size_t)(q - s);
			while (isalnum((unsigned char)*q) || *q == '_')
				q++;
			*n1 = (size_t)(q - s);
			e = strstr(q, "%}");
			if (!e)
				return 0;
			*t0 = (size_t)(p - s);
			*t1 = (size_t)(e + 2 - s);
			return 1;
		}
		p += 2;
	}
	return 0;
}

static size_t dbt_snapshot_count(const char *src)
{
	size_t n = 0, at = 0, t0, t1, n0, n1;

	while (src && snapshot_tag(src, at, 0, &t0, &t1, &n0, &n1)) {
		n++;
		at = t1;
	}
	return n;
}

/*
 * Each {% snapshot name %} ... {% endsnapshot %} block of a file is a
 * snapshot. Its source is the file with everything outside the block
 * blanked (newlines kept), so that messages keep the file's lines and columns.
 */
static int dbt_add_snapshots(struct loader *L, const struct found *f, struct dir_cfg *dc)
{
	struct arena *a = &L->p->arena;
	size_t at = 0, t0, t1, n0, n1, e0, e1, x0, x1, i;
	int rc;

	while (snapshot_tag(f->src, at, 0, &t0, &t1, &n0, &n1)) {
		char *copy;
		if (n0 == n1)
			return err_set(L->err, SLUICE_EUSAGE, "%s: {%% snapshot %%} needs a name", f->rel);
		if (!snapshot_tag(f->src, t1, 1, &e0, &e1, &x0, &x1))
			return err_set(L->err, SLUICE_EUSAGE, "%s: {%% snapshot %.*s %%} has no {%% endsnapshot %%}", f->rel,
				       (int)(n1 - n0), f->src + n0);
		copy = arena_strndup(a, f->src, f->src_len);
		for (i = 0; i < f->src_len; i++)
			if ((i < t1 || i >= e0) && copy[i] != '\n')
				copy[i] = ' ';
		if ((rc = add_resource(L, f, dc, "snapshot", arena_strndup(a, f->src + n0, n1 - n0), copy, f->src_len)))
			return rc;
		at = e1;
	}
	return 0;
}

/*
 * dbt 1.9's snapshots in YAML: an entry with relation: ref(...) or
 * source(...) is a snapshot of that relation, configured by its config:.
 * Without relation: it describes a {% snapshot %} block, like a model's
 * properties.
 */
static int dbt_props_snapshot(struct props_ctx *c, const struct ynode *e)
{
	struct loader *L = c->L;
	struct project *p = L->p;
	const struct ynode *name, *rel;
	struct found f;
	struct dir_cfg dc;
	const char *src, *slash;
	int rc;

	if ((rc = entry_name(L, e, "snapshot", &name)))
		return rc;
	rel = ymap_get(e, "relation");
	if (is_null(rel))
		return props_model(c, e);
	if (rel->kind != Y_SCALAR)
		return yaml_error(L->err, rel, "relation must be ref('...') or source('...', '...')");
	memset(&f, 0, sizeof(f));
	memset(&dc, 0, sizeof(dc));
	f.rel = c->rel;
	slash = strchr(c->rel, '/');
	f.prefix = slash ? (size_t)(slash - c->rel) + 1 : 0;
	f.lang = "sql";
	src = arena_printf(&p->arena, "select * from {{ %s }}", rel->scalar);
	/* one more than load_files counted */
	p->models = arena_grow(&p->arena, p->models, p->nmodels, p->nmodels + 1, sizeof(*p->models));
	if ((rc = add_resource(L, &f, &dc, "snapshot", arena_strdup(&p->arena, name->scalar), src, strlen(src))))
		return rc;
	return props_model(c, e);
}

/* The project's paths of one kind (0 models, 1 seeds, 2 snapshots, 3 tests), then each package's. */
static int walk_all(struct walk *w, int kind)
{
	struct project *p = w->L->p;
	size_t i;
	int rc;

#define PATHS(x) (kind == 0 ? (x)->model_paths : kind == 1 ? (x)->seed_paths : kind == 2 ? (x)->snapshot_paths : \
		  (x)->test_paths)
#define NPATHS(x) (kind == 0 ? (x)->nmodel_paths : kind == 1 ? (x)->nseed_paths : kind == 2 ? (x)->nsnapshot_paths : \
		   (x)->ntest_paths)
	rc = walk_paths(w, PATHS(p), NPATHS(p));
	for (i = 0; i < p->npackages && !rc; i++)
		rc = walk_paths(w, PATHS(&p->packages[i]), NPATHS(&p->packages[i]));
#undef PATHS
#undef NPATHS
	return rc;
}

/* Singular data tests: the .sql files under test-paths. */
static void add_macro_file(struct project *p, const char *package, const struct found *f)
{
	struct macro_file *mf;

	if (p->nmacro_files == 0 || (p->nmacro_files >= 8 && (p->nmacro_files & (p->nmacro_files - 1)) == 0))
		p->macro_files = arena_grow(&p->arena, p->macro_files, p->nmacro_files,
					    p->nmacro_files ? 2 * p->nmacro_files : 8, sizeof(*p->macro_files));
	mf = &p->macro_files[p->nmacro_files++];
	mf->package = package;
	mf->path = f->rel;
	mf->src = f->src;
	mf->src_len = f->src_len;
}

/* Whether a file under a test path is in its generic/ folder: dbt's generic tests, macros. */
static int is_generic_test(const struct found *f)
{
	const char *slash = strchr(f->rel + f->prefix, '/');

	return slash && (size_t)(slash - (f->rel + f->prefix)) == 7 && !memcmp(f->rel + f->prefix, "generic", 7);
}

/* .sql files under macro-paths: the project's macros (engine/macros.c parses them). */
static int load_macro_files(struct loader *L)
{
	struct project *p = L->p;
	struct walk w = { L, NULL, 0, 0, NULL };
	size_t i;
	int rc = walk_paths(&w, p->macro_paths, p->nmacro_paths);

	for (i = 0; i < w.n && !rc; i++)
		if ((!i || strcmp(w.v[i].rel, w.v[i - 1].rel)) && w.v[i].lang && !strcmp(w.v[i].lang, "sql"))
			add_macro_file(p, p->name, &w.v[i]);
	free(w.v);
	return rc;
}

/*
 * Each package's macros, after the project's: the .sql files under its
 * macro-paths, then those in its test paths' generic/ folders.
 */
static int load_package_macro_files(struct loader *L)
{
	struct project *p = L->p;
	size_t i, k, pass;
	int rc = 0;

	for (k = 0; k < p->npackages && !rc; k++) {
		const struct package *pkg = &p->packages[k];
		for (pass = 0; pass < 2 && !rc; pass++) {
			struct walk w = { L, NULL, 0, 0, NULL };
			rc = pass ? walk_paths(&w, pkg->test_paths, pkg->ntest_paths) :
				    walk_paths(&w, pkg->macro_paths, pkg->nmacro_paths);
			for (i = 0; i < w.n && !rc; i++)
				if ((!i || strcmp(w.v[i].rel, w.v[i - 1].rel)) && w.v[i].lang && !strcmp(w.v[i].lang, "sql") &&
				    (!pass || is_generic_test(&w.v[i])))
					add_macro_file(p, pkg->name, &w.v[i]);
			free(w.v);
		}
	}
	return rc;
}

static int load_test_files(struct loader *L)
{
	struct project *p = L->p;
	struct walk w = { L, NULL, 0, 0, NULL };
	size_t i;
	int rc = walk_all(&w, 3);

	p->test_files = arena_alloc(&p->arena, (w.n ? w.n : 1) * sizeof(*p->test_files));
	for (i = 0; i < w.n && !rc; i++) {
		struct test_file *t;
		const char *base = strrchr(w.v[i].rel, '/'), *dot;
		if ((i && !strcmp(w.v[i].rel, w.v[i - 1].rel)) || !w.v[i].lang || strcmp(w.v[i].lang, "sql"))
			continue;
		if (is_generic_test(&w.v[i])) {
			/* a package's come after the project's (load_package_macro_files) */
			if (!project_package_of(p, w.v[i].rel))
				add_macro_file(p, p->name, &w.v[i]);
			continue;
		}
		base = base ? base + 1 : w.v[i].rel;
		dot = strrchr(base, '.');
		t = arena_alloc(&p->arena, sizeof(*t));
		t->name = arena_strndup(&p->arena, base, (size_t)(dot - base));
		t->path = w.v[i].rel;
		t->src = w.v[i].src;
		t->src_len = w.v[i].src_len;
		p->test_files[p->ntest_files++] = t;
	}
	free(w.v);
	return rc;
}

static int load_files(struct loader *L)
{
	struct project *p = L->p;
	struct walk w[3] = { { L, NULL, 0, 0, NULL }, { L, NULL, 0, 0, dbt_seed_lang }, { L, NULL, 0, 0, dbt_snapshot_lang } };
	struct props_ctx pc;
	struct dir_cfg dc;
	size_t i, k, nmodels = 0;
	int rc = 0;

	memset(&pc, 0, sizeof(pc));
	pc.L = L;
	if ((rc = walk_all(&w[0], 0)) || (rc = walk_all(&w[1], 1)) || (rc = walk_all(&w[2], 2)))
		goto out;
	for (k = 0; k < 3; k++)
		for (i = 0; i < w[k].n; i++)
			nmodels += w[k].v[i].lang ? (k == 2 ? dbt_snapshot_count(w[k].v[i].src) : 1) : 0;
	p->models = arena_alloc(&p->arena, (nmodels ? nmodels : 1) * sizeof(*p->models));
	for (k = 0; k < 3 && !rc; k++) {
		memset(&dc, 0, sizeof(dc));
		for (i = 0; i < w[k].n && !rc; i++) {
			const struct found *f = &w[k].v[i];
			/* overlapping paths list a file twice */
			if ((i && !strcmp(f->rel, w[k].v[i - 1].rel)) || !f->lang)
				continue;
			L->pkg = project_package_of(p, f->rel);
			if (k == 0)
				rc = add_resource(L, f, &dc, "model", NULL, f->src, f->src_len);
			else if (k == 1)
				rc = add_resource(L, f, &dc, "seed", NULL, f->src, f->src_len);
			else
				rc = dbt_add_snapshots(L, f, &dc);
			rc = err_collect(p->errors, L->err, rc);
		}
	}
	for (k = 0; k < 3 && !rc; k++)
		for (i = 0; i < w[k].n && !rc; i++) {
			if (i && !strcmp(w[k].v[i].rel, w[k].v[i - 1].rel))
				continue;
			L->pkg = project_package_of(p, w[k].v[i].rel);
			if (w[k].v[i].lang || !(rc = props_file(&pc, w[k].v[i].rel)))
				continue;
			p->sources_incomplete = 1;
			rc = err_collect(p->errors, L->err, rc);
		}
	L->pkg = NULL;
	if (!rc)
		rc = load_macro_files(L);
	if (!rc)
		rc = load_test_files(L);
	if (!rc)
		rc = load_package_macro_files(L);
	if (!rc && pc.nsources) {
		qsort(pc.sources, pc.nsources, sizeof(*pc.sources), cmp_source);
		p->sources = arena_alloc(&p->arena, pc.nsources * sizeof(*p->sources));
		memcpy(p->sources, pc.sources, pc.nsources * sizeof(*p->sources));
		p->nsources = pc.nsources;
	}
out:
	free(pc.sources);
	for (k = 0; k < 3; k++)
		free(w[k].v);
	return rc;
}

/* ---- the public functions ---------------------------------------------------- */

int project_load(struct project *p, const struct project_opts *o, struct sluice_err *err)
{
	struct loader L;
	struct ynode *root = NULL;
	const char *dir = o && o->project_dir && *o->project_dir ? o->project_dir : ".";
	char real[PATH_MAX];
	int rc;

	memset(p, 0, sizeof(*p));
	arena_init(&p->arena);
	p->errors = o ? o->errors : NULL;
	p->warnings = o ? o->warnings : NULL;
	memset(&L, 0, sizeof(L));
	L.p = p;
	L.o = o;
	L.err = err;
	arena_init(&L.tmp);
	if (!realpath(dir, real)) {
		rc = err_set(err, SLUICE_EUSAGE, "project directory %s: %s", dir, strerror(errno));
		goto out;
	}
	p->dir = arena_strdup(&p->arena, real);
	p->vars = val_dict_new();
	if ((rc = read_sluice_yml(&L, &root)) || (rc = load_profiles(&L)))
		goto out;
	set_target_var(&L);
	if ((rc = finish_sluice_yml(&L, root)) || (rc = load_packages(&L, root)) || (rc = load_files(&L)))
		goto out;
out:
	arena_release(&L.tmp);
	if (rc)
		project_release(p);
	return rc;
}

void project_release(struct project *p)
{
	if (!p)
		return;
	strmap_release(&p->model_index);
	strmap_release(&p->source_index);
	arena_release(&p->arena);
	memset(p, 0, sizeof(*p));
}

struct model *project_find_model(const struct project *p, const char *name)
{
	return strmap_get(&p->model_index, name);
}

const struct package *project_package_of(const struct project *p, const char *path)
{
	size_t i, n;

	for (i = 0; path && i < p->npackages; i++) {
		n = strlen(p->packages[i].dir);
		if (!strncmp(path, p->packages[i].dir, n) && path[n] == '/')
			return &p->packages[i];
	}
	return NULL;
}

struct source_table *project_find_source(const struct project *p, const char *source, const char *table)
{
	struct buf key = BUF_INIT;
	struct source_table *t;

	buf_printf(&key, "%s.%s", source, table);
	t = strmap_get(&p->source_index, key.s);
	buf_release(&key);
	return t;
}

const struct conn_cfg *project_conn(const struct project *p, const char *name)
{
	size_t i;

	for (i = 0; i < p->target.nconns; i++)
		if (!strcmp(p->target.conns[i].name, name))
			return &p->target.conns[i];
	return NULL;
}

int project_call_builtin(const struct project *p, const struct tpl_call *c, struct val *out,
			 struct val *used, struct sluice_err *err)
{
	int is_var = !strcmp(c->name, "var"), is_env = !strcmp(c->name, "env_var");
	const struct val *def = c->nargs == 2 ? &c->args[1] : NULL, *v;
	const char *name, *env;
	size_t i;

	if (!is_var && !is_env)
		return 1;
	for (i = 0; i < c->nkw; i++) {
		if (strcmp(c->kwnames[i], "default") || def)
			return err_set(err, SLUICE_EUSAGE, "%s() takes a name and an optional default", c->name);
		def = &c->kwargs[i];
	}
	if (c->nargs < 1 || c->nargs > 2)
		return err_set(err, SLUICE_EUSAGE, "%s() takes a name and an optional default", c->name);
	if (c->args[0].kind != V_STR)
		return err_set(err, SLUICE_EUSAGE, "%s(): the name must be a string", c->name);
	name = c->args[0].u.str.s;
	if (is_var) {
		const struct package *pkg = project_package_of(p, c->path);
		v = val_get(pkg ? &pkg->vars : &p->vars, name);
		if (v)
			*out = *v;
		else if (def)
			*out = val_clone(c->arena, def);
		else
			return err_set(err, SLUICE_EUSAGE,
				       "undefined variable '%s' (set it under vars: in sluice.yml or with --vars)", name);
	} else {
		env = getenv(name);
		if (env)
			*out = val_str_dup(c->arena, env, strlen(env));
		else if (def)
			*out = val_clone(c->arena, def);
		else
			return err_set(err, SLUICE_EUSAGE, "environment variable '%s' is not set and has no default", name);
	}
	if (used)
		val_dict_set(c->arena, used, arena_printf(c->arena, "%s.%s", is_var ? "var" : "env_var", name), *out);
	return 0;
}
