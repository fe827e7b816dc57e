/* db/svc_load.c - loads the service set (policy/svc.h) from the store in
 * one read transaction. See db/svc_load.h for the contract.
 *
 * Design note. svc_load() validates every row again (the schema's CHECKs
 * can be bypassed by hand edits or old files): services in id order, each
 * with its endpoints (id order) and rules (most specific first), each
 * service packed into its own block and put into the set (svc_set_put).
 * svc_load_since() runs the same statements restricted to the services
 * the change log names. */
#include "db/svc_load.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/addr.h"
#include "common/hash.h"
#include "common/search.h"
#include "db/audit_sql.h"
#include "db/bounds.h"
#include "db/shift.h"
#include "db/store.h"
#include "db/store_sql.h"
#include "geo/geo.h"

/* Column helpers: the type must be what the schema says, the value
 * within the column's bounds (db/bounds.h). */
static bool col_int(sqlite3_stmt *st, int i, enum bound_id b, long long *v)
{
	if (sqlite3_column_type(st, i) != SQLITE_INTEGER)
		return false;
	*v = sqlite3_column_int64(st, i);
	return bound_ok(b, (double)*v);
}

/* 0 or 1. */
static bool col_flag(sqlite3_stmt *st, int i, long long *v)
{
	if (sqlite3_column_type(st, i) != SQLITE_INTEGER)
		return false;
	*v = sqlite3_column_int64(st, i);
	return *v == 0 || *v == 1;
}

/* "WHAT VALUE outside LO..HI" into buf (BOUND_MSG bytes); returns buf. */
#define BOUND_MSG 160
static const char *out_of_bounds(sqlite3_stmt *st, int i, enum bound_id b,
                                 char *buf)
{
	const unsigned char *t = sqlite3_column_text(st, i);

	snprintf(buf, BOUND_MSG, "%s %s outside %.0f..%.0f", bounds[b].what,
	         t ? (const char *)t : "(null)", bounds[b].lo, bounds[b].hi);
	return buf;
}

static bool col_null(sqlite3_stmt *st, int i)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL;
}

static bool col_real(sqlite3_stmt *st, int i, enum bound_id b, double *v)
{
	int t = sqlite3_column_type(st, i);

	if (t != SQLITE_INTEGER && t != SQLITE_FLOAT)
		return false;
	*v = sqlite3_column_double(st, i);
	return isfinite(*v) && bound_ok(b, *v);
}

static const char *col_text(sqlite3_stmt *st, int i)
{
	if (sqlite3_column_type(st, i) != SQLITE_TEXT)
		return NULL;
	return (const char *)sqlite3_column_text(st, i);
}

/* Stores a parsed target in the arena. 0 or -ENOMEM. */
static int target_keep(struct arena *a, struct svc_target *t, uint16_t type,
                       const uint8_t *rdata, int len, const char *text)
{
	t->type = type;
	t->len = (uint16_t)len;
	t->rdata = arena_memdup(a, rdata, (size_t)len);
	t->text = arena_strdup(a, text);
	return t->rdata && t->text ? 0 : -ENOMEM;
}

/* Rows are read into a flat array of services in a scratch arena (the
 * statements walk each table once, in id order), then each service is
 * packed into its own block (svc_pack) and put into the set. */
struct loader {
	sqlite3 *h;
	struct svc_set *s;      /* the result; receives the problems */
	struct arena tmp;       /* the flat services while loading */
	struct svc_service *flat;
	size_t n;
	uint32_t *fslot;        /* name hash over flat: index + 1 */
	uint32_t fmask;
	struct svc_endpoint *eps;       /* every service's endpoints (malloc) */
	unsigned threads;       /* packing threads; 0: by the count */
	long long since;        /* >= 0: only services changed since then */
	char *err;
	size_t errlen;
};

/* The check's settings as one text, for svc_endpoint.check_key (quote()
 * keeps NULLs and column boundaries apart), NULL without a check: the
 * columns of endpoints without a check are never read. */
#define CHECKS "CASE WHEN check_url IS NULL THEN NULL ELSE " \
	"quote(check_url) || ',' || quote(check_interval) || ',' || " \
	"quote(check_timeout) || ',' || quote(check_rise) || ',' || " \
	"quote(check_fall) || ',' || quote(check_tls_verify) || ',' || " \
	"quote(check_expect) || ',' || quote(check_body) || ',' || " \
	"quote(check_host) END"

/* Services changed since version ?1 (the change log, db/audit.h). */
#define CHANGED_NAMES "(SELECT service FROM changes WHERE version > ?1)"
#define CHANGED_IDS "(SELECT id FROM services WHERE name IN " \
	CHANGED_NAMES ")"

/* Prepares sql, binding ?1 to the version a filtered load starts from. */
static int ld_prepare(struct loader *L, const char *sql, sqlite3_stmt **st)
{
	if (sqlite3_prepare_v2(L->h, sql, -1, st, NULL) != SQLITE_OK)
		return -EIO;
	if (L->since >= 0 && sqlite3_bind_parameter_count(*st) >= 1)
		sqlite3_bind_int64(*st, 1, L->since);
	return 0;
}

static struct svc_service *flat_find(struct loader *L, const uint8_t *wire,
                                     size_t len, uint32_t **slot)
{
	uint32_t h = hash_fnv32(wire, len);

	for (uint32_t i = h & L->fmask;; i = (i + 1) & L->fmask) {
		struct svc_service *v;

		*slot = &L->fslot[i];
		if (!L->fslot[i])
			return NULL;
		v = &L->flat[L->fslot[i] - 1];
		if (v->wire_len == len && memcmp(v->wire, wire, len) == 0)
			return v;
	}
}

static int ld_fail(struct loader *L, const char *what)
{
	if (L->err && L->errlen)
		snprintf(L->err, L->errlen, "db: %s: %s", what,
		         sqlite3_errmsg(L->h));
	return -EIO;
}

#define PROBLEM(L, ...)                                                  \
	do {                                                             \
		if (svc_problem_add((L)->s, __VA_ARGS__) < 0)            \
			return -ENOMEM;                                  \
	} while (0)

static long long count_rows(struct loader *L, const char *sql)
{
	sqlite3_stmt *st = NULL;
	long long n = -1;

	if (ld_prepare(L, sql, &st) == 0 && sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

static struct svc_service *svc_by_id(struct loader *L, long long id)
{
	long i = SEARCH_ID(L->flat, L->n, id, id);

	return i < 0 ? NULL : &L->flat[i];
}

/* One service row into *v. 1 = kept, 0 = skipped (problem recorded),
 * negative = hard error. */
static int load_service(struct loader *L, sqlite3_stmt *st,
                        struct svc_service *v)
{
	struct arena *a = &L->tmp;
	long long id = sqlite3_column_int64(st, 0), x;
	const char *name = col_text(st, 1), *pol = col_text(st, 2);
	const char *wd = col_text(st, 6), *why;
	uint8_t wire[SVC_NAME_MAX];
	char text[256], why_b[BOUND_MSG];
	uint32_t *slot;
	int n, p;

	memset(v, 0, sizeof *v);
	v->id = (uint32_t)id;
	if (id < 0 || id > UINT32_MAX) {
		PROBLEM(L, "db: service id %lld: id out of range", id);
		return 0;
	}
	if (!name || (n = svc_name_parse(name, wire, text, &why)) < 0) {
		PROBLEM(L, "db: service id %lld: bad name '%s': %s", id,
		        name ? name : "(not text)", name ? why : "NULL");
		return 0;
	}
	if (flat_find(L, wire, (size_t)n, &slot)) {
		PROBLEM(L, "db: service id %lld: duplicate name %s", id, text);
		return 0;
	}
	if (!pol || (p = svc_policy_parse(pol)) < 0) {
		PROBLEM(L, "db: service id %lld (%s): unknown policy '%s'", id,
		        text, pol ? pol : "(not text)");
		return 0;
	}
	v->policy = (uint8_t)p;
	if (!col_int(st, 3, BOUND_TTL, &x)) {
		PROBLEM(L, "db: service id %lld (%s): %s", id, text,
		        out_of_bounds(st, 3, BOUND_TTL, why_b));
		return 0;
	}
	v->ttl = (uint32_t)x;
	v->answers = svc_default_answers(v->policy);
	if (!col_null(st, 4)) {
		if (!col_int(st, 4, BOUND_ANSWERS, &x)) {
			PROBLEM(L, "db: service id %lld (%s): %s", id, text,
			        out_of_bounds(st, 4, BOUND_ANSWERS, why_b));
			return 0;
		}
		v->answers = (unsigned)x;
		v->answers_set = true;
	}
	if (!col_flag(st, 5, &x)) {
		PROBLEM(L, "db: service id %lld (%s): sticky must be 0 or 1",
		        id, text);
		return 0;
	}
	v->sticky = x;
	if (!wd || strcmp(wd, "open") == 0) {
		v->when_down = SVC_DOWN_OPEN;
		if (!wd && !col_null(st, 6)) {
			PROBLEM(L, "db: service id %lld (%s): when_down is "
			        "not text", id, text);
			return 0;
		}
	} else if (strcmp(wd, "closed") == 0) {
		v->when_down = SVC_DOWN_CLOSED;
	} else {
		uint8_t rd[SVC_NAME_MAX];
		char tt[256];
		uint16_t type;
		int len = svc_target_parse(wd, &type, rd, tt, &why);

		if (len < 0) {
			PROBLEM(L, "db: service id %lld (%s): when_down '%s': "
			        "%s", id, text, wd, why);
			return 0;
		}
		v->when_down = SVC_DOWN_TARGET;
		if (target_keep(a, &v->fallback, type, rd, len, tt) < 0)
			return -ENOMEM;
	}
	if (!col_null(st, 7)) {
		double fill = sqlite3_column_double(st, 7);

		if ((sqlite3_column_type(st, 7) != SQLITE_INTEGER &&
		     sqlite3_column_type(st, 7) != SQLITE_FLOAT) ||
		    !(fill > 0 && fill <= 1)) {
			PROBLEM(L, "db: service id %lld (%s): fill must be a "
			        "number in (0, 1]", id, text);
			return 0;
		}
		v->fill = fill;
	}
	v->name = arena_strdup(a, text);
	v->wire = arena_memdup(a, wire, (size_t)n);
	v->wire_len = (size_t)n;
	if (!v->name || !v->wire)
		return -ENOMEM;
	*slot = (uint32_t)(v - L->flat) + 1;
	return 1;
}

static int load_services(struct loader *L)
{
	struct svc_set *s = L->s;
	sqlite3_stmt *st = NULL;
	long long total = count_rows(L, L->since >= 0 ?
	        "SELECT count(*) FROM services WHERE name IN " CHANGED_NAMES :
	        "SELECT count(*) FROM services");
	uint32_t slots = 16;
	int rc = 0, step;

	if (total < 0)
		return ld_fail(L, "services");
	if (total > SVC_MAX_SERVICES) {
		rc = svc_problem_add(s, "db: %lld services, more than the %d one "
		                     "store may hold: those after id order %d skipped",
		                     total, SVC_MAX_SERVICES, SVC_MAX_SERVICES);
		if (rc < 0)
			return rc;
		total = SVC_MAX_SERVICES;
	}
	while (slots < 2 * (uint64_t)total)
		slots <<= 1;
	L->flat = arena_calloc(&L->tmp,
	                       (size_t)(total ? total : 1) * sizeof *L->flat);
	L->fslot = arena_calloc(&L->tmp, slots * sizeof *L->fslot);
	if (!L->flat || !L->fslot)
		return -ENOMEM;
	L->fmask = slots - 1;
	if (ld_prepare(L, L->since >= 0 ?
	               "SELECT id, name, policy, ttl, answers, sticky, "
	               "when_down, fill FROM services WHERE name IN "
	               CHANGED_NAMES " ORDER BY id" :
	               "SELECT id, name, policy, ttl, answers, "
	               "sticky, when_down, fill FROM services ORDER BY id",
	               &st) < 0)
		return ld_fail(L, "services");
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if ((long long)L->n >= total)
			break;  /* the cap above (rows cannot appear mid-read) */
		rc = load_service(L, st, &L->flat[L->n]);
		if (rc < 0)
			goto out;
		if (rc == 1)
			L->n++;
		rc = 0;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE)
		rc = ld_fail(L, "services");
out:
	sqlite3_finalize(st);
	return rc;
}

/* One endpoint row into *e (service v). 1 kept, 0 skipped, < 0 error. */
static int load_endpoint(struct loader *L, sqlite3_stmt *st,
                         const struct svc_service *v, struct svc_endpoint *e)
{
	struct arena *a = &L->tmp;
	long long id = sqlite3_column_int64(st, 0), x;
	const char *target = col_text(st, 2), *region, *adm, *why;
	uint8_t rd[SVC_NAME_MAX];
	char tt[256], why_b[BOUND_MSG];
	uint16_t type;
	int len, ad;

	memset(e, 0, sizeof *e);
	e->svc = v;
	if (id < 0 || id >= UINT32_MAX) {
		PROBLEM(L, "db: endpoint id %lld (service %s): id out of "
		        "range", id, v->name);
		return 0;
	}
	e->id = (uint32_t)id;
	if (!target || (len = svc_target_parse(target, &type, rd, tt,
	                                       &why)) < 0) {
		PROBLEM(L, "db: endpoint id %lld (service %s): bad target "
		        "'%s': %s", id, v->name,
		        target ? target : "(not text)", target ? why : "NULL");
		return 0;
	}
	if (!col_int(st, 3, BOUND_WEIGHT, &x)) {
		PROBLEM(L, "db: endpoint id %lld (service %s): %s", id, v->name,
		        out_of_bounds(st, 3, BOUND_WEIGHT, why_b));
		return 0;
	}
	e->weight = (uint32_t)x;
	if (!col_int(st, 4, BOUND_PRIORITY, &x)) {
		PROBLEM(L, "db: endpoint id %lld (service %s): %s", id, v->name,
		        out_of_bounds(st, 4, BOUND_PRIORITY, why_b));
		return 0;
	}
	e->priority = (uint32_t)x;
	region = col_text(st, 5);
	if (!col_null(st, 6) || !col_null(st, 7)) {
		if (!col_real(st, 6, BOUND_LAT, &e->lat)) {
			PROBLEM(L, "db: endpoint id %lld (service %s): %s", id,
			        v->name, out_of_bounds(st, 6, BOUND_LAT, why_b));
			return 0;
		}
		if (!col_real(st, 7, BOUND_LON, &e->lon)) {
			PROBLEM(L, "db: endpoint id %lld (service %s): %s", id,
			        v->name, out_of_bounds(st, 7, BOUND_LON, why_b));
			return 0;
		}
		e->has_loc = true;
		geo_unit_vector(e->lat, e->lon, e->v);
	}
	if (!col_real(st, 8, BOUND_BIAS, &e->bias)) {
		PROBLEM(L, "db: endpoint id %lld (service %s): %s", id, v->name,
		        out_of_bounds(st, 8, BOUND_BIAS, why_b));
		return 0;
	}
	adm = col_text(st, 9);
	if (!adm || (ad = svc_admin_parse(adm)) < 0) {
		PROBLEM(L, "db: endpoint id %lld (service %s): admin '%s' is "
		        "not auto|up|down", id, v->name, adm ? adm : "");
		return 0;
	}
	e->admin = (uint8_t)ad;
	if (!col_flag(st, 10, &x)) {
		PROBLEM(L, "db: endpoint id %lld (service %s): drained must be "
		        "0 or 1", id, v->name);
		return 0;
	}
	e->drained = x;
	e->has_check = !col_null(st, 11);
	if (!col_null(st, 12)) {
		double cap = sqlite3_column_double(st, 12);

		if (sqlite3_column_type(st, 12) != SQLITE_INTEGER &&
		    sqlite3_column_type(st, 12) != SQLITE_FLOAT) {
			PROBLEM(L, "db: endpoint id %lld (service %s): capacity "
			        "is not a number", id, v->name);
			return 0;
		}
		if (!(cap >= 0.001 && cap <= 1e9)) {
			PROBLEM(L, "db: endpoint id %lld (service %s): capacity "
			        "%g outside 0.001..1e9", id, v->name, cap);
			return 0;
		}
		e->capacity = cap;
	}
	if (e->has_check) {
		/* What the probe agents are told to check (the query path
		 * never reads it): a change shows as a new check_key. */
		const unsigned char *t = sqlite3_column_text(st, 11);
		int n = sqlite3_column_bytes(st, 11);

		e->check_key = hash_mix64(hash_fnv64("check", 5) ^
		                          (t ? hash_fnv64(t, (size_t)n) : 0));
	}
	if (target_keep(a, &e->t, type, rd, len, tt) < 0)
		return -ENOMEM;
	e->region = arena_strdup(a, region ? region : "");
	if (!e->region)
		return -ENOMEM;
	e->key = hash_fnv64(tt, strlen(tt));
	return 1;
}

/* The service of endpoint rows: mostly the one of the row before or the
 * next one (rows come in endpoint id order, services usually made with
 * their endpoints), else a binary search. */
static struct svc_service *ep_owner(struct loader *L, long long sid,
                                    struct svc_service *prev)
{
	if (prev && prev->id == sid)
		return prev;
	if (prev && prev + 1 < L->flat + L->n && prev[1].id == sid)
		return prev + 1;
	return svc_by_id(L, sid);
}

/* Endpoint rows are read in id order (the table's own order: reading them
 * grouped by service through the service_id index costs a random table
 * access per row) into one array, then each service's endpoints are made
 * contiguous: in place when every service's rows came together (the
 * usual case), else by a stable counting sort into a second array. The
 * array lives until the services are packed (L->eps). */
static int load_endpoints(struct loader *L)
{
	struct svc_set *s = L->s;
	sqlite3_stmt *st = NULL;
	struct svc_endpoint *rows = NULL, *sorted = NULL;
	uint32_t *owner = NULL;
	size_t *first = NULL;
	struct svc_service *v = NULL, *last = NULL;
	size_t n = 0, cap = 0;
	bool scattered = false;
	int rc = 0, step;

	if (ld_prepare(L, L->since >= 0 ?
	               "SELECT id, service_id, target, weight, priority, "
	               "region, lat, lon, bias, admin, drained, " CHECKS
	               ", capacity FROM endpoints WHERE "
	               "service_id IN " CHANGED_IDS " ORDER BY id" :
	               "SELECT id, service_id, target, weight, "
	               "priority, region, lat, lon, bias, admin, "
	               "drained, " CHECKS ", capacity FROM endpoints "
	               "ORDER BY id", &st) < 0) {
		rc = ld_fail(L, "endpoints");
		goto out;
	}
	first = malloc((L->n ? L->n : 1) * sizeof *first);
	if (!first) {
		rc = -ENOMEM;
		goto out;
	}
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		v = ep_owner(L, sqlite3_column_int64(st, 1), v);
		if (!v)
			continue;       /* its service was skipped */
		if (v->n_eps == SVC_MAX_ENDPOINTS) {
			rc = svc_problem_add(s, "db: endpoint id %lld (service "
			        "%s): more than %d endpoints, skipped",
			        (long long)sqlite3_column_int64(st, 0), v->name,
			        SVC_MAX_ENDPOINTS);
			if (rc < 0)
				goto out;
			continue;
		}
		if (n == cap) {
			size_t nc = cap ? 2 * cap : 1024;
			void *a = realloc(rows, nc * sizeof *rows);
			void *b = a ? realloc(owner, nc * sizeof *owner) : NULL;

			if (a)
				rows = a;
			if (!b) {
				rc = -ENOMEM;
				goto out;
			}
			owner = b;
			cap = nc;
		}
		rc = load_endpoint(L, st, v, &rows[n]);
		if (rc < 0)
			goto out;
		if (rc == 0)
			continue;       /* skipped (problem recorded) */
		rc = 0;
		if (rows[n].bias != 0)
			v->any_bias = true;
		if (rows[n].capacity > 0)
			v->spill = true;
		if (!v->n_eps)
			first[v - L->flat] = n;
		else if (v != last)
			scattered = true;
		v->n_eps++;
		owner[n++] = (uint32_t)(v - L->flat);
		last = v;
	}
	if (step != SQLITE_DONE) {
		rc = ld_fail(L, "endpoints");
		goto out;
	}
	if (scattered && n) {
		/* first[] becomes each service's start in sorted. */
		size_t at = 0;

		if (!(sorted = malloc(n * sizeof *sorted))) {
			rc = -ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < L->n; i++) {
			first[i] = at;
			at += L->flat[i].n_eps;
		}
		for (size_t i = 0; i < n; i++)
			sorted[first[owner[i]]++] = rows[i];
		for (size_t i = 0; i < L->n; i++)
			first[i] -= L->flat[i].n_eps;
		free(rows);
		rows = sorted;
	}
	for (size_t i = 0; i < L->n; i++)
		if (L->flat[i].n_eps)
			L->flat[i].eps = &rows[first[i]];
	L->eps = rows;
	rows = NULL;
out:
	sqlite3_finalize(st);
	free(rows);
	free(owner);
	free(first);
	return rc;
}

static int ep_index(const struct svc_service *v, long long id)
{
	return (int)SEARCH_ID(v->eps, v->n_eps, id, id);
}

static int rule_cmp(const void *pa, const void *pb)
{
	const struct svc_rule *a = pa, *b = pb;

	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	if (a->kind == SVC_RULE_CIDR && a->plen != b->plen)
		return a->plen > b->plen ? -1 : 1;
	return a->id < b->id ? -1 : a->id > b->id;
}

/* Parses a rule pattern into r. 0, or -EINVAL with *why. */
static int rule_parse(uint8_t kind, const char *pat, struct svc_rule *r,
                      const char **why)
{
	r->kind = kind;
	if (kind == SVC_RULE_CIDR) {
		if (addr_parse_cidr(pat, ADDR_CIDR_STRICT, &r->net, &r->plen) < 0) {
			*why = "bad CIDR (ADDR/LEN without host bits)";
			return -EINVAL;
		}
		return 0;
	}
	if (strlen(pat) != 2 || !isupper((unsigned char)pat[0]) ||
	    !isupper((unsigned char)pat[1])) {
		*why = "code must be two upper-case letters";
		return -EINVAL;
	}
	if (kind == SVC_RULE_CONTINENT) {
		static const char *const conts[] = {
			"AF", "AN", "AS", "EU", "NA", "OC", "SA"
		};
		bool ok = false;

		for (size_t i = 0; i < 7; i++)
			ok |= strcmp(pat, conts[i]) == 0;
		if (!ok) {
			*why = "continent must be AF AN AS EU NA OC SA";
			return -EINVAL;
		}
	}
	memcpy(r->code, pat, 3);
	return 0;
}

static int load_rules(struct loader *L)
{
	struct svc_set *s = L->s;
	sqlite3_stmt *st = NULL, *tt = NULL;
	long long nr = count_rows(L, L->since >= 0 ?
	        "SELECT count(*) FROM rules WHERE service_id IN " CHANGED_IDS :
	        "SELECT count(*) FROM rules");
	struct svc_rule *all = NULL;
	struct svc_service **owner = NULL;
	size_t n = 0;
	int rc = 0, step;

	if (nr < 0)
		return ld_fail(L, "rules");
	if (nr == 0)
		return 0;
	all = calloc((size_t)nr, sizeof *all);
	owner = calloc((size_t)nr, sizeof *owner);
	if (!all || !owner) {
		rc = -ENOMEM;
		goto out;
	}
	if (ld_prepare(L, L->since >= 0 ?
	               "SELECT id, service_id, kind, pattern FROM rules WHERE "
	               "service_id IN " CHANGED_IDS " ORDER BY service_id, id" :
	               "SELECT id, service_id, kind, pattern "
	               "FROM rules ORDER BY service_id, id", &st) < 0 ||
	    sqlite3_prepare_v2(L->h, "SELECT endpoint_id FROM rule_targets "
	                       "WHERE rule_id = ? ORDER BY endpoint_id", -1,
	                       &tt, NULL) != SQLITE_OK) {
		rc = ld_fail(L, "rules");
		goto out;
	}
	while ((step = sqlite3_step(st)) == SQLITE_ROW && (long long)n < nr) {
		long long id = sqlite3_column_int64(st, 0);
		struct svc_service *v = svc_by_id(L, sqlite3_column_int64(st, 1));
		const char *kind = col_text(st, 2), *pat = col_text(st, 3);
		const char *why = NULL;
		struct svc_rule *r = &all[n];
		uint16_t idx[SVC_MAX_ENDPOINTS];
		size_t k = 0;
		int ks, ts;

		if (!v)
			continue;
		ks = !kind ? -1 : strcmp(kind, "cidr") == 0 ? SVC_RULE_CIDR :
		     strcmp(kind, "country") == 0 ? SVC_RULE_COUNTRY :
		     strcmp(kind, "continent") == 0 ? SVC_RULE_CONTINENT : -1;
		if (ks < 0 || !pat ||
		    rule_parse((uint8_t)ks, pat, r, &why) < 0) {
			rc = svc_problem_add(s, "db: rule id %lld (service %s): "
			        "bad rule %s '%s'%s%s", id, v->name,
			        kind ? kind : "?", pat ? pat : "",
			        why ? ": " : "", why ? why : "");
			if (rc < 0)
				goto out;
			continue;
		}
		r->id = (uint32_t)id;
		sqlite3_reset(tt);
		sqlite3_bind_int64(tt, 1, id);
		while ((ts = sqlite3_step(tt)) == SQLITE_ROW) {
			long long eid = sqlite3_column_int64(tt, 0);
			int ix = ep_index(v, eid);

			if (ix < 0) {
				rc = svc_problem_add(s, "db: rule id %lld "
				        "(service %s): endpoint id %lld is not "
				        "a (valid) endpoint of the service",
				        id, v->name, eid);
				if (rc < 0)
					goto out;
				continue;
			}
			if (k < SVC_MAX_ENDPOINTS)
				idx[k++] = (uint16_t)ix;
		}
		if (ts != SQLITE_DONE) {
			rc = ld_fail(L, "rule_targets");
			goto out;
		}
		if (k == 0) {
			rc = svc_problem_add(s, "db: rule id %lld (service %s): "
			        "no valid target, skipped", id, v->name);
			if (rc < 0)
				goto out;
			continue;
		}
		r->text = arena_strdup(&L->tmp, pat);
		r->eps = arena_memdup(&L->tmp, idx, k * sizeof *idx);
		if (!r->text || !r->eps) {
			rc = -ENOMEM;
			goto out;
		}
		r->n_eps = k;
		owner[n++] = v;
	}
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		rc = ld_fail(L, "rules");
		goto out;
	}
	/* Rules arrive grouped by service; copy each group, most specific
	 * first. */
	for (size_t i = 0; i < n;) {
		size_t j = i;
		struct svc_service *v = owner[i];

		while (j < n && owner[j] == v)
			j++;
		qsort(&all[i], j - i, sizeof *all, rule_cmp);
		v->rules = arena_memdup(&L->tmp, &all[i],
		                        (j - i) * sizeof *all);
		if (!v->rules) {
			rc = -ENOMEM;
			goto out;
		}
		v->n_rules = j - i;
		for (size_t k = i; k < j; k++)
			if (all[k].kind != SVC_RULE_CIDR)
				v->has_geo_rules = true;
		i = j;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	sqlite3_finalize(tt);
	free(all);
	free(owner);
	return rc;
}

/* Packs flat[lo, hi) into out[lo, hi) (svc_pack); rc -ENOMEM when one
 * could not be. One packing thread. */
struct pack_job {
	const struct svc_service *flat;
	struct svc_service **out;
	size_t lo, hi;
	int rc;
};

static void *pack_range(void *arg)
{
	struct pack_job *j = arg;

	for (size_t i = j->lo; i < j->hi; i++)
		if (!(j->out[i] = svc_pack(&j->flat[i]))) {
			j->rc = -ENOMEM;
			break;
		}
	return NULL;
}

/* Packs every loaded service into its own block, on two threads when
 * there are many (the blocks are the same either way: each is made
 * from its own flat service alone), then puts them into the set in id
 * order on this thread. */
static int pack_all(struct loader *L)
{
	struct svc_service **out;
	struct pack_job job[2] = {
		{ L->flat, NULL, 0, L->n, 0 },
		{ L->flat, NULL, L->n, L->n, 0 },
	};
	unsigned threads = L->threads ? L->threads :
	                   L->n >= SVC_LOAD_THREADS_FROM ? 2 : 1;
	pthread_t t;
	bool started = false;
	size_t i = 0;
	int rc = 0;

	if (!L->n)
		return 0;
	if (!(out = calloc(L->n, sizeof *out)))
		return -ENOMEM;
	job[0].out = job[1].out = out;
	if (threads > 1) {
		job[0].hi = job[1].lo = L->n / 2;
		started = pthread_create(&t, NULL, pack_range, &job[1]) == 0;
	}
	pack_range(&job[0]);
	if (started)
		pthread_join(t, NULL);
	else
		pack_range(&job[1]);
	if (job[0].rc < 0 || job[1].rc < 0) {
		rc = -ENOMEM;
		goto out;
	}
	for (; i < L->n; i++) {
		/* The hash slots of the services a few puts ahead. */
		if (i + 8 < L->n)
			svc_prefetch(L->s, out[i + 8]->hash, 0);
		rc = svc_set_put(L->s, out[i]);
		out[i] = NULL;  /* the set's, or freed by svc_set_put */
		if (rc < 0)
			goto out;
	}
out:
	for (size_t k = 0; k < L->n; k++)
		svc_unref(out[k]);
	free(out);
	return rc;
}

/* Reads the rows (all, or those changed since L->since) and packs the
 * services into L->s. Inside a read transaction. */
static int load_all(struct store *db, struct loader *L)
{
	int rc;

	arena_init(&L->tmp);
	if ((rc = load_services(L)) < 0 || (rc = load_endpoints(L)) < 0 ||
	    (rc = load_rules(L)) < 0 || (rc = pack_all(L)) < 0)
		goto out;
	rc = shift_load(db, L->s, L->err, L->errlen);
out:
	free(L->eps);
	L->eps = NULL;
	arena_fini(&L->tmp);
	return rc;
}

int svc_load(struct store *db, struct svc_set **out, char *err, size_t errlen)
{
	return svc_load_threads(db, 0, out, err, errlen);
}

int svc_load_threads(struct store *db, unsigned threads, struct svc_set **out,
                     char *err, size_t errlen)
{
	sqlite3 *h = db->h;
	struct loader L = { .h = h, .err = err, .errlen = errlen, .since = -1,
	                    .threads = threads };
	long long services;
	int rc;

	*out = NULL;
	if (store_begin(h, false) < 0)
		return ld_fail(&L, "begin");
	services = count_rows(&L, "SELECT count(*) FROM services");
	if (!(L.s = svc_set_new(services > 0 ? (size_t)services : 0))) {
		rc = -ENOMEM;
		goto out;
	}
	if ((L.s->version = cfg_version_of(h)) < 0) {
		rc = ld_fail(&L, "store_version");
		goto out;
	}
	/* Read inside the transaction: the counter of the snapshot read. */
	L.s->data_version = store_data_version(db);
	if ((rc = load_all(db, &L)) < 0 || (rc = svc_spill_index(L.s)) < 0)
		goto out;
	*out = L.s;
	L.s = NULL;
out:
	store_rollback(h);      /* read transaction: nothing to keep */
	if (rc == -ENOMEM && err && errlen)
		snprintf(err, errlen, "db: out of memory");
	svc_set_free(L.s);
	return rc;
}

/* The names of the services changed since version since, up to version
 * to, after checking that the log holds every version in between.
 * -ESTALE when it does not. */
static int changed_names(struct loader *L, long long since, long long to,
                         char ***names, size_t *n)
{
	sqlite3_stmt *st = NULL;
	char **out = NULL;
	size_t cap = 0, k = 0;
	int rc = -ESTALE, step;

	if (sqlite3_prepare_v2(L->h, "SELECT count(DISTINCT version) FROM "
	                       "changes WHERE version > ?1 AND version <= ?2",
	                       -1, &st, NULL) != SQLITE_OK)
		return ld_fail(L, "changes");
	sqlite3_bind_int64(st, 1, since);
	sqlite3_bind_int64(st, 2, to);
	if (sqlite3_step(st) != SQLITE_ROW ||
	    sqlite3_column_int64(st, 0) != to - since)
		goto out;       /* pruned, or versions without a log */
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(L->h, "SELECT DISTINCT service FROM changes "
	                       "WHERE version > ?1 AND version <= ?2", -1, &st,
	                       NULL) != SQLITE_OK) {
		st = NULL;
		rc = ld_fail(L, "changes");
		goto out;
	}
	sqlite3_bind_int64(st, 1, since);
	sqlite3_bind_int64(st, 2, to);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		const char *t = col_text(st, 0);

		if (!t)
			goto out;
		if (k == cap) {
			char **nn = realloc(out, (cap = cap ? 2 * cap : 16) *
			                    sizeof *nn);

			if (!nn) {
				rc = -ENOMEM;
				goto out;
			}
			out = nn;
		}
		if (!(out[k] = strdup(t))) {
			rc = -ENOMEM;
			goto out;
		}
		k++;
	}
	if (step != SQLITE_DONE) {
		rc = ld_fail(L, "changes");
		goto out;
	}
	*names = out;
	*n = k;
	out = NULL;
	k = 0;
	rc = 0;
out:
	sqlite3_finalize(st);
	svc_names_free(out, k);
	return rc;
}

void svc_names_free(char **names, size_t n)
{
	for (size_t i = 0; names && i < n; i++)
		free(names[i]);
	free(names);
}

int svc_load_since(struct store *db, const struct svc_set *base,
                   struct svc_set **out, char ***names, size_t *n_names,
                   long long *data_version, char *err, size_t errlen)
{
	sqlite3 *h = db->h;
	struct loader L = { .h = h, .err = err, .errlen = errlen,
	                    .since = base->version };
	struct svc_set *s = NULL;
	long long now;
	bool spill = false;
	int rc;

	*out = NULL;
	*names = NULL;
	*n_names = 0;
	if (base->version < 0 || base->n_problems)
		return -ESTALE;
	if (store_begin(h, false) < 0)
		return ld_fail(&L, "begin");
	if ((now = cfg_version_of(h)) < 0) {
		rc = ld_fail(&L, "store_version");
		goto out;
	}
	*data_version = store_data_version(db);
	if (now == base->version) {
		rc = 0;         /* nothing configured changed */
		goto out;
	}
	if (now < base->version) {
		rc = -ESTALE;   /* another store, or one restored from a copy */
		goto out;
	}
	if ((rc = changed_names(&L, base->version, now, names, n_names)) < 0)
		goto out;
	/* Far-reaching changes: one pass over everything is cheaper. */
	if (*n_names > 1024 && *n_names > base->n / 4) {
		rc = -ESTALE;
		goto out;
	}
	/* The changed services as they are now, then put into a clone of
	 * base (the names missing from the store are removed). */
	if (!(L.s = svc_set_new(*n_names)) || !(s = svc_set_clone(base))) {
		rc = -ENOMEM;
		goto out;
	}
	/* Rows written behind the change log may have appeared since. */
	if ((rc = load_all(db, &L)) < 0)
		goto out;
	if (L.s->n_problems) {
		rc = -ESTALE;   /* a full load records and reports them */
		goto out;
	}
	for (size_t i = 0; i < *n_names; i++) {
		uint8_t wire[SVC_NAME_MAX];
		char text[256];
		const char *why;
		int len = svc_name_parse((*names)[i], wire, text, &why);
		const struct svc_service *nv;

		if (len < 0)
			continue;
		nv = svc_find(L.s, wire, (size_t)len);
		if (nv) {
			struct svc_service *v = (struct svc_service *)nv;

			v->refs++;      /* one for s, one stays with L.s */
			rc = svc_set_put(s, v);
		} else {
			rc = svc_set_del(s, wire, (size_t)len);
		}
		if (rc < 0)
			goto out;
	}
	/* The spill index lists positions of the whole set: made again
	 * when spill services are (or were) involved. */
	for (size_t i = 0; !spill && i < L.s->n_pos; i++)
		spill = svc_at(L.s, i) && svc_at(L.s, i)->spill;
	if ((spill || base->n_spill) && (rc = svc_spill_index(s)) < 0)
		goto out;
	rc = 0;
	s->version = now;
	s->data_version = *data_version;
	*out = s;
	s = NULL;
out:
	store_rollback(h);
	if (rc < 0) {
		svc_names_free(*names, *n_names);
		*names = NULL;
		*n_names = 0;
	}
	if (rc == -ENOMEM && err && errlen)
		snprintf(err, errlen, "db: out of memory");
	if (rc == -ESTALE && err && errlen)
		snprintf(err, errlen, "db: the change log cannot say what "
		         "changed since version %lld", base->version);
	svc_set_free(L.s);
	svc_set_free(s);
	return rc;
}

int svc_load_path(const char *path, struct svc_set **out, char *err,
                  size_t errlen)
{
	struct store *h = NULL;
	int rc = store_open(path, STORE_RDONLY, &h, err, errlen);

	if (rc < 0)
		return rc;
	rc = svc_load(h, out, err, errlen);
	store_close(h);
	return rc;
}
