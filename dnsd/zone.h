/* dnsd/zone.h - zones in memory: names -> pre-encoded RRsets, built from
 * RFC 1035 master files with ldns at load time, then immutable.
 *
 * Load time (control thread): zone_load() parses and builds; the result is
 * never changed again and may be shared by several snapshots. Query path
 * (workers): reads nodes and RRsets through the name table (zonetab.h).
 *
 * Wire layout of an RRset (struct rrset.data): count records, each
 *   C0 0C | TYPE | CLASS | TTL | RDLENGTH | RDATA
 * i.e. already owned by "the query name" through a compression pointer to
 * offset 12, so answering the common case is one memcpy. To write it under
 * another owner, skip the first two octets of each record. Names inside
 * RDATA are uncompressed. */
#ifndef DNSD_ZONE_H
#define DNSD_ZONE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"

struct rrset {
	uint16_t type;
	uint16_t count;
	uint32_t len;            /* octets in data */
	const uint8_t *data;
	/* Additional-section records for NS/MX/SRV targets inside the zone
	 * (A then AAAA), in full wire form with uncompressed owners. For a
	 * delegation's NS this is all its glue. */
	const uint8_t *add;
	uint32_t add_len;
	uint16_t add_count;
};

enum {
	NODE_APEX = 1,      /* the zone's top: SOA and NS */
	NODE_CUT = 2,       /* a delegation point: NS below the apex */
	NODE_OCCLUDED = 4,  /* below a delegation: glue, never authoritative */
};

struct zone;

struct node {
	const uint8_t *name;     /* lower-cased wire name */
	uint32_t hash;
	uint8_t name_len;
	uint8_t labels;
	uint8_t flags;
	uint16_t n_rrsets;       /* 0: an empty non-terminal */
	const struct rrset *rrsets;   /* sorted by type */
	const struct node *wild; /* the "*" child, if any (RFC 4592) */
	const struct node *cut;  /* NODE_OCCLUDED: the delegation above */
	const struct zone *zone;
};

struct zone {
	const char *file;
	const char *origin;      /* text, with the trailing dot */
	const struct node *apex;
	uint32_t serial;
	/* The SOA for negative answers, full wire form, TTL already
	 * min(SOA TTL, SOA MINIMUM) (RFC 2308 3). */
	const uint8_t *neg_soa;
	uint32_t neg_soa_len;
	struct node **nodes;     /* every node, empty non-terminals included */
	size_t n_nodes;
	size_t n_records;
	struct arena arena;      /* everything above lives here */
};

/* Parses FILE and builds the zone. origin may be NULL (then $ORIGIN or the
 * SOA owner decides). On error returns a negative errno and writes
 * "file:line: reason" to err. Caller owns the zone: zone_free(). */
int zone_load(const char *file, const char *origin, struct zone **out,
	      char *err, size_t errlen);
void zone_free(struct zone *z);

/* RRset of the given type at a node, or NULL. Query path. */
static inline const struct rrset *zone_rrset(const struct node *n,
					     uint16_t type)
{
	for (unsigned i = 0; i < n->n_rrsets; i++)
		if (n->rrsets[i].type == type)
			return &n->rrsets[i];
	return NULL;
}

/* The hash used for every name table (names are lower-cased wire). */
uint32_t zone_name_hash(const uint8_t *name, size_t len);

#endif
