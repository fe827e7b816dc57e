/* db/import.c - streaming import: each service object of the document is
 * checked in C with the add commands' checks (db/edit.h cfg_*_check); a
 * new one is written straight with statements prepared once, a stored one
 * is compared with its rows and, only when it differs (or has a staged
 * shift or damping thresholds), validated into a small scratch store and
 * planned against the store by identity (db/diff_sql.h's planner),
 * guarded and written. The changes are kept in temporary tables (the
 * report's, when it is read, and the audit rows'); at the end the
 * services the document did not name are removed and the tables become
 * the audit trail and the report, in plan order. Load time only; see
 * db/import.h. */
#include "db/import.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/spell.h"
#include "db/audit.h"
#include "db/audit_sql.h"
#include "db/damping.h"
#include "db/diff.h"
#include "db/diff_sql.h"
#include "db/edit.h"
#include "db/export.h"
#include "db/jstream.h"
#include "db/shift.h"
#include "db/store.h"
#include "db/store_sql.h"
#include "policy/svc.h"

/* A service object larger than this is refused (bounds the memory). */
#define MAX_SERVICE_BYTES (16u << 20)
#define CHUNK (256u << 10)
/* Services kept in the scratch store before it is emptied. */
#define SCRATCH_SERVICES 256
/* The page cache of the store's connection during an import. */
#define IMPORT_CACHE_KB "131072"

/* The changes (for the report), and the audit rows (a service added is
 * one row: db/audit_sql.h cfg_added_text), in the columns of the audit
 * table; rank orders the kinds as a plan does (services, endpoints,
 * rules), seq the changes of one object. */
#define PLAN_TABLE "temp.import_plan"
#define AUDIT_TABLE "temp.import_audit"
#define PLAN_ORDER "rank, service, key, seq"

/* ------------------------------------------------------------ names */

/* The canonical names seen: an open-addressing set of strings kept in
 * large blocks. */
struct nameset {
	const char **slot;
	size_t cap, n;
	char *block;
	size_t used, size;
	char **blocks;
	size_t nblocks;
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static bool names_has(const struct nameset *ns, const char *s)
{
	if (!ns->cap)
		return false;
	for (size_t i = hash_str(s) & (ns->cap - 1); ns->slot[i];
	     i = (i + 1) & (ns->cap - 1))
		if (strcmp(ns->slot[i], s) == 0)
			return true;
	return false;
}

static void names_put_slot(const char **slot, size_t cap, const char *s)
{
	size_t i = hash_str(s) & (cap - 1);

	while (slot[i])
		i = (i + 1) & (cap - 1);
	slot[i] = s;
}

/* Adds s (not yet there). 0 or -ENOMEM. */
static int names_add(struct nameset *ns, const char *s)
{
	size_t len = strlen(s) + 1;
	char *copy;

	if (2 * (ns->n + 1) > ns->cap) {
		size_t cap = ns->cap ? ns->cap * 2 : 1024;
		const char **slot = calloc(cap, sizeof *slot);

		if (!slot)
			return -ENOMEM;
		for (size_t i = 0; i < ns->cap; i++)
			if (ns->slot[i])
				names_put_slot(slot, cap, ns->slot[i]);
		free(ns->slot);
		ns->slot = slot;
		ns->cap = cap;
	}
	if (!ns->block || ns->used + len > ns->size) {
		char **b = realloc(ns->blocks, (ns->nblocks + 1) * sizeof *b);

		if (!b)
			return -ENOMEM;
		ns->blocks = b;
		ns->size = 1u << 20;
		if (!(ns->block = malloc(ns->size)))
			return -ENOMEM;
		ns->blocks[ns->nblocks++] = ns->block;
		ns->used = 0;
	}
	copy = ns->block + ns->used;
	memcpy(copy, s, len);
	ns->used += len;
	names_put_slot(ns->slot, ns->cap, copy);
	ns->n++;
	return 0;
}

static void names_fini(struct nameset *ns)
{
	for (size_t i = 0; i < ns->nblocks; i++)
		free(ns->blocks[i]);
	free(ns->blocks);
	free(ns->slot);
	memset(ns, 0, sizeof *ns);
}

/* Adds the first column of every row of sql. 0 or -EIO / -ENOMEM. */
static int names_fill(struct nameset *ns, sqlite3 *h, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int rc = 0, s;

	if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	while (rc == 0 && (s = sqlite3_step(st)) == SQLITE_ROW) {
		const char *n = (const char *)sqlite3_column_text(st, 0);

		if (n && !names_has(ns, n))
			rc = names_add(ns, n);
	}
	if (rc == 0 && s != SQLITE_DONE)
		rc = -EIO;
	sqlite3_finalize(st);
	return rc;
}

/* ----------------------------------------------------------- import */

struct imp {
	struct store *db, *want;
	sqlite3 *h;
	struct cfg_planner *pl;
	sqlite3_stmt *clear[4], *rec, *arec;
	struct nameset seen;
	/* The services in the store when the import began, and those of
	 * them with a staged shift or damping thresholds: one scan each. */
	struct nameset stored, steered;
	/* A new service checked in C (struct fresh), its statements, and
	 * the next endpoint id (0: to be read again). */
	struct fresh *fr;
	sqlite3_stmt *ins[4], *cur[3];
	long long next_ep;
	bool dry, guard;
	bool services_seen;
	size_t services, changes, removed;
	size_t scratched;               /* services in the scratch store */
	long long seq;
	/* The first guard failure of each rule, by service name (the plan
	 * order), reported after the whole document was read. */
	bool bad[3];
	char bad_name[3][256], bad_msg[3][512];
	int apply_rc;
	char apply_msg[512];
	/* Progress. */
	const struct cfg_import_out *out;
	struct cfg_import_progress prog;
	struct timespec t0, last;
	char *err;
	size_t errlen;
};

static double since(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) +
	       (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static void progress(struct imp *im, bool done)
{
	struct timespec now;

	if (!im->out || !im->out->progress)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!done && since(&im->last, &now) < 0.25)
		return;
	im->last = now;
	im->prog.services = im->services;
	im->prog.changes = im->changes;
	im->prog.elapsed = since(&im->t0, &now);
	im->prog.done = done;
	im->out->progress(im->out->arg, &im->prog);
}

/* One row into the plan table (st: im->rec) or the audit table
 * (im->arec); NULL: that table is not kept. Strings are copied. */
static int put(struct imp *im, sqlite3_stmt *st, int rank,
               const char *service, const char *key, const char *op,
               const char *kind, const char *field, const char *old,
               const char *new)
{
	int rc;

	if (!st)
		return 0;
	sqlite3_bind_int(st, 1, rank);
	sqlite3_bind_text(st, 2, service, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, key, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 4, im->seq++);
	sqlite3_bind_text(st, 5, op, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, field, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, old, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 9, new, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : store_sqlerr(im->h, im->err, im->errlen,
	                                            "import");
}

/* Keeps the changes of the planner's plan (one service's) in the plan
 * table, and its audit rows: one per change, or one for a service it
 * adds (db/audit_sql.h cfg_added_text). */
static int record(struct imp *im, const struct cfg_plan *p)
{
	json_t *eps = NULL, *rules = NULL;
	const char *svc = NULL;
	char *text;
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < cfg_plan_size(p); i++) {
		struct cfg_change_cols c;

		if (cfg_plan_cols(p, i, &c) < 0) {
			rc = store_errf(im->err, im->errlen, -ENOMEM,
			                "import: out of memory");
		} else {
			rc = put(im, im->rec, c.rank, c.service, c.key, c.op,
			         c.kind, c.field, c.old, c.new);
			/* A new service has only additions, itself first. */
			if (i == 0 && c.rank == 0 && strcmp(c.op, "add") == 0) {
				svc = c.service;
				eps = json_array();
				rules = json_array();
			} else if (svc && c.rank == 1) {
				json_array_append_new(eps, json_string(c.key));
			} else if (svc) {
				json_array_append_new(rules, json_pack(
				        "{s:s, s:o}", "match", c.key, "targets",
				        json_loads(c.new, 0, NULL)));
			} else if (rc == 0) {
				rc = put(im, im->arec, c.rank, c.service, c.key,
				         c.op, c.kind, c.field, c.old, c.new);
			}
			im->changes++;
		}
		free(c.old);
		free(c.new);
	}
	if (svc && rc == 0) {
		text = cfg_added_text_json(eps, rules);
		rc = text ? put(im, im->arec, 0, svc, NULL, "add", "service",
		                NULL, NULL, text) :
		     store_errf(im->err, im->errlen, -ENOMEM,
		                "import: out of memory");
		free(text);
	}
	json_decref(eps);
	json_decref(rules);
	return rc;
}

/* Plans service name (canonical) against the scratch store's content,
 * guards, records and writes it. */
/* A service's staged shift and damping thresholds, which are not in the
 * plan: copied from the scratch store once its rows are applied. */
static int steering(struct imp *im, const char *name, bool want_steers)
{
	struct store cur = { .h = im->h };
	int rc;

	if (im->dry || im->bad[0] || im->bad[1] || im->bad[2] ||
	    im->apply_rc < 0)
		return 0;
	/* Neither side has one: nothing to copy (the common case, without
	 * the statements of the copy). */
	if (!want_steers && !names_has(&im->steered, name))
		return 0;
	rc = shift_copy_one(im->want, &cur, name, (double)time(NULL),
	                    im->err, im->errlen);
	if (rc >= 0)
		rc = damping_copy_one(im->want, &cur, name, im->err,
		                      im->errlen);
	return rc < 0 ? rc : 0;
}

static int one_service(struct imp *im, const char *name, bool want_steers)
{
	const struct cfg_plan *p;
	char msg[512];
	int rc, rule = 0;

	if ((rc = cfg_planner_plan(im->pl, name, &p, im->err,
	                           im->errlen)) < 0)
		return rc;
	if (cfg_plan_size(p) == 0)
		return steering(im, name, want_steers);
	if (im->guard) {
		rc = cfg_planner_guard(im->pl, &rule, msg, sizeof msg);
		if (rc == -EPERM && rule >= 1 && rule <= 3 &&
		    (!im->bad[rule - 1] ||
		     strcmp(name, im->bad_name[rule - 1]) < 0)) {
			im->bad[rule - 1] = true;
			snprintf(im->bad_name[rule - 1], 256, "%s", name);
			snprintf(im->bad_msg[rule - 1], 512, "%s", msg);
		}
	}
	if ((rc = record(im, p)) < 0)
		return rc;
	/* Nothing more is written once the import is sure to fail; a
	 * write that fails is reported after the document was read and
	 * checked, as the whole plan's would be. */
	if (im->dry || im->bad[0] || im->bad[1] || im->bad[2] ||
	    im->apply_rc < 0)
		return 0;
	/* The plan may add or remove endpoints: the fresh path reads the
	 * next id again. */
	im->next_ep = 0;
	if ((rc = cfg_planner_apply(im->pl, msg, sizeof msg)) < 0) {
		im->apply_rc = rc;
		snprintf(im->apply_msg, sizeof im->apply_msg, "%s", msg);
		return 0;
	}
	return steering(im, name, want_steers);
}

static int clear_scratch(struct imp *im)
{
	for (int i = 0; i < 4; i++) {
		int st = sqlite3_step(im->clear[i]);

		sqlite3_reset(im->clear[i]);
		if (st != SQLITE_DONE)
			return store_sqlerr(im->want->h, im->err, im->errlen,
			                    "import");
	}
	return 0;
}

/* " (line L, byte B)" after the message in err. */
static int at(struct imp *im, int rc, const struct jstream_pos *pos)
{
	size_t n = strlen(im->err);

	if (n < im->errlen)
		snprintf(im->err + n, im->errlen - n, " (line %lu, byte %llu)",
		         pos->line, pos->byte);
	return rc;
}

/* ------------------------------------------------------ new services */

/* A service the store does not have yet, checked in C with the checks of
 * the add commands (db/edit.h cfg_service_check, cfg_endpoint_check,
 * cfg_match_parse; the duplicate and membership checks the inserts make
 * against the scratch store made here on the arrays, with their
 * messages). Its plan is only additions, in plan order: the service, its
 * endpoints by target, its rules by match; written straight into the
 * store, with the row ids the planner's apply would give. */
struct fresh_rule {
	char kind[16], pat[64], match[96];
	size_t nt;
	size_t t[SVC_MAX_ENDPOINTS];    /* indexes into eps */
};

struct fresh {
	struct cfg_svc_row svc;
	struct cfg_ep_row eps[SVC_MAX_ENDPOINTS];
	size_t neps;
	struct fresh_rule *rules;
	size_t nrules, cap;
	size_t order[SVC_MAX_ENDPOINTS];        /* eps by target */
	long long id[SVC_MAX_ENDPOINTS];        /* their new row ids */
};

static const struct cfg_ep_row *sort_eps;

static int by_target(const void *a, const void *b)
{
	return strcmp(sort_eps[*(const size_t *)a].target,
	              sort_eps[*(const size_t *)b].target);
}

static int by_match(const void *a, const void *b)
{
	return strcmp(((const struct fresh_rule *)a)->match,
	              ((const struct fresh_rule *)b)->match);
}

/* Endpoints by target, rules by match: the plan's order. */
static void fresh_sort(struct fresh *f)
{
	for (size_t k = 0; k < f->neps; k++)
		f->order[k] = k;
	sort_eps = f->eps;
	qsort(f->order, f->neps, sizeof f->order[0], by_target);
	if (f->nrules)          /* rules is NULL until the first one */
		qsort(f->rules, f->nrules, sizeof f->rules[0], by_match);
}

/* "WHERE: MESSAGE" for an error of a check (err holds MESSAGE). */
static int wrap(struct imp *im, int rc, const char *where)
{
	char msg[512];

	snprintf(msg, sizeof msg, "%s", im->err);
	return store_errf(im->err, im->errlen, rc, "%s: %s", where, msg);
}

/* Checks services[i] (o) into im->fr, with cfg_import_service's errors. */
static int fresh_check(struct imp *im, const json_t *o, size_t i)
{
	struct fresh *f = im->fr;
	struct cfg_service s = { .name = NULL };
	const json_t *eps, *rules, *v;
	char where[300], ew[340];
	size_t j;
	int rc;

	f->neps = f->nrules = 0;
	snprintf(where, sizeof where, "services[%zu]", i);
	if ((rc = cfg_service_parse(o, &s, true, where, im->err,
	                            im->errlen)) < 0)
		return rc;
	snprintf(where, sizeof where, "services[%zu] (%s)", i, s.name);
	if ((rc = cfg_service_check(&s, &f->svc, im->err, im->errlen)) < 0)
		return wrap(im, rc, where);
	eps = json_object_get(o, "endpoints");
	if (eps && !json_is_null(eps) && !json_is_array(eps))
		return store_errf(im->err, im->errlen, -EINVAL, "%s: 'endpoints' "
		                  "must be a list", where);
	json_array_foreach(eps, j, v) {
		struct cfg_endpoint e = { .target = NULL };
		struct cfg_ep_row *r = &f->eps[f->neps < SVC_MAX_ENDPOINTS ?
		                               f->neps : 0];

		snprintf(ew, sizeof ew, "%s endpoints[%zu]", where, j);
		if ((rc = cfg_endpoint_parse(v, &e, ew, im->err,
		                             im->errlen)) < 0)
			return rc;
		if (f->neps == SVC_MAX_ENDPOINTS) {
			/* The limit is checked after the endpoint itself. */
			struct cfg_ep_row tmp = { .region = NULL };

			rc = cfg_endpoint_check(&e, &tmp, im->err, im->errlen);
			cfg_ep_row_fini(&tmp);
			if (rc < 0)
				return wrap(im, rc, ew);
			for (size_t k = 0; k < f->neps; k++)
				if (strcmp(f->eps[k].target, tmp.target) == 0)
					return wrap(im, store_errf(im->err,
					        im->errlen, -EEXIST, "%s is already "
					        "an endpoint of %s", tmp.target,
					        f->svc.name), ew);
			return wrap(im, store_errf(im->err, im->errlen, -EINVAL,
			                           "%s already has %zu endpoints, "
			                           "the most one service may have",
			                           f->svc.name, f->neps), ew);
		}
		if ((rc = cfg_endpoint_check(&e, r, im->err, im->errlen)) < 0)
			return wrap(im, rc, ew);
		for (size_t k = 0; k < f->neps; k++)
			if (strcmp(f->eps[k].target, r->target) == 0)
				return wrap(im, store_errf(im->err, im->errlen,
				            -EEXIST, "%s is already an endpoint of "
				            "%s", r->target, f->svc.name), ew);
		f->neps++;
	}
	rules = json_object_get(o, "rules");
	if (rules && !json_is_null(rules) && !json_is_array(rules))
		return store_errf(im->err, im->errlen, -EINVAL, "%s: 'rules' must "
		                  "be a list", where);
	json_array_foreach(rules, j, v) {
		const char *match, *tg[SVC_MAX_ENDPOINTS];
		struct fresh_rule *r;
		size_t nt;

		snprintf(ew, sizeof ew, "%s rules[%zu]", where, j);
		if ((rc = cfg_rule_parse(v, &match, tg, &nt, ew, im->err,
		                         im->errlen)) < 0)
			return rc;
		if (f->nrules == f->cap) {
			size_t cap = f->cap ? 2 * f->cap : 8;
			struct fresh_rule *nr = realloc(f->rules,
			                                cap * sizeof *nr);

			if (!nr)
				return store_errf(im->err, im->errlen, -ENOMEM,
				                  "import: out of memory");
			f->rules = nr;
			f->cap = cap;
		}
		r = &f->rules[f->nrules];
		if ((rc = cfg_match_parse(match, r->kind, r->pat, im->err,
		                          im->errlen)) < 0)
			return wrap(im, rc, ew);
		for (size_t k = 0; k < f->nrules; k++)
			if (strcmp(f->rules[k].kind, r->kind) == 0 &&
			    strcmp(f->rules[k].pat, r->pat) == 0) {
				bool cidr = strcmp(r->kind, "cidr") == 0;

				return wrap(im, store_errf(im->err, im->errlen,
				            -EEXIST, "rule %s%s%s of %s already "
				            "exists", cidr ? "" : r->kind,
				            cidr ? "" : ":", r->pat, f->svc.name),
				            ew);
			}
		snprintf(r->match, sizeof r->match, "%s%s%s",
		         strcmp(r->kind, "cidr") ? r->kind : "",
		         strcmp(r->kind, "cidr") ? ":" : "", r->pat);
		r->nt = 0;
		for (size_t k = 0; k < nt; k++) {
			char t[256];
			size_t m = 0;

			if ((rc = cfg_canon_target(tg[k], t, im->err,
			                           im->errlen)) < 0)
				return wrap(im, rc, ew);
			while (m < f->neps && strcmp(f->eps[m].target, t))
				m++;
			if (m == f->neps)
				return wrap(im, store_errf(im->err, im->errlen,
				            -ENOENT, "%s is not an endpoint of %s",
				            t, f->svc.name), ew);
			for (size_t q = 0; q < r->nt; q++)
				if (r->t[q] == m)
					return wrap(im, store_errf(im->err,
					            im->errlen, -EEXIST, "rule %s: "
					            "target %s given twice", match,
					            t), ew);
			r->t[r->nt++] = m;
		}
		f->nrules++;
	}
	return 0;
}

/* Keeps one change of a new service in the plan table. */
static int fresh_rec(struct imp *im, int rank, const char *kind,
                     const char *key, const char *new)
{
	im->changes++;
	return put(im, im->rec, rank, im->fr->svc.name, key, "add", kind,
	           NULL, NULL, new);
}

/* The targets of rule r of the new service, sorted, as JSON text (the
 * planner's form of an added rule's targets). */
static char *fresh_targets(const struct fresh *f, const struct fresh_rule *r)
{
	json_t *a = json_array();
	const char *t[SVC_MAX_ENDPOINTS];
	char *s;

	for (size_t k = 0; k < r->nt; k++) {
		size_t j = k;

		/* Insertion sort: a rule names a few targets. */
		while (j > 0 && strcmp(t[j - 1], f->eps[r->t[k]].target) > 0) {
			t[j] = t[j - 1];
			j--;
		}
		t[j] = f->eps[r->t[k]].target;
	}
	for (size_t k = 0; a && k < r->nt; k++)
		json_array_append_new(a, json_string(t[k]));
	s = a ? json_dumps(a, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
	json_decref(a);
	return s;
}

/* The audit row of the new service (db/audit_sql.h cfg_added_text). */
static int fresh_audit(struct imp *im)
{
	struct fresh *f = im->fr;
	const char *eps[SVC_MAX_ENDPOINTS], **tg = NULL;
	struct cfg_added_rule *r = NULL;
	char *text = NULL;
	size_t at = 0, total = 0;
	int rc;

	for (size_t k = 0; k < f->neps; k++)
		eps[k] = f->eps[f->order[k]].target;
	for (size_t k = 0; k < f->nrules; k++)
		total += f->rules[k].nt;
	if (f->nrules && (!(r = calloc(f->nrules, sizeof *r)) ||
	                  !(tg = calloc(total, sizeof *tg))))
		goto out;
	for (size_t k = 0; k < f->nrules; k++) {
		const struct fresh_rule *fr = &f->rules[k];
		const char **t = tg + at;

		/* Targets sorted (insertion sort: a rule names a few). */
		for (size_t q = 0; q < fr->nt; q++) {
			size_t j = q;

			while (j > 0 && strcmp(t[j - 1],
			                       f->eps[fr->t[q]].target) > 0) {
				t[j] = t[j - 1];
				j--;
			}
			t[j] = f->eps[fr->t[q]].target;
		}
		r[k] = (struct cfg_added_rule){ fr->match, t, fr->nt };
		at += fr->nt;
	}
	text = cfg_added_text(eps, f->neps, r, f->nrules);
out:
	free(r);
	free(tg);
	if (!text)
		return store_errf(im->err, im->errlen, -ENOMEM,
		                  "import: out of memory");
	rc = put(im, im->arec, 0, f->svc.name, NULL, "add", "service", NULL,
	         NULL, text);
	free(text);
	return rc;
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

static void bind_real_or_null(sqlite3_stmt *st, int i, double d)
{
	if (isnan(d))
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_double(st, i, d);
}

static int step_reset(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

/* Writes the new service's rows, as the planner's apply would: the
 * service, its endpoints by target (ids one above the highest in use or
 * ever removed), its rules by match with their targets. */
static int fresh_apply(struct imp *im)
{
	struct fresh *f = im->fr;
	const struct cfg_svc_row *v = &f->svc;
	sqlite3_stmt **ins = im->ins;
	long long sid;
	char what[400];

	snprintf(what, sizeof what, "+ service %s", v->name);
	sqlite3_bind_text(ins[0], 1, v->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(ins[0], 2, svc_policy_name((unsigned)v->policy), -1,
	                  SQLITE_STATIC);
	sqlite3_bind_int64(ins[0], 3, v->ttl);
	if (v->answers)
		sqlite3_bind_int64(ins[0], 4, v->answers);
	else
		sqlite3_bind_null(ins[0], 4);
	sqlite3_bind_int64(ins[0], 5, v->sticky);
	sqlite3_bind_text(ins[0], 6, v->when_down, -1, SQLITE_STATIC);
	bind_real_or_null(ins[0], 7, v->fill);
	if (step_reset(ins[0]) < 0)
		goto fail;
	sid = sqlite3_last_insert_rowid(im->h);
	if (f->neps && !im->next_ep) {
		sqlite3_stmt *st = NULL;

		if (sqlite3_prepare_v2(im->h, "SELECT " CFG_EP_NEW_ID, -1, &st,
		                       NULL) == SQLITE_OK &&
		    sqlite3_step(st) == SQLITE_ROW)
			im->next_ep = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
		if (!im->next_ep)
			goto fail;
	}
	for (size_t k = 0; k < f->neps; k++) {
		const struct cfg_ep_row *r = &f->eps[f->order[k]];
		sqlite3_stmt *e = ins[1];

		snprintf(what, sizeof what, "+ endpoint %s %s", v->name,
		         r->target);
		f->id[f->order[k]] = im->next_ep;
		sqlite3_bind_int64(e, 1, im->next_ep++);
		sqlite3_bind_int64(e, 2, sid);
		sqlite3_bind_text(e, 3, r->target, -1, SQLITE_STATIC);
		sqlite3_bind_int64(e, 4, r->weight);
		sqlite3_bind_int64(e, 5, r->priority);
		bind_text_or_null(e, 6, r->region);
		bind_real_or_null(e, 7, r->has_loc ? r->lat : NAN);
		bind_real_or_null(e, 8, r->has_loc ? r->lon : NAN);
		sqlite3_bind_double(e, 9, r->bias);
		sqlite3_bind_text(e, 10, svc_admin_name((unsigned)r->admin), -1,
		                  SQLITE_STATIC);
		sqlite3_bind_int64(e, 11, r->drained);
		bind_text_or_null(e, 12, r->check_url);
		bind_real_or_null(e, 13, r->interval);
		bind_real_or_null(e, 14, r->timeout);
		sqlite3_bind_int64(e, 15, r->rise);
		sqlite3_bind_int64(e, 16, r->fall);
		sqlite3_bind_int64(e, 17, r->tls_verify);
		bind_text_or_null(e, 18, r->expect);
		bind_text_or_null(e, 19, r->body);
		bind_text_or_null(e, 20, r->host);
		bind_real_or_null(e, 21, r->capacity);
		if (step_reset(e) < 0)
			goto fail;
	}
	for (size_t k = 0; k < f->nrules; k++) {
		const struct fresh_rule *r = &f->rules[k];
		long long rid;

		snprintf(what, sizeof what, "+ rule %s %s", v->name, r->match);
		sqlite3_bind_int64(ins[2], 1, sid);
		sqlite3_bind_text(ins[2], 2, r->kind, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins[2], 3, r->pat, -1, SQLITE_STATIC);
		if (step_reset(ins[2]) < 0)
			goto fail;
		rid = sqlite3_last_insert_rowid(im->h);
		for (size_t q = 0; q < r->nt; q++) {
			sqlite3_bind_int64(ins[3], 1, rid);
			sqlite3_bind_int64(ins[3], 2, f->id[r->t[q]]);
			if (step_reset(ins[3]) < 0)
				goto fail;
		}
	}
	return 0;
fail:
	return store_sqlerr(im->h, im->apply_msg, sizeof im->apply_msg, what);
}

/* The new service in im->fr: planned (only additions), recorded and,
 * unless the import is a dry run or sure to fail, written. */
static int fresh_service(struct imp *im)
{
	struct fresh *f = im->fr;
	int rc;

	if ((rc = fresh_rec(im, 0, "service", NULL, NULL)) < 0)
		return rc;
	for (size_t k = 0; k < f->neps; k++)
		if ((rc = fresh_rec(im, 1, "endpoint",
		                    f->eps[f->order[k]].target, NULL)) < 0)
			return rc;
	for (size_t k = 0; k < f->nrules; k++) {
		char *t = fresh_targets(f, &f->rules[k]);

		if (!t)
			return store_errf(im->err, im->errlen, -ENOMEM,
			                  "import: out of memory");
		rc = fresh_rec(im, 2, "rule", f->rules[k].match, t);
		free(t);
		if (rc < 0)
			return rc;
	}
	if (im->arec && (rc = fresh_audit(im)) < 0)
		return rc;
	if (im->dry || im->bad[0] || im->bad[1] || im->bad[2] ||
	    im->apply_rc < 0)
		return 0;
	if ((rc = fresh_apply(im)) < 0)
		im->apply_rc = rc;
	return 0;
}

/* ------------------------------------------------- unchanged services */

/* A service the store has, checked in C (struct fresh), compared with its
 * rows as the planner compares them (db/diff.c: numbers by value, NULL
 * only equals NULL, check settings ignored when neither side has a
 * check). Equal: nothing to plan or write. Different: the scratch store
 * and the planner make its plan. */
static bool eq_int(sqlite3_stmt *st, int col, long long v)
{
	switch (sqlite3_column_type(st, col)) {
	case SQLITE_INTEGER:
		return sqlite3_column_int64(st, col) == v;
	case SQLITE_FLOAT:
		return sqlite3_column_double(st, col) == (double)v;
	default:
		return false;
	}
}

/* v NAN: NULL. */
static bool eq_real(sqlite3_stmt *st, int col, double v)
{
	switch (sqlite3_column_type(st, col)) {
	case SQLITE_NULL:
		return isnan(v);
	case SQLITE_INTEGER:
	case SQLITE_FLOAT:
		return !isnan(v) && sqlite3_column_double(st, col) == v;
	default:
		return false;
	}
}

/* v NULL: NULL. */
static bool eq_text(sqlite3_stmt *st, int col, const char *v)
{
	int t = sqlite3_column_type(st, col);

	if (t == SQLITE_NULL || !v)
		return t == SQLITE_NULL && !v;
	return t == SQLITE_TEXT &&
	       strcmp((const char *)sqlite3_column_text(st, col), v) == 0;
}

static bool same_endpoint(sqlite3_stmt *st, const struct cfg_ep_row *r)
{
	if (!eq_text(st, 0, r->target) || !eq_int(st, 1, r->weight) ||
	    !eq_int(st, 2, r->priority) || !eq_text(st, 3, r->region) ||
	    !eq_real(st, 4, r->has_loc ? r->lat : NAN) ||
	    !eq_real(st, 5, r->has_loc ? r->lon : NAN) ||
	    !eq_real(st, 6, r->bias) ||
	    !eq_text(st, 7, svc_admin_name((unsigned)r->admin)) ||
	    !eq_int(st, 8, r->drained) || !eq_text(st, 9, r->check_url) ||
	    !eq_real(st, 18, r->capacity))
		return false;
	if (!r->check_url && sqlite3_column_type(st, 9) == SQLITE_NULL)
		return true;
	return eq_real(st, 10, r->interval) && eq_real(st, 11, r->timeout) &&
	       eq_int(st, 12, r->rise) && eq_int(st, 13, r->fall) &&
	       eq_int(st, 14, r->tls_verify) && eq_text(st, 15, r->expect) &&
	       eq_text(st, 16, r->body) && eq_text(st, 17, r->host);
}

/* Steps st (bound to the service's name) through its rows; *same stays
 * true while each row n matches. Returns 0 or -EIO; leaves st reset. */
static int same_rows(struct imp *im, int q, bool *same)
{
	struct fresh *f = im->fr;
	sqlite3_stmt *st = im->cur[q];
	size_t n = 0;
	int s;

	sqlite3_bind_text(st, 1, f->svc.name, -1, SQLITE_STATIC);
	while (*same && (s = sqlite3_step(st)) == SQLITE_ROW) {
		if (q == 0) {
			const struct cfg_svc_row *v = &f->svc;

			*same = eq_text(st, 0, svc_policy_name(
			                        (unsigned)v->policy)) &&
			        eq_int(st, 1, v->ttl) &&
			        (v->answers ? eq_int(st, 2, v->answers) :
			         sqlite3_column_type(st, 2) == SQLITE_NULL) &&
			        eq_int(st, 3, v->sticky) &&
			        eq_text(st, 4, v->when_down) &&
			        eq_real(st, 5, v->fill);
		} else if (q == 1) {
			*same = n < f->neps &&
			        same_endpoint(st, &f->eps[f->order[n]]);
		} else {
			char *t = NULL;

			if (n < f->nrules) {
				/* The planner's form: targets space-separated. */
				char *j = fresh_targets(f, &f->rules[n]);
				json_t *a = j ? json_loads(j, 0, NULL) : NULL;
				size_t m = 0, k;
				json_t *x;

				t = calloc(1, 256 * SVC_MAX_ENDPOINTS);
				json_array_foreach(a, k, x)
					if (t)
						m += (size_t)sprintf(t + m, "%s%s",
						        m ? " " : "",
						        json_string_value(x));
				json_decref(a);
				free(j);
			}
			*same = t && eq_text(st, 0, f->rules[n].match) &&
			        eq_text(st, 1, t);
			free(t);
		}
		n++;
	}
	if (*same && s != SQLITE_DONE && s != SQLITE_ROW) {
		sqlite3_reset(st);
		return -EIO;
	}
	if (*same)
		*same = n == (q == 0 ? 1 : q == 1 ? f->neps : f->nrules);
	sqlite3_reset(st);
	return 0;
}

/* Whether the stored service equals im->fr. 0 or -EIO with err. */
static int same_as_stored(struct imp *im, bool *same)
{
	*same = true;
	for (int q = 0; *same && q < 3; q++)
		if (same_rows(im, q, same) < 0)
			return store_sqlerr(im->h, im->err, im->errlen, "import");
	return 0;
}

static int on_service(void *arg, size_t i, json_t *o,
                      const struct jstream_pos *pos)
{
	struct imp *im = arg;
	const char *raw = json_string_value(json_object_get(o, "name"));
	const json_t *sh = json_object_get(o, "shift");
	const json_t *dm = json_object_get(o, "damping");
	bool steers = (sh && !json_is_null(sh)) || (dm && !json_is_null(dm));
	char canon[256] = "", e2[64];
	bool named = raw && cfg_canon_name(raw, canon, e2, sizeof e2) == 0;
	int rc;

	/* A name seen before fails as the insert of a duplicate does. */
	if (named && names_has(&im->seen, canon))
		return at(im, store_errf(im->err, im->errlen, -EEXIST,
		                         "services[%zu] (%s): service %s "
		                         "already exists", i, raw, canon),
		          pos);
	/* Neither side with a shift or damping thresholds (which only the
	 * scratch store checks): a service the store does not have is
	 * checked and written directly; one it has is compared with its rows
	 * first and planned only when it differs. */
	if (named && !steers && !names_has(&im->steered, canon)) {
		bool stored = names_has(&im->stored, canon), same = false;

		if ((rc = fresh_check(im, o, i)) < 0)
			return at(im, rc, pos);
		fresh_sort(im->fr);
		if (stored && (rc = same_as_stored(im, &same)) < 0)
			return rc;
		if (!stored || same) {
			if (names_add(&im->seen, canon) < 0)
				return store_errf(im->err, im->errlen, -ENOMEM,
				                  "import: out of memory");
			if (im->out && im->out->service)
				im->out->service(im->out->arg, canon);
			if (!stored && (rc = fresh_service(im)) < 0)
				return rc;
			im->services++;
			im->prog.bytes = pos->byte;
			progress(im, false);
			return 0;
		}
	}
	if ((rc = cfg_import_service(im->want, o, i, im->err,
	                             im->errlen)) < 0)
		return at(im, rc, pos);
	if (names_add(&im->seen, canon) < 0)
		return store_errf(im->err, im->errlen, -ENOMEM,
		                  "import: out of memory");
	if (im->out && im->out->service)
		im->out->service(im->out->arg, canon);
	/* The planner reads the scratch store by name: it is emptied now
	 * and then, not after each service. */
	im->services++;
	if ((rc = one_service(im, canon, steers)) < 0 ||
	    (++im->scratched % SCRATCH_SERVICES == 0 &&
	     (rc = clear_scratch(im)) < 0))
		return rc;
	im->prog.bytes = pos->byte;
	progress(im, false);
	return 0;
}

static int on_member(void *arg, const char *key, json_t *v,
                     const struct jstream_pos *pos)
{
	static const char *const keys[] = { "version", "services" };
	struct imp *im = arg;
	const char *near;

	if (strcmp(key, "version") == 0) {
		if (json_is_null(v))
			return 0;
		if (!json_is_integer(v))
			return at(im, store_errf(im->err, im->errlen, -EINVAL,
			                         "import: 'version' must be an "
			                         "integer"), pos);
		if (json_integer_value(v) != 1)
			return at(im, store_errf(im->err, im->errlen, -EINVAL,
			                         "import: version %lld is not "
			                         "supported (1)", (long long)
			                         json_integer_value(v)), pos);
		return 0;
	}
	if (strcmp(key, "services") == 0)
		return at(im, store_errf(im->err, im->errlen, -EINVAL,
		                         "import: 'services' must be a list"),
		          pos);
	near = spell_nearest(key, keys, 2);
	return at(im, store_errf(im->err, im->errlen, -EINVAL, "import: "
	                         "unknown key '%s'%s%s%s", key,
	                         near ? " (did you mean '" : "",
	                         near ? near : "", near ? "'?)" : ""), pos);
}

/* Removes the services the document did not name, in name order. */
static int remove_unseen(struct imp *im)
{
	sqlite3_stmt *st = NULL;
	char **gone = NULL;
	size_t n = 0, cap = 0;
	int rc = 0, s;

	if (sqlite3_prepare_v2(im->h, "SELECT name FROM services ORDER BY name",
	                       -1, &st, NULL) != SQLITE_OK)
		return store_sqlerr(im->h, im->err, im->errlen, "import");
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);

		if (names_has(&im->seen, name))
			continue;
		if (n == cap) {
			char **g = realloc(gone, (cap = cap ? 2 * cap : 64) *
			                         sizeof *g);

			if (!g) {
				rc = -ENOMEM;
				break;
			}
			gone = g;
		}
		if (!(gone[n] = strdup(name))) {
			rc = -ENOMEM;
			break;
		}
		n++;
	}
	sqlite3_finalize(st);
	if (rc == 0 && s != SQLITE_DONE)
		rc = store_sqlerr(im->h, im->err, im->errlen, "import");
	else if (rc == -ENOMEM)
		store_errf(im->err, im->errlen, rc, "import: out of memory");
	im->removed = n;
	if (rc == 0 && n > 0 && im->guard) {
		im->bad[0] = true;
		snprintf(im->bad_name[0], sizeof im->bad_name[0], "%s",
		         gone[0]);
		snprintf(im->bad_msg[0], sizeof im->bad_msg[0], "would remove "
		         "service %s: its name stops answering (%zu service%s "
		         "removed in all); give --force (API: \"force\": true)",
		         gone[0], n, n == 1 ? "" : "s");
	}
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = one_service(im, gone[i], false);
	for (size_t i = 0; i < n; i++)
		free(gone[i]);
	free(gone);
	return rc;
}

/* The text line of a change as db/diff.h prints it, from its object. */
static void val_text(const json_t *v, char *out, size_t n)
{
	if (json_is_string(v))
		snprintf(out, n, "%s", json_string_value(v));
	else if (json_is_boolean(v))
		snprintf(out, n, "%s", json_is_true(v) ? "true" : "false");
	else if (json_is_integer(v))
		snprintf(out, n, "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v))
		snprintf(out, n, "%.15g", json_real_value(v));
	else
		snprintf(out, n, "null");
}

static void change_line(const json_t *c, char *out, size_t outlen)
{
	const char *op = json_string_value(json_object_get(c, "op"));
	const char *kind = json_string_value(json_object_get(c, "kind"));
	const char *key = json_string_value(json_object_get(c, "target"));
	const json_t *t = json_object_get(c, "targets"), *v;
	char a[256], b[256];
	size_t i;
	int n;

	if (!key)
		key = json_string_value(json_object_get(c, "match"));
	n = snprintf(out, outlen, "%c %s %s%s%s", op[0] == 'a' ? '+' :
	             op[0] == 'r' ? '-' : '~', kind,
	             json_string_value(json_object_get(c, "service")),
	             key ? " " : "", key ? key : "");
	if (n < 0 || (size_t)n >= outlen)
		return;
	if (json_object_get(c, "field")) {
		val_text(json_object_get(c, "old"), a, sizeof a);
		val_text(json_object_get(c, "new"), b, sizeof b);
		snprintf(out + n, outlen - (size_t)n, " %s: %s -> %s",
		         json_string_value(json_object_get(c, "field")), a, b);
	} else if (t) {
		size_t m = 0;

		a[0] = '\0';
		json_array_foreach(t, i, v)
			if (m < sizeof a)
				m += (size_t)snprintf(a + m, sizeof a - m, "%s%s",
				                      m ? " " : "",
				                      json_string_value(v));
		snprintf(out + n, outlen - (size_t)n, " -> %s", a);
	}
}

/* Reads the plan table back in plan order: to the caller and the log. */
static int report(struct imp *im, long long version)
{
	bool logs = !im->dry && cfg_record_logs();
	sqlite3_stmt *st = NULL;
	size_t i = 0;
	int s;

	if (!logs && (!im->out || !im->out->change))
		return 0;
	if (sqlite3_prepare_v2(im->h, "SELECT op, kind, service, key, field, "
	                       "old, new FROM " PLAN_TABLE " ORDER BY "
	                       PLAN_ORDER, -1, &st, NULL) != SQLITE_OK)
		return store_sqlerr(im->h, im->err, im->errlen, "import");
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		const char *kind = (const char *)sqlite3_column_text(st, 1);
		const char *key = (const char *)sqlite3_column_text(st, 3);
		const char *old = (const char *)sqlite3_column_text(st, 5);
		const char *nv = (const char *)sqlite3_column_text(st, 6);
		json_t *c = json_pack("{s:s, s:s, s:s}", "op",
		                      sqlite3_column_text(st, 0), "kind", kind,
		                      "service", sqlite3_column_text(st, 2));
		char line[1024];

		if (!c)
			break;
		if (key)
			json_object_set_new(c, strcmp(kind, "rule") == 0 ?
			                    "match" : "target", json_string(key));
		if (sqlite3_column_type(st, 4) != SQLITE_NULL) {
			json_object_set_new(c, "field", json_string(
			        (const char *)sqlite3_column_text(st, 4)));
			json_object_set_new(c, "old", old ? json_loads(old,
			                    JSON_DECODE_ANY, NULL) : json_null());
			json_object_set_new(c, "new", nv ? json_loads(nv,
			                    JSON_DECODE_ANY, NULL) : json_null());
		} else if (nv) {
			json_object_set_new(c, "targets", json_loads(nv,
			                    JSON_DECODE_ANY, NULL));
		}
		change_line(c, line, sizeof line);
		if (im->out && im->out->change)
			im->out->change(im->out->arg, line, c);
		if (logs)
			cfg_record_log(version, "import", i, im->changes, line,
			               c);
		json_decref(c);
		i++;
	}
	sqlite3_finalize(st);
	if (s != SQLITE_DONE)
		return store_sqlerr(im->h, im->err, im->errlen, "import");
	return 0;
}

/* The first guard failure, as cfg_plan_guard reports it for the whole
 * plan. */
static int guard_result(struct imp *im)
{
	for (int r = 0; r < 3; r++)
		if (im->bad[r])
			return store_errf(im->err, im->errlen, -EPERM, "%s",
			                  im->bad_msg[r]);
	if (im->apply_rc < 0)
		return store_errf(im->err, im->errlen, im->apply_rc, "%s",
		                  im->apply_msg);
	return 0;
}

/* Reads in through the parser. */
static int read_all(struct imp *im, FILE *in)
{
	static const struct jstream_cb cb = { on_member, on_service };
	struct jstream *js = jstream_new("services", MAX_SERVICE_BYTES, &cb,
	                                 im);
	char *buf = malloc(CHUNK), perr[600];
	size_t n;
	int rc = 0;

	if (!js || !buf) {
		rc = store_errf(im->err, im->errlen, -ENOMEM,
		                "import: out of memory");
		goto out;
	}
	perr[0] = '\0';
	while (rc == 0 && (n = fread(buf, 1, CHUNK, in)) > 0) {
		im->err[0] = '\0';
		rc = jstream_feed(js, buf, n, perr, sizeof perr);
		im->prog.bytes = jstream_bytes(js);
		if (rc == 0)
			progress(im, false);
	}
	if (rc == 0 && ferror(in))
		rc = store_errf(im->err, im->errlen, -EIO, "import: read error");
	if (rc == 0)
		rc = jstream_finish(js, perr, sizeof perr);
	/* A parse error is the parser's; a callback's is already in err. */
	if (rc < 0 && perr[0])
		store_errf(im->err, im->errlen, rc, "import: %s", perr);
	im->services_seen = js && jstream_streamed(js);
out:
	jstream_free(js);
	free(buf);
	return rc;
}

static int run_import(struct imp *im, FILE *in)
{
	int rc;

	if ((rc = read_all(im, in)) < 0)
		return rc;
	if (!im->services_seen)
		return store_errf(im->err, im->errlen, -EINVAL,
		                  "import: 'services' must be a list");
	if ((rc = remove_unseen(im)) < 0)
		return rc;
	return guard_result(im);
}

static long long pragma_int(sqlite3 *h, const char *sql)
{
	sqlite3_stmt *st = NULL;
	long long v = -2000;

	if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

int cfg_import_stream(struct store *db, FILE *in, unsigned flags,
                      const struct cfg_import_out *out,
                      struct cfg_import_result *res, char *err,
                      size_t errlen)
{
	const struct cfg_write *w = cfg_write_current();
	struct imp im = { .db = db, .h = db->h, .out = out, .err = err,
	                  .errlen = errlen };
	bool reported = out && out->change;
	long long version = 0, old_cache = -2000;
	char sql[64];
	bool began = false;
	struct stat sb;
	int rc;

	if (errlen)
		err[0] = '\0';
	im.dry = (flags & CFG_IMPORT_DRY_RUN) || w->dry_run;
	im.guard = !im.dry && !w->force;
	clock_gettime(CLOCK_MONOTONIC, &im.t0);
	im.last = im.t0;
	if (fstat(fileno(in), &sb) == 0 && S_ISREG(sb.st_mode))
		im.prog.total = (unsigned long long)sb.st_size;
	if ((rc = store_open(":memory:", STORE_CREATE, &im.want, err,
	                     errlen)) < 0)
		return rc;
	cfg_edit_keep(im.want, true);
	/* The scratch store holds one service at a time: emptied without
	 * cascades (the tables in order), so without foreign keys. */
	if (store_exec(im.want->h, "PRAGMA foreign_keys = OFF") < 0 ||
	    store_begin(im.want->h, true) < 0 ||
	    sqlite3_prepare_v2(im.want->h, "DELETE FROM rule_targets",
	                       -1, &im.clear[0], NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(im.want->h, "DELETE FROM rules", -1,
	                       &im.clear[1], NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(im.want->h, "DELETE FROM endpoints", -1,
	                       &im.clear[2], NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(im.want->h, "DELETE FROM services", -1,
	                       &im.clear[3], NULL) != SQLITE_OK) {
		rc = store_sqlerr(im.want->h, err, errlen, "import");
		goto out;
	}
	/* A larger page cache for the import's connection (bounded). */
	old_cache = pragma_int(im.h, "PRAGMA cache_size");
	store_exec(im.h, "PRAGMA cache_size = -" IMPORT_CACHE_KB);
	if (store_begin(im.h, !im.dry) < 0) {
		rc = store_sqlerr(im.h, err, errlen, "begin");
		goto out;
	}
	began = true;
	/* Each change is kept for the report only when someone reads it
	 * (not with --quiet): a million new services are five million
	 * changes. The audit rows are kept for a real import. */
	if (store_exec(im.h, "CREATE TEMP TABLE IF NOT EXISTS import_plan ("
	               "rank INTEGER, service TEXT, key TEXT, seq INTEGER, "
	               "op TEXT, kind TEXT, field TEXT, old TEXT, new TEXT); "
	               "DELETE FROM " PLAN_TABLE "; "
	               "CREATE TEMP TABLE IF NOT EXISTS import_audit AS "
	               "SELECT * FROM " PLAN_TABLE " WHERE 0; "
	               "DELETE FROM " AUDIT_TABLE) < 0 ||
	    ((reported || (!im.dry && cfg_record_logs())) &&
	     sqlite3_prepare_v2(im.h, "INSERT INTO " PLAN_TABLE " VALUES (?, "
	                        "?, ?, ?, ?, ?, ?, ?, ?)", -1, &im.rec, NULL) !=
	            SQLITE_OK) ||
	    (!im.dry &&
	     sqlite3_prepare_v2(im.h, "INSERT INTO " AUDIT_TABLE " VALUES (?, "
	                        "?, ?, ?, ?, ?, ?, ?, ?)", -1, &im.arec, NULL) !=
	            SQLITE_OK) ||
	    cfg_planner_new(im.h, im.want->h, &im.pl) < 0 ||
	    sqlite3_prepare_v2(im.h, "INSERT INTO services (name, policy, "
	                       "ttl, answers, sticky, when_down, fill) VALUES "
	                       "(?, ?, ?, ?, ?, ?, ?)", -1, &im.ins[0], NULL) !=
	            SQLITE_OK ||
	    sqlite3_prepare_v2(im.h, "INSERT INTO endpoints (id, service_id, "
	                       CFG_EP_COLS ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, "
	                       "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", -1,
	                       &im.ins[1], NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(im.h, "INSERT INTO rules (service_id, kind, "
	                       "pattern) VALUES (?, ?, ?)", -1, &im.ins[2],
	                       NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(im.h, "INSERT INTO rule_targets (rule_id, "
	                       "endpoint_id) VALUES (?, ?)", -1, &im.ins[3],
	                       NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(im.h, "SELECT policy, ttl, answers, sticky, "
	                       "when_down, fill FROM services WHERE name = ?1",
	                       -1, &im.cur[0], NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(im.h, "SELECT " CFG_EP_COLS " FROM services s "
	                       "JOIN endpoints e ON e.service_id = s.id WHERE "
	                       "s.name = ?1 ORDER BY e.target", -1, &im.cur[1],
	                       NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(im.h, "SELECT CASE r.kind WHEN 'cidr' THEN "
	                       "r.pattern ELSE r.kind || ':' || r.pattern END "
	                       "AS m, (SELECT group_concat(t, ' ') FROM (SELECT "
	                       "e.target AS t FROM rule_targets rt JOIN "
	                       "endpoints e ON e.id = rt.endpoint_id WHERE "
	                       "rt.rule_id = r.id ORDER BY e.target)) FROM "
	                       "services s JOIN rules r ON r.service_id = s.id "
	                       "WHERE s.name = ?1 ORDER BY m", -1, &im.cur[2],
	                       NULL) != SQLITE_OK) {
		rc = store_sqlerr(im.h, err, errlen, "import");
		goto out;
	}
	if (!(im.fr = calloc(1, sizeof *im.fr))) {
		rc = store_errf(err, errlen, -ENOMEM, "import: out of memory");
		goto out;
	}
	if ((rc = names_fill(&im.stored, im.h, "SELECT name FROM "
	                     "services")) < 0 ||
	    (rc = names_fill(&im.steered, im.h, "SELECT s.name FROM services "
	                     "s JOIN shifts t ON t.service_id = s.id UNION ALL "
	                     "SELECT s.name FROM services s JOIN damping d ON "
	                     "d.service_id = s.id")) < 0) {
		if (rc == -ENOMEM)
			store_errf(err, errlen, rc, "import: out of memory");
		else
			store_sqlerr(im.h, err, errlen, "import");
		goto out;
	}
	if ((rc = run_import(&im, in)) < 0)
		goto out;
	if (!im.dry && im.changes > 0 &&
	    (rc = cfg_record_table(im.h, AUDIT_TABLE, PLAN_ORDER, "import",
	                           &version, err, errlen)) < 0)
		goto out;
	if (im.dry && (rc = report(&im, 0)) < 0)
		goto out;
	if (!im.dry) {
		if (store_commit(im.h) < 0) {
			rc = store_sqlerr(im.h, err, errlen, "commit");
			goto out;
		}
		began = false;
		rc = report(&im, version);
	}
out:
	sqlite3_finalize(im.rec);
	sqlite3_finalize(im.arec);
	for (int i = 0; i < 4; i++)
		sqlite3_finalize(im.ins[i]);
	for (int i = 0; i < 3; i++)
		sqlite3_finalize(im.cur[i]);
	if (im.fr) {
		for (size_t i = 0; i < SVC_MAX_ENDPOINTS; i++)
			cfg_ep_row_fini(&im.fr->eps[i]);
		free(im.fr->rules);
		free(im.fr);
	}
	for (int i = 0; i < 4; i++)
		sqlite3_finalize(im.clear[i]);
	cfg_planner_free(im.pl);
	if (began)
		store_rollback(im.h);
	store_exec(im.h, "DROP TABLE IF EXISTS " PLAN_TABLE "; DROP TABLE IF "
	           "EXISTS " AUDIT_TABLE);
	snprintf(sql, sizeof sql, "PRAGMA cache_size = %lld", old_cache);
	store_exec(im.h, sql);
	cfg_edit_keep(im.want, false);
	store_rollback(im.want->h);
	store_close(im.want);
	if (rc == 0) {
		progress(&im, true);
		if (res) {
			res->services = im.services;
			res->changes = im.changes;
			res->removed_services = im.removed;
			res->version = im.dry || im.changes == 0 ?
			               cfg_store_version(db) : version;
		}
	}
	names_fini(&im.seen);
	names_fini(&im.stored);
	names_fini(&im.steered);
	return rc;
}
