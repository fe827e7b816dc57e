/* dnsd/notify.c - see notify.h. Control thread only. */
#include "dnsd/notify.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/http.h>
#include <jansson.h>

#include "common/clock.h"
#include "common/log.h"
#include "dnsd/config.h"

struct notify {
	struct event_base *base;
	struct evdns_base *dns;
	struct evhttp_connection *conn;
	struct evhttp_uri *uri;
	char host[256];
	char path[1024];
	char node[256];
	char *queue[NOTIFY_QUEUE_MAX];      /* JSON bodies, a ring */
	size_t head, n;
	unsigned attempt;                   /* failed attempts of the head */
	bool in_flight;
	bool failing;                       /* logged: the receiver fails */
	struct event *timer;                /* backoff, and the next send */
	uint64_t sent, dropped, retries;
};

static int parse(const char *url, struct evhttp_uri **out, char *err,
                 size_t errlen)
{
	struct evhttp_uri *u = evhttp_uri_parse(url);
	const char *scheme = u ? evhttp_uri_get_scheme(u) : NULL;
	const char *host = u ? evhttp_uri_get_host(u) : NULL;

	if (!u || !scheme) {
		snprintf(err, errlen, "notify-url '%s': not a URL "
		         "(http://HOST[:PORT][/PATH])", url);
		goto bad;
	}
	if (strcmp(scheme, "http") != 0) {
		snprintf(err, errlen, "notify-url '%s': scheme '%s' is not "
		         "supported (http only; relay to https locally)", url,
		         scheme);
		goto bad;
	}
	if (!host || !*host || strlen(host) >= 256) {
		snprintf(err, errlen, "notify-url '%s': no host", url);
		goto bad;
	}
	if (evhttp_uri_get_userinfo(u) || evhttp_uri_get_fragment(u)) {
		snprintf(err, errlen, "notify-url '%s': user info and fragments "
		         "are not allowed", url);
		goto bad;
	}
	*out = u;
	return 0;
bad:
	if (u)
		evhttp_uri_free(u);
	return -EINVAL;
}

int notify_url_check(const char *url, char *err, size_t errlen)
{
	struct evhttp_uri *u;

	if (parse(url, &u, err, errlen) < 0)
		return -EINVAL;
	evhttp_uri_free(u);
	return 0;
}

static void arm(struct notify *n, double seconds)
{
	struct timeval tv = { (time_t)seconds,
	                      (suseconds_t)((seconds - (double)(time_t)seconds) * 1e6) };

	evtimer_add(n->timer, &tv);
}

static void pop(struct notify *n)
{
	free(n->queue[n->head]);
	n->queue[n->head] = NULL;
	n->head = (n->head + 1) % NOTIFY_QUEUE_MAX;
	n->n--;
	n->attempt = 0;
}

static void on_done(struct evhttp_request *req, void *arg)
{
	struct notify *n = arg;
	int code = req ? evhttp_request_get_response_code(req) : 0;

	n->in_flight = false;
	if (!n->n)
		return;
	if (code >= 200 && code < 300) {
		if (n->failing)
			log_info("notify: %s%s accepts notifications again", n->host,
			         n->path);
		n->failing = false;
		n->sent++;
		pop(n);
		if (n->n)
			arm(n, 0);
		return;
	}
	if (!n->failing)
		log_warn("notify: %s%s: %s; retrying with backoff", n->host, n->path,
		         code ? "unexpected status" : "no answer");
	n->failing = true;
	n->attempt++;
	if (n->attempt >= NOTIFY_ATTEMPTS) {
		log_warn("notify: %s%s: dropped a notification after %d attempts",
		         n->host, n->path, NOTIFY_ATTEMPTS);
		n->dropped++;
		pop(n);
		if (n->n)
			arm(n, 0);
		return;
	}
	n->retries++;
	{
		double wait = (double)(1u << (n->attempt - 1));

		arm(n, wait > NOTIFY_BACKOFF_MAX_S ? NOTIFY_BACKOFF_MAX_S : wait);
	}
}

/* Sends the head of the queue, if nothing is in flight. */
static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct notify *n = arg;
	struct evhttp_request *req;
	struct evkeyvalq *h;
	const char *body;

	(void)fd;
	(void)what;
	if (n->in_flight || !n->n)
		return;
	body = n->queue[n->head];
	if (!(req = evhttp_request_new(on_done, n))) {
		arm(n, 1);
		return;
	}
	h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Host", n->host);
	evhttp_add_header(h, "Content-Type", "application/json");
	evhttp_add_header(h, "User-Agent", "dnsd/" DNSD_VERSION);
	evbuffer_add(evhttp_request_get_output_buffer(req), body, strlen(body));
	n->in_flight = true;
	/* On failure libevent has freed req and calls nothing. */
	if (evhttp_make_request(n->conn, req, EVHTTP_REQ_POST, n->path) < 0) {
		n->in_flight = false;
		on_done(NULL, n);
	}
}

struct notify *notify_new(struct event_base *base, const char *url,
                          char *err, size_t errlen)
{
	struct notify *n = calloc(1, sizeof(*n));
	const char *p, *q;
	int port;

	if (!n) {
		snprintf(err, errlen, "notify: out of memory");
		return NULL;
	}
	if (parse(url, &n->uri, err, errlen) < 0)
		goto fail;
	n->base = base;
	snprintf(n->host, sizeof(n->host), "%s", evhttp_uri_get_host(n->uri));
	p = evhttp_uri_get_path(n->uri);
	q = evhttp_uri_get_query(n->uri);
	snprintf(n->path, sizeof(n->path), "%s%s%s", p && *p ? p : "/",
	         q ? "?" : "", q ? q : "");
	port = evhttp_uri_get_port(n->uri);
	if (gethostname(n->node, sizeof(n->node) - 1) < 0)
		snprintf(n->node, sizeof(n->node), "unknown");
	/* Names are resolved asynchronously: the control thread never waits. */
	n->dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
	if (!n->dns)
		n->dns = evdns_base_new(base, 0);
	n->conn = evhttp_connection_base_new(base, n->dns, n->host,
	                                     (unsigned short)(port > 0 ? port : 80));
	n->timer = evtimer_new(base, on_timer, n);
	if (!n->dns || !n->conn || !n->timer) {
		snprintf(err, errlen, "notify: out of memory");
		goto fail;
	}
	evhttp_connection_set_timeout(n->conn, NOTIFY_TIMEOUT_S);
	evhttp_connection_set_retries(n->conn, 0);
	return n;
fail:
	notify_free(n);
	return NULL;
}

void notify_free(struct notify *n)
{
	if (!n)
		return;
	if (n->timer)
		event_free(n->timer);
	/* Frees a request in flight without calling on_done. */
	if (n->conn)
		evhttp_connection_free(n->conn);
	if (n->dns)
		evdns_base_free(n->dns, 0);
	if (n->uri)
		evhttp_uri_free(n->uri);
	while (n->n)
		pop(n);
	free(n);
}

void notify_health(struct notify *n, const char *subject, const char *text)
{
	char service[256] = "", target[256] = "", state[16] = "", when[32];
	const char *sp = strchr(subject, ' '), *arrow = strstr(text, "-> ");
	double now = clock_unix();
	time_t sec = (time_t)now;
	struct tm tm;
	json_t *doc;
	char *body;

	if (!n)
		return;
	if (sp && (size_t)(sp - subject) < sizeof(service)) {
		memcpy(service, subject, (size_t)(sp - subject));
		service[sp - subject] = 0;
		snprintf(target, sizeof(target), "%s", sp + 1);
	}
	if (arrow)
		sscanf(arrow + 3, "%15[a-z]", state);
	gmtime_r(&sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	doc = json_pack("{s:s, s:f, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:s}",
	                "kind", "health", "at", now, "time", when, "node", n->node,
	                "subject", subject, "service", service, "target", target,
	                "state", state,
	                "stale", arrow && strstr(arrow, "(stale)") != NULL,
	                "text", text);
	body = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	if (!body)
		return;
	if (n->n == NOTIFY_QUEUE_MAX) {
		/* Full: the receiver has been failing for a long while. */
		free(body);
		n->dropped++;
		return;
	}
	n->queue[(n->head + n->n) % NOTIFY_QUEUE_MAX] = body;
	n->n++;
	if (!n->in_flight && !evtimer_pending(n->timer, NULL))
		arm(n, 0);
}

void notify_metrics(const struct notify *n, struct evbuffer *out)
{
	if (!n)
		return;
	evbuffer_add_printf(out,
		"# HELP dnsd_notify_sent_total Webhook notifications the receiver accepted (2xx).\n"
		"# TYPE dnsd_notify_sent_total counter\n"
		"dnsd_notify_sent_total %llu\n"
		"# HELP dnsd_notify_retries_total Webhook attempts that failed and were retried.\n"
		"# TYPE dnsd_notify_retries_total counter\n"
		"dnsd_notify_retries_total %llu\n"
		"# HELP dnsd_notify_dropped_total Webhook notifications given up (attempts exhausted or queue full).\n"
		"# TYPE dnsd_notify_dropped_total counter\n"
		"dnsd_notify_dropped_total %llu\n"
		"# HELP dnsd_notify_queued Webhook notifications waiting to be delivered.\n"
		"# TYPE dnsd_notify_queued gauge\n"
		"dnsd_notify_queued %zu\n",
		(unsigned long long)n->sent, (unsigned long long)n->retries,
		(unsigned long long)n->dropped, n->n);
}
