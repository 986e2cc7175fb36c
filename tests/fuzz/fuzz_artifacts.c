/*
 * fuzz_artifacts.c: the readers of target/'s JSON artifacts
 * (engine/report.c: run_results.json, manifest.json, history.json,
 * which `sluice report` turns into report.html). The input is the three
 * files cut at lines "%%" (fuzz.h), written to a scratch target
 * directory, from which the report is then written.
 */
#include "../../engine/report.h"
#include "fuzz.h"

static const char *const names[] = { "target/run_results.json", "target/manifest.json", "target/history.json" };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	const char *part[3];
	size_t len[3], i;
	char dir[512];

	fuzz_split(data, size, part, len, 3);
	for (i = 0; i < 3; i++)
		fuzz_write(names[i], part[i], len[i]);
	snprintf(dir, sizeof(dir), "%s/target", fuzz_dir());
	report_write(dir, &err);
	return 0;
}
