/* policy/shift.c - staged traffic shifts at query time. See
 * policy/shift.h. */
#include "policy/shift.h"

#include "common/hash.h"

uint64_t shift_subnet_key(const struct in6_addr *addr, unsigned src_plen)
{
	struct in6_addr net = *addr;
	unsigned pl = src_plen > 128 ? 128 : src_plen;

	for (unsigned b = pl; b < 128; b++)
		net.s6_addr[b / 8] &= (uint8_t)~(0x80u >> (b % 8));
	return hash_fnv64(&net, sizeof net) ^ pl;
}

double shift_client_pos(uint32_t svc_id, uint64_t key)
{
	uint64_t x = hash_mix64(key ^ hash_mix64(0x5348494654ull + svc_id));

	return (double)(x >> 11) * (1.0 / 9007199254740992.0);
}

uint32_t shift_ttl(uint32_t ttl, double next, double now)
{
	double left;

	if (next <= 0)
		return ttl;
	left = next - now;
	if (left <= 0)
		return 0;
	return left < (double)ttl ? (uint32_t)left : ttl;
}
