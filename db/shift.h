/* db/shift.h - staged traffic shifts in the store (table shifts).
 *
 * A shift moves a failover or weighted service's answers to one of its
 * endpoints (the target) in stages: during stage k, steps[k-1] percent of
 * the clients (chosen by subnet hash, policy/shift.h) are answered with the
 * target. The row is the whole state, so any dnsd (or a restarted one)
 * continues a shift where it was: gslbctl and the API start, abort, pause
 * and resume; dnsd's control thread moves the stages on time
 * (shift_advance, at most one stage per call) and rolls back
 * (shift_rollback). A shift whose last stage (100 percent) begins is done:
 * a failover service's target gets the best priority (as cfg_flip); a
 * weighted service keeps answering the target while it is healthy until
 * the next shift or an abort.
 *
 * Load time only. Every write is one transaction; errors as db/edit.h
 * (negative errno, one line in err naming what and why). */
#ifndef DB_SHIFT_H
#define DB_SHIFT_H
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "policy/svc.h"

struct store;

#define SHIFT_MAX_STEPS 32

enum shift_state {
	SHIFT_RUNNING, SHIFT_PAUSED, SHIFT_DONE, SHIFT_ROLLED_BACK,
	SHIFT_ABORTED, SHIFT_NSTATES
};

/* One row, as read. */
struct shift_info {
	long long service_id, target_id;
	char service[256], target[256];
	char policy[16];
	unsigned steps[SHIFT_MAX_STEPS];
	unsigned n_steps;
	double every;           /* seconds per stage */
	double max_rtt_ms;      /* 0 = not watched */
	unsigned stage;         /* from 1 */
	int state;              /* enum shift_state */
	double started, stage_started;
	double left;            /* paused: seconds of the stage left */
	char reason[256];
	double updated;
};

/* "running", "paused", "done", "rolled-back", "aborted". */
const char *shift_state_name(int state);
/* Percent of clients on the target now: the stage's step while running or
 * paused, 100 when done, 0 after a rollback or an abort. */
unsigned shift_percent(const struct shift_info *s);
/* Unix time the next stage begins, or 0 (not running, or last stage). */
double shift_next_time(const struct shift_info *s);

/* Parses "P1,P2,...,100": 1..SHIFT_MAX_STEPS integers, strictly
 * increasing, 1..100, the last 100. 0 or -EINVAL with err. */
int shift_parse_steps(const char *in, unsigned *steps, unsigned *n,
                      char *err, size_t errlen);

/* Starts a shift of service to target (a member, not drained or forced
 * down; the service failover or weighted) at unix time now: stage 1
 * begins at once. max_rtt_ms <= 0: RTT not watched. A finished shift of
 * the service is replaced; a running or paused one is refused (-EBUSY). */
int shift_start(struct store *db, const char *service, const char *target,
                const char *steps, double every, double max_rtt_ms,
                double now, char *err, size_t errlen);
/* Abort: back to the state before the shift (after done, the endpoint
 * priorities the shift found are restored). -ENOENT without a shift. */
int shift_abort(struct store *db, const char *service, double now, char *err,
                size_t errlen);
/* Pause (running only) keeps the stage and its share and stops the clock;
 * resume (paused only) lets the rest of the stage run. -EINVAL in another
 * state, -ENOENT without a shift. */
int shift_pause(struct store *db, const char *service, double now, char *err,
                size_t errlen);
int shift_resume(struct store *db, const char *service, double now, char *err,
                 size_t errlen);

/* The shift of service (any state): 0, or -ENOENT when it never had one. */
int shift_get(struct store *db, const char *service, struct shift_info *out,
              char *err, size_t errlen);
/* Every shift that is running or paused: *out (caller frees, NULL when
 * none), *n. 0 or -EIO / -ENOMEM. */
int shift_list_active(struct store *db, struct shift_info **out, size_t *n,
                      char *err, size_t errlen);

/* The status object of s at unix time now (new reference, NULL when out
 * of memory): target, percent, stage (from 1), stages, steps, every,
 * state ("running", also while paused; "done", "rolled-back",
 * "aborted"), paused, next_step (unix time) and next_step_in (seconds;
 * both null unless a next stage is scheduled), started, max_rtt_ms (null
 * when not watched), reason (why it stopped or paused; "" while running).
 */
json_t *shift_json(const struct shift_info *s, double now);
/* Every shift of the store (any state) as {"SERVICE": shift_json, ...}
 * (new reference), or NULL with err on a store error. */
json_t *shift_json_all(struct store *db, double now, char *err, size_t errlen);

/* dnsd: when the running shift of service id sid is due at now (the
 * current stage began every seconds ago or more), begins the next stage:
 * on schedule (the stage's start is the previous one's plus every) unless
 * that is a whole period past, then at now - so a shift never skips a
 * stage, however long no dnsd ran it. Returns 1 when it moved (*after
 * gets the new row when not NULL), 0 when not due, or a negative errno. */
int shift_advance(struct store *db, long long sid, double now,
                  struct shift_info *after, char *err, size_t errlen);
/* dnsd: rolls the running or paused shift of sid back to 0 percent, for
 * reason. Returns 1 when it did, 0 when there was nothing to roll back,
 * or a negative errno. */
int shift_rollback(struct store *db, long long sid, const char *reason, double now,
                   char *err, size_t errlen);

/* Export and import (db/export.c). The shift of service id sid as an
 * object of the export format - target, steps ("1,5,100"), every,
 * max_rtt_ms (null), stage, state, started, stage_started, left (null),
 * reason, prev ({TARGET: priority} the shift found, for an abort after
 * done), updated - or NULL when it has none. */
json_t *shift_export(struct store *db, long long sid);
/* Writes the shift of service from such an object, in the caller's
 * transaction (validated: known keys, a member target, steps and stage
 * that make sense). 0 or -EINVAL with err naming where. */
int shift_import(struct store *db, const char *service, const json_t *o,
                 const char *where, char *err, size_t errlen);
/* Import: gives every service of to the shift it has in from (matched by
 * service name and target), in the caller's transaction: a shift that is
 * the same one (same target and start) keeps to's progress, others are
 * replaced, and a service without one in from loses its own. Each change
 * is an audit row. Returns how many changed, or a negative errno. */
int shift_copy(struct store *from, struct store *to, double now, char *err,
               size_t errlen);
/* The same for one service name (nothing when to has no such service).
 * Returns 1 when it changed, 0, or a negative errno. */
int shift_copy_one(struct store *from, struct store *to, const char *name,
                   double now, char *err, size_t errlen);

/* A replica (db/sync.c): gives service name of to exactly the shift it
 * has in from (progress included; none in from: to's is removed), in the
 * caller's transaction. audit: each change is an audit row by the write
 * context's writer (else the caller records the writer's rows). Returns 1
 * when it changed, 0, or a negative errno. */
int shift_sync_one(struct store *from, struct store *to, const char *name,
                   bool audit, double now, char *err, size_t errlen);

/* Loader (db/svc_load.c, inside its read transaction on db): sets the shift of
 * every service of s that has one in force. Rows that do not fit (target
 * not an endpoint, bad steps) are skipped as problems. 0 or -EIO/-ENOMEM. */
int shift_load(struct store *db, struct svc_set *s, char *err, size_t errlen);

#endif
