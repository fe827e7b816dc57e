/* tests/fuzz/fuzz_keyfile.c - libFuzzer target for the DNSSEC key-file
 * parser: the input is a .key file, one NUL octet, then a .private file
 * (BIND's format; without the NUL the whole input is the .key and the
 * .private is empty). dnssec_key_parse() loads the pair as dnsd does,
 * OpenSSL key included. A pair it accepts must be consistent: algorithm 13
 * or 15, a public key of that algorithm's size, flags 256 or 257, a key tag
 * that ldns computes alike from the DNSKEY, timing fields set or zero; a
 * pair it refuses must say why.
 *
 * Seeds: tests/fuzz/corpus/keyfile (key pairs made by ldns-keygen, BIND
 * timing lines, broken variants; tests/fuzz/make_key_seeds.py). Replayed
 * by tests/unit/test_fuzz_replay.c. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnsd/dnssec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	size_t pub_len = nul ? (size_t)(nul - data) : size;
	const char *priv = nul ? (const char *)nul + 1 : "";
	size_t priv_len = nul ? size - pub_len - 1 : 0;
	struct dnssec_key k;
	char err[256] = "";
	int rc;

	if (size > 65536)
		return 0;
	rc = dnssec_key_parse((const char *)data, pub_len, priv, priv_len, true,
			      &k, err, sizeof(err));
	if (rc < 0) {
		if (!err[0]) {
			fprintf(stderr, "fuzz_keyfile: refused without a reason\n");
			abort();
		}
		return 0;
	}
	if ((k.alg != DNSSEC_ALG_ECDSAP256 && k.alg != DNSSEC_ALG_ED25519) ||
	    k.pub_len != (k.alg == DNSSEC_ALG_ECDSAP256 ? 64 : 32) ||
	    (k.flags != 256 && k.flags != 257) || !k.pkey || !k.owner_len ||
	    k.owner[k.owner_len - 1] != 0 || k.publish < 0 || k.activate < 0 ||
	    k.inactive < 0 || k.del < 0) {
		fprintf(stderr, "fuzz_keyfile: inconsistent key accepted\n");
		abort();
	}
	{
		/* RFC 4034 appendix B over the DNSKEY rdata. */
		uint8_t rd[100];
		uint32_t ac = 0;
		size_t n = 4u + k.pub_len;

		rd[0] = (uint8_t)(k.flags >> 8);
		rd[1] = (uint8_t)k.flags;
		rd[2] = 3;
		rd[3] = k.alg;
		memcpy(rd + 4, k.pub, k.pub_len);
		for (size_t i = 0; i < n; i++)
			ac += (i & 1) ? rd[i] : (uint32_t)rd[i] << 8;
		ac += (ac >> 16) & 0xffff;
		if ((ac & 0xffff) != k.tag) {
			fprintf(stderr, "fuzz_keyfile: key tag %u, computed %u\n",
				k.tag, ac & 0xffff);
			abort();
		}
	}
	dnssec_key_fini(&k);
	return 0;
}
