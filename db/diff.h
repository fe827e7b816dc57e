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
 * Making, checking and applying a plan is db/-internal (db/diff_sql.h);
 * this side reads one. Load time only.
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

struct cfg_plan;

void cfg_plan_free(struct cfg_plan *p);

/* Number of changes; number of services the plan removes. */
size_t cfg_plan_size(const struct cfg_plan *p);
size_t cfg_plan_removed_services(const struct cfg_plan *p);

/* The changes as JSON objects (format above): new reference. An added
 * rule also has "targets": [T, ...]. */
json_t *cfg_plan_json(const struct cfg_plan *p);
/* Change i alone (new reference). */
json_t *cfg_plan_change(const struct cfg_plan *p, size_t i);
/* Change i as one text line (format above, no newline) into out. */
void cfg_plan_line(const struct cfg_plan *p, size_t i, char *out,
                   size_t outlen);

#endif
