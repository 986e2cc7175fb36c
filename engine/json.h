/*
 * json.h: conversions between struct val and Jansson, and JSON text.
 * Jansson ownership: functions named *_new return a new reference.
 */
#ifndef SLUICE_JSON_H
#define SLUICE_JSON_H

#include <jansson.h>
#include "util/arena.h"
#include "util/err.h"
#include "util/fs.h"
#include "util/strmap.h"
#include "value.h"

json_t *json_from_val_new(const struct val *v);
struct val json_to_val(struct arena *a, const json_t *j);
/*
 * The same, for many values alike (10,000 state records): each member name
 * and short string is copied into a once and shared, remembered in names
 * (the caller's, released by the caller; its keys live in a).
 */
struct val json_to_val_shared(struct arena *a, const json_t *j, struct strmap *names);
/*
 * The same for an object the caller owns and no longer needs: each member
 * is removed (and freed, unless shared) once converted, so the two forms
 * of 10,000 state records are never held whole at once. obj is left empty.
 */
struct val json_drain_to_val(struct arena *a, json_t *obj);
/* Parse JSON text into a value; errors: SLUICE_EUSAGE "what: line:col: msg". */
int json_parse_val(struct arena *a, const char *what, const char *text, struct val *out,
		   struct sluice_err *err);
/* Write j (pretty, sorted keys off: insertion order) atomically to path. */
int json_write_file(const json_t *j, const char *path, struct sluice_err *err);

/*
 * The same file written piece by piece, so a document of 10,000 entries
 * need never be held whole: json_stream_text for the structure,
 * json_stream_value for each value (pretty, indent: how deep it sits, in
 * spaces). The bytes are those json_write_file writes for the whole
 * document when the pieces follow its layout. Errors are kept until
 * json_stream_close, which renames the file into place (commit) or drops it.
 */
struct json_stream {
	struct fs_atomic f;
	int indent, ok;
	struct buf text;   /* json_stream_value's, released by json_stream_close */
};
int json_stream_open(struct json_stream *js, const char *path, struct sluice_err *err);
void json_stream_text(struct json_stream *js, const char *text);
void json_stream_value(struct json_stream *js, const json_t *v, int indent);
/* "," (unless first), a new line of indent spaces, and "key": with the key escaped as JSON does. */
void json_stream_key(struct json_stream *js, const char *key, int first, int indent);
int json_stream_close(struct json_stream *js, struct sluice_err *err);

/*
 * Append the JSON string of the len bytes at s (valid UTF-8, NULs
 * allowed), quotes included, as Jansson's dump writes it without
 * JSON_ENSURE_ASCII or JSON_ESCAPE_SLASH: a large text without its
 * per-character cost.
 */
void json_string_dump(struct buf *out, const char *s, size_t len);
/*
 * Append v as json_dumps(v, JSON_ENCODE_ANY | JSON_INDENT(indent)) writes
 * it, or with JSON_COMPACT when indent is 0, each new line margin spaces
 * further in; strings must be valid UTF-8, as Jansson's constructors
 * make them. Without Jansson's costs per token (a loop check on every
 * array and object): the artifacts and the report hold 10,000s of them.
 * Returns 0, or -1 when v or a number in it cannot be written.
 */
int json_dump_buf(const json_t *v, int indent, int margin, struct buf *out);

/*
 * Read the JSON object in the file at path a member at a time, so a
 * document of 10,000 entries is never held as one tree: fn gets each
 * member's key and value (a new reference fn owns), item 0. A member
 * named in split (NULL-terminated) whose value is an object or an array
 * is handed over empty (item 0), then an entry at a time (item 1,
 * item_key: the entry's key in an object, NULL in an array). A non-zero
 * return from fn stops the reading and is returned. Errors: SLUICE_EIO
 * when the file cannot be read, SLUICE_EUSAGE "path:line:col: what" when
 * it is not one JSON object (members already handed over stay the
 * caller's).
 */
typedef int (*json_member_fn)(void *ud, const char *key, const char *item_key, json_t *value, int item);
int json_load_members(const char *path, const char *const *split, json_member_fn fn, void *ud,
		      struct sluice_err *err);
/* The same from text in memory; path NULL: errors say "line L, column C: what". */
int json_load_members_text(const char *path, const char *text, size_t len, const char *const *split,
			   json_member_fn fn, void *ud, struct sluice_err *err);

#endif
