/* dnsd/etcdsync.h - dnsd --etcd: a thread of its own (own event_base,
 * own store handle) that keeps the store a replica of the configuration
 * in etcd (cluster/replica.h). It resumes from the revision recorded in
 * the store (a full sync when there is none, or when etcd compacted past
 * it), follows the watch stream of the prefix (on a member that has a
 * leader), moves to the next member with a bounded backoff when the
 * stream breaks, and registers the node under PREFIX "nodes/" NAME on a
 * lease with the revision it applied. The control thread picks up each
 * applied change as it picks up any commit to the store (data_version):
 * at once when the thread calls conf.applied after each commit, else at
 * its next store poll; answers keep coming from the replica whatever etcd
 * does.
 *
 * Shares nothing with the query path: its state is read by the control
 * thread (status, metrics) under a mutex. */
#ifndef DNSD_ETCDSYNC_H
#define DNSD_ETCDSYNC_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>
#include <jansson.h>

struct etcdsync;

struct etcdsync_conf {
	const char *const *urls;
	size_t n_urls;
	const char *prefix;              /* NULL: "/gslb/" */
	const char *node;                /* NULL: the host name */
	const char *db;                  /* the store's path */
	/* Behind by this many revisions or more: catch up from ranges
	 * (replica_catchup) instead of the watch's history (0: 5000). */
	int64_t catchup_revisions;
	const char *ca_file, *cert_file, *key_file;   /* https members */
	/* Called on the thread after each commit to the store (may be
	 * NULL): must only wake the caller's own loop (async-signal-safe
	 * work such as writing to an eventfd). */
	void (*applied)(void *arg);
	void *applied_arg;
};

/* Checks conf and starts the thread. NULL with err on failure (a bad URL,
 * an unreadable certificate, a store that cannot be opened). */
struct etcdsync *etcdsync_start(const struct etcdsync_conf *conf, char *err,
                                size_t errlen);
/* Stops the thread (within a request timeout) and frees. NULL is fine. */
void etcdsync_stop(struct etcdsync *s);

/* The revision of the last configuration change applied (0: none). */
int64_t etcdsync_config_revision(struct etcdsync *s);
/* Whether a watch on etcd is open (a member with a leader answers). */
bool etcdsync_connected(struct etcdsync *s);
/* The "etcd" object of GET /v1/status (new reference). */
json_t *etcdsync_status_json(struct etcdsync *s);
/* Appends the dnsd_etcd_* metrics to out. 0 or -ENOMEM. */
int etcdsync_metrics(struct etcdsync *s, struct evbuffer *out);

#endif
