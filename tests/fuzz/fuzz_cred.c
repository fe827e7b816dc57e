/* tests/fuzz/fuzz_cred.c - libFuzzer target for the API credentials file
 * parser (cred_parse(), health/cred.h) and the lookups on what it built.
 * A refused file must come with a reason that names the file; an accepted
 * one holds at most CRED_MAX credentials, each found again by its own line
 * (a literal TOKEN looks up to that line's ROLE and NAME; "cert" is only
 * accepted on agent lines), and agent names
 * are known exactly when an agent line names them.
 *
 * Seeds: tests/fuzz/corpus/cred. Replayed by test_fuzz_replay. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "health/cred.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void cf_fail(const char *what)
{
	fprintf(stderr, "fuzz_cred: %s\n", what);
	abort();
}

/* Re-reads the first data line the way the file format says and checks
 * that its token (when literal) finds its role and name. */
static void cf_first_line(const struct cred_set *s, const char *t, size_t n)
{
	char line[1024], *f[4], *save = NULL;
	size_t k = 0, len = 0;
	struct cred_caller c;

	while (len < n && t[len] != '\n' && len + 1 < sizeof(line))
		len++;
	if (len + 1 >= sizeof(line) || (len < n && t[len] != '\n'))
		return;
	memcpy(line, t, len);
	line[len] = 0;
	for (char *p = strtok_r(line, " \t\r", &save); p && k < 4;
	     p = strtok_r(NULL, " \t\r", &save)) {
		if (*p == '#')
			break;
		f[k++] = p;
	}
	if (k != 3 || strncmp(f[2], "sha256:", 7) == 0)
		return;
	if (strcmp(f[2], "cert") == 0) {
		if (strcmp(f[0], "agent") != 0 || !cred_agent_known(s, f[1]))
			cf_fail("a cert line accepted outside an agent line, "
			        "or its agent not known");
		return;
	}
	if (cred_check(s, f[2], strlen(f[2]), &c) != 0)
		cf_fail("a literal token of the first line is not found");
	if (strcmp(cred_role_name(c.role), f[0]) != 0 ||
	    strcmp(c.name, f[1]) != 0 || c.any_agent)
		cf_fail("the first line's token finds another role or name");
	if (c.role == CRED_AGENT && !cred_agent_known(s, f[1]))
		cf_fail("an agent line's name is not a known agent");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cred_set *s = NULL;
	struct cred_caller c;
	char err[512] = "";
	int rc;

	if (size > 256 * 1024)
		return 0;
	rc = cred_parse((const char *)data, size, "fuzz.creds", &s, err,
	                sizeof(err));
	if (rc < 0) {
		if (s || !strstr(err, "fuzz.creds") || (rc != -EINVAL &&
		                                        rc != -ENOMEM))
			cf_fail("a refusal without a reason naming the file");
		return 0;
	}
	if (!s || cred_count(s) > CRED_MAX || !cred_agents_known(s))
		cf_fail("an accepted file out of bounds");
	cf_first_line(s, (const char *)data, size);
	/* Lookups of arbitrary bytes never crash nor find an empty token. */
	if (cred_check(s, "", 0, &c) == 0)
		cf_fail("the empty token was found");
	(void)cred_check(s, (const char *)data, size < 600 ? size : 600, &c);
	if (cred_agent_known(s, ""))
		cf_fail("the empty name is a known agent");
	cred_free(s);
	return 0;
}
