/* health/probe.h - the probe agent (bin/gslb-probe): learns its checks from
 * every configured dnsd API, runs them on its own libevent loop with jitter,
 * applies rise/fall hysteresis per check and reports batches to every server
 * independently. Protocol: health/PROTOCOL.md. Agent process only, one
 * thread. */
#ifndef HEALTH_PROBE_H
#define HEALTH_PROBE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "health/pcheck.h"

#define PROBE_MAX_SERVERS 16
#define PROBE_CHECKS_MAX 100000                  /* per check list */
#define PROBE_LIST_BYTES_MAX (64 * 1024 * 1024)  /* GET /v1/checks body */

struct probe_conf {
	const char *name, *region;
	bool has_coords;
	double lat, lon;
	const char *servers[PROBE_MAX_SERVERS]; /* API base URLs */
	size_t n_servers;
	const char *token;      /* bearer token; NULL: none (cert instead) */
	const char *ca_file;    /* PEM CAs for https servers; NULL: system's */
	const char *cert_file;  /* PEM client certificate (chain) for https */
	const char *key_file;   /* and its key; both or neither */
	double interval;        /* default check interval, s (>= 1) */
	double refresh;         /* check-list refetch period, s */
	double batch;           /* minimum time between reports, s */
	double http_timeout;    /* API request timeout, s */
};

/* One check as served by GET /v1/checks. */
struct probe_check_def {
	uint32_t id;
	char url[PCHECK_PATH_MAX + PCHECK_HOST_MAX + 16];
	struct pcheck_spec spec;
	double interval;        /* s, >= 1 */
	unsigned rise, fall;    /* 1..100 */
};
/* Validates one element of "checks" (defaults: interval default_interval,
 * timeout min(5, interval), rise 3, fall 2, tls_verify true, expect
 * 200-399, rcode NOERROR). Returns 0, or -EINVAL with err naming the field
 * ("checks[3].timeout: ..."). */
int probe_check_parse(const json_t *o, size_t idx, double default_interval,
                      struct probe_check_def *out, char *err, size_t errlen);

/* Parses an API base URL "http[s]://HOST[:PORT][/PREFIX]" (*tls: https).
 * 0 or -EINVAL. */
int probe_server_parse(const char *url, char *host, size_t hostlen,
                       uint16_t *port, char *prefix, size_t prefixlen,
                       bool *tls);
/* The TLS client context for https servers: TLS 1.2 or later, the peer
 * verified against the PEM CAs in ca_file (NULL: the system store), and
 * the client certificate chain cert_file with key_file presented when
 * asked (NULL: none). NULL with err on failure. */
SSL_CTX *probe_api_tls_new(const char *ca_file, const char *cert_file,
                           const char *key_file, char *err, size_t errlen);

/* Runs the agent until SIGTERM or SIGINT. Returns the exit status: 0 after
 * a signal, 1 if the loop could not be set up (logged). */
int probe_run(const struct probe_conf *c);

#endif
