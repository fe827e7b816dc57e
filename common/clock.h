/* common/clock.h - wall-clock time as unix seconds, the unit of every
 * persisted and reported timestamp (health rows, metrics), and a monotonic
 * clock for durations. Any thread. */
#ifndef COMMON_CLOCK_H
#define COMMON_CLOCK_H
#include <time.h>

static inline double clock_unix(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Monotonic seconds, for durations. */
static inline double clock_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif
