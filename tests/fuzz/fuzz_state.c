/*
 * fuzz_state.c: the local state backend's readers (engine/state-local.c
 * over state.c's snapshot parser): the snapshot, the journal of puts
 * since it (whose torn last line taking the lock cuts off) and the run
 * history. The input is the three files cut at lines "%%" (fuzz.h),
 * written under a scratch project's .sluice/state/; the state is then
 * opened, locked, loaded and its history read, as a run does.
 */
#include <string.h>
#include "../../engine/state.h"
#include "fuzz.h"

static const char *const names[] = {
	".sluice/state/dev.json", ".sluice/state/dev.journal", ".sluice/state/dev.history",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct state_opts o = { 0 };
	struct state *st = NULL;
	struct val records, runs;
	const char *part[3];
	size_t len[3], i;
	struct arena a;

	fuzz_split(data, size, part, len, 3);
	for (i = 0; i < 3; i++)
		fuzz_write(names[i], part[i], len[i]);
	o.spec = "local";
	o.project_dir = fuzz_dir();
	o.project = "fuzz";
	o.target = "dev";
	o.user = "fuzzer";
	o.invocation_id = "00000000-0000-0000-0000-000000000000";
	arena_init(&a);
	if (state_open(&st, &o, &err) == 0) {
		state_history_load(st, 20, &a, &runs, &err);
		if (state_lock(st, -1, &err) == 0)
			state_load(st, &a, &records, &err);
		state_close(st);
	}
	arena_release(&a);
	return 0;
}
