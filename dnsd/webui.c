/* dnsd/webui.c - see webui.h. Control thread only. */
#include "dnsd/webui.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>

#include "common/clock.h"
#include "dnsd/api.h"
#include "policy/svc.h"

/* The page's files, embedded at build time (Makefile: web/ through the
 * bin2c tool, each plain and gzip-compressed). */
#define WEB_ASSETS(X) X(index_html) X(app_js) X(app_css) X(world_svg)
#define X(n) extern const unsigned char web_##n[], web_##n##_gz[]; \
	extern const size_t web_##n##_len, web_##n##_gz_len;
WEB_ASSETS(X)
#undef X

static const struct asset {
	const char *path;
	const char *type;
	const unsigned char *data, *gz;
	const size_t *len, *gz_len;
} assets[] = {
	{ "/", "text/html; charset=utf-8", web_index_html, web_index_html_gz,
	  &web_index_html_len, &web_index_html_gz_len },
	{ "/ui/app.js", "text/javascript; charset=utf-8", web_app_js,
	  web_app_js_gz, &web_app_js_len, &web_app_js_gz_len },
	{ "/ui/app.css", "text/css; charset=utf-8", web_app_css, web_app_css_gz,
	  &web_app_css_len, &web_app_css_gz_len },
	{ "/ui/world.svg", "image/svg+xml", web_world_svg, web_world_svg_gz,
	  &web_world_svg_len, &web_world_svg_gz_len },
};

/* Answer counters sampled every SAMPLE_S; the share of answers is taken
 * over the last minute (the oldest sample within WINDOW_S). */
#define SAMPLE_S  5
#define N_SAMPLES 14
#define WINDOW_S  60.0
#define EP_CAP    65536u

struct sample {
	double t;
	uint64_t *v;          /* by endpoint id, n entries */
	size_t n;
};

struct webui {
	struct webui_conf conf;
	struct event *timer;
	struct sample samples[N_SAMPLES];
	size_t next_sample;
	struct webui_events events;
};

/* ---- events ------------------------------------------------------------ */

void webui_events_init(struct webui_events *ev)
{
	memset(ev, 0, sizeof(*ev));
	ev->next_seq = 1;
}

void webui_events_add(struct webui_events *ev, double at, const char *kind,
                      const char *subject, const char *text)
{
	struct webui_event *e = &ev->ring[(ev->next_seq - 1) % WEBUI_EVENTS_MAX];

	e->seq = ev->next_seq++;
	e->at = at;
	snprintf(e->kind, sizeof(e->kind), "%s", kind ? kind : "");
	snprintf(e->subject, sizeof(e->subject), "%s", subject ? subject : "");
	snprintf(e->text, sizeof(e->text), "%s", text ? text : "");
}

json_t *webui_events_json(const struct webui_events *ev, uint64_t since,
                          size_t limit, double now)
{
	uint64_t last = ev->next_seq - 1;
	uint64_t first = last >= WEBUI_EVENTS_MAX ? last - WEBUI_EVENTS_MAX + 1 : 1;
	json_t *arr = json_array(), *doc;

	if (since + 1 > first)
		first = since + 1;
	if (limit && last >= first && last - first + 1 > limit)
		first = last - limit + 1;
	for (uint64_t s = first; arr && s <= last && limit; s++) {
		const struct webui_event *e = &ev->ring[(s - 1) % WEBUI_EVENTS_MAX];

		if (e->at < now - WEBUI_EVENT_AGE)
			continue;
		if (json_array_append_new(arr, json_pack(
			"{s:I, s:f, s:s, s:s, s:s}", "seq", (json_int_t)e->seq,
			"at", e->at, "kind", e->kind, "subject", e->subject,
			"text", e->text)) < 0) {
			json_decref(arr);
			return NULL;
		}
	}
	doc = arr ? json_pack("{s:o, s:I}", "events", arr, "last",
	                      (json_int_t)last) : NULL;
	return doc;
}

/* ---- query parameters --------------------------------------------------- */

static int parse_size(const char *name, const char *v, size_t min, size_t max,
                      size_t *out, char *err, size_t errlen)
{
	char *end;
	unsigned long long n;

	errno = 0;
	n = strtoull(v, &end, 10);
	if (!*v || *end || errno || v[0] == '-' || n < min || n > max) {
		snprintf(err, errlen, "%s: must be an integer %zu..%zu", name, min,
		         max);
		return -EINVAL;
	}
	*out = (size_t)n;
	return 0;
}

int webui_query_parse(const char *query, struct webui_query *out, char *err,
                      size_t errlen)
{
	struct evkeyvalq kv;
	struct evkeyval *p;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	out->limit = 50;
	if (!query || !*query)
		return 0;
	TAILQ_INIT(&kv);
	if (evhttp_parse_query_str(query, &kv) < 0) {
		snprintf(err, errlen, "query: malformed query string");
		return -EINVAL;
	}
	TAILQ_FOREACH(p, &kv, next) {
		const char *k = p->key, *v = p->value;

		if (strcmp(k, "offset") == 0) {
			rc = parse_size(k, v, 0, 1000000000, &out->offset, err, errlen);
		} else if (strcmp(k, "limit") == 0) {
			rc = parse_size(k, v, 1, WEBUI_PAGE_MAX, &out->limit, err,
			                errlen);
		} else if (strcmp(k, "q") == 0) {
			if (strlen(v) >= sizeof(out->q)) {
				snprintf(err, errlen, "q: longer than %zu bytes",
				         sizeof(out->q) - 1);
				rc = -EINVAL;
			} else {
				strcpy(out->q, v);
			}
		} else if (strcmp(k, "region") == 0) {
			if (strlen(v) >= sizeof(out->region)) {
				snprintf(err, errlen, "region: longer than %zu bytes",
				         sizeof(out->region) - 1);
				rc = -EINVAL;
			} else {
				strcpy(out->region, v);
			}
		} else if (strcmp(k, "health") == 0) {
			if (!*v || strcmp(v, "any") == 0) {
				out->health = WEBUI_ANY;
			} else if (strcmp(v, "down") == 0) {
				out->health = WEBUI_DOWN;
			} else if (strcmp(v, "not-up") == 0) {
				out->health = WEBUI_NOT_UP;
			} else {
				snprintf(err, errlen, "health: must be any, down or "
				         "not-up");
				rc = -EINVAL;
			}
		} else if (strcmp(k, "since") == 0) {
			size_t since;

			rc = parse_size(k, v, 0, (size_t)1 << 62, &since, err,
			                errlen);
			out->since = since;
		} else {
			snprintf(err, errlen, "%.64s: unknown parameter", k);
			rc = -EINVAL;
		}
		if (rc < 0)
			break;
	}
	evhttp_clear_headers(&kv);
	return rc;
}

/* ---- answer shares ------------------------------------------------------ */

static size_t ep_cap_of(const struct snap *sn)
{
	size_t n = sn->svc ? (size_t)sn->svc->max_endpoint_id + 1 : 0;

	return n > EP_CAP ? EP_CAP : n;
}

static void on_sample(evutil_socket_t fd, short what, void *arg)
{
	struct webui *w = arg;
	struct webui_src src = { 0 };
	struct sample *s = &w->samples[w->next_sample];
	size_t n;

	(void)fd;
	(void)what;
	w->conf.source(w->conf.ctx, &src);
	n = ep_cap_of(src.snap);
	if (n != s->n) {
		uint64_t *v = n ? realloc(s->v, n * sizeof(*v)) : NULL;

		if (n && !v)
			return;       /* keep the old sample; try next time */
		if (!n)
			free(s->v);
		s->v = v;
		s->n = n;
	}
	if (n)
		w->conf.answers(w->conf.ctx, s->v, n);
	s->t = clock_unix();
	w->next_sample = (w->next_sample + 1) % N_SAMPLES;
}

/* The oldest sample no older than the window (NULL: none yet). */
static const struct sample *baseline(const struct webui *w, double now)
{
	const struct sample *best = NULL;

	for (size_t i = 0; i < N_SAMPLES; i++) {
		const struct sample *s = &w->samples[i];

		if (s->t <= 0 || s->t < now - WINDOW_S - SAMPLE_S / 2.0)
			continue;
		if (!best || s->t < best->t)
			best = s;
	}
	return best;
}

/* Answers per endpoint id over the window, into d[0..n): the counters
 * now less the baseline. *window gets its length (0: no baseline yet, d
 * then holds the counts since start). */
static uint64_t *answers_window(struct webui *w, size_t n, double now,
                                double *window)
{
	const struct sample *b = baseline(w, now);
	uint64_t *d;

	*window = 0;
	if (!w->conf.answers || !n || !(d = calloc(n, sizeof(*d))))
		return NULL;
	w->conf.answers(w->conf.ctx, d, n);
	if (b) {
		for (size_t i = 0; i < n && i < b->n; i++)
			d[i] = d[i] >= b->v[i] ? d[i] - b->v[i] : 0;
		*window = now - b->t;
	}
	return d;
}

/* ---- JSON documents ----------------------------------------------------- */

static const char *health_of(const struct hstate *hs,
                             const struct svc_endpoint *e, bool *stale)
{
	uint8_t st = HSTATE_UNKNOWN;

	*stale = false;
	if (!e->has_check)
		return "up";          /* an endpoint without a check is healthy */
	if (hs && hstate_get(hs, e->id, &st, stale) < 0)
		st = HSTATE_UNKNOWN;
	return hstate_state_name(st);
}

/* The health rows indexed by endpoint id: per checked endpoint the range
 * of its agents' observations. */
struct obs_index {
	struct hstate_rows rows;
	bool have;
	struct oi { uint32_t id; size_t first, n; } *by_id;
	size_t n;
};

static int oi_cmp(const void *a, const void *b)
{
	const struct oi *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

static int obs_index_build(struct obs_index *x, const struct hstate *hs,
                           double now)
{
	size_t k = 0;

	memset(x, 0, sizeof(*x));
	if (!hs)
		return 0;
	if (hstate_export(hs, now, &x->rows) < 0)
		return -ENOMEM;
	x->have = true;
	x->by_id = calloc(x->rows.n_eps + 1, sizeof(*x->by_id));
	if (!x->by_id)
		return -ENOMEM;
	/* export lists observations grouped in the order of its endpoints */
	for (size_t i = 0; i < x->rows.n_eps; i++) {
		uint32_t id = x->rows.eps[i].endpoint_id;

		x->by_id[i].id = id;
		x->by_id[i].first = k;
		while (k < x->rows.n_obs && x->rows.obs[k].endpoint_id == id)
			k++;
		x->by_id[i].n = k - x->by_id[i].first;
	}
	x->n = x->rows.n_eps;
	qsort(x->by_id, x->n, sizeof(*x->by_id), oi_cmp);
	return 0;
}

static void obs_index_fini(struct obs_index *x)
{
	if (x->have)
		hstate_rows_fini(&x->rows);
	free(x->by_id);
}

static const struct oi *obs_of(const struct obs_index *x, uint32_t id)
{
	struct oi key = { .id = id };

	return x->n ? bsearch(&key, x->by_id, x->n, sizeof(key), oi_cmp) : NULL;
}

static json_t *coord(bool has, double v)
{
	return has ? json_real(v) : json_null();
}

static json_t *endpoint_json(const struct webui_src *src,
                             const struct svc_endpoint *e,
                             const struct obs_index *x, const uint64_t *ans,
                             size_t n_ans, uint64_t svc_total)
{
	bool stale;
	const char *h = health_of(src->hs, e, &stale);
	uint64_t mine = ans && e->id < n_ans ? ans[e->id] : 0;
	bool serving = !e->drained && (e->admin == SVC_ADMIN_UP ||
	               (e->admin == SVC_ADMIN_AUTO && strcmp(h, "down") != 0));
	json_t *agents = json_array();
	const struct oi *r = obs_of(x, e->id);
	json_t *o = json_pack(
		"{s:I, s:s, s:s, s:b, s:s, s:b, s:b, s:I, s:I, s:s, s:o, s:o, "
		"s:b, s:I, s:o}",
		"id", (json_int_t)e->id, "target", e->t.text, "health", h,
		"stale", stale, "admin", svc_admin_name(e->admin),
		"drained", e->drained, "serving", serving,
		"weight", (json_int_t)e->weight,
		"priority", (json_int_t)e->priority, "region", e->region,
		"lat", coord(e->has_loc, e->lat), "lon", coord(e->has_loc, e->lon),
		"check", e->has_check, "answers", (json_int_t)mine,
		"share", ans && svc_total ? json_real((double)mine / (double)svc_total)
		                          : json_null());

	if (!o || !agents) {
		json_decref(o);
		json_decref(agents);
		return NULL;
	}
	json_object_set_new(o, "agents", agents);
	for (size_t i = 0; r && i < r->n; i++) {
		const struct hstate_obs_row *b = &x->rows.obs[r->first + i];

		json_array_append_new(agents, json_pack(
			"{s:s, s:s, s:s, s:b, s:o, s:f, s:b, s:s}",
			"agent", b->agent, "region", b->region,
			"state", hstate_state_name(b->state), "ok", b->ok,
			"rtt_ms", b->rtt_ms >= 0 ? json_real(b->rtt_ms) : json_null(),
			"seen", b->seen, "fresh", b->fresh, "detail", b->detail));
	}
	return o;
}

static bool matches(const struct webui_src *src, const struct svc_service *v,
                    const struct webui_query *q)
{
	bool region = !q->region[0], health = q->health == WEBUI_ANY;

	if (q->q[0] && !strcasestr(v->name, q->q))
		return false;
	for (size_t k = 0; k < v->n_eps && (!region || !health); k++) {
		const struct svc_endpoint *e = &v->eps[k];
		bool stale;
		const char *h = health_of(src->hs, e, &stale);

		if (!region && strcmp(e->region, q->region) == 0)
			region = true;
		if (!health && (q->health == WEBUI_DOWN ? strcmp(h, "down") == 0
		                                        : strcmp(h, "up") != 0))
			health = true;
	}
	return region && health;
}

static json_t *services_json(struct webui *w, const struct webui_src *src,
                             const struct webui_query *q)
{
	const struct snap *sn = src->snap;
	size_t n = sn->svc ? sn->svc->n_pos : 0, matched = 0;
	double now = clock_unix(), window = 0;
	size_t n_ans = ep_cap_of(sn);
	uint64_t *ans = NULL;
	struct obs_index x;
	json_t *arr = json_array(), *doc = NULL;

	if (!arr || obs_index_build(&x, src->hs, now) < 0)
		goto out;
	ans = answers_window(w, n_ans, now, &window);
	for (size_t i = 0; i < n; i++) {
		const struct svc_service *v = svc_at(sn->svc, i);
		json_t *eps, *so;
		uint64_t total = 0;

		if (!v || !matches(src, v, q))
			continue;
		if (matched++ < q->offset || json_array_size(arr) >= q->limit)
			continue;
		for (size_t k = 0; ans && k < v->n_eps; k++)
			if (v->eps[k].id < n_ans)
				total += ans[v->eps[k].id];
		eps = json_array();
		so = json_pack("{s:I, s:s, s:s, s:I, s:b, s:I, s:o}",
		               "id", (json_int_t)v->id, "name", v->name,
		               "policy", svc_policy_name(v->policy),
		               "ttl", (json_int_t)v->ttl,
		               "served", sn->svcx && snap_svc_zone(sn, v) != NULL,
		               "answers", (json_int_t)total, "endpoints", eps);
		if (!so || json_array_append_new(arr, so) < 0)
			goto out;
		for (size_t k = 0; k < v->n_eps; k++) {
			json_t *e = endpoint_json(src, &v->eps[k], &x, ans, n_ans,
			                          total);

			if (!e || json_array_append_new(eps, e) < 0)
				goto out;
		}
	}
	doc = json_pack("{s:I, s:f, s:I, s:I, s:I, s:I, s:f, s:O}",
	                "generation", (json_int_t)sn->gen, "now", now,
	                "total", (json_int_t)n, "matched", (json_int_t)matched,
	                "offset", (json_int_t)q->offset,
	                "limit", (json_int_t)q->limit,
	                "window", window, "services", arr);
out:
	json_decref(arr);
	obs_index_fini(&x);
	free(ans);
	return doc;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The keys of a set (object) as a sorted array of strings. */
static json_t *sorted_keys(json_t *set)
{
	size_t n = json_object_size(set), i = 0;
	const char **k = calloc(n + 1, sizeof(*k));
	const char *key;
	json_t *v, *arr = json_array();

	if (!k || !arr) {
		free(k);
		json_decref(arr);
		return NULL;
	}
	json_object_foreach(set, key, v)
		k[i++] = key;
	qsort(k, n, sizeof(*k), str_cmp);
	for (i = 0; i < n; i++)
		json_array_append_new(arr, json_string(k[i]));
	free(k);
	return arr;
}

static json_t *overview_json(struct webui *w, const struct webui_src *src)
{
	const struct snap *sn = src->snap;
	double now = clock_unix();
	size_t n_svc = sn->svc ? sn->svc->n_pos : 0, n_ep = 0, served = 0;
	size_t by[3] = { 0 }, serving = 0;
	json_t *regions = json_object(), *agents = json_object(), *list = NULL;
	json_t *doc = NULL, *rlist = NULL;
	struct hstate_rows rows;
	bool have = src->hs && hstate_export(src->hs, now, &rows) == 0;
	json_t *a;

	if (!regions || !agents)
		goto out;
	for (size_t i = 0; i < n_svc; i++) {
		const struct svc_service *v = svc_at(sn->svc, i);

		if (!v)
			continue;
		served += sn->svcx && snap_svc_zone(sn, v) != NULL;
		for (size_t k = 0; k < v->n_eps; k++) {
			const struct svc_endpoint *e = &v->eps[k];
			bool stale;
			const char *h = health_of(src->hs, e, &stale);

			n_ep++;
			by[strcmp(h, "up") == 0 ? 0 : strcmp(h, "down") == 0 ? 1 : 2]++;
			serving += !e->drained && (e->admin == SVC_ADMIN_UP ||
			           (e->admin == SVC_ADMIN_AUTO &&
			            strcmp(h, "down") != 0));
			if (e->region[0])
				json_object_set_new(regions, e->region, json_true());
		}
	}
	for (size_t i = 0; have && i < rows.n_obs; i++) {
		const struct hstate_obs_row *r = &rows.obs[i];
		json_t *ag = json_object_get(agents, r->agent);
		const char *st = hstate_state_name(r->state);

		if (!ag) {
			ag = json_pack("{s:s, s:s, s:o, s:o, s:f, s:b, s:I, s:I, s:I, "
			               "s:I}", "name", r->agent, "region", r->region,
			               "lat", coord(r->has_coords, r->lat),
			               "lon", coord(r->has_coords, r->lon),
			               "seen", r->seen, "fresh", 0,
			               "endpoints", (json_int_t)0,
			               "up", (json_int_t)0, "down", (json_int_t)0,
			               "unknown", (json_int_t)0);
			if (!ag || json_object_set_new(agents, r->agent, ag) < 0)
				goto out;
			json_object_set_new(regions, r->region, json_true());
		}
		if (r->seen > json_real_value(json_object_get(ag, "seen")))
			json_object_set_new(ag, "seen", json_real(r->seen));
		if (r->fresh)
			json_object_set_new(ag, "fresh", json_true());
		json_object_set_new(ag, "endpoints", json_integer(
			json_integer_value(json_object_get(ag, "endpoints")) + 1));
		json_object_set_new(ag, st, json_integer(
			json_integer_value(json_object_get(ag, st)) + 1));
	}
	if (!(list = json_array()) || !(rlist = sorted_keys(regions)))
		goto out;
	{
		json_t *names = sorted_keys(agents), *nm;
		size_t i;

		if (!names)
			goto out;
		json_array_foreach(names, i, nm) {
			a = json_object_get(agents, json_string_value(nm));
			json_object_set_new(a, "age", json_real(now -
				json_real_value(json_object_get(a, "seen"))));
			json_array_append(list, a);
		}
		json_decref(names);
	}
	doc = json_pack("{s:I, s:f, s:f, s:I, s:I, s:I, s:{s:I, s:I, s:I}, "
	                "s:I, s:O, s:O, s:I, s:b}",
	                "generation", (json_int_t)sn->gen, "now", now,
	                "started", src->started, "services",
	                (json_int_t)(sn->svc ? sn->svc->n : 0),
	                "served", (json_int_t)served, "endpoints", (json_int_t)n_ep,
	                "health", "up", (json_int_t)by[0], "down",
	                (json_int_t)by[1], "unknown", (json_int_t)by[2],
	                "serving", (json_int_t)serving, "regions", rlist,
	                "agents", list,
	                "last_event", (json_int_t)(w->events.next_seq - 1),
	                "health_checked", src->hs != NULL);
out:
	json_decref(regions);
	json_decref(agents);
	json_decref(list);
	json_decref(rlist);
	if (have)
		hstate_rows_fini(&rows);
	return doc;
}

/* ---- HTTP ----------------------------------------------------------------- */


static void send_error(struct evhttp_request *req, int code, const char *reason,
                       const char *msg)
{
	json_t *d = json_pack("{s:s}", "error", msg);
	const char *colon = strchr(msg, ':');

	if (d && colon && colon != msg && !memchr(msg, ' ', (size_t)(colon - msg)))
		json_object_set_new(d, "field",
		                    json_stringn(msg, (size_t)(colon - msg)));
	api_reply_json(req, code, reason, d);
}

static bool accepts_gzip(struct evhttp_request *req)
{
	const char *ae = evhttp_find_header(evhttp_request_get_input_headers(req),
	                                    "Accept-Encoding");

	return ae && strstr(ae, "gzip");
}

static void send_asset(struct evhttp_request *req, const struct asset *a)
{
	struct evbuffer *b = evbuffer_new();
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	bool gz = accepts_gzip(req);

	if (!b) {
		evhttp_send_error(req, 500, "Internal Server Error");
		return;
	}
	/* The bytes are static: reference them, never copy. */
	if (gz)
		evbuffer_add_reference(b, a->gz, *a->gz_len, NULL, NULL);
	else
		evbuffer_add_reference(b, a->data, *a->len, NULL, NULL);
	evhttp_add_header(h, "Content-Type", a->type);
	if (gz)
		evhttp_add_header(h, "Content-Encoding", "gzip");
	evhttp_add_header(h, "Vary", "Accept-Encoding");
	evhttp_add_header(h, "Cache-Control", "no-cache");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	/* Everything the page uses comes from this server. */
	evhttp_add_header(h, "Content-Security-Policy",
	                  "default-src 'self'; img-src 'self' data:; "
	                  "style-src 'self'; script-src 'self'; "
	                  "frame-ancestors 'none'");
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
}

bool webui_handle(struct webui *w, struct evhttp_request *req,
                  const char *path)
{
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	const char *query = u ? evhttp_uri_get_query(u) : NULL;
	struct webui_query q;
	struct webui_src src = { 0 };
	char err[256];

	if (!w || evhttp_request_get_command(req) != EVHTTP_REQ_GET)
		return false;
	for (size_t i = 0; i < sizeof(assets) / sizeof(assets[0]); i++)
		if (strcmp(path, assets[i].path) == 0) {
			send_asset(req, &assets[i]);
			return true;
		}
	if (strcmp(path, "/v1/ui/overview") != 0 &&
	    strcmp(path, "/v1/ui/services") != 0 &&
	    strcmp(path, "/v1/events") != 0)
		return false;
	if (webui_query_parse(query, &q, err, sizeof(err)) < 0) {
		send_error(req, 400, "Bad Request", err);
		return true;
	}
	w->conf.source(w->conf.ctx, &src);
	if (strcmp(path, "/v1/ui/overview") == 0) {
		api_reply_json(req, 200, "OK", overview_json(w, &src));
	} else if (strcmp(path, "/v1/ui/services") == 0) {
		api_reply_json(req, 200, "OK", services_json(w, &src, &q));
	} else {
		api_reply_json(req, 200, "OK", webui_events_json(&w->events, q.since,
		                                            q.limit, clock_unix()));
	}
	return true;
}

void webui_event(struct webui *w, const char *kind, const char *subject,
                 const char *fmt, ...)
{
	char text[WEBUI_TEXT_MAX];
	va_list ap;

	if (!w)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	webui_events_add(&w->events, clock_unix(), kind, subject, text);
}

struct webui *webui_new(struct event_base *base, const struct webui_conf *c)
{
	struct webui *w = calloc(1, sizeof(*w));
	struct timeval tv = { SAMPLE_S, 0 };

	if (!w)
		return NULL;
	w->conf = *c;
	webui_events_init(&w->events);
	if (c->answers) {
		w->timer = event_new(base, -1, EV_PERSIST, on_sample, w);
		if (!w->timer || event_add(w->timer, &tv) < 0) {
			webui_free(w);
			return NULL;
		}
		on_sample(-1, 0, w);
	}
	return w;
}

void webui_free(struct webui *w)
{
	if (!w)
		return;
	if (w->timer)
		event_free(w->timer);
	for (size_t i = 0; i < N_SAMPLES; i++)
		free(w->samples[i].v);
	free(w);
}
