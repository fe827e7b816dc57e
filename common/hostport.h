/* common/hostport.h - "ADDR:PORT" and "[V6ADDR]:PORT" as written in
 * configuration (dnsd listen addresses, the API address). Load time. */
#ifndef COMMON_HOSTPORT_H
#define COMMON_HOSTPORT_H
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* Splits s into host (hostlen bytes, brackets removed) and port 0..65535.
 * *bracketed tells whether the host was written in brackets (IPv6).
 * Returns 0, or -EINVAL for anything else: no port, an empty or too long
 * host, an unbracketed host with a colon, a bad port. */
int hostport_split(const char *s, char *host, size_t hostlen, unsigned *port,
		   bool *bracketed);

/* "ADDR:PORT" or "[V6ADDR]:PORT" (numeric addresses) into *ss and *len.
 * Returns 0 or -EINVAL. */
int hostport_parse(const char *s, struct sockaddr_storage *ss, socklen_t *len);

#endif
