/* db/audit.c - observed configuration writes: plan, guard, version,
 * change log, audit trail, journal. Load time only; see db/audit.h. */
#include "db/audit.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#include "common/log.h"
#include "db/diff.h"
#include "db/diff_sql.h"
#include "db/edit.h"
#include "db/audit_sql.h"
#include "db/store.h"

/* At most this many changes of one write are logged one by one. */
#define LOG_MAX_LINES 100

static _Thread_local struct cfg_write *cur_write;
static const struct cfg_write defaults;

void cfg_write_use(struct cfg_write *w)
{
	cur_write = w;
}

struct cfg_write *cfg_write_swap(struct cfg_write *w)
{
	struct cfg_write *prev = cur_write;

	cur_write = w;
	return prev;
}

void cfg_write_done(struct cfg_write *w)
{
	if (!w)
		return;
	cfg_plan_free(w->done);
	w->done = NULL;
}

const struct cfg_write *cfg_write_current(void)
{
	return cur_write ? cur_write : &defaults;
}

static const char *who_am_i(char *buf, size_t n)
{
	const struct cfg_write *w = cfg_write_current();
	struct passwd *pw;

	if (w->who)
		return w->who;
	pw = getpwuid(getuid());
	snprintf(buf, n, "uid %u%s%s%s", (unsigned)getuid(), pw ? " (" : "",
	         pw ? pw->pw_name : "", pw ? ")" : "");
	return buf;
}

static void keep_plan(struct cfg_plan *p)
{
	if (cur_write) {
		cfg_plan_free(cur_write->done);
		cur_write->done = p;
	} else {
		cfg_plan_free(p);
	}
}

long long cfg_store_version(struct store *db)
{
	return cfg_version_of(db->h);
}

long long cfg_version_of(sqlite3 *h)
{
	sqlite3_stmt *st = NULL;
	long long v = -EIO;

	if (sqlite3_prepare_v2(h, "SELECT version FROM store_version WHERE id "
	                       "= 1", -1, &st, NULL) == SQLITE_OK) {
		int rc = sqlite3_step(st);

		v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) :
		    rc == SQLITE_DONE ? 0 : -EIO;
	}
	sqlite3_finalize(st);
	return v;
}

int cfg_observe_begin(sqlite3 *h, const char *service, struct cfg_observe *o,
                      char *err, size_t errlen)
{
	char e2[64];
	int rc;

	o->before = NULL;
	/* A bad name fails in the write itself, with its own message. */
	if (!service || cfg_canon_name(service, o->service, e2, sizeof e2) < 0)
		snprintf(o->service, sizeof o->service, "%s",
		         service ? service : "");
	if ((rc = store_open(":memory:", STORE_CREATE, &o->before, err,
	                     errlen)) < 0)
		return rc;
	if (cfg_copy_service(h, o->service, o->before->h) < 0) {
		cfg_observe_abort(o);
		return store_sqlerr(h, err, errlen, "audit: copy");
	}
	return 0;
}

void cfg_observe_abort(struct cfg_observe *o)
{
	store_close(o->before);
	o->before = NULL;
}

int cfg_observe_end(sqlite3 *h, struct cfg_observe *o, char *err,
                    size_t errlen)
{
	const struct cfg_write *w = cfg_write_current();
	struct cfg_plan *p = NULL;
	struct store *after = NULL;
	int rc;

	if ((rc = store_open(":memory:", STORE_CREATE, &after, err,
	                     errlen)) < 0)
		goto out;
	if (cfg_copy_service(h, o->service, after->h) < 0) {
		store_close(after);
		rc = store_sqlerr(h, err, errlen, "audit: copy");
		goto out;
	}
	if ((rc = cfg_plan_make(o->before->h, after->h, after, &p, err,
	                        errlen)) < 0)
		goto out;
	if (!w->force && (rc = cfg_plan_guard(p, o->before->h, after->h,
	                                      err, errlen)) < 0)
		goto out;
	if (w->dry_run) {
		rc = 1;
		goto out;
	}
	rc = cfg_record(h, p, NULL, err, errlen);
out:
	cfg_observe_abort(o);
	if (rc >= 0)
		keep_plan(p);
	else
		cfg_plan_free(p);
	return rc;
}

/* A value of a change object as text for the audit table (JSON). */
static char *jtext(const json_t *v)
{
	return v ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT |
	                          JSON_REAL_PRECISION(15)) : NULL;
}

/* Logs one change (line: its text form, c: its change object). */
static void log_line(const char *line, const json_t *c, long long version,
                     const char *who, const char *source)
{
	const struct cfg_write *w = cfg_write_current();
	const char *key;
	char *o, *n;

	if (getenv("INVOCATION_ID")) {
		key = json_string_value(json_object_get(c, "target"));
		if (!key)
			key = json_string_value(json_object_get(c, "match"));
		o = jtext(json_object_get(c, "old"));
		n = jtext(json_object_get(c, "new"));
		sd_journal_send("MESSAGE=config v%lld by %s (%s): %s", version,
		                who, source, line, "PRIORITY=6",
		                "GSLB_VERSION=%lld", version, "GSLB_WHO=%s", who,
		                "GSLB_SOURCE=%s", source, "GSLB_OP=%s",
		                json_string_value(json_object_get(c, "op")),
		                "GSLB_KIND=%s",
		                json_string_value(json_object_get(c, "kind")),
		                "GSLB_SERVICE=%s",
		                json_string_value(json_object_get(c, "service")),
		                "GSLB_TARGET=%s", key ? key : "",
		                "GSLB_FIELD=%s",
		                json_string_value(json_object_get(c, "field")) ?
		                json_string_value(json_object_get(c, "field")) : "",
		                "GSLB_OLD=%s", o ? o : "", "GSLB_NEW=%s",
		                n ? n : "", NULL);
		free(o);
		free(n);
	} else if (w->log_stderr) {
		log_info("config v%lld by %s (%s): %s", version, who, source,
		         line);
	}
}

/* Is rows a list of audit rows cfg_record_rows can insert? */
int cfg_rows_check(const json_t *rows, char *err, size_t errlen)
{
	static const char *const ops[] = { "add", "remove", "change" };
	static const char *const kinds[] = { "service", "endpoint", "rule" };
	const json_t *r;
	size_t i;

	if (!json_is_array(rows) || json_array_size(rows) == 0)
		return store_errf(err, errlen, -EINVAL, "audit rows: not a "
		                  "non-empty list");
	json_array_foreach(rows, i, r) {
		const char *op = json_string_value(json_object_get(r, "op"));
		const char *kind = json_string_value(json_object_get(r, "kind"));
		bool ok_op = false, ok_kind = false;

		for (size_t k = 0; k < 3; k++) {
			ok_op |= op && strcmp(op, ops[k]) == 0;
			ok_kind |= kind && strcmp(kind, kinds[k]) == 0;
		}
		if (!json_is_object(r) || !ok_op || !ok_kind ||
		    !json_is_string(json_object_get(r, "service")) ||
		    !json_is_string(json_object_get(r, "who")) ||
		    !json_is_string(json_object_get(r, "source")))
			return store_errf(err, errlen, -EINVAL, "audit rows[%zu]: "
			                  "needs op (add, remove, change), kind "
			                  "(service, endpoint, rule), service, who "
			                  "and source", i);
	}
	return 0;
}

/* Inserts rows (checked) as the audit of version. */
static int rows_insert(sqlite3 *h, const json_t *rows, long long version,
                       double now)
{
	sqlite3_stmt *au = NULL;
	const json_t *r;
	size_t i;
	int rc = -EIO;

	if (sqlite3_prepare_v2(h, "INSERT INTO audit (version, time, who, "
	                       "source, op, kind, service, target, field, old, "
	                       "new) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	                       -1, &au, NULL) != SQLITE_OK)
		goto out;
	json_array_foreach(rows, i, r) {
		const json_t *t = json_object_get(r, "time");
		const char *key = json_string_value(json_object_get(r, "target"));
		int st;

		if (!key)
			key = json_string_value(json_object_get(r, "match"));
		sqlite3_bind_int64(au, 1, version);
		sqlite3_bind_double(au, 2, json_is_number(t) ? json_number_value(t)
		                                             : now);
		sqlite3_bind_text(au, 3, json_string_value(json_object_get(r, "who")),
		                  -1, SQLITE_STATIC);
		sqlite3_bind_text(au, 4, json_string_value(json_object_get(r,
		                  "source")), -1, SQLITE_STATIC);
		sqlite3_bind_text(au, 5, json_string_value(json_object_get(r, "op")),
		                  -1, SQLITE_STATIC);
		sqlite3_bind_text(au, 6, json_string_value(json_object_get(r,
		                  "kind")), -1, SQLITE_STATIC);
		sqlite3_bind_text(au, 7, json_string_value(json_object_get(r,
		                  "service")), -1, SQLITE_STATIC);
		sqlite3_bind_text(au, 8, key, -1, SQLITE_STATIC);
		sqlite3_bind_text(au, 9, json_string_value(json_object_get(r,
		                  "field")), -1, SQLITE_STATIC);
		sqlite3_bind_text(au, 10, jtext(json_object_get(r, "old")), -1,
		                  free);
		sqlite3_bind_text(au, 11, jtext(json_object_get(r, "new")), -1,
		                  free);
		st = sqlite3_step(au);
		sqlite3_reset(au);
		sqlite3_clear_bindings(au);
		if (st != SQLITE_DONE)
			goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(au);
	return rc;
}

static int record(sqlite3 *h, const struct cfg_plan *p, const char *source,
                  const json_t *rows, char *err, size_t errlen);

static void log_change(const struct cfg_plan *p, size_t i, const json_t *c,
                       long long version, const char *who,
                       const char *source)
{
	char line[1024];

	cfg_plan_line(p, i, line, sizeof line);
	log_line(line, c, version, who, source);
}

bool cfg_record_logs(void)
{
	return getenv("INVOCATION_ID") || cfg_write_current()->log_stderr;
}

void cfg_record_log(long long version, const char *source, size_t i,
                    size_t n, const char *line, const json_t *c)
{
	const struct cfg_write *w = cfg_write_current();
	char whobuf[128];
	const char *who = who_am_i(whobuf, sizeof whobuf);

	if (!source)
		source = w->source ? w->source : "gslbctl";
	if (i < LOG_MAX_LINES)
		log_line(line, c, version, who, source);
	if (i == LOG_MAX_LINES && w->log_stderr)
		log_info("config v%lld by %s (%s): ... and %zu more changes",
		         version, who, source, n - LOG_MAX_LINES);
}

int cfg_record_table(sqlite3 *h, const char *table, const char *order,
                     const char *source, long long *version, char *err,
                     size_t errlen)
{
	const struct cfg_write *w = cfg_write_current();
	sqlite3_stmt *au = NULL, *ch = NULL;
	struct timeval tv;
	char whobuf[128], sql[512];
	const char *who = who_am_i(whobuf, sizeof whobuf);
	int rc = -EIO;

	if (!source)
		source = w->source ? w->source : "gslbctl";
	gettimeofday(&tv, NULL);
	snprintf(sql, sizeof sql, "INSERT INTO audit (version, time, who, "
	         "source, op, kind, service, target, field, old, new) SELECT "
	         "?1, ?2, ?3, ?4, op, kind, service, key, field, old, new FROM "
	         "%s ORDER BY %s", table, order);
	if (store_exec(h, "INSERT OR IGNORE INTO store_version (id, version) "
	               "VALUES (1, 0); UPDATE store_version SET version = "
	               "version + 1 WHERE id = 1") < 0 ||
	    (*version = cfg_version_of(h)) < 0 ||
	    sqlite3_prepare_v2(h, sql, -1, &au, NULL) != SQLITE_OK)
		goto out;
	snprintf(sql, sizeof sql, "INSERT OR IGNORE INTO changes (version, "
	         "service) SELECT DISTINCT ?1, service FROM %s", table);
	if (sqlite3_prepare_v2(h, sql, -1, &ch, NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_int64(au, 1, *version);
	sqlite3_bind_double(au, 2, tv.tv_sec + tv.tv_usec / 1e6);
	sqlite3_bind_text(au, 3, who, -1, SQLITE_STATIC);
	sqlite3_bind_text(au, 4, source, -1, SQLITE_STATIC);
	sqlite3_bind_int64(ch, 1, *version);
	if (sqlite3_step(au) != SQLITE_DONE || sqlite3_step(ch) != SQLITE_DONE)
		goto out;
	if (cur_write)
		cur_write->version = *version;
	rc = 0;
out:
	if (rc < 0)
		store_sqlerr(h, err, errlen, "audit");
	sqlite3_finalize(au);
	sqlite3_finalize(ch);
	return rc;
}

int cfg_record(sqlite3 *h, const struct cfg_plan *p, const char *source,
               char *err, size_t errlen)
{
	return record(h, p, source, NULL, err, errlen);
}

int cfg_record_rows(sqlite3 *h, const struct cfg_plan *p, const json_t *rows,
                    char *err, size_t errlen)
{
	int rc;

	if ((rc = cfg_rows_check(rows, err, errlen)) < 0)
		return rc;
	return record(h, p, NULL, rows, err, errlen);
}

/* A growing string; oom once an allocation failed. */
struct sbuf {
	char *p;
	size_t n, cap;
	bool oom;
};

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->n + n + 1 > b->cap) {
		size_t cap = 2 * (b->n + n + 1) + 64;
		char *p = realloc(b->p, cap);

		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

/* s as a JSON string (RFC 8259 7: quote, backslash and control
 * characters escaped; UTF-8 as it is). */
static void sb_str(struct sbuf *b, const char *s)
{
	sb_put(b, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char e[8];

		if (c == '"' || c == '\\') {
			e[0] = '\\';
			e[1] = (char)c;
			sb_put(b, e, 2);
		} else if (c < 0x20) {
			snprintf(e, sizeof e, "\\u%04X", c);
			sb_put(b, e, 6);
		} else {
			sb_put(b, s, 1);
		}
	}
	sb_put(b, "\"", 1);
}

static void sb_list(struct sbuf *b, const char *const *v, size_t n)
{
	sb_put(b, "[", 1);
	for (size_t i = 0; i < n; i++) {
		if (i)
			sb_put(b, ",", 1);
		sb_str(b, v[i]);
	}
	sb_put(b, "]", 1);
}

char *cfg_added_text(const char *const *endpoints, size_t n,
                     const struct cfg_added_rule *rules, size_t nrules)
{
	struct sbuf b = { NULL, 0, 0, false };

	sb_put(&b, "{\"endpoints\":", 13);
	sb_list(&b, endpoints, n);
	sb_put(&b, ",\"rules\":[", 10);
	for (size_t i = 0; i < nrules; i++) {
		sb_put(&b, i ? ",{\"match\":" : "{\"match\":", i ? 10 : 9);
		sb_str(&b, rules[i].match);
		sb_put(&b, ",\"targets\":", 11);
		sb_list(&b, rules[i].targets, rules[i].n);
		sb_put(&b, "}", 1);
	}
	sb_put(&b, "]}", 2);
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

/* The strings of a JSON list into a new array (NULL when empty or out
 * of memory: *n says which). */
static const char **strings_of(const json_t *a, size_t *n)
{
	const char **v = NULL;
	const json_t *x;
	size_t i;

	*n = json_array_size(a);
	if (*n && !(v = calloc(*n, sizeof *v)))
		return NULL;
	json_array_foreach(a, i, x)
		v[i] = json_string_value(x) ? json_string_value(x) : "";
	return v;
}

char *cfg_added_text_json(const json_t *endpoints, const json_t *rules)
{
	size_t n = 0, nr = json_array_size(rules), i;
	const char **eps = strings_of(endpoints, &n);
	struct cfg_added_rule *r = nr ? calloc(nr, sizeof *r) : NULL;
	char *text = NULL;
	const json_t *x;
	bool ok = (!n || eps) && (!nr || r);

	json_array_foreach(rules, i, x) {
		if (!ok)
			break;
		r[i].match = json_string_value(json_object_get(x, "match"));
		if (!r[i].match)
			r[i].match = "";
		r[i].targets = strings_of(json_object_get(x, "targets"),
		                          &r[i].n);
		ok = !r[i].n || r[i].targets;
	}
	if (ok)
		text = cfg_added_text(eps, n, r, nr);
	for (i = 0; r && i < nr; i++)
		free((void *)r[i].targets);
	free(r);
	free(eps);
	return text;
}

/* The services p adds, each with what comes with it (the lists of
 * cfg_added_text), by name: an import's audit (NULL when p adds no
 * service or out of memory). */
static json_t *added_services(const struct cfg_plan *p)
{
	json_t *add = json_object();
	size_t n = cfg_plan_size(p);

	for (size_t i = 0; add && i < n; i++) {
		json_t *c = cfg_plan_change(p, i), *a;
		const char *op = json_string_value(json_object_get(c, "op"));
		const char *kind = json_string_value(json_object_get(c, "kind"));
		const char *svc = json_string_value(json_object_get(c,
		                                                    "service"));

		if (!c || strcmp(op, "add") != 0) {
			json_decref(c);
			continue;
		}
		if (strcmp(kind, "service") == 0)
			json_object_set_new(add, svc, json_pack("{s:[], s:[]}",
			                    "endpoints", "rules"));
		else if ((a = json_object_get(add, svc)) &&
		         strcmp(kind, "endpoint") == 0)
			json_array_append(json_object_get(a, "endpoints"),
			                  json_object_get(c, "target"));
		else if (a)
			json_array_append_new(json_object_get(a, "rules"),
			        json_pack("{s:O, s:O}", "match",
			                  json_object_get(c, "match"), "targets",
			                  json_object_get(c, "targets")));
		json_decref(c);
	}
	if (add && json_object_size(add) == 0) {
		json_decref(add);
		add = NULL;
	}
	return add;
}

static int record(sqlite3 *h, const struct cfg_plan *p, const char *source,
                  const json_t *rows, char *err, size_t errlen)
{
	const struct cfg_write *w = cfg_write_current();
	sqlite3_stmt *ch = NULL, *au = NULL;
	json_t *added = NULL;
	struct timeval tv;
	char whobuf[128];
	const char *who = who_am_i(whobuf, sizeof whobuf);
	size_t n = cfg_plan_size(p);
	long long version;
	int rc = -EIO;

	if (n == 0 && !rows)
		return 0;
	if (!source)
		source = w->source ? w->source : "gslbctl";
	if (rows) {     /* the writer's own record: log with its names */
		const json_t *r0 = json_array_get(rows, 0);

		who = json_string_value(json_object_get(r0, "who"));
		source = json_string_value(json_object_get(r0, "source"));
	}
	if (!rows && strcmp(source, "import") == 0)
		added = added_services(p);
	gettimeofday(&tv, NULL);
	if (store_exec(h, "INSERT OR IGNORE INTO store_version (id, version) "
	               "VALUES (1, 0); UPDATE store_version SET version = "
	               "version + 1 WHERE id = 1") < 0 ||
	    (version = cfg_version_of(h)) < 0 ||
	    sqlite3_prepare_v2(h, "INSERT OR IGNORE INTO changes (version, "
	                       "service) VALUES (?, ?)", -1, &ch, NULL) !=
	            SQLITE_OK ||
	    sqlite3_prepare_v2(h, "INSERT INTO audit (version, time, who, "
	                       "source, op, kind, service, target, field, old, "
	                       "new) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	                       -1, &au, NULL) != SQLITE_OK)
		goto out;
	for (size_t i = 0; i < n; i++) {
		json_t *c = cfg_plan_change(p, i), *a;
		const char *key;
		char *o, *nv;
		bool skip = false;
		int s1, s2;

		if (!c) {
			rc = -ENOMEM;
			goto out;
		}
		key = json_string_value(json_object_get(c, "target"));
		if (!key)
			key = json_string_value(json_object_get(c, "match"));
		o = jtext(json_object_get(c, "old"));
		nv = jtext(json_object_get(c, "new"));
		if (!json_object_get(c, "new") && json_object_get(c, "targets"))
			nv = jtext(json_object_get(c, "targets"));
		/* A service the import adds: one row for it and what came
		 * with it. */
		if (added && (a = json_object_get(added, json_string_value(
		                      json_object_get(c, "service"))))) {
			if (strcmp(json_string_value(json_object_get(c, "kind")),
			           "service") == 0) {
				free(nv);
				nv = cfg_added_text_json(json_object_get(
				                             a, "endpoints"),
				                         json_object_get(a, "rules"));
				if (!nv) {
					free(o);
					json_decref(c);
					rc = -ENOMEM;
					goto out;
				}
			} else {
				skip = true;
			}
		}
		sqlite3_bind_int64(ch, 1, version);
		sqlite3_bind_text(ch, 2, json_string_value(json_object_get(
		                  c, "service")), -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(au, 1, version);
		sqlite3_bind_double(au, 2, tv.tv_sec + tv.tv_usec / 1e6);
		sqlite3_bind_text(au, 3, who, -1, SQLITE_STATIC);
		sqlite3_bind_text(au, 4, source, -1, SQLITE_STATIC);
		sqlite3_bind_text(au, 5, json_string_value(json_object_get(
		                  c, "op")), -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(au, 6, json_string_value(json_object_get(
		                  c, "kind")), -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(au, 7, json_string_value(json_object_get(
		                  c, "service")), -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(au, 8, key, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(au, 9, json_string_value(json_object_get(
		                  c, "field")), -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(au, 10, o, -1, free);
		sqlite3_bind_text(au, 11, nv, -1, free);
		s1 = sqlite3_step(ch);
		s2 = rows || skip ? SQLITE_DONE : sqlite3_step(au);
		sqlite3_reset(ch);
		sqlite3_reset(au);
		sqlite3_clear_bindings(au);
		if (i < LOG_MAX_LINES)
			log_change(p, i, c, version, who, source);
		json_decref(c);
		if (s1 != SQLITE_DONE || s2 != SQLITE_DONE)
			goto out;
	}
	if (rows && rows_insert(h, rows, version, tv.tv_sec + tv.tv_usec / 1e6) < 0)
		goto out;
	/* The writer's rows may name services the plan does not change (a
	 * staged shift, damping thresholds, or changes that cancel out within
	 * one batch): they are in the change log too. */
	for (size_t i = 0; rows && i < json_array_size(rows); i++) {
		sqlite3_bind_int64(ch, 1, version);
		sqlite3_bind_text(ch, 2, json_string_value(json_object_get(
		                  json_array_get(rows, i), "service")), -1,
		                  SQLITE_TRANSIENT);
		if (sqlite3_step(ch) != SQLITE_DONE)
			goto out;
		sqlite3_reset(ch);
	}
	if (n > LOG_MAX_LINES && w->log_stderr)
		log_info("config v%lld by %s (%s): ... and %zu more changes",
		         version, who, source, n - LOG_MAX_LINES);
	if (cur_write)
		cur_write->version = version;
	rc = 0;
out:
	if (rc == -EIO)
		store_sqlerr(h, err, errlen, "audit");
	else if (rc == -ENOMEM)
		store_errf(err, errlen, rc, "audit: out of memory");
	sqlite3_finalize(ch);
	sqlite3_finalize(au);
	json_decref(added);
	return rc;
}

json_t *cfg_history(struct store *db, const char *service, int limit,
                    char *err, size_t errlen)
{
	sqlite3 *h = db->h;
	static const char *const cols[] = { "version", "time", "who", "source",
		"op", "kind", "service", NULL, "field", "old", "new" };
	sqlite3_stmt *st = NULL;
	json_t *arr = json_array();
	char canon[256];
	int rc;

	if (service && cfg_canon_name(service, canon, err, errlen) < 0)
		goto fail;
	if (sqlite3_prepare_v2(h, "SELECT * FROM (SELECT version, time, who, "
	                       "source, op, kind, service, target, field, old, "
	                       "new, id FROM audit WHERE ?1 IS NULL OR service "
	                       "= ?1 ORDER BY id DESC LIMIT ?2) ORDER BY id",
	                       -1, &st, NULL) != SQLITE_OK) {
		store_sqlerr(h, err, errlen, "history");
		goto fail;
	}
	if (service)
		sqlite3_bind_text(st, 1, canon, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *o = json_object();

		for (int i = 0; i < 11; i++) {
			const char *t = (const char *)sqlite3_column_text(st, i);
			const char *k = cols[i];
			json_t *v;

			if (!t)
				continue;
			if (i == 7)
				k = strcmp((const char *)sqlite3_column_text(st, 5),
				           "rule") == 0 ? "match" : "target";
			if (i == 0)
				v = json_integer(sqlite3_column_int64(st, i));
			else if (i == 1)
				v = json_real(sqlite3_column_double(st, i));
			else if (i >= 9)
				v = json_loads(t, JSON_DECODE_ANY, NULL);
			else
				v = json_string(t);
			json_object_set_new(o, k, v ? v : json_string(t));
		}
		json_array_append_new(arr, o);
	}
	if (rc != SQLITE_DONE) {
		store_sqlerr(h, err, errlen, "history");
		goto fail;
	}
	sqlite3_finalize(st);
	return arr;
fail:
	sqlite3_finalize(st);
	json_decref(arr);
	return NULL;
}
