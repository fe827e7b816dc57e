/* tests/fuzz/fuzz_packet.c - libFuzzer target for the query path: the
 * packet parser and the answer builder, over UDP and TCP limits, against
 * the example zones. Every response must be a well-formed DNS message
 * (ldns parses it back) that fits the transport's size.
 *
 * Built by tests/fuzz/run.sh with clang -fsanitize=fuzzer; the seed corpus
 * in tests/fuzz/corpus/packet is replayed by tests/unit/test_fuzz_replay.c
 * in `make test`. Zone paths are relative to the repository root, or to
 * $GSLB_ROOT. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>

#include "dnsd/answer.h"
#include "dnsd/snap.h"
#include "tests/fuzz/fuzz_util.h"
#include "dnsd/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct snap fz_snap;
static struct stats_thread fz_stats;
static uint8_t fz_out[ANSWER_MAX];

static void fz_init(void)
{
	fu_example_snap(&fz_snap, 1232);
}

static void fz_check(const uint8_t *q, size_t qlen, size_t len, size_t max)
{
	ldns_pkt *p = NULL;

	if (len == 0)
		return;
	if (len > max || len < WIRE_HDR || memcmp(fz_out, q, 2) != 0 ||
	    !(fz_out[2] & 0x80))
		abort();
	(void)qlen;
	if (ldns_wire2pkt(&p, fz_out, len) != LDNS_STATUS_OK)
		abort();
	ldns_pkt_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct answer_worker w = { .st = &fz_stats, .rng = 1 };
	struct answer_client c = { .tcp = false };
	size_t len;

	if (!fz_snap.zt)
		fz_init();
	if (size > 65535)
		return 0;
	c.addr.s6_addr[10] = c.addr.s6_addr[11] = 0xff;
	c.addr.s6_addr[12] = 127;
	c.addr.s6_addr[15] = 1;
	len = answer_query(&fz_snap, data, size, fz_out, &c, &w);
	/* UDP answers fit 4096 (the largest max-udp-size) whatever happens;
	 * an error answer may echo a question a bit beyond 512. */
	fz_check(data, size, len, size > 4096 ? size + 64 : 4096 + 64);
	c.tcp = true;
	len = answer_query(&fz_snap, data, size, fz_out, &c, &w);
	fz_check(data, size, len, ANSWER_MAX);
	return 0;
}
