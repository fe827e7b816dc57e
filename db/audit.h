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
 * Observing a write is db/-internal (db/audit_sql.h). Load time only.
 * The write context (who, force, dry run, and what the
 * last write did) belongs to the calling thread: set it with
 * cfg_write_use() before calling db/edit.h or db/export.h writes. */
#ifndef DB_AUDIT_H
#define DB_AUDIT_H
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

struct cfg_plan;
struct store;

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
/* cfg_write_use that returns the context it replaces (NULL: none), to put
 * it back after a write of one's own. */
struct cfg_write *cfg_write_swap(struct cfg_write *w);
/* Frees w->done. */
void cfg_write_done(struct cfg_write *w);

/* The thread's context now (never NULL; defaults when none is set). */
const struct cfg_write *cfg_write_current(void);

/* The store's configuration version (0 for a new store), or -EIO. */
long long cfg_store_version(struct store *db);

/* The latest audit rows (newest last), of one service or all (NULL), at
 * most limit: [{"version", "time", "who", "source", "op", "kind",
 * "service", "target"?, "match"?, "field"?, "old"?, "new"?}]. NULL with
 * err on failure. */
json_t *cfg_history(struct store *db, const char *service, int limit,
                    char *err, size_t errlen);

#endif
