/* db/jstream.c - streaming JSON: yajl's events build one element at a
 * time as jansson values. Load time only; see db/jstream.h. */
#include "db/jstream.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_parse.h>

/* Nesting deeper than this inside one element is refused. */
#define JSTREAM_MAX_DEPTH 64

struct frame {
	json_t *v;              /* object or array being built */
	char *key;              /* object: the key of the next value */
};

struct jstream {
	yajl_handle h;
	const struct jstream_cb *cb;
	void *arg;
	char *items;
	size_t max_item;
	/* Where the parse is: depth of the document's containers (1 = in
	 * the top object), whether we are in the streamed array. */
	int depth;
	bool streaming, done, streamed;
	char *top_key;
	size_t index;
	/* The value being built. */
	struct frame stack[JSTREAM_MAX_DEPTH];
	int bd;
	struct jstream_pos start;
	/* Position: bytes of the chunks before this one; newlines counted
	 * up to `counted` bytes of the current chunk. */
	const unsigned char *chunk;
	size_t counted;
	unsigned long long base;
	unsigned long line;
	/* A stop requested by a callback or by the builder. */
	int rc;
	char err[512];
};

/* The current position (just after the token yajl last read). */
static struct jstream_pos here(struct jstream *js)
{
	size_t upto = yajl_get_bytes_consumed(js->h);
	struct jstream_pos p;

	for (; js->counted < upto; js->counted++)
		if (js->chunk[js->counted] == '\n')
			js->line++;
	p.byte = js->base + upto;
	p.line = js->line;
	return p;
}

static int stop(struct jstream *js, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int stop(struct jstream *js, int rc, const char *fmt, ...)
{
	struct jstream_pos p = here(js);
	int n;
	va_list ap;

	n = snprintf(js->err, sizeof js->err, "line %lu, byte %llu: ", p.line,
	             p.byte > 0 ? p.byte - 1 : 0);
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof js->err)
		vsnprintf(js->err + n, sizeof js->err - (size_t)n, fmt, ap);
	va_end(ap);
	js->rc = rc;
	return 0;               /* yajl: cancel */
}

/* Marks where a value of the top object or of the streamed array starts
 * (back = bytes of its first token already read). */
static void mark(struct jstream *js, size_t back)
{
	struct jstream_pos p = here(js);

	p.byte = p.byte >= back ? p.byte - back : 0;
	js->start = p;
}

/* Hands a finished value to its container or to the callbacks. */
static int add(struct jstream *js, json_t *v)
{
	struct frame *f;
	int rc = 0;

	if (!v)
		return stop(js, -ENOMEM, "out of memory");
	if (js->bd > 0) {
		f = &js->stack[js->bd - 1];
		if (json_is_object(f->v)) {
			rc = json_object_set_new(f->v, f->key ? f->key : "", v);
			free(f->key);
			f->key = NULL;
		} else {
			rc = json_array_append_new(f->v, v);
		}
		if (rc < 0)
			return stop(js, -ENOMEM, "out of memory");
		if (js->streaming && js->max_item &&
		    here(js).byte - js->start.byte > js->max_item)
			return stop(js, -EINVAL, "%s[%zu] is larger than %zu "
			            "bytes", js->items, js->index, js->max_item);
		return 1;
	}
	if (js->streaming) {
		if (js->cb->item)
			rc = js->cb->item(js->arg, js->index, v, &js->start);
		js->index++;
	} else if (js->cb->member) {
		rc = js->cb->member(js->arg, js->top_key ? js->top_key : "", v,
		                    &js->start);
	}
	json_decref(v);
	if (rc < 0) {
		js->rc = rc;
		js->err[0] = '\0';      /* the callback wrote err */
		return 0;
	}
	return 1;
}

/* A scalar where the document itself should start: not an object. */
static int scalar(struct jstream *js, json_t *v, size_t len)
{
	if (js->depth == 0) {
		json_decref(v);
		return stop(js, -EINVAL, "not a JSON object");
	}
	if (js->bd == 0)
		mark(js, len);
	return add(js, v);
}

static int on_null(void *ctx)
{
	return scalar(ctx, json_null(), 4);
}

static int on_bool(void *ctx, int b)
{
	return scalar(ctx, json_boolean(b), b ? 4 : 5);
}

static int on_number(void *ctx, const char *s, size_t len)
{
	struct jstream *js = ctx;
	char buf[64], *t = len < sizeof buf ? buf : malloc(len + 1);
	json_t *v = NULL;
	char *end;
	int rc;

	if (!t)
		return stop(js, -ENOMEM, "out of memory");
	memcpy(t, s, len);
	t[len] = '\0';
	errno = 0;
	if (strpbrk(t, ".eE")) {
		double d = strtod(t, &end);

		if (errno == ERANGE && isinf(d))
			rc = stop(js, -EINVAL, "real number overflow");
		else
			rc = scalar(js, v = json_real(d), len);
	} else {
		long long ll = strtoll(t, &end, 10);

		if (errno == ERANGE)
			rc = stop(js, -EINVAL, "too big integer");
		else
			rc = scalar(js, v = json_integer(ll), len);
	}
	if (t != buf)
		free(t);
	return rc;
}

static int on_string(void *ctx, const unsigned char *s, size_t len)
{
	struct jstream *js = ctx;

	if (memchr(s, '\0', len))
		return stop(js, -EINVAL, "\\u0000 is not allowed");
	return scalar(js, json_stringn((const char *)s, len), len + 2);
}

static int on_key(void *ctx, const unsigned char *s, size_t len)
{
	struct jstream *js = ctx;
	char **slot = js->bd > 0 ? &js->stack[js->bd - 1].key : &js->top_key;

	if (memchr(s, '\0', len))
		return stop(js, -EINVAL, "\\u0000 is not allowed");
	free(*slot);
	if (!(*slot = strndup((const char *)s, len)))
		return stop(js, -ENOMEM, "out of memory");
	return 1;
}

static int open_container(struct jstream *js, bool array)
{
	if (js->depth == 0) {
		if (array)
			return stop(js, -EINVAL, "not a JSON object");
		js->depth = 1;
		return 1;
	}
	if (js->depth == 1 && js->bd == 0 && array && !js->streaming &&
	    js->top_key && strcmp(js->top_key, js->items) == 0) {
		js->streaming = js->streamed = true;
		js->depth = 2;
		return 1;
	}
	if (js->bd == JSTREAM_MAX_DEPTH)
		return stop(js, -EINVAL, "nested deeper than %d levels",
		            JSTREAM_MAX_DEPTH);
	if (js->bd == 0)
		mark(js, 1);
	js->stack[js->bd].v = array ? json_array() : json_object();
	js->stack[js->bd].key = NULL;
	if (!js->stack[js->bd].v)
		return stop(js, -ENOMEM, "out of memory");
	js->bd++;
	js->depth++;
	return 1;
}

static int close_container(struct jstream *js)
{
	struct frame *f;

	if (js->bd == 0) {
		if (js->streaming)
			js->streaming = false;  /* end of the streamed array */
		else
			js->done = true;        /* end of the document */
		js->depth--;
		return 1;
	}
	f = &js->stack[--js->bd];
	free(f->key);
	f->key = NULL;
	js->depth--;
	return add(js, f->v);
}

static int on_start_map(void *ctx)
{
	return open_container(ctx, false);
}

static int on_start_array(void *ctx)
{
	return open_container(ctx, true);
}

static int on_end(void *ctx)
{
	return close_container(ctx);
}

static const yajl_callbacks callbacks = {
	.yajl_null = on_null,
	.yajl_boolean = on_bool,
	.yajl_number = on_number,
	.yajl_string = on_string,
	.yajl_start_map = on_start_map,
	.yajl_map_key = on_key,
	.yajl_end_map = on_end,
	.yajl_start_array = on_start_array,
	.yajl_end_array = on_end,
};

struct jstream *jstream_new(const char *items, size_t max_item,
                            const struct jstream_cb *cb, void *arg)
{
	struct jstream *js = calloc(1, sizeof *js);

	if (!js)
		return NULL;
	js->cb = cb;
	js->arg = arg;
	js->max_item = max_item;
	js->line = 1;
	js->items = strdup(items);
	js->h = yajl_alloc(&callbacks, NULL, js);
	if (!js->items || !js->h) {
		jstream_free(js);
		return NULL;
	}
	return js;
}

void jstream_free(struct jstream *js)
{
	if (!js)
		return;
	while (js->bd > 0) {
		js->bd--;
		json_decref(js->stack[js->bd].v);
		free(js->stack[js->bd].key);
	}
	if (js->h)
		yajl_free(js->h);
	free(js->top_key);
	free(js->items);
	free(js);
}

/* The result of a yajl call: ours when a callback stopped it, else
 * yajl's message with the position. */
static int result(struct jstream *js, yajl_status st, const unsigned char *buf,
                  size_t len, char *err, size_t errlen)
{
	unsigned char *msg;
	struct jstream_pos p;
	size_t n;

	if (st == yajl_status_ok)
		return 0;
	if (st == yajl_status_client_canceled) {
		if (js->err[0] && errlen)
			snprintf(err, errlen, "%s", js->err);
		return js->rc < 0 ? js->rc : -EINVAL;
	}
	msg = yajl_get_error(js->h, 0, buf, len);
	p = here(js);
	n = msg ? strlen((char *)msg) : 0;
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	if (errlen)
		snprintf(err, errlen, "line %lu, byte %llu: %s", p.line,
		         p.byte > 0 ? p.byte - 1 : 0,  /* the offending byte */
		         msg ? (char *)msg : "invalid JSON");
	if (msg)
		yajl_free_error(js->h, msg);
	js->rc = -EINVAL;
	return -EINVAL;
}

int jstream_feed(struct jstream *js, const void *buf, size_t len, char *err,
                 size_t errlen)
{
	yajl_status st;
	int rc;

	if (js->rc < 0)
		return js->rc;
	js->chunk = buf;
	js->counted = 0;
	st = yajl_parse(js->h, buf, len);
	rc = result(js, st, buf, len, err, errlen);
	if (rc == 0) {
		/* Everything was read: count the rest of the chunk. */
		for (; js->counted < len; js->counted++)
			if (js->chunk[js->counted] == '\n')
				js->line++;
		js->base += len;
	}
	js->chunk = NULL;
	js->counted = 0;
	return rc;
}

int jstream_finish(struct jstream *js, char *err, size_t errlen)
{
	static const unsigned char none[1];
	yajl_status st;
	int rc;

	if (js->rc < 0)
		return js->rc;
	js->chunk = none;
	js->counted = 0;
	st = yajl_complete_parse(js->h);
	if (st == yajl_status_error) {
		/* The end came too early: say so at the end. */
		if (errlen)
			snprintf(err, errlen, "line %lu, byte %llu: %s", js->line,
			         js->base, js->depth ? "the document ends early"
			                             : "empty document");
		js->chunk = NULL;
		return js->rc = -EINVAL;
	}
	rc = result(js, st, none, 0, err, errlen);
	js->chunk = NULL;
	if (rc == 0 && !js->done) {
		if (errlen)
			snprintf(err, errlen, "line %lu, byte %llu: %s", js->line,
			         js->base, js->base ? "the document ends early"
			                            : "empty document");
		rc = js->rc = -EINVAL;
	}
	return rc;
}

unsigned long long jstream_bytes(const struct jstream *js)
{
	return js->base;
}

bool jstream_streamed(const struct jstream *js)
{
	return js->streamed;
}
