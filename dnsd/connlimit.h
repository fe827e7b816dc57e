/* dnsd/connlimit.h - bounds on the HTTP API's TCP connections, whatever a
 * peer sends: a cap on how many are open (the longest idle are closed
 * first: no completed request for the longest time, then no data for the
 * longest time) and a request deadline (a connection must complete a
 * request within the deadline of its start or of its previous request;
 * trickling bytes does not extend it). Control thread only (load time).
 *
 * The connections are found from the kernel's side: every open descriptor
 * of this process that is a TCP socket whose local address is the API's,
 * other than the listener (identified across descriptor reuse by its
 * SO_COOKIE). A connection is closed with shutdown(2): the HTTP layer that
 * owns it sees the end of the stream and releases it the usual way. */
#ifndef DNSD_CONNLIMIT_H
#define DNSD_CONNLIMIT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>

struct connlimit;                                /* opaque */

struct connlimit_stats {
	size_t open;               /* at the last scan */
	uint64_t closed_cap;       /* closed to stay under the cap */
	uint64_t closed_deadline;  /* closed for missing the deadline */
	uint64_t scans;
};

/* Watches connections accepted on the listening socket listen_fd: at most
 * max_conns open, a request within deadline_s. NULL on out of memory. */
struct connlimit *connlimit_new(int listen_fd, unsigned max_conns,
                                double deadline_s);
void connlimit_free(struct connlimit *c);        /* NULL is fine */

enum connlimit_verdict {
	CONNLIMIT_OK,
	CONNLIMIT_TRIM,         /* past the cap: connlimit_trim() soon */
	CONNLIMIT_FULL,         /* 5/4 of the cap: also stop accepting until */
};
/* A connection was just accepted. Past the cap the caller calls
 * connlimit_trim() soon, after the requests already received have been
 * read (so they count as activity); at 5/4 of the cap it stops accepting
 * until then (connections wait in the listen queue). */
enum connlimit_verdict connlimit_accepted(struct connlimit *c);
/* Rescans and closes the longest idle down to 9/10 of the cap (a flood
 * costs one scan per tenth of the cap); now in monotonic seconds. */
void connlimit_trim(struct connlimit *c, double now);
/* The connection on fd has a complete request being answered: no deadline
 * until connlimit_request_done() (a slow handler or a long reply is not
 * the peer's fault; the HTTP layer's write timeout bounds a peer that
 * does not read). */
void connlimit_request_start(struct connlimit *c, int fd, double now);
/* The connection on fd completed a request (its reply is sent): its
 * deadline starts again. */
void connlimit_request_done(struct connlimit *c, int fd, double now);
/* Once a second: rescan, close connections past the deadline and any over
 * the cap. Time the event loop spent away (a sweep more than 2 s after
 * the last) does not count against any deadline. */
void connlimit_sweep(struct connlimit *c, double now);

void connlimit_stats(const struct connlimit *c, struct connlimit_stats *out);

#endif
