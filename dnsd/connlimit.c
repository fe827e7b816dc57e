/* dnsd/connlimit.c - see connlimit.h. */
#include "dnsd/connlimit.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include "common/log.h"

#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif

#define FD_TABLE_MAX (1u << 22)

struct slot {
	uint64_t cookie;        /* 0: none */
	double since;           /* start of the current request's deadline */
	double stalled_at;      /* the connlimit's stalled at that start */
	bool closing;           /* shut down, the HTTP layer not done yet */
	bool busy;              /* a request is being answered */
};

struct cand {
	int fd;
	double since;
	uint32_t idle_ms;
};

struct connlimit {
	int listen_fd;
	struct sockaddr_storage local;
	unsigned max_conns;
	double deadline;
	struct slot *slots;     /* by descriptor */
	size_t n_slots;
	struct cand *cands;
	size_t cap_cands;
	size_t estimate;        /* open at the last scan + accepted since */
	/* Seconds the event loop could not read (a sweep came late): no
	 * connection's deadline runs while the server is not reading. */
	double last_sweep, stalled;
	struct connlimit_stats st;
};

static void slot_start(const struct connlimit *c, struct slot *s, double now)
{
	s->since = now;
	s->stalled_at = c->stalled;
}

struct connlimit *connlimit_new(int listen_fd, unsigned max_conns,
                                double deadline_s)
{
	struct connlimit *c = calloc(1, sizeof(*c));
	socklen_t len = sizeof(struct sockaddr_storage);

	if (!c)
		return NULL;
	c->listen_fd = listen_fd;
	c->max_conns = max_conns ? max_conns : 1;
	c->deadline = deadline_s;
	if (getsockname(listen_fd, (struct sockaddr *)&c->local, &len) < 0) {
		free(c);
		return NULL;
	}
	return c;
}

void connlimit_free(struct connlimit *c)
{
	if (!c)
		return;
	free(c->slots);
	free(c->cands);
	free(c);
}

/* Is sa (a socket's local address) the API's? Same family and port, and
 * the same address unless the listener is bound to the wildcard. */
static bool is_local(const struct connlimit *c, const struct sockaddr_storage *sa)
{
	if (sa->ss_family != c->local.ss_family)
		return false;
	if (sa->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)sa;
		const struct sockaddr_in *l = (const void *)&c->local;

		return a->sin_port == l->sin_port &&
		       (l->sin_addr.s_addr == htonl(INADDR_ANY) ||
		        a->sin_addr.s_addr == l->sin_addr.s_addr);
	}
	if (sa->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)sa;
		const struct sockaddr_in6 *l = (const void *)&c->local;

		return a->sin6_port == l->sin6_port &&
		       (IN6_IS_ADDR_UNSPECIFIED(&l->sin6_addr) ||
		        memcmp(&a->sin6_addr, &l->sin6_addr,
		               sizeof(a->sin6_addr)) == 0);
	}
	return false;
}

static struct slot *slot_of(struct connlimit *c, int fd)
{
	if (fd < 0 || (unsigned)fd >= FD_TABLE_MAX)
		return NULL;
	if ((size_t)fd >= c->n_slots) {
		size_t n = c->n_slots ? c->n_slots : 256;
		struct slot *ns;

		while (n <= (size_t)fd)
			n *= 2;
		if (!(ns = realloc(c->slots, n * sizeof(*ns))))
			return NULL;
		memset(ns + c->n_slots, 0, (n - c->n_slots) * sizeof(*ns));
		c->slots = ns;
		c->n_slots = n;
	}
	return &c->slots[fd];
}

static uint64_t cookie_of(int fd)
{
	uint64_t ck = 0;
	socklen_t l = sizeof(ck);

	if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &ck, &l) < 0)
		return 0;
	return ck;
}

/* The longest idle first: the oldest start of the current request (a
 * connection that completes requests stays young however long it lives;
 * one that trickles or says nothing ages), then the longest time since
 * data arrived. */
static int by_idle_desc(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;

	if (x->since != y->since)
		return x->since < y->since ? -1 : 1;
	return x->idle_ms < y->idle_ms ? 1 : x->idle_ms > y->idle_ms ? -1 : 0;
}

/* Finds the API's connections, closes those past the deadline, then the
 * longest idle until at most target remain. */
static void scan(struct connlimit *c, double now, size_t target)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	size_t n = 0;

	if (!d) {
		log_warn_errno("api: connection limits: /proc/self/fd");
		return;
	}
	c->st.scans++;
	while ((de = readdir(d)) != NULL) {
		struct sockaddr_storage sa;
		socklen_t sl = sizeof(sa);
		struct tcp_info ti;
		socklen_t tl = sizeof(ti);
		int fd, type = 0, acc = 1;
		socklen_t il = sizeof(int);
		uint64_t ck;
		struct slot *s;
		char *end;
		long v = strtol(de->d_name, &end, 10);

		if (*end || end == de->d_name || v < 0 || v == c->listen_fd ||
		    v == dirfd(d))
			continue;
		fd = (int)v;
		/* A connection already known costs two calls; one already
		 * shut down is not counted again. */
		if (getsockname(fd, (struct sockaddr *)&sa, &sl) < 0 ||
		    !is_local(c, &sa) || !(ck = cookie_of(fd)) ||
		    !(s = slot_of(c, fd)))
			continue;
		if (s->cookie == ck && s->closing)
			continue;
		if (s->cookie != ck) {
			if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &il) < 0 ||
			    type != SOCK_STREAM ||
			    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc,
			               &il) < 0 || acc)
				continue;
			s->cookie = ck;
			slot_start(c, s, now);
			s->closing = false;
			s->busy = false;
		}
		if (!s->busy && now - s->since - (c->stalled - s->stalled_at) >
		    c->deadline) {
			shutdown(fd, SHUT_RDWR);
			c->st.closed_deadline++;
			s->closing = true;
			continue;
		}
		if (n == c->cap_cands) {
			size_t cap = c->cap_cands ? c->cap_cands * 2 : 256;
			struct cand *nc = realloc(c->cands, cap * sizeof(*nc));

			if (!nc)
				continue;
			c->cands = nc;
			c->cap_cands = cap;
		}
		c->cands[n].fd = fd;
		c->cands[n].since = s->since;
		c->cands[n].idle_ms = getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti,
		                                 &tl) == 0 ? ti.tcpi_last_data_recv
		                                           : UINT32_MAX;
		n++;
	}
	closedir(d);
	if (n > target) {
		qsort(c->cands, n, sizeof(*c->cands), by_idle_desc);
		for (size_t i = 0; i < n - target; i++) {
			shutdown(c->cands[i].fd, SHUT_RDWR);
			c->slots[c->cands[i].fd].closing = true;
		}
		c->st.closed_cap += n - target;
		n = target;
	}
	c->st.open = n;
	c->estimate = n;
}

enum connlimit_verdict connlimit_accepted(struct connlimit *c)
{
	++c->estimate;
	if (c->estimate >= (size_t)c->max_conns + c->max_conns / 4 + 1)
		return CONNLIMIT_FULL;
	return c->estimate > c->max_conns ? CONNLIMIT_TRIM : CONNLIMIT_OK;
}

void connlimit_trim(struct connlimit *c, double now)
{
	scan(c, now, (size_t)c->max_conns * 9 / 10);
}

static void request_mark(struct connlimit *c, int fd, double now, bool busy)
{
	struct slot *s = slot_of(c, fd);
	uint64_t ck;

	if (!s)
		return;
	/* A connection not scanned yet starts its deadline now as well. */
	if ((ck = cookie_of(fd)) != 0 && !(s->cookie == ck && s->closing)) {
		s->cookie = ck;
		slot_start(c, s, now);
		s->closing = false;
		s->busy = busy;
	}
}

void connlimit_request_start(struct connlimit *c, int fd, double now)
{
	request_mark(c, fd, now, true);
}

void connlimit_request_done(struct connlimit *c, int fd, double now)
{
	request_mark(c, fd, now, false);
}

void connlimit_sweep(struct connlimit *c, double now)
{
	if (c->last_sweep > 0 && now - c->last_sweep > 2)
		c->stalled += now - c->last_sweep - 1;
	c->last_sweep = now;
	scan(c, now, c->max_conns);
}

void connlimit_stats(const struct connlimit *c, struct connlimit_stats *out)
{
	*out = c->st;
}
