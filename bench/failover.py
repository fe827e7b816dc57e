#!/usr/bin/python3
"""bench/failover.py - failover time of a failover service (issue 5).

  failover.py [--runs N] [--tsv FILE] [--query-ms MS] [--max-wait S]

Starts, all on 127.0.0.1 and in a temporary directory: two small HTTP
backends (this script run with --backend PORT), bin/dnsd with --db, --api and
--check-interval 1, and two bin/gslb-probe agents with --interval 1.  The
store holds fo.gslb.example.com, policy failover, with endpoints 192.0.2.1
(priority 0) and 192.0.2.2 (priority 10) whose checks are HTTP GETs of the
backends (--check-interval 1 --check-fall 2 --check-rise 2).

Each run: wait a random 0..1 s (so the kill falls anywhere in the check
cycle), kill the active backend (SIGKILL), then query dnsd every --query-ms
(default 25) ms until the first answer without 192.0.2.1: that time is the
failover time.  Then restart the backend and time the first answer with
192.0.2.1 again (failback, for information).  Prints each run and the
medians, and "FAILOVER run=N failover_s=X failback_s=Y" lines; --tsv
appends "run<TAB>failover<TAB>failback" lines (or "timeout").

Every wait is bounded (--max-wait, default 20 s); every process is stopped
by its PID at the end, also on errors and Ctrl-C.  Exit 0 when every run was
measured, 1 otherwise, 2 on bad options.
"""
import argparse
import json
import os
import random
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAME = "fo.gslb.example.com."
PRIMARY, BACKUP = "192.0.2.1", "192.0.2.2"


def backend(port):
    """--backend PORT: answer every GET with 200 'ok' until killed."""
    import http.server

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"ok\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    http.server.ThreadingHTTPServer.allow_reuse_address = True
    http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()


def free_port(used):
    for _ in range(100):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            u.bind(("127.0.0.1", 0))
            p = u.getsockname()[1]
            t.bind(("127.0.0.1", p))
        except OSError:
            continue
        finally:
            u.close()
            t.close()
        if p not in used:
            used.add(p)
            return p
    raise RuntimeError("no free port on 127.0.0.1")


class Procs:
    """Every process we start, stopped by PID in reverse order."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.procs = []

    def start(self, tag, argv):
        log = open(os.path.join(self.tmp, tag + ".log"), "ab")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL)
        log.close()
        self.procs.append(p)
        return p

    @staticmethod
    def stop(p, sig=signal.SIGTERM):
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)

    def stop_all(self):
        for p in reversed(self.procs):
            self.stop(p)


def query(sock, port, qid):
    """A records of NAME from dnsd, or None (no answer within 200 ms)."""
    q = struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 0)
    for label in NAME.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack("!HH", 1, 1)
    sock.sendto(q, ("127.0.0.1", port))
    deadline = time.monotonic() + 0.2
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        sock.settimeout(left)
        try:
            p, _ = sock.recvfrom(4096)
        except socket.timeout:
            return None
        if len(p) < 12 or struct.unpack("!H", p[:2])[0] != qid:
            continue
        an = struct.unpack("!H", p[6:8])[0]
        o = len(q)
        out = []
        for _ in range(an):
            if p[o] & 0xC0 == 0xC0:
                o += 2
            else:
                while p[o]:
                    o += 1 + p[o]
                o += 1
            t, _c, _ttl, rdlen = struct.unpack("!HHIH", p[o:o + 10])
            o += 10
            if t == 1 and rdlen == 4:
                out.append(socket.inet_ntoa(p[o:o + 4]))
            o += rdlen
        return out


def wait_for(pred, max_wait, step):
    """Calls pred() every step s until it returns a true value or max_wait
    passes; returns (value, seconds) or (None, None)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < max_wait:
        v = pred()
        if v:
            return v, time.monotonic() - t0
        time.sleep(step)
    return None, None


def main(argv):
    if len(argv) == 3 and argv[1] == "--backend":
        backend(int(argv[2]))
        return 0
    ap = argparse.ArgumentParser(
        description="failover time of a failover service (bench/README.md)")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--tsv")
    ap.add_argument("--query-ms", type=float, default=25)
    ap.add_argument("--max-wait", type=float, default=20)
    a = ap.parse_args(argv[1:])
    if not 1 <= a.runs <= 100 or not 5 <= a.query_ms <= 1000 or \
            not 5 <= a.max_wait <= 300:
        sys.stderr.write("failover.py: --runs 1..100, --query-ms 5..1000, "
                         "--max-wait 5..300\n")
        return 2
    for b in ("dnsd", "gslbctl", "gslb-probe"):
        if not os.access(os.path.join(ROOT, "bin", b), os.X_OK):
            sys.stderr.write("failover.py: bin/%s is missing (run make)\n" % b)
            return 1
    tmp = tempfile.mkdtemp(prefix="gslb-failover.")
    procs = Procs(tmp)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    try:
        return run(a, tmp, procs)
    except KeyboardInterrupt:
        return 130
    finally:
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


def run(a, tmp, procs):
    used = set()
    bport = {PRIMARY: free_port(used), BACKUP: free_port(used)}
    dport, aport = free_port(used), free_port(used)
    db = os.path.join(tmp, "fo.db")
    token = os.path.join(tmp, "token")
    with open(token, "w") as f:
        f.write("bench-failover-token\n")
    ctl = [os.path.join(ROOT, "bin", "gslbctl"), "--db", db]
    steps = [["init"],
             ["service", "add", NAME, "--policy", "failover", "--ttl", "5"]]
    for target, prio in ((PRIMARY, "0"), (BACKUP, "10")):
        steps.append(["endpoint", "add", NAME, target, "--priority", prio,
                      "--check", "http://127.0.0.1:%d/health" % bport[target],
                      "--check-interval", "1", "--check-timeout", "1",
                      "--check-fall", "2", "--check-rise", "2"])
    for s in steps:
        r = subprocess.run(ctl + s, capture_output=True, text=True)
        if r.returncode != 0:
            print("failover: gslbctl %s: %s" % (" ".join(s), r.stderr.strip()))
            return 1
    back = {}
    for target in (PRIMARY, BACKUP):
        back[target] = procs.start("backend-" + target, [
            sys.executable, os.path.abspath(__file__), "--backend",
            str(bport[target])])
    dnsd = procs.start("dnsd", [
        os.path.join(ROOT, "bin", "dnsd"), "--listen", "127.0.0.1:%d" % dport,
        "--zone", os.path.join(ROOT, "zones", "gslb.example.com.zone"),
        "--db", db, "--api", "127.0.0.1:%d" % aport, "--api-token-file",
        token, "--check-interval", "1", "--threads", "1"])
    for i in (1, 2):
        procs.start("probe%d" % i, [
            os.path.join(ROOT, "bin", "gslb-probe"), "--name", "bench%d" % i,
            "--region", "r%d" % i, "--server", "http://127.0.0.1:%d" % aport,
            "--token-file", token, "--interval", "1"])
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    qid = [0]

    def answer():
        qid[0] = (qid[0] + 1) & 0xFFFF
        return query(sock, dport, qid[0])

    def both_up():
        if dnsd.poll() is not None:
            raise RuntimeError("dnsd exited with status %d; see its log"
                               % dnsd.returncode)
        r = subprocess.run(ctl + ["status", NAME, "--json"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            return False
        try:
            svc = json.loads(r.stdout)["services"][0]
        except (ValueError, KeyError, IndexError):
            return False
        return all(e["health"] == "up" for e in svc["endpoints"])

    print("failover: dnsd on 127.0.0.1:%d (API %d), 2 probe agents "
          "(--interval 1), checks every 1 s, fall 2, rise 2; querying every "
          "%g ms" % (dport, aport, a.query_ms))
    ok, t = wait_for(both_up, a.max_wait, 0.2)
    if not ok:
        print("failover: both endpoints not up within %g s (logs in %s)"
              % (a.max_wait, tmp))
        for tag in ("dnsd", "probe1"):
            with open(os.path.join(tmp, tag + ".log")) as f:
                print("--- %s log:\n%s" % (tag, "".join(f.readlines()[-10:])))
        return 1
    print("failover: both endpoints up after %.2f s" % t)
    rng = random.Random(5)
    step = a.query_ms / 1000
    fo_times, fb_times, bad = [], [], 0
    for n in range(1, a.runs + 1):
        ok, _ = wait_for(lambda: answer() == [PRIMARY], a.max_wait, step)
        if not ok:
            print("failover: run %d: %s not answered before the kill" % (n, PRIMARY))
            bad += 1
            break
        time.sleep(rng.uniform(0, 1))
        procs.stop(back[PRIMARY], signal.SIGKILL)
        t0 = time.monotonic()
        ans, _ = wait_for(lambda: (lambda r: r is not None and r and
                                   PRIMARY not in r)(answer()),
                          a.max_wait, step)
        fo = time.monotonic() - t0 if ans else None
        back[PRIMARY] = procs.start("backend-" + PRIMARY, [
            sys.executable, os.path.abspath(__file__), "--backend",
            str(bport[PRIMARY])])
        t1 = time.monotonic()
        ok, _ = wait_for(lambda: answer() == [PRIMARY], a.max_wait, step)
        fb = time.monotonic() - t1 if ok else None
        fo_s = "%.3f" % fo if fo is not None else "timeout"
        fb_s = "%.3f" % fb if fb is not None else "timeout"
        print("  run %d: failover %s s, failback %s s" % (n, fo_s, fb_s))
        print("FAILOVER run=%d failover_s=%s failback_s=%s" % (n, fo_s, fb_s))
        if a.tsv:
            with open(a.tsv, "a") as f:
                f.write("%d\t%s\t%s\n" % (n, fo_s, fb_s))
        if fo is None or fb is None:
            bad += 1
            if fb is None:
                break
        else:
            fo_times.append(fo)
            fb_times.append(fb)
    if fo_times:
        med = statistics.median(fo_times)
        print("failover median: %.2f s over %d runs (min %.2f, max %.2f; "
              "target <= 3.0 s, %s)" % (med, len(fo_times), min(fo_times),
                                      max(fo_times),
                                      "met" if med <= 3.0 and not bad
                                      else "MISSED"))
        print("failback median: %.2f s" % statistics.median(fb_times))
    return 1 if bad or not fo_times else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
