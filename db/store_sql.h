/* db/store_sql.h - the SQLite side of db/store.h, for db/ only: the
 * handle behind struct store, transactions, statements, error helpers.
 * Nothing outside db/ includes this file (a build check enforces it). */
#ifndef DB_STORE_SQL_H
#define DB_STORE_SQL_H
#include <stdbool.h>
#include <stddef.h>

#include <sqlite3.h>


struct store {
	sqlite3 *h;
};

/* BEGIN IMMEDIATE (write) or BEGIN (read) / COMMIT / ROLLBACK. Return 0 or
 * -EIO (message in sqlite3_errmsg(h)). store_rollback never fails loudly. */
int store_begin(sqlite3 *h, bool write);
int store_commit(sqlite3 *h);
void store_rollback(sqlite3 *h);

/* Runs one or more SQL statements without results. 0 or -EIO. */
int store_exec(sqlite3 *h, const char *sql);

/* Error helpers of the store's writers (db/ only). store_errf writes the
 * message (printf format) into err (errlen bytes, may be 0) and returns rc.
 * store_sqlerr describes h's last SQLite error after "what: ": a
 * constraint failure is -EINVAL ("rejected by the schema"), anything else
 * -EIO. */
int store_errf(char *err, size_t errlen, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
int store_sqlerr(sqlite3 *h, char *err, size_t errlen, const char *what);

/* Returns from the calling function the result of body (an int
 * expression) run inside one write transaction on h: committed when body
 * returned 0, rolled back on any error, which is described in err. */
#define STORE_TXN(h, err, errlen, body)                                  \
	do {                                                             \
		int rc_;                                                 \
		if (store_begin(h, true) < 0)                            \
			return store_sqlerr(h, err, errlen, "begin");    \
		rc_ = (body);                                            \
		if (rc_ == 0 && store_commit(h) < 0)                     \
			rc_ = store_sqlerr(h, err, errlen, "commit");    \
		if (rc_ < 0)                                             \
			store_rollback(h);                               \
		return rc_;                                              \
	} while (0)

#endif
