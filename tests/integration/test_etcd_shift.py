#!/usr/bin/env python3
"""Staged shifts and flap damping thresholds in a cluster: three real etcd
members and three bin/dnsd --etcd. A shift started with gslbctl --etcd is
served with the same stage by every node (the same answers for a fixed set
of ECS clients), advances on schedule once for the fleet (one audit row per
stage, by the node that won the compare-and-swap), and a rollback decided by
one node (its only agent reports the target down to it alone) rolls the
shift back on every node; pause, resume and --abort through etcd reach every
node; while etcd is down no node advances the stage it serves; damping
thresholds set with gslbctl --etcd reach every node's store;
an import carries shift and damping blocks; two writes that cancel out while
a node is stopped are both in that node's audit trail."""
import json
import os
import sqlite3
import subprocess
import time
import urllib.request

import dns.query

from gslbtest import (BIN, TIME_FACTOR, answer_texts, ecs_query, gslbctl, run, test,
                      tmpdir)
import etcdnodes
from etcdnodes import TOKEN, expect, wait

SVC = "www.gslb.example.com."
OLD, NEW = "192.0.2.1", "192.0.2.2"
CLIENTS = ["10.%d.%d.0" % (i // 200, i % 200) for i in range(200)]


def ctl(urls, *args, check=True):
    argv = [os.path.join(BIN, "gslbctl"), "--etcd", ",".join(urls)] + [str(a) for a in args]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=60 * TIME_FACTOR)
    if check and p.returncode != 0:
        raise AssertionError("gslbctl --etcd %s failed (%d): %s" % (
            " ".join(map(str, args)), p.returncode, p.stderr))
    return p


def seed(urls):
    ctl(urls, "service", "add", SVC, "--policy", "failover", "--ttl", "5")
    ctl(urls, "endpoint", "add", SVC, OLD, "--priority", 0, "--check", "tcp://127.0.0.1:9")
    ctl(urls, "endpoint", "add", SVC, NEW, "--priority", 1, "--check", "tcp://127.0.0.1:9")


def shift_of(node):
    return node.status().get("shifts", {}).get(SVC)


def answers(node):
    """The answer of every client of CLIENTS (ECS /24) from node."""
    out = []
    for c in CLIENTS:
        r = dns.query.udp(ecs_query(SVC, "A", c, 24), "127.0.0.1", port=node.port,
                          timeout=2 * TIME_FACTOR)
        out.append(tuple(answer_texts(r)))
    return out


def same_stage_same_answers(nodes):
    """Every node serves the same stage and, for it, the same answers (the
    stage read before and after the answers, so a stage that begins in
    between is read again). Returns the stage."""
    for _ in range(10):
        before = [shift_of(n) for n in nodes]
        got = [answers(n) for n in nodes]
        after = [shift_of(n) for n in nodes]
        key = [(s["stage"], s["state"]) for s in before + after]
        if len(set(key)) == 1:
            expect(got[0] == got[1] == got[2],
                   "nodes at stage %s answer differently" % (key[0],))
            moved = sum(1 for a in got[0] if a == (NEW,))
            return before[0]["stage"], moved
        time.sleep(0.1)
    raise AssertionError("nodes never at one stage: %s" % [shift_of(n) for n in nodes])


def etcd_audit(etcd, field="shift"):
    _, kv = etcd.range(etcdnodes.PREFIX + "audit/")
    rows = []
    for k in sorted(kv):
        rows += [r for r in json.loads(kv[k]) if r.get("field") == field]
    return rows


def node_audit(node, field=None):
    con = sqlite3.connect(node.db, timeout=10)
    try:
        return con.execute("SELECT who, source, service, target, field, old, new FROM audit "
                           "WHERE ?1 IS NULL OR field = ?1 ORDER BY id", (field,)).fetchall()
    finally:
        con.close()


def report(node, target, state):
    """One agent of node's own (agent "only-<node>") reports target."""
    req = urllib.request.Request("http://127.0.0.1:%d/v1/checks" % node.api_port,
                                 headers={"Authorization": "Bearer " + TOKEN})
    with urllib.request.urlopen(req, timeout=5) as r:
        checks = json.loads(r.read())["checks"]
    eid = [c["id"] for c in checks if c["target"] == target][0]
    body = {"agent": "only-" + node.name, "region": "eu", "lat": 50.0, "lon": 8.0,
            "results": [{"id": eid, "state": state, "ok": state == "up", "rtt_ms": None,
                         "ts": time.time(), "detail": "test"}]}
    req = urllib.request.Request("http://127.0.0.1:%d/v1/reports" % node.api_port,
                                 data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json",
                                          "Authorization": "Bearer " + TOKEN})
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 200


@test
def one_shift_for_the_fleet():
    etcd, nodes = etcdnodes.start()
    u = etcd.urls
    seed(u)
    wait(lambda: all(n.answer(SVC) == [OLD] for n in nodes), 5, "seeded everywhere")
    every = 2.0 * TIME_FACTOR
    t0 = time.time()
    p = ctl(u, "shift", SVC, NEW, "--steps", "20,60,100", "--every", every)
    expect("stage 1 of 3 (20%), running" in p.stdout, p.stdout)
    wait(lambda: all((shift_of(n) or {}).get("stage") == 1 for n in nodes), 1,
         lambda: [shift_of(n) for n in nodes])
    started = {shift_of(n)["started"] for n in nodes}
    expect(len(started) == 1, started)
    stage, moved = same_stage_same_answers(nodes)
    expect(stage == 1 and 0 < moved < len(CLIENTS) // 2, (stage, moved))
    # Stage 2 on every node, on schedule (started + every), not earlier.
    wait(lambda: all(shift_of(n)["stage"] == 2 for n in nodes), every + 3,
         lambda: [shift_of(n) for n in nodes])
    t2 = time.time()
    expect(t2 - t0 >= every - 0.5, "stage 2 after %.2f s (every %.1f)" % (t2 - t0, every))
    nexts = {shift_of(n)["next_step"] for n in nodes}
    expect(len(nexts) == 1, "nodes disagree on when stage 3 begins: %s" % nexts)
    expect(abs(nexts.pop() - (list(started)[0] + 2 * every)) < 0.01,
           "stage 2 began off schedule")
    stage, moved2 = same_stage_same_answers(nodes)
    expect(stage == 2 and moved2 > moved, (stage, moved, moved2))
    # Stage 3 (100%): done everywhere, the target preferred by every node.
    wait(lambda: all(shift_of(n)["state"] == "done" for n in nodes), every + 3,
         lambda: [shift_of(n) for n in nodes])
    wait(lambda: all(n.answer(SVC) == [NEW] for n in nodes), 2, "target preferred")
    # Each stage was begun once, for the fleet, by one node (the CAS winner),
    # and every node's audit trail has the same rows.
    rows = etcd_audit(etcd)
    for k in (2, 3):
        by = [r for r in rows if ("stage %d of 3" % k) in json.dumps(r["new"])]
        expect(len(by) == 1, "stage %d: %s" % (k, by))
        expect(by[0]["who"].startswith("dnsd:node") and by[0]["source"] == "etcd", by)
    wait(lambda: all(len(node_audit(n, "shift")) == len(rows) for n in nodes), 2,
         lambda: [node_audit(n, "shift") for n in nodes])
    expect(node_audit(nodes[0], "shift") == node_audit(nodes[1], "shift") ==
           node_audit(nodes[2], "shift"), "audit trails differ")


@test
def controls_and_rollback_by_one_node_for_all():
    etcd, nodes = etcdnodes.start()
    u = etcd.urls
    seed(u)
    wait(lambda: all(n.answer(SVC) == [OLD] for n in nodes), 5, "seeded everywhere")
    ctl(u, "shift", SVC, NEW, "--steps", "30,60,100", "--every", 600)
    wait(lambda: all((shift_of(n) or {}).get("stage") == 1 for n in nodes), 1,
         lambda: [shift_of(n) for n in nodes])
    # pause, resume, abort through etcd: every node.
    ctl(u, "shift", SVC, "--pause")
    wait(lambda: all(shift_of(n)["paused"] for n in nodes), 1,
         lambda: [shift_of(n) for n in nodes])
    ctl(u, "shift", SVC, "--resume")
    wait(lambda: all(not shift_of(n)["paused"] and shift_of(n)["state"] == "running"
                     for n in nodes), 1, lambda: [shift_of(n) for n in nodes])
    ctl(u, "shift", SVC, "--abort")
    wait(lambda: all(shift_of(n)["state"] == "aborted" and shift_of(n)["percent"] == 0
                     for n in nodes), 1, lambda: [shift_of(n) for n in nodes])
    expect(all(set(answers(n)) == {(OLD,)} for n in nodes), "aborted: all on the old")
    # A new shift through a node's API (POST /v1/shift) reaches every node.
    body = json.dumps({"service": SVC, "target": NEW, "steps": [30, 60, 100],
                       "every": 600}).encode()
    req = urllib.request.Request("http://127.0.0.1:%d/v1/shift" % nodes[2].api_port,
                                 data=body, method="POST",
                                 headers={"Authorization": "Bearer " + TOKEN,
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30 * TIME_FACTOR) as r:
        expect(r.status == 200, r.status)
    expect(shift_of(nodes[2])["state"] == "running", shift_of(nodes[2]))
    wait(lambda: all(shift_of(n)["state"] == "running" for n in nodes), 1,
         lambda: [shift_of(n) for n in nodes])
    stage, moved = same_stage_same_answers(nodes)
    expect(stage == 1 and moved > 0, (stage, moved))
    # Only node 1 hears an agent saying the target is down: node 1 rolls
    # the shift back, for every node.
    report(nodes[1], NEW, "down")
    wait(lambda: all(shift_of(n)["state"] == "rolled-back" for n in nodes), 5,
         lambda: [shift_of(n) for n in nodes])
    for n in nodes:
        sh = shift_of(n)
        expect(sh["percent"] == 0 and "down" in sh["reason"], sh)
        expect(set(answers(n)) == {(OLD,)}, "%s: clients left on the target" % n.name)
    last = etcd_audit(etcd)[-1]
    expect(last["who"] == "dnsd:node1" and "rolled back" in last["new"], last)
    for n in nodes:
        wait(lambda: any(r[0] == "dnsd:node1" and "rolled back" in r[6]
                         for r in node_audit(n, "shift")), 2,
             lambda: node_audit(n, "shift"))


@test
def etcd_down_keeps_the_stage():
    """etcd stopped mid-shift: every node keeps serving the stage it has
    and none advances it on its own, past the stage's period; once etcd is
    back the shift moves on, for all."""
    etcd, nodes = etcdnodes.start()
    u = etcd.urls
    seed(u)
    wait(lambda: all(n.answer(SVC) == [OLD] for n in nodes), 5, "seeded everywhere")
    every = 2.0 * TIME_FACTOR
    ctl(u, "shift", SVC, NEW, "--steps", "20,60,100", "--every", every)
    wait(lambda: all((shift_of(n) or {}).get("stage") == 1 for n in nodes), 1,
         lambda: [shift_of(n) for n in nodes])
    _, moved = same_stage_same_answers(nodes)
    etcd.stop_all()
    time.sleep(every * 2)
    for n in nodes:
        sh = shift_of(n)
        expect(sh["stage"] == 1 and sh["state"] == "running", "%s: %s" % (n.name, sh))
    stage, moved_down = same_stage_same_answers(nodes)
    expect(stage == 1 and moved_down == moved, (stage, moved, moved_down))
    etcd.start_all()
    wait(lambda: all(shift_of(n)["stage"] >= 2 for n in nodes), 10,
         lambda: [shift_of(n) for n in nodes])
    wait(lambda: len({(shift_of(n)["stage"], shift_of(n)["state"]) for n in nodes}) == 1,
         every + 3, lambda: [shift_of(n) for n in nodes])


@test
def damping_import_and_net_zero_audit():
    etcd, nodes = etcdnodes.start()
    u = etcd.urls
    seed(u)
    wait(lambda: all(n.answer(SVC) == [OLD] for n in nodes), 5, "seeded everywhere")
    # Damping thresholds through etcd: every node's damping table.
    ctl(u, "damping", SVC, "--suppress", "3000", "--half-life", "45")

    def damping(n):
        return gslbctl(n.db, "damping", SVC).stdout
    wait(lambda: all("suppress above 3000" in damping(n) and "half-life 45" in damping(n)
                     for n in nodes), 2, lambda: [damping(n) for n in nodes])
    for n in nodes:
        expect(any(r[4] == "damping" and r[1] == "gslbctl" for r in node_audit(n)),
               node_audit(n)[-3:])
    # Each dnsd counts penalties with them: a flap seen by one node (its own
    # agent) is limited by the replicated threshold; the other nodes saw no
    # flap (penalties stay per node).
    report(nodes[0], NEW, "up")
    time.sleep(0.3)
    report(nodes[0], NEW, "down")

    def limits(n):
        return [(v["endpoint"], v["suppress_limit"]) for v in n.status().get("damping", {}).values()]
    wait(lambda: limits(nodes[0]) == [(SVC + " " + NEW, 3000)], 3,
         lambda: "node0 damping: %s" % nodes[0].status().get("damping"))
    expect(limits(nodes[1]) == [] and limits(nodes[2]) == [],
           lambda: "%s %s" % (limits(nodes[1]), limits(nodes[2])))
    # An import with shift and damping blocks (a single node's export).
    d = tmpdir()
    db = os.path.join(d, "single.db")
    gslbctl(db, "init")
    other = "api.gslb.example.com."
    gslbctl(db, "service", "add", other, "--policy", "failover")
    gslbctl(db, "endpoint", "add", other, "192.0.2.11", "--priority", 0)
    gslbctl(db, "endpoint", "add", other, "192.0.2.12", "--priority", 1)
    gslbctl(db, "damping", other, "--reuse", "500")
    gslbctl(db, "shift", other, "192.0.2.12", "--steps", "40,100", "--every", 600)
    exp = json.loads(gslbctl(db, "export").stdout)
    exp["services"] += [s for s in json.loads(ctl(u, "export").stdout)["services"]
                        if s["name"] == SVC]
    path = os.path.join(d, "cfg.json")
    with open(path, "w") as f:
        json.dump(exp, f)
    ctl(u, "import", path)
    wait(lambda: all((n.status().get("shifts", {}).get(other) or {}).get("stage") == 1
                     for n in nodes), 2, lambda: [n.status().get("shifts") for n in nodes])
    for n in nodes:
        expect("reuse below 500" in gslbctl(n.db, "damping", other).stdout,
               gslbctl(n.db, "damping", other).stdout)
    # The import's audit: one row per added service (what came with it).
    added = [r for r in json.loads(ctl(u, "--json", "history", other).stdout)["history"]
             if r["op"] == "add"]
    expect(len(added) == 1 and added[0]["kind"] == "service" and
           sorted(added[0]["new"]["endpoints"]) == ["192.0.2.11", "192.0.2.12"], added)
    # Two writes that cancel out while node 2 is stopped: both in its audit
    # trail once it has caught up.
    nodes[2].stop()
    ctl(u, "flip", SVC, NEW)
    ctl(u, "flip", SVC, OLD)
    nodes[2].start()
    wait(lambda: nodes[2].status()["config_revision"] == nodes[0].status()["config_revision"],
         5, "node 2 catches up")
    flips = [r for r in node_audit(nodes[2]) if r[4] == "priority" and r[1] == "gslbctl"]
    expect(len(flips) >= 4, flips)
    wait(lambda: node_audit(nodes[2]) == node_audit(nodes[0]), 2,
         lambda: "audit trails differ: %s / %s" % (node_audit(nodes[0])[-6:],
                                                   node_audit(nodes[2])[-6:]))


if __name__ == "__main__":
    run()
