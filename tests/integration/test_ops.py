#!/usr/bin/python3
"""Operating dnsd: the systemd notify sequence (a fake NOTIFY_SOCKET),
dropping root for the configured user after binding, --help/--version on
every binary, metrics and status over the API."""
import json
import os
import re
import socket
import subprocess
import time
import urllib.request

from gslbtest import BIN, Skip, Dnsd, ZONES, free_port, gslbctl, run, test, tmpdir, wait_for

ZONE_ARGS = ["--zone", os.path.join(ZONES, "example.com.zone"),
             "--zone", os.path.join(ZONES, "gslb.example.com.zone")]


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


@test
def systemd_notify_sequence():
    d = tmpdir()
    path = os.path.join(d, "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(5)
    env = dict(os.environ, NOTIFY_SOCKET=path)
    srv = Dnsd(ZONE_ARGS, env=env)
    msgs = []
    def recv():
        m = s.recv(4096).decode()
        msgs.append(m)
        return m
    expect("READY=1" in recv(), msgs)
    expect("MAINPID=%d" % srv.pid in msgs[0], msgs)
    srv.signal(1)                                   # SIGHUP
    expect("RELOADING=1" in recv(), msgs)
    expect("READY=1" in recv(), msgs)
    srv.signal(15)
    expect("STOPPING=1" in recv(), msgs)
    expect(srv.p.wait(10) == 0, "exit status")
    s.close()


@test
def drops_root_for_the_configured_user():
    if os.geteuid() != 0:
        raise Skip("not root")
    srv = Dnsd(ZONE_ARGS + ["--user", "nobody"])
    with open("/proc/%d/status" % srv.pid) as f:
        uids = [ln.split()[1:] for ln in f if ln.startswith("Uid:")][0]
    expect(all(u == "65534" for u in uids), "uids %s" % uids)
    expect(len(srv.udp("www.example.com.", "A").answer) == 1, "not answering")
    expect("running as user nobody" in srv.output(), srv.output())
    srv.stop()
    p = subprocess.run([os.path.join(BIN, "dnsd"), "--listen", "127.0.0.1:%d" % free_port(),
                        "--user", "no-such-user-here"] + ZONE_ARGS,
                       capture_output=True, text=True, timeout=10)
    expect(p.returncode != 0 and "no-such-user-here" in p.stderr, p.stderr)


@test
def help_and_version_everywhere():
    for prog in ["dnsd", "gslbctl", "gslb-probe"]:
        for flag in ["--help", "--version"]:
            p = subprocess.run([os.path.join(BIN, prog), flag], capture_output=True,
                               text=True, timeout=10)
            expect(p.returncode == 0 and (p.stdout or p.stderr).strip(), (prog, flag, p))


@test
def metrics_and_status_over_the_api():
    d = tmpdir()
    db = os.path.join(d, "g.db")
    tok = os.path.join(d, "token")
    with open(tok, "w") as f:
        f.write("  sekrit \n")
    gslbctl(db, "init")
    gslbctl(db, "service", "add", "www.gslb.example.com", "--policy", "failover")
    gslbctl(db, "endpoint", "add", "www.gslb.example.com", "192.0.2.1")
    gslbctl(db, "service", "add", "www.elsewhere.org", "--policy", "failover")
    import sqlite3
    c = sqlite3.connect(db)
    c.execute("INSERT INTO endpoints (service_id, target) SELECT id, 'not-an-address' "
              "FROM services WHERE name = 'www.gslb.example.com.'")
    c.commit()
    c.close()
    port = free_port()
    srv = Dnsd(ZONE_ARGS + ["--db", db, "--api", "127.0.0.1:%d" % port, "--api-token-file", tok])
    base = "http://127.0.0.1:%d" % port
    def scrape():
        text = urllib.request.urlopen(base + "/metrics", timeout=5).read().decode()
        return text, dict(ln.rsplit(" ", 1) for ln in text.splitlines() if not ln.startswith("#"))
    _, before = scrape()
    srv.udp("www.gslb.example.com.", "A")
    srv.udp("nothere.example.com.", "A")
    srv.tcp("www.example.com.", "AAAA")
    text, after = scrape()
    def delta(name):
        return float(after.get(name, 0)) - float(before.get(name, 0))
    def metric(line):
        return any(ln.startswith(line) for ln in text.splitlines())
    expect(delta('dnsd_queries_total{transport="udp",qtype="A"}') == 2, text)
    expect(delta('dnsd_queries_total{transport="tcp",qtype="AAAA"}') == 1, text)
    expect(delta('dnsd_responses_total{transport="udp",rcode="NXDOMAIN"}') == 1, text)
    expect(delta("dnsd_service_answers_total") == 1, text)
    expect(delta('dnsd_endpoint_answers_total{service="www.gslb.example.com.",target="192.0.2.1"}') == 1,
           text)
    expect(metric('dnsd_zone_last_load_success{file="%s"} 1' % ZONE_ARGS[1]), text)
    expect(metric('dnsd_endpoint_healthy{service="www.gslb.example.com.",target="192.0.2.1"} 1'), text)
    expect(metric("dnsd_services_skipped 1"), text)     # www.elsewhere.org.
    expect(metric("dnsd_db_rows_skipped 1"), text)      # the bad target
    for ln in text.splitlines():                          # text format sanity
        # NAME{LABELS} VALUE (a label value may hold spaces)
        expect(ln.startswith("#") or
               re.match(r'^[A-Za-z_:][A-Za-z0-9_:]*(\{[^}]*\})? \S+$', ln), ln)
    doc = json.loads(urllib.request.urlopen(base + "/v1/status", timeout=5).read())
    names = {v["name"]: v for v in doc["services"]}
    expect(names["www.gslb.example.com."]["served"] is True, doc)
    expect(names["www.elsewhere.org."]["served"] is False, doc)
    expect(doc["db_problems"] == 1 and doc["services_skipped"] == 1, doc)
    expect(doc["generation"] >= 1 and doc["zones"][0]["serial"] == 2026112201, doc)
    # no shared configuration source: the applied revision is an integer 0
    expect(type(doc["config_revision"]) is int and doc["config_revision"] == 0, doc)
    # writes need the token
    req = urllib.request.Request(base + "/v1/reports", data=b"{}", method="POST")
    try:
        urllib.request.urlopen(req, timeout=5)
        expect(False, "report without a token accepted")
    except urllib.error.HTTPError as e:
        expect(e.code == 401, e.code)
    srv.stop()


@test
def configuration_through_the_api():
    d = tmpdir()
    db = os.path.join(d, "g.db")
    tok = os.path.join(d, "token")
    with open(tok, "w") as f:
        f.write("writer-token\n")
    www = "www.gslb.example.com."
    gslbctl(db, "init")
    gslbctl(db, "service", "add", www, "--policy", "failover")
    gslbctl(db, "endpoint", "add", www, "lb-eu.example.net.", "--priority", "10")
    gslbctl(db, "endpoint", "add", www, "lb-us.example.net.", "--priority", "20")
    port = free_port()
    srv = Dnsd(ZONE_ARGS + ["--db", db, "--api", "127.0.0.1:%d" % port, "--api-token-file", tok,
                            "--db-poll-ms", "5000"])     # slow poll: the API must not need it
    base = "http://127.0.0.1:%d" % port
    def call(method, path, body=None, token="writer-token"):
        req = urllib.request.Request(base + path, method=method,
                                     data=None if body is None else
                                     (body if isinstance(body, bytes) else json.dumps(body).encode()))
        if token:
            req.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")
    def answer():
        return [rd.to_text() for rs in srv.udp(www, "A").answer for rd in rs]
    # read without a token; the export format of gslbctl
    code, doc = call("GET", "/v1/config", token=None)
    expect(code == 200 and doc["services"][0]["name"] == www, (code, doc))
    exported = gslbctl(db, "export").stdout
    expect(json.loads(exported) == doc, "API config differs from gslbctl export")
    # writes need the token and change nothing without it
    code, _ = call("POST", "/v1/flip", {"service": www, "target": "lb-us.example.net."}, token=None)
    expect(code == 401 and answer() == ["lb-eu.example.net."], code)
    code, _ = call("POST", "/v1/flip", {"service": www, "target": "lb-us.example.net."}, token="wrong")
    expect(code == 401, code)
    # flip: the very next query answers it (no poll needed)
    code, body = call("POST", "/v1/flip", {"service": www, "target": "lb-us.example.net."})
    expect(code == 200 and body == {"ok": True}, (code, body))
    expect(answer() == ["lb-us.example.net."], answer())
    # drain through the API
    code, _ = call("POST", "/v1/endpoint", {"service": www, "target": "lb-us.example.net.",
                                            "drained": True})
    expect(code == 200 and answer() == ["lb-eu.example.net."], (code, answer()))
    # bad requests change nothing
    for body, want in [(b"{not json", 400), ({"service": www}, 400),
                       ({"service": "nope.gslb.example.com.", "target": "1.2.3.4"}, 422),
                       ({"service": www, "target": "lb-eu.example.net.", "weight": 70000}, 400),
                       ({"service": www, "target": "lb-eu.example.net.", "drained": "yes"}, 400)]:
        code, err = call("POST", "/v1/endpoint", body)
        expect(code == want and "error" in err, (body, code, err))
    code, err = call("POST", "/v1/flip", {"service": www, "target": "not-a-member.example.net."})
    expect(code in (400, 422) and answer() == ["lb-eu.example.net."], (code, err))
    # replace the whole configuration
    doc = json.loads(exported)
    doc["services"][0]["endpoints"] = [e for e in doc["services"][0]["endpoints"]
                                       if e["target"] == "lb-us.example.net."]
    code, _ = call("PUT", "/v1/config", doc)
    expect(code == 200 and answer() == ["lb-us.example.net."], (code, answer()))
    code, err = call("PUT", "/v1/config", {"version": 1, "services": [{"name": "x"}]})
    expect(code == 400 and answer() == ["lb-us.example.net."], (code, err))
    # a known path with the wrong method
    req = urllib.request.Request(base + "/v1/config", method="DELETE")
    try:
        urllib.request.urlopen(req, timeout=5)
        expect(False, "DELETE accepted")
    except urllib.error.HTTPError as e:
        expect(e.code == 405 and "GET" in e.headers["Allow"] and "PUT" in e.headers["Allow"],
               (e.code, e.headers["Allow"]))
    srv.stop()


@test
def promtool_accepts_the_metrics():
    promtool = "/usr/bin/promtool"
    # make deps installs Debian's prometheus package for promtool
    expect(os.path.exists(promtool), "promtool missing: run make deps")
    d = tmpdir()
    tok = os.path.join(d, "token")
    with open(tok, "w") as f:
        f.write("t\n")
    port = free_port()
    srv = Dnsd(ZONE_ARGS + ["--api", "127.0.0.1:%d" % port, "--api-token-file", tok])
    srv.udp("www.example.com.", "A")
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5).read()
    p = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, timeout=30)
    expect(p.returncode == 0, p.stdout.decode() + p.stderr.decode())
    srv.stop()


if __name__ == "__main__":
    run()
