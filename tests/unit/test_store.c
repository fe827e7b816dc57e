/* tests/unit/test_store.c - db/store.h: the embedded schema equals
 * db/schema.sql byte for byte; opening, creating, refusing non-databases,
 * newer schemas and foreign stores; connection settings. Runs from the
 * repository root (make test does). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db/served.h"
#include "db/store.h"
#include "db/store_sql.h"
#include "tests/unit/harness.h"

static char dir[] = "/tmp/test_store.XXXXXX";

static void path_in(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", dir, name);
}

static void write_file(const char *path, const char *data, size_t n)
{
	FILE *f = fopen(path, "wb");

	if (f) {
		fwrite(data, 1, n, f);
		fclose(f);
	}
}

static void test_schema_copy(void)
{
	FILE *f = fopen("db/schema.sql", "rb");
	static char buf[1 << 16];
	size_t n = 0;

	CHECK(f != NULL, "db/schema.sql: cannot open (run from the repo "
	      "root)");
	if (!f)
		return;
	n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	CHECK(n == strlen(store_schema_sql) &&
	      memcmp(buf, store_schema_sql, n) == 0,
	      "the embedded schema differs from db/schema.sql: "
	      "rebuild (make)");
}

static long long one_int(sqlite3 *h, const char *sql)
{
	sqlite3_stmt *st;
	long long v = -1;

	if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static void test_open_errors(void)
{
	char p[512], err[512];
	struct store *h = NULL;
	int rc;
	static const char junk[] = "this is not a database, just text that is "
		"long enough to fill a header.............................."
		"..........................................................";
	static const struct {
		const char *name, *file_sql;    /* NULL file_sql: junk file */
		unsigned flags;
		int rc;
		const char *msg;
	} cases[] = {
		{ "missing", "", 0, -ENOENT, "No such file" },
		{ "junk.db", NULL, STORE_CREATE, -EINVAL,
		  "file is not a database" },
		{ "newer.db", "PRAGMA user_version = 99", STORE_CREATE, -EINVAL,
		  "schema version 99 is newer" },
		{ "foreign.db", "CREATE TABLE t (x)", STORE_CREATE, -EINVAL,
		  "not a gslb store" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		path_in(p, sizeof p, cases[i].name);
		if (!cases[i].file_sql) {
			write_file(p, junk, sizeof junk);
		} else if (cases[i].file_sql[0]) {
			sqlite3 *raw;

			sqlite3_open(p, &raw);
			sqlite3_exec(raw, cases[i].file_sql, NULL, NULL, NULL);
			sqlite3_close(raw);
		}
		err[0] = '\0';
		rc = store_open(p, cases[i].flags, &h, err, sizeof err);
		CHECK(rc == cases[i].rc && h == NULL, "%s: rc %d", cases[i].name,
		      rc);
		CHECK(strncmp(err, "db: ", 4) == 0 && strstr(err, p) &&
		      strstr(err, cases[i].msg), "%s: message '%s'",
		      cases[i].name, err);
		store_close(h);
		h = NULL;
	}
}

static void test_create(void)
{
	char p[512], err[512];
	struct store *h = NULL;
	int rc;

	path_in(p, sizeof p, "new.db");
	rc = store_open(p, STORE_CREATE, &h, err, sizeof err);
	CHECK(rc == 0 && h, "create: %d %s", rc, err);
	if (!h)
		return;
	CHECK(one_int(h->h, "PRAGMA user_version") == STORE_SCHEMA_VERSION,
	      "user_version after create");
	CHECK(one_int(h->h, "PRAGMA foreign_keys") == 1, "foreign_keys off");
	CHECK(one_int(h->h, "PRAGMA synchronous") == 2, "synchronous not FULL");
	CHECK(store_exec(h->h, "INSERT INTO services (id, name, policy) VALUES "
	                 "(1, 'a.x.', 'failover')") == 0, "insert service");
	CHECK(store_exec(h->h, "INSERT INTO services (name, policy) VALUES "
	                 "('B.x.', 'failover')") < 0, "upper-case name "
	      "accepted by CHECK");
	CHECK(store_exec(h->h, "INSERT INTO endpoints (service_id, target, "
	                 "weight) VALUES (1, '192.0.2.1', 70000)") < 0,
	      "weight 70000 accepted by CHECK");
	CHECK(store_exec(h->h, "INSERT INTO endpoints (service_id, target) "
	                 "VALUES (2, '192.0.2.1')") < 0,
	      "endpoint of a missing service accepted (foreign keys)");
	CHECK(store_exec(h->h, "INSERT INTO endpoints (service_id, target) "
	                 "VALUES (1, '192.0.2.1')") == 0, "insert endpoint");
	CHECK(store_exec(h->h, "DELETE FROM services WHERE id = 1") == 0 &&
	      one_int(h->h, "SELECT count(*) FROM endpoints") == 0,
	      "delete does not cascade");
	store_close(h);
	/* Reopen without create: same schema, nothing re-run. */
	h = NULL;
	rc = store_open(p, 0, &h, err, sizeof err);
	CHECK(rc == 0 && one_int(h->h, "SELECT count(*) FROM sqlite_master "
	                         "WHERE type = 'table'") == 17,
	      "reopen: %d %s", rc, err);
	CHECK(store_data_version(h) > 0, "data_version");
	/* A version 1 store (no version, change log, audit) is migrated. */
	CHECK(store_exec(h->h, "DROP TABLE audit; DROP TABLE changes; DROP "
	                 "TABLE store_version; PRAGMA user_version = 1") == 0,
	      "make a version 1 store");
	store_close(h);
	h = NULL;
	rc = store_open(p, 0, &h, err, sizeof err);
	CHECK(rc == 0 && one_int(h->h, "PRAGMA user_version") ==
	                         STORE_SCHEMA_VERSION &&
	      one_int(h->h, "SELECT version FROM store_version") == 0 &&
	      one_int(h->h, "SELECT count(*) FROM audit") == 0 &&
	      one_int(h->h, "SELECT count(*) FROM services") == 0,
	      "migration 1 -> 2: %d %s", rc, err);
	store_close(h);
	h = NULL;
	rc = store_open(p, STORE_RDONLY, &h, err, sizeof err);
	CHECK(rc == 0 && store_exec(h->h, "INSERT INTO probes (name, region) "
	                            "VALUES ('a', 'b')") < 0,
	      "read-only handle wrote");
	store_close(h);
}

/* Column list of table t as one string (name type notnull default pk). */
static void columns(sqlite3 *h, const char *t, char *out, size_t cap)
{
	char sql[128];
	sqlite3_stmt *st = NULL;
	size_t n = 0;

	out[0] = '\0';
	snprintf(sql, sizeof sql, "PRAGMA table_info(%s)", t);
	if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK)
		return;
	while (sqlite3_step(st) == SQLITE_ROW && n < cap)
		n += (size_t)snprintf(out + n, cap - n, "%s %s %d %s %d;",
		                      sqlite3_column_text(st, 1),
		                      sqlite3_column_text(st, 2),
		                      sqlite3_column_int(st, 3),
		                      sqlite3_column_type(st, 4) == SQLITE_NULL
		                      ? "-" : (const char *)
		                      sqlite3_column_text(st, 4),
		                      sqlite3_column_int(st, 5));
	sqlite3_finalize(st);
}

/* A version 1 store (no shifts table) is migrated to the current schema:
 * the table it gains equals a new store's, and the data stays. */
static void test_migrate_v1(void)
{
	static const char *const tables[] = { "shifts", "damping",
	                                      "damp_state", "served_zones" };
	char p[512], q[512], err[512], a[4][2048], b[4][2048];
	struct store *h = NULL;
	int rc;

	path_in(p, sizeof p, "v1.db");
	path_in(q, sizeof q, "fresh.db");
	rc = store_open(p, STORE_CREATE, &h, err, sizeof err);
	CHECK(rc == 0, "create v1: %s", err);
	if (rc < 0)
		return;
	CHECK(store_exec(h->h, "DROP TABLE shifts; DROP TABLE damping; "
	                 "DROP TABLE damp_state; DROP TABLE served_zones; "
	                 "PRAGMA user_version = 1; "
	                 "INSERT INTO services (name, policy) VALUES "
	                 "('a.x.', 'failover')") == 0, "make v1");
	store_close(h);
	h = NULL;
	rc = store_open(p, STORE_RDONLY, &h, err, sizeof err);
	CHECK(rc == -EINVAL && strstr(err, "needs migration"),
	      "read-only open of v1: %d %s", rc, err);
	store_close(h);
	h = NULL;
	rc = store_open(p, 0, &h, err, sizeof err);
	CHECK(rc == 0, "migrate v1: %d %s", rc, err);
	if (rc < 0)
		return;
	CHECK(one_int(h->h, "PRAGMA user_version") == STORE_SCHEMA_VERSION &&
	      one_int(h->h, "SELECT count(*) FROM services") == 1,
	      "after migration: version or data");
	for (int t = 0; t < 4; t++)
		columns(h->h, tables[t], a[t], sizeof a[t]);
	store_close(h);
	h = NULL;
	rc = store_open(q, STORE_CREATE, &h, err, sizeof err);
	CHECK(rc == 0, "fresh: %s", err);
	for (int t = 0; t < 4; t++)
		columns(h->h, tables[t], b[t], sizeof b[t]);
	store_close(h);
	for (int t = 0; t < 4; t++)
		CHECK(a[t][0] && strcmp(a[t], b[t]) == 0, "migrated %s '%s' != "
		      "new '%s'", tables[t], a[t], b[t]);
}

/* db/served.h: what dnsd records, what gslbctl flags. */
static void test_served(void)
{
	static const char *const n1[] = { "Example.COM.", "b.example.net" };
	static const char *const n2[] = { "example.com", "2.0.192.in-addr.arpa." };
	static const struct {
		const char *name;
		bool outside;
	} cases[] = {
		{ "www.example.com.", false },
		{ "WWW.Example.com", false },
		{ "example.com.", false },             /* the apex itself */
		{ "x.y.b.example.net.", false },
		{ "example.net.", true },              /* above a zone */
		{ "wwwexample.com.", true },           /* not at a label */
		{ "www.example.org.", true },
		{ "1.2.0.192.in-addr.arpa.", false },
	};
	char p[512], err[512], list[256];
	struct store *h = NULL;
	struct served *z = NULL;
	int rc;

	path_in(p, sizeof p, "served.db");
	rc = store_open(p, STORE_CREATE, &h, err, sizeof err);
	CHECK(rc == 0, "create: %s", err);
	if (rc < 0)
		return;
	/* Nothing recorded: nothing is flagged. */
	CHECK(served_load(h, &z, err, sizeof err) == 0 &&
	      served_count(z) == 0 && !served_outside(z, "www.example.org."),
	      "empty table: %s", err);
	served_free(z);
	CHECK(served_record(h, "n1", n1, 2, err, sizeof err) == 0 &&
	      served_record(h, "n2", n2, 2, err, sizeof err) == 0,
	      "record: %s", err);
	CHECK(served_load(h, &z, err, sizeof err) == 0 && served_count(z) == 3,
	      "load: %zu zones, %s", served_count(z), err);
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
		CHECK(served_outside(z, cases[i].name) == cases[i].outside,
		      "%s: outside %d", cases[i].name, !cases[i].outside);
	CHECK(strcmp(served_list(z, list, sizeof list), "2.0.192.in-addr."
	             "arpa., b.example.net., example.com.") == 0, "list '%s'",
	      list);
	CHECK(strcmp(served_list(z, list, 40), "2.0.192.in-addr.arpa., ...")
	      == 0, "short list '%s'", list);
	served_free(z);
	/* A node's new set replaces its old one only. */
	CHECK(served_record(h, "n2", NULL, 0, err, sizeof err) == 0 &&
	      served_load(h, &z, err, sizeof err) == 0 && served_count(z) == 2 &&
	      served_outside(z, "1.2.0.192.in-addr.arpa."), "n2 emptied");
	served_free(z);
	/* Bad input changes nothing. */
	{
		static const char *const bad[] = { "ok.example.", "a..b." };

		CHECK(served_record(h, "n1", bad, 2, err, sizeof err) == -EINVAL &&
		      strstr(err, "a..b."), "bad apex: %s", err);
		CHECK(served_record(h, "", n1, 1, err, sizeof err) == -EINVAL,
		      "empty node accepted");
		CHECK(served_load(h, &z, err, sizeof err) == 0 &&
		      served_count(z) == 2 && !served_outside(z, "a.example.com"),
		      "a failed record changed the table");
		served_free(z);
	}
	store_close(h);
}

int main(void)
{
	char cmd[600];

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	test_schema_copy();
	test_migrate_v1();
	test_open_errors();
	test_create();
	test_served();
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return TEST_DONE();
}
