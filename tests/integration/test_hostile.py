"""Hostile conditions against the real dnsd on loopback.

- TCP slow-loris: 1,000 connections at once, half trickling one byte a
  second, half silent: a new client is answered within 1 s while they are
  all connected; the idle and per-message timeouts close every one of them;
  the counters (/metrics) show it.
- --tcp-max-clients: the cap holds, the longest idle makes room, counted.
- Malformed and stuffed queries at full rate for HOSTILE_SECONDS (default
  20): every malformed case of test_dns.py's malformed_input, queries with
  hundreds of records, huge and numerous EDNS options, oversized packets,
  over UDP and pipelined over TCP. dnsd stays up, answers normally
  afterwards, its RSS stays flat, and (under `make asan`, where BIN is the
  sanitizer build) it prints no sanitizer report.
- The API refuses an oversized request body with 413 and keeps serving.

Figures (rates, RSS) are printed for the README."""
import ast
import os
import resource
import select
import socket
import struct
import time
import urllib.error
import urllib.request

import dns.flags
import dns.message
import dns.query
import dns.rcode

import gslbtest
from gslbtest import BIN, Dnsd, ZONES, free_port, make_query, run, test, tmpdir

EXAMPLE_COM = os.path.join(ZONES, "example.com.zone")
SECONDS = float(os.environ.get("HOSTILE_SECONDS", "20"))
HERE = os.path.dirname(os.path.abspath(__file__))


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(n, hard) if hard != resource.RLIM_INFINITY else n, hard))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft


def sanitized():
    with open(os.path.join(BIN, "dnsd"), "rb") as f:
        data = f.read()
    return b"__asan_" in data


def start(extra, threads=2):
    tok = os.path.join(tmpdir(), "token")
    with open(tok, "w") as f:
        f.write("secret-token\n")
    api_port = free_port()
    env = dict(os.environ)
    if sanitized():
        # Keep ASan's quarantine small so that freed TCP connections do
        # not read as growth; findings are still reported.
        env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + \
            ":quarantine_size_mb=4:thread_local_quarantine_size_kb=64"
    d = Dnsd(["--zone", EXAMPLE_COM, "--threads", str(threads),
              "--api", "127.0.0.1:%d" % api_port, "--api-token-file", tok] + extra, env=env)
    d.api = "http://127.0.0.1:%d" % api_port
    return d


def metrics(d):
    with urllib.request.urlopen(d.api + "/metrics", timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            try:
                out[k] = float(v)
            except ValueError:
                pass
    return out


def closed_idle(m):
    return m.get('dnsd_tcp_closed_total{reason="idle"}', 0)


def closed_cap(m):
    return m.get('dnsd_tcp_closed_total{reason="cap"}', 0)


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def no_sanitizer_report(d):
    out = d.output()
    for needle in ("ERROR: AddressSanitizer", "runtime error", "ERROR: LeakSanitizer",
                   "WARNING: ThreadSanitizer"):
        expect(needle not in out, "dnsd printed %r:\n%s" % (needle, out[-4000:]))


def timed_query(d, tcp):
    t0 = time.monotonic()
    q = make_query("www.example.com.", "A")
    r = (dns.query.tcp if tcp else dns.query.udp)(q, "127.0.0.1", port=d.port, timeout=1.0)
    dt = time.monotonic() - t0
    expect(r.rcode() == dns.rcode.NOERROR and len(r.answer) == 1, r)
    return dt


def connect_many(port, n):
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        socks.append(s)
    # wait until every connect completed
    deadline = time.monotonic() + 10
    pending = set(socks)
    while pending and time.monotonic() < deadline:
        _, w, _ = select.select([], list(pending)[:500], [], 0.5)
        for s in w:
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            expect(err == 0, "connect: %s" % os.strerror(err))
            pending.discard(s)
    expect(not pending, "%d connects did not complete" % len(pending))
    return socks


def is_closed(s):
    """True when the server closed s (EOF or reset)."""
    try:
        data = s.recv(4096)
        return data == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


@test
def tcp_slowloris_thousand_connections():
    n = 1000
    expect(raise_nofile(n + 200) >= n + 200, "cannot raise RLIMIT_NOFILE")
    # every connection comes from 127.0.0.1: no per-source cap here
    d = start(["--tcp-idle-timeout", "2", "--tcp-max-clients", "2000",
               "--tcp-max-per-source", "0"])
    before = metrics(d)
    t_open = time.monotonic()
    socks = connect_many(d.port, n)
    slow, silent = socks[: n // 2], socks[n // 2:]
    msg = make_query("www.example.com.", "A").to_wire()
    framed = struct.pack("!H", len(msg)) + msg
    open_slow = {s: 0 for s in slow}         # socket -> bytes sent
    open_silent = set(silent)
    latencies = []
    accepted = 0
    deadline = time.monotonic() + 10
    next_byte = time.monotonic()
    next_probe = time.monotonic() + 0.2
    while (open_slow or open_silent) and time.monotonic() < deadline:
        now = time.monotonic()
        if now >= next_byte:                 # one byte a second each
            for s in list(open_slow):
                try:
                    s.send(framed[open_slow[s]:open_slow[s] + 1])
                    open_slow[s] += 1
                except BlockingIOError:
                    pass
                except OSError:
                    del open_slow[s]
            next_byte += 1.0
        if now >= next_probe and now - t_open < 1.9:
            # every abuser is still connected: a newcomer is answered
            latencies.append(timed_query(d, tcp=True))
            latencies.append(timed_query(d, tcp=False))
            if not accepted:
                accepted = metrics(d).get("dnsd_tcp_connections_total", 0) - \
                    before.get("dnsd_tcp_connections_total", 0)
            next_probe = now + 0.4
        r, _, _ = select.select(list(open_slow)[:400] + list(open_silent)[:400], [], [], 0.05)
        for s in r:
            if is_closed(s):
                open_slow.pop(s, None)
                open_silent.discard(s)
        # select() takes at most ~1000 descriptors: sweep the rest too
        for s in list(open_silent)[400:] + list(open_slow)[400:]:
            if is_closed(s):
                open_slow.pop(s, None)
                open_silent.discard(s)
    elapsed = time.monotonic() - t_open
    after = metrics(d)
    for s in socks:
        s.close()
    print("slow-loris: %d connections (%d accepted while probing), newcomer latency max %.1f ms, "
          "all closed after %.1f s; closed idle +%d" %
          (n, accepted, 1000 * max(latencies or [0]), elapsed,
           closed_idle(after) - closed_idle(before)))
    expect(accepted >= n, "only %d of %d connections accepted at once" % (accepted, n))
    expect(len(latencies) >= 4 and max(latencies) < 1.0, "newcomer latencies %s" % latencies)
    expect(not open_slow and not open_silent, "%d trickling and %d silent connections still open "
           "after %.1f s" % (len(open_slow), len(open_silent), elapsed))
    expect(closed_idle(after) - closed_idle(before) >= n,
           "idle closes counted: %d" % (closed_idle(after) - closed_idle(before)))
    expect(closed_cap(after) == closed_cap(before), "cap closes: %s" % closed_cap(after))
    # still serving
    timed_query(d, tcp=True)
    no_sanitizer_report(d)
    expect(d.stop() == 0, "dnsd exit status")


@test
def tcp_max_clients_enforced():
    cap = 50
    d = start(["--tcp-idle-timeout", "30", "--tcp-max-clients", str(cap),
               "--tcp-max-per-source", "0"], threads=1)
    before = metrics(d)
    socks = connect_many(d.port, 4 * cap)
    time.sleep(0.5)
    # a newcomer is still answered: the longest idle made room
    timed_query(d, tcp=True)
    time.sleep(0.3)
    still = [s for s in socks if not is_closed(s)]
    after = metrics(d)
    print("tcp-max-clients %d: %d connections opened, %d left open, closed for the cap +%d" %
          (cap, len(socks), len(still), closed_cap(after) - closed_cap(before)))
    expect(len(still) <= cap, "%d connections open, cap %d" % (len(still), cap))
    expect(closed_cap(after) - closed_cap(before) >= 3 * cap, (before, after))
    # the survivors are the newest ones (the oldest idle were closed first)
    expect(all(s in socks[-cap - 1:] for s in still), "an old connection survived")
    for s in socks:
        s.close()
    no_sanitizer_report(d)
    expect(d.stop() == 0, "dnsd exit status")


def malformed_cases():
    """The (name, packet) cases of test_dns.py's malformed_input, read from
    its source and evaluated with its helpers, so a case added there is
    sent here too."""
    saved = list(gslbtest._tests)
    import test_dns                           # registers its tests: undone below
    gslbtest._tests[:] = saved
    src = open(os.path.join(HERE, "test_dns.py")).read()
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.FunctionDef) and node.name == "malformed_input":
            for st in node.body:
                if isinstance(st, ast.Assign) and getattr(st.targets[0], "id", "") == "cases":
                    expr = ast.Expression(st.value)
                    cases = eval(compile(expr, "test_dns.py", "eval"), vars(test_dns))
                    return [(name, pkt) for name, pkt, _ in cases], test_dns
    raise AssertionError("test_dns.py: malformed_input has no 'cases' list")


def stuffed_cases(t):
    """Queries stuffed with records and EDNS options."""
    h, q = t.header, t.QWWW
    rr_a = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xc0\x00\x02\x01"
    rr_empty = b"\xc0\x0c\x00\x10\x00\x01\x00\x00\x00\x00\x00\x00"

    def opt(options, udp=4096):
        rd = b"".join(struct.pack("!HH", c, len(v)) + v for c, v in options)
        return b"\x00\x00\x29" + struct.pack("!HIH", udp, 0, len(rd)) + rd

    ecs = struct.pack("!HBB", 1, 24, 0) + b"\xc0\x00\x02"
    return [
        ("200 A records in additional", h(ar=200) + q + rr_a * 200),
        ("100 each in an/ns/ar", h(an=100, ns=100, ar=100) + q + rr_empty * 300),
        ("300 records and an OPT", h(ar=301) + q + rr_empty * 300 + opt([])),
        ("one 3000-octet EDNS option", h(ar=1) + q + opt([(65001, b"x" * 3000)])),
        ("500 empty EDNS options", h(ar=1) + q + opt([(65002, b"")] * 500)),
        ("300 NSID options", h(ar=1) + q + opt([(3, b"")] * 300)),
        ("200 ECS options", h(ar=1) + q + opt([(8, ecs)] * 200)),
        ("ECS with a 2000-octet address", h(ar=1) + q + opt([(8, struct.pack("!HBB", 1, 24, 0) + b"\xff" * 2000)])),
        ("ECS family 2, prefix 200", h(ar=1) + q + opt([(8, struct.pack("!HBB", 2, 200, 0) + b"\x20" * 25)])),
        ("cookie 40 octets", h(ar=1) + q + opt([(10, b"c" * 40)])),
        ("two OPT records", h(ar=2) + q + opt([]) + opt([])),
        ("OPT udp size 0", h(ar=1) + q + opt([], udp=0)),
        ("4000 octets of records", h(ar=250) + q + rr_a * 250),
        ("oversize 9000 octets", h(ar=560) + q + rr_a * 560),
        ("ANY with DO and huge option", h(ar=1) + q[:-4] + b"\x00\xff\x00\x01" +
         b"\x00\x00\x29\x10\x00\x00\x00\x80\x00" + struct.pack("!H", 1504) +
         struct.pack("!HH", 65003, 1500) + b"z" * 1500),
    ]


@test
def malformed_and_stuffed_at_full_rate():
    cases, t = malformed_cases()
    expect(len(cases) >= 25, "only %d malformed cases found" % len(cases))
    cases += stuffed_cases(t)
    pkts = [p for _, p in cases]
    d = start([], threads=2)

    def blast(seconds, tcp_every=2000):
        socks = []
        for _ in range(4):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
            s.setblocking(False)
            s.connect(("127.0.0.1", d.port))
            socks.append(s)
        sent = replies = tcp_msgs = 0
        t0 = time.monotonic()
        i = 0
        while time.monotonic() - t0 < seconds:
            for _ in range(200):
                i += 1
                try:
                    socks[i & 3].send(pkts[i % len(pkts)])
                    sent += 1
                except BlockingIOError:
                    pass
                except OSError:
                    pass                      # e.g. a 9000-octet datagram refused
            for s in socks:
                while True:
                    try:
                        s.recv(65535)
                        replies += 1
                    except (BlockingIOError, ConnectionRefusedError):
                        break
            if i % tcp_every < 200:
                # every case pipelined over one TCP connection; the server
                # closes it at the first bad frame
                c = socket.create_connection(("127.0.0.1", d.port), timeout=2)
                c.sendall(b"".join(struct.pack("!H", len(p) & 0xffff) + p for p in pkts
                                   if len(p) < 65536))
                tcp_msgs += len(pkts)
                try:
                    while c.recv(65535):
                        pass
                except OSError:
                    pass
                c.close()
            expect(d.alive(), "dnsd died: %s" % d.output()[-4000:])
        for s in socks:
            s.close()
        return sent, replies, tcp_msgs, time.monotonic() - t0

    blast(min(3.0, SECONDS / 4))               # warm up: buffers, pages, connections
    time.sleep(0.5)
    rss0 = rss_kb(d.pid)
    sent, replies, tcp_msgs, secs = blast(SECONDS)
    time.sleep(0.5)
    rss1 = rss_kb(d.pid)
    expect(d.alive(), "dnsd died: %s" % d.output()[-4000:])
    # it still answers normally, over UDP and TCP
    for tcp in (False, True):
        timed_query(d, tcp)
    m = metrics(d)
    print("malformed/stuffed: %d cases, %d UDP packets in %.1f s (%.0f/s), %d replies, "
          "%d TCP messages; RSS %d -> %d kB (%+.1f%%); FORMERR %d, dropped %d, tcp closed bad %d" %
          (len(pkts), sent, secs, sent / secs, replies, tcp_msgs, rss0, rss1,
           100.0 * (rss1 - rss0) / rss0, m.get("dnsd_malformed_total", 0),
           m.get("dnsd_dropped_total", 0), m.get('dnsd_tcp_closed_total{reason="bad"}', 0)))
    expect(sent > 1000 * SECONDS, "only %d packets sent" % sent)
    expect(replies > 0.3 * sent, "only %d replies to %d packets" % (replies, sent))
    expect(rss1 <= rss0 * 1.10 + 2048, "RSS grew from %d to %d kB" % (rss0, rss1))
    no_sanitizer_report(d)
    expect(d.stop() == 0, "dnsd exit status")
    no_sanitizer_report(d)


@test
def api_request_size_bounded():
    d = start([], threads=1)
    # Raw HTTP: the server may answer 413 and close before the body is
    # all sent, so send what it takes and read the reply.
    host, port = d.api[len("http://"):].rsplit(":", 1)
    body_len = 2 * 1024 * 1024
    c = socket.create_connection((host, int(port)), timeout=5)
    c.sendall(("POST /v1/reports HTTP/1.1\r\nHost: %s\r\n"
               "Authorization: Bearer secret-token\r\nContent-Type: application/json\r\n"
               "Content-Length: %d\r\n\r\n" % (host, body_len)).encode())
    reply = b""
    try:
        chunk = b" " * 65536
        for _ in range(body_len // len(chunk)):
            c.sendall(chunk)
    except OSError:
        pass                                  # closed after its 413: fine
    try:
        while b"\r\n" not in reply:
            data = c.recv(4096)
            if not data:
                break
            reply += data
    except OSError:
        pass
    c.close()
    status = reply.split(b"\r\n", 1)[0].decode(errors="replace")
    expect(status.startswith("HTTP/1.1 413"), "2 MB report body: %r, want 413" % status)
    # the API and DNS keep serving
    expect("dnsd_tcp_connections_total" in metrics(d), "metrics after 413")
    timed_query(d, tcp=False)
    no_sanitizer_report(d)
    expect(d.stop() == 0, "dnsd exit status")


if __name__ == "__main__":
    run()
