/* health/hstate.c - see hstate.h. Control thread only.
 *
 * Endpoints live in an array sorted by id (binary search); each holds its
 * observations (one per agent that reported it) and its RTT EWMAs (one per
 * region index). Agents and regions are small interned tables; an
 * observation refers to its agent by index. Sizes are small (tens of agents,
 * thousands of endpoints), so linear scans over agents are fine. */
#include "health/hstate.h"
#include "geo/geo.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/search.h"

struct obs {
	uint32_t agent;
	uint8_t state;
	bool ok;
	double rtt_ms, ts, seen, since;
	char detail[HSTATE_DETAIL_MAX];
};

struct lat {
	double rtt_ms, updated;
	uint64_t samples;
};

struct ep {
	uint32_t id;
	double interval;
	uint8_t state;
	bool stale;
	double since;
	char reason[HSTATE_REASON_MAX];
	struct obs *obs;
	size_t n_obs, cap_obs;
	struct lat *lat;        /* [n_lat], by region index */
	size_t n_lat;
	bool dirty;             /* in h->dirty */
};

struct agent {
	char name[HSTATE_NAME_MAX];
	uint32_t region;
	double seen;              /* last report */
};

struct region {
	char name[HSTATE_NAME_MAX];
	bool has_coords;
	double lat, lon;
};

struct hstate {
	struct hstate_params p;
	struct ep *eps;           /* sorted by id */
	size_t n_eps;
	struct agent *agents;
	size_t n_agents, cap_agents;
	struct region *regions;
	size_t n_regions, cap_regions;
	struct hstate_event *ev;
	size_t n_ev, cap_ev;
	double last_expire;
	/* Endpoints changed since hstate_take_dirty(), or all of them. */
	uint32_t *dirty;
	size_t n_dirty, cap_dirty;
	bool all_dirty;
	/* An agent's state or result for an endpoint changed (not only its
	 * times or RTT) since hstate_take_changed(). */
	bool changed;
	/* Bumps on every change of what hstate_export() shows (but for the
	 * freshness of observations, which hstate_tick() notices). */
	uint64_t gen;
	double last_tick;
};

void hstate_params_default(struct hstate_params *p)
{
	p->quorum = 0.5;
	p->alpha = 0.3;
	p->stale_mult = 3;
	p->min_regions = 0;
	p->expire_s = 0;
}

struct hstate *hstate_new(const struct hstate_params *p)
{
	struct hstate *h;

	if (p && (!(p->quorum >= 0 && p->quorum < 1) ||
	          !(p->alpha > 0 && p->alpha <= 1) || !(p->stale_mult > 0) ||
	          p->min_regions > 64 || !(p->expire_s >= 0)))
		return NULL;
	if ((h = calloc(1, sizeof(*h))) == NULL)
		return NULL;
	if (p)
		h->p = *p;
	else
		hstate_params_default(&h->p);
	return h;
}

static void ep_fini(struct ep *e)
{
	free(e->obs);
	free(e->lat);
}

void hstate_free(struct hstate *h)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->n_eps; i++)
		ep_fini(&h->eps[i]);
	free(h->eps);
	free(h->agents);
	free(h->regions);
	free(h->ev);
	free(h->dirty);
	free(h);
}

static int grow(void **p, size_t *cap, size_t need, size_t size);

static void mark_dirty(struct hstate *h, struct ep *e)
{
	h->gen++;
	if (e->dirty || h->all_dirty)
		return;
	if (grow((void **)&h->dirty, &h->cap_dirty, h->n_dirty + 1,
	         sizeof(*h->dirty)) < 0) {
		h->all_dirty = true;
		return;
	}
	h->dirty[h->n_dirty++] = e->id;
	e->dirty = true;
}

static struct ep *ep_find(const struct hstate *h, uint32_t id)
{
	long i = SEARCH_ID(h->eps, h->n_eps, id, id);

	return i < 0 ? NULL : &h->eps[i];
}

static int cmp_ep(const void *a, const void *b)
{
	uint32_t x = ((const struct ep *)a)->id, y = ((const struct ep *)b)->id;

	return x < y ? -1 : x > y;
}

int hstate_set_endpoints(struct hstate *h, const struct hstate_ep *eps,
                         size_t n)
{
	struct ep *ne;

	for (size_t i = 0; i < n; i++)
		if (!(eps[i].interval > 0) || !isfinite(eps[i].interval))
			return -EINVAL;
	if ((ne = calloc(n ? n : 1, sizeof(*ne))) == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		ne[i].id = eps[i].id;
		ne[i].interval = eps[i].interval;
	}
	qsort(ne, n, sizeof(*ne), cmp_ep);
	for (size_t i = 1; i < n; i++)
		if (ne[i].id == ne[i - 1].id) {
			free(ne);
			return -EINVAL;
		}
	/* Carry over what we know; from here on nothing can fail. */
	for (size_t i = 0; i < n; i++) {
		struct ep *old = ep_find(h, ne[i].id);
		double iv = ne[i].interval;

		if (old) {
			ne[i] = *old;
			ne[i].interval = iv;
			old->obs = NULL;
			old->lat = NULL;
		} else {
			ne[i].state = HSTATE_UNKNOWN;
			ne[i].stale = true;
			snprintf(ne[i].reason, sizeof(ne[i].reason),
			         "no report yet");
		}
	}
	for (size_t i = 0; i < h->n_eps; i++)
		ep_fini(&h->eps[i]);
	free(h->eps);
	h->eps = ne;
	h->n_eps = n;
	h->all_dirty = true;
	h->gen++;
	return 0;
}

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
	size_t nc;
	void *np;

	if (need <= *cap)
		return 0;
	nc = *cap ? *cap * 2 : 8;
	while (nc < need)
		nc *= 2;
	if ((np = realloc(*p, nc * size)) == NULL)
		return -ENOMEM;
	*p = np;
	*cap = nc;
	return 0;
}

static bool name_ok(const char *s)
{
	size_t len;

	if (!s || !*s || (len = strlen(s)) >= HSTATE_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

static long agent_find(const struct hstate *h, const char *name)
{
	for (size_t i = 0; i < h->n_agents; i++)
		if (strcmp(h->agents[i].name, name) == 0)
			return (long)i;
	return -1;
}

static long region_find(const struct hstate *h, const char *name)
{
	for (size_t i = 0; i < h->n_regions; i++)
		if (strcmp(h->regions[i].name, name) == 0)
			return (long)i;
	return -1;
}

/* Interns region and agent (growing tables only: a failure leaves no
 * visible change). Returns the agent index or -errno. */
static long intern(struct hstate *h, const char *agent, const char *region,
                   bool has_coords, double lat, double lon)
{
	long ai = agent_find(h, agent), ri = region_find(h, region);

	if ((ri < 0 && h->n_regions >= HSTATE_MAX_REGIONS) ||
	    (ai < 0 && h->n_agents >= HSTATE_MAX_AGENTS))
		return -ENOSPC;
	if (ri < 0) {
		if (grow((void **)&h->regions, &h->cap_regions,
		         h->n_regions + 1, sizeof(*h->regions)) < 0)
			return -ENOMEM;
		ri = (long)h->n_regions;
		memset(&h->regions[ri], 0, sizeof(h->regions[ri]));
		snprintf(h->regions[ri].name, HSTATE_NAME_MAX, "%s", region);
		h->n_regions++;
	}
	if (ai < 0) {
		if (grow((void **)&h->agents, &h->cap_agents,
		         h->n_agents + 1, sizeof(*h->agents)) < 0)
			return -ENOMEM;
		ai = (long)h->n_agents++;
		snprintf(h->agents[ai].name, HSTATE_NAME_MAX, "%s", agent);
		h->agents[ai].seen = 0;
	}
	h->agents[ai].region = (uint32_t)ri;
	if (has_coords) {
		h->regions[ri].has_coords = true;
		h->regions[ri].lat = lat;
		h->regions[ri].lon = lon;
	}
	return ai;
}

static struct obs *obs_find(struct ep *e, uint32_t agent)
{
	for (size_t i = 0; i < e->n_obs; i++)
		if (e->obs[i].agent == agent)
			return &e->obs[i];
	return NULL;
}

static int push_event(struct hstate *h, const struct hstate_event *ev)
{
	if (grow((void **)&h->ev, &h->cap_ev, h->n_ev + 1, sizeof(*h->ev)) < 0)
		return -ENOMEM;
	h->ev[h->n_ev++] = *ev;
	return 0;
}

/* Distinct regions of the fresh agents voting down on e (stops counting
 * at min_regions). */
static size_t down_regions(const struct hstate *h, const struct ep *e,
                           double window, double now)
{
	uint32_t seen[64];
	size_t n = 0, want = h->p.min_regions;

	if (want > sizeof(seen) / sizeof(seen[0]))
		want = sizeof(seen) / sizeof(seen[0]);
	for (size_t i = 0; i < e->n_obs && n < want; i++) {
		const struct obs *o = &e->obs[i];
		uint32_t r;
		size_t k;

		if (now - o->seen > window || o->state != HSTATE_DOWN)
			continue;
		r = h->agents[o->agent].region;
		for (k = 0; k < n && seen[k] != r; k++)
			;
		if (k == n)
			seen[n++] = r;
	}
	return n;
}

/* The quorum rule of hstate.h, plus event and reason bookkeeping. */
static void evaluate(struct hstate *h, struct ep *e, double now)
{
	double window = h->p.stale_mult * e->interval;
	size_t ups = 0, voters = 0, fresh = 0;
	uint8_t ns = e->state;
	bool nstale;
	char why[HSTATE_REASON_MAX];

	for (size_t i = 0; i < e->n_obs; i++) {
		const struct obs *o = &e->obs[i];

		if (now - o->seen > window)
			continue;
		fresh++;
		if (o->state == HSTATE_UP || o->state == HSTATE_DOWN)
			voters++;
		if (o->state == HSTATE_UP)
			ups++;
	}
	if (voters == 0) {
		nstale = true;
		snprintf(why, sizeof(why),
		         "no fresh agent verdict (%zu agents, %zu fresh, "
		         "window %.0f s): last state stands", e->n_obs, fresh,
		         window);
	} else {
		nstale = false;
		ns = (double)ups > h->p.quorum * (double)voters ? HSTATE_UP
		                                                : HSTATE_DOWN;
		snprintf(why, sizeof(why),
		         "%zu of %zu fresh agents report up (quorum > %.0f%%)",
		         ups, voters, h->p.quorum * 100);
		if (ns == HSTATE_DOWN && h->p.min_regions > 1) {
			size_t nr = down_regions(h, e, window, now);

			if (nr < h->p.min_regions) {
				ns = HSTATE_UP;
				snprintf(why, sizeof(why),
				         "%zu of %zu fresh agents report up; "
				         "down votes from %zu region%s, fewer "
				         "than %u", ups, voters, nr,
				         nr == 1 ? "" : "s",
				         h->p.min_regions);
			}
		}
	}
	if (ns != e->state || nstale != e->stale) {
		struct hstate_event ev = {
			.id = e->id, .old_state = e->state, .new_state = ns,
			.old_stale = e->stale, .new_stale = nstale, .at = now,
		};

		snprintf(ev.reason, sizeof(ev.reason), "%s", why);
		/* Out of memory loses the event, never the state change. */
		(void)push_event(h, &ev);
		if (ns != e->state)
			e->since = now;
		e->state = ns;
		e->stale = nstale;
		snprintf(e->reason, sizeof(e->reason), "%s", why);
		mark_dirty(h, e);
	}
}

static void fold_rtt(struct hstate *h, struct ep *e, uint32_t region,
                     double rtt, double now)
{
	struct lat *l;

	if (region >= e->n_lat)
		return;
	l = &e->lat[region];
	if (l->samples == 0)
		l->rtt_ms = rtt;
	else
		l->rtt_ms += h->p.alpha * (rtt - l->rtt_ms);
	l->samples++;
	l->updated = now;
}

/* Makes room for one more observation and the region slot (growth only). */
static int reserve(struct ep *e, uint32_t agent, size_t n_regions)
{
	if (!obs_find(e, agent) &&
	    grow((void **)&e->obs, &e->cap_obs, e->n_obs + 1,
	         sizeof(*e->obs)) < 0)
		return -ENOMEM;
	if (e->n_lat < n_regions) {
		struct lat *nl = realloc(e->lat, n_regions * sizeof(*nl));

		if (!nl)
			return -ENOMEM;
		memset(nl + e->n_lat, 0, (n_regions - e->n_lat) * sizeof(*nl));
		e->lat = nl;
		e->n_lat = n_regions;
	}
	return 0;
}

int hstate_report(struct hstate *h, const struct hstate_agent *a,
                  const struct hstate_result *res, size_t n, double now,
                  char *err, size_t errlen)
{
	long ai;

	if (!name_ok(a->name) || !name_ok(a->region)) {
		snprintf(err, errlen, "agent or region name empty, too long "
		         "or with control characters");
		return -EINVAL;
	}
	if (a->has_coords && !(a->lat >= -90 && a->lat <= 90 &&
	                       a->lon >= -180 && a->lon <= 180)) {
		snprintf(err, errlen, "agent %s: coordinates out of range",
		         a->name);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		if (!ep_find(h, res[i].id)) {
			snprintf(err, errlen, "results[%zu]: unknown endpoint "
			         "id %u", i, res[i].id);
			return -ENOENT;
		}
		if (res[i].state > HSTATE_DOWN || !isfinite(res[i].ts)) {
			snprintf(err, errlen, "results[%zu]: bad state or ts",
			         i);
			return -EINVAL;
		}
	}
	if ((ai = intern(h, a->name, a->region, a->has_coords, a->lat,
	                 a->lon)) < 0) {
		snprintf(err, errlen, "agent %s: %s", a->name,
		         ai == -ENOSPC ? "too many agents or regions (a new "
		         "one is accepted when one has been silent long "
		         "enough to be forgotten)" : "out of memory");
		return (int)ai;
	}
	h->agents[ai].seen = now;
	for (size_t i = 0; i < n; i++)
		if (reserve(ep_find(h, res[i].id), (uint32_t)ai,
		            h->n_regions) < 0) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
	/* Validated and reserved: apply. */
	for (size_t i = 0; i < n; i++) {
		const struct hstate_result *r = &res[i];
		struct ep *e = ep_find(h, r->id);
		struct obs *o = obs_find(e, (uint32_t)ai);
		bool newer;

		if (!o) {
			o = &e->obs[e->n_obs++];
			memset(o, 0, sizeof(*o));
			o->agent = (uint32_t)ai;
			o->state = 0xff;        /* forces "since" below */
			o->ts = -1;
		}
		if (o->state != r->state || o->ok != r->ok)
			h->changed = true;
		/* A resend repeats the exact ts of a result already folded;
		 * inequality rather than ">" keeps an agent whose clock
		 * stepped back from freezing its RTT and detail. */
		newer = r->ts != o->ts;
		mark_dirty(h, e);
		if (o->state != r->state)
			o->since = now;
		o->state = r->state;
		o->seen = now;
		if (newer) {
			o->ok = r->ok;
			o->rtt_ms = r->rtt_ms >= 0 ? r->rtt_ms : -1;
			o->ts = r->ts;
			snprintf(o->detail, sizeof(o->detail), "%s",
			         r->detail ? r->detail : "");
			if (r->ok && r->rtt_ms >= 0 && isfinite(r->rtt_ms))
				fold_rtt(h, e, h->agents[ai].region, r->rtt_ms,
				         now);
		}
	}
	for (size_t i = 0; i < n; i++)
		evaluate(h, ep_find(h, res[i].id), now);
	return 0;
}

void hstate_tick(struct hstate *h, double now)
{
	for (size_t i = 0; i < h->n_eps; i++) {
		struct ep *e = &h->eps[i];
		double window = h->p.stale_mult * e->interval;

		/* An observation that went stale since the last tick changes
		 * what an export says ("fresh"). */
		for (size_t k = 0; k < e->n_obs; k++)
			if (h->last_tick - e->obs[k].seen <= window &&
			    now - e->obs[k].seen > window) {
				h->gen++;
				break;
			}
		evaluate(h, e, now);
	}
	h->last_tick = now;
	if (h->p.expire_s > 0 && now - h->last_expire >= 10)
		hstate_expire(h, now);
}

void hstate_counts(const struct hstate *h, size_t *agents, size_t *regions)
{
	*agents = h->n_agents;
	*regions = h->n_regions;
}

uint64_t hstate_generation(const struct hstate *h)
{
	return h->gen;
}

int hstate_agent_at(const struct hstate *h, size_t i, const char **name,
                    const char **region, double *seen)
{
	if (i >= h->n_agents)
		return -ENOENT;
	*name = h->agents[i].name;
	*region = h->regions[h->agents[i].region].name;
	*seen = h->agents[i].seen;
	return 0;
}

size_t hstate_expire(struct hstate *h, double now)
{
	uint32_t *amap = NULL, *rmap = NULL;
	bool *rused = NULL;
	size_t na = 0, nr = 0, gone;

	h->last_expire = now;
	if (!(h->p.expire_s > 0) || !h->n_agents)
		return 0;
	amap = malloc(h->n_agents * sizeof(*amap));
	rmap = malloc((h->n_regions + 1) * sizeof(*rmap));
	rused = calloc(h->n_regions + 1, sizeof(*rused));
	if (!amap || !rmap || !rused) {
		gone = 0;
		goto out;
	}
	/* Agents: silent for expire_s and for the window of every endpoint
	 * they observed (so no fresh observation is ever dropped). */
	for (size_t i = 0; i < h->n_agents; i++)
		amap[i] = now - h->agents[i].seen > h->p.expire_s ? UINT32_MAX
		                                                   : 0;
	for (size_t i = 0; i < h->n_eps; i++) {
		const struct ep *e = &h->eps[i];
		double window = h->p.stale_mult * e->interval;

		for (size_t k = 0; k < e->n_obs; k++)
			if (now - e->obs[k].seen <= window)
				amap[e->obs[k].agent] = 0;
	}
	for (size_t i = 0; i < h->n_agents; i++) {
		if (amap[i] == UINT32_MAX)
			continue;
		amap[i] = (uint32_t)na;
		h->agents[na++] = h->agents[i];
	}
	gone = h->n_agents - na;
	h->n_agents = na;
	/* Regions: those an agent is still in. */
	for (size_t i = 0; i < na; i++)
		rused[h->agents[i].region] = true;
	for (size_t r = 0; r < h->n_regions; r++) {
		rmap[r] = rused[r] ? (uint32_t)nr : UINT32_MAX;
		if (rused[r])
			h->regions[nr++] = h->regions[r];
	}
	for (size_t i = 0; i < na; i++)
		h->agents[i].region = rmap[h->agents[i].region];
	for (size_t i = 0; i < h->n_eps; i++) {
		struct ep *e = &h->eps[i];
		size_t k = 0;

		for (size_t j = 0; j < e->n_obs; j++) {
			if (amap[e->obs[j].agent] == UINT32_MAX)
				continue;
			e->obs[k] = e->obs[j];
			e->obs[k++].agent = amap[e->obs[j].agent];
		}
		e->n_obs = k;
		if (nr != h->n_regions) {
			size_t m = 0;

			for (size_t r = 0; r < e->n_lat && r < h->n_regions; r++)
				if (rmap[r] != UINT32_MAX)
					e->lat[m++] = e->lat[r];
			e->n_lat = m;
		}
	}
	if (gone || nr != h->n_regions) {
		h->all_dirty = true;
		h->gen++;
	}
	h->n_regions = nr;
out:
	free(amap);
	free(rmap);
	free(rused);
	return gone;
}

size_t hstate_take_events(struct hstate *h, struct hstate_event *out,
                          size_t max)
{
	size_t k = h->n_ev < max ? h->n_ev : max;

	if (k == 0)
		return 0;
	memcpy(out, h->ev, k * sizeof(*out));
	memmove(h->ev, h->ev + k, (h->n_ev - k) * sizeof(*h->ev));
	h->n_ev -= k;
	return k;
}

int hstate_get(const struct hstate *h, uint32_t id, uint8_t *state,
               bool *stale)
{
	const struct ep *e = ep_find(h, id);

	if (!e)
		return -ENOENT;
	*state = e->state;
	*stale = e->stale;
	return 0;
}

int hstate_rtt(const struct hstate *h, const char *region, uint32_t id,
               double *rtt_ms)
{
	const struct ep *e = ep_find(h, id);
	long ri = region_find(h, region);

	if (!e || ri < 0 || (size_t)ri >= e->n_lat ||
	    e->lat[ri].samples == 0)
		return -ENOENT;
	*rtt_ms = e->lat[ri].rtt_ms;
	return 0;
}

/* A view and what it owns besides its vectors. */
struct view_box {
	struct hstate_view v;
	struct hstate_region *regions;
	struct arena a;         /* region names */
};

int hstate_view_set(struct hstate_view *v, uint32_t id, uint8_t state)
{
	struct hstate_vcell *c;

	if (!v || id >= v->n)
		return 0;
	if (!(c = cowvec_mut(&v->cell, id)))
		return -ENOMEM;
	c->state = state;
	return 0;
}

int hstate_view_change_at(struct hstate_view *v, uint32_t id, double at)
{
	struct hstate_vcell *c;
	double up = ceil(at);

	if (!v || id >= v->n || !(at > 0))
		return 0;
	if (up > UINT32_MAX)
		up = UINT32_MAX;
	if (!(c = cowvec_mut(&v->cell, id)))
		return -ENOMEM;
	if (c->change_at == 0 || up < c->change_at)
		c->change_at = (uint32_t)up;
	v->has_change_at = true;
	return 0;
}

static struct view_box *view_new(size_t n, size_t n_regions)
{
	struct view_box *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	arena_init(&b->a);
	b->v.refs = 1;
	b->v.n = n;
	b->v.n_regions = n_regions;
	cowvec_init(&b->v.cell, sizeof(struct hstate_vcell), NULL);
	b->v.rtt = calloc(n_regions + 1, sizeof(*b->v.rtt));
	b->regions = calloc(n_regions + 1, sizeof(*b->regions));
	b->v.regions = b->regions;
	if (!b->v.rtt || !b->regions) {
		hstate_view_free(&b->v);
		return NULL;
	}
	for (size_t r = 0; r < n_regions; r++)
		cowvec_init(&b->v.rtt[r], sizeof(float), NULL);
	return b;
}

/* Writes endpoint e's cell and RTTs into v (its chunks copied first when
 * shared). 0 or -ENOMEM. */
static int view_put(struct hstate_view *v, const struct ep *e)
{
	struct hstate_vcell *c = cowvec_mut(&v->cell, e->id);

	if (!c)
		return -ENOMEM;
	c->state = e->state;
	c->stale = e->stale;
	c->change_at = 0;
	for (size_t r = 0; r < v->n_regions; r++) {
		float *f = cowvec_mut(&v->rtt[r], e->id);

		if (!f)
			return -ENOMEM;
		*f = r < e->n_lat && e->lat[r].samples ?
		     (float)e->lat[r].rtt_ms : -1.0f;
	}
	return 0;
}

struct hstate_view *hstate_view_build(const struct hstate *h)
{
	size_t n = h->n_eps ? (size_t)h->eps[h->n_eps - 1].id + 1 : 0;
	struct view_box *b = view_new(n, h->n_regions);

	if (!b)
		return NULL;
	if (cowvec_reserve(&b->v.cell, n) < 0)
		goto fail;
	for (size_t r = 0; r < h->n_regions; r++) {
		size_t cap;

		if (cowvec_reserve(&b->v.rtt[r], n) < 0)
			goto fail;
		cap = cowvec_cap(&b->v.rtt[r]);
		for (size_t i = 0; i < cap; i += COWVEC_N) {
			float *f = cowvec_mut(&b->v.rtt[r], i);

			for (size_t k = 0; k < COWVEC_N; k++)
				f[k] = -1.0f;
		}
		if (!(b->regions[r].name = arena_strdup(&b->a,
		                                         h->regions[r].name)))
			goto fail;
		b->regions[r].has_coords = h->regions[r].has_coords;
		b->regions[r].lat = h->regions[r].lat;
		b->regions[r].lon = h->regions[r].lon;
		if (b->regions[r].has_coords)
			geo_unit_vector(b->regions[r].lat, b->regions[r].lon,
			                b->regions[r].v);
	}
	for (size_t i = 0; i < h->n_eps; i++)
		if (view_put(&b->v, &h->eps[i]) < 0)
			goto fail;
	return &b->v;
fail:
	hstate_view_free(&b->v);
	return NULL;
}

struct hstate_view *hstate_view_update(const struct hstate_view *base,
                                       const struct hstate *h,
                                       const uint32_t *ids, size_t n)
{
	size_t want = h->n_eps ? (size_t)h->eps[h->n_eps - 1].id + 1 : 0;
	struct view_box *b;

	if (!base || base->n != want || base->n_regions != h->n_regions)
		return NULL;
	for (size_t r = 0; r < h->n_regions; r++)
		if (strcmp(base->regions[r].name, h->regions[r].name) != 0 ||
		    base->regions[r].has_coords != h->regions[r].has_coords ||
		    base->regions[r].lat != h->regions[r].lat ||
		    base->regions[r].lon != h->regions[r].lon)
			return NULL;
	if (!(b = view_new(want, h->n_regions)))
		return NULL;
	if (cowvec_clone(&b->v.cell, &base->cell) < 0)
		goto fail;
	for (size_t r = 0; r < h->n_regions; r++) {
		b->regions[r] = base->regions[r];
		if (!(b->regions[r].name = arena_strdup(&b->a,
		                                         base->regions[r].name)) ||
		    cowvec_clone(&b->v.rtt[r], &base->rtt[r]) < 0)
			goto fail;
	}
	b->v.has_change_at = base->has_change_at;
	for (size_t i = 0; i < n; i++) {
		const struct ep *e = ep_find(h, ids[i]);

		if (e && view_put(&b->v, e) < 0)
			goto fail;
	}
	return &b->v;
fail:
	hstate_view_free(&b->v);
	return NULL;
}

struct hstate_view *hstate_view_ref(struct hstate_view *v)
{
	if (v)
		v->refs++;
	return v;
}

void hstate_view_free(struct hstate_view *v)
{
	struct view_box *b = (struct view_box *)v;  /* v is the first member */

	if (!b || --v->refs > 0)
		return;
	cowvec_fini(&v->cell);
	for (size_t r = 0; v->rtt && r < v->n_regions; r++)
		cowvec_fini(&v->rtt[r]);
	free(v->rtt);
	free(b->regions);
	arena_fini(&b->a);
	free(b);
}

bool hstate_take_changed(struct hstate *h)
{
	bool c = h->changed;

	h->changed = false;
	return c;
}

int hstate_take_dirty(struct hstate *h, uint32_t **ids, size_t *n, bool *all)
{
	*ids = h->dirty;
	*n = h->n_dirty;
	*all = h->all_dirty;
	for (size_t i = 0; i < h->n_dirty; i++) {
		struct ep *e = ep_find(h, h->dirty[i]);

		if (e)
			e->dirty = false;
	}
	if (h->all_dirty)
		for (size_t i = 0; i < h->n_eps; i++)
			h->eps[i].dirty = false;
	h->dirty = NULL;
	h->n_dirty = h->cap_dirty = 0;
	h->all_dirty = false;
	return 0;
}

bool hstate_in_progress(const struct hstate *h, uint32_t id, double now)
{
	const struct ep *e = ep_find(h, id);

	for (size_t i = 0; e && i < e->n_obs; i++) {
		const struct obs *o = &e->obs[i];

		if (now - o->seen <= h->p.stale_mult * e->interval &&
		    ((o->state == HSTATE_UP && !o->ok) ||
		     (o->state == HSTATE_DOWN && o->ok)))
			return true;
	}
	return false;
}

/* The endpoints ids[0..n) (all when ids is NULL) into out. */
static int export_some(const struct hstate *h, double now, const uint32_t *ids,
                       size_t n, struct hstate_rows *out)
{
#define EP_AT(i) (ids ? ep_find(h, ids[i]) : &h->eps[i])
	size_t n_obs = 0, n_lat = 0, k = 0, l = 0;
	struct arena *a = &out->arena;

	memset(out, 0, sizeof(*out));
	arena_init(a);
	size_t m = 0;

	if (!ids)
		n = h->n_eps;
	for (size_t i = 0; i < n; i++) {
		const struct ep *e = EP_AT(i);

		if (!e)
			continue;
		n_obs += e->n_obs;
		for (size_t r = 0; r < e->n_lat; r++)
			n_lat += e->lat[r].samples > 0;
	}
	out->eps = arena_calloc(a, (n + 1) * sizeof(*out->eps));
	out->obs = arena_calloc(a, (n_obs + 1) * sizeof(*out->obs));
	out->lat = arena_calloc(a, (n_lat + 1) * sizeof(*out->lat));
	if (!out->eps || !out->obs || !out->lat)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		const struct ep *e = EP_AT(i);
		struct hstate_ep_row *er;

		if (!e)
			continue;
		er = &out->eps[m++];
		er->endpoint_id = e->id;
		er->state = e->state;
		er->stale = e->stale;
		er->since = e->since;
		if (!(er->reason = arena_strdup(a, e->reason)))
			goto fail;
		for (size_t j = 0; j < e->n_obs; j++) {
			const struct obs *o = &e->obs[j];
			const struct agent *ag = &h->agents[o->agent];
			const struct region *rg = &h->regions[ag->region];
			struct hstate_obs_row *orow = &out->obs[k++];

			orow->endpoint_id = e->id;
			orow->agent = arena_strdup(a, ag->name);
			orow->region = arena_strdup(a, rg->name);
			orow->detail = arena_strdup(a, o->detail);
			if (!orow->agent || !orow->region || !orow->detail)
				goto fail;
			orow->has_coords = rg->has_coords;
			orow->lat = rg->lat;
			orow->lon = rg->lon;
			orow->state = o->state;
			orow->ok = o->ok;
			orow->rtt_ms = o->rtt_ms;
			orow->ts = o->ts;
			orow->seen = o->seen;
			orow->since = o->since;
			orow->fresh = now - o->seen <=
			              h->p.stale_mult * e->interval;
		}
		for (size_t r = 0; r < e->n_lat; r++) {
			struct hstate_lat_row *lr;

			if (!e->lat[r].samples)
				continue;
			lr = &out->lat[l++];
			if (!(lr->region = arena_strdup(a, h->regions[r].name)))
				goto fail;
			lr->endpoint_id = e->id;
			lr->rtt_ms = e->lat[r].rtt_ms;
			lr->samples = e->lat[r].samples;
			lr->updated = e->lat[r].updated;
		}
	}
	out->n_eps = m;
	out->n_obs = k;
	out->n_lat = l;
	return 0;
fail:
	hstate_rows_fini(out);
	return -ENOMEM;
#undef EP_AT
}

int hstate_export(const struct hstate *h, double now, struct hstate_rows *out)
{
	return export_some(h, now, NULL, 0, out);
}

int hstate_export_ids(const struct hstate *h, double now, const uint32_t *ids,
                      size_t n, struct hstate_rows *out)
{
	return export_some(h, now, ids, n, out);
}

void hstate_rows_fini(struct hstate_rows *r)
{
	arena_fini(&r->arena);
	r->eps = NULL;
	r->obs = NULL;
	r->lat = NULL;
	r->n_eps = r->n_obs = r->n_lat = 0;
}

int hstate_restore(struct hstate *h, const struct hstate_rows *rows,
                   size_t *skipped)
{
	size_t skip = 0;

	h->all_dirty = true;
	h->gen++;

	for (size_t i = 0; i < rows->n_eps; i++) {
		const struct hstate_ep_row *r = &rows->eps[i];
		struct ep *e = ep_find(h, r->endpoint_id);

		if (!e || r->state > HSTATE_DOWN) {
			skip++;
			continue;
		}
		e->state = r->state;
		e->stale = r->stale;
		e->since = r->since;
		snprintf(e->reason, sizeof(e->reason), "%s",
		         r->reason ? r->reason : "restored");
	}
	for (size_t i = 0; i < rows->n_obs; i++) {
		const struct hstate_obs_row *r = &rows->obs[i];
		struct ep *e = ep_find(h, r->endpoint_id);
		struct obs *o;
		long ai;

		if (!e || r->state > HSTATE_DOWN || !name_ok(r->agent) ||
		    !name_ok(r->region)) {
			skip++;
			continue;
		}
		if ((ai = intern(h, r->agent, r->region, r->has_coords,
		                 r->lat, r->lon)) < 0) {
			if (ai == -ENOMEM)
				return -ENOMEM;
			skip++;
			continue;
		}
		if (reserve(e, (uint32_t)ai, h->n_regions) < 0)
			return -ENOMEM;
		if (r->seen > h->agents[ai].seen)
			h->agents[ai].seen = r->seen;
		if (!(o = obs_find(e, (uint32_t)ai))) {
			o = &e->obs[e->n_obs++];
			memset(o, 0, sizeof(*o));
			o->agent = (uint32_t)ai;
		}
		o->state = r->state;
		o->ok = r->ok;
		o->rtt_ms = r->rtt_ms;
		o->ts = r->ts;
		o->seen = r->seen;
		o->since = r->since;
		snprintf(o->detail, sizeof(o->detail), "%s",
		         r->detail ? r->detail : "");
	}
	for (size_t i = 0; i < rows->n_lat; i++) {
		const struct hstate_lat_row *r = &rows->lat[i];
		struct ep *e = ep_find(h, r->endpoint_id);
		long ri;

		if (!e || !name_ok(r->region) || !(r->rtt_ms >= 0)) {
			skip++;
			continue;
		}
		if ((ri = region_find(h, r->region)) < 0) {
			if (h->n_regions >= HSTATE_MAX_REGIONS) {
				skip++;
				continue;
			}
			if (grow((void **)&h->regions, &h->cap_regions,
			         h->n_regions + 1, sizeof(*h->regions)) < 0)
				return -ENOMEM;
			ri = (long)h->n_regions++;
			memset(&h->regions[ri], 0, sizeof(h->regions[ri]));
			snprintf(h->regions[ri].name, HSTATE_NAME_MAX, "%s",
			         r->region);
		}
		if (reserve(e, UINT32_MAX, h->n_regions) < 0)
			return -ENOMEM;
		e->lat[ri].rtt_ms = r->rtt_ms;
		e->lat[ri].samples = r->samples ? r->samples : 1;
		e->lat[ri].updated = r->updated;
	}
	if (skipped)
		*skipped = skip;
	return 0;
}

static const char *const state_names[] = { "unknown", "up", "down" };

const char *hstate_state_name(unsigned state)
{
	return state <= HSTATE_DOWN ? state_names[state] : "invalid";
}

int hstate_state_parse(const char *s, uint8_t *out)
{
	for (unsigned i = 0; i <= HSTATE_DOWN; i++)
		if (strcmp(s, state_names[i]) == 0) {
			*out = (uint8_t)i;
			return 0;
		}
	return -EINVAL;
}
