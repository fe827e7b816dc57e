/* cluster/etcd.h - a client for etcd v3 through its JSON gateway
 * (POST /v3/kv/range, /v3/kv/put, /v3/kv/deleterange, /v3/kv/txn,
 * /v3/watch, /v3/lease/grant, /v3/lease/keepalive,
 * /v3/maintenance/status), built on libevent's HTTP client and jansson.
 *
 * Keys and values are bytes (base64 on the wire); int64 fields travel as
 * JSON strings and absent fields are zero (proto3 defaults).
 *
 * The synchronous calls (range, put, delete, txn, lease, status) each run a
 * private event_base until the reply or the timeout; they try the member
 * URLs in turn, starting with the one that answered last, and remember the
 * one that worked. A client is used by one thread at a time.
 *
 * Errors are negative errno values; etcd_error() then says what failed and
 * at which URL. A write that failed may still have been committed when
 * etcd_outcome_unknown() is true (the request reached a member and the
 * reply was lost, timed out or said "request timed out"); otherwise a
 * failed write changed nothing. */
#ifndef CLUSTER_ETCD_H
#define CLUSTER_ETCD_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct etcd;                                     /* opaque */

/* How to reach the cluster. urls: "http://host:port" or "https://..."
 * (at least one). ca_file, cert_file, key_file: for https members (the CA
 * that signed the members' certificates, NULL for the system's; a client
 * certificate and key when members require one, else NULL). timeout_ms:
 * per request (0: 5000). */
struct etcd_config {
	const char *const *urls;
	size_t n_urls;
	const char *ca_file, *cert_file, *key_file;
	int timeout_ms;
};

/* A key-value pair as etcd returns it. key and value are NUL-terminated
 * (the NUL is not counted in the lengths). */
struct etcd_kv {
	char *key;
	size_t key_len;
	char *value;
	size_t value_len;
	int64_t create_revision, mod_revision, version, lease;
};

/* What a range returned: the pairs, in key order, and the store revision
 * they were read at (header.revision). more: etcd had more than the
 * limit. */
struct etcd_range {
	struct etcd_kv *kvs;
	size_t n;
	int64_t revision;
	int64_t count;
	bool more;
};

/* New client, or NULL with the reason in err (a bad URL, an unreadable
 * certificate). Caller owns it: etcd_free(). */
struct etcd *etcd_new(const struct etcd_config *cfg, char *err, size_t errlen);
void etcd_free(struct etcd *e);                  /* NULL is fine */

/* The message of the last failed call ("" after a success), naming the URL
 * and what failed. Valid until the next call. */
const char *etcd_error(const struct etcd *e);
/* True when the last failed write may have been committed anyway. */
bool etcd_outcome_unknown(const struct etcd *e);
/* The URL of the member that answered last (or the first one). */
const char *etcd_current_url(const struct etcd *e);
size_t etcd_url_count(const struct etcd *e);
const char *etcd_url(const struct etcd *e, size_t i);

/* Sets how long a synchronous call waits for data (ms; > 0), e.g. longer
 * for a large range; returns the previous value. */
int etcd_timeout(struct etcd *e, int timeout_ms);

/* Range over key (prefix: every key starting with key) at revision rev
 * (0: the latest). limit 0: no limit. out is filled (caller frees it with
 * etcd_range_fini()). 0, -ECANCELED when rev was compacted, or another
 * negative errno. */
int etcd_range(struct etcd *e, const char *key, bool prefix, int64_t rev,
               int64_t limit, struct etcd_range *out);
/* The same, only the keys last changed at min_mod or later (etcd's
 * min_mod_revision filter: the server still scans the range, the reply
 * carries only those). */
int etcd_range_since(struct etcd *e, const char *key, bool prefix,
                     int64_t rev, int64_t min_mod, struct etcd_range *out);
void etcd_range_fini(struct etcd_range *r);      /* zeroes it */

/* Put key = value (len bytes) with lease (0: none). *rev (may be NULL):
 * the revision of the change. */
int etcd_put(struct etcd *e, const char *key, const void *value, size_t len,
             int64_t lease, int64_t *rev);
/* Delete key (prefix: every key under it). *deleted and *rev may be NULL. */
int etcd_delete(struct etcd *e, const char *key, bool prefix,
                int64_t *deleted, int64_t *rev);

/* One comparison of a transaction: key's target compared with num (or
 * value for ETCD_CMP_VALUE). A missing key has create/mod revision and
 * version 0. */
enum etcd_cmp_target { ETCD_CMP_VERSION, ETCD_CMP_CREATE, ETCD_CMP_MOD,
                       ETCD_CMP_VALUE };
enum etcd_cmp_result { ETCD_CMP_EQUAL, ETCD_CMP_GREATER, ETCD_CMP_LESS,
                       ETCD_CMP_NOT_EQUAL };
struct etcd_cmp {
	const char *key;
	enum etcd_cmp_target target;
	enum etcd_cmp_result result;
	int64_t num;
	const void *value;
	size_t value_len;
};

/* One operation of a transaction. */
enum etcd_op_type { ETCD_OP_RANGE, ETCD_OP_PUT, ETCD_OP_DELETE };
struct etcd_op {
	enum etcd_op_type type;
	const char *key;
	bool prefix;             /* range, delete: every key under key */
	const void *value;       /* put */
	size_t value_len;
	int64_t lease;           /* put */
};

/* What a transaction did: succeeded (the compares held and the success ops
 * ran, else the failure ops ran), the revision after it, and one range per
 * operation that ran (empty for puts and deletes), in order. */
struct etcd_txn_result {
	bool succeeded;
	int64_t revision;
	struct etcd_range *ranges;
	size_t n_ranges;
};

/* A transaction: if all compares hold, the success ops, else the failure
 * ops; one revision. out may be NULL; else the caller frees it with
 * etcd_txn_result_fini(). */
int etcd_txn(struct etcd *e, const struct etcd_cmp *cmps, size_t n_cmps,
             const struct etcd_op *success, size_t n_success,
             const struct etcd_op *failure, size_t n_failure,
             struct etcd_txn_result *out);
void etcd_txn_result_fini(struct etcd_txn_result *r);

/* A lease of ttl seconds: *id and the TTL granted (may be NULL). */
int etcd_lease_grant(struct etcd *e, int64_t ttl, int64_t *id, int64_t *granted);
/* Refreshes lease id; *ttl (may be NULL) is its remaining TTL. -ENOENT when
 * the lease has expired (etcd answers TTL 0 then). */
int etcd_lease_keepalive(struct etcd *e, int64_t id, int64_t *ttl);
/* Revokes lease id and the keys attached to it. */
int etcd_lease_revoke(struct etcd *e, int64_t id);

/* The answering member's status: the store revision, the raft leader's
 * member id (0: none known) and its own member id. Any may be NULL. */
int etcd_status(struct etcd *e, int64_t *revision, uint64_t *leader,
                uint64_t *member);

/* A watch: a stream of changes under a key, from a revision on, delivered
 * on the caller's event_base. */
struct etcd_watch;
enum etcd_event_type { ETCD_EVENT_PUT, ETCD_EVENT_DELETE };
struct etcd_event {
	enum etcd_event_type type;
	struct etcd_kv kv;       /* a delete has only key and mod_revision */
};
enum etcd_watch_kind {
	ETCD_WATCH_CREATED,      /* the member accepted the watch */
	ETCD_WATCH_EVENTS,       /* events (all of one revision or more) */
	ETCD_WATCH_COMPACTED,    /* start revision compacted: resync (ends) */
	ETCD_WATCH_CLOSED,       /* canceled, no leader, stream ended, network
	                            error or timeout (ends); message says which */
};
/* One watch response. events are in revision order; revision is the
 * header's (the store revision the member had when it sent this).
 * compact_revision: for ETCD_WATCH_COMPACTED, the oldest revision still
 * available. message: for ETCD_WATCH_CLOSED. Borrowed: valid during the
 * callback. */
struct etcd_watch_resp {
	enum etcd_watch_kind kind;
	const struct etcd_event *events;
	size_t n_events;
	int64_t revision;
	int64_t compact_revision;
	const char *message;
};
/* Called on base's thread. After ETCD_WATCH_COMPACTED or ETCD_WATCH_CLOSED
 * no further call comes; free the watch then (not from inside the
 * callback: the callback may e.g. break the loop and the caller frees). */
typedef void (*etcd_watch_cb)(const struct etcd_watch_resp *r, void *arg);

/* Starts a watch on key (prefix: every key under it) from start_rev, at the
 * client's current member, requiring a leader (a member cut off from the
 * quorum ends the stream instead of staying silent). idle_ms: end the
 * stream with ETCD_WATCH_CLOSED after this long without data (0: never).
 * rotate: start at the member after the current one (after a failure).
 * Returns the watch or NULL with etcd_error() set. */
struct etcd_watch *etcd_watch_start(struct etcd *e, struct event_base *base,
                                    const char *key, bool prefix,
                                    int64_t start_rev, int idle_ms,
                                    bool rotate, etcd_watch_cb cb, void *arg);
/* The URL the watch talks to. */
const char *etcd_watch_url(const struct etcd_watch *w);
void etcd_watch_free(struct etcd_watch *w);      /* NULL is fine */

/* Base64 (standard alphabet, padded). etcd_b64_encode: caller frees the
 * NUL-terminated result (NULL on no memory). etcd_b64_decode: caller frees
 * *out (NUL-terminated, *outlen bytes); -EINVAL on bad input. */
char *etcd_b64_encode(const void *data, size_t len);
int etcd_b64_decode(const char *s, size_t slen, char **out, size_t *outlen);

/* The key just past every key starting with prefix (etcd's range_end for
 * a prefix); caller frees. "\0" when prefix is empty (every key). */
char *etcd_prefix_end(const char *prefix, size_t len, size_t *outlen);
#endif
