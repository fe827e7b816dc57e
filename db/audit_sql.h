/* db/audit_sql.h - the SQLite side of db/audit.h, for db/ only: observing
 * one write, recording a plan, and CFG_TXN, the transaction every
 * configuration write of db/edit.c runs in. */
#ifndef DB_AUDIT_SQL_H
#define DB_AUDIT_SQL_H
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <sqlite3.h>

#include "db/store_sql.h"

struct cfg_plan;

/* One observed write of one service on h (the caller holds the write
 * transaction): begin copies the service as it is into a scratch store. A
 * write of many services (import) makes its own plan and calls
 * cfg_plan_guard and cfg_record itself. */
struct cfg_observe {
	struct store *before;   /* scratch copy of the service */
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

/* cfg_record with the audit rows a writer elsewhere recorded for the same
 * change (a replica applying a cluster's change): the version and changes
 * come from p (what changed here), the audit rows are rows as they are
 * ([{"time", "who", "source", "op", "kind", "service", "target" or
 * "match", "field", "old", "new"}], the form of cfg_history without
 * "version"; old and new any JSON). The rows are recorded (one version,
 * their services in the change log) even when p is empty: a writer's
 * change this store already has, or changes that cancel out, stay in the
 * audit trail. -EINVAL with err when rows is not such a list (nothing
 * written). */
int cfg_record_rows(sqlite3 *h, const struct cfg_plan *p, const json_t *rows,
                    char *err, size_t errlen);
/* 0 when rows is a list cfg_record_rows takes, else -EINVAL with err. */
int cfg_rows_check(const json_t *rows, char *err, size_t errlen);
/* A bulk write's record (import): the changes are rows of table (columns
 * op, kind, service, key, field, old, new: the audit columns, key the
 * target or match), listed in the order of db/diff.h plans by order (an
 * ORDER BY clause). Bumps the version (into *version), writes audit and
 * changes rows, inside h's transaction. 0 or -EIO with err. */
int cfg_record_table(sqlite3 *h, const char *table, const char *order,
                     const char *source, long long *version, char *err,
                     size_t errlen);
/* An import records a service it adds as one audit row (op add, kind
 * service) instead of one per added object: its new value says what came
 * with it, {"endpoints": [TARGET, ...], "rules": [{"match", "targets":
 * [TARGET, ...]}, ...]} (targets sorted, rules by match, as the plan lists
 * them). Its text, from the two lists (references taken); NULL when out
 * of memory. cfg_record with source "import" and cfg_record_table's
 * writer (db/import.c) both write this form, with this one writer. */
struct cfg_added_rule {
	const char *match;
	const char *const *targets;
	size_t n;
};
char *cfg_added_text(const char *const *endpoints, size_t n,
                     const struct cfg_added_rule *rules, size_t nrules);
/* The same from JSON lists: endpoints [TARGET, ...], rules [{"match",
 * "targets": [...]}] (borrowed). */
char *cfg_added_text_json(const json_t *endpoints, const json_t *rules);

/* Whether changes are logged (journal, or the context's log_stderr);
 * then cfg_record_log logs change i of n (its text line and change
 * object) of version, the first ones one by one as cfg_record does. */
bool cfg_record_logs(void);
void cfg_record_log(long long version, const char *source, size_t i,
                    size_t n, const char *line, const json_t *c);

/* The version in h (inside the caller's transaction), or -EIO. */
long long cfg_version_of(sqlite3 *h);

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
