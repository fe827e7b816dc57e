#!/usr/bin/python3
"""Real agents (bin/gslb-probe) against the real API module and quorum logic
(dnsd/api.c + health/hstate.c, wrapped by tests/tools/api_testd.c, which
this test compiles against build/libgslb.a): quorum across agents, a
partitioned agent, failover timing, kill -9 of agents, staleness, 401."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "tools"))

from gslbtest import BIN, Proc, free_port, run, test, tmpdir  # noqa: E402
from probe_fakes import DnsResponder, HttpBackend, TcpListener  # noqa: E402

BUILD = os.environ.get("BUILD", os.path.join(ROOT, "build"))
TOKEN = "e2e-token"
_stoppers = []
_testd = None


def testd_binary():
    global _testd
    if _testd:
        return _testd
    out = os.path.join(tmpdir(), "api_testd")
    libs = subprocess.run(["pkg-config", "--libs", "libevent", "jansson", "openssl", "libsystemd"],
                          check=True, capture_output=True, text=True).stdout.split()
    lib = os.path.join(BUILD, "libgslb.a")
    # make asan / make tsan build the library instrumented: link alike.
    with open(lib, "rb") as f:
        data = f.read()
    san = []
    if b"__asan_" in data:
        san = ["-fsanitize=address,undefined"]
    elif b"__tsan_" in data:
        san = ["-fsanitize=thread"]
    subprocess.run(["cc", "-std=c11", "-D_GNU_SOURCE", "-O1", "-g", "-I", ROOT, "-o", out,
                    os.path.join(ROOT, "tests", "tools", "api_testd.c"), lib]
                   + san + libs + ["-lm"], check=True)
    _testd = out
    return out


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


class Api:
    def __init__(self, checks, quorum=None, host="127.0.0.1"):
        d = tmpdir()
        v6 = ":" in host
        self.port = free_port(socket.AF_INET6, host) if v6 else free_port()
        listen = ("[%s]:%d" if v6 else "%s:%d") % (host, self.port)
        self.url = "http://" + listen
        self.token_file = write(os.path.join(d, "token"), TOKEN + "\n")
        cf = write(os.path.join(d, "checks.json"), json.dumps({"generation": 1, "checks": checks}))
        argv = [testd_binary(), "--listen", listen,
                "--token-file", self.token_file, "--checks", cf]
        if quorum is not None:
            argv += ["--quorum", str(quorum)]
        self.proc = Proc(argv)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                self.status()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("api_testd did not start: " + self.proc.output())

    def status(self):
        with urllib.request.urlopen(self.url + "/v1/status", timeout=2) as r:
            return json.load(r)

    def post(self, body, token=TOKEN):
        req = urllib.request.Request(self.url + "/v1/reports", data=json.dumps(body).encode(),
                                     headers={"Authorization": "Bearer " + token,
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=2) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    def endpoint(self, eid):
        for e in self.status()["endpoints"]:
            if e["id"] == eid:
                return e
        raise KeyError(eid)

    def wait(self, pred, timeout, what):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = self.status()
            if pred(last):
                return time.monotonic()
            time.sleep(0.05)
        raise AssertionError("timed out after %.1fs waiting for %s: %s"
                             % (timeout, what, json.dumps(last)[:2000]))


def ep_of(doc, eid):
    return next(e for e in doc["endpoints"] if e["id"] == eid)


def agent(api, name, region, lat, lon):
    return Proc([os.path.join(BIN, "gslb-probe"), "--name", name, "--region", region,
                 "--lat", str(lat), "--lon", str(lon), "--server", api.url,
                 "--token-file", api.token_file, "--interval", "1", "--refresh", "1",
                 "--batch", "0.2", "--api-timeout", "2"])


def check(eid, url, **kw):
    c = {"id": eid, "service": "www.gslb.example.com.", "target": "127.0.0.1",
         "url": url, "interval": 1, "timeout": 0.8, "rise": 2, "fall": 2,
         "tls_verify": True, "expect": "200-399", "body": None, "host": None}
    c.update(kw)
    return c


def wrap(fn):
    def inner():
        try:
            fn()
        finally:
            while _stoppers:
                try:
                    _stoppers.pop().stop()
                except Exception:
                    pass
    inner.__name__ = fn.__name__
    return inner


def backend():
    b = HttpBackend(free_port())
    _stoppers.append(b)
    return b.start()


@test
@wrap
def test_quorum_failover_and_staleness():
    webs = [backend() for _ in range(3)]
    api = Api([check(i + 1, "http://127.0.0.1:%d/health" % w.port) for i, w in enumerate(webs)])
    eu = agent(api, "eu-1", "eu", 50.1, 8.7)
    us = agent(api, "us-1", "us", 40.7, -74.0)

    def all_up(d):
        return all(e["state"] == "up" and not e["stale"] and
                   sum(a["fresh"] and a["state"] == "up" for a in e["agents"]) == 2
                   for e in d["endpoints"])
    api.wait(all_up, 8, "3 endpoints up by 2 fresh agents")
    lat = api.status()["latency"]
    assert {(x["region"], x["id"]) for x in lat} == {(r, i) for r in ("eu", "us") for i in (1, 2, 3)}, lat
    assert all(0 < x["rtt_ms"] < 500 for x in lat), lat

    # A partitioned agent that sees endpoint 1 down cannot take it down.
    for k in range(6):
        code = api.post({"agent": "ap-1", "region": "ap", "results": [
            {"id": 1, "state": "down", "ok": False, "rtt_ms": None, "ts": time.time(),
             "detail": "partitioned"}]})
        assert code == 200, code
        time.sleep(0.3)
    e1 = api.endpoint(1)
    votes = sorted((a["agent"], a["state"]) for a in e1["agents"] if a["fresh"])
    assert votes == [("ap-1", "down"), ("eu-1", "up"), ("us-1", "up")], e1
    assert e1["state"] == "up" and not e1["stale"], e1

    # A backend stops: down within fall x interval + 1 s (+ batching).
    webs[1].stop()
    t0 = time.monotonic()
    t = api.wait(lambda d: ep_of(d, 2)["state"] == "down", 6, "endpoint 2 down")
    assert t - t0 <= 2 * 1 + 1.5, "down after %.2fs" % (t - t0)
    webs[1].start()
    t0 = time.monotonic()
    t = api.wait(lambda d: ep_of(d, 2)["state"] == "up", 6, "endpoint 2 up")
    assert t - t0 <= 2 * 1 + 1.5, "up after %.2fs" % (t - t0)
    assert api.endpoint(3)["state"] == "up"
    log = api.proc.output()
    assert log.count("health: endpoint 2: up -> down") == 1, log
    assert log.count("health: endpoint 2: down -> up") == 1, log

    # kill -9 one agent: its reports go stale; the other keeps the state.
    us.kill()
    api.wait(lambda d: all(not a["fresh"] for e in d["endpoints"] for a in e["agents"]
                           if a["agent"] in ("us-1", "ap-1")), 6, "us-1 and ap-1 stale")
    d = api.status()
    assert all(e["state"] == "up" and not e["stale"] for e in d["endpoints"]), d
    # Everyone silent: the last state stands, marked stale.
    eu.kill()
    api.wait(lambda d: all(e["stale"] for e in d["endpoints"]), 6, "all stale")
    assert all(e["state"] == "up" for e in api.status()["endpoints"])
    assert api.proc.stop() == 0


@test
@wrap
def test_route53_style_quorum():
    web = backend()
    api = Api([check(1, "http://127.0.0.1:%d/" % web.port)], quorum=0.18)
    a = agent(api, "eu-1", "eu", 50.1, 8.7)
    api.wait(lambda d: ep_of(d, 1)["state"] == "up", 6, "up")
    # Four more agents say down: 1 of 5 up is 20% > 18%: still up.
    for k in range(4):
        assert api.post({"agent": "x%d" % k, "region": "x", "results": [
            {"id": 1, "state": "down", "ok": False, "ts": time.time()}]}) == 200
    e = api.endpoint(1)
    assert sum(a["fresh"] for a in e["agents"]) == 5, e
    assert e["state"] == "up", e
    assert a.stop() == 0


@test
@wrap
def test_real_api_rejects_bad_reports():
    web = backend()
    api = Api([check(1, "http://127.0.0.1:%d/" % web.port)])
    good = {"agent": "a", "region": "r", "results": [
        {"id": 1, "state": "up", "ok": True, "rtt_ms": 1.0, "ts": time.time()}]}
    assert api.post(good, token="wrong") == 401
    assert api.post(dict(good, results=[dict(good["results"][0], id=2)])) == 422
    assert api.post(dict(good, lat=91, lon=0)) == 400
    assert api.status()["reports"] == 0
    assert api.endpoint(1)["agents"] == []
    # An agent with the wrong token: 401, logged once, keeps trying.
    bad = write(os.path.join(tmpdir(), "bad"), "nope\n")
    p = Proc([os.path.join(BIN, "gslb-probe"), "--name", "b", "--region", "r",
              "--server", api.url, "--token-file", bad, "--refresh", "0.5"])
    time.sleep(2.5)
    assert p.alive()
    assert p.output().count("rejected: 401") == 1, p.output()
    assert api.status()["reports"] == 0
    p.signal(signal.SIGTERM)
    p.p.wait(5)
    assert p.p.returncode == 0


@test
@wrap
def test_ipv6_everywhere():
    """API on [::1], agent reporting to it, HTTP/TCP/DNS checks of ::1."""
    p6 = lambda: free_port(socket.AF_INET6, "::1")  # noqa: E731
    web = HttpBackend(p6(), host="::1")
    tcp = TcpListener(p6(), host="::1")
    dns = DnsResponder(p6(), host="::1")
    for x in (web, tcp, dns):
        _stoppers.append(x)
        x.start()
    api = Api([check(1, "http://[::1]:%d/" % web.port),
               check(2, "tcp://[::1]:%d" % tcp.port),
               check(3, "dns://[::1]:%d/example.com" % dns.port)], host="::1")
    a = agent(api, "v6", "eu", 50.1, 8.7)
    api.wait(lambda d: all(e["state"] == "up" for e in d["endpoints"]), 8, "v6 checks up")
    web.stop()
    api.wait(lambda d: ep_of(d, 1)["state"] == "down", 6, "v6 http down")
    assert a.stop() == 0


if __name__ == "__main__":
    run()
