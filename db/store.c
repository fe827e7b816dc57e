/* db/store.c - opening the SQLite store, schema creation and migrations.
 * Load time only; see db/store.h. */
#include "db/store.h"
#include "db/store_sql.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Version 3: staged traffic shifts and flap damping (the tables as in
 * db/schema.sql, IF NOT EXISTS so that the step also runs after the full
 * schema; tests/unit/test_store.c checks that a migrated store equals a
 * new one). */
static const char migrate_v3[] =
	"CREATE TABLE IF NOT EXISTS shifts (\n"
	"\tservice_id    INTEGER PRIMARY KEY\n"
	"\t              REFERENCES services(id) ON DELETE CASCADE,\n"
	"\ttarget_id     INTEGER NOT NULL\n"
	"\t              REFERENCES endpoints(id) ON DELETE CASCADE,\n"
	"\tsteps         TEXT NOT NULL CHECK (length(steps) > 0),\n"
	"\tevery         REAL NOT NULL CHECK (every > 0),\n"
	"\tmax_rtt_ms    REAL CHECK (max_rtt_ms IS NULL OR max_rtt_ms > 0),\n"
	"\tstage         INTEGER NOT NULL CHECK (stage >= 1),\n"
	"\tstate         TEXT NOT NULL\n"
	"\t              CHECK (state IN ('running', 'paused', 'done',\n"
	"\t                               'rolled-back', 'aborted')),\n"
	"\tstarted       REAL NOT NULL,\n"
	"\tstage_started REAL NOT NULL,\n"
	"\tleft          REAL,\n"
	"\treason        TEXT NOT NULL DEFAULT '',\n"
	"\tprev          TEXT NOT NULL DEFAULT '',\n"
	"\tupdated       REAL NOT NULL\n"
	");\n"
	"CREATE TABLE IF NOT EXISTS damping (\n"
	"\tservice_id   INTEGER PRIMARY KEY\n"
	"\t             REFERENCES services(id) ON DELETE CASCADE,\n"
	"\tenabled      INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),\n"
	"\tpenalty      REAL NOT NULL CHECK (penalty > 0),\n"
	"\tsuppress     REAL NOT NULL,\n"
	"\treuse        REAL NOT NULL CHECK (reuse > 0 AND reuse < suppress),\n"
	"\thalf_life    REAL NOT NULL CHECK (half_life > 0),\n"
	"\tmax_suppress REAL NOT NULL CHECK (max_suppress > 0)\n"
	");\n"
	"CREATE TABLE IF NOT EXISTS damp_state (\n"
	"\tendpoint_id INTEGER PRIMARY KEY\n"
	"\t            REFERENCES endpoints(id) ON DELETE CASCADE,\n"
	"\tpenalty     REAL NOT NULL,\n"
	"\tat          REAL NOT NULL,\n"
	"\tsuppressed  INTEGER NOT NULL CHECK (suppressed IN (0, 1)),\n"
	"\treuse_at    REAL NOT NULL DEFAULT 0\n"
	");\n";

/* Version 7: the zones each dnsd serves (db/served.h), as in
 * db/schema.sql. */
static const char migrate_v7[] =
	"CREATE TABLE IF NOT EXISTS served_zones (\n"
	"\tnode    TEXT NOT NULL CHECK (length(node) > 0),\n"
	"\tzone    TEXT NOT NULL CHECK (length(zone) > 0),\n"
	"\tupdated REAL NOT NULL,\n"
	"\tPRIMARY KEY (node, zone)\n"
	");\n";

/* Version 6: the position of a replica of a cluster's configuration
 * (cluster/replica.c), as in db/schema.sql. */
static const char migrate_v6[] =
	"CREATE TABLE IF NOT EXISTS replica (\n"
	"\tid              INTEGER PRIMARY KEY CHECK (id = 1),\n"
	"\trevision        INTEGER NOT NULL DEFAULT 0 CHECK (revision >= 0),\n"
	"\tconfig_revision INTEGER NOT NULL DEFAULT 0\n"
	"\t                CHECK (config_revision >= 0),\n"
	"\tprefix          TEXT NOT NULL DEFAULT '',\n"
	"\tupdated         REAL NOT NULL DEFAULT 0\n"
	");\n";

/* Columns added to existing tables, with the schema version that adds
 * them. SQLite has no ADD COLUMN IF NOT EXISTS, so migrate() adds each one
 * that is missing after running its version's step: every step stays
 * repeatable, new stores get them the same way, and db/schema.sql lists
 * them in a comment at its end. */
static const struct {
	int version;
	const char *table, *column, *decl;
} added_columns[] = {
	/* 5: spill-over by capacity. */
	{ 5, "endpoints", "capacity", "REAL CHECK (capacity IS NULL OR "
	  "capacity BETWEEN 0.001 AND 1000000000)" },
	{ 5, "services", "fill", "REAL CHECK (fill IS NULL OR (fill > 0 AND "
	  "fill <= 1))" },
};

/* Migration steps: migrations[v] takes a database at user_version v to
 * v + 1. Version 0 is the empty database, so step 0 is the full current
 * schema; the later steps are written so that they also run after it
 * (IF NOT EXISTS), and db/schema.sql (the full schema) holds their result. */
static const char *const migrations[STORE_SCHEMA_VERSION] = {
	store_schema_sql,
	/* 1 -> 2: version, change log, audit trail. */
	"CREATE TABLE IF NOT EXISTS store_version (id INTEGER PRIMARY KEY "
	"CHECK (id = 1), version INTEGER NOT NULL DEFAULT 0 CHECK (version "
	">= 0)); INSERT OR IGNORE INTO store_version (id, version) VALUES "
	"(1, 0); CREATE TABLE IF NOT EXISTS changes (version INTEGER NOT NULL, "
	"service TEXT NOT NULL, PRIMARY KEY (version, service)); CREATE TABLE "
	"IF NOT EXISTS audit (id INTEGER PRIMARY KEY, version INTEGER NOT "
	"NULL, time REAL NOT NULL, who TEXT NOT NULL, source TEXT NOT NULL, "
	"op TEXT NOT NULL CHECK (op IN ('add', 'remove', 'change')), kind "
	"TEXT NOT NULL CHECK (kind IN ('service', 'endpoint', 'rule')), "
	"service TEXT NOT NULL, target TEXT, field TEXT, old TEXT, new TEXT); "
	"CREATE INDEX IF NOT EXISTS audit_service ON audit(service, version);",
	migrate_v3,
	/* 3 -> 4: endpoint ids never given twice. */
	"CREATE TABLE IF NOT EXISTS id_seq (name TEXT PRIMARY KEY, hi INTEGER "
	"NOT NULL DEFAULT 0); INSERT OR IGNORE INTO id_seq (name, hi) VALUES "
	"('endpoints', 0); CREATE TRIGGER IF NOT EXISTS endpoints_removed "
	"AFTER DELETE ON endpoints BEGIN UPDATE id_seq SET hi = OLD.id WHERE "
	"name = 'endpoints' AND hi < OLD.id; END;",
	/* 4 -> 5: only added columns (added_columns). */
	"",
	/* 5 -> 6: a replica's position. */
	migrate_v6,
	/* 6 -> 7: the zones each dnsd serves. */
	migrate_v7,
	/* 7 -> 8: the checked endpoints by id. */
	"CREATE INDEX IF NOT EXISTS endpoints_checked ON endpoints(id) "
	"WHERE check_url IS NOT NULL;",
	/* 8 -> 9: latency rows found by endpoint (incremental health
	 * writes delete an endpoint's rows; the key starts with the region). */
	"CREATE INDEX IF NOT EXISTS latency_endpoint ON latency(endpoint_id);",
};

static void seterr(char *err, size_t errlen, const char *path,
                   const char *why)
{
	if (err && errlen)
		snprintf(err, errlen, "db: %s: %s", path, why);
}

int store_errf(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

int store_sqlerr(sqlite3 *h, char *err, size_t errlen, const char *what)
{
	int code = sqlite3_errcode(h);

	if (code == SQLITE_CONSTRAINT)
		return store_errf(err, errlen, -EINVAL, "%s: rejected by the "
		                  "schema: %s", what, sqlite3_errmsg(h));
	return store_errf(err, errlen, -EIO, "%s: %s", what,
	                  sqlite3_errmsg(h));
}

int store_exec(sqlite3 *h, const char *sql)
{
	return sqlite3_exec(h, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
}

int store_begin(sqlite3 *h, bool write)
{
	return store_exec(h, write ? "BEGIN IMMEDIATE" : "BEGIN");
}

int store_commit(sqlite3 *h)
{
	return store_exec(h, "COMMIT");
}

void store_rollback(sqlite3 *h)
{
	if (!sqlite3_get_autocommit(h))
		sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL);
}

/* One integer from a one-row query; -1 on error (SQLite code in *code). */
static long long query_int(sqlite3 *h, const char *sql, int *code)
{
	sqlite3_stmt *st = NULL;
	long long v = -1;
	int rc = sqlite3_prepare_v2(h, sql, -1, &st, NULL);

	if (rc == SQLITE_OK) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			v = sqlite3_column_int64(st, 0);
			rc = SQLITE_OK;
		}
	}
	sqlite3_finalize(st);
	*code = rc;
	return v;
}

long long store_data_version(struct store *s)
{
	int code;
	long long v = query_int(s->h, "PRAGMA data_version", &code);

	return code == SQLITE_OK ? v : -EIO;
}

const char *store_errmsg(struct store *s)
{
	return sqlite3_errmsg(s->h);
}

int store_relax_durability(struct store *s)
{
	return store_exec(s->h, "PRAGMA synchronous = NORMAL");
}

/* Maps a failing SQLite call to the documented errors. */
static int fail(sqlite3 *h, int code, const char *path, char *err,
                size_t errlen)
{
	int prim = code & 0xff;

	if (prim == SQLITE_NOTADB || prim == SQLITE_CORRUPT) {
		seterr(err, errlen, path, "file is not a database");
		return -EINVAL;
	}
	seterr(err, errlen, path, h ? sqlite3_errmsg(h) : sqlite3_errstr(code));
	return prim == SQLITE_CANTOPEN ? -ENOENT : -EIO;
}

/* Adds the columns of schema version `version` that table lacks. */
static int add_columns(sqlite3 *h, long long version)
{
	char sql[512];
	int code;

	for (size_t i = 0; i < sizeof added_columns / sizeof *added_columns;
	     i++) {
		if (added_columns[i].version != version)
			continue;
		snprintf(sql, sizeof sql, "SELECT count(*) FROM "
		         "pragma_table_info('%s') WHERE name = '%s'",
		         added_columns[i].table, added_columns[i].column);
		if (query_int(h, sql, &code) > 0)
			continue;
		if (code != SQLITE_OK)
			return -EIO;
		snprintf(sql, sizeof sql, "ALTER TABLE %s ADD COLUMN %s %s",
		         added_columns[i].table, added_columns[i].column,
		         added_columns[i].decl);
		if (store_exec(h, sql) < 0)
			return -EIO;
	}
	return 0;
}

static int migrate(sqlite3 *h, long long from, const char *path, char *err,
                   size_t errlen)
{
	char sql[64], why[512];

	if (store_begin(h, true) < 0)
		return fail(h, sqlite3_errcode(h), path, err, errlen);
	for (long long v = from; v < STORE_SCHEMA_VERSION; v++) {
		if (store_exec(h, migrations[v]) < 0 ||
		    add_columns(h, v + 1) < 0) {
			snprintf(why, sizeof why, "migration to schema %lld: %s",
			         v + 1, sqlite3_errmsg(h));
			store_rollback(h);
			seterr(err, errlen, path, why);
			return -EIO;
		}
	}
	snprintf(sql, sizeof sql, "PRAGMA user_version = %d",
	         STORE_SCHEMA_VERSION);
	if (store_exec(h, sql) < 0 || store_commit(h) < 0) {
		int rc = fail(h, sqlite3_errcode(h), path, err, errlen);
		store_rollback(h);
		return rc;
	}
	return 0;
}

int store_open(const char *path, unsigned flags, struct store **out,
               char *err, size_t errlen)
{
	sqlite3 *h = NULL;
	struct stat sb;
	bool ro = flags & STORE_RDONLY;
	bool create = (flags & STORE_CREATE) && !ro;
	int oflags, code, rc;
	long long ver, ntables;
	char why[160];

	*out = NULL;
	if (stat(path, &sb) < 0) {
		if (errno != ENOENT || !create) {
			seterr(err, errlen, path, strerror(errno));
			return errno == ENOENT ? -ENOENT : -EIO;
		}
	} else if (!S_ISREG(sb.st_mode)) {
		seterr(err, errlen, path, "not a regular file");
		return -EINVAL;
	}
	oflags = ro ? SQLITE_OPEN_READONLY
	            : SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
	code = sqlite3_open_v2(path, &h, oflags | SQLITE_OPEN_NOMUTEX, NULL);
	if (code != SQLITE_OK) {
		rc = fail(h, code, path, err, errlen);
		goto out;
	}
	sqlite3_extended_result_codes(h, 0);
	sqlite3_busy_timeout(h, 5000);
	/* The first read of the header: a non-database fails here. */
	ver = query_int(h, "PRAGMA user_version", &code);
	if (code != SQLITE_OK) {
		rc = fail(h, code, path, err, errlen);
		goto out;
	}
	if (store_exec(h, "PRAGMA foreign_keys = ON") < 0 ||
	    (!ro && store_exec(h, "PRAGMA journal_mode = WAL") < 0) ||
	    store_exec(h, "PRAGMA synchronous = FULL") < 0) {
		rc = fail(h, sqlite3_errcode(h), path, err, errlen);
		goto out;
	}
	if (ver > STORE_SCHEMA_VERSION) {
		snprintf(why, sizeof why,
		         "schema version %lld is newer than this program's (%d)",
		         ver, STORE_SCHEMA_VERSION);
		seterr(err, errlen, path, why);
		rc = -EINVAL;
		goto out;
	}
	if (ver == 0) {
		ntables = query_int(h, "SELECT count(*) FROM sqlite_master",
		                    &code);
		if (code != SQLITE_OK) {
			rc = fail(h, code, path, err, errlen);
			goto out;
		}
		if (ntables > 0) {
			seterr(err, errlen, path,
			       "not a gslb store (tables but no schema version)");
			rc = -EINVAL;
			goto out;
		}
		if (!create) {
			seterr(err, errlen, path,
			       "empty database (run 'gslbctl init')");
			rc = -EINVAL;
			goto out;
		}
	}
	if (ver < STORE_SCHEMA_VERSION) {
		if (ro) {
			snprintf(why, sizeof why, "schema version %lld needs "
			         "migration to %d (open read-write once)", ver,
			         STORE_SCHEMA_VERSION);
			seterr(err, errlen, path, why);
			rc = -EINVAL;
			goto out;
		}
		if ((rc = migrate(h, ver, path, err, errlen)) < 0)
			goto out;
	}
	if (!(*out = malloc(sizeof(**out)))) {
		seterr(err, errlen, path, "out of memory");
		rc = -ENOMEM;
		goto out;
	}
	(*out)->h = h;
	h = NULL;
	rc = 0;
out:
	sqlite3_close(h);
	return rc;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	sqlite3_close(s->h);
	free(s);
}

const char *store_lib_version(void)
{
	return sqlite3_libversion();
}
