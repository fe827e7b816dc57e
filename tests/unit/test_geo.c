/* tests/unit/test_geo.c - GeoIP table: lookups and honest prefix lengths
 * against tests/fixtures/geo/networks.tsv, a cross-check against
 * libmaxminddb itself, load errors, centroids, distances, CIDR parsing, and
 * an informational lookup micro-benchmark.
 *
 * Test databases are generated into a temporary directory by running
 * tests/tools/mkmmdb.pl (run from the repository root, or set
 * GSLB_SRCDIR). GEO_XCHECK_DB=FILE also cross-checks and benchmarks that
 * database (say a real GeoLite2-City) against libmaxminddb. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <maxminddb.h>

#include "common/addr.h"
#include "geo/geo.h"
#include "tests/unit/harness.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static char tmpdir[64];

/* Expected locations: city coordinates from networks.tsv, or "centroid of
 * country" (lat/lon NAN, taken from geo_country_centroid). */
struct want {
	const char *cc, *cont;
	double lat, lon;
};
static const struct want FRA = { "DE", "EU", 50.1109, 8.6821 };
static const struct want IAD = { "US", "NA", 39.0438, -77.4874 };
static const struct want TYO = { "JP", "AS", 35.6895, 139.6917 };
static const struct want SIN = { "SG", "AS", 1.3521, 103.8198 };
static const struct want GRU = { "BR", "SA", -23.5505, -46.6333 };
static const struct want SYD = { "AU", "OC", -33.8688, 151.2093 };
static const struct want SJC = { "US", "NA", 37.3541, -121.9552 };
static const struct want PAR = { "FR", "EU", 48.8566, 2.3522 };
static const struct want LON = { "GB", "EU", 51.5074, -0.1278 };
static const struct want NYC = { "US", "NA", 40.7128, -74.0060 };
static const struct want C_CA = { "CA", "NA", NAN, NAN };
static const struct want C_GB = { "GB", "EU", NAN, NAN };
static const struct want C_JP = { "JP", "AS", NAN, NAN };
static const struct want C_DE = { "DE", "EU", NAN, NAN };
static const struct want C_FR = { "FR", "EU", NAN, NAN };
static const struct want C_US = { "US", "NA", NAN, NAN };

struct lcase {
	const char *addr;
	const struct want *want;   /* NULL: not found */
	unsigned plen;             /* 128-bit space */
};

/* networks.tsv, city database with aliases. Expected prefix lengths worked
 * out by hand: the widest block around the address that holds no address
 * with another result. */
static const struct lcase city_cases[] = {
	{ "127.0.1.1", &FRA, 120 },
	{ "127.0.2.200", &IAD, 120 },
	{ "127.0.3.3", &TYO, 120 },
	{ "127.0.4.4", &SIN, 120 },
	{ "127.0.5.5", &GRU, 120 },
	{ "127.0.6.6", &SYD, 120 },
	{ "127.0.7.7", &SJC, 120 },
	{ "127.0.8.8", &PAR, 120 },
	{ "127.0.9.9", &LON, 120 },
	{ "127.0.10.5", &C_CA, 120 },          /* country-only record */
	{ "::ffff:127.0.1.1", &FRA, 120 },
	/* adjacent /25 + /26 + /26, same location: one /24 */
	{ "192.0.2.5", &FRA, 120 },
	{ "192.0.2.130", &FRA, 120 },
	{ "192.0.2.250", &FRA, 120 },
	/* wide /24 US with /27 FR inside at .64 */
	{ "198.51.100.10", &IAD, 122 },        /* .0/26 */
	{ "198.51.100.64", &PAR, 123 },
	{ "198.51.100.95", &PAR, 123 },
	{ "198.51.100.96", &IAD, 123 },        /* .96/27: /26 would hit .64 */
	{ "198.51.100.200", &IAD, 121 },       /* .128/25 */
	{ "203.0.113.1", &TYO, 121 },
	{ "203.0.113.129", &SIN, 121 },
	{ "198.18.77.1", &GRU, 112 },
	{ "198.19.1.1", &SYD, 113 },
	{ "198.19.200.1", &C_GB, 113 },        /* country-only record */
	/* not found: the empty region's widest block */
	{ "127.0.0.1", NULL, 120 },            /* /23 would reach 127.0.1.0 */
	{ "127.0.11.1", NULL, 120 },
	{ "127.1.0.1", NULL, 112 },
	{ "10.1.2.3", NULL, 98 },              /* 0.0.0.0/2 */
	{ "192.168.1.1", NULL, 105 },          /* 192.128.0.0/9 */
	{ "192.0.1.1", NULL, 119 },
	{ "192.0.3.1", NULL, 120 },
	{ "198.17.1.1", NULL, 111 },
	{ "8.8.8.8", NULL, 98 },
	{ "255.255.255.255", NULL, 99 },       /* 224.0.0.0/3 */
	/* IPv6 */
	{ "2001:db8:1::5", &FRA, 48 },
	{ "2001:db8:2::ffff", &IAD, 48 },
	{ "2001:db8:3:1:2:3:4:5", &TYO, 48 },
	{ "2001:db8:4::1", &GRU, 48 },
	{ "2001:db8:5::1", &SYD, 48 },
	{ "2001:db8:6::1", &SIN, 48 },
	{ "2001:db8:7:ffff:ffff:ffff:ffff:ffff", &SJC, 48 },
	/* /48 + /48 + /47 adjacent, same location: 2001:db8:10::/46 */
	{ "2001:db8:10::1", &LON, 46 },
	{ "2001:db8:11:ffff::1", &LON, 46 },
	{ "2001:db8:13::1", &LON, 46 },
	/* /44 FR with /48 US at :28 */
	{ "2001:db8:20::1", &PAR, 45 },
	{ "2001:db8:28::1", &NYC, 48 },
	{ "2001:db8:29::1", &PAR, 48 },
	{ "2001:db8:2c::1", &PAR, 46 },
	{ "2001:db8:30::1", &C_JP, 48 },       /* country-only record */
	{ "2001:db8:40::1", &SIN, 128 },
	{ "2001:db8:40::2", NULL, 127 },
	{ "2001:db8:40::", NULL, 128 },
	{ "2001:db8:8::1", NULL, 45 },
	{ "2001:db9::1", NULL, 32 },
	{ "2a00:1450::1", NULL, 5 },           /* 2800::/5 */
	/* IPv4 aliases in the IPv6 tree, as libmaxminddb resolves them */
	{ "2002:7f00:101::1", &FRA, 40 },      /* 6to4 of 127.0.1.1 */
	{ "2001:0:7f00:201::", &IAD, 56 },     /* Teredo, server 127.0.2.1 */
	{ "::127.0.3.1", &TYO, 120 },          /* ::/96 */
	{ "::1", NULL, 98 },                   /* = 0.0.0.1 */
};

/* The same table without aliases: IPv4 still at ::ffff:0:0/96. */
static const struct lcase noalias_cases[] = {
	{ "127.0.1.1", &FRA, 120 },
	{ "192.0.2.130", &FRA, 120 },
	{ "198.51.100.96", &IAD, 123 },
	{ "10.1.2.3", NULL, 98 },
	{ "2001:db8:28::1", &NYC, 48 },
	{ "2002:7f00:101::1", NULL, 15 },      /* no 6to4 alias: 2002::/15 */
	{ "::127.0.3.1", &TYO, 120 },
};

/* IPv4-only tree: all IPv6 outside ::ffff:0:0/96 is empty. */
static const struct lcase v4only_cases[] = {
	{ "127.0.1.1", &FRA, 120 },
	{ "198.51.100.64", &PAR, 123 },
	{ "198.51.100.200", &IAD, 121 },
	{ "255.255.255.255", NULL, 99 },
	{ "2001:db8:1::5", NULL, 3 },          /* 2000::/3 */
	{ "::1", NULL, 81 },                   /* ::/81; /80 holds 127.0.1.0 */
};

/* Every record country-only: centroids. */
static const struct lcase country_cases[] = {
	{ "127.0.1.1", &C_DE, 120 },
	{ "192.0.2.5", &C_DE, 120 },
	{ "198.51.100.70", &C_FR, 123 },
	{ "198.51.100.10", &C_US, 122 },
	{ "2001:db8:28::1", &C_US, 48 },
	/* London and "City of London" were different records; now one */
	{ "2001:db8:13::1", &C_GB, 46 },
};

static int run_cmd(const char *cmd)
{
	int rc = system(cmd);

	CHECK(rc == 0, "command failed (%d): %s", rc, cmd);
	return rc;
}

/* Builds tmpdir/NAME from TSV with FLAGS; returns a static path or NULL. */
static const char *make_db(const char *name, const char *tsv,
			   const char *flags)
{
	static char paths[8][PATH_MAX];
	static int next;
	char cmd[3 * PATH_MAX];
	char *p = paths[next++ % 8];

	snprintf(p, PATH_MAX, "%s/%s", tmpdir, name);
	snprintf(cmd, sizeof(cmd), "perl tests/tools/mkmmdb.pl %s '%s' '%s'",
		 flags, tsv, p);
	return run_cmd(cmd) == 0 ? p : NULL;
}

static bool want_matches(const struct want *w, const struct geo_loc *l,
			 char *why, size_t whylen)
{
	double lat = w->lat, lon = w->lon;

	if (isnan(lat) && geo_country_centroid(w->cc, &lat, &lon, NULL) < 0) {
		snprintf(why, whylen, "no centroid for %s", w->cc);
		return false;
	}
	if (strcmp(l->country, w->cc) || strcmp(l->continent, w->cont) ||
	    lat != l->lat || lon != l->lon) {
		snprintf(why, whylen, "got %s/%s %.4f,%.4f want %s/%s %.4f,%.4f",
			 l->country, l->continent, l->lat, l->lon, w->cc,
			 w->cont, lat, lon);
		return false;
	}
	return true;
}

static void check_cases(const char *dbname, const struct geo_db *db,
			const struct lcase *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct in6_addr a;
		unsigned plen = 999, alen;
		const struct geo_loc *l;
		char why[200];

		if (addr_parse_cidr(c[i].addr, ADDR_CIDR_STRICT, &a, &alen) < 0) {
			CHECK(0, "%s: %s: does not parse", dbname, c[i].addr);
			continue;
		}
		l = geo_lookup(db, &a, &plen);
		CHECK(plen == c[i].plen, "%s: %s: plen %u, want %u", dbname,
		      c[i].addr, plen, c[i].plen);
		if (c[i].want == NULL) {
			CHECK(l == NULL, "%s: %s: found %s, want not found",
			      dbname, c[i].addr, l ? l->country : "");
			continue;
		}
		CHECK(l != NULL, "%s: %s: not found, want %s", dbname,
		      c[i].addr, c[i].want->cc);
		if (l)
			CHECK(want_matches(c[i].want, l, why, sizeof(why)),
			      "%s: %s: %s", dbname, c[i].addr, why);
	}
}

/* ---- cross-check against libmaxminddb ----------------------------------- */

struct ref {
	bool found;
	struct geo_loc loc;
};

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static bool is_v4mapped(const struct in6_addr *a)
{
	static const uint8_t pfx[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
					 0xff, 0xff };

	return memcmp(a->s6_addr, pfx, 12) == 0;
}

/* What libmaxminddb says about a, reduced to our location fields the way
 * the README documents (coordinates, else country centroid, else continent
 * centroid). v4-mapped addresses are asked as plain IPv4. Returns 0 or -1
 * (lookup error). *mmdb_len gets the MMDB network length (128-space). */
static int ref_lookup(MMDB_s *m, const struct in6_addr *a, struct ref *r,
		      unsigned *mmdb_len)
{
	char s[INET6_ADDRSTRLEN];
	int gai, st;
	MMDB_lookup_result_s res;
	MMDB_entry_data_s d;
	bool v4 = is_v4mapped(a);

	if (v4)
		inet_ntop(AF_INET, &a->s6_addr[12], s, sizeof(s));
	else
		inet_ntop(AF_INET6, a, s, sizeof(s));
	memset(r, 0, sizeof(*r));
	res = MMDB_lookup_string(m, s, &gai, &st);
	if (gai != 0 || st != MMDB_SUCCESS)
		return -1;
	if (mmdb_len)
		*mmdb_len = res.netmask + (v4 && m->metadata.ip_version == 6 ?
					   0 : (v4 ? 96 : 0));
	if (!res.found_entry)
		return 0;
	bool hlat = MMDB_get_value(&res.entry, &d, "location", "latitude",
				   NULL) == MMDB_SUCCESS && d.has_data;
	if (hlat)
		r->loc.lat = d.double_value;
	bool hlon = MMDB_get_value(&res.entry, &d, "location", "longitude",
				   NULL) == MMDB_SUCCESS && d.has_data;
	if (hlon)
		r->loc.lon = d.double_value;
	if (MMDB_get_value(&res.entry, &d, "country", "iso_code", NULL) ==
	    MMDB_SUCCESS && d.has_data && d.data_size == 2)
		memcpy(r->loc.country, d.utf8_string, 2);
	if (MMDB_get_value(&res.entry, &d, "continent", "code", NULL) ==
	    MMDB_SUCCESS && d.has_data && d.data_size == 2)
		memcpy(r->loc.continent, d.utf8_string, 2);
	if (!(hlat && hlon)) {
		if (geo_country_centroid(r->loc.country, &r->loc.lat,
					 &r->loc.lon, NULL) < 0)
			return 0;
	}
	r->found = true;
	return 0;
}

static bool same_ref(const struct ref *r, const struct geo_loc *l)
{
	if (!r->found || l == NULL)
		return !r->found && l == NULL;
	return r->loc.lat == l->lat && r->loc.lon == l->lon &&
	       strcmp(r->loc.country, l->country) == 0 &&
	       strcmp(r->loc.continent, l->continent) == 0;
}

/* Random address: a mix of the fixture's ranges, their neighbourhoods, the
 * alias regions and the whole space. */
static void rand_addr(struct in6_addr *a)
{
	static const uint32_t v4nets[][2] = {    /* net, host bits */
		{ 0x7f000000, 12 }, { 0xc0000000, 10 }, { 0xc6336400, 8 },
		{ 0xcb007100, 8 }, { 0xc6100000, 18 }, { 0, 32 },
		{ 0x0a000000, 24 },
	};
	uint64_t r = rnd(), r2 = rnd();
	unsigned kind = (unsigned)(r % 10);
	uint32_t v4;

	memset(a, 0, sizeof(*a));
	if (kind < 5) {
		unsigned k = (unsigned)((r >> 8) % N(v4nets));
		uint32_t hostmask = v4nets[k][1] == 32 ? UINT32_MAX :
			(1U << v4nets[k][1]) - 1;

		v4 = v4nets[k][0] | ((uint32_t)r2 & hostmask);
		a->s6_addr[10] = a->s6_addr[11] = 0xff;
		for (int i = 0; i < 4; i++)
			a->s6_addr[12 + i] = (uint8_t)(v4 >> (24 - 8 * i));
		return;
	}
	for (int i = 0; i < 8; i++) {
		a->s6_addr[i] = (uint8_t)(r2 >> (8 * i));
		a->s6_addr[8 + i] = (uint8_t)(rnd() >> 16);
	}
	v4 = 0x7f000000 | ((uint32_t)(r >> 16) & 0xfff);
	switch (kind) {
	case 5:                                 /* 2001:db8::/32 */
		a->s6_addr[0] = 0x20; a->s6_addr[1] = 0x01;
		a->s6_addr[2] = 0x0d; a->s6_addr[3] = 0xb8;
		break;
	case 6:                                 /* 2001:db8::/41 */
		a->s6_addr[0] = 0x20; a->s6_addr[1] = 0x01;
		a->s6_addr[2] = 0x0d; a->s6_addr[3] = 0xb8;
		a->s6_addr[4] = 0; a->s6_addr[5] &= 0x7f;
		if (r & (1 << 20)) {            /* near the /128 */
			memset(a->s6_addr + 4, 0, 12);
			a->s6_addr[5] = 0x40;
			a->s6_addr[15] = (uint8_t)(r2 & 3);
		}
		break;
	case 7:                                 /* 6to4 / Teredo / compat */
		if (r & (1 << 21)) {
			a->s6_addr[0] = 0x20; a->s6_addr[1] = 0x02;
			for (int i = 0; i < 4; i++)
				a->s6_addr[2 + i] = (uint8_t)(v4 >> (24 - 8 * i));
		} else if (r & (1 << 22)) {
			a->s6_addr[0] = 0x20; a->s6_addr[1] = 0x01;
			a->s6_addr[2] = a->s6_addr[3] = 0;
			for (int i = 0; i < 4; i++)
				a->s6_addr[4 + i] = (uint8_t)(v4 >> (24 - 8 * i));
		} else {
			memset(a->s6_addr, 0, 12);
			for (int i = 0; i < 4; i++)
				a->s6_addr[12 + i] = (uint8_t)(v4 >> (24 - 8 * i));
		}
		break;
	case 8:                                 /* near ::ffff:0:0/96 */
		memset(a->s6_addr, 0, 8);
		a->s6_addr[8] = a->s6_addr[9] = 0;
		break;
	default:                                /* anywhere */
		break;
	}
}

/* Address with the first plen bits of a, the rest from r (or all 0/1). */
static void in_prefix(const struct in6_addr *a, unsigned plen, int how,
		      struct in6_addr *out)
{
	for (unsigned i = 0; i < 16; i++) {
		unsigned keep = plen >= 8 * (i + 1) ? 8 :
			plen > 8 * i ? plen - 8 * i : 0;
		uint8_t mask = (uint8_t)(keep ? 0xff << (8 - keep) : 0);
		uint8_t fill = how == 0 ? 0 : how == 1 ? 0xff :
			(uint8_t)(rnd() >> 24);

		out->s6_addr[i] = (uint8_t)((a->s6_addr[i] & mask) |
					    (fill & ~mask));
	}
}

/* n random addresses; at least min_found of them must be in the db. */
static void cross_check(const char *name, const char *path,
			const struct geo_db *db, int n, int min_found)
{
	MMDB_s m;
	int bad_loc = 0, bad_scope = 0, wider = 0, errs = 0, found = 0;

	if (MMDB_open(path, MMDB_MODE_MMAP, &m) != MMDB_SUCCESS) {
		CHECK(0, "%s: libmaxminddb cannot open %s", name, path);
		return;
	}
	for (int i = 0; i < n; i++) {
		struct in6_addr a, b;
		struct ref r, rb;
		unsigned plen, mlen = 0;
		const struct geo_loc *l;
		char s[INET6_ADDRSTRLEN];

		rand_addr(&a);
		if (m.metadata.ip_version == 4 && !is_v4mapped(&a))
			continue;
		l = geo_lookup(db, &a, &plen);
		if (ref_lookup(&m, &a, &r, &mlen) < 0) {
			errs++;
			continue;
		}
		found += l != NULL;
		inet_ntop(AF_INET6, &a, s, sizeof(s));
		if (!same_ref(&r, l) && bad_loc++ < 5)
			CHECK(0, "%s: %s: table says %s, libmaxminddb %s", name,
			      s, l ? l->country : "none",
			      r.found ? r.loc.country : "none");
		/* Merging only widens: never narrower than the MMDB network. */
		if (plen > mlen && r.found && bad_scope++ < 5)
			CHECK(0, "%s: %s: plen %u narrower than MMDB's /%u",
			      name, s, plen, mlen);
		wider += plen < mlen;
		/* Every address in the reported prefix: same answer. */
		for (int k = 0; k < 4; k++) {
			in_prefix(&a, plen, k, &b);
			if (m.metadata.ip_version == 4 && !is_v4mapped(&b))
				continue;
			if (ref_lookup(&m, &b, &rb, NULL) < 0) {
				errs++;
				continue;
			}
			if (!same_ref(&rb, l) && bad_scope++ < 5) {
				char sb[INET6_ADDRSTRLEN];

				inet_ntop(AF_INET6, &b, sb, sizeof(sb));
				CHECK(0, "%s: %s/%u claims %s but %s is %s",
				      name, s, plen, l ? l->country : "none",
				      sb, rb.found ? rb.loc.country : "none");
			}
		}
	}
	CHECK(bad_loc == 0, "%s: %d addresses with a different location",
	      name, bad_loc);
	CHECK(bad_scope == 0, "%s: %d dishonest prefixes", name, bad_scope);
	CHECK(errs == 0, "%s: %d libmaxminddb lookup errors", name, errs);
	CHECK(found >= min_found, "%s: only %d of %d addresses found", name,
	      found, n);
	printf("%s: cross-checked %d addresses, %d found, %d prefixes wider "
	       "than the MMDB network\n", name, n, found, wider);
	MMDB_close(&m);
}

/* ---- errors ------------------------------------------------------------- */

static void write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");

	CHECK(f != NULL, "cannot create %s", path);
	if (f) {
		CHECK(fwrite(p, 1, n, f) == n, "short write %s", path);
		fclose(f);
	}
}

static size_t read_file(const char *path, uint8_t **out)
{
	FILE *f = fopen(path, "rb");
	size_t n = 0, cap = 1 << 16;
	uint8_t *b = malloc(cap);

	*out = b;
	if (f == NULL || b == NULL) {
		if (f)
			fclose(f);
		return 0;
	}
	n = fread(b, 1, cap, f);
	fclose(f);
	return n;
}

struct ecase {
	const char *name;
	const char *path;
	int rc;
	const char *msg;
};

static void test_errors(const char *good)
{
	static const char garbage[] = "this is not a MaxMind database\n";
	char p[5][PATH_MAX];
	uint8_t *img;
	size_t n = read_file(good, &img);
	MMDB_s m;
	size_t tree = 0;
	struct ecase cases[8];
	size_t nc = 0;

	CHECK(n > 1000 && n < (1 << 16), "fixture db size %zu", n);
	if (MMDB_open(good, MMDB_MODE_MMAP, &m) == MMDB_SUCCESS) {
		tree = (size_t)m.metadata.node_count *
		       m.metadata.record_size / 4;
		MMDB_close(&m);
	}
	snprintf(p[0], PATH_MAX, "%s/missing.mmdb", tmpdir);
	snprintf(p[1], PATH_MAX, "%s/garbage.mmdb", tmpdir);
	write_file(p[1], garbage, sizeof(garbage) - 1);
	snprintf(p[2], PATH_MAX, "%s/badtree.mmdb", tmpdir);
	snprintf(p[3], PATH_MAX, "%s/truncated.mmdb", tmpdir);
	snprintf(p[4], PATH_MAX, "%s/loop.mmdb", tmpdir);
	if (img && tree > 64 && tree < n) {
		/* Node records pointing past the data section. */
		uint8_t *c = malloc(n);

		memcpy(c, img, n);
		memset(c + 6, 0xff, tree / 2);
		write_file(p[2], c, n);
		free(c);
		write_file(p[3], img, n / 2);
		/* Root's right record (8000::/1) pointing back at the root. */
		c = malloc(n);
		memcpy(c, img, n);
		memset(c + 3, 0, 3);
		write_file(p[4], c, n);
		free(c);
	}
	cases[nc++] = (struct ecase){ "missing", p[0], -ENOENT,
					  "No such file" };
	cases[nc++] = (struct ecase){ "garbage", p[1], -EINVAL,
					  "not a MaxMind DB" };
	cases[nc++] = (struct ecase){ "bad tree", p[2], -EINVAL,
					  "corrupt search tree" };
	cases[nc++] = (struct ecase){ "truncated", p[3], -EINVAL, "" };
	cases[nc++] = (struct ecase){ "loop", p[4], -EINVAL,
				      "corrupt search tree" };
	cases[nc++] = (struct ecase){ "directory", tmpdir, -EINVAL,
					  "not a regular file" };
	for (size_t i = 0; i < nc; i++) {
		static char sentinel;
		struct geo_db *db = (struct geo_db *)&sentinel;
		char err[512];
		int rc = geo_load(cases[i].path, &db, err, sizeof(err));

		CHECK(rc == cases[i].rc, "%s: rc %d want %d (%s)",
		      cases[i].name, rc, cases[i].rc, err);
		CHECK(db == NULL, "%s: *out not NULL on error", cases[i].name);
		CHECK(strncmp(err, cases[i].path, strlen(cases[i].path)) == 0,
		      "%s: error does not start with the path: %s",
		      cases[i].name, err);
		CHECK(strstr(err, cases[i].msg) != NULL,
		      "%s: error lacks '%s': %s", cases[i].name, cases[i].msg,
		      err);
	}
	/* errlen 0: no write, still an error */
	{
		struct geo_db *db;

		CHECK(geo_load(p[1], &db, NULL, 0) == -EINVAL,
		      "errlen 0: want -EINVAL");
	}
	free(img);
}

/* ---- centroids, distances, parsing -------------------------------------- */

static void test_centroids(void)
{
	static const char *const conts = "AF AN AS EU NA OC SA";
	int n = 0, bad = 0;
	double lat, lon;
	char cont[3];

	for (char a = 'A'; a <= 'Z'; a++) {
		for (char b = 'A'; b <= 'Z'; b++) {
			char cc[3] = { a, b, 0 };

			if (geo_country_centroid(cc, &lat, &lon, cont) < 0)
				continue;
			n++;
			if (fabs(lat) > 90 || fabs(lon) > 180 ||
			    strlen(cont) != 2 || !strstr(conts, cont))
				bad++;
		}
	}
	/* 249 ISO 3166-1 codes plus XK */
	CHECK(n == 250, "centroids: %d countries, want 250", n);
	CHECK(bad == 0, "centroids: %d with bad values", bad);

	static const struct {
		const char *cc;
		int rc;
		const char *cont;
		double lat, lon;      /* roughly; 0 tolerance means skip */
	} cases[] = {
		{ "DE", 0, "EU", 51, 10 }, { "us", 0, "NA", 38, -97 },
		{ "JP", 0, "AS", 36, 138 }, { "BR", 0, "SA", -12, -52 },
		{ "AU", 0, "OC", -25, 134 }, { "ZA", 0, "AF", -29, 24 },
		{ "AQ", 0, "AN", -75, 0 }, { "XK", 0, "EU", 42.6, 20.9 },
		{ "SG", 0, "AS", 1.35, 103.8 }, { "GB", 0, "EU", 54, -2.5 },
		{ "ZZ", -ENOENT, "", 0, 0 }, { "D", -EINVAL, "", 0, 0 },
		{ "DEU", -EINVAL, "", 0, 0 }, { "1A", -EINVAL, "", 0, 0 },
		{ "", -EINVAL, "", 0, 0 },
	};
	for (size_t i = 0; i < N(cases); i++) {
		int rc = geo_country_centroid(cases[i].cc, &lat, &lon, cont);

		CHECK(rc == cases[i].rc, "centroid %s: rc %d want %d",
		      cases[i].cc, rc, cases[i].rc);
		if (rc == 0) {
			CHECK(strcmp(cont, cases[i].cont) == 0,
			      "centroid %s: continent %s want %s",
			      cases[i].cc, cont, cases[i].cont);
			CHECK(geo_distance_km(lat, lon, cases[i].lat,
					      cases[i].lon) < 500,
			      "centroid %s: %.2f,%.2f far from %.2f,%.2f",
			      cases[i].cc, lat, lon, cases[i].lat,
			      cases[i].lon);
		}
	}
	CHECK(geo_continent_centroid("EU", &lat, &lon) == 0 && lat > 35 &&
	      lat < 65, "continent EU");
	CHECK(geo_continent_centroid("XX", &lat, &lon) == -ENOENT,
	      "continent XX");
}

static void test_distance(void)
{
	static const struct {
		const char *name;
		double lat1, lon1, lat2, lon2, km, tol;
	} cases[] = {
		{ "Paris-New York", 48.8566, 2.3522, 40.7128, -74.0060, 5837, 0.01 },
		{ "London-Tokyo", 51.5074, -0.1278, 35.6895, 139.6917, 9560, 0.01 },
		{ "Sydney-Sao Paulo", -33.8688, 151.2093, -23.5505, -46.6333,
		  13380, 0.01 },
		{ "same point", 10, 20, 10, 20, 0, 0 },
		{ "antipodes", 0, 0, 0, 180, 20015.1, 0.001 },
		{ "pole to pole", 90, 0, -90, 0, 20015.1, 0.001 },
		{ "across the date line", 0, 179.5, 0, -179.5, 111.2, 0.01 },
	};

	for (size_t i = 0; i < N(cases); i++) {
		double d = geo_distance_km(cases[i].lat1, cases[i].lon1,
					   cases[i].lat2, cases[i].lon2);
		double tol = cases[i].km * cases[i].tol + 1e-6;

		CHECK(fabs(d - cases[i].km) <= tol, "%s: %.1f km, want %.1f",
		      cases[i].name, d, cases[i].km);
		CHECK(fabs(d - geo_distance_km(cases[i].lat2, cases[i].lon2,
					       cases[i].lat1, cases[i].lon1)) <
		      1e-9, "%s: not symmetric", cases[i].name);
	}
}

static void test_parse(void)
{
	static const struct {
		const char *in;
		int rc;
		const char *net;      /* inet_ntop of the result */
		unsigned plen;
	} cases[] = {
		{ "192.0.2.0/24", 0, "::ffff:192.0.2.0", 120 },
		{ "192.0.2.1", 0, "::ffff:192.0.2.1", 128 },
		{ "0.0.0.0/0", 0, "::ffff:0.0.0.0", 96 },
		{ "10.0.0.0/8", 0, "::ffff:10.0.0.0", 104 },
		{ "2001:db8::/32", 0, "2001:db8::", 32 },
		{ "2001:db8::1", 0, "2001:db8::1", 128 },
		{ "::/0", 0, "::", 0 },
		{ "::ffff:192.0.2.0/120", 0, "::ffff:192.0.2.0", 120 },
		{ "192.0.2.1/24", -EINVAL, NULL, 0 },   /* host bits */
		{ "2001:db8::1/64", -EINVAL, NULL, 0 },
		{ "192.0.2.0/33", -EINVAL, NULL, 0 },
		{ "2001:db8::/129", -EINVAL, NULL, 0 },
		{ "192.0.2.0/", -EINVAL, NULL, 0 },
		{ "192.0.2.0/2x", -EINVAL, NULL, 0 },
		{ "192.0.2.0/-1", -EINVAL, NULL, 0 },
		{ "/24", -EINVAL, NULL, 0 },
		{ "", -EINVAL, NULL, 0 },
		{ "example.com", -EINVAL, NULL, 0 },
		{ "1.2.3", -EINVAL, NULL, 0 },
		{ "192.0.2.0/0024", -EINVAL, NULL, 0 },
	};

	for (size_t i = 0; i < N(cases); i++) {
		struct in6_addr a;
		unsigned plen = 0;
		char s[INET6_ADDRSTRLEN];
		int rc = addr_parse_cidr(cases[i].in, ADDR_CIDR_STRICT, &a, &plen);

		CHECK(rc == cases[i].rc, "parse '%s': rc %d want %d",
		      cases[i].in, rc, cases[i].rc);
		if (rc == 0 && cases[i].rc == 0) {
			inet_ntop(AF_INET6, &a, s, sizeof(s));
			CHECK(strcmp(s, cases[i].net) == 0 &&
			      plen == cases[i].plen, "parse '%s': %s/%u",
			      cases[i].in, s, plen);
		}
	}
}

/* ---- benchmark (informational) ------------------------------------------ */

/* A larger synthetic table: random /24s in 10/8 and /48s in 2001:db8::/32
 * (where rand_addr() looks) from a few cities. */
static const char *make_big_tsv(int nv4, int nv6)
{
	static char path[PATH_MAX];
	static const struct want *cities[] = { &FRA, &IAD, &TYO, &SIN, &GRU,
					       &SYD, &SJC, &PAR, &LON, &NYC };
	FILE *f;

	snprintf(path, sizeof(path), "%s/big.tsv", tmpdir);
	if ((f = fopen(path, "w")) == NULL)
		return NULL;
	for (int i = 0; i < nv4 + nv6; i++) {
		const struct want *c = cities[rnd() % N(cities)];
		uint64_t r = rnd();

		if (i < nv4)
			fprintf(f, "10.%u.%u.0/24", (unsigned)(r >> 8 & 255),
				(unsigned)(r >> 16 & 255));
		else
			fprintf(f, "2001:db8:%x::/48",
				(unsigned)(r >> 16 & 0xffff));
		fprintf(f, "\t%.4f\t%.4f\t%s\t%s\n", c->lat, c->lon, c->cc,
			c->cont);
	}
	fclose(f);
	return path;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void bench(const char *name, const struct geo_db *db)
{
	enum { NADDR = 1 << 16, ROUNDS = 32 };
	static struct in6_addr addrs[NADDR];
	struct geo_stats st;
	unsigned long found = 0, plens = 0;
	double t0, t;

	for (int i = 0; i < NADDR; i++)
		rand_addr(&addrs[i]);       /* half IPv4, half IPv6 */
	t0 = now();
	for (int k = 0; k < ROUNDS; k++) {
		for (int i = 0; i < NADDR; i++) {
			unsigned plen;

			found += geo_lookup(db, &addrs[i], &plen) != NULL;
			plens += plen;
		}
	}
	t = now() - t0;
	geo_stats(db, &st);
	printf("%s: %zu ranges, %zu networks, %zu locations, %zu KiB; "
	       "%.1f ns/lookup, %.1f M lookups/s (%lu found, plen sum %lu)\n",
	       name, st.ranges, st.networks, st.locations, st.bytes / 1024,
	       t * 1e9 / ((double)NADDR * ROUNDS),
	       (double)NADDR * ROUNDS / t / 1e6, found, plens);
}

/* ---- main --------------------------------------------------------------- */

static void load_and_check(const char *name, const char *flags,
			   const struct lcase *c, size_t n,
			   const char *want_type, int xcheck)
{
	const char *path = make_db(name, "tests/fixtures/geo/networks.tsv",
				   flags);
	struct geo_db *db = NULL;
	char err[512];
	int rc;

	if (path == NULL)
		return;
	rc = geo_load(path, &db, err, sizeof(err));
	CHECK(rc == 0 && db, "%s: geo_load: %d %s", name, rc, err);
	if (rc < 0)
		return;
	CHECK(strcmp(geo_db_type(db), want_type) == 0, "%s: type '%s'", name,
	      geo_db_type(db));
	CHECK(geo_build_epoch(db) == 1700000000, "%s: epoch %llu", name,
	      (unsigned long long)geo_build_epoch(db));
	check_cases(name, db, c, n);
	if (xcheck)
		cross_check(name, path, db, xcheck, xcheck / 20);
	geo_free(db);
}

/* A tree without aliases whose IPv4 data was written at ::ffff:0:0/96
 * (nothing at ::/96) still answers IPv4 lookups. */
static void test_mapped_only(void)
{
	char tsv[PATH_MAX];
	FILE *f;
	const char *path;
	struct geo_db *db = NULL;
	char err[512];
	static const struct lcase cases[] = {
		{ "127.0.1.1", &FRA, 120 },
		{ "127.0.2.1", &IAD, 120 },
		{ "127.0.3.1", NULL, 120 },
		{ "2001:db8:1::1", &FRA, 48 },
	};

	snprintf(tsv, sizeof(tsv), "%s/mapped.tsv", tmpdir);
	if ((f = fopen(tsv, "w")) == NULL) {
		CHECK(0, "mapped: cannot write %s", tsv);
		return;
	}
	fprintf(f, "::ffff:127.0.1.0/120\t50.1109\t8.6821\tDE\tEU\n"
		   "::ffff:127.0.2.0/120\t39.0438\t-77.4874\tUS\tNA\n"
		   "2001:db8:1::/48\t50.1109\t8.6821\tDE\tEU\n");
	fclose(f);
	path = make_db("mapped.mmdb", tsv, "--no-alias");
	if (path == NULL)
		return;
	CHECK(geo_load(path, &db, err, sizeof(err)) == 0, "mapped: %s", err);
	if (db)
		check_cases("mapped", db, cases, N(cases));
	geo_free(db);
}

static void test_city(void)
{
	const char *path = make_db("city.mmdb",
				   "tests/fixtures/geo/networks.tsv", "");
	struct geo_db *db = NULL;
	struct geo_stats st;
	char err[512];

	if (path == NULL || geo_load(path, &db, err, sizeof(err)) < 0) {
		CHECK(0, "city: cannot load: %s", path ? err : "no db");
		return;
	}
	/* mkmmdb.pl is deterministic: same input, same bytes */
	{
		const char *again = make_db("city-again.mmdb",
					    "tests/fixtures/geo/networks.tsv",
					    "");
		uint8_t *x = NULL, *y = NULL;
		size_t nx = read_file(path, &x), ny = again ?
			read_file(again, &y) : 0;

		CHECK(nx > 0 && nx == ny && memcmp(x, y, nx) == 0,
		      "mkmmdb.pl: two runs differ (%zu/%zu bytes)", nx, ny);
		free(x);
		free(y);
	}
	geo_stats(db, &st);
	/* 10 cities + 3 country centroids (CA, GB, JP), shared */
	CHECK(st.locations == 13, "city: %zu locations, want 13",
	      st.locations);
	CHECK(geo_count(db) == st.networks && st.networks < st.records,
	      "city: %zu networks from %zu records (merging)", st.networks,
	      st.records);
	CHECK(st.centroids >= 3, "city: %zu centroids", st.centroids);
	check_cases("city", db, city_cases, N(city_cases));
	/* location numbering round-trips; plen may be NULL */
	{
		struct in6_addr a;
		unsigned plen;
		const struct geo_loc *l;
		int bad = 0;

		for (uint32_t id = 0; id < geo_locations(db); id++)
			bad += geo_loc_id(db, geo_location(db, id)) != id;
		CHECK(bad == 0 && geo_locations(db) == st.locations,
		      "city: location ids do not round-trip");
		CHECK(geo_location(db, (uint32_t)geo_locations(db)) == NULL,
		      "city: location past the end");
		addr_parse_cidr("127.0.3.1", ADDR_CIDR_STRICT, &a, &plen);
		l = geo_lookup(db, &a, NULL);
		CHECK(l && geo_location(db, geo_loc_id(db, l)) == l &&
		      strcmp(l->country, "JP") == 0, "city: lookup, NULL plen");
	}
	cross_check("city", path, db, 20000, 1000);
	bench("bench fixture", db);
	test_errors(path);
	geo_free(db);
	geo_free(NULL);
}

static int find_srcdir(void)
{
	const char *env = getenv("GSLB_SRCDIR");
	char exe[PATH_MAX];
	ssize_t n;

	if (env && chdir(env) < 0)
		return -1;
	if (access("tests/tools/mkmmdb.pl", R_OK) == 0)
		return 0;
	/* build/tests/test_geo -> repository root */
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return -1;
	exe[n] = '\0';
	for (int i = 0; i < 3; i++) {
		char *s = strrchr(exe, '/');

		if (s == NULL)
			return -1;
		*s = '\0';
	}
	if (chdir(exe) < 0)
		return -1;
	return access("tests/tools/mkmmdb.pl", R_OK);
}

/* Unit vectors and dot products (what the geo policy ranks by) agree
 * with haversine distances: same km, same order, for random pairs. */
static void test_unit_vectors(void)
{
	unsigned seed = 12345;
	int bad_km = 0, bad_order = 0;

	for (int i = 0; i < 20000; i++) {
		double p[3][2], v[3][3], d[3], dot[3];

		for (int k = 0; k < 3; k++) {
			p[k][0] = (rand_r(&seed) / (double)RAND_MAX) * 180 - 90;
			p[k][1] = (rand_r(&seed) / (double)RAND_MAX) * 360 - 180;
			geo_unit_vector(p[k][0], p[k][1], v[k]);
		}
		for (int k = 1; k < 3; k++) {
			d[k] = geo_distance_km(p[0][0], p[0][1], p[k][0], p[k][1]);
			dot[k] = v[0][0] * v[k][0] + v[0][1] * v[k][1] + v[0][2] * v[k][2];
			bad_km += fabs(geo_dot_km(dot[k]) - d[k]) > 0.1;
		}
		/* nearer by distance is nearer by dot, beyond rounding */
		if (fabs(d[1] - d[2]) > 0.01)
			bad_order += (d[1] < d[2]) != (dot[1] > dot[2]);
	}
	CHECK(bad_km == 0, "unit vectors: %d of 40000 distances off by > 0.1 km", bad_km);
	CHECK(bad_order == 0, "unit vectors: %d of 20000 orders differ", bad_order);
	CHECK(fabs(geo_dot_km(1.0000000001)) < 1e-9 && fabs(geo_dot_km(-1.0000001) - 20015.1) < 1,
	      "dot outside [-1, 1] is clamped");
}

int main(void)
{
	char cmd[PATH_MAX + 16];

	if (find_srcdir() < 0) {
		CHECK(0, "cannot find tests/tools/mkmmdb.pl (set GSLB_SRCDIR)");
		return TEST_DONE();
	}
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_geo.XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		CHECK(0, "mkdtemp: %s", strerror(errno));
		return TEST_DONE();
	}
	test_parse();
	test_distance();
	test_unit_vectors();
	test_centroids();
	test_city();
	test_mapped_only();
	load_and_check("noalias", "--no-alias", noalias_cases,
		       N(noalias_cases), "GSLB-Test-City", 5000);
	load_and_check("ipv4", "--ipv4", v4only_cases, N(v4only_cases),
		       "GSLB-Test-City", 5000);
	load_and_check("country", "--country", country_cases,
		       N(country_cases), "GSLB-Test-Country", 5000);
	{
		const char *tsv = make_big_tsv(20000, 5000);
		const char *path = tsv ? make_db("big.mmdb", tsv, "") : NULL;
		struct geo_db *db = NULL;
		char err[512];
		double t0 = now();

		if (path && geo_load(path, &db, err, sizeof(err)) == 0) {
			printf("big: loaded in %.3f s\n", now() - t0);
			cross_check("big", path, db, 5000, 50);
			bench("bench big", db);
			geo_free(db);
		} else {
			CHECK(0, "big: cannot build or load: %s",
			      path ? err : "mkmmdb failed");
		}
	}
	if (getenv("GEO_XCHECK_DB")) {
		const char *path = getenv("GEO_XCHECK_DB");
		struct geo_db *db = NULL;
		char err[512];
		double t0 = now();

		if (geo_load(path, &db, err, sizeof(err)) == 0) {
			printf("%s: loaded in %.3f s\n", path, now() - t0);
			cross_check(path, path, db, 100000, 0);
			bench(path, db);
			geo_free(db);
		} else {
			CHECK(0, "GEO_XCHECK_DB: %s", err);
		}
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmpdir);
	return TEST_DONE();
}
