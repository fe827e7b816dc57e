/* tests/unit/test_hstate.c - server-side health state: quorum, staleness,
 * EWMA, transitions, view, export/restore. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "health/hstate.h"
#include "tests/unit/harness.h"

#define T0 1700000000.0

static const struct hstate_agent A1 = { "eu-1", "eu", true, 50.1, 8.7 };
static const struct hstate_agent A2 = { "us-1", "us", true, 40.7, -74.0 };
static const struct hstate_agent A3 = { "ap-1", "ap", false, 0, 0 };

static int send1(struct hstate *h, const struct hstate_agent *a, uint32_t id,
                 uint8_t st, double rtt, double now)
{
	char err[128];
	struct hstate_result r = {
		.id = id, .state = st, .ok = st == HSTATE_UP, .rtt_ms = rtt,
		.ts = now, .detail = st == HSTATE_UP ? "200" : "refused",
	};

	return hstate_report(h, a, &r, 1, now, err, sizeof(err));
}

static uint8_t state_of(struct hstate *h, uint32_t id, bool *stale)
{
	uint8_t s = 0xff;
	bool st = false;

	hstate_get(h, id, &s, &st);
	if (stale)
		*stale = st;
	return s;
}

/* A table of quorum cases: votes of up to 3 agents on endpoint 1
 * (0xff = that agent does not report) and the expected state. */
static void test_quorum_table(void)
{
	static const struct {
		const char *name;
		double quorum;
		uint8_t votes[3];
		uint8_t want;
		bool want_stale;
	} cases[] = {
		{ "all up", 0.5, { HSTATE_UP, HSTATE_UP, HSTATE_UP }, HSTATE_UP, false },
		{ "one partitioned agent says down", 0.5,
		  { HSTATE_DOWN, HSTATE_UP, HSTATE_UP }, HSTATE_UP, false },
		{ "two of three down", 0.5,
		  { HSTATE_DOWN, HSTATE_DOWN, HSTATE_UP }, HSTATE_DOWN, false },
		{ "tie 1:1 is down at >50%", 0.5,
		  { HSTATE_DOWN, HSTATE_UP, 0xff }, HSTATE_DOWN, false },
		{ "unknown agents do not vote", 0.5,
		  { HSTATE_UNKNOWN, HSTATE_UP, 0xff }, HSTATE_UP, false },
		{ "only unknown: stale unknown", 0.5,
		  { HSTATE_UNKNOWN, HSTATE_UNKNOWN, 0xff }, HSTATE_UNKNOWN, true },
		{ "route53 18%: one of three up is up", 0.18,
		  { HSTATE_DOWN, HSTATE_DOWN, HSTATE_UP }, HSTATE_UP, false },
		{ "route53 18%: none up is down", 0.18,
		  { HSTATE_DOWN, HSTATE_DOWN, HSTATE_DOWN }, HSTATE_DOWN, false },
		{ "quorum 0: any up is up", 0.0,
		  { HSTATE_DOWN, HSTATE_DOWN, HSTATE_UP }, HSTATE_UP, false },
		{ "no reports: stale unknown", 0.5, { 0xff, 0xff, 0xff },
		  HSTATE_UNKNOWN, true },
	};
	const struct hstate_agent *ag[3] = { &A1, &A2, &A3 };

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct hstate_params p;
		struct hstate_ep ep = { 1, 1.0 };
		struct hstate *h;
		bool stale;
		uint8_t s;

		hstate_params_default(&p);
		p.quorum = cases[i].quorum;
		h = hstate_new(&p);
		CHECK(h != NULL, "%s: hstate_new", cases[i].name);
		if (!h)
			continue;
		CHECK(hstate_set_endpoints(h, &ep, 1) == 0, "%s: set", cases[i].name);
		for (int a = 0; a < 3; a++)
			if (cases[i].votes[a] != 0xff)
				CHECK(send1(h, ag[a], 1, cases[i].votes[a], 5, T0) == 0,
				      "%s: report %d", cases[i].name, a);
		hstate_tick(h, T0 + 0.5);
		s = state_of(h, 1, &stale);
		CHECK(s == cases[i].want, "%s: state %s, want %s", cases[i].name,
		      hstate_state_name(s), hstate_state_name(cases[i].want));
		CHECK(stale == cases[i].want_stale, "%s: stale %d, want %d",
		      cases[i].name, stale, cases[i].want_stale);
		hstate_free(h);
	}
}

/* quorum-min-regions: a down verdict needs down votes from that many
 * regions; agents in one region cannot take an endpoint down alone. */
static void test_min_regions(void)
{
	static const struct hstate_agent B1 = { "eu-2", "eu", false, 0, 0 };
	static const struct hstate_agent B2 = { "eu-3", "eu", false, 0, 0 };
	static const struct {
		const char *name;
		unsigned min_regions;
		const struct hstate_agent *down[3];
		const struct hstate_agent *up[3];
		uint8_t want;
	} cases[] = {
		{ "off: three eu agents down, one us up", 0,
		  { &A1, &B1, &B2 }, { &A2 }, HSTATE_DOWN },
		{ "2 regions: three eu agents down, one us up", 2,
		  { &A1, &B1, &B2 }, { &A2 }, HSTATE_UP },
		{ "2 regions: eu and us down, ap up", 2,
		  { &A1, &A2 }, { &A3 }, HSTATE_DOWN },
		{ "3 regions: eu and us down, ap up", 3,
		  { &A1, &A2 }, { &A3 }, HSTATE_UP },
		{ "1 region is no rule", 1, { &A1 }, { 0 }, HSTATE_DOWN },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct hstate_params p;
		struct hstate_ep ep = { 1, 1.0 };
		struct hstate *h;
		uint8_t s;

		hstate_params_default(&p);
		p.min_regions = cases[i].min_regions;
		h = hstate_new(&p);
		CHECK(h && hstate_set_endpoints(h, &ep, 1) == 0, "%s: setup",
		      cases[i].name);
		if (!h)
			continue;
		for (int a = 0; a < 3; a++) {
			if (cases[i].down[a])
				send1(h, cases[i].down[a], 1, HSTATE_DOWN, 5, T0);
			if (cases[i].up[a])
				send1(h, cases[i].up[a], 1, HSTATE_UP, 5, T0);
		}
		hstate_tick(h, T0 + 0.5);
		s = state_of(h, 1, NULL);
		CHECK(s == cases[i].want, "%s: state %s, want %s", cases[i].name,
		      hstate_state_name(s), hstate_state_name(cases[i].want));
		hstate_free(h);
	}
	{
		struct hstate_params p;

		hstate_params_default(&p);
		p.min_regions = 65;
		CHECK(hstate_new(&p) == NULL, "min_regions 65 refused");
	}
}

/* Invented agent and region names fill bounded tables (-ENOSPC past the
 * bounds); agents silent past expire_s are forgotten, with the regions no
 * one is in any more, and make room; a reporting agent keeps its votes
 * and RTTs. */
static void test_bounds_and_expiry(void)
{
	struct hstate_params p;
	struct hstate_ep ep = { 1, 1.0 };
	struct hstate *h;
	char name[32], region[32], err[256];
	size_t na, nr;
	double rtt;
	int rc = 0;

	hstate_params_default(&p);
	p.expire_s = 60;
	h = hstate_new(&p);
	CHECK(h && hstate_set_endpoints(h, &ep, 1) == 0, "setup");
	if (!h)
		return;
	CHECK(send1(h, &A1, 1, HSTATE_UP, 5, T0) == 0, "real agent");
	for (int i = 0; i < HSTATE_MAX_REGIONS - 1; i++) {
		struct hstate_agent a = { name, region, false, 0, 0 };

		snprintf(name, sizeof(name), "ghost-%d", i);
		snprintf(region, sizeof(region), "r-%d", i);
		if ((rc = send1(h, &a, 1, HSTATE_DOWN, -1, T0)) != 0)
			break;
	}
	CHECK(rc == 0, "regions up to the bound: %d", rc);
	{
		struct hstate_agent a = { "ghost-x", "one-too-many", false, 0, 0 };
		struct hstate_result r = { .id = 1, .state = HSTATE_DOWN,
		                           .rtt_ms = -1, .ts = T0 };

		CHECK(hstate_report(h, &a, &r, 1, T0, err, sizeof(err)) ==
		      -ENOSPC && strstr(err, "too many"), "region past the "
		      "bound: %s", err);
	}
	for (int i = 0; i < HSTATE_MAX_AGENTS; i++) {
		struct hstate_agent a = { name, "eu", false, 0, 0 };

		snprintf(name, sizeof(name), "eu-ghost-%d", i);
		if ((rc = send1(h, &a, 1, HSTATE_DOWN, -1, T0)) != 0)
			break;
	}
	CHECK(rc == -ENOSPC, "agents past the bound: %d", rc);
	hstate_counts(h, &na, &nr);
	CHECK(na == HSTATE_MAX_AGENTS && nr == HSTATE_MAX_REGIONS,
	      "full: %zu agents, %zu regions", na, nr);
	/* The real agent keeps reporting; the ghosts fall silent. */
	CHECK(send1(h, &A1, 1, HSTATE_UP, 7, T0 + 100) == 0, "real agent again");
	CHECK(hstate_expire(h, T0 + 30) == 0, "silent 30 s: kept");
	{
		size_t gone = hstate_expire(h, T0 + 101);

		CHECK(gone == HSTATE_MAX_AGENTS - 1, "every ghost forgotten: "
		      "%zu", gone);
	}
	hstate_tick(h, T0 + 100.5);
	CHECK(state_of(h, 1, NULL) == HSTATE_UP, "only the real agent: up");
	hstate_counts(h, &na, &nr);
	CHECK(na == 1 && nr == 1, "left: %zu agents, %zu regions", na, nr);
	CHECK(hstate_rtt(h, "eu", 1, &rtt) == 0 && rtt > 0,
	      "the real agent's region keeps its RTT");
	CHECK(send1(h, &A2, 1, HSTATE_UP, 5, T0 + 101) == 0,
	      "a new agent fits again");
	hstate_tick(h, T0 + 101.5);
	CHECK(state_of(h, 1, NULL) == HSTATE_UP, "still up");
	hstate_counts(h, &na, &nr);
	CHECK(na == 2 && nr == 2, "now: %zu agents, %zu regions", na, nr);
	/* Fresh observations are never expired, whatever expire_s says. */
	CHECK(hstate_expire(h, T0 + 102) == 0, "nothing silent yet");
	hstate_free(h);
}

static void test_staleness(void)
{
	struct hstate_ep ep = { 7, 2.0 };        /* window 3 x 2 s = 6 s */
	struct hstate *h = hstate_new(NULL);
	struct hstate_event ev[8];
	bool stale;

	hstate_set_endpoints(h, &ep, 1);
	/* Two agents up, one down: up. */
	send1(h, &A1, 7, HSTATE_UP, 10, T0);
	send1(h, &A2, 7, HSTATE_UP, 20, T0);
	send1(h, &A3, 7, HSTATE_DOWN, -1, T0);
	CHECK(state_of(h, 7, &stale) == HSTATE_UP && !stale, "staleness: up");
	/* A1 and A2 go silent; only A3 keeps reporting "down". After the
	 * window their reports are stale, so A3 alone decides: down. */
	send1(h, &A3, 7, HSTATE_DOWN, -1, T0 + 5);
	hstate_tick(h, T0 + 5.9);
	CHECK(state_of(h, 7, NULL) == HSTATE_UP, "staleness: still up at 5.9 s");
	send1(h, &A3, 7, HSTATE_DOWN, -1, T0 + 6.5);
	CHECK(state_of(h, 7, &stale) == HSTATE_DOWN && !stale,
	      "staleness: stale agents no longer count -> down");
	/* Everyone silent: last state stands, marked stale. */
	hstate_tick(h, T0 + 20);
	CHECK(state_of(h, 7, &stale) == HSTATE_DOWN && stale,
	      "staleness: last state stands, stale");
	/* Fresh again. */
	send1(h, &A1, 7, HSTATE_UP, 10, T0 + 21);
	CHECK(state_of(h, 7, &stale) == HSTATE_UP && !stale,
	      "staleness: fresh up again");
	size_t n = hstate_take_events(h, ev, 8);
	/* unknown(stale)->up, up->down, down->down(stale), down(stale)->up */
	CHECK(n == 4, "staleness: %zu events, want 4", n);
	if (n == 4) {
		CHECK(ev[0].old_state == HSTATE_UNKNOWN && ev[0].new_state == HSTATE_UP
		      && ev[0].old_stale && !ev[0].new_stale, "event 0");
		CHECK(ev[1].old_state == HSTATE_UP && ev[1].new_state == HSTATE_DOWN
		      && ev[1].id == 7 && strstr(ev[1].reason, "0 of 1"),
		      "event 1: %s", ev[1].reason);
		CHECK(ev[2].old_state == HSTATE_DOWN && ev[2].new_state == HSTATE_DOWN
		      && ev[2].new_stale, "event 2 (stale)");
		CHECK(ev[3].new_state == HSTATE_UP && !ev[3].new_stale, "event 3");
	}
	CHECK(hstate_take_events(h, ev, 8) == 0, "events taken once");
	hstate_free(h);
}

static void test_events_once(void)
{
	struct hstate_ep ep = { 3, 1.0 };
	struct hstate *h = hstate_new(NULL);
	struct hstate_event ev[4];
	size_t total = 0;

	hstate_set_endpoints(h, &ep, 1);
	for (int i = 0; i < 10; i++) {
		send1(h, &A1, 3, HSTATE_UP, 1, T0 + i * 0.5);
		hstate_tick(h, T0 + i * 0.5 + 0.1);
		total += hstate_take_events(h, ev, 4);
	}
	CHECK(total == 1, "repeated up reports: %zu events, want 1", total);
	hstate_free(h);
}

static void test_ewma(void)
{
	struct hstate_params p;
	struct hstate_ep ep = { 2, 1.0 };
	struct hstate *h;
	double rtt = 0, want;
	char err[64];
	struct hstate_result r = { 2, HSTATE_UP, true, 30, T0 + 3, "ok" };

	hstate_params_default(&p);
	p.alpha = 0.5;
	h = hstate_new(&p);
	hstate_set_endpoints(h, &ep, 1);
	send1(h, &A1, 2, HSTATE_UP, 10, T0);
	send1(h, &A1, 2, HSTATE_UP, 20, T0 + 1);
	hstate_rtt(h, "eu", 2, &rtt);
	want = 10 + 0.5 * (20 - 10);
	CHECK(fabs(rtt - want) < 1e-9, "ewma: %f want %f", rtt, want);
	/* The same result resent (same ts) is not folded twice. */
	send1(h, &A1, 2, HSTATE_UP, 20, T0 + 1);
	hstate_rtt(h, "eu", 2, &rtt);
	CHECK(fabs(rtt - want) < 1e-9, "ewma: resend folded: %f", rtt);
	/* A failed result's RTT is ignored. */
	r.ok = false;
	r.ts = T0 + 2;
	hstate_report(h, &A1, &r, 1, T0 + 2, err, sizeof(err));
	hstate_rtt(h, "eu", 2, &rtt);
	CHECK(fabs(rtt - want) < 1e-9, "ewma: failed result folded: %f", rtt);
	/* Another region has its own EWMA. */
	send1(h, &A2, 2, HSTATE_UP, 100, T0 + 2);
	hstate_rtt(h, "us", 2, &rtt);
	CHECK(fabs(rtt - 100) < 1e-9, "ewma us: %f", rtt);
	CHECK(hstate_rtt(h, "ap", 2, &rtt) == -ENOENT, "ewma ap: none");

	struct hstate_view *v = hstate_view_build(h);
	CHECK(v != NULL, "view built");
	if (v) {
		CHECK(v->n == 3 && hstate_view_state(v, 2) == HSTATE_UP &&
		      !hstate_view_stale(v, 2),
		      "view: n %zu state %u", v->n, hstate_view_state(v, 2));
		CHECK(hstate_view_state(v, 0) == HSTATE_UNKNOWN,
		      "view: unchecked id unknown");
		CHECK(v->n_regions == 2, "view: %zu regions", v->n_regions);
		for (size_t i = 0; i < v->n_regions; i++) {
			float x = hstate_view_rtt(v, i, 2);

			if (strcmp(v->regions[i].name, "eu") == 0)
				CHECK(fabsf(x - 15.0f) < 1e-4 && v->regions[i].has_coords
				      && fabs(v->regions[i].lat - 50.1) < 1e-9,
				      "view eu: %f", x);
			else
				CHECK(fabsf(x - 100.0f) < 1e-4, "view us: %f", x);
			CHECK(hstate_view_rtt(v, i, 1) < 0, "view: id 1 no rtt");
		}
	}
	hstate_view_free(v);
	hstate_free(h);
}

static void test_validation(void)
{
	static const struct hstate_agent bad_name = { "", "eu", false, 0, 0 };
	static const struct hstate_agent bad_coords = { "x", "eu", true, 91, 0 };
	struct hstate_ep eps[2] = { { 1, 1.0 }, { 2, 1.0 } };
	struct hstate_ep dup[2] = { { 1, 1.0 }, { 1, 2.0 } };
	struct hstate_ep zero = { 1, 0 };
	struct hstate *h = hstate_new(NULL);
	struct hstate_result rs[2] = {
		{ 1, HSTATE_DOWN, false, -1, T0, "x" },
		{ 99, HSTATE_DOWN, false, -1, T0, "x" },
	};
	char err[128] = "";
	bool stale;

	CHECK(hstate_set_endpoints(h, dup, 2) == -EINVAL, "duplicate ids");
	CHECK(hstate_set_endpoints(h, &zero, 1) == -EINVAL, "zero interval");
	CHECK(hstate_set_endpoints(h, eps, 2) == 0, "set");
	CHECK(hstate_report(h, &A1, rs, 2, T0, err, sizeof(err)) == -ENOENT,
	      "unknown id rejected");
	CHECK(strstr(err, "99") != NULL, "error names the id: %s", err);
	CHECK(state_of(h, 1, &stale) == HSTATE_UNKNOWN && stale,
	      "rejected batch changed nothing");
	CHECK(send1(h, &bad_name, 1, HSTATE_UP, 1, T0) == -EINVAL, "empty name");
	CHECK(send1(h, &bad_coords, 1, HSTATE_UP, 1, T0) == -EINVAL, "lat 91");
	CHECK(send1(h, &A1, 1, 3, 1, T0) == -EINVAL, "state 3");
	CHECK(hstate_new(&(struct hstate_params){ 1.0, 0.3, 3, 0, 0 }) == NULL,
	      "quorum 1.0 refused");
	/* Removing an endpoint forgets it; keeping one keeps its state. */
	send1(h, &A1, 2, HSTATE_UP, 1, T0);
	CHECK(hstate_set_endpoints(h, eps + 1, 1) == 0, "shrink");
	CHECK(state_of(h, 2, NULL) == HSTATE_UP, "kept endpoint keeps state");
	CHECK(send1(h, &A1, 1, HSTATE_UP, 1, T0) == -ENOENT, "removed endpoint");
	hstate_free(h);
}

static void test_export_restore(void)
{
	struct hstate_ep eps[2] = { { 1, 1.0 }, { 2, 1.0 } };
	struct hstate *h = hstate_new(NULL), *g = hstate_new(NULL);
	struct hstate_rows rows;
	struct hstate_event ev[4];
	double rtt = 0;
	size_t skipped = 99;
	bool stale;

	hstate_set_endpoints(h, eps, 2);
	send1(h, &A1, 1, HSTATE_DOWN, -1, T0);
	send1(h, &A1, 2, HSTATE_UP, 12, T0);
	send1(h, &A2, 2, HSTATE_UP, 40, T0);
	CHECK(hstate_export(h, T0 + 1, &rows) == 0, "export");
	CHECK(rows.n_eps == 2 && rows.n_obs == 3 && rows.n_lat == 2,
	      "export sizes %zu %zu %zu", rows.n_eps, rows.n_obs, rows.n_lat);
	for (size_t i = 0; i < rows.n_obs; i++)
		CHECK(rows.obs[i].fresh, "obs %zu fresh", i);
	/* Restart: only endpoint 2 is still configured. */
	hstate_set_endpoints(g, eps + 1, 1);
	CHECK(hstate_restore(g, &rows, &skipped) == 0, "restore");
	CHECK(skipped == 2, "skipped %zu (endpoint 1 row and its obs)", skipped);
	CHECK(state_of(g, 2, &stale) == HSTATE_UP && !stale, "restored up");
	CHECK(hstate_rtt(g, "us", 2, &rtt) == 0 && fabs(rtt - 40) < 1e-9,
	      "restored rtt %f", rtt);
	CHECK(hstate_take_events(g, ev, 4) == 0, "restore queues no events");
	/* A restart long after: the restored reports are stale, the state
	 * stands (never "all up" by default). */
	hstate_tick(g, T0 + 100);
	CHECK(state_of(g, 2, &stale) == HSTATE_UP && stale, "restored, stale");
	hstate_rows_fini(&rows);
	hstate_free(h);
	hstate_free(g);
}

int main(void)
{
	test_quorum_table();
	test_min_regions();
	test_bounds_and_expiry();
	test_staleness();
	test_events_once();
	test_ewma();
	test_validation();
	test_export_restore();
	return TEST_DONE();
}
