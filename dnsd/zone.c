/* dnsd/zone.c - master file -> immutable zone (see zone.h). Load time only.
 *
 * Records are parsed one at a time with ldns and copied at once into flat
 * growable buffers, so a large zone never exists twice as ldns objects;
 * then sorted, grouped into nodes and RRsets in the zone's arena. */
#include "dnsd/zone.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>

#include "dnsd/wire.h"

struct rec {
	uint32_t name_off;
	uint32_t rd_off;
	uint32_t ttl;
	uint32_t line;
	uint16_t type;
	uint16_t rdlen;
	uint8_t name_len;
};

struct buf {
	uint8_t *p;
	size_t len, cap;
};

struct builder {
	struct buf names, rdata;
	struct rec *recs;
	size_t n_recs, cap_recs;
	/* Temporary name -> node table, freed after the build. */
	struct node **tab;
	size_t tab_mask, tab_used;
	struct node **nodes;
	size_t n_nodes, cap_nodes;
	const char *file;
	char *err;
	size_t errlen;
};

uint32_t zone_name_hash(const uint8_t *name, size_t len)
{
	/* 64-bit multiply-xorshift over 8-octet words: names are short and
	 * this runs once per query, so it must be cheap, not cryptographic. */
	uint64_t h = 0x9e3779b97f4a7c15ull ^ len;

	while (len >= 8) {
		uint64_t w;

		memcpy(&w, name, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdull;
		h ^= h >> 32;
		name += 8;
		len -= 8;
	}
	if (len) {
		uint64_t w = 0;

		memcpy(&w, name, len);
		h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
	}
	h ^= h >> 29;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 32;
	return (uint32_t)h;
}

static int fail(struct builder *b, uint32_t line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct builder *b, uint32_t line, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (line)
		n = snprintf(b->err, b->errlen, "%s:%u: ", b->file, line);
	else
		n = snprintf(b->err, b->errlen, "%s: ", b->file);
	if (n < 0 || (size_t)n >= b->errlen)
		n = 0;
	va_start(ap, fmt);
	vsnprintf(b->err + n, b->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int buf_add(struct buf *b, const void *p, size_t n, uint32_t *off)
{
	if (b->len + n > UINT32_MAX)
		return -ENOMEM;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 65536;
		uint8_t *np;

		while (cap < b->len + n)
			cap *= 2;
		np = realloc(b->p, cap);
		if (!np)
			return -ENOMEM;
		b->p = np;
		b->cap = cap;
	}
	if (n)          /* empty RDATA: b->p may still be NULL */
		memcpy(b->p + b->len, p, n);
	*off = (uint32_t)b->len;
	b->len += n;
	return 0;
}

static int add_rec(struct builder *b, const uint8_t *owner, size_t owner_len,
		   uint16_t type, uint32_t ttl, const uint8_t *rd,
		   size_t rdlen, uint32_t line)
{
	uint8_t lname[WIRE_NAME_MAX];
	struct rec *r;

	if (b->n_recs == b->cap_recs) {
		size_t cap = b->cap_recs ? b->cap_recs * 2 : 4096;
		struct rec *nr = realloc(b->recs, cap * sizeof(*nr));

		if (!nr)
			return -ENOMEM;
		b->recs = nr;
		b->cap_recs = cap;
	}
	r = &b->recs[b->n_recs];
	wire_name_lower(owner, owner_len, lname);
	if (buf_add(&b->names, lname, owner_len, &r->name_off) < 0 ||
	    buf_add(&b->rdata, rd, rdlen, &r->rd_off) < 0)
		return -ENOMEM;
	r->name_len = (uint8_t)owner_len;
	r->type = type;
	r->ttl = ttl;
	r->rdlen = (uint16_t)rdlen;
	r->line = line;
	b->n_recs++;
	return 0;
}

/* True if name (wire) is origin or below it. */
static bool name_in_zone(const uint8_t *name, size_t len,
			 const uint8_t *origin, size_t olen)
{
	const uint8_t *p = name;

	if (len < olen)
		return false;
	/* Walk label boundaries so "xexample.com" never matches "example.com". */
	while ((size_t)(name + len - p) > olen)
		p += *p + 1;
	return (size_t)(name + len - p) == olen && memcmp(p, origin, olen) == 0;
}

static int parse_file(struct builder *b, FILE *fp, const char *origin_text,
		      uint8_t *origin, size_t *olen)
{
	ldns_rdf *origin_rdf = NULL, *prev = NULL;
	ldns_buffer *rdbuf = ldns_buffer_new(65535);
	uint32_t ttl = 3600;
	int line = 1, rc = 0;
	bool have_origin = false, seen_soa = false;

	if (!rdbuf)
		return -ENOMEM;
	if (origin_text) {
		if (ldns_str2rdf_dname(&origin_rdf, origin_text) != LDNS_STATUS_OK) {
			rc = fail(b, 0, "bad origin '%s'", origin_text);
			goto out;
		}
	}
	while (!feof(fp)) {
		ldns_rr *rr = NULL;
		int before = line;
		ldns_status st = ldns_rr_new_frm_fp_l(&rr, fp, &ttl, &origin_rdf,
						      &prev, &line);
		/* ldns has counted the newline that ended the record; report
		 * the line the record (or its closing parenthesis) is on. */
		uint32_t at = (uint32_t)(line > before ? line - 1 : line);
		ldns_rdf *owner;
		uint8_t *od;
		size_t ol;

		if (st == LDNS_STATUS_SYNTAX_EMPTY || st == LDNS_STATUS_SYNTAX_TTL ||
		    st == LDNS_STATUS_SYNTAX_ORIGIN) {
			continue;
		}
		if (st == LDNS_STATUS_SYNTAX_INCLUDE) {
			rc = fail(b, at, "$INCLUDE is not supported");
			goto out;
		}
		if (st != LDNS_STATUS_OK) {
			rc = fail(b, at, "%s", ldns_get_errorstr_by_id(st));
			goto out;
		}
		owner = ldns_rr_owner(rr);
		od = ldns_rdf_data(owner);
		ol = ldns_rdf_size(owner);
		if (ol == 0 || od[ol - 1] != 0) {
			ldns_rr_free(rr);
			rc = fail(b, at, "relative name with no $ORIGIN");
			goto out;
		}
		if (ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN) {
			ldns_rr_free(rr);
			rc = fail(b, at, "class is not IN");
			goto out;
		}
		if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_SOA) {
			if (seen_soa) {
				ldns_rr_free(rr);
				rc = fail(b, at, "second SOA record");
				goto out;
			}
			seen_soa = true;
			if (!have_origin && !origin_text) {
				/* Lower case, as the owners it is
				 * compared with ($ORIGIN Example.COM.). */
				wire_name_lower(od, ol, origin);
				*olen = ol;
				have_origin = true;
			}
		}
		if (!have_origin) {
			if (origin_rdf) {
				*olen = ldns_rdf_size(origin_rdf);
				wire_name_lower(ldns_rdf_data(origin_rdf), *olen, origin);
				have_origin = true;
			} else {
				ldns_rr_free(rr);
				rc = fail(b, at,
					  "no $ORIGIN and the first record is not the SOA");
				goto out;
			}
		}
		{
			uint8_t lo[WIRE_NAME_MAX];

			wire_name_lower(od, ol, lo);
			if (!name_in_zone(lo, ol, origin, *olen)) {
				char *s = ldns_rdf2str(owner);

				ldns_rr_free(rr);
				rc = fail(b, at, "%s is outside the zone",
					  s ? s : "owner");
				free(s);
				goto out;
			}
		}
		ldns_buffer_clear(rdbuf);
		if (ldns_rr_rdata2buffer_wire(rdbuf, rr) != LDNS_STATUS_OK ||
		    ldns_buffer_position(rdbuf) > 65535) {
			ldns_rr_free(rr);
			rc = fail(b, at, "record data too long");
			goto out;
		}
		rc = add_rec(b, od, ol, (uint16_t)ldns_rr_get_type(rr),
			     ldns_rr_ttl(rr), ldns_buffer_begin(rdbuf),
			     ldns_buffer_position(rdbuf), at);
		ldns_rr_free(rr);
		if (rc < 0) {
			fail(b, 0, "out of memory");
			goto out;
		}
	}
	if (!seen_soa)
		rc = fail(b, 0, "no SOA record");
out:
	ldns_rdf_deep_free(origin_rdf);
	ldns_rdf_deep_free(prev);
	ldns_buffer_free(rdbuf);
	return rc;
}

static int rec_cmp(const void *a, const void *b, void *arg)
{
	const struct builder *bl = arg;
	const struct rec *x = a, *y = b;
	const uint8_t *sort_names = bl->names.p, *sort_rdata = bl->rdata.p;
	size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
	int c = memcmp(sort_names + x->name_off, sort_names + y->name_off, n);

	if (c)
		return c;
	if (x->name_len != y->name_len)
		return x->name_len < y->name_len ? -1 : 1;
	if (x->type != y->type)
		return x->type < y->type ? -1 : 1;
	n = x->rdlen < y->rdlen ? x->rdlen : y->rdlen;
	c = memcmp(sort_rdata + x->rd_off, sort_rdata + y->rd_off, n);
	if (c)
		return c;
	return x->rdlen < y->rdlen ? -1 : x->rdlen > y->rdlen;
}

static struct node *tab_find(struct builder *b, const uint8_t *name,
			     size_t len)
{
	uint32_t h = zone_name_hash(name, len);

	for (size_t i = h & b->tab_mask;; i = (i + 1) & b->tab_mask) {
		struct node *n = b->tab[i];

		if (!n)
			return NULL;
		if (n->hash == h && n->name_len == len &&
		    memcmp(n->name, name, len) == 0)
			return n;
	}
}

static int node_add(struct builder *b, struct zone *z, const uint8_t *name,
		    size_t len, struct node **out)
{
	struct node *n = arena_calloc(&z->arena, sizeof(*n));
	size_t i;

	if (!n || !(n->name = arena_memdup(&z->arena, name, len)))
		return -ENOMEM;
	n->name_len = (uint8_t)len;
	n->labels = (uint8_t)wire_name_labels(name);
	n->hash = zone_name_hash(name, len);
	n->zone = z;
	if (b->n_nodes == b->cap_nodes) {
		size_t cap = b->cap_nodes ? b->cap_nodes * 2 : 1024;
		struct node **nn = realloc(b->nodes, cap * sizeof(*nn));

		if (!nn)
			return -ENOMEM;
		b->nodes = nn;
		b->cap_nodes = cap;
	}
	b->nodes[b->n_nodes++] = n;
	for (i = n->hash & b->tab_mask; b->tab[i]; i = (i + 1) & b->tab_mask)
		;
	b->tab[i] = n;
	b->tab_used++;
	*out = n;
	return 0;
}

/* Target name inside the RDATA of an NS, MX or SRV record, or NULL. */
static const uint8_t *rdata_target(uint16_t type, const uint8_t *rd,
				   uint16_t rdlen)
{
	size_t skip = type == TYPE_NS ? 0 : type == TYPE_MX ? 2 : 6;

	return rdlen > skip ? rd + skip : NULL;
}

/* Appends the A and AAAA records of one node in full wire form. */
static int add_addresses(struct buf *out, uint16_t *count,
			 const struct node *t)
{
	static const uint16_t types[] = { TYPE_A, TYPE_AAAA };
	uint32_t off;

	for (unsigned k = 0; k < 2; k++) {
		const struct rrset *s = zone_rrset(t, types[k]);
		const uint8_t *p;

		if (!s)
			continue;
		p = s->data;
		for (unsigned r = 0; r < s->count; r++) {
			uint16_t rdlen = wire_get16(p + 10);

			if (buf_add(out, t->name, t->name_len, &off) < 0 ||
			    buf_add(out, p + 2, 10u + rdlen, &off) < 0)
				return -ENOMEM;
			p += 12 + rdlen;
			(*count)++;
		}
	}
	return 0;
}

static int build_additional(struct builder *b, struct zone *z,
			    struct rrset *s)
{
	struct buf out = { 0 };
	const uint8_t *p = s->data;
	const struct node *seen[64];
	unsigned n_seen = 0;
	uint16_t count = 0;
	int rc = 0;

	for (unsigned r = 0; r < s->count && rc == 0; r++) {
		uint16_t rdlen = wire_get16(p + 10);
		const uint8_t *t = rdata_target(s->type, p + 12, rdlen);
		uint8_t lt[WIRE_NAME_MAX];
		const struct node *tn = NULL;
		bool dup = false;

		if (t) {
			size_t tl = wire_name_len(t);

			wire_name_lower(t, tl, lt);
			tn = tab_find(b, lt, tl);
		}
		p += 12 + rdlen;
		if (!tn)
			continue;
		/* Occluded addresses are glue: only a referral gives them. */
		if ((tn->flags & NODE_OCCLUDED) && s->type != TYPE_NS)
			continue;
		for (unsigned i = 0; i < n_seen; i++)
			dup |= seen[i] == tn;
		if (dup)
			continue;
		if (n_seen < 64)
			seen[n_seen++] = tn;
		rc = add_addresses(&out, &count, tn);
	}
	if (rc == 0 && count) {
		s->add = arena_memdup(&z->arena, out.p, out.len);
		s->add_len = (uint32_t)out.len;
		s->add_count = count;
		if (!s->add)
			rc = -ENOMEM;
	}
	free(out.p);
	return rc;
}

static int build(struct builder *b, struct zone *z, const uint8_t *origin,
		 size_t olen)
{
	size_t i, j, tab_size = 1024;
	int rc;

	qsort_r(b->recs, b->n_recs, sizeof(*b->recs), rec_cmp, b);
	while (tab_size < b->n_recs * 2 + 64)
		tab_size *= 2;
	b->tab = calloc(tab_size, sizeof(*b->tab));
	if (!b->tab)
		return -ENOMEM;
	b->tab_mask = tab_size - 1;

	/* Group records into nodes and RRsets. */
	for (i = 0; i < b->n_recs; i = j) {
		const struct rec *r = &b->recs[i];
		const uint8_t *name = b->names.p + r->name_off;
		struct node *n;
		struct rrset *sets;
		unsigned n_sets = 0, k;
		size_t m;

		for (j = i; j < b->n_recs && b->recs[j].name_len == r->name_len &&
		     memcmp(b->names.p + b->recs[j].name_off, name, r->name_len) == 0; j++)
			if (j == i || b->recs[j].type != b->recs[j - 1].type)
				n_sets++;
		if ((rc = node_add(b, z, name, r->name_len, &n)) < 0)
			return rc;
		sets = arena_calloc(&z->arena, n_sets * sizeof(*sets));
		if (!sets)
			return -ENOMEM;
		n->rrsets = sets;
		n->n_rrsets = (uint16_t)n_sets;
		for (k = 0, m = i; m < j; k++) {
			size_t e, len = 0;
			uint8_t *d;
			uint16_t cnt = 0;

			for (e = m; e < j && b->recs[e].type == b->recs[m].type; e++) {
				/* RFC 2181 5: identical records are one. */
				if (e > m && rec_cmp(&b->recs[e], &b->recs[e - 1], b) == 0)
					continue;
				len += 12u + b->recs[e].rdlen;
			}
			if (len > 65535)
				return fail(b, b->recs[m].line, "RRset too large");
			d = arena_alloc(&z->arena, len);
			if (!d)
				return -ENOMEM;
			sets[k].type = b->recs[m].type;
			sets[k].data = d;
			sets[k].len = (uint32_t)len;
			for (e = m; e < j && b->recs[e].type == b->recs[m].type; e++) {
				const struct rec *x = &b->recs[e];

				if (e > m && rec_cmp(x, &b->recs[e - 1], b) == 0)
					continue;
				d[0] = 0xc0;
				d[1] = 0x0c;
				wire_put16(d + 2, x->type);
				wire_put16(d + 4, CLASS_IN);
				wire_put32(d + 6, x->ttl);
				wire_put16(d + 10, x->rdlen);
				memcpy(d + 12, b->rdata.p + x->rd_off, x->rdlen);
				d += 12 + x->rdlen;
				cnt++;
			}
			sets[k].count = cnt;
			m = e;
		}
		/* RFC 1034 3.6.2; DNSSEC records may sit beside a CNAME. */
		for (k = 0; k < n_sets; k++) {
			uint16_t t = sets[k].type;

			if (t != TYPE_CNAME && t != TYPE_RRSIG && t != 47 /* NSEC */ &&
			    zone_rrset(n, TYPE_CNAME))
				return fail(b, r->line,
					    "CNAME and other data at the same name");
			if (t == TYPE_CNAME && sets[k].count > 1)
				return fail(b, r->line, "more than one CNAME at a name");
		}
		z->n_records += j - i;
	}

	/* Empty non-terminals: every ancestor up to the apex is a node. */
	for (i = 0; i < b->n_nodes; i++) {
		const uint8_t *p = b->nodes[i]->name;
		size_t len = b->nodes[i]->name_len;

		while (len > olen) {
			struct node *ent;

			len -= (size_t)*p + 1;
			p += *p + 1;
			if (tab_find(b, p, len))
				break;
			if (b->tab_used * 2 > b->tab_mask)
				return fail(b, 0, "too many names");
			if ((rc = node_add(b, z, p, len, &ent)) < 0)
				return rc;
		}
	}
	z->apex = tab_find(b, origin, olen);
	if (!z->apex || !zone_rrset(z->apex, TYPE_SOA))
		return fail(b, 0, "the SOA is not at the zone apex");
	((struct node *)z->apex)->flags |= NODE_APEX;

	/* Delegations, then what lies below them. */
	for (i = 0; i < b->n_nodes; i++)
		if (b->nodes[i] != z->apex && zone_rrset(b->nodes[i], TYPE_NS))
			b->nodes[i]->flags |= NODE_CUT;
	for (i = 0; i < b->n_nodes; i++) {
		struct node *n = b->nodes[i];
		const uint8_t *p = n->name;
		size_t len = n->name_len;

		while (len > olen) {
			struct node *a;

			len -= (size_t)*p + 1;
			p += *p + 1;
			a = tab_find(b, p, len);
			if (a && (a->flags & NODE_CUT)) {
				n->flags |= NODE_OCCLUDED;
				n->cut = a;    /* keeps the topmost cut */
			}
		}
		if (n->name[0] == 1 && n->name[1] == '*' && n->name_len > olen) {
			struct node *parent = tab_find(b, n->name + 2, n->name_len - 2u);

			if (parent)
				parent->wild = n;
		}
	}
	for (i = 0; i < b->n_nodes; i++) {
		struct node *n = b->nodes[i];

		for (unsigned k = 0; k < n->n_rrsets; k++) {
			struct rrset *s = (struct rrset *)&n->rrsets[k];

			if ((s->type == TYPE_NS || s->type == TYPE_MX ||
			     s->type == TYPE_SRV) &&
			    (rc = build_additional(b, z, s)) < 0)
				return rc;
		}
	}

	/* The negative-answer SOA, RFC 2308 3. */
	{
		const struct rrset *soa = zone_rrset(z->apex, TYPE_SOA);
		uint16_t rdlen = wire_get16(soa->data + 10);
		uint32_t ttl = wire_get32(soa->data + 6), min;
		uint8_t *d;

		if (rdlen < 20)
			return fail(b, 0, "SOA record data too short");
		min = wire_get32(soa->data + 12 + rdlen - 4);
		z->serial = wire_get32(soa->data + 12 + rdlen - 20);
		z->neg_soa_len = olen + 10u + rdlen;
		d = arena_alloc(&z->arena, z->neg_soa_len);
		if (!d)
			return -ENOMEM;
		memcpy(d, origin, olen);
		memcpy(d + olen, soa->data + 2, 10u + rdlen);
		wire_put32(d + olen + 4, ttl < min ? ttl : min);
		z->neg_soa = d;
	}
	z->nodes = arena_memdup(&z->arena, b->nodes, b->n_nodes * sizeof(*b->nodes));
	z->n_nodes = b->n_nodes;
	return z->nodes || !b->n_nodes ? 0 : -ENOMEM;
}

int zone_load(const char *file, const char *origin_text, struct zone **out,
	      char *err, size_t errlen)
{
	struct builder b = { .file = file, .err = err, .errlen = errlen };
	struct zone *z = NULL;
	uint8_t origin[WIRE_NAME_MAX];
	size_t olen = 0;
	FILE *fp;
	int rc;

	*out = NULL;
	fp = fopen(file, "r");
	if (!fp) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", file, strerror(errno));
		return rc;
	}
	rc = parse_file(&b, fp, origin_text, origin, &olen);
	fclose(fp);
	if (rc < 0)
		goto out;
	z = calloc(1, sizeof(*z));
	if (!z) {
		rc = -ENOMEM;
		goto out;
	}
	arena_init(&z->arena);
	rc = build(&b, z, origin, olen);
	if (rc == -ENOMEM)
		fail(&b, 0, "out of memory");
	if (rc < 0)
		goto out;
	{
		ldns_rdf *o = ldns_rdf_new_frm_data(LDNS_RDF_TYPE_DNAME, olen, origin);
		char *s = o ? ldns_rdf2str(o) : NULL;

		z->origin = s ? arena_strdup(&z->arena, s) : NULL;
		z->file = arena_strdup(&z->arena, file);
		free(s);
		ldns_rdf_deep_free(o);
		if (!z->origin || !z->file) {
			rc = -ENOMEM;
			fail(&b, 0, "out of memory");
			goto out;
		}
	}
	*out = z;
	z = NULL;
out:
	zone_free(z);
	free(b.names.p);
	free(b.rdata.p);
	free(b.recs);
	free(b.tab);
	free(b.nodes);
	return rc;
}

void zone_free(struct zone *z)
{
	if (!z)
		return;
	arena_fini(&z->arena);
	free(z);
}
