/* json.c: struct val <-> Jansson; see json.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "json.h"
#include "util/fs.h"

json_t *json_from_val_new(const struct val *v)
{
	json_t *j;
	size_t i;

	switch (v->kind) {
	case V_NONE:
	case V_FUNC:
		return json_null();
	case V_BOOL: return json_boolean(v->u.b);
	case V_NUM:
		if (v->u.num == (double)(json_int_t)v->u.num)
			return json_integer((json_int_t)v->u.num);
		return json_real(v->u.num);
	case V_STR: return json_stringn(v->u.str.s, v->u.str.len);
	case V_LIST:
		j = json_array();
		for (i = 0; i < v->u.list.n; i++)
			json_array_append_new(j, json_from_val_new(&v->u.list.items[i]));
		return j;
	case V_DICT:
		j = json_object();
		for (i = 0; i < v->u.dict.n; i++)
			json_object_set_new(j, v->u.dict.keys[i], json_from_val_new(&v->u.dict.vals[i]));
		return j;
	}
	return json_null();
}

/* s, copied into a once: names (when not NULL) remembers the copy, so a name met again is shared. */
static const char *name_in(struct arena *a, struct strmap *names, const char *s, size_t len)
{
	char *copy;

	if (!names)
		return arena_strndup(a, s, len);
	if ((copy = strmap_get(names, s)))
		return copy;
	copy = arena_strndup(a, s, len);
	strmap_put(names, copy, copy);
	return copy;
}

/* Strings this short are names and words ("success", "view"); longer ones are hashes and SQL, seldom twice. */
#define VAL_SHARED_MAX 16

static struct val to_val(struct arena *a, const json_t *j, struct strmap *names);

/*
 * An object's members as a dict, sized once (a state file holds 10,000s of
 * them; keys are unique). drain: each member is removed once converted.
 */
static struct val object_to_val(struct arena *a, json_t *obj, int drain, struct strmap *names)
{
	struct val v = val_dict_of(a, json_object_size(obj));
	const char *key;
	json_t *item;
	void *next;
	size_t i = 0;

	json_object_foreach_safe(obj, next, key, item) {
		v.u.dict.keys[i] = name_in(a, names, key, strlen(key));
		v.u.dict.vals[i] = to_val(a, item, names);
		if (drain)
			json_object_del(obj, v.u.dict.keys[i]);
		i++;
	}
	return v;
}

static struct val to_val(struct arena *a, const json_t *j, struct strmap *names)
{
	struct val v;
	json_t *item;
	size_t i, len;

	switch (json_typeof(j)) {
	case JSON_OBJECT: return object_to_val(a, (json_t *)j, 0, names);
	case JSON_ARRAY:
		v = val_list_of(a, json_array_size(j));
		json_array_foreach(j, i, item)
			v.u.list.items[i] = to_val(a, item, names);
		return v;
	case JSON_STRING:
		len = json_string_length(j);
		if (names && len < VAL_SHARED_MAX && !memchr(json_string_value(j), 0, len))
			return val_strn(name_in(a, names, json_string_value(j), len), len);
		return val_str_dup(a, json_string_value(j), len);
	case JSON_INTEGER: return val_num((double)json_integer_value(j));
	case JSON_REAL: return val_num(json_real_value(j));
	case JSON_TRUE: return val_bool(1);
	case JSON_FALSE: return val_bool(0);
	default: return val_none();
	}
}

struct val json_to_val(struct arena *a, const json_t *j)
{
	return to_val(a, j, NULL);
}

struct val json_to_val_shared(struct arena *a, const json_t *j, struct strmap *names)
{
	return to_val(a, j, names);
}

struct val json_drain_to_val(struct arena *a, json_t *obj)
{
	return json_is_object(obj) ? object_to_val(a, obj, 1, NULL) : json_to_val(a, obj);
}

int json_parse_val(struct arena *a, const char *what, const char *text, struct val *out,
		   struct sluice_err *err)
{
	json_error_t je;
	json_t *j = json_loads(text, JSON_DECODE_ANY, &je);

	if (!j)
		return err_set(err, SLUICE_EUSAGE, "%s:%d:%d: %s", what, je.line, je.column, je.text);
	*out = json_to_val(a, j);
	json_decref(j);
	return 0;
}

int json_write_file(const json_t *j, const char *path, struct sluice_err *err)
{
	struct json_stream js;

	if (json_stream_open(&js, path, err))
		return err->code;
	/* written as it is made: a 10,000-node manifest is never held as one string */
	json_stream_value(&js, j, 0);
	return json_stream_close(&js, err);
}

int json_stream_open(struct json_stream *js, const char *path, struct sluice_err *err)
{
	js->indent = 0;
	js->ok = 1;
	buf_init(&js->text);
	if (fs_mkdir_parent(path, err) || fs_atomic_open(&js->f, path, err))
		return err->code;
	return 0;
}

void json_stream_text(struct json_stream *js, const char *text)
{
	if (fs_atomic_write(&js->f, text, strlen(text)))
		js->ok = 0;
}

/* json_dump_callback's sink: each new line starts js->indent spaces further in. */
static int dump_indented(const char *s, size_t n, void *ud)
{
	static const char spaces[] = "                                ";
	struct json_stream *js = ud;
	const char *nl;

	while (n && (nl = memchr(s, '\n', n))) {
		size_t k = (size_t)(nl - s) + 1;
		int left = js->indent;
		if (fs_atomic_write(&js->f, s, k))
			return -1;
		for (; left > 0; left -= (int)sizeof(spaces) - 1)
			if (fs_atomic_write(&js->f, spaces, left < (int)sizeof(spaces) - 1 ? (size_t)left : sizeof(spaces) - 1))
				return -1;
		s += k;
		n -= k;
	}
	return n && fs_atomic_write(&js->f, s, n) ? -1 : 0;
}

void json_stream_value(struct json_stream *js, const json_t *v, int indent)
{
	buf_reset(&js->text);
	if (json_dump_buf(v, 2, indent, &js->text) || fs_atomic_write(&js->f, js->text.s, js->text.len))
		js->ok = 0;
}

void json_stream_key(struct json_stream *js, const char *key, int first, int indent)
{
	json_t *k = json_string(key);

	if (!first)
		json_stream_text(js, ",");
	js->indent = indent;
	if (dump_indented("\n", 1, js) < 0 || !k || json_dump_callback(k, dump_indented, js, JSON_ENCODE_ANY))
		js->ok = 0;
	json_stream_text(js, ": ");
	json_decref(k);
}

int json_stream_close(struct json_stream *js, struct sluice_err *err)
{
	buf_release(&js->text);
	if (!js->ok && !js->f.rc)
		err_set(err, SLUICE_EIO, "%s: cannot serialise JSON", js->f.path);
	return fs_atomic_close(&js->f, js->ok) ? err->code : 0;
}

void json_string_dump(struct buf *out, const char *s, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	const char *end = s + len, *from = s;

	buf_grow(out, len + 2);
	buf_addc(out, '"');
	for (; s < end; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[6] = { '\\', 0 };
		size_t n = 2;
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		buf_add(out, from, (size_t)(s - from));
		from = s + 1;
		switch (c) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		default:
			memcpy(esc + 1, "u00", 3);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			n = 6;
		}
		buf_add(out, esc, n);
	}
	buf_add(out, from, (size_t)(end - from));
	buf_addc(out, '"');
}

/* A new line and indent spaces; nothing when compact (indent < 0). */
static void dump_newline(struct buf *out, int indent)
{
	if (indent < 0)
		return;
	buf_grow(out, (size_t)indent + 1);
	out->s[out->len++] = '\n';
	memset(out->s + out->len, ' ', (size_t)indent);
	out->len += (size_t)indent;
	out->s[out->len] = '\0';
}

/*
 * v at depth, where step < 0 is compact and a new line starts margin
 * spaces in. Only numbers borrow Jansson's own dump: a real's digits are
 * its business.
 */
static int dump_value(struct buf *out, const json_t *v, int step, int margin, int depth)
{
	char num[64];
	size_t n;
	int in = step < 0 ? -1 : margin + step * (depth + 1);
	int at = step < 0 ? -1 : margin + step * depth;

	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		const char *key;
		json_t *item;
		int first = 1;
		if (!json_object_size(v)) {
			buf_add(out, "{}", 2);
			return 0;
		}
		buf_addc(out, '{');
		dump_newline(out, in);
		json_object_foreach((json_t *)v, key, item) {
			if (!first) {
				buf_addc(out, ',');
				dump_newline(out, in);
			}
			first = 0;
			json_string_dump(out, key, strlen(key));
			buf_add(out, ": ", step < 0 ? 1 : 2);
			if (dump_value(out, item, step, margin, depth + 1))
				return -1;
		}
		dump_newline(out, at);
		buf_addc(out, '}');
		return 0;
	}
	case JSON_ARRAY:
		if (!json_array_size(v)) {
			buf_add(out, "[]", 2);
			return 0;
		}
		buf_addc(out, '[');
		dump_newline(out, in);
		for (n = 0; n < json_array_size(v); n++) {
			if (n) {
				buf_addc(out, ',');
				dump_newline(out, in);
			}
			if (dump_value(out, json_array_get(v, n), step, margin, depth + 1))
				return -1;
		}
		dump_newline(out, at);
		buf_addc(out, ']');
		return 0;
	case JSON_STRING:
		json_string_dump(out, json_string_value(v), json_string_length(v));
		return 0;
	case JSON_TRUE: buf_add(out, "true", 4); return 0;
	case JSON_FALSE: buf_add(out, "false", 5); return 0;
	case JSON_NULL: buf_add(out, "null", 4); return 0;
	default:
		n = json_dumpb(v, num, sizeof(num), JSON_ENCODE_ANY);
		if (!n || n > sizeof(num))
			return -1;
		buf_add(out, num, n);
		return 0;
	}
}

int json_dump_buf(const json_t *v, int indent, int margin, struct buf *out)
{
	return v ? dump_value(out, v, indent > 0 ? indent : -1, margin, 0) : -1;
}

/* ---- reading a large object piece by piece ---- */

struct json_reader {
	const char *path;
	const char *s;
	size_t len, pos;
	struct sluice_err *err;
};

static int reader_fail(struct json_reader *r, size_t at, const char *what)
{
	int line = 1, col = 1;
	size_t i;

	for (i = 0; i < at && i < r->len; i++, col++)
		if (r->s[i] == '\n') {
			line++;
			col = 0;
		}
	if (!r->path)
		return err_set(r->err, SLUICE_EUSAGE, "line %d, column %d: %s", line, col, what);
	return err_set(r->err, SLUICE_EUSAGE, "%s:%d:%d: %s", r->path, line, col, what);
}

/* The next byte that is not white space, left unread; 0 at the end. */
static char reader_peek(struct json_reader *r)
{
	while (r->pos < r->len && r->s[r->pos] && strchr(" \t\r\n", r->s[r->pos]))
		r->pos++;
	return r->pos < r->len ? r->s[r->pos] : 0;
}

static int reader_expect(struct json_reader *r, char c)
{
	char msg[32];

	if (reader_peek(r) == c) {
		r->pos++;
		return 0;
	}
	snprintf(msg, sizeof(msg), "'%c' expected", c);
	return reader_fail(r, r->pos, msg);
}

/* One whole value from here: a new reference, or NULL with the error set. */
static json_t *reader_value(struct json_reader *r)
{
	json_error_t je;
	json_t *v = json_loadb(r->s + r->pos, r->len - r->pos, JSON_DECODE_ANY | JSON_DISABLE_EOF_CHECK, &je);

	if (!v) {
		reader_fail(r, r->pos + (size_t)(je.position > 0 ? je.position : 0), je.text);
		return NULL;
	}
	r->pos += (size_t)je.position;
	return v;
}

/* A member's key and its ':': a new reference, or NULL with the error set. */
static json_t *reader_key(struct json_reader *r)
{
	json_t *k;

	if (reader_peek(r) != '"') {
		reader_fail(r, r->pos, "string or '}' expected");
		return NULL;
	}
	if (!(k = reader_value(r)))
		return NULL;
	if (reader_expect(r, ':')) {
		json_decref(k);
		return NULL;
	}
	return k;
}

/* Whether another entry follows in the container closed by close (its opening already read). */
static int reader_more(struct json_reader *r, char close, int first, int *rc)
{
	char c = reader_peek(r);

	*rc = 0;
	if (c == close) {
		r->pos++;
		return 0;
	}
	if (first)
		return 1;
	if (c == ',') {
		r->pos++;
		return 1;
	}
	*rc = reader_fail(r, r->pos, close == '}' ? "',' or '}' expected" : "',' or ']' expected");
	return 0;
}

/* The entries of the object or array at r, one at a time, to fn as items of key. */
static int reader_split(struct json_reader *r, const char *key, json_member_fn fn, void *ud)
{
	char close = reader_peek(r) == '{' ? '}' : ']';
	int first = 1, rc;

	/* first the member itself, empty: its kind, and that it is there */
	if ((rc = fn(ud, key, NULL, close == '}' ? json_object() : json_array(), 0)))
		return rc;
	r->pos++;
	while (reader_more(r, close, first, &rc)) {
		json_t *k = NULL, *v;
		first = 0;
		if (close == '}' && !(k = reader_key(r)))
			return r->err->code;
		if (!(v = reader_value(r))) {
			json_decref(k);
			return r->err->code;
		}
		rc = fn(ud, key, k ? json_string_value(k) : NULL, v, 1);
		json_decref(k);
		if (rc)
			return rc;
	}
	return rc;
}

int json_load_members_text(const char *path, const char *text, size_t len, const char *const *split,
			   json_member_fn fn, void *ud, struct sluice_err *err)
{
	struct json_reader r = { path, text ? text : "", len, 0, err };
	int first = 1, rc;

	if ((rc = reader_expect(&r, '{')))
		return rc;
	while (reader_more(&r, '}', first, &rc)) {
		const char *const *sp;
		json_t *k, *v;
		first = 0;
		if (!(k = reader_key(&r)))
			return err->code;
		for (sp = split; sp && *sp && strcmp(*sp, json_string_value(k)); sp++)
			;
		if (sp && *sp && (reader_peek(&r) == '{' || reader_peek(&r) == '['))
			rc = reader_split(&r, json_string_value(k), fn, ud);
		else if (!(v = reader_value(&r)))
			rc = err->code;
		else
			rc = fn(ud, json_string_value(k), NULL, v, 0);
		json_decref(k);
		if (rc)
			return rc;
	}
	reader_peek(&r);
	if (!rc && r.pos < r.len)
		rc = reader_fail(&r, r.pos, "end of file expected");
	return rc;
}

int json_load_members(const char *path, const char *const *split, json_member_fn fn, void *ud,
		      struct sluice_err *err)
{
	struct buf text = BUF_INIT;
	int rc;

	if ((rc = fs_read_file(path, &text, err)))
		return rc;
	rc = json_load_members_text(path, text.s, text.len, split, fn, ud, err);
	buf_release(&text);
	return rc;
}
