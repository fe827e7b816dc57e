/* dnsd/dnsd_main.c - the dnsd program: reads the configuration, loads,
 * starts the control thread (dnsd/control.c) and the answering threads
 * (dnsd/net.c), drops privileges, serves until told to stop. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/capability.h>

#include "common/log.h"
#include "dnsd/config.h"
#include "dnsd/control.h"
#include "dnsd/rrl.h"
#include "dnsd/xdp.h"

/* Started as root with a `user`: keep the bound sockets, give up root for
 * good (groups, gid, uid), and check it cannot be regained. */
static void drop_privileges(const char *user)
{
	struct passwd *pw;

	if (!user || geteuid() != 0)
		return;
	pw = getpwnam(user);
	if (!pw)
		fatal("user %s: no such user", user);
	if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0)
		fatal("user %s: cannot switch to it: %s", user, strerror(errno));
	if (pw->pw_uid != 0 && setuid(0) == 0)
		fatal("user %s: could regain root after dropping it", user);
	/* Changing uid made the process undumpable, which hands /proc/self
	 * to root: the API's connection limits read /proc/self/fd. The same
	 * as a service started as that user in the first place. */
	if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0)
		log_warn_errno("prctl(PR_SET_DUMPABLE)");
	log_info("running as user %s (uid %u)", user, (unsigned)pw->pw_uid);
}

/* Once every socket is bound (and XDP attached): give up every
 * capability for good - ambient, bounding (when allowed), inheritable,
 * permitted, effective - and any way to gain one through exec. Before the
 * worker threads exist: capabilities are per thread, and new threads copy
 * them from this one. */
static void drop_capabilities(void)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct data[2] = { { 0 } };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		log_warn_errno("prctl(PR_SET_NO_NEW_PRIVS)");
	(void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	/* Needs CAP_SETPCAP (root has it; an unprivileged service has a
	 * bounding set its unit already limited). */
	for (int cap = 0; cap < 64 && prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0;
	     cap++)
		(void)prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
	if (syscall(SYS_capset, &hdr, data) < 0)
		fatal("cannot drop capabilities: %s", strerror(errno));
	memset(data, 0xff, sizeof(data));
	if (syscall(SYS_capget, &hdr, data) < 0 || data[0].effective ||
	    data[0].permitted || data[1].effective || data[1].permitted)
		fatal("capabilities still held after dropping them");
	log_info("capabilities dropped");
}

/* Every TCP client is a descriptor: raise the soft limit to the hard one,
 * so tcp-max-clients per worker is not cut short by a default of 1024. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		log_warn_errno("cannot raise the open file limit");
}

/* The rate limiting settings from the configuration. Returns 0 or
 * -EINVAL (bad whitelist entries, each logged). */
static int rrl_conf_of(const struct config *c, struct rrl_conf *r)
{
	rrl_conf_init(r);
	r->rate = c->rrl_rate;
	r->slip = c->rrl_slip;
	r->v4_prefix = c->rrl_ipv4_prefix;
	r->v6_prefix = c->rrl_ipv6_prefix;
	r->table_size = c->rrl_table_size;
	return rrl_whitelist_parse(r, c->rrl_whitelist, c->n_rrl_whitelist) < 0
	       ? -EINVAL : 0;
}

static unsigned default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > 64 ? 64 : (unsigned)n;
}

/* The XDP limits of the configuration. Returns the number of problems
 * (each logged). */
static unsigned check_xdp(const struct config *c)
{
	unsigned failed = 0;

	if (!c->xdp)
		return 0;
	if (c->max_udp_size > XDP_ANSWER_MAX) {
		log_err("max-udp-size: %u is more than an XDP frame carries "
			"(at most %u with xdp)", c->max_udp_size, XDP_ANSWER_MAX);
		failed++;
	}
	/* When serving, xdp_new() checks this itself. */
	if (c->check)
		failed += xdp_check(c->xdp, c->listen, c->n_listen);
	return failed;
}

int main(int argc, char **argv)
{
	struct config conf;
	struct control *ctl;
	enum log_level lvl;
	struct rrl_conf rrl;
	unsigned failed;
	int rc;

	log_set_prog("dnsd");
	log_set_format(LOG_FMT_AUTO);
	config_init(&conf);
	rc = config_parse(&conf, argc - 1, argv + 1);
	if (rc == 1 || rc < 0) {
		if (rc < 0)
			fprintf(stderr, "dnsd: see dnsd --help\n");
		config_fini(&conf);
		return rc < 0 ? 1 : 0;
	}
	if (log_level_parse(conf.log_level, &lvl) < 0) {
		log_err("log-level: '%s' is not one of err, warn, info, debug",
			conf.log_level);
		config_fini(&conf);
		return 1;
	}
	log_set_level(lvl);
	{
		enum log_format fmt;

		if (log_format_parse(conf.log_format, &fmt) < 0) {
			log_err("log-format: '%s' is not one of text, json, journal, auto",
				conf.log_format);
			config_fini(&conf);
			return 1;
		}
		log_set_format(fmt);
	}
	if (!conf.threads)
		conf.threads = default_threads();

	ctl = control_new(&conf, &failed);
	if (rrl_conf_of(&conf, &rrl) < 0)
		failed++;
	failed += check_xdp(&conf);
	if (conf.check) {
		failed += control_check(ctl);
		control_free(ctl);
		if (failed)
			fprintf(stderr, "dnsd: check: %u problem(s)\n", failed);
		else
			printf("dnsd: check: configuration and %zu zone(s) OK\n",
			       conf.n_zone);
		config_fini(&conf);
		return failed ? 1 : 0;
	}
	if (failed)
		fatal("%u problem(s) in the configuration; not starting", failed);
	if (!conf.n_listen)
		fatal("no listen address (use --listen ADDR:PORT)");

	raise_nofile();
	control_start(ctl, &rrl);
	drop_privileges(conf.user);
	drop_capabilities();
	control_run(ctl);

	control_free(ctl);
	config_fini(&conf);
	log_info("stopped");
	return 0;
}
