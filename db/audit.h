/* db/audit.h - every configuration write observed: what it changed (a
 * db/diff.h plan), checked against what takes a service down, recorded in
 * the store (store_version, changes, audit) in the same transaction, and
 * logged (to the journal with structured fields when running under
 * systemd).
 *
 * The store's version grows by one with each write that changed
 * something; the changes table names the services each version touched,
 * so a reader holding version N reloads only those (SELECT DISTINCT
 * service FROM changes WHERE version > N). Every writer goes through here:
 * gslbctl, the HTTP API, import, and any later replication applier.
 *
 * Load time only. The write context (who, force, dry run, and what the
 * last write did) belongs to the calling thread: set it with
 * cfg_write_use() before calling db/edit.h or db/export.h writes. */
#ifndef DB_AUDIT_H
#define DB_AUDIT_H
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <sqlite3.h>

#include "db/store.h"

struct cfg_plan;

struct cfg_write {
	const char *who;        /* NULL: "uid N (user)" of this process */
	const char *source;     /* "gslbctl", "api", "import"; NULL: "gslbctl" */
	bool force;             /* allow what takes a service down */
	bool dry_run;           /* check and plan, then roll back */
	bool log_stderr;        /* also log each change with log_info()
	                         * (dnsd); under systemd the journal gets
	                         * them with fields either way */
	/* Out: what the last write changed (or would change), owned here
	 * (freed by the next write and by cfg_write_done), and the store's
	 * version after it. */
	struct cfg_plan *done;
	long long version;
};

/* The calling thread's context for the next writes (NULL: defaults, no
 * force, no dry run, results not kept). */
void cfg_write_use(struct cfg_write *w);
/* Frees w->done. */
void cfg_write_done(struct cfg_write *w);

/* One observed write of one service on h (the caller holds the write
 * transaction): begin copies the service as it is into a scratch store. A
 * write of many services (import) makes its own plan and calls
 * cfg_plan_guard and cfg_record itself. */
struct cfg_observe {
	sqlite3 *before;
	char service[256];
};
int cfg_observe_begin(sqlite3 *h, const char *service, struct cfg_observe *o,
                      char *err, size_t errlen);
/* After the write: plan = before vs now; guard (unless force); record.
 * Returns 0 (commit), 1 (dry run: roll back, nothing happened), < 0. */
int cfg_observe_end(sqlite3 *h, struct cfg_observe *o, char *err,
                    size_t errlen);
void cfg_observe_abort(struct cfg_observe *o);

/* Records plan p (already applied to h, inside h's transaction): bumps
 * the version, writes changes and audit rows, logs. source NULL: the
 * context's. Nothing when p is empty. */
int cfg_record(sqlite3 *h, const struct cfg_plan *p, const char *source,
               char *err, size_t errlen);

/* The thread's context now (never NULL; defaults when none is set). */
const struct cfg_write *cfg_write_current(void);

/* The store's configuration version (0 for a new store), or -EIO. */
long long cfg_store_version(sqlite3 *h);

/* The latest audit rows (newest last), of one service or all (NULL), at
 * most limit: [{"version", "time", "who", "source", "op", "kind",
 * "service", "target"?, "match"?, "field"?, "old"?, "new"?}]. NULL with
 * err on failure. */
json_t *cfg_history(sqlite3 *h, const char *service, int limit, char *err,
                    size_t errlen);

/* Runs body (an int expression: a db/edit.c write without transaction)
 * in one write transaction on h, observed for service (see above); the
 * calling function returns its result. */
#define CFG_TXN(h, service, err, errlen, body)                             \
	do {                                                               \
		struct cfg_observe o_;                                     \
		int rc_;                                                   \
		if (store_begin(h, true) < 0)                              \
			return store_sqlerr(h, err, errlen, "begin");      \
		rc_ = cfg_observe_begin(h, service, &o_, err, errlen);     \
		if (rc_ == 0) {                                            \
			rc_ = (body);                                      \
			if (rc_ == 0)                                      \
				rc_ = cfg_observe_end(h, &o_, err, errlen); \
			else                                               \
				cfg_observe_abort(&o_);                    \
		}                                                          \
		if (rc_ == 0 && store_commit(h) < 0)                       \
			rc_ = store_sqlerr(h, err, errlen, "commit");      \
		if (rc_ != 0)                                              \
			store_rollback(h);                                 \
		return rc_ < 0 ? rc_ : 0;                                  \
	} while (0)

#endif
