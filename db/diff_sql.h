/* db/diff_sql.h - the SQLite side of db/diff.h, for db/ only: making a
 * plan from two stores, checking it, applying it, copying a service into a
 * scratch store. Load time only; the caller's thread owns the handles. */
#ifndef DB_DIFF_SQL_H
#define DB_DIFF_SQL_H
#include <stdbool.h>
#include <stddef.h>

#include <sqlite3.h>

struct cfg_plan;
struct store;

/* Computes what turns cur's configuration into want's (want: a scratch
 * store holding the validated target configuration, e.g. filled by
 * cfg_import_fill). Reads cur inside the caller's transaction if one is
 * open. The plan reads want until it is freed; own_want (NULL: none) is
 * the store behind want, closed with the plan (also on failure). 0 with
 * *out (free with cfg_plan_free), or -EIO/-ENOMEM with err. */
int cfg_plan_make(sqlite3 *cur, sqlite3 *want, struct store *own_want,
                  struct cfg_plan **out, char *err, size_t errlen);

/* Writes the plan into cur (no transaction of its own: the caller holds
 * one). Values are copied from the want store the plan was made with. */
int cfg_plan_apply(struct cfg_plan *p, sqlite3 *cur, char *err,
                   size_t errlen);

/* Copies service name (canonical) with its endpoints and rules from one
 * store into another (a scratch store); nothing when it does not exist.
 * 0 or -EIO. */
int cfg_copy_service(sqlite3 *from, const char *name, sqlite3 *to);

/* Checks a plan against what takes a service down: removing a service,
 * removing an endpoint that a rule names, leaving a service that had an
 * endpoint in rotation (not drained, not forced down) with none. before
 * and after are stores holding the state before and after the plan (at
 * least the services it names). 0, or -EPERM with err saying what would
 * break (the caller's --force / "force": true allows it). */
int cfg_plan_guard(const struct cfg_plan *p, sqlite3 *before, sqlite3 *after,
                   char *err, size_t errlen);

/* Change i of p in the columns of the audit table (db/audit_sql.h):
 * rank orders the kinds as a plan does; old and new are JSON text (or
 * NULL), to free; the strings point into p. 0 or -ENOMEM. */
struct cfg_change_cols {
	int rank;
	const char *op, *kind, *service, *key, *field;
	char *old, *new;
};
int cfg_plan_cols(const struct cfg_plan *p, size_t i,
                  struct cfg_change_cols *out);

/* A planner: the plan of one service at a time between cur and want
 * (want: a scratch store holding the validated target of that service,
 * or nothing to remove it), with its statements prepared once for many
 * services. The plan is the planner's, valid until its next plan. */
struct cfg_planner;
int cfg_planner_new(sqlite3 *cur, sqlite3 *want, struct cfg_planner **out);
void cfg_planner_free(struct cfg_planner *pl);         /* NULL is fine */
/* What turns cur's service name (canonical) into want's. 0 or -EIO /
 * -ENOMEM with err. */
int cfg_planner_plan(struct cfg_planner *pl, const char *name,
                     const struct cfg_plan **out, char *err, size_t errlen);
/* cfg_plan_guard of the last plan (before = cur, after = want); *rule
 * says which check failed (1 service removed, 2 endpoint named by a
 * rule, 3 none left in rotation), 0 none. */
int cfg_planner_guard(struct cfg_planner *pl, int *rule, char *err,
                      size_t errlen);
/* cfg_plan_apply of the last plan into cur. */
int cfg_planner_apply(struct cfg_planner *pl, char *err, size_t errlen);

#endif
