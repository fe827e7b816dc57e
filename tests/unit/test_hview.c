/* tests/unit/test_hview.c - health views and health rows kept up to date
 * by what changed, against whole rebuilds.
 *
 * Random reports from agents in two regions over a few thousand checked
 * endpoints (states, RTTs, staleness as time passes). After each batch the
 * view is updated from the last one with the endpoints hstate_take_dirty()
 * names (hstate_view_update) and must equal a whole hstate_view_build():
 * every cell and RTT. The store's health tables are written the same way
 * (hstore_save_ids with the changed endpoints only) and must equal a whole
 * hstore_save() of the same state in a second store. Views are retired
 * oldest first while newer ones share their chunks (ASan checks the
 * ownership). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/health_store.h"
#include "db/store.h"
#include "db/store_sql.h"
#include "health/hstate.h"
#include "tests/unit/harness.h"

#define N_EPS 1500

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static unsigned rnd(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng % n);
}

static bool view_eq(int step, const struct hstate_view *a,
                    const struct hstate_view *b)
{
	if (a->n != b->n || a->n_regions != b->n_regions) {
		CHECK(0, "step %d: sizes %zu/%zu vs %zu/%zu", step, a->n,
		      a->n_regions, b->n, b->n_regions);
		return false;
	}
	for (uint32_t id = 0; id < a->n; id++) {
		if (hstate_view_state(a, id) != hstate_view_state(b, id) ||
		    hstate_view_stale(a, id) != hstate_view_stale(b, id)) {
			CHECK(0, "step %d: endpoint %u: state %u/%u vs %u/%u",
			      step, id, hstate_view_state(a, id),
			      hstate_view_stale(a, id), hstate_view_state(b, id),
			      hstate_view_stale(b, id));
			return false;
		}
		for (size_t r = 0; r < a->n_regions; r++)
			if (hstate_view_rtt(a, r, id) != hstate_view_rtt(b, r, id)) {
				CHECK(0, "step %d: endpoint %u region %zu: rtt "
				      "%f vs %f", step, id, r,
				      hstate_view_rtt(a, r, id),
				      hstate_view_rtt(b, r, id));
				return false;
			}
	}
	for (size_t r = 0; r < a->n_regions; r++)
		if (strcmp(a->regions[r].name, b->regions[r].name) != 0)
			return false;
	return true;
}

/* The health tables as one text, for comparing two stores. */
static char *dump(struct store *db)
{
	static const char *const sql[] = {
		"SELECT endpoint_id, state, stale, since, reason FROM "
		"endpoint_health ORDER BY endpoint_id",
		"SELECT h.endpoint_id, p.name, h.state, h.ok, h.rtt_ms, "
		"h.detail, h.ts, h.seen, h.since FROM health h JOIN probes p "
		"ON p.id = h.probe_id ORDER BY h.endpoint_id, p.name",
		"SELECT region, endpoint_id, rtt_ms, samples, updated FROM "
		"latency ORDER BY region, endpoint_id",
	};
	size_t cap = 1 << 16, len = 0;
	char *out = malloc(cap);

	for (size_t q = 0; out && q < 3; q++) {
		sqlite3_stmt *st = NULL;

		if (sqlite3_prepare_v2(db->h, sql[q], -1, &st, NULL) != SQLITE_OK)
			break;
		while (sqlite3_step(st) == SQLITE_ROW) {
			for (int c = 0; c < sqlite3_column_count(st); c++) {
				const char *t = (const char *)
					sqlite3_column_text(st, c);
				size_t n = t ? strlen(t) : 4;

				while (len + n + 2 >= cap) {
					char *m = realloc(out, cap *= 2);

					if (!m) {
						free(out);
						sqlite3_finalize(st);
						return NULL;
					}
					out = m;
				}
				memcpy(out + len, t ? t : "NULL", n);
				len += n;
				out[len++] = c + 1 < sqlite3_column_count(st) ? '|'
				                                              : '\n';
			}
		}
		sqlite3_finalize(st);
	}
	if (out)
		out[len] = 0;
	return out;
}

static struct store *new_store(const struct hstate_ep *eps, size_t n)
{
	struct store *db = NULL;
	char err[256];

	CHECK(store_open(":memory:", STORE_CREATE, &db, err, sizeof err) == 0,
	      "store_open: %s", err);
	if (!db)
		return NULL;
	store_exec(db->h, "INSERT INTO services (id, name, policy) VALUES "
	           "(1, 'x.example.com.', 'all')");
	for (size_t i = 0; i < n; i++) {
		char sql[200];

		snprintf(sql, sizeof sql, "INSERT INTO endpoints (id, "
		         "service_id, target) VALUES (%u, 1, '10.%u.%u.%u')",
		         eps[i].id, (eps[i].id >> 16) & 255,
		         (eps[i].id >> 8) & 255, eps[i].id & 255);
		if (store_exec(db->h, sql) < 0)
			CHECK(0, "endpoint row: %s", store_errmsg(db));
	}
	return db;
}

#define KEEP 3

int main(void)
{
	struct hstate *h = hstate_new(NULL);
	struct hstate_ep *eps = calloc(N_EPS, sizeof *eps);
	struct hstate_view *views[KEEP] = { 0 };
	struct store *inc, *full;
	static const char *const agents[4] = { "a1", "a2", "b1", "b2" };
	static const char *const regions[4] = { "eu", "eu", "us", "us" };
	char err[256];
	double now = 1e9;
	int updated = 0, rebuilt = 0;

	if (!h || !eps)
		return 1;
	for (size_t i = 0; i < N_EPS; i++) {
		eps[i].id = (uint32_t)(i * 3 + 1);      /* ids with gaps */
		eps[i].interval = 10;
	}
	CHECK(hstate_set_endpoints(h, eps, N_EPS) == 0, "set endpoints");
	inc = new_store(eps, N_EPS);
	full = new_store(eps, N_EPS);
	views[0] = hstate_view_build(h);
	for (int step = 1; step <= 120 && inc && full; step++) {
		struct hstate_result res[64];
		struct hstate_agent a;
		unsigned k = rnd(4), n = 1 + rnd(64);
		struct hstate_view *v, *vf, *base = views[(step - 1) % KEEP];
		uint32_t *ids = NULL;
		size_t nd = 0, skipped;
		bool all;
		struct hstate_rows rows;
		char *x, *y;

		memset(&a, 0, sizeof a);
		a.name = agents[step < 5 ? 0 : k];     /* regions appear later */
		a.region = regions[step < 5 ? 0 : k];
		for (unsigned i = 0; i < n; i++) {
			memset(&res[i], 0, sizeof res[i]);
			res[i].id = eps[rnd(N_EPS / 20)].id;    /* a hot subset */
			res[i].state = rnd(5) ? HSTATE_UP : HSTATE_DOWN;
			res[i].ok = res[i].state == HSTATE_UP;
			res[i].rtt_ms = rnd(3) ? (double)rnd(200) : -1;
			res[i].ts = now + i;
			res[i].detail = res[i].ok ? "" : "connect refused";
		}
		CHECK(hstate_report(h, &a, res, n, now, err, sizeof err) == 0,
		      "report: %s", err);
		now += rnd(4);
		if (step % 40 == 0) {
			now += 45;          /* agents go stale */
			hstate_tick(h, now);
		}
		hstate_take_dirty(h, &ids, &nd, &all);
		v = all ? NULL : hstate_view_update(base, h, ids, nd);
		if (v)
			updated++;
		else {
			rebuilt++;
			v = hstate_view_build(h);
		}
		vf = hstate_view_build(h);
		if (!v || !vf || !view_eq(step, v, vf))
			return TEST_DONE();
		hstate_view_free(vf);
		/* The store: changed rows only, against everything. */
		CHECK((all ? hstate_export(h, now, &rows)
		           : hstate_export_ids(h, now, ids, nd, &rows)) == 0,
		      "export");
		CHECK((all ? hstore_save(inc, &rows, &skipped, err, sizeof err)
		           : hstore_save_ids(inc, &rows, ids, nd, &skipped, err,
		                             sizeof err)) == 0, "save: %s", err);
		hstate_rows_fini(&rows);
		CHECK(hstate_export(h, now, &rows) == 0 &&
		      hstore_save(full, &rows, &skipped, err, sizeof err) == 0,
		      "full save: %s", err);
		hstate_rows_fini(&rows);
		x = dump(inc);
		y = dump(full);
		CHECK(x && y && strcmp(x, y) == 0,
		      "step %d: health tables differ", step);
		free(x);
		free(y);
		free(ids);
		hstate_view_free(views[step % KEEP]);
		views[step % KEEP] = v;
	}
	CHECK(updated > 90 && rebuilt >= 1, "%d updated, %d rebuilt", updated,
	      rebuilt);
	printf("views: %d updated, %d rebuilt\n", updated, rebuilt);
	for (int i = 0; i < KEEP; i++)
		hstate_view_free(views[i]);
	store_close(inc);
	store_close(full);
	hstate_free(h);
	free(eps);
	return TEST_DONE();
}
