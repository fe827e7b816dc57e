/* dnsd/rrl.h - response rate limiting (RRL), the BIND/Knot model.
 *
 * Each worker owns one struct rrl (a fixed-size table allocated at startup)
 * and consults it for every UDP response it is about to send; TCP is never
 * limited. A response is counted against a token bucket keyed by
 *   - the client's prefix (/24 IPv4, /56 IPv6 by default),
 *   - its class (answer, NXDOMAIN, referral, NODATA, error), and
 *   - a name, as BIND does: answers and NODATA by query name and type,
 *     NXDOMAIN by the zone (owner of the SOA in the authority section, so a
 *     random-subdomain flood shares one bucket), referrals by the delegation
 *     (owner of the first NS), errors by no name.
 * A bucket holds `rate` responses per second with a burst of one second's
 * worth. Over the limit a response is dropped, except every slip-th limited
 * response of that bucket, which goes out truncated (TC=1, header and
 * question only) so that a real client behind a spoofed-looking prefix
 * retries over TCP. Whitelisted prefixes are never limited.
 *
 * Exactness across workers: the buckets are per worker, so all packets of
 * one prefix must reach the same worker. rrl_steer_attach() installs a
 * classic BPF program (SO_ATTACH_REUSEPORT_CBPF) on the UDP SO_REUSEPORT
 * group that picks the socket by a hash of the source prefix.
 *
 * Threads: rrl_new/rrl_free/rrl_whitelist_parse/rrl_steer_attach at load
 * time; rrl_tick/rrl_filter/rrl_account on the owning worker only (query
 * path: no allocation, no lock, no shared writes). */
#ifndef DNSD_RRL_H
#define DNSD_RRL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

#include "dnsd/stats.h"

#define RRL_WHITELIST_MAX 64

enum rrl_class {
	RRL_ANSWER,
	RRL_NXDOMAIN,
	RRL_REFERRAL,
	RRL_NODATA,
	RRL_ERROR,
	RRL_NCLASS
};

enum rrl_action { RRL_PASS, RRL_DROP, RRL_SLIP };

/* A prefix; IPv4 as v4-mapped with plen 96 + the IPv4 length. */
struct rrl_net {
	struct in6_addr addr;        /* host bits zero */
	unsigned plen;
};

struct rrl_conf {
	unsigned rate;               /* responses/s per bucket; 0 = off */
	unsigned slip;               /* every slip-th limited one is TC; 0 never */
	unsigned v4_prefix;          /* 0..32, default 24 */
	unsigned v6_prefix;          /* 0..128, default 56 */
	unsigned table_size;         /* buckets per worker (rounded up to 2^n) */
	struct rrl_net whitelist[RRL_WHITELIST_MAX];
	size_t n_whitelist;
};

struct rrl;                      /* opaque */

/* Defaults: off, slip 2, /24, /56, 16384 buckets, no whitelist. */
void rrl_conf_init(struct rrl_conf *c);

/* Parses "ADDR/LEN" or "ADDR" (a host) into out. Returns 0 or -EINVAL. */
int rrl_net_parse(const char *s, struct rrl_net *out);

/* Adds each CIDR of list[0..n) to c's whitelist. Logs every bad entry as
 * "rrl-whitelist: 'TEXT': ..." and returns -EINVAL if any was bad (the
 * good ones are added), -E2BIG past RRL_WHITELIST_MAX, else 0. */
int rrl_whitelist_parse(struct rrl_conf *c, const char *const *list, size_t n);

/* A worker's table for conf (copied). st: the worker's counters (borrowed,
 * gets rrl_limited/rrl_dropped/rrl_slipped). NULL when out of memory. */
struct rrl *rrl_new(const struct rrl_conf *conf, struct stats_thread *st);
void rrl_free(struct rrl *r);    /* NULL is fine */

/* Query path: reads the coarse monotonic clock; call once per batch. */
void rrl_tick(struct rrl *r);
/* Sets the table's clock (milliseconds); for tests. */
void rrl_set_time(struct rrl *r, uint64_t ms);

/* Query path: classifies the response resp[0..len) (ours, so well formed,
 * but parsed with bounds anyway) and returns its class; *name gets the
 * hash of the name that keys it (0 for none). */
enum rrl_class rrl_classify(const uint8_t *resp, size_t len, uint32_t *name);

/* Query path: counts one response of class cls and name hash to client
 * (v4-mapped for IPv4) and says what to do with it. Updates counters. */
enum rrl_action rrl_account(struct rrl *r, const struct in6_addr *client,
			    enum rrl_class cls, uint32_t name);

/* Query path: the hook for a UDP response about to be sent. Returns len
 * (send as is), the new length of the response truncated in place (slip),
 * or 0 (drop). */
size_t rrl_filter(struct rrl *r, const struct in6_addr *client, uint8_t *resp,
		  size_t len);

/* Rewrites resp in place into a truncated reply: header and question, no
 * records, TC=1 (AA and rcode kept). Returns the new length. */
size_t rrl_truncate(uint8_t *resp, size_t len);

/* Load time: attaches to fd (a bound UDP SO_REUSEPORT socket of family
 * AF_INET or AF_INET6) a classic BPF program that sends each packet to
 * socket number hash(source prefix) % n of its reuseport group, so one
 * prefix always reaches one worker. Prefix lengths from conf. Returns 0 or
 * a negative errno. */
int rrl_steer_attach(int fd, int family, unsigned n, const struct rrl_conf *conf);

/* The socket index rrl_steer_attach's program picks for an address (the
 * same hash, for tests). IPv4 as v4-mapped. */
unsigned rrl_steer_index(const struct in6_addr *a, unsigned n,
			 const struct rrl_conf *conf);

#endif
