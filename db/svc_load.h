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
/* Same, opening path read-only (db/store.h) for the duration. */
int svc_load_path(const char *path, struct svc_set **out, char *err,
                  size_t errlen);

#endif
