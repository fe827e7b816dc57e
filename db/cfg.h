/* db/cfg.h - validated configuration writes to the store, and the JSON
 * export/import of the whole configuration. Used by gslbctl (and by any
 * other writer, e.g. an HTTP API), so every writer enforces the same rules.
 *
 * Load time only (never on the query path); the caller's thread owns h.
 * Every public write function is one transaction (BEGIN IMMEDIATE ..
 * COMMIT): on any error it rolls back, so the store is unchanged, and
 * writes one line into err (errlen bytes) naming what and why, e.g.
 * "endpoint add www.example.com.: weight 70000 outside 0..65535".
 * Errors: -EINVAL bad input, -ENOENT missing service/endpoint/rule,
 * -EEXIST duplicate, -EIO SQLite failure, -ENOMEM.
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
#ifndef DB_CFG_H
#define DB_CFG_H
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <sqlite3.h>

/* A service as given by the user. Unset fields keep the default (add) or
 * the stored value (set). */
struct cfg_service {
	const char *name;          /* FQDN, trailing dot optional */
	const char *policy;        /* NULL = unset */
	bool has_ttl;
	long long ttl;             /* 0..2147483647 */
	bool has_answers;
	long long answers;         /* 1..16, or -1 = the policy's default */
	int sticky;                /* -1 unset, 0, 1 */
	const char *when_down;     /* NULL unset; open|closed|TARGET */
};

/* An endpoint as given by the user; has_* = the option was given. */
struct cfg_endpoint {
	const char *target;        /* IPv4, IPv6 or FQDN ending in '.' */
	bool has_weight;
	long long weight;          /* 0..65535 (default 1) */
	bool has_priority;
	long long priority;        /* 0..65535 (default 0), lower preferred */
	bool has_region;
	const char *region;        /* NULL or "" clears */
	bool has_loc;              /* lat and lon given together */
	bool clear_loc;
	double lat, lon;           /* -90..90, -180..180 */
	bool has_bias;
	double bias;               /* -99..99 (default 0) */
	const char *admin;         /* NULL unset; auto|up|down */
	int drained;               /* -1 unset, 0, 1 */
	bool has_check;
	const char *check_url;     /* NULL or "" removes the check */
	bool has_interval, has_timeout, has_rise, has_fall, has_tls_verify;
	double interval, timeout;  /* seconds > 0; <= 0 = agent default */
	long long rise, fall;      /* 1..100 */
	bool tls_verify;
	bool has_expect, has_body, has_host;
	const char *expect;        /* HTTP "200-399" / DNS rcode; NULL clears */
	const char *body, *host;   /* NULL clears */
};

int cfg_service_add(sqlite3 *h, const struct cfg_service *s, char *err,
                    size_t errlen);
int cfg_service_set(sqlite3 *h, const struct cfg_service *s, char *err,
                    size_t errlen);
int cfg_service_rm(sqlite3 *h, const char *name, char *err, size_t errlen);

int cfg_endpoint_add(sqlite3 *h, const char *service,
                     const struct cfg_endpoint *e, char *err, size_t errlen);
/* Changes only the fields given. */
int cfg_endpoint_set(sqlite3 *h, const char *service,
                     const struct cfg_endpoint *e, char *err, size_t errlen);
int cfg_endpoint_rm(sqlite3 *h, const char *service, const char *target,
                    char *err, size_t errlen);

/* match: "ADDR/LEN", "country:CC" or "continent:CC"; targets must be
 * members of the service; a rule with the same match must not exist. */
int cfg_rule_add(sqlite3 *h, const char *service, const char *match,
                 const char *const *targets, size_t n, char *err,
                 size_t errlen);
int cfg_rule_rm(sqlite3 *h, const char *service, const char *match,
                char *err, size_t errlen);

/* Gives target a priority strictly lower than every other endpoint of the
 * service, keeping the others' order: target = (lowest other) - 1 when
 * that is >= 0, else every other endpoint moves up by one and target gets
 * 0. Nothing changes if target is already strictly first. Errors: not a
 * member (-ENOENT), drained or forced down (-EINVAL), priorities would
 * exceed 65535 (-ERANGE). */
int cfg_flip(sqlite3 *h, const char *service, const char *target, char *err,
             size_t errlen);

/* The whole configuration / one service (NULL name = all) as JSON in the
 * format above. New reference (caller json_decref) or NULL with err. */
json_t *cfg_export(sqlite3 *h, const char *name, char *err, size_t errlen);
/* Replaces the whole configuration with doc (format above), validating
 * every field as the add commands do. One transaction. */
int cfg_import(sqlite3 *h, const json_t *doc, char *err, size_t errlen);

/* Canonical forms: a service name ("www.example.com.") into out (256
 * bytes) / a rule match ("10.0.0.0/8", "country:DE", "continent:EU") into
 * out (96 bytes). 0 or -EINVAL with err. */
int cfg_canon_name(const char *in, char *out, char *err, size_t errlen);
int cfg_canon_match(const char *in, char *out, char *err, size_t errlen);

#endif
