/* tests/fuzz/fuzz_http.c - libFuzzer target for the probe agent's reader of
 * HTTP responses (pcheck_http_parse(), the code every http(s) check runs on
 * its connection's input). Input: octet 0 picks the check's expect range
 * and body substring from small tables, octet 1 seeds the read sizes, the
 * rest is what the server sent. The response is read twice: in one piece,
 * and in pieces of 1..64 octets as a slow server would deliver them, each
 * followed by end of stream. Both must reach the same verdict with the
 * same detail (except a header line over the 16 KB limit, which depends on
 * when the limit is checked), the verdict must be -1 or 1 once the stream
 * ended, and a decided check must say why.
 *
 * Seeds: tests/fuzz/corpus/http. Replayed by test_fuzz_replay. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "health/pcheck.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct pcheck_http hf_h;

/* Feeds data in pieces (all at once when seed is 0); returns the verdict
 * after end of stream, with detail. */
static int hf_read(const struct pcheck_spec *spec, const uint8_t *data,
		   size_t size, unsigned seed, char *detail, size_t dlen)
{
	struct evbuffer *in = evbuffer_new();
	uint32_t x = seed * 2654435761u + 1;
	size_t off = 0;
	int rc = 0;

	if (!in)
		abort();
	pcheck_http_init(&hf_h);
	detail[0] = 0;
	while (off < size && rc == 0) {
		size_t n = size - off;

		if (seed) {
			x = x * 1103515245u + 12345u;
			if (n > 1 + (x >> 16) % 64)
				n = 1 + (x >> 16) % 64;
		}
		evbuffer_add(in, data + off, n);
		off += n;
		rc = pcheck_http_parse(&hf_h, spec, in, false, detail, dlen);
	}
	if (rc == 0)
		rc = pcheck_http_parse(&hf_h, spec, in, true, detail, dlen);
	evbuffer_free(in);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned expect[][2] = {
		{ 200, 399 }, { 200, 200 }, { 100, 599 }, { 500, 503 },
	};
	static const char *const bodies[] = { "", "OK", "healthy", "x" };
	struct pcheck_spec spec;
	char d1[200], d2[200];
	int r1, r2;

	if (size < 2 || size > 64 * 1024)
		return 0;
	memset(&spec, 0, sizeof(spec));
	spec.url.kind = PCHECK_HTTP;
	spec.expect_lo = expect[data[0] & 3][0];
	spec.expect_hi = expect[data[0] & 3][1];
	snprintf(spec.body, sizeof(spec.body), "%s", bodies[(data[0] >> 2) & 3]);
	r1 = hf_read(&spec, data + 2, size - 2, 0, d1, sizeof(d1));
	r2 = hf_read(&spec, data + 2, size - 2, data[1] | 1u, d2, sizeof(d2));
	if ((r1 != 1 && r1 != -1) || (r2 != 1 && r2 != -1) || !d1[0] ||
	    !d2[0]) {
		fprintf(stderr, "fuzz_http: undecided at end of stream (%d %d)\n",
			r1, r2);
		abort();
	}
	if (strstr(d1, "too long") || strstr(d2, "too long"))
		return 0;
	if (r1 != r2 || strcmp(d1, d2) != 0) {
		fprintf(stderr, "fuzz_http: whole read: %d '%s', in pieces: "
			"%d '%s'\n", r1, d1, r2, d2);
		abort();
	}
	return 0;
}
