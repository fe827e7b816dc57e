/* dnsd/snap.h - the snapshot: everything a worker needs to answer, immutable
 * once published, swapped whole with liburcu (QSBR flavour).
 *
 * Design note. The control thread builds a new struct snap (possibly sharing
 * unchanged parts - zones, the name table - with the current one), then
 * snap_publish() swaps the pointer and waits for a grace period before
 * freeing what the new snapshot no longer uses. Workers call snap_current()
 * between snap_reader_online() and snap_reader_offline() around each batch
 * of packets; a worker that blocks is offline, so a grace period never
 * waits for an idle worker. Nothing reachable from a published snapshot is
 * ever written again.
 *
 * The pointer itself is a C11 atomic (release exchange, acquire load) and
 * the grace period is liburcu's QSBR synchronize_rcu(); snap.c explains
 * how ThreadSanitizer is told about the latter. */
#ifndef DNSD_SNAP_H
#define DNSD_SNAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cowvec.h"
#include "dnsd/zone.h"
#include "policy/svc.h"
#include "geo/geo.h"
#include "health/hstate.h"

/* A name-table slot: the hash and length of the name beside the pointer,
 * so a probe that does not match never touches the node (a cache miss). */
struct dnssec_set;

struct zslot {
	uint32_t hash;
	uint32_t len;
	const struct node *n;    /* NULL: empty */
};

/* One hash table of every name of every zone. Where zones nest, the deeper
 * zone's node wins, and the parent's glue below that cut is left out. */
struct zonetab {
	struct zslot *slot;
	uint32_t mask;
	struct zone **zones;     /* borrowed: the snapshot owns the zones */
	size_t n_zones;
	size_t n_names;
	/* Where a served child zone's apex hides the parent's delegation
	 * node of the same name: pairs (child apex, parent cut), for DS. */
	const struct node *(*shadowed)[2];
	size_t n_shadowed;
};

/* Settings the query path needs; copied into every snapshot. */
struct answer_conf {
	uint16_t max_udp;        /* our EDNS UDP size, default 1232 */
	uint8_t nsid_len;
	uint8_t nsid[64];
	uint8_t ecs_max_v4, ecs_max_v6;  /* trusted ECS source prefix caps */
	/* Where clients with no location are taken to be. */
	bool has_default_loc;
	struct geo_loc default_loc;
	/* Endpoint load for spill-over (dnsd/spill.h): one table for the
	 * process's life, written by the control thread, NULL without --db. */
	const struct svc_load *load;
};

struct snap {
	uint64_t gen;
	struct answer_conf conf;
	const struct zonetab *zt;
	/* Parts a new snapshot may share with the one before; the control
	 * thread frees a part when no published snapshot uses it. */
	struct zone **zones;
	size_t n_zones;
	struct geo_db *geo;          /* NULL without --geoip */
	/* Balanced names (NULL without --db), shared between snapshots, and
	 * per service (same index) the zone of this snapshot that holds it;
	 * NULL: outside every zone or below a delegation, so not served. */
	struct svc_set *svc;
	struct svc_index *svcx;
	/* Health and RTTs; changes most often, at most about once a second. */
	struct hstate_view *hv;
	/* Keys of the signed zones (dnssec.h), NULL without --dnssec-keys;
	 * loaded with the zones, shared until they are reloaded. */
	struct dnssec_set *sec;
	/* Before snap_install() only: svc differs from the installed
	 * snapshot's in the services named here (borrowed), so the index is
	 * updated rather than rebuilt. n_svc_changed 0 with svc_delta false:
	 * unknown, rebuild. */
	bool svc_delta;
	char *const *svc_changed;
	size_t n_svc_changed;
};

/* What ties a service set to a name table: per service position the zone
 * that serves it (NULL: outside every zone or below a delegation, so
 * skipped), and the empty non-terminals that service names create between
 * themselves and their zone apex (a.b.gslb.example.com makes
 * b.gslb.example.com exist, RFC 8020: it must not be NXDOMAIN).
 *
 * Both tables are copy-on-write vectors (common/cowvec.h), so an index
 * for a set that changed in k services (svc_index_update) shares all the
 * rest with the index before it. The ENT nodes live in an append-only
 * arena shared by the indexes derived from one full build and freed with
 * the last of them. */
struct svc_ents;
struct svc_index {
	struct cowvec zone;      /* const struct zone * by service position */
	struct cowvec ent;       /* struct zslot: open hash of ENT nodes */
	uint32_t ent_mask;
	size_t n_ents;
	size_t skipped;          /* services with no zone */
	struct svc_ents *nodes;  /* the ENT nodes and names */
};

/* Load time: builds the index, logging each skipped service. NULL when
 * out of memory. */
struct svc_index *svc_index_build(const struct svc_set *set,
				  const struct zonetab *zt);
/* Load time: the index of set, which differs from old (indexed by base,
 * over the same zt) in the services named names[0..n) only. NULL when out
 * of memory, or when a removed service made empty non-terminals (those
 * may have to go: build the index again). */
struct svc_index *svc_index_update(const struct svc_index *base,
				   const struct svc_set *old,
				   const struct svc_set *set,
				   const struct zonetab *zt,
				   char *const *names, size_t n);
void svc_index_free(struct svc_index *x);      /* NULL is fine */

/* The zone serving a service in this snapshot, or NULL. Query path. */
static inline const struct zone *snap_svc_zone(const struct snap *s,
					       const struct svc_service *v)
{
	return *(const struct zone *const *)cowvec_at(&s->svcx->zone, v->pos);
}

/* Query path: the empty non-terminal made by service names, or NULL. */
const struct node *snap_svc_ent(const struct snap *s, const uint8_t *name,
				size_t len);

/* Builds the name table over zones (borrowed). Load time. NULL on ENOMEM;
 * *conflict gets a description of skipped duplicate apexes, if any. */
struct zonetab *zonetab_build(struct zone *const *zones, size_t n);
void zonetab_free(struct zonetab *t);

/* Query path: exact lookup of a lower-cased wire name. */
const struct node *zonetab_find(const struct zonetab *t, const uint8_t *name,
				size_t len);
/* Query path, for batches: warms the cache for a later lookup of a name
 * with hash h. Stage 0 fetches its home slot; stage 1 (after stage 0 ran
 * for the whole batch) fetches the node that slot points to. Looking up a
 * name costs two dependent cache misses (slot, node) that the kernel's
 * work between packets makes likely; overlapping them across a batch
 * hides most of that latency. */
static inline void zonetab_prefetch(const struct zonetab *t, uint32_t h,
				    int stage)
{
	const struct zslot *slot = &t->slot[h & t->mask];

	if (stage == 0) {
		__builtin_prefetch(slot);
	} else if (slot->n && slot->hash == h) {
		__builtin_prefetch(slot->n);
		__builtin_prefetch((const char *)slot->n + 64);
	}
}

/* Query path: the parent zone's delegation node hidden by the served
 * child apex, or NULL (not nested, or the parent is not served). */
const struct node *zonetab_parent_cut(const struct zonetab *t,
				      const struct node *apex);
/* Query path: the closest existing ancestor of name (name itself excluded)
 * or NULL when name is outside every zone. */
const struct node *zonetab_encloser(const struct zonetab *t,
				    const uint8_t *name, size_t len);

/* The snapshot in force. Call only from an online RCU reader thread. */
const struct snap *snap_current(void);
/* Makes s current, waits for readers of the old one, and returns the old
 * one (or NULL) for the caller to free what s does not share. Control
 * thread only. */
struct snap *snap_publish(struct snap *s);

/* An answering thread (registered with rcu_register_thread()) becomes a
 * reader before it takes snap_current() and stops being one when it is
 * done with that snapshot - before it blocks, and at the latest after each
 * batch - so snap_publish() never waits for an idle thread. Both are
 * rcu_thread_online()/rcu_thread_offline(), the offline one also telling
 * ThreadSanitizer about the grace period (see snap.c). */
void snap_reader_online(void);
void snap_reader_offline(void);

/* Lifecycle, control thread only. A snapshot is built by cloning the one
 * in force and replacing the parts that changed; snap_install() publishes
 * it and frees what the old one no longer shares with it. */

/* A new unpublished snapshot sharing every part of base (NULL: empty),
 * with room for zone_cap zones, the settings conf (copied, parsed once at
 * load) and generation gen. NULL when out of memory. */
struct snap *snap_clone(const struct snap *base, size_t zone_cap,
			const struct answer_conf *conf, uint64_t gen);
/* Gives s the zones in zones[] (NULL entries skipped) and a new name table
 * over them. 0 or -ENOMEM (s unchanged). */
int snap_set_zones(struct snap *s, struct zone **zones, size_t n);
/* Frees old (retired, no reader left), except the parts cur still uses.
 * NULL old is fine; NULL cur frees everything. */
void snap_retire(struct snap *old, const struct snap *cur);
/* Throws away s, never published: only the parts base (the snapshot in
 * force) does not share. */
void snap_discard(struct snap *s, const struct snap *base);
/* Publishes s in place of cur (the snapshot in force, or NULL). The
 * per-service zones (svc_index) are rebuilt when its services or zones
 * differ from cur's (updated only for the changed services when
 * s->svc_delta says which). Returns 0 (cur retired: freed but what s shares), or
 * -ENOMEM (logged; s discarded, cur stays in force). */
int snap_install(struct snap *s, const struct snap *cur);

#endif
