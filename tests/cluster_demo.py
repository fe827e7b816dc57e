#!/usr/bin/python3
"""`make cluster-demo`: three etcd members and three dnsd nodes on loopback,
sharing one configuration through etcd.

Starts three members of Debian's etcd (etcd-server) with --pre-vote on free
loopback ports and data in build/cluster-demo/, three dnsd (--etcd with
every member, each its own replica store and API), and writes one failover
service into etcd. Prints what to try; Ctrl-C stops everything it started.

  tests/cluster_demo.py              run until Ctrl-C
  tests/cluster_demo.py --selftest   run the printed commands, check them, stop
"""
import base64
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("BIN", os.path.join(ROOT, "bin"))
DIR = os.path.join(ROOT, "build", "cluster-demo")
ETCD = "/usr/bin/etcd"
TOKEN = "cluster-demo-token"
WWW = "www.gslb.example.com."
procs = []


def free_port():
    for _ in range(50):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.bind(("127.0.0.1", 0))
        port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
        except OSError:
            t.close()
            continue
        u.close()
        t.close()
        return port
    raise SystemExit("cluster-demo: no free port")


def start(name, argv):
    log = open(os.path.join(DIR, name + ".log"), "w")
    p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    procs.append((name, p))
    return p


def stop_all():
    # One at a time: etcd members stopped all at once wait for each other.
    for name, p in reversed(procs):
        if p.poll() is None:
            p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


def b64(s):
    return base64.b64encode(s.encode()).decode()


def gateway(url, path, body, timeout=3):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def service(first, second):
    return {"name": WWW, "policy": "failover", "ttl": 30, "answers": None,
            "sticky": False, "when_down": "open",
            "endpoints": [{"target": first, "weight": 1, "priority": 0},
                          {"target": second, "weight": 1, "priority": 1}],
            "rules": []}


def wait_until(fn, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if fn():
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise SystemExit("cluster-demo: %s did not happen within %ss (logs in %s)" %
                     (what, timeout, DIR))


def setup():
    if not os.access(ETCD, os.X_OK):
        raise SystemExit("cluster-demo: needs %s (apt-get install etcd-server)" % ETCD)
    shutil.rmtree(DIR, ignore_errors=True)
    os.makedirs(DIR)
    names = ["eu", "us", "ap"]
    cport = [free_port() for _ in names]
    pport = [free_port() for _ in names]
    urls = ["http://127.0.0.1:%d" % p for p in cport]
    cluster = ",".join("%s=http://127.0.0.1:%d" % (n, p) for n, p in zip(names, pport))
    etcd = []
    for i, n in enumerate(names):
        etcd.append(start("etcd-" + n, [
            ETCD, "--name", n, "--data-dir", os.path.join(DIR, "etcd-" + n),
            "--listen-client-urls", urls[i], "--advertise-client-urls", urls[i],
            "--listen-peer-urls", "http://127.0.0.1:%d" % pport[i],
            "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % pport[i],
            "--initial-cluster", cluster, "--initial-cluster-state", "new",
            "--initial-cluster-token", "cluster-demo-%d" % os.getpid(), "--pre-vote",
            "--heartbeat-interval", "100", "--election-timeout", "1000",
            "--auto-compaction-mode", "revision", "--auto-compaction-retention", "1000",
            "--log-level", "warn", "--logger", "zap"]))
    for u in urls:
        wait_until(lambda: gateway(u, "/v3/kv/range", {"key": b64("/")}), 20, "etcd at " + u)
    gateway(urls[0], "/v3/kv/put", {"key": b64("/gslb/services/" + WWW),
                                    "value": b64(json.dumps(service("192.0.2.1", "192.0.2.2")))})
    tok = os.path.join(DIR, "token")
    with open(tok, "w") as f:
        f.write(TOKEN + "\n")
    os.chmod(tok, 0o600)
    nodes = []
    for i, n in enumerate(names):
        dns, api = free_port(), free_port()
        order = urls[i:] + urls[:i]          # each node starts at its own member
        argv = [os.path.join(BIN, "dnsd"), "--listen", "127.0.0.1:%d" % dns,
                "--zone", os.path.join(ROOT, "zones", "gslb.example.com.zone"),
                "--db", os.path.join(DIR, "ns-%s.db" % n), "--node-name", "ns-" + n,
                "--api", "127.0.0.1:%d" % api, "--api-token-file", tok, "--db-poll-ms", "100"]
        for u in order:
            argv += ["--etcd", u]
        nodes.append({"name": "ns-" + n, "dns": dns, "api": api, "proc": start("dnsd-" + n, argv)})
    for nd in nodes:
        wait_until(lambda: status(nd)["etcd"]["connected"], 20, nd["name"] + " connected to etcd")
    return {"urls": urls, "etcd": etcd, "names": names, "nodes": nodes}


def status(nd):
    with urllib.request.urlopen("http://127.0.0.1:%d/v1/status" % nd["api"], timeout=3) as r:
        return json.loads(r.read())


def commands(env):
    """(description, shell command) pairs the demo prints."""
    eps = ",".join(env["urls"])
    doc = json.dumps(service("192.0.2.2", "192.0.2.1"), separators=(",", ":"))
    out = []
    for nd in env["nodes"]:
        out.append(("%s answers" % nd["name"],
                    "dig +short @127.0.0.1 -p %d %s" % (nd["dns"], WWW)))
    out.append(("flip in etcd: every node answers 192.0.2.2 within a second",
                "ETCDCTL_API=3 etcdctl --endpoints=%s put /gslb/services/%s %s" %
                (eps, WWW, shlex.quote(doc))))
    for nd in env["nodes"]:
        out.append(("%s after the flip" % nd["name"],
                    "dig +short @127.0.0.1 -p %d %s" % (nd["dns"], WWW)))
    out.append(("each node's applied revision (the same on all)",
                "for p in %s; do curl -s http://127.0.0.1:$p/v1/status | python3 -c "
                "'import json,sys; d=json.load(sys.stdin); print(d[\"etcd\"][\"node\"], "
                "d[\"config_revision\"], d[\"etcd\"][\"connected\"])'; done" %
                " ".join(str(nd["api"]) for nd in env["nodes"])))
    out.append(("the nodes registered in etcd",
                "ETCDCTL_API=3 etcdctl --endpoints=%s get --prefix /gslb/nodes/ --keys-only" % eps))
    return out


def show(env):
    print("\ncluster-demo: three etcd members and three dnsd on loopback (logs in %s)\n" % DIR)
    for n, (name, p) in zip(env["names"], [(x, y) for x, y in procs if x.startswith("etcd-")]):
        print("  etcd %-3s pid %-7d %s" % (n, p.pid, env["urls"][env["names"].index(n)]))
    for nd in env["nodes"]:
        print("  dnsd %-6s pid %-7d dns 127.0.0.1:%d  api http://127.0.0.1:%d" %
              (nd["name"], nd["proc"].pid, nd["dns"], nd["api"]))
    print("\nTry:")
    for what, cmd in commands(env):
        print("\n  # " + what + "\n  " + cmd)
    print("\n  # stop an etcd member (kill PID) or all three: the nodes keep answering from their")
    print("  # replicas, /v1/status says \"connected\": false; they catch up when etcd is back.")
    print("  # A bad value is skipped and counted (dnsd_etcd_invalid_total in /metrics):")
    print("  ETCDCTL_API=3 etcdctl --endpoints=%s put /gslb/services/bad.gslb.example.com. '{oops'"
          % ",".join(env["urls"]))
    print("\nCtrl-C stops everything.\n", flush=True)


def selftest(env):
    passed = failed = 0
    cmds = commands(env)

    def check(name, ok, detail=""):
        nonlocal passed, failed
        if ok:
            passed += 1
        else:
            failed += 1
            print("FAIL %s %s" % (name, detail))

    def sh(cmd):
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=30)

    n = len(env["nodes"])
    for what, cmd in cmds[:n]:
        out = sh(cmd).stdout.split()
        check(what, out == ["192.0.2.1"], out)
    p = sh(cmds[n][1])
    check("etcdctl put", p.returncode == 0, p.stderr)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 1.0:
        if all(sh(c).stdout.split() == ["192.0.2.2"] for _, c in cmds[n + 1:2 * n + 1]):
            break
        time.sleep(0.05)
    for what, cmd in cmds[n + 1:2 * n + 1]:
        out = sh(cmd).stdout.split()
        check(what, out == ["192.0.2.2"], out)
    time.sleep(0.3)
    lines = sh(cmds[2 * n + 1][1]).stdout.split("\n")
    revs = {ln.split()[1] for ln in lines if ln.strip()}
    check("same revision on every node", len(revs) == 1 and len(lines) >= n, lines)
    keys = sh(cmds[2 * n + 2][1]).stdout.split()
    check("nodes registered", sorted(keys) == sorted("/gslb/nodes/" + nd["name"]
                                                     for nd in env["nodes"]), keys)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


def main():
    try:
        env = setup()
        if "--selftest" in sys.argv:
            return selftest(env)
        show(env)
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
        while all(p.poll() is None for _, p in procs if _.startswith("dnsd")):
            time.sleep(1)
        print("cluster-demo: a dnsd exited; see its log in %s" % DIR)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop_all()


if __name__ == "__main__":
    sys.exit(main())
