/*
 * s3.h: a small S3 client on libcurl (PutObject, multipart upload,
 * GetObject, HeadObject, ListObjectsV2, DeleteObject) for AWS and for
 * S3-compatible servers (MinIO, s3rver) on custom endpoints.
 *
 * Signing is libcurl's own SigV4 (CURLOPT_AWS_SIGV4); this file only
 * prepares what libcurl 7.88 needs to sign correctly: a query string that
 * is already sorted and RFC 3986-encoded, keys encoded in the path, and an
 * explicit x-amz-content-sha256 header. Transient failures (transport
 * errors, 5xx, 429) are retried with exponential backoff, a bounded number
 * of times. Error messages carry S3's Code and Message and the key, never
 * credentials or the Authorization header.
 *
 * A client is used by one thread at a time (s3_put_stream's own upload
 * thread aside, on a handle of its own); every call blocks on the network.
 */
#ifndef SLUICE_S3_H
#define SLUICE_S3_H

#include <stddef.h>
#include "../engine/util/buf.h"
#include "../engine/util/err.h"
#include "../engine/value.h"
#include "connector.h"
#include "objstore.h"

#define S3_MIN_PART_SIZE (5u * 1024 * 1024)     /* S3's floor for all parts but the last */
#define S3_DEFAULT_PART_SIZE (8u * 1024 * 1024)
#define S3_MAX_PART_SIZE (5ull * 1024 * 1024 * 1024)   /* S3's ceiling for a part */
#define S3_MAX_PARTS 10000
#define S3_PLAN_PARTS 9000                      /* what part sizes aim at, under S3_MAX_PARTS */
#define S3_SINGLE_PUT_MAX (32u * 1024 * 1024)   /* an object expected this small goes up in one PUT */

/*
 * Settings. Strings are borrowed (from the settings value or getenv) by
 * s3_config_load(); s3_client_new() copies what it keeps.
 */
struct s3_config {
	const char *endpoint;          /* "http://127.0.0.1:9000"; NULL: https://s3.<region>.amazonaws.com */
	const char *region;            /* default "us-east-1" */
	const char *access_key_id;
	const char *secret_access_key;
	const char *session_token;     /* may be NULL */
	const char *iam_role;          /* not used by the client: for Redshift COPY/UNLOAD */
	int path_style;                /* 1 path-style, 0 virtual-hosted, -1 auto (path-style iff custom endpoint) */
	size_t part_size;              /* multipart part size; 0: S3_DEFAULT_PART_SIZE */
	int max_attempts;              /* per request, including the first; 0: 5 */
	long retry_base_ms;            /* first backoff; doubles each retry; 0: 200 */
	long connect_timeout_ms;       /* 0: 10000 */
};

/*
 * Fill cfg from a settings dict (keys endpoint, region, access_key_id,
 * secret_access_key, session_token, iam_role, path_style, part_size,
 * max_attempts) with fallbacks AWS_ENDPOINT_URL_S3 then AWS_ENDPOINT_URL,
 * AWS_REGION then AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN. settings may
 * be NULL. Missing credentials or a part size below S3_MIN_PART_SIZE:
 * SLUICE_EUSAGE. Part sizes below the minimum are allowed only when
 * `allow_small_parts: true` (for servers and tests that accept them).
 */
int s3_config_load(const struct val *settings, struct s3_config *cfg, struct sluice_err *err);

struct s3_client;

/* Counters since s3_client_new(), for `sluice debug`, benchmarks and tests. */
struct s3_stats {
	unsigned long requests;        /* HTTP attempts, retries included */
	unsigned long retries;
	unsigned long parts;           /* UploadPart requests that succeeded */
};

/* Caller owns *out; free with s3_client_free(). Copies cfg's strings. */
int s3_client_new(const struct s3_config *cfg, struct s3_client **out, struct sluice_err *err);
void s3_client_free(struct s3_client *c);
/* Borrowed; valid until s3_client_free(). */
const struct s3_stats *s3_client_stats(const struct s3_client *c);

struct s3_object {
	const char *key;               /* borrowed for the callback */
	long long size;
	const char *etag;              /* without quotes */
};
/* Return 0 to continue, non-zero to stop listing (returned by s3_list_objects). */
typedef int (*s3_list_fn)(void *ud, const struct s3_object *o);

/* PutObject of an in-memory body (content SHA-256 signed). */
int s3_put_object(struct s3_client *c, const char *bucket, const char *key, const void *data,
		  size_t len, struct sluice_err *err);
/*
 * PutObject only if the object's ETag is if_match (If-Match), or, with
 * if_none_match, only if there is no object (If-None-Match: *). HTTP 412
 * and 409 ConditionalRequestConflict give SLUICE_ECONFLICT. etag_out (may
 * be NULL) gets the new ETag without quotes. A retried request whose first
 * attempt did land reports SLUICE_ECONFLICT: see objstore.h's put_if.
 */
int s3_put_object_if(struct s3_client *c, const char *bucket, const char *key, const void *data,
		     size_t len, const char *if_match, int if_none_match,
		     char etag_out[OBJSTORE_ETAG_SIZE], struct sluice_err *err);
/*
 * Upload what fn yields: a single PutObject when it fits in one part, else
 * a multipart upload whose parts go up on a thread and easy handle of
 * their own while fn fills the next one. Memory: two parts. Any failure
 * (of fn or of a part) waits for the part in flight, then aborts the
 * multipart upload (best effort) before returning.
 *
 * expect: the bytes fn will likely yield, or -1: parts are cfg.part_size,
 * or larger when expect would need more than S3_PLAN_PARTS of them (see
 * s3_part_size_for). More than S3_MAX_PARTS parts is SLUICE_EUSAGE.
 */
int s3_put_stream(struct s3_client *c, const char *bucket, const char *key, sluice_read_fn fn,
		  void *ud, struct sluice_err *err);
int s3_put_stream_sized(struct s3_client *c, const char *bucket, const char *key, long long expect,
			sluice_read_fn fn, void *ud, struct sluice_err *err);
/*
 * The part size for an object of about expect bytes (<= 0: unknown):
 * configured (0: S3_DEFAULT_PART_SIZE), raised to a whole MiB so the
 * object fits in S3_PLAN_PARTS parts, and at most S3_MAX_PART_SIZE.
 * Unless a part size is configured, an object expected to take at most
 * S3_SINGLE_PUT_MAX, a MiB of overrun included, gets one part that
 * holds it all: it goes up in one
 * PutObject, which spares two requests and the store's joining of the
 * parts (an s3rver-class store spends a third less CPU). Pure.
 */
size_t s3_part_size_for(size_t configured, long long expect);
/* GetObject streamed to fn. fn's error is returned as is. */
int s3_get_object(struct s3_client *c, const char *bucket, const char *key, sluice_write_fn fn,
		  void *ud, struct sluice_err *err);
/* HeadObject; a 404 gives info->exists == 0 and returns 0. */
int s3_head_object(struct s3_client *c, const char *bucket, const char *key,
		   struct objstore_info *info, struct sluice_err *err);
/* ListObjectsV2 over every page (continuation tokens) for prefix (NULL or ""). */
int s3_list_objects(struct s3_client *c, const char *bucket, const char *prefix, s3_list_fn fn,
		    void *ud, struct sluice_err *err);
int s3_delete_object(struct s3_client *c, const char *bucket, const char *key,
		     struct sluice_err *err);
/*
 * DeleteObjects, 1000 keys a request (quiet mode, Content-MD5 as S3
 * requires). Missing keys succeed; the first key S3 reports as not
 * deleted is an error naming it.
 */
int s3_delete_objects(struct s3_client *c, const char *bucket, const char *const *keys, size_t n,
		      struct sluice_err *err);

/* ---- pure helpers, exposed for tests ---------------------------------- */

/* RFC 3986 percent-encoding: unreserved A-Z a-z 0-9 - . _ ~ kept; '/' kept iff keep_slash. */
void s3_uri_encode(struct buf *out, const char *s, size_t len, int keep_slash);

struct s3_param {
	const char *name;
	const char *value;             /* NULL: a bare name ("uploads") */
};
/*
 * Canonical query string: each name and value encoded, pairs sorted by
 * encoded name then encoded value, joined with '&'; a NULL value gives
 * "name=". Appends to out (no leading '?'). params is not modified.
 */
void s3_query_build(struct buf *out, const struct s3_param *params, size_t n);

/*
 * The x-amz-content-sha256 value: "UNSIGNED-PAYLOAD" when streamed, else
 * the lowercase hex SHA-256 of data. out holds 65 bytes.
 */
int s3_content_sha256(const void *data, size_t len, int streamed, char out[65]);

/*
 * Find <Code> and <Message> in an S3 XML error body. Sets code/message
 * (appended, entities decoded) and returns 0, or -1 when the body has no
 * <Code>.
 */
int s3_error_parse(const char *body, size_t len, struct buf *code, struct buf *message);

/*
 * One ListObjectsV2 page: fn for each <Contents> that has a <Key> (key
 * and ETag decoded, the ETag's quotes removed), in order. xml must be
 * NUL-terminated at len. Returns 0, or fn's non-zero value when it
 * stopped. *truncated: the page says <IsTruncated>true; next then gets
 * <NextContinuationToken> appended (decoded; empty when there is none).
 */
int s3_list_parse(const char *xml, size_t len, s3_list_fn fn, void *ud, struct buf *next, int *truncated);

/*
 * Request URL for bucket/key (key may be NULL or "") with an already
 * built query (may be NULL or ""). Path-style: endpoint/bucket/key;
 * virtual-hosted: scheme://bucket.host/key.
 */
int s3_url_build(struct buf *out, const char *endpoint, int path_style, const char *bucket,
		 const char *key, const char *query, struct sluice_err *err);

#endif
