#!/usr/bin/python3
"""Health through DNS, end to end: real HTTP backends on loopback, three real
agents (bin/gslb-probe), one bin/dnsd with --db and --api; answers checked
with dnspython. Failover and recovery times (measured against rise/fall x
interval), fail open / --when-down TARGET / closed, a partitioned agent and
kill -9 of an agent (quorum holds, answers do not move), health kept across a
dnsd restart, `gslbctl status --json`, /v1/status and /metrics, and reports
with a wrong token (401, nothing changes)."""
import json
import os
import re
import signal
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "tools"))

import dns.rcode  # noqa: E402

from gslbtest import (BIN, TIME_FACTOR, ZONES, Dnsd, Proc, answer_texts,  # noqa: E402
                      free_port, gslbctl, run, test, tmpdir, wait_for)
from agent_backend import RESET, AgentBackend  # noqa: E402

TOKEN = "health-dns-token"
INTERVAL, RISE, FALL = 1, 2, 2
FO = "fo.gslb.example.com."      # failover .1 < .2 < .3 (priority)
WT = "wt.gslb.example.com."      # weighted, --answers 3: every healthy one
FB = "fb.gslb.example.com."      # failover, --when-down 192.0.2.99
CL = "cl.gslb.example.com."      # weighted, --when-down closed
AGENTS = [("probe-eu", "eu", 50.11, 8.68), ("probe-us", "us", 39.04, -77.49),
          ("probe-ap", "ap", 35.69, 139.69)]
_backends = []


class Cluster:
    """Three backends; FO, WT, FB and CL over them (endpoint i of each
    service is checked against backend i); dnsd; optionally the agents."""

    def __init__(self, agents=True, backends=None, dnsd_args=()):
        d = tmpdir()
        self.db = os.path.join(d, "gslb.db")
        self.token_file = os.path.join(d, "token")
        with open(self.token_file, "w") as f:
            f.write(TOKEN + "\n")
        if backends is None:
            backends = [AgentBackend(free_port()).start() for _ in range(3)]
            _backends.extend(backends)
        self.configure(backends)
        self.backends = backends
        self.dnsd_args = list(dnsd_args)
        self.agents = {}
        self.start_dnsd()
        if agents:
            for a in AGENTS:
                self.start_agent(*a)

    def configure(self, backends):
        db = self.db
        gslbctl(db, "init")
        gslbctl(db, "service", "add", FO, "--policy", "failover", "--ttl", "5")
        gslbctl(db, "service", "add", WT, "--policy", "weighted", "--answers", "3")
        gslbctl(db, "service", "add", FB, "--policy", "failover", "--when-down", "192.0.2.99")
        gslbctl(db, "service", "add", CL, "--policy", "weighted", "--when-down", "closed")
        for i, b in enumerate(backends):
            chk = ["--check", b.url, "--check-interval", INTERVAL,
                   "--check-fall", FALL, "--check-rise", RISE]
            gslbctl(db, "endpoint", "add", FO, "192.0.2.%d" % (1 + i), "--priority", 1 + i, *chk)
            gslbctl(db, "endpoint", "add", WT, "192.0.2.%d" % (11 + i), *chk)
            gslbctl(db, "endpoint", "add", FB, "192.0.2.%d" % (21 + i), "--priority", 1 + i, *chk)
            gslbctl(db, "endpoint", "add", CL, "192.0.2.%d" % (31 + i), *chk)

    def start_dnsd(self):
        self.api_port = free_port()
        self.api = "http://127.0.0.1:%d" % self.api_port
        self.dnsd = Dnsd(["--zone", os.path.join(ZONES, "gslb.example.com.zone"),
                          "--db", self.db, "--api", "127.0.0.1:%d" % self.api_port,
                          "--api-token-file", self.token_file,
                          "--check-interval", str(INTERVAL), "--threads", "2"]
                         + self.dnsd_args)

    def start_agent(self, name, region, lat, lon, also=()):
        """An agent reporting to this dnsd and to those of the clusters in
        also (same token)."""
        servers = []
        for u in [self.api] + [o.api for o in also]:
            servers += ["--server", u]
        p = Proc([os.path.join(BIN, "gslb-probe"), "--name", name, "--region", region,
                  "--lat", str(lat), "--lon", str(lon)] + servers +
                 ["--token-file", self.token_file, "--interval", str(INTERVAL)])
        self.agents[name] = p
        for b in self.backends:
            b.register(name, p.pid)
        return p

    def stop_agents(self):
        for p in self.agents.values():
            p.stop()

    # --- looking at it
    def answer(self, name):
        r = self.dnsd.udp(name)
        if r.rcode() != dns.rcode.NOERROR:
            return dns.rcode.to_text(r.rcode())
        return sorted(answer_texts(r))

    def snapshot(self):
        """Answers of FO, WT, FB; CL (weighted, one random answer) as
        "one of" when any of its endpoints may answer."""
        out = {s: self.answer(s) for s in (FO, WT, FB)}
        cl = self.answer(CL)
        out[CL] = "one of" if cl in (["192.0.2.31"], ["192.0.2.32"], ["192.0.2.33"]) else cl
        return out

    def get(self, path):
        with urllib.request.urlopen(self.api + path, timeout=2) as r:
            return r.read().decode()

    def status(self):
        return json.loads(self.get("/v1/status"))

    def api_endpoint(self, svc, target):
        for s in self.status()["services"]:
            if s["name"] == svc:
                for e in s["endpoints"]:
                    if e["target"] == target:
                        return e
        raise KeyError((svc, target))

    def metric(self, svc, target):
        pat = re.compile(r'^dnsd_endpoint_healthy\{service="%s",target="%s"\} (\d+)$'
                         % (re.escape(svc), re.escape(target)), re.M)
        m = pat.search(self.get("/metrics"))
        return int(m.group(1)) if m else None

    def ctl_status(self):
        doc = json.loads(gslbctl(self.db, "status", "--json").stdout)
        return {(s["name"], e["target"]): e for s in doc["services"] for e in s["endpoints"]}

    def wait_all_up(self, timeout=8, every_agent=True):
        """Every endpoint up (and, with every_agent, up in every running
        agent's report) and FO, WT answered accordingly."""
        want = {FO: ["192.0.2.1"], WT: ["192.0.2.11", "192.0.2.12", "192.0.2.13"]}
        running = sorted(n for n, p in self.agents.items() if p.alive())

        def ok():
            doc = self.status()
            eps = [e for s in doc["services"] for e in s["endpoints"]]
            return (all(e["health"] == "up" and not e["stale"] for e in eps)
                    and (not every_agent or all(
                        sorted(a["agent"] for a in e["agents"] if a["state"] == "up")
                        == running for e in eps))
                    and all(self.answer(k) == v for k, v in want.items()))
        if not wait_for(ok, timeout, 0.1):
            raise AssertionError("not all up after %ss: %s\n%s" % (
                timeout, json.dumps(self.status())[:3000], self.logs()))

    def logs(self):
        out = "--- dnsd\n" + self.dnsd.output()[-3000:]
        for n, p in self.agents.items():
            out += "--- %s\n%s" % (n, p.output()[-1500:])
        return out


def timed(pred, timeout, what, c):
    """Seconds until pred() holds (polled every 50 ms), or AssertionError
    after timeout seconds (times TIME_FACTOR)."""
    timeout *= TIME_FACTOR
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():
            return time.monotonic() - t0
        time.sleep(0.05)
    raise AssertionError("%s: not within %.1fs\n%s" % (what, timeout, c.logs()))


def post_report(api, token, body):
    req = urllib.request.Request(api + "/v1/reports", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    if token is not None:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=2) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def cleanup(fn):
    def inner():
        try:
            fn()
        finally:
            while _backends:
                _backends.pop().stop()
    inner.__name__ = fn.__name__
    return inner


@test
@cleanup
def test_failover_recovery_status_metrics():
    c = Cluster()
    c.wait_all_up()
    # Healthy: gslbctl status shows health, each agent's result and RTT
    # (from the store, which dnsd writes at least once a second).
    def ctl_all_up():
        e = c.ctl_status()[(FO, "192.0.2.1")]
        return len(e["agents"]) == 3 and all(a["state"] == "up" for a in e["agents"])
    assert wait_for(ctl_all_up, 3, 0.1), c.ctl_status()[(FO, "192.0.2.1")]
    e = c.ctl_status()[(FO, "192.0.2.1")]
    assert e["health"] == "up" and e["stale"] is False, e
    assert sorted(a["agent"] for a in e["agents"]) == sorted(a[0] for a in AGENTS), e
    for a in e["agents"]:
        assert a["state"] == "up" and a["ok"] is True, a
        assert isinstance(a["rtt_ms"], (int, float)) and 0 < a["rtt_ms"] < 1000, a
    assert sorted(x["region"] for x in e["latency"]) == ["ap", "eu", "us"], e
    assert c.metric(FO, "192.0.2.1") == 1 and c.metric(WT, "192.0.2.11") == 1

    # Stop backend 0: FO and WT drop it within fall x interval + 1 s (the
    # second for the agents' and dnsd's work: longer in a sanitizer build).
    bound = FALL * INTERVAL + 1.0 * TIME_FACTOR
    c.backends[0].stop()
    # Each endpoint has its own check schedule (jittered), so the three
    # services that use backend 0 drop it at slightly different moments.
    t_down = timed(lambda: c.answer(FO) == ["192.0.2.2"]
                   and c.answer(WT) == ["192.0.2.12", "192.0.2.13"]
                   and c.answer(FB) == ["192.0.2.22"], bound + 2,
                   "backend 0 out of FO, WT and FB answers", c)
    print("    failover: backend stopped -> out of DNS answers in %.2f s (bound %.1f s)"
          % (t_down, bound))
    assert t_down <= bound, "failover took %.2fs, over %.1fs" % (t_down, bound)
    assert c.answer(FB) == ["192.0.2.22"], c.answer(FB)
    assert c.metric(FO, "192.0.2.1") == 0 and c.metric(FO, "192.0.2.2") == 1
    ae = c.api_endpoint(FO, "192.0.2.1")
    assert ae["health"] == "down", ae
    assert re.match(r"[01] of 3 fresh agents report up \(quorum > 50%\)", ae["reason"]), ae
    assert abs(ae["since"] - time.time()) < 5, ae
    assert sorted(x["region"] for x in ae["latency"]) == ["ap", "eu", "us"], ae

    def all_agents_down():
        ae = c.api_endpoint(FO, "192.0.2.1")
        d = [a for a in ae["agents"] if a["state"] == "down" and not a["ok"] and a["fresh"]]
        return ae if len(d) == 3 else None
    ae = wait_for(all_agents_down, 2, 0.1)
    assert ae, c.api_endpoint(FO, "192.0.2.1")
    assert all("refused" in a["detail"].lower() for a in ae["agents"]), ae

    def ctl_down():
        e = c.ctl_status()[(FO, "192.0.2.1")]
        return e if e["health"] == "down" and all(
            a["state"] == "down" and a["ok"] is False for a in e["agents"]) else None
    e = wait_for(ctl_down, 3, 0.1)
    assert e, c.ctl_status()[(FO, "192.0.2.1")]
    assert re.match(r"[01] of 3 fresh agents report up", e["reason"]), e

    # Start it again: back in about rise x interval.
    rbound = RISE * INTERVAL + 1.5 * TIME_FACTOR
    c.backends[0].start()
    t_up = timed(lambda: c.answer(FO) == ["192.0.2.1"]
                 and c.answer(WT) == ["192.0.2.11", "192.0.2.12", "192.0.2.13"],
                 rbound + 2, "backend 0 back in answers", c)
    print("    recovery: backend started -> back in DNS answers in %.2f s (bound %.1f s)"
          % (t_up, rbound))
    assert t_up <= rbound, "recovery took %.2fs, over %.1fs" % (t_up, rbound)
    assert c.metric(FO, "192.0.2.1") == 1
    assert c.ctl_status()[(FO, "192.0.2.1")]["health"] == "up"


@test
@cleanup
def test_all_down_fail_open_fallback_closed():
    c = Cluster()
    c.wait_all_up()
    assert c.snapshot()[CL] == "one of", c.snapshot()
    for b in c.backends:
        b.stop()
    # Once every endpoint is down: FO and WT fail open (answer as if all
    # were healthy), FB answers its --when-down target, CL SERVFAIL.
    def all_down():
        doc = c.status()
        return all(e["health"] == "down" for s in doc["services"] for e in s["endpoints"])
    timed(all_down, FALL * INTERVAL + 3, "every endpoint down", c)
    want = {FO: ["192.0.2.1"], WT: ["192.0.2.11", "192.0.2.12", "192.0.2.13"],
            FB: ["192.0.2.99"], CL: "SERVFAIL"}
    for _ in range(20):
        s = c.snapshot()
        assert s == want, s
        time.sleep(0.05)
    # One comes back: everyone answers it again
    c.backends[1].start()
    timed(lambda: c.snapshot() == {FO: ["192.0.2.2"], WT: ["192.0.2.12"],
                                   FB: ["192.0.2.22"], CL: "one of"}
          and c.answer(CL) == ["192.0.2.32"],
          RISE * INTERVAL + 3, "backend 1 answered by all four", c)


@test
@cleanup
def test_partitioned_agent_then_kill9():
    c = Cluster(agents=False)
    # probe-ap cannot reach backend 0 (its connections are reset); the
    # other two can.
    c.backends[0].set("probe-ap", RESET)
    for a in AGENTS:
        c.start_agent(*a)
    c.wait_all_up(every_agent=False)

    def ap_view():
        e = c.api_endpoint(FO, "192.0.2.1")
        return {a["agent"]: (a["state"], a["fresh"]) for a in e["agents"]}, e
    view, e = ap_view()
    if view.get("probe-ap") != ("down", True):
        wait_for(lambda: ap_view()[0].get("probe-ap") == ("down", True), 4, 0.1)
        view, e = ap_view()
    assert view == {"probe-eu": ("up", True), "probe-us": ("up", True),
                    "probe-ap": ("down", True)}, e
    assert e["health"] == "up" and not e["stale"], e
    assert c.backends[0].hits.get("probe-ap", 0) >= FALL, c.backends[0].hits
    base = c.snapshot()
    assert base[FO] == ["192.0.2.1"] and len(base[WT]) == 3, base
    t_end = time.monotonic() + 2.5
    n = 0
    while time.monotonic() < t_end and n < 100:
        assert c.snapshot() == base, (c.snapshot(), base)
        n += 1
        time.sleep(0.1)

    # Heal the partition, then kill -9 a healthy agent: the two left keep
    # the quorum; once its reports are stale (3 x interval) it no longer
    # votes and nothing moves.
    c.backends[0].set("probe-ap", None)
    if not wait_for(lambda: ap_view()[0].get("probe-ap") == ("up", True), RISE * INTERVAL + 3, 0.1):
        raise AssertionError("probe-ap did not see backend 0 up: %s" % (ap_view(),))
    c.agents["probe-us"].kill()
    t_end = time.monotonic() + 3 * INTERVAL + 1.5
    n = 0
    while time.monotonic() < t_end and n < 200:
        assert c.snapshot() == base, (c.snapshot(), base)
        n += 1
        time.sleep(0.1)
    view, e = ap_view()
    assert view == {"probe-eu": ("up", True), "probe-us": ("up", False),
                    "probe-ap": ("up", True)}, e
    assert e["health"] == "up" and not e["stale"], e


@test
@cleanup
def test_quorum_percent():
    """Two of three agents cannot reach backend 0. The same agents report
    to two dnsd (same configuration, separate stores): with the default
    --quorum-percent 50 the endpoint is down (1 of 3 say up), with 18 (Route
    53 style) it is up."""
    c = Cluster(agents=False)
    c18 = Cluster(agents=False, backends=c.backends, dnsd_args=["--quorum-percent", "18"])
    c.backends[0].set("probe-us", RESET)
    c.backends[0].set("probe-ap", RESET)
    for a in AGENTS:
        c.start_agent(*a, also=[c18])

    def settled():
        e, e18 = c.api_endpoint(FO, "192.0.2.1"), c18.api_endpoint(FO, "192.0.2.1")
        views = [{a["agent"]: a["state"] for a in x["agents"]} for x in (e, e18)]
        want = {"probe-eu": "up", "probe-us": "down", "probe-ap": "down"}
        return views == [want, want] and e["health"] == "down" and e18["health"] == "up"
    timed(settled, RISE * INTERVAL + 4, "both servers see 1 of 3 agents up", c)
    assert "quorum > 18%" in c18.api_endpoint(FO, "192.0.2.1")["reason"]
    assert "quorum > 50%" in c.api_endpoint(FO, "192.0.2.1")["reason"]
    # FO's endpoint settled; WT's endpoint on the same backend has its own
    # (jittered) check schedule: wait for it too, then hold steady.
    def answers_settled():
        return (c.answer(FO) == ["192.0.2.2"] and c18.answer(FO) == ["192.0.2.1"] and
                c.answer(WT) == ["192.0.2.12", "192.0.2.13"] and
                c18.answer(WT) == ["192.0.2.11", "192.0.2.12", "192.0.2.13"])
    timed(answers_settled, RISE * INTERVAL + 4, "answers follow each quorum", c)
    for _ in range(10):
        assert c.answer(FO) == ["192.0.2.2"], c.answer(FO)
        assert c18.answer(FO) == ["192.0.2.1"], c18.answer(FO)
        assert c.answer(WT) == ["192.0.2.12", "192.0.2.13"], c.answer(WT)
        assert c18.answer(WT) == ["192.0.2.11", "192.0.2.12", "192.0.2.13"], c18.answer(WT)
        time.sleep(0.1)


@test
@cleanup
def test_restart_keeps_health():
    c = Cluster()
    c.wait_all_up()
    c.backends[0].stop()
    timed(lambda: c.snapshot() == {FO: ["192.0.2.2"], WT: ["192.0.2.12", "192.0.2.13"],
                                   FB: ["192.0.2.22"], CL: "one of"},
          FALL * INTERVAL + 3, "backend 0 out", c)
    c.stop_agents()
    c.dnsd.signal(signal.SIGTERM)
    c.dnsd.p.wait(10)
    assert c.dnsd.p.returncode == 0, c.dnsd.output()
    c.dnsd.stop()
    # Same store, no agent running: the down endpoint stays out from the
    # first answer on.
    c.start_dnsd()
    first = c.snapshot()
    assert first[FO] == ["192.0.2.2"], first
    assert first[WT] == ["192.0.2.12", "192.0.2.13"], first
    assert first[FB] == ["192.0.2.22"], first
    e = c.api_endpoint(FO, "192.0.2.1")
    assert e["health"] == "down", e
    assert c.api_endpoint(FO, "192.0.2.2")["health"] == "up"
    assert c.metric(FO, "192.0.2.1") == 0
    # ... and while no agent reports (the state goes stale, never "up").
    t_end = time.monotonic() + 3 * INTERVAL + 1.5
    while time.monotonic() < t_end:
        assert c.answer(FO) == ["192.0.2.2"], c.answer(FO)
        time.sleep(0.2)
    e = c.api_endpoint(FO, "192.0.2.1")
    assert e["health"] == "down" and e["stale"] is True, e
    assert "restored" in c.dnsd.output(), c.dnsd.output()
    # Agents again, backend back: it returns.
    c.backends[0].start()
    for a in AGENTS:
        c.start_agent(*a)
    timed(lambda: c.answer(FO) == ["192.0.2.1"], RISE * INTERVAL + 4,
          "backend 0 back after the restart", c)


@test
@cleanup
def test_wrong_token_changes_nothing():
    c = Cluster(agents=False)
    e = c.api_endpoint(FO, "192.0.2.1")
    eid = e["id"]
    assert e["health"] == "unknown" and e["agents"] == [], e
    assert c.answer(FO) == ["192.0.2.1"]      # unknown counts as healthy
    body = {"agent": "intruder", "region": "eu", "lat": 50.0, "lon": 8.0,
            "results": [{"id": eid, "state": "down", "ok": False, "rtt_ms": None,
                         "ts": time.time(), "detail": "forged"}]}
    for tok in ("wrong-" + TOKEN, None, TOKEN + "x", ""):
        code, hdrs, text = post_report(c.api, tok, body)
        assert code == 401, (tok, code, text)
        assert "bearer" in hdrs.get("WWW-Authenticate", "").lower(), hdrs
    time.sleep(0.3)
    e = c.api_endpoint(FO, "192.0.2.1")
    assert e["health"] == "unknown" and e["agents"] == [], e
    assert c.answer(FO) == ["192.0.2.1"]
    assert c.ctl_status()[(FO, "192.0.2.1")]["agents"] == []
    assert "intruder" not in c.get("/metrics")
    # The same report with the right token does change it (so the above
    # could have failed).
    code, _, text = post_report(c.api, TOKEN, body)
    assert code == 200 and json.loads(text)["accepted"] == 1, (code, text)
    assert wait_for(lambda: c.answer(FO) == ["192.0.2.2"], 2), c.answer(FO)
    e = c.api_endpoint(FO, "192.0.2.1")
    assert e["health"] == "down" and e["agents"][0]["agent"] == "intruder", e


if __name__ == "__main__":
    run()
