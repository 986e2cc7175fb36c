/* err.c: filling struct sluice_err; see err.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "buf.h"
#include "err.h"

int err_set(struct sluice_err *e, int code, const char *fmt, ...)
{
	va_list ap;

	if (!e)
		return code;
	e->code = code;
	e->sqlstate[0] = '\0';
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return code;
}

int err_prefix(struct sluice_err *e, const char *fmt, ...)
{
	char head[512], old[sizeof(e->msg)];
	struct buf b = BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(head, sizeof(head), fmt, ap);
	va_end(ap);
	memcpy(old, e->msg, sizeof(old));
	buf_printf(&b, "%s: %s", head, old);
	memcpy(e->msg, b.s, b.len < sizeof(e->msg) ? b.len + 1 : sizeof(e->msg));
	e->msg[sizeof(e->msg) - 1] = '\0';
	buf_release(&b);
	return e->code;
}

int err_exit_code(int code)
{
	switch (code) {
	case SLUICE_OK: return 0;
	case SLUICE_EUSAGE: return 2;
	case SLUICE_ECONN: return 3;
	case SLUICE_ECANCEL: return 130;
	default: return 1;
	}
}

void err_list_add(struct err_list *l, const char *fmt, ...)
{
	struct buf b = BUF_INIT;
	va_list ap;

	if (!l)
		return;
	if (l->n < ERR_LIST_KEEP) {
		va_start(ap, fmt);
		buf_vprintf(&b, fmt, ap);
		va_end(ap);
		l->msg[l->n++] = buf_detach(&b, NULL);
	}
	l->total++;
}

void err_list_release(struct err_list *l)
{
	size_t i;

	if (!l)
		return;
	for (i = 0; i < l->n; i++)
		free(l->msg[i]);
	memset(l, 0, sizeof(*l));
}

int err_collect(struct err_list *l, const struct sluice_err *e, int rc)
{
	if (!rc || !l || rc != SLUICE_EUSAGE)
		return rc;
	err_list_add(l, "%s", e->msg);
	return 0;
}
