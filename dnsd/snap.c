/* dnsd/snap.c - name table and snapshot swap; see snap.h. */
#include "dnsd/snap.h"

#include <errno.h>

#include <stdlib.h>
#include <string.h>

#include <urcu-qsbr.h>

#include "common/log.h"
#include "dnsd/dnssec.h"
#include "dnsd/wire.h"

static struct snap *current;

static uint32_t depth_of(const struct zone *z)
{
	return z->apex->labels;
}

static int by_depth(const void *a, const void *b)
{
	const struct zone *x = *(struct zone *const *)a;
	const struct zone *y = *(struct zone *const *)b;

	return (int)depth_of(x) - (int)depth_of(y);
}

/* The slot holding n's name, or the empty slot where it would go. */
static struct zslot *slot_of(struct zslot *slot, uint32_t mask,
			     const uint8_t *name, size_t len, uint32_t h)
{
	size_t i;

	for (i = h & mask; slot[i].n; i = (i + 1) & mask)
		if (slot[i].hash == h && slot[i].len == len &&
		    memcmp(slot[i].n->name, name, len) == 0)
			break;
	return &slot[i];
}

static struct zslot *node_slot(struct zonetab *t, const struct node *n)
{
	return slot_of(t->slot, t->mask, n->name, n->name_len, n->hash);
}

struct zonetab *zonetab_build(struct zone *const *zones, size_t n)
{
	struct zonetab *t = calloc(1, sizeof(*t));
	struct zone **sorted = NULL;
	size_t total = 0, size = 64;

	if (!t)
		return NULL;
	for (size_t i = 0; i < n; i++)
		total += zones[i]->n_nodes;
	while (size < total * 2)
		size *= 2;
	t->slot = calloc(size, sizeof(*t->slot));
	t->shadowed = calloc(n ? n : 1, sizeof(*t->shadowed));
	sorted = malloc((n ? n : 1) * sizeof(*sorted));
	if (!t->slot || !t->shadowed || !sorted) {
		free(sorted);
		zonetab_free(t);
		return NULL;
	}
	t->mask = (uint32_t)(size - 1);
	memcpy(sorted, zones, n * sizeof(*sorted));
	/* Shallow zones first, so a child zone's names replace its parent's
	 * delegation and glue. */
	qsort(sorted, n, sizeof(*sorted), by_depth);
	for (size_t i = 0; i < n; i++) {
		const struct zone *z = sorted[i];

		for (size_t k = 0; k < z->n_nodes; k++) {
			struct node *nd = z->nodes[k];
			struct zslot *s;

			/* Parent glue under a cut that we serve ourselves. */
			if ((nd->flags & NODE_OCCLUDED) &&
			    (s = node_slot(t, nd->cut))->n && s->n->zone != z)
				continue;
			s = node_slot(t, nd);
			if (!s->n) {
				t->n_names++;
			} else if ((nd->flags & NODE_APEX) && (s->n->flags & NODE_CUT) &&
				   t->n_shadowed < n) {
				t->shadowed[t->n_shadowed][0] = nd;
				t->shadowed[t->n_shadowed][1] = s->n;
				t->n_shadowed++;
			}
			s->hash = nd->hash;
			s->len = nd->name_len;
			s->n = nd;
		}
	}
	t->zones = sorted;
	t->n_zones = n;
	return t;
}

void zonetab_free(struct zonetab *t)
{
	if (!t)
		return;
	free(t->slot);
	free(t->zones);
	free(t->shadowed);
	free(t);
}

/* Open addressing with linear probing; the table always has free slots. */
static const struct node *slots_find(const struct zslot *slot, uint32_t mask,
				     const uint8_t *name, size_t len)
{
	uint32_t h = zone_name_hash(name, len);

	for (size_t i = h & mask;; i = (i + 1) & mask) {
		const struct zslot *z = &slot[i];

		if (!z->n)
			return NULL;
		if (z->hash == h && z->len == len &&
		    memcmp(z->n->name, name, len) == 0)
			return z->n;
	}
}

const struct node *zonetab_find(const struct zonetab *t, const uint8_t *name,
				size_t len)
{
	return slots_find(t->slot, t->mask, name, len);
}

const struct node *snap_svc_ent(const struct snap *s, const uint8_t *name,
				size_t len)
{
	if (!s->svcx || !s->svcx->n_ents)
		return NULL;
	return slots_find(s->svcx->ent_slot, s->svcx->ent_mask, name, len);
}

void svc_index_free(struct svc_index *x)
{
	if (!x)
		return;
	free(x->zone);
	free(x->ent_slot);
	arena_fini(&x->arena);
	free(x);
}

/* Adds an ENT node for name in zone z unless it is there already. */
static int ent_add(struct svc_index *x, const uint8_t *name, size_t len,
		   const struct zone *z)
{
	uint32_t h = zone_name_hash(name, len);
	struct zslot *s = slot_of(x->ent_slot, x->ent_mask, name, len, h);
	struct node *n;

	if (s->n)
		return 0;
	n = arena_calloc(&x->arena, sizeof(*n));
	if (!n || !(n->name = arena_memdup(&x->arena, name, len)))
		return -ENOMEM;
	n->hash = h;
	n->name_len = (uint8_t)len;
	n->labels = (uint8_t)wire_name_labels(name);
	n->zone = z;
	s->hash = h;
	s->len = (uint32_t)len;
	s->n = n;
	x->n_ents++;
	return 0;
}

struct svc_index *svc_index_build(const struct svc_set *set,
				  const struct zonetab *zt)
{
	struct svc_index *x = calloc(1, sizeof(*x));
	size_t size = 64;

	if (!x)
		return NULL;
	arena_init(&x->arena);
	/* Each service adds at most a few ENTs; 2 x 4 per service is ample
	 * and keeps the load factor under one half. */
	while (size < set->n * 8)
		size *= 2;
	x->zone = calloc(set->n + 1, sizeof(*x->zone));
	x->ent_slot = calloc(size, sizeof(*x->ent_slot));
	if (!x->zone || !x->ent_slot)
		goto fail;
	x->ent_mask = (uint32_t)(size - 1);
	for (size_t i = 0; i < set->n; i++) {
		const struct svc_service *v = &set->svcs[i];
		const struct node *n = zonetab_find(zt, v->wire, v->wire_len);
		const uint8_t *p = v->wire;
		size_t len = v->wire_len;

		if (!n)
			n = zonetab_encloser(zt, v->wire, v->wire_len);
		if (!n) {
			log_warn("db: service %s: outside every zone served; skipped",
				 v->name);
			x->skipped++;
			continue;
		}
		if (n->flags & (NODE_CUT | NODE_OCCLUDED)) {
			log_warn("db: service %s: at or below a delegation in zone %s; skipped",
				 v->name, n->zone->origin);
			x->skipped++;
			continue;
		}
		x->zone[i] = n->zone;
		/* Names between the service and the zone that the zone does
		 * not have become empty non-terminals. */
		while (len > n->zone->apex->name_len) {
			len -= (size_t)*p + 1;
			p += *p + 1;
			if (zonetab_find(zt, p, len))
				break;
			if (x->n_ents * 2 >= size || ent_add(x, p, len, n->zone) < 0)
				goto fail;
		}
	}
	return x;
fail:
	svc_index_free(x);
	return NULL;
}

const struct node *zonetab_parent_cut(const struct zonetab *t,
				      const struct node *apex)
{
	for (size_t i = 0; i < t->n_shadowed; i++)
		if (t->shadowed[i][0] == apex)
			return t->shadowed[i][1];
	return NULL;
}

const struct node *zonetab_encloser(const struct zonetab *t,
				    const uint8_t *name, size_t len)
{
	while (len > 1) {
		const struct node *n;

		len -= (size_t)*name + 1;
		name += *name + 1;
		if ((n = zonetab_find(t, name, len)) != NULL)
			return n;
	}
	return NULL;
}

const struct snap *snap_current(void)
{
	return rcu_dereference(current);
}

struct snap *snap_publish(struct snap *s)
{
	struct snap *old = rcu_xchg_pointer(&current, s);

	synchronize_rcu();
	return old;
}

/* ------------------------------------------------------------ lifecycle */

struct snap *snap_clone(const struct snap *base, size_t zone_cap,
			const struct answer_conf *conf, uint64_t gen)
{
	struct snap *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->zones = calloc(zone_cap + 1, sizeof(*s->zones));
	if (!s->zones) {
		free(s);
		return NULL;
	}
	if (base) {
		memcpy(s->zones, base->zones, base->n_zones * sizeof(*s->zones));
		s->n_zones = base->n_zones;
		s->zt = base->zt;
		s->geo = base->geo;
		s->svc = base->svc;
		s->svcx = base->svcx;
		s->hv = base->hv;
		s->sec = base->sec;
	}
	s->conf = *conf;
	s->gen = gen;
	return s;
}

int snap_set_zones(struct snap *s, struct zone **zones, size_t n)
{
	struct zonetab *zt;
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		if (zones[i])
			s->zones[k++] = zones[i];
	zt = zonetab_build(s->zones, k);
	if (!zt)
		return -ENOMEM;
	s->n_zones = k;
	s->zt = zt;
	return 0;
}

static bool has_zone(const struct snap *s, const struct zone *z)
{
	for (size_t i = 0; s && i < s->n_zones; i++)
		if (s->zones[i] == z)
			return true;
	return false;
}

void snap_retire(struct snap *old, const struct snap *cur)
{
	if (!old)
		return;
	for (size_t i = 0; i < old->n_zones; i++)
		if (!has_zone(cur, old->zones[i]))
			zone_free(old->zones[i]);
	if (!cur || old->zt != cur->zt)
		zonetab_free((struct zonetab *)old->zt);
	if (!cur || old->geo != cur->geo)
		geo_free(old->geo);
	if (!cur || old->svc != cur->svc)
		svc_set_free(old->svc);
	if (!cur || old->svcx != cur->svcx)
		svc_index_free(old->svcx);
	if (!cur || old->hv != cur->hv)
		hstate_view_free(old->hv);
	if (!cur || old->sec != cur->sec)
		dnssec_set_free(old->sec);
	free(old->zones);
	free(old);
}

void snap_discard(struct snap *s, const struct snap *base)
{
	snap_retire(s, base);
}

int snap_install(struct snap *s, const struct snap *cur)
{
	struct snap *old;

	if (s->svc && (!cur || s->svc != cur->svc || s->zt != cur->zt)) {
		s->svcx = svc_index_build(s->svc, s->zt);
		if (!s->svcx) {
			log_err("snapshot: out of memory, keeping the one in force");
			snap_discard(s, cur);
			return -ENOMEM;
		}
	} else if (!s->svc) {
		s->svcx = NULL;
	}
	old = snap_publish(s);
	snap_retire(old, s);
	return 0;
}
