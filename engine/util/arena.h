/*
 * arena.h: bump allocator for everything that lives as long as a loaded
 * project (models, parsed templates, YAML trees, the DAG). One
 * arena_release() frees it all; there is no per-object free.
 *
 * Not thread-safe: an arena belongs to one thread at a time.
 */
#ifndef SLUICE_ARENA_H
#define SLUICE_ARENA_H

#include <stdarg.h>
#include <stddef.h>

struct arena_block;

struct arena {
	struct arena_block *head;
	size_t total;            /* bytes handed out, for benchmarks */
};

#define ARENA_INIT { NULL, 0 }

void arena_init(struct arena *a);
void arena_release(struct arena *a);
/* Move every block of from into a (from is left empty): what was allocated in from lives as long as a. */
void arena_adopt(struct arena *a, struct arena *from);
/* Zeroed, 16-byte aligned memory valid until arena_release(). */
void *arena_alloc(struct arena *a, size_t n);
char *arena_strdup(struct arena *a, const char *s);
char *arena_strndup(struct arena *a, const char *s, size_t n);
char *arena_printf(struct arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Grow an arena array: returns a copy of old (n elements of size) with room for cap_new. */
void *arena_grow(struct arena *a, const void *old, size_t n, size_t cap_new, size_t size);

#endif
