/* policy/shift.c - staged traffic shifts at query time. See
 * policy/shift.h. */
#include "policy/shift.h"

#include <string.h>

#include "common/hash.h"

uint64_t shift_subnet_key(const struct svc_client *c)
{
	struct in6_addr net = c->addr;
	unsigned pl = c->src_plen > 128 ? 128 : c->src_plen;

	for (unsigned b = pl; b < 128; b++)
		net.s6_addr[b / 8] &= (uint8_t)~(0x80u >> (b % 8));
	return hash_fnv64(&net, sizeof net) ^ pl;
}

double shift_client_pos(const struct svc_service *s,
                        const struct svc_client *c)
{
	/* The service id enters the hash, so different services move
	 * different clients first. */
	uint64_t x = hash_mix64(shift_subnet_key(c) ^
	                        hash_mix64(0x5348494654ull + s->id));

	return (double)(x >> 11) * (1.0 / 9007199254740992.0);
}

bool shift_moves(const struct svc_service *s, const struct svc_client *c,
                 double *pos)
{
	double p;

	if (!s->shift.on ||
	    (s->policy != SVC_FAILOVER && s->policy != SVC_WEIGHTED))
		return false;
	p = shift_client_pos(s, c);
	if (pos)
		*pos = p;
	return p < s->shift.frac;
}

uint32_t shift_ttl(const struct svc_service *s, double now)
{
	double left;

	if (!s->shift.on || s->shift.next <= 0)
		return s->ttl;
	left = s->shift.next - now;
	if (left <= 0)
		return 0;
	return left < (double)s->ttl ? (uint32_t)left : s->ttl;
}
