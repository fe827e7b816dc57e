#!/usr/bin/env python3
"""Writes to a three-node cluster: three real etcd members and three bin/dnsd
with --etcd, each with its own replica (--db). A write with gslbctl --etcd
and one through a node's API are answered by every node within a second,
and the node that took the API write answers it as soon as it replied;
the audit record travels with the change (every node logs the writer's
who and source). Two writers while the etcd leader is killed -9 twice and a
dnsd is killed -9 and restarted: no acknowledged write lost, none applied
twice, and every node ends at the same config_revision, configuration and
answers. Without quorum an API write answers 503 and the node keeps
answering. A node restarted without --etcd keeps its replica as a plain
store."""
import json
import os
import random
import sqlite3
import subprocess
import threading
import time
import urllib.error
import urllib.request

from gslbtest import (BIN, TIME_FACTOR, ZONES, Dnsd, EtcdCluster, answer_texts,
                      ecs_query, free_port, gslbctl, run, test, tmpdir, wait_for)
import dns.query

TOKEN = "etcd-write-token"
SVC = "www.gslb.example.com."
SVC2 = "api.gslb.example.com."
ZONE = os.path.join(ZONES, "gslb.example.com.zone")


def ctl(urls, *args, check=True, timeout=60):
    argv = [os.path.join(BIN, "gslbctl"), "--etcd", ",".join(urls)] + [str(a) for a in args]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout * TIME_FACTOR)
    if check and p.returncode != 0:
        raise AssertionError("gslbctl --etcd %s failed (%d): %s" % (
            " ".join(map(str, args)), p.returncode, p.stderr))
    return p


class Node:
    """One dnsd with --etcd (every member's URL, its own order) and its own
    replica and API."""

    def __init__(self, i, etcd, d, urls=None):
        self.i = i
        self.name = "n%d" % i
        self.db = os.path.join(d, "n%d.db" % i)
        self.tok = os.path.join(d, "token")
        with open(self.tok, "w") as f:
            f.write(TOKEN + "\n")
        os.chmod(self.tok, 0o600)
        self.urls = urls or (etcd.urls[i:] + etcd.urls[:i])
        self.port = free_port()
        self.api_port = free_port()
        self.api = "http://127.0.0.1:%d" % self.api_port
        self.dnsd = None

    def start(self, etcd_mode=True):
        args = ["--zone", ZONE, "--db", self.db, "--api", "127.0.0.1:%d" % self.api_port,
                "--api-token-file", self.tok, "--db-poll-ms", "100"]
        if etcd_mode:
            for u in self.urls:
                args += ["--etcd", u]
            args += ["--node-name", self.name]
        self.dnsd = Dnsd(args, port=self.port)
        return self

    def status(self):
        with urllib.request.urlopen(self.api + "/v1/status", timeout=5) as r:
            return json.loads(r.read())

    def config(self):
        with urllib.request.urlopen(self.api + "/v1/config", timeout=5) as r:
            return json.loads(r.read())

    def answer(self, name=SVC, subnet=None):
        if subnet:
            r = dns.query.udp(ecs_query(name, "A", subnet, 24), "127.0.0.1", port=self.port,
                              timeout=2)
        else:
            r = self.dnsd.udp(name)
        return sorted(answer_texts(r))

    def call(self, method, path, body=None):
        req = urllib.request.Request(self.api + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": "Bearer " + TOKEN,
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30 * TIME_FACTOR) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")


def cluster(n_nodes=3):
    etcd = EtcdCluster(3)
    d = tmpdir()
    nodes = [Node(i, etcd, d).start() for i in range(n_nodes)]
    return etcd, nodes


def seed(etcd):
    u = etcd.urls
    ctl(u, "service", "add", SVC, "--policy", "failover")
    ctl(u, "endpoint", "add", SVC, "192.0.2.1", "--priority", 1)
    ctl(u, "endpoint", "add", SVC, "192.0.2.2", "--priority", 2)
    ctl(u, "service", "add", SVC2, "--policy", "weighted")
    for k in (11, 12, 13):
        ctl(u, "endpoint", "add", SVC2, "192.0.2.%d" % k)


def all_answer(nodes, want, name=SVC, timeout=1.0):
    """Seconds until every node answers want (fails after timeout x factor)."""
    t0 = time.monotonic()
    deadline = t0 + timeout * TIME_FACTOR
    pending = list(nodes)
    while pending:
        pending = [n for n in pending if n.answer(name) != want]
        if not pending:
            break
        if time.monotonic() > deadline:
            raise AssertionError("nodes %s do not answer %s for %s after %.2fs: %s" % (
                [n.name for n in pending], want, name, time.monotonic() - t0,
                [n.answer(name) for n in pending]))
        time.sleep(0.005)
    return time.monotonic() - t0


def synced(nodes, etcd, timeout=3.0):
    """Waits until every node's GET /v1/config is what etcd holds."""
    def ok():
        want = sorted((json.loads(v) for v in etcd.range("/gslb/services/")[1].values()),
                      key=lambda s: s["name"])
        return all(n.config()["services"] == want for n in nodes)
    assert wait_for(ok, timeout), "nodes do not hold what etcd holds"


def audit_of(db):
    con = sqlite3.connect(db, timeout=10)
    try:
        return con.execute("SELECT who, source, op, kind, service, target, field, old, new "
                           "FROM audit ORDER BY id").fetchall()
    finally:
        con.close()


@test
def writes_through_any_node_reach_all_within_a_second():
    etcd, nodes = cluster()
    seed(etcd)
    all_answer(nodes, ["192.0.2.1"], timeout=5)
    # gslbctl with node 0's etcd list.
    ctl(nodes[0].urls, "flip", SVC, "192.0.2.2")
    t = all_answer(nodes, ["192.0.2.2"])
    print("gslbctl flip answered by all nodes in %.3fs" % t)
    # The API of node 1: when it replies, node 1 answers it already.
    code, body = nodes[1].call("POST", "/v1/flip", {"service": SVC, "target": "192.0.2.1"})
    assert code == 200, (code, body)
    assert nodes[1].answer() == ["192.0.2.1"], nodes[1].answer()
    t = all_answer(nodes, ["192.0.2.1"])
    print("API flip answered by all nodes in %.3fs" % t)
    # REST on node 2: reads its own write from GET, every node's config equal.
    code, body = nodes[2].call("PUT", "/v1/services/%s/endpoints/192.0.2.12" % SVC2,
                               {"weight": 7})
    assert code == 200 and body["changes"][0]["new"] == 7, (code, body)
    ep = {e["target"]: e for s in nodes[2].config()["services"] if s["name"] == SVC2
          for e in s["endpoints"]}
    assert ep["192.0.2.12"]["weight"] == 7, ep
    rev = etcd.revision()
    assert wait_for(lambda: all(n.status()["config_revision"] ==
                                nodes[2].status()["config_revision"] for n in nodes), 2)
    cfgs = [n.config() for n in nodes]
    assert cfgs[0] == cfgs[1] == cfgs[2], cfgs
    assert nodes[0].status()["config_revision"] <= rev
    # The audit record travels: every node logs the API write as the API's.
    for n in nodes:
        rows = audit_of(n.db)
        assert ("token", "api", "change", "endpoint", SVC2, "192.0.2.12", "weight", "1",
                "7") in rows, rows[-3:]
        assert any(r[1] == "gslbctl" and r[6] == "priority" for r in rows), rows[-3:]
    # gslbctl --etcd status: which node applied which revision.
    def all_current():
        st = json.loads(ctl(etcd.urls, "--json", "status").stdout)["etcd"]
        return st if (sorted(n["name"] for n in st["nodes"]) == ["n0", "n1", "n2"] and
                      all(n["current"] for n in st["nodes"])) else None
    st = wait_for(all_current, 5)
    assert st, json.loads(ctl(etcd.urls, "--json", "status").stdout)["etcd"]
    assert st["prefix"] == "/gslb/" and st["services"] == 2, st
    assert all(n["config_revision"] == st["config_revision"] and n["lag"] == 0 and
               st["cluster_revision"] >= n["revision"] >= n["config_revision"]
               for n in st["nodes"]), st
    txt = ctl(etcd.urls, "status").stdout
    assert "prefix /gslb/" in txt and "node n1: configuration revision %d (current)" % (
        st["config_revision"]) in txt, txt
    # Errors keep their meaning: a guard rail is a 409, nothing committed.
    r0 = etcd.revision()
    code, body = nodes[0].call("DELETE", "/v1/services/%s" % SVC)
    assert code == 409 and "force" in body["error"], (code, body)
    code, body = nodes[0].call("POST", "/v1/endpoint", {"service": SVC, "target": "192.0.2.9",
                                                        "weight": 3})
    assert code == 422, (code, body)
    assert etcd.revision() == r0
    # A dry run plans and commits nothing.
    code, body = nodes[0].call("POST", "/v1/endpoint?dry_run=1",
                               {"service": SVC, "target": "192.0.2.2", "drained": True})
    assert code == 200 and etcd.revision() == r0, (code, body)
    # PUT /v1/config of what GET printed changes nothing.
    code, body = nodes[0].call("PUT", "/v1/config", cfgs[0])
    assert code == 200 and body["changes"] == [] and etcd.revision() == r0, (code, body)


@test
def no_quorum_api_write_fails_and_node_keeps_answering():
    etcd, nodes = cluster(1)
    seed(etcd)
    n = nodes[0]
    synced(nodes, etcd)
    before = n.config()
    etcd.kill(1)
    etcd.kill(2)
    t0 = time.monotonic()
    code, body = n.call("POST", "/v1/flip", {"service": SVC, "target": "192.0.2.2"})
    took = time.monotonic() - t0
    assert code == 503, (code, body)
    assert "nothing changed" in body["error"] or "outcome unknown" in body["error"], body
    assert took < 20 * TIME_FACTOR, took
    assert n.answer() == ["192.0.2.1"]
    etcd.start(1)
    etcd.start(2)
    if "nothing changed" in body["error"]:
        time.sleep(0.5)
        assert n.config() == before, (body, before, n.config())
    code, body = n.call("POST", "/v1/flip", {"service": SVC, "target": "192.0.2.2"})
    assert code == 200, (code, body)
    # Committed; the node's watch may still be in its reconnect backoff
    # (up to 3 s) after the members came back, and serves it once back.
    assert wait_for(lambda: n.answer() == ["192.0.2.2"], 5 * TIME_FACTOR), n.answer()


@test
def chaos_no_write_lost_or_applied_twice():
    etcd, nodes = cluster()
    seed(etcd)
    all_answer(nodes, ["192.0.2.1"], timeout=5)
    # 150 writes each (300 in all) at full speed; fewer under the slower
    # sanitizer builds, so the test keeps its time.
    per_writer = int(os.environ.get("ETCD_CHAOS_WRITES") or max(50, 150 / TIME_FACTOR))
    acked = {"192.0.2.11": [], "192.0.2.12": []}
    failed = {"192.0.2.11": [], "192.0.2.12": []}
    stop = threading.Event()

    def writer(target, via_api):
        for i in range(2, per_writer + 2):
            if via_api:
                code, body = nodes[1].call("PUT", "/v1/services/%s/endpoints/%s" % (SVC2, target),
                                           {"weight": i})
                ok = code == 200
                why = body.get("error")
            else:
                p = ctl(etcd.urls, "endpoint", "set", SVC2, target, "--weight", i, check=False)
                ok = p.returncode == 0
                why = p.stderr
            (acked if ok else failed)[target].append((i, why))
            if i % 10 == 0 and not via_api:
                # A drain and an undrain now and then, on the same service.
                ctl(etcd.urls, "--force", "endpoint", "drain" if i % 20 else "undrain", SVC2,
                    "192.0.2.13", check=False)

    def chaos():
        time.sleep(1.5)
        for _ in range(2):
            ld = etcd.leader()
            if ld is not None:
                etcd.kill(ld)
                time.sleep(2)
                etcd.start(ld)
            time.sleep(1.5)
        nodes[2].dnsd.kill()
        time.sleep(1)
        nodes[2].start()

    ws = [threading.Thread(target=writer, args=("192.0.2.11", False)),
          threading.Thread(target=writer, args=("192.0.2.12", True)),
          threading.Thread(target=chaos)]
    t0 = time.monotonic()
    for t in ws:
        t.start()
    for t in ws:
        t.join()
    stop.set()
    took = time.monotonic() - t0
    n_acked = sum(len(v) for v in acked.values())
    print("%d writes acknowledged, %d failed, in %.1fs" % (
        n_acked, sum(len(v) for v in failed.values()), took))
    for t, f in failed.items():
        for i, why in f:
            assert "nothing changed" in why or "outcome unknown" in why or \
                "conflict" in why, (t, i, why)
    assert n_acked >= per_writer, (acked, failed)
    # Every node converges to one revision, configuration and answers.
    want = etcd.range("/gslb/services/")[1]

    def converged():
        revs = {n.status()["config_revision"] for n in nodes}
        cfgs = [n.config() for n in nodes]
        return len(revs) == 1 and cfgs[0] == cfgs[1] == cfgs[2]
    assert wait_for(converged, 10), [n.status()["config_revision"] for n in nodes]
    cfg = nodes[0].config()
    assert sorted(s["name"] for s in cfg["services"]) == sorted(k.split("/")[-1] for k in want)
    for s in cfg["services"]:
        assert json.loads(want["/gslb/services/" + s["name"]]) == s, s["name"]
    clients = ["198.51.100.0", "203.0.113.0", "192.0.2.0", "10.1.2.0", "172.16.5.0"]
    for name in (SVC, SVC2):
        for c in clients:
            a = [n.answer(name, c) for n in nodes]
            if name == SVC:
                assert a[0] == a[1] == a[2], (name, c, a)
            else:
                assert all(x and set(x) <= {"192.0.2.11", "192.0.2.12", "192.0.2.13"}
                           for x in a), a
    # 0 lost, 0 twice: on every node, each target's weight changes are one
    # chain of distinct increasing values holding every acknowledged one.
    for n in nodes:
        rows = audit_of(n.db)
        for t in acked:
            news = [int(r[8]) for r in rows if r[5] == t and r[6] == "weight"]
            olds = [int(r[7]) for r in rows if r[5] == t and r[6] == "weight"]
            assert len(news) == len(set(news)), (n.name, t, "applied twice")
            assert news == sorted(news), (n.name, t, news)
            assert olds[1:] == news[:-1], (n.name, t, "lost update")
            missing = {i for i, _ in acked[t]} - set(news)
            assert not missing, (n.name, t, "acknowledged but lost", sorted(missing))
            w = {e["target"]: e["weight"] for s in cfg["services"] if s["name"] == SVC2
                 for e in s["endpoints"]}[t]
            assert w == news[-1] and w >= max(i for i, _ in acked[t]), (t, w, news[-3:])


@test
def node_leaves_cluster_with_its_replica():
    etcd, nodes = cluster(1)
    seed(etcd)
    n = nodes[0]
    ctl(etcd.urls, "flip", SVC, "192.0.2.2")
    all_answer(nodes, ["192.0.2.2"], timeout=3)
    cfg = n.config()
    in_etcd = etcd.get("/gslb/services/" + SVC)
    n.dnsd.stop()
    n.start(etcd_mode=False)
    assert n.answer() == ["192.0.2.2"]
    assert n.config() == cfg
    assert n.status()["config_revision"] == 0
    # A plain store now: gslbctl --db writes it, etcd no longer matters.
    gslbctl(n.db, "flip", SVC, "192.0.2.1")
    assert wait_for(lambda: n.answer() == ["192.0.2.1"], 2)
    code, body = n.call("POST", "/v1/flip", {"service": SVC, "target": "192.0.2.2"})
    assert code == 200 and n.answer() == ["192.0.2.2"], (code, body)
    # Its writes stay local: etcd still holds what it had.
    assert etcd.get("/gslb/services/" + SVC) == in_etcd


if __name__ == "__main__":
    random.seed(1)
    run()
