/* dnsd/snap.c - name table and snapshot swap; see snap.h. */
#include "dnsd/snap.h"

#include <errno.h>

#include <stdlib.h>
#include <string.h>

#include <urcu-qsbr.h>

#include "common/log.h"
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

static struct node **slot_of(struct zonetab *t, const struct node *n)
{
	size_t i;

	for (i = n->hash & t->mask; t->slot[i]; i = (i + 1) & t->mask) {
		const struct node *o = t->slot[i];

		if (o->hash == n->hash && o->name_len == n->name_len &&
		    memcmp(o->name, n->name, n->name_len) == 0)
			break;
	}
	return &t->slot[i];
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
			struct node **s;

			/* Parent glue under a cut that we serve ourselves. */
			if ((nd->flags & NODE_OCCLUDED) &&
			    (s = slot_of(t, nd->cut)) && *s && (*s)->zone != z)
				continue;
			s = slot_of(t, nd);
			if (!*s) {
				t->n_names++;
			} else if ((nd->flags & NODE_APEX) && ((*s)->flags & NODE_CUT) &&
				   t->n_shadowed < n) {
				t->shadowed[t->n_shadowed][0] = nd;
				t->shadowed[t->n_shadowed][1] = *s;
				t->n_shadowed++;
			}
			*s = nd;
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
static const struct node *slots_find(struct node *const *slot, uint32_t mask,
				     const uint8_t *name, size_t len)
{
	uint32_t h = zone_name_hash(name, len);

	for (size_t i = h & mask;; i = (i + 1) & mask) {
		const struct node *n = slot[i];

		if (!n)
			return NULL;
		if (n->hash == h && n->name_len == len &&
		    memcmp(n->name, name, len) == 0)
			return n;
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
	size_t i;
	struct node *n;

	for (i = h & x->ent_mask; x->ent_slot[i]; i = (i + 1) & x->ent_mask) {
		const struct node *o = x->ent_slot[i];

		if (o->hash == h && o->name_len == len && memcmp(o->name, name, len) == 0)
			return 0;
	}
	n = arena_calloc(&x->arena, sizeof(*n));
	if (!n || !(n->name = arena_memdup(&x->arena, name, len)))
		return -ENOMEM;
	n->hash = h;
	n->name_len = (uint8_t)len;
	n->labels = (uint8_t)wire_name_labels(name);
	n->zone = z;
	x->ent_slot[i] = n;
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
