/*
 * schedule.h: the `schedules:` and `notifications:` blocks of sluice.yml,
 * checked and turned into plain structs by the project loader
 * (project_load calls schedule_load). What runs them is cmd-schedule.c;
 * what sends a notification is notify.c.
 *
 *   schedules:
 *     - name: nightly
 *       cron: "0 2 * * *"          # cron.h
 *       timezone: Europe/Athens    # default UTC
 *       command: build             # run | build | test (default run)
 *       select: tag:nightly        # optional, as -s; exclude: as --exclude
 *       retries: 2                 # transient failures only (default 0)
 *       retry-delay: 30s           # the first backoff, doubled each time
 *       notify: [ops]
 *   notifications:
 *     ops: {webhook: "{{ env_var('OPS_WEBHOOK') }}", on: [failure, recovery], format: slack}
 *
 * A webhook URL is a secret: it is kept as the template text of
 * sluice.yml and rendered only when a notification is sent
 * (notify_send), so `sluice run` works without the variable set, and the
 * URL is never in the project's values, messages or logs.
 */
#ifndef SLUICE_SCHEDULE_H
#define SLUICE_SCHEDULE_H

#include <stddef.h>
#include "cron.h"
#include "util/arena.h"
#include "util/err.h"
#include "yaml.h"

enum {
	NOTIFY_FAILURE = 1,
	NOTIFY_SUCCESS = 2,
	NOTIFY_RECOVERY = 4,   /* a success after a failure of the same schedule */
	NOTIFY_ALWAYS = 7,
};

struct notifier {
	const char *name;
	const char *webhook;       /* template text (may use env_var), rendered when sent */
	unsigned on;               /* NOTIFY_* bits; default failure */
	int slack;                 /* format: slack */
	const char *path;          /* "sluice.yml", and line: where it is defined */
	int line;
};

struct schedule {
	const char *name;
	const char *cron_text;
	struct cron cron;
	const char *timezone;      /* default "UTC" */
	const char *command;       /* run | build | test */
	const char *select, *exclude;   /* or NULL */
	int retries;
	double retry_delay;        /* seconds, default 30 */
	const struct notifier **notify;
	size_t nnotify;
	const char *path;
	int line;
};

/*
 * Check and convert the two blocks (either may be NULL) into arrays in a.
 * Errors are SLUICE_EUSAGE naming the place: "sluice.yml:12:11: schedule
 * 'nightly': cron: minute: '60' is out of range 0-59".
 */
int schedule_load(struct arena *a, const struct ynode *schedules, const struct ynode *notifications,
		  struct schedule **out, size_t *n, struct notifier **nout, size_t *nn, struct sluice_err *err);

/*
 * A schedule's name is letters, digits, '_', '-' and '.', under 64 bytes:
 * it goes into SQL comments, file names and the environment.
 */
int schedule_name_ok(const char *name);

/* The schedule called name, or NULL. */
const struct schedule *schedule_find(const struct schedule *s, size_t n, const char *name);

#endif
