/* json.c: struct val <-> Jansson; see json.h. */
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

/*
 * An object's members as a dict, sized once (a state file holds 10,000s of
 * them; keys are unique). drain: each member is removed once converted.
 */
static struct val object_to_val(struct arena *a, json_t *obj, int drain)
{
	struct val v = val_dict_of(a, json_object_size(obj));
	const char *key;
	json_t *item;
	void *next;
	size_t i = 0;

	json_object_foreach_safe(obj, next, key, item) {
		v.u.dict.keys[i] = arena_strdup(a, key);
		v.u.dict.vals[i] = json_to_val(a, item);
		if (drain)
			json_object_del(obj, v.u.dict.keys[i]);
		i++;
	}
	return v;
}

struct val json_to_val(struct arena *a, const json_t *j)
{
	struct val v;
	json_t *item;
	size_t i;

	switch (json_typeof(j)) {
	case JSON_OBJECT: return object_to_val(a, (json_t *)j, 0);
	case JSON_ARRAY:
		v = val_list_of(a, json_array_size(j));
		json_array_foreach(j, i, item)
			v.u.list.items[i] = json_to_val(a, item);
		return v;
	case JSON_STRING: return val_str_dup(a, json_string_value(j), json_string_length(j));
	case JSON_INTEGER: return val_num((double)json_integer_value(j));
	case JSON_REAL: return val_num(json_real_value(j));
	case JSON_TRUE: return val_bool(1);
	case JSON_FALSE: return val_bool(0);
	default: return val_none();
	}
}

struct val json_drain_to_val(struct arena *a, json_t *obj)
{
	return json_is_object(obj) ? object_to_val(a, obj, 1) : json_to_val(a, obj);
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
	js->indent = indent;
	if (json_dump_callback(v, dump_indented, js, JSON_INDENT(2) | JSON_ENCODE_ANY))
		js->ok = 0;
}

int json_stream_close(struct json_stream *js, struct sluice_err *err)
{
	if (!js->ok && !js->f.rc)
		err_set(err, SLUICE_EIO, "%s: cannot serialise JSON", js->f.path);
	return fs_atomic_close(&js->f, js->ok) ? err->code : 0;
}

