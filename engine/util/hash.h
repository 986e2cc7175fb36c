/*
 * hash.h: a plain 128-bit hash (XXH3-128) as 32 lowercase hex digits, over
 * one buffer or over data fed in pieces.
 *
 * For content hashes, listing versions and short unique names. It is not a
 * fingerprint (fingerprint.h decides what goes into one) and not a
 * cryptographic hash: never use it where an adversary picks the input.
 * The digests are stored in state files, so the output must never change.
 */
#ifndef SLUICE_HASH_H
#define SLUICE_HASH_H

#include <stddef.h>

#define HASH_HEX 33                /* 32 hex digits and NUL */

/* Hash len bytes of data into out. */
void hash_hex(const void *data, size_t len, char out[HASH_HEX]);

/*
 * The same hash over data fed in pieces (a file, a listing), in constant
 * memory: hasher_init, hasher_add as often as needed, then hasher_finish,
 * which writes the digest and frees the state. Pieces are concatenated:
 * add("ab"), add("c") gives hash_hex("abc"). Allocation failure aborts.
 */
struct hasher {
	void *state;
};
void hasher_init(struct hasher *h);
void hasher_add(struct hasher *h, const void *data, size_t len);
void hasher_finish(struct hasher *h, char out[HASH_HEX]);

#endif
