/* tests/unit/test_xdp.c - the AF_XDP mode's frame functions: which
 * received frames xdp_frame_parse() accepts (and what it reads from them)
 * and which it drops, and every header field and checksum of the replies
 * xdp_frame_reply() builds. Frames are built here from fields, with
 * checksums from the test's own byte-wise RFC 1071 sum, never from the
 * code under test. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "dnsd/xdp.h"
#include "harness.h"

/* The client sends from CLIENT_*, the server (dnsd) receives on SERVER_*. */
static const uint8_t client_mac[6] = { 0x02, 0, 0, 0, 0, 0x02 };
static const uint8_t server_mac[6] = { 0x02, 0, 0, 0, 0, 0x01 };
static const uint8_t client4[4] = { 192, 0, 2, 1 };
static const uint8_t server4[4] = { 198, 51, 100, 53 };
static const uint8_t client6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 0x01 };
static const uint8_t server6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
				     0, 0, 0, 0, 0, 0, 0, 0x53 };
#define CLIENT_PORT 40000
#define SERVER_PORT 53

/* ---- an independent RFC 1071 checksum: one octet pair at a time ---- */

/* Adds p[0..n) as big-endian 16-bit words (an odd last octet padded with
 * zero) to sum. Only the last piece of a sum may have an odd length. */
static uint32_t ref_sum(uint32_t sum, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i += 2) {
		sum += (uint32_t)p[i] << 8;
		if (i + 1 < n)
			sum += p[i + 1];
		sum = (sum & 0xffff) + (sum >> 16);
	}
	return sum;
}

static uint16_t ref_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/* The UDP pseudo-header (RFC 768; RFC 8200 8.1 for IPv6) plus the UDP
 * header and data udp[0..ulen), folded, not complemented. With the
 * checksum field in place, a valid datagram sums to 0xffff. */
static uint16_t ref_udp_sum(bool v6, const uint8_t *src, const uint8_t *dst,
			    const uint8_t *udp, size_t ulen)
{
	size_t alen = v6 ? 16 : 4;
	uint8_t tail[8] = { 0 };
	uint32_t sum = 0;

	sum = ref_sum(sum, src, alen);
	sum = ref_sum(sum, dst, alen);
	if (v6) {                       /* 32-bit length, zeros, next header */
		tail[0] = (uint8_t)(ulen >> 24);
		tail[1] = (uint8_t)(ulen >> 16);
		tail[2] = (uint8_t)(ulen >> 8);
		tail[3] = (uint8_t)ulen;
		tail[7] = 17;
		sum = ref_sum(sum, tail, 8);
	} else {                        /* zero, protocol, 16-bit length */
		tail[1] = 17;
		tail[2] = (uint8_t)(ulen >> 8);
		tail[3] = (uint8_t)ulen;
		sum = ref_sum(sum, tail, 4);
	}
	return ref_fold(ref_sum(sum, udp, ulen));
}

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void wr16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* ---- building query frames from fields ---- */

struct fspec {
	bool v6;
	uint16_t ethertype;      /* 0: the IP version's */
	uint8_t ver_ihl;         /* IPv4 octet 0; 0: 0x45 (0x46: options) */
	uint8_t version6;        /* IPv6 version nibble; 0: 6 */
	uint8_t proto;           /* IPv4 protocol / IPv6 next header; 0: 17 */
	bool ext6;               /* an IPv6 hop-by-hop header before UDP */
	uint16_t frag;           /* IPv4 flags and fragment offset */
	int ip_len_delta;        /* added to the right IP length field */
	int udp_len_delta;       /* added to the right UDP length */
	bool sport0;             /* UDP source port 0 */
	bool dport0;             /* UDP destination port 0 */
	bool bad_csum;           /* IPv4 header checksum off by one */
	const uint8_t *src;      /* client address (4 or 16 octets); NULL: usual */
	size_t payload;          /* UDP payload octets */
	size_t pad;              /* zeros appended up to this frame length */
	size_t cut;              /* frame cut to this length (0: not cut) */
};

/* A frame from the client to the server as spec says, into f (at least
 * XDP_FRAME_SIZE); returns its length. Checksums are right unless spec
 * breaks them on purpose. */
static size_t build_frame(const struct fspec *s, uint8_t *f)
{
	size_t iphl, len, ulen = 8 + s->payload;
	uint8_t *ip = f + 14, *udp;

	memset(f, 0, XDP_FRAME_SIZE);
	memcpy(f, server_mac, 6);
	memcpy(f + 6, client_mac, 6);
	wr16(f + 12, s->ethertype ? s->ethertype : s->v6 ? 0x86dd : 0x0800);
	if (!s->v6) {
		ip[0] = s->ver_ihl ? s->ver_ihl : 0x45;
		iphl = (size_t)(ip[0] & 0x0f) * 4;
		if (iphl < 20)
			iphl = 20;
		ip[1] = 0;
		wr16(ip + 2, (uint32_t)((int)(iphl + ulen) + s->ip_len_delta));
		wr16(ip + 4, 0x1234);
		wr16(ip + 6, s->frag);
		ip[8] = 57;
		ip[9] = s->proto ? s->proto : 17;
		memcpy(ip + 12, s->src ? s->src : client4, 4);
		memcpy(ip + 16, server4, 4);
		for (size_t i = 20; i < iphl; i++)
			ip[i] = 1;              /* NOP options (RFC 791) */
		wr16(ip + 10, (uint16_t)~ref_fold(ref_sum(0, ip, iphl)) ^
			      (s->bad_csum ? 1u : 0u));
		udp = ip + iphl;
	} else {
		size_t ext = s->ext6 ? 8 : 0;

		ip[0] = (uint8_t)((s->version6 ? s->version6 : 6) << 4);
		ip[1] = 0x0a;                   /* traffic class, flow label */
		ip[2] = 0xbc;
		ip[3] = 0xde;
		wr16(ip + 4, (uint32_t)((int)(ext + ulen) + s->ip_len_delta));
		ip[6] = s->ext6 ? 0 : s->proto ? s->proto : 17;
		ip[7] = 57;
		memcpy(ip + 8, s->src ? s->src : client6, 16);
		memcpy(ip + 24, server6, 16);
		if (s->ext6) {                  /* hop-by-hop: PadN only */
			ip[40] = 17;
			ip[41] = 0;
			ip[42] = 1;
			ip[43] = 4;
		}
		udp = ip + 40 + ext;
	}
	wr16(udp, s->sport0 ? 0 : CLIENT_PORT);
	wr16(udp + 2, s->dport0 ? 0 : SERVER_PORT);
	wr16(udp + 4, (uint32_t)((int)ulen + s->udp_len_delta));
	for (size_t i = 0; i < s->payload; i++)
		udp[8 + i] = (uint8_t)(i * 7 + 3);
	{
		uint16_t c = (uint16_t)~ref_udp_sum(s->v6, s->src ? s->src :
						    s->v6 ? client6 : client4,
						    s->v6 ? server6 : server4,
						    udp, ulen);

		wr16(udp + 6, c ? c : 0xffff);
	}
	len = (size_t)(udp + ulen - f);
	if (s->pad > len)
		len = s->pad;
	if (s->cut)
		len = s->cut;
	return len;
}

/* ---- xdp_frame_parse() ---- */

/* Sources that are not a unicast host: nothing to answer. */
static const uint8_t src_zero4[4] = { 0, 1, 2, 3 };
static const uint8_t src_mcast4[4] = { 224, 0, 0, 251 };
static const uint8_t src_class_e4[4] = { 240, 0, 0, 1 };
static const uint8_t src_bcast4[4] = { 255, 255, 255, 255 };
static const uint8_t src_last_unicast4[4] = { 223, 255, 255, 254 };
static const uint8_t src_mcast6[16] = { 0xff, 0x02, [15] = 1 };
static const uint8_t src_any6[16] = { 0 };

static void test_parse(void)
{
	static const struct {
		const char *name;
		struct fspec s;
		int rc;
	} cases[] = {
		{ "IPv4 query", { .payload = 29, .frag = 0x4000 }, 0 },
		{ "IPv4 without DF", { .payload = 29 }, 0 },
		{ "IPv4 empty payload", { .payload = 0 }, 0 },
		{ "IPv4 padded to 60", { .payload = 10, .pad = 60 }, 0 },
		{ "IPv4 1500-octet payload", { .payload = 1500 }, 0 },
		{ "IPv4 UDP shorter than IP", { .payload = 29, .udp_len_delta = -4 }, 0 },
		{ "IPv4 from 223.255.255.254", { .src = src_last_unicast4, .payload = 29 },
		  0 },
		{ "IPv6 query", { .v6 = true, .payload = 29 }, 0 },
		{ "IPv6 empty payload", { .v6 = true, .payload = 0 }, 0 },
		{ "IPv6 trailing octets", { .v6 = true, .payload = 12, .pad = 90 }, 0 },
		{ "IPv6 UDP shorter than IP", { .v6 = true, .payload = 29,
						.udp_len_delta = -1 }, 0 },

		{ "1-octet frame", { .payload = 29, .cut = 1 }, -EINVAL },
		{ "shorter than Ethernet", { .payload = 29, .cut = 13 }, -EINVAL },
		{ "Ethernet header only", { .payload = 29, .cut = 14 }, -EINVAL },
		{ "shorter than IPv4", { .payload = 0, .cut = 14 + 19 }, -EINVAL },
		{ "shorter than IPv4+UDP", { .payload = 0, .cut = 14 + 20 + 7 }, -EINVAL },
		{ "shorter than IPv6", { .v6 = true, .payload = 0, .cut = 14 + 39 },
		  -EINVAL },
		{ "shorter than IPv6+UDP", { .v6 = true, .payload = 0,
					     .cut = 14 + 40 + 7 }, -EINVAL },
		{ "ARP", { .ethertype = 0x0806, .payload = 29 }, -EINVAL },
		{ "VLAN tag", { .ethertype = 0x8100, .payload = 29 }, -EINVAL },
		{ "IPv6 ethertype, IPv4 packet", { .ethertype = 0x86dd, .payload = 60 },
		  -EINVAL },
		{ "IPv4 ethertype, IPv6 packet", { .v6 = true, .ethertype = 0x0800,
						   .payload = 29 }, -EINVAL },
		{ "IPv4 with options (IHL 6)", { .ver_ihl = 0x46, .payload = 29 }, -EINVAL },
		{ "IPv4 with options (IHL 15)", { .ver_ihl = 0x4f, .payload = 29 },
		  -EINVAL },
		{ "IPv4 IHL 4", { .ver_ihl = 0x44, .payload = 29 }, -EINVAL },
		{ "IPv4 version 6", { .ver_ihl = 0x65, .payload = 29 }, -EINVAL },
		{ "IPv4 TCP", { .proto = 6, .payload = 29 }, -EINVAL },
		{ "IPv4 ICMP", { .proto = 1, .payload = 29 }, -EINVAL },
		{ "IPv4 MF set", { .frag = 0x2000, .payload = 29 }, -EINVAL },
		{ "IPv4 offset 8", { .frag = 0x0001, .payload = 29 }, -EINVAL },
		{ "IPv4 last fragment, DF", { .frag = 0x4000 | 0x1fff, .payload = 29 },
		  -EINVAL },
		{ "IPv4 bad header checksum", { .bad_csum = true, .payload = 29 },
		  -EINVAL },
		{ "IPv4 length > frame", { .ip_len_delta = 1, .payload = 29 }, -EINVAL },
		{ "IPv4 length = frame (padded)", { .ip_len_delta = 8, .payload = 10,
						    .pad = 60 }, 0 },
		{ "IPv4 length > frame (padded)", { .ip_len_delta = 20, .payload = 10,
						    .pad = 60 }, -EINVAL },
		{ "IPv4 length 27", { .ip_len_delta = -1, .payload = 0, .pad = 60 },
		  -EINVAL },
		{ "IPv4 length 0", { .ip_len_delta = -28, .payload = 0, .pad = 60 },
		  -EINVAL },
		{ "IPv4 UDP length 7", { .udp_len_delta = -30, .payload = 29 }, -EINVAL },
		{ "IPv4 UDP length 0", { .udp_len_delta = -37, .payload = 29 }, -EINVAL },
		{ "IPv4 UDP length > IP", { .udp_len_delta = 1, .payload = 29,
					    .pad = 200 }, -EINVAL },
		{ "IPv4 source port 0", { .sport0 = true, .payload = 29 }, -EINVAL },
		/* The reply would come from port 0 (found by fuzz_xdp). */
		{ "IPv4 destination port 0", { .dport0 = true, .payload = 29 },
		  -EINVAL },
		{ "IPv4 source in 0/8", { .src = src_zero4, .payload = 29 }, -EINVAL },
		{ "IPv4 multicast source", { .src = src_mcast4, .payload = 29 }, -EINVAL },
		{ "IPv4 class E source", { .src = src_class_e4, .payload = 29 }, -EINVAL },
		{ "IPv4 broadcast source", { .src = src_bcast4, .payload = 29 }, -EINVAL },
		{ "IPv6 multicast source", { .v6 = true, .src = src_mcast6, .payload = 29 },
		  -EINVAL },
		{ "IPv6 unspecified source", { .v6 = true, .src = src_any6, .payload = 29 },
		  -EINVAL },
		{ "IPv6 version 4", { .v6 = true, .version6 = 4, .payload = 29 }, -EINVAL },
		{ "IPv6 TCP", { .v6 = true, .proto = 6, .payload = 29 }, -EINVAL },
		{ "IPv6 hop-by-hop header", { .v6 = true, .ext6 = true, .payload = 29 },
		  -EINVAL },
		{ "IPv6 fragment header", { .v6 = true, .proto = 44, .payload = 29 },
		  -EINVAL },
		{ "IPv6 payload length > frame", { .v6 = true, .ip_len_delta = 1,
						   .payload = 29 }, -EINVAL },
		{ "IPv6 payload length 7", { .v6 = true, .ip_len_delta = -1,
					     .payload = 0, .pad = 90 }, -EINVAL },
		{ "IPv6 UDP length 7", { .v6 = true, .udp_len_delta = -30,
					 .payload = 29 }, -EINVAL },
		{ "IPv6 UDP length > IP", { .v6 = true, .udp_len_delta = 1,
					    .payload = 29, .pad = 200 }, -EINVAL },
		{ "IPv6 source port 0", { .v6 = true, .sport0 = true, .payload = 29 },
		  -EINVAL },
		{ "IPv6 destination port 0", { .v6 = true, .dport0 = true,
					       .payload = 29 }, -EINVAL },
	};
	static uint8_t f[XDP_FRAME_SIZE];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct fspec *s = &cases[i].s;
		const char *name = cases[i].name;
		size_t len = build_frame(s, f);
		struct xdp_pkt p;
		struct in6_addr want = { 0 };
		int rc;

		memset(&p, 0xa5, sizeof(p));
		rc = xdp_frame_parse(f, len, &p);
		CHECK(rc == cases[i].rc, "%s: parse returned %d, want %d", name, rc,
		      cases[i].rc);
		if (rc != 0 || cases[i].rc != 0)
			continue;
		if (s->v6) {
			memcpy(&want, s->src ? s->src : client6, 16);
		} else {
			want.s6_addr[10] = want.s6_addr[11] = 0xff;
			memcpy(want.s6_addr + 12, s->src ? s->src : client4, 4);
		}
		CHECK(p.v6 == s->v6, "%s: v6 %d", name, p.v6);
		CHECK(p.hlen == (s->v6 ? 14 + 40 + 8 : 14 + 20 + 8), "%s: hlen %u",
		      name, p.hlen);
		CHECK(p.plen == (int)s->payload + s->udp_len_delta,
		      "%s: plen %u, want %d", name, p.plen,
		      (int)s->payload + s->udp_len_delta);
		CHECK(p.hlen + p.plen <= len, "%s: hlen %u + plen %u > %zu", name,
		      p.hlen, p.plen, len);
		CHECK(memcmp(&p.client, &want, 16) == 0, "%s: wrong client address",
		      name);
		if (p.plen)
			CHECK(f[p.hlen] == 3 && f[p.hlen + p.plen - 1] ==
			      (uint8_t)((p.plen - 1) * 7 + 3),
			      "%s: payload not at hlen", name);
	}
}

/* ---- xdp_frame_reply() ---- */

/* Writes n answer octets at a; when zero_sum, a[0..2) are then chosen so
 * that the reply's UDP sum comes out as 0xffff, i.e. a computed checksum
 * of 0 (RFC 768), whose complement must be sent instead. */
static void make_answer(uint8_t *a, size_t n, bool v6, bool zero_sum)
{
	uint8_t udp[8 + XDP_ANSWER_MAX];
	uint16_t s;

	for (size_t i = 0; i < n; i++)
		a[i] = (uint8_t)(i * 13 + 5);
	if (!zero_sum)
		return;
	a[0] = a[1] = 0;
	wr16(udp, SERVER_PORT);
	wr16(udp + 2, CLIENT_PORT);
	wr16(udp + 4, (uint32_t)(8 + n));
	wr16(udp + 6, 0);
	memcpy(udp + 8, a, n);
	s = ref_udp_sum(v6, v6 ? server6 : server4, v6 ? client6 : client4, udp,
			8 + n);
	/* Offset 8 of the datagram: an even one, a word of its own. */
	wr16(a, (uint16_t)(0xffff - s));
}

/* One reply to query frame qs carrying an answer of alen octets. */
static void reply_case(const char *qname, const struct fspec *qs, size_t alen,
		       bool zero_sum)
{
	static uint8_t qf[XDP_FRAME_SIZE], out[XDP_FRAME_SIZE],
		want[XDP_ANSWER_MAX];
	size_t qlen = build_frame(qs, qf), rlen;
	bool v6 = qs->v6;
	const uint8_t *ip = out + 14, *udp;
	struct xdp_pkt q, r;
	char name[96];
	uint16_t sum;

	snprintf(name, sizeof(name), "%s query, answer %zu%s", qname, alen,
		 zero_sum ? " summing to 0" : "");
	if (xdp_frame_parse(qf, qlen, &q) != 0) {
		CHECK(0, "%s: the query frame does not parse", name);
		return;
	}
	/* Headers must all be written: start from garbage. */
	memset(out, 0xee, sizeof(out));
	make_answer(want, alen, v6, zero_sum);
	memcpy(out + q.hlen, want, alen);
	rlen = xdp_frame_reply(&q, qf, out, alen);
	udp = out + q.hlen - 8;
	CHECK(rlen == q.hlen + alen, "%s: length %zu, want %zu", name, rlen,
	      q.hlen + alen);
	CHECK(memcmp(out + q.hlen, want, alen) == 0, "%s: answer changed", name);
	if (q.hlen + alen < sizeof(out))
		CHECK(out[q.hlen + alen] == 0xee, "%s: wrote past the answer", name);
	CHECK(memcmp(out, client_mac, 6) == 0 && memcmp(out + 6, server_mac, 6) == 0,
	      "%s: MACs not swapped", name);
	CHECK(rd16(out + 12) == (v6 ? 0x86dd : 0x0800), "%s: ethertype %04x",
	      name, rd16(out + 12));
	if (!v6) {
		CHECK(ip[0] == 0x45, "%s: version/IHL %02x", name, ip[0]);
		CHECK(rd16(ip + 2) == 20 + 8 + alen, "%s: total length %u", name,
		      rd16(ip + 2));
		CHECK(rd16(ip + 4) == 0, "%s: ID %u", name, rd16(ip + 4));
		CHECK(rd16(ip + 6) == 0x4000, "%s: flags/offset %04x (want DF)",
		      name, rd16(ip + 6));
		CHECK(ip[8] == 64, "%s: TTL %u", name, ip[8]);
		CHECK(ip[9] == 17, "%s: protocol %u", name, ip[9]);
		CHECK(ref_fold(ref_sum(0, ip, 20)) == 0xffff,
		      "%s: IPv4 header checksum %04x invalid", name, rd16(ip + 10));
		CHECK(memcmp(ip + 12, server4, 4) == 0 &&
		      memcmp(ip + 16, client4, 4) == 0,
		      "%s: IPv4 addresses not swapped", name);
	} else {
		CHECK(ip[0] >> 4 == 6, "%s: version %u", name, ip[0] >> 4);
		CHECK(rd16(ip + 4) == 8 + alen, "%s: payload length %u", name,
		      rd16(ip + 4));
		CHECK(ip[6] == 17, "%s: next header %u", name, ip[6]);
		CHECK(ip[7] == 64, "%s: hop limit %u", name, ip[7]);
		CHECK(memcmp(ip + 8, server6, 16) == 0 &&
		      memcmp(ip + 24, client6, 16) == 0,
		      "%s: IPv6 addresses not swapped", name);
	}
	CHECK(rd16(udp) == SERVER_PORT && rd16(udp + 2) == CLIENT_PORT,
	      "%s: ports %u -> %u, want swapped", name, rd16(udp), rd16(udp + 2));
	CHECK(rd16(udp + 4) == 8 + alen, "%s: UDP length %u", name, rd16(udp + 4));
	sum = ref_udp_sum(v6, v6 ? server6 : server4, v6 ? client6 : client4, udp,
			  8 + alen);
	CHECK(sum == 0xffff, "%s: UDP checksum %04x invalid (sum %04x)", name,
	      rd16(udp + 6), sum);
	CHECK(rd16(udp + 6) != 0, "%s: UDP checksum 0 (none)", name);
	if (zero_sum)
		CHECK(rd16(udp + 6) == 0xffff,
		      "%s: a computed checksum of 0 sent as %04x, want ffff", name,
		      rd16(udp + 6));
	/* And the reply is a frame the other end accepts. */
	CHECK(xdp_frame_parse(out, rlen, &r) == 0 && r.hlen == q.hlen &&
	      r.plen == alen && r.v6 == v6,
	      "%s: the reply does not parse back", name);
}

static void test_reply(void)
{
	static const struct {
		const char *name;
		struct fspec q;
	} queries[] = {
		{ "IPv4", { .payload = 29, .frag = 0x4000 } },
		{ "IPv4 padded", { .payload = 10, .pad = 60 } },
		{ "IPv6", { .v6 = true, .payload = 40 } },
	};
	static const struct {
		size_t len;
		bool zero_sum;
	} answers[] = {
		{ 2, false }, { 12, false }, { 13, false }, { 29, false },
		{ 100, false }, { 511, false }, { 1232, false }, { 1233, false },
		{ XDP_ANSWER_MAX - 1, false }, { XDP_ANSWER_MAX, false },
		{ 2, true }, { 12, true }, { 45, true }, { 1232, true },
		{ XDP_ANSWER_MAX - 1, true },
	};

	for (size_t i = 0; i < sizeof(queries) / sizeof(queries[0]); i++)
		for (size_t j = 0; j < sizeof(answers) / sizeof(answers[0]); j++)
			reply_case(queries[i].name, &queries[i].q, answers[j].len,
				   answers[j].zero_sum);
}

int main(void)
{
	test_parse();
	test_reply();
	return TEST_DONE();
}
