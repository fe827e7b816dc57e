/* health/hstate.h - server-side health state: folds probe-agent reports
 * into a per-endpoint quorum state and per-(region, endpoint) RTT EWMAs.
 *
 * Pure logic: no SQLite, no libevent, no JSON. Load time only: the control
 * thread owns a struct hstate and is the only thread that touches it; the
 * query path sees immutable views built by hstate_view_build().
 *
 * Model (see health/PROTOCOL.md):
 * - per (agent, endpoint): the agent's own rise/fall state (up, down or
 *   unknown), its latest raw result and the time the server received it;
 * - per endpoint: among agents whose report is fresh (received within
 *   stale_mult x the endpoint's check interval) and whose state is up or
 *   down ("voters"), the endpoint is up when ups > quorum x voters, down
 *   otherwise (a tie at the default 0.5 is down). With no voter the last
 *   state stands and the endpoint is marked stale. Agents that report
 *   "unknown" are fresh but do not vote.
 * - RTT: EWMA per (agent region, endpoint) over successful results with an
 *   RTT; a result with the same timestamp as the last one folded for that
 *   agent is a resend and is not folded again.
 * All times are unix seconds (CLOCK_REALTIME) so persisted rows stay
 * meaningful across restarts. */
#ifndef HEALTH_HSTATE_H
#define HEALTH_HSTATE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"
#include "common/cowvec.h"

enum hstate_state { HSTATE_UNKNOWN = 0, HSTATE_UP = 1, HSTATE_DOWN = 2 };

#define HSTATE_NAME_MAX   64    /* agent and region names, bytes */
#define HSTATE_DETAIL_MAX 128   /* result detail, bytes incl. NUL */
#define HSTATE_REASON_MAX 160   /* transition reason, bytes incl. NUL */
#define HSTATE_MAX_AGENTS 1024
#define HSTATE_MAX_REGIONS 256

struct hstate;                                  /* opaque */

struct hstate_params {
	double quorum;       /* up when ups > quorum x voters; 0 <= q < 1 */
	double alpha;        /* EWMA weight of a new sample, 0 < alpha <= 1 */
	double stale_mult;   /* fresh = received within stale_mult x interval */
	/* A down verdict needs down votes from agents in at least this many
	 * distinct regions; with fewer the endpoint is judged up (a single
	 * region, or hosts sharing one, cannot take it down). 0 or 1: off. */
	unsigned min_regions;
	/* An agent that has not reported for this long (seconds; and never
	 * less than the staleness window of an endpoint it reported on) is
	 * forgotten with its observations, and a region no agent is in any
	 * more with its RTTs: the agent and region tables (at most
	 * HSTATE_MAX_AGENTS and HSTATE_MAX_REGIONS) make room again.
	 * 0: never. */
	double expire_s;
};
/* quorum 0.5, alpha 0.3, stale_mult 3, min_regions 0, expire_s 0. */
void hstate_params_default(struct hstate_params *p);

/* New state with no endpoints, or NULL (-ENOMEM, or params out of range).
 * p NULL means defaults. Caller owns it: hstate_free(). */
struct hstate *hstate_new(const struct hstate_params *p);
void hstate_free(struct hstate *h);                    /* NULL is fine */

/* One checked endpoint as configured: id and check interval in seconds. */
struct hstate_ep {
	uint32_t id;
	double interval;
};
/* Sets the endpoints that have checks. Endpoints already known keep their
 * state and observations (their interval is updated); new ones start
 * unknown and stale; endpoints not listed are forgotten. Returns 0,
 * -EINVAL (interval <= 0 or duplicate id) or -ENOMEM; on error nothing
 * changed. */
int hstate_set_endpoints(struct hstate *h, const struct hstate_ep *eps,
                         size_t n);

/* The reporting agent. Strings are copied. */
struct hstate_agent {
	const char *name;      /* 1..HSTATE_NAME_MAX-1 bytes */
	const char *region;    /* 1..HSTATE_NAME_MAX-1 bytes */
	bool has_coords;
	double lat, lon;       /* degrees, when has_coords */
};
/* One result of a batch. */
struct hstate_result {
	uint32_t id;           /* endpoint id */
	uint8_t state;         /* agent-local enum hstate_state */
	bool ok;               /* latest raw result */
	double rtt_ms;         /* < 0: none */
	double ts;             /* agent's time of the result, unix seconds */
	const char *detail;    /* NULL or text; truncated to HSTATE_DETAIL_MAX */
};
/* Folds one batch received at time now. Everything is validated first:
 * returns -ENOENT if a result names an endpoint not set (err names the
 * first such id), -EINVAL for a bad agent, region or state, -ENOSPC for a
 * new agent or region past HSTATE_MAX_AGENTS or HSTATE_MAX_REGIONS,
 * -ENOMEM; on
 * any error nothing changed. Affected endpoints are re-evaluated and
 * transitions queued (hstate_take_events). */
int hstate_report(struct hstate *h, const struct hstate_agent *a,
                  const struct hstate_result *res, size_t n, double now,
                  char *err, size_t errlen);

/* Re-evaluates every endpoint at time now (reports age into staleness),
 * and every 10 s forgets what expire_s says; call about once a second. */
void hstate_tick(struct hstate *h, double now);

/* Forgets now the agents and regions that expire_s says to (see
 * hstate_params); returns how many agents were forgotten. */
size_t hstate_expire(struct hstate *h, double now);
/* Agents and regions currently known. */
void hstate_counts(const struct hstate *h, size_t *agents, size_t *regions);
/* Agent i (0 .. agents-1 of hstate_counts): its name and region (borrowed
 * until the next change of h) and when its latest report was received
 * (unix seconds, 0 = none). 0 or -ENOENT. */
int hstate_agent_at(const struct hstate *h, size_t i, const char **name,
                    const char **region, double *seen);
/* A number that changes whenever what hstate_export() returns may have
 * changed: every report, transition, endpoint set, restore and expiry,
 * and an observation going stale (noticed by hstate_tick(), so within a
 * tick). Equal numbers mean equal exports, but for the "fresh" flags of
 * observations that aged out since the last tick. */
uint64_t hstate_generation(const struct hstate *h);

/* A transition of an endpoint's quorum state or of its stale flag. */
struct hstate_event {
	uint32_t id;
	uint8_t old_state, new_state;
	bool old_stale, new_stale;
	double at;
	char reason[HSTATE_REASON_MAX];
};
/* Moves up to max queued events (oldest first) to out; returns how many.
 * Each transition is queued exactly once. */
size_t hstate_take_events(struct hstate *h, struct hstate_event *out,
                          size_t max);

/* Endpoint's current state: 0 with state and stale set, or -ENOENT. */
int hstate_get(const struct hstate *h, uint32_t id, uint8_t *state,
               bool *stale);
/* Current RTT EWMA for (region, endpoint): 0, or -ENOENT if none. */
int hstate_rtt(const struct hstate *h, const char *region, uint32_t id,
               double *rtt_ms);

/* Immutable compact view for the query path; the policy engine reads it
 * through the accessors below.
 *
 * Per endpoint id one cell (state, stale, the time by which the state may
 * change) and per probe region one RTT per id, all in copy-on-write
 * vectors (common/cowvec.h): hstate_view_update() makes the view after a
 * few endpoints changed by copying only the chunks that hold them. Views
 * are refcounted (load time, one thread): the snapshot holds one, the
 * health service may hold the last one it built as the base of the next. */
struct hstate_region {
	const char *name;
	bool has_coords;
	double lat, lon;
	double v[3];            /* unit vector of lat/lon (geo_unit_vector) */
};
struct hstate_vcell {
	uint8_t state;          /* enum hstate_state */
	uint8_t stale;          /* 1 = no fresh agent */
	uint8_t pad[2];
	/* Unix seconds (rounded up) by which the endpoint's state may change
	 * (flap damping reuse, a rise or fall in progress); 0 = none. Answers
	 * are not cached past it. */
	uint32_t change_at;
};
struct hstate_view {
	size_t n;               /* max endpoint id + 1 (0 if no endpoint) */
	size_t n_regions;
	const struct hstate_region *regions;
	struct cowvec cell;     /* struct hstate_vcell by endpoint id */
	struct cowvec *rtt;     /* [n_regions]: float by id, < 0 none */
	bool has_change_at;     /* some cell has a change_at */
	uint32_t refs;
};
static inline const struct hstate_vcell *hstate_view_cell(
	const struct hstate_view *v, uint32_t id)
{
	return (const struct hstate_vcell *)cowvec_at(&v->cell, id);
}
/* Query path: the state of endpoint id (HSTATE_UNKNOWN outside v). */
static inline uint8_t hstate_view_state(const struct hstate_view *v,
                                        uint32_t id)
{
	return id < v->n ? hstate_view_cell(v, id)->state : HSTATE_UNKNOWN;
}
static inline bool hstate_view_stale(const struct hstate_view *v,
                                     uint32_t id)
{
	return id < v->n && hstate_view_cell(v, id)->stale;
}
/* Query path: the RTT EWMA of region r for endpoint id, < 0 none. */
static inline float hstate_view_rtt(const struct hstate_view *v, size_t r,
                                    uint32_t id)
{
	return id < v->n && r < v->n_regions ?
	       *(const float *)cowvec_at(&v->rtt[r], id) : -1.0f;
}
/* Query path: unix time by which id may change state, 0 none. */
static inline double hstate_view_next_change(const struct hstate_view *v,
                                             uint32_t id)
{
	return id < v->n ? (double)hstate_view_cell(v, id)->change_at : 0;
}
/* Builds a view of the current state, or NULL (-ENOMEM). Ids without a
 * check read HSTATE_UNKNOWN. Caller owns it: hstate_view_free(); it is
 * independent of h afterwards. */
struct hstate_view *hstate_view_build(const struct hstate *h);
/* The view of h when only the endpoints ids[0..n) changed since base was
 * built (from h, with the same endpoints and regions; change_at marks are
 * not carried over for these ids): shares everything else with base.
 * NULL when base cannot serve (other endpoints or regions) or out of
 * memory: build it whole. */
struct hstate_view *hstate_view_update(const struct hstate_view *base,
                                       const struct hstate *h,
                                       const uint32_t *ids, size_t n);
/* One more owner of v. */
struct hstate_view *hstate_view_ref(struct hstate_view *v);
void hstate_view_free(struct hstate_view *v);          /* NULL is fine */
/* Before v is published: endpoint id reads state (flap damping keeps a
 * suppressed endpoint down). Ids outside the view are ignored. 0 or
 * -ENOMEM. */
int hstate_view_set(struct hstate_view *v, uint32_t id, uint8_t state);
/* Before v is published: endpoint id may change state by unix time at
 * (the earliest given wins). 0 or -ENOMEM; ids outside v are ignored. */
int hstate_view_change_at(struct hstate_view *v, uint32_t id, double at);

/* True when an agent's state or check result for an endpoint changed (a
 * new agent for it included) since the last call, not only its times or
 * RTT; clears it. */
bool hstate_take_changed(struct hstate *h);
/* The endpoints whose state, staleness, RTTs or observations changed
 * since the last call: *ids (caller frees) and their number, or *all set
 * when everything must be taken as changed (endpoints set, restored,
 * agents or regions forgotten). 0 or -ENOMEM (then *all is set). */
int hstate_take_dirty(struct hstate *h, uint32_t **ids, size_t *n,
                      bool *all);
/* Whether a fresh agent's latest result disagrees with its own state for
 * endpoint id: its state may follow within about one check interval. */
bool hstate_in_progress(const struct hstate *h, uint32_t id, double now);

/* Plain rows for persistence and status output (the caller does SQL). */
struct hstate_ep_row {          /* table endpoint_health */
	uint32_t endpoint_id;
	uint8_t state;
	bool stale;
	double since;           /* when state last changed; 0 = never */
	const char *reason;
};
struct hstate_obs_row {         /* table health (+ probes for the agent) */
	uint32_t endpoint_id;
	const char *agent, *region;
	bool has_coords;
	double lat, lon;
	uint8_t state;          /* agent-local state */
	bool ok;
	double rtt_ms;          /* < 0: none */
	double ts;              /* agent's result time */
	double seen;            /* server receive time */
	double since;           /* when this agent's state last changed */
	const char *detail;     /* "" if none */
	bool fresh;             /* export only: seen within the window */
};
struct hstate_lat_row {         /* table latency */
	const char *region;
	uint32_t endpoint_id;
	double rtt_ms;
	uint64_t samples;
	double updated;
};
struct hstate_rows {
	struct hstate_ep_row *eps;
	size_t n_eps;
	struct hstate_obs_row *obs;
	size_t n_obs;
	struct hstate_lat_row *lat;
	size_t n_lat;
	struct arena arena;     /* export: owns every row and string */
};
/* Exports everything (freshness judged at now) into out, which the caller
 * releases with hstate_rows_fini(). Returns 0 or -ENOMEM. */
int hstate_export(const struct hstate *h, double now, struct hstate_rows *out);
/* The same for the endpoints ids[0..n) only (ids not set are skipped). */
int hstate_export_ids(const struct hstate *h, double now, const uint32_t *ids,
                      size_t n, struct hstate_rows *out);
void hstate_rows_fini(struct hstate_rows *r);
/* Restores state from rows (e.g. read back from SQLite) after
 * hstate_set_endpoints(). Rows for endpoints not set are skipped and
 * counted in *skipped (may be NULL); bad rows (state out of range, empty
 * names) likewise. Endpoint rows set state, stale and since; no events are
 * queued. Reads only; does not take ownership. Returns 0 or -ENOMEM. */
int hstate_restore(struct hstate *h, const struct hstate_rows *rows,
                   size_t *skipped);

/* "up", "down", "unknown" / the reverse (returns 0 or -EINVAL). */
const char *hstate_state_name(unsigned state);
int hstate_state_parse(const char *s, uint8_t *out);

#endif
