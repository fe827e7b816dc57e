/* tests/unit/test_loadgen.c - the bench load generator's parts: query file
 * parsing and encoding, reply matching, timeouts, GSO batching over a real
 * loopback socket.  bench/loadgen.c is a program, not a library module, so
 * it is included here with its main() left out. */
#define LOADGEN_NO_MAIN
#include "bench/loadgen.c"
#include "tests/unit/harness.h"

static void test_types(void)
{
	static const struct { const char *in; int rc; uint16_t type; } cases[] = {
		{ "A", 0, 1 }, { "aaaa", 0, 28 }, { "MX", 0, 15 },
		{ "CNAME", 0, 5 }, { "TXT", 0, 16 }, { "TYPE65534", 0, 65534 },
		{ "TYPE0", 0, 0 }, { "TYPE65536", -EINVAL, 0 },
		{ "TYPE", -EINVAL, 0 }, { "FOO", -EINVAL, 0 }, { "", -EINVAL, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint16_t t = 0;
		int rc = lg_type_parse(cases[i].in, &t);

		CHECK(rc == cases[i].rc, "type '%s': rc %d", cases[i].in, rc);
		if (rc == 0)
			CHECK(t == cases[i].type, "type '%s': got %u",
			      cases[i].in, t);
	}
}

static void test_names(void)
{
	char l63[64], l64[65], long_name[300];
	uint8_t w[300];

	memset(l63, 'a', 63);
	l63[63] = '\0';
	memset(l64, 'a', 64);
	l64[64] = '\0';
	/* 4 labels of 63 plus dots: 4 * 64 + 1 = 257 octets of wire. */
	snprintf(long_name, sizeof(long_name), "%s.%s.%s.%s.", l63, l63, l63,
		 l63);
	const struct { const char *name; const char *in; int len; } cases[] = {
		{ "root", ".", 1 },
		{ "fqdn", "host1.bench.test.", 18 },
		{ "no trailing dot", "host1.bench.test", 18 },
		{ "63-octet label", l63, 65 },
		{ "64-octet label", l64, -EINVAL },
		{ "empty label", "a..b", -EINVAL },
		{ "leading dot", ".a", -EINVAL },
		{ "empty", "", -EINVAL },
		{ "over 255 octets", long_name, -EINVAL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = lg_name_encode(cases[i].in, w, sizeof(w));

		CHECK(n == cases[i].len, "%s: length %d, want %d",
		      cases[i].name, n, cases[i].len);
	}
	CHECK(lg_name_encode("host1.bench.test.", w, sizeof(w)) == 18 &&
	      memcmp(w, "\5host1\5bench\4test\0", 18) == 0,
	      "fqdn: wrong wire bytes");
}

static void test_lines(void)
{
	static const struct { const char *name, *line; int rc; uint16_t type;
			      uint16_t len; } cases[] = {
		{ "A", "host1.bench.test. A\n", 1, 1, 12 + 18 + 4 },
		{ "tabs, lower case", "\thost1.bench.test.\taaaa\n", 1, 28,
		  12 + 18 + 4 },
		{ "comment", "# host1 A\n", 0, 0, 0 },
		{ "dnsperf comment", "; x\n", 0, 0, 0 },
		{ "blank", "   \n", 0, 0, 0 },
		{ "name only", "host1.bench.test.\n", -EINVAL, 0, 0 },
		{ "extra field", "host1 A IN\n", -EINVAL, 0, 0 },
		{ "bad type", "host1 QQ\n", -EINVAL, 0, 0 },
		{ "bad name", "a..b A\n", -EINVAL, 0, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct lg_query q;
		int rc = lg_line_parse(cases[i].line, &q, false);

		CHECK(rc == cases[i].rc, "%s: rc %d", cases[i].name, rc);
		if (rc != 1)
			continue;
		CHECK(q.len == cases[i].len && q.qend == q.len,
		      "%s: len %u qend %u", cases[i].name, q.len, q.qend);
		CHECK(q.wire[5] == 1 && q.wire[11] == 0 && q.wire[2] == 0,
		      "%s: header (QDCOUNT 1, no RD, no OPT)", cases[i].name);
		CHECK((q.wire[q.qend - 4] << 8 | q.wire[q.qend - 3]) ==
		      cases[i].type && q.wire[q.qend - 1] == 1,
		      "%s: qtype/qclass", cases[i].name);
	}
	struct lg_query q;
	CHECK(lg_line_parse("x.test. A", &q, true) == 1 &&
	      q.len == q.qend + 11 && q.wire[11] == 1 &&
	      q.wire[q.qend + 2] == 41 &&
	      (q.wire[q.qend + 3] << 8 | q.wire[q.qend + 4]) == 1232,
	      "edns: OPT with UDP size 1232 after the question");
}

/* "name TYPE ADDR/LEN": an OPT RR with one ECS option (RFC 7871): family,
 * source prefix, scope 0, the address cut to the prefix's octets. */
static void test_ecs(void)
{
	static const struct {
		const char *name, *line;
		int rc;
		uint8_t data[20];	/* ECS option data */
		int dlen;
	} cases[] = {
		{ "v4 /24", "g.t. A 198.51.100.0/24\n", 1,
		  { 0, 1, 24, 0, 198, 51, 100 }, 7 },
		{ "v4 /20 host bits cleared", "g.t. A 10.1.31.77/20", 1,
		  { 0, 1, 20, 0, 10, 1, 16 }, 7 },
		{ "v4 /32", "g.t. AAAA 192.0.2.9/32", 1,
		  { 0, 1, 32, 0, 192, 0, 2, 9 }, 8 },
		{ "v4 /0", "g.t. A 0.0.0.0/0", 1, { 0, 1, 0, 0 }, 4 },
		{ "v6 /56", "g.t. A 2001:db8:aa:bbcc::/56", 1,
		  { 0, 2, 56, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 0xaa, 0xbb }, 11 },
		{ "v6 /33 odd bits", "g.t. A 2001:db8:ffff::/33", 1,
		  { 0, 2, 33, 0, 0x20, 0x01, 0x0d, 0xb8, 0x80 }, 9 },
		{ "v4 /33", "g.t. A 192.0.2.0/33", -EINVAL, { 0 }, 0 },
		{ "v6 /129", "g.t. A ::/129", -EINVAL, { 0 }, 0 },
		{ "no length", "g.t. A 192.0.2.0", -EINVAL, { 0 }, 0 },
		{ "empty length", "g.t. A 192.0.2.0/", -EINVAL, { 0 }, 0 },
		{ "negative length", "g.t. A 192.0.2.0/-1", -EINVAL, { 0 }, 0 },
		{ "junk after length", "g.t. A 192.0.2.0/24x", -EINVAL, { 0 }, 0 },
		{ "bad address", "g.t. A 192.0.2/24", -EINVAL, { 0 }, 0 },
		{ "fourth field", "g.t. A 192.0.2.0/24 x", -EINVAL, { 0 }, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct lg_query q;
		int rc = lg_line_parse(cases[i].line, &q, false);

		CHECK(rc == cases[i].rc, "ecs %s: rc %d", cases[i].name, rc);
		if (rc != 1)
			continue;
		const uint8_t *o = q.wire + q.qend;
		int dlen = cases[i].dlen;

		CHECK(q.wire[11] == 1, "ecs %s: ARCOUNT", cases[i].name);
		CHECK(q.len == q.qend + 11 + 4 + dlen,
		      "ecs %s: length %u, want %d", cases[i].name, q.len,
		      q.qend + 11 + 4 + dlen);
		CHECK(o[0] == 0 && (o[1] << 8 | o[2]) == 41 &&
		      (o[3] << 8 | o[4]) == 1232,
		      "ecs %s: OPT owner/type/size", cases[i].name);
		CHECK((o[9] << 8 | o[10]) == 4 + dlen,
		      "ecs %s: RDLENGTH %d", cases[i].name, o[9] << 8 | o[10]);
		CHECK((o[11] << 8 | o[12]) == 8 && (o[13] << 8 | o[14]) == dlen,
		      "ecs %s: option code/length", cases[i].name);
		CHECK(memcmp(o + 15, cases[i].data, (size_t)dlen) == 0,
		      "ecs %s: option data", cases[i].name);
	}
	/* -e and a subnet: still one OPT RR. */
	struct lg_query q;
	CHECK(lg_line_parse("g.t. A 192.0.2.0/24", &q, true) == 1 &&
	      q.wire[11] == 1 && q.len == q.qend + 11 + 4 + 7,
	      "ecs with -e: one OPT");
	/* The longest name still fits with an IPv6 /128 option. */
	char l63[64], name[300];
	memset(l63, 'a', 63);
	l63[63] = '\0';
	snprintf(name, sizeof(name), "%s.%s.%s.%.61s. A ffff::1/128", l63, l63,
		 l63, l63);
	CHECK(lg_line_parse(name, &q, false) == 1 && q.qend == 12 + 255 + 4 &&
	      q.len == q.qend + 11 + 4 + 20 && q.len <= LG_MAXQ,
	      "ecs: 255-octet name with a /128 fits (len %u)", q.len);
}

/* A reply is the query with QR set and records appended. */
static size_t make_reply(const struct lg_query *q, uint16_t id, uint8_t *p)
{
	memcpy(p, q->wire, q->qend);
	p[0] = (uint8_t)(id >> 8);
	p[1] = (uint8_t)id;
	p[2] |= 0x84;			/* QR, AA */
	p[7] = 1;			/* ANCOUNT */
	memset(p + q->qend, 0xee, 16);
	return q->qend + 16u;
}

static void test_match(void)
{
	struct lg_query qs[2];
	struct lg_sock s = { .fd = -1 };
	uint8_t p[512];
	size_t n;

	s.slot = calloc(LG_NIDS, sizeof(*s.slot));
	lg_line_parse("host1.bench.test. A", &qs[0], false);
	lg_line_parse("host2.bench.test. A", &qs[1], false);
	s.slot[7] = (struct lg_slot){ .inflight = 1, .qidx = 0 };
	s.slot[8] = (struct lg_slot){ .inflight = 1, .qidx = 1 };

	n = make_reply(&qs[0], 7, p);
	CHECK(lg_reply_match(&s, qs, p, n) == &s.slot[7], "match: id 7");
	CHECK(lg_reply_match(&s, qs, p, qs[0].qend - 1) == NULL,
	      "match: reply cut inside the question");
	CHECK(lg_reply_match(&s, qs, p, 11) == NULL, "match: short header");
	n = make_reply(&qs[0], 8, p);
	CHECK(lg_reply_match(&s, qs, p, n) == NULL,
	      "match: id 8 in flight for another question");
	n = make_reply(&qs[0], 9, p);
	CHECK(lg_reply_match(&s, qs, p, n) == NULL, "match: id 9 not sent");
	n = make_reply(&qs[1], 8, p);
	p[2] &= 0x7f;
	CHECK(lg_reply_match(&s, qs, p, n) == NULL, "match: QR clear");
	p[2] |= 0x80;
	CHECK(lg_reply_match(&s, qs, p, n) == &s.slot[8], "match: id 8");
	free(s.slot);
}

static void test_sweep(void)
{
	struct lg_sock s = { .fd = -1, .oldest = 65534, .next_id = 3 };
	struct lg_stats st;
	const uint64_t ms = 1000000;

	memset(&st, 0, sizeof(st));
	s.slot = calloc(LG_NIDS, sizeof(*s.slot));
	/* IDs 65534, 65535, 0, 1, 2 sent 10, 20, 30, 40, 50 ms; 0 answered. */
	for (uint16_t id = 65534, k = 1; id != 3; id++, k++) {
		s.slot[id] = (struct lg_slot){ .inflight = id != 0,
					       .sent_ns = k * 10 * ms };
		s.inflight += id != 0;
	}
	lg_sweep(&s, &st, 45 * ms, 10 * ms);	/* older than 35 ms: lost */
	CHECK(st.timedout == 2, "sweep: timed out %llu, want 2",
	      (unsigned long long)st.timedout);
	CHECK(s.oldest == 1 && s.inflight == 2, "sweep: oldest %u inflight %u",
	      s.oldest, s.inflight);
	lg_sweep(&s, &st, 1000 * ms, 10 * ms);
	CHECK(st.timedout == 4 && s.oldest == 3 && s.inflight == 0,
	      "sweep all: timed out %llu oldest %u",
	      (unsigned long long)st.timedout, s.oldest);
	free(s.slot);
}

static void test_block_sort(void)
{
	static const char *const names[] = {
		"bbb.t.", "a.t.", "cc.t.", "d.t.", "eee.t.", "ff.t.", "g.t.",
	};
	enum { N = sizeof(names) / sizeof(names[0]) };
	struct lg_query qs[N];

	for (int i = 0; i < N; i++)
		lg_query_build(&qs[i], names[i], 1, false);
	CHECK(lg_block_sort(qs, N, 4) == 0, "block sort: rc");
	/* Block 1: bbb a cc d -> a d cc bbb (stable); block 2: eee ff g. */
	static const char *const want[] = { "\1a", "\1d", "\2cc", "\3bbb",
					    "\1g", "\2ff", "\3eee" };
	for (int i = 0; i < N; i++)
		CHECK(memcmp(qs[i].wire + 12, want[i], strlen(want[i])) == 0,
		      "block sort: position %d", i);
}

static void test_percentiles(void)
{
	struct lg_stats st;
	double p50, p90, p99, p999;

	memset(&st, 0, sizeof(st));
	st.hist = calloc(LG_HIST_US + 1, sizeof(uint64_t));
	for (int us = 1; us <= 1000; us++)
		st.hist[us]++;
	st.lat_n = 1000;
	lg_percentiles(&st, &p50, &p90, &p99, &p999);
	CHECK(p50 == 501 && p90 == 901 && p99 == 991 && p999 == 1000,
	      "percentiles: %.0f %.0f %.0f %.0f", p50, p90, p99, p999);
	free(st.hist);
}

/* lg_send over a real loopback socket: 40 equal-length queries go out as
 * GSO runs and must arrive as 40 separate datagrams, in order. */
static void test_send_loopback(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t al = sizeof(a);
	int rx = socket(AF_INET, SOCK_DGRAM, 0);
	struct lg_query qs[3];
	struct lg_sock s = { .next_id = 100, .oldest = 100 };
	struct lg_stats st;
	static struct lg_tx tx;
	size_t qnext = 0;
	char port[8];

	memset(&st, 0, sizeof(st));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (rx < 0 || bind(rx, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(rx, (struct sockaddr *)&a, &al) < 0) {
		CHECK(0, "loopback: socket: %s", strerror(errno));
		return;
	}
	snprintf(port, sizeof(port), "%u", ntohs(a.sin_port));
	s.fd = lg_connect("127.0.0.1", ntohs(a.sin_port), 1 << 20);
	s.slot = calloc(LG_NIDS, sizeof(*s.slot));
	tx.buf = calloc(LG_MAXBATCH, LG_MAXQ);
	tx.gso = true;
	lg_query_build(&qs[0], "q1.t.", 1, false);
	lg_query_build(&qs[1], "q2.t.", 28, false);
	lg_query_build(&qs[2], "q333.t.", 15, false);
	CHECK(s.fd >= 0, "loopback: connect to port %s", port);
	unsigned sent = lg_send(&tx, &s, qs, 3, &qnext, 40, &st);
	CHECK(sent == 40 && st.sent == 40 && s.inflight == 40,
	      "loopback: sent %u", sent);
	CHECK(qnext == 1 && s.next_id == 140, "loopback: qnext %zu id %u",
	      qnext, s.next_id);
	for (unsigned i = 0; i < sent; i++) {
		uint8_t p[512];
		struct pollfd pfd = { .fd = rx, .events = POLLIN };
		ssize_t n = poll(&pfd, 1, 1000) == 1 ? recv(rx, p, sizeof(p), 0)
						     : -1;
		const struct lg_query *q = &qs[i % 3];

		CHECK(n == q->len, "loopback: datagram %u length %zd", i, n);
		if (n != q->len)
			break;
		CHECK((p[0] << 8 | p[1]) == (int)(100 + i) &&
		      memcmp(p + 2, q->wire + 2, (size_t)n - 2) == 0,
		      "loopback: datagram %u content", i);
		CHECK(s.slot[100 + i].inflight && s.slot[100 + i].qidx == i % 3,
		      "loopback: slot %u", 100 + i);
	}
	close(s.fd);
	close(rx);
	free(s.slot);
	free(tx.buf);
}

int main(void)
{
	test_types();
	test_names();
	test_lines();
	test_ecs();
	test_match();
	test_sweep();
	test_block_sort();
	test_percentiles();
	test_send_loopback();
	return TEST_DONE();
}
