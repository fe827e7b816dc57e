/* policy/shift.h - staged traffic shifts at query time: which clients of a
 * shifting service are answered with the shift's target.
 *
 * A client's place in a shift is a hash of its subnet (the ECS subnet or
 * the source address, at the prefix length the client disclosed: the
 * same subnet key as sticky weighted answers) and of the service, mapped
 * to [0, 1). A client moves to the target when that value is below the
 * stage's share; shares only grow from stage to stage, so a client that
 * moved stays moved. No allocation, no locks, no I/O. */
#ifndef POLICY_SHIFT_H
#define POLICY_SHIFT_H
#include <stdbool.h>
#include <stdint.h>

#include "policy/svc.h"

/* The subnet key of client c (sticky hashing and shifts): a hash of its
 * address with the bits beyond its source prefix cleared, and of that
 * prefix length. */
uint64_t shift_subnet_key(const struct svc_client *c);

/* The client's position in service s's shifts, in [0, 1). */
double shift_client_pos(const struct svc_service *s,
                        const struct svc_client *c);

/* Whether a query of client c to s goes to the shift's target (s->shift
 * on, the policy failover or weighted, and the client's position below
 * the stage's share). *pos (may be NULL) gets the position. */
bool shift_moves(const struct svc_service *s, const struct svc_client *c,
                 double *pos);

/* TTL of an answer of s at unix time now: the service's TTL, lowered so
 * that it never reaches past the shift's next step (whole seconds, at
 * least 0). */
uint32_t shift_ttl(const struct svc_service *s, double now);

#endif
