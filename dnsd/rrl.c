/* dnsd/rrl.c - response rate limiting; see rrl.h.
 *
 * The table is open addressing over a power-of-two array: a key probes
 * RRL_PROBE consecutive slots; a miss takes a free slot among them or else
 * evicts the one used least recently (exact LRU within the probe window,
 * by an access sequence number: a source that stopped sending loses its
 * bucket first, a flooding one keeps its bucket). Tokens are counted in thousandths of a
 * response so that refilling needs only integer arithmetic on the cached
 * millisecond clock: `rate` thousandths per millisecond is `rate` per
 * second. */
#include "dnsd/rrl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

#include "common/addr.h"
#include "common/hash.h"
#include "common/log.h"
#include "dnsd/wire.h"

#define RRL_PROBE     8
#define RRL_COST      1000          /* one response, in token units */
#define RRL_HASH_K    0x9e3779b1u   /* golden-ratio multiplier */
#define RRL_NAME_HOPS 64            /* compression pointers followed, max */

struct rrl_entry {
	uint8_t net[16];             /* masked client prefix */
	uint32_t name;               /* name hash, 0: none */
	uint8_t cls;
	bool used;
	uint32_t limited;            /* limited responses so far (slip cadence) */
	int64_t tokens;              /* thousandths of a response */
	uint64_t last_ms;            /* last refill */
	uint64_t seen;               /* access sequence number: LRU age */
};

struct rrl {
	struct rrl_conf conf;
	struct stats *st;
	struct rrl_entry *tab;
	size_t mask;
	uint64_t now_ms;
	uint64_t seq;                /* accesses so far */
	uint64_t seed;
	int64_t burst;               /* bucket capacity, token units */
};

void rrl_conf_init(struct rrl_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->slip = 2;
	c->v4_prefix = 24;
	c->v6_prefix = 56;
	c->table_size = 16384;
}

int rrl_net_parse(const char *s, struct rrl_net *out)
{
	memset(out, 0, sizeof(*out));
	return addr_parse_cidr(s, ADDR_CIDR_MASK, &out->addr, &out->plen);
}

int rrl_whitelist_parse(struct rrl_conf *c, const char *const *list, size_t n)
{
	int rc = 0;

	for (size_t i = 0; i < n; i++) {
		if (c->n_whitelist >= RRL_WHITELIST_MAX) {
			log_err("rrl-whitelist: '%s': more than %d prefixes", list[i],
				RRL_WHITELIST_MAX);
			return -E2BIG;
		}
		if (rrl_net_parse(list[i], &c->whitelist[c->n_whitelist]) < 0) {
			log_err("rrl-whitelist: '%s': expected ADDR/LEN (IPv4 LEN 0..32, IPv6 0..128)",
				list[i]);
			rc = -EINVAL;
			continue;
		}
		c->n_whitelist++;
	}
	return rc;
}

struct rrl *rrl_new(const struct rrl_conf *conf, struct stats *st)
{
	struct rrl *r = calloc(1, sizeof(*r));
	size_t size = 16;

	if (!r)
		return NULL;
	while (size < conf->table_size && size < ((size_t)1 << 30))
		size <<= 1;
	r->tab = calloc(size, sizeof(*r->tab));
	if (!r->tab) {
		free(r);
		return NULL;
	}
	r->conf = *conf;
	r->st = st;
	r->mask = size - 1;
	r->burst = (int64_t)(conf->rate ? conf->rate : 1) * RRL_COST;
	/* A secret seed, so nobody can aim many prefixes at one probe run. */
	if (getrandom(&r->seed, sizeof(r->seed), GRND_NONBLOCK) != sizeof(r->seed))
		r->seed = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull ^ (uintptr_t)r;
	rrl_tick(r);
	return r;
}

void rrl_free(struct rrl *r)
{
	if (!r)
		return;
	free(r->tab);
	free(r);
}

void rrl_tick(struct rrl *r)
{
	struct timespec ts;

	/* The coarse clock costs no syscall and ticks every few ms: plenty
	 * for buckets that refill per second. */
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	r->now_ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void rrl_set_time(struct rrl *r, uint64_t ms)
{
	r->now_ms = ms;
}

/* ---- classification ---- */

/* FNV-1a over the lower-cased labels of the name at off, following
 * compression pointers (bounded). *next: the offset after the name where
 * it starts. Returns false when the name runs out of the message. */
static bool name_hash(const uint8_t *m, size_t len, size_t off, uint32_t *h,
		      size_t *next)
{
	uint32_t x = HASH_FNV32_INIT;
	unsigned hops = 0, total = 0;
	bool jumped = false;

	for (;;) {
		uint8_t l;

		if (off >= len)
			return false;
		l = m[off];
		if ((l & 0xc0) == 0xc0) {
			if (off + 1 >= len || ++hops > RRL_NAME_HOPS)
				return false;
			if (!jumped)
				*next = off + 2;
			jumped = true;
			off = (size_t)((l & 0x3f) << 8 | m[off + 1]);
			continue;
		}
		if (l & 0xc0)
			return false;
		if (off + 1 + l > len || (total += l + 1u) > WIRE_NAME_MAX)
			return false;
		x = (x ^ l) * 16777619u;
		for (unsigned i = 1; i <= l; i++) {
			uint8_t c = m[off + i];

			if (c >= 'A' && c <= 'Z')
				c |= 0x20;
			x = (x ^ c) * 16777619u;
		}
		off += 1u + l;
		if (l == 0)
			break;
	}
	if (!jumped)
		*next = off;
	*h = x ? x : 1;
	return true;
}

/* Skips one resource record at *off. */
static bool skip_rr(const uint8_t *m, size_t len, size_t *off)
{
	uint32_t h;
	size_t p;

	if (!name_hash(m, len, *off, &h, &p) || p + 10 > len)
		return false;
	p += 10u + wire_get16(m + p + 8);
	if (p > len)
		return false;
	*off = p;
	return true;
}

enum rrl_class rrl_classify(const uint8_t *resp, size_t len, uint32_t *name)
{
	unsigned rcode, an, ns;
	bool aa, tc;
	size_t off = WIRE_HDR;
	uint32_t qh = 0;
	uint16_t qtype = 0;

	*name = 0;
	if (len < WIRE_HDR)
		return RRL_ERROR;
	rcode = resp[3] & 0x0f;
	aa = resp[2] & 0x04;
	tc = resp[2] & 0x02;
	an = wire_get16(resp + 6);
	ns = wire_get16(resp + 8);
	if (rcode != RCODE_NOERROR && rcode != RCODE_NXDOMAIN)
		return RRL_ERROR;
	/* NOERROR without records, authority or TC: BADVERS (its extended
	 * rcode lives in the OPT record) or a bare reply: an error. */
	if (rcode == RCODE_NOERROR && !an && !ns && !aa && !tc)
		return RRL_ERROR;
	if (wire_get16(resp + 4) == 1) {
		if (!name_hash(resp, len, off, &qh, &off) || off + 4 > len)
			return RRL_ERROR;
		qtype = wire_get16(resp + off);
		off += 4;
	}
	if (rcode == RCODE_NOERROR && (an || aa || tc)) {
		*name = qh ? (qh ^ qtype) * 16777619u : 0;
		return an ? RRL_ANSWER : RRL_NODATA;
	}
	/* NXDOMAIN: keyed by the zone (the SOA owner); a referral by the
	 * delegation (the first NS owner). Both come after the answers. */
	for (unsigned i = 0; i < an; i++)
		if (!skip_rr(resp, len, &off))
			break;
	if (ns) {
		uint32_t h;
		size_t p;

		if (name_hash(resp, len, off, &h, &p))
			*name = h;
	}
	return rcode == RCODE_NXDOMAIN ? RRL_NXDOMAIN : RRL_REFERRAL;
}

/* ---- the table ---- */

static bool whitelisted(const struct rrl *r, const struct in6_addr *a)
{
	for (size_t i = 0; i < r->conf.n_whitelist; i++) {
		const struct rrl_net *w = &r->conf.whitelist[i];
		unsigned full = w->plen / 8, rest = w->plen % 8;

		if (memcmp(a->s6_addr, w->addr.s6_addr, full) != 0)
			continue;
		if (rest && ((a->s6_addr[full] ^ w->addr.s6_addr[full]) &
			     (uint8_t)(0xff00u >> rest)))
			continue;
		return true;
	}
	return false;
}

static struct rrl_entry *find(struct rrl *r, const uint8_t net[16],
			      enum rrl_class cls, uint32_t name)
{
	uint64_t w0, w1, h;
	struct rrl_entry *victim = NULL;

	memcpy(&w0, net, 8);
	memcpy(&w1, net + 8, 8);
	h = hash_mix64(w0 ^ r->seed);
	h = hash_mix64(h ^ w1);
	h = hash_mix64(h ^ ((uint64_t)name << 8 | cls));
	for (size_t i = 0; i < RRL_PROBE; i++) {
		struct rrl_entry *e = &r->tab[(h + i) & r->mask];

		if (!e->used) {
			if (!victim || victim->used)
				victim = e;
			continue;
		}
		if (e->cls == cls && e->name == name && memcmp(e->net, net, 16) == 0) {
			e->seen = ++r->seq;
			return e;
		}
		if (!victim || (victim->used && e->seen < victim->seen))
			victim = e;
	}
	memcpy(victim->net, net, 16);
	victim->name = name;
	victim->cls = (uint8_t)cls;
	victim->used = true;
	victim->limited = 0;
	victim->tokens = r->burst;
	victim->last_ms = r->now_ms;
	victim->seen = ++r->seq;
	return victim;
}

enum rrl_action rrl_account(struct rrl *r, const struct in6_addr *client,
			    enum rrl_class cls, uint32_t name)
{
	struct in6_addr net = *client;
	struct rrl_entry *e;
	uint64_t dt;

	if (!r->conf.rate || whitelisted(r, client))
		return RRL_PASS;
	addr_mask(&net, IN6_IS_ADDR_V4MAPPED(client) ? 96 + r->conf.v4_prefix
						      : r->conf.v6_prefix);
	e = find(r, net.s6_addr, cls, name);
	if (r->now_ms > e->last_ms) {
		dt = r->now_ms - e->last_ms;
		/* Capped before multiplying, so a long-idle bucket cannot
		 * overflow: a second refills it whole anyway. */
		e->tokens += (int64_t)(dt > 1000 ? 1000 : dt) * r->conf.rate;
		if (e->tokens > r->burst)
			e->tokens = r->burst;
		e->last_ms = r->now_ms;
	}
	if (e->tokens >= RRL_COST) {
		e->tokens -= RRL_COST;
		return RRL_PASS;
	}
	r->st->rrl_limited++;
	e->limited++;
	if (r->conf.slip && e->limited % r->conf.slip == 0) {
		r->st->rrl_slipped++;
		return RRL_SLIP;
	}
	r->st->rrl_dropped++;
	return RRL_DROP;
}

size_t rrl_truncate(uint8_t *resp, size_t len)
{
	size_t end = WIRE_HDR;

	if (len < WIRE_HDR)
		return len;
	if (wire_get16(resp + 4) == 1) {
		uint32_t h;
		size_t p;

		if (name_hash(resp, len, WIRE_HDR, &h, &p) && p + 4 <= len)
			end = p + 4;
		else
			wire_put16(resp + 4, 0);
	}
	resp[2] |= 0x02;
	memset(resp + 6, 0, 6);
	return end;
}

size_t rrl_filter(struct rrl *r, const struct in6_addr *client, uint8_t *resp,
		  size_t len)
{
	uint32_t name;
	enum rrl_class cls;

	if (!r->conf.rate || whitelisted(r, client))
		return len;
	cls = rrl_classify(resp, len, &name);
	switch (rrl_account(r, client, cls, name)) {
	case RRL_PASS:
		return len;
	case RRL_SLIP:
		return rrl_truncate(resp, len);
	case RRL_DROP:
		break;
	}
	return 0;
}

/* ---- steering ---- */

/* The 32-bit words of the source address the hash covers and their masks,
 * as the BPF program loads them (host order of the big-endian words). */
static unsigned steer_words(bool v4, const struct rrl_conf *c, uint32_t mask[4])
{
	unsigned plen = v4 ? c->v4_prefix : c->v6_prefix, n = v4 ? 1 : 4;

	for (unsigned i = 0; i < n; i++) {
		unsigned bits = plen > 32 * i ? plen - 32 * i : 0;

		mask[i] = bits >= 32 ? 0xffffffffu : bits ? ~(0xffffffffu >> bits) : 0;
	}
	return n;
}

unsigned rrl_steer_index(const struct in6_addr *a, unsigned n,
			 const struct rrl_conf *conf)
{
	bool v4 = IN6_IS_ADDR_V4MAPPED(a);
	uint32_t mask[4], h = 0;
	unsigned nw = steer_words(v4, conf, mask);
	const uint8_t *p = a->s6_addr + (v4 ? 12 : 0);

	for (unsigned i = 0; i < nw; i++) {
		if (!mask[i])
			continue;
		h = ((wire_get32(p + 4 * i) & mask[i]) ^ h) * RRL_HASH_K;
	}
	h ^= h >> 16;
	return n ? h % n : 0;
}

int rrl_steer_attach(int fd, int family, unsigned n, const struct rrl_conf *conf)
{
	struct sock_filter f[32];
	struct sock_fprog prog = { .filter = f };
	uint32_t mask[4];
	unsigned k = 0, nw = steer_words(family == AF_INET, conf, mask);
	/* Source address offset from the network header. */
	int src = family == AF_INET ? 12 : 8;

	if (n == 0 || (family != AF_INET && family != AF_INET6))
		return -EINVAL;
	/* X holds the running hash. The packet data starts at the UDP
	 * payload here, so the IP header is read with SKF_NET_OFF. */
	f[k++] = (struct sock_filter)BPF_STMT(BPF_LDX | BPF_W | BPF_IMM, 0);
	for (unsigned i = 0; i < nw; i++) {
		if (!mask[i])
			continue;
		f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
				(uint32_t)(SKF_NET_OFF + src + 4 * (int)i));
		f[k++] = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_AND | BPF_K, mask[i]);
		f[k++] = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0);
		f[k++] = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_MUL | BPF_K, RRL_HASH_K);
		f[k++] = (struct sock_filter)BPF_STMT(BPF_MISC | BPF_TAX, 0);
	}
	f[k++] = (struct sock_filter)BPF_STMT(BPF_MISC | BPF_TXA, 0);
	f[k++] = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 16);
	f[k++] = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0);
	f[k++] = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, n);
	f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_A, 0);
	prog.len = (unsigned short)k;
	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog,
		       sizeof(prog)) < 0)
		return -errno;
	return 0;
}
