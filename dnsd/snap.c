/* dnsd/snap.c - name table and snapshot swap; see snap.h. */
#include "dnsd/snap.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <urcu-qsbr.h>

#include "common/log.h"
#include "dnsd/dnssec.h"
#include "dnsd/wire.h"

/* The grace period as ThreadSanitizer sees it.
 *
 * Publishing is ordinary C11: the control thread fills a snapshot, then
 * swaps `current` with release ordering; a reader loads it with acquire
 * ordering (a plain load on x86-64, as rcu_dereference() is), so every
 * write that built the snapshot happens before every read of it. The
 * sanitizer understands that on its own.
 *
 * Reclaiming is liburcu's QSBR: synchronize_rcu() returns once every
 * registered reader has been offline (or passed a quiescent state) since
 * the swap, and the memory barriers in rcu_thread_offline() and in
 * synchronize_rcu() order each reader's last reads of the old snapshot
 * before the frees that follow. That ordering lives in liburcu's own
 * compiled code, which is not instrumented, and the Debian 12 version
 * (0.13) has no sanitizer support of its own, so ThreadSanitizer sees a
 * free on the control thread racing with a read on a worker - hundreds of
 * false reports that would bury a real one. Instead of suppressing them,
 * the protocol is annotated where it happens: a reader releases
 * `grace` just before it goes offline (its reads of the snapshot are
 * done), and snap_publish() acquires `grace` right after
 * synchronize_rcu(), before the caller frees anything. The sanitizer then
 * orders what liburcu orders: the reads a reader did before going
 * offline against the frees after the grace period. Without
 * -fsanitize=thread both annotations compile to nothing. */
#if defined(__SANITIZE_THREAD__)
#define SNAP_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SNAP_TSAN 1
#endif
#endif
#ifdef SNAP_TSAN
#include <sanitizer/tsan_interface.h>
static char grace;
#define grace_release() __tsan_release(&grace)
#define grace_acquire() __tsan_acquire(&grace)
#else
#define grace_release() ((void)0)
#define grace_acquire() ((void)0)
#endif

static struct snap *_Atomic current;

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

/* The ENT nodes of the indexes derived from one full build: append-only,
 * freed with the last index that uses them. */
struct svc_ents {
	uint32_t refs;
	struct arena arena;
};

static const struct zslot *ent_slot(const struct svc_index *x, size_t i)
{
	return cowvec_at(&x->ent, i);
}

const struct node *snap_svc_ent(const struct snap *s, const uint8_t *name,
				size_t len)
{
	const struct svc_index *x = s->svcx;
	uint32_t h;

	if (!x || !x->n_ents)
		return NULL;
	h = zone_name_hash(name, len);
	for (size_t i = h & x->ent_mask;; i = (i + 1) & x->ent_mask) {
		const struct zslot *z = ent_slot(x, i);

		if (!z->n)
			return NULL;
		if (z->hash == h && z->len == len &&
		    memcmp(z->n->name, name, len) == 0)
			return z->n;
	}
}

void svc_index_free(struct svc_index *x)
{
	if (!x)
		return;
	cowvec_fini(&x->zone);
	cowvec_fini(&x->ent);
	if (x->nodes && --x->nodes->refs == 0) {
		arena_fini(&x->nodes->arena);
		free(x->nodes);
	}
	free(x);
}

/* The slot of name in the ENT hash, or the empty one where it would go. */
static size_t ent_pos(const struct svc_index *x, const uint8_t *name,
		      size_t len, uint32_t h)
{
	size_t i;

	for (i = h & x->ent_mask;; i = (i + 1) & x->ent_mask) {
		const struct zslot *z = ent_slot(x, i);

		if (!z->n || (z->hash == h && z->len == len &&
			      memcmp(z->n->name, name, len) == 0))
			return i;
	}
}

static int ent_put(struct svc_index *x, const struct zslot *z)
{
	struct zslot *d = cowvec_mut(&x->ent, ent_pos(x, z->n->name, z->len,
						      z->hash));

	if (!d)
		return -ENOMEM;
	*d = *z;
	return 0;
}

/* An ENT hash of size slots (a power of two) holding x's ENTs. */
static int ent_resize(struct svc_index *x, size_t size)
{
	struct cowvec old = x->ent;
	uint32_t old_mask = x->ent_mask;
	size_t old_size = old.n_chunks ? (size_t)old_mask + 1 : 0;

	cowvec_init(&x->ent, sizeof(struct zslot), NULL);
	x->ent_mask = (uint32_t)(size - 1);
	if (cowvec_reserve(&x->ent, size) < 0)
		goto fail;
	for (size_t i = 0; i < old_size; i++) {
		const struct zslot *z = cowvec_at(&old, i);

		if (z->n && ent_put(x, z) < 0)
			goto fail;
	}
	cowvec_fini(&old);
	return 0;
fail:
	cowvec_fini(&x->ent);
	x->ent = old;
	x->ent_mask = old_mask;
	return -ENOMEM;
}

/* Adds an ENT node for name in zone z unless it is there already. */
static int ent_add(struct svc_index *x, const uint8_t *name, size_t len,
		   const struct zone *z)
{
	uint32_t h = zone_name_hash(name, len);
	struct zslot s;
	struct node *n;

	if (ent_slot(x, ent_pos(x, name, len, h))->n)
		return 0;
	if ((x->n_ents + 1) * 2 > (size_t)x->ent_mask + 1 &&
	    ent_resize(x, ((size_t)x->ent_mask + 1) * 2) < 0)
		return -ENOMEM;
	n = arena_calloc(&x->nodes->arena, sizeof(*n));
	if (!n || !(n->name = arena_memdup(&x->nodes->arena, name, len)))
		return -ENOMEM;
	n->hash = h;
	n->name_len = (uint8_t)len;
	n->labels = (uint8_t)wire_name_labels(name);
	n->zone = z;
	s.hash = h;
	s.len = (uint32_t)len;
	s.n = n;
	x->n_ents++;
	return ent_put(x, &s);
}

/* Ties service v to its zone in x (and adds the ENTs its name makes);
 * logs and counts it when no zone serves it. */
static int index_one(struct svc_index *x, const struct svc_service *v,
		     const struct zonetab *zt)
{
	const struct node *n = zonetab_find(zt, v->wire, v->wire_len);
	const struct zone **slot;
	const uint8_t *p = v->wire;
	size_t len = v->wire_len;

	if (!(slot = cowvec_mut(&x->zone, v->pos)))
		return -ENOMEM;
	*slot = NULL;
	if (!n)
		n = zonetab_encloser(zt, v->wire, v->wire_len);
	if (!n) {
		log_warn("db: service %s: outside every zone served; skipped",
			 v->name);
		x->skipped++;
		return 0;
	}
	if (n->flags & (NODE_CUT | NODE_OCCLUDED)) {
		log_warn("db: service %s: at or below a delegation in zone %s; skipped",
			 v->name, n->zone->origin);
		x->skipped++;
		return 0;
	}
	*slot = n->zone;
	/* Names between the service and the zone that the zone does not
	 * have become empty non-terminals. */
	while (len > n->zone->apex->name_len) {
		len -= (size_t)*p + 1;
		p += *p + 1;
		if (zonetab_find(zt, p, len))
			break;
		if (ent_add(x, p, len, n->zone) < 0)
			return -ENOMEM;
	}
	return 0;
}

static struct svc_index *index_new(void)
{
	struct svc_index *x = calloc(1, sizeof(*x));

	if (!x)
		return NULL;
	cowvec_init(&x->zone, sizeof(const struct zone *), NULL);
	cowvec_init(&x->ent, sizeof(struct zslot), NULL);
	return x;
}

struct svc_index *svc_index_build(const struct svc_set *set,
				  const struct zonetab *zt)
{
	struct svc_index *x = index_new();

	if (!x)
		return NULL;
	x->nodes = calloc(1, sizeof(*x->nodes));
	if (!x->nodes)
		goto fail;
	x->nodes->refs = 1;
	arena_init(&x->nodes->arena);
	if (cowvec_reserve(&x->zone, set->n_pos + 1) < 0 ||
	    ent_resize(x, 64) < 0)
		goto fail;
	for (size_t i = 0; i < set->n_pos; i++) {
		const struct svc_service *v = svc_at(set, i);

		if (v && index_one(x, v, zt) < 0)
			goto fail;
	}
	return x;
fail:
	svc_index_free(x);
	return NULL;
}

/* Whether one of the names between v and its zone apex is an ENT of x. */
static bool has_ents(const struct svc_index *x, const struct svc_service *v)
{
	const struct zone *z = *(const struct zone *const *)
		cowvec_at(&x->zone, v->pos);
	const uint8_t *p = v->wire;
	size_t len = v->wire_len;

	if (!z || !x->n_ents)
		return false;
	while (len > z->apex->name_len) {
		len -= (size_t)*p + 1;
		p += *p + 1;
		if (ent_slot(x, ent_pos(x, p, len, zone_name_hash(p, len)))->n)
			return true;
	}
	return false;
}

struct svc_index *svc_index_update(const struct svc_index *base,
				   const struct svc_set *old,
				   const struct svc_set *set,
				   const struct zonetab *zt,
				   char *const *names, size_t n)
{
	struct svc_index *x = index_new();

	if (!x)
		return NULL;
	if (cowvec_clone(&x->zone, &base->zone) < 0 ||
	    cowvec_clone(&x->ent, &base->ent) < 0 ||
	    cowvec_reserve(&x->zone, set->n_pos + 1) < 0)
		goto fail;
	x->ent_mask = base->ent_mask;
	x->n_ents = base->n_ents;
	x->skipped = base->skipped;
	x->nodes = base->nodes;
	x->nodes->refs++;
	for (size_t i = 0; i < n; i++) {
		const struct svc_service *ov = svc_find_text(old, names[i]);
		const struct svc_service *nv = svc_find_text(set, names[i]);

		if (ov) {
			const struct zone *const *z = cowvec_at(&x->zone,
								ov->pos);
			const struct zone **w;

			if (!nv && has_ents(x, ov))
				goto fail;      /* they may have to go */
			if (!*z)
				x->skipped--;
			if (!(w = cowvec_mut(&x->zone, ov->pos)))
				goto fail;
			*w = NULL;
		}
		if (nv && index_one(x, nv, zt) < 0)
			goto fail;
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
	return atomic_load_explicit(&current, memory_order_acquire);
}

struct snap *snap_publish(struct snap *s)
{
	struct snap *old = atomic_exchange_explicit(&current, s,
						    memory_order_acq_rel);

	synchronize_rcu();
	grace_acquire();
	return old;
}

void snap_reader_online(void)
{
	rcu_thread_online();
}

void snap_reader_offline(void)
{
	grace_release();
	rcu_thread_offline();
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
		s->svcx = NULL;
		if (s->svc_delta && cur && cur->svc && cur->svcx &&
		    s->zt == cur->zt)
			s->svcx = svc_index_update(cur->svcx, cur->svc, s->svc,
						   s->zt, s->svc_changed,
						   s->n_svc_changed);
		if (!s->svcx)
			s->svcx = svc_index_build(s->svc, s->zt);
		if (!s->svcx) {
			log_err("snapshot: out of memory, keeping the one in force");
			snap_discard(s, cur);
			return -ENOMEM;
		}
	} else if (!s->svc) {
		s->svcx = NULL;
	}
	s->svc_delta = false;
	s->svc_changed = NULL;
	s->n_svc_changed = 0;
	old = snap_publish(s);
	snap_retire(old, s);
	return 0;
}
