/* common/log.c - see log.h. Any thread; one write(2) per line. */
#include "common/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

static enum log_level max_level = LOG_LVL_INFO;
static const char *prog;
static enum log_format format = LOG_FMT_TEXT;

void log_set_level(enum log_level lvl) { max_level = lvl; }
void log_set_prog(const char *p) { prog = p; }

int log_format_parse(const char *s, enum log_format *out)
{
	static const char *const names[] = { "auto", "text", "json", "journal" };

	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (enum log_format)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* systemd sets JOURNAL_STREAM=DEV:INODE for a service whose stderr is
 * the journal's stream. */
static bool stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 ||
	    fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev &&
	       (unsigned long long)st.st_ino == ino;
}

void log_set_format(enum log_format f)
{
	if (f == LOG_FMT_AUTO)
		f = stderr_is_journal() ? LOG_FMT_JOURNAL : LOG_FMT_TEXT;
	format = f;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
static size_t utf8_len(const unsigned char *s)
{
	size_t n;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

/* Appends s as a JSON string (quotes included) at buf[*n], never past
 * len - 2 (room for the closing brace and newline). */
static void json_str(char *buf, size_t len, size_t *n, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	if (*n + 1 < len - 2)
		buf[(*n)++] = '"';
	while (*p) {
		char tmp[8];
		const char *out = tmp;
		size_t k = utf8_len(p), m;

		if (*p == '"' || *p == '\\') {
			tmp[0] = '\\';
			tmp[1] = (char)*p;
			m = 2;
		} else if (*p < 0x20 || *p == 0x7f) {
			m = (size_t)snprintf(tmp, sizeof(tmp), "\\u%04x", *p);
		} else if (k == 0) {
			out = "\\ufffd";
			m = 6;
			k = 1;
		} else {
			out = (const char *)p;
			m = k;
		}
		if (*p < 0x80 || k == 0)
			k = 1;
		/* keep room for the closing quote */
		if (*n + m + 1 >= len - 2)
			break;
		memcpy(buf + *n, out, m);
		*n += m;
		p += k;
	}
	buf[(*n)++] = '"';
}

size_t log_json_line(char *buf, size_t len, double ts, enum log_level lvl,
                     const char *pg, const char *msg, int errnum)
{
	static const char *const names[] = { "err", "warn", "info", "debug" };
	time_t sec = (time_t)ts;
	struct tm tm;
	size_t n;
	int ms = (int)((ts - (double)sec) * 1000);

	gmtime_r(&sec, &tm);
	n = (size_t)snprintf(buf, len, "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\","
	                     "\"level\":\"%s\",\"prog\":", tm.tm_year + 1900,
	                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	                     tm.tm_sec, ms < 0 ? 0 : ms > 999 ? 999 : ms, names[lvl]);
	/* prog is a short name: a quarter of the line at most */
	json_str(buf, len / 4, &n, pg ? pg : "");
	memcpy(buf + n, ",\"msg\":", 7);
	n += 7;
	json_str(buf, len, &n, msg);
	if (errnum && n + 40 < len) {
		n += (size_t)snprintf(buf + n, len - n, ",\"errno\":%d,\"error\":", errnum);
		json_str(buf, len, &n, strerror(errnum));
	}
	buf[n++] = '}';
	buf[n++] = '\n';
	return n;
}

/* The subject of a message: the text before its first ": " (at most
 * 200 bytes), as "health" in "health: endpoint 1 ...". */
static void subject_of(const char *msg, char *out, size_t len)
{
	const char *c = strstr(msg, ": ");
	size_t n = c ? (size_t)(c - msg) : 0;

	if (n >= len || n > 200)
		n = 0;
	memcpy(out, msg, n);
	out[n] = 0;
}

static void vlog_structured(enum log_level lvl, int errnum, const char *fmt,
                            va_list ap)
{
	static const char *const names[] = { "err", "warn", "info", "debug" };
	static const int prio[] = { 3, 4, 6, 7 };
	char msg[1536], subject[256], line[4096];
	struct timespec now;
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (format == LOG_FMT_JOURNAL) {
		subject_of(msg, subject, sizeof(subject));
		if (sd_journal_send("MESSAGE=%s%s%s", msg, errnum ? ": " : "",
		                    errnum ? strerror(errnum) : "",
		                    "PRIORITY=%d", prio[lvl],
		                    "SYSLOG_IDENTIFIER=%s", prog ? prog : "gslb",
		                    "GSLB_LEVEL=%s", names[lvl],
		                    "GSLB_SUBJECT=%s", subject,
		                    "ERRNO=%d", errnum, NULL) >= 0)
			return;
		/* the journal went away: fall back to a JSON line on stderr */
	}
	clock_gettime(CLOCK_REALTIME, &now);
	n = log_json_line(line, sizeof(line), (double)now.tv_sec +
	                  (double)now.tv_nsec / 1e9, lvl, prog, msg, errnum);
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}

int log_level_parse(const char *s, enum log_level *out)
{
	static const char *const names[] = { "err", "warn", "info", "debug" };

	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

static void vlog(enum log_level lvl, int errnum, const char *fmt, va_list ap)
{
	static const char *const tags[] = { "error: ", "warning: ", "", "debug: " };
	char line[2048];
	size_t n = 0;
	int r;

	if (format != LOG_FMT_TEXT) {
		vlog_structured(lvl, errnum, fmt, ap);
		return;
	}
	if (prog)
		n = (size_t)snprintf(line, sizeof(line), "%s: ", prog);
	r = snprintf(line + n, sizeof(line) - n, "%s", tags[lvl]);
	n += r > 0 ? (size_t)r : 0;
	r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (r > 0)
		n = n + (size_t)r < sizeof(line) ? n + (size_t)r : sizeof(line) - 1;
	if (errnum && n < sizeof(line) - 1) {
		r = snprintf(line + n, sizeof(line) - n, ": %s", strerror(errnum));
		if (r > 0)
			n = n + (size_t)r < sizeof(line) ? n + (size_t)r : sizeof(line) - 1;
	}
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	/* One write per line, so threads never interleave within a line. */
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}

void log_msg(enum log_level lvl, int errnum, const char *fmt, ...)
{
	va_list ap;

	if (lvl > max_level)
		return;
	va_start(ap, fmt);
	vlog(lvl, errnum, fmt, ap);
	va_end(ap);
}

void fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LVL_ERR, 0, fmt, ap);
	va_end(ap);
	exit(1);
}
