/* db/diff.h - a configuration change as a plan: what importing a document
 * would add, remove and change, and applying exactly that.
 *
 * Identity: a service is its name, an endpoint is (service name, target),
 * a rule is (service name, kind, pattern). Applying a plan touches only the
 * rows it names: an endpoint that stays keeps its row id, so its health,
 * agent results, latency and counters stay with it; a changed endpoint is
 * updated in place. New rows are inserted before rows are removed, so a
 * new endpoint never takes the id of one removed by the same plan.
 *
 * Load time only; the caller's thread owns the handles.
 *
 * Change objects (JSON, also the --json form of gslbctl diff/import):
 *   {"op": "add"|"remove"|"change", "kind": "service"|"endpoint"|"rule",
 *    "service": NAME, "target": T (endpoint), "match": M (rule),
 *    "field": F, "old": V, "new": V (change only)}
 * F is the export format's key ("ttl", "weight", "check.url", ...,
 * "targets" for a rule). One change object per changed field.
 * Text form, one line each:
 *   + service NAME            - service NAME
 *   + endpoint NAME TARGET    - endpoint NAME TARGET
 *   ~ endpoint NAME TARGET FIELD: OLD -> NEW
 *   + rule NAME MATCH -> T1 T2 ...   ~ rule NAME MATCH targets: A -> B */
#ifndef DB_DIFF_H
#define DB_DIFF_H
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <sqlite3.h>

struct cfg_plan;

/* Computes what turns cur's configuration into want's (want: a scratch
 * store holding the validated target configuration, e.g. filled by
 * cfg_import_fill). Reads cur inside the caller's transaction if one is
 * open. The plan reads want until it is freed; with own_want it closes
 * want then (also on failure). 0 with *out (free with cfg_plan_free), or
 * -EIO/-ENOMEM with err. */
int cfg_plan_make(sqlite3 *cur, sqlite3 *want, bool own_want,
                  struct cfg_plan **out, char *err, size_t errlen);
void cfg_plan_free(struct cfg_plan *p);

/* Number of changes; number of services the plan removes. */
size_t cfg_plan_size(const struct cfg_plan *p);
size_t cfg_plan_removed_services(const struct cfg_plan *p);

/* Writes the plan into cur (no transaction of its own: the caller holds
 * one). Values are copied from the want store the plan was made with. */
int cfg_plan_apply(struct cfg_plan *p, sqlite3 *cur, char *err,
                   size_t errlen);

/* The changes as JSON objects (format above): new reference. An added
 * rule also has "targets": [T, ...]. */
json_t *cfg_plan_json(const struct cfg_plan *p);
/* Change i alone (new reference). */
json_t *cfg_plan_change(const struct cfg_plan *p, size_t i);

/* Copies service name (canonical) with its endpoints and rules from one
 * store into another (a scratch store); nothing when it does not exist.
 * 0 or -EIO. */
int cfg_copy_service(sqlite3 *from, const char *name, sqlite3 *to);

/* Checks a plan against what takes a service down: removing a service,
 * removing an endpoint that a rule names, leaving a service that had an
 * endpoint in rotation (not drained, not forced down) with none. before
 * and after are stores holding the state before and after the plan (at
 * least the services it names). 0, or -EPERM with err saying what would
 * break (the caller's --force / "force": true allows it). */
int cfg_plan_guard(const struct cfg_plan *p, sqlite3 *before, sqlite3 *after,
                   char *err, size_t errlen);
/* Change i as one text line (format above, no newline) into out. */
void cfg_plan_line(const struct cfg_plan *p, size_t i, char *out,
                   size_t outlen);

#endif
