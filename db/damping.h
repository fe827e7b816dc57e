/* db/damping.h - flap damping in the store: per-service thresholds (table
 * damping, written by gslbctl damping) and each endpoint's penalty (table
 * damp_state, written by dnsd's health service, read back at its start and
 * by gslbctl status and explain). Load time only; errors as db/edit.h. */
#ifndef DB_DAMPING_H
#define DB_DAMPING_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "health/damp.h"

struct store;

/* Sets service's thresholds (checked with damp_conf_check). One
 * transaction. */
int damping_set(struct store *db, const char *service,
                const struct damp_conf *c, char *err, size_t errlen);
/* Back to the defaults (deletes the row). */
int damping_reset(struct store *db, const char *service, char *err,
                  size_t errlen);
/* service's thresholds (*custom: a row exists; else the defaults). */
int damping_get(struct store *db, const char *service, struct damp_conf *out,
                bool *custom, char *err, size_t errlen);

/* Thresholds by endpoint id: *out[0..*n) (caller frees; may be NULL
 * with *n 0). Only endpoints of services with thresholds of their own are
 * read: ids below *n without them, and every id from *n on, take the
 * defaults (damp_conf_default). */
int damping_by_endpoint(struct store *db, struct damp_conf **out, size_t *n,
                        char *err, size_t errlen);

/* Endpoint states by id, *out[0..*n) (caller frees; zero = none), as dnsd
 * saved them. */
int damping_state_load(struct store *db, struct damp_state **out, size_t *n,
                       char *err, size_t errlen);
/* Replaces the saved states with st[0..n) (entries with a penalty; conf
 * by id for the reuse time). One transaction. */
int damping_state_save(struct store *db, const struct damp_state *st,
                       const struct damp_conf *conf, size_t n, char *err,
                       size_t errlen);

/* Export and import (db/export.c): service's thresholds as {on, penalty,
 * suppress, reuse, half_life, max_suppress}, or NULL when it uses the
 * defaults; written back from such an object (missing keys: defaults;
 * checked as damping_set), in the caller's transaction; and, for an
 * import, every service of to given the thresholds it has in from (by
 * name; none there: the defaults). 0 or a negative errno with err. */
json_t *damping_export(struct store *db, const char *service);
int damping_import(struct store *db, const char *service, const json_t *o,
                   const char *where, char *err, size_t errlen);
int damping_copy(struct store *from, struct store *to, char *err,
                 size_t errlen);
/* The same for one service name. Every change of thresholds (set,
 * reset, copy) is an audit row (kind service, field damping, old and new
 * the thresholds or "defaults") and moves the store's version. */
int damping_copy_one(struct store *from, struct store *to, const char *name,
                     char *err, size_t errlen);

/* A replica (db/sync.c): service name of to gets exactly the thresholds
 * it has in from, in the caller's transaction; audit: as an audit row by
 * the write context's writer (else the caller records the writer's rows).
 * Returns 1 when they changed, 0, or a negative errno. */
int damping_sync_one(struct store *from, struct store *to, const char *name,
                     bool audit, char *err, size_t errlen);

#endif
