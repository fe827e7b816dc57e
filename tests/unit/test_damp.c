/* tests/unit/test_damp.c - health/damp.h: penalty, decay, suppress and
 * reuse limits, the ceiling, conf checks. */
#include <math.h>
#include <string.h>

#include "health/damp.h"
#include "tests/unit/harness.h"

#define T0 1700000000.0

static void test_conf_check(void)
{
	static const struct {
		double pen, sup, reuse, hl, max;
		int ok;
	} cases[] = {
		{ 1000, 2500, 800, 30, 300, 1 },
		{ 0, 2500, 800, 30, 300, 0 },
		{ 1000, 800, 800, 30, 300, 0 },
		{ 1000, 2500, 0, 30, 300, 0 },
		{ 1000, 2500, 800, 0, 300, 0 },
		{ 1000, 2500, 800, 30, 0, 0 },
		{ 1000, NAN, 800, 30, 300, 0 },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct damp_conf c = { true, cases[i].pen, cases[i].sup,
		                       cases[i].reuse, cases[i].hl,
		                       cases[i].max };
		const char *why = NULL;
		int rc = damp_conf_check(&c, &why);

		CHECK((rc == 0) == cases[i].ok, "case %zu: rc %d (%s)", i, rc,
		      why ? why : "");
	}
}

/* Flaps at the given times; then where the state is at each probe time. */
static void test_sequence(void)
{
	struct damp_conf c;
	struct damp_state s;

	damp_conf_default(&c);
	memset(&s, 0, sizeof s);
	/* One flap and its recovery: 2000 < 2500, not suppressed. */
	CHECK(!damp_flap(&s, &c, T0) && !s.suppressed, "1 flap suppressed");
	CHECK(!damp_flap(&s, &c, T0 + 1) && !s.suppressed,
	      "2 flaps suppressed");
	CHECK(fabs(damp_penalty(&s, &c, T0 + 1) - (1000 * exp2(-1 / 30.0) +
	                                           1000)) < 1e-6,
	      "penalty after two flaps %.3f", damp_penalty(&s, &c, T0 + 1));
	/* A third within a second: above the limit. */
	CHECK(damp_flap(&s, &c, T0 + 2) && s.suppressed, "3 flaps not "
	      "suppressed (penalty %.1f)", s.penalty);
	/* Decays: half-life 30 s. */
	CHECK(fabs(damp_penalty(&s, &c, T0 + 32) - s.penalty / 2) < 1e-6,
	      "half-life");
	double reuse = damp_reuse_at(&s, &c);
	CHECK(reuse > T0 + 2 && fabs(s.penalty * exp2(-(reuse - T0 - 2) / 30)
	                             - 800) < 1e-6, "reuse time %.3f", reuse);
	CHECK(!damp_update(&s, &c, reuse - 0.5) && s.suppressed,
	      "reused early");
	CHECK(damp_update(&s, &c, reuse + 0.5) && !s.suppressed,
	      "not reused after the reuse time");
	CHECK(damp_reuse_at(&s, &c) == 0, "reuse time when not suppressed");
}

/* However long it flaps, suppression ends max_suppress after the last. */
static void test_ceiling(void)
{
	struct damp_conf c;
	struct damp_state s;
	double t = T0;

	damp_conf_default(&c);
	memset(&s, 0, sizeof s);
	for (int i = 0; i < 1000; i++, t += 1)
		damp_flap(&s, &c, t);
	CHECK(s.suppressed, "not suppressed after 1000 flaps");
	CHECK(damp_reuse_at(&s, &c) <= s.at + c.max_suppress + 1e-6,
	      "reuse %.1f s after the last flap, more than %.0f",
	      damp_reuse_at(&s, &c) - s.at, c.max_suppress);
	/* Off: penalties are counted, never suppressing. */
	c.on = false;
	memset(&s, 0, sizeof s);
	for (int i = 0; i < 10; i++)
		damp_flap(&s, &c, T0 + i);
	CHECK(!s.suppressed && s.penalty > c.suppress, "off suppressed");
}

int main(void)
{
	test_conf_check();
	test_sequence();
	test_ceiling();
	return TEST_DONE();
}
