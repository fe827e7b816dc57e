/* tests/fuzz/fuzz_report.c - libFuzzer target for the API's report parser:
 * api_report_parse() on the input as a POST /v1/reports body (pure: JSON
 * in, arena out). A rejected body must come with a reason; an accepted one
 * must respect the protocol's limits (health/PROTOCOL.md: agent and region
 * non-empty, at most API_RESULTS_MAX results, each with a known state, ts
 * in (0, 1e11], rtt_ms -1 (none) or 0..3600000, a detail under
 * 4 x HSTATE_DETAIL_MAX bytes).
 *
 * Seeds: tests/fuzz/corpus/report. Replayed by test_fuzz_replay. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "dnsd/api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct arena a;
	struct api_report r;
	char err[512];
	int rc;

	if (size > API_BODY_MAX)
		return 0;
	arena_init(&a);
	err[0] = 0;
	rc = api_report_parse((const char *)data, size, &a, &r, err,
			      sizeof(err));
	if (rc < 0) {
		if (rc != -EINVAL || !err[0]) {
			fprintf(stderr, "fuzz_report: rc %d, err '%s'\n", rc, err);
			abort();
		}
	} else {
		if (rc != 0 || !r.agent || !r.agent[0] || !r.region ||
		    !r.region[0] || r.n > API_RESULTS_MAX ||
		    (r.n && !r.results)) {
			fprintf(stderr, "fuzz_report: accepted a bad report\n");
			abort();
		}
		if (r.has_coords && !(r.lat >= -90 && r.lat <= 90 &&
				      r.lon >= -180 && r.lon <= 180))
			abort();
		for (size_t i = 0; i < r.n; i++) {
			const struct hstate_result *x = &r.results[i];

			if (x->state > HSTATE_DOWN || !(x->ts > 0 && x->ts <= 1e11) ||
			    !(x->rtt_ms == -1 ||
			      (x->rtt_ms >= 0 && x->rtt_ms <= 3600e3)) ||
			    (x->detail &&
			     strlen(x->detail) >= HSTATE_DETAIL_MAX * 4)) {
				fprintf(stderr, "fuzz_report: result %zu out of"
					" range\n", i);
				abort();
			}
		}
	}
	arena_fini(&a);
	return 0;
}
