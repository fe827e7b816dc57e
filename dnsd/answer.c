/* dnsd/answer.c - one query in, one response out; see answer.h.
 *
 * Hand-written answer assembly (not ldns): RRsets are stored pre-encoded in
 * the snapshot, so a typical answer is the copied question plus one memcpy
 * of an RRset whose owner is already a pointer to the question name. */
#include "dnsd/answer.h"

#include <string.h>

#include "dnsd/wire.h"

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
	struct resp r;
	uint8_t rcode;
	bool aa;
	uint8_t ecs_scope;       /* RFC 7871 scope in the query family's bits */
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

static void negative(struct ctx *x, const struct zone *z, uint8_t rcode)
{
	x->rcode = rcode;
	if (!put_records(&x->r, z->neg_soa, z->neg_soa_len, 1, &x->r.ns))
		truncate_all(x);
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

/* Answers from node n (an exact match or a wildcard source) for the owner
 * name: the query name when owner is NULL. Follows CNAMEs inside our
 * zones. */
static void from_node(struct ctx *x, const struct node *n)
{
	const uint8_t *owner = NULL;
	size_t olen = 0;
	uint8_t target[WIRE_NAME_MAX];
	uint16_t qtype = x->q->qtype;

	for (unsigned depth = 0;; depth++) {
		const struct rrset *set, *cname;
		const uint8_t *t;
		size_t tlen;

		set = qtype == TYPE_ANY ? any_rrset(n) : zone_rrset(n, qtype);
		if (set) {
			if (!(owner ? put_set_owned(&x->r, set, owner, olen, &x->r.an)
				    : put_set(&x->r, set, &x->r.an))) {
				truncate_all(x);
				return;
			}
			additional(x, set);
			return;
		}
		cname = zone_rrset(n, TYPE_CNAME);
		if (!cname) {
			negative(x, n->zone, RCODE_NOERROR);   /* NODATA */
			return;
		}
		if (!(owner ? put_set_owned(&x->r, cname, owner, olen, &x->r.an)
			    : put_set(&x->r, cname, &x->r.an))) {
			truncate_all(x);
			return;
		}
		if (depth + 1 >= CNAME_CHAIN_MAX)
			return;
		/* Chase the target when it is ours (RFC 1034 4.3.2 3a). */
		t = cname->data + 12;
		tlen = wire_name_len(t);
		wire_name_lower(t, tlen, target);
		owner = target;
		olen = tlen;
		n = zonetab_find(x->s->zt, target, tlen);
		if (n) {
			if (n->flags & (NODE_CUT | NODE_OCCLUDED))
				return;
			continue;
		}
		n = zonetab_encloser(x->s->zt, target, tlen);
		if (!n || (n->flags & (NODE_CUT | NODE_OCCLUDED)))
			return;             /* not ours, or delegated */
		if (n->wild) {
			n = n->wild;
			continue;
		}
		negative(x, n->zone, RCODE_NXDOMAIN);   /* RFC 6604 */
		return;
	}
}

static void lookup(struct ctx *x)
{
	const struct wire_query *q = x->q;
	const struct node *n = zonetab_find(x->s->zt, q->lname, q->qname_len);

	if (n) {
		if (n->flags & NODE_OCCLUDED) {
			referral(x, n->cut);
			return;
		}
		/* DS lives in the parent, at the cut itself (RFC 4035 3.1.4.1). */
		if ((n->flags & NODE_CUT) && q->qtype != TYPE_DS) {
			referral(x, n);
			return;
		}
		from_node(x, n);
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
		from_node(x, n->wild);
		return;
	}
	negative(x, n->zone, RCODE_NXDOMAIN);
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

size_t answer_query(const struct snap *s, const uint8_t *pkt, size_t len,
		    uint8_t *out, const struct answer_client *c,
		    struct answer_worker *w)
{
	struct wire_query q;
	struct ctx x = { .s = s, .q = &q, .r = { .p = out }, .aa = true };
	bool hasq, opt = false;
	enum wire_status st = wire_parse_query(pkt, len, &q, &hasq);
	unsigned tr = c->tcp ? STATS_TCP : STATS_UDP;
	size_t max;

	if (st == WIRE_DROP) {
		w->st->dropped++;
		return 0;
	}
	w->st->queries[tr][hasq ? stats_qtype(q.qtype) : STATS_QT_OTHER]++;
	if (!hasq)
		q.question_end = WIRE_HDR;
	memcpy(out, pkt, 2);
	out[2] = (uint8_t)(0x80 | (q.opcode << 3) | (q.flags1 & 0x01)); /* QR, RD */
	out[3] = q.flags2 & 0x10;                                      /* CD */
	wire_put16(out + 4, hasq ? 1 : 0);
	memcpy(out + WIRE_HDR, pkt + WIRE_HDR, q.question_end - WIRE_HDR);
	x.r.len = q.question_end;

	if (c->tcp)
		max = ANSWER_MAX;
	else if (q.edns)
		max = q.edns_udp < 512 ? 512 :
		      q.edns_udp > s->conf.max_udp ? s->conf.max_udp : q.edns_udp;
	else
		max = 512;

	switch (st) {
	case WIRE_FORMERR:
		w->st->malformed++;
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
		q.ecs = q.nsid = false;
		opt = true;
		break;
	default:
		opt = q.edns;
		if (q.ecs)
			w->st->ecs++;
		x.r.limit = max - (opt ? opt_size(&x) : 0);
		if (q.qclass != CLASS_IN) {
			x.rcode = RCODE_REFUSED;
			x.aa = false;
		} else if (q.qtype == TYPE_OPT || q.qtype == TYPE_TSIG ||
			   q.qtype == TYPE_TKEY) {
			x.rcode = RCODE_FORMERR;
			x.aa = false;
		} else if (q.qtype == TYPE_AXFR || q.qtype == TYPE_IXFR) {
			x.rcode = RCODE_REFUSED;   /* no zone transfers */
			x.aa = false;
		} else if (q.qtype == TYPE_MAILA || q.qtype == TYPE_MAILB) {
			x.rcode = RCODE_NOTIMP;
			x.aa = false;
		} else {
			lookup(&x);
		}
		break;
	}
	if (x.aa)
		out[2] |= 0x04;
	if (x.r.tc) {
		out[2] |= 0x02;
		w->st->truncated++;
	}
	out[3] |= x.rcode & 0x0f;
	wire_put16(out + 6, x.r.an);
	wire_put16(out + 8, x.r.ns);
	if (opt)
		put_opt(&x);
	wire_put16(out + 10, x.r.ar);
	w->st->responses[tr][x.rcode < STATS_NRCODES ? x.rcode : 0]++;
	return x.r.len;
}
