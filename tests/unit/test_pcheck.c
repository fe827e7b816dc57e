/* tests/unit/test_pcheck.c - the agent's parsers: check URLs, status
 * ranges, rcodes, check-list entries and server URLs. */
#include <errno.h>
#include <string.h>

#include "health/pcheck.h"
#include "health/probe.h"
#include "tests/unit/harness.h"

static void test_urls(void)
{
	static const struct {
		const char *url;
		int rc;
		enum pcheck_kind kind;
		const char *host;
		unsigned port;
		const char *path;
		const char *err;
	} cases[] = {
		{ "tcp://192.0.2.1:443", 0, PCHECK_TCP, "192.0.2.1", 443, "", NULL },
		{ "http://127.0.0.1:8081/health", 0, PCHECK_HTTP, "127.0.0.1", 8081, "/health", NULL },
		{ "http://lb.example.net", 0, PCHECK_HTTP, "lb.example.net", 80, "/", NULL },
		{ "HTTP://x.example/a?b=c", 0, PCHECK_HTTP, "x.example", 80, "/a?b=c", NULL },
		{ "http://x.example?q", 0, PCHECK_HTTP, "x.example", 80, "/?q", NULL },
		{ "https://[2001:db8::1]/h", 0, PCHECK_HTTPS, "2001:db8::1", 443, "/h", NULL },
		{ "https://[::1]:8443/", 0, PCHECK_HTTPS, "::1", 8443, "/", NULL },
		{ "dns://127.0.0.1:5300/www.example.com", 0, PCHECK_DNS, "127.0.0.1", 5300, "www.example.com", NULL },
		{ "dns://[::1]/example.com.", 0, PCHECK_DNS, "::1", 53, "example.com.", NULL },
		{ "ftp://x/", -EINVAL, 0, NULL, 0, NULL, "scheme" },
		{ "tcp://192.0.2.1", -EINVAL, 0, NULL, 0, NULL, "tcp needs a port" },
		{ "tcp://192.0.2.1:0", -EINVAL, 0, NULL, 0, NULL, "bad port" },
		{ "tcp://192.0.2.1:65536", -EINVAL, 0, NULL, 0, NULL, "bad port" },
		{ "tcp://192.0.2.1:80/x", -EINVAL, 0, NULL, 0, NULL, "no path" },
		{ "http://:80/", -EINVAL, 0, NULL, 0, NULL, "host" },
		{ "http://[::1/", -EINVAL, 0, NULL, 0, NULL, "']'" },
		{ "http://a b/", -EINVAL, 0, NULL, 0, NULL, "" },
		{ "http://h/a b", -EINVAL, 0, NULL, 0, NULL, "space" },
		{ "http://h:8x/", -EINVAL, 0, NULL, 0, NULL, "bad port" },
		{ "dns://127.0.0.1", -EINVAL, 0, NULL, 0, NULL, "dns needs /NAME" },
		{ "dns://127.0.0.1/a..b", -EINVAL, 0, NULL, 0, NULL, "empty label" },
		{ "dns://127.0.0.1/a b", -EINVAL, 0, NULL, 0, NULL, "bad character" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pcheck_url u;
		char err[256] = "";
		int rc = pcheck_url_parse(cases[i].url, &u, err, sizeof(err));

		CHECK(rc == cases[i].rc, "url %s: rc %d (%s)", cases[i].url, rc, err);
		if (rc == 0 && cases[i].rc == 0) {
			CHECK(u.kind == cases[i].kind, "url %s: kind %d", cases[i].url,
			      u.kind);
			CHECK(strcmp(u.host, cases[i].host) == 0, "url %s: host '%s'",
			      cases[i].url, u.host);
			CHECK(u.port == cases[i].port, "url %s: port %u", cases[i].url,
			      u.port);
			CHECK(strcmp(u.path, cases[i].path) == 0, "url %s: path '%s'",
			      cases[i].url, u.path);
		}
		if (rc < 0 && cases[i].err)
			CHECK(strstr(err, cases[i].err) && strstr(err, cases[i].url),
			      "url %s: error '%s' lacks '%s' or the url", cases[i].url,
			      err, cases[i].err);
	}
}

static void test_expect_rcode(void)
{
	static const struct { const char *s; int rc; unsigned lo, hi; } ex[] = {
		{ "200-399", 0, 200, 399 }, { "204", 0, 204, 204 },
		{ "100-599", 0, 100, 599 }, { "399-200", -EINVAL, 0, 0 },
		{ "99", -EINVAL, 0, 0 }, { "200-600", -EINVAL, 0, 0 },
		{ "2xx", -EINVAL, 0, 0 }, { "200-", -EINVAL, 0, 0 },
		{ "", -EINVAL, 0, 0 }, { "200-399x", -EINVAL, 0, 0 },
	};
	static const struct { const char *s; int rc, v; } rc[] = {
		{ "NOERROR", 0, 0 }, { "nxdomain", 0, 3 }, { "REFUSED", 0, 5 },
		{ "15", 0, 15 }, { "16", -EINVAL, 0 }, { "BOGUS", -EINVAL, 0 },
		{ "-1", -EINVAL, 0 },
	};

	for (size_t i = 0; i < sizeof(ex) / sizeof(ex[0]); i++) {
		unsigned lo = 0, hi = 0;
		int r = pcheck_expect_parse(ex[i].s, &lo, &hi);

		CHECK(r == ex[i].rc, "expect '%s': rc %d", ex[i].s, r);
		if (r == 0)
			CHECK(lo == ex[i].lo && hi == ex[i].hi, "expect '%s': %u-%u",
			      ex[i].s, lo, hi);
	}
	for (size_t i = 0; i < sizeof(rc) / sizeof(rc[0]); i++) {
		int v = -1, r = pcheck_rcode_parse(rc[i].s, &v);

		CHECK(r == rc[i].rc && (r < 0 || v == rc[i].v), "rcode '%s': rc %d v %d",
		      rc[i].s, r, v);
	}
}

static void test_check_entries(void)
{
	static const struct {
		const char *name, *json;
		int rc;
		const char *err;
	} cases[] = {
		{ "minimal", "{\"id\":1,\"url\":\"tcp://127.0.0.1:80\"}", 0, NULL },
		{ "full", "{\"id\":7,\"service\":\"s.\",\"target\":\"t\",\"url\":\"https://h/\","
		  "\"interval\":2,\"timeout\":1.5,\"rise\":4,\"fall\":1,\"tls_verify\":false,"
		  "\"expect\":\"200\",\"body\":\"OK\",\"host\":\"www.example.com\",\"rcode\":null,"
		  "\"future_key\":[1]}", 0, NULL },
		{ "not object", "[1]", -EINVAL, "checks[0]: must be an object" },
		{ "no id", "{\"url\":\"tcp://h:1\"}", -EINVAL, "checks[0].id" },
		{ "string id", "{\"id\":\"1\",\"url\":\"tcp://h:1\"}", -EINVAL, "checks[0].id" },
		{ "no url", "{\"id\":1}", -EINVAL, "checks[0].url" },
		{ "bad url", "{\"id\":1,\"url\":\"gopher://h/\"}", -EINVAL, "checks[0].url: url 'gopher://h/'" },
		{ "interval 0.5", "{\"id\":1,\"url\":\"tcp://h:1\",\"interval\":0.5}", -EINVAL, "checks[0].interval" },
		{ "timeout 0", "{\"id\":1,\"url\":\"tcp://h:1\",\"timeout\":0}", -EINVAL, "checks[0].timeout" },
		{ "rise 0", "{\"id\":1,\"url\":\"tcp://h:1\",\"rise\":0}", -EINVAL, "checks[0].rise" },
		{ "fall 1.5", "{\"id\":1,\"url\":\"tcp://h:1\",\"fall\":1.5}", -EINVAL, "checks[0].fall" },
		{ "tls_verify string", "{\"id\":1,\"url\":\"tcp://h:1\",\"tls_verify\":\"no\"}", -EINVAL, "checks[0].tls_verify" },
		{ "expect bad", "{\"id\":1,\"url\":\"tcp://h:1\",\"expect\":\"ok\"}", -EINVAL, "checks[0].expect" },
		{ "host with space", "{\"id\":1,\"url\":\"tcp://h:1\",\"host\":\"a b\"}", -EINVAL, "checks[0].host" },
		{ "rcode 16", "{\"id\":1,\"url\":\"tcp://h:1\",\"rcode\":16}", -EINVAL, "checks[0].rcode" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_error_t je;
		json_t *o = json_loads(cases[i].json, 0, &je);
		struct probe_check_def d;
		char err[300] = "";
		int rc;

		CHECK(o != NULL, "%s: test JSON: %s", cases[i].name, je.text);
		rc = probe_check_parse(o, 0, 10, &d, err, sizeof(err));
		CHECK(rc == cases[i].rc, "%s: rc %d (%s)", cases[i].name, rc, err);
		if (cases[i].err)
			CHECK(strstr(err, cases[i].err) != NULL, "%s: error '%s'",
			      cases[i].name, err);
		if (rc == 0 && strcmp(cases[i].name, "minimal") == 0)
			CHECK(d.id == 1 && d.interval == 10 && d.spec.timeout == 5 &&
			      d.rise == 3 && d.fall == 2 && d.spec.tls_verify &&
			      d.spec.expect_lo == 200 && d.spec.expect_hi == 399 &&
			      !d.spec.body[0] && d.spec.rcode == 0, "minimal: defaults");
		if (rc == 0 && strcmp(cases[i].name, "full") == 0)
			CHECK(d.id == 7 && d.interval == 2 && d.spec.timeout == 1.5 &&
			      d.rise == 4 && d.fall == 1 && !d.spec.tls_verify &&
			      d.spec.expect_lo == 200 && d.spec.expect_hi == 200 &&
			      strcmp(d.spec.body, "OK") == 0 &&
			      strcmp(d.spec.host_header, "www.example.com") == 0,
			      "full: values");
		json_decref(o);
	}
}

static void test_servers(void)
{
	static const struct {
		const char *url;
		int rc;
		const char *host;
		unsigned port;
		const char *prefix;
	} cases[] = {
		{ "http://127.0.0.1:8053", 0, "127.0.0.1", 8053, "" },
		{ "http://127.0.0.1:8053/", 0, "127.0.0.1", 8053, "" },
		{ "http://[::1]:8053/gslb/", 0, "::1", 8053, "/gslb" },
		{ "http://dnsd.example", 0, "dnsd.example", 80, "" },
		{ "https://127.0.0.1:8053", 0, "127.0.0.1", 8053, "" },
		{ "https://dnsd.example/api/", 0, "dnsd.example", 443, "/api" },
		{ "ftp://127.0.0.1:8053", -EINVAL, NULL, 0, NULL },
		{ "127.0.0.1:8053", -EINVAL, NULL, 0, NULL },
		{ "http://127.0.0.1:8053/?x=1", -EINVAL, NULL, 0, NULL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char host[256] = "", prefix[256] = "";
		uint16_t port = 0;
		bool tls = false;
		int rc = probe_server_parse(cases[i].url, host, sizeof(host), &port,
		                            prefix, sizeof(prefix), &tls);

		CHECK(rc == cases[i].rc, "server %s: rc %d", cases[i].url, rc);
		if (rc == 0 && cases[i].rc == 0)
			CHECK(strcmp(host, cases[i].host) == 0 &&
			      port == cases[i].port &&
			      strcmp(prefix, cases[i].prefix) == 0 &&
			      tls == (strncmp(cases[i].url, "https:", 6) == 0),
			      "server %s: %s %u '%s'", cases[i].url, host, port, prefix);
	}
}

int main(void)
{
	test_urls();
	test_expect_rcode();
	test_check_entries();
	test_servers();
	return TEST_DONE();
}
