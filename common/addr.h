/* common/addr.h - IP addresses in the 128-bit space used everywhere: IPv4
 * is v4-mapped (::ffff:a.b.c.d) and an IPv4 /24 is a /120. Any thread, no
 * allocation. */
#ifndef COMMON_ADDR_H
#define COMMON_ADDR_H
#include <netinet/in.h>

/* What addr_parse_cidr does with bits set after the prefix length. */
enum addr_cidr_mode {
	ADDR_CIDR_STRICT,       /* refuse them: "10.0.0.1/8" is an error */
	ADDR_CIDR_MASK,         /* clear them: "10.0.0.1/8" is 10.0.0.0/8 */
};

/* Parses "ADDR" or "ADDR/LEN" (IPv4 LEN 0..32, IPv6 0..128, at most three
 * digits; no LEN: a host) into *net and *plen (128-bit space). Returns 0,
 * or -EINVAL (nothing written). */
int addr_parse_cidr(const char *s, enum addr_cidr_mode mode,
		    struct in6_addr *net, unsigned *plen);

/* Clears the bits of a after the first plen (0..128). */
void addr_mask(struct in6_addr *a, unsigned plen);

#endif
