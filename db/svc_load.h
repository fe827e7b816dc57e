/* db/svc_load.h - the service set (policy/svc.h) read from the store.
 *
 * Load time only (dnsd's control thread, gslbctl): reads every service,
 * endpoint and rule in one read transaction into an arena-backed struct
 * svc_set. Invalid rows are skipped and recorded as problem strings; the set
 * is never written after it is published. */
#ifndef DB_SVC_LOAD_H
#define DB_SVC_LOAD_H
#include <stddef.h>

struct store;


#include "policy/svc.h"

/* Reads the whole configuration from h in one read transaction. Returns 0
 * with *out set (caller owns it: svc_set_free), or a negative errno when
 * the database cannot be read at all (-EIO; -ENOMEM); err (errlen bytes,
 * may be 0) then says why. Invalid rows are skipped and listed in
 * (*out)->problems, e.g. "db: endpoint id 7 (service www.x.): latitude
 * 95.2 outside -90..90". */
int svc_load(struct store *db, struct svc_set **out, char *err, size_t errlen);
/* Same as svc_load, the services packed into their blocks on threads
 * threads (1 or 2; 0: two from SVC_LOAD_THREADS_FROM services on). The
 * set is the same whatever the number. */
#define SVC_LOAD_THREADS_FROM 65536
int svc_load_threads(struct store *db, unsigned threads, struct svc_set **out,
                     char *err, size_t errlen);
/* The set's version (svc_set.version) is the store's configuration
 * version read in the same transaction (db/audit.h). */

/* Incremental: base (a set loaded from this store, never written again)
 * with the services changed since base->version read again from the
 * change log (db/audit.h): a new set sharing every unchanged service with
 * base, with its version, and the canonical names that changed (*names,
 * *n_names; free with svc_names_free). *data_version gets the store's
 * PRAGMA data_version as of the transaction that read it (also when
 * nothing changed). Returns 0 with *out NULL when the
 * configuration did not change; -ESTALE when the change log cannot answer
 * (versions missing from it, a store that went back, base or a changed
 * service with problems, or so many changes that a full load is cheaper):
 * then load everything (svc_load); -EIO/-ENOMEM with err set. */
int svc_load_since(struct store *db, const struct svc_set *base,
                   struct svc_set **out, char ***names, size_t *n_names,
                   long long *data_version, char *err, size_t errlen);
void svc_names_free(char **names, size_t n);     /* NULL is fine */

/* Same as svc_load, opening path read-only (db/store.h) for the duration. */
int svc_load_path(const char *path, struct svc_set **out, char *err,
                  size_t errlen);

#endif
