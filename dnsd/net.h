/* dnsd/net.h - the answering threads: per listen address `threads` UDP
 * threads (blocking recvmmsg/sendmmsg on SO_REUSEPORT sockets) and
 * `threads` TCP workers (RFC 7766, libevent, one event base each). Query
 * path: they only read the current snapshot (snap.h) and write their own
 * buffers and counters. */
#ifndef DNSD_NET_H
#define DNSD_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dnsd/rrl.h"
#include "dnsd/stats.h"

struct net_conf {
	unsigned threads;
	unsigned tcp_idle_timeout;   /* seconds */
	unsigned tcp_max_clients;    /* per worker */
	/* UDP response rate limiting; NULL or rate 0: off. Read only by
	 * net_new (each UDP thread copies it into its own table); with it on,
	 * a reuseport BPF program steers each source prefix to one thread. */
	const struct rrl_conf *rrl;
	/* AF_XDP mode on this interface (xdp.h) besides the sockets; NULL:
	 * sockets only. */
	const char *xdp;
};

struct net;

/* Binds every listen address for every worker (UDP and TCP, SO_REUSEPORT).
 * Startup: on failure logs "listen ADDR: reason" and returns NULL. */
struct net *net_new(const struct net_conf *conf, const char *const *listen,
		    size_t n_listen);
/* Starts the worker threads. Returns 0 or a negative errno. */
int net_start(struct net *n);
/* Stops and joins the workers, closes the sockets, frees n. NULL is fine. */
void net_free(struct net *n);
/* Sums every worker's answers per endpoint id into out[cap]. */
void net_ep_answers(const struct net *n, uint64_t *out, size_t cap);

/* Sums every worker's counters into out (slightly stale is fine). */
void net_stats(const struct net *n, struct stats *out);

#endif
