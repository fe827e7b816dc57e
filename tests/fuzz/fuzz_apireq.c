/* tests/fuzz/fuzz_apireq.c - libFuzzer target for the HTTP API's request
 * path: the input is what a client sends on one TCP connection to a real
 * api_new() server (evhttp: request line, headers, bodies, pipelined
 * requests), with the credentials of a small file (admin, agent eu-1,
 * read) and ops backed by a real hstate. The connection is closed for
 * writing after the input, and the loop runs until the server closes it.
 *
 * Invariants: every response starts with an HTTP status line; a
 * configuration write reaches the ops only from a request that carries the
 * admin token (and is attributed to its credential), and a report only
 * with the admin token or eu-1's (for
 * eu-1); the server keeps serving (every 16th run, a well-formed request
 * on a new connection is answered 200).
 *
 * Seeds: tests/fuzz/corpus/apireq. Replayed by test_fuzz_replay. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "dnsd/api.h"
#include "health/cred.h"
#include "health/hstate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define AF_ADMIN "fuzz-admin-token-0123456789"
#define AF_AGENT "fuzz-agent-token-0123456789"
#define AF_READ  "fuzz-read-token-01234567890"

static struct event_base *af_base;
static struct api *af_api;
static struct hstate *af_h;
static const uint8_t *af_in;
static size_t af_len;

static void af_fail(const char *what)
{
	fprintf(stderr, "fuzz_apireq: %s\n", what);
	abort();
}

static bool af_carries(const char *tok)
{
	return memmem(af_in, af_len, tok, strlen(tok)) != NULL;
}

static json_t *af_checks(void *ctx)
{
	(void)ctx;
	return json_pack("{s:i,s:[]}", "generation", 1, "checks");
}

static int af_report(void *ctx, const struct api_report *r, char *err,
                     size_t errlen)
{
	struct hstate_agent a = { r->agent, r->region, r->has_coords, r->lat,
	                          r->lon };

	(void)ctx;
	if (!af_carries(AF_ADMIN) && !(af_carries(AF_AGENT) &&
	                               strcmp(r->agent, "eu-1") == 0))
		af_fail("a report applied without a credential for its agent");
	return hstate_report(af_h, &a, r->results, r->n, 1e9, err, errlen);
}

static int af_status(void *ctx, struct evbuffer *out)
{
	(void)ctx;
	return evbuffer_add_printf(out, "{\"generation\":1}") < 0 ? -ENOMEM : 0;
}

static int af_metrics(void *ctx, struct evbuffer *out)
{
	(void)ctx;
	return evbuffer_add_printf(out, "dnsd_up 1\n") < 0 ? -ENOMEM : 0;
}

static json_t *af_config_get(void *ctx, char *err, size_t errlen)
{
	(void)ctx;
	(void)err;
	(void)errlen;
	return json_pack("{s:[]}", "services");
}

static int af_config_write(void *ctx, const char *what, const json_t *body,
                           const struct api_caller *who, char *err,
                           size_t errlen)
{
	(void)ctx;
	(void)body;
	if (!af_carries(AF_ADMIN))
		af_fail("a configuration write without the admin token");
	if (!who || !who->name || strcmp(who->name, "ops") != 0)
		af_fail("a write not attributed to the admin credential");
	snprintf(err, errlen, "%s: refused by the fuzz target", what);
	return strcmp(what, "flip") == 0 ? 0 : -EINVAL;
}

static const struct api_ops af_ops = {
	.checks = af_checks, .report = af_report, .status = af_status,
	.metrics = af_metrics, .config_get = af_config_get,
	.config_write = af_config_write,
};

static void af_init(void)
{
	static const char creds[] =
		"admin ops " AF_ADMIN "\n"
		"agent eu-1 " AF_AGENT "\n"
		"read dash " AF_READ "\n";
	struct hstate_ep eps[3] = { { 1, 1 }, { 2, 1 }, { 3, 1 } };
	struct cred_set *s = NULL;
	char err[256];

	if (af_base)
		return;
	af_base = event_base_new();
	af_h = hstate_new(NULL);
	if (!af_base || !af_h || hstate_set_endpoints(af_h, eps, 3) < 0 ||
	    cred_parse(creds, strlen(creds), "creds", &s, err,
	               sizeof(err)) < 0)
		af_fail("setup");
	af_api = api_new(af_base, "127.0.0.1:0", NULL, &af_ops, NULL, err,
	                 sizeof(err));
	if (!af_api)
		af_fail(err);
	api_set_creds(af_api, s);
}

/* Sends in on a new connection, closes for writing, runs the loop until
 * the server closes (bounded); the reply lands in out. */
static size_t af_exchange(const uint8_t *in, size_t len, char *out,
                          size_t outlen)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	/* Closed with a reset: millions of runs leave no TIME_WAIT behind
	 * to exhaust the ephemeral ports. */
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	/* The server closes first and keeps each address pair in TIME_WAIT
	 * for a minute: a new source address in 127/8 per connection keeps
	 * the pairs from running out. */
	static uint32_t next_src;
	struct sockaddr_in src = { .sin_family = AF_INET };
	size_t sent = 0, got = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	next_src = next_src % 0xfffffd + 1;
	src.sin_addr.s_addr = htonl(0x7f000001u + next_src);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)api_port(af_api));
	if (fd < 0 || bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0)
		af_fail(strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	/* Non-blocking: libFuzzer's timer signals would interrupt a blocking
	 * connect half way. */
	fcntl(fd, F_SETFL, O_NONBLOCK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		struct pollfd pf = { .fd = fd, .events = POLLOUT };
		int soerr = 0;
		socklen_t sl = sizeof(soerr);

		if (errno != EINPROGRESS && errno != EINTR)
			af_fail(strerror(errno));
		while (poll(&pf, 1, 5000) < 0 && errno == EINTR)
			;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 ||
		    soerr)
			af_fail(strerror(soerr ? soerr : errno));
	}
	for (int round = 0; round < 2000; round++) {
		ssize_t n;

		if (sent < len) {
			n = send(fd, in + sent, len - sent, MSG_NOSIGNAL);
			if (n > 0)
				sent += (size_t)n;
			else if (n < 0 && errno != EAGAIN)
				sent = len;     /* the server closed */
			if (sent == len)
				shutdown(fd, SHUT_WR);
		} else if (len == 0 && round == 0) {
			shutdown(fd, SHUT_WR);
		}
		event_base_loop(af_base, EVLOOP_NONBLOCK);
		n = recv(fd, out + got, outlen - 1 - got, 0);
		if (n > 0) {
			got += (size_t)n;
			if (got == outlen - 1)
				got = 0;        /* keep the tail; enough to check */
			continue;
		}
		if (n == 0 || (n < 0 && errno != EAGAIN))
			break;
		poll(NULL, 0, 0);
	}
	close(fd);
	event_base_loop(af_base, EVLOOP_NONBLOCK);
	out[got] = 0;
	return got;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char ok[] = "GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\n"
	                         "Connection: close\r\n\r\n";
	static unsigned runs;
	char out[8192];
	size_t n;

	if (size > 64 * 1024)
		return 0;
	af_init();
	af_in = data;
	af_len = size;
	n = af_exchange(data, size, out, sizeof(out));
	if (n > 0 && n < sizeof(out) - 1 && strncmp(out, "HTTP/", 5) != 0)
		af_fail("a reply without an HTTP status line");
	if (runs++ % 16)
		return 0;               /* the server is still fine: every 16th */
	af_in = (const uint8_t *)ok;
	af_len = sizeof(ok) - 1;
	n = af_exchange((const uint8_t *)ok, sizeof(ok) - 1, out, sizeof(out));
	if (strncmp(out, "HTTP/1.1 200", 12) != 0)
		af_fail("the server stopped answering");
	return 0;
}
