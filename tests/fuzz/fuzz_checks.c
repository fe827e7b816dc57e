/* tests/fuzz/fuzz_checks.c - libFuzzer target for the probe agent's
 * parsers of what dnsd's API serves: the check list entries
 * (probe_check_parse() on every element of a JSON array, or of "checks" in
 * an object, as the agent reads GET /v1/checks) and, for each of the
 * input's first 8 lines, the check URL, expect range, rcode and API server
 * URL parsers. Accepted values must be within their documented bounds and
 * rejected ones must come with a reason.
 *
 * Seeds: tests/fuzz/corpus/checks. Replayed by test_fuzz_replay. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "health/pcheck.h"
#include "health/probe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void kf_fail(const char *what, const char *in)
{
	fprintf(stderr, "fuzz_checks: %s: '%.200s'\n", what, in);
	abort();
}

static void kf_url_ok(const struct pcheck_url *u, const char *in)
{
	if (u->kind > PCHECK_DNS || !u->host[0] ||
	    memchr(u->host, 0, sizeof(u->host)) == NULL ||
	    memchr(u->path, 0, sizeof(u->path)) == NULL || u->port == 0)
		kf_fail("url out of bounds", in);
	if ((u->kind == PCHECK_HTTP || u->kind == PCHECK_HTTPS) &&
	    u->path[0] != '/')
		kf_fail("http path without /", in);
}

static void kf_entry(const json_t *o, size_t i)
{
	struct probe_check_def d;
	char err[300] = "";

	if (probe_check_parse(o, i, 10, &d, err, sizeof(err)) < 0) {
		if (!err[0])
			kf_fail("check rejected without a reason", "");
		return;
	}
	kf_url_ok(&d.spec.url, d.url);
	if (!(d.interval >= 1 && d.interval <= 86400) ||
	    !(d.spec.timeout > 0 && d.spec.timeout <= 300) ||
	    d.rise < 1 || d.rise > 100 || d.fall < 1 || d.fall > 100 ||
	    d.spec.expect_lo < 100 || d.spec.expect_lo > d.spec.expect_hi ||
	    d.spec.expect_hi > 599 || d.spec.rcode < 0 || d.spec.rcode > 15 ||
	    !memchr(d.spec.body, 0, sizeof(d.spec.body)) ||
	    !memchr(d.spec.host_header, 0, sizeof(d.spec.host_header)))
		kf_fail("check out of bounds", d.url);
}

static void kf_line(const char *s)
{
	struct pcheck_url u;
	char err[300] = "", host[256], prefix[512];
	unsigned lo, hi;
	uint16_t port;
	bool tls;
	int rc;

	if (pcheck_url_parse(s, &u, err, sizeof(err)) == 0)
		kf_url_ok(&u, s);
	else if (!err[0])
		kf_fail("url rejected without a reason", s);
	if (pcheck_expect_parse(s, &lo, &hi) == 0 &&
	    (lo < 100 || lo > hi || hi > 599))
		kf_fail("expect out of bounds", s);
	if (pcheck_rcode_parse(s, &rc) == 0 && (rc < 0 || rc > 15))
		kf_fail("rcode out of bounds", s);
	if (probe_server_parse(s, host, sizeof(host), &port, prefix,
			       sizeof(prefix), &tls) == 0 && (!host[0] || port == 0))
		kf_fail("server url out of bounds", s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char text[8192];
	json_t *root, *arr;
	size_t n = size < sizeof(text) - 1 ? size : sizeof(text) - 1;
	char *line, *next;
	int lines = 0;

	if (size > 256 * 1024)
		return 0;
	root = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES,
			  NULL);
	arr = json_is_object(root) ? json_object_get(root, "checks") : root;
	if (json_is_array(arr))
		for (size_t i = 0; i < json_array_size(arr) && i < 1000; i++)
			kf_entry(json_array_get(arr, i), i);
	json_decref(root);
	memcpy(text, data, n);
	text[n] = 0;
	for (line = text; line && lines < 8; line = next, lines++) {
		if ((next = strchr(line, '\n')))
			*next++ = 0;
		kf_line(line);
	}
	return 0;
}
