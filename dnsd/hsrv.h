/* dnsd/hsrv.h - dnsd's health service: probe-agent reports in, health
 * views out. Runs on the control thread only (load time): it owns the
 * struct hstate (health/hstate.h), writes the health tables through the
 * store (db/health_store.h) and serves the check list to agents.
 *
 * Reports reach it through hsrv_report() (from the HTTP API today; a second
 * source such as a shared store can call the same function). Once a second
 * it ages reports (staleness), logs each transition once, persists what
 * changed, and hands a new immutable view to the publish callback when the
 * health that answers depend on changed - never more often. */
#ifndef DNSD_HSRV_H
#define DNSD_HSRV_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <jansson.h>
struct store;

#include "health/hstate.h"

struct hsrv;

struct hsrv_conf {
	/* The store's handle, shared with the config poller: a handle's own
	 * commits do not change its store_data_version(), so health writes
	 * never look like configuration changes. Borrowed. */
	struct store *db;
	const char *db_path;         /* for logs */
	double default_interval;     /* agents' --interval for checks without one */
	double quorum;               /* fraction of fresh agents that must say up */
	unsigned min_regions;        /* regions a down verdict needs (0: any) */
	double expire_s;             /* forget agents silent this long (0: never) */
	/* Takes ownership of view (hstate_view_free when retired). */
	void (*publish)(void *ctx, struct hstate_view *view);
	/* Optional: each transition as it is logged, subject "SERVICE
	 * TARGET" and text "up -> down: reason" (the status page's events). */
	void (*event)(void *ctx, const char *subject, const char *text);
	void *ctx;
};

/* Reads the check list and the
 * persisted state (so a restart never starts from "all up"). Startup: NULL
 * with the reason logged. *view gets the first view (caller owns it). */
struct hsrv *hsrv_new(struct event_base *base, const struct hsrv_conf *c,
		      struct hstate_view **view);
void hsrv_free(struct hsrv *h);          /* NULL is fine; persists first */

/* The configuration in the store changed: rebuild the check list and the
 * set of checked endpoints (known ones keep their state). db: the handle
 * to use from now on (the store file may have been replaced). */
void hsrv_reload(struct hsrv *h, struct store *db);
/* Reads only the damping thresholds again (services changed without a
 * change of their checks: a gslbctl damping, or a replica applying one). */
void hsrv_reload_damping(struct hsrv *h);

/* The GET /v1/checks document (new reference), or NULL. */
json_t *hsrv_checks(struct hsrv *h);

/* Folds one agent batch received now. 0, -ENOENT (unknown endpoint id) or
 * -EINVAL, with err set; on error nothing changed. */
int hsrv_report(struct hsrv *h, const struct hstate_agent *a,
		const struct hstate_result *res, size_t n, char *err,
		size_t errlen);

/* Flap damping (health/damp.h; thresholds per service from the store):
 * every endpoint with a penalty, {"ID": {"endpoint": "SERVICE TARGET",
 * "penalty", "suppressed", "reuse_at" (unix time or null),
 * "suppress_limit", "reuse_limit"}} (new reference), and the metrics
 * dnsd_endpoint_damping_penalty / _suppressed{service,target} (only
 * while some endpoint has a penalty) appended to out (0 or
 * -ENOMEM). A suppressed endpoint is down in every view published. */
json_t *hsrv_damping_json(struct hsrv *h);
int hsrv_damping_metrics(struct hsrv *h, struct evbuffer *out);

/* The state (for status and metrics); borrowed, control thread only. */
const struct hstate *hsrv_state(const struct hsrv *h);

#endif
