/* policy/shift.h - staged traffic shifts at query time: where a client
 * stands in a shift, and how long an answer may be cached while one runs.
 *
 * A client's place in a shift is a hash of its subnet (the ECS subnet or
 * the source address, at the prefix length the client disclosed: the
 * same subnet key as sticky weighted answers) and of the service, mapped
 * to [0, 1). policy/svc.c moves a client to the shift's target when that
 * value is below the stage's share; shares only grow from stage to stage,
 * so a client that moved stays moved. No allocation, no locks, no I/O. */
#ifndef POLICY_SHIFT_H
#define POLICY_SHIFT_H
#include <stdint.h>
#include <netinet/in.h>

/* The subnet key of a client at addr (v4-mapped for IPv4) with src_plen
 * known bits (128-bit space): a hash of the address with the bits beyond
 * src_plen cleared, and of src_plen. Sticky hashing uses it too. */
uint64_t shift_subnet_key(const struct in6_addr *addr, unsigned src_plen);

/* The position in [0, 1) of the client with subnet key key in the shifts
 * of service id svc_id (different services move different clients
 * first). */
double shift_client_pos(uint32_t svc_id, uint64_t key);

/* TTL of an answer at unix time now when the next step is at next (0:
 * none): ttl, lowered so that it never reaches past next (whole seconds,
 * at least 0). */
uint32_t shift_ttl(uint32_t ttl, double next, double now);

#endif
