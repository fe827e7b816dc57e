#!/usr/bin/python3
"""The API's edges, through a real dnsd: GET /v1/status and /metrics served
from the cache within one snapshot and health generation (same bytes, no
new render; a report makes the next request render again), every error as
JSON also where libevent refuses a request itself (a body over the
caller's limit, api-max-body for admin requests and api-max-report-body for
any other, by Content-Length or as chunks: 413 before it is read, the
connection closed; a malformed request: 400), pipelined requests each
judged, and the Host check against DNS rebinding (421
for names not answered, IP addresses, localhost and api-hosts answered)."""
import json
import os
import re
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from gslbtest import TIME_FACTOR, forget_tests, on_cleanup, run, test  # noqa: E402
from test_trust import TOK, creds_server  # noqa: E402

forget_tests()          # test_trust.py's own tests run in their script


def raw(port, data, host="127.0.0.1", read_all=True, timeout=5):
    """Sends data (bytes, or an iterable of bytes sent one after another
    while the server lets us) and returns (status line, headers dict, body,
    bytes sent before the server stopped reading)."""
    c = socket.create_connection((host, port), timeout=timeout * TIME_FACTOR)
    on_cleanup(c.close)
    sent = 0
    try:
        for part in ([data] if isinstance(data, bytes) else data):
            c.sendall(part)
            sent += len(part)
    except OSError:
        pass                            # the server answered and closed
    reply = b""
    try:
        while True:
            got = c.recv(65536)
            if not got:
                break
            reply += got
            if not read_all and b"\r\n\r\n" in reply:
                break
    except OSError:
        pass
    c.close()
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    hdrs = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return lines[0], hdrs, body, sent


def metric(text, name):
    m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    assert m, (name, text[:2000])
    return float(m.group(1))


def get(s, path):
    status, hdrs, body, _ = raw(s.api_port, (
        "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        % path).encode())
    assert status.startswith("HTTP/1.1 200"), (path, status, body[:300])
    return body


@test
def test_status_and_metrics_cached_per_generation():
    s = creds_server()
    e1 = s.ep("192.0.2.1")["id"]
    code, text = s.report(TOK["eu-1"], "eu-1", "eu", e1, "up")
    assert code == 200, (code, text)
    # Past the next health tick, nothing changes until the next report
    # (checks every 1 s, staleness window 3 s: stay well inside it).
    time.sleep(1.2)
    m0 = get(s, "/metrics").decode()
    a = get(s, "/v1/status")
    b = get(s, "/v1/status")
    m1 = get(s, "/metrics").decode()
    renders = 'dnsd_status_renders_total{doc="%s"}'
    hits = 'dnsd_status_cache_hits_total{doc="%s"}'
    # A tick between two requests may start a new generation (an
    # observation aging): then the pair is retried once.
    if a != b or metric(m1, renders % "metrics") != metric(m0, renders % "metrics"):
        code, text = s.report(TOK["eu-1"], "eu-1", "eu", e1, "up")
        time.sleep(0.3)
        m0 = get(s, "/metrics").decode()
        a = get(s, "/v1/status")
        b = get(s, "/v1/status")
        m1 = get(s, "/metrics").decode()
    # The services part is the same bytes; the second request of the
    # generation rendered nothing.
    sa, sb = json.loads(a), json.loads(b)
    assert sa["services"] == sb["services"], (a[:500], b[:500])
    assert a.split(b',"generation"')[0] == b.split(b',"generation"')[0]
    assert metric(m1, renders % "metrics") == metric(m0, renders % "metrics"), (m0, m1)
    assert metric(m1, hits % "metrics") == metric(m0, hits % "metrics") + 1, (m0, m1)
    assert metric(m1, renders % "status") >= 1
    assert metric(m1, hits % "status") >= 1, m1
    # The per-endpoint families are in the cached part and right.
    assert 'dnsd_endpoint_rtt_seconds{agent="eu-1",service="fo.gslb.example.com.",' \
        'target="192.0.2.1"} 0.005000' in m1, m1
    assert 'dnsd_endpoint_healthy{service="fo.gslb.example.com.",target="192.0.2.1"} 1' in m1
    assert re.search(r'^dnsd_agent_last_report_age_seconds\{agent="eu-1",region="eu"\} ',
                     m1, re.M), m1
    # A report is a new health generation: rendered again, and it shows.
    code, text = s.report(TOK["eu-1"], "eu-1", "eu", e1, "down")
    assert code == 200, (code, text)
    c = json.loads(get(s, "/v1/status"))
    m2 = get(s, "/metrics").decode()
    assert metric(m2, renders % "metrics") == metric(m1, renders % "metrics") + 1
    agents = [ep for sv in c["services"] for ep in sv["endpoints"]
              if ep["id"] == e1][0]["agents"]
    assert agents and agents[0]["state"] == "down", agents
    assert agents[0]["rtt_ms"] is None, agents


@test
def test_oversized_bodies_refused_as_json():
    s = creds_server(["--api-max-report-body", "65536", "--api-max-body", "262144"])
    port = s.api_port

    def head(token, method="POST", path="/v1/reports"):
        auth = "Authorization: Bearer %s\r\n" % token if token else ""
        return ("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s"
                "Content-Type: application/json\r\n" % (method, path, auth))

    def refused(status, hdrs, body, sent, limit, key):
        assert status.startswith("HTTP/1.1 413"), (status, body[:300])
        assert hdrs.get("content-type") == "application/json", hdrs
        err = json.loads(body)["error"]
        assert str(limit) in err and key in err, err
        assert sent < (32 << 20), "the server read %d bytes of a refused body" % sent

    # By Content-Length, refused before the body is read: an agent's
    # report, a request without a token, an admin's write over its limit.
    big = [b" " * 65536] * 1024
    for token, method, path, limit, key in (
            (TOK["eu-1"], "POST", "/v1/reports", 65536, "api-max-report-body"),
            (None, "PUT", "/v1/config", 65536, "api-max-report-body"),
            (TOK["read"], "PUT", "/v1/config", 65536, "api-max-report-body"),
            (TOK["admin"], "PUT", "/v1/config", 262144, "api-max-body")):
        refused(*raw(port, [(head(token, method, path) + "Content-Length: %d\r\n\r\n"
                             % (64 << 20)).encode()] + big), limit, key)
    # The admin's larger limit: a 200 KB body is read and judged (not 413).
    status, _, body, _ = raw(port, (head(TOK["admin"], "PUT", "/v1/config")
                                    + "Content-Length: 200000\r\nConnection: close\r\n\r\n"
                                    ).encode() + b" " * 200000)
    assert status.startswith("HTTP/1.1 400"), (status, body[:300])
    # Chunked: refused once the chunks pass the limit, connection closed.
    chunk = b"%x\r\n%s\r\n" % (16384, b" " * 16384)
    refused(*raw(port, [(head(TOK["eu-1"]) + "Transfer-Encoding: chunked\r\n\r\n").encode()]
                 + [chunk] * 4096), 65536, "api-max-report-body")
    # Requests pipelined on one connection are each judged and answered,
    # chunked ones too.
    rep = json.dumps({"agent": "eu-1", "region": "eu", "results": [
        {"id": s.ep("192.0.2.1")["id"], "state": "up", "ok": True, "rtt_ms": 3,
         "ts": time.time(), "detail": None}]}).encode()
    one = (head(TOK["eu-1"]) + "Content-Length: %d\r\n\r\n" % len(rep)).encode() + rep
    chunked = (head(TOK["eu-1"]) + "Transfer-Encoding: chunked\r\n\r\n").encode() + \
        b"%x\r\n%s\r\n0\r\n\r\n" % (len(rep), rep)
    last = b"GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    status, _, body, _ = raw(port, one + chunked + one + last)
    assert status.startswith("HTTP/1.1 200"), (status, body[:300])
    assert body.count(b"HTTP/1.1 200") == 3, body[:2000]
    assert b'"accepted":1' in body, body[:500]
    # A malformed request gets a JSON 400.
    status, hdrs, body, _ = raw(port, b"GARBAGE\x01 / HTTP/9.9\r\n\r\n")
    assert status.startswith("HTTP/1.1 400"), (status, body)
    assert json.loads(body)["error"], body
    assert s.dnsd.alive()


@test
def test_host_header_checked():
    s = creds_server(["--api-hosts", "gslb.example.net", "--api-hosts", "ops.example.org."])
    port = s.api_port

    def status_with(host):
        h = "" if host is None else "Host: %s\r\n" % host
        st, hdrs, body, _ = raw(port, ("GET /v1/status HTTP/1.1\r\n%sConnection: close\r\n\r\n"
                                       % h).encode())
        return int(st.split()[1]), hdrs, body

    for host in ("127.0.0.1", "127.0.0.1:%d" % port, "[::1]:%d" % port, "localhost",
                 "LOCALHOST:%d" % port, "gslb.example.net", "GSLB.example.net.:80",
                 "ops.example.org", None):
        code, _, body = status_with(host)
        assert code == 200, (host, code, body[:200])
    for host in ("evil.example", "evil.example:%d" % port, "gslb.example.net.evil.example",
                 "127.0.0.1.evil.example", "[::1"):
        code, hdrs, body = status_with(host)
        assert code == 421, (host, code, body[:200])
        assert hdrs.get("content-type") == "application/json", hdrs
        assert "api-hosts" in json.loads(body)["error"], body
    # Every route: the status page and the metrics too.
    for path in ("/", "/metrics", "/v1/config"):
        st, _, body, _ = raw(port, ("GET %s HTTP/1.1\r\nHost: rebound.example\r\n"
                                    "Connection: close\r\n\r\n" % path).encode())
        assert st.startswith("HTTP/1.1 421"), (path, st, body[:200])


if __name__ == "__main__":
    run()
