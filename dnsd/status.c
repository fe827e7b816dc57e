/* dnsd/status.c - status document and metrics; see status.h. */
#include "dnsd/status.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <ldns/util.h>
#include <openssl/crypto.h>

#include "common/clock.h"
#include "common/search.h"
#include "db/store.h"
#include "dnsd/config.h"
#include "policy/svc.h"

/* ---- the cache ---------------------------------------------------------
 *
 * What depends only on the snapshot and the health state (the services of
 * the status document, the per-endpoint metric families) is rendered once
 * per (snapshot generation, health generation) into a refcounted blob; a
 * reply takes a reference (evbuffer_add_reference) instead of a copy, so a
 * blob replaced while a reply is still being sent lives until it is. */

struct blob {
	unsigned refs;
	size_t len;
	char data[];
};

static void blob_unref(struct blob *b)
{
	if (b && --b->refs == 0)
		free(b);
}

static void blob_cleanup(const void *data, size_t len, void *extra)
{
	(void)data;
	(void)len;
	blob_unref(extra);
}

/* The bytes of buf as a new blob (one reference), or NULL. */
static struct blob *blob_of(struct evbuffer *buf)
{
	size_t len = evbuffer_get_length(buf);
	struct blob *b = malloc(sizeof(*b) + len + 1);

	if (!b)
		return NULL;
	b->refs = 1;
	b->len = len;
	if (evbuffer_remove(buf, b->data, len) != (int)len) {
		free(b);
		return NULL;
	}
	return b;
}

/* Appends b to out by reference. 0 or -ENOMEM. */
static int blob_add(struct evbuffer *out, struct blob *b)
{
	if (b->len == 0)
		return 0;
	b->refs++;
	if (evbuffer_add_reference(out, b->data, b->len, blob_cleanup, b) < 0) {
		b->refs--;
		return -ENOMEM;
	}
	return 0;
}

static const char *const doc_name[STATUS_DOCS] = { "status", "metrics" };

struct status_cache {
	bool keyed;
	uint64_t snap_gen, health_gen;
	const struct hstate *hs;
	struct blob *blob[STATUS_DOCS];
	uint64_t renders[STATUS_DOCS], hits[STATUS_DOCS];
};

struct status_cache *status_cache_new(void)
{
	return calloc(1, sizeof(struct status_cache));
}

void status_cache_free(struct status_cache *c)
{
	if (!c)
		return;
	for (int d = 0; d < STATUS_DOCS; d++)
		blob_unref(c->blob[d]);
	free(c);
}

void status_cache_counts(const struct status_cache *c, unsigned doc,
			 uint64_t *renders, uint64_t *hits)
{
	*renders = c && doc < STATUS_DOCS ? c->renders[doc] : 0;
	*hits = c && doc < STATUS_DOCS ? c->hits[doc] : 0;
}

/* The cached blob of doc for what s shows, or NULL (then render it and
 * hand it to cache_put). Forgets every blob of an older generation. */
static struct blob *cache_get(const struct status_src *s, unsigned doc)
{
	struct status_cache *c = s->cache;
	uint64_t hg = s->hs ? hstate_generation(s->hs) : 0;

	if (!c)
		return NULL;
	if (!c->keyed || c->snap_gen != s->snap->gen || c->hs != s->hs ||
	    c->health_gen != hg) {
		for (int d = 0; d < STATUS_DOCS; d++) {
			blob_unref(c->blob[d]);
			c->blob[d] = NULL;
		}
		c->keyed = true;
		c->snap_gen = s->snap->gen;
		c->hs = s->hs;
		c->health_gen = hg;
	}
	if (c->blob[doc])
		c->hits[doc]++;
	return c->blob[doc];
}

/* Keeps b (the caller's reference passes to the cache, when there is one;
 * the caller must not use b afterwards without its own reference). */
static void cache_put(const struct status_src *s, unsigned doc,
		      struct blob *b)
{
	struct status_cache *c = s->cache;

	if (!c) {
		blob_unref(b);
		return;
	}
	c->renders[doc]++;
	blob_unref(c->blob[doc]);
	c->blob[doc] = b;
}

/* ---- health rows by endpoint id ------------------------------------------
 *
 * hstate_export() gives rows sorted by endpoint id, each endpoint's
 * observations and RTTs together and in the same order: one pass records
 * where each endpoint's start, and an endpoint is then found by binary
 * search. So a document over n endpoints costs O(n log n), not O(n x
 * rows). */

struct hindex {
	struct hstate_rows rows;
	size_t *obs_lo, *lat_lo;        /* [n_eps + 1] */
	bool ok;
};

static void hindex_fini(struct hindex *x)
{
	if (x->ok)
		hstate_rows_fini(&x->rows);
	free(x->obs_lo);
	free(x->lat_lo);
	memset(x, 0, sizeof(*x));
}

/* The rows of hs at now, indexed. 0, or -ENOMEM (x empty); hs NULL gives
 * an empty index. */
static int hindex_init(struct hindex *x, const struct hstate *hs, double now)
{
	size_t j = 0, l = 0;

	memset(x, 0, sizeof(*x));
	if (!hs)
		return 0;
	if (hstate_export(hs, now, &x->rows) < 0)
		return -ENOMEM;
	x->ok = true;
	x->obs_lo = malloc((x->rows.n_eps + 1) * sizeof(*x->obs_lo));
	x->lat_lo = malloc((x->rows.n_eps + 1) * sizeof(*x->lat_lo));
	if (!x->obs_lo || !x->lat_lo) {
		hindex_fini(x);
		return -ENOMEM;
	}
	for (size_t i = 0; i < x->rows.n_eps; i++) {
		uint32_t id = x->rows.eps[i].endpoint_id;

		while (j < x->rows.n_obs && x->rows.obs[j].endpoint_id < id)
			j++;
		while (l < x->rows.n_lat && x->rows.lat[l].endpoint_id < id)
			l++;
		x->obs_lo[i] = j;
		x->lat_lo[i] = l;
		while (j < x->rows.n_obs && x->rows.obs[j].endpoint_id == id)
			j++;
		while (l < x->rows.n_lat && x->rows.lat[l].endpoint_id == id)
			l++;
	}
	x->obs_lo[x->rows.n_eps] = j;
	x->lat_lo[x->rows.n_eps] = l;
	return 0;
}

/* The endpoint row of id and its observation and RTT rows
 * [*o0, *o1) and [*l0, *l1); NULL when the health state has none. */
static const struct hstate_ep_row *hindex_find(const struct hindex *x,
					       uint32_t id, size_t *o0,
					       size_t *o1, size_t *l0,
					       size_t *l1)
{
	long i = x->ok ? SEARCH_ID(x->rows.eps, x->rows.n_eps, endpoint_id, id)
		       : -1;

	*o0 = *o1 = *l0 = *l1 = 0;
	if (i < 0)
		return NULL;
	*o0 = x->obs_lo[i];
	*o1 = x->obs_lo[i + 1];
	*l0 = x->lat_lo[i];
	*l1 = x->lat_lo[i + 1];
	return &x->rows.eps[i];
}

/* The quorum state of e as the endpoint row says ("up" without a check). */
static const char *health_of(const struct svc_endpoint *e,
			     const struct hstate_ep_row *r, bool *stale)
{
	*stale = false;
	if (!e->has_check)
		return "up";          /* no check means healthy */
	if (!r)
		return hstate_state_name(HSTATE_UNKNOWN);
	*stale = r->stale;
	return hstate_state_name(r->state);
}

/* ---- the status document ------------------------------------------------ */

static json_t *endpoint_json(const struct svc_endpoint *e,
			     const struct hindex *x)
{
	size_t o0, o1, l0, l1;
	const struct hstate_ep_row *er = hindex_find(x, e->id, &o0, &o1, &l0,
						     &l1);
	bool stale;
	const char *h = health_of(e, er, &stale);
	json_t *agents = json_array();
	/* The key names are the export's and gslbctl status --json's
	 * (docs/keys.md): region null when there is none; "checked" says
	 * whether there is a check (its definition is the configuration's,
	 * which needs a read credential). */
	json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:b, s:b, s:I, s:I, s:o, s:b}",
			      "id", (json_int_t)e->id, "target", e->t.text,
			      "health", h, "admin", svc_admin_name(e->admin),
			      "drained", e->drained, "stale", stale,
			      "weight", (json_int_t)e->weight,
			      "priority", (json_int_t)e->priority,
			      "region", e->region && *e->region ?
			      json_string(e->region) : json_null(),
			      "checked", e->has_check);
	json_t *lat = json_array();

	if (!o || !agents || !lat) {
		json_decref(o);
		json_decref(agents);
		json_decref(lat);
		return NULL;
	}
	if (er) {
		json_object_set_new(o, "since", er->since > 0 ?
				    json_real(er->since) : json_null());
		json_object_set_new(o, "reason", er->reason && *er->reason ?
				    json_string(er->reason) : json_null());
	}
	for (size_t i = l0; i < l1; i++) {
		const struct hstate_lat_row *r = &x->rows.lat[i];

		json_array_append_new(lat, json_pack("{s:s, s:f, s:I, s:f}",
			"region", r->region, "rtt_ms", r->rtt_ms,
			"samples", (json_int_t)r->samples, "updated", r->updated));
	}
	json_object_set_new(o, "latency", lat);
	for (size_t i = o0; i < o1; i++) {
		const struct hstate_obs_row *r = &x->rows.obs[i];

		json_array_append_new(agents, json_pack(
			"{s:s, s:s, s:s, s:b, s:o, s:f, s:b, s:s}",
			"agent", r->agent, "region", r->region,
			"state", hstate_state_name(r->state), "ok", r->ok,
			"rtt_ms", r->rtt_ms >= 0 ? json_real(r->rtt_ms) : json_null(),
			"seen", r->seen, "fresh", r->fresh, "detail", r->detail));
	}
	json_object_set_new(o, "agents", agents);
	return o;
}

static int dump_cb(const char *buf, size_t size, void *data)
{
	return evbuffer_add(data, buf, size);
}

/* The "services" array of the status document, one service at a time (a
 * service's tree is freed before the next is made). 0 or -ENOMEM. */
static int services_render(const struct status_src *s, struct evbuffer *out)
{
	const struct snap *sn = s->snap;
	struct hindex x;
	bool first = true;
	int rc = 0;

	if (s->hs && hindex_init(&x, s->hs, clock_unix()) < 0)
		return -ENOMEM;
	if (!s->hs)
		memset(&x, 0, sizeof(x));
	evbuffer_add(out, "[", 1);
	for (size_t i = 0; rc == 0 && sn->svc && i < sn->svc->n_pos; i++) {
		const struct svc_service *v = svc_at(sn->svc, i);
		json_t *eps, *o;

		if (!v)
			continue;
		eps = json_array();
		for (size_t k = 0; eps && k < v->n_eps; k++)
			if (json_array_append_new(eps, endpoint_json(&v->eps[k],
								     &x)) < 0) {
				json_decref(eps);
				eps = NULL;
			}
		o = eps ? json_pack("{s:s, s:s, s:I, s:b, s:o}", "name", v->name,
				    "policy", svc_policy_name(v->policy),
				    "ttl", (json_int_t)v->ttl,
				    "served", snap_svc_zone(sn, v) != NULL,
				    "endpoints", eps) : NULL;
		if (!o || (!first && evbuffer_add(out, ",", 1) < 0) ||
		    json_dump_callback(o, dump_cb, out, JSON_COMPACT) < 0)
			rc = -ENOMEM;
		json_decref(o);
		first = false;
	}
	if (rc == 0 && evbuffer_add(out, "]", 1) < 0)
		rc = -ENOMEM;
	hindex_fini(&x);
	return rc;
}

json_t *status_json(const struct status_src *s)
{
	const struct snap *sn = s->snap;
	json_t *zones = json_array();

	for (size_t i = 0; zones && i < sn->n_zones; i++) {
		const struct zone *z = sn->zones[i];

		json_array_append_new(zones, json_pack("{s:s, s:s, s:I, s:I}",
			"name", z->origin, "file", z->file,
			"serial", (json_int_t)z->serial,
			"records", (json_int_t)z->n_records));
	}
	/* config_revision: the etcd revision of the configuration this node
	 * has applied (dnsd --etcd); the SQLite store alone has none, so 0. */
	return json_pack("{s:I, s:f, s:I, s:o, s:I, s:I, s:b, s:b, s:I}",
			 "generation", (json_int_t)sn->gen, "started", s->started,
			 "threads", (json_int_t)s->threads, "zones", zones,
			 "services_skipped", (json_int_t)s->svc_skipped,
			 "db_problems", (json_int_t)s->db_problems,
			 "db_ok", s->db_ok, "last_reload_ok", s->last_reload_ok,
			 "config_revision", (json_int_t)s->config_revision);
}

int status_write(const struct status_src *s, json_t *doc, struct evbuffer *out)
{
	struct blob *b = cache_get(s, STATUS_DOC_STATUS);
	char *rest = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	struct evbuffer *tmp = NULL;
	int rc = -ENOMEM;

	json_decref(doc);
	if (!rest || rest[0] != '{')
		goto out;
	if (b) {
		b->refs++;              /* ours until the end */
	} else {
		if (!(tmp = evbuffer_new()) || services_render(s, tmp) < 0 ||
		    !(b = blob_of(tmp)))
			goto out;
		b->refs++;
		cache_put(s, STATUS_DOC_STATUS, b);
	}
	if (evbuffer_add(out, "{\"services\":", 12) < 0 || blob_add(out, b) < 0 ||
	    evbuffer_add_printf(out, "%s%s\n", rest[1] == '}' ? "" : ",",
				rest + 1) < 0)
		goto out;
	rc = 0;
out:
	blob_unref(b);
	if (tmp)
		evbuffer_free(tmp);
	free(rest);
	return rc;
}

/* Prometheus label values: backslash, quote and newline escaped (runs
 * without any are added whole). */
static void label(struct evbuffer *out, const char *v)
{
	while (*v) {
		size_t n = strcspn(v, "\\\"\n");

		if (n)
			evbuffer_add(out, v, n);
		v += n;
		if (*v == '\n')
			evbuffer_add(out, "\\n", 2);
		else if (*v)
			evbuffer_add_printf(out, "\\%c", *v);
		if (*v)
			v++;
	}
}

static void head(struct evbuffer *out, const char *name, const char *type,
		 const char *help)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
			    type);
}

static void ep_labels(struct evbuffer *out, const char *service,
		      const struct svc_endpoint *e)
{
	evbuffer_add(out, "service=\"", 9);
	label(out, service);
	evbuffer_add(out, "\",target=\"", 10);
	label(out, e->t.text);
	evbuffer_add(out, "\"", 1);
}

/* Agent freshness: rendered on every request (it is an age). */
static void agent_metrics(const struct status_src *s, struct evbuffer *out)
{
	double now = clock_unix();
	size_t n_agents, n_regions;

	if (!s->hs)
		return;
	hstate_counts(s->hs, &n_agents, &n_regions);
	head(out, "dnsd_agent_last_report_age_seconds", "gauge",
	     "Seconds since each probe agent's latest report was received.");
	for (size_t i = 0; i < n_agents; i++) {
		const char *name, *region;
		double seen;

		if (hstate_agent_at(s->hs, i, &name, &region, &seen) < 0 ||
		    seen <= 0)
			continue;
		evbuffer_add_printf(out, "dnsd_agent_last_report_age_seconds{agent=\"");
		label(out, name);
		evbuffer_add_printf(out, "\",region=\"");
		label(out, region);
		evbuffer_add_printf(out, "\"} %.3f\n", now - seen);
	}
}

/* The families that depend only on the snapshot and the health state, one
 * pass over the snapshot's endpoints per family:
 * - RTTs per agent and endpoint, EWMAs per region and endpoint;
 * - down (1 when the agents' quorum says down) and stale (1 when no
 *   agent's report is fresh, so no quorum can be formed and the last
 *   state stands), checked endpoints only;
 * - healthy (health and admin state). */
enum { F_RTT, F_EWMA, F_DOWN, F_STALE, F_HEALTHY, F_N };

static const char *const family[F_N][2] = {
	{ "dnsd_endpoint_rtt_seconds",
	  "Latest check round-trip time per agent and endpoint." },
	{ "dnsd_endpoint_rtt_ewma_seconds",
	  "Smoothed round-trip time per probe region and endpoint (latency policy input)." },
	{ "dnsd_endpoint_down",
	  "1 if the probe agents' quorum says the checked endpoint is "
	  "down, else 0 (up or unknown)." },
	{ "dnsd_endpoint_stale",
	  "1 if no probe agent's report on the checked endpoint is fresh "
	  "(no quorum; the last state stands), else 0." },
	{ "dnsd_endpoint_healthy",
	  "1 if the endpoint may answer (health and admin state), else 0." },
};

static void endpoint_family(struct evbuffer *out, int f, const char *svc,
			    const struct svc_endpoint *e,
			    const struct hindex *x)
{
	size_t o0, o1, l0, l1;
	const struct hstate_ep_row *er = hindex_find(x, e->id, &o0, &o1, &l0,
						     &l1);
	bool stale;
	const char *h = health_of(e, er, &stale);

	switch (f) {
	case F_RTT:
		for (size_t i = o0; i < o1; i++) {
			const struct hstate_obs_row *r = &x->rows.obs[i];

			if (r->rtt_ms < 0)
				continue;
			evbuffer_add_printf(out, "dnsd_endpoint_rtt_seconds{agent=\"");
			label(out, r->agent);
			evbuffer_add(out, "\",", 2);
			ep_labels(out, svc, e);
			evbuffer_add_printf(out, "} %.6f\n", r->rtt_ms / 1000.0);
		}
		break;
	case F_EWMA:
		for (size_t i = l0; i < l1; i++) {
			const struct hstate_lat_row *r = &x->rows.lat[i];

			evbuffer_add_printf(out, "dnsd_endpoint_rtt_ewma_seconds{region=\"");
			label(out, r->region);
			evbuffer_add(out, "\",", 2);
			ep_labels(out, svc, e);
			evbuffer_add_printf(out, "} %.6f\n", r->rtt_ms / 1000.0);
		}
		break;
	case F_DOWN:
	case F_STALE:
		if (!e->has_check || !x->ok)
			break;
		evbuffer_add_printf(out, "%s{", family[f][0]);
		ep_labels(out, svc, e);
		evbuffer_add_printf(out, "} %d\n", f == F_STALE ? stale
				    : strcmp(h, "down") == 0);
		break;
	case F_HEALTHY:
		evbuffer_add_printf(out, "dnsd_endpoint_healthy{");
		ep_labels(out, svc, e);
		evbuffer_add_printf(out, "} %d\n", e->admin == SVC_ADMIN_UP ||
				    (e->admin == SVC_ADMIN_AUTO &&
				     strcmp(h, "down") != 0));
		break;
	}
}

static int endpoint_metrics_render(const struct status_src *s,
				   struct evbuffer *out)
{
	const struct snap *sn = s->snap;
	struct hindex x;

	if (s->hs && hindex_init(&x, s->hs, clock_unix()) < 0)
		return -ENOMEM;
	if (!s->hs)
		memset(&x, 0, sizeof(x));
	for (int f = 0; f < F_N; f++) {
		if (f <= F_STALE && !s->hs)
			continue;
		head(out, family[f][0], "gauge", family[f][1]);
		for (size_t i = 0; sn->svc && i < sn->svc->n_pos; i++) {
			const struct svc_service *v = svc_at(sn->svc, i);

			for (size_t k = 0; v && k < v->n_eps; k++)
				endpoint_family(out, f, v->name, &v->eps[k], &x);
		}
	}
	hindex_fini(&x);
	return 0;
}

/* Answers per endpoint: counters, rendered on every request. */
static void answer_metrics(const struct status_src *s, struct evbuffer *out)
{
	const struct snap *sn = s->snap;

	if (!s->ep_answers)
		return;
	head(out, "dnsd_endpoint_answers_total", "counter",
	     "Answers that carried the endpoint, since dnsd started.");
	for (size_t i = 0; sn->svc && i < sn->svc->n_pos; i++) {
		const struct svc_service *v = svc_at(sn->svc, i);

		for (size_t k = 0; v && k < v->n_eps; k++) {
			const struct svc_endpoint *e = &v->eps[k];

			if (e->id >= s->ep_cap)
				continue;
			evbuffer_add(out, "dnsd_endpoint_answers_total{", 28);
			ep_labels(out, v->name, e);
			evbuffer_add_printf(out, "} %llu\n",
					    (unsigned long long)s->ep_answers[e->id]);
		}
	}
}

static const char *const qtype_names[] = {
#define X(name, num) #name,
	STATS_QTYPES(X)
#undef X
	"other",
};

static const char *rcode_name(unsigned r)
{
	static const char *const n[] = { "NOERROR", "FORMERR", "SERVFAIL",
		"NXDOMAIN", "NOTIMP", "REFUSED" };

	return r < 6 ? n[r] : r == 16 ? "BADVERS" : NULL;
}

static const char *const build_kind[STATUS_BUILD_KINDS] = {
	"full", "incremental"
};

int status_metrics(const struct status_src *s, struct evbuffer *out)
{
	static const char *const tr[] = { "udp", "tcp" };
	const struct stats *st = s->stats;
	const struct snap *sn = s->snap;
	struct blob *b = cache_get(s, STATUS_DOC_METRICS);
	int rc = 0;

	/* First, so that this request's render or hit is in the counters. */
	if (b) {
		b->refs++;
	} else {
		struct evbuffer *tmp = evbuffer_new();

		if (!tmp || endpoint_metrics_render(s, tmp) < 0 ||
		    !(b = blob_of(tmp))) {
			if (tmp)
				evbuffer_free(tmp);
			return -ENOMEM;
		}
		evbuffer_free(tmp);
		b->refs++;
		cache_put(s, STATUS_DOC_METRICS, b);
	}
	head(out, "dnsd_build_info", "gauge",
	     "Always 1; the labels say which dnsd and libraries are running.");
	evbuffer_add_printf(out, "dnsd_build_info{version=\"%s\",libevent=\"",
			    DNSD_VERSION);
	label(out, event_get_version());
	evbuffer_add_printf(out, "\",openssl=\"");
	label(out, OpenSSL_version(OPENSSL_VERSION_STRING));
	evbuffer_add_printf(out, "\",sqlite=\"");
	label(out, store_lib_version());
	evbuffer_add_printf(out, "\",ldns=\"");
	label(out, ldns_version());
	evbuffer_add_printf(out, "\"} 1\n");
	head(out, "dnsd_process_start_time_seconds", "gauge",
	     "Unix time dnsd started.");
	evbuffer_add_printf(out, "dnsd_process_start_time_seconds %.3f\n", s->started);
	head(out, "dnsd_queries_total", "counter",
	     "DNS queries received, by transport and query type.");
	for (unsigned t = 0; t < STATS_NTRANSPORT; t++)
		for (unsigned q = 0; q < STATS_NQTYPES; q++)
			evbuffer_add_printf(out,
				"dnsd_queries_total{transport=\"%s\",qtype=\"%s\"} %llu\n",
				tr[t], qtype_names[q], (unsigned long long)st->queries[t][q]);
	head(out, "dnsd_responses_total", "counter",
	     "DNS responses sent, by transport and rcode.");
	for (unsigned t = 0; t < STATS_NTRANSPORT; t++)
		for (unsigned r = 0; r < STATS_NRCODES; r++)
			if (rcode_name(r))
				evbuffer_add_printf(out,
					"dnsd_responses_total{transport=\"%s\",rcode=\"%s\"} %llu\n",
					tr[t], rcode_name(r),
					(unsigned long long)st->responses[t][r]);
#define COUNTER(name, help, v) do { \
		head(out, name, "counter", help); \
		evbuffer_add_printf(out, name " %llu\n", (unsigned long long)(v)); \
	} while (0)
	COUNTER("dnsd_truncated_total", "UDP responses sent with TC=1.", st->truncated);
	COUNTER("dnsd_dropped_total", "Packets not answered (responses, runts).", st->dropped);
	COUNTER("dnsd_malformed_total", "Queries answered FORMERR.", st->malformed);
	COUNTER("dnsd_ecs_queries_total", "Queries with a valid EDNS Client Subnet.", st->ecs);
	COUNTER("dnsd_service_answers_total", "Answers for balanced names.", st->service_answers);
	COUNTER("dnsd_xdp_answers_total", "UDP answers sent through AF_XDP (xdp mode).", st->xdp_answers);
	COUNTER("dnsd_xdp_dropped_total", "AF_XDP frames not answered: not a well-formed UDP datagram, or no free frame.", st->xdp_dropped);
	COUNTER("dnsd_tcp_connections_total", "TCP connections accepted.", st->tcp_accepted);
	COUNTER("dnsd_dnssec_signatures_total", "RRSIGs made (signature cache misses).", st->dnssec_signed);
	COUNTER("dnsd_dnssec_cache_hits_total", "RRSIGs served from the signature cache.", st->dnssec_cache_hits);
	COUNTER("dnsd_dnssec_over_budget_total", "Signatures not made: the signing rate cap was reached (UDP got TC, TCP SERVFAIL).", st->dnssec_over_budget);
#undef COUNTER
	head(out, "dnsd_tcp_closed_total", "counter",
	     "TCP connections closed by the server, by reason.");
	evbuffer_add_printf(out, "dnsd_tcp_closed_total{reason=\"idle\"} %llu\n"
			    "dnsd_tcp_closed_total{reason=\"cap\"} %llu\n"
			    "dnsd_tcp_closed_total{reason=\"bad\"} %llu\n",
			    (unsigned long long)st->tcp_closed_idle,
			    (unsigned long long)st->tcp_closed_cap,
			    (unsigned long long)st->tcp_closed_bad);
	head(out, "dnsd_rrl_responses_total", "counter",
	     "UDP responses over the rate limit: limited = dropped + slipped (sent with TC=1).");
	evbuffer_add_printf(out, "dnsd_rrl_responses_total{action=\"limited\"} %llu\n"
			    "dnsd_rrl_responses_total{action=\"dropped\"} %llu\n"
			    "dnsd_rrl_responses_total{action=\"slipped\"} %llu\n",
			    (unsigned long long)st->rrl_limited,
			    (unsigned long long)st->rrl_dropped,
			    (unsigned long long)st->rrl_slipped);
	head(out, "dnsd_snapshot_generation", "gauge",
	     "Generation of the snapshot in force (bumps on every swap).");
	evbuffer_add_printf(out, "dnsd_snapshot_generation %llu\n",
			    (unsigned long long)sn->gen);
	head(out, "dnsd_zone_serial", "gauge", "SOA serial of each zone served.");
	for (size_t i = 0; i < sn->n_zones; i++) {
		evbuffer_add_printf(out, "dnsd_zone_serial{zone=\"");
		label(out, sn->zones[i]->origin);
		evbuffer_add_printf(out, "\"} %u\n", sn->zones[i]->serial);
	}
	head(out, "dnsd_last_reload_success", "gauge",
	     "1 if the last SIGHUP reload loaded everything, else 0.");
	evbuffer_add_printf(out, "dnsd_last_reload_success %d\n", s->last_reload_ok);
	head(out, "dnsd_last_reload_timestamp_seconds", "gauge",
	     "Unix time of the last SIGHUP reload (0: none).");
	evbuffer_add_printf(out, "dnsd_last_reload_timestamp_seconds %.3f\n", s->last_reload);
	head(out, "dnsd_db_load_success", "gauge",
	     "1 if the last read of the store worked, else 0.");
	evbuffer_add_printf(out, "dnsd_db_load_success %d\n", s->db_ok);
	head(out, "dnsd_db_last_load_timestamp_seconds", "gauge",
	     "Unix time the services were last loaded from the store.");
	evbuffer_add_printf(out, "dnsd_db_last_load_timestamp_seconds %.3f\n", s->last_db_load);
	head(out, "dnsd_config_revision", "gauge",
	     "etcd revision of the configuration applied (0 without etcd).");
	evbuffer_add_printf(out, "dnsd_config_revision %lld\n",
			    (long long)s->config_revision);
	head(out, "dnsd_snapshot_builds_total", "counter",
	     "Snapshots built from the store: full (start, SIGHUP, fallback) or "
	     "incremental (only the services the change log names).");
	for (int k = 0; k < STATUS_BUILD_KINDS; k++)
		evbuffer_add_printf(out, "dnsd_snapshot_builds_total{kind=\"%s\"} %llu\n",
				    build_kind[k], (unsigned long long)s->builds[k]);
	head(out, "dnsd_snapshot_build_seconds", "gauge",
	     "Seconds the last snapshot build of each kind took, from reading the "
	     "store to publishing.");
	for (int k = 0; k < STATUS_BUILD_KINDS; k++)
		evbuffer_add_printf(out, "dnsd_snapshot_build_seconds{kind=\"%s\"} %.6f\n",
				    build_kind[k], s->build_last[k]);
	head(out, "dnsd_snapshot_build_seconds_total", "counter",
	     "Seconds spent building snapshots from the store, by kind.");
	for (int k = 0; k < STATUS_BUILD_KINDS; k++)
		evbuffer_add_printf(out, "dnsd_snapshot_build_seconds_total{kind=\"%s\"} %.6f\n",
				    build_kind[k], s->build_seconds[k]);
	head(out, "dnsd_services", "gauge", "Balanced names loaded from the store.");
	evbuffer_add_printf(out, "dnsd_services %zu\n", sn->svc ? sn->svc->n : 0);
	head(out, "dnsd_services_skipped", "gauge",
	     "Balanced names not served (outside every zone, below a delegation).");
	evbuffer_add_printf(out, "dnsd_services_skipped %zu\n", s->svc_skipped);
	head(out, "dnsd_db_rows_skipped", "gauge", "Invalid rows skipped by the loader.");
	evbuffer_add_printf(out, "dnsd_db_rows_skipped %zu\n", s->db_problems);
	head(out, "dnsd_zone_last_load_success", "gauge",
	     "1 if the zone file's last load (start or SIGHUP) worked, else 0 (the old zone serves).");
	for (size_t i = 0; i < s->n_zone_files; i++) {
		evbuffer_add_printf(out, "dnsd_zone_last_load_success{file=\"");
		label(out, s->zone_files[i]);
		evbuffer_add_printf(out, "\"} %d\n", s->zone_ok[i]);
	}
	head(out, "dnsd_zone_last_load_timestamp_seconds", "gauge",
	     "Unix time of the zone file's last load attempt.");
	for (size_t i = 0; i < s->n_zone_files; i++) {
		evbuffer_add_printf(out, "dnsd_zone_last_load_timestamp_seconds{file=\"");
		label(out, s->zone_files[i]);
		evbuffer_add_printf(out, "\"} %.3f\n", s->zone_loaded[i]);
	}
	head(out, "dnsd_status_renders_total", "counter",
	     "Renders of the part of a document that depends only on the "
	     "snapshot and the health state (status: GET /v1/status's services; "
	     "metrics: the per-endpoint health families of /metrics).");
	for (unsigned d = 0; d < STATUS_DOCS; d++) {
		uint64_t r, h;

		status_cache_counts(s->cache, d, &r, &h);
		evbuffer_add_printf(out, "dnsd_status_renders_total{doc=\"%s\"} %llu\n",
				    doc_name[d], (unsigned long long)r);
	}
	head(out, "dnsd_status_cache_hits_total", "counter",
	     "Requests served that part from the cache: same snapshot and "
	     "health generation as the last render.");
	for (unsigned d = 0; d < STATUS_DOCS; d++) {
		uint64_t r, h;

		status_cache_counts(s->cache, d, &r, &h);
		evbuffer_add_printf(out, "dnsd_status_cache_hits_total{doc=\"%s\"} %llu\n",
				    doc_name[d], (unsigned long long)h);
	}
	agent_metrics(s, out);
	if (blob_add(out, b) < 0)
		rc = -ENOMEM;
	blob_unref(b);
	answer_metrics(s, out);
	return rc;
}
