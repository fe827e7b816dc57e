/* tests/tools/api_testd.c - a minimal server around dnsd/api.c and
 * health/hstate.c, for tests/integration/test_probe_api.py: the real API
 * module and quorum logic, without dnsd's DNS side. It is also a compact
 * example of the wiring dnsd does (ops backed by hstate, a 0.5 s tick that
 * ages reports and logs transitions once each).
 *
 *   api_testd --listen ADDR:PORT --token-file FILE --checks FILE.json
 *             [--quorum Q] [--default-interval S]
 *
 * FILE.json is a GET /v1/checks document; it is served as it is and its ids
 * (with their intervals) are the endpoints hstate accepts. GET /v1/status
 * returns api_health_json() of the current state. Built by the test with
 * cc against build/libgslb.a (not part of make). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "common/log.h"
#include "dnsd/api.h"
#include "health/hstate.h"
#include "health/token.h"

struct srv {
	json_t *checks;
	struct hstate *h;
	int reports;
};

static double wall(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void log_events(struct srv *s)
{
	struct hstate_event ev[32];
	size_t n;

	while ((n = hstate_take_events(s->h, ev, 32)) > 0)
		for (size_t i = 0; i < n; i++)
			log_info("health: endpoint %u: %s%s -> %s%s (%s)", ev[i].id,
			         hstate_state_name(ev[i].old_state),
			         ev[i].old_stale ? " (stale)" : "",
			         hstate_state_name(ev[i].new_state),
			         ev[i].new_stale ? " (stale)" : "", ev[i].reason);
}

static json_t *op_checks(void *ctx)
{
	return json_incref(((struct srv *)ctx)->checks);
}

static int op_report(void *ctx, const struct api_report *r, char *err,
                     size_t errlen)
{
	struct srv *s = ctx;
	struct hstate_agent a = { r->agent, r->region, r->has_coords, r->lat,
	                          r->lon };
	int rc = hstate_report(s->h, &a, r->results, r->n, wall(), err, errlen);

	if (rc == 0)
		s->reports++;
	log_events(s);
	return rc;
}

static int op_status(void *ctx, struct evbuffer *out)
{
	struct srv *s = ctx;
	struct hstate_rows rows;
	json_t *d;
	char *text;
	int rc;

	if (hstate_export(s->h, wall(), &rows) < 0)
		return -ENOMEM;
	d = api_health_json(&rows);
	hstate_rows_fini(&rows);
	if (d)
		json_object_set_new(d, "reports", json_integer(s->reports));
	text = d ? json_dumps(d, JSON_COMPACT) : NULL;
	json_decref(d);
	rc = text && evbuffer_add(out, text, strlen(text)) == 0 ? 0 : -ENOMEM;
	free(text);
	return rc;
}

static int op_metrics(void *ctx, struct evbuffer *out)
{
	struct srv *s = ctx;

	return evbuffer_add_printf(out, "# TYPE gslb_reports_total counter\n"
	                           "gslb_reports_total %d\n", s->reports) < 0
	       ? -ENOMEM : 0;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct srv *s = arg;
	(void)fd;
	(void)what;

	hstate_tick(s->h, wall());
	log_events(s);
}

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(arg);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "token-file", required_argument, NULL, 't' },
		{ "checks", required_argument, NULL, 'c' },
		{ "quorum", required_argument, NULL, 'q' },
		{ "default-interval", required_argument, NULL, 'i' },
		{ NULL, 0, NULL, 0 },
	};
	static const struct api_ops ops = {
		.checks = op_checks, .report = op_report,
		.status = op_status, .metrics = op_metrics,
	};
	const char *listen = NULL, *token_file = NULL, *checks = NULL;
	struct hstate_params p;
	double dflt = 10;
	char token[TOKEN_MAX], err[300];
	struct srv s = { 0 };
	struct hstate_ep *eps;
	struct event_base *base;
	struct event *tick, *sigs[2];
	struct timeval half = { 0, 500000 };
	json_error_t je;
	json_t *arr;
	struct api *api;
	size_t n;
	int o;

	hstate_params_default(&p);
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'l': listen = optarg; break;
		case 't': token_file = optarg; break;
		case 'c': checks = optarg; break;
		case 'q': p.quorum = atof(optarg); break;
		case 'i': dflt = atof(optarg); break;
		default: return 2;
		}
	}
	if (!listen || !token_file || !checks)
		fatal("api_testd: --listen, --token-file and --checks are needed");
	if (token_load(token_file, token, sizeof(token), err, sizeof(err)) < 0)
		fatal("api_testd: %s", err);
	if (!(s.checks = json_load_file(checks, 0, &je)))
		fatal("api_testd: %s:%d: %s", checks, je.line, je.text);
	arr = json_object_get(s.checks, "checks");
	n = json_array_size(arr);
	eps = calloc(n + 1, sizeof(*eps));
	for (size_t i = 0; i < n; i++) {
		json_t *c = json_array_get(arr, i);
		json_t *iv = json_object_get(c, "interval");

		eps[i].id = (uint32_t)json_integer_value(json_object_get(c, "id"));
		eps[i].interval = json_is_number(iv) ? json_number_value(iv) : dflt;
	}
	if (!(s.h = hstate_new(&p)) || hstate_set_endpoints(s.h, eps, n) < 0)
		fatal("api_testd: bad quorum or check list");
	free(eps);
	signal(SIGPIPE, SIG_IGN);
	base = event_base_new();
	if (!(api = api_new(base, listen, token, &ops, &s, err, sizeof(err))))
		fatal("api_testd: %s", err);
	tick = event_new(base, -1, EV_PERSIST, on_tick, &s);
	event_add(tick, &half);
	sigs[0] = evsignal_new(base, SIGTERM, on_signal, base);
	sigs[1] = evsignal_new(base, SIGINT, on_signal, base);
	event_add(sigs[0], NULL);
	event_add(sigs[1], NULL);
	log_info("api_testd: listening on %s (port %u), %zu checks", listen,
	         api_port(api), n);
	event_base_dispatch(base);
	api_free(api);
	event_free(tick);
	event_free(sigs[0]);
	event_free(sigs[1]);
	event_base_free(base);
	hstate_free(s.h);
	json_decref(s.checks);
	return 0;
}
