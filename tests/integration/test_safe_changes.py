#!/usr/bin/python3
"""Configuration changes that keep what they do not name: real backends,
three real agents (bin/gslb-probe) and bin/dnsd (the cluster of
test_health_dns). With one endpoint down and the rest up, importing what
the export printed (through PUT /v1/config and through gslbctl import, in
the same and in a reordered order) changes no answer, no health state, no
agent result and no endpoint id; diff / import --dry-run / PUT
?dry_run=1 print the plan and touch nothing; a real import prints what it
applied and keeps the health of every endpoint it did not remove; a
rejected import leaves the store file byte for byte as it was."""
import hashlib
import json
import os
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import gslbtest  # noqa: E402
import test_health_dns as th  # noqa: E402
from gslbtest import (ZONES, Dnsd, answer_texts, free_port, gslbctl, run,  # noqa: E402
                      test, tmpdir, wait_for)

# Importing test_health_dns registered its tests; this file runs only its own.
del gslbtest._tests[:]

FO, WT, FB, CL = th.FO, th.WT, th.FB, th.CL


def put_config(c, doc, dry_run=False, token=th.TOKEN):
    url = c.api + "/v1/config" + ("?dry_run=1" if dry_run else "")
    req = urllib.request.Request(url, data=json.dumps(doc).encode(), method="PUT",
                                 headers={"Content-Type": "application/json",
                                          "Authorization": "Bearer " + token})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read().decode())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read().decode())


def health_view(c):
    """Per (service, target): id, health, and each agent's state and
    result, from /v1/status."""
    out = {}
    for s in c.status()["services"]:
        for e in s["endpoints"]:
            out[(s["name"], e["target"])] = (
                e["id"], e["health"],
                sorted((a["agent"], a["state"], a.get("ok")) for a in e["agents"]))
    return out


def db_ids(c):
    return {(r["service"], r["target"]): r["id"] for r in
            ({"service": s, "target": t, "id": i} for s, t, i in _rows(c.db))}


def _rows(db):
    import sqlite3
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT s.name, e.target, e.id FROM endpoints e JOIN "
                           "services s ON s.id = e.service_id").fetchall()
    finally:
        con.close()


def settled(c):
    """Backend 0 down, the others up, every agent agreeing."""
    want = {FO: ["192.0.2.2"], WT: ["192.0.2.12", "192.0.2.13"], FB: ["192.0.2.22"],
            CL: "one of"}
    running = sorted(th.AGENTS[i][0] for i in range(3))

    def ok():
        v = health_view(c)
        for (svc, tgt), (_, health, agents) in v.items():
            down = tgt.rsplit(".", 1)[1] in ("1", "11", "21", "31")
            if health != ("down" if down else "up"):
                return False
            if sorted(a for a, st, _ in agents if st == ("down" if down else "up")) != running:
                return False
        return c.snapshot() == want
    th.timed(ok, th.FALL * th.INTERVAL + 6, "backend 0 down, others up", c)


def unchanged_for(c, seconds, snap, health, ids):
    t_end = time.monotonic() + seconds
    while time.monotonic() < t_end:
        assert c.snapshot() == snap, (c.snapshot(), snap)
        h = health_view(c)
        assert {k: v[:2] for k, v in h.items()} == {k: v[:2] for k, v in health.items()}, h
        time.sleep(0.1)
    assert health_view(c) == health
    assert db_ids(c) == ids


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@test
@th.cleanup
def test_import_of_export_changes_nothing():
    c = th.Cluster()
    c.wait_all_up(timeout=25)
    c.backends[0].stop()
    settled(c)
    snap, health, ids = c.snapshot(), health_view(c), db_ids(c)
    doc = json.loads(c.get("/v1/config"))

    # The API: same document, plan first, then for real.
    code, body = put_config(c, doc, dry_run=True)
    assert code == 200 and body["changes"] == [] and body["dry_run"] is True, body
    code, body = put_config(c, doc)
    assert code == 200 and body["changes"] == [], body
    unchanged_for(c, 2 * th.INTERVAL + 1, snap, health, ids)

    # gslbctl: the export, reordered (services, endpoints, rules, keys).
    rev = {"services": [dict(reversed(list(s.items())),
                             endpoints=[dict(reversed(list(e.items())))
                                        for e in reversed(s["endpoints"])])
                        for s in reversed(doc["services"])], "version": 1}
    path = os.path.join(tmpdir(), "rev.json")
    with open(path, "w") as f:
        json.dump(rev, f)
    for args in (["diff", path], ["import", "--dry-run", path]):
        p = gslbctl(c.db, *args)
        assert p.stdout == "", (args, p.stdout)
    p = gslbctl(c.db, "import", path)
    assert p.stdout == "no change\n", p.stdout
    p = gslbctl(c.db, "--json", "diff", path)
    assert json.loads(p.stdout) == {"changes": []}, p.stdout
    unchanged_for(c, 2 * th.INTERVAL + 1, snap, health, ids)
    assert json.loads(c.get("/v1/config")) == doc


@test
@th.cleanup
def test_plan_then_apply_keeps_the_rest():
    c = th.Cluster()
    c.wait_all_up(timeout=25)
    c.backends[0].stop()
    settled(c)
    health, ids = health_view(c), db_ids(c)
    doc = json.loads(c.get("/v1/config"))
    new = json.loads(json.dumps(doc))
    svcs = {s["name"]: s for s in new["services"]}
    svcs[FO]["ttl"] = 7
    svcs[FO]["endpoints"] = [e for e in svcs[FO]["endpoints"] if e["target"] != "192.0.2.3"]
    svcs[WT]["endpoints"][1]["weight"] = 5
    svcs[WT]["endpoints"].append({"target": "192.0.2.14"})
    new["services"] = [s for s in new["services"] if s["name"] != CL]
    want = {
        ("change", "service", FO, None, "ttl", 5, 7),
        ("remove", "endpoint", FO, "192.0.2.3", None, None, None),
        ("change", "endpoint", WT, "192.0.2.12", "weight", 1, 5),
        ("add", "endpoint", WT, "192.0.2.14", None, None, None),
        ("remove", "service", CL, None, None, None, None),
    } | {("remove", "endpoint", CL, "192.0.2.%d" % (31 + i), None, None, None)
         for i in range(3)}

    def as_set(changes):
        return {(x["op"], x["kind"], x["service"], x.get("target"), x.get("field"),
                 x.get("old"), x.get("new")) for x in changes}
    path = os.path.join(tmpdir(), "new.json")
    with open(path, "w") as f:
        json.dump(new, f)
    before = sha(c.db)
    code, body = put_config(c, new, dry_run=True)
    assert code == 200 and as_set(body["changes"]) == want, body
    p = gslbctl(c.db, "--json", "import", "--dry-run", path)
    assert as_set(json.loads(p.stdout)["changes"]) == want, p.stdout
    lines = gslbctl(c.db, "diff", path).stdout.splitlines()
    assert "~ service %s ttl: 5 -> 7" % FO in lines, lines
    assert "~ endpoint %s 192.0.2.12 weight: 1 -> 5" % WT in lines, lines
    assert "+ endpoint %s 192.0.2.14" % WT in lines, lines
    assert "- service %s" % CL in lines, lines
    assert len(lines) == len(want), lines
    assert json.loads(c.get("/v1/config")) == doc
    # Read-only: nothing written (dnsd's health writer may write its own
    # tables meanwhile, so compare the configuration, and the ids).
    assert db_ids(c) == ids, before

    p = gslbctl(c.db, "import", path, check=False)
    assert p.returncode == 1 and "would remove service %s" % CL in p.stderr, p
    assert db_ids(c) == ids
    applied = gslbctl(c.db, "--force", "import", path).stdout.splitlines()
    assert sorted(applied) == sorted(lines), (applied, lines)
    after = db_ids(c)
    for k, v in ids.items():
        if k[0] != CL and k != (FO, "192.0.2.3"):
            assert after[k] == v, (k, v, after[k])
    assert max(after.values()) > max(ids.values())   # the new one: a new id
    # The endpoints that stayed keep their health; the new one starts
    # unknown and comes up; the FO answer stays on .2 (.1 is still down).
    def ok():
        h = health_view(c)
        return (WT, "192.0.2.14") in h and \
            all(h[k][:2] == health[k][:2] for k in h if k in health) and \
            h[(WT, "192.0.2.14")][1] in ("unknown", "up")
    assert wait_for(ok, 3), health_view(c)
    assert c.answer(FO) == ["192.0.2.2"], c.answer(FO)
    assert gslbctl(c.db, "diff", path).stdout == ""


@test
def test_rejected_import_leaves_store_as_it_was():
    d = tmpdir()
    db = os.path.join(d, "g.db")
    gslbctl(db, "init")
    gslbctl(db, "service", "add", FO, "--policy", "failover")
    gslbctl(db, "endpoint", "add", FO, "192.0.2.1")
    doc = json.loads(gslbctl(db, "export").stdout)
    before = sha(db)
    # A valid first service, then a bad endpoint in the middle of the second.
    bad = {"version": 1, "services": [
        {"name": "a." + FO, "policy": "all", "endpoints": [{"target": "10.0.0.1"}]},
        {"name": FO, "policy": "failover", "endpoints": [
            {"target": "192.0.2.1"}, {"target": "192.0.2.2", "weight": 70000}]}]}
    cases = [(bad, 2, "weight"),
             ({"version": 1, "services": [{"name": FO, "polcy": "all"}]}, 2, "polcy"),
             ({"version": 1, "services": [{"name": FO, "policy": "failover",
                                           "rules": [{"match": "country:DE",
                                                      "targets": ["192.0.2.9"]}]}]}, 3, None)]
    for i, (doc_bad, code, word) in enumerate(cases):
        path = os.path.join(d, "bad%d.json" % i)
        with open(path, "w") as f:
            json.dump(doc_bad, f)
        for args in (["import", path], ["diff", path], ["import", "--dry-run", path]):
            p = gslbctl(db, *args, check=False)
            assert p.returncode == code, (args, p.returncode, p.stderr)
            assert p.stdout == "" and (word is None or word in p.stderr), p.stderr
            assert sha(db) == before, args
    assert json.loads(gslbctl(db, "export").stdout) == doc
    # A killed import leaves the store as it was or fully imported, never
    # in between (kills at several moments of a 20000-service import).
    big = {"version": 1, "services": [
        {"name": "s%d.gslb.example.com." % i, "policy": "all",
         "endpoints": [{"target": "10.%d.%d.1" % (i >> 8, i & 255)}]} for i in range(20000)]}
    bigp = os.path.join(d, "big.json")
    with open(bigp, "w") as f:
        json.dump(big, f)
    import subprocess
    for delay in (0.2, 0.8, 1.5, 3.0):
        p = subprocess.Popen([os.path.join(gslbtest.BIN, "gslbctl"), "--db", db, "--force",
                              "--quiet", "import", bigp])
        time.sleep(delay)
        p.kill()
        p.wait()
        names = [x["name"] for x in json.loads(gslbctl(db, "service", "list", "--json").stdout)]
        assert names in ([FO], sorted(x["name"] for x in big["services"])), (delay, len(names))
        if names != [FO]:
            break                       # it finished before the kill
    # A plan never creates a store.
    nodb = os.path.join(d, "none.db")
    p = gslbctl(nodb, "diff", os.path.join(d, "bad0.json"), check=False)
    assert not os.path.exists(nodb), p.stderr
    good = os.path.join(d, "good.json")
    with open(good, "w") as f:
        json.dump(doc, f)
    p = gslbctl(nodb, "diff", good)
    assert p.stdout.splitlines() == ["+ service %s" % FO,
                                     "+ endpoint %s 192.0.2.1" % FO], p.stdout
    assert not os.path.exists(nodb)


def rest(api, method, path, body=None, token=th.TOKEN, raw=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(api + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read().decode())
    except urllib.error.HTTPError as e:
        text = e.read().decode()
        return e.code, json.loads(text)


@test
def test_rest_api_services_endpoints_rules():
    d = tmpdir()
    db = os.path.join(d, "g.db")
    tok = os.path.join(d, "token")
    with open(tok, "w") as f:
        f.write(th.TOKEN + "\n")
    gslbctl(db, "init")
    port = free_port()
    api = "http://127.0.0.1:%d" % port
    dnsd = Dnsd(["--zone", os.path.join(ZONES, "gslb.example.com.zone"), "--db", db,
                 "--api", "127.0.0.1:%d" % port, "--api-token-file", tok])
    svc = "rest.gslb.example.com."

    def answer():
        r = dnsd.udp(svc)
        return sorted(answer_texts(r))

    # Create: the service (201), then it exists (409); writes need the token.
    assert rest(api, "POST", "/v1/services", {"name": svc, "policy": "failover"},
                token=None)[0] == 401
    code, body = rest(api, "POST", "/v1/services", {"name": svc, "policy": "failover", "ttl": 20})
    assert code == 201 and body["changes"] == [{"op": "add", "kind": "service", "service": svc}], body
    v1 = body["version"]
    code, body = rest(api, "POST", "/v1/services", {"name": svc, "policy": "failover"})
    assert code == 409 and "already exists" in body["error"], body
    # Endpoints by PUT (create, then idempotent), unknown keys named.
    code, body = rest(api, "PUT", "/v1/services/%s/endpoints/192.0.2.1" % svc, {"priority": 10})
    assert code == 200 and [c["op"] for c in body["changes"]] == ["add"], body
    assert body["version"] == v1 + 1, body
    code, body = rest(api, "PUT", "/v1/services/%s/endpoints/192.0.2.1" % svc, {"priority": 10})
    assert code == 200 and body["changes"] == [], body
    code, body = rest(api, "PUT", "/v1/services/%s/endpoints/192.0.2.2" % svc, {"wieght": 5})
    assert code == 400 and "'wieght'" in body["error"] and "'weight'" in body["error"], body
    code, body = rest(api, "PUT", "/v1/services/%s/endpoints/192.0.2.2" % svc,
                      {"weight": 70000})
    assert code == 400 and "weight" in body["error"], body
    code, body = rest(api, "PUT", "/v1/services/%s/endpoints/192.0.2.2" % svc, {"priority": 20})
    assert code == 200, body
    assert wait_for(lambda: answer() == ["192.0.2.1"], 3), answer()
    # Read back.
    code, body = rest(api, "GET", "/v1/services/%s" % svc, token=None)
    assert code == 200 and body["ttl"] == 20 and \
        [e["target"] for e in body["endpoints"]] == ["192.0.2.1", "192.0.2.2"], body
    code, body = rest(api, "GET", "/v1/services/%s/endpoints/192.0.2.2" % svc, token=None)
    assert code == 200 and body["priority"] == 20, body
    assert rest(api, "GET", "/v1/services/nope.gslb.example.com.", token=None)[0] == 404
    assert rest(api, "GET", "/v1/services/%s/endpoints/192.0.2.9" % svc, token=None)[0] == 404
    # A change: dry run first (nothing moves), then for real.
    code, body = rest(api, "PUT", "/v1/services/%s/endpoints/192.0.2.1?dry_run=1" % svc,
                      {"priority": 30})
    assert code == 200 and body["dry_run"] is True and body["changes"] == [
        {"op": "change", "kind": "endpoint", "service": svc, "target": "192.0.2.1",
         "field": "priority", "old": 10, "new": 30}], body
    time.sleep(1.2)
    assert answer() == ["192.0.2.1"]
    code, body = rest(api, "PUT", "/v1/services/%s/endpoints/192.0.2.1" % svc, {"priority": 30})
    assert code == 200 and len(body["changes"]) == 1, body
    assert wait_for(lambda: answer() == ["192.0.2.2"], 3), answer()
    # Rules: PUT creates and replaces; a match with a slash is %2F.
    code, body = rest(api, "PUT", "/v1/services/%s/rules/10.0.0.0%%2F8" % svc,
                      {"targets": ["192.0.2.1"]})
    assert code == 200 and body["changes"][0]["op"] == "add", body
    code, body = rest(api, "PUT", "/v1/services/%s/rules/10.0.0.0%%2F8" % svc,
                      {"targets": ["192.0.2.1", "192.0.2.2"]})
    assert code == 200 and body["changes"][0]["field"] == "targets", body
    code, body = rest(api, "GET", "/v1/services/%s/rules" % svc, token=None)
    assert body == {"rules": [{"match": "10.0.0.0/8", "targets": ["192.0.2.1", "192.0.2.2"]}]}, body
    # Guard rails: an endpoint a rule names, the last in rotation, the service.
    code, body = rest(api, "DELETE", "/v1/services/%s/endpoints/192.0.2.2" % svc)
    assert code == 409 and "force" in body["error"], body
    code, body = rest(api, "POST", "/v1/endpoint", {"service": svc, "target": "192.0.2.2",
                                                     "drained": True})
    assert code == 200, body
    code, body = rest(api, "POST", "/v1/endpoint", {"service": svc, "target": "192.0.2.1",
                                                     "drained": True})
    assert code == 409 and "rotation" in body["error"], body
    code, body = rest(api, "POST", "/v1/endpoint", {"service": svc, "target": "192.0.2.1",
                                                     "wieght": 1})
    assert code == 400 and "'weight'" in body["error"], body
    assert wait_for(lambda: answer() == ["192.0.2.1"], 3), answer()
    code, body = rest(api, "DELETE", "/v1/services/%s" % svc)
    assert code == 409 and "force" in body["error"], body
    assert answer() == ["192.0.2.1"]
    code, body = rest(api, "DELETE", "/v1/services/%s" % svc, {"force": True})
    assert code == 200 and {"op": "remove", "kind": "service", "service": svc} in body["changes"], body
    assert rest(api, "GET", "/v1/services/%s" % svc, token=None)[0] == 404
    # Every write is in the audit trail, as the API's.
    hist = json.loads(gslbctl(db, "--json", "history", svc).stdout)["history"]
    assert hist and all(h["source"] == "api" and h["who"] == "token" for h in hist), hist
    assert [h["version"] for h in hist] == sorted(h["version"] for h in hist), hist
    assert "config v" in dnsd.output() and "by token (api)" in dnsd.output(), dnsd.output()
    dnsd.stop()


@test
def test_gslbctl_writes_say_what_changed():
    d = tmpdir()
    db = os.path.join(d, "g.db")
    gslbctl(db, "init")
    svc = "w.gslb.example.com."
    p = gslbctl(db, "service", "add", svc, "--policy", "failover")
    assert p.stdout == "+ service %s\n" % svc, p.stdout
    p = gslbctl(db, "service", "add", svc, "--policy", "failover", check=False)
    assert p.returncode == 4 and "already exists" in p.stderr, p
    p = gslbctl(db, "service", "add", svc, "--policy", "failover", "--if-missing")
    assert p.returncode == 0 and p.stdout.startswith("exists:"), p
    gslbctl(db, "endpoint", "add", svc, "192.0.2.1", "--priority", "10")
    gslbctl(db, "endpoint", "add", svc, "192.0.2.2", "--priority", "20")
    p = gslbctl(db, "endpoint", "set", svc, "192.0.2.2", "--weight", "5")
    assert p.stdout == "~ endpoint %s 192.0.2.2 weight: 1 -> 5\n" % svc, p.stdout
    p = gslbctl(db, "endpoint", "set", svc, "192.0.2.2", "--weight", "5")
    assert p.stdout == "no change\n", p.stdout
    p = gslbctl(db, "--quiet", "endpoint", "set", svc, "192.0.2.2", "--weight", "6")
    assert p.stdout == "", p.stdout
    p = gslbctl(db, "endpoint", "set", svc, "192.0.2.2", check=False)
    assert p.returncode == 2 and "at least one option" in p.stderr, p
    p = gslbctl(db, "endpoint", "set", svc, "192.0.2.2", "--wieght", "5", check=False)
    assert p.returncode == 2 and "did you mean --weight" in p.stderr, p
    p = gslbctl(db, "endpoint", "set", svc, "192.0.2.9", "--weight", "5", check=False)
    assert p.returncode == 3, p
    p = gslbctl(db, "servce", "list", check=False)
    assert p.returncode == 2 and "did you mean 'service'" in p.stderr, p
    # flip keeps the spacing: .2 takes 10 - 1, .1 stays at 10.
    p = gslbctl(db, "--json", "flip", svc, "192.0.2.2")
    doc = json.loads(p.stdout)
    assert doc["changes"] == [{"op": "change", "kind": "endpoint", "service": svc,
                               "target": "192.0.2.2", "field": "priority",
                               "old": 20, "new": 9}], doc
    # Guard rails: the last one in rotation, the service; --dry-run moves nothing.
    gslbctl(db, "endpoint", "drain", svc, "192.0.2.1")
    before = sha(db)
    p = gslbctl(db, "endpoint", "drain", svc, "192.0.2.2", check=False)
    assert p.returncode == 1 and "no endpoint in rotation" in p.stderr, p
    p = gslbctl(db, "--dry-run", "--force", "endpoint", "drain", svc, "192.0.2.2")
    assert p.stdout == "~ endpoint %s 192.0.2.2 drained: false -> true\n" % svc, p.stdout
    p = gslbctl(db, "service", "rm", svc, check=False)
    assert p.returncode == 1 and "would remove service" in p.stderr, p
    assert sha(db) == before
    # Bad values say what would be valid.
    p = gslbctl(db, "rule", "add", svc, "country:UK", "192.0.2.1", check=False)
    assert p.returncode == 2 and "did you mean GB" in p.stderr, p
    p = gslbctl(db, "endpoint", "set", svc, "192.0.2.1", "--check", "tcp://127.0.0.1:9",
                "--check-interval", "2", "--check-timeout", "3", check=False)
    assert p.returncode == 2 and "below the check interval" in p.stderr, p
    assert sha(db) == before
    # History: who, what, in order.
    lines = gslbctl(db, "history", svc).stdout.splitlines()
    assert len(lines) == 7 and "~ endpoint %s 192.0.2.2 weight: 1 -> 5" % svc in lines[3], lines
    assert all("(gslbctl)" in x for x in lines), lines
    # Real values as they were given (50.11, not 50.109999999999999).
    gslbctl(db, "endpoint", "set", svc, "192.0.2.2", "--lat", "50.11", "--lon", "8.68")
    gslbctl(db, "endpoint", "set", svc, "192.0.2.2", "--lat", "50.1", "--lon", "8.7")
    last = gslbctl(db, "history", svc).stdout.splitlines()[-2:]
    assert last[0].endswith("lat: 50.11 -> 50.1") and last[1].endswith("lon: 8.68 -> 8.7"), last
    # A rule added to an existing service shows its targets.
    gslbctl(db, "rule", "add", svc, "country:DE", "192.0.2.2")
    last = gslbctl(db, "history", svc).stdout.splitlines()[-1]
    assert last.endswith("+ rule %s country:DE -> 192.0.2.2" % svc), last


@test
def test_openapi_matches_the_routes():
    """/v1/openapi.json is docs/openapi.json; every path and method in it is
    served (GET answers, a write without the token gets 401, never 404 or
    405), and a method it does not list gets 405."""
    d = tmpdir()
    db = os.path.join(d, "g.db")
    tok = os.path.join(d, "token")
    with open(tok, "w") as f:
        f.write(th.TOKEN + "\n")
    svc = "oa.gslb.example.com."
    gslbctl(db, "init")
    gslbctl(db, "service", "add", svc, "--policy", "failover")
    gslbctl(db, "endpoint", "add", svc, "192.0.2.1")
    gslbctl(db, "rule", "add", svc, "10.0.0.0/8", "192.0.2.1")
    port = free_port()
    api = "http://127.0.0.1:%d" % port
    dnsd = Dnsd(["--zone", os.path.join(ZONES, "gslb.example.com.zone"), "--db", db,
                 "--api", "127.0.0.1:%d" % port, "--api-token-file", tok])
    with urllib.request.urlopen(api + "/v1/openapi.json", timeout=5) as r:
        served = json.loads(r.read().decode())
    with open(os.path.join(os.path.dirname(os.path.dirname(HERE)), "docs",
                           "openapi.json")) as f:
        assert served == json.load(f)
    assert served["openapi"].startswith("3."), served["openapi"]
    params = {"{name}": svc, "{target}": "192.0.2.1", "{match}": "10.0.0.0%2F8"}
    methods = ("get", "put", "post", "delete")
    checked = 0
    for path, item in served["paths"].items():
        url = path
        for k, v in params.items():
            url = url.replace(k, v)
        for m in methods:
            if m not in item:
                if m == "get" or path in ("/v1/reports",):
                    continue
                code, _ = rest_any(api, m.upper(), url, th.TOKEN)
                assert code == 405, (m, path, code)
                continue
            code, body = rest_any(api, m.upper(), url)
            if m == "get" and "security" not in item[m]:
                assert code == 200, (m, path, code, body)
            else:
                assert code == 401, (m, path, code, body)
            checked += 1
    assert checked >= 20, checked
    dnsd.stop()


def rest_any(api, method, path, token=None):
    req = urllib.request.Request(api + path, method=method,
                                 data=b"{}" if method in ("PUT", "POST") else None)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@test
def test_all_answers_spread_over_every_healthy_endpoint():
    d = tmpdir()
    db = os.path.join(d, "g.db")
    gslbctl(db, "init")
    svc = "mv.gslb.example.com."
    gslbctl(db, "service", "add", svc, "--policy", "all", "--answers", "2")
    for i in range(1, 5):
        gslbctl(db, "endpoint", "add", svc, "192.0.2.%d" % i)
    gslbctl(db, "endpoint", "set", svc, "192.0.2.4", "--admin", "down")
    dnsd = Dnsd(["--zone", os.path.join(ZONES, "gslb.example.com.zone"), "--db", db,
                 "--threads", "1"])
    counts = {}
    for _ in range(300):
        got = sorted(answer_texts(dnsd.udp(svc)))
        assert len(got) == 2 and "192.0.2.4" not in got, got
        for a in got:
            counts[a] = counts.get(a, 0) + 1
    # Three healthy endpoints, two answers each: each in 2/3 of 300.
    assert sorted(counts) == ["192.0.2.1", "192.0.2.2", "192.0.2.3"], counts
    assert all(180 <= v <= 220 for v in counts.values()), counts
    dnsd.stop()


if __name__ == "__main__":
    run()
