/* tests/unit/test_answer.c - a zone file (dnsd/zone.h) and a balanced name
 * (policy/ through db/svc_load.h) in a snapshot (dnsd/snap.h), answered by
 * dnsd/answer.h: one table of query -> rcode, AA and the three sections,
 * read back with ldns. Then the snapshot lifecycle: clone, install (swap),
 * retire and discard free exactly the parts no longer shared (run under
 * make asan, a double free or a leak fails it). Last, the same zone signed
 * (dnsd/dnssec.h): a table of DO queries -> rcode and the record types of
 * each section, with the compact-denial NSEC's owner, next name and
 * bitmap. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ldns/ldns.h>
#include <urcu-qsbr.h>

#include "db/store.h"
#include "db/store_sql.h"
#include "db/svc_load.h"
#include "dnsd/answer.h"
#include "dnsd/dnssec.h"
#include "dnsd/snap.h"
#include "dnsd/zone.h"
#include "tests/unit/harness.h"

/* Table rows leave the fields that do not apply to them zero. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

static const char zone_text[] =
	"$ORIGIN t.example.\n"
	"$TTL 300\n"
	"@ IN SOA ns1 hostmaster 2026010101 3600 600 86400 60\n"
	"@ IN NS ns1\n"
	"ns1 IN A 192.0.2.53\n"
	"www IN A 192.0.2.1\n"
	"www IN AAAA 2001:db8::1\n"
	"alias IN CNAME www\n"
	"ext IN CNAME www.other.example.\n"
	"*.wild IN A 192.0.2.9\n"
	"sub IN NS ns.sub\n"
	"ns.sub IN A 192.0.2.54\n"
	"mx IN MX 10 mail\n"
	"mail IN A 192.0.2.25\n"
	"a.b.c IN TXT \"deep\"\n";

static const char store_sql[] =
	"INSERT INTO services (id, name, policy, ttl) VALUES "
	"(1, 'lb.t.example.', 'failover', 20);"
	"INSERT INTO endpoints (service_id, target, priority) VALUES "
	"(1, '192.0.2.100', 0), (1, '192.0.2.101', 1);";

struct acase {
	const char *qname;
	const char *qtype;
	int rcode;
	bool aa;
	/* Records as "owner TYPE rdata", joined by "; ", in order. */
	const char *answer, *authority, *additional;
};

static const struct acase cases[] = {
	{ "www.t.example.", "A", LDNS_RCODE_NOERROR, true,
	  "www.t.example. A 192.0.2.1" },
	{ "WwW.t.EXAMPLE.", "AAAA", LDNS_RCODE_NOERROR, true,
	  "WwW.t.EXAMPLE. AAAA 2001:db8::1" },
	{ "www.t.example.", "MX", LDNS_RCODE_NOERROR, true, "",
	  "t.example. SOA ns1.t.example. hostmaster.t.example. 2026010101 "
	  "3600 600 86400 60" },
	{ "nope.t.example.", "A", LDNS_RCODE_NXDOMAIN, true, "",
	  "t.example. SOA ns1.t.example. hostmaster.t.example. 2026010101 "
	  "3600 600 86400 60" },
	{ "alias.t.example.", "A", LDNS_RCODE_NOERROR, true,
	  "alias.t.example. CNAME www.t.example.; www.t.example. A 192.0.2.1" },
	{ "ext.t.example.", "A", LDNS_RCODE_NOERROR, true,
	  "ext.t.example. CNAME www.other.example." },
	{ "x.wild.t.example.", "A", LDNS_RCODE_NOERROR, true,
	  "x.wild.t.example. A 192.0.2.9" },
	{ "host.sub.t.example.", "A", LDNS_RCODE_NOERROR, false, "",
	  "sub.t.example. NS ns.sub.t.example.",
	  "ns.sub.t.example. A 192.0.2.54" },
	{ "mx.t.example.", "MX", LDNS_RCODE_NOERROR, true,
	  "mx.t.example. MX 10 mail.t.example.", "",
	  "mail.t.example. A 192.0.2.25" },
	{ "b.c.t.example.", "TXT", LDNS_RCODE_NOERROR, true, "",
	  "t.example. SOA ns1.t.example. hostmaster.t.example. 2026010101 "
	  "3600 600 86400 60" },
	{ "t.example.", "NS", LDNS_RCODE_NOERROR, true,
	  "t.example. NS ns1.t.example.", "", "ns1.t.example. A 192.0.2.53" },
	{ "other.example.", "A", LDNS_RCODE_REFUSED, false },
	{ "lb.t.example.", "A", LDNS_RCODE_NOERROR, true,
	  "lb.t.example. A 192.0.2.100" },
	{ "lb.t.example.", "AAAA", LDNS_RCODE_NOERROR, true, "",
	  "t.example. SOA ns1.t.example. hostmaster.t.example. 2026010101 "
	  "3600 600 86400 60" },
};

/* "owner TYPE rdata; ..." of a section. */
static void section_text(const ldns_rr_list *l, char *out, size_t len)
{
	size_t n = 0;

	out[0] = '\0';
	for (size_t i = 0; i < ldns_rr_list_rr_count(l); i++) {
		const ldns_rr *rr = ldns_rr_list_rr(l, i);
		char *owner = ldns_rdf2str(ldns_rr_owner(rr));
		char *type = ldns_rr_type2str(ldns_rr_get_type(rr));

		if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_OPT) {
			free(owner);
			free(type);
			continue;
		}
		n += (size_t)snprintf(out + n, len - n, "%s%s %s", n ? "; " : "",
		                      owner, type);
		for (size_t k = 0; k < ldns_rr_rd_count(rr) && n < len; k++) {
			char *rd = ldns_rdf2str(ldns_rr_rdf(rr, k));

			n += (size_t)snprintf(out + n, len - n, " %s", rd);
			free(rd);
		}
		free(owner);
		free(type);
	}
}

static struct zone *load_zone(void)
{
	char path[] = "/tmp/test_answer.XXXXXX", err[256];
	int fd = mkstemp(path);
	struct zone *z = NULL;

	CHECK(fd >= 0 && write(fd, zone_text, sizeof(zone_text) - 1) ==
	      (ssize_t)(sizeof(zone_text) - 1), "zone file");
	if (fd >= 0)
		close(fd);
	CHECK(zone_load(path, NULL, &z, err, sizeof err) == 0, "zone_load: %s",
	      err);
	unlink(path);
	return z;
}

static struct svc_set *load_services(void)
{
	struct store *db = NULL;
	struct svc_set *set = NULL;
	char err[256];

	CHECK(store_open(":memory:", STORE_CREATE, &db, err, sizeof err) == 0,
	      "store_open: %s", err);
	if (!db)
		return NULL;
	CHECK(store_exec(db->h, store_sql) == 0, "store rows: %s",
	      store_errmsg(db));
	CHECK(svc_load(db, &set, err, sizeof err) == 0 && set->n == 1 &&
	      set->n_problems == 0, "svc_load: %s", err);
	store_close(db);
	return set;
}

static void test_answers(const struct snap *s)
{
	struct stats st;
	struct answer_worker w;
	struct answer_client cl = { .addr = IN6ADDR_LOOPBACK_INIT };

	memset(&st, 0, sizeof st);
	CHECK(answer_worker_init(&w, &st, 16, 1) == 0, "answer_worker_init");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct acase *c = &cases[i];
		ldns_pkt *q = NULL, *r = NULL;
		uint8_t *wire = NULL, out[ANSWER_MAX];
		size_t wlen = 0, n;
		char got[1024];

		CHECK(ldns_pkt_query_new_frm_str(&q, c->qname,
		      ldns_get_rr_type_by_name(c->qtype), LDNS_RR_CLASS_IN,
		      LDNS_RD) == LDNS_STATUS_OK, "%s: query", c->qname);
		ldns_pkt_set_id(q, (uint16_t)(0x100 + i));
		CHECK(ldns_pkt2wire(&wire, q, &wlen) == LDNS_STATUS_OK, "wire");
		n = answer_query(s, wire, wlen, out, &cl, &w);
		CHECK(n > 0 && ldns_wire2pkt(&r, out, n) == LDNS_STATUS_OK,
		      "%s %s: no parsable answer (%zu octets)", c->qname,
		      c->qtype, n);
		if (r) {
			CHECK(ldns_pkt_id(r) == 0x100 + i && ldns_pkt_qr(r),
			      "%s: id and QR", c->qname);
			CHECK((int)ldns_pkt_get_rcode(r) == c->rcode,
			      "%s %s: rcode %d, want %d", c->qname, c->qtype,
			      ldns_pkt_get_rcode(r), c->rcode);
			CHECK(ldns_pkt_aa(r) == c->aa, "%s %s: AA %d", c->qname,
			      c->qtype, ldns_pkt_aa(r));
			section_text(ldns_pkt_answer(r), got, sizeof got);
			CHECK(strcmp(got, c->answer ? c->answer : "") == 0,
			      "%s %s: answer '%s', want '%s'", c->qname,
			      c->qtype, got, c->answer ? c->answer : "");
			section_text(ldns_pkt_authority(r), got, sizeof got);
			CHECK(strcmp(got, c->authority ? c->authority : "") == 0,
			      "%s %s: authority '%s', want '%s'", c->qname,
			      c->qtype, got, c->authority ? c->authority : "");
			section_text(ldns_pkt_additional(r), got, sizeof got);
			CHECK(strcmp(got, c->additional ? c->additional : "") == 0,
			      "%s %s: additional '%s', want '%s'", c->qname,
			      c->qtype, got,
			      c->additional ? c->additional : "");
		}
		ldns_pkt_free(q);
		ldns_pkt_free(r);
		free(wire);
	}
	answer_worker_fini(&w);
}

/* One key signing everything (ldns-keygen -a ECDSAP256SHA256 -k). */
static const char key_pub[] =
	"t.example.\tIN\tDNSKEY\t257 3 13 LQDkzw21ZT3o8PgH6yNlrv98TRmcVleVfZSTVs95wfMi"
	"dqb4yzmj8gQknUj5s8hqAqjQuH15VpgBWyhwelB1BQ== ;{id = 64048 (ksk), size = 256b}\n";
static const char key_priv[] =
	"Private-key-format: v1.2\nAlgorithm: 13 (ECDSAP256SHA256)\n"
	"PrivateKey: PBui3BwwDng3W5Tshr9XR1CdImaNPtdxPES9y7ACmNA=\n";

struct dcase {
	const char *qname, *qtype;
	bool co;                 /* EDNS CO flag (RFC 9824) */
	int rcode;
	bool aa;
	const char *answer, *authority;   /* types, space-separated */
	const char *nsec;        /* the NSEC's "owner next types", or NULL */
};

static const struct dcase dcases[] = {
	{ "www.t.example.", "A", false, LDNS_RCODE_NOERROR, true, "A RRSIG", "" },
	{ "t.example.", "DNSKEY", false, LDNS_RCODE_NOERROR, true, "DNSKEY RRSIG", "" },
	{ "t.example.", "CDS", false, LDNS_RCODE_NOERROR, true, "CDS RRSIG", "" },
	{ "alias.t.example.", "A", false, LDNS_RCODE_NOERROR, true,
	  "CNAME RRSIG A RRSIG", "" },
	{ "x.wild.t.example.", "A", false, LDNS_RCODE_NOERROR, true, "A RRSIG", "" },
	{ "lb.t.example.", "A", false, LDNS_RCODE_NOERROR, true, "A RRSIG", "" },
	{ "nope.t.example.", "A", false, LDNS_RCODE_NOERROR, true, "",
	  "SOA RRSIG NSEC RRSIG", "nope.t.example. \\000.nope.t.example. RRSIG NSEC TYPE128" },
	{ "nope.t.example.", "A", true, LDNS_RCODE_NXDOMAIN, true, "",
	  "SOA RRSIG NSEC RRSIG", "nope.t.example. \\000.nope.t.example. RRSIG NSEC TYPE128" },
	{ "www.t.example.", "MX", false, LDNS_RCODE_NOERROR, true, "",
	  "SOA RRSIG NSEC RRSIG", "www.t.example. \\000.www.t.example. A AAAA RRSIG NSEC" },
	{ "b.c.t.example.", "A", false, LDNS_RCODE_NOERROR, true, "",
	  "SOA RRSIG NSEC RRSIG", "b.c.t.example. \\000.b.c.t.example. RRSIG NSEC" },
	{ "lb.t.example.", "AAAA", false, LDNS_RCODE_NOERROR, true, "",
	  "SOA RRSIG NSEC RRSIG", "lb.t.example. \\000.lb.t.example. A RRSIG NSEC" },
	{ "t.example.", "TXT", false, LDNS_RCODE_NOERROR, true, "",
	  "SOA RRSIG NSEC RRSIG",
	  "t.example. \\000.t.example. NS SOA RRSIG NSEC DNSKEY CDS CDNSKEY" },
	{ "ext.t.example.", "A", false, LDNS_RCODE_NOERROR, true, "CNAME RRSIG", "" },
	/* a referral: NS unsigned, the proof of no DS signed */
	{ "host.sub.t.example.", "A", false, LDNS_RCODE_NOERROR, false, "",
	  "NS NSEC RRSIG", "sub.t.example. \\000.sub.t.example. NS RRSIG NSEC" },
	{ "sub.t.example.", "DS", false, LDNS_RCODE_NOERROR, true, "",
	  "SOA RRSIG NSEC RRSIG", "sub.t.example. \\000.sub.t.example. NS RRSIG NSEC" },
};

static void types_text(const ldns_rr_list *l, char *out, size_t len,
		       char *nsec, size_t nlen)
{
	size_t n = 0;

	out[0] = '\0';
	for (size_t i = 0; i < ldns_rr_list_rr_count(l); i++) {
		const ldns_rr *rr = ldns_rr_list_rr(l, i);
		char *type = ldns_rr_type2str(ldns_rr_get_type(rr));

		if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_OPT)
			n += (size_t)snprintf(out + n, len - n, "%s%s", n ? " " : "", type);
		free(type);
		if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_NSEC) {
			char *o = ldns_rdf2str(ldns_rr_owner(rr));
			char *nx = ldns_rdf2str(ldns_rr_rdf(rr, 0));
			char *bm = ldns_rdf2str(ldns_rr_rdf(rr, 1));

			snprintf(nsec, nlen, "%s %s %s", o, nx, bm);
			/* ldns ends the bitmap text with a space */
			while (strlen(nsec) && nsec[strlen(nsec) - 1] == ' ')
				nsec[strlen(nsec) - 1] = '\0';
			free(o);
			free(nx);
			free(bm);
		}
	}
}

static void test_signed(const struct snap *s)
{
	struct stats st;
	struct answer_worker w;
	struct answer_client cl = { .addr = IN6ADDR_LOOPBACK_INIT };

	memset(&st, 0, sizeof st);
	CHECK(answer_worker_init(&w, &st, 16, 1) == 0 && w.dw, "signing worker");
	for (size_t i = 0; i < sizeof(dcases) / sizeof(dcases[0]); i++) {
		const struct dcase *c = &dcases[i];
		ldns_pkt *q = NULL, *r = NULL;
		uint8_t *wire = NULL, out[ANSWER_MAX];
		size_t wlen = 0, n;
		char got[512], nsec[512] = "";

		CHECK(ldns_pkt_query_new_frm_str(&q, c->qname,
		      ldns_get_rr_type_by_name(c->qtype), LDNS_RR_CLASS_IN, 0) ==
		      LDNS_STATUS_OK, "%s: query", c->qname);
		ldns_pkt_set_edns_udp_size(q, 1232);
		ldns_pkt_set_edns_do(q, true);
		if (c->co)              /* the flags field holds DO too */
			ldns_pkt_set_edns_z(q, 0x8000 | 0x4000);
		CHECK(ldns_pkt2wire(&wire, q, &wlen) == LDNS_STATUS_OK, "wire");
		n = answer_query(s, wire, wlen, out, &cl, &w);
		CHECK(n > 0 && ldns_wire2pkt(&r, out, n) == LDNS_STATUS_OK,
		      "%s %s: no parsable answer", c->qname, c->qtype);
		if (r) {
			CHECK((int)ldns_pkt_get_rcode(r) == c->rcode && ldns_pkt_aa(r) == c->aa,
			      "%s %s: rcode %d AA %d", c->qname, c->qtype,
			      ldns_pkt_get_rcode(r), ldns_pkt_aa(r));
			types_text(ldns_pkt_answer(r), got, sizeof got, nsec, sizeof nsec);
			CHECK(strcmp(got, c->answer) == 0, "%s %s: answer '%s', want '%s'",
			      c->qname, c->qtype, got, c->answer);
			types_text(ldns_pkt_authority(r), got, sizeof got, nsec, sizeof nsec);
			CHECK(strcmp(got, c->authority) == 0,
			      "%s %s: authority '%s', want '%s'", c->qname, c->qtype,
			      got, c->authority);
			CHECK(strcmp(nsec, c->nsec ? c->nsec : "") == 0,
			      "%s %s: NSEC '%s', want '%s'", c->qname, c->qtype, nsec,
			      c->nsec ? c->nsec : "");
		}
		ldns_pkt_free(q);
		ldns_pkt_free(r);
		free(wire);
	}
	/* Without DO: no DNSSEC records, NXDOMAIN as before. */
	{
		ldns_pkt *q = NULL, *r = NULL;
		uint8_t *wire = NULL, out[ANSWER_MAX];
		size_t wlen = 0, n;

		ldns_pkt_query_new_frm_str(&q, "nope.t.example.", LDNS_RR_TYPE_A,
					   LDNS_RR_CLASS_IN, 0);
		ldns_pkt2wire(&wire, q, &wlen);
		n = answer_query(s, wire, wlen, out, &cl, &w);
		CHECK(n > 0 && ldns_wire2pkt(&r, out, n) == LDNS_STATUS_OK &&
		      ldns_pkt_get_rcode(r) == LDNS_RCODE_NXDOMAIN &&
		      ldns_pkt_nscount(r) == 1, "no DO: plain NXDOMAIN");
		ldns_pkt_free(q);
		ldns_pkt_free(r);
		free(wire);
	}
	answer_worker_fini(&w);
}

static struct dnssec_set *load_keys(struct zone *z)
{
	char dir[] = "/tmp/test_answer_keys.XXXXXX", path[128], err[256];
	struct dnssec_set *sec = NULL;
	FILE *f;

	CHECK(mkdtemp(dir) != NULL, "key dir");
	snprintf(path, sizeof path, "%s/Kt.example.+013+64048.key", dir);
	CHECK((f = fopen(path, "w")) && fputs(key_pub, f) >= 0 && fclose(f) == 0, "key");
	snprintf(path, sizeof path, "%s/Kt.example.+013+64048.private", dir);
	CHECK((f = fopen(path, "w")) && fputs(key_priv, f) >= 0 && fclose(f) == 0, "private");
	CHECK(dnssec_load(dir, &z, 1, time(NULL), &sec, err, sizeof err) == 0 &&
	      sec && sec->n == 1 && sec->zones[0].n_zsk == 1, "dnssec_load: %s", err);
	unlink(path);
	snprintf(path, sizeof path, "%s/Kt.example.+013+64048.key", dir);
	unlink(path);
	rmdir(dir);
	return sec;
}

/* A view with nothing checked, as the health service builds it. */
static struct hstate_view *empty_view(void)
{
	struct hstate *h = hstate_new(NULL);
	struct hstate_view *v = h ? hstate_view_build(h) : NULL;

	hstate_free(h);
	return v;
}

int main(void)
{
	struct answer_conf conf = { .max_udp = 1232, .ecs_max_v4 = 24,
	                            .ecs_max_v6 = 56 };
	struct zone *z = load_zone();
	struct svc_set *set = load_services();
	struct snap *s1, *s2, *s3;

	if (!z || !set)
		return TEST_DONE();
	rcu_register_thread();

	/* The first snapshot: zones, services, a view. */
	s1 = snap_clone(NULL, 1, &conf, 1);
	CHECK(s1 && snap_set_zones(s1, &z, 1) == 0, "first snapshot");
	s1->svc = set;
	s1->hv = empty_view();
	CHECK(snap_install(s1, NULL) == 0 && s1->svcx &&
	      s1->svcx->skipped == 0, "install the first");
	CHECK(snap_current() == s1, "s1 in force");
	test_answers(snap_current());

	/* A health swap: everything shared but the view, the index kept. */
	s2 = snap_clone(s1, 1, &conf, 2);
	CHECK(s2 && s2->zt == s1->zt && s2->svc == s1->svc &&
	      s2->n_zones == 1 && s2->gen == 2 &&
	      s2->conf.max_udp == 1232, "clone shares the parts");
	s2->hv = empty_view();
	CHECK(snap_install(s2, s1) == 0, "install the second");
	/* s1 is retired: its view is gone, the zone and set live on in s2. */
	CHECK(snap_current() == s2 && s2->svcx != NULL, "s2 in force");
	test_answers(snap_current());

	/* A snapshot built and thrown away: only its own parts go. */
	s3 = snap_clone(s2, 1, &conf, 3);
	s3->hv = empty_view();
	snap_discard(s3, s2);
	CHECK(snap_current() == s2, "discard leaves s2 in force");
	test_answers(snap_current());

	/* Signed: the same zone with its key; retiring s2 keeps the zone. */
	dnssec_configure(1 << 20, 0);
	s3 = snap_clone(s2, 1, &conf, 4);
	CHECK(s3 != NULL, "clone for signing");
	s3->sec = load_keys(s3->zones[0]);
	s3->hv = empty_view();
	CHECK(snap_install(s3, s2) == 0 && snap_current() == s3, "install signed");
	test_signed(snap_current());
	test_answers(snap_current());      /* no DO: unchanged */

	/* Shutdown: the last one retired with nothing left in force. */
	snap_retire(snap_publish(NULL), NULL);
	rcu_unregister_thread();
	return TEST_DONE();
}
