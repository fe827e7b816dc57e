/* common/cowvec.h - a copy-on-write vector: fixed-size elements in chunks
 * of COWVEC_N, reached through a directory of chunk pointers.
 *
 * Design note. Immutable structures published to readers (dnsd's snapshot)
 * change a little at a time: a new version clones the vector (the
 * directory is copied, every chunk is shared) and writes only the elements
 * that changed; a write to a shared chunk copies that chunk first. A change
 * of k elements therefore costs O(k x COWVEC_N) bytes plus the directory
 * (n / COWVEC_N pointers), whatever n is.
 *
 * Ownership: each chunk counts the vectors that use it; cowvec_fini()
 * frees the chunks no other vector holds. Elements that own something
 * (pointers to refcounted objects) declare it with ops: hold() runs on the
 * elements of a chunk that was just copied (the copy holds them too), and
 * drop() on the elements of a chunk about to be freed.
 *
 * Threads: building, cloning and freeing happen on one thread (load time;
 * the counters are plain integers). Readers on other threads only read
 * elements (cowvec_at) of vectors that are no longer written. A vector
 * that has been published is never written again: write its clone. */
#ifndef COMMON_COWVEC_H
#define COMMON_COWVEC_H
#include <stddef.h>
#include <stdint.h>

#define COWVEC_SHIFT 9
#define COWVEC_N     (1u << COWVEC_SHIFT)

struct cowvec_ops {
	void (*hold)(void *elems, size_t n);
	void (*drop)(void *elems, size_t n);
};

struct cowvec_chunk {
	uint32_t refs;          /* vectors using this chunk */
	uint32_t pad;
	uint64_t data[];        /* COWVEC_N elements, 8-byte aligned */
};

struct cowvec {
	struct cowvec_chunk **dir;
	size_t n_chunks;
	uint32_t esz;           /* element size, bytes */
	const struct cowvec_ops *ops;   /* NULL: plain data */
};

/* An empty vector of elements of esz bytes (room grows with
 * cowvec_reserve). */
void cowvec_init(struct cowvec *v, uint32_t esz, const struct cowvec_ops *ops);
/* Makes elements [0, n) addressable (new chunks are zeroed). 0 or
 * -ENOMEM. */
int cowvec_reserve(struct cowvec *v, size_t n);
/* dst (uninitialised) shares every chunk of src. 0 or -ENOMEM. */
int cowvec_clone(struct cowvec *dst, const struct cowvec *src);
/* Element i (< reserved) for writing: its chunk is copied first when
 * another vector shares it. NULL when out of memory. */
void *cowvec_mut(struct cowvec *v, size_t i);
/* Releases v's chunks; v is empty afterwards. */
void cowvec_fini(struct cowvec *v);
/* Elements addressable. */
static inline size_t cowvec_cap(const struct cowvec *v)
{
	return v->n_chunks * COWVEC_N;
}
/* Bytes of the chunks v holds (shared ones counted in full). */
size_t cowvec_bytes(const struct cowvec *v);

/* Element i (< cowvec_cap) for reading. Any thread; no allocation. */
static inline const void *cowvec_at(const struct cowvec *v, size_t i)
{
	return (const char *)v->dir[i >> COWVEC_SHIFT]->data +
	       (i & (COWVEC_N - 1)) * v->esz;
}

#endif
