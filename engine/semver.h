/*
 * semver.h: package versions and version ranges as dbt reads them:
 * "1.3.0" (a leading "v" is allowed, as tags often have one),
 * pre-releases ("1.0.0-b2") sorting before their release, and ranges
 * written as a list of constraints that must all hold (">=1.0.0",
 * "<2.0.0"; one string may hold several, separated by commas). Pure code:
 * no files, no git. Deciding which git tags to look at is deps.c's work.
 */
#ifndef SLUICE_SEMVER_H
#define SLUICE_SEMVER_H

#include <stddef.h>

struct semver {
	long major, minor, patch;
	char pre[64];              /* pre-release without the '-', "" for a release */
};

enum semver_op { SEMVER_EQ, SEMVER_GT, SEMVER_GE, SEMVER_LT, SEMVER_LE };

struct semver_req {
	enum semver_op op;
	struct semver v;
};

/* Parse "1.2.3", "v1.2.3", "1.2.3-rc1", "1.2.3+build" (build ignored): 0, or -1 when it is no version. */
int semver_parse(const char *s, struct semver *v);
/* <0, 0, >0 as a sorts before, with or after b (pre-releases before their release). */
int semver_cmp(const struct semver *a, const struct semver *b);
/*
 * Parse one constraint: an optional operator (=, ==, >, >=, <, <=) and a
 * version. 0, or -1 when malformed.
 */
int semver_req_parse(const char *s, struct semver_req *r);
/*
 * Parse a comma-separated list of constraints into out[], at most cap.
 * Returns how many, or -1 when one is malformed or there are too many.
 */
int semver_reqs_parse(const char *s, struct semver_req *out, size_t cap);
/*
 * Whether v satisfies every constraint. A pre-release satisfies only when
 * prerelease is set, or a constraint names that very pre-release (as
 * "1.0.0-b2" pins it).
 */
int semver_match(const struct semver_req *r, size_t n, const struct semver *v, int prerelease);
/* The version as text, without a "v": "1.3.0", "1.0.0-b2". */
void semver_format(const struct semver *v, char *out, size_t cap);

#endif
