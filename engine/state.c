/*
 * state.c: the state interface the engine sees (state.h), over one backend
 * chosen by sluice.yml's `state:`. What is common lives here: choosing the
 * backend, turning records into JSON text, waiting for the lock and
 * wording the message about its holder. How records are kept is in
 * state-local.c (files under .sluice/state/), state-warehouse.c (tables
 * in sluice_meta) and state-s3.c (objects in a bucket); none polls, and
 * none knows the others exist.
 */
#define SLUICE_STATE_BACKEND
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "json.h"
#include "state.h"
#include "util/clock.h"
#include "util/xalloc.h"

/* The lock is polled this often while a run waits for it. */
#define STATE_LOCK_POLL_MS 100

/*
 * Specs, matched exactly or (prefix) by their start. A backend that is
 * known but not built has be == NULL and says why; building it is a
 * matter of pointing its line at its vtable.
 */
static const struct {
	const char *spec;
	int prefix;
	const struct state_backend *be;
	const char *missing;
} backends[] = {
	{ "local", 0, &state_local, NULL },
	{ "warehouse", 0, &state_warehouse, NULL },
	{ "s3://", 1, &state_s3, NULL },
};

void state_base_peer(struct state *peer, const struct state *st, const char *target)
{
	*peer = *st;
	peer->target = (char *)target;
	peer->locked = 0;
}

void state_base_init(struct state *st, const struct state_backend *be, const struct state_opts *o)
{
	char host[256];
	const char *user = o->user && *o->user ? o->user : getenv("USER");

	if (gethostname(host, sizeof(host)) < 0)
		snprintf(host, sizeof(host), "unknown");
	host[sizeof(host) - 1] = '\0';
	st->be = be;
	st->project = xstrdup(o->project);
	st->target = xstrdup(o->target);
	st->user = xstrdup(user && *user ? user : "unknown");
	st->invocation_id = xstrdup(o->invocation_id ? o->invocation_id : "");
	st->host = xstrdup(host);
	st->locked = 0;
}

void state_base_release(struct state *st)
{
	free(st->project);
	free(st->target);
	free(st->user);
	free(st->invocation_id);
	free(st->host);
}

void state_holder_text(struct buf *b, const char *user, long long pid, const char *host,
		       const char *invocation_id)
{
	buf_printf(b, "%s (pid %lld on host %s", user, pid, host);
	if (invocation_id && *invocation_id)
		buf_printf(b, ", run %s", invocation_id);
	buf_addc(b, ')');
}

void state_now_utc(char out[32], int sql)
{
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(out, 32, sql ? "%Y-%m-%d %H:%M:%S" : "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int state_open(struct state **out, const struct state_opts *o, struct sluice_err *err)
{
	const char *spec = o->spec && *o->spec ? o->spec : "local";
	size_t i;

	*out = NULL;
	if (!o->project || !*o->project || !o->target || !*o->target || !o->project_dir)
		return err_set(err, SLUICE_EUSAGE, "state: a project name, a target and a project directory are needed");
	for (i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
		size_t n = strlen(backends[i].spec);
		if (backends[i].prefix ? strncmp(spec, backends[i].spec, n) : strcmp(spec, backends[i].spec))
			continue;
		if (!backends[i].be)
			return err_set(err, SLUICE_ENOTSUP, "state: %s %s", backends[i].spec, backends[i].missing);
		return backends[i].be->open(o, out, err);
	}
	return err_set(err, SLUICE_EUSAGE,
		       "sluice.yml: unknown state backend '%s' (known: local, warehouse, s3://bucket/prefix/)", spec);
}

/* A SIGINT or SIGTERM waits, held (main.c), for the executor: a wait for the lock gives up at once. */
static int stop_requested(void)
{
	sigset_t pending;

	return !sigpending(&pending) && (sigismember(&pending, SIGINT) || sigismember(&pending, SIGTERM));
}

int state_lock(struct state *st, int wait_seconds, struct sluice_err *err)
{
	double deadline = clock_monotonic() + (wait_seconds > 0 ? wait_seconds : 0);
	struct buf holder = BUF_INIT, since = BUF_INIT;
	struct sluice_err attempt = SLUICE_ERR_INIT;   /* err is left alone on success */
	int rc;

	if (st->locked)
		return 0;
	for (;;) {
		buf_reset(&holder);
		buf_reset(&since);
		rc = st->be->lock(st, &holder, &since, &attempt);
		if (rc != SLUICE_ELOCK || wait_seconds < 0 || clock_monotonic() >= deadline)
			break;
		if (stop_requested()) {
			buf_release(&holder);
			buf_release(&since);
			return err_set(err, SLUICE_ECANCEL, "interrupted while waiting for the state lock");
		}
		sleep_ms(STATE_LOCK_POLL_MS);
	}
	if (!rc) {
		st->locked = 1;
	} else if (rc != SLUICE_ELOCK) {
		if (err)
			*err = attempt;
	} else {
		struct buf m = BUF_INIT;

		buf_printf(&m, "state is locked by %s", holder.len ? holder.s : "another run (holder not recorded)");
		if (since.len)
			buf_printf(&m, " since %s", since.s);
		if (wait_seconds < 0)
			buf_puts(&m, "; wait with --wait-lock SECONDS");
		else
			buf_printf(&m, "; still locked after waiting %d s (--wait-lock %d)", wait_seconds, wait_seconds);
		err_set(err, SLUICE_ELOCK, "%s", m.s);
		buf_release(&m);
	}
	buf_release(&holder);
	buf_release(&since);
	return rc;
}

int state_is_locked(const struct state *st)
{
	return st && st->locked;
}

int state_load(struct state *st, struct arena *a, struct val *records, struct sluice_err *err)
{
	*records = val_dict_new();
	return st->be->load(st, a, records, err);
}

int state_load_target(struct state *st, const char *target, struct arena *a, struct val *records,
		      struct sluice_err *err)
{
	if (!strcmp(target, st->target))
		return state_load(st, a, records, err);
	*records = val_dict_new();
	return st->be->load_target(st, target, a, records, err);
}

int state_put(struct state *st, const char *unique_id, const struct val *record, struct sluice_err *err)
{
	json_t *j;
	char *text;
	int rc;

	if (!st->locked)
		return err_set(err, SLUICE_EUSAGE, "state: record for %s put without holding the state lock (internal error)",
			       unique_id);
	if (record->kind != V_DICT)
		return err_set(err, SLUICE_EUSAGE, "state: record for %s is not a dict (internal error)", unique_id);
	/* Serialised here, outside the backends' locks, so workers encode in parallel. */
	j = json_from_val_new(record);
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!text)
		return err_set(err, SLUICE_EIO, "state: cannot serialise the record for %s", unique_id);
	rc = st->be->put(st, unique_id, text, strlen(text), err);
	free(text);
	return rc;
}

int state_forget(struct state *st, const char *unique_id, struct sluice_err *err)
{
	if (!st->locked)
		return err_set(err, SLUICE_EUSAGE, "state: record for %s forgotten without holding the state lock "
			       "(internal error)", unique_id);
	return st->be->forget(st, unique_id, err);
}

int state_history_put(struct state *st, const struct val *run, struct sluice_err *err)
{
	json_t *j;
	char *text;
	int rc;

	if (!st->be->history_put)
		return err_set(err, SLUICE_ENOTSUP, "state (%s): keeps no history", st->be->name);
	if (!st->locked)
		return err_set(err, SLUICE_EUSAGE, "state (%s): history put without holding the state lock (internal error)",
			       st->be->name);
	j = json_from_val_new(run);
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!text)
		return err_set(err, SLUICE_EIO, "state (%s): cannot serialise the run's history record", st->be->name);
	rc = st->be->history_put(st, text, strlen(text), err);
	free(text);
	return rc;
}

int state_history_load(struct state *st, int n, struct arena *a, struct val *runs, struct sluice_err *err)
{
	json_t *j = json_array();
	int rc = 0;

	if (st->be->history_load && n > 0)
		rc = st->be->history_load(st, n, j, err);
	*runs = rc ? val_list_new() : json_to_val(a, j);
	json_decref(j);
	return rc;
}

int state_finish(struct state *st, struct sluice_err *err)
{
	if (!st->locked)
		return 0;
	return st->be->finish(st, err);
}

void state_close(struct state *st)
{
	if (st)
		st->be->close(st);
}

/* Whether head (a snapshot's members but its records) is one this sluice reads, of st's project and target. */
static int snapshot_check(const struct state *st, const json_t *head, struct buf *why)
{
	const json_t *v = json_object_get(head, "format");
	const char *name;

	if (!json_is_integer(v)) {
		buf_puts(why, "not a sluice state snapshot (no \"format\")");
	} else if (json_integer_value(v) != STATE_SNAPSHOT_FORMAT) {
		buf_printf(why, "state format %lld is not one this sluice reads (%d); use the sluice that wrote it",
			   (long long)json_integer_value(v), STATE_SNAPSHOT_FORMAT);
	} else if (strcmp((name = json_string_value(json_object_get(head, "project"))) ? name : "?", st->project)) {
		buf_printf(why, "holds the state of project '%s', not '%s'", name ? name : "?", st->project);
	} else if (strcmp((name = json_string_value(json_object_get(head, "target"))) ? name : "?", st->target)) {
		buf_printf(why, "holds the state of target '%s', not '%s'", name ? name : "?", st->target);
	} else if (!json_is_object(json_object_get(head, "records"))) {
		buf_puts(why, "\"records\" is not an object");
	} else {
		return 0;
	}
	return -1;
}

int state_snapshot_parse(const struct state *st, const char *text, size_t len, json_t **out, struct buf *why)
{
	json_error_t je;
	json_t *j = json_loadb(text, len, 0, &je);

	*out = NULL;
	if (!j) {
		buf_printf(why, "line %d, column %d: %s", je.line, je.column, je.text);
		return -1;
	}
	if (snapshot_check(st, j, why)) {
		json_decref(j);
		return -1;
	}
	*out = j;
	return 0;
}

struct snapshot_load {
	json_t *head;                  /* the members but the records' entries */
	struct arena *a;
	struct val *records;
	struct strmap names;           /* json_to_val_shared's */
};

static int snapshot_member(void *ud, const char *key, const char *uid, json_t *v, int item)
{
	struct snapshot_load *sl = ud;

	if (!item)
		json_object_set_new(sl->head, key, v);
	else if (!uid)
		json_decref(v);   /* "records" is a list: snapshot_check says so */
	else {
		/* each record is a value as soon as it is read: the file is never one Jansson tree */
		val_dict_append(sl->a, sl->records, arena_strdup(sl->a, uid), json_to_val_shared(sl->a, v, &sl->names));
		json_decref(v);
	}
	return 0;
}

/*
 * A snapshot as state_snapshot_format writes it: the head on the first
 * line, ending in "records":{, then one record a line, then }}. Its
 * records are read by two threads at once, half the lines each, into
 * arenas of their own: a no-op run at 10,000 models waits a quarter of a
 * second for its 9 MB otherwise. Anything else (a snapshot edited by
 * hand, say) is read by the one reader below, which also words the error.
 */
struct snapshot_half {
	pthread_t th;
	const char *s, *end;           /* whole lines */
	struct arena a;
	struct strmap names;           /* json_to_val_shared's */
	struct val records;
	int ok;
};

/* A record's line: "uid":{...} and its comma but for the last; NULL when it is not one. */
static const char *snapshot_line(struct snapshot_half *h, const char *p, const char *eol)
{
	const char *close = p + 1, *q;
	json_error_t je;
	json_t *v;

	while (close < eol && *close != '"' && *close != '\\')
		close++;
	if (*p != '"' || close + 1 >= eol || *close != '"' || close[1] != ':')
		return NULL;   /* an escaped uid goes to the one reader */
	if (!(v = json_loadb(close + 2, (size_t)(eol - close - 2), JSON_DISABLE_EOF_CHECK, &je)))
		return NULL;
	q = close + 2 + je.position;
	if (q < eol && *q == ',')
		q++;
	if (q == eol && json_is_object(v))
		val_dict_append(&h->a, &h->records, arena_strndup(&h->a, p + 1, (size_t)(close - p - 1)),
				json_to_val_shared(&h->a, v, &h->names));
	json_decref(v);
	return q == eol ? eol + 1 : NULL;
}

static void *snapshot_half_main(void *ud)
{
	struct snapshot_half *h = ud;
	const char *p = h->s, *eol;

	while (p < h->end && (eol = memchr(p, '\n', (size_t)(h->end - p))) && (p = snapshot_line(h, p, eol)))
		;
	h->ok = p == h->end;
	return NULL;
}

/* 1 and records filled, or 0 when text is not laid out so (records untouched). */
static int snapshot_load_split(const struct state *st, const char *text, size_t len, struct arena *a,
			       struct val *records)
{
	static const char tail[] = "\"records\":{";
	const char *nl = memchr(text, '\n', len), *end = text + len, *mid;
	struct snapshot_half h[2];
	struct buf head = BUF_INIT, why = BUF_INIT;
	json_t *j;
	size_t i, k;
	int ok;

	while (end > text && (end[-1] == '\n' || end[-1] == ' '))
		end--;
	if (!nl || (size_t)(nl - text) < sizeof(tail) || memcmp(nl - (sizeof(tail) - 1), tail, sizeof(tail) - 1) ||
	    end - nl < 3 || memcmp(end - 3, "\n}}", 3))
		return 0;
	buf_add(&head, text, (size_t)(nl - text));
	buf_puts(&head, "}}");
	j = json_loadb(head.s, head.len, 0, NULL);
	ok = j && !snapshot_check(st, j, &why);
	json_decref(j);
	buf_release(&head);
	buf_release(&why);
	if (!ok)
		return 0;
	end -= 2;   /* after the last record's newline */
	mid = nl + 1 + (size_t)(end - nl - 1) / 2;
	mid = memchr(mid, '\n', (size_t)(end - mid));
	mid = mid ? mid + 1 : end;
	memset(h, 0, sizeof(h));
	h[0].s = nl + 1;
	h[0].end = h[1].s = mid;
	h[1].end = end;
	for (i = 0; i < 2; i++) {
		arena_init(&h[i].a);
		h[i].records = val_dict_new();
	}
	if (pthread_create(&h[1].th, NULL, snapshot_half_main, &h[1])) {
		snapshot_half_main(&h[1]);
		h[1].th = pthread_self();
	}
	snapshot_half_main(&h[0]);
	if (!pthread_equal(h[1].th, pthread_self()))
		pthread_join(h[1].th, NULL);
	ok = h[0].ok && h[1].ok;
	for (i = 0; i < 2; i++) {
		strmap_release(&h[i].names);
		if (!ok) {
			arena_release(&h[i].a);
			continue;
		}
		for (k = 0; k < h[i].records.u.dict.n; k++)
			val_dict_append(a, records, h[i].records.u.dict.keys[k], h[i].records.u.dict.vals[k]);
		arena_adopt(a, &h[i].a);
	}
	return ok;
}

int state_snapshot_load(const struct state *st, const char *text, size_t len, struct arena *a, struct val *records,
			struct buf *why)
{
	static const char *const split[] = { "records", NULL };
	struct sluice_err err = SLUICE_ERR_INIT;
	struct snapshot_load sl;
	int rc = 0;

	if (snapshot_load_split(st, text, len, a, records))
		return 0;
	sl = (struct snapshot_load){ json_object(), a, records, STRMAP_INIT };
	if (json_load_members_text(NULL, text, len, split, snapshot_member, &sl, &err)) {
		buf_puts(why, err.msg);
		rc = -1;
	} else if (snapshot_check(st, sl.head, why)) {
		rc = -1;
	}
	json_decref(sl.head);
	strmap_release(&sl.names);
	return rc;
}

void state_name_part(struct buf *b, const char *name)
{
	const unsigned char *p;

	for (p = (const unsigned char *)name; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    *p == '_' || *p == '-' || (*p == '.' && p != (const unsigned char *)name))
			buf_addc(b, (char)*p);
		else
			buf_printf(b, "%%%02X", *p);
	}
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int state_snapshot_format(const struct state *st, json_t *extra, json_t *recs, const char *what, struct buf *out,
			  struct sluice_err *err)
{
	size_t n = json_object_size(recs), i = 0;
	const char **keys = xmalloc((n ? n : 1) * sizeof(*keys));
	const char *key;
	json_t *head = json_object(), *rec;
	char *text;
	int rc = 0;

	json_object_foreach(recs, key, rec)
		keys[i++] = key;
	qsort(keys, n, sizeof(*keys), cmp_str);
	json_object_set_new(head, "format", json_integer(STATE_SNAPSHOT_FORMAT));
	json_object_set_new(head, "project", json_string(st->project));
	json_object_set_new(head, "target", json_string(st->target));
	if (extra) {
		json_object_update(head, extra);
		json_decref(extra);
	}
	text = json_dumps(head, JSON_COMPACT);
	json_decref(head);
	if (!text) {
		rc = err_set(err, SLUICE_EIO, "%s: cannot serialise the snapshot", what);
		goto out;
	}
	buf_add(out, text, strlen(text) - 1);       /* reopen the object */
	buf_puts(out, ",\"records\":{\n");
	free(text);
	for (i = 0; i < n; i++) {
		json_t *jk = json_string(keys[i]);
		char *k = json_dumps(jk, JSON_ENCODE_ANY);
		char *r = json_dumps(json_object_get(recs, keys[i]), JSON_COMPACT);

		json_decref(jk);
		if (k && r)
			buf_printf(out, "%s:%s%s\n", k, r, i + 1 < n ? "," : "");
		else
			rc = err_set(err, SLUICE_EIO, "%s: cannot serialise the record for %s", what, keys[i]);
		free(k);
		free(r);
		if (rc)
			goto out;
	}
	buf_puts(out, "}}\n");
out:
	free(keys);
	return rc;
}
