/* dnsd/answer.c - one query in, one response out; see answer.h.
 *
 * Hand-written answer assembly (not ldns): RRsets are stored pre-encoded in
 * the snapshot, so a typical answer is the copied question plus one memcpy
 * of an RRset whose owner is already a pointer to the question name. */
#include "dnsd/answer.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/addr.h"
#include "dnsd/dnssec.h"
#include "dnsd/wire.h"
#include "policy/shift.h"

#define CNAME_CHAIN_MAX 8

struct resp {
	uint8_t *p;
	size_t len;
	size_t limit;            /* the size allowed, OPT record excluded */
	uint16_t an, ns, ar;
	bool tc;
};

struct ctx {
	const struct snap *s;
	const struct wire_query *q;
	const struct answer_client *c;
	struct answer_worker *w;
	struct resp r;
	uint8_t rcode;
	bool aa;
	uint8_t ecs_scope;       /* RFC 7871 scope in the query family's bits */
	bool sign;               /* DO set and signing configured (dnssec.h) */
	time_t now;              /* when sign: the time signatures are made at */
};

/* Appends n octets, or returns false and changes nothing. */
static inline bool put(struct resp *r, const void *d, size_t n)
{
	if (r->len + n > r->limit)
		return false;
	memcpy(r->p + r->len, d, n);
	r->len += n;
	return true;
}

/* An RRset owned by the query name: one copy. */
static bool put_set(struct resp *r, const struct rrset *s, uint16_t *count)
{
	if (!put(r, s->data, s->len))
		return false;
	*count += s->count;
	return true;
}

/* An RRset under another owner (uncompressed): all records or none. */
static bool put_set_owned(struct resp *r, const struct rrset *s,
			  const uint8_t *owner, size_t olen, uint16_t *count)
{
	const uint8_t *p = s->data, *end = s->data + s->len;
	size_t mark = r->len;

	while (p < end) {
		size_t rl = 10u + wire_get16(p + 10);

		if (!put(r, owner, olen) || !put(r, p + 2, rl)) {
			r->len = mark;
			return false;
		}
		p += 2 + rl;
	}
	*count += s->count;
	return true;
}

static bool put_records(struct resp *r, const uint8_t *d, size_t n,
			uint16_t cnt, uint16_t *count)
{
	if (!cnt || !put(r, d, n))
		return false;
	*count += cnt;
	return true;
}

/* The answer (or authority) section did not fit: RFC 2181 9 - send what
 * the header and question say, with TC, and let the client retry on TCP. */
static void truncate_all(struct ctx *x)
{
	x->r.len = x->q->question_end;
	x->r.an = x->r.ns = x->r.ar = 0;
	x->r.tc = true;
}

/* Gives up on the answer: SERVFAIL with empty sections. */
static void servfail(struct ctx *x)
{
	x->r.len = x->q->question_end;
	x->r.an = x->r.ns = x->r.ar = 0;
	x->rcode = RCODE_SERVFAIL;
	x->aa = false;
}

/* DNSSEC: the records r.p[mark..r.len) of zone z, just written, get their
 * RRSIGs when the client set DO and z is signed; keyset: the apex key
 * RRsets (signed by the KSKs). Returns false when the answer was given up:
 * TC when the signatures do not fit, or when the signing budget is spent
 * over UDP (the client retries over TCP, which a spoofed flood cannot);
 * SERVFAIL otherwise. */
/* The identity under which records made from object o (an RRset, a node)
 * are memoised with their signatures (dnssec_sign_static): o when they are
 * owned by a pointer to the question name, o + 1 when owned by an
 * uncompressed name (o's own name: a CNAME target or a delegation).
 * Addresses inside o are never another object's, so identities of other
 * records cannot collide; NULL when the records depend on the name asked
 * (a wildcard). */
static const void *memo_id(const void *o, const uint8_t *owner, bool wild)
{
	return wild ? NULL : owner ? (const void *)((const uint8_t *)o + 1) : o;
}

static bool sign(struct ctx *x, const struct zone *z, size_t mark,
		 uint16_t *count, bool keyset, const void *id)
{
	const struct dnssec_zone *dz;
	int rc;

	if (!x->sign || mark == x->r.len || !(dz = dnssec_zone_of(x->s->sec, z)))
		return true;
	rc = id ? dnssec_sign_static(x->w->dw, dz, keyset, id, x->s->gen,
				     x->r.p, mark, &x->r.len, x->r.limit,
				     count, x->now)
		: dnssec_sign(x->w->dw, dz, keyset, x->r.p, mark, &x->r.len,
			      x->r.limit, count, x->now);
	if (rc == 0)
		return true;
	if (rc == -ENOSPC || (rc == -EAGAIN && !x->c->tcp))
		truncate_all(x);
	else
		servfail(x);
	return false;
}

/* Adds t to types[*n] unless there already (or no room). */
static void add_type(uint16_t *types, unsigned *n, unsigned cap, uint16_t t)
{
	for (unsigned i = 0; i < *n; i++)
		if (types[i] == t)
			return;
	if (*n < cap)
		types[(*n)++] = t;
}

#define DENY_TYPES_MAX 64

/* Compact denial (RFC 9824): a signed NSEC owned by the name denied (the
 * query name when owner is NULL) that covers no other name. For a name that
 * does not exist the bitmap says NXNAME and the rcode is NOERROR unless the
 * client set CO; for a name that exists (node n of a zone, or the balanced
 * name svc) the bitmap holds its real types. */
static void deny(struct ctx *x, const struct zone *z, const uint8_t *owner,
		 size_t olen, const struct node *n, const struct svc_service *svc,
		 const void *id)
{
	static const uint8_t qptr[2] = { 0xc0, 0x0c };
	const struct dnssec_zone *dz = dnssec_zone_of(x->s->sec, z);
	uint16_t types[DENY_TYPES_MAX];
	unsigned nt = 0;
	size_t mark = x->r.len, len;

	if (!dz)
		return;
	if (x->rcode == RCODE_NXDOMAIN) {
		types[nt++] = TYPE_NXNAME;
		if (!x->q->edns_co)
			x->rcode = RCODE_NOERROR;
	} else if (n) {
		for (unsigned i = 0; i < n->n_rrsets; i++)
			if (n->rrsets[i].type != TYPE_RRSIG &&
			    n->rrsets[i].type != TYPE_NSEC)
				add_type(types, &nt, DENY_TYPES_MAX, n->rrsets[i].type);
		if (n == z->apex) {
			add_type(types, &nt, DENY_TYPES_MAX, TYPE_DNSKEY);
			if (dz->cds.count) {
				add_type(types, &nt, DENY_TYPES_MAX, TYPE_CDS);
				add_type(types, &nt, DENY_TYPES_MAX, TYPE_CDNSKEY);
			}
		}
	} else if (svc) {
		for (size_t i = 0; i < svc->n_eps; i++)
			if (svc->eps[i].t.type != x->q->qtype)
				add_type(types, &nt, DENY_TYPES_MAX, svc->eps[i].t.type);
		if (svc->when_down == SVC_DOWN_TARGET &&
		    svc->fallback.type != x->q->qtype)
			add_type(types, &nt, DENY_TYPES_MAX, svc->fallback.type);
	}
	len = dnssec_put_nsec(x->r.p + x->r.len, x->r.limit - x->r.len,
			      owner ? owner : qptr, owner ? olen : 2,
			      owner ? owner : x->q->lname,
			      owner ? olen : x->q->qname_len, dz->neg_ttl, types, nt);
	if (!len) {
		/* A name of 254 octets or more has no successor \000.name. */
		if ((owner ? olen : x->q->qname_len) + 2 > WIRE_NAME_MAX)
			servfail(x);
		else
			truncate_all(x);
		return;
	}
	x->r.len += len;
	x->r.ns++;
	sign(x, z, mark, &x->r.ns, false, id);
}

/* A negative answer from zone z (RFC 2308), with its proof for DO. The
 * name denied is owner (NULL: the query name); n or svc is what exists
 * there (NODATA), neither for NXDOMAIN. id: the proof's memo identity
 * (memo_id()), NULL when it changes from one answer to the next. */
static void negative(struct ctx *x, const struct zone *z, uint8_t rcode,
		     const uint8_t *owner, size_t olen, const struct node *n,
		     const struct svc_service *svc, const void *id)
{
	size_t mark = x->r.len;

	x->rcode = rcode;
	if (!put_records(&x->r, z->neg_soa, z->neg_soa_len, 1, &x->r.ns)) {
		truncate_all(x);
		return;
	}
	if (sign(x, z, mark, &x->r.ns, false, z->neg_soa) && x->sign)
		deny(x, z, owner, olen, n, svc, id);
}

/* RFC 1034 4.3.2 step 3b: a referral to the delegation at cut. */
static void referral(struct ctx *x, const struct node *cut)
{
	const struct rrset *ns = zone_rrset(cut, TYPE_NS);

	x->aa = false;
	if (!put_set_owned(&x->r, ns, cut->name, cut->name_len, &x->r.ns)) {
		truncate_all(x);
		return;
	}
	/* Signed parent: the DS RRset, or the proof there is none (an
	 * insecure delegation, RFC 4035 3.1.4). The NS RRset and glue are
	 * not the parent's to sign. */
	if (x->sign && dnssec_zone_of(x->s->sec, cut->zone)) {
		const struct rrset *ds = zone_rrset(cut, TYPE_DS);
		const struct dnssec_zone *dz = dnssec_zone_of(x->s->sec, cut->zone);
		size_t mark = x->r.len;

		if (ds) {
			if (!put_set_owned(&x->r, ds, cut->name, cut->name_len,
					   &x->r.ns)) {
				truncate_all(x);
				return;
			}
		} else {
			static const uint16_t nstype = TYPE_NS;
			size_t len = dnssec_put_nsec(x->r.p + x->r.len,
						     x->r.limit - x->r.len, cut->name,
						     cut->name_len, cut->name,
						     cut->name_len, dz->neg_ttl,
						     &nstype, 1);

			if (!len) {
				truncate_all(x);
				return;
			}
			x->r.len += len;
			x->r.ns++;
		}
		/* The DS RRset owned like a CNAME target's (memo_id()), the
		 * NSEC under an identity of its own inside the cut node. */
		if (!sign(x, cut->zone, mark, &x->r.ns, false,
			  ds ? memo_id(ds, cut->name, false)
			     : (const void *)((const uint8_t *)cut + 2)))
			return;
	}
	/* Glue is needed to follow the referral: missing glue is TC
	 * (RFC 9471), other additional data is just left out. */
	if (ns->add_count &&
	    !put_records(&x->r, ns->add, ns->add_len, ns->add_count, &x->r.ar))
		x->r.tc = true;
}

static void additional(struct ctx *x, const struct rrset *s)
{
	if (s->add_count)
		put_records(&x->r, s->add, s->add_len, s->add_count, &x->r.ar);
}

/* The first RRset for a minimal ANY answer (RFC 8482 4.1). */
static const struct rrset *any_rrset(const struct node *n)
{
	for (unsigned i = 0; i < n->n_rrsets; i++)
		if (n->rrsets[i].type != TYPE_RRSIG)
			return &n->rrsets[i];
	return NULL;
}

static void chase(struct ctx *x, const uint8_t *t, unsigned depth);
static bool service(struct ctx *x, const struct svc_service *svc,
		    const uint8_t *owner, size_t olen, unsigned depth);

/* Answers from node n (an exact match, or a wildcard source when wild) for
 * the owner name: the query name when owner is NULL. Follows CNAMEs inside
 * our zones. An exact match's RRsets are always the same records under the
 * same owner octets, so their signatures are memoised (dnssec_sign_static);
 * a wildcard's records take the name asked. */
static void from_node(struct ctx *x, const struct node *n,
		      const uint8_t *owner, size_t olen, unsigned depth,
		      bool wild)
{
	uint16_t qtype = x->q->qtype;
	const struct rrset *set, *cname;
	const struct dnssec_zone *dz;
	bool keyset = false;
	size_t mark = x->r.len;

	set = qtype == TYPE_ANY ? any_rrset(n) : zone_rrset(n, qtype);
	/* A signed zone's key RRsets come from its key files. */
	if ((n->flags & NODE_APEX) && (qtype == TYPE_DNSKEY || qtype == TYPE_CDS ||
				       qtype == TYPE_CDNSKEY) &&
	    (dz = dnssec_zone_of(x->s->sec, n->zone)) != NULL) {
		set = qtype == TYPE_DNSKEY ? &dz->dnskey :
		      qtype == TYPE_CDS ? &dz->cds : &dz->cdnskey;
		set = set->count ? set : NULL;
		keyset = true;
	}
	if (set) {
		if (!(owner ? put_set_owned(&x->r, set, owner, olen, &x->r.an)
			    : put_set(&x->r, set, &x->r.an))) {
			truncate_all(x);
			return;
		}
		if (!sign(x, n->zone, mark, &x->r.an, keyset,
			  memo_id(set, owner, wild)))
			return;
		additional(x, set);
		return;
	}
	cname = zone_rrset(n, TYPE_CNAME);
	if (!cname) {
		negative(x, n->zone, RCODE_NOERROR, owner, olen, n, NULL,
			 memo_id(n, owner, wild));        /* NODATA */
		return;
	}
	if (!(owner ? put_set_owned(&x->r, cname, owner, olen, &x->r.an)
		    : put_set(&x->r, cname, &x->r.an))) {
		truncate_all(x);
		return;
	}
	if (!sign(x, n->zone, mark, &x->r.an, false, memo_id(cname, owner, wild)))
		return;
	chase(x, cname->data + 12, depth + 1);
}

/* Follows a CNAME to target t (wire, any case) when it is ours (RFC 1034
 * 4.3.2 3a): a balanced name, a zone name, or a wildcard; a target that
 * does not exist in our zone ends NXDOMAIN (RFC 6604). */
static void chase(struct ctx *x, const uint8_t *t, unsigned depth)
{
	uint8_t target[WIRE_NAME_MAX];
	size_t tlen = wire_name_len(t);
	const struct node *n;
	const struct svc_service *svc;

	if (depth >= CNAME_CHAIN_MAX)
		return;
	wire_name_lower(t, tlen, target);
	if (x->s->svc && (svc = svc_find(x->s->svc, target, tlen)) &&
	    service(x, svc, target, tlen, depth))
		return;
	n = zonetab_find(x->s->zt, target, tlen);
	if (n) {
		if (!(n->flags & (NODE_CUT | NODE_OCCLUDED)))
			from_node(x, n, target, tlen, depth, false);
		return;
	}
	if ((n = snap_svc_ent(x->s, target, tlen)) != NULL) {
		from_node(x, n, target, tlen, depth, false);  /* NODATA */
		return;
	}
	n = zonetab_encloser(x->s->zt, target, tlen);
	if (!n || (n->flags & (NODE_CUT | NODE_OCCLUDED)))
		return;             /* not ours, or delegated */
	if (n->wild)
		from_node(x, n->wild, target, tlen, depth, true);
	else
		negative(x, n->zone, RCODE_NXDOMAIN, target, tlen, NULL, NULL,
			 x->sign ? dnssec_nxname_id(target, tlen, true) : NULL);
}

/* The address a client is located by: the ECS subnet with its source
 * prefix capped (RFC 7871), else the source address's subnet of the same
 * caps, the bits after the prefix zeroed. Returns the prefix length, in
 * the 128-bit space. */
static unsigned client_addr(const struct answer_conf *conf,
			    const struct wire_query *q,
			    const struct in6_addr *src, struct in6_addr *out)
{
	unsigned plen;

	if (q->ecs && q->ecs_family == 1) {
		memset(out, 0, sizeof(*out));
		out->s6_addr[10] = out->s6_addr[11] = 0xff;
		memcpy(out->s6_addr + 12, q->ecs_addr, 4);
		plen = 96u + (q->ecs_source < conf->ecs_max_v4 ? q->ecs_source
							       : conf->ecs_max_v4);
	} else if (q->ecs) {
		memcpy(out->s6_addr, q->ecs_addr, 16);
		plen = q->ecs_source < conf->ecs_max_v6 ? q->ecs_source
							: conf->ecs_max_v6;
	} else {
		*out = *src;
		plen = IN6_IS_ADDR_V4MAPPED(src) ? 96u + conf->ecs_max_v4
						  : conf->ecs_max_v6;
	}
	addr_mask(out, plen);     /* zero the bits we do not trust or know */
	return plen;
}

/* Who the answer is for, as the policy engine sees it: the ECS subnet
 * (RFC 7871, source prefix capped) or else the source address's subnet,
 * and its GeoIP location. Query path: geo_lookup() only. */
static void client_of(struct ctx *x, struct svc_client *cl)
{
	const struct wire_query *q = x->q;
	const struct answer_conf *conf = &x->s->conf;
	const struct geo_loc *loc = NULL;
	unsigned geo_plen = 0;

	memset(cl, 0, sizeof(*cl));
	cl->src_plen = client_addr(conf, q, &x->c->addr, &cl->addr);
	/* Source prefix 0: the client asked not to be located (RFC 7871
	 * 7.1.2); it gets the default location, scope 0. */
	if (x->s->geo && !(q->ecs && q->ecs_source == 0)) {
		const struct answer_pre *pre = x->c->pre;

		/* The batch's last prefetch stage looked it up already. */
		if (pre && pre->located && !memcmp(&pre->client, &cl->addr, 16)) {
			loc = pre->loc;
			geo_plen = pre->geo_plen;
		} else {
			loc = geo_lookup(x->s->geo, &cl->addr, &geo_plen);
		}
	}
	if (!loc && conf->has_default_loc)
		loc = &conf->default_loc;
	if (loc) {
		cl->has_loc = true;
		cl->lat = loc->lat;
		cl->lon = loc->lon;
		memcpy(cl->v, loc->v, sizeof(cl->v));
		memcpy(cl->country, loc->country, 3);
		memcpy(cl->continent, loc->continent, 3);
	}
	cl->geo_plen = geo_plen;
}

/* One record of a balanced name: owner, TYPE, IN, TTL, RDATA. */
static bool put_target(struct resp *r, const struct svc_target *t,
		       uint32_t ttl, const uint8_t *owner, size_t olen)
{
	uint8_t h[12];
	size_t mark = r->len;

	if (owner) {
		if (!put(r, owner, olen))
			return false;
	} else {
		h[0] = 0xc0;
		h[1] = 0x0c;
		if (!put(r, h, 2))
			return false;
	}
	wire_put16(h, t->type);
	wire_put16(h + 2, CLASS_IN);
	wire_put32(h + 4, ttl);
	wire_put16(h + 8, t->len);
	if (!put(r, h, 10) || !put(r, t->rdata, t->len)) {
		r->len = mark;
		return false;
	}
	return true;
}

static inline void count_endpoint(struct answer_worker *w,
				  const struct svc_endpoint *e)
{
	if (e && e->id < w->ep_cap)
		stats_inc(&w->ep_answers[e->id]);
}

/* The TTL of svc's answers when something is about to change: never past
 * the shift's next step, nor past the time any of its endpoints may change
 * state (flap damping reuse, a rise or fall in progress). The coarse clock
 * is a vDSO read, no syscall. */
static uint32_t ttl_until_change(const struct svc_service *svc,
				 const struct hstate_view *hv)
{
	struct timespec ts;
	double now;
	uint32_t ttl = svc->ttl;

	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	now = (double)ts.tv_sec + ts.tv_nsec / 1e9;
	if (svc->shift.on)
		ttl = shift_ttl(ttl, svc->shift.next, now);
	if (hv && hv->has_change_at) {
		for (size_t i = 0; i < svc->n_eps; i++) {
			uint32_t id = svc->eps[i].id;

			/* A change that is overdue is no longer expected at
			 * a known time: only future ones lower the TTL. */
			double at = hstate_view_next_change(hv, id);

			if (at > now)
				ttl = shift_ttl(ttl, at, now);
		}
	}
	return ttl;
}

/* Answers a balanced name. Returns false when svc is not served by this
 * snapshot (outside every zone), so the caller looks in the zones. */
static bool service(struct ctx *x, const struct svc_service *svc,
		    const uint8_t *owner, size_t olen, unsigned depth)
{
	const struct zone *z = snap_svc_zone(x->s, svc);
	uint16_t qtype = x->q->qtype;
	struct svc_client cl;
	struct svc_answer ans;
	const struct svc_target *cname = NULL;
	uint16_t before = x->r.an;   /* a CNAME chain may lead here */
	size_t mark = x->r.len;
	unsigned scope;
	uint32_t ttl = svc->ttl;

	if (!z)
		return false;
	stats_inc(&x->w->st->service_answers);
	if (qtype != TYPE_A && qtype != TYPE_AAAA && qtype != TYPE_CNAME &&
	    qtype != TYPE_ANY) {
		negative(x, z, RCODE_NOERROR, owner, olen, NULL, svc, NULL); /* NODATA */
		return true;
	}
	client_of(x, &cl);
	svc_select_load(svc, qtype == TYPE_A || qtype == TYPE_AAAA ? qtype : 0,
			&cl, x->s->hv, x->s->conf.load, &x->w->rng, x->w->rr++,
			&ans, NULL);
	/* The honest ECS scope, in the query's family (RFC 7871 7.2.1). */
	if (x->q->ecs && x->q->ecs_source > 0) {
		scope = ans.scope;
		if (x->q->ecs_family == 1)
			scope = scope > 96 ? scope - 96 : 0;
		if (scope > x->ecs_scope)
			x->ecs_scope = (uint8_t)(scope > 128 ? 128 : scope);
	}
	if (ans.servfail) {
		x->rcode = RCODE_SERVFAIL;
		x->aa = false;
		return true;
	}
	/* A shift's next step is a change coming: no cache may hold the
	 * answer past it (the coarse clock is a vDSO read, no syscall). */
	if ((svc->shift.on && svc->shift.next > 0) ||
	    (x->s->hv && x->s->hv->has_change_at))
		ttl = ttl_until_change(svc, x->s->hv);
	/* A name owns one CNAME at most: if the first choice is a CNAME the
	 * answer is that CNAME (and what it leads to). */
	if (ans.n && ans.t[0]->type == SVC_T_CNAME)
		cname = ans.t[0];
	if (cname) {
		if (!put_target(&x->r, cname, ttl, owner, olen)) {
			truncate_all(x);
			return true;
		}
		x->r.an++;
		count_endpoint(x->w, ans.ep[0]);
		if (!sign(x, z, mark, &x->r.an, false, NULL))
			return true;
		if (qtype != TYPE_CNAME)
			chase(x, cname->rdata, depth + 1);
		return true;
	}
	for (unsigned i = 0; i < ans.n; i++) {
		if (ans.t[i]->type != qtype &&
		    !(qtype == TYPE_ANY && ans.t[i]->type != SVC_T_CNAME))
			continue;
		if (!put_target(&x->r, ans.t[i], ttl, owner, olen)) {
			truncate_all(x);
			return true;
		}
		x->r.an++;
		count_endpoint(x->w, ans.ep[i]);
	}
	if (x->r.an == before)
		negative(x, z, RCODE_NOERROR, owner, olen, NULL, svc,
			 NULL);           /* e.g. AAAA at IPv4 only */
	else
		sign(x, z, mark, &x->r.an, false, NULL);
	return true;
}

static void lookup(struct ctx *x)
{
	const struct wire_query *q = x->q;
	const struct node *n;
	const struct svc_service *svc;

	if (x->s->svc && (svc = svc_find(x->s->svc, q->lname, q->qname_len)) &&
	    service(x, svc, NULL, 0, 0))
		return;
	n = zonetab_find(x->s->zt, q->lname, q->qname_len);
	if (n) {
		if (n->flags & NODE_OCCLUDED) {
			referral(x, n->cut);
			return;
		}
		/* DS lives in the parent, at the cut itself (RFC 4035 3.1.4.1);
		 * when we serve the child too, the parent's cut is behind it. */
		if ((n->flags & NODE_CUT) && q->qtype != TYPE_DS) {
			referral(x, n);
			return;
		}
		if ((n->flags & NODE_APEX) && q->qtype == TYPE_DS) {
			const struct node *cut = zonetab_parent_cut(x->s->zt, n);

			if (cut)
				n = cut;
		}
		from_node(x, n, NULL, 0, 0, false);
		return;
	}
	if ((n = snap_svc_ent(x->s, q->lname, q->qname_len)) != NULL) {
		from_node(x, n, NULL, 0, 0, false);          /* NODATA */
		return;
	}
	n = zonetab_encloser(x->s->zt, q->lname, q->qname_len);
	if (!n) {
		x->rcode = RCODE_REFUSED;
		x->aa = false;
		return;
	}
	if (n->flags & NODE_OCCLUDED) {
		referral(x, n->cut);
		return;
	}
	if (n->flags & NODE_CUT) {
		referral(x, n);
		return;
	}
	if (n->wild) {                 /* RFC 4592 3.3.1: closest encloser */
		from_node(x, n->wild, NULL, 0, 0, true);
		return;
	}
	negative(x, n->zone, RCODE_NXDOMAIN, NULL, 0, NULL, NULL,
		 x->sign ? dnssec_nxname_id(x->q->lname, x->q->qname_len, false)
			 : NULL);
}

/* Octets the OPT record will take. */
static size_t opt_size(const struct ctx *x)
{
	size_t n = 11;

	if (x->q->nsid && x->s->conf.nsid_len)
		n += 4u + x->s->conf.nsid_len;
	if (x->q->ecs)
		n += 8u + (x->q->ecs_source + 7u) / 8u;
	return n;
}

static void put_opt(struct ctx *x)
{
	uint8_t *p = x->r.p + x->r.len;
	size_t rdlen = opt_size(x) - 11;
	uint8_t *o;

	p[0] = 0;
	wire_put16(p + 1, TYPE_OPT);
	wire_put16(p + 3, x->s->conf.max_udp);
	p[5] = (uint8_t)(x->rcode >> 4);               /* extended rcode */
	p[6] = 0;                                      /* version */
	p[7] = x->q->edns_do ? 0x80 : 0;
	p[8] = 0;
	wire_put16(p + 9, (uint16_t)rdlen);
	o = p + 11;
	if (x->q->nsid && x->s->conf.nsid_len) {
		wire_put16(o, EDNS_OPT_NSID);
		wire_put16(o + 2, x->s->conf.nsid_len);
		memcpy(o + 4, x->s->conf.nsid, x->s->conf.nsid_len);
		o += 4 + x->s->conf.nsid_len;
	}
	if (x->q->ecs) {                               /* RFC 7871 7.2.1 */
		unsigned bytes = (x->q->ecs_source + 7u) / 8u;

		wire_put16(o, EDNS_OPT_ECS);
		wire_put16(o + 2, (uint16_t)(4 + bytes));
		wire_put16(o + 4, x->q->ecs_family);
		o[6] = x->q->ecs_source;
		o[7] = x->ecs_scope;
		memcpy(o + 8, x->q->ecs_addr, bytes);
	}
	x->r.len += 11 + rdlen;
	x->r.ar++;
}

int answer_worker_init(struct answer_worker *w, struct stats_thread *st,
		       uint32_t ep_cap, uint64_t seed)
{
	memset(w, 0, sizeof(*w));
	w->st = st;
	w->ep_cap = ep_cap;
	w->ep_answers = calloc(ep_cap, sizeof(*w->ep_answers));
	w->rng = 0x9e3779b97f4a7c15ull * (seed + 1) ^ (uint64_t)time(NULL) ^
		 (uintptr_t)w;
	if (dnssec_configured() && !(w->dw = dnssec_worker_new(w->rng)))
		return -ENOMEM;
	return w->ep_answers ? 0 : -ENOMEM;
}

void answer_worker_fini(struct answer_worker *w)
{
	free(w->ep_answers);
	w->ep_answers = NULL;
	dnssec_worker_free(w->dw);
	w->dw = NULL;
}

void answer_worker_ep_add(const struct answer_worker *w, uint64_t *out,
			  size_t cap)
{
	for (size_t k = 0; k < cap && k < w->ep_cap; k++)
		out[k] += stats_get(&w->ep_answers[k]);
}

void answer_prepare(const struct snap *s, const uint8_t *pkt, size_t len,
		    const struct in6_addr *src, struct answer_pre *p)
{
	const struct wire_query *q = &p->q;

	p->pkt = pkt;
	p->len = len;
	p->st = wire_parse_query(pkt, len, &p->q, &p->hasq);
	p->zone = p->svc = 0;
	p->geo = p->located = false;
	if (p->st != WIRE_OK)
		return;
	p->zone = zone_name_hash(q->lname, q->qname_len);
	if (!s->svc || !s->svc->n)
		return;
	p->svc = svc_hash(q->lname, q->qname_len);
	/* Locating the client is the other cache miss of a geo or latency
	 * answer; source prefix 0 asks not to be located (client_of()). */
	if (s->geo && !(q->ecs && q->ecs_source == 0)) {
		client_addr(&s->conf, q, src, &p->client);
		p->geo = true;
	}
}

void answer_prefetch(const struct snap *s, struct answer_pre *p, int stage,
		     const struct answer_worker *w)
{
	if (p->zone && stage < 2)
		zonetab_prefetch(s->zt, p->zone, stage);
	/* A signed answer from a zone's own data: the memo of its RRSIGs is
	 * the other cache miss (from_node() and negative() take the same
	 * identities: the RRset, or the node for NODATA). The name table was
	 * fetched by the stages before. */
	if (stage == 2 && p->zone && p->q.edns_do && s->sec && w->dw) {
		const struct node *n = zonetab_find(s->zt, p->q.lname,
						    p->q.qname_len);

		if (n && !(n->flags & (NODE_CUT | NODE_OCCLUDED))) {
			const struct rrset *set = zone_rrset(n, p->q.qtype);

			dnssec_memo_prefetch(w->dw, set ? (const void *)set
							: (const void *)n, s->gen);
		}
	}
	/* Locate only for a name that may be a service: stage 1 knows. */
	if (p->svc && stage < 2 && !svc_prefetch(s->svc, p->svc, stage))
		p->geo = false;
	if (!p->geo)
		return;
	if (stage < 2) {
		geo_prefetch(s->geo, &p->client, stage);
	} else {
		/* What stages 0 and 1 fetched is in cache: look it up now, and
		 * fetch the location for the answer to read. */
		p->loc = geo_lookup(s->geo, &p->client, &p->geo_plen);
		p->located = true;
		if (p->loc)
			geo_prefetch_loc(p->loc);
	}
}

size_t answer_query(const struct snap *s, const uint8_t *pkt, size_t len,
		    uint8_t *out, const struct answer_client *c,
		    struct answer_worker *w)
{
	struct wire_query qbuf;
	const struct wire_query *q = &qbuf;
	struct ctx x = { .s = s, .c = c, .w = w, .r = { .p = out }, .aa = true };
	bool hasq, opt = false;
	enum wire_status st;
	unsigned tr = c->tcp ? STATS_TCP : STATS_UDP;
	size_t max;

	/* A batch parsed it already (answer_prepare()). */
	if (c->pre && c->pre->pkt == pkt && c->pre->len == len) {
		q = &c->pre->q;
		st = c->pre->st;
		hasq = c->pre->hasq;
	} else {
		st = wire_parse_query(pkt, len, &qbuf, &hasq);
	}
	x.q = q;
	if (st == WIRE_DROP) {
		stats_inc(&w->st->dropped);
		return 0;
	}
	stats_inc(&w->st->queries[tr][hasq ? stats_qtype(q->qtype) : STATS_QT_OTHER]);
	memcpy(out, pkt, 2);
	out[2] = (uint8_t)(0x80 | (q->opcode << 3) | (q->flags1 & 0x01)); /* QR, RD */
	out[3] = q->flags2 & 0x10;                                      /* CD */
	wire_put16(out + 4, hasq ? 1 : 0);
	memcpy(out + WIRE_HDR, pkt + WIRE_HDR, q->question_end - WIRE_HDR);
	x.r.len = q->question_end;

	if (c->tcp)
		max = ANSWER_MAX;
	else if (q->edns)
		max = q->edns_udp < 512 ? 512 :
		      q->edns_udp > s->conf.max_udp ? s->conf.max_udp : q->edns_udp;
	else
		max = 512;
	if (!c->tcp && c->udp_max && max > c->udp_max)
		max = c->udp_max < 512 ? 512 : c->udp_max;

	switch (st) {
	case WIRE_FORMERR:
		stats_inc(&w->st->malformed);
		x.rcode = RCODE_FORMERR;
		x.aa = false;
		break;
	case WIRE_NOTIMP:
		x.rcode = RCODE_NOTIMP;
		x.aa = false;
		break;
	case WIRE_BADVERS:             /* RFC 6891 6.1.3 */
		x.rcode = RCODE_BADVERS;
		x.aa = false;
		opt = true;
		break;
	default:
		opt = q->edns;
		if (q->ecs)
			stats_inc(&w->st->ecs);
		x.r.limit = max - (opt ? opt_size(&x) : 0);
		if (q->qclass != CLASS_IN) {
			x.rcode = RCODE_REFUSED;
			x.aa = false;
		} else if (q->qtype == TYPE_OPT || q->qtype == TYPE_TSIG ||
			   q->qtype == TYPE_TKEY) {
			x.rcode = RCODE_FORMERR;
			x.aa = false;
		} else if (q->qtype == TYPE_AXFR || q->qtype == TYPE_IXFR) {
			x.rcode = RCODE_REFUSED;   /* no zone transfers */
			x.aa = false;
		} else if (q->qtype == TYPE_MAILA || q->qtype == TYPE_MAILB) {
			x.rcode = RCODE_NOTIMP;
			x.aa = false;
		} else {
			x.sign = q->edns_do && s->sec && w->dw;
			if (x.sign)
				x.now = time(NULL);
			lookup(&x);
			if (x.sign) {
				struct dnssec_counters dc;

				dnssec_worker_counters(w->dw, &dc);
				stats_set(&w->st->dnssec_signed, dc.signed_);
				stats_set(&w->st->dnssec_cache_hits, dc.cache_hits);
				stats_set(&w->st->dnssec_over_budget, dc.over_budget);
			}
		}
		break;
	}
	if (x.aa)
		out[2] |= 0x04;
	if (x.r.tc) {
		out[2] |= 0x02;
		stats_inc(&w->st->truncated);
	}
	out[3] |= x.rcode & 0x0f;
	wire_put16(out + 6, x.r.an);
	wire_put16(out + 8, x.r.ns);
	if (opt)
		put_opt(&x);
	wire_put16(out + 10, x.r.ar);
	stats_inc(&w->st->responses[tr][x.rcode < STATS_NRCODES ? x.rcode : 0]);
	return x.r.len;
}
