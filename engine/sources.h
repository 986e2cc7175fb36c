/*
 * sources.h: the current version of the tables a run reads (declared
 * sources) and of the relations sluice built, so fingerprints can tell
 * what changed. One batched metadata query per connection and method,
 * never one per table.
 *
 * A version is an opaque string; equal strings mean "unchanged". Methods,
 * from a source's `change_detection:` (default per dialect: `stats`):
 *   stats      "stats:<relfilenode>:<n_tup_ins>:<n_tup_upd>:<n_tup_del>:<stats_reset>"
 *              read outside a snapshot (pg_stat_clear_snapshot()). With
 *              `lag_tolerance: <duration>` the counters are read twice that
 *              far apart and the later read is used, so a flush in progress
 *              is seen. On Redshift: "stats:<table id>:<tbl_rows>:<last
 *              insert end>:<last delete end>" (docs/redshift.md).
 *   trigger    "trigger:<counter>" from sluice_meta.source_versions, which
 *              statement-level triggers bump (sources_instrument).
 *   query      `query: <sql returning one value>` -> "query:<value>"
 *   loaded_at_field: <column>  -> "loaded_at:<max(column)>"
 *   always     "always:<invocation id>" (always changed)
 *   never      "never"
 * A table that does not exist has version "missing".
 */
#ifndef SLUICE_SOURCES_H
#define SLUICE_SOURCES_H

#include "session.h"

struct source_versions {
	char **version;        /* per manifest node index: heap string, or NULL when not asked */
	int queries;           /* metadata queries sent (for benchmarks: one per connection and method) */
	size_t n;
};

/*
 * Versions for every node i with want[i] != 0: source nodes by their
 * change_detection; model nodes (relations sluice built) by `stats` on
 * their relation (so a table written or dropped outside sluice is seen).
 * Connection errors: SLUICE_ECONN. A source with unknown change_detection:
 * SLUICE_EUSAGE naming its property file and line.
 *
 * pool: the queries go on its main connections (the caller's thread must
 * be the one that may use them, conn.h); NULL: on connections of their
 * own, closed before it returns.
 */
struct conn_pool;
int sources_versions(struct session *s, struct conn_pool *pool, const unsigned char *want,
		     struct source_versions *out, struct sluice_err *err);
void source_versions_release(struct source_versions *v);

/*
 * `sluice sources instrument|uninstrument`: install or remove the
 * statement-level AFTER INSERT/UPDATE/DELETE/TRUNCATE triggers on the
 * selected sources whose change_detection is `trigger`, and the
 * sluice_meta.source_versions table they bump. Idempotent.
 */
int sources_instrument(struct session *s, int install, int *count, struct sluice_err *err);

#endif
