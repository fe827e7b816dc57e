/* tests/unit/test_log.c - log_format_parse and the JSON line format. */
#include <errno.h>
#include <string.h>

#include <jansson.h>

#include "common/log.h"
#include "tests/unit/harness.h"

int main(void)
{
	static const struct {
		const char *in;
		int rc;
		enum log_format f;
	} fmts[] = {
		{ "auto", 0, LOG_FMT_AUTO }, { "text", 0, LOG_FMT_TEXT },
		{ "json", 0, LOG_FMT_JSON }, { "journal", 0, LOG_FMT_JOURNAL },
		{ "JSON", -EINVAL, 0 }, { "", -EINVAL, 0 }, { "syslog", -EINVAL, 0 },
	};
	static const struct {
		enum log_level lvl;
		const char *prog, *msg;
		int errnum;
		const char *level, *want_msg;   /* decoded */
	} lines[] = {
		{ LOG_LVL_INFO, "dnsd", "zone x.: loaded", 0, "info", "zone x.: loaded" },
		{ LOG_LVL_ERR, "dnsd", "quote \" back \\ nl \n tab \t", 0, "err",
		  "quote \" back \\ nl \n tab \t" },
		{ LOG_LVL_WARN, NULL, "ctl \x01\x1f del \x7f", 0, "warn", "ctl \x01\x1f del \x7f" },
		{ LOG_LVL_DEBUG, "p", "utf8 \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 0, "debug",
		  "utf8 \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80" },
		/* invalid UTF-8: a lone continuation, an overlong, a truncated
		 * sequence and a surrogate each become U+FFFD */
		{ LOG_LVL_INFO, "p", "bad \x80|\xc0\xaf|\xe2\x82|\xed\xa0\x80", 0, "info",
		  "bad \xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd|"
		  "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
		{ LOG_LVL_ERR, "dnsd", "open /x", ENOENT, "err", "open /x" },
	};

	for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
		enum log_format f = LOG_FMT_TEXT;
		int rc = log_format_parse(fmts[i].in, &f);

		CHECK(rc == fmts[i].rc && (rc < 0 || f == fmts[i].f), "format '%s': rc %d",
		      fmts[i].in, rc);
	}
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		char buf[4096];
		size_t n = log_json_line(buf, sizeof(buf), 1796290967.125, lines[i].lvl,
		                         lines[i].prog, lines[i].msg, lines[i].errnum);
		json_error_t je;
		json_t *o;

		CHECK(n > 2 && buf[n - 1] == '\n' && !memchr(buf, '\n', n - 1),
		      "line %zu: not one line", i);
		o = json_loadb(buf, n, 0, &je);
		CHECK(o != NULL, "line %zu: not JSON (%s): %.*s", i, je.text, (int)n, buf);
		if (!o)
			continue;
		CHECK(strcmp(json_string_value(json_object_get(o, "ts")),
		             "2026-12-03T09:42:47.125Z") == 0, "line %zu: ts %s", i,
		      json_string_value(json_object_get(o, "ts")));
		CHECK(strcmp(json_string_value(json_object_get(o, "level")), lines[i].level) == 0,
		      "line %zu: level", i);
		CHECK(strcmp(json_string_value(json_object_get(o, "prog")),
		             lines[i].prog ? lines[i].prog : "") == 0, "line %zu: prog", i);
		CHECK(strcmp(json_string_value(json_object_get(o, "msg")), lines[i].want_msg) == 0,
		      "line %zu: msg '%s'", i, json_string_value(json_object_get(o, "msg")));
		if (lines[i].errnum)
			CHECK(json_integer_value(json_object_get(o, "errno")) == lines[i].errnum &&
			      strcmp(json_string_value(json_object_get(o, "error")),
			             strerror(lines[i].errnum)) == 0, "line %zu: errno", i);
		else
			CHECK(!json_object_get(o, "errno"), "line %zu: errno without error", i);
		json_decref(o);
	}
	{
		/* a message longer than the buffer is cut, and still one valid line */
		char msg[3000], buf[512];
		size_t n;
		json_t *o;

		memset(msg, '"', sizeof(msg) - 1);
		msg[sizeof(msg) - 1] = 0;
		n = log_json_line(buf, sizeof(buf), 1, LOG_LVL_INFO, "p", msg, EIO);
		o = json_loadb(buf, n, 0, NULL);
		CHECK(n <= sizeof(buf) && buf[n - 1] == '\n' && o, "long line: %.*s", (int)n, buf);
		json_decref(o);
	}
	return TEST_DONE();
}
