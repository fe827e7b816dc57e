#!/usr/bin/python3
"""Flap damping end to end with the real binaries (dnsd, gslb-probe, HTTP
backends on loopback): an endpoint whose backend alternates up and down every
second is suppressed after a few changes and stays out of the answers while
it flaps (no answer flapping), is shown in /v1/status, /metrics and gslbctl
explain, and comes back once stable after its penalty decays; a backend that
drops 10% of the checks at random never flaps in the answers (three agents,
fall 3, quorum, damping)."""
import json
import os
import random
import re
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

from gslbtest import (BIN, ZONES, Dnsd, Proc, answer_texts, free_port,  # noqa: E402
                      gslbctl, on_cleanup, run, test, tmpdir, wait_for)

TOKEN = "damping-test-token"
SVC = "dp.gslb.example.com."
A, B = "192.0.2.1", "192.0.2.2"


class Backend:
    """HTTP health backend; mode() decides each answer: 'up' (200), 'down'
    (503) or 'drop' (close without answering)."""

    def __init__(self, mode):
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                m = outer.mode()
                if m == "drop":
                    self.close_connection = True
                    try:
                        self.connection.shutdown(2)
                    except OSError:
                        pass
                    return
                code = 200 if m == "up" else 503
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.mode = mode
        self.port = free_port()
        self.srv = ThreadingHTTPServer(("127.0.0.1", self.port), H)
        self.srv.daemon_threads = True
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        on_cleanup(self.stop)

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()

    @property
    def url(self):
        return "http://127.0.0.1:%d/health" % self.port


class Setup:
    def __init__(self, url_a, url_b, rise, fall, interval, agents=1, damping=(), ttl=5):
        d = tmpdir()
        self.db = os.path.join(d, "gslb.db")
        self.token_file = os.path.join(d, "token")
        with open(self.token_file, "w") as f:
            f.write(TOKEN + "\n")
        gslbctl(self.db, "init")
        gslbctl(self.db, "service", "add", SVC, "--policy", "failover", "--ttl", ttl)
        for t, url, prio in ((A, url_a, 1), (B, url_b, 2)):
            gslbctl(self.db, "endpoint", "add", SVC, t, "--priority", prio, "--check", url,
                    "--check-interval", interval, "--check-rise", rise, "--check-fall", fall,
                    "--check-timeout", 0.5)
        if damping:
            gslbctl(self.db, "damping", SVC, *damping)
        self.api_port = free_port()
        self.api = "http://127.0.0.1:%d" % self.api_port
        self.dnsd = Dnsd(["--zone", os.path.join(ZONES, "gslb.example.com.zone"),
                          "--db", self.db, "--api", "127.0.0.1:%d" % self.api_port,
                          "--api-token-file", self.token_file, "--check-interval", "1",
                          "--threads", "2"])
        self.agents = []
        for i in range(agents):
            self.agents.append(Proc([os.path.join(BIN, "gslb-probe"), "--name", "p%d" % i,
                                     "--region", "r%d" % i, "--server", self.api,
                                     "--token-file", self.token_file, "--interval", "1"]))

    def answer(self):
        return answer_texts(self.dnsd.udp(SVC))

    def ttl(self):
        r = self.dnsd.udp(SVC)
        return r.answer[0].ttl if r.answer else None

    def get(self, path):
        with urllib.request.urlopen(self.api + path, timeout=2) as r:
            return r.read().decode()

    def damping(self):
        return json.loads(self.get("/v1/status")).get("damping", {})


def watch(st, seconds, interval=0.1):
    """Answers sampled for seconds: list of (t, first answer)."""
    out = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        a = st.answer()
        out.append((time.monotonic() - t0, a[0] if a else None))
        time.sleep(interval)
    return out


def changes(samples):
    return sum(1 for x, y in zip(samples, samples[1:]) if x[1] != y[1])


@test
def test_flapping_endpoint_is_suppressed():
    flapping = [True]
    a = Backend(lambda: ("up" if int(time.time()) % 2 == 0 else "down")
                if flapping[0] else "up")
    b = Backend(lambda: "up")
    st = Setup(a.url, b.url, rise=1, fall=1, interval=1,
               damping=["--half-life", "4", "--suppress", "2500", "--reuse", "800",
                        "--max-suppress", "30"], ttl=60)
    # Suppressed within a few changes.
    assert wait_for(lambda: any(v["suppressed"] for v in st.damping().values()),
                    timeout=15), (st.damping(), st.dnsd.output())
    assert "suppressed by flap damping" in st.dnsd.output()
    d = next(v for v in st.damping().values() if v["suppressed"])
    assert d["endpoint"] == "%s %s" % (SVC, A) and d["penalty"] > 2500, d
    assert d["reuse_at"] and d["reuse_at"] > time.time(), d
    m = st.get("/metrics")
    assert re.search(r'^dnsd_endpoint_damping_suppressed\{service="%s",target="%s"\} 1$'
                     % (re.escape(SVC), re.escape(A)), m, re.M), m
    # While it keeps flapping, the answers do not.
    samples = watch(st, 6)
    assert changes(samples) == 0 and samples[0][1] == B, samples
    # TTL never past the time A may come back (service TTL 60).
    for _ in range(10):
        d = next(v for v in st.damping().values() if v["endpoint"].endswith(A))
        ttl = st.ttl()
        assert ttl <= max(0, d["reuse_at"] - time.time()) + 1 and ttl < 60, (ttl, d)
    ex = gslbctl(st.db, "explain", SVC, "--client", "198.51.100.1").stdout
    assert "suppressed by damping until" in ex and "(penalty" in ex, ex
    # Stable again: back after the penalty decays below reuse (half-life
    # 4 s; the ceiling bounds it to max-suppress 30 s).
    flapping[0] = False
    t0 = time.monotonic()
    assert wait_for(lambda: st.answer() == [A], timeout=35, interval=0.2), st.damping()
    took = time.monotonic() - t0
    assert took > 2, "reused after %.1f s: the penalty cannot have decayed" % took
    assert "flap damping ends" in st.dnsd.output()
    # Stable: the service's TTL again.
    assert wait_for(lambda: st.ttl() == 60, timeout=5), st.ttl()
    for p in st.agents:
        p.stop()


@test
def test_lossy_backend_never_flaps():
    rng = random.Random(20261203)
    lock = threading.Lock()
    seen = {"drop": 0, "up": 0}

    def lossy():
        with lock:
            m = "drop" if rng.random() < 0.10 else "up"
            seen[m] += 1
            return m

    a = Backend(lossy)
    b = Backend(lambda: "up")
    st = Setup(a.url, b.url, rise=2, fall=3, interval=1, agents=3)
    assert wait_for(lambda: st.answer() == [A], timeout=15)
    samples = watch(st, 30, interval=0.1)
    assert changes(samples) == 0 and samples[0][1] == A, [
        s for s in samples if s[1] != A][:5]
    for p in st.agents:
        p.stop()
    # The checks did meet the losses (about one in ten).
    assert seen["drop"] >= 3 and 0.03 < seen["drop"] / (seen["drop"] + seen["up"]) < 0.2, seen
    assert "-> down" not in st.dnsd.output(), st.dnsd.output()
    print("  checks: %d answered, %d dropped" % (seen["up"], seen["drop"]))


if __name__ == "__main__":
    run()
