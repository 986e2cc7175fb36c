/* arena.c: bump allocator; see arena.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "arena.h"
#include "xalloc.h"

#define ARENA_BLOCK (64 * 1024)

struct arena_block {
	struct arena_block *next;
	size_t used, cap;
	_Alignas(16) unsigned char data[];
};

void arena_init(struct arena *a)
{
	a->head = NULL;
	a->total = 0;
}

void arena_release(struct arena *a)
{
	struct arena_block *b = a->head, *n;

	while (b) {
		n = b->next;
		free(b);
		b = n;
	}
	arena_init(a);
}

void arena_adopt(struct arena *a, struct arena *from)
{
	struct arena_block *last = from->head;

	if (!last)
		return;
	while (last->next)
		last = last->next;
	/* behind a's current block, which goes on serving small allocations */
	if (a->head) {
		last->next = a->head->next;
		a->head->next = from->head;
	} else {
		a->head = from->head;
	}
	a->total += from->total;
	arena_init(from);
}

void *arena_alloc(struct arena *a, size_t n)
{
	struct arena_block *b = a->head;
	void *p;

	n = (n + 15) & ~(size_t)15;
	if (!b || b->cap - b->used < n) {
		size_t cap = n > ARENA_BLOCK / 4 ? n : ARENA_BLOCK;
		b = xmalloc(sizeof(*b) + cap);
		b->used = 0;
		b->cap = cap;
		if (cap == n && a->head) {
			/* Oversized: keep the current block for small allocations. */
			b->next = a->head->next;
			a->head->next = b;
		} else {
			b->next = a->head;
			a->head = b;
		}
	}
	p = b->data + b->used;
	b->used += n;
	a->total += n;
	memset(p, 0, n);
	return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
	char *p = arena_alloc(a, n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *arena_strdup(struct arena *a, const char *s)
{
	return arena_strndup(a, s, strlen(s));
}

char *arena_printf(struct arena *a, const char *fmt, ...)
{
	va_list ap;
	char *p;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	p = arena_alloc(a, (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}

void *arena_grow(struct arena *a, const void *old, size_t n, size_t cap_new, size_t size)
{
	void *p = arena_alloc(a, cap_new * size);

	if (n)
		memcpy(p, old, n * size);
	return p;
}
