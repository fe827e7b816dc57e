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
from gslbtest import gslbctl, run, test, tmpdir, wait_for  # noqa: E402

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
    c.wait_all_up()
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
    for args in (["diff", path], ["import", "--dry-run", path], ["import", path]):
        p = gslbctl(c.db, *args)
        assert p.stdout == "", (args, p.stdout)
    p = gslbctl(c.db, "--json", "diff", path)
    assert json.loads(p.stdout) == {"changes": []}, p.stdout
    unchanged_for(c, 2 * th.INTERVAL + 1, snap, health, ids)
    assert json.loads(c.get("/v1/config")) == doc


@test
@th.cleanup
def test_plan_then_apply_keeps_the_rest():
    c = th.Cluster()
    c.wait_all_up()
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

    applied = gslbctl(c.db, "import", path).stdout.splitlines()
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


if __name__ == "__main__":
    run()
