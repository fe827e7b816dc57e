/* common/cowvec.c - copy-on-write chunked vector; see cowvec.h. */
#include "common/cowvec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static size_t chunk_size(const struct cowvec *v)
{
	return sizeof(struct cowvec_chunk) + (size_t)COWVEC_N * v->esz;
}

void cowvec_init(struct cowvec *v, uint32_t esz, const struct cowvec_ops *ops)
{
	memset(v, 0, sizeof(*v));
	v->esz = esz;
	v->ops = ops;
}

int cowvec_reserve(struct cowvec *v, size_t n)
{
	size_t want = (n + COWVEC_N - 1) / COWVEC_N;
	struct cowvec_chunk **d;

	if (want <= v->n_chunks)
		return 0;
	d = realloc(v->dir, want * sizeof(*d));
	if (!d)
		return -ENOMEM;
	v->dir = d;
	while (v->n_chunks < want) {
		struct cowvec_chunk *c = calloc(1, chunk_size(v));

		if (!c)
			return -ENOMEM;
		c->refs = 1;
		v->dir[v->n_chunks++] = c;
	}
	return 0;
}

int cowvec_clone(struct cowvec *dst, const struct cowvec *src)
{
	cowvec_init(dst, src->esz, src->ops);
	if (!src->n_chunks)
		return 0;
	dst->dir = malloc(src->n_chunks * sizeof(*dst->dir));
	if (!dst->dir)
		return -ENOMEM;
	memcpy(dst->dir, src->dir, src->n_chunks * sizeof(*dst->dir));
	dst->n_chunks = src->n_chunks;
	for (size_t i = 0; i < dst->n_chunks; i++)
		dst->dir[i]->refs++;
	return 0;
}

static void chunk_release(const struct cowvec *v, struct cowvec_chunk *c)
{
	if (--c->refs > 0)
		return;
	if (v->ops && v->ops->drop)
		v->ops->drop(c->data, COWVEC_N);
	free(c);
}

void *cowvec_mut(struct cowvec *v, size_t i)
{
	size_t k = i >> COWVEC_SHIFT;
	struct cowvec_chunk *c = v->dir[k];

	if (c->refs > 1) {
		struct cowvec_chunk *n = malloc(chunk_size(v));

		if (!n)
			return NULL;
		memcpy(n, c, chunk_size(v));
		n->refs = 1;
		if (v->ops && v->ops->hold)
			v->ops->hold(n->data, COWVEC_N);
		c->refs--;
		v->dir[k] = c = n;
	}
	return (char *)c->data + (i & (COWVEC_N - 1)) * v->esz;
}

void cowvec_fini(struct cowvec *v)
{
	for (size_t i = 0; i < v->n_chunks; i++)
		chunk_release(v, v->dir[i]);
	free(v->dir);
	v->dir = NULL;
	v->n_chunks = 0;
}

size_t cowvec_bytes(const struct cowvec *v)
{
	return v->n_chunks * (chunk_size(v) + sizeof(*v->dir));
}
