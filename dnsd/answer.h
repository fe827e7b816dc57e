/* dnsd/answer.h - builds the response to one query from a snapshot.
 *
 * Query path, any worker thread: never allocates, takes no lock, touches
 * only the packet, the response buffer, the (immutable) snapshot and the
 * worker's own state. Implements RFC 1034 4.3.2 (authoritative lookup),
 * RFC 2308 (negative answers), RFC 4592 (wildcards), RFC 6604 (CNAME chain
 * rcodes), RFC 6891 (EDNS), RFC 7871 (ECS), RFC 8482 (minimal ANY). */
#ifndef DNSD_ANSWER_H
#define DNSD_ANSWER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

#include "dnsd/snap.h"
#include "dnsd/stats.h"
#include "dnsd/wire.h"

#define ANSWER_MAX 65535

struct dnssec_worker;

/* A worker's private state for answering. */
struct answer_worker {
	struct stats_thread *st;
	uint64_t rng;            /* weighted random choice */
	uint32_t rr;             /* round-robin step */
	/* Answers per endpoint id (ids below ep_cap; larger ones are not
	 * counted), written by this worker only, read by any. */
	struct stats_ctr *ep_answers;
	uint32_t ep_cap;
	/* Signing state (cache, OpenSSL context) when dnssec_configure()
	 * was called before this worker started; else NULL. */
	struct dnssec_worker *dw;
};

/* Load time: sets up w for a thread that counts into st, with answers per
 * endpoint id below ep_cap and a random-choice state from seed (mixed
 * with the time and w's address). Returns 0 or -ENOMEM. */
int answer_worker_init(struct answer_worker *w, struct stats_thread *st,
		       uint32_t ep_cap, uint64_t seed);
void answer_worker_fini(struct answer_worker *w);
/* Adds w's answers per endpoint id to out[0..cap) (readers summing the
 * threads' counts; slightly stale is fine). */
void answer_worker_ep_add(const struct answer_worker *w, uint64_t *out,
			  size_t cap);

struct answer_pre;

/* Who asked and how. */
struct answer_client {
	struct in6_addr addr;    /* IPv4 as v4-mapped ::ffff:a.b.c.d */
	bool tcp;
	/* UDP: the largest answer the path carries unfragmented (AF_XDP
	 * sends one frame per answer; an answer over it gets TC=1 as if the
	 * client had asked for less); 0: max-udp-size alone decides. */
	uint16_t udp_max;
	/* The batch's answer_prepare() of this query, or NULL: what it
	 * parsed and looked up is not done again. */
	const struct answer_pre *pre;
};

/* Query path, for a UDP batch: everything about a query that can be known
 * before answering it - the parse, the hashes of the name (name table,
 * balanced names) and, with a GeoIP database and balanced names, the
 * client address as it will be located (the ECS subnet, else the source)
 * and, after the last prefetch stage, its location. */
struct answer_pre {
	const uint8_t *pkt;           /* the query this is about */
	size_t len;
	struct wire_query q;
	enum wire_status st;
	bool hasq;
	uint32_t zone, svc;           /* 0: no prefetch */
	bool geo;                     /* client is set: locate it */
	bool located;                 /* the last stage looked it up: */
	unsigned geo_plen;            /*   geo_lookup()'s prefix and */
	const struct geo_loc *loc;    /*   result (NULL: not found) */
	struct in6_addr client;
};
/* Fills p for the query pkt[0..len) from source address src (IPv4 as
 * v4-mapped). pkt must stay as it is until it is answered. */
void answer_prepare(const struct snap *s, const uint8_t *pkt, size_t len,
		    const struct in6_addr *src, struct answer_pre *p);
/* Query path: warms the cache for answering a prepared query (stages 0 to
 * ANSWER_PREFETCH_STAGES - 1 in turn, each over a whole batch, before
 * answering it; the last one locates the client). */
#define ANSWER_PREFETCH_STAGES 3
/* w: the worker that will answer (its DNSSEC memo is warmed too). */
void answer_prefetch(const struct snap *s, struct answer_pre *p, int stage,
		     const struct answer_worker *w);

/* Answers the query in pkt[0..len) into out (ANSWER_MAX octets). Returns
 * the response length, or 0 when the packet must be dropped. */
size_t answer_query(const struct snap *s, const uint8_t *pkt, size_t len,
		    uint8_t *out, const struct answer_client *c,
		    struct answer_worker *w);

#endif
