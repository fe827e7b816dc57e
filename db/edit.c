/* db/edit.c - validated configuration writes.
 * Load time only; see db/edit.h.
 *
 * Every write reads the full current row (or the defaults), overlays what
 * the caller gave, validates the whole row with the same rules svc_load()
 * applies when reading, and writes it back, inside one transaction that
 * db/audit_sql.h observes (what changed, guard rails, version, audit). */
#include "db/edit.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "db/bounds.h"
#include "db/store.h"
#include "db/store_sql.h"
#include "db/audit_sql.h"
#include "policy/svc.h"
#include "geo/geo.h"
#include "health/pcheck.h"

/* Runs a statement with text/int/real/null parameters given as a format:
 * 't' text (NULL -> NULL), 'i' long long, 'd' double, 'D' double or NULL
 * when NAN, 'n' NULL. Returns SQLITE_DONE/ROW code; *id = last insert id.
 * If row != NULL and a row came, the statement is kept in *row for the
 * caller to read and finalize. */
/* Statements run() keeps for one handle of the thread while a bulk
 * writer asks for it (cfg_edit_keep), by their SQL text's address (the
 * texts are string constants). */
#define KEEP_MAX 24
static _Thread_local struct {
	sqlite3 *h;
	const char *sql[KEEP_MAX];
	sqlite3_stmt *st[KEEP_MAX];
	int n;
} keep;

void cfg_edit_keep(struct store *db, bool on)
{
	for (int i = 0; i < keep.n; i++)
		sqlite3_finalize(keep.st[i]);
	keep.n = 0;
	keep.h = on ? db->h : NULL;
}

/* A statement of run() is done with: kept ones are reset. */
static void run_end(sqlite3_stmt *st)
{
	for (int i = 0; st && keep.h && i < keep.n; i++)
		if (keep.st[i] == st) {
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			return;
		}
	sqlite3_finalize(st);
}

static int prepare(sqlite3 *h, const char *sql, sqlite3_stmt **st)
{
	if (h == keep.h) {
		for (int i = 0; i < keep.n; i++)
			if (keep.sql[i] == sql) {
				*st = keep.st[i];
				return SQLITE_OK;
			}
	}
	if (sqlite3_prepare_v2(h, sql, -1, st, NULL) != SQLITE_OK)
		return sqlite3_errcode(h);
	if (h == keep.h && keep.n < KEEP_MAX) {
		keep.sql[keep.n] = sql;
		keep.st[keep.n++] = *st;
	}
	return SQLITE_OK;
}

static int run(sqlite3 *h, sqlite3_stmt **row, const char *sql,
               const char *fmt, ...)
{
	sqlite3_stmt *st = NULL;
	va_list ap;
	int rc, i = 1;

	if (row)
		*row = NULL;
	if ((rc = prepare(h, sql, &st)) != SQLITE_OK)
		return rc;
	va_start(ap, fmt);
	for (const char *f = fmt; *f; f++, i++) {
		switch (*f) {
		case 't': {
			const char *s = va_arg(ap, const char *);

			if (s)
				sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
			else
				sqlite3_bind_null(st, i);
			break;
		}
		case 'i':
			sqlite3_bind_int64(st, i, va_arg(ap, long long));
			break;
		case 'd':
			sqlite3_bind_double(st, i, va_arg(ap, double));
			break;
		case 'D': {
			double d = va_arg(ap, double);

			if (isnan(d))
				sqlite3_bind_null(st, i);
			else
				sqlite3_bind_double(st, i, d);
			break;
		}
		default:
			sqlite3_bind_null(st, i);
		}
	}
	va_end(ap);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && row) {
		*row = st;
		return rc;
	}
	run_end(st);
	return rc;
}

/* "WHAT V outside LO..HI" for an integer / a real value. -EINVAL. */
static int out_of_bounds(enum bound_id b, long long v, char *err,
                         size_t errlen)
{
	return store_errf(err, errlen, -EINVAL, "%s %lld outside %.0f..%.0f",
	                  bounds[b].what, v, bounds[b].lo, bounds[b].hi);
}

static int real_out_of_bounds(enum bound_id b, double v, char *err,
                              size_t errlen)
{
	return store_errf(err, errlen, -EINVAL, "%s %g outside %.0f..%.0f",
	                  bounds[b].what, v, bounds[b].lo, bounds[b].hi);
}

/* ---------------------------------------------------------- canonical */

int cfg_canon_name(const char *in, char *out, char *err, size_t errlen)
{
	uint8_t wire[SVC_NAME_MAX];
	const char *why;

	if (svc_name_parse(in, wire, out, &why) < 0)
		return store_errf(err, errlen, -EINVAL, "bad name '%s': %s", in, why);
	return 0;
}

static int canon_target(const char *in, char *out, char *err, size_t errlen)
{
	uint8_t rd[SVC_NAME_MAX];
	uint16_t type;
	const char *why;

	if (svc_target_parse(in, &type, rd, out, &why) < 0)
		return store_errf(err, errlen, -EINVAL, "bad target '%s': %s", in,
		            why);
	return 0;
}

static const char *const continents[] = {
	"AF", "AN", "AS", "EU", "NA", "OC", "SA"
};

/* kind + pattern as stored, from "CIDR" / "country:CC" / "continent:CC". */
static int parse_match(const char *in, char kind[16], char pat[64],
                       char *err, size_t errlen)
{
	struct in6_addr net;
	unsigned plen;
	char cc[3];
	double la, lo;

	if (strncmp(in, "country:", 8) == 0 ||
	    strncmp(in, "continent:", 10) == 0) {
		bool country = in[1] == 'o' && in[2] == 'u';
		const char *c = in + (country ? 8 : 10);
		bool ok = false;

		if (strlen(c) != 2 || !isalpha((unsigned char)c[0]) ||
		    !isalpha((unsigned char)c[1]))
			return store_errf(err, errlen, -EINVAL, "bad rule '%s': "
			            "code must be two letters", in);
		cc[0] = (char)toupper((unsigned char)c[0]);
		cc[1] = (char)toupper((unsigned char)c[1]);
		cc[2] = '\0';
		if (country) {
			ok = geo_country_centroid(cc, &la, &lo, NULL) == 0;
		} else {
			for (size_t i = 0; i < 7; i++)
				ok |= strcmp(cc, continents[i]) == 0;
		}
		if (!ok) {
			/* Codes people write for ISO 3166 / continent ones. */
			static const char *const alias[][2] = {
				{ "UK", "GB" }, { "EL", "GR" }, { "EN", "GB" },
				{ "US", "NA" }, { "EA", "EU" }, { "AM", "NA" },
				{ "AU", "OC" }, { "ME", "AS" },
			};
			const char *near = NULL;

			for (size_t i = 0; i < sizeof alias / sizeof alias[0];
			     i++)
				if (strcmp(cc, alias[i][0]) == 0 &&
				    (country ? i < 3 : i >= 3))
					near = alias[i][1];
			return store_errf(err, errlen, -EINVAL, "bad rule '%s': "
			            "unknown %s code %s%s%s%s", in,
			            country ? "country" : "continent", cc,
			            near ? " (did you mean " : "",
			            near ? near : "", near ? "?)" : country ?
			            " (ISO 3166-1 alpha-2)" :
			            " (AF AN AS EU NA OC SA)");
		}
		strcpy(kind, country ? "country" : "continent");
		strcpy(pat, cc);
		return 0;
	}
	if (addr_parse_cidr(in, ADDR_CIDR_STRICT, &net, &plen) < 0)
		return store_errf(err, errlen, -EINVAL, "bad rule '%s': not a CIDR "
		            "(ADDR/LEN, no host bits), country:CC or "
		            "continent:CC", in);
	strcpy(kind, "cidr");
	if (IN6_IS_ADDR_V4MAPPED(&net) && plen >= 96) {
		char a[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &net.s6_addr[12], a, sizeof a);
		snprintf(pat, 64, "%s/%u", a, plen - 96);
	} else {
		char a[INET6_ADDRSTRLEN];

		inet_ntop(AF_INET6, &net, a, sizeof a);
		snprintf(pat, 64, "%s/%u", a, plen);
	}
	return 0;
}

int cfg_match_parse(const char *in, char kind[16], char pat[64], char *err,
                    size_t errlen)
{
	return parse_match(in, kind, pat, err, errlen);
}

int cfg_canon_match(const char *in, char *out, char *err, size_t errlen)
{
	char kind[16], pat[64];
	int rc = parse_match(in, kind, pat, err, errlen);

	if (rc < 0)
		return rc;
	if (strcmp(kind, "cidr") == 0)
		snprintf(out, 96, "%s", pat);
	else
		snprintf(out, 96, "%s:%s", kind, pat);
	return 0;
}

int cfg_canon_target(const char *in, char *out, char *err, size_t errlen)
{
	return canon_target(in, out, err, errlen);
}

/* ------------------------------------------------------------ lookups */

static int find_service(sqlite3 *h, const char *name, char canon[256],
                        long long *id, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = cfg_canon_name(name, canon, err, errlen)) < 0)
		return rc;
	rc = run(h, &st, "SELECT id FROM services WHERE name = ?", "t", canon);
	if (rc == SQLITE_ROW) {
		*id = sqlite3_column_int64(st, 0);
		run_end(st);
		return 0;
	}
	if (rc != SQLITE_DONE)
		return store_sqlerr(h, err, errlen, canon);
	return store_errf(err, errlen, -ENOENT, "service %s not found", canon);
}

static int find_endpoint(sqlite3 *h, long long sid, const char *sname,
                         const char *target, char canon[256], long long *id,
                         char *err, size_t errlen)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = canon_target(target, canon, err, errlen)) < 0)
		return rc;
	rc = run(h, &st, "SELECT id FROM endpoints WHERE service_id = ? AND "
	         "target = ?", "it", sid, canon);
	if (rc == SQLITE_ROW) {
		*id = sqlite3_column_int64(st, 0);
		run_end(st);
		return 0;
	}
	if (rc != SQLITE_DONE)
		return store_sqlerr(h, err, errlen, canon);
	return store_errf(err, errlen, -ENOENT, "%s is not an endpoint of %s",
	            canon, sname);
}

/* ----------------------------------------------------------- services */

#define svc_row cfg_svc_row

static int svc_overlay(struct svc_row *r, const struct cfg_service *s,
                       char *err, size_t errlen)
{
	if (s->policy) {
		int p = svc_policy_parse(s->policy);

		if (p < 0)
			return store_errf(err, errlen, -EINVAL, "unknown policy '%s' "
			            "(failover, weighted, geo, latency, all, "
			            "roundrobin)", s->policy);
		r->policy = p;
	}
	if (s->has_ttl) {
		if (!bound_ok(BOUND_TTL, (double)s->ttl))
			return out_of_bounds(BOUND_TTL, s->ttl, err, errlen);
		r->ttl = s->ttl;
	}
	if (s->has_answers) {
		if (s->answers != -1 &&
		    !bound_ok(BOUND_ANSWERS, (double)s->answers))
			return out_of_bounds(BOUND_ANSWERS, s->answers, err,
			                     errlen);
		r->answers = s->answers == -1 ? 0 : s->answers;
	}
	if (s->sticky >= 0)
		r->sticky = s->sticky != 0;
	if (s->has_fill) {
		if (isnan(s->fill) || s->fill < 0 || s->fill > 1)
			return store_errf(err, errlen, -EINVAL, "fill %g outside "
			            "0..1 (a share of each endpoint's capacity; "
			            "0 removes it)", s->fill);
		r->fill = s->fill > 0 ? s->fill : NAN;
	}
	if (s->when_down) {
		if (strcmp(s->when_down, "open") == 0 ||
		    strcmp(s->when_down, "closed") == 0) {
			strcpy(r->when_down, s->when_down);
		} else {
			char t[256];
			int rc = canon_target(s->when_down, t, err, errlen);

			if (rc < 0)
				return store_errf(err, errlen, -EINVAL, "when-down "
				            "'%s': not open, closed or a TARGET "
				            "(IPv4, IPv6, or a name ending in "
				            "'.')", s->when_down);
			strcpy(r->when_down, t);
		}
	}
	return 0;
}

int cfg_service_check(const struct cfg_service *s, struct cfg_svc_row *r,
                      char *err, size_t errlen)
{
	*r = (struct cfg_svc_row){ .policy = -1, .ttl = 30,
	                           .when_down = "open", .fill = NAN };
	int rc;

	if ((rc = cfg_canon_name(s->name, r->name, err, errlen)) < 0)
		return rc;
	if (!s->policy)
		return store_errf(err, errlen, -EINVAL, "service %s: --policy is "
		            "required", r->name);
	return svc_overlay(r, s, err, errlen);
}

int cfg_service_insert(struct store *db, const struct cfg_service *s,
                          long long *id, char *err, size_t errlen)
{
	sqlite3 *h = db->h;
	struct svc_row r;
	sqlite3_stmt *st;
	int rc;

	if ((rc = cfg_service_check(s, &r, err, errlen)) < 0)
		return rc;
	rc = run(h, &st, "SELECT 1 FROM services WHERE name = ?", "t", r.name);
	if (rc == SQLITE_ROW) {
		run_end(st);
		return store_errf(err, errlen, -EEXIST, "service %s already exists",
		            r.name);
	}

	rc = run(h, NULL, "INSERT INTO services (name, policy, ttl, answers, "
	         "sticky, when_down, fill) VALUES (?, ?, ?, nullif(?, 0), ?, "
	         "?, ?)", "ttiiitD",
	         r.name, svc_policy_name((unsigned)r.policy), r.ttl,
	         r.answers, (long long)r.sticky, r.when_down, r.fill);
	if (rc != SQLITE_DONE)
		return store_sqlerr(h, err, errlen, r.name);
	if (id)
		*id = sqlite3_last_insert_rowid(h);
	return 0;
}

int cfg_service_add(struct store *db, const struct cfg_service *s, char *err,
                    size_t errlen)
{
	sqlite3 *h = db->h;
	CFG_TXN(h, s->name, err, errlen, cfg_service_insert(db, s, NULL, err, errlen));
}

static int service_update(sqlite3 *h, const struct cfg_service *s, char *err,
                          size_t errlen)
{
	struct svc_row r;
	sqlite3_stmt *st;
	long long id;
	int rc;

	if ((rc = find_service(h, s->name, r.name, &id, err, errlen)) < 0)
		return rc;
	rc = run(h, &st, "SELECT policy, ttl, ifnull(answers, 0), sticky, "
	         "when_down, fill FROM services WHERE id = ?", "i", id);
	if (rc != SQLITE_ROW)
		return store_sqlerr(h, err, errlen, r.name);
	r.policy = svc_policy_parse((const char *)sqlite3_column_text(st, 0));
	r.ttl = sqlite3_column_int64(st, 1);
	r.answers = sqlite3_column_int64(st, 2);
	r.sticky = sqlite3_column_int(st, 3);
	snprintf(r.when_down, sizeof r.when_down, "%s",
	         (const char *)sqlite3_column_text(st, 4));
	r.fill = sqlite3_column_type(st, 5) == SQLITE_NULL ? NAN :
	         sqlite3_column_double(st, 5);
	run_end(st);
	if ((rc = svc_overlay(&r, s, err, errlen)) < 0)
		return rc;
	if (r.policy < 0)
		return store_errf(err, errlen, -EINVAL, "service %s: stored policy "
		            "is invalid; give --policy", r.name);
	rc = run(h, NULL, "UPDATE services SET policy = ?, ttl = ?, answers = "
	         "nullif(?, 0), sticky = ?, when_down = ?, fill = ? WHERE id = ?",
	         "tiiitDi", svc_policy_name((unsigned)r.policy), r.ttl,
	         r.answers, (long long)r.sticky, r.when_down, r.fill, id);
	return rc == SQLITE_DONE ? 0 : store_sqlerr(h, err, errlen, r.name);
}

int cfg_service_set(struct store *db, const struct cfg_service *s, char *err,
                    size_t errlen)
{
	sqlite3 *h = db->h;
	CFG_TXN(h, s->name, err, errlen, service_update(h, s, err, errlen));
}

static int service_delete(sqlite3 *h, const char *name, char *err,
                          size_t errlen)
{
	char canon[256];
	long long id;
	int rc;

	if ((rc = find_service(h, name, canon, &id, err, errlen)) < 0)
		return rc;
	rc = run(h, NULL, "DELETE FROM services WHERE id = ?", "i", id);
	return rc == SQLITE_DONE ? 0 : store_sqlerr(h, err, errlen, canon);
}

int cfg_service_rm(struct store *db, const char *name, char *err, size_t errlen)
{
	sqlite3 *h = db->h;
	CFG_TXN(h, name, err, errlen, service_delete(h, name, err, errlen));
}

/* ---------------------------------------------------------- endpoints */

#define ep_row cfg_ep_row

static void ep_row_init(struct ep_row *r)
{
	memset(r, 0, sizeof *r);
	r->weight = 1;
	r->interval = r->timeout = NAN;
	r->capacity = NAN;
	r->rise = 3;
	r->fall = 2;
	r->tls_verify = 1;
}

void cfg_ep_row_fini(struct cfg_ep_row *r)
{
	free(r->region);
	free(r->check_url);
	free(r->expect);
	free(r->body);
	free(r->host);
}

/* Replaces *slot with a copy of s (NULL or "" -> NULL). */
static int setstr(char **slot, const char *s)
{
	char *c = NULL;

	if (s && *s && !(c = strdup(s)))
		return -ENOMEM;
	free(*slot);
	*slot = c;
	return 0;
}

static char *dupcol(sqlite3_stmt *st, int i)
{
	const char *s = (const char *)sqlite3_column_text(st, i);

	return s ? strdup(s) : NULL;
}

static int ep_overlay(struct ep_row *r, const struct cfg_endpoint *e,
                      char *err, size_t errlen)
{
	if (e->has_weight) {
		if (!bound_ok(BOUND_WEIGHT, (double)e->weight))
			return out_of_bounds(BOUND_WEIGHT, e->weight, err, errlen);
		r->weight = e->weight;
	}
	if (e->has_priority) {
		if (!bound_ok(BOUND_PRIORITY, (double)e->priority))
			return out_of_bounds(BOUND_PRIORITY, e->priority, err,
			                     errlen);
		r->priority = e->priority;
	}
	if (e->has_region) {
		if (e->region && strlen(e->region) > 63)
			return store_errf(err, errlen, -EINVAL, "region name longer "
			            "than 63 bytes");
		if (setstr(&r->region, e->region) < 0)
			return -ENOMEM;
	}
	if (e->clear_loc)
		r->has_loc = false;
	if (e->has_loc) {
		if (!bound_ok(BOUND_LAT, e->lat))
			return real_out_of_bounds(BOUND_LAT, e->lat, err, errlen);
		if (!bound_ok(BOUND_LON, e->lon))
			return real_out_of_bounds(BOUND_LON, e->lon, err, errlen);
		r->has_loc = true;
		r->lat = e->lat;
		r->lon = e->lon;
	}
	if (e->has_bias) {
		if (!bound_ok(BOUND_BIAS, e->bias))
			return real_out_of_bounds(BOUND_BIAS, e->bias, err, errlen);
		r->bias = e->bias;
	}
	if (e->admin) {
		int a = svc_admin_parse(e->admin);

		if (a < 0)
			return store_errf(err, errlen, -EINVAL, "admin '%s' is not "
			            "up, down or auto", e->admin);
		r->admin = a;
	}
	if (e->drained >= 0)
		r->drained = e->drained != 0;
	if (e->has_check) {
		if (e->check_url && *e->check_url) {
			struct pcheck_url u;
			char why[256];

			if (pcheck_url_parse(e->check_url, &u, why,
			                     sizeof why) < 0)
				return store_errf(err, errlen, -EINVAL, "check '%s': "
				            "%s", e->check_url, why);
		}
		if (setstr(&r->check_url, e->check_url) < 0)
			return -ENOMEM;
	}
	if (e->has_interval) {
		if (isnan(e->interval) || e->interval > 86400)
			return store_errf(err, errlen, -EINVAL, "check interval %g "
			            "outside 0..86400 s", e->interval);
		r->interval = e->interval > 0 ? e->interval : NAN;
	}
	if (e->has_timeout) {
		if (isnan(e->timeout) || e->timeout > 3600)
			return store_errf(err, errlen, -EINVAL, "check timeout %g "
			            "outside 0..3600 s", e->timeout);
		r->timeout = e->timeout > 0 ? e->timeout : NAN;
	}
	if (e->has_rise) {
		if (!bound_ok(BOUND_RISE, (double)e->rise))
			return out_of_bounds(BOUND_RISE, e->rise, err, errlen);
		r->rise = e->rise;
	}
	if (e->has_fall) {
		if (!bound_ok(BOUND_FALL, (double)e->fall))
			return out_of_bounds(BOUND_FALL, e->fall, err, errlen);
		r->fall = e->fall;
	}
	if (e->has_tls_verify)
		r->tls_verify = e->tls_verify;
	if (e->has_expect) {
		unsigned lo, hi;
		int rcode;

		if (e->expect && *e->expect &&
		    pcheck_expect_parse(e->expect, &lo, &hi) < 0 &&
		    pcheck_rcode_parse(e->expect, &rcode) < 0)
			return store_errf(err, errlen, -EINVAL, "check expect '%s': "
			            "not a status range (200-399) or an rcode",
			            e->expect);
		if (setstr(&r->expect, e->expect) < 0)
			return -ENOMEM;
	}
	if (e->has_body && setstr(&r->body, e->body) < 0)
		return -ENOMEM;
	if (e->has_host) {
		char t[256];

		if (e->host && *e->host &&
		    cfg_canon_name(e->host, t, err, errlen) < 0)
			return store_errf(err, errlen, -EINVAL, "check host '%s' is "
			            "not a domain name", e->host);
		if (setstr(&r->host, e->host) < 0)
			return -ENOMEM;
	}
	if (e->has_capacity) {
		if (isnan(e->capacity) || (e->capacity != 0 &&
		    (e->capacity < 0.001 || e->capacity > 1e9)))
			return store_errf(err, errlen, -EINVAL, "capacity %g "
			            "outside 0.001..1000000000 (answers per "
			            "second, or a relative number; 0 removes it)",
			            e->capacity);
		r->capacity = e->capacity > 0 ? e->capacity : NAN;
	}
	/* A check must end before the next one starts. */
	if (!isnan(r->interval) && !isnan(r->timeout) &&
	    r->timeout >= r->interval)
		return store_errf(err, errlen, -EINVAL, "check timeout %g s must "
		            "be below the check interval %g s (e.g. "
		            "--check-timeout %g)", r->timeout, r->interval,
		            r->interval / 2);
	return 0;
}

static int ep_read(sqlite3 *h, long long id, struct ep_row *r)
{
	sqlite3_stmt *st;
	int rc = run(h, &st, "SELECT " CFG_EP_COLS " FROM endpoints WHERE id = ?",
	             "i", id);

	if (rc != SQLITE_ROW)
		return -EIO;
	snprintf(r->target, sizeof r->target, "%s",
	         (const char *)sqlite3_column_text(st, 0));
	r->weight = sqlite3_column_int64(st, 1);
	r->priority = sqlite3_column_int64(st, 2);
	r->region = dupcol(st, 3);
	r->has_loc = sqlite3_column_type(st, 4) != SQLITE_NULL;
	r->lat = sqlite3_column_double(st, 4);
	r->lon = sqlite3_column_double(st, 5);
	r->bias = sqlite3_column_double(st, 6);
	r->admin = svc_admin_parse((const char *)sqlite3_column_text(st, 7));
	if (r->admin < 0)
		r->admin = SVC_ADMIN_AUTO;
	r->drained = sqlite3_column_int(st, 8);
	r->check_url = dupcol(st, 9);
	r->interval = sqlite3_column_type(st, 10) == SQLITE_NULL ? NAN :
	              sqlite3_column_double(st, 10);
	r->timeout = sqlite3_column_type(st, 11) == SQLITE_NULL ? NAN :
	             sqlite3_column_double(st, 11);
	r->rise = sqlite3_column_int64(st, 12);
	r->fall = sqlite3_column_int64(st, 13);
	r->tls_verify = sqlite3_column_int(st, 14);
	r->expect = dupcol(st, 15);
	r->body = dupcol(st, 16);
	r->host = dupcol(st, 17);
	r->capacity = sqlite3_column_type(st, 18) == SQLITE_NULL ? NAN :
	              sqlite3_column_double(st, 18);
	run_end(st);
	return 0;
}

static int ep_write(sqlite3 *h, long long sid, long long id,
                    const struct ep_row *r)
{
	static const char ins[] = "INSERT INTO endpoints (id, service_id, "
		CFG_EP_COLS ") VALUES (" CFG_EP_NEW_ID ", ?, ?, ?, ?, ?, ?, ?, "
		"?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
	static const char upd[] = "UPDATE endpoints SET service_id = ?, "
		"target = ?, weight = ?, priority = ?, region = ?, lat = ?, "
		"lon = ?, bias = ?, admin = ?, drained = ?, check_url = ?, "
		"check_interval = ?, check_timeout = ?, check_rise = ?, "
		"check_fall = ?, check_tls_verify = ?, check_expect = ?, "
		"check_body = ?, check_host = ?, capacity = ? WHERE id = ?";
	int rc = run(h, NULL, id ? upd : ins, id ? "itiitDDdtitDDiiitttDi"
	             : "itiitDDdtitDDiiitttD", sid, r->target, r->weight,
	             r->priority, r->region, r->has_loc ? r->lat : NAN,
	             r->has_loc ? r->lon : NAN, r->bias,
	             svc_admin_name((unsigned)r->admin), (long long)r->drained,
	             r->check_url, r->interval, r->timeout, r->rise, r->fall,
	             (long long)r->tls_verify, r->expect, r->body, r->host,
	             r->capacity, id);

	return rc == SQLITE_DONE ? 0 : -EIO;
}

int cfg_endpoint_check(const struct cfg_endpoint *e, struct cfg_ep_row *r,
                       char *err, size_t errlen)
{
	int rc;

	cfg_ep_row_fini(r);
	ep_row_init(r);
	if ((rc = canon_target(e->target, r->target, err, errlen)) < 0)
		return rc;
	if ((rc = ep_overlay(r, e, err, errlen)) == -ENOMEM)
		store_errf(err, errlen, rc, "out of memory");
	return rc;
}

int cfg_endpoint_insert(struct store *db, const char *service,
                           const struct cfg_endpoint *e, char *err,
                           size_t errlen)
{
	sqlite3 *h = db->h;
	struct ep_row r;
	char sname[256];
	sqlite3_stmt *st;
	long long sid;
	int rc;

	ep_row_init(&r);
	if ((rc = find_service(h, service, sname, &sid, err, errlen)) < 0 ||
	    (rc = cfg_endpoint_check(e, &r, err, errlen)) < 0)
		goto out;
	rc = run(h, &st, "SELECT 1 FROM endpoints WHERE service_id = ? AND "
	         "target = ?", "it", sid, r.target);
	if (rc == SQLITE_ROW) {
		run_end(st);
		rc = store_errf(err, errlen, -EEXIST, "%s is already an endpoint of "
		          "%s", r.target, sname);
		goto out;
	}
	rc = run(h, &st, "SELECT count(*) FROM endpoints WHERE service_id = ?",
	         "i", sid);
	if (rc == SQLITE_ROW) {
		long long n = sqlite3_column_int64(st, 0);

		run_end(st);
		if (n >= SVC_MAX_ENDPOINTS) {
			rc = store_errf(err, errlen, -EINVAL, "%s already has %lld "
			          "endpoints, the most one service may have",
			          sname, n);
			goto out;
		}
	}
	rc = ep_write(h, sid, 0, &r) < 0 ? store_sqlerr(h, err, errlen, r.target)
	                                 : 0;
out:
	cfg_ep_row_fini(&r);
	return rc;
}

int cfg_endpoint_add(struct store *db, const char *service,
                     const struct cfg_endpoint *e, char *err, size_t errlen)
{
	sqlite3 *h = db->h;
	CFG_TXN(h, service, err, errlen, cfg_endpoint_insert(db, service, e, err, errlen));
}

static int endpoint_update(sqlite3 *h, const char *service,
                           const struct cfg_endpoint *e, char *err,
                           size_t errlen)
{
	struct ep_row r;
	char sname[256], t[256];
	long long sid, id;
	int rc;

	ep_row_init(&r);
	if ((rc = find_service(h, service, sname, &sid, err, errlen)) < 0 ||
	    (rc = find_endpoint(h, sid, sname, e->target, t, &id, err,
	                        errlen)) < 0)
		goto out;
	if (ep_read(h, id, &r) < 0) {
		rc = store_sqlerr(h, err, errlen, t);
		goto out;
	}
	if ((rc = ep_overlay(&r, e, err, errlen)) < 0) {
		if (rc == -ENOMEM)
			store_errf(err, errlen, rc, "out of memory");
		goto out;
	}
	rc = ep_write(h, sid, id, &r) < 0 ? store_sqlerr(h, err, errlen, t) : 0;
out:
	cfg_ep_row_fini(&r);
	return rc;
}

int cfg_endpoint_set(struct store *db, const char *service,
                     const struct cfg_endpoint *e, char *err, size_t errlen)
{
	sqlite3 *h = db->h;
	CFG_TXN(h, service, err, errlen, endpoint_update(h, service, e, err, errlen));
}

static int endpoint_delete(sqlite3 *h, const char *service,
                           const char *target, char *err, size_t errlen)
{
	char sname[256], t[256];
	long long sid, id;
	int rc;

	if ((rc = find_service(h, service, sname, &sid, err, errlen)) < 0 ||
	    (rc = find_endpoint(h, sid, sname, target, t, &id, err,
	                        errlen)) < 0)
		return rc;
	rc = run(h, NULL, "DELETE FROM endpoints WHERE id = ?", "i", id);
	if (rc != SQLITE_DONE)
		return store_sqlerr(h, err, errlen, t);
	/* A rule left without targets would match clients and answer
	 * nothing of its own; remove it with its last target. */
	rc = run(h, NULL, "DELETE FROM rules WHERE service_id = ? AND id NOT "
	         "IN (SELECT rule_id FROM rule_targets)", "i", sid);
	return rc == SQLITE_DONE ? 0 : store_sqlerr(h, err, errlen, t);
}

int cfg_endpoint_rm(struct store *db, const char *service, const char *target,
                    char *err, size_t errlen)
{
	sqlite3 *h = db->h;
	CFG_TXN(h, service, err, errlen, endpoint_delete(h, service, target, err, errlen));
}

/* -------------------------------------------------------------- rules */

int cfg_rule_insert(struct store *db, const char *service, const char *match,
                       const char *const *targets, size_t n, char *err,
                       size_t errlen)
{
	sqlite3 *h = db->h;
	char sname[256], kind[16], pat[64], t[256];
	sqlite3_stmt *st;
	long long sid, rid, eid;
	int rc;

	if ((rc = find_service(h, service, sname, &sid, err, errlen)) < 0 ||
	    (rc = parse_match(match, kind, pat, err, errlen)) < 0)
		return rc;
	if (n == 0)
		return store_errf(err, errlen, -EINVAL, "rule %s: at least one "
		            "TARGET is required", match);
	rc = run(h, &st, "SELECT 1 FROM rules WHERE service_id = ? AND kind = "
	         "? AND pattern = ?", "itt", sid, kind, pat);
	if (rc == SQLITE_ROW) {
		run_end(st);
		return store_errf(err, errlen, -EEXIST, "rule %s%s%s of %s already "
		            "exists", strcmp(kind, "cidr") ? kind : "",
		            strcmp(kind, "cidr") ? ":" : "", pat, sname);
	}
	rc = run(h, NULL, "INSERT INTO rules (service_id, kind, pattern) "
	         "VALUES (?, ?, ?)", "itt", sid, kind, pat);
	if (rc != SQLITE_DONE)
		return store_sqlerr(h, err, errlen, match);
	rid = sqlite3_last_insert_rowid(h);
	for (size_t i = 0; i < n; i++) {
		if ((rc = find_endpoint(h, sid, sname, targets[i], t, &eid,
		                        err, errlen)) < 0)
			return rc;
		rc = run(h, NULL, "INSERT INTO rule_targets (rule_id, "
		         "endpoint_id) VALUES (?, ?)", "ii", rid, eid);
		if (rc != SQLITE_DONE) {
			if (sqlite3_errcode(h) == SQLITE_CONSTRAINT)
				return store_errf(err, errlen, -EEXIST, "rule %s: "
				            "target %s given twice", match, t);
			return store_sqlerr(h, err, errlen, match);
		}
	}
	return 0;
}

int cfg_rule_add(struct store *db, const char *service, const char *match,
                 const char *const *targets, size_t n, char *err,
                 size_t errlen)
{
	sqlite3 *h = db->h;
	CFG_TXN(h, service, err, errlen, cfg_rule_insert(db, service, match, targets, n, err,
	                                errlen));
}

static int rule_delete(sqlite3 *h, const char *service, const char *match,
                       char *err, size_t errlen)
{
	char sname[256], kind[16], pat[64];
	long long sid;
	int rc;

	if ((rc = find_service(h, service, sname, &sid, err, errlen)) < 0 ||
	    (rc = parse_match(match, kind, pat, err, errlen)) < 0)
		return rc;
	rc = run(h, NULL, "DELETE FROM rules WHERE service_id = ? AND kind = ? "
	         "AND pattern = ?", "itt", sid, kind, pat);
	if (rc != SQLITE_DONE)
		return store_sqlerr(h, err, errlen, match);
	if (sqlite3_changes(h) == 0)
		return store_errf(err, errlen, -ENOENT, "no rule %s in %s", match,
		            sname);
	return 0;
}

int cfg_rule_rm(struct store *db, const char *service, const char *match,
                char *err, size_t errlen)
{
	sqlite3 *h = db->h;
	CFG_TXN(h, service, err, errlen, rule_delete(h, service, match, err, errlen));
}

/* The rule with these targets: created, or its targets replaced. */
static int rule_put(struct store *db, const char *service, const char *match,
                    const char *const *targets, size_t n, char *err,
                    size_t errlen)
{
	int rc = rule_delete(db->h, service, match, err, errlen);

	if (rc < 0 && rc != -ENOENT)
		return rc;
	if (rc == -ENOENT && strstr(err, "no rule") == NULL)
		return rc;              /* the service is missing */
	return cfg_rule_insert(db, service, match, targets, n, err, errlen);
}

int cfg_rule_put(struct store *db, const char *service, const char *match,
                 const char *const *targets, size_t n, char *err,
                 size_t errlen)
{
	sqlite3 *h = db->h;
	CFG_TXN(h, service, err, errlen, rule_put(db, service, match, targets,
	                                          n, err, errlen));
}

/* --------------------------------------------------------------- flip */

static int flip(sqlite3 *h, const char *service, const char *target,
                char *err, size_t errlen)
{
	char sname[256], t[256];
	sqlite3_stmt *st;
	long long sid, id, mine, lowest = -1, highest = -1;
	int rc;

	if ((rc = find_service(h, service, sname, &sid, err, errlen)) < 0 ||
	    (rc = find_endpoint(h, sid, sname, target, t, &id, err,
	                        errlen)) < 0)
		return rc;
	rc = run(h, &st, "SELECT priority, drained, admin FROM endpoints "
	         "WHERE id = ?", "i", id);
	if (rc != SQLITE_ROW)
		return store_sqlerr(h, err, errlen, t);
	mine = sqlite3_column_int64(st, 0);
	if (sqlite3_column_int(st, 1)) {
		run_end(st);
		return store_errf(err, errlen, -EINVAL, "cannot flip %s to %s: it is "
		            "drained (undrain it first)", sname, t);
	}
	if (strcmp((const char *)sqlite3_column_text(st, 2), "down") == 0) {
		run_end(st);
		return store_errf(err, errlen, -EINVAL, "cannot flip %s to %s: it is "
		            "forced down (endpoint set --admin auto|up first)",
		            sname, t);
	}
	run_end(st);
	rc = run(h, &st, "SELECT min(priority), max(priority) FROM endpoints "
	         "WHERE service_id = ? AND id != ?", "ii", sid, id);
	if (rc == SQLITE_ROW) {
		if (sqlite3_column_type(st, 0) != SQLITE_NULL) {
			lowest = sqlite3_column_int64(st, 0);
			highest = sqlite3_column_int64(st, 1);
		}
		run_end(st);
	} else {
		return store_sqlerr(h, err, errlen, t);
	}
	if (lowest < 0 || mine < lowest)
		return 0;               /* already strictly first */
	if (lowest >= 1) {
		rc = run(h, NULL, "UPDATE endpoints SET priority = ? WHERE id "
		         "= ?", "ii", lowest - 1, id);
	} else {
		if (highest >= 65535)
			return store_errf(err, errlen, -ERANGE, "cannot flip %s: "
			            "priorities would exceed 65535 (renumber "
			            "with endpoint set --priority)", sname);
		rc = run(h, NULL, "UPDATE endpoints SET priority = priority + 1 "
		         "WHERE service_id = ? AND id != ?", "ii", sid, id);
		if (rc == SQLITE_DONE)
			rc = run(h, NULL, "UPDATE endpoints SET priority = 0 "
			         "WHERE id = ?", "i", id);
	}
	return rc == SQLITE_DONE ? 0 : store_sqlerr(h, err, errlen, t);
}

int cfg_flip_in(struct store *db, const char *service, const char *target,
                char *err, size_t errlen)
{
	return flip(db->h, service, target, err, errlen);
}

int cfg_flip(struct store *db, const char *service, const char *target, char *err,
             size_t errlen)
{
	sqlite3 *h = db->h;
	CFG_TXN(h, service, err, errlen, flip(h, service, target, err, errlen));
}
