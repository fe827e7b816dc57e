#!/usr/bin/python3
"""The cost of GET /metrics and GET /v1/status with many checked endpoints.

    BIN=bin python3 bench/status_cost.py [SERVICES] [AGENTS] [TIMEOUT]

Imports SERVICES services (default 100,000) of 4 checked endpoints each
into a new store, starts bin/dnsd on it with AGENTS agent credentials
(default 2), has every agent report every endpoint once (batches of 10,000
results), then times one GET /metrics and one GET /v1/status (the first
request of a generation renders, the second must come from the cache: its
bytes are compared) and prints their sizes and times. TIMEOUT (default
300 s) bounds each request; DNSD_ARGS adds dnsd options: a request that takes longer is reported as
such. Everything runs on 127.0.0.1; dnsd is stopped by its PID."""
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

from benchlib import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("BIN", os.path.join(ROOT, "bin"))
ZONE = os.path.join(ROOT, "zones", "gslb.example.com.zone")
BATCH = 10000


def document(path, n):
    ep = ('{"target":"%s","weight":1,"priority":%d,"region":null,"lat":null,'
          '"lon":null,"bias":0.0,"admin":"auto","drained":false,"check":'
          '{"url":"http://127.0.0.1:9/","interval":60.0,"timeout":null,'
          '"rise":1,"fall":1,"tls_verify":true,"expect":null,"body":null,'
          '"host":null}}')
    with open(path, "w") as f:
        f.write('{"version":1,"services":[')
        for i in range(n):
            eps = ",".join(ep % ("10.%d.%d.%d" % ((4 * i + j) >> 16 & 255,
                                                  (4 * i + j) >> 8 & 255,
                                                  (4 * i + j) & 255), 10 * j)
                           for j in range(4))
            f.write('%s{"name":"b%d.gslb.example.com.","policy":"failover",'
                    '"ttl":30,"answers":null,"sticky":false,"when_down":"open",'
                    '"rules":[],"endpoints":[%s]}' % ("," if i else "", i, eps))
        f.write("]}")


def get(port, path, timeout, token=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    t0 = time.monotonic()
    try:
        c.request("GET", path, headers={"Authorization": "Bearer " + token}
                  if token else {})
        r = c.getresponse()
        body = r.read()
    except socket.timeout:
        return None, time.monotonic() - t0
    finally:
        c.close()
    return body, time.monotonic() - t0


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
    agents = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 300
    d = tempfile.mkdtemp(prefix="status_cost-")
    db = os.path.join(d, "gslb.db")
    doc = os.path.join(d, "config.json")
    document(doc, n)
    gctl = os.path.join(BIN, "gslbctl")
    subprocess.run([gctl, "--db", db, "init"], check=True, capture_output=True)
    t0 = time.monotonic()
    subprocess.run([gctl, "--db", db, "--quiet", "import", doc], check=True,
                   capture_output=True)
    print("import of %d services x 4 endpoints: %.1f s" % (n, time.monotonic() - t0))
    tokens = ["agent-%04d-token-0123456789" % i for i in range(agents)]
    creds = os.path.join(d, "creds")
    with open(creds, "w") as f:
        for i, t in enumerate(tokens):
            f.write("agent a%d %s\n" % (i, t))
        f.write("read reader reader-token-0123456789\n")
    os.chmod(creds, 0o600)
    api, dnsp = free_port(), free_port()
    p = subprocess.Popen([os.path.join(BIN, "dnsd"), "--listen", "127.0.0.1:%d" % dnsp,
                          "--zone", ZONE, "--db", db, "--api", "127.0.0.1:%d" % api,
                          "--api-tokens", creds, "--threads", "1"]
                         + os.environ.get("DNSD_ARGS", "").split(),
                         stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(d, "log"), "w"))
    try:
        run(api, agents, tokens, timeout)
    finally:
        p.terminate()
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)


def run(api, agents, tokens, timeout):
    deadline = time.monotonic() + 120
    while True:
        try:
            body, _ = get(api, "/v1/checks", 60, tokens[0])
            ids = sorted(ck["id"] for ck in json.loads(body)["checks"])
            break
        except (OSError, ValueError, TypeError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    t0 = time.monotonic()
    c = http.client.HTTPConnection("127.0.0.1", api, timeout=60)
    for a in range(agents):
        for k in range(0, len(ids), BATCH):
            res = [{"id": e, "state": "up", "ok": True, "rtt_ms": 5 + a,
                    "ts": time.time(), "detail": None} for e in ids[k:k + BATCH]]
            body = json.dumps({"agent": "a%d" % a, "region": "r%d" % a, "results": res})
            for attempt in range(3):
                try:
                    c.request("POST", "/v1/reports", body=body,
                              headers={"Authorization": "Bearer " + tokens[a],
                                       "Content-Type": "application/json"})
                    r = c.getresponse()
                    r.read()
                    break
                except (OSError, http.client.HTTPException):
                    # closed while the server was busy: a new connection
                    c = http.client.HTTPConnection("127.0.0.1", api, timeout=60)
            assert r.status == 200, r.status
    print("%d endpoints, %d agents: reports folded in %.1f s"
          % (len(ids), agents, time.monotonic() - t0))
    # Let the next health tick pass, so the reports' changes are settled
    # and the two requests below see one health generation.
    time.sleep(float(os.environ.get("SETTLE", "2.5")))
    for path in ("/metrics", "/v1/status"):
        first, t1 = get(api, path, timeout)
        if first is None:
            print("%s: no answer within %.0f s" % (path, timeout))
            continue
        second, t2 = get(api, path, timeout)
        same = "n/a"
        if path == "/v1/status" and second is not None:
            same = "yes" if json.loads(first)["services"] == \
                json.loads(second)["services"] else "NO"
        print("%s: %.1f MB, first %.3f s, second %.3f s (services identical: %s)"
              % (path, len(first) / 1e6, t1, t2 if second else float("nan"), same))
    m, _ = get(api, "/metrics", timeout)
    for line in (m or b"").decode().splitlines():
        if line.startswith("dnsd_status_"):
            print("  " + line)


if __name__ == "__main__":
    main()
