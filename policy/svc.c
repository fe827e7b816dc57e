/* policy/svc.c - the policy engine: the immutable service set, its hash
 * index and the selection of each answer (query path). See policy/svc.h
 * for the contracts; db/svc_load.c builds the set from the store.
 *
 * Design note. Health is not part of the set: svc_select() reads the
 * caller's struct hstate_view, indexed by endpoint id, so a health change
 * never rebuilds the set.
 *
 * svc_select() works on a fixed-size stack array of SVC_MAX_ENDPOINTS
 * flags and scores: no allocation, no locks, no logging. */
#include "policy/svc.h"
#include "policy/shift.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"
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
		/* inet_pton takes only the dotted-quad form without leading
		 * zeros, which is what inet_ntop writes: in is the text. */
		memcpy(text, in, len + 1);
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

uint32_t svc_hash(const uint8_t *wire_lower, size_t len)
{
	return hash_fnv32(wire_lower, len);
}

static struct svc_service *slot_get(const struct svc_set *s, size_t i)
{
	return *(struct svc_service *const *)cowvec_at(&s->slot, i);
}

bool svc_prefetch(const struct svc_set *s, uint32_t h, int stage)
{
	const struct svc_service *v;

	if (!s || s->n == 0)
		return false;
	if (stage == 0) {
		__builtin_prefetch(cowvec_at(&s->slot, h & s->mask));
		return true;
	}
	v = slot_get(s, h & s->mask);
	if (!v)
		return false;
	__builtin_prefetch(v);
	__builtin_prefetch(v->wire);
	return true;
}

const struct svc_service *svc_find(const struct svc_set *s,
                                   const uint8_t *wire_lower, size_t len)
{
	uint32_t h;

	if (!s || s->n == 0)
		return NULL;
	h = hash_fnv32(wire_lower, len);
	for (size_t i = h & s->mask;; i = (i + 1) & s->mask) {
		const struct svc_service *v = slot_get(s, i);

		if (!v)
			return NULL;
		if (v->hash == h && v->wire_len == len &&
		    memcmp(v->wire, wire_lower, len) == 0)
			return v;
	}
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

/* ------------------------------------------------- building the set */

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

/* The position vector owns its services: a copied chunk holds them once
 * more, a freed chunk lets them go. */
static void svcs_hold(void *elems, size_t n)
{
	struct svc_service **p = elems;

	for (size_t i = 0; i < n; i++)
		if (p[i])
			p[i]->refs++;
}

static void svcs_drop(void *elems, size_t n)
{
	struct svc_service **p = elems;

	for (size_t i = 0; i < n; i++)
		svc_unref(p[i]);
}

static const struct cowvec_ops svcs_ops = { svcs_hold, svcs_drop };

void svc_unref(struct svc_service *v)
{
	if (v && --v->refs == 0)
		free(v);
}

static int slots_init(struct svc_set *s, size_t hint)
{
	size_t slots = 16;

	while (slots < 2 * (hint + 1))
		slots <<= 1;
	if (slots > (size_t)UINT32_MAX + 1)
		return -ENOMEM;
	cowvec_init(&s->slot, sizeof(struct svc_service *), NULL);
	s->mask = (uint32_t)(slots - 1);
	return cowvec_reserve(&s->slot, slots);
}

struct svc_set *svc_set_new(size_t hint)
{
	struct svc_set *s = calloc(1, sizeof *s);

	if (!s)
		return NULL;
	arena_init(&s->arena);
	cowvec_init(&s->svcs, sizeof(struct svc_service *), &svcs_ops);
	s->version = -1;
	s->data_version = -1;
	if (slots_init(s, hint) < 0) {
		svc_set_free(s);
		return NULL;
	}
	return s;
}

struct svc_set *svc_set_clone(const struct svc_set *base)
{
	struct svc_set *s = calloc(1, sizeof *s);

	if (!s)
		return NULL;
	arena_init(&s->arena);
	cowvec_init(&s->svcs, sizeof(struct svc_service *), &svcs_ops);
	cowvec_init(&s->slot, sizeof(struct svc_service *), NULL);
	if (cowvec_clone(&s->svcs, &base->svcs) < 0 ||
	    cowvec_clone(&s->slot, &base->slot) < 0) {
		svc_set_free(s);
		return NULL;
	}
	s->n = base->n;
	s->n_pos = base->n_pos;
	s->mask = base->mask;
	s->max_endpoint_id = base->max_endpoint_id;
	s->version = -1;
	s->data_version = -1;
	return s;
}

int svc_spill_index(struct svc_set *s)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n_pos; i++) {
		const struct svc_service *v = svc_at(s, i);

		if (v && v->spill)
			n += v->n_eps;
	}
	s->spill = NULL;
	s->n_spill = 0;
	if (n == 0)
		return 0;
	if (!(s->spill = arena_alloc(&s->arena, n * sizeof *s->spill)))
		return -ENOMEM;
	for (size_t i = 0; i < s->n_pos; i++) {
		const struct svc_service *v = svc_at(s, i);

		for (size_t j = 0; v && v->spill && j < v->n_eps; j++)
			s->spill[s->n_spill++] = (struct svc_ref){
				(uint32_t)i, (uint32_t)j };
	}
	return 0;
}

void svc_set_free(struct svc_set *s)
{
	if (!s)
		return;
	cowvec_fini(&s->slot);
	cowvec_fini(&s->svcs);
	arena_fini(&s->arena);
	free(s);
}

/* Bump allocation inside one block, 8-byte aligned. */
struct packer {
	char *p;
	size_t used;
};

static void *pk_take(struct packer *k, const void *src, size_t n)
{
	void *d;

	if (!k->p) {
		k->used += (n + 7) & ~(size_t)7;
		return NULL;
	}
	d = k->p + k->used;
	if (src)
		memcpy(d, src, n);
	k->used += (n + 7) & ~(size_t)7;
	return d;
}

static const char *pk_str(struct packer *k, const char *s)
{
	if (s && !*s)
		return "";      /* shared: most endpoints have no region */
	return s ? pk_take(k, s, strlen(s) + 1) : NULL;
}

static void pk_target(struct packer *k, struct svc_target *d,
                      const struct svc_target *s)
{
	*d = *s;
	d->rdata = s->rdata ? pk_take(k, s->rdata, s->len) : NULL;
	d->text = pk_str(k, s->text);
}

/* Lays src out at k (sizing only when k->p is NULL). */
static struct svc_service *pack_into(struct packer *k,
                                     const struct svc_service *src)
{
	struct svc_service tmp, *v = pk_take(k, NULL, sizeof *v);
	struct svc_endpoint *eps;
	struct svc_rule *rules;

	if (!v)
		v = &tmp;
	*v = *src;
	v->name = pk_str(k, src->name);
	v->wire = pk_take(k, src->wire, src->wire_len);
	pk_target(k, &v->fallback, &src->fallback);
	eps = pk_take(k, src->eps, src->n_eps * sizeof *eps);
	for (size_t i = 0; i < src->n_eps; i++) {
		struct svc_endpoint e = src->eps[i];

		pk_target(k, &e.t, &src->eps[i].t);
		e.region = pk_str(k, src->eps[i].region);
		e.svc = v;
		if (eps)
			eps[i] = e;
	}
	v->eps = src->n_eps ? eps : NULL;
	rules = pk_take(k, src->rules, src->n_rules * sizeof *rules);
	for (size_t i = 0; i < src->n_rules; i++) {
		struct svc_rule r = src->rules[i];

		r.text = pk_str(k, src->rules[i].text);
		r.eps = pk_take(k, src->rules[i].eps,
		                src->rules[i].n_eps * sizeof *r.eps);
		if (rules)
			rules[i] = r;
	}
	v->rules = src->n_rules ? rules : NULL;
	v->hash = hash_fnv32(src->wire, src->wire_len);
	v->refs = 1;
	v->pos = 0;
	return k->p ? (struct svc_service *)(void *)k->p : NULL;
}

struct svc_service *svc_pack(const struct svc_service *src)
{
	struct packer k = { 0 };

	struct svc_service *v;
	size_t size;

	pack_into(&k, src);
	size = k.used;
	k.p = malloc(size);
	if (!k.p)
		return NULL;
	k.used = 0;
	v = pack_into(&k, src);
	v->bytes = size > UINT32_MAX ? UINT32_MAX : (uint32_t)size;
	return v;
}

/* The slot holding the service named wire, or the empty slot where it
 * would go. */
static size_t slot_of(const struct svc_set *s, const uint8_t *wire,
                      size_t len, uint32_t h)
{
	size_t i;

	for (i = h & s->mask;; i = (i + 1) & s->mask) {
		const struct svc_service *v = slot_get(s, i);

		if (!v || (v->hash == h && v->wire_len == len &&
		           memcmp(v->wire, wire, len) == 0))
			return i;
	}
}

static int slot_set(struct svc_set *s, size_t i, struct svc_service *v)
{
	struct svc_service **p = cowvec_mut(&s->slot, i);

	if (!p)
		return -ENOMEM;
	*p = v;
	return 0;
}

/* A name hash twice as large, over every service. */
static int slots_grow(struct svc_set *s)
{
	struct cowvec old = s->slot;
	uint32_t old_mask = s->mask;

	if (slots_init(s, (size_t)(s->mask + 1)) < 0) {
		cowvec_fini(&s->slot);
		s->slot = old;
		s->mask = old_mask;
		return -ENOMEM;
	}
	for (size_t i = 0; i <= old_mask; i++) {
		struct svc_service *v =
			*(struct svc_service *const *)cowvec_at(&old, i);

		if (v && slot_set(s, slot_of(s, v->wire, v->wire_len, v->hash),
		                  v) < 0) {
			cowvec_fini(&s->slot);
			s->slot = old;
			s->mask = old_mask;
			return -ENOMEM;
		}
	}
	cowvec_fini(&old);
	return 0;
}

int svc_set_put(struct svc_set *s, struct svc_service *v)
{
	struct svc_service **pp, *old;
	size_t i;

	if ((s->n + 1) * 2 > (size_t)s->mask + 1 && slots_grow(s) < 0)
		goto nomem;
	i = slot_of(s, v->wire, v->wire_len, v->hash);
	old = slot_get(s, i);
	if (old) {
		v->pos = old->pos;
	} else {
		if (s->n_pos >= UINT32_MAX ||
		    cowvec_reserve(&s->svcs, s->n_pos + 1) < 0)
			goto nomem;
		v->pos = (uint32_t)s->n_pos;
	}
	if (!(pp = cowvec_mut(&s->svcs, v->pos)) || slot_set(s, i, v) < 0)
		goto nomem;
	/* old (if any) stays alive through the slot until here: the
	 * position vector held it. */
	svc_unref(*pp);
	*pp = v;
	if (!old) {
		s->n_pos++;
		s->n++;
	}
	for (size_t k = 0; k < v->n_eps; k++)
		if (v->eps[k].id > s->max_endpoint_id)
			s->max_endpoint_id = v->eps[k].id;
	return 0;
nomem:
	svc_unref(v);
	return -ENOMEM;
}

int svc_set_del(struct svc_set *s, const uint8_t *wire, size_t len)
{
	uint32_t h = hash_fnv32(wire, len);
	size_t i = slot_of(s, wire, len, h), j;
	struct svc_service *v = slot_get(s, i), **pp;

	if (!v)
		return 0;
	/* Backward-shift deletion keeps every probe sequence unbroken. */
	for (j = i;;) {
		struct svc_service *w;
		size_t k;

		j = (j + 1) & s->mask;
		if (!(w = slot_get(s, j)))
			break;
		k = w->hash & s->mask;
		if ((j > i && (k <= i || k > j)) ||
		    (j < i && (k <= i && k > j))) {
			if (slot_set(s, i, w) < 0)
				return -ENOMEM;
			i = j;
		}
	}
	if (slot_set(s, i, NULL) < 0 || !(pp = cowvec_mut(&s->svcs, v->pos)))
		return -ENOMEM;
	*pp = NULL;
	svc_unref(v);
	s->n--;
	return 1;
}

size_t svc_set_bytes(const struct svc_set *s, size_t *svc_bytes,
                     size_t *ep_count)
{
	size_t b = 0, e = 0;

	for (size_t i = 0; i < s->n_pos; i++) {
		const struct svc_service *v = svc_at(s, i);
		struct packer k = { 0 };

		if (!v)
			continue;
		if (v->bytes) {
			b += v->bytes;
		} else {
			pack_into(&k, v);
			b += k.used;
		}
		e += v->n_eps;
	}
	if (svc_bytes)
		*svc_bytes = b;
	if (ep_count)
		*ep_count = e;
	return cowvec_bytes(&s->svcs) + cowvec_bytes(&s->slot) + sizeof *s;
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
	const struct svc_load *load;       /* spill-over: endpoint load */
	bool hashed;                       /* the answer depends on the
	                                      client subnet's hash */
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
	if (S->s->sticky)
		subnet = shift_subnet_key(&S->c->addr, S->c->src_plen);
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
				double u = unit_open(hash_mix64(subnet ^ e->key));
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

	if (!hv || !S->c->has_loc || !hv->n_regions)
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
		double rtt = hstate_view_rtt(hv, (size_t)r, e->id);

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

/* ---------------------------------------------------------- spill-over */

double svc_load_rate(const struct svc_load *l, uint32_t id)
{
	if (!l || !l->ep || id >= l->n)
		return 0;
	return atomic_load_explicit(&l->ep[id].rate, memory_order_relaxed) /
	       (double)SVC_RATE_UNIT;
}

double svc_load_admit(const struct svc_load *l, uint32_t id)
{
	if (!l || !l->ep || id >= l->n)
		return 1;
	return atomic_load_explicit(&l->ep[id].admit, memory_order_relaxed) /
	       (double)SVC_ADMIT_ONE;
}

/* Salts that keep the spill hashes independent of each other and of the
 * shift's (which client stays home, where a spilled client goes). */
#define SPILL_SALT_KEEP 0x5bd1e9955bd1e995ull
#define SPILL_SALT_PICK 0xc2b2ae3d27d4eb4full

/* The name of an endpoint in explain lines: its region, else target. */
static const char *ep_label(const struct svc_endpoint *e)
{
	return e->region[0] ? e->region : e->t.text;
}

/* Spare capacity of candidate e as a share of what it may take (0..1)
 * and in the capacity's units (*abs): fill x capacity minus the measured
 * rate with a fill, else the whole (relative) capacity. */
static double spare_of(const struct sel *S, const struct svc_endpoint *e,
                       double *abs)
{
	double room, rate;

	*abs = 0;
	if (e->capacity <= 0)
		return 0;
	if (S->s->fill <= 0) {
		*abs = e->capacity;
		return 1;
	}
	if (svc_load_admit(S->load, e->id) < 1)
		return 0;                  /* full itself */
	room = S->s->fill * e->capacity;
	rate = svc_load_rate(S->load, e->id);
	if (rate >= room)
		return 0;
	*abs = room - rate;
	return *abs / room;
}

/* Geo with spill-over: the client's home is the nearest endpoint that
 * could answer it (healthy or not: poss). When the home is down, or full
 * (it admits only part of its clients and this client's hash is past that
 * part), the client goes to one of the other candidates, chosen by
 * weighted rendezvous hashing of its subnet with weight spare capacity /
 * distance: spilled clients spread over the next endpoints in proportion
 * to their room and closeness, and a client keeps its choice from one
 * query to the next. No room anywhere: plain geo (the nearest healthy).
 * poss: endpoint indices ranked here; *np entries. */
static void pick_spill(struct sel *S, uint16_t *poss, size_t np,
                       const uint8_t *ok)
{
	const struct svc_service *s = S->s;
	const struct svc_endpoint *home, *e;
	uint64_t subnet;
	double admit = 1, keep_pos = 0, best = -1, rate_h;
	double sp_share[SVC_MAX_ENDPOINTS];
	const double *cv;
	int pick = -1;
	bool full = false;
	size_t len;

	if (np == 0) {
		pick_geo(S);
		return;
	}
	rank_geo(S, poss, np);
	for (size_t i = 0; i < np; i++)
		if (!ok[poss[i]])
			why_reason(S, poss[i], "unhealthy%s", i ? "" :
			           " (the nearest: its clients spill over)");
	home = &s->eps[poss[0]];
	subnet = shift_subnet_key(&S->c->addr, S->c->src_plen) ^
	         ((uint64_t)s->id << 32);
	if (ok[poss[0]]) {
		if (s->fill > 0 && home->capacity > 0)
			admit = svc_load_admit(S->load, home->id);
		if (admit >= 1) {
			pick_geo(S);
			return;
		}
		S->hashed = true;
		keep_pos = unit_open(hash_mix64(subnet ^ SPILL_SALT_KEEP));
		if (keep_pos < admit) {
			if (S->why) {
				len = strlen(S->why->note);
				snprintf(S->why->note + len,
				         sizeof S->why->note - len, "%s%s is "
				         "full: keeps %.0f%% of its clients, this "
				         "client's hash %.2f -> stays",
				         len ? "; " : "", ep_label(home),
				         admit * 100, keep_pos);
			}
			pick_geo(S);
			return;
		}
		full = true;
	}
	S->hashed = true;
	cv = S->c->has_loc ? client_vec(S) : NULL;
	rank_geo(S, S->idx, S->n);
	for (size_t i = 0; i < S->n; i++) {
		uint16_t k = S->idx[i];
		double abs, w, d = 0, u, sc;

		e = &s->eps[k];
		sp_share[k] = 0;
		if (k == poss[0])
			continue;
		sp_share[k] = spare_of(S, e, &abs);
		if (abs <= 0) {
			why_reason(S, k, "no spare capacity");
			continue;
		}
		if (cv && e->has_loc)
			d = geo_dot_km(dot3(cv, e->v));
		w = abs / (d > 100 ? d : 100);
		u = unit_open(hash_mix64(subnet ^ e->key ^ SPILL_SALT_PICK));
		sc = w / -log(u);
		why_reason(S, k, "spill candidate: spare %.0f%%, %.0f km",
		           sp_share[k] * 100, d);
		if (sc > best) {
			best = sc;
			pick = k;
		}
	}
	if (pick < 0) {
		/* Nowhere to spill to: a full home keeps its clients, a down
		 * one leaves them to plain geo. */
		if (S->why) {
			len = strlen(S->why->note);
			snprintf(S->why->note + len, sizeof S->why->note - len,
			         "%s%s is %s, no other endpoint has spare "
			         "capacity", len ? "; " : "", ep_label(home),
			         full ? "full" : "down");
		}
		pick_geo(S);
		return;
	}
	rate_h = svc_load_rate(S->load, home->id);
	if (S->why) {
		len = strlen(S->why->note);
		if (full)
			snprintf(S->why->note + len, sizeof S->why->note - len,
			         "%sspilled from %s (full, %.0f%% of capacity "
			         "%g q/s; keeps %.0f%%, this client's hash %.2f) "
			         "to %s (spare %.0f%%)", len ? "; " : "",
			         ep_label(home), 100 * rate_h / home->capacity,
			         home->capacity, admit * 100, keep_pos,
			         ep_label(&s->eps[pick]), sp_share[pick] * 100);
		else
			snprintf(S->why->note + len, sizeof S->why->note - len,
			         "%sspilled from %s (down) to %s (spare %.0f%%)",
			         len ? "; " : "", ep_label(home),
			         ep_label(&s->eps[pick]), sp_share[pick] * 100);
	}
	why_reason(S, (size_t)pick, "spilled to: spare %.0f%%",
	           sp_share[pick] * 100);
	/* The chosen one first, then the rest in geo order (S->idx was
	 * ranked above). */
	{
		size_t k = 1;
		uint16_t tmp[SVC_MAX_ENDPOINTS];

		tmp[0] = (uint16_t)pick;
		for (size_t i = 0; i < S->n && k < s->answers; i++)
			if (S->idx[i] != pick)
				tmp[k++] = S->idx[i];
		memcpy(S->idx, tmp, k * sizeof *tmp);
		S->n = k;
	}
}

/* A staged shift (policy/shift.h): true when the client moves to the
 * shift's target, which is then the whole answer. A target that cannot
 * answer (unhealthy, drained, outside the matching rule, other family)
 * leaves the choice to the policy. */
static bool shifted(struct sel *S, const uint8_t *ok)
{
	const struct svc_service *s = S->s;
	const struct svc_shift *sh = &s->shift;
	double pos = 0;
	bool mv;
	size_t len;

	if (!sh->on || sh->ep >= s->n_eps ||
	    (s->policy != SVC_FAILOVER && s->policy != SVC_WEIGHTED))
		return false;
	pos = shift_client_pos(s->id, shift_subnet_key(&S->c->addr,
	                                               S->c->src_plen));
	mv = ok[sh->ep] && pos < sh->frac;
	if (S->why) {
		len = strlen(S->why->note);
		snprintf(S->why->note + len, sizeof S->why->note - len,
		         "%sin shift stage %u of %u (%g%%), this client's hash "
		         "%.2f -> %s", len ? "; " : "", sh->stage, sh->n_stages,
		         sh->frac * 100, pos,
		         !ok[sh->ep] ? "target cannot answer, stays" :
		         mv ? "moves to the shift target" :
		         "stays on the old target");
	}
	if (!mv)
		return false;
	S->idx[0] = sh->ep;
	S->n = 1;
	why_reason(S, sh->ep, "shift target (client hash %.2f below %g%%)",
	           pos, sh->frac * 100);
	return true;
}

/* all with fewer answers than candidates: a window of answers
 * consecutive candidates starting at rr_step % n, so that over n queries
 * each healthy endpoint is in exactly answers of them (multivalue
 * spread); the candidates keep their order inside the window. */
static void pick_window(struct sel *S, uint32_t rr_step)
{
	uint16_t tmp[SVC_MAX_ENDPOINTS];
	size_t n = S->n, k = S->s->answers, start = rr_step % n;

	for (size_t i = 0; i < k; i++)
		tmp[i] = S->idx[(start + i) % n];
	memcpy(S->idx, tmp, k * sizeof *tmp);
	S->n = k;
}

/* The longest prefix for which the answer cannot change: see svc.h. */
static unsigned answer_scope(const struct svc_service *s,
                             const struct svc_client *c, bool hashed)
{
	unsigned sc = 0;

	if (anonymous(c))
		return 0;
	if (s->policy == SVC_GEO || s->policy == SVC_LATENCY ||
	    s->has_geo_rules)
		sc = c->geo_plen;
	if (((s->policy == SVC_WEIGHTED && s->sticky) || hashed ||
	     (s->shift.on && (s->policy == SVC_WEIGHTED ||
	                      s->policy == SVC_FAILOVER))) &&
	    c->src_plen > sc)
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
	svc_select_load(s, qtype, c, hv, NULL, rng, rr_step, out, why);
}

void svc_select_load(const struct svc_service *s, uint16_t qtype,
                     const struct svc_client *c,
                     const struct hstate_view *hv,
                     const struct svc_load *load, uint64_t *rng,
                     uint32_t rr_step, struct svc_answer *out,
                     struct svc_why *why)
{
	uint8_t ok[SVC_MAX_ENDPOINTS], poss[SVC_MAX_ENDPOINTS];
	uint16_t home[SVC_MAX_ENDPOINTS];
	size_t nhome = 0;
	struct sel S;
	size_t n = s->n_eps, cands = 0, fits = 0, usable = 0;
	const struct svc_rule *rule = NULL;

	S.s = s;
	S.c = c;
	S.hv = hv;
	S.why = why;
	S.n = 0;
	S.load = load;
	S.hashed = false;
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

		if (hv && e->has_check)
			h = hstate_view_state(hv, e->id);
		healthy = e->admin == SVC_ADMIN_UP ||
		          (e->admin == SVC_ADMIN_AUTO &&
		           (!e->has_check || h != HSTATE_DOWN));
		ok[i] = healthy && !e->drained && type_fits(e, qtype);
		poss[i] = e->admin != SVC_ADMIN_DOWN && !e->drained &&
		          type_fits(e, qtype);
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
			poss[i] &= in[i];
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
	if (shifted(&S, ok))
		goto chosen;
	switch (s->policy) {
	case SVC_FAILOVER: pick_failover(&S); break;
	case SVC_WEIGHTED: pick_weighted(&S, rng); break;
	case SVC_GEO:
		if (s->spill && out->mode == SVC_MODE_NORMAL) {
			for (size_t i = 0; i < n; i++)
				if (poss[i])
					home[nhome++] = (uint16_t)i;
			pick_spill(&S, home, nhome, ok);
		} else {
			pick_geo(&S);
		}
		break;
	case SVC_LATENCY:  pick_latency(&S); break;
	case SVC_ALL:
		for (size_t i = 0; i < n; i++)
			if (ok[i])
				why_reason(&S, i, "healthy");
		if (S.n > s->answers)
			pick_window(&S, rr_step);
		break;
	default:           pick_rr(&S, rr_step); break;
	}
chosen:
	for (size_t i = 0; i < S.n && i < SVC_MAX_ANSWERS; i++) {
		out->ep[i] = &s->eps[S.idx[i]];
		out->t[i] = &s->eps[S.idx[i]].t;
		out->n++;
		if (why && S.idx[i] < why->cap)
			why->ep[S.idx[i]].chosen = true;
	}
	out->scope = answer_scope(s, c, S.hashed);
}
