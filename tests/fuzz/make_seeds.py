#!/usr/bin/python3
"""Writes the seed corpora of two fuzz targets. packet: well-formed queries
for the example zones (every kind of answer), EDNS/ECS/NSID variants, and
the malformed packets of tests/integration/test_dns.py. xdp: Ethernet frames
as dnsd's AF_XDP mode receives them, IPv4 and IPv6 UDP carrying real queries
(A, AAAA, EDNS, ECS, NSID, the malformed ones), and frames it must drop
(cut short, other ethertypes, IP options, fragments, bad checksums or
lengths, UDP port 0, IPv6 extension headers). Rerun it after changing
the cases: tests/fuzz/make_seeds.py [--xdp] [DIR] (default
tests/fuzz/corpus/packet, with --xdp tests/fuzz/corpus/xdp). The xdp seeds
are deterministic (fixed message IDs); the packet queries get random IDs
from dnspython, so a rerun adds files next to the committed ones."""
import hashlib
import os
import struct
import sys

import dns.edns
import dns.message

names = ["www.example.com.", "example.com.", "alias.example.com.", "dangling.example.com.",
         "outside.example.com.", "nothere.example.com.", "x.wild.example.com.",
         "exists.wild.example.com.", "a.x.wcname.example.com.", "sub.example.com.",
         "deep.in.sub.example.com.", "ns1.sub.example.com.", "b.c.example.com.",
         "_sip._udp.example.com.", "static.gslb.example.com.", "www.gslb.example.com.",
         "big.example.org.", "many.example.org.", "types.example.org.", "www.example.net.", "."]
types = ["A", "AAAA", "MX", "NS", "SOA", "TXT", "CNAME", "DS", "ANY", "SRV", "TYPE65280"]


def seeds():
    for n in names:
        for t in types:
            yield dns.message.make_query(n, t).to_wire()
    for n in names[:8]:
        yield dns.message.make_query(n, "A", use_edns=0, payload=4096, want_dnssec=True).to_wire()
        yield dns.message.make_query(n, "A", use_edns=0, options=[dns.edns.GenericOption(3, b"")]).to_wire()
        yield dns.message.make_query(n, "A", use_edns=0, options=[
            dns.edns.ECSOption("192.0.2.0", 24)]).to_wire()
        yield dns.message.make_query(n, "AAAA", use_edns=0, options=[
            dns.edns.ECSOption("2001:db8::", 56)]).to_wire()
    hdr = lambda flags=0, qd=1, an=0, ns=0, ar=0: struct.pack("!HHHHHH", 0x1234, flags, qd, an, ns, ar)
    q = b"\x03www\x07example\x03com\x00\x00\x01\x00\x01"
    yield from [b"", b"\x12", hdr(), hdr(qd=2) + q + q, hdr(an=5) + q, hdr(ar=1) + q +
                b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x04\x00\x08\x00\x10",
                hdr(an=1) + q + b"\xc0\x21\x00\x01\x00\x01\x00\x00\x00\x00\x00\x00",
                hdr(an=1) + q + b"\xc0\x40\x00\x01\x00\x01\x00\x00\x00\x00\x00\x00",
                hdr(flags=0x8000) + q, hdr(flags=3 << 11) + q, hdr() + b"\x40" + b"a" * 64 + b"\x00\x00\x01\x00\x01",
                hdr(ar=2) + q + b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00" * 2,
                hdr(ar=1) + q + b"\x00\x00\x29\x04\xd0\x00\x01\x00\x00\x00\x00",
                hdr(ar=1) + q + b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x0c\x00\x08\x00\x08\x00\x03\x19\x00\xc0\x00\x02\x01"]


def csum(b):
    """RFC 1071 checksum of b (complemented)."""
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


CLIENT4, SERVER4 = bytes([192, 0, 2, 1]), bytes([198, 51, 100, 53])
CLIENT6 = bytes.fromhex("20010db8000000000000000000000001")
SERVER6 = bytes.fromhex("20010db8000000000000000000000053")
ETH = bytes.fromhex("020000000001") + bytes.fromhex("020000000002")


def udp(src, dst, sport, dport, payload, ulen=None):
    """A UDP header and payload with the checksum over the pseudo-header
    of src/dst (4 or 16 octets)."""
    ulen = 8 + len(payload) if ulen is None else ulen
    if len(src) == 4:
        pseudo = src + dst + struct.pack("!BBH", 0, 17, 8 + len(payload))
    else:
        pseudo = src + dst + struct.pack("!IxxxB", 8 + len(payload), 17)
    h = struct.pack("!HHHH", sport, dport, ulen, 0)
    c = csum(pseudo + h + payload) or 0xffff
    return struct.pack("!HHHH", sport, dport, ulen, c) + payload


def frame4(payload, sport=40000, dport=53, ihl=5, proto=17, frag=0x4000, tot=None, ulen=None,
           bad_csum=False, pad=0, ethertype=0x0800):
    body = udp(CLIENT4, SERVER4, sport, dport, payload, ulen)
    opts = b"\x01" * (4 * ihl - 20)
    tot = 20 + len(opts) + len(body) if tot is None else tot
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, tot, 0x1234, frag, 64, proto, 0,
                    CLIENT4, SERVER4) + opts
    c = csum(h) ^ (1 if bad_csum else 0)
    h = h[:10] + struct.pack("!H", c) + h[12:]
    f = ETH + struct.pack("!H", ethertype) + h + body
    return f + b"\0" * max(0, pad - len(f))


def frame6(payload, sport=40000, dport=53, nh=17, ext=b"", pl=None, ulen=None, pad=0):
    body = ext + udp(CLIENT6, SERVER6, sport, dport, payload, ulen)
    pl = len(body) if pl is None else pl
    h = struct.pack("!IHBB16s16s", 0x600abcde, pl, nh, 64, CLIENT6, SERVER6)
    f = ETH + b"\x86\xdd" + h + body
    return f + b"\0" * max(0, pad - len(f))


def query(name, rdtype, **kw):
    m = dns.message.make_query(name, rdtype, **kw)
    m.id = 0x4242
    return m.to_wire()


def xdp_seeds():
    qs = [query(n, t) for n in names[:6] + names[14:17] for t in ("A", "AAAA")]
    qs += [query("www.gslb.example.com.", "A", use_edns=0, options=[
               dns.edns.ECSOption("192.0.2.0", 24)]),
           query("www.gslb.example.com.", "AAAA", use_edns=0, options=[
               dns.edns.ECSOption("2001:db8::", 56)]),
           query("big.example.org.", "TXT", use_edns=0, payload=4096),
           query("www.example.com.", "A", use_edns=0, options=[dns.edns.GenericOption(3, b"")]),
           query("many.example.org.", "A", use_edns=0, payload=1232, want_dnssec=True),
           query("www.example.com.", "A", use_edns=0, payload=4096,
                 options=[dns.edns.GenericOption(65001, b"\0" * 1400)])]
    for q in qs:
        yield frame4(q)
        yield frame6(q)
    q = query("www.example.com.", "A")
    # Malformed DNS in good frames, and a short one padded to 60 octets.
    for p in list(seeds())[-12:]:
        yield frame4(p, pad=60)
        yield frame6(p)
    yield frame4(b"\x12\x34" + b"\0" * 10, pad=60)
    # Frames to drop.
    good4, good6 = frame4(q), frame6(q)
    yield from [b"", good4[:13], good4[:14], good4[:33], good4[:41], good6[:53], good6[:61],
                good4[:-1], good6[:-1],
                frame4(q, ethertype=0x0806), frame4(q, ethertype=0x8100), frame4(q, ihl=6),
                frame4(q, proto=6), frame4(q, frag=0x2000), frame4(q, frag=0x0001),
                frame4(q, bad_csum=True), frame4(q, tot=20 + 8 + len(q) + 1),
                frame4(b"", tot=27, pad=60), frame4(q, ulen=7), frame4(q, ulen=8 + len(q) + 1),
                frame4(q, sport=0), frame4(q, dport=0), frame6(q, sport=0), frame6(q, dport=0),
                frame6(q, nh=0, ext=b"\x11\x00\x01\x04\x00\x00\x00\x00"),
                frame6(q, nh=6), frame6(q, pl=8 + len(q) + 1), frame6(q, ulen=7),
                frame6(q, ulen=8 + len(q) + 1, pad=200)]


def write(out, gen):
    os.makedirs(out, exist_ok=True)
    n = 0
    for s in gen:
        with open(os.path.join(out, "seed-" + hashlib.sha1(s).hexdigest()[:16]), "wb") as f:
            f.write(s)
        n += 1
    print("%d seeds in %s" % (n, out))


def main():
    args = sys.argv[1:]
    xdp = args[:1] == ["--xdp"]
    if xdp:
        args = args[1:]
    out = args[0] if args else os.path.join(os.path.dirname(__file__), "corpus",
                                            "xdp" if xdp else "packet")
    write(out, xdp_seeds() if xdp else seeds())


if __name__ == "__main__":
    main()
