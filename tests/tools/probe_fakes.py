"""Loopback test doubles for the probe agent (tests/integration/test_probe.py)
and for health tests of dnsd: a fake dnsd API, HTTP/HTTPS backends that can
be stopped and started, a TCP listener, a "black hole" that accepts and never
answers, and a UDP DNS responder with a configurable rcode. Everything runs
in daemon threads of the test process on 127.0.0.1 and is stopped by .stop().
"""
import json
import os
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TIME_FACTOR = max(1.0, float(os.environ.get("GSLB_TIME_FACTOR") or 1))


class _Quiet(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        self.server.owner.conns.add(self.connection)

    def finish(self):
        super().finish()
        self.server.owner.conns.discard(self.connection)

    def log_message(self, *a):
        pass


class _Http6(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def _family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


class _Server:
    """An HTTP(S) server in a thread; stop() closes the port (connections
    are then refused), start() opens it again on the same port."""

    def __init__(self, port, handler, ssl_ctx=None, host="127.0.0.1"):
        self.host = host
        self.port = port
        self.handler = handler
        self.ssl_ctx = ssl_ctx
        self.httpd = None
        self.thread = None
        self.conns = set()

    def start(self):
        cls = _Http6 if ":" in self.host else ThreadingHTTPServer
        cls.allow_reuse_address = True
        self.httpd = cls((self.host, self.port), self.handler)
        self.httpd.daemon_threads = True
        self.httpd.owner = self
        if self.ssl_ctx:
            self.httpd.socket = self.ssl_ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join(5)
            self.httpd = None
            # Like a killed process: open keep-alive connections die too.
            for c in list(self.conns):
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    @property
    def running(self):
        return self.httpd is not None


class FakeApi(_Server):
    """GET /v1/checks and POST /v1/reports like dnsd's API (PROTOCOL.md):
    401 without the token, 422 for ids not in the check list."""

    def __init__(self, port, token, checks):
        self.token = token
        self.checks = list(checks)
        self.generation = 1
        self.lock = threading.Lock()
        self.reports = []        # (monotonic time, parsed body)
        self.status = []         # (monotonic time, path, code)
        super().__init__(port, _ApiHandler)

    def set_checks(self, checks):
        with self.lock:
            self.checks = list(checks)
            self.generation += 1

    def note(self, path, code):
        with self.lock:
            self.status.append((time.monotonic(), path, code))

    def codes(self, path):
        with self.lock:
            return [c for _, p, c in self.status if p == path]

    def all_reports(self):
        with self.lock:
            return list(self.reports)

    def latest(self):
        """id -> (time received, result) of the newest result per id."""
        out = {}
        for t, body in self.all_reports():
            for r in body["results"]:
                out[r["id"]] = (t, r)
        return out

    def wait(self, pred, timeout, what):
        # A sanitizer build (make asan/tsan) gets longer (GSLB_TIME_FACTOR).
        timeout *= TIME_FACTOR
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = pred()
            if v:
                return v
            time.sleep(0.05)
        raise AssertionError("timed out after %.1fs waiting for %s; last results: %s"
                             % (timeout, what, json.dumps(self.latest(), default=str)[:1500]))

    def wait_state(self, eid, state, timeout, since=0.0):
        """Time at which eid was first reported in state after since."""
        def pred():
            for t, body in self.all_reports():
                if t < since:
                    continue
                for r in body["results"]:
                    if r["id"] == eid and r["state"] == state:
                        return t
            return None
        return self.wait(pred, timeout, "endpoint %d %s" % (eid, state))


class _ApiHandler(_Quiet):
    def _send(self, code, doc):
        data = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.server.owner.note(self.path, code)

    def _authorized(self):
        api = self.server.owner
        return self.headers.get("Authorization", "") == "Bearer " + api.token

    def do_GET(self):
        api = self.server.owner
        if self.path != "/v1/checks":
            return self._send(404, {"error": "no such resource"})
        if not self._authorized():
            return self._send(401, {"error": "missing or wrong bearer token"})
        with api.lock:
            doc = {"generation": api.generation, "checks": api.checks}
        self._send(200, doc)

    def do_POST(self):
        api = self.server.owner
        n = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(n)
        if self.path != "/v1/reports":
            return self._send(404, {"error": "no such resource"})
        if not self._authorized():
            return self._send(401, {"error": "missing or wrong bearer token"})
        try:
            body = json.loads(raw)
            assert isinstance(body["agent"], str) and isinstance(body["region"], str)
            assert isinstance(body["results"], list)
            for r in body["results"]:
                assert r["state"] in ("up", "down", "unknown"), r
                assert isinstance(r["ok"], bool) and isinstance(r["ts"], (int, float)), r
                assert r["rtt_ms"] is None or r["rtt_ms"] >= 0, r
        except Exception as e:
            return self._send(400, {"error": "malformed: %r" % e})
        with api.lock:
            known = {c["id"] for c in api.checks}
        for i, r in enumerate(body["results"]):
            if r["id"] not in known:
                return self._send(422, {"error": "results[%d]: unknown endpoint id %d" % (i, r["id"])})
        with api.lock:
            api.reports.append((time.monotonic(), body))
        self._send(200, {"ok": True, "accepted": len(body["results"])})


class _BackendHandler(_Quiet):
    def do_GET(self):
        b = self.server.owner
        data = b.body.encode()
        self.send_response(b.code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        b.hits += 1


class HttpBackend(_Server):
    """Answers every GET with code and body."""

    def __init__(self, port, code=200, body="ok\n", ssl_ctx=None, host="127.0.0.1"):
        self.code = code
        self.body = body
        self.hits = 0
        super().__init__(port, _BackendHandler, ssl_ctx, host)


def self_signed(dirpath, cn="localhost"):
    """A self-signed certificate for localhost/127.0.0.1 (openssl CLI);
    returns a server SSLContext."""
    key = os.path.join(dirpath, "key.pem")
    crt = os.path.join(dirpath, "crt.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=" + cn,
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    return ctx


class TcpListener:
    """Accepts connections; closes them at once, or (hold=True) keeps them
    open without a byte: a server that hangs."""

    def __init__(self, port, hold=False, host="127.0.0.1"):
        self.host = host
        self.port = port
        self.hold = hold
        self.held = []
        self.sock = None

    def start(self):
        s = socket.socket(_family(self.host), socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self.port))
        s.listen(64)
        s.settimeout(0.1)
        self.sock = s
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()
        return self

    def _loop(self):
        s = self.sock
        while self.sock is s:
            try:
                c, _ = s.accept()
            except (socket.timeout, OSError):
                continue
            if self.hold:
                self.held.append(c)
            else:
                c.close()

    def stop(self):
        s, self.sock = self.sock, None
        if s:
            s.close()
            self.thread.join(5)
        for c in self.held:
            c.close()
        self.held = []


class DnsResponder:
    """UDP DNS server: answers every query with the same header rcode (no
    records), echoing id and question (RFC 1035 4.1.1)."""

    def __init__(self, port, rcode=0, host="127.0.0.1"):
        self.host = host
        self.port = port
        self.rcode = rcode
        self.queries = 0
        self.sock = None

    def start(self):
        s = socket.socket(_family(self.host), socket.SOCK_DGRAM)
        s.bind((self.host, self.port))
        s.settimeout(0.1)
        self.sock = s
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()
        return self

    def _loop(self):
        s = self.sock
        while self.sock is s:
            try:
                q, addr = s.recvfrom(1500)
            except (socket.timeout, OSError):
                continue
            if len(q) < 12:
                continue
            self.queries += 1
            flags = 0x8000 | (q[2] & 0x01) << 8 | 0x0400 | self.rcode   # QR, RD copied, AA
            resp = q[:2] + flags.to_bytes(2, "big") + q[4:6] + b"\0\0\0\0\0\0" + q[12:]
            s.sendto(resp, addr)

    def stop(self):
        s, self.sock = self.sock, None
        if s:
            s.close()
            self.thread.join(5)
