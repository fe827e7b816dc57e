/* ctl/gslbctl_main.c - gslbctl: the operator's command-line tool for the
 * SQLite store (CONTRACT.md section gslbctl). Every write goes through
 * db/edit.h (validated, one transaction); explain runs policy/svc.h's
 * svc_select(), the code dnsd answers with. Single-threaded tool: may
 * allocate with xmalloc and exit on failure. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common/clock.h"
#include "common/xalloc.h"
#include "db/edit.h"
#include "db/export.h"
#include "db/shift.h"
#include "db/store.h"
#include "db/svc_load.h"
#include "geo/geo.h"
#include "health/hstate.h"

#define GSLBCTL_VERSION "0.1"

/* ------------------------------------------------------------ usage */

struct cmd;
typedef int (*cmd_fn)(const struct cmd *c);

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
	{ "check-insecure", false }, { "admin", true }
#define SVC_OPTS                                                          \
	{ "policy", true }, { "ttl", true }, { "answers", true },         \
	{ "sticky", false }, { "no-sticky", false }, { "when-down", true }

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
	"  --check-host NAME --check-insecure (no TLS verification)\n";

struct cmd {
	const char *w1, *w2;    /* subcommand words (w2 may be NULL) */
	int min_pos, max_pos;   /* positional arguments after the words */
	const struct optspec *opts;
	cmd_fn fn;
	const char *usage;
	const char *help;
	/* parsed */
	char **pos;
	int npos;
	const char **ov;        /* values by option index, NULL = not given */
};

static const char *db_path;
static bool json_out;
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
		die("--%s: '%s' is not an integer", name, s);
	if (errno == ERANGE)
		die("--%s: %s is out of range", name, s);
	return v;
}

static double parse_d(const char *name, const char *s)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || *end || !isfinite(v))
		die("--%s: '%s' is not a number", name, s);
	return v;
}

static sqlite3 *open_db(unsigned flags)
{
	sqlite3 *h;

	if (!db_path)
		die("--db FILE is required");
	if (store_open(db_path, flags, &h, err, sizeof err) < 0)
		die("%s", err);
	return h;
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

/* ------------------------------------------------------------ commands */

static int cmd_init(const struct cmd *c)
{
	sqlite3 *h = open_db(STORE_CREATE);

	(void)c;
	store_close(h);
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
		die("--sticky and --no-sticky together");
	if ((v = opt(c, "ttl"))) {
		s->has_ttl = true;
		s->ttl = parse_ll("ttl", v);
	}
	if ((v = opt(c, "answers"))) {
		s->has_answers = true;
		s->answers = strcmp(v, "default") == 0 ? -1 :
		             parse_ll("answers", v);
		if (s->answers == -1 && strcmp(v, "default") != 0)
			die("answers -1 outside 1..%d", SVC_MAX_ANSWERS);
	}
	s->when_down = opt(c, "when-down");
}

static int cmd_service_add(const struct cmd *c)
{
	struct cfg_service s;
	sqlite3 *h;

	fill_service(c, &s);
	h = open_db(0);
	if (cfg_service_add(h, &s, err, sizeof err) < 0)
		die("service add: %s", err);
	store_close(h);
	return 0;
}

static int cmd_service_set(const struct cmd *c)
{
	struct cfg_service s;
	sqlite3 *h;

	fill_service(c, &s);
	h = open_db(0);
	if (cfg_service_set(h, &s, err, sizeof err) < 0)
		die("service set: %s", err);
	store_close(h);
	return 0;
}

static int cmd_service_rm(const struct cmd *c)
{
	sqlite3 *h = open_db(0);

	if (cfg_service_rm(h, c->pos[0], err, sizeof err) < 0)
		die("service rm: %s", err);
	store_close(h);
	return 0;
}

static json_t *export_or_die(sqlite3 *h, const char *name, const char *what)
{
	json_t *doc = cfg_export(h, name, err, sizeof err);

	if (!doc)
		die("%s: %s", what, err);
	return doc;
}

static void print_answers(const json_t *a)
{
	if (json_is_null(a))
		printf("default");
	else
		printf("%lld", (long long)json_integer_value(a));
}

static int cmd_service_list(const struct cmd *c)
{
	sqlite3 *h = open_db(0);
	json_t *doc = export_or_die(h, c->npos ? c->pos[0] : NULL,
	                            "service list");
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
	store_close(h);
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
	putchar('\n');
}

static int cmd_service_show(const struct cmd *c)
{
	sqlite3 *h = open_db(0);
	json_t *doc = export_or_die(h, c->pos[0], "service show");
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
		printf(" sticky %s when-down %s\n",
		       json_is_true(json_object_get(v, "sticky")) ? "yes" : "no",
		       json_string_value(json_object_get(v, "when_down")));
		json_array_foreach(json_object_get(v, "endpoints"), i, x)
			print_endpoint_text(x);
		json_array_foreach(json_object_get(v, "rules"), i, x) {
			size_t k;
			json_t *t;

			printf("  rule %s ->",
			       json_string_value(json_object_get(x, "match")));
			json_array_foreach(json_object_get(x, "targets"), k, t)
				printf(" %s", json_string_value(t));
			putchar('\n');
		}
	}
	json_decref(doc);
	store_close(h);
	return 0;
}

static void fill_endpoint(const struct cmd *c, struct cfg_endpoint *e)
{
	const char *v, *lat = opt(c, "lat"), *lon = opt(c, "lon");

	memset(e, 0, sizeof *e);
	e->drained = -1;
	e->target = c->pos[1];
	if ((v = opt(c, "weight"))) {
		e->has_weight = true;
		e->weight = parse_ll("weight", v);
	}
	if ((v = opt(c, "priority"))) {
		e->has_priority = true;
		e->priority = parse_ll("priority", v);
	}
	if ((v = opt(c, "region"))) {
		e->has_region = true;
		e->region = v;
	}
	if (!lat != !lon)
		die("--lat and --lon go together");
	if (lat && (!*lat && !*lon)) {
		e->clear_loc = true;
	} else if (lat) {
		e->has_loc = true;
		e->lat = parse_d("lat", lat);
		e->lon = parse_d("lon", lon);
	}
	if ((v = opt(c, "bias"))) {
		e->has_bias = true;
		e->bias = parse_d("bias", v);
	}
	e->admin = opt(c, "admin");
	if ((v = opt(c, "check"))) {
		e->has_check = true;
		e->check_url = v;
	}
	if ((v = opt(c, "check-interval"))) {
		e->has_interval = true;
		e->interval = parse_d("check-interval", v);
	}
	if ((v = opt(c, "check-timeout"))) {
		e->has_timeout = true;
		e->timeout = parse_d("check-timeout", v);
	}
	if ((v = opt(c, "check-rise"))) {
		e->has_rise = true;
		e->rise = parse_ll("check-rise", v);
	}
	if ((v = opt(c, "check-fall"))) {
		e->has_fall = true;
		e->fall = parse_ll("check-fall", v);
	}
	if (opt(c, "check-insecure")) {
		e->has_tls_verify = true;
		e->tls_verify = false;
	}
	if ((v = opt(c, "check-expect"))) {
		e->has_expect = true;
		e->expect = v;
	}
	if ((v = opt(c, "check-body"))) {
		e->has_body = true;
		e->body = v;
	}
	if ((v = opt(c, "check-host"))) {
		e->has_host = true;
		e->host = v;
	}
}

static int cmd_endpoint_add(const struct cmd *c)
{
	struct cfg_endpoint e;
	sqlite3 *h;

	fill_endpoint(c, &e);
	h = open_db(0);
	if (cfg_endpoint_add(h, c->pos[0], &e, err, sizeof err) < 0)
		die("endpoint add: %s", err);
	store_close(h);
	return 0;
}

static int cmd_endpoint_set(const struct cmd *c)
{
	struct cfg_endpoint e;
	sqlite3 *h;

	fill_endpoint(c, &e);
	h = open_db(0);
	if (cfg_endpoint_set(h, c->pos[0], &e, err, sizeof err) < 0)
		die("endpoint set: %s", err);
	store_close(h);
	return 0;
}

static int cmd_endpoint_drain(const struct cmd *c)
{
	struct cfg_endpoint e = { .target = c->pos[1] };
	sqlite3 *h = open_db(0);

	e.drained = strcmp(c->w2, "drain") == 0;
	if (cfg_endpoint_set(h, c->pos[0], &e, err, sizeof err) < 0)
		die("endpoint %s: %s", c->w2, err);
	store_close(h);
	return 0;
}

static int cmd_endpoint_rm(const struct cmd *c)
{
	sqlite3 *h = open_db(0);

	if (cfg_endpoint_rm(h, c->pos[0], c->pos[1], err, sizeof err) < 0)
		die("endpoint rm: %s", err);
	store_close(h);
	return 0;
}

static int cmd_rule_add(const struct cmd *c)
{
	sqlite3 *h = open_db(0);

	if (cfg_rule_add(h, c->pos[0], c->pos[1],
	                 (const char *const *)c->pos + 2,
	                 (size_t)c->npos - 2, err, sizeof err) < 0)
		die("rule add: %s", err);
	store_close(h);
	return 0;
}

static int cmd_rule_rm(const struct cmd *c)
{
	sqlite3 *h = open_db(0);

	if (cfg_rule_rm(h, c->pos[0], c->pos[1], err, sizeof err) < 0)
		die("rule rm: %s", err);
	store_close(h);
	return 0;
}

static int cmd_rule_list(const struct cmd *c)
{
	sqlite3 *h = open_db(0);
	json_t *doc = export_or_die(h, c->pos[0], "rule list");
	json_t *v = json_array_get(json_object_get(doc, "services"), 0);
	json_t *rules = json_object_get(v, "rules"), *x, *t;
	size_t i, k;

	if (json_out) {
		print_json(json_incref(rules));
	} else {
		json_array_foreach(rules, i, x) {
			printf("%s ->",
			       json_string_value(json_object_get(x, "match")));
			json_array_foreach(json_object_get(x, "targets"), k, t)
				printf(" %s", json_string_value(t));
			putchar('\n');
		}
	}
	json_decref(doc);
	store_close(h);
	return 0;
}

static int cmd_flip(const struct cmd *c)
{
	sqlite3 *h = open_db(0);

	if (cfg_flip(h, c->pos[0], c->pos[1], err, sizeof err) < 0)
		die("flip: %s", err);
	store_close(h);
	return 0;
}

static int cmd_shift(const struct cmd *c)
{
	const char *acts[] = { "abort", "pause", "resume" };
	const char *act = NULL, *steps = opt(c, "steps"), *every = opt(c, "every");
	const char *rtt = opt(c, "max-rtt-ms");
	struct shift_info si;
	sqlite3 *h;
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
	h = open_db(0);
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
		die("shift: %s", err);
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
	store_close(h);
	return 0;
}

static int cmd_export(const struct cmd *c)
{
	sqlite3 *h = open_db(0);

	(void)c;
	print_json(export_or_die(h, NULL, "export"));
	store_close(h);
	return 0;
}

static int cmd_import(const struct cmd *c)
{
	json_error_t je;
	json_t *doc;
	sqlite3 *h;

	if (strcmp(c->pos[0], "-") == 0)
		doc = json_loadf(stdin, 0, &je);
	else
		doc = json_load_file(c->pos[0], 0, &je);
	if (!doc)
		die("import: %s:%d: %s", strcmp(c->pos[0], "-") ? c->pos[0] :
		    "stdin", je.line, je.text);
	h = open_db(STORE_CREATE);
	if (cfg_import(h, doc, err, sizeof err) < 0)
		die("import: %s", err);
	json_decref(doc);
	store_close(h);
	return 0;
}

/* ------------------------------------------------------ status, explain */

/* The health view as the tables hold it (dnsd persists its state there).
 * Same layout dnsd hands svc_select(). */
struct dbview {
	struct hstate_view v;
	uint8_t *state, *stale;
	struct hstate_region *regions;
	float *rtt;
};

static void dbview_load(sqlite3 *h, size_t n, struct dbview *d)
{
	sqlite3_stmt *st;
	size_t nr = 0, cap = 8;

	memset(d, 0, sizeof *d);
	d->state = xcalloc(n ? n : 1, 1);
	d->stale = xcalloc(n ? n : 1, 1);
	if (sqlite3_prepare_v2(h, "SELECT endpoint_id, state, stale FROM "
	                       "endpoint_health", -1, &st, NULL) != SQLITE_OK)
		die("db: %s: %s", db_path, sqlite3_errmsg(h));
	while (sqlite3_step(st) == SQLITE_ROW) {
		long long id = sqlite3_column_int64(st, 0);
		uint8_t s;

		if (id < 0 || (size_t)id >= n ||
		    hstate_state_parse((const char *)sqlite3_column_text(st, 1),
		                       &s) < 0)
			continue;
		d->state[id] = s;
		d->stale[id] = sqlite3_column_int(st, 2) != 0;
	}
	sqlite3_finalize(st);
	d->regions = xcalloc(cap, sizeof *d->regions);
	if (sqlite3_prepare_v2(h, "SELECT r, avg(lat), avg(lon), count(lat) "
	                       "FROM (SELECT region AS r, lat, lon FROM probes "
	                       "UNION ALL SELECT DISTINCT region, NULL, NULL "
	                       "FROM latency) GROUP BY r ORDER BY r", -1, &st,
	                       NULL) != SQLITE_OK)
		die("db: %s: %s", db_path, sqlite3_errmsg(h));
	while (sqlite3_step(st) == SQLITE_ROW) {
		struct hstate_region *r;

		if (nr == cap) {
			cap *= 2;
			d->regions = xrealloc(d->regions,
			                      cap * sizeof *d->regions);
		}
		r = &d->regions[nr++];
		r->name = xstrdup((const char *)sqlite3_column_text(st, 0));
		r->has_coords = sqlite3_column_int(st, 3) > 0;
		r->lat = sqlite3_column_double(st, 1);
		r->lon = sqlite3_column_double(st, 2);
	}
	sqlite3_finalize(st);
	d->rtt = xmalloc((nr ? nr : 1) * (n ? n : 1) * sizeof *d->rtt);
	for (size_t i = 0; i < nr * n; i++)
		d->rtt[i] = -1;
	if (sqlite3_prepare_v2(h, "SELECT region, endpoint_id, rtt_ms FROM "
	                       "latency", -1, &st, NULL) != SQLITE_OK)
		die("db: %s: %s", db_path, sqlite3_errmsg(h));
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *rn = (const char *)sqlite3_column_text(st, 0);
		long long id = sqlite3_column_int64(st, 1);

		for (size_t r = 0; r < nr; r++)
			if (id >= 0 && (size_t)id < n &&
			    strcmp(d->regions[r].name, rn) == 0)
				d->rtt[r * n + (size_t)id] =
					(float)sqlite3_column_double(st, 2);
	}
	sqlite3_finalize(st);
	d->v.state = d->state;
	d->v.stale = d->stale;
	d->v.n = n;
	d->v.n_regions = nr;
	d->v.regions = d->regions;
	d->v.rtt_ms = d->rtt;
}

static void dbview_free(struct dbview *d)
{
	for (size_t r = 0; r < d->v.n_regions; r++)
		free((char *)d->regions[r].name);
	free(d->regions);
	free(d->state);
	free(d->stale);
	free(d->rtt);
}

static json_t *status_endpoint(sqlite3 *h, sqlite3_stmt *st)
{
	long long id = sqlite3_column_int64(st, 0);
	bool has_check = sqlite3_column_type(st, 6) != SQLITE_NULL;
	bool has_eh = sqlite3_column_type(st, 7) != SQLITE_NULL;
	const char *health = !has_check ? "up" :
		has_eh ? (const char *)sqlite3_column_text(st, 7) : "unknown";
	json_t *agents = json_array(), *lat = json_array(), *e;
	sqlite3_stmt *q;

	e = json_pack("{s:s, s:s, s:s, s:b, s:I, s:I, s:o, s:o, s:b, s:o, "
	              "s:o}",
		"target", sqlite3_column_text(st, 1),
		"health", health,
		"admin", sqlite3_column_text(st, 2),
		"drained", sqlite3_column_int(st, 3),
		"weight", (json_int_t)sqlite3_column_int64(st, 4),
		"priority", (json_int_t)sqlite3_column_int64(st, 5),
		"region", sqlite3_column_type(st, 11) == SQLITE_NULL ?
			json_null() :
			json_string((const char *)sqlite3_column_text(st, 11)),
		"check", has_check ?
			json_string((const char *)sqlite3_column_text(st, 6)) :
			json_null(),
		"stale", has_eh && sqlite3_column_int(st, 8),
		"since", has_eh ? json_real(sqlite3_column_double(st, 9)) :
			json_null(),
		"reason", has_eh ?
			json_string((const char *)sqlite3_column_text(st, 10)) :
			json_null());
	if (sqlite3_prepare_v2(h, "SELECT p.name, p.region, h.state, h.ok, "
	                       "h.rtt_ms, h.detail, h.ts, h.seen, h.since "
	                       "FROM health h JOIN probes p ON p.id = "
	                       "h.probe_id WHERE h.endpoint_id = ? ORDER BY "
	                       "p.name", -1, &q, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(q, 1, id);
		while (sqlite3_step(q) == SQLITE_ROW)
			json_array_append_new(agents, json_pack(
				"{s:s, s:s, s:s, s:b, s:o, s:s, s:f, s:f, s:f}",
				"probe", sqlite3_column_text(q, 0),
				"region", sqlite3_column_text(q, 1),
				"state", sqlite3_column_text(q, 2),
				"ok", sqlite3_column_int(q, 3),
				"rtt_ms", sqlite3_column_type(q, 4) ==
					SQLITE_NULL ? json_null() :
					json_real(sqlite3_column_double(q, 4)),
				"detail", sqlite3_column_text(q, 5),
				"ts", sqlite3_column_double(q, 6),
				"seen", sqlite3_column_double(q, 7),
				"since", sqlite3_column_double(q, 8)));
		sqlite3_finalize(q);
	}
	if (sqlite3_prepare_v2(h, "SELECT region, rtt_ms, samples, updated "
	                       "FROM latency WHERE endpoint_id = ? ORDER BY "
	                       "region", -1, &q, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(q, 1, id);
		while (sqlite3_step(q) == SQLITE_ROW)
			json_array_append_new(lat, json_pack(
				"{s:s, s:f, s:I, s:f}",
				"region", sqlite3_column_text(q, 0),
				"rtt_ms", sqlite3_column_double(q, 1),
				"samples", (json_int_t)sqlite3_column_int64(q, 2),
				"updated", sqlite3_column_double(q, 3)));
		sqlite3_finalize(q);
	}
	json_object_set_new(e, "agents", agents);
	json_object_set_new(e, "latency", lat);
	return e;
}

/* One line for a shift's status object (db/shift.h shift_json). */
static void print_shift(const json_t *sh)
{
	const json_t *next = json_object_get(sh, "next_step_in");
	const char *why = json_string_value(json_object_get(sh, "reason"));

	printf("  shift to %s: stage %lld of %lld (%lld%%), %s%s",
	       json_string_value(json_object_get(sh, "target")),
	       (long long)json_integer_value(json_object_get(sh, "stage")),
	       (long long)json_integer_value(json_object_get(sh, "stages")),
	       (long long)json_integer_value(json_object_get(sh, "percent")),
	       json_is_true(json_object_get(sh, "paused")) ? "paused" :
	       json_string_value(json_object_get(sh, "state")), "");
	if (json_is_number(next))
		printf(", next step in %.0f s", json_number_value(next));
	if (why && *why)
		printf(": %s", why);
	putchar('\n');
}

static int cmd_status(const struct cmd *c)
{
	sqlite3 *h = open_db(0);
	struct svc_set *set = NULL;
	json_t *svcs = json_array(), *probs = json_array(), *doc, *shifts;
	sqlite3_stmt *st, *es;
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
	if (!(shifts = shift_json_all(h, clock_unix(), err, sizeof err)))
		die("status: %s", err);
	for (i = 0; i < set->n_problems; i++)
		json_array_append_new(probs, json_string(set->problems[i]));
	store_begin(h, false);
	if (sqlite3_prepare_v2(h, "SELECT id, name, policy, ttl, answers, "
	                       "when_down FROM services WHERE ?1 IS NULL OR "
	                       "name = ?1 ORDER BY name", -1, &st, NULL)
	    != SQLITE_OK ||
	    sqlite3_prepare_v2(h, "SELECT e.id, e.target, e.admin, e.drained, "
	                       "e.weight, e.priority, e.check_url, eh.state, "
	                       "eh.stale, eh.since, eh.reason, e.region FROM "
	                       "endpoints e LEFT JOIN endpoint_health eh ON "
	                       "eh.endpoint_id = e.id WHERE e.service_id = ? "
	                       "ORDER BY e.priority, e.target", -1, &es, NULL)
	    != SQLITE_OK)
		die("status: db: %s: %s", db_path, sqlite3_errmsg(h));
	if (only)
		sqlite3_bind_text(st, 1, only, -1, SQLITE_STATIC);
	while (sqlite3_step(st) == SQLITE_ROW) {
		json_t *eps = json_array(), *sv, *sh;

		sqlite3_reset(es);
		sqlite3_bind_int64(es, 1, sqlite3_column_int64(st, 0));
		while (sqlite3_step(es) == SQLITE_ROW)
			json_array_append_new(eps, status_endpoint(h, es));
		sh = json_object_get(shifts, (const char *)
		                     sqlite3_column_text(st, 1));
		json_array_append_new(svcs, sv = json_pack(
			"{s:s, s:s, s:I, s:o, s:s, s:o}",
			"name", sqlite3_column_text(st, 1),
			"policy", sqlite3_column_text(st, 2),
			"ttl", (json_int_t)sqlite3_column_int64(st, 3),
			"answers", sqlite3_column_type(st, 4) == SQLITE_NULL ?
				json_null() :
				json_integer(sqlite3_column_int64(st, 4)),
			"when_down", sqlite3_column_text(st, 5),
			"endpoints", eps));
		if (sv && sh)
			json_object_set(sv, "shift", sh);
	}
	json_decref(shifts);
	sqlite3_finalize(st);
	sqlite3_finalize(es);
	store_rollback(h);
	if (only && json_array_size(svcs) == 0)
		die("status: service %s not found", only);
	doc = json_pack("{s:o, s:o}", "services", svcs, "problems", probs);
	if (json_out) {
		print_json(doc);
	} else {
		json_t *v, *e;
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
				json_array_foreach(json_object_get(e, "agents"),
				                   m, a)
					printf("      agent %s (%s): %s %s\n",
					       json_string_value(json_object_get(
					               a, "probe")),
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
	store_close(h);
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
		die("explain: --ecs-max-v4 0..32, --ecs-max-v6 0..128");
	if (strlen(s) >= sizeof buf)
		die("explain: --client '%s' is not an IPv4 or IPv6 address", s);
	strcpy(buf, s);
	if ((slash = strchr(buf, '/'))) {
		*slash = '\0';
		len = parse_ll("client prefix", slash + 1);
		if (len < 0)
			die("explain: --client %s: negative prefix", s);
	}
	memset(&cl->addr, 0, sizeof cl->addr);
	if (inet_pton(AF_INET, buf, &a4) == 1) {
		*v4 = true;
		cl->addr.s6_addr[10] = cl->addr.s6_addr[11] = 0xff;
		memcpy(&cl->addr.s6_addr[12], &a4, 4);
		if (len > 32)
			die("explain: --client %s: prefix longer than 32", s);
		cl->src_plen = 96 + (unsigned)(len < 0 || len > max4 ? max4
		                                                     : len);
	} else if (inet_pton(AF_INET6, buf, &cl->addr) == 1) {
		*v4 = false;
		if (len > 128)
			die("explain: --client %s: prefix longer than 128", s);
		cl->src_plen = (unsigned)(len < 0 || len > max6 ? max6 : len);
	} else {
		die("explain: --client '%s' is not an IPv4 or IPv6 address", s);
	}
	*ecs0 = len == 0;
	for (unsigned b = cl->src_plen; b < 128; b++)
		cl->addr.s6_addr[b / 8] &= (uint8_t)~(0x80u >> (b % 8));
}

/* dnsd's --default-location: "LAT,LON" or a country code. */
static void parse_default_location(const char *s, struct svc_client *cl)
{
	char *end;
	const char *p;

	cl->country[0] = cl->continent[0] = '\0';
	if (strlen(s) == 2 &&
	    geo_country_centroid(s, &cl->lat, &cl->lon, cl->continent) == 0) {
		cl->country[0] = (char)(s[0] & ~0x20);
		cl->country[1] = (char)(s[1] & ~0x20);
		cl->country[2] = '\0';
		cl->has_loc = true;
		return;
	}
	cl->lat = strtod(s, &end);
	if (end != s && *end == ',') {
		p = end + 1;
		cl->lon = strtod(p, &end);
		if (end != p && !*end && cl->lat >= -90 && cl->lat <= 90 &&
		    cl->lon >= -180 && cl->lon <= 180) {
			cl->has_loc = true;
			return;
		}
	}
	die("explain: --default-location '%s' is neither LAT,LON nor a known "
	    "country code", s);
}

static const char *mode_name(unsigned m)
{
	static const char *const n[] = { "normal", "open", "closed",
	                                 "fallback", "empty" };

	return m < 5 ? n[m] : "?";
}

static int cmd_explain(const struct cmd *c)
{
	sqlite3 *h = open_db(0);
	struct svc_set *set = NULL;
	const struct svc_service *s;
	struct svc_client cl;
	struct svc_answer ans;
	struct svc_why why;
	struct dbview dv;
	struct geo_db *gdb = NULL;
	const char *client = opt(c, "client"), *v;
	json_t *answer = json_array(), *eps = json_array(), *loc, *doc;
	uint64_t rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	unsigned scope;
	bool v4, ecs0;

	if (!client)
		die("explain: --client ADDR is required");
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
		if (g) {
			cl.has_loc = true;
			cl.lat = g->lat;
			cl.lon = g->lon;
			memcpy(cl.country, g->country, 3);
			memcpy(cl.continent, g->continent, 3);
		}
	}
	if (!cl.has_loc && (v = opt(c, "default-location")))
		parse_default_location(v, &cl);
	if (!opt(c, "lat") != !opt(c, "lon"))
		die("explain: --lat and --lon go together");
	if (opt(c, "lat")) {
		cl.has_loc = true;
		cl.lat = parse_d("lat", opt(c, "lat"));
		cl.lon = parse_d("lon", opt(c, "lon"));
		if (fabs(cl.lat) > 90 || fabs(cl.lon) > 180)
			die("explain: --lat/--lon outside -90..90/-180..180");
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
		die("explain: service %s not found", canon);
	}
	dbview_load(h, (size_t)set->max_endpoint_id + 1, &dv);
	why.ep = xcalloc(s->n_eps ? s->n_eps : 1, sizeof *why.ep);
	why.cap = s->n_eps;
	svc_select(s, &cl, &dv.v, &rng, 0, &ans, &why);
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
	dbview_free(&dv);
	geo_free(gdb);
	svc_set_free(set);
	store_close(h);
	return 0;
}

/* ------------------------------------------------------------ dispatch */

static const struct optspec no_opts[] = { { NULL, false } };
static const struct optspec shift_opts[] = {
	{ "steps", true }, { "every", true }, { "max-rtt-ms", true },
	{ "abort", false }, { "pause", false }, { "resume", false },
	{ NULL, false }
};
static const struct optspec svc_opts[] = { SVC_OPTS, { NULL, false } };
static const struct optspec ep_opts[] = { EP_OPTS, { NULL, false } };
static const struct optspec explain_opts[] = {
	{ "client", true }, { "geoip", true }, { "lat", true },
	{ "lon", true }, { "country", true }, { "continent", true },
	{ "default-location", true }, { "ecs-max-v4", true },
	{ "ecs-max-v6", true },
	{ NULL, false }
};

static struct cmd cmds[] = {
	{ "init", NULL, 0, 0, no_opts, cmd_init, "init",
	  "Creates the store with the current schema (or migrates it).\n", NULL, 0, NULL },
	{ "service", "add", 1, 1, svc_opts, cmd_service_add,
	  "service add NAME --policy failover|weighted|geo|latency|all|"
	  "roundrobin [--ttl S] [--answers N] [--sticky] "
	  "[--when-down open|closed|TARGET]",
	  "Adds a balanced name (trailing dot optional). --ttl default 30;\n"
	  "--answers default 1 (8 for all, every healthy one for roundrobin);\n"
	  "--sticky (weighted): a client subnet keeps its answer;\n"
	  "--when-down: open (default), closed (SERVFAIL) or a TARGET.\n", NULL, 0, NULL },
	{ "service", "set", 1, 1, svc_opts, cmd_service_set,
	  "service set NAME [--policy P] [--ttl S] [--answers N|default] "
	  "[--sticky|--no-sticky] [--when-down open|closed|TARGET]",
	  "Changes the given settings of a service.\n", NULL, 0, NULL },
	{ "service", "list", 0, 1, no_opts, cmd_service_list,
	  "service list [NAME] [--json]", "Lists services (or just NAME).\n", NULL, 0, NULL },
	{ "service", "show", 1, 1, no_opts, cmd_service_show,
	  "service show NAME [--json]",
	  "Shows a service with its endpoints and rules.\n", NULL, 0, NULL },
	{ "service", "rm", 1, 1, no_opts, cmd_service_rm, "service rm NAME",
	  "Removes a service, its endpoints and rules.\n", NULL, 0, NULL },
	{ "endpoint", "add", 2, 2, ep_opts, cmd_endpoint_add,
	  "endpoint add SERVICE TARGET [options]",
	  "Adds an endpoint. TARGET: IPv4, IPv6, or a name ending in '.'\n"
	  "(a CNAME answer).\n", NULL, 0, NULL },
	{ "endpoint", "set", 2, 2, ep_opts, cmd_endpoint_set,
	  "endpoint set SERVICE TARGET [options]",
	  "Changes the given settings of an endpoint.\n", NULL, 0, NULL },
	{ "endpoint", "drain", 2, 2, no_opts, cmd_endpoint_drain,
	  "endpoint drain SERVICE TARGET",
	  "Takes an endpoint out of rotation (answered only when the service\n"
	  "fails open).\n", NULL, 0, NULL },
	{ "endpoint", "undrain", 2, 2, no_opts, cmd_endpoint_drain,
	  "endpoint undrain SERVICE TARGET", "Puts it back in rotation.\n", NULL, 0, NULL },
	{ "endpoint", "rm", 2, 2, no_opts, cmd_endpoint_rm,
	  "endpoint rm SERVICE TARGET", "Removes an endpoint.\n", NULL, 0, NULL },
	{ "rule", "add", 3, 3 + SVC_MAX_ENDPOINTS, no_opts, cmd_rule_add,
	  "rule add SERVICE CIDR|country:CC|continent:CC TARGET [TARGET ...]",
	  "Clients matching the rule are answered from these members only\n"
	  "(most specific rule first: longest CIDR, country, continent).\n", NULL, 0, NULL },
	{ "rule", "list", 1, 1, no_opts, cmd_rule_list,
	  "rule list SERVICE [--json]", "Lists a service's rules.\n", NULL, 0, NULL },
	{ "rule", "rm", 2, 2, no_opts, cmd_rule_rm,
	  "rule rm SERVICE CIDR|country:CC|continent:CC", "Removes a rule.\n", NULL, 0, NULL },
	{ "flip", NULL, 2, 2, no_opts, cmd_flip, "flip SERVICE TARGET",
	  "Makes TARGET the preferred endpoint: a priority strictly lower\n"
	  "than every other endpoint's, the others keeping their order.\n", NULL, 0, NULL },
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
	  "shift; --pause stops the clock, --resume lets it run on.\n", NULL, 0, NULL },
	{ "status", NULL, 0, 1, no_opts, cmd_status, "status [SERVICE] [--json]",
	  "Health, admin state, weights, priorities, agents and RTTs, and\n"
	  "the rows dnsd skips as invalid (problems).\n", NULL, 0, NULL },
	{ "explain", NULL, 1, 1, explain_opts, cmd_explain,
	  "explain SERVICE --client ADDR[/LEN] [--geoip FILE] "
	  "[--default-location LAT,LON|CC] [--ecs-max-v4 N] [--ecs-max-v6 N] "
	  "[--lat DEG --lon DEG] [--country CC] [--continent CC] [--json]",
	  "Why each endpoint is or is not chosen for that client, computed\n"
	  "by the code dnsd answers with, from the health dnsd stored.\n"
	  "ADDR: a query from that source without ECS; ADDR/LEN: with ECS\n"
	  "source prefix LEN. Give the --geoip, --default-location and\n"
	  "--ecs-max-* dnsd runs with to get its exact answer; --lat/--lon,\n"
	  "--country, --continent override the client's location.\n", NULL, 0, NULL },
	{ "export", NULL, 0, 0, no_opts, cmd_export, "export",
	  "Prints the whole configuration as JSON.\n", NULL, 0, NULL },
	{ "import", NULL, 1, 1, no_opts, cmd_import, "import FILE|-",
	  "Replaces the whole configuration with FILE's (one transaction;\n"
	  "creates the store if missing).\n", NULL, 0, NULL },
};
#define NCMDS (sizeof cmds / sizeof cmds[0])

static void usage(FILE *f)
{
	fprintf(f, "usage: gslbctl --db FILE [--json] COMMAND ...\n"
	        "Commands:\n");
	for (size_t i = 0; i < NCMDS; i++)
		fprintf(f, "  %s\n", cmds[i].usage);
	fprintf(f, "gslbctl COMMAND --help for details. Exit status 0 on "
	        "success, 1 with a one-line reason otherwise.\n");
}

static void cmd_usage(const struct cmd *c)
{
	printf("usage: gslbctl --db FILE %s\n%s", c->usage, c->help);
	if (c->opts == ep_opts)
		fputs(ep_help, stdout);
}

int main(int argc, char **argv)
{
	char **words = xcalloc((size_t)argc + 1, sizeof *words);
	int nw = 0, j;
	bool help = false;
	struct cmd *c = NULL;

	db_path = getenv("GSLB_DB");
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--db") == 0) {
			if (i + 1 >= argc)
				die("--db needs a FILE");
			db_path = argv[++i];
		} else if (strncmp(argv[i], "--db=", 5) == 0) {
			db_path = argv[i] + 5;
		} else if (strcmp(argv[i], "--json") == 0) {
			json_out = true;
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
		if (known)
			die("%s: unknown or missing subcommand '%s' (gslbctl "
			    "%s --help)", words[0], nw > 1 ? words[1] : "",
			    words[0]);
		die("unknown command '%s' (gslbctl --help)", words[0]);
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
		if (!c->opts[k].name)
			die("%s%s%s: unknown option --%.*s", c->w1,
			    c->w2 ? " " : "", c->w2 ? c->w2 : "", (int)len, a);
		if (c->ov[k])
			die("--%s given twice", c->opts[k].name);
		if (!c->opts[k].arg) {
			if (eq)
				die("--%s takes no value", c->opts[k].name);
			c->ov[k] = "";
		} else if (eq) {
			c->ov[k] = eq + 1;
		} else if (i + 1 < nw) {
			c->ov[k] = words[++i];
		} else {
			die("--%s needs a value", c->opts[k].name);
		}
	}
	if (c->npos < c->min_pos || c->npos > c->max_pos)
		die("usage: gslbctl --db FILE %s", c->usage);
	j = c->fn(c);
	free(c->pos);
	free(c->ov);
	free(words);
	return j;
}
