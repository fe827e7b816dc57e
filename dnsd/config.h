/* dnsd/config.h - dnsd's settings: one table of options, read from a
 * config file ("key value" lines, '#' comments) and from --key flags, which
 * win. Load time only (startup, --check). */
#ifndef DNSD_CONFIG_H
#define DNSD_CONFIG_H

/* dnsd --version and the dnsd_build_info metric. */
#define DNSD_VERSION "0.1.0"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_LIST_MAX 64

struct config {
	const char *listen[CONFIG_LIST_MAX];
	size_t n_listen;
	const char *zone[CONFIG_LIST_MAX];
	size_t n_zone;
	const char *db;
	const char *geoip;
	const char *api;
	const char *api_token_file;
	const char *api_tokens;        /* credentials file (health/cred.h) */
	unsigned api_tokens_allow_others;
	const char *api_tls_cert, *api_tls_key;   /* PEM: HTTPS only */
	const char *api_tls_client_ca;  /* PEM: client certificates */
	const char *api_tls_client_crl; /* PEM: their CAs' revocations */
	const char *api_tls_client_auth;          /* optional, require */
	unsigned api_max_connections;
	unsigned api_request_timeout;  /* seconds */
	unsigned api_max_body;         /* bytes, admin requests */
	unsigned api_max_report_body;  /* bytes, any other */
	const char *api_hosts[CONFIG_LIST_MAX];   /* Host names answered */
	size_t n_api_hosts;
	const char *notify_url;      /* webhook for health transitions */
	const char *nsid;
	const char *log_level;
	const char *log_format;      /* auto, text, json, journal */
	const char *user;
	const char *default_location;
	const char *xdp;               /* interface for AF_XDP mode, or NULL */
	unsigned threads;
	unsigned max_udp_size;
	unsigned tcp_idle_timeout;     /* seconds */
	unsigned tcp_max_clients;      /* per worker */
	unsigned tcp_max_per_source;   /* per worker and source address */
	unsigned ecs_max_v4, ecs_max_v6;
	unsigned db_poll_ms;
	/* Response rate limiting (rrl.h). */
	unsigned rrl_rate, rrl_slip, rrl_ipv4_prefix, rrl_ipv6_prefix;
	unsigned rrl_table_size;
	const char *rrl_whitelist[CONFIG_LIST_MAX];
	size_t n_rrl_whitelist;
	/* Online signing (dnssec.h). */
	const char *dnssec_keys;
	unsigned dnssec_cache_mb, dnssec_sign_rate;
	unsigned check_interval;       /* seconds, checks that set none */
	unsigned quorum_percent;       /* up when more than this % of fresh agents say up */
	unsigned quorum_min_regions;   /* down needs down votes from this many regions */
	unsigned agent_expiry;         /* seconds: forget silent agents */
	/* The configuration from etcd (dnsd/etcdsync.h). */
	const char *etcd[CONFIG_LIST_MAX];
	size_t n_etcd;
	const char *etcd_prefix;       /* NULL: /gslb/ */
	unsigned etcd_catchup_revisions;
	const char *node_name;         /* NULL: the host name */
	const char *etcd_ca_file, *etcd_cert_file, *etcd_key_file;
	bool check;                    /* --check: validate and exit */
	char *strings;                 /* owns the text of file values */
};

/* Fills defaults. */
void config_init(struct config *c);
/* Parses argv (after the program name) and the --config file it names.
 * Prints every problem as "where: what" to stderr. Returns 0, 1 when
 * --help/--version was handled (exit 0), or -EINVAL. */
int config_parse(struct config *c, int argc, char **argv);
void config_fini(struct config *c);
/* Prints the usage text. */
void config_usage(FILE *out);

#endif
