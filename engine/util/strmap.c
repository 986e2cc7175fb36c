/* strmap.c: open-addressing string map; see strmap.h. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "strmap.h"
#include "xalloc.h"

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;   /* FNV-1a: keys are short names */

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return h;
}

void strmap_release(struct strmap *m)
{
	free(m->slots);
	m->slots = NULL;
	m->n = m->cap = 0;
}

static void rehash(struct strmap *m)
{
	struct strmap_slot *old = m->slots;
	size_t oldcap = m->cap, i;

	m->cap = oldcap ? oldcap * 2 : 64;
	m->slots = xcalloc(m->cap, sizeof(*m->slots));
	m->n = 0;
	for (i = 0; i < oldcap; i++)
		if (old[i].key)
			strmap_put(m, old[i].key, old[i].val);
	free(old);
}

void *strmap_put(struct strmap *m, const char *key, void *val)
{
	size_t i;

	if ((m->n + 1) * 2 > m->cap)
		rehash(m);
	for (i = hash_str(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		if (!m->slots[i].key) {
			m->slots[i].key = key;
			m->slots[i].val = val;
			m->n++;
			return NULL;
		}
		if (!strcmp(m->slots[i].key, key)) {
			void *prev = m->slots[i].val;
			m->slots[i].val = val;
			return prev;
		}
	}
}

void *strmap_get(const struct strmap *m, const char *key)
{
	size_t i;

	if (!m->cap)
		return NULL;
	for (i = hash_str(key) & (m->cap - 1); m->slots[i].key; i = (i + 1) & (m->cap - 1))
		if (!strcmp(m->slots[i].key, key))
			return m->slots[i].val;
	return NULL;
}
