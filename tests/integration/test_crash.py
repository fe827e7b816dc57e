#!/usr/bin/python3
"""Crash safety: rounds of kill -9 of gslbctl and of dnsd at random points
while both write the store.

Each round starts two gslbctl writers at once (a `flip` of a failover service
to a random member, and an `endpoint add` of a new target to a second
service) while a reporter thread keeps POSTing health reports to dnsd's API
(so dnsd's own connection writes the health tables), then kills -9 each
gslbctl and dnsd at independent random times within the writers' usual run
time (some finish first, some are killed mid-transaction). After every round:

- PRAGMA integrity_check is "ok" (0 corrupt databases);
- every acknowledged write (gslbctl exited 0) is in the store: an
  acknowledged flip is the best priority, an acknowledged add is present;
  an unacknowledged flip left either the old or the new best (a flip
  killed right after its commit reached the WAL may also surface later, when
  the store is next opened first: see unsure below);
- dnsd, restarted, answers the flipped service with the store's best
  endpoint (the last committed state); when it was not killed it converges
  to it within 2 s.

CRASH_ROUNDS (default 100) sets the number of rounds; the figures printed at
the end go to README "Crash safety" (CRASH_ROUNDS=1000).
"""
import http.client
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gslbtest import (BIN, ZONES, Dnsd, free_port, gslbctl, test, run,  # noqa: E402
                      tmpdir, wait_for)

SVC = "crash.gslb.example.com."
LOG = "log.gslb.example.com."
HC = "hc.gslb.example.com."
MEMBERS = ["10.0.0.%d" % i for i in range(1, 9)]
TOKEN = "crash-test-token"


def store_best(db):
    """The flipped service's best (lowest priority) endpoint, from the store."""
    c = sqlite3.connect(db, timeout=10)
    try:
        rows = c.execute("SELECT e.target, e.priority FROM endpoints e JOIN services s "
                         "ON e.service_id = s.id WHERE s.name = ? ORDER BY e.priority",
                         (SVC,)).fetchall()
    finally:
        c.close()
    assert len(rows) == len(MEMBERS), rows
    assert rows[0][1] < rows[1][1], "no unique best priority: %s" % rows
    return rows[0][0]


def store_check(db):
    """(integrity_check result, set of LOG targets, health row count)."""
    c = sqlite3.connect(db, timeout=10)
    try:
        ic = c.execute("PRAGMA integrity_check").fetchall()
        fk = c.execute("PRAGMA foreign_key_check").fetchall()
        logs = {r[0] for r in c.execute(
            "SELECT e.target FROM endpoints e JOIN services s ON e.service_id = s.id "
            "WHERE s.name = ?", (LOG,))}
        health = c.execute("SELECT count(*) FROM health").fetchone()[0]
    finally:
        c.close()
    return ("ok" if ic == [("ok",)] else repr(ic)) + ("" if not fk else " fk:%r" % fk), logs, health


class Reporter(threading.Thread):
    """POSTs reports for the HC endpoints to dnsd's API as fast as it
    answers, flipping their state so that dnsd keeps persisting health."""

    def __init__(self, port, ids):
        super().__init__(daemon=True)
        self.port, self.ids = port, ids
        self.stop_ev = threading.Event()
        self.ok = self.failed = 0

    def run(self):
        n = 0
        while not self.stop_ev.is_set():
            n += 1
            state = "up" if (n // 3) % 2 else "down"
            body = json.dumps({"agent": "crash-%d" % (n % 2), "region": "r%d" % (n % 2),
                               "results": [{"id": i, "state": state, "ok": state == "up",
                                            "rtt_ms": 1.0, "ts": time.time()} for i in self.ids]})
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=0.5)
                c.request("POST", "/v1/reports", body, {"Authorization": "Bearer " + TOKEN,
                                                        "Content-Type": "application/json"})
                code = c.getresponse().status
                c.close()
                if code == 200:
                    self.ok += 1
                else:
                    self.failed += 1
                time.sleep(0.002)   # leave the test's own loop the GIL
            except OSError:
                self.failed += 1
                time.sleep(0.005)


def start_dnsd(db, zone, tok, port, api_port):
    return Dnsd(["--zone", zone, "--db", db, "--api", "127.0.0.1:%d" % api_port,
                 "--api-token-file", tok, "--threads", "1", "--db-poll-ms", "50",
                 "--check-interval", "1"], port=port)


def answer(d):
    r = d.udp(SVC, "A")
    return sorted(rd.to_text() for rs in r.answer for rd in rs)


@test
def test_kill9_during_writes():
    rounds = int(os.environ.get("CRASH_ROUNDS", "100"))
    rng = random.Random(int(os.environ.get("CRASH_SEED", "1")))
    d = tmpdir()
    db = os.path.join(d, "gslb.db")
    tok = os.path.join(d, "token")
    with open(tok, "w") as f:
        f.write(TOKEN + "\n")
    zone = os.path.join(ZONES, "gslb.example.com.zone")
    gslbctl(db, "init")
    gslbctl(db, "service", "add", SVC, "--policy", "failover")
    for m in MEMBERS:
        gslbctl(db, "endpoint", "add", SVC, m)
    gslbctl(db, "flip", SVC, MEMBERS[0])
    gslbctl(db, "service", "add", LOG, "--policy", "all")
    gslbctl(db, "endpoint", "add", LOG, "10.1.0.0")
    gslbctl(db, "service", "add", HC, "--policy", "all")
    for i in range(1, 5):
        gslbctl(db, "endpoint", "add", HC, "10.2.0.%d" % i, "--check", "tcp://127.0.0.1:9")
    c = sqlite3.connect(db)
    ids = [r[0] for r in c.execute("SELECT e.id FROM endpoints e JOIN services s "
                                   "ON e.service_id = s.id WHERE s.name = ?", (HC,))]
    mode = c.execute("PRAGMA journal_mode").fetchone()[0]
    c.close()
    assert mode == "wal", mode
    assert len(ids) == 4

    port, api_port = free_port(), free_port()
    ctl = [os.path.join(BIN, "gslbctl"), "--db", db]
    # How long a write usually takes: kill times are drawn around it.
    t0 = time.monotonic()
    for _ in range(5):
        subprocess.run(ctl + ["endpoint", "set", LOG, "10.1.0.0", "--weight", "2"], check=True,
                       capture_output=True)
    span = max(0.004, 1.5 * (time.monotonic() - t0) / 5)

    dnsd = start_dnsd(db, zone, tok, port, api_port)
    dnsd_started = time.monotonic()
    rep = Reporter(api_port, ids)
    rep.start()
    acked_adds, stats = set(), dict(flip_acked=0, flip_killed=0, flip_failed=0, add_acked=0,
                                    add_killed=0, add_failed=0, dnsd_kills=0, restarts=0,
                                    corrupt=0, lost=0, wrong_answer=0)
    best = MEMBERS[0]
    # Flips killed since the last acknowledged one: a writer killed after
    # its commit frame reached the WAL but before it updated the WAL index
    # has committed (SQLite's WAL recovery finds the frame when the next
    # connection opens the store with no other open), so its target may
    # become the best later, without having been visible at the end of its
    # round. Any other best is a write nobody made.
    unsure = []
    started = time.monotonic()
    try:
        for rnd in range(rounds):
            if dnsd is None:
                dnsd = start_dnsd(db, zone, tok, port, api_port)
                dnsd_started = time.monotonic()
                stats["restarts"] += 1
                now_best = store_best(db)
                if now_best != best and now_best in unsure:
                    best = now_best
                got = answer(dnsd)
                if got != [best]:
                    stats["wrong_answer"] += 1
                    raise AssertionError("round %d: restarted dnsd answers %s, store has %s"
                                         % (rnd, got, best))
            kill_dnsd = rng.random() < 0.5
            if kill_dnsd and rng.random() < 0.4:
                # dnsd persists health once a second after it starts (when
                # reports changed something): aim this round at that write.
                wake = dnsd_started + rng.uniform(0.85, 1.1) - span / 2
                if wake > time.monotonic():
                    time.sleep(wake - time.monotonic())
            k = rng.choice([m for m in MEMBERS if m != best])
            new = "10.%d.%d.%d" % (3 + rnd // 65536, (rnd // 256) % 256, rnd % 256)
            flip = subprocess.Popen(ctl + ["flip", SVC, k], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE)
            add = subprocess.Popen(ctl + ["endpoint", "add", LOG, new], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE)
            t = time.monotonic()
            plan = sorted([(rng.uniform(0, span), "flip"), (rng.uniform(0, span), "add")]
                          + ([(rng.uniform(0, span), "dnsd")] if kill_dnsd else []))
            for at, what in plan:
                delay = t + at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                if what == "dnsd":
                    os.kill(dnsd.pid, signal.SIGKILL)
                else:
                    p = flip if what == "flip" else add
                    if p.poll() is None:
                        p.send_signal(signal.SIGKILL)
            results = {}
            for name, p in (("flip", flip), ("add", add)):
                try:
                    p.wait(30)
                finally:
                    p.stderr.close()
                rc = p.returncode
                results[name] = rc
                stats["%s_%s" % (name, "acked" if rc == 0 else "killed" if rc == -9 else "failed")] += 1
            if kill_dnsd:
                dnsd.kill()
                dnsd = None
                stats["dnsd_kills"] += 1
            if results["add"] == 0:
                acked_adds.add(new)

            ic, logs, _ = store_check(db)
            if ic != "ok":
                stats["corrupt"] += 1
                raise AssertionError("round %d: integrity_check: %s" % (rnd, ic))
            lost = acked_adds - logs
            now_best = store_best(db)
            if results["flip"] == 0 and now_best != k:
                lost.add("flip to %s" % k)
            if now_best not in (best, k) and now_best not in unsure:
                raise AssertionError("round %d: best is %s, neither %s nor %s nor a killed "
                                     "flip's %s" % (rnd, now_best, best, k, unsure))
            if results["flip"] == 0:
                unsure = []
            elif results["flip"] == -9:
                unsure.append(k)
            if lost:
                stats["lost"] += len(lost)
                raise AssertionError("round %d: acknowledged writes lost: %s" % (rnd, sorted(lost)))
            best = now_best
            if dnsd is not None:
                got = wait_for(lambda: answer(dnsd) == [best], timeout=2)
                if not got:
                    stats["wrong_answer"] += 1
                    raise AssertionError("round %d: dnsd answers %s, store has %s"
                                         % (rnd, answer(dnsd), best))
        if dnsd is None:
            dnsd = start_dnsd(db, zone, tok, port, api_port)
            stats["restarts"] += 1
            assert answer(dnsd) == [best], (answer(dnsd), best)
    finally:
        rep.stop_ev.set()
        rep.join(5)
    elapsed = time.monotonic() - started
    ic, logs, health = store_check(db)
    assert ic == "ok", ic
    assert health > 0, "dnsd never wrote the health table"
    assert dnsd.stop() == 0, dnsd.output()
    print("crash: %d rounds in %.1f s (kill window %.1f ms): flip %d acked / %d killed / %d failed, "
          "add %d acked / %d killed / %d failed; dnsd killed %d times, restarted %d; "
          "%d reports accepted, %d refused or cut; corrupt %d, lost %d, wrong answers %d; "
          "%d health rows" % (rounds, elapsed, span * 1e3, stats["flip_acked"], stats["flip_killed"],
                              stats["flip_failed"], stats["add_acked"], stats["add_killed"],
                              stats["add_failed"], stats["dnsd_kills"], stats["restarts"], rep.ok,
                              rep.failed, stats["corrupt"], stats["lost"], stats["wrong_answer"],
                              health))
    # The kills must really land both before and after commits.
    assert stats["flip_killed"] > 0 and stats["flip_acked"] > 0, stats
    assert stats["add_killed"] > 0 and stats["add_acked"] > 0, stats
    assert rep.ok > 0, "no report was accepted"


if __name__ == "__main__":
    run()
