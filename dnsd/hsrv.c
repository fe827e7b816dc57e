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
/* Reports that change no endpoint's state (a newer receive time, an RTT)
 * are written to the store at most this often; a transition is written at
 * the next tick with everything pending. Writing every reported row each
 * second was most of the control thread's time with many agents. */
#define SAVE_EVERY_S 10.0

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
	/* The checked endpoints and their intervals, by id (for lookups). */
	struct hstate_ep *ivals;
	size_t n_ivals;
	/* The last view published (one reference held): the next one is
	 * built from it when only some endpoints changed. */
	struct hstate_view *last;
	/* Endpoints whose flap damping changed since the last view. */
	uint32_t *ddirty;
	size_t n_ddirty, cap_ddirty;
	bool ddirty_all;
	/* Endpoints changed since the last save (SAVE_EVERY_S), and when
	 * that was. */
	uint32_t *pend;
	size_t n_pend, cap_pend;
	bool pend_all;
	double saved_at;
};

/* Notes that id's damping changed (its view cell must be redone). */
static void damp_dirty(struct hsrv *h, uint32_t id)
{
	if (h->ddirty_all)
		return;
	if (h->n_ddirty == h->cap_ddirty) {
		size_t cap = h->cap_ddirty ? 2 * h->cap_ddirty : 64;
		uint32_t *n = realloc(h->ddirty, cap * sizeof(*n));

		if (!n) {
			h->ddirty_all = true;
			return;
		}
		h->ddirty = n;
		h->cap_ddirty = cap;
	}
	h->ddirty[h->n_ddirty++] = id;
}

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
	damp_dirty(h, e->id);
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
			damp_dirty(h, (uint32_t)id);
			h->dirty = true;
		}
	}
}

/* The check interval of endpoint id (its check's, else the default). */
static double interval_of(struct hsrv *h, uint32_t id)
{
	size_t lo = 0, hi = h->n_ivals;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (h->ivals[mid].id == id)
			return h->ivals[mid].interval;
		if (h->ivals[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return h->conf.default_interval > 0 ? h->conf.default_interval : 10;
}

/* What the view says of id besides hstate's state: down while flap
 * damping suppresses it (until reuse), and when its state may change - a
 * fresh agent whose latest result disagrees with its own state is rising
 * or falling: the quorum state may follow within about one check
 * interval. 0 or -ENOMEM. */
static int view_mark(struct hsrv *h, struct hstate_view *v, uint32_t id,
		     double now)
{
	if (id < h->n_dst && h->dst[id].suppressed &&
	    (hstate_view_set(v, id, HSTATE_DOWN) < 0 ||
	     hstate_view_change_at(v, id, damp_reuse_at(&h->dst[id],
							 dconf_of(h, id))) < 0))
		return -ENOMEM;
	if (hstate_in_progress(h->st, id, now) &&
	    hstate_view_change_at(v, id, now + interval_of(h, id)) < 0)
		return -ENOMEM;
	return 0;
}

/* A view of the health with suppressed endpoints down, and when each
 * endpoint may change (damping reuse, rise/fall in progress): from the
 * last view when only some endpoints changed (ids[0..n), all: every
 * one), cell by cell, else whole. */
static struct hstate_view *view_build_from(struct hsrv *h, const uint32_t *ids,
					   size_t n, bool all)
{
	struct hstate_view *v = NULL;
	double now = clock_unix();

	if (!all && h->last && !h->ddirty_all) {
		uint32_t *both = malloc((n + h->n_ddirty + 1) * sizeof(*both));

		if (both) {
			if (n)
				memcpy(both, ids, n * sizeof(*both));
			if (h->n_ddirty)
				memcpy(both + n, h->ddirty,
				       h->n_ddirty * sizeof(*both));
			v = hstate_view_update(h->last, h->st, both,
					       n + h->n_ddirty);
			for (size_t i = 0; v && i < n + h->n_ddirty; i++)
				if (view_mark(h, v, both[i], now) < 0) {
					hstate_view_free(v);
					v = NULL;
				}
			free(both);
		}
	}
	if (!v) {
		v = hstate_view_build(h->st);
		for (size_t i = 0; v && i < h->n_ivals; i++)
			if (view_mark(h, v, h->ivals[i].id, now) < 0) {
				hstate_view_free(v);
				v = NULL;
			}
		for (size_t id = 0; v && id < h->n_dst; id++)
			if (h->dst[id].suppressed &&
			    view_mark(h, v, (uint32_t)id, now) < 0) {
				hstate_view_free(v);
				v = NULL;
			}
	}
	if (v) {
		h->n_ddirty = 0;
		h->ddirty_all = false;
		hstate_view_free(h->last);
		h->last = hstate_view_ref(v);
	}
	return v;
}

static struct hstate_view *view_build(struct hsrv *h)
{
	uint32_t *ids = NULL;
	size_t n = 0;
	bool all;
	struct hstate_view *v;

	hstate_take_dirty(h->st, &ids, &n, &all);
	v = view_build_from(h, ids, n, all);
	free(ids);
	return v;
}

/* The damping thresholds by endpoint id, read again (on failure the ones
 * loaded before stay, logged). */
static void load_damping(struct hsrv *h)
{
	struct damp_conf *dc;
	size_t ndc;
	char err[512];

	if (damping_by_endpoint(h->db, &dc, &ndc, err, sizeof(err)) < 0) {
		log_err("health: %s (keeping the damping thresholds loaded "
			"before)", err);
		return;
	}
	free(h->dconf);
	h->dconf = dc;
	h->n_dconf = ndc;
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
	if (rc < 0) {
		log_err("health: cannot set %zu checked endpoints: %s", n, strerror(-rc));
		free(eps);
		json_decref(doc);
		return rc;
	}
	/* hstore_checks lists them by id. */
	free(h->ivals);
	h->ivals = eps;
	h->n_ivals = n;
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
	load_damping(h);
	json_decref(h->checks);
	json_decref(h->labels);
	h->checks = doc;
	h->labels = labels;
	h->generation++;
	h->dirty = true;
	return 0;
}

/* Persists the endpoints ids[0..n) (all: everything). */
static void save_some(struct hsrv *h, const uint32_t *ids, size_t n, bool all)
{
	struct hstate_rows rows;
	char err[512];
	size_t skipped = 0;
	int rc;

	if ((all ? hstate_export(h->st, clock_unix(), &rows)
		 : hstate_export_ids(h->st, clock_unix(), ids, n, &rows)) < 0) {
		log_err("health: out of memory exporting the state");
		return;
	}
	rc = all ? hstore_save(h->db, &rows, &skipped, err, sizeof(err))
		 : hstore_save_ids(h->db, &rows, ids, n, &skipped, err,
				   sizeof(err));
	if (rc < 0) {
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

static void save(struct hsrv *h)
{
	save_some(h, NULL, 0, true);
	h->n_pend = 0;
	h->pend_all = false;
	h->saved_at = clock_mono();
}

/* Adds ids[0..n) (all: every endpoint) to what the next save writes. */
static void pend_add(struct hsrv *h, const uint32_t *ids, size_t n, bool all)
{
	if (all || h->pend_all) {
		h->pend_all = true;
		return;
	}
	if (h->n_pend + n > h->cap_pend) {
		size_t cap = h->cap_pend ? h->cap_pend : 64;
		uint32_t *p;

		while (cap < h->n_pend + n)
			cap *= 2;
		if (!(p = realloc(h->pend, cap * sizeof(*p)))) {
			h->pend_all = true;
			return;
		}
		h->pend = p;
		h->cap_pend = cap;
	}
	memcpy(h->pend + h->n_pend, ids, n * sizeof(*ids));
	h->n_pend += n;
}

static int cmp_id(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Writes what is pending when forced (a transition, a reload) or when
 * the last save is SAVE_EVERY_S old. */
static void save_pending(struct hsrv *h, bool force)
{
	size_t n = 0;

	if (!h->pend_all && !h->n_pend)
		return;
	if (!force && clock_mono() - h->saved_at < SAVE_EVERY_S)
		return;
	if (h->pend_all) {
		save(h);
		return;
	}
	qsort(h->pend, h->n_pend, sizeof(*h->pend), cmp_id);
	for (size_t i = 0; i < h->n_pend; i++)
		if (!n || h->pend[n - 1] != h->pend[i])
			h->pend[n++] = h->pend[i];
	save_some(h, h->pend, n, false);
	h->n_pend = 0;
	h->saved_at = clock_mono();
}

/* Logs queued transitions; then, if anything changed, persists what
 * changed and publishes a new view. */
static void flush(struct hsrv *h)
{
	struct hstate_event ev[EVENTS_MAX];
	bool transition = false;
	size_t n;

	while ((n = hstate_take_events(h->st, ev, EVENTS_MAX)) > 0) {
		for (size_t i = 0; i < n; i++)
			event_seen(h, &ev[i]);
		h->dirty = true;
		transition = true;
	}
	if (!h->dirty) {
		save_pending(h, false);
		return;
	}
	h->dirty = false;
	{
		uint32_t *ids = NULL;
		size_t nd = 0;
		bool all;
		struct hstate_view *v;

		hstate_take_dirty(h->st, &ids, &nd, &all);
		pend_add(h, ids, nd, all);
		/* Now: a transition, an agent's changed state or result, a
		 * damping change, a reload; times and RTTs can wait. */
		save_pending(h, hstate_take_changed(h->st) || transition ||
		                all || h->n_ddirty || h->ddirty_all);
		v = view_build_from(h, ids, nd, all);
		free(ids);
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
	hstate_view_free(h->last);
	free(h->ivals);
	free(h->ddirty);
	free(h->pend);
	free(h->dconf);
	free(h->dst);
	free(h);
}

void hsrv_reload(struct hsrv *h, struct store *db)
{
	h->db = db;
	load_checks(h);
}

void hsrv_reload_damping(struct hsrv *h)
{
	load_damping(h);
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
