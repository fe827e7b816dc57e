#!/usr/bin/python3
"""dnsd --etcd: three real etcd members (Debian's etcd-server, on loopback
ports of their own) and three dnsd nodes, each applying the watch stream to
its own SQLite replica. A service written into etcd by hand is answered by
every node within a second, changed and removed the same way; the nodes end
at the same config_revision (never above etcd's) and the same GET
/v1/config; a writer's audit rows travel with its change; bad values are
skipped and reported, never stopping a node."""
import json
import os
import ssl
import subprocess
import time
import urllib.request

from gslbtest import ETCD, Proc, Skip, TIME_FACTOR, _b64, free_port, run, test, tmpdir
from etcdnodes import PREFIX, Node, expect, key, service, start, wait

WWW = "www.gslb.example.com."


def all_answer(nodes, want, within, what):
    """Waits until every node answers WWW with want; returns the seconds
    it took."""
    t0 = time.monotonic()
    wait(lambda: all(nd.answer() == want for nd in nodes), within,
         lambda: "%s: %s" % (what, [(nd.name, nd.answer()) for nd in nodes]))
    return time.monotonic() - t0


def same_revision(cluster, nodes):
    rev = cluster.revision()
    revs = wait(lambda: (lambda r: len(set(r)) == 1 and r)(
        [nd.status()["config_revision"] for nd in nodes]), 5,
        lambda: "config_revision differs: %s" % [nd.status()["config_revision"] for nd in nodes])
    expect(0 < revs[0] <= rev, "config_revision %d vs etcd %d" % (revs[0], rev))
    return revs[0]


@test
def a_change_in_etcd_is_answered_by_every_node_within_a_second():
    cluster, nodes = start()
    expect(all(nd.answer() == [] for nd in nodes), "nothing configured yet")
    cluster.put(key(WWW), json.dumps(service()))
    took = all_answer(nodes, ["192.0.2.1"], 1.0, "add")
    rev1 = same_revision(cluster, nodes)
    # A flip: the second endpoint first.
    cluster.put(key(WWW), json.dumps(service(first="192.0.2.2", second="192.0.2.1")),
                member=1)
    took = max(took, all_answer(nodes, ["192.0.2.2"], 1.0, "flip"))
    rev2 = same_revision(cluster, nodes)
    expect(rev2 > rev1, "revision moved: %d -> %d" % (rev1, rev2))
    configs = [nd.config() for nd in nodes]
    expect(all(c == configs[0] for c in configs), "GET /v1/config differs: %s" % configs)
    expect([s["name"] for s in configs[0]["services"]] == [WWW], configs[0])
    # The endpoint kept its row (and so its health) through the change.
    ids = subprocess.run(["sqlite3", nodes[0].db, "SELECT id, target, priority FROM endpoints "
                          "ORDER BY target"], capture_output=True, text=True).stdout.split()
    expect(ids == ["1|192.0.2.1|1", "2|192.0.2.2|0"], "endpoint ids kept: %s" % ids)
    # Removed.
    cluster.delete(key(WWW), member=2)
    took = max(took, all_answer(nodes, [], 1.0, "delete"))
    same_revision(cluster, nodes)
    for nd in nodes:
        st = nd.status()["etcd"]
        expect(st["connected"] and st["invalid"] == 0 and st["resyncs"] == 1,
               "%s: %s" % (nd.name, st))
        expect(nd.metric("dnsd_etcd_connected") == 1, "metric connected")
    # Each node registered itself with the revision it applied.
    _, kv = cluster.range(PREFIX + "nodes/")
    expect(sorted(kv) == [PREFIX + "nodes/node%d" % i for i in range(3)], kv)
    print("slowest propagation: %.3f s" % took)


@test
def the_writers_audit_rows_are_recorded_as_they_are():
    cluster, nodes = start(n_nodes=2)
    rows = [{"time": 1700000000.5, "who": "alice", "source": "gslbctl", "op": "add",
             "kind": "service", "service": WWW},
            {"time": 1700000000.5, "who": "alice", "source": "gslbctl", "op": "add",
             "kind": "endpoint", "service": WWW, "target": "192.0.2.1"},
            {"time": 1700000000.5, "who": "alice", "source": "gslbctl", "op": "add",
             "kind": "endpoint", "service": WWW, "target": "192.0.2.2"}]
    r = cluster.call("/v3/kv/txn", {"success": [
        {"request_put": {"key": _b64(key(WWW)), "value": _b64(json.dumps(service()))}},
        {"request_put": {"key": _b64(PREFIX + "audit/0001"), "value": _b64(json.dumps(rows))}}]})
    expect(r.get("succeeded"), r)
    all_answer(nodes, ["192.0.2.1"], 1.0, "add with audit rows")
    # A change without rows: the node records its own, by "etcd".
    cluster.put(key(WWW), json.dumps(service(ttl=60)))
    wait(lambda: all(nd.status()["etcd"]["changes"] == 4 for nd in nodes), 2,
         lambda: "ttl change: %s" % [nd.status()["etcd"] for nd in nodes])
    for nd in nodes:
        out = subprocess.run(["sqlite3", nd.db, "SELECT version, who, source, op, kind, "
                              "coalesce(target, ''), coalesce(field, '') FROM audit ORDER BY id"],
                             capture_output=True, text=True).stdout.split("\n")
        expect(out[:4] == ["1|alice|gslbctl|add|service||", "1|alice|gslbctl|add|endpoint|192.0.2.1|",
                           "1|alice|gslbctl|add|endpoint|192.0.2.2|", "2|etcd|etcd|change|service||ttl"],
               "%s audit: %s" % (nd.name, out))


@test
def bad_values_are_skipped_and_reported_never_stopping_a_node():
    cluster, nodes = start(n_nodes=2)
    cluster.put(key(WWW), json.dumps(service()))
    all_answer(nodes, ["192.0.2.1"], 1.0, "good value")
    bad = {
        key("broken.gslb.example.com."): "{not json",
        key("bogus.gslb.example.com."): json.dumps(service("bogus.gslb.example.com.",
                                                           policy="nearest-star")),
        key("other.gslb.example.com."): json.dumps(service("mismatch.gslb.example.com.")),
        # A bad new version of a good service: the node keeps the good one.
        key(WWW): json.dumps(service(first="192.0.2.2", ttl=-5)),
    }
    for k, v in bad.items():
        cluster.put(k, v)
    wait(lambda: all(nd.status()["etcd"]["invalid"] == 4 for nd in nodes), 3,
         lambda: [nd.status()["etcd"] for nd in nodes])
    for nd in nodes:
        expect(nd.answer() == ["192.0.2.1"], "%s still answers the good one" % nd.name)
        expect(nd.metric("dnsd_etcd_invalid_total") == 4, "metric")
        log = nd.log()
        for k in bad:
            expect(k in log, "%s: the log names %s: %s" % (nd.name, k, log))
        expect("not JSON" in log and "mismatch.gslb.example.com." in log, log)
        expect(nd.dnsd.alive(), "%s exited" % nd.name)
    # Later good values are applied, the revision moved past the bad ones.
    cluster.put(key(WWW), json.dumps(service(first="192.0.2.3")))
    all_answer(nodes, ["192.0.2.3"], 1.0, "good value after bad ones")
    rev = same_revision(cluster, nodes)
    expect(rev == cluster.revision() or rev == cluster.revision() - 1, rev)
    # An unknown key is ignored with one warning.
    cluster.put(PREFIX + "weird/thing", "x")
    cluster.put(PREFIX + "weird/other", "y")
    cluster.put(key(WWW), json.dumps(service(first="192.0.2.4")))
    all_answer(nodes, ["192.0.2.4"], 1.0, "after unknown keys")
    for nd in nodes:
        expect(nd.log().count("not a service, audit or node key") == 1, nd.log())


def make_certs(d):
    """A CA, a server certificate for 127.0.0.1 and a client certificate,
    made now with openssl (P-256)."""
    def sh(*a):
        subprocess.run(a, check=True, capture_output=True, timeout=30)
    path = lambda n: os.path.join(d, n)
    sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
       "-nodes", "-keyout", path("ca.key"), "-out", path("ca.pem"), "-days", "2",
       "-subj", "/CN=gslb test CA")
    for name, ext in [("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth"),
                      ("client", "extendedKeyUsage=clientAuth")]:
        with open(path(name + ".ext"), "w") as f:
            f.write(ext + "\n")
        sh("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
           "-keyout", path(name + ".key"), "-out", path(name + ".csr"), "-subj", "/CN=" + name)
        sh("openssl", "x509", "-req", "-in", path(name + ".csr"), "-CA", path("ca.pem"),
           "-CAkey", path("ca.key"), "-CAcreateserial", "-out", path(name + ".pem"), "-days", "2",
           "-extfile", path(name + ".ext"))
    return path


@test
def https_members_with_client_certificates():
    if not os.access(ETCD, os.X_OK):
        raise Skip("no %s" % ETCD)
    d = tmpdir()
    path = make_certs(d)
    cport, pport = free_port(), free_port()
    url = "https://127.0.0.1:%d" % cport
    peer = "http://127.0.0.1:%d" % pport
    etcd = Proc([ETCD, "--name", "t", "--data-dir", os.path.join(d, "data"),
                 "--listen-client-urls", url, "--advertise-client-urls", url,
                 "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                 "--initial-cluster", "t=" + peer, "--initial-cluster-state", "new",
                 "--cert-file", path("server.pem"), "--key-file", path("server.key"),
                 "--trusted-ca-file", path("ca.pem"), "--client-cert-auth",
                 "--log-level", "warn", "--logger", "zap"])
    ctx = ssl.create_default_context(cafile=path("ca.pem"))
    ctx.load_cert_chain(path("client.pem"), path("client.key"))

    def put(k, v):
        body = json.dumps({"key": _b64(k), "value": _b64(v)}).encode()
        req = urllib.request.Request(url + "/v3/kv/put", data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=ctx, timeout=5) as r:
            return json.loads(r.read())
    wait(lambda: put("/probe", "x"), 20, lambda: "etcd with TLS: %s" % etcd.output())
    put(key(WWW), json.dumps(service()))
    tls = ["--etcd-ca-file", path("ca.pem"), "--etcd-cert-file", path("client.pem"),
           "--etcd-key-file", path("client.key")]
    good = Node("tls", [url], extra=tls)
    # Without a client certificate the member refuses: the node says why.
    bad = Node("nocert", [url], extra=["--etcd-ca-file", path("ca.pem")])
    wait(lambda: good.answer() == ["192.0.2.1"] and good.status()["etcd"]["connected"], 5,
         lambda: good.log())
    put(key(WWW), json.dumps(service(first="192.0.2.2", second="192.0.2.1")))
    wait(lambda: good.answer() == ["192.0.2.2"], 1, "change over https")
    st = bad.status()["etcd"]
    expect(not st["connected"] and url in st["last_error"] and "TLS" in st["last_error"] and
           bad.answer() == [], "no client certificate: %s" % st)
    # A CA that did not sign the member's certificate: refused too.
    other = make_certs(tmpdir())
    wrong = Node("wrongca", [url], extra=["--etcd-ca-file", other("ca.pem"),
                                          "--etcd-cert-file", path("client.pem"),
                                          "--etcd-key-file", path("client.key")])
    time.sleep(1)
    st = wrong.status()["etcd"]
    expect(not st["connected"] and "certificate" in st["last_error"] and wrong.answer() == [],
           "wrong CA: %s" % st)
    print("no client certificate: %s; wrong CA: %s" % (bad.status()["etcd"]["last_error"],
                                                        st["last_error"]))
    etcd.stop()


if __name__ == "__main__":
    run()
