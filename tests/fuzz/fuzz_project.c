/*
 * fuzz_project.c: the project loader (engine/project.c): sluice.yml,
 * profiles.yml and a property file, with one model for it to describe.
 * The input is the three files cut at lines "%%" (fuzz.h), written to a
 * scratch project directory, then loaded as `sluice` would load it.
 * A part left empty gets a minimal valid file, so that a mutation of one
 * file still reaches the code that reads the others.
 */
#include <string.h>
#include "../../engine/project.h"
#include "fuzz.h"

static const char *const names[] = { "sluice.yml", "profiles.yml", "models/schema.yml" };
static const char *const defaults[] = {
	"name: fuzz\nprofile: fuzz\n",
	"fuzz:\n  target: dev\n  outputs:\n    dev:\n      type: postgres\n      schema: s\n",
	"version: 2\nmodels:\n  - name: m\n",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	const char *part[3];
	size_t len[3], i;
	struct project p;
	struct project_opts o = { 0 };

	fuzz_split(data, size, part, len, 3);
	for (i = 0; i < 3; i++) {
		if (!len[i])
			fuzz_write(names[i], defaults[i], strlen(defaults[i]));
		else
			fuzz_write(names[i], part[i], len[i]);
	}
	fuzz_write("models/m.sql", "select 1", 8);
	o.project_dir = fuzz_dir();
	o.profiles_dir = fuzz_dir();
	memset(&p, 0, sizeof(p));
	project_load(&p, &o, &err);
	project_release(&p);
	return 0;
}
