/* db/served.c - the zones each dnsd serves, recorded in the store; see
 * db/served.h. */
#include "db/served.h"
#include "db/store_sql.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"

struct served {
	char **apex;            /* canonical, distinct, sorted */
	size_t n;
};

/* An apex in canonical form (lower case, final dot) into out (256 bytes):
 * labels of 1..63 printable octets other than '.', 255 octets at most; "."
 * is the root. 0 or -EINVAL. */
static int canon_apex(const char *in, char out[256])
{
	size_t len = strlen(in), label = 0, o = 0;

	if (len == 0)
		return -EINVAL;
	if (strcmp(in, ".") == 0) {
		strcpy(out, ".");
		return 0;
	}
	if (in[len - 1] == '.')
		len--;
	if (len == 0 || len > 253)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)in[i];

		if (ch == '.') {
			if (label == 0)
				return -EINVAL;
			label = 0;
		} else if (!isgraph(ch) || ++label > 63) {
			return -EINVAL;
		}
		out[o++] = (char)tolower(ch);
	}
	out[o++] = '.';
	out[o] = '\0';
	return 0;
}

static int record(sqlite3 *h, const char *node, const char *const *apex,
                  size_t n, char *err, size_t errlen)
{
	sqlite3_stmt *del = NULL, *ins = NULL;
	double now = clock_unix();
	char canon[256];
	int rc = 0;

	if (sqlite3_prepare_v2(h, "DELETE FROM served_zones WHERE node = ?",
	                       -1, &del, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(h, "INSERT OR IGNORE INTO served_zones (node, "
	                       "zone, updated) VALUES (?, ?, ?)", -1, &ins,
	                       NULL) != SQLITE_OK) {
		rc = store_sqlerr(h, err, errlen, "served zones");
		goto out;
	}
	sqlite3_bind_text(del, 1, node, -1, SQLITE_STATIC);
	if (sqlite3_step(del) != SQLITE_DONE) {
		rc = store_sqlerr(h, err, errlen, "served zones");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (canon_apex(apex[i], canon) < 0) {
			rc = store_errf(err, errlen, -EINVAL, "served zones: "
			                "'%s' is not a domain name", apex[i]);
			goto out;
		}
		sqlite3_reset(ins);
		sqlite3_bind_text(ins, 1, node, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 2, canon, -1, SQLITE_TRANSIENT);
		sqlite3_bind_double(ins, 3, now);
		if (sqlite3_step(ins) != SQLITE_DONE) {
			rc = store_sqlerr(h, err, errlen, "served zones");
			goto out;
		}
	}
out:
	sqlite3_finalize(del);
	sqlite3_finalize(ins);
	return rc;
}

int served_record(struct store *db, const char *node,
                  const char *const *apex, size_t n, char *err,
                  size_t errlen)
{
	if (!node || !*node)
		return store_errf(err, errlen, -EINVAL,
		                  "served zones: empty node name");
	STORE_TXN(db->h, err, errlen, record(db->h, node, apex, n, err,
	                                     errlen));
}

int served_load(struct store *db, struct served **out, char *err,
                size_t errlen)
{
	struct served *z = calloc(1, sizeof(*z));
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int rc = 0, step;

	*out = NULL;
	if (!z)
		return store_errf(err, errlen, -ENOMEM, "served zones: out of "
		                  "memory");
	/* A store opened read-only before its migration to version 7. */
	if (sqlite3_prepare_v2(db->h, "SELECT count(*) FROM sqlite_master "
	                       "WHERE type = 'table' AND name = "
	                       "'served_zones'", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		rc = store_sqlerr(db->h, err, errlen, "served zones");
		goto out;
	}
	if (sqlite3_column_int(st, 0) == 0)
		goto out;
	sqlite3_finalize(st);
	if (sqlite3_prepare_v2(db->h, "SELECT DISTINCT zone FROM served_zones "
	                       "ORDER BY zone", -1, &st, NULL) != SQLITE_OK) {
		rc = store_sqlerr(db->h, err, errlen, "served zones");
		goto out;
	}
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		const char *s = (const char *)sqlite3_column_text(st, 0);

		if (z->n == cap) {
			size_t nc = cap ? 2 * cap : 8;
			char **na = realloc(z->apex, nc * sizeof(*na));

			if (!na) {
				rc = -ENOMEM;
				break;
			}
			z->apex = na;
			cap = nc;
		}
		if (!(z->apex[z->n] = strdup(s ? s : ""))) {
			rc = -ENOMEM;
			break;
		}
		z->n++;
	}
	if (rc == -ENOMEM)
		store_errf(err, errlen, rc, "served zones: out of memory");
	else if (step != SQLITE_DONE)
		rc = store_sqlerr(db->h, err, errlen, "served zones");
out:
	sqlite3_finalize(st);
	if (rc < 0)
		served_free(z);
	else
		*out = z;
	return rc;
}

void served_free(struct served *z)
{
	if (!z)
		return;
	for (size_t i = 0; i < z->n; i++)
		free(z->apex[i]);
	free(z->apex);
	free(z);
}

size_t served_count(const struct served *z)
{
	return z ? z->n : 0;
}

/* True when canonical name c is apex a or under it. */
static bool under(const char *c, size_t clen, const char *a)
{
	size_t alen = strlen(a);

	if (strcmp(a, ".") == 0)
		return true;
	if (clen < alen || strcmp(c + clen - alen, a) != 0)
		return false;
	return clen == alen || c[clen - alen - 1] == '.';
}

bool served_outside(const struct served *z, const char *name)
{
	char c[256];
	size_t len;

	if (!z || z->n == 0)
		return false;
	if (canon_apex(name, c) < 0)
		return true;
	len = strlen(c);
	for (size_t i = 0; i < z->n; i++)
		if (under(c, len, z->apex[i]))
			return false;
	return true;
}

const char *served_list(const struct served *z, char *buf, size_t len)
{
	size_t o = 0;

	if (!len)
		return buf;
	buf[0] = '\0';
	for (size_t i = 0; z && i < z->n; i++) {
		size_t need = strlen(z->apex[i]) + (i ? 2 : 0);

		if (o + need + 4 >= len) {
			snprintf(buf + o, len - o, "%s...", i ? ", " : "");
			break;
		}
		o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? ", " : "",
		                      z->apex[i]);
	}
	return buf;
}
