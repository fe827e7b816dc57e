#!/usr/bin/python3
"""bench/geocompare.py - do two servers give the same answers to ECS queries?

  geocompare.py QUERYFILE PORT_A PORT_B [NAME_A NAME_B]

QUERYFILE has loadgen lines "name TYPE ADDR/LEN".  Each query is sent with
that EDNS Client Subnet option to 127.0.0.1:PORT_A and :PORT_B over UDP; the
sorted set of A/AAAA/CNAME answer records (type + data) of both replies is
compared.  Prints the number of queries, matches, mismatches and the first
few mismatches with both answers, then a "COMPARE total=N same=N differ=N
failed=N" line.  Exit 0 when every query was answered by both (mismatches are
reported, not fatal), 1 when a server did not answer, 2 on bad input.
"""
import ipaddress
import random
import socket
import struct
import sys

TYPES = {"A": 1, "AAAA": 28, "CNAME": 5}


def encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if not label or len(label) > 63:
            raise ValueError("bad name %r" % name)
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def build(qid, name, qtype, subnet):
    net = ipaddress.ip_network(subnet, strict=False)
    fam = 1 if net.version == 4 else 2
    nbytes = (net.prefixlen + 7) // 8
    data = struct.pack("!HBB", fam, net.prefixlen, 0) + \
        net.network_address.packed[:nbytes]
    opt = struct.pack("!HH", 8, len(data)) + data
    q = struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 1)
    q += encode_name(name) + struct.pack("!HH", qtype, 1)
    q += b"\0" + struct.pack("!HHIH", 41, 1232, 0, len(opt)) + opt
    return q


def skip_name(p, o):
    while True:
        n = p[o]
        if n == 0:
            return o + 1
        if n & 0xC0 == 0xC0:
            return o + 2
        o += 1 + n


def answers(p, qid):
    """Sorted (type, rdata) of the answer section, or None if not a reply."""
    if len(p) < 12:
        return None
    rid, flags, qd, an = struct.unpack("!HHHH", p[:8])
    if rid != qid or not flags & 0x8000:
        return None
    o = 12
    for _ in range(qd):
        o = skip_name(p, o) + 4
    out = []
    for _ in range(an):
        o = skip_name(p, o)
        t, _c, _ttl, rdlen = struct.unpack("!HHIH", p[o:o + 10])
        o += 10
        rd = p[o:o + rdlen]
        o += rdlen
        if t == 1:
            out.append("A " + socket.inet_ntop(socket.AF_INET, rd))
        elif t == 28:
            out.append("AAAA " + socket.inet_ntop(socket.AF_INET6, rd))
        else:
            out.append("TYPE%d %s" % (t, rd.hex()))
    rcode = flags & 15
    return (rcode, tuple(sorted(out)))


def ask(sock, port, q, qid):
    for _ in range(3):
        sock.sendto(q, ("127.0.0.1", port))
        sock.settimeout(1.0)
        try:
            while True:
                p, _ = sock.recvfrom(4096)
                a = answers(p, qid)
                if a is not None:
                    return a
        except socket.timeout:
            continue
    return None


def main(argv):
    if len(argv) not in (4, 6):
        sys.stderr.write(__doc__)
        return 2
    path, pa, pb = argv[1], int(argv[2]), int(argv[3])
    na, nb = (argv[4], argv[5]) if len(argv) == 6 else ("A", "B")
    queries = []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            w = line.split()
            if not w or w[0].startswith(("#", ";")):
                continue
            if len(w) != 3 or w[1].upper() not in TYPES:
                sys.stderr.write("geocompare: %s:%d: expected 'name TYPE "
                                 "ADDR/LEN'\n" % (path, lineno))
                return 2
            queries.append((w[0], TYPES[w[1].upper()], w[2]))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rng = random.Random(7)
    same = differ = failed = 0
    shown = []
    for name, qtype, subnet in queries:
        qid = rng.randrange(65536)
        q = build(qid, name, qtype, subnet)
        a = ask(sock, pa, q, qid)
        b = ask(sock, pb, q, qid)
        if a is None or b is None:
            failed += 1
            if len(shown) < 10:
                shown.append("  no answer from %s for %s %s"
                             % (na if a is None else nb, name, subnet))
        elif a == b:
            same += 1
        else:
            differ += 1
            if len(shown) < 10:
                shown.append("  %s: %s rcode %d %s, %s rcode %d %s"
                             % (subnet, na, a[0], " ".join(a[1]) or "-",
                                nb, b[0], " ".join(b[1]) or "-"))
    for s in shown:
        print(s)
    print("COMPARE total=%d same=%d differ=%d failed=%d"
          % (len(queries), same, differ, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
