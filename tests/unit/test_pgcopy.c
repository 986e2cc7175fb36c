/*
 * test_pgcopy.c: unit tests for engine/pgcopy.c: a binary COPY stream,
 * cut anywhere, comes out as its rows, byte for byte, each ended where it
 * ends, without the stream's header and trailer. A server sends one row a
 * message, so the CLI tests (t0405) never cut a row; these do.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "../../engine/pgcopy.h"
#include "../../engine/util/buf.h"

/* A stream: its bytes, its rows' bytes and where each row ends in them. */
struct stream {
	struct buf bytes, rows;
	size_t ends[512];
	size_t nrows;
};

static void put16(struct buf *b, int v)
{
	buf_addc(b, (char)((v >> 8) & 0xff));
	buf_addc(b, (char)(v & 0xff));
}

static void put32(struct buf *b, long v)
{
	put16(b, (int)((v >> 16) & 0xffff));
	put16(b, (int)(v & 0xffff));
}

/* nrows random rows: 0 to 5 fields, each NULL, empty or 1 to 300 bytes of anything; ext: header extension bytes. */
static void stream_make(struct stream *st, unsigned *seed, size_t nrows, int ext)
{
	size_t r;
	int f, i;

	memset(st, 0, sizeof(*st));
	buf_add(&st->bytes, pgcopy_header, 15);
	put32(&st->bytes, ext);
	for (i = 0; i < ext; i++)
		buf_addc(&st->bytes, (char)rand_r(seed));
	for (r = 0; r < nrows; r++) {
		struct buf row = BUF_INIT;
		int nf = rand_r(seed) % 6;
		put16(&row, nf);
		for (f = 0; f < nf; f++) {
			int kind = rand_r(seed) % 3, len = kind == 0 ? -1 : kind == 1 ? 0 : 1 + rand_r(seed) % 300;
			put32(&row, len);
			for (i = 0; i < len; i++)
				buf_addc(&row, (char)(rand_r(seed) % 2 ? 0xff : rand_r(seed)));
		}
		buf_add(&st->bytes, row.s, row.len);
		buf_add(&st->rows, row.s, row.len);
		st->ends[st->nrows++] = st->rows.len;
		buf_release(&row);
	}
	buf_add(&st->bytes, pgcopy_trailer, sizeof(pgcopy_trailer));
}

static void stream_release(struct stream *st)
{
	buf_release(&st->bytes);
	buf_release(&st->rows);
}

struct seen {
	struct buf bytes;
	size_t ends[512];
	size_t nrows;
	int fail_at;                   /* fail on this row's end (1-based), 0 never */
};

static int collect(void *ud, const void *bytes, size_t len, int row_end, struct sluice_err *err)
{
	struct seen *s = ud;

	buf_add(&s->bytes, bytes, len);
	if (row_end) {
		s->ends[s->nrows++] = s->bytes.len;
		if (s->fail_at && (int)s->nrows == s->fail_at)
			return err_set(err, SLUICE_EIO, "the part could not be written");
	}
	return 0;
}

/* Feed st to a scanner in pieces of 1 to max bytes. */
static int feed_cut(const struct stream *st, unsigned *seed, size_t max, struct pgcopy_scan *sc, struct seen *out,
		    struct sluice_err *err)
{
	size_t at = 0;
	int rc = 0;

	pgcopy_scan_init(sc);
	while (at < st->bytes.len && !rc) {
		size_t n = 1 + (size_t)rand_r(seed) % max;
		if (n > st->bytes.len - at)
			n = st->bytes.len - at;
		rc = pgcopy_feed(sc, st->bytes.s + at, n, collect, out, err);
		at += n;
	}
	return rc;
}

static void test_cut_anywhere(void **unused)
{
	unsigned seed = 1729;
	size_t maxes[] = { 1, 2, 3, 7, 64, 4096, 1 << 20 };
	int round, m;

	(void)unused;
	for (round = 0; round < 40; round++) {
		struct stream st;
		stream_make(&st, &seed, (size_t)(round % 8 == 0 ? 0 : 1 + rand_r(&seed) % 200), round % 3 ? 0 : 5);
		for (m = 0; m < (int)(sizeof(maxes) / sizeof(maxes[0])); m++) {
			struct pgcopy_scan sc;
			struct seen out = { BUF_INIT, { 0 }, 0, 0 };
			struct sluice_err err = SLUICE_ERR_INIT;

			assert_int_equal(feed_cut(&st, &seed, maxes[m], &sc, &out, &err), 0);
			assert_true(pgcopy_ended(&sc));
			assert_int_equal(out.nrows, st.nrows);
			assert_int_equal(out.bytes.len, st.rows.len);
			assert_memory_equal(out.bytes.s ? out.bytes.s : "", st.rows.s ? st.rows.s : "", st.rows.len);
			assert_memory_equal(out.ends, st.ends, st.nrows * sizeof(size_t));
			buf_release(&out.bytes);
		}
		stream_release(&st);
	}
}

static void test_not_a_stream(void **unused)
{
	unsigned seed = 7;
	struct stream st;
	struct pgcopy_scan sc;
	struct seen out = { BUF_INIT, { 0 }, 0, 0 };
	struct sluice_err err = SLUICE_ERR_INIT;
	struct buf more = BUF_INIT;

	(void)unused;
	stream_make(&st, &seed, 10, 0);
	/* CSV is not binary COPY: the signature says so at once */
	pgcopy_scan_init(&sc);
	assert_int_equal(pgcopy_feed(&sc, "1,a\n2,b\n", 8, collect, &out, &err), SLUICE_EDB);
	assert_non_null(strstr(err.msg, "signature"));
	/* cut short: not ended, so the unload fails rather than keep a short part */
	err = (struct sluice_err)SLUICE_ERR_INIT;
	pgcopy_scan_init(&sc);
	assert_int_equal(pgcopy_feed(&sc, st.bytes.s, st.bytes.len - 3, collect, &out, &err), 0);
	assert_false(pgcopy_ended(&sc));
	/* bytes after the trailer */
	buf_add(&more, st.bytes.s, st.bytes.len);
	buf_addc(&more, 0);
	pgcopy_scan_init(&sc);
	assert_int_equal(pgcopy_feed(&sc, more.s, more.len, collect, &out, &err), SLUICE_EDB);
	assert_non_null(strstr(err.msg, "after its end"));
	buf_release(&more);
	buf_release(&out.bytes);
	stream_release(&st);
}

/* The emit's failure (a part that could not be written) stops the scan with its own error. */
static void test_emit_fails(void **unused)
{
	unsigned seed = 11;
	struct stream st;
	struct pgcopy_scan sc;
	struct seen out = { BUF_INIT, { 0 }, 0, 3 };
	struct sluice_err err = SLUICE_ERR_INIT;

	(void)unused;
	stream_make(&st, &seed, 10, 0);
	assert_int_equal(feed_cut(&st, &seed, 16, &sc, &out, &err), SLUICE_EIO);
	assert_int_equal(out.nrows, 3);
	assert_string_equal(err.msg, "the part could not be written");
	buf_release(&out.bytes);
	stream_release(&st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cut_anywhere),
		cmocka_unit_test(test_not_a_stream),
		cmocka_unit_test(test_emit_fails),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
