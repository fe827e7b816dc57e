/* tests/unit/test_dnssec.c - key-file parsing (valid pairs of both
 * algorithms, BIND timing lines, each refusal with its reason), the NSEC
 * bitmap encoding, and signing: an RRSIG that OpenSSL verifies over the
 * canonical RRset rebuilt here independently, the signature cache (a hit
 * for the same RRset in another order, a miss when only the TTL differs),
 * the signing budget and the room check. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/evp.h>

#include "dnsd/dnssec.h"
#include "dnsd/wire.h"
#include "harness.h"

static const char ECDSA_PUB[] =
	"example.com.\tIN\tDNSKEY\t256 3 13 yB5yYWGrNKZJA1FCGtizEvP2QdcczrTRS8+RWnaP"
	"8Cmz3LHOvDQk0YeHhi6WuF/MUuMa2X5ylm8eFKvlcLJWBg== ;{id = 59037 (zsk), size = 256b}\n";
static const char ECDSA_PRIV[] =
	"Private-key-format: v1.2\nAlgorithm: 13 (ECDSAP256SHA256)\n"
	"PrivateKey: qGb0wKL3LwclcOH+27JgXrJKCjAA/JLL6rChGF/06eI=\n";
static const char ED_PUB[] =
	"; This is a key-signing key, keyid 50215, for example.com.\n"
	"; Created: 20260101000000 (Thu Jan  1 00:00:00 2026)\n"
	"example.com. 3600 IN DNSKEY 257 3 15 sankSJl7rW02wmuBPkuRyOkHTYc26feQAnl7RknFRFY=\n";
static const char ED_PRIV[] =
	"Private-key-format: v1.3\nAlgorithm: 15 (ED25519)\n"
	"PrivateKey: O964+ZBfvyEljH+Vbb1q+pmtQO4//lo04MJH9HMls5o=\n"
	"Created: 20260101000000\nPublish: 20260101000000\nActivate: 20260102000000\n"
	"Inactive: 20270101000000\nDelete: 20270201120000\n";

/* ldns-keygen writes a P-256 scalar with a leading zero octet as 31. */
static const char SHORT_PUB[] =
	"example.com.\tIN\tDNSKEY\t256 3 13 c9/vOPaggKQKUNcpgd+O4GLsXizM1a3CZnrsqjSibS+Y"
	"eesTfRGe/SKLaZtI4whAwIo5k/j7qO0dCZYJHMN91Q== ;{id = 26598 (zsk), size = 256b}\n";
static const char SHORT_PRIV[] =
	"Private-key-format: v1.2\nAlgorithm: 13 (ECDSAP256SHA256)\n"
	"PrivateKey: Ys4io76JHn6621tyZ2TKaEjtUflUXE66C3LO/lhGkg==\n";

static void test_parse(void)
{
	static const struct {
		const char *pub, *priv;
		const char *err;            /* NULL: accepted */
		unsigned alg, flags, tag;
	} cases[] = {
		{ ECDSA_PUB, ECDSA_PRIV, NULL, 13, 256, 59037 },
		{ ED_PUB, ED_PRIV, NULL, 15, 257, 50215 },
		{ SHORT_PUB, SHORT_PRIV, NULL, 13, 256, 26598 },
		{ ECDSA_PUB, "Private-key-format: v1.2\nAlgorithm: 13\n"
		  "PrivateKey: O964+ZBfvyEljH+Vbb1q+pmtQO4//lo04MJH9HMls5o=\n",
		  "does not match", 0, 0, 0 },
		{ ED_PUB, ECDSA_PRIV, "algorithm 13 is not the DNSKEY's 15", 0, 0, 0 },
		{ ECDSA_PUB, "Private-key-format: v1.2\nAlgorithm: 13\n", "no PrivateKey", 0, 0, 0 },
		{ ECDSA_PUB, "Algorithm: 13\nPrivateKey: qGb0wKL3LwclcOH+27JgXrJKCjAA/JLL6rChGF/06eI=\n",
		  "no Private-key-format", 0, 0, 0 },
		{ ECDSA_PUB, "Private-key-format: v1.2\nAlgorithm: 13\nPrivateKey: qGb0!!==\n",
		  "not base64", 0, 0, 0 },
		{ ED_PUB, "Private-key-format: v1.2\nAlgorithm: 15\nPrivateKey: AAAA\n",
		  "not 32", 0, 0, 0 },
		{ ECDSA_PUB, "Private-key-format: v1.2\nAlgorithm: 13\nPrivateKey: AAAA\n",
		  "does not match", 0, 0, 0 },
		{ ED_PUB, "Private-key-format: v1.3\nAlgorithm: 15\n"
		  "PrivateKey: O964+ZBfvyEljH+Vbb1q+pmtQO4//lo04MJH9HMls5o=\nActivate: 2026-01-02\n",
		  "Activate: '2026-01-02' is not YYYYMMDDHHMMSS", 0, 0, 0 },
		{ "example.com. IN DNSKEY 256 3 8 AwEAAQ==\n", ECDSA_PRIV,
		  "algorithm 8 is not supported", 0, 0, 0 },
		{ "example.com. IN DNSKEY 385 3 15 sankSJl7rW02wmuBPkuRyOkHTYc26feQAnl7RknFRFY=\n",
		  ED_PRIV, "flags 385", 0, 0, 0 },
		{ "example.com. IN DNSKEY 256 3 15 sankSJl7rW02wmuBPkuRyOkHTYc26feQ\n",
		  ED_PRIV, "wrong size", 0, 0, 0 },
		{ "; only a comment\n", ED_PRIV, "no DNSKEY record", 0, 0, 0 },
		{ "example.com. IN A 192.0.2.1\n", ED_PRIV, "not an IN DNSKEY", 0, 0, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct dnssec_key k;
		char err[256] = "";
		int rc = dnssec_key_parse(cases[i].pub, strlen(cases[i].pub),
					  cases[i].priv, strlen(cases[i].priv), true,
					  &k, err, sizeof(err));

		if (!cases[i].err) {
			CHECK(rc == 0, "case %zu: refused: %s", i, err);
			CHECK(k.alg == cases[i].alg && k.flags == cases[i].flags &&
			      k.tag == cases[i].tag && k.pkey,
			      "case %zu: alg %u flags %u tag %u", i, k.alg, k.flags, k.tag);
			dnssec_key_fini(&k);
		} else {
			CHECK(rc == -EINVAL && strstr(err, cases[i].err),
			      "case %zu: rc %d err '%s', want '%s'", i, rc, err,
			      cases[i].err);
		}
	}
	{
		struct dnssec_key k;
		char err[256];

		CHECK(dnssec_key_parse(ED_PUB, strlen(ED_PUB), ED_PRIV, strlen(ED_PRIV),
				       false, &k, err, sizeof(err)) == 0, "%s", err);
		/* 2026-01-01 00:00:00 UTC = 1767225600 */
		CHECK(k.publish == 1767225600 && k.activate == 1767225600 + 86400 &&
		      k.inactive == 1798761600 && k.del == 1798761600 + 31 * 86400 + 43200,
		      "timing %lld %lld %lld %lld", (long long)k.publish,
		      (long long)k.activate, (long long)k.inactive, (long long)k.del);
		CHECK(!k.pkey, "load=false made a key");
	}
}

static void test_nsec(void)
{
	static const uint8_t name[] = "\3www\7example\3com";
	static const uint16_t types[] = { 28, 1, 257 };   /* AAAA A CAA */
	static const uint8_t want_rd[] = {
		1, 0, 3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e',
		3, 'c', 'o', 'm', 0,
		0, 6, 0x40, 0, 0, 0x08, 0, 0x03,     /* A, AAAA (28), RRSIG, NSEC */
		1, 1, 0x40,                          /* CAA (257) */
	};
	uint8_t p[512], owner[2] = { 0xc0, 0x0c };
	size_t n = dnssec_put_nsec(p, sizeof(p), owner, 2, name, sizeof(name), 300,
				   types, 3);

	CHECK(n == 2 + 10 + sizeof(want_rd), "nsec length %zu", n);
	CHECK(wire_get16(p + 2) == TYPE_NSEC && wire_get32(p + 6) == 300 &&
	      wire_get16(p + 10) == sizeof(want_rd), "nsec header");
	CHECK(n >= 12 + sizeof(want_rd) && !memcmp(p + 12, want_rd, sizeof(want_rd)),
	      "nsec rdata");
	CHECK(dnssec_put_nsec(p, 20, owner, 2, name, sizeof(name), 300, types, 3) == 0,
	      "nsec past room");
	{
		uint8_t longname[255];

		memset(longname, 0, sizeof(longname));
		for (int i = 0; i < 4; i++) {
			longname[i * 63] = 62;
			memset(longname + i * 63 + 1, 'a', 62);
		}
		/* 4 * 63 + 1 = 253 octets: \000. makes 255, fits; 254 would not */
		CHECK(dnssec_put_nsec(p, sizeof(p), owner, 2, longname, 253, 1, NULL, 0) > 0,
		      "253-octet name");
		longname[0] = 63;
		longname[63] = 'a';
		CHECK(dnssec_put_nsec(p, sizeof(p), owner, 2, longname, 254, 1, NULL, 0) == 0,
		      "254-octet name has no \\000 successor");
	}
}

/* A response: header, question www.example.com/A, then n A records owned
 * by a pointer to the question name. */
static size_t response(uint8_t *p, const uint8_t (*addrs)[4], unsigned n,
		       uint32_t ttl)
{
	static const uint8_t q[] = "\3www\7example\3com\0\0\1\0\1";
	size_t len = WIRE_HDR;

	memset(p, 0, WIRE_HDR);
	memcpy(p + len, q, sizeof(q) - 1);
	len += sizeof(q) - 1;
	for (unsigned i = 0; i < n; i++) {
		p[len] = 0xc0;
		p[len + 1] = 0x0c;
		wire_put16(p + len + 2, TYPE_A);
		wire_put16(p + len + 4, CLASS_IN);
		wire_put32(p + len + 6, ttl);
		wire_put16(p + len + 10, 4);
		memcpy(p + len + 12, addrs[i], 4);
		len += 16;
	}
	return len;
}

/* Verifies the RRSIG at p[0..] over the addresses (sorted here) with k. */
static bool verify(const struct dnssec_key *k, const uint8_t *rrsig,
		   const uint8_t (*sorted)[4], unsigned n, uint32_t ttl)
{
	static const uint8_t owner[] = "\3www\7example\3com";
	uint8_t tbs[1024], der[128], *dp = der;
	uint16_t rdlen = wire_get16(rrsig + 10);
	const uint8_t *rd = rrsig + 12;
	size_t hdr = rdlen - 64, at = hdr;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	ECDSA_SIG *es = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(rd + hdr, 32, NULL), *s = BN_bin2bn(rd + hdr + 32, 32, NULL);
	int dlen, ok;

	memcpy(tbs, rd, hdr);
	for (unsigned i = 0; i < n; i++) {
		memcpy(tbs + at, owner, sizeof(owner));
		at += sizeof(owner);
		wire_put16(tbs + at, TYPE_A);
		wire_put16(tbs + at + 2, CLASS_IN);
		wire_put32(tbs + at + 4, ttl);
		wire_put16(tbs + at + 8, 4);
		memcpy(tbs + at + 10, sorted[i], 4);
		at += 14;
	}
	ECDSA_SIG_set0(es, r, s);
	dlen = i2d_ECDSA_SIG(es, &dp);
	ok = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, (EVP_PKEY *)k->pkey) == 1 &&
	     EVP_DigestVerify(md, der, (size_t)dlen, tbs, at) == 1;
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(md);
	return ok;
}

/* Zone example.com with the test key (id) signing everything, and a
 * worker with a 1 MiB cache and sign_rate signatures a second (0: no
 * limit). NULL (and a failed check) when either cannot be made. */
static struct dnssec_worker *signing_setup(struct dnssec_zone *z, uint64_t id,
					   unsigned sign_rate)
{
	struct dnssec_worker *w;
	char err[256];

	CHECK(dnssec_key_parse(ECDSA_PUB, strlen(ECDSA_PUB), ECDSA_PRIV,
			       strlen(ECDSA_PRIV), true, &z->keys[0], err,
			       sizeof(err)) == 0, "%s", err);
	z->keys[0].id = id;
	z->n_keys = 1;
	z->zsk[0] = z->ksk[0] = &z->keys[0];
	z->n_zsk = z->n_ksk = 1;
	memcpy(z->apex, "\7example\3com", 13);
	z->apex_len = 13;
	dnssec_configure(1 << 20, sign_rate);
	w = dnssec_worker_new(id);
	CHECK(w != NULL, "worker");
	return w;
}

static void test_sign(void)
{
	static const uint8_t addrs[3][4] = { { 192, 0, 2, 9 }, { 192, 0, 2, 1 },
					     { 10, 0, 0, 1 } };
	static const uint8_t sorted[3][4] = { { 10, 0, 0, 1 }, { 192, 0, 2, 1 },
					      { 192, 0, 2, 9 } };
	static const uint8_t rev[3][4] = { { 10, 0, 0, 1 }, { 192, 0, 2, 9 },
					   { 192, 0, 2, 1 } };
	static struct dnssec_zone z;
	struct dnssec_worker *w;
	struct dnssec_counters c;
	uint8_t p[2048], sig1[64];
	size_t len, end;
	uint16_t count = 3;
	time_t now = time(NULL);

	w = signing_setup(&z, 42, 3);
	if (!w)
		return;

	end = len = response(p, addrs, 3, 300);
	CHECK(dnssec_sign(w, &z, false, p, WIRE_HDR + 21, &len, sizeof(p), &count,
			  now) == 0 && count == 4, "sign: count %u", count);
	CHECK(len == end + 2 + 10 + 18 + 13 + 64, "rrsig length %zu", len - end);
	CHECK(wire_get16(p + end + 2) == TYPE_RRSIG && p[end] == 0xc0 &&
	      wire_get32(p + end + 6) == 300, "rrsig header");
	CHECK(wire_get16(p + end + 12) == TYPE_A && p[end + 14] == 13 &&
	      p[end + 15] == 3 && wire_get32(p + end + 16) == 300 &&
	      wire_get16(p + end + 28) == 59037, "rrsig rdata fields");
	{
		uint32_t exp = wire_get32(p + end + 20), inc = wire_get32(p + end + 24);

		CHECK(inc == (uint32_t)now - 3600, "inception backdated 1 h: %u", inc);
		CHECK(exp > (uint32_t)now + 13 * 86400 && exp <= (uint32_t)now + 14 * 86400,
		      "expiration 13-14 days ahead: %u", exp);
	}
	CHECK(verify(&z.keys[0], p + end, sorted, 3, 300), "OpenSSL verifies the RRSIG");
	memcpy(sig1, p + end + 12 + 18 + 13, 64);

	/* The same RRset in another order: canonical order, a cache hit. */
	end = len = response(p, rev, 3, 300);
	count = 3;
	CHECK(dnssec_sign(w, &z, false, p, WIRE_HDR + 21, &len, sizeof(p), &count,
			  now) == 0, "sign again");
	dnssec_worker_counters(w, &c);
	CHECK(c.cache_hits == 1 && c.signed_ == 1, "hits %llu signed %llu",
	      (unsigned long long)c.cache_hits, (unsigned long long)c.signed_);
	CHECK(!memcmp(sig1, p + end + 12 + 18 + 13, 64), "cached signature reused");
	CHECK(verify(&z.keys[0], p + end, sorted, 3, 300), "cached RRSIG verifies");

	/* Only the TTL differs: not the cached signature (it would be bogus). */
	end = len = response(p, addrs, 3, 301);
	CHECK(dnssec_sign(w, &z, false, p, WIRE_HDR + 21, &len, sizeof(p), &count,
			  now) == 0, "sign ttl 301");
	dnssec_worker_counters(w, &c);
	CHECK(c.signed_ == 2 && c.cache_hits == 1, "TTL change signed anew");
	CHECK(verify(&z.keys[0], p + end, sorted, 3, 301), "TTL 301 RRSIG verifies");
	CHECK(!verify(&z.keys[0], p + end, sorted, 3, 300), "and not for TTL 300");

	/* No room: nothing added. */
	end = len = response(p, addrs, 2, 77);
	CHECK(dnssec_sign(w, &z, false, p, WIRE_HDR + 21, &len, end + 50, &count,
			  now) == -ENOSPC && len == end, "room check");
	/* Budget of 3 a second: the 4th new RRset in this second waits. */
	end = len = response(p, addrs, 1, 78);
	CHECK(dnssec_sign(w, &z, false, p, WIRE_HDR + 21, &len, sizeof(p), &count,
			  now) == -EAGAIN && len == end, "over budget");
	dnssec_worker_counters(w, &c);
	CHECK(c.over_budget == 1, "over budget counted");
	/* A cached one is still served over budget. */
	end = len = response(p, addrs, 3, 300);
	CHECK(dnssec_sign(w, &z, false, p, WIRE_HDR + 21, &len, sizeof(p), &count,
			  now) == 0, "cache hit over budget");
	dnssec_worker_free(w);
	dnssec_key_fini(&z.keys[0]);
}

/* dnssec_sign_static(): the same bytes as dnssec_sign(), copied from the
 * memo for the same RRset and generation, made again for another
 * generation, another RRset, or when the memoised signature is too old. */
static void test_memo(void)
{
	static const uint8_t addrs[2][4] = { { 192, 0, 2, 9 }, { 192, 0, 2, 1 } };
	static const uint8_t sorted[2][4] = { { 192, 0, 2, 1 }, { 192, 0, 2, 9 } };
	static struct dnssec_zone z;
	static const int set_a = 0, set_b = 0;  /* two RRset identities */
	struct dnssec_worker *w;
	struct dnssec_counters c;
	uint8_t p[2048], first[256];
	size_t len, end, flen;
	uint16_t count = 2;
	time_t now = time(NULL);

	w = signing_setup(&z, 43, 0);
	if (!w)
		return;
	end = len = response(p, addrs, 2, 300);
	CHECK(dnssec_sign_static(w, &z, false, &set_a, 7, p, WIRE_HDR + 21, &len,
				 sizeof(p), &count, now) == 0 && count == 3,
	      "static sign: count %u", count);
	CHECK(verify(&z.keys[0], p + end, sorted, 2, 300), "memoised RRSIG verifies");
	flen = len - end;
	memcpy(first, p + end, flen);

	/* Same identity and generation: copied, nothing parsed or signed. */
	end = len = response(p, addrs, 2, 300);
	count = 2;
	CHECK(dnssec_sign_static(w, &z, false, &set_a, 7, p, WIRE_HDR + 21, &len,
				 sizeof(p), &count, now) == 0 && count == 3 &&
	      len - end == flen && !memcmp(first, p + end, flen), "memo hit");
	dnssec_worker_counters(w, &c);
	CHECK(c.signed_ == 1 && c.cache_hits == 1, "memo hit counted: %llu/%llu",
	      (unsigned long long)c.signed_, (unsigned long long)c.cache_hits);
	/* Not past the limit. */
	len = end;
	CHECK(dnssec_sign_static(w, &z, false, &set_a, 7, p, WIRE_HDR + 21, &len,
				 end + 20, &count, now) == -ENOSPC && len == end,
	      "memo hit, no room");

	/* Another generation or another RRset: through the signing path
	 * (here a signature-cache hit, the records being the same). */
	end = len = response(p, addrs, 2, 300);
	CHECK(dnssec_sign_static(w, &z, false, &set_a, 8, p, WIRE_HDR + 21, &len,
				 sizeof(p), &count, now) == 0, "generation 8");
	len = end;
	CHECK(dnssec_sign_static(w, &z, false, &set_b, 8, p, WIRE_HDR + 21, &len,
				 sizeof(p), &count, now) == 0, "other RRset");
	dnssec_worker_counters(w, &c);
	CHECK(c.signed_ == 1 && c.cache_hits == 3, "memo misses use the cache: %llu/%llu",
	      (unsigned long long)c.signed_, (unsigned long long)c.cache_hits);

	/* Eight days on, the memoised signature is within the refresh window:
	 * a new one is made, with a later expiration. */
	end = len = response(p, addrs, 2, 300);
	CHECK(dnssec_sign_static(w, &z, false, &set_a, 7, p, WIRE_HDR + 21, &len,
				 sizeof(p), &count, now + 8 * 86400) == 0, "8 days on");
	dnssec_worker_counters(w, &c);
	CHECK(c.signed_ == 2, "old memo entry signed anew: %llu",
	      (unsigned long long)c.signed_);
	CHECK(wire_get32(p + end + 20) > wire_get32(first + 20), "later expiration");
	dnssec_worker_free(w);
	dnssec_key_fini(&z.keys[0]);
}

int main(void)
{
	test_parse();
	test_nsec();
	test_sign();
	test_memo();
	return TEST_DONE();
}
