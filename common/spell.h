/* common/spell.h - "did you mean": the nearest spelling of a word among
 * valid ones (options, commands, JSON keys, codes). Load time only. */
#ifndef COMMON_SPELL_H
#define COMMON_SPELL_H
#include <stddef.h>

/* Edit distance (insert, delete, substitute) of a and b; words of 63
 * characters or more count as far apart (99). */
size_t spell_distance(const char *a, const char *b);
/* The candidate nearest to w (at most 2 edits, and fewer than half its
 * length; NULL entries are skipped), or NULL when none is that near. */
const char *spell_nearest(const char *w, const char *const *cands, size_t n);

#endif
