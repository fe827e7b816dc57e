/* db/health_store.h - SQLite persistence of the health state: converts the
 * tables probes, health, endpoint_health and latency (db/schema.sql) to and
 * from health/hstate.h's plain rows, and builds the probe check list from
 * the endpoints table. Load time only: dnsd's control thread (and gslbctl),
 * on a handle from store_open() that belongs to the calling thread. */
#ifndef DB_HEALTH_STORE_H
#define DB_HEALTH_STORE_H
#include <stddef.h>

struct store;

#include <jansson.h>

#include "health/hstate.h"

/* Reads every health row into out (strings and arrays in out->arena;
 * release with hstate_rows_fini). Rows the schema should have refused
 * (bad state text) are skipped. Returns 0, -ENOMEM, or -EIO with err
 * ("db: health: why"). Runs in one read transaction unless the caller is
 * already inside one. */
int hstore_load(struct store *db, struct hstate_rows *out, char *err,
                size_t errlen);

/* Replaces the contents of health, endpoint_health and latency with rows,
 * and upserts the agents in probes (region, coordinates, last_seen), in
 * one write transaction. Rows whose endpoint no longer exists are skipped
 * and counted in *skipped (may be NULL). Returns 0, or -EIO with err (the
 * transaction is rolled back: the tables are unchanged). */
int hstore_save(struct store *db, const struct hstate_rows *rows, size_t *skipped,
                char *err, size_t errlen);
/* The same for the endpoints ids[0..n) only: their rows are replaced by
 * rows (which should hold only theirs), the others' left alone. */
int hstore_save_ids(struct store *db, const struct hstate_rows *rows,
                    const uint32_t *ids, size_t n, size_t *skipped, char *err,
                    size_t errlen);

/* The GET /v1/checks document (health/PROTOCOL.md) for every endpoint with
 * a check_url, and the matching hstate endpoint list (interval NULL in the
 * store -> default_interval, which should equal the agents' --interval).
 * *doc: new reference, caller decrefs; *eps: malloc'ed, caller frees.
 * Returns 0, -ENOMEM, or -EIO with err. */
int hstore_checks(struct store *db, double default_interval, long long generation,
                  json_t **doc, struct hstate_ep **eps, size_t *n,
                  char *err, size_t errlen);

/* Restores st (after hstate_set_endpoints) from the persisted rows: what
 * dnsd does at startup, so a restart never starts from "all up". Rows of
 * endpoints st does not know are counted in *skipped (may be NULL).
 * Returns 0, -ENOMEM or -EIO with err. */
int hstore_restore(struct store *db, struct hstate *st, size_t *skipped,
                   char *err, size_t errlen);

/* The health view dnsd builds from the persisted state (checked endpoints,
 * their state, the agents' regions and coordinates, RTTs), through the same
 * health/hstate.h code dnsd uses, so a policy decision made on it (gslbctl
 * explain) is the one dnsd makes. default_interval: checks without an
 * interval. *out: caller owns it (hstate_view_free). 0, -ENOMEM or -EIO
 * with err. */
int hstore_view(struct store *db, double default_interval,
                struct hstate_view **out, char *err, size_t errlen);

/* gslbctl status: per service (only the one named service, canonical
 * name, when not NULL; services by name) its settings and per endpoint its
 * health, admin state, weights, agents' observations and RTTs. A JSON
 * array (new reference), or NULL with err (SQLite's message). */
json_t *hstore_status(struct store *db, const char *service, char *err,
                      size_t errlen);

#endif
