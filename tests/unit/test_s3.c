/*
 * test_s3.c: the S3 client (connectors/s3.c) and the object-store
 * interface it shares with file:// (connectors/file.c).
 *
 * The pure parts (query strings, content SHA-256, XML errors, URLs,
 * configuration) need nothing. The s3:// tests talk to the harness's
 * s3rver (SLUICE_TEST_S3_*, see tests/harness/s3.sh) and fail, not skip,
 * when it is not configured. The same round-trip tests run on file://.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>

#include "../../connectors/objstore.h"
#include "../../connectors/s3.h"
#include "../../engine/util/clock.h"
#include "../../engine/util/fs.h"
#include "../../engine/util/xalloc.h"

/* ---- helpers ---------------------------------------------------------- */

static struct arena arena;
static char file_root[256];
static unsigned run_id;

static const char *need_env(const char *name)
{
	const char *v = getenv(name);

	if (!v || !*v)
		fail_msg("%s is not set: run under tests/harness/s3.sh (make test does)", name);
	return v;
}

/* The s3 settings block as profiles.yml would give it. */
static struct val s3_settings(const char *endpoint, const char *secret, long long part_size)
{
	struct val d = val_dict_new();

	val_dict_set(&arena, &d, "endpoint", val_str(endpoint));
	val_dict_set(&arena, &d, "region", val_str(need_env("SLUICE_TEST_S3_REGION")));
	val_dict_set(&arena, &d, "access_key_id", val_str(need_env("SLUICE_TEST_S3_ACCESS_KEY_ID")));
	val_dict_set(&arena, &d, "secret_access_key", val_str(secret));
	if (part_size) {
		val_dict_set(&arena, &d, "part_size", val_num((double)part_size));
		val_dict_set(&arena, &d, "allow_small_parts", val_bool(1));
	}
	return d;
}

static struct objstore *open_s3(long long part_size)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct objstore *s = NULL;
	struct val set = s3_settings(need_env("SLUICE_TEST_S3_ENDPOINT"),
				     need_env("SLUICE_TEST_S3_SECRET_ACCESS_KEY"), part_size);
	char url[512];

	/* a fresh prefix per run keeps reruns against one server independent */
	snprintf(url, sizeof(url), "s3://%s/run-%u", need_env("SLUICE_TEST_S3_BUCKET"), run_id);
	if (objstore_open(url, &set, &s, &err) < 0)
		fail_msg("objstore_open(%s): %s", url, err.msg);
	return s;
}

static struct objstore *open_file(void)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct objstore *s = NULL;
	char url[300];

	snprintf(url, sizeof(url), "file://%s/", file_root);
	if (objstore_open(url, NULL, &s, &err) < 0)
		fail_msg("objstore_open(%s): %s", url, err.msg);
	return s;
}

static int collect(void *ud, const void *data, size_t len, struct sluice_err *err)
{
	(void)err;
	buf_add(ud, data, len);
	return 0;
}

/* Deterministic pseudo-random bytes, so a big body is checked without storing it. */
struct gen {
	uint64_t state;
	long long left;
	long long pos;
	long long fail_at;       /* reader fails once pos passes this (0: never) */
};

static unsigned char gen_byte(uint64_t *st)
{
	*st = *st * 6364136223846793005ULL + 1442695040888963407ULL;
	return (unsigned char)(*st >> 56);
}

static ssize_t gen_read(void *ud, void *buf, size_t cap, struct sluice_err *err)
{
	struct gen *g = ud;
	unsigned char *p = buf;
	size_t i, n = cap;

	if (g->fail_at && g->pos >= g->fail_at)
		return err_set(err, SLUICE_EIO, "reader broke at byte %lld", g->pos);
	/* odd-sized chunks exercise part boundaries that do not align */
	if (n > 100003)
		n = 100003;
	if ((long long)n > g->left)
		n = (size_t)g->left;
	for (i = 0; i < n; i++)
		p[i] = gen_byte(&g->state);
	g->left -= (long long)n;
	g->pos += (long long)n;
	return (ssize_t)n;
}

struct check {
	uint64_t state;
	long long seen;
	long long mismatch_at;   /* -1: none */
};

static int check_write(void *ud, const void *data, size_t len, struct sluice_err *err)
{
	struct check *c = ud;
	const unsigned char *p = data;
	size_t i;

	(void)err;
	for (i = 0; i < len; i++) {
		if (gen_byte(&c->state) != p[i] && c->mismatch_at < 0)
			c->mismatch_at = c->seen + (long long)i;
	}
	c->seen += (long long)len;
	return 0;
}

struct counter {
	size_t n;
	int sorted;
	char last[256];
	const char *must_prefix;
	int outside;
	size_t stop_after;       /* return 7 once this many were seen (0: never) */
};

static int count_entry(void *ud, const struct objstore_entry *e)
{
	struct counter *c = ud;

	if (c->n && strcmp(c->last, e->key) >= 0)
		c->sorted = 0;
	snprintf(c->last, sizeof(c->last), "%s", e->key);
	if (c->must_prefix && strncmp(e->key, c->must_prefix, strlen(c->must_prefix)) != 0)
		c->outside++;
	c->n++;
	return c->stop_after && c->n >= c->stop_after ? 7 : 0;
}

/* ---- the same behaviour on both stores -------------------------------- */

static void check_roundtrip(struct objstore *s)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct objstore_info info;
	struct buf got = BUF_INIT;
	unsigned char body[512];
	const char *key = "dir/a b+c=\xc3\xbc&(1).bin";
	size_t i;

	for (i = 0; i < sizeof(body); i++)
		body[i] = (unsigned char)(i * 7);  /* every byte value, NULs included */
	if (s->ops->put(s, key, body, sizeof(body), &err) < 0)
		fail_msg("put: %s", err.msg);
	if (s->ops->get(s, key, collect, &got, &err) < 0)
		fail_msg("get: %s", err.msg);
	assert_int_equal(got.len, sizeof(body));
	assert_memory_equal(got.s, body, sizeof(body));

	assert_int_equal(s->ops->head(s, key, &info, &err), 0);
	assert_int_equal(info.exists, 1);
	assert_int_equal(info.size, (long long)sizeof(body));

	/* replacing is atomic and total: a shorter body leaves no tail */
	assert_int_equal(s->ops->put(s, key, "short", 5, &err), 0);
	buf_reset(&got);
	assert_int_equal(s->ops->get(s, key, collect, &got, &err), 0);
	assert_int_equal(got.len, 5);
	assert_memory_equal(got.s, "short", 5);

	/* an empty object is an object */
	assert_int_equal(s->ops->put(s, "empty", "", 0, &err), 0);
	assert_int_equal(s->ops->head(s, "empty", &info, &err), 0);
	assert_int_equal(info.exists, 1);
	assert_int_equal(info.size, 0);

	assert_int_equal(s->ops->del(s, key, &err), 0);
	assert_int_equal(s->ops->head(s, key, &info, &err), 0);
	assert_int_equal(info.exists, 0);
	/* deleting what is gone succeeds, as in S3 */
	assert_int_equal(s->ops->del(s, key, &err), 0);
	buf_release(&got);
}

static void check_stream(struct objstore *s, const char *key, long long size)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct gen g = { 42, size, 0, 0 };
	struct check c = { 42, 0, -1 };
	struct objstore_info info;

	if (s->ops->put_stream(s, key, -1, gen_read, &g, &err) < 0)
		fail_msg("put_stream: %s", err.msg);
	if (s->ops->get(s, key, check_write, &c, &err) < 0)
		fail_msg("get: %s", err.msg);
	assert_int_equal(c.seen, size);
	assert_int_equal(c.mismatch_at, -1);
	assert_int_equal(s->ops->head(s, key, &info, &err), 0);
	assert_int_equal(info.size, size);
}

/* Leaves the error in err for store-specific checks. */
static void check_missing(struct objstore *s, const char *secret, struct sluice_err *err)
{
	struct buf got = BUF_INIT;

	assert_true(s->ops->get(s, "no/such/key.csv", collect, &got, err) < 0);
	assert_non_null(strstr(err->msg, "no/such/key.csv"));
	if (secret)
		assert_null(strstr(err->msg, secret));
	assert_int_equal(got.len, 0);
	buf_release(&got);
}

static void check_list(struct objstore *s, size_t n)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct counter c = { 0, 1, "", "many/", 0, 0 };
	size_t i;

	for (i = 0; i < n; i++) {
		char key[64];

		snprintf(key, sizeof(key), "many/%05zu.csv", i);
		if (s->ops->put(s, key, key, strlen(key), &err) < 0)
			fail_msg("put %s: %s", key, err.msg);
	}
	assert_int_equal(s->ops->put(s, "manyother.csv", "x", 1, &err), 0);
	/* names that look like temp files are still objects */
	assert_int_equal(s->ops->put(s, "tmpcheck/data.tmp.csv", "x", 1, &err), 0);
	memset(&c, 0, sizeof(c));
	assert_int_equal(s->ops->list(s, "tmpcheck/", count_entry, &c, &err), 0);
	assert_int_equal(c.n, 1);
	memset(&c, 0, sizeof(c));
	c.sorted = 1;
	c.must_prefix = "many/";
	if (s->ops->list(s, "many/", count_entry, &c, &err) < 0)
		fail_msg("list: %s", err.msg);
	assert_int_equal(c.n, n);
	assert_true(c.sorted);
	assert_int_equal(c.outside, 0);

	/* a narrower prefix: 00010..00019 */
	memset(&c, 0, sizeof(c));
	c.sorted = 1;
	assert_int_equal(s->ops->list(s, "many/0001", count_entry, &c, &err), 0);
	assert_int_equal(c.n, 10);
	assert_string_equal(c.last, "many/00019.csv");

	/* a callback's non-zero value stops the listing and comes back */
	memset(&c, 0, sizeof(c));
	c.stop_after = 3;
	assert_int_equal(s->ops->list(s, "many/", count_entry, &c, &err), 7);
	assert_int_equal(c.n, 3);
}

/* ---- pure ------------------------------------------------------------- */

static void test_uri_encode(void **unused)
{
	struct buf b = BUF_INIT;
	const char *in = "a b/c~d_e.f-g+h=\xc3\xbc*";

	(void)unused;
	s3_uri_encode(&b, in, strlen(in), 1);
	assert_string_equal(b.s, "a%20b/c~d_e.f-g%2Bh%3D%C3%BC%2A");
	buf_reset(&b);
	s3_uri_encode(&b, in, strlen(in), 0);
	assert_string_equal(b.s, "a%20b%2Fc~d_e.f-g%2Bh%3D%C3%BC%2A");
	buf_release(&b);
}

static void test_query_sorted_and_encoded(void **unused)
{
	struct buf b = BUF_INIT;
	const struct s3_param p[] = {
		{ "uploadId", "x y/z" },
		{ "prefix", "a/b c" },
		{ "partNumber", "10" },
		{ "uploads", NULL },
		{ "list-type", "2" },
		{ "Zed", "1" },                  /* uppercase sorts before lowercase (bytes) */
		{ "continuation-token", "1/+=" },
	};

	(void)unused;
	s3_query_build(&b, p, sizeof(p) / sizeof(p[0]));
	assert_string_equal(b.s,
			    "Zed=1&continuation-token=1%2F%2B%3D&list-type=2&partNumber=10&"
			    "prefix=a%2Fb%20c&uploadId=x%20y%2Fz&uploads=");
	buf_reset(&b);
	s3_query_build(&b, NULL, 0);
	assert_string_equal(b.s, "");
	buf_release(&b);
}

static void test_content_sha256_choice(void **unused)
{
	char h[65];

	(void)unused;
	assert_int_equal(s3_content_sha256(NULL, 0, 0, h), 0);
	assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	assert_int_equal(s3_content_sha256("abc", 3, 0, h), 0);
	assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_int_equal(s3_content_sha256("abc", 3, 1, h), 0);
	assert_string_equal(h, "UNSIGNED-PAYLOAD");
}

static void test_error_parse(void **unused)
{
	const char *body =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code>"
		"<Message>The key &quot;a&amp;b&quot; &lt;x&gt; does not exist&#46;</Message>"
		"<Key>a&amp;b</Key><RequestId>1</RequestId></Error>";
	struct buf code = BUF_INIT, msg = BUF_INIT;

	(void)unused;
	assert_int_equal(s3_error_parse(body, strlen(body), &code, &msg), 0);
	assert_string_equal(code.s, "NoSuchKey");
	assert_string_equal(msg.s, "The key \"a&b\" <x> does not exist.");
	buf_reset(&code);
	buf_reset(&msg);
	assert_int_equal(s3_error_parse("<html>bad gateway</html>", 24, &code, &msg), -1);
	assert_int_equal(s3_error_parse("", 0, &code, &msg), -1);
	buf_release(&code);
	buf_release(&msg);
}

struct listed {
	char keys[4][64];
	long long sizes[4];
	char etags[4][64];
	int n;
};

static int list_cb(void *ud, const struct s3_object *o)
{
	struct listed *l = ud;

	snprintf(l->keys[l->n], sizeof(l->keys[0]), "%s", o->key);
	snprintf(l->etags[l->n], sizeof(l->etags[0]), "%s", o->etag);
	l->sizes[l->n] = o->size;
	return ++l->n == 3 ? 7 : 0;
}

/* One ListObjectsV2 page: keys and ETags decoded, quotes gone, the token of a truncated page. */
static void test_list_parse(void **unused)
{
	const char *page =
		"<ListBucketResult><IsTruncated>true</IsTruncated>"
		"<NextContinuationToken>t&amp;1</NextContinuationToken>"
		"<Contents><Key>d/a&amp;b&#x263A;.csv</Key><ETag>&quot;e1&quot;</ETag><Size>12</Size></Contents>"
		"<Contents><Size>5</Size></Contents>"
		"<Contents><Key>d/c</Key></Contents></ListBucketResult>";
	struct listed l = { 0 };
	struct buf next = BUF_INIT;
	int truncated;

	(void)unused;
	assert_int_equal(s3_list_parse(page, strlen(page), list_cb, &l, &next, &truncated), 0);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.keys[0], "d/a&b\xE2\x98\xBA.csv");
	assert_string_equal(l.etags[0], "e1");
	assert_int_equal(l.sizes[0], 12);
	assert_string_equal(l.keys[1], "d/c");
	assert_int_equal(l.sizes[1], -1);
	assert_true(truncated);
	assert_string_equal(next.s, "t&1");
	buf_reset(&next);
	/* the callback's non-zero value stops the listing and is returned */
	l.n = 2;
	assert_int_equal(s3_list_parse(page, strlen(page), list_cb, &l, &next, &truncated), 7);
	/* the last page */
	l.n = 0;
	assert_int_equal(s3_list_parse("<IsTruncated>false</IsTruncated>", 32, list_cb, &l, &next, &truncated), 0);
	assert_int_equal(l.n, 0);
	assert_false(truncated);
	buf_release(&next);
}

static void test_url_build(void **unused)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct buf b = BUF_INIT;

	(void)unused;
	assert_int_equal(s3_url_build(&b, "http://127.0.0.1:9000/", 1, "bkt", "d/a b.csv",
				      "list-type=2", &err), 0);
	assert_string_equal(b.s, "http://127.0.0.1:9000/bkt/d/a%20b.csv?list-type=2");
	buf_reset(&b);
	assert_int_equal(s3_url_build(&b, "https://s3.eu-west-1.amazonaws.com", 0, "bkt", "d/k+1",
				      NULL, &err), 0);
	assert_string_equal(b.s, "https://bkt.s3.eu-west-1.amazonaws.com/d/k%2B1");
	buf_reset(&b);
	assert_int_equal(s3_url_build(&b, "https://minio.local:9000", 0, "bkt", NULL, "list-type=2",
				      &err), 0);
	assert_string_equal(b.s, "https://bkt.minio.local:9000/?list-type=2");
	buf_reset(&b);
	assert_int_equal(s3_url_build(&b, "http://h:1", 1, "bkt", "", "uploads=", &err), 0);
	assert_string_equal(b.s, "http://h:1/bkt?uploads=");
	buf_reset(&b);
	assert_int_equal(s3_url_build(&b, "minio:9000", 1, "bkt", "k", NULL, &err), SLUICE_EUSAGE);
	assert_non_null(strstr(err.msg, "minio:9000"));
	buf_release(&b);
}

static void test_config_fallbacks(void **unused)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct s3_config cfg;
	struct val d = val_dict_new();

	(void)unused;
	setenv("AWS_ACCESS_KEY_ID", "env-akid", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "env-secret", 1);
	setenv("AWS_REGION", "eu-north-1", 1);
	setenv("AWS_ENDPOINT_URL", "http://env:1", 1);
	unsetenv("AWS_SESSION_TOKEN");
	assert_int_equal(s3_config_load(NULL, &cfg, &err), 0);
	assert_string_equal(cfg.access_key_id, "env-akid");
	assert_string_equal(cfg.region, "eu-north-1");
	assert_string_equal(cfg.endpoint, "http://env:1");
	assert_null(cfg.session_token);
	assert_int_equal(cfg.path_style, -1);

	val_dict_set(&arena, &d, "access_key_id", val_str("blk-akid"));
	val_dict_set(&arena, &d, "region", val_str("us-west-2"));
	val_dict_set(&arena, &d, "session_token", val_str("tok"));
	val_dict_set(&arena, &d, "path_style", val_bool(0));
	val_dict_set(&arena, &d, "iam_role", val_str("arn:aws:iam::1:role/r"));
	assert_int_equal(s3_config_load(&d, &cfg, &err), 0);
	assert_string_equal(cfg.access_key_id, "blk-akid");
	assert_string_equal(cfg.secret_access_key, "env-secret");
	assert_string_equal(cfg.region, "us-west-2");
	assert_string_equal(cfg.session_token, "tok");
	assert_string_equal(cfg.iam_role, "arn:aws:iam::1:role/r");
	assert_int_equal(cfg.path_style, 0);

	/* the names the AWS tools also read: the service's own endpoint first, the older region name last */
	setenv("AWS_ENDPOINT_URL_S3", "http://s3-only:2", 1);
	unsetenv("AWS_REGION");
	setenv("AWS_DEFAULT_REGION", "ap-south-1", 1);
	assert_int_equal(s3_config_load(NULL, &cfg, &err), 0);
	assert_string_equal(cfg.endpoint, "http://s3-only:2");
	assert_string_equal(cfg.region, "ap-south-1");
	setenv("AWS_REGION", "eu-north-1", 1);
	assert_int_equal(s3_config_load(NULL, &cfg, &err), 0);
	assert_string_equal(cfg.region, "eu-north-1");
	unsetenv("AWS_ENDPOINT_URL_S3");
	unsetenv("AWS_DEFAULT_REGION");

	val_dict_set(&arena, &d, "part_size", val_num(1024));
	assert_int_equal(s3_config_load(&d, &cfg, &err), SLUICE_EUSAGE);
	assert_non_null(strstr(err.msg, "part_size"));

	unsetenv("AWS_SECRET_ACCESS_KEY");
	val_dict_set(&arena, &d, "part_size", val_num(8 * 1024 * 1024));
	assert_int_equal(s3_config_load(&d, &cfg, &err), SLUICE_EUSAGE);
	assert_non_null(strstr(err.msg, "AWS_SECRET_ACCESS_KEY"));
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_REGION");
	unsetenv("AWS_ENDPOINT_URL");
}

static void test_open_unknown_scheme(void **unused)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct objstore *s = NULL;

	(void)unused;
	assert_int_equal(objstore_open("gs://b/x", NULL, &s, &err), SLUICE_EUSAGE);
	assert_null(s);
	assert_non_null(strstr(err.msg, "gs://b/x"));
}

/* ---- SigV4 as a server checks it -------------------------------------- */

/*
 * s3rver does not verify SigV4 signatures, so this test plays the server:
 * a one-shot loopback listener captures the raw request libcurl sends and
 * the test recomputes the signature the way S3 does (payload hash taken
 * from x-amz-content-sha256, query pairs sorted). This checks libcurl's
 * signing as fed by s3.c; it is not a second implementation in the client.
 */
struct capture {
	int lfd;
	int port;
	struct buf req;          /* the last request */
	const char *const *replies;  /* one per connection; NULL: a single 200 */
	size_t nreplies;
	struct buf all[16];      /* every request, in order (the first 16) */
	size_t nall;
};

static const char reply_200[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

static void capture_one(struct capture *cap, const char *reply)
{
	int fd = accept(cap->lfd, NULL, NULL);
	char chunk[4096];
	long long need = -1;

	if (fd < 0)
		return;
	buf_reset(&cap->req);
	for (;;) {
		ssize_t n;
		char *end = strstr(cap->req.s, "\r\n\r\n");

		if (end && need < 0) {
			const char *cl = strcasestr(cap->req.s, "\r\ncontent-length:");

			need = (long long)(end + 4 - cap->req.s) + (cl && cl < end ? atoll(cl + 17) : 0);
		}
		if (need >= 0 && (long long)cap->req.len >= need)
			break;
		n = read(fd, chunk, sizeof(chunk));
		if (n <= 0)
			break;
		buf_add(&cap->req, chunk, (size_t)n);
	}
	if (write(fd, reply, strlen(reply)) < 0)
		cap->req.len = 0;
	close(fd);
	if (cap->nall < sizeof(cap->all) / sizeof(cap->all[0])) {
		buf_init(&cap->all[cap->nall]);
		buf_add(&cap->all[cap->nall++], cap->req.s, cap->req.len);
	}
}

static void capture_release(struct capture *cap)
{
	size_t i;

	buf_release(&cap->req);
	for (i = 0; i < cap->nall; i++)
		buf_release(&cap->all[i]);
	cap->nall = 0;
}

static void *capture_main(void *ud)
{
	struct capture *cap = ud;
	size_t i;

	if (!cap->replies)
		capture_one(cap, reply_200);
	for (i = 0; cap->replies && i < cap->nreplies; i++)
		capture_one(cap, cap->replies[i]);
	return NULL;
}

/* cap->replies and nreplies are set by the caller (or zeroed for one 200). */
static void capture_start(struct capture *cap, pthread_t *th)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);

	buf_init(&cap->req);
	cap->lfd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(cap->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(cap->lfd, 1), 0);
	assert_int_equal(getsockname(cap->lfd, (struct sockaddr *)&sa, &sl), 0);
	cap->port = ntohs(sa.sin_port);
	assert_int_equal(pthread_create(th, NULL, capture_main, cap), 0);
}

/* Value of header name (lowercase) in the raw request, into out. */
static int req_header(const char *req, const char *name, struct buf *out)
{
	const char *p = strstr(req, "\r\n");
	size_t nl = strlen(name);

	while (p && strncmp(p, "\r\n\r\n", 4) != 0) {
		const char *line = p + 2, *eol = strstr(line, "\r\n");

		if (eol && (size_t)(eol - line) > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
			const char *v = line + nl + 1;

			while (*v == ' ')
				v++;
			buf_reset(out);
			buf_add(out, v, (size_t)(eol - v));
			return 0;
		}
		p = eol;
	}
	return -1;
}

static void hmac(const void *key, size_t klen, const char *msg, unsigned char out[32])
{
	unsigned int olen = 32;

	assert_non_null(HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, strlen(msg), out, &olen));
}

static void hex32(const unsigned char *md, char out[65])
{
	int i;

	for (i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Recompute the request's signature with secret: 0 when it matches the one sent. */
static int verify_sigv4(const char *req, const char *secret, const char *region)
{
	struct buf auth = BUF_INIT, creq = BUF_INIT, sts = BUF_INIT, v = BUF_INIT, k = BUF_INIT;
	char method[16], target[2048], date[9], hexd[65], *q, *pairs[64], *signed_hdrs, *sig, *save;
	unsigned char md[32], key[32];
	size_t np = 0, i;
	unsigned int mdlen;
	int ret;

	assert_int_equal(sscanf(req, "%15s %2047s", method, target), 2);
	assert_int_equal(req_header(req, "authorization", &auth), 0);
	signed_hdrs = strstr(auth.s, "SignedHeaders=");
	sig = strstr(auth.s, "Signature=");
	assert_non_null(signed_hdrs);
	assert_non_null(sig);
	signed_hdrs += 14;
	*strchr(signed_hdrs, ',') = '\0';
	sig += 10;
	/* the payload hash must be signed, or S3 rejects the request */
	assert_non_null(strstr(signed_hdrs, "x-amz-content-sha256"));

	q = strchr(target, '?');
	if (q)
		*q++ = '\0';
	buf_printf(&creq, "%s\n%s\n", method, target);
	for (char *t = q ? strtok_r(q, "&", &save) : NULL; t && np < 64; t = strtok_r(NULL, "&", &save))
		pairs[np++] = t;
	qsort(pairs, np, sizeof(pairs[0]), str_cmp);
	for (i = 0; i < np; i++)
		buf_printf(&creq, "%s%s%s", i ? "&" : "", pairs[i], strchr(pairs[i], '=') ? "" : "=");
	buf_addc(&creq, '\n');
	{
		char *names = xstrdup(signed_hdrs), *nsave;

		for (char *h = strtok_r(names, ";", &nsave); h; h = strtok_r(NULL, ";", &nsave)) {
			assert_int_equal(req_header(req, h, &v), 0);
			buf_printf(&creq, "%s:%s\n", h, v.s);
		}
		free(names);
	}
	assert_int_equal(req_header(req, "x-amz-content-sha256", &v), 0);
	buf_printf(&creq, "\n%s\n%s", signed_hdrs, v.s);

	assert_int_equal(req_header(req, "x-amz-date", &v), 0);
	memcpy(date, v.s, 8);
	date[8] = '\0';
	assert_true(EVP_Digest(creq.s, creq.len, md, &mdlen, EVP_sha256(), NULL));
	hex32(md, hexd);
	buf_printf(&sts, "AWS4-HMAC-SHA256\n%s\n%s/%s/s3/aws4_request\n%s", v.s, date, region, hexd);
	buf_printf(&k, "AWS4%s", secret);
	hmac(k.s, k.len, date, key);
	hmac(key, 32, region, key);
	hmac(key, 32, "s3", key);
	hmac(key, 32, "aws4_request", key);
	hmac(key, 32, sts.s, md);
	hex32(md, hexd);
	ret = strncmp(sig, hexd, 64) == 0 ? 0 : -1;
	if (ret < 0 && strcmp(secret, "wrong") != 0)
		print_message("signature mismatch; canonical request was:\n%s\n", creq.s);
	buf_release(&auth);
	buf_release(&creq);
	buf_release(&sts);
	buf_release(&v);
	buf_release(&k);
	return ret;
}

/* A client of the capture server at port, trying max_attempts times, 10 ms apart at first. */
static struct s3_client *capture_client_n(int port, int max_attempts)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct s3_client *c = NULL;
	struct s3_config cfg;
	static char endpoint[64];

	snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", port);
	memset(&cfg, 0, sizeof(cfg));
	cfg.endpoint = endpoint;
	cfg.region = "eu-west-1";
	cfg.access_key_id = "AKIDEXAMPLE";
	cfg.secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
	cfg.session_token = "session/token+1";
	cfg.path_style = 1;
	cfg.max_attempts = max_attempts;
	cfg.retry_base_ms = 10;
	assert_int_equal(s3_client_new(&cfg, &c, &err), 0);
	return c;
}

static struct s3_client *capture_client(int port)
{
	return capture_client_n(port, 1);
}

static void test_sigv4_put_signs_payload_hash(void **unused)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct capture cap;
	struct buf v = BUF_INIT;
	pthread_t th;
	struct s3_client *c;

	(void)unused;
	memset(&cap, 0, sizeof(cap));
	capture_start(&cap, &th);
	c = capture_client(cap.port);
	assert_int_equal(s3_put_object(c, "bkt", "dir/a b+c=d.csv", "hello", 5, &err), 0);
	pthread_join(th, NULL);
	close(cap.lfd);
	assert_non_null(strstr(cap.req.s, "PUT /bkt/dir/a%20b%2Bc%3Dd.csv HTTP/1.1\r\n"));
	assert_int_equal(req_header(cap.req.s, "x-amz-content-sha256", &v), 0);
	assert_string_equal(v.s, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
	assert_int_equal(req_header(cap.req.s, "x-amz-security-token", &v), 0);
	assert_string_equal(v.s, "session/token+1");
	assert_int_equal(verify_sigv4(cap.req.s, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "eu-west-1"), 0);
	/* the check can fail: another secret gives another signature */
	assert_int_equal(verify_sigv4(cap.req.s, "wrong", "eu-west-1"), -1);
	s3_client_free(c);
	capture_release(&cap);
	buf_release(&v);
}

static int ignore_obj(void *ud, const struct s3_object *o)
{
	(void)ud;
	(void)o;
	return 0;
}

static void test_sigv4_list_signs_sorted_query(void **unused)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct capture cap;
	struct buf v = BUF_INIT;
	pthread_t th;
	struct s3_client *c;

	(void)unused;
	memset(&cap, 0, sizeof(cap));
	capture_start(&cap, &th);
	c = capture_client(cap.port);
	/* the capture server answers with an empty body: an empty listing */
	assert_int_equal(s3_list_objects(c, "bkt", "a/b c=", ignore_obj, NULL, &err), 0);
	pthread_join(th, NULL);
	close(cap.lfd);
	assert_non_null(strstr(cap.req.s, "GET /bkt?list-type=2&prefix=a%2Fb%20c%3D HTTP/1.1\r\n"));
	assert_int_equal(req_header(cap.req.s, "x-amz-content-sha256", &v), 0);
	assert_string_equal(v.s, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	assert_int_equal(verify_sigv4(cap.req.s, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "eu-west-1"), 0);
	/* the check can fail: another secret gives another signature */
	assert_int_equal(verify_sigv4(cap.req.s, "wrong", "eu-west-1"), -1);
	s3_client_free(c);
	capture_release(&cap);
	buf_release(&v);
}

static void test_retry_5xx_and_429_then_success(void **unused)
{
	static const char *const replies[] = {
		"HTTP/1.1 503 Slow Down\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		"HTTP/1.1 429 Too Many Requests\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		reply_200,
	};
	struct sluice_err err = SLUICE_ERR_INIT;
	struct capture cap;
	pthread_t th;
	struct s3_client *c;
	struct s3_config cfg;
	char endpoint[64];

	(void)unused;
	memset(&cap, 0, sizeof(cap));
	cap.replies = replies;
	cap.nreplies = 4;
	capture_start(&cap, &th);
	snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", cap.port);
	memset(&cfg, 0, sizeof(cfg));
	cfg.endpoint = endpoint;
	cfg.access_key_id = "AKID";
	cfg.secret_access_key = "secret";
	cfg.path_style = -1;
	cfg.max_attempts = 4;
	cfg.retry_base_ms = 10;
	assert_int_equal(s3_client_new(&cfg, &c, &err), 0);
	assert_int_equal(s3_delete_object(c, "bkt", "k", &err), 0);
	pthread_join(th, NULL);
	close(cap.lfd);
	assert_int_equal(s3_client_stats(c)->requests, 4);
	assert_int_equal(s3_client_stats(c)->retries, 3);
	s3_client_free(c);
	capture_release(&cap);
}

/* A sink that keeps what it is given. */
static int keep_sink(void *ud, const void *data, size_t n, struct sluice_err *err)
{
	(void)err;
	buf_add(ud, data, n);
	return 0;
}

/*
 * A GET cut short (the body ends before its Content-Length, as s3rver
 * answers an object it is still writing) resumes where it stopped: the
 * next request asks for the rest of the same object (Range, If-Match).
 * A server that ignores Range sends it all again; the part already
 * delivered is not delivered twice.
 */
static void get_resumes(const char *second, const char *want_range)
{
	const char *const replies[] = {
		"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nETag: \"e1\"\r\nConnection: close\r\n\r\nhello",
		second,
	};
	struct sluice_err err = SLUICE_ERR_INIT;
	struct buf got = BUF_INIT, h = BUF_INIT;
	struct capture cap;
	pthread_t th;
	struct s3_client *c;

	memset(&cap, 0, sizeof(cap));
	cap.replies = replies;
	cap.nreplies = 2;
	capture_start(&cap, &th);
	c = capture_client_n(cap.port, 3);
	assert_int_equal(s3_get_object(c, "bkt", "k", keep_sink, &got, &err), 0);
	pthread_join(th, NULL);
	close(cap.lfd);
	assert_string_equal(got.s, "helloworld");
	assert_int_equal(cap.nall, 2);
	assert_int_equal(req_header(cap.all[1].s, "range", &h), 0);
	assert_string_equal(h.s, want_range);
	assert_int_equal(req_header(cap.all[1].s, "if-match", &h), 0);
	assert_string_equal(h.s, "\"e1\"");
	s3_client_free(c);
	capture_release(&cap);
	buf_release(&got);
	buf_release(&h);
}

static void test_get_cut_short_resumes(void **unused)
{
	(void)unused;
	get_resumes("HTTP/1.1 206 Partial Content\r\nContent-Length: 5\r\nETag: \"e1\"\r\n"
		    "Content-Range: bytes 5-9/10\r\nConnection: close\r\n\r\nworld", "bytes=5-");
	get_resumes("HTTP/1.1 200 OK\r\nContent-Length: 10\r\nETag: \"e1\"\r\nConnection: close\r\n\r\nhelloworld",
		    "bytes=5-");
}

static void test_4xx_is_not_retried(void **unused)
{
	static const char *const replies[] = {
		"HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nContent-Length: 90\r\n"
		"Connection: close\r\n\r\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message>"
		"<Key>k</Key></Error>      ",
	};
	struct sluice_err err = SLUICE_ERR_INIT;
	struct capture cap;
	pthread_t th;
	struct s3_client *c;

	(void)unused;
	memset(&cap, 0, sizeof(cap));
	cap.replies = replies;
	cap.nreplies = 1;
	capture_start(&cap, &th);
	c = capture_client(cap.port);
	assert_int_equal(s3_delete_object(c, "bkt", "dir/k", &err), SLUICE_EIO);
	pthread_join(th, NULL);
	close(cap.lfd);
	assert_string_equal(err.msg, "s3 DELETE s3://bkt/dir/k: AccessDenied: Access Denied (HTTP 403)");
	assert_int_equal(s3_client_stats(c)->requests, 1);
	s3_client_free(c);
	capture_release(&cap);
}

/* The body of a captured request. */
static const char *req_body(const char *req)
{
	const char *p = strstr(req, "\r\n\r\n");

	return p ? p + 4 : "";
}

static void test_sigv4_multipart_unsigned_parts(void **unused)
{
	static const char init[] =
		"HTTP/1.1 200 OK\r\nContent-Length: 95\r\nConnection: close\r\n\r\n"
		"<InitiateMultipartUploadResult><UploadId>up/1+x</UploadId></InitiateMultipartUploadResult>     ";
	static const char *const replies[] = {
		init,
		"HTTP/1.1 200 OK\r\nETag: \"e1\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		"HTTP/1.1 200 OK\r\nETag: \"e2\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		"HTTP/1.1 200 OK\r\nETag: \"e3\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 63\r\nConnection: close\r\n\r\n"
		"<CompleteMultipartUploadResult></CompleteMultipartUploadResult>",
	};
	struct sluice_err err = SLUICE_ERR_INIT;
	struct gen g = { 3, 2500, 0, 0 };
	struct capture cap;
	struct buf v = BUF_INIT;
	pthread_t th;
	struct s3_client *c;
	struct s3_config cfg;
	char endpoint[64], sha[65];
	const char *body;
	size_t i;

	(void)unused;
	memset(&cap, 0, sizeof(cap));
	cap.replies = replies;
	cap.nreplies = 5;
	capture_start(&cap, &th);
	snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", cap.port);
	memset(&cfg, 0, sizeof(cfg));
	cfg.endpoint = endpoint;
	cfg.region = "eu-west-1";
	cfg.access_key_id = "AKIDEXAMPLE";
	cfg.secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
	cfg.path_style = 1;
	cfg.max_attempts = 1;
	cfg.part_size = 1024;   /* below S3's floor: the capture server does not care */
	assert_int_equal(s3_client_new(&cfg, &c, &err), 0);
	if (s3_put_stream(c, "bkt", "d/big.bin", gen_read, &g, &err) < 0)
		fail_msg("put_stream: %s", err.msg);
	pthread_join(th, NULL);
	close(cap.lfd);
	assert_int_equal(cap.nall, 5);
	assert_non_null(strstr(cap.all[0].s, "POST /bkt/d/big.bin?uploads= HTTP/1.1\r\n"));
	/* the upload id comes back encoded, and the query is sorted: partNumber before uploadId */
	assert_non_null(strstr(cap.all[1].s, "PUT /bkt/d/big.bin?partNumber=1&uploadId=up%2F1%2Bx HTTP/1.1\r\n"));
	assert_non_null(strstr(cap.all[3].s, "PUT /bkt/d/big.bin?partNumber=3&uploadId=up%2F1%2Bx HTTP/1.1\r\n"));
	for (i = 0; i < 5; i++) {
		assert_int_equal(req_header(cap.all[i].s, "x-amz-content-sha256", &v), 0);
		if (i >= 1 && i <= 3)   /* parts are streamed: their hash is not signed */
			assert_string_equal(v.s, "UNSIGNED-PAYLOAD");
		else
			assert_string_not_equal(v.s, "UNSIGNED-PAYLOAD");
		assert_int_equal(verify_sigv4(cap.all[i].s, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "eu-west-1"), 0);
	}
	/* the completion's body is signed by its real hash and lists the parts' ETags */
	body = req_body(cap.all[4].s);
	assert_int_equal(s3_content_sha256(body, strlen(body), 0, sha), 0);
	assert_int_equal(req_header(cap.all[4].s, "x-amz-content-sha256", &v), 0);
	assert_string_equal(v.s, sha);
	assert_non_null(strstr(body, "<PartNumber>2</PartNumber><ETag>\"e2\"</ETag>"));
	assert_non_null(strstr(body, "<PartNumber>3</PartNumber><ETag>\"e3\"</ETag>"));
	assert_int_equal(s3_client_stats(c)->parts, 3);
	s3_client_free(c);
	capture_release(&cap);
	buf_release(&v);
}

static void test_part_size_for(void **unused)
{
	(void)unused;
	/* small or unknown objects keep the configured size, or the default */
	assert_int_equal(s3_part_size_for(0, -1), S3_DEFAULT_PART_SIZE);
	assert_int_equal(s3_part_size_for(0, 64LL << 20), S3_DEFAULT_PART_SIZE);
	assert_int_equal(s3_part_size_for(6u << 20, 1LL << 30), 6u << 20);
	assert_int_equal(s3_part_size_for(65536, 300 << 10), 65536);
	/* up to 32 MiB with a MiB to spare, unless a size is configured: one part, one PUT */
	assert_int_equal(s3_part_size_for(0, 300 << 10), S3_DEFAULT_PART_SIZE);
	assert_int_equal(s3_part_size_for(0, 16LL << 20), 17u << 20);
	assert_int_equal(s3_part_size_for(0, 31LL << 20), 32u << 20);
	assert_int_equal(s3_part_size_for(0, (31LL << 20) + 1), S3_DEFAULT_PART_SIZE);
	assert_int_equal(s3_part_size_for(6u << 20, 16LL << 20), 6u << 20);
	/* 100 GiB in 8 MiB parts would be 12,800: whole MiB parts, at most 9,000 of them */
	assert_int_equal(s3_part_size_for(0, 100LL << 30), 12u << 20);
	assert_true((100LL << 30) / (long long)s3_part_size_for(0, 100LL << 30) <= S3_PLAN_PARTS);
	/* 60 TiB would need 7 GiB parts: capped at S3's 5 GiB */
	assert_true(s3_part_size_for(0, 60LL << 40) == (size_t)S3_MAX_PART_SIZE);
}

static void test_multipart_failure_aborts(void **unused)
{
	static const char *const replies[] = {
		"HTTP/1.1 200 OK\r\nContent-Length: 92\r\nConnection: close\r\n\r\n"
		"<InitiateMultipartUploadResult><UploadId>up-9</UploadId></InitiateMultipartUploadResult>    ",
		"HTTP/1.1 200 OK\r\nETag: \"e1\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		"HTTP/1.1 400 Bad Request\r\nContent-Length: 80\r\nConnection: close\r\n\r\n"
		"<Error><Code>EntityTooSmall</Code><Message>Part too small</Message></Error>     ",
		"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
	};
	struct sluice_err err = SLUICE_ERR_INIT;
	struct gen g = { 5, 5000, 0, 0 };
	struct capture cap;
	pthread_t th;
	struct s3_client *c;
	struct s3_config cfg;
	char endpoint[64];

	(void)unused;
	memset(&cap, 0, sizeof(cap));
	cap.replies = replies;
	cap.nreplies = 4;
	capture_start(&cap, &th);
	snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", cap.port);
	memset(&cfg, 0, sizeof(cfg));
	cfg.endpoint = endpoint;
	cfg.access_key_id = "AKID";
	cfg.secret_access_key = "secret-not-shown";
	cfg.path_style = -1;
	cfg.max_attempts = 1;
	cfg.part_size = 1024;
	assert_int_equal(s3_client_new(&cfg, &c, &err), 0);
	assert_int_equal(s3_put_stream(c, "bkt", "k.csv", gen_read, &g, &err), SLUICE_EIO);
	pthread_join(th, NULL);
	close(cap.lfd);
	assert_string_equal(err.msg, "s3 PUT s3://bkt/k.csv: EntityTooSmall: Part too small (HTTP 400)");
	/* the failed part is followed by AbortMultipartUpload of that upload, and nothing else */
	assert_int_equal(cap.nall, 4);
	assert_non_null(strstr(cap.all[3].s, "DELETE /bkt/k.csv?uploadId=up-9 HTTP/1.1\r\n"));
	s3_client_free(c);
	capture_release(&cap);
}

static void test_put_if_headers_and_conflicts(void **unused)
{
	static const char *const replies[] = {
		"HTTP/1.1 200 OK\r\nETag: \"abc123\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		"HTTP/1.1 412 Precondition Failed\r\nContent-Length: 126\r\nConnection: close\r\n\r\n"
		"<Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you "
		"specified did not hold</Message></Error>",
		"HTTP/1.1 409 Conflict\r\nContent-Length: 134\r\nConnection: close\r\n\r\n"
		"<Error><Code>ConditionalRequestConflict</Code><Message>A conflicting conditional operation "
		"is in progress.</Message></Error>          ",
		"HTTP/1.1 409 Conflict\r\nContent-Length: 89\r\nConnection: close\r\n\r\n"
		"<Error><Code>OperationAborted</Code><Message>Another operation is going</Message></Error>",
	};
	struct sluice_err err = SLUICE_ERR_INIT;
	struct capture cap;
	struct buf v = BUF_INIT;
	pthread_t th;
	struct s3_client *c;
	char etag[OBJSTORE_ETAG_SIZE];

	(void)unused;
	memset(&cap, 0, sizeof(cap));
	cap.replies = replies;
	cap.nreplies = 4;
	capture_start(&cap, &th);
	c = capture_client(cap.port);
	assert_int_equal(s3_put_object_if(c, "bkt", "st/lock.json", "{}", 2, NULL, 1, etag, &err), 0);
	assert_string_equal(etag, "abc123");
	assert_int_equal(s3_put_object_if(c, "bkt", "st/state.json", "{}", 2, "abc123", 0, etag, &err),
			 SLUICE_ECONFLICT);
	assert_string_equal(err.msg, "s3 PUT s3://bkt/st/state.json: PreconditionFailed: At least one of the "
			    "pre-conditions you specified did not hold (HTTP 412)");
	assert_int_equal(s3_put_object_if(c, "bkt", "st/lock.json", "{}", 2, NULL, 1, etag, &err),
			 SLUICE_ECONFLICT);
	assert_non_null(strstr(err.msg, "ConditionalRequestConflict"));
	/* another 409 is an error of its own, not a lost condition */
	assert_int_equal(s3_put_object_if(c, "bkt", "st/lock.json", "{}", 2, NULL, 1, etag, &err), SLUICE_EIO);
	pthread_join(th, NULL);
	close(cap.lfd);
	assert_int_equal(cap.nall, 4);
	assert_int_equal(req_header(cap.all[0].s, "if-none-match", &v), 0);
	assert_string_equal(v.s, "*");
	assert_int_equal(req_header(cap.all[0].s, "if-match", &v), -1);
	assert_int_equal(req_header(cap.all[1].s, "if-match", &v), 0);
	assert_string_equal(v.s, "\"abc123\"");
	assert_int_equal(req_header(cap.all[1].s, "if-none-match", &v), -1);
	assert_int_equal(verify_sigv4(cap.all[0].s, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "eu-west-1"), 0);
	assert_int_equal(verify_sigv4(cap.all[1].s, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "eu-west-1"), 0);
	/* a conditional PUT's payload is hashed like any in-memory body */
	assert_int_equal(req_header(cap.all[1].s, "x-amz-content-sha256", &v), 0);
	assert_string_equal(v.s, "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
	s3_client_free(c);
	capture_release(&cap);
	buf_release(&v);
}

static void test_bodiless_error_names_status(void **unused)
{
	static const char *const replies[] = {
		"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
	};
	struct sluice_err err = SLUICE_ERR_INIT;
	struct objstore_info info;
	struct capture cap;
	pthread_t th;
	struct s3_client *c;

	(void)unused;
	memset(&cap, 0, sizeof(cap));
	cap.replies = replies;
	cap.nreplies = 1;
	capture_start(&cap, &th);
	c = capture_client(cap.port);
	assert_int_equal(s3_head_object(c, "bkt", "a/b.csv", &info, &err), SLUICE_EIO);
	pthread_join(th, NULL);
	close(cap.lfd);
	assert_string_equal(err.msg, "s3 HEAD s3://bkt/a/b.csv: Forbidden: access denied (HTTP 403)");
	s3_client_free(c);
	capture_release(&cap);
}

static size_t count_of(const char *hay, const char *needle)
{
	size_t n = 0;

	for (hay = strstr(hay, needle); hay; hay = strstr(hay + 1, needle))
		n++;
	return n;
}

static void test_delete_objects_batches(void **unused)
{
	static const char *const replies[] = {
		"HTTP/1.1 200 OK\r\nContent-Length: 29\r\nConnection: close\r\n\r\n<DeleteResult></DeleteResult>",
		"HTTP/1.1 200 OK\r\nContent-Length: 121\r\nConnection: close\r\n\r\n"
		"<DeleteResult><Error><Key>k/a&amp;b</Key><Code>AccessDenied</Code><Message>Access Denied</Message>"
		"</Error></DeleteResult>",
	};
	struct sluice_err err = SLUICE_ERR_INIT;
	struct capture cap;
	struct buf v = BUF_INIT;
	pthread_t th;
	struct s3_client *c;
	const char *keys[1001];
	char names[1001][16], sha[65], md5[32];
	unsigned char md[16];
	unsigned int mdlen = 0;
	const char *body;
	size_t i;

	(void)unused;
	for (i = 0; i < 1001; i++) {
		snprintf(names[i], sizeof(names[i]), "k/%04zu", i);
		keys[i] = names[i];
	}
	keys[1000] = "k/a&b";
	memset(&cap, 0, sizeof(cap));
	cap.replies = replies;
	cap.nreplies = 2;
	capture_start(&cap, &th);
	c = capture_client(cap.port);
	assert_int_equal(s3_delete_objects(c, "bkt", keys, 1001, &err), SLUICE_EIO);
	pthread_join(th, NULL);
	close(cap.lfd);
	/* 1000 keys a request; the second answer's per-key error is reported with the key */
	assert_string_equal(err.msg, "s3 DELETE s3://bkt/k/a&b: AccessDenied: Access Denied (DeleteObjects)");
	assert_int_equal(cap.nall, 2);
	assert_non_null(strstr(cap.all[0].s, "POST /bkt?delete= HTTP/1.1\r\n"));
	assert_int_equal(count_of(req_body(cap.all[0].s), "<Object>"), 1000);
	body = req_body(cap.all[1].s);
	assert_string_equal(body, "<Delete><Quiet>true</Quiet><Object><Key>k/a&amp;b</Key></Object></Delete>");
	/* S3 refuses DeleteObjects without Content-MD5; the body's hash is signed */
	assert_int_equal(req_header(cap.all[1].s, "content-md5", &v), 0);
	assert_true(EVP_Digest(body, strlen(body), md, &mdlen, EVP_md5(), NULL));
	EVP_EncodeBlock((unsigned char *)md5, md, 16);
	assert_string_equal(v.s, md5);
	assert_int_equal(req_header(cap.all[1].s, "x-amz-content-sha256", &v), 0);
	assert_int_equal(s3_content_sha256(body, strlen(body), 0, sha), 0);
	assert_string_equal(v.s, sha);
	assert_int_equal(verify_sigv4(cap.all[1].s, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "eu-west-1"), 0);
	s3_client_free(c);
	capture_release(&cap);
	buf_release(&v);
}

/* ---- file:// ---------------------------------------------------------- */

static void test_file_roundtrip(void **unused)
{
	struct objstore *s = open_file();

	(void)unused;
	check_roundtrip(s);
	s->ops->close(s);
}

static void test_file_stream(void **unused)
{
	struct objstore *s = open_file();
	struct sluice_err err = SLUICE_ERR_INIT;
	struct gen g = { 1, 1 << 20, 0, 300000 };
	struct objstore_info info;
	struct counter c = { 0, 1, "", NULL, 0, 0 };

	(void)unused;
	check_stream(s, "big/stream.bin", 3LL * 1024 * 1024 + 17);
	/* a failing reader leaves neither the object nor a temp file */
	assert_true(s->ops->put_stream(s, "big/broken.bin", -1, gen_read, &g, &err) < 0);
	assert_non_null(strstr(err.msg, "reader broke"));
	assert_int_equal(s->ops->head(s, "big/broken.bin", &info, &err), 0);
	assert_int_equal(info.exists, 0);
	assert_int_equal(s->ops->list(s, "big/", count_entry, &c, &err), 0);
	assert_int_equal(c.n, 1);
	assert_string_equal(c.last, "big/stream.bin");
	s->ops->close(s);
}

static void test_file_list_and_missing(void **unused)
{
	struct objstore *s = open_file();
	struct sluice_err err = SLUICE_ERR_INIT;

	(void)unused;
	check_list(s, 1100);
	check_missing(s, NULL, &err);
	assert_non_null(strstr(err.msg, "no such object"));
	/* keys cannot leave the root */
	assert_int_equal(s->ops->put(s, "../escape", "x", 1, &err), SLUICE_EUSAGE);
	assert_int_equal(s->ops->put(s, "a/./b", "x", 1, &err), SLUICE_EUSAGE);
	assert_int_equal(s->ops->put(s, "/abs", "x", 1, &err), SLUICE_EUSAGE);
	s->ops->close(s);
}

/* put_if's contract, on any store that really checks conditions. */
static void check_put_if(struct objstore *s)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct objstore_info info;
	struct buf got = BUF_INIT;
	char e1[OBJSTORE_ETAG_SIZE], e2[OBJSTORE_ETAG_SIZE], e3[OBJSTORE_ETAG_SIZE];
	struct counter c = { 0, 1, "", NULL, 0, 0 };

	assert_non_null(s->ops->put_if);
	if (s->ops->put_if(s, "cas/obj.json", "one", 3, NULL, 1, e1, &err) < 0)
		fail_msg("put_if (new): %s", err.msg);
	assert_int_equal(s->ops->head(s, "cas/obj.json", &info, &err), 0);
	assert_string_equal(info.etag, e1);
	assert_true(e1[0] != '\0');

	/* it exists now: If-None-Match loses and changes nothing */
	assert_int_equal(s->ops->put_if(s, "cas/obj.json", "two", 3, NULL, 1, e2, &err), SLUICE_ECONFLICT);
	assert_non_null(strstr(err.msg, "cas/obj.json"));
	assert_int_equal(s->ops->get(s, "cas/obj.json", collect, &got, &err), 0);
	assert_string_equal(got.s, "one");

	/* If-Match with the current ETag wins and yields a new ETag */
	assert_int_equal(s->ops->put_if(s, "cas/obj.json", "three", 5, e1, 0, e2, &err), 0);
	assert_string_not_equal(e1, e2);
	assert_int_equal(s->ops->head(s, "cas/obj.json", &info, &err), 0);
	assert_string_equal(info.etag, e2);

	/* ... and the old ETag no longer matches */
	assert_int_equal(s->ops->put_if(s, "cas/obj.json", "four", 4, e1, 0, e3, &err), SLUICE_ECONFLICT);
	buf_reset(&got);
	assert_int_equal(s->ops->get(s, "cas/obj.json", collect, &got, &err), 0);
	assert_string_equal(got.s, "three");

	/* a plain put replaces the object, and its ETag changes */
	assert_int_equal(s->ops->put(s, "cas/obj.json", "three", 5, &err), 0);
	assert_int_equal(s->ops->put_if(s, "cas/obj.json", "five", 4, e2, 0, e3, &err), SLUICE_ECONFLICT);

	/* If-Match on a missing object loses */
	assert_int_equal(s->ops->put_if(s, "cas/none.json", "x", 1, e2, 0, e3, &err), SLUICE_ECONFLICT);
	assert_int_equal(s->ops->head(s, "cas/none.json", &info, &err), 0);
	assert_int_equal(info.exists, 0);

	/* listings report the ETag head() does; a lost put_if leaves no temp file */
	assert_int_equal(s->ops->head(s, "cas/obj.json", &info, &err), 0);
	assert_int_equal(s->ops->list(s, "cas/", count_entry, &c, &err), 0);
	assert_int_equal(c.n, 1);
	buf_release(&got);
}

/* Read-modify-write of a counter by several writers at once, each retrying when it loses. */
struct rmw {
	struct objstore *s;
	int rounds;
	int conflicts;
	char failure[sizeof(((struct sluice_err *)0)->msg)];
};

static void *rmw_main(void *ud)
{
	struct rmw *w = ud;
	int i;

	for (i = 0; i < w->rounds && !w->failure[0]; i++) {
		for (;;) {
			struct sluice_err err = SLUICE_ERR_INIT;
			struct objstore_info info;
			struct buf got = BUF_INIT;
			char text[32];
			int rc;

			if (w->s->ops->head(w->s, "counter", &info, &err) < 0 ||
			    (info.exists && w->s->ops->get(w->s, "counter", collect, &got, &err) < 0)) {
				/* replaced between head and get: the old file's name is gone, not the object */
				buf_release(&got);
				if (strstr(err.msg, "no such object"))
					continue;
				snprintf(w->failure, sizeof(w->failure), "%s", err.msg);
				break;
			}
			snprintf(text, sizeof(text), "%ld", (got.len ? strtol(got.s, NULL, 10) : 0) + 1);
			buf_release(&got);
			rc = w->s->ops->put_if(w->s, "counter", text, strlen(text), info.etag, !info.exists, NULL, &err);
			if (rc == 0)
				break;
			if (rc != SLUICE_ECONFLICT) {
				snprintf(w->failure, sizeof(w->failure), "%s", err.msg);
				break;
			}
			w->conflicts++;
		}
	}
	return NULL;
}

static void test_file_put_if(void **unused)
{
	struct objstore *s = open_file();

	(void)unused;
	check_put_if(s);
	s->ops->close(s);
}

static void test_file_put_if_concurrent(void **unused)
{
	struct rmw w[4];
	pthread_t th[4];
	struct objstore *s = open_file();
	struct sluice_err err = SLUICE_ERR_INIT;
	struct buf got = BUF_INIT;
	int i, conflicts = 0;

	(void)unused;
	for (i = 0; i < 4; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].s = open_file();     /* a store is used by one thread at a time */
		w[i].rounds = 50;
		assert_int_equal(pthread_create(&th[i], NULL, rmw_main, &w[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		if (w[i].failure[0])
			fail_msg("writer %d: %s", i, w[i].failure);
		conflicts += w[i].conflicts;
		w[i].s->ops->close(w[i].s);
	}
	/* no increment was lost, although writers did collide */
	assert_int_equal(s->ops->get(s, "counter", collect, &got, &err), 0);
	buf_addc(&got, '\0');
	assert_string_equal(got.s, "200");
	print_message("# %d lost conditions were retried\n", conflicts);
	s->ops->close(s);
	buf_release(&got);
}

/* ---- s3:// against s3rver --------------------------------------------- */

static void test_s3_roundtrip(void **unused)
{
	struct objstore *s = open_s3(0);

	(void)unused;
	check_roundtrip(s);
	s->ops->close(s);
}

static void test_s3_small_stream_is_one_put(void **unused)
{
	struct objstore *s = open_s3(5 * 1024 * 1024);

	(void)unused;
	check_stream(s, "stream/small.bin", 1000);
	s->ops->close(s);
}

static void test_s3_multipart(void **unused)
{
	struct sluice_err err = SLUICE_ERR_INIT;
	struct val set = s3_settings(need_env("SLUICE_TEST_S3_ENDPOINT"),
				     need_env("SLUICE_TEST_S3_SECRET_ACCESS_KEY"), 5 * 1024 * 1024);
	const char *bucket = need_env("SLUICE_TEST_S3_BUCKET");
	long long size = 12LL * 1024 * 1024 + 123;  /* three parts, the last short */
	struct gen g = { 42, size, 0, 0 };
	struct check chk = { 42, 0, -1 };
	struct s3_config cfg;
	struct s3_client *c = NULL;
	struct objstore_info info;
	char key[64];

	(void)unused;
	snprintf(key, sizeof(key), "run-%u/stream/multi part.bin", run_id);
	assert_int_equal(s3_config_load(&set, &cfg, &err), 0);
	assert_int_equal(cfg.part_size, 5 * 1024 * 1024);
	assert_int_equal(s3_client_new(&cfg, &c, &err), 0);
	if (s3_put_stream(c, bucket, key, gen_read, &g, &err) < 0)
		fail_msg("put_stream: %s", err.msg);
	/* s3rver's ETags are plain MD5s, so count the parts ourselves */
	assert_int_equal(s3_client_stats(c)->parts, 3);
	if (s3_get_object(c, bucket, key, check_write, &chk, &err) < 0)
		fail_msg("get: %s", err.msg);
	assert_int_equal(chk.seen, size);
	assert_int_equal(chk.mismatch_at, -1);
	assert_int_equal(s3_head_object(c, bucket, key, &info, &err), 0);
	assert_int_equal(info.size, size);
	assert_int_equal(s3_client_stats(c)->retries, 0);
	s3_client_free(c);
}

static void test_s3_multipart_abort_on_reader_error(void **unused)
{
	struct objstore *s = open_s3(5 * 1024 * 1024);
	struct sluice_err err = SLUICE_ERR_INIT;
	struct gen g = { 7, 20LL * 1024 * 1024, 0, 11LL * 1024 * 1024 };
	struct objstore_info info;

	(void)unused;
	assert_true(s->ops->put_stream(s, "stream/broken.bin", -1, gen_read, &g, &err) < 0);
	assert_non_null(strstr(err.msg, "reader broke"));
	assert_int_equal(s->ops->head(s, "stream/broken.bin", &info, &err), 0);
	assert_int_equal(info.exists, 0);
	s->ops->close(s);
}

static void test_s3_list_continuation(void **unused)
{
	struct objstore *s = open_s3(0);

	(void)unused;
	check_list(s, 1100);   /* S3 pages at 1000 keys */
	s->ops->close(s);
}

static void test_s3_delete_many(void **unused)
{
	struct objstore *s = open_s3(0);
	struct sluice_err err = SLUICE_ERR_INIT;
	struct counter c = { 0, 1, "", NULL, 0, 0 };
	const char *gone[] = { "dm/a b&c.json", "dm/missing", "dm/2" };

	(void)unused;
	assert_int_equal(s->ops->put(s, "dm/a b&c.json", "1", 1, &err), 0);
	assert_int_equal(s->ops->put(s, "dm/2", "2", 1, &err), 0);
	assert_int_equal(s->ops->put(s, "dm/3", "3", 1, &err), 0);
	assert_non_null(s->ops->del_many);
	if (s->ops->del_many(s, gone, 3, &err))
		fail_msg("del_many: %s", err.msg);
	assert_int_equal(s->ops->list(s, "dm/", count_entry, &c, &err), 0);
	assert_int_equal(c.n, 1);
	assert_string_equal(c.last, "dm/3");
	s->ops->close(s);
}

static void test_s3_missing_key_error(void **unused)
{
	struct objstore *s = open_s3(0);
	struct sluice_err err = SLUICE_ERR_INIT;

	(void)unused;
	check_missing(s, need_env("SLUICE_TEST_S3_SECRET_ACCESS_KEY"), &err);
	assert_non_null(strstr(err.msg, "NoSuchKey"));
	assert_non_null(strstr(err.msg, "HTTP 404"));
	assert_null(strstr(err.msg, "Authorization"));
	s->ops->close(s);
}

/*
 * s3rver checks the access key id but not SigV4 signatures, so a wrong
 * key id is the authentication failure it can produce.
 */
static void test_s3_auth_error_hides_secret(void **unused)
{
	const char *secret = "sluice-wrong-secret-123";
	struct val set = s3_settings(need_env("SLUICE_TEST_S3_ENDPOINT"), secret, 0);
	struct sluice_err err = SLUICE_ERR_INIT;
	struct objstore *s = NULL;
	char url[300];

	(void)unused;
	snprintf(url, sizeof(url), "s3://%s", need_env("SLUICE_TEST_S3_BUCKET"));
	val_dict_set(&arena, &set, "access_key_id", val_str("NOSUCHKEYID"));
	assert_int_equal(objstore_open(url, &set, &s, &err), 0);
	assert_true(s->ops->put(s, "denied.txt", "x", 1, &err) < 0);
	assert_non_null(strstr(err.msg, "InvalidAccessKeyId"));
	assert_non_null(strstr(err.msg, "denied.txt"));
	assert_null(strstr(err.msg, secret));
	s->ops->close(s);
}

static void test_s3_retries_then_transport_error(void **unused)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	char endpoint[64];
	struct s3_config cfg;
	struct s3_client *c = NULL;
	struct sluice_err err = SLUICE_ERR_INIT;
	struct buf got = BUF_INIT;
	double t0;
	double ms;

	(void)unused;
	/* a port that nothing listens on: a stopped server */
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	close(fd);
	snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", ntohs(sa.sin_port));

	memset(&cfg, 0, sizeof(cfg));
	cfg.endpoint = endpoint;
	cfg.region = "us-east-1";
	cfg.access_key_id = "AKIDEXAMPLE";
	cfg.secret_access_key = "secret-never-shown";
	cfg.path_style = -1;
	cfg.max_attempts = 4;
	cfg.retry_base_ms = 50;
	assert_int_equal(s3_client_new(&cfg, &c, &err), 0);
	t0 = clock_monotonic();
	assert_int_equal(s3_get_object(c, "bkt", "some/key", collect, &got, &err), SLUICE_ECONN);
	ms = (clock_monotonic() - t0) * 1e3;
	/* three backoffs: 50 + 100 + 200 ms */
	assert_true(ms >= 340);
	assert_true(ms < 10000);
	assert_non_null(strstr(err.msg, "s3://bkt/some/key"));
	assert_non_null(strstr(err.msg, "gave up after 4 attempts"));
	assert_null(strstr(err.msg, "secret-never-shown"));
	s3_client_free(c);
	buf_release(&got);
}

/*
 * The pinned s3rver (3.7.1) answers conditional PUTs as plain PUTs: it
 * never reads If-Match or If-None-Match on a write (only GET honours
 * If-None-Match, with a 304). docs/state.md relies on this being known:
 * if a newer s3rver starts checking, this test fails and the docs and
 * the S3 state tests can then test the conditions for real.
 */
static void test_s3rver_ignores_write_conditions(void **unused)
{
	struct objstore *s = open_s3(0);
	struct sluice_err err = SLUICE_ERR_INIT;
	struct objstore_info info;
	struct buf got = BUF_INIT;
	char e1[OBJSTORE_ETAG_SIZE], e2[OBJSTORE_ETAG_SIZE];

	(void)unused;
	if (s->ops->put_if(s, "cond/obj", "one", 3, NULL, 1, e1, &err) < 0)
		fail_msg("put_if: %s", err.msg);
	/* the ETag of the answer is the one head() reports */
	assert_int_equal(s->ops->head(s, "cond/obj", &info, &err), 0);
	assert_string_equal(info.etag, e1);
	/* S3 would answer 412 to both */
	assert_int_equal(s->ops->put_if(s, "cond/obj", "two", 3, NULL, 1, e2, &err), 0);
	assert_int_equal(s->ops->put_if(s, "cond/obj", "three", 5, "0123456789abcdef", 0, e2, &err), 0);
	assert_int_equal(s->ops->get(s, "cond/obj", collect, &got, &err), 0);
	assert_int_equal(got.len, 5);
	assert_memory_equal(got.s, "three", 5);
	buf_release(&got);
	s->ops->close(s);
}

/* ---- main ------------------------------------------------------------- */

static int setup_all(void **unused)
{
	const char *base = getenv("SLUICE_TEST_TMP");

	(void)unused;
	arena_init(&arena);
	run_id = (unsigned)getpid() ^ (unsigned)time(NULL);
	snprintf(file_root, sizeof(file_root), "%s/sluice-s3-XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(file_root))
		return -1;
	return 0;
}

static int teardown_all(void **unused)
{
	struct sluice_err err = SLUICE_ERR_INIT;

	(void)unused;
	fs_remove_tree(file_root, &err);
	arena_release(&arena);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uri_encode),
		cmocka_unit_test(test_query_sorted_and_encoded),
		cmocka_unit_test(test_content_sha256_choice),
		cmocka_unit_test(test_error_parse),
		cmocka_unit_test(test_list_parse),
		cmocka_unit_test(test_url_build),
		cmocka_unit_test(test_config_fallbacks),
		cmocka_unit_test(test_open_unknown_scheme),
		cmocka_unit_test(test_sigv4_put_signs_payload_hash),
		cmocka_unit_test(test_sigv4_list_signs_sorted_query),
		cmocka_unit_test(test_retry_5xx_and_429_then_success),
		cmocka_unit_test(test_get_cut_short_resumes),
		cmocka_unit_test(test_4xx_is_not_retried),
		cmocka_unit_test(test_sigv4_multipart_unsigned_parts),
		cmocka_unit_test(test_part_size_for),
		cmocka_unit_test(test_multipart_failure_aborts),
		cmocka_unit_test(test_put_if_headers_and_conflicts),
		cmocka_unit_test(test_bodiless_error_names_status),
		cmocka_unit_test(test_delete_objects_batches),
		cmocka_unit_test(test_file_roundtrip),
		cmocka_unit_test(test_file_put_if),
		cmocka_unit_test(test_file_put_if_concurrent),
		cmocka_unit_test(test_file_stream),
		cmocka_unit_test(test_file_list_and_missing),
		cmocka_unit_test(test_s3_retries_then_transport_error),
		/* from here on, tests that need s3rver */
		cmocka_unit_test(test_s3_roundtrip),
		cmocka_unit_test(test_s3_small_stream_is_one_put),
		cmocka_unit_test(test_s3_multipart),
		cmocka_unit_test(test_s3_multipart_abort_on_reader_error),
		cmocka_unit_test(test_s3_list_continuation),
		cmocka_unit_test(test_s3_delete_many),
		cmocka_unit_test(test_s3_missing_key_error),
		cmocka_unit_test(test_s3_auth_error_hides_secret),
		cmocka_unit_test(test_s3rver_ignores_write_conditions),
	};
	const size_t all = sizeof(tests) / sizeof(tests[0]), without_s3rver = 23;
	const char *why = getenv("SLUICE_TEST_S3_UNAVAILABLE");

	/*
	 * The harness could not install s3rver (the npm registry was not
	 * reachable): leave out only the tests that need it, and say so.
	 */
	if (why && *why) {
		printf("# SKIPPED %zu s3rver tests: %s\n", all - without_s3rver, why);
		return _cmocka_run_group_tests("s3", tests, without_s3rver, setup_all, teardown_all);
	}
	return _cmocka_run_group_tests("s3", tests, all, setup_all, teardown_all);
}
