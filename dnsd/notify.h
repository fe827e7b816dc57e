/* dnsd/notify.h - webhooks: each health transition is POSTed as a JSON
 * object to one http:// URL (notify-url). Control thread only; nothing
 * here ever blocks it: the name of the receiver is resolved with evdns,
 * the request is sent asynchronously on the control thread's event_base.
 *
 * Delivery: one request at a time, in order; a receiver answering 2xx has
 * it; anything else (another status, no connection, no answer within
 * NOTIFY_TIMEOUT_S) is retried after 1, 2, 4, ... seconds (at most
 * NOTIFY_BACKOFF_MAX_S) up to NOTIFY_ATTEMPTS attempts, then dropped and
 * counted. At most NOTIFY_QUEUE_MAX wait; when full, new ones are dropped
 * and counted.
 *
 * Body: {"kind": "health", "at": UNIX, "time": "RFC 3339 UTC", "node":
 * HOSTNAME, "subject": "SERVICE TARGET", "service", "target", "state":
 * "up|down|unknown" (the new one), "stale": bool, "text": "up -> down:
 * reason"}. */
#ifndef DNSD_NOTIFY_H
#define DNSD_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

#include <event2/buffer.h>
#include <event2/event.h>

#define NOTIFY_QUEUE_MAX      1024
#define NOTIFY_ATTEMPTS       8
#define NOTIFY_BACKOFF_MAX_S  60
#define NOTIFY_TIMEOUT_S      5

struct notify;

/* Checks url ("http://HOST[:PORT][/PATH]"): 0, or -EINVAL with err saying
 * what is wrong. No network. */
int notify_url_check(const char *url, char *err, size_t errlen);
/* NULL with err on a bad URL or out of memory. */
struct notify *notify_new(struct event_base *base, const char *url,
                          char *err, size_t errlen);
void notify_free(struct notify *n);                 /* NULL is fine */

/* Queues one notification (n NULL: nothing). subject "SERVICE TARGET",
 * text "old -> new: reason". */
void notify_health(struct notify *n, const char *subject, const char *text);

/* dnsd_notify_* metrics (Prometheus text). */
void notify_metrics(const struct notify *n, struct evbuffer *out);

#endif
