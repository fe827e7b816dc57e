/* common/log.h - one line per event to stderr, subject first.
 * Any thread may log; each call is one write(2) so lines never interleave.
 * Never call per packet on the query path: count, and let a periodic
 * summary report. */
#ifndef COMMON_LOG_H
#define COMMON_LOG_H
#include <stddef.h>

enum log_level { LOG_LVL_ERR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* Sets the most verbose level printed (default LOG_LVL_INFO). */
void log_set_level(enum log_level lvl);
/* Parses "err|warn|info|debug". Returns 0 or -EINVAL. */
int log_level_parse(const char *s, enum log_level *out);
/* Prefixes every line with "PROG: " (default none). Keeps the pointer. */
void log_set_prog(const char *prog);

/* How lines are written:
 * - LOG_FMT_TEXT: "PROG: warning: text" (the default);
 * - LOG_FMT_JSON: one JSON object a line with the stable keys "ts" (RFC
 *   3339 UTC with milliseconds), "level" ("err", "warn", "info", "debug"),
 *   "prog", "msg", and "errno"/"error" when the line names a system error;
 *   strings escaped, invalid UTF-8 replaced by U+FFFD;
 * - LOG_FMT_JOURNAL: straight to systemd's journal with structured fields
 *   MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, GSLB_LEVEL, GSLB_SUBJECT (the
 *   message's subject: what comes before its first ": "), and ERRNO;
 * - LOG_FMT_AUTO: journal when stderr is the journal's stream (systemd's
 *   JOURNAL_STREAM names it), else text. */
enum log_format { LOG_FMT_AUTO, LOG_FMT_TEXT, LOG_FMT_JSON, LOG_FMT_JOURNAL };
/* "auto", "text", "json", "journal". Returns 0 or -EINVAL. */
int log_format_parse(const char *s, enum log_format *out);
/* Sets the format (AUTO is resolved here, once). */
void log_set_format(enum log_format f);
/* Formats one JSON line (with its newline) into buf; returns its length.
 * ts is unix seconds. For tests and log_msg. */
size_t log_json_line(char *buf, size_t len, double ts, enum log_level lvl,
                     const char *prog, const char *msg, int errnum);

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
