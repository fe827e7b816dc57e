/* common/arena.h - bump allocator: many small allocations, one free.
 * Snapshots live in one arena and are freed in one call when retired.
 * Load time only (allocation may fail and returns NULL); not thread-safe. */
#ifndef COMMON_ARENA_H
#define COMMON_ARENA_H
#include <stddef.h>

struct arena_chunk;
struct arena {
	struct arena_chunk *head;
	size_t used;     /* bytes handed out, for reporting */
};

void arena_init(struct arena *a);
/* Frees every chunk; the arena can be used again. */
void arena_fini(struct arena *a);
/* n bytes aligned to 8, or NULL when out of memory. */
void *arena_alloc(struct arena *a, size_t n);
/* Zeroed. */
void *arena_calloc(struct arena *a, size_t n);
/* A copy of n bytes / of a C string, or NULL. */
void *arena_memdup(struct arena *a, const void *p, size_t n);
char *arena_strdup(struct arena *a, const char *s);

#endif
