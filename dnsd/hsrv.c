/* dnsd/hsrv.c - see hsrv.h. Control thread only. */
#include "dnsd/hsrv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "db/health_store.h"
#include "db/store.h"

#define TICK_MS 1000
#define EVENTS_MAX 256

struct hsrv {
	struct hsrv_conf conf;
	struct hstate *st;
	struct store *db;            /* borrowed: see hsrv_conf */
	json_t *checks;              /* the document served to agents */
	json_t *labels;              /* id (text) -> "service target", for logs */
	long long generation;
	struct event *tick;
	bool dirty;                  /* unsaved, unpublished changes */
	char err[512];               /* the save problem last logged */
};

static const char *label_of(struct hsrv *h, uint32_t id)
{
	char key[16];
	json_t *v;

	snprintf(key, sizeof(key), "%u", id);
	v = json_object_get(h->labels, key);
	return v ? json_string_value(v) : "?";
}

static void log_event(struct hsrv *h, const struct hstate_event *e)
{
	/* One line per transition, subject first. */
	log_info("health: endpoint %u (%s): %s%s -> %s%s: %s", e->id,
		 label_of(h, e->id), hstate_state_name(e->old_state),
		 e->old_stale ? " (stale)" : "", hstate_state_name(e->new_state),
		 e->new_stale ? " (stale)" : "", e->reason);
}

static int load_checks(struct hsrv *h)
{
	json_t *doc = NULL, *labels, *c;
	struct hstate_ep *eps = NULL;
	size_t n = 0, i;
	char err[512];
	int rc;

	rc = hstore_checks(h->db, h->conf.default_interval, h->generation + 1,
			   &doc, &eps, &n, err, sizeof(err));
	if (rc < 0) {
		log_err("health: %s (keeping the check list loaded before)", err);
		return rc;
	}
	rc = hstate_set_endpoints(h->st, eps, n);
	free(eps);
	if (rc < 0) {
		log_err("health: cannot set %zu checked endpoints: %s", n, strerror(-rc));
		json_decref(doc);
		return rc;
	}
	labels = json_object();
	json_array_foreach(json_object_get(doc, "checks"), i, c) {
		char key[16], text[600];

		snprintf(key, sizeof(key), "%lld",
			 (long long)json_integer_value(json_object_get(c, "id")));
		snprintf(text, sizeof(text), "%s %s",
			 json_string_value(json_object_get(c, "service")) ?: "?",
			 json_string_value(json_object_get(c, "target")) ?: "?");
		json_object_set_new(labels, key, json_string(text));
	}
	json_decref(h->checks);
	json_decref(h->labels);
	h->checks = doc;
	h->labels = labels;
	h->generation++;
	h->dirty = true;
	return 0;
}

static void save(struct hsrv *h)
{
	struct hstate_rows rows;
	char err[512];
	size_t skipped = 0;

	if (hstate_export(h->st, clock_unix(), &rows) < 0) {
		log_err("health: out of memory exporting the state");
		return;
	}
	if (hstore_save(h->db, &rows, &skipped, err, sizeof(err)) < 0) {
		if (strcmp(err, h->err) != 0)
			log_err("health: cannot persist: %s", err);
		snprintf(h->err, sizeof(h->err), "%s", err);
	} else {
		h->err[0] = 0;
	}
	hstate_rows_fini(&rows);
}

/* Logs queued transitions; then, if anything changed, persists and
 * publishes a new view. */
static void flush(struct hsrv *h)
{
	struct hstate_event ev[EVENTS_MAX];
	size_t n;

	while ((n = hstate_take_events(h->st, ev, EVENTS_MAX)) > 0) {
		for (size_t i = 0; i < n; i++)
			log_event(h, &ev[i]);
		h->dirty = true;
	}
	if (!h->dirty)
		return;
	h->dirty = false;
	save(h);
	{
		struct hstate_view *v = hstate_view_build(h->st);

		if (v)
			h->conf.publish(h->conf.ctx, v);
		else
			log_err("health: out of memory building a view");
	}
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct hsrv *h = arg;

	(void)fd;
	(void)what;
	hstate_tick(h->st, clock_unix());
	flush(h);
}

struct hsrv *hsrv_new(struct event_base *base, const struct hsrv_conf *c,
		      struct hstate_view **view)
{
	struct hsrv *h = calloc(1, sizeof(*h));
	struct hstate_params p;
	char err[512];
	size_t skipped = 0;
	struct timeval tv = { .tv_sec = TICK_MS / 1000,
			      .tv_usec = (TICK_MS % 1000) * 1000 };

	*view = NULL;
	if (!h)
		return NULL;
	h->conf = *c;
	hstate_params_default(&p);
	if (c->quorum > 0)
		p.quorum = c->quorum;
	h->st = hstate_new(&p);
	if (!h->st) {
		log_err("health: bad parameters (quorum %.2f)", c->quorum);
		goto fail;
	}
	h->db = c->db;
	/* Health is rebuilt from agents within seconds: it need not pay for
	 * a full fsync per batch (config writes by gslbctl stay FULL). */
	store_relax_durability(h->db);
	if (load_checks(h) < 0)
		goto fail;
	if (hstore_restore(h->db, h->st, &skipped, err, sizeof(err)) < 0) {
		log_err("health: %s", err);
		goto fail;
	}
	log_info("health: %zu checked endpoints, state restored from %s",
		 json_array_size(json_object_get(h->checks, "checks")), c->db_path);
	h->tick = event_new(base, -1, EV_PERSIST, on_tick, h);
	if (!h->tick || event_add(h->tick, &tv) < 0)
		goto fail;
	h->dirty = false;
	*view = hstate_view_build(h->st);
	if (!*view)
		goto fail;
	return h;
fail:
	hsrv_free(h);
	return NULL;
}

void hsrv_free(struct hsrv *h)
{
	if (!h)
		return;
	if (h->db && h->st)
		save(h);
	if (h->tick)
		event_free(h->tick);
	json_decref(h->checks);
	json_decref(h->labels);
	hstate_free(h->st);
	free(h);
}

void hsrv_reload(struct hsrv *h, struct store *db)
{
	h->db = db;
	load_checks(h);
}

json_t *hsrv_checks(struct hsrv *h)
{
	return json_incref(h->checks);
}

int hsrv_report(struct hsrv *h, const struct hstate_agent *a,
		const struct hstate_result *res, size_t n, char *err,
		size_t errlen)
{
	int rc = hstate_report(h->st, a, res, n, clock_unix(), err, errlen);
	struct hstate_event ev;
	size_t k;

	if (rc < 0)
		return rc;
	h->dirty = true;
	/* A transition is published at once, so failover does not wait for
	 * the next tick; RTT-only changes wait for it (at most one view a
	 * second from them). */
	k = hstate_take_events(h->st, &ev, 1);
	if (k) {
		log_event(h, &ev);
		flush(h);
	}
	return 0;
}

const struct hstate *hsrv_state(const struct hsrv *h)
{
	return h->st;
}
