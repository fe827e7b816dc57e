#!/usr/bin/python3
"""The API under a connection flood: 10,000 idle and 1,000 slow-header
connections while an agent keeps reporting; dnsd's descriptors stay near
the cap, a trickling request is cut at its deadline, and an admin write
still completes within 1 s. The servers and credentials are those of
test_trust.py."""
# run_tests: alone
# (it bounds how long an admin write takes while it opens 11,000
# connections: other tests on the same CPUs would be measured with it)
import os
import resource
import socket
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from gslbtest import Skip, forget_tests, on_cleanup, run, test  # noqa: E402
from test_trust import FO, TOK, creds_server, fd_count, rss_kb  # noqa: E402

forget_tests()          # test_trust.py's own tests run in their script


@test
def test_connection_flood():
    """10,000 idle and 1,000 slow-header connections while an agent keeps
    reporting: dnsd's descriptors stay near the cap, a trickling request
    is cut at the deadline although bytes keep coming, and an admin write
    still completes within 1 s."""
    want = 10000 + 1000 + 200
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < want:
        raise Skip("RLIMIT_NOFILE hard limit %d < %d" % (hard, want))
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
    on_cleanup(lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard)))
    cap, deadline = 256, 3
    s = creds_server(["--api-max-connections", str(cap),
                      "--api-request-timeout", str(deadline)])
    e1 = s.ep("192.0.2.1")["id"]
    pid = s.dnsd.pid
    rss0 = rss_kb(pid)
    stop = threading.Event()
    reports = {"ok": 0, "fail": 0}

    def reporter():
        while not stop.is_set():
            try:
                code = s.report(TOK["eu-1"], "eu-1", "eu", e1, "up")[0]
            except OSError:
                code = 0
            reports["ok" if code == 200 else "fail"] += 1
            time.sleep(0.1)
    t = threading.Thread(target=reporter, daemon=True)
    t.start()
    on_cleanup(stop.set)

    socks, slow = [], []

    def open_conns(n, into):
        for _ in range(n):
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", s.api_port))
            into.append(c)
    def close_all():
        for c in socks + slow:
            c.close()
    on_cleanup(close_all)
    peak_fds = 0
    for _ in range(10):                    # 10,000 idle, in steps
        open_conns(1000, socks)
        time.sleep(0.2)
        peak_fds = max(peak_fds, fd_count(pid))
    open_conns(1000, slow)
    time.sleep(0.5)
    drip = 0
    t_drip = time.monotonic()
    for c in slow:
        try:
            c.send(b"POST /v1/reports HTTP/1.1\r\nHost: x\r\n")
        except OSError:
            pass
    writes = []
    while time.monotonic() - t_drip < deadline + 4:
        drip += 1
        for c in slow:
            try:
                c.send(b"X-Drip-%d: y\r\n" % drip)
            except OSError:
                pass
        peak_fds = max(peak_fds, fd_count(pid))
        t0 = time.monotonic()
        code, text = s.call("POST", "/v1/endpoint", TOK["admin"],
                            {"service": FO, "target": "192.0.2.2", "weight": 2 + drip})
        writes.append((time.monotonic() - t0, code))
        time.sleep(0.5)
    # The flood is over (the cap closed most of it): one more trickling
    # request, a header line every 0.3 s, is cut at the deadline although
    # bytes keep coming.
    late = socket.create_connection(("127.0.0.1", s.api_port), timeout=2)
    late.send(b"POST /v1/reports HTTP/1.1\r\n")
    t_late = time.monotonic()
    late_closed = None
    i = 0
    while late_closed is None and time.monotonic() - t_late < deadline + 5:
        i += 1
        try:
            late.send(b"X-Drip-%d: y\r\n" % i)
            late.settimeout(0.3)
            if late.recv(4096) == b"":
                late_closed = time.monotonic() - t_late
        except socket.timeout:
            pass
        except OSError:
            late_closed = time.monotonic() - t_late
    late.close()
    stop.set()
    t.join(5)
    assert all(code == 200 for _, code in writes), writes
    worst = max(d for d, _ in writes)
    assert worst < 1.0, writes
    assert late_closed is not None and deadline - 1 <= late_closed < deadline + 2.5, \
        late_closed
    # Bounded: accepting stops at 5/4 of the cap until the longest idle
    # are closed; plus the process's own descriptors.
    assert peak_fds < cap + cap // 4 + 200, peak_fds
    assert reports["ok"] > 10 and reports["fail"] <= reports["ok"] // 5, reports
    assert rss_kb(pid) < rss0 + 64 * 1024, (rss0, rss_kb(pid))
    print("    flood: peak dnsd fds %d (cap %d), admin writes %d, worst %.3f s, "
          "reports ok %d fail %d, trickle closed after %.1f s, rss %d -> %d kB"
          % (peak_fds, cap, len(writes), worst, reports["ok"], reports["fail"],
             late_closed, rss0, rss_kb(pid)))


if __name__ == "__main__":
    run()
