/* tests/unit/test_zone.c - dnsd/zone.h, table-driven: zone files that load
 * (the apex, delegation and glue flags, wildcards, empty non-terminals,
 * the negative-answer SOA TTL) and zone files that must not, each with the
 * "file:line: reason" it gets. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dnsd/wire.h"
#include "dnsd/zone.h"
#include "tests/unit/harness.h"

/* Table rows leave the fields that do not apply to them zero. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#define HEAD "$ORIGIN z.example.\n$TTL 300\n" \
	"@ IN SOA ns1 host 7 3600 600 86400 60\n@ IN NS ns1\nns1 IN A 192.0.2.1\n"

struct zcase {
	const char *name;
	const char *text;
	const char *error;      /* NULL: loads; else ":LINE: reason" part */
};

static const struct zcase bad[] = {
	{ "no SOA", "$ORIGIN z.example.\nwww 300 IN A 192.0.2.1\n", "no SOA record" },
	{ "second SOA", HEAD "@ IN SOA ns1 host 8 3600 600 86400 60\n",
	  ":6: second SOA record" },
	{ "outside the zone", HEAD "www.other.example. IN A 192.0.2.2\n",
	  ":6: www.other.example. is outside the zone" },
	{ "CNAME and other data", HEAD "www IN CNAME ns1\nwww IN A 192.0.2.3\n",
	  "CNAME and other data at the same name" },
	{ "two CNAMEs", HEAD "www IN CNAME ns1\nwww IN CNAME ns2\n",
	  "more than one CNAME at a name" },
	{ "class CH", HEAD "www CH A 192.0.2.4\n", ":6: class is not IN" },
	{ "$INCLUDE", HEAD "$INCLUDE other.zone\n", ":6: $INCLUDE is not supported" },
	{ "syntax", HEAD "www IN A not-an-address\n", ":6: " },
	{ "no origin, no SOA first", "$TTL 300\nwww.z.example. IN A 192.0.2.1\n",
	  "no $ORIGIN and the first record is not the SOA" },
};

static int load_text(const char *text, struct zone **z, char *err,
                     size_t errlen, char *path, size_t plen)
{
	char tmpl[] = "/tmp/test_zone.XXXXXX";
	int fd = mkstemp(tmpl), rc;
	size_t n = strlen(text);

	if (fd < 0 || write(fd, text, n) != (ssize_t)n) {
		if (fd >= 0)
			close(fd);
		return -EIO;
	}
	close(fd);
	snprintf(path, plen, "%s", tmpl);
	rc = zone_load(tmpl, NULL, z, err, errlen);
	unlink(tmpl);
	return rc;
}

static void test_bad(void)
{
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char err[512] = "", path[64] = "", want[300];
		struct zone *z = NULL;
		int rc = load_text(bad[i].text, &z, err, sizeof err, path,
		                   sizeof path);

		CHECK(rc < 0 && z == NULL, "%s: loaded (rc %d)", bad[i].name, rc);
		snprintf(want, sizeof want, "%s", path);
		CHECK(strncmp(err, want, strlen(want)) == 0 &&
		      strstr(err, bad[i].error) != NULL,
		      "%s: error '%s', want '%s...%s'", bad[i].name, err, want,
		      bad[i].error);
		zone_free(z);
	}
}

/* The node of a lower-case dotted name, or NULL. */
static const struct node *node_of(const struct zone *z, const char *dotted)
{
	uint8_t w[WIRE_NAME_MAX];
	size_t n = 0;
	const char *p = dotted;

	while (*p) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);

		w[n++] = (uint8_t)l;
		memcpy(w + n, p, l);
		n += l;
		p += l + (dot ? 1 : 0);
	}
	w[n++] = 0;
	for (size_t i = 0; i < z->n_nodes; i++)
		if (z->nodes[i]->name_len == n && memcmp(z->nodes[i]->name, w, n) == 0)
			return z->nodes[i];
	return NULL;
}

struct ncase {
	const char *name;       /* lower case, no trailing dot */
	uint8_t flags;          /* NODE_* */
	unsigned rrsets;        /* 0: empty non-terminal */
	bool wild;              /* has a "*" child */
};

static const struct ncase nodes[] = {
	{ "z.example", NODE_APEX, 2 },
	{ "ns1.z.example", 0, 1 },
	{ "www.z.example", 0, 2 },
	{ "sub.z.example", NODE_CUT, 1 },
	{ "ns.sub.z.example", NODE_OCCLUDED, 1 },
	{ "wild.z.example", 0, 0, true },
	{ "*.wild.z.example", 0, 1 },
	{ "c.z.example", 0, 0 },
	{ "b.c.z.example", 0, 0 },
	{ "a.b.c.z.example", 0, 1 },
};

static void test_good(void)
{
	static const char text[] = HEAD
		"www IN A 192.0.2.10\nwww IN AAAA 2001:db8::10\n"
		"www IN A 192.0.2.11\n"
		"sub IN NS ns.sub\nns.sub IN A 192.0.2.20\n"
		"*.wild IN A 192.0.2.30\n"
		"a.b.c IN TXT \"deep\"\n";
	char err[512] = "", path[64];
	struct zone *z = NULL;

	CHECK(load_text(text, &z, err, sizeof err, path, sizeof path) == 0 && z,
	      "good zone: %s", err);
	if (!z)
		return;
	CHECK(strcmp(z->origin, "z.example.") == 0 && z->serial == 7 &&
	      z->n_records == 10, "origin %s serial %u records %zu", z->origin,
	      z->serial, z->n_records);
	/* RFC 2308 3: the negative SOA's TTL is min(TTL, MINIMUM) = 60. */
	{
		/* owner (the apex, uncompressed), TYPE, CLASS, TTL */
		size_t at = z->apex->name_len + 4u;

		CHECK(z->neg_soa_len > at + 4 &&
		      memcmp(z->neg_soa, z->apex->name, z->apex->name_len) == 0 &&
		      wire_get16(z->neg_soa + at - 4) == TYPE_SOA &&
		      wire_get32(z->neg_soa + at) == 60, "negative SOA TTL %u",
		      z->neg_soa_len > at + 4 ? wire_get32(z->neg_soa + at) : 0);
	}
	for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++) {
		const struct node *n = node_of(z, nodes[i].name);

		CHECK(n != NULL, "%s: no node", nodes[i].name);
		if (!n)
			continue;
		CHECK(n->flags == nodes[i].flags, "%s: flags %u, want %u",
		      nodes[i].name, n->flags, nodes[i].flags);
		CHECK(n->n_rrsets == nodes[i].rrsets, "%s: %u RRsets, want %u",
		      nodes[i].name, n->n_rrsets, nodes[i].rrsets);
		CHECK((n->wild != NULL) == nodes[i].wild, "%s: wildcard child",
		      nodes[i].name);
		CHECK(n->zone == z, "%s: zone", nodes[i].name);
	}
	{
		const struct node *w = node_of(z, "www.z.example");
		const struct rrset *a = w ? zone_rrset(w, TYPE_A) : NULL;

		CHECK(a && a->count == 2 && zone_rrset(w, TYPE_AAAA) &&
		      !zone_rrset(w, TYPE_MX), "www: A x2, AAAA, no MX");
	}
	{
		const struct node *s = node_of(z, "sub.z.example");
		const struct rrset *ns = s ? zone_rrset(s, TYPE_NS) : NULL;

		CHECK(ns && ns->add_count == 1, "sub: NS with one glue record");
	}
	zone_free(z);
}

/* An origin in capitals (from $ORIGIN, taken by the SOA's owner) is the
 * same zone in lower case, and its owners are inside it. */
static void test_origin_case(void)
{
	char err[512] = "", path[64];
	struct zone *z = NULL;
	int rc = load_text("$ORIGIN Z.Example.\n$TTL 300\n"
	                   "@ IN SOA ns1 host 7 3600 600 86400 60\n"
	                   "@ IN NS ns1\nns1 IN A 192.0.2.53\n"
	                   "WWW.z.EXAMPLE. IN A 192.0.2.1\n", &z, err,
	                   sizeof err, path, sizeof path);

	CHECK(rc == 0 && z, "loaded: %s", err);
	if (z) {
		CHECK(strcmp(z->origin, "z.example.") == 0, "origin %s",
		      z->origin);
		CHECK(node_of(z, "www.z.example") != NULL, "www: no node");
	}
	zone_free(z);
}

int main(void)
{
	test_bad();
	test_good();
	test_origin_case();
	return TEST_DONE();
}
