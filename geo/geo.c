/* geo/geo.c - MMDB -> flat range table, and the query-path lookup.
 *
 * Load time (control thread): geo_load() walks the MMDB search tree depth
 * first, left to right, so leaves come out in address order. Each leaf
 * becomes a range [start, next start) with a location id; a range with the
 * same id as the one before it is not started, which merges adjacent
 * networks (also non-sibling ones) with equal locations. Locations are
 * deduplicated by value, so two MMDB records that differ only in fields we
 * ignore (city names) merge too. The result covers all 2^128 addresses.
 *
 * IPv4 (::ffff:0:0/96) has its own compact table of 32-bit starts, 8 bytes
 * a range; in the IPv6 table that whole /96 is one marker range, so IPv6
 * scopes never cover it and IPv4 scopes never leave it (they are >= 96).
 *
 * Query time (any thread): the range holding an address is found by binary
 * search in a bucket given by the top 16 bits of the address. The honest
 * scope is the widest CIDR block around the address inside that range,
 * computed from the range ends: the block must exclude start-1 and end+1.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <arpa/inet.h>

#include <maxminddb.h>

#include "geo/geo.h"

#include "common/hash.h"

#define LOC_NONE  UINT32_MAX          /* not in the database */
#define LOC_ALIAS (UINT32_MAX - 1)    /* region answered from IPv4 data */
#define NBUCKET   65536

/* Regions where MMDB IPv6 trees keep or alias IPv4 data. */
enum { ALIAS_COMPAT = 1, ALIAS_6TO4 = 2, ALIAS_TEREDO = 4 };

struct u128 {
	uint64_t hi, lo;
};

/* A range runs from its start to the next range's start - 1 (or the end
 * of the space); loc is a location id, LOC_NONE or LOC_ALIAS. */
struct range6 {
	uint64_t hi, lo;
	uint32_t loc;
};

struct range4 {
	uint32_t start;
	uint32_t loc;
};

struct geo_db {
	struct range6 *r6;       /* n6, ascending, r6[0] starts at :: */
	size_t n6;
	struct range4 *r4;       /* n4, ascending, r4[0].start == 0 */
	size_t n4;
	struct geo_loc *locs;
	size_t nlocs;
	unsigned aliases;        /* ALIAS_* */
	uint32_t idx6[NBUCKET + 1];  /* r6 index holding (t << 112) */
	/* Finer index for 2000::/4, where nearly all IPv6 data is: bucket t
	 * of 2^gbits holds 2000::/4 + (t << (124 - gbits)). */
	uint32_t *gidx;              /* 2^gbits + 1 entries */
	unsigned gbits;
	uint32_t idx4[NBUCKET + 1];  /* r4 index holding (t << 16) */
	struct geo_stats st;
	uint64_t build_epoch;
	char type[64];
};

/* ---- 128-bit helpers ---------------------------------------------------- */

static inline struct u128 u128_from(const struct in6_addr *a)
{
	const uint8_t *b = a->s6_addr;
	struct u128 k = { 0, 0 };

	for (int i = 0; i < 8; i++) {
		k.hi = k.hi << 8 | b[i];
		k.lo = k.lo << 8 | b[i + 8];
	}
	return k;
}

static inline bool u128_le(struct u128 a, struct u128 b)
{
	return a.hi < b.hi || (a.hi == b.hi && a.lo <= b.lo);
}

static inline bool u128_eq(struct u128 a, struct u128 b)
{
	return a.hi == b.hi && a.lo == b.lo;
}

/* Leading zeros of a ^ b; a != b. */
static inline unsigned clz_xor(struct u128 a, struct u128 b)
{
	uint64_t h = a.hi ^ b.hi;

	return h ? (unsigned)__builtin_clzll(h)
		 : 64 + (unsigned)__builtin_clzll(a.lo ^ b.lo);
}

static inline struct u128 u128_dec(struct u128 a)
{
	if (a.lo-- == 0)
		a.hi--;
	return a;
}

/* Bit number `bit` (0 = most significant) set. */
static inline struct u128 u128_setbit(struct u128 a, unsigned bit)
{
	if (bit < 64)
		a.hi |= 1ULL << (63 - bit);
	else
		a.lo |= 1ULL << (127 - bit);
	return a;
}

/* Do a and b agree on their first len bits? */
static bool u128_prefix_eq(struct u128 a, struct u128 b, unsigned len)
{
	if (len == 0)
		return true;
	if (len <= 64)
		return ((a.hi ^ b.hi) >> (64 - len)) == 0;
	if (a.hi != b.hi)
		return false;
	return len == 128 || ((a.lo ^ b.lo) >> (128 - len)) == 0;
}

/* ---- query path --------------------------------------------------------- */

/* Index of the IPv6 range holding k, searching [lo, hi] (r6[lo] <= k). */
static inline size_t find6(const struct geo_db *db, struct u128 k, size_t lo,
			   size_t hi)
{
	while (lo < hi) {
		size_t mid = lo + (hi - lo + 1) / 2;
		struct u128 m = { db->r6[mid].hi, db->r6[mid].lo };

		if (u128_le(m, k))
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}

/* Widest prefix around k inside IPv6 range i: exclude start-1 and end+1. */
static inline unsigned plen6(const struct geo_db *db, size_t i, struct u128 k)
{
	struct u128 s = { db->r6[i].hi, db->r6[i].lo };
	unsigned p = 0, q;

	if (s.hi | s.lo)
		p = clz_xor(u128_dec(s), k) + 1;
	if (i + 1 < db->n6) {
		struct u128 e1 = { db->r6[i + 1].hi, db->r6[i + 1].lo };

		q = clz_xor(e1, k) + 1;
		if (q > p)
			p = q;
	}
	return p;
}

/* IPv4 lookup; *plen in the 128-bit space (96..128). */
static inline uint32_t lookup4(const struct geo_db *db, uint32_t v4,
			       unsigned *plen)
{
	size_t lo = db->idx4[v4 >> 16], hi = db->idx4[(v4 >> 16) + 1];
	unsigned p = 0, q;

	while (lo < hi) {
		size_t mid = lo + (hi - lo + 1) / 2;

		if (db->r4[mid].start <= v4)
			lo = mid;
		else
			hi = mid - 1;
	}
	if (db->r4[lo].start)
		p = (unsigned)__builtin_clz((db->r4[lo].start - 1) ^ v4) + 1;
	if (lo + 1 < db->n4) {
		q = (unsigned)__builtin_clz(db->r4[lo + 1].start ^ v4) + 1;
		if (q > p)
			p = q;
	}
	*plen = 96 + p;
	return db->r4[lo].loc;
}

const struct geo_loc *geo_lookup(const struct geo_db *db,
				 const struct in6_addr *a, unsigned *plen)
{
	struct u128 k = u128_from(a);
	unsigned p, dummy;
	uint32_t id;

	if (plen == NULL)
		plen = &dummy;
	if (k.hi == 0 && (k.lo >> 32) == 0xffff) {
		id = lookup4(db, (uint32_t)k.lo, plen);
	} else if ((db->aliases & ALIAS_COMPAT) && k.hi == 0 &&
		   (k.lo >> 32) == 0) {
		id = lookup4(db, (uint32_t)k.lo, plen);     /* ::a.b.c.d */
	} else if ((db->aliases & ALIAS_6TO4) && (k.hi >> 48) == 0x2002) {
		/* 2002:AABB:CCDD::/48 carries the IPv4 address in bits
		 * 16..47; a v4 block of p-96 bits is a 6to4 block of
		 * 16+p-96 bits. */
		id = lookup4(db, (uint32_t)(k.hi >> 16), &p);
		*plen = 16 + (p - 96);
	} else if ((db->aliases & ALIAS_TEREDO) && (k.hi >> 32) == 0x20010000) {
		/* Teredo: the server's IPv4 address in bits 32..63. */
		id = lookup4(db, (uint32_t)k.hi, &p);
		*plen = 32 + (p - 96);
	} else {
		size_t i;

		if ((k.hi >> 60) == 2) {
			size_t t = (size_t)(k.hi >> (60 - db->gbits)) &
				   (((size_t)1 << db->gbits) - 1);

			i = find6(db, k, db->gidx[t], db->gidx[t + 1]);
		} else {
			unsigned t = (unsigned)(k.hi >> 48);

			i = find6(db, k, db->idx6[t], db->idx6[t + 1]);
		}

		*plen = plen6(db, i, k);
		id = db->r6[i].loc;
	}
	return id < db->nlocs ? &db->locs[id] : NULL;
}

void geo_prefetch_loc(const struct geo_loc *loc)
{
	__builtin_prefetch(loc);
	__builtin_prefetch((const char *)(loc + 1) - 1);
}

void geo_prefetch(const struct geo_db *db, const struct in6_addr *a, int stage)
{
	struct u128 k = u128_from(a);
	const uint32_t *ix;
	size_t t;

	if (k.hi == 0 && (k.lo >> 32) == 0xffff) {
		t = (size_t)((uint32_t)k.lo >> 16);
		if (stage == 0) {
			__builtin_prefetch(&db->idx4[t]);
		} else {
			__builtin_prefetch(&db->r4[db->idx4[t]]);
			__builtin_prefetch(&db->r4[db->idx4[t + 1]]);
		}
		return;
	}
	if ((k.hi >> 60) == 2) {
		ix = db->gidx;
		t = (size_t)(k.hi >> (60 - db->gbits)) & (((size_t)1 << db->gbits) - 1);
	} else if (k.hi >> 48) {
		ix = db->idx6;
		t = (size_t)(k.hi >> 48);
	} else {
		return;      /* ::/16: the aliases; not worth it */
	}
	if (stage == 0) {
		__builtin_prefetch(&ix[t]);
	} else {
		__builtin_prefetch(&db->r6[ix[t]]);
		__builtin_prefetch(&db->r6[ix[t + 1]]);
	}
}

/* ---- load time: building ------------------------------------------------ */

struct rec {
	uint64_t value;
	uint8_t type;            /* MMDB_RECORD_TYPE_* */
	MMDB_entry_s entry;
};

struct offslot {                 /* data offset -> location id */
	uint64_t off;
	uint32_t id;
	uint32_t used;
};

struct walker {
	MMDB_s *mmdb;
	struct geo_db *db;
	size_t cap6, cap4;       /* of db->r6, db->r4 */
	bool in_v4;              /* walking the IPv4 subtree: emit to r4 */
	size_t loccap;
	uint32_t *lochash;       /* id + 1, 0 = empty; size lochcap */
	size_t lochcap;
	struct offslot *offhash;
	size_t offhcap, offn;
	struct rec v4;           /* the IPv4 subtree (::/96 in IPv6 trees) */
	bool special;            /* watch the alias regions */
	size_t visits, max_visits;
	char *err;
	size_t errlen;
	const char *path;
};

/* "PATH: what (detail)" into the caller's err buffer; returns rc. */
static int werr(struct walker *w, int rc, const char *what, const char *detail)
{
	if (w->errlen)
		snprintf(w->err, w->errlen, "%s: %s (%s)", w->path, what, detail);
	return rc;
}

static uint64_t loc_hash(const struct geo_loc *l)
{
	uint64_t a, b, c = 0;

	memcpy(&a, &l->lat, 8);
	memcpy(&b, &l->lon, 8);
	memcpy(&c, l->country, 6);
	return hash_mix64(a ^ hash_mix64(b ^ hash_mix64(c)));
}

static bool loc_same(const struct geo_loc *x, const struct geo_loc *y)
{
	return memcmp(&x->lat, &y->lat, 8) == 0 &&
	       memcmp(&x->lon, &y->lon, 8) == 0 &&
	       memcmp(x->country, y->country, 3) == 0 &&
	       memcmp(x->continent, y->continent, 3) == 0;
}

static int lochash_grow(struct walker *w)
{
	size_t ncap = w->lochcap ? w->lochcap * 2 : 1024;
	uint32_t *h = calloc(ncap, sizeof(*h));

	if (h == NULL)
		return -ENOMEM;
	for (size_t id = 0; id < w->db->nlocs; id++) {
		size_t s = loc_hash(&w->db->locs[id]) & (ncap - 1);

		while (h[s])
			s = (s + 1) & (ncap - 1);
		h[s] = (uint32_t)id + 1;
	}
	free(w->lochash);
	w->lochash = h;
	w->lochcap = ncap;
	return 0;
}

/* Id of *l, adding it when new. */
static int loc_intern(struct walker *w, const struct geo_loc *l, uint32_t *id)
{
	struct geo_db *db = w->db;
	size_t s;

	if ((db->nlocs + 1) * 2 > w->lochcap && lochash_grow(w) < 0)
		return -ENOMEM;
	s = loc_hash(l) & (w->lochcap - 1);
	for (; w->lochash[s]; s = (s + 1) & (w->lochcap - 1)) {
		if (loc_same(&db->locs[w->lochash[s] - 1], l)) {
			*id = w->lochash[s] - 1;
			return 0;
		}
	}
	if (db->nlocs >= LOC_ALIAS)
		return -ENOMEM;
	if (db->nlocs == w->loccap) {
		size_t ncap = w->loccap ? w->loccap * 2 : 256;
		struct geo_loc *p = realloc(db->locs, ncap * sizeof(*p));

		if (p == NULL)
			return -ENOMEM;
		db->locs = p;
		w->loccap = ncap;
	}
	db->locs[db->nlocs] = *l;
	geo_unit_vector(l->lat, l->lon, db->locs[db->nlocs].v);
	*id = (uint32_t)db->nlocs++;
	w->lochash[s] = *id + 1;
	return 0;
}

/* One value at a path: 1 found, 0 absent, <0 corrupt data. */
static int get_value(MMDB_entry_s *e, MMDB_entry_data_s *d,
		     const char *const *path)
{
	int st = MMDB_aget_value(e, d, path);

	if (st == MMDB_LOOKUP_PATH_DOES_NOT_MATCH_DATA_ERROR ||
	    st == MMDB_INVALID_LOOKUP_PATH_ERROR)
		return 0;
	if (st != MMDB_SUCCESS)
		return -EINVAL;
	return d->has_data ? 1 : 0;
}

static int get_double(MMDB_entry_s *e, const char *k1, const char *k2,
		      double *out, bool *ok)
{
	const char *const path[] = { k1, k2, NULL };
	MMDB_entry_data_s d;
	int rc = get_value(e, &d, path);

	*ok = false;
	if (rc <= 0)
		return rc;
	if (d.type == MMDB_DATA_TYPE_DOUBLE)
		*out = d.double_value;
	else if (d.type == MMDB_DATA_TYPE_FLOAT)
		*out = d.float_value;
	else
		return 0;
	*ok = isfinite(*out);
	return 0;
}

/* Two-letter code at k1.k2, upper-cased, or "" (absent or malformed). */
static int get_code(MMDB_entry_s *e, const char *k1, const char *k2,
		    char out[3])
{
	const char *const path[] = { k1, k2, NULL };
	MMDB_entry_data_s d;
	int rc = get_value(e, &d, path);

	out[0] = '\0';
	if (rc <= 0)
		return rc;
	if (d.type != MMDB_DATA_TYPE_UTF8_STRING || d.data_size != 2)
		return 0;
	for (int i = 0; i < 2; i++) {
		char c = d.utf8_string[i];

		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		if (c < 'A' || c > 'Z') {
			out[0] = '\0';
			return 0;
		}
		out[i] = c;
	}
	out[2] = '\0';
	return 0;
}

/* Location of one data record: *id, or LOC_NONE when it has none. */
static int decode_loc(struct walker *w, MMDB_entry_s *e, uint32_t *id)
{
	struct geo_loc l;
	bool hlat, hlon;
	int rc;

	memset(&l, 0, sizeof(l));
	if ((rc = get_double(e, "location", "latitude", &l.lat, &hlat)) < 0 ||
	    (rc = get_double(e, "location", "longitude", &l.lon, &hlon)) < 0 ||
	    (rc = get_code(e, "country", "iso_code", l.country)) < 0 ||
	    (rc = get_code(e, "continent", "code", l.continent)) < 0)
		return rc;
	if (l.country[0] == '\0' &&
	    (rc = get_code(e, "registered_country", "iso_code", l.country)) < 0)
		return rc;
	if (hlat && hlon && fabs(l.lat) <= 90 && fabs(l.lon) <= 180) {
		if (l.continent[0] == '\0' && l.country[0])
			geo_country_centroid(l.country, &(double){ 0 },
					     &(double){ 0 }, l.continent);
	} else if (l.country[0] &&
		   geo_country_centroid(l.country, &l.lat, &l.lon,
					l.continent[0] ? NULL : l.continent) == 0) {
		w->db->st.centroids++;
	} else if (l.continent[0] &&
		   geo_continent_centroid(l.continent, &l.lat, &l.lon) == 0) {
		l.country[0] = '\0';
		w->db->st.centroids++;
	} else {
		w->db->st.unlocated++;
		*id = LOC_NONE;
		return 0;
	}
	return loc_intern(w, &l, id);
}

static int offhash_grow(struct walker *w)
{
	size_t ncap = w->offhcap ? w->offhcap * 2 : 4096;
	struct offslot *h = calloc(ncap, sizeof(*h));

	if (h == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < w->offhcap; i++) {
		size_t s;

		if (!w->offhash[i].used)
			continue;
		s = hash_mix64(w->offhash[i].off) & (ncap - 1);
		while (h[s].used)
			s = (s + 1) & (ncap - 1);
		h[s] = w->offhash[i];
	}
	free(w->offhash);
	w->offhash = h;
	w->offhcap = ncap;
	return 0;
}

/* Location id of a leaf record; data records decoded once per offset. */
static int rec_loc(struct walker *w, const struct rec *r, uint32_t *id)
{
	MMDB_entry_s e = r->entry;
	size_t s;
	int rc;

	if (r->type == MMDB_RECORD_TYPE_EMPTY) {
		*id = LOC_NONE;
		return 0;
	}
	if (r->type != MMDB_RECORD_TYPE_DATA)
		return werr(w, -EINVAL, "corrupt search tree",
			    "record points outside the data section");
	w->db->st.records++;
	if ((w->offn + 1) * 2 > w->offhcap && offhash_grow(w) < 0)
		return -ENOMEM;
	s = hash_mix64(e.offset) & (w->offhcap - 1);
	for (; w->offhash[s].used; s = (s + 1) & (w->offhcap - 1)) {
		if (w->offhash[s].off == e.offset) {
			*id = w->offhash[s].id;
			return 0;
		}
	}
	if ((rc = decode_loc(w, &e, id)) < 0)
		return rc == -EINVAL ? werr(w, rc, "corrupt data section",
					    "undecodable record") : rc;
	w->offhash[s] = (struct offslot){ e.offset, *id, 1 };
	w->offn++;
	return 0;
}

/* Starts a range at `start` unless the previous one has the same id. In
 * the IPv4 subtree the start is ::ffff:0:0 + a 32-bit address. */
static int emit(struct walker *w, struct u128 start, uint32_t id)
{
	struct geo_db *db = w->db;

	if (w->in_v4) {
		uint32_t v4 = (uint32_t)start.lo;

		if (db->n4 && db->r4[db->n4 - 1].loc == id)
			return 0;
		if (db->n4 && v4 <= db->r4[db->n4 - 1].start)
			return werr(w, -EINVAL, "corrupt search tree",
				    "networks out of order");
		if (db->n4 == w->cap4) {
			size_t ncap = w->cap4 ? w->cap4 * 2 : 4096;
			struct range4 *r = realloc(db->r4, ncap * sizeof(*r));

			if (r == NULL)
				return -ENOMEM;
			db->r4 = r;
			w->cap4 = ncap;
		}
		db->r4[db->n4++] = (struct range4){ v4, id };
		return 0;
	}
	if (db->n6 && db->r6[db->n6 - 1].loc == id)
		return 0;
	if (db->n6 && u128_le(start, (struct u128){ db->r6[db->n6 - 1].hi,
						    db->r6[db->n6 - 1].lo }))
		return werr(w, -EINVAL, "corrupt search tree",
			    "networks out of order");
	if (db->n6 == w->cap6) {
		size_t ncap = w->cap6 ? w->cap6 * 2 : 4096;
		struct range6 *r = realloc(db->r6, ncap * sizeof(*r));

		if (r == NULL)
			return -ENOMEM;
		db->r6 = r;
		w->cap6 = ncap;
	}
	db->r6[db->n6++] = (struct range6){ start.hi, start.lo, id };
	return 0;
}

enum special { SP_NONE, SP_COMPAT, SP_MAPPED, SP_6TO4, SP_TEREDO };

static const struct {
	struct u128 net;
	unsigned len;
	enum special sp;
} specials[] = {
	{ { 0, 0 }, 96, SP_COMPAT },
	{ { 0, 0xffff00000000ULL }, 96, SP_MAPPED },
	{ { 0x2002000000000000ULL, 0 }, 16, SP_6TO4 },
	{ { 0x2001000000000000ULL, 0 }, 32, SP_TEREDO },
};
#define NSPECIAL (sizeof(specials) / sizeof(specials[0]))

static enum special special_at(struct u128 base, unsigned depth)
{
	for (size_t i = 0; i < NSPECIAL; i++)
		if (depth == specials[i].len && u128_eq(base, specials[i].net))
			return specials[i].sp;
	return SP_NONE;
}

/* Is a special region strictly inside base/depth? */
static bool special_inside(struct u128 base, unsigned depth)
{
	for (size_t i = 0; i < NSPECIAL; i++)
		if (depth < specials[i].len &&
		    u128_prefix_eq(base, specials[i].net, depth))
			return true;
	return false;
}

static int walk(struct walker *w, const struct rec *r, struct u128 base,
		unsigned depth)
{
	struct rec kid[2];
	uint32_t id;
	int rc;

	if (w->special) {
		switch (special_at(base, depth)) {
		case SP_MAPPED: {
			/* IPv4 lives here in our table, aliased or not. A
			 * tree with nothing at ::/96 but data here keeps its
			 * IPv4 data here. */
			const struct rec *v4 = &w->v4;

			if (v4->type == MMDB_RECORD_TYPE_EMPTY &&
			    r->type != MMDB_RECORD_TYPE_EMPTY)
				v4 = r;
			if ((rc = emit(w, base, LOC_ALIAS)) < 0)
				return rc;
			w->special = false;
			w->in_v4 = true;
			rc = walk(w, v4, base, depth);
			w->in_v4 = false;
			w->special = true;
			return rc;
		}
		case SP_COMPAT:
			w->db->aliases |= ALIAS_COMPAT;
			return emit(w, base, LOC_ALIAS);
		case SP_6TO4:
		case SP_TEREDO:
			if (w->v4.type == MMDB_RECORD_TYPE_SEARCH_NODE &&
			    r->type == MMDB_RECORD_TYPE_SEARCH_NODE &&
			    r->value == w->v4.value) {
				w->db->aliases |= special_at(base, depth) ==
					SP_6TO4 ? ALIAS_6TO4 : ALIAS_TEREDO;
				return emit(w, base, LOC_ALIAS);
			}
			break;
		case SP_NONE:
			break;
		}
	}
	if (r->type != MMDB_RECORD_TYPE_SEARCH_NODE) {
		if (!w->special || !special_inside(base, depth)) {
			if ((rc = rec_loc(w, r, &id)) < 0)
				return rc;
			return emit(w, base, id);
		}
		/* A leaf over an alias region: split it on the way down. */
		kid[0] = kid[1] = *r;
	} else {
		MMDB_search_node_s node;

		if (depth >= 128)
			return werr(w, -EINVAL, "corrupt search tree",
				    "deeper than 128 bits");
		if (++w->visits > w->max_visits)
			return werr(w, -EINVAL, "corrupt search tree",
				    "nodes shared or looping");
		if (MMDB_read_node(w->mmdb, (uint32_t)r->value, &node) !=
		    MMDB_SUCCESS)
			return werr(w, -EINVAL, "corrupt search tree",
				    "bad node number");
		kid[0] = (struct rec){ node.left_record, node.left_record_type,
				       node.left_record_entry };
		kid[1] = (struct rec){ node.right_record,
				       node.right_record_type,
				       node.right_record_entry };
	}
	if ((rc = walk(w, &kid[0], base, depth + 1)) < 0)
		return rc;
	return walk(w, &kid[1], u128_setbit(base, depth), depth + 1);
}

/* The record at ::/96 of an IPv6 tree: where IPv4 lives. */
static int find_v4(struct walker *w, struct rec *out)
{
	struct rec r = { 0, MMDB_RECORD_TYPE_SEARCH_NODE, { w->mmdb, 0 } };

	for (unsigned d = 0; d < 96 && r.type == MMDB_RECORD_TYPE_SEARCH_NODE;
	     d++) {
		MMDB_search_node_s node;

		if (MMDB_read_node(w->mmdb, (uint32_t)r.value, &node) !=
		    MMDB_SUCCESS)
			return werr(w, -EINVAL, "corrupt search tree",
				    "bad node number");
		r = (struct rec){ node.left_record, node.left_record_type,
				  node.left_record_entry };
	}
	*out = r;
	return 0;
}

static int build_index(struct geo_db *db)
{
	size_t i = 0, nb, n2 = 0;

	/* About one range per bucket of 2000::/4, 2^12..2^20 buckets (16 KiB
	 * to 4 MiB). */
	for (size_t j = 0; j < db->n6; j++)
		n2 += (db->r6[j].hi >> 60) == 2;
	db->gbits = 12;
	while (db->gbits < 20 && ((size_t)1 << db->gbits) < n2)
		db->gbits++;
	nb = (size_t)1 << db->gbits;
	if ((db->gidx = malloc((nb + 1) * sizeof(*db->gidx))) == NULL)
		return -ENOMEM;
	for (size_t t = 0; t <= nb; t++) {
		struct u128 k = { 0x2ULL << 60 | (uint64_t)t << (60 - db->gbits),
				  0 };

		if (t == nb)
			k = (struct u128){ 0x2fffffffffffffffULL, UINT64_MAX };
		while (i + 1 < db->n6 &&
		       u128_le((struct u128){ db->r6[i + 1].hi,
					      db->r6[i + 1].lo }, k))
			i++;
		db->gidx[t] = (uint32_t)i;
	}
	i = 0;

	for (uint32_t t = 0; t < NBUCKET; t++) {
		struct u128 k = { (uint64_t)t << 48, 0 };

		while (i + 1 < db->n6 &&
		       u128_le((struct u128){ db->r6[i + 1].hi,
					      db->r6[i + 1].lo }, k))
			i++;
		db->idx6[t] = (uint32_t)i;
	}
	db->idx6[NBUCKET] = (uint32_t)(db->n6 - 1);
	i = 0;
	for (uint32_t t = 0; t < NBUCKET; t++) {
		while (i + 1 < db->n4 && db->r4[i + 1].start <= t << 16)
			i++;
		db->idx4[t] = (uint32_t)i;
	}
	db->idx4[NBUCKET] = (uint32_t)(db->n4 - 1);
	return 0;
}

static int open_err(const char *path, int st, char *err, size_t errlen)
{
	int rc = st == MMDB_OUT_OF_MEMORY_ERROR ? -ENOMEM : -EINVAL;

	if (st == MMDB_INVALID_METADATA_ERROR)
		snprintf(err, errlen, "%s: not a MaxMind DB file (%s)", path,
			 MMDB_strerror(st));
	else
		snprintf(err, errlen, "%s: %s", path, MMDB_strerror(st));
	return rc;
}

int geo_load(const char *path, struct geo_db **out, char *err, size_t errlen)
{
	MMDB_s mmdb;
	struct walker w;
	struct geo_db *db = NULL;
	struct stat sb;
	bool opened = false;
	int rc, st;

	memset(&w, 0, sizeof(w));
	w.err = err;
	w.errlen = errlen;
	w.path = path;
	if (errlen)
		err[0] = '\0';
	*out = NULL;
	if (stat(path, &sb) < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		rc = -EINVAL;
		snprintf(err, errlen, "%s: not a regular file", path);
		goto out;
	}
	if ((st = MMDB_open(path, MMDB_MODE_MMAP, &mmdb)) != MMDB_SUCCESS) {
		if (st == MMDB_FILE_OPEN_ERROR) {
			rc = -ENOENT;
			snprintf(err, errlen, "%s: %s", path, MMDB_strerror(st));
		} else {
			rc = open_err(path, st, err, errlen);
		}
		goto out;
	}
	opened = true;
	if (mmdb.metadata.ip_version != 4 && mmdb.metadata.ip_version != 6) {
		rc = werr(&w, -EINVAL, "unsupported ip_version",
			  "metadata");
		goto out;
	}
	if (mmdb.metadata.node_count == 0) {
		rc = werr(&w, -EINVAL, "empty search tree", "0 nodes");
		goto out;
	}
	if ((db = calloc(1, sizeof(*db))) == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	w.mmdb = &mmdb;
	w.db = db;
	/* Each node is visited once (aliases are not followed); the slack
	 * allows some shared subtrees, which no writer we know produces, while
	 * a looping or exponentially shared tree still ends with an error. */
	w.max_visits = 4 * (size_t)mmdb.metadata.node_count + (1 << 20);
	if (mmdb.metadata.ip_version == 6) {
		struct rec root = { 0, MMDB_RECORD_TYPE_SEARCH_NODE,
				    { &mmdb, 0 } };

		if ((rc = find_v4(&w, &w.v4)) < 0)
			goto out;
		w.special = true;
		rc = walk(&w, &root, (struct u128){ 0, 0 }, 0);
	} else {
		/* IPv4-only tree: everything else is not found. */
		struct u128 mapped = { 0, 0xffff00000000ULL };

		w.v4 = (struct rec){ 0, MMDB_RECORD_TYPE_SEARCH_NODE,
				     { &mmdb, 0 } };
		if ((rc = emit(&w, (struct u128){ 0, 0 }, LOC_NONE)) < 0 ||
		    (rc = emit(&w, mapped, LOC_ALIAS)) < 0)
			goto out;
		w.in_v4 = true;
		rc = walk(&w, &w.v4, mapped, 96);
		w.in_v4 = false;
		if (rc < 0)
			goto out;
		rc = emit(&w, (struct u128){ 0, 0x1000000000000ULL }, LOC_NONE);
	}
	if (rc < 0)
		goto out;
	if (db->n6 == 0 || db->n4 == 0 || db->r4[0].start != 0) {
		rc = werr(&w, -EINVAL, "corrupt search tree", "no IPv4 subtree");
		goto out;
	}
	if (db->n6 >= LOC_ALIAS || db->n4 >= LOC_ALIAS) {
		rc = werr(&w, -ENOMEM, "too many networks", "> 2^32");
		goto out;
	}
	/* Give back the growth slack: the table lives as long as the db. */
	if (db->n6 < w.cap6) {
		struct range6 *r = realloc(db->r6, db->n6 * sizeof(*r));

		if (r) {
			db->r6 = r;
			w.cap6 = db->n6;
		}
	}
	if (db->n4 < w.cap4) {
		struct range4 *r = realloc(db->r4, db->n4 * sizeof(*r));

		if (r) {
			db->r4 = r;
			w.cap4 = db->n4;
		}
	}
	if ((rc = build_index(db)) < 0)
		goto out;
	snprintf(db->type, sizeof(db->type), "%s",
		 mmdb.metadata.database_type ? mmdb.metadata.database_type : "");
	db->build_epoch = mmdb.metadata.build_epoch;
	db->st.ranges = db->n4 + db->n6;
	for (size_t i = 0; i < db->n6; i++)
		db->st.networks += db->r6[i].loc < db->nlocs;
	for (size_t i = 0; i < db->n4; i++)
		db->st.networks += db->r4[i].loc < db->nlocs;
	db->st.locations = db->nlocs;
	db->st.bytes = sizeof(*db) + w.cap6 * sizeof(struct range6) +
		       w.cap4 * sizeof(struct range4) +
		       w.loccap * sizeof(struct geo_loc) +
		       (((size_t)1 << db->gbits) + 1) * sizeof(*db->gidx);
	*out = db;
	db = NULL;
	rc = 0;
out:
	if (rc == -ENOMEM && errlen && err[0] == '\0')
		snprintf(err, errlen, "%s: out of memory", path);
	free(w.lochash);
	free(w.offhash);
	geo_free(db);
	if (opened)
		MMDB_close(&mmdb);
	return rc;
}

void geo_free(struct geo_db *db)
{
	if (db == NULL)
		return;
	free(db->r6);
	free(db->r4);
	free(db->gidx);
	free(db->locs);
	free(db);
}

size_t geo_count(const struct geo_db *db)
{
	return db->st.networks;
}

void geo_stats(const struct geo_db *db, struct geo_stats *st)
{
	*st = db->st;
}

size_t geo_locations(const struct geo_db *db)
{
	return db->nlocs;
}

const struct geo_loc *geo_location(const struct geo_db *db, uint32_t id)
{
	return id < db->nlocs ? &db->locs[id] : NULL;
}

uint32_t geo_loc_id(const struct geo_db *db, const struct geo_loc *loc)
{
	return (uint32_t)(loc - db->locs);
}

const char *geo_db_type(const struct geo_db *db)
{
	return db->type;
}

uint64_t geo_build_epoch(const struct geo_db *db)
{
	return db->build_epoch;
}
