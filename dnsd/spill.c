/* dnsd/spill.c - the load signal of spill-over; see spill.h. */
#include "dnsd/spill.h"

#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define SPILL_BUCKETS (SPILL_WINDOW_S + 1)   /* cumulative counts kept */
#define SPILL_KEEP_MIN 0.01

struct spill {
	struct svc_load tab;             /* what the query path reads */
	uint32_t *ids;                   /* entries the last tick wrote */
	size_t n_ids, cap_ids;
	size_t nid;                      /* per-id arrays below: ids < nid */
	uint64_t *cum[SPILL_BUCKETS];    /* cumulative answers per tick */
	double t[SPILL_BUCKETS];         /* and the tick's time */
	unsigned head, filled;
	double *rate;                    /* answers/s over SPILL_WINDOW_S */
	double *kept;                    /* share kept, 0..1 */
};

struct spill *spill_new(size_t cap)
{
	struct spill *sp = calloc(1, sizeof(*sp));

	if (!sp)
		return NULL;
	sp->tab.ep = calloc(cap ? cap : 1, sizeof(*sp->tab.ep));
	if (!sp->tab.ep) {
		free(sp);
		return NULL;
	}
	sp->tab.n = cap;
	for (size_t i = 0; i < cap; i++)
		atomic_init(&sp->tab.ep[i].admit, SVC_ADMIT_ONE);
	return sp;
}

static void free_ids(struct spill *sp)
{
	for (unsigned b = 0; b < SPILL_BUCKETS; b++) {
		free(sp->cum[b]);
		sp->cum[b] = NULL;
	}
	free(sp->rate);
	free(sp->kept);
	sp->rate = sp->kept = NULL;
	sp->nid = 0;
	sp->filled = 0;
}

void spill_free(struct spill *sp)
{
	if (!sp)
		return;
	free_ids(sp);
	free(sp->ids);
	free(sp->tab.ep);
	free(sp);
}

const struct svc_load *spill_load(const struct spill *sp)
{
	return sp ? &sp->tab : NULL;
}

static void set_entry(struct spill *sp, uint32_t id, double rate,
		      double kept)
{
	double r = rate * SVC_RATE_UNIT;

	if (id >= sp->tab.n)
		return;
	atomic_store_explicit(&sp->tab.ep[id].rate,
			      r >= 4294967295.0 ? UINT32_MAX : (uint32_t)r,
			      memory_order_relaxed);
	atomic_store_explicit(&sp->tab.ep[id].admit,
			      (uint32_t)(kept * SVC_ADMIT_ONE + 0.5),
			      memory_order_relaxed);
}

size_t spill_need(struct spill *sp, const struct svc_set *set)
{
	size_t need = 0;

	(void)sp;
	for (size_t i = 0; set && i < set->n_spill; i++) {
		uint32_t id = svc_at(set, set->spill[i].svc)->eps[set->spill[i].ep].id;

		if (id + 1u > need)
			need = id + 1u;
	}
	return need;
}

/* The entries of endpoints that spill no more (the set changed) go back
 * to no load, all kept; then ids becomes the set's. */
static void forget_gone(struct spill *sp, const struct svc_set *set)
{
	size_t n = set ? set->n_spill : 0;
	uint8_t *keep;

	if (n == 0 && sp->n_ids == 0)
		return;
	if (!(keep = calloc(sp->tab.n ? sp->tab.n : 1, 1)))
		return;
	for (size_t i = 0; i < n; i++) {
		uint32_t id = svc_at(set, set->spill[i].svc)->eps[set->spill[i].ep].id;

		if (id < sp->tab.n)
			keep[id] = 1;
	}
	for (size_t i = 0; i < sp->n_ids; i++)
		if (!keep[sp->ids[i]])
			set_entry(sp, sp->ids[i], 0, 1);
	free(keep);
	if (n > sp->cap_ids) {
		uint32_t *ids = realloc(sp->ids, n * sizeof(*ids));

		if (!ids) {
			sp->n_ids = 0;
			return;
		}
		sp->ids = ids;
		sp->cap_ids = n;
	}
	sp->n_ids = 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t id = svc_at(set, set->spill[i].svc)->eps[set->spill[i].ep].id;

		if (id < sp->tab.n)
			sp->ids[sp->n_ids++] = id;
	}
}

static int grow(struct spill *sp, size_t nid)
{
	free_ids(sp);
	for (unsigned b = 0; b < SPILL_BUCKETS; b++)
		if (!(sp->cum[b] = calloc(nid, sizeof(uint64_t))))
			goto fail;
	sp->rate = calloc(nid, sizeof(double));
	sp->kept = malloc(nid * sizeof(double));
	if (!sp->rate || !sp->kept)
		goto fail;
	for (size_t i = 0; i < nid; i++)
		sp->kept[i] = 1;
	sp->nid = nid;
	return 0;
fail:
	free_ids(sp);
	return -ENOMEM;
}

/* Answers per second of id over the last `back` ticks (as many as there
 * are). */
static double rate_over(const struct spill *sp, uint32_t id, unsigned back)
{
	unsigned have = sp->filled - 1, o;
	double dt;
	uint64_t a, b;

	if (sp->filled < 2)
		return 0;
	if (back > have)
		back = have;
	o = (sp->head + SPILL_BUCKETS - back) % SPILL_BUCKETS;
	dt = sp->t[sp->head] - sp->t[o];
	a = sp->cum[sp->head][id];
	b = sp->cum[o][id];
	return dt > 0 && a > b ? (double)(a - b) / dt : 0;
}

void spill_tick(struct spill *sp, const struct svc_set *set,
		const uint64_t *counts, size_t n, double now)
{
	size_t need = spill_need(sp, set);

	forget_gone(sp, set);
	if (need == 0)
		return;
	if (need > n)
		need = n;
	if (need > sp->nid && grow(sp, need) < 0)
		return;
	sp->head = (sp->head + 1) % SPILL_BUCKETS;
	memcpy(sp->cum[sp->head], counts, need * sizeof(*counts));
	memset(sp->cum[sp->head] + need, 0, (sp->nid - need) * sizeof(*counts));
	sp->t[sp->head] = now;
	if (sp->filled < SPILL_BUCKETS)
		sp->filled++;
	for (size_t i = 0; i < set->n_spill; i++) {
		const struct svc_service *v = svc_at(set, set->spill[i].svc);
		const struct svc_endpoint *e = &v->eps[set->spill[i].ep];
		uint32_t id = e->id;
		double fast, target, k;

		if (id >= sp->nid)
			continue;
		sp->rate[id] = rate_over(sp, id, SPILL_WINDOW_S);
		fast = rate_over(sp, id, SPILL_FAST_S);
		k = sp->kept[id];
		if (v->fill <= 0 || e->capacity <= 0) {
			k = 1;
		} else if (fast > 0) {
			target = v->fill * e->capacity;
			k += (fmin(1, k * target / fast) - k) / 2;
		} else {
			/* No answers: no demand, or a share so small that
			 * no client falls in it; open up step by step rather
			 * than let everyone back at once. */
			k = 2 * k + SPILL_KEEP_MIN;
		}
		if (k > 0.99)
			k = 1;
		if (k < SPILL_KEEP_MIN)
			k = SPILL_KEEP_MIN;
		sp->kept[id] = k;
		set_entry(sp, id, fast, k);
	}
}

/* The endpoint's health as status says it (up, down, unknown), and
 * whether it may take clients (*avail: admin, drain and health). */
static const char *health_of(const struct svc_endpoint *e,
			     const struct hstate_view *hv, bool *avail)
{
	uint8_t h = HSTATE_UNKNOWN;

	if (hv && e->has_check)
		h = hstate_view_state(hv, e->id);
	*avail = e->admin == SVC_ADMIN_UP ||
		 (e->admin == SVC_ADMIN_AUTO && !e->drained &&
		  (!e->has_check || h != HSTATE_DOWN));
	if (!e->has_check)
		return "up";
	return h == HSTATE_DOWN ? "down" : h == HSTATE_UP ? "up" : "unknown";
}

static json_t *service_json(const struct spill *sp,
			    const struct svc_service *v,
			    const struct hstate_view *hv)
{
	double total_rate = 0, total_cap = 0;
	json_t *o, *eps = json_array();
	bool avail;

	if (!eps)
		return NULL;
	for (size_t j = 0; j < v->n_eps; j++) {
		const struct svc_endpoint *e = &v->eps[j];

		health_of(e, hv, &avail);
		if (e->id < sp->nid)
			total_rate += sp->rate[e->id];
		if (avail)
			total_cap += e->capacity;
	}
	for (size_t j = 0; j < v->n_eps; j++) {
		const struct svc_endpoint *e = &v->eps[j];
		double rate = e->id < sp->nid ? sp->rate[e->id] : 0;
		double kept = e->id < sp->nid ? sp->kept[e->id] : 1;
		const char *h = health_of(e, hv, &avail);
		json_t *x = json_pack("{s:s, s:o, s:f, s:s, s:f, s:f, s:f, s:f}",
			"target", e->t.text, "region", e->region[0] ?
				json_string(e->region) : json_null(),
			"capacity", e->capacity, "health", h,
			"rate", rate,
			"share", total_rate > 0 ? rate / total_rate : 0.0,
			"expected", avail && total_cap > 0 ?
				    e->capacity / total_cap : 0.0,
			"kept", kept);

		if (!x || json_array_append_new(eps, x) < 0) {
			json_decref(eps);
			return NULL;
		}
		if (v->fill > 0 && e->capacity > 0)
			json_object_set_new(x, "filled", json_real(rate /
					    e->capacity));
	}
	o = json_pack("{s:s, s:i, s:o}", "service", v->name, "window_s",
		      SPILL_WINDOW_S, "endpoints", eps);
	if (o)
		json_object_set_new(o, "fill", v->fill > 0 ?
				    json_real(v->fill) : json_null());
	return o;
}

json_t *spill_json(const struct spill *sp, const struct svc_set *set,
		   const struct hstate_view *hv)
{
	json_t *arr = json_array();

	/* set->spill lists a service's endpoints together: one object per
	 * service, at its first endpoint. */
	for (size_t i = 0; arr && set && i < set->n_spill; i++) {
		json_t *o;

		if (set->spill[i].ep != 0)
			continue;
		if (!(o = service_json(sp, svc_at(set, set->spill[i].svc), hv)) ||
		    json_array_append_new(arr, o) < 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}
