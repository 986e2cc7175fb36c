/* buf.c: growable byte buffer; see buf.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "buf.h"
#include "xalloc.h"

char buf_empty[1];

void buf_init(struct buf *b)
{
	b->s = buf_empty;
	b->len = b->cap = 0;
}

void buf_release(struct buf *b)
{
	if (b->cap)
		free(b->s);
	buf_init(b);
}

char *buf_detach(struct buf *b, size_t *len)
{
	char *s = b->cap ? b->s : xstrdup("");

	if (len)
		*len = b->len;
	buf_init(b);
	return s;
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->cap)
		b->s[0] = '\0';
}

void buf_grow(struct buf *b, size_t extra)
{
	size_t need = b->len + extra + 1;

	if (need <= b->cap)
		return;
	if (need < 2 * b->cap)
		need = 2 * b->cap;
	if (need < 64)
		need = 64;
	if (b->cap) {
		b->s = xrealloc(b->s, need);
	} else {
		b->s = xmalloc(need);
		b->s[0] = '\0';
	}
	b->cap = need;
}

void buf_add(struct buf *b, const void *p, size_t n)
{
	buf_grow(b, n);
	memcpy(b->s + b->len, p, n);
	b->len += n;
	b->s[b->len] = '\0';
}

void buf_addc(struct buf *b, char c)
{
	buf_add(b, &c, 1);
}

void buf_puts(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

void buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	int n;

	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		return;
	buf_grow(b, (size_t)n);
	vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	buf_vprintf(b, fmt, ap);
	va_end(ap);
}

void buf_rtrim(struct buf *b)
{
	while (b->len && strchr(" \t\r\n", b->s[b->len - 1]))
		b->len--;
	if (b->cap)
		b->s[b->len] = '\0';
}

void buf_add_folded(struct buf *b, const char *s)
{
	int space = 0;

	for (; *s; s++) {
		if (*s == '\n' || *s == '\r' || *s == '\t' || *s == ' ') {
			space = 1;
			continue;
		}
		if (space && b->len && b->s[b->len - 1] != ' ' && b->s[b->len - 1] != '(')
			buf_addc(b, ' ');
		space = 0;
		buf_addc(b, *s);
	}
}

void buf_scrub(struct buf *b, const char *secret)
{
	size_t n = secret ? strlen(secret) : 0, off = 0;
	struct buf out = BUF_INIT;
	const char *hit;

	/* memmem: a script's output line may hold NUL bytes */
	if (!n || !b->len)
		return;
	while ((hit = memmem(b->s + off, b->len - off, secret, n))) {
		buf_add(&out, b->s + off, (size_t)(hit - (b->s + off)));
		buf_puts(&out, "***");
		off = (size_t)(hit - b->s) + n;
	}
	if (!off)
		return;
	buf_add(&out, b->s + off, b->len - off);
	buf_release(b);
	*b = out;
}
