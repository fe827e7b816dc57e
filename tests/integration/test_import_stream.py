#!/usr/bin/python3
"""The streamed import and export of gslbctl against the whole-document
path (dnsd's PUT /v1/config, which parses the document at once): a
generated 10,000-service document (2,000 under a sanitizer) gives the same plan (--json and
--dry-run), the same rows with the same ids, the same audit trail and
store versions, in a first import, a second one that changes 1% and
removes some, and an import of the export; export -> import -> export is
byte-equal; bad documents are rejected with where (service, field, line)
and change nothing; the progress line shows on a terminal only."""
import json
import os
import pty
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from gslbtest import (BIN, TIME_FACTOR, ZONES, Dnsd, free_port, gslbctl,  # noqa: E402
                      run, sanitizer, test, tmpdir)

TOKEN = "import-stream-token"
# The round trip's size: large enough for the plan's every kind of line and
# a multi-megabyte document read in many chunks; a sanitizer build runs
# several times slower, so it takes a fifth (the sizes that show the memory
# bound and the speed are bench/import.sh's).
N = 2000 if sanitizer() else 10000
# Documents below the API's 1 MiB body limit; the API's import validates
# the whole document into a scratch store, which a sanitizer makes slow.
N_API = 300 if sanitizer() else 1000
N_PROGRESS = 1000 if sanitizer() else 3000
POLICIES = ("failover", "weighted", "all", "geo")


def addr(n):
    return "10.%d.%d.%d" % ((n >> 16) & 255, (n >> 8) & 255, n & 255)


def generate(n, variant=0):
    """n services under gslb.example.com.; variant 1 changes every 100th
    service's first weight, drops the last endpoint of every 250th, adds
    20 services and leaves out 10."""
    services = []
    for i in range(n):
        if variant and i % 1000 == 999:
            continue                                # removed
        pol = POLICIES[i % 4]
        eps = []
        for k in range(2 + i % 3):
            e = {"target": addr(4 * i + k), "weight": k + 1,
                 "priority": 10 * k if pol == "failover" else 0}
            if i % 7 == 0:
                e["region"] = "eu" if k % 2 else "us"
                e["lat"], e["lon"] = 50.1 - k, 8.7 + k / 4
                e["bias"] = 12.5
            if i % 11 == 0:
                e["check"] = {"url": "tcp://%s:80" % addr(4 * i + k),
                              "interval": 5, "rise": 2}
            eps.append(e)
        if variant and i % 100 == 0:
            eps[0]["weight"] += 1
        if variant and i % 250 == 0:
            eps.pop()
        svc = {"name": "s%d.gslb.example.com" % i, "policy": pol, "endpoints": eps}
        if pol == "geo" and i % 8 == 3:
            svc["rules"] = [{"match": "country:DE", "targets": [eps[0]["target"]]}]
        services.append(svc)
    if variant:
        for j in range(20):
            services.append({"name": "new%d.gslb.example.com." % j, "policy": "all",
                             "endpoints": [{"target": addr(4 * N + 4 + j)}]})
    # In name order, as an export is: new rows then get their ids in the
    # same order on both paths (the streamed import numbers new rows in
    # document order, the whole-document one in name order).
    services.sort(key=lambda s: s["name"].rstrip(".") + ".")
    return {"version": 1, "services": services}


def put_config(api, doc, query=""):
    req = urllib.request.Request(api + "/v1/config" + query, data=json.dumps(doc).encode(),
                                 method="PUT",
                                 headers={"Content-Type": "application/json",
                                          "Authorization": "Bearer " + TOKEN})
    try:
        with urllib.request.urlopen(req, timeout=120 * TIME_FACTOR) as r:
            return r.status, json.loads(r.read().decode())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read().decode())


def dump(db):
    """The configuration with row ids, the versions and the audit trail
    (without time, who and source)."""
    con = sqlite3.connect(db)
    try:
        return {q: con.execute(q).fetchall() for q in (
            "SELECT * FROM services ORDER BY id",
            "SELECT * FROM endpoints ORDER BY id",
            "SELECT * FROM rules ORDER BY id",
            "SELECT * FROM rule_targets ORDER BY 1, 2",
            "SELECT * FROM store_version",
            "SELECT version, service FROM changes ORDER BY 1, 2",
            "SELECT id, version, op, kind, service, target, field, old, new "
            "FROM audit ORDER BY id")}
    finally:
        con.close()


def write(d, name, doc):
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def assert_same(a, b, what):
    for q in a:
        if a[q] != b[q]:
            diff = [x for x in zip(a[q], b[q]) if x[0] != x[1]][:3]
            raise AssertionError("%s: %s differs (%d vs %d rows): %s" % (
                what, q, len(a[q]), len(b[q]), diff))


@test
def streamed_import_matches_the_whole_document_path():
    """Through the API only as large as its body limit (1 MiB)."""
    d = tmpdir()
    a, b = os.path.join(d, "a.db"), os.path.join(d, "b.db")
    tok = write(d, "token", TOKEN + "\n")
    gslbctl(a, "init")
    gslbctl(b, "init")
    port = free_port()
    api = "http://127.0.0.1:%d" % port
    Dnsd(["--zone", os.path.join(ZONES, "gslb.example.com.zone"), "--db", b,
          "--api", "127.0.0.1:%d" % port, "--api-token-file", tok,
          # A 1,000-service PUT takes seconds on a loaded machine (more
          # under a sanitizer): not what this test is about.
          "--api-request-timeout", str(min(3600, int(120 * TIME_FACTOR)))])
    first, second = generate(N_API), generate(N_API, 1)
    assert len(json.dumps(second)) < 1024 * 1024
    p1, p2 = write(d, "first.json", first), write(d, "second.json", second)
    # The first import: every service added. No terminal: no progress.
    p = gslbctl(a, "--json", "import", p1)
    assert p.stderr == "", p.stderr
    status, reply = put_config(api, first)
    assert status == 200, reply
    assert json.loads(p.stdout)["changes"] == reply["changes"], "first plan"
    assert len(reply["changes"]) > 4 * N_API, len(reply["changes"])
    assert_same(dump(a), dump(b), "first import")
    # The second one: planned (nothing written), then applied.
    before = dump(a)
    p = gslbctl(a, "--json", "import", "--dry-run", p2)
    status, reply = put_config(api, second, "?dry_run=1")
    assert status == 200, reply
    assert json.loads(p.stdout)["changes"] == reply["changes"], "dry run plan"
    assert_same(before, dump(a), "dry run")
    p = gslbctl(a, "--force", "--json", "import", p2)
    status, reply = put_config(api, second, "?force=1")
    assert status == 200, reply
    assert json.loads(p.stdout)["changes"] == reply["changes"], "second plan"
    assert_same(dump(a), dump(b), "second import")
    # The export is GET /v1/config's document; importing it changes nothing.
    e1 = gslbctl(a, "export").stdout
    assert len(json.dumps(json.loads(e1))) < 1024 * 1024
    with urllib.request.urlopen(urllib.request.Request(
            api + "/v1/config", headers={"Authorization": "Bearer " + TOKEN}),
            timeout=60 * TIME_FACTOR) as r:
        assert json.loads(r.read().decode()) == json.loads(e1), "export = GET /v1/config"
    assert gslbctl(a, "import", write(d, "export.json", e1)).stdout == "no change\n"
    status, reply = put_config(api, json.loads(e1))
    assert status == 200 and reply["changes"] == [], reply
    assert_same(dump(a), dump(b), "import of the export")


@test
def ten_thousand_services_round_trip():
    d = tmpdir()
    a = os.path.join(d, "a.db")
    gslbctl(a, "init")
    first, second = generate(N), generate(N, 1)
    p1, p2 = write(d, "first.json", first), write(d, "second.json", second)
    p = gslbctl(a, "import", p1)
    assert p.stderr == "" and len(p.stdout.splitlines()) > 4 * N, p.stderr
    # Refused without --force (it removes services), then applied: the
    # import prints the plan diff printed.
    before = dump(a)
    p = gslbctl(a, "import", p2, check=False)
    removed = N // 1000
    assert p.returncode != 0 and "would remove service s1999.gslb.example.com." in p.stderr \
        and "(%d services removed in all)" % removed in p.stderr, p.stderr
    assert_same(before, dump(a), "refused")
    text = gslbctl(a, "diff", p2).stdout
    p = gslbctl(a, "--force", "import", p2)
    assert p.stdout == text, "the import prints the plan diff printed"
    lines = p.stdout.splitlines()
    assert "~ endpoint s100.gslb.example.com. 10.0.1.144 weight: 1 -> 2" in lines, lines[:5]
    assert "- service s999.gslb.example.com." in lines, lines[:5]
    assert "+ service new0.gslb.example.com." in lines, lines[:5]
    assert len(lines) > N // 100 + N // 250 + removed * 3 + 40, len(lines)
    # The history: a service the import added is one row with what came
    # with it; a change of a service the store had, one row per change.
    hist = gslbctl(a, "history", "s100.gslb.example.com").stdout.splitlines()
    assert len(hist) == 2 and hist[0].endswith(
        "(import) + service s100.gslb.example.com.: endpoints 10.0.1.144 10.0.1.145 "
        "10.0.1.146"), hist
    assert hist[1].endswith("~ endpoint s100.gslb.example.com. 10.0.1.144 weight: 1 -> 2"), hist
    con = sqlite3.connect(a)
    assert con.execute("SELECT count(*) FROM audit WHERE version = 1").fetchone()[0] == N
    con.close()
    # Endpoints that stayed kept their ids.
    con = sqlite3.connect(a)
    ids = dict(con.execute("SELECT target, id FROM endpoints"))
    con.close()
    old = {r[2]: r[0] for r in before["SELECT * FROM endpoints ORDER BY id"]}
    kept = [t for t in ids if t in old]
    assert len(kept) > 2 * N and all(ids[t] == old[t] for t in kept), "ids kept"
    # export -> import -> export is byte-equal, and the export is the
    # document (keys and defaults filled in).
    e1 = gslbctl(a, "export").stdout
    doc = json.loads(e1)
    assert [s["name"] for s in doc["services"]] == sorted(
        s["name"].rstrip(".") + "." for s in second["services"]), "names"
    c = os.path.join(d, "c.db")
    gslbctl(c, "--quiet", "import", write(d, "export.json", e1))
    assert gslbctl(c, "export").stdout == e1, "export -> import -> export"


@test
def bad_documents_change_nothing():
    d = tmpdir()
    db = os.path.join(d, "g.db")
    gslbctl(db, "init")
    gslbctl(db, "import", write(d, "ok.json", generate(300)))
    before = dump(db)
    good = json.dumps(generate(300), indent=1)
    k = [s["name"] for s in generate(300)["services"]].index("s150.gslb.example.com")
    pos = good.index('"s150.gslb.example.com"')
    line = good.count("\n", 0, pos) + 1
    cases = [
        (good.replace('"weight": 3', '"weight": 70000', 1),
         "services[1] (s1.gslb.example.com) endpoints[2]: weight 70000 outside 0..65535"),
        (good.replace('"s150.gslb.example.com"', '"s150.gslb.example.com", "colour": 1'),
         "services[%d]: unknown key 'colour'" % k),
        (good.replace('"s150.gslb.example.com"', '"s149.gslb.example.com."'),
         "services[%d] (s149.gslb.example.com.): service s149.gslb.example.com. "
         "already exists" % k),
        (good[:pos] + "}" + good[pos:], "line %d" % line),
        (good[:len(good) // 2], "the document ends early"),
        ('{"version": 2, "services": []}', "version 2 is not supported"),
        ('["services"]', "not a JSON object"),
        ('{"services": {}}', "'services' must be a list"),
    ]
    for i, (text, needle) in enumerate(cases):
        p = gslbctl(db, "--force", "import", write(d, "bad%d.json" % i, text), check=False)
        assert p.returncode != 0 and needle in p.stderr and p.stderr.count("\n") == 1, \
            (i, needle, p.stderr)
        assert p.stderr.startswith("gslbctl: import: "), p.stderr
        assert_same(before, dump(db), "bad document %d" % i)
    # Where: the line of the service that failed.
    p = gslbctl(db, "--force", "import", write(d, "where.json", cases[1][0]), check=False)
    assert "(line %d, byte" % (line - 1) in p.stderr, (line, p.stderr)


@test
def progress_only_on_a_terminal():
    d = tmpdir()
    db = os.path.join(d, "g.db")
    gslbctl(db, "init")
    path = write(d, "doc.json", generate(N_PROGRESS))
    master, slave = pty.openpty()
    try:
        p = subprocess.run([os.path.join(BIN, "gslbctl"), "--db", db, "--quiet", "import",
                            path], stdout=subprocess.PIPE, stderr=slave,
                           timeout=60 * TIME_FACTOR)
        os.close(slave)
        slave = -1
        out = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    assert p.returncode == 0 and p.stdout == b"", p
    text = out.decode()
    size = os.path.getsize(path)
    assert "import: %d services, %.1f of %.1f MB (100%%)" % (N_PROGRESS, size / 1e6, size / 1e6) \
        in text and "services/s" in text and text.endswith("\n"), repr(text[-300:])
    # Without a terminal: nothing on stderr.
    db2 = os.path.join(d, "h.db")
    gslbctl(db2, "init")
    p = gslbctl(db2, "--quiet", "import", path)
    assert p.stderr == "" and p.stdout == "", p


if __name__ == "__main__":
    run()
