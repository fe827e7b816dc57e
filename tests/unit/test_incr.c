/* tests/unit/test_incr.c - incremental service sets and indexes against
 * full rebuilds.
 *
 * A store takes random sequences of edits through db/edit.h (services,
 * endpoints, rules, flips, removals). After each step the set in force is
 * brought up to date with svc_load_since() and its index with
 * svc_index_update(), and both must equal what a full svc_load() and
 * svc_index_build() make of the same store: every service field by field,
 * the zone of every service, the empty non-terminals. The sets of earlier
 * steps are freed as dnsd retires them (oldest first, while newer ones
 * share their blocks), so a block freed too early or never is an
 * ASan/LSan report. Then the fallbacks: a change log with a gap, a store
 * whose version went back, a hand edit with problems. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "db/audit.h"
#include "db/edit.h"
#include "db/store.h"
#include "db/store_sql.h"
#include "db/svc_load.h"
#include "dnsd/snap.h"
#include "dnsd/zone.h"
#include "tests/unit/harness.h"

static const char zone_text[] =
	"$ORIGIN example.com.\n"
	"$TTL 300\n"
	"@ IN SOA ns1 host 1 3600 600 86400 30\n"
	"@ IN NS ns1\n"
	"ns1 IN A 192.0.2.53\n"
	"static IN A 192.0.2.80\n"
	"deleg IN NS ns.other.net.\n";

static uint64_t rng = 0x243f6a8885a308d3ull;

static unsigned rnd(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng % n);
}

static struct zone *load_zone(void)
{
	char path[] = "/tmp/test_incr_zone.XXXXXX", err[256];
	int fd = mkstemp(path);
	struct zone *z = NULL;

	CHECK(fd >= 0 && write(fd, zone_text, sizeof(zone_text) - 1) ==
	      (ssize_t)(sizeof(zone_text) - 1), "zone file");
	if (fd >= 0)
		close(fd);
	CHECK(zone_load(path, NULL, &z, err, sizeof err) == 0, "zone_load: %s",
	      err);
	unlink(path);
	return z;
}

/* Service names: most directly under the apex, some deeper (they make
 * empty non-terminals), some below the delegation or outside the zone
 * (skipped by the index). */
static void svc_name(unsigned i, char *out, size_t n)
{
	switch (i % 11) {
	case 3:
		snprintf(out, n, "a%u.deep%u.example.com.", i, i % 4);
		break;
	case 7:
		snprintf(out, n, "x%u.deleg.example.com.", i);
		break;
	case 9:
		snprintf(out, n, "s%u.elsewhere.org.", i);
		break;
	default:
		snprintf(out, n, "s%u.example.com.", i);
	}
}

#define NAMES 60

static const char *const policies[] = {
	"failover", "weighted", "geo", "all", "roundrobin", "latency"
};

static void target_of(unsigned i, unsigned k, char *out, size_t n)
{
	if (k == 5)
		snprintf(out, n, "lb%u.cloud.example.net.", i);
	else if (k == 6)
		snprintf(out, n, "2001:db8::%x:%x", i + 1, k);
	else
		snprintf(out, n, "10.%u.%u.%u", i / 250, i % 250, k + 1);
}

/* One random edit; failures (adding what exists, removing what does not)
 * are part of the game and change nothing. */
static void edit(struct store *db)
{
	unsigned i = rnd(NAMES), k = rnd(7);
	char name[128], t[128], t2[128], err[512];
	struct cfg_endpoint e = { 0 };
	struct cfg_service s = { .sticky = -1 };
	const char *targets[2];

	svc_name(i, name, sizeof name);
	target_of(i, k, t, sizeof t);
	target_of(i, (k + 1) % 7, t2, sizeof t2);
	e.target = t;
	e.drained = -1;
	s.name = name;
	switch (rnd(12)) {
	case 0:
	case 1:
		s.policy = policies[rnd(6)];
		s.has_ttl = true;
		s.ttl = 30 + rnd(100);
		cfg_service_add(db, &s, err, sizeof err);
		break;
	case 2:
		cfg_service_rm(db, name, err, sizeof err);
		break;
	case 3:
		s.policy = policies[rnd(6)];
		s.has_ttl = rnd(2);
		s.ttl = rnd(600);
		s.when_down = rnd(3) == 0 ? "192.0.2.99" : rnd(2) ? "closed" : "open";
		s.sticky = (int)rnd(2);
		cfg_service_set(db, &s, err, sizeof err);
		break;
	case 4:
	case 5:
	case 6:
		e.has_weight = true;
		e.weight = rnd(100);
		e.has_priority = true;
		e.priority = rnd(10);
		e.has_region = true;
		e.region = rnd(2) ? "eu" : "us";
		if (rnd(2)) {
			e.has_loc = true;
			e.lat = (double)rnd(180) - 90;
			e.lon = (double)rnd(360) - 180;
		}
		if (rnd(3) == 0) {
			e.has_check = true;
			e.check_url = "tcp://192.0.2.1:80";
		}
		if (rnd(4) == 0) {      /* spill-over */
			e.has_capacity = true;
			e.capacity = 1 + rnd(100);
		}
		cfg_endpoint_add(db, name, &e, err, sizeof err);
		break;
	case 7:
		cfg_endpoint_rm(db, name, t, err, sizeof err);
		break;
	case 8:
		e.has_weight = true;
		e.weight = rnd(1000);
		e.admin = rnd(3) == 0 ? "down" : "auto";
		e.drained = (int)rnd(2);
		e.has_bias = true;
		e.bias = (double)rnd(20);
		cfg_endpoint_set(db, name, &e, err, sizeof err);
		break;
	case 9:
		cfg_flip(db, name, t, err, sizeof err);
		break;
	case 10:
		targets[0] = t;
		targets[1] = t2;
		cfg_rule_put(db, name, rnd(2) ? "country:DE" : "10.0.0.0/8",
		             targets, 1 + rnd(2), err, sizeof err);
		break;
	default:
		cfg_rule_rm(db, name, rnd(2) ? "country:DE" : "10.0.0.0/8", err,
		            sizeof err);
	}
}

static bool str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool target_eq(const struct svc_target *a, const struct svc_target *b)
{
	return a->type == b->type && a->len == b->len &&
	       (a->len == 0 || memcmp(a->rdata, b->rdata, a->len) == 0) &&
	       str_eq(a->text, b->text);
}

static bool ep_eq(const struct svc_endpoint *a, const struct svc_endpoint *b)
{
	return a->id == b->id && target_eq(&a->t, &b->t) &&
	       a->weight == b->weight && a->priority == b->priority &&
	       str_eq(a->region, b->region) && a->has_loc == b->has_loc &&
	       a->lat == b->lat && a->lon == b->lon && a->v[0] == b->v[0] &&
	       a->v[1] == b->v[1] && a->v[2] == b->v[2] && a->bias == b->bias &&
	       a->admin == b->admin && a->drained == b->drained &&
	       a->has_check == b->has_check && a->key == b->key &&
	       a->check_key == b->check_key && a->capacity == b->capacity;
}

static bool rule_eq(const struct svc_rule *a, const struct svc_rule *b)
{
	return a->id == b->id && a->kind == b->kind &&
	       memcmp(&a->net, &b->net, sizeof a->net) == 0 &&
	       a->plen == b->plen && memcmp(a->code, b->code, 3) == 0 &&
	       str_eq(a->text, b->text) && a->n_eps == b->n_eps &&
	       memcmp(a->eps, b->eps, a->n_eps * sizeof *a->eps) == 0;
}

/* Every field of a and b but the position (which follows each set's
 * history). */
static bool svc_eq(const struct svc_service *a, const struct svc_service *b)
{
	if (a->id != b->id || !str_eq(a->name, b->name) ||
	    a->wire_len != b->wire_len ||
	    memcmp(a->wire, b->wire, a->wire_len) != 0 ||
	    a->policy != b->policy || a->ttl != b->ttl ||
	    a->answers != b->answers || a->answers_set != b->answers_set ||
	    a->sticky != b->sticky || a->when_down != b->when_down ||
	    (a->when_down == SVC_DOWN_TARGET &&
	     !target_eq(&a->fallback, &b->fallback)) ||
	    a->n_eps != b->n_eps || a->n_rules != b->n_rules ||
	    a->has_geo_rules != b->has_geo_rules || a->any_bias != b->any_bias ||
	    a->shift.on != b->shift.on || a->hash != b->hash ||
	    a->spill != b->spill || a->fill != b->fill)
		return false;
	for (size_t k = 0; k < a->n_eps; k++)
		if (!ep_eq(&a->eps[k], &b->eps[k]) || a->eps[k].svc != a ||
		    b->eps[k].svc != b)
			return false;
	for (size_t k = 0; k < a->n_rules; k++)
		if (!rule_eq(&a->rules[k], &b->rules[k]))
			return false;
	return true;
}

static const struct zone *zone_of(const struct svc_index *x,
                                  const struct svc_service *v)
{
	return *(const struct zone *const *)cowvec_at(&x->zone, v->pos);
}

static const struct node *ent_find(const struct svc_index *x,
                                   const uint8_t *name, size_t len)
{
	struct snap s = { .svcx = (struct svc_index *)x };

	return snap_svc_ent(&s, name, len);
}

/* incr/xi against full/xf; step for the messages. */
static void compare(int step, const struct svc_set *incr,
                    const struct svc_index *xi, const struct svc_set *full,
                    const struct svc_index *xf)
{
	size_t seen = 0, ents = 0;
	bool ok = true;

	CHECK(incr->n == full->n, "step %d: %zu services, full load %zu", step,
	      incr->n, full->n);
	CHECK(incr->version == full->version, "step %d: version %lld vs %lld",
	      step, incr->version, full->version);
	for (size_t i = 0; i < full->n_pos; i++) {
		const struct svc_service *f = svc_at(full, i), *v;

		if (!f)
			continue;
		v = svc_find(incr, f->wire, f->wire_len);
		if (!v || !svc_eq(v, f)) {
			CHECK(0, "step %d: service %s differs from the full load",
			      step, f->name);
			ok = false;
			continue;
		}
		CHECK(svc_at(incr, v->pos) == v, "step %d: %s at its position",
		      step, v->name);
		CHECK(zone_of(xi, v) == zone_of(xf, f),
		      "step %d: %s: zone differs", step, f->name);
	}
	for (size_t i = 0; i < incr->n_pos; i++)
		seen += svc_at(incr, i) != NULL;
	/* The spill index: the same endpoints (positions differ). */
	CHECK(incr->n_spill == full->n_spill, "step %d: %zu spill endpoints, "
	      "full load %zu", step, incr->n_spill, full->n_spill);
	for (size_t i = 0; i < incr->n_spill; i++) {
		const struct svc_service *v = svc_at(incr, incr->spill[i].svc);
		const struct svc_service *f = v ? svc_find(full, v->wire,
		                                           v->wire_len) : NULL;

		CHECK(v && v->spill && f && f->spill &&
		      incr->spill[i].ep < v->n_eps,
		      "step %d: spill entry %zu", step, i);
	}
	CHECK(seen == incr->n, "step %d: %zu positions used, %zu services",
	      step, seen, incr->n);
	CHECK(xi->skipped == xf->skipped, "step %d: skipped %zu vs %zu", step,
	      xi->skipped, xf->skipped);
	CHECK(xi->n_ents == xf->n_ents, "step %d: %zu ENTs vs %zu", step,
	      xi->n_ents, xf->n_ents);
	for (size_t i = 0; i <= xf->ent_mask && xf->n_ents; i++) {
		const struct zslot *z = cowvec_at(&xf->ent, i);
		const struct node *n;

		if (!z->n)
			continue;
		ents++;
		n = ent_find(xi, z->n->name, z->len);
		CHECK(n && n->zone == z->n->zone, "step %d: ENT missing", step);
	}
	CHECK(ents == xf->n_ents, "step %d: ENT count", step);
	if (!ok)
		exit(1);        /* the first divergence says the most */
}

/* Sets kept alive like published snapshots: the oldest retires first. */
#define KEEP 3

static void random_edits(struct store *db, struct zonetab *zt)
{
	struct svc_set *sets[KEEP] = { 0 };
	struct svc_index *idx[KEEP] = { 0 };
	char err[512];
	int incremental = 0, index_rebuilt = 0;

	CHECK(svc_load(db, &sets[0], err, sizeof err) == 0, "svc_load: %s",
	      err);
	idx[0] = svc_index_build(sets[0], zt);
	for (int step = 1; step <= 400; step++) {
		struct svc_set *cur = sets[(step - 1) % KEEP], *next = NULL, *full;
		struct svc_index *xn = NULL, *xf;
		long long dv;
		char **names = NULL;
		size_t n = 0;
		int rc;

		for (unsigned e = 1 + rnd(step % 50 == 0 ? 40 : 3); e > 0; e--)
			edit(db);
		rc = svc_load_since(db, cur, &next, &names, &n, &dv,
		                    err, sizeof err);
		CHECK(rc == 0, "step %d: svc_load_since: %d %s", step, rc, err);
		if (rc == 0 && !next) {
			/* nothing changed: the same set stays in force */
			CHECK(n == 0, "step %d: names without a change", step);
			next = svc_set_clone(cur);
			next->version = cur->version;
			if (svc_spill_index(next) < 0)
				CHECK(0, "step %d: spill index", step);
			xn = svc_index_update(idx[(step - 1) % KEEP], cur, next,
			                      zt, NULL, 0);
		} else if (rc == 0) {
			incremental++;
			xn = svc_index_update(idx[(step - 1) % KEEP], cur, next,
			                      zt, names, n);
			if (!xn) {
				index_rebuilt++;
				xn = svc_index_build(next, zt);
			}
		}
		svc_names_free(names, n);
		if (!next || !xn) {
			svc_set_free(next);
			svc_index_free(xn);
			break;
		}
		CHECK(svc_load(db, &full, err, sizeof err) == 0,
		      "step %d: svc_load: %s", step, err);
		xf = svc_index_build(full, zt);
		compare(step, next, xn, full, xf);
		svc_index_free(xf);
		svc_set_free(full);
		/* Retire the oldest; the new one takes its place. */
		svc_index_free(idx[step % KEEP]);
		svc_set_free(sets[step % KEEP]);
		sets[step % KEEP] = next;
		idx[step % KEEP] = xn;
	}
	CHECK(incremental > 100, "%d incremental loads", incremental);
	printf("random edits: %d incremental loads, %d index rebuilds\n",
	       incremental, index_rebuilt);
	for (int i = 0; i < KEEP; i++) {
		svc_index_free(idx[i]);
		svc_set_free(sets[i]);
	}
}

static void fallbacks(struct store *db)
{
	struct svc_set *base = NULL, *next = NULL;
	struct cfg_service s = { .name = "fb.example.com.", .policy = "all",
	                         .sticky = -1 };
	char **names = NULL, err[512];
	size_t n = 0;
	long long dv;

	CHECK(svc_load(db, &base, err, sizeof err) == 0, "svc_load: %s", err);
	CHECK(base && base->data_version >= 0, "data_version read with the set");
	/* Nothing changed. */
	CHECK(svc_load_since(db, base, &next, &names, &n, &dv, err,
	                     sizeof err) ==
	      0 && !next && n == 0, "unchanged store");
	/* A gap in the change log (pruned rows). */
	CHECK(cfg_service_add(db, &s, err, sizeof err) == 0, "add: %s", err);
	s.name = "fb2.example.com.";
	CHECK(cfg_service_add(db, &s, err, sizeof err) == 0, "add: %s", err);
	CHECK(store_exec(db->h, "DELETE FROM changes WHERE version = (SELECT "
	                 "max(version) - 1 FROM changes)") == 0, "prune");
	CHECK(svc_load_since(db, base, &next, &names, &n, &dv, err,
	                     sizeof err) ==
	      -ESTALE && !next, "a gap in the change log: %s", err);
	svc_set_free(base);
	/* A store that went back (restored from an older copy). */
	CHECK(svc_load(db, &base, err, sizeof err) == 0, "svc_load: %s", err);
	base->version += 5;
	CHECK(svc_load_since(db, base, &next, &names, &n, &dv, err,
	                     sizeof err) ==
	      -ESTALE && !next, "version went back");
	base->version -= 5;
	/* A hand edit that breaks a row, then a logged write of it: the
	 * problem needs the full load to be recorded. */
	CHECK(store_exec(db->h, "PRAGMA ignore_check_constraints = 1; "
	                 "UPDATE services SET ttl = -5 WHERE name = "
	                 "'fb.example.com.'; INSERT INTO changes VALUES "
	                 "((SELECT version + 1 FROM store_version), "
	                 "'fb.example.com.'); UPDATE store_version SET version "
	                 "= version + 1; PRAGMA ignore_check_constraints = 0")
	      == 0, "hand edit: %s", store_errmsg(db));
	CHECK(svc_load_since(db, base, &next, &names, &n, &dv, err,
	                     sizeof err) ==
	      -ESTALE && !next, "a changed service with a problem");
	svc_set_free(base);
	CHECK(svc_load(db, &base, err, sizeof err) == 0 && base->n_problems == 1,
	      "the full load records the problem");
	/* A set with problems always falls back. */
	CHECK(svc_load_since(db, base, &next, &names, &n, &dv, err,
	                     sizeof err) ==
	      -ESTALE, "base with problems");
	svc_set_free(base);
}

/* Positions and holes: a removed service leaves a hole, a new one takes a
 * new position, a changed one keeps its own; the name hash survives
 * growth and backward-shift deletion. */
static void set_ops(void)
{
	struct svc_set *a = svc_set_new(0), *b;
	struct svc_service tmpl = { 0 };
	uint8_t wire[64];
	char text[256];
	const char *why;
	int ok = 1;

	for (unsigned i = 0; i < 500 && a; i++) {
		char name[64];
		int len;

		snprintf(name, sizeof name, "n%u.example.com.", i);
		len = svc_name_parse(name, wire, text, &why);
		tmpl.id = i;
		tmpl.name = text;
		tmpl.wire = wire;
		tmpl.wire_len = (size_t)len;
		ok &= svc_set_put(a, svc_pack(&tmpl)) == 0;
	}
	CHECK(a && ok && a->n == 500 && a->n_pos == 500, "500 services");
	if (!a)
		return;
	b = svc_set_clone(a);
	for (unsigned i = 0; i < 500; i += 2) {
		char name[64];
		int len;

		snprintf(name, sizeof name, "n%u.example.com.", i);
		len = svc_name_parse(name, wire, text, &why);
		ok &= svc_set_del(b, wire, (size_t)len) == 1;
		ok &= svc_set_del(b, wire, (size_t)len) == 0;
	}
	CHECK(ok && b->n == 250 && b->n_pos == 500, "250 removed: holes");
	for (unsigned i = 0; i < 500; i++) {
		char name[64];
		int len;
		const struct svc_service *va, *vb;

		snprintf(name, sizeof name, "n%u.example.com.", i);
		len = svc_name_parse(name, wire, text, &why);
		va = svc_find(a, wire, (size_t)len);
		vb = svc_find(b, wire, (size_t)len);
		ok &= va && va->id == i && svc_at(a, va->pos) == va;
		ok &= (i % 2 == 0) ? !vb : vb == va && svc_at(b, i) == va;
		ok &= (i % 2 == 0) == !svc_at(b, i);
	}
	CHECK(ok, "the old set is untouched, the new one shares the rest");
	tmpl.id = 9999;
	snprintf(text, sizeof text, "n1.example.com.");
	tmpl.wire_len = (size_t)svc_name_parse(text, wire, text, &why);
	CHECK(svc_set_put(b, svc_pack(&tmpl)) == 0 &&
	      svc_find_text(b, "n1.example.com")->id == 9999 &&
	      svc_find_text(b, "n1.example.com")->pos == 1 &&
	      svc_find_text(a, "n1.example.com")->id == 1 && b->n == 250,
	      "a replaced service keeps its position");
	svc_set_free(a);
	svc_set_free(b);
}

/* A load packing on two threads makes the same set as one thread: every
 * service field by field, at the same position, the same problems. */
static void threads_same(struct store *db, const char *what)
{
	struct svc_set *a = NULL, *b = NULL;
	char err[512];
	size_t diff = 0;

	CHECK(svc_load_threads(db, 1, &a, err, sizeof err) == 0 &&
	      svc_load_threads(db, 2, &b, err, sizeof err) == 0,
	      "%s: svc_load_threads: %s", what, err);
	if (!a || !b)
		goto out;
	CHECK(a->n == b->n && a->n_pos == b->n_pos &&
	      a->n_problems == b->n_problems && a->version == b->version &&
	      a->max_endpoint_id == b->max_endpoint_id && a->n_spill ==
	      b->n_spill, "%s: %zu/%zu services, %zu/%zu problems", what,
	      a->n, b->n, a->n_problems, b->n_problems);
	for (size_t i = 0; i < a->n_pos && i < b->n_pos; i++) {
		const struct svc_service *x = svc_at(a, i), *y = svc_at(b, i);

		if ((!x) != (!y) || (x && (!svc_eq(x, y) || x->pos != y->pos ||
		                           svc_find(b, x->wire, x->wire_len) != y)))
			diff++;
	}
	for (size_t i = 0; i < a->n_problems && i < b->n_problems; i++)
		diff += strcmp(a->problems[i], b->problems[i]) != 0;
	CHECK(diff == 0, "%s: %zu services or problems differ", what, diff);
out:
	svc_set_free(a);
	svc_set_free(b);
}

/* Many services with endpoints added out of service order and a few
 * invalid rows, written straight into a store of their own. */
static void threads_bulk(void)
{
	char path[] = "/tmp/test_incr_bulk.XXXXXX", err[512];
	struct store *db = NULL;
	int fd = mkstemp(path);

	CHECK(fd >= 0, "mkstemp");
	close(fd);
	unlink(path);
	CHECK(store_open(path, STORE_CREATE, &db, err, sizeof err) == 0,
	      "store_open: %s", err);
	if (db)
		CHECK(store_exec(db->h, "PRAGMA ignore_check_constraints = ON;"
		        "WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 "
		        "FROM c WHERE i < 2999) INSERT INTO services (id, name, "
		        "policy, ttl) SELECT i + 1, 'b' || i || '.example.com.', "
		        "CASE i % 3 WHEN 0 THEN 'failover' WHEN 1 THEN 'weighted' "
		        "ELSE 'geo' END, CASE i % 997 WHEN 5 THEN -1 ELSE 60 END "
		        "FROM c;"
		        "WITH RECURSIVE c(e) AS (SELECT 0 UNION ALL SELECT e + 1 "
		        "FROM c WHERE e < 11999) INSERT INTO endpoints (id, "
		        "service_id, target, weight, priority, lat, lon) SELECT "
		        "e + 1, (e * 7) % 3000 + 1, CASE e % 1009 WHEN 3 THEN "
		        "'bad' ELSE '10.' || (e / 65536) || '.' || (e / 256 % 256)"
		        " || '.' || (e % 256) END, e % 5, e % 4, "
		        "(e % 170) - 85, (e % 350) - 175 FROM c;") == 0,
		      "bulk rows: %s", store_errmsg(db));
	if (db)
		threads_same(db, "bulk");
	store_close(db);
	unlink(path);
}

int main(void)
{
	char path[] = "/tmp/test_incr.XXXXXX", err[512];
	struct cfg_write w = { .force = true, .who = "test" };
	struct store *db = NULL;
	struct zone *z = load_zone();
	struct zonetab *zt = z ? zonetab_build(&z, 1) : NULL;
	int fd = mkstemp(path);

	log_set_level(LOG_LVL_ERR);     /* skipped services are expected */
	set_ops();
	CHECK(fd >= 0, "mkstemp");
	close(fd);
	unlink(path);
	CHECK(store_open(path, STORE_CREATE, &db, err, sizeof err) == 0,
	      "store_open: %s", err);
	if (db && zt) {
		cfg_write_use(&w);
		for (int i = 0; i < 40; i++)
			edit(db);
		random_edits(db, zt);
		threads_same(db, "edited");
		fallbacks(db);
		cfg_write_use(NULL);
		cfg_write_done(&w);
	}
	store_close(db);
	unlink(path);
	threads_bulk();
	zonetab_free(zt);
	zone_free(z);
	return TEST_DONE();
}
