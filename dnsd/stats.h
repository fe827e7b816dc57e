/* dnsd/stats.h - query counters. Each answering thread counts into its own
 * struct stats_thread (no sharing, no read-modify-write on the query
 * path); readers (metrics, status, the periodic summary) sum every
 * thread's copy into a plain struct stats and accept slightly stale
 * values.
 *
 * A counter is a C11 atomic even though one thread writes it: the reader
 * runs on another thread at any time, and a plain uint64_t read while it
 * is written is a data race (undefined behaviour, and what ThreadSanitizer
 * reports). The writer loads and stores with relaxed ordering - on x86-64
 * and arm64 the same plain moves as before, no lock prefix - because the
 * counters order nothing else: each is a statistic on its own. */
#ifndef DNSD_STATS_H
#define DNSD_STATS_H

#include <stdatomic.h>
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

/* The counters, declared once for both structs below with T as the type
 * of each. Counters only: stats_add() walks them as one array. */
#define STATS_MEMBERS(T) \
	T queries[STATS_NTRANSPORT][STATS_NQTYPES]; \
	T responses[STATS_NTRANSPORT][STATS_NRCODES]; \
	T truncated;          /* UDP answers sent with TC=1 */ \
	T dropped;            /* packets not answered (QR=1, too short) */ \
	T malformed;          /* FORMERR answers */ \
	T ecs;                /* queries with a valid ECS option */ \
	T service_answers;    /* answers chosen by a balanced name */ \
	T tcp_accepted, tcp_closed_idle, tcp_closed_cap, tcp_closed_bad; \
	/* Response rate limiting (rrl.h): limited = dropped + slipped. */ \
	T rrl_limited, rrl_dropped, rrl_slipped; \
	/* AF_XDP mode (xdp.h): answers sent as frames; frames not answered \
	 * (not a well-formed UDP datagram, or no free frame to answer in). */ \
	T xdp_answers, xdp_dropped; \
	/* Online signing (dnssec.h): signatures made, served from the \
	 * cache, and not made because the signing budget was spent. */ \
	T dnssec_signed, dnssec_cache_hits, dnssec_over_budget;

/* One counter of one thread: written by that thread only (stats_inc,
 * stats_addn, stats_set), read by any (stats_get). */
struct stats_ctr {
	_Atomic uint64_t n;
};

/* A thread's counters. */
struct stats_thread {
	STATS_MEMBERS(struct stats_ctr)
	/* Pad to a cache line so two threads' counters never share one. */
	uint8_t pad[64];
};

/* Counters as read: a sum over threads, owned by the reader. */
struct stats {
	STATS_MEMBERS(uint64_t)
};

_Static_assert(sizeof(struct stats_ctr) == sizeof(uint64_t) &&
	       offsetof(struct stats_thread, pad) == sizeof(struct stats),
	       "struct stats_thread and struct stats must have the same counters");

/* Query path, by the owning thread only: c += n. A load and a store, not
 * an atomic add, since nobody else writes c. */
static inline void stats_addn(struct stats_ctr *c, uint64_t n)
{
	atomic_store_explicit(&c->n, atomic_load_explicit(&c->n,
			      memory_order_relaxed) + n, memory_order_relaxed);
}

static inline void stats_inc(struct stats_ctr *c)
{
	stats_addn(c, 1);
}

/* Query path, by the owning thread only: c = v (a count kept elsewhere by
 * the same thread, copied in). */
static inline void stats_set(struct stats_ctr *c, uint64_t v)
{
	atomic_store_explicit(&c->n, v, memory_order_relaxed);
}

/* Any thread: the counter's value (some value it had recently). */
static inline uint64_t stats_get(const struct stats_ctr *c)
{
	return atomic_load_explicit(&c->n,
				    memory_order_relaxed);
}

/* Adds every counter of in to out (readers summing threads' copies). */
static inline void stats_add(struct stats *out, const struct stats_thread *in)
{
	const struct stats_ctr *src = (const struct stats_ctr *)in;
	uint64_t *dst = (uint64_t *)out;

	for (size_t k = 0; k < sizeof(*out) / sizeof(uint64_t); k++)
		dst[k] += stats_get(&src[k]);
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
