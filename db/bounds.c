/* db/bounds.c - see bounds.h. */
#include "db/bounds.h"

#include "policy/svc.h"

const struct bound bounds[BOUND_COUNT] = {
	[BOUND_TTL]      = { "services", "ttl", "ttl", 0, 2147483647 },
	[BOUND_ANSWERS]  = { "services", "answers", "answers", 1,
			     SVC_MAX_ANSWERS },
	[BOUND_WEIGHT]   = { "endpoints", "weight", "weight", 0, 65535 },
	[BOUND_PRIORITY] = { "endpoints", "priority", "priority", 0, 65535 },
	[BOUND_LAT]      = { "endpoints", "lat", "latitude", -90, 90 },
	[BOUND_LON]      = { "endpoints", "lon", "longitude", -180, 180 },
	[BOUND_BIAS]     = { "endpoints", "bias", "bias", -99, 99 },
	[BOUND_RISE]     = { "endpoints", "check_rise", "check rise", 1, 100 },
	[BOUND_FALL]     = { "endpoints", "check_fall", "check fall", 1, 100 },
};

bool bound_ok(enum bound_id b, double v)
{
	return v >= bounds[b].lo && v <= bounds[b].hi;
}
