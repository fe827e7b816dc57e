#!/usr/bin/python3
"""The health API under agents reporting every endpoint every second.

    BIN=bin python3 bench/api_load.py [AGENTS] [ENDPOINTS] [SECONDS]

Starts bin/dnsd with a store of ENDPOINTS checked endpoints (100 services of
ENDPOINTS/100 each, failover) and one agent credential per agent; AGENTS
simulated agents (a few threads, keep-alive connections) each POST a report
of every endpoint once a second. Prints the control thread's CPU share,
report latency (POST to 200) p50/p99, and report-to-answer latency: the
time from the report that tips an endpoint's quorum (the agents turn it
down one by one) to the DNS answer no longer naming it. With the load
generator built (build/bench/loadgen, `make bench` builds it): DNS q/s and
the answering threads' CPU per answer with no reports (before the agents
start) and during the steady reporting window, in the same run."""
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

import dns.message
import dns.query

from benchlib import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("BIN", os.path.join(ROOT, "bin"))
ZONE = os.path.join(ROOT, "zones", "gslb.example.com.zone")
LOADGEN = os.path.join(ROOT, "build", "bench", "loadgen")


def task_cpu(pid, tid):
    with open("/proc/%d/task/%d/stat" % (pid, tid)) as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def proc_cpu(pid):
    with open("/proc/%d/stat" % pid) as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def dns_load(pid, port, qfile, seconds, out):
    """loadgen for seconds against port: out gets q/s, lost and the CPU
    per answer of every thread but the control thread (microseconds)."""
    c0, k0 = proc_cpu(pid), task_cpu(pid, pid)
    p = subprocess.run([LOADGEN, "-s", "127.0.0.1", "-p", str(port), "-d", qfile,
                        "-l", str(seconds), "-c", "4", "-w", "128"],
                       capture_output=True, text=True, timeout=seconds + 60)
    c1, k1 = proc_cpu(pid), task_cpu(pid, pid)
    for ln in p.stdout.splitlines():
        if ln.startswith("RESULT "):
            kv = dict(x.split("=", 1) for x in ln.split()[1:])
            qps = float(kv["qps"])
            out.update(qps=qps, lost=int(kv["lost"]),
                       us=1e6 * ((c1 - c0) - (k1 - k0)) / max(1.0, qps * seconds))
            return
    out["error"] = (p.stdout + p.stderr)[-300:]


def main():
    agents = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    n_ep = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 20
    d = tempfile.mkdtemp(prefix="api_load-")
    db = os.path.join(d, "gslb.db")
    per = max(1, n_ep // 100)
    services = []
    for s in range(n_ep // per):
        services.append({
            "name": "s%d.gslb.example.com." % s, "policy": "failover", "ttl": 30,
            "answers": None, "sticky": False, "when_down": "open", "rules": [],
            "endpoints": [{"target": "10.%d.%d.%d" % (s // 250, s % 250, e + 1), "weight": 1,
                           "priority": e, "region": None, "lat": None, "lon": None,
                           "bias": 0.0, "admin": "auto", "drained": False,
                           "check": {"url": "http://127.0.0.1:9/", "interval": 1.0,
                                     "timeout": None, "rise": 3, "fall": 2,
                                     "tls_verify": True, "expect": None, "body": None,
                                     "host": None}} for e in range(per)]})
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump({"version": 1, "services": services}, f)
    gctl = os.path.join(BIN, "gslbctl")
    subprocess.run([gctl, "--db", db, "init"], check=True, capture_output=True)
    subprocess.run([gctl, "--db", db, "import", os.path.join(d, "config.json")],
                   check=True, capture_output=True)
    tokens = ["agent-%04d-token-0123456789" % i for i in range(agents)]
    creds = os.path.join(d, "creds")
    with open(creds, "w") as f:
        for i, t in enumerate(tokens):
            f.write("agent a%d %s\n" % (i, t))
    os.chmod(creds, 0o600)
    api_port, dns_port = free_port(), free_port()
    p = subprocess.Popen([os.path.join(BIN, "dnsd"), "--listen", "127.0.0.1:%d" % dns_port,
                          "--zone", ZONE, "--db", db, "--api", "127.0.0.1:%d" % api_port,
                          "--api-tokens", creds, "--check-interval", "1", "--threads", "1",
                          "--api-max-connections", str(agents + 64)],
                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(d, "log"), "w"))
    try:
        run(p, agents, n_ep, seconds, tokens, api_port, dns_port, services)
    finally:
        p.terminate()
        p.wait(120)


def run(p, agents, n_ep, seconds, tokens, api_port, dns_port, services):
    deadline = time.monotonic() + 10
    while True:
        try:
            c = http.client.HTTPConnection("127.0.0.1", api_port, timeout=5)
            c.request("GET", "/v1/checks", headers={"Authorization": "Bearer " + tokens[0]})
            ids = sorted(ck["id"] for ck in json.loads(c.getresponse().read())["checks"])
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    assert len(ids) == n_ep, len(ids)
    qfile = tempfile.mktemp(prefix="api_load-", suffix=".q")
    with open(qfile, "w") as f:
        for sv in services:
            f.write("%s A\n" % sv["name"])
    idle = {}
    if os.access(LOADGEN, os.X_OK):
        dns_load(p.pid, dns_port, qfile, 5, idle)
    # The endpoint the agents turn down one by one: the first of s0 (its
    # answer moves to the second).
    victim = ids[0]
    victim_target = services[0]["endpoints"][0]["target"]
    lock = threading.Lock()
    down = set()          # agents that now report the victim down
    reported = set()      # ... and whose down report was accepted
    lat = []
    tip = {}
    stop = threading.Event()

    def template(i, victim_down):
        res = [{"id": e, "state": "down" if (e == victim and victim_down) else "up",
                "ok": True, "rtt_ms": 5, "ts": 1234567890.5, "detail": None} for e in ids]
        return json.dumps({"agent": "a%d" % i, "region": "r%d" % (i % 8),
                           "results": res}).encode()
    # Bodies made once; only the timestamp changes per report.
    bodies = [(template(i, False), template(i, True)) for i in range(agents)]

    def body(i):
        return bodies[i][i in down].replace(b"1234567890.5", b"%.3f" % time.time())

    def worker(lo, hi):
        conn = http.client.HTTPConnection("127.0.0.1", api_port, timeout=10)
        next_t = time.monotonic()
        while not stop.is_set():
            for i in range(lo, hi):
                b = body(i)
                t0 = time.monotonic()
                try:
                    conn.request("POST", "/v1/reports", body=b,
                                 headers={"Authorization": "Bearer " + tokens[i],
                                          "Content-Type": "application/json"})
                    r = conn.getresponse()
                    r.read()
                    ok = r.status == 200
                except (OSError, http.client.HTTPException):
                    conn = http.client.HTTPConnection("127.0.0.1", api_port, timeout=10)
                    ok = False
                t1 = time.monotonic()
                with lock:
                    if ok:
                        lat.append(t1 - t0)
                    if ok and i in down and i not in reported:
                        reported.add(i)
                        # up while more than half say up: this one tips it
                        if len(reported) == (agents + 1) // 2:
                            tip["t"] = t0
            next_t += 1.0
            time.sleep(max(0, next_t - time.monotonic()))

    nthreads = min(8, agents)
    step = (agents + nthreads - 1) // nthreads
    threads = [threading.Thread(target=worker, args=(k, min(agents, k + step)), daemon=True)
               for k in range(0, agents, step)]
    for t in threads:
        t.start()
    time.sleep(3)
    tid = p.pid                        # the control thread is the main thread
    busy = {}
    lg = None
    if idle:
        lg = threading.Thread(target=dns_load, args=(p.pid, dns_port, qfile, int(seconds), busy))
        lg.start()
    c0, w0 = task_cpu(p.pid, tid), time.monotonic()
    time.sleep(seconds)
    c1, w1 = task_cpu(p.pid, tid), time.monotonic()
    if lg:
        lg.join(seconds + 90)
    with lock:
        steady = sorted(lat)
        lat.clear()
    # Report-to-answer: agents turn the victim down; once a majority says
    # so the answer must move.
    q = dns.message.make_query("s0.gslb.example.com.", "A")
    flips = []
    for _ in range(3):
        with lock:
            down.clear()
            reported.clear()
            tip.clear()
        while True:       # wait for the answer to name the victim again
            r = dns.query.udp(q, "127.0.0.1", port=dns_port, timeout=2)
            if victim_target in [rd.to_text() for rs in r.answer for rd in rs]:
                break
            time.sleep(0.05)
        for i in range(agents):
            with lock:
                down.add(i)
        t_end = time.monotonic() + 10
        while time.monotonic() < t_end:
            r = dns.query.udp(q, "127.0.0.1", port=dns_port, timeout=2)
            if victim_target not in [rd.to_text() for rs in r.answer for rd in rs]:
                with lock:
                    t_tip = tip.get("t")
                if t_tip:
                    flips.append(time.monotonic() - t_tip)
                break
            time.sleep(0.001)
    stop.set()
    for t in threads:
        t.join(15)
    n = len(steady)
    print("agents %d x endpoints %d, %d reports in %.0f s (%.1f/s)"
          % (agents, n_ep, n, seconds, n / seconds))
    print("control thread CPU: %.0f%% of one core" % (100 * (c1 - c0) / (w1 - w0)))
    if n:
        print("report POST->200: p50 %.1f ms, p99 %.1f ms"
              % (1e3 * steady[n // 2], 1e3 * steady[min(n - 1, int(n * 0.99))]))
    if flips:
        print("tipping report -> answer changed: %s ms"
              % ", ".join("%.1f" % (1e3 * f) for f in flips))
    if idle.get("qps") and busy.get("qps"):
        print("DNS q/s: %.0f with no reports, %.0f while they are reported (ratio %.2f); lost %d / %d; "
              "answering threads' CPU per answer %.2f / %.2f us"
              % (idle["qps"], busy["qps"], busy["qps"] / idle["qps"], idle["lost"], busy["lost"],
                 idle["us"], busy["us"]))
    elif not idle:
        print("DNS q/s: not measured (no %s; make bench builds it)" % LOADGEN)
    os.unlink(qfile)


if __name__ == "__main__":
    main()
