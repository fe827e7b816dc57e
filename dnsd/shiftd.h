/* dnsd/shiftd.h - dnsd runs the staged traffic shifts of the store
 * (db/shift.h): on the control thread, a few times a second and after
 * every new health view, it rolls back each running or paused shift whose
 * target is down by quorum (or whose RTT, the mean over probe regions,
 * exceeds the shift's max_rtt_ms), and begins the next stage of each
 * running shift that is due. Load time only. */
#ifndef DNSD_SHIFTD_H
#define DNSD_SHIFTD_H
#include <stdint.h>

#include <event2/buffer.h>

#include "health/hstate.h"

struct store;

/* Counters for metrics (control thread). */
struct shiftd_stats {
	uint64_t stages;        /* stages begun by this dnsd */
	uint64_t rollbacks;     /* shifts rolled back by this dnsd */
	uint64_t done;          /* shifts completed by this dnsd */
};

struct shift_info;

/* A node whose configuration is shared (dnsd --etcd) writes a shift's
 * progress there, not to its store (a replica): write begins the next
 * stage of shift s (as this node's store has it) when it is due in the
 * shared configuration (why NULL), or rolls it back for why, at unix time
 * now - only when the shared configuration still has that shift (same
 * target and start). Returns 1 when
 * it changed (*after: the shift as written, for a stage), 0 when there was
 * nothing to do there (another node did it first: the change reaches this
 * node's store through the replica), or a negative errno with err
 * (unreachable: this node keeps serving what it has and tries again at a
 * later pass). */
struct shiftd_writer {
	int (*write)(void *ctx, const struct shift_info *s, const char *why,
	             double now, struct shift_info *after, char *err,
	             size_t errlen);
	void *ctx;
};

/* One pass at unix time now over the store h with health view hv (NULL:
 * no health data; nothing is rolled back). wr (NULL: none) writes the
 * progress elsewhere (see above); else it is written to h. Each change is
 * logged and counted in st. Returns how many shifts changed (the caller
 * reloads the services), or a negative errno when the store could not be
 * read or written (logged once per distinct message). */
int shiftd_tick(struct store *h, const struct hstate_view *hv, double now,
                const struct shiftd_writer *wr, struct shiftd_stats *st);

/* Appends the shift metrics (counters and, per running or paused shift,
 * its percent and stage) to out. 0 or -ENOMEM. */
int shiftd_metrics(struct store *h, const struct shiftd_stats *st,
                   struct evbuffer *out);

#endif
