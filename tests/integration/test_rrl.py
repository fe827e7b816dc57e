"""Response rate limiting (dnsd/rrl.h) against the real dnsd on loopback.

A flood "spoofed" from one loopback source (the client socket is bound to
127.0.1.2, a /24 of its own) is cut to the limit, the slipped responses are
truncated, another prefix is answered in full meanwhile, a client inside the
limited prefix still resolves over TCP, a whitelisted prefix is never
limited, and the counters in /metrics agree with what the client saw. Every
flood is bounded in packets and in time."""
import os
import re
import socket
import struct
import time
import urllib.request

import dns.flags
import dns.message
import dns.query
import dns.rcode

from gslbtest import Dnsd, ZONES, free_port, make_query, run, test, tmpdir

EXAMPLE_COM = os.path.join(ZONES, "example.com.zone")
RATE = 20
FLOOD = 5000
FLOOD_SECONDS = 10.0


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def start(extra, api=True, v6=False):
    """dnsd with RRL at RATE/s, slip 2, 4 workers (so the steering of
    prefixes to workers matters), and the API for /metrics."""
    args = ["--zone", EXAMPLE_COM, "--threads", "4", "--rrl-rate", str(RATE)] + \
        ([] if "--rrl-slip" in extra else ["--rrl-slip", "2"]) + extra
    d = None
    if api:
        tok = os.path.join(tmpdir(), "token")
        with open(tok, "w") as f:
            f.write("secret-token\n")
        api_port = free_port()
        args += ["--api", "127.0.0.1:%d" % api_port, "--api-token-file", tok]
    port = free_port()
    if v6:
        port6 = free_port(socket.AF_INET6, "::1")
        args += ["--listen", "127.0.0.1:%d" % port, "--listen", "[::1]:%d" % port6]
    d = Dnsd(args, port=port)
    d.api_port = api_port if api else None
    d.port6 = port6 if v6 else None
    return d


def metrics(d):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % d.api_port, timeout=2) as r:
        text = r.read().decode()
    out = {}
    for action in ("limited", "dropped", "slipped"):
        m = re.search(r'^dnsd_rrl_responses_total\{action="%s"\} (\d+)$' % action, text, re.M)
        expect(m, "metrics: no rrl %s counter in:\n%s" % (action, text[:2000]))
        out[action] = int(m.group(1))
    return out


def classify(pkt):
    """'full' (records, no TC), 'tc' (TC, no records) or 'other'."""
    if len(pkt) < 12:
        return "other"
    tc = pkt[2] & 0x02
    an, ns = struct.unpack("!HH", pkt[6:10])
    if not tc and an > 0:
        return "full"
    if tc and an == 0 and ns == 0:
        return "tc"
    return "other"


def flood(d, src, qname="www.example.com.", n=FLOOD, family=socket.AF_INET,
          dst="127.0.0.1", port=None, legit=None, legit_every=500,
          seconds=FLOOD_SECONDS):
    """Sends n queries from src as fast as the socket takes them (bounded
    by FLOOD_SECONDS) while draining replies; legit=(src, results) also
    sends one query from another source every legit_every packets and
    waits for its answer. The flood comes from 8 source ports, as a
    spoofed one would: without steering by prefix the kernel would spread
    them over the workers, each with its own buckets, and more than the
    limit would get through. Returns counts, the sending time and the
    time from the first query to the last reply."""
    port = port or d.port
    socks = []
    for _ in range(8):
        s = socket.socket(family, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        s.bind((src, 0))
        s.setblocking(False)
        socks.append(s)
    ls = None
    if legit:
        ls = socket.socket(family, socket.SOCK_DGRAM)
        ls.bind((legit[0], 0))
        ls.settimeout(1.0)
    wire = bytearray(make_query(qname, "A").to_wire())
    got = {"full": 0, "tc": 0, "other": 0}
    before = metrics(d) if getattr(d, "api_port", None) else None
    last = [0.0]

    def drain():
        for s in socks:
            while True:
                try:
                    got[classify(s.recv(4096))] += 1
                    last[0] = time.monotonic()
                except BlockingIOError:
                    break

    t0 = time.monotonic()
    sent = 0
    for i in range(n):
        if time.monotonic() - t0 > seconds:
            break
        struct.pack_into("!H", wire, 0, i & 0xffff)
        try:
            socks[i % len(socks)].sendto(wire, (dst, port))
            sent += 1
        except BlockingIOError:
            time.sleep(0.0005)
        if i % 64 == 0:
            drain()
        if ls and i % legit_every == 0:
            q = make_query(qname, "A")
            ls.sendto(q.to_wire(), (dst, port))
            try:
                r = dns.message.from_wire(ls.recv(4096))
                legit[1].append(r)
            except socket.timeout:
                legit[1].append(None)
    elapsed = time.monotonic() - t0
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        drain()
        time.sleep(0.01)
    for s in socks:
        s.close()
    if ls:
        ls.close()
    got["sent"] = sent
    got["elapsed"] = elapsed
    got["answering"] = max(elapsed, last[0] - t0)
    if before:
        after = metrics(d)
        got["server"] = {k: after[k] - before[k] for k in after}
    return got


def check_cut(got, what, min_sent=FLOOD * 0.9):
    """At most rate x seconds + the one-second burst answered in full
    (the seconds from the first query to the last reply: a slow build,
    such as a sanitizer's, still answers queued queries after the client
    stopped, and its buckets refill meanwhile); >= 99% of the excess
    dropped or slipped; about every other limited response slipped
    (slip 2): counted by the server, since a build slower than the flood
    leaves queries in the socket buffer that the kernel drops unseen;
    every truncated reply the client got was one the server slipped."""
    allowed = RATE * got["answering"] + RATE + 2
    excess = got["sent"] - allowed
    limited = got["sent"] - got["full"]
    print("%s: %d queries in %.2f s: %d answered in full (allowed %.0f), %d slipped (TC), "
          "%d dropped; %.2f%% of the excess limited" %
          (what, got["sent"], got["elapsed"], got["full"], allowed, got["tc"],
           got["sent"] - got["full"] - got["tc"], min(100.0, 100.0 * limited / max(excess, 1))))
    expect(got["sent"] >= min_sent, "%s: only %d sent" % (what, got["sent"]))
    expect(got["full"] <= allowed, "%s: %d full answers, allowed %.1f (%s)" %
           (what, got["full"], allowed, got))
    expect(limited >= 0.99 * excess, "%s: only %d of %d excess limited" %
           (what, limited, excess))
    expect(got["other"] == 0, "%s: odd replies %s" % (what, got))
    srv = got.get("server")
    if srv:
        expect(0.4 * srv["limited"] <= srv["slipped"] <= 0.6 * srv["limited"] and
               got["tc"] <= srv["slipped"],
               "%s: slip 2 but the server slipped %d of %d limited, client got %d TC" %
               (what, srv["slipped"], srv["limited"], got["tc"]))
    else:
        expect(0.4 * limited <= got["tc"] <= 0.6 * limited,
               "%s: slip 2 but %d truncated of %d limited" % (what, got["tc"], limited))


@test
def flood_cut_to_limit_other_prefix_answered():
    d = start([])
    before = metrics(d)
    legit = []
    got = flood(d, "127.0.1.2", legit=("127.0.2.3", legit))
    check_cut(got, "flood from 127.0.1.2")
    after = metrics(d)
    # the server's counters agree with what the client saw
    lim = after["limited"] - before["limited"]
    slip = after["slipped"] - before["slipped"]
    expect(lim == (after["dropped"] - before["dropped"]) + slip, (before, after))
    expect(lim >= got["sent"] - got["full"] - got["tc"] and slip >= got["tc"],
           "metrics %s vs client %s" % ((lim, slip), got))
    expect(slip <= got["tc"] + 10, "metrics slipped %d, client saw %d" % (slip, got["tc"]))
    # the other /24 got every answer, in full, during the flood
    expect(len(legit) == FLOOD // 500, "legit queries: %d" % len(legit))
    for r in legit:
        expect(r is not None, "a query from 127.0.2.3 went unanswered during the flood")
        expect(r.rcode() == dns.rcode.NOERROR and not r.flags & dns.flags.TC and
               len(r.answer) == 1, r)
    # a sustained flood (3 s) is held to the rate as the bucket refills
    time.sleep(1.1)
    got = flood(d, "127.0.6.2", n=10 ** 7, seconds=3.0)
    check_cut(got, "3 s flood from 127.0.6.2", min_sent=10000)
    expect(got["full"] >= 2 * RATE, "the bucket did not refill: %s" % got)
    d.stop()


@test
def same_prefix_limited_but_resolves_over_tcp():
    d = start([])
    got = flood(d, "127.0.1.2")
    check_cut(got, "flood")
    # a neighbour in the same /24 shares the exhausted bucket over UDP ...
    got2 = flood(d, "127.0.1.77", n=200)
    expect(got2["full"] < RATE, "same /24 got %d full answers: not grouped" % got2["full"])
    # ... but TCP is never limited
    for i in range(30):
        r = dns.query.tcp(make_query("www.example.com.", "A"), "127.0.0.1", port=d.port,
                          timeout=2, source="127.0.1.77")
        expect(r.rcode() == dns.rcode.NOERROR and len(r.answer) == 1, r)
    d.stop()
    # and a real client (UDP, TCP on TC) resolves while the flood goes on.
    # With slip 1 every limited reply is a TC, so each lookup that meets an
    # empty bucket must go to TCP (with slip 2 half are dropped, and under
    # a slow sanitizer build a token may refill just in time for every one
    # of the ten lookups: the check would depend on timing).
    d = start(["--rrl-slip", "1"])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.1.2", 0))
    wire = make_query("www.example.com.", "A").to_wire()
    resolved = via_tcp = 0
    for i in range(10):
        for _ in range(100):                      # keep the bucket empty
            s.sendto(wire, ("127.0.0.1", d.port))
        for attempt in range(5):
            try:
                r, tcp = dns.query.udp_with_fallback(
                    make_query("www.example.com.", "A"), "127.0.0.1", port=d.port,
                    timeout=0.3, source="127.0.1.88")
            except dns.exception.Timeout:
                continue
            if r.rcode() == dns.rcode.NOERROR and len(r.answer) == 1:
                resolved += 1
                via_tcp += tcp
                break
    s.close()
    expect(resolved == 10, "only %d of 10 lookups resolved under the flood" % resolved)
    expect(via_tcp >= 1, "no lookup was sent to TCP by a slipped reply")
    d.stop()


@test
def two_hosts_apart_with_prefix_32():
    """The issue's setup: 127.0.0.2 floods, 127.0.0.3 (same /24) is another
    host with --rrl-ipv4-prefix 32 and gets every answer."""
    d = start(["--rrl-ipv4-prefix", "32"])
    legit = []
    got = flood(d, "127.0.0.2", legit=("127.0.0.3", legit), legit_every=250)
    check_cut(got, "flood from 127.0.0.2")
    expect(len(legit) == FLOOD // 250 and all(
        r is not None and not r.flags & dns.flags.TC and len(r.answer) == 1 for r in legit),
        "127.0.0.3: %s" % [None if r is None else r.flags for r in legit])
    d.stop()


@test
def whitelisted_prefix_never_limited():
    d = start(["--rrl-whitelist", "127.0.9.0/24", "--rrl-whitelist", "2001:db8::/32"])
    before = metrics(d)
    got = flood(d, "127.0.9.2", n=3000)
    after = metrics(d)
    expect(after["limited"] == before["limited"], (before, after))
    expect(got["tc"] == 0 and got["full"] >= 0.99 * got["sent"], got)
    # a neighbouring prefix is limited as usual
    got = flood(d, "127.0.8.2", n=3000)
    expect(got["full"] <= RATE * got["elapsed"] + RATE + 2, got)
    d.stop()


@test
def nxdomain_flood_of_random_names_shares_the_zone_bucket():
    """Random subdomains (a water-torture or reflection with varied names)
    are keyed by the zone, so they are cut to the limit too; answers for
    another name are a separate bucket."""
    d = start([])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind(("127.0.3.2", 0))
    s.settimeout(0.3)
    t0 = time.monotonic()
    for i in range(2000):
        s.sendto(make_query("r%d.example.com." % i, "A").to_wire(), ("127.0.0.1", d.port))
    elapsed = time.monotonic() - t0
    nx = tc = 0
    try:
        while True:
            r = dns.message.from_wire(s.recv(4096))
            if r.flags & dns.flags.TC:
                tc += 1
            elif r.rcode() == dns.rcode.NXDOMAIN:
                nx += 1
    except socket.timeout:
        pass
    expect(nx <= RATE * elapsed + RATE + 2, "%d NXDOMAIN in %.2fs" % (nx, elapsed))
    expect(tc > 500, "only %d slipped" % tc)
    # answers (another class) from the same prefix are not affected
    r = dns.query.udp(make_query("www.example.com.", "A"), "127.0.0.1", port=d.port,
                      timeout=1, source="127.0.3.2")
    expect(len(r.answer) == 1 and not r.flags & dns.flags.TC, r)
    s.close()
    d.stop()


@test
def ipv6_flood_cut_to_limit():
    d = start([], v6=True)
    got = flood(d, "::1", family=socket.AF_INET6, dst="::1", port=d.port6)
    check_cut(got, "flood from ::1")
    # IPv4 is another prefix: answered
    r = dns.query.udp(make_query("www.example.com.", "A"), "127.0.0.1", port=d.port,
                      timeout=1, source="127.0.4.2")
    expect(len(r.answer) == 1 and not r.flags & dns.flags.TC, r)
    d.stop()


@test
def off_by_default():
    d = Dnsd(["--zone", EXAMPLE_COM, "--threads", "2"])
    got = flood(d, "127.0.5.2", n=2000)
    expect(got["tc"] == 0 and got["full"] >= 0.99 * got["sent"], got)
    d.stop()


@test
def bad_options_refused():
    import subprocess
    from gslbtest import BIN
    for args, needle in [
        (["--rrl-whitelist", "10.0.0.0/33"], "rrl-whitelist: '10.0.0.0/33'"),
        (["--rrl-whitelist", "nonsense"], "rrl-whitelist: 'nonsense'"),
        (["--rrl-ipv4-prefix", "33"], "rrl-ipv4-prefix"),
        (["--rrl-ipv6-prefix", "129"], "rrl-ipv6-prefix"),
        (["--rrl-rate", "-1"], "rrl-rate"),
        (["--rrl-table-size", "0"], "rrl-table-size"),
    ]:
        p = subprocess.run([os.path.join(BIN, "dnsd"), "--check", "--zone", EXAMPLE_COM] + args,
                           capture_output=True, text=True, timeout=10)
        expect(p.returncode != 0 and needle in p.stderr, (args, p.returncode, p.stderr))
    p = subprocess.run([os.path.join(BIN, "dnsd"), "--check", "--zone", EXAMPLE_COM,
                        "--rrl-rate", "10", "--rrl-whitelist", "10.0.0.0/8"],
                       capture_output=True, text=True, timeout=10)
    expect(p.returncode == 0, p.stderr)


if __name__ == "__main__":
    run()
