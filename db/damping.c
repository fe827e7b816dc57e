/* db/damping.c - flap damping in the store. See db/damping.h. */
#include "db/damping.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "db/audit.h"
#include "db/audit_sql.h"
#include "db/edit.h"
#include "db/store.h"
#include "db/store_sql.h"

static int service_id(sqlite3 *h, const char *name, char canon[256],
                      long long *sid, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = cfg_canon_name(name, canon, err, errlen)) < 0)
		return rc;
	if (sqlite3_prepare_v2(h, "SELECT id FROM services WHERE name = ?", -1,
	                       &st, NULL) != SQLITE_OK)
		return store_sqlerr(h, err, errlen, canon);
	sqlite3_bind_text(st, 1, canon, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*sid = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 0;
	if (rc == SQLITE_DONE)
		return store_errf(err, errlen, -ENOENT, "service %s not found",
		                  canon);
	return store_sqlerr(h, err, errlen, canon);
}

static int set(sqlite3 *h, const char *service, const struct damp_conf *c,
               char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	char canon[256];
	const char *why;
	long long sid;
	int rc;

	if ((rc = service_id(h, service, canon, &sid, err, errlen)) < 0)
		return rc;
	if (damp_conf_check(c, &why) < 0)
		return store_errf(err, errlen, -EINVAL, "damping %s: %s", canon,
		                  why);
	if (sqlite3_prepare_v2(h, "INSERT OR REPLACE INTO damping (service_id, "
	                       "enabled, penalty, suppress, reuse, half_life, "
	                       "max_suppress) VALUES (?, ?, ?, ?, ?, ?, ?)", -1,
	                       &st, NULL) != SQLITE_OK)
		return store_sqlerr(h, err, errlen, canon);
	sqlite3_bind_int64(st, 1, sid);
	sqlite3_bind_int(st, 2, c->on);
	sqlite3_bind_double(st, 3, c->penalty);
	sqlite3_bind_double(st, 4, c->suppress);
	sqlite3_bind_double(st, 5, c->reuse);
	sqlite3_bind_double(st, 6, c->half_life);
	sqlite3_bind_double(st, 7, c->max_suppress);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : store_sqlerr(h, err, errlen, canon);
}

/* Thresholds of service as an audit value: the export object, or the
 * string "defaults" (new reference). */
static json_t *audit_value(struct store *db, const char *service)
{
	json_t *o = damping_export(db, service);

	return o ? o : json_string("defaults");
}

/* A change of service's thresholds from old (reference taken) to what
 * the store has now: one audit row (kind service, field damping) by the
 * write context's writer, the store's version moved and the service in
 * the change log, as for any configuration write (a cluster replicates
 * the thresholds with the service). Nothing when they did not change. */
static int audit_damping(struct store *db, const char *service, json_t *old,
                         char *err, size_t errlen)
{
	const struct cfg_write *w = cfg_write_current();
	json_t *new_ = audit_value(db, service);
	char canon[256], who[64], *to = NULL, *tn = NULL;
	struct timeval tv;
	sqlite3_stmt *st = NULL;
	long long v;
	int rc = 0;

	if (!old || !new_ || json_equal(old, new_))
		goto out;
	rc = -EIO;
	if (cfg_canon_name(service, canon, err, errlen) < 0)
		goto out;
	if (w->who)
		snprintf(who, sizeof who, "%s", w->who);
	else
		snprintf(who, sizeof who, "uid %u", (unsigned)getuid());
	to = json_dumps(old, JSON_ENCODE_ANY | JSON_COMPACT |
	                JSON_REAL_PRECISION(15));
	tn = json_dumps(new_, JSON_ENCODE_ANY | JSON_COMPACT |
	                JSON_REAL_PRECISION(15));
	gettimeofday(&tv, NULL);
	if (!to || !tn ||
	    store_exec(db->h, "INSERT OR IGNORE INTO store_version (id, "
	               "version) VALUES (1, 0); UPDATE store_version SET "
	               "version = version + 1 WHERE id = 1") < 0 ||
	    (v = cfg_version_of(db->h)) < 0 ||
	    sqlite3_prepare_v2(db->h, "INSERT OR IGNORE INTO changes (version, "
	                       "service) VALUES (?1, ?2); ", -1, &st, NULL) !=
	    SQLITE_OK)
		goto fail;
	sqlite3_bind_int64(st, 1, v);
	sqlite3_bind_text(st, 2, canon, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto fail;
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(db->h, "INSERT INTO audit (version, time, who, "
	                       "source, op, kind, service, target, field, old, "
	                       "new) VALUES (?, ?, ?, ?, 'change', 'service', "
	                       "?, NULL, 'damping', ?, ?)", -1, &st, NULL) !=
	    SQLITE_OK)
		goto fail;
	sqlite3_bind_int64(st, 1, v);
	sqlite3_bind_double(st, 2, tv.tv_sec + tv.tv_usec / 1e6);
	sqlite3_bind_text(st, 3, who, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, w->source ? w->source : "gslbctl", -1,
	                  SQLITE_STATIC);
	sqlite3_bind_text(st, 5, canon, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, to, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, tn, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		goto fail;
	rc = 0;
	goto out;
fail:
	rc = store_sqlerr(db->h, err, errlen, "audit");
out:
	sqlite3_finalize(st);
	free(to);
	free(tn);
	json_decref(old);
	json_decref(new_);
	return rc;
}

static int set_audited(struct store *db, const char *service,
                       const struct damp_conf *c, char *err, size_t errlen)
{
	json_t *old = audit_value(db, service);
	int rc = set(db->h, service, c, err, errlen);

	if (rc < 0) {
		json_decref(old);
		return rc;
	}
	return audit_damping(db, service, old, err, errlen);
}

int damping_set(struct store *db, const char *service,
                const struct damp_conf *c, char *err, size_t errlen)
{
	sqlite3 *h = db->h;

	STORE_TXN(h, err, errlen, set_audited(db, service, c, err, errlen));
}

static int reset(sqlite3 *h, const char *service, char *err, size_t errlen)
{
	char canon[256], sql[96];
	long long sid;
	int rc;

	if ((rc = service_id(h, service, canon, &sid, err, errlen)) < 0)
		return rc;
	snprintf(sql, sizeof sql, "DELETE FROM damping WHERE service_id = %lld",
	         sid);
	return store_exec(h, sql) < 0 ? store_sqlerr(h, err, errlen, canon) : 0;
}

static int reset_audited(struct store *db, const char *service, char *err,
                         size_t errlen)
{
	json_t *old = audit_value(db, service);
	int rc = reset(db->h, service, err, errlen);

	if (rc < 0) {
		json_decref(old);
		return rc;
	}
	return audit_damping(db, service, old, err, errlen);
}

int damping_reset(struct store *db, const char *service, char *err,
                  size_t errlen)
{
	sqlite3 *h = db->h;

	STORE_TXN(h, err, errlen, reset_audited(db, service, err, errlen));
}

static void row_conf(sqlite3_stmt *st, int i, struct damp_conf *c)
{
	c->on = sqlite3_column_int(st, i) != 0;
	c->penalty = sqlite3_column_double(st, i + 1);
	c->suppress = sqlite3_column_double(st, i + 2);
	c->reuse = sqlite3_column_double(st, i + 3);
	c->half_life = sqlite3_column_double(st, i + 4);
	c->max_suppress = sqlite3_column_double(st, i + 5);
}

int damping_get(struct store *db, const char *service, struct damp_conf *out,
                bool *custom, char *err, size_t errlen)
{
	sqlite3 *h = db->h;
	sqlite3_stmt *st = NULL;
	char canon[256];
	const char *why;
	long long sid;
	int rc;

	damp_conf_default(out);
	*custom = false;
	if ((rc = service_id(h, service, canon, &sid, err, errlen)) < 0)
		return rc;
	if (sqlite3_prepare_v2(h, "SELECT enabled, penalty, suppress, reuse, "
	                       "half_life, max_suppress FROM damping WHERE "
	                       "service_id = ?", -1, &st, NULL) != SQLITE_OK)
		return store_sqlerr(h, err, errlen, canon);
	sqlite3_bind_int64(st, 1, sid);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		row_conf(st, 0, out);
		*custom = true;
		if (damp_conf_check(out, &why) < 0) {
			damp_conf_default(out);
			*custom = false;
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE
	       ? 0 : store_sqlerr(h, err, errlen, canon);
}

/* Grows *v (elements of size sz, *cap of them, zeroed) to hold index id. */
static int grow(void **v, size_t *cap, size_t sz, size_t id)
{
	size_t nc = *cap ? *cap : 64;
	void *nv;

	if (id < *cap)
		return 0;
	while (nc <= id)
		nc *= 2;
	if (!(nv = realloc(*v, nc * sz)))
		return -ENOMEM;
	memset((char *)nv + *cap * sz, 0, (nc - *cap) * sz);
	*v = nv;
	*cap = nc;
	return 0;
}

int damping_by_endpoint(struct store *db, struct damp_conf **out, size_t *n,
                        char *err, size_t errlen)
{
	sqlite3 *h = db->h;
	sqlite3_stmt *st = NULL;
	struct damp_conf *v = NULL, def;
	size_t cap = 0, top = 0;
	const char *why;
	int rc;

	*out = NULL;
	*n = 0;
	damp_conf_default(&def);
	/* Only the endpoints of services with thresholds of their own
	 * (damping first, then the endpoints_service index: CROSS JOIN keeps
	 * that order): the others keep the defaults, whatever the number of
	 * endpoints. */
	if (sqlite3_prepare_v2(h, "SELECT e.id, d.enabled, d.penalty, "
	                       "d.suppress, d.reuse, d.half_life, "
	                       "d.max_suppress, d.service_id FROM damping d "
	                       "CROSS JOIN endpoints e ON e.service_id = "
	                       "d.service_id WHERE e.id >= 0 AND e.id < 16777216",
	                       -1, &st, NULL) != SQLITE_OK)
		return store_sqlerr(h, err, errlen, "damping");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		size_t id = (size_t)sqlite3_column_int64(st, 0);
		size_t old = cap;

		if (grow((void **)&v, &cap, sizeof *v, id) < 0) {
			rc = -ENOMEM;
			break;
		}
		for (size_t i = old; i < cap; i++)
			v[i] = def;
		if (sqlite3_column_type(st, 7) != SQLITE_NULL) {
			row_conf(st, 1, &v[id]);
			if (damp_conf_check(&v[id], &why) < 0)
				v[id] = def;
		}
		if (id + 1 > top)
			top = id + 1;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(v);
		return rc == -ENOMEM ? store_errf(err, errlen, rc, "damping: out "
		                                  "of memory")
		                     : store_sqlerr(h, err, errlen, "damping");
	}
	*out = v;
	*n = top;
	return 0;
}

int damping_state_load(struct store *db, struct damp_state **out, size_t *n,
                       char *err, size_t errlen)
{
	sqlite3 *h = db->h;
	sqlite3_stmt *st = NULL;
	struct damp_state *v = NULL;
	size_t cap = 0, top = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if (sqlite3_prepare_v2(h, "SELECT endpoint_id, penalty, at, suppressed "
	                       "FROM damp_state WHERE endpoint_id >= 0 AND "
	                       "endpoint_id < 16777216", -1, &st, NULL)
	    != SQLITE_OK)
		return store_sqlerr(h, err, errlen, "damp_state");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		size_t id = (size_t)sqlite3_column_int64(st, 0);

		if (grow((void **)&v, &cap, sizeof *v, id) < 0) {
			rc = -ENOMEM;
			break;
		}
		v[id].penalty = sqlite3_column_double(st, 1);
		v[id].at = sqlite3_column_double(st, 2);
		v[id].suppressed = sqlite3_column_int(st, 3) != 0;
		if (id + 1 > top)
			top = id + 1;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(v);
		return rc == -ENOMEM ? store_errf(err, errlen, rc, "damp_state: "
		                                  "out of memory")
		                     : store_sqlerr(h, err, errlen, "damp_state");
	}
	*out = v;
	*n = top;
	return 0;
}

static int save(sqlite3 *h, const struct damp_state *s,
                const struct damp_conf *conf, size_t n, char *err,
                size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc = SQLITE_DONE;

	if (store_exec(h, "DELETE FROM damp_state") < 0 ||
	    sqlite3_prepare_v2(h, "INSERT OR IGNORE INTO damp_state "
	                       "(endpoint_id, penalty, at, suppressed, "
	                       "reuse_at) SELECT ?, ?, ?, ?, ? WHERE EXISTS "
	                       "(SELECT 1 FROM endpoints WHERE id = ?1)", -1,
	                       &st, NULL) != SQLITE_OK)
		return store_sqlerr(h, err, errlen, "damp_state");
	for (size_t i = 0; i < n && rc == SQLITE_DONE; i++) {
		if (s[i].penalty <= 0 && !s[i].suppressed)
			continue;
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, (long long)i);
		sqlite3_bind_double(st, 2, s[i].penalty);
		sqlite3_bind_double(st, 3, s[i].at);
		sqlite3_bind_int(st, 4, s[i].suppressed);
		sqlite3_bind_double(st, 5, damp_reuse_at(&s[i], &conf[i]));
		rc = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : store_sqlerr(h, err, errlen,
	                                            "damp_state");
}

int damping_state_save(struct store *db, const struct damp_state *st,
                       const struct damp_conf *conf, size_t n, char *err,
                       size_t errlen)
{
	sqlite3 *h = db->h;

	STORE_TXN(h, err, errlen, save(h, st, conf, n, err, errlen));
}

/* ------------------------------------------------------ export/import */

json_t *damping_export(struct store *db, const char *service)
{
	struct damp_conf c;
	bool custom = false;

	if (damping_get(db, service, &c, &custom, NULL, 0) < 0 || !custom)
		return NULL;
	return json_pack("{s:b, s:f, s:f, s:f, s:f, s:f}", "on", c.on,
	                 "penalty", c.penalty, "suppress", c.suppress,
	                 "reuse", c.reuse, "half_life", c.half_life,
	                 "max_suppress", c.max_suppress);
}

int damping_import(struct store *db, const char *service, const json_t *o,
                   const char *where, char *err, size_t errlen)
{
	static const char *const keys[] = { "on", "penalty", "suppress",
		"reuse", "half_life", "max_suppress" };
	double *num[5];
	struct damp_conf c;
	char msg[512];
	const char *k;
	json_t *v;
	int rc;

	damp_conf_default(&c);
	num[0] = &c.penalty;
	num[1] = &c.suppress;
	num[2] = &c.reuse;
	num[3] = &c.half_life;
	num[4] = &c.max_suppress;
	if (!json_is_object(o))
		return store_errf(err, errlen, -EINVAL, "%s: 'damping' must be "
		                  "an object or null", where);
	json_object_foreach((json_t *)o, k, v) {
		size_t i = 0;

		while (i < 6 && strcmp(k, keys[i]) != 0)
			i++;
		if (i == 6 || (i == 0 && !json_is_boolean(v)) ||
		    (i > 0 && !json_is_number(v)))
			return store_errf(err, errlen, -EINVAL, "%s: damping: "
			                  "'%s' is not on (true/false), penalty, "
			                  "suppress, reuse, half_life or "
			                  "max_suppress (numbers)", where, k);
		if (i == 0)
			c.on = json_is_true(v);
		else
			*num[i - 1] = json_number_value(v);
	}
	if ((rc = set(db->h, service, &c, err, errlen)) < 0) {
		snprintf(msg, sizeof msg, "%s", err);
		return store_errf(err, errlen, rc, "%s: %s", where, msg);
	}
	return 0;
}

int damping_sync_one(struct store *from, struct store *to, const char *name,
                     bool audit, char *err, size_t errlen)
{
	json_t *a = damping_export(from, name);
	json_t *b = damping_export(to, name);
	json_t *old = audit && (a || b) ? audit_value(to, name) : NULL;
	int rc = 0, changed = 0;

	if (a && !json_equal(a, b)) {
		rc = damping_import(to, name, a, name, err, errlen);
		changed = 1;
	} else if (!a && b) {
		rc = reset(to->h, name, err, errlen);
		changed = 1;
	}
	if (rc == 0 && changed && old) {
		rc = audit_damping(to, name, old, err, errlen);
		old = NULL;
	}
	json_decref(old);
	json_decref(a);
	json_decref(b);
	return rc < 0 ? rc : changed;
}

int damping_copy_one(struct store *from, struct store *to, const char *name,
                     char *err, size_t errlen)
{
	int rc = damping_sync_one(from, to, name, true, err, errlen);

	return rc < 0 ? rc : 0;
}

int damping_copy(struct store *from, struct store *to, char *err,
                 size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc = 0;

	if (sqlite3_prepare_v2(to->h, "SELECT name FROM services", -1, &st,
	                       NULL) != SQLITE_OK)
		return store_sqlerr(to->h, err, errlen, "import: damping");
	while (rc == 0 && sqlite3_step(st) == SQLITE_ROW)
		rc = damping_copy_one(from, to, (const char *)
		                      sqlite3_column_text(st, 0), err, errlen);
	sqlite3_finalize(st);
	return rc;
}
