/* dnsd/webui.h - the status page: a read-only HTML page (web/ in the
 * source tree, embedded at build time) and the paged JSON it polls, served
 * by the HTTP API for GET paths it does not route itself. Control thread
 * only (evhttp callbacks and a timer on the API's event_base).
 *
 *   GET /                  the page (web/index.html)
 *   GET /ui/app.js, /ui/app.css, /ui/world.svg   its parts
 *   GET /v1/ui/overview    counts, regions, every agent (name, region,
 *                          coordinates, freshness, verdict counts)
 *   GET /v1/ui/services?offset=N&limit=N&q=TEXT&region=R&health=down
 *                          one page of services (matching name substring,
 *                          endpoint region, health), each with its
 *                          endpoints (health, admin, drained, weight,
 *                          priority, coordinates, share of the service's
 *                          answers over the last minute, every agent's
 *                          verdict and RTT)
 *   GET /v1/events?since=SEQ&limit=N
 *                          events of the last hour newer than SEQ
 *
 * Events are kept in memory (a ring of WEBUI_EVENTS_MAX, an hour at most):
 * each has a sequence number, a time, a kind ("health", "config",
 * "reload", "api", ... - the feed takes any kind), a subject and a text. */
#ifndef DNSD_WEBUI_H
#define DNSD_WEBUI_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

#include "dnsd/snap.h"
#include "health/hstate.h"

#define WEBUI_EVENTS_MAX   2048
#define WEBUI_EVENT_AGE    3600.0     /* seconds an event is listed */
#define WEBUI_PAGE_MAX     500        /* services per page at most */
#define WEBUI_KIND_MAX     16
#define WEBUI_SUBJECT_MAX  300
#define WEBUI_TEXT_MAX     300

/* ---- the events feed (no sockets: unit-testable) ---------------------- */

struct webui_event {
	uint64_t seq;                      /* from 1, increasing */
	double at;                         /* unix seconds */
	char kind[WEBUI_KIND_MAX];
	char subject[WEBUI_SUBJECT_MAX];
	char text[WEBUI_TEXT_MAX];
};

struct webui_events {
	struct webui_event ring[WEBUI_EVENTS_MAX];
	uint64_t next_seq;                 /* seq of the next event */
};

void webui_events_init(struct webui_events *ev);
/* Appends an event at time at (strings truncated to fit); the oldest
 * falls out when the ring is full. */
void webui_events_add(struct webui_events *ev, double at, const char *kind,
                      const char *subject, const char *text);
/* {"events": [{"seq", "at", "kind", "subject", "text"}], "last": SEQ}:
 * events with seq > since and at >= now - WEBUI_EVENT_AGE, oldest first,
 * at most limit of them (the newest ones when more match); "last" is the
 * newest seq ever added (0: none), for the next since. New reference or
 * NULL (out of memory). */
json_t *webui_events_json(const struct webui_events *ev, uint64_t since,
                          size_t limit, double now);

/* ---- the services page filter ------------------------------------------ */

enum webui_health_filter { WEBUI_ANY, WEBUI_DOWN, WEBUI_NOT_UP };

struct webui_query {
	size_t offset, limit;
	char q[256];                       /* name substring, "" = any */
	char region[HSTATE_NAME_MAX];      /* endpoint region, "" = any */
	uint8_t health;                    /* enum webui_health_filter */
	uint64_t since;                    /* events: newer than this seq */
};

/* Parses a URI query string ("offset=0&limit=50&q=www&region=eu&health=
 * down", "since=12&limit=200"; NULL or "" gives the defaults: 0, 50, any,
 * since 0). Returns 0 or -EINVAL with err naming the parameter; an unknown
 * parameter is an error too. */
int webui_query_parse(const char *query, struct webui_query *out, char *err,
                      size_t errlen);

/* ---- the HTTP side ----------------------------------------------------- */

struct webui_src {
	const struct snap *snap;           /* in force */
	const struct hstate *hs;           /* NULL without health */
	double started;                    /* unix seconds */
};

struct webui_conf {
	/* What is in force now. */
	void (*source)(void *ctx, struct webui_src *out);
	/* Answers that carried each endpoint id since start, into
	 * ep[0..cap); NULL: no share of answers. */
	void (*answers)(void *ctx, uint64_t *ep, size_t cap);
	void *ctx;
};

struct webui;

/* Starts the answer-share sampler (a timer on base). NULL when out of
 * memory. conf is copied. */
struct webui *webui_new(struct event_base *base, const struct webui_conf *c);
void webui_free(struct webui *w);                  /* NULL is fine */

/* Answers req if path is one of the page's (GET only); returns false
 * otherwise, leaving req alone. */
bool webui_handle(struct webui *w, struct evhttp_request *req,
                  const char *path);

/* Adds an event to the feed (w NULL: nothing). */
void webui_event(struct webui *w, const char *kind, const char *subject,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
