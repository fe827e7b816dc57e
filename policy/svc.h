/* policy/svc.h - the immutable service set (balanced names) and the policy
 * engine that picks each answer. No storage and no I/O here.
 *
 * Load time (control thread of dnsd, gslbctl): db/svc_load.h reads every
 * service, endpoint and rule from the store into an arena-backed struct
 * svc_set. Invalid rows are skipped and recorded as problem strings; the
 * set is never written after it is published.
 *
 * Query time (any worker thread, concurrently): svc_find() and svc_select()
 * read the set and a health view; they never allocate, lock or log.
 * gslbctl explain calls the very same svc_select() with a struct svc_why,
 * so explain cannot disagree with the server.
 *
 * Addresses and prefix lengths live in the 128-bit space: IPv4 is
 * v4-mapped (::ffff:a.b.c.d) and an IPv4 /24 is 120.
 *
 * Health input is health/hstate.h's struct hstate_view (endpoint id ->
 * HSTATE_UNKNOWN/UP/DOWN, probe regions, RTT per (region, id)). */
#ifndef POLICY_SVC_H
#define POLICY_SVC_H
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

#include "common/arena.h"
#include "common/cowvec.h"
#include "health/hstate.h"

#define SVC_MAX_ANSWERS   16    /* records in one answer */
#define SVC_MAX_ENDPOINTS 256   /* per service; more are skipped at load */
#define SVC_MAX_SERVICES  2000000 /* per store; more are skipped at load */
#define SVC_NAME_MAX      255   /* wire octets of a name */

enum svc_policy {
	SVC_FAILOVER, SVC_WEIGHTED, SVC_GEO, SVC_LATENCY, SVC_ALL, SVC_RR,
	SVC_NPOLICIES
};
enum svc_admin { SVC_ADMIN_AUTO, SVC_ADMIN_UP, SVC_ADMIN_DOWN };
enum svc_down { SVC_DOWN_OPEN, SVC_DOWN_CLOSED, SVC_DOWN_TARGET };
enum svc_rule_kind { SVC_RULE_CIDR, SVC_RULE_COUNTRY, SVC_RULE_CONTINENT };

/* RR types of targets. */
#define SVC_T_A     1
#define SVC_T_CNAME 5
#define SVC_T_AAAA  28

/* One answer target, pre-parsed. */
struct svc_target {
	uint16_t type;          /* SVC_T_A, SVC_T_AAAA or SVC_T_CNAME */
	uint16_t len;           /* rdata length: 4, 16, or the wire name's */
	const uint8_t *rdata;   /* address bytes, or the CNAME target as an
	                           uncompressed lower-case wire name */
	const char *text;       /* canonical text (as stored) */
};

struct svc_service;

/* Field order: what the query path reads first, and no padding (this is
 * the bulk of the snapshot: one per endpoint). */
struct svc_endpoint {
	uint32_t id;            /* endpoints.id (index into health views) */
	uint32_t weight;        /* 0..65535 */
	uint32_t priority;      /* lower is preferred */
	uint8_t admin;          /* enum svc_admin */
	bool drained;
	bool has_check;         /* false: healthy unless forced down */
	bool has_loc;
	struct svc_target t;
	const char *region;     /* "" when none */
	double lat, lon;        /* degrees, when has_loc */
	double v[3];            /* lat/lon as a unit vector (geo_unit_vector) */
	double bias;            /* -99..99 */
	uint64_t key;           /* hash of the target text (sticky hashing) */
	uint64_t check_key;     /* hash of the check's settings (0: none);
	                           load time only: has the check changed? */
	double capacity;        /* spill-over: answers/s (service with a
	                           fill) or relative; 0 = none declared */
	const struct svc_service *svc;
};

struct svc_rule {
	uint32_t id;
	uint8_t kind;           /* enum svc_rule_kind */
	struct in6_addr net;    /* cidr */
	unsigned plen;          /* cidr, 128-bit space */
	char code[3];           /* country / continent, upper case */
	const char *text;       /* as stored ("10.0.0.0/8", "DE", "EU") */
	const uint16_t *eps;    /* indices into the service's endpoints */
	size_t n_eps;
};

/* A staged traffic shift in force (policy/shift.h): clients whose subnet
 * hash falls below frac are answered with endpoint ep. */
struct svc_shift {
	bool on;                /* applies at query time */
	uint16_t ep;            /* index into the service's endpoints */
	double frac;            /* 0..1: share of clients moved */
	double next;            /* unix time of the next step; 0 = none (TTL
	                           of answers is capped to reach it) */
	unsigned stage, n_stages;
};

struct svc_service {
	uint32_t id;
	uint32_t ttl;
	unsigned answers;       /* resolved (never 0); roundrobin default:
	                           SVC_MAX_ANSWERS, i.e. every healthy one */
	/* Set by svc_pack()/svc_set_put(); the query path reads only hash. */
	uint32_t hash;          /* svc_hash() of wire */
	uint32_t pos;           /* position in its set (svc_at) */
	uint32_t refs;          /* owners: set chunks holding it (load time) */
	uint8_t policy;         /* enum svc_policy */
	uint8_t when_down;      /* enum svc_down */
	bool answers_set;       /* answers came from the row, not the default */
	bool sticky;
	bool has_geo_rules;     /* any country/continent rule */
	bool any_bias;          /* an endpoint has a geo bias: rank by km */
	const char *name;       /* "www.example.com." */
	const uint8_t *wire;    /* lower-case wire form of name */
	size_t wire_len;
	struct svc_target fallback;   /* when_down == SVC_DOWN_TARGET */
	struct svc_endpoint *eps;     /* ordered by endpoint id */
	size_t n_eps;
	struct svc_rule *rules; /* most specific first: CIDR by prefix length
	                           (longest first), then country, continent */
	size_t n_rules;
	struct svc_shift shift; /* staged shift (failover, weighted) */
	/* Spill-over by capacity (geo): spill is set when an endpoint
	 * declares a capacity; fill in (0, 1] makes capacities answers per
	 * second and endpoints "full" at fill x capacity (0: relative
	 * capacities, spilling only away from a down endpoint). */
	bool spill;
	uint32_t bytes;         /* its block's size (svc_pack), for the
	                           memory figures; 0: not counted yet */
	double fill;
};

/* An endpoint by position: svc_at(s, svc)->eps[ep]. */
struct svc_ref {
	uint32_t svc, ep;
};

/* The service set. Services are refcounted objects, each in one block
 * (svc_pack), reached by position through a copy-on-write vector and by
 * name through an open hash (also copy-on-write): a new version of a set
 * (svc_set_clone, then svc_set_put/svc_set_del) shares every unchanged
 * service and chunk with the one before, so changing k services costs
 * O(k) whatever the size of the set. A position keeps its service for the
 * service's life in a lineage of sets; a removed service leaves a hole
 * (svc_at() returns NULL). */
struct svc_set {
	struct arena arena;     /* the problem strings, the spill index */
	struct cowvec svcs;     /* struct svc_service * by position (owning) */
	size_t n;               /* services */
	size_t n_pos;           /* positions used: services and holes */
	struct cowvec slot;     /* open hash: struct svc_service * or NULL */
	uint32_t mask;          /* slots - 1 */
	uint32_t max_endpoint_id;  /* an upper bound of the endpoint ids */
	long long version;      /* store version the set reflects, -1 unknown */
	long long data_version; /* the store file's change counter read in
	                           the same transaction, -1 unknown */
	/* The endpoints of the services that spill over, by position
	 * (svc_spill_index); what dnsd's load tracking walks. */
	struct svc_ref *spill;
	size_t n_spill;
	const char **problems;  /* skipped rows and why, "db: ..." */
	size_t n_problems, cap_problems;
};

/* The service at position pos (< s->n_pos), or NULL (a hole). Any
 * thread. */
static inline const struct svc_service *svc_at(const struct svc_set *s,
                                               size_t pos)
{
	return *(struct svc_service *const *)cowvec_at(&s->svcs, pos);
}

void svc_set_free(struct svc_set *s);                 /* NULL is fine */

/* Load time. An empty set with a name hash sized for about hint services,
 * or NULL (ENOMEM). */
struct svc_set *svc_set_new(size_t hint);
/* A new set holding the same services as base (shared, not copied), no
 * problems, version -1. NULL on ENOMEM. */
struct svc_set *svc_set_clone(const struct svc_set *base);
/* Copies src (with its endpoints, rules and strings, wherever they live)
 * into one new block with one reference (the caller's). NULL on ENOMEM. */
struct svc_service *svc_pack(const struct svc_service *src);
/* Drops a reference; the last one frees the block. NULL is fine. */
void svc_unref(struct svc_service *v);
/* Puts v (a packed service; the caller's reference moves into s) into s,
 * in place of the service of the same name if there is one (same
 * position), else at a new position. 0 or -ENOMEM (v released). */
int svc_set_put(struct svc_set *s, struct svc_service *v);
/* Removes the service named wire (lower-case wire form). 1 removed, 0 no
 * such service, -ENOMEM. */
int svc_set_del(struct svc_set *s, const uint8_t *wire, size_t len);
/* Bytes held by s's vectors; *svc_bytes (may be NULL) gets the bytes of
 * its service blocks and *ep_count their endpoints. */
size_t svc_set_bytes(const struct svc_set *s, size_t *svc_bytes,
                     size_t *ep_count);

/* Load time, for the loader, once the services and their endpoints are
 * in: sets s->spill to the endpoints of every spill service. 0 or
 * -ENOMEM. */
int svc_spill_index(struct svc_set *s);

/* Records one more problem (printf format) in s; load time only (dnsd adds
 * "service outside every zone"). Returns 0 or -ENOMEM. */
int svc_problem_add(struct svc_set *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Query path: the service with the lower-case wire name (len octets), or
 * NULL. Never allocates. */
const struct svc_service *svc_find(const struct svc_set *s,
                                   const uint8_t *wire_lower, size_t len);
/* Query path, for batches: the hash svc_find() uses for a lower-case wire
 * name, and a cache warm-up for a later svc_find() of it (stage 0: its
 * hash slot; stage 1, after stage 0 ran for the whole batch: the service
 * the slot points to). Never allocates. False when stage 1 found the slot
 * empty: the name is no service. */
uint32_t svc_hash(const uint8_t *wire_lower, size_t len);
bool svc_prefetch(const struct svc_set *s, uint32_t h, int stage);

/* Load time: the service by text name (trailing dot optional, any case). */
const struct svc_service *svc_find_text(const struct svc_set *s,
                                        const char *name);

/* The client as dnsd knows it. */
struct svc_client {
	struct in6_addr addr;   /* ECS address or source; IPv4 v4-mapped */
	unsigned src_plen;      /* known bits (ECS source prefix), 128-space;
	                           0 (or 96 for v4-mapped) = ECS source /0:
	                           CIDR rules do not apply, scope 0 */
	bool has_loc;           /* lat/lon valid (GeoIP or caller default) */
	double lat, lon;
	/* lat/lon as a unit vector (geo_loc.v, precomputed at load time so
	 * the query path needs no trigonometry); all zero: svc_select
	 * computes it from lat/lon. */
	double v[3];
	char country[3];        /* ISO 3166-1 alpha-2 upper case, "" unknown */
	char continent[3];      /* AF AN AS EU NA OC SA, "" unknown */
	unsigned geo_plen;      /* 128-space prefix of the GeoIP network the
	                           location came from (the whole block gets
	                           the same location) */
};

/* The load of endpoints as the server measures it, for spill-over:
 * per endpoint id, written by one thread (dnsd's control thread, about
 * once a second) and read by any (relaxed atomics: each entry stands on
 * its own). rate: answers per second over the recent window, in units of
 * 1/SVC_RATE_UNIT; admit: the share of the endpoint's own clients it
 * keeps while it is full, SVC_ADMIT_ONE = all (the rest spill over). */
#define SVC_RATE_UNIT 100u
#define SVC_ADMIT_ONE 65536u
struct svc_load_ep {
	_Atomic uint32_t rate;
	_Atomic uint32_t admit;
};
struct svc_load {
	struct svc_load_ep *ep;  /* indexed by endpoint id */
	size_t n;                /* ids below n have an entry */
};

/* The result of one selection. */
struct svc_answer {
	const struct svc_target *t[SVC_MAX_ANSWERS];   /* borrowed from set */
	const struct svc_endpoint *ep[SVC_MAX_ANSWERS]; /* NULL = fallback */
	unsigned n;
	bool servfail;          /* answer SERVFAIL (n == 0) */
	unsigned scope;         /* 128-space prefix length for which this
	                           exact answer holds; 0 = any client */
	uint8_t mode;           /* enum svc_mode */
};
enum svc_mode {
	SVC_MODE_NORMAL,        /* healthy endpoints in rotation */
	SVC_MODE_OPEN,          /* nothing healthy: failed open */
	SVC_MODE_CLOSED,        /* nothing healthy: SERVFAIL */
	SVC_MODE_FALLBACK,      /* nothing healthy: the when-down target */
	SVC_MODE_EMPTY,         /* no endpoint could be answered at all */
};

/* Explain output: one entry per endpoint of the service, same order. */
struct svc_why_ep {
	bool chosen;
	bool healthy;           /* admin/health say it may answer */
	uint8_t health;         /* enum hstate_state as seen; UP without a
	                           check, UNKNOWN with a check but no data */
	bool in_rotation;       /* not drained */
	double dist_km;         /* < 0: not computed / no coordinates */
	double rtt_ms;          /* < 0: none */
	char reason[192];
};
struct svc_why {
	struct svc_why_ep *ep;  /* caller-provided, >= s->n_eps entries */
	size_t cap;
	char note[256];         /* service-level: rule matched, when-down... */
	int region;             /* latency: probe region used, -1 none */
};

/* Query path (why == NULL): chooses the answer for client c. hv may be
 * NULL (no health data). rng: caller's per-thread xorshift state (weighted
 * choice; any non-zero value). rr_step: rotation step for roundrobin,
 * and for all with fewer answers than healthy endpoints, which answers a
 * window of them starting at rr_step (each endpoint equally often; e.g.
 * a per-thread query counter). Never allocates or locks.
 *
 * Health of an endpoint: admin 'down' never answers (not even failing
 * open); admin 'up' is healthy; 'auto' without a check is healthy; 'auto'
 * with a check follows hv: UP healthy, DOWN not; UNKNOWN (no report yet,
 * or no view) counts as healthy. Drained endpoints are out of rotation.
 *
 * Candidates are healthy endpoints in rotation; the most specific matching
 * rule with a candidate restricts them to its targets; then the policy
 * chooses (see README). No candidate: when_down (open: every endpoint not
 * forced down counts as a candidate; closed: servfail; target: the
 * fallback). With why != NULL, fills it (load time: uses snprintf). */
void svc_select(const struct svc_service *s, const struct svc_client *c,
                const struct hstate_view *hv, uint64_t *rng,
                uint32_t rr_step, struct svc_answer *out,
                struct svc_why *why);
/* The same for a query of type qtype (1 A, 28 AAAA; 0 any type): only
 * endpoints that can answer it take part (A: A and CNAME endpoints; AAAA:
 * AAAA and CNAME), so a dual-stack service answers each family from its
 * own healthy endpoints, and when-down applies per family. A service with
 * no endpoint of that type that is not forced down, but with others,
 * returns n == 0 without servfail (NODATA). */
void svc_select_type(const struct svc_service *s, uint16_t qtype,
                     const struct svc_client *c,
                     const struct hstate_view *hv, uint64_t *rng,
                     uint32_t rr_step, struct svc_answer *out,
                     struct svc_why *why);

/* The same with the endpoints' load for spill-over (NULL: none known:
 * nobody is full, and spare capacity is the declared capacity). */
void svc_select_load(const struct svc_service *s, uint16_t qtype,
                     const struct svc_client *c,
                     const struct hstate_view *hv,
                     const struct svc_load *load, uint64_t *rng,
                     uint32_t rr_step, struct svc_answer *out,
                     struct svc_why *why);
/* A load entry's answers per second and admitted share (0..1); 0 and 1
 * for ids without an entry or without a table. Any thread. */
double svc_load_rate(const struct svc_load *l, uint32_t id);
double svc_load_admit(const struct svc_load *l, uint32_t id);

/* Helpers shared with gslbctl (any thread, no allocation). */

/* Parses a domain name (trailing dot optional, any case) into lower-case
 * wire form (wire: SVC_NAME_MAX bytes) and canonical text (text: 256
 * bytes: lower case, trailing dot). One or more labels of 1..63 letters,
 * digits, '-' (not first or last) and '_'; at most 255 wire octets; the
 * root alone is not accepted, nor an all-digit last label (so "1.2.3.4."
 * is not a name). Returns the wire length, or -EINVAL with why (a static
 * string) set. */
int svc_name_parse(const char *in, uint8_t *wire, char *text,
                   const char **why);
/* Parses a TARGET: IPv4, IPv6, or a domain name that ends in '.'. Fills
 * type, rdata (16 bytes room; names: SVC_NAME_MAX) and canonical text (256
 * bytes). Returns the rdata length or -EINVAL with why set. */
int svc_target_parse(const char *in, uint16_t *type, uint8_t *rdata,
                     char *text, const char **why);
/* Policy names "failover"... and back (-EINVAL). */
const char *svc_policy_name(unsigned p);
int svc_policy_parse(const char *s);
const char *svc_admin_name(unsigned a);
int svc_admin_parse(const char *s);
/* Answers default of a policy (roundrobin: SVC_MAX_ANSWERS). */
unsigned svc_default_answers(unsigned policy);

#endif
