/* geo/dist.c - great-circle distance (haversine). Pure function: any
 * thread, load or query time. */
#include <math.h>

#include "geo/geo.h"

#define EARTH_RADIUS_KM 6371.0088      /* IUGG mean radius */

double geo_distance_km(double lat1, double lon1, double lat2, double lon2)
{
	const double rad = M_PI / 180.0;
	double dlat = (lat2 - lat1) * rad, dlon = (lon2 - lon1) * rad;
	double s1 = sin(dlat / 2), s2 = sin(dlon / 2);
	double h = s1 * s1 + cos(lat1 * rad) * cos(lat2 * rad) * s2 * s2;

	/* Rounding can push h a hair above 1 for antipodal points. */
	if (h > 1.0)
		h = 1.0;
	return 2.0 * EARTH_RADIUS_KM * asin(sqrt(h));
}

void geo_unit_vector(double lat, double lon, double v[3])
{
	const double rad = M_PI / 180.0;
	double cl = cos(lat * rad);

	v[0] = cl * cos(lon * rad);
	v[1] = cl * sin(lon * rad);
	v[2] = sin(lat * rad);
}

double geo_dot_km(double dot)
{
	/* Rounding can push the dot product a hair outside [-1, 1]. For
	 * nearby points acos() loses precision (1e-8 rad ~ 0.06 km), which is
	 * far below what GeoIP locations are worth. */
	if (dot > 1.0)
		dot = 1.0;
	else if (dot < -1.0)
		dot = -1.0;
	return EARTH_RADIUS_KM * acos(dot);
}
