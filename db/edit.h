/* db/edit.h - validated configuration writes to the store. Used by gslbctl
 * and by dnsd's HTTP API (and db/export.c's import), so every writer
 * enforces the same rules.
 *
 * Load time only (never on the query path); the caller's thread owns h.
 * Every public write function is one transaction (BEGIN IMMEDIATE ..
 * COMMIT): on any error it rolls back, so the store is unchanged, and
 * writes one line into err (errlen bytes) naming what and why, e.g.
 * "endpoint add www.example.com.: weight 70000 outside 0..65535".
 * Errors: -EINVAL bad input, -ENOENT missing service/endpoint/rule,
 * -EEXIST duplicate, -EPERM a guard rail (db/diff_sql.h cfg_plan_guard: the
 * write would take a service down; the write context's force allows it),
 * -EIO SQLite failure, -ENOMEM.
 *
 * Every write is observed by db/audit.h: the thread's write context
 * (cfg_write_use) says who writes, whether to force or only plan, and gets
 * what changed (a db/diff.h plan; empty when nothing did). */
#ifndef DB_EDIT_H
#define DB_EDIT_H
#include <stdbool.h>
#include <stddef.h>

struct store;


/* The configuration columns of an endpoint row, in the order the edits
 * and the export read them. */
#define CFG_EP_COLS "target, weight, priority, region, lat, lon, bias, " \
	"admin, drained, check_url, check_interval, check_timeout, "      \
	"check_rise, check_fall, check_tls_verify, check_expect, "        \
	"check_body, check_host, capacity"

/* The id of a new endpoint row (an SQL expression): one above the
 * highest in use and the highest ever removed (db/schema.sql id_seq), so
 * a removed endpoint's id is never given to another. */
#define CFG_EP_NEW_ID "(SELECT max(coalesce((SELECT max(id) FROM " \
	"endpoints), 0), coalesce((SELECT hi FROM id_seq WHERE name = " \
	"'endpoints'), 0)) + 1)"

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
	bool has_fill;
	double fill;               /* (0, 1]; 0 removes it */
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
	bool has_capacity;
	double capacity;           /* 0.001..1e9; 0 removes it */
};

int cfg_service_add(struct store *db, const struct cfg_service *s, char *err,
                    size_t errlen);
int cfg_service_set(struct store *db, const struct cfg_service *s, char *err,
                    size_t errlen);
int cfg_service_rm(struct store *db, const char *name, char *err, size_t errlen);

int cfg_endpoint_add(struct store *db, const char *service,
                     const struct cfg_endpoint *e, char *err, size_t errlen);
/* Changes only the fields given. */
int cfg_endpoint_set(struct store *db, const char *service,
                     const struct cfg_endpoint *e, char *err, size_t errlen);
int cfg_endpoint_rm(struct store *db, const char *service, const char *target,
                    char *err, size_t errlen);

/* match: "ADDR/LEN", "country:CC" or "continent:CC"; targets must be
 * members of the service; a rule with the same match must not exist. */
int cfg_rule_add(struct store *db, const char *service, const char *match,
                 const char *const *targets, size_t n, char *err,
                 size_t errlen);
/* Creates the rule or replaces its targets (one transaction). */
int cfg_rule_put(struct store *db, const char *service, const char *match,
                 const char *const *targets, size_t n, char *err,
                 size_t errlen);
int cfg_rule_rm(struct store *db, const char *service, const char *match,
                char *err, size_t errlen);

/* Gives target a priority strictly lower than every other endpoint of the
 * service, keeping the others' order: target = (lowest other) - 1 when
 * that is >= 0, else every other endpoint moves up by one and target gets
 * 0. Nothing changes if target is already strictly first. Errors: not a
 * member (-ENOENT), drained or forced down (-EINVAL), priorities would
 * exceed 65535 (-ERANGE). */
int cfg_flip(struct store *db, const char *service, const char *target, char *err,
             size_t errlen);

/* Canonical forms: a service name ("www.example.com.") into out (256
 * bytes) / a rule match ("10.0.0.0/8", "country:DE", "continent:EU") into
 * out (96 bytes). 0 or -EINVAL with err. */
int cfg_canon_name(const char *in, char *out, char *err, size_t errlen);
int cfg_canon_match(const char *in, char *out, char *err, size_t errlen);
/* An endpoint TARGET (address or FQDN) in its stored form into out (256
 * bytes). 0 or -EINVAL with err. */
int cfg_canon_target(const char *in, char *out, char *err, size_t errlen);

/* The add commands without their own transaction, for a caller that has
 * one open (import). Same validation and errors; cfg_service_insert sets
 * *id (may be NULL) to the new service's id. */
int cfg_service_insert(struct store *db, const struct cfg_service *s,
                       long long *id, char *err, size_t errlen);
int cfg_endpoint_insert(struct store *db, const char *service,
                        const struct cfg_endpoint *e, char *err,
                        size_t errlen);
int cfg_rule_insert(struct store *db, const char *service, const char *match,
                    const char *const *targets, size_t n, char *err,
                    size_t errlen);
/* The validated form of a service / an endpoint: what the inserts above
 * write (defaults filled in, names in their stored form). */
struct cfg_svc_row {
	char name[256];
	int policy;                /* enum svc_policy */
	long long ttl;
	long long answers;         /* 0 = NULL (the policy's default) */
	int sticky;
	char when_down[256];
	double fill;               /* NAN = NULL */
};
struct cfg_ep_row {
	char target[256];
	long long weight, priority;
	char *region;
	bool has_loc;
	double lat, lon, bias;
	int admin, drained;        /* enum svc_admin, 0/1 */
	char *check_url;
	double interval, timeout;  /* NAN = NULL */
	long long rise, fall;
	int tls_verify;
	char *expect, *body, *host;
	double capacity;           /* NAN = NULL */
};
/* The checks of cfg_service_insert / cfg_endpoint_insert that need no
 * store (every field, in the same order, with the same errors): s / e
 * validated onto the defaults into *r. cfg_endpoint_check: r is zeroed or
 * a row of an earlier call (its strings are replaced); free them with
 * cfg_ep_row_fini, also after an error. A bulk writer that checks
 * duplicates itself uses these and writes the rows in one go. */
int cfg_service_check(const struct cfg_service *s, struct cfg_svc_row *r,
                      char *err, size_t errlen);
int cfg_endpoint_check(const struct cfg_endpoint *e, struct cfg_ep_row *r,
                       char *err, size_t errlen);
void cfg_ep_row_fini(struct cfg_ep_row *r);
/* A rule match into its stored kind ("cidr", "country", "continent") and
 * pattern, as cfg_rule_insert checks it. 0 or -EINVAL with err. */
int cfg_match_parse(const char *in, char kind[16], char pat[64], char *err,
                    size_t errlen);
/* Bulk writes (import): on, the inserts above keep their statements
 * prepared on db for this thread until called again with off. */
void cfg_edit_keep(struct store *db, bool on);
/* cfg_flip inside the caller's transaction (the end of a staged shift). */
int cfg_flip_in(struct store *db, const char *service, const char *target,
                char *err, size_t errlen);

#endif
