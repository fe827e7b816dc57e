/* db/bounds.h - the numeric bounds of the configuration columns, in one
 * table: the validated edits (db/edit.c) check values given by a user
 * against it, the loader (db/svc_load.c) every row it reads (the schema's
 * CHECKs can be bypassed by hand edits or old files), and
 * tests/unit/test_bounds.c checks it against db/schema.sql's CHECKs. */
#ifndef DB_BOUNDS_H
#define DB_BOUNDS_H
#include <stdbool.h>

enum bound_id {
	BOUND_TTL, BOUND_ANSWERS, BOUND_WEIGHT, BOUND_PRIORITY, BOUND_LAT,
	BOUND_LON, BOUND_BIAS, BOUND_RISE, BOUND_FALL, BOUND_COUNT
};

struct bound {
	const char *table, *column;  /* where db/schema.sql constrains it */
	const char *what;            /* its name in messages: "latitude" */
	double lo, hi;               /* inclusive; whole numbers */
};

/* Indexed by enum bound_id. */
extern const struct bound bounds[BOUND_COUNT];

/* lo <= v <= hi (false for NaN). Any thread. */
bool bound_ok(enum bound_id b, double v);

#endif
