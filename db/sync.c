/* db/sync.c - applying a configuration held elsewhere, service by service
 * (see db/sync.h). */
#include "db/sync.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "db/audit.h"
#include "db/audit_sql.h"
#include "db/damping.h"
#include "db/diff.h"
#include "db/diff_sql.h"
#include "db/edit.h"
#include "db/export.h"
#include "db/shift.h"
#include "db/store.h"
#include "db/store_sql.h"

struct cfg_sync {
	struct store *db;
	struct store *want;      /* the group's services as they should be */
	json_t *names;           /* the group's service names */
	json_t *kept;            /* those kept as they are {name: true} */
};

int cfg_sync_position(struct store *db, struct cfg_sync_pos *pos, char *err,
                      size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc;

	memset(pos, 0, sizeof(*pos));
	if (sqlite3_prepare_v2(db->h, "SELECT revision, config_revision, prefix "
	                       "FROM replica WHERE id = 1", -1, &st, NULL) !=
	    SQLITE_OK)
		return store_sqlerr(db->h, err, errlen, "replica position");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *p = (const char *)sqlite3_column_text(st, 2);

		pos->revision = sqlite3_column_int64(st, 0);
		pos->config_revision = sqlite3_column_int64(st, 1);
		snprintf(pos->prefix, sizeof(pos->prefix), "%s", p ? p : "");
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		rc = 0;
	} else {
		rc = store_sqlerr(db->h, err, errlen, "replica position");
	}
	sqlite3_finalize(st);
	return rc;
}

int cfg_sync_forget(struct store *db, char *err, size_t errlen)
{
	if (store_exec(db->h, "DELETE FROM replica") < 0)
		return store_sqlerr(db->h, err, errlen, "replica forget");
	return 0;
}

struct cfg_sync *cfg_sync_new(struct store *db, char *err, size_t errlen)
{
	struct cfg_sync *s = calloc(1, sizeof(*s));

	if (!s) {
		store_errf(err, errlen, -ENOMEM, "sync: out of memory");
		return NULL;
	}
	s->db = db;
	return s;
}

void cfg_sync_free(struct cfg_sync *s)
{
	if (!s)
		return;
	store_rollback(s->db->h);
	store_close(s->want);
	json_decref(s->names);
	free(s);
}

/* Empties the group (its scratch store is kept for the next one). */
static void group_reset(struct cfg_sync *s)
{
	json_decref(s->names);
	s->names = NULL;
	json_decref(s->kept);
	s->kept = NULL;
	if (s->want && store_exec(s->want->h, "DELETE FROM services") < 0) {
		store_close(s->want);
		s->want = NULL;
	}
}

int cfg_sync_begin(struct cfg_sync *s, char *err, size_t errlen)
{
	group_reset(s);
	if (store_begin(s->db->h, true) < 0)
		return store_sqlerr(s->db->h, err, errlen, "sync: begin");
	return 0;
}

/* The group's scratch store and name list, made on first use. */
static int group(struct cfg_sync *s, char *err, size_t errlen)
{
	int rc;

	if (!s->want && (rc = store_open(":memory:", STORE_CREATE, &s->want,
	                                 err, errlen)) < 0)
		return rc;
	if (!s->names && !(s->names = json_array()))
		return store_errf(err, errlen, -ENOMEM, "sync: out of memory");
	return 0;
}

/* Takes name out of the group's scratch store (a later document of the
 * same service replaces an earlier one) and lists it. */
static int group_name(struct cfg_sync *s, const char *name, char *err,
                      size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = group(s, err, errlen)) < 0)
		return rc;
	if (sqlite3_prepare_v2(s->want->h, "DELETE FROM services WHERE name = ?",
	                       -1, &st, NULL) != SQLITE_OK)
		return store_sqlerr(s->want->h, err, errlen, "sync");
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO;
	sqlite3_finalize(st);
	if (rc < 0)
		return store_sqlerr(s->want->h, err, errlen, "sync");
	if (json_array_append_new(s->names, json_string(name)) < 0)
		return store_errf(err, errlen, -ENOMEM, "sync: out of memory");
	return 0;
}

int cfg_sync_put(struct cfg_sync *s, const char *name, const json_t *doc,
                 char *err, size_t errlen)
{
	char canon[256], e2[512];
	const char *dn;
	int rc;

	if (!json_is_object(doc))
		return store_errf(err, errlen, -EINVAL, "not a JSON object");
	dn = json_string_value(json_object_get(doc, "name"));
	if (!dn)
		return store_errf(err, errlen, -EINVAL, "'name' is required");
	if (cfg_canon_name(dn, canon, e2, sizeof(e2)) < 0)
		return store_errf(err, errlen, -EINVAL, "name: %s", e2);
	if (strcmp(canon, name) != 0)
		return store_errf(err, errlen, -EINVAL, "the document names "
		                  "service '%s', the key '%s'", canon, name);
	if ((rc = group_name(s, name, err, errlen)) < 0)
		return rc;
	if ((rc = cfg_import_add(s->want, doc, e2, sizeof(e2))) < 0) {
		/* out of the group again: a bad document changes nothing */
		json_array_remove(s->names, json_array_size(s->names) - 1);
		return store_errf(err, errlen, rc, "%s", e2);
	}
	return 0;
}

int cfg_sync_remove(struct cfg_sync *s, const char *name, char *err,
                    size_t errlen)
{
	return group_name(s, name, err, errlen);
}

int cfg_sync_keep(struct cfg_sync *s, const char *name, char *err,
                  size_t errlen)
{
	int rc;

	if ((rc = group_name(s, name, err, errlen)) < 0)
		return rc;
	if (cfg_copy_service(s->db->h, name, s->want->h) < 0)
		return store_sqlerr(s->db->h, err, errlen, "sync: copy");
	if ((!s->kept && !(s->kept = json_object())) ||
	    json_object_set_new(s->kept, name, json_true()) < 0)
		return store_errf(err, errlen, -ENOMEM, "sync: out of memory");
	return 0;
}

/* Do rows name every service p changes? (Rows gathered over many
 * revisions, e.g. a catch-up from a range, may miss a change another tool
 * made without rows: the plan's own record then tells the truth.) */
static bool rows_cover(const struct cfg_plan *p, const json_t *rows)
{
	json_t *named = json_object();
	const json_t *r;
	size_t i, n = cfg_plan_size(p);
	bool ok = named != NULL;

	json_array_foreach(rows, i, r) {
		const char *svc = json_string_value(json_object_get(r, "service"));

		if (ok && svc)
			ok = json_object_set_new(named, svc, json_true()) == 0;
	}
	for (i = 0; ok && i < n; i++) {
		json_t *c = cfg_plan_change(p, i);

		ok = c && json_object_get(named, json_string_value(
		              json_object_get(c, "service"))) != NULL;
		json_decref(c);
	}
	json_decref(named);
	return ok;
}

/* Each service of the group gets the staged shift and damping thresholds
 * its document has (neither is in the plan), progress included: the
 * cluster's state of a shift is the one every node serves. A kept service
 * keeps its own. audit: each change is an audit row of the write context
 * (else the writer's rows record them). Adds the names of the services
 * that changed to *steered. */
/* Does h have a staged shift or damping thresholds at all? (Errors count
 * as yes: the copies then say what failed.) */
static bool any_steering(sqlite3 *h)
{
	sqlite3_stmt *st = NULL;
	bool yes = true;

	if (sqlite3_prepare_v2(h, "SELECT EXISTS (SELECT 1 FROM shifts) OR "
	                       "EXISTS (SELECT 1 FROM damping)", -1, &st,
	                       NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		yes = sqlite3_column_int(st, 0) != 0;
	sqlite3_finalize(st);
	return yes;
}

static int sync_steering(struct cfg_sync *s, bool audit, json_t *steered,
                         char *err, size_t errlen)
{
	double now = (double)time(NULL);
	const json_t *n;
	size_t i;
	int rc = 0;

	/* Neither side has any (the common case): nothing to compare, and
	 * no statements per service. */
	if (!any_steering(s->want->h) && !any_steering(s->db->h))
		return 0;

	json_array_foreach(s->names, i, n) {
		const char *name = json_string_value(n);
		int a, b;

		if (json_object_get(s->kept, name))
			continue;
		if ((a = shift_sync_one(s->want, s->db, name, audit, now, err,
		                        errlen)) < 0)
			return a;
		if ((b = damping_sync_one(s->want, s->db, name, audit, err,
		                          errlen)) < 0)
			return b;
		if ((a || b) && json_object_set_new(steered, name,
		                                    json_true()) < 0)
			return store_errf(err, errlen, -ENOMEM,
			                  "sync: out of memory");
	}
	return rc;
}

/* Do rows name every service of names ({name: true})? */
static bool rows_name_all(const json_t *names, const json_t *rows)
{
	const char *k;
	const json_t *v, *r;
	size_t i;

	json_object_foreach((json_t *)names, k, v) {
		bool found = false;

		json_array_foreach(rows, i, r) {
			const char *svc = json_string_value(json_object_get(
			                  r, "service"));

			if (svc && strcmp(svc, k) == 0) {
				found = true;
				break;
			}
		}
		if (!found)
			return false;
	}
	return true;
}

int cfg_sync_flush(struct cfg_sync *s, bool full, const json_t *rows,
                   size_t *changed, char *err, size_t errlen)
{
	struct cfg_plan *p = NULL;
	char *only = NULL, e2[512];
	json_t *steered = NULL;
	bool use_rows;
	int rc;

	if (changed)
		*changed = 0;
	if (!full && (!s->names || json_array_size(s->names) == 0))
		return 0;
	if ((rc = group(s, err, errlen)) < 0)
		return rc;
	if (!full && !(only = json_dumps(s->names, JSON_COMPACT)))
		return store_errf(err, errlen, -ENOMEM, "sync: out of memory");
	rc = cfg_plan_make_some(s->db->h, s->want->h, only, NULL, &p, err,
	                        errlen);
	if (rc < 0)
		goto out;
	if (cfg_plan_size(p) > 0 &&
	    (rc = cfg_plan_apply(p, s->db->h, err, errlen)) < 0)
		goto out;
	/* Shifts and damping thresholds after the rows they name; recorded
	 * by the writer's rows when those name them, else by our own (done
	 * again under a savepoint, rare: a catch-up mixing writers). */
	use_rows = json_is_array(rows) && cfg_rows_check(rows, e2,
	           sizeof(e2)) == 0 && rows_cover(p, rows);
	if (!(steered = json_object())) {
		rc = store_errf(err, errlen, -ENOMEM, "sync: out of memory");
		goto out;
	}
	if (store_exec(s->db->h, "SAVEPOINT steering") < 0) {
		rc = store_sqlerr(s->db->h, err, errlen, "sync: savepoint");
		goto out;
	}
	rc = sync_steering(s, !use_rows, steered, err, errlen);
	if (rc == 0 && use_rows && !rows_name_all(steered, rows)) {
		use_rows = false;
		json_object_clear(steered);
		if (store_exec(s->db->h, "ROLLBACK TO steering") < 0)
			rc = store_sqlerr(s->db->h, err, errlen, "sync: "
			                  "savepoint");
		else
			rc = sync_steering(s, true, steered, err, errlen);
	}
	if (store_exec(s->db->h, "RELEASE steering") < 0 && rc == 0)
		rc = store_sqlerr(s->db->h, err, errlen, "sync: savepoint");
	if (rc < 0)
		goto out;
	/* The writer's rows even when nothing changed here: changes that
	 * cancel out within one batch stay in the audit trail. */
	if (use_rows)
		rc = cfg_record_rows(s->db->h, p, rows, err, errlen);
	else
		rc = cfg_record(s->db->h, p, NULL, err, errlen);
	if (rc == 0 && changed)
		*changed = cfg_plan_size(p) + json_object_size(steered);
out:
	json_decref(steered);
	cfg_plan_free(p);
	free(only);
	/* The scratch store serves the next group, emptied (cheaper than a
	 * new one: a watch catching up brings thousands of revisions). */
	group_reset(s);
	return rc;
}

int cfg_sync_commit(struct cfg_sync *s, const struct cfg_sync_pos *pos,
                    char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	struct timeval tv;
	sqlite3 *h = s->db->h;
	int rc = -EIO;

	gettimeofday(&tv, NULL);
	if (sqlite3_prepare_v2(h, "INSERT OR REPLACE INTO replica (id, revision, "
	                       "config_revision, prefix, updated) VALUES (1, ?, "
	                       "?, ?, ?)", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, pos->revision);
		sqlite3_bind_int64(st, 2, pos->config_revision);
		sqlite3_bind_text(st, 3, pos->prefix, -1, SQLITE_STATIC);
		sqlite3_bind_double(st, 4, tv.tv_sec + tv.tv_usec / 1e6);
		if (sqlite3_step(st) == SQLITE_DONE)
			rc = 0;
	}
	sqlite3_finalize(st);
	if (rc < 0)
		rc = store_sqlerr(h, err, errlen, "sync: position");
	else if (store_commit(h) < 0)
		rc = store_sqlerr(h, err, errlen, "sync: commit");
	if (rc < 0)
		store_rollback(h);
	group_reset(s);
	return rc;
}

void cfg_sync_abort(struct cfg_sync *s)
{
	store_rollback(s->db->h);
	group_reset(s);
}
