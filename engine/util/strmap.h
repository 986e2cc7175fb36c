/*
 * strmap.h: string-keyed hash map (open addressing) from a borrowed key to
 * a void pointer. Keys are not copied: they must outlive the map, which is
 * the case for arena strings. Used for name lookups over 10k+ models.
 */
#ifndef SLUICE_STRMAP_H
#define SLUICE_STRMAP_H

#include <stddef.h>

struct strmap_slot {
	const char *key;
	void *val;
};

struct strmap {
	struct strmap_slot *slots;
	size_t n, cap;
};

#define STRMAP_INIT { NULL, 0, 0 }

void strmap_release(struct strmap *m);
/* Insert or replace; returns the previous value or NULL. */
void *strmap_put(struct strmap *m, const char *key, void *val);
void *strmap_get(const struct strmap *m, const char *key);

#endif
