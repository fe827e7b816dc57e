/* dnsd/api_config.h - the configuration REST API: services, endpoints and
 * rules under /v1/services, on top of the validated writes of db/edit.h
 * (the same validation and guard rails as gslbctl), each observed by
 * db/audit.h (who, what, version). Load time only (dnsd's control thread).
 *
 *   GET    /v1/services                          {"services": [S, ...]}
 *   POST   /v1/services              S           201 (409 if it exists)
 *   GET    /v1/services/NAME                     S
 *   PUT    /v1/services/NAME         S fields    create or change (idempotent)
 *   DELETE /v1/services/NAME                     needs force
 *   GET    /v1/services/NAME/endpoints           {"endpoints": [E, ...]}
 *   GET    /v1/services/NAME/endpoints/TARGET    E
 *   PUT    /v1/services/NAME/endpoints/TARGET    E fields: create or change
 *   DELETE /v1/services/NAME/endpoints/TARGET
 *   GET    /v1/services/NAME/rules               {"rules": [R, ...]}
 *   PUT    /v1/services/NAME/rules/MATCH         {"targets": [...]}
 *   DELETE /v1/services/NAME/rules/MATCH         (MATCH "10.0.0.0%2F8",
 *                                                 "country:DE")
 * S, E, R: the objects of the export format (db/export.h); a PUT changes
 * the fields it gives and leaves the others. Writes answer {"changes":
 * [...] (db/diff.h objects; [] when nothing changed), "version": N,
 * "dry_run": bool}. ?dry_run=1 plans without writing; ?force=1 or
 * "force": true in the body allows what takes a service down. Errors:
 * {"error": "..."} with 400 (bad input; unknown keys name the nearest
 * valid one), 404 (no such service, endpoint or rule), 409 (exists, or
 * needs force), 405, 500. */
#ifndef DNSD_API_CONFIG_H
#define DNSD_API_CONFIG_H
#include <stdbool.h>

#include <jansson.h>

struct store;
struct api_caller;

/* Serves one request: method "GET"|"PUT"|"POST"|"DELETE", path as sent
 * (percent-encoded), body (NULL: none). Returns the HTTP status and sets
 * *reply (new reference). */
int apicfg_handle(struct store *db, const char *method, const char *path,
                  const json_t *body, const struct api_caller *who,
                  json_t **reply);

#endif
