#!/usr/bin/python3
"""GeoIP proximity through DNS: a test MMDB generated now from
tests/fixtures/geo/networks.tsv, clients given by ECS (RFC 7871) and by
different loopback source addresses, honest ECS scopes, rules over
distance, failover to the next nearest, invalid ECS."""
import os
import socket
import struct

import dns.edns
import dns.message
import dns.query
import dns.rcode

from gslbtest import (Dnsd, ZONES, answer_texts, ecs_query, gslbctl, make_mmdb,
                      make_query, run, test, tmpdir, wait_for)

ZONE_ARGS = ["--zone", os.path.join(ZONES, "example.com.zone"),
             "--zone", os.path.join(ZONES, "gslb.example.com.zone")]
GEO = "geo.gslb.example.com."
EU, US, AP = "192.0.2.1", "192.0.2.2", "192.0.2.3"

_env = {}


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def setup():
    """One store and one dnsd for the read-only cases."""
    if _env.get("d") and _env["d"].alive():
        return _env["db"], _env["d"]
    db = os.path.join(tmpdir(), "geo.db")
    gslbctl(db, "init")
    gslbctl(db, "service", "add", GEO, "--policy", "geo")
    gslbctl(db, "endpoint", "add", GEO, EU, "--region", "eu", "--lat", "50.11", "--lon", "8.68")
    gslbctl(db, "endpoint", "add", GEO, US, "--region", "us", "--lat", "39.04", "--lon", "-77.49")
    gslbctl(db, "endpoint", "add", GEO, AP, "--region", "ap", "--lat", "35.69", "--lon", "139.69")
    mmdb = make_mmdb()
    # trust ECS prefixes up to the full address here, to see narrow
    # networks and rules; the default caps are tested on their own
    d = Dnsd(ZONE_ARGS + ["--db", db, "--geoip", mmdb, "--db-poll-ms", "100",
                          "--ecs-max-v4", "32", "--ecs-max-v6", "128"])
    _env.update(db=db, d=d, mmdb=mmdb)
    return db, d


def ecs(d, subnet, prefix, qname=GEO, qtype="A"):
    """(answers, echoed ECS option) for a query with ECS subnet/prefix."""
    r = d.udp(None, query=ecs_query(qname, qtype, subnet, prefix))
    opts = [o for o in r.options if o.otype == 8]
    expect(len(opts) == 1, "ECS not echoed: %s" % r)
    return answer_texts(r), opts[0]


@test
def nearest_endpoint_by_ecs_with_honest_scope():
    _, d = setup()
    cases = [
        # subnet, prefix, answer, scope
        ("127.0.1.0", 24, EU, 24),          # Frankfurt
        ("127.0.2.0", 24, US, 24),          # Ashburn
        ("127.0.3.0", 24, AP, 24),          # Tokyo
        ("127.0.4.0", 24, AP, 24),          # Singapore: Tokyo is nearest
        ("127.0.8.0", 24, EU, 24),          # Paris
        ("192.0.2.0", 24, EU, 24),          # three records merged into one /24
        ("198.51.100.64", 27, EU, 27),      # Paris /27 inside an Ashburn /24
        ("198.51.100.0", 24, US, 26),       # the /24's first /26 is all Ashburn
        ("203.0.113.128", 25, AP, 25),      # Singapore half
        ("2001:db8:3::", 48, AP, 48),       # IPv6 Tokyo
        ("2001:db8:1::", 48, EU, 48),       # IPv6 Frankfurt
        ("2001:db8:2::", 56, US, 48),       # source longer than the network
    ]
    for subnet, prefix, want, scope in cases:
        got, opt = ecs(d, subnet, prefix)
        expect(got == [want], "%s/%d: %s, want %s" % (subnet, prefix, got, want))
        expect(opt.address == subnet and opt.srclen == prefix,
               "%s/%d: echoed %s/%d" % (subnet, prefix, opt.address, opt.srclen))
        expect(opt.scopelen == scope, "%s/%d: scope %d, want %d" % (subnet, prefix, opt.scopelen, scope))


@test
def a_burst_is_answered_as_one_query_at_a_time():
    """dnsd locates the clients of a whole UDP batch before answering it
    (answer_prepare/answer_prefetch): queries that arrive together, for
    different subnets, static names and no ECS among them, must each get
    what they get alone."""
    _, d = setup()
    subnets = [("127.0.1.0", 24), ("127.0.2.0", 24), ("127.0.3.0", 24),
               ("198.51.100.64", 27), ("198.51.100.0", 24), ("203.0.113.128", 25),
               ("2001:db8:3::", 48), ("2001:db8:1::", 48), ("2001:db8:2::", 56),
               ("0.0.0.0", 0), ("10.1.2.0", 24)]
    queries = []
    for i in range(240):
        subnet, prefix = subnets[i % len(subnets)]
        if i % 7 == 3:
            q = ecs_query("www.example.com.", "A", subnet, prefix)
        elif i % 11 == 5:
            q = make_query(GEO, "A")             # no ECS: the source address
        else:
            q = ecs_query(GEO, "A", subnet, prefix)
        q.id = i
        queries.append(q)

    def key(r):
        return (r.rcode(), answer_texts(r),
                [(o.address, o.srclen, o.scopelen) for o in r.options if o.otype == 8])

    alone = [key(dns.query.udp(q, d.host, port=d.port, timeout=2)) for q in queries]
    for attempt in range(3):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(2)
        s.connect((d.host, d.port))
        for q in queries:                         # all sent before any is read
            s.send(q.to_wire())
        got = {}
        try:
            while len(got) < len(queries):
                r = dns.message.from_wire(s.recv(4096))
                got[r.id] = key(r)
        except socket.timeout:
            pass
        s.close()
        if len(got) == len(queries):
            break
    expect(len(got) == len(queries), "burst: %d of %d answered" % (len(got), len(queries)))
    for i, q in enumerate(queries):
        expect(got[i] == alone[i], "query %d in a burst: %s, alone: %s" % (i, got[i], alone[i]))


@test
def source_prefix_is_capped_and_zero_means_no_ecs():
    db, d = setup()
    capped = Dnsd(ZONE_ARGS + ["--db", db, "--geoip", _env["mmdb"]])   # default /24, /56
    # the Paris /27 is not trusted: the /24 it is in says Ashburn, for /26
    got, opt = ecs(capped, "198.51.100.64", 27)
    expect(got == [US] and opt.srclen == 27 and opt.scopelen == 26, (got, opt.scopelen))
    got, opt = ecs(d, "198.51.100.64", 27)          # trusted up to /32
    expect(got == [EU] and opt.scopelen == 27, (got, opt.scopelen))
    got, opt = ecs(capped, "2001:db8:28::", 64)     # the /56 cap still sees New York
    expect(got == [US] and opt.scopelen == 48, (got, opt.scopelen))
    capped.stop()
    got, opt = ecs(d, "0.0.0.0", 0)
    expect(opt.scopelen == 0, "source 0 must give scope 0, got %d" % opt.scopelen)
    # a static name answers ECS with scope 0
    got, opt = ecs(d, "127.0.1.0", 24, qname="www.example.com.")
    expect(opt.scopelen == 0 and got, (got, opt.scopelen))


@test
def source_address_without_ecs():
    _, d = setup()
    for src, want in [("127.0.1.10", EU), ("127.0.2.10", US), ("127.0.3.10", AP)]:
        q = make_query(GEO, "A")
        r = dns.query.udp(q, d.host, port=d.port, source=src, timeout=2)
        expect(answer_texts(r) == [want], "from %s: %s, want %s" % (src, answer_texts(r), want))
        r = dns.query.tcp(q, d.host, port=d.port, source=src, timeout=2)
        expect(answer_texts(r) == [want], "tcp from %s: %s" % (src, answer_texts(r)))


@test
def invalid_ecs_is_formerr():
    _, d = setup()
    def raw(option_data):
        q = make_query(GEO, "A", use_edns=0).to_wire()
        # replace the empty OPT rdata with our option
        opt = struct.pack("!HH", 8, len(option_data)) + option_data
        q = q[:-2] + struct.pack("!H", len(opt)) + opt
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(2)
            s.sendto(q, (d.host, d.port))
            return dns.message.from_wire(s.recv(4096))
    bad = {
        "unknown family": struct.pack("!HBB", 3, 8, 0) + b"\x0a",
        "prefix longer than the address": struct.pack("!HBB", 1, 33, 0) + b"\x7f\x00\x01\x00\x00",
        "bits beyond the prefix": struct.pack("!HBB", 1, 23, 0) + b"\x7f\x00\x01",
        "address longer than the prefix": struct.pack("!HBB", 1, 8, 0) + b"\x7f\x00",
        "scope set in a query": struct.pack("!HBB", 1, 24, 24) + b"\x7f\x00\x01",
        "truncated": struct.pack("!HB", 1, 24),
    }
    for name, data in bad.items():
        r = raw(data)
        expect(r.rcode() == dns.rcode.FORMERR, "%s: %s" % (name, dns.rcode.to_text(r.rcode())))
    r = raw(struct.pack("!HBB", 1, 24, 0) + b"\x7f\x00\x01")
    expect(r.rcode() == dns.rcode.NOERROR and answer_texts(r) == [EU], r)


@test
def rules_win_over_distance_with_honest_scopes():
    db, d = setup()
    gslbctl(db, "rule", "add", GEO, "127.0.1.128/25", AP)
    gslbctl(db, "rule", "add", GEO, "country:JP", US)
    gslbctl(db, "rule", "add", GEO, "continent:SA", EU)
    # Three commits, each picked up on its own: wait for the last one.
    expect(wait_for(lambda: ecs(d, "127.0.5.0", 24)[0] == [EU], timeout=3), "continent rule")
    cases = [
        ("127.0.1.128", 25, AP, 25),     # CIDR rule
        ("127.0.1.200", 32, AP, 25),     # a host inside it
        ("127.0.1.0", 25, EU, 25),       # outside the rule, in the same /24
        ("127.0.1.0", 24, EU, 25),       # the /24 holds the rule: narrowed
        ("127.0.3.0", 24, US, 24),       # country JP -> US endpoint
        ("2001:db8:3::", 48, US, 48),    # country rule for IPv6 too
        ("127.0.5.0", 24, EU, 24),       # continent SA -> EU endpoint
        ("127.0.2.0", 24, US, 24),       # no rule: nearest
    ]
    for subnet, prefix, want, scope in cases:
        got, opt = ecs(d, subnet, prefix)
        expect(got == [want], "%s/%d: %s, want %s" % (subnet, prefix, got, want))
        expect(opt.scopelen == scope, "%s/%d: scope %d, want %d" % (subnet, prefix, opt.scopelen, scope))


@test
def down_nearest_yields_next_nearest():
    db = os.path.join(tmpdir(), "geo2.db")
    gslbctl(db, "init")
    gslbctl(db, "service", "add", GEO, "--policy", "geo", "--answers", "2")
    gslbctl(db, "endpoint", "add", GEO, EU, "--lat", "50.11", "--lon", "8.68")
    gslbctl(db, "endpoint", "add", GEO, US, "--lat", "39.04", "--lon", "-77.49")
    gslbctl(db, "endpoint", "add", GEO, AP, "--lat", "35.69", "--lon", "139.69")
    d = Dnsd(ZONE_ARGS + ["--db", db, "--geoip", make_mmdb(), "--db-poll-ms", "100"])
    got, _ = ecs(d, "127.0.1.0", 24)
    expect(got == [EU, US], "two nearest, in order: %s" % got)
    gslbctl(db, "--force", "endpoint", "set", GEO, EU, "--admin", "down")
    expect(wait_for(lambda: ecs(d, "127.0.1.0", 24)[0] == [US, AP], timeout=3),
           "next nearest: %s" % ecs(d, "127.0.1.0", 24)[0])
    # explain agrees with the server
    p = gslbctl(db, "explain", GEO, "--client", "127.0.1.10", "--geoip", _env.get("mmdb") or make_mmdb(), "--json")
    import json
    doc = json.loads(p.stdout)
    expect(doc["answer"] == [US, AP], doc)
    d.stop()


@test
def default_location_for_unknown_clients_and_geoip_reload():
    db = os.path.join(tmpdir(), "geo3.db")
    gslbctl(db, "init")
    gslbctl(db, "service", "add", GEO, "--policy", "geo")
    gslbctl(db, "endpoint", "add", GEO, EU, "--lat", "50.11", "--lon", "8.68")
    gslbctl(db, "endpoint", "add", GEO, AP, "--lat", "35.69", "--lon", "139.69")
    mmdb = make_mmdb()
    d = Dnsd(ZONE_ARGS + ["--db", db, "--geoip", mmdb, "--default-location", "JP"])
    got, opt = ecs(d, "10.1.2.0", 24)         # not in the database
    expect(got == [AP], "default location JP: %s" % got)
    # replace the database file: 10.1.2.0/24 becomes Frankfurt
    tsv = os.path.join(tmpdir(), "more.tsv")
    with open(tsv, "w") as f:
        f.write(open(os.path.join(os.path.dirname(__file__), "..", "fixtures", "geo", "networks.tsv")).read())
        f.write("10.1.2.0/24\t50.1109\t8.6821\tDE\tEU\tFrankfurt\n")
    new = make_mmdb(tsv, mmdb + ".new")
    os.rename(new, mmdb)
    expect(wait_for(lambda: ecs(d, "10.1.2.0", 24)[0] == [EU], timeout=5), "replaced MMDB not picked up")
    # a corrupt replacement keeps the old one
    with open(mmdb + ".bad", "wb") as f:
        f.write(b"not an mmdb" * 100)
    os.rename(mmdb + ".bad", mmdb)
    expect(wait_for(lambda: "geoip" in d.output() and "keeping" in d.output(), timeout=5), d.output())
    expect(ecs(d, "10.1.2.0", 24)[0] == [EU], "old database not kept")
    d.stop()


if __name__ == "__main__":
    run()
