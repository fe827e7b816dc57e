#!/usr/bin/python3
"""bench/scale.py - the scale bench (`make bench-scale`): a store of many
balanced names, and what a change costs while queries run.

  scale.py [SERVICES ...]        (default: 100000; BENCH_SCALE="100000 1000000")

For each size: SERVICES services x 4 endpoints, a third each failover,
weighted and geo (endpoints with coordinates), the failover services'
endpoints with a TCP check. The store is written straight into SQLite in
one transaction (as a bulk load; `gslbctl import` is measured by the import
bench). Then, on loopback, with dnsd on one query thread (--threads 1,
--db-poll-ms 50, the API on):
  start      seconds from exec to an answer for the last service, and RSS
  idle q/s   the load generator (closed loop, random services) alone
  flips      100 `gslbctl flip` of random failover services, 10 a second,
             while the load generator runs: seconds from the commit
             (gslbctl's exit) to the new answer on the wire, p50/p99; q/s
             over the same window vs idle; RSS before and at most during
  health     100 health transitions (an agent's report through the API
             taking a failover service's first endpoint down, then up):
             seconds from the report's reply to the answer changing
Writes a TSV per size to OUTDIR (BENCH_OUT, default build/bench/scale) and
prints a Markdown table row. Loopback only; every process started is stopped
by its PID.
"""
import json
import os
import random
import socket
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("BIN", os.path.join(ROOT, "bin"))
OUT = os.environ.get("BENCH_OUT", os.path.join(ROOT, "build", "bench", "scale"))
LOADGEN = os.path.join(ROOT, "build", "bench", "loadgen")
TOKEN = "bench-scale-token-0123456789abcdef"
FLIPS = int(os.environ.get("BENCH_FLIPS", "100"))
HEALTH = int(os.environ.get("BENCH_HEALTH", "100"))


def say(*a):
    print(*a, flush=True)


def addr(n):
    return "10.%d.%d.%d" % ((n >> 16) & 255, (n >> 8) & 255, n & 255)


def name(i):
    return "b%d.svc.test." % i


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def make_store(db, n):
    subprocess.run([os.path.join(BIN, "gslbctl"), "--db", db, "init"], check=True,
                   capture_output=True)
    c = sqlite3.connect(db)
    c.execute("PRAGMA synchronous = OFF")
    rnd = random.Random(1)
    pols = ("failover", "weighted", "geo")
    c.executemany("INSERT INTO services (id, name, policy, ttl) VALUES (?, ?, ?, 60)",
                  ((i + 1, name(i), pols[i % 3]) for i in range(n)))

    def eps():
        for i in range(n):
            for k in range(4):
                e = i * 4 + k
                pol = pols[i % 3]
                lat = lon = None
                if pol == "geo":
                    lat, lon = rnd.uniform(-60, 60), rnd.uniform(-180, 180)
                yield (e + 1, i + 1, addr(e), k + 1 if pol == "weighted" else 1,
                       k * 10 if pol == "failover" else 0, lat, lon,
                       "tcp://%s:80" % addr(e) if pol == "failover" else None)
    c.executemany("INSERT INTO endpoints (id, service_id, target, weight, priority, lat, "
                  "lon, check_url) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", eps())
    c.commit()
    c.close()


def zone(path):
    with open(path, "w") as f:
        f.write("$ORIGIN svc.test.\n$TTL 300\n@ IN SOA ns1 host 1 3600 600 86400 30\n"
                "@ IN NS ns1\nns1 IN A 127.0.0.1\n")


def query(port, qname, timeout=1.0):
    """The A addresses of qname (sorted), by hand over UDP."""
    qid = random.randrange(65536)
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for lab in qname.rstrip(".").split("."):
        q += bytes([len(lab)]) + lab.encode()
    q += b"\0" + struct.pack("!HH", 1, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(q, ("127.0.0.1", port))
        while True:
            r = s.recv(4096)
            if r[:2] == q[:2]:
                break
    except OSError:
        return None
    finally:
        s.close()
    an = struct.unpack("!H", r[6:8])[0]
    o = len(q)
    out = []
    for _ in range(an):
        while r[o] and r[o] & 0xC0 != 0xC0:
            o += r[o] + 1
        o += 2 if r[o] & 0xC0 == 0xC0 else 1
        t, _c, _ttl, ln = struct.unpack("!HHIH", r[o:o + 10])
        o += 10
        if t == 1:
            out.append(socket.inet_ntoa(r[o:o + 4]))
        o += ln
    return sorted(out)


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1])
    return 0


def loadgen(port, qfile, seconds):
    p = subprocess.run([LOADGEN, "-s", "127.0.0.1", "-p", str(port), "-d", qfile,
                        "-l", str(seconds), "-c", "4", "-w", "128"],
                       capture_output=True, text=True, timeout=seconds + 60)
    for ln in p.stdout.splitlines():
        if ln.startswith("RESULT "):
            kv = dict(x.split("=", 1) for x in ln.split()[1:])
            return float(kv["qps"]), int(kv["lost"])
    raise RuntimeError("loadgen: %s %s" % (p.stdout[-300:], p.stderr[-300:]))


def wait_answer(port, qname, want, limit=30.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        if query(port, qname, 0.5) == want:
            return time.monotonic()
        time.sleep(0.002)
    raise RuntimeError("%s never answered %s" % (qname, want))


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def report(api, eid, down):
    body = json.dumps({"agent": "bench-eu", "region": "eu", "results": [
        {"id": eid, "state": "down" if down else "up", "ok": not down,
         "rtt_ms": None if down else 1.0, "ts": time.time(), "detail": ""}]}).encode()
    req = urllib.request.Request("http://127.0.0.1:%d/v1/reports" % api, data=body,
                                 headers={"Authorization": "Bearer " + TOKEN,
                                          "Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=10).read()


def metrics(api):
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % api, timeout=30).read().decode()
    out = {}
    for ln in text.splitlines():
        if ln.startswith("dnsd_snapshot_builds_total{"):
            out[ln.split('"')[1]] = int(ln.rsplit(" ", 1)[1])
    return out


def run_size(n):
    d = tempfile.mkdtemp(prefix="scale-", dir=OUT)
    db, zf, tok, qf = (os.path.join(d, x) for x in ("s.db", "svc.zone", "token", "q.txt"))
    t0 = time.monotonic()
    make_store(db, n)
    say("  store: %d services, %d endpoints written in %.1f s" % (n, 4 * n, time.monotonic() - t0))
    zone(zf)
    with open(tok, "w") as f:
        f.write(TOKEN + "\n")
    rnd = random.Random(2)
    with open(qf, "w") as f:
        for _ in range(min(n, 200000)):
            f.write("%s A\n" % name(rnd.randrange(n)))
    port, api = free_port(), free_port()
    t0 = time.monotonic()
    p = subprocess.Popen([os.path.join(BIN, "dnsd"), "--listen", "127.0.0.1:%d" % port,
                          "--zone", zf, "--db", db, "--threads", "1", "--db-poll-ms", "50",
                          "--api", "127.0.0.1:%d" % api, "--api-token-file", tok,
                          "--log-level", "warn"],
                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(d, "dnsd.log"), "w"))
    row = {"services": n}
    try:
        last = n - 1
        want_last = [addr(last * 4)] if last % 3 == 0 else None
        while time.monotonic() - t0 < 120:
            a = query(port, name(last), 0.2)
            if a and (want_last is None or a == want_last):
                break
            if p.poll() is not None:
                raise RuntimeError("dnsd exited")
        row["start_s"] = time.monotonic() - t0
        time.sleep(1)
        row["rss_mb"] = rss_kb(p.pid) / 1024.0
        say("  start %.2f s, RSS %.0f MB" % (row["start_s"], row["rss_mb"]))
        row["idle_qps"], _ = loadgen(port, qf, 5)
        say("  idle: %.0f q/s" % row["idle_qps"])

        # Flips at 10 a second while the load generator runs.
        m0 = metrics(api)
        peak = [rss_kb(p.pid)]
        base_rss = peak[0]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], rss_kb(p.pid))
                time.sleep(0.02)
        th = threading.Thread(target=sample)
        th.start()
        res = {}
        window = FLIPS / 10.0 + 1
        lg = threading.Thread(target=lambda: res.update(q=loadgen(port, qf, window)))
        lg.start()
        lat = []
        flip_t0 = time.monotonic()
        used = set()
        for k in range(FLIPS):
            i = rnd.randrange(n // 3) * 3          # a failover service
            while i in used:
                i = rnd.randrange(n // 3) * 3
            used.add(i)                          # its first endpoint stands
            tgt = rnd.randrange(1, 4)
            slot = flip_t0 + k * 0.1
            if time.monotonic() < slot:
                time.sleep(slot - time.monotonic())
            subprocess.run([os.path.join(BIN, "gslbctl"), "--db", db, "flip", name(i),
                            addr(i * 4 + tgt)], check=True, capture_output=True)
            tc = time.monotonic()
            ts = wait_answer(port, name(i), [addr(i * 4 + tgt)])
            lat.append(ts - tc)
        lg.join()
        stop.set()
        th.join()
        m1 = metrics(api)
        row["flip_p50_ms"] = pct(lat, 50) * 1000
        row["flip_p99_ms"] = pct(lat, 99) * 1000
        row["flip_qps"] = res["q"][0]
        row["rss_growth_pct"] = 100.0 * (peak[0] - base_rss) / base_rss
        row["incremental"] = m1.get("incremental", 0) - m0.get("incremental", 0)
        row["full"] = m1.get("full", 0) - m0.get("full", 0)
        say("  flips: served p50 %.1f ms p99 %.1f ms; %.0f q/s during them (%.2f of idle); "
            "RSS %+.1f%% at most; builds %d incremental, %d full" % (
                row["flip_p50_ms"], row["flip_p99_ms"], row["flip_qps"],
                row["flip_qps"] / row["idle_qps"], row["rss_growth_pct"],
                row["incremental"], row["full"]))

        # Health transitions through the API.
        hl = []
        for k in range(HEALTH):
            i = rnd.randrange(n // 3) * 3
            first = i * 4        # priority 0 unless flipped above
            cur = query(port, name(i))
            if cur != [addr(first)]:
                continue
            report(api, first + 1, True)
            tc = time.monotonic()
            ts = wait_answer(port, name(i), [addr(first + 1)])
            hl.append(ts - tc)
            report(api, first + 1, False)
            wait_answer(port, name(i), [addr(first)])
        row["health_p50_ms"] = pct(hl, 50) * 1000
        row["health_p99_ms"] = pct(hl, 99) * 1000
        say("  health transitions (%d): served p50 %.1f ms p99 %.1f ms" % (
            len(hl), row["health_p50_ms"], row["health_p99_ms"]))
    finally:
        p.terminate()
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
    with open(os.path.join(OUT, "scale-%d.tsv" % n), "w") as f:
        for k, v in row.items():
            f.write("%s\t%s\n" % (k, v))
    if os.environ.get("BENCH_KEEP") != "1":
        subprocess.run(["rm", "-rf", d])
    return row


def main(argv):
    sizes = [int(x) for x in (argv[1:] or os.environ.get("BENCH_SCALE", "100000").split())]
    os.makedirs(OUT, exist_ok=True)
    os.makedirs(os.path.dirname(LOADGEN), exist_ok=True)
    subprocess.run(["cc", "-O2", "-std=c11", "-D_GNU_SOURCE", "-o", LOADGEN,
                    os.path.join(ROOT, "bench", "loadgen.c")], check=True)
    rows = []
    for n in sizes:
        say("== scale: %d services x 4 endpoints" % n)
        rows.append(run_size(n))
    say("")
    say("| store | dnsd ready | dnsd RSS | flip served p50 / p99 | health served p50 / p99 "
        "| q/s idle / during flips | RSS growth during flips |")
    say("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        say("| %dk services | %.2f s | %.0f MB | %.0f / %.0f ms | %.0f / %.0f ms | %.0fk / %.0fk (%.2f) "
            "| %+.1f%% |" % (r["services"] // 1000, r["start_s"], r["rss_mb"], r["flip_p50_ms"],
                              r["flip_p99_ms"], r["health_p50_ms"], r["health_p99_ms"],
                              r["idle_qps"] / 1000, r["flip_qps"] / 1000,
                              r["flip_qps"] / r["idle_qps"], r["rss_growth_pct"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
