/* dnsd/net.c - the threads that answer; see net.h.
 *
 * UDP: per listen address a reuseport group of `threads` sockets, each read
 * by its own thread with blocking recvmmsg and answered with one sendmmsg
 * per batch. TCP: `threads` workers, each with its own event base (no
 * locks), its listening sockets and connections. Every thread owns its
 * buffers and counters, and is an RCU reader only while it answers
 * (snap_reader_online/offline around a batch or a read), so it never
 * delays a snapshot swap while it waits. */
#include "dnsd/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <urcu-qsbr.h>

#include "common/hostport.h"
#include "common/log.h"
#include "dnsd/answer.h"
#include "dnsd/snap.h"
#include "dnsd/wire.h"
#include "dnsd/xdp.h"

#define BATCH      64
#define RX_SIZE    4096          /* larger UDP queries are dropped */
#define TX_SIZE    (4096 + 512)  /* max-udp-size <= 4096, plus OPT */
#define TCP_OUT_MAX (256 * 1024) /* stop reading a client that doesn't read */
#define UDP_BUF_SIZE (8 * 1024 * 1024)

struct worker;

struct tcp_conn {
	struct worker *w;
	struct bufferevent *bev;
	struct tcp_conn *prev, *next;  /* LRU: head = longest idle */
	struct timespec partial_since; /* a message started but incomplete */
	bool partial;
	bool answer_v6;
	struct in6_addr peer;
};

/* A TCP worker: one event base, the TCP listeners and connections. */
struct worker {
	struct net *net;
	unsigned idx;
	pthread_t tid;
	bool started;
	struct event_base *base;
	int wake_fd;
	struct event *wake_ev;
	struct evconnlistener **tcp;
	struct tcp_conn *lru_head, *lru_tail;
	unsigned n_conns;
	struct answer_worker aw;
	struct stats_thread stats;
	uint8_t tcp_rx[65536];
	uint8_t tcp_tx[2 + ANSWER_MAX];
};

/* A UDP thread: one SO_REUSEPORT socket of one listen address, read with
 * blocking recvmmsg (MSG_WAITFORONE) - no epoll. An epoll registration
 * would sit on the socket's wait queue, and the kernel then walks it for
 * every datagram we send (sock_wfree -> write space -> wake-up, a lock
 * with interrupts off): measurably more CPU per answer. */
struct udp_thr {
	struct net *net;
	unsigned idx;                  /* index in its reuseport group */
	const char *listen;
	int fd;
	pthread_t tid;
	bool started;
	struct answer_worker aw;
	struct stats_thread stats;
	struct rrl *rrl;               /* NULL: no rate limiting */
	/* Batch buffers. */
	struct mmsghdr rmsg[BATCH], smsg[BATCH];
	struct iovec riov[BATCH], siov[BATCH];
	struct sockaddr_storage peer[BATCH];
	struct answer_pre pre[BATCH];
	uint8_t rx[BATCH][RX_SIZE];
	uint8_t tx[BATCH][TX_SIZE];
};

struct net {
	struct net_conf conf;
	struct worker **w;
	unsigned n_workers;
	struct udp_thr **u;
	size_t n_udp;
	size_t n_listen;
	struct xdp *xdp;               /* NULL: no AF_XDP mode */
	atomic_bool stop;
};

static void to_client(const struct sockaddr *sa, struct in6_addr *out)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)sa;

		memset(out, 0, 10);
		out->s6_addr[10] = out->s6_addr[11] = 0xff;
		memcpy(out->s6_addr + 12, &a->sin_addr, 4);
	} else {
		*out = ((const struct sockaddr_in6 *)sa)->sin6_addr;
	}
}

static int bind_socket(const char *what, int type,
		       const struct sockaddr_storage *ss, socklen_t len)
{
	int one = 1;
	int fd = socket(ss->ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		log_err_errno("listen %s: socket", what);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) {
		log_err_errno("listen %s: SO_REUSEPORT", what);
		close(fd);
		return -1;
	}
	if (ss->ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (type == SOCK_STREAM) {
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	} else {
		/* A burst larger than the default 208 KB buffer would be
		 * dropped by the kernel before we see it. Root may exceed
		 * net.core.rmem_max; others get what the sysctl allows. */
		int size = UDP_BUF_SIZE;

		if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
			setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
		if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
			setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	}
	if (bind(fd, (const struct sockaddr *)ss, len) < 0) {
		log_err_errno("listen %s (%s)", what, type == SOCK_STREAM ? "tcp" : "udp");
		close(fd);
		return -1;
	}
	return fd;
}

/* ---- UDP ---- */

/* Answers the n datagrams received (RCU reader: online). */
static void udp_batch(struct udp_thr *u, int n)
{
	const struct snap *s = snap_current();
	int k = 0;

	/* Parse the whole batch first, so that the cache misses of its name
	 * and GeoIP lookups overlap (answer_prepare/answer_prefetch). */
	for (int i = 0; i < n; i++) {
		struct in6_addr src;

		to_client((struct sockaddr *)&u->peer[i], &src);
		answer_prepare(s, u->rx[i], u->rmsg[i].msg_len, &src, &u->pre[i]);
	}
	for (int stage = 0; stage < ANSWER_PREFETCH_STAGES; stage++)
		for (int i = 0; i < n; i++)
			answer_prefetch(s, &u->pre[i], stage, &u->aw);
	if (u->rrl)
		rrl_tick(u->rrl);
	for (int i = 0; i < n; i++) {
		struct answer_client c = { .tcp = false, .pre = &u->pre[i] };
		size_t len;

		if (u->rmsg[i].msg_hdr.msg_flags & MSG_TRUNC) {
			stats_inc(&u->stats.dropped);
			continue;
		}
		to_client((struct sockaddr *)&u->peer[i], &c.addr);
		len = answer_query(s, u->rx[i], u->rmsg[i].msg_len, u->tx[k],
				   &c, &u->aw);
		if (len && u->rrl)      /* RRL: send, truncate or drop */
			len = rrl_filter(u->rrl, &c.addr, u->tx[k], len);
		if (!len)
			continue;
		u->siov[k].iov_base = u->tx[k];
		u->siov[k].iov_len = len;
		u->smsg[k].msg_hdr = (struct msghdr) {
			.msg_name = &u->peer[i],
			.msg_namelen = u->rmsg[i].msg_hdr.msg_namelen,
			.msg_iov = &u->siov[k],
			.msg_iovlen = 1,
		};
		k++;
	}
	for (int sent = 0; sent < k;) {
		int r = sendmmsg(u->fd, u->smsg + sent, (unsigned)(k - sent), 0);

		if (r <= 0) {
			/* A full socket buffer or an unreachable peer: skip
			 * that one answer; UDP may lose it. */
			sent++;
			continue;
		}
		sent += r;
	}
}

static void *udp_main(void *arg)
{
	struct udp_thr *u = arg;

	rcu_register_thread();
	/* Offline while blocked in recvmmsg: a snapshot swap never waits
	 * for an idle thread, only for a batch being answered. */
	rcu_thread_offline();
	while (!atomic_load_explicit(&u->net->stop, memory_order_relaxed)) {
		int n;

		for (int i = 0; i < BATCH; i++) {
			u->riov[i].iov_base = u->rx[i];
			u->riov[i].iov_len = RX_SIZE;
			u->rmsg[i].msg_hdr = (struct msghdr) {
				.msg_name = &u->peer[i],
				.msg_namelen = sizeof(u->peer[i]),
				.msg_iov = &u->riov[i],
				.msg_iovlen = 1,
			};
		}
		/* Blocks for the first datagram, then takes what is queued. */
		n = recvmmsg(u->fd, u->rmsg, BATCH, MSG_WAITFORONE, NULL);
		if (n <= 0)
			continue;       /* timeout, signal, or shutdown to stop */
		snap_reader_online();
		udp_batch(u, n);
		snap_reader_offline();
	}
	rcu_thread_online();
	rcu_unregister_thread();
	return NULL;
}

/* ---- TCP (RFC 7766) ---- */

static void lru_unlink(struct worker *w, struct tcp_conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		w->lru_head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		w->lru_tail = c->prev;
	c->prev = c->next = NULL;
}

static void lru_append(struct worker *w, struct tcp_conn *c)
{
	c->prev = w->lru_tail;
	c->next = NULL;
	if (w->lru_tail)
		w->lru_tail->next = c;
	else
		w->lru_head = c;
	w->lru_tail = c;
}

static void tcp_close(struct tcp_conn *c)
{
	struct worker *w = c->w;

	lru_unlink(w, c);
	w->n_conns--;
	bufferevent_free(c->bev);
	free(c);
}

static double since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) + (now.tv_nsec - t->tv_nsec) / 1e9;
}

static void tcp_read(struct bufferevent *bev, void *arg)
{
	struct tcp_conn *c = arg;
	struct worker *w = c->w;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer *out = bufferevent_get_output(bev);
	const struct snap *s;
	bool bad = false;

	lru_unlink(w, c);
	lru_append(w, c);
	snap_reader_online();
	s = snap_current();
	/* Pipelined queries: answer every complete message in the buffer. */
	for (unsigned i = 0; i < 1024; i++) {
		size_t have = evbuffer_get_length(in), len, rlen;
		uint8_t hdr[2];
		struct answer_client ac = { .addr = c->peer, .tcp = true };

		if (have < 2)
			break;
		evbuffer_copyout(in, hdr, 2);
		len = wire_get16(hdr);
		if (len < WIRE_HDR) {
			bad = true;
			break;
		}
		if (have < 2 + len)
			break;
		evbuffer_drain(in, 2);
		evbuffer_remove(in, w->tcp_rx, len);
		rlen = answer_query(s, w->tcp_rx, len, w->tcp_tx + 2, &ac, &w->aw);
		if (!rlen) {
			bad = true;
			break;
		}
		wire_put16(w->tcp_tx, (uint16_t)rlen);
		evbuffer_add(out, w->tcp_tx, rlen + 2);
		if (evbuffer_get_length(out) > TCP_OUT_MAX) {
			bufferevent_disable(bev, EV_READ);
			break;
		}
	}
	snap_reader_offline();
	if (bad) {
		stats_inc(&w->stats.tcp_closed_bad);
		tcp_close(c);
		return;
	}
	/* A message that trickles in must still complete within the idle
	 * timeout, so one byte a second cannot hold a connection forever. */
	if (evbuffer_get_length(in) > 0) {
		if (!c->partial) {
			c->partial = true;
			clock_gettime(CLOCK_MONOTONIC, &c->partial_since);
		} else if (since(&c->partial_since) > w->net->conf.tcp_idle_timeout) {
			stats_inc(&w->stats.tcp_closed_idle);
			tcp_close(c);
			return;
		}
	} else {
		c->partial = false;
	}
}

static void tcp_write(struct bufferevent *bev, void *arg)
{
	(void)arg;
	/* The client read what we had: accept its next queries again. */
	bufferevent_enable(bev, EV_READ);
}

static void tcp_event(struct bufferevent *bev, short what, void *arg)
{
	struct tcp_conn *c = arg;

	(void)bev;
	if (what & BEV_EVENT_TIMEOUT)
		stats_inc(&c->w->stats.tcp_closed_idle);
	tcp_close(c);
}

/* Closes peer's longest idle connection on this worker when it already
 * holds tcp_max_per_source of them (0: no such cap). */
static void tcp_source_cap(struct worker *w, const struct in6_addr *peer)
{
	unsigned cap = w->net->conf.tcp_max_per_source, n = 0;
	struct tcp_conn *oldest = NULL;

	if (!cap)
		return;
	for (struct tcp_conn *c = w->lru_head; c; c = c->next) {
		if (memcmp(&c->peer, peer, sizeof(*peer)) != 0)
			continue;
		if (!oldest)
			oldest = c;
		n++;
	}
	if (n >= cap && oldest) {
		stats_inc(&w->stats.tcp_closed_cap);
		tcp_close(oldest);
	}
}

static void tcp_accept(struct evconnlistener *l, evutil_socket_t fd,
		       struct sockaddr *sa, int salen, void *arg)
{
	struct worker *w = arg;
	struct tcp_conn *c;
	struct timeval tv = { .tv_sec = w->net->conf.tcp_idle_timeout };
	struct in6_addr peer;

	(void)l;
	(void)salen;
	stats_inc(&w->stats.tcp_accepted);
	to_client(sa, &peer);
	/* One source holds at most tcp_max_per_source of this worker's
	 * connections: its own longest idle makes room. */
	tcp_source_cap(w, &peer);
	/* At the cap, the longest idle connection makes room (RFC 7766 6.2.3
	 * lets a server close idle connections). */
	if (w->n_conns >= w->net->conf.tcp_max_clients && w->lru_head) {
		stats_inc(&w->stats.tcp_closed_cap);
		tcp_close(w->lru_head);
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->w = w;
	c->peer = peer;
	c->bev = bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev) {
		close(fd);
		free(c);
		return;
	}
	bufferevent_setcb(c->bev, tcp_read, tcp_write, tcp_event, c);
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	lru_append(w, c);
	w->n_conns++;
}

/* ---- threads ---- */

static void wake(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	uint64_t v;

	(void)what;
	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_warn_errno("worker %u: wake", w->idx);
	event_base_loopbreak(w->base);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	rcu_register_thread();
	rcu_thread_offline();
	event_base_dispatch(w->base);
	rcu_thread_online();
	rcu_unregister_thread();
	return NULL;
}

static void worker_free(struct worker *w, size_t n_listen)
{
	if (!w)
		return;
	while (w->lru_head)
		tcp_close(w->lru_head);
	for (size_t i = 0; i < n_listen; i++)
		if (w->tcp && w->tcp[i])
			evconnlistener_free(w->tcp[i]);
	if (w->wake_ev)
		event_free(w->wake_ev);
	if (w->wake_fd >= 0)
		close(w->wake_fd);
	if (w->base)
		event_base_free(w->base);
	free(w->tcp);
	answer_worker_fini(&w->aw);
	free(w);
}

static void udp_free(struct udp_thr *u)
{
	if (!u)
		return;
	rrl_free(u->rrl);
	if (u->fd >= 0)
		close(u->fd);
	answer_worker_fini(&u->aw);
	free(u);
}

/* The idx-th socket of listen address `listen`'s reuseport group. */
static struct udp_thr *udp_new(struct net *n, unsigned idx, const char *listen)
{
	struct udp_thr *u = calloc(1, sizeof(*u));
	struct sockaddr_storage ss;
	socklen_t sl;
	struct timeval tv = { .tv_usec = 250 * 1000 };

	if (!u)
		return NULL;
	u->net = n;
	u->idx = idx;
	u->listen = listen;
	u->fd = -1;
	if (answer_worker_init(&u->aw, &u->stats, STATS_EP_COUNTERS, idx) < 0)
		goto fail;
	if (n->conf.rrl && n->conf.rrl->rate &&
	    !(u->rrl = rrl_new(n->conf.rrl, &u->stats)))
		goto fail;
	if (hostport_parse(listen, &ss, &sl) < 0) {
		log_err("listen %s: expected ADDR:PORT or [V6ADDR]:PORT", listen);
		goto fail;
	}
	if ((u->fd = bind_socket(listen, SOCK_DGRAM, &ss, sl)) < 0)
		goto fail;
	/* Blocking reads (see struct udp_thr), woken at least this often to
	 * notice a stop even if the shutdown() wake-up were missed. */
	if (fcntl(u->fd, F_SETFL, fcntl(u->fd, F_GETFL) & ~O_NONBLOCK) < 0 ||
	    setsockopt(u->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) {
		log_err_errno("listen %s: socket options", listen);
		goto fail;
	}
	/* Per-thread RRL buckets are exact only if a prefix always reaches
	 * the same thread: steer the reuseport group. */
	if (u->rrl && idx == 0 && n->conf.threads > 1 &&
	    rrl_steer_attach(u->fd, ss.ss_family, n->conf.threads,
			     n->conf.rrl) < 0)
		log_warn_errno("listen %s: cannot steer sources to threads; "
			       "rate limits apply per thread", listen);
	return u;
fail:
	udp_free(u);
	return NULL;
}

static struct worker *worker_new(struct net *n, unsigned idx,
				 const char *const *listen)
{
	struct worker *w = calloc(1, sizeof(*w));
	struct event_config *ec = event_config_new();

	if (!w || !ec)
		goto fail;
	w->net = n;
	w->idx = idx;
	w->wake_fd = -1;
	if (answer_worker_init(&w->aw, &w->stats, STATS_EP_COUNTERS, idx) < 0)
		goto fail;
	event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK);
	w->base = event_base_new_with_config(ec);
	w->tcp = calloc(n->n_listen, sizeof(*w->tcp));
	if (!w->base || !w->tcp)
		goto fail;
	for (size_t i = 0; i < n->n_listen; i++) {
		struct sockaddr_storage ss;
		socklen_t sl;
		int fd;

		if (hostport_parse(listen[i], &ss, &sl) < 0) {
			log_err("listen %s: expected ADDR:PORT or [V6ADDR]:PORT", listen[i]);
			goto fail;
		}
		if ((fd = bind_socket(listen[i], SOCK_STREAM, &ss, sl)) < 0)
			goto fail;
		w->tcp[i] = evconnlistener_new(w->base, tcp_accept, w,
					       LEV_OPT_CLOSE_ON_FREE, 1024, fd);
		if (!w->tcp[i]) {
			log_err_errno("listen %s: tcp listen", listen[i]);
			close(fd);
			goto fail;
		}
	}
	w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->wake_fd < 0)
		goto fail;
	w->wake_ev = event_new(w->base, w->wake_fd, EV_READ | EV_PERSIST, wake, w);
	if (!w->wake_ev || event_add(w->wake_ev, NULL) < 0)
		goto fail;
	event_config_free(ec);
	return w;
fail:
	if (ec)
		event_config_free(ec);
	worker_free(w, n->n_listen);
	return NULL;
}

struct net *net_new(const struct net_conf *conf, const char *const *listen,
		    size_t n_listen)
{
	struct net *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->conf = *conf;
	n->n_listen = n_listen;
	n->w = calloc(conf->threads, sizeof(*n->w));
	if (!n->w) {
		free(n);
		return NULL;
	}
	for (unsigned i = 0; i < conf->threads; i++) {
		if (!(n->w[i] = worker_new(n, i, listen))) {
			net_free(n);
			return NULL;
		}
		n->n_workers++;
	}
	n->u = calloc(n_listen * conf->threads + 1, sizeof(*n->u));
	if (!n->u) {
		net_free(n);
		return NULL;
	}
	/* Group by listen address, in bind order: socket k of a reuseport
	 * group is the one the RRL steering program's index k selects. */
	for (size_t l = 0; l < n_listen; l++)
		for (unsigned i = 0; i < conf->threads; i++) {
			if (!(n->u[n->n_udp] = udp_new(n, i, listen[l]))) {
				net_free(n);
				return NULL;
			}
			n->n_udp++;
		}
	if (conf->xdp &&
	    !(n->xdp = xdp_new(&(struct xdp_conf) { .ifname = conf->xdp,
						    .rrl = conf->rrl },
			       listen, n_listen))) {
		net_free(n);
		return NULL;
	}
	return n;
}

int net_start(struct net *n)
{
	for (unsigned i = 0; i < n->n_workers; i++) {
		int rc = pthread_create(&n->w[i]->tid, NULL, worker_main, n->w[i]);

		if (rc) {
			log_err("worker %u: pthread_create: %s", i, strerror(rc));
			return -rc;
		}
		n->w[i]->started = true;
	}
	for (size_t i = 0; i < n->n_udp; i++) {
		int rc = pthread_create(&n->u[i]->tid, NULL, udp_main, n->u[i]);

		if (rc) {
			log_err("udp %s #%u: pthread_create: %s", n->u[i]->listen,
				n->u[i]->idx, strerror(rc));
			return -rc;
		}
		n->u[i]->started = true;
	}
	return n->xdp ? xdp_start(n->xdp) : 0;
}

void net_free(struct net *n)
{
	if (!n)
		return;
	atomic_store(&n->stop, true);
	xdp_free(n->xdp);
	for (size_t i = 0; i < n->n_udp; i++)
		/* Wakes a recvmmsg blocked on this socket at once (Linux does
		 * so even for unconnected UDP, while returning ENOTCONN). */
		if (n->u[i]->started)
			shutdown(n->u[i]->fd, SHUT_RDWR);
	for (unsigned i = 0; i < n->n_workers; i++) {
		uint64_t one = 1;

		if (n->w[i]->started &&
		    write(n->w[i]->wake_fd, &one, sizeof(one)) < 0)
			log_warn_errno("worker %u: wake", i);
	}
	for (size_t i = 0; i < n->n_udp; i++) {
		if (n->u[i]->started)
			pthread_join(n->u[i]->tid, NULL);
		udp_free(n->u[i]);
	}
	for (unsigned i = 0; i < n->n_workers; i++) {
		if (n->w[i]->started)
			pthread_join(n->w[i]->tid, NULL);
		worker_free(n->w[i], n->n_listen);
	}
	free(n->u);
	free(n->w);
	free(n);
}

void net_stats(const struct net *n, struct stats *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned i = 0; i < n->n_workers; i++)
		stats_add(out, &n->w[i]->stats);
	for (size_t i = 0; i < n->n_udp; i++)
		stats_add(out, &n->u[i]->stats);
	xdp_stats_add(n->xdp, out);
}

void net_ep_answers(const struct net *n, uint64_t *out, size_t cap)
{
	memset(out, 0, cap * sizeof(*out));
	for (unsigned i = 0; i < n->n_workers; i++)
		answer_worker_ep_add(&n->w[i]->aw, out, cap);
	for (size_t i = 0; i < n->n_udp; i++)
		answer_worker_ep_add(&n->u[i]->aw, out, cap);
	xdp_ep_answers_add(n->xdp, out, cap);
}
