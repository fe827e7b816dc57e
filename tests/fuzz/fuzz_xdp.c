/* tests/fuzz/fuzz_xdp.c - libFuzzer target for the AF_XDP mode's frame
 * path: the input is one received frame. As a queue thread does (batch()
 * in dnsd/xdp.c), xdp_frame_parse() checks it; an accepted frame's UDP
 * payload is answered by answer_query() into a frame at the offset of the
 * headers, and xdp_frame_reply() writes them. Invariants: the parsed
 * headers and payload lie within the input; an answer fits a frame
 * (XDP_ANSWER_MAX, and hlen + length <= XDP_FRAME_SIZE); the reply parses
 * back with the same header length, the answer as payload and the query's
 * destination as its client (it goes back to the sender), its UDP
 * checksum is valid and not 0, and the answer octets are left alone.
 *
 * Built by tests/fuzz/run.sh with clang -fsanitize=fuzzer; the seed corpus
 * in tests/fuzz/corpus/xdp (tests/fuzz/make_seeds.py) is replayed by
 * tests/unit/test_fuzz_replay.c in `make test`. Zone paths are relative to
 * the repository root, or to $GSLB_ROOT. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnsd/answer.h"
#include "dnsd/snap.h"
#include "tests/fuzz/fuzz_util.h"
#include "dnsd/xdp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct snap xf_snap;
static struct stats xf_stats;
/* Exactly a frame, so that ASan sees a write past its end. */
static uint8_t xf_out[XDP_FRAME_SIZE];
static uint8_t xf_answer[XDP_FRAME_SIZE];

static void xf_init(void)
{
	/* The largest max-udp-size dnsd allows with xdp (dnsd/dnsd_main.c). */
	fu_example_snap(&xf_snap, XDP_ANSWER_MAX);
}

/* Byte-wise RFC 1071 sum, folded; the UDP checksum is not the code under
 * test's to check. */
static uint32_t xf_sum(uint32_t sum, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i += 2) {
		sum += (uint32_t)p[i] << 8 | (i + 1 < n ? p[i + 1] : 0);
		sum = (sum & 0xffff) + (sum >> 16);
	}
	return sum;
}

static void xf_check_udp_sum(const uint8_t *r, const struct xdp_pkt *p)
{
	const uint8_t *ip = r + 14, *udp = r + p->hlen - 8;
	size_t ulen = 8u + p->plen;
	uint32_t sum = 17 + (uint32_t)ulen;    /* pseudo-header: proto, length */

	sum = p->v6 ? xf_sum(sum, ip + 8, 32) : xf_sum(sum, ip + 12, 8);
	sum = xf_sum(sum, udp, ulen);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	if (sum != 0xffff || (udp[6] == 0 && udp[7] == 0))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct answer_worker w = { .st = &xf_stats, .rng = 1 };
	struct answer_client c = { .tcp = false };
	struct xdp_pkt q, r;
	struct in6_addr dst = { 0 };
	size_t len, rlen;

	if (!xf_snap.zt)
		xf_init();
	if (size > XDP_FRAME_SIZE)           /* not a frame dnsd receives */
		return 0;
	if (xdp_frame_parse(data, size, &q) != 0)
		return 0;
	if ((size_t)q.hlen + q.plen > size ||
	    q.hlen != (q.v6 ? 14 + 40 + 8 : 14 + 20 + 8))
		abort();
	if (q.v6) {
		memcpy(&dst, data + 14 + 24, 16);
	} else {
		dst.s6_addr[10] = dst.s6_addr[11] = 0xff;
		memcpy(dst.s6_addr + 12, data + 14 + 16, 4);
	}
	c.addr = q.client;
	len = answer_query(&xf_snap, data + q.hlen, q.plen, xf_out + q.hlen, &c,
			   &w);
	if (len == 0)
		return 0;
	if (len > XDP_ANSWER_MAX || q.hlen + len > XDP_FRAME_SIZE)
		abort();
	memcpy(xf_answer, xf_out + q.hlen, len);
	rlen = xdp_frame_reply(&q, data, xf_out, len);
	if (rlen != q.hlen + len || memcmp(xf_out + q.hlen, xf_answer, len) != 0)
		abort();
	if (xdp_frame_parse(xf_out, rlen, &r) != 0 || r.hlen != q.hlen ||
	    r.plen != len || r.v6 != q.v6 ||
	    memcmp(&r.client, &dst, sizeof(dst)) != 0)
		abort();
	xf_check_udp_sum(xf_out, &r);
	return 0;
}
