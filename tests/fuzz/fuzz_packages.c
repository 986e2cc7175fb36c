/*
 * fuzz_packages.c: packages.yml and package-lock.yml as sluice deps reads
 * them (engine/deps.c, nothing fetched), and the versions and ranges of
 * engine/semver.c. The input is a packages.yml, then optionally a line
 * "%%" and a version, then "%%" and a range (fuzz.h). A version that
 * parses must print and parse back equal to itself, and compare against
 * the range's versions the same way from both sides.
 */
#include <stdlib.h>
#include <string.h>
#include "../../engine/deps.h"
#include "../../engine/semver.h"
#include "fuzz.h"

static void check_versions(const char *vtext, const char *rtext)
{
	struct semver v, back;
	struct semver_req r[16];
	char out[256];
	int n, i;

	if (semver_parse(vtext, &v))
		return;
	semver_format(&v, out, sizeof(out));
	if (semver_parse(out, &back) || semver_cmp(&v, &back))
		abort();   /* a version must survive printing */
	n = semver_reqs_parse(rtext, r, 16);
	for (i = 0; i < n; i++)
		if (semver_cmp(&v, &r[i].v) != -semver_cmp(&r[i].v, &v))
			abort();   /* the order is antisymmetric */
	if (n > 0) {
		semver_match(r, (size_t)n, &v, 0);
		semver_match(r, (size_t)n, &v, 1);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	char vtext[128], rtext[256];
	const char *part[3];
	size_t len[3], n;

	/* env_var() is rendered: 'x' * 99999 asks for work, as in fuzz_template */
	if (memchr(data, '*', size) && fuzz_big_number(data, size))
		return 0;
	fuzz_split(data, size, part, len, 3);
	deps_parse("packages.yml", part[0], len[0], 0, &n, &err);
	deps_parse("package-lock.yml", part[0], len[0], 1, &n, &err);
	if (len[1] >= sizeof(vtext) || len[2] >= sizeof(rtext))
		return 0;
	memcpy(vtext, part[1], len[1]);
	vtext[len[1]] = '\0';
	memcpy(rtext, part[2], len[2]);
	rtext[len[2]] = '\0';
	check_versions(vtext, rtext);
	return 0;
}
