"""Shared by the test_etcd_node*.py scripts: real etcd members
(gslbtest.EtcdCluster) and dnsd nodes started with --etcd, each with its
own replica store, API and token; helpers to read their status, metrics,
configuration and answers."""
import json
import os
import time
import urllib.request

from gslbtest import Dnsd, EtcdCluster, ZONES, TIME_FACTOR, free_port, tmpdir, answer_texts

PREFIX = "/gslb/"
ZONE_ARGS = ["--zone", os.path.join(ZONES, "gslb.example.com.zone")]
TOKEN = "etcd-node-test-token-0123456789"


def service(name="www.gslb.example.com.", first="192.0.2.1", second="192.0.2.2", **kw):
    """One service document as the export format has it: failover between
    two addresses, first answered."""
    doc = {"name": name, "policy": "failover", "ttl": 30, "answers": None,
           "sticky": False, "when_down": "open",
           "endpoints": [{"target": first, "weight": 1, "priority": 0},
                         {"target": second, "weight": 1, "priority": 1}],
           "rules": []}
    doc.update(kw)
    return doc


def key(name):
    return PREFIX + "services/" + name


class Node:
    """One dnsd --etcd with its store, API and log."""

    def __init__(self, name, urls, db=None, extra=()):
        self.name = name
        self.urls = list(urls)
        d = tmpdir()
        self.db = db or os.path.join(d, name + ".db")
        self.tok = os.path.join(d, "token")
        with open(self.tok, "w") as f:
            f.write(TOKEN + "\n")
        os.chmod(self.tok, 0o600)
        self.extra = list(extra)
        self.port = free_port()
        self.api_port = free_port()
        self.dnsd = None
        self.start()

    def start(self):
        args = ZONE_ARGS + ["--db", self.db, "--node-name", self.name,
                            "--api", "127.0.0.1:%d" % self.api_port,
                            "--api-token-file", self.tok, "--db-poll-ms", "100"]
        for u in self.urls:
            args += ["--etcd", u]
        self.dnsd = Dnsd(args + self.extra, port=self.port)

    def stop(self):
        self.dnsd.stop()

    def kill(self):
        self.dnsd.kill()

    def get(self, path, token=True):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.api_port, path))
        if token:
            req.add_header("Authorization", "Bearer " + TOKEN)
        with urllib.request.urlopen(req, timeout=5 * TIME_FACTOR) as r:
            return r.read().decode()

    def status(self):
        return json.loads(self.get("/v1/status"))

    def metric(self, name):
        for ln in self.get("/metrics").splitlines():
            if ln.startswith(name + " "):
                return float(ln.split()[1])
        return None

    def config(self):
        return json.loads(self.get("/v1/config"))

    def answer(self, qname="www.gslb.example.com."):
        """The answer's rdata texts, or None when the node did not answer."""
        try:
            return answer_texts(self.dnsd.udp(qname))
        except Exception:
            return None

    def log(self):
        return self.dnsd.output()


def start(n_etcd=3, n_nodes=3, compaction=None):
    """etcd members and dnsd nodes; node i lists the members starting at
    member i, so the nodes watch different members."""
    cluster = EtcdCluster(n_etcd, compaction=compaction)
    nodes = []
    for i in range(n_nodes):
        urls = cluster.urls[i % n_etcd:] + cluster.urls[:i % n_etcd]
        nodes.append(Node("node%d" % i, urls))
    for nd in nodes:
        wait(lambda: nd.status().get("etcd", {}).get("connected"), 10,
             "%s connects to etcd: %s" % (nd.name, nd.log()))
    return cluster, nodes


def wait(fn, timeout, what):
    """Polls fn until true within timeout (times TIME_FACTOR) seconds, else
    fails with what."""
    deadline = time.monotonic() + timeout * TIME_FACTOR
    while True:
        try:
            v = fn()
        except Exception:
            v = None
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out: %s" % (what() if callable(what) else what))
        time.sleep(0.02)


def expect(cond, what):
    if not cond:
        raise AssertionError(what() if callable(what) else what)
