/* geo/geo.h - GeoIP: client address -> location, and distances.
 *
 * Load time (control thread): geo_load() opens an MMDB database with
 * libmaxminddb, walks its whole search tree once and builds an immutable
 * table of address ranges covering all of the 128-bit space, each with a
 * location id; equal locations are shared, and adjacent ranges with the same
 * location are merged. libmaxminddb is closed before geo_load() returns.
 *
 * Query time (any thread, concurrently): geo_lookup() is a bounded binary
 * search over that table: no allocation, no locks, no libmaxminddb.
 *
 * Addresses are IPv6 throughout; IPv4 is v4-mapped (::ffff:a.b.c.d) and
 * prefix lengths are in the 128-bit space (IPv4 /24 is 120).
 *
 * Also here: great-circle distance and the country centroid table
 * (geo/dist.c, geo/centroids.c); the parser for "ADDR[/LEN]".
 */
#ifndef GEO_GEO_H
#define GEO_GEO_H
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

/* A location: WGS84 degrees; ISO 3166-1 alpha-2 country and MaxMind
 * continent code (AF AN AS EU NA OC SA), "" when unknown. */
struct geo_loc {
	double lat, lon;
	char country[3];
	char continent[3];
	/* The point as a unit vector (geo_unit_vector), computed at load
	 * time so the query path ranks by dot product, without trigonometry. */
	double v[3];
};

struct geo_db;                                   /* opaque, immutable */

/* Counters for logs and metrics. */
struct geo_stats {
	size_t records;      /* MMDB data records walked (incl. repeats) */
	size_t ranges;       /* ranges in the table (located or not) */
	size_t networks;     /* ranges that have a location */
	size_t locations;    /* distinct locations */
	size_t centroids;    /* locations taken from a country centroid */
	size_t unlocated;    /* records without a usable location or country */
	size_t bytes;        /* memory held by the table */
};

/* Loads the MMDB file at path (load time only; may take a second or two on
 * a full city database). On success *out is a new table the caller owns
 * (geo_free) and 0 is returned. On failure *out is NULL and the result is
 * -ENOENT, -EACCES or another -errno when the file cannot be opened,
 * -EINVAL when it is not a regular file, not an MMDB, or corrupt, or
 * -ENOMEM; "PATH: why" goes into err (errlen bytes, may be 0). Never exits;
 * nothing is kept open or mapped after it returns.
 *
 * Records: location.latitude/longitude, country.iso_code (falling back to
 * registered_country.iso_code), continent.code. A record without coordinates
 * gets its country's centroid (geo_country_centroid), failing that its
 * continent's; a record with none of these is "not found".
 *
 * IPv4 data (the MMDB's IPv4 subtree, ::/96 in an IPv6 tree) is placed at
 * ::ffff:0:0/96, whether or not the database aliases it there. Where the
 * database aliases 2002::/16 (6to4), 2001::/32 (Teredo) or holds IPv4 at
 * ::/96, geo_lookup() maps those addresses to the IPv4 data, as
 * libmaxminddb does. */
int geo_load(const char *path, struct geo_db **out, char *err, size_t errlen);

/* Query path: never allocates, no locks. Returns the location of a (borrowed:
 * valid until geo_free(db)), or NULL if the database has none for it. In
 * *plen (if not NULL) goes the length of the widest prefix containing a in
 * which every address gets the same result (same location, or also not
 * found): the honest ECS scope, in the 128-bit space. For v4-mapped
 * addresses it is at least 96. */
const struct geo_loc *geo_lookup(const struct geo_db *db,
				 const struct in6_addr *a, unsigned *plen);

/* Query path: warms the cache for geo_lookup(db, a): stage 0 then 1, each
 * over a whole batch of addresses, so that the misses of a batch overlap
 * instead of following one another. */
void geo_prefetch(const struct geo_db *db, const struct in6_addr *a,
		  int stage);
/* Query path: warms the cache for reading *loc. */
void geo_prefetch_loc(const struct geo_loc *loc);

/* Frees the table; NULL is fine. Pointers from geo_lookup() die with it. */
void geo_free(struct geo_db *db);

/* Number of located networks (merged ranges with a location). */
size_t geo_count(const struct geo_db *db);
/* Fills *st. */
void geo_stats(const struct geo_db *db, struct geo_stats *st);
/* Locations are numbered 0..geo_locations()-1, so a snapshot can
 * precompute per location (e.g. endpoints sorted by distance) and index it
 * with geo_loc_id() on the query path. */
size_t geo_locations(const struct geo_db *db);
/* Location number id (borrowed), or NULL if id >= geo_locations(). */
const struct geo_loc *geo_location(const struct geo_db *db, uint32_t id);
/* Query path: the number of a location returned by geo_lookup() or
 * geo_location() of the same db. */
uint32_t geo_loc_id(const struct geo_db *db, const struct geo_loc *loc);

/* Metadata: the database_type string (borrowed, never NULL) and the build
 * epoch (seconds since 1970) of the loaded file. */
const char *geo_db_type(const struct geo_db *db);
uint64_t geo_build_epoch(const struct geo_db *db);

/* The point at lat/lon (degrees) as a unit vector on the sphere. The dot
 * product of two such vectors is the cosine of the angle between them:
 * larger is nearer, and geo_dot_km() turns it into kilometres. Any
 * thread. */
void geo_unit_vector(double lat, double lon, double v[3]);
/* Great-circle distance in km for a dot product of two unit vectors. */
double geo_dot_km(double dot);

/* Great-circle distance in km between two points given in degrees
 * (haversine, mean Earth radius 6371.0088 km). Any thread. */
double geo_distance_km(double lat1, double lon1, double lat2, double lon2);

/* Approximate geographic centre of the country with ISO 3166-1 alpha-2 code
 * cc (upper or lower case; also MaxMind's XK). Fills *lat, *lon and
 * continent (3 bytes, may be NULL) and returns 0, or -ENOENT for an unknown
 * code, -EINVAL for a malformed one. Any thread. */
int geo_country_centroid(const char *cc, double *lat, double *lon,
			 char continent[3]);

/* Approximate centre of a continent by MaxMind code (AF AN AS EU NA OC SA).
 * Returns 0 or -ENOENT. Any thread. */
int geo_continent_centroid(const char *code, double *lat, double *lon);

/* A configured location (dnsd's default-location, gslbctl explain's):
 * "LAT,LON" in degrees, or an ISO country code (any case), placed at its
 * centroid with its country and continent. Fills *loc, unit vector
 * included. Returns 0 or -EINVAL. Any thread. */
int geo_parse_location(const char *s, struct geo_loc *loc);


#endif
