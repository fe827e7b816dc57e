/* tests/unit/test_config.c - dnsd/config.h, table-driven: flags (with a
 * value or --key=value), bounds of numeric options, lists, unknown and
 * incomplete options, the config file (comments, flags win over it, bad
 * keys and values in it), --help/--version. Each row: an argument line,
 * an optional file, the result, and the settings that must follow. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dnsd/config.h"
#include "tests/unit/harness.h"

/* Table rows leave the fields that do not apply to them zero. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

struct ccase {
	const char *name;
	const char *args;       /* space-separated; "@" stands for the file */
	const char *file;       /* config file text, or NULL */
	int rc;
	/* Checked when rc == 0: */
	const char *expect;     /* "key=value ..." over the fields below */
};

static const struct ccase cases[] = {
	{ "defaults", "", NULL, 0,
	  "threads=0 max_udp_size=1232 tcp_idle_timeout=10 ecs_max_v4=24 "
	  "ecs_max_v6=56 db_poll_ms=250 check_interval=10 quorum_percent=50 "
	  "rrl_slip=2 log_level=info n_listen=0 check=0" },
	{ "threads", "--threads 4", NULL, 0, "threads=4" },
	{ "key=value", "--threads=7 --db=/tmp/x.db", NULL, 0,
	  "threads=7 db=/tmp/x.db" },
	{ "threads below 1", "--threads 0", NULL, -EINVAL },
	{ "threads above 256", "--threads 257", NULL, -EINVAL },
	{ "not a number", "--max-udp-size big", NULL, -EINVAL },
	{ "negative", "--max-udp-size -1", NULL, -EINVAL },
	{ "max-udp-size at the ends", "--max-udp-size 512", NULL, 0,
	  "max_udp_size=512" },
	{ "max-udp-size past the end", "--max-udp-size 4097", NULL, -EINVAL },
	{ "ecs-max-v4 33", "--ecs-max-v4 33", NULL, -EINVAL },
	{ "ecs-max-v6 0", "--ecs-max-v6 0", NULL, 0, "ecs_max_v6=0" },
	{ "listen twice", "--listen 127.0.0.1:53 --listen [::1]:53", NULL, 0,
	  "n_listen=2 listen0=127.0.0.1:53 listen1=[::1]:53" },
	{ "zones", "--zone a.zone --zone b.zone", NULL, 0,
	  "n_zone=2 zone0=a.zone zone1=b.zone" },
	{ "whitelist", "--rrl-whitelist 10.0.0.0/8 --rrl-whitelist ::1/128",
	  NULL, 0, "n_rrl_whitelist=2" },
	{ "unknown option", "--thread 4", NULL, -EINVAL },
	{ "value missing", "--db", NULL, -EINVAL },
	{ "not an option", "serve", NULL, -EINVAL },
	{ "check", "--check", NULL, 0, "check=1" },
	{ "help", "--help", NULL, 1 },
	{ "version", "--version", NULL, 1 },
	{ "file", "--config @", "# a comment\nthreads 3\n\nzone a.zone  # why\n"
	  "db /var/lib/gslb/gslb.db\n", 0,
	  "threads=3 n_zone=1 zone0=a.zone db=/var/lib/gslb/gslb.db" },
	{ "flags win over the file", "--config @ --threads 5", "threads 3\n", 0,
	  "threads=5" },
	{ "flag before --config wins too", "--threads 6 --config=@",
	  "threads 3\n", 0, "threads=6" },
	{ "file: unknown key", "--config @", "threds 3\n", -EINVAL },
	{ "file: bad value", "--config @", "quorum-percent 100\n", -EINVAL },
	{ "file: missing", "--config /nonexistent/dnsd.conf", NULL, -EINVAL },
};

/* The value of field key in c, as text (buf: len bytes). */
static const char *field(const struct config *c, const char *key, char *buf,
                         size_t len)
{
#define U(f) if (strcmp(key, #f) == 0) { snprintf(buf, len, "%u", c->f); return buf; }
#define S(f) if (strcmp(key, #f) == 0) { snprintf(buf, len, "%s", c->f ? c->f : "(null)"); return buf; }
#define Z(f) if (strcmp(key, #f) == 0) { snprintf(buf, len, "%zu", c->f); return buf; }
	U(threads) U(max_udp_size) U(tcp_idle_timeout) U(ecs_max_v4)
	U(ecs_max_v6) U(db_poll_ms) U(check_interval) U(quorum_percent)
	U(rrl_slip)
	S(log_level) S(db)
	Z(n_listen) Z(n_zone) Z(n_rrl_whitelist)
#undef U
#undef S
#undef Z
	if (strcmp(key, "listen0") == 0)
		return c->listen[0];
	if (strcmp(key, "listen1") == 0)
		return c->listen[1];
	if (strcmp(key, "zone0") == 0)
		return c->zone[0];
	if (strcmp(key, "zone1") == 0)
		return c->zone[1];
	if (strcmp(key, "check") == 0)
		return c->check ? "1" : "0";
	return "(no such field)";
}

/* config_parse with stdout (--help, --version) sent to /dev/null. */
static int parse_quietly(struct config *c, int argc, char **argv)
{
	int saved = dup(STDOUT_FILENO), nul = open("/dev/null", O_WRONLY), rc;

	fflush(stdout);
	if (saved >= 0 && nul >= 0)
		dup2(nul, STDOUT_FILENO);
	rc = config_parse(c, argc, argv);
	fflush(stdout);
	if (saved >= 0) {
		dup2(saved, STDOUT_FILENO);
		close(saved);
	}
	if (nul >= 0)
		close(nul);
	return rc;
}

int main(void)
{
	char path[] = "/tmp/test_config.XXXXXX";
	int fd = mkstemp(path);

	CHECK(fd >= 0, "mkstemp");
	if (fd < 0)
		return TEST_DONE();
	close(fd);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct ccase *k = &cases[i];
		char line[512], *argv[32], *save = NULL, *t;
		struct config c;
		int argc = 0, rc;

		if (k->file) {
			FILE *f = fopen(path, "w");

			fputs(k->file, f);
			fclose(f);
		}
		snprintf(line, sizeof line, "%s", k->args);
		for (t = strtok_r(line, " ", &save); t && argc < 31;
		     t = strtok_r(NULL, " ", &save)) {
			if (strcmp(t, "@") == 0)
				t = path;
			else if (strcmp(t, "--config=@") == 0)
				t = NULL;
			if (!t) {
				static char eq[64];

				snprintf(eq, sizeof eq, "--config=%s", path);
				t = eq;
			}
			argv[argc++] = t;
		}
		argv[argc] = NULL;
		config_init(&c);
		rc = parse_quietly(&c, argc, argv);
		CHECK(rc == k->rc, "%s: config_parse returned %d, want %d",
		      k->name, rc, k->rc);
		if (rc == 0 && k->expect) {
			char exp[512], *e, *s2 = NULL;

			snprintf(exp, sizeof exp, "%s", k->expect);
			for (e = strtok_r(exp, " ", &s2); e;
			     e = strtok_r(NULL, " ", &s2)) {
				char *eq = strchr(e, '='), buf[256];
				const char *got;

				*eq = '\0';
				got = field(&c, e, buf, sizeof buf);
				CHECK(got && strcmp(got, eq + 1) == 0,
				      "%s: %s is '%s', want '%s'", k->name, e,
				      got ? got : "(null)", eq + 1);
			}
		}
		config_fini(&c);
	}
	unlink(path);
	return TEST_DONE();
}
