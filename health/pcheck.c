/* health/pcheck.c - see pcheck.h. Loop thread of the agent only. */
#include "health/pcheck.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

/* ---- parsing ---------------------------------------------------------- */

int pcheck_url_parse(const char *url, struct pcheck_url *out, char *err,
                     size_t errlen)
{
	static const struct { const char *scheme; enum pcheck_kind k;
	                      unsigned port; } schemes[] = {
		{ "tcp://", PCHECK_TCP, 0 }, { "http://", PCHECK_HTTP, 80 },
		{ "https://", PCHECK_HTTPS, 443 }, { "dns://", PCHECK_DNS, 53 },
	};
	const char *p = NULL, *h, *hend, *rest;
	unsigned long port = 0;
	size_t i;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
		if (strncasecmp(url, schemes[i].scheme,
		                strlen(schemes[i].scheme)) == 0) {
			p = url + strlen(schemes[i].scheme);
			out->kind = schemes[i].k;
			port = schemes[i].port;
			break;
		}
	if (!p) {
		snprintf(err, errlen, "url '%s': scheme must be tcp, http, "
		         "https or dns", url);
		return -EINVAL;
	}
	if (*p == '[') {
		h = p + 1;
		if (!(hend = strchr(h, ']'))) {
			snprintf(err, errlen, "url '%s': missing ']'", url);
			return -EINVAL;
		}
		rest = hend + 1;
	} else {
		h = p;
		hend = h + strcspn(h, ":/?#");
		rest = hend;
	}
	if (hend == h || (size_t)(hend - h) >= sizeof(out->host)) {
		snprintf(err, errlen, "url '%s': empty or too long host", url);
		return -EINVAL;
	}
	memcpy(out->host, h, (size_t)(hend - h));
	for (char *c = out->host; *c; c++)
		if (!isalnum((unsigned char)*c) && !strchr(".-_:%", *c)) {
			snprintf(err, errlen, "url '%s': bad character in host",
			         url);
			return -EINVAL;
		}
	if (*rest == ':') {
		char *end;

		errno = 0;
		port = strtoul(rest + 1, &end, 10);
		if (errno || end == rest + 1 || port == 0 || port > 65535 ||
		    (*end && *end != '/' && *end != '?')) {
			snprintf(err, errlen, "url '%s': bad port", url);
			return -EINVAL;
		}
		rest = end;
	} else if (out->kind == PCHECK_TCP) {
		snprintf(err, errlen, "url '%s': tcp needs a port", url);
		return -EINVAL;
	}
	out->port = (uint16_t)port;
	if (*rest && *rest != '/' && *rest != '?') {
		snprintf(err, errlen, "url '%s': junk after host and port", url);
		return -EINVAL;
	}
	switch (out->kind) {
	case PCHECK_TCP:
		if (*rest && strcmp(rest, "/") != 0) {
			snprintf(err, errlen, "url '%s': tcp takes no path", url);
			return -EINVAL;
		}
		break;
	case PCHECK_HTTP:
	case PCHECK_HTTPS:
		if (strlen(rest) >= sizeof(out->path)) {
			snprintf(err, errlen, "url '%s': path too long", url);
			return -EINVAL;
		}
		for (const char *c = rest; *c; c++)
			if ((unsigned char)*c <= 0x20 || *c == 0x7f) {
				snprintf(err, errlen, "url '%s': space or control "
				         "character in path", url);
				return -EINVAL;
			}
		snprintf(out->path, sizeof(out->path), "%s",
		         *rest == '/' ? rest : "/");
		if (*rest == '?')
			snprintf(out->path, sizeof(out->path), "/%s", rest);
		break;
	case PCHECK_DNS: {
		size_t n;

		if (*rest != '/' || !rest[1]) {
			snprintf(err, errlen, "url '%s': dns needs /NAME", url);
			return -EINVAL;
		}
		rest++;
		n = strlen(rest);
		if (n > 254 || (n > 253 && rest[n - 1] != '.')) {
			snprintf(err, errlen, "url '%s': name too long", url);
			return -EINVAL;
		}
		for (const char *c = rest; *c; c++)
			if (!isalnum((unsigned char)*c) && !strchr(".-_", *c)) {
				snprintf(err, errlen, "url '%s': bad character in "
				         "name", url);
				return -EINVAL;
			}
		if (strstr(rest, "..") || rest[0] == '.') {
			snprintf(err, errlen, "url '%s': empty label", url);
			return -EINVAL;
		}
		snprintf(out->path, sizeof(out->path), "%s", rest);
		break;
	}
	}
	return 0;
}

int pcheck_expect_parse(const char *s, unsigned *lo, unsigned *hi)
{
	unsigned a, b;
	int n = -1;

	if (sscanf(s, "%3u-%3u%n", &a, &b, &n) == 2 && n == (int)strlen(s)) {
	} else if (n = -1, sscanf(s, "%3u%n", &a, &n) == 1 &&
	           n == (int)strlen(s)) {
		b = a;
	} else {
		return -EINVAL;
	}
	if (a < 100 || b > 599 || a > b)
		return -EINVAL;
	*lo = a;
	*hi = b;
	return 0;
}

static const char *const rcode_names[] = {
	"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
};

int pcheck_rcode_parse(const char *s, int *out)
{
	char *end;
	long v;

	for (size_t i = 0; i < sizeof(rcode_names) / sizeof(rcode_names[0]); i++)
		if (strcasecmp(s, rcode_names[i]) == 0) {
			*out = (int)i;
			return 0;
		}
	v = strtol(s, &end, 10);
	if (end == s || *end || v < 0 || v > 15)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

static const char *rcode_name(int r, char *buf, size_t len)
{
	if (r >= 0 && r < (int)(sizeof(rcode_names) / sizeof(rcode_names[0])))
		return rcode_names[r];
	snprintf(buf, len, "rcode %d", r);
	return buf;
}

SSL_CTX *pcheck_ssl_ctx_new(char *err, size_t errlen)
{
	SSL_CTX *c = SSL_CTX_new(TLS_client_method());

	if (!c) {
		snprintf(err, errlen, "tls: cannot create context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
	if (SSL_CTX_set_default_verify_paths(c) != 1) {
		snprintf(err, errlen, "tls: cannot load the system CA store");
		SSL_CTX_free(c);
		return NULL;
	}
	SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
	return c;
}

/* ---- running ---------------------------------------------------------- */

enum phase { PH_CONNECT, PH_HTTP };

struct pcheck_run {
	struct pcheck_spec spec;
	const struct pcheck_env *env;
	pcheck_done_fn fn;
	void *arg;
	struct event *timer;      /* timeout, or a deferred early failure */
	struct bufferevent *bev;
	SSL *ssl;                 /* owned by bev once it exists */
	struct event *udp_ev;
	evutil_socket_t udp_fd;
	uint16_t dns_id;
	struct timespec t0;
	double rtt_ms;
	enum phase phase;
	struct pcheck_http http;
	bool finished;
	char detail[160];
};

static double ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) * 1e3 +
	       (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

static void run_free(struct pcheck_run *r)
{
	if (r->timer)
		event_free(r->timer);
	if (r->bev)
		bufferevent_free(r->bev);   /* frees the SSL and the socket */
	else if (r->ssl)
		SSL_free(r->ssl);
	if (r->udp_ev)
		event_free(r->udp_ev);
	if (r->udp_fd >= 0)
		evutil_closesocket(r->udp_fd);
	free(r);
}

static void finish(struct pcheck_run *r, bool ok, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Reports and frees. The run is gone when this returns. */
static void finish(struct pcheck_run *r, bool ok, const char *fmt, ...)
{
	pcheck_done_fn fn = r->fn;
	void *arg = r->arg;
	double rtt = ok ? r->rtt_ms : -1;
	char detail[sizeof(r->detail)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	r->finished = true;
	run_free(r);
	fn(arg, ok, rtt, detail);
}

/* Failures found inside pcheck_start() are reported from the loop. */
static void fail_later(struct pcheck_run *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void fail_later(struct pcheck_run *r, const char *fmt, ...)
{
	struct timeval now = { 0, 0 };
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
	va_end(ap);
	r->finished = true;        /* the timer callback reports detail */
	evtimer_add(r->timer, &now);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct pcheck_run *r = arg;
	(void)fd;
	(void)what;

	if (r->finished) {
		finish(r, false, "%s", r->detail);
		return;
	}
	finish(r, false, "timeout after %.1f s%s", r->spec.timeout,
	       r->phase == PH_CONNECT ? " (connecting)" :
	       r->phase == PH_HTTP && r->http.phase == PCHECK_HTTP_STATUS
	       ? " (waiting for response)" : "");
}

static void tls_error_text(struct pcheck_run *r, char *buf, size_t len)
{
	unsigned long e = bufferevent_get_openssl_error(r->bev);
	long v = r->ssl ? SSL_get_verify_result(r->ssl) : X509_V_OK;

	if (v != X509_V_OK && r->spec.tls_verify) {
		snprintf(buf, len, "tls: certificate verify failed: %s",
		         X509_verify_cert_error_string(v));
		return;
	}
	if (e) {
		char t[120];

		ERR_error_string_n(e, t, sizeof(t));
		snprintf(buf, len, "tls: %s", t);
		return;
	}
	buf[0] = 0;
}

static void http_send(struct pcheck_run *r)
{
	struct evbuffer *out = bufferevent_get_output(r->bev);
	const char *host = r->spec.host_header[0] ? r->spec.host_header
	                                           : r->spec.url.host;
	bool v6 = !r->spec.host_header[0] && strchr(host, ':');
	bool dflt = r->spec.url.port == (r->spec.url.kind == PCHECK_HTTPS
	                                 ? 443 : 80);

	evbuffer_add_printf(out, "GET %s HTTP/1.1\r\nHost: %s%s%s", r->spec.url.path,
	                    v6 ? "[" : "", host, v6 ? "]" : "");
	if (!r->spec.host_header[0] && !dflt)
		evbuffer_add_printf(out, ":%u", r->spec.url.port);
	evbuffer_add_printf(out, "\r\nUser-Agent: gslb-probe\r\n"
	                    "Accept: */*\r\nConnection: close\r\n\r\n");
}

void pcheck_http_init(struct pcheck_http *h)
{
	memset(h, 0, sizeof(*h));
	h->phase = PCHECK_HTTP_STATUS;
	h->content_length = -1;
}

int pcheck_http_parse(struct pcheck_http *h, const struct pcheck_spec *spec,
                      struct evbuffer *in, bool eof, char *detail,
                      size_t detail_len)
{
	char *line;
	size_t n;

	while (h->phase == PCHECK_HTTP_STATUS ||
	       h->phase == PCHECK_HTTP_HEADERS) {
		line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
		if (!line) {
			if (evbuffer_get_length(in) > 16384) {
				snprintf(detail, detail_len,
				         "response header line too long");
				return -1;
			}
			if (eof) {
				snprintf(detail, detail_len,
				         "connection closed before response");
				return -1;
			}
			return 0;
		}
		if (h->phase == PCHECK_HTTP_STATUS) {
			unsigned code;

			h->status_seen = true;
			if (sscanf(line, "HTTP/%*u.%*u %3u", &code) != 1) {
				free(line);
				snprintf(detail, detail_len,
				         "malformed status line");
				return -1;
			}
			free(line);
			h->status = code;
			if (code < spec->expect_lo || code > spec->expect_hi) {
				snprintf(detail, detail_len,
				         "status %u, want %u-%u", code,
				         spec->expect_lo, spec->expect_hi);
				return -1;
			}
			if (!spec->body[0]) {
				snprintf(detail, detail_len, "status %u", code);
				return 1;
			}
			h->phase = PCHECK_HTTP_HEADERS;
			continue;
		}
		if (n == 0) {
			h->phase = PCHECK_HTTP_BODY;
		} else if (strncasecmp(line, "Content-Length:", 15) == 0) {
			h->content_length = strtol(line + 15, NULL, 10);
		}
		free(line);
	}
	{
		/* Octets past Content-Length are not the body: searching them
		 * would make the verdict depend on how the reads fell. */
		size_t room = PCHECK_BODY_WINDOW - h->body_len;
		int got;

		if (h->content_length >= 0 &&
		    (size_t)h->content_length - h->body_len < room)
			room = (size_t)h->content_length - h->body_len;
		got = evbuffer_remove(in, h->body + h->body_len, room);
		evbuffer_drain(in, evbuffer_get_length(in));
		h->body_len += got > 0 ? (size_t)got : 0;
		h->body[h->body_len] = 0;
		if (memmem(h->body, h->body_len, spec->body,
		           strlen(spec->body))) {
			snprintf(detail, detail_len, "status %u, body matches",
			         h->status);
			return 1;
		}
		if (eof || h->body_len >= PCHECK_BODY_WINDOW ||
		    (h->content_length >= 0 &&
		     h->body_len >= (size_t)h->content_length)) {
			snprintf(detail, detail_len, "status %u, body lacks '%s'",
			         h->status, spec->body);
			return -1;
		}
	}
	return 0;
}

/* Feeds the response reader; returns true when the run finished (and is
 * freed). The RTT ends when the status line arrived. */
static bool http_parse(struct pcheck_run *r, struct evbuffer *in, bool eof)
{
	bool had = r->http.status_seen;
	char detail[sizeof(r->detail)];
	int rc = pcheck_http_parse(&r->http, &r->spec, in, eof, detail,
	                           sizeof(detail));

	if (!had && r->http.status_seen)
		r->rtt_ms = ms_since(&r->t0);
	if (rc == 0)
		return false;
	finish(r, rc > 0, "%s", detail);
	return true;
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct pcheck_run *r = arg;

	http_parse(r, bufferevent_get_input(bev), false);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct pcheck_run *r = arg;
	int e = EVUTIL_SOCKET_ERROR();
	char tls[200];

	if (what & BEV_EVENT_CONNECTED) {
		if (r->spec.url.kind == PCHECK_TCP) {
			r->rtt_ms = ms_since(&r->t0);
			finish(r, true, "connected");
			return;
		}
		r->phase = PH_HTTP;
		http_send(r);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		/* Parse what is left (a body without Content-Length); at
		 * the end of the stream the reader always decides. */
		if (r->phase == PH_HTTP &&
		    http_parse(r, bufferevent_get_input(bev), true))
			return;
		finish(r, false, "connection closed before response");
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		int dnserr = bufferevent_socket_get_dns_error(bev);

		if (dnserr) {
			finish(r, false, "resolve %s: %s", r->spec.url.host,
			       evutil_gai_strerror(dnserr));
			return;
		}
		if (r->spec.url.kind == PCHECK_HTTPS) {
			tls_error_text(r, tls, sizeof(tls));
			if (tls[0]) {
				finish(r, false, "%s", tls);
				return;
			}
		}
		if (r->phase == PH_CONNECT)
			finish(r, false, "connect: %s",
			       e ? evutil_socket_error_to_string(e) : "failed");
		else
			finish(r, false, "read: %s",
			       e ? evutil_socket_error_to_string(e) : "failed");
	}
}

static bool is_ip_literal(const char *h)
{
	struct in6_addr a6;
	struct in_addr a4;

	return inet_pton(AF_INET, h, &a4) == 1 || inet_pton(AF_INET6, h, &a6) == 1;
}

static void start_stream(struct pcheck_run *r)
{
	const struct pcheck_env *env = r->env;
	const char *host = r->spec.url.host;

	if (r->spec.url.kind == PCHECK_HTTPS) {
		X509_VERIFY_PARAM *vp;
		char name[PCHECK_TEXT_MAX];

		/* The Host header, when set, is also the TLS name (SNI and
		 * certificate check): checking one address of a named site. */
		snprintf(name, sizeof(name), "%s", r->spec.host_header[0]
		         ? r->spec.host_header : host);
		if (r->spec.host_header[0] && name[0] != '[')
			name[strcspn(name, ":")] = 0;

		if (!(r->ssl = SSL_new(env->ssl))) {
			fail_later(r, "tls: out of memory");
			return;
		}
		SSL_set_verify(r->ssl, r->spec.tls_verify ? SSL_VERIFY_PEER
		                                          : SSL_VERIFY_NONE, NULL);
		vp = SSL_get0_param(r->ssl);
		if (is_ip_literal(name)) {
			X509_VERIFY_PARAM_set1_ip_asc(vp, name);
		} else {
			/* RFC 6066 3: SNI carries host names, never literals. */
			SSL_set_tlsext_host_name(r->ssl, name);
			X509_VERIFY_PARAM_set_hostflags(
				vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
			X509_VERIFY_PARAM_set1_host(vp, name, 0);
		}
		r->bev = bufferevent_openssl_socket_new(
			env->base, -1, r->ssl, BUFFEREVENT_SSL_CONNECTING,
			BEV_OPT_CLOSE_ON_FREE);
		if (!r->bev) {
			fail_later(r, "tls: cannot create connection");
			return;
		}
		/* The bev owns the SSL now; r->ssl stays as a borrowed
		 * pointer for the verify result. */
		bufferevent_openssl_set_allow_dirty_shutdown(r->bev, 1);
	} else {
		r->bev = bufferevent_socket_new(env->base, -1,
		                                BEV_OPT_CLOSE_ON_FREE);
		if (!r->bev) {
			fail_later(r, "out of memory");
			return;
		}
	}
	bufferevent_setcb(r->bev, on_read, NULL, on_event, r);
	bufferevent_enable(r->bev, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect_hostname(r->bev, env->dns, AF_UNSPEC,
	                                        host, r->spec.url.port) < 0) {
		int e = EVUTIL_SOCKET_ERROR();

		fail_later(r, "connect: %s",
		           e ? evutil_socket_error_to_string(e) : "failed");
	}
}

/* RFC 1035 4.1.1/4.1.2: header, one question NAME A IN. */
static int dns_query(uint8_t *buf, size_t len, uint16_t id, const char *name)
{
	size_t o = 12;
	const char *p = name;

	if (len < 12 + 255 + 4)
		return -EINVAL;
	memset(buf, 0, 12);
	buf[0] = (uint8_t)(id >> 8);
	buf[1] = (uint8_t)id;
	buf[2] = 0x01;             /* RD: also works against a resolver */
	buf[5] = 1;                /* QDCOUNT */
	while (*p) {
		size_t l = strcspn(p, ".");

		if (l == 0 || l > 63)
			return -EINVAL;
		buf[o++] = (uint8_t)l;
		memcpy(buf + o, p, l);
		o += l;
		p += l;
		if (*p == '.')
			p++;
	}
	buf[o++] = 0;
	buf[o++] = 0;
	buf[o++] = 1;              /* QTYPE A */
	buf[o++] = 0;
	buf[o++] = 1;              /* QCLASS IN */
	return (int)o;
}

static void on_udp(evutil_socket_t fd, short what, void *arg)
{
	struct pcheck_run *r = arg;
	uint8_t buf[1500];
	char nb[32], wb[32];
	ssize_t n;
	(void)what;

	/* Bounded: at most a few datagrams per wakeup; strays are dropped. */
	for (int i = 0; i < 8; i++) {
		int rc;

		n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			finish(r, false, "dns: %s", strerror(errno));
			return;
		}
		if (n < 12 || ((buf[0] << 8) | buf[1]) != r->dns_id ||
		    !(buf[2] & 0x80))
			continue;
		r->rtt_ms = ms_since(&r->t0);
		rc = buf[3] & 0x0f;
		if (rc == r->spec.rcode)
			finish(r, true, "dns %s", rcode_name(rc, nb, sizeof(nb)));
		else
			finish(r, false, "dns %s, want %s",
			       rcode_name(rc, nb, sizeof(nb)),
			       rcode_name(r->spec.rcode, wb, sizeof(wb)));
		return;
	}
}

static void start_dns(struct pcheck_run *r)
{
	struct sockaddr_storage ss;
	int sl = sizeof(ss);
	char hp[PCHECK_HOST_MAX + 16];
	uint8_t q[512];
	const char *host = strcmp(r->spec.url.host, "localhost") == 0
	                   ? "127.0.0.1" : r->spec.url.host;
	int qlen;

	snprintf(hp, sizeof(hp), strchr(host, ':') ? "[%s]:%u" : "%s:%u",
	         host, r->spec.url.port);
	memset(&ss, 0, sizeof(ss));
	if (evutil_parse_sockaddr_port(hp, (struct sockaddr *)&ss, &sl) < 0) {
		fail_later(r, "dns: host %s must be an IP address or localhost",
		           r->spec.url.host);
		return;
	}
	evutil_secure_rng_get_bytes(&r->dns_id, sizeof(r->dns_id));
	if ((qlen = dns_query(q, sizeof(q), r->dns_id, r->spec.url.path)) < 0) {
		fail_later(r, "dns: bad name %s", r->spec.url.path);
		return;
	}
	r->udp_fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK |
	                                 SOCK_CLOEXEC, 0);
	if (r->udp_fd < 0 || connect(r->udp_fd, (struct sockaddr *)&ss,
	                             (socklen_t)sl) < 0 ||
	    send(r->udp_fd, q, (size_t)qlen, 0) != qlen) {
		fail_later(r, "dns: %s", strerror(errno));
		return;
	}
	r->udp_ev = event_new(r->env->base, r->udp_fd, EV_READ | EV_PERSIST,
	                      on_udp, r);
	if (!r->udp_ev || event_add(r->udp_ev, NULL) < 0)
		fail_later(r, "dns: out of memory");
}

struct pcheck_run *pcheck_start(const struct pcheck_env *env,
                                const struct pcheck_spec *spec,
                                pcheck_done_fn fn, void *arg)
{
	struct pcheck_run *r = calloc(1, sizeof(*r));
	struct timeval tv;

	if (!r)
		return NULL;
	r->spec = *spec;
	r->env = env;
	r->fn = fn;
	r->arg = arg;
	r->udp_fd = -1;
	pcheck_http_init(&r->http);
	r->phase = PH_CONNECT;
	if (!(r->timer = evtimer_new(env->base, on_timer, r))) {
		free(r);
		return NULL;
	}
	tv.tv_sec = (time_t)spec->timeout;
	tv.tv_usec = (suseconds_t)((spec->timeout - (double)tv.tv_sec) * 1e6);
	evtimer_add(r->timer, &tv);
	clock_gettime(CLOCK_MONOTONIC, &r->t0);
	if (spec->url.kind == PCHECK_DNS)
		start_dns(r);
	else
		start_stream(r);
	return r;
}

void pcheck_cancel(struct pcheck_run *r)
{
	if (r)
		run_free(r);
}
