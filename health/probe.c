/* health/probe.c - see probe.h. One thread, one event_base.
 *
 * Data flow: every server's check list (refetched every conf.refresh s)
 * -> union by endpoint id (the first server in command-line order that lists
 * an id defines its check) -> one struct check per id, each with its own
 * timer -> results bump check->seq -> per server, a batch timer sends every
 * check that server lists whose seq is newer than what the server acked, or
 * all of them when a full resend is due (after any failed request, and at
 * least once per check interval). Servers never wait for each other: each
 * has its own connection, timers and in-flight flags. */
#include "health/probe.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <arpa/inet.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "common/log.h"

struct agent;

struct server {
	struct agent *ag;
	size_t idx;
	const char *url;
	char host[PCHECK_HOST_MAX];
	uint16_t port;
	char prefix[256];
	bool tls;                       /* https:// */
	bool renew;                     /* TLS connection closed: make anew */
	struct evhttp_connection *conn;
	struct event *batch_timer, *fetch_timer;
	bool fetching, reporting;
	bool have_list, need_full;
	json_int_t generation;
	struct probe_check_def *list;   /* as last fetched */
	size_t n_list;
	double last_full;               /* monotonic s */
	int report_status, fetch_status; /* last outcome, to log changes once */
	enum evhttp_request_error last_err;
	bool got_err;
};

struct check {
	struct agent *ag;
	struct probe_check_def def;
	struct event *timer;
	struct pcheck_run *run;
	uint8_t state;              /* 0 unknown, 1 up, 2 down */
	unsigned succ, fail;
	bool have_result, ok;
	double rtt_ms, ts;
	char detail[160];
	uint64_t seq;
	uint64_t acked[PROBE_MAX_SERVERS], sent[PROBE_MAX_SERVERS];
	bool resend[PROBE_MAX_SERVERS];    /* part of a pending full report */
	bool inflight[PROBE_MAX_SERVERS];  /* in the request under way */
	bool keep;                  /* reconcile mark */
};

struct agent {
	const struct probe_conf *c;
	struct event_base *base;
	struct evdns_base *dns;
	struct pcheck_env env;
	SSL_CTX *api_tls;               /* for https servers */
	struct server srv[PROBE_MAX_SERVERS];
	struct check **checks;
	size_t n_checks, cap_checks;
	int exit_code;
};

static const char *const st_names[] = { "unknown", "up", "down" };

static double mono_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double wall_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double rnd01(void)
{
	uint32_t x;

	evutil_secure_rng_get_bytes(&x, sizeof(x));
	return (double)x / 4294967296.0;
}

static struct timeval tv_of(double s)
{
	struct timeval tv;

	if (s < 0)
		s = 0;
	tv.tv_sec = (time_t)s;
	tv.tv_usec = (suseconds_t)((s - (double)tv.tv_sec) * 1e6);
	return tv;
}

/* ---- check list parsing ----------------------------------------------- */

/* Results per request: keeps a report far below the API's 1 MiB limit
 * (about 200 bytes each); the rest follows on the next batch tick. */
#define PROBE_BATCH_MAX 2000

#define BAD(...) do { snprintf(err, errlen, __VA_ARGS__); return -EINVAL; } while (0)

static int opt_num(const json_t *o, const char *k, double *v, bool *present)
{
	const json_t *x = json_object_get(o, k);

	*present = false;
	if (!x || json_is_null(x))
		return 0;
	if (!json_is_number(x) || !isfinite(json_number_value(x)))
		return -EINVAL;
	*v = json_number_value(x);
	*present = true;
	return 0;
}

static int opt_str(const json_t *o, const char *k, const char **v)
{
	const json_t *x = json_object_get(o, k);

	*v = NULL;
	if (!x || json_is_null(x))
		return 0;
	if (!json_is_string(x))
		return -EINVAL;
	*v = json_string_value(x);
	return 0;
}

int probe_check_parse(const json_t *o, size_t idx, double default_interval,
                      struct probe_check_def *out, char *err, size_t errlen)
{
	const json_t *v;
	const char *s;
	double d;
	bool has;
	char uerr[200];

	memset(out, 0, sizeof(*out));
	if (!json_is_object(o))
		BAD("checks[%zu]: must be an object", idx);
	v = json_object_get(o, "id");
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) > (json_int_t)UINT32_MAX)
		BAD("checks[%zu].id: must be an integer 0..4294967295", idx);
	out->id = (uint32_t)json_integer_value(v);
	v = json_object_get(o, "url");
	if (!json_is_string(v) ||
	    json_string_length(v) >= sizeof(out->url))
		BAD("checks[%zu].url: must be a string", idx);
	snprintf(out->url, sizeof(out->url), "%s", json_string_value(v));
	if (pcheck_url_parse(out->url, &out->spec.url, uerr, sizeof(uerr)) < 0)
		BAD("checks[%zu].url: %s", idx, uerr);
	out->interval = default_interval;
	if (opt_num(o, "interval", &d, &has) < 0 || (has && !(d >= 1 && d <= 86400)))
		BAD("checks[%zu].interval: must be null or 1..86400 s", idx);
	if (has)
		out->interval = d;
	out->spec.timeout = out->interval < 5 ? out->interval : 5;
	if (opt_num(o, "timeout", &d, &has) < 0 || (has && !(d > 0 && d <= 300)))
		BAD("checks[%zu].timeout: must be a number in (0, 300] s", idx);
	if (has)
		out->spec.timeout = d;
	out->rise = 3;
	out->fall = 2;
	if (opt_num(o, "rise", &d, &has) < 0 ||
	    (has && !(d >= 1 && d <= 100 && d == floor(d))))
		BAD("checks[%zu].rise: must be an integer 1..100", idx);
	if (has)
		out->rise = (unsigned)d;
	if (opt_num(o, "fall", &d, &has) < 0 ||
	    (has && !(d >= 1 && d <= 100 && d == floor(d))))
		BAD("checks[%zu].fall: must be an integer 1..100", idx);
	if (has)
		out->fall = (unsigned)d;
	v = json_object_get(o, "tls_verify");
	out->spec.tls_verify = true;
	if (v && !json_is_null(v)) {
		if (!json_is_boolean(v))
			BAD("checks[%zu].tls_verify: must be true or false", idx);
		out->spec.tls_verify = json_is_true(v);
	}
	out->spec.expect_lo = 200;
	out->spec.expect_hi = 399;
	if (opt_str(o, "expect", &s) < 0 || (s && pcheck_expect_parse(
	        s, &out->spec.expect_lo, &out->spec.expect_hi) < 0))
		BAD("checks[%zu].expect: must be \"NNN\" or \"NNN-NNN\" within "
		    "100-599", idx);
	if (opt_str(o, "body", &s) < 0 ||
	    (s && strlen(s) >= sizeof(out->spec.body)))
		BAD("checks[%zu].body: must be null or a string under %zu bytes",
		    idx, sizeof(out->spec.body));
	if (s)
		snprintf(out->spec.body, sizeof(out->spec.body), "%s", s);
	if (opt_str(o, "host", &s) < 0 ||
	    (s && (strlen(s) >= sizeof(out->spec.host_header) ||
	           strpbrk(s, " \t\r\n"))))
		BAD("checks[%zu].host: must be null or a host name", idx);
	if (s)
		snprintf(out->spec.host_header, sizeof(out->spec.host_header),
		         "%s", s);
	v = json_object_get(o, "rcode");
	out->spec.rcode = 0;
	if (v && !json_is_null(v)) {
		if (json_is_integer(v) && json_integer_value(v) >= 0 &&
		    json_integer_value(v) <= 15)
			out->spec.rcode = (int)json_integer_value(v);
		else if (!json_is_string(v) ||
		         pcheck_rcode_parse(json_string_value(v),
		                            &out->spec.rcode) < 0)
			BAD("checks[%zu].rcode: must be 0..15 or a name like "
			    "NOERROR", idx);
	}
	return 0;
}

int probe_server_parse(const char *url, char *host, size_t hostlen,
                       uint16_t *port, char *prefix, size_t prefixlen,
                       bool *tls)
{
	struct evhttp_uri *u = evhttp_uri_parse(url);
	const char *scheme, *h, *path;
	int p, rc = -EINVAL;

	if (!u)
		return -EINVAL;
	scheme = evhttp_uri_get_scheme(u);
	h = evhttp_uri_get_host(u);
	p = evhttp_uri_get_port(u);
	path = evhttp_uri_get_path(u);
	if (!scheme || (strcasecmp(scheme, "http") != 0 &&
	                strcasecmp(scheme, "https") != 0) || !h || !*h ||
	    strlen(h) >= hostlen || p == 0 || p > 65535 ||
	    evhttp_uri_get_query(u) || evhttp_uri_get_fragment(u))
		goto out;
	/* evhttp keeps the brackets of an IPv6 literal; connect wants none. */
	if (h[0] == '[' && h[strlen(h) - 1] == ']')
		snprintf(host, hostlen, "%.*s", (int)strlen(h) - 2, h + 1);
	else
		snprintf(host, hostlen, "%s", h);
	*tls = strcasecmp(scheme, "https") == 0;
	*port = (uint16_t)(p < 0 ? (*tls ? 443 : 80) : p);
	if (!path)
		path = "";
	if (strlen(path) >= prefixlen)
		goto out;
	snprintf(prefix, prefixlen, "%s", path);
	/* "/api/" and "/api" both mean prefix "/api". */
	for (size_t n = strlen(prefix); n > 0 && prefix[n - 1] == '/'; n--)
		prefix[n - 1] = 0;
	rc = 0;
out:
	evhttp_uri_free(u);
	return rc;
}

SSL_CTX *probe_api_tls_new(const char *ca_file, const char *cert_file,
                           const char *key_file, char *err, size_t errlen)
{
	SSL_CTX *c = SSL_CTX_new(TLS_client_method());
	char e[160];

	if (!c) {
		snprintf(err, errlen, "tls: cannot create context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
	if (ca_file ? SSL_CTX_load_verify_locations(c, ca_file, NULL) != 1
	            : SSL_CTX_set_default_verify_paths(c) != 1) {
		ERR_error_string_n(ERR_peek_last_error(), e, sizeof(e));
		ERR_clear_error();
		snprintf(err, errlen, "--ca-file %s: %s",
		         ca_file ? ca_file : "(system store)", e);
		SSL_CTX_free(c);
		return NULL;
	}
	SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
	if (cert_file &&
	    (SSL_CTX_use_certificate_chain_file(c, cert_file) != 1 ||
	     SSL_CTX_use_PrivateKey_file(c, key_file, SSL_FILETYPE_PEM) != 1 ||
	     SSL_CTX_check_private_key(c) != 1)) {
		ERR_error_string_n(ERR_peek_last_error(), e, sizeof(e));
		ERR_clear_error();
		snprintf(err, errlen, "--cert %s / --key %s: %s", cert_file,
		         key_file, e);
		SSL_CTX_free(c);
		return NULL;
	}
	return c;
}

/* ---- checks ----------------------------------------------------------- */

static void check_arm(struct check *k, double delay)
{
	struct timeval tv = tv_of(delay);

	evtimer_add(k->timer, &tv);
}

static void on_result(void *arg, bool ok, double rtt_ms, const char *detail)
{
	struct check *k = arg;
	struct agent *ag = k->ag;
	uint8_t old = k->state;

	k->run = NULL;
	k->have_result = true;
	k->ok = ok;
	k->rtt_ms = rtt_ms;
	k->ts = wall_now();
	snprintf(k->detail, sizeof(k->detail), "%s", detail);
	k->seq++;
	if (ok) {
		k->succ++;
		k->fail = 0;
		if (k->state != 1 && k->succ >= k->def.rise)
			k->state = 1;
	} else {
		k->fail++;
		k->succ = 0;
		if (k->state != 2 && k->fail >= k->def.fall)
			k->state = 2;
	}
	log_debug("probe %s: endpoint %u %s: %s, %.2f ms (%s)", ag->c->name,
	          k->def.id, k->def.url, ok ? "ok" : "failed", rtt_ms, detail);
	if (k->state != old)
		log_info("probe %s: endpoint %u %s: %s -> %s after %u %s (%s)",
		         ag->c->name, k->def.id, k->def.url, st_names[old],
		         st_names[k->state], ok ? k->succ : k->fail,
		         ok ? (k->succ == 1 ? "success" : "successes")
		            : (k->fail == 1 ? "failure" : "failures"), detail);
}

static void on_check_timer(evutil_socket_t fd, short what, void *arg)
{
	struct check *k = arg;
	(void)fd;
	(void)what;

	/* Next run first, from now, jittered +-10% so agents and checks do
	 * not synchronise. */
	check_arm(k, k->def.interval * (0.9 + 0.2 * rnd01()));
	if (k->run) {
		log_debug("probe %s: endpoint %u: previous run still busy, "
		          "skipped", k->ag->c->name, k->def.id);
		return;
	}
	k->run = pcheck_start(&k->ag->env, &k->def.spec, on_result, k);
	if (!k->run)
		log_warn("probe %s: endpoint %u: out of memory, run skipped",
		         k->ag->c->name, k->def.id);
}

static void check_free(struct check *k)
{
	if (!k)
		return;
	pcheck_cancel(k->run);
	if (k->timer)
		event_free(k->timer);
	free(k);
}

static struct check *check_new(struct agent *ag,
                               const struct probe_check_def *d)
{
	struct check *k = calloc(1, sizeof(*k));

	if (!k)
		return NULL;
	k->ag = ag;
	k->def = *d;
	k->rtt_ms = -1;
	if (!(k->timer = evtimer_new(ag->base, on_check_timer, k))) {
		free(k);
		return NULL;
	}
	/* Random first offset within one interval. */
	check_arm(k, d->interval * rnd01());
	return k;
}

static struct check *check_find(struct agent *ag, uint32_t id)
{
	for (size_t i = 0; i < ag->n_checks; i++)
		if (ag->checks[i]->def.id == id)
			return ag->checks[i];
	return NULL;
}

static bool def_equal(const struct probe_check_def *a,
                      const struct probe_check_def *b)
{
	return a->id == b->id && strcmp(a->url, b->url) == 0 &&
	       a->interval == b->interval && a->rise == b->rise &&
	       a->fall == b->fall && a->spec.timeout == b->spec.timeout &&
	       a->spec.tls_verify == b->spec.tls_verify &&
	       a->spec.expect_lo == b->spec.expect_lo &&
	       a->spec.expect_hi == b->spec.expect_hi &&
	       a->spec.rcode == b->spec.rcode &&
	       strcmp(a->spec.body, b->spec.body) == 0 &&
	       strcmp(a->spec.host_header, b->spec.host_header) == 0;
}

/* Union of all servers' lists; the first server listing an id wins. */
static void reconcile(struct agent *ag)
{
	size_t added = 0, changed = 0, removed = 0;

	for (size_t i = 0; i < ag->n_checks; i++)
		ag->checks[i]->keep = false;
	for (size_t s = 0; s < ag->c->n_servers; s++) {
		struct server *sv = &ag->srv[s];

		for (size_t j = 0; j < sv->n_list; j++) {
			const struct probe_check_def *d = &sv->list[j];
			struct check *k = check_find(ag, d->id);

			if (k && k->keep)
				continue;       /* an earlier server defined it */
			if (k && def_equal(&k->def, d)) {
				k->keep = true;
				continue;
			}
			if (k) {
				/* Changed definition: restart from scratch. */
				struct check *nk = check_new(ag, d);

				if (!nk)
					continue;
				for (size_t x = 0; x < ag->n_checks; x++)
					if (ag->checks[x] == k)
						ag->checks[x] = nk;
				check_free(k);
				nk->keep = true;
				changed++;
				continue;
			}
			if (ag->n_checks == ag->cap_checks) {
				size_t nc = ag->cap_checks ? ag->cap_checks * 2 : 16;
				struct check **np = realloc(ag->checks,
				                            nc * sizeof(*np));

				if (!np)
					continue;
				ag->checks = np;
				ag->cap_checks = nc;
			}
			if (!(k = check_new(ag, d)))
				continue;
			k->keep = true;
			ag->checks[ag->n_checks++] = k;
			added++;
		}
	}
	for (size_t i = 0; i < ag->n_checks;) {
		if (ag->checks[i]->keep) {
			i++;
			continue;
		}
		check_free(ag->checks[i]);
		ag->checks[i] = ag->checks[--ag->n_checks];
		removed++;
	}
	if (added || changed || removed)
		log_info("probe %s: checks: %zu (%zu added, %zu changed, %zu "
		         "removed)", ag->c->name, ag->n_checks, added, changed,
		         removed);
}

/* ---- servers ---------------------------------------------------------- */

static const char *req_err_text(enum evhttp_request_error e)
{
	switch (e) {
	case EVREQ_HTTP_TIMEOUT: return "timeout";
	case EVREQ_HTTP_EOF: return "connection failed or closed";
	case EVREQ_HTTP_INVALID_HEADER: return "invalid response header";
	case EVREQ_HTTP_BUFFER_ERROR: return "connection error";
	case EVREQ_HTTP_REQUEST_CANCEL: return "cancelled";
	case EVREQ_HTTP_DATA_TOO_LONG: return "response too long";
	}
	return "error";
}

static void on_req_error(enum evhttp_request_error e, void *arg)
{
	struct server *sv = arg;

	sv->last_err = e;
	sv->got_err = true;
	if (sv->tls && sv->conn) {
		struct bufferevent *bev = evhttp_connection_get_bufferevent(
			sv->conn);
		SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
		long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
		unsigned long te = bev ? bufferevent_get_openssl_error(bev) : 0;

		if (v != X509_V_OK)
			log_warn("probe %s: server %s: tls: certificate not "
			         "verified: %s", sv->ag->c->name, sv->url,
			         X509_verify_cert_error_string(v));
		else if (te) {
			char buf[200];

			ERR_error_string_n(te, buf, sizeof(buf));
			log_warn("probe %s: server %s: tls: %s",
			         sv->ag->c->name, sv->url, buf);
		}
		sv->renew = true;
	}
}

static void on_conn_close(struct evhttp_connection *conn, void *arg)
{
	struct server *sv = arg;

	(void)conn;
	sv->renew = true;
}

/* A new connection to the server: plain, or TLS verified against the CA
 * file (or the system store) with the server's host name or address
 * checked against its certificate. NULL on out of memory. */
static struct evhttp_connection *server_conn_new(struct server *sv)
{
	struct agent *ag = sv->ag;
	struct evhttp_connection *c;
	struct bufferevent *bev;
	struct in6_addr a6;
	SSL *ssl;

	if (!sv->tls)
		return evhttp_connection_base_new(ag->base, ag->dns, sv->host,
		                                  sv->port);
	if (!(ssl = SSL_new(ag->api_tls)))
		return NULL;
	if (inet_pton(AF_INET, sv->host, &a6) == 1 ||
	    inet_pton(AF_INET6, sv->host, &a6) == 1) {
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), sv->host);
	} else {
		SSL_set_tlsext_host_name(ssl, sv->host);
		X509_VERIFY_PARAM_set_hostflags(SSL_get0_param(ssl),
			X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		X509_VERIFY_PARAM_set1_host(SSL_get0_param(ssl), sv->host, 0);
	}
	bev = bufferevent_openssl_socket_new(ag->base, -1, ssl,
	                                     BUFFEREVENT_SSL_CONNECTING,
	                                     BEV_OPT_CLOSE_ON_FREE |
	                                     BEV_OPT_DEFER_CALLBACKS);
	if (!bev) {
		SSL_free(ssl);
		return NULL;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	c = evhttp_connection_base_bufferevent_new(ag->base, ag->dns, bev,
	                                           sv->host, sv->port);
	if (!c) {
		bufferevent_free(bev);
		return NULL;
	}
	/* A TLS session is not resumed on the same object after a close:
	 * the next request gets a fresh connection (server_conn). */
	evhttp_connection_set_closecb(c, on_conn_close, sv);
	return c;
}

/* The connection for the next request: sv->conn, replaced by a fresh one
 * when a TLS connection closed and no request is under way on it. */
static struct evhttp_connection *server_conn(struct server *sv)
{
	struct timeval tv = tv_of(sv->ag->c->http_timeout);
	struct evhttp_connection *c;

	if (sv->conn && !(sv->renew && !sv->fetching && !sv->reporting))
		return sv->conn;
	if (!(c = server_conn_new(sv)))
		return sv->conn;
	evhttp_connection_set_timeout_tv(c, &tv);
	evhttp_connection_set_retries(c, 0);
	/* A server (or whoever sits between) cannot make the agent buffer
	 * an unbounded answer. */
	evhttp_connection_set_max_body_size(c, PROBE_LIST_BYTES_MAX);
	if (sv->conn)
		evhttp_connection_free(sv->conn);
	sv->conn = c;
	sv->renew = false;
	return c;
}

static struct evhttp_request *request_new(struct server *sv,
                                          void (*cb)(struct evhttp_request *,
                                                     void *))
{
	struct evhttp_request *req = evhttp_request_new(cb, sv);
	struct evkeyvalq *h;
	char auth[600], hosthdr[PCHECK_HOST_MAX + 16];

	if (!req)
		return NULL;
	evhttp_request_set_error_cb(req, on_req_error);
	h = evhttp_request_get_output_headers(req);
	if (sv->ag->c->token)
		snprintf(auth, sizeof(auth), "Bearer %s", sv->ag->c->token);
	snprintf(hosthdr, sizeof(hosthdr), strchr(sv->host, ':') ? "[%s]:%u"
	         : "%s:%u", sv->host, sv->port);
	evhttp_add_header(h, "Host", hosthdr);
	if (sv->ag->c->token)
		evhttp_add_header(h, "Authorization", auth);
	evhttp_add_header(h, "User-Agent", "gslb-probe");
	return req;
}

/* Logs a server's request outcome only when it differs from the last one:
 * a server that stays down is logged once, and once when it recovers. */
static void note_outcome(struct server *sv, const char *what, int *last,
                         int status, const char *why)
{
	if (status == *last)
		return;
	if (status == 200)
		log_info("probe %s: server %s: %s ok again", sv->ag->c->name,
		         sv->url, what);
	else if (status == 401)
		log_err("probe %s: server %s: %s rejected: 401 (wrong token, "
		        "or no certificate?); retrying", sv->ag->c->name,
		        sv->url, what);
	else
		log_warn("probe %s: server %s: %s failed: %s; retrying",
		         sv->ag->c->name, sv->url, what, why);
	*last = status;
}

static void schedule_fetch(struct server *sv, double delay)
{
	struct timeval tv = tv_of(delay);

	evtimer_add(sv->fetch_timer, &tv);
}

static void on_checks_reply(struct evhttp_request *req, void *arg)
{
	struct server *sv = arg;
	struct agent *ag = sv->ag;
	int code = req ? evhttp_request_get_response_code(req) : 0;
	struct probe_check_def *list = NULL;
	size_t n = 0, bad = 0;
	json_error_t je;
	json_t *root = NULL, *arr;
	char why[200] = "", err[256];
	json_int_t gen;
	bool new_gen;

	sv->fetching = false;
	if (code != 200) {
		if (code)
			snprintf(why, sizeof(why), "HTTP %d", code);
		else
			snprintf(why, sizeof(why), "%s", sv->got_err
			         ? req_err_text(sv->last_err) : "unreachable");
		note_outcome(sv, "GET /v1/checks", &sv->fetch_status,
		             code ? code : -1, why);
		sv->got_err = false;
		/* Not reachable: try again sooner than the refresh period. */
		schedule_fetch(sv, ag->c->refresh < 2 ? ag->c->refresh : 2);
		return;
	}
	{
		struct evbuffer *b = evhttp_request_get_input_buffer(req);
		size_t len = evbuffer_get_length(b);
		const char *p = (const char *)evbuffer_pullup(b, -1);

		root = json_loadb(p ? p : "", len, 0, &je);
	}
	arr = root ? json_object_get(root, "checks") : NULL;
	if (!json_is_array(arr) || json_array_size(arr) > PROBE_CHECKS_MAX) {
		if (json_is_array(arr))
			snprintf(why, sizeof(why), "check list refused: more "
			         "than %d checks", PROBE_CHECKS_MAX);
		else
			snprintf(why, sizeof(why), "malformed check list: %s",
			         root ? "no \"checks\" array" : je.text);
		note_outcome(sv, "GET /v1/checks", &sv->fetch_status, -2, why);
		json_decref(root);
		return;
	}
	list = calloc(json_array_size(arr) + 1, sizeof(*list));
	if (!list) {
		json_decref(root);
		return;
	}
	{
		json_t *g = json_object_get(root, "generation");

		gen = json_is_integer(g) ? json_integer_value(g) : -1;
		new_gen = !sv->have_list || gen != sv->generation;
	}
	for (size_t i = 0; i < json_array_size(arr); i++) {
		if (probe_check_parse(json_array_get(arr, i), i,
		                      ag->c->interval, &list[n], err,
		                      sizeof(err)) < 0) {
			/* Logged once per list generation so a bad row does
			 * not flood the log. */
			if (new_gen)
				log_warn("probe %s: server %s: %s (check skipped)",
				         ag->c->name, sv->url, err);
			else
				log_debug("probe %s: server %s: %s (check "
				          "skipped)", ag->c->name, sv->url, err);
			bad++;
			continue;
		}
		n++;
	}
	note_outcome(sv, "GET /v1/checks", &sv->fetch_status, 200, "");
	{
		if (new_gen)
			log_info("probe %s: server %s: check list generation %lld: "
			         "%zu checks%s", ag->c->name, sv->url,
			         (long long)gen, n, bad ? " (some invalid)" : "");
		sv->generation = gen;
	}
	json_decref(root);
	free(sv->list);
	sv->list = list;
	sv->n_list = n;
	if (!sv->have_list)
		sv->need_full = true;
	sv->have_list = true;
	reconcile(ag);
}

static void on_fetch_timer(evutil_socket_t fd, short what, void *arg)
{
	struct server *sv = arg;
	struct evhttp_request *req;
	char path[300];
	(void)fd;
	(void)what;

	schedule_fetch(sv, sv->ag->c->refresh);
	if (sv->fetching)
		return;
	if (!(req = request_new(sv, on_checks_reply)))
		return;
	snprintf(path, sizeof(path), "%s/v1/checks", sv->prefix);
	sv->got_err = false;
	if (evhttp_make_request(server_conn(sv), req, EVHTTP_REQ_GET, path) == 0)
		sv->fetching = true;     /* on failure libevent freed req */
}

static bool server_lists(const struct server *sv, uint32_t id)
{
	for (size_t i = 0; i < sv->n_list; i++)
		if (sv->list[i].id == id)
			return true;
	return false;
}

static void on_report_reply(struct evhttp_request *req, void *arg)
{
	struct server *sv = arg;
	struct agent *ag = sv->ag;
	int code = req ? evhttp_request_get_response_code(req) : 0;
	char why[300] = "";

	sv->reporting = false;
	for (size_t i = 0; i < ag->n_checks; i++) {
		struct check *k = ag->checks[i];

		if (code == 200 && k->inflight[sv->idx]) {
			k->acked[sv->idx] = k->sent[sv->idx];
			k->resend[sv->idx] = false;
		}
		k->inflight[sv->idx] = false;
	}
	if (code == 200) {
		note_outcome(sv, "POST /v1/reports", &sv->report_status, 200, "");
		return;
	}
	/* Whatever happened, the server may have missed state: resend all. */
	sv->need_full = true;
	if (code) {
		struct evbuffer *b = evhttp_request_get_input_buffer(req);
		size_t len = evbuffer_get_length(b);
		const char *p = (const char *)evbuffer_pullup(b, -1);

		snprintf(why, sizeof(why), "HTTP %d %.*s", code,
		         (int)(len > 200 ? 200 : len), p ? p : "");
		for (char *c = why; *c; c++)
			if (*c == '\n' || *c == '\r')
				*c = ' ';
	} else {
		snprintf(why, sizeof(why), "%s", sv->got_err
		         ? req_err_text(sv->last_err) : "unreachable");
	}
	note_outcome(sv, "POST /v1/reports", &sv->report_status,
	             code ? code : -1, why);
	sv->got_err = false;
	/* Unknown endpoint: our list is out of date, fetch it now. */
	if (code == 404 || code == 422)
		schedule_fetch(sv, 0);
}

static json_t *result_json(const struct check *k)
{
	return json_pack("{s:I,s:s,s:b,s:o,s:f,s:s}",
	                 "id", (json_int_t)k->def.id,
	                 "state", st_names[k->state],
	                 "ok", k->ok,
	                 "rtt_ms", k->rtt_ms >= 0 ? json_real(k->rtt_ms)
	                                          : json_null(),
	                 "ts", k->ts,
	                 "detail", k->detail);
}

static void on_batch_timer(evutil_socket_t fd, short what, void *arg)
{
	struct server *sv = arg;
	struct agent *ag = sv->ag;
	double now = mono_now(), min_iv = 1e9;
	struct evhttp_request *req;
	json_t *doc, *res;
	bool full;
	char *body, path[300];
	size_t n = 0;
	(void)fd;
	(void)what;

	if (sv->reporting || !sv->have_list)
		return;
	for (size_t i = 0; i < ag->n_checks; i++)
		if (server_lists(sv, ag->checks[i]->def.id) &&
		    ag->checks[i]->def.interval < min_iv)
			min_iv = ag->checks[i]->def.interval;
	/* A full report marks every listed check for resending; the marks
	 * clear as requests carrying them succeed, however many it takes. */
	full = sv->need_full || now - sv->last_full >= min_iv;
	if (full) {
		for (size_t i = 0; i < ag->n_checks; i++)
			ag->checks[i]->resend[sv->idx] = true;
		sv->need_full = false;
		sv->last_full = now;
	}
	if (!(doc = json_object()) || !(res = json_array())) {
		json_decref(doc);
		return;
	}
	json_object_set_new(doc, "agent", json_string(ag->c->name));
	json_object_set_new(doc, "region", json_string(ag->c->region));
	if (ag->c->has_coords) {
		json_object_set_new(doc, "lat", json_real(ag->c->lat));
		json_object_set_new(doc, "lon", json_real(ag->c->lon));
	}
	for (size_t i = 0; i < ag->n_checks; i++) {
		struct check *k = ag->checks[i];

		if (n == PROBE_BATCH_MAX)
			break;
		if (!k->have_result || !server_lists(sv, k->def.id))
			continue;
		if (!k->resend[sv->idx] && k->seq <= k->acked[sv->idx])
			continue;
		json_array_append_new(res, result_json(k));
		k->sent[sv->idx] = k->seq;
		k->inflight[sv->idx] = true;
		n++;
	}
	json_object_set_new(doc, "results", res);
	if (n == 0) {
		json_decref(doc);
		return;
	}
	body = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(15));
	json_decref(doc);
	if (!body || !(req = request_new(sv, on_report_reply))) {
		free(body);
		for (size_t i = 0; i < ag->n_checks; i++)
			ag->checks[i]->inflight[sv->idx] = false;
		sv->need_full = true;
		return;
	}
	evhttp_add_header(evhttp_request_get_output_headers(req),
	                  "Content-Type", "application/json");
	evbuffer_add(evhttp_request_get_output_buffer(req), body, strlen(body));
	free(body);
	snprintf(path, sizeof(path), "%s/v1/reports", sv->prefix);
	sv->got_err = false;
	if (evhttp_make_request(server_conn(sv), req, EVHTTP_REQ_POST,
	                        path) == 0) {
		sv->reporting = true;
	} else {
		for (size_t i = 0; i < ag->n_checks; i++)
			ag->checks[i]->inflight[sv->idx] = false;
		sv->need_full = true;
	}
}

static int server_init(struct agent *ag, size_t i)
{
	struct server *sv = &ag->srv[i];
	struct timeval tv;

	sv->ag = ag;
	sv->idx = i;
	sv->url = ag->c->servers[i];
	sv->report_status = sv->fetch_status = 200;  /* log first failure */
	sv->generation = -1;
	if (probe_server_parse(sv->url, sv->host, sizeof(sv->host), &sv->port,
	                       sv->prefix, sizeof(sv->prefix), &sv->tls) < 0) {
		log_err("probe %s: --server %s: expected http[s]://HOST[:PORT]"
		        "[/PREFIX]", ag->c->name, sv->url);
		return -EINVAL;
	}
	if (sv->tls && !ag->api_tls) {
		char err[200];

		if (!(ag->api_tls = probe_api_tls_new(ag->c->ca_file,
		                                      ag->c->cert_file,
		                                      ag->c->key_file, err,
		                                      sizeof(err)))) {
			log_err("probe %s: %s", ag->c->name, err);
			return -EINVAL;
		}
	}
	sv->renew = true;
	sv->conn = server_conn(sv);
	sv->fetch_timer = evtimer_new(ag->base, on_fetch_timer, sv);
	sv->batch_timer = event_new(ag->base, -1, EV_PERSIST, on_batch_timer,
	                            sv);
	if (!sv->conn || !sv->fetch_timer || !sv->batch_timer) {
		log_err("probe %s: server %s: out of memory", ag->c->name,
		        sv->url);
		return -ENOMEM;
	}
	tv = tv_of(ag->c->batch);
	event_add(sv->batch_timer, &tv);
	schedule_fetch(sv, 0);
	return 0;
}

static void server_fini(struct server *sv)
{
	if (sv->fetch_timer)
		event_free(sv->fetch_timer);
	if (sv->batch_timer)
		event_free(sv->batch_timer);
	/* Frees pending requests without calling their callbacks. */
	if (sv->conn)
		evhttp_connection_free(sv->conn);
	free(sv->list);
}

/* ---- main loop -------------------------------------------------------- */

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct agent *ag = arg;
	(void)what;

	log_info("probe %s: signal %d, exiting", ag->c->name, (int)sig);
	ag->exit_code = 0;
	event_base_loopbreak(ag->base);
}

int probe_run(const struct probe_conf *c)
{
	struct agent ag;
	struct event *sigs[2] = { NULL, NULL };
	char err[200];
	int rc = 1;

	memset(&ag, 0, sizeof(ag));
	ag.c = c;
	ag.exit_code = 1;
	signal(SIGPIPE, SIG_IGN);
	if (!(ag.base = event_base_new())) {
		log_err("probe %s: cannot create event loop", c->name);
		return 1;
	}
	/* evdns reads /etc/resolv.conf and /etc/hosts once, never blocks. */
	ag.dns = evdns_base_new(ag.base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
	if (!ag.dns && (ag.dns = evdns_base_new(ag.base, 0)) != NULL) {
		/* No usable resolv.conf: host names from /etc/hosts still
		 * work ("localhost"); others fail per check, with a reason. */
		log_warn("probe %s: no name servers configured; only /etc/hosts "
		         "names resolve", c->name);
		evdns_base_load_hosts(ag.dns, NULL);
	}
	if (!ag.dns) {
		log_err("probe %s: cannot set up the resolver", c->name);
		goto out;
	}
	if (!(ag.env.ssl = pcheck_ssl_ctx_new(err, sizeof(err)))) {
		log_err("probe %s: %s", c->name, err);
		goto out;
	}
	ag.env.base = ag.base;
	ag.env.dns = ag.dns;
	for (size_t i = 0; i < c->n_servers; i++)
		if (server_init(&ag, i) < 0)
			goto out;
	sigs[0] = evsignal_new(ag.base, SIGTERM, on_signal, &ag);
	sigs[1] = evsignal_new(ag.base, SIGINT, on_signal, &ag);
	if (!sigs[0] || !sigs[1] || evsignal_add(sigs[0], NULL) < 0 ||
	    evsignal_add(sigs[1], NULL) < 0) {
		log_err("probe %s: cannot install signal handlers", c->name);
		goto out;
	}
	log_info("probe %s: region %s, %zu server%s, default interval %.1f s",
	         c->name, c->region, c->n_servers, c->n_servers == 1 ? "" : "s",
	         c->interval);
	if (event_base_dispatch(ag.base) < 0) {
		log_err("probe %s: event loop failed", c->name);
		goto out;
	}
	rc = ag.exit_code;
out:
	for (size_t i = 0; i < ag.n_checks; i++)
		check_free(ag.checks[i]);
	free(ag.checks);
	for (size_t i = 0; i < c->n_servers; i++)
		server_fini(&ag.srv[i]);
	for (int i = 0; i < 2; i++)
		if (sigs[i])
			event_free(sigs[i]);
	if (ag.env.ssl)
		SSL_CTX_free(ag.env.ssl);
	SSL_CTX_free(ag.api_tls);
	if (ag.dns)
		evdns_base_free(ag.dns, 0);
	event_base_free(ag.base);
	return rc;
}
