/* tests/unit/test_stats.c - per-thread counters (dnsd/stats.h): the sum a
 * reader takes while the owning threads count is never torn or going
 * backwards, and ends exact. Under `make tsan` this is also the regression
 * test for the reader racing with the writers (plain uint64_t counters
 * summed by the metrics reader): ThreadSanitizer reports any access to a
 * counter that is not atomic. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "dnsd/stats.h"
#include "tests/unit/harness.h"

#define WRITERS 2

struct writer {
	struct stats_thread st;
	atomic_bool *go;
	uint64_t rounds;
};

/* Counts like an answering thread: one of each kind per round, and a
 * batch of xdp answers. */
static void *count(void *arg)
{
	struct writer *w = arg;

	while (!atomic_load(w->go))
		;
	for (uint64_t i = 0; i < w->rounds; i++) {
		stats_inc(&w->st.queries[STATS_UDP][stats_qtype(1)]);
		stats_inc(&w->st.responses[STATS_UDP][0]);
		stats_inc(&w->st.tcp_accepted);
		stats_addn(&w->st.xdp_answers, 3);
		stats_inc(&w->st.rrl_slipped);
	}
	return NULL;
}

static void sum(struct writer *w, struct stats *out)
{
	memset(out, 0, sizeof(*out));
	for (int i = 0; i < WRITERS; i++)
		stats_add(out, &w[i].st);
}

/* A reader summing while the writers count: the sums only move forward,
 * and once the writers are done they are exact. */
static void test_concurrent_sum(void)
{
	static const struct {
		const char *name;
		uint64_t rounds;
	} cases[] = {
		{ "short", 1000 },
		{ "long", 200000 },
	};

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct writer w[WRITERS];
		atomic_bool go = false;
		pthread_t tid[WRITERS];
		struct stats prev = { 0 }, now;
		unsigned backwards = 0, reads = 0;

		memset(w, 0, sizeof(w));
		for (int i = 0; i < WRITERS; i++) {
			w[i].go = &go;
			w[i].rounds = cases[c].rounds;
			pthread_create(&tid[i], NULL, count, &w[i]);
		}
		atomic_store(&go, true);
		do {
			sum(w, &now);
			reads++;
			if (now.queries[STATS_UDP][STATS_QT_A] < prev.queries[STATS_UDP][STATS_QT_A] ||
			    now.xdp_answers < prev.xdp_answers ||
			    now.tcp_accepted < prev.tcp_accepted)
				backwards++;
			prev = now;
		} while (now.rrl_slipped < WRITERS * cases[c].rounds);
		for (int i = 0; i < WRITERS; i++)
			pthread_join(tid[i], NULL);
		sum(w, &now);
		CHECK(backwards == 0, "%s: %u of %u sums went backwards", cases[c].name,
		      backwards, reads);
		CHECK(now.queries[STATS_UDP][STATS_QT_A] == WRITERS * cases[c].rounds &&
		      now.responses[STATS_UDP][0] == WRITERS * cases[c].rounds &&
		      now.tcp_accepted == WRITERS * cases[c].rounds &&
		      now.xdp_answers == 3 * WRITERS * cases[c].rounds,
		      "%s: final sums %llu %llu %llu %llu", cases[c].name,
		      (unsigned long long)now.queries[STATS_UDP][STATS_QT_A],
		      (unsigned long long)now.responses[STATS_UDP][0],
		      (unsigned long long)now.tcp_accepted,
		      (unsigned long long)now.xdp_answers);
		CHECK(now.dropped == 0 && now.malformed == 0 &&
		      now.queries[STATS_TCP][STATS_QT_A] == 0,
		      "%s: counters nobody wrote are not 0", cases[c].name);
	}
}

/* stats_add() adds every counter, by position: each one set on its own
 * shows up in the same field of the sum, doubled over two threads. */
static void test_add_every_field(void)
{
	struct stats_thread a, b;
	struct stats s;
	const size_t n = sizeof(struct stats) / sizeof(uint64_t);
	struct stats_ctr *ca = (struct stats_ctr *)&a, *cb = (struct stats_ctr *)&b;
	const uint64_t *cs = (const uint64_t *)&s;
	unsigned wrong = 0;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	for (size_t k = 0; k < n; k++) {
		stats_addn(&ca[k], k + 1);
		stats_addn(&cb[k], 1000 * (k + 1));
	}
	memset(&s, 0, sizeof(s));
	stats_add(&s, &a);
	stats_add(&s, &b);
	for (size_t k = 0; k < n; k++)
		wrong += cs[k] != 1001 * (k + 1);
	CHECK(wrong == 0, "stats_add: %u of %zu counters wrong", wrong, n);
	/* Named fields read back what was set at their position. */
	CHECK(s.queries[0][0] == 1001 &&
	      s.xdp_dropped == 1001 * (offsetof(struct stats, xdp_dropped) / 8 + 1) &&
	      s.dnssec_over_budget ==
	      1001 * (offsetof(struct stats, dnssec_over_budget) / 8 + 1),
	      "stats_add: queries[0][0] %llu, xdp_dropped %llu, dnssec_over_budget %llu",
	      (unsigned long long)s.queries[0][0], (unsigned long long)s.xdp_dropped,
	      (unsigned long long)s.dnssec_over_budget);
}

int main(void)
{
	test_add_every_field();
	test_concurrent_sum();
	return TEST_DONE();
}
