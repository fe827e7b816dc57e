/* tests/fuzz/fuzz_store.c - libFuzzer target for the store loader and the
 * answer selection: rows typed by hand into sqlite3 reach svc_load() even
 * when they are nonsense, so the loader must skip what it cannot serve
 * and list it, never crash. The input is lines "T|v1|v2|...": T picks the
 * table (s services, e endpoints, r rules, t rule_targets), the values fill
 * its columns in schema order ("" NULL, an integer, a real, else text). The
 * rows go into an empty in-memory database with db/schema.sql, with CHECK
 * constraints and foreign keys off (the loader must check every row
 * again: the CHECKs can be bypassed). A loaded set is then queried: every service found by its
 * name, and svc_select_type() for A, AAAA and any type, for an IPv4 client
 * with a location and an IPv6 one without, with and without explain
 * output; an answer holds at most SVC_MAX_ANSWERS non-NULL targets and a
 * SERVFAIL none.
 *
 * Seeds: tests/fuzz/corpus/store. Replayed by test_fuzz_replay. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "db/store.h"
#include "db/store_sql.h"
#include "db/svc_load.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const sf_cols[][21] = {
	{ "services", "id", "name", "policy", "ttl", "answers", "sticky",
	  "when_down", NULL },
	{ "endpoints", "id", "service_id", "target", "weight", "priority",
	  "region", "lat", "lon", "bias", "admin", "drained", "check_url",
	  "check_interval", "check_timeout", "check_rise", "check_fall",
	  "check_tls_verify", "check_expect", "check_body", "check_host" },
	{ "rules", "id", "service_id", "kind", "pattern", NULL },
	{ "rule_targets", "rule_id", "endpoint_id", NULL },
};

static void sf_bind(sqlite3_stmt *st, int i, const char *v)
{
	char *end;
	long long n;
	double d;

	if (!*v) {
		sqlite3_bind_null(st, i);
		return;
	}
	n = strtoll(v, &end, 10);
	if (!*end) {
		sqlite3_bind_int64(st, i, n);
		return;
	}
	d = strtod(v, &end);
	if (!*end) {
		sqlite3_bind_double(st, i, d);
		return;
	}
	sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
}

/* Inserts one line's row; bad lines are ignored. */
static void sf_row(sqlite3 *h, char *line)
{
	const char *const *cols;
	char *vals[20], sql[512];
	size_t n = 0, off;
	sqlite3_stmt *st = NULL;
	char *p;

	switch (line[0]) {
	case 's': cols = sf_cols[0]; break;
	case 'e': cols = sf_cols[1]; break;
	case 'r': cols = sf_cols[2]; break;
	case 't': cols = sf_cols[3]; break;
	default: return;
	}
	if (line[1] != '|')
		return;
	for (p = line + 2; p && n < 20 && cols[n + 1]; n++) {
		vals[n] = p;
		if ((p = strchr(p, '|')))
			*p++ = 0;
	}
	if (n == 0)
		return;
	off = (size_t)snprintf(sql, sizeof(sql), "INSERT OR IGNORE INTO %s (",
			       cols[0]);
	for (size_t i = 0; i < n; i++)
		off += (size_t)snprintf(sql + off, sizeof(sql) - off, "%s%s",
					i ? "," : "", cols[i + 1]);
	off += (size_t)snprintf(sql + off, sizeof(sql) - off, ") VALUES (");
	for (size_t i = 0; i < n; i++)
		off += (size_t)snprintf(sql + off, sizeof(sql) - off, "%s?",
					i ? "," : "");
	snprintf(sql + off, sizeof(sql) - off, ")");
	if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK)
		abort();
	for (size_t i = 0; i < n; i++)
		sf_bind(st, (int)i + 1, vals[i]);
	sqlite3_step(st);              /* NOT NULL / UNIQUE may refuse it */
	sqlite3_finalize(st);
}

static void sf_check(const struct svc_answer *a, const struct svc_service *v)
{
	if (a->n > SVC_MAX_ANSWERS || (a->servfail && a->n) ||
	    a->scope > 128) {
		fprintf(stderr, "fuzz_store: %s: bad answer (n %u)\n", v->name,
			a->n);
		abort();
	}
	for (unsigned i = 0; i < a->n; i++)
		if (!a->t[i] || !a->t[i]->rdata ||
		    (a->t[i]->type != SVC_T_A && a->t[i]->type != SVC_T_AAAA &&
		     a->t[i]->type != SVC_T_CNAME))
			abort();
}

static void sf_query(const struct svc_set *s)
{
	static struct svc_why_ep why_eps[4096];
	static const uint16_t types[] = { SVC_T_A, SVC_T_AAAA, 0 };
	struct svc_client c[2];
	uint64_t rng = 88172645463325252ull;

	memset(c, 0, sizeof(c));
	c[0].addr.s6_addr[10] = c[0].addr.s6_addr[11] = 0xff;
	c[0].addr.s6_addr[12] = 192;
	c[0].addr.s6_addr[15] = 7;
	c[0].src_plen = 120;
	c[0].has_loc = true;
	c[0].lat = 50.1;
	c[0].lon = 8.7;
	memcpy(c[0].country, "DE", 3);
	memcpy(c[0].continent, "EU", 3);
	c[0].geo_plen = 120;
	c[1].addr.s6_addr[0] = 0x20;
	c[1].addr.s6_addr[1] = 0x01;
	c[1].addr.s6_addr[2] = 0x0d;
	c[1].addr.s6_addr[3] = 0xb8;
	c[1].src_plen = 56;
	for (size_t i = 0; i < s->n_pos; i++) {
		const struct svc_service *v = svc_at(s, i);
		struct svc_answer a;
		struct svc_why why = { .ep = why_eps, .cap = 4096 };

		if (!v)
			continue;
		if (svc_find_text(s, v->name) != v ||
		    svc_find(s, v->wire, v->wire_len) != v) {
			fprintf(stderr, "fuzz_store: %s not found by name\n",
				v->name);
			abort();
		}
		for (size_t k = 0; k < 3; k++) {
			for (size_t j = 0; j < 2; j++) {
				svc_select_type(v, types[k], &c[j], NULL, &rng,
						(uint32_t)i, &a, NULL);
				sf_check(&a, v);
			}
		}
		if (v->n_eps <= why.cap) {
			svc_select(v, &c[0], NULL, &rng, 1, &a, &why);
			sf_check(&a, v);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char text[16384];
	static sqlite3 *h;
	struct svc_set *s = NULL;
	char err[512] = "";
	int rc, lines = 0;

	if (size >= sizeof(text))
		return 0;
	memcpy(text, data, size);
	text[size] = 0;
	/* One database for the process, emptied per input: creating the
	 * schema every time would cost most of the run. */
	if (!h && (sqlite3_open(":memory:", &h) != SQLITE_OK ||
		   sqlite3_exec(h, store_schema_sql, NULL, NULL, NULL) !=
		   SQLITE_OK ||
		   sqlite3_exec(h, "PRAGMA ignore_check_constraints = ON;"
				"PRAGMA foreign_keys = OFF", NULL, NULL, NULL) !=
		   SQLITE_OK)) {
		fprintf(stderr, "fuzz_store: schema: %s\n", sqlite3_errmsg(h));
		abort();
	}
	if (sqlite3_exec(h, "DELETE FROM rule_targets; DELETE FROM rules;"
			 "DELETE FROM endpoints; DELETE FROM services", NULL,
			 NULL, NULL) != SQLITE_OK)
		abort();
	for (char *line = text, *next; line && lines < 256; line = next,
	     lines++) {
		if ((next = strchr(line, '\n')))
			*next++ = 0;
		sf_row(h, line);
	}
	static struct store store;

	store.h = h;
	rc = svc_load(&store, &s, err, sizeof(err));
	if (rc < 0) {
		if (s || !err[0]) {
			fprintf(stderr, "fuzz_store: load error %d without a "
				"message\n", rc);
			abort();
		}
	} else {
		sf_query(s);
		svc_set_free(s);
	}
	return 0;
}
