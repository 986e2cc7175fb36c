/*
 * schedule.c: reading `schedules:` and `notifications:` (see schedule.h).
 * Only checking and converting: no clock, no processes, no HTTP.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include "schedule.h"

static int is_null(const struct ynode *n)
{
	return !n || (n->kind == Y_SCALAR && n->plain && (!n->len || !strcmp(n->scalar, "~") || !strcmp(n->scalar, "null")));
}

static int one_of(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (!strcmp(s, *list))
			return 1;
	return 0;
}

/* Every key of map n is in keys, else an error at the first that is not. */
static int known_keys(const struct ynode *n, const char *what, const char *const *keys, struct sluice_err *err)
{
	size_t i;

	for (i = 0; i < n->n; i++)
		if (!one_of(n->items[2 * i]->scalar, keys))
			return yaml_error(err, n->items[2 * i], "%s: unknown key '%s'", what, n->items[2 * i]->scalar);
	return 0;
}

/* A non-empty plain string value, or an error. */
static int text(struct arena *a, const struct ynode *n, const char *what, const char *key, const char **out,
		struct sluice_err *err)
{
	if (!n || n->kind != Y_SCALAR || !n->len)
		return yaml_error(err, n, "%s: %s must be a non-empty string", what, key);
	*out = arena_strndup(a, n->scalar, n->len);
	return 0;
}

/* A string or a list of strings, as a NULL-terminated array. */
static int words(struct arena *a, const struct ynode *n, const char *what, const char *key, const char ***out,
		 size_t *cnt, struct sluice_err *err)
{
	size_t i, k = n->kind == Y_SEQ ? n->n : 1;
	int rc;

	*out = arena_alloc(a, (k + 1) * sizeof(char *));
	*cnt = k;
	if (n->kind == Y_MAP)
		return yaml_error(err, n, "%s: %s must be a string or a list of strings", what, key);
	for (i = 0; i < k; i++)
		if ((rc = text(a, n->kind == Y_SEQ ? n->items[i] : n, what, key, &(*out)[i], err)))
			return rc;
	return 0;
}

static int load_notifier(struct arena *a, const struct ynode *k, const struct ynode *v, struct notifier *nt,
			 struct sluice_err *err)
{
	static const char *const keys[] = { "webhook", "on", "format", NULL };
	static const char *const events[] = { "failure", "success", "recovery", "always", NULL };
	const char *what = arena_printf(a, "notification '%s'", k->scalar), *fmt = NULL, **on;
	const struct ynode *n;
	size_t i, cnt;
	int rc;

	nt->name = arena_strdup(a, k->scalar);
	nt->path = k->path;
	nt->line = k->line;
	nt->on = NOTIFY_FAILURE;
	if (v->kind != Y_MAP)
		return yaml_error(err, v, "%s must be a map with webhook:, on: and format:", what);
	if ((rc = known_keys(v, what, keys, err)))
		return rc;
	if ((rc = text(a, ymap_get(v, "webhook"), what, "webhook", &nt->webhook, err)))
		return is_null(ymap_get(v, "webhook")) ? yaml_error(err, v, "%s: missing webhook:", what) : rc;
	if ((n = ymap_get(v, "on"))) {
		if ((rc = words(a, n, what, "on", &on, &cnt, err)))
			return rc;
		nt->on = 0;
		for (i = 0; i < cnt; i++) {
			if (!one_of(on[i], events))
				return yaml_error(err, n, "%s: on: '%s' is not one of failure, success, recovery, always",
						  what, on[i]);
			nt->on |= !strcmp(on[i], "failure") ? NOTIFY_FAILURE : !strcmp(on[i], "success") ? NOTIFY_SUCCESS
				  : !strcmp(on[i], "recovery") ? NOTIFY_RECOVERY : NOTIFY_ALWAYS;
		}
	}
	if ((n = ymap_get(v, "format"))) {
		if ((rc = text(a, n, what, "format", &fmt, err)))
			return rc;
		if (strcmp(fmt, "json") && strcmp(fmt, "slack"))
			return yaml_error(err, n, "%s: format must be json or slack, not '%s'", what, fmt);
		nt->slack = !strcmp(fmt, "slack");
	}
	return 0;
}

int schedule_name_ok(const char *name)
{
	size_t i;

	for (i = 0; name[i]; i++)
		if (!isalnum((unsigned char)name[i]) && !strchr("_-.", name[i]))
			return 0;
	return i > 0 && i < 64;
}

static int load_schedule(struct arena *a, const struct ynode *v, const struct notifier *nts, size_t nn,
			 struct schedule *s, struct sluice_err *err)
{
	static const char *const keys[] = { "name", "cron", "timezone", "command", "select", "exclude",
					    "retries", "retry-delay", "retry_delay", "notify", NULL };
	static const char *const commands[] = { "run", "build", "test", NULL };
	const char *what = "schedule", **names;
	const struct ynode *n;
	char why[256];
	size_t i, k;
	int rc;

	s->path = v->path;
	s->line = v->line;
	if (v->kind != Y_MAP)
		return yaml_error(err, v, "a schedule must be a map with name: and cron:");
	if (is_null(ymap_get(v, "name")))
		return yaml_error(err, v, "schedule: missing name:");
	if ((rc = text(a, ymap_get(v, "name"), what, "name", &s->name, err)))
		return rc;
	if (!schedule_name_ok(s->name))
		return yaml_error(err, ymap_get(v, "name"), "schedule name '%s' may hold only letters, digits, '_', '-' and '.'",
				  s->name);
	what = arena_printf(a, "schedule '%s'", s->name);
	if ((rc = known_keys(v, what, keys, err)))
		return rc;
	if (is_null(n = ymap_get(v, "cron")))
		return yaml_error(err, v, "%s: missing cron: (e.g. \"0 2 * * *\")", what);
	if ((rc = text(a, n, what, "cron", &s->cron_text, err)))
		return rc;
	if (cron_parse(s->cron_text, &s->cron, why, sizeof(why)))
		return yaml_error(err, n, "%s: cron: %s", what, why);
	s->timezone = "UTC";
	if ((n = ymap_get(v, "timezone"))) {
		if ((rc = text(a, n, what, "timezone", &s->timezone, err)))
			return rc;
		if (!cron_zone_ok(s->timezone))
			return yaml_error(err, n, "%s: unknown time zone '%s' (an IANA name such as Europe/Athens)",
					  what, s->timezone);
	}
	s->command = "run";
	if ((n = ymap_get(v, "command"))) {
		if ((rc = text(a, n, what, "command", &s->command, err)))
			return rc;
		if (!one_of(s->command, commands))
			return yaml_error(err, n, "%s: command must be run, build or test, not '%s'", what, s->command);
	}
	if ((n = ymap_get(v, "select")) && (rc = text(a, n, what, "select", &s->select, err)))
		return rc;
	if ((n = ymap_get(v, "exclude")) && (rc = text(a, n, what, "exclude", &s->exclude, err)))
		return rc;
	if ((n = ymap_get(v, "retries"))) {
		char *end;
		long r = n->kind == Y_SCALAR ? strtol(n->scalar, &end, 10) : -1;
		if (n->kind != Y_SCALAR || *end || r < 0 || r > 10)
			return yaml_error(err, n, "%s: retries must be a number from 0 to 10", what);
		s->retries = (int)r;
	}
	s->retry_delay = 30;
	if ((n = ymap_get(v, "retry-delay")) || (n = ymap_get(v, "retry_delay"))) {
		struct val d = yaml_to_val(a, n);
		if (val_duration(&d, &s->retry_delay))
			return yaml_error(err, n, "%s: retry-delay must be a duration such as 30s or 2m", what);
	}
	if ((n = ymap_get(v, "notify"))) {
		if ((rc = words(a, n, what, "notify", &names, &s->nnotify, err)))
			return rc;
		s->notify = arena_alloc(a, (s->nnotify + 1) * sizeof(*s->notify));
		for (i = 0; i < s->nnotify; i++) {
			for (k = 0; k < nn && strcmp(nts[k].name, names[i]); k++)
				;
			if (k == nn)
				return yaml_error(err, n, "%s: notify: no notification '%s' under notifications:",
						  what, names[i]);
			s->notify[i] = &nts[k];
		}
	}
	return 0;
}

int schedule_load(struct arena *a, const struct ynode *schedules, const struct ynode *notifications,
		  struct schedule **out, size_t *n, struct notifier **nout, size_t *nn, struct sluice_err *err)
{
	size_t i, k;
	int rc;

	*out = NULL;
	*nout = NULL;
	*n = *nn = 0;
	if (!is_null(notifications)) {
		if (notifications->kind != Y_MAP)
			return yaml_error(err, notifications, "notifications must be a map of names to {webhook: ...}");
		*nout = arena_alloc(a, notifications->n * sizeof(**nout) + 1);
		for (i = 0; i < notifications->n; i++, (*nn)++)
			if ((rc = load_notifier(a, notifications->items[2 * i], notifications->items[2 * i + 1],
						&(*nout)[i], err)))
				return rc;
	}
	if (is_null(schedules))
		return 0;
	if (schedules->kind != Y_SEQ)
		return yaml_error(err, schedules, "schedules must be a list of {name: ..., cron: ...}");
	*out = arena_alloc(a, schedules->n * sizeof(**out) + 1);
	for (i = 0; i < schedules->n; i++, (*n)++) {
		if ((rc = load_schedule(a, schedules->items[i], *nout, *nn, &(*out)[i], err)))
			return rc;
		for (k = 0; k < i; k++)
			if (!strcmp((*out)[k].name, (*out)[i].name))
				return yaml_error(err, schedules->items[i], "schedule '%s' is defined twice (first at line %d)",
						  (*out)[i].name, (*out)[k].line);
	}
	return 0;
}

const struct schedule *schedule_find(const struct schedule *s, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(s[i].name, name))
			return &s[i];
	return NULL;
}
