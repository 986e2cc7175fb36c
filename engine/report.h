/*
 * report.h: target/report.html, the page a person opens to see what a run
 * did, and its publication to a directory or an s3:// prefix.
 *
 * The page is made from the artifacts alone (run_results.json,
 * manifest.json, history.json, target/run/, target/logs/), so the end of
 * a run and `sluice report` write the same page. It is one file: the page
 * (engine/report-page.html: CSS, JavaScript, no external URL) with the
 * data embedded as JSON. See docs/report.md.
 *
 * Not for: deciding anything about a run, or writing the artifacts it reads.
 */
#ifndef SLUICE_REPORT_H
#define SLUICE_REPORT_H

#include "json.h"
#include "util/buf.h"
#include "util/err.h"
#include "value.h"

/*
 * Write <target_dir>/report.html from the artifacts there. A missing
 * run_results.json is SLUICE_EUSAGE (nothing ran yet); the other
 * artifacts are optional. Secrets: only what the artifacts hold goes in.
 */
int report_write(const char *target_dir, struct sluice_err *err);

/*
 * The same page from entries handed over as json_load_members would read
 * them from the artifacts (json.h): a run feeds the entries it writes, so
 * it does not read back the files it has just written, and the page is
 * byte for byte the one report_write makes from those files.
 * report_in_manifest takes manifest.json's members, report_in_result
 * run_results.json's (both json_member_fn: the value is stolen, 0
 * returned). report_in_write writes <target_dir>/report.html (it reads
 * history.json, target/run/ and target/logs/ itself); report_in_free
 * accepts NULL.
 */
struct report_in;
struct report_in *report_in_new(const char *target_dir);
int report_in_manifest(void *in, const char *key, const char *item_key, json_t *value, int item);
int report_in_result(void *in, const char *key, const char *item_key, json_t *value, int item);
int report_in_write(struct report_in *in, struct sluice_err *err);
void report_in_free(struct report_in *in);

/*
 * Publish the report of the run in target_dir to dest: "s3://bucket/prefix"
 * or a directory (relative to project_dir). Its report.html,
 * run_results.json and manifest.json go to <dest>/<invocation_id>/, then
 * <dest>/index.json and <dest>/index.html (every run, newest first) are
 * rewritten. s3: the profile's s3 block, or NULL. where receives the
 * published report's location. Errors name the destination, never a
 * credential. May block on the network.
 */
int report_publish(const char *target_dir, const char *dest, const char *project_dir, const struct val *s3,
		   struct buf *where, struct sluice_err *err);

#endif
