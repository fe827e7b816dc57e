/* dnsd/dnssec.h - online DNSSEC signing: zone keys, RRSIGs made per answer,
 * compact denial of existence, and a per-worker signature cache.
 *
 * Load time (control thread): dnssec_load() reads the BIND-format key pairs
 * (K<zone>.+<alg>+<id>.key and .private, as dnssec-keygen and ldns-keygen
 * write them; algorithms 13 ECDSAP256SHA256 and 15 ED25519) of the served
 * zones from a directory, applies their timing metadata (Publish,
 * Activate, Inactive, Delete) at that moment, and pre-encodes the DNSKEY,
 * CDS and CDNSKEY RRsets of each signed zone. The result is immutable and
 * hangs off the snapshot.
 *
 * Query path (workers): dnssec_sign() appends the RRSIGs of the RRsets just
 * written to a response. Each worker has its own struct dnssec_worker: an
 * OpenSSL signing context, a scratch buffer and a signature cache, so the
 * path takes no lock. A cache hit allocates nothing; a miss calls OpenSSL,
 * which allocates inside EVP_DigestSign*().
 *
 * Validity of a signature: inception one hour in the past (clock skew of
 * validators), expiration 14 days ahead minus a random jitter of up to one
 * day (so that signatures made together do not all expire together). A
 * cached signature is reused until 7 days before its expiration, then made
 * again.
 *
 * Denial of existence is "compact" (RFC 9824): one NSEC owned by the name
 * asked for, whose next name is its immediate successor (\000.name), so
 * that it covers no other name and zone walking learns nothing. A name that
 * does not exist gets the bitmap RRSIG NSEC NXNAME and rcode NOERROR, or
 * NXDOMAIN when the client sets the EDNS CO flag; a name that exists but
 * lacks the type asked gets its real types. */
#ifndef DNSD_DNSSEC_H
#define DNSD_DNSSEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "dnsd/zone.h"

enum {
	TYPE_NSEC = 47, TYPE_DNSKEY = 48, TYPE_CDS = 59, TYPE_CDNSKEY = 60,
	TYPE_NXNAME = 128,
};

#define DNSSEC_ALG_ECDSAP256 13
#define DNSSEC_ALG_ED25519   15
#define DNSSEC_KEYS_MAX      8      /* per zone */
#define DNSSEC_SIG_MAX       64     /* signature octets, both algorithms */

struct evp_pkey_st;

/* One key pair, as read from its two files. Times are Unix seconds, 0
 * when the file does not set them. */
struct dnssec_key {
	struct evp_pkey_st *pkey;   /* NULL: parsed, not loaded (fuzzing) */
	uint8_t alg;
	uint16_t flags;             /* 256 ZSK, 257 KSK (SEP) */
	uint16_t tag;
	uint16_t pub_len;
	uint8_t pub[96];            /* DNSKEY public key field */
	int64_t publish, activate, inactive, del;
	uint8_t owner[255];         /* the zone, lower-case wire */
	uint8_t owner_len;
	uint64_t id;                /* cache key: tells keys with one tag apart */
	bool published, active;     /* at load time */
	char file[256];             /* the .key file, for messages */
};

struct dnssec_zone {
	const struct zone *zone;    /* the served zone it signs */
	uint8_t apex[255];
	uint8_t apex_len;
	struct dnssec_key keys[DNSSEC_KEYS_MAX];
	unsigned n_keys;
	/* Keys that sign the DNSKEY, CDS and CDNSKEY RRsets, and the ones
	 * that sign everything else (the same ones with a single key). */
	const struct dnssec_key *ksk[DNSSEC_KEYS_MAX], *zsk[DNSSEC_KEYS_MAX];
	unsigned n_ksk, n_zsk;
	/* Apex RRsets in zone.h's wire layout (owned by the query name). */
	struct rrset dnskey, cds, cdnskey;
	uint32_t neg_ttl;           /* TTL of NSEC records */
};

struct dnssec_set {
	struct dnssec_zone *zones;
	size_t n;
};

/* Load time: reads every key pair in dir that belongs to one of zones[]
 * (NULL entries skipped), at time now. Zones without a key, or whose keys
 * are none active, are served unsigned (logged). Returns 0 or a negative
 * errno with "file: reason" in err. */
int dnssec_load(const char *dir, struct zone *const *zones, size_t n,
		time_t now, struct dnssec_set **out, char *err, size_t errlen);
void dnssec_set_free(struct dnssec_set *s);   /* NULL is fine */

/* Parses one key pair from the texts of its .key and .private files
 * (need not be NUL-terminated). With load false the private key is only
 * checked for form, not loaded (no OpenSSL object). Returns 0 or -EINVAL
 * with the reason in err. */
int dnssec_key_parse(const char *pub, size_t pub_len, const char *priv,
		     size_t priv_len, bool load, struct dnssec_key *k,
		     char *err, size_t errlen);
void dnssec_key_fini(struct dnssec_key *k);

/* Prints the DS (SHA-256) and DNSKEY records of every zone's KSKs, for the
 * parent zone. */
void dnssec_print_ds(const struct dnssec_set *s, FILE *out);

/* Query path: the signing state of zone z, or NULL (not signed). */
static inline const struct dnssec_zone *
dnssec_zone_of(const struct dnssec_set *s, const struct zone *z)
{
	for (size_t i = 0; s && i < s->n; i++)
		if (s->zones[i].zone == z)
			return s->zones[i].n_zsk ? &s->zones[i] : NULL;
	return NULL;
}

/* Per-worker settings; dnssec_configure() once before workers start. */
void dnssec_configure(size_t cache_bytes, unsigned sign_rate);
bool dnssec_configured(void);

struct dnssec_worker;
/* Load time, per worker thread. NULL when out of memory. */
struct dnssec_worker *dnssec_worker_new(uint64_t seed);
void dnssec_worker_free(struct dnssec_worker *w);

struct dnssec_counters {
	uint64_t signed_, cache_hits, over_budget;
};
void dnssec_worker_counters(const struct dnssec_worker *w,
			    struct dnssec_counters *out);

/* Query path: the records pkt[start..*len) were just written (one owner,
 * owned by a pointer to the question name or by an uncompressed name; one
 * or more types). Appends one RRSIG per type and signing key, owned like
 * the first record, and adds them to *count. keyset: sign with the KSKs
 * (DNSKEY, CDS, CDNSKEY) instead of the ZSKs. Nothing fits past limit:
 * -ENOSPC and pkt[start..] is left as it was. Returns 0, -ENOSPC,
 * -EAGAIN (the signing budget is spent: no signature made) or -EINVAL
 * (records this cannot sign). */
int dnssec_sign(struct dnssec_worker *w, const struct dnssec_zone *z,
		bool keyset, uint8_t *pkt, size_t start, size_t *len,
		size_t limit, uint16_t *count, time_t now);

/* Query path: dnssec_sign() for records that stay the same as long as a
 * snapshot does (a zone's static RRsets): id (the RRset's address) and the
 * snapshot's generation gen name them, with the same owner octets. Their
 * finished RRSIGs are memoised per worker, so the next answer copies them
 * without parsing, sorting or hashing the records; a memoised signature is
 * used as long as a cached one would be. */
int dnssec_sign_static(struct dnssec_worker *w, const struct dnssec_zone *z,
		       bool keyset, const void *id, uint64_t gen, uint8_t *pkt,
		       size_t start, size_t *len, size_t limit,
		       uint16_t *count, time_t now);

/* Query path: starts fetching the memo set where dnssec_sign_static()
 * will look id up (the caches of a batch's answers load in parallel). */
void dnssec_memo_prefetch(const struct dnssec_worker *w, const void *id,
			  uint64_t gen);

/* Query path: the memo identity (dnssec_sign_static) of the proof that
 * the lower-case name name[0..len) does not exist: its NSEC (owned by a
 * pointer to the question name, or by the name itself when owned) is the
 * same records for as long as a snapshot serves that name as absent. A
 * keyed 61-bit hash of the name, never equal to an object's address or
 * the addresses plus 1 or 2 that answer.c uses. */
const void *dnssec_nxname_id(const uint8_t *name, size_t len, bool owned);

/* Query path: writes an NSEC record at p (room octets) owned by owner
 * (owner_len octets as they go on the wire: a pointer or a name) for the
 * lower-case name (nlen octets), next name \000.name, with the types[n]
 * (any order) plus RRSIG and NSEC. Returns its length, 0 when it does not
 * fit or the name is too long to have a successor of that form. */
size_t dnssec_put_nsec(uint8_t *p, size_t room, const uint8_t *owner,
		       size_t owner_len, const uint8_t *name, size_t nlen,
		       uint32_t ttl, const uint16_t *types, unsigned n);

#endif
