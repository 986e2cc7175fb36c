/* hash.c: XXH3-128 as hex, whole or streamed; see hash.h. */
#include <stdio.h>
#include <stdlib.h>
#include <xxhash.h>
#include "hash.h"

static void hex128(XXH128_hash_t h, char out[HASH_HEX])
{
	snprintf(out, HASH_HEX, "%016llx%016llx", (unsigned long long)h.high64, (unsigned long long)h.low64);
}

void hash_hex(const void *data, size_t len, char out[HASH_HEX])
{
	hex128(XXH3_128bits(data, len), out);
}

void hasher_init(struct hasher *h)
{
	h->state = XXH3_createState();
	if (!h->state)
		abort();   /* out of memory, as xmalloc treats it */
	XXH3_128bits_reset(h->state);
}

void hasher_add(struct hasher *h, const void *data, size_t len)
{
	XXH3_128bits_update(h->state, data, len);
}

void hasher_finish(struct hasher *h, char out[HASH_HEX])
{
	hex128(XXH3_128bits_digest(h->state), out);
	XXH3_freeState(h->state);
	h->state = NULL;
}
