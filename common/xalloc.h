/* common/xalloc.h - allocation that exits on failure. Startup code and
 * command-line tools only: a reload or the query path handles NULL. */
#ifndef COMMON_XALLOC_H
#define COMMON_XALLOC_H
#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);

#endif
