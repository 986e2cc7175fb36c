/*
 * notify.c: webhooks (see notify.h). Not when to send (cmd-schedule.c
 * decides, from notify_wanted) and not what a run did (the summary is
 * given): only the body's shape and the request.
 */
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include "notify.h"
#include "template.h"
#include "util/buf.h"

int notify_wanted(const struct notifier *n, int ok, int was_failing)
{
	if (!ok)
		return (n->on & NOTIFY_FAILURE) != 0;
	return (n->on & NOTIFY_SUCCESS) || ((n->on & NOTIFY_RECOVERY) && was_failing);
}

static int render_call(void *ud, const struct tpl_call *c, struct val *out, struct sluice_err *err)
{
	return project_call_builtin(ud, c, out, NULL, err);
}

/* The URL from its template text (env_var, var); err never holds the result. */
static int render_url(const struct project *p, const struct notifier *n, struct buf *url, struct sluice_err *err)
{
	struct tpl_host host = { (void *)p, render_call, NULL, NULL, NULL };
	struct arena a = ARENA_INIT;
	struct tpl *t;
	int rc;

	rc = tpl_parse(&a, "webhook", n->webhook, strlen(n->webhook), &t, err);
	if (!rc)
		rc = tpl_render(t, &host, &a, url, err);
	arena_release(&a);
	if (rc) {
		/* "webhook:1:4: msg" is a place in the value: name the key's place in the file instead. */
		const char *m = err->msg;
		char msg[sizeof(err->msg)];
		int i;
		for (i = 0; i < 3 && m; i++)
			m = strchr(m, ':') ? strchr(m, ':') + 1 : NULL;
		snprintf(msg, sizeof(msg), "%s", m && *m == ' ' ? m + 1 : err->msg);
		return err_set(err, rc, "%s:%d: webhook: %s", n->path, n->line, msg);
	}
	if (!rc && url->len && (strncmp(url->s, "http://", 7) && strncmp(url->s, "https://", 8)))
		rc = err_set(err, SLUICE_EUSAGE, "the webhook is not an http:// or https:// URL");
	return rc;
}

/* "clinic nightly: failure, 3 ok, 1 error in 12.3s", the failed nodes, the report. */
static json_t *slack_body_new(const json_t *s)
{
	const json_t *counts = json_object_get(s, "counts"), *failed = json_object_get(s, "failed_nodes"), *v;
	const char *status = json_string_value(json_object_get(s, "status"));
	const char *key;
	struct buf b = BUF_INIT;
	json_t *body;
	size_t i;

	buf_printf(&b, "%s %s %s: *%s*", !strcmp(status ? status : "", "success") ? ":white_check_mark:" : ":x:",
		   json_string_value(json_object_get(s, "project")), json_string_value(json_object_get(s, "schedule")),
		   status ? status : "?");
	json_object_foreach((json_t *)counts, key, v)
		if (json_integer_value(v))
			buf_printf(&b, ", %lld %s", (long long)json_integer_value(v), key);
	buf_printf(&b, " in %.1fs", json_number_value(json_object_get(s, "duration")));
	json_array_foreach(failed, i, v)
		buf_printf(&b, "\n• `%s`: %s", json_string_value(json_object_get(v, "unique_id")),
			   json_string_value(json_object_get(v, "error")));
	if ((v = json_object_get(s, "report_url")))
		buf_printf(&b, "\n<%s|report>", json_string_value(v));
	body = json_pack("{s:s}", "text", b.s);
	buf_release(&b);
	return body;
}

static size_t discard(char *ptr, size_t size, size_t nmemb, void *ud)
{
	(void)ptr;
	(void)ud;
	return size * nmemb;
}

int notify_send(const struct project *p, const struct notifier *n, const json_t *summary, struct sluice_err *err)
{
	struct buf url = BUF_INIT;
	struct curl_slist *hdrs = NULL;
	json_t *slack = NULL;
	char *body = NULL;
	CURL *h = NULL;
	CURLcode cc;
	long status = 0;
	int rc;

	if ((rc = render_url(p, n, &url, err)))
		goto out;
	if (!url.len) {
		rc = 1;   /* no webhook configured: nothing to send */
		goto out;
	}
	slack = n->slack ? slack_body_new(summary) : NULL;
	body = json_dumps(slack ? slack : summary, JSON_COMPACT);
	if (!body || !(h = curl_easy_init())) {
		rc = err_set(err, SLUICE_EIO, "out of memory");
		goto out;
	}
	hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	curl_easy_setopt(h, CURLOPT_URL, url.s);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "sluice");
	/* No CURLOPT_ERRORBUFFER: its text may name the host or the URL. */
	cc = curl_easy_perform(h);
	if (cc != CURLE_OK)
		rc = err_set(err, SLUICE_EIO, "%s", curl_easy_strerror(cc));
	else if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && (status < 200 || status > 299))
		rc = err_set(err, SLUICE_EIO, "the webhook answered HTTP %ld", status);
out:
	if (rc < 0)
		err_prefix(err, "notification '%s'", n->name);
	curl_slist_free_all(hdrs);
	if (h)
		curl_easy_cleanup(h);
	free(body);
	json_decref(slack);
	/* The URL is a secret: wipe it before the memory goes back. */
	if (url.s)
		memset(url.s, 0, url.len);
	buf_release(&url);
	return rc;
}
