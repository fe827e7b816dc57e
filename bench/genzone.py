#!/usr/bin/python3
"""bench/genzone.py - zones and query files for bench/run.sh.

  genzone.py mix ZONEFILE QUERYFILE [HOSTS] [QUERIES]
      zone bench.test. with HOSTS hosts (default 10000):
        host<i>  A (every host) and AAAA (even i)
        mx<i>    MX 10 host<i>    (answer + additional A/AAAA of the target)
        alias<i> CNAME host<i>    (queried with type A: chain inside the zone)
      and a query file (dnsperf format) of QUERIES lines (default 100000),
      shuffled with a fixed seed, mixing
        30% A, 15% AAAA, 15% MX, 15% CNAME (A via alias<i>),
        15% NXDOMAIN (nx<i>, absent), 10% NODATA (TXT at host<i>).
      Every server gets the same names, so every server answers the same set.

  genzone.py big ZONEFILE RECORDS LASTNAMEFILE
      zone mem.test. with RECORDS records (default 1000000): half the records
      are names with an A each, then AAAA for 1 in 2 of them, TXT and MX until
      RECORDS is reached; writes the last owner name (the probe name for the
      load time) to LASTNAMEFILE.

Deterministic: the same arguments give the same files.
"""
import random
import sys

HEAD = """$ORIGIN {o}
$TTL 3600
@ 3600 IN SOA ns1.{o} hostmaster.{o} 2024010101 7200 3600 1209600 300
@ 3600 IN NS ns1.{o}
@ 3600 IN NS ns2.{o}
ns1 3600 IN A 192.0.2.1
ns2 3600 IN A 192.0.2.2
"""


def v4(i):
    return "10.%d.%d.%d" % ((i >> 16) & 255, (i >> 8) & 255, i & 255)


def v6(i):
    return "2001:db8::%x:%x" % ((i >> 16) & 0xffff, i & 0xffff)


def mix(zonefile, queryfile, hosts=10000, queries=100000):
    origin = "bench.test."
    out = [HEAD.format(o=origin)]
    for i in range(hosts):
        out.append("host%d IN A %s\n" % (i, v4(i)))
        if i % 2 == 0:
            out.append("host%d IN AAAA %s\n" % (i, v6(i)))
        out.append("mx%d IN MX 10 host%d\n" % (i, i))
        out.append("alias%d IN CNAME host%d\n" % (i, i))
    with open(zonefile, "w") as f:
        f.write("".join(out))

    rnd = random.Random(20240101)
    kinds = ([("host", "A")] * 30 + [("host6", "AAAA")] * 15 +
             [("mx", "MX")] * 15 + [("alias", "A")] * 15 +
             [("nx", "A")] * 15 + [("host", "TXT")] * 10)
    lines = []
    for _ in range(queries):
        prefix, qtype = rnd.choice(kinds)
        i = rnd.randrange(hosts)
        if prefix == "host6":
            prefix, i = "host", i - i % 2      # AAAA exists at even hosts
        lines.append("%s%d.%s %s\n" % (prefix, i, origin, qtype))
    with open(queryfile, "w") as f:
        f.write("".join(lines))


def big(zonefile, records=1000000, lastfile=None):
    origin = "mem.test."
    names = records // 2
    with open(zonefile, "w") as f:
        f.write(HEAD.format(o=origin))
        left = records - 5          # SOA, 2 NS, 2 A above
        buf = []
        for i in range(names):
            buf.append("n%d IN A %s\n" % (i, v4(i)))
            if len(buf) >= 65536:
                f.write("".join(buf))
                buf = []
        left -= names
        kinds = ["AAAA", "TXT", "AAAA", "MX"]
        k = 0
        while left > 0:
            i = k % names
            t = kinds[(k // names) % len(kinds)] if k >= names else \
                kinds[k % len(kinds)]
            if t == "AAAA":
                buf.append("n%d IN AAAA %s\n" % (i, v6(i)))
            elif t == "TXT":
                buf.append('n%d IN TXT "v=bench %d"\n' % (i, i))
            else:
                buf.append("n%d IN MX 10 n%d\n" % (i, (i + 1) % names))
            k += 1
            left -= 1
            if len(buf) >= 65536:
                f.write("".join(buf))
                buf = []
        f.write("".join(buf))
    if lastfile:
        with open(lastfile, "w") as f:
            f.write("n%d.%s\n" % (names - 1, origin))


def main(argv):
    try:
        if len(argv) >= 4 and argv[1] == "mix":
            mix(argv[2], argv[3], *[int(a) for a in argv[4:6]])
            return 0
        if len(argv) >= 3 and argv[1] == "big":
            n = int(argv[3]) if len(argv) > 3 else 1000000
            if n < 10:
                raise ValueError("RECORDS must be at least 10")
            big(argv[2], n, argv[4] if len(argv) > 4 else None)
            return 0
    except (ValueError, OSError) as e:
        sys.stderr.write("genzone: %s\n" % e)
        return 2
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
