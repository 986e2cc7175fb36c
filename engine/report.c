/*
 * report.c: target/report.html from the artifacts in target/, and its
 * publication (see report.h and docs/report.md).
 *
 * The C side only gathers: it reads the artifacts, joins each node's
 * manifest entry with its result, its statements and its log tail, and
 * embeds that as one compact JSON document in the page; the page's
 * JavaScript lays out and draws everything, so the file stays small.
 * Jansson: json_object_set_new steals, json_object_get borrows.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>
#include "../connectors/objstore.h"
#include "json.h"
#include "report.h"
#include "util/fs.h"
#include "util/xalloc.h"

/* engine/report-page.html, made into a C string by the Makefile. */
extern const char report_page[];

#define REPORT_DATA_MARK "<!--SLUICE-DATA-->"
#define REPORT_TEXT_MAX (64 * 1024)   /* statements shown per node */
#define REPORT_LOG_MAX (8 * 1024)     /* the tail of a shell model's log */

/* The artifact at path, or NULL when it is missing (or unreadable: required says whether that is an error). */
static json_t *load_artifact(const char *dir, const char *name, int required, struct sluice_err *err)
{
	char path[PATH_MAX];
	json_error_t je;
	json_t *j;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (!fs_exists(path)) {
		if (required)
			err_set(err, SLUICE_EUSAGE, "%s: no such file (run sluice run, build or test first)", path);
		return NULL;
	}
	j = json_load_file(path, 0, &je);
	if (!j && required)
		err_set(err, SLUICE_EUSAGE, "%s:%d:%d: %s", path, je.line, je.column, je.text);
	return j;
}

/* "2026-12-02T13:27:27.123456Z" -> epoch seconds; 0 when unreadable. */
static double iso_seconds(const char *s)
{
	struct tm tm = { 0 };
	double frac = 0;
	int n = 0;

	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
			 &tm.tm_min, &tm.tm_sec, &n) != 6)
		return 0;
	if (s[n] == '.')
		frac = strtod(s + n, NULL);
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (double)timegm(&tm) + frac;
}

/*
 * The file's text as a JSON string, at most max bytes (its tail when
 * tail, else its head), or NULL when there is no such file.
 */
static json_t *file_text_new(const char *path, size_t max, int tail)
{
	struct buf b = BUF_INIT;
	struct sluice_err e = SLUICE_ERR_INIT;
	json_t *s = NULL;
	size_t off = 0, len;

	if (!fs_exists(path) || fs_read_file(path, &b, &e))
		goto out;
	len = b.len;
	if (len > max) {
		if (tail) {
			off = len - max;
			while (off < len && b.s[off - 1] != '\n')   /* start at a whole line */
				off++;
		}
		len = tail ? len - off : max;
	}
	/* a log or a cut may hold bytes that are not UTF-8, which JSON cannot carry */
	if (!(s = json_stringn(b.s + off, len))) {
		size_t k;
		for (k = off; k < off + len; k++)
			if ((unsigned char)b.s[k] >= 0x80)
				b.s[k] = '?';
		s = json_stringn(b.s + off, len);
	}
out:
	buf_release(&b);
	return s;
}

static void set_if(json_t *o, const char *key, json_t *v)
{
	if (v && !json_is_null(v))
		json_object_set(o, key, v);
}

/* The node's start and end within the run, from timing[]'s execute (else compile) entry. */
static void add_times(json_t *o, const json_t *timing, double t0)
{
	const json_t *t, *best = NULL;
	size_t i;

	json_array_foreach(timing, i, t) {
		const char *name = json_string_value(json_object_get(t, "name"));

		/* run_results.json may come from elsewhere: an entry may lack its name */
		if (!best || (name && !strcmp(name, "execute")))
			best = t;
	}
	if (!best)
		return;
	json_object_set_new(o, "b", json_real(iso_seconds(json_string_value(json_object_get(best, "started_at"))) - t0));
	json_object_set_new(o, "e", json_real(iso_seconds(json_string_value(json_object_get(best, "completed_at"))) - t0));
}

/* t0 lowered to the earliest start in the result's timing, if earlier: time 0 of the timeline. */
static void run_start(const json_t *result, double *t0)
{
	const json_t *t;
	double v;
	size_t k;

	json_array_foreach(json_object_get(result, "timing"), k, t) {
		v = iso_seconds(json_string_value(json_object_get(t, "started_at")));
		if (v && (!*t0 || v < *t0))
			*t0 = v;
	}
}

/* What the node sent: target/run/<path> for models, the compiled test for tests. */
static json_t *statements_new(const char *target_dir, const json_t *mn)
{
	const char *path = json_string_value(json_object_get(mn, "path"));
	const char *type = json_string_value(json_object_get(mn, "resource_type"));
	char f[PATH_MAX];
	json_t *s;

	if (!path || !type)
		return NULL;
	if (!strcmp(type, "model")) {
		snprintf(f, sizeof(f), "%s/run/%s", target_dir, path);
		return file_text_new(f, REPORT_TEXT_MAX, 0);
	}
	snprintf(f, sizeof(f), "%s/compiled/%s/%s.sql", target_dir, path,
		 json_string_value(json_object_get(mn, "name")));
	if ((s = file_text_new(f, REPORT_TEXT_MAX, 0)))
		return s;
	snprintf(f, sizeof(f), "%s/compiled/%s", target_dir, path);
	return file_text_new(f, REPORT_TEXT_MAX, 0);
}

/* The page's short key for an artifact's key (docs/report.md): a page may hold 10,000 nodes. */
struct key_map {
	const char *to, *from;
};

static const struct key_map from_manifest[] = {
	{ "id", "unique_id" }, { "n", "name" }, { "k", "resource_type" }, { "m", "materialized" },
	{ "p", "path" }, { "src", "source_name" }, { "rel", "relation_name" }, { NULL, NULL },
};

static const struct key_map from_result[] = {
	{ "s", "status" }, { "r", "reasons" }, { "t", "execution_time" }, { "msg", "message" },
	{ "sq", "sqlstate" }, { "fp", "fingerprint" }, { "f", "failures" }, { "v", "validations" },
	{ NULL, NULL },
};

static void copy_keys(json_t *o, const json_t *from, const struct key_map *k)
{
	for (; k->to; k++)
		set_if(o, k->to, json_object_get(from, k->from));
}

/*
 * The page's keys a node takes from its result, with its times still
 * absolute: node_new makes them relative to the run's start, which is
 * known only once every result is read.
 */
static json_t *result_part_new(const json_t *res)
{
	json_t *o = json_object(), *v;

	copy_keys(o, res, from_result);
	set_if(o, "rows", json_object_get(json_object_get(res, "adapter_response"), "rows_affected"));
	if (json_array_size(json_object_get(res, "samples")))
		json_object_set(o, "smp", json_object_get(res, "samples"));
	if (json_is_true(json_object_get(res, "combined_scan")))
		json_object_set_new(o, "cs", json_true());
	if ((v = json_object_get(res, "thread_id")) && json_is_string(v))
		json_object_set_new(o, "th", json_integer(atoi(json_string_value(v) + strcspn(json_string_value(v), "0123456789"))));
	add_times(o, json_object_get(res, "timing"), 0);
	return o;
}

/* A time of result_part_new's made relative to t0. */
static void shift_time(json_t *o, const char *key, double t0)
{
	json_t *v = json_object_get(o, key);

	if (v)
		json_object_set_new(o, key, json_real(json_real_value(v) - t0));
}

/*
 * One node of the page: short keys, since a page may hold 10,000 of them
 * (docs/report.md). part: result_part_new's of its result, or NULL.
 */
static json_t *node_new(const char *target_dir, const json_t *mn, const json_t *part, const json_t *index, double t0)
{
	json_t *o = json_object(), *deps = json_array(), *v;
	const json_t *d;
	const char *name = json_string_value(json_object_get(mn, "name"));
	char f[PATH_MAX];
	size_t i;

	copy_keys(o, mn, from_manifest);
	if (json_array_size(json_object_get(mn, "tags")))
		json_object_set(o, "g", json_object_get(mn, "tags"));
	json_array_foreach(json_object_get(json_object_get(mn, "depends_on"), "nodes"), i, d)
		if ((v = json_object_get(index, json_string_value(d))))
			json_array_append(deps, v);
	json_object_set_new(o, "d", deps);
	if ((v = json_object_get(index, json_string_value(json_object_get(mn, "attached_node")) ?
					 json_string_value(json_object_get(mn, "attached_node")) : "")))
		json_object_set(o, "a", v);
	if (part) {
		json_object_update(o, (json_t *)part);
		shift_time(o, "b", t0);
		shift_time(o, "e", t0);
		if ((v = statements_new(target_dir, mn)))
			json_object_set_new(o, "sql", v);
		if (json_is_string(json_object_get(mn, "materialized")) &&
		    !strcmp(json_string_value(json_object_get(mn, "materialized")), "shell") && name) {
			snprintf(f, sizeof(f), "%s/logs/%s.log", target_dir, name);
			if ((v = file_text_new(f, REPORT_LOG_MAX, 1)))
				json_object_set_new(o, "log", v);
		}
	}
	return o;
}

/*
 * What the page's nodes are made of: the manifest's entries in order
 * (nodes[] indexes), cut to what the page shows, and the results' parts
 * by unique_id. Both artifacts are read an entry at a time (a 10,000-node
 * manifest is 60 MB as one Jansson tree), and each entry goes once its
 * node is written, so a 10,000-node page is never held whole.
 */
struct report_in {
	char *target_dir;
	json_t *mnodes, *index, *byid;
	json_t *rr_head;               /* run_results.json but its results */
	const char *section;           /* the manifest's section being read */
	size_t section_start;          /* where its entries start in mnodes */
	double t0;
};

struct report_in *report_in_new(const char *target_dir)
{
	struct report_in *in = xcalloc(1, sizeof(*in));

	in->target_dir = xstrdup(target_dir);
	in->mnodes = json_array();
	in->index = json_object();
	in->byid = json_object();
	in->rr_head = json_object();
	return in;
}

/* A manifest entry with only what node_new reads of it. */
static json_t *manifest_part_new(const json_t *mn)
{
	static const char *const more[] = { "tags", "attached_node", NULL };
	json_t *o = json_object(), *deps = json_object_get(json_object_get(mn, "depends_on"), "nodes");
	const struct key_map *k;
	size_t i;

	for (k = from_manifest; k->to; k++)
		set_if(o, k->from, json_object_get(mn, k->from));
	for (i = 0; more[i]; i++)
		set_if(o, more[i], json_object_get(mn, more[i]));
	if (deps)
		json_object_set_new(o, "depends_on", json_pack("{s:O}", "nodes", deps));
	return o;
}

/*
 * json_load_members' fn for manifest.json: every entry of nodes and
 * sources, in order, indexed by unique_id; an id twice in one section
 * keeps its first place and its last entry, as a whole load would.
 */
int report_in_manifest(void *ud, const char *key, const char *id, json_t *mn, int item)
{
	struct report_in *in = ud;
	json_t *at;

	if (item && id && (!strcmp(key, "nodes") || !strcmp(key, "sources"))) {
		if (!in->section || strcmp(in->section, key)) {
			in->section = !strcmp(key, "nodes") ? "nodes" : "sources";
			in->section_start = json_array_size(in->mnodes);
		}
		at = json_object_get(in->index, id);
		if (at && (size_t)json_integer_value(at) >= in->section_start) {
			json_array_set_new(in->mnodes, (size_t)json_integer_value(at), manifest_part_new(mn));
		} else {
			json_object_set_new(in->index, id, json_integer((json_int_t)json_array_size(in->mnodes)));
			json_array_append_new(in->mnodes, manifest_part_new(mn));
		}
	}
	json_decref(mn);
	return 0;
}

/* json_load_members' fn for run_results.json: each result's part by unique_id, the rest as it is. */
int report_in_result(void *ud, const char *key, const char *item_key, json_t *r, int item)
{
	struct report_in *in = ud;
	const char *id = json_string_value(json_object_get(r, "unique_id"));

	if (!item) {
		json_object_set_new(in->rr_head, key, r);
		return 0;
	}
	if (!item_key) {
		run_start(r, &in->t0);
		if (id)
			json_object_set_new(in->byid, id, result_part_new(r));
	}
	json_decref(r);
	return 0;
}

/* Results the manifest does not know (e.g. one written by a newer run) still show. */
static void add_stubs(struct report_in *in)
{
	const char *id;
	json_t *part;

	json_object_foreach(in->byid, id, part)
		if (!json_object_get(in->index, id)) {
			json_t *stub = json_pack("{s:s,s:s,s:s}", "unique_id", id, "name", id, "resource_type", "model");
			json_object_set_new(in->index, id, json_integer((json_int_t)json_array_size(in->mnodes)));
			json_array_append_new(in->mnodes, stub);
		}
}

void report_in_free(struct report_in *in)
{
	if (!in)
		return;
	json_decref(in->mnodes);
	json_decref(in->index);
	json_decref(in->byid);
	json_decref(in->rr_head);
	free(in->target_dir);
	free(in);
}

/* The page's document but its nodes: {meta, sources, history}. */
static json_t *report_head_new(const struct report_in *in, const json_t *rr, const json_t *history)
{
	json_t *head = json_object(), *meta = json_deep_copy(json_object_get(rr, "metadata"));

	if (!meta)
		meta = json_object();
	set_if(meta, "elapsed_time", json_object_get(rr, "elapsed_time"));
	set_if(meta, "args", json_object_get(rr, "args"));
	json_object_set_new(meta, "timeline_start", json_real(in->t0));
	json_object_set_new(head, "meta", meta);
	json_object_set(head, "sources", json_object_get(rr, "sources") ? json_object_get(rr, "sources") : json_null());
	json_object_set(head, "history", history ? json_object_get(history, "runs") : json_null());
	return head;
}

/*
 * The page's JSON, written out: each value is laid out whole in one
 * reused buffer by json_dump_buf (Jansson's dump, with a callback per
 * token and a loop check per object, cost more than the rest of the page
 * at 10,000 nodes), then every '<' becomes \u003c, so no text in the
 * data can end the script.
 */
struct page_out {
	struct fs_atomic f;
	struct buf text;
};

static int page_value(struct page_out *o, const json_t *v)
{
	const char *s, *end, *lt;

	buf_reset(&o->text);
	if (json_dump_buf(v, 0, 0, &o->text))
		return 0;
	s = o->text.s;
	end = s + o->text.len;
	while ((lt = memchr(s, '<', (size_t)(end - s)))) {
		fs_atomic_write(&o->f, s, (size_t)(lt - s));
		fs_atomic_write(&o->f, "\\u003c", 6);
		s = lt + 1;
	}
	fs_atomic_write(&o->f, s, (size_t)(end - s));
	return !o->f.rc;
}

/*
 * The page with the run's data in it, written as it is made: the head's
 * keys, then "nodes", one node at a time, each dropped with what it was
 * made of once written.
 */
static int report_render(const json_t *head, struct report_in *in, const char *path, struct sluice_err *err)
{
	const char *mark = strstr(report_page, REPORT_DATA_MARK);
	static const char open_tag[] = "<script type=\"application/json\" id=\"sluice-data\">";
	const char *key;
	json_t *v;
	struct page_out o = { .text = BUF_INIT };
	size_t i;
	int ok = 1;

	if (fs_atomic_open(&o.f, path, err))
		return o.f.rc;
	fs_atomic_write(&o.f, report_page, (size_t)(mark - report_page));
	fs_atomic_write(&o.f, open_tag, strlen(open_tag));
	fs_atomic_write(&o.f, "{", 1);
	json_object_foreach((json_t *)head, key, v) {
		fs_atomic_write(&o.f, "\"", 1);
		fs_atomic_write(&o.f, key, strlen(key));   /* meta, sources, history */
		fs_atomic_write(&o.f, "\":", 2);
		ok = ok && page_value(&o, v);
		fs_atomic_write(&o.f, ",", 1);
	}
	fs_atomic_write(&o.f, "\"nodes\":[", 9);
	for (i = 0; ok && i < json_array_size(in->mnodes); i++) {
		json_t *mn = json_array_get(in->mnodes, i);
		const char *id = json_string_value(json_object_get(mn, "unique_id"));
		json_t *node = node_new(in->target_dir, mn, json_object_get(in->byid, id), in->index, in->t0);
		if (i)
			fs_atomic_write(&o.f, ",", 1);
		ok = page_value(&o, node);
		json_decref(node);
		if (id)
			json_object_del(in->byid, id);
		json_array_set_new(in->mnodes, i, json_null());
	}
	fs_atomic_write(&o.f, "]}</script>", 11);
	if (!ok && !o.f.rc)
		err_set(err, SLUICE_EIO, "report: cannot serialise the run's data");
	fs_atomic_write(&o.f, mark + strlen(REPORT_DATA_MARK), strlen(mark + strlen(REPORT_DATA_MARK)));
	buf_release(&o.text);
	return fs_atomic_close(&o.f, ok) ? (err->code ? err->code : SLUICE_EIO) : 0;
}

int report_in_write(struct report_in *in, struct sluice_err *err)
{
	json_t *history, *head;
	char path[PATH_MAX];
	int rc;

	add_stubs(in);
	history = load_artifact(in->target_dir, "history.json", 0, err);
	head = report_head_new(in, in->rr_head, history);
	json_decref(history);
	snprintf(path, sizeof(path), "%s/report.html", in->target_dir);
	rc = report_render(head, in, path, err);
	json_decref(head);
	return rc;
}

int report_write(const char *target_dir, struct sluice_err *err)
{
	static const char *const manifest_split[] = { "nodes", "sources", "parent_map", "child_map", NULL };
	static const char *const results_split[] = { "results", NULL };
	struct sluice_err merr = SLUICE_ERR_INIT;
	struct report_in *in;
	char path[PATH_MAX];
	int rc;

	snprintf(path, sizeof(path), "%s/run_results.json", target_dir);
	if (!fs_exists(path)) {
		err_set(err, SLUICE_EUSAGE, "%s: no such file (run sluice run, build or test first)", path);
		return err_prefix(err, "report");
	}
	in = report_in_new(target_dir);
	/* an unreadable manifest is as good as none: the results alone still show */
	snprintf(path, sizeof(path), "%s/manifest.json", target_dir);
	if (fs_exists(path) && json_load_members(path, manifest_split, report_in_manifest, in, &merr)) {
		json_array_clear(in->mnodes);
		json_object_clear(in->index);
	}
	snprintf(path, sizeof(path), "%s/run_results.json", target_dir);
	if (json_load_members(path, results_split, report_in_result, in, err)) {
		report_in_free(in);
		return err_prefix(err, "report");
	}
	rc = report_in_write(in, err);
	report_in_free(in);
	return rc;
}

/* ---- publishing ---- */

static void html_escape(struct buf *out, const char *s)
{
	for (; s && *s; s++)
		switch (*s) {
		case '<': buf_puts(out, "&lt;"); break;
		case '>': buf_puts(out, "&gt;"); break;
		case '&': buf_puts(out, "&amp;"); break;
		case '"': buf_puts(out, "&quot;"); break;
		case '\'': buf_puts(out, "&#39;"); break;
		default: buf_addc(out, *s);
		}
}

/* A copy of target_dir/name at <id>/name. */
static int put_file(struct objstore *st, const char *target_dir, const char *id, const char *name,
		    struct sluice_err *err)
{
	struct buf b = BUF_INIT, key = BUF_INIT;
	char path[PATH_MAX];
	int rc;

	snprintf(path, sizeof(path), "%s/%s", target_dir, name);
	buf_printf(&key, "%s/%s", id, name);
	rc = fs_read_file(path, &b, err);
	if (!rc)
		rc = st->ops->put(st, key.s, b.s, b.len, err);
	buf_release(&b);
	buf_release(&key);
	return rc;
}

static int collect(void *ud, const void *data, size_t len, struct sluice_err *err)
{
	(void)err;
	buf_add(ud, data, len);
	return 0;
}

/* The entry index.json keeps for this run. */
static json_t *index_entry_new(const json_t *rr)
{
	const json_t *md = json_object_get(rr, "metadata"), *r;
	json_t *e = json_object();
	int built = 0, reused = 0, failed = 0;
	const char *s;
	size_t i;

	json_array_foreach(json_object_get(rr, "results"), i, r) {
		s = json_string_value(json_object_get(r, "status"));
		if (!s)
			continue;
		built += !strcmp(s, "success") || !strcmp(s, "pass");
		reused += !strcmp(s, "reused");
		failed += !strcmp(s, "error") || !strcmp(s, "fail");
	}
	json_object_set(e, "invocation_id", json_object_get(md, "invocation_id"));
	set_if(e, "started_at", json_object_get(md, "started_at"));
	set_if(e, "generated_at", json_object_get(md, "generated_at"));
	set_if(e, "user", json_object_get(md, "user"));
	set_if(e, "target", json_object_get(md, "target"));
	set_if(e, "command", json_object_get(json_object_get(rr, "args"), "which"));
	set_if(e, "elapsed_time", json_object_get(rr, "elapsed_time"));
	set_if(e, "exit_status", json_object_get(md, "exit_status"));
	json_object_set_new(e, "status", json_string(failed ? "failed" : "ok"));
	json_object_set_new(e, "built", json_integer(built));
	json_object_set_new(e, "reused", json_integer(reused));
	json_object_set_new(e, "failed", json_integer(failed));
	json_object_set_new(e, "report", json_sprintf("%s/report.html", json_string_value(json_object_get(md, "invocation_id"))));
	return e;
}

static void index_html(const json_t *runs, const char *project, struct buf *out)
{
	const json_t *r;
	char n[64];
	size_t i;

	buf_puts(out, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
		 "<meta name=\"viewport\" content=\"width=device-width\"><title>sluice runs: ");
	html_escape(out, project);
	buf_puts(out, "</title><style>body{font:14px system-ui,sans-serif;margin:2em;color:#222}"
		 "table{border-collapse:collapse}td,th{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:left}"
		 ".failed{color:#b00020;font-weight:600}</style></head><body>\n<h1>sluice runs: ");
	html_escape(out, project);
	buf_puts(out, "</h1>\n");
	if (json_array_size(runs)) {
		buf_puts(out, "<p><a id=\"latest\" href=\"");
		html_escape(out, json_string_value(json_object_get(json_array_get(runs, 0), "report")));
		buf_puts(out, "\">latest</a></p>\n");
	}
	buf_puts(out, "<table><thead><tr><th>started</th><th>run</th><th>command</th><th>target</th><th>user</th>"
		 "<th>status</th><th>built</th><th>reused</th><th>failed</th><th>seconds</th></tr></thead><tbody>\n");
	json_array_foreach(runs, i, r) {
		buf_puts(out, "<tr class=\"run\"><td>");
		html_escape(out, json_string_value(json_object_get(r, "started_at")) ?
				 json_string_value(json_object_get(r, "started_at")) :
				 json_string_value(json_object_get(r, "generated_at")));
		buf_puts(out, "</td><td><a href=\"");
		html_escape(out, json_string_value(json_object_get(r, "report")));
		buf_puts(out, "\">");
		html_escape(out, json_string_value(json_object_get(r, "invocation_id")));
		buf_puts(out, "</a></td><td>");
		html_escape(out, json_string_value(json_object_get(r, "command")));
		buf_puts(out, "</td><td>");
		html_escape(out, json_string_value(json_object_get(r, "target")));
		buf_puts(out, "</td><td>");
		html_escape(out, json_string_value(json_object_get(r, "user")));
		buf_printf(out, "</td><td class=\"%s\">", !strcmp(json_string_value(json_object_get(r, "status")) ?
								      json_string_value(json_object_get(r, "status")) : "", "failed") ? "failed" : "ok");
		html_escape(out, json_string_value(json_object_get(r, "status")));
		snprintf(n, sizeof(n), "%.1f", json_number_value(json_object_get(r, "elapsed_time")));
		buf_printf(out, "</td><td>%lld</td><td>%lld</td><td>%lld</td><td>%s</td></tr>\n",
			   (long long)json_integer_value(json_object_get(r, "built")),
			   (long long)json_integer_value(json_object_get(r, "reused")),
			   (long long)json_integer_value(json_object_get(r, "failed")), n);
	}
	buf_puts(out, "</tbody></table>\n</body></html>\n");
}

/*
 * Add entry to index.json (newest first) and rewrite index.html. Where the
 * store can write conditionally, a run that publishes at the same time
 * makes this one read again rather than lose its entry.
 */
static int update_index(struct objstore *st, const json_t *entry, const char *project, struct sluice_err *err)
{
	int attempt, rc = 0;

	for (attempt = 0; attempt < 5; attempt++) {
		struct objstore_info info = { 0 };
		struct buf old = BUF_INIT, html = BUF_INIT;
		json_t *idx = NULL, *runs = json_array(), *r;
		const char *id = json_string_value(json_object_get(entry, "invocation_id"));
		char *text;
		size_t i;

		if (!(rc = st->ops->head(st, "index.json", &info, err)) && info.exists)
			rc = st->ops->get(st, "index.json", collect, &old, err);
		if (!rc && info.exists)
			idx = json_loadb(old.s, old.len, 0, NULL);
		json_array_append(runs, (json_t *)entry);
		json_array_foreach(json_object_get(idx, "runs"), i, r)
			if (json_is_object(r) && json_string_value(json_object_get(r, "invocation_id")) &&
			    strcmp(json_string_value(json_object_get(r, "invocation_id")), id ? id : ""))
				json_array_append(runs, r);
		json_decref(idx);
		idx = json_pack("{s:o}", "runs", runs);
		text = json_dumps(idx, JSON_INDENT(2));
		if (!rc && st->ops->put_if)
			rc = st->ops->put_if(st, "index.json", text, strlen(text), info.etag, !info.exists, NULL, err);
		else if (!rc)
			rc = st->ops->put(st, "index.json", text, strlen(text), err);
		if (!rc) {
			index_html(runs, project, &html);
			rc = st->ops->put(st, "index.html", html.s, html.len, err);
		}
		free(text);
		json_decref(idx);
		buf_release(&old);
		buf_release(&html);
		if (rc != SLUICE_ECONFLICT)
			break;
		*err = (struct sluice_err)SLUICE_ERR_INIT;
	}
	return rc;
}

/* dest as an object-store URL: s3:// as it is, a directory as file:///absolute. */
static void dest_url(const char *dest, const char *project_dir, struct buf *url)
{
	if (!strncmp(dest, "s3://", 5) || !strncmp(dest, "file://", 7))
		buf_puts(url, dest);
	else if (dest[0] == '/')
		buf_printf(url, "file://%s", dest);
	else
		buf_printf(url, "file://%s/%s", project_dir, dest);
	while (url->len > 1 && url->s[url->len - 1] == '/')
		url->s[--url->len] = '\0';
}

int report_publish(const char *target_dir, const char *dest, const char *project_dir, const struct val *s3,
		   struct buf *where, struct sluice_err *err)
{
	static const char *const files[] = { "report.html", "run_results.json", "manifest.json" };
	struct objstore *st = NULL;
	struct buf url = BUF_INIT;
	json_t *rr, *entry = NULL;
	const char *id, *project;
	size_t i;
	int rc;

	dest_url(dest, project_dir, &url);
	if (!(rr = load_artifact(target_dir, "run_results.json", 1, err))) {
		rc = err->code;
		goto out;
	}
	id = json_string_value(json_object_get(json_object_get(rr, "metadata"), "invocation_id"));
	project = json_string_value(json_object_get(json_object_get(rr, "metadata"), "project_name"));
	if (!id || !*id || strchr(id, '/')) {
		rc = err_set(err, SLUICE_EUSAGE, "run_results.json has no usable invocation_id");
		goto out;
	}
	if ((rc = objstore_open(url.s, s3, &st, err)))
		goto out;
	for (i = 0; !rc && i < sizeof(files) / sizeof(files[0]); i++)
		rc = put_file(st, target_dir, id, files[i], err);
	if (!rc) {
		entry = index_entry_new(rr);
		rc = update_index(st, entry, project ? project : "", err);
	}
	if (!rc)
		buf_printf(where, "%s/%s/report.html", url.s, id);
out:
	if (rc)
		err_prefix(err, "publishing the report to %s", url.s);
	objstore_close(st);
	json_decref(entry);
	json_decref(rr);
	buf_release(&url);
	return rc;
}
