/* health/damp.c - route-flap damping. See health/damp.h. */
#include "health/damp.h"

#include <errno.h>
#include <math.h>

void damp_conf_default(struct damp_conf *c)
{
	c->on = true;
	c->penalty = DAMP_PENALTY;
	c->suppress = DAMP_SUPPRESS;
	c->reuse = DAMP_REUSE;
	c->half_life = DAMP_HALF_LIFE;
	c->max_suppress = DAMP_MAX_SUPPRESS;
}

int damp_conf_check(const struct damp_conf *c, const char **why)
{
	if (!(c->penalty > 0) || c->penalty > 1e9)
		*why = "penalty must be above 0";
	else if (!(c->reuse > 0) || !(c->suppress > c->reuse) ||
	         c->suppress > 1e9)
		*why = "need 0 < reuse < suppress";
	else if (!(c->half_life > 0) || c->half_life > 1e6)
		*why = "half-life must be above 0 seconds";
	else if (!(c->max_suppress > 0) || c->max_suppress > 1e7)
		*why = "max-suppress must be above 0 seconds";
	else
		return 0;
	return -EINVAL;
}

double damp_penalty(const struct damp_state *s, const struct damp_conf *c,
                    double now)
{
	double dt = now - s->at;

	if (s->penalty <= 0)
		return 0;
	if (dt <= 0)
		return s->penalty;
	return s->penalty * exp2(-dt / c->half_life);
}

/* The ceiling: decaying from it to reuse takes max_suppress seconds. */
static double ceiling(const struct damp_conf *c)
{
	return c->reuse * exp2(c->max_suppress / c->half_life);
}

bool damp_flap(struct damp_state *s, const struct damp_conf *c, double now)
{
	bool was = s->suppressed;
	double p = damp_penalty(s, c, now) + c->penalty;

	if (p > ceiling(c))
		p = ceiling(c);
	s->penalty = p;
	s->at = now;
	if (c->on && p > c->suppress)
		s->suppressed = true;
	return s->suppressed != was;
}

bool damp_update(struct damp_state *s, const struct damp_conf *c, double now)
{
	bool was = s->suppressed;
	double p = damp_penalty(s, c, now);

	s->penalty = p;
	s->at = now;
	if (!c->on || p < c->reuse)
		s->suppressed = false;
	if (p < 1)
		s->penalty = 0;
	return s->suppressed != was;
}

double damp_reuse_at(const struct damp_state *s, const struct damp_conf *c)
{
	if (!s->suppressed || s->penalty <= c->reuse)
		return s->suppressed ? s->at : 0;
	return s->at + c->half_life * log2(s->penalty / c->reuse);
}
