/*
 * test_json.c: unit tests for engine/json.c: a large artifact written
 * piece by piece has the very bytes of the same document written whole,
 * and read piece by piece gives what a whole load gives, or an error
 * naming the line and column.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <cmocka.h>
#include "../../engine/json.h"
#include "../../engine/util/fs.h"

static char dir[] = "/tmp/sluice-test-json.XXXXXX";

static void read_text(const char *path, struct buf *out)
{
	struct sluice_err err = SLUICE_ERR_INIT;

	buf_release(out);
	assert_int_equal(fs_read_file(path, out, &err), 0);
}

/* A document like run_results.json: nested objects, an empty list, reals, text with a newline in it. */
static json_t *doc_new(size_t nresults)
{
	json_t *root = json_object(), *results = json_array();
	size_t i;

	json_object_set_new(root, "metadata", json_pack("{s:s,s:n,s:b}", "version", "0.1", "commit", "dirty", 0));
	json_object_set_new(root, "elapsed_time", json_real(1.2504370212554932));
	for (i = 0; i < nresults; i++)
		json_array_append_new(results, json_pack("{s:s,s:[],s:{s:i},s:[{s:s}],s:s}", "unique_id", "model.p.m",
							 "reasons", "adapter_response", "rows_affected", (int)i,
							 "timing", "name", "execute", "message", "line one\nline two"));
	json_object_set_new(root, "results", results);
	json_object_set_new(root, "sources", json_array());
	/* a map by id, as manifest.json's nodes: ids are escaped as JSON escapes keys */
	json_object_set_new(root, "nodes", json_object());
	for (i = 0; i < nresults; i++)
		json_object_set_new(json_object_get(root, "nodes"), i ? "model.p.m" : "model.p.\"q\"\u00e9",
				    json_pack("{s:[i,i],s:{}}", "deps", (int)i, 2, "config"));
	return root;
}

/* The same document, streamed as artifacts.c does: its top members, then each result. */
static void stream_doc(const json_t *root, const char *path)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	const json_t *results = json_object_get(root, "results");
	struct json_stream js;
	size_t i;
	const char *key;
	json_t *v;
	int first = 1;

	assert_int_equal(json_stream_open(&js, path, &err), 0);
	json_stream_text(&js, "{");
	json_stream_key(&js, "metadata", 1, 2);
	json_stream_value(&js, json_object_get(root, "metadata"), 2);
	json_stream_key(&js, "elapsed_time", 0, 2);
	json_stream_value(&js, json_object_get(root, "elapsed_time"), 2);
	json_stream_text(&js, ",\n  \"results\": [");
	for (i = 0; i < json_array_size(results); i++) {
		json_stream_text(&js, i ? ",\n    " : "\n    ");
		json_stream_value(&js, json_array_get(results, i), 4);
	}
	json_stream_text(&js, i ? "\n  ],\n" : "],\n");
	json_stream_text(&js, "  \"sources\": ");
	json_stream_value(&js, json_object_get(root, "sources"), 2);
	json_stream_key(&js, "nodes", 0, 2);
	json_stream_text(&js, "{");
	json_object_foreach((json_t *)json_object_get(root, "nodes"), key, v) {
		json_stream_key(&js, key, first, 4);
		json_stream_value(&js, v, 4);
		first = 0;
	}
	json_stream_text(&js, first ? "}" : "\n  }");
	json_stream_text(&js, "\n}");
	assert_int_equal(json_stream_close(&js, &err), 0);
}

static void test_stream_same_bytes(void **state)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct buf whole = BUF_INIT, pieces = BUF_INIT;
	char a[128], b[128];
	size_t n;

	(void)state;
	snprintf(a, sizeof(a), "%s/whole.json", dir);
	snprintf(b, sizeof(b), "%s/pieces.json", dir);
	/* 20,000 results: several megabytes, handed to writeback before the close */
	for (n = 0; n < 4; n++) {
		json_t *root = doc_new(n < 3 ? n : 20000);
		char *dumped = json_dumps(root, JSON_INDENT(2));
		assert_int_equal(json_write_file(root, a, &err), 0);
		stream_doc(root, b);
		read_text(a, &whole);
		read_text(b, &pieces);
		assert_string_equal(whole.s, dumped);
		assert_string_equal(pieces.s, whole.s);
		free(dumped);
		json_decref(root);
	}
	buf_release(&whole);
	buf_release(&pieces);
}

/* A stream that cannot be opened says where; nothing is left behind. */
static void test_stream_open_fails(void **state)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct json_stream js;
	char path[128];

	(void)state;
	snprintf(path, sizeof(path), "%s/plain", dir);
	assert_int_equal(fs_write_file(path, "", 0, &err), 0);
	snprintf(path, sizeof(path), "%s/plain/x.json", dir);
	assert_int_not_equal(json_stream_open(&js, path, &err), 0);
	assert_non_null(strstr(err.msg, "plain"));
}

/* What json_load_members handed over, as "key/item_key=value" lines. */
static int collect(void *ud, const char *key, const char *item_key, json_t *v, int item)
{
	char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

	buf_printf(ud, "%s%s%s%s=%s\n", key, item ? "/" : "", item && item_key ? item_key : "",
		   item && !item_key ? "[]" : "", text);
	free(text);
	json_decref(v);
	return 0;
}

static int load(const char *text, struct buf *got, struct sluice_err *err)
{
	static const char *const split[] = { "nodes", "results", NULL };
	char path[128];

	snprintf(path, sizeof(path), "%s/in.json", dir);
	assert_int_equal(fs_write_file(path, text, strlen(text), err), 0);
	buf_release(got);
	return json_load_members(path, split, collect, got, err);
}

static void test_members(void **state)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct buf got = BUF_INIT;

	(void)state;
	assert_int_equal(load(" {\"meta\": {\"a\": [1, 2]},\n \"nodes\": {\"n1\": {\"x\": \"}\"}, \"n2\": 3},\n"
			      "\"results\": [{\"id\": \"r\\\"1\"}, [], null], \"n\": 1.5, \"nodes2\": {}}\n", &got, &err), 0);
	assert_string_equal(got.s, "meta={\"a\":[1,2]}\n"
			    "nodes={}\n"
			    "nodes/n1={\"x\":\"}\"}\n"
			    "nodes/n2=3\n"
			    "results=[]\n"
			    "results/[]={\"id\":\"r\\\"1\"}\n"
			    "results/[]=[]\n"
			    "results/[]=null\n"
			    "n=1.5\n"
			    "nodes2={}\n");
	/* a member to split that holds no list or object is handed over whole */
	assert_int_equal(load("{\"nodes\": null, \"results\": {}}", &got, &err), 0);
	assert_string_equal(got.s, "nodes=null\nresults={}\n");
	assert_int_equal(load("{}", &got, &err), 0);
	assert_int_equal(got.len, 0);
	buf_release(&got);
}

/* Not one JSON object: the file, line and column of the fault. */
static void test_members_errors(void **state)
{
	static const struct {
		const char *text, *where;
	} cases[] = {
		{ "[1]", "in.json:1:1: '{' expected" },
		{ "{\"a\": 1,\n \"nodes\": {\"n\": 1 \"m\": 2}}", "in.json:2:19: ',' or '}' expected" },
		{ "{\"a\": 1,\n \"results\": [1, 2", "in.json:2:18: ',' or ']' expected" },
		{ "{\"a\": 1,\n \"results\": [1, tru]}", "in.json:2:" },
		{ "{\"a\": 1} x", "in.json:1:10: end of file expected" },
		{ "{\"a\" 1}", "in.json:1:6: ':' expected" },
		{ "{1: 1}", "in.json:1:2: string or '}' expected" },
		{ "", "in.json:1:1: '{' expected" },
	};
	struct buf got = BUF_INIT;
	struct sluice_err err = SLUICE_ERR_INIT;
	char path[128];
	size_t i;

	(void)state;
	/* a NUL byte is neither white space nor the end */
	snprintf(path, sizeof(path), "%s/nul.json", dir);
	assert_int_equal(fs_write_file(path, "{\"a\": 1}\0 ", 10, &err), 0);
	assert_int_equal(json_load_members(path, NULL, collect, &got, &err), SLUICE_EUSAGE);
	assert_non_null(strstr(err.msg, "nul.json:1:9: end of file expected"));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err = (struct sluice_err)SLUICE_ERR_INIT;
		assert_int_equal(load(cases[i].text, &got, &err), SLUICE_EUSAGE);
		if (!strstr(err.msg, cases[i].where))
			fail_msg("%s: got '%s', want '%s'", cases[i].text, err.msg, cases[i].where);
	}
	buf_release(&got);
}

/* json_string_dump writes what Jansson's dump does: every byte below 0x80, NUL, UTF-8, an empty string. */
static void test_string_dump(void **state)
{
	static const char *const texts[] = { "", "select 1\n  from \"t\" -- \\ '<x>' /", "caf\xc3\xa9 \xe2\x80\xa8 \xf0\x9f\x90\x9f",
					     "\x7f end" };
	char all[128];
	struct buf got = BUF_INIT;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(all); i++)
		all[i] = (char)i;
	for (i = 0; i <= sizeof(texts) / sizeof(texts[0]); i++) {
		const char *t = i < sizeof(texts) / sizeof(texts[0]) ? texts[i] : all;
		size_t len = t == all ? sizeof(all) : strlen(t);
		json_t *j = json_stringn(t, len);
		char *want;
		assert_non_null(j);
		want = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
		buf_reset(&got);
		json_string_dump(&got, t, len);
		assert_int_equal(got.len, strlen(want));
		assert_memory_equal(got.s, want, got.len);
		free(want);
		json_decref(j);
	}
	buf_release(&got);
}

/*
 * json_dump_buf writes what json_dumps does, compact and indented, and with
 * a margin what json_stream's indentation made of it.
 */
static void test_dump_buf(void **state)
{
	static const char doc[] =
		"{\"a\": [], \"b\": {}, \"c\": [1, -2, 9223372036854775807, 0.5, 1.0, -0.0, 1e20, 8.1e-06, "
		"3.141592653589793, 1e-300, 123456789012345678.0], \"d\": {\"e\": [[[]], [{}], {\"f\": null}], "
		"\"g\": true, \"h\": false}, \"s\\\"k\\n\": \"v\\u0001\\u001f <tag> caf\\u00e9 \\ud83d\\udc1f /\", "
		"\"z\": [\"\", 0, {\"y\": [1, [2, [3]]]}]}";
	static const int indents[] = { 0, 2, 4 };
	json_error_t je;
	json_t *roots[3];
	struct buf got = BUF_INIT, want = BUF_INIT;
	size_t i, r, k;

	(void)state;
	roots[0] = json_loads(doc, 0, &je);
	assert_non_null(roots[0]);
	roots[1] = json_string("top level");
	roots[2] = json_real(0.1);
	for (r = 0; r < 3; r++)
		for (i = 0; i < sizeof(indents) / sizeof(indents[0]); i++) {
			size_t flags = JSON_ENCODE_ANY | (indents[i] ? JSON_INDENT(indents[i]) : JSON_COMPACT);
			char *text = json_dumps(roots[r], flags);
			assert_non_null(text);
			buf_reset(&got);
			assert_int_equal(json_dump_buf(roots[r], indents[i], 0, &got), 0);
			assert_string_equal(got.s, text);
			/* a margin: every new line 6 spaces further in */
			buf_reset(&want);
			for (k = 0; text[k]; k++) {
				buf_addc(&want, text[k]);
				if (text[k] == '\n')
					buf_puts(&want, "      ");
			}
			buf_reset(&got);
			assert_int_equal(json_dump_buf(roots[r], indents[i], 6, &got), 0);
			assert_string_equal(got.s, want.s);
			free(text);
		}
	for (r = 0; r < 3; r++)
		json_decref(roots[r]);
	buf_release(&got);
	buf_release(&want);
}

/* The file's mtime; then set to 1 when reset. */
static time_t mtime_of(const char *path, int reset)
{
	struct timeval old[2] = { { 1, 0 }, { 1, 0 } };
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	if (reset)
		assert_int_equal(utimes(path, old), 0);
	return st.st_mtime;
}

/* fs_write_if_changed (util/fs.c) leaves a file with the same bytes alone, and rewrites any other. */
static void test_write_if_changed(void **state)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct buf text = BUF_INIT, got = BUF_INIT;
	char path[128];
	size_t i;

	(void)state;
	snprintf(path, sizeof(path), "%s/same.sql", dir);
	for (i = 0; i < 100000; i++)   /* more than one read's worth */
		buf_addc(&text, (char)('a' + i % 26));
	assert_int_equal(fs_write_if_changed(path, text.s, text.len, &err), 0);
	mtime_of(path, 1);
	assert_int_equal(fs_write_if_changed(path, text.s, text.len, &err), 0);
	assert_int_equal(mtime_of(path, 0), 1);
	/* the last byte differs, then a byte more, then a byte less */
	text.s[text.len - 1] = '!';
	assert_int_equal(fs_write_if_changed(path, text.s, text.len, &err), 0);
	assert_true(mtime_of(path, 1) > 1);
	buf_addc(&text, 'x');
	assert_int_equal(fs_write_if_changed(path, text.s, text.len, &err), 0);
	assert_true(mtime_of(path, 1) > 1);
	assert_int_equal(fs_write_if_changed(path, text.s, text.len - 2, &err), 0);
	assert_true(mtime_of(path, 1) > 1);
	assert_int_equal(fs_read_file(path, &got, &err), 0);
	assert_int_equal(got.len, text.len - 2);
	assert_memory_equal(got.s, text.s, got.len);
	/* empty, twice */
	assert_int_equal(fs_write_if_changed(path, "", 0, &err), 0);
	mtime_of(path, 1);
	assert_int_equal(fs_write_if_changed(path, "", 0, &err), 0);
	assert_int_equal(mtime_of(path, 0), 1);
	buf_release(&text);
	buf_release(&got);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stream_same_bytes),
		cmocka_unit_test(test_stream_open_fails),
		cmocka_unit_test(test_members),
		cmocka_unit_test(test_members_errors),
		cmocka_unit_test(test_string_dump),
		cmocka_unit_test(test_dump_buf),
		cmocka_unit_test(test_write_if_changed),
	};
	int rc;

	if (!mkdtemp(dir))
		return 1;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	{
		char cmd[256];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd)) {
		}
	}
	return rc;
}
