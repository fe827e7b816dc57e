/* dnsd/dnsd_main.c - the dnsd program: configuration, the control thread
 * (signals, reloads, snapshot builds) and the worker threads (net.c).
 * Everything here is load time; the query path lives in net.c/answer.c. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <urcu-qsbr.h>

#include "common/log.h"
#include "common/xalloc.h"
#include "dnsd/config.h"
#include "dnsd/net.h"
#include "dnsd/snap.h"
#include "dnsd/zone.h"

struct server {
	struct config conf;
	struct event_base *base;
	struct net *net;
	struct snap *snap;           /* the one in force (control thread) */
	uint64_t gen;
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

/* Loads every zone file. On a file that fails, keeps old[i] when there is
 * one (reload) and counts the failure. Returns the number of failures. */
static unsigned load_zones(const struct config *c, struct zone **old,
			   struct zone **out)
{
	unsigned failed = 0;

	for (size_t i = 0; i < c->n_zone; i++) {
		char err[512];
		int rc = zone_load(c->zone[i], NULL, &out[i], err, sizeof(err));

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

static struct snap *snap_build(struct server *sv, struct zone **zones)
{
	struct snap *s = calloc(1, sizeof(*s));
	size_t n = 0;

	if (!s)
		return NULL;
	s->zones = calloc(sv->conf.n_zone ? sv->conf.n_zone : 1, sizeof(*s->zones));
	if (!s->zones) {
		free(s);
		return NULL;
	}
	for (size_t i = 0; i < sv->conf.n_zone; i++)
		if (zones[i])
			s->zones[n++] = zones[i];
	s->n_zones = n;
	s->zt = zonetab_build(s->zones, n);
	if (!s->zt) {
		free(s->zones);
		free(s);
		return NULL;
	}
	answer_conf_init(&sv->conf, &s->conf);
	s->gen = ++sv->gen;
	return s;
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
	free(old->zones);
	free(old);
}

static void install(struct server *sv, struct snap *s)
{
	struct snap *old = snap_publish(s);

	snap_retire(old, s);
	sv->snap = s;
}

/* SIGHUP: reparse every zone file off the query path; a file that fails
 * keeps its old zone serving. */
static void reload(struct server *sv)
{
	struct zone **old = xcalloc(sv->conf.n_zone + 1, sizeof(*old));
	struct zone **nz = xcalloc(sv->conf.n_zone + 1, sizeof(*nz));
	struct snap *s;
	unsigned failed;

	/* The old zones, by file position (a failed file may have none). */
	for (size_t i = 0; i < sv->conf.n_zone; i++)
		for (size_t k = 0; k < sv->snap->n_zones; k++)
			if (strcmp(sv->snap->zones[k]->file, sv->conf.zone[i]) == 0)
				old[i] = sv->snap->zones[k];
	failed = load_zones(&sv->conf, old, nz);
	if (check_duplicate_apex(&sv->conf, nz) < 0) {
		for (size_t i = 0; i < sv->conf.n_zone; i++)
			if (nz[i] != old[i])
				zone_free(nz[i]);
		log_err("reload: failed, keeping everything loaded before");
		goto out;
	}
	s = snap_build(sv, nz);
	if (!s) {
		for (size_t i = 0; i < sv->conf.n_zone; i++)
			if (nz[i] != old[i])
				zone_free(nz[i]);
		log_err("reload: out of memory, keeping everything loaded before");
		goto out;
	}
	install(sv, s);
	log_info("reload: generation %llu, %zu zones, %u failed",
		 (unsigned long long)s->gen, s->n_zones, failed);
out:
	free(old);
	free(nz);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct server *sv = arg;

	(void)what;
	if (sig == SIGHUP) {
		log_info("SIGHUP: reloading");
		reload(sv);
		return;
	}
	log_info("signal %d: stopping", (int)sig);
	event_base_loopbreak(sv->base);
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
	static const int sigs[3] = { SIGHUP, SIGTERM, SIGINT };
	enum log_level lvl;
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
	failed = load_zones(&sv.conf, NULL, zones);
	if (check_duplicate_apex(&sv.conf, zones) < 0)
		failed++;
	if (sv.conf.check) {
		for (size_t i = 0; i < sv.conf.n_zone; i++)
			zone_free(zones[i]);
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
		fatal("%u zone file(s) failed to load; not starting", failed);
	if (!sv.conf.n_listen)
		fatal("no listen address (use --listen ADDR:PORT)");

	rcu_register_thread();
	{
		struct snap *s = snap_build(&sv, zones);

		if (!s)
			fatal("out of memory building the first snapshot");
		install(&sv, s);
	}
	free(zones);

	sv.net = net_new(&(struct net_conf) {
		.threads = sv.conf.threads,
		.tcp_idle_timeout = sv.conf.tcp_idle_timeout,
		.tcp_max_clients = sv.conf.tcp_max_clients,
	}, sv.conf.listen, sv.conf.n_listen);
	if (!sv.net)
		fatal("cannot listen; not starting");
	sv.base = event_base_new();
	if (!sv.base)
		fatal("event_base_new failed");
	for (int i = 0; i < 3; i++) {
		sig[i] = evsignal_new(sv.base, sigs[i], on_signal, &sv);
		if (!sig[i] || event_add(sig[i], NULL) < 0)
			fatal("cannot install signal handlers");
	}
	signal(SIGPIPE, SIG_IGN);
	if (net_start(sv.net) < 0)
		fatal("cannot start workers");
	for (size_t i = 0; i < sv.conf.n_listen; i++)
		log_info("listening on %s (udp, tcp), %u threads", sv.conf.listen[i],
			 sv.conf.threads);

	/* The control thread is an RCU reader only when it publishes. */
	rcu_thread_offline();
	event_base_dispatch(sv.base);
	rcu_thread_online();

	net_free(sv.net);
	for (int i = 0; i < 3; i++)
		event_free(sig[i]);
	event_base_free(sv.base);
	snap_retire(snap_publish(NULL), NULL);
	rcu_unregister_thread();
	config_fini(&sv.conf);
	log_info("stopped");
	return 0;
}
