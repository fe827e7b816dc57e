/* db/export.c - the configuration as JSON (export) and back (import).
 * Import validates the document through db/edit.h's inserts into a
 * private in-memory store, then writes only the difference (db/diff.h)
 * into the real one, inside one transaction. Load time only; see
 * db/export.h. */
#include "db/export.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/spell.h"
#include "db/audit.h"
#include "db/audit_sql.h"
#include "db/damping.h"
#include "db/diff.h"
#include "db/diff_sql.h"
#include "db/edit.h"
#include "db/shift.h"
#include "db/store.h"
#include "db/store_sql.h"
#include "policy/svc.h"

/* ------------------------------------------------------------- export */

static json_t *jstr_or_null(sqlite3_stmt *st, int i)
{
	const char *s = (const char *)sqlite3_column_text(st, i);

	return s ? json_string(s) : json_null();
}

static json_t *jreal_or_null(sqlite3_stmt *st, int i)
{
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return json_null();
	return json_real(sqlite3_column_double(st, i));
}

/* The statements of an export, prepared once. */
struct exp {
	sqlite3_stmt *svc, *eps, *rules, *targets;
	sqlite3 *h;
};

static void exp_fini(struct exp *x)
{
	sqlite3_finalize(x->svc);
	sqlite3_finalize(x->eps);
	sqlite3_finalize(x->rules);
	sqlite3_finalize(x->targets);
}

/* Prepares x on h for the services named name (NULL: all). */
static int exp_init(struct exp *x, sqlite3 *h, const char *name)
{
	memset(x, 0, sizeof *x);
	x->h = h;
	if (sqlite3_prepare_v2(h, "SELECT id, name, policy, ttl, answers, "
	                       "sticky, when_down, fill FROM services WHERE ?1 IS "
	                       "NULL OR name = ?1 ORDER BY name", -1, &x->svc,
	                       NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(h, "SELECT " CFG_EP_COLS " FROM endpoints WHERE "
	                       "service_id = ? ORDER BY target", -1, &x->eps,
	                       NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(h, "SELECT id, kind, pattern FROM rules WHERE "
	                       "service_id = ? ORDER BY kind, pattern", -1,
	                       &x->rules, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(h, "SELECT e.target FROM rule_targets r JOIN "
	                       "endpoints e ON e.id = r.endpoint_id WHERE "
	                       "r.rule_id = ? ORDER BY e.target", -1,
	                       &x->targets, NULL) != SQLITE_OK) {
		exp_fini(x);
		return -EIO;
	}
	if (name)
		sqlite3_bind_text(x->svc, 1, name, -1, SQLITE_TRANSIENT);
	return 0;
}

static json_t *export_endpoints(struct exp *x, long long sid)
{
	json_t *arr = json_array();
	sqlite3_stmt *st = x->eps;
	int rc;

	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, sid);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *check = json_null(), *ep;

		if (sqlite3_column_type(st, 9) != SQLITE_NULL)
			check = json_pack("{s:s, s:o, s:o, s:I, s:I, s:b, s:o, "
			                  "s:o, s:o}",
			        "url", sqlite3_column_text(st, 9),
			        "interval", jreal_or_null(st, 10),
			        "timeout", jreal_or_null(st, 11),
			        "rise", (json_int_t)sqlite3_column_int64(st, 12),
			        "fall", (json_int_t)sqlite3_column_int64(st, 13),
			        "tls_verify", sqlite3_column_int(st, 14),
			        "expect", jstr_or_null(st, 15),
			        "body", jstr_or_null(st, 16),
			        "host", jstr_or_null(st, 17));
		ep = json_pack(
			"{s:s, s:I, s:I, s:o, s:o, s:o, s:f, s:s, s:b, s:o}",
			"target", sqlite3_column_text(st, 0),
			"weight", (json_int_t)sqlite3_column_int64(st, 1),
			"priority", (json_int_t)sqlite3_column_int64(st, 2),
			"region", jstr_or_null(st, 3),
			"lat", jreal_or_null(st, 4),
			"lon", jreal_or_null(st, 5),
			"bias", sqlite3_column_double(st, 6),
			"admin", sqlite3_column_text(st, 7),
			"drained", sqlite3_column_int(st, 8),
			"check", check);
		/* Spill-over capacity: only when declared. */
		if (ep && sqlite3_column_type(st, 18) != SQLITE_NULL)
			json_object_set_new(ep, "capacity", json_real(
				sqlite3_column_double(st, 18)));
		json_array_append_new(arr, ep);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		json_decref(arr);
		return NULL;
	}
	return arr;
}

static json_t *export_rules(struct exp *x, long long sid)
{
	json_t *arr = json_array();
	sqlite3_stmt *st = x->rules, *tt = x->targets;
	int rc;

	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, sid);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *kind = (const char *)sqlite3_column_text(st, 1);
		const char *pat = (const char *)sqlite3_column_text(st, 2);
		char match[96];
		json_t *targets = json_array();

		if (strcmp(kind, "cidr") == 0)
			snprintf(match, sizeof match, "%s", pat);
		else
			snprintf(match, sizeof match, "%s:%s", kind, pat);
		sqlite3_reset(tt);
		sqlite3_bind_int64(tt, 1, sqlite3_column_int64(st, 0));
		while (sqlite3_step(tt) == SQLITE_ROW)
			json_array_append_new(targets, json_string(
				(const char *)sqlite3_column_text(tt, 0)));
		json_array_append_new(arr, json_pack("{s:s, s:o}", "match",
		                                     match, "targets",
		                                     targets));
	}
	sqlite3_reset(st);
	sqlite3_reset(tt);
	if (rc != SQLITE_DONE) {
		json_decref(arr);
		return NULL;
	}
	return arr;
}

/* A service's staged shift and damping thresholds, when it has them. */
static void export_steering(sqlite3 *h, long long id, const char *name,
                            json_t *sv)
{
	struct store db = { .h = h };
	json_t *x;

	if ((x = shift_export(&db, id)))
		json_object_set_new(sv, "shift", x);
	if ((x = damping_export(&db, name)))
		json_object_set_new(sv, "damping", x);
}

/* The next service of x->svc as an export object: 1 with *out, 0 at
 * the end, -EIO. */
static int export_next(struct exp *x, json_t **out)
{
	int rc = sqlite3_step(x->svc);
	sqlite3_stmt *st = x->svc;
	long long id;
	json_t *eps, *rules, *answers;

	*out = NULL;
	if (rc != SQLITE_ROW)
		return rc == SQLITE_DONE ? 0 : -EIO;
	id = sqlite3_column_int64(st, 0);
	eps = export_endpoints(x, id);
	rules = export_rules(x, id);
	answers = sqlite3_column_type(st, 4) == SQLITE_NULL ? json_null() :
	          json_integer(sqlite3_column_int64(st, 4));
	if (!eps || !rules) {
		json_decref(eps);
		json_decref(rules);
		json_decref(answers);
		return -EIO;
	}
	*out = json_pack("{s:s, s:s, s:I, s:o, s:b, s:s, s:o, s:o}",
	                 "name", sqlite3_column_text(st, 1),
	                 "policy", sqlite3_column_text(st, 2),
	                 "ttl", (json_int_t)sqlite3_column_int64(st, 3),
	                 "answers", answers,
	                 "sticky", sqlite3_column_int(st, 5),
	                 "when_down", sqlite3_column_text(st, 6),
	                 "endpoints", eps, "rules", rules);
	if (!*out)
		return -ENOMEM;
	/* Spill-over fill, a staged shift, damping: only when set. */
	if (sqlite3_column_type(st, 7) != SQLITE_NULL)
		json_object_set_new(*out, "fill", json_real(
			sqlite3_column_double(st, 7)));
	export_steering(x->h, id, (const char *)sqlite3_column_text(st, 1),
	                *out);
	return 1;
}

json_t *cfg_export(struct store *db, const char *name, char *err, size_t errlen)
{
	sqlite3 *h = db->h;
	json_t *svcs = json_array(), *doc = NULL, *o;
	struct exp x = { NULL };
	bool prepared = false;
	char canon[256];
	int rc;

	if (name && cfg_canon_name(name, canon, err, errlen) < 0)
		goto fail;
	if (store_begin(h, false) < 0 ||
	    exp_init(&x, h, name ? canon : NULL) < 0) {
		store_sqlerr(h, err, errlen, "export");
		goto fail;
	}
	prepared = true;
	while ((rc = export_next(&x, &o)) > 0)
		json_array_append_new(svcs, o);
	if (rc < 0) {
		store_sqlerr(h, err, errlen, "export");
		goto fail;
	}
	if (name && json_array_size(svcs) == 0) {
		store_errf(err, errlen, -ENOENT, "service %s not found", canon);
		goto fail;
	}
	doc = json_pack("{s:i, s:O}", "version", 1, "services", svcs);
fail:
	if (prepared)
		exp_fini(&x);
	store_rollback(h);
	json_decref(svcs);
	return doc;
}

/* Writes s with every line after the first indented by indent spaces. */
static void put_indented(FILE *out, const char *s, int indent)
{
	for (const char *p = s; *p; p++) {
		putc(*p, out);
		if (*p == '\n')
			fprintf(out, "%*s", indent, "");
	}
}

int cfg_export_stream(struct store *db, FILE *out, char *err, size_t errlen)
{
	sqlite3 *h = db->h;
	struct exp x;
	size_t n = 0;
	json_t *o;
	char *s;
	int rc;

	if (store_begin(h, false) < 0)
		return store_sqlerr(h, err, errlen, "export");
	if (exp_init(&x, h, NULL) < 0) {
		rc = store_sqlerr(h, err, errlen, "export");
		store_rollback(h);
		return rc;
	}
	fputs("{\n  \"version\": 1,\n  \"services\": [", out);
	while ((rc = export_next(&x, &o)) > 0) {
		s = json_dumps(o, CFG_EXPORT_FLAGS);
		json_decref(o);
		if (!s) {
			rc = -ENOMEM;
			break;
		}
		fputs(n++ ? ",\n    " : "\n    ", out);
		put_indented(out, s, 4);
		free(s);
	}
	exp_fini(&x);
	store_rollback(h);
	if (rc == -ENOMEM)
		return store_errf(err, errlen, rc, "export: out of memory");
	if (rc < 0)
		return store_sqlerr(h, err, errlen, "export");
	fputs(n ? "\n  ]\n}\n" : "]\n}\n", out);
	if (fflush(out) != 0 || ferror(out))
		return store_errf(err, errlen, -EIO, "export: write error: %s",
		                  strerror(errno));
	return 0;
}

/* ------------------------------------------------------------- import */

/* Checks that o is an object with only the given keys. */
static int only_keys(const json_t *o, const char *const *keys,
                     const char *where, char *err, size_t errlen)
{
	const char *k;
	json_t *v;

	if (!json_is_object(o))
		return store_errf(err, errlen, -EINVAL, "%s: not a JSON object",
		            where);
	json_object_foreach((json_t *)o, k, v) {
		bool ok = false;

		(void)v;
		for (size_t i = 0; keys[i]; i++)
			ok |= strcmp(k, keys[i]) == 0;
		if (!ok) {
			size_t n = 0;
			const char *near;

			while (keys[n])
				n++;
			near = spell_nearest(k, keys, n);
			return store_errf(err, errlen, -EINVAL, "%s: unknown key "
			            "'%s'%s%s%s", where, k,
			            near ? " (did you mean '" : "",
			            near ? near : "", near ? "'?)" : "");
		}
	}
	return 0;
}

/* Optional typed members: 0 absent/null, 1 present, < 0 wrong type. */
static int jstr(const json_t *o, const char *k, const char **out,
                const char *where, char *err, size_t errlen)
{
	json_t *v = json_object_get(o, k);

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return store_errf(err, errlen, -EINVAL, "%s: '%s' must be a string",
		            where, k);
	*out = json_string_value(v);
	return 1;
}

static int jint(const json_t *o, const char *k, long long *out,
                const char *where, char *err, size_t errlen)
{
	json_t *v = json_object_get(o, k);

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v))
		return store_errf(err, errlen, -EINVAL, "%s: '%s' must be an integer",
		            where, k);
	*out = json_integer_value(v);
	return 1;
}

static int jnum(const json_t *o, const char *k, double *out,
                const char *where, char *err, size_t errlen)
{
	json_t *v = json_object_get(o, k);

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_number(v))
		return store_errf(err, errlen, -EINVAL, "%s: '%s' must be a number",
		            where, k);
	*out = json_number_value(v);
	return 1;
}

static int jbool(const json_t *o, const char *k, bool *out,
                 const char *where, char *err, size_t errlen)
{
	json_t *v = json_object_get(o, k);

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_boolean(v))
		return store_errf(err, errlen, -EINVAL, "%s: '%s' must be true or "
		            "false", where, k);
	*out = json_is_true(v);
	return 1;
}

int cfg_endpoint_parse(const json_t *o, struct cfg_endpoint *out,
                       const char *where, char *err, size_t errlen)
{
	static const char *const keys[] = { "target", "weight", "priority",
		"region", "lat", "lon", "bias", "admin", "drained", "check",
		"capacity", NULL };
	static const char *const ckeys[] = { "url", "interval", "timeout",
		"rise", "fall", "tls_verify", "expect", "body", "host", NULL };
	struct cfg_endpoint e = { .drained = -1, .target = out->target };
	const json_t *c;
	bool drained = false;
	int rc, a = 0, b = 0;

	if ((rc = only_keys(o, keys, where, err, errlen)) < 0)
		return rc;
	if ((rc = jstr(o, "target", &e.target, where, err, errlen)) < 0)
		return rc;
	if (!e.target)
		return store_errf(err, errlen, -EINVAL, "%s: 'target' is "
		                  "required", where);
	if ((rc = jint(o, "weight", &e.weight, where, err, errlen)) < 0)
		return rc;
	e.has_weight = rc;
	if ((rc = jint(o, "priority", &e.priority, where, err, errlen)) < 0)
		return rc;
	e.has_priority = rc;
	if ((rc = jstr(o, "region", &e.region, where, err, errlen)) < 0)
		return rc;
	e.has_region = rc;
	if ((a = jnum(o, "lat", &e.lat, where, err, errlen)) < 0 ||
	    (b = jnum(o, "lon", &e.lon, where, err, errlen)) < 0)
		return -EINVAL;
	if (a != b)
		return store_errf(err, errlen, -EINVAL, "%s: give both 'lat' and "
		            "'lon' or neither", where);
	e.has_loc = a;
	if ((rc = jnum(o, "bias", &e.bias, where, err, errlen)) < 0)
		return rc;
	e.has_bias = rc;
	if ((rc = jstr(o, "admin", &e.admin, where, err, errlen)) < 0 ||
	    (rc = jbool(o, "drained", &drained, where, err, errlen)) < 0)
		return rc;
	if (rc > 0)
		e.drained = drained;
	/* capacity: null removes it. */
	if ((rc = jnum(o, "capacity", &e.capacity, where, err, errlen)) < 0)
		return rc;
	e.has_capacity = rc || json_is_null(json_object_get(o, "capacity"));
	c = json_object_get(o, "check");
	if (c && json_is_null(c)) {
		e.has_check = true;     /* no check (removes one) */
	} else if (c) {
		char cw[400];

		snprintf(cw, sizeof cw, "%s: check", where);
		if ((rc = only_keys(c, ckeys, cw, err, errlen)) < 0)
			return rc;
		if ((rc = jstr(c, "url", &e.check_url, cw, err, errlen)) <= 0)
			return rc < 0 ? rc : store_errf(err, errlen, -EINVAL, "%s: "
			                          "'url' is required", cw);
		e.has_check = true;
		if ((rc = jnum(c, "interval", &e.interval, cw, err,
		               errlen)) < 0)
			return rc;
		e.has_interval = rc;
		if ((rc = jnum(c, "timeout", &e.timeout, cw, err, errlen)) < 0)
			return rc;
		e.has_timeout = rc;
		if ((rc = jint(c, "rise", &e.rise, cw, err, errlen)) < 0)
			return rc;
		e.has_rise = rc;
		if ((rc = jint(c, "fall", &e.fall, cw, err, errlen)) < 0)
			return rc;
		e.has_fall = rc;
		if ((rc = jbool(c, "tls_verify", &e.tls_verify, cw, err,
		                errlen)) < 0)
			return rc;
		e.has_tls_verify = rc;
		if ((rc = jstr(c, "expect", &e.expect, cw, err, errlen)) < 0 ||
		    (rc = jstr(c, "body", &e.body, cw, err, errlen)) < 0 ||
		    (rc = jstr(c, "host", &e.host, cw, err, errlen)) < 0)
			return rc;
		e.has_expect = e.has_body = e.has_host = true;
	}
	*out = e;
	return 0;
}

static int import_endpoint(struct store *db, const char *sname, const json_t *o,
                           const char *where, char *err, size_t errlen)
{
	struct cfg_endpoint e = { .target = NULL };
	char msg[512];
	int rc;

	if ((rc = cfg_endpoint_parse(o, &e, where, err, errlen)) < 0)
		return rc;
	if ((rc = cfg_endpoint_insert(db, sname, &e, err, errlen)) < 0) {
		snprintf(msg, sizeof msg, "%s", err);
		return store_errf(err, errlen, rc, "%s: %s", where, msg);
	}
	return 0;
}

int cfg_service_parse(const json_t *o, struct cfg_service *out,
                      bool with_children, const char *where, char *err,
                      size_t errlen)
{
	static const char *const keys[] = { "name", "policy", "ttl", "answers",
		"sticky", "when_down", "fill", "endpoints", "rules", "shift",
		"damping", NULL };
	static const char *const own[] = { "name", "policy", "ttl", "answers",
		"sticky", "when_down", "fill", NULL };
	struct cfg_service s = { .sticky = -1, .name = out->name };
	bool sticky = false;
	int rc;

	if ((rc = only_keys(o, with_children ? keys : own, where, err,
	                    errlen)) < 0)
		return rc;
	if ((rc = jstr(o, "name", &s.name, where, err, errlen)) < 0)
		return rc;
	if (!s.name)
		return store_errf(err, errlen, -EINVAL, "%s: 'name' is "
		                  "required", where);
	if ((rc = jstr(o, "policy", &s.policy, where, err, errlen)) < 0)
		return rc;
	if ((rc = jint(o, "ttl", &s.ttl, where, err, errlen)) < 0)
		return rc;
	s.has_ttl = rc;
	if ((rc = jint(o, "answers", &s.answers, where, err, errlen)) < 0)
		return rc;
	s.has_answers = rc;
	if (json_is_null(json_object_get(o, "answers"))) {
		s.has_answers = true;   /* the policy's default */
		s.answers = -1;
	}
	if ((rc = jbool(o, "sticky", &sticky, where, err, errlen)) < 0)
		return rc;
	if (rc > 0)
		s.sticky = sticky;
	if ((rc = jstr(o, "when_down", &s.when_down, where, err, errlen)) < 0)
		return rc;
	/* fill: null removes it. */
	if ((rc = jnum(o, "fill", &s.fill, where, err, errlen)) < 0)
		return rc;
	s.has_fill = rc || json_is_null(json_object_get(o, "fill"));
	*out = s;
	return 0;
}

int cfg_rule_parse(const json_t *o, const char **match, const char **targets,
                   size_t *n, const char *where, char *err, size_t errlen)
{
	static const char *const rkeys[] = { "match", "targets", NULL };
	const json_t *tl, *t;
	size_t k;
	int rc;

	*match = NULL;
	if ((rc = only_keys(o, rkeys, where, err, errlen)) < 0)
		return rc;
	if ((rc = jstr(o, "match", match, where, err, errlen)) <= 0)
		return rc < 0 ? rc : store_errf(err, errlen, -EINVAL, "%s: "
		                                "'match' is required", where);
	tl = json_object_get(o, "targets");
	if (!json_is_array(tl) || json_array_size(tl) == 0 ||
	    json_array_size(tl) > SVC_MAX_ENDPOINTS)
		return store_errf(err, errlen, -EINVAL, "%s: 'targets' must be a "
		                  "list of 1..%d strings", where,
		                  SVC_MAX_ENDPOINTS);
	json_array_foreach(tl, k, t) {
		if (!json_is_string(t))
			return store_errf(err, errlen, -EINVAL, "%s: targets must "
			                  "be strings", where);
		targets[k] = json_string_value(t);
	}
	*n = json_array_size(tl);
	return 0;
}

int cfg_import_service(struct store *db, const json_t *o, size_t i, char *err,
                       size_t errlen)
{
	struct cfg_service s = { .name = NULL };
	const json_t *eps, *rules, *v;
	char where[300], msg[512];
	size_t j;
	int rc;

	snprintf(where, sizeof where, "services[%zu]", i);
	if ((rc = cfg_service_parse(o, &s, true, where, err, errlen)) < 0)
		return rc;
	snprintf(where, sizeof where, "services[%zu] (%s)", i, s.name);
	if ((rc = cfg_service_insert(db, &s, NULL, err, errlen)) < 0) {
		snprintf(msg, sizeof msg, "%s", err);
		return store_errf(err, errlen, rc, "%s: %s", where, msg);
	}
	eps = json_object_get(o, "endpoints");
	if (eps && !json_is_null(eps) && !json_is_array(eps))
		return store_errf(err, errlen, -EINVAL, "%s: 'endpoints' must be a "
		            "list", where);
	json_array_foreach(eps, j, v) {
		char ew[340];

		snprintf(ew, sizeof ew, "%s endpoints[%zu]", where, j);
		if ((rc = import_endpoint(db, s.name, v, ew, err, errlen)) < 0)
			return rc;
	}
	/* After the endpoints: a shift names its target. */
	if ((v = json_object_get(o, "shift")) && !json_is_null(v) &&
	    (rc = shift_import(db, s.name, v, where, err, errlen)) < 0)
		return rc;
	if ((v = json_object_get(o, "damping")) && !json_is_null(v) &&
	    (rc = damping_import(db, s.name, v, where, err, errlen)) < 0)
		return rc;
	rules = json_object_get(o, "rules");
	if (rules && !json_is_null(rules) && !json_is_array(rules))
		return store_errf(err, errlen, -EINVAL, "%s: 'rules' must be a list",
		            where);
	json_array_foreach(rules, j, v) {
		const char *match = NULL, *tg[SVC_MAX_ENDPOINTS];
		char rw[340];
		size_t nt;

		snprintf(rw, sizeof rw, "%s rules[%zu]", where, j);
		if ((rc = cfg_rule_parse(v, &match, tg, &nt, rw, err,
		                         errlen)) < 0)
			return rc;
		rc = cfg_rule_insert(db, s.name, match, tg, nt, err, errlen);
		if (rc < 0) {
			snprintf(msg, sizeof msg, "%s", err);
			return store_errf(err, errlen, rc, "%s: %s", rw, msg);
		}
	}
	return 0;
}

static int import_all(struct store *db, const json_t *doc, char *err,
                      size_t errlen)
{
	sqlite3 *h = db->h;
	static const char *const keys[] = { "version", "services", NULL };
	const json_t *svcs, *v;
	long long ver = 1;
	size_t i;
	int rc;

	if ((rc = only_keys(doc, keys, "import", err, errlen)) < 0 ||
	    (rc = jint(doc, "version", &ver, "import", err, errlen)) < 0)
		return rc;
	if (ver != 1)
		return store_errf(err, errlen, -EINVAL, "import: version %lld is not "
		            "supported (1)", ver);
	svcs = json_object_get(doc, "services");
	if (!json_is_array(svcs))
		return store_errf(err, errlen, -EINVAL, "import: 'services' must be a "
		            "list");
	if (store_exec(h, "DELETE FROM rules; DELETE FROM endpoints; "
	               "DELETE FROM services") < 0)
		return store_sqlerr(h, err, errlen, "import");
	json_array_foreach(svcs, i, v)
		if ((rc = cfg_import_service(db, v, i, err, errlen)) < 0)
			return rc;
	return 0;
}

int cfg_import_add(struct store *db, const json_t *svc, char *err,
                   size_t errlen)
{
	sqlite3 *h = db->h;
	char msg[512];
	const char *m;
	int rc;

	if (!json_is_object(svc))
		return store_errf(err, errlen, -EINVAL, "not a JSON object");
	if (store_exec(h, "SAVEPOINT cfg_import_add") < 0)
		return store_sqlerr(h, err, errlen, "import");
	rc = cfg_import_service(db, svc, 0, msg, sizeof msg);
	if (rc < 0) {
		store_exec(h, "ROLLBACK TO cfg_import_add");
		/* "services[0] (NAME)" says nothing here: what follows does */
		m = msg;
		if (strncmp(m, "services[0]", 11) == 0) {
			m += 11;
			if (strncmp(m, " (", 2) == 0 && strstr(m, ")"))
				m = strstr(m, ")") + 1;
			m += strspn(m, " ");
			if (strncmp(m, ": ", 2) == 0)
				m += 2;
		}
		store_errf(err, errlen, rc, "%s", m);
	}
	store_exec(h, "RELEASE cfg_import_add");
	return rc;
}

int cfg_import_fill(struct store *db, const json_t *doc, char *err,
                    size_t errlen)
{
	sqlite3 *h = db->h;
	STORE_TXN(h, err, errlen, import_all(db, doc, err, errlen));
}

/* The document validated into a private in-memory store. */
static int scratch_of(const json_t *doc, struct store **out, char *err,
                      size_t errlen)
{
	int rc;

	if ((rc = store_open(":memory:", STORE_CREATE, out, err, errlen)) < 0)
		return rc;
	if ((rc = cfg_import_fill(*out, doc, err, errlen)) < 0) {
		store_close(*out);
		*out = NULL;
	}
	return rc;
}

static int plan_and_apply(sqlite3 *h, struct store *want, unsigned flags,
                          struct cfg_plan **plan, char *err, size_t errlen)
{
	int rc;

	if ((rc = cfg_plan_make(h, want->h, want, plan, err, errlen)) < 0)
		return rc;
	/* A plan is shown whatever it would break; applying it is guarded. */
	if (!(flags & CFG_IMPORT_DRY_RUN) && !cfg_write_current()->force)
		rc = cfg_plan_guard(*plan, h, want->h, err, errlen);
	if (rc == 0 && !(flags & CFG_IMPORT_DRY_RUN) &&
	    cfg_plan_size(*plan) > 0) {
		rc = cfg_plan_apply(*plan, h, err, errlen);
		if (rc == 0)
			rc = cfg_record(h, *plan, "import", err, errlen);
	}
	/* Shifts and damping thresholds are not in the plan: copied after
	 * it, in the same transaction. */
	if (rc == 0 && !(flags & CFG_IMPORT_DRY_RUN)) {
		struct store cur = { .h = h };

		rc = shift_copy(want, &cur, (double)time(NULL), err, errlen);
		if (rc >= 0)
			rc = damping_copy(want, &cur, err, errlen);
	}
	if (rc < 0) {
		cfg_plan_free(*plan);
		*plan = NULL;
	}
	return rc;
}

int cfg_import_plan(struct store *db, const json_t *doc, unsigned flags,
                    struct cfg_plan **plan, char *err, size_t errlen)
{
	struct store *want = NULL;
	sqlite3 *h = db->h;
	int rc;

	*plan = NULL;
	if (cfg_write_current()->dry_run)
		flags |= CFG_IMPORT_DRY_RUN;
	if ((rc = scratch_of(doc, &want, err, errlen)) < 0)
		return rc;
	if (flags & CFG_IMPORT_DRY_RUN) {
		if (store_begin(h, false) < 0) {
			store_close(want);
			return store_sqlerr(h, err, errlen, "begin");
		}
		rc = plan_and_apply(h, want, flags, plan, err, errlen);
		store_rollback(h);
		return rc;
	}
	STORE_TXN(h, err, errlen, plan_and_apply(h, want, flags, plan, err,
	                                         errlen));
}

int cfg_import(struct store *db, const json_t *doc, char *err, size_t errlen)
{
	struct cfg_plan *plan;
	int rc = cfg_import_plan(db, doc, 0, &plan, err, errlen);

	cfg_plan_free(plan);
	return rc;
}
