/*
 * buf.h: a growable, always NUL-terminated byte buffer (after git's strbuf).
 *
 * struct buf b = BUF_INIT; buf_puts(&b, "x"); ... buf_release(&b);
 * b.s is never NULL once anything was added; before that it is "" (static).
 * Allocation failure aborts: out-of-memory is not a recoverable state here.
 */
#ifndef SLUICE_BUF_H
#define SLUICE_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *s;
	size_t len;
	size_t cap;
};

extern char buf_empty[];
#define BUF_INIT { buf_empty, 0, 0 }

void buf_init(struct buf *b);
void buf_release(struct buf *b);
/* Hand the heap string to the caller (who frees it) and reset b. */
char *buf_detach(struct buf *b, size_t *len);
void buf_reset(struct buf *b);
void buf_grow(struct buf *b, size_t extra);
void buf_add(struct buf *b, const void *p, size_t n);
void buf_addc(struct buf *b, char c);
void buf_puts(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* Drop trailing whitespace. */
void buf_rtrim(struct buf *b);
/* Append s with every run of white space folded to one space (none after '('): one-line messages. */
void buf_add_folded(struct buf *b, const char *s);
/*
 * Replace every occurrence of secret in b with "***". Drivers do not mean
 * to echo passwords, but one typed into another field comes back in their
 * messages, and a leaked secret cannot be taken back. NULL or "": no-op.
 */
void buf_scrub(struct buf *b, const char *secret);

#endif
