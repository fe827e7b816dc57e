/* db/shift.c - staged traffic shifts in the store. See db/shift.h. */
#include "db/shift.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db/audit.h"
#include "db/audit_sql.h"
#include "db/edit.h"
#include "db/store.h"
#include "db/store_sql.h"

static const char *const state_names[SHIFT_NSTATES] = {
	"running", "paused", "done", "rolled-back", "aborted",
};

const char *shift_state_name(int state)
{
	return state >= 0 && state < SHIFT_NSTATES ? state_names[state] : "?";
}

static int state_parse(const char *s)
{
	for (int i = 0; s && i < SHIFT_NSTATES; i++)
		if (strcmp(s, state_names[i]) == 0)
			return i;
	return -EINVAL;
}

unsigned shift_percent(const struct shift_info *s)
{
	switch (s->state) {
	case SHIFT_RUNNING:
	case SHIFT_PAUSED:
		return s->stage >= 1 && s->stage <= s->n_steps
		       ? s->steps[s->stage - 1] : 0;
	case SHIFT_DONE:
		return 100;
	default:
		return 0;
	}
}

double shift_next_time(const struct shift_info *s)
{
	if (s->state != SHIFT_RUNNING || s->stage >= s->n_steps)
		return 0;
	return s->stage_started + s->every;
}

int shift_parse_steps(const char *in, unsigned *steps, unsigned *n,
                      char *err, size_t errlen)
{
	const char *p = in;
	unsigned k = 0;

	if (!in || !*in)
		return store_errf(err, errlen, -EINVAL, "--steps: empty (give "
		                  "percents like 1,5,25,50,100)");
	while (*p) {
		char *end;
		long v;

		if (*p < '0' || *p > '9')
			return store_errf(err, errlen, -EINVAL, "--steps '%s': "
			                  "'%s' is not a percent", in, p);
		v = strtol(p, &end, 10);
		if (v < 1 || v > 100)
			return store_errf(err, errlen, -EINVAL, "--steps '%s': "
			                  "%ld outside 1..100", in, v);
		if (k == SHIFT_MAX_STEPS)
			return store_errf(err, errlen, -EINVAL, "--steps '%s': "
			                  "more than %d steps", in,
			                  SHIFT_MAX_STEPS);
		if (k && (unsigned)v <= steps[k - 1])
			return store_errf(err, errlen, -EINVAL, "--steps '%s': "
			                  "%ld does not grow past %u", in, v,
			                  steps[k - 1]);
		steps[k++] = (unsigned)v;
		if (*end == ',' && end[1])
			end++;
		else if (*end)
			return store_errf(err, errlen, -EINVAL, "--steps '%s': "
			                  "unexpected '%s'", in, end);
		p = end;
	}
	if (steps[k - 1] != 100)
		return store_errf(err, errlen, -EINVAL, "--steps '%s': the last "
		                  "step must be 100", in);
	*n = k;
	return 0;
}

static void steps_format(const unsigned *steps, unsigned n, char *out,
                         size_t cap)
{
	size_t len = 0;

	out[0] = '\0';
	for (unsigned i = 0; i < n && len < cap; i++)
		len += (size_t)snprintf(out + len, cap - len, "%s%u",
		                        i ? "," : "", steps[i]);
}

/* --------------------------------------------------------------- rows */

#define ROW_COLS "sh.service_id, sh.target_id, s.name, e.target, s.policy, " \
	"sh.steps, sh.every, sh.max_rtt_ms, sh.stage, sh.state, "          \
	"sh.started, sh.stage_started, sh.left, sh.reason, sh.updated"
#define ROW_FROM " FROM shifts sh JOIN services s ON s.id = sh.service_id " \
	"JOIN endpoints e ON e.id = sh.target_id"

static void cpy(char *dst, size_t cap, const unsigned char *src)
{
	snprintf(dst, cap, "%s", src ? (const char *)src : "");
}

/* Reads the row st points at. -EINVAL when it does not make sense. */
static int row_read(sqlite3_stmt *st, struct shift_info *o)
{
	char e[8];

	memset(o, 0, sizeof *o);
	o->service_id = sqlite3_column_int64(st, 0);
	o->target_id = sqlite3_column_int64(st, 1);
	cpy(o->service, sizeof o->service, sqlite3_column_text(st, 2));
	cpy(o->target, sizeof o->target, sqlite3_column_text(st, 3));
	cpy(o->policy, sizeof o->policy, sqlite3_column_text(st, 4));
	o->every = sqlite3_column_double(st, 6);
	o->max_rtt_ms = sqlite3_column_double(st, 7);
	o->stage = (unsigned)sqlite3_column_int(st, 8);
	o->state = state_parse((const char *)sqlite3_column_text(st, 9));
	o->started = sqlite3_column_double(st, 10);
	o->stage_started = sqlite3_column_double(st, 11);
	o->left = sqlite3_column_double(st, 12);
	cpy(o->reason, sizeof o->reason, sqlite3_column_text(st, 13));
	o->updated = sqlite3_column_double(st, 14);
	if (shift_parse_steps((const char *)sqlite3_column_text(st, 5),
	                      o->steps, &o->n_steps, e, 0) < 0 ||
	    o->state < 0 || o->stage < 1 || o->stage > o->n_steps ||
	    !(o->every > 0))
		return -EINVAL;
	return 0;
}

/* The shift of service id sid (-ENOENT none, -EINVAL bad row, -EIO). */
static int row_get(sqlite3 *h, long long sid, struct shift_info *o)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(h, "SELECT " ROW_COLS ROW_FROM
	                       " WHERE sh.service_id = ?", -1, &st,
	                       NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(st, 1, sid);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		rc = row_read(st, o);
	else
		rc = rc == SQLITE_DONE ? -ENOENT : -EIO;
	sqlite3_finalize(st);
	return rc;
}

/* Service id by name (canonical), -ENOENT or -EIO with err. */
static int service_id(sqlite3 *h, const char *name, char canon[256],
                      long long *sid, char *pol, size_t polcap, char *err,
                      size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = cfg_canon_name(name, canon, err, errlen)) < 0)
		return rc;
	if (sqlite3_prepare_v2(h, "SELECT id, policy FROM services WHERE "
	                       "name = ?", -1, &st, NULL) != SQLITE_OK)
		return store_sqlerr(h, err, errlen, canon);
	sqlite3_bind_text(st, 1, canon, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*sid = sqlite3_column_int64(st, 0);
		if (pol)
			cpy(pol, polcap, sqlite3_column_text(st, 1));
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		rc = store_errf(err, errlen, -ENOENT, "service %s not found",
		                canon);
	} else {
		rc = store_sqlerr(h, err, errlen, canon);
	}
	sqlite3_finalize(st);
	return rc;
}

/* Runs one UPDATE/INSERT with bound values: fmt 'i' long long, 'd'
 * double, 't' text, 'D' double or NULL when <= 0. 0 or -EIO/-EINVAL. */
static int exec_bind(sqlite3 *h, const char *sql, const char *fmt, ...)
{
	sqlite3_stmt *st = NULL;
	va_list ap;
	int rc, i = 1;

	if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	va_start(ap, fmt);
	for (const char *f = fmt; *f; f++, i++) {
		double d;

		switch (*f) {
		case 'i':
			sqlite3_bind_int64(st, i, va_arg(ap, long long));
			break;
		case 'd':
			sqlite3_bind_double(st, i, va_arg(ap, double));
			break;
		case 'D':
			d = va_arg(ap, double);
			if (d > 0)
				sqlite3_bind_double(st, i, d);
			else
				sqlite3_bind_null(st, i);
			break;
		default:
			sqlite3_bind_text(st, i, va_arg(ap, const char *), -1,
			                  SQLITE_TRANSIENT);
		}
	}
	va_end(ap);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0
	       : rc == SQLITE_CONSTRAINT ? -EINVAL : -EIO;
}

/* One audit row for a change of a shift (kind service, field "shift",
 * old and new as JSON strings). A shift changes what the service answers
 * (its stage, the priorities it restores), so the store's version moves
 * and the change log names the service, as for a configuration write:
 * readers that reload only what changed see it. by_dnsd: written by dnsd
 * itself, else by the writer of cfg_write_current(). */
static int audit_shift(sqlite3 *h, const struct shift_info *o,
                       const char *old, const char *new_, bool by_dnsd,
                       double now)
{
	const struct cfg_write *w = cfg_write_current();
	char who[64], jo[600], jn[600];
	json_t *a = json_string(old), *b = json_string(new_);
	char *ta = a ? json_dumps(a, JSON_ENCODE_ANY) : NULL;
	char *tb = b ? json_dumps(b, JSON_ENCODE_ANY) : NULL;
	long long v;
	int rc;

	if (store_exec(h, "INSERT OR IGNORE INTO store_version (id, version) "
	               "VALUES (1, 0); UPDATE store_version SET version = "
	               "version + 1 WHERE id = 1") < 0 ||
	    (v = cfg_version_of(h)) < 0 ||
	    exec_bind(h, "INSERT OR IGNORE INTO changes (version, service) "
	              "VALUES (?, ?)", "it", v, o->service) < 0) {
		free(ta);
		free(tb);
		json_decref(a);
		json_decref(b);
		return -EIO;
	}
	snprintf(jo, sizeof jo, "%s", ta ? ta : "null");
	snprintf(jn, sizeof jn, "%s", tb ? tb : "null");
	free(ta);
	free(tb);
	json_decref(a);
	json_decref(b);
	/* A dnsd writing through a cluster names itself ("dnsd:NODE") in
	 * its write context. */
	if (by_dnsd && w->who && strncmp(w->who, "dnsd:", 5) == 0)
		snprintf(who, sizeof who, "%s", w->who);
	else if (by_dnsd)
		snprintf(who, sizeof who, "dnsd");
	else if (w->who)
		snprintf(who, sizeof who, "%s", w->who);
	else
		snprintf(who, sizeof who, "uid %u", (unsigned)getuid());
	rc = exec_bind(h, "INSERT INTO audit (version, time, who, source, op, "
	               "kind, service, target, field, old, new) VALUES (?, ?, "
	               "?, ?, 'change', 'service', ?, ?, 'shift', ?, ?)",
	               "idtttttt", v, now, who,
	               by_dnsd && strcmp(who, "dnsd") == 0 ? "dnsd" :
	               w->source ? w->source : "gslbctl",
	               o->service, o->target, jo, jn);
	return rc;
}

/* "stage 2 of 5 (25%), running" */
static void describe(const struct shift_info *o, char *out, size_t cap)
{
	snprintf(out, cap, "stage %u of %u (%u%%), %s%s%s", o->stage,
	         o->n_steps, shift_percent(o), shift_state_name(o->state),
	         o->reason[0] ? ": " : "", o->reason);
}

/* Stage o->stage has just begun: a 100 percent stage ends the shift
 * (failover: the target takes the best priority, as a flip). */
static int stage_begun(sqlite3 *h, struct shift_info *o, double now,
                       char *err, size_t errlen)
{
	int rc;

	if (o->steps[o->stage - 1] != 100)
		return 0;
	if (strcmp(o->policy, "failover") == 0 &&
	    (rc = cfg_flip_in(&(struct store){ .h = h }, o->service, o->target,
	                      err, errlen)) < 0)
		return rc;
	o->state = SHIFT_DONE;
	snprintf(o->reason, sizeof o->reason, "completed");
	if (exec_bind(h, "UPDATE shifts SET state = 'done', reason = "
	              "'completed', updated = ? WHERE service_id = ?", "di",
	              now, o->service_id) < 0)
		return store_sqlerr(h, err, errlen, o->service);
	return 0;
}

json_t *shift_json(const struct shift_info *s, double now)
{
	json_t *steps = json_array(), *o;
	double next = shift_next_time(s);

	for (unsigned i = 0; steps && i < s->n_steps; i++)
		json_array_append_new(steps, json_integer(s->steps[i]));
	o = json_pack("{s:s, s:I, s:I, s:I, s:o, s:f, s:s, s:b, s:o, s:o, "
	              "s:f, s:o, s:s}",
	              "target", s->target,
	              "percent", (json_int_t)shift_percent(s),
	              "stage", (json_int_t)s->stage,
	              "stages", (json_int_t)s->n_steps,
	              "steps", steps ? steps : json_null(),
	              "every", s->every,
	              "state", s->state == SHIFT_PAUSED ? "running"
	                       : shift_state_name(s->state),
	              "paused", s->state == SHIFT_PAUSED,
	              "next_step", next > 0 ? json_real(next) : json_null(),
	              "next_step_in", next > 0 ? json_real(fmax(0, next - now))
	                                       : json_null(),
	              "started", s->started,
	              "max_rtt_ms", s->max_rtt_ms > 0 ? json_real(s->max_rtt_ms)
	                                              : json_null(),
	              "reason", s->reason);
	return o;
}

json_t *shift_json_all(struct store *db, double now, char *err, size_t errlen)
{
	sqlite3 *h = db->h;
	sqlite3_stmt *st = NULL;
	json_t *all = json_object();
	int rc;

	if (!all)
		return NULL;
	if (sqlite3_prepare_v2(h, "SELECT " ROW_COLS ROW_FROM " ORDER BY "
	                       "s.name", -1, &st, NULL) != SQLITE_OK) {
		store_sqlerr(h, err, errlen, "shifts");
		json_decref(all);
		return NULL;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct shift_info o;

		if (row_read(st, &o) == 0)
			json_object_set_new(all, o.service, shift_json(&o, now));
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		store_sqlerr(h, err, errlen, "shifts");
		json_decref(all);
		return NULL;
	}
	return all;
}

/* ------------------------------------------------------------- writes */

static int start(sqlite3 *h, const char *service, const char *target,
                 const char *steps, double every, double max_rtt_ms,
                 double now, char *err, size_t errlen)
{
	char sname[256], pol[16], tcanon[256], prev[4096] = "", st_txt[160];
	struct shift_info o;
	sqlite3_stmt *st = NULL;
	unsigned stp[SHIFT_MAX_STEPS], n;
	long long sid, tid = -1;
	size_t len = 0;
	int rc;

	if ((rc = shift_parse_steps(steps, stp, &n, err, errlen)) < 0)
		return rc;
	if (!(every > 0) || every > 1e9)
		return store_errf(err, errlen, -EINVAL, "--every %g: give "
		                  "seconds above 0", every);
	if (isnan(max_rtt_ms) || max_rtt_ms < 0 || max_rtt_ms > 1e7)
		return store_errf(err, errlen, -EINVAL, "--max-rtt-ms %g: give "
		                  "milliseconds above 0", max_rtt_ms);
	if ((rc = service_id(h, service, sname, &sid, pol, sizeof pol, err,
	                     errlen)) < 0)
		return rc;
	if (strcmp(pol, "failover") != 0 && strcmp(pol, "weighted") != 0)
		return store_errf(err, errlen, -EINVAL, "shift %s: policy %s "
		                  "(shifts move failover and weighted "
		                  "services)", sname, pol);
	rc = row_get(h, sid, &o);
	if (rc == 0 && (o.state == SHIFT_RUNNING || o.state == SHIFT_PAUSED))
		return store_errf(err, errlen, -EBUSY, "shift %s: a shift to "
		                  "%s is %s (stage %u; abort it first)", sname,
		                  o.target, shift_state_name(o.state), o.stage);
	/* The target (canonical, as cfg_flip checks it) and the priorities
	 * an abort after the end restores. */
	if (sqlite3_prepare_v2(h, "SELECT id, target, priority, drained, "
	                       "admin FROM endpoints WHERE service_id = ? "
	                       "ORDER BY id", -1, &st, NULL) != SQLITE_OK)
		return store_sqlerr(h, err, errlen, sname);
	sqlite3_bind_int64(st, 1, sid);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(st, 1);
		char c[256];

		if (len < sizeof prev)
			len += (size_t)snprintf(prev + len, sizeof prev - len,
			                        "%s%lld:%lld", len ? "," : "",
			                        (long long)sqlite3_column_int64(st, 0),
			                        (long long)sqlite3_column_int64(st, 2));
		/* Compare canonical forms: "2001:DB8::1" equals 2001:db8::1. */
		if (tid < 0 && cfg_canon_target(target, c, NULL, 0) == 0 &&
		    strcmp(c, t) == 0) {
			tid = sqlite3_column_int64(st, 0);
			snprintf(tcanon, sizeof tcanon, "%s", t);
			if (sqlite3_column_int(st, 3))
				rc = store_errf(err, errlen, -EINVAL, "cannot "
				                "shift %s to %s: it is drained "
				                "(undrain it first)", sname, t);
			else if (strcmp((const char *)sqlite3_column_text(st, 4),
			                "down") == 0)
				rc = store_errf(err, errlen, -EINVAL, "cannot "
				                "shift %s to %s: it is forced down",
				                sname, t);
			if (rc < 0)
				break;
		}
	}
	sqlite3_finalize(st);
	if (rc < 0)
		return rc;
	if (rc != SQLITE_DONE)
		return store_sqlerr(h, err, errlen, sname);
	if (len >= sizeof prev)
		return store_errf(err, errlen, -E2BIG, "shift %s: too many "
		                  "endpoints to remember their priorities",
		                  sname);
	if (tid < 0) {
		if ((rc = cfg_canon_target(target, tcanon, err, errlen)) < 0)
			return rc;
		return store_errf(err, errlen, -ENOENT, "%s is not an endpoint "
		                  "of %s", tcanon, sname);
	}
	steps_format(stp, n, st_txt, sizeof st_txt);
	if (exec_bind(h, "INSERT OR REPLACE INTO shifts (service_id, "
	              "target_id, steps, every, max_rtt_ms, stage, state, "
	              "started, stage_started, left, reason, prev, updated) "
	              "VALUES (?, ?, ?, ?, ?, 1, 'running', ?, ?, NULL, '', ?, "
	              "?)", "iitdDddtd", sid, tid, st_txt, every, max_rtt_ms,
	              now, now, prev, now) < 0)
		return store_sqlerr(h, err, errlen, sname);
	if ((rc = row_get(h, sid, &o)) < 0)
		return store_errf(err, errlen, rc, "shift %s: cannot read it "
		                  "back", sname);
	{
		char d[640];

		snprintf(d, sizeof d, "started to %s: steps %s every %g s",
		         o.target, st_txt, every);
		if (audit_shift(h, &o, "", d, false, now) < 0)
			return store_sqlerr(h, err, errlen, "audit");
	}
	return stage_begun(h, &o, now, err, errlen);
}

int shift_start(struct store *db, const char *service, const char *target,
                const char *steps, double every, double max_rtt_ms,
                double now, char *err, size_t errlen)
{
	sqlite3 *h = db->h;
	STORE_TXN(h, err, errlen, start(h, service, target, steps, every,
	                                max_rtt_ms, now, err, errlen));
}

/* The shift of service by name, for the operator's commands. */
static int get_named(sqlite3 *h, const char *service, struct shift_info *o,
                     char *err, size_t errlen)
{
	char sname[256];
	long long sid;
	int rc;

	if ((rc = service_id(h, service, sname, &sid, NULL, 0, err,
	                     errlen)) < 0)
		return rc;
	rc = row_get(h, sid, o);
	if (rc == -ENOENT)
		return store_errf(err, errlen, rc, "service %s has no shift",
		                  sname);
	if (rc == -EINVAL)
		return store_errf(err, errlen, rc, "service %s: its shift row "
		                  "is invalid", sname);
	if (rc < 0)
		return store_sqlerr(h, err, errlen, sname);
	return 0;
}

/* Restores the priorities a shift found ("ID:PRIO,..."). */
static int restore_prev(sqlite3 *h, long long sid, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	char prev[4096];
	int rc;

	if (sqlite3_prepare_v2(h, "SELECT prev FROM shifts WHERE service_id "
	                       "= ?", -1, &st, NULL) != SQLITE_OK)
		return store_sqlerr(h, err, errlen, "shift");
	sqlite3_bind_int64(st, 1, sid);
	rc = sqlite3_step(st);
	cpy(prev, sizeof prev, rc == SQLITE_ROW ? sqlite3_column_text(st, 0)
	                                        : NULL);
	sqlite3_finalize(st);
	for (char *p = prev, *tok; (tok = strtok_r(p, ",", &p)) != NULL;) {
		long long id, pr;

		if (sscanf(tok, "%lld:%lld", &id, &pr) != 2)
			continue;
		/* An endpoint deleted since is simply gone. */
		if (exec_bind(h, "UPDATE endpoints SET priority = ? WHERE id = "
		              "? AND service_id = ?", "iii", pr, id, sid) < 0)
			return store_sqlerr(h, err, errlen, "shift abort");
	}
	return 0;
}

static int set_state(sqlite3 *h, const char *service, int want, double now,
                     char *err, size_t errlen)
{
	struct shift_info o, after;
	char before[400], now_d[400];
	int rc;

	if ((rc = get_named(h, service, &o, err, errlen)) < 0)
		return rc;
	describe(&o, before, sizeof before);
	switch (want) {
	case SHIFT_ABORTED:
		if (o.state == SHIFT_DONE && strcmp(o.policy, "failover") == 0 &&
		    (rc = restore_prev(h, o.service_id, err, errlen)) < 0)
			return rc;
		rc = exec_bind(h, "UPDATE shifts SET state = 'aborted', left = "
		               "NULL, reason = ?, updated = ? WHERE service_id "
		               "= ?", "tdi", o.state == SHIFT_ABORTED ? o.reason
		               : "aborted by the operator", now, o.service_id);
		break;
	case SHIFT_PAUSED:
		if (o.state != SHIFT_RUNNING)
			return store_errf(err, errlen, -EINVAL, "shift %s: %s, "
			                  "not running: nothing to pause",
			                  o.service, shift_state_name(o.state));
		rc = exec_bind(h, "UPDATE shifts SET state = 'paused', left = ?, "
		               "reason = 'paused by the operator', updated = ? "
		               "WHERE service_id = ?", "ddi",
		               fmax(0, o.stage_started + o.every - now), now,
		               o.service_id);
		break;
	default:
		if (o.state != SHIFT_PAUSED)
			return store_errf(err, errlen, -EINVAL, "shift %s: %s, "
			                  "not paused: nothing to resume",
			                  o.service, shift_state_name(o.state));
		rc = exec_bind(h, "UPDATE shifts SET state = 'running', "
		               "stage_started = ?, left = NULL, reason = '', "
		               "updated = ? WHERE service_id = ?", "ddi",
		               now - (o.every - fmin(o.left, o.every)), now,
		               o.service_id);
	}
	if (rc < 0)
		return store_sqlerr(h, err, errlen, o.service);
	if (row_get(h, o.service_id, &after) == 0) {
		describe(&after, now_d, sizeof now_d);
		if (audit_shift(h, &after, before, now_d, false, now) < 0)
			return store_sqlerr(h, err, errlen, "audit");
	}
	return 0;
}

int shift_abort(struct store *db, const char *service, double now, char *err,
                size_t errlen)
{
	sqlite3 *h = db->h;
	STORE_TXN(h, err, errlen, set_state(h, service, SHIFT_ABORTED, now, err,
	                                    errlen));
}

int shift_pause(struct store *db, const char *service, double now, char *err,
                size_t errlen)
{
	sqlite3 *h = db->h;
	STORE_TXN(h, err, errlen, set_state(h, service, SHIFT_PAUSED, now, err,
	                                    errlen));
}

int shift_resume(struct store *db, const char *service, double now, char *err,
                 size_t errlen)
{
	sqlite3 *h = db->h;
	STORE_TXN(h, err, errlen, set_state(h, service, SHIFT_RUNNING, now, err,
	                                    errlen));
}

int shift_get(struct store *db, const char *service, struct shift_info *out,
              char *err, size_t errlen)
{
	sqlite3 *h = db->h;
	return get_named(h, service, out, err, errlen);
}

int shift_list_active(struct store *db, struct shift_info **out, size_t *n,
                      char *err, size_t errlen)
{
	sqlite3 *h = db->h;
	sqlite3_stmt *st = NULL;
	struct shift_info *v = NULL, *nv;
	size_t k = 0, cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if (sqlite3_prepare_v2(h, "SELECT " ROW_COLS ROW_FROM " WHERE "
	                       "sh.state IN ('running', 'paused') ORDER BY "
	                       "sh.service_id", -1, &st, NULL) != SQLITE_OK)
		return store_sqlerr(h, err, errlen, "shifts");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (k == cap) {
			cap = cap ? 2 * cap : 8;
			if (!(nv = realloc(v, cap * sizeof *v))) {
				rc = -ENOMEM;
				break;
			}
			v = nv;
		}
		if (row_read(st, &v[k]) == 0)
			k++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(v);
		return rc == -ENOMEM ? store_errf(err, errlen, rc, "shifts: out "
		                                  "of memory")
		                     : store_sqlerr(h, err, errlen, "shifts");
	}
	*out = v;
	*n = k;
	return 0;
}

static int advance(sqlite3 *h, long long sid, double now,
                   struct shift_info *after, int *moved, char *err,
                   size_t errlen)
{
	struct shift_info o;
	char before[400], now_d[400];
	double due, begin;
	int rc = row_get(h, sid, &o);

	if (rc == -ENOENT || rc == -EINVAL)
		return 0;
	if (rc < 0)
		return store_sqlerr(h, err, errlen, "shift");
	if (o.state != SHIFT_RUNNING || o.stage >= o.n_steps)
		return 0;
	due = o.stage_started + o.every;
	if (now < due)
		return 0;
	begin = now - due < o.every ? due : now;
	describe(&o, before, sizeof before);
	o.stage++;
	o.stage_started = begin;
	if (exec_bind(h, "UPDATE shifts SET stage = ?, stage_started = ?, "
	              "updated = ? WHERE service_id = ?", "iddi",
	              (long long)o.stage, begin, now, sid) < 0)
		return store_sqlerr(h, err, errlen, o.service);
	if ((rc = stage_begun(h, &o, now, err, errlen)) < 0)
		return rc;
	describe(&o, now_d, sizeof now_d);
	if (audit_shift(h, &o, before, now_d, true, now) < 0)
		return store_sqlerr(h, err, errlen, "audit");
	if (after)
		*after = o;
	*moved = 1;
	return 0;
}

/* STORE_TXN commits only a body that returned 0: the "moved" answer
 * travels beside it. */
static int advance_txn(sqlite3 *h, long long sid, double now,
                       struct shift_info *after, int *moved, char *err,
                       size_t errlen)
{
	STORE_TXN(h, err, errlen, advance(h, sid, now, after, moved, err,
	                                  errlen));
}

int shift_advance(struct store *db, long long sid, double now,
                  struct shift_info *after, char *err, size_t errlen)
{
	sqlite3 *h = db->h;
	int moved = 0, rc = advance_txn(h, sid, now, after, &moved, err,
	                                errlen);

	return rc < 0 ? rc : moved;
}

static int rollback(sqlite3 *h, long long sid, const char *reason,
                    double now, int *done, char *err, size_t errlen)
{
	struct shift_info o;
	char before[400], now_d[400];
	int rc = row_get(h, sid, &o);

	if (rc == -ENOENT || rc == -EINVAL)
		return 0;
	if (rc < 0)
		return store_sqlerr(h, err, errlen, "shift");
	if (o.state != SHIFT_RUNNING && o.state != SHIFT_PAUSED)
		return 0;
	describe(&o, before, sizeof before);
	if (exec_bind(h, "UPDATE shifts SET state = 'rolled-back', left = "
	              "NULL, reason = ?, updated = ? WHERE service_id = ?",
	              "tdi", reason, now, sid) < 0)
		return store_sqlerr(h, err, errlen, o.service);
	snprintf(now_d, sizeof now_d, "rolled back to 0%%: %s", reason);
	if (audit_shift(h, &o, before, now_d, true, now) < 0)
		return store_sqlerr(h, err, errlen, "audit");
	*done = 1;
	return 0;
}

static int rollback_txn(sqlite3 *h, long long sid, const char *reason,
                        double now, int *done, char *err, size_t errlen)
{
	STORE_TXN(h, err, errlen, rollback(h, sid, reason, now, done, err,
	                                   errlen));
}

int shift_rollback(struct store *db, long long sid, const char *reason, double now,
                   char *err, size_t errlen)
{
	sqlite3 *h = db->h;
	int done = 0, rc = rollback_txn(h, sid, reason, now, &done, err,
	                                errlen);

	return rc < 0 ? rc : done;
}

/* -------------------------------------------------------------- loader */

int shift_load(struct store *db, struct svc_set *s, char *err, size_t errlen)
{
	sqlite3 *h = db->h;
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(h, "SELECT " ROW_COLS ROW_FROM " WHERE "
	                       "sh.state IN ('running', 'paused', 'done')",
	                       -1, &st, NULL) != SQLITE_OK)
		return store_sqlerr(h, err, errlen, "db: shifts");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct shift_info o;
		struct svc_service *v;
		size_t i;

		if (row_read(st, &o) < 0) {
			if (svc_problem_add(s, "db: shift of service id %lld: "
			                    "invalid row, not applied",
			                    (long long)sqlite3_column_int64(st, 0))
			    < 0) {
				rc = -ENOMEM;
				break;
			}
			continue;
		}
		v = (struct svc_service *)svc_find_text(s, o.service);
		if (!v)
			continue;               /* skipped service */
		for (i = 0; i < v->n_eps; i++)
			if (v->eps[i].id == o.target_id)
				break;
		if (i == v->n_eps)
			continue;               /* skipped endpoint */
		/* A failover shift that is done became a flip. */
		if (o.state == SHIFT_DONE && v->policy != SVC_WEIGHTED)
			continue;
		v->shift.on = true;
		v->shift.ep = (uint16_t)i;
		v->shift.frac = shift_percent(&o) / 100.0;
		v->shift.next = shift_next_time(&o);
		v->shift.stage = o.stage;
		v->shift.n_stages = o.n_steps;
	}
	sqlite3_finalize(st);
	if (rc == -ENOMEM)
		return store_errf(err, errlen, rc, "db: out of memory");
	return rc == SQLITE_DONE ? 0 : store_sqlerr(h, err, errlen,
	                                            "db: shifts");
}

/* ------------------------------------------------------ export/import */

/* A target's id in service sid, or -1. */
static long long target_id(sqlite3 *h, long long sid, const char *target)
{
	sqlite3_stmt *st = NULL;
	long long id = -1;

	if (sqlite3_prepare_v2(h, "SELECT id FROM endpoints WHERE service_id "
	                       "= ? AND target = ?", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_int64(st, 1, sid);
	sqlite3_bind_text(st, 2, target, -1, SQLITE_TRANSIENT);
	if (sqlite3_step(st) == SQLITE_ROW)
		id = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return id;
}

static json_t *col_or_null(sqlite3_stmt *st, int i)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL ? json_null()
	       : json_real(sqlite3_column_double(st, i));
}

json_t *shift_export(struct store *db, long long sid)
{
	sqlite3 *h = db->h;
	sqlite3_stmt *st = NULL, *pt = NULL;
	json_t *o = NULL, *prev;
	const char *p;

	if (sqlite3_prepare_v2(h, "SELECT sh.steps, sh.every, sh.max_rtt_ms, "
	                       "sh.stage, sh.state, sh.started, "
	                       "sh.stage_started, sh.left, sh.reason, sh.prev, "
	                       "sh.updated, e.target FROM shifts sh JOIN "
	                       "endpoints e ON e.id = sh.target_id WHERE "
	                       "sh.service_id = ?", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(h, "SELECT target FROM endpoints WHERE id = ? "
	                       "AND service_id = ?", -1, &pt, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_int64(st, 1, sid);
	if (sqlite3_step(st) != SQLITE_ROW)
		goto out;
	/* prev holds "ID:PRIORITY,...": ids are this store's, so the export
	 * names the endpoints by target. */
	if (!(prev = json_array()))
		goto out;
	p = (const char *)sqlite3_column_text(st, 9);
	while (p && *p) {
		long long id, prio;
		int used = 0;

		if (sscanf(p, "%lld:%lld%n", &id, &prio, &used) != 2)
			break;
		sqlite3_reset(pt);
		sqlite3_bind_int64(pt, 1, id);
		sqlite3_bind_int64(pt, 2, sid);
		if (sqlite3_step(pt) == SQLITE_ROW)
			json_array_append_new(prev, json_pack("{s:s, s:I}",
			        "target", sqlite3_column_text(pt, 0),
			        "priority", (json_int_t)prio));
		p += used;
		if (*p == ',')
			p++;
	}
	{
		unsigned stp[SHIFT_MAX_STEPS], n = 0;
		json_t *steps = json_array();
		const char *state = (const char *)sqlite3_column_text(st, 4);
		bool paused = state && strcmp(state, "paused") == 0;

		if (shift_parse_steps((const char *)sqlite3_column_text(st, 0),
		                      stp, &n, NULL, 0) < 0)
			n = 0;
		for (unsigned i = 0; steps && i < n; i++)
			json_array_append_new(steps, json_integer(stp[i]));
		/* state and paused as status says them: a paused shift is
		 * running with its clock stopped. */
		o = json_pack("{s:s, s:o, s:f, s:o, s:i, s:s, s:b, s:f, s:f, "
		              "s:o, s:s, s:o, s:f}",
		              "target", sqlite3_column_text(st, 11),
		              "steps", steps ? steps : json_null(),
		              "every", sqlite3_column_double(st, 1),
		              "max_rtt_ms", col_or_null(st, 2),
		              "stage", sqlite3_column_int(st, 3),
		              "state", paused ? "running" : state,
		              "paused", paused,
		              "started", sqlite3_column_double(st, 5),
		              "stage_started", sqlite3_column_double(st, 6),
		              "left", col_or_null(st, 7),
		              "reason", sqlite3_column_text(st, 8),
		              "prev", prev,
		              "updated", sqlite3_column_double(st, 10));
	}
out:
	sqlite3_finalize(st);
	sqlite3_finalize(pt);
	return o;
}

static double jnum_or(const json_t *o, const char *k, double dflt)
{
	const json_t *v = json_object_get(o, k);

	return json_is_number(v) ? json_number_value(v) : dflt;
}

int shift_import(struct store *db, const char *service, const json_t *o,
                 const char *where, char *err, size_t errlen)
{
	static const char *const keys[] = { "target", "steps", "every",
		"max_rtt_ms", "stage", "state", "paused", "started",
		"stage_started", "left", "reason", "prev", "updated" };
	sqlite3 *h = db->h;
	const char *target = json_string_value(json_object_get(o, "target"));
	const char *state = json_string_value(json_object_get(o, "state"));
	const json_t *jsteps = json_object_get(o, "steps");
	char steps[160] = "";
	const char *reason = json_string_value(json_object_get(o, "reason"));
	const json_t *prev = json_object_get(o, "prev"), *v;
	char sname[256], tc[256], pbuf[4096] = "";
	struct shift_info chk;
	long long sid, tid;
	size_t len = 0;
	const char *k;
	int rc;

	if (!json_is_object(o))
		return store_errf(err, errlen, -EINVAL, "%s: 'shift' must be an "
		                  "object or null", where);
	json_object_foreach((json_t *)o, k, v) {
		bool ok = false;

		for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
			ok |= strcmp(k, keys[i]) == 0;
		if (!ok)
			return store_errf(err, errlen, -EINVAL, "%s: shift: "
			                  "unknown key '%s'", where, k);
	}
	/* steps: [1, 5, 100] (as status prints them) or "1,5,100". */
	if (json_is_string(jsteps)) {
		snprintf(steps, sizeof steps, "%s", json_string_value(jsteps));
	} else if (json_is_array(jsteps)) {
		size_t i, sl = 0;

		json_array_foreach(jsteps, i, v)
			if (json_is_integer(v) && sl < sizeof steps)
				sl += (size_t)snprintf(steps + sl,
				        sizeof steps - sl, "%s%lld",
				        sl ? "," : "",
				        (long long)json_integer_value(v));
	}
	if (state && strcmp(state, "running") == 0 &&
	    json_is_true(json_object_get(o, "paused")))
		state = "paused";
	if (!target || !steps[0] || !state || state_parse(state) < 0 ||
	    !json_is_integer(json_object_get(o, "stage")) ||
	    !json_is_number(json_object_get(o, "every")) ||
	    !json_is_number(json_object_get(o, "started")) ||
	    !json_is_number(json_object_get(o, "stage_started")) ||
	    (prev && !json_is_null(prev) && !json_is_array(prev)))
		return store_errf(err, errlen, -EINVAL, "%s: shift: needs target, "
		                  "steps ([1, 5, 100]), every, stage, state "
		                  "(running|done|rolled-back|aborted), started, "
		                  "stage_started; prev a list", where);
	if ((rc = service_id(h, service, sname, &sid, NULL, 0, err,
	                     errlen)) < 0)
		return rc;
	if (cfg_canon_target(target, tc, err, errlen) < 0 ||
	    (tid = target_id(h, sid, tc)) < 0)
		return store_errf(err, errlen, -EINVAL, "%s: shift: target %s is "
		                  "not an endpoint of the service", where, target);
	{
		size_t i;

		json_array_foreach(prev, i, v) {
			const char *t = json_string_value(json_object_get(v,
			                                  "target"));
			const json_t *pr = json_object_get(v, "priority");
			char c[256];
			long long id = t && cfg_canon_target(t, c, NULL, 0) == 0
			               ? target_id(h, sid, c) : -1;

			if (id < 0 || !json_is_integer(pr))
				return store_errf(err, errlen, -EINVAL, "%s: "
				                  "shift: prev[%zu] is not "
				                  "{target: an endpoint, priority: "
				                  "an integer}", where, i);
			if (len < sizeof pbuf)
				len += (size_t)snprintf(pbuf + len,
				        sizeof pbuf - len, "%s%lld:%lld",
				        len ? "," : "", id,
				        (long long)json_integer_value(pr));
		}
	}
	if (exec_bind(h, "INSERT OR REPLACE INTO shifts (service_id, "
	              "target_id, steps, every, max_rtt_ms, stage, state, "
	              "started, stage_started, left, reason, prev, updated) "
	              "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	              "iitdDitddDttd", sid, tid, steps,
	              jnum_or(o, "every", 0), jnum_or(o, "max_rtt_ms", 0),
	              (long long)json_integer_value(json_object_get(o, "stage")),
	              state, jnum_or(o, "started", 0),
	              jnum_or(o, "stage_started", 0), jnum_or(o, "left", 0),
	              reason ? reason : "", pbuf, jnum_or(o, "updated", 0)) < 0 ||
	    row_get(h, sid, &chk) < 0)
		return store_errf(err, errlen, -EINVAL, "%s: shift: not a valid "
		                  "shift (steps, stage within them, every > 0)",
		                  where);
	return 0;
}

int shift_copy_one(struct store *from, struct store *to, const char *name,
                   double now, char *err, size_t errlen)
{
	long long sid, fid;
	json_t *a = NULL, *b;
	struct shift_info o;
	char canon[256];
	int rc = 0, changed = 0;

	if (service_id(to->h, name, canon, &sid, NULL, 0, NULL, 0) < 0)
		return 0;               /* not in to: nothing to give it */
	b = shift_export(to, sid);
	if (service_id(from->h, canon, (char[256]){ 0 }, &fid, NULL, 0, NULL,
	               0) == 0)
		a = shift_export(from, fid);
	/* The same shift (target and start) as in the store: the store's
	 * progress stands. */
	if (a && b && json_equal(json_object_get(a, "target"),
	                         json_object_get(b, "target")) &&
	    json_equal(json_object_get(a, "started"),
	               json_object_get(b, "started"))) {
		;
	} else if (!a && b) {
		if (row_get(to->h, sid, &o) == 0 &&
		    (exec_bind(to->h, "DELETE FROM shifts WHERE service_id = ?",
		               "i", sid) < 0 ||
		     audit_shift(to->h, &o, "", "removed by import", false,
		                 now) < 0))
			rc = store_sqlerr(to->h, err, errlen, canon);
		changed = 1;
	} else if (a) {
		char d[640];

		rc = shift_import(to, canon, a, canon, err, errlen);
		if (rc == 0 && row_get(to->h, sid, &o) == 0) {
			describe(&o, d, sizeof d);
			if (audit_shift(to->h, &o, "", d, false, now) < 0)
				rc = store_sqlerr(to->h, err, errlen, canon);
		}
		changed = 1;
	}
	json_decref(a);
	json_decref(b);
	return rc < 0 ? rc : changed;
}

int shift_copy(struct store *from, struct store *to, double now, char *err,
               size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc = 0, changed = 0;
	char **names = NULL;
	size_t n = 0, cap = 0;

	/* Names first: the copies write to the table being read. */
	if (sqlite3_prepare_v2(to->h, "SELECT name FROM services ORDER BY "
	                       "name", -1, &st, NULL) != SQLITE_OK)
		return store_sqlerr(to->h, err, errlen, "import: shifts");
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (n == cap) {
			char **nn = realloc(names, (cap = cap ? 2 * cap : 64) *
			                    sizeof *nn);

			if (!nn) {
				rc = -ENOMEM;
				break;
			}
			names = nn;
		}
		if (!(names[n] = strdup((const char *)
		                        sqlite3_column_text(st, 0)))) {
			rc = -ENOMEM;
			break;
		}
		n++;
	}
	sqlite3_finalize(st);
	for (size_t i = 0; rc >= 0 && i < n; i++) {
		rc = shift_copy_one(from, to, names[i], now, err, errlen);
		changed += rc > 0;
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (rc == -ENOMEM)
		store_errf(err, errlen, rc, "import: out of memory");
	return rc < 0 ? rc : changed;
}

int shift_sync_one(struct store *from, struct store *to, const char *name,
                   bool audit, double now, char *err, size_t errlen)
{
	long long sid, fid;
	json_t *a = NULL, *b;
	struct shift_info o;
	char canon[256], before[400] = "", after[640];
	bool had;
	int rc = 0;

	if (service_id(to->h, name, canon, &sid, NULL, 0, NULL, 0) < 0)
		return 0;               /* not in to: nothing to give it */
	b = shift_export(to, sid);
	if (service_id(from->h, canon, (char[256]){ 0 }, &fid, NULL, 0, NULL,
	               0) == 0)
		a = shift_export(from, fid);
	if ((!a && !b) || (a && b && json_equal(a, b))) {
		json_decref(a);
		json_decref(b);
		return 0;
	}
	had = row_get(to->h, sid, &o) == 0;
	if (had)
		describe(&o, before, sizeof before);
	if (!a) {
		if (exec_bind(to->h, "DELETE FROM shifts WHERE service_id = ?",
		              "i", sid) < 0)
			rc = store_sqlerr(to->h, err, errlen, canon);
		else if (audit && had &&
		         audit_shift(to->h, &o, before, "removed", false,
		                     now) < 0)
			rc = store_sqlerr(to->h, err, errlen, "audit");
	} else if ((rc = shift_import(to, canon, a, canon, err,
	                              errlen)) == 0 && audit &&
	           row_get(to->h, sid, &o) == 0) {
		describe(&o, after, sizeof after);
		if (audit_shift(to->h, &o, before, after, false, now) < 0)
			rc = store_sqlerr(to->h, err, errlen, "audit");
	}
	json_decref(a);
	json_decref(b);
	return rc < 0 ? rc : 1;
}
