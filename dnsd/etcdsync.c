/* dnsd/etcdsync.c - the etcd replica thread (see etcdsync.h). */
#include "dnsd/etcdsync.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "cluster/etcd.h"
#include "cluster/replica.h"
#include "common/clock.h"
#include "common/log.h"
#include "db/store.h"
#include "dnsd/config.h"

/* Requests to etcd give up after this long (a stop waits at most this). */
#define REQUEST_TIMEOUT_MS 2000
/* ... but the ranges of a catch-up, which etcd takes seconds to answer
 * when they hold 100,000 audit keys (a stop then waits up to this). */
#define CATCHUP_TIMEOUT_MS 60000
/* Reconnect backoff: doubles from the first to the last. */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 3000
/* A watch that carried nothing this long is reopened (quietly), so a
 * member that stopped answering without closing is noticed. */
#define WATCH_IDLE_MS 30000
/* The node registration: its lease and how often it is refreshed. */
#define LEASE_TTL_S 10
#define LEASE_TICK_MS 3000
/* A node this many revisions behind or more catches up from ranges
 * (replica_catchup) rather than the watch's history (unless the
 * configuration says otherwise). */
#define CATCHUP_RANGE_MIN 5000
/* At most this many received events wait to be applied together. */
#define PENDING_MAX 10000

struct etcdsync {
	/* Set before the thread starts, then read-only. */
	char *prefix, *node, *db_path;
	char **urls;
	size_t n_urls;
	struct etcd *etcd;
	struct store *db;
	struct replica *rep;
	struct event_base *base;
	struct event *step_ev, *lease_ev, *stop_ev, *flush_ev;
	void (*applied)(void *arg);
	void *applied_arg;
	int64_t catchup_min;
	int stop_pipe[2];
	pthread_t thread;
	bool started;

	/* Thread only. */
	struct etcd_watch *watch;
	struct etcd_event *pend;     /* received, not applied yet */
	size_t n_pend, cap_pend;
	bool need_full;
	int backoff_ms;
	bool rotate;
	int64_t lease;
	int64_t lease_rev;           /* revision last registered */

	/* Shared with the control thread: under mu. */
	pthread_mutex_t mu;
	bool connected;
	double since;                /* of the current state */
	char cur_url[256];
	char last_error[700];
	struct replica_stats st;
};

/* After a commit: the new position for status, and the control thread
 * woken to serve it. */
static void publish(struct etcdsync *s)
{
	struct replica_stats st;

	replica_stats(s->rep, &st);
	pthread_mutex_lock(&s->mu);
	s->st = st;
	pthread_mutex_unlock(&s->mu);
	if (s->applied)
		s->applied(s->applied_arg);
}

/* The connection state: one log line each time it changes. */
static void set_state(struct etcdsync *s, bool connected, const char *url,
                      const char *why)
{
	bool changed;

	pthread_mutex_lock(&s->mu);
	changed = s->connected != connected || s->since == 0;
	if (changed) {
		s->connected = connected;
		s->since = clock_unix();
	}
	if (url)
		snprintf(s->cur_url, sizeof(s->cur_url), "%s", url);
	if (why && *why)
		snprintf(s->last_error, sizeof(s->last_error), "%s", why);
	pthread_mutex_unlock(&s->mu);
	if (!changed)
		return;
	if (connected)
		log_info("etcd: connected to %s, following %s from revision %" PRId64,
		         url, s->prefix, s->st.revision);
	else
		log_warn("etcd: disconnected (%s); serving the replica (revision "
		         "%" PRId64 ") until etcd is back", why && *why ? why : "?",
		         s->st.config_revision);
}

static void note_error(struct etcdsync *s, const char *why)
{
	pthread_mutex_lock(&s->mu);
	snprintf(s->last_error, sizeof(s->last_error), "%s", why);
	pthread_mutex_unlock(&s->mu);
}

static void schedule(struct etcdsync *s, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	evtimer_add(s->step_ev, &tv);
}

/* After a failure: try again later, at the next member. */
static void retry(struct etcdsync *s)
{
	s->rotate = true;
	schedule(s, s->backoff_ms);
	s->backoff_ms = s->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
	                                                 : s->backoff_ms * 2;
}

/* Watch responses are applied together when they come faster than they
 * are applied (a burst of writes, a watch catching up): copied here as
 * they arrive, applied in one transaction once the stream has nothing more
 * ready (or this many are waiting). */
static void pend_clear(struct etcdsync *s)
{
	for (size_t i = 0; i < s->n_pend; i++) {
		free(s->pend[i].kv.key);
		free(s->pend[i].kv.value);
	}
	s->n_pend = 0;
}

static int pend_add(struct etcdsync *s, const struct etcd_event *ev, size_t n)
{
	if (s->n_pend + n > s->cap_pend) {
		size_t cap = (s->n_pend + n) * 2;
		struct etcd_event *p = realloc(s->pend, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		s->pend = p;
		s->cap_pend = cap;
	}
	for (size_t i = 0; i < n; i++) {
		struct etcd_event *e = &s->pend[s->n_pend];

		*e = ev[i];
		e->kv.key = malloc(ev[i].kv.key_len + 1);
		e->kv.value = malloc(ev[i].kv.value_len + 1);
		if (!e->kv.key || !e->kv.value) {
			free(e->kv.key);
			free(e->kv.value);
			return -ENOMEM;
		}
		memcpy(e->kv.key, ev[i].kv.key, ev[i].kv.key_len + 1);
		memcpy(e->kv.value, ev[i].kv.value, ev[i].kv.value_len + 1);
		s->n_pend++;
	}
	return 0;
}

static void pend_flush(struct etcdsync *s)
{
	double t0 = clock_unix();
	char err[640];

	evtimer_del(s->flush_ev);
	if (s->n_pend == 0)
		return;
	if (replica_events(s->rep, s->pend, s->n_pend, err, sizeof(err)) < 0) {
		/* The store failed (disk full, locked): nothing was applied;
		 * the watch restarts from what was. */
		log_err("etcd: applying revisions %" PRId64 "..%" PRId64 ": %s",
		        s->pend[0].kv.mod_revision,
		        s->pend[s->n_pend - 1].kv.mod_revision, err);
		note_error(s, err);
		pend_clear(s);
		schedule(s, BACKOFF_MAX_MS);
		return;
	}
	log_debug("etcd: revisions %" PRId64 "..%" PRId64 ": %zu events applied "
	          "in %.1f ms", s->pend[0].kv.mod_revision,
	          s->pend[s->n_pend - 1].kv.mod_revision, s->n_pend,
	          (clock_unix() - t0) * 1e3);
	pend_clear(s);
	publish(s);
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pend_flush(arg);
}

static void on_watch(const struct etcd_watch_resp *r, void *arg)
{
	struct etcdsync *s = arg;

	switch (r->kind) {
	case ETCD_WATCH_CREATED:
		s->backoff_ms = BACKOFF_MIN_MS;
		set_state(s, true, etcd_watch_url(s->watch), NULL);
		break;
	case ETCD_WATCH_EVENTS:
		if (pend_add(s, r->events, r->n_events) < 0 ||
		    s->n_pend >= PENDING_MAX) {
			pend_flush(s);
		} else {
			struct timeval now = { 0, 0 };

			evtimer_add(s->flush_ev, &now);
		}
		break;
	case ETCD_WATCH_COMPACTED:
		pend_flush(s);
		log_warn("%s: resyncing from a full read", r->message);
		s->need_full = true;
		schedule(s, 0);
		break;
	case ETCD_WATCH_CLOSED:
		pend_flush(s);
		if (strstr(r->message, "idle timeout") && s->connected) {
			/* reopen quietly, on the next member in case this one
			 * hangs without closing */
			s->rotate = true;
			schedule(s, 0);
			break;
		}
		set_state(s, false, NULL, r->message);
		retry(s);
		break;
	}
}

/* Reads everything under the prefix and makes the store equal to it. */
static int full_sync(struct etcdsync *s)
{
	struct etcd_range rg;
	char err[640];
	int rc;

	if ((rc = etcd_range(s->etcd, s->prefix, true, 0, 0, &rg)) < 0) {
		set_state(s, false, NULL, etcd_error(s->etcd));
		return rc;
	}
	rc = replica_full(s->rep, &rg, err, sizeof(err));
	if (rc < 0) {
		log_err("etcd: full sync at revision %" PRId64 ": %s", rg.revision,
		        err);
		note_error(s, err);
	} else {
		log_info("etcd: full sync of %s at revision %" PRId64 " from %s "
		         "(%zu keys)", s->prefix, rg.revision,
		         etcd_current_url(s->etcd), rg.n);
		s->need_full = false;
		publish(s);
	}
	etcd_range_fini(&rg);
	return rc;
}

/* Far behind: every service and the audit keys written since the
 * revision applied, at one revision, applied in one transaction. 0 (also
 * when etcd is not far ahead, or cannot say), or a negative errno. */
static int catch_up(struct etcdsync *s, int64_t applied)
{
	struct etcd_range svc = { 0 }, au = { 0 };
	char key[600], err[640];
	int64_t now = 0;
	double t0 = clock_mono();
	int rc;

	if (etcd_status(s->etcd, &now, NULL, NULL) < 0 ||
	    now - applied < s->catchup_min)
		return 0;
	etcd_timeout(s->etcd, CATCHUP_TIMEOUT_MS);
	snprintf(key, sizeof(key), "%sservices/", s->prefix);
	if ((rc = etcd_range(s->etcd, key, true, 0, 0, &svc)) < 0)
		goto net;
	snprintf(key, sizeof(key), "%saudit/", s->prefix);
	if ((rc = etcd_range_since(s->etcd, key, true, svc.revision, applied + 1,
	                           &au)) < 0)
		goto net;
	if ((rc = replica_catchup(s->rep, &svc, &au, err, sizeof(err))) < 0) {
		log_err("etcd: catching up to revision %" PRId64 ": %s",
		        svc.revision, err);
		note_error(s, err);
	} else {
		log_info("etcd: caught up from revision %" PRId64 " to %" PRId64
		         " from ranges (%zu services, %zu audit keys) in %.2f s",
		         applied, svc.revision, svc.n, au.n, clock_mono() - t0);
		publish(s);
	}
	goto out;
net:
	if (rc == -ECANCELED)   /* compacted meanwhile: the watch says so */
		rc = 0;
	else
		set_state(s, false, NULL, etcd_error(s->etcd));
out:
	etcd_timeout(s->etcd, REQUEST_TIMEOUT_MS);
	etcd_range_fini(&svc);
	etcd_range_fini(&au);
	return rc;
}

/* (Re)starts following etcd: a full sync when needed (a catch-up from
 * ranges when far behind), then the watch from the revision after the
 * one applied. */
static void on_step(evutil_socket_t fd, short what, void *arg)
{
	struct etcdsync *s = arg;
	struct replica_stats st;

	(void)fd;
	(void)what;
	pend_flush(s);
	etcd_watch_free(s->watch);
	s->watch = NULL;
	replica_stats(s->rep, &st);
	if (s->need_full || st.revision == 0) {
		if (s->rotate)
			s->rotate = false;      /* the range tries every member */
		if (full_sync(s) < 0) {
			retry(s);
			return;
		}
		replica_stats(s->rep, &st);
	} else if (catch_up(s, st.revision) < 0) {
		retry(s);
		return;
	} else {
		replica_stats(s->rep, &st);
	}
	s->watch = etcd_watch_start(s->etcd, s->base, s->prefix, true,
	                            st.revision + 1, WATCH_IDLE_MS, s->rotate,
	                            on_watch, s);
	s->rotate = false;
	if (!s->watch) {
		set_state(s, false, NULL, etcd_error(s->etcd));
		retry(s);
	}
}

/* The node's registration: PREFIX nodes/NAME on a lease, holding the
 * revision applied; refreshed every tick, rewritten when it moved. */
static void on_lease(evutil_socket_t fd, short what, void *arg)
{
	struct etcdsync *s = arg;
	struct timeval tv = { LEASE_TICK_MS / 1000, (LEASE_TICK_MS % 1000) * 1000 };
	struct replica_stats st;
	char key[600];
	char *val = NULL;
	json_t *doc;
	int rc = 0;

	(void)fd;
	(void)what;
	evtimer_add(s->lease_ev, &tv);
	if (s->lease && (rc = etcd_lease_keepalive(s->etcd, s->lease, NULL)) < 0) {
		s->lease = 0;
		if (rc != -ENOENT)
			return;         /* etcd unreachable: the watch says so */
	}
	if (!s->lease) {
		if (etcd_lease_grant(s->etcd, LEASE_TTL_S, &s->lease, NULL) < 0) {
			s->lease = 0;
			return;
		}
		s->lease_rev = -1;
	}
	replica_stats(s->rep, &st);
	if (st.config_revision == s->lease_rev)
		return;
	doc = json_pack("{s:I, s:I, s:f, s:s, s:s}", "revision",
	                (json_int_t)st.config_revision, "applied",
	                (json_int_t)st.revision, "time", clock_unix(),
	                "version", DNSD_VERSION, "prefix", s->prefix);
	if (doc && (val = json_dumps(doc, JSON_COMPACT)) != NULL) {
		snprintf(key, sizeof(key), "%snodes/%s", s->prefix, s->node);
		if (etcd_put(s->etcd, key, val, strlen(val), s->lease, NULL) == 0)
			s->lease_rev = st.config_revision;
	}
	free(val);
	json_decref(doc);
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
	struct etcdsync *s = arg;

	(void)fd;
	(void)what;
	event_base_loopbreak(s->base);
}

static void *thread_main(void *arg)
{
	struct etcdsync *s = arg;

	event_base_dispatch(s->base);
	pend_flush(s);
	etcd_watch_free(s->watch);
	s->watch = NULL;
	/* Leaving: the registration goes with its lease at once. */
	if (s->lease)
		etcd_lease_revoke(s->etcd, s->lease);
	return NULL;
}

static char *dup_or(const char *a, const char *b)
{
	return strdup(a ? a : b);
}

void etcdsync_stop(struct etcdsync *s)
{
	if (!s)
		return;
	if (s->started) {
		char c = 1;

		if (write(s->stop_pipe[1], &c, 1) != 1)
			log_warn_errno("etcd: cannot signal the thread to stop");
		pthread_join(s->thread, NULL);
	}
	if (s->step_ev)
		event_free(s->step_ev);
	if (s->lease_ev)
		event_free(s->lease_ev);
	if (s->stop_ev)
		event_free(s->stop_ev);
	if (s->flush_ev)
		event_free(s->flush_ev);
	pend_clear(s);
	free(s->pend);
	if (s->base)
		event_base_free(s->base);
	for (int i = 0; i < 2; i++)
		if (s->stop_pipe[i] >= 0)
			close(s->stop_pipe[i]);
	replica_free(s->rep);
	store_close(s->db);
	etcd_free(s->etcd);
	for (size_t i = 0; i < s->n_urls; i++)
		free(s->urls[i]);
	free(s->urls);
	free(s->prefix);
	free(s->node);
	free(s->db_path);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

struct etcdsync *etcdsync_start(const struct etcdsync_conf *c, char *err,
                                size_t errlen)
{
	struct etcdsync *s = calloc(1, sizeof(*s));
	struct etcd_config ec = { .urls = c->urls, .n_urls = c->n_urls,
	                          .ca_file = c->ca_file,
	                          .cert_file = c->cert_file,
	                          .key_file = c->key_file,
	                          .timeout_ms = REQUEST_TIMEOUT_MS };
	char host[256] = "";
	const char *prefix = c->prefix ? c->prefix : REPLICA_PREFIX_DEFAULT;

	if (!s) {
		snprintf(err, errlen, "etcd: out of memory");
		return NULL;
	}
	pthread_mutex_init(&s->mu, NULL);
	s->stop_pipe[0] = s->stop_pipe[1] = -1;
	s->backoff_ms = BACKOFF_MIN_MS;
	s->applied = c->applied;
	s->applied_arg = c->applied_arg;
	s->catchup_min = c->catchup_revisions > 0 ? c->catchup_revisions
	                                          : CATCHUP_RANGE_MIN;
	if (!c->db) {
		snprintf(err, errlen, "etcd: needs --db (the node's replica of "
		         "the configuration)");
		goto fail;
	}
	if (prefix[0] != '/' || prefix[strlen(prefix) - 1] != '/') {
		snprintf(err, errlen, "etcd-prefix: '%s' must start and end with "
		         "'/' (like the default /gslb/)", prefix);
		goto fail;
	}
	if (!c->node && (gethostname(host, sizeof(host) - 1) < 0 || !host[0]))
		snprintf(host, sizeof(host), "dnsd-%ld", (long)getpid());
	if (c->node && (!*c->node || strchr(c->node, '/'))) {
		snprintf(err, errlen, "node-name: '%s' must be non-empty, "
		         "without '/'", c->node);
		goto fail;
	}
	if (!(s->etcd = etcd_new(&ec, err, errlen)))
		goto fail;
	s->prefix = strdup(prefix);
	s->node = dup_or(c->node, host);
	s->db_path = strdup(c->db);
	s->urls = calloc(c->n_urls, sizeof(*s->urls));
	if (!s->prefix || !s->node || !s->db_path || !s->urls) {
		snprintf(err, errlen, "etcd: out of memory");
		goto fail;
	}
	for (size_t i = 0; i < c->n_urls; i++) {
		if (!(s->urls[i] = strdup(c->urls[i]))) {
			snprintf(err, errlen, "etcd: out of memory");
			goto fail;
		}
		s->n_urls++;
	}
	if (store_open(c->db, STORE_CREATE, &s->db, err, errlen) < 0)
		goto fail;
	if (!(s->rep = replica_new(s->db, s->prefix, err, errlen)))
		goto fail;
	replica_stats(s->rep, &s->st);
	if (pipe2(s->stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0 ||
	    !(s->base = event_base_new()) ||
	    !(s->step_ev = evtimer_new(s->base, on_step, s)) ||
	    !(s->lease_ev = evtimer_new(s->base, on_lease, s)) ||
	    !(s->flush_ev = evtimer_new(s->base, on_flush, s)) ||
	    !(s->stop_ev = event_new(s->base, s->stop_pipe[0], EV_READ, on_stop,
	                             s)) ||
	    event_add(s->stop_ev, NULL) < 0) {
		snprintf(err, errlen, "etcd: cannot set up the event loop");
		goto fail;
	}
	snprintf(s->cur_url, sizeof(s->cur_url), "%s", etcd_current_url(s->etcd));
	schedule(s, 0);
	{
		struct timeval tv = { 0, 0 };

		evtimer_add(s->lease_ev, &tv);
	}
	log_info("etcd: node %s follows %s on %zu member(s); the replica %s is "
	         "at revision %" PRId64 "%s", s->node, s->prefix, s->n_urls,
	         s->db_path, s->st.revision,
	         s->st.revision ? "" : " (a full read comes first)");
	if (pthread_create(&s->thread, NULL, thread_main, s) != 0) {
		snprintf(err, errlen, "etcd: cannot start the thread");
		goto fail;
	}
	s->started = true;
	pthread_setname_np(s->thread, "dnsd-etcd");   /* for top -H, /proc */
	return s;
fail:
	etcdsync_stop(s);
	return NULL;
}

int64_t etcdsync_config_revision(struct etcdsync *s)
{
	int64_t v;

	pthread_mutex_lock(&s->mu);
	v = s->st.config_revision;
	pthread_mutex_unlock(&s->mu);
	return v;
}

bool etcdsync_connected(struct etcdsync *s)
{
	bool v;

	pthread_mutex_lock(&s->mu);
	v = s->connected;
	pthread_mutex_unlock(&s->mu);
	return v;
}

json_t *etcdsync_status_json(struct etcdsync *s)
{
	json_t *urls = json_array(), *o;

	for (size_t i = 0; urls && i < s->n_urls; i++)
		json_array_append_new(urls, json_string(s->urls[i]));
	pthread_mutex_lock(&s->mu);
	o = json_pack("{s:b, s:f, s:o, s:s, s:o, s:s, s:s, s:I, s:I, s:I, s:I, "
	              "s:I, s:I}",
	              "connected", s->connected, "since", s->since,
	              "urls", urls ? urls : json_array(), "url", s->cur_url,
	              "last_error", s->last_error[0] ? json_string(s->last_error)
	                                             : json_null(),
	              "prefix", s->prefix,
	              "node", s->node,
	              "revision", (json_int_t)s->st.revision,
	              "config_revision", (json_int_t)s->st.config_revision,
	              "invalid", (json_int_t)s->st.invalid,
	              "resyncs", (json_int_t)s->st.resyncs,
	              "catchups", (json_int_t)s->st.catchups,
	              "changes", (json_int_t)s->st.changes);
	pthread_mutex_unlock(&s->mu);
	return o;
}

int etcdsync_metrics(struct etcdsync *s, struct evbuffer *out)
{
	struct replica_stats st;
	bool connected;
	int rc = 0;

	pthread_mutex_lock(&s->mu);
	st = s->st;
	connected = s->connected;
	pthread_mutex_unlock(&s->mu);
	rc |= evbuffer_add_printf(out,
		"# HELP dnsd_etcd_connected 1 while a watch on etcd is open, else 0 "
		"(answers then come from the replica as it was).\n"
		"# TYPE dnsd_etcd_connected gauge\n"
		"dnsd_etcd_connected %d\n"
		"# HELP dnsd_etcd_revision etcd revision up to which the replica "
		"has applied everything under the prefix.\n"
		"# TYPE dnsd_etcd_revision gauge\n"
		"dnsd_etcd_revision %" PRId64 "\n"
		"# HELP dnsd_etcd_resyncs_total Full reads of the prefix (the first "
		"one, and after etcd compacted past the replica's revision).\n"
		"# TYPE dnsd_etcd_resyncs_total counter\n"
		"dnsd_etcd_resyncs_total %" PRIu64 "\n"
		"# HELP dnsd_etcd_invalid_total Values in etcd skipped as invalid "
		"(not JSON, not a valid service, a name other than the key's).\n"
		"# TYPE dnsd_etcd_invalid_total counter\n"
		"dnsd_etcd_invalid_total %" PRIu64 "\n"
		"# HELP dnsd_etcd_catchups_total Catch-ups from ranges (the node "
		"was far behind: the current services and the audit keys written "
		"since, instead of the watch's history).\n"
		"# TYPE dnsd_etcd_catchups_total counter\n"
		"dnsd_etcd_catchups_total %" PRIu64 "\n"
		"# HELP dnsd_etcd_changes_total Changes applied to the replica.\n"
		"# TYPE dnsd_etcd_changes_total counter\n"
		"dnsd_etcd_changes_total %" PRIu64 "\n",
		connected, st.revision, st.resyncs, st.invalid, st.catchups,
		st.changes) < 0;
	return rc ? -ENOMEM : 0;
}
