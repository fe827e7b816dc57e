/* dnsd/hsrv.c - see hsrv.h. Control thread only. */
#include "dnsd/hsrv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "db/damping.h"
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
	/* Flap damping by endpoint id: thresholds (from the store, per
	 * service) and state. */
	struct damp_conf *dconf;
	size_t n_dconf;
	struct damp_state *dst;
	size_t n_dst;
};

static const struct damp_conf *dconf_of(const struct hsrv *h, uint32_t id)
{
	static struct damp_conf def;

	if (id < h->n_dconf)
		return &h->dconf[id];
	if (!def.penalty)
		damp_conf_default(&def);
	return &def;
}

/* The damping state of id, grown on demand; NULL when out of memory. */
static struct damp_state *dst_of(struct hsrv *h, uint32_t id)
{
	if (id >= h->n_dst) {
		size_t n = h->n_dst ? h->n_dst : 64;
		struct damp_state *v;

		while (n <= id)
			n *= 2;
		if (!(v = realloc(h->dst, n * sizeof(*v))))
			return NULL;
		memset(v + h->n_dst, 0, (n - h->n_dst) * sizeof(*v));
		h->dst = v;
		h->n_dst = n;
	}
	return &h->dst[id];
}

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
	if (h->conf.event) {
		char text[HSTATE_REASON_MAX + 64];

		snprintf(text, sizeof(text), "%s%s -> %s%s: %s",
			 hstate_state_name(e->old_state),
			 e->old_stale ? " (stale)" : "",
			 hstate_state_name(e->new_state),
			 e->new_stale ? " (stale)" : "", e->reason);
		h->conf.event(h->conf.ctx, label_of(h, e->id), text);
	}
}

/* An up/down change of the quorum state adds a damping penalty. */
static void damp_event(struct hsrv *h, const struct hstate_event *e)
{
	struct damp_state *d;
	const struct damp_conf *c = dconf_of(h, e->id);

	if (!((e->old_state == HSTATE_UP && e->new_state == HSTATE_DOWN) ||
	      (e->old_state == HSTATE_DOWN && e->new_state == HSTATE_UP)) ||
	    !(d = dst_of(h, e->id)))
		return;
	if (damp_flap(d, c, e->at > 0 ? e->at : clock_unix()))
		log_warn("health: endpoint %u (%s): suppressed by flap damping "
			 "(penalty %.0f above %.0f) for %.0f s", e->id,
			 label_of(h, e->id), d->penalty, c->suppress,
			 damp_reuse_at(d, c) - d->at);
	h->dirty = true;
}

static void event_seen(struct hsrv *h, const struct hstate_event *e)
{
	log_event(h, e);
	damp_event(h, e);
}

/* Suppressed endpoints whose penalty decayed below reuse come back. */
static void damp_tick(struct hsrv *h, double now)
{
	for (size_t id = 0; id < h->n_dst; id++) {
		struct damp_state *d = &h->dst[id];

		if (d->penalty <= 0 && !d->suppressed)
			continue;
		if (damp_update(d, dconf_of(h, (uint32_t)id), now)) {
			log_info("health: endpoint %zu (%s): flap damping ends "
				 "(penalty %.0f)", id,
				 label_of(h, (uint32_t)id), d->penalty);
			h->dirty = true;
		}
	}
}

/* The check interval of endpoint id (its check's, else the default). */
static double interval_of(struct hsrv *h, uint32_t id)
{
	json_t *c;
	size_t i;

	json_array_foreach(json_object_get(h->checks, "checks"), i, c) {
		if (json_integer_value(json_object_get(c, "id")) == id) {
			json_t *iv = json_object_get(c, "interval");

			if (json_is_number(iv) && json_number_value(iv) > 0)
				return json_number_value(iv);
			break;
		}
	}
	return h->conf.default_interval > 0 ? h->conf.default_interval : 10;
}

/* When an endpoint's state may change soon: a fresh agent whose latest
 * result disagrees with its own state is rising or falling - the quorum
 * state may follow within about one check interval. */
static void mark_in_progress(struct hsrv *h, struct hstate_view *v,
			     double now)
{
	struct hstate_rows rows;

	if (hstate_export(h->st, now, &rows) < 0)
		return;
	for (size_t i = 0; i < rows.n_obs; i++) {
		const struct hstate_obs_row *o = &rows.obs[i];

		if (o->fresh && ((o->state == HSTATE_UP && !o->ok) ||
				 (o->state == HSTATE_DOWN && o->ok)))
			hstate_view_change_at(v, o->endpoint_id,
					      now + interval_of(h, o->endpoint_id));
	}
	hstate_rows_fini(&rows);
}

/* A view of the health with suppressed endpoints down, and when each
 * endpoint may change (damping reuse, rise/fall in progress). */
static struct hstate_view *view_build(struct hsrv *h)
{
	struct hstate_view *v = hstate_view_build(h->st);
	double now = clock_unix();

	for (size_t id = 0; v && id < h->n_dst && id < v->n; id++) {
		if (!h->dst[id].suppressed)
			continue;
		hstate_view_set(v, (uint32_t)id, HSTATE_DOWN);
		hstate_view_change_at(v, (uint32_t)id,
				      damp_reuse_at(&h->dst[id],
						    dconf_of(h, (uint32_t)id)));
	}
	if (v)
		mark_in_progress(h, v, now);
	return v;
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
	{
		struct damp_conf *dc;
		size_t ndc;

		if (damping_by_endpoint(h->db, &dc, &ndc, err, sizeof(err)) < 0) {
			log_err("health: %s (keeping the damping thresholds "
				"loaded before)", err);
		} else {
			free(h->dconf);
			h->dconf = dc;
			h->n_dconf = ndc;
		}
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
	if (h->n_dst) {
		struct damp_conf *c = calloc(h->n_dst, sizeof(*c));

		for (size_t id = 0; c && id < h->n_dst; id++)
			c[id] = *dconf_of(h, (uint32_t)id);
		if (!c || damping_state_save(h->db, h->dst, c, h->n_dst, err,
					     sizeof(err)) < 0)
			log_err("health: cannot persist flap damping: %s",
				c ? err : "out of memory");
		free(c);
	}
}

/* Logs queued transitions; then, if anything changed, persists and
 * publishes a new view. */
static void flush(struct hsrv *h)
{
	struct hstate_event ev[EVENTS_MAX];
	size_t n;

	while ((n = hstate_take_events(h->st, ev, EVENTS_MAX)) > 0) {
		for (size_t i = 0; i < n; i++)
			event_seen(h, &ev[i]);
		h->dirty = true;
	}
	if (!h->dirty)
		return;
	h->dirty = false;
	save(h);
	{
		struct hstate_view *v = view_build(h);

		if (v)
			h->conf.publish(h->conf.ctx, v);
		else
			log_err("health: out of memory building a view");
	}
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct hsrv *h = arg;

	size_t na0, nr0, na, nr;

	(void)fd;
	(void)what;
	hstate_counts(h->st, &na0, &nr0);
	hstate_tick(h->st, clock_unix());
	hstate_counts(h->st, &na, &nr);
	if (na != na0 || nr != nr0) {
		log_info("health: forgot %zu agents and %zu regions silent for "
			 "%.0f s or more", na0 - na, nr0 - nr, h->conf.expire_s);
		h->dirty = true;
	}
	damp_tick(h, clock_unix());
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
	p.min_regions = c->min_regions;
	p.expire_s = c->expire_s;
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
	{
		struct damp_state *ds;
		size_t nds;

		if (damping_state_load(h->db, &ds, &nds, err, sizeof(err)) < 0) {
			log_warn("health: %s (flap damping starts afresh)", err);
		} else {
			h->dst = ds;
			h->n_dst = nds;
			damp_tick(h, clock_unix());
		}
	}
	log_info("health: %zu checked endpoints, state restored from %s",
		 json_array_size(json_object_get(h->checks, "checks")), c->db_path);
	h->tick = event_new(base, -1, EV_PERSIST, on_tick, h);
	if (!h->tick || event_add(h->tick, &tv) < 0)
		goto fail;
	h->dirty = false;
	*view = view_build(h);
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
	free(h->dconf);
	free(h->dst);
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
		event_seen(h, &ev);
		flush(h);
	}
	return 0;
}

const struct hstate *hsrv_state(const struct hsrv *h)
{
	return h->st;
}

json_t *hsrv_damping_json(struct hsrv *h)
{
	json_t *o = json_object();
	double now = clock_unix();
	char key[24];

	for (size_t id = 0; o && id < h->n_dst; id++) {
		const struct damp_state *d = &h->dst[id];
		const struct damp_conf *c = dconf_of(h, (uint32_t)id);
		double reuse = damp_reuse_at(d, c);

		if (d->penalty <= 0 && !d->suppressed)
			continue;
		snprintf(key, sizeof(key), "%zu", id);
		json_object_set_new(o, key, json_pack(
			"{s:s, s:f, s:b, s:o, s:f, s:f}",
			"endpoint", label_of(h, (uint32_t)id),
			"penalty", damp_penalty(d, c, now),
			"suppressed", d->suppressed,
			"reuse_at", reuse > 0 ? json_real(reuse) : json_null(),
			"suppress_limit", c->suppress,
			"reuse_limit", c->reuse));
	}
	return o;
}

/* service="...",target="..." of endpoint id (names and addresses hold no
 * quote or backslash). */
static const char *ep_labels(struct hsrv *h, uint32_t id, char *buf,
			     size_t cap)
{
	const char *l = label_of(h, id), *sp = strchr(l, ' ');

	if (sp)
		snprintf(buf, cap, "service=\"%.*s\",target=\"%s\"",
			 (int)(sp - l), l, sp + 1);
	else
		snprintf(buf, cap, "service=\"?\",target=\"%u\"", id);
	return buf;
}

int hsrv_damping_metrics(struct hsrv *h, struct evbuffer *out)
{
	char lab[640];
	double now = clock_unix();
	int rc = 0;
	bool any = false;

	/* A family is declared only with samples (none before a flap). */
	for (size_t id = 0; id < h->n_dst; id++)
		any |= h->dst[id].penalty > 0 || h->dst[id].suppressed;
	if (!any)
		return 0;
	rc |= evbuffer_add_printf(out,
		"# HELP dnsd_endpoint_damping_penalty Flap damping penalty of an "
		"endpoint (decayed to now).\n"
		"# TYPE dnsd_endpoint_damping_penalty gauge\n") < 0;
	for (size_t id = 0; id < h->n_dst; id++)
		if (h->dst[id].penalty > 0 || h->dst[id].suppressed)
			rc |= evbuffer_add_printf(out,
				"dnsd_endpoint_damping_penalty{%s} %.1f\n",
				ep_labels(h, (uint32_t)id, lab, sizeof(lab)),
				damp_penalty(&h->dst[id],
					     dconf_of(h, (uint32_t)id), now)) < 0;
	rc |= evbuffer_add_printf(out,
		"# HELP dnsd_endpoint_damping_suppressed 1 while flap damping "
		"keeps an endpoint out of the answers.\n"
		"# TYPE dnsd_endpoint_damping_suppressed gauge\n") < 0;
	for (size_t id = 0; id < h->n_dst; id++)
		if (h->dst[id].penalty > 0 || h->dst[id].suppressed)
			rc |= evbuffer_add_printf(out,
				"dnsd_endpoint_damping_suppressed{%s} %d\n",
				ep_labels(h, (uint32_t)id, lab, sizeof(lab)),
				h->dst[id].suppressed) < 0;
	return rc ? -ENOMEM : 0;
}
