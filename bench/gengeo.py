#!/usr/bin/python3
"""bench/gengeo.py - deterministic inputs of the geo+ECS bench (bench_geo).

  gengeo.py OUTDIR [NETWORKS [QUERIES]]

Writes into OUTDIR:
  geo.tsv            NETWORKS networks (default 30,000; about 3/4 IPv4 in
                     /16../24 blocks, 1/4 IPv6 in /32../48 blocks) with
                     coordinates around 48 cities on six continents, for
                     tests/tools/mkmmdb.pl (NETWORK LAT LON CC CONTINENT CITY)
  q-geo.txt          QUERIES (default 100,000) queries "geo.geo.test. A
                     SUBNET/LEN" for loadgen: an address drawn from a random
                     network, as a resolver sends it (IPv4 /24, IPv6 /56; never
                     wider than the network, so it has one location)
  q-static.txt       the same queries for the static name sta.geo.test.
                     (same length, same ECS options: only the answer differs)
  q-sample.txt       the first 2,000 geo queries (answer comparison)
  dnsd.zone          zone geo.test. for dnsd (sta is static; geo comes from
                     the store)
  gdnsd.zone         the same zone for gdnsd, with geo as a DYNA geoip record
  dcs.tsv            the three data centres: name, address, lat, lon

Everything comes from a fixed random seed: the same arguments give the same
files.  No third-party data: the city list below is approximate coordinates.
"""
import ipaddress
import os
import random
import sys

# name, lat, lon, country, continent (approximate city centres).
CITIES = [
    ("Frankfurt", 50.11, 8.68, "DE", "EU"), ("London", 51.51, -0.13, "GB", "EU"),
    ("Paris", 48.86, 2.35, "FR", "EU"), ("Madrid", 40.42, -3.70, "ES", "EU"),
    ("Rome", 41.90, 12.50, "IT", "EU"), ("Stockholm", 59.33, 18.07, "SE", "EU"),
    ("Warsaw", 52.23, 21.01, "PL", "EU"), ("Athens", 37.98, 23.73, "GR", "EU"),
    ("Dublin", 53.35, -6.26, "IE", "EU"), ("Helsinki", 60.17, 24.94, "FI", "EU"),
    ("Ashburn", 39.04, -77.49, "US", "NA"), ("New York", 40.71, -74.01, "US", "NA"),
    ("Chicago", 41.88, -87.63, "US", "NA"), ("Dallas", 32.78, -96.80, "US", "NA"),
    ("Los Angeles", 34.05, -118.24, "US", "NA"), ("Seattle", 47.61, -122.33, "US", "NA"),
    ("Toronto", 43.65, -79.38, "CA", "NA"), ("Mexico City", 19.43, -99.13, "MX", "NA"),
    ("Miami", 25.76, -80.19, "US", "NA"), ("Vancouver", 49.28, -123.12, "CA", "NA"),
    ("Tokyo", 35.69, 139.69, "JP", "AS"), ("Singapore", 1.35, 103.82, "SG", "AS"),
    ("Mumbai", 19.08, 72.88, "IN", "AS"), ("Seoul", 37.57, 126.98, "KR", "AS"),
    ("Hong Kong", 22.32, 114.17, "HK", "AS"), ("Jakarta", -6.21, 106.85, "ID", "AS"),
    ("Bangkok", 13.76, 100.50, "TH", "AS"), ("Delhi", 28.70, 77.10, "IN", "AS"),
    ("Dubai", 25.20, 55.27, "AE", "AS"), ("Manila", 14.60, 120.98, "PH", "AS"),
    ("Sao Paulo", -23.55, -46.63, "BR", "SA"), ("Buenos Aires", -34.60, -58.38, "AR", "SA"),
    ("Bogota", 4.71, -74.07, "CO", "SA"), ("Lima", -12.05, -77.04, "PE", "SA"),
    ("Santiago", -33.45, -70.67, "CL", "SA"), ("Caracas", 10.48, -66.90, "VE", "SA"),
    ("Sydney", -33.87, 151.21, "AU", "OC"), ("Melbourne", -37.81, 144.96, "AU", "OC"),
    ("Auckland", -36.85, 174.76, "NZ", "OC"), ("Perth", -31.95, 115.86, "AU", "OC"),
    ("Lagos", 6.52, 3.38, "NG", "AF"), ("Johannesburg", -26.20, 28.05, "ZA", "AF"),
    ("Cairo", 30.04, 31.24, "EG", "AF"), ("Nairobi", -1.29, 36.82, "KE", "AF"),
    ("Casablanca", 33.57, -7.59, "MA", "AF"), ("Accra", 5.60, -0.19, "GH", "AF"),
    ("Kinshasa", -4.44, 15.27, "CD", "AF"), ("Addis Ababa", 8.98, 38.76, "ET", "AF"),
]

# The three data centres of the geo name (dnsd endpoints, gdnsd datacenters).
DCS = [("eu", "192.0.2.1", 50.11, 8.68), ("us", "192.0.2.2", 39.04, -77.49),
       ("ap", "192.0.2.3", 1.35, 103.82)]

# First octets never used for IPv4 blocks: special-purpose and private space.
V4_SKIP = {0, 10, 100, 127, 169, 172, 192, 198, 203}


def split(rng, net, maxlen, out):
    """Leaves of a random binary split of net, none longer than maxlen."""
    if net.prefixlen >= maxlen or (net.prefixlen > net.max_prefixlen // 8
                                   and rng.random() < 0.45):
        out.append(net)
        return
    for half in net.subnets(prefixlen_diff=1):
        split(rng, half, maxlen, out)


def networks(rng, count):
    v4_target = count * 3 // 4
    nets, seen = [], set()
    while len(nets) < v4_target:
        a = rng.choice([x for x in range(1, 224) if x not in V4_SKIP])
        b = rng.randrange(256)
        if (a, b) in seen:
            continue
        seen.add((a, b))
        leaves = []
        split(rng, ipaddress.ip_network("%d.%d.0.0/16" % (a, b)), 24, leaves)
        nets.extend(leaves)
    nets = nets[:v4_target]
    seen = set()
    while len(nets) < count:
        # 2400::/8 .. 2c00::/8 style global unicast /32s.
        hi = rng.randrange(0x2400, 0x2c00)
        lo = rng.randrange(0x10000)
        if (hi, lo) in seen:
            continue
        seen.add((hi, lo))
        leaves = []
        split(rng, ipaddress.ip_network("%x:%x::/32" % (hi, lo)), 48, leaves)
        nets.extend(leaves[:count - len(nets)])
    return nets


def main(argv):
    if len(argv) < 2 or len(argv) > 4:
        sys.stderr.write(__doc__)
        return 2
    out = argv[1]
    nnet = int(argv[2]) if len(argv) > 2 else 30000
    nq = int(argv[3]) if len(argv) > 3 else 100000
    if nnet < 100 or nq < 1:
        sys.stderr.write("gengeo.py: need at least 100 networks and 1 query\n")
        return 2
    rng = random.Random(20261122)
    os.makedirs(out, exist_ok=True)
    nets = networks(rng, nnet)
    with open(os.path.join(out, "geo.tsv"), "w") as f:
        f.write("# bench/gengeo.py: %d generated networks (seed 20261122)\n"
                % len(nets))
        for n in nets:
            name, lat, lon, cc, cont = rng.choice(CITIES)
            lat = max(-89.0, min(89.0, lat + rng.uniform(-3, 3)))
            lon = max(-179.0, min(179.0, lon + rng.uniform(-3, 3)))
            f.write("%s\t%.4f\t%.4f\t%s\t%s\t%s\n"
                    % (n, lat, lon, cc, cont, name))
    with open(os.path.join(out, "q-geo.txt"), "w") as fg, \
            open(os.path.join(out, "q-static.txt"), "w") as fs, \
            open(os.path.join(out, "q-sample.txt"), "w") as fx:
        for i in range(nq):
            n = rng.choice(nets)
            addr = n.network_address + rng.randrange(n.num_addresses)
            plen = 24 if n.version == 4 else 56
            sub = ipaddress.ip_network("%s/%d" % (addr, plen), strict=False)
            ecs = "%s/%d" % (sub.network_address, plen)
            fg.write("geo.geo.test. A %s\n" % ecs)
            fs.write("sta.geo.test. A %s\n" % ecs)
            if i < 2000:
                fx.write("geo.geo.test. A %s\n" % ecs)
    head = ("$ORIGIN geo.test.\n$TTL 300\n"
            "@ IN SOA ns1.geo.test. hostmaster.geo.test. 1 3600 600 1209600 30\n"
            "@ IN NS ns1\nns1 IN A 127.0.0.1\n"
            "sta 30 IN A 192.0.2.100\n")
    with open(os.path.join(out, "dnsd.zone"), "w") as f:
        f.write(head)
    with open(os.path.join(out, "gdnsd.zone"), "w") as f:
        f.write(head + "geo 30 DYNA geoip!geores\n")
    with open(os.path.join(out, "dcs.tsv"), "w") as f:
        for dc in DCS:
            f.write("%s\t%s\t%s\t%s\n" % dc)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
