/* dnsd/control.c - dnsd's control thread: loading, reloads (SIGHUP), the
 * store poll, health swaps and the HTTP API's glue. See dnsd/control.h.
 * Everything here is load time; the query path lives in net.c/answer.c. */
#include "dnsd/control.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/crypto.h>
#include <systemd/sd-daemon.h>
#include <urcu-qsbr.h>

#include "common/clock.h"
#include "common/hostport.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "cluster/etcd.h"
#include "cluster/write.h"
#include "dnsd/api.h"
#include "dnsd/config.h"
#include "dnsd/dnssec.h"
#include "dnsd/etcdsync.h"
#include "dnsd/hsrv.h"
#include "dnsd/shiftd.h"
#include "dnsd/spill.h"
#include "dnsd/status.h"
#include "dnsd/notify.h"
#include "dnsd/webui.h"
#include "dnsd/net.h"
#include "dnsd/xdp.h"
#include "dnsd/snap.h"
#include "common/spell.h"
#include "db/audit.h"
#include "db/diff.h"
#include "dnsd/api_config.h"
#include "db/edit.h"
#include "db/export.h"
#include "db/served.h"
#include "db/shift.h"
#include "db/store.h"
#include "db/sync.h"
#include "db/svc_load.h"
#include "dnsd/zone.h"
#include "geo/geo.h"
#include "health/cred.h"
#include "health/token.h"

struct file_id {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

struct control {
	struct config conf;
	struct answer_conf aconf;    /* parsed once, copied into snapshots */
	/* Loaded by control_new, handed to the first snapshot. */
	struct zone **zones;
	struct geo_db *geo;
	struct dnssec_set *sec;      /* with --dnssec-keys */
	struct event *sig[3];
	bool rcu;                    /* registered as an RCU thread */
	struct event_base *base;
	struct net *net;
	struct snap *snap;           /* the one in force (control thread) */
	uint64_t gen;
	struct event *poll_ev;
	int watch_fd;                /* inotify on the store's folder, or -1 */
	struct event *watch_ev;      /* its events */
	struct event *soon_ev;       /* the store read they ask for */
	char watch_name[2][256];     /* the store's file names: db, db-wal */
	struct file_id geo_id;       /* to notice a replaced GeoIP file */
	struct store *db;            /* the store: polled (data_version),
					and written by health and the API */
	long long db_version;
	bool db_full;                /* the next store read loads everything */
	struct file_id db_id;        /* the file that handle has open */
	struct file_id db_bad_id;    /* a replacement that failed to open */
	size_t svc_skipped;          /* services not served (outside zones) */
	char db_err[512];            /* the store problem last logged */
	struct hsrv *hs;             /* health (with --db) */
	struct api *api;             /* HTTP API (with --api) */
	struct webui *web;           /* the status page (with --api) */
	struct notify *notify;       /* webhooks (with notify-url) */
	struct etcdsync *etcd;       /* the replica thread (with --etcd) */
	int applied_fd;              /* eventfd it signals after a commit */
	struct event *applied_ev;    /* ... read here: the store is polled */
	struct status_src st;        /* times and results for status/metrics */
	struct event *summary_ev;
	struct event *shift_ev;      /* runs the staged shifts */
	struct shiftd_stats shift_st;
	struct spill *spill;         /* spill-over load (with --db) */
	double spill_at;             /* its last tick */
	uint64_t *spill_counts;      /* STATS_EP_COUNTERS, for its ticks */
	struct stats last;           /* counters at the last summary */
	struct etcd *wr_etcd;        /* with --etcd: API writes go there */
	const char *wr_prefix;
	double shift_retry_at;       /* with --etcd: no shift write before */
	char shift_err[512];         /* ... since the last one failed so */
	bool zone_ok[CONFIG_LIST_MAX];       /* per zone file: last load */
	double zone_loaded[CONFIG_LIST_MAX];
};

static void answer_conf_init(const struct config *c, struct answer_conf *a)
{
	memset(a, 0, sizeof(*a));
	a->max_udp = (uint16_t)c->max_udp_size;
	a->ecs_max_v4 = (uint8_t)c->ecs_max_v4;
	a->ecs_max_v6 = (uint8_t)c->ecs_max_v6;
	if (c->nsid) {
		size_t n = strlen(c->nsid);

		a->nsid_len = (uint8_t)(n > sizeof(a->nsid) ? sizeof(a->nsid) : n);
		memcpy(a->nsid, c->nsid, a->nsid_len);
	}
}

/* "LAT,LON" or a country code. Returns 0 or -EINVAL (logged). */
static int parse_default_location(const char *s, struct geo_loc *loc)
{
	if (geo_parse_location(s, loc) == 0)
		return 0;
	log_err("default-location: '%s' is neither LAT,LON nor a known country code", s);
	return -EINVAL;
}

static void file_id_of(const char *path, struct file_id *id)
{
	struct stat st;

	memset(id, 0, sizeof(*id));
	if (stat(path, &st) == 0) {
		id->dev = st.st_dev;
		id->ino = st.st_ino;
		id->size = st.st_size;
		id->mtime = st.st_mtim;
	}
}

static bool file_id_eq(const struct file_id *a, const struct file_id *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime.tv_sec == b->mtime.tv_sec &&
	       a->mtime.tv_nsec == b->mtime.tv_nsec;
}

static int load_geo(struct control *sv, struct geo_db **out)
{
	char err[512];
	struct geo_stats st;
	int rc;

	file_id_of(sv->conf.geoip, &sv->geo_id);
	rc = geo_load(sv->conf.geoip, out, err, sizeof(err));
	if (rc < 0) {
		log_err("geoip: %s", err);
		return rc;
	}
	geo_stats(*out, &st);
	log_info("geoip %s: %s, %zu networks, %zu locations", sv->conf.geoip,
		 geo_db_type(*out), st.networks, st.locations);
	return 0;
}

/* Loads every zone file. On a file that fails, keeps old[i] when there is
 * one (reload) and counts the failure. Returns the number of failures. */
static unsigned load_zones(struct control *sv, struct zone **old,
			   struct zone **out)
{
	const struct config *c = &sv->conf;
	unsigned failed = 0;

	for (size_t i = 0; i < c->n_zone; i++) {
		char err[512];
		int rc = zone_load(c->zone[i], NULL, &out[i], err, sizeof(err));

		sv->zone_ok[i] = rc == 0;
		sv->zone_loaded[i] = clock_unix();
		if (rc < 0) {
			failed++;
			if (old && old[i]) {
				log_err("%s (keeping the zone loaded before)", err);
				out[i] = old[i];
			} else {
				log_err("%s", err);
				out[i] = NULL;
			}
			continue;
		}
		log_info("zone %s: loaded %zu records from %s (serial %u)",
			 out[i]->origin, out[i]->n_records, c->zone[i], out[i]->serial);
	}
	return failed;
}

/* Reads the key pairs of the zones zones[0..n) (NULL entries skipped)
 * when --dnssec-keys is set; *out stays NULL without it. */
static int load_keys(struct control *sv, struct zone *const *zones, size_t n,
		     struct dnssec_set **out)
{
	char err[512];
	int rc;

	*out = NULL;
	if (!sv->conf.dnssec_keys)
		return 0;
	rc = dnssec_load(sv->conf.dnssec_keys, zones, n, time(NULL), out, err,
			 sizeof(err));
	if (rc < 0)
		log_err("dnssec-keys: %s", err);
	return rc;
}

/* Checks that no two zone files claim the same apex. */
static int check_duplicate_apex(const struct config *c, struct zone **z)
{
	int rc = 0;

	for (size_t i = 0; i < c->n_zone; i++)
		for (size_t k = 0; k < i; k++)
			if (z[i] && z[k] && strcmp(z[i]->origin, z[k]->origin) == 0) {
				log_err("%s: zone %s is also loaded from %s", c->zone[i],
					z[i]->origin, c->zone[k]);
				rc = -EINVAL;
			}
	return rc;
}

/* A new snapshot sharing every part of base, with the next generation. */
static struct snap *clone_current(struct control *sv)
{
	return snap_clone(sv->snap, sv->conf.n_zone, &sv->aconf, ++sv->gen);
}

static void db_problem(struct control *sv, const char *msg);
static void build_done(struct control *sv, int kind, double t0);

/* Publishes s (snap_install). Returns 0 or -ENOMEM (s discarded, the old
 * snapshot stays). */
static int install(struct control *sv, struct snap *s)
{
	if (snap_install(s, sv->snap) < 0)
		return -ENOMEM;
	if (s->svcx)
		sv->svc_skipped = s->svcx->skipped;
	sv->snap = s;
	return 0;
}

/* Reads the services from the store into a new set. Returns 0,
 * or a negative errno (logged) when the store cannot be read. */
static int load_services(struct control *sv, struct svc_set **out)
{
	char err[512];
	int rc = svc_load(sv->db, out, err, sizeof(err));
	size_t eps = 0;

	if (rc < 0) {
		db_problem(sv, err);
		sv->st.db_ok = false;
		return rc;
	}
	/* The counter as of the snapshot read: a commit after it is seen at
	 * the next poll, one before it is already loaded. */
	sv->db_version = (*out)->data_version;
	sv->db_full = false;
	sv->st.db_ok = true;
	sv->st.last_db_load = clock_unix();
	sv->st.db_problems = (*out)->n_problems;
	for (size_t i = 0; i < (*out)->n_pos; i++)
		if (svc_at(*out, i))
			eps += svc_at(*out, i)->n_eps;
	for (size_t i = 0; i < (*out)->n_problems; i++)
		log_warn("%s", (*out)->problems[i]);
	{
		size_t blocks, idx = svc_set_bytes(*out, &blocks, NULL);

		log_info("db %s: %zu services, %zu endpoints, %zu problems; "
			 "%.0f bytes per service in the snapshot (%zu MB in "
			 "service blocks, %zu MB name index and positions)",
			 sv->conf.db, (*out)->n, eps, (*out)->n_problems,
			 (*out)->n ? (double)(blocks + idx) / (double)(*out)->n : 0,
			 blocks >> 20, idx >> 20);
	}
	webui_event(sv->web, "config", sv->conf.db,
		    "loaded %zu services, %zu endpoints, %zu problems",
		    (*out)->n, eps, (*out)->n_problems);
	return 0;
}

/* Records the apex names of the zones s serves in the store, under this
 * node's name (node-name, else the host name), for gslbctl to flag a
 * service outside them. A failure is logged; serving goes on. */
static void record_zones(struct control *sv, const struct snap *s)
{
	const char **apex;
	char host[256] = "", err[512];
	const char *node = sv->conf.node_name;
	size_t n = 0;

	if (!sv->db || sv->conf.check)
		return;
	if (!node) {
		if (gethostname(host, sizeof(host) - 1) < 0 || !host[0])
			snprintf(host, sizeof(host), "localhost");
		node = host;
	}
	apex = xcalloc(s->n_zones + 1, sizeof(*apex));
	for (size_t i = 0; i < s->n_zones; i++)
		if (s->zones[i])
			apex[n++] = s->zones[i]->origin;
	if (served_record(sv->db, node, apex, n, err, sizeof(err)) < 0)
		log_warn("db %s: %s", sv->conf.db, err);
	free(apex);
}

/* SIGHUP: reparse every zone file and the GeoIP database off the query
 * path; whatever fails keeps its old version serving. */
static void reload(struct control *sv)
{
	struct zone **old = xcalloc(sv->conf.n_zone + 1, sizeof(*old));
	struct zone **nz = xcalloc(sv->conf.n_zone + 1, sizeof(*nz));
	struct snap *s = clone_current(sv);
	const struct svc_set *old_svc = sv->snap ? sv->snap->svc : NULL;
	double t0 = clock_mono();
	unsigned failed;

	if (!s) {
		log_err("reload: out of memory, keeping everything loaded before");
		goto out;
	}
	/* The old zones, by file position (a failed file may have none). */
	for (size_t i = 0; i < sv->conf.n_zone; i++)
		for (size_t k = 0; k < sv->snap->n_zones; k++)
			if (strcmp(sv->snap->zones[k]->file, sv->conf.zone[i]) == 0)
				old[i] = sv->snap->zones[k];
	failed = load_zones(sv, old, nz);
	if (check_duplicate_apex(&sv->conf, nz) < 0 ||
	    snap_set_zones(s, nz, sv->conf.n_zone) < 0 ||
	    load_keys(sv, s->zones, s->n_zones, &s->sec) < 0) {
		for (size_t i = 0; i < sv->conf.n_zone; i++)
			if (nz[i] != old[i])
				zone_free(nz[i]);
		if (s->zt != sv->snap->zt)
			zonetab_free((struct zonetab *)s->zt);
		s->n_zones = 0;
		s->zt = sv->snap->zt;
		s->sec = sv->snap->sec;
		snap_discard(s, sv->snap);
		log_err("reload: zones or DNSSEC keys failed, keeping everything loaded before");
		goto out;
	}
	if (sv->db) {
		struct svc_set *set;

		/* A store that cannot be read keeps the services loaded before;
		 * install() ties them to the new zones either way. */
		if (load_services(sv, &set) == 0)
			s->svc = set;
		else
			failed++;
	}
	if (sv->conf.geoip) {
		struct geo_db *g;

		if (load_geo(sv, &g) == 0) {
			s->geo = g;
		} else {
			failed++;
			log_err("geoip: keeping the database loaded before");
		}
	}
	if (install(sv, s) == 0) {
		if (sv->db && s->svc != old_svc)
			build_done(sv, STATUS_BUILD_FULL, t0);
		record_zones(sv, s);
	}
	if (sv->hs)
		hsrv_reload(sv->hs, sv->db);
	sv->st.last_reload = clock_unix();
	sv->st.last_reload_ok = failed == 0;
	log_info("reload: generation %llu, %zu zones, %u failed",
		 (unsigned long long)s->gen, s->n_zones, failed);
	webui_event(sv->web, "reload", failed ? "failed" : "ok",
		    "generation %llu, %zu zones, %u failed",
		    (unsigned long long)s->gen, s->n_zones, failed);
out:
	free(old);
	free(nz);
}

/* Logs a store problem once, not at every poll while it lasts. */
static void db_problem(struct control *sv, const char *msg)
{
	if (strcmp(msg, sv->db_err) != 0) {
		log_err("%s (keeping the services loaded before)", msg);
		webui_event(sv->web, "config", sv->conf.db,
			    "%s (keeping the services loaded before)", msg);
		snprintf(sv->db_err, sizeof(sv->db_err), "%s", msg);
	}
}

/* A snapshot build from the store: counted by kind for the metrics. */
static void build_done(struct control *sv, int kind, double t0)
{
	double dt = clock_mono() - t0;

	sv->st.builds[kind]++;
	sv->st.build_seconds[kind] += dt;
	sv->st.build_last[kind] = dt;
}

/* The checked endpoints of v, as the check list shows them: the same in
 * a and b? */
static bool same_checks(const struct svc_service *a,
			const struct svc_service *b)
{
	size_t i = 0, j = 0;

	for (;;) {
		while (a && i < a->n_eps && !a->eps[i].has_check)
			i++;
		while (b && j < b->n_eps && !b->eps[j].has_check)
			j++;
		if (!a || i == a->n_eps || !b || j == b->n_eps)
			return (!a || i == a->n_eps) && (!b || j == b->n_eps);
		if (a->eps[i].id != b->eps[j].id ||
		    a->eps[i].check_key != b->eps[j].check_key ||
		    strcmp(a->eps[i].t.text, b->eps[j].t.text) != 0)
			return false;
		i++;
		j++;
	}
}

/* Whether the checks of one of the services named names[0..n) differ
 * between a and b: the health service's check list must be read again. */
static bool checks_touched(const struct svc_set *a, const struct svc_set *b,
			   char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!same_checks(svc_find_text(a, names[i]),
				 svc_find_text(b, names[i])))
			return true;
	return false;
}

/* The services changed since the set in force, from the store's change
 * log (svc_load_since), swapped in sharing everything else. 1 done (or
 * nothing configured changed), 0 when the change log cannot answer (load
 * everything), < 0 when the store cannot be read (logged). */
static int poll_incremental(struct control *sv)
{
	const struct svc_set *cur = sv->snap ? sv->snap->svc : NULL;
	struct svc_set *set = NULL;
	struct snap *s;
	char **names = NULL, err[512];
	size_t n = 0;
	double t0 = clock_mono();
	long long dv = -1;
	bool checks;
	int rc;

	if (!cur || sv->db_full)
		return 0;
	rc = svc_load_since(sv->db, cur, &set, &names, &n, &dv, err,
			    sizeof(err));
	if (rc == -ESTALE) {
		log_info("db %s: %s; loading everything", sv->conf.db, err);
		return 0;
	}
	if (rc < 0) {
		db_problem(sv, err);
		sv->st.db_ok = false;
		return rc;
	}
	/* The file changed but not its configuration version: a write that
	 * bypassed the change log (the sqlite3 shell); load everything. */
	if (!set)
		return 0;
	sv->db_version = dv;
	sv->db_err[0] = 0;
	sv->st.db_ok = true;
	sv->st.last_db_load = clock_unix();
	checks = checks_touched(cur, set, names, n);
	if (!(s = clone_current(sv))) {
		svc_set_free(set);
		svc_names_free(names, n);
		return -ENOMEM;
	}
	s->svc = set;
	s->svc_delta = true;
	s->svc_changed = names;
	s->n_svc_changed = n;
	rc = install(sv, s);
	svc_names_free(names, n);
	if (rc < 0)
		return rc;
	build_done(sv, STATUS_BUILD_INCREMENTAL, t0);
	log_info("db %s: version %lld, %zu service%s changed, %zu services",
		 sv->conf.db, set->version, n, n == 1 ? "" : "s", set->n);
	webui_event(sv->web, "config", sv->conf.db,
		    "version %lld: %zu service%s changed, %zu services",
		    set->version, n, n == 1 ? "" : "s", set->n);
	if (sv->hs && checks)
		hsrv_reload(sv->hs, sv->db);
	else if (sv->hs)
		hsrv_reload_damping(sv->hs);
	return 1;
}

/* Picks up changes to the store: a file replaced under its name (mv) is
 * reopened; a new PRAGMA data_version (a commit by gslbctl, the API or the
 * sqlite3 shell) loads what changed: the changed services only when the
 * store's change log says which, else everything. Whatever fails keeps
 * the services in force. */
static void poll_db(struct control *sv)
{
	struct file_id id;
	struct svc_set *set;
	struct snap *s;
	long long v;
	char err[512];
	double t0;

	file_id_of(sv->conf.db, &id);
	if (id.ino && (id.ino != sv->db_id.ino || id.dev != sv->db_id.dev) &&
	    (id.ino != sv->db_bad_id.ino || id.dev != sv->db_bad_id.dev)) {
		struct store *h;

		if (store_open(sv->conf.db, 0, &h, err, sizeof(err)) < 0) {
			db_problem(sv, err);
			sv->db_bad_id = id;
		} else {
			log_info("db %s: file replaced, reopened", sv->conf.db);
			store_close(sv->db);
			sv->db = h;
			sv->db_id = id;
			sv->db_version = -1;
			sv->db_full = true;     /* another store's versions */
			if (sv->hs)     /* never leave it the closed handle */
				hsrv_reload(sv->hs, sv->db);
		}
	}
	v = store_data_version(sv->db);
	if (v < 0) {
		snprintf(err, sizeof(err), "db %s: cannot read: %s", sv->conf.db,
			 store_errmsg(sv->db));
		db_problem(sv, err);
		return;
	}
	if (v == sv->db_version)
		return;
	sv->db_version = v;     /* a failed load is retried at the next change */
	if (poll_incremental(sv) != 0)
		return;
	t0 = clock_mono();
	if (load_services(sv, &set) < 0)
		return;
	sv->db_err[0] = 0;
	if (!(s = clone_current(sv))) {
		svc_set_free(set);
		return;
	}
	s->svc = set;
	if (install(sv, s) < 0)
		return;
	build_done(sv, STATUS_BUILD_FULL, t0);
	if (sv->hs)
		hsrv_reload(sv->hs, sv->db);
}

/* Every db-poll-ms: store changes, and a replaced GeoIP file. */
static void on_poll(evutil_socket_t fd, short what, void *arg)
{
	struct control *sv = arg;
	struct file_id id;

	(void)fd;
	(void)what;
	if (sv->db)
		poll_db(sv);
	if (sv->conf.geoip) {
		file_id_of(sv->conf.geoip, &id);
		if (id.ino && !file_id_eq(&id, &sv->geo_id)) {
			struct geo_db *g;
			struct snap *s;

			log_info("geoip %s: file changed, reloading", sv->conf.geoip);
			if (load_geo(sv, &g) < 0) {
				log_err("geoip: keeping the database loaded before");
			} else if (!(s = clone_current(sv))) {
				geo_free(g);
			} else {
				s->geo = g;
				install(sv, s);
			}
		}
	}
}

/* The store's files were written: read it (poll_db) 2 ms later, so that
 * a burst of writes (a commit's pages, then its WAL index) is one read.
 * The db-poll-ms timer stays the fallback (a write seen before its
 * commit is complete, a folder without inotify). */
static void on_store_soon(evutil_socket_t fd, short what, void *arg)
{
	struct control *sv = arg;

	(void)fd;
	(void)what;
	if (sv->db)
		poll_db(sv);
}

static void on_store_write(evutil_socket_t fd, short what, void *arg)
{
	struct control *sv = arg;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool ours = false;
	ssize_t n;

	(void)what;
	while ((n = read(fd, buf, sizeof buf)) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *e = (const void *)p;

			if (e->len && (strcmp(e->name, sv->watch_name[0]) == 0 ||
				       strcmp(e->name, sv->watch_name[1]) == 0))
				ours = true;
			p += sizeof *e + e->len;
		}
	}
	if (ours && !evtimer_pending(sv->soon_ev, NULL)) {
		struct timeval tv = { 0, 2000 };

		evtimer_add(sv->soon_ev, &tv);
	}
}

/* Watches the store's folder for writes to the store (a commit by
 * gslbctl, the API of another dnsd, the sqlite3 shell) and for a file
 * moved over it: served in milliseconds rather than at the next
 * db-poll-ms tick. Without inotify (or out of watches) the timer alone
 * does it, as before. */
static void start_store_watch(struct control *sv)
{
	char dir[4096];
	const char *slash, *base;

	sv->watch_fd = -1;
	if (!sv->db || !sv->conf.db || strcmp(sv->conf.db, ":memory:") == 0)
		return;
	slash = strrchr(sv->conf.db, '/');
	base = slash ? slash + 1 : sv->conf.db;
	if (strlen(base) + 5 > sizeof sv->watch_name[0])
		return;
	snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - sv->conf.db +
		 (slash == sv->conf.db)) : 1, slash ? sv->conf.db : ".");
	snprintf(sv->watch_name[0], sizeof sv->watch_name[0], "%s", base);
	snprintf(sv->watch_name[1], sizeof sv->watch_name[1], "%s-wal", base);
	sv->watch_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (sv->watch_fd < 0 ||
	    inotify_add_watch(sv->watch_fd, dir, IN_MODIFY | IN_CLOSE_WRITE |
			      IN_MOVED_TO | IN_CREATE) < 0) {
		log_info("db %s: cannot watch %s for writes (%s): polling "
			 "every %u ms only", sv->conf.db, dir, strerror(errno),
			 sv->conf.db_poll_ms);
		goto fail;
	}
	sv->watch_ev = event_new(sv->base, sv->watch_fd, EV_READ | EV_PERSIST,
				 on_store_write, sv);
	sv->soon_ev = evtimer_new(sv->base, on_store_soon, sv);
	if (!sv->watch_ev || !sv->soon_ev || event_add(sv->watch_ev, NULL) < 0)
		goto fail;
	return;
fail:
	if (sv->watch_ev)
		event_free(sv->watch_ev);
	if (sv->soon_ev)
		event_free(sv->soon_ev);
	sv->watch_ev = sv->soon_ev = NULL;
	if (sv->watch_fd >= 0)
		close(sv->watch_fd);
	sv->watch_fd = -1;
}

static int etcd_shift_write(void *ctx, const struct shift_info *local,
			    const char *why, double now,
			    struct shift_info *after, char *err, size_t errlen);

/* Runs the staged shifts against the health in force; a shift that
 * moved or rolled back is served at once (our own commit does not move
 * our connection's data_version). With --etcd the progress is written
 * there (one compare-and-swap on the service's key). */
static void run_shifts(struct control *sv)
{
	struct shiftd_writer wr = { .write = etcd_shift_write, .ctx = sv };

	if (!sv->db || sv->conf.check)
		return;
	if (shiftd_tick(sv->db, sv->snap ? sv->snap->hv : NULL, clock_unix(),
			sv->wr_etcd ? &wr : NULL, &sv->shift_st) > 0) {
		sv->db_version = -1;
		poll_db(sv);
	}
}

/* About once a second: the answers per endpoint into the spill-over
 * load table (only when a service spills). */
static void run_spill(struct control *sv)
{
	double now = clock_unix();
	size_t need;

	if (!sv->spill || !sv->net || !sv->snap || now - sv->spill_at < 1)
		return;
	sv->spill_at = now;
	need = spill_need(sv->spill, sv->snap->svc);
	if (need > 0)
		net_ep_answers(sv->net, sv->spill_counts, need);
	spill_tick(sv->spill, sv->snap->svc, sv->spill_counts, need, now);
}

static void on_shift_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	run_shifts(arg);
	run_spill(arg);
}

/* A new health view from the health service: swap it in. A shift whose
 * target just went down rolls back now, not at the next tick. */
static void on_health(void *ctx, struct hstate_view *v)
{
	struct control *sv = ctx;
	struct snap *s = clone_current(sv);

	if (!s) {
		hstate_view_free(v);
		return;
	}
	s->hv = v;
	install(sv, s);
	run_shifts(sv);
}

/* Fills sv->st for a status or metrics request; ep (NULL or
 * STATS_EP_COUNTERS entries) receives the per-endpoint answer counts. */
static void status_fill(struct control *sv, struct stats *sum, uint64_t *ep)
{
	net_stats(sv->net, sum);
	sv->st.snap = sv->snap;
	sv->st.stats = sum;
	sv->st.hs = sv->hs ? hsrv_state(sv->hs) : NULL;
	sv->st.threads = sv->conf.threads;
	sv->st.svc_skipped = sv->svc_skipped;
	sv->st.zone_files = sv->conf.zone;
	sv->st.zone_ok = sv->zone_ok;
	sv->st.zone_loaded = sv->zone_loaded;
	sv->st.n_zone_files = sv->conf.n_zone;
	sv->st.ep_answers = ep;
	sv->st.ep_cap = ep ? STATS_EP_COUNTERS : 0;
	sv->st.config_revision = sv->etcd ? etcdsync_config_revision(sv->etcd) : 0;
	if (ep)
		net_ep_answers(sv->net, ep, STATS_EP_COUNTERS);
}

static json_t *api_checks(void *ctx)
{
	struct control *sv = ctx;

	return sv->hs ? hsrv_checks(sv->hs)
		      : json_pack("{s:i, s:[]}", "generation", 0, "checks");
}

static int api_report(void *ctx, const struct api_report *r, char *err,
		      size_t errlen)
{
	struct control *sv = ctx;
	struct hstate_agent a = { .name = r->agent, .region = r->region,
				  .has_coords = r->has_coords,
				  .lat = r->lat, .lon = r->lon };

	if (!sv->hs) {
		snprintf(err, errlen, "this server has no store (--db): no endpoint is checked");
		return -ENOENT;
	}
	return hsrv_report(sv->hs, &a, r->results, r->n, err, errlen);
}

static int api_status(void *ctx, struct evbuffer *out)
{
	struct control *sv = ctx;
	struct stats sum;
	json_t *doc, *shifts;
	char err[512];

	status_fill(sv, &sum, NULL);
	doc = status_json(&sv->st);
	if (doc && sv->db) {
		shifts = shift_json_all(sv->db, clock_unix(), err, sizeof(err));
		if (shifts)
			json_object_set_new(doc, "shifts", shifts);
	}
	if (doc && sv->hs)
		json_object_set_new(doc, "damping", hsrv_damping_json(sv->hs));
	if (doc && sv->etcd)
		json_object_set_new(doc, "etcd", etcdsync_status_json(sv->etcd));
	if (doc && sv->spill)
		json_object_set_new(doc, "spill", spill_json(sv->spill,
				    sv->snap->svc, sv->snap->hv));
	if (doc && sv->api)
		json_object_set_new(doc, "agent_auth",
				    api_agent_auth_json(sv->api));
	return doc ? status_write(&sv->st, doc, out) : -ENOMEM;
}

static int api_metrics(void *ctx, struct evbuffer *out)
{
	struct control *sv = ctx;
	struct stats sum;
	uint64_t *ep = calloc(STATS_EP_COUNTERS, sizeof(*ep));
	int rc;

	status_fill(sv, &sum, ep);
	rc = status_metrics(&sv->st, out);
	notify_metrics(sv->notify, out);
	if (rc == 0)
		rc = shiftd_metrics(sv->db, &sv->shift_st, out);
	if (rc == 0 && sv->hs)
		rc = hsrv_damping_metrics(sv->hs, out);
	if (rc == 0 && sv->etcd)
		rc = etcdsync_metrics(sv->etcd, out);
	free(ep);
	return rc;
}

static json_t *api_config_get(void *ctx, char *err, size_t errlen)
{
	struct control *sv = ctx;

	if (!sv->db) {
		snprintf(err, errlen, "this server has no store (--db)");
		return NULL;
	}
	return cfg_export(sv->db, NULL, err, errlen);
}

static const char *jstr(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* POST /v1/endpoint: the fields an operator changes at 3 a.m. */
static int endpoint_write(struct store *db, const json_t *b, char *err,
			  size_t errlen)
{
	struct cfg_endpoint e = { .target = jstr(b, "target"), .drained = -1 };
	const json_t *v;

	if ((v = json_object_get(b, "drained"))) {
		if (!json_is_boolean(v))
			goto bad_type;
		e.drained = json_is_true(v);
	}
	if ((v = json_object_get(b, "admin"))) {
		if (!(e.admin = json_string_value(v)))
			goto bad_type;
	}
	if ((v = json_object_get(b, "weight"))) {
		if (!json_is_integer(v))
			goto bad_type;
		e.has_weight = true;
		e.weight = json_integer_value(v);
	}
	if ((v = json_object_get(b, "priority"))) {
		if (!json_is_integer(v))
			goto bad_type;
		e.has_priority = true;
		e.priority = json_integer_value(v);
	}
	if ((v = json_object_get(b, "capacity"))) {     /* null removes it */
		if (!json_is_number(v) && !json_is_null(v))
			goto bad_type;
		e.has_capacity = true;
		e.capacity = json_is_null(v) ? 0 : json_number_value(v);
	}
	return cfg_endpoint_set(db, jstr(b, "service"), &e, err, errlen);
bad_type:
	snprintf(err, errlen, "endpoint: drained must be a boolean, admin a string, "
		 "weight and priority integers, capacity a number or null");
	return -EINVAL;
}

/* POST /v1/shift: start ({"service", "target", "steps", "every",
 * "max_rtt_ms"}) or control ({"service", "action"}) a staged shift. */
static int api_shift(struct store *db, const json_t *b, char *err,
		     size_t errlen)
{
	const char *svc = jstr(b, "service"), *act = jstr(b, "action");
	const json_t *steps = json_object_get(b, "steps");
	const json_t *every = json_object_get(b, "every");
	const json_t *rtt = json_object_get(b, "max_rtt_ms");
	char buf[256] = "";
	size_t len = 0, i;
	json_t *v;
	double now = clock_unix();

	if (!svc) {
		snprintf(err, errlen, "shift: \"service\" string is required");
		return -EINVAL;
	}
	if (act) {
		if (strcmp(act, "abort") == 0)
			return shift_abort(db, svc, now, err, errlen);
		if (strcmp(act, "pause") == 0)
			return shift_pause(db, svc, now, err, errlen);
		if (strcmp(act, "resume") == 0)
			return shift_resume(db, svc, now, err, errlen);
		snprintf(err, errlen, "shift: \"action\" '%s': give abort, "
			 "pause or resume", act);
		return -EINVAL;
	}
	if (!jstr(b, "target") || !every || !json_is_number(every) ||
	    (rtt && !json_is_number(rtt))) {
		snprintf(err, errlen, "shift: \"target\" string, \"steps\" and "
			 "\"every\" (seconds) are required; \"max_rtt_ms\" is a "
			 "number");
		return -EINVAL;
	}
	if (json_is_string(steps)) {
		snprintf(buf, sizeof(buf), "%s", json_string_value(steps));
	} else if (json_is_array(steps)) {
		json_array_foreach(steps, i, v) {
			if (!json_is_integer(v) || len >= sizeof(buf) - 16) {
				snprintf(err, errlen, "shift: \"steps\"[%zu] is "
					 "not a percent", i);
				return -EINVAL;
			}
			len += (size_t)snprintf(buf + len, sizeof(buf) - len,
						"%s%lld", i ? "," : "",
						(long long)json_integer_value(v));
		}
	} else {
		snprintf(err, errlen, "shift: \"steps\" must be \"1,5,25,50,100\" "
			 "or an array of percents");
		return -EINVAL;
	}
	return shift_start(db, svc, jstr(b, "target"), buf,
			   json_number_value(every),
			   rtt ? json_number_value(rtt) : 0, now, err, errlen);
}

/* Only these keys in a body of what ("flip", "shift", "endpoint"): an unknown one
 * is named with its nearest valid spelling. */
static int known_keys(const json_t *b, const char *what, char *err,
		      size_t errlen)
{
	static const char *const flip_keys[] = { "service", "target" };
	static const char *const ep_keys[] = { "service", "target", "drained",
		"admin", "weight", "priority", "capacity" };
	static const char *const shift_keys[] = { "service", "target",
		"steps", "every", "max_rtt_ms", "action" };
	bool flip = strcmp(what, "flip") == 0;
	bool shift = strcmp(what, "shift") == 0;
	const char *const *keys = flip ? flip_keys : shift ? shift_keys
				: ep_keys;
	size_t n = flip ? 2 : shift ? 6 : 7;
	const char *k, *near;
	json_t *v;

	json_object_foreach((json_t *)b, k, v) {
		bool ok = false;

		for (size_t i = 0; i < n; i++)
			ok |= strcmp(k, keys[i]) == 0;
		if (ok)
			continue;
		near = spell_nearest(k, keys, n);
		snprintf(err, errlen, "%s: unknown key '%s'%s%s%s", what, k,
			 near ? " (did you mean '" : "", near ? near : "",
			 near ? "'?)" : "");
		return -EINVAL;
	}
	return 0;
}

/* One API write (config, flip, endpoint, shift) on db, in the thread's
 * write context. */
static int config_write_on(struct store *db, const char *what,
			   const json_t *b, char *err, size_t errlen)
{
	if (strcmp(what, "config") == 0)
		return cfg_import(db, b, err, errlen);
	if (strcmp(what, "shift") == 0)
		return api_shift(db, b, err, errlen);
	if (!jstr(b, "service") || !jstr(b, "target")) {
		snprintf(err, errlen, "%s: \"service\" and \"target\" strings are required",
			 what);
		return -EINVAL;
	}
	if (strcmp(what, "flip") == 0)
		return cfg_flip(db, jstr(b, "service"), jstr(b, "target"), err, errlen);
	return endpoint_write(db, b, err, errlen);
}

/* With --etcd: an API write runs on a scratch store filled from etcd and
 * is committed there (cluster/write.h); the reply waits until this node's
 * replica applied it (at most ETCD_APPLY_WAIT_S), so the caller reads its
 * own write from this node. */
#define ETCD_APPLY_WAIT_S 2.0
/* Each etcd request of an API write (a member that does not answer within
 * it is skipped for the next). */
#define ETCD_WRITE_TIMEOUT_MS 2000

/* The etcd revision this node's replica has applied (0 when unknown). */
static long long applied_revision(struct control *sv)
{
	struct cfg_sync_pos pos;
	char err[256];

	if (cfg_sync_position(sv->db, &pos, err, sizeof(err)) < 0)
		return 0;
	return pos.revision;
}

struct etcd_api_write {
	const char *what;       /* config_write: what; NULL: REST, import */
	const json_t *body;
	const char *method, *path;      /* REST */
	const struct api_caller *who;
	bool import;            /* PUT /v1/config with a plan */
	struct cfg_plan *plan;  /* import: what it changed */
	int status;             /* REST: the HTTP status */
	json_t *reply;          /* REST: the reply */
};

static int etcd_attempt(struct store *scratch, void *arg, char *err,
			size_t errlen)
{
	struct etcd_api_write *w = arg;
	int rc;

	if (w->path) {
		json_decref(w->reply);
		w->reply = NULL;
		w->status = apicfg_handle(scratch, w->method, w->path, w->body,
					  w->who, &w->reply);
		if (w->status < 300)
			return 0;
		snprintf(err, errlen, "%s", jstr(w->reply, "error") ?
			 jstr(w->reply, "error") : "failed");
		return w->status == 404 ? -ENOENT : w->status == 409 ?
		       -EEXIST : w->status == 405 ? -EOPNOTSUPP : -EINVAL;
	}
	if (w->import) {
		cfg_plan_free(w->plan);
		w->plan = NULL;
		return cfg_import_plan(scratch, w->body, w->who->dry_run ?
				       CFG_IMPORT_DRY_RUN : 0, &w->plan, err,
				       errlen);
	}
	rc = config_write_on(scratch, w->what, w->body, err, errlen);
	return rc;
}

static void etcd_wait_applied(struct control *sv, long long revision);

/* Runs w against etcd; after a commit, waits (bounded) for the replica and
 * loads it. 0 or a negative errno with err (cluster/write.h). */
static int etcd_write(struct control *sv, struct etcd_api_write *w,
		      long long *revision, char *err, size_t errlen)
{
	struct cw_result res;
	int rc;

	rc = cw_run(sv->wr_etcd, sv->wr_prefix,
		    w->import || (w->what && strcmp(w->what, "config") == 0) ?
		    CW_WHOLE : 0, etcd_attempt, w, &res, err, errlen);
	*revision = res.revision;
	if (rc < 0) {
		log_warn("api: etcd write failed: %s", err);
		return rc;
	}
	if (res.txns > 0)
		etcd_wait_applied(sv, res.revision);
	return 0;
}

/* Waits (bounded) until this node's replica has applied revision, then
 * loads it. */
static void etcd_wait_applied(struct control *sv, long long revision)
{
	double until = clock_unix() + ETCD_APPLY_WAIT_S;
	long long applied;

	while ((applied = applied_revision(sv)) < revision &&
	       clock_unix() < until)
		usleep(5000);
	if (applied < revision)
		log_warn("etcd: revision %lld committed, this node has applied "
			 "%lld so far", revision, applied);
	sv->db_version = -1;
	poll_db(sv);
}

/* A staged shift's next stage (why NULL) or rollback, decided by this
 * node, as one compare-and-swap on the service's key in etcd: the
 * decision is made again on the configuration read from etcd, so a stage
 * another node began already (or a shift it rolled back) changes
 * nothing. */
struct etcd_shift_write {
	const struct shift_info *local;         /* as this node has it */
	const char *why;
	double now;
	struct shift_info after;
	int moved;
};

static int etcd_shift_attempt(struct store *scratch, void *arg, char *err,
			      size_t errlen)
{
	struct etcd_shift_write *w = arg;
	struct shift_info s;
	int rc = shift_get(scratch, w->local->service, &s, err, errlen);

	w->moved = 0;
	if (rc == -ENOENT)
		return 0;       /* gone meanwhile */
	if (rc < 0)
		return rc;
	/* Another shift of the service since (a new one started): this
	 * node's decision was about the old one. */
	if (strcmp(s.target, w->local->target) != 0 ||
	    s.started != w->local->started)
		return 0;
	rc = w->why ? shift_rollback(scratch, s.service_id, w->why, w->now,
				     err, errlen)
		    : shift_advance(scratch, s.service_id, w->now, &w->after,
				    err, errlen);
	if (rc < 0)
		return rc;
	w->moved = rc;
	return 0;
}

/* After a failed shift write, the next is not tried before (seconds):
 * the control thread must not wait on an unreachable etcd five times a
 * second. */
#define ETCD_SHIFT_RETRY_S 2.0

static int etcd_shift_write(void *ctx, const struct shift_info *local,
			    const char *why, double now,
			    struct shift_info *after, char *err, size_t errlen)
{
	struct control *sv = ctx;
	char who[300], host[256] = "";
	struct cfg_write w = { .who = who, .source = "etcd", .force = true,
			       .log_stderr = true };
	struct etcd_shift_write sw = { .local = local, .why = why,
				       .now = now };
	struct cfg_write *prev;
	struct cw_result res;
	int rc;

	if (clock_unix() < sv->shift_retry_at) {
		snprintf(err, errlen, "%s", sv->shift_err);
		return -EHOSTDOWN;
	}
	/* The replica's watch is down (etcd unreachable, or no leader): no
	 * attempt, which could hold this thread for a request timeout per
	 * member. */
	if (sv->etcd && !etcdsync_connected(sv->etcd)) {
		snprintf(err, errlen, "shift %s: etcd not connected; this node "
			 "keeps serving the stage it has", local->service);
		return -EHOSTDOWN;
	}
	if (!sv->conf.node_name &&
	    (gethostname(host, sizeof(host) - 1) < 0 || !host[0]))
		snprintf(host, sizeof(host), "localhost");
	snprintf(who, sizeof(who), "dnsd:%s",
		 sv->conf.node_name ? sv->conf.node_name : host);
	prev = cfg_write_swap(&w);
	rc = cw_run(sv->wr_etcd, sv->wr_prefix, CW_ONCE, etcd_shift_attempt,
		    &sw, &res, err, errlen);
	cfg_write_done(&w);
	cfg_write_use(prev);
	if (rc == -EAGAIN)
		return 0;       /* another node came first: the watch brings it */
	if (rc < 0) {
		snprintf(sv->shift_err, sizeof(sv->shift_err), "shift %s: "
			 "etcd: %s; this node keeps serving the stage it has",
			 local->service, err);
		snprintf(err, errlen, "%s", sv->shift_err);
		sv->shift_retry_at = clock_unix() + ETCD_SHIFT_RETRY_S;
		return rc;
	}
	if (res.txns == 0 || !sw.moved)
		return 0;
	etcd_wait_applied(sv, res.revision);
	if (after)
		*after = sw.after;
	return 1;
}

static int api_config_write(void *ctx, const char *what, const json_t *b,
			    const struct api_caller *who, char *err,
			    size_t errlen)
{
	struct control *sv = ctx;
	struct cfg_write w = { .who = who->name, .source = "api",
			       .force = who->force, .dry_run = who->dry_run,
			       .log_stderr = true };
	int rc;

	if (!sv->db) {
		snprintf(err, errlen, "this server has no store (--db)");
		return -ENOENT;
	}
	if (strcmp(what, "config") != 0 &&
	    (rc = known_keys(b, what, err, errlen)) < 0)
		return rc;
	cfg_write_use(&w);
	if (sv->wr_etcd) {
		struct etcd_api_write ew = { .what = what, .body = b,
					     .who = who };
		long long rev;

		rc = etcd_write(sv, &ew, &rev, err, errlen);
		cfg_write_use(NULL);
		if (rc == 0 && cfg_plan_size(w.done) > 0 && !w.dry_run)
			webui_event(sv->web, "api", jstr(b, "service") ?
				    jstr(b, "service") : "configuration",
				    "%s written to etcd (revision %lld)%s%s", what,
				    rev, jstr(b, "target") ? ": " : "",
				    jstr(b, "target") ? jstr(b, "target") : "");
		cfg_write_done(&w);
		return rc;
	}
	rc = config_write_on(sv->db, what, b, err, errlen);
	cfg_write_use(NULL);
	/* A shift is written by db/shift.c, not as a planned change. */
	if (rc == 0 && (strcmp(what, "shift") == 0 ||
			(cfg_plan_size(w.done) > 0 && !w.dry_run))) {
		/* Our own commit does not move our connection's data_version:
		 * load it now, so the next query already sees it. */
		webui_event(sv->web, "api", jstr(b, "service") ? jstr(b, "service")
			    : "configuration", "%s written%s%s", what,
			    jstr(b, "target") ? ": " : "",
			    jstr(b, "target") ? jstr(b, "target") : "");
		sv->db_version = -1;
		poll_db(sv);
	}
	cfg_write_done(&w);
	return rc;
}

/* PUT /v1/config: only what differs is written (db/diff.h); each change
 * is logged. */
static json_t *api_config_import(void *ctx, const json_t *b,
				 const struct api_caller *who, int *rc,
				 char *err, size_t errlen)
{
	struct control *sv = ctx;
	struct cfg_plan *plan = NULL;
	struct cfg_write w = { .who = who->name, .source = "api",
			       .force = who->force, .dry_run = who->dry_run,
			       .log_stderr = true };
	bool dry_run = who->dry_run;
	json_t *out;

	if (!sv->db) {
		snprintf(err, errlen, "this server has no store (--db)");
		*rc = -ENOENT;
		return NULL;
	}
	cfg_write_use(&w);
	if (sv->wr_etcd) {
		struct etcd_api_write ew = { .body = b, .who = who,
					     .import = true };
		long long rev = 0;

		*rc = etcd_write(sv, &ew, &rev, err, errlen);
		plan = ew.plan;
		w.version = rev;
	} else {
		*rc = cfg_import_plan(sv->db, b, dry_run ? CFG_IMPORT_DRY_RUN : 0,
				      &plan, err, errlen);
	}
	cfg_write_use(NULL);
	if (*rc < 0) {
		cfg_plan_free(plan);
		return NULL;
	}
	out = json_pack("{s:o, s:I}", "changes", cfg_plan_json(plan), "version",
			(json_int_t)w.version);
	if (!dry_run) {
		log_info("api: import by %s: %zu change%s", who->name,
			 cfg_plan_size(plan), cfg_plan_size(plan) == 1 ? "" : "s");
		if (cfg_plan_size(plan) > 0 && !sv->wr_etcd) {
			sv->db_version = -1;
			poll_db(sv);
		}
	}
	cfg_plan_free(plan);
	if (!out)
		*rc = -ENOMEM;
	return out;
}

/* /v1/services...: dnsd/api_config.c; a write that changed something is
 * loaded at once, as the other writes. */
static int api_config_rest(void *ctx, const char *method, const char *path,
			   const json_t *body, const struct api_caller *who,
			   json_t **reply)
{
	struct control *sv = ctx;
	int status;

	if (!sv->db) {
		*reply = json_pack("{s:s}", "error",
				   "this server has no store (--db)");
		return 404;
	}
	if (sv->wr_etcd && strcmp(method, "GET") != 0) {
		struct etcd_api_write ew = { .method = method, .path = path,
					     .body = body, .who = who };
		char err[1024] = "";
		long long rev = 0;
		int rc = etcd_write(sv, &ew, &rev, err, sizeof(err));

		if (rc < 0 && !(ew.reply && ew.status >= 300)) {
			json_decref(ew.reply);
			*reply = json_pack("{s:s}", "error", err);
			return rc == -EAGAIN ? 409 : rc == -ETIMEDOUT ||
			       rc == -EHOSTDOWN ? 503 : 500;
		}
		if (ew.status < 300 && json_is_object(ew.reply))
			json_object_set_new(ew.reply, "version",
					    json_integer(rev));
		*reply = ew.reply;
		return ew.status;
	}
	status = apicfg_handle(sv->db, method, path, body, who, reply);
	if (strcmp(method, "GET") != 0 && status < 300 && !who->dry_run) {
		sv->db_version = -1;
		poll_db(sv);
	}
	return status;
}

/* A health transition: into the status page's events. */
static void on_health_event(void *ctx, const char *subject, const char *text)
{
	struct control *sv = ctx;

	webui_event(sv->web, "health", subject, "%s", text);
	notify_health(sv->notify, subject, text);
}

static void web_source(void *ctx, struct webui_src *out)
{
	struct control *sv = ctx;

	out->snap = sv->snap;
	out->hs = sv->hs ? hsrv_state(sv->hs) : NULL;
	out->started = sv->st.started;
}

static void web_answers(void *ctx, uint64_t *ep, size_t cap)
{
	struct control *sv = ctx;

	net_ep_answers(sv->net, ep, cap);
}

static bool api_page(void *ctx, struct evhttp_request *req, const char *path)
{
	struct control *sv = ctx;

	return webui_handle(sv->web, req, path);
}

static const struct api_ops api_ops = {
	.config_rest = api_config_rest,
	.config_import = api_config_import,
	.checks = api_checks,
	.report = api_report,
	.status = api_status,
	.metrics = api_metrics,
	.config_get = api_config_get,
	.config_write = api_config_write,
	.page = api_page,
};

/* The API's credentials: the --api-tokens file and the shared token of
 * --api-token-file, either or both. 0, or -errno with err set. */
static int api_creds_load(const struct config *c, struct cred_set **out,
			  char *err, size_t errlen)
{
	struct cred_set *s = NULL;
	int rc = 0;

	*out = NULL;
	if (c->api_tokens)
		rc = cred_load(c->api_tokens, c->api_tokens_allow_others, &s, err,
			       errlen);
	else if (!(s = cred_new()))
		rc = -ENOMEM;
	if (rc == 0 && c->api_token_file) {
		char token[TOKEN_MAX];
		struct stat st;

		rc = token_load(c->api_token_file, token, sizeof(token), err,
				errlen);
		if (rc == 0 && stat(c->api_token_file, &st) == 0 &&
		    (st.st_mode & (S_IROTH | S_IWOTH)))
			log_warn("api: %s: others may read the shared token (mode %04o)",
				 c->api_token_file, (unsigned)(st.st_mode & 07777));
		if (rc == 0 && strlen(token) < CRED_TOKEN_MIN)
			log_warn("api: %s: the shared token is shorter than %d bytes",
				 c->api_token_file, CRED_TOKEN_MIN);
		if (rc == 0 && (rc = cred_add_shared(s, "token", token)) < 0)
			snprintf(err, errlen, "%s: %s", c->api_token_file,
				 rc == -EEXIST ? "the same token is in the "
				 "credentials file" : strerror(-rc));
		OPENSSL_cleanse(token, sizeof(token));
	}
	if (rc < 0)
		cred_free(s);
	else
		*out = s;
	return rc;
}

/* api-tls-client-auth require (api_preflight() checked the value). */
static bool api_client_require(const struct config *c)
{
	return strcmp(c->api_tls_client_auth, "require") == 0;
}

/* The API's TLS files of c, for api_tls_check() and api_set_tls(). */
static const struct api_tls *api_tls_of(const struct config *c)
{
	static struct api_tls t;

	t = (struct api_tls) {
		.cert = c->api_tls_cert, .key = c->api_tls_key,
		.client_ca = c->api_tls_client_ca,
		.client_crl = c->api_tls_client_crl,
		.require = api_client_require(c),
	};
	return &t;
}

/* What starting the API needs, checked without binding (control_new, so
 * that dnsd --check finds what would stop dnsd from starting): a
 * credential, readable credentials files, the listen address, and a
 * certificate and key that go together. Returns the problems, each
 * logged. */
static unsigned api_preflight(const struct config *c)
{
	struct cred_set *creds = NULL;
	char err[512], host[128];
	unsigned failed = 0, port;
	bool v6;

	if (!c->api) {
		if (c->api_tls_cert || c->api_tls_key || c->api_tokens ||
		    c->api_token_file)
			log_warn("api: credentials or TLS given without --api: "
				 "no API is served");
		return 0;
	}
	if (hostport_split(c->api, host, sizeof(host), &port, &v6) < 0) {
		log_err("api: listen address '%s': expected ADDR:PORT or "
			"[ADDR]:PORT", c->api);
		failed++;
	}
	if (!c->api_token_file && !c->api_tokens) {
		log_err("api: --api needs --api-tokens or --api-token-file "
			"(writes need a credential)");
		failed++;
	} else if (api_creds_load(c, &creds, err, sizeof(err)) < 0) {
		log_err("api: %s", err);
		failed++;
	}
	cred_free(creds);
	if (!!c->api_tls_cert != !!c->api_tls_key) {
		log_err("api: api-tls-cert and api-tls-key come together");
		failed++;
	} else if (c->api_tls_cert &&
		   api_tls_check(api_tls_of(c), err, sizeof(err)) < 0) {
		log_err("api: %s", err);
		failed++;
	}
	if (strcmp(c->api_tls_client_auth, "optional") != 0 &&
	    strcmp(c->api_tls_client_auth, "require") != 0) {
		log_err("api: api-tls-client-auth '%s': expected optional or "
			"require", c->api_tls_client_auth);
		failed++;
	}
	if (c->api_tls_client_ca && !c->api_tls_cert) {
		log_err("api: api-tls-client-ca needs api-tls-cert and "
			"api-tls-key (client certificates come with TLS)");
		failed++;
	}
	if (c->api_tls_client_ca && !c->api_tokens) {
		log_err("api: api-tls-client-ca needs api-tokens (the agents a "
			"client certificate may name)");
		failed++;
	}
	if (c->api_tls_client_crl && !c->api_tls_client_ca) {
		log_err("api: api-tls-client-crl needs api-tls-client-ca");
		failed++;
	}
	if (!c->api_tls_client_ca &&
	    strcmp(c->api_tls_client_auth, "require") == 0) {
		log_err("api: api-tls-client-auth require needs "
			"api-tls-client-ca");
		failed++;
	}
	return failed;
}

/* SIGHUP: reread the API's credentials and TLS certificate; a bad file
 * keeps the old ones. */
static void api_creds_reload(struct control *sv)
{
	struct cred_set *creds;
	char err[512];

	if (!sv->api)
		return;
	if (api_creds_load(&sv->conf, &creds, err, sizeof(err)) < 0) {
		log_err("reload: api credentials: %s; keeping the ones loaded before",
			err);
		return;
	}
	log_info("reload: api credentials: %zu", cred_count(creds));
	api_set_creds(sv->api, creds);
	if (sv->conf.api_tls_cert &&
	    api_set_tls(sv->api, api_tls_of(&sv->conf), err, sizeof(err)) < 0)
		log_err("reload: api %s; keeping the certificate loaded before", err);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct control *sv = arg;

	(void)what;
	if (sig == SIGHUP) {
		log_info("SIGHUP: reloading");
		sd_notify(0, "RELOADING=1\nSTATUS=reloading");
		reload(sv);
		api_creds_reload(sv);
		sd_notifyf(0, "READY=1\nSTATUS=serving, generation %llu",
			   (unsigned long long)sv->snap->gen);
		return;
	}
	log_info("signal %d: stopping", (int)sig);
	sd_notify(0, "STOPPING=1");
	event_base_loopbreak(sv->base);
}

/* Per-packet problems are counters, never a log line per packet; this
 * says once a minute what changed. */
static void on_summary(evutil_socket_t fd, short what, void *arg)
{
	struct control *sv = arg;
	struct stats st;
	uint64_t q = 0;

	(void)fd;
	(void)what;
	net_stats(sv->net, &st);
	for (unsigned t = 0; t < STATS_NTRANSPORT; t++)
		for (unsigned k = 0; k < STATS_NQTYPES; k++)
			q += st.queries[t][k];
	if (st.malformed != sv->last.malformed || st.dropped != sv->last.dropped ||
	    st.truncated != sv->last.truncated ||
	    st.tcp_closed_idle != sv->last.tcp_closed_idle ||
	    st.tcp_closed_cap != sv->last.tcp_closed_cap)
		log_info("summary: %llu queries; last minute: %llu malformed, %llu dropped, "
			 "%llu truncated, tcp closed %llu idle %llu at cap",
			 (unsigned long long)q,
			 (unsigned long long)(st.malformed - sv->last.malformed),
			 (unsigned long long)(st.dropped - sv->last.dropped),
			 (unsigned long long)(st.truncated - sv->last.truncated),
			 (unsigned long long)(st.tcp_closed_idle - sv->last.tcp_closed_idle),
			 (unsigned long long)(st.tcp_closed_cap - sv->last.tcp_closed_cap));
	sv->last = st;
}


/* ------------------------------------------------------------- lifecycle */

struct control *control_new(const struct config *conf, unsigned *problems)
{
	struct control *sv = xcalloc(1, sizeof(*sv));
	unsigned failed;

	sv->conf = *conf;
	sv->zones = xcalloc(sv->conf.n_zone + 1, sizeof(*sv->zones));
	failed = load_zones(sv, NULL, sv->zones);
	if (check_duplicate_apex(&sv->conf, sv->zones) < 0)
		failed++;
	if (load_keys(sv, sv->zones, sv->conf.n_zone, &sv->sec) < 0)
		failed++;
	if (sv->conf.geoip && load_geo(sv, &sv->geo) < 0)
		failed++;
	if (sv->conf.db) {
		char err[512];

		/* Created with the current schema if missing. */
		if (store_open(sv->conf.db, sv->conf.check ? STORE_RDONLY : STORE_CREATE,
			       &sv->db, err, sizeof(err)) < 0) {
			log_err("%s", err);
			failed++;
		}
	}
	answer_conf_init(&sv->conf, &sv->aconf);
	if (sv->db) {
		sv->spill = spill_new(STATS_EP_COUNTERS);
		sv->spill_counts = calloc(STATS_EP_COUNTERS,
					  sizeof(*sv->spill_counts));
		if (!sv->spill || !sv->spill_counts)
			fatal("out of memory for the spill-over load table");
		sv->aconf.load = spill_load(sv->spill);
	}
	if (sv->conf.default_location) {
		if (parse_default_location(sv->conf.default_location,
					   &sv->aconf.default_loc) < 0)
			failed++;
		else
			sv->aconf.has_default_loc = true;
	}
	if (sv->conf.notify_url) {
		char err[512];

		if (notify_url_check(sv->conf.notify_url, err, sizeof(err)) < 0) {
			log_err("%s", err);
			failed++;
		}
	}
	failed += api_preflight(&sv->conf);
	*problems = failed;
	return sv;
}

unsigned control_check(struct control *sv)
{
	struct zone **ok;
	struct zonetab *zt;
	struct svc_set *set = NULL;
	unsigned failed = 0;
	size_t n = 0;

	/* The parent zones' DS records, when the keys loaded. */
	if (sv->sec)
		dnssec_print_ds(sv->sec, stdout);
	if (!sv->db)
		return 0;
	ok = xcalloc(sv->conf.n_zone + 1, sizeof(*ok));
	for (size_t i = 0; i < sv->conf.n_zone; i++)
		if (sv->zones[i])
			ok[n++] = sv->zones[i];
	zt = zonetab_build(ok, n);
	/* Skipped rows are reported, not fatal, as when serving. */
	if (!zt || load_services(sv, &set) < 0)
		failed++;
	else
		svc_index_free(svc_index_build(set, zt));
	svc_set_free(set);
	zonetab_free(zt);
	free(ok);
	return failed;
}

/* The first snapshot: the zones and GeoIP control_new loaded, the
 * services, and the health service's first view. */
static void first_snapshot(struct control *sv)
{
	struct snap *s = clone_current(sv);
	double t0 = clock_mono();

	if (!s || snap_set_zones(s, sv->zones, sv->conf.n_zone) < 0)
		fatal("out of memory building the first snapshot");
	free(sv->zones);
	sv->zones = NULL;
	s->geo = sv->geo;
	sv->geo = NULL;
	s->sec = sv->sec;
	sv->sec = NULL;
	if (sv->db && load_services(sv, &s->svc) < 0)
		fatal("db %s: cannot load the services; not starting", sv->conf.db);
	if (sv->db) {
		struct hsrv_conf hc = {
			.db = sv->db,
			.db_path = sv->conf.db,
			.default_interval = sv->conf.check_interval,
			.quorum = sv->conf.quorum_percent / 100.0,
			.min_regions = sv->conf.quorum_min_regions,
			.expire_s = sv->conf.agent_expiry,
			.publish = on_health,
			.event = on_health_event,
			.ctx = sv,
		};

		file_id_of(sv->conf.db, &sv->db_id);
		sv->hs = hsrv_new(sv->base, &hc, &s->hv);
		if (!sv->hs)
			fatal("health: cannot start; not starting");
	}
	if (install(sv, s) < 0)
		fatal("out of memory building the first snapshot");
	if (sv->db)
		build_done(sv, STATUS_BUILD_FULL, t0);
	record_zones(sv, s);
}

static void start_timer(struct control *sv, struct event **ev,
			event_callback_fn fn, unsigned ms, const char *what)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	*ev = event_new(sv->base, -1, EV_PERSIST, fn, sv);
	if (!*ev || event_add(*ev, &tv) < 0)
		fatal("cannot start the %s timer", what);
}

static void start_api(struct control *sv)
{
	char err[512];
	struct cred_set *creds = NULL;

	/* api_preflight() checked the rest before starting. */
	if (api_creds_load(&sv->conf, &creds, err, sizeof(err)) < 0)
		fatal("api: %s", err);
	sv->web = webui_new(sv->base, &(struct webui_conf) {
		.source = web_source, .answers = web_answers, .ctx = sv });
	if (!sv->web)
		fatal("api: out of memory starting the status page");
	webui_event(sv->web, "start", "dnsd", "serving generation %llu",
		    (unsigned long long)sv->snap->gen);
	sv->api = api_new(sv->base, sv->conf.api, NULL, &api_ops, sv, err,
			  sizeof(err));
	if (!sv->api)
		fatal("api %s: %s", sv->conf.api, err);
	api_set_creds(sv->api, creds);
	if (api_set_limits(sv->api, sv->conf.api_max_connections,
			   sv->conf.api_request_timeout, err, sizeof(err)) < 0)
		fatal("%s", err);
	api_set_max_body(sv->api, sv->conf.api_max_body,
			 sv->conf.api_max_report_body);
	if (api_set_hosts(sv->api, sv->conf.api_hosts, sv->conf.n_api_hosts) < 0)
		fatal("api: out of memory");
	if (sv->conf.api_tls_cert &&
	    api_set_tls(sv->api, api_tls_of(&sv->conf), err, sizeof(err)) < 0)
		fatal("api: %s", err);
	log_info("api: listening on %s (port %u, %s%s), %zu credentials",
		 sv->conf.api, api_port(sv->api),
		 sv->conf.api_tls_cert ? "https" : "http",
		 !sv->conf.api_tls_client_ca ? "" :
		 api_client_require(&sv->conf) ? ", client certificate required" :
		 ", client certificates verified", cred_count(creds));
}

/* The replica thread committed: poll the store now rather than at the
 * next db-poll-ms tick (a change is served within milliseconds). */
static void on_applied(evutil_socket_t fd, short what, void *arg)
{
	struct control *sv = arg;
	uint64_t n;

	(void)what;
	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_warn_errno("etcd: reading the replica thread's signal");
	if (sv->db)
		poll_db(sv);
}

/* On the replica thread: wake the control thread (an eventfd write is
 * all it does; a counter that is already set stays set). */
static void signal_applied(void *arg)
{
	struct control *sv = arg;
	uint64_t one = 1;

	if (write(sv->applied_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn_errno("etcd: waking the control thread");
}

/* --etcd: the thread that keeps the store a replica of etcd's
 * configuration; its commits reach the snapshot through the store poll,
 * run as soon as the thread signals one (and every db-poll-ms anyway). */
static void start_etcd(struct control *sv)
{
	struct etcdsync_conf c = {
		.urls = sv->conf.etcd, .n_urls = sv->conf.n_etcd,
		.prefix = sv->conf.etcd_prefix, .node = sv->conf.node_name,
		.catchup_revisions = sv->conf.etcd_catchup_revisions,
		.db = sv->conf.db, .ca_file = sv->conf.etcd_ca_file,
		.cert_file = sv->conf.etcd_cert_file,
		.key_file = sv->conf.etcd_key_file,
	};
	struct etcd_config wc = {
		.urls = sv->conf.etcd, .n_urls = sv->conf.n_etcd,
		.ca_file = sv->conf.etcd_ca_file,
		.cert_file = sv->conf.etcd_cert_file,
		.key_file = sv->conf.etcd_key_file,
		.timeout_ms = ETCD_WRITE_TIMEOUT_MS,
	};
	char err[512];

	sv->applied_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (sv->applied_fd < 0 ||
	    !(sv->applied_ev = event_new(sv->base, sv->applied_fd,
	                                 EV_READ | EV_PERSIST, on_applied, sv)) ||
	    event_add(sv->applied_ev, NULL) < 0)
		fatal("etcd: cannot set up the replica thread's signal");
	c.applied = signal_applied;
	c.applied_arg = sv;
	if (!(sv->etcd = etcdsync_start(&c, err, sizeof(err))))
		fatal("%s", err);
	/* The API's writes go to etcd too (cluster/write.h), with a client
	 * of the control thread's own. */
	if (!(sv->wr_etcd = etcd_new(&wc, err, sizeof(err))))
		fatal("etcd: %s", err);
	sv->wr_prefix = sv->conf.etcd_prefix;
}

void control_start(struct control *sv, const struct rrl_conf *rrl)
{
	static const int sigs[3] = { SIGHUP, SIGTERM, SIGINT };

	rcu_register_thread();
	sv->rcu = true;
	sv->base = event_base_new();
	if (!sv->base)
		fatal("event_base_new failed");
	sv->st.started = clock_unix();
	sv->st.last_reload_ok = true;
	/* Without it every request renders (out of memory only). */
	sv->st.cache = status_cache_new();
	first_snapshot(sv);
	if (sv->conf.dnssec_keys)
		dnssec_configure((size_t)sv->conf.dnssec_cache_mb << 20,
				 sv->conf.dnssec_sign_rate);
	if (sv->conf.notify_url) {
		char err[512];

		if (!(sv->notify = notify_new(sv->base, sv->conf.notify_url, err,
					      sizeof(err))))
			fatal("%s", err);
		log_info("notify: health transitions go to %s", sv->conf.notify_url);
	}
	sv->net = net_new(&(struct net_conf) {
		.threads = sv->conf.threads,
		.tcp_idle_timeout = sv->conf.tcp_idle_timeout,
		.tcp_max_clients = sv->conf.tcp_max_clients,
		.tcp_max_per_source = sv->conf.tcp_max_per_source,
		.rrl = rrl,
		.xdp = sv->conf.xdp,
	}, sv->conf.listen, sv->conf.n_listen);
	if (!sv->net)
		fatal("cannot listen; not starting");
	for (int i = 0; i < 3; i++) {
		sv->sig[i] = evsignal_new(sv->base, sigs[i], on_signal, sv);
		if (!sv->sig[i] || event_add(sv->sig[i], NULL) < 0)
			fatal("cannot install signal handlers");
	}
	signal(SIGPIPE, SIG_IGN);
	start_timer(sv, &sv->poll_ev, on_poll, sv->conf.db_poll_ms, "poll");
	start_store_watch(sv);
	if (sv->conf.n_etcd)
		start_etcd(sv);
	if (sv->conf.api)
		start_api(sv);
	if (sv->db)
		start_timer(sv, &sv->shift_ev, on_shift_timer, 200, "shift");
}

void control_run(struct control *sv)
{
	if (net_start(sv->net) < 0)
		fatal("cannot start workers");
	for (size_t i = 0; i < sv->conf.n_listen; i++)
		log_info("listening on %s (udp, tcp), %u threads", sv->conf.listen[i],
			 sv->conf.threads);
	start_timer(sv, &sv->summary_ev, on_summary, 60000, "summary");
	sd_notifyf(0, "READY=1\nSTATUS=serving, generation %llu\nMAINPID=%lu",
		   (unsigned long long)sv->snap->gen, (unsigned long)getpid());

	/* The control thread is an RCU reader only when it publishes. */
	rcu_thread_offline();
	event_base_dispatch(sv->base);
	rcu_thread_online();
}

void control_free(struct control *sv)
{
	if (!sv)
		return;
	etcdsync_stop(sv->etcd);
	etcd_free(sv->wr_etcd);
	sv->etcd = NULL;
	if (sv->applied_ev) {
		event_free(sv->applied_ev);
		close(sv->applied_fd);
	}
	api_free(sv->api);
	webui_free(sv->web);
	sv->web = NULL;
	hsrv_free(sv->hs);
	notify_free(sv->notify);
	sv->notify = NULL;
	net_free(sv->net);
	for (int i = 0; i < 3; i++)
		if (sv->sig[i])
			event_free(sv->sig[i]);
	if (sv->poll_ev)
		event_free(sv->poll_ev);
	if (sv->watch_ev)
		event_free(sv->watch_ev);
	if (sv->soon_ev)
		event_free(sv->soon_ev);
	if (sv->watch_fd > 0)
		close(sv->watch_fd);
	if (sv->summary_ev)
		event_free(sv->summary_ev);
	if (sv->shift_ev)
		event_free(sv->shift_ev);
	if (sv->base)
		event_base_free(sv->base);
	if (sv->snap)
		snap_retire(snap_publish(NULL), NULL);
	for (size_t i = 0; sv->zones && i < sv->conf.n_zone; i++)
		zone_free(sv->zones[i]);
	free(sv->zones);
	geo_free(sv->geo);
	dnssec_set_free(sv->sec);
	store_close(sv->db);
	spill_free(sv->spill);
	free(sv->spill_counts);
	status_cache_free(sv->st.cache);
	if (sv->rcu)
		rcu_unregister_thread();
	free(sv);
}
