#!/usr/bin/python3
"""When dnsd writes health to its store: a change of an agent's state or of
an endpoint's quorum state is saved at once; a report that only brings a
new RTT (or a new time) is saved with the next periodic save, at most 10 s
after the last one (dnsd/hsrv.c SAVE_EVERY_S), so a steady stream of
reports costs one write transaction per 10 s, not one per report. Reports
are posted to the real API; the store is read with sqlite3 beside dnsd."""
import json
import os
import sqlite3
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from gslbtest import (TIME_FACTOR, ZONES, Dnsd, free_port, gslbctl, run,  # noqa: E402
                      test, tmpdir, wait_for)

TOKEN = "health-save-token"
SVC = "hs.gslb.example.com."
SAVE_EVERY_S = 10.0


class Node:
    def __init__(self):
        d = tmpdir()
        self.db = os.path.join(d, "gslb.db")
        tok = os.path.join(d, "token")
        with open(tok, "w") as f:
            f.write(TOKEN + "\n")
        gslbctl(self.db, "init")
        gslbctl(self.db, "service", "add", SVC, "--policy", "failover")
        # The check is never run (no agent): reports are posted by the test.
        gslbctl(self.db, "endpoint", "add", SVC, "192.0.2.1", "--priority", "1",
                "--check", "tcp://127.0.0.1:9")
        gslbctl(self.db, "endpoint", "add", SVC, "192.0.2.2", "--priority", "2")
        port = free_port()
        self.api = "http://127.0.0.1:%d" % port
        self.dnsd = Dnsd(["--zone", os.path.join(ZONES, "gslb.example.com.zone"),
                          "--db", self.db, "--api", "127.0.0.1:%d" % port,
                          "--api-token-file", tok])
        checks = self.call("GET", "/v1/checks")["checks"]
        assert len(checks) == 1, checks
        self.id = checks[0]["id"]

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.api + path, data=data, method=method,
                                     headers={"Authorization": "Bearer " + TOKEN,
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5 * TIME_FACTOR) as r:
            return json.loads(r.read())

    def report(self, state, ok, rtt):
        r = self.call("POST", "/v1/reports", {
            "agent": "a1", "region": "eu",
            "results": [{"id": self.id, "state": state, "ok": ok, "rtt_ms": rtt,
                         "ts": time.time(), "detail": ""}]})
        assert r.get("accepted") == 1, r

    def row(self):
        """(state, rtt_ms) of agent a1's row for the endpoint, or None."""
        c = sqlite3.connect("file:%s?mode=ro" % self.db, uri=True, timeout=5)
        try:
            return c.execute("SELECT h.state, h.rtt_ms FROM health h JOIN probes p"
                             " ON p.id = h.probe_id WHERE p.name = 'a1'"
                             " AND h.endpoint_id = ?", (self.id,)).fetchone()
        finally:
            c.close()


@test
def test_rtt_deferred_state_at_once():
    n = Node()
    # A new agent's first result: its state changes (none -> up): at once.
    n.report("up", True, 10.0)
    assert wait_for(lambda: n.row() == ("up", 10.0), 3 * TIME_FACTOR), n.row()
    saved = time.monotonic()

    # Only the RTT changes: not written now, written by the periodic save.
    n.report("up", True, 20.0)
    posted = time.monotonic()
    time.sleep(1.5)
    if time.monotonic() - saved < SAVE_EVERY_S - 2:
        assert n.row() == ("up", 10.0), ("an RTT-only report was saved at once", n.row())
    assert wait_for(lambda: n.row() == ("up", 20.0), SAVE_EVERY_S + 5 * TIME_FACTOR), n.row()
    deferred = time.monotonic() - posted
    assert deferred <= SAVE_EVERY_S + 5 * TIME_FACTOR, deferred

    # The agent's state changes (up -> down): at once again, however
    # recently the last save was.
    n.report("down", False, None)
    t0 = time.monotonic()
    assert wait_for(lambda: n.row() == ("down", None), 3 * TIME_FACTOR), n.row()
    assert time.monotonic() - t0 < SAVE_EVERY_S - 2, "a state change waited for the periodic save"


if __name__ == "__main__":
    run()
