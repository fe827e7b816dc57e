/* health/pcheck.h - one health check of the probe agent, run on a libevent
 * loop without ever blocking it: TCP connect, HTTP and HTTPS (OpenSSL via
 * bufferevent_openssl; verification on by default, SNI, host name check),
 * DNS (UDP query, expected rcode). Agent process only, loop thread only.
 *
 * RTT (monotonic clock, ms): TCP: until the connection is established;
 * HTTP(S): until the status line of the response arrived (includes connect
 * and TLS handshake); DNS: until the matching response arrived. Host names
 * in TCP/HTTP(S) URLs are resolved with evdns (non-blocking; the RTT then
 * includes the lookup); DNS checks need an IP literal or "localhost". */
#ifndef HEALTH_PCHECK_H
#define HEALTH_PCHECK_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evdns_base;
typedef struct ssl_ctx_st SSL_CTX;

enum pcheck_kind { PCHECK_TCP, PCHECK_HTTP, PCHECK_HTTPS, PCHECK_DNS };

#define PCHECK_HOST_MAX 256
#define PCHECK_PATH_MAX 1024
#define PCHECK_TEXT_MAX 256
#define PCHECK_BODY_WINDOW 5120   /* body substring searched in this much */

/* tcp://HOST:PORT, http://HOST[:PORT]/PATH, https://HOST[:PORT]/PATH,
 * dns://HOST[:PORT]/NAME. HOST: name, IPv4, or [IPv6]. */
struct pcheck_url {
	enum pcheck_kind kind;
	char host[PCHECK_HOST_MAX];   /* without brackets */
	uint16_t port;                /* defaults: http 80, https 443, dns 53 */
	char path[PCHECK_PATH_MAX];   /* HTTP: "/..." with query; DNS: name */
};
/* Parses url. Returns 0, or -EINVAL with err saying what is wrong. */
int pcheck_url_parse(const char *url, struct pcheck_url *out, char *err,
                     size_t errlen);

struct pcheck_spec {
	struct pcheck_url url;
	double timeout;                /* seconds, > 0 */
	bool tls_verify;               /* https: verify chain and host name */
	unsigned expect_lo, expect_hi; /* http(s): accepted status range */
	char body[PCHECK_TEXT_MAX];    /* http(s): "" or required substring */
	char host_header[PCHECK_TEXT_MAX]; /* http(s): "" = URL host; https:
	                                    * also the SNI and verified name */
	int rcode;                     /* dns: expected rcode (0 NOERROR) */
};

/* Incremental reader of the HTTP/1.x response of an http(s) check: fed
 * whatever the connection delivered so far, no socket involved (the check
 * runs it on its bufferevent's input; tests and the fuzzer on their own
 * evbuffer). Zero it with pcheck_http_init(). */
enum pcheck_http_phase {
	PCHECK_HTTP_STATUS, PCHECK_HTTP_HEADERS, PCHECK_HTTP_BODY
};
struct pcheck_http {
	enum pcheck_http_phase phase;
	bool status_seen;              /* the status line has arrived */
	unsigned status;
	long content_length;           /* -1 unknown */
	size_t body_len;
	char body[PCHECK_BODY_WINDOW + 1];
};
void pcheck_http_init(struct pcheck_http *h);
/* Consumes what it can of in (the bytes received and not yet consumed)
 * against spec's expect range and body substring. eof: the peer closed,
 * nothing more will come. Returns 0 while undecided, 1 when the check
 * passed, -1 when it failed; in both cases detail says why ("status 200",
 * "malformed status line", ...). Never reads past in's data. */
struct evbuffer;
int pcheck_http_parse(struct pcheck_http *h, const struct pcheck_spec *spec,
                      struct evbuffer *in, bool eof, char *detail,
                      size_t detail_len);

/* What every check needs from the agent; all borrowed. */
struct pcheck_env {
	struct event_base *base;
	struct evdns_base *dns;
	SSL_CTX *ssl;                  /* from pcheck_ssl_ctx_new() */
};

/* Result callback: called exactly once per started check unless it was
 * cancelled, never from inside pcheck_start(). rtt_ms < 0 when failed
 * before any measurement. detail: short text, borrowed for the call. */
typedef void (*pcheck_done_fn)(void *arg, bool ok, double rtt_ms,
                               const char *detail);

struct pcheck_run;                              /* opaque */
/* Starts a check (spec is copied). NULL only when out of memory. */
struct pcheck_run *pcheck_start(const struct pcheck_env *env,
                                const struct pcheck_spec *spec,
                                pcheck_done_fn fn, void *arg);
/* Stops a running check; fn will not be called. NULL is fine. */
void pcheck_cancel(struct pcheck_run *r);

/* Client TLS context using the system CA store. NULL with err on failure.
 * Free with SSL_CTX_free(). */
SSL_CTX *pcheck_ssl_ctx_new(char *err, size_t errlen);

/* Parses "200-399" or "200" into a range within 100..599. 0 or -EINVAL. */
int pcheck_expect_parse(const char *s, unsigned *lo, unsigned *hi);
/* Parses an rcode name (NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP,
 * REFUSED) or number 0..15. 0 or -EINVAL. */
int pcheck_rcode_parse(const char *s, int *out);

#endif
