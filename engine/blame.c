/*
 * blame.c: naming a model, comparing versions, and wording the verdict of
 * `sluice blame`; see blame.h. No I/O: everything it judges is handed in.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "blame.h"

/* One part of a dotted name at *p: quoted or not. Returns 0, -1 on a bad quote. */
static int name_part(const char **p, struct buf *out)
{
	const char *s = *p;

	if (*s == '"') {
		for (s++; *s; s++) {
			if (*s == '"' && s[1] == '"') {
				buf_addc(out, '"');
				s++;
			} else if (*s == '"') {
				break;
			} else {
				buf_addc(out, *s);
			}
		}
		if (*s != '"')
			return -1;
		*p = s + 1;
		return 0;
	}
	for (; *s && *s != '.'; s++)
		buf_addc(out, (char)tolower((unsigned char)*s));
	*p = s;
	return 0;
}

int blame_parse_relation(const char *text, struct buf *schema, struct buf *ident)
{
	const char *p = text;

	buf_reset(schema);
	buf_reset(ident);
	if (name_part(&p, schema) || *p != '.' || !schema->len)
		return -1;
	p++;
	if (name_part(&p, ident) || *p || !ident->len)
		return -1;
	return 0;
}

const struct node *blame_find(const struct manifest *m, const char *text)
{
	struct buf schema = BUF_INIT, ident = BUF_INIT;
	const struct node *found = NULL;
	int rel = !blame_parse_relation(text, &schema, &ident);
	size_t i;

	for (i = 0; i < m->n && !found; i++)
		if (m->nodes[i].type == NODE_MODEL && !strcmp(m->nodes[i].unique_id, text))
			found = &m->nodes[i];
	for (i = 0; i < m->n && !found; i++)
		if (m->nodes[i].type == NODE_MODEL && !strcmp(m->nodes[i].name, text))
			found = &m->nodes[i];
	for (i = 0; i < m->n && !found && rel; i++) {
		const struct node *n = &m->nodes[i];
		if (n->type == NODE_MODEL && n->schema && n->identifier && !strcmp(n->schema, schema.s) &&
		    !strcmp(n->identifier, ident.s))
			found = n;
	}
	buf_release(&schema);
	buf_release(&ident);
	return found;
}

enum blame_now blame_compare(const char *recorded, const char *now, int exists)
{
	if (!exists)
		return BLAME_NOW_DROPPED;
	if (!recorded || !now)
		return BLAME_NOW_UNKNOWN;
	if (!strcmp(now, "missing"))
		return BLAME_NOW_DROPPED;
	return strcmp(recorded, now) ? BLAME_NOW_CHANGED : BLAME_NOW_SAME;
}

static const char *const now_words[] = { "unknown", "unchanged", "changed", "dropped" };

/* A record's key, copied, or null when the record does not have it. */
static json_t *field(const json_t *record, const char *key)
{
	json_t *v = json_object_get(record, key);

	return v ? json_deep_copy(v) : json_null();
}

json_t *blame_json_new(const struct node *n, const json_t *record, const json_t *run, enum blame_now now,
		       const char *now_version)
{
	static const char *const keys[] = { "invocation_id", "status", "user", "user_source", "git_commit", "git_dirty",
					    "fingerprint", "rows", "sources", "upstream", "relation_version", NULL };
	json_t *o = json_object();
	const char *const *k;
	json_t *fin = json_object_get(record, "finished_at");

	json_object_set_new(o, "unique_id", json_string(n->unique_id));
	json_object_set_new(o, "relation", json_string(n->display ? n->display : ""));
	json_object_set_new(o, "materialized", json_string(n->mat_name ? n->mat_name : ""));
	json_object_set_new(o, "recorded", json_boolean(record != NULL));
	for (k = keys; *k; k++)
		json_object_set_new(o, *k, field(record, *k));
	if (json_is_number(fin)) {
		char ts[64];
		time_t t = (time_t)json_number_value(fin);
		struct tm tm;
		gmtime_r(&t, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
		json_object_set_new(o, "finished_at", json_string(ts));
	} else {
		json_object_set_new(o, "finished_at", json_null());
	}
	/* a null commit was recorded (no repository); a missing one was not */
	json_object_set_new(o, "git_repository", json_is_string(json_object_get(record, "git_commit")) ? json_true()
						 : json_object_get(record, "git_commit") ? json_false() : json_null());
	json_object_set_new(o, "command", field(run, "command"));
	json_object_set_new(o, "relation_now", json_string(now_words[now]));
	json_object_set_new(o, "relation_version_now", now_version ? json_string(now_version) : json_null());
	return o;
}

/* "value", or "not recorded". */
static const char *or_not(const json_t *v)
{
	return json_is_string(v) ? json_string_value(v) : "not recorded";
}

static void deps(struct buf *out, const json_t *map, const char *label, const char *what)
{
	const char *key;
	json_t *v;
	int first = 1;

	if (!json_is_object(map)) {
		buf_printf(out, "%-13s not recorded\n", label);
		return;
	}
	json_object_foreach((json_t *)map, key, v) {
		buf_printf(out, "%-13s %s  %s %s\n", first ? label : "", key, what, or_not(v));
		first = 0;
	}
	if (first)
		buf_printf(out, "%-13s none\n", label);
}

/* A relation reused from another environment: where from, then that environment's own verdict. */
static void reused_text(struct buf *out, const json_t *v)
{
	const json_t *from = json_object_get(v, "reused_from"), *theirs = json_object_get(v, "reused_record");

	if (!json_is_object(from))
		return;
	buf_printf(out, "%-13s %s: %s.%s (%s)\n", "reused from", or_not(json_object_get(from, "target")),
		   or_not(json_object_get(from, "schema")), or_not(json_object_get(from, "identifier")),
		   !strcmp(or_not(json_object_get(from, "mode")), "copy") ? "copied" : "a view over it");
	if (!json_is_object(theirs)) {
		buf_printf(out, "%-13s not recorded in %s's state any more\n", "", or_not(json_object_get(from, "target")));
		return;
	}
	buf_printf(out, "--- in %s:\n", or_not(json_object_get(theirs, "target")));
	blame_text(out, theirs);
}

void blame_text(struct buf *out, const json_t *v)
{
	const char *rel = json_string_value(json_object_get(v, "relation"));
	const char *now = json_string_value(json_object_get(v, "relation_now"));
	const json_t *rows = json_object_get(v, "rows"), *dirty = json_object_get(v, "git_dirty");
	const json_t *cmd = json_object_get(v, "command");

	buf_printf(out, "%s (%s, %s)\n", json_string_value(json_object_get(v, "unique_id")), rel,
		   json_string_value(json_object_get(v, "materialized")));
	if (!json_is_true(json_object_get(v, "recorded"))) {
		buf_printf(out, "no run recorded in this target's state built it: not recorded\n");
		return;
	}
	if (strcmp(or_not(json_object_get(v, "status")), "success")) {
		buf_printf(out, "the last run that tried, %s, failed: what exists now was built earlier, by a run "
			   "not recorded any more\n", or_not(json_object_get(v, "invocation_id")));
		return;
	}
	buf_printf(out, "%-13s %s", "built by run", or_not(json_object_get(v, "invocation_id")));
	if (json_is_string(cmd))
		buf_printf(out, " (%s)", json_string_value(cmd));
	buf_addc(out, '\n');
	buf_printf(out, "%-13s %s", "by", or_not(json_object_get(v, "user")));
	if (json_is_string(json_object_get(v, "user_source")))
		buf_printf(out, " (from %s)", json_string_value(json_object_get(v, "user_source")));
	buf_addc(out, '\n');
	buf_printf(out, "%-13s %s\n", "finished at", or_not(json_object_get(v, "finished_at")));
	if (json_is_false(json_object_get(v, "git_repository")))
		buf_printf(out, "%-13s none (the project was not in a git repository)\n", "git commit");
	else
		buf_printf(out, "%-13s %s%s\n", "git commit", or_not(json_object_get(v, "git_commit")),
			   json_is_true(dirty) ? " (dirty: tracked files were modified)" : "");
	buf_printf(out, "%-13s %s\n", "fingerprint", or_not(json_object_get(v, "fingerprint")));
	if (json_is_integer(rows) || json_is_real(rows)) {
		double r = json_number_value(rows);
		if (r >= 0)
			buf_printf(out, "%-13s %.0f\n", "rows", r);
		else
			buf_printf(out, "%-13s not reported (a view)\n", "rows");
	} else {
		buf_printf(out, "%-13s not recorded\n", "rows");
	}
	deps(out, json_object_get(v, "sources"), "read sources", "version");
	deps(out, json_object_get(v, "upstream"), "read models", "fingerprint");
	if (!strcmp(now, "unchanged"))
		buf_printf(out, "%-13s %s is as that run left it\n", "now", rel);
	else if (!strcmp(now, "changed"))
		buf_printf(out, "%-13s CHANGED OUTSIDE SLUICE: %s was written after that run (version %s, that run left %s)\n",
			   "now", rel, or_not(json_object_get(v, "relation_version_now")),
			   or_not(json_object_get(v, "relation_version")));
	else if (!strcmp(now, "dropped"))
		buf_printf(out, "%-13s DROPPED OUTSIDE SLUICE: %s does not exist any more\n", "now", rel);
	else
		buf_printf(out, "%-13s %s exists; whether it changed since is not recorded (no statistics version)\n",
			   "now", rel);
	reused_text(out, v);
}
