#!/usr/bin/python3
"""Writes the seed corpus for the packet fuzz target: well-formed queries for
the example zones (every kind of answer), EDNS/ECS/NSID variants, and the
malformed packets of tests/integration/test_dns.py. Deterministic; rerun it
after changing the cases: tests/fuzz/make_seeds.py tests/fuzz/corpus/packet"""
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


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "packet")
    os.makedirs(out, exist_ok=True)
    n = 0
    for s in seeds():
        with open(os.path.join(out, "seed-" + hashlib.sha1(s).hexdigest()[:16]), "wb") as f:
            f.write(s)
        n += 1
    print("%d seeds in %s" % (n, out))


if __name__ == "__main__":
    main()
