/* tests/unit/test_fuzz_replay.c - replays every fuzz seed (and every crash
 * regression seed) through the fuzz targets without libFuzzer, so that
 * `make test` runs them. A crash or abort fails the run. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz_packet.c"
#include "tests/unit/harness.h"

static int replay_dir(const char *dir, int (*fn)(const uint8_t *, size_t))
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;
	static uint8_t buf[65536];

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
		len = fread(buf, 1, sizeof(buf), fp);
		fclose(fp);
		fn(buf, len);
		n++;
	}
	closedir(d);
	return n;
}

int main(void)
{
	int n = replay_dir("tests/fuzz/corpus/packet", LLVMFuzzerTestOneInput);

	CHECK(n > 50, "packet corpus: %d seeds replayed (want > 50)", n);
	printf("replayed %d packet seeds\n", n);
	return TEST_DONE();
}
