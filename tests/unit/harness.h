/* tests/unit/harness.h - the unit-test harness shared by every module.
 * CHECK(cond, fmt, ...) prints "file:line: message" on failure and counts;
 * TEST_DONE() prints "N passed, N failed" and is the exit status. */
#ifndef TESTS_HARNESS_H
#define TESTS_HARNESS_H
#include <stdio.h>

static int harness_passed, harness_failed;

#define CHECK(cond, ...)                                                    \
	do {                                                                \
		if (cond) {                                                 \
			harness_passed++;                                   \
		} else {                                                    \
			harness_failed++;                                   \
			fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);     \
			fprintf(stderr, __VA_ARGS__);                       \
			fputc('\n', stderr);                                \
		}                                                           \
	} while (0)

#define TEST_DONE()                                                         \
	(printf("%d passed, %d failed\n", harness_passed, harness_failed),  \
	 harness_failed ? 1 : 0)

#endif
