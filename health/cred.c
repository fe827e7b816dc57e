/* health/cred.c - see cred.h. */
#include "health/cred.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

struct cred {
	unsigned char digest[SHA256_DIGEST_LENGTH];
	unsigned role;
	bool any_agent;
	bool cert_only;         /* "cert": no token, no digest */
	char name[CRED_NAME_MAX];
};

struct cred_set {
	struct cred *c;
	size_t n, cap;
	bool from_file;
	char **agents;          /* sorted names of agent credentials */
	size_t n_agents;
};

static const struct {
	const char *name;
	unsigned role;
} roles[] = {
	{ "admin", CRED_ADMIN },
	{ "agent", CRED_AGENT },
	{ "read", CRED_READ },
};

const char *cred_role_name(unsigned role)
{
	for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
		if (roles[i].role == role)
			return roles[i].name;
	return "?";
}

struct cred_set *cred_new(void)
{
	return calloc(1, sizeof(struct cred_set));
}

void cred_free(struct cred_set *s)
{
	if (!s)
		return;
	if (s->c)
		OPENSSL_cleanse(s->c, s->n * sizeof(*s->c));
	free(s->c);
	for (size_t i = 0; i < s->n_agents; i++)
		free(s->agents[i]);
	free(s->agents);
	free(s);
}

size_t cred_count(const struct cred_set *s)
{
	return s ? s->n : 0;
}

static bool digest_known(const struct cred_set *s, const unsigned char *d)
{
	for (size_t i = 0; i < s->n; i++)
		if (!s->c[i].cert_only &&
		    memcmp(s->c[i].digest, d, SHA256_DIGEST_LENGTH) == 0)
			return true;
	return false;
}

static int push(struct cred_set *s, const struct cred *c)
{
	if (!c->cert_only && digest_known(s, c->digest))
		return -EEXIST;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 8;
		struct cred *nc = realloc(s->c, cap * sizeof(*nc));

		if (!nc)
			return -ENOMEM;
		s->c = nc;
		s->cap = cap;
	}
	s->c[s->n++] = *c;
	return 0;
}

int cred_add_shared(struct cred_set *s, const char *name, const char *token)
{
	struct cred c = { .role = CRED_ADMIN, .any_agent = true };

	if (!token || !*token || !name || strlen(name) >= CRED_NAME_MAX)
		return -EINVAL;
	snprintf(c.name, sizeof(c.name), "%s", name);
	SHA256((const unsigned char *)token, strlen(token), c.digest);
	return push(s, &c);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted, deduplicated names of the agent credentials. */
static int index_agents(struct cred_set *s)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n; i++)
		n += s->c[i].role == CRED_AGENT;
	if (!n)
		return 0;
	if (!(s->agents = calloc(n, sizeof(*s->agents))))
		return -ENOMEM;
	for (size_t i = 0; i < s->n; i++)
		if (s->c[i].role == CRED_AGENT &&
		    !(s->agents[s->n_agents++] = strdup(s->c[i].name)))
			return -ENOMEM;
	qsort(s->agents, s->n_agents, sizeof(*s->agents), name_cmp);
	n = 0;
	for (size_t i = 0; i < s->n_agents; i++) {
		if (n && strcmp(s->agents[n - 1], s->agents[i]) == 0) {
			free(s->agents[i]);
			continue;
		}
		s->agents[n++] = s->agents[i];
	}
	s->n_agents = n;
	return 0;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

static bool blank(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r';
}

/* Splits a line into at most 4 fields (a 4th means too many); a field
 * starting with '#' ends the line. Returns the number of fields. */
static size_t fields(const char *p, const char *end, const char **f,
                     size_t *fl)
{
	size_t n = 0;

	while (p < end && n < 4) {
		while (p < end && blank(*p))
			p++;
		if (p == end || *p == '#')
			break;
		f[n] = p;
		while (p < end && !blank(*p))
			p++;
		fl[n] = (size_t)(p - f[n]);
		n++;
	}
	return n;
}

#define BAD(...) do { snprintf(err, errlen, __VA_ARGS__); rc = -EINVAL; \
                      goto out; } while (0)

static bool printable(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/* One credential line into c. */
static int parse_line(const char *p, const char *end, const char *what,
                      unsigned line, struct cred *c, bool *empty, char *err,
                      size_t errlen)
{
	const char *f[4];
	size_t fl[4], n = fields(p, end, f, fl);
	int rc = 0;

	memset(c, 0, sizeof(*c));
	*empty = n == 0;
	if (n == 0)
		goto out;
	if (n != 3)
		BAD("%s:%u: expected ROLE NAME TOKEN, found %zu field%s%s", what,
		    line, n, n == 1 ? "" : "s", n > 3 ? " or more" : "");
	for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
		if (fl[0] == strlen(roles[i].name) &&
		    memcmp(f[0], roles[i].name, fl[0]) == 0)
			c->role = roles[i].role;
	if (!c->role)
		BAD("%s:%u: role: '%.*s' is not admin, agent or read", what,
		    line, (int)(fl[0] > 32 ? 32 : fl[0]), f[0]);
	if (fl[1] >= CRED_NAME_MAX || !printable(f[1], fl[1]))
		BAD("%s:%u: name: must be 1..%d printable bytes", what, line,
		    CRED_NAME_MAX - 1);
	memcpy(c->name, f[1], fl[1]);
	if (fl[2] == 4 && memcmp(f[2], "cert", 4) == 0) {
		if (c->role != CRED_AGENT)
			BAD("%s:%u: token: 'cert' (no token, a client "
			    "certificate only) is for agent lines", what, line);
		c->cert_only = true;
	} else if (fl[2] > 7 && memcmp(f[2], "sha256:", 7) == 0) {
		if (fl[2] != 7 + 2 * SHA256_DIGEST_LENGTH)
			BAD("%s:%u: token: sha256: needs %d hex digits", what,
			    line, 2 * SHA256_DIGEST_LENGTH);
		for (size_t i = 0; i < SHA256_DIGEST_LENGTH; i++) {
			int hi = hexval(f[2][7 + 2 * i]);
			int lo = hexval(f[2][8 + 2 * i]);

			if (hi < 0 || lo < 0)
				BAD("%s:%u: token: sha256: needs %d hex digits",
				    what, line, 2 * SHA256_DIGEST_LENGTH);
			c->digest[i] = (unsigned char)(hi << 4 | lo);
		}
	} else {
		if (fl[2] < CRED_TOKEN_MIN || fl[2] > CRED_TOKEN_MAX)
			BAD("%s:%u: token: must be %d..%d bytes (or sha256:HEX)",
			    what, line, CRED_TOKEN_MIN, CRED_TOKEN_MAX);
		if (!printable(f[2], fl[2]))
			BAD("%s:%u: token: control character inside", what,
			    line);
		SHA256((const unsigned char *)f[2], fl[2], c->digest);
	}
out:
	return rc;
}

int cred_parse(const char *text, size_t len, const char *what,
               struct cred_set **out, char *err, size_t errlen)
{
	struct cred_set *s = cred_new();
	const char *p = text, *end = text + len;
	unsigned line = 0;
	int rc = 0;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	s->from_file = true;
	if (len && memchr(text, 0, len))
		BAD("%s: NUL byte inside (not a text file)", what);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end;
		struct cred c;
		bool empty;

		line++;
		if ((rc = parse_line(p, e, what, line, &c, &empty, err,
		                     errlen)) < 0)
			goto out;
		p = nl ? nl + 1 : end;
		if (empty)
			continue;
		if (s->n >= CRED_MAX)
			BAD("%s:%u: more than %d credentials", what, line,
			    CRED_MAX);
		rc = push(s, &c);
		OPENSSL_cleanse(&c, sizeof(c));
		if (rc == -EEXIST)
			BAD("%s:%u: token: the same token is on an earlier "
			    "line", what, line);
		if (rc < 0)
			goto nomem;
	}
	if ((rc = index_agents(s)) < 0)
		goto nomem;
	*out = s;
	return 0;
nomem:
	snprintf(err, errlen, "%s: out of memory", what);
out:
	cred_free(s);
	return rc;
}

int cred_load(const char *path, bool allow_others, struct cred_set **out,
              char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;
	struct stat st;
	char *buf = NULL;
	size_t got = 0;

	*out = NULL;
	if (fd < 0 || fstat(fd, &st) < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		snprintf(err, errlen, "%s: not a regular file", path);
		goto out;
	}
	if ((st.st_mode & (S_IROTH | S_IWOTH)) && !allow_others) {
		rc = -EPERM;
		snprintf(err, errlen, "%s: others may read or write it (mode "
		         "%04o); chmod o-rw it, or allow it explicitly",
		         path, (unsigned)(st.st_mode & 07777));
		goto out;
	}
	if (st.st_size > CRED_FILE_MAX) {
		rc = -EFBIG;
		snprintf(err, errlen, "%s: larger than %d bytes", path,
		         CRED_FILE_MAX);
		goto out;
	}
	if (!(buf = malloc((size_t)st.st_size + 1))) {
		rc = -ENOMEM;
		snprintf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	rc = cred_parse(buf, got, path, out, err, errlen);
out:
	if (buf) {
		OPENSSL_cleanse(buf, got);
		free(buf);
	}
	if (fd >= 0)
		close(fd);
	return rc;
}

int cred_check(const struct cred_set *s, const char *token, size_t len,
               struct cred_caller *out)
{
	unsigned char d[SHA256_DIGEST_LENGTH];
	const struct cred *hit = NULL;

	if (!s || !len)
		return -ENOENT;
	SHA256((const unsigned char *)token, len, d);
	/* Every entry is compared, so the time does not tell which matched. */
	for (size_t i = 0; i < s->n; i++)
		if (CRYPTO_memcmp(s->c[i].digest, d, sizeof(d)) == 0 &&
		    !s->c[i].cert_only)
			hit = &s->c[i];
	if (!hit)
		return -ENOENT;
	out->role = hit->role;
	out->any_agent = hit->any_agent;
	snprintf(out->name, sizeof(out->name), "%s", hit->name);
	return 0;
}

bool cred_agents_known(const struct cred_set *s)
{
	return s && s->from_file;
}

bool cred_agent_known(const struct cred_set *s, const char *name)
{
	if (!s || !s->n_agents)
		return false;
	return bsearch(&name, s->agents, s->n_agents, sizeof(*s->agents),
	               name_cmp) != NULL;
}

int cred_cert_agent(X509 *cert, char *name, size_t len, char *err,
                    size_t errlen)
{
	static const char scheme[] = CRED_CERT_URI;
	const size_t sl = sizeof(scheme) - 1;
	GENERAL_NAMES *sans = cert ? X509_get_ext_d2i(cert, NID_subject_alt_name,
	                                              NULL, NULL) : NULL;
	int found = 0, rc = 0;

	name[0] = 0;
	for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
		const char *u;
		size_t n;

		if (g->type != GEN_URI)
			continue;
		u = (const char *)ASN1_STRING_get0_data(g->d.uniformResourceIdentifier);
		n = (size_t)ASN1_STRING_length(g->d.uniformResourceIdentifier);
		if (n < sl || strncasecmp(u, scheme, sl) != 0)
			continue;
		if (++found > 1) {
			snprintf(err, errlen, "client certificate: more than one "
			         "%s URI", scheme);
			rc = -EINVAL;
			goto out;
		}
		u += sl;
		n -= sl;
		if (n == 0 || n >= CRED_NAME_MAX || n >= len ||
		    !printable(u, n)) {
			snprintf(err, errlen, "client certificate: %sNAME: NAME "
			         "must be 1..%d printable bytes", scheme,
			         CRED_NAME_MAX - 1);
			rc = -EINVAL;
			goto out;
		}
		memcpy(name, u, n);
		name[n] = 0;
	}
	if (!found) {
		snprintf(err, errlen, "client certificate: no %sNAME URI in "
		         "its subjectAltName", scheme);
		rc = -ENOENT;
	}
out:
	if (rc < 0)
		name[0] = 0;
	GENERAL_NAMES_free(sans);
	return rc;
}
