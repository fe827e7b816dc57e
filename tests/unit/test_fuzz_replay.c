/* tests/unit/test_fuzz_replay.c - replays every fuzz seed (and every crash
 * regression seed, crash-*) of every target through it without libFuzzer,
 * so that `make test` runs them: tests/fuzz/fuzz_NAME.c against
 * tests/fuzz/corpus/NAME. The targets abort() on a broken invariant, so a
 * crash or abort fails the run. Each target is included under its own name
 * (they all define LLVMFuzzerTestOneInput). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LLVMFuzzerTestOneInput fuzz_packet_input
#include "tests/fuzz/fuzz_packet.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_zone_input
#include "tests/fuzz/fuzz_zone.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_config_input
#include "tests/fuzz/fuzz_config.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_report_input
#include "tests/fuzz/fuzz_report.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_http_input
#include "tests/fuzz/fuzz_http.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_checks_input
#include "tests/fuzz/fuzz_checks.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_store_input
#include "tests/fuzz/fuzz_store.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_xdp_input
#include "tests/fuzz/fuzz_xdp.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_keyfile_input
#include "tests/fuzz/fuzz_keyfile.c"
#undef LLVMFuzzerTestOneInput

#include "tests/unit/harness.h"

/* Runs fn on every file of dir; returns how many, -1 if dir is missing. */
static int replay_dir(const char *dir, int (*fn)(const uint8_t *, size_t),
		      size_t max, int *crash_seeds)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;
	static uint8_t buf[1 << 20];

	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL) {
		char path[4096];
		FILE *fp;
		size_t len;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (!(fp = fopen(path, "rb")))
			continue;
		len = fread(buf, 1, max < sizeof(buf) ? max : sizeof(buf), fp);
		fclose(fp);
		fn(buf, len);
		n++;
		if (strncmp(e->d_name, "crash-", 6) == 0)
			(*crash_seeds)++;
	}
	closedir(d);
	return n;
}

int main(void)
{
	static const struct {
		const char *name;
		int (*fn)(const uint8_t *, size_t);
		size_t max;      /* the target ignores longer inputs */
		int min_seeds;
	} targets[] = {
		{ "packet", fuzz_packet_input, 65535, 50 },
		{ "zone", fuzz_zone_input, 256 * 1024, 10 },
		{ "config", fuzz_config_input, 64 * 1024, 10 },
		{ "report", fuzz_report_input, 1 << 20, 10 },
		{ "http", fuzz_http_input, 64 * 1024, 10 },
		{ "checks", fuzz_checks_input, 256 * 1024, 10 },
		{ "store", fuzz_store_input, 16383, 10 },
		{ "xdp", fuzz_xdp_input, XDP_FRAME_SIZE, 50 },
		{ "keyfile", fuzz_keyfile_input, 65536, 20 },
	};

	for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
		char dir[256];
		int crashes = 0, n;

		snprintf(dir, sizeof(dir), "tests/fuzz/corpus/%s",
			 targets[i].name);
		n = replay_dir(dir, targets[i].fn, targets[i].max, &crashes);
		CHECK(n >= targets[i].min_seeds, "%s corpus: %d seeds replayed "
		      "(want >= %d)", targets[i].name, n, targets[i].min_seeds);
		printf("replayed %d %s seeds (%d crash regressions)\n", n,
		       targets[i].name, crashes);
	}
	return TEST_DONE();
}
