/* cluster/etcd.c - etcd v3 JSON gateway client (see etcd.h). */
#include "cluster/etcd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define ETCD_TIMEOUT_MS_DEFAULT 5000
/* The largest reply a synchronous call accepts (a full range of a big
 * configuration fits many times over). */
#define ETCD_BODY_MAX (256u << 20)
/* The largest single watch response line. */
#define ETCD_WATCH_LINE_MAX (64u << 20)

struct etcd_url {
	char *url;               /* as given, for messages */
	char *host;              /* without brackets */
	char *hosthdr;           /* Host: header */
	int port;
	bool tls;
};

struct etcd {
	struct etcd_url *urls;
	size_t n_urls, cur;
	SSL_CTX *tls;
	int timeout_ms;
	bool unknown;
	char err[640];
};

static void set_err(struct etcd *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void set_err(struct etcd *e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(e->err, sizeof(e->err), fmt, ap);
	va_end(ap);
}

/* ---- base64 and keys --------------------------------------------------- */

char *etcd_b64_encode(const void *data, size_t len)
{
	size_t n = 4 * ((len + 2) / 3) + 1;
	char *s;

	if (len > (size_t)1 << 30 || !(s = malloc(n)))
		return NULL;
	EVP_EncodeBlock((unsigned char *)s, data, (int)len);
	return s;
}

int etcd_b64_decode(const char *s, size_t slen, char **out, size_t *outlen)
{
	size_t pad = 0;
	char *buf;
	int n;

	*out = NULL;
	*outlen = 0;
	if (slen % 4 != 0 || slen > (size_t)1 << 30)
		return -EINVAL;
	/* EVP_DecodeBlock takes '=' anywhere; only the last two may be. */
	for (size_t i = 0; i < slen; i++)
		if (s[i] == '=' && (i + 2 < slen || (i + 1 < slen && s[i + 1] != '=')))
			return -EINVAL;
	if (!(buf = malloc(slen / 4 * 3 + 1)))
		return -ENOMEM;
	if (slen == 0) {
		buf[0] = 0;
		*out = buf;
		return 0;
	}
	n = EVP_DecodeBlock((unsigned char *)buf, (const unsigned char *)s,
	                    (int)slen);
	if (n < 0) {
		free(buf);
		return -EINVAL;
	}
	while (pad < 2 && s[slen - 1 - pad] == '=')
		pad++;
	n -= (int)pad;
	buf[n] = 0;
	*out = buf;
	*outlen = (size_t)n;
	return 0;
}

char *etcd_prefix_end(const char *prefix, size_t len, size_t *outlen)
{
	char *end = malloc(len + 1);
	size_t i;

	if (!end)
		return NULL;
	memcpy(end, prefix, len);
	end[len] = 0;
	for (i = len; i > 0; i--) {
		if ((unsigned char)end[i - 1] < 0xff) {
			end[i - 1]++;
			end[i] = 0;
			*outlen = i;
			return end;
		}
	}
	/* Empty or all 0xff: every key from prefix on ("\0" means that). */
	end[0] = 0;
	*outlen = 1;
	return end;
}

/* ---- JSON helpers ------------------------------------------------------ */

/* An int64 field (a JSON string or number; absent: 0). */
static int64_t j_i64(const json_t *o, const char *name)
{
	const json_t *v = json_object_get(o, name);

	if (json_is_integer(v))
		return (int64_t)json_integer_value(v);
	if (json_is_string(v))
		return strtoll(json_string_value(v), NULL, 10);
	return 0;
}

static uint64_t j_u64(const json_t *o, const char *name)
{
	const json_t *v = json_object_get(o, name);

	if (json_is_integer(v))
		return (uint64_t)json_integer_value(v);
	if (json_is_string(v))
		return strtoull(json_string_value(v), NULL, 10);
	return 0;
}

static int j_set_b64(json_t *o, const char *name, const void *data, size_t len)
{
	char *s = etcd_b64_encode(data, len);

	if (!s || json_object_set_new(o, name, json_string(s)) < 0) {
		free(s);
		return -ENOMEM;
	}
	free(s);
	return 0;
}

static int j_set_i64(json_t *o, const char *name, int64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%" PRId64, v);
	return json_object_set_new(o, name, json_string(buf)) < 0 ? -ENOMEM : 0;
}

/* Decodes a base64 field into *out and *len ("" when absent). */
static int j_b64(const json_t *o, const char *name, char **out, size_t *len)
{
	const json_t *v = json_object_get(o, name);

	if (!v) {
		*out = calloc(1, 1);
		*len = 0;
		return *out ? 0 : -ENOMEM;
	}
	if (!json_is_string(v))
		return -EINVAL;
	return etcd_b64_decode(json_string_value(v), json_string_length(v),
	                       out, len);
}

static void kv_fini(struct etcd_kv *kv)
{
	free(kv->key);
	free(kv->value);
	memset(kv, 0, sizeof(*kv));
}

static int kv_parse(const json_t *o, struct etcd_kv *kv)
{
	int rc;

	memset(kv, 0, sizeof(*kv));
	if (!json_is_object(o))
		return -EINVAL;
	if ((rc = j_b64(o, "key", &kv->key, &kv->key_len)) < 0 ||
	    (rc = j_b64(o, "value", &kv->value, &kv->value_len)) < 0) {
		kv_fini(kv);
		return rc;
	}
	kv->create_revision = j_i64(o, "create_revision");
	kv->mod_revision = j_i64(o, "mod_revision");
	kv->version = j_i64(o, "version");
	kv->lease = j_i64(o, "lease");
	return 0;
}

void etcd_range_fini(struct etcd_range *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++)
		kv_fini(&r->kvs[i]);
	free(r->kvs);
	memset(r, 0, sizeof(*r));
}

/* A RangeResponse (its header, kvs, more, count) into r. */
static int range_parse(const json_t *o, struct etcd_range *r)
{
	const json_t *kvs = json_object_get(o, "kvs");
	size_t n = json_is_array(kvs) ? json_array_size(kvs) : 0;
	int rc = 0;

	memset(r, 0, sizeof(*r));
	r->revision = j_i64(json_object_get(o, "header"), "revision");
	r->count = j_i64(o, "count");
	r->more = json_is_true(json_object_get(o, "more"));
	if (n == 0)
		return 0;
	if (!(r->kvs = calloc(n, sizeof(*r->kvs))))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if ((rc = kv_parse(json_array_get(kvs, i), &r->kvs[i])) < 0) {
			etcd_range_fini(r);
			return rc;
		}
		r->n++;
	}
	return 0;
}

/* ---- client ------------------------------------------------------------ */

static int url_parse(const char *url, struct etcd_url *u)
{
	struct evhttp_uri *p = evhttp_uri_parse(url);
	const char *scheme, *h, *path;
	int port, rc = -EINVAL;
	char buf[300];

	memset(u, 0, sizeof(*u));
	if (!p)
		return -EINVAL;
	scheme = evhttp_uri_get_scheme(p);
	h = evhttp_uri_get_host(p);
	port = evhttp_uri_get_port(p);
	path = evhttp_uri_get_path(p);
	if (!scheme || (strcasecmp(scheme, "http") != 0 &&
	                strcasecmp(scheme, "https") != 0) || !h || !*h ||
	    strlen(h) > 255 || port == 0 || port > 65535 ||
	    (path && *path && strcmp(path, "/") != 0) ||
	    evhttp_uri_get_query(p) || evhttp_uri_get_fragment(p) ||
	    evhttp_uri_get_userinfo(p))
		goto out;
	u->tls = strcasecmp(scheme, "https") == 0;
	u->port = port < 0 ? 2379 : port;
	if (h[0] == '[' && h[strlen(h) - 1] == ']')
		snprintf(buf, sizeof(buf), "%.*s", (int)strlen(h) - 2, h + 1);
	else
		snprintf(buf, sizeof(buf), "%s", h);
	u->host = strdup(buf);
	snprintf(buf, sizeof(buf), "%s:%d", h, u->port);
	u->hosthdr = strdup(buf);
	u->url = strdup(url);
	if (!u->host || !u->hosthdr || !u->url) {
		rc = -ENOMEM;
		goto out;
	}
	rc = 0;
out:
	if (rc < 0) {
		free(u->host);
		free(u->hosthdr);
		free(u->url);
		memset(u, 0, sizeof(*u));
	}
	evhttp_uri_free(p);
	return rc;
}

static SSL_CTX *tls_new(const struct etcd_config *cfg, char *err, size_t errlen)
{
	SSL_CTX *c = SSL_CTX_new(TLS_client_method());
	const char *what = NULL, *file = NULL;
	char e[160];

	if (!c) {
		snprintf(err, errlen, "etcd: tls: cannot create a context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
	if (cfg->ca_file ? SSL_CTX_load_verify_locations(c, cfg->ca_file, NULL) != 1
	                 : SSL_CTX_set_default_verify_paths(c) != 1) {
		what = "CA file";
		file = cfg->ca_file ? cfg->ca_file : "(system store)";
	} else if (cfg->cert_file &&
	           SSL_CTX_use_certificate_chain_file(c, cfg->cert_file) != 1) {
		what = "certificate";
		file = cfg->cert_file;
	} else if (cfg->key_file &&
	           (SSL_CTX_use_PrivateKey_file(c, cfg->key_file,
	                                        SSL_FILETYPE_PEM) != 1 ||
	            SSL_CTX_check_private_key(c) != 1)) {
		what = "key";
		file = cfg->key_file;
	}
	if (what) {
		ERR_error_string_n(ERR_peek_last_error(), e, sizeof(e));
		ERR_clear_error();
		snprintf(err, errlen, "etcd: tls %s %s: %s", what, file, e);
		SSL_CTX_free(c);
		return NULL;
	}
	SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
	return c;
}

struct etcd *etcd_new(const struct etcd_config *cfg, char *err, size_t errlen)
{
	struct etcd *e = calloc(1, sizeof(*e));
	bool tls = false;

	if (!e) {
		snprintf(err, errlen, "etcd: out of memory");
		return NULL;
	}
	if (cfg->n_urls == 0) {
		snprintf(err, errlen, "etcd: no URL given");
		goto fail;
	}
	if (!(e->urls = calloc(cfg->n_urls, sizeof(*e->urls)))) {
		snprintf(err, errlen, "etcd: out of memory");
		goto fail;
	}
	for (size_t i = 0; i < cfg->n_urls; i++) {
		if (url_parse(cfg->urls[i], &e->urls[i]) < 0) {
			snprintf(err, errlen, "etcd: bad URL '%s' (want "
			         "http://HOST:PORT or https://HOST:PORT)",
			         cfg->urls[i]);
			goto fail;
		}
		e->n_urls++;
		tls |= e->urls[i].tls;
	}
	if (tls && !(e->tls = tls_new(cfg, err, errlen)))
		goto fail;
	e->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms
	                                    : ETCD_TIMEOUT_MS_DEFAULT;
	return e;
fail:
	etcd_free(e);
	return NULL;
}

void etcd_free(struct etcd *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->n_urls; i++) {
		free(e->urls[i].url);
		free(e->urls[i].host);
		free(e->urls[i].hosthdr);
	}
	free(e->urls);
	if (e->tls)
		SSL_CTX_free(e->tls);
	free(e);
}

const char *etcd_error(const struct etcd *e) { return e->err; }
bool etcd_outcome_unknown(const struct etcd *e) { return e->unknown; }
const char *etcd_current_url(const struct etcd *e) { return e->urls[e->cur].url; }
size_t etcd_url_count(const struct etcd *e) { return e->n_urls; }
const char *etcd_url(const struct etcd *e, size_t i)
{
	return i < e->n_urls ? e->urls[i].url : NULL;
}

/* A connection to member u on base (plain or TLS with the member's name
 * or address checked against its certificate). NULL on no memory. */
static struct evhttp_connection *conn_new(struct etcd *e, struct event_base *base,
                                          const struct etcd_url *u, int timeout_ms)
{
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	struct evhttp_connection *c = NULL;
	struct bufferevent *bev;
	struct in6_addr a6;
	SSL *ssl;

	if (!u->tls) {
		c = evhttp_connection_base_new(base, NULL, u->host,
		                               (unsigned short)u->port);
	} else if ((ssl = SSL_new(e->tls)) != NULL) {
		if (inet_pton(AF_INET, u->host, &a6) == 1 ||
		    inet_pton(AF_INET6, u->host, &a6) == 1) {
			X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), u->host);
		} else {
			SSL_set_tlsext_host_name(ssl, u->host);
			X509_VERIFY_PARAM_set_hostflags(SSL_get0_param(ssl),
				X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
			X509_VERIFY_PARAM_set1_host(SSL_get0_param(ssl), u->host, 0);
		}
		bev = bufferevent_openssl_socket_new(base, -1, ssl,
		                                     BUFFEREVENT_SSL_CONNECTING,
		                                     BEV_OPT_CLOSE_ON_FREE |
		                                     BEV_OPT_DEFER_CALLBACKS);
		if (!bev) {
			SSL_free(ssl);
			return NULL;
		}
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
		c = evhttp_connection_base_bufferevent_new(base, NULL, bev, u->host,
		                                           (unsigned short)u->port);
		if (!c)
			bufferevent_free(bev);
	}
	if (!c)
		return NULL;
	evhttp_connection_set_timeout_tv(c, &tv);
	evhttp_connection_set_retries(c, 0);
	return c;
}

static struct evhttp_request *req_new(const struct etcd_url *u,
                                      void (*cb)(struct evhttp_request *, void *),
                                      void *arg, const char *body, bool hasleader)
{
	struct evhttp_request *req = evhttp_request_new(cb, arg);
	struct evkeyvalq *h;

	if (!req)
		return NULL;
	h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Host", u->hosthdr);
	evhttp_add_header(h, "Content-Type", "application/json");
	evhttp_add_header(h, "User-Agent", "gslb");
	if (hasleader)
		evhttp_add_header(h, "Grpc-Metadata-hasleader", "true");
	evbuffer_add(evhttp_request_get_output_buffer(req), body, strlen(body));
	return req;
}

static const char *req_err_text(enum evhttp_request_error x)
{
	switch (x) {
	case EVREQ_HTTP_TIMEOUT: return "timed out";
	case EVREQ_HTTP_EOF: return "connection closed";
	case EVREQ_HTTP_INVALID_HEADER: return "invalid reply";
	case EVREQ_HTTP_BUFFER_ERROR: return "connection error";
	case EVREQ_HTTP_REQUEST_CANCEL: return "canceled";
	case EVREQ_HTTP_DATA_TOO_LONG: return "reply too long";
	}
	return "error";
}

/* Why a TLS connection failed (a certificate not verified, an alert from
 * the member), into buf; false when TLS did not fail (or not TLS). */
static bool tls_reason(struct evhttp_connection *conn, char *buf, size_t len)
{
	struct bufferevent *bev = conn ? evhttp_connection_get_bufferevent(conn)
	                               : NULL;
	SSL *ssl = bev ? bufferevent_openssl_get_ssl(bev) : NULL;
	unsigned long oe;
	long v;

	if (!ssl)
		return false;
	v = SSL_get_verify_result(ssl);
	oe = bufferevent_get_openssl_error(bev);
	if (v != X509_V_OK) {
		snprintf(buf, len, "TLS: the member's certificate: %s",
		         X509_verify_cert_error_string(v));
	} else if (oe) {
		char e[200];

		ERR_error_string_n(oe, e, sizeof(e));
		snprintf(buf, len, "TLS: %s", e);
	} else if (!SSL_is_init_finished(ssl)) {
		snprintf(buf, len, "TLS: handshake failed");
	} else {
		return false;
	}
	ERR_clear_error();
	return true;
}

/* One synchronous request. */
struct call {
	struct event_base *base;
	struct evhttp_connection *conn;
	bool done, reached;
	enum evhttp_request_error rerr;
	int code;
	char *body;
	size_t body_len;
	char tls[256];           /* why TLS failed ("" when it did not) */
};

static void call_error(enum evhttp_request_error x, void *arg)
{
	struct call *c = arg;

	/* libevent reports errors after the connection was made here; a
	 * failed connect only completes the request with no status. A TLS
	 * failure means the request was not taken either. */
	c->reached = !tls_reason(c->conn, c->tls, sizeof(c->tls));
	c->rerr = x;
}

static void call_done(struct evhttp_request *req, void *arg)
{
	struct call *c = arg;

	c->done = true;
	if (req && (c->code = evhttp_request_get_response_code(req)) > 0) {
		struct evbuffer *b = evhttp_request_get_input_buffer(req);
		size_t n = evbuffer_get_length(b);

		c->reached = true;
		if ((c->body = malloc(n + 1)) != NULL) {
			evbuffer_remove(b, c->body, n);
			c->body[n] = 0;
			c->body_len = n;
		}
	}
	event_base_loopbreak(c->base);
}

/* What went wrong in a non-200 reply: the gateway's {"error", "code",
 * "message"} or the raw text. grpc code: *gcode (0 unknown). */
static void reply_error(const char *body, char *msg, size_t msglen, int *gcode)
{
	json_t *j = body ? json_loads(body, 0, NULL) : NULL;
	const char *m = j ? json_string_value(json_object_get(j, "message")) : NULL;

	if (!m && j)
		m = json_string_value(json_object_get(j, "error"));
	*gcode = j ? (int)json_integer_value(json_object_get(j, "code")) : 0;
	snprintf(msg, msglen, "%.300s", m ? m : body ? body : "");
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	json_decref(j);
}

/* Is an etcd error message one where a write may have been committed? */
static bool msg_unknown(const char *m)
{
	return strstr(m, "request timed out") || strstr(m, "leader changed") ||
	       strstr(m, "timed out due to") || strstr(m, "connection lost") ||
	       strstr(m, "server stopped");
}

enum { TRY_NEXT = 1 };

/* POSTs body to path at member i. 0 with *reply (the parsed object), or a
 * negative errno with e->err set; *next: worth trying another member. */
static int post_one(struct etcd *e, size_t i, const char *path, const char *body,
                    bool write, json_t **reply, bool *next)
{
	const struct etcd_url *u = &e->urls[i];
	struct call c = { 0 };
	struct evhttp_connection *conn = NULL;
	struct evhttp_request *req;
	char msg[320];
	int rc, gcode;

	*reply = NULL;
	*next = false;
	if (!(c.base = event_base_new()) ||
	    !(c.conn = conn = conn_new(e, c.base, u, e->timeout_ms))) {
		set_err(e, "etcd %s: out of memory", u->url);
		rc = -ENOMEM;
		goto out;
	}
	evhttp_connection_set_max_body_size(conn, ETCD_BODY_MAX);
	if (!(req = req_new(u, call_done, &c, body, write))) {
		set_err(e, "etcd %s: out of memory", u->url);
		rc = -ENOMEM;
		goto out;
	}
	evhttp_request_set_error_cb(req, call_error);
	if (evhttp_make_request(conn, req, EVHTTP_REQ_POST, path) < 0) {
		set_err(e, "etcd %s: cannot send %s", u->url, path);
		*next = true;
		rc = -EIO;
		goto out;
	}
	while (!c.done && event_base_dispatch(c.base) == 0)
		;
	if (!c.reached && c.tls[0]) {
		set_err(e, "etcd %s: %s (%s)", u->url, c.tls, path);
		*next = true;
		rc = -ECONNREFUSED;
		goto out;
	}
	if (!c.reached) {
		tls_reason(conn, c.tls, sizeof(c.tls));
		set_err(e, "etcd %s: cannot connect%s%s (%s)", u->url,
		        c.tls[0] ? ": " : "", c.tls, path);
		*next = true;
		rc = -ECONNREFUSED;
		goto out;
	}
	if (c.code <= 0) {
		set_err(e, "etcd %s: %s: %s", u->url, path, req_err_text(c.rerr));
		e->unknown = write;
		*next = !write;
		rc = c.rerr == EVREQ_HTTP_TIMEOUT ? -ETIMEDOUT : -EIO;
		goto out;
	}
	if (c.code != 200) {
		reply_error(c.body, msg, sizeof(msg), &gcode);
		set_err(e, "etcd %s: %s: HTTP %d: %s", u->url, path, c.code, msg);
		if (strstr(msg, "compacted")) {
			rc = -ECANCELED;
		} else if (gcode == 3 || c.code == 400) {
			rc = -EINVAL;   /* InvalidArgument: the same everywhere */
		} else if (msg_unknown(msg)) {
			e->unknown = write;
			*next = !write;
			rc = -ETIMEDOUT;
		} else {
			/* no leader, not ready, unavailable: nothing done */
			*next = true;
			rc = -EAGAIN;
		}
		goto out;
	}
	if (!c.body || !(*reply = json_loads(c.body, 0, NULL)) ||
	    !json_is_object(*reply)) {
		set_err(e, "etcd %s: %s: reply is not a JSON object", u->url, path);
		json_decref(*reply);
		*reply = NULL;
		e->unknown = write;
		rc = -EPROTO;
		goto out;
	}
	rc = 0;
out:
	if (conn)
		evhttp_connection_free(conn);
	if (c.base)
		event_base_free(c.base);
	free(c.body);
	return rc;
}

/* POSTs body to path at the current member, then the others in turn. */
static int post(struct etcd *e, const char *path, json_t *body, bool write,
                json_t **reply)
{
	char *text = json_dumps(body, JSON_COMPACT);
	int rc = -ENOMEM;
	bool next;

	e->err[0] = 0;
	e->unknown = false;
	*reply = NULL;
	if (!text) {
		set_err(e, "etcd: out of memory");
		return -ENOMEM;
	}
	for (size_t k = 0; k < e->n_urls; k++) {
		size_t i = (e->cur + k) % e->n_urls;
		char prev[sizeof(e->err)];

		snprintf(prev, sizeof(prev), "%s", e->err);
		rc = post_one(e, i, path, text, write, reply, &next);
		if (rc == 0) {
			e->cur = i;
			e->err[0] = 0;
			break;
		}
		if (prev[0]) {
			/* every member's reason, in the order tried */
			char cur[sizeof(e->err)];

			snprintf(cur, sizeof(cur), "%s", e->err);
			set_err(e, "%.300s; %.300s", prev, cur);
		}
		if (!next)
			break;
	}
	free(text);
	return rc;
}

static int range_body(json_t *o, const char *key, bool prefix)
{
	size_t klen = strlen(key), elen;
	char *end;
	int rc;

	if ((rc = j_set_b64(o, "key", key, klen)) < 0 || !prefix)
		return rc;
	if (!(end = etcd_prefix_end(key, klen, &elen)))
		return -ENOMEM;
	rc = j_set_b64(o, "range_end", end, elen);
	free(end);
	return rc;
}

static int range_min(struct etcd *e, const char *key, bool prefix,
                     int64_t rev, int64_t limit, int64_t min_mod,
                     struct etcd_range *out)
{
	json_t *b = json_object(), *r = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!b || (rc = range_body(b, key, prefix)) < 0 ||
	    (rev > 0 && (rc = j_set_i64(b, "revision", rev)) < 0) ||
	    (limit > 0 && (rc = j_set_i64(b, "limit", limit)) < 0) ||
	    (min_mod > 0 &&
	     (rc = j_set_i64(b, "min_mod_revision", min_mod)) < 0)) {
		rc = -ENOMEM;
		goto out;
	}
	if ((rc = post(e, "/v3/kv/range", b, false, &r)) < 0)
		goto out;
	if ((rc = range_parse(r, out)) < 0)
		set_err(e, "etcd %s: range: bad reply", etcd_current_url(e));
out:
	json_decref(b);
	json_decref(r);
	return rc;
}

int etcd_timeout(struct etcd *e, int timeout_ms)
{
	int prev = e->timeout_ms;

	if (timeout_ms > 0)
		e->timeout_ms = timeout_ms;
	return prev;
}

int etcd_range(struct etcd *e, const char *key, bool prefix, int64_t rev,
               int64_t limit, struct etcd_range *out)
{
	return range_min(e, key, prefix, rev, limit, 0, out);
}

int etcd_range_since(struct etcd *e, const char *key, bool prefix,
                     int64_t rev, int64_t min_mod, struct etcd_range *out)
{
	return range_min(e, key, prefix, rev, 0, min_mod, out);
}

int etcd_put(struct etcd *e, const char *key, const void *value, size_t len,
             int64_t lease, int64_t *rev)
{
	json_t *b = json_object(), *r = NULL;
	int rc;

	if (!b || (rc = j_set_b64(b, "key", key, strlen(key))) < 0 ||
	    (rc = j_set_b64(b, "value", value, len)) < 0 ||
	    (lease && (rc = j_set_i64(b, "lease", lease)) < 0)) {
		rc = -ENOMEM;
		goto out;
	}
	if ((rc = post(e, "/v3/kv/put", b, true, &r)) < 0)
		goto out;
	if (rev)
		*rev = j_i64(json_object_get(r, "header"), "revision");
out:
	json_decref(b);
	json_decref(r);
	return rc;
}

int etcd_delete(struct etcd *e, const char *key, bool prefix,
                int64_t *deleted, int64_t *rev)
{
	json_t *b = json_object(), *r = NULL;
	int rc;

	if (!b || (rc = range_body(b, key, prefix)) < 0) {
		rc = -ENOMEM;
		goto out;
	}
	if ((rc = post(e, "/v3/kv/deleterange", b, true, &r)) < 0)
		goto out;
	if (deleted)
		*deleted = j_i64(r, "deleted");
	if (rev)
		*rev = j_i64(json_object_get(r, "header"), "revision");
out:
	json_decref(b);
	json_decref(r);
	return rc;
}

static json_t *cmp_json(const struct etcd_cmp *c)
{
	static const char *const targets[] = { "VERSION", "CREATE", "MOD",
	                                       "VALUE" };
	static const char *const results[] = { "EQUAL", "GREATER", "LESS",
	                                       "NOT_EQUAL" };
	static const char *const fields[] = { "version", "create_revision",
	                                      "mod_revision", "value" };
	json_t *o = json_object();
	int rc;

	if (!o || json_object_set_new(o, "target",
	                              json_string(targets[c->target])) < 0 ||
	    json_object_set_new(o, "result", json_string(results[c->result])) < 0 ||
	    j_set_b64(o, "key", c->key, strlen(c->key)) < 0)
		goto fail;
	if (c->target == ETCD_CMP_VALUE)
		rc = j_set_b64(o, "value", c->value, c->value_len);
	else
		rc = j_set_i64(o, fields[c->target], c->num);
	if (rc < 0)
		goto fail;
	return o;
fail:
	json_decref(o);
	return NULL;
}

static json_t *op_json(const struct etcd_op *op)
{
	json_t *o = json_object(), *inner = json_object();
	const char *name = op->type == ETCD_OP_PUT ? "request_put"
	                 : op->type == ETCD_OP_DELETE ? "request_delete_range"
	                 : "request_range";
	int rc;

	if (!o || !inner)
		goto fail;
	if (op->type == ETCD_OP_PUT) {
		rc = j_set_b64(inner, "key", op->key, strlen(op->key));
		if (rc == 0)
			rc = j_set_b64(inner, "value", op->value, op->value_len);
		if (rc == 0 && op->lease)
			rc = j_set_i64(inner, "lease", op->lease);
	} else {
		rc = range_body(inner, op->key, op->prefix);
	}
	if (rc < 0 || json_object_set_new(o, name, inner) < 0) {
		inner = NULL;
		goto fail;
	}
	return o;
fail:
	json_decref(inner);
	json_decref(o);
	return NULL;
}

void etcd_txn_result_fini(struct etcd_txn_result *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_ranges; i++)
		etcd_range_fini(&r->ranges[i]);
	free(r->ranges);
	memset(r, 0, sizeof(*r));
}

int etcd_txn(struct etcd *e, const struct etcd_cmp *cmps, size_t n_cmps,
             const struct etcd_op *success, size_t n_success,
             const struct etcd_op *failure, size_t n_failure,
             struct etcd_txn_result *out)
{
	json_t *b = json_object(), *jc = json_array(), *js = json_array();
	json_t *jf = json_array(), *r = NULL, *resp;
	int rc = -ENOMEM;

	if (out)
		memset(out, 0, sizeof(*out));
	if (!b || !jc || !js || !jf)
		goto out;
	for (size_t i = 0; i < n_cmps; i++)
		if (json_array_append_new(jc, cmp_json(&cmps[i])) < 0)
			goto out;
	for (size_t i = 0; i < n_success; i++)
		if (json_array_append_new(js, op_json(&success[i])) < 0)
			goto out;
	for (size_t i = 0; i < n_failure; i++)
		if (json_array_append_new(jf, op_json(&failure[i])) < 0)
			goto out;
	if (json_object_set(b, "compare", jc) < 0 ||
	    json_object_set(b, "success", js) < 0 ||
	    json_object_set(b, "failure", jf) < 0)
		goto out;
	if ((rc = post(e, "/v3/kv/txn", b, true, &r)) < 0)
		goto out;
	if (!out)
		goto out;
	out->succeeded = json_is_true(json_object_get(r, "succeeded"));
	out->revision = j_i64(json_object_get(r, "header"), "revision");
	resp = json_object_get(r, "responses");
	if (json_is_array(resp) && json_array_size(resp) > 0) {
		size_t n = json_array_size(resp);

		if (!(out->ranges = calloc(n, sizeof(*out->ranges)))) {
			rc = -ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < n; i++) {
			json_t *rr = json_object_get(json_array_get(resp, i),
			                             "response_range");

			if (rr && (rc = range_parse(rr, &out->ranges[i])) < 0) {
				set_err(e, "etcd %s: txn: bad reply",
				        etcd_current_url(e));
				out->n_ranges = i;
				goto out;
			}
		}
		out->n_ranges = n;
	}
out:
	if (rc == -ENOMEM && !e->err[0])
		set_err(e, "etcd: out of memory");
	if (rc < 0 && out)
		etcd_txn_result_fini(out);
	json_decref(jc);
	json_decref(js);
	json_decref(jf);
	json_decref(b);
	json_decref(r);
	return rc;
}

int etcd_lease_grant(struct etcd *e, int64_t ttl, int64_t *id, int64_t *granted)
{
	json_t *b = json_object(), *r = NULL;
	int rc;

	if (!b || j_set_i64(b, "TTL", ttl) < 0) {
		rc = -ENOMEM;
		goto out;
	}
	if ((rc = post(e, "/v3/lease/grant", b, true, &r)) < 0)
		goto out;
	if (id)
		*id = j_i64(r, "ID");
	if (granted)
		*granted = j_i64(r, "TTL");
out:
	json_decref(b);
	json_decref(r);
	return rc;
}

int etcd_lease_keepalive(struct etcd *e, int64_t id, int64_t *ttl)
{
	json_t *b = json_object(), *r = NULL, *res;
	int64_t t;
	int rc;

	if (!b || j_set_i64(b, "ID", id) < 0) {
		rc = -ENOMEM;
		goto out;
	}
	/* A stream through the gateway: one request, one {"result": ...}. */
	if ((rc = post(e, "/v3/lease/keepalive", b, false, &r)) < 0)
		goto out;
	res = json_object_get(r, "result");
	t = j_i64(res ? res : r, "TTL");
	if (ttl)
		*ttl = t;
	if (t <= 0) {
		set_err(e, "etcd %s: lease %" PRIx64 " expired",
		        etcd_current_url(e), (uint64_t)id);
		rc = -ENOENT;
	}
out:
	json_decref(b);
	json_decref(r);
	return rc;
}

int etcd_lease_revoke(struct etcd *e, int64_t id)
{
	json_t *b = json_object(), *r = NULL;
	int rc;

	if (!b || j_set_i64(b, "ID", id) < 0) {
		rc = -ENOMEM;
		goto out;
	}
	rc = post(e, "/v3/lease/revoke", b, true, &r);
out:
	json_decref(b);
	json_decref(r);
	return rc;
}

int etcd_status(struct etcd *e, int64_t *revision, uint64_t *leader,
                uint64_t *member)
{
	json_t *b = json_object(), *r = NULL, *h;
	int rc;

	if (!b) {
		set_err(e, "etcd: out of memory");
		return -ENOMEM;
	}
	if ((rc = post(e, "/v3/maintenance/status", b, false, &r)) < 0)
		goto out;
	h = json_object_get(r, "header");
	if (revision)
		*revision = j_i64(h, "revision");
	if (leader)
		*leader = j_u64(r, "leader");
	if (member)
		*member = j_u64(h, "member_id");
out:
	json_decref(b);
	json_decref(r);
	return rc;
}

/* ---- watch ------------------------------------------------------------- */

struct etcd_watch {
	struct etcd *e;
	size_t url;
	struct evhttp_connection *conn;
	struct evbuffer *acc;    /* bytes of the current line */
	etcd_watch_cb cb;
	void *arg;
	bool ended;
	int code;
	enum evhttp_request_error rerr;
	bool rerr_set;
	char tls[256];           /* why TLS failed ("" when it did not) */
};

static void watch_end(struct etcd_watch *w, enum etcd_watch_kind kind,
                      int64_t compact, const char *msg)
{
	struct etcd_watch_resp r = { .kind = kind, .compact_revision = compact,
	                             .message = msg };

	if (w->ended)
		return;
	w->ended = true;
	w->cb(&r, w->arg);
}

/* One response line of the stream. */
static void watch_line(struct etcd_watch *w, const char *line, size_t len)
{
	json_t *j = json_loadb(line, len, 0, NULL), *res, *evs;
	struct etcd_event *events = NULL;
	struct etcd_watch_resp r = { 0 };
	char msg[640];
	size_t n = 0;
	int gcode;

	if (!j || !json_is_object(j)) {
		snprintf(msg, sizeof(msg), "etcd %s: watch: bad response line",
		         w->e->urls[w->url].url);
		watch_end(w, ETCD_WATCH_CLOSED, 0, msg);
		goto out;
	}
	if (!(res = json_object_get(j, "result"))) {
		const json_t *err = json_object_get(j, "error");
		char *t = json_dumps(err ? err : j, JSON_COMPACT);
		char m[320];

		reply_error(t, m, sizeof(m), &gcode);
		free(t);
		snprintf(msg, sizeof(msg), "etcd %s: watch: %.320s",
		         w->e->urls[w->url].url, m);
		watch_end(w, ETCD_WATCH_CLOSED, 0, msg);
		goto out;
	}
	r.revision = j_i64(json_object_get(res, "header"), "revision");
	if ((r.compact_revision = j_i64(res, "compact_revision")) > 0) {
		snprintf(msg, sizeof(msg), "etcd %s: watch: revision compacted "
		         "(oldest kept: %" PRId64 ")", w->e->urls[w->url].url,
		         r.compact_revision);
		watch_end(w, ETCD_WATCH_COMPACTED, r.compact_revision, msg);
		goto out;
	}
	if (json_is_true(json_object_get(res, "canceled"))) {
		const char *why = json_string_value(json_object_get(res,
		                                                    "cancel_reason"));

		snprintf(msg, sizeof(msg), "etcd %s: watch canceled%s%.200s",
		         w->e->urls[w->url].url, why ? ": " : "", why ? why : "");
		watch_end(w, ETCD_WATCH_CLOSED, 0, msg);
		goto out;
	}
	evs = json_object_get(res, "events");
	if (json_is_array(evs) && json_array_size(evs) > 0) {
		size_t m = json_array_size(evs);

		if (!(events = calloc(m, sizeof(*events)))) {
			watch_end(w, ETCD_WATCH_CLOSED, 0, "etcd: out of memory");
			goto out;
		}
		for (; n < m; n++) {
			const json_t *ev = json_array_get(evs, n);
			const char *type = json_string_value(json_object_get(ev,
			                                                     "type"));

			events[n].type = type && strcmp(type, "DELETE") == 0
			                 ? ETCD_EVENT_DELETE : ETCD_EVENT_PUT;
			if (kv_parse(json_object_get(ev, "kv"), &events[n].kv) < 0) {
				snprintf(msg, sizeof(msg), "etcd %s: watch: bad "
				         "event", w->e->urls[w->url].url);
				watch_end(w, ETCD_WATCH_CLOSED, 0, msg);
				goto out;
			}
		}
		r.kind = ETCD_WATCH_EVENTS;
		r.events = events;
		r.n_events = n;
		w->cb(&r, w->arg);
	} else if (json_is_true(json_object_get(res, "created"))) {
		r.kind = ETCD_WATCH_CREATED;
		w->cb(&r, w->arg);
	}
	/* else: a progress notification; nothing to do */
out:
	for (size_t i = 0; i < n; i++)
		kv_fini(&events[i].kv);
	free(events);
	json_decref(j);
}

static void watch_chunk(struct evhttp_request *req, void *arg)
{
	struct etcd_watch *w = arg;
	struct evbuffer *in = evhttp_request_get_input_buffer(req);

	evbuffer_add_buffer(w->acc, in);
	if (w->code != 200)
		return;          /* an error reply: read whole at the end */
	while (!w->ended) {
		struct evbuffer_ptr p = evbuffer_search(w->acc, "\n", 1, NULL);
		char *line;

		if (p.pos < 0) {
			if (evbuffer_get_length(w->acc) > ETCD_WATCH_LINE_MAX)
				watch_end(w, ETCD_WATCH_CLOSED, 0,
				          "etcd: watch response too long");
			break;
		}
		line = (char *)evbuffer_pullup(w->acc, p.pos + 1);
		if (p.pos > 0)
			watch_line(w, line, (size_t)p.pos);
		evbuffer_drain(w->acc, (size_t)p.pos + 1);
	}
}

static int watch_headers(struct evhttp_request *req, void *arg)
{
	struct etcd_watch *w = arg;

	w->code = evhttp_request_get_response_code(req);
	return 0;
}

static void watch_error(enum evhttp_request_error x, void *arg)
{
	struct etcd_watch *w = arg;

	w->rerr = x;
	w->rerr_set = true;
	tls_reason(w->conn, w->tls, sizeof(w->tls));
}

static void watch_done(struct evhttp_request *req, void *arg)
{
	struct etcd_watch *w = arg;
	const char *url = w->e->urls[w->url].url;
	char msg[480];

	if (w->ended)
		return;
	if (req && w->code == 0)
		w->code = evhttp_request_get_response_code(req);
	if (req && w->code > 0 && w->code != 200) {
		size_t n = evbuffer_get_length(w->acc);
		char *body = malloc(n + 1), m[320];
		int gcode;

		if (body) {
			evbuffer_remove(w->acc, body, n);
			body[n] = 0;
		}
		reply_error(body, m, sizeof(m), &gcode);
		free(body);
		snprintf(msg, sizeof(msg), "etcd %s: watch: HTTP %d: %s", url,
		         w->code, m);
	} else if (req && w->code == 200) {
		/* a last line without its newline */
		if (evbuffer_get_length(w->acc) > 0) {
			size_t n = evbuffer_get_length(w->acc);

			watch_line(w, (char *)evbuffer_pullup(w->acc, -1), n);
			evbuffer_drain(w->acc, n);
		}
		snprintf(msg, sizeof(msg), "etcd %s: watch: stream ended", url);
	} else if (w->tls[0] || tls_reason(w->conn, w->tls, sizeof(w->tls))) {
		snprintf(msg, sizeof(msg), "etcd %s: watch: %s", url, w->tls);
	} else if (w->rerr_set) {
		snprintf(msg, sizeof(msg), "etcd %s: watch: %s", url,
		         w->rerr == EVREQ_HTTP_TIMEOUT ? "no data (idle timeout)"
		                                       : req_err_text(w->rerr));
	} else {
		snprintf(msg, sizeof(msg), "etcd %s: watch: cannot connect", url);
	}
	watch_end(w, ETCD_WATCH_CLOSED, 0, msg);
}

struct etcd_watch *etcd_watch_start(struct etcd *e, struct event_base *base,
                                    const char *key, bool prefix,
                                    int64_t start_rev, int idle_ms,
                                    bool rotate, etcd_watch_cb cb, void *arg)
{
	struct etcd_watch *w = calloc(1, sizeof(*w));
	json_t *b = json_object(), *cr = json_object();
	struct evhttp_request *req;
	char *text = NULL;

	e->err[0] = 0;
	e->unknown = false;
	if (!w || !b || !cr || !(w->acc = evbuffer_new()))
		goto nomem;
	if (rotate)
		e->cur = (e->cur + 1) % e->n_urls;
	w->e = e;
	w->url = e->cur;
	w->cb = cb;
	w->arg = arg;
	if (range_body(cr, key, prefix) < 0 ||
	    (start_rev > 0 && j_set_i64(cr, "start_revision", start_rev) < 0) ||
	    json_object_set(b, "create_request", cr) < 0 ||
	    !(text = json_dumps(b, JSON_COMPACT)))
		goto nomem;
	/* libevent's default read timeout (50 s) would end an idle stream;
	 * idle_ms 0 means a day. */
	if (!(w->conn = conn_new(e, base, &e->urls[w->url],
	                         idle_ms > 0 ? idle_ms : 86400000)))
		goto nomem;
	if (!(req = req_new(&e->urls[w->url], watch_done, w, text, true)))
		goto nomem;
	evhttp_request_set_chunked_cb(req, watch_chunk);
	evhttp_request_set_header_cb(req, watch_headers);
	evhttp_request_set_error_cb(req, watch_error);
	if (evhttp_make_request(w->conn, req, EVHTTP_REQ_POST, "/v3/watch") < 0) {
		set_err(e, "etcd %s: watch: cannot send", e->urls[w->url].url);
		goto fail;
	}
	json_decref(cr);
	json_decref(b);
	free(text);
	return w;
nomem:
	set_err(e, "etcd: out of memory");
fail:
	json_decref(cr);
	json_decref(b);
	free(text);
	etcd_watch_free(w);
	return NULL;
}

const char *etcd_watch_url(const struct etcd_watch *w)
{
	return w->e->urls[w->url].url;
}

void etcd_watch_free(struct etcd_watch *w)
{
	if (!w)
		return;
	if (w->conn)
		evhttp_connection_free(w->conn);
	if (w->acc)
		evbuffer_free(w->acc);
	free(w);
}
