#!/usr/bin/python3
"""bench/etcd.py - one configuration for three nodes through etcd.

  etcd.py [--changes N] [--kill-changes N] [--catchup N] [--offline-seconds S]
          [--load-seconds S] [--rate R] [--writers W] [--bulk-services N]
          [--members N] [--etcd-dir DIR] [--db-poll-ms MS] [--skip PARTS]

Starts, on 127.0.0.1 and in a temporary directory (--etcd-dir: the members'
data elsewhere, e.g. /dev/shm, where fsync costs nothing): --members (3)
etcd members (Debian's etcd-server, --pre-vote) and three bin/dnsd with
--etcd (each its own replica --db and API), then measures:

  propagation   --changes (default 1000) flips of a failover service with
                bin/gslbctl --etcd, one after the other: from gslbctl's exit
                0 (etcd committed) to the moment all three nodes answer the
                new endpoint (each node queried over UDP every ~1 ms);
                p50, p99, max;
  leader kill   the same for --kill-changes (default 300) flips while the
                etcd leader is killed -9 (after a third of them) and
                restarted 2 s later; also the longest gap between two
                acknowledged writes (the write pause);
  catch-up      node 3 stopped; --catchup (default 100000) changes written
                straight to etcd (one transaction each, as gslbctl writes:
                a service document and its audit rows, through the JSON
                gateway, from 6 processes of 4 connections), going round
                --bulk-services (100) services; node 3 started: time until
                its replica holds the last change, which way it caught up
                (ranges or the watch) and whether its GET /v1/config equals
                node 1's;
  offline       every etcd member stopped for --offline-seconds (60) while
                a thread queries the three nodes in turn: queries sent,
                unanswered, answered differently; etcd started again: time
                until every node is connected, and a flip after it;
  load          DNS q/s of node 1 (bench/loadgen, closed loop, one query
                thread, pinned) idle, then while --rate (default 100)
                changes per second are written by --writers (8)
                connections, paced: the ratio, the rate reached and the
                store changes node 1 applied meanwhile.

Prints every figure and "ETCD key=value" lines. Every process is stopped by
its PID at the end, also on errors and Ctrl-C. --skip: any of
"prop kill catchup offline load" (comma separated).
"""
import argparse
import base64
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import gslbtest  # noqa: E402
from gslbtest import (ZONES, Dnsd, EtcdCluster, answer_texts,  # noqa: E402
                      free_port, tmpdir)

SVC = "fo.gslb.example.com."
BULK = "bulk.gslb.example.com."
ZONE = os.path.join(ZONES, "gslb.example.com.zone")
TOKEN = "bench-etcd-token"
LOADGEN = os.path.join(ROOT, "build", "bench", "loadgen")


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def ctl(urls, *args):
    return subprocess.run([os.path.join(gslbtest.BIN, "gslbctl"), "--etcd", ",".join(urls)] +
                          [str(a) for a in args], capture_output=True, text=True, timeout=120)


class Node:
    def __init__(self, i, etcd, d):
        self.name = "n%d" % i
        self.db = os.path.join(d, "n%d.db" % i)
        self.tok = os.path.join(d, "token")
        with open(self.tok, "w") as f:
            f.write(TOKEN + "\n")
        os.chmod(self.tok, 0o600)
        self.urls = etcd.urls[i:] + etcd.urls[:i]
        self.port = free_port()
        self.api_port = free_port()
        self.dnsd = None
        self.extra = []

    def start(self, extra=()):
        args = ["--zone", ZONE, "--db", self.db, "--api", "127.0.0.1:%d" % self.api_port,
                "--api-token-file", self.tok, "--node-name", self.name] + self.extra + \
            list(extra)
        for u in self.urls:
            args += ["--etcd", u]
        self.dnsd = Dnsd(args, port=self.port, wait=True)

    def status(self):
        c = http.client.HTTPConnection("127.0.0.1", self.api_port, timeout=30)
        c.request("GET", "/v1/status")
        r = json.loads(c.getresponse().read())
        c.close()
        return r

    def config(self):
        c = http.client.HTTPConnection("127.0.0.1", self.api_port, timeout=60)
        c.request("GET", "/v1/config", headers={"Authorization": "Bearer " + TOKEN})
        r = json.loads(c.getresponse().read())
        c.close()
        return r

    def answer(self, name=SVC):
        return answer_texts(self.dnsd.udp(name))


def replica_revision(db):
    """The configuration revision the node's replica applied (0: none yet)."""
    import sqlite3
    try:
        con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=10)
        try:
            row = con.execute("SELECT config_revision FROM replica").fetchone()
        finally:
            con.close()
    except sqlite3.Error:
        return 0
    return row[0] if row else 0


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def report(label, xs):
    print("%s: n=%d p50 %.1f ms, p99 %.1f ms, max %.1f ms" % (
        label, len(xs), 1000 * pct(xs, 50), 1000 * pct(xs, 99), 1000 * max(xs)), flush=True)
    print("ETCD %s_n=%d %s_p50_ms=%.2f %s_p99_ms=%.2f %s_max_ms=%.2f" % (
        label, len(xs), label, 1000 * pct(xs, 50), label, 1000 * pct(xs, 99), label,
        1000 * max(xs)), flush=True)


def flips(etcd, nodes, n, on_index=None, max_wait=10.0):
    """n flips, each timed from ack to answered by all; returns (times,
    ack times, failures)."""
    times, acks, fails = [], [], 0
    target = "192.0.2.2"
    for i in range(n):
        if on_index:
            on_index(i)
        p = ctl(etcd.urls, "flip", SVC, target)
        t_ack = time.monotonic()
        if p.returncode != 0:
            fails += 1
            continue
        acks.append(t_ack)
        pending = list(nodes)
        deadline = t_ack + max_wait
        while pending and time.monotonic() < deadline:
            pending = [nd for nd in pending if nd.answer() != [target]]
            if pending:
                time.sleep(0.001)
        if pending:
            raise RuntimeError("flip %d: nodes %s did not answer %s within %.0f s" % (
                i, [nd.name for nd in pending], target, max_wait))
        times.append(time.monotonic() - t_ack)
        target = "192.0.2.1" if target == "192.0.2.2" else "192.0.2.2"
    return times, acks, fails


def bulk_name(i, n_svc):
    return "bulk%d.gslb.example.com." % (i % n_svc)


class Writer:
    """Direct writes through the gateway, as gslbctl commits them: one txn
    with the service document and an audit key. Write i changes service
    bulk(i mod n_svc) (the weights move with i, so every write changes
    something)."""

    def __init__(self, url, n_svc=1, prefix="/gslb/"):
        host, port = url.split("//")[1].split(":")
        self.c = http.client.HTTPConnection(host, int(port), timeout=30)
        self.n_svc = n_svc
        self.prefix = prefix

    def write(self, i, rev_out=None):
        name = bulk_name(i, self.n_svc)
        doc = {"name": name, "policy": "weighted", "ttl": 30, "answers": None,
               "sticky": False, "when_down": "open",
               "endpoints": [{"target": "192.0.2.%d" % k, "weight": (i + k) % 1000 + 1,
                              "priority": 0, "region": None, "lat": None, "lon": None,
                              "bias": 0.0, "admin": "auto", "drained": False, "check": None}
                             for k in (31, 32)], "rules": []}
        rows = [{"time": time.time(), "who": "bench", "source": "bench", "op": "change",
                 "kind": "endpoint", "service": name, "target": "192.0.2.31",
                 "field": "weight", "old": (i + 30) % 1000 + 1, "new": (i + 31) % 1000 + 1}]
        body = {"success": [
            {"request_put": {"key": b64(self.prefix + "services/" + name),
                             "value": b64(json.dumps(doc))}},
            {"request_put": {"key": b64(self.prefix + "audit/%016x-bench%08d" % (time.time_ns(), i)),
                             "value": b64(json.dumps(rows))}}]}
        self.c.request("POST", "/v3/kv/txn", json.dumps(body),
                       {"Content-Type": "application/json"})
        r = json.loads(self.c.getresponse().read())
        if "header" not in r:
            raise RuntimeError("etcd txn: %s" % r)
        return int(r["header"]["revision"])


def _bulk_run(url, n_svc, lo, hi, conns):
    def run(k):
        w = Writer(url, n_svc)
        for i in range(lo + k, hi, conns):
            w.write(i)
    ts = [threading.Thread(target=run, args=(k,)) for k in range(conns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def bulk(etcd, n, n_svc, procs=6, conns=4):
    """n direct writes (1..n) from procs processes of conns connections
    each; returns seconds."""
    import multiprocessing
    t0 = time.monotonic()
    ps = [multiprocessing.Process(target=_bulk_run, args=(
        etcd.urls[k % len(etcd.urls)], n_svc, 1 + k * n // procs, 1 + (k + 1) * n // procs,
        conns)) for k in range(procs)]
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    if any(p.exitcode for p in ps):
        raise RuntimeError("a bulk writer failed")
    return time.monotonic() - t0


def thread_cpu(pid):
    """CPU seconds of dnsd's control thread (the main one) and of its etcd
    replica thread (named dnsd-etcd)."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {"control": 0.0, "etcd": 0.0}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                st = f.read()
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                comm = f.read().strip()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        cpu = (int(fields[11]) + int(fields[12])) / tick
        if int(tid) == pid:
            out["control"] += cpu
        elif comm == "dnsd-etcd":
            out["etcd"] += cpu
    return out


def offline(etcd, nodes, seconds):
    """Every etcd member stopped for seconds while a thread queries every
    node in turn: unanswered queries, answers other than before, then
    etcd restarted: time until every node says connected again, and a flip
    after it answered by all."""
    want = nodes[0].answer()
    sent, lost, wrong = [0], [0], []
    stop = threading.Event()

    def load():
        while not stop.is_set():
            for nd in nodes:
                sent[0] += 1
                try:
                    a = nd.answer()
                except Exception:
                    lost[0] += 1
                    continue
                if a != want and len(wrong) < 10:
                    wrong.append((nd.name, a))
            time.sleep(0.002)
    t = threading.Thread(target=load)
    t.start()
    try:
        t0 = time.monotonic()
        etcd.stop_all()
        disconnected = 0
        while time.monotonic() - t0 < seconds:
            disconnected = sum(1 for nd in nodes if not nd.status()["etcd"]["connected"])
            time.sleep(0.5)
        etcd.start_all()
        t1 = time.monotonic()
        while not all(nd.status()["etcd"]["connected"] for nd in nodes):
            if time.monotonic() - t1 > 60:
                raise RuntimeError("nodes did not reconnect")
            time.sleep(0.05)
        back = time.monotonic() - t1
    finally:
        stop.set()
        t.join(30)
    times, _, fails = flips(etcd, nodes, 1)
    print("offline: etcd stopped %.0f s under query load: %d queries, %d unanswered, %d wrong "
          "%s; %d of 3 nodes said disconnected at the end; all reconnected %.2f s after etcd "
          "was started; the next flip answered by all in %.0f ms" % (
              seconds, sent[0], lost[0], len(wrong), wrong[:3], disconnected, back,
              1000 * times[0]))
    print("ETCD offline_s=%.0f offline_queries=%d offline_unanswered=%d offline_wrong=%d "
          "offline_reconnect_s=%.2f" % (seconds, sent[0], lost[0], len(wrong), back))


def loadgen(port, seconds, qfile):
    p = subprocess.run(["taskset", "-c", "1", LOADGEN, "-d", qfile, "-s", "127.0.0.1", "-p",
                        str(port), "-l", str(seconds), "-c", "4", "-w", "128"],
                       capture_output=True, text=True, timeout=seconds + 30)
    for line in p.stdout.splitlines():
        if line.startswith("RESULT"):
            kv = dict(x.split("=", 1) for x in line.split()[1:] if "=" in x)
            return float(kv.get("qps", 0))
    raise RuntimeError("loadgen: %s %s" % (p.stdout[-500:], p.stderr[-500:]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--changes", type=int, default=1000)
    ap.add_argument("--kill-changes", type=int, default=300)
    ap.add_argument("--catchup", type=int, default=100000)
    ap.add_argument("--load-seconds", type=int, default=10)
    ap.add_argument("--rate", type=int, default=100)
    ap.add_argument("--skip", default="")
    ap.add_argument("--bulk-services", type=int, default=100,
                    help="services the catch-up and load writes go round (default 100)")
    ap.add_argument("--writers", type=int, default=8,
                    help="connections writing --rate changes/s together (default 8)")
    ap.add_argument("--offline-seconds", type=float, default=60,
                    help="how long every etcd member is stopped under query load (default 60)")
    ap.add_argument("--load-all-nodes", action="store_true",
                    help="keep nodes 2 and 3 running during the load part (by default they are "
                    "stopped: on one machine they would apply every change on the same cores)")
    ap.add_argument("--members", type=int, default=3,
                    help="etcd members (default 3)")
    ap.add_argument("--etcd-dir", default=None,
                    help="where the members keep their data (e.g. /dev/shm: no fsync cost, "
                    "to seed --catchup fast); default a temporary directory")
    ap.add_argument("--db-poll-ms", type=int, default=0,
                    help="dnsd --db-poll-ms of the nodes (0: dnsd's default, 250)")
    a = ap.parse_args()
    # SIGTERM too runs the cleanup below (stops every process by its PID).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    skip = set(x for x in a.skip.split(",") if x)
    try:
        d = tmpdir()
        # Copies of the binaries: a rebuild during the run cannot touch them.
        bindir = os.path.join(d, "bin")
        os.makedirs(bindir)
        for prog in ("dnsd", "gslbctl"):
            shutil.copy2(os.path.join(gslbtest.BIN, prog), bindir)
        gslbtest.BIN = bindir
        etcd = EtcdCluster(a.members, data_dir=a.etcd_dir)
        nodes = [Node(i, etcd, d) for i in range(3)]
        poll = ["--db-poll-ms", str(a.db_poll_ms)] if a.db_poll_ms else []
        for nd in nodes:
            nd.extra = poll
            nd.start(["--threads", "1"] if nd is nodes[0] else [])
        for args in (("service", "add", SVC, "--policy", "failover"),
                     ("endpoint", "add", SVC, "192.0.2.1", "--priority", 1),
                     ("endpoint", "add", SVC, "192.0.2.2", "--priority", 2)):
            p = ctl(etcd.urls, *args)
            if p.returncode:
                raise RuntimeError(p.stderr)
        flips(etcd, nodes, 3)

        if "prop" not in skip:
            t, _, fails = flips(etcd, nodes, a.changes)
            report("propagation", t)
            print("ETCD propagation_failed=%d" % fails)

        if "kill" not in skip:
            killed = {}

            def chaos(i):
                if i == a.kill_changes // 3:
                    ld = etcd.leader()
                    killed["i"] = ld
                    killed["t"] = time.monotonic()
                    etcd.kill(ld)
                    threading.Timer(2.0, etcd.start, args=(ld,)).start()
            t, acks, fails = flips(etcd, nodes, a.kill_changes, on_index=chaos)
            gaps = [b - x for x, b in zip(acks, acks[1:])]
            report("leader_kill", t)
            print("leader kill: longest pause between acknowledged writes %.2f s, "
                  "%d writes failed (exit != 0)" % (max(gaps), fails))
            print("ETCD leader_kill_pause_s=%.3f leader_kill_failed=%d" % (max(gaps), fails))

        if "catchup" not in skip:
            nodes[2].dnsd.stop()
            secs = bulk(etcd, a.catchup, a.bulk_services)
            # The revision of the last change (registrations of the other
            # nodes move etcd's revision too).
            rg = etcd.call("/v3/kv/range", {"key": b64("/gslb/services/bulk"),
                                            "range_end": b64("/gslb/services/bulm")}, timeout=60)
            target = max(int(kv["mod_revision"]) for kv in rg["kvs"])
            print("catch-up: %d changes to %d services written in %.1f s (%.0f/s) while node 3 "
                  "was down" % (a.catchup, a.bulk_services, secs, a.catchup / secs), flush=True)
            t0 = time.monotonic()
            nodes[2].start()
            deadline = t0 + 1800
            # Read from the replica itself: the node's API may be slow to
            # answer while it applies.
            while replica_revision(nodes[2].db) < target:
                if time.monotonic() > deadline:
                    raise RuntimeError("node 3 did not catch up")
                time.sleep(0.05)
            took = time.monotonic() - t0
            # Then the watch from there (status and the log line come just
            # after the commit the loop above saw).
            while not nodes[2].status()["etcd"]["connected"]:
                if time.monotonic() > deadline:
                    raise RuntimeError("node 3 did not reconnect")
                time.sleep(0.05)
            st = nodes[2].status()["etcd"]
            same = nodes[2].config() == nodes[0].config()
            print("catch-up: node 3 at config revision %d %.2f s after its start (%s; the same "
                  "GET /v1/config as node 1: %s)" % (
                      replica_revision(nodes[2].db), took,
                      "from ranges" if st.get("catchups") else "through the watch", same))
            for ln in nodes[2].dnsd.output().splitlines():
                if "caught up from" in ln or "etcd: catching up" in ln:
                    print("catch-up: node 3 says: %s" % ln)
            print("ETCD catchup_changes=%d catchup_s=%.2f catchup_ranges=%d catchup_same=%d" % (
                a.catchup, took, st.get("catchups", 0), same))

        if "offline" not in skip:
            offline(etcd, nodes, a.offline_seconds)

        if "load" not in skip:
            if not os.access(LOADGEN, os.X_OK):
                os.makedirs(os.path.dirname(LOADGEN), exist_ok=True)
                subprocess.run(["cc", "-O2", "-std=c11", "-D_GNU_SOURCE", "-o", LOADGEN,
                                os.path.join(ROOT, "bench", "loadgen.c")], check=True)
            qfile = os.path.join(d, "queries")
            with open(qfile, "w") as f:
                for k in range(1000):
                    f.write("%s A\n" % (SVC if k % 2 else "static.gslb.example.com."))
            def under_writes(prefix):
                """q/s of node 1 while --rate writes/s go to prefix; the
                writes done, seconds, store changes node 1 applied, and the
                CPU of its threads."""
                applied0 = nodes[0].status()["etcd"]["changes"]
                cpu0 = thread_cpu(nodes[0].dnsd.pid)
                stop = threading.Event()
                n_w = a.writers
                done = [0] * n_w
                errors = []

                def writer(k):
                    # n_w connections, each 1/n_w of the rate, paced on a
                    # schedule (a late write does not move the next one):
                    # one transaction takes tens of ms when three members
                    # fsync it.
                    w = Writer(etcd.urls[k % len(etcd.urls)], a.bulk_services, prefix)
                    i = 0
                    t_next = time.monotonic() + k * 1.0 / a.rate
                    while not stop.is_set():
                        time.sleep(max(0, t_next - time.monotonic()))
                        try:
                            w.write(10 ** 6 + i * n_w + k)  # every write changes a service
                            done[k] += 1
                        except Exception as e:
                            errors.append(str(e)[:300])
                            w = Writer(etcd.urls[k % len(etcd.urls)], a.bulk_services, prefix)
                        i += 1
                        t_next += float(n_w) / a.rate
                wts = [threading.Thread(target=writer, args=(k,)) for k in range(n_w)]
                t0 = time.monotonic()
                for wt in wts:
                    wt.start()
                qps = loadgen(nodes[0].port, a.load_seconds, qfile)
                stop.set()
                for wt in wts:
                    wt.join()
                span = time.monotonic() - t0
                cpu1 = thread_cpu(nodes[0].dnsd.pid)
                if errors:
                    print("load: %d writes to %s failed, e.g. %s" % (len(errors), prefix,
                                                                    errors[0]))
                return (qps, sum(done), span,
                        nodes[0].status()["etcd"]["changes"] - applied0,
                        {k: 1000 * (cpu1[k] - cpu0[k]) / max(1, sum(done)) for k in cpu1})

            if not a.load_all_nodes:
                # Node 1 alone, as on a host of its own: nodes 2 and 3
                # would apply every change on the same two cores.
                for nd in nodes[1:]:
                    nd.dnsd.stop()
            idle = loadgen(nodes[0].port, a.load_seconds, qfile)
            busy, n, span, applied, cpu_ms = under_writes("/gslb/")
            # The same writes under a prefix no node follows: etcd and the
            # writers load the machine alike, the nodes apply nothing.
            other, n_o, span_o, applied_o, _ = under_writes("/bench-other/")
            # Idle again after it: the ratio is against the mean of both,
            # so a change of the machine's load during the run shows less.
            idle = (idle + loadgen(nodes[0].port, a.load_seconds, qfile)) / 2
            print("load: node 1 (one query thread) %.0f q/s idle, %.0f q/s while etcd took %.0f "
                  "changes/s (%d writes, %d store changes applied by node 1): ratio %.3f" % (
                      idle, busy, n / span, n, applied, busy / idle))
            print("load: the same writes under a prefix no node follows (%.0f/s, %d applied): "
                  "%.0f q/s, ratio %.3f; applying them costs node 1 %.3f of that" % (
                      n_o / span_o, applied_o, other, other / idle, busy / other))
            print("ETCD qps_idle=%.0f qps_applying=%.0f changes_per_s=%.0f ratio=%.3f "
                  "qps_writes_not_followed=%.0f ratio_not_followed=%.3f" % (
                      idle, busy, n / span, busy / idle, other, other / idle))
            print("load: CPU per write on node 1: %.2f ms in the etcd thread (apply to the "
                  "replica), %.2f ms in the control thread (serve it)" % (
                      cpu_ms["etcd"], cpu_ms["control"]))
            print("ETCD cpu_ms_per_write_etcd=%.2f cpu_ms_per_write_control=%.2f" % (
                cpu_ms["etcd"], cpu_ms["control"]))
    finally:
        for fn in reversed(gslbtest._cleanups):
            try:
                fn()
            except Exception:
                pass
        gslbtest.stop_all()
        for t in gslbtest._tmpdirs:
            shutil.rmtree(t, ignore_errors=True)


if __name__ == "__main__":
    main()
