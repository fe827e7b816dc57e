#!/usr/bin/python3
"""Authoritative DNS semantics of bin/dnsd, checked with dnspython over real
UDP and TCP on loopback: RFC 1034 4.3.2, RFC 2308, RFC 4592, RFC 6604,
RFC 6891, RFC 7766, RFC 8482, and malformed input."""
import os
import socket
import struct
import time

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from gslbtest import (Dnsd, FIXTURES, ZONES, free_port, make_query, rrset_texts,
                      run, test, tmpdir)

EXAMPLE_COM = os.path.join(ZONES, "example.com.zone")
GSLB_ZONE = os.path.join(ZONES, "gslb.example.com.zone")
EXAMPLE_ORG = os.path.join(FIXTURES, "zones", "example.org.zone")

_server = None


def server():
    """One shared dnsd for the read-only tests (two zones + a nested one)."""
    global _server
    if _server is None or not _server.alive():
        _server = Dnsd(["--zone", EXAMPLE_COM, "--zone", GSLB_ZONE, "--zone", EXAMPLE_ORG,
                        "--nsid", "test-node-1", "--threads", "2"])
    return _server


def both(qname, qtype="A", **kw):
    """The same query over UDP and TCP; both answers must agree."""
    s = server()
    u = s.udp(qname, qtype, **kw)
    t = s.tcp(qname, qtype, **kw)
    assert u.rcode() == t.rcode(), (u, t)
    assert rrset_texts(u.answer) == rrset_texts(t.answer)
    return u


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


@test
def positive_answer_aa_and_types():
    r = both("www.example.com.", "A")
    expect(r.rcode() == dns.rcode.NOERROR, r)
    expect(r.flags & dns.flags.AA, "AA not set")
    expect(not r.flags & dns.flags.RA, "RA set")
    expect(rrset_texts(r.answer) == ["www.example.com. 3600 A 192.0.2.80",
                                     "www.example.com. 3600 A 192.0.2.81"], r)
    for qtype, want in [("AAAA", "2001:db8::80")]:
        r = both("www.example.com.", qtype)
        expect([rd.to_text() for rs in r.answer for rd in rs] == [want], r)
    # every type in the zone is answered, unknown ones included
    for qtype in ["HINFO", "SSHFP", "CAA", "NAPTR", "LOC", "PTR", "SPF", "TYPE65280"]:
        r = both("types.example.org.", qtype)
        expect(r.rcode() == dns.rcode.NOERROR and len(r.answer) == 1 and
               r.answer[0].rdtype == dns.rdatatype.from_text(qtype), (qtype, r))
    r = both("example.com.", "TXT")
    expect(rrset_texts(r.answer) == ['example.com. 3600 TXT "v=spf1 mx -all"'], r)


@test
def query_name_case_kept():
    r = server().udp("WwW.ExAmPlE.CoM.", "A")
    expect(r.question[0].name.to_text() == "WwW.ExAmPlE.CoM.", r.question)
    expect(r.answer[0].name.to_text() == "WwW.ExAmPlE.CoM.", r.answer)
    # the raw bytes too, not just a case-insensitive compare
    raw = raw_udp(make_query("WwW.ExAmPlE.CoM.", "A").to_wire())
    expect(b"\x03WwW\x07ExAmPlE\x03CoM\x00" in raw, raw)


@test
def nxdomain_with_soa_and_negative_ttl():
    r = both("nothere.example.com.", "A")
    expect(r.rcode() == dns.rcode.NXDOMAIN, r)
    expect(r.flags & dns.flags.AA, "AA")
    expect(len(r.answer) == 0 and len(r.authority) == 1, r)
    soa = r.authority[0]
    expect(soa.rdtype == dns.rdatatype.SOA and soa.name.to_text() == "example.com.", soa)
    # RFC 2308: min(SOA TTL 3600, MINIMUM 300)
    expect(soa.ttl == 300, soa.ttl)
    r = both("nothere.example.org.", "A")
    expect(r.authority[0].ttl == 600, "min(600, 900) expected, got %d" % r.authority[0].ttl)


@test
def nodata_and_empty_non_terminals():
    r = both("www.example.com.", "MX")
    expect(r.rcode() == dns.rcode.NOERROR and not r.answer, r)
    expect(r.authority[0].rdtype == dns.rdatatype.SOA, r)
    for ent in ["b.c.example.com.", "c.example.com.", "y.z.deep.example.org.", "deep.example.org."]:
        r = both(ent, "A")
        expect(r.rcode() == dns.rcode.NOERROR and not r.answer and
               r.authority[0].rdtype == dns.rdatatype.SOA, (ent, r))
    r = both("a.b.c.example.com.", "TXT")
    expect(len(r.answer) == 1, r)


@test
def wildcards_and_their_limits():
    r = both("anything.wild.example.com.", "A")
    expect(rrset_texts(r.answer) == ["anything.wild.example.com. 3600 A 192.0.2.99"], r)
    r = both("deeper.name.wild.example.com.", "TXT")
    expect(rrset_texts(r.answer) == ['deeper.name.wild.example.com. 3600 TXT "synthesized"'], r)
    # wildcard exists but not this type: NODATA
    r = both("anything.wild.example.com.", "MX")
    expect(r.rcode() == dns.rcode.NOERROR and not r.answer and r.authority, r)
    # no synthesis at an existing name
    r = both("exists.wild.example.com.", "A")
    expect(r.rcode() == dns.rcode.NOERROR and not r.answer, r)
    # ... nor below it (the closest encloser is exists.wild, which has no *)
    r = both("below.exists.wild.example.com.", "A")
    expect(r.rcode() == dns.rcode.NXDOMAIN, r)
    # the wildcard owner itself answers as a normal name
    r = both("*.wild.example.com.", "A")
    expect(len(r.answer) == 1, r)
    # wildcard CNAME is chased
    r = both("x.wcname.example.com.", "A")
    expect(rrset_texts(r.answer) == ["www.example.com. 3600 A 192.0.2.80",
                                     "www.example.com. 3600 A 192.0.2.81",
                                     "x.wcname.example.com. 3600 CNAME www.example.com."], r)


@test
def cname_chains():
    r = both("alias.example.com.", "A")
    expect(rrset_texts(r.answer) == ["alias.example.com. 3600 CNAME ftp.example.com.",
                                     "ftp.example.com. 3600 CNAME www.example.com.",
                                     "www.example.com. 3600 A 192.0.2.80",
                                     "www.example.com. 3600 A 192.0.2.81"], r)
    expect(r.rcode() == dns.rcode.NOERROR, r)
    # the CNAME itself when asked for it
    r = both("alias.example.com.", "CNAME")
    expect(rrset_texts(r.answer) == ["alias.example.com. 3600 CNAME ftp.example.com."], r)
    # dangling inside our zone: NXDOMAIN with the CNAME (RFC 6604)
    r = both("dangling.example.com.", "A")
    expect(r.rcode() == dns.rcode.NXDOMAIN, r)
    expect(rrset_texts(r.answer) == ["dangling.example.com. 3600 CNAME nothere.example.com."], r)
    expect(r.authority[0].rdtype == dns.rdatatype.SOA, r)
    # leaving our zones: NOERROR with the CNAME only
    r = both("outside.example.com.", "A")
    expect(r.rcode() == dns.rcode.NOERROR and len(r.answer) == 1, r)
    # chain ending at NODATA
    r = both("ftp.example.com.", "MX")
    expect(r.rcode() == dns.rcode.NOERROR and len(r.answer) == 1 and r.authority, r)


@test
def referrals_and_ds():
    for qname in ["sub.example.com.", "host.sub.example.com.", "a.b.sub.example.com."]:
        r = both(qname, "A")
        expect(r.rcode() == dns.rcode.NOERROR, r)
        expect(not r.flags & dns.flags.AA, "AA set on a referral")
        expect(not r.answer, r)
        expect(rrset_texts(r.authority) == ["sub.example.com. 3600 NS ns.elsewhere.net.",
                                            "sub.example.com. 3600 NS ns1.sub.example.com."], r)
        expect(rrset_texts(r.additional) == ["ns1.sub.example.com. 3600 A 192.0.2.153",
                                             "ns1.sub.example.com. 3600 AAAA 2001:db8::153"], r)
    # glue itself is never an authoritative answer
    r = both("ns1.sub.example.com.", "A")
    expect(not r.flags & dns.flags.AA and not r.answer and r.authority, r)
    # DS is answered by the parent, authoritatively
    r = both("sub.example.com.", "DS")
    expect(r.flags & dns.flags.AA and len(r.answer) == 1 and
           r.answer[0].rdtype == dns.rdatatype.DS, r)


@test
def nested_zone_served_too():
    # gslb.example.com is delegated in example.com and served from its own file
    r = both("static.gslb.example.com.", "A")
    expect(r.flags & dns.flags.AA and rrset_texts(r.answer) ==
           ["static.gslb.example.com. 300 A 192.0.2.200"], r)
    r = both("gslb.example.com.", "SOA")
    expect(r.flags & dns.flags.AA and r.answer[0].rdtype == dns.rdatatype.SOA, r)
    r = both("nope.gslb.example.com.", "A")
    expect(r.rcode() == dns.rcode.NXDOMAIN and
           r.authority[0].name.to_text() == "gslb.example.com.", r)
    # DS belongs to the parent side of the cut, even though we serve both
    r = both("gslb.example.com.", "DS")
    expect(r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA and not r.answer and
           r.authority[0].name.to_text() == "example.com.", r)
    r = both("gslb.example.com.", "NS")
    expect(r.flags & dns.flags.AA and len(r.answer) == 1 and
           r.answer[0].rdtype == dns.rdatatype.NS, r)


@test
def additional_for_ns_mx_srv():
    r = both("example.com.", "NS")
    add = rrset_texts(r.additional)
    expect("ns1.example.com. 3600 A 192.0.2.53" in add and
           "ns1.example.com. 3600 AAAA 2001:db8::53" in add and
           "ns2.example.com. 3600 A 198.51.100.53" in add, add)
    r = both("example.com.", "MX")
    expect(rrset_texts(r.additional) == ["mail.example.com. 3600 A 192.0.2.25"], r)
    r = both("_sip._udp.example.com.", "SRV")
    expect(rrset_texts(r.additional) == ["sip.example.com. 3600 A 192.0.2.60"], r)


@test
def any_is_minimal():
    r = both("example.com.", "ANY")
    expect(r.rcode() == dns.rcode.NOERROR and len(r.answer) == 1, r)
    r = both("nothere.example.com.", "ANY")
    expect(r.rcode() == dns.rcode.NXDOMAIN, r)


@test
def refused_outside_our_zones():
    for qname in ["www.example.net.", "com.", ".", "example.com.evil.org."]:
        r = both(qname, "A")
        expect(r.rcode() == dns.rcode.REFUSED and not r.flags & dns.flags.AA, (qname, r))


@test
def edns_behaviour():
    s = server()
    r = s.udp("www.example.com.", "A")                 # no EDNS in the query
    expect(r.edns < 0 and not r.options, "OPT without EDNS query")
    r = s.udp("www.example.com.", "A", use_edns=0, payload=4096)
    expect(r.edns == 0 and r.payload == 1232, (r.edns, r.payload))
    r = s.udp("www.example.com.", "A", use_edns=0, want_dnssec=True)
    expect(r.ednsflags & dns.flags.DO, "DO not copied")
    r = s.udp("www.example.com.", "A", use_edns=0)
    expect(not r.ednsflags & dns.flags.DO, "DO set without DO")
    q = make_query("www.example.com.", "A")
    q.use_edns(edns=1)
    r = s.udp(None, query=q)
    expect(r.rcode() == dns.rcode.BADVERS and r.edns == 0 and not r.answer, r)
    r = s.udp("www.example.com.", "A", use_edns=0,
              options=[dns.edns.GenericOption(65001, b"hello")])
    expect(r.rcode() == dns.rcode.NOERROR and len(r.answer) == 1, "unknown option not ignored")
    r = s.udp("www.example.com.", "A", use_edns=0, options=[dns.edns.GenericOption(3, b"")])
    nsid = [o for o in r.options if o.otype == 3]
    expect(nsid and nsid[0].to_wire() == b"test-node-1", r.options)
    # two OPT records: FORMERR
    q = make_query("www.example.com.", "A", use_edns=0).to_wire()
    q = q[:10] + struct.pack("!H", 2) + q[12:] + q[-11:]
    r = dns.message.from_wire(raw_udp(q), ignore_trailing=True)
    expect(r.rcode() == dns.rcode.FORMERR, r)


@test
def udp_size_and_truncation():
    s = server()
    # 40 TXT records of ~100 octets: 4 KB, too big for 512 and for 1232
    r = s.udp("big.example.org.", "TXT")
    expect(r.flags & dns.flags.TC and not r.answer, "no TC at 512")
    r = s.udp("big.example.org.", "TXT", use_edns=0, payload=4096)
    expect(r.flags & dns.flags.TC, "TC expected above our maximum 1232")
    r = s.tcp("big.example.org.", "TXT")
    expect(not r.flags & dns.flags.TC and len(r.answer[0]) == 40, r)
    # 20 A records: 20*16+... = ~350 octets fit in 512
    r = s.udp("many.example.org.", "A")
    expect(not r.flags & dns.flags.TC and len(r.answer[0]) == 20, r)
    # below 512 is treated as 512
    r = s.udp("many.example.org.", "A", use_edns=0, payload=100)
    expect(not r.flags & dns.flags.TC and len(r.answer[0]) == 20, r)
    # the client's size is honoured up to our max
    wire = raw_udp(make_query("big.example.org.", "TXT", use_edns=0, payload=1000).to_wire())
    expect(len(wire) <= 1000, len(wire))


@test
def tcp_pipelining_and_split_messages():
    s = server()
    names = ["www.example.com.", "mail.example.com.", "nothere.example.com.", "sip.example.com."]
    msgs = []
    for i, n in enumerate(names):
        q = make_query(n, "A")
        q.id = 1000 + i
        w = q.to_wire()
        msgs.append(struct.pack("!H", len(w)) + w)
    with socket.create_connection((s.host, s.port), timeout=3) as c:
        c.sendall(b"".join(msgs))                     # several per segment
        got = read_tcp_answers(c, len(names))
        expect(sorted(m.id for m in got) == [1000, 1001, 1002, 1003], [m.id for m in got])
        # one message split byte by byte across segments
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for b in msgs[0]:
            c.sendall(bytes([b]))
            time.sleep(0.002)
        got = read_tcp_answers(c, 1)
        expect(got[0].id == 1000 and len(got[0].answer) == 1, got)


@test
def tcp_idle_timeout_and_client_cap():
    d = Dnsd(["--zone", EXAMPLE_COM, "--threads", "1", "--tcp-idle-timeout", "1",
              "--tcp-max-clients", "3"])
    idle = socket.create_connection((d.host, d.port), timeout=5)
    t0 = time.monotonic()
    expect(idle.recv(10) == b"", "idle connection not closed")
    expect(time.monotonic() - t0 < 3, "idle timeout too slow")
    idle.close()
    # cap: three idle clients, a fourth arrives: the oldest is closed
    conns = []
    for _ in range(3):
        conns.append(socket.create_connection((d.host, d.port), timeout=5))
        time.sleep(0.05)
    r = d.tcp("www.example.com.", "A")
    expect(len(r.answer) == 1, r)
    conns[0].settimeout(2)
    expect(conns[0].recv(10) == b"", "longest-idle connection kept open")
    for c in conns:
        c.close()
    # garbage (a length below a header) closes the connection at once
    with socket.create_connection((d.host, d.port), timeout=3) as c:
        c.sendall(b"\x00\x03abc")
        expect(c.recv(10) == b"", "garbage not closed")
    # a stalled half message never blocks other clients
    with socket.create_connection((d.host, d.port), timeout=3) as c:
        c.sendall(b"\x00\x40\x12")
        r = d.tcp("www.example.com.", "A")
        expect(len(r.answer) == 1, r)
    d.stop()


def raw_udp(data, s=None, timeout=1.0, expect_reply=True):
    s = s or server()
    fam = socket.AF_INET6 if ":" in s.host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_DGRAM) as u:
        u.settimeout(timeout)
        u.sendto(data, (s.host, s.port))
        try:
            return u.recv(65535)
        except socket.timeout:
            if expect_reply:
                raise
            return None


def read_tcp_answers(c, n):
    buf = b""
    out = []
    deadline = time.monotonic() + 3
    while len(out) < n and time.monotonic() < deadline:
        chunk = c.recv(65535)
        if not chunk:
            break
        buf += chunk
        while len(buf) >= 2 and len(buf) >= 2 + struct.unpack("!H", buf[:2])[0]:
            ln = struct.unpack("!H", buf[:2])[0]
            out.append(dns.message.from_wire(buf[2:2 + ln]))
            buf = buf[2 + ln:]
    return out


def header(id=0x1234, flags=0, qd=1, an=0, ns=0, ar=0):
    return struct.pack("!HHHHHH", id, flags, qd, an, ns, ar)


QWWW = b"\x03www\x07example\x03com\x00" + struct.pack("!HH", 1, 1)


def rcode_of(wire):
    return wire[3] & 0x0f


@test
def malformed_input():
    s = server()
    cases = [
        # (name, packet, expected rcode or None for "dropped")
        ("empty", b"", None),
        ("short header", b"\x12\x34\x01", None),
        ("header only, qd=1", header(), dns.rcode.FORMERR),
        ("qdcount 0", header(qd=0), dns.rcode.FORMERR),
        ("qdcount 2", header(qd=2) + QWWW + QWWW, dns.rcode.FORMERR),
        ("truncated question", header() + QWWW[:-3], dns.rcode.FORMERR),
        ("label over 63", header() + b"\x40" + b"a" * 64 + b"\x00\x00\x01\x00\x01", dns.rcode.FORMERR),
        ("name over 255", header() + (b"\x3f" + b"a" * 63) * 4 + b"\x00\x00\x01\x00\x01", dns.rcode.FORMERR),
        ("pointer in question", header() + b"\xc0\x0c\x00\x01\x00\x01", dns.rcode.FORMERR),
        ("lying ancount", header(an=5) + QWWW, dns.rcode.FORMERR),
        ("lying arcount", header(ar=65535) + QWWW, dns.rcode.FORMERR),
        ("compression loop in a record", header(an=1) + QWWW + b"\xc0\x21\x00\x01\x00\x01\x00\x00\x00\x00\x00\x00", dns.rcode.FORMERR),
        ("forward pointer", header(an=1) + QWWW + b"\xc0\x40\x00\x01\x00\x01\x00\x00\x00\x00\x00\x00", dns.rcode.FORMERR),
        ("record overruns", header(an=1) + QWWW + b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x00\x00\x10ab", dns.rcode.FORMERR),
        ("OPT not root", header(ar=1) + QWWW + b"\x01a\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00", dns.rcode.FORMERR),
        ("OPT option overruns", header(ar=1) + QWWW + b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x04\x00\x08\x00\x10", dns.rcode.FORMERR),
        ("OPT in answer section", header(an=1) + QWWW + b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00", dns.rcode.FORMERR),
        ("QR=1 is never answered", header(flags=0x8000) + QWWW, None),
        ("unknown opcode", header(flags=(3 << 11)) + QWWW, dns.rcode.NOTIMP),
        ("NOTIFY opcode", header(flags=(4 << 11)) + QWWW, dns.rcode.NOTIMP),
        ("class 0", header() + QWWW[:-2] + b"\x00\x00", dns.rcode.REFUSED),
        ("class ANY", header() + QWWW[:-2] + b"\x00\xff", dns.rcode.REFUSED),
        ("class 65535", header() + QWWW[:-2] + b"\xff\xff", dns.rcode.REFUSED),
        ("class CH", header() + QWWW[:-2] + b"\x00\x03", dns.rcode.REFUSED),
        ("type 0", header() + QWWW[:-4] + b"\x00\x00\x00\x01", dns.rcode.NOERROR),
        ("type 65535", header() + QWWW[:-4] + b"\xff\xff\x00\x01", dns.rcode.NOERROR),
        ("type OPT", header() + QWWW[:-4] + b"\x00\x29\x00\x01", dns.rcode.FORMERR),
        ("AXFR over UDP", header() + QWWW[:-4] + b"\x00\xfc\x00\x01", dns.rcode.REFUSED),
        ("stuffed with records", header(an=3, ns=3, ar=3) + QWWW +
         (b"\xc0\x0c\x00\x10\x00\x01\x00\x00\x00\x00\x00\x04abcd") * 9, dns.rcode.NOERROR),
        ("trailing garbage", header() + QWWW + b"\xde\xad\xbe\xef", dns.rcode.NOERROR),
    ]
    for name, pkt, want in cases:
        got = raw_udp(pkt, s, timeout=0.5, expect_reply=want is not None)
        if want is None:
            expect(got is None, "%s: answered %r" % (name, got))
            continue
        expect(got is not None and len(got) >= 12, "%s: no answer" % name)
        expect(got[:2] == pkt[:2], "%s: id not echoed" % name)
        expect(got[2] & 0x80, "%s: QR not set" % name)
        expect(rcode_of(got) == want, "%s: rcode %d, want %d" % (name, rcode_of(got), want))
    # and it still answers normally afterwards
    r = s.udp("www.example.com.", "A")
    expect(len(r.answer) == 1, r)


@test
def ipv6_and_several_listen_addresses():
    port = free_port()
    port6 = free_port(socket.AF_INET6, "::1")
    d = Dnsd(["--zone", EXAMPLE_COM, "--zone", EXAMPLE_ORG,
              "--listen", "127.0.0.1:%d" % port, "--listen", "[::1]:%d" % port6,
              "--listen", "127.0.0.2:%d" % port], port=port)
    for host, p in [("127.0.0.1", port), ("::1", port6), ("127.0.0.2", port)]:
        q = make_query("www.example.com.", "AAAA")
        for r in (dns.query.udp(q, host, port=p, timeout=2), dns.query.tcp(q, host, port=p, timeout=2)):
            expect([rd.to_text() for rs in r.answer for rd in rs] == ["2001:db8::80"], (host, r))
        r = dns.query.udp(make_query("small.example.org.", "A"), host, port=p, timeout=2)
        expect(len(r.answer) == 1, (host, r))
    d.stop()


@test
def sighup_reload_swaps_and_broken_zone_keeps_old():
    d_dir = tmpdir()
    zf = os.path.join(d_dir, "reload.test.zone")
    def write(serial, addr, broken=False):
        with open(zf + ".tmp", "w") as f:
            f.write("$ORIGIN reload.test.\n$TTL 60\n@ SOA ns admin %d 1 1 1 60\n@ NS ns\n" % serial)
            f.write("ns A 192.0.2.1\nwww A %s\n" % addr)
            if broken:
                f.write("bad A not-an-address\n")
        os.rename(zf + ".tmp", zf)
    write(1, "192.0.2.10")
    d = Dnsd(["--zone", zf])
    expect(d.udp("www.reload.test.").answer[0][0].to_text() == "192.0.2.10", "initial")
    write(2, "192.0.2.20")
    d.signal(1)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if d.udp("www.reload.test.").answer[0][0].to_text() == "192.0.2.20":
            break
        time.sleep(0.05)
    expect(d.udp("www.reload.test.").answer[0][0].to_text() == "192.0.2.20", "reload not applied")
    write(3, "192.0.2.30", broken=True)
    d.signal(1)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and "reload.test.zone:7" not in d.output():
        time.sleep(0.05)
    expect("reload.test.zone:7:" in d.output(), d.output())
    expect(d.udp("www.reload.test.").answer[0][0].to_text() == "192.0.2.20", "old zone not kept")
    expect(d.alive(), "died on a broken zone")
    rc = d.stop()
    expect(rc == 0, "exit status %s after SIGTERM" % rc)


@test
def check_mode_reports_file_and_line():
    import subprocess
    from gslbtest import BIN
    dnsd = os.path.join(BIN, "dnsd")
    p = subprocess.run([dnsd, "--check", "--zone", EXAMPLE_COM, "--zone", GSLB_ZONE],
                       capture_output=True, text=True, timeout=30)
    expect(p.returncode == 0, p.stderr)
    broken = os.path.join(FIXTURES, "zones", "broken.zone")
    p = subprocess.run([dnsd, "--check", "--zone", broken], capture_output=True, text=True, timeout=30)
    expect(p.returncode != 0 and "broken.zone:6:" in p.stderr, p.stderr)
    d = tmpdir()
    conf = os.path.join(d, "dnsd.conf")
    with open(conf, "w") as f:
        f.write("# a config\nlisten 127.0.0.1:5300\nzone %s\nthreds 2\nmax-udp-size 70000\n" % EXAMPLE_COM)
    p = subprocess.run([dnsd, "--check", "--config", conf], capture_output=True, text=True, timeout=30)
    expect(p.returncode != 0, p.stderr)
    expect("dnsd.conf:4: unknown option 'threds' (did you mean 'threads'?)" in p.stderr, p.stderr)
    expect("dnsd.conf:5: max-udp-size:" in p.stderr, p.stderr)
    p = subprocess.run([dnsd, "--check", "--zone", EXAMPLE_COM, "--bogus", "1"],
                       capture_output=True, text=True, timeout=30)
    expect(p.returncode != 0 and "bogus" in p.stderr, p.stderr)


@test
def check_mode_finds_what_would_stop_the_start():
    """dnsd --check fails, naming the option, on what dnsd would refuse to
    start with: an API without a credential, a credentials file that is not
    there, a bad API address, a certificate without its key or one that
    does not load; and each of those starts fails the same way."""
    import subprocess
    from gslbtest import BIN
    dnsd = os.path.join(BIN, "dnsd")
    d = tmpdir()
    tok = os.path.join(d, "tokens")
    with open(tok, "w") as f:
        f.write("admin op check-mode-token-0123456789\n")
    os.chmod(tok, 0o600)
    junk = os.path.join(d, "junk.pem")
    with open(junk, "w") as f:
        f.write("not a certificate\n")
    api = "127.0.0.1:%d" % free_port()
    cases = [
        (["--api", api], "--api needs --api-tokens"),
        (["--api", api, "--api-tokens", os.path.join(d, "missing")], "missing"),
        (["--api", "nonsense", "--api-tokens", tok], "listen address 'nonsense'"),
        (["--api", api, "--api-tokens", tok, "--api-tls-cert", junk],
         "api-tls-cert and api-tls-key come together"),
        (["--api", api, "--api-tokens", tok, "--api-tls-cert", junk,
          "--api-tls-key", junk], "certificate %s" % junk),
    ]
    for extra, why in cases:
        p = subprocess.run([dnsd, "--check", "--zone", EXAMPLE_COM] + extra,
                           capture_output=True, text=True, timeout=30)
        expect(p.returncode != 0 and why in p.stderr,
               "--check %s: rc %d, %s" % (extra, p.returncode, p.stderr))
        p = subprocess.run([dnsd, "--zone", EXAMPLE_COM, "--listen",
                            "127.0.0.1:%d" % free_port()] + extra,
                           capture_output=True, text=True, timeout=30)
        expect(p.returncode != 0 and why in p.stderr,
               "start %s: rc %d, %s" % (extra, p.returncode, p.stderr))
    p = subprocess.run([dnsd, "--check", "--zone", EXAMPLE_COM, "--api", api,
                        "--api-tokens", tok], capture_output=True, text=True, timeout=30)
    expect(p.returncode == 0, p.stderr)


@test
def config_file_and_flags_win():
    d = tmpdir()
    conf = os.path.join(d, "dnsd.conf")
    port = free_port()
    with open(conf, "w") as f:
        f.write("listen 127.0.0.1:%d\nzone %s\nnsid from-file\n" % (port, EXAMPLE_COM))
    s = Dnsd(["--config", conf, "--nsid", "from-flag"], port=port)
    r = s.udp("www.example.com.", "A", use_edns=0, options=[dns.edns.GenericOption(3, b"")])
    nsid = [o for o in r.options if o.otype == 3]
    expect(nsid and nsid[0].to_wire() == b"from-flag", r.options)
    s.stop()


if __name__ == "__main__":
    run()
