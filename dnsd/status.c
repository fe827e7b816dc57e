/* dnsd/status.c - status document and metrics; see status.h. */
#include "dnsd/status.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <ldns/util.h>
#include <openssl/crypto.h>

#include "common/clock.h"
#include "db/store.h"
#include "dnsd/config.h"
#include "policy/svc.h"

static const char *health_of(const struct status_src *s,
			     const struct svc_endpoint *e, bool *stale)
{
	uint8_t st = HSTATE_UNKNOWN;

	*stale = false;
	if (!e->has_check)
		return "up";          /* no check means healthy */
	if (s->hs && hstate_get(s->hs, e->id, &st, stale) < 0)
		st = HSTATE_UNKNOWN;
	return hstate_state_name(st);
}

static json_t *endpoint_json(const struct status_src *s,
			     const struct svc_endpoint *e,
			     const struct hstate_rows *rows)
{
	bool stale;
	const char *h = health_of(s, e, &stale);
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

	for (size_t i = 0; rows && i < rows->n_eps; i++) {
		const struct hstate_ep_row *r = &rows->eps[i];

		if (r->endpoint_id != e->id)
			continue;
		json_object_set_new(o, "since", r->since > 0 ?
				    json_real(r->since) : json_null());
		json_object_set_new(o, "reason", r->reason && *r->reason ?
				    json_string(r->reason) : json_null());
	}
	for (size_t i = 0; rows && i < rows->n_lat; i++) {
		const struct hstate_lat_row *r = &rows->lat[i];

		if (r->endpoint_id != e->id)
			continue;
		json_array_append_new(lat, json_pack("{s:s, s:f, s:I, s:f}",
			"region", r->region, "rtt_ms", r->rtt_ms,
			"samples", (json_int_t)r->samples, "updated", r->updated));
	}
	json_object_set_new(o, "latency", lat);
	for (size_t i = 0; rows && i < rows->n_obs; i++) {
		const struct hstate_obs_row *r = &rows->obs[i];

		if (r->endpoint_id != e->id)
			continue;
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

json_t *status_json(const struct status_src *s)
{
	const struct snap *sn = s->snap;
	json_t *doc, *zones = json_array(), *svcs = json_array();
	struct hstate_rows rows;
	bool have_rows = s->hs && hstate_export(s->hs, clock_unix(), &rows) == 0;

	for (size_t i = 0; i < sn->n_zones; i++) {
		const struct zone *z = sn->zones[i];

		json_array_append_new(zones, json_pack("{s:s, s:s, s:I, s:I}",
			"name", z->origin, "file", z->file,
			"serial", (json_int_t)z->serial,
			"records", (json_int_t)z->n_records));
	}
	for (size_t i = 0; sn->svc && i < sn->svc->n_pos; i++) {
		const struct svc_service *v = svc_at(sn->svc, i);
		json_t *eps;

		if (!v)
			continue;
		eps = json_array();
		for (size_t k = 0; k < v->n_eps; k++)
			json_array_append_new(eps, endpoint_json(s, &v->eps[k],
							have_rows ? &rows : NULL));
		json_array_append_new(svcs, json_pack(
			"{s:s, s:s, s:I, s:b, s:o}", "name", v->name,
			"policy", svc_policy_name(v->policy), "ttl", (json_int_t)v->ttl,
			"served", snap_svc_zone(sn, v) != NULL, "endpoints", eps));
	}
	/* config_revision: the etcd revision of the configuration this node
	 * has applied (dnsd --etcd); the SQLite store alone has none, so 0. */
	doc = json_pack("{s:I, s:f, s:I, s:o, s:o, s:I, s:I, s:b, s:b, s:I}",
			"generation", (json_int_t)sn->gen, "started", s->started,
			"threads", (json_int_t)s->threads, "zones", zones,
			"services", svcs, "services_skipped", (json_int_t)s->svc_skipped,
			"db_problems", (json_int_t)s->db_problems,
			"db_ok", s->db_ok, "last_reload_ok", s->last_reload_ok,
			"config_revision", (json_int_t)s->config_revision);
	if (have_rows)
		hstate_rows_fini(&rows);
	return doc;
}

/* Prometheus label values: backslash, quote and newline escaped. */
static void label(struct evbuffer *out, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			evbuffer_add_printf(out, "\\%c", *v);
		else if (*v == '\n')
			evbuffer_add(out, "\\n", 2);
		else
			evbuffer_add(out, v, 1);
	}
}

static void head(struct evbuffer *out, const char *name, const char *type,
		 const char *help)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
			    type);
}

/* The service and target of an endpoint id, for labels; NULL if gone. */
static const struct svc_endpoint *endpoint_by_id(const struct snap *sn,
						 uint32_t id,
						 const char **service)
{
	for (size_t i = 0; sn->svc && i < sn->svc->n_pos; i++) {
		const struct svc_service *v = svc_at(sn->svc, i);

		for (size_t k = 0; v && k < v->n_eps; k++)
			if (v->eps[k].id == id) {
				*service = v->name;
				return &v->eps[k];
			}
	}
	return NULL;
}

static void ep_labels(struct evbuffer *out, const char *service,
		      const struct svc_endpoint *e)
{
	evbuffer_add_printf(out, "service=\"");
	label(out, service);
	evbuffer_add_printf(out, "\",target=\"");
	label(out, e->t.text);
	evbuffer_add_printf(out, "\"");
}

/* Agent freshness and RTTs, from the health state's rows. */
static void health_metrics(const struct status_src *s, struct evbuffer *out)
{
	struct hstate_rows rows;
	double now = clock_unix();

	if (!s->hs || hstate_export(s->hs, now, &rows) < 0)
		return;
	head(out, "dnsd_agent_last_report_age_seconds", "gauge",
	     "Seconds since each probe agent's latest report was received.");
	for (size_t i = 0; i < rows.n_obs; i++) {
		double last = rows.obs[i].seen;
		bool first = true;

		/* once per agent: its newest report over all endpoints */
		for (size_t k = 0; k < rows.n_obs; k++) {
			if (strcmp(rows.obs[k].agent, rows.obs[i].agent) != 0)
				continue;
			if (k < i)
				first = false;
			if (rows.obs[k].seen > last)
				last = rows.obs[k].seen;
		}
		if (!first)
			continue;
		evbuffer_add_printf(out, "dnsd_agent_last_report_age_seconds{agent=\"");
		label(out, rows.obs[i].agent);
		evbuffer_add_printf(out, "\",region=\"");
		label(out, rows.obs[i].region);
		evbuffer_add_printf(out, "\"} %.3f\n", now - last);
	}
	head(out, "dnsd_endpoint_rtt_seconds", "gauge",
	     "Latest check round-trip time per agent and endpoint.");
	for (size_t i = 0; i < rows.n_obs; i++) {
		const struct hstate_obs_row *r = &rows.obs[i];
		const char *svc;
		const struct svc_endpoint *e = endpoint_by_id(s->snap, r->endpoint_id, &svc);

		if (!e || r->rtt_ms < 0)
			continue;
		evbuffer_add_printf(out, "dnsd_endpoint_rtt_seconds{agent=\"");
		label(out, r->agent);
		evbuffer_add_printf(out, "\",");
		ep_labels(out, svc, e);
		evbuffer_add_printf(out, "} %.6f\n", r->rtt_ms / 1000.0);
	}
	head(out, "dnsd_endpoint_rtt_ewma_seconds", "gauge",
	     "Smoothed round-trip time per probe region and endpoint (latency policy input).");
	for (size_t i = 0; i < rows.n_lat; i++) {
		const struct hstate_lat_row *r = &rows.lat[i];
		const char *svc;
		const struct svc_endpoint *e = endpoint_by_id(s->snap, r->endpoint_id, &svc);

		if (!e)
			continue;
		evbuffer_add_printf(out, "dnsd_endpoint_rtt_ewma_seconds{region=\"");
		label(out, r->region);
		evbuffer_add_printf(out, "\",");
		ep_labels(out, svc, e);
		evbuffer_add_printf(out, "} %.6f\n", r->rtt_ms / 1000.0);
	}
	hstate_rows_fini(&rows);
}

/* What the health checks say, apart from admin and drain: down (1 when the
 * agents' quorum says down) and stale (1 when no agent's report is fresh,
 * so no quorum can be formed and the last state stands). Checked
 * endpoints only. */
static void endpoint_state_metrics(const struct status_src *s,
				   struct evbuffer *out)
{
	const struct snap *sn = s->snap;

	for (int which = 0; which < 2; which++) {
		head(out, which ? "dnsd_endpoint_stale" : "dnsd_endpoint_down", "gauge",
		     which ? "1 if no probe agent's report on the checked endpoint is fresh "
			     "(no quorum; the last state stands), else 0."
			   : "1 if the probe agents' quorum says the checked endpoint is "
			     "down, else 0 (up or unknown).");
		for (size_t i = 0; sn->svc && i < sn->svc->n_pos; i++) {
			const struct svc_service *v = svc_at(sn->svc, i);

			for (size_t k = 0; v && k < v->n_eps; k++) {
				const struct svc_endpoint *e = &v->eps[k];
				bool stale;
				const char *h = health_of(s, e, &stale);

				if (!e->has_check)
					continue;
				evbuffer_add_printf(out, which ? "dnsd_endpoint_stale{"
						    : "dnsd_endpoint_down{");
				ep_labels(out, v->name, e);
				evbuffer_add_printf(out, "} %d\n", which ? stale
						    : strcmp(h, "down") == 0);
			}
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
	health_metrics(s, out);
	endpoint_state_metrics(s, out);
	head(out, "dnsd_endpoint_healthy", "gauge",
	     "1 if the endpoint may answer (health and admin state), else 0.");
	for (size_t i = 0; sn->svc && i < sn->svc->n_pos; i++) {
		const struct svc_service *v = svc_at(sn->svc, i);

		for (size_t k = 0; v && k < v->n_eps; k++) {
			const struct svc_endpoint *e = &v->eps[k];
			bool stale;
			const char *h = health_of(s, e, &stale);
			int up = e->admin == SVC_ADMIN_UP ||
				 (e->admin == SVC_ADMIN_AUTO && strcmp(h, "down") != 0);

			evbuffer_add_printf(out, "dnsd_endpoint_healthy{service=\"");
			label(out, v->name);
			evbuffer_add_printf(out, "\",target=\"");
			label(out, e->t.text);
			evbuffer_add_printf(out, "\"} %d\n", up);
		}
	}
	if (!s->ep_answers)
		return 0;
	head(out, "dnsd_endpoint_answers_total", "counter",
	     "Answers that carried the endpoint, since dnsd started.");
	for (size_t i = 0; sn->svc && i < sn->svc->n_pos; i++) {
		const struct svc_service *v = svc_at(sn->svc, i);

		for (size_t k = 0; v && k < v->n_eps; k++) {
			const struct svc_endpoint *e = &v->eps[k];

			if (e->id >= s->ep_cap)
				continue;
			evbuffer_add_printf(out, "dnsd_endpoint_answers_total{service=\"");
			label(out, v->name);
			evbuffer_add_printf(out, "\",target=\"");
			label(out, e->t.text);
			evbuffer_add_printf(out, "\"} %llu\n",
					    (unsigned long long)s->ep_answers[e->id]);
		}
	}
	return 0;
}
