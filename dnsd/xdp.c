/* dnsd/xdp.c - AF_XDP mode; see xdp.h.
 *
 * Per receive queue: one UMEM of XDP_NFRAMES frames, the first half lent
 * to the kernel through the fill ring for queries, the second half a
 * stack of free frames for answers, which come back through the
 * completion ring once sent. A query frame goes back to the fill ring as
 * soon as it is answered, so the two halves never mix. The rings and the
 * UMEM come from libxdp's xsk API; the program and its maps are ours
 * (libbpf, from the object embedded at build time), attached through a
 * BPF link so that it goes away with the process. */
#include "dnsd/xdp.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <linux/ethtool.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <urcu-qsbr.h>
#include <xdp/xsk.h>

#include "common/hostport.h"
#include "common/log.h"
#include "dnsd/answer.h"
#include "dnsd/snap.h"
#include "dnsd/xdp_key.h"

/* The compiled xdp_filter.bpf.c (build/dnsd/xdp_filter_obj.c). */
extern const unsigned char xdp_filter_obj[];
extern const size_t xdp_filter_obj_len;

#define XDP_NFRAMES  2048          /* per queue: 8 MiB, pinned by the kernel */
#define XDP_RING     1024          /* every ring; = XDP_NFRAMES / 2 */
#define XDP_BATCH    64
#define XDP_QUEUES   256

struct xdp_thr {
	struct xdp *x;
	unsigned queue;
	pthread_t tid;
	bool started;
	uint8_t *area;                 /* the UMEM */
	struct xsk_umem *umem;
	struct xsk_socket *xsk;
	int fd;
	struct xsk_ring_prod fill, tx;
	struct xsk_ring_cons comp, rx;
	uint64_t free_frame[XDP_NFRAMES / 2];
	unsigned n_free;
	bool kick;                     /* descriptors on the TX ring to push */
	struct answer_worker aw;
	struct stats_thread stats;
	struct rrl *rrl;
	struct xdp_pkt pkt[XDP_BATCH];
	struct answer_pre pre[XDP_BATCH];
};

struct xdp {
	char ifname[IF_NAMESIZE];
	unsigned ifindex;
	/* The largest UDP payload in one IPv4 / IPv6 packet on IFACE (its
	 * MTU when dnsd started, less the headers). */
	uint16_t udp_max4, udp_max6;
	struct bpf_object *obj;
	int link_fd;
	int stop_fd;                   /* eventfd: readable once stopping */
	atomic_bool stop;
	struct xdp_thr **t;
	unsigned n;
};

/* ---- frames (query path) ---- */

static inline uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* One's complement sum (RFC 1071) of p[0..n) added to sum, not folded. */
static uint64_t csum_add(uint64_t sum, const uint8_t *p, size_t n)
{
	while (n >= 4) {
		uint32_t w;

		memcpy(&w, p, 4);
		sum += ntohl(w);
		p += 4;
		n -= 4;
	}
	if (n >= 2) {
		sum += get16(p);
		p += 2;
		n -= 2;
	}
	if (n)
		sum += (uint32_t)p[0] << 8;
	return sum;
}

static uint16_t csum_fold(uint64_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

int xdp_frame_parse(const uint8_t *f, size_t len, struct xdp_pkt *p)
{
	const uint8_t *udp;
	size_t room;

	if (len < 14)
		return -EINVAL;
	switch (get16(f + 12)) {
	case 0x0800: {
		const uint8_t *ip = f + 14;
		size_t tot;

		if (len < 14 + 20 + 8 || ip[0] != 0x45 || ip[9] != 17 ||
		    (get16(ip + 6) & 0x3fff) || csum_fold(csum_add(0, ip, 20)))
			return -EINVAL;
		tot = get16(ip + 2);
		/* Short frames are padded: trust the IP length, not len. */
		if (tot < 20 + 8 || tot > len - 14)
			return -EINVAL;
		/* A source the kernel's input routing would call martian (0/8,
		 * multicast, broadcast): answering it would reflect to a group
		 * or nowhere. The socket path never sees these. */
		if (ip[12] == 0 || ip[12] >= 224)
			return -EINVAL;
		p->v6 = false;
		memset(&p->client, 0, 10);
		p->client.s6_addr[10] = p->client.s6_addr[11] = 0xff;
		memcpy(p->client.s6_addr + 12, ip + 12, 4);
		udp = ip + 20;
		room = tot - 20;
		break;
	}
	case 0x86dd: {
		const uint8_t *ip = f + 14;
		size_t pl;

		if (len < 14 + 40 + 8 || (ip[0] >> 4) != 6 || ip[6] != 17)
			return -EINVAL;
		pl = get16(ip + 4);
		if (pl < 8 || pl > len - 14 - 40)
			return -EINVAL;
		/* Multicast or unspecified source: nothing to answer. */
		if (ip[8] == 0xff || !memcmp(ip + 8, &in6addr_any, 16))
			return -EINVAL;
		p->v6 = true;
		memcpy(&p->client, ip + 8, 16);
		udp = ip + 40;
		room = pl;
		break;
	}
	default:
		return -EINVAL;
	}
	/* Port 0 at either end: a reply to it cannot be delivered, and one
	 * to a datagram for port 0 would come from port 0 (the socket path
	 * never sees either: no socket is bound to port 0). */
	if (get16(udp) == 0 || get16(udp + 2) == 0 || get16(udp + 4) < 8 ||
	    get16(udp + 4) > room)
		return -EINVAL;
	p->hlen = (uint16_t)(udp + 8 - f);
	p->plen = (uint16_t)(get16(udp + 4) - 8);
	return 0;
}

size_t xdp_frame_reply(const struct xdp_pkt *q, const uint8_t *qf,
		       uint8_t *out, size_t alen)
{
	uint8_t *udp = out + q->hlen - 8;
	size_t ulen = 8 + alen;
	uint64_t sum;

	/* Ethernet: back to where it came from. */
	memcpy(out, qf + 6, 6);
	memcpy(out + 6, qf, 6);
	memcpy(out + 12, qf + 12, 2);
	if (!q->v6) {
		const uint8_t *qi = qf + 14;
		uint8_t *ip = out + 14;

		ip[0] = 0x45;
		ip[1] = 0;
		put16(ip + 2, (uint16_t)(20 + ulen));
		put16(ip + 4, 0);             /* ID 0 with DF (RFC 6864) */
		put16(ip + 6, 0x4000);
		ip[8] = 64;
		ip[9] = 17;
		put16(ip + 10, 0);
		memcpy(ip + 12, qi + 16, 4);
		memcpy(ip + 16, qi + 12, 4);
		put16(ip + 10, csum_fold(csum_add(0, ip, 20)));
		sum = csum_add(0, ip + 12, 8);
	} else {
		const uint8_t *qi = qf + 14;
		uint8_t *ip = out + 14;

		ip[0] = 0x60;
		ip[1] = ip[2] = ip[3] = 0;
		put16(ip + 4, (uint16_t)ulen);
		ip[6] = 17;
		ip[7] = 64;
		memcpy(ip + 8, qi + 24, 16);
		memcpy(ip + 24, qi + 8, 16);
		sum = csum_add(0, ip + 8, 32);
	}
	memcpy(udp, qf + q->hlen - 6, 2);     /* source port = their dest */
	memcpy(udp + 2, qf + q->hlen - 8, 2);
	put16(udp + 4, (uint16_t)ulen);
	put16(udp + 6, 0);
	sum += 17 + ulen;                     /* pseudo-header: proto, length */
	sum = csum_add(sum, udp, ulen);
	{
		uint16_t c = csum_fold(sum);

		put16(udp + 6, c ? c : 0xffff);   /* RFC 768: 0 means none */
	}
	return q->hlen + alen;
}

/* ---- the queue threads ---- */

static void reclaim(struct xdp_thr *t)
{
	uint32_t idx = 0, n = xsk_ring_cons__peek(&t->comp, XDP_RING, &idx);

	for (uint32_t i = 0; i < n; i++)
		t->free_frame[t->n_free++] =
			*xsk_ring_cons__comp_addr(&t->comp, idx + i);
	xsk_ring_cons__release(&t->comp, n);
}

/* Has the kernel send what is on the TX ring. In copy mode it sends in
 * the sendto() call, at most a budget of frames per call (EAGAIN: more to
 * send); zero-copy drivers need the call only when they ask for it. */
static void push(struct xdp_thr *t)
{
	if (!t->kick)
		return;
	t->kick = false;
	if (!xsk_ring_prod__needs_wakeup(&t->tx))
		return;
	for (int i = 0; i < 64; i++) {
		if (sendto(t->fd, NULL, 0, MSG_DONTWAIT, NULL, 0) >= 0)
			return;
		if (errno != EAGAIN && errno != EBUSY && errno != EINTR) {
			/* ENOBUFS, ENETDOWN: the frames stay on the ring and
			 * go with the next call. */
			t->kick = true;
			return;
		}
		if (errno == EBUSY)
			reclaim(t);
	}
	t->kick = true;
}

/* Answers the n frames at rx[idx..] (RCU reader: online). */
static void batch(struct xdp_thr *t, uint32_t idx, uint32_t n)
{
	const struct snap *s = snap_current();
	uint32_t fidx, tidx = 0, k = 0, m;
	const uint8_t *f[XDP_BATCH];
	uint64_t addr[XDP_BATCH];
	bool ok[XDP_BATCH];

	for (uint32_t i = 0; i < n; i++) {
		const struct xdp_desc *d = xsk_ring_cons__rx_desc(&t->rx, idx + i);

		addr[i] = d->addr;
		f[i] = xsk_umem__get_data(t->area, d->addr);
		ok[i] = xdp_frame_parse(f[i], d->len, &t->pkt[i]) == 0;
		if (ok[i])
			answer_prepare(s, f[i] + t->pkt[i].hlen, t->pkt[i].plen,
				       &t->pkt[i].client, &t->pre[i]);
		else
			stats_inc(&t->stats.xdp_dropped);
	}
	for (int stage = 0; stage < ANSWER_PREFETCH_STAGES; stage++)
		for (uint32_t i = 0; i < n; i++)
			if (ok[i])
				answer_prefetch(s, &t->pre[i], stage, &t->aw);
	if (t->rrl)
		rrl_tick(t->rrl);
	if (t->n_free < n)
		reclaim(t);
	/* A frame for every answer; the TX ring has room for all the free
	 * frames, so this reservation succeeds. Without a frame, a query is
	 * dropped. */
	m = n < t->n_free ? n : t->n_free;
	if (xsk_ring_prod__reserve(&t->tx, m, &tidx) != m)
		m = 0;
	for (uint32_t i = 0; i < n; i++) {
		/* The socket path would fragment an answer over the MTU; a
		 * frame cannot be, so such an answer is truncated (TC=1). */
		struct answer_client c = {
			.addr = t->pkt[i].client,
			.udp_max = t->pkt[i].v6 ? t->x->udp_max6 : t->x->udp_max4,
			.pre = &t->pre[i],
		};
		const struct xdp_pkt *p = &t->pkt[i];
		struct xdp_desc *d;
		uint8_t *out;
		size_t len;

		if (!ok[i])
			continue;
		if (k == m) {
			stats_inc(&t->stats.xdp_dropped);
			continue;
		}
		out = xsk_umem__get_data(t->area, t->free_frame[t->n_free - 1]);
		len = answer_query(s, f[i] + p->hlen, p->plen, out + p->hlen, &c,
				   &t->aw);
		if (len && t->rrl)
			len = rrl_filter(t->rrl, &c.addr, out + p->hlen, len);
		if (!len)
			continue;
		d = xsk_ring_prod__tx_desc(&t->tx, tidx + k++);
		d->addr = t->free_frame[--t->n_free];
		d->len = (uint32_t)xdp_frame_reply(p, f[i], out, len);
	}
	/* Reserved m, filled k: hand back the rest (libxdp has no call for
	 * it; reserve only moved the cached producer index). */
	t->tx.cached_prod -= m - k;
	xsk_ring_prod__submit(&t->tx, k);
	stats_addn(&t->stats.xdp_answers, k);
	if (k)
		t->kick = true;
	/* The query frames go back to the kernel. */
	if (xsk_ring_prod__reserve(&t->fill, n, &fidx) == n) {
		for (uint32_t i = 0; i < n; i++)
			*xsk_ring_prod__fill_addr(&t->fill, fidx + i) =
				xsk_umem__extract_addr(addr[i]);
		xsk_ring_prod__submit(&t->fill, n);
	}
	xsk_ring_cons__release(&t->rx, n);
}

static void *thr_main(void *arg)
{
	struct xdp_thr *t = arg;
	struct xdp *x = t->x;

	rcu_register_thread();
	rcu_thread_offline();
	while (!atomic_load_explicit(&x->stop, memory_order_relaxed)) {
		uint32_t idx, n = xsk_ring_cons__peek(&t->rx, XDP_BATCH, &idx);

		if (n) {
			snap_reader_online();
			batch(t, idx, n);
			snap_reader_offline();
			push(t);
			reclaim(t);
			continue;
		}
		push(t);
		reclaim(t);
		if (xsk_ring_prod__needs_wakeup(&t->fill))
			(void)recvfrom(t->fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
		/* Nothing to answer: sleep until the kernel has frames, or for
		 * a while when answers are still waiting for the ring. */
		{
			struct pollfd pf[2] = {
				{ .fd = t->fd, .events = POLLIN },
				{ .fd = x->stop_fd, .events = POLLIN },
			};

			poll(pf, 2, t->kick ? 1 : 1000);
		}
	}
	rcu_thread_online();
	rcu_unregister_thread();
	return NULL;
}

/* ---- setup (load time) ---- */

static int libbpf_log(enum libbpf_print_level lvl, const char *fmt, va_list ap)
{
	char line[512];
	size_t n;

	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n && line[n - 1] == '\n')
		line[--n] = '\0';
	if (lvl == LIBBPF_WARN)
		log_warn("xdp: libbpf: %s", line);
	else
		log_debug("xdp: libbpf: %s", line);
	return 0;
}

/* Receive queues of the interface (its sysfs queues/rx-N entries). */
static unsigned rx_queues(const char *ifname)
{
	char path[128];
	struct dirent *e;
	unsigned n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/sys/class/net/%s/queues", ifname);
	if (!(d = opendir(path)))
		return 1;
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, "rx-", 3))
			n++;
	closedir(d);
	return n ? n : 1;
}

/* The interface's MTU; 576, the least any IPv4 link has, if unknown. */
static unsigned iface_mtu(const char *ifname)
{
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	unsigned mtu = 576;

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (fd >= 0 && ioctl(fd, SIOCGIFMTU, &ifr) == 0 && ifr.ifr_mtu > 576)
		mtu = (unsigned)ifr.ifr_mtu;
	if (fd >= 0)
		close(fd);
	return mtu;
}

static int sysctl_is(const char *path, int want)
{
	FILE *f = fopen(path, "r");
	int v = -1;

	if (!f)
		return 0;
	if (fscanf(f, "%d", &v) != 1)
		v = -1;
	fclose(f);
	return v == want;
}

/* Is feature `name` (as `ethtool -k` calls it) on? -1: cannot tell. */
static int ethtool_feature(const char *ifname, const char *name)
{
	struct {
		struct ethtool_sset_info hdr;
		uint32_t len;
	} si = { .hdr = { .cmd = ETHTOOL_GSSET_INFO,
			  .sset_mask = 1ull << ETH_SS_FEATURES } };
	struct ifreq ifr = { 0 };
	struct ethtool_gstrings *gs = NULL;
	struct ethtool_gfeatures *gf = NULL;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc = -1;
	uint32_t n, blocks;

	if (fd < 0)
		return -1;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ifr.ifr_data = (void *)&si;
	if (ioctl(fd, SIOCETHTOOL, &ifr) < 0 || !si.hdr.sset_mask)
		goto out;
	n = si.len;
	blocks = (n + 31) / 32;
	gs = calloc(1, sizeof(*gs) + (size_t)n * ETH_GSTRING_LEN);
	gf = calloc(1, sizeof(*gf) + blocks * sizeof(gf->features[0]));
	if (!gs || !gf)
		goto out;
	gs->cmd = ETHTOOL_GSTRINGS;
	gs->string_set = ETH_SS_FEATURES;
	gs->len = n;
	ifr.ifr_data = (void *)gs;
	if (ioctl(fd, SIOCETHTOOL, &ifr) < 0)
		goto out;
	gf->cmd = ETHTOOL_GFEATURES;
	gf->size = blocks;
	ifr.ifr_data = (void *)gf;
	if (ioctl(fd, SIOCETHTOOL, &ifr) < 0)
		goto out;
	for (uint32_t i = 0; i < n; i++)
		if (!strncmp((const char *)gs->data + i * ETH_GSTRING_LEN, name,
			     ETH_GSTRING_LEN)) {
			rc = !!(gf->features[i / 32].active & (1u << (i % 32)));
			break;
		}
out:
	free(gs);
	free(gf);
	close(fd);
	return rc;
}

/* The listen map's key for "ADDR:PORT"; -EINVAL if it is not one. */
static int key_of(const char *listen, struct xdp_key *k)
{
	struct sockaddr_storage ss;
	socklen_t sl;

	if (hostport_parse(listen, &ss, &sl) < 0)
		return -EINVAL;
	memset(k, 0, sizeof(*k));
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;

		k->family = XDP_KEY_V4;
		k->port = a->sin_port;
		memcpy(k->addr, &a->sin_addr, 4);
	} else {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;

		k->family = XDP_KEY_V6;
		k->port = a->sin6_port;
		memcpy(k->addr, &a->sin6_addr, 16);
	}
	return 0;
}

unsigned xdp_check(const char *ifname, const char *const *listen,
		   size_t n_listen)
{
	unsigned bad = 0, flags = 0;
	bool v4 = false;
	struct ifreq ifr = { 0 };
	int fd;

	if (strlen(ifname) >= IF_NAMESIZE || !if_nametoindex(ifname)) {
		log_err("xdp %s: no such network interface", ifname);
		return 1;
	}
	for (size_t i = 0; i < n_listen; i++) {
		struct xdp_key k;

		if (key_of(listen[i], &k) == 0 && k.family == XDP_KEY_V4)
			v4 = true;
	}
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (fd >= 0 && ioctl(fd, SIOCGIFFLAGS, &ifr) == 0)
		flags = (unsigned)ifr.ifr_flags;
	if (fd >= 0)
		close(fd);
	if (!(flags & IFF_LOOPBACK))
		return 0;
	/* A frame sent on a loopback device comes back in as received, with
	 * local addresses at both ends and no route attached: the kernel
	 * drops it as a martian unless told to accept that. */
	if (v4) {
		char p1[128], p2[128];

		snprintf(p1, sizeof(p1), "/proc/sys/net/ipv4/conf/%s/accept_local", ifname);
		snprintf(p2, sizeof(p2), "/proc/sys/net/ipv4/conf/%s/route_localnet", ifname);
		if (!sysctl_is(p1, 1) || !sysctl_is(p2, 1)) {
			log_err("xdp %s: IPv4 answers sent on a loopback device are "
				"dropped by the kernel unless "
				"net.ipv4.conf.%s.accept_local=1 and "
				"net.ipv4.conf.%s.route_localnet=1", ifname,
				ifname, ifname);
			bad++;
		}
	}
	/* With UDP segmentation offload the device takes a local sender's
	 * UDP_SEGMENT message whole, and XDP sees the datagrams merged into
	 * one frame: dnsd would answer only the first. */
	if (ethtool_feature(ifname, "tx-udp-segmentation") == 1)
		log_warn("xdp %s: tx-udp-segmentation is on: datagrams that local "
			 "programs send with UDP GSO reach XDP merged, and only "
			 "the first query of each is answered (ethtool -K %s "
			 "tx-udp-segmentation off)", ifname, ifname);
	return bad;
}

static void thr_free(struct xdp_thr *t)
{
	if (!t)
		return;
	if (t->xsk)
		xsk_socket__delete(t->xsk);
	if (t->umem)
		xsk_umem__delete(t->umem);
	if (t->area)
		munmap(t->area, (size_t)XDP_NFRAMES * XDP_FRAME_SIZE);
	rrl_free(t->rrl);
	answer_worker_fini(&t->aw);
	free(t);
}

/* xsk_socket__create(), retried for up to 2 s while the queue is busy:
 * the kernel releases a closed AF_XDP socket's hold on its queue later,
 * from a work item, so a dnsd restarted at once (after kill -9 too) can
 * find the queue still taken for a moment. An owner that stays (another
 * dnsd) was ruled out before, by its attached program (xdp_new). */
static int xsk_create(struct xdp_thr *t, unsigned queue,
		      const struct xsk_socket_config *sc)
{
	for (int i = 0;; i++) {
		int rc = xsk_socket__create(&t->xsk, t->x->ifname, queue, t->umem,
					    &t->rx, &t->tx, sc);

		if (rc != -EBUSY || i == 40)
			return rc;
		nanosleep(&(struct timespec) { .tv_nsec = 50 * 1000 * 1000 }, NULL);
	}
}

static struct xdp_thr *thr_new(struct xdp *x, const struct xdp_conf *conf,
			       unsigned queue, int xsks_fd, bool *zerocopy)
{
	struct xdp_thr *t = calloc(1, sizeof(*t));
	struct xsk_umem_config uc = {
		.fill_size = XDP_RING,
		.comp_size = XDP_RING,
		.frame_size = XDP_FRAME_SIZE,
		.frame_headroom = 0,
	};
	struct xsk_socket_config sc = {
		.rx_size = XDP_RING,
		.tx_size = XDP_RING,
		.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
		.bind_flags = XDP_USE_NEED_WAKEUP | XDP_ZEROCOPY,
	};
	size_t size = (size_t)XDP_NFRAMES * XDP_FRAME_SIZE;
	uint32_t idx;
	int rc;

	if (!t)
		return NULL;
	t->x = x;
	t->queue = queue;
	if (answer_worker_init(&t->aw, &t->stats, STATS_EP_COUNTERS, 100 + queue) < 0)
		goto fail;
	if (conf->rrl && conf->rrl->rate && !(t->rrl = rrl_new(conf->rrl, &t->stats)))
		goto fail;
	t->area = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (t->area == MAP_FAILED) {
		t->area = NULL;
		log_err_errno("xdp %s: queue %u: %zu MiB of frames", x->ifname,
			      queue, size >> 20);
		goto fail;
	}
	if ((rc = xsk_umem__create(&t->umem, t->area, size, &t->fill, &t->comp,
				   &uc)) < 0) {
		t->umem = NULL;
		log_err("xdp %s: queue %u: cannot register the frames: %s%s",
			x->ifname, queue, strerror(-rc), rc == -EPERM ||
			rc == -ENOMEM ? " (needs root: CAP_NET_RAW, CAP_IPC_LOCK)" : "");
		goto fail;
	}
	rc = xsk_create(t, queue, &sc);
	if (rc < 0) {
		/* No zero-copy support in the driver (or generic mode). */
		sc.bind_flags = XDP_USE_NEED_WAKEUP | XDP_COPY;
		rc = xsk_create(t, queue, &sc);
		*zerocopy = false;
	}
	if (rc < 0) {
		t->xsk = NULL;
		log_err("xdp %s: queue %u: AF_XDP socket: %s", x->ifname, queue,
			strerror(-rc));
		goto fail;
	}
	t->fd = xsk_socket__fd(t->xsk);
	if (bpf_map_update_elem(xsks_fd, &queue, &t->fd, 0) < 0) {
		log_err_errno("xdp %s: queue %u: socket map", x->ifname, queue);
		goto fail;
	}
	/* First half: for the kernel to receive into; second: answers. */
	if (xsk_ring_prod__reserve(&t->fill, XDP_RING, &idx) != XDP_RING) {
		log_err("xdp %s: queue %u: fill ring", x->ifname, queue);
		goto fail;
	}
	for (uint32_t i = 0; i < XDP_RING; i++)
		*xsk_ring_prod__fill_addr(&t->fill, idx + i) =
			(uint64_t)i * XDP_FRAME_SIZE;
	xsk_ring_prod__submit(&t->fill, XDP_RING);
	for (uint32_t i = 0; i < XDP_NFRAMES / 2; i++)
		t->free_frame[t->n_free++] =
			(uint64_t)(XDP_NFRAMES - 1 - i) * XDP_FRAME_SIZE;
	return t;
fail:
	thr_free(t);
	return NULL;
}

struct xdp *xdp_new(const struct xdp_conf *conf, const char *const *listen,
		    size_t n_listen)
{
	struct xdp *x = calloc(1, sizeof(*x));
	struct bpf_program *prog;
	struct bpf_map *xsks, *lmap;
	const char *mode = "native";
	bool zerocopy = true;
	unsigned nq;
	int rc;

	if (!x)
		return NULL;
	x->link_fd = x->stop_fd = -1;
	if (xdp_check(conf->ifname, listen, n_listen))
		goto fail;
	snprintf(x->ifname, sizeof(x->ifname), "%s", conf->ifname);
	x->ifindex = if_nametoindex(x->ifname);
	/* Before any AF_XDP socket: the owner of an attached program (another
	 * dnsd) also holds the queues, and binding one would fail with a bare
	 * EBUSY that does not say why. */
	{
		LIBBPF_OPTS(bpf_xdp_query_opts, qo);

		if (bpf_xdp_query((int)x->ifindex, 0, &qo) == 0 &&
		    (qo.prog_id || qo.drv_prog_id || qo.skb_prog_id ||
		     qo.hw_prog_id)) {
			log_err("xdp %s: another XDP program is attached (id %u: "
				"ip link show %s); not replacing it", x->ifname,
				qo.prog_id ? qo.prog_id : qo.drv_prog_id ?
				qo.drv_prog_id : qo.skb_prog_id ? qo.skb_prog_id :
				qo.hw_prog_id, x->ifname);
			goto fail;
		}
	}
	{
		unsigned mtu = iface_mtu(x->ifname);

		x->udp_max4 = (uint16_t)(mtu - 28 > 65535 ? 65535 : mtu - 28);
		x->udp_max6 = (uint16_t)(mtu - 48 > 65535 ? 65535 : mtu - 48);
	}
	nq = rx_queues(x->ifname);
	if (nq > XDP_QUEUES)
		nq = XDP_QUEUES;
	if ((x->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
		goto fail;

	libbpf_set_print(libbpf_log);
	x->obj = bpf_object__open_mem(xdp_filter_obj, xdp_filter_obj_len, NULL);
	if (!x->obj) {
		log_err_errno("xdp %s: cannot open the XDP program", x->ifname);
		goto fail;
	}
	xsks = bpf_object__find_map_by_name(x->obj, "xsks");
	lmap = bpf_object__find_map_by_name(x->obj, "listen");
	prog = bpf_object__find_program_by_name(x->obj, "dnsd_xdp");
	if (!xsks || !lmap || !prog) {
		log_err("xdp %s: the embedded XDP program lacks its maps", x->ifname);
		goto fail;
	}
	bpf_map__set_max_entries(xsks, nq);
	if ((rc = bpf_object__load(x->obj)) < 0) {
		log_err("xdp %s: cannot load the XDP program: %s%s", x->ifname,
			strerror(-rc), rc == -EPERM ? " (needs root: CAP_BPF, "
			"CAP_NET_ADMIN)" : "");
		goto fail;
	}
	for (size_t i = 0; i < n_listen; i++) {
		struct xdp_key k;
		uint32_t max = XDP_QUERY_MAX;

		if (key_of(listen[i], &k) < 0) {
			log_err("xdp %s: listen %s: expected ADDR:PORT", x->ifname,
				listen[i]);
			goto fail;
		}
		if (bpf_map_update_elem(bpf_map__fd(lmap), &k, &max, 0) < 0) {
			log_err_errno("xdp %s: listen %s", x->ifname, listen[i]);
			goto fail;
		}
	}
	x->t = calloc(nq, sizeof(*x->t));
	if (!x->t)
		goto fail;
	for (unsigned q = 0; q < nq; q++) {
		if (!(x->t[q] = thr_new(x, conf, q, bpf_map__fd(xsks), &zerocopy)))
			goto fail;
		x->n++;
	}
	/* Attach last: until now, everything took the socket path. */
	x->link_fd = bpf_link_create(bpf_program__fd(prog), (int)x->ifindex,
				     BPF_XDP, &(struct bpf_link_create_opts) {
					.sz = sizeof(struct bpf_link_create_opts),
					.flags = XDP_FLAGS_DRV_MODE });
	if (x->link_fd < 0) {
		mode = "generic";
		x->link_fd = bpf_link_create(bpf_program__fd(prog), (int)x->ifindex,
					     BPF_XDP, &(struct bpf_link_create_opts) {
						.sz = sizeof(struct bpf_link_create_opts),
						.flags = XDP_FLAGS_SKB_MODE });
	}
	if (x->link_fd < 0) {
		log_err("xdp %s: cannot attach the XDP program: %s%s", x->ifname,
			strerror(errno), errno == EBUSY || errno == EEXIST ?
			" (another XDP program is attached: ip link show)" : "");
		goto fail;
	}
	log_info("xdp %s: %u queue(s), %s mode, %s", x->ifname, x->n, mode,
		 zerocopy ? "zero-copy" : "copy");
	return x;
fail:
	xdp_free(x);
	return NULL;
}

int xdp_start(struct xdp *x)
{
	for (unsigned i = 0; i < x->n; i++) {
		int rc = pthread_create(&x->t[i]->tid, NULL, thr_main, x->t[i]);

		if (rc) {
			log_err("xdp %s: queue %u: pthread_create: %s", x->ifname,
				i, strerror(rc));
			return -rc;
		}
		x->t[i]->started = true;
	}
	return 0;
}

void xdp_free(struct xdp *x)
{
	uint64_t one = 1;

	if (!x)
		return;
	atomic_store(&x->stop, true);
	if (x->stop_fd >= 0 && write(x->stop_fd, &one, sizeof(one)) < 0)
		log_warn_errno("xdp %s: stop", x->ifname);
	/* Detach first, so that nothing more is redirected to sockets about
	 * to close (the sockets' map entries go with them anyway). */
	if (x->link_fd >= 0)
		close(x->link_fd);
	for (unsigned i = 0; i < x->n; i++) {
		if (x->t[i]->started)
			pthread_join(x->t[i]->tid, NULL);
		thr_free(x->t[i]);
	}
	free(x->t);
	bpf_object__close(x->obj);
	if (x->stop_fd >= 0)
		close(x->stop_fd);
	free(x);
}

void xdp_stats_add(const struct xdp *x, struct stats *out)
{
	for (unsigned i = 0; x && i < x->n; i++)
		stats_add(out, &x->t[i]->stats);
}

void xdp_ep_answers_add(const struct xdp *x, uint64_t *out, size_t cap)
{
	for (unsigned i = 0; x && i < x->n; i++)
		answer_worker_ep_add(&x->t[i]->aw, out, cap);
}
