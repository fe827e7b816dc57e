/* geo/centroids.c - country and continent centroids, for databases and
 * records without coordinates (GeoLite2-Country, country-level rows).
 *
 * Origin: written for this project from general geographic knowledge; the
 * values are approximate geographic centres (within about a degree, good
 * enough to rank data centres by distance), not population centres.
 * Continents follow MaxMind's assignment (RU is EU, TR is AS). All 249
 * ISO 3166-1 alpha-2 codes plus XK (Kosovo, used by MaxMind).
 * Pure lookups in constant tables: any thread. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "geo/geo.h"

struct centroid {
	char code[3];
	double lat, lon;
	char continent[3];
};

/* Sorted by code: bsearch. */
static const struct centroid countries[] = {
	{ "AD",   42.55,     1.60, "EU" },
	{ "AE",   23.42,    53.85, "AS" },
	{ "AF",   33.94,    67.71, "AS" },
	{ "AG",   17.06,   -61.80, "NA" },
	{ "AI",   18.22,   -63.07, "NA" },
	{ "AL",   41.15,    20.17, "EU" },
	{ "AM",   40.07,    45.04, "AS" },
	{ "AO",  -11.20,    17.87, "AF" },
	{ "AQ",  -75.25,    -0.07, "AN" },
	{ "AR",  -38.42,   -63.62, "SA" },
	{ "AS",  -14.27,  -170.13, "OC" },
	{ "AT",   47.52,    14.55, "EU" },
	{ "AU",  -25.27,   133.78, "OC" },
	{ "AW",   12.52,   -69.97, "NA" },
	{ "AX",   60.18,    19.92, "EU" },
	{ "AZ",   40.14,    47.58, "AS" },
	{ "BA",   43.92,    17.68, "EU" },
	{ "BB",   13.19,   -59.54, "NA" },
	{ "BD",   23.68,    90.36, "AS" },
	{ "BE",   50.50,     4.47, "EU" },
	{ "BF",   12.24,    -1.56, "AF" },
	{ "BG",   42.73,    25.49, "EU" },
	{ "BH",   25.93,    50.64, "AS" },
	{ "BI",   -3.37,    29.92, "AF" },
	{ "BJ",    9.31,     2.32, "AF" },
	{ "BL",   17.90,   -62.83, "NA" },
	{ "BM",   32.32,   -64.76, "NA" },
	{ "BN",    4.54,   114.73, "AS" },
	{ "BO",  -16.29,   -63.59, "SA" },
	{ "BQ",   12.18,   -68.24, "NA" },
	{ "BR",  -14.24,   -51.93, "SA" },
	{ "BS",   25.03,   -77.40, "NA" },
	{ "BT",   27.51,    90.43, "AS" },
	{ "BV",  -54.42,     3.41, "AN" },
	{ "BW",  -22.33,    24.68, "AF" },
	{ "BY",   53.71,    27.95, "EU" },
	{ "BZ",   17.19,   -88.50, "NA" },
	{ "CA",   56.13,  -106.35, "NA" },
	{ "CC",  -12.16,    96.87, "AS" },
	{ "CD",   -4.04,    21.76, "AF" },
	{ "CF",    6.61,    20.94, "AF" },
	{ "CG",   -0.23,    15.83, "AF" },
	{ "CH",   46.82,     8.23, "EU" },
	{ "CI",    7.54,    -5.55, "AF" },
	{ "CK",  -21.24,  -159.78, "OC" },
	{ "CL",  -35.68,   -71.54, "SA" },
	{ "CM",    7.37,    12.35, "AF" },
	{ "CN",   35.86,   104.20, "AS" },
	{ "CO",    4.57,   -74.30, "SA" },
	{ "CR",    9.75,   -83.75, "NA" },
	{ "CU",   21.52,   -77.78, "NA" },
	{ "CV",   16.00,   -24.01, "AF" },
	{ "CW",   12.17,   -68.99, "NA" },
	{ "CX",  -10.45,   105.69, "AS" },
	{ "CY",   35.13,    33.43, "EU" },
	{ "CZ",   49.82,    15.47, "EU" },
	{ "DE",   51.17,    10.45, "EU" },
	{ "DJ",   11.83,    42.59, "AF" },
	{ "DK",   56.26,     9.50, "EU" },
	{ "DM",   15.41,   -61.37, "NA" },
	{ "DO",   18.74,   -70.16, "NA" },
	{ "DZ",   28.03,     1.66, "AF" },
	{ "EC",   -1.83,   -78.18, "SA" },
	{ "EE",   58.60,    25.01, "EU" },
	{ "EG",   26.82,    30.80, "AF" },
	{ "EH",   24.22,   -12.89, "AF" },
	{ "ER",   15.18,    39.78, "AF" },
	{ "ES",   40.46,    -3.75, "EU" },
	{ "ET",    9.15,    40.49, "AF" },
	{ "FI",   61.92,    25.75, "EU" },
	{ "FJ",  -16.58,   179.41, "OC" },
	{ "FK",  -51.80,   -59.52, "SA" },
	{ "FM",    7.43,   150.55, "OC" },
	{ "FO",   61.89,    -6.91, "EU" },
	{ "FR",   46.23,     2.21, "EU" },
	{ "GA",   -0.80,    11.61, "AF" },
	{ "GB",   55.38,    -3.44, "EU" },
	{ "GD",   12.26,   -61.60, "NA" },
	{ "GE",   42.32,    43.36, "AS" },
	{ "GF",    3.93,   -53.13, "SA" },
	{ "GG",   49.47,    -2.59, "EU" },
	{ "GH",    7.95,    -1.02, "AF" },
	{ "GI",   36.14,    -5.35, "EU" },
	{ "GL",   71.71,   -42.60, "NA" },
	{ "GM",   13.44,   -15.31, "AF" },
	{ "GN",    9.95,    -9.70, "AF" },
	{ "GP",   16.25,   -61.58, "NA" },
	{ "GQ",    1.65,    10.27, "AF" },
	{ "GR",   39.07,    21.82, "EU" },
	{ "GS",  -54.43,   -36.59, "AN" },
	{ "GT",   15.78,   -90.23, "NA" },
	{ "GU",   13.44,   144.79, "OC" },
	{ "GW",   11.80,   -15.18, "AF" },
	{ "GY",    4.86,   -58.93, "SA" },
	{ "HK",   22.40,   114.11, "AS" },
	{ "HM",  -53.08,    73.50, "AN" },
	{ "HN",   15.20,   -86.24, "NA" },
	{ "HR",   45.10,    15.20, "EU" },
	{ "HT",   18.97,   -72.29, "NA" },
	{ "HU",   47.16,    19.50, "EU" },
	{ "ID",   -0.79,   113.92, "AS" },
	{ "IE",   53.41,    -8.24, "EU" },
	{ "IL",   31.05,    34.85, "AS" },
	{ "IM",   54.24,    -4.55, "EU" },
	{ "IN",   20.59,    78.96, "AS" },
	{ "IO",   -6.34,    71.88, "AS" },
	{ "IQ",   33.22,    43.68, "AS" },
	{ "IR",   32.43,    53.69, "AS" },
	{ "IS",   64.96,   -19.02, "EU" },
	{ "IT",   41.87,    12.57, "EU" },
	{ "JE",   49.21,    -2.13, "EU" },
	{ "JM",   18.11,   -77.30, "NA" },
	{ "JO",   30.59,    36.24, "AS" },
	{ "JP",   36.20,   138.25, "AS" },
	{ "KE",   -0.02,    37.91, "AF" },
	{ "KG",   41.20,    74.77, "AS" },
	{ "KH",   12.57,   104.99, "AS" },
	{ "KI",    1.87,  -157.36, "OC" },
	{ "KM",  -11.88,    43.87, "AF" },
	{ "KN",   17.36,   -62.78, "NA" },
	{ "KP",   40.34,   127.51, "AS" },
	{ "KR",   35.91,   127.77, "AS" },
	{ "KW",   29.31,    47.48, "AS" },
	{ "KY",   19.51,   -80.57, "NA" },
	{ "KZ",   48.02,    66.92, "AS" },
	{ "LA",   19.86,   102.50, "AS" },
	{ "LB",   33.85,    35.86, "AS" },
	{ "LC",   13.91,   -60.98, "NA" },
	{ "LI",   47.17,     9.56, "EU" },
	{ "LK",    7.87,    80.77, "AS" },
	{ "LR",    6.43,    -9.43, "AF" },
	{ "LS",  -29.61,    28.23, "AF" },
	{ "LT",   55.17,    23.88, "EU" },
	{ "LU",   49.82,     6.13, "EU" },
	{ "LV",   56.88,    24.60, "EU" },
	{ "LY",   26.34,    17.23, "AF" },
	{ "MA",   31.79,    -7.09, "AF" },
	{ "MC",   43.75,     7.41, "EU" },
	{ "MD",   47.41,    28.37, "EU" },
	{ "ME",   42.71,    19.37, "EU" },
	{ "MF",   18.08,   -63.05, "NA" },
	{ "MG",  -18.77,    46.87, "AF" },
	{ "MH",    7.13,   171.18, "OC" },
	{ "MK",   41.61,    21.75, "EU" },
	{ "ML",   17.57,    -4.00, "AF" },
	{ "MM",   21.91,    95.96, "AS" },
	{ "MN",   46.86,   103.85, "AS" },
	{ "MO",   22.20,   113.54, "AS" },
	{ "MP",   17.33,   145.38, "OC" },
	{ "MQ",   14.64,   -61.02, "NA" },
	{ "MR",   21.01,   -10.94, "AF" },
	{ "MS",   16.74,   -62.19, "NA" },
	{ "MT",   35.94,    14.38, "EU" },
	{ "MU",  -20.35,    57.55, "AF" },
	{ "MV",    3.20,    73.22, "AS" },
	{ "MW",  -13.25,    34.30, "AF" },
	{ "MX",   23.63,  -102.55, "NA" },
	{ "MY",    4.21,   101.98, "AS" },
	{ "MZ",  -18.67,    35.53, "AF" },
	{ "NA",  -22.96,    18.49, "AF" },
	{ "NC",  -20.90,   165.62, "OC" },
	{ "NE",   17.61,     8.08, "AF" },
	{ "NF",  -29.04,   167.95, "OC" },
	{ "NG",    9.08,     8.68, "AF" },
	{ "NI",   12.87,   -85.21, "NA" },
	{ "NL",   52.13,     5.29, "EU" },
	{ "NO",   60.47,     8.47, "EU" },
	{ "NP",   28.39,    84.12, "AS" },
	{ "NR",   -0.52,   166.93, "OC" },
	{ "NU",  -19.05,  -169.87, "OC" },
	{ "NZ",  -40.90,   174.89, "OC" },
	{ "OM",   21.51,    55.92, "AS" },
	{ "PA",    8.54,   -80.78, "NA" },
	{ "PE",   -9.19,   -75.02, "SA" },
	{ "PF",  -17.68,  -149.41, "OC" },
	{ "PG",   -6.31,   143.96, "OC" },
	{ "PH",   12.88,   121.77, "AS" },
	{ "PK",   30.38,    69.35, "AS" },
	{ "PL",   51.92,    19.15, "EU" },
	{ "PM",   46.94,   -56.27, "NA" },
	{ "PN",  -24.70,  -127.44, "OC" },
	{ "PR",   18.22,   -66.59, "NA" },
	{ "PS",   31.95,    35.23, "AS" },
	{ "PT",   39.40,    -8.22, "EU" },
	{ "PW",    7.51,   134.58, "OC" },
	{ "PY",  -23.44,   -58.44, "SA" },
	{ "QA",   25.35,    51.18, "AS" },
	{ "RE",  -21.12,    55.54, "AF" },
	{ "RO",   45.94,    24.97, "EU" },
	{ "RS",   44.02,    21.01, "EU" },
	{ "RU",   61.52,   105.32, "EU" },
	{ "RW",   -1.94,    29.87, "AF" },
	{ "SA",   23.89,    45.08, "AS" },
	{ "SB",   -9.65,   160.16, "OC" },
	{ "SC",   -4.68,    55.49, "AF" },
	{ "SD",   12.86,    30.22, "AF" },
	{ "SE",   60.13,    18.64, "EU" },
	{ "SG",    1.35,   103.82, "AS" },
	{ "SH",  -15.96,    -5.71, "AF" },
	{ "SI",   46.15,    14.99, "EU" },
	{ "SJ",   77.55,    23.67, "EU" },
	{ "SK",   48.67,    19.70, "EU" },
	{ "SL",    8.46,   -11.78, "AF" },
	{ "SM",   43.94,    12.46, "EU" },
	{ "SN",   14.50,   -14.45, "AF" },
	{ "SO",    5.15,    46.20, "AF" },
	{ "SR",    3.92,   -56.03, "SA" },
	{ "SS",    6.88,    31.31, "AF" },
	{ "ST",    0.19,     6.61, "AF" },
	{ "SV",   13.79,   -88.90, "NA" },
	{ "SX",   18.04,   -63.07, "NA" },
	{ "SY",   34.80,    39.00, "AS" },
	{ "SZ",  -26.52,    31.47, "AF" },
	{ "TC",   21.69,   -71.80, "NA" },
	{ "TD",   15.45,    18.73, "AF" },
	{ "TF",  -49.28,    69.35, "AN" },
	{ "TG",    8.62,     0.82, "AF" },
	{ "TH",   15.87,   100.99, "AS" },
	{ "TJ",   38.86,    71.28, "AS" },
	{ "TK",   -8.97,  -171.86, "OC" },
	{ "TL",   -8.87,   125.73, "AS" },
	{ "TM",   38.97,    59.56, "AS" },
	{ "TN",   33.89,     9.54, "AF" },
	{ "TO",  -21.18,  -175.20, "OC" },
	{ "TR",   38.96,    35.24, "AS" },
	{ "TT",   10.69,   -61.22, "NA" },
	{ "TV",   -7.11,   177.65, "OC" },
	{ "TW",   23.70,   120.96, "AS" },
	{ "TZ",   -6.37,    34.89, "AF" },
	{ "UA",   48.38,    31.17, "EU" },
	{ "UG",    1.37,    32.29, "AF" },
	{ "UM",   19.28,   166.65, "OC" },
	{ "US",   37.09,   -95.71, "NA" },
	{ "UY",  -32.52,   -55.77, "SA" },
	{ "UZ",   41.38,    64.59, "AS" },
	{ "VA",   41.90,    12.45, "EU" },
	{ "VC",   12.98,   -61.29, "NA" },
	{ "VE",    6.42,   -66.59, "SA" },
	{ "VG",   18.42,   -64.64, "NA" },
	{ "VI",   18.34,   -64.90, "NA" },
	{ "VN",   14.06,   108.28, "AS" },
	{ "VU",  -15.38,   166.96, "OC" },
	{ "WF",  -13.77,  -177.16, "OC" },
	{ "WS",  -13.76,  -172.10, "OC" },
	{ "XK",   42.60,    20.90, "EU" },
	{ "YE",   15.55,    48.52, "AS" },
	{ "YT",  -12.83,    45.17, "AF" },
	{ "ZA",  -30.56,    22.94, "AF" },
	{ "ZM",  -13.13,    27.85, "AF" },
	{ "ZW",  -19.02,    29.15, "AF" },
};

static const struct centroid continents[] = {
	{ "AF",   1.50,   17.00, "AF" },
	{ "AN", -80.00,    0.00, "AN" },
	{ "AS",  34.00,  100.00, "AS" },
	{ "EU",  50.00,   15.00, "EU" },
	{ "NA",  40.00, -100.00, "NA" },
	{ "OC", -22.00,  140.00, "OC" },
	{ "SA", -15.00,  -60.00, "SA" },
};

static int cmp_code(const void *key, const void *elem)
{
	return strcmp(key, ((const struct centroid *)elem)->code);
}

/* Upper-cased two-letter code, or -EINVAL. */
static int norm_code(const char *s, char out[3])
{
	if (s == NULL)
		return -EINVAL;
	for (int i = 0; i < 2; i++) {
		char c = s[i];

		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		if (c < 'A' || c > 'Z')
			return -EINVAL;
		out[i] = c;
	}
	out[2] = '\0';
	return s[2] == '\0' ? 0 : -EINVAL;
}

int geo_country_centroid(const char *cc, double *lat, double *lon,
			 char continent[3])
{
	const struct centroid *c;
	char code[3];

	if (norm_code(cc, code) < 0)
		return -EINVAL;
	c = bsearch(code, countries, sizeof(countries) / sizeof(countries[0]),
		    sizeof(countries[0]), cmp_code);
	if (c == NULL)
		return -ENOENT;
	*lat = c->lat;
	*lon = c->lon;
	if (continent)
		memcpy(continent, c->continent, 3);
	return 0;
}

int geo_continent_centroid(const char *code, double *lat, double *lon)
{
	char k[3];

	if (norm_code(code, k) < 0)
		return -ENOENT;
	for (size_t i = 0; i < sizeof(continents) / sizeof(continents[0]); i++) {
		if (strcmp(continents[i].code, k) == 0) {
			*lat = continents[i].lat;
			*lon = continents[i].lon;
			return 0;
		}
	}
	return -ENOENT;
}

int geo_parse_location(const char *s, struct geo_loc *loc)
{
	char *end;

	memset(loc, 0, sizeof(*loc));
	if (strlen(s) == 2 &&
	    geo_country_centroid(s, &loc->lat, &loc->lon, loc->continent) == 0) {
		loc->country[0] = (char)(s[0] & ~0x20);
		loc->country[1] = (char)(s[1] & ~0x20);
		geo_unit_vector(loc->lat, loc->lon, loc->v);
		return 0;
	}
	loc->lat = strtod(s, &end);
	if (end != s && *end == ',') {
		const char *p = end + 1;

		loc->lon = strtod(p, &end);
		if (end != p && !*end && loc->lat >= -90 && loc->lat <= 90 &&
		    loc->lon >= -180 && loc->lon <= 180) {
			geo_unit_vector(loc->lat, loc->lon, loc->v);
			return 0;
		}
	}
	memset(loc, 0, sizeof(*loc));
	return -EINVAL;
}
