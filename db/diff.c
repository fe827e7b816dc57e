/* db/diff.c - configuration plans: diff two stores by identity, apply the
 * difference in place. Load time only; see db/diff.h. */
#include "db/diff.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/edit.h"
#include "db/diff_sql.h"
#include "db/store.h"
#include "db/store_sql.h"

enum { K_SERVICE, K_ENDPOINT, K_RULE };
enum { OP_ADD, OP_REMOVE, OP_CHANGE };

/* A compared column: its SQL name, its name in the export format, whether
 * the export shows it as a boolean. */
struct field {
	const char *col, *name;
	bool boolean;
};

/* Service columns after id and name, in SVC_Q order. */
static const struct field svc_fields[] = {
	{ "policy", "policy", false }, { "ttl", "ttl", false },
	{ "answers", "answers", false }, { "sticky", "sticky", true },
	{ "when_down", "when_down", false }, { "fill", "fill", false },
};
#define N_SVC_FIELDS (sizeof svc_fields / sizeof svc_fields[0])

/* Endpoint columns after target, in CFG_EP_COLS order. */
static const struct field ep_fields[] = {
	{ "weight", "weight", false }, { "priority", "priority", false },
	{ "region", "region", false }, { "lat", "lat", false },
	{ "lon", "lon", false }, { "bias", "bias", false },
	{ "admin", "admin", false }, { "drained", "drained", true },
	{ "check_url", "check.url", false },
	{ "check_interval", "check.interval", false },
	{ "check_timeout", "check.timeout", false },
	{ "check_rise", "check.rise", false },
	{ "check_fall", "check.fall", false },
	{ "check_tls_verify", "check.tls_verify", true },
	{ "check_expect", "check.expect", false },
	{ "check_body", "check.body", false },
	{ "check_host", "check.host", false },
	{ "capacity", "capacity", false },
};
#define N_EP_FIELDS (sizeof ep_fields / sizeof ep_fields[0])
#define EP_CHECK_URL 8          /* index of check_url in ep_fields */
#define EP_LAT 3                /* index of lat (lon follows) */

#define SVC_Q "SELECT id, name, policy, ttl, answers, sticky, when_down, " \
	"fill " \
	"FROM services ORDER BY name"
#define EP_Q "SELECT e.id, s.name, " CFG_EP_COLS " FROM endpoints e JOIN " \
	"services s ON s.id = e.service_id ORDER BY s.name, e.target"
#define RULE_MATCH "CASE r.kind WHEN 'cidr' THEN r.pattern ELSE " \
	"r.kind || ':' || r.pattern END"
#define RULE_Q "SELECT r.id, s.name, " RULE_MATCH " AS m, (SELECT " \
	"group_concat(t, ' ') FROM (SELECT e.target AS t FROM rule_targets " \
	"rt JOIN endpoints e ON e.id = rt.endpoint_id WHERE rt.rule_id = " \
	"r.id ORDER BY e.target)) FROM rules r JOIN services s ON s.id = " \
	"r.service_id ORDER BY s.name, m"

struct change {
	int op, kind;
	char *service, *key;    /* key: target (endpoint), match (rule) */
	const struct field *field;      /* change of a service/endpoint */
	sqlite3_value *old, *new;       /* change only */
	long long cur_id, want_id;      /* row ids in cur / want */
};

struct cfg_plan {
	struct change *c;
	size_t n, cap;
	size_t removed_services;
	sqlite3 *want;
	struct store *own_want; /* closed by cfg_plan_free (may be NULL) */
};

static int push(struct cfg_plan *p, int op, int kind, sqlite3_stmt *st,
                int keycol, const struct field *f, sqlite3_value *old,
                sqlite3_value *new, long long cur_id, long long want_id)
{
	struct change *c;

	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 64;
		struct change *nc = realloc(p->c, cap * sizeof *nc);

		if (!nc)
			return -ENOMEM;
		p->c = nc;
		p->cap = cap;
	}
	c = &p->c[p->n];
	memset(c, 0, sizeof *c);
	c->op = op;
	c->kind = kind;
	c->field = f;
	c->cur_id = cur_id;
	c->want_id = want_id;
	c->service = strdup((const char *)sqlite3_column_text(st, 1));
	if (keycol >= 0)
		c->key = strdup((const char *)sqlite3_column_text(st, keycol));
	if (old)
		c->old = sqlite3_value_dup(old);
	if (new)
		c->new = sqlite3_value_dup(new);
	p->n++;
	if (!c->service || (keycol >= 0 && !c->key) || (old && !c->old) ||
	    (new && !c->new))
		return -ENOMEM;
	if (kind == K_SERVICE && op == OP_REMOVE)
		p->removed_services++;
	return 0;
}

static bool val_eq(sqlite3_value *a, sqlite3_value *b)
{
	int ta = sqlite3_value_type(a), tb = sqlite3_value_type(b);

	if (ta == SQLITE_NULL || tb == SQLITE_NULL)
		return ta == tb;
	if ((ta == SQLITE_INTEGER || ta == SQLITE_FLOAT) &&
	    (tb == SQLITE_INTEGER || tb == SQLITE_FLOAT)) {
		if (ta == SQLITE_INTEGER && tb == SQLITE_INTEGER)
			return sqlite3_value_int64(a) == sqlite3_value_int64(b);
		return sqlite3_value_double(a) == sqlite3_value_double(b);
	}
	if (ta != tb)
		return false;
	return sqlite3_value_bytes(a) == sqlite3_value_bytes(b) &&
	       memcmp(sqlite3_value_blob(a), sqlite3_value_blob(b),
	              (size_t)sqlite3_value_bytes(a)) == 0;
}

/* Compares the keys of the current rows of a and b (nkeys text columns
 * from column 1): < 0 a first, > 0 b first. A finished side sorts last. */
static int key_cmp(sqlite3_stmt *a, bool a_row, sqlite3_stmt *b, bool b_row,
                   int nkeys)
{
	if (!a_row || !b_row)
		return a_row ? -1 : b_row ? 1 : 0;
	for (int i = 1; i <= nkeys; i++) {
		int c = strcmp((const char *)sqlite3_column_text(a, i),
		               (const char *)sqlite3_column_text(b, i));

		if (c)
			return c;
	}
	return 0;
}

/* Merges one table of cur (a) and want (b), statements ready to step,
 * both ordered by their keys: nkeys key columns from column 1, then nf
 * compared fields. Leaves a and b reset. */
static int merge_st(struct cfg_plan *p, sqlite3_stmt *a, sqlite3_stmt *b,
                    int kind, int nkeys, const struct field *fields,
                    size_t nf)
{
	int ra, rb, rc = 0, keycol = nkeys > 1 ? 2 : -1;
	int first = 1 + nkeys;  /* first compared column */

	ra = sqlite3_step(a);
	rb = sqlite3_step(b);
	while (rc == 0 && (ra == SQLITE_ROW || rb == SQLITE_ROW)) {
		int c = key_cmp(a, ra == SQLITE_ROW, b, rb == SQLITE_ROW, nkeys);

		if (c < 0) {
			rc = push(p, OP_REMOVE, kind, a, keycol, NULL, NULL, NULL,
			          sqlite3_column_int64(a, 0), 0);
			ra = sqlite3_step(a);
			continue;
		}
		if (c > 0) {
			rc = push(p, OP_ADD, kind, b, keycol, NULL, NULL, NULL, 0,
			          sqlite3_column_int64(b, 0));
			rb = sqlite3_step(b);
			continue;
		}
		for (size_t i = 0; rc == 0 && i < nf; i++) {
			sqlite3_value *va = sqlite3_column_value(a, first + (int)i);
			sqlite3_value *vb = sqlite3_column_value(b, first + (int)i);

			/* Without a check, its settings are not shown (the
			 * export prints "check": null) and do not matter. */
			if (fields == ep_fields && i > EP_CHECK_URL &&
			    strncmp(fields[i].name, "check.", 6) == 0 &&
			    sqlite3_column_type(a, first + EP_CHECK_URL) ==
			            SQLITE_NULL &&
			    sqlite3_column_type(b, first + EP_CHECK_URL) ==
			            SQLITE_NULL)
				continue;
			if (!val_eq(va, vb))
				rc = push(p, OP_CHANGE, kind, a, keycol,
				          fields ? &fields[i] : NULL, va, vb,
				          sqlite3_column_int64(a, 0),
				          sqlite3_column_int64(b, 0));
		}
		ra = sqlite3_step(a);
		rb = sqlite3_step(b);
	}
	if (rc == 0 && ((ra != SQLITE_DONE && ra != SQLITE_ROW) ||
	                (rb != SQLITE_DONE && rb != SQLITE_ROW)))
		rc = -EIO;
	sqlite3_reset(a);
	sqlite3_reset(b);
	return rc;
}

/* merge_st over whole tables: sql run on cur and on want. */
static int merge(struct cfg_plan *p, sqlite3 *cur, sqlite3 *want,
                 const char *sql, int kind, int nkeys,
                 const struct field *fields, size_t nf)
{
	sqlite3_stmt *a = NULL, *b = NULL;
	int rc = -EIO;

	if (sqlite3_prepare_v2(cur, sql, -1, &a, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(want, sql, -1, &b, NULL) == SQLITE_OK)
		rc = merge_st(p, a, b, kind, nkeys, fields, nf);
	sqlite3_finalize(a);
	sqlite3_finalize(b);
	return rc;
}

/* A rule compares one column: its targets, space-separated. */
static const struct field rule_fields[] = { { NULL, "targets", false } };

int cfg_plan_make(sqlite3 *cur, sqlite3 *want, struct store *own_want,
                  struct cfg_plan **out, char *err, size_t errlen)
{
	struct cfg_plan *p = calloc(1, sizeof *p);
	int rc;

	*out = NULL;
	if (!p) {
		store_close(own_want);
		return store_errf(err, errlen, -ENOMEM, "plan: out of memory");
	}
	p->want = want;
	p->own_want = own_want;
	rc = merge(p, cur, want, SVC_Q, K_SERVICE, 1, svc_fields,
	           N_SVC_FIELDS);
	if (rc == 0)
		rc = merge(p, cur, want, EP_Q, K_ENDPOINT, 2, ep_fields,
		           N_EP_FIELDS);
	if (rc == 0)
		rc = merge(p, cur, want, RULE_Q, K_RULE, 2, rule_fields, 1);
	if (rc < 0) {
		if (rc == -ENOMEM)
			store_errf(err, errlen, rc, "plan: out of memory");
		else
			store_sqlerr(cur, err, errlen, "plan");
		cfg_plan_free(p);
		return rc;
	}
	*out = p;
	return 0;
}

void cfg_plan_free(struct cfg_plan *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++) {
		free(p->c[i].service);
		free(p->c[i].key);
		sqlite3_value_free(p->c[i].old);
		sqlite3_value_free(p->c[i].new);
	}
	free(p->c);
	store_close(p->own_want);
	free(p);
}

size_t cfg_plan_size(const struct cfg_plan *p)
{
	return p ? p->n : 0;
}

size_t cfg_plan_removed_services(const struct cfg_plan *p)
{
	return p ? p->removed_services : 0;
}

/* ------------------------------------------------------------- apply */

/* Prepares sql on h into *st once, resets and clears it on reuse. */
static int stmt(sqlite3 *h, sqlite3_stmt **st, const char *sql)
{
	if (*st) {
		sqlite3_reset(*st);
		sqlite3_clear_bindings(*st);
		return 0;
	}
	return sqlite3_prepare_v2(h, sql, -1, st, NULL) == SQLITE_OK ? 0 : -EIO;
}

static int step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

/* Copies ncol columns of want's row (sel with ?1 = id) into ins from
 * parameter first on, then runs ins. */
static int copy_row(sqlite3 *want, sqlite3_stmt **sel, const char *selsql,
                    long long id, sqlite3_stmt *ins, int first, int ncol)
{
	int rc;

	if (stmt(want, sel, selsql) < 0)
		return -EIO;
	sqlite3_bind_int64(*sel, 1, id);
	if (sqlite3_step(*sel) != SQLITE_ROW)
		return -EIO;
	for (int i = 0; i < ncol; i++)
		sqlite3_bind_value(ins, first + i, sqlite3_column_value(*sel, i));
	rc = step_done(ins);
	sqlite3_reset(*sel);
	return rc;
}

/* Replaces the targets of cur's rule rule_id with those of want's rule
 * want_id (endpoints of the same service, by target). */
static int copy_targets(struct cfg_plan *p, sqlite3 *cur, long long rule_id,
                        long long want_id, const char *service,
                        sqlite3_stmt **sel, sqlite3_stmt **ins)
{
	int rc;

	if (stmt(p->want, sel, "SELECT e.target FROM rule_targets rt JOIN "
	         "endpoints e ON e.id = rt.endpoint_id WHERE rt.rule_id = ?") <
	            0 ||
	    stmt(cur, ins, "INSERT INTO rule_targets (rule_id, endpoint_id) "
	         "SELECT ?1, e.id FROM endpoints e JOIN services s ON s.id = "
	         "e.service_id WHERE s.name = ?2 AND e.target = ?3") < 0)
		return -EIO;
	sqlite3_bind_int64(*sel, 1, want_id);
	while ((rc = sqlite3_step(*sel)) == SQLITE_ROW) {
		sqlite3_bind_int64(*ins, 1, rule_id);
		sqlite3_bind_text(*ins, 2, service, -1, SQLITE_STATIC);
		sqlite3_bind_value(*ins, 3, sqlite3_column_value(*sel, 0));
		if (step_done(*ins) < 0 || sqlite3_changes(cur) != 1) {
			sqlite3_reset(*sel);
			return -EIO;
		}
	}
	sqlite3_reset(*sel);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

/* The statements of an apply, prepared on first use: fixed ones, then
 * one UPDATE per service field and per endpoint field. */
enum { S_SVC_SEL, S_SVC_INS, S_EP_SEL, S_EP_INS, S_RULE_SEL, S_RULE_INS,
       S_RT_SEL, S_RT_INS, S_RT_DEL, S_DEL_RULE, S_DEL_EP, S_DEL_SVC,
       S_LL_SEL, S_LL_UPD, S_N,
       S_UPD = S_N, S_ALL = S_N + N_SVC_FIELDS + N_EP_FIELDS };

static int apply_one(struct cfg_plan *p, sqlite3 *cur, const struct change *c,
                     sqlite3_stmt **s)
{
	char sql[160];
	sqlite3_stmt *up = NULL;
	int rc;

	if (c->op == OP_CHANGE && c->kind == K_ENDPOINT &&
	    (c->field == &ep_fields[EP_LAT] ||
	     c->field == &ep_fields[EP_LAT + 1])) {
		/* Both or neither (a CHECK): set together from want. */
		if (stmt(p->want, &s[S_LL_SEL], "SELECT lat, lon FROM endpoints "
		         "WHERE id = ?") < 0 ||
		    stmt(cur, &s[S_LL_UPD], "UPDATE endpoints SET lat = ?, lon = "
		         "? WHERE id = ?") < 0)
			return -EIO;
		sqlite3_bind_int64(s[S_LL_SEL], 1, c->want_id);
		if (sqlite3_step(s[S_LL_SEL]) != SQLITE_ROW) {
			sqlite3_reset(s[S_LL_SEL]);
			return -EIO;
		}
		sqlite3_bind_value(s[S_LL_UPD], 1,
		                   sqlite3_column_value(s[S_LL_SEL], 0));
		sqlite3_bind_value(s[S_LL_UPD], 2,
		                   sqlite3_column_value(s[S_LL_SEL], 1));
		sqlite3_bind_int64(s[S_LL_UPD], 3, c->cur_id);
		rc = step_done(s[S_LL_UPD]);
		sqlite3_reset(s[S_LL_SEL]);
		return rc;
	}
	if (c->op == OP_CHANGE && c->kind != K_RULE) {
		size_t slot = S_UPD + (c->kind == K_SERVICE ?
		              (size_t)(c->field - svc_fields) :
		              N_SVC_FIELDS + (size_t)(c->field - ep_fields));

		snprintf(sql, sizeof sql, "UPDATE %s SET %s = ? WHERE id = ?",
		         c->kind == K_SERVICE ? "services" : "endpoints",
		         c->field->col);
		if (stmt(cur, &s[slot], sql) < 0)
			return -EIO;
		up = s[slot];
		sqlite3_bind_value(up, 1, c->new);
		sqlite3_bind_int64(up, 2, c->cur_id);
		return step_done(up);
	}
	if (c->op == OP_CHANGE) {       /* a rule's targets */
		if (stmt(cur, &s[S_RT_DEL], "DELETE FROM rule_targets WHERE "
		         "rule_id = ?") < 0)
			return -EIO;
		sqlite3_bind_int64(s[S_RT_DEL], 1, c->cur_id);
		if (step_done(s[S_RT_DEL]) < 0)
			return -EIO;
		return copy_targets(p, cur, c->cur_id, c->want_id, c->service,
		                    &s[S_RT_SEL], &s[S_RT_INS]);
	}
	if (c->op == OP_ADD && c->kind == K_SERVICE) {
		if (stmt(cur, &s[S_SVC_INS], "INSERT INTO services (name, "
		         "policy, ttl, answers, sticky, when_down, fill) VALUES "
		         "(?, ?, ?, ?, ?, ?, ?)") < 0)
			return -EIO;
		return copy_row(p->want, &s[S_SVC_SEL], "SELECT name, policy, "
		                "ttl, answers, sticky, when_down, fill FROM "
		                "services WHERE id = ?", c->want_id, s[S_SVC_INS],
		                1, 7);
	}
	if (c->op == OP_ADD && c->kind == K_ENDPOINT) {
		if (stmt(cur, &s[S_EP_INS], "INSERT INTO endpoints (id, "
		         "service_id, " CFG_EP_COLS ") VALUES (" CFG_EP_NEW_ID
		         ", (SELECT id FROM services WHERE name = ?), ?, ?, ?, ?, "
		         "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)") < 0)
			return -EIO;
		sqlite3_bind_text(s[S_EP_INS], 1, c->service, -1, SQLITE_STATIC);
		return copy_row(p->want, &s[S_EP_SEL], "SELECT " CFG_EP_COLS
		                " FROM endpoints WHERE id = ?", c->want_id,
		                s[S_EP_INS], 2, 1 + (int)N_EP_FIELDS);
	}
	if (c->op == OP_ADD) {          /* a rule */
		if (stmt(cur, &s[S_RULE_INS], "INSERT INTO rules (service_id, "
		         "kind, pattern) VALUES ((SELECT id FROM services WHERE "
		         "name = ?), ?, ?)") < 0)
			return -EIO;
		sqlite3_bind_text(s[S_RULE_INS], 1, c->service, -1,
		                  SQLITE_STATIC);
		if ((rc = copy_row(p->want, &s[S_RULE_SEL], "SELECT kind, "
		                   "pattern FROM rules WHERE id = ?", c->want_id,
		                   s[S_RULE_INS], 2, 2)) < 0)
			return rc;
		return copy_targets(p, cur, sqlite3_last_insert_rowid(cur),
		                    c->want_id, c->service, &s[S_RT_SEL],
		                    &s[S_RT_INS]);
	}
	/* Removals. */
	if (c->kind == K_RULE)
		rc = stmt(cur, &s[S_DEL_RULE], "DELETE FROM rules WHERE id = ?");
	else if (c->kind == K_ENDPOINT)
		rc = stmt(cur, &s[S_DEL_EP], "DELETE FROM endpoints WHERE id = ?");
	else
		rc = stmt(cur, &s[S_DEL_SVC], "DELETE FROM services WHERE id = ?");
	if (rc < 0)
		return rc;
	up = s[c->kind == K_RULE ? S_DEL_RULE : c->kind == K_ENDPOINT ?
	       S_DEL_EP : S_DEL_SVC];
	sqlite3_bind_int64(up, 1, c->cur_id);
	return step_done(up);
}

/* cfg_plan_apply with the caller's statements (S_ALL, prepared on first
 * use, kept). */
static int apply_with(struct cfg_plan *p, sqlite3 *cur, sqlite3_stmt **s,
                      char *err, size_t errlen)
{
	/* Adds first (services, endpoints), then changes, then rules, then
	 * removals from the leaves up: a new row never reuses the id of a
	 * row this plan removes, and rules find their targets. */
	static const struct { int op, kind; } order[] = {
		{ OP_ADD, K_SERVICE }, { OP_ADD, K_ENDPOINT },
		{ OP_CHANGE, K_SERVICE }, { OP_CHANGE, K_ENDPOINT },
		{ OP_CHANGE, K_RULE }, { OP_ADD, K_RULE },
		{ OP_REMOVE, K_RULE }, { OP_REMOVE, K_ENDPOINT },
		{ OP_REMOVE, K_SERVICE },
	};
	int rc = 0;
	char line[512];

	for (size_t k = 0; rc == 0 && k < sizeof order / sizeof order[0]; k++)
		for (size_t i = 0; rc == 0 && i < p->n; i++) {
			const struct change *c = &p->c[i];

			if (c->op != order[k].op || c->kind != order[k].kind)
				continue;
			if ((rc = apply_one(p, cur, c, s)) < 0) {
				cfg_plan_line(p, i, line, sizeof line);
				store_sqlerr(cur, err, errlen, line);
			}
		}
	return rc;
}

int cfg_plan_apply(struct cfg_plan *p, sqlite3 *cur, char *err,
                   size_t errlen)
{
	sqlite3_stmt *s[S_ALL] = { NULL };
	int rc = apply_with(p, cur, s, err, errlen);

	for (int i = 0; i < S_ALL; i++)
		sqlite3_finalize(s[i]);
	return rc;
}

/* ----------------------------------------------------------- planner */

/* One service's rows, in the order and columns of SVC_Q, EP_Q, RULE_Q. */
#define SVC_Q1 "SELECT id, name, policy, ttl, answers, sticky, when_down, " \
	"fill " \
	"FROM services WHERE name = ?1"
#define EP_Q1 "SELECT e.id, s.name, " CFG_EP_COLS " FROM services s JOIN " \
	"endpoints e ON e.service_id = s.id WHERE s.name = ?1 ORDER BY " \
	"e.target"
#define RULE_Q1 "SELECT r.id, s.name, " RULE_MATCH " AS m, (SELECT " \
	"group_concat(t, ' ') FROM (SELECT e.target AS t FROM rule_targets " \
	"rt JOIN endpoints e ON e.id = rt.endpoint_id WHERE rt.rule_id = " \
	"r.id ORDER BY e.target)) FROM services s JOIN rules r ON " \
	"r.service_id = s.id WHERE s.name = ?1 ORDER BY m"

static int guard_with(const struct cfg_plan *p, sqlite3 *before,
                      sqlite3 *after, sqlite3_stmt **rot, int *rule,
                      char *err, size_t errlen);

struct cfg_planner {
	sqlite3 *cur, *want;
	sqlite3_stmt *q[2][3];          /* [cur, want][services, endpoints,
	                                 * rules] of one service */
	sqlite3_stmt *s[S_ALL];         /* apply */
	sqlite3_stmt *rot[2];           /* guard */
	struct cfg_plan plan;
};

static void plan_clear(struct cfg_plan *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->c[i].service);
		free(p->c[i].key);
		sqlite3_value_free(p->c[i].old);
		sqlite3_value_free(p->c[i].new);
	}
	p->n = 0;
	p->removed_services = 0;
}

int cfg_planner_new(sqlite3 *cur, sqlite3 *want, struct cfg_planner **out)
{
	static const char *const sql[3] = { SVC_Q1, EP_Q1, RULE_Q1 };
	struct cfg_planner *pl = calloc(1, sizeof *pl);

	*out = NULL;
	if (!pl)
		return -ENOMEM;
	pl->cur = cur;
	pl->want = want;
	pl->plan.want = want;
	for (int i = 0; i < 3; i++)
		if (sqlite3_prepare_v2(cur, sql[i], -1, &pl->q[0][i], NULL) !=
		            SQLITE_OK ||
		    sqlite3_prepare_v2(want, sql[i], -1, &pl->q[1][i], NULL) !=
		            SQLITE_OK) {
			cfg_planner_free(pl);
			return -EIO;
		}
	*out = pl;
	return 0;
}

void cfg_planner_free(struct cfg_planner *pl)
{
	if (!pl)
		return;
	for (int i = 0; i < 3; i++) {
		sqlite3_finalize(pl->q[0][i]);
		sqlite3_finalize(pl->q[1][i]);
	}
	for (int i = 0; i < S_ALL; i++)
		sqlite3_finalize(pl->s[i]);
	sqlite3_finalize(pl->rot[0]);
	sqlite3_finalize(pl->rot[1]);
	plan_clear(&pl->plan);
	free(pl->plan.c);
	free(pl);
}

int cfg_planner_plan(struct cfg_planner *pl, const char *name,
                     const struct cfg_plan **out, char *err, size_t errlen)
{
	static const struct field *const fields[3] = { svc_fields, ep_fields,
		rule_fields };
	static const size_t nf[3] = { N_SVC_FIELDS, N_EP_FIELDS, 1 };
	int rc = 0;

	plan_clear(&pl->plan);
	for (int i = 0; rc == 0 && i < 3; i++) {
		sqlite3_bind_text(pl->q[0][i], 1, name, -1, SQLITE_STATIC);
		sqlite3_bind_text(pl->q[1][i], 1, name, -1, SQLITE_STATIC);
		rc = merge_st(&pl->plan, pl->q[0][i], pl->q[1][i], i, i ? 2 : 1,
		              fields[i], nf[i]);
	}
	if (rc == -ENOMEM)
		return store_errf(err, errlen, rc, "plan: out of memory");
	if (rc < 0)
		return store_sqlerr(pl->cur, err, errlen, "plan");
	*out = &pl->plan;
	return 0;
}

int cfg_planner_guard(struct cfg_planner *pl, int *rule, char *err,
                      size_t errlen)
{
	return guard_with(&pl->plan, pl->cur, pl->want, pl->rot, rule, err,
	                  errlen);
}

int cfg_planner_apply(struct cfg_planner *pl, char *err, size_t errlen)
{
	return apply_with(&pl->plan, pl->cur, pl->s, err, errlen);
}

/* ------------------------------------------------------------ output */

static json_t *val_json(sqlite3_value *v, const struct field *f)
{
	switch (sqlite3_value_type(v)) {
	case SQLITE_INTEGER:
		if (f && f->boolean)
			return json_boolean(sqlite3_value_int64(v));
		return json_integer(sqlite3_value_int64(v));
	case SQLITE_FLOAT:
		return json_real(sqlite3_value_double(v));
	case SQLITE_TEXT:
		return json_string((const char *)sqlite3_value_text(v));
	default:
		return json_null();
	}
}

static const char *const op_names[] = { "add", "remove", "change" };
static const char *const kind_names[] = { "service", "endpoint", "rule" };

static void rule_targets_text(sqlite3 *want, long long id, char *out,
                              size_t n);

json_t *cfg_plan_change(const struct cfg_plan *p, size_t i)
{
	const struct change *c = &p->c[i];
	json_t *o = json_pack("{s:s, s:s, s:s}", "op", op_names[c->op],
	                      "kind", kind_names[c->kind], "service",
	                      c->service);

	if (!o)
		return NULL;
	if (c->key)
		json_object_set_new(o, c->kind == K_RULE ? "match" : "target",
		                    json_string(c->key));
	if (c->op == OP_CHANGE) {
		json_object_set_new(o, "field", json_string(c->field->name));
		json_object_set_new(o, "old", val_json(c->old, c->field));
		json_object_set_new(o, "new", val_json(c->new, c->field));
	} else if (c->op == OP_ADD && c->kind == K_RULE) {
		char t[4096];
		json_t *arr = json_array();

		rule_targets_text(p->want, c->want_id, t, sizeof t);
		for (char *save = NULL, *w = strtok_r(t, " ", &save); w;
		     w = strtok_r(NULL, " ", &save))
			json_array_append_new(arr, json_string(w));
		json_object_set_new(o, "targets", arr);
	}
	return o;
}

static char *val_jtext(const json_t *v)
{
	char *s = v ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT |
	                            JSON_REAL_PRECISION(15)) : NULL;

	return s;
}

int cfg_plan_cols(const struct cfg_plan *p, size_t i,
                  struct cfg_change_cols *out)
{
	const struct change *c = &p->c[i];
	json_t *v;

	memset(out, 0, sizeof *out);
	out->rank = c->kind;
	out->op = op_names[c->op];
	out->kind = kind_names[c->kind];
	out->service = c->service;
	out->key = c->key;
	if (c->op == OP_CHANGE) {
		out->field = c->field->name;
		v = val_json(c->old, c->field);
		out->old = val_jtext(v);
		json_decref(v);
		v = val_json(c->new, c->field);
		out->new = val_jtext(v);
		json_decref(v);
		if (!out->old || !out->new)
			return -ENOMEM;
	} else if (c->op == OP_ADD && c->kind == K_RULE) {
		json_t *o = cfg_plan_change(p, i);

		out->new = val_jtext(json_object_get(o, "targets"));
		json_decref(o);
		if (!out->new)
			return -ENOMEM;
	}
	return 0;
}

json_t *cfg_plan_json(const struct cfg_plan *p)
{
	json_t *arr = json_array();

	for (size_t i = 0; p && i < p->n; i++)
		json_array_append_new(arr, cfg_plan_change(p, i));
	return arr;
}

static void val_text(sqlite3_value *v, const struct field *f, char *out,
                     size_t n)
{
	switch (sqlite3_value_type(v)) {
	case SQLITE_INTEGER:
		if (f && f->boolean)
			snprintf(out, n, "%s", sqlite3_value_int64(v) ? "true"
			                                              : "false");
		else
			snprintf(out, n, "%lld",
			         (long long)sqlite3_value_int64(v));
		break;
	case SQLITE_FLOAT:
		snprintf(out, n, "%.15g", sqlite3_value_double(v));
		break;
	case SQLITE_TEXT:
		snprintf(out, n, "%s", (const char *)sqlite3_value_text(v));
		break;
	default:
		snprintf(out, n, "null");
	}
}

/* The targets of want's rule id, space-separated, into out. */
static void rule_targets_text(sqlite3 *want, long long id, char *out,
                              size_t n)
{
	sqlite3_stmt *st = NULL;

	out[0] = '\0';
	if (sqlite3_prepare_v2(want, "SELECT group_concat(t, ' ') FROM "
	                       "(SELECT e.target AS t FROM rule_targets rt "
	                       "JOIN endpoints e ON e.id = rt.endpoint_id "
	                       "WHERE rt.rule_id = ? ORDER BY e.target)", -1,
	                       &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, id);
		if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
			snprintf(out, n, "%s", sqlite3_column_text(st, 0));
	}
	sqlite3_finalize(st);
}

void cfg_plan_line(const struct cfg_plan *p, size_t i, char *out,
                   size_t outlen)
{
	const struct change *c = &p->c[i];
	static const char sign[] = { '+', '-', '~' };
	char a[256], b[256];
	int n;

	n = snprintf(out, outlen, "%c %s %s%s%s", sign[c->op],
	             kind_names[c->kind], c->service, c->key ? " " : "",
	             c->key ? c->key : "");
	if (n < 0 || (size_t)n >= outlen)
		return;
	if (c->op == OP_CHANGE) {
		val_text(c->old, c->field, a, sizeof a);
		val_text(c->new, c->field, b, sizeof b);
		snprintf(out + n, outlen - (size_t)n, " %s: %s -> %s",
		         c->field->name, a, b);
	} else if (c->op == OP_ADD && c->kind == K_RULE) {
		rule_targets_text(p->want, c->want_id, a, sizeof a);
		snprintf(out + n, outlen - (size_t)n, " -> %s", a);
	}
}

/* ------------------------------------------------------------- guard */

/* Endpoints of service name in rotation (not drained, not forced down)
 * in h; -1 when the service does not exist there. */
static long long in_rotation(sqlite3 *h, const char *name,
                             sqlite3_stmt **keep)
{
	sqlite3_stmt *st = keep ? *keep : NULL;
	long long n = -1;

	if (st || sqlite3_prepare_v2(h, "SELECT (SELECT count(*) FROM "
	                             "endpoints e WHERE e.service_id = s.id AND "
	                             "e.drained = 0 AND e.admin != 'down') FROM "
	                             "services s WHERE s.name = ?", -1, &st,
	                             NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			n = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
	}
	if (keep)
		*keep = st;
	else
		sqlite3_finalize(st);
	return n;
}

/* Whether a rule's targets (space-separated text) include target. */
static bool names_target(sqlite3_value *targets, const char *target)
{
	const char *t = targets ? (const char *)sqlite3_value_text(targets) :
	                NULL;
	size_t n = strlen(target);

	for (const char *p = t; p && (p = strstr(p, target)); p += n)
		if ((p == t || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
			return true;
	return false;
}

/* cfg_plan_guard; rot: two statements kept for in_rotation on before
 * and after (NULL: prepared each time); *rule (may be NULL) says which
 * rule failed: 1 a service removed, 2 an endpoint a rule names, 3 no
 * endpoint left in rotation. */
static int guard_with(const struct cfg_plan *p, sqlite3 *before,
                      sqlite3 *after, sqlite3_stmt **rot, int *rule,
                      char *err, size_t errlen)
{
	int dummy;

	if (!rule)
		rule = &dummy;
	*rule = 1;
	for (size_t i = 0; i < p->n; i++) {
		const struct change *c = &p->c[i];

		if (c->kind == K_SERVICE && c->op == OP_REMOVE)
			return store_errf(err, errlen, -EPERM, "would remove "
			                  "service %s: its name stops answering "
			                  "(%zu service%s removed in all); give "
			                  "--force (API: \"force\": true)",
			                  c->service, p->removed_services,
			                  p->removed_services == 1 ? "" : "s");
	}
	*rule = 2;
	for (size_t i = 0; i < p->n; i++) {
		const struct change *c = &p->c[i];

		if (c->kind != K_ENDPOINT || c->op != OP_REMOVE)
			continue;
		for (size_t j = 0; j < p->n; j++) {
			const struct change *r = &p->c[j];

			if (r->kind == K_RULE && r->op == OP_CHANGE &&
			    strcmp(r->service, c->service) == 0 &&
			    names_target(r->old, c->key))
				return store_errf(err, errlen, -EPERM, "removing "
				                  "endpoint %s of %s changes rule "
				                  "%s, which names it; give --force "
				                  "(API: \"force\": true) or "
				                  "change the rule first", c->key,
				                  c->service, r->key);
		}
	}
	*rule = 3;
	for (size_t i = 0; i < p->n; i++) {
		const struct change *c = &p->c[i];
		long long b, a;

		if (c->kind != K_ENDPOINT ||
		    (i > 0 && p->c[i - 1].kind == K_ENDPOINT &&
		     strcmp(p->c[i - 1].service, c->service) == 0))
			continue;       /* one check per service */
		b = in_rotation(before, c->service, rot ? &rot[0] : NULL);
		a = in_rotation(after, c->service, rot ? &rot[1] : NULL);
		if (b > 0 && a == 0)
			return store_errf(err, errlen, -EPERM, "%s would have no "
			                  "endpoint in rotation left (%s %s was "
			                  "the last): it would answer as its "
			                  "when_down says; give --force (API: "
			                  "\"force\": true)", c->service,
			                  c->op == OP_REMOVE ? "removing" :
			                  "changing", c->key);
	}
	*rule = 0;
	return 0;
}

int cfg_plan_guard(const struct cfg_plan *p, sqlite3 *before, sqlite3 *after,
                   char *err, size_t errlen)
{
	return guard_with(p, before, after, NULL, NULL, err, errlen);
}

/* -------------------------------------------------------------- copy */

int cfg_copy_service(sqlite3 *from, const char *name, sqlite3 *to)
{
	sqlite3_stmt *sel = NULL, *ins = NULL, *rsel = NULL, *tsel = NULL,
	             *tins = NULL;
	long long sid;
	int rc = -EIO;

	/* The service row; none = nothing to copy. */
	if (sqlite3_prepare_v2(from, "SELECT id, name, policy, ttl, answers, "
	                       "sticky, when_down, fill FROM services WHERE "
	                       "name = ?", -1, &sel, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(to, "INSERT INTO services (name, policy, ttl, "
	                       "answers, sticky, when_down, fill) VALUES (?, ?, "
	                       "?, ?, ?, ?, ?)", -1, &ins, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_text(sel, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(sel);
	if (rc != SQLITE_ROW) {
		rc = rc == SQLITE_DONE ? 0 : -EIO;
		goto out;
	}
	rc = -EIO;
	sid = sqlite3_column_int64(sel, 0);
	for (int i = 1; i <= 7; i++)
		sqlite3_bind_value(ins, i, sqlite3_column_value(sel, i));
	if (step_done(ins) < 0)
		goto out;
	sqlite3_finalize(sel);
	sqlite3_finalize(ins);
	sel = ins = NULL;
	/* Its endpoints. */
	if (sqlite3_prepare_v2(from, "SELECT " CFG_EP_COLS " FROM endpoints "
	                       "WHERE service_id = ?", -1, &sel, NULL) !=
	            SQLITE_OK ||
	    sqlite3_prepare_v2(to, "INSERT INTO endpoints (service_id, "
	                       CFG_EP_COLS ") VALUES ((SELECT id FROM services "
	                       "WHERE name = ?), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
	                       "?, ?, ?, ?, ?, ?, ?, ?, ?)", -1, &ins, NULL) !=
	            SQLITE_OK)
		goto out;
	sqlite3_bind_int64(sel, 1, sid);
	while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
		sqlite3_bind_text(ins, 1, name, -1, SQLITE_STATIC);
		for (int i = 0; i <= (int)N_EP_FIELDS; i++)
			sqlite3_bind_value(ins, 2 + i,
			                   sqlite3_column_value(sel, i));
		if (step_done(ins) < 0) {
			rc = -EIO;
			goto out;
		}
	}
	if (rc != SQLITE_DONE) {
		rc = -EIO;
		goto out;
	}
	rc = -EIO;
	/* Its rules and their targets (by target). */
	sqlite3_finalize(sel);
	sqlite3_finalize(ins);
	sel = ins = NULL;
	if (sqlite3_prepare_v2(from, "SELECT id, kind, pattern FROM rules WHERE "
	                       "service_id = ?", -1, &rsel, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(to, "INSERT INTO rules (service_id, kind, "
	                       "pattern) VALUES ((SELECT id FROM services WHERE "
	                       "name = ?), ?, ?)", -1, &ins, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(from, "SELECT e.target FROM rule_targets rt JOIN "
	                       "endpoints e ON e.id = rt.endpoint_id WHERE "
	                       "rt.rule_id = ?", -1, &tsel, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(to, "INSERT INTO rule_targets (rule_id, "
	                       "endpoint_id) SELECT ?1, e.id FROM endpoints e "
	                       "JOIN services s ON s.id = e.service_id WHERE "
	                       "s.name = ?2 AND e.target = ?3", -1, &tins,
	                       NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_int64(rsel, 1, sid);
	while ((rc = sqlite3_step(rsel)) == SQLITE_ROW) {
		long long rid;

		sqlite3_bind_text(ins, 1, name, -1, SQLITE_STATIC);
		sqlite3_bind_value(ins, 2, sqlite3_column_value(rsel, 1));
		sqlite3_bind_value(ins, 3, sqlite3_column_value(rsel, 2));
		if (step_done(ins) < 0)
			break;
		rid = sqlite3_last_insert_rowid(to);
		sqlite3_bind_int64(tsel, 1, sqlite3_column_int64(rsel, 0));
		while ((rc = sqlite3_step(tsel)) == SQLITE_ROW) {
			sqlite3_bind_int64(tins, 1, rid);
			sqlite3_bind_text(tins, 2, name, -1, SQLITE_STATIC);
			sqlite3_bind_value(tins, 3, sqlite3_column_value(tsel, 0));
			if (step_done(tins) < 0)
				break;
		}
		sqlite3_reset(tsel);
		if (rc != SQLITE_DONE)
			break;
	}
	rc = rc == SQLITE_DONE ? 0 : -EIO;
out:
	sqlite3_finalize(sel);
	sqlite3_finalize(ins);
	sqlite3_finalize(rsel);
	sqlite3_finalize(tsel);
	sqlite3_finalize(tins);
	return rc;
}
