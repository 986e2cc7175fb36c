/*
 * s3.c: the S3 client behind s3.h and the s3:// object store.
 *
 * Every request goes through s3_request(): build the URL (path-style or
 * virtual-hosted), add x-amz-content-sha256 (and the session token), let
 * libcurl sign with CURLOPT_AWS_SIGV4, and retry transport errors, 5xx and
 * 429 with exponential backoff. Response bodies either stream to the
 * caller's sink (GetObject) or land in a small capped buffer (XML).
 *
 * Not here: signing (libcurl's), credentials from instance metadata or STS
 * (iam_role is carried for Redshift COPY/UNLOAD only), bucket management.
 * Never enable CURLOPT_VERBOSE: it would print the Authorization header.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <sys/mman.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "s3.h"
#include "../engine/util/xalloc.h"
#include "../engine/util/clock.h"

#define S3_XML_CAP (4u * 1024 * 1024)   /* list pages are ~250 KiB; errors are small */

struct s3_client {
	char *endpoint;          /* no trailing '/' */
	char *region;
	char *userpwd;           /* "akid:secret" for libcurl; never printed */
	char *session_token;
	char *sigv4;             /* "aws:amz:<region>:s3" */
	int path_style;
	size_t part_size;
	int max_attempts;
	long retry_base_ms;
	long connect_timeout_ms;
	CURL *curl;              /* reused: keeps the connection alive */
	struct s3_stats stats;
};

/* ---- pure helpers ------------------------------------------------------ */

void s3_uri_encode(struct buf *out, const char *s, size_t len, int keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~' ||
		    (keep_slash && ch == '/')) {
			buf_addc(out, (char)ch);
		} else {
			buf_addc(out, '%');
			buf_addc(out, hex[ch >> 4]);
			buf_addc(out, hex[ch & 15]);
		}
	}
}

struct enc_param {
	char *name;
	char *value;
};

static int enc_param_cmp(const void *a, const void *b)
{
	const struct enc_param *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : strcmp(x->value, y->value);
}

void s3_query_build(struct buf *out, const struct s3_param *params, size_t n)
{
	struct enc_param *enc;
	size_t i;

	if (!n)
		return;
	enc = xcalloc(n, sizeof(*enc));
	for (i = 0; i < n; i++) {
		struct buf b = BUF_INIT;
		const char *v = params[i].value ? params[i].value : "";

		s3_uri_encode(&b, params[i].name, strlen(params[i].name), 0);
		enc[i].name = buf_detach(&b, NULL);
		s3_uri_encode(&b, v, strlen(v), 0);
		enc[i].value = buf_detach(&b, NULL);
	}
	/* Sorting the encoded bytes is what SigV4 specifies. */
	qsort(enc, n, sizeof(*enc), enc_param_cmp);
	for (i = 0; i < n; i++) {
		if (i)
			buf_addc(out, '&');
		buf_printf(out, "%s=%s", enc[i].name, enc[i].value);
		free(enc[i].name);
		free(enc[i].value);
	}
	free(enc);
}

int s3_content_sha256(const void *data, size_t len, int streamed, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;

	if (streamed) {
		snprintf(out, 65, "%s", "UNSIGNED-PAYLOAD");
		return 0;
	}
	if (!EVP_Digest(data ? data : "", len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32) {
		out[0] = '\0';
		return -1;
	}
	for (i = 0; i < mdlen; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	return 0;
}

/* Append s[0..len) to out with the five XML entities and &#N; decoded. */
static void xml_unescape(struct buf *out, const char *s, size_t len)
{
	static const struct { const char *ent; char ch; } ents[] = {
		{ "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' },
		{ "&quot;", '"' }, { "&apos;", '\'' },
	};
	size_t i = 0, k;

	while (i < len) {
		if (s[i] != '&') {
			buf_addc(out, s[i++]);
			continue;
		}
		for (k = 0; k < sizeof(ents) / sizeof(ents[0]); k++) {
			size_t el = strlen(ents[k].ent);

			if (len - i >= el && memcmp(s + i, ents[k].ent, el) == 0) {
				buf_addc(out, ents[k].ch);
				i += el;
				break;
			}
		}
		if (k < sizeof(ents) / sizeof(ents[0]))
			continue;
		if (len - i > 3 && s[i + 1] == '#') {
			const char *semi = memchr(s + i, ';', len - i);
			char num[16];
			size_t nl = semi ? (size_t)(semi - (s + i + 2)) : 0;

			if (semi && nl > 0 && nl < sizeof(num)) {
				unsigned long cp;

				memcpy(num, s + i + 2, nl);
				num[nl] = '\0';
				cp = num[0] == 'x' ? strtoul(num + 1, NULL, 16) : strtoul(num, NULL, 10);
				/* UTF-8 encode; keys are UTF-8 */
				if (cp < 0x80) {
					buf_addc(out, (char)cp);
				} else if (cp < 0x800) {
					buf_addc(out, (char)(0xC0 | (cp >> 6)));
					buf_addc(out, (char)(0x80 | (cp & 0x3F)));
				} else if (cp < 0x10000) {
					buf_addc(out, (char)(0xE0 | (cp >> 12)));
					buf_addc(out, (char)(0x80 | ((cp >> 6) & 0x3F)));
					buf_addc(out, (char)(0x80 | (cp & 0x3F)));
				} else {
					buf_addc(out, (char)(0xF0 | (cp >> 18)));
					buf_addc(out, (char)(0x80 | ((cp >> 12) & 0x3F)));
					buf_addc(out, (char)(0x80 | ((cp >> 6) & 0x3F)));
					buf_addc(out, (char)(0x80 | (cp & 0x3F)));
				}
				i = (size_t)(semi - s) + 1;
				continue;
			}
		}
		buf_addc(out, s[i++]);
	}
}

/*
 * Find <tag>text</tag> in [s, end). Returns a pointer to the text and sets
 * *tlen, or NULL. *after (if not NULL) points past the closing tag. Good
 * enough for S3's flat, attribute-free responses; not a general parser.
 */
static const char *xml_find(const char *s, const char *end, const char *tag, size_t *tlen,
			    const char **after)
{
	char open[64], close[64];
	size_t ol, cl;
	const char *p, *q;

	ol = (size_t)snprintf(open, sizeof(open), "<%s>", tag);
	cl = (size_t)snprintf(close, sizeof(close), "</%s>", tag);
	if (s >= end)
		return NULL;
	p = memmem(s, (size_t)(end - s), open, ol);
	if (!p)
		return NULL;
	p += ol;
	q = memmem(p, (size_t)(end - p), close, cl);
	if (!q)
		return NULL;
	*tlen = (size_t)(q - p);
	if (after)
		*after = q + cl;
	return p;
}

int s3_error_parse(const char *body, size_t len, struct buf *code, struct buf *message)
{
	const char *end = body + len, *t;
	size_t tl;

	if (!body || !len)
		return -1;
	t = xml_find(body, end, "Code", &tl, NULL);
	if (!t)
		return -1;
	xml_unescape(code, t, tl);
	t = xml_find(body, end, "Message", &tl, NULL);
	if (t)
		xml_unescape(message, t, tl);
	return 0;
}

int s3_url_build(struct buf *out, const char *endpoint, int path_style, const char *bucket,
		 const char *key, const char *query, struct sluice_err *err)
{
	const char *sep = strstr(endpoint, "://");
	size_t elen = strlen(endpoint);

	if (!sep || sep == endpoint || !sep[3])
		return err_set(err, SLUICE_EUSAGE, "s3: endpoint '%s' is not a URL (want http[s]://host[:port])",
			       endpoint);
	while (elen && endpoint[elen - 1] == '/')
		elen--;
	if (path_style) {
		buf_add(out, endpoint, elen);
		buf_addc(out, '/');
		s3_uri_encode(out, bucket, strlen(bucket), 0);
	} else {
		size_t sl = (size_t)(sep - endpoint) + 3;

		buf_add(out, endpoint, sl);
		buf_puts(out, bucket);  /* DNS-compatible bucket names only */
		buf_addc(out, '.');
		buf_add(out, endpoint + sl, elen - sl);
	}
	if (key && *key) {
		buf_addc(out, '/');
		s3_uri_encode(out, key, strlen(key), 1);
	} else if (!path_style) {
		buf_addc(out, '/');
	}
	if (query && *query) {
		buf_addc(out, '?');
		buf_puts(out, query);
	}
	return 0;
}

/* ---- configuration ----------------------------------------------------- */

/* The block's key, else the first environment variable set (env2 may be NULL). */
static const char *setting(const struct val *settings, const char *key, const char *env,
			   const char *env2)
{
	const char *v = settings ? val_get_str(settings, key, NULL) : NULL;

	if (v && *v)
		return v;
	v = env ? getenv(env) : NULL;
	if (v && *v)
		return v;
	v = env2 ? getenv(env2) : NULL;
	return v && *v ? v : NULL;
}

int s3_config_load(const struct val *settings, struct s3_config *cfg, struct sluice_err *err)
{
	long long part;

	memset(cfg, 0, sizeof(*cfg));
	/* The service-specific and older names the AWS tools also read come second. */
	cfg->endpoint = setting(settings, "endpoint", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL");
	cfg->region = setting(settings, "region", "AWS_REGION", "AWS_DEFAULT_REGION");
	if (!cfg->region)
		cfg->region = "us-east-1";
	cfg->access_key_id = setting(settings, "access_key_id", "AWS_ACCESS_KEY_ID", NULL);
	cfg->secret_access_key = setting(settings, "secret_access_key", "AWS_SECRET_ACCESS_KEY", NULL);
	cfg->session_token = setting(settings, "session_token", "AWS_SESSION_TOKEN", NULL);
	cfg->iam_role = setting(settings, "iam_role", NULL, NULL);
	cfg->path_style = -1;
	if (settings && val_get(settings, "path_style"))
		cfg->path_style = val_get_bool(settings, "path_style", 0) ? 1 : 0;
	part = settings ? val_get_int(settings, "part_size", 0) : 0;
	if (part < 0)
		return err_set(err, SLUICE_EUSAGE, "s3: part_size must be positive");
	if (part && (unsigned long long)part < S3_MIN_PART_SIZE &&
	    !(settings && val_get_bool(settings, "allow_small_parts", 0)))
		return err_set(err, SLUICE_EUSAGE, "s3: part_size %lld is below S3's minimum of %u bytes",
			       part, S3_MIN_PART_SIZE);
	cfg->part_size = (size_t)part;
	cfg->max_attempts = settings ? (int)val_get_int(settings, "max_attempts", 0) : 0;
	if (!cfg->access_key_id || !cfg->secret_access_key)
		return err_set(err, SLUICE_EUSAGE,
			       "s3: no credentials: set access_key_id and secret_access_key in the s3 block "
			       "or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
	return 0;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void s3_curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int s3_client_new(const struct s3_config *cfg, struct s3_client **out, struct sluice_err *err)
{
	struct s3_client *c;
	struct buf b = BUF_INIT;
	const char *region = cfg->region && *cfg->region ? cfg->region : "us-east-1";

	*out = NULL;
	if (!cfg->access_key_id || !cfg->secret_access_key)
		return err_set(err, SLUICE_EUSAGE, "s3: no credentials");
	pthread_once(&curl_once, s3_curl_init);
	if (curl_init_rc != CURLE_OK)
		return err_set(err, SLUICE_EIO, "s3: libcurl init failed: %s", curl_easy_strerror(curl_init_rc));
	c = xcalloc(1, sizeof(*c));
	if (cfg->endpoint && *cfg->endpoint) {
		size_t n = strlen(cfg->endpoint);

		while (n && cfg->endpoint[n - 1] == '/')
			n--;
		c->endpoint = xstrndup(cfg->endpoint, n);
		c->path_style = cfg->path_style < 0 ? 1 : cfg->path_style;
	} else {
		buf_printf(&b, "https://s3.%s.amazonaws.com", region);
		c->endpoint = buf_detach(&b, NULL);
		c->path_style = cfg->path_style < 0 ? 0 : cfg->path_style;
	}
	c->region = xstrdup(region);
	buf_printf(&b, "%s:%s", cfg->access_key_id, cfg->secret_access_key);
	c->userpwd = buf_detach(&b, NULL);
	c->session_token = cfg->session_token && *cfg->session_token ? xstrdup(cfg->session_token) : NULL;
	buf_printf(&b, "aws:amz:%s:s3", region);
	c->sigv4 = buf_detach(&b, NULL);
	c->part_size = cfg->part_size;
	c->max_attempts = cfg->max_attempts > 0 ? cfg->max_attempts : 5;
	c->retry_base_ms = cfg->retry_base_ms > 0 ? cfg->retry_base_ms : 200;
	c->connect_timeout_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 10000;
	c->curl = curl_easy_init();
	if (!c->curl) {
		s3_client_free(c);
		return err_set(err, SLUICE_EIO, "s3: curl_easy_init failed");
	}
	*out = c;
	return 0;
}

void s3_client_free(struct s3_client *c)
{
	if (!c)
		return;
	if (c->curl)
		curl_easy_cleanup(c->curl);
	free(c->endpoint);
	free(c->region);
	if (c->userpwd) {
		/* do not leave the secret in freed heap memory */
		volatile char *p = c->userpwd;

		while (*p)
			*p++ = '\0';
		free(c->userpwd);
	}
	free(c->session_token);
	free(c->sigv4);
	free(c);
}

const struct s3_stats *s3_client_stats(const struct s3_client *c)
{
	return &c->stats;
}

/* ---- one request, with retries ---------------------------------------- */

struct s3_req {
	const char *method;          /* GET PUT POST DELETE HEAD */
	const char *bucket;
	const char *key;             /* NULL for bucket-level requests */
	const char *query;           /* built with s3_query_build, or NULL */
	const void *body;            /* request body (may be NULL with len 0) */
	size_t body_len;
	int unsigned_payload;        /* send UNSIGNED-PAYLOAD instead of the hash */
	const char *content_type;
	const char *content_md5;     /* base64, for the requests S3 wants it on (DeleteObjects) */
	const char *if_match;        /* PUT only if the object's ETag is this (no quotes) */
	int if_none_match;           /* PUT only if no object exists */
	CURL *handle;                /* the easy handle to use; NULL: the client's own */
	sluice_write_fn sink;        /* 2xx body goes here when set ... */
	void *sink_ud;
	struct buf *xml;             /* ... else here (capped); error bodies always here */

	/* results */
	long status;
	long long content_length;
	char etag[OBJSTORE_ETAG_SIZE];
	char last_modified[64];

	/* per-attempt state */
	size_t body_off;
	long long delivered;         /* bytes handed to sink */
	/* a GET cut short resumes where it stopped, from the same object */
	long long resume_from;       /* bytes the sink had when this attempt began */
	long long resent;            /* of those, bytes a 200 (Range ignored) sent again */
	char resume_etag[OBJSTORE_ETAG_SIZE];
	int sink_failed;
	struct buf errbody;
	struct sluice_err *err;
	CURL *curl;
};

static size_t s3_read_cb(char *dst, size_t size, size_t nmemb, void *ud)
{
	struct s3_req *r = ud;
	size_t want = size * nmemb, left = r->body_len - r->body_off;

	if (want > left)
		want = left;
	if (want)
		memcpy(dst, (const char *)r->body + r->body_off, want);
	r->body_off += want;
	return want;
}

static size_t s3_write_cb(char *data, size_t size, size_t nmemb, void *ud)
{
	struct s3_req *r = ud;
	size_t n = size * nmemb;
	long status = 0;

	curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status == 200 && r->sink && r->resent < r->resume_from) {
		/* the whole object again: skip what the sink already has */
		size_t skip = (size_t)(r->resume_from - r->resent) < n ? (size_t)(r->resume_from - r->resent) : n;
		r->resent += (long long)skip;
		data += skip;
		n -= skip;
		if (!n)
			return size * nmemb;
	}
	if (status >= 200 && status < 300 && r->sink) {
		if (r->sink(r->sink_ud, data, n, r->err) < 0) {
			r->sink_failed = 1;
			return 0;  /* makes libcurl stop with CURLE_WRITE_ERROR */
		}
		r->delivered += (long long)n;
		return size * nmemb;
	}
	if (status >= 200 && status < 300 && r->xml) {
		if (r->xml->len + n > S3_XML_CAP)
			return 0;
		buf_add(r->xml, data, n);
		return n;
	}
	if (r->errbody.len + n <= 64 * 1024)
		buf_add(&r->errbody, data, n);
	return n;
}

static void header_value(char *dst, size_t cap, const char *v, size_t n, int strip_quotes)
{
	while (n && (*v == ' ' || *v == '\t')) {
		v++;
		n--;
	}
	while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
		n--;
	if (strip_quotes && n >= 2 && v[0] == '"' && v[n - 1] == '"') {
		v++;
		n -= 2;
	}
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, v, n);
	dst[n] = '\0';
}

static size_t s3_header_cb(char *data, size_t size, size_t nmemb, void *ud)
{
	struct s3_req *r = ud;
	size_t n = size * nmemb;

	if (n > 5 && strncasecmp(data, "etag:", 5) == 0) {
		header_value(r->etag, sizeof(r->etag), data + 5, n - 5, 1);
	} else if (n > 14 && strncasecmp(data, "last-modified:", 14) == 0) {
		header_value(r->last_modified, sizeof(r->last_modified), data + 14, n - 14, 0);
	} else if (n > 15 && strncasecmp(data, "content-length:", 15) == 0) {
		char tmp[32];

		header_value(tmp, sizeof(tmp), data + 15, n - 15, 0);
		r->content_length = strtoll(tmp, NULL, 10);
	}
	return n;
}

static int transient_curl_error(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return 1;
	default:
		return 0;
	}
}

/* S3's code for a status whose answer had no XML body. */
static const char *status_words(long status)
{
	switch (status) {
	case 400: return "BadRequest: bad request";
	case 403: return "Forbidden: access denied";
	case 404: return "NoSuchKey: not found";
	case 409: return "Conflict: conflicting operation";
	case 412: return "PreconditionFailed: the object changed";
	default: return "no S3 error code";
	}
}

/* "s3://bucket/key" for messages. */
static void describe(struct buf *b, const struct s3_req *r)
{
	buf_printf(b, "s3://%s/%s", r->bucket, r->key ? r->key : "");
}

/*
 * One attempt. Returns 0 on a 2xx, 1 when the caller may retry, or a
 * negative code with err set.
 */
static int s3_attempt(struct s3_client *c, struct s3_req *r, const char *url, int attempt)
{
	CURL *h = r->handle ? r->handle : c->curl;
	struct curl_slist *hdrs = NULL;
	char sha[65], line[128 + 65];
	char cerr[CURL_ERROR_SIZE];
	struct buf where = BUF_INIT, tok = BUF_INIT;
	CURLcode rc;
	int ret, last = attempt >= c->max_attempts;

	curl_easy_reset(h);
	r->curl = h;
	r->body_off = 0;
	r->status = 0;
	r->content_length = -1;
	r->etag[0] = r->last_modified[0] = '\0';
	buf_reset(&r->errbody);
	if (r->xml)
		buf_reset(r->xml);
	cerr[0] = '\0';

	if (s3_content_sha256(r->body, r->body_len, r->unsigned_payload, sha) < 0)
		return err_set(r->err, SLUICE_EIO, "s3: SHA-256 failed");
	snprintf(line, sizeof(line), "x-amz-content-sha256: %s", sha);
	hdrs = curl_slist_append(hdrs, line);
	if (c->session_token) {
		buf_printf(&tok, "x-amz-security-token: %s", c->session_token);
		hdrs = curl_slist_append(hdrs, tok.s);
	}
	if (r->content_type) {
		snprintf(line, sizeof(line), "Content-Type: %s", r->content_type);
		hdrs = curl_slist_append(hdrs, line);
	}
	if (r->content_md5) {
		snprintf(line, sizeof(line), "Content-MD5: %s", r->content_md5);
		hdrs = curl_slist_append(hdrs, line);
	}
	r->resume_from = r->delivered;
	r->resent = 0;
	if (r->resume_from) {
		snprintf(line, sizeof(line), "Range: bytes=%lld-", r->resume_from);
		hdrs = curl_slist_append(hdrs, line);
		snprintf(line, sizeof(line), "If-Match: \"%s\"", r->resume_etag);
		hdrs = curl_slist_append(hdrs, line);
	} else if (r->if_none_match) {
		hdrs = curl_slist_append(hdrs, "If-None-Match: *");
	} else if (r->if_match) {
		snprintf(line, sizeof(line), "If-Match: \"%s\"", r->if_match);
		hdrs = curl_slist_append(hdrs, line);
	}

	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);   /* keys may hold "..": sign what we send */
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_AWS_SIGV4, c->sigv4);
	curl_easy_setopt(h, CURLOPT_USERPWD, c->userpwd);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
	/* a stalled transfer (under 1 byte/s for 60 s) counts as a transport error */
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, s3_write_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, s3_header_cb);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");

	if (strcmp(r->method, "PUT") == 0) {
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, s3_read_cb);
		curl_easy_setopt(h, CURLOPT_READDATA, r);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->body_len);
	} else if (strcmp(r->method, "POST") == 0) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->body ? (const char *)r->body : "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
	} else if (strcmp(r->method, "HEAD") == 0) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (strcmp(r->method, "DELETE") == 0) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
	}

	__atomic_add_fetch(&c->stats.requests, 1, __ATOMIC_RELAXED);
	rc = curl_easy_perform(h);
	curl_slist_free_all(hdrs);
	buf_release(&tok);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	describe(&where, r);

	if (r->sink_failed) {
		ret = err_prefix(r->err, "%s", where.s);
		goto out;
	}
	if (rc != CURLE_OK) {
		struct buf tries = BUF_INIT;

		/*
		 * A sink that already has bytes cannot be rewound: the next
		 * attempt asks for the rest (Range) of the same object
		 * (If-Match its ETag), or, without an ETag, gives up.
		 */
		if (transient_curl_error(rc) && !last && (r->delivered == 0 || r->etag[0])) {
			if (r->delivered)
				snprintf(r->resume_etag, sizeof(r->resume_etag), "%s", r->etag);
			ret = 1;
			goto out;
		}
		if (transient_curl_error(rc))
			buf_printf(&tries, ", gave up after %d attempt%s", attempt, attempt == 1 ? "" : "s");
		ret = err_set(r->err, rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ?
			      SLUICE_ECONN : SLUICE_EIO,
			      "s3 %s %s: %s (%s)%s", r->method, where.s,
			      curl_easy_strerror(rc), cerr[0] ? cerr : c->endpoint, tries.s);
		buf_release(&tries);
		goto out;
	}
	if (r->status >= 200 && r->status < 300) {
		ret = 0;
		goto out;
	}
	if ((r->status >= 500 || r->status == 429) && !last && r->delivered == 0) {
		ret = 1;
		goto out;
	}
	{
		struct buf code = BUF_INIT, msg = BUF_INIT;
		int have = s3_error_parse(r->errbody.s, r->errbody.len, &code, &msg) == 0;
		/* A lost condition is not a failure of the store: callers re-read and decide. */
		int ecode = r->status == 412 || (r->status == 409 && have &&
						  strcmp(code.s, "ConditionalRequestConflict") == 0) ?
			    SLUICE_ECONFLICT : SLUICE_EIO;

		if (have)
			ret = err_set(r->err, ecode, "s3 %s %s: %s: %s (HTTP %ld)", r->method, where.s,
				      code.s, msg.len ? msg.s : "no message", r->status);
		else   /* HEAD answers and some proxies carry no body: name the status */
			ret = err_set(r->err, ecode, "s3 %s %s: %s (HTTP %ld)", r->method, where.s,
				      status_words(r->status), r->status);
		buf_release(&code);
		buf_release(&msg);
	}
out:
	buf_release(&where);
	return ret;
}

static int s3_request(struct s3_client *c, struct s3_req *r, struct sluice_err *err)
{
	struct buf url = BUF_INIT;
	long delay = c->retry_base_ms;
	int attempt, ret;

	r->err = err;
	r->delivered = 0;
	r->sink_failed = 0;
	buf_init(&r->errbody);
	ret = s3_url_build(&url, c->endpoint, c->path_style, r->bucket, r->key, r->query, err);
	for (attempt = 1; ret == 0; attempt++) {
		ret = s3_attempt(c, r, url.s, attempt);
		if (ret != 1)
			break;
		__atomic_add_fetch(&c->stats.retries, 1, __ATOMIC_RELAXED);
		sleep_ms(delay);
		if (delay < 20000)
			delay *= 2;
		ret = 0;
	}
	buf_release(&url);
	buf_release(&r->errbody);
	return ret;
}

/* ---- operations -------------------------------------------------------- */

int s3_put_object(struct s3_client *c, const char *bucket, const char *key, const void *data,
		  size_t len, struct sluice_err *err)
{
	return s3_put_object_if(c, bucket, key, data, len, NULL, 0, NULL, err);
}

int s3_put_object_if(struct s3_client *c, const char *bucket, const char *key, const void *data,
		     size_t len, const char *if_match, int if_none_match,
		     char etag_out[OBJSTORE_ETAG_SIZE], struct sluice_err *err)
{
	struct s3_req r = {
		.method = "PUT",
		.bucket = bucket,
		.key = key,
		.body = data,
		.body_len = len,
		.if_match = if_none_match ? NULL : if_match,
		.if_none_match = if_none_match,
	};
	int ret = s3_request(c, &r, err);

	if (ret == 0 && etag_out)
		snprintf(etag_out, OBJSTORE_ETAG_SIZE, "%s", r.etag);
	return ret;
}

/* Fill part from fn until full or end; returns bytes read or negative. */
static ssize_t fill_part(sluice_read_fn fn, void *ud, char *part, size_t cap, int *eof,
			 struct sluice_err *err)
{
	size_t len = 0;

	while (len < cap) {
		ssize_t n = fn(ud, part + len, cap - len, err);

		if (n < 0)
			return n;
		if (n == 0) {
			*eof = 1;
			break;
		}
		len += (size_t)n;
	}
	return (ssize_t)len;
}

static void s3_abort_upload(struct s3_client *c, const char *bucket, const char *key,
			    const char *upload_id)
{
	struct sluice_err ignored = SLUICE_ERR_INIT;
	struct s3_param p = { "uploadId", upload_id };
	struct buf q = BUF_INIT;
	struct s3_req r;

	s3_query_build(&q, &p, 1);
	/* best effort: the original error is what the caller reports */
	r = (struct s3_req){
		.method = "DELETE",
		.bucket = bucket,
		.key = key,
		.query = q.s,
	};
	s3_request(c, &r, &ignored);
	buf_release(&q);
}

size_t s3_part_size_for(size_t configured, long long expect)
{
	unsigned long long part = configured ? configured : S3_DEFAULT_PART_SIZE, need;

	if (!configured && expect > 0 && (unsigned long long)expect + (1u << 20) <= S3_SINGLE_PUT_MAX) {
		need = ((unsigned long long)expect + (2u << 20) - 1) & ~((1ull << 20) - 1);
		if (need > part)
			part = need;
	} else if (expect > 0) {
		/* aim at 9,000 parts: an estimate that is 10% short still fits */
		need = ((unsigned long long)expect + S3_PLAN_PARTS - 1) / S3_PLAN_PARTS;
		if (need > part)
			part = (need + (1u << 20) - 1) & ~((1ull << 20) - 1);
	}
	return part > S3_MAX_PART_SIZE ? S3_MAX_PART_SIZE : (size_t)part;
}

/*
 * The upload half of a multipart put: one part at a time goes up on an
 * easy handle of its own while the caller fills the next one, so a
 * stream holds two part buffers and the network and the producer work at
 * the same time. Parts complete in order (one is in flight at a time),
 * so the CompleteMultipartUpload list is built as they finish.
 */
struct s3_uploader {
	struct s3_client *c;
	const char *bucket, *key, *upload_id;
	CURL *curl;
	pthread_t th;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	const char *body;            /* the part handed over (busy) */
	size_t len;
	int partno;
	int busy, quit;
	int rc;                      /* the first failure, with err */
	struct sluice_err err;
	struct buf done;             /* <Part> elements of the parts uploaded */
};

static int upload_part(struct s3_uploader *u, const char *body, size_t len, int partno)
{
	struct buf q = BUF_INIT;
	struct s3_param pp[2];
	struct s3_req r;
	char num[16];
	int ret;

	snprintf(num, sizeof(num), "%d", partno);
	pp[0].name = "partNumber";
	pp[0].value = num;
	pp[1].name = "uploadId";
	pp[1].value = u->upload_id;
	s3_query_build(&q, pp, 2);
	/* parts are the big bodies: skip hashing them; TLS and the ETag guard them */
	r = (struct s3_req){
		.method = "PUT",
		.bucket = u->bucket,
		.key = u->key,
		.query = q.s,
		.body = body,
		.body_len = len,
		.unsigned_payload = 1,
		.handle = u->curl,
	};
	ret = s3_request(u->c, &r, &u->err);
	if (ret == 0) {
		__atomic_add_fetch(&u->c->stats.parts, 1, __ATOMIC_RELAXED);
		buf_printf(&u->done, "<Part><PartNumber>%d</PartNumber><ETag>\"%s\"</ETag></Part>", partno, r.etag);
	}
	buf_release(&q);
	return ret;
}

static void *uploader_main(void *ud)
{
	struct s3_uploader *u = ud;

	pthread_mutex_lock(&u->lock);
	for (;;) {
		while (!u->busy && !u->quit)
			pthread_cond_wait(&u->cond, &u->lock);
		if (!u->busy)
			break;
		pthread_mutex_unlock(&u->lock);
		{
			int rc = u->rc ? u->rc : upload_part(u, u->body, u->len, u->partno);
			pthread_mutex_lock(&u->lock);
			u->rc = rc;
		}
		u->busy = 0;
		pthread_cond_broadcast(&u->cond);
	}
	pthread_mutex_unlock(&u->lock);
	return NULL;
}

/* Wait until no part is in flight: 0, or the upload's failure (in u->err). */
static int uploader_idle(struct s3_uploader *u)
{
	int rc;

	pthread_mutex_lock(&u->lock);
	while (u->busy)
		pthread_cond_wait(&u->cond, &u->lock);
	rc = u->rc;
	pthread_mutex_unlock(&u->lock);
	return rc;
}

/* Hand over a part; the caller has seen uploader_idle() return 0. */
static void uploader_hand(struct s3_uploader *u, const char *body, size_t len, int partno)
{
	pthread_mutex_lock(&u->lock);
	u->body = body;
	u->len = len;
	u->partno = partno;
	u->busy = 1;
	pthread_cond_broadcast(&u->cond);
	pthread_mutex_unlock(&u->lock);
}

static int uploader_start(struct s3_uploader *u, struct sluice_err *err)
{
	u->curl = curl_easy_init();
	if (!u->curl)
		return err_set(err, SLUICE_EIO, "s3: curl_easy_init failed");
	pthread_mutex_init(&u->lock, NULL);
	pthread_cond_init(&u->cond, NULL);
	if (pthread_create(&u->th, NULL, uploader_main, u)) {
		pthread_mutex_destroy(&u->lock);
		pthread_cond_destroy(&u->cond);
		curl_easy_cleanup(u->curl);
		u->curl = NULL;
		return err_set(err, SLUICE_EIO, "s3: cannot start an upload thread");
	}
	return 0;
}

/* After the last part in flight: stop the thread and free its handle. */
static void uploader_stop(struct s3_uploader *u)
{
	if (!u->curl)
		return;
	uploader_idle(u);
	pthread_mutex_lock(&u->lock);
	u->quit = 1;
	pthread_cond_broadcast(&u->cond);
	pthread_mutex_unlock(&u->lock);
	pthread_join(u->th, NULL);
	pthread_mutex_destroy(&u->lock);
	pthread_cond_destroy(&u->cond);
	curl_easy_cleanup(u->curl);
	u->curl = NULL;
}

/*
 * Part buffers come from mmap, not malloc: a freed one goes back to the
 * system at once. From malloc, each upload thread's 8 MiB buffers stayed
 * in that thread's arena (glibc raises its mmap threshold after the first
 * free), and a run's peak RSS grew with the threads that had uploaded.
 */
static char *part_buf_new(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static void part_buf_free(char *p, size_t n)
{
	if (p)
		munmap(p, n);
}

int s3_put_stream(struct s3_client *c, const char *bucket, const char *key, sluice_read_fn fn,
		  void *ud, struct sluice_err *err)
{
	return s3_put_stream_sized(c, bucket, key, -1, fn, ud, err);
}

int s3_put_stream_sized(struct s3_client *c, const char *bucket, const char *key, long long expect,
			sluice_read_fn fn, void *ud, struct sluice_err *err)
{
	size_t part_size = s3_part_size_for(c->part_size, expect);
	char *part = part_buf_new(part_size), *spare = NULL;
	struct buf xml = BUF_INIT, q = BUF_INIT, done = BUF_INIT, upload_id = BUF_INIT;
	struct s3_uploader up;
	struct s3_req r;
	int eof = 0, ret, partno;
	ssize_t n;
	const char *t;
	size_t tl;

	memset(&up, 0, sizeof(up));
	if (!part)
		return err_set(err, SLUICE_EIO, "s3 PUT s3://%s/%s: cannot map a %zu-byte part buffer", bucket, key,
			       part_size);
	n = fill_part(fn, ud, part, part_size, &eof, err);
	if (n < 0) {
		ret = (int)n;
		goto out;
	}
	if (eof) {
		ret = s3_put_object(c, bucket, key, part, (size_t)n, err);
		goto out;
	}

	/* CreateMultipartUpload */
	{
		struct s3_param p = { "uploads", NULL };

		s3_query_build(&q, &p, 1);
	}
	r = (struct s3_req){
		.method = "POST",
		.bucket = bucket,
		.key = key,
		.query = q.s,
		.xml = &xml,
	};
	ret = s3_request(c, &r, err);
	if (ret < 0)
		goto out;
	t = xml_find(xml.s, xml.s + xml.len, "UploadId", &tl, NULL);
	if (!t) {
		ret = err_set(err, SLUICE_EIO, "s3 POST s3://%s/%s: CreateMultipartUpload gave no UploadId",
			      bucket, key);
		goto out;
	}
	xml_unescape(&upload_id, t, tl);

	up.c = c;
	up.bucket = bucket;
	up.key = key;
	up.upload_id = upload_id.s;
	if (!(spare = part_buf_new(part_size))) {
		ret = err_set(err, SLUICE_EIO, "s3 PUT s3://%s/%s: cannot map a %zu-byte part buffer", bucket, key,
			      part_size);
		goto abort;
	}
	if ((ret = uploader_start(&up, err)))
		goto abort;
	for (partno = 1;; partno++) {
		char *filled = part;

		if (partno > S3_MAX_PARTS) {
			ret = err_set(err, SLUICE_EUSAGE,
				      "s3 PUT s3://%s/%s: more than %d parts; raise part_size", bucket, key, S3_MAX_PARTS);
			goto abort;
		}
		if (uploader_idle(&up)) {
			*err = up.err;
			ret = up.rc;
			goto abort;
		}
		uploader_hand(&up, filled, (size_t)n, partno);
		/* fill the other buffer while this one goes up */
		part = spare;
		spare = filled;
		if (eof)
			break;
		n = fill_part(fn, ud, part, part_size, &eof, err);
		if (n < 0) {
			ret = (int)n;
			goto abort;
		}
		if (n == 0)
			break;
	}
	if (uploader_idle(&up)) {
		*err = up.err;
		ret = up.rc;
		goto abort;
	}
	uploader_stop(&up);
	buf_puts(&done, "<CompleteMultipartUpload>");
	buf_add(&done, up.done.s ? up.done.s : "", up.done.len);
	buf_puts(&done, "</CompleteMultipartUpload>");

	{
		struct s3_param p = { "uploadId", upload_id.s };

		buf_reset(&q);
		s3_query_build(&q, &p, 1);
	}
	r = (struct s3_req){
		.method = "POST",
		.bucket = bucket,
		.key = key,
		.query = q.s,
		.body = done.s,
		.body_len = done.len,
		.content_type = "application/xml",
		.xml = &xml,
	};
	ret = s3_request(c, &r, err);
	if (ret < 0)
		goto abort;
	/* CompleteMultipartUpload may fail with a 200 and an <Error> body. */
	if (memmem(xml.s, xml.len, "<Error>", 7)) {
		struct buf code = BUF_INIT, msg = BUF_INIT;

		s3_error_parse(xml.s, xml.len, &code, &msg);
		ret = err_set(err, SLUICE_EIO, "s3 POST s3://%s/%s: %s: %s", bucket, key,
			      code.len ? code.s : "Error", msg.len ? msg.s : "CompleteMultipartUpload failed");
		buf_release(&code);
		buf_release(&msg);
		goto abort;
	}
	goto out;
abort:
	/* no part may still be going up when the upload is aborted */
	uploader_stop(&up);
	s3_abort_upload(c, bucket, key, upload_id.s);
out:
	part_buf_free(part, part_size);
	part_buf_free(spare, part_size);
	buf_release(&up.done);
	buf_release(&xml);
	buf_release(&q);
	buf_release(&done);
	buf_release(&upload_id);
	return ret;
}

int s3_get_object(struct s3_client *c, const char *bucket, const char *key, sluice_write_fn fn,
		  void *ud, struct sluice_err *err)
{
	struct s3_req r = {
		.method = "GET",
		.bucket = bucket,
		.key = key,
		.sink = fn,
		.sink_ud = ud,
	};

	return s3_request(c, &r, err);
}

int s3_head_object(struct s3_client *c, const char *bucket, const char *key,
		   struct objstore_info *info, struct sluice_err *err)
{
	struct s3_req r;
	int ret;

	memset(info, 0, sizeof(*info));
	r = (struct s3_req){
		.method = "HEAD",
		.bucket = bucket,
		.key = key,
	};
	ret = s3_request(c, &r, err);
	if (ret < 0 && r.status == 404) {
		err_set(err, 0, "%s", "");
		return 0;
	}
	if (ret < 0)
		return ret;
	info->exists = 1;
	info->size = r.content_length;
	snprintf(info->etag, sizeof(info->etag), "%s", r.etag);
	snprintf(info->last_modified, sizeof(info->last_modified), "%s", r.last_modified);
	return 0;
}

int s3_list_parse(const char *xml, size_t len, s3_list_fn fn, void *ud, struct buf *next, int *truncated)
{
	struct buf key = BUF_INIT, etag = BUF_INIT;
	const char *s = xml, *end = xml + len, *t, *item;
	size_t tl;
	int ret = 0;

	*truncated = 0;
	while ((item = xml_find(s, end, "Contents", &tl, &s)) != NULL) {
		const char *iend = item + tl;
		struct s3_object o;

		buf_reset(&key);
		buf_reset(&etag);
		t = xml_find(item, iend, "Key", &tl, NULL);
		if (!t)
			continue;
		xml_unescape(&key, t, tl);
		o.key = key.s;
		t = xml_find(item, iend, "Size", &tl, NULL);
		o.size = t ? strtoll(t, NULL, 10) : -1;
		t = xml_find(item, iend, "ETag", &tl, NULL);
		if (t)
			xml_unescape(&etag, t, tl);
		if (etag.len >= 2 && etag.s[0] == '"' && etag.s[etag.len - 1] == '"') {
			memmove(etag.s, etag.s + 1, etag.len - 2);
			etag.len -= 2;
			etag.s[etag.len] = '\0';
		}
		o.etag = etag.s;
		if ((ret = fn(ud, &o)) != 0)
			goto out;
	}
	t = xml_find(xml, end, "IsTruncated", &tl, NULL);
	if (!t || tl != 4 || memcmp(t, "true", 4) != 0)
		goto out;
	*truncated = 1;
	if ((t = xml_find(xml, end, "NextContinuationToken", &tl, NULL)))
		xml_unescape(next, t, tl);
out:
	buf_release(&key);
	buf_release(&etag);
	return ret;
}

int s3_list_objects(struct s3_client *c, const char *bucket, const char *prefix, s3_list_fn fn,
		    void *ud, struct sluice_err *err)
{
	struct buf xml = BUF_INIT, q = BUF_INIT, token = BUF_INIT;
	int ret = 0, truncated;

	for (;;) {
		struct s3_param p[3];
		size_t np = 0;
		struct s3_req r;

		p[np].name = "list-type";
		p[np++].value = "2";
		if (prefix && *prefix) {
			p[np].name = "prefix";
			p[np++].value = prefix;
		}
		if (token.len) {
			p[np].name = "continuation-token";
			p[np++].value = token.s;
		}
		buf_reset(&q);
		s3_query_build(&q, p, np);
		r = (struct s3_req){
			.method = "GET",
			.bucket = bucket,
			.query = q.s,
			.xml = &xml,
		};
		ret = s3_request(c, &r, err);
		if (ret < 0)
			break;
		buf_reset(&token);
		ret = s3_list_parse(xml.s, xml.len, fn, ud, &token, &truncated);
		if (ret || !truncated)
			break;
		if (!token.len) {
			ret = err_set(err, SLUICE_EIO, "s3 GET s3://%s/%s: truncated listing without a continuation token",
				      bucket, prefix ? prefix : "");
			break;
		}
	}
	buf_release(&xml);
	buf_release(&q);
	buf_release(&token);
	return ret;
}

int s3_delete_object(struct s3_client *c, const char *bucket, const char *key,
		     struct sluice_err *err)
{
	struct s3_req r = {
		.method = "DELETE",
		.bucket = bucket,
		.key = key,
	};

	return s3_request(c, &r, err);
}

static void xml_escape(struct buf *out, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': buf_puts(out, "&amp;"); break;
		case '<': buf_puts(out, "&lt;"); break;
		case '>': buf_puts(out, "&gt;"); break;
		case '"': buf_puts(out, "&quot;"); break;
		case '\'': buf_puts(out, "&apos;"); break;
		default: buf_addc(out, *s);
		}
	}
}

/* One DeleteObjects request for keys[0..n), n <= 1000. */
static int delete_batch(struct s3_client *c, const char *bucket, const char *const *keys, size_t n,
			struct sluice_err *err)
{
	struct buf body = BUF_INIT, xml = BUF_INIT, q = BUF_INIT;
	struct s3_param p = { "delete", NULL };
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char md5[32];
	const char *e, *t;
	size_t i, tl;
	int ret;

	/* Quiet: the answer lists only the keys that failed */
	buf_puts(&body, "<Delete><Quiet>true</Quiet>");
	for (i = 0; i < n; i++) {
		buf_puts(&body, "<Object><Key>");
		xml_escape(&body, keys[i]);
		buf_puts(&body, "</Key></Object>");
	}
	buf_puts(&body, "</Delete>");
	if (!EVP_Digest(body.s, body.len, md, &mdlen, EVP_md5(), NULL) || mdlen != 16) {
		ret = err_set(err, SLUICE_EIO, "s3: MD5 failed");
		goto out;
	}
	EVP_EncodeBlock((unsigned char *)md5, md, 16);
	s3_query_build(&q, &p, 1);
	{
		struct s3_req r = {
			.method = "POST",
			.bucket = bucket,
			.query = q.s,
			.body = body.s,
			.body_len = body.len,
			.content_type = "application/xml",
			.content_md5 = md5,
			.xml = &xml,
		};

		ret = s3_request(c, &r, err);
	}
	if (ret < 0)
		goto out;
	/* A 200 may still carry per-key errors: report the first. */
	if ((e = xml_find(xml.s, xml.s + xml.len, "Error", &tl, NULL)) != NULL) {
		struct buf key = BUF_INIT, code = BUF_INIT, msg = BUF_INIT;

		if ((t = xml_find(e, e + tl, "Key", &i, NULL)))
			xml_unescape(&key, t, i);
		if ((t = xml_find(e, e + tl, "Code", &i, NULL)))
			xml_unescape(&code, t, i);
		if ((t = xml_find(e, e + tl, "Message", &i, NULL)))
			xml_unescape(&msg, t, i);
		ret = err_set(err, SLUICE_EIO, "s3 DELETE s3://%s/%s: %s: %s (DeleteObjects)", bucket,
			      key.len ? key.s : "?", code.len ? code.s : "Error", msg.len ? msg.s : "no message");
		buf_release(&key);
		buf_release(&code);
		buf_release(&msg);
	}
out:
	buf_release(&body);
	buf_release(&xml);
	buf_release(&q);
	return ret;
}

int s3_delete_objects(struct s3_client *c, const char *bucket, const char *const *keys, size_t n,
		      struct sluice_err *err)
{
	size_t at;
	int ret = 0;

	for (at = 0; at < n && !ret; at += 1000)
		ret = delete_batch(c, bucket, keys + at, n - at < 1000 ? n - at : 1000, err);
	return ret;
}

/* ---- the s3:// object store ------------------------------------------- */

struct s3_store {
	struct objstore base;
	struct s3_client *client;
	char *bucket;
	char *root;              /* "" or "prefix/" */
	struct buf key;          /* scratch: root + key */
};

static const char *s3_store_key(struct s3_store *s, const char *key)
{
	buf_reset(&s->key);
	buf_puts(&s->key, s->root);
	buf_puts(&s->key, key);
	return s->key.s;
}

static int s3s_put(struct objstore *o, const char *key, const void *data, size_t len,
		   struct sluice_err *err)
{
	struct s3_store *s = (struct s3_store *)o;

	return s3_put_object(s->client, s->bucket, s3_store_key(s, key), data, len, err);
}

static int s3s_put_if(struct objstore *o, const char *key, const void *data, size_t len,
		      const char *if_match, int if_none_match, char etag_out[OBJSTORE_ETAG_SIZE],
		      struct sluice_err *err)
{
	struct s3_store *s = (struct s3_store *)o;

	return s3_put_object_if(s->client, s->bucket, s3_store_key(s, key), data, len, if_match,
				if_none_match, etag_out, err);
}

static int s3s_put_stream(struct objstore *o, const char *key, long long size_hint, sluice_read_fn fn,
			  void *ud, struct sluice_err *err)
{
	struct s3_store *s = (struct s3_store *)o;

	return s3_put_stream_sized(s->client, s->bucket, s3_store_key(s, key), size_hint, fn, ud, err);
}

static int s3s_get(struct objstore *o, const char *key, sluice_write_fn fn, void *ud,
		   struct sluice_err *err)
{
	struct s3_store *s = (struct s3_store *)o;

	return s3_get_object(s->client, s->bucket, s3_store_key(s, key), fn, ud, err);
}

static int s3s_head(struct objstore *o, const char *key, struct objstore_info *info,
		    struct sluice_err *err)
{
	struct s3_store *s = (struct s3_store *)o;

	return s3_head_object(s->client, s->bucket, s3_store_key(s, key), info, err);
}

struct s3s_list_ctx {
	size_t strip;
	objstore_list_fn fn;
	void *ud;
};

static int s3s_list_one(void *ud, const struct s3_object *obj)
{
	struct s3s_list_ctx *x = ud;
	struct objstore_entry e;

	if (strlen(obj->key) < x->strip)
		return 0;
	e.key = obj->key + x->strip;
	e.size = obj->size;
	e.etag = obj->etag;
	return x->fn(x->ud, &e);
}

static int s3s_list(struct objstore *o, const char *prefix, objstore_list_fn fn, void *ud,
		    struct sluice_err *err)
{
	struct s3_store *s = (struct s3_store *)o;
	struct s3s_list_ctx x = { strlen(s->root), fn, ud };
	char *full = xstrdup(s3_store_key(s, prefix ? prefix : ""));
	int ret = s3_list_objects(s->client, s->bucket, full, s3s_list_one, &x, err);

	free(full);
	return ret;
}

static int s3s_del(struct objstore *o, const char *key, struct sluice_err *err)
{
	struct s3_store *s = (struct s3_store *)o;

	return s3_delete_object(s->client, s->bucket, s3_store_key(s, key), err);
}

static int s3s_del_many(struct objstore *o, const char *const *keys, size_t n, struct sluice_err *err)
{
	struct s3_store *s = (struct s3_store *)o;
	char **full = xcalloc(n ? n : 1, sizeof(*full));
	size_t i;
	int ret;

	for (i = 0; i < n; i++)
		full[i] = xstrdup(s3_store_key(s, keys[i]));
	ret = s3_delete_objects(s->client, s->bucket, (const char *const *)full, n, err);
	for (i = 0; i < n; i++)
		free(full[i]);
	free(full);
	return ret;
}

static void s3s_close(struct objstore *o)
{
	struct s3_store *s = (struct s3_store *)o;

	if (!s)
		return;
	s3_client_free(s->client);
	free(s->bucket);
	free(s->root);
	buf_release(&s->key);
	free(s);
}

static const struct objstore_ops s3_store_ops = {
	.scheme = "s3",
	.put = s3s_put,
	.put_if = s3s_put_if,
	.put_stream = s3s_put_stream,
	.get = s3s_get,
	.head = s3s_head,
	.list = s3s_list,
	.del = s3s_del,
	.del_many = s3s_del_many,
	.close = s3s_close,
};

int s3_store_open(const char *url, const struct val *settings, struct objstore **out,
		  struct sluice_err *err)
{
	struct s3_config cfg;
	struct s3_store *s;
	const char *b, *slash;
	int ret;

	*out = NULL;
	if (strncmp(url, "s3://", 5) != 0 || !url[5] || url[5] == '/')
		return err_set(err, SLUICE_EUSAGE, "%s: not an s3://bucket[/prefix] URL", url);
	ret = s3_config_load(settings, &cfg, err);
	if (ret < 0)
		return err_prefix(err, "%s", url);
	s = xcalloc(1, sizeof(*s));
	s->base.ops = &s3_store_ops;
	buf_init(&s->key);
	b = url + 5;
	slash = strchr(b, '/');
	s->bucket = slash ? xstrndup(b, (size_t)(slash - b)) : xstrdup(b);
	if (slash && slash[1]) {
		size_t n = strlen(slash + 1);
		struct buf root = BUF_INIT;

		buf_puts(&root, slash + 1);
		if (slash[n] != '/')
			buf_addc(&root, '/');
		s->root = buf_detach(&root, NULL);
	} else {
		s->root = xstrdup("");
	}
	ret = s3_client_new(&cfg, &s->client, err);
	if (ret < 0) {
		s3s_close(&s->base);
		return err_prefix(err, "%s", url);
	}
	*out = &s->base;
	return 0;
}
