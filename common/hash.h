/* common/hash.h - the hashes every module shares: FNV-1a over bytes (32
 * and 64 bits) and a 64-bit finalizer that spreads a combined key over all
 * bits. Pure functions; any thread, no allocation. */
#ifndef COMMON_HASH_H
#define COMMON_HASH_H
#include <stddef.h>
#include <stdint.h>

#define HASH_FNV32_INIT 2166136261u
#define HASH_FNV32_PRIME 16777619u

/* FNV-1a, 32 bits, of n bytes at p. */
static inline uint32_t hash_fnv32(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint32_t h = HASH_FNV32_INIT;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * HASH_FNV32_PRIME;
	return h;
}

/* FNV-1a, 64 bits, of n bytes at p. */
static inline uint64_t hash_fnv64(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211ull;
	return h;
}

/* splitmix64 finalizer: every input bit affects every output bit. */
static inline uint64_t hash_mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

#endif
