/* db/svc.c - the service set: loading from SQLite (load time) and the
 * policy engine (query path). See db/svc.h for the contracts.
 *
 * Design note. svc_load() reads the configuration tables in one read
 * transaction, validates every row again (the schema's CHECKs can be
 * bypassed by hand edits or old files), and builds one arena: services in
 * id order, each with its endpoints (id order) and rules (most specific
 * first), plus an open hash on the wire name. Health is not part of the
 * set: svc_select() reads the caller's struct hstate_view, indexed by
 * endpoint id, so a health change never rebuilds the set.
 *
 * svc_select() works on a fixed-size stack array of SVC_MAX_ENDPOINTS
 * flags and scores: no allocation, no locks, no logging. */
#include "db/svc.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/store.h"
#include "geo/geo.h"

/* ---------------------------------------------------------------- names */

static const char *const policy_names[SVC_NPOLICIES] = {
	"failover", "weighted", "geo", "latency", "all", "roundrobin",
};
static const char *const admin_names[] = { "auto", "up", "down" };

const char *svc_policy_name(unsigned p)
{
	return p < SVC_NPOLICIES ? policy_names[p] : "?";
}

int svc_policy_parse(const char *s)
{
	for (unsigned i = 0; i < SVC_NPOLICIES; i++)
		if (strcmp(s, policy_names[i]) == 0)
			return (int)i;
	return -EINVAL;
}

const char *svc_admin_name(unsigned a)
{
	return a < 3 ? admin_names[a] : "?";
}

int svc_admin_parse(const char *s)
{
	for (unsigned i = 0; i < 3; i++)
		if (strcmp(s, admin_names[i]) == 0)
			return (int)i;
	return -EINVAL;
}

unsigned svc_default_answers(unsigned policy)
{
	switch (policy) {
	case SVC_ALL: return 8;
	case SVC_RR:  return SVC_MAX_ANSWERS;
	default:      return 1;
	}
}

int svc_name_parse(const char *in, uint8_t *wire, char *text,
                   const char **why)
{
	size_t inlen = strlen(in), w = 0, t = 0;
	const char *p = in, *end;
	bool last_numeric = false;

	if (inlen == 0 || strcmp(in, ".") == 0) {
		*why = "empty name";
		return -EINVAL;
	}
	if (in[inlen - 1] == '.')
		inlen--;
	end = in + inlen;
	while (p < end) {
		const char *dot = memchr(p, '.', (size_t)(end - p));
		size_t len = (size_t)((dot ? dot : end) - p);
		bool digits = true;

		if (len == 0) {
			*why = "empty label";
			return -EINVAL;
		}
		if (len > 63) {
			*why = "label longer than 63 octets";
			return -EINVAL;
		}
		if (w + 1 + len + 1 > SVC_NAME_MAX) {
			*why = "name longer than 255 octets";
			return -EINVAL;
		}
		if (p[0] == '-' || p[len - 1] == '-') {
			*why = "label starts or ends with '-'";
			return -EINVAL;
		}
		wire[w++] = (uint8_t)len;
		for (size_t i = 0; i < len; i++) {
			unsigned char ch = (unsigned char)p[i];

			if (!isalnum(ch) && ch != '-' && ch != '_') {
				*why = "bad character (letters, digits, '-', "
				       "'_' only)";
				return -EINVAL;
			}
			if (!isdigit(ch))
				digits = false;
			ch = (unsigned char)tolower(ch);
			wire[w++] = ch;
			text[t++] = (char)ch;
		}
		text[t++] = '.';
		last_numeric = digits;
		p += len + 1;
	}
	if (last_numeric) {
		*why = "all-numeric top-level label";
		return -EINVAL;
	}
	wire[w++] = 0;
	text[t] = '\0';
	return (int)w;
}

int svc_target_parse(const char *in, uint16_t *type, uint8_t *rdata,
                     char *text, const char **why)
{
	struct in_addr a4;
	struct in6_addr a6;
	size_t len = strlen(in);
	int rc;

	if (inet_pton(AF_INET, in, &a4) == 1) {
		*type = SVC_T_A;
		memcpy(rdata, &a4, 4);
		inet_ntop(AF_INET, &a4, text, 256);
		return 4;
	}
	if (inet_pton(AF_INET6, in, &a6) == 1) {
		*type = SVC_T_AAAA;
		memcpy(rdata, &a6, 16);
		inet_ntop(AF_INET6, &a6, text, 256);
		return 16;
	}
	if (len == 0 || in[len - 1] != '.' || strcmp(in, ".") == 0) {
		*why = "not an IPv4/IPv6 address or a domain name ending in '.'";
		return -EINVAL;
	}
	if ((rc = svc_name_parse(in, rdata, text, why)) < 0)
		return rc;
	*type = SVC_T_CNAME;
	return rc;
}

/* ------------------------------------------------------------- hashing */

static uint32_t hash_wire(const uint8_t *p, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

static uint64_t hash64(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211ull;
	return h;
}

/* splitmix64 finalizer: spreads a combined key over all 64 bits. */
static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

uint32_t svc_hash(const uint8_t *wire_lower, size_t len)
{
	return hash_wire(wire_lower, len);
}

bool svc_prefetch(const struct svc_set *s, uint32_t h, int stage)
{
	const uint32_t *slot;

	if (!s || s->n == 0)
		return false;
	slot = &s->slot[h & s->mask];
	if (stage == 0) {
		__builtin_prefetch(slot);
	} else if (*slot) {
		const struct svc_service *v = &s->svcs[*slot - 1];

		__builtin_prefetch(v);
		__builtin_prefetch(v->wire);
	} else {
		return false;
	}
	return true;
}

const struct svc_service *svc_find(const struct svc_set *s,
                                   const uint8_t *wire_lower, size_t len)
{
	uint32_t i;

	if (!s || s->n == 0)
		return NULL;
	i = s->slot[hash_wire(wire_lower, len) & s->mask];
	while (i) {
		const struct svc_service *v = &s->svcs[i - 1];

		if (v->wire_len == len && memcmp(v->wire, wire_lower, len) == 0)
			return v;
		i = v->next;
	}
	return NULL;
}

const struct svc_service *svc_find_text(const struct svc_set *s,
                                        const char *name)
{
	uint8_t wire[SVC_NAME_MAX];
	char text[256];
	const char *why;
	int n = svc_name_parse(name, wire, text, &why);

	return n < 0 ? NULL : svc_find(s, wire, (size_t)n);
}

/* ------------------------------------------------------------- loading */

int svc_problem_add(struct svc_set *s, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	char *p;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (s->n_problems == s->cap_problems) {
		size_t cap = s->cap_problems ? 2 * s->cap_problems : 16;
		const char **np = arena_alloc(&s->arena, cap * sizeof *np);

		if (!np)
			return -ENOMEM;
		if (s->n_problems)
			memcpy(np, s->problems, s->n_problems * sizeof *np);
		s->problems = np;
		s->cap_problems = cap;
	}
	if (!(p = arena_strdup(&s->arena, buf)))
		return -ENOMEM;
	s->problems[s->n_problems++] = p;
	return 0;
}

void svc_set_free(struct svc_set *s)
{
	if (!s)
		return;
	arena_fini(&s->arena);
	free(s);
}

/* Column helpers: the type must be what the schema says. */
static bool col_int(sqlite3_stmt *st, int i, long long lo, long long hi,
                    long long *v)
{
	if (sqlite3_column_type(st, i) != SQLITE_INTEGER)
		return false;
	*v = sqlite3_column_int64(st, i);
	return *v >= lo && *v <= hi;
}

static bool col_null(sqlite3_stmt *st, int i)
{
	return sqlite3_column_type(st, i) == SQLITE_NULL;
}

static bool col_real(sqlite3_stmt *st, int i, double *v)
{
	int t = sqlite3_column_type(st, i);

	if (t != SQLITE_INTEGER && t != SQLITE_FLOAT)
		return false;
	*v = sqlite3_column_double(st, i);
	return isfinite(*v);
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

struct loader {
	sqlite3 *h;
	struct svc_set *s;
	int rc;                 /* first hard error */
	char *err;
	size_t errlen;
};

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

	if (sqlite3_prepare_v2(L->h, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

static struct svc_service *svc_by_id(struct svc_set *s, long long id)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (s->svcs[mid].id == id)
			return &s->svcs[mid];
		if (s->svcs[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* One service row into *v. 1 = kept, 0 = skipped (problem recorded),
 * negative = hard error. */
static int load_service(struct loader *L, sqlite3_stmt *st,
                        struct svc_service *v)
{
	struct arena *a = &L->s->arena;
	long long id = sqlite3_column_int64(st, 0), x;
	const char *name = col_text(st, 1), *pol = col_text(st, 2);
	const char *wd = col_text(st, 6), *why;
	uint8_t wire[SVC_NAME_MAX];
	char text[256];
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
	if (svc_find(L->s, wire, (size_t)n)) {
		PROBLEM(L, "db: service id %lld: duplicate name %s", id, text);
		return 0;
	}
	if (!pol || (p = svc_policy_parse(pol)) < 0) {
		PROBLEM(L, "db: service id %lld (%s): unknown policy '%s'", id,
		        text, pol ? pol : "(not text)");
		return 0;
	}
	v->policy = (uint8_t)p;
	if (!col_int(st, 3, 0, INT32_MAX, &x)) {
		PROBLEM(L, "db: service id %lld (%s): ttl %s outside "
		        "0..2147483647", id, text, sqlite3_column_text(st, 3));
		return 0;
	}
	v->ttl = (uint32_t)x;
	v->answers = svc_default_answers(v->policy);
	if (!col_null(st, 4)) {
		if (!col_int(st, 4, 1, SVC_MAX_ANSWERS, &x)) {
			PROBLEM(L, "db: service id %lld (%s): answers %s "
			        "outside 1..%d", id, text,
			        sqlite3_column_text(st, 4), SVC_MAX_ANSWERS);
			return 0;
		}
		v->answers = (unsigned)x;
		v->answers_set = true;
	}
	if (!col_int(st, 5, 0, 1, &x)) {
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
	v->name = arena_strdup(a, text);
	v->wire = arena_memdup(a, wire, (size_t)n);
	v->wire_len = (size_t)n;
	if (!v->name || !v->wire)
		return -ENOMEM;
	return 1;
}

static void hash_insert(struct svc_set *s, size_t idx)
{
	struct svc_service *v = &s->svcs[idx];
	uint32_t *slot = &s->slot[hash_wire(v->wire, v->wire_len) & s->mask];

	v->next = *slot;
	*slot = (uint32_t)idx + 1;
}

static int load_services(struct loader *L)
{
	struct svc_set *s = L->s;
	sqlite3_stmt *st = NULL;
	long long total = count_rows(L, "SELECT count(*) FROM services");
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
	s->svcs = arena_calloc(&s->arena,
	                       (size_t)(total ? total : 1) * sizeof *s->svcs);
	s->slot = arena_calloc(&s->arena, slots * sizeof *s->slot);
	if (!s->svcs || !s->slot)
		return -ENOMEM;
	s->mask = slots - 1;
	if (sqlite3_prepare_v2(L->h, "SELECT id, name, policy, ttl, answers, "
	                       "sticky, when_down FROM services ORDER BY id",
	                       -1, &st, NULL) != SQLITE_OK)
		return ld_fail(L, "services");
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if ((long long)s->n >= total)
			break;  /* the cap above (rows cannot appear mid-read) */
		rc = load_service(L, st, &s->svcs[s->n]);
		if (rc < 0)
			goto out;
		if (rc == 1) {
			hash_insert(s, s->n);
			s->n++;
		}
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
	struct arena *a = &L->s->arena;
	long long id = sqlite3_column_int64(st, 0), x;
	const char *target = col_text(st, 2), *region, *adm, *why;
	uint8_t rd[SVC_NAME_MAX];
	char tt[256];
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
	if (!col_int(st, 3, 0, 65535, &x)) {
		PROBLEM(L, "db: endpoint id %lld (service %s): weight %s "
		        "outside 0..65535", id, v->name,
		        sqlite3_column_text(st, 3));
		return 0;
	}
	e->weight = (uint32_t)x;
	if (!col_int(st, 4, 0, 65535, &x)) {
		PROBLEM(L, "db: endpoint id %lld (service %s): priority %s "
		        "outside 0..65535", id, v->name,
		        sqlite3_column_text(st, 4));
		return 0;
	}
	e->priority = (uint32_t)x;
	region = col_text(st, 5);
	if (!col_null(st, 6) || !col_null(st, 7)) {
		if (!col_real(st, 6, &e->lat) || e->lat < -90 || e->lat > 90) {
			PROBLEM(L, "db: endpoint id %lld (service %s): "
			        "latitude %s outside -90..90", id, v->name,
			        sqlite3_column_text(st, 6));
			return 0;
		}
		if (!col_real(st, 7, &e->lon) || e->lon < -180 ||
		    e->lon > 180) {
			PROBLEM(L, "db: endpoint id %lld (service %s): "
			        "longitude %s outside -180..180", id, v->name,
			        sqlite3_column_text(st, 7));
			return 0;
		}
		e->has_loc = true;
		geo_unit_vector(e->lat, e->lon, e->v);
	}
	if (!col_real(st, 8, &e->bias) || e->bias < -99 || e->bias > 99) {
		PROBLEM(L, "db: endpoint id %lld (service %s): bias %s outside "
		        "-99..99", id, v->name, sqlite3_column_text(st, 8));
		return 0;
	}
	adm = col_text(st, 9);
	if (!adm || (ad = svc_admin_parse(adm)) < 0) {
		PROBLEM(L, "db: endpoint id %lld (service %s): admin '%s' is "
		        "not auto|up|down", id, v->name, adm ? adm : "");
		return 0;
	}
	e->admin = (uint8_t)ad;
	if (!col_int(st, 10, 0, 1, &x)) {
		PROBLEM(L, "db: endpoint id %lld (service %s): drained must be "
		        "0 or 1", id, v->name);
		return 0;
	}
	e->drained = x;
	e->has_check = !col_null(st, 11);
	if (target_keep(a, &e->t, type, rd, len, tt) < 0)
		return -ENOMEM;
	e->region = arena_strdup(a, region ? region : "");
	if (!e->region)
		return -ENOMEM;
	e->key = hash64(tt, strlen(tt));
	return 1;
}

static int load_endpoints(struct loader *L)
{
	struct svc_set *s = L->s;
	sqlite3_stmt *st = NULL;
	struct svc_endpoint *tmp = NULL;
	struct svc_service *cur = NULL;
	size_t ntmp = 0;
	int rc = 0, step;

	tmp = malloc(SVC_MAX_ENDPOINTS * sizeof *tmp);
	if (!tmp)
		return -ENOMEM;
	if (sqlite3_prepare_v2(L->h, "SELECT id, service_id, target, weight, "
	                       "priority, region, lat, lon, bias, admin, "
	                       "drained, check_url FROM endpoints "
	                       "ORDER BY service_id, id", -1, &st, NULL)
	    != SQLITE_OK) {
		rc = ld_fail(L, "endpoints");
		goto out;
	}
	/* Rows come grouped by service: collect one group, then copy it. */
	for (;;) {
		struct svc_service *v = NULL;

		step = sqlite3_step(st);
		if (step == SQLITE_ROW)
			v = svc_by_id(s, sqlite3_column_int64(st, 1));
		if (cur && (step != SQLITE_ROW || v != cur)) {
			cur->eps = arena_memdup(&s->arena, tmp,
			                        ntmp * sizeof *tmp);
			if (ntmp && !cur->eps) {
				rc = -ENOMEM;
				goto out;
			}
			cur->n_eps = ntmp;
			ntmp = 0;
			cur = NULL;
		}
		if (step != SQLITE_ROW)
			break;
		if (!v)
			continue;       /* its service was skipped */
		cur = v;
		if (v->n_eps || ntmp == SVC_MAX_ENDPOINTS) {
			/* v->n_eps set: rows of v not contiguous (cannot
			 * happen with ORDER BY); else too many. */
			rc = svc_problem_add(s, "db: endpoint id %lld (service "
			        "%s): more than %d endpoints, skipped",
			        (long long)sqlite3_column_int64(st, 0), v->name,
			        SVC_MAX_ENDPOINTS);
			if (rc < 0)
				goto out;
			continue;
		}
		rc = load_endpoint(L, st, v, &tmp[ntmp]);
		if (rc < 0)
			goto out;
		if (rc == 1) {
			if (tmp[ntmp].id > s->max_endpoint_id)
				s->max_endpoint_id = tmp[ntmp].id;
			if (tmp[ntmp].bias != 0)
				v->any_bias = true;
			ntmp++;
		}
		rc = 0;
	}
	if (step != SQLITE_DONE)
		rc = ld_fail(L, "endpoints");
	/* Endpoint pointers to their service are final only now. */
	for (size_t i = 0; i < s->n; i++)
		for (size_t j = 0; j < s->svcs[i].n_eps; j++)
			s->svcs[i].eps[j].svc = &s->svcs[i];
out:
	sqlite3_finalize(st);
	free(tmp);
	return rc;
}

static int ep_index(const struct svc_service *v, long long id)
{
	size_t lo = 0, hi = v->n_eps;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (v->eps[mid].id == id)
			return (int)mid;
		if (v->eps[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
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
		if (geo_parse_cidr(pat, &r->net, &r->plen) < 0) {
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
	long long nr = count_rows(L, "SELECT count(*) FROM rules");
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
	if (sqlite3_prepare_v2(L->h, "SELECT id, service_id, kind, pattern "
	                       "FROM rules ORDER BY service_id, id", -1, &st,
	                       NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(L->h, "SELECT endpoint_id FROM rule_targets "
	                       "WHERE rule_id = ? ORDER BY endpoint_id", -1,
	                       &tt, NULL) != SQLITE_OK) {
		rc = ld_fail(L, "rules");
		goto out;
	}
	while ((step = sqlite3_step(st)) == SQLITE_ROW && (long long)n < nr) {
		long long id = sqlite3_column_int64(st, 0);
		struct svc_service *v = svc_by_id(s, sqlite3_column_int64(st, 1));
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
		r->text = arena_strdup(&s->arena, pat);
		r->eps = arena_memdup(&s->arena, idx, k * sizeof *idx);
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
		v->rules = arena_memdup(&s->arena, &all[i],
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

int svc_load(sqlite3 *h, struct svc_set **out, char *err, size_t errlen)
{
	struct loader L = { .h = h, .err = err, .errlen = errlen };
	struct svc_set *s;
	int rc;

	*out = NULL;
	if (!(s = calloc(1, sizeof *s)))
		return -ENOMEM;
	arena_init(&s->arena);
	L.s = s;
	if (store_begin(h, false) < 0) {
		rc = ld_fail(&L, "begin");
		goto out;
	}
	if ((rc = load_services(&L)) < 0 || (rc = load_endpoints(&L)) < 0 ||
	    (rc = load_rules(&L)) < 0)
		goto out;
	*out = s;
	s = NULL;
out:
	store_rollback(h);      /* read transaction: nothing to keep */
	if (rc == -ENOMEM && err && errlen)
		snprintf(err, errlen, "db: out of memory");
	svc_set_free(s);
	return rc;
}

int svc_load_path(const char *path, struct svc_set **out, char *err,
                  size_t errlen)
{
	sqlite3 *h = NULL;
	int rc = store_open(path, STORE_RDONLY, &h, err, errlen);

	if (rc < 0)
		return rc;
	rc = svc_load(h, out, err, errlen);
	store_close(h);
	return rc;
}

/* ----------------------------------------------------------- selection */

static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* (0, 1) from 53 random bits. */
static double unit_open(uint64_t x)
{
	return ((double)(x >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static unsigned common_prefix(const struct in6_addr *a,
                              const struct in6_addr *b)
{
	unsigned n = 0;

	for (int i = 0; i < 16; i++) {
		uint8_t x = a->s6_addr[i] ^ b->s6_addr[i];

		if (x == 0) {
			n += 8;
			continue;
		}
		while (!(x & 0x80)) {
			n++;
			x <<= 1;
		}
		break;
	}
	return n;
}

/* A client that disclosed no address bits (ECS source prefix 0, RFC 7871
 * 7.1.2): CIDR rules do not apply and the answer's scope is 0. */
static bool anonymous(const struct svc_client *c)
{
	return c->src_plen == 0 ||
	       (c->src_plen <= 96 && IN6_IS_ADDR_V4MAPPED(&c->addr));
}

static bool rule_matches(const struct svc_rule *r, const struct svc_client *c)
{
	switch (r->kind) {
	case SVC_RULE_CIDR:
		return !anonymous(c) &&
		       common_prefix(&r->net, &c->addr) >= r->plen;
	case SVC_RULE_COUNTRY:
		return c->country[0] && strcmp(c->country, r->code) == 0;
	default:
		return c->continent[0] && strcmp(c->continent, r->code) == 0;
	}
}

/* Route 53 geoproximity bias: positive bias shrinks the distance
 * (d x (1 - b/100)), negative grows it (d / (1 + b/100)). */
static double biased(double d, double bias)
{
	return bias >= 0 ? d * (1 - bias / 100) : d / (1 + bias / 100);
}

struct sel {
	const struct svc_service *s;
	const struct svc_client *c;
	const struct hstate_view *hv;
	struct svc_why *why;
	uint16_t idx[SVC_MAX_ENDPOINTS];   /* chosen set, then the answer */
	size_t n;
	double key[SVC_MAX_ENDPOINTS];     /* sort key per endpoint index */
	double cv[3];                      /* client vector if made here */
};

static void why_reason(struct sel *S, size_t i, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void why_reason(struct sel *S, size_t i, const char *fmt, ...)
{
	va_list ap;

	if (!S->why || i >= S->why->cap)
		return;
	va_start(ap, fmt);
	vsnprintf(S->why->ep[i].reason, sizeof S->why->ep[i].reason, fmt, ap);
	va_end(ap);
}

/* Sorts idx[0..n) by key ascending, ties by endpoint order (insertion
 * sort: n is small and this must not allocate). */
static void sort_by_key(struct sel *S, uint16_t *idx, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		uint16_t v = idx[i];
		size_t j = i;

		while (j > 0 && (S->key[idx[j - 1]] > S->key[v] ||
		                 (S->key[idx[j - 1]] == S->key[v] &&
		                  idx[j - 1] > v))) {
			idx[j] = idx[j - 1];
			j--;
		}
		idx[j] = v;
	}
}

static void pick_failover(struct sel *S)
{
	uint32_t best = UINT32_MAX;
	size_t k = 0;

	for (size_t i = 0; i < S->n; i++)
		if (S->s->eps[S->idx[i]].priority < best)
			best = S->s->eps[S->idx[i]].priority;
	for (size_t i = 0; i < S->n; i++) {
		const struct svc_endpoint *e = &S->s->eps[S->idx[i]];

		why_reason(S, S->idx[i], "priority %u (best %u)", e->priority,
		           best);
		if (e->priority == best && k < S->s->answers)
			S->idx[k++] = S->idx[i];
	}
	S->n = k;
}

static void pick_weighted(struct sel *S, uint64_t *rng)
{
	bool any_pos = false;
	double total = 0;
	size_t m = S->n, k = 0;
	uint64_t subnet = 0;

	for (size_t i = 0; i < m; i++)
		any_pos |= S->s->eps[S->idx[i]].weight > 0;
	/* Weight 0 is used only when no positive weight is available; then
	 * they share equally. Drop them first so that neither a rounding
	 * remainder nor a second answer can pick one. */
	if (any_pos) {
		size_t k0 = 0;

		for (size_t i = 0; i < m; i++) {
			if (S->s->eps[S->idx[i]].weight > 0)
				S->idx[k0++] = S->idx[i];
			else
				why_reason(S, S->idx[i], "weight 0 (only when "
				           "no positive weight is up)");
		}
		m = S->n = k0;
	}
	for (size_t i = 0; i < m; i++) {
		const struct svc_endpoint *e = &S->s->eps[S->idx[i]];

		S->key[S->idx[i]] = any_pos ? e->weight : 1;
		total += S->key[S->idx[i]];
	}
	for (size_t i = 0; i < m; i++) {
		const struct svc_endpoint *e = &S->s->eps[S->idx[i]];

		why_reason(S, S->idx[i], "weight %u (%.1f%% share%s)",
		           e->weight, 100 * S->key[S->idx[i]] / total,
		           any_pos ? "" : ", no positive weight up");
	}
	if (S->s->sticky) {
		struct in6_addr net = S->c->addr;
		unsigned pl = S->c->src_plen > 128 ? 128 : S->c->src_plen;

		for (unsigned b = pl; b < 128; b++)
			net.s6_addr[b / 8] &= (uint8_t)~(0x80u >> (b % 8));
		subnet = hash64(&net, sizeof net) ^ pl;
	}
	while (k < S->s->answers && k < m) {
		size_t best = k;

		if (S->s->sticky) {
			/* Weighted rendezvous hashing: score w / -ln(u) with
			 * u from hash(subnet, endpoint). Removing an
			 * endpoint only moves the subnets it won. */
			double bs = -1;

			for (size_t i = k; i < m; i++) {
				const struct svc_endpoint *e =
					&S->s->eps[S->idx[i]];
				double w = S->key[S->idx[i]];
				double u = unit_open(mix64(subnet ^ e->key));
				double sc = w > 0 ? w / -log(u) : 0;

				if (sc > bs) {
					bs = sc;
					best = i;
				}
			}
		} else {
			double r = unit_open(rng_next(rng)) * total, acc = 0;

			for (size_t i = k; i < m; i++) {
				acc += S->key[S->idx[i]];
				best = i;
				if (r < acc)
					break;
			}
		}
		total -= S->key[S->idx[best]];
		uint16_t t = S->idx[k];
		S->idx[k] = S->idx[best];
		S->idx[best] = t;
		k++;
	}
	S->n = k;
}

static double dot3(const double a[3], const double b[3])
{
	return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

/* The client's unit vector: precomputed by the caller, or made here. */
static const double *client_vec(struct sel *S)
{
	const struct svc_client *c = S->c;

	if (c->v[0] == 0 && c->v[1] == 0 && c->v[2] == 0) {
		geo_unit_vector(c->lat, c->lon, S->cv);
		return S->cv;
	}
	return c->v;
}

/* Geo order: biased distance; without client location or endpoint
 * coordinates an endpoint ranks after every located one, by priority.
 * Without any bias the order of the dot products is the order of the
 * distances, so the query path does no trigonometry at all. */
static void rank_geo(struct sel *S, uint16_t *idx, size_t n)
{
	const double *cv = S->c->has_loc ? client_vec(S) : NULL;

	for (size_t i = 0; i < n; i++) {
		const struct svc_endpoint *e = &S->s->eps[idx[i]];
		double d = -1;

		if (cv && e->has_loc) {
			double dot = dot3(cv, e->v);

			if (S->s->any_bias || S->why)
				d = geo_dot_km(dot);
			/* 1 - dot lies in 0..2, below the 1e9 of "unlocated" */
			S->key[idx[i]] = S->s->any_bias ? biased(d, e->bias) : 1 - dot;
		} else {
			S->key[idx[i]] = 1e9 + e->priority;
		}
		if (S->why && idx[i] < S->why->cap)
			S->why->ep[idx[i]].dist_km = d;
		if (d >= 0)
			why_reason(S, idx[i], "distance %.0f km (biased %.0f "
			           "km, bias %g)", d, biased(d, e->bias), e->bias);
		else
			why_reason(S, idx[i], "%s", !S->c->has_loc ?
			           "no client location" :
			           "endpoint has no coordinates");
	}
	sort_by_key(S, idx, n);
}

static void pick_geo(struct sel *S)
{
	rank_geo(S, S->idx, S->n);
	if (S->n > S->s->answers)
		S->n = S->s->answers;
}

static int nearest_region(struct sel *S)
{
	const struct hstate_view *hv = S->hv;
	double bd = INFINITY;
	int best = -1;

	if (!hv || !S->c->has_loc || !hv->rtt_ms)
		return -1;
	const double *cv = client_vec(S);

	for (size_t r = 0; r < hv->n_regions; r++) {
		const double *rv = hv->regions[r].v;
		double rvb[3], d;

		if (!hv->regions[r].has_coords)
			continue;
		if (rv[0] == 0 && rv[1] == 0 && rv[2] == 0) {
			geo_unit_vector(hv->regions[r].lat, hv->regions[r].lon, rvb);
			rv = rvb;
		}
		d = 1 - dot3(cv, rv);     /* ranks as the distance does */
		if (d < bd) {
			bd = d;
			best = (int)r;
		}
	}
	return best;
}

static void pick_latency(struct sel *S)
{
	const struct hstate_view *hv = S->hv;
	int r = nearest_region(S);
	uint16_t meas[SVC_MAX_ENDPOINTS], rest[SVC_MAX_ENDPOINTS];
	size_t nm = 0, nr = 0;

	if (S->why)
		S->why->region = r;
	for (size_t i = 0; r >= 0 && i < S->n; i++) {
		const struct svc_endpoint *e = &S->s->eps[S->idx[i]];
		double rtt = e->id < hv->n ?
			hv->rtt_ms[(size_t)r * hv->n + e->id] : -1;

		if (S->why && S->idx[i] < S->why->cap)
			S->why->ep[S->idx[i]].rtt_ms = rtt;
		if (rtt >= 0) {
			S->key[S->idx[i]] = rtt;
			meas[nm++] = S->idx[i];
		} else {
			rest[nr++] = S->idx[i];
		}
	}
	if (nm == 0) {          /* no measurement yet: geo */
		if (S->why)
			snprintf(S->why->note, sizeof S->why->note, "%s",
			         r < 0 ? "latency: no probe region with "
			         "coordinates or no client location; using geo"
			         : "latency: no measurement from the nearest "
			         "region yet; using geo");
		pick_geo(S);
		return;
	}
	sort_by_key(S, meas, nm);
	rank_geo(S, rest, nr);
	for (size_t i = 0; i < nm; i++)
		why_reason(S, meas[i], "rtt %.1f ms from region %s",
		           S->key[meas[i]], hv->regions[r].name);
	for (size_t i = 0; i < nr; i++)
		why_reason(S, rest[i], "no rtt from region %s (ranked after "
		           "measured ones)", hv->regions[r].name);
	S->n = 0;
	for (size_t i = 0; i < nm; i++)
		S->idx[S->n++] = meas[i];
	for (size_t i = 0; i < nr; i++)
		S->idx[S->n++] = rest[i];
	if (S->n > S->s->answers)
		S->n = S->s->answers;
}

static void pick_rr(struct sel *S, uint32_t rr_step)
{
	uint16_t tmp[SVC_MAX_ENDPOINTS];
	size_t n = S->n, k = n < S->s->answers ? n : S->s->answers;
	size_t start = n ? rr_step % n : 0;

	for (size_t i = 0; i < n; i++)
		why_reason(S, S->idx[i], "rotation position %zu of %zu",
		           (i + n - start) % n + 1, n);
	for (size_t i = 0; i < k; i++)
		tmp[i] = S->idx[(start + i) % n];
	memcpy(S->idx, tmp, k * sizeof *tmp);
	S->n = k;
}

/* The longest prefix for which the answer cannot change: see svc.h. */
static unsigned answer_scope(const struct svc_service *s,
                             const struct svc_client *c)
{
	unsigned sc = 0;

	if (anonymous(c))
		return 0;
	if (s->policy == SVC_GEO || s->policy == SVC_LATENCY ||
	    s->has_geo_rules)
		sc = c->geo_plen;
	if (s->policy == SVC_WEIGHTED && s->sticky && c->src_plen > sc)
		sc = c->src_plen;
	for (size_t i = 0; i < s->n_rules; i++) {
		const struct svc_rule *r = &s->rules[i];
		unsigned cp, need;

		if (r->kind != SVC_RULE_CIDR)
			continue;
		cp = common_prefix(&r->net, &c->addr);
		/* Inside the rule: the block must not leave it. Outside: the
		 * block must not reach into it (first differing bit + 1). */
		need = cp >= r->plen ? r->plen : cp + 1;
		if (need > sc)
			sc = need;
	}
	return sc > 128 ? 128 : sc;
}

/* Whether endpoint e can answer a query of type qtype (0: any): an A
 * query takes A and CNAME endpoints, AAAA takes AAAA and CNAME. */
static bool type_fits(const struct svc_endpoint *e, uint16_t qtype)
{
	return qtype == 0 || e->t.type == SVC_T_CNAME || e->t.type == qtype;
}

void svc_select(const struct svc_service *s, const struct svc_client *c,
                const struct hstate_view *hv, uint64_t *rng,
                uint32_t rr_step, struct svc_answer *out,
                struct svc_why *why)
{
	svc_select_type(s, 0, c, hv, rng, rr_step, out, why);
}

void svc_select_type(const struct svc_service *s, uint16_t qtype,
                     const struct svc_client *c,
                     const struct hstate_view *hv, uint64_t *rng,
                     uint32_t rr_step, struct svc_answer *out,
                     struct svc_why *why)
{
	uint8_t ok[SVC_MAX_ENDPOINTS];
	struct sel S;
	size_t n = s->n_eps, cands = 0, fits = 0, usable = 0;
	const struct svc_rule *rule = NULL;

	S.s = s;
	S.c = c;
	S.hv = hv;
	S.why = why;
	S.n = 0;
	out->n = 0;
	out->servfail = false;
	out->scope = 0;
	out->mode = SVC_MODE_NORMAL;
	if (why) {
		why->note[0] = '\0';
		why->region = -1;
	}
	for (size_t i = 0; i < n; i++) {
		const struct svc_endpoint *e = &s->eps[i];
		uint8_t h = HSTATE_UNKNOWN;
		bool healthy;

		if (hv && e->id < hv->n && e->has_check)
			h = hv->state[e->id];
		healthy = e->admin == SVC_ADMIN_UP ||
		          (e->admin == SVC_ADMIN_AUTO &&
		           (!e->has_check || h != HSTATE_DOWN));
		ok[i] = healthy && !e->drained && type_fits(e, qtype);
		cands += ok[i];
		if (e->admin != SVC_ADMIN_DOWN) {
			fits += type_fits(e, qtype);
			usable++;
		}
		if (why && i < why->cap) {
			struct svc_why_ep *w = &why->ep[i];

			w->chosen = false;
			w->healthy = healthy;
			w->health = e->has_check ? h : HSTATE_UP;
			w->in_rotation = !e->drained;
			w->dist_km = -1;
			w->rtt_ms = -1;
			snprintf(w->reason, sizeof w->reason, "%s",
			         !type_fits(e, qtype) ? "other address family" :
			         e->admin == SVC_ADMIN_DOWN ? "forced down" :
			         !healthy ? "unhealthy" :
			         e->drained ? "drained" : "");
		}
	}
	if (qtype && fits == 0 && usable > 0) {
		/* e.g. AAAA at a service of IPv4 endpoints, or whose IPv6 ones
		 * are all forced down: no record of that type exists, which is
		 * NODATA (clients use the other family), not a failure. */
		out->mode = SVC_MODE_EMPTY;
		if (why)
			snprintf(why->note, sizeof why->note, "no endpoint of "
			         "the queried type: no records (NODATA)");
		return;
	}
	if (cands == 0) {
		if (s->when_down == SVC_DOWN_CLOSED || n == 0) {
			out->servfail = true;
			out->mode = n ? SVC_MODE_CLOSED : SVC_MODE_EMPTY;
			if (why)
				snprintf(why->note, sizeof why->note, "%s",
				         n ? "no endpoint healthy and in "
				         "rotation: when-down closed (SERVFAIL)"
				         : "service has no endpoints: "
				         "SERVFAIL");
			return;
		}
		if (s->when_down == SVC_DOWN_TARGET) {
			out->t[0] = &s->fallback;
			out->ep[0] = NULL;
			out->n = 1;
			out->mode = SVC_MODE_FALLBACK;
			if (why)
				snprintf(why->note, sizeof why->note,
				         "no endpoint healthy and in rotation: "
				         "when-down target %s",
				         s->fallback.text);
			return;
		}
		for (size_t i = 0; i < n; i++) {
			ok[i] = s->eps[i].admin != SVC_ADMIN_DOWN &&
			        type_fits(&s->eps[i], qtype);
			cands += ok[i];
		}
		if (cands == 0) {
			out->servfail = true;
			out->mode = SVC_MODE_EMPTY;
			if (why)
				snprintf(why->note, sizeof why->note,
				         "every endpoint is forced down: "
				         "SERVFAIL");
			return;
		}
		out->mode = SVC_MODE_OPEN;
		if (why)
			snprintf(why->note, sizeof why->note, "no endpoint "
			         "healthy and in rotation: failing open");
	}
	/* The most specific matching rule that still has a candidate. */
	for (size_t r = 0; r < s->n_rules && !rule; r++) {
		if (!rule_matches(&s->rules[r], c))
			continue;
		for (size_t j = 0; j < s->rules[r].n_eps; j++)
			if (ok[s->rules[r].eps[j]]) {
				rule = &s->rules[r];
				break;
			}
	}
	if (rule) {
		uint8_t in[SVC_MAX_ENDPOINTS] = { 0 };

		for (size_t j = 0; j < rule->n_eps; j++)
			in[rule->eps[j]] = 1;
		for (size_t i = 0; i < n; i++) {
			if (ok[i] && !in[i]) {
				ok[i] = 0;
				why_reason(&S, i, "not a target of rule %s",
				           rule->text);
			}
		}
		if (why && !why->note[0])
			snprintf(why->note, sizeof why->note, "rule %s "
			         "matched the client", rule->text);
		else if (why)
			snprintf(why->note + strlen(why->note),
			         sizeof why->note - strlen(why->note),
			         "; rule %s matched the client", rule->text);
	}
	for (size_t i = 0; i < n; i++)
		if (ok[i])
			S.idx[S.n++] = (uint16_t)i;
	switch (s->policy) {
	case SVC_FAILOVER: pick_failover(&S); break;
	case SVC_WEIGHTED: pick_weighted(&S, rng); break;
	case SVC_GEO:      pick_geo(&S); break;
	case SVC_LATENCY:  pick_latency(&S); break;
	case SVC_ALL:
		if (S.n > s->answers)
			S.n = s->answers;
		for (size_t i = 0; i < n; i++)
			if (ok[i])
				why_reason(&S, i, "healthy");
		break;
	default:           pick_rr(&S, rr_step); break;
	}
	for (size_t i = 0; i < S.n && i < SVC_MAX_ANSWERS; i++) {
		out->ep[i] = &s->eps[S.idx[i]];
		out->t[i] = &s->eps[S.idx[i]].t;
		out->n++;
		if (why && S.idx[i] < why->cap)
			why->ep[S.idx[i]].chosen = true;
	}
	out->scope = answer_scope(s, c);
}
