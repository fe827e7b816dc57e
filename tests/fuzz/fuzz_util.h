/* tests/fuzz/fuzz_util.h - helpers shared by the libFuzzer targets that
 * feed a file-reading function: the input becomes a memory file (memfd)
 * named /proc/self/fd/N, and a loader's error lines on stderr can be
 * muted without losing sanitizer reports (they go to a saved copy of
 * stderr, as libFuzzer's -close_fd_mask=2 does); and the snapshot of the
 * example zones that the query-path targets answer from. Included by each
 * target and, through them, by tests/unit/test_fuzz_replay.c. */
#ifndef TESTS_FUZZ_UTIL_H
#define TESTS_FUZZ_UTIL_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <string.h>
#include <unistd.h>

#include "dnsd/snap.h"
#include "dnsd/zone.h"

/* Present in sanitizer builds (ASan/UBSan runtime), NULL otherwise. */
void __sanitizer_set_report_fd(void *fd) __attribute__((weak));

/* A memory file holding data; path receives its /proc/self/fd name. The
 * descriptor stays open (reused per name) for the life of the process. */
static inline void fu_memfile(const char *name, int *fd, const uint8_t *data,
			      size_t size, char *path, size_t pathlen)
{
	if (*fd < 0) {
		*fd = memfd_create(name, MFD_CLOEXEC);
		if (*fd < 0) {
			perror("fuzz: memfd_create");
			abort();
		}
	}
	if (ftruncate(*fd, 0) < 0 ||
	    (size && pwrite(*fd, data, size, 0) != (ssize_t)size)) {
		perror("fuzz: memfd write");
		abort();
	}
	snprintf(path, pathlen, "/proc/self/fd/%d", *fd);
}

static int fu_saved_stderr = -1, fu_devnull = -1;

/* Sends fd 2 to /dev/null until fu_quiet_end(); sanitizer reports keep
 * going to the real stderr. GSLB_FUZZ_VERBOSE=1 keeps the noise. */
static inline void fu_quiet_begin(void)
{
	if (fu_saved_stderr == -2)
		return;
	if (fu_saved_stderr < 0) {
		if (getenv("GSLB_FUZZ_VERBOSE")) {
			fu_saved_stderr = -2;
			return;
		}
		fu_saved_stderr = fcntl(2, F_DUPFD_CLOEXEC, 3);
		fu_devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (fu_saved_stderr < 0 || fu_devnull < 0) {
			perror("fuzz: dup stderr");
			abort();
		}
		if (__sanitizer_set_report_fd)
			__sanitizer_set_report_fd(
				(void *)(intptr_t)fu_saved_stderr);
	}
	fflush(stderr);
	dup2(fu_devnull, 2);
}

static inline void fu_quiet_end(void)
{
	if (fu_saved_stderr >= 0)
		dup2(fu_saved_stderr, 2);
}

/* s answers from zones/example.com.zone, zones/gslb.example.com.zone and
 * tests/fixtures/zones/example.org.zone (relative to the repository root,
 * or to $GSLB_ROOT), with max-udp-size max_udp, the default ECS caps and
 * NSID "fuzz". Aborts if a zone does not load. */
static inline void fu_example_snap(struct snap *s, uint16_t max_udp)
{
	static const char *const files[] = {
		"zones/example.com.zone", "zones/gslb.example.com.zone",
		"tests/fixtures/zones/example.org.zone",
	};
	static struct zone *zones[3];
	const char *root = getenv("GSLB_ROOT");
	char path[4096], err[512];

	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s%s%s", root ? root : "",
			 root ? "/" : "", files[i]);
		if (!zones[i] &&
		    zone_load(path, NULL, &zones[i], err, sizeof(err)) < 0) {
			fprintf(stderr, "fuzz: %s\n", err);
			abort();
		}
	}
	s->zt = zonetab_build(zones, 3);
	if (!s->zt)
		abort();
	s->conf.max_udp = max_udp;
	s->conf.ecs_max_v4 = 24;
	s->conf.ecs_max_v6 = 56;
	memcpy(s->conf.nsid, "fuzz", 4);
	s->conf.nsid_len = 4;
}

#endif
