/*
 * blame.h: which run built the version of a relation that exists now.
 * The pure parts of `sluice blame` (cmd-blame.c): finding the node a user
 * names, and turning its state record, the run's history entry and what
 * the warehouse holds now into one verdict, printed as text or JSON.
 *
 * Not here: reading the state or the warehouse (cmd-blame.c does, through
 * build.h), or what the state records (build.c put_record, history.c).
 */
#ifndef SLUICE_BLAME_H
#define SLUICE_BLAME_H

#include <jansson.h>
#include "manifest.h"
#include "util/buf.h"

/*
 * Split a relation name as a user types it: `schema.name`, either part
 * double-quoted ("My Schema"."x.y", "" inside quotes for one "). Unquoted
 * parts are folded to lower case, as PostgreSQL and Redshift fold them.
 * Fills schema and ident (reset first). Returns 0, or -1 when text is not
 * two parts.
 */
int blame_parse_relation(const char *text, struct buf *schema, struct buf *ident);

/*
 * The model text names: its unique id, its name, or its relation
 * (blame_parse_relation). NULL when none; sources and tests are not models.
 */
const struct node *blame_find(const struct manifest *m, const char *text);

/* What the warehouse holds at the relation now, against what the recording run left. */
enum blame_now {
	BLAME_NOW_UNKNOWN,      /* no version recorded (a view), or not readable */
	BLAME_NOW_SAME,         /* the version that run left */
	BLAME_NOW_CHANGED,      /* written outside sluice after that run */
	BLAME_NOW_DROPPED,      /* the relation is gone */
};

/*
 * now: the relation's version now ("missing" when it does not exist; NULL
 * when unknown), exists: whether the catalog has it, recorded: the
 * record's relation_version (NULL when not recorded).
 */
enum blame_now blame_compare(const char *recorded, const char *now, int exists);

/*
 * The verdict as JSON (a new reference): the node, its record's blame
 * fields (null where not recorded), the run's command from its history
 * entry (run may be NULL), and the relation's state now.
 */
json_t *blame_json_new(const struct node *n, const json_t *record, const json_t *run, enum blame_now now,
		       const char *now_version);
/* The same for people, appended to out. */
void blame_text(struct buf *out, const json_t *verdict);

#endif
