#!/usr/bin/python3
"""dnsd --etcd when etcd goes away: every member stopped for 15 s under
query load (no query unanswered, answers unchanged, status and metrics say
disconnected, the nodes catch up when etcd is back); a node stopped while
etcd compacted past its revision resyncs from a full read when it comes
back; a node restarted without compaction resumes from its revision with no
full read; the leader killed -9 under a node's watch."""
import base64
import json
import os
import sqlite3
import threading
import time

from gslbtest import TIME_FACTOR, run, test
from etcdnodes import PREFIX, Node, expect, key, service, start, wait


def b64(s):
    return base64.b64encode(s.encode()).decode()

WWW = "www.gslb.example.com."
# ETCD_OFFLINE_SECONDS=60 runs the full minute (bench/etcd.py measures it too).
OFFLINE_S = float(os.environ.get("ETCD_OFFLINE_SECONDS", "15"))


def all_answer(nodes, want, within, what):
    wait(lambda: all(nd.answer() == want for nd in nodes), within,
         lambda: "%s: %s" % (what, [(nd.name, nd.answer()) for nd in nodes]))


class Load:
    """Queries every node in turn from a thread; counts what was not
    answered and answers other than want."""

    def __init__(self, nodes, want):
        self.nodes, self.want = nodes, want
        self.sent = self.lost = 0
        self.wrong = []
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def loop(self):
        while not self.stop_ev.is_set():
            for nd in self.nodes:
                self.sent += 1
                a = nd.answer()
                if a is None:
                    self.lost += 1
                elif a != self.want and len(self.wrong) < 10:
                    self.wrong.append((nd.name, a))
            time.sleep(0.005)

    def stop(self):
        self.stop_ev.set()
        self.t.join(10)


@test
def etcd_entirely_stopped_under_query_load():
    cluster, nodes = start()
    cluster.put(key(WWW), json.dumps(service()))
    all_answer(nodes, ["192.0.2.1"], 1.0, "before")
    load = Load(nodes, ["192.0.2.1"])
    t0 = time.monotonic()
    cluster.stop_all()
    for nd in nodes:
        wait(lambda: not nd.status()["etcd"]["connected"], 5, "%s says disconnected" % nd.name)
        expect(nd.metric("dnsd_etcd_connected") == 0, "metric")
        expect(nd.status()["etcd"]["last_error"], "last_error set")
    time.sleep(max(0, OFFLINE_S - (time.monotonic() - t0)))
    cluster.start_all()
    for nd in nodes:
        wait(lambda: nd.status()["etcd"]["connected"], 10, lambda: "%s reconnects: %s" %
             (nd.name, nd.log()[-2000:]))
    load.stop()
    expect(load.sent > 100 and load.lost == 0 and not load.wrong,
           "%d queries, %d unanswered, wrong: %s" % (load.sent, load.lost, load.wrong))
    # Caught up: a change after the return reaches every node.
    cluster.put(key(WWW), json.dumps(service(first="192.0.2.2", second="192.0.2.1")))
    all_answer(nodes, ["192.0.2.2"], 1.0, "after etcd came back")
    for nd in nodes:
        log = nd.log()
        expect(log.count("etcd: disconnected") == 1, "one line per state change: %s" % log)
        expect(log.count("etcd: connected to") == 2, log)
        expect(nd.status()["etcd"]["resyncs"] == 1, "no resync: %s" % nd.status()["etcd"])
    print("%d queries while etcd was down, none lost" % load.sent)


@test
def a_node_whose_revision_was_compacted_resyncs():
    cluster, nodes = start(n_nodes=2)
    a, b = nodes
    cluster.put(key(WWW), json.dumps(service()))
    cluster.put(key("gone.gslb.example.com."), json.dumps(service("gone.gslb.example.com.")))
    all_answer(nodes, ["192.0.2.1"], 1.0, "before")
    b.stop()
    # While b is away: a change, a removal, a new service; then history is
    # compacted past b's revision.
    cluster.put(key(WWW), json.dumps(service(first="192.0.2.2", second="192.0.2.1")))
    cluster.delete(key("gone.gslb.example.com."))
    cluster.put(key("new.gslb.example.com."), json.dumps(service("new.gslb.example.com.",
                                                                 first="192.0.2.9")))
    cluster.compact(cluster.revision())
    all_answer([a], ["192.0.2.2"], 1.0, "a follows")
    b.start()
    wait(lambda: b.status()["etcd"]["resyncs"] == 1 and b.answer() == ["192.0.2.2"], 5,
         lambda: "b resyncs: %s %s" % (b.status()["etcd"], b.log()[-2000:]))
    expect(b.metric("dnsd_etcd_resyncs_total") == 1, "metric")
    expect("compacted" in b.log(), b.log())
    expect(b.answer("gone.gslb.example.com.") == [] and
           b.answer("new.gslb.example.com.") == ["192.0.2.9"], "b has the whole change")
    wait(lambda: a.config() == b.config(), 2, "same configuration")
    wait(lambda: a.status()["config_revision"] == b.status()["config_revision"], 2,
         lambda: "same revision: %d %d" % (a.status()["config_revision"],
                                           b.status()["config_revision"]))
    expect(b.status()["config_revision"] <= cluster.revision(), "not above etcd")


@test
def a_restarted_node_resumes_from_its_revision():
    cluster, nodes = start(n_nodes=2)
    a, b = nodes
    cluster.put(key(WWW), json.dumps(service()))
    all_answer(nodes, ["192.0.2.1"], 1.0, "before")
    rev_before = b.status()["config_revision"]
    b.kill()                    # -9: no clean stop
    cluster.put(key(WWW), json.dumps(service(first="192.0.2.2", second="192.0.2.1")))
    b.start()
    # It answers from its replica at once, then catches up.
    all_answer([b], ["192.0.2.2"], 2.0, "b catches up")
    st = b.status()["etcd"]
    expect(st["resyncs"] == 0, "resumed without a full read: %s" % st)
    expect("full sync" not in b.log(), b.log())
    expect(b.status()["config_revision"] > rev_before, "moved")
    wait(lambda: a.status()["config_revision"] == b.status()["config_revision"], 2, "same")


@test
def a_node_catches_up_after_many_changes_while_it_was_stopped():
    cluster, nodes = start(n_etcd=1, n_nodes=2)
    a, b = nodes
    b.stop()
    n = 1200  # more than 1,000 revisions: several watch responses
    for i in range(n):
        name = "s%d.gslb.example.com." % (i % 40)
        cluster.put(key(name), json.dumps(service(name, ttl=30 + i % 7)))
    last = cluster.revision()
    t0 = time.monotonic()
    b.start()
    wait(lambda: b.status()["config_revision"] == last, 20,
         lambda: "b catches up: %s" % b.status()["etcd"])
    took = time.monotonic() - t0
    expect(b.status()["etcd"]["resyncs"] == 0, "no full read")
    wait(lambda: a.config() == b.config(), 2, lambda: "same configuration: %s" % [
        (x, y) for x, y in zip(a.config()["services"], b.config()["services"]) if x != y][:2])
    expect(len(b.config()["services"]) == 40, "40 services")
    print("%d changes made while stopped: caught up %.2f s after the start" % (n, took))

    # Far behind (here more than 100 revisions): b reads the current
    # services and the audit keys written since, in one transaction, not the
    # history; it ends where a is, with the same audit rows.
    b.stop()
    b.extra = ["--etcd-catchup-revisions", "80"]
    for i in range(100):
        name = "s%d.gslb.example.com." % (i % 40)
        doc = service(name, ttl=60 + i % 11)
        rows = [{"time": 1.0 + i, "who": "test", "source": "test", "op": "change",
                 "kind": "service", "service": name, "field": "ttl", "old": None,
                 "new": 60 + i % 11}]
        cluster.call("/v3/kv/txn", {"success": [
            {"request_put": {"key": b64(key(name)), "value": b64(json.dumps(doc))}},
            {"request_put": {"key": b64(PREFIX + "audit/t%05d" % i),
                             "value": b64(json.dumps(rows))}}]})
    for i, name in enumerate(("s39.gslb.example.com.", "s38.gslb.example.com.")):
        rows = [{"time": 500.0 + i, "who": "test", "source": "test", "op": "remove",
                 "kind": "service", "service": name}]
        cluster.call("/v3/kv/txn", {"success": [
            {"request_delete_range": {"key": b64(key(name))}},
            {"request_put": {"key": b64(PREFIX + "audit/u%05d" % i),
                             "value": b64(json.dumps(rows))}}]})
    last = cluster.revision()
    b.start()
    wait(lambda: b.status()["config_revision"] == last, 20,
         lambda: "b catches up from ranges: %s %s" % (b.status()["etcd"], b.log()[-2000:]))
    st = b.status()["etcd"]
    expect(st["catchups"] == 1 and st["resyncs"] == 0, "one catch-up from ranges: %s" % st)
    expect(b.metric("dnsd_etcd_catchups_total") == 1, "metric")
    expect("from ranges" in b.log(), b.log())
    wait(lambda: a.config() == b.config(), 2, "same configuration after the catch-up")
    expect(len(b.config()["services"]) == 38, "38 services")
    wait(lambda: audit_rows(a) == audit_rows(b), 2,
         lambda: "same audit rows: a %d, b %d" % (len(audit_rows(a)), len(audit_rows(b))))
    expect(len(audit_rows(b)) == 102, "the writers' rows: %d" % len(audit_rows(b)))


def audit_rows(nd):
    """The node's audit rows by the test's writer, without their versions
    and ids, sorted (the rows a node records itself for changes without
    any depend on how it grouped them)."""
    con = sqlite3.connect("file:%s?mode=ro" % nd.db, uri=True, timeout=10)
    try:
        return sorted(con.execute("SELECT who, source, op, kind, service, target, field, "
                                  "old, new, time FROM audit WHERE who = 'test'").fetchall(),
                      key=repr)
    finally:
        con.close()


@test
def the_leader_killed_under_a_watch():
    cluster, nodes = start(n_nodes=1)
    nd = nodes[0]
    # The node watches the member it lists first; make that the leader.
    leader = cluster.leader()
    nd.stop()
    nd.urls = cluster.urls[leader:] + cluster.urls[:leader]
    nd.start()
    wait(lambda: nd.status()["etcd"]["connected"], 5, "connected")
    cluster.put(key(WWW), json.dumps(service()))
    all_answer([nd], ["192.0.2.1"], 1.0, "before")
    cluster.kill(leader)
    # A write goes through as soon as the others elected a new leader; the
    # node, whose member is gone, answers it within a second of its ack.
    wait(lambda: cluster.put(key(WWW), json.dumps(service(first="192.0.2.2",
                                                          second="192.0.2.1"))), 15, "write")
    t0 = time.monotonic()
    all_answer([nd], ["192.0.2.2"], 1.0, "after the leader was killed")
    print("acknowledged write to answer after a leader kill: %.3f s" % (time.monotonic() - t0))
    expect(nd.status()["etcd"]["url"] != cluster.urls[leader], nd.status()["etcd"])
    cluster.start(leader)


if __name__ == "__main__":
    run()
