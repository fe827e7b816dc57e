/* health/token.h - the bearer token shared by dnsd's API and the probe
 * agent (the token file holds the token on its first line, surrounding
 * white space ignored). Load time only, any thread. */
#ifndef HEALTH_TOKEN_H
#define HEALTH_TOKEN_H
#include <stdbool.h>
#include <stddef.h>

#define TOKEN_MAX 512

/* Reads the token from path into out (NUL-terminated). Returns 0, or
 * -errno (unreadable), -EINVAL (empty, or with control characters or
 * spaces inside), -ERANGE (longer than outlen - 1); err names the file. */
int token_load(const char *path, char *out, size_t outlen, char *err,
               size_t errlen);

/* Constant-time comparison (independent of where they differ and of the
 * length of got). */
bool token_equal(const char *want, const char *got, size_t got_len);

#endif
