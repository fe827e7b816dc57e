#!/usr/bin/python3
"""bin/gslb-probe against a fake dnsd API and real loopback backends (HTTP,
HTTPS with a self-signed certificate, TCP, DNS): states, RTTs, fall/rise
timing, TLS verification, 401 handling, several servers, SIGTERM."""
import os
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tools"))

from gslbtest import BIN, Proc, free_port, run, test, tmpdir  # noqa: E402
from probe_fakes import (DnsResponder, FakeApi, HttpBackend, TcpListener,  # noqa: E402
                         self_signed)

TOKEN = "t0ken-for-tests"
_stoppers = []


def started(obj):
    _stoppers.append(obj)
    return obj.start()


def stop_fakes():
    while _stoppers:
        try:
            _stoppers.pop().stop()
        except Exception:
            pass


def token_file(tok=TOKEN):
    p = os.path.join(tmpdir(), "token")
    with open(p, "w") as f:
        f.write("  %s  \n" % tok)
    return p


def agent(servers, name="eu-1", region="eu", tok=TOKEN, extra=(), env=None):
    argv = [os.path.join(BIN, "gslb-probe"), "--name", name, "--region", region,
            "--lat", "50.1", "--lon", "8.7", "--token-file", token_file(tok),
            "--interval", "1", "--refresh", "1", "--batch", "0.2",
            "--api-timeout", "2", "--log-level", "info"]
    for s in servers:
        argv += ["--server", s]
    return Proc(argv + list(extra), env=env)


def check(eid, url, **kw):
    c = {"id": eid, "service": "www.gslb.example.com.", "target": "127.0.0.1",
         "url": url, "interval": 1, "timeout": 0.8, "rise": 3, "fall": 2,
         "tls_verify": True, "expect": "200-399", "body": None, "host": None}
    c.update(kw)
    return c


def url_of(api):
    return "http://127.0.0.1:%d" % api.port


def wrap(fn):
    """Stops the fakes a test started, also on failure."""
    def inner():
        try:
            fn()
        finally:
            stop_fakes()
    inner.__name__ = fn.__name__
    return inner


@test
@wrap
def test_kinds_states_and_rtt():
    web = started(HttpBackend(free_port(), body="I am healthy\n"))
    sick = started(HttpBackend(free_port(), code=503, body="maintenance\n"))
    tcp = started(TcpListener(free_port()))
    dns_ok = started(DnsResponder(free_port(), rcode=0))
    dns_nx = started(DnsResponder(free_port(), rcode=3))
    hang = started(TcpListener(free_port(), hold=True))   # accepts, never answers
    closed = free_port()
    checks = [
        check(1, "http://127.0.0.1:%d/health" % web.port),
        check(2, "http://127.0.0.1:%d/" % web.port, body="healthy"),
        check(3, "http://127.0.0.1:%d/" % web.port, body="missing-word"),
        check(4, "http://127.0.0.1:%d/" % sick.port),
        check(5, "http://127.0.0.1:%d/" % sick.port, expect="500-599"),
        check(6, "tcp://127.0.0.1:%d" % tcp.port),
        check(7, "tcp://127.0.0.1:%d" % closed),
        check(8, "dns://127.0.0.1:%d/www.example.com" % dns_ok.port),
        check(9, "dns://127.0.0.1:%d/www.example.com" % dns_nx.port),
        check(10, "dns://127.0.0.1:%d/nx.example.com" % dns_nx.port, rcode="NXDOMAIN"),
        check(11, "http://localhost:%d/health" % web.port, host="www.example.com"),
        check(12, "http://127.0.0.1:%d/" % hang.port),
        check(13, "tcp://127.0.0.1:%d" % hang.port),
    ]
    want = {1: "up", 2: "up", 3: "down", 4: "down", 5: "up", 6: "up", 7: "down",
            8: "up", 9: "down", 10: "up", 11: "up", 12: "down", 13: "up"}
    api = started(FakeApi(free_port(), TOKEN, checks))
    a = agent([url_of(api)])

    def all_settled():
        lat = api.latest()
        return all(i in lat and lat[i][1]["state"] == s for i, s in want.items())
    api.wait(all_settled, 8, "every check in its expected state")
    lat = api.latest()
    for i, s in want.items():
        r = lat[i][1]
        if s == "up":
            assert r["ok"] is True, r
            assert isinstance(r["rtt_ms"], float) and 0 < r["rtt_ms"] < 800, r
        else:
            assert r["ok"] is False, r
    assert "body lacks" in lat[3][1]["detail"], lat[3][1]
    assert "status 503" in lat[4][1]["detail"], lat[4][1]
    assert "refused" in lat[7][1]["detail"].lower(), lat[7][1]
    assert "NXDOMAIN" in lat[9][1]["detail"], lat[9][1]
    assert "timeout after 0.8 s (waiting for response)" in lat[12][1]["detail"], lat[12][1]
    assert abs(lat[1][1]["ts"] - time.time()) < 5, lat[1][1]
    body = api.all_reports()[-1][1]
    assert body["agent"] == "eu-1" and body["region"] == "eu", body
    assert abs(body["lat"] - 50.1) < 1e-9 and abs(body["lon"] - 8.7) < 1e-9, body
    # Before rise/fall is reached the agent says "unknown".
    first = {}
    for _, b in api.all_reports():
        for r in b["results"]:
            first.setdefault(r["id"], r["state"])
    assert all(s == "unknown" for s in first.values()), first
    assert web.hits > 0 and dns_ok.queries > 0
    assert a.alive(), a.output()
    assert a.stop() == 0


@test
@wrap
def test_fall_and_rise_timing():
    port = free_port()
    web = started(HttpBackend(port))
    api = started(FakeApi(free_port(), TOKEN,
                          [check(7, "http://127.0.0.1:%d/health" % port, rise=3, fall=2)]))
    a = agent([url_of(api)])
    api.wait_state(7, "up", 8)
    web.stop()
    t0 = time.monotonic()
    t_down = api.wait_state(7, "down", 6, since=t0)
    assert t_down - t0 <= 2 * 1 + 1.0, "down after %.2fs" % (t_down - t0)
    web.start()
    t1 = time.monotonic()
    t_up = api.wait_state(7, "up", 8, since=t1)
    assert t_up - t1 <= 3 * 1 + 1.0, "up after %.2fs" % (t_up - t1)
    out = a.output()
    assert "endpoint 7 http://127.0.0.1:%d/health: up -> down after 2 failures" % port in out, out
    assert "down -> up after 3 successes" in out, out
    assert out.count("up -> down") == 1, out
    assert a.stop() == 0


@test
@wrap
def test_https_verification():
    d = tmpdir()
    tls = started(HttpBackend(free_port(), body="secure\n", ssl_ctx=self_signed(d)))
    checks = [check(1, "https://127.0.0.1:%d/" % tls.port),
              check(2, "https://127.0.0.1:%d/" % tls.port, tls_verify=False),
              check(3, "https://localhost:%d/" % tls.port, tls_verify=False, body="secure"),
              # The Host header names the certificate to expect.
              check(4, "https://127.0.0.1:%d/" % tls.port, tls_verify=False,
                    host="localhost", body="secure")]
    api = started(FakeApi(free_port(), TOKEN, checks))
    a = agent([url_of(api)])

    def settled():
        lat = api.latest()
        return (lat.get(1, (0, {}))[1].get("state") == "down" and
                lat.get(2, (0, {}))[1].get("state") == "up" and
                lat.get(3, (0, {}))[1].get("state") == "up" and
                lat.get(4, (0, {}))[1].get("state") == "up")
    api.wait(settled, 8, "https verify on down, off up")
    lat = api.latest()
    assert "certificate verify failed" in lat[1][1]["detail"], lat[1][1]
    assert lat[2][1]["rtt_ms"] > 0, lat[2][1]
    assert a.stop() == 0


@test
@wrap
def test_https_trusted_ca_and_host_name():
    """With the certificate in the trust store (SSL_CERT_FILE), verification
    passes for the names in it and fails for any other name."""
    d = tmpdir()
    tls = started(HttpBackend(free_port(), body="secure\n", ssl_ctx=self_signed(d)))
    checks = [check(1, "https://127.0.0.1:%d/" % tls.port),
              check(2, "https://localhost:%d/" % tls.port),
              check(3, "https://127.0.0.1:%d/" % tls.port, host="localhost"),
              check(4, "https://127.0.0.1:%d/" % tls.port, host="www.other.example")]
    want = {1: "up", 2: "up", 3: "up", 4: "down"}
    api = started(FakeApi(free_port(), TOKEN, checks))
    env = dict(os.environ, SSL_CERT_FILE=os.path.join(d, "crt.pem"))
    a = agent([url_of(api)], env=env)

    def settled():
        lat = api.latest()
        return all(i in lat and lat[i][1]["state"] == s for i, s in want.items())
    api.wait(settled, 8, "trusted names up, other name down")
    detail = api.latest()[4][1]["detail"]
    assert "verify failed" in detail and "mismatch" in detail, detail
    assert a.stop() == 0


@test
@wrap
def test_wrong_token_keeps_trying():
    web = started(HttpBackend(free_port()))
    api = started(FakeApi(free_port(), "the-right-token",
                          [check(1, "http://127.0.0.1:%d/" % web.port)]))
    a = agent([url_of(api)], tok="a-wrong-token")
    api.wait(lambda: len(api.codes("/v1/checks")) >= 3, 8, "three 401s (retries)")
    assert set(api.codes("/v1/checks")) == {401}, api.codes("/v1/checks")
    assert a.alive(), a.output()
    out = a.output()
    assert "401" in out, out
    assert out.count("rejected: 401") == 1, "401 logged once: " + out
    # The operator fixes the server side; the agent picks up without restart.
    api.token = "a-wrong-token"
    api.wait_state(1, "up", 8)
    assert "GET /v1/checks ok again" in a.output(), a.output()
    assert a.stop() == 0


@test
@wrap
def test_servers_independent():
    web = started(HttpBackend(free_port()))
    checks = [check(1, "http://127.0.0.1:%d/" % web.port),
              check(2, "tcp://127.0.0.1:%d" % web.port)]
    hole = started(TcpListener(free_port(), hold=True))     # accepts, never answers
    api1 = started(FakeApi(free_port(), TOKEN, checks))
    api2 = FakeApi(free_port(), TOKEN, checks)               # down at first
    _stoppers.append(api2)
    a = agent(["http://127.0.0.1:%d" % hole.port, url_of(api1), url_of(api2)])
    api1.wait_state(1, "up", 8)
    # A hanging and a refusing server do not delay reports to api1: no gap
    # much longer than the check interval.
    time.sleep(3)
    times = [t for t, _ in api1.all_reports()]
    recent = [t for t in times if t > times[-1] - 3]
    gaps = [b - a_ for a_, b in zip(recent, recent[1:])]
    assert len(recent) >= 3 and max(gaps) < 1.6, "gaps %s" % gaps
    # api2 comes up: it gets the full latest state of every check.
    api2.start()
    t0 = time.monotonic()
    api2.wait(lambda: {1, 2} <= set(api2.latest()), 5, "full state at api2")
    first_ids = set()
    for t, b in api2.all_reports():
        first_ids |= {r["id"] for r in b["results"]}
        break
    assert first_ids == {1, 2}, "first report to api2 carried %s" % first_ids
    assert api2.latest()[1][1]["state"] == "up", api2.latest()
    assert api2.all_reports()[0][0] - t0 < 4
    # api1 goes away and comes back: it gets the full state again.
    api1.stop()
    time.sleep(1.5)
    n_before = len(api1.all_reports())
    api1.start()
    api1.wait(lambda: len(api1.all_reports()) > n_before, 5, "api1 reports again")
    ids = {r["id"] for r in api1.all_reports()[n_before][1]["results"]}
    assert ids == {1, 2}, "resend after reconnect carried %s" % ids
    out = a.output()
    assert out.count("server http://127.0.0.1:%d: POST /v1/reports failed" % api1.port) == 1, out
    assert a.stop() == 0


@test
@wrap
def test_check_list_changes():
    web = started(HttpBackend(free_port()))
    api = started(FakeApi(free_port(), TOKEN, [check(1, "http://127.0.0.1:%d/" % web.port)]))
    a = agent([url_of(api)])
    api.wait_state(1, "up", 8)
    api.set_checks([check(2, "tcp://127.0.0.1:%d" % web.port),
                    check(3, "ftp://127.0.0.1/")])          # invalid: skipped, logged
    t0 = time.monotonic()
    api.wait_state(2, "up", 8, since=t0)
    time.sleep(1.0)
    t1 = time.monotonic()
    time.sleep(1.5)
    late = [r["id"] for t, b in api.all_reports() if t > t1 for r in b["results"]]
    assert late and 1 not in late and 3 not in late, late
    assert 422 not in api.codes("/v1/reports")[-3:], api.codes("/v1/reports")
    out = a.output()
    assert "checks[1].url" in out and "scheme" in out, out
    assert a.stop() == 0


@test
@wrap
def test_large_check_list_is_split():
    """2100 checks: every result arrives, no request carries over 2000."""
    closed = free_port()
    checks = [check(i, "tcp://127.0.0.1:%d" % closed, rise=1, fall=1) for i in range(1, 2101)]
    api = started(FakeApi(free_port(), TOKEN, checks))
    a = agent([url_of(api)])
    api.wait(lambda: len([1 for t, r in api.latest().values() if r["state"] == "down"]) == 2100,
             10, "2100 checks down")
    # The periodic full report (all 2100) must have been split 2000 + rest.
    api.wait(lambda: 2000 in [len(b["results"]) for _, b in api.all_reports()], 5,
             "a full report split at 2000")
    sizes = [len(b["results"]) for _, b in api.all_reports()]
    assert max(sizes) <= 2000, max(sizes)
    assert set(api.codes("/v1/reports")) == {200}, set(api.codes("/v1/reports"))
    assert a.stop() == 0


@test
@wrap
def test_signals_and_usage():
    api = started(FakeApi(free_port(), TOKEN, []))
    for sig in (signal.SIGTERM, signal.SIGINT):
        n = len(api.codes("/v1/checks"))
        a = agent([url_of(api)])
        api.wait(lambda: len(api.codes("/v1/checks")) > n, 5, "first fetch")
        a.signal(sig)
        a.p.wait(5)
        assert a.p.returncode == 0, (sig, a.p.returncode, a.output())
    # Bad command lines: clear error, non-zero exit.
    for args, msg in [([], "--name"),
                      (["--name", "x", "--region", "r", "--server", "ftp://x",
                        "--token-file", token_file()], "--server ftp://x"),
                      (["--name", "x", "--region", "r", "--server", url_of(api),
                        "--token-file", "/nonexistent/token"], "/nonexistent/token"),
                      (["--name", "x", "--region", "r", "--lat", "95"], "--lat")]:
        p = Proc([os.path.join(BIN, "gslb-probe")] + args)
        p.p.wait(5)
        assert p.p.returncode not in (0, None), (args, p.output())
        assert msg in p.output(), (args, p.output())


if __name__ == "__main__":
    run()
