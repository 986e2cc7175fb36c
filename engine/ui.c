/*
 * ui.c: progress lines, summaries and messages, as text or JSON lines.
 */
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "ui.h"
#include "util/buf.h"
#include "util/err.h"

static pthread_mutex_t ui_lock = PTHREAD_MUTEX_INITIALIZER;
static int json_mode, color;

void ui_init(const char *log_format)
{
	const char *nc = getenv("NO_COLOR");

	json_mode = log_format && !strcmp(log_format, "json");
	color = !json_mode && isatty(STDOUT_FILENO) && !(nc && *nc) && getenv("TERM") &&
		strcmp(getenv("TERM"), "dumb");
}

int ui_json(void)
{
	return json_mode;
}

static const char *paint(const char *status)
{
	if (!color)
		return "";
	if (!strcmp(status, "OK") || !strcmp(status, "PASS"))
		return "\033[32m";
	if (!strcmp(status, "ERROR") || !strncmp(status, "FAIL", 4))
		return "\033[31m";
	if (!strcmp(status, "SKIP") || !strncmp(status, "WARN", 4))
		return "\033[33m";
	return "\033[36m";
}

static void emit_json(json_t *obj)
{
	char *s = json_dumps(obj, JSON_COMPACT);

	if (s) {
		fputs(s, stdout);
		fputc('\n', stdout);
		free(s);
	}
	fflush(stdout);
	json_decref(obj);
}

static json_t *event(const char *name)
{
	json_t *o = json_object();
	char ts[64];
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	snprintf(ts, sizeof(ts), "%lld.%06ld", (long long)t.tv_sec, t.tv_nsec / 1000);
	json_object_set_new(o, "ts", json_string(ts));
	json_object_set_new(o, "event", json_string(name));
	return o;
}

/* The fields both node events carry. */
static json_t *node_event(const char *name, int seq, int total, const char *kind, const char *relation,
			  const char *unique_id)
{
	json_t *o = event(name);

	json_object_set_new(o, "seq", json_integer(seq));
	json_object_set_new(o, "total", json_integer(total));
	json_object_set_new(o, "unique_id", json_string(unique_id));
	json_object_set_new(o, "materialized", json_string(kind));
	json_object_set_new(o, "relation", json_string(relation));
	return o;
}

void ui_node_start(int seq, int total, const char *kind, const char *relation, const char *unique_id)
{
	pthread_mutex_lock(&ui_lock);
	if (json_mode) {
		emit_json(node_event("node_start", seq, total, kind, relation, unique_id));
	} else {
		printf("[%d/%d] START %s %s\n", seq, total, kind, relation);
		fflush(stdout);
	}
	pthread_mutex_unlock(&ui_lock);
}

void ui_node_done(int seq, int total, const char *status, const char *kind, const char *relation,
		  const char *unique_id, double elapsed, long long rows, const char *message)
{
	struct buf line = BUF_INIT, counter = BUF_INIT;

	pthread_mutex_lock(&ui_lock);
	if (json_mode) {
		json_t *o = node_event("node_done", seq, total, kind, relation, unique_id);
		json_object_set_new(o, "status", json_string(status));
		json_object_set_new(o, "execution_time", json_real(elapsed));
		if (rows >= 0)
			json_object_set_new(o, "rows", json_integer(rows));
		if (message && *message)
			json_object_set_new(o, "message", json_string(message));
		emit_json(o);
	} else {
		if (seq)
			buf_printf(&counter, "[%d/%d]", seq, total);
		else
			buf_printf(&counter, "[-/%d]", total);
		buf_printf(&line, "%s %s%s%s %s %s ", counter.s, paint(status), status, color ? "\033[0m" : "",
			   kind, relation);
		while (line.len < 64 + (color ? 9 : 0))
			buf_addc(&line, '.');
		if (!strcmp(status, "SKIP"))
			buf_printf(&line, " %s", message ? message : "skipped");
		else {
			buf_printf(&line, " %.2fs", elapsed);
			if (rows >= 0)
				buf_printf(&line, " %lld row%s", rows, rows == 1 ? "" : "s");
			if (message && *message && !strcmp(status, "OK"))
				buf_printf(&line, " (%s)", message);
			else if (message && *message)
				buf_printf(&line, "\n    %s", message);
		}
		puts(line.s);
		fflush(stdout);
	}
	pthread_mutex_unlock(&ui_lock);
	buf_release(&line);
	buf_release(&counter);
}

void ui_summary(int ok, int error, int skipped, int reused, double elapsed)
{
	pthread_mutex_lock(&ui_lock);
	if (json_mode) {
		json_t *o = event("summary");
		json_object_set_new(o, "success", json_integer(ok));
		json_object_set_new(o, "error", json_integer(error));
		json_object_set_new(o, "skipped", json_integer(skipped));
		json_object_set_new(o, "reused", json_integer(reused));
		json_object_set_new(o, "elapsed_time", json_real(elapsed));
		emit_json(o);
	} else {
		printf("Done in %.2fs: %d ok, %d error, %d skipped, %d reused\n", elapsed, ok, error, skipped, reused);
		fflush(stdout);
	}
	pthread_mutex_unlock(&ui_lock);
}

void ui_test_done(int seq, int total, const char *status, long long failures, const char *name,
		  const char *unique_id, double elapsed, const char *const *lines, size_t nlines)
{
	int counted = !strcmp(status, "WARN") || !strcmp(status, "FAIL");
	struct buf line = BUF_INIT, word = BUF_INIT;
	size_t i;

	pthread_mutex_lock(&ui_lock);
	if (json_mode) {
		json_t *o = node_event("test_done", seq, total, "test", name, unique_id), *a = json_array();
		char *lower = strdup(status), *p;
		for (p = lower; p && *p; p++)
			*p = (char)(*p - 'A' + 'a');
		json_object_set_new(o, "status", json_string(lower ? lower : status));
		free(lower);
		json_object_set_new(o, "execution_time", json_real(elapsed));
		if (counted)
			json_object_set_new(o, "failures", json_integer(failures));
		for (i = 0; i < nlines; i++)
			json_array_append_new(a, json_string(lines[i]));
		json_object_set_new(o, "lines", a);
		emit_json(o);
	} else {
		if (seq)
			buf_printf(&line, "[%d/%d] ", seq, total);
		else
			buf_printf(&line, "[-/%d] ", total);
		buf_puts(&word, status);
		if (counted)
			buf_printf(&word, " %lld", failures);
		buf_printf(&line, "%s%s%s test %s ", paint(status), word.s, color ? "\033[0m" : "", name);
		while (line.len < 64 + (color ? 9 : 0))
			buf_addc(&line, '.');
		if (!strcmp(status, "SKIP") && nlines) {
			buf_printf(&line, " %s", lines[0]);   /* one line, as for models */
			nlines = 0;
		} else if (strcmp(status, "SKIP") && strcmp(status, "REUSED")) {
			buf_printf(&line, " %.2fs", elapsed);
		} else if (!strcmp(status, "REUSED")) {
			buf_puts(&line, " passed before, inputs unchanged");
		}
		for (i = 0; i < nlines; i++)
			buf_printf(&line, "\n    %s", lines[i]);
		puts(line.s);
		fflush(stdout);
	}
	pthread_mutex_unlock(&ui_lock);
	buf_release(&line);
	buf_release(&word);
}

void ui_test_summary(int pass, int warn, int fail, int error, int skipped, int reused, double elapsed)
{
	pthread_mutex_lock(&ui_lock);
	if (json_mode) {
		json_t *o = event("test_summary");
		json_object_set_new(o, "pass", json_integer(pass));
		json_object_set_new(o, "warn", json_integer(warn));
		json_object_set_new(o, "fail", json_integer(fail));
		json_object_set_new(o, "error", json_integer(error));
		json_object_set_new(o, "skipped", json_integer(skipped));
		json_object_set_new(o, "reused", json_integer(reused));
		if (elapsed >= 0)
			json_object_set_new(o, "elapsed_time", json_real(elapsed));
		emit_json(o);
	} else {
		if (elapsed >= 0)
			printf("Done in %.2fs: ", elapsed);
		printf("%s%d pass, %d warn, %d fail, %d error, %d skipped, %d reused\n", elapsed >= 0 ? "tests " : "Tests: ",
		       pass, warn, fail, error, skipped, reused);
		fflush(stdout);
	}
	pthread_mutex_unlock(&ui_lock);
}

static void message(const char *level, FILE *f, const char *fmt, va_list ap)
{
	struct buf b = BUF_INIT;

	buf_vprintf(&b, fmt, ap);
	pthread_mutex_lock(&ui_lock);
	if (json_mode) {
		json_t *o = event(level);
		json_object_set_new(o, "message", json_string(b.s));
		emit_json(o);
	} else if (!strcmp(level, "info")) {
		fprintf(f, "%s\n", b.s);
		fflush(f);
	} else {
		fprintf(f, "sluice: %s%s\n", strcmp(level, "warning") ? "error: " : "warning: ", b.s);
		fflush(f);
	}
	pthread_mutex_unlock(&ui_lock);
	buf_release(&b);
}

void ui_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	message("info", stdout, fmt, ap);
	va_end(ap);
}

void ui_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	message("warning", stderr, fmt, ap);
	va_end(ap);
}

void ui_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	message("error", stderr, fmt, ap);
	va_end(ap);
}

void ui_list(const struct err_list *l, int warnings)
{
	void (*say)(const char *, ...) = warnings ? ui_warn : ui_error;
	size_t i, more = l->total - l->n;

	for (i = 0; i < l->n; i++)
		say("%s", l->msg[i]);
	if (more)
		say("... and %zu more %s%s", more, warnings ? "warning" : "error", more == 1 ? "" : "s");
}

int ui_flush(void)
{
	if (fflush(stdout) != 0 || ferror(stdout))
		return -1;
	return 0;
}

void ui_schedule(double at, const char *event_name, const char *schedule, const char *fmt, ...)
{
	char msg[2048], ts[32], base[32];
	time_t secs = (time_t)at;
	struct tm tm;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	gmtime_r(&secs, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%SZ", &tm);
	pthread_mutex_lock(&ui_lock);
	if (json_mode) {
		json_t *o = json_object();
		snprintf(ts, sizeof(ts), "%.3f", at);
		json_object_set_new(o, "ts", json_string(ts));
		json_object_set_new(o, "time", json_string(base));
		json_object_set_new(o, "event", json_string(event_name));
		if (schedule)
			json_object_set_new(o, "schedule", json_string(schedule));
		json_object_set_new(o, "message", json_string(msg));
		emit_json(o);
	} else {
		printf("%s %-9s %s%s%s\n", base, event_name, schedule ? schedule : "", schedule ? ": " : "", msg);
		fflush(stdout);
	}
	pthread_mutex_unlock(&ui_lock);
}
