/* cluster/replica.c - etcd's key space applied to the store (see
 * replica.h). */
#include "cluster/replica.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cluster/etcd.h"
#include "common/log.h"
#include "db/audit.h"
#include "db/store.h"
#include "db/sync.h"

#define K_SERVICES "services/"
#define K_AUDIT "audit/"
#define K_NODES "nodes/"

struct replica {
	struct store *db;
	char prefix[256];
	size_t plen;
	struct replica_stats st;
	bool warned_unknown;
	bool quiet;              /* a scratch store: changes not logged */
	struct cfg_sync *sync;
};

enum kind { KEY_OTHER, KEY_SERVICE, KEY_AUDIT, KEY_NODE };

/* What key is; *rest: what follows its folder. */
static enum kind key_kind(const struct replica *r, const char *key,
                          const char **rest)
{
	static const struct { const char *dir; enum kind k; } dirs[] = {
		{ K_SERVICES, KEY_SERVICE }, { K_AUDIT, KEY_AUDIT },
		{ K_NODES, KEY_NODE },
	};
	const char *k = key + r->plen;

	*rest = k;
	if (strncmp(key, r->prefix, r->plen) != 0)
		return KEY_OTHER;
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		size_t n = strlen(dirs[i].dir);

		if (strncmp(k, dirs[i].dir, n) == 0 && k[n]) {
			*rest = k + n;
			return dirs[i].k;
		}
	}
	return KEY_OTHER;
}

static void unknown_key(struct replica *r, const char *key, int64_t rev)
{
	if (r->warned_unknown)
		return;
	r->warned_unknown = true;
	log_warn("etcd: key %s (revision %" PRId64 "): not a service, audit or "
	         "node key; ignored (and so is any other such key)", key, rev);
}

static void bad_value(struct replica *r, const char *key, int64_t rev,
                      const char *why)
{
	r->st.invalid++;
	log_warn("etcd: key %s (revision %" PRId64 "): %s; skipped (this node "
	         "keeps what it had for it)", key, rev, why);
}

struct replica *replica_new(struct store *db, const char *prefix, char *err,
                            size_t errlen)
{
	struct replica *r;
	struct cfg_sync_pos pos;

	if (!prefix || !*prefix || strlen(prefix) >= sizeof(r->prefix)) {
		snprintf(err, errlen, "etcd: bad prefix '%s'", prefix ? prefix : "");
		return NULL;
	}
	if (!(r = calloc(1, sizeof(*r)))) {
		snprintf(err, errlen, "etcd: out of memory");
		return NULL;
	}
	r->db = db;
	if (!(r->sync = cfg_sync_new(db, err, errlen))) {
		free(r);
		return NULL;
	}
	snprintf(r->prefix, sizeof(r->prefix), "%s", prefix);
	r->plen = strlen(prefix);
	if (cfg_sync_position(db, &pos, err, errlen) < 0) {
		replica_free(r);
		return NULL;
	}
	if (strcmp(pos.prefix, prefix) == 0) {
		r->st.revision = pos.revision;
		r->st.config_revision = pos.config_revision;
	}
	return r;
}

void replica_free(struct replica *r)
{
	if (!r)
		return;
	cfg_sync_free(r->sync);
	free(r);
}

void replica_stats(const struct replica *r, struct replica_stats *out)
{
	*out = r->st;
}

/* The write context of the replica's writes: its own rows are by "etcd"
 * (a change that came without the writer's rows). */
static void use_context(const struct replica *r, struct cfg_write *w)
{
	memset(w, 0, sizeof(*w));
	w->who = "etcd";
	w->source = "etcd";
	w->force = true;        /* etcd holds the truth: never refuse it */
	w->log_stderr = !r->quiet;
}

/* A service document put at key (rev) into the group. A bad one is
 * skipped: 1 (full: the store keeps its current state of the service,
 * and 0). */
static int put_service(struct replica *r, struct cfg_sync *s, const char *key,
                       const char *name, const char *val, size_t len,
                       int64_t rev, bool full, char *err, size_t errlen)
{
	json_error_t je;
	json_t *doc = json_loadb(val, len, 0, &je);
	char why[512];
	int rc;

	if (!doc) {
		snprintf(why, sizeof(why), "not JSON: %s (line %d, column %d)",
		         je.text, je.line, je.column);
		bad_value(r, key, rev, why);
		rc = -EINVAL;
	} else if ((rc = cfg_sync_put(s, name, doc, why, sizeof(why))) ==
	           -EINVAL) {
		char msg[600];

		snprintf(msg, sizeof(msg), "invalid service: %s", why);
		bad_value(r, key, rev, msg);
	} else if (rc < 0) {
		snprintf(err, errlen, "%s", why);
	}
	json_decref(doc);
	if (rc == -EINVAL && full)
		return cfg_sync_keep(s, name, err, errlen);
	return rc == -EINVAL ? 1 : rc;
}

static int full_apply(struct replica *r, const struct etcd_range *rg,
                      const json_t *rows, struct cfg_sync_pos *pos,
                      char *err, size_t errlen)
{
	struct cfg_sync *s = r->sync;
	size_t changed = 0;
	int rc;

	if ((rc = cfg_sync_begin(s, err, errlen)) < 0)
		return rc;
	for (size_t i = 0; i < rg->n; i++) {
		const struct etcd_kv *kv = &rg->kvs[i];
		const char *rest;

		switch (key_kind(r, kv->key, &rest)) {
		case KEY_SERVICE:
			if (kv->mod_revision > pos->config_revision)
				pos->config_revision = kv->mod_revision;
			rc = put_service(r, s, kv->key, rest, kv->value,
			                 kv->value_len, kv->mod_revision, true, err,
			                 errlen);
			break;
		case KEY_AUDIT:
			if (kv->mod_revision > pos->config_revision)
				pos->config_revision = kv->mod_revision;
			break;
		case KEY_NODE:
			break;
		case KEY_OTHER:
			unknown_key(r, kv->key, kv->mod_revision);
			break;
		}
		if (rc < 0)
			goto fail;
	}
	if ((rc = cfg_sync_flush(s, true, rows, &changed, err, errlen)) < 0)
		goto fail;
	rc = cfg_sync_commit(s, pos, err, errlen);
	if (rc == 0)
		r->st.changes += changed;
	return rc;
fail:
	cfg_sync_abort(s);
	return rc;
}

int replica_full(struct replica *r, const struct etcd_range *rg, char *err,
                 size_t errlen)
{
	struct cfg_sync_pos pos = { .revision = rg->revision };
	struct cfg_write w, *prev;
	int rc;

	/* The last configuration change: the newest service or audit key
	 * (a writer records audit rows with every change, deletes too), or
	 * what this store had applied from the same key space when that is
	 * newer (a delete without rows leaves no key behind). */
	if (r->st.config_revision <= rg->revision)
		pos.config_revision = r->st.config_revision;
	snprintf(pos.prefix, sizeof(pos.prefix), "%s", r->prefix);
	use_context(r, &w);
	prev = cfg_write_swap(&w);
	rc = full_apply(r, rg, NULL, &pos, err, errlen);
	cfg_write_done(&w);
	cfg_write_use(prev);
	if (rc == 0) {
		r->st.revision = pos.revision;
		r->st.config_revision = pos.config_revision;
		r->st.resyncs++;
	}
	return rc;
}

static int by_mod_revision(const void *a, const void *b)
{
	const struct etcd_kv *x = *(const struct etcd_kv *const *)a;
	const struct etcd_kv *y = *(const struct etcd_kv *const *)b;

	return (x->mod_revision > y->mod_revision) -
	       (x->mod_revision < y->mod_revision);
}

/* The writers' audit rows of the audit keys in rg, in revision order (a
 * value that is not a list is skipped with a warning); *newest: the
 * revision of the last one. NULL when out of memory. */
static json_t *range_rows(const struct etcd_range *rg, int64_t *newest)
{
	const struct etcd_kv **kv = malloc((rg->n ? rg->n : 1) * sizeof(*kv));
	json_t *rows = json_array();

	if (!kv || !rows) {
		free(kv);
		json_decref(rows);
		return NULL;
	}
	for (size_t i = 0; i < rg->n; i++)
		kv[i] = &rg->kvs[i];
	qsort(kv, rg->n, sizeof(*kv), by_mod_revision);
	for (size_t i = 0; i < rg->n; i++) {
		json_t *a = json_loadb(kv[i]->value, kv[i]->value_len, 0, NULL);

		if (kv[i]->mod_revision > *newest)
			*newest = kv[i]->mod_revision;
		if (!json_is_array(a))
			log_warn("etcd: key %s (revision %" PRId64 "): audit rows "
			         "are not a JSON list; this node records its own",
			         kv[i]->key, kv[i]->mod_revision);
		else
			json_array_extend(rows, a);
		json_decref(a);
	}
	free(kv);
	return rows;
}

int replica_catchup(struct replica *r, const struct etcd_range *services,
                    const struct etcd_range *audit, char *err, size_t errlen)
{
	struct cfg_sync_pos pos = { .revision = services->revision,
	                            .config_revision = r->st.config_revision };
	struct cfg_write w, *prev;
	json_t *rows;
	int rc;

	if (services->revision <= r->st.revision)
		return 0;       /* nothing newer (a member behind the others) */
	if (!(rows = range_rows(audit, &pos.config_revision))) {
		snprintf(err, errlen, "etcd: out of memory");
		return -ENOMEM;
	}
	snprintf(pos.prefix, sizeof(pos.prefix), "%s", r->prefix);
	use_context(r, &w);
	prev = cfg_write_swap(&w);
	rc = full_apply(r, services, json_array_size(rows) ? rows : NULL, &pos,
	                err, errlen);
	cfg_write_done(&w);
	cfg_write_use(prev);
	json_decref(rows);
	if (rc == 0) {
		r->st.revision = pos.revision;
		r->st.config_revision = pos.config_revision;
		r->st.catchups++;
	}
	return rc;
}

/* The writer's audit rows of the events (NULL: none), and whether every
 * revision that changed a service brought some. */
static json_t *audit_rows(struct replica *r, const struct etcd_event *ev,
                          size_t n, bool *all)
{
	json_t *rows = NULL, *with = json_object();
	const char *rest;
	char rev[24];

	*all = with != NULL;
	for (size_t i = 0; with && i < n; i++) {
		json_t *a;

		if (ev[i].type != ETCD_EVENT_PUT ||
		    key_kind(r, ev[i].kv.key, &rest) != KEY_AUDIT)
			continue;
		a = json_loadb(ev[i].kv.value, ev[i].kv.value_len, 0, NULL);
		if (!json_is_array(a)) {
			log_warn("etcd: key %s (revision %" PRId64 "): audit rows "
			         "are not a JSON list; this node records its own",
			         ev[i].kv.key, ev[i].kv.mod_revision);
			json_decref(a);
			continue;
		}
		snprintf(rev, sizeof(rev), "%" PRId64, ev[i].kv.mod_revision);
		json_object_set_new(with, rev, json_true());
		if (!rows) {
			rows = a;
		} else {
			json_array_extend(rows, a);
			json_decref(a);
		}
	}
	for (size_t i = 0; *all && i < n; i++) {
		if (key_kind(r, ev[i].kv.key, &rest) != KEY_SERVICE)
			continue;
		snprintf(rev, sizeof(rev), "%" PRId64, ev[i].kv.mod_revision);
		*all = json_object_get(with, rev) != NULL;
	}
	json_decref(with);
	return rows;
}

/* Applies one watch response as one write: for each service its last
 * event only (a watch catching up brings many revisions at once; the
 * store only needs where they end), with the writers' audit rows when
 * every change brought some, else the node's own. */
static int events_apply(struct replica *r, const struct etcd_event *ev,
                        size_t n, struct cfg_sync_pos *pos, char *err,
                        size_t errlen)
{
	struct cfg_sync *s = r->sync;
	json_t *seen = NULL, *rows = NULL;
	bool any = false, all_rows;
	size_t changed = 0;
	int rc = 0;

	/* Only node registrations (or nothing): no write; the position
	 * moves in memory and is recorded with the next write. */
	for (size_t k = 0; k < n && !any; k++) {
		const char *rest;

		any = key_kind(r, ev[k].kv.key, &rest) != KEY_NODE;
	}
	if (!any)
		return 0;
	if (!(seen = json_object()))
		return -ENOMEM;
	rows = audit_rows(r, ev, n, &all_rows);
	if ((rc = cfg_sync_begin(s, err, errlen)) < 0)
		goto out;
	for (size_t k = n; rc == 0 && k > 0; k--) {
		const struct etcd_kv *kv = &ev[k - 1].kv;
		const char *rest;

		switch (key_kind(r, kv->key, &rest)) {
		case KEY_SERVICE:
			if (kv->mod_revision > pos->config_revision)
				pos->config_revision = kv->mod_revision;
			if (json_object_get(seen, rest))
				break;          /* a later event replaces it */
			if (ev[k - 1].type == ETCD_EVENT_DELETE)
				rc = cfg_sync_remove(s, rest, err, errlen);
			else
				rc = put_service(r, s, kv->key, rest, kv->value,
				                 kv->value_len, kv->mod_revision,
				                 false, err, errlen);
			/* A bad value leaves the service as the one before it
			 * left it, as for a node that saw them one by one. */
			if (rc == 1)
				rc = 0;
			else if (rc == 0)
				json_object_set_new(seen, rest, json_true());
			break;
		case KEY_AUDIT:
			if (ev[k - 1].type == ETCD_EVENT_PUT &&
			    kv->mod_revision > pos->config_revision)
				pos->config_revision = kv->mod_revision;
			break;
		case KEY_OTHER:
			unknown_key(r, kv->key, kv->mod_revision);
			break;
		case KEY_NODE:
			break;
		}
	}
	if (rc == 0)
		rc = cfg_sync_flush(s, false, all_rows ? rows : NULL, &changed,
		                    err, errlen);
	if (rc == 0)
		rc = cfg_sync_commit(s, pos, err, errlen);
	else
		cfg_sync_abort(s);
	if (rc == 0)
		r->st.changes += changed;
out:
	json_decref(seen);
	json_decref(rows);
	return rc;
}

int replica_events(struct replica *r, const struct etcd_event *ev, size_t n,
                   char *err, size_t errlen)
{
	struct cfg_sync_pos pos = { .revision = r->st.revision,
	                            .config_revision = r->st.config_revision };
	struct cfg_write w, *prev;
	int rc;

	if (n == 0)
		return 0;
	/* Events at or below what is applied come again after a reconnect
	 * only if the watch started too early; they are not applied twice. */
	while (n > 0 && ev->kv.mod_revision <= r->st.revision) {
		ev++;
		n--;
	}
	if (n == 0)
		return 0;
	pos.revision = ev[n - 1].kv.mod_revision;
	snprintf(pos.prefix, sizeof(pos.prefix), "%s", r->prefix);
	use_context(r, &w);
	prev = cfg_write_swap(&w);
	rc = events_apply(r, ev, n, &pos, err, errlen);
	cfg_write_done(&w);
	cfg_write_use(prev);
	if (rc == 0) {
		r->st.revision = pos.revision;
		r->st.config_revision = pos.config_revision;
	}
	return rc;
}

int replica_scratch(const struct etcd_range *rg, const char *prefix,
                    const char *path, struct store **out, char *err,
                    size_t errlen)
{
	struct replica *r = NULL;
	struct store *db = NULL;
	int rc;

	*out = NULL;
	if ((rc = store_open(path, STORE_CREATE, &db, err, errlen)) < 0)
		return rc;
	if (!(r = replica_new(db, prefix, err, errlen))) {
		rc = -ENOMEM;
		goto out;
	}
	r->quiet = true;
	if ((rc = replica_full(r, rg, err, errlen)) < 0)
		goto out;
	*out = db;
	db = NULL;
out:
	replica_free(r);
	store_close(db);
	return rc;
}
