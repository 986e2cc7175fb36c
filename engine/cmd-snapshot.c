/*
 * cmd-snapshot.c: `sluice snapshot`: run the selected snapshots (SCD type
 * 2 tables under snapshot-paths), as dbt snapshot does.
 */
#include "build.h"
#include "cmd.h"

int cmd_snapshot(int argc, char **argv)
{
	return cmd_build_like(argc, argv, "snapshot", BUILD_SNAPSHOTS);
}
