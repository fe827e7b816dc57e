#!/usr/bin/python3
"""dnsd's AF_XDP mode (--xdp IFACE, dnsd/xdp.c) against the socket path,
entirely inside network namespaces this test creates (never the host's lo).

1. test_xdp_loopback_same_answers: lo of a fresh namespace (with the two
   sysctls), dnsd --xdp lo and a reference dnsd without --xdp on the same
   zones; every query (positive, additional, CNAME chain, NXDOMAIN, NODATA,
   empty non-terminal, wildcard, referral, ANY, EDNS sizes, TC, BADVERS,
   ECS, NSID, REFUSED, NOTIMP, FORMERR, a 3 KB answer) gets byte-identical
   answers over IPv4 and IPv6, and dnsd_xdp_answers_total grows by exactly
   the UDP queries answered; QR=1 and runts get nothing; TCP and UDP
   queries over 1500 octets are answered by the sockets (counter
   unchanged); the 1500-octet boundary itself goes through XDP.
2. test_xdp_startup_errors: lo without the sysctls, an unknown interface,
   --max-udp-size 4096, --check, another XDP program on the interface:
   clear messages, non-zero exits, nothing left attached; an IPv6-only
   listen on lo needs no sysctl.
3. test_xdp_kill9_detaches: after kill -9 the program is gone from lo and
   dnsd starts again in XDP mode, also at once after a kill -9.
4. test_xdp_veth_native: a veth pair between two namespaces, native mode;
   answers from the other namespace identical to the socket reference over
   IPv4 and IPv6 up to the MTU (to the octet), TC above it (a frame cannot
   be fragmented; the reference's answer is); ARP, neighbour discovery and
   ICMP still work.
5. test_xdp_reload_health_rrl: SIGHUP with a rewritten zone, a health
   report and a drained endpoint change the XDP answers; response rate
   limiting applies to XDP answers (dnsd_rrl_responses_total).
6. test_xdp_signed_answers: with --dnssec-keys, queries with the DO bit
   (positive, CNAME chain, NXDOMAIN, NODATA, wildcard, referral, DNSKEY)
   answered by XDP carry RRSIGs that validate against the zone's DNSKEY,
   twice (the second time from the signature memo), with the same records
   as the socket reference (signatures differ: ECDSA is randomised).

Skipped (never passed) when not root, without `ip netns`, or when the
kernel has no AF_XDP. Every namespace is removed, also on failure; every
process is stopped by PID; every wait is bounded."""
# run_tests: alone
# (network namespaces of its own, and it compares rates it measures)

import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import dns.edns  # noqa: E402
import dns.exception  # noqa: E402
import dns.flags  # noqa: E402
import dns.message  # noqa: E402
import dns.query  # noqa: E402
import dns.dnssec  # noqa: E402
import dns.name  # noqa: E402
import dns.rcode  # noqa: E402
import dns.rdataclass  # noqa: E402
import dns.rdatatype  # noqa: E402

from gslbtest import (BIN, FIXTURES, ZONES, Proc, Skip, gslbctl, in_netns,  # noqa: E402
                      on_cleanup, run, test, tmpdir)

DNSD = os.path.join(BIN, "dnsd")
EXAMPLE_COM = os.path.join(ZONES, "example.com.zone")
GSLB_ZONE = os.path.join(ZONES, "gslb.example.com.zone")
EXAMPLE_ORG = os.path.join(FIXTURES, "zones", "example.org.zone")
TOKEN = "xdp-test-token"
NSID = "xdp-node-1"
TAG = str(os.getpid())
NS_RE = re.compile(r"^gslbt-xdp[a-z0-9]*-(\d+)$")
XDP_PORT, REF_PORT = 5301, 5302
XDP_API, REF_API = 8301, 8302


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


# --- namespaces ---------------------------------------------------------------



def sh(*argv, check=True, timeout=20):
    p = subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                       timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(map(str, argv)), p.returncode,
                                                 (p.stderr or p.stdout).strip()))
    return p


def del_ns(ns):
    """Stops what still runs in ns (only this test's processes can be in
    it), then deletes it; raises if it is still listed."""
    for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (OSError, ValueError):
            pass
    sh("ip", "netns", "del", ns, check=False)
    expect(ns not in sh("ip", "netns", "list").stdout.split(), "namespace %s left" % ns)


def add_ns(name):
    """A fresh namespace gslbt-xdpNAME-PID with lo up, deleted after the
    test (registered first, so it goes after the processes in it)."""
    ns = "gslbt-xdp%s-%s" % (name, TAG)
    sh("ip", "netns", "add", ns)
    on_cleanup(lambda: del_ns(ns))
    sh("ip", "-n", ns, "link", "set", "lo", "up")
    return ns


def loopback_sysctls(ns):
    sh("ip", "netns", "exec", ns, "sysctl", "-q", "-w",
       "net.ipv4.conf.lo.accept_local=1", "net.ipv4.conf.lo.route_localnet=1")


def remove_stale_namespaces():
    """Namespaces of an earlier run of this file killed before its cleanup
    (gslbt-xdp*-PID with PID gone)."""
    for name in sh("ip", "netns", "list", check=False).stdout.split():
        m = NS_RE.match(name)
        if not m or os.path.exists("/proc/" + m.group(1)):
            continue
        del_ns(name)
        print("    removed stale namespace %s" % name)


_support = None


def require_support():
    """Skip unless root with working `ip netns`; AF_XDP itself is checked
    when dnsd starts (Ns.dnsd)."""
    global _support
    if _support is None:
        if os.geteuid() != 0:
            _support = "not root (namespaces and AF_XDP need CAP_NET_ADMIN, CAP_BPF)"
        else:
            try:
                remove_stale_namespaces()
                ns = "gslbt-xdpchk-" + TAG
                sh("ip", "netns", "add", ns)
                del_ns(ns)
                _support = ""
            except (OSError, RuntimeError, AssertionError) as e:
                _support = "cannot create network namespaces: %s" % e
    if _support:
        raise Skip(_support)


def xdp_on(ns, dev):
    """The XDP program ids attached to dev in ns (`ip link show`)."""
    out = sh("ip", "-n", ns, "link", "show", "dev", dev).stdout
    return re.findall(r"prog/xdp id (\d+)", out), out


def token_file():
    p = os.path.join(tmpdir(), "token")
    with open(p, "w") as f:
        f.write(TOKEN + "\n")
    return p


# --- dnsd in a namespace --------------------------------------------------------

NO_AF_XDP = ("Address family not supported", "Function not implemented")


class NsDnsd:
    """bin/dnsd run with `ip netns exec NS` (which execs it: the PID is
    dnsd's); stopped by PID after the test."""

    def __init__(self, ns, listen, args, xdp=None, api=None, wait=True):
        self.ns, self.listen, self.api = ns, list(listen), api
        argv = ["ip", "netns", "exec", ns, DNSD]
        for a in listen:
            argv += ["--listen", a]
        argv += list(args)
        if xdp:
            argv += ["--xdp", xdp]
        if api:
            argv += ["--api", api, "--api-token-file", token_file()]
        self.proc = Proc(argv)
        on_cleanup(self.proc.stop)
        host, port = split_addr(self.listen[0])
        self.host, self.port = host, port
        if wait:
            self.wait_ready()

    @property
    def pid(self):
        return self.proc.pid

    def output(self):
        return self.proc.output()

    def wait_ready(self, timeout=10):
        deadline = time.monotonic() + timeout
        q = dns.message.make_query("ready.invalid.", "A")
        while time.monotonic() < deadline:
            if not self.proc.alive():
                out = self.output()
                if any(s in out for s in NO_AF_XDP):
                    raise Skip("the kernel has no AF_XDP/BPF: %s" % out.strip()[-300:])
                raise RuntimeError("dnsd exited (%s): %s" % (self.proc.p.returncode, out))
            try:
                in_netns(self.ns, lambda: dns.query.udp(q, self.host, port=self.port,
                                                          timeout=0.2))
                if self.api:
                    self.metrics()
                return
            except (OSError, dns.exception.DNSException):
                time.sleep(0.05)
        raise RuntimeError("dnsd did not answer within %ss: %s" % (timeout, self.output()))

    def metrics(self):
        """{'name{labels}': value} from GET /metrics."""
        def get():
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            with opener.open("http://%s/metrics" % self.api, timeout=2) as r:
                return r.read().decode()
        out = {}
        for ln in in_netns(self.ns, get).splitlines():
            m = re.match(r"^([a-z_]+(?:\{[^}]*\})?) (\d+)$", ln)
            if m:
                out[m.group(1)] = int(m.group(2))
        expect("dnsd_xdp_answers_total" in out, "no xdp counter in /metrics")
        return out

    def http(self, method, path, body=None):
        def go():
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            req = urllib.request.Request("http://%s%s" % (self.api, path), method=method,
                                         data=None if body is None else
                                         json.dumps(body).encode(),
                                         headers={"Authorization": "Bearer " + TOKEN,
                                                  "Content-Type": "application/json"})
            try:
                with opener.open(req, timeout=2) as r:
                    return r.status, r.read().decode()
            except urllib.error.HTTPError as e:
                return e.code, e.read().decode()
        return in_netns(self.ns, go)

    def stop(self):
        return self.proc.stop()


def split_addr(a):
    m = re.match(r"^\[(.*)\]:(\d+)$", a) or re.match(r"^(.*):(\d+)$", a)
    return m.group(1), int(m.group(2))


def run_dnsd(ns, args, timeout=15):
    """dnsd ARGS in ns that must fail: (returncode, stderr). Bounded: a
    dnsd that does not exit is killed (subprocess.run) and reported."""
    try:
        p = subprocess.run(["ip", "netns", "exec", ns, DNSD] + list(args),
                           capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise AssertionError("dnsd %s did not exit within %ss: %s" % (args, timeout, e.stderr))
    return p.returncode, p.stderr


def xdp_answers(d):
    return d.metrics()["dnsd_xdp_answers_total"]


def udp_responses(m):
    return sum(v for k, v in m.items()
               if k.startswith('dnsd_responses_total{transport="udp"'))


def tcp_responses(m):
    return sum(v for k, v in m.items()
               if k.startswith('dnsd_responses_total{transport="tcp"'))


# --- queries --------------------------------------------------------------------

def udp_all(ns, msgs, host, port, timeout=2):
    """Each message over UDP from namespace ns (a fresh socket each): the
    answers, parsed, each with .raw_wire, the octets as received."""
    out = []
    for m, raw in zip(msgs, raw_all(ns, [m.to_wire() for m in msgs], host, port,
                                    timeout)):
        expect(raw is not None, "no answer to %s" % m)
        r = dns.message.from_wire(raw)
        expect(r.id == m.id, "not an answer to %s: %s" % (m, r))
        r.raw_wire = raw
        out.append(r)
    return out


def tcp_all(ns, msgs, host, port):
    return in_netns(ns, lambda: [dns.query.tcp(m, host, port=port, timeout=2)
                                 for m in msgs], timeout=10 + 2 * len(msgs))


def raw_all(ns, packets, host, port, timeout=1.0):
    """Raw datagrams, one socket each: the reply bytes, or None."""
    def go():
        out = []
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        for pkt in packets:
            with socket.socket(fam, socket.SOCK_DGRAM) as s:
                s.settimeout(timeout)
                s.sendto(pkt, (host, port))
                try:
                    out.append(s.recv(65535))
                except socket.timeout:
                    out.append(None)
        return out
    return in_netns(ns, go, timeout=10 + timeout * len(packets))


def summary(r):
    """What is compared, as text: ID, rcode, flags, EDNS and sections."""
    return "id %d rcode %s flags %s edns %d ednsflags %#x payload %d options %s\n%s" % (
        r.id, dns.rcode.to_text(r.rcode()), dns.flags.to_text(r.flags), r.edns,
        r.ednsflags, r.payload, [o.to_text() if hasattr(o, "to_text") else repr(o)
                                 for o in r.options], r.to_text())


def same(what, a, b):
    """Answers a (XDP) and b (socket reference) are identical."""
    expect(a is not None and b is not None, "%s: xdp %r, reference %r" % (what, a, b))
    if isinstance(a, bytes):
        expect(a == b, "%s: raw answers differ:\n xdp %s\n ref %s" % (what, a.hex(), b.hex()))
        return
    sa, sb = summary(a), summary(b)
    expect(sa == sb, "%s: answers differ:\n--- xdp\n%s\n--- reference\n%s" % (what, sa, sb))
    wa, wb = getattr(a, "raw_wire", None), getattr(b, "raw_wire", None)
    expect(wa == wb, "%s: wire forms differ:\n xdp %s\n ref %s" %
           (what, wa and wa.hex(), wb and wb.hex()))


def header(id=0x1234, flags=0, qd=1, an=0, ns=0, ar=0):
    return struct.pack("!HHHHHH", id, flags, qd, an, ns, ar)


QWWW = b"\x03www\x07example\x03com\x00" + struct.pack("!HH", 1, 1)


def q(name, qtype="A", **kw):
    return dns.message.make_query(name, qtype, **kw)


def padded(name, total):
    """A query for name whose UDP payload is exactly total octets (an EDNS
    padding option, RFC 7830, fills it up)."""
    base = len(q(name, "A", use_edns=0, payload=4096,
                 options=[dns.edns.GenericOption(12, b"")]).to_wire())
    m = q(name, "A", use_edns=0, payload=4096,
          options=[dns.edns.GenericOption(12, b"\0" * (total - base))])
    expect(len(m.to_wire()) == total, len(m.to_wire()))
    return m


EDGES = (1452, 1453, 1472, 1473)   # MTU 1500 less IPv6 + UDP, IPv4 + UDP


def write_test_zone(path, serial=1, www="192.0.2.10"):
    """xdp.test: an answer between 512 and 1232 octets (mid), one of about
    3 KB (large), www for the reload test, and sN whose answer to an EDNS
    query is N octets (for N in EDGES: the MTU boundaries)."""
    with open(path + ".tmp", "w") as f:
        f.write("$ORIGIN xdp.test.\n$TTL 300\n@ SOA ns admin %d 3600 600 86400 300\n"
                "@ NS ns\nns A 192.0.2.53\nwww A %s\n" % (serial, www))
        for i in range(8):
            f.write('mid TXT "%02d %s"\n' % (i, "m" * 100))
        for i in range(25):
            f.write('large TXT "%02d %s"\n' % (i, "l" * 110))
        for size in EDGES:
            # header 12, question 20, record 12 + rdata, OPT 11
            rdlen, strings = size - 55, []
            while rdlen > 256:
                strings.append("e" * 255)
                rdlen -= 256
            strings.append("e" * (rdlen - 1))
            f.write("s%d TXT %s\n" % (size, " ".join('"%s"' % x for x in strings)))
    os.rename(path + ".tmp", path)
    return path


def query_cases(v6):
    """(label, message, check) for the comparison; check(answer) asserts
    what the answer must be besides being identical to the reference."""
    ecs = dns.edns.ECSOption("2001:db8:1::", 48) if v6 else dns.edns.ECSOption("192.0.2.0", 24)
    badvers = q("www.example.com.")
    badvers.use_edns(edns=1)
    noerr = lambda r: r.rcode() == dns.rcode.NOERROR and r.answer  # noqa: E731
    return [
        ("A", q("www.example.com."), noerr),
        ("AAAA", q("www.example.com.", "AAAA"), noerr),
        ("mixed case", q("WwW.ExAmPlE.cOm."),
         lambda r: r.question[0].name.to_text() == "WwW.ExAmPlE.cOm."),
        ("MX + additional", q("example.com.", "MX"), lambda r: r.additional),
        ("NS + glue", q("example.com.", "NS"), lambda r: len(r.additional) >= 2),
        ("SRV + additional", q("_sip._udp.example.com.", "SRV"), lambda r: r.additional),
        ("CNAME chain", q("alias.example.com."), lambda r: len(r.answer) == 3),
        ("dangling CNAME", q("dangling.example.com."),
         lambda r: r.rcode() == dns.rcode.NXDOMAIN and r.answer),
        ("NXDOMAIN", q("nothere.example.com."),
         lambda r: r.rcode() == dns.rcode.NXDOMAIN and r.authority and not r.answer),
        ("NODATA", q("www.example.com.", "MX"),
         lambda r: r.rcode() == dns.rcode.NOERROR and not r.answer and r.authority),
        ("empty non-terminal", q("c.example.com."),
         lambda r: r.rcode() == dns.rcode.NOERROR and not r.answer and r.authority),
        ("wildcard", q("anything.wild.example.com."), noerr),
        ("wildcard CNAME", q("x.wcname.example.com."), noerr),
        ("referral", q("host.sub.example.com."),
         lambda r: not r.answer and r.authority and r.additional and
         not r.flags & dns.flags.AA),
        ("DS at the parent", q("sub.example.com.", "DS"), noerr),
        ("nested zone", q("static.gslb.example.com."), noerr),
        ("ANY", q("example.com.", "ANY"), lambda r: len(r.answer) == 1),
        ("EDNS small buffer", q("many.example.org.", use_edns=0, payload=100),
         lambda r: len(r.answer[0]) == 20 and not r.flags & dns.flags.TC),
        ("EDNS 512, answer larger", q("mid.xdp.test.", "TXT", use_edns=0, payload=512),
         lambda r: r.flags & dns.flags.TC),
        ("EDNS 1232 + DO", q("mid.xdp.test.", "TXT", use_edns=0, payload=1232,
                             want_dnssec=True),
         lambda r: len(r.answer[0]) == 8 and r.ednsflags & dns.flags.DO),
        ("EDNS 4096, 3 KB answer", q("large.xdp.test.", "TXT", use_edns=0, payload=4096),
         lambda r: len(r.answer[0]) == 25 and len(r.raw_wire) > 2500),
        ("EDNS 4096, over max-udp-size", q("big.example.org.", "TXT", use_edns=0,
                                           payload=4096),
         lambda r: r.flags & dns.flags.TC and not r.answer),
        ("no EDNS, over 512: TC", q("mid.xdp.test.", "TXT"),
         lambda r: r.flags & dns.flags.TC and not r.answer and r.edns < 0),
        ("EDNS version 1: BADVERS", badvers,
         lambda r: r.rcode() == dns.rcode.BADVERS and r.edns == 0),
        ("ECS echoed", q("www.example.com.", use_edns=0, options=[ecs]),
         lambda r: any(o.otype == 8 for o in r.options)),
        ("NSID", q("www.example.com.", use_edns=0, options=[dns.edns.GenericOption(3, b"")]),
         lambda r: [o.to_wire() for o in r.options if o.otype == 3] == [NSID.encode()]),
        ("outside our zones: REFUSED", q("www.example.net."),
         lambda r: r.rcode() == dns.rcode.REFUSED),
    ]


RAW_CASES = [
    # (label, packet, rcode or None for no answer)
    ("unknown opcode: NOTIMP", header(flags=3 << 11) + QWWW, dns.rcode.NOTIMP),
    ("QDCOUNT=2: FORMERR", header(qd=2) + QWWW + QWWW, dns.rcode.FORMERR),
    ("12 octets, no question: FORMERR", header(qd=0), dns.rcode.FORMERR),
    ("QR=1: no answer", header(flags=0x8000) + QWWW, None),
]


def common_args(zone):
    return ["--zone", EXAMPLE_COM, "--zone", GSLB_ZONE, "--zone", EXAMPLE_ORG,
            "--zone", zone, "--nsid", NSID, "--threads", "2", "--max-udp-size", "4000"]


# --- 1 ----------------------------------------------------------------------------

@test
def test_xdp_loopback_same_answers():
    require_support()
    ns = add_ns("lo")
    loopback_sysctls(ns)
    zone = write_test_zone(os.path.join(tmpdir(), "xdp.test.zone"))
    x = NsDnsd(ns, ["127.0.0.1:%d" % XDP_PORT, "[::1]:%d" % XDP_PORT], common_args(zone),
               xdp="lo", api="127.0.0.1:%d" % XDP_API)
    ref = NsDnsd(ns, ["127.0.0.1:%d" % REF_PORT, "[::1]:%d" % REF_PORT], common_args(zone),
                 api="127.0.0.1:%d" % REF_API)
    log = x.output()
    expect("xdp lo: 1 queue(s), generic mode" in log, log)
    gso = sh("ip", "netns", "exec", ns, "ethtool", "-k", "lo", check=False).stdout
    if "tx-udp-segmentation: on" in gso:
        expect("xdp lo: tx-udp-segmentation is on" in log, log)
    ids, _ = xdp_on(ns, "lo")
    expect(len(ids) == 1, "one program on lo expected: %s" % ids)

    m0 = x.metrics()
    n_udp = 0
    for host in ("127.0.0.1", "::1"):
        cases = query_cases(":" in host)
        msgs = [m for _, m, _ in cases]
        got = udp_all(ns, msgs, host, XDP_PORT)
        want = udp_all(ns, msgs, host, REF_PORT)
        for (label, m, check), a, b in zip(cases, got, want):
            what = "%s over %s" % (label, host)
            same(what, a, b)
            expect(a.id == m.id, "%s: ID %d, query %d" % (what, a.id, m.id))
            expect(check(a), "%s: unexpected answer:\n%s" % (what, a))
        n_udp += len(msgs)
        pkts = [p for _, p, _ in RAW_CASES] + [b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00"]
        got = raw_all(ns, pkts, host, XDP_PORT, timeout=0.3)
        want = raw_all(ns, pkts, host, REF_PORT, timeout=0.3)
        for (label, pkt, rc), a, b in zip(RAW_CASES + [("11 octets: no answer", None, None)],
                                          got, want):
            what = "%s over %s" % (label, host)
            if rc is None:
                expect(a is None and b is None, "%s: answered (xdp %r, ref %r)" % (what, a, b))
                continue
            same(what, a, b)
            expect(a[:2] == pkt[:2] and a[2] & 0x80 and (a[3] & 0x0f) == rc,
                   "%s: %s" % (what, a.hex()))
            n_udp += 1
    m1 = x.metrics()
    grew = m1["dnsd_xdp_answers_total"] - m0["dnsd_xdp_answers_total"]
    expect(grew == n_udp, "dnsd_xdp_answers_total grew by %d for %d UDP answers" %
           (grew, n_udp))
    expect(m1["dnsd_xdp_dropped_total"] == m0["dnsd_xdp_dropped_total"], (m0, m1))
    # The 11-octet runt went to the socket, which drops it.
    expect(m1["dnsd_dropped_total"] - m0["dnsd_dropped_total"] >= 2, (m0, m1))
    expect(ref.metrics()["dnsd_xdp_answers_total"] == 0, "reference counted XDP answers")

    # TCP: the sockets answer (the program passes TCP).
    for host in ("127.0.0.1", "::1"):
        msgs = [q("www.example.com."), q("big.example.org.", "TXT"),
                q("nothere.example.com.")]
        got = tcp_all(ns, msgs, host, XDP_PORT)
        want = tcp_all(ns, msgs, host, REF_PORT)
        for m, a, b in zip(msgs, got, want):
            same("TCP %s over %s" % (m.question[0].name, host), a, b)
        expect(len(got[1].answer[0]) == 40 and not got[1].flags & dns.flags.TC, got[1])
    m2 = x.metrics()
    expect(m2["dnsd_xdp_answers_total"] == m1["dnsd_xdp_answers_total"],
           "TCP counted as XDP: %s -> %s" % (m1["dnsd_xdp_answers_total"],
                                             m2["dnsd_xdp_answers_total"]))
    expect(tcp_responses(m2) - tcp_responses(m1) == 6, (tcp_responses(m1), tcp_responses(m2)))

    # UDP payload of 1500 octets: XDP; 1501 and 1800: the socket.
    for host in ("127.0.0.1", "::1"):
        for size, via_xdp in ((1500, True), (1501, False), (1800, False)):
            m = padded("www.example.com.", size)
            before = x.metrics()
            a = udp_all(ns, [m], host, XDP_PORT)[0]
            after = x.metrics()
            b = udp_all(ns, [m], host, REF_PORT)[0]
            what = "%d-octet query over %s" % (size, host)
            same(what, a, b)
            expect(len(a.answer) == 1, "%s: %s" % (what, a))
            dx = after["dnsd_xdp_answers_total"] - before["dnsd_xdp_answers_total"]
            du = udp_responses(after) - udp_responses(before)
            expect(dx == (1 if via_xdp else 0) and du == 1,
                   "%s: xdp counter +%d, udp responses +%d" % (what, dx, du))
    expect(x.proc.alive(), x.output())
    expect(xdp_on(ns, "lo")[0] == ids, "program on lo changed")
    x.stop()
    ref.stop()
    expect(xdp_on(ns, "lo")[0] == [], "program left on lo after SIGTERM")


# --- 2 ----------------------------------------------------------------------------

@test
def test_xdp_startup_errors():
    require_support()
    ns = add_ns("err")
    zone = ["--zone", EXAMPLE_COM, "--threads", "1"]
    v4 = ["--listen", "127.0.0.1:%d" % XDP_PORT]

    def nothing_attached(what):
        ids, out = xdp_on(ns, "lo")
        expect(not ids and "xdp" not in out, "%s: lo has an XDP program:\n%s" % (what, out))

    # lo without the sysctls (a fresh namespace has them off).
    rc, err = run_dnsd(ns, v4 + zone + ["--xdp", "lo"])
    expect(rc != 0 and "accept_local" in err and "route_localnet" in err, (rc, err))
    nothing_attached("no sysctls")
    rc, err = run_dnsd(ns, ["--check"] + v4 + zone + ["--xdp", "lo"])
    expect(rc != 0 and "accept_local=1" in err, (rc, err))
    # IPv6 only: the sysctls are not needed.
    d = NsDnsd(ns, ["[::1]:%d" % XDP_PORT], zone, xdp="lo", api="[::1]:%d" % XDP_API)
    r = udp_all(ns, [q("www.example.com.")], "::1", XDP_PORT)[0]
    expect(len(r.answer) == 1 and xdp_answers(d) >= 2, (r, d.metrics()))
    d.stop()
    nothing_attached("after the IPv6-only dnsd")

    loopback_sysctls(ns)
    for args, needle in [
            (v4 + zone + ["--xdp", "nosuchif0"], "xdp nosuchif0: no such network interface"),
            (v4 + zone + ["--xdp", "lo", "--max-udp-size", "4096"],
             "max-udp-size: 4096 is more than an XDP frame carries"),
            (["--check"] + v4 + zone + ["--xdp", "nosuchif0"],
             "xdp nosuchif0: no such network interface"),
            (["--check"] + v4 + zone + ["--xdp", "lo", "--max-udp-size", "4096"],
             "max-udp-size: 4096"),
            (v4 + zone + ["--xdp", "x" * 20], "no such network interface")]:
        rc, err = run_dnsd(ns, args)
        expect(rc != 0 and needle in err, "%s: exit %d: %s" % (args, rc, err))
        nothing_attached(" ".join(args))
    rc, err = run_dnsd(ns, ["--check"] + v4 + zone + ["--xdp", "lo"])
    expect(rc == 0, "--check with the sysctls set: %d %s" % (rc, err))
    nothing_attached("--check")

    # Another XDP program attached: the second dnsd refuses, the first
    # keeps its program and keeps answering through it.
    first = NsDnsd(ns, ["127.0.0.1:%d" % XDP_PORT], zone, xdp="lo",
                   api="127.0.0.1:%d" % XDP_API)
    ids, _ = xdp_on(ns, "lo")
    expect(len(ids) == 1, ids)
    rc, err = run_dnsd(ns, ["--listen", "127.0.0.1:%d" % REF_PORT] + zone + ["--xdp", "lo"])
    expect(rc != 0 and "another XDP program is attached" in err, (rc, err))
    expect(xdp_on(ns, "lo")[0] == ids, "the first program was replaced")
    before = xdp_answers(first)
    r = udp_all(ns, [q("www.example.com.")] * 3, "127.0.0.1", XDP_PORT)
    expect(all(len(a.answer) == 1 for a in r), r)
    expect(xdp_answers(first) - before == 3, "first dnsd not answering through XDP")
    expect(first.proc.alive(), first.output())
    first.stop()
    nothing_attached("after the first dnsd stopped")


# --- 3 ----------------------------------------------------------------------------

@test
def test_xdp_kill9_detaches():
    require_support()
    ns = add_ns("kill")
    loopback_sysctls(ns)
    args = ["--zone", EXAMPLE_COM, "--threads", "1"]
    listen = ["127.0.0.1:%d" % XDP_PORT, "[::1]:%d" % XDP_PORT]
    d = NsDnsd(ns, listen, args, xdp="lo", api="127.0.0.1:%d" % XDP_API)
    with open("/proc/%d/comm" % d.pid) as f:
        expect(f.read().strip() == "dnsd", "PID %d is not dnsd" % d.pid)
    expect(len(xdp_on(ns, "lo")[0]) == 1, xdp_on(ns, "lo")[1])
    before = xdp_answers(d)
    udp_all(ns, [q("www.example.com.")], "127.0.0.1", XDP_PORT)
    expect(xdp_answers(d) == before + 1, "not answered through XDP")
    d.proc.kill()                  # SIGKILL by PID, waited for
    t0 = time.monotonic()
    while xdp_on(ns, "lo")[0] and time.monotonic() - t0 < 5:
        time.sleep(0.05)
    ids, out = xdp_on(ns, "lo")
    expect(not ids and "xdp" not in out, "XDP program left on lo after kill -9:\n" + out)
    print("    program gone %.2f s after kill -9" % (time.monotonic() - t0))
    # Started again: after the wait above, then twice at once after a
    # kill -9 (the kernel releases the old socket's queue a moment later:
    # dnsd retries the bind).
    for rnd in range(3):
        d = NsDnsd(ns, listen, args, xdp="lo", api="127.0.0.1:%d" % XDP_API)
        expect(len(xdp_on(ns, "lo")[0]) == 1, xdp_on(ns, "lo")[1])
        before = xdp_answers(d)
        for host in ("127.0.0.1", "::1"):
            r = udp_all(ns, [q("www.example.com.", "AAAA")], host, XDP_PORT)[0]
            expect([rd.to_text() for rs in r.answer for rd in rs] == ["2001:db8::80"], r)
        expect(xdp_answers(d) == before + 2, "restart %d: not answered through XDP" % rnd)
        if rnd < 2:
            d.proc.kill()
    d.stop()
    expect(not xdp_on(ns, "lo")[0], "program left after SIGTERM")


def ping(host, timeout=2.0):
    """One ICMP (v6) echo from a raw socket; True when the reply came."""
    v6 = ":" in host
    s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_RAW,
                      socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP)
    ident = os.getpid() & 0xffff
    msg = struct.pack("!BBHHH", 128 if v6 else 8, 0, 0, ident, 1) + b"xdp-test"
    if not v6:                  # the kernel computes the ICMPv6 checksum
        c = sum(struct.unpack("!%dH" % (len(msg) // 2), msg))
        c = (c & 0xffff) + (c >> 16)
        c = ~((c & 0xffff) + (c >> 16)) & 0xffff
        msg = msg[:2] + struct.pack("!H", c) + msg[4:]
    s.settimeout(0.2)
    deadline = time.monotonic() + timeout
    try:
        s.sendto(msg, (host, 0))
        while time.monotonic() < deadline:
            try:
                d = s.recv(2048)
            except socket.timeout:
                continue
            d = d if v6 else d[(d[0] & 0x0f) * 4:]
            if d[0] == (129 if v6 else 0) and struct.unpack("!H", d[4:6])[0] == ident:
                return True
        return False
    finally:
        s.close()


# --- 4 ----------------------------------------------------------------------------

@test
def test_xdp_veth_native():
    require_support()
    srv, cli = add_ns("srv"), add_ns("cli")
    # Created directly inside the two namespaces: nothing in the root one.
    sh("ip", "link", "add", "name", "xv0", "netns", srv, "type", "veth",
       "peer", "name", "xv1", "netns", cli)
    sh("ip", "-n", srv, "addr", "add", "10.201.0.1/24", "dev", "xv0")
    sh("ip", "-n", cli, "addr", "add", "10.201.0.2/24", "dev", "xv1")
    sh("ip", "-n", srv, "addr", "add", "fd00:201::1/64", "dev", "xv0", "nodad")
    sh("ip", "-n", cli, "addr", "add", "fd00:201::2/64", "dev", "xv1", "nodad")
    sh("ip", "-n", srv, "link", "set", "xv0", "up")
    sh("ip", "-n", cli, "link", "set", "xv1", "up")
    zone = write_test_zone(os.path.join(tmpdir(), "xdp.test.zone"))
    args = common_args(zone)        # --max-udp-size 4000: above the MTU
    x = NsDnsd(srv, ["10.201.0.1:%d" % XDP_PORT, "[fd00:201::1]:%d" % XDP_PORT], args,
               xdp="xv0", api="10.201.0.1:%d" % XDP_API)
    ref = NsDnsd(srv, ["10.201.0.1:%d" % REF_PORT, "[fd00:201::1]:%d" % REF_PORT], args)
    expect("xdp xv0: 1 queue(s), native mode" in x.output(), x.output())
    expect(len(xdp_on(srv, "xv0")[0]) == 1, xdp_on(srv, "xv0")[1])
    # Forget the neighbours: the queries below need ARP and ND again,
    # which pass through the program to the kernel.
    sh("ip", "-n", cli, "neigh", "flush", "dev", "xv1")
    sh("ip", "-n", srv, "neigh", "flush", "dev", "xv0")
    m0 = x.metrics()
    n = 0
    for host in ("10.201.0.1", "fd00:201::1"):
        # Answers that fit the MTU (1500) in one IP packet.
        cases = [c for c in query_cases(":" in host) if "3 KB" not in c[0]]
        msgs = [m for _, m, _ in cases]
        got = udp_all(cli, msgs, host, XDP_PORT)
        want = udp_all(cli, msgs, host, REF_PORT)
        for (label, m, check), a, b in zip(cases, got, want):
            what = "%s over veth to %s" % (label, host)
            same(what, a, b)
            expect(check(a), "%s: unexpected answer:\n%s" % (what, a))
        n += len(msgs)
        pkts = [p for _, p, _ in RAW_CASES]
        got = raw_all(cli, pkts, host, XDP_PORT, timeout=0.3)
        want = raw_all(cli, pkts, host, REF_PORT, timeout=0.3)
        for (label, pkt, rc), a, b in zip(RAW_CASES, got, want):
            if rc is None:
                expect(a is None and b is None, "%s over veth: answered" % label)
                continue
            same("%s over veth to %s" % (label, host), a, b)
            n += 1
        # Larger answers: the reference's go in IP fragments; a frame
        # cannot, so XDP answers TC (header, question, OPT) and the client
        # retries over TCP.
        room = 1500 - (48 if ":" in host else 28)
        msgs = [q("s%d.xdp.test." % size, "TXT", use_edns=0, payload=4096)
                for size in EDGES] + [q("large.xdp.test.", "TXT", use_edns=0, payload=4096)]
        got = udp_all(cli, msgs, host, XDP_PORT)
        want = udp_all(cli, msgs, host, REF_PORT)
        for m, a, b in zip(msgs, got, want):
            what = "%s over veth to %s (%d octets)" % (m.question[0].name, host,
                                                      len(b.raw_wire))
            expect(a.id == m.id and not b.flags & dns.flags.TC and b.answer, what)
            if len(b.raw_wire) <= room:
                same(what, a, b)
            else:
                expect(a.flags & dns.flags.TC and not a.answer and not a.authority and
                       a.edns == 0 and a.question == m.question and
                       a.rcode() == b.rcode() and len(a.raw_wire) < 100,
                       "%s: TC expected, got:\n%s" % (what, a))
        sizes = [len(b.raw_wire) for b in want[:len(EDGES)]]
        expect(sizes == list(EDGES), "zone sizes: %s" % sizes)
        n += len(msgs)
        # TCP and ICMP pass.
        t = tcp_all(cli, [q("big.example.org.", "TXT"), msgs[-1]], host, XDP_PORT)
        expect(len(t[0].answer[0]) == 40 and len(t[1].answer[0]) == 25, t)
        expect(in_netns(cli, lambda: ping(host)), "no ICMP echo reply from %s" % host)
    m1 = x.metrics()
    grew = m1["dnsd_xdp_answers_total"] - m0["dnsd_xdp_answers_total"]
    expect(grew == n, "xdp counter grew by %d for %d UDP answers" % (grew, n))
    expect(tcp_responses(m1) - tcp_responses(m0) == 4, (m0, m1))
    neigh = sh("ip", "-n", cli, "neigh", "show", "dev", "xv1").stdout
    for addr in ("10.201.0.1 ", "fd00:201::1 "):
        line = [ln for ln in neigh.splitlines() if ln.startswith(addr)]
        expect(line and "lladdr" in line[0] and "FAILED" not in line[0],
               "no neighbour entry for %s:\n%s" % (addr, neigh))
    expect(x.proc.alive(), x.output())
    x.stop()
    ref.stop()
    expect(not xdp_on(srv, "xv0")[0], "program left on xv0")


# --- 5 ----------------------------------------------------------------------------

FO = "fo.gslb.example.com."


@test
def test_xdp_reload_health_rrl():
    require_support()
    ns = add_ns("rl")
    loopback_sysctls(ns)
    zf = write_test_zone(os.path.join(tmpdir(), "xdp.test.zone"))
    db = os.path.join(tmpdir(), "gslb.db")
    gslbctl(db, "init")
    gslbctl(db, "service", "add", FO, "--policy", "failover", "--ttl", "5")
    for i in (1, 2):
        gslbctl(db, "endpoint", "add", FO, "192.0.2.%d" % i, "--priority", i,
                "--check", "http://192.0.2.%d/" % i)
    d = NsDnsd(ns, ["127.0.0.1:%d" % XDP_PORT, "[::1]:%d" % XDP_PORT],
               ["--zone", zf, "--zone", GSLB_ZONE, "--db", db, "--db-poll-ms", "50",
                "--threads", "1"], xdp="lo", api="127.0.0.1:%d" % XDP_API)
    asked = [0]

    def answer(name, host="127.0.0.1"):
        asked[0] += 1
        r = udp_all(ns, [q(name)], host, XDP_PORT)[0]
        return sorted(rd.to_text() for rs in r.answer for rd in rs)

    def until(pred, what, timeout=5):
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if pred():
                return time.monotonic() - t0
            time.sleep(0.05)
        raise AssertionError("%s: not within %ss\n%s" % (what, timeout, d.output()[-2000:]))

    base = xdp_answers(d)
    # Reload.
    expect(answer("www.xdp.test.") == ["192.0.2.10"], "initial")
    write_test_zone(zf, serial=2, www="192.0.2.20")
    d.proc.signal(signal.SIGHUP)
    until(lambda: answer("www.xdp.test.") == ["192.0.2.20"], "XDP answer after SIGHUP")
    expect(answer("www.xdp.test.", "::1") == ["192.0.2.20"], "IPv6 after SIGHUP")
    expect(d.metrics().get('dnsd_zone_serial{zone="xdp.test."}') == 2, d.metrics())
    # Health: one agent reports the first endpoint down -> failover.
    expect(answer(FO) == ["192.0.2.1"], "failover before any report")
    code, body = d.http("GET", "/v1/status")
    expect(code == 200, (code, body))
    eps = {e["target"]: e["id"] for s in json.loads(body)["services"] if s["name"] == FO
           for e in s["endpoints"]}

    def report(state):
        code, body = d.http("POST", "/v1/reports", {
            "agent": "xdp-agent", "region": "eu",
            "results": [{"id": eps["192.0.2.1"], "state": state, "ok": state == "up",
                         "rtt_ms": 1.0, "ts": time.time()}]})
        expect(code == 200, (code, body))
    report("down")
    until(lambda: answer(FO) == ["192.0.2.2"], "failover to .2 after the down report")
    report("up")
    until(lambda: answer(FO) == ["192.0.2.1"], "back to .1 after the up report")
    # The store: a drained endpoint leaves the XDP answers.
    gslbctl(db, "--force", "endpoint", "drain", FO, "192.0.2.1")
    until(lambda: answer(FO) == ["192.0.2.2"], "drained .1")
    m = d.metrics()
    expect(m["dnsd_xdp_answers_total"] - base == asked[0],
           "xdp counter +%d for %d queries" % (m["dnsd_xdp_answers_total"] - base, asked[0]))
    expect(m["dnsd_service_answers_total"] >= 4, m)
    expect(d.proc.alive(), d.output())
    d.stop()

    # Response rate limiting in XDP mode: 20/s, every other limited
    # answer slipped (TC).
    rate = 20
    d = NsDnsd(ns, ["127.0.0.1:%d" % XDP_PORT], ["--zone", EXAMPLE_COM, "--threads", "1",
                                                 "--rrl-rate", str(rate), "--rrl-slip", "2"],
               xdp="lo", api="127.0.0.1:%d" % XDP_API)
    m0 = d.metrics()
    burst = 400

    def flood():
        wire = bytearray(q("www.example.com.").to_wire())
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        s.bind(("127.0.1.2", 0))
        other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        other.bind(("127.0.2.3", 0))
        other.settimeout(1)
        got = {"full": 0, "tc": 0, "other": 0, "legit": 0}
        t0 = time.monotonic()
        for i in range(burst):
            struct.pack_into("!H", wire, 0, i)
            s.sendto(wire, ("127.0.0.1", XDP_PORT))
            if i % 100 == 50:
                other.sendto(wire, ("127.0.0.1", XDP_PORT))
                try:
                    r = dns.message.from_wire(other.recv(4096))
                    if len(r.answer[0]) == 2 and not r.flags & dns.flags.TC:
                        got["legit"] += 1
                except (socket.timeout, dns.exception.DNSException):
                    pass
        got["elapsed"] = time.monotonic() - t0
        s.settimeout(0.3)
        try:
            while True:
                pkt = s.recv(4096)
                an = struct.unpack("!H", pkt[6:8])[0]
                if pkt[2] & 0x02 and an == 0:
                    got["tc"] += 1
                elif an == 2 and not pkt[2] & 0x02:     # www: two A records
                    got["full"] += 1
                else:
                    got["other"] += 1
        except socket.timeout:
            pass
        s.close()
        other.close()
        return got
    got = in_netns(ns, flood, timeout=20)
    m1 = d.metrics()
    limited = m1['dnsd_rrl_responses_total{action="limited"}'] - \
        m0['dnsd_rrl_responses_total{action="limited"}']
    slipped = m1['dnsd_rrl_responses_total{action="slipped"}'] - \
        m0['dnsd_rrl_responses_total{action="slipped"}']
    xdp = m1["dnsd_xdp_answers_total"] - m0["dnsd_xdp_answers_total"]
    print("    rrl: %d queries in %.2f s: %d full, %d slipped, metrics limited %d "
          "slipped %d, xdp answers %d" % (burst, got["elapsed"], got["full"], got["tc"],
                                          limited, slipped, xdp))
    allowed = rate * got["elapsed"] + rate + 2
    expect(got["full"] <= allowed and got["full"] >= 1, (got, allowed))
    expect(got["other"] == 0, got)
    expect(got["legit"] == burst // 100, "another prefix was limited: %s" % got)
    expect(limited == burst - got["full"] and slipped == got["tc"], (got, limited, slipped))
    expect(0.4 * limited <= got["tc"] <= 0.6 * limited, (got, limited))
    expect(xdp == got["full"] + got["tc"] + got["legit"],
           "xdp answers %d, client saw %s" % (xdp, got))
    d.stop()


# --- 6 ----------------------------------------------------------------------------

def _records(r):
    """The sections as comparable text, RRSIG rdata left out (an ECDSA
    signature differs each time it is made)."""
    out = []
    for sec, rrsets in (("an", r.answer), ("ns", r.authority)):
        for rs in rrsets:
            if rs.rdtype == dns.rdatatype.RRSIG:
                out.append("%s %s RRSIG %s" % (sec, rs.name, dns.rdatatype.to_text(rs.covers)))
            else:
                out += ["%s %s %s" % (sec, rs.name, rd.to_text()) for rd in rs]
    return sorted(out)


def _validate(what, r, keys):
    """Every RRset of answer and authority (a referral's NS excepted) has an
    RRSIG that validates with keys; returns how many were checked."""
    n = 0
    for sec, rrsets in (("answer", r.answer), ("authority", r.authority)):
        for rs in rrsets:
            if rs.rdtype == dns.rdatatype.RRSIG or (sec == "authority" and
                                                   rs.rdtype == dns.rdatatype.NS):
                continue
            sigs = [x for x in rrsets if x.rdtype == dns.rdatatype.RRSIG and
                    x.name == rs.name and x.covers == rs.rdtype]
            expect(sigs, "%s: no RRSIG over %s" % (what, rs))
            try:
                dns.dnssec.validate(rs, sigs[0], keys)
            except dns.dnssec.ValidationFailure as e:
                raise AssertionError("%s: %s does not validate: %s" % (what, rs, e))
            n += 1
    return n


@test
def test_xdp_signed_answers():
    require_support()
    if not shutil.which("ldns-keygen"):
        raise Skip("ldns-keygen not installed")
    ns = add_ns("lo")
    loopback_sysctls(ns)
    keys = os.path.join(tmpdir(), "keys")
    os.mkdir(keys)
    for ksk in (True, False):
        sh("sh", "-c", "cd %s && ldns-keygen -a ECDSAP256SHA256 %s example.com >/dev/null"
           % (keys, "-k" if ksk else ""))
    for f in os.listdir(keys):
        if f.endswith(".ds"):
            os.unlink(os.path.join(keys, f))
    args = ["--zone", EXAMPLE_COM, "--dnssec-keys", keys, "--threads", "1"]
    x = NsDnsd(ns, ["127.0.0.1:%d" % XDP_PORT], args, xdp="lo",
               api="127.0.0.1:%d" % XDP_API)
    ref = NsDnsd(ns, ["127.0.0.1:%d" % REF_PORT], args, api="127.0.0.1:%d" % REF_API)
    do = lambda name, t="A": q(name, t, use_edns=0, payload=1232,  # noqa: E731
                               want_dnssec=True)
    kr = udp_all(ns, [do("example.com.", "DNSKEY")], "127.0.0.1", XDP_PORT)[0]
    dnskey = kr.find_rrset(kr.answer, dns.name.from_text("example.com."),
                           dns.rdataclass.IN, dns.rdatatype.DNSKEY)
    keyset = {dns.name.from_text("example.com."): dnskey}
    cases = [("A", do("www.example.com.")), ("CNAME chain", do("alias.example.com.")),
             ("NXDOMAIN", do("nothere.example.com.")),
             ("NODATA", do("www.example.com.", "MX")),
             ("wildcard", do("anything.wild.example.com.")),
             ("referral", do("host.sub.example.com.")),
             ("DNSKEY", do("example.com.", "DNSKEY"))]
    for rnd in (1, 2):
        m0 = x.metrics()
        got = udp_all(ns, [m for _, m in cases], "127.0.0.1", XDP_PORT)
        want = udp_all(ns, [m for _, m in cases], "127.0.0.1", REF_PORT)
        m1 = x.metrics()
        expect(m1["dnsd_xdp_answers_total"] - m0["dnsd_xdp_answers_total"] == len(cases),
               "round %d: not every signed answer went through XDP: %s -> %s" %
               (rnd, m0["dnsd_xdp_answers_total"], m1["dnsd_xdp_answers_total"]))
        for (label, m), a, b in zip(cases, got, want):
            what = "signed %s, round %d" % (label, rnd)
            expect(a is not None and a.id == m.id and a.ednsflags & dns.flags.DO,
                   "%s: %s" % (what, a))
            expect(a.rcode() == b.rcode() and _records(a) == _records(b),
                   "%s: xdp and socket differ:\n%s\n---\n%s" % (what, a, b))
            expect(_validate(what, a, keyset) >= 1, "%s: nothing signed: %s" % (what, a))
    x.stop()
    ref.stop()


if __name__ == "__main__":
    # SIGTERM (a runner's timeout) unwinds through the cleanups, so the
    # namespaces and processes are still removed.
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    run()
