/* tests/unit/test_api.c - the report parser of the HTTP API (no socket)
 * and the token helpers it uses. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

int main(void)
{
	test_parse_cases();
	test_parse_values();
	test_token();
	return TEST_DONE();
}
