#!/usr/bin/env python3
"""gslbctl --etcd: writes against a real three-member etcd cluster
(Debian's etcd-server, started on free loopback ports): every write is one
compare-and-swap transaction with its audit rows; concurrent writers never
lose each other's changes; a write without quorum fails and says whether
anything changed; a large import is split (and says so); a single node's
export seeds the cluster; a broken value is skipped, not fatal."""
import json
import os
import subprocess
import threading

from gslbtest import (BIN, TIME_FACTOR, EtcdCluster, gslbctl, run, test,
                      tmpdir)

PREFIX = "/gslb/"
SVC = "www.example.com."


def ctl(cluster, *args, check=True, prefix=PREFIX, urls=None, timeout=60):
    """bin/gslbctl --etcd URLS --etcd-prefix PREFIX ARGS."""
    argv = [os.path.join(BIN, "gslbctl"), "--etcd", ",".join(urls or cluster.urls),
            "--etcd-prefix", prefix] + [str(a) for a in args]
    p = subprocess.run(argv, capture_output=True, text=True,
                       timeout=timeout * TIME_FACTOR)
    if check and p.returncode != 0:
        raise AssertionError("gslbctl --etcd %s failed (%d): %s%s" % (
            " ".join(map(str, args)), p.returncode, p.stdout, p.stderr))
    return p


def audit_rows(cluster, prefix=PREFIX):
    """Every audit row under prefix, in key (time) order, with its key."""
    _, kv = cluster.range(prefix + "audit/")
    rows = []
    for k in sorted(kv):
        for r in json.loads(kv[k]):
            r["_key"] = k
            rows.append(r)
    return rows


def service_doc(cluster, name=SVC, prefix=PREFIX):
    v = cluster.get(prefix + "services/" + name)
    return json.loads(v) if v is not None else None


def seed(cluster, n_eps=2, prefix=PREFIX):
    ctl(cluster, "service", "add", SVC, "--policy", "weighted", prefix=prefix)
    for i in range(1, n_eps + 1):
        ctl(cluster, "endpoint", "add", SVC, "192.0.2.%d" % i, "--priority", i,
            prefix=prefix)


@test
def write_is_one_cas_txn_with_audit():
    c = EtcdCluster(3)
    seed(c)
    rev0 = c.revision()
    p = ctl(c, "endpoint", "set", SVC, "192.0.2.1", "--weight", "7")
    assert "weight: 1 -> 7" in p.stdout, p.stdout
    # One transaction: the service document and one audit key, one revision.
    assert c.revision() == rev0 + 1, (rev0, c.revision())
    doc = service_doc(c)
    ep = {e["target"]: e for e in doc["endpoints"]}
    assert ep["192.0.2.1"]["weight"] == 7, doc
    rows = audit_rows(c)
    last = rows[-1]
    assert (last["op"], last["kind"], last["service"], last["target"], last["field"],
            last["old"], last["new"]) == ("change", "endpoint", SVC, "192.0.2.1",
                                          "weight", 1, 7), last
    assert last["source"] == "gslbctl" and last["who"].startswith("uid "), last
    # A write that changes nothing commits nothing.
    p = ctl(c, "endpoint", "set", SVC, "192.0.2.1", "--weight", "7")
    assert "no change" in p.stdout and c.revision() == rev0 + 1
    # The same validation, guard rails and exit codes as on a file.
    p = ctl(c, "endpoint", "set", SVC, "192.0.2.1", "--weight", "70000", check=False)
    assert p.returncode == 2 and "65535" in p.stderr, (p.returncode, p.stderr)
    p = ctl(c, "endpoint", "rm", SVC, "192.0.2.9", check=False)
    assert p.returncode == 3, (p.returncode, p.stderr)
    p = ctl(c, "service", "add", SVC, "--policy", "failover", check=False)
    assert p.returncode == 4, (p.returncode, p.stderr)
    ctl(c, "endpoint", "drain", SVC, "192.0.2.1")
    p = ctl(c, "endpoint", "drain", SVC, "192.0.2.2", check=False)
    assert p.returncode != 0 and "force" in p.stderr, (p.returncode, p.stderr)
    assert c.revision() == rev0 + 2
    ctl(c, "--force", "endpoint", "drain", SVC, "192.0.2.2")
    # --dry-run plans and sends nothing.
    r = c.revision()
    p = ctl(c, "--dry-run", "endpoint", "undrain", SVC, "192.0.2.2")
    assert "drained: true -> false" in p.stdout and c.revision() == r, p.stdout
    # --json reports the etcd revision of the commit.
    p = ctl(c, "--json", "endpoint", "undrain", SVC, "192.0.2.2")
    out = json.loads(p.stdout)
    assert out["version"] == c.revision() == r + 1, (out, c.revision())
    # Reads come from etcd: export equals what etcd holds.
    exp = json.loads(ctl(c, "export").stdout)
    assert exp["services"] == [service_doc(c)], exp
    # history reads the audit rows in etcd, numbered by etcd revision.
    h = ctl(c, "history", SVC).stdout
    assert "(gslbctl) ~ endpoint %s 192.0.2.1 weight: 1 -> 7" % SVC in h, h
    hj = json.loads(ctl(c, "--json", "history", "--limit", "2").stdout)
    assert hj["version"] == c.revision() and len(hj["history"]) == 2, hj
    assert hj["history"][-1]["version"] == c.revision(), hj
    # Another prefix is another configuration.
    assert json.loads(ctl(c, "export", prefix="/other/").stdout)["services"] == []
    # A staged shift and damping thresholds are part of the service's
    # document: each write is one more compare-and-swap with its audit row.
    r = c.revision()
    p = ctl(c, "shift", SVC, "192.0.2.2", "--steps", "50,100", "--every", "600")
    assert "stage 1 of 2 (50%), running" in p.stdout, p.stdout
    sh = service_doc(c)["shift"]
    assert (sh["target"], sh["stage"], sh["state"], sh["every"]) == (
        "192.0.2.2", 1, "running", 600), sh
    last = audit_rows(c)[-1]
    assert (last["field"], last["source"]) == ("shift", "gslbctl") and \
        "started to 192.0.2.2" in last["new"], last
    ctl(c, "damping", SVC, "--suppress", "3000")
    assert service_doc(c)["damping"]["suppress"] == 3000, service_doc(c)
    last = audit_rows(c)[-1]
    assert (last["field"], last["old"], last["new"]["suppress"]) == (
        "damping", "defaults", 3000), last
    p = ctl(c, "shift", SVC, "--abort")
    assert service_doc(c)["shift"]["state"] == "aborted", service_doc(c)
    assert c.revision() == r + 3, (r, c.revision())
    # The same refusals as on a file: a second shift while one runs.
    ctl(c, "shift", SVC, "192.0.2.2", "--steps", "50,100", "--every", "600")
    p = ctl(c, "shift", SVC, "192.0.2.1", "--steps", "50,100", "--every", "600",
            check=False)
    assert p.returncode != 0 and c.revision() == r + 4, (p.returncode, p.stderr)
    ctl(c, "shift", SVC, "--abort")


@test
def concurrent_writers_lose_nothing():
    c = EtcdCluster(3)
    seed(c, n_eps=2)
    n = 25
    errors = []

    def writer(target):
        for i in range(2, n + 2):
            # A write that lost the race too often says so and commits
            # nothing; the writer then does it again, as a script would.
            # Any other failure, or too many such refusals, is an error.
            for _ in range(10):
                p = ctl(c, "endpoint", "set", SVC, target, "--weight", i, check=False)
                if p.returncode == 0 or "nothing of this write was committed" not in p.stderr:
                    break
            if p.returncode != 0:
                errors.append((target, i, p.stderr))

    ts = [threading.Thread(target=writer, args=("192.0.2.%d" % k,)) for k in (1, 2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors
    doc = service_doc(c)
    ep = {e["target"]: e["weight"] for e in doc["endpoints"]}
    assert ep == {"192.0.2.1": n + 1, "192.0.2.2": n + 1}, ep
    # Every acknowledged change is in the audit trail exactly once, and each
    # endpoint's changes chain (old of one = new of the previous): a lost
    # update would break the chain.
    for k in (1, 2):
        t = "192.0.2.%d" % k
        ch = [(r["old"], r["new"]) for r in audit_rows(c)
              if r.get("target") == t and r.get("field") == "weight"]
        assert ch == [(i - 1, i) for i in range(2, n + 2)], (t, ch)


@test
def no_quorum_fails_and_changes_nothing():
    c = EtcdCluster(3)
    seed(c)
    before = service_doc(c)
    rev = c.revision()
    c.kill(1)
    c.kill(2)
    p = ctl(c, "endpoint", "set", SVC, "192.0.2.1", "--weight", "9", check=False,
            urls=[c.urls[0]])
    assert p.returncode != 0, p.stdout
    assert "nothing changed" in p.stderr or "outcome unknown" in p.stderr, p.stderr
    c.start(1)
    c.start(2)
    if "nothing changed" in p.stderr:
        assert service_doc(c) == before and c.revision() == rev
    # Reads need a quorum too, and fail the same way without one.
    ctl(c, "endpoint", "set", SVC, "192.0.2.1", "--weight", "9")
    assert {e["target"]: e["weight"] for e in service_doc(c)["endpoints"]}["192.0.2.1"] == 9


@test
def import_seeds_cluster_and_splits_when_large():
    d = tmpdir()
    db = os.path.join(d, "node.db")
    # A single node's store, exported, seeds the cluster.
    gslbctl(db, "init")
    gslbctl(db, "service", "add", SVC, "--policy", "failover")
    gslbctl(db, "endpoint", "add", SVC, "192.0.2.1")
    gslbctl(db, "endpoint", "add", SVC, "2001:db8::1", "--weight", 3)
    gslbctl(db, "rule", "add", SVC, "country:DE", "192.0.2.1")
    exp = gslbctl(db, "export").stdout
    f = os.path.join(d, "export.json")
    with open(f, "w") as fh:
        fh.write(exp)
    c = EtcdCluster(3)
    p = ctl(c, "import", f)
    assert "+ service " + SVC in p.stdout, p.stdout
    assert ctl(c, "export").stdout == exp
    rows = audit_rows(c)
    assert {r["source"] for r in rows} == {"import"}, rows
    assert ctl(c, "import", f).stdout.strip() == "no change"
    # From stdin too (kept for a retry after a conflict).
    p = subprocess.run([os.path.join(BIN, "gslbctl"), "--etcd", ",".join(c.urls), "diff", "-"],
                       input=exp.replace('"weight": 3', '"weight": 4'), capture_output=True,
                       text=True, timeout=60 * TIME_FACTOR)
    assert p.returncode == 0 and "weight: 3 -> 4" in p.stdout, (p.returncode, p.stdout, p.stderr)
    # More services than one transaction holds: several, and stderr says so.
    doc = json.loads(exp)
    base = doc["services"][0]
    big = dict(doc, services=[dict(base, name="s%03d.example.com." % i)
                              for i in range(300)])
    with open(f, "w") as fh:
        json.dump(big, fh)
    p = ctl(c, "import", f, check=False)
    assert p.returncode != 0 and "force" in p.stderr, (p.returncode, p.stderr)
    p = ctl(c, "--force", "import", f)
    assert "not atomic" in p.stderr, p.stderr
    _, kv = c.range(PREFIX + "services/")
    assert len(kv) == 300 and SVC not in [k.split("/")[-1] for k in kv], len(kv)
    assert json.loads(ctl(c, "export").stdout) == big


@test
def broken_value_is_skipped():
    c = EtcdCluster(3)
    seed(c)
    c.put(PREFIX + "services/bad.example.com.", "{not json")
    c.put(PREFIX + "services/worse.example.com.", json.dumps({"name": "worse.example.com.",
                                                            "policy": "nope"}))
    p = ctl(c, "service", "list")
    assert SVC in p.stdout and "bad.example.com." not in p.stdout, p.stdout
    assert "bad.example.com." in p.stderr and "worse.example.com." in p.stderr, p.stderr
    ctl(c, "endpoint", "set", SVC, "192.0.2.2", "--weight", 5)
    assert c.get(PREFIX + "services/bad.example.com.") == "{not json"
    # Replacing the broken value is an ordinary write.
    ctl(c, "service", "add", "bad.example.com.", "--policy", "failover")
    assert service_doc(c, "bad.example.com.")["policy"] == "failover"


if __name__ == "__main__":
    run()
