/* tests/unit/test_cred.c - API credentials: file parsing (errors name the
 * line and field), lookup by token, roles, hashed entries, known agents,
 * the shared token, and the file permission check. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>

#include <openssl/x509v3.h>

#include "health/cred.h"
#include "tests/unit/harness.h"

#define TOK_A "agent-token-0123456789"
#define TOK_B "agent-token-abcdefghij"
#define TOK_W "admin-token-0123456789"
#define TOK_R "read-token-0123456789x"
/* sha256 of "hashed-token-0123456789" */
#define HASHED "sha256:"                                                  \
	"b22fd458dbe2426bebe59cfafe4c46e013df3efd439e4d91cda767ac3052ddd0"

static void test_parse_errors(void)
{
	static const struct {
		const char *text;
		int rc;
		const char *err;        /* substring of the message */
	} cases[] = {
		{ "", 0, NULL },
		{ "# only a comment\n\n   \n", 0, NULL },
		{ "admin ops " TOK_W "\n", 0, NULL },
		{ "admin ops " TOK_W " # trailing comment\n", 0, NULL },
		{ "admin ops " TOK_W "\r\n", 0, NULL },
		{ "boss ops " TOK_W "\n", -EINVAL, "x:1: role:" },
		{ "admin ops\n", -EINVAL, "x:1: expected ROLE NAME TOKEN" },
		{ "\nadmin ops " TOK_W " extra\n", -EINVAL, "x:2: expected" },
		{ "agent a short\n", -EINVAL, "x:1: token: must be 16" },
		{ "agent a sha256:abcd\n", -EINVAL, "x:1: token: sha256" },
		{ "agent a sha256:zz" "c2ed0f7ceaf5fa0e1f4a1a1d8bd63b5e5fa1b8d8"
		  "1a7f6d8a3a0b3a51d1f4b7\n", -EINVAL, "x:1: token: sha256" },
		{ "agent a " TOK_A "\nagent b " TOK_A "\n", -EINVAL,
		  "x:2: token: the same token" },
		{ "agent aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		  "aaaaaa " TOK_A "\n", -EINVAL, "x:1: name:" },
		{ "agent a\x01 " TOK_A "\n", -EINVAL, "x:1: name:" },
		{ "agent a " TOK_A "\x7f\n", -EINVAL, "x:1: token: control" },
		{ "agent a cert\nagent b cert\nagent a cert\n", 0, NULL },
		{ "agent a cert # certificate only\n", 0, NULL },
		{ "admin a cert\n", -EINVAL, "x:1: token: 'cert'" },
		{ "\nread a cert\n", -EINVAL, "x:2: token: 'cert'" },
		{ "agent a Cert\n", -EINVAL, "x:1: token: must be 16" },
		{ "agent a certs\n", -EINVAL, "x:1: token: must be 16" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cred_set *s = NULL;
		char err[256] = "";
		int rc = cred_parse(cases[i].text, strlen(cases[i].text), "x",
		                    &s, err, sizeof(err));

		CHECK(rc == cases[i].rc, "case %zu: rc %d, want %d (%s)", i, rc,
		      cases[i].rc, err);
		CHECK(rc == 0 ? s != NULL : s == NULL, "case %zu: set", i);
		if (cases[i].err)
			CHECK(strstr(err, cases[i].err) != NULL,
			      "case %zu: err '%s' lacks '%s'", i, err,
			      cases[i].err);
		cred_free(s);
	}
	{
		struct cred_set *s = NULL;
		char err[128];

		CHECK(cred_parse("admin a " TOK_W "\0x", 33, "x", &s, err,
		                 sizeof(err)) == -EINVAL && strstr(err, "NUL"),
		      "NUL byte refused: %s", err);
	}
}

static void test_lookup(void)
{
	static const char text[] =
		"# rotation: two tokens for agent eu-1\n"
		"agent eu-1 " TOK_A "\n"
		"agent eu-1 " TOK_B "\n"
		"admin ops " TOK_W "\n"
		"read dash " TOK_R "\n"
		"agent us-1 " HASHED "\n"
		"agent ap-1 cert\n"
		"agent ap-2 cert\n";
	static const struct {
		const char *token;
		int rc;
		unsigned role;
		const char *name;
	} cases[] = {
		{ TOK_A, 0, CRED_AGENT, "eu-1" },
		{ TOK_B, 0, CRED_AGENT, "eu-1" },
		{ TOK_W, 0, CRED_ADMIN, "ops" },
		{ TOK_R, 0, CRED_READ, "dash" },
		{ "hashed-token-0123456789", 0, CRED_AGENT, "us-1" },
		{ "nope-token-0123456789", -ENOENT, 0, NULL },
		{ "agent-token-012345678", -ENOENT, 0, NULL },   /* prefix */
		{ "", -ENOENT, 0, NULL },
		{ "cert", -ENOENT, 0, NULL },   /* no token on cert lines */
	};
	struct cred_set *s = NULL;
	char err[256] = "";

	CHECK(cred_parse(text, strlen(text), "creds", &s, err, sizeof(err)) == 0,
	      "parse: %s", err);
	if (!s)
		return;
	CHECK(cred_count(s) == 7, "7 credentials, got %zu", cred_count(s));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cred_caller c;
		int rc = cred_check(s, cases[i].token, strlen(cases[i].token), &c);

		CHECK(rc == cases[i].rc, "lookup %zu: rc %d", i, rc);
		if (rc == 0)
			CHECK(c.role == cases[i].role && !c.any_agent &&
			      strcmp(c.name, cases[i].name) == 0,
			      "lookup %zu: %s %s", i, cred_role_name(c.role),
			      c.name);
	}
	CHECK(cred_agents_known(s), "from a file: agents are known");
	CHECK(cred_agent_known(s, "eu-1") && cred_agent_known(s, "us-1") &&
	      cred_agent_known(s, "ap-1") && cred_agent_known(s, "ap-2"),
	      "agents eu-1, us-1 and the certificate-only ap-1, ap-2 known");
	CHECK(!cred_agent_known(s, "ops") && !cred_agent_known(s, "ghost"),
	      "admin names and invented names are not agents");
	CHECK(cred_add_shared(s, "token", "shared") == 0, "add shared");
	CHECK(cred_add_shared(s, "token", TOK_W) == -EEXIST,
	      "shared token equal to a file token refused");
	{
		struct cred_caller c;

		CHECK(cred_check(s, "shared", 6, &c) == 0 &&
		      c.role == CRED_ADMIN && c.any_agent,
		      "shared token: admin, any agent");
	}
	cred_free(s);

	s = cred_new();
	CHECK(s && !cred_agents_known(s), "empty set: agents not restricted");
	cred_free(s);
}

static void test_load_permissions(void)
{
	char path[] = "/tmp/test_cred_XXXXXX";
	int fd = mkstemp(path);
	struct cred_set *s = NULL;
	char err[256] = "";
	static const char text[] = "admin ops " TOK_W "\n";

	CHECK(fd >= 0, "mkstemp");
	if (fd < 0)
		return;
	CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text), "write");
	close(fd);
	chmod(path, 0600);
	CHECK(cred_load(path, false, &s, err, sizeof(err)) == 0 && s,
	      "0600 loads: %s", err);
	cred_free(s);
	chmod(path, 0644);
	CHECK(cred_load(path, false, &s, err, sizeof(err)) == -EPERM && !s &&
	      strstr(err, "0644") && strstr(err, path),
	      "0644 refused: %s", err);
	CHECK(cred_load(path, true, &s, err, sizeof(err)) == 0 && s,
	      "0644 loads when allowed: %s", err);
	cred_free(s);
	unlink(path);
	CHECK(cred_load(path, false, &s, err, sizeof(err)) == -ENOENT &&
	      strstr(err, path), "missing file: %s", err);
	CHECK(cred_load("/tmp", false, &s, err, sizeof(err)) == -EINVAL,
	      "directory refused: %s", err);
}

/* A certificate with subject CN cn (NULL: none) and subjectAltName san
 * (OpenSSL's config syntax, NULL: none); unsigned: cred_cert_agent reads
 * names only. */
static X509 *make_cert(const char *cn, const char *san)
{
	X509 *x = X509_new();
	X509_NAME *n = x ? X509_get_subject_name(x) : NULL;
	X509_EXTENSION *e;
	X509V3_CTX ctx;

	if (!x)
		return NULL;
	if (cn)
		X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
		                           (const unsigned char *)cn, -1, -1, 0);
	if (san) {
		X509V3_set_ctx_nodb(&ctx);
		X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
		e = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, san);
		if (!e || !X509_add_ext(x, e, -1)) {
			X509_EXTENSION_free(e);
			X509_free(x);
			return NULL;
		}
		X509_EXTENSION_free(e);
	}
	return x;
}

static void test_cert_agent(void)
{
	static const struct {
		const char *cn, *san;
		int rc;
		const char *name;       /* rc 0: the agent; else in err */
	} cases[] = {
		{ "x", "URI:gslb-agent:eu-1", 0, "eu-1" },
		{ NULL, "URI:GSLB-Agent:eu-1", 0, "eu-1" },
		{ "eu-9", "DNS:eu-9.example,URI:https://a.example/,"
		  "URI:gslb-agent:EU-2,email:a@example", 0, "EU-2" },
		{ "eu-1", NULL, -ENOENT, "no gslb-agent:NAME URI" },
		{ "eu-1", "DNS:eu-1", -ENOENT, "no gslb-agent:NAME URI" },
		{ NULL, "URI:gslb-agent-x:eu-1", -ENOENT, "no gslb-agent:" },
		{ NULL, "URI:gslb-agent:a,URI:gslb-agent:b", -EINVAL,
		  "more than one" },
		{ NULL, "URI:gslb-agent:a,URI:gslb-agent:a", -EINVAL,
		  "more than one" },
		{ NULL, "URI:gslb-agent:", -EINVAL, "1..63 printable" },
		{ NULL, "URI:gslb-agent:a b", -EINVAL, "1..63 printable" },
		{ NULL, "URI:gslb-agent:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		  "aaaaaaaaaaaaaaaaaaaaaaa", -EINVAL, "1..63 printable" },
		{ NULL, "URI:gslb-agent:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		  "aaaaaaaaaaaaaaaaaaaaaa", 0,
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		X509 *x = make_cert(cases[i].cn, cases[i].san);
		char name[CRED_NAME_MAX] = "junk", err[200] = "";
		int rc;

		CHECK(x != NULL, "case %zu: certificate made", i);
		if (!x)
			continue;
		rc = cred_cert_agent(x, name, sizeof(name), err, sizeof(err));
		CHECK(rc == cases[i].rc, "case %zu: rc %d, want %d (%s)", i, rc,
		      cases[i].rc, err);
		if (cases[i].rc == 0)
			CHECK(strcmp(name, cases[i].name) == 0,
			      "case %zu: name '%s', want '%s'", i, name,
			      cases[i].name);
		else
			CHECK(name[0] == 0 && strstr(err, cases[i].name),
			      "case %zu: name '%s', err '%s' lacks '%s'", i,
			      name, err, cases[i].name);
		X509_free(x);
	}
	{
		char name[CRED_NAME_MAX], err[200];

		CHECK(cred_cert_agent(NULL, name, sizeof(name), err,
		                      sizeof(err)) == -ENOENT && !name[0],
		      "no certificate names no agent");
	}
}

int main(void)
{
	test_cert_agent();
	test_parse_errors();
	test_lookup();
	test_load_permissions();
	return TEST_DONE();
}
