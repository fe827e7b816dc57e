/* health/damp.h - route-flap damping for endpoints (the BGP model of
 * RFC 2439): each change of an endpoint's quorum state between up and down
 * adds a penalty; the penalty decays exponentially with a half-life; above
 * the suppress limit the endpoint is kept out of the answers (as down) until
 * the penalty has decayed below the reuse limit. The penalty is capped so
 * that no suppression lasts longer than max_suppress seconds after the
 * flapping stops. Pure computation: no I/O, no allocation, any thread. */
#ifndef HEALTH_DAMP_H
#define HEALTH_DAMP_H
#include <stdbool.h>

/* Thresholds (per service). */
struct damp_conf {
	bool on;
	double penalty;         /* added per transition (default 1000) */
	double suppress;        /* suppress above this (default 2500) */
	double reuse;           /* reuse below this (default 800) */
	double half_life;       /* seconds (default 30) */
	double max_suppress;    /* seconds (default 300) */
};

#define DAMP_PENALTY      1000.0
#define DAMP_SUPPRESS     2500.0
#define DAMP_REUSE        800.0
#define DAMP_HALF_LIFE    30.0
#define DAMP_MAX_SUPPRESS 300.0

/* One endpoint's damping state; zero-initialised = never flapped. */
struct damp_state {
	double penalty;         /* as of at */
	double at;              /* unix seconds */
	bool suppressed;
};

/* The defaults above, on. */
void damp_conf_default(struct damp_conf *c);
/* Checks c: 0, or -EINVAL with why (a static string): penalty > 0,
 * 0 < reuse < suppress, half_life > 0, max_suppress > 0. */
int damp_conf_check(const struct damp_conf *c, const char **why);

/* The penalty of s at now (decayed). */
double damp_penalty(const struct damp_state *s, const struct damp_conf *c,
                    double now);
/* A transition at now: adds the penalty (capped) and suppresses above the
 * limit. Returns true when s->suppressed changed. */
bool damp_flap(struct damp_state *s, const struct damp_conf *c, double now);
/* Re-evaluates s at now (decay; reuse below the limit). Returns true when
 * s->suppressed changed. */
bool damp_update(struct damp_state *s, const struct damp_conf *c, double now);
/* Unix time at which a suppressed s falls below the reuse limit (without
 * more flaps); 0 when not suppressed. */
double damp_reuse_at(const struct damp_state *s, const struct damp_conf *c);

#endif
