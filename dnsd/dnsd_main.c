/* dnsd/dnsd_main.c - the dnsd program: configuration, the control thread
 * (signals, reloads, snapshot builds, health, the API) and the answering
 * threads (net.c).
 * Everything here is load time; the query path lives in net.c/answer.c. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <linux/capability.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <systemd/sd-daemon.h>
#include <openssl/crypto.h>
#include <urcu-qsbr.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "dnsd/api.h"
#include "dnsd/config.h"
#include "dnsd/health.h"
#include "dnsd/status.h"
#include "dnsd/net.h"
#include "dnsd/xdp.h"
#include "dnsd/snap.h"
#include "db/cfg.h"
#include "db/store.h"
#include "db/svc.h"
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

struct server {
	struct config conf;
	struct event_base *base;
	struct net *net;
	struct snap *snap;           /* the one in force (control thread) */
	uint64_t gen;
	struct event *poll_ev;
	struct file_id geo_id;       /* to notice a replaced GeoIP file */
	sqlite3 *db;                 /* the store: polled (data_version),
					and written by health and the API */
	long long db_version;
	struct file_id db_id;        /* the file that handle has open */
	struct file_id db_bad_id;    /* a replacement that failed to open */
	size_t svc_skipped;          /* services not served (outside zones) */
	char db_err[512];            /* the store problem last logged */
	struct hsrv *hs;             /* health (with --db) */
	struct api *api;             /* HTTP API (with --api) */
	struct status_src st;        /* times and results for status/metrics */
	struct event *summary_ev;
	struct stats last;           /* counters at the last summary */
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
	char *end;

	memset(loc, 0, sizeof(*loc));
	if (strlen(s) == 2 &&
	    geo_country_centroid(s, &loc->lat, &loc->lon, loc->continent) == 0) {
		loc->country[0] = (char)(s[0] & ~0x20);
		loc->country[1] = (char)(s[1] & ~0x20);
		geo_unit_vector(loc->lat, loc->lon, loc->v);
		return 0;
	}
	loc->lat = strtod(s, &end);
	if (end != s && *end == ',') {
		const char *p = end + 1;

		loc->lon = strtod(p, &end);
		if (end != p && !*end && loc->lat >= -90 && loc->lat <= 90 &&
		    loc->lon >= -180 && loc->lon <= 180) {
			geo_unit_vector(loc->lat, loc->lon, loc->v);
			return 0;
		}
	}
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

static int load_geo(struct server *sv, struct geo_db **out)
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
static unsigned load_zones(struct server *sv, struct zone **old,
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

/* A new snapshot sharing every part of base (NULL: empty). */
static struct snap *snap_clone(struct server *sv, const struct snap *base)
{
	struct snap *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->zones = calloc(sv->conf.n_zone + 1, sizeof(*s->zones));
	if (!s->zones) {
		free(s);
		return NULL;
	}
	if (base) {
		memcpy(s->zones, base->zones, base->n_zones * sizeof(*s->zones));
		s->n_zones = base->n_zones;
		s->zt = base->zt;
		s->geo = base->geo;
		s->svc = base->svc;
		s->svcx = base->svcx;
		s->hv = base->hv;
	}
	answer_conf_init(&sv->conf, &s->conf);
	if (sv->conf.default_location)
		s->conf.has_default_loc = parse_default_location(
			sv->conf.default_location, &s->conf.default_loc) == 0;
	s->gen = ++sv->gen;
	return s;
}

/* Gives s the zones in zones[] (NULL entries skipped) and their table. */
static int snap_set_zones(struct snap *s, struct zone **zones, size_t n)
{
	struct zonetab *zt;
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		if (zones[i])
			s->zones[k++] = zones[i];
	zt = zonetab_build(s->zones, k);
	if (!zt)
		return -ENOMEM;
	s->n_zones = k;
	s->zt = zt;
	return 0;
}

static bool has_zone(const struct snap *s, const struct zone *z)
{
	for (size_t i = 0; s && i < s->n_zones; i++)
		if (s->zones[i] == z)
			return true;
	return false;
}

/* Frees old, except what still belongs to cur. */
static void snap_retire(struct snap *old, const struct snap *cur)
{
	if (!old)
		return;
	for (size_t i = 0; i < old->n_zones; i++)
		if (!has_zone(cur, old->zones[i]))
			zone_free(old->zones[i]);
	if (!cur || old->zt != cur->zt)
		zonetab_free((struct zonetab *)old->zt);
	if (!cur || old->geo != cur->geo)
		geo_free(old->geo);
	if (!cur || old->svc != cur->svc)
		svc_set_free(old->svc);
	if (!cur || old->svcx != cur->svcx)
		svc_index_free(old->svcx);
	if (!cur || old->hv != cur->hv)
		hstate_view_free(old->hv);
	free(old->zones);
	free(old);
}

/* Throws away a snapshot that was never published: only the parts that
 * base (the one in force) does not share. */
static void snap_discard(struct snap *s, const struct snap *base)
{
	snap_retire(s, base);
}

static void db_problem(struct server *sv, const char *msg);

/* Publishes s. Its per-service zones are rebuilt when its services or its
 * zones differ from the snapshot in force. Returns -ENOMEM (s discarded,
 * the old snapshot stays) or 0. */
static int install(struct server *sv, struct snap *s)
{
	struct snap *old;

	if (s->svc && (!sv->snap || s->svc != sv->snap->svc || s->zt != sv->snap->zt)) {
		s->svcx = svc_index_build(s->svc, s->zt);
		if (!s->svcx) {
			log_err("snapshot: out of memory, keeping the one in force");
			snap_discard(s, sv->snap);
			return -ENOMEM;
		}
		sv->svc_skipped = s->svcx->skipped;
	} else if (!s->svc) {
		s->svcx = NULL;
	}
	old = snap_publish(s);

	snap_retire(old, s);
	sv->snap = s;
	return 0;
}

/* Reads the services from the store into a new set. Returns 0,
 * or a negative errno (logged) when the store cannot be read. */
static int load_services(struct server *sv, struct svc_set **out)
{
	char err[512];
	long long v = store_data_version(sv->db);
	int rc = svc_load(sv->db, out, err, sizeof(err));
	size_t eps = 0;

	if (rc < 0) {
		db_problem(sv, err);
		sv->st.db_ok = false;
		return rc;
	}
	sv->db_version = v;
	sv->st.db_ok = true;
	sv->st.last_db_load = clock_unix();
	sv->st.db_problems = (*out)->n_problems;
	for (size_t i = 0; i < (*out)->n; i++)
		eps += (*out)->svcs[i].n_eps;
	for (size_t i = 0; i < (*out)->n_problems; i++)
		log_warn("%s", (*out)->problems[i]);
	log_info("db %s: %zu services, %zu endpoints, %zu problems", sv->conf.db,
		 (*out)->n, eps, (*out)->n_problems);
	return 0;
}

/* SIGHUP: reparse every zone file and the GeoIP database off the query
 * path; whatever fails keeps its old version serving. */
static void reload(struct server *sv)
{
	struct zone **old = xcalloc(sv->conf.n_zone + 1, sizeof(*old));
	struct zone **nz = xcalloc(sv->conf.n_zone + 1, sizeof(*nz));
	struct snap *s = snap_clone(sv, sv->snap);
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
	    snap_set_zones(s, nz, sv->conf.n_zone) < 0) {
		for (size_t i = 0; i < sv->conf.n_zone; i++)
			if (nz[i] != old[i])
				zone_free(nz[i]);
		s->n_zones = 0;
		s->zt = sv->snap->zt;
		snap_discard(s, sv->snap);
		log_err("reload: zones failed, keeping everything loaded before");
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
	install(sv, s);
	if (sv->hs)
		hsrv_reload(sv->hs, sv->db);
	sv->st.last_reload = clock_unix();
	sv->st.last_reload_ok = failed == 0;
	log_info("reload: generation %llu, %zu zones, %u failed",
		 (unsigned long long)s->gen, s->n_zones, failed);
out:
	free(old);
	free(nz);
}

/* Logs a store problem once, not at every poll while it lasts. */
static void db_problem(struct server *sv, const char *msg)
{
	if (strcmp(msg, sv->db_err) != 0) {
		log_err("%s (keeping the services loaded before)", msg);
		snprintf(sv->db_err, sizeof(sv->db_err), "%s", msg);
	}
}

/* Picks up changes to the store: a file replaced under its name (mv) is
 * reopened; a new PRAGMA data_version (a commit by gslbctl, the API or the
 * sqlite3 shell) loads the services again. Whatever fails keeps the
 * services in force. */
static void poll_db(struct server *sv)
{
	struct file_id id;
	struct svc_set *set;
	struct snap *s;
	long long v;
	char err[512];

	file_id_of(sv->conf.db, &id);
	if (id.ino && (id.ino != sv->db_id.ino || id.dev != sv->db_id.dev) &&
	    (id.ino != sv->db_bad_id.ino || id.dev != sv->db_bad_id.dev)) {
		sqlite3 *h;

		if (store_open(sv->conf.db, 0, &h, err, sizeof(err)) < 0) {
			db_problem(sv, err);
			sv->db_bad_id = id;
		} else {
			log_info("db %s: file replaced, reopened", sv->conf.db);
			store_close(sv->db);
			sv->db = h;
			sv->db_id = id;
			sv->db_version = -1;
			if (sv->hs)     /* never leave it the closed handle */
				hsrv_reload(sv->hs, sv->db);
		}
	}
	v = store_data_version(sv->db);
	if (v < 0) {
		snprintf(err, sizeof(err), "db %s: cannot read: %s", sv->conf.db,
			 sqlite3_errmsg(sv->db));
		db_problem(sv, err);
		return;
	}
	if (v == sv->db_version)
		return;
	sv->db_version = v;     /* a failed load is retried at the next change */
	if (load_services(sv, &set) < 0)
		return;
	sv->db_err[0] = 0;
	if (!(s = snap_clone(sv, sv->snap))) {
		svc_set_free(set);
		return;
	}
	s->svc = set;
	install(sv, s);
	if (sv->hs)
		hsrv_reload(sv->hs, sv->db);
}

/* Every db-poll-ms: store changes, and a replaced GeoIP file. */
static void on_poll(evutil_socket_t fd, short what, void *arg)
{
	struct server *sv = arg;
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
			} else if (!(s = snap_clone(sv, sv->snap))) {
				geo_free(g);
			} else {
				s->geo = g;
				install(sv, s);
			}
		}
	}
}

/* A new health view from the health service: swap it in. */
static void on_health(void *ctx, struct hstate_view *v)
{
	struct server *sv = ctx;
	struct snap *s = snap_clone(sv, sv->snap);

	if (!s) {
		hstate_view_free(v);
		return;
	}
	s->hv = v;
	install(sv, s);
}

/* Fills sv->st for a status or metrics request; ep (NULL or
 * NET_EP_COUNTERS entries) receives the per-endpoint answer counts. */
static void status_fill(struct server *sv, struct stats *sum, uint64_t *ep)
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
	sv->st.ep_cap = ep ? NET_EP_COUNTERS : 0;
	if (ep)
		net_ep_answers(sv->net, ep, NET_EP_COUNTERS);
}

static json_t *api_checks(void *ctx)
{
	struct server *sv = ctx;

	return sv->hs ? hsrv_checks(sv->hs)
		      : json_pack("{s:i, s:[]}", "generation", 0, "checks");
}

static int api_report(void *ctx, const struct api_report *r, char *err,
		      size_t errlen)
{
	struct server *sv = ctx;
	struct hstate_agent a = { .name = r->agent, .region = r->region,
				  .has_coords = r->has_coords,
				  .lat = r->lat, .lon = r->lon };

	if (!sv->hs) {
		snprintf(err, errlen, "this server has no store (--db): no endpoint is checked");
		return -ENOENT;
	}
	return hsrv_report(sv->hs, &a, r->results, r->n, err, errlen);
}

static json_t *api_status(void *ctx)
{
	struct server *sv = ctx;
	struct stats sum;

	status_fill(sv, &sum, NULL);
	return status_json(&sv->st);
}

static int api_metrics(void *ctx, struct evbuffer *out)
{
	struct server *sv = ctx;
	struct stats sum;
	uint64_t *ep = calloc(NET_EP_COUNTERS, sizeof(*ep));
	int rc;

	status_fill(sv, &sum, ep);
	rc = status_metrics(&sv->st, out);
	free(ep);
	return rc;
}

static json_t *api_config_get(void *ctx, char *err, size_t errlen)
{
	struct server *sv = ctx;

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
static int endpoint_write(struct server *sv, const json_t *b, char *err,
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
	return cfg_endpoint_set(sv->db, jstr(b, "service"), &e, err, errlen);
bad_type:
	snprintf(err, errlen, "endpoint: drained must be a boolean, admin a string, "
		 "weight and priority integers");
	return -EINVAL;
}

static int api_config_write(void *ctx, const char *what, const json_t *b,
			    char *err, size_t errlen)
{
	struct server *sv = ctx;
	int rc;

	if (!sv->db) {
		snprintf(err, errlen, "this server has no store (--db)");
		return -ENOENT;
	}
	if (strcmp(what, "config") == 0) {
		rc = cfg_import(sv->db, b, err, errlen);
	} else if (!jstr(b, "service") || !jstr(b, "target")) {
		snprintf(err, errlen, "%s: \"service\" and \"target\" strings are required",
			 what);
		return -EINVAL;
	} else if (strcmp(what, "flip") == 0) {
		rc = cfg_flip(sv->db, jstr(b, "service"), jstr(b, "target"), err, errlen);
	} else {
		rc = endpoint_write(sv, b, err, errlen);
	}
	if (rc == 0) {
		/* Our own commit does not move our connection's data_version:
		 * load it now, so the next query already sees it. */
		log_info("api: %s written", what);
		sv->db_version = -1;
		poll_db(sv);
	}
	return rc;
}

static const struct api_ops api_ops = {
	.checks = api_checks,
	.report = api_report,
	.status = api_status,
	.metrics = api_metrics,
	.config_get = api_config_get,
	.config_write = api_config_write,
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
		if (rc == 0 && (rc = cred_add_shared(s, "token-file", token)) < 0)
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

/* SIGHUP: reread the API's credentials and TLS certificate; a bad file
 * keeps the old ones. */
static void api_creds_reload(struct server *sv)
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
	    api_set_tls(sv->api, sv->conf.api_tls_cert, sv->conf.api_tls_key, err,
			sizeof(err)) < 0)
		log_err("reload: api %s; keeping the certificate loaded before", err);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct server *sv = arg;

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

/* Started as root with a `user`: keep the bound sockets, give up root for
 * good (groups, gid, uid), and check it cannot be regained. */
static void drop_privileges(const char *user)
{
	struct passwd *pw;

	if (!user || geteuid() != 0)
		return;
	pw = getpwnam(user);
	if (!pw)
		fatal("user %s: no such user", user);
	if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0)
		fatal("user %s: cannot switch to it: %s", user, strerror(errno));
	if (pw->pw_uid != 0 && setuid(0) == 0)
		fatal("user %s: could regain root after dropping it", user);
	/* Changing uid made the process undumpable, which hands /proc/self
	 * to root: the API's connection limits read /proc/self/fd. The same
	 * as a service started as that user in the first place. */
	if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0)
		log_warn_errno("prctl(PR_SET_DUMPABLE)");
	log_info("running as user %s (uid %u)", user, (unsigned)pw->pw_uid);
}

/* Once every socket is bound (and XDP attached): give up every
 * capability for good - ambient, bounding (when allowed), inheritable,
 * permitted, effective - and any way to gain one through exec. Before the
 * worker threads exist: capabilities are per thread, and new threads copy
 * them from this one. */
static void drop_capabilities(void)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct data[2] = { { 0 } };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		log_warn_errno("prctl(PR_SET_NO_NEW_PRIVS)");
	(void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	/* Needs CAP_SETPCAP (root has it; an unprivileged service has a
	 * bounding set its unit already limited). */
	for (int cap = 0; cap < 64 && prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0;
	     cap++)
		(void)prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
	if (syscall(SYS_capset, &hdr, data) < 0)
		fatal("cannot drop capabilities: %s", strerror(errno));
	memset(data, 0xff, sizeof(data));
	if (syscall(SYS_capget, &hdr, data) < 0 || data[0].effective ||
	    data[0].permitted || data[1].effective || data[1].permitted)
		fatal("capabilities still held after dropping them");
	log_info("capabilities dropped");
}

/* Per-packet problems are counters, never a log line per packet; this
 * says once a minute what changed (STYLE 6). */
static void on_summary(evutil_socket_t fd, short what, void *arg)
{
	struct server *sv = arg;
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

/* Every TCP client is a descriptor: raise the soft limit to the hard one,
 * so tcp-max-clients per worker is not cut short by a default of 1024. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		log_warn_errno("cannot raise the open file limit");
}

/* The rate limiting settings from the configuration. Returns 0 or
 * -EINVAL (bad whitelist entries, each logged). */
static int rrl_conf_of(const struct config *c, struct rrl_conf *r)
{
	rrl_conf_init(r);
	r->rate = c->rrl_rate;
	r->slip = c->rrl_slip;
	r->v4_prefix = c->rrl_ipv4_prefix;
	r->v6_prefix = c->rrl_ipv6_prefix;
	r->table_size = c->rrl_table_size;
	return rrl_whitelist_parse(r, c->rrl_whitelist, c->n_rrl_whitelist) < 0
	       ? -EINVAL : 0;
}

static unsigned default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > 64 ? 64 : (unsigned)n;
}

int main(int argc, char **argv)
{
	struct server sv = { 0 };
	struct zone **zones;
	struct event *sig[3] = { 0 };
	struct geo_db *geo = NULL;
	static const int sigs[3] = { SIGHUP, SIGTERM, SIGINT };
	enum log_level lvl;
	struct rrl_conf rrl;
	unsigned failed;
	int rc;

	log_set_prog("dnsd");
	config_init(&sv.conf);
	rc = config_parse(&sv.conf, argc - 1, argv + 1);
	if (rc == 1)
		return 0;
	if (rc < 0) {
		fprintf(stderr, "dnsd: see dnsd --help\n");
		return 1;
	}
	if (log_level_parse(sv.conf.log_level, &lvl) < 0) {
		log_err("log-level: '%s' is not one of err, warn, info, debug",
			sv.conf.log_level);
		return 1;
	}
	log_set_level(lvl);
	if (!sv.conf.threads)
		sv.conf.threads = default_threads();

	zones = xcalloc(sv.conf.n_zone + 1, sizeof(*zones));
	failed = load_zones(&sv, NULL, zones);
	if (check_duplicate_apex(&sv.conf, zones) < 0)
		failed++;
	if (sv.conf.geoip && load_geo(&sv, &geo) < 0)
		failed++;
	if (sv.conf.db) {
		char err[512];

		/* Created with the current schema if missing (CONTRACT). */
		if (store_open(sv.conf.db, sv.conf.check ? STORE_RDONLY : STORE_CREATE,
			       &sv.db, err, sizeof(err)) < 0) {
			log_err("%s", err);
			failed++;
		}
	}
	if (sv.conf.default_location) {
		struct geo_loc loc;

		if (parse_default_location(sv.conf.default_location, &loc) < 0)
			failed++;
	}
	if (rrl_conf_of(&sv.conf, &rrl) < 0)
		failed++;
	if (sv.conf.xdp) {
		if (sv.conf.max_udp_size > XDP_ANSWER_MAX) {
			log_err("max-udp-size: %u is more than an XDP frame carries "
				"(at most %u with xdp)", sv.conf.max_udp_size,
				XDP_ANSWER_MAX);
			failed++;
		}
		/* When serving, xdp_new() checks this itself. */
		if (sv.conf.check)
			failed += xdp_check(sv.conf.xdp, sv.conf.listen,
					    sv.conf.n_listen);
	}
	if (sv.conf.check) {
		if (sv.db) {
			struct zone **ok = xcalloc(sv.conf.n_zone + 1, sizeof(*ok));
			struct zonetab *zt;
			struct svc_set *set = NULL;
			size_t n = 0;

			for (size_t i = 0; i < sv.conf.n_zone; i++)
				if (zones[i])
					ok[n++] = zones[i];
			zt = zonetab_build(ok, n);
			/* Skipped rows are reported, not fatal, as when serving. */
			if (!zt || load_services(&sv, &set) < 0)
				failed++;
			else
				svc_index_free(svc_index_build(set, zt));
			svc_set_free(set);
			zonetab_free(zt);
			store_close(sv.db);
			free(ok);
		}
		for (size_t i = 0; i < sv.conf.n_zone; i++)
			zone_free(zones[i]);
		geo_free(geo);
		free(zones);
		if (failed)
			fprintf(stderr, "dnsd: check: %u problem(s)\n", failed);
		else
			printf("dnsd: check: configuration and %zu zone(s) OK\n",
			       sv.conf.n_zone);
		config_fini(&sv.conf);
		return failed ? 1 : 0;
	}
	if (failed)
		fatal("%u problem(s) in the configuration; not starting", failed);
	if (!sv.conf.n_listen)
		fatal("no listen address (use --listen ADDR:PORT)");

	rcu_register_thread();
	sv.base = event_base_new();
	if (!sv.base)
		fatal("event_base_new failed");
	sv.st.started = clock_unix();
	sv.st.last_reload_ok = true;
	{
		struct snap *s = snap_clone(&sv, NULL);

		if (!s || snap_set_zones(s, zones, sv.conf.n_zone) < 0)
			fatal("out of memory building the first snapshot");
		s->geo = geo;
		if (sv.db && load_services(&sv, &s->svc) < 0)
			fatal("db %s: cannot load the services; not starting", sv.conf.db);
		if (sv.db) {
			struct hsrv_conf hc = {
				.db = sv.db,
				.db_path = sv.conf.db,
				.default_interval = sv.conf.check_interval,
				.quorum = sv.conf.quorum_percent / 100.0,
				.min_regions = sv.conf.quorum_min_regions,
				.expire_s = sv.conf.agent_expiry,
				.publish = on_health,
				.ctx = &sv,
			};

			file_id_of(sv.conf.db, &sv.db_id);
			sv.hs = hsrv_new(sv.base, &hc, &s->hv);
			if (!sv.hs)
				fatal("health: cannot start; not starting");
		}
		if (install(&sv, s) < 0)
			fatal("out of memory building the first snapshot");
	}
	free(zones);

	raise_nofile();
	sv.net = net_new(&(struct net_conf) {
		.threads = sv.conf.threads,
		.tcp_idle_timeout = sv.conf.tcp_idle_timeout,
		.tcp_max_clients = sv.conf.tcp_max_clients,
		.tcp_max_per_source = sv.conf.tcp_max_per_source,
		.rrl = &rrl,
		.xdp = sv.conf.xdp,
	}, sv.conf.listen, sv.conf.n_listen);
	if (!sv.net)
		fatal("cannot listen; not starting");
	for (int i = 0; i < 3; i++) {
		sig[i] = evsignal_new(sv.base, sigs[i], on_signal, &sv);
		if (!sig[i] || event_add(sig[i], NULL) < 0)
			fatal("cannot install signal handlers");
	}
	signal(SIGPIPE, SIG_IGN);
	{
		struct timeval tv = {
			.tv_sec = sv.conf.db_poll_ms / 1000,
			.tv_usec = (sv.conf.db_poll_ms % 1000) * 1000,
		};

		sv.poll_ev = event_new(sv.base, -1, EV_PERSIST, on_poll, &sv);
		if (!sv.poll_ev || event_add(sv.poll_ev, &tv) < 0)
			fatal("cannot start the poll timer");
	}
	if (sv.conf.api) {
		char err[512];
		struct cred_set *creds = NULL;

		if (!sv.conf.api_token_file && !sv.conf.api_tokens)
			fatal("api: --api needs --api-tokens or --api-token-file "
			      "(writes need a credential)");
		if (api_creds_load(&sv.conf, &creds, err, sizeof(err)) < 0)
			fatal("api: %s", err);
		sv.api = api_new(sv.base, sv.conf.api, NULL, &api_ops, &sv, err,
				 sizeof(err));
		if (!sv.api)
			fatal("api %s: %s", sv.conf.api, err);
		api_set_creds(sv.api, creds);
		if (api_set_limits(sv.api, sv.conf.api_max_connections,
				   sv.conf.api_request_timeout, err, sizeof(err)) < 0)
			fatal("%s", err);
		if (!!sv.conf.api_tls_cert != !!sv.conf.api_tls_key)
			fatal("api: api-tls-cert and api-tls-key come together");
		if (sv.conf.api_tls_cert &&
		    api_set_tls(sv.api, sv.conf.api_tls_cert, sv.conf.api_tls_key, err,
				sizeof(err)) < 0)
			fatal("api: %s", err);
		log_info("api: listening on %s (port %u, %s), %zu credentials",
			 sv.conf.api, api_port(sv.api),
			 sv.conf.api_tls_cert ? "https" : "http", cred_count(creds));
	}
	drop_privileges(sv.conf.user);
	drop_capabilities();
	if (net_start(sv.net) < 0)
		fatal("cannot start workers");
	for (size_t i = 0; i < sv.conf.n_listen; i++)
		log_info("listening on %s (udp, tcp), %u threads", sv.conf.listen[i],
			 sv.conf.threads);
	{
		struct timeval minute = { .tv_sec = 60 };

		sv.summary_ev = event_new(sv.base, -1, EV_PERSIST, on_summary, &sv);
		if (!sv.summary_ev || event_add(sv.summary_ev, &minute) < 0)
			fatal("cannot start the summary timer");
	}
	sd_notifyf(0, "READY=1\nSTATUS=serving, generation %llu\nMAINPID=%lu",
		   (unsigned long long)sv.snap->gen, (unsigned long)getpid());

	/* The control thread is an RCU reader only when it publishes. */
	rcu_thread_offline();
	event_base_dispatch(sv.base);
	rcu_thread_online();

	api_free(sv.api);
	hsrv_free(sv.hs);
	net_free(sv.net);
	for (int i = 0; i < 3; i++)
		event_free(sig[i]);
	event_free(sv.poll_ev);
	event_free(sv.summary_ev);
	event_base_free(sv.base);
	snap_retire(snap_publish(NULL), NULL);
	store_close(sv.db);
	rcu_unregister_thread();
	config_fini(&sv.conf);
	log_info("stopped");
	return 0;
}
