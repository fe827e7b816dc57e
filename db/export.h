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
 * state, not configuration: export leaves it out. Import keeps it for
 * every endpoint that stays: an endpoint is (service name, target), and
 * import writes only what differs (db/diff.h), so rows that did not change
 * are not touched and a changed endpoint keeps its row id. */
#ifndef DB_EXPORT_H
#define DB_EXPORT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct store;

#include <jansson.h>

/* The whole configuration / one service (NULL name = all) as JSON in the
 * format above. New reference (caller json_decref) or NULL with err. */
json_t *cfg_export(struct store *db, const char *name, char *err, size_t errlen);
/* The json_dumps flags of the export as gslbctl prints it: 15
 * significant digits (40.7 prints as 40.7, and export -> import ->
 * export stays byte-equal). */
#define CFG_EXPORT_FLAGS (JSON_INDENT(2) | JSON_PRESERVE_ORDER | \
	JSON_ENCODE_ANY | JSON_REAL_PRECISION(15))
/* The whole configuration written to out service by service (memory
 * independent of its size): the bytes of cfg_export's document dumped
 * with CFG_EXPORT_FLAGS, and a newline. 0, or -EIO / -ENOMEM with err
 * (out may then hold a part). */
int cfg_export_stream(struct store *db, FILE *out, char *err,
                      size_t errlen);
/* Replaces the whole configuration with doc (format above), validating
 * every field as the add commands do. One transaction. */
int cfg_import(struct store *db, const json_t *doc, char *err, size_t errlen);

struct cfg_plan;
enum cfg_import_flags {
	CFG_IMPORT_DRY_RUN = 1 << 0,    /* plan only: read, write nothing */
};
/* cfg_import that also hands back what it changed (or, with
 * CFG_IMPORT_DRY_RUN or the write context's dry_run, would change; the
 * guard rails of db/audit.h apply to a real import) as *plan (db/diff.h; NULL on error;
 * caller frees it with cfg_plan_free). */
int cfg_import_plan(struct store *db, const json_t *doc, unsigned flags,
                    struct cfg_plan **plan, char *err, size_t errlen);
/* One service / endpoint object of the format above, parsed (strings
 * point into o): only the keys given are set (has_* / -1 unset), so the
 * result serves an insert (defaults for the rest) and an update (the rest
 * unchanged). out->name / out->target, when set, are used if o has none.
 * with_children: "endpoints" and "rules" keys are allowed (and ignored).
 * "answers": null means the policy's default; "check": null no check.
 * An unknown key is an error naming the nearest valid one. */
struct cfg_service;
struct cfg_endpoint;
int cfg_service_parse(const json_t *o, struct cfg_service *out,
                      bool with_children, const char *where, char *err,
                      size_t errlen);
int cfg_endpoint_parse(const json_t *o, struct cfg_endpoint *out,
                       const char *where, char *err, size_t errlen);

/* One rule object of the format above: its match and targets (pointing
 * into o; targets holds SVC_MAX_ENDPOINTS) and their number into *n.
 * Errors name where. */
int cfg_rule_parse(const json_t *o, const char **match, const char **targets,
                   size_t *n, const char *where, char *err, size_t errlen);

/* Adds one service object of the format above (with its endpoints and
 * rules) to db, validated as import validates it; on error nothing is
 * added and err says why. The service must not be in db yet. Runs in the
 * caller's transaction if one is open. */
int cfg_import_add(struct store *db, const json_t *svc, char *err,
                   size_t errlen);

/* Validates services[i] of a document, o, into db (a scratch store),
 * inside the caller's transaction: the service, its endpoints, its
 * rules. Errors name services[i], its name and the field. */
int cfg_import_service(struct store *db, const json_t *o, size_t i, char *err,
                       size_t errlen);

/* Validates doc into db, which should be empty (a scratch store), in one
 * transaction. */
int cfg_import_fill(struct store *db, const json_t *doc, char *err,
                    size_t errlen);

#endif
