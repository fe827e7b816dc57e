/* common/log.h - one line per event to stderr, subject first.
 * Any thread may log; each call is one write(2) so lines never interleave.
 * Never call per packet on the query path: count, and let a periodic
 * summary report. */
#ifndef COMMON_LOG_H
#define COMMON_LOG_H

enum log_level { LOG_LVL_ERR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* Sets the most verbose level printed (default LOG_LVL_INFO). */
void log_set_level(enum log_level lvl);
/* Parses "err|warn|info|debug". Returns 0 or -EINVAL. */
int log_level_parse(const char *s, enum log_level *out);
/* Prefixes every line with "PROG: " (default none). Keeps the pointer. */
void log_set_prog(const char *prog);

void log_msg(enum log_level lvl, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_err(...)   log_msg(LOG_LVL_ERR, 0, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LVL_WARN, 0, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, 0, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, 0, __VA_ARGS__)
/* Append ": strerror(errno)". */
#define log_err_errno(...)  log_msg(LOG_LVL_ERR, errno, __VA_ARGS__)
#define log_warn_errno(...) log_msg(LOG_LVL_WARN, errno, __VA_ARGS__)

/* Startup only: logs and exits with status 1. */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
