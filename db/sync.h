/* db/sync.h - applying a configuration held elsewhere (a cluster's shared
 * key space: cluster/replica.c) to this store, service by service, through
 * the same plans (db/diff.h) and records (db/audit.h) as every other
 * write: rows that stay keep their ids (and so their health), the store's
 * version and change log move as for gslbctl, and the audit trail gets the
 * writer's own rows when the change brings them.
 *
 * One cfg_sync is one write transaction on the store. Within it, groups of
 * service documents are applied one after the other (cfg_sync_flush: one
 * version each), then the position reached is recorded with the commit.
 * Load time only; the caller's thread owns the store and the handle. */
#ifndef DB_SYNC_H
#define DB_SYNC_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct store;
struct cfg_sync;

/* Where a replica stands (the replica table; all 0 / "" for a plain
 * store). */
struct cfg_sync_pos {
	int64_t revision;         /* everything up to it is applied */
	int64_t config_revision;  /* the last configuration change applied */
	char prefix[256];         /* of the key space it follows */
};

/* Reads db's position. 0, or -EIO with err. */
int cfg_sync_position(struct store *db, struct cfg_sync_pos *pos, char *err,
                      size_t errlen);
/* Forgets the position (the store becomes a plain store again: its
 * configuration stays). 0 or -EIO. */
int cfg_sync_forget(struct store *db, char *err, size_t errlen);

/* A syncer for db (borrowed): its scratch stores are made once and serve
 * every transaction. NULL with err on failure. */
struct cfg_sync *cfg_sync_new(struct store *db, char *err, size_t errlen);
void cfg_sync_free(struct cfg_sync *s);          /* NULL is fine */
/* Opens a write transaction on the store. 0, or -EIO with err. */
int cfg_sync_begin(struct cfg_sync *s, char *err, size_t errlen);
/* Adds to the current group: service name (as the key names it) becomes
 * doc (one service object of the export format, db/export.h). The
 * document is validated as import validates it and must name the same
 * service; -EINVAL with err saying why when not (nothing added). */
int cfg_sync_put(struct cfg_sync *s, const char *name, const json_t *doc,
                 char *err, size_t errlen);
/* Adds to the current group: service name is removed. */
int cfg_sync_remove(struct cfg_sync *s, const char *name, char *err,
                    size_t errlen);
/* Adds to the current group: service name stays as it is in the store
 * (for a full group: a service whose new document was invalid). */
int cfg_sync_keep(struct cfg_sync *s, const char *name, char *err,
                  size_t errlen);
/* Applies the current group as one write. full: the group is the whole
 * configuration (services not in it are removed); else only the services
 * it names change. rows (may be NULL): the audit rows the writer recorded
 * (cfg_record_rows in db/audit_sql.h); when NULL, not valid, or naming
 * not every service the plan changes, the plan's own rows are recorded, with the who and source of the thread's write
 * context (db/audit.h). *changed (may be NULL): the number of changes. */
int cfg_sync_flush(struct cfg_sync *s, bool full, const json_t *rows,
                   size_t *changed, char *err, size_t errlen);
/* Records pos and commits (a group not flushed is dropped); rolls back
 * on failure. */
int cfg_sync_commit(struct cfg_sync *s, const struct cfg_sync_pos *pos,
                    char *err, size_t errlen);
/* Rolls back. */
void cfg_sync_abort(struct cfg_sync *s);

#endif
