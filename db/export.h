/* db/export.h - the whole configuration as JSON, and back.
 *
 * Load time only; the caller's thread owns h. Import validates every field
 * with the same rules as the edits (db/edit.h) and is one transaction: on
 * any error the store is unchanged and err (errlen bytes) names what and
 * why. Errors as in db/edit.h.
 *
 * JSON format (cfg_export / cfg_import), keys always present, services
 * sorted by name, endpoints by target, rules by kind then match:
 * {"version": 1, "services": [{"name", "policy", "ttl", "answers": N|null,
 *   "sticky": bool, "when_down": "open"|"closed"|TARGET,
 *   "endpoints": [{"target", "weight", "priority", "region": S|null,
 *     "lat": D|null, "lon": D|null, "bias": D, "admin": "auto"|"up"|"down",
 *     "drained": bool, "check": null | {"url", "interval": D|null,
 *     "timeout": D|null, "rise", "fall", "tls_verify": bool,
 *     "expect": S|null, "body": S|null, "host": S|null}}],
 *   "rules": [{"match": "CIDR"|"country:CC"|"continent:CC",
 *     "targets": [TARGET, ...]}]}]}
 * Health state (probes, health, endpoint_health, latency) is runtime
 * state, not configuration: export leaves it out, import clears it. */
#ifndef DB_EXPORT_H
#define DB_EXPORT_H
#include <stddef.h>

struct store;

#include <jansson.h>

/* The whole configuration / one service (NULL name = all) as JSON in the
 * format above. New reference (caller json_decref) or NULL with err. */
json_t *cfg_export(struct store *db, const char *name, char *err, size_t errlen);
/* Replaces the whole configuration with doc (format above), validating
 * every field as the add commands do. One transaction. */
int cfg_import(struct store *db, const json_t *doc, char *err, size_t errlen);

#endif
