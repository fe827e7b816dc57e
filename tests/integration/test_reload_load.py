#!/usr/bin/python3
"""Reloads under load: a steady stream of UDP queries (RELOAD_QPS, default
5000 a second, from a separate process so the test's own work cannot stall
it) while the store is changed 100 times and the zone file is rewritten and
reloaded with SIGHUP 100 times.

Store changes alternate `gslbctl flip` of a failover service between two
endpoints and `gslbctl import` of a whole configuration that swaps the
weights (1/0) of a weighted service's two endpoints (one transaction: no
half state may ever be served). The zone alternates between two versions
whose `static` A record differs. The queries ask for the three names in
turn. After each change the controller polls until dnsd serves the new
state, so each state has a window in which it may be served: from the
moment its change started until the next change was seen served. Every
answer is checked against the states whose window overlaps the time between
its query and its reply.

Pass: 0 queries without a reply, 0 SERVFAIL (every reply NOERROR with one A
record), 0 answers outside the valid states, and every state really served.
"""
import multiprocessing
import os
import pickle
import select
import signal
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gslbtest import (BIN, Dnsd, free_port, gslbctl, make_query, test, run,  # noqa: E402
                      tmpdir)

FAIL = "fo.gslb.example.com."
WEIGHTED = "wt.gslb.example.com."
STATIC = "static.gslb.example.com."
NAMES = [FAIL, WEIGHTED, STATIC]
FO = ["10.0.0.1", "10.0.0.2"]
WT = ["10.0.1.1", "10.0.1.2"]
ZA = ["192.0.2.200", "192.0.2.201"]

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
    """(rcode, [A addresses in the answer]) of a reply, by hand: fast enough
    for every reply of the run."""
    if len(pkt) < 12:
        return -1, []
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
            if typ == 1 and rdlen == 4:
                out.append(socket.inet_ntoa(pkt[off:off + 4]))
            else:
                out.append("type%d" % typ)
            off += rdlen
    except (ValueError, struct.error):
        return -2, []
    return rcode, out


def loadgen(host, port, qps, stop, out_path):
    """Child process: sends NAMES in turn at qps until stop is set, then
    waits 1 s for the last replies. Writes [(name index, t_send, t_recv or
    None, reply bytes or None)] to out_path (pickle)."""
    socks = []
    for _ in range(4):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        s.connect((host, port))
        s.setblocking(False)
        socks.append(s)
    wires = [make_query(n, "A").to_wire() for n in NAMES]
    sent = []                       # seq -> [name, t_send, t_recv, reply]
    pending = [dict() for _ in socks]  # per socket: id -> seq
    t0 = time.monotonic()
    seq = 0
    end = None

    def drain():
        got = 0
        r, _, _ = select.select(socks, [], [], 0)
        for i in (socks.index(x) for x in r):
            while True:
                try:
                    pkt = socks[i].recv(4096)
                except BlockingIOError:
                    break
                now = time.monotonic()
                qid = struct.unpack("!H", pkt[:2])[0]
                k = pending[i].pop(qid, None)
                if k is not None:
                    sent[k][2] = now
                    sent[k][3] = pkt
                got += 1
        return got

    while True:
        now = time.monotonic()
        if end is None and stop.is_set():
            end = now + 1.0
        if end is not None:
            if now >= end or not any(pending):
                break
        else:
            due = int((now - t0) * qps)
            while seq < due:
                i = seq % len(socks)
                qid = (seq // len(socks)) & 0xFFFF
                w = wires[seq % len(NAMES)]
                if qid in pending[i]:
                    # A reply 65536 queries late: count that query lost.
                    pending[i].pop(qid)
                sent.append([seq % len(NAMES), time.monotonic(), None, None])
                pending[i][qid] = seq
                try:
                    socks[i].send(struct.pack("!H", qid) + w[2:])
                except BlockingIOError:
                    sent[-1][1] = -1.0    # never left: counted as lost
                seq += 1
        if not drain():
            select.select(socks, [], [], 0.0005)
    for s in socks:
        s.close()
    with open(out_path, "wb") as f:
        pickle.dump(sent, f)


def import_doc(fo_best, wt_best):
    """The whole configuration: the failover service with FO[fo_best] first
    and the weighted one with weight 1 only on WT[wt_best]."""
    def ep(t, w=1, p=0):
        return {"target": t, "weight": w, "priority": p, "region": None, "lat": None,
                "lon": None, "bias": 0.0, "admin": "auto", "drained": False, "check": None}
    return {"version": 1, "services": [
        {"name": FAIL, "policy": "failover", "ttl": 30, "answers": None, "sticky": False,
         "when_down": "open", "rules": [],
         "endpoints": [ep(t, p=0 if i == fo_best else 1) for i, t in enumerate(FO)]},
        {"name": WEIGHTED, "policy": "weighted", "ttl": 30, "answers": None, "sticky": False,
         "when_down": "open", "rules": [],
         "endpoints": [ep(t, w=1 if i == wt_best else 0) for i, t in enumerate(WT)]}]}


@test
def test_reloads_under_load():
    import json
    qps = int(os.environ.get("RELOAD_QPS", "5000"))
    n_store = int(os.environ.get("RELOAD_STORE_CHANGES", "100"))
    n_zone = int(os.environ.get("RELOAD_ZONE_RELOADS", "100"))
    d = tmpdir()
    db = os.path.join(d, "gslb.db")
    zone = os.path.join(d, "gslb.example.com.zone")
    conf = os.path.join(d, "import.json")
    serial = 2026010100
    write_zone(zone, 0, serial)
    with open(conf, "w") as f:
        json.dump(import_doc(0, 0), f)
    gslbctl(db, "--force", "import", conf)
    dnsd = Dnsd(["--zone", zone, "--db", db, "--threads", "2", "--db-poll-ms", "50"])

    # state[name] = index of the current value; windows[name] = list of
    # (value, start, seen): value may be served from start until the next
    # window's seen.
    values = {FAIL: FO, WEIGHTED: WT, STATIC: ZA}
    cur = {FAIL: 0, WEIGHTED: 0, STATIC: 0}
    windows = {n: [(values[n][0], float("-inf"), float("-inf"))] for n in NAMES}
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.settimeout(0.5)

    def served(name):
        q = make_query(name, "A")
        probe.sendto(q.to_wire(), ("127.0.0.1", dnsd.port))
        while True:
            pkt = probe.recv(4096)
            if pkt[:2] == q.to_wire()[:2]:
                return parse_a(pkt)[1]

    def change(name, new, action):
        start = time.monotonic()
        action()
        deadline = start + 5
        while served(name) != [values[name][new]]:
            if time.monotonic() > deadline:
                raise AssertionError("%s: %s not served 5 s after the change; log: %s"
                                     % (name, values[name][new], dnsd.output()[-2000:]))
            time.sleep(0.002)
        windows[name].append((values[name][new], start, time.monotonic()))
        cur[name] = new

    stop = multiprocessing.Event()
    out = os.path.join(d, "load.pickle")
    ctx = multiprocessing.get_context("fork")
    gen = ctx.Process(target=loadgen, args=("127.0.0.1", dnsd.port, qps, stop, out))
    gen.start()
    try:
        time.sleep(0.5)
        t_changes = time.monotonic()
        si = zi = 0
        while si < n_store or zi < n_zone:
            if si < n_store:
                if si % 2 == 0:
                    new = 1 - cur[FAIL]
                    change(FAIL, new, lambda: gslbctl(db, "flip", FAIL, FO[new]))
                else:
                    new = 1 - cur[WEIGHTED]
                    with open(conf, "w") as f:
                        json.dump(import_doc(cur[FAIL], new), f)
                    change(WEIGHTED, new, lambda: gslbctl(db, "--force", "import", conf))
                si += 1
            if zi < n_zone:
                new = 1 - cur[STATIC]
                serial += 1

                def hup():
                    write_zone(zone, new, serial)
                    dnsd.signal(signal.SIGHUP)
                change(STATIC, new, hup)
                zi += 1
        t_changes = time.monotonic() - t_changes
        time.sleep(0.5)
    finally:
        stop.set()
        gen.join(30)
        if gen.is_alive():
            gen.kill()
    assert gen.exitcode == 0, "load generator failed (exit %s)" % gen.exitcode
    with open(out, "rb") as f:
        sent = pickle.load(f)

    lost = servfail = bad = 0
    seen = {n: {} for n in NAMES}
    examples = []
    eps = 0.001
    for ni, ts, tr, pkt in sent:
        name = NAMES[ni]
        if tr is None or ts < 0:
            lost += 1
            continue
        rcode, ans = parse_a(pkt)
        if rcode != 0 or len(ans) != 1:
            servfail += rcode == 2
            bad += rcode != 2
            if len(examples) < 5:
                examples.append((name, rcode, ans))
            continue
        w = windows[name]
        ok = set()
        for j, (val, start, _seen) in enumerate(w):
            until = w[j + 1][2] if j + 1 < len(w) else float("inf")
            if start - eps <= tr and until + eps >= ts:
                ok.add(val)
        if ans[0] not in ok:
            bad += 1
            if len(examples) < 5:
                examples.append((name, ans[0], sorted(ok), ts, tr))
        seen[name][ans[0]] = seen[name].get(ans[0], 0) + 1
    dur = sent[-1][1] - sent[0][1] if sent else 0
    ok_stop = dnsd.stop()
    print("reload-load: %d queries in %.1f s (%.0f/s), %d store changes and %d zone reloads "
          "in %.1f s; lost %d, SERVFAIL %d, inconsistent %d; answers %s"
          % (len(sent), dur, len(sent) / dur if dur else 0, n_store, n_zone, t_changes,
             lost, servfail, bad, {n.split(".")[0]: seen[n] for n in NAMES}))
    assert len(sent) >= qps * 2, "only %d queries sent" % len(sent)
    assert lost == 0, "%d queries without a reply" % lost
    assert servfail == 0 and bad == 0, "bad answers: %s" % examples
    for n in NAMES:
        assert set(seen[n]) == set(values[n]), "%s: served %s" % (n, seen[n])
    assert ok_stop == 0


if __name__ == "__main__":
    run()
