/* cluster/write.h - configuration writes against etcd: one recipe shared by
 * gslbctl --etcd and dnsd's API when dnsd runs with --etcd.
 *
 * Key layout under PREFIX (default "/gslb/"):
 *   PREFIX "services/" NAME  the JSON object of one service, exactly as in
 *                            the "services" array of the export document
 *                            (db/export.h), NAME its canonical name;
 *   PREFIX "audit/" ID       a JSON array of the audit rows of one write
 *                            ({"time", "who", "source", "op", "kind",
 *                            "service", "target" or "match", "field"?,
 *                            "old"?, "new"?}: the rows of cfg_history,
 *                            db/audit.h, without the store's version), put
 *                            in the same transaction as the change it
 *                            describes, so every node logs the same
 *                            history; ID is the time in nanoseconds (16 hex
 *                            digits, so keys sort by time), '-' and 8
 *                            random hex digits;
 *   PREFIX "nodes/" NODE     {"revision": N, ...} (each dnsd, with a lease).
 *
 * A write (cw_run):
 *   1. ranges PREFIX "services/" at one revision R into a scratch store
 *      (in memory; a value that is not a valid service is skipped with a
 *      warning, as an invalid row in SQLite);
 *   2. runs the caller's write on the scratch store, the code that writes a
 *      plain store (the same validation, guard rails, plan and audit rows);
 *   3. commits what it changed in one etcd transaction: compare each touched
 *      service key's mod_revision with its mod_revision at R (create
 *      revision 0 for a key that did not exist), then put the changed
 *      services, delete the removed ones and put the audit rows;
 *   4. when a compare failed (another writer came first), starts over from
 *      a fresh range, at most CW_ATTEMPTS times with a random pause, then
 *      fails with -EAGAIN ("conflict").
 * A change of more services than one transaction may hold (etcd's
 * --max-txn-ops, 128 by default, and its request size limit,
 * --max-request-bytes, 1.5 MiB) is committed in several transactions, in
 * order; it is then not atomic (cw_result.txns > 1).
 *
 * Blocking: every etcd request has a deadline (CW_TIMEOUT_MS per member
 * tried); a write takes at most about CW_ATTEMPTS of them. Load time only. */
#ifndef CLUSTER_WRITE_H
#define CLUSTER_WRITE_H
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

struct etcd;
struct store;

#define CW_ATTEMPTS     5
/* Services changed per transaction: etcd's default --max-txn-ops is 128
 * (a service is one compare and one put or delete; the audit row one
 * more put). */
#define CW_TXN_SERVICES 120
/* Bytes of values per transaction (etcd's default --max-request-bytes is
 * 1.5 MiB). */
#define CW_TXN_BYTES    (1024 * 1024)

/* The write to run on the scratch store: 0 or a negative errno with err
 * (its failures end the write as they are, nothing is committed). It runs
 * with the calling thread's db/audit.h write context (who, force, dry
 * run); it may run more than once (after a conflict) and should print
 * nothing itself. */
typedef int (*cw_fn)(struct store *scratch, void *arg, char *err,
                     size_t errlen);

enum cw_flags {
	/* The write replaces the whole configuration (import): also fails
	 * on a concurrent change of a service it did not touch. */
	CW_WHOLE = 1 << 0,
	/* One attempt: a conflict fails at once with -EAGAIN (another
	 * writer came first; its change arrives through the watch), and
	 * so does etcd unavailable (-EHOSTDOWN): for a node's own progress
	 * writes (a staged shift's stage or rollback), which must not hold
	 * its control thread and are tried again at its next pass. */
	CW_ONCE = 1 << 1,
};

struct cw_result {
	long long revision;     /* etcd's revision after the commit, or of
	                         * the range when nothing changed */
	unsigned attempts;      /* ranges taken (1 without a conflict) */
	unsigned txns;          /* transactions committed (> 1: split) */
	size_t services;        /* service keys written or deleted */
	bool unknown;           /* a request may have been applied but its
	                         * answer never came (see cw_run) */
};

/* Runs fn as one write under prefix (NULL: "/gslb/") against e. Returns
 * 0 when etcd committed it (or it changed nothing, or the write context
 * is a dry run: then nothing is sent), fn's error, or:
 *   -EAGAIN     conflict: other writers changed the same services on
 *               every attempt; nothing of this write is in etcd;
 *   -ETIMEDOUT  outcome unknown: a transaction was sent but no answer
 *               came (it may or may not have been applied; res->unknown);
 *   -EHOSTDOWN  etcd unavailable (no member answered, or no leader):
 *               nothing was changed;
 *   -EIO        an unexpected answer from etcd.
 * err says which, in words ("outcome unknown", "nothing changed"). */
int cw_run(struct etcd *e, const char *prefix, unsigned flags, cw_fn fn,
           void *arg, struct cw_result *res, char *err, size_t errlen);

/* The scratch store of the configuration under prefix at one revision:
 * *out (caller store_close), *rev the revision. Invalid values are
 * skipped, each with a warning (log_warn). 0 or a negative errno as
 * cw_run's. */
int cw_scratch(struct etcd *e, const char *prefix, struct store **out,
               long long *rev, char *err, size_t errlen);

/* gslbctl --etcd status: {"prefix", "cluster_revision" (etcd's now),
 * "config_revision" (of the last configuration change), "services",
 * "audit" (keys), "nodes": [{"name", "config_revision" and "revision"
 * (what the node recorded under PREFIX nodes/: the configuration change
 * and the revision it applied), "lag" (configuration revisions behind),
 * "current", "time" (of its record)}]} (new reference) or NULL with err. */
json_t *cw_cluster_status(struct etcd *e, const char *prefix, char *err,
                          size_t errlen);

/* The latest audit rows under prefix (newest last; by key, i.e. by the
 * writer's time), of one service or all (NULL), at most limit: the form
 * of cfg_history (db/audit.h) with "version" the etcd revision of the
 * write. *rev: the revision read at. NULL with err on failure. */
json_t *cw_history(struct etcd *e, const char *prefix, const char *service,
                   int limit, long long *rev, char *err, size_t errlen);

/* Text of a cw_run failure for people: "conflict", "outcome unknown",
 * "etcd unavailable (nothing changed)". */
const char *cw_strerror(int rc);

#endif
