/* tests/unit/test_arena.c - arena allocator. */
#include <stdint.h>
#include <string.h>

#include "common/arena.h"
#include "tests/unit/harness.h"

int main(void)
{
	static const struct { const char *name; size_t n; } cases[] = {
		{ "tiny", 1 }, { "odd", 13 }, { "page", 4096 },
		{ "big, own chunk", 1 << 20 }, { "after big", 24 },
	};
	struct arena a;
	char *s;

	arena_init(&a);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t *p = arena_alloc(&a, cases[i].n);

		CHECK(p != NULL, "%s: allocation failed", cases[i].name);
		CHECK(((uintptr_t)p & 7) == 0, "%s: not 8-aligned", cases[i].name);
		if (p)
			memset(p, 0xab, cases[i].n);
	}
	s = arena_strdup(&a, "gslb");
	CHECK(s && strcmp(s, "gslb") == 0, "strdup: got %s", s ? s : "NULL");
	CHECK(a.used >= (1 << 20), "used: %zu", a.used);
	arena_fini(&a);
	CHECK(a.head == NULL && a.used == 0, "fini: arena not reset");
	return TEST_DONE();
}
