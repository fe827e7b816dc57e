/* dnsd/api.c - see api.h. Control thread only (evhttp callbacks). */
#include "dnsd/api.h"

#include <errno.h>
#include <pthread.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>

#include "common/hostport.h"
#include "dnsd/connlimit.h"
#include "common/log.h"
#include "health/token.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

struct api {
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *sock;
	struct cred_set *creds;         /* who may call; NULL: nobody */
	/* The authenticated caller (credential role and name) of the
	 * request being handled: valid while a route handler runs, for
	 * handlers and logs; role 0 on open routes. */
	struct cred_caller caller;
	bool caller_cert;               /* caller named by its certificate */
	SSL_CTX *tls;                   /* NULL: plain HTTP */
	bool tls_clients;               /* client certificates verified */
	/* How each agent credential last authenticated (GET /v1/status),
	 * sorted by name; only names the credentials name. */
	struct agent_auth *auths;
	size_t n_auths, cap_auths;
	struct connlimit *limit;        /* connection cap and deadline */
	struct event *sweep;            /* 1 s: connlimit_sweep */
	struct event *trim;             /* soon after the cap was passed */
	bool paused;                    /* listener disabled until the trim */
	const struct api_ops *ops;
	void *ctx;
	unsigned port;
	size_t max_body;                /* bytes; api-max-body (admin) */
	size_t max_report_body;         /* api-max-report-body (others) */
	bool rewriting;                 /* in on_output's own changes */
	bool gating;                    /* in the gate's own changes */
	struct gate **gates;            /* by descriptor (the gate below) */
	size_t n_gates;
	/* Host header values answered (api-hosts); NULL: the defaults. */
	char **hosts;
	size_t n_hosts;
};

/* ---- report parsing --------------------------------------------------- */

#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); goto bad; } while (0)

static bool text_ok(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n >= max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/* A JSON number (integer or real) as double. */
static bool num(const json_t *v, double *out)
{
	if (!json_is_number(v))
		return false;
	*out = json_number_value(v);
	return isfinite(*out);
}

static int parse_result(const json_t *o, size_t i, struct arena *arena,
                        struct hstate_result *r, char *err, size_t errlen)
{
	const json_t *v;
	double d;

	if (!json_is_object(o))
		FAIL("results[%zu]: must be an object", i);
	v = json_object_get(o, "id");
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) > (json_int_t)UINT32_MAX)
		FAIL("results[%zu].id: must be an integer 0..4294967295", i);
	r->id = (uint32_t)json_integer_value(v);
	v = json_object_get(o, "state");
	if (!json_is_string(v) ||
	    hstate_state_parse(json_string_value(v), &r->state) < 0)
		FAIL("results[%zu].state: must be \"up\", \"down\" or "
		     "\"unknown\"", i);
	v = json_object_get(o, "ok");
	if (!json_is_boolean(v))
		FAIL("results[%zu].ok: must be true or false", i);
	r->ok = json_is_true(v);
	v = json_object_get(o, "rtt_ms");
	r->rtt_ms = -1;
	if (v && !json_is_null(v)) {
		if (!num(v, &d) || d < 0 || d > 3600e3)
			FAIL("results[%zu].rtt_ms: must be null or a number "
			     "0..3600000", i);
		r->rtt_ms = d;
	}
	v = json_object_get(o, "ts");
	if (!num(v, &d) || d <= 0 || d > 1e11)
		FAIL("results[%zu].ts: must be unix seconds > 0", i);
	r->ts = d;
	v = json_object_get(o, "detail");
	r->detail = NULL;
	if (v && !json_is_null(v)) {
		if (!json_is_string(v) ||
		    json_string_length(v) >= HSTATE_DETAIL_MAX * 4)
			FAIL("results[%zu].detail: must be null or a string "
			     "under %d bytes", i, HSTATE_DETAIL_MAX * 4);
		if (!(r->detail = arena_strdup(arena, json_string_value(v))))
			FAIL("out of memory");
	}
	return 0;
bad:
	return -EINVAL;
}

int api_report_parse(const char *body, size_t len, struct arena *arena,
                     struct api_report *out, char *err, size_t errlen)
{
	json_error_t je;
	json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
	const json_t *v, *res, *lat, *lon;
	int rc = -EINVAL;

	memset(out, 0, sizeof(*out));
	if (!root) {
		snprintf(err, errlen, "body: malformed JSON at line %d column "
		         "%d: %s", je.line, je.column, je.text);
		return -EINVAL;
	}
	if (!json_is_object(root))
		FAIL("body: must be a JSON object");
	v = json_object_get(root, "agent");
	if (!json_is_string(v) || !text_ok(json_string_value(v),
	                                   HSTATE_NAME_MAX))
		FAIL("agent: must be a string of 1..%d printable bytes",
		     HSTATE_NAME_MAX - 1);
	out->agent = arena_strdup(arena, json_string_value(v));
	v = json_object_get(root, "region");
	if (!json_is_string(v) || !text_ok(json_string_value(v),
	                                   HSTATE_NAME_MAX))
		FAIL("region: must be a string of 1..%d printable bytes",
		     HSTATE_NAME_MAX - 1);
	out->region = arena_strdup(arena, json_string_value(v));
	if (!out->agent || !out->region)
		FAIL("out of memory");
	lat = json_object_get(root, "lat");
	lon = json_object_get(root, "lon");
	if (lat && json_is_null(lat))
		lat = NULL;
	if (lon && json_is_null(lon))
		lon = NULL;
	if (!!lat != !!lon)
		FAIL("%s: lat and lon come together", lat ? "lon" : "lat");
	if (lat) {
		if (!num(lat, &out->lat) || out->lat < -90 || out->lat > 90)
			FAIL("lat: must be a number -90..90");
		if (!num(lon, &out->lon) || out->lon < -180 || out->lon > 180)
			FAIL("lon: must be a number -180..180");
		out->has_coords = true;
	}
	res = json_object_get(root, "results");
	if (!json_is_array(res))
		FAIL("results: must be an array");
	out->n = json_array_size(res);
	if (out->n > API_RESULTS_MAX)
		FAIL("results: more than %d entries", API_RESULTS_MAX);
	out->results = arena_calloc(arena, (out->n + 1) *
	                                   sizeof(*out->results));
	if (!out->results)
		FAIL("out of memory");
	for (size_t i = 0; i < out->n; i++)
		if (parse_result(json_array_get(res, i), i, arena,
		                 &out->results[i], err, errlen) < 0)
			goto bad;
	rc = 0;
bad:
	json_decref(root);
	if (rc < 0) {
		out->results = NULL;
		out->n = 0;
	}
	return rc;
}

/* ---- HTTP ------------------------------------------------------------- */

void api_reply_json(struct evhttp_request *req, int code, const char *reason,
                    json_t *doc)
{
	struct evbuffer *b = evbuffer_new();
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	json_decref(doc);
	if (!b || !text) {
		free(text);
		if (b)
			evbuffer_free(b);
		evhttp_send_error(req, 500, "Internal Server Error");
		return;
	}
	evbuffer_add(b, text, strlen(text));
	evbuffer_add(b, "\n", 1);
	free(text);
	evhttp_add_header(h, "Content-Type", "application/json");
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_send_reply(req, code, reason, b);
	evbuffer_free(b);
}

static void reply_error(struct evhttp_request *req, int code,
                        const char *reason, const char *msg)
{
	json_t *d = json_object();
	const char *colon = strchr(msg, ':');

	json_object_set_new(d, "error", json_string(msg));
	/* Messages name the field first: "results[2].rtt_ms: ...". */
	if (colon && colon != msg && !memchr(msg, ' ', (size_t)(colon - msg)))
		json_object_set_new(d, "field",
		                    json_stringn(msg, (size_t)(colon - msg)));
	api_reply_json(req, code, reason, d);
}

/* A body over api-max-body (libevent refuses it from its Content-Length or
 * its chunks before it is read: this is for a body that got past it). */
static void body_too_large(const struct api *a, struct evhttp_request *req)
{
	char msg[120];

	snprintf(msg, sizeof(msg), "body: larger than %zu bytes (api-max-body)",
	         a->max_body);
	reply_error(req, 413, "Payload Too Large", msg);
}

/* ---- who is calling ---------------------------------------------------- */

struct agent_auth {
	char name[CRED_NAME_MAX];
	bool cert;              /* by certificate, else by token */
	double at;              /* unix time */
};

/* The verified client certificate of req's connection, or NULL (plain
 * HTTP, no certificate, or client certificates not asked for). */
static X509 *peer_cert(const struct api *a, struct evhttp_request *req)
{
	struct evhttp_connection *c = evhttp_request_get_connection(req);
	struct bufferevent *bev = c ? evhttp_connection_get_bufferevent(c)
	                            : NULL;
	SSL *ssl = bev && a->tls_clients ? bufferevent_openssl_get_ssl(bev)
	                                 : NULL;

	if (!ssl || SSL_get_verify_result(ssl) != X509_V_OK)
		return NULL;
	return SSL_get0_peer_certificate(ssl);
}

/* req's caller into *out: the bearer token when the request sends one,
 * else the agent its verified client certificate names (cred.h
 * cred_cert_agent), which the credentials must name. 0; -ENOENT (no
 * credential, unknown token; 401) or -EACCES (a certificate naming no
 * known agent; 403), err saying why. */
static int authenticate(struct api *a, struct evhttp_request *req,
                        struct cred_caller *out, char *err, size_t errlen)
{
	const char *h = evhttp_find_header(
		evhttp_request_get_input_headers(req), "Authorization");
	X509 *cert;
	size_t n;

	memset(out, 0, sizeof(*out));
	a->caller_cert = false;
	snprintf(err, errlen, "missing or unknown bearer token");
	if (!h && (cert = peer_cert(a, req))) {
		if (cred_cert_agent(cert, out->name, sizeof(out->name), err,
		                    errlen) < 0)
			return -EACCES;
		if (!cred_agent_known(a->creds, out->name)) {
			snprintf(err, errlen, "client certificate: agent '%s' "
			         "is not a known agent (no agent line of the "
			         "credentials names it)", out->name);
			return -EACCES;
		}
		out->role = CRED_AGENT;
		a->caller_cert = true;
		return 0;
	}
	if (!h || strncasecmp(h, "Bearer ", 7) != 0)
		return -ENOENT;
	h += 7;
	while (*h == ' ')
		h++;
	n = strlen(h);
	while (n > 0 && (h[n - 1] == ' ' || h[n - 1] == '\t'))
		n--;
	if (n > CRED_TOKEN_MAX)
		return -ENOENT;
	return cred_check(a->creds, h, n, out);
}

/* May the caller report as agent? 0, or -EACCES with the reason: an
 * agent credential reports for its own name only; with a credentials
 * file, only the agents it names may report at all. */
static int report_allowed(const struct api *a, const struct cred_caller *c,
                          const char *agent, char *err, size_t errlen)
{
	if (!c->any_agent && c->role != CRED_ADMIN &&
	    strcmp(c->name, agent) != 0) {
		snprintf(err, errlen, "agent: this credential reports as "
		         "'%s' only, not as '%s'", c->name, agent);
		return -EACCES;
	}
	if (cred_agents_known(a->creds) && !cred_agent_known(a->creds, agent)) {
		snprintf(err, errlen, "agent: '%s' is not a known agent (no "
		         "agent credential names it)", agent);
		return -EACCES;
	}
	return 0;
}

static int auth_cmp(const void *k, const void *e)
{
	return strcmp(k, ((const struct agent_auth *)e)->name);
}

/* Notes how the agent credential in a->caller authenticated. */
static void auth_note(struct api *a)
{
	struct agent_auth *e = !a->n_auths ? NULL :
		bsearch(a->caller.name, a->auths, a->n_auths,
		        sizeof(*a->auths), auth_cmp);
	struct timespec now;
	size_t i = 0;

	if (!e) {
		if (a->n_auths == a->cap_auths) {
			size_t cap = a->cap_auths ? a->cap_auths * 2 : 16;
			struct agent_auth *n = realloc(a->auths,
			                               cap * sizeof(*n));

			if (!n)
				return;
			a->auths = n;
			a->cap_auths = cap;
		}
		while (i < a->n_auths &&
		       strcmp(a->auths[i].name, a->caller.name) < 0)
			i++;
		memmove(&a->auths[i + 1], &a->auths[i],
		        (a->n_auths - i) * sizeof(*a->auths));
		a->n_auths++;
		e = &a->auths[i];
		snprintf(e->name, sizeof(e->name), "%s", a->caller.name);
	}
	clock_gettime(CLOCK_REALTIME, &now);
	e->cert = a->caller_cert;
	e->at = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

json_t *api_agent_auth_json(const struct api *a)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < a->n_auths; i++)
		json_array_append_new(arr, json_pack("{s:s, s:s, s:f}",
			"agent", a->auths[i].name, "auth",
			a->auths[i].cert ? "certificate" : "token",
			"at", a->auths[i].at));
	return arr;
}

void api_set_creds(struct api *a, struct cred_set *creds)
{
	size_t n = 0;

	cred_free(a->creds);
	a->creds = creds;
	/* Agents the new credentials no longer name are forgotten. */
	for (size_t i = 0; i < a->n_auths; i++)
		if (cred_agent_known(creds, a->auths[i].name))
			a->auths[n++] = a->auths[i];
	a->n_auths = n;
}

/* ---- TLS ---------------------------------------------------------------- */

/* OpenSSL's last error as text (the queue is emptied). */
static const char *tls_error(char *buf, size_t len)
{
	unsigned long e = ERR_peek_last_error();

	if (!e)
		snprintf(buf, len, "unknown error");
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
	return buf;
}

static double mono(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void limit_accepted(struct api *a)
{
	enum connlimit_verdict v = connlimit_accepted(a->limit);

	if (v == CONNLIMIT_OK)
		return;
	if (!evtimer_pending(a->trim, NULL)) {
		/* Not now: first let the new connections' waiting requests be
		 * read, so a complete request counts as activity. */
		struct timeval soon = { .tv_usec = 20 * 1000 };

		evtimer_add(a->trim, &soon);
	}
	if (v == CONNLIMIT_FULL && !a->paused) {
		/* Ends the listener's accept loop: the rest wait in the listen
		 * queue until the trim. */
		evconnlistener_disable(evhttp_bound_socket_get_listener(a->sock));
		a->paused = true;
	}
}

/* ---- libevent's own error pages, as JSON --------------------------------
 *
 * libevent answers a few errors itself, before any handler runs: a body
 * or headers over the limits (413, also for a chunked body once its chunks
 * pass the limit), a malformed request (400), a method it does not know
 * (501). Its page is HTML; the API speaks JSON. Each connection's output is
 * watched: such a page, once complete (libevent writes it in one go, then
 * closes the connection), is replaced by the same status line and a JSON
 * body saying what was wrong and which setting bounds it. */

#define PAGE_HEAD "<HTML><HEAD>\n<TITLE>"
#define PAGE_TAIL "</BODY></HTML>\n"

static void error_page_json(size_t limit, const char *key, int code,
                            char *msg, size_t len)
{
	if (code == 413)
		snprintf(msg, len, "request: body larger than %zu bytes "
		         "(%s) or headers larger than %d bytes", limit, key,
		         API_HEADERS_MAX);
	else if (code == 400)
		snprintf(msg, len, "request: malformed request line, header "
		         "or chunked body");
	else if (code == 501)
		snprintf(msg, len, "method: not implemented");
	else
		snprintf(msg, len, "request: refused (HTTP %d)", code);
}

static struct api *api_of(const struct evhttp *http);
static void gate_limit(struct api *a, struct bufferevent *bev, size_t *limit,
                       const char **key);

static void on_output(struct evbuffer *out, const struct evbuffer_cb_info *info,
                      void *arg)
{
	struct bufferevent *bev = arg;
	void *evcon = NULL;
	struct api *a;
	size_t limit;
	const char *key;
	size_t len = evbuffer_get_length(out), tl = strlen(PAGE_TAIL);
	struct evbuffer_ptr p, page, start, at;
	char tail[32], line[64], msg[200];
	struct evbuffer *keep = NULL;
	json_t *doc;
	char *body = NULL;
	int code;

	if (info->n_added == 0 || len < tl + 16)
		return;
	bufferevent_getcb(bev, NULL, NULL, NULL, &evcon);
	if (!evcon || !(a = api_of(evhttp_connection_get_server(evcon))) ||
	    a->rewriting)
		return;
	evbuffer_ptr_set(out, &p, len - tl, EVBUFFER_PTR_SET);
	if (evbuffer_copyout_from(out, &p, tail, tl) != (ev_ssize_t)tl ||
	    memcmp(tail, PAGE_TAIL, tl) != 0)
		return;
	page = evbuffer_search(out, PAGE_HEAD, strlen(PAGE_HEAD), NULL);
	if (page.pos < 0)
		return;
	/* The page's response starts at the last status line before it. */
	start.pos = -1;
	for (at = evbuffer_search(out, "HTTP/1.", 7, NULL);
	     at.pos >= 0 && at.pos < page.pos;) {
		start = at;
		if (evbuffer_ptr_set(out, &at, 1, EVBUFFER_PTR_ADD) < 0)
			break;
		at = evbuffer_search(out, "HTTP/1.", 7, &at);
	}
	if (start.pos < 0)
		return;
	memset(line, 0, sizeof(line));
	evbuffer_copyout_from(out, &start, line, sizeof(line) - 1);
	line[strcspn(line, "\r\n")] = '\0';
	if (strlen(line) < 12 || sscanf(line + 9, "%3d", &code) != 1)
		return;
	gate_limit(a, bev, &limit, &key);
	error_page_json(limit, key, code, msg, sizeof(msg));
	doc = json_pack("{s:s}", "error", msg);
	body = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	if (!body || !(keep = evbuffer_new()))
		goto out;
	a->rewriting = true;
	/* What precedes the page (earlier replies) stays as it was. */
	evbuffer_remove_buffer(out, keep, (size_t)start.pos);
	evbuffer_drain(out, evbuffer_get_length(out));
	evbuffer_add_buffer(out, keep);
	evbuffer_add_printf(out, "%s\r\nContent-Type: application/json\r\n"
	                    "Cache-Control: no-store\r\nConnection: close\r\n"
	                    "Content-Length: %zu\r\n\r\n%s\n", line,
	                    strlen(body) + 1, body);
	a->rewriting = false;
out:
	if (keep)
		evbuffer_free(keep);
	free(body);
}

/* ---- one request at a time, its body bounded by the caller's role --------
 *
 * Each connection's bytes pass through a filter (the gate) before evhttp
 * reads them. The gate lets one request through at a time: it holds a
 * request's head until it is complete, then sets the connection's body
 * limit for that request from the caller's role (admin: api-max-body;
 * anyone else: api-max-report-body), which evhttp applies from the
 * Content-Length or as chunks arrive, before buffering the body; it lets
 * the body through (its Content-Length, or its chunks up to the last), and
 * holds whatever follows until the reply is sent. libevent 2.1 offers no
 * hook between a request's headers and its body: this is that hook. What
 * it cannot follow (a body without length, a malformed head) it lets
 * through as it comes, and evhttp refuses it or closes the connection. */

enum gate_phase { G_HEAD, G_BODY, G_CHUNK_SIZE, G_CHUNK_DATA, G_TRAILER,
                  G_WAIT, G_PASS };

struct gate {
	struct api *a;
	uint64_t cookie;                /* the socket's SO_COOKIE */
	struct bufferevent *bev;
	void *evcon;                    /* its struct evhttp_connection */
	struct evbuffer *held;          /* bytes not shown to evhttp yet */
	enum gate_phase phase;
	uint64_t left;                  /* G_BODY, G_CHUNK_DATA: bytes */
	size_t limit;
	bool admin;
};

#define GATE_HOLD_MAX (API_HEADERS_MAX + 4096)   /* read stops past it */

/* The body limit in force on bev's connection and its setting. */
static void gate_limit(struct api *a, struct bufferevent *bev, size_t *limit,
                       const char **key)
{
	int fd = (int)bufferevent_getfd(bev);
	const struct gate *g = fd >= 0 && (size_t)fd < a->n_gates ?
	                       a->gates[fd] : NULL;
	bool admin = g && g->bev == bev && g->admin;

	*limit = admin ? a->max_body : g && g->bev == bev ? g->limit
	                                                   : a->max_report_body;
	*key = admin ? "api-max-body" : "api-max-report-body";
}

/* Moves n bytes of src to dst. */
static void gate_pass(struct evbuffer *src, struct evbuffer *dst, size_t n)
{
	evbuffer_remove_buffer(src, dst, n);
}

/* The line at the start of src: its length without the end of line into
 * *len, with it into *total; false when no complete line. */
static bool gate_line(struct evbuffer *src, size_t *len, size_t *total)
{
	size_t eol = 0;
	struct evbuffer_ptr p = evbuffer_search_eol(src, NULL, &eol,
	                                            EVBUFFER_EOL_CRLF);

	if (p.pos < 0)
		return false;
	*len = (size_t)p.pos;
	*total = (size_t)p.pos + eol;
	return true;
}

/* The caller's role for the Authorization value v: admin or not. */
static bool gate_admin(const struct api *a, const char *v)
{
	struct cred_caller c;
	size_t n;

	if (strncasecmp(v, "Bearer ", 7) != 0)
		return false;
	for (v += 7; *v == ' '; v++)
		;
	n = strlen(v);
	while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	return n <= CRED_TOKEN_MAX && cred_check(a->creds, v, n, &c) == 0 &&
	       c.role == CRED_ADMIN;
}

/* A complete head at the start of src (ends with an empty line)? Parses it
 * (phase and limit for what follows) and sets the connection's body limit;
 * returns its length, 0 when incomplete. */
static size_t gate_head(struct gate *g, struct evbuffer *src)
{
	char line[API_HEADERS_MAX + 1];
	struct evbuffer_ptr at, eolp;
	size_t eol = 0, off = 0, n;
	bool chunked = false, has_len = false, first = true, body = false;
	bool report = false;
	uint64_t clen = 0;

	for (;;) {
		evbuffer_ptr_set(src, &at, off, EVBUFFER_PTR_SET);
		eolp = evbuffer_search_eol(src, &at, &eol, EVBUFFER_EOL_CRLF);
		if (eolp.pos < 0)
			return 0;
		n = (size_t)eolp.pos - off;
		if (n > API_HEADERS_MAX)
			n = API_HEADERS_MAX;
		evbuffer_copyout_from(src, &at, line, n);
		line[n] = '\0';
		off = (size_t)eolp.pos + eol;
		if (n == 0 && !first)
			break;
		if (n == 0)
			continue;               /* evhttp skips leading blank lines */
		if (first) {
			first = false;
			body = strncmp(line, "POST ", 5) == 0 ||
			       strncmp(line, "PUT ", 4) == 0 ||
			       strncmp(line, "PATCH ", 6) == 0;
			report = strncmp(line, "POST /v1/reports", 16) == 0 &&
			         (line[16] == ' ' || line[16] == '?');
		} else if (strncasecmp(line, "Content-Length:", 15) == 0) {
			char *end;

			clen = strtoull(line + 15, &end, 10);
			while (*end == ' ' || *end == '\t')
				end++;
			has_len = *end == '\0';
			if (!has_len)
				g->phase = G_PASS;
		} else if (strncasecmp(line, "Transfer-Encoding:", 18) == 0) {
			chunked = strcasestr(line + 18, "chunked") != NULL;
		} else if (strncasecmp(line, "Authorization:", 14) == 0) {
			const char *v = line + 14;

			while (*v == ' ' || *v == '\t')
				v++;
			g->admin = gate_admin(g->a, v);
		}
	}
	/* Reports are an agent's, whoever sends them. */
	if (report)
		g->admin = false;
	g->limit = g->admin ? g->a->max_body : g->a->max_report_body;
	if (g->evcon)
		evhttp_connection_set_max_body_size(g->evcon,
		                                    (ev_ssize_t)g->limit);
	if (g->phase == G_PASS)
		return off;
	if (chunked) {
		g->phase = G_CHUNK_SIZE;
	} else if (has_len) {
		g->phase = clen ? G_BODY : G_WAIT;
		g->left = clen;
		if (clen > g->limit)
			g->phase = G_PASS;      /* refused, then closed */
	} else {
		/* No length: a body would run to the end of the stream. */
		g->phase = body ? G_PASS : G_WAIT;
	}
	return off;
}

static enum bufferevent_filter_result gate_in(struct evbuffer *src,
                                              struct evbuffer *dst,
                                              ev_ssize_t limit,
                                              enum bufferevent_flush_mode mode,
                                              void *arg)
{
	struct gate *g = arg;
	size_t n, total;
	char num[32];

	(void)limit;
	(void)mode;
	for (;;) {
		size_t have = evbuffer_get_length(src);

		switch (g->phase) {
		case G_HEAD:
			if (!have)
				return BEV_NEED_MORE;
			if (!(n = gate_head(g, src))) {
				if (have <= GATE_HOLD_MAX)
					return BEV_NEED_MORE;
				g->phase = G_PASS;      /* evhttp refuses it */
				continue;
			}
			gate_pass(src, dst, n);
			continue;
		case G_BODY:
		case G_CHUNK_DATA:
			if (!have)
				return BEV_OK;
			n = have < g->left ? have : (size_t)g->left;
			gate_pass(src, dst, n);
			g->left -= n;
			if (g->left == 0)
				g->phase = g->phase == G_BODY ? G_WAIT
				                              : G_CHUNK_SIZE;
			continue;
		case G_CHUNK_SIZE:
			if (!gate_line(src, &n, &total)) {
				if (have > 1024)
					g->phase = G_PASS;
				else
					return BEV_OK;
				continue;
			}
			memset(num, 0, sizeof(num));
			evbuffer_copyout(src, num, n < sizeof(num) - 1 ? n
			                 : sizeof(num) - 1);
			gate_pass(src, dst, total);
			{
				char *end;
				unsigned long long v = strtoull(num, &end, 16);

				if (end == num) {
					g->phase = G_PASS;
				} else if (v == 0) {
					g->phase = G_TRAILER;
				} else {
					g->left = v + 2;     /* and its CRLF */
					g->phase = G_CHUNK_DATA;
				}
			}
			continue;
		case G_TRAILER:
			if (!gate_line(src, &n, &total)) {
				if (have > GATE_HOLD_MAX)
					g->phase = G_PASS;
				else
					return BEV_OK;
				continue;
			}
			gate_pass(src, dst, total);
			if (n == 0)
				g->phase = G_WAIT;
			continue;
		case G_WAIT:
			return BEV_OK;          /* until the reply is sent */
		case G_PASS:
			if (have)
				gate_pass(src, dst, have);
			return BEV_OK;
		}
	}
}

#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif

static uint64_t sock_cookie(int fd)
{
	uint64_t ck = 0;
	socklen_t l = sizeof(ck);

	if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &ck, &l) < 0)
		return 0;
	return ck;
}

/* The APIs of this process by their evhttp (a connection's bufferevent
 * leads to its evhttp_connection, and that to its evhttp). */
static pthread_mutex_t apis_lock = PTHREAD_MUTEX_INITIALIZER;
static struct api *apis[16];

static void api_register(struct api *a, bool on)
{
	pthread_mutex_lock(&apis_lock);
	for (size_t i = 0; i < sizeof(apis) / sizeof(apis[0]); i++)
		if (on ? !apis[i] : apis[i] == a) {
			apis[i] = on ? a : NULL;
			break;
		}
	pthread_mutex_unlock(&apis_lock);
}

static struct api *api_of(const struct evhttp *http)
{
	struct api *a = NULL;

	pthread_mutex_lock(&apis_lock);
	for (size_t i = 0; !a && i < sizeof(apis) / sizeof(apis[0]); i++)
		if (apis[i] && apis[i]->http == http)
			a = apis[i];
	pthread_mutex_unlock(&apis_lock);
	return a;
}

/* The gate of the connection on fd (cookie ck): one slot per descriptor,
 * reset for each new connection; NULL when out of memory. */
static struct gate *gate_at(struct api *a, int fd, uint64_t ck,
                            const struct bufferevent *bev)
{
	struct gate *g;

	if (fd < 0 || fd >= (1 << 22))
		return NULL;
	if ((size_t)fd >= a->n_gates) {
		size_t n = a->n_gates ? a->n_gates : 256;
		struct gate **ng;

		while (n <= (size_t)fd)
			n *= 2;
		if (!(ng = realloc(a->gates, n * sizeof(*ng))))
			return NULL;
		memset(ng + a->n_gates, 0, (n - a->n_gates) * sizeof(*ng));
		a->gates = ng;
		a->n_gates = n;
	}
	if (!(g = a->gates[fd])) {
		if (!(g = calloc(1, sizeof(*g))) ||
		    !(g->held = evbuffer_new())) {
			free(g);
			return NULL;
		}
		a->gates[fd] = g;
	}
	if (g->cookie != ck || (g->bev && g->bev != bev)) {
		evbuffer_drain(g->held, evbuffer_get_length(g->held));
		g->a = a;
		g->cookie = ck;
		g->bev = NULL;
		g->evcon = NULL;
		g->phase = G_HEAD;
		g->admin = false;
		g->limit = a->max_report_body;
	}
	return g;
}

/* Bytes arrived on a connection's input (bev: arg): what evhttp may see of
 * them stays, the rest is held. */
static void gate_cb(struct evbuffer *in, const struct evbuffer_cb_info *info,
                    void *arg)
{
	struct bufferevent *bev = arg;
	void *evcon = NULL;
	struct api *a;
	struct gate *g;
	struct evbuffer *front;
	size_t keep;
	int fd;

	if (info->n_added == 0)
		return;
	bufferevent_getcb(bev, NULL, NULL, NULL, &evcon);
	if (!evcon || !(a = api_of(evhttp_connection_get_server(evcon))) ||
	    a->gating)
		return;
	fd = (int)bufferevent_getfd(bev);
	if (!(g = gate_at(a, fd, sock_cookie(fd), bev)))
		return;                 /* out of memory: ungated */
	g->bev = bev;
	g->evcon = evcon;
	if (g->phase == G_PASS && !evbuffer_get_length(g->held))
		return;
	a->gating = true;
	/* The new bytes are the last n_added: held behind what was there. */
	keep = evbuffer_get_length(in) - info->n_added;
	if ((front = evbuffer_new())) {
		evbuffer_remove_buffer(in, front, keep);
		evbuffer_add_buffer(g->held, in);
		evbuffer_add_buffer(in, front);
		evbuffer_free(front);
		gate_in(g->held, in, -1, BEV_NORMAL, g);
	}
	a->gating = false;
}

/* The reply on fd's connection was sent: the next request may pass (evhttp
 * reads what is in the input once it starts its next request). */
static void gate_next(struct api *a, int fd)
{
	struct gate *g = fd >= 0 && (size_t)fd < a->n_gates ? a->gates[fd]
	                                                    : NULL;

	if (!g || !g->bev || g->cookie != sock_cookie(fd) ||
	    g->phase != G_WAIT)
		return;
	g->phase = G_HEAD;
	g->admin = false;
	if (evbuffer_get_length(g->held)) {
		a->gating = true;
		/* A bufferevent's input takes bytes only from its own reads
		 * (frozen at its end otherwise). */
		evbuffer_unfreeze(bufferevent_get_input(g->bev), 0);
		gate_in(g->held, bufferevent_get_input(g->bev), -1, BEV_NORMAL,
		        g);
		evbuffer_freeze(bufferevent_get_input(g->bev), 0);
		a->gating = false;
	}
}

static void gates_free(struct api *a)
{
	for (size_t i = 0; i < a->n_gates; i++)
		if (a->gates[i]) {
			evbuffer_free(a->gates[i]->held);
			free(a->gates[i]);
		}
	free(a->gates);
	a->gates = NULL;
	a->n_gates = 0;
}

/* Each new API connection (evhttp's bevcb): counted against the cap, then
 * a plain bufferevent, or a TLS server one on the context in force (a
 * reloaded certificate applies to connections made after). */
static struct bufferevent *new_bev(struct event_base *base, void *arg)
{
	struct api *a = arg;
	struct bufferevent *bev;
	SSL *ssl;

	if (a->limit)
		limit_accepted(a);
	if (!a->tls) {
		bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	} else {
		if (!(ssl = SSL_new(a->tls)))
			return NULL;
		bev = bufferevent_openssl_socket_new(base, -1, ssl,
		                                     BUFFEREVENT_SSL_ACCEPTING,
		                                     BEV_OPT_CLOSE_ON_FREE);
		if (!bev)
			SSL_free(ssl);
	}
	/* Freed with the bufferevent's buffers. */
	if (bev && (!evbuffer_add_cb(bufferevent_get_output(bev), on_output,
	                             bev) ||
	            !evbuffer_add_cb(bufferevent_get_input(bev), gate_cb,
	                             bev))) {
		bufferevent_free(bev);
		bev = NULL;
	}
	return bev;
}

/* ---- connection limits ------------------------------------------------ */

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct api *a = arg;

	(void)fd;
	(void)what;
	connlimit_sweep(a->limit, mono());
}

static void on_trim(evutil_socket_t fd, short what, void *arg)
{
	struct api *a = arg;

	(void)fd;
	(void)what;
	connlimit_trim(a->limit, mono());
	if (a->paused) {
		evconnlistener_enable(evhttp_bound_socket_get_listener(a->sock));
		a->paused = false;
	}
}

static int request_fd(struct evhttp_request *req)
{
	struct evhttp_connection *c = evhttp_request_get_connection(req);
	struct bufferevent *bev = c ? evhttp_connection_get_bufferevent(c)
	                            : NULL;

	return bev ? (int)bufferevent_getfd(bev) : -1;
}

/* The reply on req's connection is sent: its deadline restarts. */
static void on_reply_sent(struct evhttp_request *req, void *arg)
{
	struct api *a = arg;
	int fd = request_fd(req);

	if (a->limit && fd >= 0)
		connlimit_request_done(a->limit, fd, mono());
	gate_next(a, fd);
}

/* The request on req's connection is complete: no deadline while it is
 * answered, which restarts it once the reply is sent. */
static void limit_request_start(struct api *a, struct evhttp_request *req)
{
	int fd = request_fd(req);

	if (a->limit && fd >= 0) {
		connlimit_request_start(a->limit, fd, mono());
		evhttp_request_set_on_complete_cb(req, on_reply_sent, a);
	}
}

int api_set_limits(struct api *a, unsigned max_conns, unsigned timeout_s,
                   char *err, size_t errlen)
{
	struct connlimit *l;
	struct timeval sec = { .tv_sec = 1 };

	if (!max_conns || !timeout_s) {
		snprintf(err, errlen, "api: connection cap and request timeout "
		         "must be at least 1");
		return -EINVAL;
	}
	l = connlimit_new((int)evhttp_bound_socket_get_fd(a->sock), max_conns,
	                  timeout_s);
	if (!a->trim)
		a->trim = evtimer_new(a->base, on_trim, a);
	if (!l || !a->trim || (!a->sweep && !(a->sweep = event_new(
		a->base, -1, EV_PERSIST, on_sweep, a)))) {
		connlimit_free(l);
		snprintf(err, errlen, "api: out of memory");
		return -ENOMEM;
	}
	connlimit_free(a->limit);
	a->limit = l;
	event_add(a->sweep, &sec);
	/* The idle timeout between reads; the deadline above bounds the
	 * whole request however the bytes trickle in. */
	evhttp_set_timeout(a->http, (int)timeout_s);
	return 0;
}

/* A server context for t (api.h), TLS 1.2 or later; NULL with err set. */
static SSL_CTX *tls_ctx_new(const struct api_tls *t, char *err, size_t errlen)
{
	static const unsigned char sid_ctx[] = "gslb-api";
	const char *cert = t->cert, *key = t->key, *client_ca = t->client_ca;
	STACK_OF(X509_NAME) *names;
	X509_STORE *store;
	X509_LOOKUP *lu;
	SSL_CTX *c = SSL_CTX_new(TLS_server_method());
	char e[256];

	if (!c) {
		snprintf(err, errlen, "tls: %s", tls_error(e, sizeof(e)));
		return NULL;
	}
	SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
	SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION |
	                       SSL_OP_CIPHER_SERVER_PREFERENCE);
	if (SSL_CTX_use_certificate_chain_file(c, cert) != 1) {
		snprintf(err, errlen, "tls: certificate %s: %s", cert,
		         tls_error(e, sizeof(e)));
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(c, key, SSL_FILETYPE_PEM) != 1) {
		snprintf(err, errlen, "tls: key %s: %s", key,
		         tls_error(e, sizeof(e)));
		goto fail;
	}
	if (SSL_CTX_check_private_key(c) != 1) {
		snprintf(err, errlen, "tls: key %s does not match certificate "
		         "%s", key, cert);
		ERR_clear_error();
		goto fail;
	}
	if (!client_ca)
		return c;
	/* A chain that does not verify (another CA, expired) fails the
	 * handshake in either mode; with require so does no certificate. */
	if (SSL_CTX_load_verify_locations(c, client_ca, NULL) != 1 ||
	    !(names = SSL_load_client_CA_file(client_ca))) {
		snprintf(err, errlen, "tls: client CA %s: %s", client_ca,
		         tls_error(e, sizeof(e)));
		goto fail;
	}
	SSL_CTX_set_client_CA_list(c, names);
	if (t->client_crl) {
		store = SSL_CTX_get_cert_store(c);
		lu = X509_STORE_add_lookup(store, X509_LOOKUP_file());
		if (!lu || X509_load_crl_file(lu, t->client_crl,
		                              X509_FILETYPE_PEM) <= 0) {
			snprintf(err, errlen, "tls: client CRL %s: %s",
			         t->client_crl, tls_error(e, sizeof(e)));
			goto fail;
		}
		X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
	}
	SSL_CTX_set_verify(c, SSL_VERIFY_PEER | (t->require ?
	                   SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), NULL);
	/* Resumed sessions keep the verified certificate. */
	SSL_CTX_set_session_id_context(c, sid_ctx, sizeof(sid_ctx) - 1);
	return c;
fail:
	SSL_CTX_free(c);
	return NULL;
}

int api_tls_check(const struct api_tls *t, char *err, size_t errlen)
{
	SSL_CTX *c = tls_ctx_new(t, err, errlen);

	SSL_CTX_free(c);
	return c ? 0 : -EINVAL;
}

int api_set_tls(struct api *a, const struct api_tls *t, char *err,
                size_t errlen)
{
	SSL_CTX *c = tls_ctx_new(t, err, errlen);

	if (!c)
		return -EINVAL;
	SSL_CTX_free(a->tls);           /* live connections hold their own */
	a->tls = c;
	a->tls_clients = t->client_ca != NULL;
	return 0;
}

static void on_checks(struct api *a, struct evhttp_request *req)
{
	json_t *d = a->ops->checks ? a->ops->checks(a->ctx) : NULL;

	if (!d) {
		reply_error(req, 500, "Internal Server Error",
		            "check list unavailable");
		return;
	}
	api_reply_json(req, 200, "OK", d);
}

static void on_reports(struct api *a, struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	struct arena arena;
	struct api_report r;
	char err[256] = "";
	char *body;
	int rc;

	if (len > a->max_body && len > a->max_report_body) {
		body_too_large(a, req);
		return;
	}
	arena_init(&arena);
	/* pullup makes the body contiguous; evhttp already bounded it. */
	body = (char *)evbuffer_pullup(in, -1);
	rc = api_report_parse(body ? body : "", len, &arena, &r, err,
	                      sizeof(err));
	if (rc < 0) {
		reply_error(req, 400, "Bad Request", err);
		goto out;
	}
	if (report_allowed(a, &a->caller, r.agent, err, sizeof(err)) < 0) {
		reply_error(req, 403, "Forbidden", err);
		goto out;
	}
	rc = a->ops->report ? a->ops->report(a->ctx, &r, err, sizeof(err))
	                    : -ENOSYS;
	if (rc == 0) {
		json_t *d = json_pack("{s:b,s:I}", "ok", 1, "accepted",
		                      (json_int_t)r.n);

		api_reply_json(req, 200, "OK", d);
	} else if (rc == -ENOENT) {
		reply_error(req, 422, "Unprocessable Entity", err);
	} else if (rc == -EINVAL) {
		reply_error(req, 400, "Bad Request", err);
	} else if (rc == -ENOSPC) {
		reply_error(req, 429, "Too Many Requests", err);
	} else {
		log_warn("api: report from %s: %s", r.agent,
		         err[0] ? err : strerror(-rc));
		reply_error(req, 500, "Internal Server Error",
		            err[0] ? err : strerror(-rc));
	}
out:
	arena_fini(&arena);
}

static void on_status(struct api *a, struct evhttp_request *req)
{
	struct evbuffer *b = evbuffer_new();
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	if (!b || !a->ops->status || a->ops->status(a->ctx, b) < 0) {
		if (b)
			evbuffer_free(b);
		reply_error(req, 500, "Internal Server Error",
		            "status unavailable");
		return;
	}
	evhttp_add_header(h, "Content-Type", "application/json");
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
}

static void on_metrics(struct api *a, struct evhttp_request *req)
{
	struct evbuffer *b = evbuffer_new();

	if (!b || !a->ops->metrics || a->ops->metrics(a->ctx, b) < 0) {
		if (b)
			evbuffer_free(b);
		evhttp_send_error(req, 500, "Internal Server Error");
		return;
	}
	evhttp_add_header(evhttp_request_get_output_headers(req),
	                  "Content-Type", "text/plain; version=0.0.4");
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
}

static void on_config_get(struct api *a, struct evhttp_request *req)
{
	char err[256] = "configuration unavailable";
	json_t *d = a->ops->config_get ? a->ops->config_get(a->ctx, err, sizeof(err))
	                               : NULL;

	if (!d) {
		reply_error(req, 500, "Internal Server Error", err);
		return;
	}
	api_reply_json(req, 200, "OK", d);
}

/* true when the request's query has NAME=1 or NAME=true. */
static bool query_flag(struct evhttp_request *req, const char *name)
{
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	const char *q = u ? evhttp_uri_get_query(u) : NULL, *v;
	struct evkeyvalq kv;
	bool on = false;

	TAILQ_INIT(&kv);
	if (q && evhttp_parse_query_str(q, &kv) == 0 &&
	    (v = evhttp_find_header(&kv, name)))
		on = strcmp(v, "1") == 0 || strcmp(v, "true") == 0;
	evhttp_clear_headers(&kv);
	return on;
}

/* A JSON body write: parse, hand to ops->config_write (or, for PUT
 * /v1/config, ops->config_import), map the result. */
static void config_write(struct api *a, struct evhttp_request *req,
                         const char *what)
{
	json_t *changes = NULL, *force;
	struct api_caller who = {
		.name = a->caller.name[0] ? a->caller.name : "token",
	};
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
	json_error_t jerr;
	json_t *doc;
	char err[512] = "";
	int rc;

	if (len > a->max_body) {
		body_too_large(a, req);
		return;
	}
	doc = json_loadb(body, len, 0, &jerr);
	if (!doc || !json_is_object(doc)) {
		snprintf(err, sizeof(err), "body: not a JSON object (%s)",
		         doc ? "wrong type" : jerr.text);
		json_decref(doc);
		reply_error(req, 400, "Bad Request", err);
		return;
	}
	who.dry_run = query_flag(req, "dry_run");
	who.force = query_flag(req, "force");
	if ((force = json_object_get(doc, "force"))) {
		if (!json_is_boolean(force)) {
			json_decref(doc);
			reply_error(req, 400, "Bad Request",
			            "force: must be true or false");
			return;
		}
		who.force |= json_is_true(force);
		json_object_del(doc, "force");
	}
	if (strcmp(what, "config") == 0 && a->ops->config_import) {
		rc = 0;
		changes = a->ops->config_import(a->ctx, doc, &who, &rc, err,
		                                sizeof(err));
		if (changes) {
			json_object_set_new(changes, "ok", json_true());
			json_object_set_new(changes, "dry_run",
			                    json_boolean(who.dry_run));
		}
	} else {
		rc = a->ops->config_write ? a->ops->config_write(a->ctx, what,
		                                                 doc, &who, err,
		                                                 sizeof(err))
		                          : -ENOSYS;
	}
	json_decref(doc);
	if (rc == 0)
		api_reply_json(req, 200, "OK", changes ? changes :
		           json_pack("{s:b}", "ok", 1));
	else if (rc == -EINVAL)
		reply_error(req, 400, "Bad Request", err);
	else if (rc == -ENOENT)
		reply_error(req, 422, "Unprocessable Entity", err);
	else if (rc == -EEXIST || rc == -EPERM || rc == -EBUSY ||
	         rc == -EAGAIN)
		reply_error(req, 409, "Conflict", err);
	else if (rc == -ETIMEDOUT || rc == -EHOSTDOWN)
		reply_error(req, 503, "Service Unavailable", err);
	else
		reply_error(req, 500, "Internal Server Error",
		            err[0] ? err : strerror(-rc));
}

static void on_config_put(struct api *a, struct evhttp_request *req)
{
	config_write(a, req, "config");
}

static void on_flip(struct api *a, struct evhttp_request *req)
{
	config_write(a, req, "flip");
}

static void on_shift(struct api *a, struct evhttp_request *req)
{
	config_write(a, req, "shift");
}

static void on_endpoint(struct api *a, struct evhttp_request *req)
{
	config_write(a, req, "endpoint");
}

#define R_ANY   0u                         /* no credential needed */
#define R_AGENT (CRED_AGENT | CRED_ADMIN)
#define R_READ  (CRED_READ | CRED_ADMIN)
#define R_ADMIN CRED_ADMIN

/* Checks req's credential against roles (R_ANY: open; open_shared: open
 * as well when the only credential is the shared --api-token-file one).
 * True to go on; otherwise the 401 or 403 reply is sent. The caller lands
 * in a->caller. */
static bool admit(struct api *a, struct evhttp_request *req, unsigned roles,
                  bool open_shared)
{
	char why[200];
	int rc;

	memset(&a->caller, 0, sizeof(a->caller));
	if (roles == R_ANY || (open_shared && !cred_agents_known(a->creds)))
		return true;
	if ((rc = authenticate(a, req, &a->caller, why, sizeof(why))) ==
	    -EACCES) {
		reply_error(req, 403, "Forbidden", why);
		return false;
	}
	if (rc < 0) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		                  "WWW-Authenticate", "Bearer");
		reply_error(req, 401, "Unauthorized", why);
		return false;
	}
	if (!(a->caller.role & roles)) {
		char msg[160];

		snprintf(msg, sizeof(msg), "the %s credential '%s' may not "
		         "do this", cred_role_name(a->caller.role),
		         a->caller.name);
		reply_error(req, 403, "Forbidden", msg);
		return false;
	}
	if (a->caller.role == CRED_AGENT)
		auth_note(a);
	return true;
}

/* /v1/services...: reads for anyone who may read the configuration,
 * writes with the admin role; bodies as config_write's. */
static void on_config_rest(struct api *a, struct evhttp_request *req,
                           const char *path)
{
	enum evhttp_cmd_type m = evhttp_request_get_command(req);
	const char *method = m == EVHTTP_REQ_GET ? "GET" :
	                     m == EVHTTP_REQ_PUT ? "PUT" :
	                     m == EVHTTP_REQ_POST ? "POST" :
	                     m == EVHTTP_REQ_DELETE ? "DELETE" : NULL;
	struct api_caller who = { .name = "token" };
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	json_t *body = NULL, *reply = NULL, *force;
	json_error_t jerr;
	char msg[300];
	int status;

	if (!method) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
		                  "GET, PUT, POST, DELETE");
		reply_error(req, 405, "Method Not Allowed", "method not allowed");
		return;
	}
	/* Reads as GET /v1/config, writes with the admin role. */
	if (m == EVHTTP_REQ_GET ? !admit(a, req, R_READ, true)
	                        : !admit(a, req, R_ADMIN, false))
		return;
	who.name = a->caller.name[0] ? a->caller.name : "token";
	if (len > a->max_body) {
		body_too_large(a, req);
		return;
	}
	if (len) {
		body = json_loadb((const char *)evbuffer_pullup(in, -1), len, 0,
		                  &jerr);
		if (!json_is_object(body)) {
			snprintf(msg, sizeof(msg), "body: not a JSON object (%s)",
			         body ? "wrong type" : jerr.text);
			json_decref(body);
			reply_error(req, 400, "Bad Request", msg);
			return;
		}
		if ((force = json_object_get(body, "force"))) {
			if (!json_is_boolean(force)) {
				json_decref(body);
				reply_error(req, 400, "Bad Request",
				            "force: must be true or false");
				return;
			}
			who.force = json_is_true(force);
			json_object_del(body, "force");
		}
	}
	who.force |= query_flag(req, "force");
	who.dry_run = query_flag(req, "dry_run");
	status = a->ops->config_rest(a->ctx, method, path, body, &who, &reply);
	json_decref(body);
	api_reply_json(req, status, status == 200 ? "OK" : status == 201 ?
	           "Created" : status == 400 ? "Bad Request" : status == 404 ?
	           "Not Found" : status == 405 ? "Method Not Allowed" :
	           status == 409 ? "Conflict" : "Error", reply ? reply :
	           json_pack("{s:s}", "error", "no reply"));
}

/* docs/openapi.json, embedded by the build. */
extern const unsigned char api_openapi_json[];
extern const size_t api_openapi_json_len;

static void on_openapi(struct api *a, struct evhttp_request *req)
{
	struct evbuffer *b = evbuffer_new();

	(void)a;
	if (!b) {
		evhttp_send_error(req, 500, "Internal Server Error");
		return;
	}
	evbuffer_add(b, api_openapi_json, api_openapi_json_len);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	                  "Content-Type", "application/json");
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
}

/* roles: the credential roles admitted (R_ANY: open). open_shared: open
 * as well when the only credential is the shared --api-token-file one. */
static const struct route {
	const char *path;
	enum evhttp_cmd_type method;
	unsigned roles;
	bool open_shared;
	void (*fn)(struct api *, struct evhttp_request *);
} routes[] = {
	{ "/v1/checks", EVHTTP_REQ_GET, R_AGENT, false, on_checks },
	{ "/v1/reports", EVHTTP_REQ_POST, R_AGENT, false, on_reports },
	{ "/v1/status", EVHTTP_REQ_GET, R_ANY, false, on_status },
	{ "/metrics", EVHTTP_REQ_GET, R_ANY, false, on_metrics },
	{ "/v1/openapi.json", EVHTTP_REQ_GET, R_ANY, false, on_openapi },
	{ "/v1/config", EVHTTP_REQ_GET, R_READ, true, on_config_get },
	{ "/v1/config", EVHTTP_REQ_PUT, R_ADMIN, false, on_config_put },
	{ "/v1/flip", EVHTTP_REQ_POST, R_ADMIN, false, on_flip },
	{ "/v1/shift", EVHTTP_REQ_POST, R_ADMIN, false, on_shift },
	{ "/v1/endpoint", EVHTTP_REQ_POST, R_ADMIN, false, on_endpoint },
};

/* The route's role check (admit()). */
static bool admitted(struct api *a, const struct route *r,
                     struct evhttp_request *req)
{
	return admit(a, req, r->roles, r->open_shared);
}

static const char *method_name(enum evhttp_cmd_type m)
{
	return m == EVHTTP_REQ_GET ? "GET" : m == EVHTTP_REQ_PUT ? "PUT" : "POST";
}

/* ---- the Host header ----------------------------------------------------
 *
 * Against DNS rebinding: a web page of another site whose name an attacker
 * points at the API's address would otherwise read the status page and the
 * metrics through the victim's browser, which sends that site's name as
 * Host. Over plain HTTP the API answers only an IP address, "localhost"
 * and the names of api-hosts ("*": any); with TLS any name (a browser
 * refuses a certificate that does not name the site it asked for). A
 * request without Host (HTTP/1.0, tools) is answered. */

int api_set_hosts(struct api *a, const char *const *hosts, size_t n)
{
	char **h = n ? calloc(n, sizeof(*h)) : NULL;

	if (n && !h)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (!(h[i] = strdup(hosts[i]))) {
			while (i--)
				free(h[i]);
			free(h);
			return -ENOMEM;
		}
	for (size_t i = 0; i < a->n_hosts; i++)
		free(a->hosts[i]);
	free(a->hosts);
	a->hosts = h;
	a->n_hosts = n;
	return 0;
}

void api_set_max_body(struct api *a, size_t admin, size_t others)
{
	a->max_body = admin;
	a->max_report_body = others;
	/* Each request's own limit is set by its gate; this bounds a body
	 * that got past it. */
	evhttp_set_max_body_size(a->http, (ev_ssize_t)(admin > others ? admin
	                                                               : others));
}

/* Host's name without port, brackets and final dot into out (false when
 * malformed or too long). */
static bool host_name(const char *h, char *out, size_t len, bool *literal6)
{
	const char *end;
	size_t n;

	*literal6 = false;
	if (*h == '[') {
		if (!(end = strchr(h, ']')) || (end[1] && end[1] != ':'))
			return false;
		h++;
		*literal6 = true;
	} else {
		end = strchr(h, ':');
		if (!end)
			end = h + strlen(h);
	}
	n = (size_t)(end - h);
	if (n > 0 && h[n - 1] == '.' && !*literal6)
		n--;
	if (n == 0 || n >= len)
		return false;
	memcpy(out, h, n);
	out[n] = '\0';
	return true;
}

static bool host_allowed(const struct api *a, struct evhttp_request *req,
                         char *name, size_t len)
{
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(req),
	                                   "Host");
	unsigned char buf[sizeof(struct in6_addr)];
	bool v6;

	if (!h || a->tls)
		return true;
	if (!host_name(h, name, len, &v6)) {
		snprintf(name, len, "%s", h);
		return false;
	}
	if (v6 ? inet_pton(AF_INET6, name, buf) == 1
	       : inet_pton(AF_INET, name, buf) == 1)
		return true;
	if (strcasecmp(name, "localhost") == 0)
		return true;
	for (size_t i = 0; i < a->n_hosts; i++) {
		const char *x = a->hosts[i];
		size_t n = strlen(x);

		if (n > 1 && x[n - 1] == '.')
			n--;
		if (strcmp(x, "*") == 0 ||
		    (n == strlen(name) && strncasecmp(x, name, n) == 0))
			return true;
	}
	return false;
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct api *a = arg;
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	const char *path = u ? evhttp_uri_get_path(u) : NULL;
	char allow[32] = "", name[256], msg[400];

	limit_request_start(a, req);
	if (!host_allowed(a, req, name, sizeof(name))) {
		snprintf(msg, sizeof(msg), "host: '%.255s' is not a name this "
		         "API answers to: an IP address, localhost or a name "
		         "of api-hosts", name);
		reply_error(req, 421, "Misdirected Request", msg);
		return;
	}
	if (!path)
		path = "";
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		const struct route *r = &routes[i];

		if (strcmp(path, r->path) != 0)
			continue;
		if (evhttp_request_get_command(req) != r->method) {
			snprintf(allow + strlen(allow), sizeof(allow) - strlen(allow),
			         "%s%s", allow[0] ? ", " : "", method_name(r->method));
			continue;
		}
		/* The token is checked before the body is even looked at. */
		if (admitted(a, r, req))
			r->fn(a, req);
		memset(&a->caller, 0, sizeof(a->caller));
		return;
	}
	if (a->ops->config_rest && strncmp(path, "/v1/services", 12) == 0 &&
	    (path[12] == '\0' || path[12] == '/')) {
		on_config_rest(a, req, path);
		memset(&a->caller, 0, sizeof(a->caller));
		return;
	}
	if (!allow[0] && a->ops->page && a->ops->page(a->ctx, req, path))
		return;
	if (allow[0]) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
		                  allow);
		reply_error(req, 405, "Method Not Allowed", "method not allowed");
		return;
	}
	reply_error(req, 404, "Not Found", "no such resource");
}

/* evhttp listens with a backlog of 128: a burst of connections would have
 * SYNs dropped, and a client's retry costs it a second. A burst accepted
 * at once holds up to this many descriptors beyond the cap until the HTTP
 * layer has released those the cap shut down. */
#define API_BACKLOG 1024
static void deepen_backlog(evutil_socket_t fd)
{
	if (listen(fd, API_BACKLOG) < 0)
		log_warn_errno("api: listen backlog");
}

struct api *api_new(struct event_base *base, const char *listen,
                    const char *token, const struct api_ops *ops, void *ctx,
                    char *err, size_t errlen)
{
	struct api *a;
	char host[128];
	unsigned port;
	bool v6;

	if (hostport_split(listen, host, sizeof(host), &port, &v6) < 0) {
		snprintf(err, errlen, "api: listen address '%s': expected "
		         "ADDR:PORT or [ADDR]:PORT", listen);
		return NULL;
	}
	if (token && (!*token || strlen(token) >= TOKEN_MAX)) {
		snprintf(err, errlen, "api: token empty or too long");
		return NULL;
	}
	if (!(a = calloc(1, sizeof(*a))) || !(a->http = evhttp_new(base)) ||
	    (token && (!(a->creds = cred_new()) ||
	               cred_add_shared(a->creds, "token", token) < 0))) {
		snprintf(err, errlen, "api: out of memory");
		api_free(a);
		return NULL;
	}
	a->base = base;
	a->ops = ops;
	a->ctx = ctx;
	api_set_max_body(a, API_BODY_MAX, API_REPORT_BODY_MAX);
	evhttp_set_max_headers_size(a->http, API_HEADERS_MAX);
	evhttp_set_timeout(a->http, 30);
	evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	                           EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
	                           EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH |
	                           EVHTTP_REQ_OPTIONS);
	evhttp_set_gencb(a->http, on_request, a);
	evhttp_set_bevcb(a->http, new_bev, a);
	api_register(a, true);
	a->sock = evhttp_bind_socket_with_handle(a->http, host,
	                                         (ev_uint16_t)port);
	if (!a->sock) {
		snprintf(err, errlen, "api: cannot listen on %s: %s", listen,
		         evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		api_free(a);
		return NULL;
	}
	{
		struct sockaddr_storage ss;
		ev_socklen_t sl = sizeof(ss);
		evutil_socket_t fd = evhttp_bound_socket_get_fd(a->sock);

		deepen_backlog(fd);
		a->port = port;
		if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
			a->port = ss.ss_family == AF_INET6
			? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
			: ntohs(((struct sockaddr_in *)&ss)->sin_port);
	}
	if (api_set_limits(a, API_MAX_CONNS_DEFAULT, API_TIMEOUT_DEFAULT, err,
	                   errlen) < 0) {
		api_free(a);
		return NULL;
	}
	return a;
}

unsigned api_port(const struct api *a)
{
	return a->port;
}

void api_free(struct api *a)
{
	if (!a)
		return;
	if (a->http)
		evhttp_free(a->http);
	cred_free(a->creds);
	free(a->auths);
	SSL_CTX_free(a->tls);
	api_set_hosts(a, NULL, 0);
	api_register(a, false);
	gates_free(a);
	if (a->sweep)
		event_free(a->sweep);
	if (a->trim)
		event_free(a->trim);
	connlimit_free(a->limit);
	free(a);
}

json_t *api_health_json(const struct hstate_rows *rows)
{
	json_t *doc = json_object(), *eps = json_array(), *lat = json_array();
	size_t j = 0;

	if (!doc || !eps || !lat) {
		json_decref(doc);
		json_decref(eps);
		json_decref(lat);
		return NULL;
	}
	json_object_set_new(doc, "endpoints", eps);
	json_object_set_new(doc, "latency", lat);
	/* Rows come sorted by endpoint id (hstate_export, hstore_load). */
	for (size_t i = 0; i < rows->n_eps; i++) {
		const struct hstate_ep_row *e = &rows->eps[i];
		json_t *agents = json_array();
		json_t *o = json_pack("{s:I,s:s,s:b,s:f,s:s}",
		                      "id", (json_int_t)e->endpoint_id,
		                      "state", hstate_state_name(e->state),
		                      "stale", e->stale, "since", e->since,
		                      "reason", e->reason ? e->reason : "");

		if (!o || !agents || json_array_append_new(eps, o) < 0) {
			json_decref(o);
			json_decref(agents);
			goto fail;
		}
		json_object_set_new(o, "agents", agents);
		while (j < rows->n_obs && rows->obs[j].endpoint_id < e->endpoint_id)
			j++;
		for (; j < rows->n_obs &&
		       rows->obs[j].endpoint_id == e->endpoint_id; j++) {
			const struct hstate_obs_row *r = &rows->obs[j];
			json_t *a = json_pack(
				"{s:s,s:s,s:s,s:b,s:o,s:f,s:f,s:f,s:b,s:s}",
				"agent", r->agent, "region", r->region,
				"state", hstate_state_name(r->state), "ok", r->ok,
				"rtt_ms", r->rtt_ms >= 0 ? json_real(r->rtt_ms)
				                         : json_null(),
				"ts", r->ts, "seen", r->seen, "since", r->since,
				"fresh", r->fresh, "detail",
				r->detail ? r->detail : "");

			if (!a || json_array_append_new(agents, a) < 0)
				goto fail;
		}
	}
	for (size_t i = 0; i < rows->n_lat; i++) {
		const struct hstate_lat_row *l = &rows->lat[i];
		json_t *o = json_pack("{s:s,s:I,s:f,s:I,s:f}", "region", l->region,
		                      "id", (json_int_t)l->endpoint_id,
		                      "rtt_ms", l->rtt_ms,
		                      "samples", (json_int_t)l->samples,
		                      "updated", l->updated);

		if (!o || json_array_append_new(lat, o) < 0)
			goto fail;
	}
	return doc;
fail:
	json_decref(doc);
	return NULL;
}
