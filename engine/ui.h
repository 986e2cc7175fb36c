/*
 * ui.h: what a person (or a log collector, with --log-format json) sees.
 * Text lines go to stdout; errors and warnings to stderr. Colour only on a
 * terminal and never with NO_COLOR. Thread-safe: one lock per line.
 */
#ifndef SLUICE_UI_H
#define SLUICE_UI_H

#include <stddef.h>

void ui_init(const char *log_format);
int ui_json(void);

/* "[3/12] START table analytics.orders" */
void ui_node_start(int seq, int total, const char *kind, const char *relation, const char *unique_id);
/*
 * "[3/12] OK table analytics.orders ...... 1.23s 120 rows" (status: OK, ERROR, SKIP, REUSED);
 * message: an error's, or with OK a note said after the rows ("(3 streams)").
 */
void ui_node_done(int seq, int total, const char *status, const char *kind, const char *relation,
		  const char *unique_id, double elapsed, long long rows, const char *message);
void ui_summary(int ok, int error, int skipped, int reused, double elapsed);
/*
 * A data test's line: "[4/12] FAIL 3 test not_null_x ...... 0.02s" and
 * then its first failing rows (lines), indented. status: PASS, WARN,
 * FAIL, ERROR, SKIP, REUSED; failures shown with WARN and FAIL.
 */
void ui_test_done(int seq, int total, const char *status, long long failures, const char *name,
		  const char *unique_id, double elapsed, const char *const *lines, size_t nlines);
/* "Tests: 8 pass, 1 warn, ..."; with elapsed >= 0 it is the run's last line ("Done in ..."). */
void ui_test_summary(int pass, int warn, int fail, int error, int skipped, int reused, double elapsed);
void ui_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void ui_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void ui_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
struct err_list;
/* Each message of l as a warning (or an error), then "... and 12 more warnings" for those not kept. */
void ui_list(const struct err_list *l, int warnings);

/*
 * A scheduler's line (sluice schedule): at is the scheduler's clock (epoch
 * seconds, which a fake clock may drive), event a word such as "trigger",
 * "start", "retry", "done", "skip"; schedule may be NULL. Text:
 * "2026-03-29T01:00:00Z start     nightly: attempt 1 of 3"; JSON: ts, time,
 * event, schedule, message.
 */
void ui_schedule(double at, const char *event, const char *schedule, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Check stdout for write errors (full disk, closed pipe); 0 or -1. */
int ui_flush(void);

#endif
