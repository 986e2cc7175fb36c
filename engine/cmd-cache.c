/*
 * cmd-cache.c: `sluice cache ls` and `sluice cache prune --older-than 30d`:
 * what the environments sharing this project's state store (the outputs
 * of its profile) have built, and forgetting records whose relation is
 * gone (docs/environments.md). ls only reads; prune writes nothing but
 * state records, each target's under that target's lock. Reuse itself
 * is reuse.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "build.h"
#include "cmd.h"
#include "json.h"
#include "ui.h"
#include "util/xalloc.h"

#define CACHE_USAGE "cache ls [--format json] | cache prune --older-than AGE (30d, 12h, 45m) [--dry-run]"

/* One relation an environment's state says it built. */
struct entry {
	const char *target, *uid, *schema, *ident, *fingerprint, *user, *from, *mode;
	double finished_at;
	long long size;            /* bytes, -1 unknown */
	int exists;
};

struct entries {
	struct entry *v;
	size_t n, cap;
};

static void collect(struct entries *es, const char *target, const struct val *recs)
{
	size_t i;

	for (i = 0; i < recs->u.dict.n; i++) {
		const struct val *r = &recs->u.dict.vals[i], *from = val_get(r, "reused_from");
		struct entry *e;
		if (r->kind != V_DICT || !val_get_str(r, "schema", NULL) || !val_get_str(r, "identifier", NULL))
			continue;
		if (es->n == es->cap) {
			es->cap = es->cap ? 2 * es->cap : 64;
			es->v = xrealloc(es->v, es->cap * sizeof(*es->v));
		}
		e = &es->v[es->n++];
		memset(e, 0, sizeof(*e));
		e->target = target;
		e->uid = recs->u.dict.keys[i];
		e->schema = val_get_str(r, "schema", "");
		e->ident = val_get_str(r, "identifier", "");
		e->fingerprint = val_get_str(r, "fingerprint", "");
		e->user = val_get_str(r, "user", "");
		e->finished_at = (double)val_get_int(r, "finished_at", 0);
		e->from = from && from->kind == V_DICT ? val_get_str(from, "target", NULL) : NULL;
		e->mode = from && from->kind == V_DICT ? val_get_str(from, "mode", "view") : NULL;
		e->size = -1;
	}
}

/* Every output's records, read through st (this target's store). */
static void load_all(struct session *s, struct state *st, struct arena *a, struct entries *es)
{
	const struct target *t = &s->project.target;
	size_t i;

	for (i = 0; i < t->noutputs; i++) {
		struct sluice_err err = SLUICE_ERR_INIT;
		struct val recs;
		if (state_load_target(st, t->outputs[i], a, &recs, &err))
			ui_warn("cache: the state of %s cannot be read: %s", t->outputs[i], err.msg);
		else
			collect(es, t->outputs[i], &recs);
	}
}

struct size_ctx {
	struct entries *es;
	int sized;
};

static int size_row(void *ud, const struct sluice_row *row)
{
	struct size_ctx *c = ud;
	size_t i;

	if (row->ncols < 3 || !row->values[0] || !row->values[1])
		return 0;
	for (i = 0; i < c->es->n; i++) {
		struct entry *e = &c->es->v[i];
		if (!strcmp(e->schema, row->values[0]) && !strcmp(e->ident, row->values[1])) {
			e->exists = 1;
			if (c->sized && row->values[2])
				e->size = strtoll(row->values[2], NULL, 10);
		}
	}
	return 0;
}

/* Which relations exist now, and their sizes, in one query on this target's connection. */
static int look_up(struct session *s, struct entries *es, struct sluice_err *err)
{
	const char **schemas = xcalloc(es->n + 1, sizeof(char *)), **idents = xcalloc(es->n + 1, sizeof(char *));
	struct size_ctx ctx = { es, 0 };
	const struct dialect *d;
	struct sluice_conn *c = NULL;
	struct buf q = BUF_INIT;
	size_t i;
	int rc;

	for (i = 0; i < es->n; i++) {
		schemas[i] = es->v[i].schema;
		idents[i] = es->v[i].ident;
	}
	if (!(rc = conn_open(s, "default", &c, &d, err))) {
		if (d->relation_size_query) {
			ctx.sized = 1;
			d->relation_size_query(&q, schemas, idents, es->n);
		} else {
			d->relations_query(&q, schemas, es->n);
		}
		rc = c->drv->query(c, q.s, size_row, &ctx, err);
	}
	conn_close(c);
	buf_release(&q);
	free(schemas);
	free(idents);
	return rc;
}

static void age_text(double seconds, char *out, size_t n)
{
	long s = seconds > 0 ? (long)seconds : 0;

	if (s < 60)
		snprintf(out, n, "%lds", s);
	else if (s < 3600)
		snprintf(out, n, "%ldm", s / 60);
	else if (s < 86400)
		snprintf(out, n, "%ldh", s / 3600);
	else
		snprintf(out, n, "%ldd", s / 86400);
}

static void size_text(const struct entry *e, char *out, size_t n)
{
	static const char *const units[] = { "B", "kB", "MB", "GB", "TB" };
	double v = (double)e->size;
	int u = 0;

	if (!e->exists) {
		snprintf(out, n, "gone");
		return;
	}
	if (e->size < 0) {
		snprintf(out, n, "-");
		return;
	}
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(out, n, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

static void print_ls(const struct entries *es, int as_json)
{
	double now = (double)time(NULL);
	json_t *list = as_json ? json_array() : NULL;
	size_t i;

	if (!as_json)
		printf("%-12s %-40s %-12s %-10s %5s %10s  %s\n", "environment", "relation", "fingerprint", "built by", "age",
		       "size", "from");
	for (i = 0; i < es->n; i++) {
		const struct entry *e = &es->v[i];
		char age[32], size[32], rel[512], from[300] = "";
		snprintf(rel, sizeof(rel), "%s.%s", e->schema, e->ident);
		age_text(now - e->finished_at, age, sizeof(age));
		size_text(e, size, sizeof(size));
		if (e->from)
			snprintf(from, sizeof(from), "%s %s", !strcmp(e->mode, "copy") ? "copy of" :
				 !strcmp(e->mode, "view") ? "view over" : !strcmp(e->mode, "remade") ? "remade like" :
				 "taken from", e->from);
		if (as_json) {
			json_t *o = json_object();
			json_object_set_new(o, "environment", json_string(e->target));
			json_object_set_new(o, "unique_id", json_string(e->uid));
			json_object_set_new(o, "relation", json_string(rel));
			json_object_set_new(o, "fingerprint", json_string(e->fingerprint));
			json_object_set_new(o, "user", json_string(e->user));
			json_object_set_new(o, "age_seconds", json_integer((json_int_t)(now - e->finished_at)));
			json_object_set_new(o, "exists", json_boolean(e->exists));
			json_object_set_new(o, "bytes", e->size >= 0 ? json_integer(e->size) : json_null());
			json_object_set_new(o, "reused_from", e->from ? json_string(e->from) : json_null());
			json_object_set_new(o, "mode", e->mode ? json_string(e->mode) : json_null());
			json_array_append_new(list, o);
		} else {
			printf("%-12s %-40s %-12.12s %-10s %5s %10s  %s\n", e->target, rel, e->fingerprint, e->user, age, size,
			       from);
		}
	}
	if (as_json) {
		char *text = json_dumps(list, JSON_INDENT(2));
		if (text)
			printf("%s\n", text);
		free(text);
		json_decref(list);
	}
}

/* "30d", "12h", "45m", "90s" in seconds, or -1. */
static double parse_age(const char *s)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || v < 0 || !end[0] || end[1])
		return -1;
	switch (*end) {
	case 'd': return v * 86400;
	case 'h': return v * 3600;
	case 'm': return v * 60;
	case 's': return v;
	default: return -1;
	}
}

/* Forget, target by target under its lock, what is older than age and whose relation is gone. */
static int prune(struct session *s, const struct entries *es, double age, int dry_run, struct sluice_err *err)
{
	const struct target *t = &s->project.target;
	double cutoff = (double)time(NULL) - age;
	size_t i, k;
	int rc = 0, forgotten = 0;

	for (k = 0; k < t->noutputs && !rc; k++) {
		struct state *st = NULL;
		for (i = 0; i < es->n && !rc; i++) {
			const struct entry *e = &es->v[i];
			char ago[32];
			if (strcmp(e->target, t->outputs[k]) || e->exists || e->finished_at > cutoff)
				continue;
			if (!dry_run && !st &&
			    ((rc = build_state_open_target(s, e->target, &st, err)) ||
			     (rc = state_lock(st, s->cli->wait_lock, err))))
				break;
			if (!dry_run && (rc = state_forget(st, e->uid, err)))
				break;
			age_text((double)time(NULL) - e->finished_at, ago, sizeof(ago));
			printf("%s %s %s (%s.%s is gone; built %s ago by %s)\n", dry_run ? "would forget" : "forgot",
			       e->target, e->uid, e->schema, e->ident, ago, e->user);
			forgotten++;
		}
		if (st && !rc)
			rc = state_finish(st, err);
		state_close(st);
		if (rc)
			err_prefix(err, "cache prune: %s", t->outputs[k]);
	}
	if (!rc)
		printf("%d record%s %s\n", forgotten, forgotten == 1 ? "" : "s", dry_run ? "to forget" : "forgotten");
	return rc;
}

int cmd_cache(int argc, char **argv)
{
	static const char *const extra[] = { "--older-than", "--dry-run", NULL };
	struct cli cli = { 0 };
	struct session s;
	struct sluice_err err = SLUICE_ERR_INIT;
	struct entries es = { 0 };
	struct arena a = ARENA_INIT;
	struct state *st = NULL;
	const char *action = NULL, *older = NULL;
	double age = -1;
	int rc, dry_run = 0, i;

	if ((rc = cmd_open(argc, argv, extra, &cli, &s)))
		return rc;
	for (i = 0; i < cli.nargs && !rc; i++) {
		const char *x = cli.args[i];
		if (!strcmp(x, "--dry-run"))
			dry_run = 1;
		else if (!strncmp(x, "--older-than=", 13))
			older = x + 13;
		else if (!strcmp(x, "--older-than") && i + 1 < cli.nargs)
			older = cli.args[++i];
		else if (!strcmp(x, "--older-than"))
			rc = err_set(&err, SLUICE_EUSAGE, "--older-than needs an age, e.g. 30d");
		else if (!action)
			action = x;
		else
			rc = err_set(&err, SLUICE_EUSAGE, "cache: unexpected '%s' (" CACHE_USAGE ")", x);
	}
	if (!rc && !action)
		rc = err_set(&err, SLUICE_EUSAGE, CACHE_USAGE);
	else if (!rc && strcmp(action, "ls") && strcmp(action, "prune"))
		rc = err_set(&err, SLUICE_EUSAGE, "unknown cache action '%s' (" CACHE_USAGE ")", action);
	if (!rc && !strcmp(action, "prune") && (!older || (age = parse_age(older)) < 0))
		rc = err_set(&err, SLUICE_EUSAGE, "cache prune --older-than takes an age such as 30d, 12h or 45m%s%s%s",
			     older ? ", not '" : "", older ? older : "", older ? "'" : "");
	if (!rc && cli.format && strcmp(cli.format, "text") && strcmp(cli.format, "json"))
		rc = err_set(&err, SLUICE_EUSAGE, "--format takes text or json, not '%s'", cli.format);
	if (!rc)
		rc = build_state_open(&s, &st, &err);
	if (!rc) {
		load_all(&s, st, &a, &es);
		rc = look_up(&s, &es, &err);
	}
	state_close(st);
	if (!rc && !strcmp(action, "ls"))
		print_ls(&es, cli.format && !strcmp(cli.format, "json"));
	else if (!rc)
		rc = prune(&s, &es, age, dry_run, &err);
	free(es.v);
	arena_release(&a);
	cmd_close(&cli, &s);
	if (rc)
		return cmd_fail(&err);
	return ui_flush() < 0 ? 1 : 0;
}
