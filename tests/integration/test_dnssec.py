#!/usr/bin/python3
"""Online DNSSEC end to end: bin/dnsd --dnssec-keys with key pairs made by
ldns-keygen, answers checked by real validators - BIND's delv and a local
unbound (both with example.com's KSK as the only trust anchor, so
gslb.example.com validates through the DS record in its parent, served by
the same dnsd) - and by dnspython's own validator for what those two cannot
ask (ECS, the CO flag, referrals)."""
import os
import re
import shutil
import socket
import subprocess
import time

import dns.dnssec
import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset
import json
import urllib.request

from gslbtest import (BIN, Dnsd, Proc, Skip, ZONES, answer_texts, ecs_query,
                      free_port, gslbctl, make_mmdb, run, test, tmpdir,
                      wait_for)

EX = dns.name.from_text("example.com.")
GS = dns.name.from_text("gslb.example.com.")
FO = "fo.gslb.example.com."      # failover
WT = "wt.gslb.example.com."      # weighted, 2 answers of 4
GEO = "geo.gslb.example.com."    # geo
CN = "cn.gslb.example.com."      # failover to a CNAME into the zone
EU, US, AP = "192.0.2.1", "192.0.2.2", "192.0.2.3"

_env = {}


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def need(tool):
    if not shutil.which(tool):
        raise Skip("%s is not installed (make deps)" % tool)


def keygen(d, zone, alg="ECDSAP256SHA256", ksk=False):
    """A key pair made by ldns-keygen in d; returns the base name."""
    argv = ["ldns-keygen", "-a", alg] + (["-k"] if ksk else []) + [zone]
    p = subprocess.run(argv, cwd=d, capture_output=True, text=True, timeout=30,
                       check=True)
    base = p.stdout.strip()
    for f in os.listdir(d):
        if f.endswith(".ds"):
            os.unlink(os.path.join(d, f))
    return base


def dnskey_line(d, base):
    with open(os.path.join(d, base + ".key")) as f:
        for line in f:
            if "DNSKEY" in line and not line.startswith(";"):
                return line.split(";")[0].strip()
    raise AssertionError("no DNSKEY in %s" % base)


def set_timing(d, base, **times):
    """Rewrites the timing lines (Publish=..., Activate=...) of a .private."""
    path = os.path.join(d, base + ".private")
    with open(path) as f:
        lines = [l for l in f if l.split(":")[0] not in times]
    for k, v in times.items():
        if v is not None:
            lines.append("%s: %s\n" % (k, time.strftime("%Y%m%d%H%M%S", time.gmtime(v))))
    with open(path, "w") as f:
        f.writelines(lines)


def check_ds(keydir, zones):
    argv = [os.path.join(BIN, "dnsd"), "--check", "--dnssec-keys", keydir]
    for z in zones:
        argv += ["--zone", z]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30)


def setup():
    """Keys, zones (example.com with gslb's DS), a store and one dnsd."""
    if _env.get("d") and _env["d"].alive():
        return _env
    need("ldns-keygen")
    t = tmpdir()
    keys = os.path.join(t, "keys")
    os.mkdir(keys)
    ksk = keygen(keys, "example.com", ksk=True)
    zsk = keygen(keys, "example.com")
    # gslb.example.com: one Ed25519 key signing everything
    gk = keygen(keys, "gslb.example.com", alg="ED25519", ksk=True)
    gz = os.path.join(t, "gslb.example.com.zone")
    shutil.copy(os.path.join(ZONES, "gslb.example.com.zone"), gz)
    ez = os.path.join(t, "example.com.zone")
    with open(os.path.join(ZONES, "example.com.zone")) as f:
        text = f.read()
    p = check_ds(keys, [gz])
    expect(p.returncode == 0, p.stderr)
    ds = [l for l in p.stdout.splitlines() if "\tDS\t" in l]
    expect(len(ds) == 1 and ds[0].startswith("gslb.example.com."), p.stdout)
    text += "\n" + ds[0].split(";")[0] + "\n"
    text += "lb          IN CNAME fo.gslb.example.com.\n"
    text += "insec       IN NS    ns.elsewhere.net.\n"
    with open(ez, "w") as f:
        f.write(text)
    db = os.path.join(t, "gslb.db")
    gslbctl(db, "init")
    gslbctl(db, "service", "add", FO, "--policy", "failover", "--ttl", "30")
    gslbctl(db, "endpoint", "add", FO, EU, "--priority", "10")
    gslbctl(db, "endpoint", "add", FO, US, "--priority", "20")
    gslbctl(db, "service", "add", WT, "--policy", "weighted", "--answers", "2")
    for i in range(4):
        gslbctl(db, "endpoint", "add", WT, "198.51.100.%d" % (10 + i))
    gslbctl(db, "endpoint", "add", WT, "2001:db8::10")
    gslbctl(db, "service", "add", GEO, "--policy", "geo")
    gslbctl(db, "endpoint", "add", GEO, EU, "--region", "eu", "--lat", "50.11", "--lon", "8.68")
    gslbctl(db, "endpoint", "add", GEO, US, "--region", "us", "--lat", "39.04", "--lon", "-77.49")
    gslbctl(db, "endpoint", "add", GEO, AP, "--region", "ap", "--lat", "35.69", "--lon", "139.69")
    gslbctl(db, "service", "add", CN, "--policy", "failover")
    gslbctl(db, "endpoint", "add", CN, "static.gslb.example.com.")
    gslbctl(db, "service", "add", "a.deep.gslb.example.com.", "--policy", "all")
    gslbctl(db, "endpoint", "add", "a.deep.gslb.example.com.", "192.0.2.7")
    mmdb = make_mmdb()
    d = Dnsd(["--zone", ez, "--zone", gz, "--db", db, "--geoip", mmdb,
              "--db-poll-ms", "100", "--ecs-max-v4", "32", "--dnssec-keys", keys,
              "--threads", "2"])
    anchor = dnskey_line(keys, ksk)
    af = os.path.join(t, "anchor.conf")
    f = anchor.split()
    with open(af, "w") as out:
        out.write('trust-anchors {\n  "%s" static-key %s %s %s "%s";\n};\n'
                  % (f[0], f[-4], f[-3], f[-2], f[-1]))
    _env.update(t=t, keys=keys, ksk=ksk, zsk=zsk, gk=gk, ez=ez, gz=gz, db=db,
                d=d, anchor=anchor, anchor_file=af, mmdb=mmdb)
    return _env


def delv(name, qtype="A"):
    """delv's verdict and output for name/qtype, asking dnsd directly."""
    e = setup()
    p = subprocess.run(["delv", "-a", e["anchor_file"], "+root=example.com",
                        "@127.0.0.1", "-p", str(e["d"].port), name, qtype],
                       capture_output=True, text=True, timeout=30)
    out = p.stdout + p.stderr
    if "; fully validated" in out:
        return "secure", out
    if "; negative response, fully validated" in out:
        return "secure-negative", out
    return "other", out


def expect_delv(name, qtype, verdict="secure", contains=None):
    v, out = delv(name, qtype)
    expect(v == verdict, "delv %s %s: %s, wanted %s\n%s" % (name, qtype, v, verdict, out))
    if contains:
        expect(contains in out, "delv %s %s: no %r in\n%s" % (name, qtype, contains, out))
    return out


def do_query(qname, qtype, **kw):
    return dns.message.make_query(qname, qtype, want_dnssec=True, **kw)


_keys = {}


def zone_keys(e, zone):
    """The DNSKEY RRset of zone as dnsd serves it (validated below)."""
    r = e["d"].tcp(None, query=do_query(zone, "DNSKEY"))
    ks = r.find_rrset(r.answer, dns.name.from_text(zone), dns.rdataclass.IN,
                      dns.rdatatype.DNSKEY)
    sig = r.find_rrset(r.answer, dns.name.from_text(zone), dns.rdataclass.IN,
                       dns.rdatatype.RRSIG, dns.rdatatype.DNSKEY)
    dns.dnssec.validate(ks, sig, {dns.name.from_text(zone): ks})
    return {dns.name.from_text(zone): ks}


def validate_sections(e, r, sections=("answer", "authority")):
    """dnspython's validator over every RRset of the sections; returns how
    many RRsets it checked. Raises on any without a valid signature."""
    n = 0
    for sec in sections:
        rrsets = getattr(r, sec)
        for rs in rrsets:
            if rs.rdtype == dns.rdatatype.RRSIG:
                continue
            if sec == "authority" and rs.rdtype == dns.rdatatype.NS:
                continue      # a referral's NS is not signed by the parent
            sigs = [s for s in rrsets if s.rdtype == dns.rdatatype.RRSIG and
                    s.name == rs.name and s.covers == rs.rdtype]
            expect(sigs, "no RRSIG over %s" % rs)
            signer = sigs[0][0].signer
            dns.dnssec.validate(rs, sigs[0], zone_keys(e, signer.to_text()))
            n += 1
    return n


@test
def check_prints_ds_matching_ldns():
    e = setup()
    p = check_ds(e["keys"], [e["ez"], e["gz"]])
    expect(p.returncode == 0, p.stderr)
    got = sorted(re.sub(r"\s+", " ", l.split(";")[0]).strip()
                 for l in p.stdout.splitlines() if "\tDS\t" in l)
    want = []
    for base in (e["ksk"], e["gk"]):
        q = subprocess.run(["ldns-key2ds", "-n", "-2", base + ".key"], cwd=e["keys"],
                           capture_output=True, text=True, timeout=30, check=True)
        want.append(re.sub(r"\s+", " ", q.stdout.split(";")[0]).strip())
    want = sorted(w.replace("\tIN\t", " IN ") for w in want)
    norm = lambda s: re.sub(r"\s+(\d+)\s+IN\s+DS", " IN DS", s).upper()
    expect([norm(x) for x in got] == [norm(x) for x in want], "%s != %s" % (got, want))


@test
def delv_validates_static_answers_and_denials():
    need("delv")
    setup()
    expect_delv("www.example.com", "A", contains="192.0.2.80")
    expect_delv("example.com", "MX")
    expect_delv("example.com", "DNSKEY")
    expect_delv("example.com", "CDS")
    expect_delv("alias.example.com", "A", contains="192.0.2.81")   # CNAME chain
    expect_delv("_sip._udp.example.com", "SRV")
    expect_delv("anything.wild.example.com", "A", contains="192.0.2.99")  # wildcard
    expect_delv("x.wcname.example.com", "A", contains="192.0.2.80")       # wildcard CNAME
    expect_delv("nope.example.com", "A", "secure-negative")       # NXDOMAIN
    expect_delv("www.example.com", "TXT", "secure-negative")      # NODATA
    expect_delv("b.c.example.com", "A", "secure-negative")        # empty non-terminal
    expect_delv("x.wild.example.com", "MX", "secure-negative")    # wildcard NODATA
    expect_delv("gslb.example.com", "DNSKEY")                     # through the DS
    expect_delv("static.gslb.example.com", "A", contains="192.0.2.200")
    expect_delv("nope.gslb.example.com", "AAAA", "secure-negative")


@test
def delv_validates_balanced_answers():
    need("delv")
    e = setup()
    expect_delv(FO, "A", contains=EU)
    expect_delv(FO, "AAAA", "secure-negative")         # NODATA at a service
    expect_delv(FO, "TXT", "secure-negative")
    expect_delv("deep.gslb.example.com", "A", "secure-negative")  # ENT of a service
    seen = set()
    for _ in range(6):
        out = expect_delv(WT, "A")
        seen.add(tuple(sorted(re.findall(r"198\.51\.100\.\d+", out))))
    expect(len(seen) > 1, "weighted answers never varied: %s" % seen)
    expect_delv(WT, "AAAA", contains="2001:db8::10")
    expect_delv(GEO, "A")
    expect_delv("a.deep.gslb.example.com", "A", contains="192.0.2.7")   # policy all
    expect_delv(CN, "A", contains="192.0.2.200")       # balanced CNAME into the zone
    expect_delv("lb.example.com", "A", contains=EU)   # static CNAME to a balanced name
    # failover flip: the new answer validates at once
    gslbctl(e["db"], "flip", FO, US)
    expect(wait_for(lambda: answer_texts(e["d"].udp(FO, "A")) == [US], timeout=5), "flip")
    expect_delv(FO, "A", contains=US)
    gslbctl(e["db"], "flip", FO, EU)
    expect(wait_for(lambda: answer_texts(e["d"].udp(FO, "A")) == [EU], timeout=5), "flip back")
    expect_delv(FO, "A", contains=EU)
    # health: the primary forced down, then back to following health
    gslbctl(e["db"], "endpoint", "set", FO, EU, "--admin", "down")
    expect(wait_for(lambda: answer_texts(e["d"].udp(FO, "A")) == [US], timeout=5), "down")
    expect_delv(FO, "A", contains=US)
    gslbctl(e["db"], "endpoint", "set", FO, EU, "--admin", "auto")
    expect(wait_for(lambda: answer_texts(e["d"].udp(FO, "A")) == [EU], timeout=5), "auto")


@test
def geo_answers_with_ecs_validate():
    e = setup()
    seen = {}
    for subnet in ("127.0.1.0", "127.0.2.0", "127.0.3.0", "10.9.8.0"):
        q = ecs_query(GEO, "A", subnet, 24, want_dnssec=True)
        r = e["d"].udp(None, query=q)
        expect(r.rcode() == dns.rcode.NOERROR and r.answer, r)
        expect(validate_sections(e, r) == 1, r)
        seen[subnet] = answer_texts(r)
    expect(len(set(map(tuple, seen.values()))) > 1, "geo answers all alike: %s" % seen)


@test
def compact_denial_and_co_flag():
    e = setup()
    r = e["d"].udp(None, query=do_query("nope.example.com.", "A"))
    expect(r.rcode() == dns.rcode.NOERROR and not r.answer, r)
    nsec = [rs for rs in r.authority if rs.rdtype == dns.rdatatype.NSEC]
    expect(len(nsec) == 1 and nsec[0].name == dns.name.from_text("nope.example.com."), r)
    rd = nsec[0][0]
    expect(rd.next == dns.name.from_text("\\000.nope.example.com."), rd)
    types = [dns.rdatatype.to_text(t) for w in rd.windows for t in _bits(w)]
    expect(types == ["RRSIG", "NSEC", "TYPE128"], types)
    expect(validate_sections(e, r) == 2, r)
    # CO (RFC 9824): NXDOMAIN restored
    q = do_query("nope.example.com.", "A")
    q.use_edns(0, dns.flags.DO | 0x4000, 1232)
    r = e["d"].udp(None, query=q)
    expect(r.rcode() == dns.rcode.NXDOMAIN, r)
    # NODATA at a name with data: its real types, no more
    r = e["d"].udp(None, query=do_query("www.example.com.", "MX"))
    nsec = [rs for rs in r.authority if rs.rdtype == dns.rdatatype.NSEC][0]
    types = [dns.rdatatype.to_text(t) for w in nsec[0].windows for t in _bits(w)]
    expect(types == ["A", "AAAA", "RRSIG", "NSEC"], types)
    # no zone walk: the NSEC of a name only ever covers that name
    for name in ("a.example.com.", "zzzz.example.com.", "fo.gslb.example.com."):
        r = e["d"].udp(None, query=do_query(name, "TXT"))
        for rs in r.authority:
            if rs.rdtype == dns.rdatatype.NSEC:
                expect(rs[0].next.to_text() == "\\000." + name, rs)
    # without DO: no DNSSEC records at all
    r = e["d"].udp("nope.example.com.", "A")
    expect(r.rcode() == dns.rcode.NXDOMAIN and len(r.authority) == 1, r)
    r = e["d"].udp(FO, "A", use_edns=0)
    expect(all(rs.rdtype != dns.rdatatype.RRSIG for rs in r.answer), r)


def _bits(window):
    w, bitmap = window
    for i, b in enumerate(bitmap):
        for k in range(8):
            if b & (0x80 >> k):
                yield w * 256 + i * 8 + k


@test
def referrals_carry_signed_ds_or_its_absence():
    e = setup()
    r = e["d"].udp(None, query=do_query("host.sub.example.com.", "A"))
    expect(not (r.flags & dns.flags.AA), r)
    ds = [rs for rs in r.authority if rs.rdtype == dns.rdatatype.DS]
    expect(len(ds) == 1, r)
    expect(validate_sections(e, r) == 1, r)   # the DS (NS is unsigned)
    r = e["d"].udp(None, query=do_query("host.insec.example.com.", "A"))
    nsec = [rs for rs in r.authority if rs.rdtype == dns.rdatatype.NSEC]
    expect(len(nsec) == 1 and nsec[0].name == dns.name.from_text("insec.example.com."), r)
    types = [dns.rdatatype.to_text(t) for w in nsec[0][0].windows for t in _bits(w)]
    expect(types == ["NS", "RRSIG", "NSEC"], types)
    expect(validate_sections(e, r) == 1, r)
    # DS of the served child is answered by the parent, signed by it
    r = e["d"].udp(None, query=do_query("gslb.example.com.", "DS"))
    expect(r.answer and validate_sections(e, r) == 1, r)
    sig = [rs for rs in r.answer if rs.rdtype == dns.rdatatype.RRSIG][0]
    expect(sig[0].signer == EX, sig)


@test
def memoised_signatures_follow_the_owner():
    """dnsd keeps the finished RRSIGs of static RRsets per worker: the same
    records under another owner (asked directly, then as a CNAME target,
    or a DS asked directly and then in a referral; a NODATA proof asked
    directly and then behind a CNAME) must each get signatures of their
    own owner, in any order, repeated (the second time from the memo).
    One worker thread, so every query meets the memo of the ones before."""
    e = setup()
    d = Dnsd(["--zone", e["ez"], "--zone", e["gz"], "--db", e["db"],
              "--dnssec-keys", e["keys"], "--threads", "1"])
    seq = [("www.example.com.", "A"), ("alias.example.com.", "A"),
           ("WwW.ExAmPlE.cOm.", "A"), ("alias.example.com.", "A"),
           ("www.example.com.", "TXT"), ("alias.example.com.", "TXT"),
           ("www.example.com.", "TXT"), ("alias.example.com.", "TXT"),
           ("host.sub.example.com.", "A"), ("sub.example.com.", "DS"),
           ("host.sub.example.com.", "A"), ("sub.example.com.", "DS"),
           ("host.insec.example.com.", "A"), ("insec.example.com.", "DS"),
           ("host.insec.example.com.", "A"), ("insec.example.com.", "DS")]
    checked = 0
    for qname, qtype in seq:
        r = d.udp(None, query=do_query(qname, qtype))
        expect(r.rcode() == dns.rcode.NOERROR, "%s %s: %s" % (qname, qtype, r))
        try:
            n = validate_sections(e, r)
        except Exception as ex:       # noqa: BLE001 - the failing answer
            raise AssertionError("%s %s does not validate (%s): %s" %
                                 (qname, qtype, ex, r))
        expect(n >= 1, "%s %s: nothing signed: %s" % (qname, qtype, r))
        checked += n
    # the referral's NSEC lists NS only, the NODATA one at the cut its types
    r = d.udp(None, query=do_query("insec.example.com.", "DS"))
    nsec = [rs for rs in r.authority if rs.rdtype == dns.rdatatype.NSEC]
    expect(len(nsec) == 1, r)
    types = [dns.rdatatype.to_text(t) for w in nsec[0][0].windows for t in _bits(w)]
    expect("NS" in types and "DS" not in types, types)
    expect(checked >= 24, "only %d RRsets checked" % checked)
    # NXDOMAIN proofs are memoised by the name denied: each name, asked
    # again (in another case too), gets the proof of its own name, with a
    # signature that validates; the second time it comes from the memo.
    for qname in ["nx-one.example.com.", "nx-two.example.com.",
                  "NX-One.Example.COM.", "nx-two.example.com.",
                  "nx-one.example.com."]:
        r = d.udp(None, query=do_query(qname, "A"))
        nsec = [rs for rs in r.authority if rs.rdtype == dns.rdatatype.NSEC]
        expect(len(nsec) == 1 and nsec[0].name == dns.name.from_text(qname),
               "%s: %s" % (qname, r))
        expect(nsec[0][0].next == dns.name.from_text("\\000." + qname.lower()),
               "%s: next %s" % (qname, nsec[0][0].next))
        expect(validate_sections(e, r) >= 2, "%s: %s" % (qname, r))
    d.stop()


@test
def ttl_change_is_not_served_with_a_stale_signature():
    """The cache is keyed by the RRset with its TTL: a signature made for
    TTL 30 must not be reused after the TTL becomes 31 (it would be bogus)."""
    need("delv")
    e = setup()
    for _ in range(3):                  # warm every worker's cache
        expect_delv(FO, "A", contains=EU)
    gslbctl(e["db"], "service", "set", FO, "--ttl", "31")
    expect(wait_for(lambda: e["d"].udp(FO, "A").answer[0].ttl == 31, timeout=5), "ttl")
    for _ in range(3):
        expect_delv(FO, "A", contains=EU)
        r = e["d"].udp(None, query=do_query(FO, "A"))
        expect(validate_sections(e, r) == 1, r)
    gslbctl(e["db"], "service", "set", FO, "--ttl", "30")


@test
def axfr_and_ixfr_stay_refused():
    e = setup()
    for qtype in ("AXFR", "IXFR"):
        r = e["d"].tcp(None, query=do_query("example.com.", qtype))
        expect(r.rcode() == dns.rcode.REFUSED and not r.answer, r)


@test
def unbound_validates_through_the_ds():
    need("unbound")
    e = setup()
    u = Unbound(e)
    for name, qtype, rcode, want in [
            ("www.example.com.", "A", dns.rcode.NOERROR, "192.0.2.80"),
            ("nope.example.com.", "A", dns.rcode.NOERROR, None),
            ("www.example.com.", "TXT", dns.rcode.NOERROR, None),
            ("x.wild.example.com.", "A", dns.rcode.NOERROR, "192.0.2.99"),
            (FO, "A", dns.rcode.NOERROR, EU),
            (FO, "AAAA", dns.rcode.NOERROR, None),
            (WT, "A", dns.rcode.NOERROR, "198.51.100."),
            (GEO, "A", dns.rcode.NOERROR, "192.0.2."),
            (CN, "A", dns.rcode.NOERROR, "192.0.2.200"),
            ("lb.example.com.", "A", dns.rcode.NOERROR, EU),
            ("nope.gslb.example.com.", "A", dns.rcode.NOERROR, None)]:
        r = u.ask(name, qtype)
        expect(r.rcode() == rcode and r.flags & dns.flags.AD,
               "unbound %s %s: not secure: %s\n%s" % (name, qtype, r, u.output()[-3000:]))
        if want:
            expect(any(want in t for t in answer_texts(r)), r)


@test
def ldns_verify_zone_checks_the_apex():
    """The apex RRsets as dnsd serves them, each with its RRSIGs, checked by
    ldns-verify-zone -a with the KSK as trusted key. (Its NSEC chain check
    does not apply to compact denial, whose NSEC at the apex covers only
    the apex: that NSEC is validated by dnspython instead.)"""
    need("ldns-verify-zone")
    e = setup()
    lines = []
    for qtype in ("SOA", "NS", "MX", "TXT", "A", "AAAA", "DNSKEY", "CDS", "CDNSKEY"):
        r = e["d"].tcp(None, query=do_query("example.com.", qtype))
        expect(len(r.answer) == 2, r)
        lines += [rs.to_text() for rs in r.answer]
    path = os.path.join(tmpdir(), "apex.zone")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    ksk = os.path.join(e["keys"], e["ksk"] + ".key")
    p = subprocess.run(["ldns-verify-zone", "-a", "-k", ksk, path], capture_output=True,
                       text=True, timeout=60)
    out = p.stdout + p.stderr
    errors = [l for l in out.splitlines() if l.startswith("Error")]
    expect(errors == ["Error: there is no NSEC(3) for example.com."],
           "ldns-verify-zone: %s\n%s" % (out, "\n".join(lines)))
    # a signature byte changed: ldns-verify-zone must notice
    bad = [l for l in lines]
    i = next(k for k, l in enumerate(bad) if " RRSIG MX " in l)
    sig = bad[i].split()
    sig[-1] = ("A" if sig[-1][0] != "A" else "B") + sig[-1][1:]
    bad[i] = " ".join(sig)
    with open(path, "w") as f:
        f.write("\n".join(bad) + "\n")
    p = subprocess.run(["ldns-verify-zone", "-a", "-k", ksk, path], capture_output=True,
                       text=True, timeout=60)
    out = p.stdout + p.stderr
    errors = [l for l in out.splitlines() if l.startswith("Error")]
    expect(len(errors) == 2 and any("Bogus DNSSEC signature" in l and "MX" in l for l in errors),
           "a broken RRSIG passed: %s" % out)
    r = e["d"].tcp(None, query=do_query("example.com.", "SRV"))
    expect(validate_sections(e, r) == 2, r)        # SOA and the apex NSEC


@test
def validators_reject_a_wrong_anchor():
    """Controls: with another key as trust anchor the same answers are not
    secure (so the checks above do validate)."""
    e = setup()
    other = tmpdir()
    base = keygen(other, "example.com", ksk=True)
    line = dnskey_line(other, base)
    if shutil.which("delv"):
        f = line.split()
        af = os.path.join(other, "anchor.conf")
        with open(af, "w") as out:
            out.write('trust-anchors {\n  "%s" static-key %s %s %s "%s";\n};\n'
                      % (f[0], f[-4], f[-3], f[-2], f[-1]))
        p = subprocess.run(["delv", "-a", af, "+root=example.com", "@127.0.0.1", "-p",
                            str(e["d"].port), "www.example.com", "A"],
                           capture_output=True, text=True, timeout=30)
        expect("fully validated" not in p.stdout + p.stderr, p.stdout + p.stderr)
    if shutil.which("unbound"):
        u = Unbound(e, anchors=[line])
        r = u.ask("www.example.com.", "A")
        expect(r.rcode() == dns.rcode.SERVFAIL, r)


def key_tag(base):
    return int(base.rsplit("+", 1)[1])


def sig_tags(d, name, qtype):
    r = d.tcp(None, query=do_query(name, qtype))
    return sorted(rd.key_tag for rs in r.answer if rs.rdtype == dns.rdatatype.RRSIG
                  for rd in rs)


def dnskey_tags(d, zone="example.com."):
    r = d.tcp(None, query=do_query(zone, "DNSKEY"))
    return sorted(dns.dnssec.key_id(rd) for rs in r.answer
                  if rs.rdtype == dns.rdatatype.DNSKEY for rd in rs)


@test
def zsk_rollover_with_a_validating_resolver_running():
    """Pre-publish, switch, remove (README "Key rollover"), each step picked
    up on SIGHUP, while unbound keeps answering secure from its cache and
    from new queries."""
    need("unbound")
    e = setup()
    d, keys = e["d"], e["keys"]
    u = Unbound(e)
    names = [("www.example.com.", "A"), (FO, "A"), ("nope.example.com.", "A"),
             ("lb.example.com.", "A"), ("mail.example.com.", "A")]

    def all_secure(step):
        for name, qtype in names:
            r = u.ask(name, qtype)
            expect(r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AD,
                   "%s: %s %s not secure: %s\n%s" % (step, name, qtype, r,
                                                      u.output()[-2000:]))

    old, ksk = key_tag(e["zsk"]), key_tag(e["ksk"])
    all_secure("before")
    now = int(time.time())
    new_base = keygen(keys, "example.com")
    new = key_tag(new_base)
    set_timing(keys, new_base, Publish=now - 60, Activate=now + 86400)
    d.signal(1)
    expect(wait_for(lambda: dnskey_tags(d) == sorted([old, new, ksk]), timeout=5),
           "new ZSK not pre-published: %s" % dnskey_tags(d))
    expect(sig_tags(d, "www.example.com.", "A") == [old], "signed by the new key too early")
    all_secure("pre-published")
    set_timing(keys, new_base, Publish=now - 60, Activate=now - 30)
    set_timing(keys, e["zsk"], Inactive=now - 30)
    d.signal(1)
    expect(wait_for(lambda: sig_tags(d, "www.example.com.", "A") == [new], timeout=5),
           "new ZSK not signing: %s" % sig_tags(d, "www.example.com.", "A"))
    expect(dnskey_tags(d) == sorted([old, new, ksk]), "old ZSK removed too early")
    expect(sig_tags(d, "example.com.", "DNSKEY") == [ksk], "DNSKEY not signed by the KSK")
    all_secure("switched")
    set_timing(keys, e["zsk"], Inactive=now - 30, Delete=now - 10)
    d.signal(1)
    expect(wait_for(lambda: dnskey_tags(d) == sorted([new, ksk]), timeout=5),
           "old ZSK still published: %s" % dnskey_tags(d))
    all_secure("removed")
    out = expect_delv("www.example.com", "A") if shutil.which("delv") else ""
    expect(not out or str(new) in out, out)
    _env.clear()          # the key directory changed: fresh keys next time


@test
def bad_key_file_is_named_and_reload_keeps_the_old_keys():
    e = setup()
    d, keys = e["d"], e["keys"]
    bad = "Kexample.com.+013+00007"
    shutil.copy(os.path.join(keys, e["zsk"] + ".key"), os.path.join(keys, bad + ".key"))
    with open(os.path.join(keys, bad + ".private"), "w") as f:
        f.write("Private-key-format: v1.3\nAlgorithm: 13 (ECDSAP256SHA256)\n"
                "PrivateKey: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n")
    try:
        p = check_ds(keys, [e["ez"], e["gz"]])
        expect(p.returncode == 1 and bad + ".key" in p.stderr and "does not match" in p.stderr,
               p.stderr)
        before = dnskey_tags(d)
        d.signal(1)
        expect(wait_for(lambda: "keeping everything loaded before" in d.output(), timeout=5),
               d.output())
        expect(dnskey_tags(d) == before, "keys changed by a failed reload")
        r = d.udp(None, query=do_query("www.example.com.", "A"))
        expect(validate_sections(e, r) == 1, r)
    finally:
        for ext in (".key", ".private"):
            os.unlink(os.path.join(keys, bad + ext))
    # a timing line that is not a time
    with open(os.path.join(keys, e["zsk"] + ".private"), "a") as f:
        f.write("Activate: tomorrow\n")
    p = check_ds(keys, [e["ez"], e["gz"]])
    expect(p.returncode == 1 and "Activate" in p.stderr and e["zsk"] in p.stderr, p.stderr)
    _env.clear()


@test
def signing_budget_caps_a_flood_of_new_names():
    """--dnssec-sign-rate: a flood of random names over UDP beyond the cap
    gets TC (no signature made); within it, signed answers that validate."""
    e = setup()
    d = Dnsd(["--zone", e["ez"], "--zone", e["gz"], "--dnssec-keys", e["keys"],
              "--threads", "1", "--dnssec-sign-rate", "20"])
    tc = ok = 0
    for i in range(120):
        r = d.udp(None, query=do_query("flood%d.example.com." % i, "A"))
        if r.flags & dns.flags.TC:
            expect(not r.answer and not r.authority, r)
            tc += 1
        else:
            expect(validate_sections(e, r) == 2, r)
            ok += 1
    # 2 signatures per answer (SOA, NSEC), about 20 a second plus the burst
    expect(tc >= 60 and ok >= 5, "tc %d ok %d" % (tc, ok))
    time.sleep(1.2)
    r = d.tcp(None, query=do_query("after.example.com.", "A"))
    expect(not (r.flags & dns.flags.TC) and validate_sections(e, r) == 2, r)


@test
def rrl_slip_sends_tc_for_signed_answers_too():
    e = setup()
    d = Dnsd(["--zone", e["ez"], "--zone", e["gz"], "--dnssec-keys", e["keys"],
              "--threads", "1", "--rrl-rate", "5", "--rrl-slip", "1"])
    tc = full = 0
    for _ in range(40):
        try:
            r = d.udp(None, query=do_query("www.example.com.", "A"))
        except Exception:
            continue
        if r.flags & dns.flags.TC:
            expect(not r.answer, r)
            tc += 1
        else:
            expect(validate_sections(e, r) == 1, r)
            full += 1
    expect(tc > 10 and full >= 1, "tc %d full %d" % (tc, full))


@test
def parent_and_child_on_two_servers():
    """example.com on one dnsd, gslb.example.com on another (its DS in the
    parent's zone file, from dnsd --check): unbound, anchored at example.com
    only, validates the child's balanced and negative answers through the
    delegation, and a DS that does not match makes them bogus."""
    need("unbound")
    e = setup()
    parent = Dnsd(["--zone", e["ez"], "--dnssec-keys", e["keys"], "--threads", "1"])
    child = Dnsd(["--zone", e["gz"], "--db", e["db"], "--dnssec-keys", e["keys"],
                  "--threads", "1"])
    r = parent.udp(None, query=do_query(FO, "A"))
    expect(not (r.flags & dns.flags.AA) and any(rs.rdtype == dns.rdatatype.DS
                                                for rs in r.authority), r)
    u = Unbound({"anchor": e["anchor"], "d": parent}, child_port=child.port)
    for name, qtype, want in [(FO, "A", EU), (WT, "A", "198.51.100."), (FO, "AAAA", None),
                              ("nope.gslb.example.com.", "A", None),
                              ("static.gslb.example.com.", "A", "192.0.2.200")]:
        r = u.ask(name, qtype)
        expect(r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AD,
               "%s %s not secure: %s\n%s" % (name, qtype, r, u.output()[-2000:]))
        if want:
            expect(any(want in t for t in answer_texts(r)), r)
    # the parent with a DS for another key: the child is bogus (SERVFAIL)
    other = tmpdir()
    keygen(other, "gslb.example.com", alg="ED25519", ksk=True)
    p = check_ds(other, [e["gz"]])
    ds = [l for l in p.stdout.splitlines() if "\tDS\t" in l][0].split(";")[0]
    with open(e["ez"]) as f:
        text = "".join(l for l in f if not (l.startswith("gslb.example.com.") and "\tDS\t" in l))
    bad_ez = os.path.join(tmpdir(), "example.com.zone")
    with open(bad_ez, "w") as f:
        f.write(text + ds + "\n")
    parent2 = Dnsd(["--zone", bad_ez, "--dnssec-keys", e["keys"], "--threads", "1"])
    u2 = Unbound({"anchor": e["anchor"], "d": parent2}, child_port=child.port)
    r = u2.ask(FO, "A")
    expect(r.rcode() == dns.rcode.SERVFAIL, "a wrong DS still validated: %s" % r)


@test
def health_report_moves_the_answer_and_it_validates():
    """An agent's report (POST /v1/reports) takes the primary down: the
    failover answer changes and validates at once, and back."""
    need("delv")
    e = setup()
    t = tmpdir()
    db = os.path.join(t, "h.db")
    gslbctl(db, "init")
    gslbctl(db, "service", "add", FO, "--policy", "failover", "--ttl", "20")
    gslbctl(db, "endpoint", "add", FO, EU, "--priority", "10", "--check", "tcp://127.0.0.1:9")
    gslbctl(db, "endpoint", "add", FO, US, "--priority", "20", "--check", "tcp://127.0.0.1:9")
    tok = os.path.join(t, "token")
    with open(tok, "w") as f:
        f.write("dnssec-test-token\n")
    api_port = free_port()
    d = Dnsd(["--zone", e["ez"], "--zone", e["gz"], "--db", db, "--dnssec-keys", e["keys"],
              "--db-poll-ms", "100", "--api", "127.0.0.1:%d" % api_port,
              "--api-token-file", tok, "--threads", "2"])
    api = "http://127.0.0.1:%d" % api_port
    req = urllib.request.Request(api + "/v1/checks",
                                 headers={"Authorization": "Bearer dnssec-test-token"})
    with urllib.request.urlopen(req, timeout=5) as r:
        checks = json.loads(r.read())["checks"]
    eid = [c["id"] for c in checks if c["target"] == EU][0]

    def report(state):
        body = {"agent": "a1", "region": "eu", "lat": 50.0, "lon": 8.0,
                "results": [{"id": eid, "state": state, "ok": state == "up", "rtt_ms": None,
                             "ts": time.time(), "detail": "test"}]}
        rq = urllib.request.Request(api + "/v1/reports", data=json.dumps(body).encode(),
                                    headers={"Content-Type": "application/json",
                                             "Authorization": "Bearer dnssec-test-token"})
        with urllib.request.urlopen(rq, timeout=5) as r:
            expect(r.status == 200, r.read())

    def delv_d(name):
        p = subprocess.run(["delv", "-a", e["anchor_file"], "+root=example.com", "@127.0.0.1",
                            "-p", str(d.port), name, "A"], capture_output=True, text=True,
                           timeout=30)
        return p.stdout + p.stderr

    out = delv_d(FO)
    expect("; fully validated" in out and EU in out, out)
    report("down")
    expect(wait_for(lambda: answer_texts(d.udp(FO, "A")) == [US], timeout=5), "not moved")
    out = delv_d(FO)
    expect("; fully validated" in out and US in out and EU not in out, out)
    report("up")
    expect(wait_for(lambda: answer_texts(d.udp(FO, "A")) == [EU], timeout=5), "not back")
    out = delv_d(FO)
    expect("; fully validated" in out and EU in out, out)


@test
def a_large_dnskey_set_truncates_over_udp_and_validates_over_tcp():
    """Six more ZSKs pre-published (active in a day): the DNSKEY RRset and its
    RRSIG no longer fit 512 octets (TC, empty sections), fit 1232, and the
    new keys sign nothing yet."""
    e = setup()
    keys = os.path.join(tmpdir(), "keys")
    shutil.copytree(e["keys"], keys)
    now = int(time.time())
    extra = []
    for _ in range(6):
        b = keygen(keys, "example.com")
        set_timing(keys, b, Publish=now - 60, Activate=now + 86400)
        extra.append(key_tag(b))
    d = Dnsd(["--zone", e["ez"], "--zone", e["gz"], "--dnssec-keys", keys, "--threads", "1"])
    q = dns.message.make_query("example.com.", "DNSKEY", use_edns=0, payload=512,
                               want_dnssec=True)
    r = d.udp(None, query=q)
    expect(r.flags & dns.flags.TC and not r.answer and not r.authority, r)
    q = dns.message.make_query("example.com.", "DNSKEY", use_edns=0, payload=1232,
                               want_dnssec=True)
    r = d.udp(None, query=q)
    expect(not (r.flags & dns.flags.TC) and len(r.answer[0]) == 8, r)
    r = d.tcp(None, query=q)
    ks = [rs for rs in r.answer if rs.rdtype == dns.rdatatype.DNSKEY][0]
    sig = [rs for rs in r.answer if rs.rdtype == dns.rdatatype.RRSIG][0]
    dns.dnssec.validate(ks, sig, {EX: ks})
    expect([rd.key_tag for rd in sig] == [key_tag(e["ksk"])], sig)
    expect(sig_tags(d, "www.example.com.", "A") == [key_tag(e["zsk"])], "pre-published key signs")
    expect(sorted(dnskey_tags(d)) == sorted(extra + [key_tag(e["zsk"]), key_tag(e["ksk"])]),
           dnskey_tags(d))


class Unbound(Proc):
    """unbound on a free loopback port, stub to dnsd, example.com's KSK as
    its trust anchor."""

    def __init__(self, e, anchors=None, child_port=None):
        self.port = free_port()
        d = tmpdir()
        conf = os.path.join(d, "unbound.conf")
        ta = "".join('  trust-anchor: "%s"\n' % a for a in (anchors or [e["anchor"]]))
        with open(conf, "w") as f:
            f.write("""server:
  interface: 127.0.0.1
  port: %d
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "%s"
  pidfile: ""
  use-syslog: no
  logfile: ""
  verbosity: 1
  val-log-level: 2
  num-threads: 1
  do-ip6: no
  do-not-query-localhost: no
  access-control: 127.0.0.0/8 allow
  module-config: "validator iterator"
  qname-minimisation: no
  cache-max-ttl: 60
  auto-trust-anchor-file: ""
%s
stub-zone:
  name: "example.com."
  stub-addr: 127.0.0.1@%d
stub-zone:
  name: "gslb.example.com."
  stub-addr: 127.0.0.1@%d
""" % (self.port, d, ta, e["d"].port, child_port or e["d"].port))
        super().__init__(["unbound", "-d", "-c", conf])
        q = dns.message.make_query("www.example.com.", "A")
        ok = wait_for(lambda: self._try(q), timeout=10)
        if not ok:
            raise AssertionError("unbound did not start: %s" % self.output())

    def _try(self, q):
        try:
            dns.query.udp(q, "127.0.0.1", port=self.port, timeout=0.5)
            return True
        except Exception:
            return False

    def ask(self, name, qtype):
        q = dns.message.make_query(name, qtype, want_dnssec=True)
        q.flags |= dns.flags.AD
        return dns.query.udp(q, "127.0.0.1", port=self.port, timeout=5)


if __name__ == "__main__":
    run()
