/* common/arena.c - see arena.h. */
#include "common/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct arena_chunk {
	struct arena_chunk *next;
	size_t size, off;
	max_align_t data[];
};

#define ARENA_CHUNK (256 * 1024)

void arena_init(struct arena *a)
{
	a->head = NULL;
	a->used = 0;
}

void arena_fini(struct arena *a)
{
	struct arena_chunk *c = a->head, *n;

	for (; c; c = n) {
		n = c->next;
		free(c);
	}
	arena_init(a);
}

void *arena_alloc(struct arena *a, size_t n)
{
	struct arena_chunk *c = a->head;
	size_t need = (n + 7) & ~(size_t)7;
	void *p;

	if (need < n)
		return NULL;
	if (!c || c->size - c->off < need) {
		size_t size = need > ARENA_CHUNK / 4 ? need : ARENA_CHUNK;

		/* Big objects get a chunk of their own behind the current
		 * one, so the current chunk's free tail is not wasted. */
		c = malloc(sizeof(*c) + size);
		if (!c)
			return NULL;
		c->size = size;
		c->off = 0;
		if (size != ARENA_CHUNK && a->head) {
			c->next = a->head->next;
			a->head->next = c;
		} else {
			c->next = a->head;
			a->head = c;
		}
	}
	p = (uint8_t *)c->data + c->off;
	c->off += need;
	a->used += need;
	return p;
}

void *arena_calloc(struct arena *a, size_t n)
{
	void *p = arena_alloc(a, n);

	if (p)
		memset(p, 0, n);
	return p;
}

void *arena_memdup(struct arena *a, const void *src, size_t n)
{
	void *p = arena_alloc(a, n);

	if (p && n)
		memcpy(p, src, n);
	return p;
}

char *arena_strdup(struct arena *a, const char *s)
{
	return arena_memdup(a, s, strlen(s) + 1);
}
