/*
 * fingerprint.c: hashing what a node depends on, and deciding from the
 * previous state record whether it must be rebuilt and why.
 *
 * Two levels: `def` covers what defines the relation (code, config, vars);
 * `full` adds the data it reads (upstream fingerprints, source versions).
 * A table is rebuilt when `full` changed; a view only when `def` changed,
 * since a view reads its inputs afresh on every query.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fingerprint.h"
#include "json.h"
#include "util/hash.h"
#include "util/xalloc.h"

/* Config keys that change no SQL and no data: they do not make a node stale. */
static const char *const ignored_config[] = {
	"tags", "meta", "docs", "description", "cue", "cutoff", "on_code_change", "enabled",
	"persist_docs", "depends_on", "timeout",
};

/* Each part is length-prefixed so "ab"+"c" and "a"+"bc" differ. */
static void feed(struct hasher *h, const char *s)
{
	size_t len = s ? strlen(s) : 0;
	unsigned char n[8];
	int i;

	for (i = 0; i < 8; i++)
		n[i] = (unsigned char)(len >> (8 * i));
	hasher_add(h, n, sizeof(n));
	if (len)
		hasher_add(h, s, len);
}

void fp_normalize_sql(const char *s, struct buf *out)
{
	int space = 0;

	while (*s) {
		if (*s == '-' && s[1] == '-') {
			while (*s && *s != '\n')
				s++;
			space = 1;
		} else if (*s == '/' && s[1] == '*') {
			const char *e = strstr(s + 2, "*/");
			s = e ? e + 2 : s + strlen(s);
			space = 1;
		} else if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\f') {
			s++;
			space = 1;
		} else if (*s == '\'' || *s == '"') {
			char q = *s;
			if (space && out->len)
				buf_addc(out, ' ');
			space = 0;
			buf_addc(out, *s++);
			while (*s) {
				if (*s == q && s[1] == q) {
					buf_add(out, s, 2);
					s += 2;
				} else if (*s == q) {
					buf_addc(out, *s++);
					break;
				} else {
					buf_addc(out, *s++);
				}
			}
		} else {
			if (space && out->len)
				buf_addc(out, ' ');
			space = 0;
			buf_addc(out, *s++);
		}
	}
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void hash_config(const struct node *n, char out[FP_HEX])
{
	json_t *j = json_object();
	char *text;
	size_t i, k;

	json_object_set_new(j, "materialized", json_string(n->mat_name ? n->mat_name : ""));
	/*
	 * The relation by its name in the project, not its schema: the same
	 * project in two targets (prod, dev_alice) builds the same thing, and
	 * reuse across environments (docs/environments.md) needs the same
	 * fingerprint for it. A custom schema or alias is config, and a
	 * relation that moved is a reason of its own (fp_decide).
	 */
	json_object_set_new(j, "relation", json_string(n->identifier ? n->identifier : ""));
	json_object_set_new(j, "connection", json_string(n->connection ? n->connection : ""));
	for (i = 0; n->config.kind == V_DICT && i < n->config.u.dict.n; i++) {
		const char *key = n->config.u.dict.keys[i];
		int skip = 0;
		for (k = 0; k < sizeof(ignored_config) / sizeof(ignored_config[0]); k++)
			skip |= !strcmp(key, ignored_config[k]);
		if (!skip)
			json_object_set_new(j, key, json_from_val_new(&n->config.u.dict.vals[i]));
	}
	text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	hash_hex(text, strlen(text), out);
	free(text);
	json_decref(j);
}

static void hash_vars(const struct val *used, struct arena *a, struct fp *out)
{
	struct hasher st;
	const char **keys;
	size_t i, n = used && used->kind == V_DICT ? used->u.dict.n : 0;

	out->var_hashes = val_dict_new();
	keys = xcalloc(n ? n : 1, sizeof(char *));
	for (i = 0; i < n; i++)
		keys[i] = used->u.dict.keys[i];
	qsort(keys, n, sizeof(char *), cmp_str);
	hasher_init(&st);
	for (i = 0; i < n; i++) {
		struct buf v = BUF_INIT;
		char h[FP_HEX];
		val_repr(val_get(used, keys[i]), &v);
		feed(&st, keys[i]);
		feed(&st, v.s);
		hash_hex(v.s, v.len, h);
		h[16] = '\0';
		val_dict_set(a, &out->var_hashes, arena_strdup(a, keys[i]), val_str(arena_strdup(a, h)));
		buf_release(&v);
	}
	hasher_finish(&st, out->vars);
	free(keys);
}

/* Input files, sorted by path, as path=hash after an "inputs" marker (only when there are any). */
static void hash_inputs(struct hasher *st, const struct val *inputs, struct arena *a, struct fp *out)
{
	size_t n = inputs && inputs->kind == V_DICT ? inputs->u.dict.n : 0, i;
	const char **keys;

	out->inputs = val_dict_new();
	if (!n)
		return;
	keys = xcalloc(n, sizeof(char *));
	for (i = 0; i < n; i++)
		keys[i] = inputs->u.dict.keys[i];
	qsort(keys, n, sizeof(char *), cmp_str);
	feed(st, "inputs");
	for (i = 0; i < n; i++) {
		const char *h = val_get_str(val_get(inputs, keys[i]), "hash", "");
		feed(st, keys[i]);
		feed(st, h);
		val_dict_append(a, &out->inputs, keys[i], val_str(h));   /* keys of a dict: unique */
	}
	free(keys);
}

void fp_compute(const struct manifest *m, const struct node *n, const struct fp_input *in,
		struct arena *a, struct fp *out)
{
	const struct dag *d = m->dag;
	size_t np = d->nparents[n->idx], i, nu = 0, ns = 0;
	const char **up = xcalloc(np + 1, sizeof(char *)), **src = xcalloc(np + 1, sizeof(char *));
	struct buf norm = BUF_INIT;
	struct hasher st;

	/* A script is hashed as written: "--" and quotes mean other things in a shell. */
	if (n->mat == MAT_SHELL)
		buf_puts(&norm, in->logical_sql ? in->logical_sql : "");
	else
		fp_normalize_sql(in->logical_sql ? in->logical_sql : "", &norm);
	hash_hex(norm.s, norm.len, out->code);
	hash_config(n, out->config);
	hash_vars(in->used_vars, a, out);

	hasher_init(&st);
	feed(&st, FP_FORMAT);
	feed(&st, "def");
	feed(&st, out->code);
	feed(&st, out->config);
	feed(&st, out->vars);
	hasher_finish(&st, out->def);
	if (in->def)
		snprintf(out->def, sizeof(out->def), "%s", in->def);

	out->upstream = val_dict_new();
	out->sources = val_dict_new();
	for (i = 0; i < np; i++) {
		const struct node *p = &m->nodes[d->parents[n->idx][i]];
		if (in->parent_version && in->parent_version[i]) {
			val_dict_set(a, &out->sources, p->unique_id, val_str(arena_strdup(a, in->parent_version[i])));
			src[ns++] = arena_printf(a, "%s=%s", p->unique_id, in->parent_version[i]);
		} else if (in->parent_fp && in->parent_fp[i]) {
			val_dict_set(a, &out->upstream, p->unique_id, val_str(arena_strdup(a, in->parent_fp[i])));
			up[nu++] = arena_printf(a, "%s=%s", p->unique_id, in->parent_fp[i]);
		}
	}
	qsort(up, nu, sizeof(char *), cmp_str);
	qsort(src, ns, sizeof(char *), cmp_str);
	hasher_init(&st);
	feed(&st, FP_FORMAT);
	feed(&st, out->def);
	for (i = 0; i < nu; i++)
		feed(&st, up[i]);
	feed(&st, "sources");
	for (i = 0; i < ns; i++)
		feed(&st, src[i]);
	hash_inputs(&st, in->inputs, a, out);
	hasher_finish(&st, out->full);

	buf_release(&norm);
	free(up);
	free(src);
}

/* ---- decisions ---- */

static void reason(struct arena *a, struct fp_decision *d, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void reason(struct arena *a, struct fp_decision *d, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	val_list_push(a, &d->reasons, val_str(arena_strndup(a, b.s, b.len)));
	buf_release(&b);
}

/* "model.proj.name" -> "name"; "source.proj.lake.t" -> "lake.t" */
static const char *short_id(const char *uid)
{
	const char *p = strchr(uid, '.');

	p = p ? strchr(p + 1, '.') : NULL;
	return p ? p + 1 : uid;
}

static int differs(const struct val *prev, const char *key, const char *cur)
{
	const char *old = val_get_str(prev, key, NULL);

	return !old || strcmp(old, cur);
}

static void var_reasons(const struct fp *cur, const struct val *prev, struct arena *a, struct fp_decision *d)
{
	const struct val *old = val_get(prev, "vars");
	size_t i;

	for (i = 0; i < cur->var_hashes.u.dict.n; i++) {
		const char *k = cur->var_hashes.u.dict.keys[i];
		const char *o = val_get_str(old, k, NULL);
		if (!o || strcmp(o, cur->var_hashes.u.dict.vals[i].u.str.s)) {
			const char *dot = strchr(k, '.');
			reason(a, d, "%s '%s' changed", dot ? arena_strndup(a, k, (size_t)(dot - k)) : "var", dot ? dot + 1 : k);
		}
	}
	for (i = 0; old && old->kind == V_DICT && i < old->u.dict.n; i++)
		if (!val_get(&cur->var_hashes, old->u.dict.keys[i])) {
			const char *k = old->u.dict.keys[i], *dot = strchr(k, '.');
			reason(a, d, "%s '%s' no longer used", dot ? arena_strndup(a, k, (size_t)(dot - k)) : "var", dot ? dot + 1 : k);
		}
}

/* Shell models: input files changed, added or removed since the last build. */
static void input_reasons(const struct fp *cur, const struct val *prev, struct arena *a, struct fp_decision *d)
{
	const struct val *old = val_get(prev, "inputs");
	size_t i;

	for (i = 0; i < cur->inputs.u.dict.n; i++) {
		const char *path = cur->inputs.u.dict.keys[i];
		const char *o = val_get_str(val_get(old, path), "hash", NULL);
		if (!o)
			reason(a, d, "input '%s' added", path);
		else if (strcmp(o, cur->inputs.u.dict.vals[i].u.str.s))
			reason(a, d, "input '%s' changed", path);
	}
	for (i = 0; old && old->kind == V_DICT && i < old->u.dict.n; i++)
		if (!val_get(&cur->inputs, old->u.dict.keys[i]))
			reason(a, d, "input '%s' removed", old->u.dict.keys[i]);
}

/* Shell models: declared outputs gone, or rewritten by someone else, since the last build. */
static void output_reasons(const struct fp_context *ctx, const struct val *prev, struct arena *a,
			   struct fp_decision *d)
{
	const struct val *old = val_get(prev, "outputs");
	size_t i;

	for (i = 0; ctx->outputs_declared && i < ctx->outputs_declared->u.list.n; i++) {
		const char *path = ctx->outputs_declared->u.list.items[i].u.str.s;
		const char *now = val_get_str(val_get(ctx->outputs, path), "hash", NULL);
		const char *o = val_get_str(val_get(old, path), "hash", NULL);
		if (!now)
			reason(a, d, "output '%s' is missing", path);
		else if (o && strcmp(o, now))
			reason(a, d, "output '%s' was changed outside sluice", path);
	}
}

static void data_reasons(const struct fp *cur, const struct val *prev, struct arena *a, struct fp_decision *d)
{
	const struct val *up = val_get(prev, "upstream"), *src = val_get(prev, "sources");
	size_t i;

	for (i = 0; i < cur->upstream.u.dict.n; i++) {
		const char *uid = cur->upstream.u.dict.keys[i];
		const char *o = val_get_str(up, uid, NULL);
		if (!o || strcmp(o, cur->upstream.u.dict.vals[i].u.str.s))
			reason(a, d, "upstream '%s' changed", short_id(uid));
	}
	for (i = 0; i < cur->sources.u.dict.n; i++) {
		const char *uid = cur->sources.u.dict.keys[i];
		const char *now = cur->sources.u.dict.vals[i].u.str.s;
		const char *o = val_get_str(src, uid, NULL);
		if (!o)
			reason(a, d, "source '%s' is new to this model (%s)", short_id(uid), now);
		else if (strcmp(o, now))
			reason(a, d, "source '%s' changed (%s -> %s)", short_id(uid), o, now);
	}
	input_reasons(cur, prev, a, d);
}

void fp_decide(const struct manifest *m, const struct node *n, const struct fp *cur,
	       const struct fp_context *ctx, struct arena *a, struct fp_decision *d)
{
	const struct val *prev = ctx->prev;
	const char *status = val_get_str(prev, "status", NULL);
	int code_changed = 0, outside = 0, has_relation = n->mat != MAT_SHELL || val_get_bool(&n->config, "relation", 0);

	(void)m;
	memset(d, 0, sizeof(*d));
	d->reasons = val_list_new();
	if (ctx->force)
		reason(a, d, "--force");
	if (ctx->full_refresh)
		reason(a, d, "--full-refresh");
	if (ctx->must_build)
		reason(a, d, "%s", ctx->must_build);
	if (!strcmp(val_get_str(&n->config, "cue", ""), "always"))
		reason(a, d, "cue: always");
	if (!prev) {
		reason(a, d, "never built");
	} else {
		if (status && !strcmp(status, "error"))
			reason(a, d, "last run failed");
		else if (status && !strcmp(status, "cancelled"))
			reason(a, d, "last run was interrupted");
		if (n->mat == MAT_SHELL)
			output_reasons(ctx, prev, a, d);
		if (!ctx->relation_exists && n->mat == MAT_UNLOAD)
			reason(a, d, "its last stage generation is missing (deleted outside sluice?)");
		/* a script that makes no relation has none to miss */
		else if (has_relation && !ctx->relation_exists)
			reason(a, d, "relation %s is missing (dropped outside sluice?)", n->display);
		else if (has_relation && ctx->relation_version && val_get_str(prev, "relation_version", NULL) &&
			 differs(prev, "relation_version", ctx->relation_version) && (outside = 1))
			reason(a, d, n->mat == MAT_INCREMENTAL ? "relation %s was changed outside sluice (an incremental "
				     "run keeps that change: --full-refresh rebuilds it)" : "relation %s was changed outside sluice",
			       n->display);
		if (has_relation && n->display && val_get_str(prev, "relation", NULL) && differs(prev, "relation", n->display)) {
			reason(a, d, "relation moved (%s -> %s)", val_get_str(prev, "relation", ""), n->display);
			code_changed = 1;
		}
		if (differs(prev, "code_hash", cur->code)) {
			reason(a, d, "code changed");
			code_changed = 1;
		}
		if (differs(prev, "config_hash", cur->config)) {
			reason(a, d, "config changed");
			code_changed = 1;
		}
		var_reasons(cur, prev, a, d);
		if (differs(prev, "vars_hash", cur->vars))
			code_changed = 1;
		/* A view reads its inputs afresh on every query: data changes need no rebuild. */
		if (n->mat != MAT_VIEW && differs(prev, "fingerprint", cur->full))
			data_reasons(cur, prev, a, d);
		/* Rare: the fingerprint moved for a reason none of the above names. */
		if (n->mat != MAT_VIEW && !d->reasons.u.list.n && differs(prev, "fingerprint", cur->full))
			reason(a, d, "fingerprint changed");
	}
	d->build = d->reasons.u.list.n != 0;
	if (n->mat == MAT_INCREMENTAL && d->build)
		d->full_refresh = !prev || ctx->full_refresh || !ctx->relation_exists ||
				  (code_changed && strcmp(val_get_str(&n->config, "on_code_change", ""), "incremental"));
	d->kept_outside = n->mat == MAT_INCREMENTAL && d->build && outside && !d->full_refresh;
	/* an unload whose query changed sends everything, not rows past the watermark */
	if (n->mat == MAT_UNLOAD && d->build)
		d->full_refresh = !prev || ctx->full_refresh || code_changed;
}
