/* tests/unit/test_svc.c - the service set loader and the policy engine
 * (policy/svc.h): every policy, health/admin/drain, when-down, rules and the
 * ECS scope, the weighted split and sticky stability. Table-driven where
 * the cases are alike; the configuration is SQL on an in-memory store. */
#include <arpa/inet.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/store.h"
#include "db/store_sql.h"
#include "db/svc_load.h"
#include "tests/unit/harness.h"

/* Builds a set from SQL run on a fresh in-memory store. CHECK constraints
 * are off so tests can plant invalid rows the loader must skip. */
static struct svc_set *load_sql(const char *sql)
{
	struct store *h = NULL;
	struct svc_set *s = NULL;
	char err[256];

	if (store_open(":memory:", STORE_CREATE, &h, err, sizeof err) < 0) {
		fprintf(stderr, "store_open: %s\n", err);
		return NULL;
	}
	if (store_exec(h->h, "PRAGMA ignore_check_constraints = ON") < 0 ||
	    store_exec(h->h, sql) < 0) {
		fprintf(stderr, "sql: %s\n", store_errmsg(h));
		store_close(h);
		return NULL;
	}
	if (svc_load(h, &s, err, sizeof err) < 0)
		fprintf(stderr, "svc_load: %s\n", err);
	store_close(h);
	return s;
}

static void client_v4(struct svc_client *c, const char *a, unsigned plen)
{
	struct in_addr a4;

	memset(c, 0, sizeof *c);
	inet_pton(AF_INET, a, &a4);
	c->addr.s6_addr[10] = c->addr.s6_addr[11] = 0xff;
	memcpy(&c->addr.s6_addr[12], &a4, 4);
	c->src_plen = 96 + plen;
}

/* Health view over endpoint ids 0..15: the test writes the arrays, and
 * view_of() turns them into the hstate_view the policy engine reads. */
struct view {
	size_t n_regions;
	uint8_t state[16], stale[16];
	struct hstate_region regions[2];
	float rtt[2 * 16];
};

static void view_init(struct view *w)
{
	memset(w, 0, sizeof *w);
	for (size_t i = 0; i < 32; i++)
		w->rtt[i] = -1;
}

static struct hstate_view g_view;
static struct cowvec g_rtt[2];

static void view_release(void)
{
	cowvec_fini(&g_view.cell);
	for (int r = 0; r < 2; r++)
		cowvec_fini(&g_rtt[r]);
}

static const struct hstate_view *view_of(const struct view *w)
{
	view_release();
	memset(&g_view, 0, sizeof g_view);
	cowvec_init(&g_view.cell, sizeof(struct hstate_vcell), NULL);
	if (cowvec_reserve(&g_view.cell, 16) < 0)
		abort();
	for (uint32_t i = 0; i < 16; i++) {
		struct hstate_vcell *c = cowvec_mut(&g_view.cell, i);

		c->state = w->state[i];
		c->stale = w->stale[i];
	}
	for (int r = 0; r < 2; r++) {
		cowvec_init(&g_rtt[r], sizeof(float), NULL);
		if (cowvec_reserve(&g_rtt[r], 16) < 0)
			abort();
		for (uint32_t i = 0; i < 16; i++)
			*(float *)cowvec_mut(&g_rtt[r], i) = w->rtt[r * 16 + i];
	}
	g_view.n = 16;
	g_view.n_regions = w->n_regions;
	g_view.regions = w->regions;
	g_view.rtt = g_rtt;
	return &g_view;
}

/* The answer as "a,b,c" text. */
static const char *answer_text(const struct svc_answer *a, char *buf,
                               size_t len)
{
	size_t o = 0;

	buf[0] = '\0';
	if (a->servfail)
		snprintf(buf, len, "SERVFAIL");
	for (unsigned i = 0; i < a->n && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? "," : "",
		                      a->t[i]->text);
	return buf;
}

/* ------------------------------------------------------------- names */

static void test_names(void)
{
	static const struct {
		const char *in, *text;  /* text NULL: must fail */
		int wire_len;
	} cases[] = {
		{ "www.example.com", "www.example.com.", 17 },
		{ "WWW.Example.COM.", "www.example.com.", 17 },
		{ "_svc.x-y.example.", "_svc.x-y.example.", 18 },
		{ "a", "a.", 3 },
		{ "", NULL, 0 },
		{ ".", NULL, 0 },
		{ "a..b.", NULL, 0 },
		{ "-a.example.", NULL, 0 },
		{ "a-.example.", NULL, 0 },
		{ "a b.example.", NULL, 0 },
		{ "1.2.3.4.", NULL, 0 },
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		  "aaaa.example.", NULL, 0 },   /* 64-octet label */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint8_t wire[SVC_NAME_MAX];
		char text[256];
		const char *why = NULL;
		int n = svc_name_parse(cases[i].in, wire, text, &why);

		if (!cases[i].text) {
			CHECK(n < 0 && why, "name '%s': accepted", cases[i].in);
			continue;
		}
		CHECK(n == cases[i].wire_len, "name '%s': wire len %d",
		      cases[i].in, n);
		CHECK(n > 0 && strcmp(text, cases[i].text) == 0,
		      "name '%s': text '%s'", cases[i].in, text);
	}
	/* 255-octet limit: 4 labels of 63 = 4 * 64 + 1 = 257 > 255. */
	char big[300];
	uint8_t wire[SVC_NAME_MAX];
	char text[256];
	const char *why;
	size_t o = 0;

	for (int l = 0; l < 4; l++) {
		memset(big + o, 'a', 63);
		o += 63;
		big[o++] = '.';
	}
	big[o] = '\0';
	CHECK(svc_name_parse(big, wire, text, &why) < 0, "257-octet name "
	      "accepted");
}

static void test_targets(void)
{
	static const struct {
		const char *in, *text;
		int type, len;
	} cases[] = {
		{ "192.0.2.1", "192.0.2.1", SVC_T_A, 4 },
		{ "2001:DB8::0:1", "2001:db8::1", SVC_T_AAAA, 16 },
		{ "LB.Example.NET.", "lb.example.net.", SVC_T_CNAME, 16 },
		{ "lb.example.net", NULL, 0, 0 },   /* CNAME needs the dot */
		{ "300.1.2.3", NULL, 0, 0 },
		{ "1.2.3.4.", NULL, 0, 0 },
		{ "bad_label!.example.", NULL, 0, 0 },
		{ "", NULL, 0, 0 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		uint8_t rd[SVC_NAME_MAX];
		char text[256];
		uint16_t type = 0;
		const char *why = NULL;
		int n = svc_target_parse(cases[i].in, &type, rd, text, &why);

		if (!cases[i].text) {
			CHECK(n < 0, "target '%s': accepted", cases[i].in);
			continue;
		}
		CHECK(n == cases[i].len && type == cases[i].type &&
		      strcmp(text, cases[i].text) == 0,
		      "target '%s': len %d type %u text '%s'", cases[i].in, n,
		      type, n > 0 ? text : "");
	}
}

/* ------------------------------------------------------------ loading */

static void test_load_problems(void)
{
	struct svc_set *s = load_sql(
		"INSERT INTO services (id, name, policy) VALUES "
		" (1, 'www.x.', 'failover'), (2, 'bad..name.', 'failover'),"
		" (3, 'p.x.', 'nosuch'), (4, 'ok.x.', 'all');"
		"INSERT INTO endpoints (id, service_id, target, lat, lon) VALUES"
		" (7, 1, '192.0.2.1', 95.2, 10),"
		" (8, 1, '192.0.2.2', 10, 10),"
		" (9, 1, 'not-an-address', NULL, NULL),"
		" (10, 4, '2001:db8::1', NULL, NULL);"
		"INSERT INTO endpoints (id, service_id, target, weight) VALUES"
		" (11, 4, '192.0.2.9', 70000);"
		"INSERT INTO rules (id, service_id, kind, pattern) VALUES "
		" (1, 1, 'cidr', '10.0.0.1/8'), (2, 1, 'country', 'DE');"
		"INSERT INTO rule_targets VALUES (2, 7);");
	const char *want[] = {
		"db: service id 2: bad name 'bad..name.': empty label",
		"db: service id 3 (p.x.): unknown policy 'nosuch'",
		"db: endpoint id 7 (service www.x.): latitude 95.2 outside "
		"-90..90",
		"db: endpoint id 9 (service www.x.): bad target "
		"'not-an-address'",
		"db: endpoint id 11 (service ok.x.): weight 70000 outside "
		"0..65535",
		"db: rule id 1 (service www.x.): bad rule cidr '10.0.0.1/8'",
		"db: rule id 2 (service www.x.): endpoint id 7 is not a "
		"(valid) endpoint",
	};
	const struct svc_service *v;

	CHECK(s != NULL, "load with bad rows failed");
	if (!s)
		return;
	CHECK(s->n == 2, "services kept: %zu (want 2)", s->n);
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		bool found = false;

		for (size_t k = 0; k < s->n_problems; k++)
			found |= strncmp(s->problems[k], want[i],
			                 strlen(want[i])) == 0;
		CHECK(found, "problem missing: %s", want[i]);
	}
	v = svc_find_text(s, "WWW.X");
	CHECK(v && v->n_eps == 1 && v->eps[0].id == 8 && v->n_rules == 0,
	      "www.x.: wrong endpoints/rules kept");
	v = svc_find_text(s, "ok.x.");
	CHECK(v && v->n_eps == 1 && v->eps[0].t.type == SVC_T_AAAA &&
	      v->answers == 8, "ok.x.: AAAA endpoint / answers 8");
	CHECK(svc_find_text(s, "p.x.") == NULL, "invalid service found");
	{
		static const uint8_t w[] = { 3, 'w', 'w', 'w', 1, 'x', 0 };

		CHECK(svc_find(s, w, sizeof w) == svc_find_text(s, "www.x"),
		      "svc_find by wire");
	}
	svc_set_free(s);
}

/* Endpoint rows are read in id order and grouped by service afterwards:
 * rows of one service interleaved with others' (endpoints added later),
 * services without rows, a skipped row in the middle, and the cap on
 * endpoints per service counted over scattered rows. */
static void test_load_scattered(void)
{
	struct svc_set *s = load_sql(
		"INSERT INTO services (id, name, policy) VALUES "
		" (1, 'a.x.', 'failover'), (2, 'b.x.', 'failover'),"
		" (3, 'c.x.', 'failover'), (4, 'd.x.', 'all');"
		"INSERT INTO endpoints (id, service_id, target, priority) VALUES"
		" (1, 2, '192.0.2.21', 1), (2, 1, '192.0.2.11', 1),"
		" (3, 2, 'bad target', 2), (4, 1, '192.0.2.12', 2),"
		" (5, 2, '192.0.2.23', 3), (6, 4, '192.0.2.41', 0),"
		" (7, 1, '192.0.2.13', 3);"
		"WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c "
		" WHERE i < 299) INSERT INTO endpoints (id, service_id, target) "
		" SELECT 100 + 2 * i, 4, '10.4.' || (i / 256) || '.' || (i % 256)"
		" FROM c;"
		"WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c "
		" WHERE i < 9) INSERT INTO endpoints (id, service_id, target) "
		" SELECT 101 + 2 * i, 1, '10.1.0.' || i FROM c;");
	static const struct {
		const char *name;
		size_t n;
		uint32_t ids[4];        /* the first ones */
	} want[] = {
		{ "a.x.", 13, { 2, 4, 7, 101 } },
		{ "b.x.", 2, { 1, 5 } },
		{ "c.x.", 0, { 0 } },
		{ "d.x.", SVC_MAX_ENDPOINTS, { 6, 100, 102, 104 } },
	};
	char cap_msg[128];
	bool found_bad = false, found_cap = false;

	CHECK(s != NULL, "load failed");
	if (!s)
		return;
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		const struct svc_service *v = svc_find_text(s, want[i].name);
		bool ok = v && v->n_eps == want[i].n;

		for (size_t k = 0; ok && k < 4 && k < want[i].n; k++)
			ok = v->eps[k].id == want[i].ids[k];
		for (size_t k = 1; ok && k < v->n_eps; k++)
			ok = v->eps[k - 1].id < v->eps[k].id &&
			     v->eps[k].svc == v;
		CHECK(ok, "%s: %zu endpoints (want %zu), not the right ones "
		      "in id order", want[i].name, v ? v->n_eps : 0, want[i].n);
	}
	/* d.x.: its 257th endpoint by id is the first one skipped. */
	snprintf(cap_msg, sizeof cap_msg, "db: endpoint id %d (service d.x.): "
	         "more than %d endpoints", 100 + 2 * (SVC_MAX_ENDPOINTS - 1),
	         SVC_MAX_ENDPOINTS);
	for (size_t k = 0; k < s->n_problems; k++) {
		found_bad |= strncmp(s->problems[k], "db: endpoint id 3 "
		                     "(service b.x.): bad target", 36) == 0;
		found_cap |= strncmp(s->problems[k], cap_msg,
		                     strlen(cap_msg)) == 0;
	}
	CHECK(found_bad, "bad target of b.x. not reported");
	CHECK(found_cap, "cap not reported as '%s'", cap_msg);
	CHECK(s->n_problems == 1 + 300 + 1 - SVC_MAX_ENDPOINTS,
	      "%zu problems", s->n_problems);
	svc_set_free(s);
}

/* ---------------------------------------------------------- failover */

static const char failover_sql[] =
	"INSERT INTO services (id, name, policy, when_down) VALUES "
	" (1, 'fo.x.', 'failover', 'open'), (2, 'fc.x.', 'failover', "
	" 'closed'), (3, 'ft.x.', 'failover', 'sorry.example.net.');"
	"INSERT INTO endpoints (id, service_id, target, priority, check_url) "
	"VALUES (1, 1, 'a.example.net.', 0, 'tcp://a:1'),"
	" (2, 1, 'b.example.net.', 10, 'tcp://b:1'),"
	" (3, 1, 'c.example.net.', 20, NULL),"
	" (4, 2, '192.0.2.4', 0, 'tcp://x:1'),"
	" (5, 3, '192.0.2.5', 0, 'tcp://x:1');";

static void test_failover(void)
{
	/* state: per endpoint id 1..3 (0 unknown, 1 up, 2 down);
	 * admin/drained applied with SQL before loading. */
	static const struct {
		const char *name, *sql;
		uint8_t st[6];
		const char *svc, *want;
		uint8_t mode;
	} cases[] = {
		{ "all up: best priority", "", { 0, 1, 1, 1, 1, 1 }, "fo.x.",
		  "a.example.net.", SVC_MODE_NORMAL },
		{ "unknown counts as up", "", { 0, 0, 0, 0, 0, 0 }, "fo.x.",
		  "a.example.net.", SVC_MODE_NORMAL },
		{ "a down: next", "", { 0, 2, 1, 1, 1, 1 }, "fo.x.",
		  "b.example.net.", SVC_MODE_NORMAL },
		{ "a b down: unchecked c", "", { 0, 2, 2, 1, 1, 1 }, "fo.x.",
		  "c.example.net.", SVC_MODE_NORMAL },
		{ "a drained", "UPDATE endpoints SET drained = 1 WHERE id = 1",
		  { 0, 1, 1, 1, 1, 1 }, "fo.x.", "b.example.net.",
		  SVC_MODE_NORMAL },
		{ "a forced down", "UPDATE endpoints SET admin = 'down' WHERE "
		  "id = 1", { 0, 1, 1, 1, 1, 1 }, "fo.x.", "b.example.net.",
		  SVC_MODE_NORMAL },
		{ "a forced up while down", "UPDATE endpoints SET admin = 'up' "
		  "WHERE id = 1", { 0, 2, 1, 1, 1, 1 }, "fo.x.",
		  "a.example.net.", SVC_MODE_NORMAL },
		{ "all down/drained: open includes drained",
		  "UPDATE endpoints SET drained = 1 WHERE id = 3",
		  { 0, 2, 2, 1, 1, 1 }, "fo.x.", "a.example.net.",
		  SVC_MODE_OPEN },
		{ "open never answers forced down",
		  "UPDATE endpoints SET drained = 1 WHERE id = 3;"
		  "UPDATE endpoints SET admin = 'down' WHERE id = 1",
		  { 0, 2, 2, 1, 1, 1 }, "fo.x.", "b.example.net.",
		  SVC_MODE_OPEN },
		{ "all forced down: servfail",
		  "UPDATE endpoints SET admin = 'down' WHERE service_id = 1",
		  { 0, 1, 1, 1, 1, 1 }, "fo.x.", "SERVFAIL", SVC_MODE_EMPTY },
		{ "closed", "", { 0, 1, 1, 1, 2, 1 }, "fc.x.", "SERVFAIL",
		  SVC_MODE_CLOSED },
		{ "closed, healthy", "", { 0, 1, 1, 1, 1, 1 }, "fc.x.",
		  "192.0.2.4", SVC_MODE_NORMAL },
		{ "fallback target", "", { 0, 1, 1, 1, 1, 2 }, "ft.x.",
		  "sorry.example.net.", SVC_MODE_FALLBACK },
		{ "answers 2 stays in best priority",
		  "UPDATE services SET answers = 2 WHERE id = 1;"
		  "UPDATE endpoints SET priority = 0 WHERE id = 2",
		  { 0, 1, 1, 1, 1, 1 }, "fo.x.",
		  "a.example.net.,b.example.net.", SVC_MODE_NORMAL },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char sql[2048], buf[256];
		struct svc_set *s;
		const struct svc_service *v;
		struct svc_client c;
		struct svc_answer a;
		struct view w;
		uint64_t rng = 1;

		snprintf(sql, sizeof sql, "%s%s;", failover_sql, cases[i].sql);
		s = load_sql(sql);
		v = s ? svc_find_text(s, cases[i].svc) : NULL;
		CHECK(v != NULL, "%s: load", cases[i].name);
		if (!v) {
			svc_set_free(s);
			continue;
		}
		view_init(&w);
		memcpy(w.state, cases[i].st, 6);
		client_v4(&c, "198.51.100.1", 24);
		svc_select(v, &c, view_of(&w), &rng, 0, &a, NULL);
		CHECK(strcmp(answer_text(&a, buf, sizeof buf),
		             cases[i].want) == 0 && a.mode == cases[i].mode,
		      "%s: got %s mode %u, want %s mode %u", cases[i].name,
		      buf, a.mode, cases[i].want, cases[i].mode);
		CHECK(a.scope == 0, "%s: scope %u for a client-independent "
		      "answer", cases[i].name, a.scope);
		svc_set_free(s);
	}
	/* No health view at all: checked endpoints count as up. */
	struct svc_set *s = load_sql(failover_sql);
	struct svc_client c;
	struct svc_answer a;
	char buf[256];
	uint64_t rng = 1;

	client_v4(&c, "198.51.100.1", 24);
	svc_select(svc_find_text(s, "fo.x."), &c, NULL, &rng, 0, &a, NULL);
	CHECK(strcmp(answer_text(&a, buf, sizeof buf), "a.example.net.") == 0,
	      "no view: %s", buf);
	svc_set_free(s);
}

/* ---------------------------------------------------------- weighted */

static void test_weighted_split(void)
{
	struct svc_set *s = load_sql(
		"INSERT INTO services (id, name, policy) VALUES "
		" (1, 'w.x.', 'weighted');"
		"INSERT INTO endpoints (id, service_id, target, weight, "
		"check_url) VALUES (1, 1, '192.0.2.1', 70, 'tcp://a:1'),"
		" (2, 1, '192.0.2.2', 20, 'tcp://a:1'),"
		" (3, 1, '192.0.2.3', 10, 'tcp://a:1'),"
		" (4, 1, '192.0.2.4', 0, 'tcp://a:1');");
	const struct svc_service *v = s ? svc_find_text(s, "w.x.") : NULL;
	unsigned count[5] = { 0 };
	struct svc_client c;
	struct svc_answer a;
	struct view w;
	uint64_t rng = 12345;

	CHECK(v != NULL, "weighted: load");
	if (!v)
		return;
	client_v4(&c, "198.51.100.1", 24);
	for (int i = 0; i < 10000; i++) {
		svc_select(v, &c, NULL, &rng, 0, &a, NULL);
		if (a.n == 1)
			count[a.ep[0]->id]++;
	}
	CHECK(abs((int)count[1] - 7000) < 250 && abs((int)count[2] - 2000) < 200
	      && abs((int)count[3] - 1000) < 150 && count[4] == 0,
	      "split 70/20/10/0: %u %u %u %u", count[1], count[2], count[3],
	      count[4]);
	CHECK(a.scope == 0, "non-sticky weighted scope %u", a.scope);
	/* Weight 0 only when nothing positive is up. */
	view_init(&w);
	w.state[1] = w.state[2] = w.state[3] = HSTATE_DOWN;
	svc_select(v, &c, view_of(&w), &rng, 0, &a, NULL);
	CHECK(a.n == 1 && a.ep[0]->id == 4 && a.mode == SVC_MODE_NORMAL,
	      "weight 0 not used when the rest is down");
	/* Two answers with one positive weight up: never the weight-0 one. */
	w.state[1] = HSTATE_UP;
	svc_set_free(s);
	s = load_sql("INSERT INTO services (id, name, policy, answers) VALUES "
	             " (1, 'w.x.', 'weighted', 2);"
	             "INSERT INTO endpoints (id, service_id, target, weight) "
	             "VALUES (1, 1, '192.0.2.1', 70), (2, 1, '192.0.2.2', 0)");
	v = svc_find_text(s, "w.x.");
	for (int i = 0; i < 100; i++) {
		svc_select(v, &c, NULL, &rng, 0, &a, NULL);
		CHECK(a.n == 1 && a.ep[0]->id == 1, "weight 0 as 2nd answer");
	}
	svc_set_free(s);
	/* Two answers: without replacement. */
	s = load_sql("INSERT INTO services (id, name, policy, answers) VALUES "
	             " (1, 'w.x.', 'weighted', 2);"
	             "INSERT INTO endpoints (id, service_id, target, weight) "
	             "VALUES (1, 1, '192.0.2.1', 70), (2, 1, '192.0.2.2', 30)");
	v = svc_find_text(s, "w.x.");
	for (int i = 0; i < 100; i++) {
		svc_select(v, &c, NULL, &rng, 0, &a, NULL);
		CHECK(a.n == 2 && a.ep[0] != a.ep[1], "two distinct answers");
	}
	svc_set_free(s);
}

static void test_sticky(void)
{
	struct svc_set *s = load_sql(
		"INSERT INTO services (id, name, policy, sticky) VALUES "
		" (1, 'st.x.', 'weighted', 1);"
		"INSERT INTO endpoints (id, service_id, target, weight, "
		"check_url) VALUES (1, 1, '192.0.2.1', 50, 'tcp://a:1'),"
		" (2, 1, '192.0.2.2', 30, 'tcp://a:1'),"
		" (3, 1, '192.0.2.3', 20, 'tcp://a:1');");
	const struct svc_service *v = s ? svc_find_text(s, "st.x.") : NULL;
	uint32_t before[2000];
	unsigned moved = 0, wrong = 0, share[4] = { 0 }, unstable = 0;
	struct view w;

	CHECK(v != NULL, "sticky: load");
	if (!v)
		return;
	view_init(&w);
	for (int i = 0; i < 2000; i++) {
		struct svc_client c;
		struct svc_answer a, b;
		char addr[32];
		uint64_t r1 = (uint64_t)i + 1, r2 = (uint64_t)i * 7 + 99;

		snprintf(addr, sizeof addr, "10.%d.%d.0", i / 256, i % 256);
		client_v4(&c, addr, 24);
		svc_select(v, &c, view_of(&w), &r1, 0, &a, NULL);
		svc_select(v, &c, view_of(&w), &r2, 0, &b, NULL);
		unstable += a.ep[0] != b.ep[0];
		before[i] = a.ep[0]->id;
		share[before[i]]++;
		CHECK(a.scope == 120, "sticky scope %u (want /24 = 120)",
		      a.scope);
	}
	CHECK(unstable == 0, "sticky: %u subnets changed answer", unstable);
	CHECK(abs((int)share[1] - 1000) < 150 && abs((int)share[2] - 600) < 120
	      && abs((int)share[3] - 400) < 100,
	      "sticky split 50/30/20: %u %u %u", share[1], share[2], share[3]);
	/* Endpoint 3 goes down: only its subnets move. */
	w.state[3] = HSTATE_DOWN;
	for (int i = 0; i < 2000; i++) {
		struct svc_client c;
		struct svc_answer a;
		char addr[32];
		uint64_t r = 5;

		snprintf(addr, sizeof addr, "10.%d.%d.0", i / 256, i % 256);
		client_v4(&c, addr, 24);
		svc_select(v, &c, view_of(&w), &r, 0, &a, NULL);
		if (before[i] == 3)
			moved += a.ep[0]->id != 3;
		else
			wrong += a.ep[0]->id != before[i];
	}
	CHECK(wrong == 0 && moved == share[3], "sticky removal: %u subnets of "
	      "others moved, %u of %u moved", wrong, moved, share[3]);
	svc_set_free(s);
}

/* ------------------------------------------------------- geo, latency */

static const char geo_sql[] =
	"INSERT INTO services (id, name, policy) VALUES (1, 'g.x.', 'geo'),"
	" (2, 'l.x.', 'latency');"
	"INSERT INTO endpoints (id, service_id, target, lat, lon, bias) VALUES"
	" (1, 1, 'fra.example.net.', 50.1, 8.7, 0),"
	" (2, 1, 'nyc.example.net.', 40.7, -74.0, 0),"
	" (3, 1, 'tyo.example.net.', 35.7, 139.7, 0),"
	" (4, 1, 'nowhere.example.net.', NULL, NULL, 0),"
	" (5, 2, 'fra.example.net.', 50.1, 8.7, 0),"
	" (6, 2, 'nyc.example.net.', 40.7, -74.0, 0);";

static void test_geo(void)
{
	static const struct {
		const char *name, *sql, *client;
		double lat, lon;
		bool has_loc;
		const char *country, *continent;
		unsigned geo_plen;
		const char *want;
		unsigned scope;
	} cases[] = {
		{ "paris -> fra", "", "192.0.2.1", 48.9, 2.35, true, "FR",
		  "EU", 112, "fra.example.net.", 112 },
		{ "los angeles -> nyc", "", "192.0.2.1", 34.0, -118.2, true,
		  "US", "NA", 120, "nyc.example.net.", 120 },
		{ "honolulu -> tyo", "", "192.0.2.1", 21.3, -157.8, true, "US",
		  "NA", 120, "tyo.example.net.", 120 },
		{ "honolulu, nyc bias 50 -> nyc", "UPDATE endpoints SET bias = "
		  "50 WHERE id = 2", "192.0.2.1", 21.3, -157.8, true, "US",
		  "NA", 120, "nyc.example.net.", 120 },
		{ "paris, fra bias -95 -> nyc",
		  "UPDATE endpoints SET bias = -95 WHERE id = 1", "192.0.2.1",
		  48.9, 2.35, true, "FR", "EU", 112, "nyc.example.net.", 112 },
		{ "no location -> endpoint order", "", "192.0.2.1", 0, 0,
		  false, "", "", 96, "fra.example.net.", 96 },
		{ "coordless ranks last", "UPDATE endpoints SET admin = 'down' "
		  "WHERE id IN (1, 2)", "192.0.2.1", 48.9, 2.35, true, "FR",
		  "EU", 112, "tyo.example.net.", 112 },
		{ "cidr rule wins over distance",
		  "INSERT INTO rules VALUES (1, 1, 'cidr', '10.1.0.0/16');"
		  "INSERT INTO rule_targets VALUES (1, 2)", "10.1.5.5", 48.9,
		  2.35, true, "FR", "EU", 104, "nyc.example.net.", 112 },
		{ "cidr rule inside the geo block narrows the scope",
		  "INSERT INTO rules VALUES (1, 1, 'cidr', '10.1.0.0/16');"
		  "INSERT INTO rule_targets VALUES (1, 2)", "10.2.3.4", 48.9,
		  2.35, true, "FR", "EU", 104, "fra.example.net.", 111 },
		{ "ecs /0: no cidr rule, scope 0",
		  "INSERT INTO rules VALUES (1, 1, 'cidr', '0.0.0.0/8');"
		  "INSERT INTO rule_targets VALUES (1, 2)", "0.0.0.0", 48.9,
		  2.35, true, "FR", "EU", 0, "fra.example.net.", 0 },
		{ "country rule", "INSERT INTO rules VALUES (1, 1, 'country', "
		  "'FR'); INSERT INTO rule_targets VALUES (1, 3)", "192.0.2.1",
		  48.9, 2.35, true, "FR", "EU", 112, "tyo.example.net.", 112 },
		{ "cidr beats country",
		  "INSERT INTO rules VALUES (1, 1, 'country', 'FR'),"
		  " (2, 1, 'cidr', '192.0.2.0/24'), (3, 1, 'continent', 'EU');"
		  "INSERT INTO rule_targets VALUES (1, 3), (2, 2), (3, 3)",
		  "192.0.2.1", 48.9, 2.35, true, "FR", "EU", 112,
		  "nyc.example.net.", 120 },
		{ "continent rule", "INSERT INTO rules VALUES (1, 1, "
		  "'continent', 'EU'); INSERT INTO rule_targets VALUES (1, 2)",
		  "192.0.2.1", 48.9, 2.35, true, "FR", "EU", 112,
		  "nyc.example.net.", 112 },
		{ "rule target down: less specific",
		  "INSERT INTO rules VALUES (1, 1, 'country', 'FR');"
		  "INSERT INTO rule_targets VALUES (1, 3);"
		  "UPDATE endpoints SET admin = 'down' WHERE id = 3",
		  "192.0.2.1", 48.9, 2.35, true, "FR", "EU", 112,
		  "fra.example.net.", 112 },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char sql[2048], buf[256];
		struct svc_set *s;
		const struct svc_service *v;
		struct svc_client c;
		struct svc_answer a;
		uint64_t rng = 1;

		snprintf(sql, sizeof sql, "%s%s;", geo_sql, cases[i].sql);
		s = load_sql(sql);
		v = s ? svc_find_text(s, "g.x.") : NULL;
		CHECK(v != NULL && s->n_problems == 0, "%s: load",
		      cases[i].name);
		if (!v) {
			svc_set_free(s);
			continue;
		}
		client_v4(&c, cases[i].client,
		          strcmp(cases[i].client, "0.0.0.0") ? 32 : 0);
		c.has_loc = cases[i].has_loc;
		c.lat = cases[i].lat;
		c.lon = cases[i].lon;
		snprintf(c.country, 3, "%s", cases[i].country);
		snprintf(c.continent, 3, "%s", cases[i].continent);
		c.geo_plen = cases[i].geo_plen;
		svc_select(v, &c, NULL, &rng, 0, &a, NULL);
		CHECK(strcmp(answer_text(&a, buf, sizeof buf),
		             cases[i].want) == 0, "%s: got %s, want %s",
		      cases[i].name, buf, cases[i].want);
		CHECK(a.scope == cases[i].scope, "%s: scope %u, want %u",
		      cases[i].name, a.scope, cases[i].scope);
		svc_set_free(s);
	}
}

static void test_latency(void)
{
	struct svc_set *s = load_sql(geo_sql);
	const struct svc_service *v = s ? svc_find_text(s, "l.x.") : NULL;
	struct svc_client c;
	struct svc_answer a;
	struct view w;
	struct svc_why_ep wep[2];
	struct svc_why why = { .ep = wep, .cap = 2 };
	uint64_t rng = 1;

	CHECK(v != NULL, "latency: load");
	if (!v)
		return;
	view_init(&w);
	w.n_regions = 2;
	w.regions[0] = (struct hstate_region){ .name = "eu", .has_coords = true,
					       .lat = 50, .lon = 8 };
	w.regions[1] = (struct hstate_region){ .name = "us", .has_coords = true,
					       .lat = 40, .lon = -74 };
	client_v4(&c, "192.0.2.1", 24);
	c.has_loc = true;
	c.lat = 48.9;                   /* Paris: nearest region eu */
	c.lon = 2.35;
	c.geo_plen = 112;
	/* No measurement: geo (fra is nearer). */
	svc_select(v, &c, view_of(&w), &rng, 0, &a, &why);
	CHECK(a.n == 1 && strcmp(a.t[0]->text, "fra.example.net.") == 0,
	      "latency without rtt falls back to geo");
	/* From eu, nyc measures faster (odd but it is what was measured). */
	w.rtt[0 * 16 + 5] = 40;
	w.rtt[0 * 16 + 6] = 12;
	w.rtt[1 * 16 + 5] = 5;          /* us region: ignored for Paris */
	svc_select(v, &c, view_of(&w), &rng, 0, &a, &why);
	CHECK(a.n == 1 && strcmp(a.t[0]->text, "nyc.example.net.") == 0 &&
	      why.region == 0, "latency picks lowest rtt from eu");
	CHECK(a.scope == 112, "latency scope %u", a.scope);
	CHECK(wep[1].chosen && wep[1].rtt_ms == 12 &&
	      strstr(wep[1].reason, "rtt 12.0 ms from region eu"),
	      "why: %s", wep[1].reason);
	/* A view state for an endpoint without a check is ignored: an
	 * endpoint without a check is healthy. */
	w.state[6] = HSTATE_DOWN;
	svc_select(v, &c, view_of(&w), &rng, 0, &a, NULL);
	CHECK(a.n == 1 && strcmp(a.t[0]->text, "nyc.example.net.") == 0,
	      "latency: unchecked endpoint follows no health data");
	svc_set_free(s);
}

/* ----------------------------------------------------------- all, rr */

static void test_all_rr(void)
{
	struct svc_set *s = load_sql(
		"INSERT INTO services (id, name, policy) VALUES "
		" (1, 'all.x.', 'all'), (2, 'rr.x.', 'roundrobin');"
		"INSERT INTO services (id, name, policy, answers) VALUES "
		" (3, 'all2.x.', 'all', 2);"
		"INSERT INTO endpoints (id, service_id, target, drained) VALUES"
		" (1, 1, '192.0.2.1', 0), (2, 1, '192.0.2.2', 1),"
		" (3, 1, '2001:db8::3', 0),"
		" (4, 2, '192.0.2.4', 0), (5, 2, '192.0.2.5', 0),"
		" (6, 2, '192.0.2.6', 0),"
		" (7, 3, '192.0.2.7', 0), (8, 3, '192.0.2.8', 0),"
		" (9, 3, '192.0.2.9', 0);");
	static const struct {
		const char *svc;
		uint32_t step;
		const char *want;
	} cases[] = {
		{ "all.x.", 0, "192.0.2.1,2001:db8::3" },
		{ "all2.x.", 0, "192.0.2.7,192.0.2.8" },
		{ "rr.x.", 0, "192.0.2.4,192.0.2.5,192.0.2.6" },
		{ "rr.x.", 1, "192.0.2.5,192.0.2.6,192.0.2.4" },
		{ "rr.x.", 5, "192.0.2.6,192.0.2.4,192.0.2.5" },
	};
	for (size_t i = 0; s && i < sizeof cases / sizeof cases[0]; i++) {
		const struct svc_service *v = svc_find_text(s, cases[i].svc);
		struct svc_client c;
		struct svc_answer a;
		char buf[256];
		uint64_t rng = 1;

		client_v4(&c, "192.0.2.1", 24);
		svc_select(v, &c, NULL, &rng, cases[i].step, &a, NULL);
		CHECK(strcmp(answer_text(&a, buf, sizeof buf),
		             cases[i].want) == 0, "%s step %u: %s, want %s",
		      cases[i].svc, cases[i].step, buf, cases[i].want);
	}
	CHECK(s != NULL, "all/rr: load");
	svc_set_free(s);
}

/* Explain reasons name why endpoints lose. */
static void test_why(void)
{
	struct svc_set *s = load_sql(failover_sql);
	const struct svc_service *v = svc_find_text(s, "fo.x.");
	struct svc_why_ep wep[3];
	struct svc_why why = { .ep = wep, .cap = 3 };
	struct svc_client c;
	struct svc_answer a;
	struct view w;
	uint64_t rng = 1;

	view_init(&w);
	w.state[1] = HSTATE_DOWN;
	w.state[2] = HSTATE_UP;
	client_v4(&c, "192.0.2.1", 24);
	svc_select(v, &c, view_of(&w), &rng, 0, &a, &why);
	CHECK(!wep[0].chosen && strcmp(wep[0].reason, "unhealthy") == 0 &&
	      wep[0].health == HSTATE_DOWN, "why a: %s", wep[0].reason);
	CHECK(wep[1].chosen && strstr(wep[1].reason, "priority 10 (best 10)"),
	      "why b: %s", wep[1].reason);
	CHECK(!wep[2].chosen && strstr(wep[2].reason, "priority 20") &&
	      wep[2].health == HSTATE_UP, "why c: %s", wep[2].reason);
	svc_set_free(s);
}

/* Scope honesty, randomized: every address inside the block the scope
 * claims gets the same answer. Failover with nested CIDR rules. */
static void test_scope_honest(void)
{
	char sql[8192];
	size_t o;
	uint64_t r = 42;
	unsigned bad = 0, checked = 0;

	for (int round = 0; round < 20; round++) {
		struct svc_set *s;
		const struct svc_service *v;

		o = (size_t)snprintf(sql, sizeof sql,
		        "INSERT INTO services (id, name, policy) VALUES "
		        "(1, 's.x.', 'failover');"
		        "INSERT INTO endpoints (id, service_id, target, priority)"
		        " VALUES (1, 1, '192.0.2.1', 0), (2, 1, '192.0.2.2', 1),"
		        " (3, 1, '192.0.2.3', 2), (4, 1, '192.0.2.4', 3);");
		for (int k = 1; k <= 12; k++) {
			unsigned len = 8 + (unsigned)((r = r * 6364136223846793005ull
			                               + 1442695040888963407ull) >> 59);
			uint32_t net = (10u << 24) | (uint32_t)(r >> 20 & 0xffffff);

			if (len > 30)
				len = 30;
			net &= len ? ~0u << (32 - len) : 0;
			o += (size_t)snprintf(sql + o, sizeof sql - o,
			        "INSERT OR IGNORE INTO rules VALUES (%d, 1, 'cidr', "
			        "'%u.%u.%u.%u/%u'); INSERT OR IGNORE INTO "
			        "rule_targets SELECT %d, %d WHERE EXISTS (SELECT 1 "
			        "FROM rules WHERE id = %d);", k, net >> 24,
			        net >> 16 & 255, net >> 8 & 255, net & 255, len, k,
			        2 + k % 3, k);
		}
		s = load_sql(sql);
		v = s ? svc_find_text(s, "s.x.") : NULL;
		CHECK(v != NULL, "scope round %d: load", round);
		for (int q = 0; v && q < 50; q++) {
			struct svc_client c, d;
			struct svc_answer a, b;
			uint64_t rng = 1;
			uint32_t ip;

			r = r * 6364136223846793005ull + 1442695040888963407ull;
			ip = (10u << 24) | (uint32_t)(r >> 40 & 0xffffff);
			memset(&c, 0, sizeof c);
			c.addr.s6_addr[10] = c.addr.s6_addr[11] = 0xff;
			c.addr.s6_addr[12] = (uint8_t)(ip >> 24);
			c.addr.s6_addr[13] = (uint8_t)(ip >> 16);
			c.addr.s6_addr[14] = (uint8_t)(ip >> 8);
			c.addr.s6_addr[15] = (uint8_t)ip;
			c.src_plen = 128;
			svc_select(v, &c, NULL, &rng, 0, &a, NULL);
			CHECK(a.scope >= 96, "scope %u below 96", a.scope);
			for (int t = 0; t < 40; t++) {
				unsigned hostbits = 128 - a.scope;
				uint32_t mask = hostbits >= 32 ? ~0u :
				                (1u << hostbits) - 1;
				uint32_t other;

				r = r * 6364136223846793005ull +
				    1442695040888963407ull;
				other = (ip & ~mask) | ((uint32_t)(r >> 32) & mask);
				d = c;
				d.addr.s6_addr[12] = (uint8_t)(other >> 24);
				d.addr.s6_addr[13] = (uint8_t)(other >> 16);
				d.addr.s6_addr[14] = (uint8_t)(other >> 8);
				d.addr.s6_addr[15] = (uint8_t)other;
				svc_select(v, &d, NULL, &rng, 0, &b, NULL);
				checked++;
				bad += b.n != a.n || (a.n && b.ep[0] != a.ep[0]);
			}
		}
		svc_set_free(s);
	}
	CHECK(bad == 0 && checked > 0, "scope claimed too much: %u of %u "
	      "addresses inside the scope got another answer", bad, checked);
}

/* Spill-over by capacity (geo): shares of a population of 3,000 client
 * subnets in Frankfurt between eu (there, capacity 1 or 1000 q/s), west
 * and east (equidistant from it, capacities 1 and 2 or 1000 and 2000 q/s),
 * given health, drain and the load table. */
static void test_spill(void)
{
	static const char base[] =
		"INSERT INTO services (id, name, policy) VALUES "
		"(1, 'sp.x.', 'geo');"
		"INSERT INTO endpoints (id, service_id, target, region, lat, "
		"lon, capacity, check_url) VALUES "
		"(1, 1, '192.0.2.1', 'eu', 50.11, 8.68, 1, 'tcp://192.0.2.1:80'),"
		"(2, 1, '192.0.2.2', 'west', 50.11, -11.32, 1, NULL),"
		"(3, 1, '192.0.2.3', 'east', 50.11, 28.68, 2, NULL);";
	static const struct {
		const char *name, *sql;
		bool eu_down;
		double rate[4], admit[4];     /* by endpoint id; admit 0 = 1 */
		double want[4];               /* share per endpoint id */
		const char *note;             /* in explain's note, or NULL */
	} cases[] = {
		{ "all up: all stay home", "", false, { 0 }, { 0 },
		  { 0, 1, 0, 0 }, NULL },
		{ "eu down: 1:2 by capacity", "", true, { 0 }, { 0 },
		  { 0, 0, 1.0 / 3, 2.0 / 3 }, "spilled from eu (down) to " },
		{ "eu down, east drained: all west", "UPDATE endpoints SET "
		  "drained = 1 WHERE id = 3", true, { 0 }, { 0 },
		  { 0, 0, 1, 0 }, "(spare 100%)" },
		{ "eu down, only eu has a capacity: plain geo", "UPDATE "
		  "endpoints SET capacity = NULL WHERE id > 1", true, { 0 },
		  { 0 }, { 0, 0, 1, 0 }, "no other endpoint has spare" },
		{ "fill: relative capacities become q/s, eu keeps 25%, east "
		  "full: the rest to west", "UPDATE services SET fill = 0.5;"
		  "UPDATE endpoints SET capacity = capacity * 1000", false,
		  { 0, 2000, 0, 1500 }, { 0, 0.25, 0, 0 },
		  { 0, 0.25, 0.75, 0 }, "spilled from eu (full, 200% of "
		  "capacity 1000 q/s" },
		{ "fill: nobody has room, eu keeps everyone", "UPDATE services "
		  "SET fill = 0.5; UPDATE endpoints SET capacity = capacity * "
		  "1000", false, { 0, 2000, 600, 1200 }, { 0, 0.25, 0, 0 },
		  { 0, 1, 0, 0 }, "no other endpoint has spare" },
		{ "fill: 250 q/s of room left in each (half of west, a quarter of east): 1:1", "UPDATE "
		  "services SET fill = 0.5; UPDATE endpoints SET capacity = "
		  "capacity * 1000", true, { 0, 0, 250, 750 }, { 0 },
		  { 0, 0, 0.5, 0.5 }, "spilled from eu (down)" },
	};
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		char sql[1024];
		struct svc_set *set;
		const struct svc_service *v;
		struct svc_load_ep lep[16];
		struct svc_load load = { lep, 16 };
		struct view w;
		unsigned cnt[4] = { 0 };
		const unsigned n = 3000;

		snprintf(sql, sizeof sql, "%s%s", base, cases[k].sql);
		set = load_sql(sql);
		v = set ? svc_find_text(set, "sp.x.") : NULL;
		CHECK(v && v->spill, "%s: spill service loaded", cases[k].name);
		if (!v) {
			svc_set_free(set);
			continue;
		}
		view_init(&w);
		w.state[1] = cases[k].eu_down ? HSTATE_DOWN : HSTATE_UP;
		for (size_t i = 0; i < 16; i++) {
			double ad = i < 4 && cases[k].admit[i] > 0 ?
			            cases[k].admit[i] : 1;

			atomic_init(&lep[i].rate, (uint32_t)((i < 4 ?
			            cases[k].rate[i] : 0) * SVC_RATE_UNIT));
			atomic_init(&lep[i].admit,
			            (uint32_t)(ad * SVC_ADMIT_ONE));
		}
		for (unsigned i = 0; i < n; i++) {
			struct svc_client c;
			struct svc_answer a;
			char addr[32];
			uint64_t rng = 1;

			snprintf(addr, sizeof addr, "10.%u.%u.0", i / 250,
			         i % 250);
			client_v4(&c, addr, 24);
			c.has_loc = true;
			c.lat = 50.11;
			c.lon = 8.68;
			c.geo_plen = 104;
			svc_select_load(v, 1, &c, view_of(&w), &load, &rng, 0, &a,
			                NULL);
			if (a.n == 1 && a.ep[0] && a.ep[0]->id < 4)
				cnt[a.ep[0]->id]++;
			if (i == 0) {
				struct svc_answer b;
				struct svc_why_ep wep[4];
				struct svc_why why = { wep, 4, "", -1 };

				/* the same client again: the same answer */
				svc_select_load(v, 1, &c, view_of(&w), &load, &rng, 0,
				                &b, &why);
				CHECK(b.n == 1 && b.ep[0] == a.ep[0],
				      "%s: explain agrees", cases[k].name);
				CHECK(!cases[k].note ||
				      strstr(why.note, cases[k].note),
				      "%s: note '%s'", cases[k].name, why.note);
			}
		}
		for (unsigned id = 1; id < 4; id++) {
			double got = (double)cnt[id] / n, p = cases[k].want[id];
			double tol = 5 * sqrt(fmax(p * (1 - p), 0.0025) / n);

			CHECK(fabs(got - p) <= tol, "%s: endpoint %u share "
			      "%.3f, want %.3f", cases[k].name, id, got, p);
		}
		svc_set_free(set);
	}
}

int main(void)
{
	test_names();
	test_targets();
	test_load_problems();
	test_load_scattered();
	test_failover();
	test_weighted_split();
	test_sticky();
	test_geo();
	test_latency();
	test_all_rr();
	test_why();
	test_scope_honest();
	test_spill();
	view_release();
	return TEST_DONE();
}
