/* tests/unit/test_rrl.c - response rate limiting: bucket rate and burst,
 * slip cadence, whitelist, prefix grouping, independent classes and names,
 * table replacement under many sources, response classification and
 * truncation, and the reuseport steering program against its C twin over
 * real loopback sockets. */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dnsd/rrl.h"
#include "harness.h"

static struct in6_addr addr(const char *s)
{
	struct in6_addr a;

	memset(&a, 0, sizeof(a));
	if (strchr(s, ':')) {
		inet_pton(AF_INET6, s, &a);
	} else {
		a.s6_addr[10] = a.s6_addr[11] = 0xff;
		inet_pton(AF_INET, s, a.s6_addr + 12);
	}
	return a;
}

static struct rrl_conf conf(unsigned rate, unsigned slip)
{
	struct rrl_conf c;

	rrl_conf_init(&c);
	c.rate = rate;
	c.slip = slip;
	return c;
}

/* Sends n responses; counts what came back. */
static void burst(struct rrl *r, const char *src, enum rrl_class cls,
		  uint32_t name, unsigned n, unsigned *pass, unsigned *drop,
		  unsigned *slip)
{
	struct in6_addr a = addr(src);

	*pass = *drop = *slip = 0;
	for (unsigned i = 0; i < n; i++) {
		switch (rrl_account(r, &a, cls, name)) {
		case RRL_PASS: (*pass)++; break;
		case RRL_DROP: (*drop)++; break;
		case RRL_SLIP: (*slip)++; break;
		}
	}
}

static void test_rate(void)
{
	static const struct { const char *name; unsigned rate; } cases[] = {
		{ "rate 1", 1 }, { "rate 5", 5 }, { "rate 20", 20 },
		{ "rate 1000", 1000 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct stats_thread st = { 0 };
		struct rrl_conf c = conf(cases[i].rate, 0);
		struct rrl *r = rrl_new(&c, &st);
		unsigned p, d, s, rate = cases[i].rate;

		rrl_set_time(r, 1000000);
		burst(r, "192.0.2.1", RRL_ANSWER, 7, rate * 3, &p, &d, &s);
		CHECK(p == rate && d == 2 * rate && s == 0,
		      "%s: burst: %u passed %u dropped %u slipped", cases[i].name, p, d, s);
		/* Half a second refills half the rate (at least nothing more). */
		rrl_set_time(r, 1000500);
		burst(r, "192.0.2.1", RRL_ANSWER, 7, rate * 3, &p, &d, &s);
		CHECK(p == rate / 2, "%s: after 0.5 s: %u passed, want %u",
		      cases[i].name, p, rate / 2);
		/* Ten idle seconds refill one second's burst, not ten. */
		rrl_set_time(r, 1010500);
		burst(r, "192.0.2.1", RRL_ANSWER, 7, rate * 3, &p, &d, &s);
		CHECK(p == rate, "%s: after 10 s idle: %u passed, want %u",
		      cases[i].name, p, rate);
		/* A steady stream at the rate is never limited: one query
		 * every 1000/rate ms for 5 s (on top of an empty bucket). */
		{
			unsigned limited = 0, step = 1000 / rate;
			uint64_t t = 1020500;
			struct in6_addr a = addr("198.51.100.1");

			rrl_set_time(r, t);
			for (unsigned k = 0; k < 5 * rate && step; k++) {
				rrl_set_time(r, t + (uint64_t)k * step);
				limited += rrl_account(r, &a, RRL_ANSWER, 7) != RRL_PASS;
			}
			CHECK(limited == 0, "%s: steady stream at the rate: %u limited",
			      cases[i].name, limited);
		}
		CHECK(stats_get(&st.rrl_limited) ==
		      stats_get(&st.rrl_dropped) + stats_get(&st.rrl_slipped) &&
		      stats_get(&st.rrl_dropped) > 0,
		      "%s: counters limited %llu dropped %llu slipped %llu", cases[i].name,
		      (unsigned long long)stats_get(&st.rrl_limited),
		      (unsigned long long)stats_get(&st.rrl_dropped),
		      (unsigned long long)stats_get(&st.rrl_slipped));
		rrl_free(r);
	}
}

static void test_off(void)
{
	struct stats_thread st = { 0 };
	struct rrl_conf c = conf(0, 2);
	struct rrl *r = rrl_new(&c, &st);
	unsigned p, d, s;

	burst(r, "192.0.2.1", RRL_ANSWER, 1, 10000, &p, &d, &s);
	CHECK(p == 10000 && stats_get(&st.rrl_limited) == 0, "rate 0: %u of 10000 passed", p);
	rrl_free(r);
}

static void test_slip(void)
{
	static const struct {
		const char *name;
		unsigned slip;
		const char *want;     /* actions of limited responses: D/S */
	} cases[] = {
		{ "slip 0: never", 0, "DDDDDD" },
		{ "slip 1: always", 1, "SSSSSS" },
		{ "slip 2: every other", 2, "DSDSDS" },
		{ "slip 3", 3, "DDSDDS" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct stats_thread st = { 0 };
		struct rrl_conf c = conf(2, cases[i].slip);
		struct rrl *r = rrl_new(&c, &st);
		struct in6_addr a = addr("203.0.113.9");
		char got[16] = { 0 };

		rrl_set_time(r, 5000);
		for (int k = 0; k < 2; k++)
			CHECK(rrl_account(r, &a, RRL_NXDOMAIN, 3) == RRL_PASS,
			      "%s: burst %d not passed", cases[i].name, k);
		for (size_t k = 0; k < strlen(cases[i].want); k++) {
			enum rrl_action act = rrl_account(r, &a, RRL_NXDOMAIN, 3);

			got[k] = act == RRL_DROP ? 'D' : act == RRL_SLIP ? 'S' : 'P';
		}
		CHECK(strcmp(got, cases[i].want) == 0, "%s: got %s, want %s",
		      cases[i].name, got, cases[i].want);
		rrl_free(r);
	}
}

static void test_whitelist(void)
{
	static const struct {
		const char *cidr;
		int rc;
	} parse[] = {
		{ "10.0.0.0/8", 0 }, { "192.0.2.7", 0 }, { "2001:db8::/32", 0 },
		{ "::1", 0 }, { "10.0.0.0/33", -EINVAL }, { "2001:db8::/129", -EINVAL },
		{ "10.0.0.0/", -EINVAL }, { "10.0.0/8", -EINVAL }, { "/8", -EINVAL },
		{ "example.com/8", -EINVAL }, { "10.0.0.0/-1", -EINVAL },
		{ "10.0.0.0/8x", -EINVAL },
	};
	static const struct {
		const char *src;
		bool exempt;
	} cases[] = {
		{ "10.1.2.3", true }, { "11.1.2.3", false }, { "192.0.2.7", true },
		{ "192.0.2.8", false }, { "2001:db8:ffff::1", true },
		{ "2001:db9::1", false }, { "::1", true }, { "::2", false },
	};
	struct rrl_conf c = conf(1, 0);
	const char *list[] = { "10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "::1" };
	const char *bad[] = { "10.0.0.0/8", "nonsense", "1.2.3.4/40" };
	struct stats_thread st = { 0 };
	struct rrl *r;

	for (size_t i = 0; i < sizeof(parse) / sizeof(parse[0]); i++) {
		struct rrl_net n;

		CHECK(rrl_net_parse(parse[i].cidr, &n) == parse[i].rc,
		      "parse %s: want %d", parse[i].cidr, parse[i].rc);
	}
	{
		struct rrl_net n;

		rrl_net_parse("192.0.2.77/24", &n);
		CHECK(n.plen == 120 && n.addr.s6_addr[15] == 0,
		      "192.0.2.77/24: plen %u, host bits not cleared", n.plen);
	}
	CHECK(rrl_whitelist_parse(&c, list, 4) == 0 && c.n_whitelist == 4,
	      "whitelist: %zu entries", c.n_whitelist);
	{
		struct rrl_conf c2 = conf(1, 0);

		CHECK(rrl_whitelist_parse(&c2, bad, 3) == -EINVAL && c2.n_whitelist == 1,
		      "bad whitelist: %zu kept", c2.n_whitelist);
	}
	r = rrl_new(&c, &st);
	rrl_set_time(r, 1000);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned p, d, s;

		burst(r, cases[i].src, RRL_ANSWER, 1, 100, &p, &d, &s);
		CHECK(cases[i].exempt ? p == 100 : p == 1, "whitelist %s: %u of 100 passed",
		      cases[i].src, p);
	}
	rrl_free(r);
}

static void test_prefix(void)
{
	static const struct {
		const char *name;
		unsigned v4, v6;
		const char *a, *b;
		bool same;
	} cases[] = {
		{ "v4 /24 same", 24, 56, "192.0.2.1", "192.0.2.200", true },
		{ "v4 /24 other", 24, 56, "192.0.2.1", "192.0.3.1", false },
		{ "v4 /32 apart", 32, 56, "127.0.0.2", "127.0.0.3", false },
		{ "v4 /16 same", 16, 56, "10.20.1.1", "10.20.200.9", true },
		{ "v4 /0 all one", 0, 56, "1.1.1.1", "200.2.2.2", true },
		{ "v6 /56 same", 24, 56, "2001:db8:0:ff::1", "2001:db8:0:aa::99", true },
		{ "v6 /56 other", 24, 56, "2001:db8:0:ff::1", "2001:db8:0:1ff::1", false },
		{ "v6 /128 apart", 24, 128, "2001:db8::1", "2001:db8::2", false },
		{ "v6 /48 same", 24, 48, "2001:db8:0:1ff::1", "2001:db8:0:2ff::1", true },
		{ "v4 vs v6", 0, 0, "1.1.1.1", "2001:db8::1", false },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct stats_thread st = { 0 };
		struct rrl_conf c = conf(5, 0);
		struct rrl *r;
		unsigned p, d, s;

		c.v4_prefix = cases[i].v4;
		c.v6_prefix = cases[i].v6;
		r = rrl_new(&c, &st);
		rrl_set_time(r, 1000);
		burst(r, cases[i].a, RRL_ANSWER, 9, 5, &p, &d, &s);
		CHECK(p == 5, "%s: first source %u of 5", cases[i].name, p);
		burst(r, cases[i].b, RRL_ANSWER, 9, 5, &p, &d, &s);
		CHECK(cases[i].same ? p == 0 : p == 5, "%s: second source passed %u",
		      cases[i].name, p);
		/* The steering hash must group exactly as the buckets do. */
		if (cases[i].same) {
			struct in6_addr a = addr(cases[i].a), b = addr(cases[i].b);

			CHECK(rrl_steer_index(&a, 7, &c) == rrl_steer_index(&b, 7, &c),
			      "%s: steered apart", cases[i].name);
		}
		rrl_free(r);
	}
}

static void test_classes(void)
{
	struct stats_thread st = { 0 };
	struct rrl_conf c = conf(3, 0);
	struct rrl *r = rrl_new(&c, &st);
	unsigned p, d, s;

	rrl_set_time(r, 1000);
	burst(r, "192.0.2.1", RRL_ANSWER, 11, 10, &p, &d, &s);
	CHECK(p == 3, "answer: %u passed", p);
	for (int cls = RRL_NXDOMAIN; cls < RRL_NCLASS; cls++) {
		burst(r, "192.0.2.1", (enum rrl_class)cls, 11, 10, &p, &d, &s);
		CHECK(p == 3, "class %d after answers limited: %u passed", cls, p);
	}
	/* Another name is another bucket (BIND's "identical responses"). */
	burst(r, "192.0.2.1", RRL_ANSWER, 12, 10, &p, &d, &s);
	CHECK(p == 3, "answer, other name: %u passed", p);
	burst(r, "192.0.2.1", RRL_ANSWER, 11, 10, &p, &d, &s);
	CHECK(p == 0, "answer, first name again: %u passed", p);
	rrl_free(r);
}

static void test_table_replacement(void)
{
	static const unsigned sizes[] = { 1, 64, 1000 };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct stats_thread st = { 0 };
		struct rrl_conf c = conf(1, 0);
		struct rrl *r;
		struct in6_addr hot = addr("198.51.100.77");
		unsigned hot_pass = 0, fresh_pass = 0, n = 0;
		uint64_t t = 100000;

		c.table_size = sizes[i];
		c.v4_prefix = 32;
		r = rrl_new(&c, &st);
		/* 20000 new sources over 2 s while one hot source sends after
		 * every 4th of them: each new source gets its first answer
		 * (a fresh bucket), and the hot one, being recently used,
		 * keeps its bucket: at most burst + 2 s of rate. */
		for (unsigned k = 0; k < 20000; k++) {
			struct in6_addr a = addr("10.0.0.0");

			a.s6_addr[13] = (uint8_t)(k >> 8);
			a.s6_addr[14] = (uint8_t)k;
			a.s6_addr[15] = (uint8_t)(k >> 16 | 1);
			rrl_set_time(r, t + k / 10);
			fresh_pass += rrl_account(r, &a, RRL_ANSWER, 5) == RRL_PASS;
			if (k % 4 == 0) {
				hot_pass += rrl_account(r, &hot, RRL_ANSWER, 5) == RRL_PASS;
				n++;
			}
		}
		CHECK(fresh_pass == 20000, "table %u: %u of 20000 new sources answered",
		      sizes[i], fresh_pass);
		CHECK(hot_pass <= 4, "table %u: hot source passed %u of %u (evicted?)",
		      sizes[i], hot_pass, n);
		rrl_free(r);
	}
}

/* ---- classification of real responses ---- */

static const uint8_t QNAME[] = "\3www\7example\3com";    /* + NUL */

/* Header, question www.example.com/qtype, then raw sections. */
static size_t msg(uint8_t *out, uint8_t flags2, uint8_t flags3, uint16_t qtype,
		  uint16_t an, uint16_t ns, const void *rest, size_t rest_len)
{
	size_t n = 0;

	memset(out, 0, 12);
	out[0] = 0x12;
	out[1] = 0x34;
	out[2] = flags2;
	out[3] = flags3;
	out[5] = 1;
	out[6] = (uint8_t)(an >> 8); out[7] = (uint8_t)an;
	out[8] = (uint8_t)(ns >> 8); out[9] = (uint8_t)ns;
	n = 12;
	memcpy(out + n, QNAME, sizeof(QNAME));
	n += sizeof(QNAME);
	out[n++] = (uint8_t)(qtype >> 8);
	out[n++] = (uint8_t)qtype;
	out[n++] = 0;
	out[n++] = 1;
	if (rest_len)
		memcpy(out + n, rest, rest_len);
	return n + rest_len;
}

/* A: c00c A IN ttl 4 */
static const uint8_t RR_A[] = { 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1 };
/* SOA owned by example.com (pointer to offset 16) with tiny rdata. */
static const uint8_t RR_SOA[] = { 0xc0, 0x10, 0, 6, 0, 1, 0, 0, 0, 60, 0, 24,
	0xc0, 0x10, 0xc0, 0x10, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4,
	0, 0, 0, 5 };
/* SOA owned by another zone, written out: "\3org". */
static const uint8_t RR_SOA_ORG[] = { 3, 'o', 'r', 'g', 0, 0, 6, 0, 1, 0, 0, 0,
	60, 0, 2, 0xc0, 0x10 };
/* NS at www.example.com (pointer 12): a delegation. */
static const uint8_t RR_NS[] = { 0xc0, 0x0c, 0, 2, 0, 1, 0, 0, 0, 60, 0, 2, 0xc0, 0x10 };
/* CNAME www -> example.com, then SOA: an NXDOMAIN after a chase. */
static const uint8_t RR_CNAME_SOA[] = { 0xc0, 0x0c, 0, 5, 0, 1, 0, 0, 0, 60, 0, 2,
	0xc0, 0x10,
	0xc0, 0x10, 0, 6, 0, 1, 0, 0, 0, 60, 0, 24,
	0xc0, 0x10, 0xc0, 0x10, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4,
	0, 0, 0, 5 };
/* A pointer loop where the authority owner should be. */
static const uint8_t RR_LOOP[] = { 0xc0, 0x21 };

static void test_classify(void)
{
	uint8_t b[512];
	static const struct {
		const char *name;
		uint8_t f2, f3;
		uint16_t qtype, an, ns;
		const uint8_t *rest;
		size_t rest_len;
		enum rrl_class want;
	} cases[] = {
		{ "answer", 0x84, 0, 1, 1, 0, RR_A, sizeof(RR_A), RRL_ANSWER },
		{ "nodata", 0x84, 0, 28, 0, 1, RR_SOA, sizeof(RR_SOA), RRL_NODATA },
		{ "nxdomain", 0x84, 3, 1, 0, 1, RR_SOA, sizeof(RR_SOA), RRL_NXDOMAIN },
		{ "nxdomain after cname", 0x84, 3, 1, 1, 1, RR_CNAME_SOA,
		  sizeof(RR_CNAME_SOA), RRL_NXDOMAIN },
		{ "referral", 0x80, 0, 1, 0, 1, RR_NS, sizeof(RR_NS), RRL_REFERRAL },
		{ "truncated answer", 0x86, 0, 1, 0, 0, NULL, 0, RRL_NODATA },
		{ "refused", 0x80, 5, 1, 0, 0, NULL, 0, RRL_ERROR },
		{ "formerr", 0x80, 1, 1, 0, 0, NULL, 0, RRL_ERROR },
		{ "servfail", 0x80, 2, 1, 0, 0, NULL, 0, RRL_ERROR },
		{ "notimp", 0x80, 4, 1, 0, 0, NULL, 0, RRL_ERROR },
		{ "badvers (rcode 0, no AA)", 0x80, 0, 1, 0, 0, NULL, 0, RRL_ERROR },
		{ "nxdomain, looping owner", 0x84, 3, 1, 0, 1, RR_LOOP,
		  sizeof(RR_LOOP), RRL_NXDOMAIN },
	};
	uint32_t h_soa, h_org, h_a, h_aaaa, h;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = msg(b, cases[i].f2, cases[i].f3, cases[i].qtype,
			       cases[i].an, cases[i].ns, cases[i].rest,
			       cases[i].rest_len);

		CHECK(rrl_classify(b, n, &h) == cases[i].want, "classify %s: got %d",
		      cases[i].name, (int)rrl_classify(b, n, &h));
		/* Every prefix of the message classifies without overrun. */
		for (size_t k = 0; k < n; k++)
			(void)rrl_classify(b, k, &h);
	}
	/* Names: NXDOMAIN is keyed by the zone, not the query name. */
	rrl_classify(b, msg(b, 0x84, 3, 1, 0, 1, RR_SOA, sizeof(RR_SOA)), &h_soa);
	rrl_classify(b, msg(b, 0x84, 3, 1, 0, 1, RR_SOA_ORG, sizeof(RR_SOA_ORG)), &h_org);
	CHECK(h_soa && h_org && h_soa != h_org, "nxdomain zones hash apart");
	memcpy(b + 13, "WWW", 3);
	rrl_classify(b, msg(b, 0x84, 3, 1, 0, 1, RR_SOA, sizeof(RR_SOA)), &h);
	CHECK(h == h_soa, "nxdomain: same zone, same key");
	{
		/* Another query name in the same zone: same NXDOMAIN key. */
		uint8_t b2[512];
		size_t n = msg(b2, 0x84, 3, 1, 0, 1, RR_SOA, sizeof(RR_SOA));

		b2[13] = 'x';
		rrl_classify(b2, n, &h);
		CHECK(h == h_soa, "nxdomain: random subdomain shares the zone key");
	}
	rrl_classify(b, msg(b, 0x84, 0, 1, 1, 0, RR_A, sizeof(RR_A)), &h_a);
	rrl_classify(b, msg(b, 0x84, 0, 28, 1, 0, RR_A, sizeof(RR_A)), &h_aaaa);
	CHECK(h_a && h_aaaa && h_a != h_aaaa, "answers keyed by qtype too");
	{
		uint8_t up[512];
		size_t n = msg(up, 0x84, 0, 1, 1, 0, RR_A, sizeof(RR_A));

		memcpy(up + 13, "WWW", 3);
		rrl_classify(up, n, &h);
		CHECK(h == h_a, "answer key ignores query name case");
	}
	rrl_classify(b, msg(b, 0x80, 5, 1, 0, 0, NULL, 0), &h);
	CHECK(h == 0, "errors have no name");
}

static void test_truncate_and_filter(void)
{
	uint8_t b[512];
	size_t n = msg(b, 0x84, 0, 1, 1, 0, RR_A, sizeof(RR_A)), qend = 12 + sizeof(QNAME) + 4;
	size_t t;
	struct stats_thread st = { 0 };
	struct rrl_conf c = conf(1, 2);
	struct rrl *r = rrl_new(&c, &st);
	struct in6_addr a = addr("192.0.2.50");
	const char *wl[] = { "192.0.2.51" };

	t = rrl_truncate(b, n);
	CHECK(t == qend, "truncate: length %zu, want %zu", t, qend);
	CHECK(b[2] & 0x02 && b[2] & 0x04, "truncate: TC set, AA kept");
	CHECK(!b[6] && !b[7] && !b[8] && !b[9] && !b[10] && !b[11],
	      "truncate: counts zero");
	CHECK(b[4] == 0 && b[5] == 1, "truncate: question kept");

	rrl_set_time(r, 1000);
	n = msg(b, 0x84, 0, 1, 1, 0, RR_A, sizeof(RR_A));
	CHECK(rrl_filter(r, &a, b, n) == n, "filter: first passes");
	CHECK(rrl_filter(r, &a, b, n) == 0, "filter: second dropped");
	t = rrl_filter(r, &a, b, n);
	CHECK(t == qend && (b[2] & 0x02), "filter: third slipped (len %zu)", t);
	CHECK(stats_get(&st.rrl_limited) == 2 && stats_get(&st.rrl_dropped) == 1 &&
	      stats_get(&st.rrl_slipped) == 1, "filter counters %llu %llu %llu",
	      (unsigned long long)stats_get(&st.rrl_limited),
	      (unsigned long long)stats_get(&st.rrl_dropped),
	      (unsigned long long)stats_get(&st.rrl_slipped));
	rrl_free(r);

	c = conf(1, 2);
	rrl_whitelist_parse(&c, wl, 1);
	r = rrl_new(&c, &st);
	a = addr("192.0.2.51");
	for (int k = 0; k < 50; k++) {
		n = msg(b, 0x84, 0, 1, 1, 0, RR_A, sizeof(RR_A));
		CHECK(rrl_filter(r, &a, b, n) == n, "filter: whitelisted %d limited", k);
	}
	rrl_free(r);
}

/* ---- steering over real loopback sockets ---- */

static int udp_bound(int family, const char *host, unsigned port, bool reuse)
{
	int fd = socket(family, SOCK_DGRAM, 0), one = 1;
	struct sockaddr_storage ss = { 0 };
	socklen_t sl;

	if (fd < 0)
		return -1;
	if (reuse)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		inet_pton(AF_INET, host, &s4->sin_addr);
		sl = sizeof(*s4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		inet_pton(AF_INET6, host, &s6->sin6_addr);
		sl = sizeof(*s6);
	}
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static unsigned bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	getsockname(fd, (struct sockaddr *)&ss, &sl);
	return ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
				       : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* Which of socks[0..n) got the datagram, or -1. */
static int who_got(const int *socks, unsigned n)
{
	struct pollfd p[8];
	char buf[64];

	for (unsigned i = 0; i < n; i++)
		p[i] = (struct pollfd) { .fd = socks[i], .events = POLLIN };
	if (poll(p, n, 1000) <= 0)
		return -1;
	for (unsigned i = 0; i < n; i++)
		if (p[i].revents & POLLIN) {
			if (recv(socks[i], buf, sizeof(buf), 0) < 0)
				return -1;
			return (int)i;
		}
	return -1;
}

static void steer_family(int family, const char *host, const char *const *srcs,
			 size_t n_srcs)
{
	enum { N = 4 };
	int socks[N], first;
	unsigned port, spread[N] = { 0 };
	struct rrl_conf c = conf(10, 2);
	int rc;

	first = udp_bound(family, host, 0, true);
	if (first < 0) {
		printf("skip steering %s: cannot bind\n", host);
		return;
	}
	port = bound_port(first);
	socks[0] = first;
	for (unsigned i = 1; i < N; i++)
		socks[i] = udp_bound(family, host, port, true);
	rc = rrl_steer_attach(first, family, N, &c);
	CHECK(rc == 0, "steer %s: attach: %s", host, strerror(-rc));
	for (size_t s = 0; s < n_srcs && rc == 0; s++) {
		int cl = udp_bound(family, srcs[s], 0, false);
		struct sockaddr_storage to = { 0 };
		struct in6_addr a = addr(srcs[s]);
		unsigned want = rrl_steer_index(&a, N, &c);
		socklen_t tl;

		if (cl < 0) {
			CHECK(0, "steer: cannot bind client %s", srcs[s]);
			continue;
		}
		if (family == AF_INET) {
			struct sockaddr_in *t = (struct sockaddr_in *)&to;

			t->sin_family = AF_INET;
			t->sin_port = htons((uint16_t)port);
			inet_pton(AF_INET, host, &t->sin_addr);
			tl = sizeof(*t);
		} else {
			struct sockaddr_in6 *t = (struct sockaddr_in6 *)&to;

			t->sin6_family = AF_INET6;
			t->sin6_port = htons((uint16_t)port);
			inet_pton(AF_INET6, host, &t->sin6_addr);
			tl = sizeof(*t);
		}
		for (int k = 0; k < 3; k++) {
			int got;

			sendto(cl, "q", 1, 0, (struct sockaddr *)&to, tl);
			got = who_got(socks, N);
			CHECK(got == (int)want, "steer %s: packet %d went to socket %d, want %u",
			      srcs[s], k, got, want);
			if (got >= 0)
				spread[got]++;
		}
		close(cl);
	}
	if (family == AF_INET && n_srcs >= 16) {
		unsigned used = 0;

		for (unsigned i = 0; i < N; i++)
			used += spread[i] > 0;
		CHECK(used >= 3, "steer: %zu prefixes used only %u of %d sockets",
		      n_srcs, used, N);
	}
	for (unsigned i = 0; i < N; i++)
		if (socks[i] >= 0)
			close(socks[i]);
}

static void test_steering(void)
{
	static const char *v4[] = {
		"127.0.0.2", "127.0.0.3", "127.0.1.2", "127.0.2.3", "127.0.3.1",
		"127.0.4.1", "127.0.5.1", "127.0.6.1", "127.0.7.1", "127.0.8.1",
		"127.0.9.1", "127.0.10.1", "127.0.11.1", "127.0.12.1", "127.0.13.1",
		"127.0.14.1", "127.1.0.1", "127.2.0.1", "127.3.0.1", "127.4.0.1",
	};
	static const char *v6[] = { "::1" };
	struct rrl_conf c = conf(10, 2);
	unsigned hist[4] = { 0 };

	steer_family(AF_INET, "127.0.0.1", v4, sizeof(v4) / sizeof(v4[0]));
	steer_family(AF_INET6, "::1", v6, 1);
	/* The hash spreads many prefixes evenly. */
	for (unsigned k = 0; k < 40000; k++) {
		struct in6_addr a = addr("0.0.0.0");

		a.s6_addr[12] = (uint8_t)(k >> 16);
		a.s6_addr[13] = (uint8_t)(k >> 8);
		a.s6_addr[14] = (uint8_t)k;
		hist[rrl_steer_index(&a, 4, &c)]++;
	}
	for (unsigned i = 0; i < 4; i++)
		CHECK(hist[i] > 9000 && hist[i] < 11000, "steer spread: socket %u got %u of 40000",
		      i, hist[i]);
}

int main(void)
{
	test_rate();
	test_off();
	test_slip();
	test_whitelist();
	test_prefix();
	test_classes();
	test_table_replacement();
	test_classify();
	test_truncate_and_filter();
	test_steering();
	return TEST_DONE();
}
