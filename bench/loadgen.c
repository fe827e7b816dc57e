/* bench/loadgen.c - a small, cheap DNS load generator for `make bench`.
 *
 * Reads a query file like dnsperf's ("name TYPE" per line), pre-encodes every
 * query once, and sends them in order, round after round, over several
 * connected UDP sockets (several source ports) with sendmmsg in batches; replies
 * come back with recvmmsg.  Two modes:
 *   closed loop (default): keep WINDOW queries in flight (saturation);
 *   open loop (-Q RATE):   send at a fixed rate whatever comes back.
 * A reply is matched by socket + DNS ID and its question section must equal the
 * one sent, so a late reply to a reused ID is never counted twice.  IDs are
 * handed out sequentially per socket, so an ID comes back into use only after
 * 65536 other queries on that socket; a query older than the timeout is lost.
 *
 * Prints answered q/s, lost queries, rcode counts, latency and its own CPU time
 * (getrusage), then one machine-readable "RESULT key=value ..." line.
 * `-P NAME/TYPE` is a probe mode instead: query until an answer with at least
 * one answer record arrives (used to time zone loading).
 *
 * Not part of the library: run.sh builds it alone with cc -O2.  One thread. */
#ifdef LOADGEN_NO_MAIN
/* tests/unit/test_loadgen.c includes this file to test its parts; the parts
 * it does not call would otherwise be unused. */
#pragma GCC diagnostic ignored "-Wunused-function"
#endif
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LG_MAXQ 320		/* largest encoded query we build (name 255 + ECS) */
#define LG_MAXR 4096		/* receive buffer per message */
#define LG_MAXBATCH 256
#define LG_MAXSOCK 64
#define LG_NIDS 65536
#define LG_HIST_US 100000	/* latency histogram: 1 us buckets to 100 ms */

/* One pre-encoded query: wire bytes with ID 0; question ends at qend. */
struct lg_query {
	uint16_t len;
	uint16_t qend;
	uint8_t wire[LG_MAXQ];
};

struct lg_slot {
	uint64_t sent_ns;
	uint32_t qidx;
	uint8_t inflight;
};

struct lg_sock {
	int fd;
	uint16_t next_id;	/* next ID to hand out */
	uint16_t oldest;	/* oldest ID that may still be in flight */
	uint32_t inflight;
	struct lg_slot *slot;	/* LG_NIDS entries */
};

struct lg_stats {
	uint64_t sent, answered, answered_run, late, mismatched, timedout;
	uint64_t rcode[16], ancount, tc, truncated_rx;
	uint64_t lat_sum_ns, lat_n;
	uint64_t *hist;		/* LG_HIST_US + 1 buckets, last is overflow */
};

static const struct {
	const char *name;
	uint16_t type;
} lg_types[] = {
	{ "A", 1 }, { "NS", 2 }, { "CNAME", 5 }, { "SOA", 6 }, { "PTR", 12 },
	{ "HINFO", 13 }, { "MX", 15 }, { "TXT", 16 }, { "AAAA", 28 },
	{ "SRV", 33 }, { "NAPTR", 35 }, { "DS", 43 }, { "DNSKEY", 48 },
	{ "CAA", 257 }, { "ANY", 255 },
};

static const char *const lg_rcode_names[16] = {
	"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
	"YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE", "RCODE11",
	"RCODE12", "RCODE13", "RCODE14", "RCODE15",
};

static uint64_t lg_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Type mnemonic or TYPEnnn (RFC 3597) -> number. 0 and -EINVAL if unknown. */
static int lg_type_parse(const char *s, uint16_t *out)
{
	for (size_t i = 0; i < sizeof(lg_types) / sizeof(lg_types[0]); i++) {
		if (strcasecmp(s, lg_types[i].name) == 0) {
			*out = lg_types[i].type;
			return 0;
		}
	}
	if (strncasecmp(s, "TYPE", 4) == 0 && s[4] >= '0' && s[4] <= '9') {
		char *end;
		unsigned long v = strtoul(s + 4, &end, 10);

		if (*end == '\0' && v <= 65535) {
			*out = (uint16_t)v;
			return 0;
		}
	}
	return -EINVAL;
}

/* Text name ("a.b.c" or "a.b.c.", "." for the root) -> wire at out.
 * Returns the wire length, or -EINVAL (empty label, label over 63 octets,
 * name over 255 octets).  No escapes: the bench names are plain. */
static int lg_name_encode(const char *name, uint8_t *out, size_t cap)
{
	size_t o = 0;
	const char *p = name;

	if (strcmp(name, ".") == 0) {
		if (cap < 1)
			return -EINVAL;
		out[0] = 0;
		return 1;
	}
	while (*p) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);

		if (n == 0 || n > 63 || o + 1 + n + 1 > cap || o + 1 + n + 1 > 255)
			return -EINVAL;
		out[o++] = (uint8_t)n;
		memcpy(out + o, p, n);
		o += n;
		p += n;
		if (*p == '.')
			p++;
	}
	if (o == 0)
		return -EINVAL;
	out[o++] = 0;
	return (int)o;
}

/* Text "ADDR/LEN" -> EDNS Client Subnet option data (RFC 7871 section 6):
 * family, source prefix LEN, scope 0, then the address cut to ceil(LEN/8)
 * octets with the bits after LEN cleared.  Returns the option data length
 * (4 + address octets), or -EINVAL (bad address, LEN over 32/128, no LEN). */
static int lg_ecs_parse(const char *s, uint8_t out[20])
{
	char addr[64];
	const char *slash = strchr(s, '/');
	uint8_t a[16];
	unsigned family, max, bytes;
	char *end;
	unsigned long len;

	if (slash == NULL || (size_t)(slash - s) >= sizeof(addr) ||
	    slash[1] < '0' || slash[1] > '9')
		return -EINVAL;
	memcpy(addr, s, (size_t)(slash - s));
	addr[slash - s] = '\0';
	len = strtoul(slash + 1, &end, 10);
	if (*end != '\0')
		return -EINVAL;
	if (inet_pton(AF_INET, addr, a) == 1) {
		family = 1;
		max = 32;
	} else if (inet_pton(AF_INET6, addr, a) == 1) {
		family = 2;
		max = 128;
	} else {
		return -EINVAL;
	}
	if (len > max)
		return -EINVAL;
	bytes = (unsigned)(len + 7) / 8;
	out[0] = 0;
	out[1] = (uint8_t)family;
	out[2] = (uint8_t)len;
	out[3] = 0;			/* scope: 0 in queries */
	memcpy(out + 4, a, bytes);
	if (len % 8)
		out[4 + bytes - 1] &= (uint8_t)(0xff << (8 - len % 8));
	return 4 + (int)bytes;
}

/* -D: the DNSSEC OK bit in every OPT RR (RFC 3225). */
static bool lg_do;

/* Builds a query (ID 0, RD clear, class IN) for name/type into q; with edns
 * an OPT RR advertising a 1232-octet UDP size is appended (RFC 6891); with
 * ecs (option data from lg_ecs_parse, ecs_len octets) the OPT RR is always
 * there and carries one EDNS Client Subnet option.  Returns 0 or -EINVAL. */
static int lg_query_build_ecs(struct lg_query *q, const char *name,
			      uint16_t type, bool edns, const uint8_t *ecs,
			      int ecs_len)
{
	uint8_t *w = q->wire;
	int n;

	if (ecs_len < 0 || ecs_len > 20)
		return -EINVAL;
	memset(w, 0, 12);
	w[5] = 1;				/* QDCOUNT */
	n = lg_name_encode(name, w + 12, LG_MAXQ - 12 - 4 - 11 - 24);
	if (n < 0)
		return n;
	size_t o = 12 + (size_t)n;
	w[o++] = (uint8_t)(type >> 8);
	w[o++] = (uint8_t)type;
	w[o++] = 0;
	w[o++] = 1;				/* class IN */
	q->qend = (uint16_t)o;
	if (edns || ecs_len > 0) {
		static const uint8_t opt[9] = { 0, 0, 41, 0x04, 0xd0,
						0, 0, 0, 0 };
		unsigned rdlen = ecs_len > 0 ? 4u + (unsigned)ecs_len : 0;

		memcpy(w + o, opt, sizeof(opt));
		if (lg_do)
			w[o + 7] = 0x80;	/* DO */
		o += sizeof(opt);
		w[o++] = (uint8_t)(rdlen >> 8);
		w[o++] = (uint8_t)rdlen;
		if (ecs_len > 0) {
			w[o++] = 0;
			w[o++] = 8;		/* OPTION-CODE: ECS */
			w[o++] = 0;
			w[o++] = (uint8_t)ecs_len;
			memcpy(w + o, ecs, (size_t)ecs_len);
			o += (size_t)ecs_len;
		}
		w[11] = 1;			/* ARCOUNT */
	}
	q->len = (uint16_t)o;
	return 0;
}

static int lg_query_build(struct lg_query *q, const char *name, uint16_t type,
			  bool edns)
{
	return lg_query_build_ecs(q, name, type, edns, NULL, 0);
}

/* One line of a query file.  Returns 1 and fills q for "name TYPE" or
 * "name TYPE ADDR/LEN" (the third field adds an EDNS Client Subnet option,
 * and so an OPT RR, to that query), 0 for a blank or comment line, -EINVAL
 * for anything else. */
static int lg_line_parse(const char *line, struct lg_query *q, bool edns)
{
	char name[512], type[64], subnet[64], extra[8];
	uint8_t ecs[20];
	int ecs_len = 0;
	uint16_t t;
	int n;

	while (*line == ' ' || *line == '\t')
		line++;
	if (*line == '\0' || *line == '\n' || *line == '#' || *line == ';')
		return 0;
	n = sscanf(line, "%511s %63s %63s %7s", name, type, subnet, extra);
	if (n != 2 && n != 3)
		return -EINVAL;
	if (lg_type_parse(type, &t) < 0)
		return -EINVAL;
	if (n == 3 && (ecs_len = lg_ecs_parse(subnet, ecs)) < 0)
		return -EINVAL;
	return lg_query_build_ecs(q, name, t, edns, ecs, ecs_len) < 0 ?
	       -EINVAL : 1;
}

/* Reads a whole query file; exits with "file:line: reason" on bad input. */
static struct lg_query *lg_file_load(const char *path, bool edns, size_t *nq)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	struct lg_query *qs = NULL;
	size_t n = 0, cap = 0, lineno = 0;
	char line[1024];

	if (f == NULL) {
		fprintf(stderr, "loadgen: %s: %s\n", path, strerror(errno));
		exit(2);
	}
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		if (n == cap) {
			cap = cap ? cap * 2 : 1024;
			qs = realloc(qs, cap * sizeof(*qs));
			if (qs == NULL) {
				fprintf(stderr, "loadgen: out of memory\n");
				exit(2);
			}
		}
		int rc = lg_line_parse(line, &qs[n], edns);
		if (rc < 0) {
			fprintf(stderr, "loadgen: %s:%zu: expected 'name TYPE "
				"[ADDR/LEN]' with a valid name, type and "
				"client subnet\n", path, lineno);
			exit(2);
		}
		n += (size_t)rc;
	}
	if (f != stdin)
		fclose(f);
	if (n == 0) {
		fprintf(stderr, "loadgen: %s: no queries\n", path);
		exit(2);
	}
	*nq = n;
	return qs;
}

/* Query path of the generator: checks a reply against the slot table of its
 * socket.  Returns the slot it answers (and clears nothing), or NULL when the
 * packet is short, not a response, for an ID not in flight, or its question
 * differs from the one sent with that ID. */
static struct lg_slot *lg_reply_match(struct lg_sock *s,
				      const struct lg_query *qs,
				      const uint8_t *p, size_t len)
{
	struct lg_slot *sl;
	const struct lg_query *q;

	if (len < 12 || !(p[2] & 0x80))
		return NULL;
	sl = &s->slot[(uint16_t)(p[0] << 8 | p[1])];
	if (!sl->inflight)
		return NULL;
	q = &qs[sl->qidx];
	/* Same QDCOUNT and question; case may differ only if the server
	 * changed it, which an authoritative server must not (RFC 1034). */
	if (len < q->qend || memcmp(p + 4, q->wire + 4, 2) != 0 ||
	    memcmp(p + 12, q->wire + 12, (size_t)q->qend - 12) != 0)
		return NULL;
	return sl;
}

static void lg_usage(void)
{
	fprintf(stderr,
"usage: loadgen -d FILE [-s ADDR] [-p PORT] [-l SECONDS] [-c SOCKETS]\n"
"               [-w WINDOW] [-Q RATE] [-b BATCH] [-t TIMEOUT_MS] [-n COUNT]\n"
"               [-e] [-D] [-G]\n"
"       loadgen -P NAME/TYPE [-s ADDR] [-p PORT] [-t TIMEOUT_MS]\n"
"  -d  query file, one 'name TYPE' per line ('-' for stdin); a third field\n"
"      ADDR/LEN adds an EDNS Client Subnet option to that query\n"
"  -s  server IPv4/IPv6 address (default 127.0.0.1), -p port (default 53)\n"
"  -l  seconds of sending (default 10); then replies are drained\n"
"  -c  UDP sockets / source ports (default 16)\n"
"  -w  closed loop: queries in flight over all sockets (default 512)\n"
"  -Q  open loop: queries per second instead of a window; a backlog over\n"
"      WINDOW (after the generator was descheduled) is skipped, not burst\n"
"  -b  sendmmsg/recvmmsg batch (default 32)\n"
"  -t  a query unanswered after this many ms is lost (default 1000)\n"
"  -n  stop after sending COUNT queries (default: run for -l seconds)\n"
"  -G  no UDP GSO: one datagram per sendmmsg message (costs more CPU)\n"
"  -e  add EDNS0 OPT (UDP size 1232) to every query\n"
"  -D  as -e, with the DNSSEC OK (DO) bit set\n"
"  -P  probe: query NAME/TYPE every 10 ms until an answer with ANCOUNT > 0\n"
"      (any rcode is printed); exit 0 when answered, 1 at the timeout\n");
	exit(2);
}

static int lg_connect(const char *addr, int port, int rcvbuf)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd;

	memset(&ss, 0, sizeof(ss));
	if (strchr(addr, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, addr, &s6->sin6_addr) != 1)
			return -EINVAL;
		sl = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, addr, &s4->sin_addr) != 1)
			return -EINVAL;
		sl = sizeof(*s4);
	}
	fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Our own buffers must never be the place where replies are dropped:
	 * FORCE works as root and ignores rmem_max; otherwise take what we get. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf,
		       sizeof(rcvbuf)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf,
				 sizeof(rcvbuf));
	if (connect(fd, (struct sockaddr *)&ss, sl) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	return fd;
}

static double lg_cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* Probe mode: one socket, one query repeated every 10 ms (IDs 2, 3, ...;
 * after 65,534 queries - 11 minutes - it gives up). */
static int lg_probe(const char *addr, int port, const char *spec,
		    unsigned timeout_ms)
{
	char name[512];
	const char *slash = strrchr(spec, '/');
	struct lg_query q;
	uint16_t type;
	uint64_t start = lg_now_ns(), deadline = start + timeout_ms * 1000000ull;
	uint16_t id = 1;
	int fd;

	if (slash == NULL || (size_t)(slash - spec) >= sizeof(name)) {
		fprintf(stderr, "loadgen: -P %s: expected NAME/TYPE\n", spec);
		return 2;
	}
	memcpy(name, spec, (size_t)(slash - spec));
	name[slash - spec] = '\0';
	if (lg_type_parse(slash + 1, &type) < 0 ||
	    lg_query_build(&q, name, type, false) < 0) {
		fprintf(stderr, "loadgen: -P %s: bad name or type\n", spec);
		return 2;
	}
	if ((fd = lg_connect(addr, port, 1 << 20)) < 0) {
		fprintf(stderr, "loadgen: %s port %d: %s\n", addr, port,
			strerror(-fd));
		return 2;
	}
	while (lg_now_ns() < deadline && id < 0xffff) {
		uint8_t rx[LG_MAXR];
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		id++;
		q.wire[0] = (uint8_t)(id >> 8);
		q.wire[1] = (uint8_t)id;
		(void)send(fd, q.wire, q.len, 0);  /* ECONNREFUSED: not up yet */
		if (poll(&pfd, 1, 10) <= 0)
			continue;
		while ((n = recv(fd, rx, sizeof(rx), 0)) >= 12) {
			unsigned an = (unsigned)(rx[6] << 8 | rx[7]);

			uint16_t rid = (uint16_t)(rx[0] << 8 | rx[1]);

			/* Every query asks the same: an answer to any of them
			 * (IDs 2..id) counts. Matching only the latest would
			 * lock out a server whose answers take over 10 ms: its
			 * answer to query N arrives after query N+1 is sent,
			 * and so on for ever. */
			if ((rx[2] & 0x80) && rid >= 2 && rid <= id && an > 0) {
				printf("probe: %s answered %s with %u records "
				       "after %.3f s\n", spec,
				       lg_rcode_names[rx[3] & 15], an,
				       (double)(lg_now_ns() - start) / 1e9);
				close(fd);
				return 0;
			}
		}
		/* Answered without data (SERVFAIL while loading, ...):
		 * wait the rest of the 10 ms before asking again. */
		struct timespec ts = { 0, 10000000 };
		nanosleep(&ts, NULL);
	}
	printf("probe: %s: no answer with data within %u ms\n", spec,
	       timeout_ms);
	close(fd);
	return 1;
}

/* Send buffers for one sendmmsg: a run of consecutive queries of the same
 * length goes out as one UDP GSO message (RFC-neutral: the kernel splits it
 * into one datagram per query before the server's socket sees it), which
 * costs far less CPU per query than one datagram per message.  The server
 * still receives and answers every query as its own datagram. */
struct lg_tx {
	uint8_t *buf;			/* LG_MAXBATCH * LG_MAXQ */
	struct mmsghdr msg[LG_MAXBATCH];
	struct iovec iov[LG_MAXBATCH];
	union {
		char b[CMSG_SPACE(sizeof(uint16_t))];
		struct cmsghdr align;
	} ctl[LG_MAXBATCH];
	unsigned cnt[LG_MAXBATCH];	/* queries in message i */
	uint32_t qidx[LG_MAXBATCH];	/* query sent as the j-th of the batch */
	uint16_t id[LG_MAXBATCH];
	bool gso;
};

/* Sends up to want (<= LG_MAXBATCH) queries starting at *qnext on s and
 * marks their slots in flight.  Returns how many went out; *qnext moves past
 * exactly those. */
static unsigned lg_send(struct lg_tx *tx, struct lg_sock *s,
			const struct lg_query *qs, size_t nq, size_t *qnext,
			unsigned want, struct lg_stats *st)
{
	unsigned nmsg = 0, j = 0, sent = 0;
	size_t off = 0, qn = *qnext;

	while (j < want) {
		unsigned len = qs[qn].len, first = j;
		size_t moff = off;

		do {
			struct lg_slot *sl = &s->slot[s->next_id];

			if (sl->inflight) {
				/* 65536 queries later: certainly lost. */
				sl->inflight = 0;
				s->inflight--;
				st->timedout++;
			}
			memcpy(tx->buf + off, qs[qn].wire, len);
			tx->buf[off] = (uint8_t)(s->next_id >> 8);
			tx->buf[off + 1] = (uint8_t)s->next_id;
			tx->qidx[j] = (uint32_t)qn;
			tx->id[j] = s->next_id++;
			off += len;
			j++;
			if (++qn == nq)
				qn = 0;
		} while (tx->gso && j < want && j - first < 64 &&
			 qs[qn].len == len);

		struct msghdr *mh = &tx->msg[nmsg].msg_hdr;
		memset(mh, 0, sizeof(*mh));
		tx->iov[nmsg].iov_base = tx->buf + moff;
		tx->iov[nmsg].iov_len = off - moff;
		mh->msg_iov = &tx->iov[nmsg];
		mh->msg_iovlen = 1;
		if (j - first > 1) {
			struct cmsghdr *c = &tx->ctl[nmsg].align;
			uint16_t seg = (uint16_t)len;

			mh->msg_control = tx->ctl[nmsg].b;
			mh->msg_controllen = sizeof(tx->ctl[nmsg].b);
			c->cmsg_level = SOL_UDP;
			c->cmsg_type = UDP_SEGMENT;
			c->cmsg_len = CMSG_LEN(sizeof(seg));
			memcpy(CMSG_DATA(c), &seg, sizeof(seg));
		}
		tx->cnt[nmsg++] = j - first;
	}
	int n = sendmmsg(s->fd, tx->msg, nmsg, 0);
	if (n < 0 && tx->gso && (errno == EIO || errno == EINVAL ||
				 errno == ENOPROTOOPT || errno == EOPNOTSUPP)) {
		fprintf(stderr, "loadgen: UDP GSO refused (%s); one datagram "
			"per message from now on\n", strerror(errno));
		tx->gso = false;
	}
	for (int m = 0; m < n; m++)
		sent += tx->cnt[m];
	/* Unsent tail: give its IDs and queries back. */
	s->next_id = (uint16_t)(s->next_id - (want - sent));
	*qnext = sent < want ? tx->qidx[sent] : qn;
	uint64_t t = lg_now_ns();
	for (unsigned k = 0; k < sent; k++) {
		struct lg_slot *sl = &s->slot[tx->id[k]];

		sl->inflight = 1;
		sl->sent_ns = t;
		sl->qidx = tx->qidx[k];
	}
	s->inflight += sent;
	st->sent += sent;
	return sent;
}

/* For GSO: within each block of `block` queries, order by length (stable),
 * so equal lengths are adjacent.  The mix over any block is unchanged. */
static int lg_block_sort(struct lg_query *qs, size_t nq, size_t block)
{
	struct lg_query *tmp = malloc(block * sizeof(*tmp));
	size_t *idx = malloc(block * sizeof(*idx));

	if (tmp == NULL || idx == NULL) {
		free(tmp);
		free(idx);
		return -ENOMEM;
	}
	for (size_t b = 0; b < nq; b += block) {
		size_t n = nq - b < block ? nq - b : block;

		for (size_t i = 0; i < n; i++) {
			size_t k = i;

			while (k > 0 && qs[b + idx[k - 1]].len > qs[b + i].len) {
				idx[k] = idx[k - 1];
				k--;
			}
			idx[k] = i;
		}
		for (size_t i = 0; i < n; i++)
			tmp[i] = qs[b + idx[i]];
		memcpy(qs + b, tmp, n * sizeof(*tmp));
	}
	free(tmp);
	free(idx);
	return 0;
}

/* Lost queries: everything older than the timeout, walking from the oldest ID
 * (IDs are sent in order, so the walk stops at the first young query). */
static void lg_sweep(struct lg_sock *s, struct lg_stats *st, uint64_t now,
		     uint64_t timeout_ns)
{
	while (s->oldest != s->next_id) {
		struct lg_slot *sl = &s->slot[s->oldest];

		if (sl->inflight) {
			if (sl->sent_ns + timeout_ns > now)
				break;
			sl->inflight = 0;
			s->inflight--;
			st->timedout++;
		}
		s->oldest++;
	}
}

static void lg_percentiles(const struct lg_stats *st, double *p50,
			   double *p90, double *p99, double *p999)
{
	uint64_t want[4], acc = 0;
	double *out[4] = { p50, p90, p99, p999 };
	double frac[4] = { 0.50, 0.90, 0.99, 0.999 };
	int k = 0;

	for (int i = 0; i < 4; i++) {
		want[i] = (uint64_t)(frac[i] * (double)st->lat_n);
		*out[i] = 0;
	}
	for (uint32_t b = 0; b <= LG_HIST_US && k < 4; b++) {
		acc += st->hist[b];
		while (k < 4 && acc > want[k] && st->lat_n)
			*out[k++] = b;
	}
}

#ifndef LOADGEN_NO_MAIN
int main(int argc, char **argv)
{
	const char *addr = "127.0.0.1", *file = NULL, *probe = NULL;
	int port = 53, nsock = 16, batch = 32, opt;
	unsigned window = 512, timeout_ms = 1000;
	double seconds = 10, rate = 0;
	bool edns = false, gso = true;
	unsigned long long maxq = 0;

	while ((opt = getopt(argc, argv, "d:s:p:l:c:w:Q:b:t:n:eDGP:h")) != -1) {
		switch (opt) {
		case 'd': file = optarg; break;
		case 's': addr = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 'l': seconds = atof(optarg); break;
		case 'c': nsock = atoi(optarg); break;
		case 'w': window = (unsigned)atoi(optarg); break;
		case 'Q': rate = atof(optarg); break;
		case 'b': batch = atoi(optarg); break;
		case 't': timeout_ms = (unsigned)atoi(optarg); break;
		case 'n': maxq = strtoull(optarg, NULL, 10); break;
		case 'e': edns = true; break;
		case 'D': edns = lg_do = true; break;
		case 'G': gso = false; break;
		case 'P': probe = optarg; break;
		default: lg_usage();
		}
	}
	if (port < 1 || port > 65535 || nsock < 1 || nsock > LG_MAXSOCK ||
	    batch < 1 || batch > LG_MAXBATCH || seconds <= 0 ||
	    seconds > 3600 || timeout_ms < 1 || timeout_ms > 600000 ||
	    rate < 0 || (window < 1 && rate == 0)) {
		fprintf(stderr, "loadgen: option out of range (port 1..65535, "
			"-c 1..%d, -b 1..%d, -l 0..3600, -t 1..600000)\n",
			LG_MAXSOCK, LG_MAXBATCH);
		return 2;
	}
	if (probe)
		return lg_probe(addr, port, probe, timeout_ms);
	if (file == NULL)
		lg_usage();
	if (window > (unsigned)nsock * 32768u)
		window = (unsigned)nsock * 32768u; /* half the ID space */

	size_t nq;
	struct lg_query *qs = lg_file_load(file, edns, &nq);
	struct lg_sock socks[LG_MAXSOCK];
	struct lg_stats st;
	struct pollfd pfds[LG_MAXSOCK];
	static struct lg_tx tx;
	uint8_t (*rxb)[LG_MAXR] = calloc(LG_MAXBATCH, LG_MAXR);
	struct mmsghdr rmsg[LG_MAXBATCH];
	struct iovec riov[LG_MAXBATCH];
	unsigned per_sock = (window + (unsigned)nsock - 1) / (unsigned)nsock;
	/* Closed loop: top a socket up only when a quarter of its share is
	 * free, so sends come in batches rather than one query at a time. */
	unsigned thresh = (per_sock < (unsigned)batch ? per_sock
						       : (unsigned)batch) / 4;
	uint64_t timeout_ns = timeout_ms * 1000000ull;

	memset(&st, 0, sizeof(st));
	st.hist = calloc(LG_HIST_US + 1, sizeof(uint64_t));
	tx.buf = calloc(LG_MAXBATCH, LG_MAXQ);
	tx.gso = gso;
	if (tx.buf == NULL || rxb == NULL || st.hist == NULL ||
	    (gso && lg_block_sort(qs, nq, 256) < 0)) {
		fprintf(stderr, "loadgen: out of memory\n");
		return 2;
	}
	for (int i = 0; i < nsock; i++) {
		socks[i].fd = lg_connect(addr, port, 8 << 20);
		if (socks[i].fd < 0) {
			fprintf(stderr, "loadgen: %s port %d: %s\n", addr,
				port, strerror(-socks[i].fd));
			return 2;
		}
		socks[i].next_id = (uint16_t)(i * 4099);  /* spread start IDs */
		socks[i].oldest = socks[i].next_id;
		socks[i].inflight = 0;
		socks[i].slot = calloc(LG_NIDS, sizeof(struct lg_slot));
		if (socks[i].slot == NULL) {
			fprintf(stderr, "loadgen: out of memory\n");
			return 2;
		}
		pfds[i].fd = socks[i].fd;
		pfds[i].events = POLLIN;
	}
	for (int i = 0; i < batch; i++) {
		riov[i].iov_base = rxb[i];
		riov[i].iov_len = LG_MAXR;
	}

	double cpu0 = lg_cpu_seconds();
	uint64_t start = lg_now_ns();
	uint64_t end = start + (uint64_t)(seconds * 1e9);
	uint64_t drain_end = 0, now = start, last_sweep = start, run_ns = 0;
	size_t qnext = 0;
	int rr = 0;		/* open loop: next socket to send on */
	bool sending = true;
	uint64_t skipped = 0;	/* open loop: queries not sent, see below */

	for (;;) {
		bool progress = false;

		now = lg_now_ns();
		if (sending && (now >= end || (maxq && st.sent >= maxq))) {
			sending = false;
			run_ns = now - start;
			st.answered_run = st.answered;
			drain_end = now + timeout_ns;
		}
		if (!sending) {
			uint64_t infl = 0;

			for (int i = 0; i < nsock; i++)
				infl += socks[i].inflight;
			if (infl == 0 || now >= drain_end)
				break;
		}
		/* Open loop: how many queries are due by now, in total. */
		uint64_t due = 0;
		if (sending && rate > 0) {
			uint64_t target = (uint64_t)((double)(now - start) /
						     1e9 * rate);
			uint64_t done = st.sent + skipped;

			due = target > done ? target - done : 0;
			/* After we were descheduled, do not fire the whole
			 * backlog at once (it would overflow the server's
			 * socket buffer): at most WINDOW, skip the rest. */
			if (due > window) {
				skipped += due - window;
				due = window;
			}
		}
		for (int k = 0; k < nsock; k++) {
			int i = rate > 0 ? (rr + k) % nsock : k;
			struct lg_sock *s = &socks[i];
			unsigned want = 0;

			if (sending && rate > 0) {
				want = due > (uint64_t)batch ? (unsigned)batch
							     : (unsigned)due;
				due -= want;
			} else if (sending && s->inflight + thresh < per_sock) {
				want = per_sock - s->inflight;
				if (want > (unsigned)batch)
					want = (unsigned)batch;
			}
			if (maxq && st.sent + want > maxq)
				want = (unsigned)(maxq - st.sent);
			if (want > 0) {
				unsigned n = lg_send(&tx, s, qs, nq, &qnext,
						     want, &st);

				if (n > 0)
					progress = true;
				if (rate > 0 && n > 0)
					rr = (i + 1) % nsock;
			}
			/* Receive what is there. */
			for (int round = 0; round < 4; round++) {
				for (int j = 0; j < batch; j++) {
					memset(&rmsg[j].msg_hdr, 0,
					       sizeof(rmsg[j].msg_hdr));
					rmsg[j].msg_hdr.msg_iov = &riov[j];
					rmsg[j].msg_hdr.msg_iovlen = 1;
				}
				int n = recvmmsg(s->fd, rmsg, (unsigned)batch,
						 MSG_DONTWAIT, NULL);
				if (n <= 0)
					break;
				progress = true;
				uint64_t t = lg_now_ns();
				for (int j = 0; j < n; j++) {
					const uint8_t *p = rxb[j];
					size_t len = rmsg[j].msg_len;
					struct lg_slot *sl;

					if (rmsg[j].msg_hdr.msg_flags &
					    MSG_TRUNC)
						st.truncated_rx++;
					sl = lg_reply_match(s, qs, p, len);
					if (sl == NULL) {
						if (len >= 12 && !s->slot[
						    (uint16_t)(p[0] << 8 |
							       p[1])].inflight)
							st.late++;
						else
							st.mismatched++;
						continue;
					}
					sl->inflight = 0;
					s->inflight--;
					st.answered++;
					st.rcode[p[3] & 15]++;
					st.ancount += (unsigned)(p[6] << 8 |
								 p[7]);
					if (p[2] & 0x02)
						st.tc++;
					uint64_t lat = t - sl->sent_ns;
					st.lat_sum_ns += lat;
					st.lat_n++;
					lat /= 1000;
					st.hist[lat > LG_HIST_US ? LG_HIST_US
								 : lat]++;
				}
				if (n < batch)
					break;
			}
		}
		now = lg_now_ns();	/* later than every send so far */
		if (now - last_sweep > 10000000ull) {
			for (int i = 0; i < nsock; i++)
				lg_sweep(&socks[i], &st, now, timeout_ns);
			last_sweep = now;
		}
		if (!progress) {
			/* Nothing to do: sleep in poll rather than spin, so
			 * our CPU time is what the work costs.  Open loop
			 * wakes for the next due query. */
			int ms = 1;

			if (sending && rate > 0 && rate < 1000)
				ms = (int)(1000 / rate);
			(void)poll(pfds, (nfds_t)nsock, ms);
		}
	}
	double cpu = lg_cpu_seconds() - cpu0;
	uint64_t wall = lg_now_ns() - start;
	uint64_t lost = st.sent - st.answered;
	double run_s = (double)run_ns / 1e9;
	double qps = run_s > 0 ? (double)st.answered_run / run_s : 0;
	double p50, p90, p99, p999;

	lg_percentiles(&st, &p50, &p90, &p99, &p999);
	printf("loadgen: %s port %d, %s, %d sockets, batch %d, GSO %s, %zu "
	       "distinct queries, %.2f s\n", addr, port,
	       rate > 0 ? "open loop" : "closed loop", nsock, batch,
	       tx.gso ? "on" : "off", nq, run_s);
	if (rate > 0)
		printf("  target rate %.0f q/s; %llu queries skipped (generator "
		       "descheduled, backlog over %u)\n", rate,
		       (unsigned long long)skipped, window);
	else
		printf("  window %u queries in flight\n", window);
	printf("  sent %llu, answered %llu, lost %llu (timed out %llu, "
	       "late %llu, mismatched %llu)\n",
	       (unsigned long long)st.sent, (unsigned long long)st.answered,
	       (unsigned long long)lost, (unsigned long long)st.timedout,
	       (unsigned long long)st.late, (unsigned long long)st.mismatched);
	printf("  answered %.0f q/s\n", qps);
	printf("  rcodes:");
	for (int i = 0; i < 16; i++)
		if (st.rcode[i])
			printf(" %s %llu", lg_rcode_names[i],
			       (unsigned long long)st.rcode[i]);
	printf("; answer RRs %llu; TC %llu\n", (unsigned long long)st.ancount,
	       (unsigned long long)st.tc);
	printf("  latency us: avg %.1f p50 %.0f p90 %.0f p99 %.0f p99.9 %.0f\n",
	       st.lat_n ? (double)st.lat_sum_ns / (double)st.lat_n / 1e3 : 0,
	       p50, p90, p99, p999);
	printf("  own CPU %.3f s (%.0f%% of wall), %.3f us per answer\n", cpu,
	       100.0 * cpu / ((double)wall / 1e9),
	       st.answered ? cpu * 1e6 / (double)st.answered : 0);
	printf("RESULT sent=%llu answered=%llu lost=%llu late=%llu qps=%.0f "
	       "run_s=%.3f wall_s=%.3f cpu_s=%.3f cpu_us_per_q=%.3f "
	       "noerror=%llu formerr=%llu servfail=%llu nxdomain=%llu "
	       "notimp=%llu refused=%llu ancount=%llu tc=%llu "
	       "lat_avg_us=%.1f lat_p50_us=%.0f lat_p99_us=%.0f\n",
	       (unsigned long long)st.sent, (unsigned long long)st.answered,
	       (unsigned long long)lost, (unsigned long long)st.late, qps,
	       run_s, (double)wall / 1e9, cpu,
	       st.answered ? cpu * 1e6 / (double)st.answered : 0,
	       (unsigned long long)st.rcode[0], (unsigned long long)st.rcode[1],
	       (unsigned long long)st.rcode[2], (unsigned long long)st.rcode[3],
	       (unsigned long long)st.rcode[4], (unsigned long long)st.rcode[5],
	       (unsigned long long)st.ancount, (unsigned long long)st.tc,
	       st.lat_n ? (double)st.lat_sum_ns / (double)st.lat_n / 1e3 : 0,
	       p50, p99);
	for (int i = 0; i < nsock; i++) {
		close(socks[i].fd);
		free(socks[i].slot);
	}
	free(st.hist);
	free(tx.buf);
	free(rxb);
	free(qs);
	return 0;
}
#endif
