#!/usr/bin/python3
"""Incremental snapshots: a store of 20,000 balanced names, one changed.

dnsd starts from a full load; then `gslbctl flip` of one service, a new
service, a removed service and a staged traffic shift's first step must
each be served within a second, and /metrics must count each as an
incremental build (dnsd_snapshot_builds_total{kind="incremental"}), the
full count staying at the start's one. A write that bypasses the change
log (the sqlite3 shell) is still served, by a full build; so is SIGHUP.
"""
import os
import sqlite3
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gslbtest import (TIME_FACTOR, ZONES, Dnsd, answer_texts, free_port,  # noqa: E402
                      gslbctl, run, test, tmpdir, wait_for)

N = 20000
ZONE_ARGS = ["--zone", os.path.join(ZONES, "gslb.example.com.zone")]


def name(i):
    return "b%d.gslb.example.com." % i


def addr(i, k):
    n = i * 4 + k
    return "10.%d.%d.%d" % ((n >> 16) & 255, (n >> 8) & 255, n & 255)


def make_store(db):
    """N failover services with 4 endpoints (priorities 0..3), written in
    one transaction straight into the tables (as a bulk load would)."""
    gslbctl(db, "init")
    c = sqlite3.connect(db)
    c.executemany("INSERT INTO services (id, name, policy, ttl) VALUES (?, ?, 'failover', 60)",
                  ((i + 1, name(i)) for i in range(N)))
    c.executemany("INSERT INTO endpoints (service_id, target, priority) VALUES (?, ?, ?)",
                  ((i + 1, addr(i, k), k) for i in range(N) for k in range(4)))
    c.commit()
    c.close()


def metrics(port):
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                  timeout=30 * TIME_FACTOR).read().decode()
    out = {}
    for ln in text.splitlines():
        if ln.startswith("dnsd_snapshot_builds_total{"):
            kind = ln.split('kind="')[1].split('"')[0]
            out[kind] = int(ln.rsplit(" ", 1)[1])
    return out


def served_within(srv, qname, want, limit):
    """Seconds until qname answers want (a list of addresses, [] for
    NXDOMAIN), polled; fails past limit x TIME_FACTOR."""
    t0 = time.monotonic()

    def check():
        r = srv.udp(qname)
        return (answer_texts(r) if r.rcode() == 0 else []) == want
    assert wait_for(check, timeout=limit, interval=0.01), \
        "%s not served as %s within %.1fs" % (qname, want, limit * TIME_FACTOR)
    return time.monotonic() - t0


@test
def one_change_is_an_incremental_build():
    d = tmpdir()
    db = os.path.join(d, "g.db")
    tok = os.path.join(d, "token")
    with open(tok, "w") as f:
        f.write("sekrit-token\n")
    make_store(db)
    api = free_port()
    srv = Dnsd(ZONE_ARGS + ["--db", db, "--db-poll-ms", "50", "--api", "127.0.0.1:%d" % api,
                            "--api-token-file", tok], wait=False)
    srv.wait_ready(timeout=30)
    m0 = metrics(api)
    assert m0 == {"full": 1, "incremental": 0}, m0
    i = N // 2
    assert answer_texts(srv.udp(name(i))) == [addr(i, 0)]

    # A flip: one service, served within a second.
    t0 = time.monotonic()
    gslbctl(db, "flip", name(i), addr(i, 2))
    served_within(srv, name(i), [addr(i, 2)], 1.0)
    print("flip served in %.3fs (with gslbctl's own run)" % (time.monotonic() - t0))
    m1 = metrics(api)
    assert m1["full"] == 1 and m1["incremental"] >= 1, m1
    assert answer_texts(srv.udp(name(i + 1))) == [addr(i + 1, 0)]

    # A new service and a removed one.
    gslbctl(db, "service", "add", "new.gslb.example.com", "--policy", "failover")
    gslbctl(db, "endpoint", "add", "new.gslb.example.com", "192.0.2.77")
    served_within(srv, "new.gslb.example.com.", ["192.0.2.77"], 1.0)
    gslbctl(db, "service", "rm", name(7), "--force")
    served_within(srv, name(7), [], 1.0)
    assert srv.udp(name(7)).rcode() == 3, "removed service: NXDOMAIN"
    assert answer_texts(srv.udp(name(8))) == [addr(8, 0)]
    m2 = metrics(api)
    assert m2["full"] == 1 and m2["incremental"] >= m1["incremental"] + 2, m2

    # A staged shift moves the store's version too: its first step is
    # served, still incrementally.
    j = 100
    gslbctl(db, "shift", name(j), addr(j, 3), "--steps", "100", "--every", "60")
    served_within(srv, name(j), [addr(j, 3)], 1.0)
    m3 = metrics(api)
    assert m3["full"] == 1 and m3["incremental"] > m2["incremental"], m3

    # A write behind the change log: a full build serves it.
    c = sqlite3.connect(db)
    c.execute("UPDATE endpoints SET priority = 99 WHERE target = ?", (addr(200, 0),))
    c.commit()
    c.close()
    served_within(srv, name(200), [addr(200, 1)], 10.0)   # a full load of 20k
    m4 = metrics(api)
    assert m4["full"] == 2, m4

    # And after it, incremental again.
    gslbctl(db, "flip", name(300), addr(300, 1))
    served_within(srv, name(300), [addr(300, 1)], 1.0)
    m5 = metrics(api)
    assert m5["full"] == 2 and m5["incremental"] > m4["incremental"], m5
    assert answer_texts(srv.udp(name(i))) == [addr(i, 2)]


@test
def a_commit_is_read_without_waiting_for_the_poll():
    """dnsd watches the store's folder: with a poll interval of 60 s, a
    flip and a write by the sqlite3 shell are each served within a second
    or so all the same."""
    d = tmpdir()
    db = os.path.join(d, "g.db")
    gslbctl(db, "init")
    gslbctl(db, "service", "add", "w.gslb.example.com.", "--policy", "failover")
    for k, a in enumerate(["192.0.2.1", "192.0.2.2"]):
        gslbctl(db, "endpoint", "add", "w.gslb.example.com.", a, "--priority", str(k))
    srv = Dnsd(ZONE_ARGS + ["--db", db, "--db-poll-ms", "60000"])
    try:
        served_within(srv, "w.gslb.example.com.", ["192.0.2.1"], 5)
        gslbctl(db, "flip", "w.gslb.example.com.", "192.0.2.2")
        took = served_within(srv, "w.gslb.example.com.", ["192.0.2.2"], 3)
        print("  flip served in %.0f ms (poll interval 60 s)" % (took * 1000))
        c = sqlite3.connect(db)
        c.execute("UPDATE endpoints SET target = '192.0.2.10' WHERE target = '192.0.2.2'")
        c.commit()
        c.close()
        took = served_within(srv, "w.gslb.example.com.", ["192.0.2.10"], 3)
        print("  sqlite3 shell write served in %.0f ms" % (took * 1000))
    finally:
        srv.stop()


if __name__ == "__main__":
    run()
