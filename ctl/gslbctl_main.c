/* ctl/gslbctl_main.c - gslbctl: the operator's command-line tool for the
 * SQLite store (gslbctl(8)). Every write goes through
 * db/edit.h (validated, one transaction); explain runs policy/svc.h's
 * svc_select(), the code dnsd answers with. Single-threaded tool: may
 * allocate with xmalloc and exit on failure. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common/addr.h"
#include "common/clock.h"
#include "common/spell.h"
#include "common/xalloc.h"
#include "cluster/etcd.h"
#include "cluster/write.h"
#include "db/audit.h"
#include "db/diff.h"
#include "db/edit.h"
#include "db/export.h"
#include "db/damping.h"
#include "db/health_store.h"
#include "db/import.h"
#include "db/served.h"
#include "db/shift.h"
#include "db/store.h"
#include "db/svc_load.h"
#include "geo/geo.h"
#include "health/hstate.h"

#define GSLBCTL_VERSION "0.1"
/* The check interval of checks that set none, for the health view explain
 * builds; the view holds states and RTTs, which do not depend on it. */
#define CTL_CHECK_INTERVAL 10.0

/* ------------------------------------------------------------ usage */

struct cmd;
typedef int (*cmd_fn)(struct cmd *c);

struct optspec {
	const char *name;       /* without "--" */
	bool arg;               /* takes a value */
};

#define EP_OPTS                                                           \
	{ "weight", true }, { "priority", true }, { "region", true },    \
	{ "lat", true }, { "lon", true }, { "bias", true },              \
	{ "check", true }, { "check-interval", true },                   \
	{ "check-timeout", true }, { "check-rise", true },               \
	{ "check-fall", true }, { "check-expect", true },                \
	{ "check-body", true }, { "check-host", true },                  \
	{ "check-insecure", false }, { "admin", true },                  \
	{ "capacity", true }
#define SVC_OPTS                                                          \
	{ "policy", true }, { "ttl", true }, { "answers", true },         \
	{ "sticky", false }, { "no-sticky", false }, { "when-down", true }, \
	{ "fill", true }

static const char ep_help[] =
	"  --weight N          0..65535 (default 1; 0 = only when nothing\n"
	"                      with a positive weight is up)\n"
	"  --priority N        0..65535 (default 0; lower is preferred)\n"
	"  --region NAME       region label\n"
	"  --lat DEG --lon DEG position for geo/latency\n"
	"  --bias N            geo bias -99..99 (Route 53 geoproximity)\n"
	"  --admin up|down|auto  forced up, forced down, follow health\n"
	"  --check URL         tcp://HOST:PORT, http(s)://HOST[:PORT]/PATH,\n"
	"                      dns://HOST[:PORT]/NAME ('' removes the check)\n"
	"  --check-interval S --check-timeout S --check-rise N\n"
	"  --check-fall N --check-expect 200-399|RCODE --check-body TEXT\n"
	"  --check-host NAME --check-insecure (no TLS verification)\n"
	"  --capacity N        spill-over (geo): answers per second it takes\n"
	"                      when the service has a --fill, else a relative\n"
	"                      number (0 removes it)\n";

struct cmd {
	const char *w1, *w2;    /* subcommand words (w2 may be NULL) */
	int min_pos, max_pos;   /* positional arguments after the words */
	const struct optspec *opts;
	cmd_fn fn;              /* < 0: failed, err says why */
	const char *usage;
	const char *help;
	unsigned open_flags;    /* store_open flags (STORE_CREATE) */
	/* parsed */
	char **pos;
	int npos;
	const char **ov;        /* values by option index, NULL = not given */
	struct store *db;       /* opened on first use (db_of) */
};

static const char *db_path;
/* --etcd: the cluster the configuration lives in (NULL: the --db file). */
static struct etcd *etcd;
static const char *etcd_prefix = "/gslb/";
static bool json_out;
static bool quiet;              /* --quiet: writes print nothing */
static char err[1024];

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2),
                                                        noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("gslbctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* Exit status of a failure: 2 bad input or usage, 3 not found, 4 already
 * exists, 1 anything else. rc is a negative errno of db/. */
static int exit_code(int rc)
{
	return rc == -EINVAL || rc == -ERANGE ? 2 : rc == -ENOENT ? 3 :
	       rc == -EEXIST ? 4 : 1;
}

static void die_rc(int rc, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));
static void die_rc(int rc, const char *fmt, ...)
{
	va_list ap;

	fputs("gslbctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(exit_code(rc));
}

static void print_json(json_t *j);

/* The write context of this run: who writes, --force, --dry-run; after a
 * write, what it changed. */
static struct cfg_write wctx = { .source = "gslbctl" };

/* Prints what the last write changed (or, with --dry-run, would change):
 * one line per change, {"changes": [...]} with --json, "no change" when
 * nothing did; nothing with --quiet. */
static void report_write(void)
{
	char line[1024];

	if (quiet)
		return;
	if (json_out) {
		print_json(json_pack("{s:o, s:b, s:I}", "changes",
		                     cfg_plan_json(wctx.done), "dry_run",
		                     wctx.dry_run, "version",
		                     (json_int_t)wctx.version));
		return;
	}
	if (cfg_plan_size(wctx.done) == 0)
		puts(wctx.dry_run ? "no change would be made" : "no change");
	for (size_t i = 0; i < cfg_plan_size(wctx.done); i++) {
		cfg_plan_line(wctx.done, i, line, sizeof line);
		puts(line);
	}
}

static const char *opt(const struct cmd *c, const char *name)
{
	for (int i = 0; c->opts && c->opts[i].name; i++)
		if (strcmp(c->opts[i].name, name) == 0)
			return c->ov[i];
	return NULL;
}

static long long parse_ll(const char *name, const char *s)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (end == s || *end)
		die_rc(-EINVAL, "--%s: '%s' is not an integer", name, s);
	if (errno == ERANGE)
		die_rc(-EINVAL, "--%s: %s is out of range", name, s);
	return v;
}

static double parse_d(const char *name, const char *s)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || *end || !isfinite(v))
		die_rc(-EINVAL, "--%s: '%s' is not a number", name, s);
	return v;
}

/* The command's store, opened on first use (after its arguments were
 * checked) and closed by run(). */
static struct store *db_of(struct cmd *c)
{
	int rc;

	if (c->db)
		return c->db;
	if (!db_path)
		die_rc(-EINVAL, "--db FILE is required");
	rc = store_open(db_path, c->open_flags, &c->db, err, sizeof err);
	if (rc < 0)
		die_rc(rc, "%s", err);
	return c->db;
}

/* Exits with "COMMAND: err" and the status of rc (exit_code). */
static void die_cmd(const struct cmd *c, int rc) __attribute__((noreturn));
static void die_cmd(const struct cmd *c, int rc)
{
	die_rc(rc, "%s%s%s: %s", c->w1, c->w2 ? " " : "", c->w2 ? c->w2 : "",
	       err);
}

static void print_json(json_t *j)
{
	/* 15 significant digits: 40.7 prints as 40.7, not 40.700000000000003,
	 * and export -> import -> export stays byte-equal (a 15-digit decimal
	 * survives the trip through a double). */
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
	                        JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));

	if (!s)
		die("out of memory");
	puts(s);
	free(s);
	json_decref(j);
}

/* ---------------------------------------------- zones dnsd serves */

/* Services read outside the zones dnsd recorded in the store (db/served.h),
 * flagged on stderr: a warning, the write or plan goes on. */
#define OUTSIDE_LINES 20        /* named one per line; the rest counted */

struct outside {
	struct served *zones;   /* NULL: none known, nothing is flagged */
	char list[512];         /* the zones known, for the message */
	size_t n;               /* services flagged */
};

/* The zones recorded in c's store; a store that cannot say (an error)
 * flags nothing. */
static void outside_init(struct cmd *c, struct outside *o)
{
	char e[256];

	memset(o, 0, sizeof *o);
	if (served_load(db_of(c), &o->zones, e, sizeof e) < 0)
		return;
	if (served_count(o->zones) == 0) {
		served_free(o->zones);
		o->zones = NULL;
		return;
	}
	served_list(o->zones, o->list, sizeof o->list);
}

static void outside_check(struct outside *o, const char *name)
{
	if (!o->zones || !served_outside(o->zones, name))
		return;
	if (o->n++ < OUTSIDE_LINES)
		fprintf(stderr, "gslbctl: warning: service %s is under none of "
		        "the zones dnsd serves (%s): dnsd will not answer it\n",
		        name, o->list);
}

static void outside_fini(struct outside *o)
{
	if (o->n > OUTSIDE_LINES)
		fprintf(stderr, "gslbctl: warning: %zu more services are under "
		        "none of the zones dnsd serves (%zu in all)\n",
		        o->n - OUTSIDE_LINES, o->n);
	served_free(o->zones);
	o->zones = NULL;
}

/* ------------------------------------------------------------ commands */

static int cmd_init(struct cmd *c)
{
	db_of(c);
	if (etcd) {
		/* Nothing to create: writes create their keys. */
		if (!json_out)
			printf("etcd %s: prefix %s\n", etcd_current_url(etcd),
			       etcd_prefix);
		return 0;
	}
	if (!json_out)
		printf("%s: schema version %d\n", db_path,
		       STORE_SCHEMA_VERSION);
	return 0;
}

static void fill_service(const struct cmd *c, struct cfg_service *s)
{
	const char *v;

	memset(s, 0, sizeof *s);
	s->name = c->pos[0];
	s->policy = opt(c, "policy");
	s->sticky = opt(c, "sticky") ? 1 : opt(c, "no-sticky") ? 0 : -1;
	if (opt(c, "sticky") && opt(c, "no-sticky"))
		die_rc(-EINVAL, "--sticky and --no-sticky together");
	if ((v = opt(c, "ttl"))) {
		s->has_ttl = true;
		s->ttl = parse_ll("ttl", v);
	}
	if ((v = opt(c, "answers"))) {
		s->has_answers = true;
		s->answers = strcmp(v, "default") == 0 ? -1 :
		             parse_ll("answers", v);
		if (s->answers == -1 && strcmp(v, "default") != 0)
			die_rc(-EINVAL, "answers -1 outside 1..%d", SVC_MAX_ANSWERS);
	}
	s->when_down = opt(c, "when-down");
	if ((v = opt(c, "fill"))) {
		s->has_fill = true;
		s->fill = parse_d("fill", v);
	}
}

/* --if-missing: "already exists" is success (the store unchanged). */
static int if_missing(const struct cmd *c, int rc)
{
	if (rc != -EEXIST || !opt(c, "if-missing"))
		return rc;
	if (!quiet && !json_out)
		printf("exists: %s\n", err);
	else if (!quiet)
		print_json(json_pack("{s:[], s:s}", "changes", "exists", err));
	return 0;
}

static int cmd_service_add(struct cmd *c)
{
	struct cfg_service s;
	struct outside o;
	char canon[256];
	int rc;

	fill_service(c, &s);
	rc = if_missing(c, cfg_service_add(db_of(c), &s, err, sizeof err));
	if (rc == 0 && cfg_canon_name(s.name, canon, NULL, 0) == 0) {
		outside_init(c, &o);
		outside_check(&o, canon);
		outside_fini(&o);
	}
	return rc;
}

static int cmd_service_set(struct cmd *c)
{
	struct cfg_service s;

	fill_service(c, &s);
	return cfg_service_set(db_of(c), &s, err, sizeof err);
}

static int cmd_service_rm(struct cmd *c)
{
	return cfg_service_rm(db_of(c), c->pos[0], err, sizeof err);
}

static json_t *export_or_die(struct cmd *c, const char *name)
{
	json_t *doc = cfg_export(db_of(c), name, err, sizeof err);

	if (!doc)
		die_cmd(c, strstr(err, "not found") ? -ENOENT : -EIO);
	return doc;
}

static void print_answers(const json_t *a)
{
	if (json_is_null(a))
		printf("default");
	else
		printf("%lld", (long long)json_integer_value(a));
}

static int cmd_service_list(struct cmd *c)
{
	json_t *doc = export_or_die(c, c->npos ? c->pos[0] : NULL);
	json_t *svcs = json_object_get(doc, "services"), *v, *out;
	size_t i;

	out = json_array();
	json_array_foreach(svcs, i, v) {
		json_t *eps = json_object_get(v, "endpoints");

		if (!json_out) {
			printf("%s %s ttl %lld answers ",
			       json_string_value(json_object_get(v, "name")),
			       json_string_value(json_object_get(v, "policy")),
			       (long long)json_integer_value(
			               json_object_get(v, "ttl")));
			print_answers(json_object_get(v, "answers"));
			printf(" endpoints %zu\n", json_array_size(eps));
			continue;
		}
		json_array_append_new(out, json_pack(
			"{s:O, s:O, s:O, s:O, s:O, s:O, s:I}",
			"name", json_object_get(v, "name"),
			"policy", json_object_get(v, "policy"),
			"ttl", json_object_get(v, "ttl"),
			"answers", json_object_get(v, "answers"),
			"sticky", json_object_get(v, "sticky"),
			"when_down", json_object_get(v, "when_down"),
			"endpoints", (json_int_t)json_array_size(eps)));
	}
	if (json_out)
		print_json(out);
	else
		json_decref(out);
	json_decref(doc);
	return 0;
}

static void print_endpoint_text(const json_t *e)
{
	const json_t *ck = json_object_get(e, "check");
	const json_t *reg = json_object_get(e, "region");

	printf("  %s weight %lld priority %lld admin %s%s",
	       json_string_value(json_object_get(e, "target")),
	       (long long)json_integer_value(json_object_get(e, "weight")),
	       (long long)json_integer_value(json_object_get(e, "priority")),
	       json_string_value(json_object_get(e, "admin")),
	       json_is_true(json_object_get(e, "drained")) ? " drained" : "");
	if (json_is_string(reg))
		printf(" region %s", json_string_value(reg));
	if (json_is_number(json_object_get(e, "lat")))
		printf(" at %g,%g",
		       json_number_value(json_object_get(e, "lat")),
		       json_number_value(json_object_get(e, "lon")));
	if (json_number_value(json_object_get(e, "bias")) != 0)
		printf(" bias %g",
		       json_number_value(json_object_get(e, "bias")));
	if (json_is_object(ck))
		printf(" check %s",
		       json_string_value(json_object_get(ck, "url")));
	if (json_is_number(json_object_get(e, "capacity")))
		printf(" capacity %g",
		       json_number_value(json_object_get(e, "capacity")));
	putchar('\n');
}

/* "MATCH -> TARGET ..." of an exported rule, after prefix. */
static void print_rule_text(const char *prefix, const json_t *x)
{
	const json_t *t;
	size_t k;

	printf("%s%s ->", prefix, json_string_value(json_object_get(x, "match")));
	json_array_foreach(json_object_get(x, "targets"), k, t)
		printf(" %s", json_string_value(t));
	putchar('\n');
}

static int cmd_service_show(struct cmd *c)
{
	json_t *doc = export_or_die(c, c->pos[0]);
	json_t *v = json_array_get(json_object_get(doc, "services"), 0), *x;
	size_t i;

	if (json_out) {
		print_json(json_incref(v));
	} else {
		printf("%s policy %s ttl %lld answers ",
		       json_string_value(json_object_get(v, "name")),
		       json_string_value(json_object_get(v, "policy")),
		       (long long)json_integer_value(json_object_get(v, "ttl")));
		print_answers(json_object_get(v, "answers"));
		printf(" sticky %s when-down %s",
		       json_is_true(json_object_get(v, "sticky")) ? "yes" : "no",
		       json_string_value(json_object_get(v, "when_down")));
		if (json_is_number(json_object_get(v, "fill")))
			printf(" fill %g", json_number_value(
			       json_object_get(v, "fill")));
		putchar('\n');
		json_array_foreach(json_object_get(v, "endpoints"), i, x)
			print_endpoint_text(x);
		json_array_foreach(json_object_get(v, "rules"), i, x)
			print_rule_text("  rule ", x);
	}
	json_decref(doc);
	return 0;
}

/* The endpoint options that set one field of struct cfg_endpoint and its
 * has_* flag, in the order they are checked. */
#define EPF(o, k, h, v) \
	{ o, k, offsetof(struct cfg_endpoint, h), offsetof(struct cfg_endpoint, v) }
static const struct ep_field {
	const char *opt;
	char kind;              /* 'i' integer, 'd' number, 's' string */
	size_t has, val;        /* offsets of the flag and the value */
} ep_fields_first[] = {
	EPF("weight", 'i', has_weight, weight),
	EPF("priority", 'i', has_priority, priority),
	EPF("region", 's', has_region, region),
}, ep_fields_rest[] = {
	EPF("bias", 'd', has_bias, bias),
	EPF("check", 's', has_check, check_url),
	EPF("check-interval", 'd', has_interval, interval),
	EPF("check-timeout", 'd', has_timeout, timeout),
	EPF("check-rise", 'i', has_rise, rise),
	EPF("check-fall", 'i', has_fall, fall),
	EPF("check-expect", 's', has_expect, expect),
	EPF("check-body", 's', has_body, body),
	EPF("check-host", 's', has_host, host),
	EPF("capacity", 'd', has_capacity, capacity),
};
#undef EPF

static void set_ep_fields(const struct cmd *c, struct cfg_endpoint *e,
                          const struct ep_field *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *v = opt(c, f[i].opt);
		char *base = (char *)e;

		if (!v)
			continue;
		*(bool *)(base + f[i].has) = true;
		if (f[i].kind == 'i')
			*(long long *)(base + f[i].val) = parse_ll(f[i].opt, v);
		else if (f[i].kind == 'd')
			*(double *)(base + f[i].val) = parse_d(f[i].opt, v);
		else
			*(const char **)(base + f[i].val) = v;
	}
}

static void fill_endpoint(const struct cmd *c, struct cfg_endpoint *e)
{
	const char *lat = opt(c, "lat"), *lon = opt(c, "lon");

	memset(e, 0, sizeof *e);
	e->drained = -1;
	e->target = c->pos[1];
	set_ep_fields(c, e, ep_fields_first,
	              sizeof ep_fields_first / sizeof ep_fields_first[0]);
	if (!lat != !lon)
		die_rc(-EINVAL, "--lat and --lon go together");
	if (lat && (!*lat && !*lon)) {
		e->clear_loc = true;
	} else if (lat) {
		e->has_loc = true;
		e->lat = parse_d("lat", lat);
		e->lon = parse_d("lon", lon);
	}
	e->admin = opt(c, "admin");
	set_ep_fields(c, e, ep_fields_rest,
	              sizeof ep_fields_rest / sizeof ep_fields_rest[0]);
	if (opt(c, "check-insecure")) {
		e->has_tls_verify = true;
		e->tls_verify = false;
	}
}

static int cmd_endpoint_add(struct cmd *c)
{
	struct cfg_endpoint e;

	fill_endpoint(c, &e);
	return if_missing(c, cfg_endpoint_add(db_of(c), c->pos[0], &e, err,
	                                      sizeof err));
}

static int cmd_endpoint_set(struct cmd *c)
{
	struct cfg_endpoint e;
	bool given = false;

	for (int i = 0; !given && c->opts[i].name; i++)
		given = c->ov[i] != NULL;
	if (!given)
		die_rc(-EINVAL, "endpoint set: nothing to change: give at least "
		       "one option (--weight, --priority, --admin, --check, ...; "
		       "gslbctl endpoint set --help)");
	fill_endpoint(c, &e);
	return cfg_endpoint_set(db_of(c), c->pos[0], &e, err, sizeof err);
}

static int cmd_endpoint_drain(struct cmd *c)
{
	struct cfg_endpoint e = { .target = c->pos[1] };

	e.drained = strcmp(c->w2, "drain") == 0;
	return cfg_endpoint_set(db_of(c), c->pos[0], &e, err, sizeof err);
}

static int cmd_endpoint_rm(struct cmd *c)
{
	return cfg_endpoint_rm(db_of(c), c->pos[0], c->pos[1], err,
	                       sizeof err);
}

static int cmd_rule_add(struct cmd *c)
{
	return cfg_rule_add(db_of(c), c->pos[0], c->pos[1],
	                    (const char *const *)c->pos + 2,
	                    (size_t)c->npos - 2, err, sizeof err);
}

static int cmd_rule_rm(struct cmd *c)
{
	return cfg_rule_rm(db_of(c), c->pos[0], c->pos[1], err, sizeof err);
}

static int cmd_rule_list(struct cmd *c)
{
	json_t *doc = export_or_die(c, c->pos[0]);
	json_t *v = json_array_get(json_object_get(doc, "services"), 0);
	json_t *rules = json_object_get(v, "rules"), *x;
	size_t i;

	if (json_out) {
		print_json(json_incref(rules));
	} else {
		json_array_foreach(rules, i, x)
			print_rule_text("", x);
	}
	json_decref(doc);
	return 0;
}

static int cmd_flip(struct cmd *c)
{
	return cfg_flip(db_of(c), c->pos[0], c->pos[1], err, sizeof err);
}

static int cmd_shift(struct cmd *c)
{
	static const char *const acts[] = { "abort", "pause", "resume" };
	const char *act = NULL, *steps = opt(c, "steps"), *every = opt(c, "every");
	const char *rtt = opt(c, "max-rtt-ms");
	struct shift_info si;
	struct store *h;
	int rc;

	for (size_t i = 0; i < 3; i++) {
		if (!opt(c, acts[i]))
			continue;
		if (act)
			die("shift: --%s and --%s exclude each other", act,
			    acts[i]);
		act = acts[i];
	}
	if (act && (c->npos != 1 || steps || every || rtt))
		die("shift: --%s takes the SERVICE only", act);
	if (!act && (c->npos != 2 || !steps || !every))
		die("usage: gslbctl --db FILE %s", c->usage);
	h = db_of(c);
	if (act && strcmp(act, "abort") == 0)
		rc = shift_abort(h, c->pos[0], clock_unix(), err, sizeof err);
	else if (act && strcmp(act, "pause") == 0)
		rc = shift_pause(h, c->pos[0], clock_unix(), err, sizeof err);
	else if (act)
		rc = shift_resume(h, c->pos[0], clock_unix(), err, sizeof err);
	else
		rc = shift_start(h, c->pos[0], c->pos[1], steps,
		                 parse_d("every", every),
		                 rtt ? parse_d("max-rtt-ms", rtt) : 0,
		                 clock_unix(), err, sizeof err);
	if (rc < 0)
		return rc;
	if (shift_get(h, c->pos[0], &si, err, sizeof err) == 0) {
		if (json_out) {
			print_json(shift_json(&si, clock_unix()));
		} else {
			printf("shift %s to %s: stage %u of %u (%u%%), %s%s%s\n",
			       si.service, si.target, si.stage, si.n_steps,
			       shift_percent(&si), shift_state_name(si.state),
			       si.reason[0] ? ": " : "", si.reason);
		}
	}
	return 0;
}

static int cmd_damping(struct cmd *c)
{
	static const struct { const char *opt; size_t off; } f[] = {
		{ "penalty", offsetof(struct damp_conf, penalty) },
		{ "suppress", offsetof(struct damp_conf, suppress) },
		{ "reuse", offsetof(struct damp_conf, reuse) },
		{ "half-life", offsetof(struct damp_conf, half_life) },
		{ "max-suppress", offsetof(struct damp_conf, max_suppress) },
	};
	struct damp_conf dc;
	bool custom, change = false;
	int rc;

	if (opt(c, "on") && opt(c, "off"))
		die("damping: --on and --off exclude each other");
	if (opt(c, "reset")) {
		for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
			if (opt(c, f[i].opt))
				die("damping: --reset takes no thresholds");
		if ((rc = damping_reset(db_of(c), c->pos[0], err, sizeof err)) < 0)
			return rc;
	}
	if ((rc = damping_get(db_of(c), c->pos[0], &dc, &custom, err,
	                      sizeof err)) < 0)
		return rc;
	for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
		const char *v = opt(c, f[i].opt);

		if (v) {
			*(double *)((char *)&dc + f[i].off) = parse_d(f[i].opt, v);
			change = true;
		}
	}
	if (opt(c, "on") || opt(c, "off")) {
		dc.on = opt(c, "on") != NULL;
		change = true;
	}
	if (change && (rc = damping_set(db_of(c), c->pos[0], &dc, err,
	                                sizeof err)) < 0)
		return rc;
	if (change)
		custom = true;
	if (json_out)
		print_json(json_pack("{s:b, s:b, s:f, s:f, s:f, s:f, s:f}",
		                     "custom", custom, "on", dc.on,
		                     "penalty", dc.penalty,
		                     "suppress", dc.suppress, "reuse", dc.reuse,
		                     "half_life", dc.half_life,
		                     "max_suppress", dc.max_suppress));
	else
		printf("damping %s%s: penalty %g per change, suppress above %g, "
		       "reuse below %g, half-life %g s, max-suppress %g s%s\n",
		       dc.on ? "on" : "off", custom ? "" : " (defaults)",
		       dc.penalty, dc.suppress, dc.reuse, dc.half_life,
		       dc.max_suppress, "");
	return 0;
}

static int cmd_export(struct cmd *c)
{
	return cfg_export_stream(db_of(c), stdout, err, sizeof err);
}

/* The streamed import's report: text lines, or {"changes": [...]} with
 * --json written one change at a time (the bytes print_json would
 * give). */
struct import_report {
	size_t n;
	struct outside outside; /* the document's services outside */
};

static void import_service(void *arg, const char *name)
{
	struct import_report *r = arg;

	outside_check(&r->outside, name);
}

static void print_change(void *arg, const char *line, const json_t *c)
{
	struct import_report *r = arg;
	char *s;

	if (quiet)
		return;
	if (!json_out) {
		puts(line);
		r->n++;
		return;
	}
	s = json_dumps(c, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
	                  JSON_REAL_PRECISION(15));
	if (!s)
		die("out of memory");
	fputs(r->n++ ? ",\n    " : "{\n  \"changes\": [\n    ", stdout);
	for (const char *p = s; *p; p++) {
		putchar(*p);
		if (*p == '\n')
			fputs("    ", stdout);
	}
	free(s);
}

/* A progress line on stderr when it is a terminal. */
static void print_progress(void *arg, const struct cfg_import_progress *p)
{
	double mb = (double)p->bytes / 1e6;

	(void)arg;
	fprintf(stderr, "\r\033[Kimport: %zu services, %.1f", p->services, mb);
	if (p->total)
		fprintf(stderr, " of %.1f MB (%.0f%%)", (double)p->total / 1e6,
		        100.0 * (double)p->bytes / (double)p->total);
	else
		fprintf(stderr, " MB");
	fprintf(stderr, ", %.0f services/s, %zu changes%s",
	        p->elapsed > 0 ? (double)p->services / p->elapsed : 0.0,
	        p->changes, p->done ? "\n" : "");
	fflush(stderr);
}

/* import / import --dry-run / diff. A plan only reads: a store that does
 * not exist yet is compared as an empty one and is not created. The
 * document is read as a stream (db/import.h). */
static int import_or_plan(struct cmd *c, bool dry, const char *what)
{
	struct import_report rep = { 0 };
	struct cfg_import_out out = { print_change, NULL, &rep, import_service };
	struct cfg_import_result res;
	const char *path = c->pos[0];
	FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	char msg[sizeof err];
	int rc;

	if (!in)
		die_rc(errno == ENOENT ? -ENOENT : -EIO, "%s: %s: %s", what,
		       path, strerror(errno));
	if (!db_path && !c->db)
		die_rc(-EINVAL, "--db FILE is required");
	if (!c->db && dry && access(db_path, F_OK) < 0 && errno == ENOENT) {
		rc = store_open(":memory:", STORE_CREATE, &c->db, err,
		                sizeof err);
		if (rc < 0)
			die_rc(rc, "%s", err);
	}
	if (isatty(STDERR_FILENO))
		out.progress = print_progress;
	if (quiet)
		out.change = NULL;
	outside_init(c, &rep.outside);
	rc = cfg_import_stream(db_of(c), in, dry ? CFG_IMPORT_DRY_RUN : 0,
	                       &out, &res, err, sizeof err);
	outside_fini(&rep.outside);
	if (in != stdin)
		fclose(in);
	if (rc < 0) {
		/* "import: FILE: ..." for what is wrong with the document. */
		if (strncmp(err, "import: ", 8) == 0) {
			snprintf(msg, sizeof msg, "%s", err + 8);
			snprintf(err, sizeof err, "%.200s: %.800s",
			         strcmp(path, "-") ? path : "stdin", msg);
		}
		return rc;
	}
	if (json_out && !quiet)
		puts(rep.n ? "\n  ]\n}" : "{\n  \"changes\": []\n}");
	if (!dry && !quiet && !json_out && res.changes == 0)
		puts("no change");
	return 0;
}

static int cmd_import(struct cmd *c)
{
	bool dry = opt(c, "dry-run") != NULL || wctx.dry_run;

	return import_or_plan(c, dry, dry ? "import --dry-run" : "import");
}

static int cmd_history(struct cmd *c)
{
	struct store *h = db_of(c);
	const char *lim = opt(c, "limit");
	long long n = lim ? parse_ll("limit", lim) : 50, ver = 0;
	json_t *rows, *r;
	size_t i;

	if (n < 1 || n > 1000000)
		die_rc(-EINVAL, "history: --limit %lld outside 1..1000000", n);
	if (etcd)
		rows = cw_history(etcd, etcd_prefix, c->npos ? c->pos[0] : NULL,
		                  (int)n, &ver, err, sizeof err);
	else
		rows = cfg_history(h, c->npos ? c->pos[0] : NULL, (int)n, err,
		                   sizeof err);
	if (!rows)
		return -EINVAL;
	if (json_out) {
		print_json(json_pack("{s:I, s:o}", "version",
		                     (json_int_t)(etcd ? ver : cfg_store_version(h)),
		                     "history", rows));
		return 0;
	}
	json_array_foreach(rows, i, r) {
		time_t t = (time_t)json_real_value(json_object_get(r, "time"));
		const char *op = json_string_value(json_object_get(r, "op"));
		const char *key = json_string_value(json_object_get(r, "target"));
		json_t *o = json_object_get(r, "old"), *nv = json_object_get(r,
		                                                             "new");
		char ts[32], *os = NULL, *ns = NULL;
		struct tm tm;

		if (!key)
			key = json_string_value(json_object_get(r, "match"));
		gmtime_r(&t, &tm);
		strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
		printf("v%lld %s %s (%s) %c %s %s%s%s",
		       (long long)json_integer_value(json_object_get(r,
		                                                     "version")),
		       ts, json_string_value(json_object_get(r, "who")),
		       json_string_value(json_object_get(r, "source")),
		       strcmp(op, "add") == 0 ? '+' : strcmp(op, "remove") == 0 ?
		       '-' : '~', json_string_value(json_object_get(r, "kind")),
		       json_string_value(json_object_get(r, "service")),
		       key ? " " : "", key ? key : "");
		if (json_object_get(r, "field")) {
			/* 15 digits: the shortest form of every value
			 * gslbctl takes (50.11, not 50.109999999999999). */
			os = json_dumps(o, JSON_ENCODE_ANY |
			                JSON_REAL_PRECISION(15));
			ns = json_dumps(nv, JSON_ENCODE_ANY |
			                JSON_REAL_PRECISION(15));
			printf(" %s: %s -> %s", json_string_value(
			       json_object_get(r, "field")), os ? os : "null",
			       ns ? ns : "null");
		} else if (json_is_object(nv)) {
			/* A service an import added, with what came with
			 * it: "endpoints T ...; rule M -> T ...". */
			const json_t *x, *rl, *tg;
			size_t k, q;

			fputs(": endpoints", stdout);
			json_array_foreach(json_object_get(nv, "endpoints"), k, x)
				printf(" %s", json_string_value(x));
			json_array_foreach(json_object_get(nv, "rules"), k, rl) {
				printf("; rule %s ->", json_string_value(
				       json_object_get(rl, "match")));
				json_array_foreach(json_object_get(rl, "targets"),
				                   q, tg)
					printf(" %s", json_string_value(tg));
			}
		} else if (json_is_array(nv) || json_is_array(o)) {
			/* A rule added (its targets in new) or removed (in
			 * old): "+ rule SERVICE country:DE -> 192.0.2.2". */
			const json_t *tg;
			size_t k;

			fputs(" ->", stdout);
			json_array_foreach(json_is_array(nv) ? nv : o, k, tg)
				printf(" %s", json_string_value(tg));
		}
		putchar('\n');
		free(os);
		free(ns);
	}
	json_decref(rows);
	return 0;
}

static int cmd_diff(struct cmd *c)
{
	return import_or_plan(c, true, "diff");
}

/* ------------------------------------------------------ status, explain */

/* One line for a shift's status object (db/shift.h shift_json). */
static void print_shift(const json_t *sh)
{
	const json_t *next = json_object_get(sh, "next_step_in");
	const char *why = json_string_value(json_object_get(sh, "reason"));

	printf("  shift to %s: stage %lld of %lld (%lld%%), %s",
	       json_string_value(json_object_get(sh, "target")),
	       (long long)json_integer_value(json_object_get(sh, "stage")),
	       (long long)json_integer_value(json_object_get(sh, "stages")),
	       (long long)json_integer_value(json_object_get(sh, "percent")),
	       json_is_true(json_object_get(sh, "paused")) ? "paused" :
	       json_string_value(json_object_get(sh, "state")));
	if (json_is_number(next))
		printf(", next step in %.0f s", json_number_value(next));
	if (why && *why)
		printf(": %s", why);
	putchar('\n');
}

/* gslbctl --etcd status: the cluster's revision and each node's. */
static void print_cluster(const json_t *cl)
{
	json_t *n;
	size_t i;

	printf("etcd %s prefix %s: revision %lld, configuration revision "
	       "%lld, %lld services\n", etcd_current_url(etcd),
	       json_string_value(json_object_get(cl, "prefix")),
	       (long long)json_integer_value(json_object_get(cl,
	                                                     "cluster_revision")),
	       (long long)json_integer_value(json_object_get(cl,
	                                                     "config_revision")),
	       (long long)json_integer_value(json_object_get(cl, "services")));
	json_array_foreach(json_object_get(cl, "nodes"), i, n) {
		json_t *r = json_object_get(n, "config_revision");

		if (json_is_integer(r))
			printf("  node %s: configuration revision %lld (%s), "
			       "applied up to %lld\n",
			       json_string_value(json_object_get(n, "name")),
			       (long long)json_integer_value(r),
			       json_is_true(json_object_get(n, "current")) ?
			       "current" : "behind",
			       (long long)json_integer_value(json_object_get(n,
			                                                     "revision")));
		else
			printf("  node %s: no revision recorded\n",
			       json_string_value(json_object_get(n, "name")));
	}
	if (json_array_size(json_object_get(cl, "nodes")) == 0)
		puts("  no node registered");
}

/* Spill-over in status: per endpoint its capacity and the share of the
 * service's clients it is expected to take while its region spills (its
 * capacity's part of the capacity that is up), and the service's fill.
 * The measured shares are dnsd's (GET /v1/status, "spill"). */
static void status_spill(json_t *sj, const struct svc_service *v)
{
	double total = 0;
	json_t *e;
	size_t k;

	if (!v || !v->spill)
		return;
	json_object_set_new(sj, "fill", v->fill > 0 ? json_real(v->fill)
	                                            : json_null());
	for (int pass = 0; pass < 2; pass++) {
		json_array_foreach(json_object_get(sj, "endpoints"), k, e) {
			const char *t = json_string_value(json_object_get(e,
			                                  "target"));
			const char *hl = json_string_value(json_object_get(e,
			                                   "health"));
			const char *ad = json_string_value(json_object_get(e,
			                                   "admin"));
			double cap = 0;
			bool up;

			for (size_t j = 0; t && j < v->n_eps; j++)
				if (strcmp(v->eps[j].t.text, t) == 0)
					cap = v->eps[j].capacity;
			up = ad && strcmp(ad, "down") != 0 &&
			     (strcmp(ad, "up") == 0 ||
			      (!json_is_true(json_object_get(e, "drained")) &&
			       !(hl && strcmp(hl, "down") == 0)));
			if (pass == 0) {
				total += up ? cap : 0;
				continue;
			}
			json_object_set_new(e, "capacity", cap > 0 ?
			                    json_real(cap) : json_null());
			json_object_set_new(e, "expected", json_real(
			        up && total > 0 ? cap / total : 0));
		}
	}
}

/* The services (or only) outside the zones dnsd recorded, as problems:
 * dnsd skips them. */
static void status_outside(struct cmd *c, const struct svc_set *set,
                           const char *only, json_t *probs)
{
	struct outside o;
	char msg[1024];

	outside_init(c, &o);
	for (size_t i = 0; o.zones && i < set->n_pos; i++) {
		const struct svc_service *sv = svc_at(set, i);

		if (!sv || (only && strcmp(sv->name, only) != 0) ||
		    !served_outside(o.zones, sv->name))
			continue;
		snprintf(msg, sizeof msg, "service %s: under none of the zones "
		         "dnsd serves (%s): not answered", sv->name, o.list);
		json_array_append_new(probs, json_string(msg));
	}
	outside_fini(&o);
}

static int cmd_status(struct cmd *c)
{
	struct store *h = db_of(c);
	struct svc_set *set = NULL;
	json_t *svcs, *probs = json_array(), *doc, *shifts, *v;
	char canon[256];
	const char *only = NULL;
	size_t i;

	if (c->npos > 0) {
		if (cfg_canon_name(c->pos[0], canon, err, sizeof err) < 0)
			die("status: %s", err);
		only = canon;
	}
	if (svc_load(h, &set, err, sizeof err) < 0)
		die("status: %s", err);
	for (i = 0; i < set->n_problems; i++)
		json_array_append_new(probs, json_string(set->problems[i]));
	status_outside(c, set, only, probs);
	if (!(svcs = hstore_status(h, only, err, sizeof err)))
		die("status: db: %s: %s", db_path, err);
	if (only && json_array_size(svcs) == 0)
		die_rc(-ENOENT, "status: service %s not found", only);
	if (!(shifts = shift_json_all(h, clock_unix(), err, sizeof err)))
		die("status: %s", err);
	json_array_foreach(svcs, i, v) {
		json_t *sh = json_object_get(shifts, json_string_value(
		                             json_object_get(v, "name")));

		if (sh)
			json_object_set(v, "shift", sh);
		status_spill(v, svc_find_text(set, json_string_value(
		                              json_object_get(v, "name"))));
	}
	json_decref(shifts);
	doc = json_pack("{s:o, s:o}", "services", svcs, "problems", probs);
	if (etcd && !only) {
		json_t *cl = cw_cluster_status(etcd, etcd_prefix, err,
		                               sizeof err);

		if (!cl)
			die("status: %s", err);
		if (!json_out)
			print_cluster(cl);
		json_object_set_new(doc, "etcd", cl);
	}
	if (json_out) {
		print_json(doc);
	} else {
		json_t *e;
		size_t k;

		json_array_foreach(json_object_get(doc, "services"), i, v) {
			json_t *sh = json_object_get(v, "shift");

			printf("%s %s\n",
			       json_string_value(json_object_get(v, "name")),
			       json_string_value(json_object_get(v, "policy")));
			if (sh)
				print_shift(sh);
			json_array_foreach(json_object_get(v, "endpoints"), k,
			                   e) {
				json_t *a, *l;
				size_t m;

				printf("  %-40s %-7s admin %-4s%s weight %lld "
				       "priority %lld%s\n",
				       json_string_value(json_object_get(e,
				                                 "target")),
				       json_string_value(json_object_get(e,
				                                 "health")),
				       json_string_value(json_object_get(e,
				                                 "admin")),
				       json_is_true(json_object_get(e,
				                    "drained")) ? " drained" : "",
				       (long long)json_integer_value(
				               json_object_get(e, "weight")),
				       (long long)json_integer_value(
				               json_object_get(e, "priority")),
				       json_is_true(json_object_get(e, "stale"))
				               ? " (stale)" : "");
				if (json_is_number(json_object_get(e,
				                   "capacity")))
					printf("      capacity %g: %.0f%% of the "
					       "capacity up (expected share)\n",
					       json_number_value(json_object_get(
					               e, "capacity")),
					       100 * json_number_value(
					               json_object_get(e,
					                       "expected")));
				json_array_foreach(json_object_get(e, "agents"),
				                   m, a)
					printf("      agent %s (%s): %s %s\n",
					       json_string_value(json_object_get(
					               a, "agent")),
					       json_string_value(json_object_get(
					               a, "region")),
					       json_string_value(json_object_get(
					               a, "state")),
					       json_string_value(json_object_get(
					               a, "detail")));
				json_array_foreach(json_object_get(e,
				                   "latency"), m, l)
					printf("      rtt from %s: %.1f ms\n",
					       json_string_value(json_object_get(
					               l, "region")),
					       json_number_value(json_object_get(
					               l, "rtt_ms")));
			}
		}
		json_array_foreach(json_object_get(doc, "problems"), i, v)
			printf("problem: %s\n", json_string_value(v));
		json_decref(doc);
	}
	svc_set_free(set);
	return 0;
}

/* The client as dnsd's answer.c sees it: "ADDR" is a query from source
 * ADDR without ECS (known bits: the ECS caps, --ecs-max-v4/-v6, default 24
 * and 56); "ADDR/LEN" is an ECS option with source prefix LEN (capped the
 * same way; /0 means "do not locate me"). Host bits are masked. Sets *ecs0
 * for an ECS source prefix of 0. */
static void parse_client(const struct cmd *c, const char *s,
                         struct svc_client *cl, bool *v4, bool *ecs0)
{
	char buf[INET6_ADDRSTRLEN + 8], *slash;
	const char *m4 = opt(c, "ecs-max-v4"), *m6 = opt(c, "ecs-max-v6");
	long long max4 = m4 ? parse_ll("ecs-max-v4", m4) : 24;
	long long max6 = m6 ? parse_ll("ecs-max-v6", m6) : 56;
	struct in_addr a4;
	long long len = -1;

	if (max4 < 0 || max4 > 32 || max6 < 0 || max6 > 128)
		die_rc(-EINVAL, "explain: --ecs-max-v4 0..32, --ecs-max-v6 0..128");
	if (strlen(s) >= sizeof buf)
		die_rc(-EINVAL, "explain: --client '%s' is not an IPv4 or IPv6 address", s);
	strcpy(buf, s);
	if ((slash = strchr(buf, '/'))) {
		*slash = '\0';
		len = parse_ll("client prefix", slash + 1);
		if (len < 0)
			die_rc(-EINVAL, "explain: --client %s: negative prefix", s);
	}
	memset(&cl->addr, 0, sizeof cl->addr);
	if (inet_pton(AF_INET, buf, &a4) == 1) {
		*v4 = true;
		cl->addr.s6_addr[10] = cl->addr.s6_addr[11] = 0xff;
		memcpy(&cl->addr.s6_addr[12], &a4, 4);
		if (len > 32)
			die_rc(-EINVAL, "explain: --client %s: prefix longer than 32", s);
		cl->src_plen = 96 + (unsigned)(len < 0 || len > max4 ? max4
		                                                     : len);
	} else if (inet_pton(AF_INET6, buf, &cl->addr) == 1) {
		*v4 = false;
		if (len > 128)
			die_rc(-EINVAL, "explain: --client %s: prefix longer than 128", s);
		cl->src_plen = (unsigned)(len < 0 || len > max6 ? max6 : len);
	} else {
		die_rc(-EINVAL, "explain: --client '%s' is not an IPv4 or IPv6 address", s);
	}
	*ecs0 = len == 0;
	addr_mask(&cl->addr, cl->src_plen);
}

/* The client at loc (GeoIP's or a configured one). */
static void client_at(struct svc_client *cl, const struct geo_loc *loc)
{
	cl->has_loc = true;
	cl->lat = loc->lat;
	cl->lon = loc->lon;
	memcpy(cl->country, loc->country, 3);
	memcpy(cl->continent, loc->continent, 3);
}

static const char *mode_name(unsigned m)
{
	static const char *const n[] = { "normal", "open", "closed",
	                                 "fallback", "empty" };

	return m < 5 ? n[m] : "?";
}

static int cmd_explain(struct cmd *c)
{
	struct store *h = db_of(c);
	struct svc_set *set = NULL;
	struct hstate_view *hv = NULL;
	struct damp_state *dst = NULL;
	struct damp_conf *dconf = NULL, ddef;
	size_t n_dst = 0, n_dconf = 0;
	const struct svc_service *s;
	struct svc_client cl;
	struct svc_answer ans;
	struct svc_why why;
	struct geo_db *gdb = NULL;
	const char *client = opt(c, "client"), *v;
	json_t *answer = json_array(), *eps = json_array(), *loc, *doc;
	uint64_t rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	unsigned scope;
	bool v4, ecs0;

	if (!client)
		die_rc(-EINVAL, "explain: --client ADDR is required");
	memset(&cl, 0, sizeof cl);
	parse_client(c, client, &cl, &v4, &ecs0);
	/* As dnsd: GeoIP on the masked address (not for ECS /0), else the
	 * default location; the GeoIP prefix length is the geo scope. */
	if ((v = opt(c, "geoip"))) {
		const struct geo_loc *g = NULL;
		char gerr[512];

		if (geo_load(v, &gdb, gerr, sizeof gerr) < 0)
			die("explain: geoip: %s", gerr);
		if (!ecs0)
			g = geo_lookup(gdb, &cl.addr, &cl.geo_plen);
		if (g)
			client_at(&cl, g);
	}
	if (!cl.has_loc && (v = opt(c, "default-location"))) {
		struct geo_loc dl;

		if (geo_parse_location(v, &dl) < 0)
			die_rc(-EINVAL, "explain: --default-location '%s' is neither LAT,LON "
			    "nor a known country code", v);
		client_at(&cl, &dl);
	}
	if (!opt(c, "lat") != !opt(c, "lon"))
		die_rc(-EINVAL, "explain: --lat and --lon go together");
	if (opt(c, "lat")) {
		cl.has_loc = true;
		cl.lat = parse_d("lat", opt(c, "lat"));
		cl.lon = parse_d("lon", opt(c, "lon"));
		if (fabs(cl.lat) > 90 || fabs(cl.lon) > 180)
			die_rc(-EINVAL, "explain: --lat/--lon outside -90..90/-180..180");
	}
	if ((v = opt(c, "country")))
		snprintf(cl.country, sizeof cl.country, "%.2s", v);
	if ((v = opt(c, "continent")))
		snprintf(cl.continent, sizeof cl.continent, "%.2s", v);
	if (svc_load(h, &set, err, sizeof err) < 0)
		die("explain: %s", err);
	if (!(s = svc_find_text(set, c->pos[0]))) {
		char canon[256];

		if (cfg_canon_name(c->pos[0], canon, err, sizeof err) < 0)
			die("explain: %s", err);
		for (size_t i = 0; i < set->n_problems; i++)
			if (strstr(set->problems[i], canon))
				die("explain: %s is not served: %s", canon,
				    set->problems[i]);
		die_rc(-ENOENT, "explain: service %s not found", canon);
	}
	if (hstore_view(h, CTL_CHECK_INTERVAL, &hv, err, sizeof err) < 0)
		die("explain: %s", err);
	/* Flap damping as dnsd saved it: a suppressed endpoint is down. */
	if (damping_state_load(h, &dst, &n_dst, err, sizeof err) < 0 ||
	    damping_by_endpoint(h, &dconf, &n_dconf, err, sizeof err) < 0)
		die("explain: %s", err);
	damp_conf_default(&ddef);
	for (size_t i = 0; i < s->n_eps; i++) {
		uint32_t id = s->eps[i].id;

		if (id < n_dst && dst[id].suppressed &&
		    damp_reuse_at(&dst[id], id < n_dconf ? &dconf[id] : &ddef)
		    > clock_unix())
			hstate_view_set(hv, id, HSTATE_DOWN);
	}
	why.ep = xcalloc(s->n_eps ? s->n_eps : 1, sizeof *why.ep);
	why.cap = s->n_eps;
	svc_select(s, &cl, hv, &rng, 0, &ans, &why);
	for (size_t i = 0; i < s->n_eps; i++) {
		uint32_t id = s->eps[i].id;
		double reuse;
		time_t t;
		struct tm tm;
		char when[32];

		if (id >= n_dst || !dst[id].suppressed ||
		    (reuse = damp_reuse_at(&dst[id], id < n_dconf ? &dconf[id]
		                                                  : &ddef)) <=
		    clock_unix())
			continue;
		t = (time_t)reuse;
		gmtime_r(&t, &tm);
		strftime(when, sizeof when, "%H:%M:%S UTC", &tm);
		snprintf(why.ep[i].reason, sizeof why.ep[i].reason,
		         "suppressed by damping until %s (penalty %.0f)", when,
		         damp_penalty(&dst[id], &dconf[id], clock_unix()));
	}
	scope = ans.scope;
	if (v4)
		scope = scope > 96 ? scope - 96 : 0;
	for (unsigned i = 0; i < ans.n; i++)
		json_array_append_new(answer, json_string(ans.t[i]->text));
	for (size_t i = 0; i < s->n_eps; i++) {
		const struct svc_endpoint *e = &s->eps[i];
		const struct svc_why_ep *w = &why.ep[i];
		char reason[256];

		snprintf(reason, sizeof reason, "%s%s%s",
		         w->chosen ? "chosen" : "not chosen",
		         w->reason[0] ? ": " : "", w->reason);
		json_array_append_new(eps, json_pack(
			"{s:s, s:b, s:s, s:s, s:s, s:b, s:b, s:I, s:I, s:o, "
			"s:o}",
			"target", e->t.text, "chosen", w->chosen,
			"reason", reason,
			"health", hstate_state_name(w->health),
			"admin", svc_admin_name(e->admin),
			"drained", e->drained, "healthy", w->healthy,
			"weight", (json_int_t)e->weight,
			"priority", (json_int_t)e->priority,
			"distance_km", w->dist_km >= 0 ? json_real(w->dist_km)
			                               : json_null(),
			"rtt_ms", w->rtt_ms >= 0 ? json_real(w->rtt_ms)
			                         : json_null()));
	}
	loc = cl.has_loc ? json_pack("{s:f, s:f, s:s, s:s, s:i}", "lat",
	                             cl.lat, "lon", cl.lon, "country",
	                             cl.country, "continent", cl.continent,
	                             "geo_plen", (int)cl.geo_plen)
	                 : json_null();
	doc = json_pack("{s:s, s:s, s:s, s:o, s:b, s:s, s:i, s:i, s:s, s:o, "
	                "s:o}",
		"service", s->name, "client", client,
		"policy", svc_policy_name(s->policy), "answer", answer,
		"servfail", ans.servfail, "mode", mode_name(ans.mode),
		"scope", (int)scope, "scope128", (int)ans.scope,
		"note", why.note, "location", loc, "endpoints", eps);
	if (json_out) {
		print_json(doc);
	} else {
		json_t *e;
		size_t i;

		printf("service %s (%s, ttl %u, answers %u) for client %s\n",
		       s->name, svc_policy_name(s->policy), s->ttl, s->answers,
		       client);
		if (cl.has_loc)
			printf("client location %.4f,%.4f %s %s\n", cl.lat,
			       cl.lon, cl.country, cl.continent);
		else
			printf("client location unknown\n");
		if (why.note[0])
			printf("note: %s\n", why.note);
		printf("answer:");
		if (ans.servfail)
			printf(" SERVFAIL");
		json_array_foreach(answer, i, e)
			printf(" %s", json_string_value(e));
		printf(" (scope /%u)\n", scope);
		json_array_foreach(eps, i, e)
			printf("  %-40s %s\n",
			       json_string_value(json_object_get(e, "target")),
			       json_string_value(json_object_get(e, "reason")));
		json_decref(doc);
	}
	free(why.ep);
	hstate_view_free(hv);
	free(dst);
	free(dconf);
	geo_free(gdb);
	svc_set_free(set);
	return 0;
}

/* ------------------------------------------------------------ dispatch */

static const struct optspec no_opts[] = { { NULL, false } };
static const struct optspec damping_opts[] = {
	{ "penalty", true }, { "suppress", true }, { "reuse", true },
	{ "half-life", true }, { "max-suppress", true }, { "on", false },
	{ "off", false }, { "reset", false }, { NULL, false }
};
static const struct optspec shift_opts[] = {
	{ "steps", true }, { "every", true }, { "max-rtt-ms", true },
	{ "abort", false }, { "pause", false }, { "resume", false },
	{ NULL, false }
};
static const struct optspec svc_opts[] = { SVC_OPTS, { NULL, false } };
static const struct optspec ep_opts[] = { EP_OPTS, { NULL, false } };
static const struct optspec import_opts[] = { { "dry-run", false },
	{ NULL, false } };
static const struct optspec history_opts[] = { { "limit", true },
	{ NULL, false } };
static const struct optspec svc_add_opts[] = { SVC_OPTS,
	{ "if-missing", false }, { NULL, false } };
static const struct optspec ep_add_opts[] = { EP_OPTS,
	{ "if-missing", false }, { NULL, false } };
static const struct optspec explain_opts[] = {
	{ "client", true }, { "geoip", true }, { "lat", true },
	{ "lon", true }, { "country", true }, { "continent", true },
	{ "default-location", true }, { "ecs-max-v4", true },
	{ "ecs-max-v6", true },
	{ NULL, false }
};

static struct cmd cmds[] = {
	{ "init", NULL, 0, 0, no_opts, cmd_init, "init",
	  "Creates the store with the current schema (or migrates it).\n",
	  STORE_CREATE, NULL, 0, NULL, NULL },
	{ "service", "add", 1, 1, svc_add_opts, cmd_service_add,
	  "service add NAME --policy failover|weighted|geo|latency|all|"
	  "roundrobin [--ttl S] [--answers N] [--sticky] "
	  "[--when-down open|closed|TARGET] [--fill F] [--if-missing]",
	  "Adds a balanced name (trailing dot optional). --ttl default 30;\n"
	  "--answers default 1 (8 for all, every healthy one for roundrobin);\n"
	  "--sticky (weighted): a client subnet keeps its answer;\n"
	  "--when-down: open (default), closed (SERVFAIL) or a TARGET;\n"
	  "--fill F (geo, 0 < F <= 1): endpoint capacities are answers per\n"
	  "second and clients spill over from an endpoint past F of its\n"
	  "capacity (0 removes it).\n"
	  "--if-missing: a service of that name already there is success.\n", 0, NULL, 0, NULL, NULL },
	{ "service", "set", 1, 1, svc_opts, cmd_service_set,
	  "service set NAME [--policy P] [--ttl S] [--answers N|default] "
	  "[--sticky|--no-sticky] [--when-down open|closed|TARGET] [--fill F]",
	  "Changes the given settings of a service.\n", 0, NULL, 0, NULL, NULL },
	{ "service", "list", 0, 1, no_opts, cmd_service_list,
	  "service list [NAME] [--json]", "Lists services (or just NAME).\n", 0, NULL, 0, NULL, NULL },
	{ "service", "show", 1, 1, no_opts, cmd_service_show,
	  "service show NAME [--json]",
	  "Shows a service with its endpoints and rules.\n", 0, NULL, 0, NULL, NULL },
	{ "service", "rm", 1, 1, no_opts, cmd_service_rm,
	  "service rm NAME --force",
	  "Removes a service, its endpoints and rules (its name stops\n"
	  "answering: needs --force).\n", 0, NULL, 0, NULL, NULL },
	{ "endpoint", "add", 2, 2, ep_add_opts, cmd_endpoint_add,
	  "endpoint add SERVICE TARGET [options] [--if-missing]",
	  "Adds an endpoint. TARGET: IPv4, IPv6, or a name ending in '.'\n"
	  "(a CNAME answer). --if-missing: one already there is success.\n", 0, NULL, 0, NULL, NULL },
	{ "endpoint", "set", 2, 2, ep_opts, cmd_endpoint_set,
	  "endpoint set SERVICE TARGET [options]",
	  "Changes the given settings of an endpoint.\n", 0, NULL, 0, NULL, NULL },
	{ "endpoint", "drain", 2, 2, no_opts, cmd_endpoint_drain,
	  "endpoint drain SERVICE TARGET",
	  "Takes an endpoint out of rotation (answered only when the service\n"
	  "fails open). The last one in rotation needs --force.\n", 0, NULL, 0, NULL, NULL },
	{ "endpoint", "undrain", 2, 2, no_opts, cmd_endpoint_drain,
	  "endpoint undrain SERVICE TARGET", "Puts it back in rotation.\n", 0, NULL, 0, NULL, NULL },
	{ "endpoint", "rm", 2, 2, no_opts, cmd_endpoint_rm,
	  "endpoint rm SERVICE TARGET", "Removes an endpoint (--force when\n"
	  "rules name it or it is the last in rotation).\n", 0, NULL, 0, NULL, NULL },
	{ "rule", "add", 3, 3 + SVC_MAX_ENDPOINTS, no_opts, cmd_rule_add,
	  "rule add SERVICE CIDR|country:CC|continent:CC TARGET [TARGET ...]",
	  "Clients matching the rule are answered from these members only\n"
	  "(most specific rule first: longest CIDR, country, continent).\n", 0, NULL, 0, NULL, NULL },
	{ "rule", "list", 1, 1, no_opts, cmd_rule_list,
	  "rule list SERVICE [--json]", "Lists a service's rules.\n", 0, NULL, 0, NULL, NULL },
	{ "rule", "rm", 2, 2, no_opts, cmd_rule_rm,
	  "rule rm SERVICE CIDR|country:CC|continent:CC", "Removes a rule.\n", 0, NULL, 0, NULL, NULL },
	{ "flip", NULL, 2, 2, no_opts, cmd_flip, "flip SERVICE TARGET",
	  "Makes TARGET the preferred endpoint: a priority strictly lower\n"
	  "than every other endpoint's, the others keeping their order.\n", 0, NULL, 0, NULL, NULL },
	{ "shift", NULL, 1, 2, shift_opts, cmd_shift,
	  "shift SERVICE TARGET --steps P1,P2,...,100 --every SECONDS "
	  "[--max-rtt-ms MS] | shift SERVICE --abort|--pause|--resume",
	  "Moves a failover or weighted service's answers to TARGET in\n"
	  "stages: during stage k, P_k percent of the clients (by a hash of\n"
	  "their subnet; a client that moved stays moved) get TARGET. dnsd\n"
	  "runs it from the store: stage 1 begins now, each next one --every\n"
	  "seconds later; after the last (100) TARGET is preferred as after\n"
	  "flip. If TARGET goes down by quorum (or its mean RTT from the\n"
	  "probe regions exceeds --max-rtt-ms), dnsd rolls the shift back to\n"
	  "0 percent and stops it. --abort returns to the state before the\n"
	  "shift; --pause stops the clock, --resume lets it run on.\n", 0, NULL, 0, NULL, NULL },
	{ "damping", NULL, 1, 1, damping_opts, cmd_damping,
	  "damping SERVICE [--penalty N] [--suppress N] [--reuse N] "
	  "[--half-life S] [--max-suppress S] [--on|--off] [--reset]",
	  "Flap damping thresholds of a service's endpoints (the BGP model):\n"
	  "each up/down change adds --penalty; the penalty halves every\n"
	  "--half-life seconds; above --suppress the endpoint is kept out of\n"
	  "the answers until it decays below --reuse (at most --max-suppress\n"
	  "seconds after the last change). --off counts without suppressing;\n"
	  "--reset returns to the defaults (1000, 2500, 800, 30 s, 300 s).\n"
	  "Prints the thresholds in force.\n", 0, NULL, 0, NULL, NULL },
	{ "status", NULL, 0, 1, no_opts, cmd_status, "status [SERVICE] [--json]",
	  "Health, admin state, weights, priorities, agents and RTTs, and\n"
	  "the rows dnsd skips as invalid (problems).\n", 0, NULL, 0, NULL, NULL },
	{ "explain", NULL, 1, 1, explain_opts, cmd_explain,
	  "explain SERVICE --client ADDR[/LEN] [--geoip FILE] "
	  "[--default-location LAT,LON|CC] [--ecs-max-v4 N] [--ecs-max-v6 N] "
	  "[--lat DEG --lon DEG] [--country CC] [--continent CC] [--json]",
	  "Why each endpoint is or is not chosen for that client, computed\n"
	  "by the code dnsd answers with, from the health dnsd stored.\n"
	  "ADDR: a query from that source without ECS; ADDR/LEN: with ECS\n"
	  "source prefix LEN. Give the --geoip, --default-location and\n"
	  "--ecs-max-* dnsd runs with to get its exact answer; --lat/--lon,\n"
	  "--country, --continent override the client's location.\n", 0, NULL, 0, NULL, NULL },
	{ "export", NULL, 0, 0, no_opts, cmd_export, "export",
	  "Prints the whole configuration as JSON.\n", 0, NULL, 0, NULL, NULL },
	{ "import", NULL, 1, 1, import_opts, cmd_import,
	  "import FILE|- [--dry-run] [--force]",
	  "Replaces the whole configuration with FILE's (one transaction;\n"
	  "creates the store if missing). Only what differs is written: an\n"
	  "endpoint is (service, target) and keeps its id, health and\n"
	  "history. Prints each change applied: '+' added, '-' removed, '~'\n"
	  "changed (FIELD: OLD -> NEW). --dry-run prints them and changes\n"
	  "nothing. Removing a service needs --force.\n", STORE_CREATE, NULL,
	  0, NULL, NULL },
	{ "diff", NULL, 1, 1, no_opts, cmd_diff, "diff FILE|- [--json]",
	  "What 'import FILE' would change, as import --dry-run.\n", 0, NULL,
	  0, NULL, NULL },
	{ "history", NULL, 0, 1, history_opts, cmd_history,
	  "history [SERVICE] [--limit N] [--json]",
	  "The latest configuration changes (default 50), oldest first: the\n"
	  "store version each made, when, who (uid or API credential), from\n"
	  "where (gslbctl, api, import) and what (FIELD: OLD -> NEW).\n", 0,
	  NULL, 0, NULL, NULL },
};
#define NCMDS (sizeof cmds / sizeof cmds[0])

/* --etcd: a command runs on a scratch store filled from etcd, maybe more
 * than once (after a conflict); what it prints is kept here and shown once
 * etcd has committed. */
static FILE *cap;
static int cap_saved = -1;

static void capture_begin(void)
{
	fflush(stdout);
	if (!cap) {
		if (!(cap = tmpfile()) || (cap_saved = dup(STDOUT_FILENO)) < 0)
			die("temporary file: %s", strerror(errno));
	}
	rewind(cap);
	if (ftruncate(fileno(cap), 0) < 0 ||
	    dup2(fileno(cap), STDOUT_FILENO) < 0)
		die("temporary file: %s", strerror(errno));
}

static void capture_end(void)
{
	fflush(stdout);
	if (dup2(cap_saved, STDOUT_FILENO) < 0)
		die("stdout: %s", strerror(errno));
}

static void capture_show(void)
{
	char buf[8192];
	size_t n;

	if (!cap)
		return;
	rewind(cap);
	while ((n = fread(buf, 1, sizeof buf, cap)) > 0)
		fwrite(buf, 1, n, stdout);
	fclose(cap);
	close(cap_saved);
	cap = NULL;
}

static int etcd_attempt(struct store *scratch, void *arg, char *e,
                        size_t elen)
{
	struct cmd *c = arg;
	int rc;

	c->db = scratch;
	capture_begin();
	rc = c->fn(c);
	capture_end();
	c->db = NULL;
	if (rc < 0)
		snprintf(e, elen, "%s", err);
	return rc;
}

/* Runs c against etcd (cluster/write.h): exits on failure. */
static void run_etcd(struct cmd *c)
{
	struct cw_result res;
	char ebuf[sizeof err];
	int rc;

	/* A document on stdin is read once but may be needed by every
	 * attempt: keep it in an unlinked temporary file, reopened by each
	 * through /dev/fd. */
	if ((c->fn == cmd_import || c->fn == cmd_diff) &&
	    strcmp(c->pos[0], "-") == 0) {
		static char fdpath[32];
		char tmpl[] = "/tmp/gslbctl-stdin-XXXXXX", buf[8192];
		int fd = mkstemp(tmpl);
		size_t n;

		if (fd < 0 || unlink(tmpl) < 0)
			die("temporary file: %s", strerror(errno));
		while ((n = fread(buf, 1, sizeof buf, stdin)) > 0)
			if (write(fd, buf, n) != (ssize_t)n)
				die("temporary file: %s", strerror(errno));
		snprintf(fdpath, sizeof fdpath, "/dev/fd/%d", fd);
		c->pos[0] = fdpath;
	}
	rc = cw_run(etcd, etcd_prefix, c->fn == cmd_import ? CW_WHOLE : 0,
	            etcd_attempt, c, &res, ebuf, sizeof ebuf);
	if (rc < 0) {
		snprintf(err, sizeof err, "%s", ebuf);
		die_cmd(c, rc);
	}
	capture_show();
	wctx.version = res.revision;
	if (res.txns > 1)
		fprintf(stderr, "gslbctl: %zu services committed in %u etcd "
		        "transactions (not atomic: etcd's --max-txn-ops and "
		        "--max-request-bytes bound one)\n", res.services,
		        res.txns);
}

/* --etcd URL[,URL...]: the client, or exit 2. */
static struct etcd *etcd_open(const char *list)
{
	char *copy = xstrdup(list), *save = NULL;
	const char *urls[32];
	struct etcd_config cfg = { .urls = urls, .timeout_ms = 3000 };
	struct etcd *e;

	for (char *u = strtok_r(copy, ",", &save); u;
	     u = strtok_r(NULL, ",", &save)) {
		if (cfg.n_urls == 32)
			die_rc(-EINVAL, "--etcd: more than 32 URLs");
		urls[cfg.n_urls++] = u;
	}
	if (cfg.n_urls == 0)
		die_rc(-EINVAL, "--etcd: give URL[,URL...] "
		       "(http://127.0.0.1:2379)");
	cfg.ca_file = getenv("GSLB_ETCD_CA");
	cfg.cert_file = getenv("GSLB_ETCD_CERT");
	cfg.key_file = getenv("GSLB_ETCD_KEY");
	e = etcd_new(&cfg, err, sizeof err);
	free(copy);
	if (!e)
		die_rc(-EINVAL, "--etcd: %s", err);
	return e;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: gslbctl --db FILE [--json] COMMAND ...\n"
	        "       gslbctl --etcd URL[,URL...] [--etcd-prefix PREFIX] "
	        "[--json] COMMAND ...\n"
	        "Commands:\n");
	for (size_t i = 0; i < NCMDS; i++)
		fprintf(f, "  %s\n", cmds[i].usage);
	fprintf(f, "Writes print what they changed ('+' added, '-' removed, "
	        "'~' FIELD: OLD -> NEW).\n"
	        "Global options: --json, --quiet (writes print nothing), "
	        "--dry-run (plan a write,\nchange nothing), --force (allow "
	        "a write that takes a service down).\n"
	        "--etcd (or GSLB_ETCD): the configuration in etcd under "
	        "PREFIX (default /gslb/);\na write exits 0 only once etcd "
	        "committed it.\n"
	        "gslbctl COMMAND --help for details. Exit status 0 on "
	        "success, 2 usage or bad value,\n3 not found, 4 already "
	        "exists, 1 any other failure (one-line reason on stderr).\n");
}

static void cmd_usage(const struct cmd *c)
{
	printf("usage: gslbctl --db FILE %s\n%s", c->usage, c->help);
	if (c->opts == ep_opts || c->opts == ep_add_opts)
		fputs(ep_help, stdout);
}

int main(int argc, char **argv)
{
	char **words = xcalloc((size_t)argc + 1, sizeof *words);
	int nw = 0, j;
	bool help = false;
	struct cmd *c = NULL;

	const char *etcd_urls = getenv("GSLB_ETCD");
	bool db_given = false;

	db_path = getenv("GSLB_DB");
	if (getenv("GSLB_ETCD_PREFIX"))
		etcd_prefix = getenv("GSLB_ETCD_PREFIX");
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--db") == 0) {
			if (i + 1 >= argc)
				die_rc(-EINVAL, "--db needs a FILE");
			db_path = argv[++i];
			db_given = true;
		} else if (strncmp(argv[i], "--db=", 5) == 0) {
			db_path = argv[i] + 5;
			db_given = true;
		} else if (strcmp(argv[i], "--etcd") == 0) {
			if (i + 1 >= argc)
				die_rc(-EINVAL, "--etcd needs URL[,URL...]");
			etcd_urls = argv[++i];
		} else if (strncmp(argv[i], "--etcd=", 7) == 0) {
			etcd_urls = argv[i] + 7;
		} else if (strcmp(argv[i], "--etcd-prefix") == 0) {
			if (i + 1 >= argc)
				die_rc(-EINVAL, "--etcd-prefix needs a PREFIX");
			etcd_prefix = argv[++i];
		} else if (strncmp(argv[i], "--etcd-prefix=", 14) == 0) {
			etcd_prefix = argv[i] + 14;
		} else if (strcmp(argv[i], "--json") == 0) {
			json_out = true;
		} else if (strcmp(argv[i], "--quiet") == 0 ||
		           strcmp(argv[i], "-q") == 0) {
			quiet = true;
		} else if (strcmp(argv[i], "--force") == 0) {
			wctx.force = true;
		} else if (strcmp(argv[i], "--dry-run") == 0) {
			wctx.dry_run = true;
		} else if (strcmp(argv[i], "--help") == 0 ||
		           strcmp(argv[i], "-h") == 0) {
			help = true;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("gslbctl %s (schema %d)\n", GSLBCTL_VERSION,
			       STORE_SCHEMA_VERSION);
			free(words);
			return 0;
		} else {
			words[nw++] = argv[i];
		}
	}
	if (nw == 0) {
		usage(help ? stdout : stderr);
		free(words);
		return help ? 0 : 1;
	}
	for (size_t i = 0; i < NCMDS && !c; i++) {
		if (strcmp(cmds[i].w1, words[0]) != 0)
			continue;
		if (!cmds[i].w2 || (nw > 1 && strcmp(cmds[i].w2, words[1]) == 0))
			c = &cmds[i];
	}
	if (!c) {
		bool known = false;

		for (size_t i = 0; i < NCMDS; i++)
			known |= strcmp(cmds[i].w1, words[0]) == 0;
		if (known && help) {
			for (size_t i = 0; i < NCMDS; i++)
				if (strcmp(cmds[i].w1, words[0]) == 0)
					printf("usage: gslbctl --db FILE %s\n",
					       cmds[i].usage);
			free(words);
			return 0;
		}
		if (known) {
			const char *subs[NCMDS], *near;

			for (size_t i = 0; i < NCMDS; i++)
				subs[i] = strcmp(cmds[i].w1, words[0]) == 0 ?
				          cmds[i].w2 : NULL;
			near = nw > 1 ? spell_nearest(words[1], subs, NCMDS) : NULL;
			die_rc(-EINVAL, "%s: unknown or missing subcommand "
			       "'%s'%s%s%s (gslbctl %s --help)", words[0],
			       nw > 1 ? words[1] : "", near ? "; did you mean '" :
			       "", near ? near : "", near ? "'?" : "", words[0]);
		}
		{
			const char *w1s[NCMDS], *near;

			for (size_t i = 0; i < NCMDS; i++)
				w1s[i] = cmds[i].w1;
			near = spell_nearest(words[0], w1s, NCMDS);
			die_rc(-EINVAL, "unknown command '%s'%s%s%s (gslbctl "
			       "--help)", words[0], near ? "; did you mean '" : "",
			       near ? near : "", near ? "'?" : "");
		}
	}
	if (help) {
		cmd_usage(c);
		free(words);
		return 0;
	}
	/* Options and positional arguments after the subcommand words. */
	c->pos = xcalloc((size_t)nw + 1, sizeof *c->pos);
	for (j = 0; c->opts[j].name; j++)
		;
	c->ov = xcalloc((size_t)j + 1, sizeof *c->ov);
	for (int i = c->w2 ? 2 : 1; i < nw; i++) {
		const char *a = words[i], *eq;
		size_t len;
		int k;

		if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
			c->pos[c->npos++] = words[i];
			continue;
		}
		a += 2;
		eq = strchr(a, '=');
		len = eq ? (size_t)(eq - a) : strlen(a);
		for (k = 0; c->opts[k].name; k++)
			if (strlen(c->opts[k].name) == len &&
			    strncmp(c->opts[k].name, a, len) == 0)
				break;
		if (!c->opts[k].name) {
			const char *names[64], *near;
			char bad[64];

			for (k = 0; c->opts[k].name && k < 60; k++)
				names[k] = c->opts[k].name;
			names[k++] = "json";
			names[k++] = "force";
			names[k++] = "dry-run";
			names[k++] = "quiet";
			snprintf(bad, sizeof bad, "%.*s", (int)len, a);
			near = spell_nearest(bad, names, (size_t)k);
			die_rc(-EINVAL, "%s%s%s: unknown option --%s%s%s%s",
			       c->w1, c->w2 ? " " : "", c->w2 ? c->w2 : "", bad,
			       near ? "; did you mean --" : "", near ? near : "",
			       near ? "?" : "");
		}
		if (c->ov[k])
			die_rc(-EINVAL, "--%s given twice", c->opts[k].name);
		if (!c->opts[k].arg) {
			if (eq)
				die_rc(-EINVAL, "--%s takes no value", c->opts[k].name);
			c->ov[k] = "";
		} else if (eq) {
			c->ov[k] = eq + 1;
		} else if (i + 1 < nw) {
			c->ov[k] = words[++i];
		} else {
			die_rc(-EINVAL, "--%s needs a value", c->opts[k].name);
		}
	}
	if (c->npos < c->min_pos || c->npos > c->max_pos)
		die_rc(-EINVAL, "usage: gslbctl --db FILE %s", c->usage);
	/* The one runner: every command's failure is "COMMAND: why". */
	cfg_write_use(&wctx);
	if (etcd_urls && *etcd_urls) {
		if (db_given)
			die_rc(-EINVAL, "--db and --etcd: give one (the "
			       "configuration is in etcd or in the file)");
		if (!*etcd_prefix || etcd_prefix[strlen(etcd_prefix) - 1] != '/')
			die_rc(-EINVAL, "--etcd-prefix '%s': must end with '/'",
			       etcd_prefix);
		db_path = "etcd";
		etcd = etcd_open(etcd_urls);
		run_etcd(c);
		j = 0;
	} else {
		j = c->fn(c);
	}
	if (j < 0)
		die_cmd(c, j);
	if (wctx.done)
		report_write();
	cfg_write_done(&wctx);
	store_close(c->db);
	etcd_free(etcd);
	free(c->pos);
	free(c->ov);
	free(words);
	return 0;
}
