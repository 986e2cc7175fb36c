/*
 * cmd-schedule.c: `sluice schedule`: the project's schedules (schedule.h)
 * run by a long-lived foreground process, or one of them now (--once),
 * or shown (--list, --print-systemd, --print-crontab).
 *
 * Each scheduled attempt is this same sluice binary, re-executed as a
 * child process with the schedule's command and selection
 * (`sluice build -s tag:nightly`). Why a child and not a call in-process:
 * the run is then exactly what a person would run by hand, with the same
 * state lock, artifacts and exit code; a crash, a leak or a stuck driver
 * in one run cannot take the scheduler down with it; every run loads the
 * project afresh; and the scheduler stays one thread (cron.h needs it),
 * waiting on a pipe and a pid. The child gets SLUICE_SCHEDULE (its audit
 * comment and run_results.json name the schedule) and
 * SLUICE_INVOCATION_ID (so its run_results.json is found and tied to the
 * attempt).
 *
 * One run at a time: the scheduler starts no run while one of its own is
 * going (a trigger that fires then is skipped and logged), and each child
 * takes the state lock as any run does, so a run started elsewhere makes a
 * trigger skip too. After a run, the scheduler stores a record
 * "schedule.<project>.<name>" in the state (under the lock): its last
 * trigger time and result, for --list, for catch-up after downtime and to
 * tell a recovery from a success.
 *
 * The clock: SLUICE_NOW (an ISO-8601 UTC time or epoch seconds) starts
 * the scheduler's clock there, and SLUICE_TIME_SCALE makes it run that
 * many times faster than the real one (backoff waits follow it too), so
 * tests see a day of triggers in seconds.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "build.h"
#include "cmd.h"
#include "cron.h"
#include "notify.h"
#include "retry.h"
#include "schedule.h"
#include "state.h"
#include "ui.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/fs.h"
#include "util/xalloc.h"

extern char **environ;

/* ---- the scheduler's clock ------------------------------------------------ */

static double clock_fake0, clock_real0, clock_scale = 1;
static int clock_fake;

static int sched_clock_init(struct sluice_err *err)
{
	const char *now = getenv("SLUICE_NOW"), *scale = getenv("SLUICE_TIME_SCALE");
	char *end;

	clock_real0 = clock_monotonic();
	if (scale && *scale) {
		clock_scale = strtod(scale, &end);
		if (*end || clock_scale <= 0 || clock_scale > 1e6)
			return err_set(err, SLUICE_EUSAGE, "SLUICE_TIME_SCALE must be a number above 0, not '%s'", scale);
	}
	clock_fake0 = now_seconds();
	if (now && *now) {
		struct tm tm = { 0 };
		const char *rest = strptime(now, "%Y-%m-%dT%H:%M:%S", &tm);
		if (rest && (!strcmp(rest, "Z") || !*rest)) {
			clock_fake0 = (double)timegm(&tm);
		} else {
			clock_fake0 = strtod(now, &end);
			if (*end || clock_fake0 <= 0)
				return err_set(err, SLUICE_EUSAGE,
					       "SLUICE_NOW must be a UTC time like 2026-03-29T00:00:00Z or epoch seconds, not '%s'", now);
		}
	}
	clock_fake = (now && *now) || clock_scale != 1;
	return 0;
}

static double sched_now(void)
{
	if (!clock_fake)
		return now_seconds();
	return clock_fake0 + (clock_monotonic() - clock_real0) * clock_scale;
}

static void iso_utc(double t, char out[32])
{
	time_t secs = (time_t)t;
	struct tm tm;

	gmtime_r(&secs, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- signals ---------------------------------------------------------------- */

static volatile sig_atomic_t got_term, got_hup;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		got_hup = 1;
	else
		got_term = sig;
}

static void install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

/* ---- one scheduled run: attempts of a child sluice ------------------------ */

struct sched {
	struct cli *cli;
	struct session *s;
	const char *self;          /* this binary */
	const char *log_format;
	double grace;              /* seconds running nodes get after SIGTERM */
};

struct run {
	const struct schedule *sc;
	double fire;               /* the trigger time it runs for */
	double started;            /* scheduler clock */
	double attempt_started;
	int attempt;               /* 1-based */
	pid_t pid;
	struct relay {             /* the child's stdout [0] and stderr [1], passed on line by line */
		int fd;
		struct buf part;   /* a line not yet ended */
	} io[2];
	char last_error[1024];     /* its last error line (text on stderr, or a JSON "error" event) */
	char invocation_id[40];
	double retry_at;           /* > 0: waiting to retry */
	json_t *attempts;
	json_t *summary;           /* of the last attempt that wrote run_results.json */
	int exit_code;
	int drained, cancel_sent;
	double stop_deadline;      /* real clock */
};

static const char *results_path(const struct sched *S, struct buf *b)
{
	buf_reset(b);
	buf_printf(b, "%s/run_results.json", S->s->project.target_path);
	return b->s;
}

/*
 * Start an attempt: 0 with r->pid and its pipes set, or an error. argv and
 * the environment are built before fork: the child only calls execve.
 */
static int spawn_attempt(struct sched *S, struct run *r, struct sluice_err *err)
{
	const struct schedule *sc = r->sc;
	const struct cli *cli = S->cli;
	const char *argv[32], **envp;
	char env_sched[96], env_id[64];
	size_t n = 0, i, ne = 0;
	int fds[2], outfds[2];
	pid_t pid;

	session_new_invocation_id(r->invocation_id, sizeof(r->invocation_id));
	argv[n++] = S->self;
	argv[n++] = sc->command;
	argv[n++] = "--project-dir";
	argv[n++] = S->s->project.dir;
	if (cli->profiles_dir) {
		argv[n++] = "--profiles-dir";
		argv[n++] = cli->profiles_dir;
	}
	if (cli->target) {
		argv[n++] = "--target";
		argv[n++] = cli->target;
	}
	if (cli->vars) {
		argv[n++] = "--vars";
		argv[n++] = cli->vars;
	}
	if (cli->force)
		argv[n++] = "--force";
	if (cli->full_refresh)
		argv[n++] = "--full-refresh";
	if (cli->wait_lock >= 0) {
		static char wait[16];
		snprintf(wait, sizeof(wait), "%d", cli->wait_lock);
		argv[n++] = "--wait-lock";
		argv[n++] = wait;
	}
	if (cli->threads) {
		static char threads[16];
		snprintf(threads, sizeof(threads), "%d", cli->threads);
		argv[n++] = "--threads";
		argv[n++] = threads;
	}
	if (sc->select) {
		argv[n++] = "--select";
		argv[n++] = sc->select;
	}
	if (sc->exclude) {
		argv[n++] = "--exclude";
		argv[n++] = sc->exclude;
	}
	argv[n++] = "--log-format";
	argv[n++] = S->log_format;
	argv[n] = NULL;

	snprintf(env_sched, sizeof(env_sched), "SLUICE_SCHEDULE=%s", sc->name);
	snprintf(env_id, sizeof(env_id), "SLUICE_INVOCATION_ID=%s", r->invocation_id);
	for (i = 0; environ[i]; i++)
		;
	envp = xcalloc(i + 3, sizeof(char *));
	for (i = 0; environ[i]; i++)
		if (strncmp(environ[i], "SLUICE_SCHEDULE=", 16) && strncmp(environ[i], "SLUICE_INVOCATION_ID=", 21))
			envp[ne++] = environ[i];
	envp[ne++] = env_sched;
	envp[ne++] = env_id;

	if (pipe2(fds, O_CLOEXEC)) {
		free(envp);
		return err_set(err, SLUICE_EIO, "pipe: %s", strerror(errno));
	}
	if (pipe2(outfds, O_CLOEXEC)) {
		close(fds[0]);
		close(fds[1]);
		free(envp);
		return err_set(err, SLUICE_EIO, "pipe: %s", strerror(errno));
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0) {
		/* Its own process group: a terminal's Ctrl-C or a container's stop reaches the scheduler, which decides. */
		setpgid(0, 0);
		dup2(outfds[1], STDOUT_FILENO);
		dup2(fds[1], STDERR_FILENO);
		execve(S->self, (char *const *)argv, (char *const *)envp);
		_exit(127);
	}
	free(envp);
	close(fds[1]);
	close(outfds[1]);
	if (pid < 0) {
		close(fds[0]);
		close(outfds[0]);
		return err_set(err, SLUICE_EIO, "fork: %s", strerror(errno));
	}
	fcntl(fds[0], F_SETFL, O_NONBLOCK);
	fcntl(outfds[0], F_SETFL, O_NONBLOCK);
	r->pid = pid;
	r->io[0].fd = outfds[0];
	r->io[1].fd = fds[0];
	r->last_error[0] = '\0';
	r->attempt_started = sched_now();
	r->drained = r->cancel_sent = 0;
	return 0;
}

/* An error line of the child: remember it for the attempt's record and notifications. */
static void note_error(struct run *r, const char *line, size_t len, int is_stderr)
{
	static const char needle[] = "\"event\":\"error\"";
	json_t *o;

	if (is_stderr) {
		if (len > 15 && !strncmp(line, "sluice: error: ", 15)) {
			line += 15;
			len -= 15;
		}
		snprintf(r->last_error, sizeof(r->last_error), "%.*s", (int)len, line);
		return;
	}
	/* --log-format json: errors are events on stdout */
	if (line[0] != '{' || !memmem(line, len, needle, sizeof(needle) - 1))
		return;
	if ((o = json_loadb(line, len, 0, NULL)) && json_string_value(json_object_get(o, "message")))
		snprintf(r->last_error, sizeof(r->last_error), "%s", json_string_value(json_object_get(o, "message")));
	json_decref(o);
}

/* Pass the child's output on, a whole line at a time (final: the rest too). */
static void pump(struct run *r, int final)
{
	char chunk[4096];
	ssize_t got;
	char *nl;
	int k;

	for (k = 0; k < 2; k++) {
		struct relay *io = &r->io[k];
		FILE *dst = k ? stderr : stdout;
		while (io->fd >= 0 && (got = read(io->fd, chunk, sizeof(chunk))) > 0)
			buf_add(&io->part, chunk, (size_t)got);
		while (io->part.len && ((nl = memchr(io->part.s, '\n', io->part.len)) || final)) {
			size_t len = nl ? (size_t)(nl - io->part.s) : io->part.len;
			fwrite(io->part.s, 1, len, dst);
			fputc('\n', dst);
			if (len)
				note_error(r, io->part.s, len, k);
			len = nl ? len + 1 : len;
			memmove(io->part.s, io->part.s + len, io->part.len - len);
			io->part.len -= len;
			io->part.s[io->part.len] = '\0';
		}
		fflush(dst);
	}
}

static void relay_close(struct run *r)
{
	int k;

	for (k = 0; k < 2; k++) {
		if (r->io[k].fd >= 0)
			close(r->io[k].fd);
		r->io[k].fd = -1;
		buf_release(&r->io[k].part);
	}
}

static const char *first_line(const char *s, struct buf *out)
{
	const char *nl = strchr(s ? s : "", '\n');

	buf_reset(out);
	if (!s)
		return "";
	buf_add(out, s, nl ? (size_t)(nl - s) : strlen(s));
	return out->s;
}

/*
 * Read the attempt's run_results.json (only if it is this attempt's):
 * counts by status and the failed nodes, and whether every failure was
 * transient. 0 when read, -1 when the attempt wrote none.
 */
static int read_results(struct sched *S, struct run *r, int *failed, int *transient)
{
	struct buf path = BUF_INIT, line = BUF_INIT;
	json_t *root, *results, *v, *counts, *nodes;
	const char *id;
	size_t i;

	root = json_load_file(results_path(S, &path), 0, NULL);
	buf_release(&path);
	id = json_string_value(json_object_get(json_object_get(root, "metadata"), "invocation_id"));
	if (!root || !id || strcmp(id, r->invocation_id)) {
		json_decref(root);
		return -1;
	}
	counts = json_object();
	nodes = json_array();
	*failed = 0;
	*transient = 1;
	results = json_object_get(root, "results");
	json_array_foreach(results, i, v) {
		const char *st = json_string_value(json_object_get(v, "status"));
		const char *msg = json_string_value(json_object_get(v, "message"));
		const char *state = json_string_value(json_object_get(v, "sqlstate"));
		if (!st)
			continue;
		json_object_set_new(counts, st, json_integer(json_integer_value(json_object_get(counts, st)) + 1));
		if (strcmp(st, "error") && strcmp(st, "fail"))
			continue;
		(*failed)++;
		/* A failing data test is the data's answer: never transient. */
		if (!strcmp(st, "fail") || !retry_transient(state, msg))
			*transient = 0;
		json_array_append_new(nodes, json_pack("{s:s?, s:s}", "unique_id", json_string_value(json_object_get(v, "unique_id")),
						       "error", first_line(msg, &line)));
	}
	buf_release(&line);
	json_decref(r->summary);
	r->summary = json_pack("{s:o, s:o}", "counts", counts, "failed_nodes", nodes);
	json_decref(root);
	return 0;
}

/*
 * Add the attempts to run_results.json (write a copy, then rename) when
 * the file is one of this run's attempts': an attempt that stopped
 * before writing one leaves an older run's file, which stays as it is.
 */
static void record_attempts(struct sched *S, struct run *r)
{
	struct buf path = BUF_INIT, tmp = BUF_INIT;
	json_t *root = json_load_file(results_path(S, &path), 0, NULL), *a;
	const char *id = json_string_value(json_object_get(json_object_get(root, "metadata"), "invocation_id"));
	size_t i;
	int ours = 0;

	json_array_foreach(r->attempts, i, a)
		if (id && !strcmp(id, json_string_value(json_object_get(a, "invocation_id")) ?
					  json_string_value(json_object_get(a, "invocation_id")) : ""))
			ours = 1;
	if (ours && json_is_object(root)) {
		json_object_set(root, "attempts", r->attempts);
		buf_printf(&tmp, "%s.tmp", path.s);
		if (json_dump_file(root, tmp.s, JSON_INDENT(2)) || rename(tmp.s, path.s))
			ui_warn("cannot add attempts to %s: %s", path.s, strerror(errno));
	}
	json_decref(root);
	buf_release(&path);
	buf_release(&tmp);
}

static const char *record_id(const struct sched *S, const char *name, struct buf *b)
{
	buf_reset(b);
	buf_printf(b, "schedule.%s.%s", S->s->project.name, name);
	return b->s;
}

/*
 * The schedule's record in the state, in a (none when there is none or
 * the state cannot be read: a scheduler still runs without).
 */
static struct val load_record(struct sched *S, const char *name, struct arena *a)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct state *st = NULL;
	struct val recs = val_dict_new();
	struct buf id = BUF_INIT;
	const struct val *v;
	struct val out = val_none();

	if (build_state_open(S->s, &st, &err) || state_load(st, a, &recs, &err))
		ui_warn("schedule %s: cannot read its last result from the state: %s", name, err.msg);
	else if ((v = val_get(&recs, record_id(S, name, &id))))
		out = *v;
	state_close(st);
	buf_release(&id);
	return out;
}

static void store_record(struct sched *S, struct run *r, const char *status, double finished)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct arena a = ARENA_INIT;
	struct state *st = NULL;
	struct val rec = val_dict_new();
	struct buf id = BUF_INIT;
	char fire[32], fin[32];

	iso_utc(r->fire, fire);
	iso_utc(finished, fin);
	val_dict_set(&a, &rec, "unique_id", val_str(record_id(S, r->sc->name, &id)));
	val_dict_set(&a, &rec, "kind", val_str("schedule"));
	val_dict_set(&a, &rec, "status", val_str(status));
	val_dict_set(&a, &rec, "fire_time", val_num(r->fire));
	val_dict_set(&a, &rec, "fire_at", val_str(fire));
	val_dict_set(&a, &rec, "finished_at", val_str(fin));
	val_dict_set(&a, &rec, "invocation_id", val_str(r->invocation_id));
	val_dict_set(&a, &rec, "attempts", val_num((double)r->attempt));
	val_dict_set(&a, &rec, "user", val_str(S->s->user));
	/* The run that just ended released the lock; another may hold it now: wait a while. */
	if (build_state_open(S->s, &st, &err) || state_lock(st, 120, &err) ||
	    state_put(st, id.s, &rec, &err) || state_finish(st, &err))
		ui_warn("schedule %s: cannot record its result in the state: %s", r->sc->name, err.msg);
	state_close(st);
	buf_release(&id);
	arena_release(&a);
}

static void notify_all(struct sched *S, struct run *r, int ok, int was_failing, double finished)
{
	const struct project *p = &S->s->project;
	json_t *sum = json_object();
	char ts[32];
	size_t i;

	json_object_set_new(sum, "project", json_string(p->name));
	json_object_set_new(sum, "schedule", json_string(r->sc->name));
	json_object_set_new(sum, "status", json_string(ok ? "success" : "failure"));
	json_object_set_new(sum, "recovery", json_boolean(ok && was_failing));
	json_object_set_new(sum, "target", json_string(p->target.name));
	json_object_set_new(sum, "user", json_string(S->s->user));
	json_object_set_new(sum, "command", json_string(r->sc->command));
	json_object_set_new(sum, "invocation_id", json_string(r->invocation_id));
	iso_utc(r->fire, ts);
	json_object_set_new(sum, "trigger_time", json_string(ts));
	json_object_set_new(sum, "duration", json_real(finished - r->started));
	json_object_set_new(sum, "attempts", json_integer(r->attempt));
	json_object_set_new(sum, "counts", r->summary ? json_incref(json_object_get(r->summary, "counts")) : json_object());
	json_object_set_new(sum, "failed_nodes",
			    r->summary ? json_incref(json_object_get(r->summary, "failed_nodes")) : json_array());
	if (!ok && !json_array_size(json_object_get(sum, "failed_nodes")) && r->last_error[0])
		json_object_set_new(sum, "error", json_string(r->last_error));
	if (p->report) {
		struct buf link = BUF_INIT;
		buf_printf(&link, "%s/%s/report.html", p->report, r->invocation_id);
		json_object_set_new(sum, "report_url", json_string(link.s));
		buf_release(&link);
	}
	for (i = 0; i < r->sc->nnotify; i++) {
		const struct notifier *n = r->sc->notify[i];
		struct sluice_err err = SLUICE_ERR_INIT;
		if (!notify_wanted(n, ok, was_failing))
			continue;
		int rc = notify_send(p, n, sum, &err);
		if (rc < 0)
			ui_schedule(sched_now(), "notify", r->sc->name, "failed: %s (the run's result stands)", err.msg);
		else
			ui_schedule(sched_now(), "notify", r->sc->name, rc ? "'%s' has no webhook set: not sent" : "sent to '%s'",
				    n->name);
	}
	json_decref(sum);
}

/* The run is over: artifacts, state record, notifications. */
static void end_run(struct sched *S, struct run *r, const char *status)
{
	struct arena a = ARENA_INIT;
	struct val prev = load_record(S, r->sc->name, &a);
	int was_failing = !strcmp(val_get_str(&prev, "status", ""), "failure");
	double finished = sched_now();
	int ok = !strcmp(status, "success");

	record_attempts(S, r);
	ui_schedule(finished, "done", r->sc->name, "%s after %d attempt%s in %.1fs", status, r->attempt,
		    r->attempt == 1 ? "" : "s", finished - r->started);
	/* A skipped run changes nothing: the last result stays the last one that ran. */
	if (strcmp(status, "skipped"))
		store_record(S, r, status, finished);
	if (ok || !strcmp(status, "failure"))
		notify_all(S, r, ok, was_failing, finished);
	arena_release(&a);
}

/* The child exited: decide what the attempt was and what comes next. 1 while the run goes on. */
static int attempt_over(struct sched *S, struct run *r, int wstatus)
{
	int failed = 0, transient = 0, have;
	const char *status;
	json_t *a;

	pump(r, 1);
	relay_close(r);
	r->pid = 0;
	r->exit_code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
	have = read_results(S, r, &failed, &transient) == 0;
	if (!have)
		/* No results: it stopped before running nodes. Exit 3 is a connection error. */
		transient = r->exit_code == 3;
	if (r->exit_code == 0)
		status = "success";
	else if (r->drained || got_term)
		status = "cancelled";
	else if (!have && strstr(r->last_error, "state is locked"))
		status = "locked";
	else
		status = "error";
	a = json_pack("{s:i, s:s, s:s, s:i, s:f}", "attempt", r->attempt, "invocation_id", r->invocation_id,
		      "status", status, "exit_code", r->exit_code, "duration", sched_now() - r->attempt_started);
	if (!strcmp(status, "error")) {
		json_t *nodes = r->summary && have ? json_object_get(r->summary, "failed_nodes") : NULL;
		const char *e = json_array_size(nodes) ? json_string_value(json_object_get(json_array_get(nodes, 0), "error"))
						       : r->last_error;
		json_object_set_new(a, "error", json_string(e ? e : ""));
		json_object_set_new(a, "transient", json_boolean(transient));
	}
	json_array_append_new(r->attempts, a);

	if (!strcmp(status, "success")) {
		end_run(S, r, "success");
		return 0;
	}
	if (!strcmp(status, "cancelled")) {
		end_run(S, r, "cancelled");
		return 0;
	}
	if (!strcmp(status, "locked")) {
		ui_schedule(sched_now(), "skip", r->sc->name, "another run holds the state lock: %s", r->last_error);
		end_run(S, r, "skipped");
		return 0;
	}
	if (transient && r->attempt <= r->sc->retries) {
		double wait = retry_backoff(r->sc->retry_delay, r->attempt + 1);
		r->retry_at = sched_now() + wait;
		ui_schedule(sched_now(), "retry", r->sc->name, "attempt %d failed with a transient error; attempt %d in %.0fs: %s",
			    r->attempt, r->attempt + 1, wait,
			    json_string_value(json_object_get(a, "error")));
		return 1;
	}
	if (transient)
		ui_schedule(sched_now(), "fail", r->sc->name, "attempt %d failed with a transient error, no retries left",
			    r->attempt);
	else
		ui_schedule(sched_now(), "fail", r->sc->name, "attempt %d failed; not retried (not a transient error)",
			    r->attempt);
	end_run(S, r, "failure");
	return 0;
}

static int start_attempt(struct sched *S, struct run *r)
{
	struct sluice_err err = SLUICE_ERR_INIT;

	r->attempt++;
	r->retry_at = 0;
	if (spawn_attempt(S, r, &err)) {
		ui_error("schedule %s: %s", r->sc->name, err.msg);
		json_array_append_new(r->attempts, json_pack("{s:i, s:s, s:s}", "attempt", r->attempt, "status", "error",
							     "error", err.msg));
		end_run(S, r, "failure");
		return 0;
	}
	ui_schedule(sched_now(), "start", r->sc->name, "attempt %d of %d: sluice %s%s%s (run %s)", r->attempt,
		    r->sc->retries + 1, r->sc->command, r->sc->select ? " -s " : "", r->sc->select ? r->sc->select : "",
		    r->invocation_id);
	return 1;
}

static void run_begin(struct sched *S, struct run *r, const struct schedule *sc, double fire)
{
	char when[32];

	memset(r, 0, sizeof(*r));
	r->sc = sc;
	r->fire = fire;
	r->started = sched_now();
	r->io[0].fd = r->io[1].fd = -1;
	r->attempts = json_array();
	iso_utc(fire, when);
	ui_schedule(r->started, "trigger", sc->name, "trigger time %s", when);
	start_attempt(S, r);
}

static void run_release(struct run *r)
{
	json_decref(r->attempts);
	json_decref(r->summary);
	relay_close(r);
	memset(r, 0, sizeof(*r));
	r->io[0].fd = r->io[1].fd = -1;
}

static int run_active(const struct run *r)
{
	return r->sc != NULL;
}

/*
 * Advance a run: wait up to ms for its child's output, reap it, start a
 * retry whose time has come, pass on a stop. 1 while it goes on.
 */
static int run_step(struct sched *S, struct run *r, int ms)
{
	struct pollfd pfd[2] = { { r->io[0].fd, POLLIN, 0 }, { r->io[1].fd, POLLIN, 0 } };
	int wstatus;
	pid_t got;

	if (got_term && r->pid && !r->drained) {
		ui_schedule(sched_now(), "stop", r->sc->name, "letting running nodes finish (up to %.0fs), starting nothing new",
			    S->grace);
		kill(r->pid, SIGUSR1);
		r->drained = 1;
		r->stop_deadline = clock_monotonic() + S->grace;
	}
	if (r->drained && r->pid && clock_monotonic() > r->stop_deadline) {
		if (!r->cancel_sent) {
			ui_schedule(sched_now(), "stop", r->sc->name, "grace period over: cancelling the running nodes");
			kill(r->pid, SIGTERM);
			r->cancel_sent = 1;
			r->stop_deadline = clock_monotonic() + 60;
		} else {
			kill(r->pid, SIGKILL);
		}
	}
	if (!r->pid) {
		if (got_term) {
			ui_schedule(sched_now(), "stop", r->sc->name, "stopped while waiting to retry");
			end_run(S, r, "cancelled");
			return 0;
		}
		if (sched_now() >= r->retry_at)
			return start_attempt(S, r);
		poll(NULL, 0, ms);
		return 1;
	}
	poll(pfd, 2, ms);
	pump(r, 0);
	got = waitpid(r->pid, &wstatus, WNOHANG);
	if (got == r->pid)
		return attempt_over(S, r, wstatus);
	return 1;
}

/* ---- the commands ------------------------------------------------------------ */

struct slot {
	double next;               /* next trigger, scheduler clock */
	double catchup;            /* > 0: a missed trigger to run once */
};

#define MISSED_COUNTED 1000

/*
 * The latest trigger time after last and not after now, or 0; *n: how
 * many there were, counted up to MISSED_COUNTED (an every-minute
 * schedule down for a month is not walked minute by minute).
 */
static time_t latest_missed(const struct schedule *sc, time_t last, time_t now, int *n)
{
	static const time_t windows[] = { 120, 3600, 86400, 32 * 86400, 366 * 86400, 8 * 366 * 86400 };
	time_t k = last, missed = 0;
	size_t w;

	for (*n = 0; *n < MISSED_COUNTED && !cron_next(&sc->cron, sc->timezone, k, &k) && k <= now; ++*n)
		missed = k;
	if (*n < MISSED_COUNTED)
		return missed;
	/* Many: look back from now in growing windows for the latest. */
	for (w = 0; w < sizeof(windows) / sizeof(windows[0]); w++) {
		time_t from = now - windows[w] > missed ? now - windows[w] : missed;
		if (cron_next(&sc->cron, sc->timezone, from, &k) || k > now)
			continue;
		do
			missed = k;
		while (!cron_next(&sc->cron, sc->timezone, k, &k) && k <= now);
		break;
	}
	return missed;
}

static void plan_slots(struct sched *S, struct slot *slots, int catch_up)
{
	const struct project *p = &S->s->project;
	double now = sched_now();
	size_t i;

	for (i = 0; i < p->nschedules; i++) {
		const struct schedule *sc = &p->schedules[i];
		time_t t;
		slots[i].next = cron_next(&sc->cron, sc->timezone, (time_t)now, &t) ? -1 : (double)t;
		slots[i].catchup = 0;
		if (catch_up) {
			struct arena a = ARENA_INIT;
			struct val rec = load_record(S, sc->name, &a);
			const struct val *last = val_get(&rec, "fire_time");
			int n = 0;
			time_t missed = last && last->kind == V_NUM ? latest_missed(sc, (time_t)last->u.num, (time_t)now, &n) : 0;
			if (missed) {
				char when[32];
				iso_utc((double)missed, when);
				ui_schedule(now, "catch-up", sc->name, "missed %s%d trigger%s while down, the last at %s: running once",
					    n >= MISSED_COUNTED ? "at least " : "", n, n == 1 ? "" : "s", when);
				slots[i].catchup = (double)missed;
			}
			arena_release(&a);
		}
	}
}

static int reload(struct sched *S, struct slot **slots)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct session *fresh = xcalloc(1, sizeof(*fresh));

	if (session_open(fresh, S->cli, &err)) {
		session_close(fresh);
		free(fresh);
		ui_schedule(sched_now(), "reload", NULL, "failed, keeping the schedules loaded before: %s", err.msg);
		return -1;
	}
	session_close(S->s);
	free(S->s);
	S->s = fresh;
	free(*slots);
	*slots = xcalloc(S->s->project.nschedules + 1, sizeof(**slots));
	plan_slots(S, *slots, 0);
	ui_schedule(sched_now(), "reload", NULL, "%zu schedule%s loaded", S->s->project.nschedules,
		    S->s->project.nschedules == 1 ? "" : "s");
	return 0;
}

static void log_next(const struct schedule *sc, double next)
{
	char utc[32], local[64];

	if (next < 0) {
		ui_schedule(sched_now(), "next", sc->name, "never fires again");
		return;
	}
	iso_utc(next, utc);
	cron_format_local((time_t)next, sc->timezone, local, sizeof(local));
	ui_schedule(sched_now(), "next", sc->name, "%s (%s)", utc, local);
}

static int schedule_loop(struct sched *S)
{
	struct slot *slots = xcalloc(S->s->project.nschedules + 1, sizeof(*slots));
	struct run r;
	size_t i;
	int pending_reload = 0;

	memset(&r, 0, sizeof(r));
	r.io[0].fd = r.io[1].fd = -1;
	install_signals();
	ui_schedule(sched_now(), "begin", NULL, "project %s, target %s, %zu schedule%s, as %s", S->s->project.name,
		    S->s->project.target.name, S->s->project.nschedules, S->s->project.nschedules == 1 ? "" : "s",
		    S->s->user);
	plan_slots(S, slots, 1);
	for (i = 0; i < S->s->project.nschedules; i++)
		log_next(&S->s->project.schedules[i], slots[i].next);
	for (;;) {
		double now;
		if (run_active(&r)) {
			if (!run_step(S, &r, 100))
				run_release(&r);
		} else {
			if (got_term)
				break;
			poll(NULL, 0, 50);
		}
		if (got_hup) {
			got_hup = 0;
			pending_reload = 1;
			if (run_active(&r))
				ui_schedule(sched_now(), "reload", NULL, "after the run of %s", r.sc->name);
		}
		if (pending_reload && !run_active(&r)) {
			pending_reload = 0;
			reload(S, &slots);
			for (i = 0; i < S->s->project.nschedules; i++)
				log_next(&S->s->project.schedules[i], slots[i].next);
		}
		if (got_term)
			continue;
		now = sched_now();
		for (i = 0; i < S->s->project.nschedules; i++) {
			const struct schedule *sc = &S->s->project.schedules[i];
			struct slot *sl = &slots[i];
			time_t t;
			if (sl->catchup > 0 && !run_active(&r)) {
				run_begin(S, &r, sc, sl->catchup);
				sl->catchup = 0;
			}
			if (sl->next < 0 || now < sl->next)
				continue;
			if (run_active(&r)) {
				char when[32];
				iso_utc(sl->next, when);
				ui_schedule(now, "skip", sc->name, "trigger time %s came during a run of %s: skipped", when,
					    r.sc->name);
			} else {
				run_begin(S, &r, sc, sl->next);
			}
			/* From now, not from the trigger: a late scheduler never bursts. */
			sl->next = cron_next(&sc->cron, sc->timezone, (time_t)now, &t) ? -1 : (double)t;
			log_next(sc, sl->next);
		}
	}
	ui_schedule(sched_now(), "end", NULL, "stopped by %s", got_term == SIGINT ? "SIGINT" : "SIGTERM");
	free(slots);
	return 0;
}

static int schedule_once(struct sched *S, const char *name)
{
	const struct schedule *sc = schedule_find(S->s->project.schedules, S->s->project.nschedules, name);
	struct run r;
	int code;

	if (!sc) {
		struct sluice_err err = SLUICE_ERR_INIT;
		err_set(&err, SLUICE_EUSAGE, "no schedule '%s' in sluice.yml (see sluice schedule --list)", name);
		return cmd_fail(&err);
	}
	install_signals();
	run_begin(S, &r, sc, sched_now());
	while (run_step(S, &r, 100))
		;
	code = r.exit_code;
	if (json_array_size(r.attempts) && !strcmp(json_string_value(json_object_get(
			json_array_get(r.attempts, json_array_size(r.attempts) - 1), "status")), "cancelled"))
		code = 0;
	run_release(&r);
	return code;
}

static int schedule_list(struct sched *S)
{
	const struct project *p = &S->s->project;
	double now = sched_now();
	size_t i;
	int k;

	if (!p->nschedules)
		printf("no schedules in %s/sluice.yml\n", p->dir);
	for (i = 0; i < p->nschedules; i++) {
		const struct schedule *sc = &p->schedules[i];
		struct arena a = ARENA_INIT;
		struct val rec = load_record(S, sc->name, &a);
		time_t t = (time_t)now;
		char utc[32], local[64];

		printf("%s: \"%s\" %s, sluice %s%s%s, retries %d\n", sc->name, sc->cron_text, sc->timezone, sc->command,
		       sc->select ? " -s " : "", sc->select ? sc->select : "", sc->retries);
		for (k = 0; k < 3 && !cron_next(&sc->cron, sc->timezone, t, &t); k++) {
			iso_utc((double)t, utc);
			cron_format_local(t, sc->timezone, local, sizeof(local));
			printf("  next: %s (%s)\n", local, utc);
		}
		if (!k)
			printf("  next: never\n");
		if (rec.kind == V_DICT)
			printf("  last: %s, trigger %s, finished %s, %lld attempt%s, run %s\n",
			       val_get_str(&rec, "status", "?"), val_get_str(&rec, "fire_at", "?"),
			       val_get_str(&rec, "finished_at", "?"), val_get_int(&rec, "attempts", 1),
			       val_get_int(&rec, "attempts", 1) == 1 ? "" : "s", val_get_str(&rec, "invocation_id", "?"));
		else
			printf("  last: never ran\n");
		arena_release(&a);
	}
	return ui_flush() < 0 ? 1 : 0;
}

/* The flags a service needs to find the same project and target. */
static void common_flags(const struct sched *S, struct buf *b)
{
	buf_printf(b, " --project-dir %s", S->s->project.dir);
	if (S->cli->profiles_dir)
		buf_printf(b, " --profiles-dir %s", S->cli->profiles_dir);
	if (S->cli->target)
		buf_printf(b, " --target %s", S->cli->target);
}

static int print_systemd(struct sched *S)
{
	struct buf flags = BUF_INIT;

	common_flags(S, &flags);
	printf("# sluice schedule --print-systemd: save as /etc/systemd/system/sluice-%s.service,\n"
	       "# then: systemctl daemon-reload && systemctl enable --now sluice-%s\n"
	       "[Unit]\n"
	       "Description=sluice schedules of project %s\n"
	       "Wants=network-online.target\n"
	       "After=network-online.target\n"
	       "\n"
	       "[Service]\n"
	       "Type=simple\n"
	       "User=%s\n"
	       "WorkingDirectory=%s\n"
	       "Environment=SLUICE_USER=%s\n"
	       "# Secrets (passwords, webhook URLs) in a file only root and the user read:\n"
	       "EnvironmentFile=-/etc/sluice/%s.env\n"
	       "ExecStart=%s schedule%s --grace %.0f\n"
	       "ExecReload=/bin/kill -HUP $MAINPID\n"
	       "# SIGTERM to sluice only: it lets running nodes finish, then cancels them.\n"
	       "KillMode=mixed\n"
	       "TimeoutStopSec=%.0f\n"
	       "Restart=on-failure\n"
	       "RestartSec=10\n"
	       "\n"
	       "[Install]\n"
	       "WantedBy=multi-user.target\n",
	       S->s->project.name, S->s->project.name, S->s->project.name, S->s->user, S->s->project.dir, S->s->user,
	       S->s->project.name, S->self, flags.s, S->grace, S->grace + 90);
	buf_release(&flags);
	return ui_flush() < 0 ? 1 : 0;
}

static int print_crontab(struct sched *S)
{
	const struct project *p = &S->s->project;
	struct buf flags = BUF_INIT;
	size_t i;

	common_flags(S, &flags);
	printf("# sluice schedule --print-crontab: for `crontab -e` as %s. Each line runs one schedule\n"
	       "# with --once; sluice takes the state lock, retries and notifies as the scheduler does.\n"
	       "# CRON_TZ is read by cronie and systemd-cron; Debian's cron reads times in the system's zone.\n"
	       "SLUICE_USER=%s\n",
	       S->s->user, S->s->user);
	for (i = 0; i < p->nschedules; i++)
		printf("CRON_TZ=%s\n%s mkdir -p %s/logs && %s schedule%s --once %s >>%s/logs/schedule-%s.log 2>&1\n",
		       p->schedules[i].timezone, p->schedules[i].cron_text, p->target_path, S->self, flags.s,
		       p->schedules[i].name, p->target_path, p->schedules[i].name);
	buf_release(&flags);
	return ui_flush() < 0 ? 1 : 0;
}

static const char *const schedule_flags[] = {
	"--once", "--list", "--print-systemd", "--print-crontab", "--grace", NULL
};

int cmd_schedule(int argc, char **argv)
{
	struct cli cli = { 0 };
	struct session *s = xcalloc(1, sizeof(*s));
	struct sched S = { 0 };
	struct sluice_err err = SLUICE_ERR_INIT;
	const char *once = NULL, *mode = NULL;
	char self[4096];
	ssize_t n;
	int code, i;

	if ((code = cmd_open(argc, argv, schedule_flags, &cli, s))) {
		free(s);
		return code;
	}
	S.cli = &cli;
	S.s = s;
	S.grace = 30;
	S.log_format = cli.log_format ? cli.log_format : "text";
	for (i = 0; i < cli.nargs && !err.code; i++) {
		const char *a = cli.args[i], *eq = strchr(a, '=');
		if (!strncmp(a, "--once", 6)) {
			once = eq ? eq + 1 : i + 1 < cli.nargs ? cli.args[++i] : NULL;
			if (!once || !*once)
				err_set(&err, SLUICE_EUSAGE, "--once needs a schedule name");
		} else if (!strncmp(a, "--grace", 7)) {
			const char *v = eq ? eq + 1 : i + 1 < cli.nargs ? cli.args[++i] : "";
			if (val_parse_duration(v, &S.grace))
				err_set(&err, SLUICE_EUSAGE, "--grace takes a duration such as 30 or 2m, not '%s'", v);
		} else if (!strcmp(a, "--list") || !strcmp(a, "--print-systemd") || !strcmp(a, "--print-crontab")) {
			if (mode)
				err_set(&err, SLUICE_EUSAGE, "%s and %s cannot be used together", mode, a);
			mode = a;
		} else {
			err_set(&err, SLUICE_EUSAGE, "schedule takes no arguments ('%s'; did you mean --once %s?)", a, a);
		}
	}
	if (!err.code && (cli.select.len || cli.exclude.len))
		err_set(&err, SLUICE_EUSAGE,
			"schedule takes each schedule's selection from sluice.yml (select:, exclude:), not -s or --exclude");
	if (!err.code && once && mode)
		err_set(&err, SLUICE_EUSAGE, "--once and %s cannot be used together", mode);
	if (!err.code && (n = readlink("/proc/self/exe", self, sizeof(self) - 1)) > 0) {
		self[n] = '\0';
		S.self = self;
	} else if (!err.code) {
		err_set(&err, SLUICE_EIO, "cannot find the sluice binary (/proc/self/exe): %s", strerror(errno));
	}
	if (!err.code)
		sched_clock_init(&err);
	if (err.code) {
		code = cmd_fail(&err);
	} else if (mode && !strcmp(mode, "--list")) {
		code = schedule_list(&S);
	} else if (mode && !strcmp(mode, "--print-systemd")) {
		code = print_systemd(&S);
	} else if (mode) {
		code = print_crontab(&S);
	} else {
		code = once ? schedule_once(&S, once) : schedule_loop(&S);
	}
	cmd_close(&cli, S.s);
	free(S.s);
	return code;
}
