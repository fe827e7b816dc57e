/* tests/unit/test_webui.c - the status page's query parser and events feed
 * (the HTTP side is driven by tests/integration/test_status_page.py). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnsd/webui.h"
#include "tests/unit/harness.h"

static void test_query(void)
{
	static const struct {
		const char *in;
		int rc;
		size_t offset, limit;
		const char *q, *region;
		uint8_t health;
		uint64_t since;
		const char *field;          /* error names it first */
	} cases[] = {
		{ NULL, 0, 0, 50, "", "", WEBUI_ANY, 0, NULL },
		{ "", 0, 0, 50, "", "", WEBUI_ANY, 0, NULL },
		{ "offset=100&limit=20", 0, 100, 20, "", "", WEBUI_ANY, 0, NULL },
		{ "q=www%20x&region=eu-west", 0, 0, 50, "www x", "eu-west", WEBUI_ANY, 0, NULL },
		{ "health=down", 0, 0, 50, "", "", WEBUI_DOWN, 0, NULL },
		{ "health=not-up", 0, 0, 50, "", "", WEBUI_NOT_UP, 0, NULL },
		{ "health=any&q=", 0, 0, 50, "", "", WEBUI_ANY, 0, NULL },
		{ "since=17&limit=500", 0, 0, 500, "", "", WEBUI_ANY, 17, NULL },
		{ "limit=0", -EINVAL, 0, 0, NULL, NULL, 0, 0, "limit" },
		{ "limit=501", -EINVAL, 0, 0, NULL, NULL, 0, 0, "limit" },
		{ "limit=", -EINVAL, 0, 0, NULL, NULL, 0, 0, "limit" },
		{ "limit=5x", -EINVAL, 0, 0, NULL, NULL, 0, 0, "limit" },
		{ "offset=-1", -EINVAL, 0, 0, NULL, NULL, 0, 0, "offset" },
		{ "offset=99999999999999999999", -EINVAL, 0, 0, NULL, NULL, 0, 0, "offset" },
		{ "health=sick", -EINVAL, 0, 0, NULL, NULL, 0, 0, "health" },
		{ "since=x", -EINVAL, 0, 0, NULL, NULL, 0, 0, "since" },
		{ "colour=red", -EINVAL, 0, 0, NULL, NULL, 0, 0, "colour" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct webui_query q;
		char err[256] = "";
		int rc = webui_query_parse(cases[i].in, &q, err, sizeof(err));
		const char *in = cases[i].in ? cases[i].in : "(null)";

		CHECK(rc == cases[i].rc, "%s: rc %d, want %d (%s)", in, rc, cases[i].rc, err);
		if (rc < 0 && cases[i].field)
			CHECK(strncmp(err, cases[i].field, strlen(cases[i].field)) == 0 &&
			      err[strlen(cases[i].field)] == ':',
			      "%s: error '%s' does not name %s", in, err, cases[i].field);
		if (rc < 0 || cases[i].rc < 0)
			continue;
		CHECK(q.offset == cases[i].offset && q.limit == cases[i].limit,
		      "%s: offset %zu limit %zu", in, q.offset, q.limit);
		CHECK(strcmp(q.q, cases[i].q) == 0, "%s: q '%s'", in, q.q);
		CHECK(strcmp(q.region, cases[i].region) == 0, "%s: region '%s'", in, q.region);
		CHECK(q.health == cases[i].health, "%s: health %u", in, q.health);
		CHECK(q.since == cases[i].since, "%s: since %llu", in,
		      (unsigned long long)q.since);
	}
	{
		/* a name filter longer than the field is an error, not cut short */
		char in[400] = "q=";
		struct webui_query q;
		char err[256];

		memset(in + 2, 'a', 300);
		in[302] = 0;
		CHECK(webui_query_parse(in, &q, err, sizeof(err)) == -EINVAL &&
		      strncmp(err, "q:", 2) == 0, "long q: %s", err);
	}
}

/* seqs of a feed document, as "1,2,3" */
static void seqs(json_t *doc, char *out, size_t len)
{
	size_t i, n = 0;
	json_t *e;

	out[0] = 0;
	json_array_foreach(json_object_get(doc, "events"), i, e)
		n += (size_t)snprintf(out + n, len - n, "%s%lld", i ? "," : "",
		                      (long long)json_integer_value(json_object_get(e, "seq")));
}

static void test_events(void)
{
	struct webui_events *ev = malloc(sizeof(*ev));
	char got[256];
	json_t *d;
	static const struct {
		uint64_t since;
		size_t limit;
		double now;
		const char *want;
		long long last;
	} cases[] = {
		{ 0, 50, 1000, "1,2,3,4,5", 5 },
		{ 3, 50, 1000, "4,5", 5 },
		{ 5, 50, 1000, "", 5 },
		{ 99, 50, 1000, "", 5 },
		{ 0, 2, 1000, "4,5", 5 },          /* the newest when cut */
		{ 1, 3, 1000, "3,4,5", 5 },
		/* an hour later the first three (at 100..102) are gone */
		{ 0, 50, 100 + 3600 + 2.5, "4,5", 5 },
	};

	if (!ev) {
		CHECK(0, "out of memory");
		return;
	}
	webui_events_init(ev);
	d = webui_events_json(ev, 0, 50, 1000);
	seqs(d, got, sizeof(got));
	CHECK(d && strcmp(got, "") == 0 &&
	      json_integer_value(json_object_get(d, "last")) == 0, "empty feed: %s", got);
	json_decref(d);
	for (int i = 0; i < 5; i++) {
		char subj[32];

		snprintf(subj, sizeof(subj), "www%d.example.", i);
		webui_events_add(ev, 100 + i, i % 2 ? "health" : "config", subj, "text");
	}
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		d = webui_events_json(ev, cases[i].since, cases[i].limit, cases[i].now);
		seqs(d, got, sizeof(got));
		CHECK(d && strcmp(got, cases[i].want) == 0, "case %zu: got '%s', want '%s'",
		      i, got, cases[i].want);
		CHECK(d && json_integer_value(json_object_get(d, "last")) == cases[i].last,
		      "case %zu: last", i);
		json_decref(d);
	}
	/* fields and truncation of long strings */
	{
		char longtext[1000];
		json_t *e;

		memset(longtext, 'x', sizeof(longtext) - 1);
		longtext[sizeof(longtext) - 1] = 0;
		webui_events_add(ev, 200, "a-very-long-kind-name-here", longtext, longtext);
		d = webui_events_json(ev, 5, 50, 300);
		e = json_array_get(json_object_get(d, "events"), 0);
		CHECK(e && json_integer_value(json_object_get(e, "seq")) == 6 &&
		      json_real_value(json_object_get(e, "at")) == 200 &&
		      strlen(json_string_value(json_object_get(e, "kind"))) == WEBUI_KIND_MAX - 1 &&
		      strlen(json_string_value(json_object_get(e, "subject"))) ==
		      WEBUI_SUBJECT_MAX - 1 &&
		      strlen(json_string_value(json_object_get(e, "text"))) == WEBUI_TEXT_MAX - 1,
		      "long event not truncated to the fields");
		json_decref(d);
	}
	/* the ring: after more than it holds, the oldest are gone and seqs go on */
	for (int i = 0; i < WEBUI_EVENTS_MAX + 10; i++)
		webui_events_add(ev, 1000, "health", "s", "t");
	d = webui_events_json(ev, 0, WEBUI_PAGE_MAX, 1000);
	{
		json_t *arr = json_object_get(d, "events");
		long long last = json_integer_value(json_object_get(d, "last"));
		long long first = json_integer_value(json_object_get(json_array_get(arr, 0), "seq"));

		CHECK(last == 6 + WEBUI_EVENTS_MAX + 10, "last %lld", last);
		CHECK(json_array_size(arr) == WEBUI_PAGE_MAX && first == last - WEBUI_PAGE_MAX + 1,
		      "wrapped ring: %zu events from %lld", json_array_size(arr), first);
	}
	json_decref(d);
	d = webui_events_json(ev, 0, WEBUI_EVENTS_MAX * 2, 1000);
	{
		json_t *arr = json_object_get(d, "events");
		long long first = json_integer_value(json_object_get(json_array_get(arr, 0), "seq"));

		CHECK(json_array_size(arr) == WEBUI_EVENTS_MAX &&
		      first == 6 + 10 + 1, "whole ring: %zu events from %lld",
		      json_array_size(arr), first);
	}
	json_decref(d);
	free(ev);
}

int main(void)
{
	test_query();
	test_events();
	return TEST_DONE();
}
