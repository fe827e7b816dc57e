#!/usr/bin/python3
"""One vocabulary: the JSON that gslbctl and dnsd print about the same
things uses the same key names, and every key is documented in one place,
docs/keys.md.

A store with every kind of object (the policies, checks, rules, a running
shift, damping, health reports with RTTs) is read through each output:
`gslbctl export`, `GET /v1/config`, `GET /v1/services`, `gslbctl status
--json`, `GET /v1/status` and `gslbctl explain --json`. For each output the
set of key paths (`services[].endpoints[].weight`) must equal the set
docs/keys.md lists for it, both ways: a key added without its line in the
document, or a line for a key no longer printed, fails. And the same
endpoint seen through different outputs has the same values under the
shared names (target, weight, priority, region, admin, drained, health).

`python3 test_vocabulary.py --dump` prints each output's paths."""
import json
import os
import re
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gslbtest import (BIN, Dnsd, ROOT, free_port, gslbctl, make_mmdb,  # noqa: E402
                      run, test, tmpdir)

DOC = os.path.join(ROOT, "docs", "keys.md")
TOKEN = "vocabulary-admin-token-0123456789"
AGENT_TOKEN = "vocabulary-agent-token-0123456789"
FO = "fo.gslb.example.com."
WT = "wt.gslb.example.com."
GEO = "geo.gslb.example.com."
# Objects whose keys are names (of services), not vocabulary: their values'
# keys are, under the path element "{}".
MAPS = {"shifts", "damping"}
CLIENT = "192.0.2.55"       # located by the test GeoIP table


def paths(doc, prefix="", out=None):
    """Every key path of a JSON document: a.b, a[].b, maps as a{}.b."""
    out = set() if out is None else out
    if isinstance(doc, dict):
        for k, v in doc.items():
            p = prefix + ("." if prefix else "") + k
            out.add(p)
            if k in MAPS and isinstance(v, dict):
                for sub in v.values():
                    paths(sub, p + "{}", out)
            else:
                paths(v, p, out)
    elif isinstance(doc, list):
        for v in doc:
            paths(v, prefix + "[]", out)
    return out


def documented():
    """docs/keys.md: ({output: paths always printed}, {output: paths that
    may be printed}). Each table row is | `path` | outputs | meaning |, the
    outputs comma separated, an output with "?" when the key is there only
    in some states (a damped endpoint)."""
    must, may = {}, {}
    row = re.compile(r"^\|\s*`([^`]+)`\s*\|\s*([^|]+)\|")
    with open(DOC, encoding="utf-8") as f:
        for line in f:
            m = row.match(line)
            if not m:
                continue
            for out in m.group(2).split(","):
                out = out.strip()
                if out.endswith("?"):
                    may.setdefault(out[:-1], set()).add(m.group(1))
                else:
                    must.setdefault(out, set()).add(m.group(1))
                    may.setdefault(out, set()).add(m.group(1))
    return must, may


def http_json(port, path, token=TOKEN, body=None, method=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path),
                                 data=body, method=method)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read().decode())


def ctl_json(db, *args):
    p = subprocess.run([os.path.join(BIN, "gslbctl"), "--db", db] + list(args),
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise AssertionError("gslbctl %s: %s" % (" ".join(args), p.stderr))
    return json.loads(p.stdout)


def setup():
    t = tmpdir()
    db = os.path.join(t, "g.db")
    gslbctl(db, "init")
    gslbctl(db, "service", "add", FO, "--policy", "failover", "--ttl", "30")
    gslbctl(db, "endpoint", "add", FO, "192.0.2.1", "--priority", "10",
            "--region", "eu", "--lat", "50.1", "--lon", "8.7",
            "--check", "http://127.0.0.1:9/health")
    gslbctl(db, "endpoint", "add", FO, "lb.us.example.net.", "--priority", "20",
            "--region", "us")
    gslbctl(db, "shift", FO, "lb.us.example.net.", "--steps", "10,50,100",
            "--every", "3600")
    gslbctl(db, "damping", FO, "--penalty", "1000")
    gslbctl(db, "service", "add", WT, "--policy", "weighted", "--answers", "2")
    for i, w in enumerate((1, 2, 3)):
        gslbctl(db, "endpoint", "add", WT, "198.51.100.%d" % (i + 1),
                "--weight", str(w))
    gslbctl(db, "service", "add", GEO, "--policy", "geo", "--fill", "0.8")
    gslbctl(db, "endpoint", "add", GEO, "192.0.2.10", "--region", "eu",
            "--lat", "50.1", "--lon", "8.7", "--capacity", "100")
    gslbctl(db, "endpoint", "add", GEO, "192.0.2.20", "--region", "us",
            "--lat", "39.0", "--lon", "-77.5", "--capacity", "200")
    gslbctl(db, "rule", "add", GEO, "country:GB", "192.0.2.10")
    tok = os.path.join(t, "tokens")
    with open(tok, "w") as f:
        f.write("admin op %s\nagent eu-1 %s\n" % (TOKEN, AGENT_TOKEN))
    os.chmod(tok, 0o600)
    api = free_port()
    d = Dnsd(["--zone", os.path.join(ROOT, "zones", "gslb.example.com.zone"),
              "--db", db, "--api", "127.0.0.1:%d" % api, "--api-tokens", tok,
              "--db-poll-ms", "100"])
    # a report with an RTT, so agents and latency are filled in
    checks = http_json(api, "/v1/checks")["checks"]
    eid = [c["id"] for c in checks if c["target"] == "192.0.2.1"][0]
    rep = {"agent": "eu-1", "region": "eu", "lat": 50.1, "lon": 8.7,
           "results": [{"id": eid, "state": "up", "ok": True, "rtt_ms": 4.5,
                        "ts": time.time(), "detail": "200 OK"}]}
    http_json(api, "/v1/reports", token=AGENT_TOKEN, body=json.dumps(rep).encode(),
              method="POST")
    # until the health state reached the store (status --json reads it)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        st = ctl_json(db, "status", "--json")
        eps = [e for s in st["services"] for e in s["endpoints"] if e["agents"]]
        if eps:
            break
        time.sleep(0.2)
    return db, api, d, make_mmdb()


def outputs(db, api, mmdb):
    out = {}
    out["export"] = [ctl_json(db, "export")]
    out["config"] = [http_json(api, "/v1/config")]
    out["services"] = [http_json(api, "/v1/services")]
    # one service, documented as an element of "services"
    out["service"] = [{"services": [http_json(api, "/v1/services/" + n)]}
                      for n in (FO, GEO)]
    out["status"] = [ctl_json(db, "status", "--json")]
    out["api-status"] = [http_json(api, "/v1/status", token=None)]
    out["explain"] = [ctl_json(db, "explain", s, "--client", CLIENT, "--geoip", mmdb,
                               "--json") for s in (FO, WT, GEO)]
    return out


@test
def every_key_is_documented_and_every_documented_key_printed():
    db, api, d, mmdb = setup()
    got = outputs(db, api, mmdb)
    must, may = documented()
    problems = []
    for name, docs in got.items():
        have = set()
        for doc in docs:
            paths(doc, out=have)
        for p in sorted(have - may.get(name, set())):
            problems.append("%s prints %s, not in docs/keys.md" % (name, p))
        for p in sorted(must.get(name, set()) - have):
            problems.append("docs/keys.md lists %s for %s, which does not print it"
                            % (p, name))
    for name in sorted(set(may) - set(got)):
        problems.append("docs/keys.md names an output %r the test does not know" % name)
    d.stop()
    if problems:
        raise AssertionError("\n".join(problems))


@test
def the_same_endpoint_has_the_same_values_under_the_same_names():
    db, api, d, mmdb = setup()
    got = outputs(db, api, mmdb)
    shared = ("weight", "priority", "region", "admin", "drained", "health")
    seen = {}           # (service, target) -> {key: {output: value}}
    for name in ("export", "config", "services", "status", "api-status"):
        for s in got[name][0]["services"]:
            for e in s["endpoints"]:
                for k in shared:
                    if k in e:
                        seen.setdefault((s["name"], e["target"]), {}) \
                            .setdefault(k, {})[name] = e[k]
    for x in got["explain"]:
        for e in x["endpoints"]:
            for k in shared:
                if k in e:
                    seen.setdefault((x["service"], e["target"]), {}) \
                        .setdefault(k, {})["explain"] = e[k]
    problems = []
    for ep, keys in sorted(seen.items()):
        for k, by in sorted(keys.items()):
            if len(set(json.dumps(v) for v in by.values())) > 1:
                problems.append("%s %s: %s differs: %s" % (ep[0], ep[1], k, by))
    d.stop()
    if len(seen) != 7:
        problems.append("expected 7 endpoints, saw %d" % len(seen))
    if problems:
        raise AssertionError("\n".join(problems))


if __name__ == "__main__":
    if sys.argv[1:] == ["--dump"]:
        db_, api_, d_, mmdb_ = setup()
        for name, docs in outputs(db_, api_, mmdb_).items():
            have = set()
            for doc in docs:
                paths(doc, out=have)
            print("== %s" % name)
            for p in sorted(have):
                print("   %s" % p)
        d_.stop()
        sys.exit(0)
    run()
