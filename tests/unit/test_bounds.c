/* tests/unit/test_bounds.c - db/bounds.h against db/schema.sql and the
 * three places that enforce it: every bound equals the BETWEEN of its
 * column's CHECK in the schema; the schema accepts the bound's ends and
 * refuses one past them; the validated edits (db/edit.h) do the same with a
 * "WHAT V outside LO..HI" message; the loader (db/svc_load.h) skips a row
 * one past an end (written with the CHECKs off) with the same words. Runs
 * from the repository root (make test does). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/bounds.h"
#include "db/edit.h"
#include "db/store.h"
#include "db/store_sql.h"
#include "db/svc_load.h"
#include "tests/unit/harness.h"

#define SVC "b.example.com."
#define EP "192.0.2.1"

static char schema[1 << 16];

static void read_schema(void)
{
	FILE *f = fopen("db/schema.sql", "rb");
	size_t n = 0;

	CHECK(f != NULL, "db/schema.sql: cannot open (run from the repo root)");
	if (!f)
		return;
	n = fread(schema, 1, sizeof(schema) - 1, f);
	fclose(f);
	schema[n] = '\0';
}

/* The "COLUMN BETWEEN LO AND HI" of table's CREATE TABLE in the schema.
 * Returns 0, or -ENOENT. */
static int schema_between(const char *table, const char *column, double *lo,
                          double *hi)
{
	char head[64], pat[64];
	const char *t, *end, *p;

	snprintf(head, sizeof head, "CREATE TABLE %s (", table);
	snprintf(pat, sizeof pat, "%s BETWEEN ", column);
	if (!(t = strstr(schema, head)) || !(end = strstr(t, "\n);")))
		return -ENOENT;
	for (p = strstr(t, pat); p && p < end; p = strstr(p + 1, pat)) {
		char c = p[-1];

		if (c == ' ' || c == '(' || c == '\t')
			return sscanf(p + strlen(pat), "%lf AND %lf", lo, hi) == 2
			       ? 0 : -ENOENT;
	}
	return -ENOENT;
}

static void test_table_matches_schema(void)
{
	for (int b = 0; b < BOUND_COUNT; b++) {
		double lo = 0, hi = 0;
		int rc = schema_between(bounds[b].table, bounds[b].column, &lo,
		                        &hi);

		CHECK(rc == 0, "%s.%s: no BETWEEN in db/schema.sql",
		      bounds[b].table, bounds[b].column);
		CHECK(rc < 0 || (lo == bounds[b].lo && hi == bounds[b].hi),
		      "%s.%s: schema %g..%g, bounds %g..%g", bounds[b].table,
		      bounds[b].column, lo, hi, bounds[b].lo, bounds[b].hi);
		CHECK(bound_ok((enum bound_id)b, bounds[b].lo) &&
		      bound_ok((enum bound_id)b, bounds[b].hi) &&
		      !bound_ok((enum bound_id)b, bounds[b].lo - 1) &&
		      !bound_ok((enum bound_id)b, bounds[b].hi + 1),
		      "%s: bound_ok at the ends", bounds[b].what);
	}
}

static struct store *fresh(void)
{
	struct store *db = NULL;
	char err[256];

	CHECK(store_open(":memory:", STORE_CREATE, &db, err, sizeof err) == 0,
	      "store_open: %s", err);
	return db;
}

/* Writes v into the bound's column with SQL: a service and one endpoint,
 * every other column valid. Returns the SQLite result of the write. */
static int sql_write(struct store *db, enum bound_id b, double v)
{
	char sql[512];

	snprintf(sql, sizeof sql,
	         "DELETE FROM services;"
	         "INSERT INTO services (id, name, policy) VALUES (1, '" SVC
	         "', 'latency');"
	         "INSERT INTO endpoints (service_id, target, lat, lon) VALUES "
	         "(1, '" EP "', 1, 1);"
	         "UPDATE %s SET %s = %.17g;", bounds[b].table, bounds[b].column,
	         v);
	return sqlite3_exec(db->h, sql, NULL, NULL, NULL);
}

/* Writes v through the validated edits. Returns their result. */
static int edit_write(struct store *db, enum bound_id b, double v, char *err,
                      size_t errlen)
{
	struct cfg_service s = { .name = SVC, .policy = "latency",
	                         .sticky = -1 };
	struct cfg_endpoint e = { .target = EP, .drained = -1 };
	int rc;

	store_exec(db->h, "DELETE FROM services");
	if (b == BOUND_TTL || b == BOUND_ANSWERS) {
		if (b == BOUND_TTL) {
			s.has_ttl = true;
			s.ttl = (long long)v;
		} else {
			s.has_answers = true;
			s.answers = (long long)v;
		}
		return cfg_service_add(db, &s, err, errlen);
	}
	if ((rc = cfg_service_add(db, &s, err, errlen)) < 0)
		return rc;
	switch (b) {
	case BOUND_WEIGHT:
		e.has_weight = true;
		e.weight = (long long)v;
		break;
	case BOUND_PRIORITY:
		e.has_priority = true;
		e.priority = (long long)v;
		break;
	case BOUND_LAT:
	case BOUND_LON:
		e.has_loc = true;
		e.lat = b == BOUND_LAT ? v : 0;
		e.lon = b == BOUND_LON ? v : 0;
		break;
	case BOUND_BIAS:
		e.has_bias = true;
		e.bias = v;
		break;
	case BOUND_RISE:
	case BOUND_FALL:
		e.has_check = true;
		e.check_url = "tcp://192.0.2.1:80";
		e.has_rise = b == BOUND_RISE;
		e.has_fall = b == BOUND_FALL;
		e.rise = e.fall = (long long)v;
		break;
	default:
		break;
	}
	return cfg_endpoint_add(db, SVC, &e, err, errlen);
}

static void test_enforced(void)
{
	struct store *db = fresh();

	if (!db)
		return;
	for (int i = 0; i < BOUND_COUNT; i++) {
		enum bound_id b = (enum bound_id)i;
		const struct bound *B = &bounds[b];
		const double in[2] = { B->lo, B->hi };
		const double out[2] = { B->lo - 1, B->hi + 1 };

		for (int k = 0; k < 2; k++) {
			char err[256] = "", want[128];
			struct svc_set *set = NULL;

			/* The schema: the ends are in, one past is refused. */
			CHECK(sql_write(db, b, in[k]) == SQLITE_OK,
			      "%s = %g: refused by the schema: %s", B->what,
			      in[k], store_errmsg(db));
			CHECK(sql_write(db, b, out[k]) == SQLITE_CONSTRAINT,
			      "%s = %g: accepted by the schema", B->what, out[k]);
			/* The edits: the same, with a message naming it. */
			CHECK(edit_write(db, b, in[k], err, sizeof err) == 0,
			      "%s = %g: edit refused: %s", B->what, in[k], err);
			err[0] = '\0';
			snprintf(want, sizeof want, "%s %.0f outside %.0f..%.0f",
			         B->what, out[k], B->lo, B->hi);
			CHECK(edit_write(db, b, out[k], err, sizeof err) == -EINVAL &&
			      strstr(err, want),
			      "%s = %g: edit says '%s', want '%s'", B->what,
			      out[k], err, want);
			/* The loader: one past the end, written with the CHECKs
			 * off, skips the row and says why. */
			store_exec(db->h, "PRAGMA ignore_check_constraints = ON");
			sql_write(db, b, out[k]);
			store_exec(db->h, "PRAGMA ignore_check_constraints = OFF");
			snprintf(want, sizeof want, "%s %.0f outside %.0f..%.0f",
			         B->what, out[k], B->lo, B->hi);
			if (B->lo != (long long)B->lo || b == BOUND_LAT ||
			    b == BOUND_LON || b == BOUND_BIAS)
				snprintf(want, sizeof want, "%s %.1f outside "
				         "%.0f..%.0f", B->what, out[k], B->lo,
				         B->hi);
			CHECK(svc_load(db, &set, err, sizeof err) == 0,
			      "svc_load: %s", err);
			if (b == BOUND_RISE || b == BOUND_FALL) {
				/* Checks are read by the health service, not
				 * the policy engine's loader. */
				svc_set_free(set);
				continue;
			}
			CHECK(set && set->n_problems == 1 &&
			      strstr(set->problems[0], want),
			      "%s = %g: loader problems %zu, first '%s', want '%s'",
			      B->what, out[k], set ? set->n_problems : 0,
			      set && set->n_problems ? set->problems[0] : "",
			      want);
			svc_set_free(set);
		}
	}
	store_close(db);
}

int main(void)
{
	read_schema();
	test_table_matches_schema();
	test_enforced();
	return TEST_DONE();
}
