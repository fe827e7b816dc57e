/* tests/unit/test_wire.c - dnsd/wire.h, table-driven: the query parser
 * (header, question, OPT, ECS, NSID; every verdict), the name reader with
 * compression (pointers, loops, forward pointers, limits) and the name
 * helpers. Packets are written in hex, as they go on the wire. */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "dnsd/wire.h"
#include "tests/unit/harness.h"

/* Table rows leave the fields that do not apply to them zero. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

/* Header pieces: id 0x1234, RD; then QD AN NS AR counts. */
#define H1      "1234 0100 0001 0000 0000 0000"
#define H1_AR1  "1234 0100 0001 0000 0000 0001"
/* WwW.Example.COM A IN */
#define QWWW    "03 577757 07 4578616d706c65 03 434f4d 00  0001 0001"
/* OPT: root, type 41, UDP 1232, ext-rcode 0, version V, flags F, rdlen R */
#define OPT(v, f, r) "00 0029 04d0 00 " v " " f " " r

static size_t unhex(const char *s, uint8_t *out, size_t cap)
{
	size_t n = 0;
	int hi = -1;

	for (; *s && n < cap; s++) {
		int v;

		if (isspace((unsigned char)*s))
			continue;
		v = isdigit((unsigned char)*s) ? *s - '0'
		                               : tolower((unsigned char)*s) - 'a' + 10;
		if (hi < 0) {
			hi = v;
		} else {
			out[n++] = (uint8_t)(hi << 4 | v);
			hi = -1;
		}
	}
	return n;
}

struct qcase {
	const char *name;
	const char *hex;
	enum wire_status st;
	bool has_q;
	uint16_t qtype;
	unsigned qlabels;
	bool edns, edns_do, nsid, ecs;
	uint16_t ecs_family;
	uint8_t ecs_source;
	const char *ecs_addr;   /* hex of the first bytes, or NULL */
};

static const struct qcase qcases[] = {
	{ "plain A query", H1 QWWW, WIRE_OK, true, TYPE_A, 3 },
	{ "too short for a header", "1234 0100 0001", WIRE_DROP, false },
	{ "a response (QR=1)", "1234 8100 0001 0000 0000 0000" QWWW, WIRE_DROP,
	  false },
	{ "no question", "1234 0100 0000 0000 0000 0000", WIRE_FORMERR, false },
	{ "two questions", "1234 0100 0002 0000 0000 0000" QWWW QWWW,
	  WIRE_FORMERR, false },
	{ "opcode STATUS", "1234 1100 0001 0000 0000 0000" QWWW, WIRE_NOTIMP,
	  true, TYPE_A, 3 },
	{ "opcode STATUS without question", "1234 1100 0000 0000 0000 0000",
	  WIRE_NOTIMP, false },
	{ "question cut short", H1 "03 777777 07 6578616d", WIRE_FORMERR, false },
	{ "no type and class", H1 "03 777777 00", WIRE_FORMERR, false },
	{ "label longer than 63", H1 "40", WIRE_FORMERR, false },
	{ "compressed question name", H1 "c0 0c 0001 0001", WIRE_FORMERR, false },
	{ "root, type NS", H1 "00 0002 0001", WIRE_OK, true, TYPE_NS, 0 },
	{ "EDNS with DO", H1_AR1 QWWW OPT("00", "8000", "0000"), WIRE_OK, true,
	  TYPE_A, 3, true, true },
	{ "EDNS version 1", H1_AR1 QWWW OPT("01", "0000", "0000"),
	  WIRE_BADVERS, true, TYPE_A, 3, true },
	{ "EDNS version 1 drops ECS and NSID",
	  H1_AR1 QWWW OPT("01", "0000", "000f")
	  "0008 0007 0001 18 00 c00002  0003 0000", WIRE_BADVERS, true, TYPE_A,
	  3, true, false, false, false },
	{ "NSID requested", H1_AR1 QWWW OPT("00", "0000", "0004") "0003 0000",
	  WIRE_OK, true, TYPE_A, 3, true, false, true },
	{ "ECS IPv4 /24", H1_AR1 QWWW OPT("00", "0000", "000b")
	  "0008 0007 0001 18 00 c00002", WIRE_OK, true, TYPE_A, 3, true, false,
	  false, true, 1, 24, "c0000200" },
	{ "ECS IPv4 /0", H1_AR1 QWWW OPT("00", "0000", "0008")
	  "0008 0004 0001 00 00", WIRE_OK, true, TYPE_A, 3, true, false, false,
	  true, 1, 0, "00000000" },
	{ "ECS IPv6 /56", H1_AR1 QWWW OPT("00", "0000", "000f")
	  "0008 000b 0002 38 00 20010db8000001", WIRE_OK, true, TYPE_A, 3, true,
	  false, false, true, 2, 56, "20010db800000100" },
	{ "ECS IPv4 /33", H1_AR1 QWWW OPT("00", "0000", "000c")
	  "0008 0008 0001 21 00 c0000201", WIRE_FORMERR, true },
	{ "ECS bits set past the source", H1_AR1 QWWW OPT("00", "0000", "000b")
	  "0008 0007 0001 17 00 c00003", WIRE_FORMERR, true },
	{ "ECS scope set in a query", H1_AR1 QWWW OPT("00", "0000", "000b")
	  "0008 0007 0001 18 18 c00002", WIRE_FORMERR, true },
	{ "ECS address longer than the source", H1_AR1 QWWW
	  OPT("00", "0000", "000c") "0008 0008 0001 18 00 c0000200",
	  WIRE_FORMERR, true },
	{ "ECS family 3", H1_AR1 QWWW OPT("00", "0000", "0008")
	  "0008 0004 0003 00 00", WIRE_FORMERR, true },
	{ "two ECS options", H1_AR1 QWWW OPT("00", "0000", "0010")
	  "0008 0004 0001 00 00  0008 0004 0001 00 00", WIRE_FORMERR, true },
	{ "option longer than the OPT", H1_AR1 QWWW OPT("00", "0000", "0004")
	  "0003 0004", WIRE_FORMERR, true },
	{ "unknown option ignored", H1_AR1 QWWW OPT("00", "0000", "0006")
	  "fde9 0002 abcd", WIRE_OK, true, TYPE_A, 3, true },
	{ "two OPT records", "1234 0100 0001 0000 0000 0002" QWWW
	  OPT("00", "0000", "0000") OPT("00", "0000", "0000"), WIRE_FORMERR,
	  true },
	{ "OPT in the answer section", "1234 0100 0001 0001 0000 0000" QWWW
	  OPT("00", "0000", "0000"), WIRE_FORMERR, true },
	{ "OPT not owned by the root", H1_AR1 QWWW
	  "01 61 00 0029 04d0 00 00 0000 0000", WIRE_FORMERR, true },
	{ "additional count lies", H1_AR1 QWWW, WIRE_FORMERR, true },
	{ "record before OPT with a pointer", "1234 0100 0001 0000 0000 0002"
	  QWWW "c0 0c 0001 0001 00000000 0004 c0000201"
	  OPT("00", "0000", "0000"), WIRE_OK, true, TYPE_A, 3, true },
};

static void test_parse(void)
{
	for (size_t i = 0; i < sizeof(qcases) / sizeof(qcases[0]); i++) {
		const struct qcase *c = &qcases[i];
		uint8_t pkt[512], want[16];
		size_t n = unhex(c->hex, pkt, sizeof(pkt));
		struct wire_query q;
		bool hq = true;
		enum wire_status st;

		memset(&q, 0xa5, sizeof(q));
		st = wire_parse_query(pkt, n, &q, &hq);
		CHECK(st == c->st, "%s: status %d, want %d", c->name, st, c->st);
		CHECK(hq == c->has_q, "%s: has_question %d", c->name, hq);
		if (st == WIRE_DROP || !hq)
			continue;
		CHECK(q.id == 0x1234, "%s: id %04x", c->name, q.id);
		CHECK(q.question_end == WIRE_HDR + q.qname_len + 4u,
		      "%s: question_end %zu", c->name, q.question_end);
		if (c->st == WIRE_FORMERR)
			continue;
		CHECK(q.qtype == c->qtype && q.qclass == CLASS_IN,
		      "%s: qtype %u qclass %u", c->name, q.qtype, q.qclass);
		CHECK(q.qlabels == c->qlabels, "%s: %u labels", c->name,
		      q.qlabels);
		if (c->qlabels == 3)
			CHECK(memcmp(q.lname, "\3www\7example\3com", 17) == 0 &&
			      memcmp(q.qname, "\3WwW\7Example\3COM", 17) == 0,
			      "%s: lower-cased name", c->name);
		CHECK(q.edns == c->edns && q.edns_do == c->edns_do &&
		      q.nsid == c->nsid && q.ecs == c->ecs,
		      "%s: edns %d do %d nsid %d ecs %d", c->name, q.edns,
		      q.edns_do, q.nsid, q.ecs);
		if (c->edns)
			CHECK(q.edns_udp == 1232, "%s: udp %u", c->name,
			      q.edns_udp);
		if (!c->ecs)
			continue;
		CHECK(q.ecs_family == c->ecs_family &&
		      q.ecs_source == c->ecs_source && q.ecs_scope == 0,
		      "%s: ECS family %u source %u scope %u", c->name,
		      q.ecs_family, q.ecs_source, q.ecs_scope);
		n = unhex(c->ecs_addr, want, sizeof(want));
		CHECK(memcmp(q.ecs_addr, want, n) == 0, "%s: ECS address",
		      c->name);
	}
}

/* A message to read names from: header, "a.example." at 12, and more at
 * the offsets the cases name. */
struct ncase {
	const char *name;
	const char *hex;        /* the message */
	size_t off;             /* where the name starts */
	int len;                /* wire length, or -1 */
	size_t next;            /* *off afterwards */
	const char *out;        /* the uncompressed lower-case name (hex) */
};

#define MSG "0000 0000 0000 0000 0000 0000  01 41 07 6578616d706c65 00"

static const struct ncase ncases[] = {
	{ "plain", MSG, 12, 11, 23, "01 61 07 6578616d706c65 00" },
	{ "pointer to it", MSG " c0 0c", 23, 11, 25,
	  "01 61 07 6578616d706c65 00" },
	{ "label then pointer", MSG " 03 575757 c0 0e", 23, 13, 29,
	  "03 777777 07 6578616d706c65 00" },
	{ "pointer to itself", MSG " c0 17", 23, -1 },
	{ "forward pointer", MSG " c0 1a 00 00 00", 23, -1 },
	{ "pointer loop", MSG " c0 19 c0 17", 25, -1 },
	{ "pointer cut short", MSG " c0", 23, -1 },
	{ "name runs past the end", MSG " 05 6162", 23, -1 },
	{ "label type 0x40", MSG " 41", 23, -1 },
	{ "label type 0x80", MSG " 81", 23, -1 },
	{ "root", MSG " 00", 23, 1, 24, "00" },
};

static void test_read_name(void)
{
	for (size_t i = 0; i < sizeof(ncases) / sizeof(ncases[0]); i++) {
		const struct ncase *c = &ncases[i];
		uint8_t msg[600], out[WIRE_NAME_MAX], want[WIRE_NAME_MAX];
		size_t n = unhex(c->hex, msg, sizeof(msg)), off = c->off;
		int len = wire_read_name(msg, n, &off, out);

		CHECK(len == c->len, "%s: length %d, want %d", c->name, len,
		      c->len);
		if (c->len < 0) {
			CHECK(off == c->off, "%s: offset moved on error", c->name);
			continue;
		}
		CHECK(off == c->next, "%s: next %zu, want %zu", c->name, off,
		      c->next);
		CHECK(unhex(c->out, want, sizeof(want)) == (size_t)len &&
		      memcmp(out, want, (size_t)len) == 0, "%s: name", c->name);
		CHECK(wire_name_len(out) == (size_t)len,
		      "%s: wire_name_len", c->name);
	}
}

/* Names at the length limits: 255 octets is the most, 63 per label. */
static void test_limits(void)
{
	uint8_t msg[600], out[WIRE_NAME_MAX];
	size_t n, off;

	for (int total = 254; total <= 256; total++) {
		/* labels of 63 and a last one to reach total with the root */
		n = 0;
		int left = total - 1;

		while (left > 0) {
			int l = left - 1 > 63 ? 63 : left - 1;

			msg[n++] = (uint8_t)l;
			memset(msg + n, 'x', (size_t)l);
			n += (size_t)l;
			left -= l + 1;
		}
		msg[n++] = 0;
		off = 0;
		CHECK((wire_read_name(msg, n, &off, out) >= 0) == (total <= 255),
		      "name of %d octets", total);
		if (total <= 255)
			CHECK(wire_name_labels(out) == (unsigned)(total + 62) / 64,
			      "labels of a %d-octet name: %u", total,
			      wire_name_labels(out));
	}
	msg[0] = 64;
	memset(msg + 1, 'x', 64);
	msg[65] = 0;
	off = 0;
	CHECK(wire_read_name(msg, 66, &off, out) < 0, "label of 64");
}

int main(void)
{
	test_parse();
	test_read_name();
	test_limits();
	return TEST_DONE();
}
