/* cluster/write.c - configuration writes against etcd. See
 * cluster/write.h. */
#include "cluster/write.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "cluster/etcd.h"
#include "cluster/replica.h"
#include "common/clock.h"
#include "common/log.h"
#include "db/audit.h"
#include "db/edit.h"
#include "db/export.h"
#include "db/store.h"

#define DEFAULT_PREFIX "/gslb/"
/* How long a write keeps trying while etcd has no leader or no member
 * answers, and while it finds out whether a transaction whose answer was
 * lost was applied (seconds). */
#define CW_BUDGET_S 8.0
/* At least this long to find out whether a transaction whose answer was
 * lost was applied (seconds). */
#define CW_SETTLE_S 3.0

/* A service key as ranged: its name and mod revision at the range. */
struct cw_key {
	char *name;
	int64_t mod;
};

struct cw_view {
	struct store *scratch;
	long long base;         /* its version once filled */
	int64_t rev;
	struct cw_key *keys;    /* sorted by name (etcd's key order) */
	size_t n;
};

static void view_fini(struct cw_view *v)
{
	store_close(v->scratch);
	for (size_t i = 0; i < v->n; i++)
		free(v->keys[i].name);
	free(v->keys);
	memset(v, 0, sizeof *v);
}

static const struct cw_key *view_find(const struct cw_view *v,
                                      const char *name)
{
	size_t lo = 0, hi = v->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(v->keys[mid].name, name);

		if (c == 0)
			return &v->keys[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int key_cmp(const void *a, const void *b)
{
	return strcmp(((const struct cw_key *)a)->name,
	              ((const struct cw_key *)b)->name);
}

const char *cw_strerror(int rc)
{
	switch (rc) {
	case -EAGAIN:
		return "conflict";
	case -ETIMEDOUT:
		return "outcome unknown";
	case -EHOSTDOWN:
		return "etcd unavailable (nothing changed)";
	default:
		return strerror(-rc);
	}
}

static char *key_of(const char *prefix, const char *kind, const char *name)
{
	size_t n = strlen(prefix) + strlen(kind) + strlen(name) + 1;
	char *k = malloc(n);

	if (k)
		snprintf(k, n, "%s%s%s", prefix, kind, name);
	return k;
}

/* Ranges the services at one revision into a new scratch store
 * (cluster/replica.h: bad values are skipped with a warning). */
static int view_load(struct etcd *e, const char *prefix, struct cw_view *v,
                     char *err, size_t errlen)
{
	char *pfx = key_of(prefix, "services/", "");
	size_t plen = pfx ? strlen(pfx) : 0;
	struct etcd_range r = { 0 };
	int rc;

	memset(v, 0, sizeof *v);
	if (!pfx) {
		rc = -ENOMEM;
		goto out;
	}
	rc = etcd_range(e, pfx, true, 0, 0, &r);
	if (rc < 0) {
		snprintf(err, errlen, "etcd: %s", etcd_error(e));
		rc = -EHOSTDOWN;
		goto out;
	}
	v->rev = r.revision;
	if (!(v->keys = calloc(r.n + 1, sizeof *v->keys))) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < r.n; i++) {
		const struct etcd_kv *kv = &r.kvs[i];

		if (kv->key_len <= plen)
			continue;
		/* Every key counts for the compare, valid or not. */
		if (!(v->keys[v->n].name = strdup(kv->key + plen))) {
			rc = -ENOMEM;
			goto out;
		}
		v->keys[v->n].mod = kv->mod_revision;
		v->n++;
	}
	qsort(v->keys, v->n, sizeof *v->keys, key_cmp);
	if ((rc = replica_scratch(&r, prefix, ":memory:", &v->scratch, err,
	                          errlen)) < 0)
		goto out;
	if ((v->base = cfg_store_version(v->scratch)) < 0) {
		snprintf(err, errlen, "scratch: %s", store_errmsg(v->scratch));
		rc = -EIO;
	}
out:
	if (rc == -ENOMEM)
		snprintf(err, errlen, "etcd: out of memory");
	etcd_range_fini(&r);
	free(pfx);
	if (rc < 0)
		view_fini(v);
	return rc;
}

int cw_scratch(struct etcd *e, const char *prefix, struct store **out,
               long long *rev, char *err, size_t errlen)
{
	struct cw_view v;
	int rc = view_load(e, prefix ? prefix : DEFAULT_PREFIX, &v, err,
	                   errlen);

	if (rc < 0)
		return rc;
	*out = v.scratch;
	*rev = v.rev;
	v.scratch = NULL;
	view_fini(&v);
	return 0;
}

/* One service the write touched: its new value (NULL: removed) and its
 * audit rows. */
struct cw_change {
	const char *name;       /* into rows */
	char *value;
	size_t len;
	json_t *rows;           /* array */
};

/* An audit row of cfg_history as it travels: without the store's version
 * (each store numbers its own). */
static json_t *audit_row(const json_t *h)
{
	json_t *r = json_copy((json_t *)h);

	if (r)
		json_object_del(r, "version");
	return r;
}

static void changes_free(struct cw_change *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(c[i].value);
		json_decref(c[i].rows);
	}
	free(c);
}

/* What the write did to the scratch store: per service, its new value and
 * its audit rows, in the order of the audit rows. */
static int changes_of(struct store *scratch, long long base, json_t **hist,
                      struct cw_change **out, size_t *n, char *err,
                      size_t errlen)
{
	struct cw_change *c = NULL;
	size_t nc = 0, i;
	json_t *h;

	*out = NULL;
	*n = 0;
	*hist = cfg_history(scratch, NULL, 1000000, err, errlen);
	if (!*hist)
		return -EIO;
	if (!(c = calloc(json_array_size(*hist) + 1, sizeof *c))) {
		snprintf(err, errlen, "audit: out of memory");
		return -ENOMEM;
	}
	json_array_foreach(*hist, i, h) {
		const char *s = json_string_value(json_object_get(h, "service"));
		json_t *row;
		size_t k;

		/* Rows of the fill are not the write's. */
		if (json_integer_value(json_object_get(h, "version")) <= base)
			continue;
		row = audit_row(h);
		if (!s || !row) {
			json_decref(row);
			changes_free(c, nc);
			snprintf(err, errlen, "audit: out of memory");
			return -ENOMEM;
		}
		for (k = 0; k < nc && strcmp(c[k].name, s) != 0; k++)
			;
		if (k == nc) {
			c[nc].name = s;
			c[nc].rows = json_array();
			nc++;
		}
		json_array_append_new(c[k].rows, row);
	}
	for (i = 0; i < nc; i++) {
		char e2[512];
		json_t *doc = cfg_export(scratch, c[i].name, e2, sizeof e2);
		json_t *o = json_array_get(json_object_get(doc, "services"), 0);

		if (o) {
			c[i].value = json_dumps(o, JSON_COMPACT |
			                        JSON_PRESERVE_ORDER |
			                        JSON_REAL_PRECISION(15));
			c[i].len = c[i].value ? strlen(c[i].value) : 0;
		} else if (!strstr(e2, "not found")) {
			json_decref(doc);
			changes_free(c, nc);
			snprintf(err, errlen, "%s", e2);
			return -EIO;
		}
		json_decref(doc);
	}
	*out = c;
	*n = nc;
	return 0;
}

/* A new audit key: time (ns, hex, so keys sort by time) and random bits. */
static char *audit_key(const char *prefix)
{
	struct timespec ts;
	uint32_t rnd = 0;
	char id[64];

	clock_gettime(CLOCK_REALTIME, &ts);
	if (getrandom(&rnd, sizeof rnd, 0) != sizeof rnd)
		rnd = (uint32_t)rand();
	snprintf(id, sizeof id, "%016llx-%08" PRIx32,
	         (unsigned long long)ts.tv_sec * 1000000000ull +
	         (unsigned long long)ts.tv_nsec, rnd);
	return key_of(prefix, "audit/", id);
}

enum txn_outcome { TXN_DONE, TXN_CONFLICT, TXN_RETRY, TXN_UNKNOWN,
                   TXN_NOMEM };

static void pause_ms(unsigned lo, unsigned hi)
{
	uint32_t r = 0;
	unsigned ms;
	struct timespec ts;

	if (getrandom(&r, sizeof r, 0) != sizeof r)
		r = (uint32_t)rand();
	ms = lo + (hi > lo ? r % (hi - lo) : 0);
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	nanosleep(&ts, NULL);
}

/* After a transaction whose answer was lost: was it applied? Its audit key
 * tells (a linearizable read: a transaction not applied by then never
 * will be). TXN_DONE, TXN_RETRY (not applied) or TXN_UNKNOWN (no member
 * could say before the deadline). */
static enum txn_outcome settle(struct etcd *e, const char *akey,
                               double deadline, int64_t *rev)
{
	while (clock_unix() < deadline) {
		struct etcd_range r = { 0 };
		int rc = etcd_range(e, akey, false, 0, 0, &r);

		if (rc == 0) {
			bool found = r.n > 0;

			if (found)
				*rev = r.kvs[0].mod_revision;
			etcd_range_fini(&r);
			return found ? TXN_DONE : TXN_RETRY;
		}
		etcd_range_fini(&r);
		pause_ms(100, 300);
	}
	return TXN_UNKNOWN;
}

/* Commits changes [from, to) in one transaction. */
static enum txn_outcome commit(struct etcd *e, const char *prefix,
                               const struct cw_view *v, unsigned flags,
                               const struct cw_change *c, size_t from,
                               size_t to, double deadline, int64_t *rev,
                               char *err, size_t errlen)
{
	size_t n = to - from, ncmp = 0, nop = 0;
	bool whole = (flags & CW_WHOLE) && from == 0 &&
	             n + v->n <= CW_TXN_SERVICES;
	struct etcd_cmp *cmps = calloc(n + (whole ? v->n : 0) + 1,
	                               sizeof *cmps);
	struct etcd_op *ops = calloc(n + 1, sizeof *ops);
	char **keys = calloc(n + (whole ? v->n : 0) + 1, sizeof *keys);
	json_t *rows = json_array();
	char *akey = audit_key(prefix), *aval = NULL;
	struct etcd_txn_result res = { 0 };
	enum txn_outcome out = TXN_NOMEM;
	size_t nk = 0;
	int rc;

	if (!cmps || !ops || !keys || !rows || !akey)
		goto done;
	for (size_t i = from; i < to; i++) {
		const struct cw_key *k = view_find(v, c[i].name);
		char *key = keys[nk++] = key_of(prefix, "services/", c[i].name);

		if (!key)
			goto done;
		cmps[ncmp].key = key;
		cmps[ncmp].result = ETCD_CMP_EQUAL;
		if (k) {
			cmps[ncmp].target = ETCD_CMP_MOD;
			cmps[ncmp].num = k->mod;
		} else {
			cmps[ncmp].target = ETCD_CMP_CREATE;
			cmps[ncmp].num = 0;
		}
		ncmp++;
		ops[nop].key = key;
		if (c[i].value) {
			ops[nop].type = ETCD_OP_PUT;
			ops[nop].value = c[i].value;
			ops[nop].value_len = c[i].len;
		} else {
			ops[nop].type = ETCD_OP_DELETE;
		}
		nop++;
		json_array_extend(rows, c[i].rows);
	}
	/* A whole-configuration write also holds only if no other service
	 * changed since the range. */
	for (size_t j = 0; whole && j < v->n; j++) {
		bool touched = false;

		for (size_t i = from; i < to && !touched; i++)
			touched = strcmp(c[i].name, v->keys[j].name) == 0;
		if (touched)
			continue;
		cmps[ncmp].key = keys[nk++] = key_of(prefix, "services/",
		                                      v->keys[j].name);
		if (!cmps[ncmp].key)
			goto done;
		cmps[ncmp].target = ETCD_CMP_MOD;
		cmps[ncmp].result = ETCD_CMP_EQUAL;
		cmps[ncmp].num = v->keys[j].mod;
		ncmp++;
	}
	aval = json_dumps(rows, JSON_COMPACT | JSON_PRESERVE_ORDER |
	                  JSON_REAL_PRECISION(15));
	if (!aval)
		goto done;
	ops[nop].type = ETCD_OP_PUT;
	ops[nop].key = akey;
	ops[nop].value = aval;
	ops[nop].value_len = strlen(aval);
	nop++;
	rc = etcd_txn(e, cmps, ncmp, ops, nop, NULL, 0, &res);
	if (rc == 0) {
		*rev = res.revision;
		out = res.succeeded ? TXN_DONE : TXN_CONFLICT;
	} else if (etcd_outcome_unknown(e)) {
		snprintf(err, errlen, "etcd: %s", etcd_error(e));
		/* However late in the write: time for a new leader. */
		out = settle(e, akey, deadline > clock_unix() + CW_SETTLE_S ?
		             deadline : clock_unix() + CW_SETTLE_S, rev);
	} else {
		snprintf(err, errlen, "etcd: %s", etcd_error(e));
		out = TXN_RETRY;
	}
done:
	if (out == TXN_NOMEM)
		snprintf(err, errlen, "etcd: out of memory");
	etcd_txn_result_fini(&res);
	for (size_t i = 0; keys && i < nk; i++)
		free(keys[i]);
	free(keys);
	free(cmps);
	free(ops);
	free(akey);
	free(aval);
	json_decref(rows);
	return out;
}

int cw_run(struct etcd *e, const char *prefix, unsigned flags, cw_fn fn,
           void *arg, struct cw_result *res, char *err, size_t errlen)
{
	double deadline = clock_unix() + CW_BUDGET_S;
	unsigned conflicts = 0;
	struct cw_result r0 = { 0 };
	int rc;

	if (!prefix)
		prefix = DEFAULT_PREFIX;
	*res = r0;
	for (;;) {
		struct cw_view v;
		struct cw_change *c = NULL;
		json_t *hist = NULL;
		size_t nc = 0, from = 0;
		enum txn_outcome o = TXN_DONE;
		int64_t crev = 0;

		res->attempts++;
		if ((rc = view_load(e, prefix, &v, err, errlen)) < 0) {
			if (rc != -EHOSTDOWN || clock_unix() >= deadline ||
			    (flags & CW_ONCE))
				goto out;
			pause_ms(100, 300);
			continue;
		}
		res->revision = v.rev;
		if ((rc = fn(v.scratch, arg, err, errlen)) < 0 ||
		    cfg_write_current()->dry_run ||
		    (rc = changes_of(v.scratch, v.base, &hist, &c, &nc, err,
		                     errlen)) < 0 || nc == 0) {
			changes_free(c, nc);
			json_decref(hist);
			view_fini(&v);
			goto out;
		}
		/* Chunks of at most CW_TXN_SERVICES services and CW_TXN_BYTES. */
		while (from < nc) {
			size_t to = from, bytes = 0;

			while (to < nc && to - from < CW_TXN_SERVICES &&
			       (to == from || bytes + c[to].len <= CW_TXN_BYTES))
				bytes += c[to++].len;
			if (from == 0 && to < nc)
				log_warn("etcd: %zu services changed: more than "
				         "one transaction holds; committing them "
				         "in several (not atomic)", nc);
			o = commit(e, prefix, &v, flags, c, from, to, deadline,
			           &crev, err, errlen);
			if (o != TXN_DONE)
				break;
			res->revision = crev;
			res->txns++;
			res->services += to - from;
			from = to;
		}
		changes_free(c, nc);
		json_decref(hist);
		view_fini(&v);
		if (o == TXN_DONE || o == TXN_NOMEM) {
			rc = o == TXN_DONE ? 0 : -ENOMEM;
			goto out;
		}
		if (o == TXN_UNKNOWN) {
			res->unknown = true;
			snprintf(err + strlen(err), errlen - strlen(err),
			         "%soutcome unknown: the change may or may not "
			         "have been applied", err[0] ? "; " : "");
			rc = -ETIMEDOUT;
			goto out;
		}
		if (o == TXN_CONFLICT && (flags & CW_ONCE)) {
			snprintf(err, errlen, "conflict: another writer "
			         "changed the same services first");
			rc = -EAGAIN;
			goto out;
		}
		if (o == TXN_RETRY && (flags & CW_ONCE)) {
			rc = -EHOSTDOWN;
			goto out;
		}
		if (o == TXN_CONFLICT && ++conflicts >= CW_ATTEMPTS) {
			snprintf(err, errlen, "conflict: other writers changed "
			         "the same services %u times in a row; nothing "
			         "of this write was committed%s", conflicts,
			         res->txns ? " after the first transactions" :
			         "");
			rc = -EAGAIN;
			goto out;
		}
		if (o == TXN_RETRY && clock_unix() >= deadline) {
			snprintf(err + strlen(err), errlen - strlen(err),
			         "; etcd unavailable: nothing changed%s",
			         res->txns ? " by the last transaction" : "");
			rc = -EHOSTDOWN;
			goto out;
		}
		pause_ms(o == TXN_CONFLICT ? 5 : 100,
		         o == TXN_CONFLICT ? 50u << conflicts : 300);
		err[0] = '\0';
	}
out:
	if (rc == -EHOSTDOWN && !strstr(err, "nothing changed"))
		snprintf(err + strlen(err), errlen - strlen(err),
		         "; etcd unavailable: nothing changed");
	return rc;
}

json_t *cw_cluster_status(struct etcd *e, const char *prefix, char *err,
                          size_t errlen)
{
	char *npfx, *spfx, *apfx;
	struct etcd_range rn = { 0 }, rs = { 0 }, ra = { 0 };
	json_t *nodes = NULL, *out = NULL;
	int64_t last = 0;

	if (!prefix)
		prefix = DEFAULT_PREFIX;
	npfx = key_of(prefix, "nodes/", "");
	spfx = key_of(prefix, "services/", "");
	apfx = key_of(prefix, "audit/", "");
	if (etcd_range(e, spfx, true, 0, 0, &rs) < 0 ||
	    etcd_range(e, apfx, true, rs.revision, 0, &ra) < 0 ||
	    etcd_range(e, npfx, true, rs.revision, 0, &rn) < 0) {
		snprintf(err, errlen, "etcd: %s", etcd_error(e));
		goto out;
	}
	/* The revision of the last configuration change: every write puts an
	 * audit key, deletions included. */
	for (size_t i = 0; i < rs.n; i++)
		if (rs.kvs[i].mod_revision > last)
			last = rs.kvs[i].mod_revision;
	for (size_t i = 0; i < ra.n; i++)
		if (ra.kvs[i].mod_revision > last)
			last = ra.kvs[i].mod_revision;
	nodes = json_array();
	for (size_t i = 0; i < rn.n; i++) {
		const struct etcd_kv *kv = &rn.kvs[i];
		json_t *o = json_loadb(kv->value, kv->value_len, 0, NULL);
		json_t *cr = json_object_get(o, "revision");
		json_t *ap = json_object_get(o, "applied");
		json_t *t = json_object_get(o, "time");
		int64_t nr = json_is_integer(cr) ? json_integer_value(cr) : -1;

		json_array_append_new(nodes, json_pack(
			"{s:s, s:o, s:o, s:o, s:b, s:o}",
			"name", kv->key + strlen(npfx),
			"config_revision", nr >= 0 ? json_integer(nr) : json_null(),
			"revision", json_is_integer(ap) ? json_copy(ap) :
			json_null(),
			"lag", nr >= 0 ? json_integer(last > nr ? last - nr : 0) :
			json_null(),
			"current", nr >= last,
			"time", json_is_number(t) ? json_copy(t) : json_null()));
		json_decref(o);
	}
	out = json_pack("{s:s, s:I, s:I, s:I, s:I, s:o}", "prefix", prefix,
	                "cluster_revision", (json_int_t)rs.revision,
	                "config_revision", (json_int_t)last,
	                "services", (json_int_t)rs.n,
	                "audit", (json_int_t)ra.n, "nodes", nodes);
out:
	etcd_range_fini(&rn);
	etcd_range_fini(&rs);
	etcd_range_fini(&ra);
	free(npfx);
	free(spfx);
	free(apfx);
	return out;
}

json_t *cw_history(struct etcd *e, const char *prefix, const char *service,
                   int limit, long long *rev, char *err, size_t errlen)
{
	char *apfx = key_of(prefix ? prefix : DEFAULT_PREFIX, "audit/", "");
	struct etcd_range r = { 0 };
	json_t *all = json_array(), *out = NULL;
	char canon[256];
	size_t from;

	if (!apfx || !all) {
		snprintf(err, errlen, "history: out of memory");
		goto done;
	}
	if (service && cfg_canon_name(service, canon, err, errlen) < 0)
		goto done;
	if (etcd_range(e, apfx, true, 0, 0, &r) < 0) {
		snprintf(err, errlen, "etcd: %s", etcd_error(e));
		goto done;
	}
	*rev = r.revision;
	for (size_t i = 0; i < r.n; i++) {
		json_t *rows = json_loadb(r.kvs[i].value, r.kvs[i].value_len, 0,
		                          NULL), *row;
		size_t k;

		if (!json_is_array(rows))
			log_warn("etcd: %s: skipped: not a list of audit rows",
			         r.kvs[i].key);
		json_array_foreach(rows, k, row) {
			const char *s = json_string_value(json_object_get(row,
			                                                  "service"));

			if (!json_is_object(row) || !s ||
			    (service && strcmp(s, canon) != 0))
				continue;
			row = json_copy(row);
			json_object_set_new(row, "version",
			                    json_integer(r.kvs[i].mod_revision));
			json_array_append_new(all, row);
		}
		json_decref(rows);
	}
	out = json_array();
	from = json_array_size(all) > (size_t)limit ?
	       json_array_size(all) - (size_t)limit : 0;
	for (size_t i = from; out && i < json_array_size(all); i++)
		json_array_append(out, json_array_get(all, i));
done:
	json_decref(all);
	etcd_range_fini(&r);
	free(apfx);
	return out;
}
