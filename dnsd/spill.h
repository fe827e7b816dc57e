/* dnsd/spill.h - the load signal of spill-over by capacity: answers per
 * endpoint, summed over the workers' counters, turned into rates over a
 * sliding window and, for endpoints with a capacity in a service with a
 * fill, into the share of its own clients each endpoint keeps (the rest
 * spill over; policy/svc.c chooses where).
 *
 * The control thread calls spill_tick() about once a second; the result
 * goes into one struct svc_load that lives as long as the struct spill:
 * per endpoint id two relaxed atomics, so the query path reads it with no
 * lock, no allocation and no snapshot swap. Everything else here is load
 * time (control thread only).
 *
 * Windows: the rate that decides (in the table) is over the last
 * SPILL_FAST_S seconds, so a full endpoint reacts within a few seconds;
 * the rate in status is over SPILL_WINDOW_S seconds (1 s buckets). The
 * kept share follows a damped multiplicative rule, once per tick:
 * target = fill x capacity; kept' = kept + (kept x target / rate - kept)/2,
 * within 1%..100%; no answers at all: kept' = 2 kept + 1% (back to 100% in
 * a few seconds once the load is gone, without letting every client back
 * at once while a small share happens to get no query). */
#ifndef DNSD_SPILL_H
#define DNSD_SPILL_H
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "health/hstate.h"
#include "policy/svc.h"

#define SPILL_WINDOW_S 10
#define SPILL_FAST_S   3

struct spill;

/* A tracker with a load table for endpoint ids below cap (every entry:
 * no load, keeps all its clients). NULL when out of memory. */
struct spill *spill_new(size_t cap);
void spill_free(struct spill *sp);                 /* NULL is fine */

/* The table the query path reads (answer_conf.load). */
const struct svc_load *spill_load(const struct spill *sp);

/* How many endpoint ids the next spill_tick() needs counts for (0: no
 * service of set spills; the caller need not count at all, but still
 * ticks, so that endpoints that spilled before are reset). Walks
 * set->spill (policy/svc.h), nothing else of the set. */
size_t spill_need(struct spill *sp, const struct svc_set *set);

/* One tick at unix time now: counts[0..n) are the cumulative answers per
 * endpoint id (summed over the workers; n may be 0). Updates the rates
 * and kept shares of the endpoints of set's spill services, and resets
 * the entries of endpoints that no longer spill. */
void spill_tick(struct spill *sp, const struct svc_set *set,
		const uint64_t *counts, size_t n, double now);

/* Status of set's spill services (a JSON array, one object per service:
 * service, fill, window_s, endpoints[{target, region, capacity, health,
 * rate, share, expected, filled, kept}]) with health view hv (may be
 * NULL).
 * NULL when out of memory. */
json_t *spill_json(const struct spill *sp, const struct svc_set *set,
		   const struct hstate_view *hv);

#endif
