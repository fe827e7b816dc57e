/* db/health_store.c - see health_store.h. Load time only. */
#include "db/health_store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/store.h"
#include "db/store_sql.h"

static int sqlerr(sqlite3 *h, char *err, size_t errlen, const char *what)
{
	snprintf(err, errlen, "db: health: %s: %s", what, sqlite3_errmsg(h));
	return -EIO;
}

static const char *text_col(sqlite3_stmt *st, int i)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	return t ? (const char *)t : "";
}

static double real_or(sqlite3_stmt *st, int i, double dflt)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL
	       ? dflt : sqlite3_column_double(st, i);
}

/* Counts rows of a query (for array sizes). */
static int count_rows(sqlite3 *h, const char *table, size_t *n)
{
	char sql[80];
	sqlite3_stmt *st;
	int rc = -EIO;

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
	if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	if (sqlite3_step(st) == SQLITE_ROW) {
		*n = (size_t)sqlite3_column_int64(st, 0);
		rc = 0;
	}
	sqlite3_finalize(st);
	return rc;
}

static int load_eps(sqlite3 *h, struct hstate_rows *o)
{
	sqlite3_stmt *st;
	size_t cap, k = 0;
	int rc;

	if (count_rows(h, "endpoint_health", &cap) < 0 ||
	    sqlite3_prepare_v2(h, "SELECT endpoint_id, state, stale, since, "
	                       "reason FROM endpoint_health ORDER BY endpoint_id",
	                       -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	if (!(o->eps = arena_calloc(&o->arena, (cap + 1) * sizeof(*o->eps)))) {
		sqlite3_finalize(st);
		return -ENOMEM;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && k < cap) {
		struct hstate_ep_row *r = &o->eps[k];

		if (hstate_state_parse(text_col(st, 1), &r->state) < 0)
			continue;
		r->endpoint_id = (uint32_t)sqlite3_column_int64(st, 0);
		r->stale = sqlite3_column_int(st, 2) != 0;
		r->since = sqlite3_column_double(st, 3);
		if (!(r->reason = arena_strdup(&o->arena, text_col(st, 4)))) {
			sqlite3_finalize(st);
			return -ENOMEM;
		}
		k++;
	}
	sqlite3_finalize(st);
	o->n_eps = k;
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -EIO;
}

static int load_obs(sqlite3 *h, struct hstate_rows *o)
{
	sqlite3_stmt *st;
	size_t cap, k = 0;
	int rc;

	if (count_rows(h, "health", &cap) < 0 ||
	    sqlite3_prepare_v2(h,
	        "SELECT h.endpoint_id, p.name, p.region, p.lat, p.lon, h.state, "
	        "h.ok, h.rtt_ms, h.ts, h.seen, h.since, h.detail "
	        "FROM health h JOIN probes p ON p.id = h.probe_id "
	        "ORDER BY h.endpoint_id, p.name", -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	if (!(o->obs = arena_calloc(&o->arena, (cap + 1) * sizeof(*o->obs)))) {
		sqlite3_finalize(st);
		return -ENOMEM;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && k < cap) {
		struct hstate_obs_row *r = &o->obs[k];

		if (hstate_state_parse(text_col(st, 5), &r->state) < 0)
			continue;
		r->endpoint_id = (uint32_t)sqlite3_column_int64(st, 0);
		r->agent = arena_strdup(&o->arena, text_col(st, 1));
		r->region = arena_strdup(&o->arena, text_col(st, 2));
		r->detail = arena_strdup(&o->arena, text_col(st, 11));
		if (!r->agent || !r->region || !r->detail) {
			sqlite3_finalize(st);
			return -ENOMEM;
		}
		r->has_coords = sqlite3_column_type(st, 3) != SQLITE_NULL &&
		                sqlite3_column_type(st, 4) != SQLITE_NULL;
		r->lat = real_or(st, 3, 0);
		r->lon = real_or(st, 4, 0);
		r->ok = sqlite3_column_int(st, 6) != 0;
		r->rtt_ms = real_or(st, 7, -1);
		r->ts = sqlite3_column_double(st, 8);
		r->seen = sqlite3_column_double(st, 9);
		r->since = sqlite3_column_double(st, 10);
		k++;
	}
	sqlite3_finalize(st);
	o->n_obs = k;
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -EIO;
}

static int load_lat(sqlite3 *h, struct hstate_rows *o)
{
	sqlite3_stmt *st;
	size_t cap, k = 0;
	int rc;

	if (count_rows(h, "latency", &cap) < 0 ||
	    sqlite3_prepare_v2(h, "SELECT region, endpoint_id, rtt_ms, samples, "
	                       "updated FROM latency ORDER BY endpoint_id, region",
	                       -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	if (!(o->lat = arena_calloc(&o->arena, (cap + 1) * sizeof(*o->lat)))) {
		sqlite3_finalize(st);
		return -ENOMEM;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && k < cap) {
		struct hstate_lat_row *r = &o->lat[k];

		if (!(r->region = arena_strdup(&o->arena, text_col(st, 0)))) {
			sqlite3_finalize(st);
			return -ENOMEM;
		}
		r->endpoint_id = (uint32_t)sqlite3_column_int64(st, 1);
		r->rtt_ms = sqlite3_column_double(st, 2);
		r->samples = (uint64_t)sqlite3_column_int64(st, 3);
		r->updated = sqlite3_column_double(st, 4);
		k++;
	}
	sqlite3_finalize(st);
	o->n_lat = k;
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -EIO;
}

int hstore_load(struct store *db, struct hstate_rows *out, char *err,
                size_t errlen)
{
	sqlite3 *h = db->h;
	bool own = sqlite3_get_autocommit(h) != 0;
	int rc;

	memset(out, 0, sizeof(*out));
	arena_init(&out->arena);
	if (own && store_begin(h, false) < 0)
		return sqlerr(h, err, errlen, "begin");
	if ((rc = load_eps(h, out)) == 0 && (rc = load_obs(h, out)) == 0)
		rc = load_lat(h, out);
	if (rc == -EIO)
		sqlerr(h, err, errlen, "read");
	else if (rc == -ENOMEM)
		snprintf(err, errlen, "db: health: out of memory");
	if (own)
		store_rollback(h);     /* read only: nothing to commit */
	if (rc < 0)
		hstate_rows_fini(out);
	return rc;
}

/* Steps st once; a constraint failure (endpoint deleted meanwhile) is a
 * skipped row, not an error. Returns 0, 1 (skipped) or -EIO. */
static int step_row(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc == SQLITE_DONE || rc == SQLITE_ROW)
		return 0;
	return (rc & 0xff) == SQLITE_CONSTRAINT ? 1 : -EIO;
}

/* The agents of a save's observation rows, each written to probes once
 * (an upsert per row, with RETURNING, cost SQLite a temporary table per
 * row: most of a save's time with many agents x endpoints): an open
 * addressing table by name, grown at half full. */
struct agent_slot {
	const struct hstate_obs_row *row;       /* its newest row; NULL: free */
	double seen;                            /* the latest of its rows */
	sqlite3_int64 pid;
};

struct agents {
	struct agent_slot *slot;
	size_t cap, n;
};

static uint64_t name_hash(const char *s)
{
	uint64_t h = 14695981039346656037ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static struct agent_slot *agents_find(struct agents *t, const char *name)
{
	size_t i = (size_t)name_hash(name) & (t->cap - 1);

	while (t->slot[i].row && strcmp(t->slot[i].row->agent, name) != 0)
		i = (i + 1) & (t->cap - 1);
	return &t->slot[i];
}

/* Adds row's agent (or updates its latest seen): 0 or -ENOMEM. */
static int agents_add(struct agents *t, const struct hstate_obs_row *row)
{
	struct agent_slot *s;

	if (2 * (t->n + 1) > t->cap) {
		struct agents g = { NULL, t->cap ? 2 * t->cap : 64, t->n };

		if (!(g.slot = calloc(g.cap, sizeof(*g.slot))))
			return -ENOMEM;
		for (size_t i = 0; i < t->cap; i++)
			if (t->slot[i].row)
				*agents_find(&g, t->slot[i].row->agent) =
					t->slot[i];
		free(t->slot);
		*t = g;
	}
	s = agents_find(t, row->agent);
	if (!s->row) {
		s->row = row;
		s->seen = row->seen;
		t->n++;
	} else if (row->seen > s->seen) {
		s->seen = row->seen;
	}
	s->row = row;   /* region and coordinates: the agent's, any row */
	return 0;
}

/* Each agent of t into probes (its region and coordinates, last seen the
 * later of the stored time and its rows'), its id into the slot. */
static int agents_write(struct agents *t, sqlite3_stmt *pr)
{
	for (size_t i = 0; i < t->cap; i++) {
		struct agent_slot *s = &t->slot[i];
		const struct hstate_obs_row *o = s->row;

		if (!o)
			continue;
		sqlite3_bind_text(pr, 1, o->agent, -1, SQLITE_STATIC);
		sqlite3_bind_text(pr, 2, o->region, -1, SQLITE_STATIC);
		if (o->has_coords) {
			sqlite3_bind_double(pr, 3, o->lat);
			sqlite3_bind_double(pr, 4, o->lon);
		}
		sqlite3_bind_double(pr, 5, s->seen);
		if (sqlite3_step(pr) != SQLITE_ROW)
			return -EIO;
		s->pid = sqlite3_column_int64(pr, 0);
		sqlite3_reset(pr);
		sqlite3_clear_bindings(pr);
	}
	return 0;
}

/* Deletes the rows of the endpoints ids[0..n) (every row when ids is
 * NULL) and writes rows in their place. */
static int save_rows(struct store *db, const struct hstate_rows *rows,
                     const uint32_t *ids, size_t n, size_t *skipped,
                     char *err, size_t errlen)
{
	sqlite3 *h = db->h;
	sqlite3_stmt *ep = NULL, *pr = NULL, *ob = NULL, *la = NULL, *del = NULL;
	struct agents ag = { NULL, 0, 0 };
	size_t skip = 0;
	int rc = -EIO, r;

	if (store_begin(h, true) < 0)
		return sqlerr(h, err, errlen, "begin");
	if (!ids && store_exec(h, "DELETE FROM health; DELETE FROM "
	                       "endpoint_health; DELETE FROM latency") < 0)
		goto fail;
	if (ids) {
		for (int t = 0; t < 3; t++) {
			static const char *const sql[3] = {
				"DELETE FROM health WHERE endpoint_id = ?1",
				"DELETE FROM endpoint_health WHERE endpoint_id = ?1",
				"DELETE FROM latency WHERE endpoint_id = ?1",
			};

			if (sqlite3_prepare_v2(h, sql[t], -1, &del, NULL) !=
			    SQLITE_OK)
				goto fail;
			for (size_t i = 0; i < n; i++) {
				sqlite3_bind_int64(del, 1, ids[i]);
				if (sqlite3_step(del) != SQLITE_DONE)
					goto fail;
				sqlite3_reset(del);
			}
			sqlite3_finalize(del);
			del = NULL;
		}
	}
	if (sqlite3_prepare_v2(h, "INSERT INTO endpoint_health (endpoint_id, "
	        "state, stale, since, reason) VALUES (?1, ?2, ?3, ?4, ?5)",
	        -1, &ep, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(h, "INSERT INTO probes (name, region, lat, lon, "
	        "last_seen) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (name) DO "
	        "UPDATE SET region = excluded.region, lat = excluded.lat, "
	        "lon = excluded.lon, last_seen = max(coalesce(last_seen, 0), "
	        "excluded.last_seen) RETURNING id", -1, &pr, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(h, "INSERT INTO health (endpoint_id, probe_id, "
	        "state, ok, rtt_ms, detail, ts, seen, since) VALUES (?1, ?2, ?3, "
	        "?4, ?5, ?6, ?7, ?8, ?9)", -1, &ob, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(h, "INSERT INTO latency (region, endpoint_id, "
	        "rtt_ms, samples, updated) VALUES (?1, ?2, ?3, ?4, ?5)",
	        -1, &la, NULL) != SQLITE_OK)
		goto fail;
	for (size_t i = 0; i < rows->n_eps; i++) {
		const struct hstate_ep_row *e = &rows->eps[i];

		sqlite3_bind_int64(ep, 1, e->endpoint_id);
		sqlite3_bind_text(ep, 2, hstate_state_name(e->state), -1,
		                  SQLITE_STATIC);
		sqlite3_bind_int(ep, 3, e->stale);
		sqlite3_bind_double(ep, 4, e->since);
		sqlite3_bind_text(ep, 5, e->reason ? e->reason : "", -1,
		                  SQLITE_STATIC);
		if ((r = step_row(ep)) < 0)
			goto fail;
		skip += (size_t)r;
	}
	for (size_t i = 0; i < rows->n_obs; i++)
		if (agents_add(&ag, &rows->obs[i]) < 0) {
			rc = -ENOMEM;
			goto fail;
		}
	if (agents_write(&ag, pr) < 0)
		goto fail;
	for (size_t i = 0; i < rows->n_obs; i++) {
		const struct hstate_obs_row *o = &rows->obs[i];

		sqlite3_bind_int64(ob, 1, o->endpoint_id);
		sqlite3_bind_int64(ob, 2, agents_find(&ag, o->agent)->pid);
		sqlite3_bind_text(ob, 3, hstate_state_name(o->state), -1,
		                  SQLITE_STATIC);
		sqlite3_bind_int(ob, 4, o->ok);
		if (o->rtt_ms >= 0)
			sqlite3_bind_double(ob, 5, o->rtt_ms);
		sqlite3_bind_text(ob, 6, o->detail ? o->detail : "", -1,
		                  SQLITE_STATIC);
		sqlite3_bind_double(ob, 7, o->ts);
		sqlite3_bind_double(ob, 8, o->seen);
		sqlite3_bind_double(ob, 9, o->since);
		if ((r = step_row(ob)) < 0)
			goto fail;
		skip += (size_t)r;
	}
	for (size_t i = 0; i < rows->n_lat; i++) {
		const struct hstate_lat_row *l = &rows->lat[i];

		sqlite3_bind_text(la, 1, l->region, -1, SQLITE_STATIC);
		sqlite3_bind_int64(la, 2, l->endpoint_id);
		sqlite3_bind_double(la, 3, l->rtt_ms);
		sqlite3_bind_int64(la, 4, (sqlite3_int64)l->samples);
		sqlite3_bind_double(la, 5, l->updated);
		if ((r = step_row(la)) < 0)
			goto fail;
		skip += (size_t)r;
	}
	if (store_commit(h) < 0)
		goto fail;
	rc = 0;
	if (skipped)
		*skipped = skip;
	goto out;
fail:
	if (rc == -ENOMEM)
		snprintf(err, errlen, "db: health: save: out of memory");
	else
		sqlerr(h, err, errlen, "save");
	store_rollback(h);
out:
	free(ag.slot);
	sqlite3_finalize(ep);
	sqlite3_finalize(pr);
	sqlite3_finalize(ob);
	sqlite3_finalize(la);
	sqlite3_finalize(del);
	return rc;
}

int hstore_save(struct store *db, const struct hstate_rows *rows, size_t *skipped,
                char *err, size_t errlen)
{
	return save_rows(db, rows, NULL, 0, skipped, err, errlen);
}

int hstore_save_ids(struct store *db, const struct hstate_rows *rows,
                    const uint32_t *ids, size_t n, size_t *skipped, char *err,
                    size_t errlen)
{
	return save_rows(db, rows, ids, n, skipped, err, errlen);
}

static json_t *text_or_null(sqlite3_stmt *st, int i)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL
	       ? json_null() : json_string(text_col(st, i));
}

int hstore_checks(struct store *db, double default_interval, long long generation,
                  json_t **doc, struct hstate_ep **eps, size_t *n,
                  char *err, size_t errlen)
{
	sqlite3 *h = db->h;
	sqlite3_stmt *st = NULL;
	json_t *d = json_object(), *arr = json_array();
	struct hstate_ep *v = NULL;
	size_t k = 0, cap = 0;
	int rc;

	*doc = NULL;
	*eps = NULL;
	*n = 0;
	if (!d || !arr)
		goto nomem;
	if (sqlite3_prepare_v2(h,
	        "SELECT e.id, s.name, e.target, e.check_url, e.check_interval, "
	        "e.check_timeout, e.check_rise, e.check_fall, "
	        "e.check_tls_verify, e.check_expect, e.check_body, e.check_host "
	        "FROM endpoints e JOIN services s ON s.id = e.service_id "
	        "WHERE e.check_url IS NOT NULL ORDER BY e.id",
	        -1, &st, NULL) != SQLITE_OK) {
		rc = sqlerr(h, err, errlen, "check list");
		goto fail;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *c;
		double iv = real_or(st, 4, default_interval);

		if (k == cap) {
			size_t nc = cap ? cap * 2 : 64;
			struct hstate_ep *nv = realloc(v, nc * sizeof(*nv));

			if (!nv)
				goto nomem;
			v = nv;
			cap = nc;
		}
		v[k].id = (uint32_t)sqlite3_column_int64(st, 0);
		v[k].interval = iv >= 1 ? iv : 1;
		c = json_pack("{s:I,s:s,s:s,s:s,s:o,s:o,s:i,s:i,s:b,s:o,s:o,s:o}",
		        "id", (json_int_t)v[k].id,
		        "service", text_col(st, 1),
		        "target", text_col(st, 2),
		        "url", text_col(st, 3),
		        "interval", sqlite3_column_type(st, 4) == SQLITE_NULL
		                    ? json_null() : json_real(iv),
		        "timeout", sqlite3_column_type(st, 5) == SQLITE_NULL
		                   ? json_null()
		                   : json_real(sqlite3_column_double(st, 5)),
		        "rise", sqlite3_column_int(st, 6),
		        "fall", sqlite3_column_int(st, 7),
		        "tls_verify", sqlite3_column_int(st, 8) != 0,
		        "expect", text_or_null(st, 9),
		        "body", text_or_null(st, 10),
		        "host", text_or_null(st, 11));
		if (!c || json_array_append_new(arr, c) < 0)
			goto nomem;
		k++;
	}
	if (rc != SQLITE_DONE) {
		rc = sqlerr(h, err, errlen, "check list");
		goto fail;
	}
	sqlite3_finalize(st);
	json_object_set_new(d, "generation", json_integer(generation));
	json_object_set_new(d, "checks", arr);
	*doc = d;
	*eps = v;
	*n = k;
	return 0;
nomem:
	snprintf(err, errlen, "db: health: check list: out of memory");
	rc = -ENOMEM;
fail:
	sqlite3_finalize(st);
	json_decref(arr);
	json_decref(d);
	free(v);
	return rc;
}

/* ------------------------------------------------------------ views */

static json_t *status_endpoint(sqlite3 *h, sqlite3_stmt *st)
{
	long long id = sqlite3_column_int64(st, 0);
	bool has_check = sqlite3_column_type(st, 6) != SQLITE_NULL;
	bool has_eh = sqlite3_column_type(st, 7) != SQLITE_NULL;
	const char *health = !has_check ? "up" :
		has_eh ? (const char *)sqlite3_column_text(st, 7) : "unknown";
	json_t *agents = json_array(), *lat = json_array(), *e;
	sqlite3_stmt *q;

	e = json_pack("{s:s, s:s, s:s, s:b, s:I, s:I, s:o, s:o, s:b, s:o, "
	              "s:o}",
		"target", sqlite3_column_text(st, 1),
		"health", health,
		"admin", sqlite3_column_text(st, 2),
		"drained", sqlite3_column_int(st, 3),
		"weight", (json_int_t)sqlite3_column_int64(st, 4),
		"priority", (json_int_t)sqlite3_column_int64(st, 5),
		"region", sqlite3_column_type(st, 11) == SQLITE_NULL ?
			json_null() :
			json_string((const char *)sqlite3_column_text(st, 11)),
		"check", has_check ?
			json_string((const char *)sqlite3_column_text(st, 6)) :
			json_null(),
		"stale", has_eh && sqlite3_column_int(st, 8),
		"since", has_eh ? json_real(sqlite3_column_double(st, 9)) :
			json_null(),
		"reason", has_eh ?
			json_string((const char *)sqlite3_column_text(st, 10)) :
			json_null());
	if (sqlite3_prepare_v2(h, "SELECT p.name, p.region, h.state, h.ok, "
	                       "h.rtt_ms, h.detail, h.ts, h.seen, h.since "
	                       "FROM health h JOIN probes p ON p.id = "
	                       "h.probe_id WHERE h.endpoint_id = ? ORDER BY "
	                       "p.name", -1, &q, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(q, 1, id);
		while (sqlite3_step(q) == SQLITE_ROW)
			json_array_append_new(agents, json_pack(
				"{s:s, s:s, s:s, s:b, s:o, s:s, s:f, s:f, s:f}",
				"agent", sqlite3_column_text(q, 0),
				"region", sqlite3_column_text(q, 1),
				"state", sqlite3_column_text(q, 2),
				"ok", sqlite3_column_int(q, 3),
				"rtt_ms", sqlite3_column_type(q, 4) ==
					SQLITE_NULL ? json_null() :
					json_real(sqlite3_column_double(q, 4)),
				"detail", sqlite3_column_text(q, 5),
				"ts", sqlite3_column_double(q, 6),
				"seen", sqlite3_column_double(q, 7),
				"since", sqlite3_column_double(q, 8)));
		sqlite3_finalize(q);
	}
	if (sqlite3_prepare_v2(h, "SELECT region, rtt_ms, samples, updated "
	                       "FROM latency WHERE endpoint_id = ? ORDER BY "
	                       "region", -1, &q, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(q, 1, id);
		while (sqlite3_step(q) == SQLITE_ROW)
			json_array_append_new(lat, json_pack(
				"{s:s, s:f, s:I, s:f}",
				"region", sqlite3_column_text(q, 0),
				"rtt_ms", sqlite3_column_double(q, 1),
				"samples", (json_int_t)sqlite3_column_int64(q, 2),
				"updated", sqlite3_column_double(q, 3)));
		sqlite3_finalize(q);
	}
	json_object_set_new(e, "agents", agents);
	json_object_set_new(e, "latency", lat);
	return e;
}

json_t *hstore_status(struct store *db, const char *service, char *err,
                      size_t errlen)
{
	sqlite3 *h = db->h;
	sqlite3_stmt *st = NULL, *es = NULL;
	json_t *svcs = NULL;

	store_begin(h, false);
	if (sqlite3_prepare_v2(h, "SELECT id, name, policy, ttl, answers, "
	                       "when_down FROM services WHERE ?1 IS NULL OR "
	                       "name = ?1 ORDER BY name", -1, &st, NULL)
	    != SQLITE_OK ||
	    sqlite3_prepare_v2(h, "SELECT e.id, e.target, e.admin, e.drained, "
	                       "e.weight, e.priority, e.check_url, eh.state, "
	                       "eh.stale, eh.since, eh.reason, e.region FROM "
	                       "endpoints e LEFT JOIN endpoint_health eh ON "
	                       "eh.endpoint_id = e.id WHERE e.service_id = ? "
	                       "ORDER BY e.priority, e.target", -1, &es, NULL)
	    != SQLITE_OK) {
		snprintf(err, errlen, "%s", sqlite3_errmsg(h));
		goto out;
	}
	if (service)
		sqlite3_bind_text(st, 1, service, -1, SQLITE_STATIC);
	svcs = json_array();
	while (sqlite3_step(st) == SQLITE_ROW) {
		json_t *eps = json_array();

		sqlite3_reset(es);
		sqlite3_bind_int64(es, 1, sqlite3_column_int64(st, 0));
		while (sqlite3_step(es) == SQLITE_ROW)
			json_array_append_new(eps, status_endpoint(h, es));
		json_array_append_new(svcs, json_pack(
			"{s:s, s:s, s:I, s:o, s:s, s:o}",
			"name", sqlite3_column_text(st, 1),
			"policy", sqlite3_column_text(st, 2),
			"ttl", (json_int_t)sqlite3_column_int64(st, 3),
			"answers", sqlite3_column_type(st, 4) == SQLITE_NULL ?
				json_null() :
				json_integer(sqlite3_column_int64(st, 4)),
			"when_down", sqlite3_column_text(st, 5),
			"endpoints", eps));
	}
out:
	sqlite3_finalize(st);
	sqlite3_finalize(es);
	store_rollback(h);
	return svcs;
}

int hstore_restore(struct store *db, struct hstate *st, size_t *skipped,
                   char *err, size_t errlen)
{
	struct hstate_rows rows;
	int rc = hstore_load(db, &rows, err, errlen);

	if (rc < 0)
		return rc;
	rc = hstate_restore(st, &rows, skipped);
	hstate_rows_fini(&rows);
	if (rc < 0)
		snprintf(err, errlen, "db: health: out of memory");
	return rc;
}

int hstore_view(struct store *db, double default_interval,
                struct hstate_view **out, char *err, size_t errlen)
{
	struct hstate *st = hstate_new(NULL);
	struct hstate_ep *eps = NULL;
	json_t *doc = NULL;
	size_t n = 0;
	int rc;

	*out = NULL;
	if (!st) {
		snprintf(err, errlen, "db: health: out of memory");
		return -ENOMEM;
	}
	rc = hstore_checks(db, default_interval, 0, &doc, &eps, &n, err,
	                   errlen);
	if (rc == 0 && (rc = hstate_set_endpoints(st, eps, n)) < 0)
		snprintf(err, errlen, "db: health: cannot set %zu checked "
		         "endpoints: %s", n, strerror(-rc));
	if (rc == 0)
		rc = hstore_restore(db, st, NULL, err, errlen);
	if (rc == 0 && !(*out = hstate_view_build(st))) {
		snprintf(err, errlen, "db: health: out of memory");
		rc = -ENOMEM;
	}
	json_decref(doc);
	free(eps);
	hstate_free(st);
	return rc;
}
