/* tests/unit/test_write.c - cluster/write.c against a real etcd (Debian's
 * etcd-server) started here on free loopback ports in a temporary
 * directory and killed at the end: a table of writes (what each commits, in
 * how many transactions, with which error), a conflict retried from a fresh
 * read keeping the other writer's change, a conflict on every attempt
 * failing with nothing committed, the audit rows of a write, the history.
 * Without /usr/bin/etcd it is skipped (and says so). */
#include "cluster/write.h"
#include "tests/unit/etcd_member.h"
#include "tests/unit/harness.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cluster/etcd.h"
#include "db/audit.h"
#include "db/edit.h"
#include "db/export.h"
#include "db/store.h"


#define SVC "www.example.com."

/* The writes of the table. */
static int w_add(struct store *db, void *arg, char *err, size_t errlen)
{
	struct cfg_service s = { .name = SVC, .policy = "weighted",
	                         .sticky = -1 };
	struct cfg_endpoint e = { .target = "192.0.2.1", .drained = -1 };

	int rc;

	(void)arg;
	if ((rc = cfg_service_add(db, &s, err, errlen)) < 0)
		return rc;
	return cfg_endpoint_add(db, SVC, &e, err, errlen);
}

static int w_weight(struct store *db, void *arg, char *err, size_t errlen)
{
	struct cfg_endpoint e = { .target = "192.0.2.1", .drained = -1,
	                          .has_weight = true, .weight = 7 };

	(void)arg;
	return cfg_endpoint_set(db, SVC, &e, err, errlen);
}

static int w_missing(struct store *db, void *arg, char *err, size_t errlen)
{
	(void)arg;
	return cfg_endpoint_rm(db, SVC, "192.0.2.99", err, errlen);
}

static int w_many(struct store *db, void *arg, char *err, size_t errlen)
{
	(void)arg;
	for (int i = 0; i < 250; i++) {
		char name[64];
		struct cfg_service s = { .name = name, .policy = "failover",
		                         .sticky = -1 };
		int rc;

		snprintf(name, sizeof(name), "s%03d.example.com.", i);
		if ((rc = cfg_service_add(db, &s, err, errlen)) < 0)
			return rc;
	}
	return 0;
}

/* A second writer that changes the service's TTL under the first one's
 * feet (on its first call only, or on every call). */
struct meddler {
	struct etcd *other;
	int calls, every;
};

static void meddle(struct meddler *m, int ttl)
{
	char doc[512];

	snprintf(doc, sizeof(doc), "{\"name\": \"" SVC "\", \"policy\": "
	         "\"weighted\", \"ttl\": %d, \"answers\": null, \"sticky\": "
	         "false, \"when_down\": \"open\", \"endpoints\": [{\"target\": "
	         "\"192.0.2.1\", \"weight\": 1, \"priority\": 0}], \"rules\": "
	         "[]}", ttl);
	etcd_put(m->other, "/t/services/" SVC, doc, strlen(doc), 0, NULL);
}

static int w_meddled(struct store *db, void *arg, char *err, size_t errlen)
{
	struct meddler *m = arg;
	int rc = w_weight(db, NULL, err, errlen);

	if (m->calls++ == 0 || m->every)
		meddle(m, 40 + m->calls);
	return rc;
}

/* The service document under prefix "/t/": ttl and the weight of
 * 192.0.2.1 (-1 when absent). */
static void doc_of(struct etcd *e, long long *ttl, long long *weight)
{
	struct etcd_range r = { 0 };
	json_t *o = NULL;

	*ttl = *weight = -1;
	if (etcd_range(e, "/t/services/" SVC, false, 0, 0, &r) == 0 && r.n)
		o = json_loadb(r.kvs[0].value, r.kvs[0].value_len, 0, NULL);
	if (o) {
		*ttl = json_integer_value(json_object_get(o, "ttl"));
		*weight = json_integer_value(json_object_get(json_array_get(
		          json_object_get(o, "endpoints"), 0), "weight"));
	}
	json_decref(o);
	etcd_range_fini(&r);
}

static int64_t revision(struct etcd *e)
{
	int64_t rev = 0;

	etcd_status(e, &rev, NULL, NULL);
	return rev;
}

static void test_table(struct etcd *e)
{
	static const struct {
		const char *what;
		cw_fn fn;
		bool dry_run;
		int rc;
		unsigned txns;
		size_t services;
		long long weight;       /* after it */
	} t[] = {
		{ "add", w_add, false, 0, 1, 1, 1 },
		{ "add again", w_add, false, -EEXIST, 0, 0, 1 },
		{ "weight, dry run", w_weight, true, 0, 0, 0, 1 },
		{ "weight", w_weight, false, 0, 1, 1, 7 },
		{ "weight again: no change", w_weight, false, 0, 0, 0, 7 },
		{ "missing endpoint", w_missing, false, -ENOENT, 0, 0, 7 },
		{ "250 services: split", w_many, false, 0, 3, 250, 7 },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct cfg_write w = { .who = "test", .source = "unit",
		                       .dry_run = t[i].dry_run };
		struct cw_result res;
		int64_t before = revision(e);
		long long ttl, weight;
		char err[512] = "";
		int rc;

		cfg_write_use(&w);
		rc = cw_run(e, "/t/", 0, t[i].fn, NULL, &res, err, sizeof(err));
		cfg_write_use(NULL);
		cfg_write_done(&w);
		doc_of(e, &ttl, &weight);
		CHECK(rc == t[i].rc, "%s: rc %d, want %d (%s)", t[i].what, rc,
		      t[i].rc, err);
		CHECK(res.txns == t[i].txns && res.services == t[i].services,
		      "%s: %u txns, %zu services", t[i].what, res.txns,
		      res.services);
		CHECK(revision(e) == before + (int64_t)t[i].txns,
		      "%s: revision %lld -> %lld", t[i].what, (long long)before,
		      (long long)revision(e));
		CHECK(weight == t[i].weight, "%s: weight %lld", t[i].what, weight);
		if (t[i].txns)
			CHECK(res.revision == revision(e), "%s: result revision",
			      t[i].what);
	}
}

static void test_conflicts(struct etcd *e, struct etcd *other)
{
	struct meddler once = { .other = other }, always = { .other = other,
	                                                     .every = 1 };
	struct cfg_write w = { .who = "test", .source = "unit" };
	struct cw_result res;
	long long ttl, weight;
	char err[512] = "";
	json_t *h;
	int rc;

	cfg_write_use(&w);
	/* Reset the weight, then a write whose first attempt loses the race:
	 * the second one sees the other writer's TTL and keeps it. */
	meddle(&(struct meddler){ .other = other }, 30);
	rc = cw_run(e, "/t/", 0, w_meddled, &once, &res, err, sizeof(err));
	doc_of(e, &ttl, &weight);
	CHECK(rc == 0 && res.attempts == 2 && once.calls == 2,
	      "conflict once: rc %d, %u attempts (%s)", rc, res.attempts, err);
	CHECK(ttl == 41 && weight == 7, "conflict once: ttl %lld weight %lld",
	      ttl, weight);
	/* Losing every time: a conflict, and nothing of it committed. */
	meddle(&(struct meddler){ .other = other }, 30);
	rc = cw_run(e, "/t/", 0, w_meddled, &always, &res, err, sizeof(err));
	doc_of(e, &ttl, &weight);
	CHECK(rc == -EAGAIN && res.attempts == CW_ATTEMPTS && strstr(err,
	      "conflict"), "conflict always: rc %d, %u attempts (%s)", rc,
	      res.attempts, err);
	CHECK(weight == 1 && ttl == 40 + CW_ATTEMPTS,
	      "conflict always: ttl %lld weight %lld", ttl, weight);
	cfg_write_use(NULL);
	cfg_write_done(&w);
	CHECK(strcmp(cw_strerror(-EAGAIN), "conflict") == 0 &&
	      strstr(cw_strerror(-EHOSTDOWN), "nothing changed") &&
	      strcmp(cw_strerror(-ETIMEDOUT), "outcome unknown") == 0,
	      "cw_strerror");
	/* The audit rows travelled with the writes: the weight change of the
	 * table, by "test" from "unit", numbered by etcd revision. */
	h = cw_history(e, "/t/", SVC, 100, &(long long){ 0 }, err, sizeof(err));
	CHECK(h != NULL, "history: %s", err);
	{
		size_t i, n = 0;
		json_t *r;

		json_array_foreach(h, i, r) {
			const char *f = json_string_value(json_object_get(r,
			                                                  "field"));

			if (!f || strcmp(f, "weight") != 0)
				continue;
			n++;
			CHECK(strcmp(json_string_value(json_object_get(r, "who")),
			             "test") == 0 &&
			      strcmp(json_string_value(json_object_get(r,
			             "source")), "unit") == 0 &&
			      json_integer_value(json_object_get(r, "new")) == 7 &&
			      json_integer_value(json_object_get(r, "version")) > 0,
			      "history row %zu", i);
		}
		/* The table's weight change and the retried one. */
		CHECK(n == 2, "%zu weight rows in the history", n);
	}
	json_decref(h);
}

int main(void)
{
	char url[64], err[256];

	if (access("/usr/bin/etcd", X_OK) != 0) {
		fprintf(stderr, "SKIP: no /usr/bin/etcd\n");
		return TEST_DONE();
	}
	if (etcd_start("test_write", url, sizeof(url)) < 0) {
		CHECK(0, "cannot start etcd");
		return TEST_DONE();
	}
	const char *urls[] = { url };
	struct etcd_config cfg = { .urls = urls, .n_urls = 1, .timeout_ms = 2000 };
	struct etcd *e = etcd_new(&cfg, err, sizeof(err));
	struct etcd *other = etcd_new(&cfg, err, sizeof(err));

	CHECK(e && other, "etcd_new: %s", err);
	for (int i = 0; e && i < 200 && revision(e) == 0; i++)
		usleep(50000);
	CHECK(e && revision(e) > 0, "etcd did not start");
	if (e && other && revision(e) > 0) {
		test_table(e);
		test_conflicts(e, other);
	}
	etcd_free(e);
	etcd_free(other);
	etcd_stop();
	return TEST_DONE();
}
