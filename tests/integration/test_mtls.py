#!/usr/bin/python3
"""Mutual TLS on dnsd's API (--api-tls-client-ca): a CA, a server
certificate and agent certificates made here with the openssl CLI. A
gslb-probe with a client certificate and no token reports, and an
endpoint's health and DNS answer follow a real backend on loopback; a
certificate for one agent reporting as another gets 403, one naming an
unknown agent or none gets 403, one from another CA fails the handshake;
optional mode takes token-only clients, require mode refuses them at the
handshake; removing an agent from the credentials file, or changing the CA
file, applies on SIGHUP; /v1/status says how each agent authenticated;
bad settings stop dnsd --check with a reason."""
import http.client
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import dns.rcode  # noqa: E402

from gslbtest import (BIN, ZONES, Dnsd, Proc, answer_texts, free_port,  # noqa: E402
                      gslbctl, on_cleanup, run, test, tmpdir, wait_for)

FO = "fo.gslb.example.com."
TOK = {"us-1": "agent-us-1-token-c4e2a913", "admin": "admin-token-0b9e44f1d2c3"}


def write(path, text, mode=0o600):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def creds_text(agents=("eu-1", "eu-2")):
    return "".join("agent %s cert\n" % a for a in agents) + \
        "agent us-1 %s\nadmin ops %s\n" % (TOK["us-1"], TOK["admin"])


def make_pki(d):
    """CAs ca, ca2 and rogue; server.pem for 127.0.0.1 (by ca); client
    certificates by ca: eu-1, eu-1b (a second one for eu-1), eu-2 (URI
    gslb-agent:NAME), ghost (an agent the credentials do not name), noname
    (CN eu-1, no URI); by rogue:
    rogue-eu-1; by ca2: ca2-eu-1. Returns NAME -> (cert, key)."""
    def ossl(*args):
        subprocess.run(["openssl"] + list(args), cwd=d, check=True, capture_output=True,
                       timeout=60)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    for ca in ("ca", "ca2", "rogue"):
        ossl("req", "-x509", *ec, "-keyout", ca + ".key", "-out", ca + ".pem", "-days", "2",
             "-subj", "/CN=test " + ca)
    leaves = [("server", "ca", "dnsd", "subjectAltName=IP:127.0.0.1\n"
               "extendedKeyUsage=serverAuth\n")]
    for name, ca, agent in (("eu-1", "ca", "eu-1"), ("eu-1b", "ca", "eu-1"),
                            ("eu-2", "ca", "eu-2"),
                            ("ghost", "ca", "ghost"), ("rogue-eu-1", "rogue", "eu-1"),
                            ("ca2-eu-1", "ca2", "eu-1")):
        leaves.append((name, ca, agent, "subjectAltName=URI:gslb-agent:%s\n"
                       "extendedKeyUsage=clientAuth\n" % agent))
    leaves.append(("noname", "ca", "eu-1", "extendedKeyUsage=clientAuth\n"))
    out = {}
    for name, ca, cn, ext in leaves:
        ossl("req", *ec, "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn)
        write(os.path.join(d, name + ".ext"), ext)
        ossl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
             "-CAcreateserial", "-out", name + ".pem", "-days", "2", "-extfile", name + ".ext")
        out[name] = (os.path.join(d, name + ".pem"), os.path.join(d, name + ".key"))
    for ca in ("ca", "ca2", "rogue"):
        out[ca] = os.path.join(d, ca + ".pem")
    out["dir"] = d
    return out


def make_crl(pki, revoke=()):
    """A CRL of ca (valid two days) revoking the certificates named."""
    d = pki["dir"]
    write(os.path.join(d, "ca.cnf"), "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\n"
          "default_md = sha256\ndefault_crl_days = 2\n")
    write(os.path.join(d, "index.txt"), "")
    base = ["openssl", "ca", "-config", "ca.cnf", "-keyfile", "ca.key", "-cert", "ca.pem"]
    for name in revoke:
        subprocess.run(base + ["-revoke", name + ".pem"], cwd=d, check=True,
                       capture_output=True, timeout=60)
    out = os.path.join(d, "crl-%d.pem" % len(revoke))
    subprocess.run(base + ["-gencrl", "-out", out], cwd=d, check=True, capture_output=True,
                   timeout=60)
    return out


class Backend:
    """An HTTP health check target on loopback: 200 while up, else 503."""

    def __init__(self):
        self.up = True
        me = self

        class H(BaseHTTPRequestHandler):
            def do_GET(self):
                code = 200 if me.up else 503
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok" if code == 200 else b"no")

            def log_message(self, *a):
                pass
        self.port = free_port()
        self.srv = ThreadingHTTPServer(("127.0.0.1", self.port), H)
        self.srv.daemon_threads = True
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        on_cleanup(self.stop)
        self.url = "http://127.0.0.1:%d/" % self.port

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


class Server:
    """dnsd over HTTPS with client certificates verified against client_ca;
    FO fails over from 192.0.2.1 to 192.0.2.2 (checked against checks)."""

    def __init__(self, pki, require=False, checks=("http://127.0.0.1:9/",) * 2,
                 agents=("eu-1", "eu-2"), extra=()):
        d = tmpdir()
        self.pki = pki
        self.db = os.path.join(d, "gslb.db")
        gslbctl(self.db, "init")
        gslbctl(self.db, "service", "add", FO, "--policy", "failover", "--ttl", "5")
        for i, url in ((1, checks[0]), (2, checks[1])):
            gslbctl(self.db, "endpoint", "add", FO, "192.0.2.%d" % i, "--priority", i,
                    "--check", url, "--check-interval", 1, "--check-rise", 1,
                    "--check-fall", 1)
        self.creds = write(os.path.join(d, "creds"), creds_text(agents))
        self.client_ca = os.path.join(d, "client-ca.pem")
        shutil.copy(pki["ca"], self.client_ca)
        self.api_port = free_port()
        self.api = "https://127.0.0.1:%d" % self.api_port
        self.status_cert = "eu-1"
        self.dnsd = Dnsd(["--zone", os.path.join(ZONES, "gslb.example.com.zone"),
                          "--db", self.db, "--api", "127.0.0.1:%d" % self.api_port,
                          "--check-interval", "1", "--threads", "1",
                          "--api-tokens", self.creds,
                          "--api-tls-cert", pki["server"][0], "--api-tls-key", pki["server"][1],
                          "--api-tls-client-ca", self.client_ca,
                          "--api-tls-client-auth", "require" if require else "optional"]
                         + list(extra))
        assert wait_for(lambda: self.try_call("eu-1", "GET", "/v1/status"), 5), \
            self.dnsd.output()

    def ctx(self, cert=None):
        c = ssl.create_default_context(cafile=self.pki["ca"])
        if cert:
            c.load_cert_chain(*self.pki[cert])
        return c

    def call(self, cert, method, path, token=None, body=None):
        """(status, text) as cert (None: no certificate) with token; raises
        OSError or HTTPException when TLS refuses the connection."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.api + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token is not None:
            req.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(req, timeout=3, context=self.ctx(cert)) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def try_call(self, cert, method, path, token=None):
        try:
            return self.call(cert, method, path, token)[0]
        except (OSError, http.client.HTTPException):
            return None

    def refused(self, cert, token=None):
        """True when TLS refuses the client (no HTTP status at all)."""
        try:
            code = self.call(cert, "GET", "/v1/checks", token)[0]
            return False if code else True
        except (OSError, http.client.HTTPException):
            return True

    def status(self):
        code, text = self.call(self.status_cert, "GET", "/v1/status")
        assert code == 200, (code, text)
        return json.loads(text)

    def ep(self, target):
        for s in self.status()["services"]:
            for e in s["endpoints"]:
                if s["name"] == FO and e["target"] == target:
                    return e
        raise KeyError(target)

    def auth_of(self, agent):
        for a in self.status().get("agent_auth", []):
            if a["agent"] == agent:
                return a["auth"]
        return None

    def report(self, cert, agent, state, token=None):
        body = {"agent": agent, "region": "eu",
                "results": [{"id": self.ep("192.0.2.1")["id"], "state": state,
                             "ok": state == "up", "rtt_ms": 5 if state == "up" else None,
                             "ts": time.time(), "detail": "test"}]}
        return self.call(cert, "POST", "/v1/reports", token, body)

    def answer(self):
        r = self.dnsd.udp(FO)
        if r.rcode() != dns.rcode.NOERROR:
            return dns.rcode.to_text(r.rcode())
        return sorted(answer_texts(r))


def probe(s, name, cert=None, token=None):
    argv = [os.path.join(BIN, "gslb-probe"), "--name", name, "--region", "eu",
            "--server", s.api, "--ca-file", s.pki["ca"], "--interval", "1", "--batch", "0.2"]
    if cert:
        argv += ["--cert", s.pki[cert][0], "--key", s.pki[cert][1]]
    if token:
        argv += ["--token-file", write(os.path.join(tmpdir(), "token"), token + "\n")]
    return Proc(argv)


def agents_of(s):
    try:
        return sorted(a["agent"] for a in s.ep("192.0.2.1")["agents"])
    except (OSError, http.client.HTTPException):
        return None


@test
def test_probe_with_certificate_follows_backend():
    pki = make_pki(tmpdir())
    b, spare = Backend(), Backend()
    s = Server(pki, checks=(b.url, spare.url))
    p = probe(s, "eu-1", cert="eu-1")
    assert wait_for(lambda: s.ep("192.0.2.1")["health"] == "up", 10), (s.ep("192.0.2.1"),
                                                                       p.output())
    assert agents_of(s) == ["eu-1"]
    assert s.answer() == ["192.0.2.1"]
    assert s.auth_of("eu-1") == "certificate", s.status().get("agent_auth")
    # The backend fails: the agent's reports move the answer, and back.
    b.up = False
    assert wait_for(lambda: s.answer() == ["192.0.2.2"], 8), (s.ep("192.0.2.1"), p.output())
    b.up = True
    assert wait_for(lambda: s.answer() == ["192.0.2.1"], 8), (s.ep("192.0.2.1"), p.output())
    # A probe with both a certificate and a token reports too (the token
    # decides who it is), shown as token.
    q = probe(s, "us-1", cert="eu-2", token=TOK["us-1"])
    assert wait_for(lambda: agents_of(s) == ["eu-1", "us-1"], 8), (agents_of(s), q.output())
    assert s.auth_of("us-1") == "token"
    # A probe whose certificate comes from another CA never gets through.
    r = probe(s, "eu-2", cert="rogue-eu-1")
    time.sleep(2)
    assert agents_of(s) == ["eu-1", "us-1"], (agents_of(s), r.output())
    assert "eu-2" not in [a["agent"] for a in s.status()["agent_auth"]]
    # Without --cert or --token-file the probe does not start.
    bad = Proc([os.path.join(BIN, "gslb-probe"), "--name", "x", "--region", "eu",
                "--server", s.api])
    bad.p.wait(10)
    assert bad.p.returncode != 0 and "--token-file FILE (or --cert and --key)" in bad.output(), \
        bad.output()
    for x in (p, q, r):
        x.stop()


@test
def test_certificate_identity_and_misuse():
    pki = make_pki(tmpdir())
    s = Server(pki)
    # (certificate, token, agent reported as, want)
    cases = [
        ("eu-1", None, "eu-1", 200),
        ("eu-1", None, "eu-2", 403),        # another agent's name
        ("eu-1", None, "us-1", 403),
        ("eu-2", None, "eu-2", 200),
        ("ghost", None, "ghost", 403),      # the credentials do not name it
        ("noname", None, "eu-1", 403),      # CN only: names no agent
        (None, None, "us-1", 401),          # nothing at all
        (None, TOK["us-1"], "us-1", 200),   # optional: a token alone
        ("eu-1", TOK["us-1"], "us-1", 200),  # the token decides
        ("eu-1", TOK["us-1"], "eu-1", 403),
        ("eu-1", "not-a-known-token-123456", "eu-1", 401),
    ]
    for cert, token, agent, want in cases:
        code, text = s.report(cert, agent, "down", token)
        assert code == want, (cert, token, agent, code, want, text)
        if code == 403 and cert == "ghost":
            assert "'ghost' is not a known agent" in json.loads(text)["error"], text
        if code == 403 and cert == "noname":
            assert "gslb-agent:NAME" in json.loads(text)["error"], text
    # An agent certificate has the agent role only.
    assert s.call("eu-1", "GET", "/v1/checks")[0] == 200
    code, text = s.call("eu-1", "GET", "/v1/config")
    assert code == 403 and "agent credential 'eu-1'" in text, (code, text)
    assert s.call("eu-1", "POST", "/v1/flip", None, {"service": FO, "target": "192.0.2.2"})[0] \
        == 403
    assert s.call("noname", "GET", "/v1/config", TOK["admin"])[0] == 200
    e = s.ep("192.0.2.1")
    assert sorted(a["agent"] for a in e["agents"]) == ["eu-1", "eu-2", "us-1"], e
    auth = {a["agent"]: a["auth"] for a in s.status()["agent_auth"]}
    assert auth == {"eu-1": "certificate", "eu-2": "certificate", "us-1": "token"}, auth
    # Another CA: the handshake fails (optional mode too).
    assert s.refused("rogue-eu-1")
    assert s.refused("ca2-eu-1")
    # Revocation: eu-1 leaves the credentials file; after SIGHUP its
    # certificate is refused, and it is gone from agent_auth.
    write(s.creds, creds_text(agents=("eu-2",)))
    s.dnsd.signal(signal.SIGHUP)
    assert wait_for(lambda: s.report("eu-1", "eu-1", "up")[0] == 403, 5), s.dnsd.output()
    assert "eu-1" not in [a["agent"] for a in s.status()["agent_auth"]]
    assert s.report("eu-2", "eu-2", "up")[0] == 200
    assert s.dnsd.alive()


@test
def test_require_mode_and_ca_reload():
    pki = make_pki(tmpdir())
    s = Server(pki, require=True)
    # No certificate: refused at the handshake, token or not.
    assert s.refused(None, TOK["us-1"])
    assert s.refused(None)
    assert s.report("eu-1", "eu-1", "up")[0] == 200
    # A certificate that names no agent gets through the handshake, and
    # a token then says who it is.
    assert s.report("noname", "us-1", "up", TOK["us-1"])[0] == 200
    assert s.refused("rogue-eu-1")
    # A token-only probe is refused at the handshake; one with another
    # agent's certificate gets 403; one with its certificate reports.
    t = probe(s, "us-1", token=TOK["us-1"])
    w = probe(s, "us-1", cert="eu-1")
    c = probe(s, "eu-2", cert="eu-2")
    assert wait_for(lambda: "eu-2" in (agents_of(s) or []), 8), (agents_of(s), c.output())
    assert s.auth_of("eu-2") == "certificate"
    assert "us-1" in agents_of(s)       # the hand-made report above
    seen = {a["agent"]: a["seen"] for a in s.ep("192.0.2.1")["agents"]}
    time.sleep(2)
    now = {a["agent"]: a["seen"] for a in s.ep("192.0.2.1")["agents"]}
    assert now["us-1"] == seen["us-1"] and now["eu-2"] > seen["eu-2"], (seen, now, t.output())
    assert wait_for(lambda: "certificate required" in t.output(), 5), t.output()
    assert wait_for(lambda: "403" in w.output(), 5), w.output()
    assert "reports as 'eu-1' only, not as 'us-1'" in w.output(), w.output()
    # SIGHUP with another CA in the client CA file: certificates of the
    # old CA are refused from then on, the new CA's accepted.
    shutil.copy(pki["ca2"], s.client_ca)
    s.dnsd.signal(signal.SIGHUP)
    assert wait_for(lambda: s.refused("eu-1"), 5), s.dnsd.output()
    s.status_cert = "ca2-eu-1"
    assert s.report("ca2-eu-1", "eu-1", "up")[0] == 200
    # A broken CA file keeps the one in force.
    write(s.client_ca, "not a certificate\n")
    s.dnsd.signal(signal.SIGHUP)
    assert wait_for(lambda: "keeping the certificate loaded before" in s.dnsd.output(), 5), \
        s.dnsd.output()
    assert "client CA" in s.dnsd.output()
    assert s.report("ca2-eu-1", "eu-1", "up")[0] == 200
    assert s.refused("eu-1")
    for x in (t, w, c):
        x.stop()


@test
def test_revocation_list():
    """api-tls-client-crl: one certificate of an agent is revoked (the
    agent keeps its name and its other certificate), applied on SIGHUP."""
    pki = make_pki(tmpdir())
    crl = os.path.join(tmpdir(), "crl.pem")
    shutil.copy(make_crl(pki), crl)
    s = Server(pki, extra=["--api-tls-client-crl", crl])
    s.status_cert = "eu-2"
    assert s.report("eu-1", "eu-1", "up")[0] == 200
    assert s.report("eu-1b", "eu-1", "up")[0] == 200
    shutil.copy(make_crl(pki, revoke=["eu-1"]), crl)
    # ... and ca2 trusted too, with no list of its own in the file.
    with open(pki["ca"]) as a, open(pki["ca2"]) as b:
        write(s.client_ca, a.read() + b.read())
    s.dnsd.signal(signal.SIGHUP)
    assert wait_for(lambda: s.refused("eu-1"), 5), s.dnsd.output()
    assert s.report("eu-1b", "eu-1", "up")[0] == 200
    assert s.report("eu-2", "eu-2", "up")[0] == 200
    # A trusted CA without a list in the file: its certificates fail
    # (test_require_mode_and_ca_reload shows ca2-eu-1 accepted without a
    # CRL).
    assert s.refused("ca2-eu-1")
    # A file that is no CRL keeps the list in force.
    write(crl, "not a revocation list\n")
    s.dnsd.signal(signal.SIGHUP)
    assert wait_for(lambda: "client CRL %s" % crl in s.dnsd.output(), 5), s.dnsd.output()
    assert s.refused("eu-1")
    assert s.report("eu-1b", "eu-1", "up")[0] == 200


@test
def test_bad_settings_refused():
    pki = make_pki(tmpdir())
    d = tmpdir()
    creds = write(os.path.join(d, "creds"), creds_text())
    junk = write(os.path.join(d, "junk.pem"), "not a certificate\n")
    tls = ["--api-tls-cert", pki["server"][0], "--api-tls-key", pki["server"][1]]
    base = ["--api", "127.0.0.1:%d" % free_port(), "--api-tokens", creds]
    shared = write(os.path.join(d, "token"), "shared-token-0123456789\n")
    cases = [
        (base + ["--api-tls-client-ca", pki["ca"]], "needs api-tls-cert"),
        (base + tls + ["--api-tls-client-auth", "require"], "require needs api-tls-client-ca"),
        (base + tls + ["--api-tls-client-ca", pki["ca"], "--api-tls-client-auth", "always"],
         "expected optional or require"),
        (base + tls + ["--api-tls-client-ca", junk], "client CA %s" % junk),
        (["--api", "127.0.0.1:%d" % free_port(), "--api-token-file", shared] + tls +
         ["--api-tls-client-ca", pki["ca"]], "needs api-tokens"),
        (base + tls + ["--api-tls-client-crl", make_crl(pki)],
         "api-tls-client-crl needs api-tls-client-ca"),
        (base + tls + ["--api-tls-client-ca", pki["ca"], "--api-tls-client-crl", junk],
         "client CRL %s" % junk),
    ]
    for args, want in cases:
        p = subprocess.run([os.path.join(BIN, "dnsd"), "--check", "--listen",
                            "127.0.0.1:%d" % free_port(),
                            "--zone", os.path.join(ZONES, "gslb.example.com.zone")] + args,
                           capture_output=True, text=True, timeout=30)
        assert p.returncode != 0 and want in p.stderr, (args, p.returncode, p.stderr)
    ok = subprocess.run([os.path.join(BIN, "dnsd"), "--check", "--listen",
                         "127.0.0.1:%d" % free_port(),
                         "--zone", os.path.join(ZONES, "gslb.example.com.zone")] + base + tls +
                        ["--api-tls-client-ca", pki["ca"], "--api-tls-client-auth", "require"],
                        capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
    # The probe: --cert without --key, a key that is not the certificate's,
    # a certificate with only http servers.
    srv = ["--name", "eu-1", "--region", "eu", "--server", "https://127.0.0.1:1"]
    for args, want in ((srv + ["--cert", pki["eu-1"][0]], "--cert and --key go together"),
                       (srv + ["--cert", pki["eu-1"][0], "--key", pki["eu-2"][1]], "--cert"),
                       (["--name", "eu-1", "--region", "eu", "--server", "http://127.0.0.1:1",
                         "--cert", pki["eu-1"][0], "--key", pki["eu-1"][1]],
                        "needs an https --server")):
        p = subprocess.run([os.path.join(BIN, "gslb-probe")] + args, capture_output=True,
                           text=True, timeout=30)
        assert p.returncode != 0 and want in p.stderr, (args, p.returncode, p.stderr)


if __name__ == "__main__":
    run()
