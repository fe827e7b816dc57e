/* tests/unit/test_replica.c - cluster/replica.c over db/sync.c, without
 * etcd: full syncs and watch events made here are applied to a store in a
 * temporary file; what the store then holds (services, endpoint ids,
 * version, audit rows, recorded position) is checked, bad values included. */
#include "cluster/replica.h"
#include "cluster/etcd.h"
#include "db/audit.h"
#include "db/export.h"
#include "db/store.h"
#include "db/sync.h"
#include "tests/unit/harness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#define P "/gslb/"

static char *svc_doc(const char *name, const char *first, int ttl)
{
	static char buf[1024];

	snprintf(buf, sizeof(buf), "{\"name\": \"%s\", \"policy\": \"failover\", "
	         "\"ttl\": %d, \"endpoints\": [{\"target\": \"%s\", \"priority\": 0}, "
	         "{\"target\": \"192.0.2.200\", \"priority\": 1}]}", name, ttl, first);
	return buf;
}

static struct etcd_kv kv(const char *key, const char *val, int64_t rev)
{
	struct etcd_kv k = { .key = strdup(key), .key_len = strlen(key),
	                     .value = strdup(val ? val : ""),
	                     .value_len = val ? strlen(val) : 0,
	                     .create_revision = rev, .mod_revision = rev };
	return k;
}

static void kvs_free(struct etcd_kv *k, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(k[i].key);
		free(k[i].value);
	}
}

/* The store's export, compact, with only names, ttl and first target. */
static void summary(struct store *db, char *out, size_t len)
{
	char err[256];
	json_t *doc = cfg_export(db, NULL, err, sizeof(err)), *s;
	size_t i, off = 0;

	out[0] = 0;
	json_array_foreach(json_object_get(doc, "services"), i, s) {
		json_t *e0 = json_array_get(json_object_get(s, "endpoints"), 0);

		off += (size_t)snprintf(out + off, len - off, "%s%s/%lld/%s",
		                        i ? " " : "",
		                        json_string_value(json_object_get(s, "name")),
		                        (long long)json_integer_value(json_object_get(s, "ttl")),
		                        json_string_value(json_object_get(e0, "target")));
	}
	json_decref(doc);
}

static long long one_int(const char *path, const char *sql)
{
	char cmd[512];
	FILE *f;
	long long v = -1;

	snprintf(cmd, sizeof(cmd), "sqlite3 '%s' \"%s\"", path, sql);
	if ((f = popen(cmd, "r")) != NULL) {
		if (fscanf(f, "%lld", &v) != 1)
			v = -1;
		pclose(f);
	}
	return v;
}

int main(void)
{
	char dir[] = "/tmp/test_replica.XXXXXX", path[128], err[512], sum[1024];
	struct store *db = NULL;
	struct replica *r;
	struct replica_stats st;

	if (!mkdtemp(dir)) {
		CHECK(0, "mkdtemp");
		return TEST_DONE();
	}
	snprintf(path, sizeof(path), "%s/r.db", dir);
	CHECK(store_open(path, STORE_CREATE, &db, err, sizeof(err)) == 0, "%s", err);
	r = replica_new(db, P, err, sizeof(err));
	CHECK(r != NULL, "replica_new: %s", err);
	replica_stats(r, &st);
	CHECK(st.revision == 0 && st.config_revision == 0, "a new store has no position");

	/* A full sync: two good services, a bad one, a node, an unknown key. */
	struct etcd_kv full[] = {
		kv(P "audit/1", "[]", 3),
		kv(P "nodes/ns1", "{\"revision\": 4}", 9),
		kv(P "services/a.gslb.example.com.", svc_doc("a.gslb.example.com.", "192.0.2.1", 30), 4),
		kv(P "services/b.gslb.example.com.", svc_doc("b.gslb.example.com.", "192.0.2.2", 30), 5),
		kv(P "services/c.gslb.example.com.", "{not json", 6),
		kv(P "weird", "x", 7),
	};
	struct etcd_range rg = { .kvs = full, .n = 6, .revision = 9 };
	CHECK(replica_full(r, &rg, err, sizeof(err)) == 0, "full: %s", err);
	replica_stats(r, &st);
	summary(db, sum, sizeof(sum));
	CHECK(strcmp(sum, "a.gslb.example.com./30/192.0.2.1 "
	                  "b.gslb.example.com./30/192.0.2.2") == 0, "after full: %s", sum);
	CHECK(st.revision == 9 && st.config_revision == 6 && st.invalid == 1 &&
	      st.resyncs == 1, "full: rev %lld config %lld invalid %llu",
	      (long long)st.revision, (long long)st.config_revision,
	      (unsigned long long)st.invalid);
	CHECK(cfg_store_version(db) == 1, "one version for the full sync");
	long long id_a = one_int(path, "SELECT e.id FROM endpoints e JOIN services s ON "
	                         "s.id = e.service_id WHERE s.name = 'a.gslb.example.com.' "
	                         "AND target = '192.0.2.1'");

	/* Events, one response: a change of a with the writer's audit rows. */
	const char *rows = "[{\"time\": 1.5, \"who\": \"alice\", \"source\": \"api\", "
	                   "\"op\": \"change\", \"kind\": \"service\", \"service\": "
	                   "\"a.gslb.example.com.\", \"field\": \"ttl\", \"old\": 30, "
	                   "\"new\": 60}]";
	struct etcd_event ev[2] = {
		{ ETCD_EVENT_PUT, kv(P "services/a.gslb.example.com.",
		                     svc_doc("a.gslb.example.com.", "192.0.2.1", 60), 10) },
		{ ETCD_EVENT_PUT, kv(P "audit/2", rows, 10) },
	};
	CHECK(replica_events(r, ev, 2, err, sizeof(err)) == 0, "events: %s", err);
	CHECK(one_int(path, "SELECT count(*) FROM audit WHERE who = 'alice' AND "
	              "source = 'api' AND version = 2 AND new = '60'") == 1,
	      "the writer's row recorded as it is");
	CHECK(one_int(path, "SELECT count(*) FROM audit WHERE version = 2") == 1,
	      "and not the node's own for the same change");
	/* Another: a delete of b, a bad doc for a (a stays), a node key. */
	struct etcd_event ev2[3] = {
		{ ETCD_EVENT_DELETE, kv(P "services/b.gslb.example.com.", NULL, 11) },
		{ ETCD_EVENT_PUT, kv(P "services/a.gslb.example.com.",
		                     svc_doc("other.gslb.example.com.", "192.0.2.9", 60), 12) },
		{ ETCD_EVENT_PUT, kv(P "nodes/ns2", "{}", 13) },
	};
	CHECK(replica_events(r, ev2, 3, err, sizeof(err)) == 0, "events: %s", err);
	replica_stats(r, &st);
	summary(db, sum, sizeof(sum));
	CHECK(strcmp(sum, "a.gslb.example.com./60/192.0.2.1") == 0, "after events: %s", sum);
	CHECK(st.revision == 13 && st.config_revision == 12 && st.invalid == 2,
	      "events: rev %lld config %lld invalid %llu", (long long)st.revision,
	      (long long)st.config_revision, (unsigned long long)st.invalid);
	CHECK(cfg_store_version(db) == 3, "a version per response that changed something: %lld",
	      cfg_store_version(db));
	CHECK(one_int(path, "SELECT e.id FROM endpoints e JOIN services s ON s.id = "
	              "e.service_id WHERE s.name = 'a.gslb.example.com.' AND target = "
	              "'192.0.2.1'") == id_a, "the endpoint kept its id");
	CHECK(one_int(path, "SELECT count(*) FROM audit WHERE version = 3 AND who = "
	              "'etcd' AND op = 'remove' AND kind = 'service'") == 1,
	      "a change without rows is recorded by etcd");
	/* The same events again (a watch started too early): nothing twice. */
	CHECK(replica_events(r, ev2, 3, err, sizeof(err)) == 0 &&
	      cfg_store_version(db) == 3, "events applied twice");
	/* A response with many revisions (a watch catching up): each service
	 * ends where its last good value leaves it, in one version. */
	struct etcd_event ev3[4] = {
		{ ETCD_EVENT_PUT, kv(P "services/a.gslb.example.com.",
		                     svc_doc("a.gslb.example.com.", "192.0.2.1", 61), 14) },
		{ ETCD_EVENT_PUT, kv(P "services/e.gslb.example.com.",
		                     svc_doc("e.gslb.example.com.", "192.0.2.5", 30), 15) },
		{ ETCD_EVENT_PUT, kv(P "services/a.gslb.example.com.",
		                     svc_doc("a.gslb.example.com.", "192.0.2.1", 62), 16) },
		{ ETCD_EVENT_PUT, kv(P "services/a.gslb.example.com.", "[1]", 17) },
	};
	CHECK(replica_events(r, ev3, 4, err, sizeof(err)) == 0, "events: %s", err);
	summary(db, sum, sizeof(sum));
	CHECK(strcmp(sum, "a.gslb.example.com./62/192.0.2.1 "
	                  "e.gslb.example.com./30/192.0.2.200") == 0, "after catching up: %s", sum);
	CHECK(cfg_store_version(db) == 4, "one version: %lld", cfg_store_version(db));
	/* Only a node key: no write, the position moves in memory. */
	struct etcd_event nodes_only[1] = {
		{ ETCD_EVENT_PUT, kv(P "nodes/ns3", "{}", 18) } };
	CHECK(replica_events(r, nodes_only, 1, err, sizeof(err)) == 0, "%s", err);
	replica_stats(r, &st);
	CHECK(st.revision == 18 && st.config_revision == 17, "node key only");
	replica_free(r);

	/* The position survives (the last written one); another prefix has
	 * none. */
	r = replica_new(db, P, err, sizeof(err));
	replica_stats(r, &st);
	CHECK(st.revision == 17 && st.config_revision == 17, "position reloaded: %lld %lld",
	      (long long)st.revision, (long long)st.config_revision);
	replica_free(r);
	r = replica_new(db, "/other/", err, sizeof(err));
	replica_stats(r, &st);
	CHECK(st.revision == 0, "another prefix starts over");
	replica_free(r);

	/* A full sync after compaction: what disappeared goes, a bad new doc
	 * for an existing service keeps the old one. */
	r = replica_new(db, P, err, sizeof(err));
	struct etcd_kv full2[] = {
		kv(P "services/a.gslb.example.com.", "{\"name\": \"a.gslb.example.com.\", "
		   "\"policy\": \"nope\"}", 20),
		kv(P "services/d.gslb.example.com.", svc_doc("d.gslb.example.com.", "192.0.2.4", 30), 18),
	};
	struct etcd_range rg2 = { .kvs = full2, .n = 2, .revision = 21 };
	CHECK(replica_full(r, &rg2, err, sizeof(err)) == 0, "full 2: %s", err);
	summary(db, sum, sizeof(sum));
	CHECK(strcmp(sum, "a.gslb.example.com./62/192.0.2.1 "
	                  "d.gslb.example.com./30/192.0.2.200") == 0, "after full 2: %s", sum);
	replica_stats(r, &st);
	CHECK(st.revision == 21 && st.config_revision == 20, "full 2 revisions");

	/* Catch-up from ranges: a changed, d removed, e added; the audit keys
	 * come in key order, applied in revision order. */
	long long v0 = cfg_store_version(db);
	struct etcd_kv cu_svc[] = {
		kv(P "services/a.gslb.example.com.", svc_doc("a.gslb.example.com.", "192.0.2.1", 70), 25),
		kv(P "services/e.gslb.example.com.", svc_doc("e.gslb.example.com.", "192.0.2.5", 30), 27),
	};
	struct etcd_kv cu_au[] = {
		kv(P "audit/1-late", "[{\"who\": \"bob\", \"source\": \"api\", \"op\": "
		   "\"add\", \"kind\": \"service\", \"service\": \"e.gslb.example.com.\"}, "
		   "{\"who\": \"bob\", \"source\": \"api\", \"op\": \"remove\", \"kind\": "
		   "\"service\", \"service\": \"d.gslb.example.com.\"}]", 27),
		kv(P "audit/2-early", "[{\"who\": \"bob\", \"source\": \"api\", \"op\": "
		   "\"change\", \"kind\": \"service\", \"service\": \"a.gslb.example.com.\", "
		   "\"field\": \"ttl\", \"old\": 62, \"new\": 70}]", 25),
	};
	struct etcd_range cu_rs = { .kvs = cu_svc, .n = 2, .revision = 30 };
	struct etcd_range cu_ra = { .kvs = cu_au, .n = 2, .revision = 30 };
	CHECK(replica_catchup(r, &cu_rs, &cu_ra, err, sizeof(err)) == 0, "catch-up: %s", err);
	summary(db, sum, sizeof(sum));
	CHECK(strcmp(sum, "a.gslb.example.com./70/192.0.2.1 "
	                  "e.gslb.example.com./30/192.0.2.200") == 0, "after catch-up: %s", sum);
	replica_stats(r, &st);
	CHECK(st.revision == 30 && st.config_revision == 27 && st.catchups == 1 &&
	      st.resyncs == 1, "catch-up: rev %lld config %lld catchups %llu",
	      (long long)st.revision, (long long)st.config_revision,
	      (unsigned long long)st.catchups);
	CHECK(cfg_store_version(db) == v0 + 1, "one version for the catch-up");
	CHECK(one_int(path, "SELECT count(*) FROM audit WHERE who = 'bob'") == 3 &&
	      one_int(path, "SELECT count(*) FROM audit WHERE who = 'etcd' AND version = "
	              "(SELECT max(version) FROM audit)") == 0, "the writers' rows");
	CHECK(one_int(path, "SELECT new = '70' FROM audit WHERE who = 'bob' ORDER BY id "
	              "LIMIT 1") == 1, "in revision order");

	/* Rows that do not name every change: the node's own record. */
	struct etcd_kv cu_svc2[] = {
		kv(P "services/a.gslb.example.com.", svc_doc("a.gslb.example.com.", "192.0.2.1", 71), 35),
		kv(P "services/e.gslb.example.com.", svc_doc("e.gslb.example.com.", "192.0.2.5", 30), 27),
	};
	struct etcd_kv cu_au2[] = {
		kv(P "audit/3", "[{\"who\": \"carol\", \"source\": \"api\", \"op\": "
		   "\"change\", \"kind\": \"service\", \"service\": \"e.gslb.example.com.\", "
		   "\"field\": \"ttl\", \"old\": 30, \"new\": 30}]", 33),
	};
	struct etcd_range cu_rs2 = { .kvs = cu_svc2, .n = 2, .revision = 40 };
	struct etcd_range cu_ra2 = { .kvs = cu_au2, .n = 1, .revision = 40 };
	CHECK(replica_catchup(r, &cu_rs2, &cu_ra2, err, sizeof(err)) == 0, "catch-up 2: %s", err);
	CHECK(one_int(path, "SELECT count(*) FROM audit WHERE who = 'carol'") == 0 &&
	      one_int(path, "SELECT count(*) FROM audit WHERE who = 'etcd' AND new = '71'") == 1,
	      "own rows when the writers' do not cover the change");
	replica_stats(r, &st);
	CHECK(st.revision == 40 && st.config_revision == 35 && st.catchups == 2,
	      "catch-up 2: %lld %lld", (long long)st.revision, (long long)st.config_revision);
	/* Not newer than applied (a member behind): nothing. */
	long long v1 = cfg_store_version(db);
	CHECK(replica_catchup(r, &cu_rs2, &cu_ra2, err, sizeof(err)) == 0 &&
	      cfg_store_version(db) == v1, "an old range changes nothing");
	replica_stats(r, &st);
	CHECK(st.catchups == 2 && st.revision == 40, "still 2");
	kvs_free(cu_svc, 2);
	kvs_free(cu_au, 2);
	kvs_free(cu_svc2, 2);
	kvs_free(cu_au2, 1);

	/* A staged shift and damping thresholds in a document: applied as
	 * they are (progress included), recorded by the writer's rows. */
	static const char shift_doc[] = "{\"name\": \"a.gslb.example.com.\", "
		"\"policy\": \"failover\", \"ttl\": 71, \"endpoints\": ["
		"{\"target\": \"192.0.2.1\", \"priority\": 0}, {\"target\": "
		"\"192.0.2.200\", \"priority\": 1}], \"shift\": {\"target\": "
		"\"192.0.2.200\", \"steps\": [10, 50, 100], \"every\": 60, "
		"\"max_rtt_ms\": null, \"stage\": 2, \"state\": \"running\", "
		"\"paused\": false, \"started\": 1000, \"stage_started\": 1060, "
		"\"left\": null, \"reason\": \"\", \"prev\": [], \"updated\": "
		"1060}, \"damping\": {\"suppress\": 3000}}";
	const char *srows = "[{\"who\": \"dnsd:n2\", \"source\": \"etcd\", "
		"\"op\": \"change\", \"kind\": \"service\", \"service\": "
		"\"a.gslb.example.com.\", \"target\": \"192.0.2.200\", \"field\": "
		"\"shift\", \"old\": \"stage 1\", \"new\": \"stage 2\"}]";
	struct etcd_event sev[2] = {
		{ ETCD_EVENT_PUT, kv(P "services/a.gslb.example.com.", shift_doc, 50) },
		{ ETCD_EVENT_PUT, kv(P "audit/7", srows, 50) },
	};
	long long sv0 = cfg_store_version(db);
	CHECK(replica_events(r, sev, 2, err, sizeof(err)) == 0, "shift: %s", err);
	CHECK(one_int(path, "SELECT stage * 1000 + every FROM shifts") == 2060 &&
	      one_int(path, "SELECT stage_started FROM shifts") == 1060,
	      "the document's shift and its progress");
	CHECK(one_int(path, "SELECT suppress FROM damping") == 3000, "damping");
	CHECK(one_int(path, "SELECT count(*) FROM audit WHERE who = 'dnsd:n2'") == 1 &&
	      one_int(path, "SELECT count(*) FROM audit WHERE who = 'etcd' AND "
	              "field IN ('shift', 'damping')") == 0 &&
	      cfg_store_version(db) == sv0 + 1, "the writer's row, one version");
	CHECK(one_int(path, "SELECT count(*) FROM changes WHERE service = "
	              "'a.gslb.example.com.' AND version = (SELECT max(version) FROM "
	              "changes)") == 1, "in the change log");
	/* Two writes that cancel out in one batch: both writers' rows. */
	const char *brows = "[{\"who\": \"erin\", \"source\": \"gslbctl\", "
		"\"op\": \"change\", \"kind\": \"service\", \"service\": "
		"\"b.gslb.example.com.\", \"field\": \"ttl\", \"old\": 30, "
		"\"new\": 31}]";
	const char *brows2 = "[{\"who\": \"erin\", \"source\": \"gslbctl\", "
		"\"op\": \"change\", \"kind\": \"service\", \"service\": "
		"\"b.gslb.example.com.\", \"field\": \"ttl\", \"old\": 31, "
		"\"new\": 30}]";
	struct etcd_event zev[4] = {
		{ ETCD_EVENT_PUT, kv(P "services/b.gslb.example.com.",
		                     svc_doc("b.gslb.example.com.", "192.0.2.2", 31), 51) },
		{ ETCD_EVENT_PUT, kv(P "audit/8", brows, 51) },
		{ ETCD_EVENT_PUT, kv(P "services/b.gslb.example.com.",
		                     svc_doc("b.gslb.example.com.", "192.0.2.2", 30), 52) },
		{ ETCD_EVENT_PUT, kv(P "audit/9", brows2, 52) },
	};
	CHECK(replica_events(r, zev, 4, err, sizeof(err)) == 0, "net zero: %s", err);
	CHECK(one_int(path, "SELECT count(*) FROM audit WHERE who = 'erin'") == 2,
	      "both rows of a batch that cancels out");
	/* A document without them (another tool, no rows): removed, the
	 * node's own rows. */
	struct etcd_event nev[1] = {
		{ ETCD_EVENT_PUT, kv(P "services/a.gslb.example.com.",
		                     svc_doc("a.gslb.example.com.", "192.0.2.1", 71), 53) },
	};
	CHECK(replica_events(r, nev, 1, err, sizeof(err)) == 0, "unsteer: %s", err);
	CHECK(one_int(path, "SELECT count(*) FROM shifts") == 0 &&
	      one_int(path, "SELECT count(*) FROM damping") == 0, "removed");
	CHECK(one_int(path, "SELECT count(*) FROM audit WHERE who = 'etcd' AND "
	              "field = 'shift'") == 1 &&
	      one_int(path, "SELECT count(*) FROM audit WHERE who = 'etcd' AND "
	              "field = 'damping'") == 1, "the node's own rows");
	for (int i = 0; i < 2; i++)
		kvs_free(&sev[i].kv, 1);
	for (int i = 0; i < 4; i++)
		kvs_free(&zev[i].kv, 1);
	kvs_free(&nev[0].kv, 1);
	replica_free(r);

	/* A scratch store from a range. */
	struct store *scratch = NULL;
	CHECK(replica_scratch(&rg, P, ":memory:", &scratch, err, sizeof(err)) == 0,
	      "scratch: %s", err);
	summary(scratch, sum, sizeof(sum));
	CHECK(strcmp(sum, "a.gslb.example.com./30/192.0.2.1 "
	                  "b.gslb.example.com./30/192.0.2.2") == 0, "scratch: %s", sum);
	store_close(scratch);

	/* cfg_sync_forget: a plain store again. */
	struct cfg_sync_pos pos;
	CHECK(cfg_sync_forget(db, err, sizeof(err)) == 0 &&
	      cfg_sync_position(db, &pos, err, sizeof(err)) == 0 && pos.revision == 0,
	      "forget");

	kvs_free(full, 6);
	kvs_free(full2, 2);
	for (int i = 0; i < 2; i++)
		kvs_free(&ev[i].kv, 1);
	for (int i = 0; i < 3; i++)
		kvs_free(&ev2[i].kv, 1);
	for (int i = 0; i < 4; i++)
		kvs_free(&ev3[i].kv, 1);
	kvs_free(&nodes_only[0].kv, 1);
	store_close(db);
	snprintf(err, sizeof(err), "rm -rf '%s'", dir);
	if (system(err) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
	return TEST_DONE();
}
