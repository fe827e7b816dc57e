/* dnsd/stats.h - per-thread query counters. Each worker writes only its own
 * struct stats (no atomics, no sharing on the query path); readers (metrics,
 * the periodic summary) sum all threads' copies and accept slightly stale
 * values. */
#ifndef DNSD_STATS_H
#define DNSD_STATS_H

#include <stddef.h>
#include <stdint.h>

enum { STATS_UDP, STATS_TCP, STATS_NTRANSPORT };

/* Query types counted separately; everything else is "other". */
#define STATS_QTYPES(X) X(A, 1) X(NS, 2) X(CNAME, 5) X(SOA, 6) X(PTR, 12) \
	X(MX, 15) X(TXT, 16) X(AAAA, 28) X(SRV, 33) X(DS, 43) X(HTTPS, 65) \
	X(ANY, 255)
enum {
#define X(name, num) STATS_QT_##name,
	STATS_QTYPES(X)
#undef X
	STATS_QT_OTHER,
	STATS_NQTYPES
};

#define STATS_NRCODES 24     /* extended rcodes up to BADVERS (16) and a bit */

struct stats {
	uint64_t queries[STATS_NTRANSPORT][STATS_NQTYPES];
	uint64_t responses[STATS_NTRANSPORT][STATS_NRCODES];
	uint64_t truncated;          /* UDP answers sent with TC=1 */
	uint64_t dropped;            /* packets not answered (QR=1, too short) */
	uint64_t malformed;          /* FORMERR answers */
	uint64_t ecs;                /* queries with a valid ECS option */
	uint64_t service_answers;    /* answers chosen by a balanced name */
	uint64_t tcp_accepted, tcp_closed_idle, tcp_closed_cap, tcp_closed_bad;
	/* Response rate limiting (rrl.h): limited = dropped + slipped. */
	uint64_t rrl_limited, rrl_dropped, rrl_slipped;
	/* AF_XDP mode (xdp.h): answers sent as frames; frames not answered
	 * (not a well-formed UDP datagram, or no free frame to answer in). */
	uint64_t xdp_answers, xdp_dropped;
	/* Online signing (dnssec.h): signatures made, served from the
	 * cache, and not made because the signing budget was spent. */
	uint64_t dnssec_signed, dnssec_cache_hits, dnssec_over_budget;
	/* Pad to a cache line so two workers' counters never share one. */
	uint8_t pad[64];
};

/* Adds every counter of in to out (readers summing threads' copies). */
static inline void stats_add(struct stats *out, const struct stats *in)
{
	const uint64_t *src = (const uint64_t *)in;
	uint64_t *dst = (uint64_t *)out;

	for (size_t k = 0; k < offsetof(struct stats, pad) / sizeof(uint64_t); k++)
		dst[k] += src[k];
}

/* Index into queries[][] for a query type. Query path. */
static inline unsigned stats_qtype(uint16_t t)
{
	switch (t) {
#define X(name, num) case num: return STATS_QT_##name;
	STATS_QTYPES(X)
#undef X
	default: return STATS_QT_OTHER;
	}
}

/* Answers are counted per endpoint id below this (8 bytes per id per
 * worker); endpoints with larger ids are served but not counted. */
#define STATS_EP_COUNTERS 65536

#endif
