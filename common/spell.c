/* common/spell.c - nearest spellings. See common/spell.h. */
#include "common/spell.h"

#include <string.h>

size_t spell_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), d[64];

	if (la >= 63 || lb >= 63)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		d[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t prev = d[0];

		d[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t t = d[j], best = prev + (a[i - 1] != b[j - 1]);

			if (d[j] + 1 < best)
				best = d[j] + 1;
			if (d[j - 1] + 1 < best)
				best = d[j - 1] + 1;
			d[j] = best;
			prev = t;
		}
	}
	return d[lb];
}

const char *spell_nearest(const char *w, const char *const *cands, size_t n)
{
	const char *best = NULL;
	size_t bd = 3;

	for (size_t i = 0; i < n; i++) {
		size_t d;

		if (!cands[i])
			continue;
		d = spell_distance(w, cands[i]);
		if (d < bd && d * 2 < strlen(cands[i]) + 1) {
			bd = d;
			best = cands[i];
		}
	}
	return best;
}
