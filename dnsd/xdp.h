/* dnsd/xdp.h - AF_XDP mode: UDP queries answered without the kernel's
 * socket layer.
 *
 * An XDP program (xdp_filter.bpf.c) on one interface hands the UDP
 * datagrams for dnsd's listen addresses to one AF_XDP socket per receive
 * queue; a thread per queue answers them from the snapshot with the same
 * answer_query() as the socket path and sends each answer as a frame it
 * builds itself (Ethernet, IP and UDP headers, checksums). This skips, per
 * query, the UDP receive queue, recvmmsg, the route lookup and skb
 * building of sendmmsg - most of what a query costs with sockets. TCP,
 * fragments, IP options and everything else still reach the normal UDP
 * and TCP sockets, which stay bound.
 *
 * Load time: xdp_new()/xdp_start()/xdp_free() from the control thread
 * (net.c). Query path: the queue threads, and xdp_frame_parse() /
 * xdp_frame_reply(), exported for the unit test and the fuzz target. */
#ifndef DNSD_XDP_H
#define DNSD_XDP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

#include "dnsd/rrl.h"
#include "dnsd/stats.h"

/* Frames are 4096 octets; the largest headers are Ethernet + IPv6 + UDP. */
#define XDP_FRAME_SIZE   4096
#define XDP_HDR_MAX      (14 + 40 + 8)
/* The largest UDP answer a frame carries: max-udp-size may not exceed it
 * with xdp on (config.c). */
#define XDP_ANSWER_MAX   (XDP_FRAME_SIZE - XDP_HDR_MAX)
/* Larger queries are left to the UDP socket: an answer may echo the query
 * plus an OPT record, and must still fit a frame. */
#define XDP_QUERY_MAX    1500

struct xdp_conf {
	const char *ifname;
	/* Rate limiting as in net.h (each queue thread has its own table). */
	const struct rrl_conf *rrl;
};

struct xdp;

/* Loads the XDP program, creates a socket per receive queue of
 * conf->ifname and attaches the program (native mode where the driver has
 * it, else generic) for the UDP listen addresses listen[0..n). The
 * program is detached when dnsd exits, however it exits (a BPF link).
 * Startup: on failure logs "xdp IFACE: reason" and returns NULL. */
struct xdp *xdp_new(const struct xdp_conf *conf, const char *const *listen,
		    size_t n_listen);
/* Starts the queue threads. Returns 0 or a negative errno. */
int xdp_start(struct xdp *x);
/* Stops and joins the threads, detaches the program, frees x. NULL is
 * fine. */
void xdp_free(struct xdp *x);
/* Adds every queue thread's counters to out. */
void xdp_stats_add(const struct xdp *x, struct stats *out);
/* Adds every queue thread's answers per endpoint id to out[cap]. */
void xdp_ep_answers_add(const struct xdp *x, uint64_t *out, size_t cap);
/* Checks what can be checked without attaching (--check): the interface
 * exists, and on a loopback device the sysctls the kernel needs to accept
 * frames dnsd sends. Logs every problem; returns how many there were. */
unsigned xdp_check(const char *ifname, const char *const *listen,
		   size_t n_listen);

/* A received frame: a UDP datagram to answer. */
struct xdp_pkt {
	uint16_t hlen;            /* Ethernet + IP + UDP headers */
	uint16_t plen;            /* UDP payload (the DNS message) */
	bool v6;
	struct in6_addr client;   /* IPv4 as v4-mapped ::ffff:a.b.c.d */
};

/* Query path: checks frame f[0..len) - Ethernet, then IPv4 without options
 * or fragments (header checksum verified) or IPv6 without extension
 * headers, from a unicast source, then UDP with lengths that agree and
 * non-zero ports - and fills p. Returns 0, or -EINVAL for a frame to
 * drop. */
int xdp_frame_parse(const uint8_t *f, size_t len, struct xdp_pkt *p);
/* Query path: writes in front of the answer at out + q->hlen (alen
 * octets, already there) the headers of the reply to query frame qf:
 * addresses and ports swapped, IP and UDP checksums. Returns the frame
 * length. */
size_t xdp_frame_reply(const struct xdp_pkt *q, const uint8_t *qf,
		       uint8_t *out, size_t alen);

#endif
