/* dnsd/api.h - the HTTP API (libevent evhttp) served by dnsd's control
 * thread: the check list and report intake for probe agents, status and
 * metrics. Load time only: every function and callback runs on the thread
 * that runs the event_base given to api_new(). Protocol: health/PROTOCOL.md.
 *
 *   GET  /v1/checks   agent   200 JSON from ops->checks
 *   POST /v1/reports  agent   body <= the report limit, parsed and validated in
 *                             full, then ops->report: 200, 400, 422
 *   GET  /v1/status   -       200 JSON from ops->status
 *   GET  /metrics     -       200 text from ops->metrics
 *   GET  /v1/config   read    200 JSON from ops->config_get (open when the
 *                             only credential is the shared token)
 *   PUT  /v1/config   admin   ops->config_write("config")
 *   POST /v1/flip     admin   ops->config_write("flip")
 *   POST /v1/shift    admin   ops->config_write("shift")
 *   POST /v1/endpoint admin   ops->config_write("endpoint")
 *   *    /v1/services[/...]   ops->config_rest (reads as GET /v1/config,
 *                             writes admin)
 *   anything else     -       ops->page (the status page), else 404
 * Roles (health/cred.h): admin may do everything; agent and read only what
 * is marked (a verified client certificate is an agent credential, see
 * api_set_tls). Missing or unknown token: 401; a known token outside its
 * role, or a certificate naming no known agent: 403; a report naming an
 * agent other than its agent credential's, or one not named by the
 * credentials file: 403. Nothing else happens on any of
 * them. The api_caller handed to writes names the credential. Unknown path 404,
 * known path with another method 405, body too large 413 (also when
 * libevent refuses it: its HTML error pages are rewritten), a Host name
 * not answered 421 (api_set_hosts). Error bodies are JSON: {"error":
 * "text", "field": "results[2].rtt_ms"} (field optional). */
#ifndef DNSD_API_H
#define DNSD_API_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <jansson.h>

#include "common/arena.h"
#include "health/cred.h"
#include "health/hstate.h"

#define API_BODY_MAX    (16 * 1024 * 1024)  /* api_set_max_body defaults */
#define API_REPORT_BODY_MAX (1024 * 1024)
#define API_HEADERS_MAX (16 * 1024)
#define API_RESULTS_MAX 100000
#define API_MAX_CONNS_DEFAULT 512
#define API_TIMEOUT_DEFAULT   10        /* seconds */

struct api;                                     /* opaque */
struct evhttp_request;

/* Who makes a configuration write, and how: recorded in the audit trail
 * (db/audit.h). */
struct api_caller {
	const char *name;       /* the credential's name */
	bool force;             /* ?force=1 or "force": true in the body */
	bool dry_run;           /* ?dry_run=1: plan, write nothing */
};

/* A parsed report; strings and results live in the parser's arena. The
 * results are ready for hstate_report(). */
struct api_report {
	const char *agent;
	const char *region;
	bool has_coords;
	double lat, lon;
	struct hstate_result *results;
	size_t n;
};

struct api_ops {
	/* The check list document; the API takes the reference (decref).
	 * NULL -> 500. */
	json_t *(*checks)(void *ctx);
	/* Applies a validated report. Returns 0 (200), -ENOENT for an
	 * unknown endpoint id (422), -EINVAL (400); other errors 500. err
	 * gets the reason for the error body. */
	int (*report)(void *ctx, const struct api_report *r, char *err,
	              size_t errlen);
	/* Appends the status document (JSON text) to out. 0, or -errno
	 * (500). */
	int (*status)(void *ctx, struct evbuffer *out);
	/* Appends Prometheus text to out. Returns 0 or -errno (500). */
	int (*metrics)(void *ctx, struct evbuffer *out);
	/* GET /v1/config: the whole configuration (db/export.h format;
	 * new reference), or NULL with err (500, or 404 without a store). */
	json_t *(*config_get)(void *ctx, char *err, size_t errlen);
	/* A configuration write, token checked and body parsed: what is
	 * "config" (PUT /v1/config, replace everything), "flip" (POST
	 * /v1/flip {"service", "target"}) or "endpoint" (POST /v1/endpoint
	 * {"service", "target", and any of "drained", "admin", "weight",
	 * "priority"}) or "shift" (POST /v1/shift {"service", "target",
	 * "steps", "every"[, "max_rtt_ms"]} starts a staged shift;
	 * {"service", "action": "abort"|"pause"|"resume"} controls it).
	 * Returns 0 (200), -EINVAL (400), -ENOENT (422), -EEXIST, -EBUSY or
	 * -EAGAIN (409: with --etcd, a conflict), -ETIMEDOUT or -EHOSTDOWN
	 * (503: with --etcd, outcome unknown or etcd unavailable), other
	 * (500); err says why. */
	int (*config_write)(void *ctx, const char *what, const json_t *body,
	                    const struct api_caller *who, char *err,
	                    size_t errlen);
	/* PUT /v1/config[?dry_run=1] when set (else config_write("config")):
	 * imports body (or with dry_run only plans it) and returns the
	 * changes ({"changes": [...]}, db/diff.h objects; new reference), or
	 * NULL with *rc and err as config_write's. */
	json_t *(*config_import)(void *ctx, const json_t *body,
	                         const struct api_caller *who, int *rc,
	                         char *err, size_t errlen);
	/* Any request under /v1/services (dnsd/api_config.h; writes need the
	 * token): method, path as sent, body (NULL: none). Returns the HTTP
	 * status and sets *reply. */
	int (*config_rest)(void *ctx, const char *method, const char *path,
	                   const json_t *body, const struct api_caller *who,
	                   json_t **reply);
	/* Optional: any path not routed above (the status page, dnsd/webui.h,
	 * readable without a token). Returns true when it answered req;
	 * false leaves it to the 404. */
	bool (*page)(void *ctx, struct evhttp_request *req, const char *path);
};

/* Binds evhttp on listen ("127.0.0.1:8053", "[::1]:8053"; port 0 picks a
 * free one, see api_port) and serves until api_free(). token: a shared
 * bearer token with every role that may report as any agent, named
 * "token" (copied; non-empty), or NULL when the credentials come from api_set_creds().
 * ops and ctx are kept (borrowed) and must outlive the api. NULL with a
 * reason in err on failure. */
struct api *api_new(struct event_base *base, const char *listen,
                    const char *token, const struct api_ops *ops, void *ctx,
                    char *err, size_t errlen);
void api_free(struct api *a);                   /* NULL is fine */
/* Replaces the credentials (the api takes ownership; the old set is
 * freed). Requests from now on are checked against creds. */
void api_set_creds(struct api *a, struct cred_set *creds);
/* The API's TLS files (PEM). cert and key: the server's chain and key.
 * client_ca (NULL: none): CAs whose client certificates the server asks
 * for and verifies (chain, validity); one that does not verify fails the
 * handshake, and so does none at all when require. client_crl (NULL:
 * none; needs client_ca): certificate revocation lists of those CAs; a
 * client certificate is then also checked against its CA's list (a list
 * missing or past its next update fails it). */
struct api_tls {
	const char *cert, *key;
	const char *client_ca, *client_crl;
	bool require;
};

/* Whether t makes a TLS server context, as api_set_tls() would build
 * (dnsd --check, and before starting). 0, or -EINVAL with the file and
 * the reason in err. */
int api_tls_check(const struct api_tls *t, char *err, size_t errlen);
/* Makes the API HTTPS only (TLS 1.2 or later) with t; called again
 * (SIGHUP), the files are read again and serve connections accepted from
 * then on. With client_ca, a request without a bearer token is the agent
 * its verified certificate names (cred_cert_agent), if the credentials
 * name that agent (else 403); a token, when sent, decides as without TLS.
 * 0, or -EINVAL / -ENOMEM with err naming the file and OpenSSL's reason;
 * on error the context in force stays. */
int api_set_tls(struct api *a, const struct api_tls *t, char *err,
                size_t errlen);
/* How each agent credential last authenticated, for GET /v1/status:
 * [{"agent", "auth": "token"|"certificate", "at": unix time}], sorted by
 * name, only agents the credentials in force name. New reference or NULL
 * (out of memory). */
json_t *api_agent_auth_json(const struct api *a);
/* Bounds every peer's cost: at most max_conns connections (a new one past
 * the cap closes the longest idle; dnsd/connlimit.h), and a request must
 * be complete within timeout_s of its connection's start or of its
 * previous request, however slowly its bytes arrive. api_new() applies
 * API_MAX_CONNS_DEFAULT and API_TIMEOUT_DEFAULT. 0, -EINVAL (a zero) or
 * -ENOMEM, with err. */
int api_set_limits(struct api *a, unsigned max_conns, unsigned timeout_s,
                   char *err, size_t errlen);
/* Request bodies larger than admin bytes (a request with an admin
 * credential) or others (any other request: agents' reports, no token)
 * are refused with 413 before they are buffered (from the Content-Length,
 * or as a chunked body's chunks pass it): each connection takes one
 * request at a time, whose limit is set once its head is read. api_new()
 * applies API_BODY_MAX and API_REPORT_BODY_MAX. */
void api_set_max_body(struct api *a, size_t admin, size_t others);
/* The Host names answered over plain HTTP besides IP addresses and
 * "localhost" ("*": any; a final dot is ignored); others get 421. With TLS
 * every name is answered. Copied; 0 or -ENOMEM (the old list stays). */
int api_set_hosts(struct api *a, const char *const *hosts, size_t n);
/* The bound port (useful after port 0). */
unsigned api_port(const struct api *a);

/* Parses and validates a report body (JSON, protocol in PROTOCOL.md) into
 * out, allocating from arena. Returns 0, or -EINVAL with err naming the
 * field ("results[3].state: must be up, down or unknown"). No socket
 * needed: unit-testable. */
int api_report_parse(const char *body, size_t len, struct arena *arena,
                     struct api_report *out, char *err, size_t errlen);

/* The health part of a status document, for ops->status and tools:
 * {"endpoints": [{"id", "state", "stale", "since", "reason",
 *   "agents": [{"agent", "region", "state", "ok", "rtt_ms"|null, "ts",
 *               "seen", "since", "fresh", "detail"}]}],
 *  "latency": [{"region", "id", "rtt_ms", "samples", "updated"}]}
 * from hstate_export() rows. New reference or NULL (out of memory). */
json_t *api_health_json(const struct hstate_rows *rows);

/* Sends doc (consumed; NULL gives a 500) as a compact JSON reply with
 * Content-Type application/json and Cache-Control no-store. Control
 * thread; shared by the API's routes and the status page's JSON. */
void api_reply_json(struct evhttp_request *req, int code, const char *reason,
                    json_t *doc);

#endif
