/* tests/unit/test_hstore.c - health persistence: hstate -> SQLite -> hstate
 * survives a "restart"; the check list is built from the endpoints table. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db/health_store.h"
#include "db/store.h"
#include "db/store_sql.h"
#include "tests/unit/harness.h"

#define T0 1700000000.0

static const char *const setup_sql =
	"INSERT INTO services (id, name, policy) VALUES (1, 'www.gslb.example.com.', 'failover');"
	"INSERT INTO endpoints (id, service_id, target, check_url, check_interval, check_rise, "
	"  check_fall, check_tls_verify, check_expect, check_body, check_host) VALUES "
	"  (3, 1, '192.0.2.1', 'http://192.0.2.1/health', 2, 3, 2, 1, '200-299', 'OK', 'www.example.com'),"
	"  (4, 1, '192.0.2.2', 'tcp://192.0.2.2:443', NULL, 5, 1, 0, NULL, NULL, NULL),"
	"  (5, 1, '192.0.2.3', NULL, NULL, 3, 2, 1, NULL, NULL, NULL);";

static void report(struct hstate *h, const char *agent, const char *region,
                   uint32_t id, uint8_t st, double rtt, double now)
{
	struct hstate_agent a = { agent, region, true, 10, 20 };
	struct hstate_result r = { id, st, st == HSTATE_UP, rtt, now, "detail" };
	char err[128];
	int rc = hstate_report(h, &a, &r, 1, now, err, sizeof(err));

	CHECK(rc == 0, "report %s %u: %s", agent, id, err);
}

int main(void)
{
	char path[] = "/tmp/test_hstoreXXXXXX";
	int fd = mkstemp(path);
	struct store *db = NULL;
	char err[256] = "";
	json_t *doc = NULL;
	struct hstate_ep *eps = NULL;
	size_t n = 0, skipped = 99;
	struct hstate *h, *g;
	struct hstate_rows rows, back;
	double rtt = 0;
	uint8_t st = 0xff;
	bool stale = false;

	CHECK(fd >= 0, "mkstemp");
	close(fd);
	unlink(path);
	CHECK(store_open(path, STORE_CREATE, &db, err, sizeof(err)) == 0,
	      "store_open: %s", err);
	if (!db)
		return TEST_DONE();
	CHECK(store_exec(db->h, setup_sql) == 0, "setup: %s", store_errmsg(db));

	/* Check list from the endpoints table. */
	CHECK(hstore_checks(db, 10, 42, &doc, &eps, &n, err, sizeof(err)) == 0,
	      "checks: %s", err);
	CHECK(n == 2, "checks: %zu endpoints with a check, want 2", n);
	if (n == 2) {
		json_t *c0 = json_array_get(json_object_get(doc, "checks"), 0);
		json_t *c1 = json_array_get(json_object_get(doc, "checks"), 1);

		CHECK(eps[0].id == 3 && eps[0].interval == 2, "ep 3 interval %g",
		      eps[0].interval);
		CHECK(eps[1].id == 4 && eps[1].interval == 10,
		      "ep 4 default interval %g", eps[1].interval);
		CHECK(json_integer_value(json_object_get(doc, "generation")) == 42,
		      "generation");
		CHECK(strcmp(json_string_value(json_object_get(c0, "url")),
		             "http://192.0.2.1/health") == 0 &&
		      strcmp(json_string_value(json_object_get(c0, "service")),
		             "www.gslb.example.com.") == 0 &&
		      strcmp(json_string_value(json_object_get(c0, "expect")),
		             "200-299") == 0 &&
		      strcmp(json_string_value(json_object_get(c0, "host")),
		             "www.example.com") == 0 &&
		      json_is_true(json_object_get(c0, "tls_verify")), "check 3 fields");
		CHECK(json_is_null(json_object_get(c1, "interval")) &&
		      json_is_null(json_object_get(c1, "body")) &&
		      json_is_false(json_object_get(c1, "tls_verify")) &&
		      json_integer_value(json_object_get(c1, "rise")) == 5,
		      "check 4 fields");
	}

	/* State: endpoint 3 down by quorum, 4 up with RTTs from two regions. */
	h = hstate_new(NULL);
	hstate_set_endpoints(h, eps, n);
	report(h, "eu-1", "eu", 3, HSTATE_DOWN, -1, T0);
	report(h, "us-1", "us", 3, HSTATE_DOWN, -1, T0);
	report(h, "eu-1", "eu", 4, HSTATE_UP, 12.5, T0);
	report(h, "us-1", "us", 4, HSTATE_UP, 80, T0);
	CHECK(hstate_export(h, T0, &rows) == 0, "export");
	CHECK(hstore_save(db, &rows, &skipped, err, sizeof(err)) == 0,
	      "save: %s", err);
	CHECK(skipped == 0, "save skipped %zu", skipped);
	/* Saving again replaces, never duplicates. */
	CHECK(hstore_save(db, &rows, NULL, err, sizeof(err)) == 0, "save 2: %s", err);

	/* An endpoint deleted meanwhile: its rows are skipped, the rest kept. */
	CHECK(store_exec(db->h, "PRAGMA foreign_keys = ON; DELETE FROM endpoints "
	                     "WHERE id = 4") == 0, "delete 4");
	CHECK(hstore_save(db, &rows, &skipped, err, sizeof(err)) == 0,
	      "save after delete: %s", err);
	CHECK(skipped == 5, "skipped %zu rows of endpoint 4, want 5 "
	      "(1 endpoint_health, 2 health, 2 latency)", skipped);
	hstate_rows_fini(&rows);

	/* Restart: load and restore into a fresh state. */
	CHECK(hstore_load(db, &back, err, sizeof(err)) == 0, "load: %s", err);
	CHECK(back.n_eps == 1 && back.n_obs == 2 && back.n_lat == 0,
	      "loaded %zu/%zu/%zu", back.n_eps, back.n_obs, back.n_lat);
	g = hstate_new(NULL);
	hstate_set_endpoints(g, eps, n);
	CHECK(hstate_restore(g, &back, &skipped) == 0 && skipped == 0,
	      "restore (skipped %zu)", skipped);
	CHECK(hstate_get(g, 3, &st, &stale) == 0 && st == HSTATE_DOWN && !stale,
	      "restored endpoint 3: %s stale %d", hstate_state_name(st), stale);
	CHECK(hstate_get(g, 4, &st, &stale) == 0 && st == HSTATE_UNKNOWN,
	      "endpoint 4 (deleted rows) unknown: %s", hstate_state_name(st));
	CHECK(hstate_rtt(g, "eu", 4, &rtt) == -ENOENT, "no rtt for deleted 4");
	hstate_rows_fini(&back);

	/* Full round trip of RTTs with endpoint 4 present again. */
	CHECK(store_exec(db->h, "INSERT INTO endpoints (id, service_id, target, "
	                     "check_url) VALUES (4, 1, '192.0.2.2', "
	                     "'tcp://192.0.2.2:443')") == 0, "re-add 4");
	CHECK(hstate_export(h, T0, &rows) == 0, "export 2");
	CHECK(hstore_save(db, &rows, &skipped, err, sizeof(err)) == 0 &&
	      skipped == 0, "save 3: %s", err);
	hstate_rows_fini(&rows);
	CHECK(hstore_load(db, &back, err, sizeof(err)) == 0, "load 2: %s", err);
	hstate_free(g);
	g = hstate_new(NULL);
	hstate_set_endpoints(g, eps, n);
	hstate_restore(g, &back, NULL);
	CHECK(hstate_get(g, 4, &st, &stale) == 0 && st == HSTATE_UP,
	      "restored endpoint 4 up");
	CHECK(hstate_rtt(g, "us", 4, &rtt) == 0 && fabs(rtt - 80) < 1e-9,
	      "restored rtt us/4 %f", rtt);
	{
		struct hstate_view *v = hstate_view_build(g);

		CHECK(v && v->n_regions == 2 && v->regions[0].has_coords &&
		      fabs(v->regions[0].lat - 10) < 1e-9, "restored regions");
		hstate_view_free(v);
	}
	hstate_rows_fini(&back);

	hstate_free(h);
	hstate_free(g);
	json_decref(doc);
	free(eps);
	store_close(db);
	unlink(path);
	{
		char p2[sizeof(path) + 8];

		snprintf(p2, sizeof(p2), "%s-wal", path);
		unlink(p2);
		snprintf(p2, sizeof(p2), "%s-shm", path);
		unlink(p2);
	}
	return TEST_DONE();
}
