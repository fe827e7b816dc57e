#!/usr/bin/python3
"""gslbctl explain against bin/dnsd itself: explain promises the answer dnsd
gives, computed by the same policy code from the health dnsd stored.

test_explain_agrees_latency: latency services whose RTTs come from agents in
three probe regions (eu, us, ap), posted to dnsd's API as agents would.
Region "eu" has two agents far apart; the one that reported last gives the
region its coordinates (health/PROTOCOL.md), which dnsd persists and explain
reads back, and that decides which region is nearest to a client in Sao
Paulo. For clients all over the test GeoIP
table (ECS /24), `gslbctl explain --json` must name exactly the answer dnsd
gives, for a service answering one record and for one answering two with an
endpoint reported down."""
import json
import os
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import dns.rcode  # noqa: E402

from gslbtest import (ZONES, Dnsd, answer_texts, ecs_query, free_port,  # noqa: E402
                      gslbctl, make_mmdb, run, test, tmpdir, wait_for)

TOKEN = "explain-token"
ONE = "lat.gslb.example.com."
TWO = "lat2.gslb.example.com."
X, Y, Z = "192.0.2.10", "198.51.100.10", "203.0.113.10"
# (agent, region, lat, lon) in the order they report: eu-b (Sao Paulo)
# first, eu-a (Frankfurt) last, so "eu" is at Frankfurt for dnsd.
AGENTS = [("eu-b", "eu", -23.55, -46.63), ("us-a", "us", 39.04, -77.49),
          ("ap-a", "ap", 35.69, 139.69), ("eu-a", "eu", 50.11, 8.68)]
# RTT in ms per region and target: each region has its own fastest one.
RTT = {"eu": {X: 5, Y: 40, Z: 90}, "us": {X: 50, Y: 4, Z: 70},
       "ap": {X: 80, Y: 60, Z: 3}}
# One client per location of tests/fixtures/geo/networks.tsv (loopback).
CLIENTS = ["127.0.%d.0" % i for i in range(1, 11)]


def post(api, doc):
    req = urllib.request.Request(api + "/v1/reports", data=json.dumps(doc).encode(),
                                 headers={"Authorization": "Bearer " + TOKEN,
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 200, r.status


def checks(api):
    req = urllib.request.Request(api + "/v1/checks",
                                 headers={"Authorization": "Bearer " + TOKEN})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.load(r)["checks"]


@test
def test_explain_agrees_latency():
    mmdb = make_mmdb()
    db = os.path.join(tmpdir(), "gslb.db")
    tok = os.path.join(tmpdir(), "token")
    with open(tok, "w") as f:
        f.write(TOKEN + "\n")
    gslbctl(db, "init")
    gslbctl(db, "service", "add", ONE, "--policy", "latency", "--ttl", "5")
    gslbctl(db, "service", "add", TWO, "--policy", "latency", "--ttl", "5", "--answers", "2")
    for svc in (ONE, TWO):
        for target, lat, lon in ((X, "50.11", "8.68"), (Y, "39.04", "-77.49"),
                                 (Z, "35.69", "139.69")):
            # Checks are run by the agents this test stands in for: the URL
            # is never fetched. A long interval keeps the reports fresh.
            gslbctl(db, "endpoint", "add", svc, target, "--lat", lat, "--lon", lon,
                    "--check", "tcp://127.0.0.1:9", "--check-interval", "300")
    api_port = free_port()
    api = "http://127.0.0.1:%d" % api_port
    d = Dnsd(["--zone", os.path.join(ZONES, "gslb.example.com.zone"), "--db", db,
              "--geoip", mmdb, "--api", "127.0.0.1:%d" % api_port,
              "--api-token-file", tok, "--threads", "2"])
    ids = {(c["service"], c["target"]): c["id"] for c in checks(api)}
    assert len(ids) == 6, ids

    now = time.time()
    for n, (agent, region, lat, lon) in enumerate(AGENTS):
        results = []
        for (svc, target), eid in sorted(ids.items()):
            down = svc == TWO and target == Y
            results.append({"id": eid, "state": "down" if down else "up", "ok": not down,
                            "rtt_ms": None if down else RTT[region][target],
                            "ts": now + n, "detail": "test"})
        post(api, {"agent": agent, "region": region, "lat": lat, "lon": lon,
                   "results": results})
        time.sleep(0.05)

    def stored():
        """Every region's RTTs and Y's state are in the store (dnsd saves
        within about a second of a change)."""
        st = json.loads(gslbctl(db, "status", "--json").stdout)
        for s in st["services"]:
            for e in s["endpoints"]:
                if {x["region"] for x in e["latency"]} != set(RTT) and e["health"] == "up":
                    return False
                if s["name"] == TWO and e["target"] == Y and e["health"] != "down":
                    return False
        return True

    assert wait_for(stored, timeout=10), gslbctl(db, "status").stdout

    def ask(svc, client):
        r = d.udp(None, query=ecs_query(svc, "A", client, 24))
        assert r.rcode() == dns.rcode.NOERROR, r
        return answer_texts(r)

    def explain(svc, client):
        return json.loads(gslbctl(db, "explain", svc, "--client", client + "/24",
                                  "--geoip", mmdb, "--json").stdout)

    seen = set()
    for svc in (ONE, TWO):
        for client in CLIENTS:
            # dnsd swaps health in within a second of a report; the answer
            # must then stay what explain computes.
            ex = explain(svc, client)
            got = wait_for(lambda: ask(svc, client) == ex["answer"], timeout=3)
            assert got, "%s for %s: dnsd answers %s, explain says %s (%s)" % (
                svc, client, ask(svc, client), ex["answer"],
                [(e["target"], e["reason"]) for e in ex["endpoints"]])
            seen.add((svc, tuple(ex["answer"])))
    # The clients exercise every region: each service answered three ways.
    assert {a for s, a in seen if s == ONE} == {(X,), (Y,), (Z,)}, seen
    assert all(Y not in a for s, a in seen if s == TWO), seen
    # Sao Paulo: "eu" sits at Frankfurt (its last agent), so the nearest
    # region is "us", whose fastest endpoint is Y.
    assert ask(ONE, "127.0.5.0") == [Y], ask(ONE, "127.0.5.0")
    assert explain(ONE, "127.0.5.0")["answer"] == [Y]


if __name__ == "__main__":
    run()
