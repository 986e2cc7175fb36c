#include "build.h"
const struct node_kind kind_snapshot = {
	.name = "snapshot",
	.what = BUILD_SNAPSHOTS,
};
