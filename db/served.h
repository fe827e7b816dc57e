/* db/served.h - the zones each dnsd serves, as dnsd recorded them in the
 * store (table served_zones, schema version 7), so that gslbctl can flag a
 * service whose name no dnsd would answer.
 *
 * dnsd writes its apex names when its zones load (start and SIGHUP), under
 * its node name; gslbctl reads the union over every node. A store that
 * holds no row knows nothing about the zones: nothing is flagged then. The
 * table is not configuration: it records no store version and is not
 * replicated by --etcd (each node's store holds its own).
 *
 * Load time only (dnsd's control thread, gslbctl). */
#ifndef DB_SERVED_H
#define DB_SERVED_H
#include <stdbool.h>
#include <stddef.h>

struct store;
struct served;                  /* opaque: the zones known, in memory */

/* Replaces node's rows with the apex names apex[0..n) (any case, with or
 * without the final dot; "." is the root) in one transaction. 0, or a
 * negative errno with err ("served zones: ..."): -EINVAL for an empty
 * node name or an apex that is not a domain name, -EIO. */
int served_record(struct store *db, const char *node,
                  const char *const *apex, size_t n, char *err,
                  size_t errlen);

/* Reads every node's zones into *out (caller frees it with served_free).
 * A store older than schema version 7 read-only has no table: an empty
 * set. 0 or a negative errno with err. */
int served_load(struct store *db, struct served **out, char *err,
                size_t errlen);
void served_free(struct served *z);     /* NULL is fine */

/* The number of distinct zones known (0: nothing can be flagged). */
size_t served_count(const struct served *z);

/* True when zones are known and name (a service name, canonical or not,
 * case-insensitive, final dot optional) is at or under none of them. */
bool served_outside(const struct served *z, const char *name);

/* The zones known, as "a.example., b.example." into buf: each distinct
 * apex once, sorted, ending in "..." when they do not fit. Returns buf. */
const char *served_list(const struct served *z, char *buf, size_t len);

#endif
