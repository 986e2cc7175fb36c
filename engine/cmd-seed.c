/*
 * cmd-seed.c: `sluice seed`: load the selected seeds (CSV files under
 * seed-paths) into tables, as dbt seed does; an unchanged seed is reused,
 * --full-refresh reloads it.
 */
#include "build.h"
#include "cmd.h"

int cmd_seed(int argc, char **argv)
{
	return cmd_build_like(argc, argv, "seed", BUILD_SEEDS);
}
