/* dnsd/wire.c - query parser; see wire.h. Query path: no allocation, every
 * read bounds-checked against the packet length. */
#include "dnsd/wire.h"

#include <string.h>

static const uint8_t lower_tab[256] = {
#define L(c) ((c) >= 'A' && (c) <= 'Z' ? (c) + 32 : (c))
#define R4(b) L(b), L(b + 1), L(b + 2), L(b + 3)
#define R16(b) R4(b), R4(b + 4), R4(b + 8), R4(b + 12)
	R16(0), R16(16), R16(32), R16(48), R16(64), R16(80), R16(96), R16(112),
	R16(128), R16(144), R16(160), R16(176), R16(192), R16(208), R16(224),
	R16(240),
#undef R16
#undef R4
#undef L
};

void wire_name_lower(const uint8_t *name, size_t len, uint8_t *out)
{
	for (size_t i = 0; i < len; i++)
		out[i] = lower_tab[name[i]];
}

size_t wire_name_len(const uint8_t *p)
{
	size_t n = 0;

	while (p[n])
		n += (size_t)p[n] + 1;
	return n + 1;
}

unsigned wire_name_labels(const uint8_t *name)
{
	unsigned n = 0;

	for (; *name; name += *name + 1)
		n++;
	return n;
}

int wire_read_name(const uint8_t *pkt, size_t len, size_t *off, uint8_t *out)
{
	size_t pos = *off, end = 0, total = 0;
	bool jumped = false;

	for (;;) {
		uint8_t c;

		if (pos >= len)
			return -1;
		c = pkt[pos];
		if ((c & 0xc0) == 0xc0) {
			size_t ptr;

			if (pos + 1 >= len)
				return -1;
			ptr = (size_t)(c & 0x3f) << 8 | pkt[pos + 1];
			/* Only strictly backward pointers: that excludes
			 * loops and forward references in one test. */
			if (ptr >= pos)
				return -1;
			if (!jumped) {
				end = pos + 2;
				jumped = true;
			}
			pos = ptr;
			continue;
		}
		if (c & 0xc0)           /* 0x40 and 0x80: obsolete or unknown */
			return -1;
		if (total + c + 1 > WIRE_NAME_MAX)
			return -1;
		if (pos + 1 + c > len)
			return -1;
		if (out) {
			out[total] = c;
			wire_name_lower(pkt + pos + 1, c, out + total + 1);
		}
		total += (size_t)c + 1;
		pos += (size_t)c + 1;
		if (c == 0)
			break;
	}
	*off = jumped ? end : pos;
	return (int)total;
}

/* The question name: no compression allowed (nothing precedes it that could
 * be pointed to but the header). */
static bool parse_qname(const uint8_t *pkt, size_t len, struct wire_query *q)
{
	size_t pos = WIRE_HDR, total = 0;
	unsigned labels = 0;

	for (;;) {
		uint8_t c;

		if (pos >= len)
			return false;
		c = pkt[pos];
		if (c > WIRE_LABEL_MAX)
			return false;
		if (total + c + 1 > WIRE_NAME_MAX || pos + 1 + c > len)
			return false;
		q->lname[total] = c;
		wire_name_lower(pkt + pos + 1, c, q->lname + total + 1);
		total += (size_t)c + 1;
		pos += (size_t)c + 1;
		if (c == 0)
			break;
		labels++;
	}
	q->qname = pkt + WIRE_HDR;
	q->qname_len = (uint8_t)total;
	q->qlabels = (uint8_t)labels;
	return true;
}

/* Skips one resource record at *off; its type and class/rdata out. */
static bool skip_rr(const uint8_t *pkt, size_t len, size_t *off,
		    uint16_t *type, const uint8_t **name0, const uint8_t **rr,
		    uint16_t *rdlen)
{
	size_t pos = *off;

	*name0 = pkt + pos;
	if (wire_read_name(pkt, len, &pos, NULL) < 0)
		return false;
	if (pos + 10 > len)
		return false;
	*type = wire_get16(pkt + pos);
	*rr = pkt + pos;
	*rdlen = wire_get16(pkt + pos + 8);
	if (pos + 10 + *rdlen > len)
		return false;
	*off = pos + 10 + *rdlen;
	return true;
}

/* RFC 7871 6: FAMILY, SOURCE PREFIX-LENGTH, SCOPE PREFIX-LENGTH, ADDRESS
 * truncated to the source prefix. Invalid is FORMERR (7.1). */
static bool parse_ecs(const uint8_t *d, uint16_t n, struct wire_query *q)
{
	unsigned family, source, bytes, maxbits;

	if (n < 4 || q->ecs)           /* more than one ECS option is bad too */
		return false;
	family = wire_get16(d);
	source = d[2];
	if (family == 1)
		maxbits = 32;
	else if (family == 2)
		maxbits = 128;
	else
		return false;
	if (source > maxbits || d[3] != 0)
		return false;
	bytes = (source + 7) / 8;
	if (n - 4u != bytes)
		return false;
	memset(q->ecs_addr, 0, sizeof(q->ecs_addr));
	memcpy(q->ecs_addr, d + 4, bytes);
	if (source % 8 && (q->ecs_addr[bytes - 1] & (0xff >> (source % 8))))
		return false;
	q->ecs = true;
	q->ecs_family = (uint16_t)family;
	q->ecs_source = (uint8_t)source;
	q->ecs_scope = 0;
	return true;
}

static bool parse_opt(const uint8_t *rr, uint16_t rdlen, struct wire_query *q)
{
	const uint8_t *d = rr + 10, *end = d + rdlen;

	q->edns = true;
	q->edns_udp = wire_get16(rr + 2);
	q->edns_version = rr[5];
	q->edns_do = (rr[6] & 0x80) != 0;
	q->edns_co = (rr[6] & 0x40) != 0;      /* RFC 9824 */
	while (d < end) {
		uint16_t code, n;

		if (end - d < 4)
			return false;
		code = wire_get16(d);
		n = wire_get16(d + 2);
		d += 4;
		if (n > end - d)
			return false;
		if (code == EDNS_OPT_NSID)
			q->nsid = true;
		else if (code == EDNS_OPT_ECS && !parse_ecs(d, n, q))
			return false;
		/* Unknown options are ignored (RFC 6891 6.1.2). */
		d += n;
	}
	return true;
}

enum wire_status wire_parse_query(const uint8_t *pkt, size_t len,
				  struct wire_query *q, bool *has_question)
{
	size_t off;
	unsigned an, ns, ar;
	bool seen_opt = false;

	*has_question = false;
	q->question_end = WIRE_HDR;     /* no question: the header alone */
	if (len < WIRE_HDR)
		return WIRE_DROP;
	q->id = wire_get16(pkt);
	q->flags1 = pkt[2];
	q->flags2 = pkt[3];
	if (q->flags1 & 0x80)           /* a response: never answer it */
		return WIRE_DROP;
	q->opcode = (pkt[2] >> 3) & 0x0f;
	q->edns = q->nsid = q->ecs = q->edns_do = q->edns_co = false;
	q->edns_version = 0;
	q->edns_udp = 0;
	if (wire_get16(pkt + 4) != 1)
		return q->opcode ? WIRE_NOTIMP : WIRE_FORMERR;
	if (!parse_qname(pkt, len, q))
		return q->opcode ? WIRE_NOTIMP : WIRE_FORMERR;
	off = WIRE_HDR + q->qname_len;
	if (off + 4 > len)
		return q->opcode ? WIRE_NOTIMP : WIRE_FORMERR;
	q->qtype = wire_get16(pkt + off);
	q->qclass = wire_get16(pkt + off + 2);
	q->question_end = off + 4;
	*has_question = true;
	if (q->opcode)
		return WIRE_NOTIMP;

	an = wire_get16(pkt + 6);
	ns = wire_get16(pkt + 8);
	ar = wire_get16(pkt + 10);
	off = q->question_end;
	/* Records in a query are odd but legal; skip them with full checks, so
	 * that lying counts and bad names are FORMERR, never an overread. */
	for (unsigned i = 0; i < an + ns + ar; i++) {
		const uint8_t *name0, *rr;
		uint16_t type, rdlen;

		if (!skip_rr(pkt, len, &off, &type, &name0, &rr, &rdlen))
			return WIRE_FORMERR;
		if (type != TYPE_OPT)
			continue;
		/* RFC 6891 6.1.1: one OPT, in the additional section, owned
		 * by the root. */
		if (i < an + ns || seen_opt || *name0 != 0)
			return WIRE_FORMERR;
		seen_opt = true;
		if (!parse_opt(rr, rdlen, q))
			return WIRE_FORMERR;
	}
	/* RFC 6891 6.1.3: the options of an unknown version are not ours to
	 * act on. */
	if (q->edns && q->edns_version > 0) {
		q->ecs = q->nsid = false;
		return WIRE_BADVERS;
	}
	return WIRE_OK;
}
