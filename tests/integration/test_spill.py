#!/usr/bin/python3
"""Spill-over by capacity, end to end with the real binaries: a geo service
of three regions with capacities 1:1:2, 2,000 client subnets (ECS /24) that
a test GeoIP table puts next to the first region; its backend is killed
(real gslb-probe, loopback HTTP backend) and its clients spread over the two
others about 1:2 (equidistant from them), each client keeping its choice;
explain and /v1/status say so. Then capacities in answers per second: real
query load past a region's fill makes it keep only part of its clients and
spill the rest, and it takes them all back when the load stops. gslbctl
validation, export/import of capacity and fill."""
import json
import math
import os
import socket
import struct
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "tools"))

import dns.edns  # noqa: E402
import dns.message  # noqa: E402
import dns.name  # noqa: E402

from gslbtest import (BIN, TIME_FACTOR, ZONES, Dnsd, Proc, free_port,  # noqa: E402
                      gslbctl, make_mmdb, run, test, tmpdir, wait_for)
from agent_backend import AgentBackend  # noqa: E402

TOKEN = "spill-test-token"
SP = "spill.gslb.example.com."
# Frankfurt, and two regions at the same distance from it (same latitude,
# 20 degrees of longitude either side).
EU, WEST, EAST = "192.0.2.1", "192.0.2.2", "192.0.2.3"
N_CLIENTS = 2000
SUBNETS = ["10.%d.%d.0" % (i // 250, i % 250) for i in range(N_CLIENTS)]
GEO_TSV = ("# every 10/8 client in Frankfurt\n"
           "10.0.0.0/8\t50.1109\t8.6821\tDE\tEU\tFrankfurt\n")


def tolerance(p, n):
    """Five standard deviations of a binomial share (plus rounding)."""
    return 5 * math.sqrt(max(p * (1 - p), 0.0025) / n) + 0.002


def query_wire(i, subnet):
    q = dns.message.make_query(SP, "A", use_edns=0,
                               options=[dns.edns.ECSOption(subnet, 24)])
    q.id = i
    return q.to_wire()


def parse_answer(wire):
    """(id, address, ECS scope) of an answer to query_wire(), read from the
    octets (header, the question, one A record, OPT with ECS last)."""
    qid, flags, qd, an = struct.unpack("!HHHH", wire[:8])
    if flags & 0xF or qd != 1 or an != 1:
        return None
    rr = 12 + len(dns.name.from_text(SP).to_wire()) + 4
    rtype, _, _, rdlen = struct.unpack("!HHIH", wire[rr + 2:rr + 12])
    if rtype != 1 or rdlen != 4:
        return None
    scope = wire[-4] if wire[-11:-9] == b"\x00\x08" else None
    return qid, socket.inet_ntoa(wire[rr + 12:rr + 16]), scope


class Setup:
    def __init__(self, fill=None, caps=(1, 1, 2), check=None):
        d = tmpdir()
        self.db = os.path.join(d, "gslb.db")
        self.token_file = os.path.join(d, "token")
        with open(self.token_file, "w") as f:
            f.write(TOKEN + "\n")
        tsv = os.path.join(d, "geo.tsv")
        with open(tsv, "w") as f:
            f.write(GEO_TSV)
        self.mmdb = make_mmdb(tsv, os.path.join(d, "geo.mmdb"))
        gslbctl(self.db, "init")
        args = ["--fill", fill] if fill else []
        gslbctl(self.db, "service", "add", SP, "--policy", "geo", "--ttl", 5, *args)
        where = {EU: ("eu", 50.1109, 8.6821), WEST: ("west", 50.1109, -11.3179),
                 EAST: ("east", 50.1109, 28.6821)}
        for t, cap in zip((EU, WEST, EAST), caps):
            region, lat, lon = where[t]
            extra = []
            if t == EU and check:
                extra = ["--check", check, "--check-interval", 1,
                         "--check-fall", 2, "--check-rise", 2]
            gslbctl(self.db, "endpoint", "add", SP, t, "--region", region,
                    "--lat", lat, "--lon", lon, "--capacity", cap, *extra)
        self.api_port = free_port()
        self.api = "http://127.0.0.1:%d" % self.api_port
        self.dnsd = Dnsd(["--zone", os.path.join(ZONES, "gslb.example.com.zone"),
                          "--db", self.db, "--geoip", self.mmdb,
                          "--api", "127.0.0.1:%d" % self.api_port,
                          "--api-token-file", self.token_file, "--check-interval", "1",
                          "--threads", "2", "--db-poll-ms", "100"])
        self.wires = [query_wire(i, n) for i, n in enumerate(SUBNETS)]

    def get(self, path):
        with urllib.request.urlopen(self.api + path, timeout=2 * TIME_FACTOR) as r:
            return r.read().decode()

    def spill_status(self):
        doc = json.loads(self.get("/v1/status"))
        return {s["service"]: s for s in doc.get("spill", [])}.get(SP)

    def eu(self):
        """eu's entry in /v1/status spill."""
        return next(e for e in self.spill_status()["endpoints"] if e["target"] == EU)

    def population(self, n=N_CLIENTS):
        """Asks once per client subnet, in batches on one socket; returns
        {subnet: (address, scope)}."""
        out = {}
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(0.5 * TIME_FACTOR)
        try:
            for _ in range(4):
                todo = [i for i in range(n) if SUBNETS[i] not in out]
                if not todo:
                    break
                for k in range(0, len(todo), 200):
                    batch = todo[k:k + 200]
                    for i in batch:
                        s.sendto(self.wires[i], (self.dnsd.host, self.dnsd.port))
                    got = 0
                    while got < len(batch):
                        try:
                            r = parse_answer(s.recv(4096))
                        except socket.timeout:
                            break
                        if r is None or r[0] >= n:
                            continue
                        out[SUBNETS[r[0]]] = r[1:]
                        got += 1
        finally:
            s.close()
        assert len(out) == n, "only %d of %d clients answered" % (len(out), n)
        return out


def shares(pop):
    n = len(pop)
    return {t: sum(1 for a, _ in pop.values() if a == t) / n for t in (EU, WEST, EAST)}


@test
def test_spill_when_nearest_down():
    """The nearest region's backend dies: its clients spread over the two
    others in proportion to their capacities (1:2), deterministically."""
    backend = AgentBackend(free_port()).start()
    try:
        st = Setup(check=backend.url)
        agent = Proc([os.path.join(BIN, "gslb-probe"), "--name", "probe-a", "--region", "eu",
                      "--server", st.api, "--token-file", st.token_file, "--interval", "1"])
        backend.register("probe-a", agent.pid)
        pop = st.population()
        assert all(a == EU for a, _ in pop.values()), shares(pop)
        # Not spilling: the answer holds for the whole GeoIP network (/8).
        assert all(sc == 8 for _, sc in pop.values()), set(sc for _, sc in pop.values())
        backend.stop()
        assert wait_for(lambda: st.population(50) and all(
            a != EU for a, _ in st.population(50).values()), timeout=10), "EU still answered"
        pop = st.population()
        sh = shares(pop)
        print("  shares after eu went down: west %.3f east %.3f" % (sh[WEST], sh[EAST]))
        assert sh[EU] == 0, sh
        assert abs(sh[EAST] - 2 / 3) <= tolerance(2 / 3, N_CLIENTS), sh
        assert abs(sh[WEST] - 1 / 3) <= tolerance(1 / 3, N_CLIENTS), sh
        # The choice hashes the client subnet: the same again, scope /24.
        again = st.population()
        changed = [n for n in SUBNETS if again[n][0] != pop[n][0]]
        assert not changed, "%d clients changed region, e.g. %s" % (len(changed), changed[:3])
        assert all(sc == 24 for _, sc in again.values())
        # Status: expected shares from the capacities, actual from answers.
        s = wait_for(lambda: (lambda x: x and sum(e["rate"] for e in x["endpoints"]) > 0 and x)(
            st.spill_status()), timeout=5)
        assert s, st.get("/v1/status")
        eps = {e["target"]: e for e in s["endpoints"]}
        assert eps[EU]["health"] == "down" and eps[EU]["expected"] == 0, eps
        assert abs(eps[EAST]["expected"] - 2 / 3) < 1e-9, eps
        assert abs(eps[WEST]["expected"] - 1 / 3) < 1e-9, eps
        assert s["fill"] is None and s["window_s"] == 10, s
        # gslbctl status: the same expected shares from the stored health
        def stored():
            doc = json.loads(gslbctl(st.db, "status", SP, "--json").stdout)["services"][0]
            return {e["target"]: e for e in doc["endpoints"]}
        assert wait_for(lambda: stored()[EU]["health"] == "down", timeout=5)
        got = stored()
        assert got[EU]["expected"] == 0 and abs(got[EAST]["expected"] - 2 / 3) < 1e-9, got
        assert got[WEST]["capacity"] == 1 and got[EAST]["capacity"] == 2, got
        # explain, from the health dnsd stored.
        assert wait_for(lambda: "spilled from eu (down)" in gslbctl(
            st.db, "explain", SP, "--client", "10.0.1.0/24", "--geoip", st.mmdb,
            "--ecs-max-v4", 32).stdout, timeout=5)
        out = gslbctl(st.db, "explain", SP, "--client", "10.0.1.0/24", "--geoip",
                      st.mmdb, "--ecs-max-v4", 32, "--json").stdout
        ex = json.loads(out)
        want = pop["10.0.1.0"][0]
        assert ex["answer"] == [want] or want in json.dumps(ex["answer"]), (ex, want)
        region = "east" if want == EAST else "west"
        assert "to %s (spare 100%%)" % region in json.dumps(ex), ex
        agent.stop()
    finally:
        backend.stop()


@test
def test_spill_when_full_by_query_load():
    """Capacities in answers per second: real load past eu's fill makes it
    keep a share of its clients near its capacity and spill the rest; the
    load gone, it takes them back."""
    st = Setup(fill=0.5, caps=(1e9, 1e9, 1e9))
    # The load is the population asking again and again; measure its rate
    # first, then give eu a capacity that holds about a third of it.
    t0 = time.monotonic()
    n = 0
    while time.monotonic() - t0 < 2:
        pop = st.population()
        n += N_CLIENTS
    rate = n / (time.monotonic() - t0)
    assert all(a == EU for a, _ in pop.values()), shares(pop)
    cap = rate / 3 / 0.5
    gslbctl(st.db, "endpoint", "set", SP, EU, "--capacity", "%.0f" % cap)
    t0 = time.monotonic()
    kept = []
    while time.monotonic() - t0 < 30 * TIME_FACTOR:
        pop = st.population()
        kept.append(shares(pop)[EU])
        if time.monotonic() - t0 > 15 * TIME_FACTOR and len(kept) >= 5:
            break
    s = st.spill_status()
    eu = st.eu()
    target = cap * 0.5
    print("  load ~%.0f q/s, eu capacity %.0f q/s at fill 0.5; eu share per round: %s; "
          "dnsd: eu %.0f q/s of %.0f over the last %d s, kept %.2f" % (
              rate, cap, " ".join("%.2f" % k for k in kept[::10]), eu["rate"],
              sum(e["rate"] for e in s["endpoints"]), s["window_s"], eu["kept"]))
    assert s["fill"] == 0.5, s
    assert eu["kept"] < 1, eu
    assert max(kept[-5:]) < 0.9, kept
    # eu answers about what its fill allows, as dnsd measured it over the
    # last 10 s (the load of this loop changes with the machine's: wide
    # bounds for the controller's wobble and the windows' lag)
    assert 0.3 * target <= eu["rate"] <= 2 * target, (eu, target)
    sh = shares(pop)
    assert sh[WEST] > 0.1 and sh[EAST] > 0.1, sh
    # gslbctl has no load figures: there eu is never full.
    out = gslbctl(st.db, "explain", SP, "--client", "10.0.1.0/24", "--geoip", st.mmdb,
                  "--ecs-max-v4", 32).stdout
    assert "full" not in out, out
    # Load gone: eu takes its clients back within seconds.
    assert wait_for(lambda: st.eu()["kept"] == 1, timeout=10), st.spill_status()
    pop = st.population(200)
    assert all(a == EU for a, _ in pop.values()), shares(pop)


@test
def test_spill_settings_validation_and_export():
    d = tmpdir()
    db = os.path.join(d, "v.db")
    gslbctl(db, "init")
    gslbctl(db, "service", "add", SP, "--policy", "geo", "--fill", "0.8")
    gslbctl(db, "endpoint", "add", SP, EU, "--capacity", "1000")
    for args, words in ((["endpoint", "set", SP, EU, "--capacity", "-1"], "capacity -1 outside"),
                        (["endpoint", "set", SP, EU, "--capacity", "x"], "not a number"),
                        (["service", "set", SP, "--fill", "1.5"], "fill 1.5 outside")):
        p = gslbctl(db, *args, check=False)
        assert p.returncode == 2 and words in p.stderr, (args, p.returncode, p.stderr)
    doc = json.loads(gslbctl(db, "export").stdout)
    v = doc["services"][0]
    assert v["fill"] == 0.8 and v["endpoints"][0]["capacity"] == 1000, v
    # import restores them; a change shows in the plan and the history
    v["fill"] = 0.5
    v["endpoints"][0]["capacity"] = 200
    path = os.path.join(d, "doc.json")
    with open(path, "w") as f:
        json.dump(doc, f)
    out = gslbctl(db, "import", path).stdout
    assert "fill: 0.8 -> 0.5" in out and "capacity: 1000 -> 200" in out, out
    assert "no change" in gslbctl(db, "import", path).stdout
    out = gslbctl(db, "endpoint", "set", SP, EU, "--capacity", "0").stdout
    assert "capacity: 200 -> null" in out, out
    assert "capacity" in gslbctl(db, "history", SP).stdout
    # a bad key is named
    v["endpoints"][0]["capacty"] = 1
    with open(path, "w") as f:
        json.dump(doc, f)
    p = gslbctl(db, "import", path, check=False)
    assert p.returncode != 0 and "did you mean 'capacity'" in p.stderr, p.stderr


@test
def test_shift_and_damping_in_export_import():
    """A running shift and damping thresholds travel in the export document:
    an import into a new store continues the shift where it was; the same
    shift in an older export keeps the store's progress; a document
    without them removes them."""
    d = tmpdir()
    a, b = os.path.join(d, "a.db"), os.path.join(d, "b.db")
    svc = "fo.gslb.example.com."
    gslbctl(a, "init")
    gslbctl(a, "service", "add", svc, "--policy", "failover")
    gslbctl(a, "endpoint", "add", svc, EU, "--priority", 0)
    gslbctl(a, "endpoint", "add", svc, WEST, "--priority", 5)
    gslbctl(a, "shift", svc, WEST, "--steps", "5,50,100", "--every", 600)
    gslbctl(a, "damping", svc, "--half-life", 10, "--suppress", 3000)
    doc = json.loads(gslbctl(a, "export").stdout)
    v = doc["services"][0]
    assert v["shift"]["target"] == WEST and v["shift"]["stage"] == 1, v
    assert v["shift"]["state"] == "running" and v["shift"]["steps"] == [5, 50, 100], v
    assert v["shift"]["paused"] is False, v
    assert v["shift"]["prev"] == [{"target": EU, "priority": 0},
                                  {"target": WEST, "priority": 5}], v
    assert v["damping"]["half_life"] == 10 and v["damping"]["suppress"] == 3000, v
    path = os.path.join(d, "doc.json")
    with open(path, "w") as f:
        json.dump(doc, f)
    gslbctl(b, "import", path)
    st = json.loads(gslbctl(b, "status", svc, "--json").stdout)["services"][0]["shift"]
    assert st["stage"] == 1 and st["percent"] == 5 and st["state"] == "running", st
    assert abs(st["started"] - v["shift"]["started"]) < 1e-6, st
    assert gslbctl(b, "export").stdout == gslbctl(a, "export").stdout
    # the store moved on (as dnsd would): an older export of the same
    # shift does not take it back
    import sqlite3
    with sqlite3.connect(b) as c:
        c.execute("UPDATE shifts SET stage = 2")
    gslbctl(b, "import", path)
    st = json.loads(gslbctl(b, "status", svc, "--json").stdout)["services"][0]["shift"]
    assert st["stage"] == 2, st
    # without them: the shift is gone, damping back to the defaults
    del v["shift"], v["damping"]
    with open(path, "w") as f:
        json.dump(doc, f)
    gslbctl(b, "import", path)
    st = json.loads(gslbctl(b, "status", svc, "--json").stdout)["services"][0]
    assert not st.get("shift"), st
    assert "damping" not in json.loads(gslbctl(b, "export").stdout)["services"][0]
    # a bad shift is named
    doc2 = json.loads(gslbctl(a, "export").stdout)
    doc2["services"][0]["shift"]["target"] = "192.0.2.99"
    with open(path, "w") as f:
        json.dump(doc2, f)
    p = gslbctl(b, "import", path, check=False)
    assert p.returncode == 2 and "target 192.0.2.99 is not an endpoint" in p.stderr, p.stderr


if __name__ == "__main__":
    run()
