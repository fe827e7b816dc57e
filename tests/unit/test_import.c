/* tests/unit/test_import.c - db/jstream.h (the streaming parser: good
 * documents in every chunking, every malformed shape with its error and
 * position) and db/import.h (the streamed import gives what
 * cfg_import_plan gives: the same rows and row ids, audit, changes and
 * version, the same report lines and JSON, the same guard and validation
 * errors, nothing written on error or on a dry run). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "db/audit.h"
#include "db/diff.h"
#include "db/edit.h"
#include "db/export.h"
#include "db/import.h"
#include "db/jstream.h"
#include "db/store.h"
#include "db/store_sql.h"
#include "policy/svc.h"
#include "tests/unit/harness.h"

static char dir[] = "/tmp/test_import.XXXXXX";

/* ------------------------------------------------------------ jstream */

struct seen {
	json_t *items;          /* array of the items */
	json_t *members;        /* object of the other members */
	size_t index_ok;
	unsigned long first_line;
	unsigned long long first_byte;
	int stop_at;            /* item index whose callback fails, or -1 */
};

static int on_member(void *arg, const char *key, json_t *v,
                     const struct jstream_pos *at)
{
	struct seen *s = arg;

	(void)at;
	json_object_set(s->members, key, v);
	return 0;
}

static int on_item(void *arg, size_t i, json_t *v,
                   const struct jstream_pos *at)
{
	struct seen *s = arg;

	if (i == json_array_size(s->items))
		s->index_ok++;
	if (i == 0) {
		s->first_line = at->line;
		s->first_byte = at->byte;
	}
	if ((int)i == s->stop_at)
		return -ECANCELED;
	json_array_append(s->items, v);
	return 0;
}

static const struct jstream_cb cbs = { on_member, on_item };

/* Parses text in chunks of `chunk` bytes (0: all at once). */
static int parse(const char *text, size_t chunk, size_t max_item,
                 struct seen *s, char *err, size_t errlen)
{
	struct jstream *js = jstream_new("services", max_item, &cbs, s);
	size_t len = strlen(text), off = 0;
	int rc = 0;

	s->items = json_array();
	s->members = json_object();
	s->index_ok = 0;
	err[0] = '\0';
	if (!chunk)
		chunk = len ? len : 1;
	while (rc == 0 && off < len) {
		size_t n = len - off < chunk ? len - off : chunk;

		rc = jstream_feed(js, text + off, n, err, errlen);
		off += n;
	}
	if (rc == 0)
		rc = jstream_finish(js, err, errlen);
	jstream_free(js);
	return rc;
}

static void seen_free(struct seen *s)
{
	json_decref(s->items);
	json_decref(s->members);
}

static void test_jstream_good(void)
{
	static const struct {
		const char *text;
		size_t items;
		unsigned long line;     /* of the first item */
		unsigned long long byte;
	} cases[] = {
		{ "{\"version\": 1, \"services\": []}", 0, 0, 0 },
		{ "{\"services\": [{\"name\": \"a.\"}], \"version\": 1}", 1, 1,
		  14 },
		{ "\n\n{\"services\":\n  [ {\"a\": [1, 2.5, -3e2, {\"b\": null}],"
		  " \"c\": true, \"d\": false, \"e\": \"\\u00e9\\n\"},\n"
		  "    {}, [], 7, \"s\", null ]}\n", 6, 4, 19 },
		{ "{\"x\": {\"services\": [1]}, \"services\": {\"a\": 1}}", 0, 0,
		  0 },
		{ "{\"services\": [{\"k\": 1, \"k\": 2}]}", 1, 1, 14 },
		{ "{\"services\": [9223372036854775807, -9223372036854775808,"
		  " 1.7976931348623157e308, 0.1]}", 4, 1, 14 },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		json_error_t je;
		json_t *whole = json_loads(cases[i].text, 0, &je);
		json_t *arr = json_object_get(whole, "services");

		CHECK(whole != NULL, "case %zu: jansson: %s", i, je.text);
		/* Every chunking gives the same values as jansson. */
		for (size_t chunk = 0; chunk <= 7; chunk++) {
			struct seen s = { .stop_at = -1 };
			char err[600];
			int rc = parse(cases[i].text, chunk, 0, &s, err,
			               sizeof err);
			json_t *rest = json_deep_copy(whole);

			CHECK(rc == 0, "case %zu chunk %zu: %d %s", i, chunk, rc,
			      err);
			CHECK(json_array_size(s.items) == cases[i].items,
			      "case %zu chunk %zu: %zu items", i, chunk,
			      json_array_size(s.items));
			CHECK(s.index_ok == cases[i].items, "case %zu: indexes", i);
			if (json_is_array(arr)) {
				CHECK(json_equal(s.items, arr), "case %zu chunk %zu:"
				      " items differ from jansson's", i, chunk);
				json_object_del(rest, "services");
			}
			CHECK(json_equal(s.members, rest), "case %zu chunk %zu: "
			      "members differ", i, chunk);
			if (cases[i].items) {
				CHECK(s.first_line == cases[i].line &&
				      s.first_byte == cases[i].byte,
				      "case %zu chunk %zu: first item at line %lu "
				      "byte %llu", i, chunk, s.first_line,
				      s.first_byte);
			}
			json_decref(rest);
			seen_free(&s);
		}
		json_decref(whole);
	}
}

static void test_jstream_bad(void)
{
	static const struct {
		const char *text;
		size_t max_item;
		const char *want;       /* substring of the error */
	} cases[] = {
		{ "", 0, "line 1, byte 0: empty document" },
		{ "   \n  ", 0, "line 2, byte 6: empty document" },
		{ "{", 0, "line 1, byte 1: the document ends early" },
		{ "{\"services\": [{\"a\": 1}", 0, "ends early" },
		{ "[1, 2]", 0, "line 1, byte 0: not a JSON object" },
		{ "\"text\"", 0, "line 1, byte 5: not a JSON object" },
		{ "42", 0, "not a JSON object" },
		{ "{\"services\": [1,]}", 0, "line 1, byte 16: parse error" },
		{ "{\"a\": 1}x", 0, "trailing garbage" },
		{ "{\"a\": 1} {}", 0, "trailing garbage" },
		{ "{\"a\": \"\\u0000\"}", 0, "\\u0000 is not allowed" },
		{ "{\"a\\u0000\": 1}", 0, "\\u0000 is not allowed" },
		{ "{\"a\": 99999999999999999999}", 0, "too big integer" },
		{ "{\"a\": 1e999}", 0, "real number overflow" },
		{ "{\"a\": \"\xff\"}", 0, "invalid bytes in UTF8" },
		{ "{/* c */}", 0, "lexical error" },
		{ "{a: 1}", 0, "lexical error" },
		{ "{\"a\": tru}", 0, "lexical error" },
		{ "{\"a\": 01}", 0, "parse error" },
		{ "{\"a\" 1}", 0, "parse error" },
		{ "{\n\"services\": [\n{},\n}\n", 0, "line 4, byte 20:" },
		{ "{\"services\": [{\"name\": \"a-long-name.\"}]}", 16,
		  "services[0] is larger than 16 bytes" },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		for (size_t chunk = 0; chunk <= 3; chunk++) {
			struct seen s = { .stop_at = -1 };
			char err[600];
			int rc = parse(cases[i].text, chunk, cases[i].max_item, &s,
			               err, sizeof err);

			CHECK(rc == -EINVAL, "case %zu chunk %zu: rc %d", i, chunk,
			      rc);
			CHECK(strstr(err, cases[i].want) != NULL, "case %zu chunk "
			      "%zu: error '%s', want '%s'", i, chunk, err,
			      cases[i].want);
			seen_free(&s);
		}
	/* Nesting has a limit. */
	{
		char deep[16 + 2 * 70 + 4];
		struct seen s = { .stop_at = -1 };
		char err[600];
		size_t n = (size_t)snprintf(deep, sizeof deep, "{\"services\": [");
		int rc;

		memset(deep + n, '[', 70);
		memset(deep + n + 70, ']', 70);
		snprintf(deep + n + 140, sizeof deep - n - 140, "]}");
		rc = parse(deep, 0, 0, &s, err, sizeof err);
		CHECK(rc == -EINVAL && strstr(err, "nested deeper than 64"),
		      "deep: %d %s", rc, err);
		seen_free(&s);
	}
	/* A callback's failure stops the parse with its result. */
	{
		struct seen s = { .stop_at = 1 };
		char err[600];
		int rc = parse("{\"services\": [1, 2, 3]}", 0, 0, &s, err,
		               sizeof err);

		CHECK(rc == -ECANCELED && json_array_size(s.items) == 1,
		      "callback stop: rc %d, %zu items", rc,
		      json_array_size(s.items));
		seen_free(&s);
	}
}

/* ------------------------------------------------------------- import */

static const char base_sql[] =
	"INSERT INTO services (id, name, policy, ttl) VALUES "
	"(1, 'www.gslb.example.com.', 'failover', 30), "
	"(2, 'api.gslb.example.com.', 'weighted', 20), "
	"(3, 'geo.gslb.example.com.', 'geo', 30), "
	"(4, 'old.gslb.example.com.', 'all', 30);"
	"INSERT INTO endpoints (id, service_id, target, priority, weight, "
	"region, lat, lon, check_url) VALUES "
	"(1, 1, 'lb-eu.example.net.', 0, 1, 'eu', 50.1, 8.7, "
	" 'https://lb-eu.example.net/health'), "
	"(2, 1, 'lb-us.example.net.', 10, 1, 'us', 40.7, -74.0, "
	" 'https://lb-us.example.net/health'), "
	"(3, 2, '192.0.2.10', 0, 70, NULL, NULL, NULL, NULL), "
	"(4, 2, '192.0.2.11', 0, 20, NULL, NULL, NULL, NULL), "
	"(5, 2, '2001:db8::12', 0, 10, NULL, NULL, NULL, NULL), "
	"(6, 3, '192.0.2.20', 0, 1, 'eu', 50.1, 8.7, NULL), "
	"(7, 3, '192.0.2.21', 0, 1, 'us', 40.7, -74.0, NULL), "
	"(8, 4, '192.0.2.40', 0, 1, NULL, NULL, NULL, NULL);"
	"INSERT INTO rules (id, service_id, kind, pattern) VALUES "
	"(1, 3, 'cidr', '10.0.0.0/8'), (2, 3, 'country', 'FR');"
	"INSERT INTO rule_targets (rule_id, endpoint_id) VALUES (1, 7), "
	"(2, 6), (2, 7);";

/* Everything the configuration and its history hold, as text (audit
 * without its time). */
static char *dump(struct store *db)
{
	static const char *const q[] = {
		"SELECT * FROM services ORDER BY id",
		"SELECT * FROM endpoints ORDER BY id",
		"SELECT * FROM rules ORDER BY id",
		"SELECT * FROM rule_targets ORDER BY 1, 2",
		"SELECT * FROM store_version",
		"SELECT version, service FROM changes ORDER BY 1, 2",
		"SELECT id, version, who, source, op, kind, service, target, "
		"field, old, new FROM audit ORDER BY id",
	};
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
		sqlite3_stmt *st = NULL;

		fprintf(f, "-- %s\n", q[i]);
		if (sqlite3_prepare_v2(db->h, q[i], -1, &st, NULL) != SQLITE_OK)
			fprintf(f, "error %s\n", sqlite3_errmsg(db->h));
		while (st && sqlite3_step(st) == SQLITE_ROW) {
			for (int c = 0; c < sqlite3_column_count(st); c++)
				fprintf(f, "%s|", sqlite3_column_text(st, c) ?
				        (const char *)sqlite3_column_text(st, c) :
				        "NULL");
			fputc('\n', f);
		}
		sqlite3_finalize(st);
	}
	fclose(f);
	return buf;
}

static struct store *open_base(const char *name)
{
	char path[256], err[256];
	struct store *db = NULL;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	unlink(path);
	if (store_open(path, STORE_CREATE, &db, err, sizeof err) < 0 ||
	    store_exec(db->h, base_sql) < 0) {
		CHECK(0, "open %s: %s", name, err);
		return NULL;
	}
	return db;
}

/* The report of a streamed import: lines and change objects. */
struct report {
	char *lines;
	size_t len;
	FILE *f;
	json_t *changes;
};

static void on_change(void *arg, const char *line, const json_t *c)
{
	struct report *r = arg;

	fprintf(r->f, "%s\n", line);
	json_array_append(r->changes, (json_t *)c);
}

static char *plan_lines(const struct cfg_plan *p)
{
	char *buf = NULL, line[1024];
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	for (size_t i = 0; i < cfg_plan_size(p); i++) {
		cfg_plan_line(p, i, line, sizeof line);
		fprintf(f, "%s\n", line);
	}
	fclose(f);
	return buf;
}

static char *jdump(const json_t *j)
{
	return json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
	                     JSON_REAL_PRECISION(15));
}

/* Imports text into a (cfg_import_plan) and b (cfg_import_stream) and
 * checks that both give the same: result, error, rows, report. Returns
 * the result. */
static int both(struct store *a, struct store *b, const char *text,
                bool force, bool dry, const char *what)
{
	struct cfg_write w = { .who = "test", .source = "gslbctl",
	                       .force = force };
	struct cfg_plan *plan = NULL;
	struct report r = { .changes = json_array() };
	struct cfg_import_out out = { on_change, NULL, &r, NULL };
	struct cfg_import_result res = { 0 };
	unsigned flags = dry ? CFG_IMPORT_DRY_RUN : 0;
	char ea[512] = "", eb[600] = "";
	json_error_t je;
	json_t *doc = json_loads(text, 0, &je), *pj;
	char *da, *db_, *la, *ja, *jb;
	FILE *in = fmemopen((void *)text, strlen(text), "r");
	int ra, rb;

	CHECK(doc != NULL, "%s: test document: %s", what, je.text);
	r.f = open_memstream(&r.lines, &r.len);
	cfg_write_use(&w);
	ra = cfg_import_plan(a, doc, flags, &plan, ea, sizeof ea);
	rb = cfg_import_stream(b, in, flags, &out, &res, eb, sizeof eb);
	cfg_write_use(NULL);
	fclose(in);
	fclose(r.f);
	CHECK(ra == rb, "%s: result %d (plan) vs %d (stream): %s / %s", what,
	      ra, rb, ea, eb);
	/* The stream adds where in the document: " (line L, byte B)". */
	CHECK(strncmp(ea, eb, strlen(ea)) == 0, "%s: error '%s' vs '%s'",
	      what, ea, eb);
	da = dump(a);
	db_ = dump(b);
	CHECK(strcmp(da, db_) == 0, "%s: stores differ:\n%s\n---\n%s", what,
	      da, db_);
	if (ra == 0) {
		la = plan_lines(plan);
		CHECK(strcmp(la, r.lines) == 0, "%s: lines differ:\n%s---\n%s",
		      what, la, r.lines);
		pj = cfg_plan_json(plan);
		ja = jdump(pj);
		jb = jdump(r.changes);
		CHECK(strcmp(ja, jb) == 0, "%s: JSON differs:\n%s\n---\n%s",
		      what, ja, jb);
		CHECK(res.changes == cfg_plan_size(plan) &&
		      res.removed_services == cfg_plan_removed_services(plan),
		      "%s: %zu changes, %zu removed", what, res.changes,
		      res.removed_services);
		free(la);
		free(ja);
		free(jb);
		json_decref(pj);
	}
	free(da);
	free(db_);
	free(r.lines);
	json_decref(r.changes);
	json_decref(doc);
	cfg_plan_free(plan);
	cfg_write_done(&w);
	return ra;
}

/* Documents applied in turn to both stores. */
static const char doc_a[] =
	"{\"version\": 1, \"services\": ["
	"{\"name\": \"API.gslb.example.com\", \"policy\": \"weighted\", "
	" \"ttl\": 20, \"endpoints\": [{\"target\": \"192.0.2.10\", "
	" \"weight\": 71}, {\"target\": \"192.0.2.11\", \"weight\": 20}, "
	" {\"target\": \"192.0.2.13\", \"weight\": 5, \"region\": \"eu\", "
	" \"lat\": 1.5, \"lon\": 2.25, \"bias\": 12.5}]},\n"
	"{\"name\": \"geo.gslb.example.com.\", \"policy\": \"geo\", "
	" \"endpoints\": [{\"target\": \"192.0.2.20\", \"region\": \"eu\", "
	" \"lat\": 50.1, \"lon\": 8.7}, {\"target\": \"192.0.2.21\", "
	" \"region\": \"us\", \"lat\": 40.7, \"lon\": -74.0}], \"rules\": ["
	" {\"match\": \"10.0.0.0/8\", \"targets\": [\"192.0.2.21\", "
	" \"192.0.2.20\"]}, {\"match\": \"continent:EU\", \"targets\": "
	" [\"192.0.2.20\"]}]},\n"
	"{\"name\": \"new.gslb.example.com\", \"policy\": \"all\", "
	" \"answers\": 2, \"sticky\": false, \"when_down\": \"closed\", "
	" \"endpoints\": [{\"target\": \"192.0.2.30\", \"check\": {\"url\": "
	" \"tcp://192.0.2.30:80\", \"interval\": 5, \"rise\": 2}}, "
	" {\"target\": \"cdn.example.net.\", \"admin\": \"up\"}]},\n"
	"{\"name\": \"www.gslb.example.com.\", \"policy\": \"failover\", "
	" \"ttl\": 60, \"endpoints\": [{\"target\": \"lb-eu.example.net.\", "
	" \"region\": \"eu\", \"lat\": 50.1, \"lon\": 8.7, \"check\": "
	" {\"url\": \"https://lb-eu.example.net/health\", \"interval\": 2.5, "
	" \"body\": \"ok\", \"tls_verify\": false}}, {\"target\": "
	" \"lb-us.example.net.\", \"priority\": 10, \"region\": \"us\", "
	" \"lat\": 40.7, \"lon\": -74.0, \"drained\": true, "
	" \"check\": null}]}]}";

/* Removes 192.0.2.20 of geo while rule 10.0.0.0/8 names it. */
static const char doc_rule[] =
	"{\"services\": [{\"name\": \"geo.gslb.example.com.\", \"policy\": "
	"\"geo\", \"endpoints\": [{\"target\": \"192.0.2.21\"}], \"rules\": "
	"[{\"match\": \"10.0.0.0/8\", \"targets\": [\"192.0.2.21\"]}]}]}";

/* Leaves www, then api, without an endpoint in rotation. */
static const char doc_rotation[] =
	"{\"services\": ["
	"{\"name\": \"www.gslb.example.com.\", \"policy\": \"failover\", "
	" \"endpoints\": [{\"target\": \"lb-eu.example.net.\", \"drained\": "
	" true}, {\"target\": \"lb-us.example.net.\", \"drained\": true}]},"
	"{\"name\": \"api.gslb.example.com.\", \"policy\": \"weighted\", "
	" \"endpoints\": [{\"target\": \"192.0.2.10\", \"admin\": \"down\"}]}"
	"]}";

/* doc_a with one replacement. */
static char *doc_a_with(const char *from, const char *to)
{
	const char *at = strstr(doc_a, from);
	char *out;

	CHECK(at != NULL, "'%s' not in doc_a", from);
	if (!at || asprintf(&out, "%.*s%s%s", (int)(at - doc_a), doc_a, to,
	                    at + strlen(from)) < 0)
		return NULL;
	return out;
}

/* Every field of a stored service changed alone, then back: the streamed
 * import compares a service the store has with its rows before planning
 * it, and must find each difference the planner finds. */
static void test_import_fields(struct store *a, struct store *b)
{
	static const char *const change[][2] = {
		{ "\"ttl\": 20", "\"ttl\": 21" },
		{ "\"policy\": \"weighted\"", "\"policy\": \"all\"" },
		{ "\"answers\": 2,", "\"answers\": null," },
		{ "\"answers\": 2,", "\"answers\": 2, \"fill\": 0.5," },
		{ "\"sticky\": false", "\"sticky\": true" },
		{ "\"when_down\": \"closed\"", "\"when_down\": \"192.0.2.99\"" },
		{ "\"weight\": 71", "\"weight\": 72" },
		{ "\"weight\": 20}", "\"weight\": 20, \"priority\": 3}" },
		{ "\"weight\": 20}", "\"weight\": 20, \"capacity\": 5}" },
		{ "\"bias\": 12.5", "\"bias\": 12" },
		{ "\"lon\": 2.25", "\"lon\": 2.5" },
		{ "\"lat\": 1.5, \"lon\": 2.25,", "" },
		{ "\"region\": \"eu\",  \"lat\": 1.5", "\"lat\": 1.5" },
		{ "\"region\": \"eu\",  \"lat\": 1.5", "\"region\": \"ap\", \"lat\": 1.5" },
		{ "\"admin\": \"up\"", "\"admin\": \"down\"" },
		{ "\"drained\": true,", "\"drained\": false," },
		{ "\"rise\": 2}", "\"rise\": 3}" },
		{ "\"rise\": 2}", "\"rise\": 2, \"fall\": 4, \"timeout\": 1}" },
		{ "\"body\": \"ok\"", "\"body\": \"fine\"" },
		{ "\"body\": \"ok\"", "\"body\": \"ok\", \"expect\": \"200-299\", "
		  "\"host\": \"h.example.net\"" },
		{ "\"tls_verify\": false", "\"tls_verify\": true" },
		{ "\"interval\": 2.5", "\"interval\": 3" },
		{ "\"check\": null", "\"check\": {\"url\": \"tcp://192.0.2.2:80\"}" },
		{ "\"url\":  \"tcp://192.0.2.30:80\"", "\"url\": \"tcp://192.0.2.30:81\"" },
		{ "\"targets\": [\"192.0.2.21\",  \"192.0.2.20\"]",
		  "\"targets\": [\"192.0.2.21\"]" },
		{ "\"continent:EU\"", "\"continent:NA\"" },
		{ ", {\"match\": \"continent:EU\", \"targets\":  [\"192.0.2.20\"]}", "" },
		{ "{\"target\": \"192.0.2.11\", \"weight\": 20}, ", "" },
	};

	for (size_t i = 0; i < sizeof change / sizeof change[0]; i++) {
		char *d = doc_a_with(change[i][0], change[i][1]), what[64];

		if (!d)
			continue;
		snprintf(what, sizeof what, "field %zu", i);
		CHECK(both(a, b, d, true, false, what) == 0, "%s", what);
		snprintf(what, sizeof what, "field %zu back", i);
		CHECK(both(a, b, doc_a, true, false, what) == 0, "%s", what);
		free(d);
	}
}

static void test_import_same(void)
{
	struct store *a = open_base("a.db"), *b = open_base("b.db");
	char *text;
	json_t *ex;

	if (!a || !b)
		goto out;
	/* Guard rails, then a dry run, write nothing. */
	CHECK(both(a, b, doc_a, false, false, "doc a") == -EPERM,
	      "doc a without force: removes old.");
	CHECK(both(a, b, doc_a, false, true, "doc a dry") == 0, "dry run");
	/* Applied. */
	CHECK(both(a, b, doc_a, true, false, "doc a force") == 0, "doc a");
	CHECK(both(a, b, doc_a, true, false, "doc a again") == 0, "again");
	CHECK(both(a, b, doc_rule, false, false, "rule guard") == -EPERM,
	      "endpoint named by a rule");
	CHECK(both(a, b, doc_rotation, false, false, "rotation") == -EPERM,
	      "none in rotation");
	CHECK(both(a, b, doc_rotation, true, false, "rotation forced") == 0,
	      "forced");
	/* The export of one store, imported back into both. */
	ex = cfg_export(a, NULL, (char[256]){ 0 }, 256);
	text = json_dumps(ex, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
	CHECK(both(a, b, doc_a, true, false, "doc a back") == 0, "back");
	CHECK(both(a, b, text, true, false, "export back") == 0, "export");
	free(text);
	json_decref(ex);
	CHECK(both(a, b, "{\"services\": []}", true, false, "empty") == 0,
	      "everything removed");
	CHECK(both(a, b, doc_a, true, false, "doc a on empty") == 0, "refill");
	test_import_fields(a, b);
out:
	store_close(a);
	store_close(b);
}

static void test_import_errors(void)
{
	static const char *const docs[] = {
		"{\"services\": [{\"name\": \"a.example.com\", \"policy\": "
		"\"nosuch\"}]}",
		"{\"services\": [{\"name\": \"a.example.com\", \"policy\": "
		"\"all\", \"endpoints\": [{\"target\": \"300.1.1.1\"}]}]}",
		"{\"services\": [{\"name\": \"a.example.com\", \"policy\": "
		"\"all\", \"endpoints\": [{\"target\": \"192.0.2.1\", "
		"\"weight\": 70000}]}]}",
		"{\"services\": [{\"name\": \"a.example.com\", \"policy\": "
		"\"all\", \"colour\": 1}]}",
		"{\"services\": [{\"name\": \"a.example.com\", \"policy\": "
		"\"all\"}, {\"name\": \"A.example.com.\", \"policy\": \"all\"}]}",
		"{\"version\": 2, \"services\": []}",
		"{\"version\": \"1\", \"services\": []}",
		"{\"services\": {}}",
		"{\"services\": null}",
		"{\"version\": 1}",
		"{\"servces\": []}",
		"{\"services\": [7]}",
		"{\"services\": [{\"policy\": \"all\"}]}",
		"{\"services\": [{\"name\": 5, \"policy\": \"all\"}]}",
		"{\"services\": [{\"name\": \"a.example.com\", \"policy\": "
		"\"all\", \"endpoints\": {}}]}",
		"{\"services\": [{\"name\": \"a.example.com\", \"policy\": "
		"\"all\", \"endpoints\": [{\"target\": \"192.0.2.1\"}], "
		"\"rules\": [{\"match\": \"country:ZZZ\", \"targets\": "
		"[\"192.0.2.1\"]}]}]}",
		"{\"services\": [{\"name\": \"a.example.com\", \"policy\": "
		"\"all\", \"endpoints\": [{\"target\": \"192.0.2.1\"}], "
		"\"rules\": [{\"match\": \"country:DE\", \"targets\": "
		"[\"192.0.2.9\"]}]}]}",
		"{\"services\": [{\"name\": \"a.example.com\", \"policy\": "
		"\"all\", \"endpoints\": [{\"target\": \"192.0.2.1\", \"lat\": "
		"1}]}]}",
		/* The checks a new service gets without the scratch store:
		 * the same errors, naming the service and the field. */
		"{\"services\": [{\"name\": \"a.example.com\", \"policy\": "
		"\"all\", \"endpoints\": [{\"target\": \"192.0.2.1\"}, "
		"{\"target\": \"192.0.2.1\", \"weight\": 2}]}]}",
		"{\"services\": [{\"name\": \"a.example.com\", \"policy\": "
		"\"all\", \"endpoints\": [{\"target\": \"HOST.example.\"}, "
		"{\"target\": \"host.example.\"}]}]}",
		"{\"services\": [{\"name\": \"a.example.com\", \"policy\": "
		"\"all\", \"endpoints\": [{\"target\": \"192.0.2.1\"}], "
		"\"rules\": [{\"match\": \"country:DE\", \"targets\": "
		"[\"192.0.2.1\"]}, {\"match\": \"country:de\", \"targets\": "
		"[\"192.0.2.1\"]}]}]}",
		"{\"services\": [{\"name\": \"a.example.com\", \"policy\": "
		"\"all\", \"endpoints\": [{\"target\": \"192.0.2.1\"}], "
		"\"rules\": [{\"match\": \"10.0.0.0/8\", \"targets\": "
		"[\"192.0.2.1\", \"192.0.2.1\"]}]}]}",
		"{\"services\": [{\"name\": \"a.example.com\", \"policy\": "
		"\"all\", \"endpoints\": [{\"target\": \"192.0.2.1\"}], "
		"\"rules\": [{\"match\": \"10.0.0.1/8\", \"targets\": "
		"[\"192.0.2.1\"]}]}]}",
		"{\"services\": [{\"name\": \"a.example.com\", \"policy\": "
		"\"all\", \"endpoints\": [{\"target\": \"192.0.2.1\"}], "
		"\"rules\": [{\"match\": \"10.0.0.0/8\", \"targets\": "
		"[\"300.0.0.1\"]}]}]}",
		"{\"services\": [{\"name\": \"a.example.com\", \"policy\": "
		"\"all\", \"endpoints\": [{\"target\": \"192.0.2.1\"}], "
		"\"rules\": [{\"targets\": [\"192.0.2.1\"]}]}]}",
		"{\"services\": [{\"name\": \"a.example.com\", \"policy\": "
		"\"all\", \"endpoints\": [{\"target\": \"192.0.2.1\"}], "
		"\"rules\": 5}]}",
		"{\"services\": [{\"name\": \"a.example.com\", \"policy\": "
		"\"all\", \"endpoints\": [{\"target\": \"192.0.2.1\", "
		"\"check\": {\"url\": \"tcp://192.0.2.1:80\", \"interval\": 2, "
		"\"timeout\": 2}}]}]}",
		"{\"services\": [{\"name\": \"a.example.com\", \"policy\": "
		"\"all\", \"when_down\": \"nowhere\"}]}",
		"{\"services\": [{\"name\": \"a.example.com\", \"policy\": "
		"\"all\", \"ttl\": -1}]}",
		"{\"services\": [{\"name\": \"a..example.com\", \"policy\": "
		"\"all\"}]}",
		/* The same for a service the store has (compared, not
		 * added). */
		"{\"services\": [{\"name\": \"api.gslb.example.com\", "
		"\"policy\": \"weighted\", \"endpoints\": [{\"target\": "
		"\"192.0.2.10\", \"priority\": 65536}]}]}",
		"{\"services\": [{\"name\": \"api.gslb.example.com\", "
		"\"policy\": \"weighted\", \"endpoints\": [{\"target\": "
		"\"192.0.2.10\"}, {\"target\": \"192.0.2.10\"}]}]}",
	};
	struct store *a = open_base("ea.db"), *b = open_base("eb.db");

	if (!a || !b)
		goto out;
	for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
		char what[32];

		snprintf(what, sizeof what, "bad doc %zu", i);
		CHECK(both(a, b, docs[i], true, false, what) < 0,
		      "%s accepted", what);
	}
	/* One endpoint more than a service may have; the last one also
	 * repeated. */
	for (int dup = 0; dup < 2; dup++) {
		char *d = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&d, &len);

		fputs("{\"services\": [{\"name\": \"a.example.com\", "
		      "\"policy\": \"all\", \"endpoints\": [", f);
		for (int k = 0; k <= SVC_MAX_ENDPOINTS; k++)
			fprintf(f, "%s{\"target\": \"10.1.%d.%d\"}", k ? ", " : "",
			        dup && k == SVC_MAX_ENDPOINTS ? 0 : k / 256,
			        dup && k == SVC_MAX_ENDPOINTS ? 0 : k % 256);
		fputs("]}]}", f);
		fclose(f);
		CHECK(both(a, b, d, true, false, dup ? "257th repeated" :
		           "257 endpoints") < 0, "%d: accepted", dup);
		free(d);
	}
out:
	store_close(a);
	store_close(b);
}

/* Errors say where in the document; a parse error writes nothing. */
static void test_import_where(void)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{ "{\"services\": [\n{\"name\": \"a.example.com\", \"policy\": "
		  "\"all\"},\n  {\"name\": \"b.example.com\", \"policy\": "
		  "\"all\", \"ttl\": -1}]}",
		  "services[1] (b.example.com): ttl -1 outside 0..2147483647 "
		  "(line 3, byte 61)" },
		{ "{\"services\": [\n{\"name\": \"a.example.com\", \"policy\": "
		  "\"all\"},\n", "import: line 3, byte 59: the document ends "
		  "early" },
		{ "{\"services\": [{\"name\": \"a.example.com\", \"policy\": "
		  "\"all\"}, x]}", "import: line 1, byte 58: lexical error" },
	};
	struct store *b = open_base("w.db");
	char *before;

	if (!b)
		return;
	before = dump(b);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		FILE *in = fmemopen((void *)cases[i].text,
		                    strlen(cases[i].text), "r");
		char err[600] = "", *now;
		int rc = cfg_import_stream(b, in, 0, NULL, NULL, err,
		                           sizeof err);

		fclose(in);
		CHECK(rc == -EINVAL && strstr(err, cases[i].want), "case %zu: "
		      "%d '%s', want '%s'", i, rc, err, cases[i].want);
		now = dump(b);
		CHECK(strcmp(before, now) == 0, "case %zu: store changed", i);
		free(now);
	}
	free(before);
	store_close(b);
}

/* The streamed export writes the bytes of the whole-document one. */
static void check_export(struct store *db, const char *what)
{
	char err[256] = "", *buf = NULL, *want;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	json_t *doc = cfg_export(db, NULL, err, sizeof err);
	int rc = cfg_export_stream(db, f, err, sizeof err);

	fclose(f);
	want = json_dumps(doc, CFG_EXPORT_FLAGS);
	CHECK(rc == 0 && want, "%s: export: %d %s", what, rc, err);
	if (want) {
		size_t n = strlen(want);

		CHECK(len == n + 1 && memcmp(buf, want, n) == 0 &&
		      buf[n] == '\n', "%s: streamed export differs:\n%s\n---\n"
		      "%s", what, want, buf);
	}
	free(want);
	free(buf);
	json_decref(doc);
}

static void test_export(void)
{
	struct store *db = open_base("x.db");
	struct cfg_write w = { .who = "test", .force = true };
	FILE *in;
	char err[600];

	if (!db)
		return;
	check_export(db, "base");
	cfg_write_use(&w);
	in = fmemopen((void *)doc_a, strlen(doc_a), "r");
	CHECK(cfg_import_stream(db, in, 0, NULL, NULL, err, sizeof err) == 0,
	      "doc a: %s", err);
	fclose(in);
	check_export(db, "doc a");
	in = fmemopen("{\"services\": []}", 16, "r");
	CHECK(cfg_import_stream(db, in, 0, NULL, NULL, err, sizeof err) == 0,
	      "empty: %s", err);
	fclose(in);
	cfg_write_use(NULL);
	cfg_write_done(&w);
	check_export(db, "empty");
	store_close(db);
}

static long long ep_id(struct store *db, const char *target)
{
	sqlite3_stmt *st = NULL;
	long long id = -1;

	if (sqlite3_prepare_v2(db->h, "SELECT id FROM endpoints WHERE target "
	                       "= ?", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, target, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			id = sqlite3_column_int64(st, 0);
	}
	sqlite3_finalize(st);
	return id;
}

static int import_text(struct store *db, const char *text, char *err,
                       size_t errlen)
{
	FILE *in = fmemopen((void *)text, strlen(text), "r");
	int rc = cfg_import_stream(db, in, 0, NULL, NULL, err, errlen);

	fclose(in);
	return rc;
}

/* A removed endpoint's id is never given to a new one: not after an
 * endpoint rm, not after a service rm (cascade), not in an import that
 * removes one and adds another, not by the whole-document import. */
static void test_ids_not_reused(void)
{
	struct store *db = open_base("ids.db");
	struct cfg_write w = { .who = "test", .force = true };
	struct cfg_endpoint e = { .target = "192.0.2.50" };
	json_t *doc;
	struct cfg_plan *plan = NULL;
	char err[600];
	long long top;

	if (!db)
		return;
	cfg_write_use(&w);
	/* The base's highest id is 8 (old.'s endpoint). */
	CHECK(cfg_endpoint_rm(db, "old.gslb.example.com", "192.0.2.40", err,
	                      sizeof err) == 0, "rm: %s", err);
	CHECK(cfg_endpoint_add(db, "old.gslb.example.com", &e, err,
	                       sizeof err) == 0, "add: %s", err);
	CHECK(ep_id(db, "192.0.2.50") == 9, "after rm of id 8, new id %lld",
	      ep_id(db, "192.0.2.50"));
	CHECK(cfg_service_rm(db, "old.gslb.example.com", err, sizeof err) == 0,
	      "service rm: %s", err);
	e.target = "192.0.2.51";
	CHECK(cfg_endpoint_add(db, "geo.gslb.example.com", &e, err,
	                       sizeof err) == 0, "add: %s", err);
	CHECK(ep_id(db, "192.0.2.51") == 10, "after service rm, new id %lld",
	      ep_id(db, "192.0.2.51"));
	/* The streamed import removes the top id (zz.'s), then adds. */
	CHECK(import_text(db, "{\"services\": [{\"name\": \"zz.example.\", "
	                  "\"policy\": \"all\", \"endpoints\": [{\"target\": "
	                  "\"192.0.2.60\"}]}]}", err, sizeof err) == 0,
	      "import: %s", err);
	top = ep_id(db, "192.0.2.60");
	CHECK(top == 11, "zz. endpoint id %lld", top);
	CHECK(import_text(db, "{\"services\": [{\"name\": \"aa.example.\", "
	                  "\"policy\": \"all\", \"endpoints\": [{\"target\": "
	                  "\"192.0.2.61\"}]}, {\"name\": \"zz.example.\", "
	                  "\"policy\": \"all\", \"endpoints\": [{\"target\": "
	                  "\"192.0.2.62\"}]}]}", err, sizeof err) == 0,
	      "import: %s", err);
	CHECK(ep_id(db, "192.0.2.61") == 12 && ep_id(db, "192.0.2.62") == 13,
	      "streamed import: new ids %lld %lld", ep_id(db, "192.0.2.61"),
	      ep_id(db, "192.0.2.62"));
	/* The whole-document import: the top id removed, one added. */
	doc = json_loads("{\"services\": [{\"name\": \"aa.example.\", "
	                 "\"policy\": \"all\", \"endpoints\": [{\"target\": "
	                 "\"192.0.2.61\"}, {\"target\": \"192.0.2.63\"}]}]}",
	                 0, NULL);
	CHECK(cfg_import_plan(db, doc, 0, &plan, err, sizeof err) == 0,
	      "import plan: %s", err);
	CHECK(ep_id(db, "192.0.2.63") == 14, "plan import: new id %lld",
	      ep_id(db, "192.0.2.63"));
	cfg_plan_free(plan);
	json_decref(doc);
	cfg_write_use(NULL);
	cfg_write_done(&w);
	store_close(db);
}

/* A version 3 store (no id_seq) is migrated; its ids are kept. */
static void test_ids_migration(void)
{
	struct store *db = open_base("v3.db");
	char path[256], err[256];

	if (!db)
		return;
	CHECK(store_exec(db->h, "DROP TRIGGER endpoints_removed; DROP TABLE "
	                 "id_seq; PRAGMA user_version = 3; DELETE FROM "
	                 "endpoints WHERE id = 8") == 0, "make a v3 store");
	store_close(db);
	db = NULL;
	snprintf(path, sizeof path, "%s/v3.db", dir);
	CHECK(store_open(path, 0, &db, err, sizeof err) == 0, "migrate: %s",
	      err);
	if (!db)
		return;
	CHECK(store_exec(db->h, "DELETE FROM endpoints WHERE id = 7; INSERT "
	                 "INTO endpoints (id, service_id, target) VALUES ("
	                 CFG_EP_NEW_ID ", 3, '192.0.2.99')") == 0,
	      "insert after migration");
	CHECK(ep_id(db, "192.0.2.99") == 8 && ep_id(db, "192.0.2.11") == 4,
	      "after migration: new id %lld (8: removed before the "
	      "migration, not known)", ep_id(db, "192.0.2.99"));
	store_close(db);
}

int main(void)
{
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	test_jstream_good();
	test_jstream_bad();
	test_import_same();
	test_import_errors();
	test_import_where();
	test_export();
	test_ids_not_reused();
	test_ids_migration();
	{
		char cmd[64];

		snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
	}
	return TEST_DONE();
}
