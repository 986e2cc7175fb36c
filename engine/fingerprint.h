/*
 * fingerprint.h: what a node's result depends on, as XXH3-128 hashes, and
 * the reasons a node must be rebuilt (or may be reused). Pure: no I/O;
 * the caller brings the state record and the current versions.
 * The exact definition is in docs/fingerprints.md.
 */
#ifndef SLUICE_FINGERPRINT_H
#define SLUICE_FINGERPRINT_H

#include <stddef.h>
#include "manifest.h"
#include "util/arena.h"
#include "util/buf.h"
#include "util/hash.h"
#include "value.h"

#define FP_FORMAT "sluice-fingerprint-1"
#define FP_HEX HASH_HEX             /* fingerprints are util/hash.h digests */

struct fp {
	char code[FP_HEX];         /* normalised SQL with relations named logically */
	char config[FP_HEX];       /* materialization, relation, connection, relevant config */
	char vars[FP_HEX];         /* var()/env_var() values the node read */
	char def[FP_HEX];          /* code + config + vars: what the relation's definition depends on */
	char full[FP_HEX];         /* def + upstream fingerprints + source versions: the fingerprint */
	struct val var_hashes;     /* "var.x" -> short hash of its value (never the value: it may be a secret) */
	struct val upstream;       /* model parent unique_id -> its effective fingerprint */
	struct val sources;        /* source unique_id -> version */
	struct val inputs;         /* shell models: input path -> content hash */
};

/* Inputs that are not in the manifest. */
struct fp_input {
	const char *logical_sql;         /* manifest_compile with .logical = 1 */
	const struct val *used_vars;     /* what that render recorded (may be NULL) */
	const char *const *parent_fp;    /* per dag parent (same order): effective fp, or NULL for sources */
	const char *const *parent_version; /* per dag parent: version for source parents, else NULL */
	const struct val *inputs;        /* shell models: path -> {size, mtime_ns, hash} (fileset.h), or NULL */
	/*
	 * The definition fingerprint to use instead of the one the code gives,
	 * or NULL: an unselected view's, as the warehouse holds it (from its
	 * state record), since that is what its readers read.
	 */
	const char *def;
};

void fp_compute(const struct manifest *m, const struct node *n, const struct fp_input *in,
		struct arena *a, struct fp *out);

/* Formatting-insensitive form of SQL: comments dropped, runs of white space outside quotes folded to one space. */
void fp_normalize_sql(const char *sql, struct buf *out);

/* Why a node must be built. */
struct fp_decision {
	int build;                 /* 0: reuse */
	int full_refresh;          /* incremental model: rebuild from scratch */
	int kept_outside;          /* incremental model run incrementally over a write made outside sluice: it stays */
	struct val reasons;        /* list of strings (empty when reused) */
};

struct fp_context {
	const struct val *prev;    /* the node's state record, or NULL */
	int relation_exists;       /* the relation is in the database now */
	const char *relation_version; /* its stats version now, or NULL when unknown */
	int force;                 /* --force */
	int full_refresh;          /* --full-refresh */
	const struct val *outputs_declared; /* shell models: list of output paths, or NULL */
	const struct val *outputs; /* and those on disk now: path -> {size, mtime_ns, hash} */
	const char *must_build;    /* a kind's reason to build whatever the fingerprint says, or NULL */
};

/* Decide build or reuse, with every reason that applies (dbt-style names in messages). */
void fp_decide(const struct manifest *m, const struct node *n, const struct fp *cur,
	       const struct fp_context *ctx, struct arena *a, struct fp_decision *out);

#endif
