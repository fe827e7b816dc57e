/* health/probe_main.c - bin/gslb-probe: command line, then probe_run(). */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include <systemd/sd-daemon.h>

#include "common/log.h"
#include "health/probe.h"
#include "health/token.h"

#define PROBE_VERSION "0.1"

static void usage(FILE *f)
{
	fprintf(f,
"usage: gslb-probe --name NAME --region REGION [--lat DEG --lon DEG]\n"
"                  --server URL [--server URL ...]\n"
"                  --token-file FILE | --cert FILE --key FILE\n"
"                  [--interval SECONDS] [options]\n"
"\n"
"Runs health checks learnt from each dnsd API (GET /v1/checks) and reports\n"
"the results to every server (POST /v1/reports). Foreground; logs to stderr.\n"
"\n"
"  --name NAME           agent name (unique per agent)\n"
"  --region REGION       region this agent measures from\n"
"  --lat DEG --lon DEG   agent coordinates (optional, together)\n"
"  --server URL          dnsd API base URL, e.g. http://127.0.0.1:8053 or\n"
"                        https://dnsd.example:8053 (repeatable, up to %d)\n"
"  --ca-file FILE        PEM CAs that verify https servers (default: the\n"
"                        system store); the URL's host must match\n"
"  --token-file FILE     bearer token on the first line\n"
"  --cert FILE           PEM client certificate (chain) for https servers\n"
"                        that ask for one; its URI gslb-agent:NAME names the\n"
"                        agent (then --token-file is optional)\n"
"  --key FILE            PEM private key of --cert\n"
"  --interval SECONDS    interval of checks that set none (default 10, min 1)\n"
"  --refresh SECONDS     check-list refetch period (default 10)\n"
"  --batch SECONDS       minimum time between reports (default 0.5)\n"
"  --api-timeout SECONDS timeout of one API request (default 5)\n"
"  --log-level LEVEL     err, warn, info (default) or debug\n"
"  --log-format FORMAT   text, json (one object a line), journal, or auto\n"
"                        (default: journal under systemd, else text)\n"
"  --help, --version\n", PROBE_MAX_SERVERS);
}

static double num_arg(const char *opt, const char *s, double lo, double hi)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi)
		fatal("gslb-probe: %s '%s': expected a number %g..%g", opt, s,
		      lo, hi);
	return v;
}

int main(int argc, char **argv)
{
	enum { O_NAME = 256, O_REGION, O_LAT, O_LON, O_SERVER, O_TOKEN,
	       O_INTERVAL, O_REFRESH, O_BATCH, O_APITO, O_LOG, O_LOGFMT, O_HELP,
	       O_VERSION, O_CAFILE, O_CERT, O_KEY };
	static const struct option opts[] = {
		{ "name", required_argument, NULL, O_NAME },
		{ "region", required_argument, NULL, O_REGION },
		{ "lat", required_argument, NULL, O_LAT },
		{ "lon", required_argument, NULL, O_LON },
		{ "server", required_argument, NULL, O_SERVER },
		{ "token-file", required_argument, NULL, O_TOKEN },
		{ "ca-file", required_argument, NULL, O_CAFILE },
		{ "cert", required_argument, NULL, O_CERT },
		{ "key", required_argument, NULL, O_KEY },
		{ "interval", required_argument, NULL, O_INTERVAL },
		{ "refresh", required_argument, NULL, O_REFRESH },
		{ "batch", required_argument, NULL, O_BATCH },
		{ "api-timeout", required_argument, NULL, O_APITO },
		{ "log-level", required_argument, NULL, O_LOG },
		{ "log-format", required_argument, NULL, O_LOGFMT },
		{ "help", no_argument, NULL, O_HELP },
		{ "version", no_argument, NULL, O_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	struct probe_conf c = {
		.interval = 10, .refresh = 10, .batch = 0.5, .http_timeout = 5,
	};
	const char *token_file = NULL;
	static char token[TOKEN_MAX];
	char err[300];
	bool has_lat = false, has_lon = false;
	enum log_level lvl;
	enum log_format fmt = LOG_FMT_AUTO;
	int o, rc;

	log_set_format(LOG_FMT_AUTO);
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case O_NAME: c.name = optarg; break;
		case O_REGION: c.region = optarg; break;
		case O_LAT:
			c.lat = num_arg("--lat", optarg, -90, 90);
			has_lat = true;
			break;
		case O_LON:
			c.lon = num_arg("--lon", optarg, -180, 180);
			has_lon = true;
			break;
		case O_SERVER:
			if (c.n_servers == PROBE_MAX_SERVERS)
				fatal("gslb-probe: more than %d --server",
				      PROBE_MAX_SERVERS);
			c.servers[c.n_servers++] = optarg;
			break;
		case O_TOKEN: token_file = optarg; break;
		case O_CAFILE: c.ca_file = optarg; break;
		case O_CERT: c.cert_file = optarg; break;
		case O_KEY: c.key_file = optarg; break;
		case O_INTERVAL:
			c.interval = num_arg("--interval", optarg, 1, 86400);
			break;
		case O_REFRESH:
			c.refresh = num_arg("--refresh", optarg, 0.1, 3600);
			break;
		case O_BATCH:
			c.batch = num_arg("--batch", optarg, 0.05, 60);
			break;
		case O_APITO:
			c.http_timeout = num_arg("--api-timeout", optarg, 0.1, 300);
			break;
		case O_LOG:
			if (log_level_parse(optarg, &lvl) < 0)
				fatal("gslb-probe: --log-level '%s': expected err, "
				      "warn, info or debug", optarg);
			log_set_level(lvl);
			break;
		case O_LOGFMT:
			if (log_format_parse(optarg, &fmt) < 0)
				fatal("gslb-probe: --log-format '%s': expected text, "
				      "json, journal or auto", optarg);
			log_set_format(fmt);
			break;
		case O_HELP:
			usage(stdout);
			return 0;
		case O_VERSION:
			printf("gslb-probe %s\n", PROBE_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc)
		fatal("gslb-probe: unexpected argument '%s'", argv[optind]);
	if (!c.name || !*c.name || strlen(c.name) > 63)
		fatal("gslb-probe: --name NAME is required (1..63 bytes)");
	if (!c.region || !*c.region || strlen(c.region) > 63)
		fatal("gslb-probe: --region REGION is required (1..63 bytes)");
	if (has_lat != has_lon)
		fatal("gslb-probe: --lat and --lon go together");
	c.has_coords = has_lat;
	if (c.n_servers == 0)
		fatal("gslb-probe: at least one --server URL is required");
	if (!!c.cert_file != !!c.key_file)
		fatal("gslb-probe: --cert and --key go together");
	if (c.cert_file) {
		bool https = false;
		SSL_CTX *t;

		for (size_t i = 0; i < c.n_servers; i++)
			https |= strncasecmp(c.servers[i], "https:", 6) == 0;
		if (!https)
			fatal("gslb-probe: --cert needs an https --server "
			      "(client certificates come with TLS)");
		if (!(t = probe_api_tls_new(c.ca_file, c.cert_file, c.key_file,
		                            err, sizeof(err))))
			fatal("gslb-probe: %s", err);
		SSL_CTX_free(t);
	}
	if (!token_file && !c.cert_file)
		fatal("gslb-probe: --token-file FILE (or --cert and --key) is "
		      "required");
	if (token_file) {
		if (token_load(token_file, token, sizeof(token), err,
		               sizeof(err)) < 0)
			fatal("gslb-probe: token file %s", err);
		c.token = token;
	}
	/* Type=notify units: the options and token are good and the agent
	 * starts now; sd_notify() is a no-op without NOTIFY_SOCKET. */
	sd_notifyf(0, "READY=1\nSTATUS=probing as %s (region %s)\nMAINPID=%lu",
		   c.name, c.region, (unsigned long)getpid());
	rc = probe_run(&c);
	sd_notify(0, "STOPPING=1");
	return rc;
}
