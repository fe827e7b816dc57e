/* health/token.c - see token.h. */
#include "health/token.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

int token_load(const char *path, char *out, size_t outlen, char *err,
               size_t errlen)
{
	char line[TOKEN_MAX * 2];
	size_t b = 0, e;
	FILE *f = fopen(path, "r");

	if (!f) {
		int rc = -errno;

		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return rc;
	}
	if (!fgets(line, sizeof(line), f))
		line[0] = 0;
	fclose(f);
	e = strlen(line);
	while (e > 0 && (line[e - 1] == '\n' || line[e - 1] == '\r' ||
	                 line[e - 1] == ' ' || line[e - 1] == '\t'))
		e--;
	while (b < e && (line[b] == ' ' || line[b] == '\t'))
		b++;
	if (b == e) {
		snprintf(err, errlen, "%s: line 1: empty token", path);
		return -EINVAL;
	}
	for (size_t i = b; i < e; i++)
		if ((unsigned char)line[i] <= 0x20 || line[i] == 0x7f) {
			snprintf(err, errlen, "%s: line 1: white space or control "
			         "character inside the token", path);
			return -EINVAL;
		}
	if (e - b >= outlen) {
		snprintf(err, errlen, "%s: token longer than %zu bytes", path,
		         outlen - 1);
		return -ERANGE;
	}
	memcpy(out, line + b, e - b);
	out[e - b] = 0;
	return 0;
}

bool token_equal(const char *want, const char *got, size_t got_len)
{
	unsigned char a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];

	/* Comparing digests keeps the time independent of both the length
	 * and the first differing byte. */
	SHA256((const unsigned char *)want, strlen(want), a);
	SHA256((const unsigned char *)got, got_len, b);
	return CRYPTO_memcmp(a, b, sizeof(a)) == 0;
}
