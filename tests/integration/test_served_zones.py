#!/usr/bin/python3
"""gslbctl flags a service whose name is under none of the zones dnsd
serves: bin/dnsd records its zones' apex names in the store (at start and
on SIGHUP, under its node name), and gslbctl service add, import, diff and
status warn about a service outside them (stderr; the write still
happens, the exit status is unchanged, --json stdout stays one JSON
document). A store that dnsd never recorded zones in flags nothing."""
import json
import os
import signal
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from gslbtest import Dnsd, gslbctl, run, test, tmpdir, wait_for  # noqa: E402

ZONE = """$ORIGIN %s
$TTL 300
@ IN SOA ns1 hostmaster 1 7200 1800 1209600 300
  IN NS ns1
ns1 IN A 192.0.2.53
"""


def write_zone(path, origin):
    with open(path, "w") as f:
        f.write(ZONE % origin)


def recorded(db):
    con = sqlite3.connect(db)
    try:
        return sorted(con.execute("SELECT node, zone FROM served_zones").fetchall())
    finally:
        con.close()


def warnings(p):
    return [l for l in p.stderr.splitlines() if "warning:" in l]


def setup():
    d = tmpdir()
    db = os.path.join(d, "store.db")
    z1, z2 = os.path.join(d, "a.zone"), os.path.join(d, "b.zone")
    write_zone(z1, "example.com.")
    write_zone(z2, "b.example.net.")
    gslbctl(db, "init")
    dnsd = Dnsd(["--zone", z1, "--zone", z2, "--db", db, "--node-name", "edge-1"])
    return d, db, z1, dnsd


@test
def dnsd_records_its_zones():
    d, db, z1, dnsd = setup()
    assert recorded(db) == [("edge-1", "b.example.net."), ("edge-1", "example.com.")], \
        recorded(db)
    # SIGHUP: the zone file now has another origin; the rows follow it.
    write_zone(z1, "other.org.")
    dnsd.signal(signal.SIGHUP)
    want = [("edge-1", "b.example.net."), ("edge-1", "other.org.")]
    assert wait_for(lambda: recorded(db) == want), (recorded(db), dnsd.output())
    dnsd.stop()


@test
def service_add_warns_outside():
    d, db, z1, dnsd = setup()
    p = gslbctl(db, "service", "add", "www.example.com", "--policy", "failover")
    assert warnings(p) == [], p.stderr
    p = gslbctl(db, "service", "add", "www.other.org", "--policy", "failover")
    w = warnings(p)
    assert p.returncode == 0 and len(w) == 1, (p.returncode, p.stderr)
    assert "www.other.org." in w[0] and "b.example.net., example.com." in w[0], w[0]
    # Written anyway.
    names = [s["name"] for s in json.loads(gslbctl(db, "--json", "service", "list").stdout)]
    assert "www.other.org." in names, names
    # --json: stdout is still one JSON document, the warning on stderr.
    p = gslbctl(db, "--json", "service", "add", "api.other.org", "--policy", "all")
    json.loads(p.stdout)
    assert len(warnings(p)) == 1 and "api.other.org." in p.stderr, p.stderr
    # status: the services dnsd will not answer are problems.
    st = json.loads(gslbctl(db, "--json", "status").stdout)
    probs = [x for x in st["problems"] if "under none of the zones" in x]
    assert len(probs) == 2 and any("www.other.org." in x for x in probs), st["problems"]
    assert not any("www.example.com." in x for x in probs), probs
    # After a SIGHUP that serves other.org, the same services are fine.
    write_zone(z1, "other.org.")
    dnsd.signal(signal.SIGHUP)
    assert wait_for(lambda: ("edge-1", "other.org.") in recorded(db))
    st = json.loads(gslbctl(db, "--json", "status").stdout)
    probs = [x for x in st["problems"] if "under none of the zones" in x]
    assert len(probs) == 1 and "www.example.com." in probs[0], probs
    dnsd.stop()


@test
def import_and_diff_warn_outside():
    d, db, z1, dnsd = setup()
    doc = {"version": 1, "services": [
        {"name": "in.example.com.", "policy": "failover",
         "endpoints": [{"target": "192.0.2.1"}]},
        {"name": "out.example.org.", "policy": "failover",
         "endpoints": [{"target": "192.0.2.2"}]},
    ]}
    path = os.path.join(d, "conf.json")
    with open(path, "w") as f:
        json.dump(doc, f)
    for args in (["diff", path], ["--json", "diff", path],
                 ["import", "--dry-run", path]):
        p = gslbctl(db, *args)
        w = warnings(p)
        assert p.returncode == 0 and len(w) == 1 and "out.example.org." in w[0], \
            (args, p.returncode, p.stderr)
        if "--json" in args:
            plan = json.loads(p.stdout)
            assert len(plan["changes"]) >= 2, plan
    p = gslbctl(db, "--json", "import", path)
    assert json.loads(p.stdout)["changes"], p.stdout
    assert len(warnings(p)) == 1 and "out.example.org." in p.stderr, p.stderr
    names = [s["name"] for s in json.loads(gslbctl(db, "--json", "service", "list").stdout)]
    assert sorted(names) == ["in.example.com.", "out.example.org."], names
    dnsd.stop()


@test
def nothing_flagged_without_recorded_zones():
    db = os.path.join(tmpdir(), "plain.db")
    gslbctl(db, "init")
    p = gslbctl(db, "service", "add", "www.anywhere.test", "--policy", "failover")
    assert warnings(p) == [], p.stderr
    st = json.loads(gslbctl(db, "--json", "status").stdout)
    assert st["problems"] == [], st


if __name__ == "__main__":
    run()
