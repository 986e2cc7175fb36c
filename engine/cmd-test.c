/*
 * cmd-test.c: `sluice test`: run the selected data tests (a test is
 * selected with what it tests) against what is built now; builds nothing.
 */
#include "build.h"
#include "cmd.h"

int cmd_test(int argc, char **argv)
{
	return cmd_build_like(argc, argv, "test", BUILD_TESTS);
}
