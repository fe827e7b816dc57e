#!/usr/bin/python3
"""bench/statuspage.py - dnsd's query rate with the status page open.

  statuspage.py [--services N] [--seconds S] [--rounds R]

Starts bin/dnsd (one query thread, pinned to CPU 0) with a store of N
balanced names (default 10,000; two endpoints each) and --api, and saturates
it with build/bench/loadgen (pinned to CPU 1; built here from
bench/loadgen.c when missing) querying those names. Rounds alternate:
without the page, then with a poller doing exactly what an open status page
does (GET /v1/ui/overview, /v1/ui/services?offset=0&limit=50 and /v1/events
every 2 s, also pinned to CPU 1). Prints the q/s of each round, the medians
and their ratio as "STATUSPAGE ratio=X"; exit 0 when it is >= 0.98.

Everything on 127.0.0.1, in a temporary directory; every process is stopped
by its PID at the end, also on errors."""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from benchlib import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("BIN", os.path.join(ROOT, "bin"))
LOADGEN = os.path.join(ROOT, "build", "bench", "loadgen")


def config(n):
    svcs = []
    for i in range(n):
        eps = [{"target": "198.51.%d.%d" % (i // 250, (i % 250) + k), "weight": 1,
                "priority": k, "region": "r%d" % (i % 8), "lat": float((i % 120) - 60),
                "lon": float((i * 7 % 340) - 170), "bias": 0.0, "admin": "auto",
                "drained": False, "check": None} for k in range(2)]
        svcs.append({"name": "svc%05d.gslb.example.com." % i, "policy": "failover", "ttl": 30,
                     "answers": None, "sticky": False, "when_down": "open",
                     "endpoints": eps, "rules": []})
    return {"version": 1, "services": svcs}


def poller(api, stop, counts):
    """What the page does every 2 s."""
    last = 0
    while not stop.is_set():
        t0 = time.monotonic()
        for path in ("/v1/ui/overview", "/v1/ui/services?offset=0&limit=50",
                     "/v1/events?limit=500&since=%d" % last):
            with urllib.request.urlopen(api + path, timeout=5) as r:
                body = r.read()
                counts["bytes"] += len(body)
            if path.startswith("/v1/events"):
                last = json.loads(body)["last"]
        counts["polls"] += 1
        stop.wait(max(0.0, 2.0 - (time.monotonic() - t0)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--services", type=int, default=10000)
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    if not os.path.exists(LOADGEN) or \
            os.path.getmtime(LOADGEN) < os.path.getmtime(os.path.join(ROOT, "bench", "loadgen.c")):
        os.makedirs(os.path.dirname(LOADGEN), exist_ok=True)
        subprocess.run(["cc", "-O2", "-std=c11", "-D_GNU_SOURCE", "-o", LOADGEN,
                        os.path.join(ROOT, "bench", "loadgen.c")], check=True)
    tmp = tempfile.mkdtemp(prefix="gslb-statuspage-")
    procs = []
    try:
        db = os.path.join(tmp, "gslb.db")
        cf = os.path.join(tmp, "config.json")
        with open(cf, "w") as f:
            json.dump(config(a.services), f)
        subprocess.run([os.path.join(BIN, "gslbctl"), "--db", db, "import", cf], check=True)
        tok = os.path.join(tmp, "token")
        with open(tok, "w") as f:
            f.write("bench\n")
        qf = os.path.join(tmp, "queries")
        with open(qf, "w") as f:
            for i in range(a.services):
                f.write("svc%05d.gslb.example.com. A\n" % i)
        port, api_port = free_port(), free_port()
        api = "http://127.0.0.1:%d" % api_port
        dn = subprocess.Popen(["taskset", "-c", "0", os.path.join(BIN, "dnsd"), "--zone",
                               os.path.join(ROOT, "zones", "gslb.example.com.zone"), "--db", db,
                               "--listen", "127.0.0.1:%d" % port, "--api",
                               "127.0.0.1:%d" % api_port, "--api-token-file", tok,
                               "--threads", "1"], stderr=subprocess.DEVNULL)
        procs.append(dn)
        for _ in range(100):
            try:
                with urllib.request.urlopen(api + "/v1/ui/overview", timeout=2) as r:
                    if json.loads(r.read())["services"] == a.services:
                        break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            raise SystemExit("dnsd did not start")
        res = {"without": [], "with": []}
        for rnd in range(a.rounds):
            for mode in ("without", "with"):
                stop = threading.Event()
                counts = {"polls": 0, "bytes": 0}
                t = None
                if mode == "with":
                    t = threading.Thread(target=poller, args=(api, stop, counts), daemon=True)
                    t.start()
                out = subprocess.run(["taskset", "-c", "1", LOADGEN, "-d", qf, "-s", "127.0.0.1",
                                      "-p", str(port), "-l", str(a.seconds)],
                                     capture_output=True, text=True, timeout=a.seconds + 60).stdout
                stop.set()
                if t:
                    t.join(10)
                m = re.search(r"RESULT .*?qps=([0-9.]+)", out)
                if not m:
                    raise SystemExit("loadgen: no RESULT line:\n" + out)
                qps = float(m.group(1))
                res[mode].append(qps)
                print("round %d %-7s page: %9.0f q/s%s" % (
                    rnd + 1, mode, qps, "" if mode == "without" else
                    "  (%d polls, %.0f kB)" % (counts["polls"], counts["bytes"] / 1024)),
                    flush=True)
        w, wo = statistics.median(res["with"]), statistics.median(res["without"])
        print("median: %.0f q/s without the page, %.0f q/s with it polling" % (wo, w))
        print("STATUSPAGE services=%d ratio=%.3f" % (a.services, w / wo))
        return 0 if w / wo >= 0.98 else 1
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
