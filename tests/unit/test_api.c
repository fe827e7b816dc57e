/* tests/unit/test_api.c - the report parser of the HTTP API (no socket)
 * and the token helpers it uses. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "dnsd/api.h"
#include "health/token.h"
#include "tests/unit/harness.h"

#define R0 "{\"id\":7,\"state\":\"up\",\"ok\":true,\"rtt_ms\":1.5,\"ts\":1700000000.25,\"detail\":\"200 OK\"}"
#define HEAD "\"agent\":\"eu-1\",\"region\":\"eu\""

static void test_parse_cases(void)
{
	static const struct {
		const char *name, *body;
		int rc;
		const char *err;   /* substring of the error */
	} cases[] = {
		{ "good", "{" HEAD ",\"lat\":50.1,\"lon\":8.6,\"results\":[" R0 "]}", 0, NULL },
		{ "good, no coords, null rtt",
		  "{" HEAD ",\"results\":[{\"id\":1,\"state\":\"unknown\",\"ok\":false,"
		  "\"rtt_ms\":null,\"ts\":5,\"detail\":null}]}", 0, NULL },
		{ "good, empty results", "{" HEAD ",\"results\":[]}", 0, NULL },
		{ "not JSON", "{\"agent\":", -EINVAL, "malformed JSON" },
		{ "array", "[]", -EINVAL, "body: must be a JSON object" },
		{ "duplicate key", "{" HEAD ",\"agent\":\"x\",\"results\":[]}", -EINVAL, "malformed JSON" },
		{ "no agent", "{\"region\":\"eu\",\"results\":[]}", -EINVAL, "agent:" },
		{ "empty agent", "{\"agent\":\"\",\"region\":\"eu\",\"results\":[]}", -EINVAL, "agent:" },
		{ "agent control char", "{\"agent\":\"a\\nb\",\"region\":\"eu\",\"results\":[]}", -EINVAL, "agent:" },
		{ "agent too long", "{\"agent\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
		  "\"region\":\"eu\",\"results\":[]}", -EINVAL, "agent:" },
		{ "region number", "{\"agent\":\"a\",\"region\":5,\"results\":[]}", -EINVAL, "region:" },
		{ "lat without lon", "{" HEAD ",\"lat\":1,\"results\":[]}", -EINVAL, "lon: lat and lon" },
		{ "lat 91", "{" HEAD ",\"lat\":91,\"lon\":0,\"results\":[]}", -EINVAL, "lat: must" },
		{ "lon -181", "{" HEAD ",\"lat\":0,\"lon\":-181,\"results\":[]}", -EINVAL, "lon: must" },
		{ "lat string", "{" HEAD ",\"lat\":\"1\",\"lon\":0,\"results\":[]}", -EINVAL, "lat: must" },
		{ "results missing", "{" HEAD "}", -EINVAL, "results: must be an array" },
		{ "results object", "{" HEAD ",\"results\":{}}", -EINVAL, "results: must be an array" },
		{ "result not object", "{" HEAD ",\"results\":[" R0 ",3]}", -EINVAL, "results[1]: must be an object" },
		{ "id negative", "{" HEAD ",\"results\":[{\"id\":-1,\"state\":\"up\",\"ok\":true,\"ts\":1}]}",
		  -EINVAL, "results[0].id" },
		{ "id too big", "{" HEAD ",\"results\":[{\"id\":4294967296,\"state\":\"up\",\"ok\":true,\"ts\":1}]}",
		  -EINVAL, "results[0].id" },
		{ "id real", "{" HEAD ",\"results\":[{\"id\":1.5,\"state\":\"up\",\"ok\":true,\"ts\":1}]}",
		  -EINVAL, "results[0].id" },
		{ "bad state", "{" HEAD ",\"results\":[{\"id\":1,\"state\":\"UP\",\"ok\":true,\"ts\":1}]}",
		  -EINVAL, "results[0].state" },
		{ "ok not bool", "{" HEAD ",\"results\":[{\"id\":1,\"state\":\"up\",\"ok\":1,\"ts\":1}]}",
		  -EINVAL, "results[0].ok" },
		{ "rtt negative", "{" HEAD ",\"results\":[{\"id\":1,\"state\":\"up\",\"ok\":true,\"rtt_ms\":-2,\"ts\":1}]}",
		  -EINVAL, "results[0].rtt_ms" },
		{ "rtt huge", "{" HEAD ",\"results\":[{\"id\":1,\"state\":\"up\",\"ok\":true,\"rtt_ms\":1e9,\"ts\":1}]}",
		  -EINVAL, "results[0].rtt_ms" },
		{ "ts missing", "{" HEAD ",\"results\":[{\"id\":1,\"state\":\"up\",\"ok\":true}]}",
		  -EINVAL, "results[0].ts" },
		{ "ts zero", "{" HEAD ",\"results\":[{\"id\":1,\"state\":\"up\",\"ok\":true,\"ts\":0}]}",
		  -EINVAL, "results[0].ts" },
		{ "detail number", "{" HEAD ",\"results\":[" R0 ",{\"id\":1,\"state\":\"up\",\"ok\":true,\"ts\":1,\"detail\":4}]}",
		  -EINVAL, "results[1].detail" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct arena a;
		struct api_report r;
		char err[256] = "";
		int rc;

		arena_init(&a);
		rc = api_report_parse(cases[i].body, strlen(cases[i].body), &a,
		                      &r, err, sizeof(err));
		CHECK(rc == cases[i].rc, "%s: rc %d, want %d (%s)", cases[i].name,
		      rc, cases[i].rc, err);
		if (cases[i].err)
			CHECK(strstr(err, cases[i].err) != NULL,
			      "%s: error '%s' lacks '%s'", cases[i].name, err,
			      cases[i].err);
		if (rc < 0)
			CHECK(r.n == 0 && r.results == NULL, "%s: results left",
			      cases[i].name);
		arena_fini(&a);
	}
}

static void test_parse_values(void)
{
	const char *body = "{" HEAD ",\"lat\":50.1,\"lon\":8.6,\"results\":[" R0
	                   ",{\"id\":9,\"state\":\"down\",\"ok\":false,\"ts\":2}]}";
	struct arena a;
	struct api_report r;
	char err[256] = "";

	arena_init(&a);
	CHECK(api_report_parse(body, strlen(body), &a, &r, err, sizeof(err)) == 0,
	      "values: %s", err);
	CHECK(strcmp(r.agent, "eu-1") == 0 && strcmp(r.region, "eu") == 0,
	      "values: names");
	CHECK(r.has_coords && fabs(r.lat - 50.1) < 1e-9 && fabs(r.lon - 8.6) < 1e-9,
	      "values: coords");
	CHECK(r.n == 2, "values: n %zu", r.n);
	if (r.n == 2) {
		CHECK(r.results[0].id == 7 && r.results[0].state == HSTATE_UP &&
		      r.results[0].ok && fabs(r.results[0].rtt_ms - 1.5) < 1e-9 &&
		      fabs(r.results[0].ts - 1700000000.25) < 1e-6 &&
		      strcmp(r.results[0].detail, "200 OK") == 0, "values: result 0");
		CHECK(r.results[1].id == 9 && r.results[1].state == HSTATE_DOWN &&
		      !r.results[1].ok && r.results[1].rtt_ms < 0 &&
		      r.results[1].detail == NULL, "values: result 1");
	}
	arena_fini(&a);
}

static void test_token(void)
{
	static const struct {
		const char *name, *content, *want;
		int rc;
	} cases[] = {
		{ "plain", "s3cret\n", "s3cret", 0 },
		{ "white space around", "  s3cret \t\r\nsecond line\n", "s3cret", 0 },
		{ "empty", "\n", NULL, -EINVAL },
		{ "space inside", "a b\n", NULL, -EINVAL },
	};
	char path[] = "/tmp/test_api_tokenXXXXXX";
	int fd = mkstemp(path);
	char out[TOKEN_MAX], err[256];

	CHECK(fd >= 0, "mkstemp");
	if (fd < 0)
		return;
	close(fd);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		FILE *f = fopen(path, "w");
		int rc;

		fputs(cases[i].content, f);
		fclose(f);
		rc = token_load(path, out, sizeof(out), err, sizeof(err));
		CHECK(rc == cases[i].rc, "token %s: rc %d (%s)", cases[i].name, rc,
		      err);
		if (rc == 0 && cases[i].want)
			CHECK(strcmp(out, cases[i].want) == 0, "token %s: got '%s'",
			      cases[i].name, out);
		if (rc < 0)
			CHECK(strstr(err, path) != NULL, "token %s: error names file",
			      cases[i].name);
	}
	unlink(path);
	CHECK(token_load(path, out, sizeof(out), err, sizeof(err)) == -ENOENT,
	      "token: missing file");
	CHECK(token_equal("abc", "abc", 3), "token_equal same");
	CHECK(!token_equal("abc", "abd", 3), "token_equal differs");
	CHECK(!token_equal("abc", "abcd", 4), "token_equal longer");
	CHECK(!token_equal("abc", "ab", 2), "token_equal prefix");
}


/* ---- the HTTP module for real, on 127.0.0.1, driven by an evhttp client
 * in the same loop; ops backed by a struct hstate. */

struct ctx {
	struct hstate *h;
	int reports;
};

static json_t *ops_checks(void *arg)
{
	(void)arg;
	return json_pack("{s:i,s:[{s:i,s:s}]}", "generation", 1, "checks",
	                 "id", 7, "url", "tcp://127.0.0.1:1");
}

static int ops_report(void *arg, const struct api_report *r, char *err,
                      size_t errlen)
{
	struct ctx *c = arg;
	struct hstate_agent a = { r->agent, r->region, r->has_coords, r->lat,
	                          r->lon };

	c->reports++;
	return hstate_report(c->h, &a, r->results, r->n, 1700000000.0, err,
	                     errlen);
}

static int ops_status(void *arg, struct evbuffer *out)
{
	struct ctx *c = arg;

	return evbuffer_add_printf(out, "{\"reports\":%d}", c->reports) < 0
	       ? -ENOMEM : 0;
}

static int ops_metrics(void *arg, struct evbuffer *out)
{
	struct ctx *c = arg;

	return evbuffer_add_printf(out, "gslb_reports_total %d\n",
	                           c->reports) < 0 ? -ENOMEM : 0;
}

#define TOK "s3cret-token"
#define GOOD "{\"agent\":\"eu-1\",\"region\":\"eu\",\"results\":" \
             "[{\"id\":7,\"state\":\"up\",\"ok\":true,\"rtt_ms\":2,\"ts\":5}]}"
#define UNKNOWN_ID "{\"agent\":\"eu-1\",\"region\":\"eu\",\"results\":" \
             "[{\"id\":7,\"state\":\"down\",\"ok\":false,\"ts\":6}," \
             "{\"id\":99,\"state\":\"up\",\"ok\":true,\"ts\":6}]}"

static const struct req_case {
	const char *name;
	enum evhttp_cmd_type method;
	const char *path, *auth, *body;
	size_t big;            /* > 0: body of this many bytes instead */
	int want;
	const char *want_body; /* substring of the response */
	uint8_t want_state;    /* endpoint 7 afterwards */
} req_cases[] = {
	{ "checks without token", EVHTTP_REQ_GET, "/v1/checks", NULL, NULL, 0,
	  401, "token", HSTATE_UNKNOWN },
	{ "checks with wrong token", EVHTTP_REQ_GET, "/v1/checks",
	  "Bearer s3cret-tokeN", NULL, 0, 401, "token", HSTATE_UNKNOWN },
	{ "checks with prefix of token", EVHTTP_REQ_GET, "/v1/checks",
	  "Bearer s3cret", NULL, 0, 401, "token", HSTATE_UNKNOWN },
	{ "checks", EVHTTP_REQ_GET, "/v1/checks", "Bearer " TOK, NULL, 0, 200,
	  "\"checks\"", HSTATE_UNKNOWN },
	{ "report without token", EVHTTP_REQ_POST, "/v1/reports", NULL, GOOD, 0,
	  401, "token", HSTATE_UNKNOWN },
	{ "report malformed", EVHTTP_REQ_POST, "/v1/reports", "Bearer " TOK,
	  "{\"agent\":", 0, 400, "\"field\":\"body\"", HSTATE_UNKNOWN },
	{ "report out of range", EVHTTP_REQ_POST, "/v1/reports", "Bearer " TOK,
	  "{\"agent\":\"a\",\"region\":\"r\",\"lat\":100,\"lon\":0,\"results\":[]}",
	  0, 400, "\"field\":\"lat\"", HSTATE_UNKNOWN },
	{ "report good", EVHTTP_REQ_POST, "/v1/reports", "bearer  " TOK, GOOD, 0,
	  200, "\"accepted\":1", HSTATE_UP },
	{ "report unknown id rejects all", EVHTTP_REQ_POST, "/v1/reports",
	  "Bearer " TOK, UNKNOWN_ID, 0, 422, "99", HSTATE_UP },
	{ "report too large", EVHTTP_REQ_POST, "/v1/reports", "Bearer " TOK,
	  NULL, API_BODY_MAX + 10, 413, NULL, HSTATE_UP },
	{ "unknown path", EVHTTP_REQ_GET, "/v2/nothing", NULL, NULL, 0, 404,
	  NULL, HSTATE_UP },
	{ "wrong method on reports", EVHTTP_REQ_GET, "/v1/reports",
	  "Bearer " TOK, NULL, 0, 405, NULL, HSTATE_UP },
	{ "wrong method on checks", EVHTTP_REQ_DELETE, "/v1/checks",
	  "Bearer " TOK, NULL, 0, 405, NULL, HSTATE_UP },
	{ "metrics without token", EVHTTP_REQ_GET, "/metrics", NULL, NULL, 0,
	  200, "gslb_reports_total 2", HSTATE_UP },
	{ "status without token", EVHTTP_REQ_GET, "/v1/status", NULL, NULL, 0,
	  200, "\"reports\":2", HSTATE_UP },
};

struct driver {
	struct event_base *base;
	struct ctx *c;
	unsigned port;
	size_t next;
	struct evhttp_connection *conns[32];   /* one per request */
};

static void send_next(struct driver *d);

static void on_reply(struct evhttp_request *req, void *arg)
{
	struct driver *d = arg;
	const struct req_case *rc = &req_cases[d->next];
	int code = req ? evhttp_request_get_response_code(req) : 0;
	uint8_t st = 0xff;
	bool stale;

	CHECK(code == rc->want, "http %s: status %d, want %d", rc->name, code,
	      rc->want);
	if (req && rc->want_body) {
		struct evbuffer *b = evhttp_request_get_input_buffer(req);
		size_t n = evbuffer_get_length(b);
		char *text = calloc(1, n + 1);

		evbuffer_copyout(b, text, n);
		CHECK(strstr(text, rc->want_body) != NULL,
		      "http %s: body '%s' lacks '%s'", rc->name, text,
		      rc->want_body);
		free(text);
	}
	hstate_get(d->c->h, 7, &st, &stale);
	CHECK(st == rc->want_state, "http %s: endpoint 7 %s, want %s", rc->name,
	      hstate_state_name(st), hstate_state_name(rc->want_state));
	d->next++;
	send_next(d);
}

static void send_next(struct driver *d)
{
	const struct req_case *rc;
	struct evhttp_request *req;

	if (d->next >= sizeof(req_cases) / sizeof(req_cases[0])) {
		event_base_loopexit(d->base, NULL);
		return;
	}
	rc = &req_cases[d->next];
	/* A connection per request: after a 413 the server closes it. */
	d->conns[d->next] = evhttp_connection_base_new(d->base, NULL,
	                                               "127.0.0.1",
	                                               (ev_uint16_t)d->port);
	req = evhttp_request_new(on_reply, d);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Host",
	                  "127.0.0.1");
	if (rc->auth)
		evhttp_add_header(evhttp_request_get_output_headers(req),
		                  "Authorization", rc->auth);
	if (rc->body)
		evbuffer_add(evhttp_request_get_output_buffer(req), rc->body,
		             strlen(rc->body));
	if (rc->big) {
		/* Declared, not sent: the server must refuse on the header
		 * alone (sending it all would race the server's close). */
		char cl[32];

		snprintf(cl, sizeof(cl), "%zu", rc->big);
		evhttp_add_header(evhttp_request_get_output_headers(req),
		                  "Content-Length", cl);
		evbuffer_add(evhttp_request_get_output_buffer(req), "{}", 2);
	}
	evhttp_make_request(d->conns[d->next], req, rc->method, rc->path);
}

static void test_http(void)
{
	static const struct api_ops ops = {
		.checks = ops_checks, .report = ops_report,
		.status = ops_status, .metrics = ops_metrics,
	};
	struct hstate_ep ep = { 7, 1.0 };
	struct ctx c = { hstate_new(NULL), 0 };
	struct event_base *base = event_base_new();
	struct driver d = { base, &c, 0, 0, { NULL } };
	struct timeval limit = { 20, 0 };
	char err[256] = "";
	struct api *a;

	hstate_set_endpoints(c.h, &ep, 1);
	CHECK(api_new(base, "127.0.0.1", TOK, &ops, &c, err, sizeof(err)) == NULL
	      && strstr(err, "127.0.0.1"), "api_new: bad listen: %s", err);
	CHECK(api_new(base, "127.0.0.1:0", "", &ops, &c, err, sizeof(err)) == NULL,
	      "api_new: empty token refused");
	a = api_new(base, "127.0.0.1:0", TOK, &ops, &c, err, sizeof(err));
	CHECK(a != NULL, "api_new: %s", err);
	if (!a)
		goto out;
	d.port = api_port(a);
	CHECK(d.port > 0, "api_port %u", d.port);
	send_next(&d);
	event_base_loopexit(base, &limit);      /* bound: never hang */
	event_base_dispatch(base);
	CHECK(d.next == sizeof(req_cases) / sizeof(req_cases[0]),
	      "http: only %zu requests completed", d.next);
	CHECK(c.reports == 2, "ops->report called %d times, want 2", c.reports);
	for (size_t i = 0; i < sizeof(d.conns) / sizeof(d.conns[0]); i++)
		if (d.conns[i])
			evhttp_connection_free(d.conns[i]);
	api_free(a);
out:
	hstate_free(c.h);
	event_base_free(base);
}

int main(void)
{
	/* The server closes a connection that sends too much (413). */
	signal(SIGPIPE, SIG_IGN);
	test_http();
	test_parse_cases();
	test_parse_values();
	test_token();
	return TEST_DONE();
}
