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

/* One pass at unix time now over the store h with health view hv (NULL:
 * no health data; nothing is rolled back). Each change is logged and
 * counted in st. Returns how many shifts changed (the caller reloads the
 * services), or a negative errno when the store could not be read or
 * written (logged once per distinct message). */
int shiftd_tick(struct store *h, const struct hstate_view *hv, double now,
                struct shiftd_stats *st);

/* Appends the shift metrics (counters and, per running or paused shift,
 * its percent and stage) to out. 0 or -ENOMEM. */
int shiftd_metrics(struct store *h, const struct shiftd_stats *st,
                   struct evbuffer *out);

#endif
