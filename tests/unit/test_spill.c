/* tests/unit/test_spill.c - dnsd/spill.h, the load signal of spill-over:
 * the kept share follows a simulated demand to fill x capacity, opens up
 * again when the answers stop, the table the query path reads says the
 * same, endpoints that stop spilling are reset, and the status shares. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/store.h"
#include "db/store_sql.h"
#include "db/svc_load.h"
#include "dnsd/spill.h"
#include "tests/unit/harness.h"

static struct svc_set *load_sql(const char *sql)
{
	struct store *h = NULL;
	struct svc_set *s = NULL;
	char err[256];

	if (store_open(":memory:", STORE_CREATE, &h, err, sizeof err) < 0)
		return NULL;
	if (store_exec(h->h, sql) == 0)
		svc_load(h, &s, err, sizeof err);
	store_close(h);
	return s;
}

#define SQL_BASE \
	"INSERT INTO services (id, name, policy, fill) VALUES " \
	"(1, 'sp.x.', 'geo', 0.5);" \
	"INSERT INTO endpoints (id, service_id, target, lat, lon, capacity) " \
	"VALUES (1, 1, '192.0.2.1', 50, 8, 100), (2, 1, '192.0.2.2', 50, " \
	"-12, 1000), (3, 1, '192.0.2.3', 50, 28, 3000);"

/* Ticks once a second for n seconds with demand q/s at endpoint 1 (it
 * answers kept x demand) and 10 q/s at 2 and 3. */
static void run(struct spill *sp, const struct svc_set *set, uint64_t *cnt,
                double *now, int n, double demand)
{
	for (int i = 0; i < n; i++) {
		double kept = svc_load_admit(spill_load(sp), 1);

		cnt[1] += (uint64_t)(kept * demand);
		cnt[2] += 10;
		cnt[3] += 10;
		*now += 1;
		spill_tick(sp, set, cnt, 4, *now);
	}
}

static void test_controller(void)
{
	struct svc_set *set = load_sql(SQL_BASE);
	struct spill *sp = spill_new(64);
	uint64_t cnt[4] = { 0 };
	double now = 1000, kept, rate;

	CHECK(set && sp && set->n_spill == 3, "set with 3 spill endpoints");
	if (!set || !sp)
		goto out;
	CHECK(spill_need(sp, set) == 4, "counts needed for ids 0..3");
	/* Below the fill: keeps everyone. */
	run(sp, set, cnt, &now, 5, 40);
	CHECK(svc_load_admit(spill_load(sp), 1) == 1, "40 q/s of 50: keeps all");
	/* Demand 200 q/s against 50: keeps about a quarter. */
	run(sp, set, cnt, &now, 40, 200);
	kept = svc_load_admit(spill_load(sp), 1);
	rate = svc_load_rate(spill_load(sp), 1);
	CHECK(fabs(kept - 0.25) < 0.05, "kept %.3f, want 0.25", kept);
	CHECK(fabs(rate - 50) < 10, "rate %.1f, want about 50", rate);
	CHECK(svc_load_admit(spill_load(sp), 2) == 1 &&
	      fabs(svc_load_rate(spill_load(sp), 2) - 10) < 0.5,
	      "others: 10 q/s, keep all");
	/* Status: rates and shares over the window, capacity shares. */
	{
		json_t *j = spill_json(sp, set, NULL), *e;

		CHECK(j && json_array_size(j) == 1, "one spill service");
		e = json_array_get(json_object_get(json_array_get(j, 0),
		                                   "endpoints"), 0);
		CHECK(e && fabs(json_number_value(json_object_get(e,
		      "expected")) - 100.0 / 4100) < 1e-9, "expected share");
		CHECK(e && fabs(json_number_value(json_object_get(e, "filled")) -
		      0.5) < 0.1, "eu fill about 50%% of its capacity");
		json_decref(j);
	}
	/* The answers stop: opens up in steps, all within 8 s. */
	run(sp, set, cnt, &now, 1, 0);
	kept = svc_load_admit(spill_load(sp), 1);
	CHECK(kept > 0.25 && kept < 1, "no answers for 1 s: some back, not "
	      "all (%.2f)", kept);
	run(sp, set, cnt, &now, 7, 0);
	CHECK(svc_load_admit(spill_load(sp), 1) == 1, "no answers for 8 s: "
	      "keeps all");
	/* Full again, then the store drops the capacities: reset. */
	run(sp, set, cnt, &now, 20, 400);
	CHECK(svc_load_admit(spill_load(sp), 1) < 0.5, "full again");
	{
		struct svc_set *plain = load_sql("INSERT INTO services (id, "
		        "name, policy) VALUES (1, 'sp.x.', 'geo'); INSERT INTO "
		        "endpoints (id, service_id, target) VALUES (1, 1, "
		        "'192.0.2.1')");

		CHECK(plain && plain->n_spill == 0 &&
		      spill_need(sp, plain) == 0, "no spill service");
		spill_tick(sp, plain, cnt, 0, now + 1);
		CHECK(svc_load_admit(spill_load(sp), 1) == 1 &&
		      svc_load_rate(spill_load(sp), 1) == 0,
		      "an endpoint that stopped spilling is reset");
		svc_set_free(plain);
	}
out:
	spill_free(sp);
	svc_set_free(set);
}

int main(void)
{
	test_controller();
	return TEST_DONE();
}
