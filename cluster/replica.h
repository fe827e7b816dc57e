/* cluster/replica.h - a store as a replica of the configuration a cluster
 * keeps in etcd. The key space under PREFIX (default "/gslb/"):
 *
 *   PREFIX "services/" NAME  one service, as one element of the "services"
 *                            list of the export format (db/export.h); NAME
 *                            is its canonical name ("www.example.com.");
 *   PREFIX "audit/" ID       the audit rows of the change written in the
 *                            same transaction ([{"time", "who", "source",
 *                            "op", "kind", "service", "target" or "match",
 *                            "field", "old", "new"}]);
 *   PREFIX "nodes/" NODE     a node's applied revision, on a lease
 *                            ({"revision": N, "time": T, ...});
 *
 * anything else under PREFIX is ignored (with one warning). The replica
 * applies changes through db/sync.h, so the store's version, change log
 * and audit trail move as for any other write and rows that stay keep
 * their ids. A bad value (not JSON, not a valid service, a name that is
 * not the key's) is skipped with a warning naming the key and revision and
 * counted; the store keeps what it had for that service, and everything
 * else is applied.
 *
 * Load time only; a replica belongs to one thread (the one that owns the
 * store handle). */
#ifndef CLUSTER_REPLICA_H
#define CLUSTER_REPLICA_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct etcd;
struct etcd_event;
struct etcd_range;
struct store;
struct replica;

#define REPLICA_PREFIX_DEFAULT "/gslb/"

/* Counters and position (for status and metrics). */
struct replica_stats {
	int64_t revision;        /* applied up to (the watch resumes after) */
	int64_t config_revision; /* revision of the last configuration change */
	uint64_t invalid;        /* bad values skipped */
	uint64_t resyncs;        /* full syncs */
	uint64_t catchups;       /* catch-ups from ranges (replica_catchup) */
	uint64_t changes;        /* store changes applied (plan rows) */
};

/* A replica of prefix over db (borrowed; must outlive it). Reads the
 * position recorded in db; a position recorded for another prefix counts
 * as none. NULL with err on failure. */
struct replica *replica_new(struct store *db, const char *prefix, char *err,
                            size_t errlen);
void replica_free(struct replica *r);            /* NULL is fine */

void replica_stats(const struct replica *r, struct replica_stats *out);

/* Replaces the whole configuration with rg (a range of every key under the
 * prefix, at one revision), keeping what stays, in one transaction; records
 * rg's revision. 0 or a negative errno with err (then nothing changed). */
int replica_full(struct replica *r, const struct etcd_range *rg, char *err,
                 size_t errlen);

/* Catches up from far behind without replaying history: services is a
 * range of PREFIX "services/" (every service, at one revision R), audit
 * one of PREFIX "audit/" at R holding the keys changed after the
 * revision applied (etcd_range_since). The store becomes equal to the
 * services, in one transaction recording R, with the writers' audit rows
 * in revision order when they name every service that changed (else the
 * node's own diff, as for a watch response that mixes both). Replaying a
 * long history through the watch costs etcd a scan of everything after
 * the start revision for every 1,000 revisions it sends; this costs the
 * size of the configuration and of the new audit rows. 0 or a negative
 * errno with err (then nothing changed). */
int replica_catchup(struct replica *r, const struct etcd_range *services,
                    const struct etcd_range *audit, char *err,
                    size_t errlen);

/* Applies the events of one watch response (in revision order) in one
 * transaction: each revision's service puts and deletes as one write,
 * with that revision's audit rows when it has some. 0 or a negative errno
 * with err (then nothing changed and the position stays). */
int replica_events(struct replica *r, const struct etcd_event *ev, size_t n,
                   char *err, size_t errlen);

/* A store at path (":memory:" for a private one; created with the schema)
 * holding the configuration of rg (a range of every key under prefix),
 * e.g. to run a command against the cluster's configuration. Bad values
 * are skipped with a warning. 0 with *out (caller closes it), or a
 * negative errno with err. */
int replica_scratch(const struct etcd_range *rg, const char *prefix,
                    const char *path, struct store **out, char *err,
                    size_t errlen);

#endif
