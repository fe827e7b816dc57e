#!/usr/bin/python3
"""Concurrency stress: everything that changes dnsd's shared state, at once
and as fast as dnsd takes it, under query load. Run by `make test`, and by
`make asan` and `make tsan`, where the sanitizer watches the threads: the
answering threads read snapshots while the control thread builds, publishes
and frees them and a metrics reader sums the threads' counters.

For STRESS_SECONDS (default 10), with dnsd on 2 threads:

- UDP load: a child process sends batches of 32 queries and waits for their
  replies (a closed loop: as fast as dnsd answers);
- TCP load: another child pipelines batches of 16 queries on a connection
  and opens a new connection every 20 batches;
- store commits: `gslbctl flip` of a failover service, back and forth;
- health reports: POSTs to /v1/reports turning a checked service's
  endpoints up and down (two agents, so the quorum moves);
- API writes: POST /v1/flip of a second failover service and POST
  /v1/endpoint changing a weighted service's weights;
- SIGHUP reloads: the zone file rewritten (its `static` A record changes),
  then SIGHUP, the next one once dnsd logged the reload;
- GeoIP replacements: one of two databases renamed over the configured
  file (they locate the client's ECS subnet in Frankfurt or in Tokyo), the
  next once dnsd answers the client from the new one;
- metrics reads: GET /metrics and /v1/status (the counters of every
  thread).

Each writer waits for its operation to finish (the command's exit, the HTTP
reply, dnsd's log line, the answer) and starts the next one at once.

Pass: every reply is NOERROR and its A records are one of the valid states
of its name (any state any writer can produce, since they all run at
once); every TCP query is answered; every kind of operation happened;
dnsd exits 0 on SIGTERM (a sanitizer build exits non-zero after a report,
and tests/run_tests.py fails the test on any report file). Prints the
operation counts."""
import http.client
import json
import multiprocessing
import os
import shutil
import signal
import socket
import sqlite3
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gslbtest import (FIXTURES, TIME_FACTOR, Dnsd, answer_texts, ecs_query,  # noqa: E402
                      free_port, gslbctl, make_mmdb, make_query, run, test, tmpdir)

SECONDS = float(os.environ.get("STRESS_SECONDS", "10"))
TOKEN = "stress-test-token"

FO = "fo.gslb.example.com."        # failover: gslbctl flip
AF = "af.gslb.example.com."        # failover: API flip
WT = "wt.gslb.example.com."        # weighted: API endpoint weights
HC = "hc.gslb.example.com."        # failover with checks: health reports
GEO = "geo.gslb.example.com."      # geo: GeoIP file replacements
STATIC = "static.gslb.example.com."  # zone record: SIGHUP reloads

FO_EPS = ["10.0.0.1", "10.0.0.2"]
AF_EPS = ["10.0.2.1", "10.0.2.2"]
WT_EPS = ["10.0.1.1", "10.0.1.2"]
HC_EPS = ["10.0.3.1", "10.0.3.2", "10.0.3.3"]
GEO_EU, GEO_AP = "192.0.2.10", "203.0.113.10"
ZA = ["192.0.2.200", "192.0.2.201"]
CLIENT = "127.0.1.0"               # Frankfurt in networks.tsv

# What each name may answer while everything changes: (valid A records,
# how many of them one answer has at most).
VALID = {
    FO: (set(FO_EPS), 1),
    AF: (set(AF_EPS), 1),
    WT: (set(WT_EPS), 1),
    HC: (set(HC_EPS), len(HC_EPS)),   # all down: fail open, every one
    GEO: ({GEO_EU, GEO_AP}, 1),
    STATIC: (set(ZA), 1),
}
NAMES = list(VALID)

ZONE = """$ORIGIN gslb.example.com.
$TTL 300
@       IN SOA ns1.gslb.example.com. hostmaster.example.com. (
               %d 3600 600 1209600 30 )
        IN NS  ns1
        IN NS  ns2
ns1     IN A   127.0.0.1
ns2     IN A   127.0.0.2
static  IN A   %s
"""


def write_zone(path, version, serial):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(ZONE % (serial, ZA[version]))
    os.rename(tmp, path)


def parse_a(pkt):
    """(rcode, [A addresses and 'typeN' for other records] of the answer
    section), or (-2, []) for a reply that does not parse."""
    if len(pkt) < 12:
        return -2, []
    rcode = pkt[3] & 15
    qd, an = struct.unpack("!HH", pkt[4:8])
    off = 12

    def skip_name(o):
        while o < len(pkt):
            n = pkt[o]
            if n & 0xC0 == 0xC0:
                return o + 2
            if n == 0:
                return o + 1
            o += n + 1
        raise ValueError("truncated name")

    out = []
    try:
        for _ in range(qd):
            off = skip_name(off) + 4
        for _ in range(an):
            off = skip_name(off)
            typ, _cls, _ttl, rdlen = struct.unpack("!HHIH", pkt[off:off + 10])
            off += 10
            out.append(socket.inet_ntoa(pkt[off:off + 4]) if typ == 1 and rdlen == 4
                       else "type%d" % typ)
            off += rdlen
    except (ValueError, struct.error, OSError):
        return -2, []
    return rcode, out


def check_reply(ni, pkt, res):
    """Counts one reply for name index ni into res; keeps a few bad ones."""
    name = NAMES[ni]
    rcode, ans = parse_a(pkt)
    valid, most = VALID[name]
    res["answers"] += 1
    res["seen"].setdefault(name, {})
    for a in ans:
        res["seen"][name][a] = res["seen"][name].get(a, 0) + 1
    if rcode != 0 or not ans or len(ans) > most or not set(ans) <= valid:
        res["bad"] += 1
        if len(res["examples"]) < 5:
            res["examples"].append((name, rcode, ans))


def wires():
    """One query per name (GEO with the client's ECS subnet), id 0."""
    out = []
    for n in NAMES:
        q = ecs_query(n, "A", CLIENT, 24) if n == GEO else make_query(n, "A")
        q.id = 0
        out.append(bytes(q.to_wire()))
    return out


def new_result():
    return {"queries": 0, "answers": 0, "lost": 0, "bad": 0, "examples": [], "seen": {},
            "connections": 0}


def udp_load(port, seconds, conn):
    """Child process: batches of 32 UDP queries, each batch's replies
    awaited (1 s x TIME_FACTOR, then the missing ones count as lost)."""
    res = new_result()
    w = wires()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.connect(("127.0.0.1", port))
    qid = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pending = {}
        for _ in range(32):
            qid = (qid + 1) & 0xFFFF
            ni = qid % len(NAMES)
            pending[qid] = ni
            s.send(struct.pack("!H", qid) + w[ni][2:])
            res["queries"] += 1
        deadline = time.monotonic() + 1.0 * TIME_FACTOR
        while pending and time.monotonic() < deadline:
            s.settimeout(max(0.001, deadline - time.monotonic()))
            try:
                pkt = s.recv(4096)
            except socket.timeout:
                break
            ni = pending.pop(struct.unpack("!H", pkt[:2])[0], None)
            if ni is not None:
                check_reply(ni, pkt, res)
        res["lost"] += len(pending)
    s.close()
    conn.send(res)


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed after %d of %d octets" % (len(buf), n))
        buf += chunk
    return buf


def tcp_load(port, seconds, conn):
    """Child process: batches of 16 pipelined TCP queries, a new connection
    every 20 batches. A query without its reply counts as lost."""
    res = new_result()
    w = wires()
    end = time.monotonic() + seconds
    qid = 0
    while time.monotonic() < end:
        s = socket.create_connection(("127.0.0.1", port), timeout=5 * TIME_FACTOR)
        res["connections"] += 1
        try:
            for _ in range(20):
                if time.monotonic() >= end:
                    break
                batch, ids = b"", []
                for _ in range(16):
                    qid = (qid + 1) & 0xFFFF
                    msg = struct.pack("!H", qid) + w[qid % len(NAMES)][2:]
                    batch += struct.pack("!H", len(msg)) + msg
                    ids.append(qid)
                s.sendall(batch)
                res["queries"] += len(ids)
                for k, want in enumerate(ids):
                    try:
                        pkt = recv_exact(s, struct.unpack("!H", recv_exact(s, 2))[0])
                    except (OSError, ConnectionError):
                        res["lost"] += len(ids) - k
                        raise
                    got = struct.unpack("!H", pkt[:2])[0]
                    if got != want:
                        res["bad"] += 1
                        res["examples"].append(("tcp id", want, got))
                    check_reply(want % len(NAMES), pkt, res)
        except (OSError, ConnectionError) as e:
            res["examples"].append(("tcp", str(e)))
        finally:
            s.close()
    conn.send(res)


class Writer(threading.Thread):
    """Runs op() back to back until stopped; counts the successes. An
    exception ends the writer and fails the test."""

    def __init__(self, name, op):
        super().__init__(daemon=True, name=name)
        self.op, self.n, self.error = op, 0, None
        self.stop_ev = threading.Event()

    def run(self):
        i = 0
        try:
            while not self.stop_ev.is_set():
                self.op(i)
                i += 1
                self.n += 1
        except Exception as e:    # handed to the test
            self.error = "%s: %r" % (self.name, e)


def http_call(port, method, path, body=None, token=TOKEN):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10 * TIME_FACTOR)
    try:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = "Bearer " + token
        c.request(method, path, json.dumps(body) if body is not None else None, headers)
        r = c.getresponse()
        data = r.read()
        if r.status != 200:
            raise AssertionError("%s %s: %d %s" % (method, path, r.status, data[:300]))
        return data
    finally:
        c.close()


def setup_store(db):
    gslbctl(db, "init")
    for svc, eps in ((FO, FO_EPS), (AF, AF_EPS)):
        gslbctl(db, "service", "add", svc, "--policy", "failover")
        for i, e in enumerate(eps):
            gslbctl(db, "endpoint", "add", svc, e, "--priority", 10 + i)
    gslbctl(db, "service", "add", WT, "--policy", "weighted")
    for e in WT_EPS:
        gslbctl(db, "endpoint", "add", WT, e, "--weight", 1)
    gslbctl(db, "service", "add", HC, "--policy", "failover")
    for i, e in enumerate(HC_EPS):
        gslbctl(db, "endpoint", "add", HC, e, "--priority", 10 + i,
                "--check", "tcp://127.0.0.1:9")
    gslbctl(db, "service", "add", GEO, "--policy", "geo")
    gslbctl(db, "endpoint", "add", GEO, GEO_EU, "--lat", "50.11", "--lon", "8.68")
    gslbctl(db, "endpoint", "add", GEO, GEO_AP, "--lat", "35.69", "--lon", "139.69")
    c = sqlite3.connect(db)
    try:
        return [r[0] for r in c.execute(
            "SELECT e.id FROM endpoints e JOIN services s ON e.service_id = s.id "
            "WHERE s.name = ? ORDER BY e.id", (HC,))]
    finally:
        c.close()


def geo_databases(d):
    """Two GeoIP databases: the fixture, and one where the client's /24 is
    in Tokyo instead of Frankfurt."""
    src = os.path.join(FIXTURES, "geo", "networks.tsv")
    tokyo = os.path.join(d, "tokyo.tsv")
    with open(src) as f, open(tokyo, "w") as out:
        for line in f:
            if line.startswith(CLIENT + "/24"):
                line = "%s/24\t35.6895\t139.6917\tJP\tAS\tTokyo\n" % CLIENT
            out.write(line)
    return [make_mmdb(src, os.path.join(d, "frankfurt.mmdb")),
            make_mmdb(tokyo, os.path.join(d, "tokyo.mmdb"))]


@test
def everything_at_once_under_load():
    d = tmpdir()
    db = os.path.join(d, "gslb.db")
    zone = os.path.join(d, "gslb.example.com.zone")
    tok = os.path.join(d, "token")
    with open(tok, "w") as f:
        f.write(TOKEN + "\n")
    hc_ids = setup_store(db)
    mmdbs = geo_databases(d)
    geoip = os.path.join(d, "geo.mmdb")
    shutil.copy(mmdbs[0], geoip)
    serial = [2026010100]
    write_zone(zone, 0, serial[0])
    api_port = free_port()
    dnsd = Dnsd(["--zone", zone, "--db", db, "--geoip", geoip, "--threads", "2",
                 "--db-poll-ms", "50", "--api", "127.0.0.1:%d" % api_port,
                 "--api-token-file", tok, "--check-interval", "1"])

    def log_count(needle):
        return dnsd.output().count(needle)

    def wait_log(needle, before):
        deadline = time.monotonic() + 10 * TIME_FACTOR
        while log_count(needle) <= before:
            if not dnsd.alive() or time.monotonic() > deadline:
                raise AssertionError("no %r in the log after %d" % (needle, before))
            time.sleep(0.005)

    def store_commit(i):
        gslbctl(db, "flip", FO, FO_EPS[i % 2])

    def health_report(i):
        # Two agents, each report a different mix: the endpoints go up
        # and down, sometimes all of them at once.
        def state(k):
            return "down" if i % 5 == 4 or (i + k) % 3 == 0 else "up"
        body = {"agent": "stress-%d" % (i % 2), "region": "r%d" % (i % 2),
                "results": [{"id": e, "state": state(k), "ok": state(k) == "up",
                             "rtt_ms": 1.0, "ts": time.time()}
                            for k, e in enumerate(hc_ids)]}
        http_call(api_port, "POST", "/v1/reports", body)

    def api_write(i):
        if i % 2:
            http_call(api_port, "POST", "/v1/flip", {"service": AF, "target": AF_EPS[i // 2 % 2]})
        else:
            http_call(api_port, "POST", "/v1/endpoint",
                      {"service": WT, "target": WT_EPS[1], "weight": 1 + i // 2 % 5})

    def sighup(i):
        before = log_count("reload: generation")
        serial[0] += 1
        write_zone(zone, (i + 1) % 2, serial[0])
        dnsd.signal(signal.SIGHUP)
        wait_log("reload: generation", before)

    def geo_replace(i):
        # dnsd loads the new file at its next poll or at a SIGHUP reload,
        # whichever comes first: done once the client's answer moved.
        want = [GEO_AP, GEO_EU][i % 2]
        tmp = geoip + ".tmp"
        shutil.copy(mmdbs[(i + 1) % 2], tmp)
        os.rename(tmp, geoip)
        deadline = time.monotonic() + 10 * TIME_FACTOR
        while answer_texts(dnsd.udp(None, query=ecs_query(GEO, "A", CLIENT, 24))) != [want]:
            if time.monotonic() > deadline:
                raise AssertionError("GeoIP file replaced, %s not answered" % want)
            time.sleep(0.005)

    def metrics_read(i):
        http_call(api_port, "GET", "/metrics" if i % 2 else "/v1/status", token=None)

    ctx = multiprocessing.get_context("fork")
    loads = []
    for fn in (udp_load, tcp_load):
        rx, tx = ctx.Pipe(duplex=False)
        p = ctx.Process(target=fn, args=(dnsd.port, SECONDS, tx))
        p.start()
        loads.append((fn.__name__, p, rx))
    writers = [Writer(n, op) for n, op in (
        ("store commits", store_commit), ("health reports", health_report),
        ("API writes", api_write), ("SIGHUP reloads", sighup),
        ("GeoIP replacements", geo_replace), ("metrics reads", metrics_read))]
    t0 = time.monotonic()
    for w in writers:
        w.start()
    results = {}
    try:
        for name, p, rx in loads:
            if rx.poll(SECONDS + 60 * TIME_FACTOR):
                results[name] = rx.recv()
            p.join(10)
    finally:
        for w in writers:
            w.stop_ev.set()
        for w in writers:
            w.join(30 * TIME_FACTOR)
        for _, p, _ in loads:
            if p.is_alive():
                p.kill()
    elapsed = time.monotonic() - t0
    rc = dnsd.stop()

    udp, tcp = results.get("udp_load"), results.get("tcp_load")
    assert udp and tcp, "a load generator sent no result: %s" % sorted(results)
    seen = {}
    for r in (udp, tcp):
        for n, vals in r["seen"].items():
            for a, k in vals.items():
                seen.setdefault(n.split(".")[0], {}).setdefault(a, 0)
                seen[n.split(".")[0]][a] += k
    print("stress: %.1f s, dnsd on 2 threads: UDP %d queries, %d answers checked, %d lost; "
          "TCP %d queries on %d connections, %d answers checked; bad answers %d" %
          (elapsed, udp["queries"], udp["answers"], udp["lost"], tcp["queries"],
           tcp["connections"], tcp["answers"], udp["bad"] + tcp["bad"]))
    print("stress: " + ", ".join("%s %d" % (w.name, w.n) for w in writers))
    print("stress: answers per name %s" % seen)
    for w in writers:
        assert w.error is None, w.error
        assert w.n >= 1, "no %s happened in %.1f s" % (w.name, elapsed)
    assert udp["bad"] == 0 and tcp["bad"] == 0, "bad answers: %s %s" % (
        udp["examples"], tcp["examples"])
    assert tcp["lost"] == 0, "TCP queries without a reply: %d %s" % (tcp["lost"],
                                                                      tcp["examples"])
    assert udp["answers"] >= 1000 and tcp["answers"] >= 1000, "too few answers"
    # UDP may lose a datagram; losing many means dnsd stalled.
    assert udp["lost"] <= udp["queries"] // 100, "%d of %d UDP queries lost" % (
        udp["lost"], udp["queries"])
    assert rc == 0, "dnsd exit status %s after SIGTERM:\n%s" % (rc, dnsd.output()[-3000:])


if __name__ == "__main__":
    run()
