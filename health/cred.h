/* health/cred.h - API credentials: who may call dnsd's HTTP API and in
 * which role. Load time only (control thread).
 *
 * A credentials file holds one credential a line:
 *
 *   ROLE NAME TOKEN
 *
 * separated by blanks; a field starting with '#' starts a comment that runs
 * to the end of the line; blank lines are ignored. ROLE is
 *   admin  every read and every write;
 *   agent  the check list and reports, only as the agent called NAME;
 *   read   the configuration and the status.
 * NAME is 1..63 printable bytes without blanks (for an agent: its --name).
 * TOKEN is the bearer token itself (16..511 printable bytes, no blanks), or
 * "sha256:" and the 64 hex digits of the token's SHA-256 digest, so the
 * file need not hold the secret, or, on an agent line only, the word
 * "cert": the agent has no token and authenticates with a client
 * certificate (cred_cert_agent) alone. Every agent line makes NAME a
 * known agent, which a verified client certificate naming it may act as;
 * removing an agent's every line (and reloading) revokes its tokens and
 * its certificates at once. Several lines may share a role and a name:
 * each of their tokens is valid, which is how a token is rotated without
 * an outage (add the new one, reload, move the agent, remove the old one,
 * reload). The same token on two lines is refused (its role would be
 * ambiguous).
 *
 * In memory only SHA-256 digests are kept; a presented token is hashed and
 * compared against every digest in constant time per entry. */
#ifndef HEALTH_CRED_H
#define HEALTH_CRED_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#define CRED_NAME_MAX   64       /* bytes incl. NUL, as agent names */
#define CRED_TOKEN_MIN  16       /* literal tokens, bytes */
#define CRED_TOKEN_MAX  511
#define CRED_FILE_MAX   (4 * 1024 * 1024)
#define CRED_MAX        100000   /* credentials per file */

/* Roles, as a bit mask (a route names the roles it admits). */
enum cred_role {
	CRED_READ = 1u << 0,
	CRED_AGENT = 1u << 1,
	CRED_ADMIN = 1u << 2,
};

/* Who made a request: the matched credential's role and name. any_agent:
 * the credential may report under any agent name (the single shared token
 * of --api-token-file). */
struct cred_caller {
	unsigned role;                  /* one enum cred_role bit */
	char name[CRED_NAME_MAX];
	bool any_agent;
};

struct cred_set;                        /* opaque */

/* Parses a credentials file's text (what names it in errors: "FILE").
 * Returns 0 with *out set (caller owns it: cred_free), or -EINVAL with err
 * naming the line and the field ("FILE:3: role: must be admin, agent or
 * read"), or -ENOMEM. */
int cred_parse(const char *text, size_t len, const char *what,
               struct cred_set **out, char *err, size_t errlen);

/* Reads and parses path. Refuses (-EPERM) a file that others may read or
 * write unless allow_others; refuses one larger than CRED_FILE_MAX
 * (-EFBIG). Other errors as cred_parse or -errno. */
int cred_load(const char *path, bool allow_others, struct cred_set **out,
              char *err, size_t errlen);

/* An empty set (no credential: every token is unknown), or NULL. */
struct cred_set *cred_new(void);
/* Adds the single shared token (--api-token-file): every role, any agent
 * name, called name. 0, -EINVAL (empty token), -EEXIST (already in the
 * set) or -ENOMEM. */
int cred_add_shared(struct cred_set *s, const char *name, const char *token);
void cred_free(struct cred_set *s);     /* NULL is fine */

/* Looks up a presented token: 0 with *out filled, or -ENOENT. */
int cred_check(const struct cred_set *s, const char *token, size_t len,
               struct cred_caller *out);

/* Whether the set came from a credentials file (then only the agents it
 * names may report), and whether it names agent name. */
bool cred_agents_known(const struct cred_set *s);
bool cred_agent_known(const struct cred_set *s, const char *name);

/* Number of credentials. */
size_t cred_count(const struct cred_set *s);

/* The agent a client certificate names: the NAME of its one
 * subjectAltName URI "gslb-agent:NAME" (the scheme in any case; NAME as in
 * the credentials file, case kept). The subject's CN and other names do
 * not count, so a certificate made for something else by the same CA
 * names no agent. The chain is not looked at here (the TLS handshake
 * verified it). 0 with name set (len >= CRED_NAME_MAX), -ENOENT (no such
 * URI) or -EINVAL (two of them, or a NAME out of bounds), with err. */
#define CRED_CERT_URI "gslb-agent:"
int cred_cert_agent(X509 *cert, char *name, size_t len, char *err,
                    size_t errlen);

/* "admin", "agent", "read" (or "?"). */
const char *cred_role_name(unsigned role);

#endif
