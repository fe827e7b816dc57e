/* common/search.h - binary search of an array of structs sorted by a
 * uint32_t id member (services, endpoints, health entries). Any thread, no
 * allocation. */
#ifndef COMMON_SEARCH_H
#define COMMON_SEARCH_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Index in base[0..n) (elements of size bytes, ascending by the uint32_t at
 * byte offset off) of the one whose id is id, or -1. An id outside
 * 0..UINT32_MAX is never found. */
static inline long search_id(const void *base, size_t n, size_t size,
			     size_t off, long long id)
{
	const unsigned char *b = base;
	size_t lo = 0, hi = n;

	if (id < 0 || id > UINT32_MAX)
		return -1;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint32_t v;

		memcpy(&v, b + mid * size + off, sizeof(v));
		if (v == id)
			return (long)mid;
		if (v < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* search_id over an array of struct T (pointer base, count n) by its member
 * id. */
#define SEARCH_ID(base, n, member, id) \
	search_id((base), (n), sizeof(*(base)), offsetof(__typeof__(*(base)), member), (id))

#endif
