/* tests/fuzz/fuzz_zone.c - libFuzzer target for the zone loader: the input
 * is a master file (written to a memory file, origin from its $ORIGIN or
 * SOA) loaded by zone_load(). A zone that loads is then served: a name
 * table is built over it and queries for the apex and for every node (up to
 * 64, the types it holds plus A and ANY, UDP and TCP) go through
 * answer_query(); each answer must be a well-formed DNS message (ldns
 * parses it back) within the transport's size. A load error must come with
 * a message.
 *
 * Seeds: tests/fuzz/corpus/zone (the files of zones/, the fixtures and small
 * variants; tests/fuzz/make_zone_seeds.py). Replayed by
 * tests/unit/test_fuzz_replay.c. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>

#include "dnsd/answer.h"
#include "dnsd/snap.h"
#include "dnsd/wire.h"
#include "dnsd/zone.h"
#include "tests/fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int zf_fd = -1;
static struct stats_thread zf_stats;
static uint8_t zf_q[WIRE_HDR + WIRE_NAME_MAX + 4], zf_out[ANSWER_MAX];

static void zf_ask(const struct snap *s, const uint8_t *name, size_t nlen,
		   uint16_t type, bool tcp)
{
	struct answer_worker w = { .st = &zf_stats, .rng = 7 };
	struct answer_client c = { .tcp = tcp };
	size_t qlen = WIRE_HDR + nlen + 4, len;
	ldns_pkt *p = NULL;

	memset(zf_q, 0, WIRE_HDR);
	zf_q[0] = 0xab;
	zf_q[1] = 0xcd;
	zf_q[5] = 1;                          /* QDCOUNT 1 */
	memcpy(zf_q + WIRE_HDR, name, nlen);
	zf_q[WIRE_HDR + nlen] = (uint8_t)(type >> 8);
	zf_q[WIRE_HDR + nlen + 1] = (uint8_t)type;
	zf_q[WIRE_HDR + nlen + 3] = 1;        /* class IN */
	c.addr.s6_addr[10] = c.addr.s6_addr[11] = 0xff;
	c.addr.s6_addr[12] = 127;
	c.addr.s6_addr[15] = 1;
	len = answer_query(s, zf_q, qlen, zf_out, &c, &w);
	if (len == 0)
		return;
	if (len > (tcp ? (size_t)ANSWER_MAX : 512u) || len < WIRE_HDR ||
	    zf_out[0] != 0xab || zf_out[1] != 0xcd || !(zf_out[2] & 0x80)) {
		fprintf(stderr, "fuzz_zone: bad answer of %zu octets\n", len);
		abort();
	}
	if (ldns_wire2pkt(&p, zf_out, len) != LDNS_STATUS_OK) {
		fprintf(stderr, "fuzz_zone: answer ldns cannot parse\n");
		abort();
	}
	ldns_pkt_free(p);
}

static void zf_serve(struct zone *z)
{
	struct snap s;
	struct zonetab *zt = zonetab_build(&z, 1);
	size_t n = z->n_nodes < 64 ? z->n_nodes : 64;

	if (!zt)
		return;                         /* out of memory */
	memset(&s, 0, sizeof(s));
	s.zt = zt;
	s.conf.max_udp = 1232;
	s.conf.ecs_max_v4 = 24;
	s.conf.ecs_max_v6 = 56;
	for (size_t i = 0; i < n; i++) {
		const struct node *nd = z->nodes[i];

		zf_ask(&s, nd->name, nd->name_len, 1, false);
		zf_ask(&s, nd->name, nd->name_len, 255, true);
		for (uint16_t k = 0; k < nd->n_rrsets && k < 8; k++)
			zf_ask(&s, nd->name, nd->name_len,
			       nd->rrsets[k].type, k & 1);
	}
	zonetab_free(zt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64], err[512];
	struct zone *z = NULL;
	int rc;

	if (size > 256 * 1024)
		return 0;
	fu_memfile("fuzz-zone", &zf_fd, data, size, path, sizeof(path));
	err[0] = 0;
	rc = zone_load(path, NULL, &z, err, sizeof(err));
	if (rc < 0) {
		if (z || !err[0]) {
			fprintf(stderr, "fuzz_zone: error %d without a message"
				" or with a zone\n", rc);
			abort();
		}
		return 0;
	}
	if (!z || !z->apex || !z->origin || !z->neg_soa) {
		fprintf(stderr, "fuzz_zone: loaded zone lacks apex/SOA\n");
		abort();
	}
	zf_serve(z);
	zone_free(z);
	return 0;
}
