/* dnsd/config.c - option table, config file and flags; see config.h. */
#include "dnsd/config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/spell.h"


enum opt_type { OPT_STR, OPT_LIST, OPT_UINT, OPT_FLAG };

struct opt {
	const char *name;
	enum opt_type type;
	size_t off;              /* into struct config */
	size_t count_off;        /* OPT_LIST: the counter */
	unsigned min, max;       /* OPT_UINT bounds */
	const char *help;
};

#define OFF(f) offsetof(struct config, f)
static const struct opt opts[] = {
	{ "listen", OPT_LIST, OFF(listen), OFF(n_listen), 0, 0,
	  "ADDR:PORT to serve DNS on, UDP and TCP (repeatable; [::1]:53 for IPv6)" },
	{ "zone", OPT_LIST, OFF(zone), OFF(n_zone), 0, 0,
	  "an RFC 1035 master file (repeatable)" },
	{ "db", OPT_STR, OFF(db), 0, 0, 0, "the SQLite store of balanced names" },
	{ "geoip", OPT_STR, OFF(geoip), 0, 0, 0, "an MMDB GeoIP database" },
	{ "default-location", OPT_STR, OFF(default_location), 0, 0, 0,
	  "LAT,LON or a country code: where clients the GeoIP database does not know are" },
	{ "api", OPT_STR, OFF(api), 0, 0, 0, "ADDR:PORT of the HTTP API" },
	{ "api-token-file", OPT_STR, OFF(api_token_file), 0, 0, 0,
	  "file whose first line is a shared API bearer token with every role (one operator, trusted agents)" },
	{ "api-tokens", OPT_STR, OFF(api_tokens), 0, 0, 0,
	  "credentials file: ROLE NAME TOKEN lines (admin, agent, read); reread on SIGHUP" },
	{ "api-tls-cert", OPT_STR, OFF(api_tls_cert), 0, 0, 0,
	  "PEM certificate chain: the API speaks HTTPS only (TLS 1.2+); reread on SIGHUP" },
	{ "api-tls-key", OPT_STR, OFF(api_tls_key), 0, 0, 0,
	  "PEM private key of api-tls-cert" },
	{ "api-tls-client-ca", OPT_STR, OFF(api_tls_client_ca), 0, 0, 0,
	  "PEM CAs whose client certificates the API verifies; a certificate's URI gslb-agent:NAME makes it agent NAME; reread on SIGHUP" },
	{ "api-tls-client-crl", OPT_STR, OFF(api_tls_client_crl), 0, 0, 0,
	  "PEM revocation lists of the api-tls-client-ca CAs (one for each, kept current); reread on SIGHUP" },
	{ "api-tls-client-auth", OPT_STR, OFF(api_tls_client_auth), 0, 0, 0,
	  "optional (a client may come without a certificate and send a token) or require (no certificate, no handshake) (default optional)" },
	{ "api-max-connections", OPT_UINT, OFF(api_max_connections), 0, 1, 1000000,
	  "open API connections; past it the longest idle is closed to admit a new one (default 512)" },
	{ "api-request-timeout", OPT_UINT, OFF(api_request_timeout), 0, 1, 3600,
	  "seconds an API connection has to complete a request, from its start or its previous request (default 10)" },
	{ "api-max-body", OPT_UINT, OFF(api_max_body), 0, 1024, 1073741824,
	  "bytes: an admin request's body larger is refused (413) before it is read (default 16777216)" },
	{ "api-max-report-body", OPT_UINT, OFF(api_max_report_body), 0, 1024, 1073741824,
	  "bytes: the same for every other request: agents' reports, no token (default 1048576)" },
	{ "api-hosts", OPT_LIST, OFF(api_hosts), OFF(n_api_hosts), 0, 0,
	  "a Host name the plain-HTTP API answers to besides IP addresses and localhost, or * for any (repeatable)" },
	{ "api-tokens-allow-others", OPT_UINT, OFF(api_tokens_allow_others), 0, 0, 1,
	  "1: accept a credentials file that others may read (default 0: refuse to start)" },
	{ "threads", OPT_UINT, OFF(threads), 0, 1, 256,
	  "worker threads (default: one per CPU)" },
	{ "xdp", OPT_STR, OFF(xdp), 0, 0, 0,
	  "IFACE: also answer UDP queries arriving on IFACE through AF_XDP, bypassing the kernel's UDP stack (root; see dnsd(8))" },
	{ "nsid", OPT_STR, OFF(nsid), 0, 0, 0,
	  "NSID (RFC 5001) to return when asked" },
	{ "max-udp-size", OPT_UINT, OFF(max_udp_size), 0, 512, 4096,
	  "largest UDP answer with EDNS (default 1232)" },
	{ "tcp-idle-timeout", OPT_UINT, OFF(tcp_idle_timeout), 0, 1, 3600,
	  "seconds before an idle TCP connection is closed (default 10)" },
	{ "tcp-max-clients", OPT_UINT, OFF(tcp_max_clients), 0, 1, 1000000,
	  "TCP connections per worker; the longest idle is closed to admit one more (default 250)" },
	{ "tcp-max-per-source", OPT_UINT, OFF(tcp_max_per_source), 0, 0, 1000000,
	  "TCP connections per worker from one source address; its longest idle is closed to admit one more; 0 no cap (default 64)" },
	{ "ecs-max-v4", OPT_UINT, OFF(ecs_max_v4), 0, 0, 32,
	  "longest trusted ECS source prefix for IPv4 (default 24)" },
	{ "ecs-max-v6", OPT_UINT, OFF(ecs_max_v6), 0, 0, 128,
	  "longest trusted ECS source prefix for IPv6 (default 56)" },
	{ "db-poll-ms", OPT_UINT, OFF(db_poll_ms), 0, 50, 60000,
	  "how often to look for database changes (default 250)" },
	{ "check-interval", OPT_UINT, OFF(check_interval), 0, 1, 3600,
	  "seconds between checks that set no interval; match the agents' --interval (default 10)" },
	{ "quorum-percent", OPT_UINT, OFF(quorum_percent), 0, 1, 99,
	  "an endpoint is up when more than this % of agents with fresh reports say so (default 50)" },
	{ "agent-expiry", OPT_UINT, OFF(agent_expiry), 0, 60, 31536000,
	  "seconds after which a silent agent (and a region no agent is in) is forgotten; at most 1024 agents and 256 regions are kept (default 86400)" },
	{ "quorum-min-regions", OPT_UINT, OFF(quorum_min_regions), 0, 0, 64,
	  "a down verdict needs down votes from at least this many regions; 0 (default) or 1: no such rule" },
	{ "notify-url", OPT_STR, OFF(notify_url), 0, 0, 0,
	  "http:// URL that gets each health transition as a JSON POST (retried with backoff)" },
	{ "log-level", OPT_STR, OFF(log_level), 0, 0, 0,
	  "err, warn, info (default) or debug" },
	{ "log-format", OPT_STR, OFF(log_format), 0, 0, 0,
	  "text, json (one object a line), journal, or auto (default: journal under systemd, else text)" },
	{ "user", OPT_STR, OFF(user), 0, 0, 0,
	  "user to switch to after binding, when started as root" },
	{ "dnssec-keys", OPT_STR, OFF(dnssec_keys), 0, 0, 0,
	  "DIR of BIND-format key pairs (K<zone>.+<alg>+<id>.key/.private, algorithms 13 and 15): zones with keys there are signed online for queries with DO" },
	{ "dnssec-cache-mb", OPT_UINT, OFF(dnssec_cache_mb), 0, 0, 65536,
	  "memory per worker thread for cached signatures, in MiB; 0 turns the cache off (default 16)" },
	{ "dnssec-sign-rate", OPT_UINT, OFF(dnssec_sign_rate), 0, 0, 10000000,
	  "signatures per second each worker makes at most (cache misses); over it UDP gets TC, TCP SERVFAIL; 0 no cap (default 20000)" },
	{ "etcd", OPT_LIST, OFF(etcd), OFF(n_etcd), 0, 0,
	  "URL of an etcd member (http://HOST:PORT or https://; repeatable): the configuration of balanced names comes from etcd, --db is this node's replica of it" },
	{ "etcd-prefix", OPT_STR, OFF(etcd_prefix), 0, 0, 0,
	  "key prefix of the configuration in etcd (default /gslb/)" },
	{ "etcd-catchup-revisions", OPT_UINT, OFF(etcd_catchup_revisions), 0, 1, 100000000,
	  "a node this many etcd revisions behind or more catches up by reading the current configuration and the new audit rows instead of replaying the history (default 5000)" },
	{ "node-name", OPT_STR, OFF(node_name), 0, 0, 0,
	  "this node's name in etcd (PREFIX nodes/NAME, with the revision it applied; default: the host name)" },
	{ "etcd-ca-file", OPT_STR, OFF(etcd_ca_file), 0, 0, 0,
	  "PEM CA certificates that sign the etcd members' (https URLs; default: the system's)" },
	{ "etcd-cert-file", OPT_STR, OFF(etcd_cert_file), 0, 0, 0,
	  "PEM client certificate for etcd members that require one (--client-cert-auth)" },
	{ "etcd-key-file", OPT_STR, OFF(etcd_key_file), 0, 0, 0,
	  "PEM private key of etcd-cert-file" },
	{ "rrl-rate", OPT_UINT, OFF(rrl_rate), 0, 0, 1000000,
	  "UDP responses per second per source prefix and response class; 0 (default) turns rate limiting off" },
	{ "rrl-slip", OPT_UINT, OFF(rrl_slip), 0, 0, 100,
	  "every Nth rate-limited response is sent truncated (TC) instead of dropped; 0 never (default 2)" },
	{ "rrl-ipv4-prefix", OPT_UINT, OFF(rrl_ipv4_prefix), 0, 0, 32,
	  "IPv4 source prefix length that shares a rate limit (default 24)" },
	{ "rrl-ipv6-prefix", OPT_UINT, OFF(rrl_ipv6_prefix), 0, 0, 128,
	  "IPv6 source prefix length that shares a rate limit (default 56)" },
	{ "rrl-whitelist", OPT_LIST, OFF(rrl_whitelist), OFF(n_rrl_whitelist), 0, 0,
	  "ADDR/LEN never rate limited (repeatable)" },
	{ "rrl-table-size", OPT_UINT, OFF(rrl_table_size), 0, 16, 16777216,
	  "rate-limit buckets per worker thread (default 16384)" },
};
#define N_OPTS (sizeof(opts) / sizeof(opts[0]))

void config_init(struct config *c)
{
	memset(c, 0, sizeof(*c));
	c->max_udp_size = 1232;
	c->dnssec_cache_mb = 16;
	c->dnssec_sign_rate = 20000;
	c->tcp_idle_timeout = 10;
	c->tcp_max_clients = 250;
	c->tcp_max_per_source = 64;
	c->ecs_max_v4 = 24;
	c->ecs_max_v6 = 56;
	c->db_poll_ms = 250;
	c->etcd_catchup_revisions = 5000;
	c->rrl_slip = 2;
	c->rrl_ipv4_prefix = 24;
	c->rrl_ipv6_prefix = 56;
	c->rrl_table_size = 16384;
	c->check_interval = 10;
	c->quorum_percent = 50;
	c->api_max_connections = 512;
	c->agent_expiry = 86400;
	c->api_request_timeout = 10;
	c->api_max_body = 16 * 1024 * 1024;
	c->api_max_report_body = 1024 * 1024;
	c->log_level = "info";
	c->api_tls_client_auth = "optional";
	c->log_format = "auto";
}

void config_fini(struct config *c)
{
	free(c->strings);
	c->strings = NULL;
}

void config_usage(FILE *out)
{
	fprintf(out,
		"usage: dnsd [--config FILE] [--check] [--OPTION VALUE ...]\n"
		"Authoritative DNS server with balanced names (GSLB).\n\n"
		"  --config FILE         read options from FILE (\"key value\" lines)\n"
		"  --check               validate configuration, zones and database, then exit\n"
		"  --help, --version\n");
	for (size_t i = 0; i < N_OPTS; i++)
		fprintf(out, "  --%-20s %s\n", opts[i].name, opts[i].help);
	fprintf(out, "\nEvery option can be a config-file key; flags win over the file.\n");
}

static const struct opt *find_opt(const char *name)
{
	for (size_t i = 0; i < N_OPTS; i++)
		if (strcmp(opts[i].name, name) == 0)
			return &opts[i];
	return NULL;
}

static const char *nearest(const char *name)
{
	const char *best = NULL;
	size_t bd = SIZE_MAX;

	for (size_t i = 0; i < N_OPTS; i++) {
		size_t d = spell_distance(name, opts[i].name);

		if (d < bd) {
			bd = d;
			best = opts[i].name;
		}
	}
	return best;
}

/* Sets one option. where: "file:line" or "command line". seen: per option,
 * whether this source already set it (duplicates are errors). Lists from a
 * second source replace the first one's entries. */
static int set_opt(struct config *c, const char *where, const char *key,
		   const char *val, bool *seen, bool *list_reset)
{
	const struct opt *o = find_opt(key);
	char *base = (char *)c;

	if (!o) {
		log_err("%s: unknown option '%s' (did you mean '%s'?)", where, key,
			nearest(key));
		return -EINVAL;
	}
	if (!val || !*val) {
		log_err("%s: %s: missing value", where, key);
		return -EINVAL;
	}
	if (o->type != OPT_LIST && seen[o - opts]) {
		log_err("%s: %s: given twice", where, key);
		return -EINVAL;
	}
	seen[o - opts] = true;
	switch (o->type) {
	case OPT_STR:
		*(const char **)(base + o->off) = val;
		break;
	case OPT_LIST: {
		size_t *n = (size_t *)(base + o->count_off);

		if (!list_reset[o - opts]) {
			*n = 0;
			list_reset[o - opts] = true;
		}
		if (*n >= CONFIG_LIST_MAX) {
			log_err("%s: %s: more than %d entries", where, key, CONFIG_LIST_MAX);
			return -EINVAL;
		}
		((const char **)(base + o->off))[(*n)++] = val;
		break;
	}
	case OPT_UINT: {
		char *end;
		unsigned long v;

		errno = 0;
		v = strtoul(val, &end, 10);
		if (errno || *end || end == val || val[0] == '-' ||
		    v < o->min || v > o->max) {
			log_err("%s: %s: '%s' is not a number in %u..%u", where, key,
				val, o->min, o->max);
			return -EINVAL;
		}
		*(unsigned *)(base + o->off) = (unsigned)v;
		break;
	}
	case OPT_FLAG:
		break;
	}
	return 0;
}

static int read_file(struct config *c, const char *path)
{
	FILE *fp = fopen(path, "r");
	bool seen[N_OPTS] = { 0 }, reset[N_OPTS] = { 0 };
	char *data = NULL;
	size_t cap = 0, len = 0;
	int rc = 0, lineno = 0;
	char where[PATH_MAX + 32];

	if (!fp) {
		log_err("%s: %s", path, strerror(errno));
		return -errno;
	}
	/* Read it whole: option values point into this buffer. */
	for (;;) {
		size_t n;

		if (len + 4096 + 1 > cap) {
			char *nd = realloc(data, cap = cap ? cap * 2 : 8192);

			if (!nd) {
				fclose(fp);
				free(data);
				return -ENOMEM;
			}
			data = nd;
		}
		n = fread(data + len, 1, cap - len - 1, fp);
		if (n == 0)
			break;
		len += n;
	}
	fclose(fp);
	if (!data)
		return 0;
	data[len] = 0;
	c->strings = data;
	for (char *line = data, *next; line && *line; line = next) {
		char *key, *val, *end;

		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		lineno++;
		if ((end = strchr(line, '#')))
			*end = 0;
		key = line + strspn(line, " \t\r");
		if (!*key)
			continue;
		val = key + strcspn(key, " \t\r=");
		if (*val)
			*val++ = 0;
		val += strspn(val, " \t\r=");
		end = val + strlen(val);
		while (end > val && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
			*--end = 0;
		snprintf(where, sizeof(where), "%s:%d", path, lineno);
		if (set_opt(c, where, key, val, seen, reset) < 0)
			rc = -EINVAL;
	}
	return rc;
}

int config_parse(struct config *c, int argc, char **argv)
{
	bool seen[N_OPTS] = { 0 }, reset[N_OPTS] = { 0 };
	const char *file = NULL;
	int rc = 0;

	/* The file first, whatever its position, so that flags win. */
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			config_usage(stdout);
			return 1;
		}
		if (strcmp(argv[i], "--version") == 0) {
			printf("dnsd %s\n", DNSD_VERSION);
			return 1;
		}
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			file = argv[++i];
		else if (strncmp(argv[i], "--config=", 9) == 0)
			file = argv[i] + 9;
	}
	if (file && read_file(c, file) < 0)
		rc = -EINVAL;
	for (int i = 0; i < argc; i++) {
		char *a = argv[i], *eq, key[64];
		const char *val;

		if (strcmp(a, "--check") == 0) {
			c->check = true;
			continue;
		}
		if (strcmp(a, "--config") == 0) {
			i++;
			continue;
		}
		if (strncmp(a, "--config=", 9) == 0)
			continue;
		if (strncmp(a, "--", 2) != 0 || strlen(a) >= sizeof(key) + 2) {
			log_err("command line: unexpected argument '%s'", a);
			rc = -EINVAL;
			continue;
		}
		if ((eq = strchr(a, '='))) {
			snprintf(key, sizeof(key), "%.*s", (int)(eq - a - 2), a + 2);
			val = eq + 1;
		} else {
			snprintf(key, sizeof(key), "%s", a + 2);
			if (!find_opt(key)) {
				val = NULL;
			} else if (i + 1 >= argc) {
				log_err("command line: --%s: missing value", key);
				rc = -EINVAL;
				continue;
			} else {
				val = argv[++i];
			}
		}
		if (set_opt(c, "command line", key, val, seen, reset) < 0)
			rc = -EINVAL;
	}
	return rc;
}
