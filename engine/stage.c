/*
 * stage.c: unloads and loads through object storage (see stage.h).
 *
 * Bytes move between a push-style side (COPY TO STDOUT, GetObject) and a
 * pull-style side (a streamed PutObject, COPY FROM STDIN) through a pipe
 * and one helper thread, so memory stays at a pipe buffer plus whatever
 * one part upload holds, whatever the table's size.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>
#include "audit.h"
#include "json.h"
#include "conn.h"
#include "materialize.h"
#include "pgcopy.h"
#include "stage.h"
#include "util/hash.h"
#include "util/xalloc.h"

#define STAGE_DEFAULT_PART (64LL * 1024 * 1024)
#define STAGE_MANIFEST_MAX (64u * 1024 * 1024)
#define ZBUF 65536
/* A table is worth one more unload stream per this much of it on disk. */
#define STAGE_STREAM_MIN (8LL * 1024 * 1024)

/* ---- a pipe with a helper thread ---- */

struct pump {
	int fd[2];
	pthread_t th;
	int started;
	/*
	 * Set by one thread, read by the other while both run: only through
	 * __atomic builtins (volatile orders nothing between threads).
	 */
	int aborted;                   /* the reader must fail, not see end of data */
	int failed;                    /* the thread failed: the writer should stop */
	struct sluice_err err;         /* the thread's */
	int rc;
	/* pull side (put_stream or load) */
	struct objstore *store;
	const char *key;
	long long size_hint;           /* bytes the part will likely hold, or -1 */
};

static int pump_open(struct pump *p)
{
	memset(p, 0, sizeof(*p));
	if (pipe2(p->fd, O_CLOEXEC) < 0)
		return -1;
	return 0;
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *s = data;

	while (len) {
		ssize_t n = write(fd, s, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

/* sluice_read_fn over the pipe's read end. */
static ssize_t pump_read(void *ud, void *buf, size_t cap, struct sluice_err *err)
{
	struct pump *p = ud;
	ssize_t n;

	do
		n = read(p->fd[0], buf, cap);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return err_set(err, SLUICE_EIO, "stage pipe: %s", strerror(errno));
	if (n == 0 && __atomic_load_n(&p->aborted, __ATOMIC_SEQ_CST))
		return err_set(err, SLUICE_EIO, "unload aborted");
	return n;
}

/* ---- CSV rows ---- */

/* Row boundaries of RFC 4180 text fed in pieces: newlines outside quotes. */
struct csv_scan {
	int in_quote;
	long long rows;
};

/* Index just past the first row end in s[0..n), or n when none; counts it. */
static size_t csv_next_row(struct csv_scan *cs, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] == '"')
			cs->in_quote = !cs->in_quote;
		else if (s[i] == '\n' && !cs->in_quote) {
			cs->rows++;
			return i + 1;
		}
	}
	return n;
}

static void csv_field(struct buf *b, const char *v, size_t len)
{
	size_t i;
	int quote = len == 0;

	if (!v)
		return;            /* NULL: an unquoted empty field */
	for (i = 0; i < len && !quote; i++)
		quote = v[i] == '"' || v[i] == ',' || v[i] == '\n' || v[i] == '\r';
	if (!quote) {
		buf_add(b, v, len);
		return;
	}
	buf_addc(b, '"');
	for (i = 0; i < len; i++) {
		if (v[i] == '"')
			buf_addc(b, '"');
		buf_addc(b, v[i]);
	}
	buf_addc(b, '"');
}

/* ---- column lists (a query's, a manifest's, a source's) ---- */

struct columns {
	char **names, **types;
	size_t n, cap;
};

static void columns_push(struct columns *c, const char *name, const char *type)
{
	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 16;
		c->names = xrealloc(c->names, c->cap * sizeof(char *));
		c->types = xrealloc(c->types, c->cap * sizeof(char *));
	}
	c->names[c->n] = xstrdup(name);
	c->types[c->n++] = xstrdup(type ? type : "text");
}

static void columns_release(struct columns *c)
{
	size_t i;

	for (i = 0; i < c->n; i++) {
		free(c->names[i]);
		free(c->types[i]);
	}
	free(c->names);
	free(c->types);
	memset(c, 0, sizeof(*c));
}

/* sluice_row_fn for (name, type) rows. */
static int column_row(void *ud, const struct sluice_row *row)
{
	if (row->ncols >= 2 && row->values[0])
		columns_push(ud, row->values[0], row->values[1]);
	return 0;
}

/* ---- parts announced as they complete (a load overlapping its unload) ---- */

struct key_list {
	char **v;
	size_t n, cap;
	const char *skip_prefix;
};

static void keys_push(struct key_list *k, const char *key)
{
	if (k->n == k->cap) {
		k->cap = k->cap ? 2 * k->cap : 16;
		k->v = xrealloc(k->v, k->cap * sizeof(char *));
	}
	k->v[k->n++] = xstrdup(key);
}

static void keys_release(struct key_list *k)
{
	size_t i;

	for (i = 0; i < k->n; i++)
		free(k->v[i]);
	free(k->v);
}

struct stage_feed {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct key_list keys;          /* parts complete in the store, in order */
	struct columns cols;           /* the unload's, with its first part */
	char *name;                    /* the unload's, for messages */
	int ended, rc;
	long long rows;
	char msg[sizeof(((struct sluice_err *)0)->msg)];
};

struct stage_feed *stage_feed_new(const char *name)
{
	struct stage_feed *f = xcalloc(1, sizeof(*f));

	f->name = xstrdup(name);
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->cond, NULL);
	return f;
}

void stage_feed_free(struct stage_feed *f)
{
	if (!f)
		return;
	pthread_mutex_destroy(&f->lock);
	pthread_cond_destroy(&f->cond);
	keys_release(&f->keys);
	columns_release(&f->cols);
	free(f->name);
	free(f);
}

static void feed_part(struct stage_feed *f, const char *key, const struct columns *cols)
{
	size_t i;

	pthread_mutex_lock(&f->lock);
	if (!f->cols.n)
		for (i = 0; i < cols->n; i++)
			columns_push(&f->cols, cols->names[i], cols->types[i]);
	keys_push(&f->keys, key);
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
}

void stage_feed_end(struct stage_feed *f, int rc, const char *msg, long long rows)
{
	pthread_mutex_lock(&f->lock);
	if (!f->ended) {
		f->ended = 1;
		f->rc = rc;
		f->rows = rows;
		snprintf(f->msg, sizeof(f->msg), "%s", rc ? msg : "");
	}
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
}

/*
 * Part i (heap), waiting until the unload has completed it; NULL when the
 * unload ended without writing it. The wait is bounded by the unload's
 * own run, which ends the feed on every path (a cancel included).
 * cols, while empty, gets the unload's columns.
 */
static char *feed_wait(struct stage_feed *f, size_t i, struct columns *cols)
{
	char *key = NULL;
	size_t k;

	pthread_mutex_lock(&f->lock);
	while (f->keys.n <= i && !f->ended)
		pthread_cond_wait(&f->cond, &f->lock);
	if (i < f->keys.n)
		key = xstrdup(f->keys.v[i]);
	if (!cols->n)
		for (k = 0; k < f->cols.n; k++)
			columns_push(cols, f->cols.names[k], f->cols.types[k]);
	pthread_mutex_unlock(&f->lock);
	return key;
}

/* Wait for the unload's end: its rows, or its failure as this load's. */
static int feed_result(struct stage_feed *f, long long *rows, struct sluice_err *err)
{
	int rc = 0;

	pthread_mutex_lock(&f->lock);
	while (!f->ended)
		pthread_cond_wait(&f->cond, &f->lock);
	if (f->rc)
		rc = err_set(err, SLUICE_EDB, "unload '%s' failed (%s); the target was not touched",
			     f->name, f->msg);
	else
		*rows = f->rows;
	pthread_mutex_unlock(&f->lock);
	return rc;
}

/* ---- unload: parts ---- */

struct part_entry {
	char *url;
	long long bytes, rows;
};

/*
 * The parts of one generation, shared by its streams: numbered as they
 * start, listed (and announced to the feed) as they complete, and that
 * order is the manifest's. stop: a stream failed or the run is being
 * cancelled, so the others end their COPY at the next row.
 */
struct part_list {
	pthread_mutex_t lock;
	struct part_entry *v;
	size_t n, cap;
	size_t next;                   /* the number of the next part to start */
	long long total_rows, total_bytes;
	int stop;                      /* __atomic only */
	int (*cancelled)(void *ud);
	void *cancel_ud;
};

/* One stream's parts: it writes one at a time, through its own store. */
struct parts {
	const struct stage_unload *u;
	struct part_list *list;
	struct objstore *store;
	long long rows;                /* rows this stream wrote to completed parts */
	int stopped;                   /* it ended because another stream failed */
	long long max_raw;
	long long expect;              /* the planner's guess of the CSV's bytes, or -1 */
	int gzip;
	int zstd;                      /* compression: zstd (level 1: s3rver-class stores are the limit) */
	int binary;                    /* format='binary': parts are binary COPY files */
	struct pgcopy_scan bin;
	ZSTD_CCtx *zc;
	struct pump pump;
	int open;
	long long raw, bytes;          /* this part: input bytes, stored bytes */
	struct csv_scan scan;          /* rows of this part */
	z_stream z;
	char *wbuf;                    /* ZBUF bytes not yet in the pipe */
	size_t wlen;
	/* a query() unload: the row being written, the columns from the first */
	struct buf row;
	struct columns rowcols;
	const struct columns *cols;    /* the query's, when describe() could tell */
	int seen_row;
	struct sluice_err err;
	int rc;
};

static void *upload_thread(void *ud)
{
	struct pump *p = ud;

	p->rc = p->store->ops->put_stream(p->store, p->key, p->size_hint, pump_read, p, &p->err);
	/* Drain so the writer never blocks on a reader that gave up. */
	if (p->rc) {
		__atomic_store_n(&p->failed, 1, __ATOMIC_SEQ_CST);
		char sink[4096];
		while (read(p->fd[0], sink, sizeof(sink)) > 0)
			;
	}
	return NULL;
}

static char *part_key(const struct parts *ps)
{
	struct buf b = BUF_INIT;
	size_t k;

	pthread_mutex_lock(&ps->list->lock);
	k = ps->list->next++;
	pthread_mutex_unlock(&ps->list->lock);
	buf_printf(&b, "%spart-%05zu%s%s", ps->u->prefix, k, ps->binary ? PGCOPY_SUFFIX : ".csv",
		   ps->gzip ? ".gz" : ps->zstd ? ".zst" : "");
	return buf_detach(&b, NULL);
}

static int part_write(struct parts *ps, const char *data, size_t len, struct sluice_err *err);

static int part_start(struct parts *ps, struct sluice_err *err)
{
	struct pump *p = &ps->pump;

	if (pump_open(p) < 0)
		return err_set(err, SLUICE_EIO, "stage: pipe: %s", strerror(errno));
	p->store = ps->store;
	p->key = part_key(ps);
	/* a part holds max_raw bytes, or what is left of a smaller table */
	p->size_hint = ps->expect >= 0 && ps->expect < ps->max_raw ? ps->expect : ps->max_raw;
	if (pthread_create(&p->th, NULL, upload_thread, p)) {
		close(p->fd[0]);
		close(p->fd[1]);
		free((char *)p->key);
		return err_set(err, SLUICE_EIO, "stage: cannot start an upload thread");
	}
	p->started = 1;
	ps->open = 1;
	ps->raw = ps->bytes = 0;
	ps->wlen = 0;
	ps->scan.rows = 0;
	if (ps->gzip) {
		memset(&ps->z, 0, sizeof(ps->z));
		/* 15 + 16: a gzip wrapper, which COPY ... GZIP and gunzip read */
		if (deflateInit2(&ps->z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
			return err_set(err, SLUICE_EIO, "stage: zlib init failed");
	}
	if (ps->zstd) {
		if (!ps->zc && !(ps->zc = ZSTD_createCCtx()))
			return err_set(err, SLUICE_EIO, "stage: zstd init failed");
		ZSTD_CCtx_reset(ps->zc, ZSTD_reset_session_only);
		ZSTD_CCtx_setParameter(ps->zc, ZSTD_c_compressionLevel, 1);
	}
	if (ps->binary)
		return part_write(ps, pgcopy_header, sizeof(pgcopy_header), err);
	return 0;
}

/* The upload thread's error, once it has ended. */
static int part_join(struct parts *ps, struct sluice_err *err)
{
	struct pump *p = &ps->pump;

	close(p->fd[1]);
	pthread_join(p->th, NULL);
	close(p->fd[0]);
	p->started = 0;
	ps->open = 0;
	if (p->rc) {
		*err = p->err;
		return p->rc;
	}
	return 0;
}

static int part_send(struct parts *ps, const void *data, size_t len, struct sluice_err *err)
{
	if (write_all(ps->pump.fd[1], data, len) < 0 || __atomic_load_n(&ps->pump.failed, __ATOMIC_SEQ_CST)) {
		/* The reader gave up: its error says why. */
		__atomic_store_n(&ps->pump.aborted, 1, __ATOMIC_SEQ_CST);
		if (part_join(ps, err) == 0)
			err_set(err, SLUICE_EIO, "stage: upload of %s stopped", ps->pump.key);
		return err->code ? err->code : SLUICE_EIO;
	}
	return 0;
}

/* COPY hands over one row at a time: gather them so the pipe sees large writes. */
static int part_flush(struct parts *ps, struct sluice_err *err)
{
	int rc = ps->wlen ? part_send(ps, ps->wbuf, ps->wlen, err) : 0;

	ps->wlen = 0;
	return rc;
}

static int part_put(struct parts *ps, const void *data, size_t len, struct sluice_err *err)
{
	ps->bytes += (long long)len;
	if (ps->wlen + len > ZBUF && part_flush(ps, err))
		return err->code;
	if (len >= ZBUF)
		return part_send(ps, data, len, err);
	memcpy(ps->wbuf + ps->wlen, data, len);
	ps->wlen += len;
	return 0;
}

static int part_deflate(struct parts *ps, const void *data, size_t len, int flush, struct sluice_err *err)
{
	unsigned char out[ZBUF];
	int zr;

	ps->z.next_in = (unsigned char *)data;
	ps->z.avail_in = (uInt)len;
	do {
		ps->z.next_out = out;
		ps->z.avail_out = sizeof(out);
		zr = deflate(&ps->z, flush);
		if (zr == Z_STREAM_ERROR)
			return err_set(err, SLUICE_EIO, "stage: gzip failed");
		if (sizeof(out) - ps->z.avail_out && part_put(ps, out, sizeof(out) - ps->z.avail_out, err))
			return err->code;
	} while (ps->z.avail_out == 0 || (flush == Z_FINISH && zr != Z_STREAM_END));
	return 0;
}

/* The same for zstd: ZSTD_e_end ends the frame, which then holds the whole part. */
static int part_zstd(struct parts *ps, const void *data, size_t len, ZSTD_EndDirective end, struct sluice_err *err)
{
	unsigned char out[ZBUF];
	ZSTD_inBuffer in = { data, len, 0 };
	size_t left;

	do {
		ZSTD_outBuffer o = { out, sizeof(out), 0 };
		left = ZSTD_compressStream2(ps->zc, &o, &in, end);
		if (ZSTD_isError(left))
			return err_set(err, SLUICE_EIO, "stage: zstd failed: %s", ZSTD_getErrorName(left));
		if (o.pos && part_put(ps, out, o.pos, err))
			return err->code;
	} while (end == ZSTD_e_end ? left != 0 : in.pos < in.size);
	return 0;
}

static int part_write(struct parts *ps, const char *data, size_t len, struct sluice_err *err)
{
	ps->raw += (long long)len;
	if (ps->zstd)
		return part_zstd(ps, data, len, ZSTD_e_continue, err);
	return ps->gzip ? part_deflate(ps, data, len, Z_NO_FLUSH, err) : part_put(ps, data, len, err);
}

static int part_finish(struct parts *ps, struct sluice_err *err)
{
	struct part_entry *e;
	int rc = 0;

	if (ps->binary && ps->open)
		rc = part_write(ps, pgcopy_trailer, sizeof(pgcopy_trailer), err);
	if (ps->gzip && !rc) {
		rc = part_deflate(ps, NULL, 0, Z_FINISH, err);
		deflateEnd(&ps->z);
	}
	if (ps->zstd && ps->open && !rc)
		rc = part_zstd(ps, NULL, 0, ZSTD_e_end, err);
	if (!ps->open)
		return rc;
	if (!rc)
		rc = part_flush(ps, err);
	if (rc)
		__atomic_store_n(&ps->pump.aborted, 1, __ATOMIC_SEQ_CST);
	if (part_join(ps, rc ? &ps->err : err) && !rc)
		rc = err->code;
	if (!rc) {
		struct part_list *l = ps->list;
		struct buf url = BUF_INIT;

		buf_printf(&url, "%s/%s", ps->u->store_url, ps->pump.key);
		ps->rows += ps->scan.rows;
		/* the manifest's order is the feed's: both under the list's lock */
		pthread_mutex_lock(&l->lock);
		if (l->n == l->cap) {
			l->cap = l->cap ? 2 * l->cap : 8;
			l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
		}
		e = &l->v[l->n++];
		e->url = buf_detach(&url, NULL);
		e->bytes = ps->bytes;
		e->rows = ps->scan.rows;
		l->total_rows += e->rows;
		l->total_bytes += e->bytes;
		/* put_stream returned: the store holds the part whole */
		if (ps->u->feed)
			feed_part(ps->u->feed, ps->pump.key, ps->cols && ps->cols->n ? ps->cols : &ps->rowcols);
		pthread_mutex_unlock(&l->lock);
	}
	free((char *)ps->pump.key);
	ps->pump.key = NULL;
	return rc;
}

static void parts_abort(struct parts *ps)
{
	struct sluice_err ignored = SLUICE_ERR_INIT;

	if (ps->open) {
		__atomic_store_n(&ps->pump.aborted, 1, __ATOMIC_SEQ_CST);
		part_join(ps, &ignored);
	}
	/* a part is unfinished while it has a key; one whose upload failed was joined by part_send already */
	if (ps->pump.key && ps->gzip)
		deflateEnd(&ps->z);
	free((char *)ps->pump.key);
	ps->pump.key = NULL;
}

/* pgcopy_feed's emit: a row's bytes into the part, which is cut after a row as CSV's are. */
static int binary_row(void *ud, const void *bytes, size_t len, int row_end, struct sluice_err *err)
{
	struct parts *ps = ud;

	if (!ps->open && part_start(ps, err))
		return err->code;
	if (part_write(ps, bytes, len, err))
		return err->code;
	if (row_end)
		ps->scan.rows++;
	return row_end && ps->raw >= ps->max_raw ? part_finish(ps, err) : 0;
}

/* Feed CSV text; parts are cut after a row once they hold max_raw bytes. */
static int parts_feed(struct parts *ps, const char *data, size_t len, struct sluice_err *err)
{
	if (ps->binary) {
		if (pgcopy_feed(&ps->bin, data, len, binary_row, ps, err))
			return err_prefix(err, "unload");
		return 0;
	}
	while (len) {
		size_t n;
		if (!ps->open && part_start(ps, err))
			return err->code;
		n = csv_next_row(&ps->scan, data, len);
		if (part_write(ps, data, n, err))
			return err->code;
		data += n;
		len -= n;
		if (!ps->scan.in_quote && n && data[-1] == '\n' && ps->raw >= ps->max_raw && part_finish(ps, err))
			return err->code;
	}
	return 0;
}

static int copy_sink(void *ud, const void *data, size_t len, struct sluice_err *err)
{
	struct parts *ps = ud;
	struct part_list *l = ps->list;

	if (__atomic_load_n(&l->stop, __ATOMIC_SEQ_CST) || (l->cancelled && l->cancelled(l->cancel_ud))) {
		ps->stopped = 1;
		return err_set(err, SLUICE_EIO, "unload: stopped (another stream failed, or the run was cancelled)");
	}
	return parts_feed(ps, data, len, err);
}

static int row_sink(void *ud, const struct sluice_row *row)
{
	struct parts *ps = ud;
	size_t i;

	if (!ps->seen_row) {
		ps->seen_row = 1;
		for (i = 0; i < row->ncols; i++)
			columns_push(&ps->rowcols, row->names[i], row->types ? row->types[i] : NULL);
	}
	buf_reset(&ps->row);
	for (i = 0; i < row->ncols; i++) {
		if (i)
			buf_addc(&ps->row, ',');
		csv_field(&ps->row, row->values[i], row->values[i] ? row->lens[i] : 0);
	}
	buf_addc(&ps->row, '\n');
	ps->rc = parts_feed(ps, ps->row.s, ps->row.len, &ps->err);
	return ps->rc ? 1 : 0;
}

/* ---- the manifest ---- */

/* The query's columns, without running it. */
static int describe(const struct stage_unload *u, struct columns *cols, struct sluice_err *err)
{
	struct buf setup = BUF_INIT, q = BUF_INIT, cleanup = BUF_INIT;
	int rc = 0;

	if (!u->d->describe)
		return 0;
	u->d->describe(&setup, &q, &cleanup, u->sql);
	if (setup.len)
		rc = conn_send_exec(u->c, u->audit, setup.s, NULL, err);
	if (!rc)
		rc = conn_send_query(u->c, u->audit, q.s, column_row, cols, err);
	if (cleanup.len) {
		struct sluice_err ignored = SLUICE_ERR_INIT;
		conn_send_exec(u->c, u->audit, cleanup.s, NULL, rc ? &ignored : err);
	}
	buf_release(&setup);
	buf_release(&q);
	buf_release(&cleanup);
	return rc;
}

static int first_text(void *ud, const struct sluice_row *row)
{
	char **out = ud;

	if (!*out && row->ncols && row->values[0])
		*out = xstrdup(row->values[0]);
	return 0;
}

/*
 * The planner's guess of the query's CSV bytes, or -1 (no estimate slot,
 * or the planner would not say: an unload runs all the same).
 */
static long long estimate(const struct stage_unload *u)
{
	struct sluice_err ignored = SLUICE_ERR_INIT;
	struct buf q = BUF_INIT;
	char *plan = NULL;
	long long bytes = -1;

	if (!u->d->estimate_query || !u->d->estimate_bytes)
		return -1;
	u->d->estimate_query(&q, u->sql);
	if (!conn_send_query(u->c, u->audit, q.s, first_text, &plan, &ignored) && plan)
		bytes = u->d->estimate_bytes(plan);
	free(plan);
	buf_release(&q);
	return bytes;
}

static json_t *manifest_json_new(const struct part_list *ps, const struct columns *cols)
{
	json_t *root = json_object(), *entries = json_array(), *meta, *schema, *elements = json_array();
	size_t i;

	for (i = 0; i < ps->n; i++) {
		json_t *e = json_object(), *m = json_object();
		json_object_set_new(e, "url", json_string(ps->v[i].url));
		json_object_set_new(m, "content_length", json_integer(ps->v[i].bytes));
		json_object_set_new(m, "record_count", json_integer(ps->v[i].rows));
		json_object_set_new(e, "meta", m);
		json_array_append_new(entries, e);
	}
	json_object_set_new(root, "entries", entries);
	for (i = 0; i < cols->n; i++) {
		json_t *el = json_object(), *t = json_object();
		json_object_set_new(el, "name", json_string(cols->names[i]));
		json_object_set_new(t, "base", json_string(cols->types[i]));
		json_object_set_new(el, "type", t);
		json_array_append_new(elements, el);
	}
	schema = json_object();
	json_object_set_new(schema, "elements", elements);
	json_object_set_new(root, "schema", schema);
	meta = json_object();
	json_object_set_new(meta, "content_length", json_integer(ps->total_bytes));
	json_object_set_new(meta, "record_count", json_integer(ps->total_rows));
	json_object_set_new(root, "meta", meta);
	json_object_set_new(root, "author", json_pack("{s:s}", "name", "sluice"));
	return root;
}

static int write_manifest(const struct stage_unload *u, const struct part_list *ps, const struct columns *cols,
			  struct sluice_err *err)
{
	json_t *j = manifest_json_new(ps, cols);
	char *text = json_dumps(j, JSON_INDENT(2));
	struct buf key = BUF_INIT;
	int rc;

	buf_printf(&key, "%s%s", u->prefix, STAGE_MANIFEST);
	rc = u->store->ops->put(u->store, key.s, text, strlen(text), err);
	buf_release(&key);
	free(text);
	json_decref(j);
	return rc;
}

static long long config_size(const struct val *config, const char *key, long long def)
{
	char tmp[64];
	const char *s = val_get_text(config, key, tmp, sizeof(tmp));
	char *end;
	long long n;

	if (!s)
		return def;
	n = strtoll(s, &end, 10);
	if (end == s || n <= 0)
		return def;
	if (*end == 'k' || *end == 'K')
		n *= 1024;
	else if (*end == 'm' || *end == 'M')
		n *= 1024 * 1024;
	else if (*end == 'g' || *end == 'G')
		n *= 1024LL * 1024 * 1024;
	return n;
}

static int first_number(void *ud, const struct sluice_row *row)
{
	long long *out = ud;

	if (*out < 0 && row->ncols && row->values[0])
		*out = strtoll(row->values[0], NULL, 10);
	return 0;
}

/* Redshift: the server writes the parts and the manifest itself. */
static int unload_server_side(const struct stage_unload *u, long long *rows, struct sluice_err *err)
{
	struct buf sql = BUF_INIT, url = BUF_INIT;
	int rc;

	buf_printf(&url, "%s/%s", u->store_url, u->prefix);
	u->d->unload(&sql, u->sql, url.s, u->iam_role, u->config);
	rc = conn_send_exec(u->c, u->audit, sql.s, NULL, err);
	if (!rc && u->d->unload_count_query)
		rc = conn_send_query(u->c, u->audit, u->d->unload_count_query, first_number, rows, err);
	buf_release(&sql);
	buf_release(&url);
	return rc;
}

/* ---- unload: one query, or one table in several streams ---- */

static void parts_init(struct parts *ps, const struct stage_unload *u, struct part_list *list,
		       struct objstore *store, const struct columns *cols, long long expect)
{
	memset(ps, 0, sizeof(*ps));
	ps->u = u;
	ps->list = list;
	ps->store = store;
	ps->max_raw = config_size(u->config, "max_file_size", STAGE_DEFAULT_PART);
	ps->gzip = val_get_bool(u->config, "gzip", 0);
	ps->zstd = !ps->gzip && !strcmp(val_get_str(u->config, "compression", "none"), "zstd");
	ps->gzip = ps->gzip || !strcmp(val_get_str(u->config, "compression", "none"), "gzip");
	ps->binary = stage_binary(u->config);
	pgcopy_scan_init(&ps->bin);
	ps->wbuf = xmalloc(ZBUF);
	ps->cols = cols;
	ps->expect = expect;
}

static void parts_release(struct parts *ps)
{
	parts_abort(ps);
	ZSTD_freeCCtx(ps->zc);
	columns_release(&ps->rowcols);
	free(ps->wbuf);
	buf_release(&ps->row);
}

/* After the COPY: the last part, and this stream's own counts. */
static int parts_end(struct parts *ps, long long reported, struct sluice_err *err)
{
	if (ps->open && part_finish(ps, err))
		return err->code;
	if (ps->scan.in_quote)
		return err_set(err, SLUICE_EDB, "unload: the data ended inside a quoted field");
	if (ps->binary && !pgcopy_ended(&ps->bin))
		return err_set(err, SLUICE_EDB, "unload: the server's binary COPY ended inside a row");
	if (reported >= 0 && reported != ps->rows)
		return err_set(err, SLUICE_EDB, "unload: the database reported %lld rows but %lld were written",
			       reported, ps->rows);
	return 0;
}

/* Whitespace and comments. */
static const char *sql_skip(const char *s)
{
	for (;;) {
		while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
			s++;
		if (s[0] == '-' && s[1] == '-') {
			while (*s && *s != '\n')
				s++;
		} else if (s[0] == '/' && s[1] == '*') {
			const char *end = strstr(s + 2, "*/");
			if (!end)
				return s + strlen(s);
			s = end + 2;
		} else {
			return s;
		}
	}
}

/* The length of the identifier at s (plain or "quoted"), 0 when there is none. */
static size_t sql_word(const char *s, int *quoted)
{
	size_t n = 0;

	*quoted = *s == '"';
	if (*quoted) {
		for (n = 1; s[n]; n++)
			if (s[n] == '"' && s[n + 1] != '"')
				return n + 1;
			else if (s[n] == '"')
				n++;
		return 0;
	}
	if (!(*s == '_' || ((*s | 32) >= 'a' && (*s | 32) <= 'z')))
		return 0;
	while (s[n] == '_' || s[n] == '$' || (s[n] >= '0' && s[n] <= '9') || ((s[n] | 32) >= 'a' && (s[n] | 32) <= 'z'))
		n++;
	return n;
}

static int sql_is(const char *s, size_t n, int quoted, const char *kw)
{
	return !quoted && n == strlen(kw) && !strncasecmp(s, kw, n);
}

/*
 * Whether sql reads one relation whole, as "SELECT <columns> FROM <rel>"
 * with columns plain names (or *) and nothing after rel: then the same
 * query restricted to ranges of rel's rows, unioned, is the query. *rel
 * and *rel_len: where rel is written in sql, which ends there.
 */
static int whole_table(const char *sql, const char **rel, size_t *rel_len)
{
	const char *s = sql_skip(sql);
	size_t n, items = 0;
	int quoted;

	n = sql_word(s, &quoted);
	if (!sql_is(s, n, quoted, "select"))
		return 0;
	s += n;
	for (;;) {
		s = sql_skip(s);
		if (*s == '*' || *s == ',' || *s == '.') {
			items += *s++ == '*';
			continue;
		}
		if (!(n = sql_word(s, &quoted)))
			return 0;
		if (sql_is(s, n, quoted, "from"))
			break;
		/* a DISTINCT is not a union of ranges */
		if (sql_is(s, n, quoted, "distinct") || sql_is(s, n, quoted, "all"))
			return 0;
		s += n;
		items++;
	}
	if (!items)
		return 0;
	s = sql_skip(s + n);
	*rel = s;
	for (;;) {
		if (!(n = sql_word(s, &quoted)))
			return 0;
		s += n;
		if (*s != '.')
			break;
		s++;
	}
	*rel_len = (size_t)(s - *rel);
	s = sql_skip(s);
	if (*s == ';')
		s = sql_skip(s + 1);
	return *s == '\0';
}

/* One stream of a ranged unload: a COPY of its ranges on its own connection. */
struct ustream {
	struct parts ps;
	struct sluice_conn *c;
	struct buf sql;
	long long reported;
	int rc;
	struct sluice_err err;
	pthread_t th;
};

static void ustream_run(struct ustream *s)
{
	s->err = (struct sluice_err)SLUICE_ERR_INIT;
	s->rc = s->c->drv->copy_out(s->c, s->sql.s, copy_sink, &s->ps, &s->reported, &s->err);
	if (!s->rc)
		s->rc = parts_end(&s->ps, s->reported, &s->err);
	if (s->rc)
		__atomic_store_n(&s->ps.list->stop, 1, __ATOMIC_SEQ_CST);
}

static void *ustream_main(void *ud)
{
	ustream_run(ud);
	return NULL;
}

static int blocks_row(void *ud, const struct sluice_row *row)
{
	long long *out = ud;

	if (row->ncols >= 2 && row->values[0] && row->values[1]) {
		out[0] = strtoll(row->values[0], NULL, 10);
		out[1] = strtoll(row->values[1], NULL, 10);
	}
	return 0;
}

/*
 * How many streams the table rel (of len bytes in u->sql) is worth, at
 * most u->streams: one per STAGE_STREAM_MIN of the table on disk, so a
 * small table stays one stream. blocks[0]: its blocks.
 */
static int streams_worth(const struct stage_unload *u, const char *rel, size_t len, long long *blocks)
{
	struct sluice_err ignored = SLUICE_ERR_INIT;
	struct buf q = BUF_INIT, name = BUF_INIT;
	long long bb[2] = { -1, -1 }, n;

	buf_add(&name, rel, len);
	u->d->table_blocks_query(&q, name.s);
	if (conn_send_query(u->c, u->audit, q.s, blocks_row, bb, &ignored))
		bb[0] = -1;
	buf_release(&q);
	buf_release(&name);
	*blocks = bb[0];
	if (bb[0] < 2 || bb[1] < 0)
		return 1;
	n = bb[1] / STAGE_STREAM_MIN;
	if (n > u->streams)
		n = u->streams;
	if (n > bb[0])
		n = bb[0];
	return n < 1 ? 1 : (int)n;
}

/* The COPY that streams sql out in the unload's format. */
static void copy_out_sql(const struct stage_unload *u, struct buf *b, const char *sql)
{
	if (stage_binary(u->config))
		u->d->copy_out_binary(b, sql);
	else
		u->d->copy_out_csv(b, sql);
}

/*
 * Read u->sql[0..head) (a whole table of `blocks` blocks) in n streams:
 * c exports a snapshot, conns[1..n) import it, and stream i copies
 * blocks [blocks*i/n, blocks*(i+1)/n), the last one to the table's end,
 * so every row of the snapshot is read once. A failed stream stops
 * the others; the first failure is the unload's.
 */
static int unload_ranged(const struct stage_unload *u, size_t head, long long blocks, size_t n,
			 struct sluice_conn **conns, struct objstore **stores, struct part_list *list,
			 const struct columns *cols, long long expect, long long *reported, struct sluice_err *err)
{
	struct ustream *s = xcalloc(n, sizeof(*s));
	struct sluice_err ignored = SLUICE_ERR_INIT;
	char *id = NULL;
	size_t i, began = 0, started = 0;
	int rc;

	*reported = 0;
	rc = conn_send_exec(u->c, u->audit, u->d->snapshot_begin, NULL, err);
	if (!rc)
		began = 1;
	if (!rc && !(rc = conn_send_query(u->c, u->audit, u->d->snapshot_export, first_text, &id, err)) && !id)
		rc = err_set(err, SLUICE_EDB, "unload: the server exported no snapshot");
	for (i = 1; !rc && i < n; i++) {
		struct buf q = BUF_INIT;
		u->d->snapshot_import(&q, id);
		if (!(rc = conn_send_exec(conns[i], u->audit, q.s, NULL, err)))
			began = i + 1;
		buf_release(&q);
	}
	for (i = 0; !rc && i < n; i++) {
		struct buf range = BUF_INIT;
		s[i].c = conns[i];
		parts_init(&s[i].ps, u, list, stores[i], cols, expect >= 0 ? expect / (long long)n : -1);
		buf_add(&range, u->sql, head);
		u->d->block_range(&range, blocks * (long long)i / (long long)n,
				  i + 1 == n ? -1 : blocks * (long long)(i + 1) / (long long)n);
		buf_puts(&s[i].sql, u->audit ? u->audit : "");
		copy_out_sql(u, &s[i].sql, range.s);
		buf_release(&range);
	}
	for (i = 1; !rc && i < n; i++) {
		if (pthread_create(&s[i].th, NULL, ustream_main, &s[i])) {
			rc = err_set(err, SLUICE_EIO, "stage: cannot start an unload stream");
			__atomic_store_n(&list->stop, 1, __ATOMIC_SEQ_CST);
			break;
		}
		started = i;
	}
	if (!rc)
		ustream_run(&s[0]);
	for (i = 1; i <= started; i++)
		pthread_join(s[i].th, NULL);
	if (!rc) {
		/* the first real failure, not a stream that stopped because of it */
		for (i = 0; i < n && !rc; i++)
			if (s[i].rc && !s[i].ps.stopped) {
				*err = s[i].err;
				rc = s[i].rc;
			}
		for (i = 0; i < n && !rc; i++)
			if (s[i].rc) {
				*err = s[i].err;
				rc = s[i].rc;
			}
		for (i = 0; i < n; i++)
			*reported += s[i].reported;
	}
	/* read-only: ending the snapshot's transactions cannot fail the unload */
	for (i = 0; i < began; i++)
		conn_send_exec(conns[i], u->audit, rc ? u->d->rollback : u->d->commit, NULL, &ignored);
	for (i = 0; i < n; i++) {
		if (s[i].ps.list)
			parts_release(&s[i].ps);
		buf_release(&s[i].sql);
	}
	free(s);
	free(id);
	return rc;
}

int stage_binary(const struct val *config)
{
	return !strcmp(val_get_str(config, "format", "csv"), "binary");
}

int stage_config_check(const struct val *config, struct sluice_err *err)
{
	const char *comp = val_get_str(config, "compression", "none");
	const char *format = val_get_str(config, "format", "csv");

	if (strcmp(comp, "none") && strcmp(comp, "gzip") && strcmp(comp, "zstd"))
		return err_set(err, SLUICE_EUSAGE, "compression: '%s' is not one of none, gzip, zstd", comp);
	if (strcmp(format, "csv") && strcmp(format, "binary"))
		return err_set(err, SLUICE_EUSAGE, "format: '%s' is not one of csv, binary", format);
	return 0;
}

int stage_unload(const struct stage_unload *u, long long *rows, long long *reported_out, int *streams,
		 struct sluice_err *err)
{
	struct part_list list;
	struct parts ps;
	struct columns cols = { 0 };
	struct sluice_conn *conns[STAGE_MAX_STREAMS];
	struct objstore *stores[STAGE_MAX_STREAMS];
	long long reported = -1, expect, blocks = -1;
	const char *rel = NULL;
	size_t i, rel_len = 0, naux = 0;
	int rc, want = 1;

	*rows = -1;
	*reported_out = -1;
	*streams = 1;
	if (stage_binary(u->config) && !(u->c->drv->copy_out && u->d->copy_out_binary))
		return err_set(err, SLUICE_EUSAGE,
			       "format: 'binary' needs a connection that streams COPY in PostgreSQL's binary format, which '%s' cannot",
			       u->c->name);
	if (u->d->unload && !u->d->copy_out_csv) {
		rc = unload_server_side(u, rows, err);
		*reported_out = *rows;
		return rc;
	}
	memset(&list, 0, sizeof(list));
	pthread_mutex_init(&list.lock, NULL);
	memset(&ps, 0, sizeof(ps));
	if ((rc = describe(u, &cols, err)))
		goto out;
	expect = estimate(u);
	/* several streams: a whole table, on a server that shares a snapshot between sessions */
	if (u->streams > 1 && u->open_streams && u->c->drv->copy_out && u->d->copy_out_csv && u->d->snapshot_begin &&
	    u->d->table_blocks_query && whole_table(u->sql, &rel, &rel_len) &&
	    (want = streams_worth(u, rel, rel_len, &blocks)) > 1) {
		if (want > STAGE_MAX_STREAMS)
			want = STAGE_MAX_STREAMS;
		naux = u->open_streams(u->streams_ud, (size_t)want - 1, conns + 1, stores + 1);
	}
	if (naux) {
		conns[0] = u->c;
		stores[0] = u->store;
		list.cancelled = u->cancelled;
		list.cancel_ud = u->cancel_ud;
		rc = unload_ranged(u, (size_t)(rel + rel_len - u->sql), blocks, naux + 1, conns, stores, &list,
				   &cols, expect, &reported, err);
		u->close_streams(u->streams_ud, conns + 1, stores + 1, naux);
		if (!rc)
			*streams = (int)naux + 1;
	} else {
		parts_init(&ps, u, &list, u->store, &cols, expect);
		if (u->c->drv->copy_out && u->d->copy_out_csv) {
			struct buf sql = BUF_INIT;
			buf_puts(&sql, u->audit ? u->audit : "");
			copy_out_sql(u, &sql, u->sql);
			rc = u->c->drv->copy_out(u->c, sql.s, copy_sink, &ps, &reported, err);
			buf_release(&sql);
		} else {
			rc = conn_send_query(u->c, u->audit, u->sql, row_sink, &ps, err);
			if (ps.rc) {
				*err = ps.err;
				rc = ps.rc;
			}
		}
		if (!rc)
			rc = parts_end(&ps, reported, err);
	}
	if (!rc && reported >= 0 && reported != list.total_rows)
		rc = err_set(err, SLUICE_EDB, "unload: the database reported %lld rows but %lld were written",
			     reported, list.total_rows);
	if (!rc)
		rc = write_manifest(u, &list, cols.n ? &cols : &ps.rowcols, err);
	if (!rc)
		*rows = list.total_rows;
	*reported_out = reported;
out:
	if (ps.list)
		parts_release(&ps);
	for (i = 0; i < list.n; i++)
		free(list.v[i].url);
	free(list.v);
	pthread_mutex_destroy(&list.lock);
	columns_release(&cols);
	return rc;
}

/* ---- load ---- */

struct get_job {
	struct pump pump;
	struct objstore *store;
	char *key;
	int gunzip;
	z_stream z;
	ZSTD_DCtx *zd;                 /* a .zst part's */
	size_t zleft;                  /* 0: its frames are complete */
	int header;                 /* lines still to skip */
	int in_quote;
};

static int get_sink(void *ud, const void *data, size_t len, struct sluice_err *err)
{
	struct get_job *g = ud;
	const char *s = data;

	/* a header line is skipped before the bytes reach the database */
	while (g->header && len) {
		if (*s == '"')
			g->in_quote = !g->in_quote;
		else if (*s == '\n' && !g->in_quote)
			g->header--;
		s++;
		len--;
	}
	if (len && write_all(g->pump.fd[1], s, len) < 0)
		return err_set(err, SLUICE_EIO, "stage: the database stopped reading %s", g->key);
	return 0;
}

static int gunzip_sink(void *ud, const void *data, size_t len, struct sluice_err *err)
{
	struct get_job *g = ud;
	unsigned char out[ZBUF];
	int zr;

	g->z.next_in = (unsigned char *)data;
	g->z.avail_in = (uInt)len;
	while (g->z.avail_in) {
		g->z.next_out = out;
		g->z.avail_out = sizeof(out);
		zr = inflate(&g->z, Z_NO_FLUSH);
		if (zr != Z_OK && zr != Z_STREAM_END)
			return err_set(err, SLUICE_EIO, "stage: %s is not valid gzip", g->key);
		if (get_sink(g, out, sizeof(out) - g->z.avail_out, err))
			return err->code;
		if (zr == Z_STREAM_END)
			break;
	}
	return 0;
}

static int unzstd_sink(void *ud, const void *data, size_t len, struct sluice_err *err)
{
	struct get_job *g = ud;
	unsigned char out[ZBUF];
	ZSTD_inBuffer in = { data, len, 0 };
	size_t r;

	for (;;) {
		ZSTD_outBuffer o = { out, sizeof(out), 0 };
		g->zleft = r = ZSTD_decompressStream(g->zd, &o, &in);
		if (ZSTD_isError(r))
			return err_set(err, SLUICE_EIO, "stage: %s is not valid zstd: %s", g->key, ZSTD_getErrorName(r));
		if (o.pos && get_sink(g, out, o.pos, err))
			return err->code;
		/* a frame that ended with the input is done: asked again, zstd would wait for the next one */
		if (in.pos == in.size && (r == 0 || o.pos < o.size))
			return 0;
	}
}

static void *download_thread(void *ud)
{
	struct get_job *g = ud;
	sluice_write_fn sink = g->gunzip ? gunzip_sink : g->zd ? unzstd_sink : get_sink;

	if (g->gunzip && inflateInit2(&g->z, 15 + 32) != Z_OK)
		g->pump.rc = err_set(&g->pump.err, SLUICE_EIO, "stage: zlib init failed");
	else
		g->pump.rc = g->store->ops->get(g->store, g->key, sink, g, &g->pump.err);
	if (!g->pump.rc && g->zd && g->zleft)
		g->pump.rc = err_set(&g->pump.err, SLUICE_EIO, "stage: %s ends inside a zstd frame", g->key);
	if (g->gunzip)
		inflateEnd(&g->z);
	/* failing, the reader must see an error rather than a short file */
	if (g->pump.rc)
		__atomic_store_n(&g->pump.aborted, 1, __ATOMIC_SEQ_CST);
	close(g->pump.fd[1]);
	return NULL;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && !strcmp(s + n - k, suffix);
}

/* A part written with format='binary', compressed or not. */
static int part_is_binary(const char *key)
{
	return ends_with(key, PGCOPY_SUFFIX) || ends_with(key, PGCOPY_SUFFIX ".gz") || ends_with(key, PGCOPY_SUFFIX ".zst");
}

static int binary_unreadable(const char *key, const struct sluice_conn *c, struct sluice_err *err)
{
	return err_set(err, SLUICE_ENOTSUP,
		       "%s is in PostgreSQL's binary COPY format, which connection '%s' cannot load; unload it with format='csv'",
		       key, c->name);
}

/* Load one object of store into rel on c (l's, or a stream's); *rows from the database. */
static int load_object(const struct stage_load *l, struct objstore *store, struct sluice_conn *c, const char *rel,
		       const char *key, size_t ncols, long long *rows, struct sluice_err *err)
{
	struct get_job g;
	struct buf sql = BUF_INIT;
	int binary = part_is_binary(key), rc;

	if (binary && !(c->drv->copy_in && l->d->copy_in_binary))
		return binary_unreadable(key, c, err);
	memset(&g, 0, sizeof(g));
	if (pump_open(&g.pump) < 0)
		return err_set(err, SLUICE_EIO, "stage: pipe: %s", strerror(errno));
	g.store = store;
	g.key = xstrdup(key);
	g.gunzip = ends_with(key, ".gz");
	if (ends_with(key, ".zst") && !(g.zd = ZSTD_createDCtx())) {
		close(g.pump.fd[0]);
		close(g.pump.fd[1]);
		free(g.key);
		return err_set(err, SLUICE_EIO, "stage: zstd init failed");
	}
	g.header = l->listing && l->header;
	if (pthread_create(&g.pump.th, NULL, download_thread, &g)) {
		close(g.pump.fd[0]);
		close(g.pump.fd[1]);
		free(g.key);
		ZSTD_freeDCtx(g.zd);
		return err_set(err, SLUICE_EIO, "stage: cannot start a download thread");
	}
	if (c->drv->copy_in && (binary || l->d->copy_in_csv)) {
		buf_puts(&sql, l->audit ? l->audit : "");
		(binary ? l->d->copy_in_binary : l->d->copy_in_csv)(&sql, rel);
		rc = c->drv->copy_in(c, sql.s, pump_read, &g.pump, rows, err);
	} else if (c->drv->load_csv) {
		rc = c->drv->load_csv(c, rel, ncols, pump_read, &g.pump, rows, err);
	} else {
		rc = err_set(err, SLUICE_ENOTSUP, "connection '%s' (%s) can neither COPY nor insert CSV rows",
			     c->name, c->drv->name);
	}
	/* unblock the downloader if the database stopped early */
	{
		char sink[4096];
		while (read(g.pump.fd[0], sink, sizeof(sink)) > 0)
			;
	}
	pthread_join(g.pump.th, NULL);
	close(g.pump.fd[0]);
	if (g.pump.rc) {
		*err = g.pump.err;
		rc = g.pump.rc;
	}
	if (rc)
		err_prefix(err, "loading %s", key);
	free(g.key);
	ZSTD_freeDCtx(g.zd);
	buf_release(&sql);
	return rc;
}

static int buf_sink(void *ud, const void *data, size_t len, struct sluice_err *err)
{
	struct buf *b = ud;

	if (b->len + len > STAGE_MANIFEST_MAX)
		return err_set(err, SLUICE_EIO, "manifest larger than %u bytes", STAGE_MANIFEST_MAX);
	buf_add(b, data, len);
	return 0;
}

static long long num_of(const struct val *v)
{
	return v && v->kind == V_NUM ? (long long)v->u.num : -1;
}

/* Columns from a manifest's schema.elements[]. */
static void manifest_columns(const struct val *man, struct columns *cols)
{
	const struct val *el = val_get(val_get(man, "schema"), "elements");
	size_t i;

	if (!el || el->kind != V_LIST)
		return;
	for (i = 0; i < el->u.list.n; i++) {
		const struct val *e = &el->u.list.items[i], *t = val_get(e, "type");
		const char *name = val_get_str(e, "name", NULL);
		long long len = val_get_int(t, "length", -1), prec = val_get_int(t, "precision", -1);
		struct buf type = BUF_INIT;
		if (!name)
			continue;
		/* Redshift's manifests give a varchar's length and a numeric's precision apart */
		buf_puts(&type, val_get_str(t, "base", "text"));
		if (len > 0 && !strchr(type.s, '('))
			buf_printf(&type, "(%lld)", len);
		else if (prec > 0 && !strchr(type.s, '('))
			buf_printf(&type, "(%lld,%lld)", prec, val_get_int(t, "scale", 0));
		columns_push(cols, name, type.s);
		buf_release(&type);
	}
}

/* Create rel on c: l->into on l->c, or the streams' table on its first connection. */
static int create_into(const struct stage_load *l, struct sluice_conn *c, const char *rel, const struct columns *cols,
		       struct sluice_err *err)
{
	struct buf sql = BUF_INIT;
	int rc;

	/*
	 * What was unloaded decides the columns (a replaced target follows
	 * the lake's schema); without a schema, the target's own.
	 */
	if (cols->n)
		l->d->create_table_columns(&sql, rel, (const char *const *)cols->names,
					   (const char *const *)cols->types, cols->n);
	else if (l->like)
		l->d->create_table_like(&sql, rel, l->like);
	else
		return err_set(err, SLUICE_EUSAGE, "cannot create %s: no column list (declare the source's columns with data_type)",
			       rel);
	rc = conn_send_exec(c, l->audit, sql.s, NULL, err);
	buf_release(&sql);
	return rc;
}

static int list_key(void *ud, const struct objstore_entry *e)
{
	struct key_list *k = ud;
	size_t n = strlen(e->key);

	if (n && e->key[n - 1] != '/' && e->size > 0)
		keys_push(k, e->key);
	return 0;
}

/* Parts of a generation: keys relative to the store, from the manifest's URLs. */
static int manifest_keys(const struct stage_load *l, const struct val *man, struct key_list *keys,
			 struct sluice_err *err)
{
	const struct val *entries = val_get(man, "entries");
	size_t i, root = strlen(l->store_url);

	if (!entries || entries->kind != V_LIST)
		return err_set(err, SLUICE_EDB, "manifest %s%s has no entries[]", l->prefix, STAGE_MANIFEST);
	for (i = 0; i < entries->u.list.n; i++) {
		const char *url = val_get_str(&entries->u.list.items[i], "url", NULL);
		if (!url || strncmp(url, l->store_url, root) || url[root] != '/')
			return err_set(err, SLUICE_EDB, "manifest %s%s: entry %zu is not under the stage %s",
				       l->prefix, STAGE_MANIFEST, i + 1, l->store_url);
		keys_push(keys, url + root + 1);
	}
	return 0;
}

static int load_server_side(const struct stage_load *l, long long *rows, struct sluice_err *err)
{
	struct buf sql = BUF_INIT, url = BUF_INIT;
	int rc;

	*rows = -1;
	buf_printf(&url, "%s/%s%s", l->store_url, l->prefix, STAGE_MANIFEST);
	l->d->copy_from_manifest(&sql, l->into, url.s, l->iam_role, 0);
	rc = conn_send_exec(l->c, l->audit, sql.s, NULL, err);
	if (!rc && l->d->copy_count_query)
		rc = conn_send_query(l->c, l->audit, l->d->copy_count_query, first_number, rows, err);
	buf_release(&sql);
	buf_release(&url);
	return rc;
}

static void shown_count(char *out, size_t n, long long v)
{
	if (v < 0)
		snprintf(out, n, "n/a");
	else
		snprintf(out, n, "%lld", v);
}

/*
 * Read the parts the feed announces, in order, until the unload ends:
 * into l->into, created (*created) before the first one from the
 * unload's columns. done gets the keys read.
 */
static int load_feed(const struct stage_load *l, struct columns *cols, struct key_list *done, int *created,
		     long long *loaded, struct sluice_err *err)
{
	char *key;
	int rc = 0;

	while (!rc && (key = feed_wait(l->feed, done->n, cols))) {
		long long r = -1;
		if (l->create && !*created) {
			rc = create_into(l, l->c, l->into, cols, err);
			*created = !rc;
		}
		if (!rc)
			rc = load_object(l, l->store, l->c, l->into, key, cols->n, &r, err);
		if (r > 0)
			*loaded += r;
		keys_push(done, key);
		free(key);
	}
	return rc;
}

/* ---- a load in several streams ---- */

struct streams {
	const struct stage_load *l;
	const struct key_list *keys;   /* the parts to read, or NULL: the feed's */
	size_t ncols;
	pthread_mutex_t lock;
	size_t next;                   /* the next part to take */
	char **taken;                  /* by part index, once read */
	size_t ntaken, cap;
	int failed;
	long long loaded;
	int used;                      /* streams that read a part */
};

struct stream {
	struct streams *all;
	const char *node;              /* whose statements these are, for the audit log */
	struct sluice_conn *c;
	struct objstore *store;
	pthread_t th;
	int rc;
	struct sluice_err err;
};

/* Part i (heap): the feed's, waiting for it, or the list's; NULL when there is none. */
static char *streams_part(struct streams *ss, size_t i)
{
	struct columns ignored = { 0 };
	char *key;

	if (ss->keys)
		return i < ss->keys->n ? xstrdup(ss->keys->v[i]) : NULL;
	ignored.n = 1;   /* the columns are known already */
	key = feed_wait(ss->l->feed, i, &ignored);
	return key;
}

static void *stream_main(void *ud)
{
	struct stream *st = ud;
	struct streams *ss = st->all;
	int used = 0;

	audit_set_node(st->node);
	for (;;) {
		size_t i;
		char *key;
		long long r = -1;

		if (ss->l->cancelled && ss->l->cancelled(ss->l->cancel_ud)) {
			/* the part in flight on each stream ends; no stream takes another */
			st->rc = err_set(&st->err, SLUICE_ECANCEL, "cancelled");
			pthread_mutex_lock(&ss->lock);
			ss->failed = 1;
			pthread_mutex_unlock(&ss->lock);
			break;
		}
		pthread_mutex_lock(&ss->lock);
		i = ss->failed ? (size_t)-1 : ss->next++;
		pthread_mutex_unlock(&ss->lock);
		if (i == (size_t)-1 || !(key = streams_part(ss, i)))
			break;
		st->rc = load_object(ss->l, st->store, st->c, ss->l->streams_rel, key, ss->ncols, &r, &st->err);
		used = 1;
		pthread_mutex_lock(&ss->lock);
		if (i >= ss->cap) {
			size_t old = ss->cap;
			ss->cap = i + 16 > 2 * ss->cap ? i + 16 : 2 * ss->cap;
			ss->taken = xrealloc(ss->taken, ss->cap * sizeof(char *));
			memset(ss->taken + old, 0, (ss->cap - old) * sizeof(char *));
		}
		ss->taken[i] = key;
		if (i + 1 > ss->ntaken)
			ss->ntaken = i + 1;
		if (r > 0)
			ss->loaded += r;
		if (st->rc)
			ss->failed = 1;
		pthread_mutex_unlock(&ss->lock);
		if (st->rc)
			break;
	}
	if (used)
		__atomic_add_fetch(&ss->used, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

/* The streams' table, made afresh on the first extra connection and committed there. */
static int streams_create(const struct stage_load *l, const struct columns *cols, struct sluice_err *err)
{
	struct buf sql = BUF_INIT;
	int rc;

	l->d->drop(&sql, l->streams_rel, REL_TABLE, 0);
	rc = conn_send_exec(l->aux[0], l->audit, sql.s, NULL, err);
	buf_release(&sql);
	return rc ? rc : create_into(l, l->aux[0], l->streams_rel, cols, err);
}

/* After a failure: the streams' table goes; what failed is already in the caller's err. */
static void streams_drop(const struct stage_load *l)
{
	struct sluice_err ignored = SLUICE_ERR_INIT;
	struct buf sql = BUF_INIT;

	l->d->drop(&sql, l->streams_rel, REL_TABLE, 0);
	conn_send_exec(l->aux[0], l->audit, sql.s, NULL, &ignored);
	buf_release(&sql);
}

/*
 * Read parts [done->n, ...) of keys (NULL: of the feed, until the unload
 * ends) on every extra connection at once; done gets their keys in part
 * order. The first failure stops the others after their current part.
 */
static int streams_run(const struct stage_load *l, const struct key_list *keys, size_t ncols,
		       struct key_list *done, long long *loaded, int *used, struct sluice_err *err)
{
	struct streams ss;
	struct stream *st = xcalloc(l->naux, sizeof(*st));
	size_t i, started = 0;
	int rc = 0;

	memset(&ss, 0, sizeof(ss));
	ss.l = l;
	ss.keys = keys;
	ss.ncols = ncols;
	ss.next = done->n;
	pthread_mutex_init(&ss.lock, NULL);
	for (i = 0; i < l->naux; i++) {
		st[i].all = &ss;
		st[i].c = l->aux[i];
		st[i].store = l->aux_stores[i];
		st[i].node = audit_node();
		st[i].err = (struct sluice_err)SLUICE_ERR_INIT;
		if (pthread_create(&st[i].th, NULL, stream_main, &st[i])) {
			rc = err_set(err, SLUICE_EIO, "stage: cannot start a load stream");
			pthread_mutex_lock(&ss.lock);
			ss.failed = 1;
			pthread_mutex_unlock(&ss.lock);
			break;
		}
		started++;
	}
	for (i = 0; i < started; i++) {
		pthread_join(st[i].th, NULL);
		if (st[i].rc && !rc) {
			*err = st[i].err;
			rc = st[i].rc;
		}
	}
	/* the streams' writes count in the table's version as soon as c's own would (dialect after_write) */
	for (i = 0; !rc && l->d->after_write && i < l->naux; i++) {
		struct sluice_err ignored = SLUICE_ERR_INIT;
		conn_send_exec(l->aux[i], l->audit, l->d->after_write, NULL, &ignored);
	}
	/* the parts read, in order: a gap (a stream that failed first) ends the list */
	for (i = done->n; i < ss.ntaken; i++) {
		if (!rc && ss.taken[i])
			keys_push(done, ss.taken[i]);
		free(ss.taken[i]);
	}
	*loaded += ss.loaded;
	if (ss.used > *used)
		*used = ss.used;
	free(ss.taken);
	free(st);
	pthread_mutex_destroy(&ss.lock);
	return rc;
}

int stage_load(const struct stage_load *l, struct stage_counts *counts, struct sluice_err *err)
{
	struct arena a = ARENA_INIT;
	struct buf text = BUF_INIT, key = BUF_INIT;
	struct columns cols = { 0 };
	struct key_list keys = { 0 }, done = { 0 };
	struct val man = val_none();
	int server = l->d->copy_from_manifest && !l->d->copy_in_csv && !l->listing;
	/* several streams need a table every connection sees, and COPY on each */
	int streams = l->naux && l->create && !server && l->c->drv->copy_in && l->d->copy_in_csv &&
		      l->streams_rel && l->into_ident;
	int rc = 0, created = 0, used = 0;
	size_t i;

	counts->manifest = -1;
	counts->loaded = 0;
	counts->streams = 1;
	/* overlapping the unload: what it has completed first, then its end */
	if (l->feed && !server && streams) {
		char *first = feed_wait(l->feed, 0, &cols);
		if (first && !(rc = streams_create(l, &cols, err))) {
			created = 1;
			rc = streams_run(l, NULL, cols.n, &done, &counts->loaded, &used, err);
		}
		free(first);
	} else if (l->feed && !server) {
		rc = load_feed(l, &cols, &done, &created, &counts->loaded, err);
	}
	if (!rc && l->feed)
		rc = feed_result(l->feed, &counts->unloaded, err);
	if (rc) {
		/* no manifest to read: the unload's failure, or the part's, says it all */
	} else if (l->listing) {
		rc = l->store->ops->list(l->store, l->prefix, list_key, &keys, err);
		for (i = 0; i < l->ncols; i++)
			columns_push(&cols, l->col_names[i], l->col_types[i]);
	} else {
		buf_printf(&key, "%s%s", l->prefix, STAGE_MANIFEST);
		rc = l->store->ops->get(l->store, key.s, buf_sink, &text, err);
		if (rc)
			err_prefix(err, "reading the unload's manifest");
		if (!rc)
			rc = json_parse_val(&a, key.s, text.s ? text.s : "", &man, err);
		if (!rc) {
			counts->manifest = num_of(val_get(val_get(&man, "meta"), "record_count"));
			if (!created)
				manifest_columns(&man, &cols);
			rc = manifest_keys(l, &man, &keys, err);
		}
	}
	/* the parts already read must be the manifest's first ones, in its order */
	for (i = 0; !rc && i < done.n; i++)
		if (i >= keys.n || strcmp(keys.v[i], done.v[i]))
			rc = err_set(err, SLUICE_EDB,
				     "%s was read while the unload wrote it, but the manifest lists %s there; the target was not touched",
				     done.v[i], i < keys.n ? keys.v[i] : "no part");
	if (!rc && l->create && !created) {
		rc = streams ? streams_create(l, &cols, err) : create_into(l, l->c, l->into, &cols, err);
		created = !rc;
	}
	/* the server reads the manifest's parts itself: only as CSV */
	for (i = 0; !rc && server && i < keys.n; i++)
		if (part_is_binary(keys.v[i]))
			rc = binary_unreadable(keys.v[i], l->c, err);
	if (!rc && server) {
		rc = load_server_side(l, &counts->loaded, err);
	} else if (!rc && streams) {
		if (done.n < keys.n)
			rc = streams_run(l, &keys, cols.n, &done, &counts->loaded, &used, err);
	} else {
		for (i = done.n; i < keys.n && !rc; i++) {
			long long r = -1;
			rc = load_object(l, l->store, l->c, l->into, keys.v[i], cols.n, &r, err);
			if (r > 0)
				counts->loaded += r;
		}
	}
	if (!rc) {
		long long u = counts->unloaded, m = counts->manifest, d = counts->loaded;
		if ((u >= 0 && m >= 0 && u != m) || (m >= 0 && m != d) || (u >= 0 && u != d)) {
			char su[32], sm[32];
			shown_count(su, sizeof(su), u);
			shown_count(sm, sizeof(sm), m);
			rc = err_set(err, SLUICE_EDB,
				     "row counts differ: unloaded %s, manifest record_count %s, loaded %lld; the target was not touched",
				     su, sm, d);
		}
	}
	if (streams) {
		counts->streams = used > 1 ? used : 1;
		/* every count agrees: the streams' table becomes the side table, inside c's transaction */
		if (!rc && created) {
			struct buf sql = BUF_INIT;
			l->d->rename(&sql, l->streams_rel, REL_TABLE, l->into_ident);
			rc = conn_send_exec(l->c, l->audit, sql.s, NULL, err);
			buf_release(&sql);
		}
		if (rc && created)
			streams_drop(l);
	}
	keys_release(&keys);
	keys_release(&done);
	columns_release(&cols);
	buf_release(&text);
	buf_release(&key);
	arena_release(&a);
	return rc;
}

/* ---- generations ---- */

struct gens {
	char **v;
	size_t n, cap;
	size_t plen;
};

static int gen_entry(void *ud, const struct objstore_entry *e)
{
	struct gens *g = ud;
	const char *rest = e->key + g->plen, *slash = strchr(rest, '/');
	char *name;

	if (!slash)
		return 0;
	name = xstrndup(rest, (size_t)(slash - rest));
	if (g->n && !strcmp(g->v[g->n - 1], name)) {
		free(name);
		return 0;
	}
	if (g->n == g->cap) {
		g->cap = g->cap ? 2 * g->cap : 16;
		g->v = xrealloc(g->v, g->cap * sizeof(char *));
	}
	g->v[g->n++] = name;
	return 0;
}

struct doomed {
	struct objstore *s;
	struct key_list keys;
};

static int doomed_entry(void *ud, const struct objstore_entry *e)
{
	struct doomed *d = ud;

	keys_push(&d->keys, e->key);
	return 0;
}

int stage_retain(struct objstore *s, const char *dir, int keep, long long *deleted, struct sluice_err *err)
{
	struct gens g = { 0 };
	struct buf prefix = BUF_INIT;
	size_t i, k;
	int rc;

	*deleted = 0;
	buf_printf(&prefix, "%s/", dir);
	g.plen = prefix.len;
	rc = s->ops->list(s, prefix.s, gen_entry, &g, err);
	/* listings are in key order, so generations (UUIDv7: time order) are too */
	for (i = 0; !rc && keep > 0 && i + (size_t)keep < g.n; i++) {
		struct doomed d = { s, { 0 } };
		struct buf gp = BUF_INIT;
		buf_printf(&gp, "%s%s/", prefix.s, g.v[i]);
		rc = s->ops->list(s, gp.s, doomed_entry, &d, err);
		/* the manifest goes first: a generation without it is never read */
		for (k = 0; !rc && k < d.keys.n; k++)
			if (ends_with(d.keys.v[k], "/" STAGE_MANIFEST))
				rc = s->ops->del(s, d.keys.v[k], err), (*deleted)++;
		for (k = 0; !rc && k < d.keys.n; k++)
			if (!ends_with(d.keys.v[k], "/" STAGE_MANIFEST))
				rc = s->ops->del(s, d.keys.v[k], err), (*deleted)++;
		keys_release(&d.keys);
		buf_release(&gp);
	}
	for (i = 0; i < g.n; i++)
		free(g.v[i]);
	free(g.v);
	buf_release(&prefix);
	return rc;
}

static int hash_entry(void *ud, const struct objstore_entry *e)
{
	struct hasher *h = ud;
	struct buf line = BUF_INIT;

	buf_printf(&line, "%s\t%s\t%lld\n", e->key, e->etag ? e->etag : "", e->size);
	hasher_add(h, line.s, line.len);
	buf_release(&line);
	return 0;
}

int stage_listing_version(struct objstore *s, const char *prefix, struct buf *out, struct sluice_err *err)
{
	struct hasher h;
	char hex[HASH_HEX];
	int rc;

	/* one (key, etag, size) line per object, hashed as listed: memory stays flat */
	hasher_init(&h);
	rc = s->ops->list(s, prefix, hash_entry, &h, err);
	hasher_finish(&h, hex);
	if (!rc)
		buf_printf(out, "listing:%s", hex);
	return rc;
}

int stage_store_open(const struct val *settings, const char *project_dir, struct objstore **out,
		     char **url, struct sluice_err *err)
{
	return stage_store_open_url(val_get_str(settings, "stage", "file://.sluice/stage"), settings, project_dir,
				    out, url, err);
}

int stage_store_open_url(const char *spec, const struct val *settings, const char *project_dir,
			 struct objstore **out, char **url, struct sluice_err *err)
{
	struct buf u = BUF_INIT;
	int rc;

	/* file:// relative to the project */
	if (!strncmp(spec, "file://", 7) && spec[7] != '/')
		buf_printf(&u, "file://%s/%s", project_dir, spec + 7);
	else
		buf_puts(&u, spec);
	while (u.len > 1 && u.s[u.len - 1] == '/')
		u.s[--u.len] = '\0';
	*out = NULL;
	rc = objstore_open(u.s, val_get(settings, "s3"), out, err);
	if (rc)
		err_prefix(err, "stage %s", u.s);
	*url = buf_detach(&u, NULL);
	return rc;
}
