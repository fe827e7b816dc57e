#!/usr/bin/python3
"""Balanced names end to end: gslbctl writes the SQLite store, bin/dnsd
answers through DNS (dnspython over UDP/TCP on loopback)."""
import collections
import os
import socket
import subprocess
import time

import dns.edns
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

from gslbtest import (Dnsd, ZONES, answer_texts, ecs_query, gslbctl, make_query,
                      run, test, tmpdir, wait_for)

ZONE_ARGS = ["--zone", os.path.join(ZONES, "example.com.zone"),
             "--zone", os.path.join(ZONES, "gslb.example.com.zone")]
WWW = "www.gslb.example.com."


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def new_db():
    db = os.path.join(tmpdir(), "gslb.db")
    gslbctl(db, "init")
    return db


def start(db, *extra):
    return Dnsd(ZONE_ARGS + ["--db", db, "--db-poll-ms", "100"] + list(extra))


def answers_of(d, qname=WWW, qtype="A", **kw):
    return answer_texts(d.udp(qname, qtype, **kw))


@test
def failover_between_cname_targets_and_flip():
    db = new_db()
    gslbctl(db, "service", "add", "www.gslb.example.com", "--policy", "failover")
    gslbctl(db, "endpoint", "add", WWW, "lb-eu.example.net.", "--priority", "10")
    gslbctl(db, "endpoint", "add", WWW, "lb-us.example.net.", "--priority", "20")
    d = start(db)
    r = d.udp(WWW, "A")
    expect(r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA, r)
    expect(len(r.answer) == 1 and r.answer[0].rdtype == dns.rdatatype.CNAME, r)
    expect(answer_texts(r) == ["lb-eu.example.net."], r)
    expect(r.answer[0].ttl == 30, "default TTL 30, got %d" % r.answer[0].ttl)
    # the same over TCP and with EDNS
    expect(answer_texts(d.tcp(WWW, "A")) == ["lb-eu.example.net."], "tcp")
    expect(answer_texts(d.udp(WWW, "AAAA", use_edns=0)) == ["lb-eu.example.net."], "edns")
    gslbctl(db, "flip", WWW, "lb-us.example.net.")
    t0 = time.monotonic()
    got = wait_for(lambda: answers_of(d) == ["lb-us.example.net."], timeout=3)
    expect(got, "flip not answered: %s" % answers_of(d))
    expect(time.monotonic() - t0 < 1.5, "flip took %.2fs" % (time.monotonic() - t0))
    # flip back
    gslbctl(db, "flip", WWW, "lb-eu.example.net.")
    expect(wait_for(lambda: answers_of(d) == ["lb-eu.example.net."], timeout=3), "flip back")


@test
def cname_into_our_zone_is_chased_and_other_types_nodata():
    db = new_db()
    gslbctl(db, "service", "add", WWW, "--policy", "failover", "--ttl", "15")
    gslbctl(db, "endpoint", "add", WWW, "static.gslb.example.com.")
    gslbctl(db, "service", "add", "v4.gslb.example.com.", "--policy", "all")
    gslbctl(db, "endpoint", "add", "v4.gslb.example.com.", "192.0.2.1")
    gslbctl(db, "endpoint", "add", "v4.gslb.example.com.", "192.0.2.2")
    d = start(db)
    r = d.udp(WWW, "A")
    expect(answer_texts(r) == ["static.gslb.example.com.", "192.0.2.200"], r)
    expect(r.answer[0].ttl == 15, r)
    r = d.udp("v4.gslb.example.com.", "A")
    expect(sorted(answer_texts(r)) == ["192.0.2.1", "192.0.2.2"], r)
    for qtype in ["AAAA", "MX", "TXT"]:
        r = d.udp("v4.gslb.example.com.", qtype)
        expect(r.rcode() == dns.rcode.NOERROR and not r.answer and
               r.authority[0].rdtype == dns.rdatatype.SOA and
               r.authority[0].name.to_text() == "gslb.example.com.", (qtype, r))
    r = d.tcp("v4.gslb.example.com.", "A")
    expect(sorted(answer_texts(r)) == ["192.0.2.1", "192.0.2.2"], r)
    # case kept
    r = d.udp("V4.GSLB.Example.COM.", "A")
    expect(r.answer[0].name.to_text() == "V4.GSLB.Example.COM.", r)


@test
def weighted_split_is_statistically_right():
    db = new_db()
    gslbctl(db, "service", "add", WWW, "--policy", "weighted")
    for addr, w in [("192.0.2.70", 70), ("192.0.2.20", 20), ("192.0.2.10", 10)]:
        gslbctl(db, "endpoint", "add", WWW, addr, "--weight", w)
    d = start(db)
    counts = collections.Counter()
    q = make_query(WWW, "A")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        n = 10000
        for i in range(n):
            q.id = i & 0xffff
            s.sendto(q.to_wire(), (d.host, d.port))
            counts[answer_texts(dns.message.from_wire(s.recv(4096)))[0]] += 1
    for addr, w in [("192.0.2.70", 70), ("192.0.2.20", 20), ("192.0.2.10", 10)]:
        share = 100.0 * counts[addr] / n
        # 3 standard deviations of a binomial at n=10000 is under 1.4 points
        expect(abs(share - w) < 2.0, "%s: %.2f%%, want %d%% (%s)" % (addr, share, w, counts))


@test
def weighted_sticky_by_subnet_moves_only_the_removed_share():
    db = new_db()
    gslbctl(db, "service", "add", WWW, "--policy", "weighted", "--sticky")
    for addr in ["192.0.2.1", "192.0.2.2", "192.0.2.3"]:
        gslbctl(db, "endpoint", "add", WWW, addr, "--weight", 100)
    d = start(db)
    subnets = ["10.%d.%d.0" % (i // 200, i % 200) for i in range(300)]
    def snapshot():
        out = {}
        for sn in subnets:
            r = d.udp(None, query=ecs_query(WWW, "A", sn, 24))
            out[sn] = answer_texts(r)[0]
            ecs = [o for o in r.options if o.otype == 8]
            expect(ecs and ecs[0].scopelen == 24, "sticky scope: %s" % ecs)
        return out
    before = snapshot()
    expect(before == snapshot(), "sticky answers changed between two rounds")
    expect(len(set(before.values())) == 3, collections.Counter(before.values()))
    gslbctl(db, "--force", "endpoint", "rm", WWW, "192.0.2.3")
    expect(wait_for(lambda: "192.0.2.3" not in answers_of(d, query=ecs_query(
        WWW, "A", [k for k, v in before.items() if v == "192.0.2.3"][0], 24)), timeout=3), "rm")
    after = snapshot()
    for sn in subnets:
        if before[sn] != "192.0.2.3":
            expect(after[sn] == before[sn], "%s moved from %s to %s" % (sn, before[sn], after[sn]))


@test
def all_and_roundrobin():
    db = new_db()
    gslbctl(db, "service", "add", WWW, "--policy", "all", "--answers", "2")
    for a in ["192.0.2.1", "192.0.2.2", "192.0.2.3"]:
        gslbctl(db, "endpoint", "add", WWW, a)
    gslbctl(db, "service", "add", "rr.gslb.example.com.", "--policy", "roundrobin")
    for a in ["192.0.2.11", "192.0.2.12", "192.0.2.13"]:
        gslbctl(db, "endpoint", "add", "rr.gslb.example.com.", a)
    d = start(db, "--threads", "1")
    expect(len(answers_of(d)) == 2, answers_of(d))
    firsts = collections.Counter()
    for _ in range(30):
        got = answers_of(d, "rr.gslb.example.com.")
        expect(sorted(got) == ["192.0.2.11", "192.0.2.12", "192.0.2.13"], got)
        firsts[got[0]] += 1
    expect(len(firsts) == 3, "roundrobin did not rotate: %s" % firsts)


@test
def drain_admin_and_when_down():
    db = new_db()
    gslbctl(db, "service", "add", WWW, "--policy", "failover")
    gslbctl(db, "endpoint", "add", WWW, "192.0.2.1", "--priority", "1")
    gslbctl(db, "endpoint", "add", WWW, "192.0.2.2", "--priority", "2")
    d = start(db)
    expect(answers_of(d) == ["192.0.2.1"], answers_of(d))
    gslbctl(db, "--force", "endpoint", "drain", WWW, "192.0.2.1")
    expect(wait_for(lambda: answers_of(d) == ["192.0.2.2"]), "drain: %s" % answers_of(d))
    gslbctl(db, "--force", "endpoint", "set", WWW, "192.0.2.2", "--admin", "down")
    # nothing healthy and in rotation: fail open answers the drained one,
    # never the forced-down one
    expect(wait_for(lambda: answers_of(d) == ["192.0.2.1"]), "fail open: %s" % answers_of(d))
    gslbctl(db, "service", "add", "closed.gslb.example.com.", "--policy", "failover",
            "--when-down", "closed")
    gslbctl(db, "--force", "endpoint", "add", "closed.gslb.example.com.", "192.0.2.9", "--admin", "down",
            check=False)
    gslbctl(db, "--force", "endpoint", "set", "closed.gslb.example.com.", "192.0.2.9", "--admin", "down")
    expect(wait_for(lambda: d.udp("closed.gslb.example.com.", "A").rcode() == dns.rcode.SERVFAIL),
           "fail closed: %s" % d.udp("closed.gslb.example.com.", "A"))
    gslbctl(db, "service", "add", "fb.gslb.example.com.", "--policy", "failover",
            "--when-down", "sorry.example.net.")
    gslbctl(db, "endpoint", "add", "fb.gslb.example.com.", "192.0.2.8")
    gslbctl(db, "--force", "endpoint", "set", "fb.gslb.example.com.", "192.0.2.8", "--admin", "down")
    expect(wait_for(lambda: answers_of(d, "fb.gslb.example.com.") == ["sorry.example.net."]),
           "fallback: %s" % answers_of(d, "fb.gslb.example.com."))
    gslbctl(db, "endpoint", "undrain", WWW, "192.0.2.1")
    gslbctl(db, "endpoint", "set", WWW, "192.0.2.2", "--admin", "auto")
    expect(wait_for(lambda: answers_of(d) == ["192.0.2.1"]), "undrain")


@test
def invalid_rows_skipped_and_changes_by_sqlite3_seen():
    db = new_db()
    gslbctl(db, "service", "add", WWW, "--policy", "failover")
    gslbctl(db, "endpoint", "add", WWW, "192.0.2.1")
    gslbctl(db, "service", "add", "www.not-our-zone.org.", "--policy", "failover")
    gslbctl(db, "endpoint", "add", "www.not-our-zone.org.", "192.0.2.5")
    d = start(db)
    expect(answers_of(d) == ["192.0.2.1"], answers_of(d))
    expect("www.not-our-zone.org." in d.output() and "outside every zone" in d.output(), d.output())
    expect(d.udp("www.not-our-zone.org.", "A").rcode() == dns.rcode.REFUSED, "outside served")
    # a person edits the store with the sqlite3 shell: seen within 1 s
    subprocess.run(["sqlite3", db, "UPDATE endpoints SET target = '192.0.2.77' "
                    "WHERE target = '192.0.2.1'"], check=True, timeout=10)
    t0 = time.monotonic()
    expect(wait_for(lambda: answers_of(d) == ["192.0.2.77"], timeout=3), "sqlite3 edit not seen")
    expect(time.monotonic() - t0 < 1.0, "took %.2fs" % (time.monotonic() - t0))
    # an invalid row (bad address written behind gslbctl's back) is
    # skipped and reported; the rest keeps being served
    subprocess.run(["sqlite3", db, "INSERT INTO endpoints (service_id, target) SELECT id, "
                    "'300.1.2.3' FROM services WHERE name = '%s'" % WWW], check=True, timeout=10)
    expect(wait_for(lambda: "300.1.2.3" in d.output()), d.output())
    expect(answers_of(d) == ["192.0.2.77"], answers_of(d))


@test
def corrupt_database_keeps_the_old_snapshot():
    db = new_db()
    gslbctl(db, "service", "add", WWW, "--policy", "failover")
    gslbctl(db, "endpoint", "add", WWW, "192.0.2.1")
    d = start(db)
    expect(answers_of(d) == ["192.0.2.1"], answers_of(d))
    # a garbage file moved over the store: reopening it fails, loudly
    with open(db + ".new", "wb") as f:
        f.write(b"this is not an SQLite database" * 200)
    os.rename(db + ".new", db)
    expect(wait_for(lambda: "file is not a database" in d.output(), timeout=3), d.output())
    expect(answers_of(d) == ["192.0.2.1"], "old snapshot not kept")
    # SIGHUP reloads zones and services: the store cannot be read, the
    # services loaded before keep being served, with the new zones
    d.signal(1)
    expect(wait_for(lambda: "reload: generation" in d.output(), timeout=3), d.output())
    for _ in range(5):
        expect(answers_of(d) == ["192.0.2.1"], "old snapshot not kept after SIGHUP")
        time.sleep(0.1)
    expect(d.alive(), "died on a corrupt database")
    # a good store moved into place is picked up again
    good = os.path.join(tmpdir(), "good.db")
    gslbctl(good, "init")
    gslbctl(good, "service", "add", WWW, "--policy", "failover")
    gslbctl(good, "endpoint", "add", WWW, "192.0.2.99")
    os.rename(good, db)
    expect(wait_for(lambda: answers_of(d) == ["192.0.2.99"], timeout=3), answers_of(d))


@test
def dual_stack_service_answers_each_family_from_its_own_endpoints():
    db = new_db()
    gslbctl(db, "service", "add", WWW, "--policy", "failover")
    gslbctl(db, "endpoint", "add", WWW, "192.0.2.1", "--priority", "1")
    gslbctl(db, "endpoint", "add", WWW, "2001:db8::1", "--priority", "2")
    gslbctl(db, "endpoint", "add", WWW, "192.0.2.2", "--priority", "3")
    d = start(db)
    # the best priority overall is IPv4, yet AAAA still gets the IPv6 one
    expect(answers_of(d, qtype="A") == ["192.0.2.1"], answers_of(d, qtype="A"))
    expect(answers_of(d, qtype="AAAA") == ["2001:db8::1"], answers_of(d, qtype="AAAA"))
    # the only IPv6 endpoint forced down: AAAA has nothing -> NODATA, A unaffected
    gslbctl(db, "--force", "endpoint", "set", WWW, "2001:db8::1", "--admin", "down")
    expect(wait_for(lambda: not answers_of(d, qtype="AAAA")), answers_of(d, qtype="AAAA"))
    r = d.udp(WWW, "AAAA")
    expect(r.rcode() == dns.rcode.NOERROR and not r.answer and r.authority,
           "AAAA with every IPv6 endpoint forced down is NODATA: %s" % r)
    expect(answers_of(d, qtype="A") == ["192.0.2.1"], answers_of(d, qtype="A"))
    # IPv4 drained: the A family fails over inside itself
    gslbctl(db, "--force", "endpoint", "drain", WWW, "192.0.2.1")
    expect(wait_for(lambda: answers_of(d, qtype="A") == ["192.0.2.2"]), answers_of(d, qtype="A"))


@test
def names_above_a_service_exist():
    # www.eu.gslb.example.com makes eu.gslb.example.com an empty
    # non-terminal: NODATA, never NXDOMAIN (RFC 8020 resolvers would cut
    # off everything below it)
    db = new_db()
    gslbctl(db, "service", "add", "www.eu.gslb.example.com.", "--policy", "failover")
    gslbctl(db, "endpoint", "add", "www.eu.gslb.example.com.", "192.0.2.1")
    d = start(db)
    expect(answers_of(d, "www.eu.gslb.example.com.") == ["192.0.2.1"], "service")
    for qtype in ["A", "TXT"]:
        r = d.udp("eu.gslb.example.com.", qtype)
        expect(r.rcode() == dns.rcode.NOERROR and not r.answer and
               r.authority[0].name.to_text() == "gslb.example.com.", r)
    r = d.udp("other.eu.gslb.example.com.", "A")
    expect(r.rcode() == dns.rcode.NXDOMAIN, r)
    gslbctl(db, "--force", "service", "rm", "www.eu.gslb.example.com.")
    expect(wait_for(lambda: d.udp("eu.gslb.example.com.", "A").rcode() == dns.rcode.NXDOMAIN),
           "ENT gone with its service")


@test
def cname_chain_into_a_service():
    # a static CNAME in the zone points at a balanced name: the chain is
    # followed into the service; a type the service has none of is NODATA
    # with the SOA, after the CNAME
    d_dir = tmpdir()
    zf = os.path.join(d_dir, "gslb.example.com.zone")
    with open(os.path.join(ZONES, "gslb.example.com.zone")) as f:
        text = f.read()
    with open(zf, "w") as f:
        f.write(text + "alias IN CNAME v4.gslb.example.com.\n")
    db = new_db()
    gslbctl(db, "service", "add", "v4.gslb.example.com.", "--policy", "all")
    gslbctl(db, "endpoint", "add", "v4.gslb.example.com.", "192.0.2.1")
    d = Dnsd(["--zone", os.path.join(ZONES, "example.com.zone"), "--zone", zf, "--db", db])
    r = d.udp("alias.gslb.example.com.", "A")
    expect(answer_texts(r) == ["v4.gslb.example.com.", "192.0.2.1"], r)
    r = d.udp("alias.gslb.example.com.", "AAAA")
    expect(r.rcode() == dns.rcode.NOERROR and answer_texts(r) == ["v4.gslb.example.com."] and
           r.authority and r.authority[0].rdtype == dns.rdatatype.SOA, r)


@test
def check_mode_validates_the_store():
    from gslbtest import BIN
    db = new_db()
    gslbctl(db, "service", "add", WWW, "--policy", "failover")
    gslbctl(db, "endpoint", "add", WWW, "192.0.2.1")
    gslbctl(db, "service", "add", "www.not-our-zone.org.", "--policy", "failover")
    argv = [os.path.join(BIN, "dnsd"), "--check"] + ZONE_ARGS + ["--db", db]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    expect(p.returncode == 0, p.stderr)
    expect("www.not-our-zone.org.: outside every zone" in p.stderr, p.stderr)
    # a broken zone file and a store that is not a database: both named
    bad = os.path.join(tmpdir(), "bad.db")
    with open(bad, "wb") as f:
        f.write(b"garbage" * 1000)
    p = subprocess.run([os.path.join(BIN, "dnsd"), "--check", "--zone",
                        os.path.join(ZONES, "..", "tests", "fixtures", "zones", "broken.zone"),
                        "--zone", os.path.join(ZONES, "example.com.zone"), "--db", bad],
                       capture_output=True, text=True, timeout=30)
    expect(p.returncode != 0 and "broken.zone:6:" in p.stderr and "bad.db" in p.stderr, p.stderr)


if __name__ == "__main__":
    run()
