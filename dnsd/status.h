/* dnsd/status.h - what dnsd tells operators: the JSON status document
 * (GET /v1/status) and Prometheus metrics (GET /metrics). Control thread
 * only (load time): reads the snapshot in force, the summed per-thread
 * counters and the health state; never touches the query path. */
#ifndef DNSD_STATUS_H
#define DNSD_STATUS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "dnsd/snap.h"
#include "dnsd/stats.h"
#include "health/hstate.h"

/* The documents whose snapshot- and health-only part is cached. */
enum { STATUS_DOC_STATUS, STATUS_DOC_METRICS, STATUS_DOCS };

/* The cache of those parts, keyed by (snapshot generation, health state
 * and its hstate_generation()): a request in the same generation reuses
 * the bytes rendered by the first one. Control thread only. */
struct status_cache;
/* New empty cache, or NULL. */
struct status_cache *status_cache_new(void);
/* Frees c (NULL is fine); replies still being sent keep their bytes. */
void status_cache_free(struct status_cache *c);
/* How often doc's part was rendered and served from c (0 with c NULL). */
void status_cache_counts(const struct status_cache *c, unsigned doc,
			 uint64_t *renders, uint64_t *hits);

/* Kinds of snapshot builds from the store. */
enum { STATUS_BUILD_FULL, STATUS_BUILD_INCREMENTAL, STATUS_BUILD_KINDS };

struct status_src {
	const struct snap *snap;      /* in force */
	const struct stats *stats;    /* summed over the workers */
	const struct hstate *hs;      /* NULL without health */
	unsigned threads;
	size_t svc_skipped;           /* services outside every zone */
	size_t db_problems;           /* rows skipped by the loader */
	double started;               /* unix seconds */
	double last_reload;           /* unix seconds, 0 = never */
	bool last_reload_ok;
	double last_db_load;          /* unix seconds of the last store load */
	bool db_ok;                   /* the last store read worked */
	/* Snapshot builds from the store by kind: how many, seconds spent
	 * (reading the store to publishing), the last one's seconds. */
	uint64_t builds[STATUS_BUILD_KINDS];
	double build_seconds[STATUS_BUILD_KINDS];
	double build_last[STATUS_BUILD_KINDS];
	const uint64_t *ep_answers;   /* answers per endpoint id, or NULL */
	size_t ep_cap;
	/* Per configured zone file: its last load attempt. */
	const char *const *zone_files;
	const double *zone_loaded;    /* unix seconds */
	const bool *zone_ok;
	size_t n_zone_files;
	/* The etcd revision of the configuration applied (0 without etcd). */
	int64_t config_revision;
	struct status_cache *cache;   /* NULL: render every time */
};

/* The status document but its "services" (new reference), or NULL when
 * out of memory: the caller may add keys before status_write(). */
json_t *status_json(const struct status_src *s);
/* Appends the whole status document to out: {"services": [...]} (from
 * the cache when the generations are the same as its last render), then
 * doc's keys (doc is consumed; status_json() and what the caller added).
 * Linear in the document. 0 or -ENOMEM. */
int status_write(const struct status_src *s, json_t *doc,
		 struct evbuffer *out);
/* Appends the Prometheus text exposition to out; the per-endpoint health
 * families come from the cache as the status's services do, the counters
 * and ages are read now. Linear in the output. 0 or -ENOMEM. */
int status_metrics(const struct status_src *s, struct evbuffer *out);

#endif
