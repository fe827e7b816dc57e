/* common/addr.c - see addr.h. */
#include "common/addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

void addr_mask(struct in6_addr *a, unsigned plen)
{
	for (unsigned i = plen; i < 128; i++)
		a->s6_addr[i / 8] &= (uint8_t)~(0x80u >> (i % 8));
}

int addr_parse_cidr(const char *s, enum addr_cidr_mode mode,
		    struct in6_addr *net, unsigned *plen)
{
	char buf[INET6_ADDRSTRLEN + 8];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	unsigned len, max;
	struct in6_addr a;
	struct in_addr v4;

	if (alen == 0 || alen >= INET6_ADDRSTRLEN)
		return -EINVAL;
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	if (inet_pton(AF_INET, buf, &v4) == 1) {
		memset(&a, 0, sizeof(a));
		a.s6_addr[10] = a.s6_addr[11] = 0xff;
		memcpy(&a.s6_addr[12], &v4, 4);
		max = 32;
	} else if (strchr(buf, ':') && inet_pton(AF_INET6, buf, &a) == 1) {
		max = 128;
	} else {
		return -EINVAL;
	}
	len = max;
	if (slash) {
		const char *p = slash + 1;

		if (*p < '0' || *p > '9' || strlen(p) > 3)
			return -EINVAL;
		len = 0;
		for (; *p; p++) {
			if (*p < '0' || *p > '9')
				return -EINVAL;
			len = len * 10 + (unsigned)(*p - '0');
		}
		if (len > max)
			return -EINVAL;
	}
	len += 128 - max;
	if (mode == ADDR_CIDR_MASK) {
		addr_mask(&a, len);
	} else {
		for (unsigned bit = len; bit < 128; bit++)
			if (a.s6_addr[bit / 8] & (0x80 >> (bit % 8)))
				return -EINVAL;
	}
	*net = a;
	*plen = len;
	return 0;
}
