/* dnsd/wire.h - DNS wire format: the query parser and name helpers.
 *
 * Query path, any worker thread. Hand-written instead of ldns because ldns
 * allocates a packet object per query; this parser only reads the buffer it
 * is given, never past its end, and never allocates.
 * RFC 1035 4.1 (message format), RFC 6891 (EDNS0), RFC 7871 (ECS),
 * RFC 5001 (NSID). */
#ifndef DNSD_WIRE_H
#define DNSD_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

#define WIRE_HDR       12
#define WIRE_NAME_MAX  255
#define WIRE_LABEL_MAX 63

enum {
	RCODE_NOERROR = 0, RCODE_FORMERR = 1, RCODE_SERVFAIL = 2,
	RCODE_NXDOMAIN = 3, RCODE_NOTIMP = 4, RCODE_REFUSED = 5,
	RCODE_BADVERS = 16,
};

enum {
	TYPE_A = 1, TYPE_NS = 2, TYPE_CNAME = 5, TYPE_SOA = 6, TYPE_MX = 15,
	TYPE_TXT = 16, TYPE_AAAA = 28, TYPE_SRV = 33, TYPE_OPT = 41,
	TYPE_DS = 43, TYPE_RRSIG = 46, TYPE_TKEY = 249, TYPE_TSIG = 250,
	TYPE_IXFR = 251, TYPE_AXFR = 252, TYPE_MAILB = 253, TYPE_MAILA = 254,
	TYPE_ANY = 255,
};

#define CLASS_IN 1
#define EDNS_OPT_NSID 3
#define EDNS_OPT_ECS  8

/* What the parser learned about a query. Pointers borrow from the packet. */
struct wire_query {
	uint16_t id;
	uint8_t flags1, flags2;     /* header octets 2 and 3 as received */
	uint8_t opcode;
	uint16_t qtype, qclass;
	const uint8_t *qname;       /* in the packet, original case */
	uint8_t qname_len;          /* wire length including the root label */
	uint8_t qlabels;            /* labels, root excluded */
	uint8_t lname[WIRE_NAME_MAX]; /* lower-cased copy of qname */
	size_t question_end;        /* offset just past the question */

	bool edns;                  /* an OPT record was present and valid */
	uint8_t edns_version;
	bool edns_do;
	bool edns_co;                /* compact answers OK (RFC 9824) */
	uint16_t edns_udp;          /* the client's advertised size */
	bool nsid;                  /* NSID requested */

	bool ecs;                   /* a valid ECS option was present */
	uint16_t ecs_family;        /* 1 IPv4, 2 IPv6 */
	uint8_t ecs_source, ecs_scope;
	uint8_t ecs_addr[16];       /* the address bits, zero beyond source */
};

/* Result of wire_parse_query(). */
enum wire_status {
	WIRE_OK,          /* a query to answer */
	WIRE_DROP,        /* not answerable at all: too short, or QR=1 */
	WIRE_FORMERR,     /* answer FORMERR; question valid if has_question */
	WIRE_NOTIMP,      /* unknown opcode */
	WIRE_BADVERS,     /* EDNS version > 0 */
};

/* Parses a query of len bytes. Query path: never allocates, never reads
 * past pkt + len. *has_question tells whether q's question fields are valid
 * (so an error answer can echo it). */
enum wire_status wire_parse_query(const uint8_t *pkt, size_t len,
				  struct wire_query *q, bool *has_question);

/* Reads a possibly compressed name at pkt[*off] (RFC 1035 4.1.4) and moves
 * *off past it. Writes the lower-cased uncompressed form to out (255 bytes)
 * when out is not NULL. Returns the wire length of the name, or -1 for a
 * bad name: truncated, label > 63, name > 255, a loop or a forward pointer. */
int wire_read_name(const uint8_t *pkt, size_t len, size_t *off, uint8_t *out);

/* Lower-cases an uncompressed wire name of len bytes into out. */
void wire_name_lower(const uint8_t *name, size_t len, uint8_t *out);

/* Length of the uncompressed wire name at p (which must be valid). */
size_t wire_name_len(const uint8_t *p);

/* Counts the labels of a valid uncompressed wire name, root excluded. */
unsigned wire_name_labels(const uint8_t *name);

/* Big-endian accessors. */
static inline uint16_t wire_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t wire_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static inline void wire_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void wire_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

#endif
