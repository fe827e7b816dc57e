#!/usr/bin/python3
"""Webhooks (notify-url): a real dnsd with a checked endpoint and a real
agent POSTs each health transition as JSON to a receiver on loopback; a
receiver that fails gets the same notification again after 1 s, 2 s, ...
(backoff) until it accepts it; a receiver that never answers blocks nothing
(DNS answers, the API and the next transition go on); a bad URL stops
dnsd --check and dnsd with a reason; dnsd_notify_* metrics count it all."""
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from gslbtest import (BIN, ZONES, Dnsd, Proc, answer_texts, free_port, gslbctl,  # noqa: E402
                      on_cleanup, run, test, tmpdir, wait_for)

SVC = "www.gslb.example.com."
ZONE = os.path.join(ZONES, "gslb.example.com.zone")


class Receiver:
    """Records every POST (time, path, JSON body); answers the first
    `fail` with 503, then 200; with hang set, never answers."""

    def __init__(self, fail=0, hang=False):
        self.got, self.fail, self.hang = [], fail, hang
        self.lock = threading.Lock()
        self.release = threading.Event()
        owner = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with owner.lock:
                    owner.got.append((time.monotonic(), self.path,
                                      dict(self.headers), json.loads(body)))
                    failing = owner.fail > 0
                    owner.fail -= 1 if failing else 0
                if owner.hang:
                    owner.release.wait(30)
                    return
                self.send_response(503 if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.port = free_port()
        self.srv = ThreadingHTTPServer(("127.0.0.1", self.port), H)
        self.srv.daemon_threads = True
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        on_cleanup(self.stop)

    def stop(self):
        self.release.set()
        self.srv.shutdown()
        self.srv.server_close()

    def bodies(self):
        with self.lock:
            return [g[3] for g in self.got]


class Setup:
    def __init__(self, receiver, path="/hook?src=dnsd"):
        d = tmpdir()
        self.db = os.path.join(d, "gslb.db")
        tok = os.path.join(d, "token")
        with open(tok, "w") as f:
            f.write("notify-token\n")
        self.backend_port = free_port()
        self.backend = subprocess.Popen(
            [sys.executable, "-m", "http.server", "--bind", "127.0.0.1",
             str(self.backend_port)], cwd=d, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        on_cleanup(self.stop_backend)
        gslbctl(self.db, "init")
        gslbctl(self.db, "service", "add", SVC, "--policy", "failover")
        gslbctl(self.db, "endpoint", "add", SVC, "192.0.2.1", "--check",
                "tcp://127.0.0.1:%d" % self.backend_port, "--check-interval", "1",
                "--check-rise", "1", "--check-fall", "1")
        gslbctl(self.db, "endpoint", "add", SVC, "192.0.2.2", "--priority", "5")
        api_port = free_port()
        self.api = "http://127.0.0.1:%d" % api_port
        self.dnsd = Dnsd(["--zone", ZONE, "--db", self.db, "--api", "127.0.0.1:%d" % api_port,
                          "--api-token-file", tok, "--check-interval", "1", "--threads", "1",
                          "--notify-url", "http://127.0.0.1:%d%s" % (receiver.port, path)])
        self.agent = Proc([os.path.join(BIN, "gslb-probe"), "--name", "probe-1", "--region",
                           "eu", "--server", self.api, "--token-file", tok, "--interval", "1"])

    def stop_backend(self):
        if self.backend.poll() is None:
            self.backend.terminate()
            self.backend.wait(10)

    def metrics(self):
        with urllib.request.urlopen(self.api + "/metrics", timeout=5) as r:
            text = r.read().decode()
        return {ln.split()[0]: float(ln.split()[1]) for ln in text.splitlines()
                if ln.startswith("dnsd_notify_")}


def transitions(bodies, state):
    return [b for b in bodies if b["state"] == state and b["target"] == "192.0.2.1"]


@test
def test_transitions_are_posted():
    r = Receiver()
    s = Setup(r)
    assert wait_for(lambda: transitions(r.bodies(), "up"), 10), (r.bodies(), s.dnsd.output())
    s.stop_backend()
    assert wait_for(lambda: transitions(r.bodies(), "down"), 10), (r.bodies(), s.dnsd.output())
    b = transitions(r.bodies(), "down")[0]
    assert b["kind"] == "health" and b["service"] == SVC and b["subject"] == SVC + " 192.0.2.1", b
    assert "up -> down" in b["text"] and b["stale"] is False, b
    assert abs(b["at"] - time.time()) < 30 and b["time"].endswith("Z") and b["node"], b
    _, path, headers, _ = r.got[-1]
    assert path == "/hook?src=dnsd", path
    assert headers["Content-Type"] == "application/json", headers
    assert headers["User-Agent"].startswith("dnsd/"), headers
    m = s.metrics()
    assert m["dnsd_notify_sent_total"] >= 2 and m["dnsd_notify_queued"] == 0, m
    assert m["dnsd_notify_dropped_total"] == 0, m


@test
def test_retries_with_backoff():
    r = Receiver(fail=3)
    s = Setup(r)
    # the first transition (unknown -> up) is refused three times, then taken
    assert wait_for(lambda: len(r.got) >= 4, 15), (r.got, s.dnsd.output())
    times = [g[0] for g in r.got[:4]]
    bodies = [g[3] for g in r.got[:4]]
    assert all(b == bodies[0] for b in bodies), bodies      # the same notification
    gaps = [b - a for a, b in zip(times, times[1:])]
    for gap, want in zip(gaps, (1, 2, 4)):
        assert want - 0.2 <= gap <= want + 1.5, gaps
    assert wait_for(lambda: s.metrics()["dnsd_notify_sent_total"] >= 1, 5), s.metrics()
    m = s.metrics()
    assert m["dnsd_notify_retries_total"] == 3, m
    assert "retrying with backoff" in s.dnsd.output(), s.dnsd.output()


@test
def test_hanging_receiver_blocks_nothing():
    r = Receiver(hang=True)
    s = Setup(r)
    assert wait_for(lambda: len(r.got) >= 1, 10), s.dnsd.output()
    # a notification is in flight and unanswered: DNS and the API go on
    t0 = time.monotonic()
    for _ in range(20):
        assert answer_texts(s.dnsd.udp(SVC)) in (["192.0.2.1"], ["192.0.2.2"])
        with urllib.request.urlopen(s.api + "/v1/status", timeout=2) as resp:
            assert resp.status == 200
    assert time.monotonic() - t0 < 5
    # and health keeps moving: the failover happens while the hook hangs
    s.stop_backend()
    assert wait_for(lambda: answer_texts(s.dnsd.udp(SVC)) == ["192.0.2.2"], 10), \
        s.dnsd.output()
    assert s.metrics()["dnsd_notify_queued"] >= 1


@test
def test_bad_url_refused():
    for url, why in (("https://127.0.0.1/x", "scheme 'https' is not supported"),
                     ("ftp://h/", "scheme 'ftp'"), ("no-url", "not a URL"),
                     ("http://user@h/", "user info")):
        for extra in (["--check"], ["--listen", "127.0.0.1:%d" % free_port()]):
            p = subprocess.run([os.path.join(BIN, "dnsd"), "--zone", ZONE,
                                "--notify-url", url] + extra,
                               capture_output=True, text=True, timeout=20)
            assert p.returncode != 0 and why in p.stderr, (url, extra, p.stderr)


if __name__ == "__main__":
    run()
