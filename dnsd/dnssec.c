/* dnsd/dnssec.c - online signing; see dnssec.h.
 *
 * RFC 4033-4035 (DNSSEC), RFC 4034 6 (canonical form and order), RFC 6605
 * (ECDSA P-256), RFC 8080 (Ed25519), RFC 7344 (CDS/CDNSKEY), RFC 9824
 * (compact denial). Key files: BIND's format ("Private-key-format: v1.x",
 * "Algorithm:", "PrivateKey:" and the timing lines "Publish:",
 * "Activate:", "Inactive:", "Delete:" as YYYYMMDDHHMMSS in UTC). */
#include "dnsd/dnssec.h"

#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ldns/ldns.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>

#include "common/log.h"
#include "dnsd/wire.h"

#define INCEPTION_BACKDATE  3600
#define VALIDITY            (14 * 86400)
#define JITTER_MAX          86400
#define REFRESH_BEFORE      (7 * 86400)
#define RRSET_MAX           256          /* records in one signed RRset */
#define TBS_MAX             (65536 + 512)
#define KEYFILE_MAX         65536

/* ---- key files ---------------------------------------------------- */

static int kfail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int kfail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* YYYYMMDDHHMMSS (UTC) -> Unix seconds; -1 when malformed. */
static int64_t parse_time(const char *s, size_t n)
{
	struct tm tm = { 0 };
	int v[6], w[6] = { 4, 2, 2, 2, 2, 2 };
	size_t at = 0;

	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		n--;
	if (n != 14)
		return -1;
	for (int i = 0; i < 6; i++) {
		v[i] = 0;
		for (int k = 0; k < w[i]; k++, at++) {
			if (s[at] < '0' || s[at] > '9')
				return -1;
			v[i] = v[i] * 10 + (s[at] - '0');
		}
	}
	if (v[0] < 1970 || v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 ||
	    v[3] > 23 || v[4] > 59 || v[5] > 60)
		return -1;
	tm.tm_year = v[0] - 1900;
	tm.tm_mon = v[1] - 1;
	tm.tm_mday = v[2];
	tm.tm_hour = v[3];
	tm.tm_min = v[4];
	tm.tm_sec = v[5];
	return (int64_t)timegm(&tm);
}

/* Next line of text[0..len) from *at: its start and length (no newline). */
static bool next_line(const char *text, size_t len, size_t *at,
		      const char **line, size_t *n)
{
	const char *nl;

	if (*at >= len)
		return false;
	*line = text + *at;
	nl = memchr(*line, '\n', len - *at);
	*n = nl ? (size_t)(nl - *line) : len - *at;
	*at += *n + (nl ? 1 : 0);
	return true;
}

/* The public half: the first record line of the .key file. */
static int parse_pub(const char *text, size_t len, struct dnssec_key *k,
		     char *err, size_t errlen)
{
	const char *line;
	size_t n, at = 0;
	char buf[4096];
	ldns_rr *rr = NULL;
	ldns_status st;
	int rc = 0;

	for (;;) {
		size_t i = 0;

		if (!next_line(text, len, &at, &line, &n))
			return kfail(err, errlen, "no DNSKEY record");
		while (i < n && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
			i++;
		if (i < n && line[i] != ';')
			break;
	}
	if (n >= sizeof(buf) || memchr(line, '\0', n))
		return kfail(err, errlen, "DNSKEY line too long or not text");
	memcpy(buf, line, n);
	buf[n] = '\0';
	st = ldns_rr_new_frm_str(&rr, buf, 3600, NULL, NULL);
	if (st != LDNS_STATUS_OK)
		return kfail(err, errlen, "DNSKEY record: %s", ldns_get_errorstr_by_id(st));
	if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_DNSKEY || ldns_rr_rd_count(rr) != 4 ||
	    ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN) {
		rc = kfail(err, errlen, "not an IN DNSKEY record");
		goto out;
	}
	{
		ldns_rdf *o = ldns_rr_owner(rr), *pk = ldns_rr_rdf(rr, 3);
		size_t ol = ldns_rdf_size(o);

		k->flags = ldns_rdf2native_int16(ldns_rr_rdf(rr, 0));
		k->alg = ldns_rdf2native_int8(ldns_rr_rdf(rr, 2));
		if (ldns_rdf2native_int8(ldns_rr_rdf(rr, 1)) != 3) {
			rc = kfail(err, errlen, "DNSKEY protocol is not 3");
			goto out;
		}
		if (k->alg != DNSSEC_ALG_ECDSAP256 && k->alg != DNSSEC_ALG_ED25519) {
			rc = kfail(err, errlen, "algorithm %u is not supported (13 or 15)",
				   k->alg);
			goto out;
		}
		if ((k->flags & ~1u) != 256) {
			rc = kfail(err, errlen, "DNSKEY flags %u are not 256 or 257", k->flags);
			goto out;
		}
		if (ldns_rdf_size(pk) != (k->alg == DNSSEC_ALG_ECDSAP256 ? 64u : 32u)) {
			rc = kfail(err, errlen, "public key of %zu octets is the wrong size",
				   ldns_rdf_size(pk));
			goto out;
		}
		if (ol == 0 || ol > sizeof(k->owner) || ldns_rdf_data(o)[ol - 1] != 0) {
			rc = kfail(err, errlen, "bad owner name");
			goto out;
		}
		k->pub_len = (uint16_t)ldns_rdf_size(pk);
		memcpy(k->pub, ldns_rdf_data(pk), k->pub_len);
		wire_name_lower(ldns_rdf_data(o), ol, k->owner);
		k->owner_len = (uint8_t)ol;
		k->tag = ldns_calc_keytag(rr);
	}
out:
	ldns_rr_free(rr);
	return rc;
}

static int load_pkey(struct dnssec_key *k, const uint8_t *priv, size_t plen,
		     char *err, size_t errlen)
{
	EVP_PKEY *pkey = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	BIGNUM *bn = NULL;
	int rc = -EINVAL;

	if (k->alg == DNSSEC_ALG_ED25519) {
		uint8_t pub[32];
		size_t n = sizeof(pub);

		if (plen != 32)
			return kfail(err, errlen, "Ed25519 private key is not 32 octets");
		pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, priv, 32);
		if (!pkey || EVP_PKEY_get_raw_public_key(pkey, pub, &n) != 1 ||
		    n != 32 || memcmp(pub, k->pub, 32) != 0) {
			kfail(err, errlen, "private key does not match the DNSKEY");
			goto out;
		}
	} else {
		uint8_t pub[65];

		if (plen != 32)
			return kfail(err, errlen, "P-256 private key is not 32 octets");
		pub[0] = 4;         /* uncompressed point */
		memcpy(pub + 1, k->pub, 64);
		bn = BN_bin2bn(priv, 32, NULL);
		bld = OSSL_PARAM_BLD_new();
		if (!bn || !bld ||
		    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
						     "prime256v1", 0) ||
		    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, bn) ||
		    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
						      pub, sizeof(pub)) ||
		    !(params = OSSL_PARAM_BLD_to_param(bld)) ||
		    !(ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) ||
		    EVP_PKEY_fromdata_init(ctx) != 1 ||
		    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_KEYPAIR, params) != 1) {
			kfail(err, errlen, "P-256 key pair not usable");
			goto out;
		}
		EVP_PKEY_CTX_free(ctx);
		ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
		if (!ctx || EVP_PKEY_pairwise_check(ctx) != 1) {
			kfail(err, errlen, "private key does not match the DNSKEY");
			goto out;
		}
	}
	k->pkey = (struct evp_pkey_st *)pkey;
	pkey = NULL;
	rc = 0;
out:
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_clear_free(bn);
	return rc;
}

int dnssec_key_parse(const char *pub, size_t pub_len, const char *priv,
		     size_t priv_len, bool load, struct dnssec_key *k,
		     char *err, size_t errlen)
{
	const char *line;
	size_t n, at = 0;
	uint8_t raw[128];
	int rawlen = -1, alg = -1, rc;
	bool format = false;

	memset(k, 0, sizeof(*k));
	rc = parse_pub(pub, pub_len, k, err, errlen);
	if (rc < 0)
		return rc;
	while (next_line(priv, priv_len, &at, &line, &n)) {
		const char *colon = memchr(line, ':', n);
		const char *v;
		size_t kl, vl;
		int64_t *t = NULL;

		if (!colon)
			continue;
		kl = (size_t)(colon - line);
		v = colon + 1;
		vl = n - kl - 1;
		while (vl && (*v == ' ' || *v == '\t')) {
			v++;
			vl--;
		}
		while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\r' || v[vl - 1] == '\t'))
			vl--;
#define KEY_IS(s) (kl == sizeof(s) - 1 && strncasecmp(line, s, kl) == 0)
		if (KEY_IS("Private-key-format")) {
			if (vl < 3 || strncmp(v, "v1.", 3) != 0)
				return kfail(err, errlen, "Private-key-format %.*s is not v1.x",
					     (int)(vl > 16 ? 16 : vl), v);
			format = true;
		} else if (KEY_IS("Algorithm")) {
			alg = 0;
			for (size_t i = 0; i < vl && v[i] >= '0' && v[i] <= '9' && alg < 1000; i++)
				alg = alg * 10 + (v[i] - '0');
		} else if (KEY_IS("PrivateKey")) {
			char b64[200];

			if (vl >= sizeof(b64))
				return kfail(err, errlen, "PrivateKey is too long");
			memcpy(b64, v, vl);
			b64[vl] = '\0';
			/* EVP_DecodeBlock counts the padding as octets. */
			if (vl % 4 || (vl / 4) * 3 > sizeof(raw) ||
			    (rawlen = EVP_DecodeBlock(raw, (const unsigned char *)b64,
						      (int)vl)) <= 0)
				return kfail(err, errlen, "PrivateKey is not base64");
			rawlen -= (vl && v[vl - 1] == '=') + (vl > 1 && v[vl - 2] == '=');
		} else if (KEY_IS("Publish")) {
			t = &k->publish;
		} else if (KEY_IS("Activate")) {
			t = &k->activate;
		} else if (KEY_IS("Inactive")) {
			t = &k->inactive;
		} else if (KEY_IS("Delete")) {
			t = &k->del;
		}
#undef KEY_IS
		if (t && (*t = parse_time(v, vl)) < 0)
			return kfail(err, errlen, "%.*s: '%.*s' is not YYYYMMDDHHMMSS",
				     (int)kl, line, (int)(vl > 20 ? 20 : vl), v);
	}
	if (!format)
		return kfail(err, errlen, "no Private-key-format line");
	if (alg != k->alg)
		return kfail(err, errlen, "private key algorithm %d is not the DNSKEY's %u",
			     alg, k->alg);
	if (rawlen < 0)
		return kfail(err, errlen, "no PrivateKey line");
	/* A P-256 scalar may be written without its leading zero octets
	 * (ldns-keygen does so: one key in 256 has 31 octets). */
	if (k->alg == DNSSEC_ALG_ECDSAP256 && rawlen > 0 && rawlen < 32) {
		memmove(raw + 32 - rawlen, raw, (size_t)rawlen);
		memset(raw, 0, (size_t)(32 - rawlen));
		rawlen = 32;
	}
	if (rawlen != 32)
		return kfail(err, errlen, "PrivateKey of %d octets is not 32", rawlen);
	rc = load ? load_pkey(k, raw, (size_t)rawlen, err, errlen) : 0;
	OPENSSL_cleanse(raw, sizeof(raw));
	return rc;
}

void dnssec_key_fini(struct dnssec_key *k)
{
	EVP_PKEY_free((EVP_PKEY *)k->pkey);
	k->pkey = NULL;
}

/* ---- the directory -------------------------------------------------- */

static int read_file(const char *path, char **out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	ssize_t n;
	int rc = 0;

	*out = NULL;
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		goto out;
	}
	if (st.st_size > KEYFILE_MAX) {
		rc = -EFBIG;
		goto out;
	}
	*out = malloc((size_t)st.st_size + 1);
	if (!*out) {
		rc = -ENOMEM;
		goto out;
	}
	n = read(fd, *out, (size_t)st.st_size);
	if (n < 0) {
		rc = -errno;
		free(*out);
		*out = NULL;
		goto out;
	}
	*len = (size_t)n;
out:
	close(fd);
	return rc;
}

/* The lower-case wire name of the zone in "K<zone>.+<alg>+<id>.key", or
 * -EINVAL when name is not of that form. */
static int file_zone(const char *name, uint8_t *wire, size_t *wlen)
{
	size_t n = strlen(name);
	const char *plus;
	char zone[256];
	ldns_rdf *r = NULL;

	if (n < 5 || name[0] != 'K' || strcmp(name + n - 4, ".key") != 0)
		return -EINVAL;
	plus = strstr(name, ".+");
	if (!plus || (size_t)(plus - name) >= sizeof(zone))
		return -EINVAL;
	memcpy(zone, name + 1, (size_t)(plus - name - 1) + 1);
	zone[plus - name] = '\0';           /* keeps the trailing dot */
	if (ldns_str2rdf_dname(&r, zone) != LDNS_STATUS_OK)
		return -EINVAL;
	*wlen = ldns_rdf_size(r);
	wire_name_lower(ldns_rdf_data(r), *wlen, wire);
	ldns_rdf_deep_free(r);
	return 0;
}

static int zone_wire(const struct zone *z, uint8_t *out, size_t *len)
{
	memcpy(out, z->apex->name, z->apex->name_len);
	*len = z->apex->name_len;
	return 0;
}

static int64_t key_id(const struct dnssec_key *k)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (unsigned i = 0; i < k->pub_len; i++)
		h = (h ^ k->pub[i]) * 0x100000001b3ull;
	return (int64_t)(h ^ k->alg ^ (uint64_t)k->flags << 8);
}

/* Appends one record (zone.h layout) to an rrset under construction. */
static int rrset_add(struct rrset *s, uint8_t **buf, uint16_t type,
		     uint32_t ttl, const uint8_t *rd, uint16_t rdlen)
{
	uint8_t *nb = realloc(*buf, s->len + 12u + rdlen);

	if (!nb)
		return -ENOMEM;
	*buf = nb;
	nb += s->len;
	nb[0] = 0xc0;
	nb[1] = 0x0c;
	wire_put16(nb + 2, type);
	wire_put16(nb + 4, CLASS_IN);
	wire_put32(nb + 6, ttl);
	wire_put16(nb + 10, rdlen);
	memcpy(nb + 12, rd, rdlen);
	s->len += 12u + rdlen;
	s->count++;
	s->type = type;
	return 0;
}

static size_t dnskey_rdata(const struct dnssec_key *k, uint8_t *rd)
{
	wire_put16(rd, k->flags);
	rd[2] = 3;
	rd[3] = k->alg;
	memcpy(rd + 4, k->pub, k->pub_len);
	return 4u + k->pub_len;
}

/* DS / CDS rdata with a SHA-256 digest (RFC 4509). */
static int ds_rdata(const struct dnssec_zone *z, const struct dnssec_key *k,
		    uint8_t *rd)
{
	uint8_t in[255 + 100];
	size_t n = z->apex_len;

	memcpy(in, z->apex, n);
	n += dnskey_rdata(k, in + n);
	wire_put16(rd, k->tag);
	rd[2] = k->alg;
	rd[3] = 2;
	return EVP_Digest(in, n, rd + 4, NULL, EVP_sha256(), NULL) == 1 ? 36 : -EIO;
}

static void zone_fini(struct dnssec_zone *z)
{
	for (unsigned i = 0; i < z->n_keys; i++)
		dnssec_key_fini(&z->keys[i]);
	free((void *)z->dnskey.data);
	free((void *)z->cds.data);
	free((void *)z->cdnskey.data);
}

/* Applies timing at now and builds the apex RRsets. */
static int zone_setup(struct dnssec_zone *z, time_t now)
{
	const struct rrset *soa = zone_rrset(z->zone->apex, TYPE_SOA);
	uint32_t ttl = wire_get32(soa->data + 6);
	uint8_t *b1 = NULL, *b2 = NULL, *b3 = NULL;
	const struct dnssec_key *ksk[DNSSEC_KEYS_MAX], *zsk[DNSSEC_KEYS_MAX];
	unsigned nk = 0, nz = 0;
	int rc = 0;

	z->neg_ttl = wire_get32(z->zone->neg_soa + z->apex_len + 4);
	for (unsigned i = 0; i < z->n_keys; i++) {
		struct dnssec_key *k = &z->keys[i];

		k->published = (!k->publish || k->publish <= now) &&
			       (!k->del || now < k->del);
		k->active = k->published && (!k->activate || k->activate <= now) &&
			    (!k->inactive || now < k->inactive);
		if (k->active && (k->flags & 1))
			ksk[nk++] = k;
		else if (k->active)
			zsk[nz++] = k;
	}
	/* A single key (or keys of one kind) signs everything. */
	if (!nz)
		for (unsigned i = 0; i < nk; i++)
			zsk[nz++] = ksk[i];
	if (!nk)
		for (unsigned i = 0; i < nz; i++)
			ksk[nk++] = zsk[i];
	memcpy(z->ksk, ksk, sizeof(ksk));
	memcpy(z->zsk, zsk, sizeof(zsk));
	z->n_ksk = nk;
	z->n_zsk = nz;
	for (unsigned i = 0; i < z->n_keys && rc == 0; i++) {
		uint8_t rd[128];
		size_t n;

		if (!z->keys[i].published)
			continue;
		n = dnskey_rdata(&z->keys[i], rd);
		rc = rrset_add(&z->dnskey, &b1, TYPE_DNSKEY, ttl, rd, (uint16_t)n);
	}
	/* CDS/CDNSKEY (RFC 7344): the keys that sign the key set, i.e. what
	 * the parent's DS should point at. */
	for (unsigned i = 0; i < nk && rc == 0; i++) {
		uint8_t rd[128];
		int n = ds_rdata(z, ksk[i], rd);

		rc = n < 0 ? n : rrset_add(&z->cds, &b2, TYPE_CDS, ttl, rd, (uint16_t)n);
		if (rc == 0) {
			n = (int)dnskey_rdata(ksk[i], rd);
			rc = rrset_add(&z->cdnskey, &b3, TYPE_CDNSKEY, ttl, rd,
				       (uint16_t)n);
		}
	}
	z->dnskey.data = b1;
	z->cds.data = b2;
	z->cdnskey.data = b3;
	return rc;
}

static int add_key(struct dnssec_set *s, const char *dir, const char *name,
		   char *err, size_t errlen)
{
	uint8_t wire[WIRE_NAME_MAX];
	size_t wlen, pub_len = 0, priv_len = 0;
	char path[4096], kerr[256];
	char *pub = NULL, *priv = NULL;
	struct dnssec_zone *z = NULL;
	struct dnssec_key k;
	int rc;

	if (file_zone(name, wire, &wlen) < 0)
		return 0;                   /* not a key file name */
	for (size_t i = 0; i < s->n; i++)
		if (s->zones[i].apex_len == wlen && !memcmp(s->zones[i].apex, wire, wlen))
			z = &s->zones[i];
	if (!z) {
		log_debug("dnssec: %s/%s: no served zone of that name", dir, name);
		return 0;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	rc = read_file(path, &pub, &pub_len);
	if (rc < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
		goto out;
	}
	snprintf(path, sizeof(path), "%s/%.*s.private", dir, (int)(strlen(name) - 4), name);
	rc = read_file(path, &priv, &priv_len);
	if (rc < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
		goto out;
	}
	rc = dnssec_key_parse(pub, pub_len, priv, priv_len, true, &k, kerr, sizeof(kerr));
	if (rc < 0) {
		snprintf(err, errlen, "%s/%s: %s", dir, name, kerr);
		goto out;
	}
	if (k.owner_len != wlen || memcmp(k.owner, wire, wlen) != 0) {
		dnssec_key_fini(&k);
		rc = -EINVAL;
		snprintf(err, errlen, "%s/%s: the DNSKEY's owner is not the zone the file "
			 "is named after", dir, name);
		goto out;
	}
	if (z->n_keys == DNSSEC_KEYS_MAX) {
		dnssec_key_fini(&k);
		rc = -E2BIG;
		snprintf(err, errlen, "%s/%s: more than %d keys for one zone", dir, name,
			 DNSSEC_KEYS_MAX);
		goto out;
	}
	snprintf(k.file, sizeof(k.file), "%s", name);
	k.id = (uint64_t)key_id(&k);
	z->keys[z->n_keys++] = k;
out:
	free(pub);
	free(priv);
	return rc;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int dnssec_load(const char *dir, struct zone *const *zones, size_t n,
		time_t now, struct dnssec_set **out, char *err, size_t errlen)
{
	struct dnssec_set *s = calloc(1, sizeof(*s));
	DIR *d = NULL;
	struct dirent *e;
	char **names = NULL;
	size_t n_names = 0;
	int rc = 0;

	*out = NULL;
	if (!s || !(s->zones = calloc(n + 1, sizeof(*s->zones)))) {
		rc = -ENOMEM;
		snprintf(err, errlen, "dnssec: out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		size_t wl;

		if (!zones[i])
			continue;
		s->zones[s->n].zone = zones[i];
		zone_wire(zones[i], s->zones[s->n].apex, &wl);
		s->zones[s->n].apex_len = (uint8_t)wl;
		s->n++;
	}
	d = opendir(dir);
	if (!d) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		goto out;
	}
	/* Sorted, so that the keys of a zone are always in the same order. */
	while ((e = readdir(d)) != NULL) {
		char **nn;

		if (e->d_name[0] != 'K')
			continue;
		nn = realloc(names, (n_names + 1) * sizeof(*names));
		if (!nn || !(nn[n_names] = strdup(e->d_name))) {
			names = nn ? nn : names;
			rc = -ENOMEM;
			snprintf(err, errlen, "dnssec: out of memory");
			goto out;
		}
		names = nn;
		n_names++;
	}
	if (n_names)	/* qsort() must not get NULL, even for 0 */
		qsort(names, n_names, sizeof(*names), name_cmp);
	for (size_t i = 0; i < n_names && rc == 0; i++)
		rc = add_key(s, dir, names[i], err, errlen);
	for (size_t i = 0; i < s->n && rc == 0; i++) {
		struct dnssec_zone *z = &s->zones[i];

		if (!z->n_keys)
			continue;
		rc = zone_setup(z, now);
		if (rc < 0) {
			snprintf(err, errlen, "dnssec: out of memory");
			break;
		}
		if (!z->n_zsk)
			log_warn("dnssec: zone %s has %u key(s), none active now: "
				 "served unsigned", z->zone->origin, z->n_keys);
		else
			log_info("dnssec: zone %s signed: %u key(s), %u published, "
				 "%u signing the key set, %u signing the zone",
				 z->zone->origin, z->n_keys, z->dnskey.count, z->n_ksk,
				 z->n_zsk);
	}
out:
	if (d)
		closedir(d);
	for (size_t i = 0; i < n_names; i++)
		free(names[i]);
	free(names);
	if (rc < 0) {
		dnssec_set_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

void dnssec_set_free(struct dnssec_set *s)
{
	if (!s)
		return;
	for (size_t i = 0; s->zones && i < s->n; i++)
		zone_fini(&s->zones[i]);
	free(s->zones);
	free(s);
}

void dnssec_print_ds(const struct dnssec_set *s, FILE *out)
{
	for (size_t i = 0; s && i < s->n; i++) {
		const struct dnssec_zone *z = &s->zones[i];

		for (unsigned k = 0; k < z->n_keys; k++) {
			const struct dnssec_key *key = &z->keys[k];
			uint8_t rd[128];
			bool sep = false;

			/* Keys that sign (or will sign) the key set: SEP keys,
			 * or every key when the zone has none. */
			for (unsigned j = 0; j < z->n_keys; j++)
				sep |= (z->keys[j].flags & 1) != 0;
			if ((sep && !(key->flags & 1)) || !key->published ||
			    ds_rdata(z, key, rd) < 0)
				continue;
			fprintf(out, "%s\tIN\tDS\t%u %u 2 ", z->zone->origin, key->tag,
				key->alg);
			for (int b = 4; b < 36; b++)
				fprintf(out, "%02X", rd[b]);
			fprintf(out, "\t; %s%s\n", key->file, key->active ? "" : " (not active)");
		}
	}
}

/* ---- the query path ------------------------------------------------- */

static size_t g_cache_bytes;
static unsigned g_sign_rate;
static bool g_configured;
static uint64_t g_hash_key[2];

void dnssec_configure(size_t cache_bytes, unsigned sign_rate)
{
	g_cache_bytes = cache_bytes;
	g_sign_rate = sign_rate;
	g_configured = true;
	if (RAND_bytes((unsigned char *)g_hash_key, sizeof(g_hash_key)) != 1) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		g_hash_key[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull;
		g_hash_key[1] = (uint64_t)getpid() ^ (uint64_t)ts.tv_sec;
	}
}

bool dnssec_configured(void)
{
	return g_configured;
}

/* One cached signature: the 128-bit SipHash-2-4 of what was signed, times
 * left out, and the signature. */
struct sig_entry {
	uint64_t h1, h2;
	uint32_t inception, expiration;
	uint8_t siglen;
	uint8_t sig[DNSSEC_SIG_MAX];
};

struct rec_ref {
	uint32_t off;                /* canonical rdata in w->rd */
	uint16_t len;
	uint16_t type;
	uint32_t ttl;
	const uint8_t *rdata;        /* as written */
};

#define TEMPLATES 8
/* Ways of a set of the signature cache: a few RRsets hashed to one set
 * must not evict each other on every pass (each eviction is a new
 * signature). */
#define SIG_WAYS 4

/* A memo entry: the RRSIG records dnssec_sign() appended after the records
 * that id stands for in snapshot generation gen. 232 octets hold two ECDSA
 * or Ed25519 RRSIGs of a zone name up to about 60 octets; longer ones are
 * not memoised. */
#define MEMO_DATA 232
#define MEMO_WAYS 2
struct memo_entry {
	const void *id;
	uint64_t gen;
	uint32_t expiration, inception;
	uint16_t len, count;
	uint8_t data[MEMO_DATA];
};

struct dnssec_worker {
	EVP_MD_CTX *md;
	/* Per key, a context on which EVP_DigestSignInit() ran once: each
	 * signature starts from a copy of it. */
	struct {
		uint64_t id;
		EVP_MD_CTX *ctx;
	} tmpl[TEMPLATES];
	unsigned tmpl_next;
	uint64_t rng;
	struct sig_entry *cache;     /* 2-way sets */
	size_t sets;                 /* power of two, 0: no cache */
	double tokens;
	struct timespec last;
	struct dnssec_counters ctr;
	struct rec_ref recs[RRSET_MAX];
	uint16_t order[RRSET_MAX];
	uint8_t der[128];
	/* Finished RRSIGs of RRsets that stay the same for a snapshot's life
	 * (dnssec_sign_static), direct-mapped. */
	struct memo_entry *memo;     /* MEMO_WAYS per set; a new entry goes
	                                into way 0, the older one moves on */
	size_t memo_n;               /* sets; 0: no memo */
	uint32_t sig_exp, sig_inc;   /* the last dnssec_sign(): the earliest
	                                expiration, the latest inception */
	uint8_t rd[65536];           /* canonical rdata of one RRset */
	uint8_t tbs[TBS_MAX];        /* what is signed */
};

#define HUGE_PAGE (2u << 20)

/* A zeroed table of n octets for the signature cache or the memo, on
 * transparent huge pages where the kernel gives them: a lookup is one
 * random access into tens of MiB, and with 4 KiB pages each one also
 * misses the TLB. The pages are touched now, at worker start, so that no
 * answer waits for a page fault (or for the kernel to assemble a huge
 * page). NULL on failure; free with table_free(p, n). */
static void *table_alloc(size_t n)
{
	size_t len = n + HUGE_PAGE;
	uint8_t *base, *p;

	base = mmap(NULL, len, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED)
		return NULL;
	p = (uint8_t *)(((uintptr_t)base + HUGE_PAGE - 1) &
			~(uintptr_t)(HUGE_PAGE - 1));
	/* Only the aligned part is kept. */
	if (p > base)
		munmap(base, (size_t)(p - base));
	if (base + len > p + n)
		munmap(p + n, (size_t)(base + len - (p + n)));
	(void)madvise(p, n, MADV_HUGEPAGE);
	memset(p, 0, n);
	return p;
}

static void table_free(void *p, size_t n)
{
	if (p)
		munmap(p, n);
}

/* h (uniform over 64 bits) reduced to 0..n-1 without a division. */
static inline size_t range(uint64_t h, size_t n)
{
	return (size_t)(((unsigned __int128)h * n) >> 64);
}

struct dnssec_worker *dnssec_worker_new(uint64_t seed)
{
	struct dnssec_worker *w = calloc(1, sizeof(*w));
	size_t sets = 0;

	if (!w)
		return NULL;
	w->md = EVP_MD_CTX_new();
	w->rng = 0x9e3779b97f4a7c15ull * (seed + 1) ^ (uintptr_t)w;
	/* The budget is shared: a third for the memo, the rest for the
	 * signature cache; any number of sets (fast range reduction). */
	sets = (g_cache_bytes - g_cache_bytes / 3) /
	       (SIG_WAYS * sizeof(struct sig_entry));
	if (sets) {
		size_t m = g_cache_bytes / 3 /
			   (MEMO_WAYS * sizeof(struct memo_entry));

		w->cache = table_alloc(sets * SIG_WAYS * sizeof(*w->cache));
		w->sets = w->cache ? sets : 0;
		if (m) {
			w->memo = table_alloc(m * MEMO_WAYS * sizeof(*w->memo));
			w->memo_n = w->memo ? m : 0;
		}
	}
	w->tokens = g_sign_rate;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &w->last);
	if (!w->md || (sets && !w->cache)) {
		dnssec_worker_free(w);
		return NULL;
	}
	return w;
}

void dnssec_worker_free(struct dnssec_worker *w)
{
	if (!w)
		return;
	EVP_MD_CTX_free(w->md);
	for (unsigned i = 0; i < TEMPLATES; i++)
		EVP_MD_CTX_free(w->tmpl[i].ctx);
	table_free(w->cache, w->sets * SIG_WAYS * sizeof(*w->cache));
	table_free(w->memo, w->memo_n * MEMO_WAYS * sizeof(*w->memo));
	free(w);
}

void dnssec_worker_counters(const struct dnssec_worker *w,
			    struct dnssec_counters *out)
{
	if (w)
		*out = w->ctr;
	else
		memset(out, 0, sizeof(*out));
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                         \
	do {                                                             \
		v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32); \
		v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                    \
		v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                    \
		v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32); \
	} while (0)

/* SipHash-2-4 with its 128-bit output (one pass over the data). */
static void siphash128(const uint8_t *in, size_t len, uint64_t k0, uint64_t k1,
		       uint64_t out[2])
{
	uint64_t v0 = 0x736f6d6570736575ull ^ k0, v1 = 0x646f72616e646f6dull ^ k1;
	uint64_t v2 = 0x6c7967656e657261ull ^ k0, v3 = 0x7465646279746573ull ^ k1;
	uint64_t b = (uint64_t)len << 56, m;
	const uint8_t *end = in + (len & ~(size_t)7);

	v1 ^= 0xee;
	for (; in != end; in += 8) {
		memcpy(&m, in, 8);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	for (size_t i = 0; i < (len & 7); i++)
		b |= (uint64_t)in[i] << (8 * i);
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xee;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	out[0] = v0 ^ v1 ^ v2 ^ v3;
	v1 ^= 0xdd;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	out[1] = v0 ^ v1 ^ v2 ^ v3;
}

/* Copies rdata to out, lower-casing the names RFC 4034 6.2 lists for the
 * types a zone here can hold. */
static void canon_rdata(uint16_t type, const uint8_t *rd, uint16_t len,
			uint8_t *out)
{
	size_t at, names;

	memcpy(out, rd, len);
	switch (type) {
	case TYPE_NS: case TYPE_CNAME: case 12 /* PTR */: case 39 /* DNAME */:
	case 3: case 4: case 7: case 8: case 9:           /* MD MF MB MG MR */
		at = 0; names = 1; break;
	case TYPE_MX: case 18 /* AFSDB */: case 21 /* RT */: case 36 /* KX */:
		at = 2; names = 1; break;
	case TYPE_SRV:
		at = 6; names = 1; break;
	case TYPE_SOA: case 14 /* MINFO */: case 17 /* RP */:
		at = 0; names = 2; break;
	default:
		return;
	}
	while (names--) {
		while (at < len && out[at]) {
			size_t l = out[at];

			for (size_t i = at + 1; i <= at + l && i < len; i++)
				if (out[i] >= 'A' && out[i] <= 'Z')
					out[i] |= 0x20;
			at += l + 1;
		}
		at++;
	}
}

static int rd_cmp(const struct dnssec_worker *w, const struct rec_ref *a,
		  const struct rec_ref *b)
{
	size_t n = a->len < b->len ? a->len : b->len;
	int c = memcmp(w->rd + a->off, w->rd + b->off, n);

	if (c)
		return c;
	return a->len < b->len ? -1 : a->len > b->len;
}

static bool budget(struct dnssec_worker *w)
{
	struct timespec now;
	double dt;

	if (!g_sign_rate)
		return true;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
	dt = (double)(now.tv_sec - w->last.tv_sec) +
	     (double)(now.tv_nsec - w->last.tv_nsec) / 1e9;
	w->last = now;
	w->tokens += dt * g_sign_rate;
	if (w->tokens > g_sign_rate)
		w->tokens = g_sign_rate;
	if (w->tokens < 1) {
		w->ctr.over_budget++;
		return false;
	}
	w->tokens -= 1;
	return true;
}

/* The initialised signing context of key k (made on first use; the key
 * object is only read, so workers share it). NULL when out of memory. */
static EVP_MD_CTX *template_of(struct dnssec_worker *w,
			       const struct dnssec_key *k)
{
	unsigned i;

	for (i = 0; i < TEMPLATES; i++)
		if (w->tmpl[i].ctx && w->tmpl[i].id == k->id)
			return w->tmpl[i].ctx;
	i = w->tmpl_next++ % TEMPLATES;
	EVP_MD_CTX_free(w->tmpl[i].ctx);
	w->tmpl[i].id = k->id;
	w->tmpl[i].ctx = EVP_MD_CTX_new();
	if (w->tmpl[i].ctx &&
	    EVP_DigestSignInit(w->tmpl[i].ctx, NULL,
			       k->alg == DNSSEC_ALG_ECDSAP256 ? EVP_sha256() : NULL,
			       NULL, (EVP_PKEY *)k->pkey) != 1) {
		EVP_MD_CTX_free(w->tmpl[i].ctx);
		w->tmpl[i].ctx = NULL;
	}
	return w->tmpl[i].ctx;
}

/* Signs tbs[0..n) with k: the RRSIG signature field in sig. A copy of the
 * key's initialised context does the work; OpenSSL allocates inside
 * EVP_MD_CTX_copy_ex() and EVP_DigestSign() - only on a cache miss. */
static int do_sign(struct dnssec_worker *w, const struct dnssec_key *k,
		   const uint8_t *tbs, size_t n, uint8_t *sig, uint8_t *siglen)
{
	EVP_MD_CTX *t = template_of(w, k);
	size_t len = sizeof(w->der);

	if (!t || EVP_MD_CTX_copy_ex(w->md, t) != 1) {
		/* No copy (an OpenSSL without it for this key type). */
		EVP_MD_CTX_reset(w->md);
		if (EVP_DigestSignInit(w->md, NULL,
				       k->alg == DNSSEC_ALG_ECDSAP256 ? EVP_sha256() : NULL,
				       NULL, (EVP_PKEY *)k->pkey) != 1)
			return -EIO;
	}
	if (EVP_DigestSign(w->md, w->der, &len, tbs, n) != 1)
		return -EIO;
	if (k->alg == DNSSEC_ALG_ED25519) {
		if (len != 64)
			return -EIO;
		memcpy(sig, w->der, 64);
	} else {
		/* DER SEQUENCE { r, s } -> r | s, 32 octets each (RFC 6605). */
		const unsigned char *p = w->der;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)len);
		const BIGNUM *r, *s;

		if (!es)
			return -EIO;
		ECDSA_SIG_get0(es, &r, &s);
		if (BN_bn2binpad(r, sig, 32) != 32 || BN_bn2binpad(s, sig + 32, 32) != 32) {
			ECDSA_SIG_free(es);
			return -EIO;
		}
		ECDSA_SIG_free(es);
	}
	*siglen = 64;
	return 0;
}

/* The signature of tbs[0..n) (RRSIG rdata up to the signer, then the
 * records) by k, from the cache or made now; fills the time fields of
 * tbs. */
static int signature(struct dnssec_worker *w, const struct dnssec_key *k,
		     uint8_t *tbs, size_t n, time_t now, uint8_t *sig,
		     uint8_t *siglen)
{
	struct sig_entry *set = NULL, *e;
	uint64_t h[2], h1, h2;
	uint32_t t = (uint32_t)now, inc, exp;
	int rc;

	/* The times are left out of the key (zero while hashing). */
	memset(tbs + 8, 0, 8);
	wire_put32(tbs + 8, (uint32_t)(k->id >> 32));
	wire_put32(tbs + 12, (uint32_t)k->id);
	siphash128(tbs, n, g_hash_key[0], g_hash_key[1], h);
	h1 = h[0];
	h2 = h[1];
	if (w->sets) {
		set = &w->cache[range(h1, w->sets) * SIG_WAYS];
		for (int i = 0; i < SIG_WAYS; i++) {
			e = &set[i];
			if (e->h1 == h1 && e->h2 == h2 && e->siglen &&
			    (int64_t)e->expiration - REFRESH_BEFORE > (int64_t)t &&
			    e->inception <= t) {
				wire_put32(tbs + 8, e->expiration);
				wire_put32(tbs + 12, e->inception);
				memcpy(sig, e->sig, e->siglen);
				*siglen = e->siglen;
				w->ctr.cache_hits++;
				return 0;
			}
		}
	}
	if (!budget(w))
		return -EAGAIN;
	w->rng ^= w->rng << 13;
	w->rng ^= w->rng >> 7;
	w->rng ^= w->rng << 17;
	inc = t - INCEPTION_BACKDATE;
	exp = t + VALIDITY - (uint32_t)(w->rng % JITTER_MAX);
	wire_put32(tbs + 8, exp);
	wire_put32(tbs + 12, inc);
	rc = do_sign(w, k, tbs, n, sig, siglen);
	if (rc < 0)
		return rc;
	w->ctr.signed_++;
	if (set) {
		/* Replace an empty way, else the one expiring first. */
		e = &set[0];
		for (int i = 0; i < SIG_WAYS && e->siglen; i++)
			if (!set[i].siglen || set[i].expiration < e->expiration)
				e = &set[i];
		e->h1 = h1;
		e->h2 = h2;
		e->inception = inc;
		e->expiration = exp;
		e->siglen = *siglen;
		memcpy(e->sig, sig, *siglen);
	}
	return 0;
}

/* Labels of a lower-case wire name for the RRSIG labels field: the root
 * and a leading "*" do not count (RFC 4034 3.1.3). */
static uint8_t rrsig_labels(const uint8_t *name)
{
	unsigned n = wire_name_labels(name);

	if (name[0] == 1 && name[1] == '*' && n)
		n--;
	return (uint8_t)n;
}

/* Signs the records of one type among w->recs[0..nrec) and appends the
 * RRSIGs at pkt + *len. */
static int sign_type(struct dnssec_worker *w, const struct dnssec_zone *z,
		     bool keyset, uint16_t type, unsigned nrec,
		     const uint8_t *lname, size_t llen, const uint8_t *owner,
		     size_t owner_len, uint8_t *pkt, size_t *len, size_t limit,
		     uint16_t *count, time_t now)
{
	unsigned n = 0, nk = keyset ? z->n_ksk : z->n_zsk;
	const struct dnssec_key *const *keys = keyset ? z->ksk : z->zsk;
	uint32_t ttl = 0, rdoff = 0;
	size_t hdr, at;
	uint8_t *tbs = w->tbs;

	for (unsigned i = 0; i < nrec; i++) {
		struct rec_ref *r = &w->recs[i];

		if (r->type != type)
			continue;
		if (!n)
			ttl = r->ttl;
		r->off = rdoff;
		canon_rdata(type, r->rdata, r->len, w->rd + rdoff);
		rdoff += r->len;
		/* Insertion sort into canonical order (RFC 4034 6.3). */
		{
			unsigned j = n;

			while (j && rd_cmp(w, &w->recs[w->order[j - 1]], r) > 0) {
				w->order[j] = w->order[j - 1];
				j--;
			}
			w->order[j] = (uint16_t)i;
		}
		n++;
	}
	for (unsigned ki = 0; ki < nk; ki++) {
		const struct dnssec_key *k = keys[ki];
		uint8_t sig[DNSSEC_SIG_MAX], siglen = 0;
		size_t rdlen;
		int rc;

		wire_put16(tbs, type);
		tbs[2] = k->alg;
		tbs[3] = rrsig_labels(lname);
		wire_put32(tbs + 4, ttl);
		wire_put16(tbs + 16, k->tag);
		memcpy(tbs + 18, z->apex, z->apex_len);
		hdr = at = 18u + z->apex_len;
		for (unsigned i = 0; i < n; i++) {
			const struct rec_ref *r = &w->recs[w->order[i]];

			/* RFC 4034 6.3: duplicates are one. */
			if (i && rd_cmp(w, &w->recs[w->order[i - 1]], r) == 0)
				continue;
			if (at + llen + 10u + r->len > TBS_MAX)
				return -EINVAL;
			memcpy(tbs + at, lname, llen);
			at += llen;
			wire_put16(tbs + at, type);
			wire_put16(tbs + at + 2, CLASS_IN);
			wire_put32(tbs + at + 4, ttl);
			wire_put16(tbs + at + 8, r->len);
			memcpy(tbs + at + 10, w->rd + r->off, r->len);
			at += 10u + r->len;
		}
		rc = signature(w, k, tbs, at, now, sig, &siglen);
		if (rc < 0)
			return rc;
		if (wire_get32(tbs + 8) < w->sig_exp)
			w->sig_exp = wire_get32(tbs + 8);
		if (wire_get32(tbs + 12) > w->sig_inc)
			w->sig_inc = wire_get32(tbs + 12);
		rdlen = hdr + siglen;
		if (*len + owner_len + 10 + rdlen > limit)
			return -ENOSPC;
		memcpy(pkt + *len, owner, owner_len);
		*len += owner_len;
		wire_put16(pkt + *len, TYPE_RRSIG);
		wire_put16(pkt + *len + 2, CLASS_IN);
		wire_put32(pkt + *len + 4, ttl);
		wire_put16(pkt + *len + 8, (uint16_t)rdlen);
		memcpy(pkt + *len + 10, tbs, hdr);
		memcpy(pkt + *len + 10 + hdr, sig, siglen);
		*len += 10 + rdlen;
		(*count)++;
	}
	return 0;
}

int dnssec_sign(struct dnssec_worker *w, const struct dnssec_zone *z,
		bool keyset, uint8_t *pkt, size_t start, size_t *len,
		size_t limit, uint16_t *count, time_t now)
{
	uint8_t lname[WIRE_NAME_MAX];
	size_t off = start, end = *len, owner_len = 0, llen = 0;
	unsigned nrec = 0;
	uint16_t added = 0;
	int rc = 0;

	if (!w)
		return -EINVAL;
	w->sig_exp = UINT32_MAX;
	w->sig_inc = 0;
	while (off < end) {
		size_t o = off;
		int nl = wire_read_name(pkt, end, &off, nrec ? NULL : lname);

		if (nl < 0 || off + 10 > end || nrec == RRSET_MAX)
			return -EINVAL;
		if (!nrec) {
			owner_len = off - o;
			llen = (size_t)nl;
		}
		w->recs[nrec].type = wire_get16(pkt + off);
		w->recs[nrec].ttl = wire_get32(pkt + off + 4);
		w->recs[nrec].len = wire_get16(pkt + off + 8);
		w->recs[nrec].rdata = pkt + off + 10;
		off += 10u + w->recs[nrec].len;
		if (off > end)
			return -EINVAL;
		nrec++;
	}
	for (unsigned i = 0; i < nrec && rc == 0; i++) {
		bool seen = false;

		for (unsigned j = 0; j < i; j++)
			seen |= w->recs[j].type == w->recs[i].type;
		if (!seen)
			rc = sign_type(w, z, keyset, w->recs[i].type, nrec, lname, llen,
				       pkt + start, owner_len, pkt, len, limit,
				       &added, now);
	}
	if (rc < 0) {
		*len = end;
		return rc;
	}
	*count += added;
	return 0;
}

static inline struct memo_entry *memo_set(const struct dnssec_worker *w,
					  const void *id, uint64_t gen)
{
	/* Fibonacci hashing of the address: RRsets are spread over memory. */
	return &w->memo[range(((uintptr_t)id ^ gen) * 0x9e3779b97f4a7c15ull,
			      w->memo_n) * MEMO_WAYS];
}

void dnssec_memo_prefetch(const struct dnssec_worker *w, const void *id,
			  uint64_t gen)
{
	const uint8_t *p;

	if (!w || !w->memo_n)
		return;
	/* Way 0's tag and records (what a hit copies), way 1's tag. */
	p = (const uint8_t *)memo_set(w, id, gen);
	__builtin_prefetch(p);
	__builtin_prefetch(p + 64);
	__builtin_prefetch(p + 128);
	__builtin_prefetch(p + sizeof(struct memo_entry));
}

int dnssec_sign_static(struct dnssec_worker *w, const struct dnssec_zone *z,
		       bool keyset, const void *id, uint64_t gen, uint8_t *pkt,
		       size_t start, size_t *len, size_t limit,
		       uint16_t *count, time_t now)
{
	struct memo_entry *set, *e;
	size_t before = *len;
	uint16_t added = 0;
	int rc;

	if (!w || !w->memo_n)
		return dnssec_sign(w, z, keyset, pkt, start, len, limit, count, now);
	set = memo_set(w, id, gen);
	for (int i = 0; i < MEMO_WAYS; i++) {
		e = &set[i];
		if (e->id != id || e->gen != gen || !e->len ||
		    (int64_t)e->expiration - REFRESH_BEFORE <= (int64_t)now ||
		    (int64_t)e->inception > (int64_t)now)
			continue;
		if (*len + e->len > limit)
			return -ENOSPC;
		memcpy(pkt + *len, e->data, e->len);
		*len += e->len;
		*count += e->count;
		w->ctr.cache_hits += e->count;
		return 0;
	}
	rc = dnssec_sign(w, z, keyset, pkt, start, len, limit, &added, now);
	if (rc == 0 && *len - before <= MEMO_DATA && added) {
		/* A stale entry of id (refreshed now) is overwritten in place;
		 * otherwise the newest goes first and the older one moves on. */
		e = &set[0];
		for (int i = 0; i < MEMO_WAYS; i++)
			if (set[i].id == id)
				e = &set[i];
		if (e->id != id && set[0].len)
			memmove(&set[1], &set[0],
				(MEMO_WAYS - 1) * sizeof(*set));
		e->id = id;
		e->gen = gen;
		e->expiration = w->sig_exp;
		e->inception = w->sig_inc;
		e->len = (uint16_t)(*len - before);
		e->count = added;
		memcpy(e->data, pkt + before, e->len);
	}
	*count += added;
	return rc;
}

const void *dnssec_nxname_id(const uint8_t *name, size_t len, bool owned)
{
	uint64_t h[2];

	siphash128(name, len, g_hash_key[0], g_hash_key[1], h);
	/* Objects are 8-octet aligned: their addresses plus 0, 1 or 2 never
	 * end in binary 11x. */
	return (const void *)(uintptr_t)(h[0] << 3 | (owned ? 7u : 6u));
}

size_t dnssec_put_nsec(uint8_t *p, size_t room, const uint8_t *owner,
		       size_t owner_len, const uint8_t *name, size_t nlen,
		       uint32_t ttl, const uint16_t *types, unsigned n)
{
	uint8_t bits[256][32];       /* a window's row is zeroed when used */
	bool used[256] = { false };
	uint8_t blen[256] = { 0 };
	size_t rdlen = 2 + nlen, at;

	if (nlen + 2 > WIRE_NAME_MAX)
		return 0;
	for (unsigned i = 0; i < n + 2; i++) {
		uint16_t t = i < n ? types[i] : i == n ? TYPE_RRSIG : TYPE_NSEC;
		unsigned win = t >> 8, lo = t & 0xff;

		if (!used[win]) {
			used[win] = true;
			memset(bits[win], 0, sizeof(bits[win]));
		}
		bits[win][lo / 8] |= (uint8_t)(0x80 >> (lo % 8));
		if (lo / 8 + 1 > blen[win])
			blen[win] = (uint8_t)(lo / 8 + 1);
	}
	for (unsigned win = 0; win < 256; win++)
		if (used[win])
			rdlen += 2u + blen[win];
	if (owner_len + 10 + rdlen > room)
		return 0;
	memcpy(p, owner, owner_len);
	at = owner_len;
	wire_put16(p + at, TYPE_NSEC);
	wire_put16(p + at + 2, CLASS_IN);
	wire_put32(p + at + 4, ttl);
	wire_put16(p + at + 8, (uint16_t)rdlen);
	at += 10;
	p[at++] = 1;                   /* next: \000.name */
	p[at++] = 0;
	memcpy(p + at, name, nlen);
	at += nlen;
	for (unsigned win = 0; win < 256; win++) {
		if (!used[win])
			continue;
		p[at++] = (uint8_t)win;
		p[at++] = blen[win];
		memcpy(p + at, bits[win], blen[win]);
		at += blen[win];
	}
	return at;
}
