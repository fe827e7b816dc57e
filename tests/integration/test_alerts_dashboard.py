#!/usr/bin/python3
"""dist/prometheus/dnsd-alerts.yml and dist/grafana/dnsd-dashboard.json
against the real thing: `promtool check rules`, `promtool test rules` on the
alerts' unit tests, and every metric that a rule or a dashboard query names
is exported by a live bin/dnsd (with a store, a checked endpoint, an agent's
report, answers and a reload, so the labelled series exist too; the
dnsd_etcd_* ones by a dnsd following a one-member etcd);
dnsd_build_info carries the version `dnsd --version` prints; the live
exposition passes `promtool check metrics`."""
import json
import os
import re
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

from gslbtest import (BIN, ZONES, Dnsd, EtcdCluster, Proc, free_port, gslbctl,  # noqa: E402
                      run, test, tmpdir, wait_for)

DIST = os.path.join(ROOT, "dist")
RULES = os.path.join(DIST, "prometheus", "dnsd-alerts.yml")
RULE_TESTS = os.path.join(DIST, "prometheus", "dnsd-alerts.test.yml")
DASHBOARD = os.path.join(DIST, "grafana", "dnsd-dashboard.json")
PROMQL_WORDS = {"sum", "by", "rate", "max", "min", "count", "on", "group_left", "time",
                "or", "and", "unless", "without", "avg", "irate", "increase", "label_values",
                "humanizeDuration", "bool", "offset"}


def promtool(*args, stdin=None):
    return subprocess.run(["promtool"] + list(args), capture_output=True, text=True,
                          input=stdin, timeout=60, cwd=os.path.dirname(RULES))


def names_in(expr):
    """Metric names in a PromQL expression: identifiers outside label
    matchers, braces and strings, that are not functions or keywords."""
    expr = re.sub(r'"[^"]*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "{}", expr)
    expr = re.sub(r"\[[^\]]*\]", "[]", expr)
    expr = re.sub(r"\b(by|on|without|group_left|group_right)\s*\([^)]*\)", "", expr)
    out = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        w = m.group(0)
        if w in PROMQL_WORDS or w.startswith("$"):
            continue
        if expr[m.end():m.end() + 1] == "(":   # a function call
            continue
        out.add(w)
    return out


def rule_exprs():
    exprs = []
    with open(RULES) as f:
        for line in f:
            m = re.match(r"\s+expr:\s*(.+)$", line)
            if m:
                exprs.append(m.group(1).strip())
    return exprs


def dashboard_exprs():
    with open(DASHBOARD) as f:
        d = json.load(f)
    exprs = [t["expr"] for p in d["panels"] for t in p.get("targets", [])]
    for v in d.get("templating", {}).get("list", []):
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        m = re.match(r"label_values\((.*),\s*\w+\)$", q or "")
        if m:
            exprs.append(m.group(1))
    return exprs


def live_metrics():
    """A dnsd with everything that makes labelled series: a checked endpoint
    with an agent's reports, answers, a SIGHUP reload. Returns /metrics."""
    d = tmpdir()
    db = os.path.join(d, "gslb.db")
    tok = os.path.join(d, "token")
    with open(tok, "w") as f:
        f.write("metrics-token\n")
    backend = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1",
                                str(free_port())], cwd=d, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    port = int(backend.args[-1])
    try:
        gslbctl(db, "init")
        gslbctl(db, "service", "add", "www.gslb.example.com", "--policy", "failover")
        gslbctl(db, "endpoint", "add", "www.gslb.example.com", "192.0.2.1", "--region", "eu",
                "--check", "http://127.0.0.1:%d/" % port, "--check-interval", "1")
        gslbctl(db, "endpoint", "add", "www.gslb.example.com", "192.0.2.2", "--priority", "5")
        api_port = free_port()
        api = "http://127.0.0.1:%d" % api_port
        dn = Dnsd(["--zone", os.path.join(ZONES, "gslb.example.com.zone"), "--db", db,
                   "--api", "127.0.0.1:%d" % api_port, "--api-token-file", tok,
                   "--threads", "1"])
        agent = Proc([os.path.join(BIN, "gslb-probe"), "--name", "probe-eu", "--region", "eu",
                      "--lat", "50", "--lon", "8", "--server", api, "--token-file", tok,
                      "--interval", "1"])

        def get():
            with urllib.request.urlopen(api + "/metrics", timeout=5) as r:
                return r.read().decode()
        # up by the agent's vote (rise 3 x 1 s): a fresh quorum, not stale
        assert wait_for(lambda: "dnsd_endpoint_rtt_seconds{" in get() and re.search(
            r'^dnsd_endpoint_stale\{[^}]*target="192.0.2.1"\} 0$', get(), re.M), 15), get()
        for _ in range(5):
            dn.udp("www.gslb.example.com.")
        dn.signal(1)   # SIGHUP: a reload, so its metrics have a real value
        assert wait_for(lambda: re.search(r"^dnsd_last_reload_timestamp_seconds [1-9]",
                                          get(), re.M), 5)
        text = get()
        agent.stop()
        dn.stop()
        return text
    finally:
        backend.terminate()
        backend.wait(10)


def live_etcd_metrics():
    """/metrics of a dnsd --etcd following a one-member etcd (the
    dnsd_etcd_* families exist only there)."""
    cluster = EtcdCluster(1)
    d = tmpdir()
    tok = os.path.join(d, "token")
    with open(tok, "w") as f:
        f.write("metrics-token\n")
    api_port = free_port()
    dn = Dnsd(["--zone", os.path.join(ZONES, "gslb.example.com.zone"),
               "--db", os.path.join(d, "replica.db"), "--etcd", cluster.urls[0],
               "--api", "127.0.0.1:%d" % api_port, "--api-token-file", tok, "--threads", "1"])

    def get():
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % api_port, timeout=5) as r:
            return r.read().decode()
    assert wait_for(lambda: "dnsd_etcd_connected 1" in get(), 10), get()
    text = get()
    dn.stop()
    return text


@test
def test_promtool_check_and_unit_tests():
    p = promtool("check", "rules", RULES)
    assert p.returncode == 0 and "SUCCESS" in p.stdout, p.stdout + p.stderr
    p = promtool("test", "rules", RULE_TESTS)
    assert p.returncode == 0 and "SUCCESS" in p.stdout, p.stdout + p.stderr
    # The unit tests can fail: a rule changed under them is caught.
    with open(RULES) as f:
        rules = f.read()
    broken = os.path.join(tmpdir(), "dnsd-alerts.yml")
    with open(broken, "w") as f:
        f.write(rules.replace("dnsd_agent_last_report_age_seconds > 60",
                              "dnsd_agent_last_report_age_seconds > 600"))
    with open(RULE_TESTS) as f:
        tests = f.read().replace("  - dnsd-alerts.yml", "  - " + broken)
    tfile = os.path.join(os.path.dirname(broken), "t.yml")
    with open(tfile, "w") as f:
        f.write(tests)
    p = promtool("test", "rules", tfile)
    assert p.returncode != 0 and "DnsdAgentStale" in p.stdout + p.stderr, p.stdout
    # The same for the shift rollback alert.
    with open(broken, "w") as f:
        f.write(rules.replace("increase(dnsd_shift_rollbacks_total[15m]) > 0",
                              "increase(dnsd_shift_rollbacks_total[15m]) > 1"))
    p = promtool("test", "rules", tfile)
    assert p.returncode != 0 and "DnsdShiftRolledBack" in p.stdout + p.stderr, p.stdout
    # And for etcd.
    with open(broken, "w") as f:
        f.write(rules.replace("dnsd_etcd_connected == 0", "dnsd_etcd_connected == 1"))
    p = promtool("test", "rules", tfile)
    assert p.returncode != 0 and "DnsdEtcdDisconnected" in p.stdout + p.stderr, p.stdout


@test
def test_rules_and_dashboard_use_only_exported_metrics():
    text = live_metrics()
    exported = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
    series = set(re.findall(r"^([a-z_:]+)(?:\{| )", text, re.M))
    assert exported and series <= exported, series - exported
    # each exported family has at least one sample here
    assert exported == series, exported - series
    etcd_text = live_etcd_metrics()
    etcd_exported = set(re.findall(r"^# TYPE (\S+) ", etcd_text, re.M))
    assert "dnsd_etcd_connected" in etcd_exported, etcd_text
    p = promtool("check", "metrics", stdin=etcd_text)
    assert p.returncode == 0, p.stdout + p.stderr
    exported |= etcd_exported
    for what, exprs in (("alert rules", rule_exprs()), ("dashboard", dashboard_exprs())):
        assert len(exprs) >= 5, (what, exprs)
        used = set()
        for e in exprs:
            n = names_in(e)
            assert n, (what, e)
            used |= n
        missing = sorted(used - exported)
        assert not missing, "%s use metrics dnsd does not export: %s" % (what, missing)
        print("%s: %d queries over %d metrics, all exported" % (what, len(exprs), len(used)))
    # the names_in check catches what it should
    assert names_in('sum by (x) (rate(dnsd_nope_total{a="b"}[5m]))') == {"dnsd_nope_total"}
    # dnsd_build_info names the version dnsd --version prints
    ver = subprocess.run([os.path.join(BIN, "dnsd"), "--version"], capture_output=True,
                         text=True, timeout=10).stdout.split()[-1]
    m = re.search(r'^dnsd_build_info\{version="([^"]+)",libevent="[^"]+",openssl="[^"]+",'
                  r'sqlite="[^"]+",ldns="[^"]+"\} 1$', text, re.M)
    assert m and m.group(1) == ver, (ver, m)
    assert re.search(r'^dnsd_endpoint_down\{service="www.gslb.example.com.",'
                     r'target="192.0.2.1"\} 0$', text, re.M), text
    assert re.search(r'^dnsd_endpoint_stale\{service="www.gslb.example.com.",'
                     r'target="192.0.2.1"\} 0$', text, re.M), text
    # endpoints without a check have no health-check series
    assert 'dnsd_endpoint_down{service="www.gslb.example.com.",target="192.0.2.2"}' not in text
    p = promtool("check", "metrics", stdin=text)
    assert p.returncode == 0, p.stdout + p.stderr


if __name__ == "__main__":
    run()
