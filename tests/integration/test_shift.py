#!/usr/bin/python3
"""Staged traffic shifts, end to end with the real binaries: a population of
2,000 client subnets (ECS) watches a 5-step shift (each stage's share within
statistical tolerance, no client ever moves back, TTL never past the next
step, ECS scope /24); a rollback when the target's backend is killed
mid-shift (real gslb-probe, loopback HTTP backends), which stays stopped; a
dnsd restart mid-shift continues it (never back to stage 1, never a jump);
gslbctl shift --pause/--resume/--abort, errors, POST /v1/shift, /v1/status,
/metrics and explain."""
import json
import math
import os
import re
import socket
import sqlite3
import struct
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "tools"))

import dns.edns  # noqa: E402
import dns.message  # noqa: E402
import dns.name  # noqa: E402

from gslbtest import (TIME_FACTOR, BIN, ZONES, Dnsd, Proc, free_port, gslbctl, run,  # noqa: E402
                      test, tmpdir, wait_for)
from agent_backend import AgentBackend  # noqa: E402

TOKEN = "shift-test-token"
SH = "sh.gslb.example.com."
OLD, NEW = "192.0.2.1", "192.0.2.2"
N_CLIENTS = 2000
SUBNETS = ["10.%d.%d.0" % (i // 250, i % 250) for i in range(N_CLIENTS)]
_WIRES = {}


def query_wire(i, subnet):
    """The ECS /24 query of client subnet (id i), built once."""
    w = _WIRES.get((i, subnet))
    if w is None:
        q = dns.message.make_query(SH, "A", use_edns=0,
                                   options=[dns.edns.ECSOption(subnet, 24)])
        q.id = i
        w = _WIRES[(i, subnet)] = q.to_wire()
    return w


class Setup:
    def __init__(self, checks=None, ttl=30):
        d = tmpdir()
        self.db = os.path.join(d, "gslb.db")
        self.token_file = os.path.join(d, "token")
        with open(self.token_file, "w") as f:
            f.write(TOKEN + "\n")
        gslbctl(self.db, "init")
        gslbctl(self.db, "service", "add", SH, "--policy", "failover", "--ttl", ttl)
        for i, t in enumerate((OLD, NEW)):
            extra = []
            if checks:
                extra = ["--check", checks[i], "--check-interval", 1,
                         "--check-fall", 2, "--check-rise", 2]
            gslbctl(self.db, "endpoint", "add", SH, t, "--priority", 1 + i, *extra)
        self.dnsd = None
        self.start_dnsd()

    def start_dnsd(self, port=None):
        self.api_port = free_port()
        self.api = "http://127.0.0.1:%d" % self.api_port
        self.dnsd = Dnsd(["--zone", os.path.join(ZONES, "gslb.example.com.zone"),
                          "--db", self.db, "--api", "127.0.0.1:%d" % self.api_port,
                          "--api-token-file", self.token_file, "--check-interval", "1",
                          "--threads", "2"], port=port)

    def api_shift(self):
        """The service's shift as dnsd's /v1/status reports it (fast)."""
        return json.loads(self.get("/v1/status")).get("shifts", {}).get(SH)

    def shift(self):
        """The service's shift as gslbctl status --json reports it."""
        doc = json.loads(gslbctl(self.db, "status", SH, "--json").stdout)
        return doc["services"][0].get("shift")

    def get(self, path):
        with urllib.request.urlopen(self.api + path, timeout=2) as r:
            return r.read().decode()

    def post(self, path, body, token=TOKEN):
        req = urllib.request.Request(self.api + path, data=json.dumps(body).encode(),
                                     method="POST",
                                     headers={"Authorization": "Bearer " + token,
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, json.loads(r.read().decode())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read().decode() or "{}")

    def population(self, subnets=SUBNETS):
        """Asks for SH once per client subnet (ECS /24), in batches on one
        socket; returns {subnet: (address, ttl, scope)}."""
        out = {}
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(0.5)
        try:
            for attempt in range(4):
                todo = [i for i, n in enumerate(subnets) if n not in out]
                if not todo:
                    break
                for k in range(0, len(todo), 250):
                    batch = todo[k:k + 250]
                    for i in batch:
                        s.sendto(query_wire(i, subnets[i]), (self.dnsd.host, self.dnsd.port))
                    got = 0
                    while got < len(batch):
                        try:
                            wire = s.recv(4096)
                        except socket.timeout:
                            break
                        r = parse_answer(wire)
                        if r is None or r[0] >= len(subnets):
                            continue
                        out[subnets[r[0]]] = r[1:]
                        got += 1
        finally:
            s.close()
        assert len(out) == len(subnets), "only %d of %d clients answered" % (
            len(out), len(subnets))
        return out


def parse_answer(wire):
    """(id, address, ttl, ECS scope) of an answer to query_wire(), read
    straight from the octets (dnspython's parser is too slow to sample
    2,000 clients inside a 2 s stage): header, the question as sent, one A
    record with a compressed owner, then the OPT record whose last option
    is ECS (family 1, /24: 3 address octets)."""
    qid, flags, qd, an = struct.unpack("!HHHH", wire[:8])
    if flags & 0xF or qd != 1 or an != 1:
        return None
    qlen = len(dns.name.from_text(SH).to_wire()) + 4
    rr = 12 + qlen
    rtype, _, ttl, rdlen = struct.unpack("!HHIH", wire[rr + 2:rr + 12])
    if rtype != 1 or rdlen != 4:
        return None
    addr = socket.inet_ntoa(wire[rr + 12:rr + 16])
    scope = wire[-4] if wire[-11:-9] == b"\x00\x08" else None
    return qid, addr, ttl, scope


def tolerance(p, n=N_CLIENTS):
    """Five standard deviations of a binomial share (plus rounding)."""
    return 5 * math.sqrt(max(p * (1 - p), 0.0025) / n) + 0.002


@test
def test_shift_population():
    """5 steps of 2 s: the share on the target follows the steps, a moved
    client never moves back, TTLs never pass the next step, and after the
    last step the target is preferred as after a flip."""
    st = Setup()
    for i, n in enumerate(SUBNETS):
        query_wire(i, n)
    steps = [5, 20, 50, 80, 100]
    t0 = time.time()
    gslbctl(st.db, "shift", SH, NEW, "--steps", ",".join(map(str, steps)), "--every", 2)
    t1 = time.time()
    sh = st.shift()
    assert sh["state"] == "running" and sh["stage"] == 1 and sh["percent"] == 5, sh
    # Stage 1 began when the command committed; stage 2 comes --every later.
    assert t0 - 0.01 <= sh["started"] <= t1 + 0.01, (t0, sh, t1)
    assert abs(sh["next_step"] - sh["started"] - 2) < 1e-6, sh
    # dnsd picks the commit up at its next store poll (250 ms).
    assert wait_for(lambda: st.population(SUBNETS[:1])[SUBNETS[0]][2] == 24, timeout=2)
    moved = set()
    seen = {}
    log = []
    m0 = time.monotonic()
    deadline = time.monotonic() + 25
    while time.monotonic() < deadline:
        before = st.api_shift()
        t_q = time.time()
        pop = st.population()
        after = st.api_shift()
        log.append((round(time.monotonic() - m0, 2), before["stage"], after["stage"]))
        if before["stage"] != after["stage"] or before["state"] != after["state"]:
            continue            # a step happened during the sample
        frac = sum(1 for a, _, _ in pop.values() if a == NEW) / N_CLIENTS
        seen.setdefault(after["stage"], []).append(frac)
        for n, (a, ttl, scope) in pop.items():
            if after["state"] == "running":
                assert scope == 24, "ECS scope %s for %s" % (scope, n)
                left = after["next_step"] - t_q
                assert ttl <= max(0, left) + 1, "TTL %d but next step in %.2f s" % (ttl, left)
            if n in moved:
                assert a == NEW, "client %s moved back to %s at stage %d" % (
                    n, a, after["stage"])
            if a == NEW:
                moved.add(n)
        if after["state"] == "done":
            assert frac == 1.0 and after["percent"] == 100, (frac, after)
            assert all(ttl == 30 for _, ttl, _ in pop.values()), "TTL after done"
            break
    assert after["state"] == "done", (after, seen)
    for k, p in enumerate(steps[:-1], start=1):
        assert k in seen, "stage %d never sampled: %s (samples: %s)" % (k, sorted(seen), log)
        for f in seen[k]:
            assert abs(f - p / 100) <= tolerance(p / 100), (
                "stage %d: %.3f of clients on the target, expected %d%%" % (k, f, p))
    # Done = flipped: the target has the best priority now.
    show = json.loads(gslbctl(st.db, "service", "show", SH, "--json").stdout)
    prio = {e["target"]: e["priority"] for e in show["endpoints"]}
    assert prio[NEW] < prio[OLD], prio
    assert st.shift() == st.api_shift() or st.shift()["state"] == "done"
    print("  shares per stage: %s" % {k: ["%.3f" % f for f in v] for k, v in sorted(seen.items())})


@test
def test_shift_rollback_on_target_down():
    """The target's backend dies at stage 2: the shift rolls back to 0%
    within the health checks' failover time, logs it, counts it, and stays
    stopped after the backend is back."""
    backends = [AgentBackend(free_port()).start() for _ in range(2)]
    try:
        st = Setup(checks=[b.url for b in backends])
        agent = Proc([os.path.join(BIN, "gslb-probe"), "--name", "probe-a", "--region", "eu",
                      "--server", st.api, "--token-file", st.token_file, "--interval", "1"])
        for b in backends:
            b.register("probe-a", agent.pid)
        assert wait_for(lambda: '"state": "up"' in json.dumps(
            json.loads(gslbctl(st.db, "status", SH, "--json").stdout)), timeout=10)
        # Both up by quorum as dnsd sees them (persisted by dnsd).
        def both_up():
            eps = json.loads(gslbctl(st.db, "status", SH, "--json").stdout)["services"][0]["endpoints"]
            return all(e["health"] == "up" for e in eps)
        assert wait_for(both_up, timeout=10), gslbctl(st.db, "status", SH).stdout
        gslbctl(st.db, "shift", SH, NEW, "--steps", "10,30,60,100", "--every", 3)
        assert wait_for(lambda: st.shift()["stage"] == 2, timeout=6), st.shift()
        pop = st.population(SUBNETS[:500])
        frac = sum(1 for a, _, _ in pop.values() if a == NEW) / 500
        assert abs(frac - 0.30) <= tolerance(0.30, 500), frac
        backends[1].stop()
        t_kill = time.monotonic()
        assert wait_for(lambda: st.shift()["state"] == "rolled-back", timeout=8), st.shift()
        took = time.monotonic() - t_kill
        sh = st.shift()
        assert sh["percent"] == 0 and sh["stage"] == 2 and "down" in sh["reason"], sh
        # fall 2 x interval 1 s, plus a report period and the tick.
        assert took <= 5.5, "rollback took %.1f s" % took
        pop = st.population(SUBNETS[:500])
        assert all(a == OLD for a, _, _ in pop.values()), "clients left on the dead target"
        m = re.search(r"^dnsd_shift_rollbacks_total (\d+)$", st.get("/metrics"), re.M)
        assert m and int(m.group(1)) == 1, st.get("/metrics")
        assert "rolled back to 0%" in st.dnsd.output(), st.dnsd.output()
        status = json.loads(st.get("/v1/status"))
        assert status["shifts"][SH]["state"] == "rolled-back", status.get("shifts")
        # An audit record by dnsd, with the stage it left and why.
        con = sqlite3.connect(st.db, timeout=5)
        rows = con.execute("SELECT who, source, service, target, old, new FROM audit "
                           "WHERE field = 'shift' ORDER BY id").fetchall()
        con.close()
        last = rows[-1]
        assert last[:4] == ("dnsd", "dnsd", SH, NEW) and "stage 2 of 4 (30%)" in last[4] \
            and "rolled back to 0%" in last[5] and "down" in last[5], rows
        assert any("started to %s" % NEW in r[5] for r in rows), rows
        # The backend comes back: the shift stays stopped.
        backends[1] = AgentBackend(int(backends[1].url.rsplit(":", 1)[1].split("/")[0])).start()
        backends[1].register("probe-a", agent.pid)
        time.sleep(4)
        sh2 = st.shift()
        assert sh2["state"] == "rolled-back" and sh2["percent"] == 0, sh2
        agent.stop()
    finally:
        for b in backends:
            try:
                b.stop()
            except Exception:
                pass


@test
def test_shift_restart_continues():
    """dnsd stops at stage 2 and stays down for more than two periods: the
    new dnsd continues at stage 2 or 3 (never 1, never a jump), and the
    stages after it come one period apart."""
    st = Setup()
    gslbctl(st.db, "shift", SH, NEW, "--steps", "10,30,50,70,100", "--every", 3)
    assert wait_for(lambda: st.shift()["stage"] == 2, timeout=5), st.shift()
    port = st.dnsd.port
    st.dnsd.stop()
    time.sleep(7)
    sh = st.shift()
    assert sh["stage"] == 2 and sh["state"] == "running", "moved without dnsd: %s" % sh
    st.start_dnsd(port=port)
    stages, next_steps = [], {}
    t0 = time.monotonic()
    while time.monotonic() - t0 < 20:
        s = st.shift()
        if s.get("next_step") is not None:
            next_steps[s["stage"]] = s["next_step"]
        if not stages or stages[-1][0] != s["stage"]:
            stages.append((s["stage"], time.monotonic() - t0, s["state"]))
        if s["state"] == "done":
            break
        time.sleep(0.1)
    seq = [s for s, _, _ in stages]
    assert seq[0] in (2, 3), stages
    assert seq == list(range(seq[0], 6)), "stages not one by one: %s" % stages
    assert stages[-1][2] == "done", stages
    # After the catch-up step, the next ones come one period apart: as
    # scheduled (each stage's next step one period after the one before)
    # and as seen from here (a gslbctl call per observation, slower on a
    # loaded machine, so the upper bound has room for it).
    ks = sorted(k for k in next_steps if k >= 3)  # begun by the new dnsd
    sched = [next_steps[b] - next_steps[a] for a, b in zip(ks, ks[1:])]
    assert sched and all(abs(g - 3) < 0.5 for g in sched), "scheduled gaps %s %s %s" % (sched, next_steps, stages)
    gaps = [b[1] - a[1] for a, b in zip(stages[1:], stages[2:])]
    assert all(2.3 <= g <= 3.0 + 1.5 * TIME_FACTOR for g in gaps), "gaps %s" % gaps
    pop = st.population(SUBNETS[:300])
    assert all(a == NEW for a, _, _ in pop.values())


@test
def test_shift_controls_and_api():
    """pause keeps the stage, resume continues, abort returns to before
    (also after done); bad input is refused naming what; POST /v1/shift;
    explain tells where a client goes."""
    st = Setup(ttl=60)
    bad = [
        (["shift", SH, NEW, "--steps", "10,5,100", "--every", 2], "does not grow"),
        (["shift", SH, NEW, "--steps", "10,50", "--every", 2], "must be 100"),
        (["shift", SH, NEW, "--steps", "0,100", "--every", 2], "outside 1..100"),
        (["shift", SH, NEW, "--steps", "10,100", "--every", 0], "--every"),
        (["shift", SH, "192.0.2.77", "--steps", "10,100", "--every", 2], "not an endpoint"),
        (["shift", "nope.gslb.example.com", NEW, "--steps", "10,100", "--every", 2], "not found"),
        (["shift", SH, "--abort"], "has no shift"),
        (["shift", SH, "--abort", "--pause"], "exclude"),
    ]
    for args, msg in bad:
        p = gslbctl(st.db, *args, check=False)
        assert p.returncode != 0 and msg in p.stderr, (args, p.returncode, p.stderr)
    gslbctl(st.db, "service", "add", "geo.gslb.example.com", "--policy", "geo")
    p = gslbctl(st.db, "shift", "geo.gslb.example.com", NEW, "--steps", "100", "--every", 1,
                check=False)
    assert p.returncode != 0 and "failover and weighted" in p.stderr, p.stderr
    assert st.shift() is None, "shift key for a service that never had one"
    # Through the API.
    code, body = st.post("/v1/shift", {"service": SH, "target": NEW,
                                       "steps": [50, 100], "every": 2})
    assert code == 200, (code, body)
    code, body = st.post("/v1/shift", {"service": SH, "target": NEW,
                                       "steps": "50,100", "every": 2})
    assert code == 409 and "abort it first" in body.get("error", json.dumps(body)), (code, body)
    code, _ = st.post("/v1/shift", {"service": SH, "target": NEW, "steps": "50,100",
                                    "every": 2}, token="wrong")
    assert code == 401, code
    code, body = st.post("/v1/shift", {"service": SH, "action": "pause"})
    assert code == 200, body
    sh = st.shift()
    assert sh["paused"] and sh["state"] == "running" and sh["next_step"] is None, sh
    time.sleep(2.5)
    assert st.shift()["stage"] == 1, "a paused shift moved"
    # Paused at 50%: answers split, TTL back to the service's (no step due).
    pop = st.population(SUBNETS[:400])
    frac = sum(1 for a, _, _ in pop.values() if a == NEW) / 400
    assert abs(frac - 0.5) <= tolerance(0.5, 400), frac
    assert all(t == 60 for _, t, _ in pop.values())
    # explain agrees with the answer for a moved and a staying client.
    for n in SUBNETS[:40]:
        out = gslbctl(st.db, "explain", SH, "--client", n + "/24").stdout
        assert "in shift stage 1 of 2 (50%)" in out, out
        want = "moves to the shift target" if pop[n][0] == NEW else "stays on the old target"
        assert want in out, (n, pop[n], out)
    gslbctl(st.db, "shift", SH, "--resume")
    assert wait_for(lambda: st.shift()["state"] == "done", timeout=5), st.shift()
    assert wait_for(lambda: all(a == NEW for a, _, _ in st.population(SUBNETS[:100]).values()),
                    timeout=3)
    # Abort after done: the priorities from before the shift come back.
    p = gslbctl(st.db, "shift", SH, "--abort")
    assert "aborted" in p.stdout, p.stdout
    show = json.loads(gslbctl(st.db, "service", "show", SH, "--json").stdout)
    prio = {e["target"]: e["priority"] for e in show["endpoints"]}
    assert prio == {OLD: 1, NEW: 2}, prio
    assert wait_for(lambda: all(a == OLD for a, _, _ in st.population(SUBNETS[:100]).values()),
                    timeout=3)
    sh = st.shift()
    assert sh["state"] == "aborted" and sh["percent"] == 0, sh
    # Abort while running: back to 0% at once.
    gslbctl(st.db, "shift", SH, NEW, "--steps", "60,100", "--every", 30)
    assert wait_for(lambda: sum(1 for a, _, _ in st.population(SUBNETS[:200]).values()
                                if a == NEW) > 60, timeout=3)
    gslbctl(st.db, "shift", SH, "--abort")
    assert wait_for(lambda: all(a == OLD for a, _, _ in st.population(SUBNETS[:200]).values()),
                    timeout=3)
    m = re.search(r'^dnsd_shift_stages_total (\d+)$', st.get("/metrics"), re.M)
    assert m and int(m.group(1)) >= 1, "stages metric"


if __name__ == "__main__":
    run()
