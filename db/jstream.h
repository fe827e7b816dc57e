/* db/jstream.h - a JSON document read piece by piece (yajl), one element
 * at a time, with memory bounded by the largest element, not by the
 * document.
 *
 * The document must be an object. The member named by `items` (e.g.
 * "services"), when its value is an array, is streamed: each element is
 * built as a jansson value and handed to the item callback, then freed.
 * Every other member is handed whole to the member callback (also the
 * `items` member when it is not an array). Strict JSON as jansson reads it
 * by default: UTF-8, no comments, no trailing data, no "\u0000", integers
 * that fit 64 bits, finite reals; a repeated key keeps the last value.
 *
 * Positions are 0-based byte offsets and 1-based lines of the document.
 * Errors (-EINVAL) read "line L, byte B: why". Load time only. */
#ifndef DB_JSTREAM_H
#define DB_JSTREAM_H
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

struct jstream;                 /* opaque */

struct jstream_pos {
	unsigned long long byte;
	unsigned long line;
};

/* Callbacks get a borrowed value (freed after they return) and the
 * position of its first byte; a negative return stops the parse and
 * becomes jstream_feed's result (the callback writes its own err). */
struct jstream_cb {
	int (*member)(void *arg, const char *key, json_t *value,
	              const struct jstream_pos *at);
	int (*item)(void *arg, size_t index, json_t *value,
	            const struct jstream_pos *at);
};

/* New parser streaming the array member `items`; an element larger than
 * max_item bytes is an error. NULL when out of memory. */
struct jstream *jstream_new(const char *items, size_t max_item,
                            const struct jstream_cb *cb, void *arg);
void jstream_free(struct jstream *js);       /* NULL is fine */

/* Parses the next len bytes. 0, a callback's result, -EINVAL (bad JSON) or
 * -ENOMEM, with err (errlen bytes) saying where and why. */
int jstream_feed(struct jstream *js, const void *buf, size_t len, char *err,
                 size_t errlen);
/* The end of the document: fails when it is incomplete. */
int jstream_finish(struct jstream *js, char *err, size_t errlen);

/* Whether the document had the streamed array (empty or not). */
bool jstream_streamed(const struct jstream *js);
/* Bytes parsed so far. */
unsigned long long jstream_bytes(const struct jstream *js);

#endif
