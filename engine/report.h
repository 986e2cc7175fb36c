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
