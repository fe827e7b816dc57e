#!/usr/bin/python3
"""The latency policy with real RTTs measured by real agents (bin/gslb-probe)
and answered by bin/dnsd to ECS clients (dnspython).

1. test_latency_per_region_loopback: two agents ("eu" at Frankfurt, "us" at
   Ashburn) check two HTTP backends on loopback that delay their status line
   per asking agent (tests/tools/agent_backend.py), so each region measures
   its own RTTs. A client in Europe gets the endpoint fastest from eu, a
   client in the US the one fastest from us (the endpoints' coordinates say
   the opposite, so geo would answer differently); swapping the delays moves
   both answers.
2. test_latency_netns_netem: backends in their own network namespaces, behind
   veth pairs with addresses from 10.200.0.0/16 that exist only inside the
   namespaces the test creates; dnsd and the agent run in a "hub" namespace;
   delays with `tc qdisc ... netem`. Skipped (printed as SKIP, counted
   neither as passed nor failed) when namespaces cannot be created or the
   kernel has no netem. Every namespace and qdisc is removed, also on
   failure.
"""
# run_tests: alone
# (network namespaces with fixed addresses, and latencies it measures)

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import traceback
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "tools"))

import dns.exception  # noqa: E402
import dns.message  # noqa: E402
import dns.rcode  # noqa: E402

import gslbtest  # noqa: E402
from gslbtest import (BIN, ZONES, Dnsd, Proc, Skip, answer_texts, ecs_query,  # noqa: E402
                      free_port, gslbctl, make_mmdb, on_cleanup, run, test, tmpdir)
from agent_backend import AgentBackend  # noqa: E402

TOKEN = "latency-token"
SVC = "lat.gslb.example.com."
EU_CLIENT = "127.0.1.0"     # Frankfurt in tests/fixtures/geo/networks.tsv
US_CLIENT = "127.0.2.0"     # Ashburn
AP_CLIENT = "127.0.3.0"     # Tokyo: nearer to Frankfurt than to Ashburn
X, Y = "192.0.2.10", "198.51.100.10"
SLOW = 0.08                 # seconds before the status line


def token_file():
    p = os.path.join(tmpdir(), "token")
    with open(p, "w") as f:
        f.write(TOKEN + "\n")
    return p


def timed(pred, timeout, what, logs):
    t0 = time.monotonic()
    deadline = t0 + timeout
    while time.monotonic() < deadline:
        if pred():
            return time.monotonic() - t0
        time.sleep(0.1)
    raise AssertionError("%s: not within %.1fs\n%s" % (what, timeout, logs()))


@test
def test_latency_per_region_loopback():
    mmdb = make_mmdb()
    db = os.path.join(tmpdir(), "gslb.db")
    tok = token_file()
    bx, by = AgentBackend(free_port()).start(), AgentBackend(free_port()).start()
    on_cleanup(bx.stop)
    on_cleanup(by.stop)
    gslbctl(db, "init")
    gslbctl(db, "service", "add", SVC, "--policy", "latency", "--ttl", "5")
    # X is placed in the US and Y in Europe: geo would answer Y to Europe.
    gslbctl(db, "endpoint", "add", SVC, X, "--lat", "39.04", "--lon", "-77.49",
            "--check", bx.url, "--check-interval", "1", "--check-rise", "2")
    gslbctl(db, "endpoint", "add", SVC, Y, "--lat", "50.11", "--lon", "8.68",
            "--check", by.url, "--check-interval", "1", "--check-rise", "2")
    api_port = free_port()
    api = "http://127.0.0.1:%d" % api_port
    d = Dnsd(["--zone", os.path.join(ZONES, "gslb.example.com.zone"), "--db", db,
              "--geoip", mmdb, "--api", "127.0.0.1:%d" % api_port,
              "--api-token-file", tok, "--check-interval", "1", "--threads", "2"])

    def ask(client):
        r = d.udp(None, query=ecs_query(SVC, "A", client, 24))
        assert r.rcode() == dns.rcode.NOERROR, r
        return answer_texts(r)

    # Before any measurement the latency policy answers like geo.
    assert ask(EU_CLIENT) == [Y] and ask(US_CLIENT) == [X], (ask(EU_CLIENT), ask(US_CLIENT))
    agents = {}
    for name, region, lat, lon in [("probe-eu", "eu", 50.11, 8.68),
                                   ("probe-us", "us", 39.04, -77.49)]:
        agents[region] = Proc([os.path.join(BIN, "gslb-probe"), "--name", name,
                               "--region", region, "--lat", str(lat), "--lon", str(lon),
                               "--server", api, "--token-file", tok, "--interval", "1"])
        for b in (bx, by):
            b.register(region, agents[region].pid)

    def logs():
        return "--- dnsd\n%s\n--- eu\n%s\n--- us\n%s\n--- explain\n%s" % (
            d.output()[-2000:], agents["eu"].output()[-1500:],
            agents["us"].output()[-1500:],
            gslbctl(db, "explain", SVC, "--client", EU_CLIENT + "/24", "--geoip", mmdb,
                    check=False).stdout)

    def rtts():
        """{target: {region: rtt_ms}} from the store (dnsd writes it at
        least once a second)."""
        st = json.loads(gslbctl(db, "status", "--json").stdout)
        return {e["target"]: {r["region"]: r["rtt_ms"] for r in e["latency"]}
                for e in st["services"][0]["endpoints"]}

    def api_rtts():
        """The same from dnsd's GET /v1/status (live)."""
        with urllib.request.urlopen(api + "/v1/status", timeout=2) as r:
            st = json.load(r)
        return {e["target"]: {x["region"]: x["rtt_ms"] for x in e["latency"]}
                for e in st["services"][0]["endpoints"]}

    def measured_both():
        lat = rtts()
        return all(set(lat[t]) == {"eu", "us"} for t in (X, Y))

    # eu sees X fast and Y slow, us the opposite.
    bx.set("us", SLOW)
    by.set("eu", SLOW)
    t = timed(lambda: measured_both() and ask(EU_CLIENT) == [X] and ask(US_CLIENT) == [Y],
              12, "answers by per-region RTT", logs)
    print("    per-region RTT answers after %.1f s" % t)
    assert ask(AP_CLIENT) == [X], ask(AP_CLIENT)      # nearest region: eu
    ex = json.loads(gslbctl(db, "explain", SVC, "--client", EU_CLIENT + "/24",
                            "--geoip", mmdb, "--json").stdout)
    assert ex["answer"] == [X], ex
    why = {e["target"]: e["reason"] for e in ex["endpoints"]}
    assert "region eu" in why[X] and "rtt" in why[X] and "rtt" in why[Y], why
    for lat in (rtts(), api_rtts()):
        assert lat[X]["eu"] < lat[X]["us"] and lat[Y]["us"] < lat[Y]["eu"], lat
        assert lat[X]["us"] > SLOW * 1000 * 0.5, lat

    # Swap the delays: both answers move.
    bx.set("us", None)
    by.set("eu", None)
    bx.set("eu", SLOW)
    by.set("us", SLOW)
    t = timed(lambda: ask(EU_CLIENT) == [Y] and ask(US_CLIENT) == [X], 15,
              "answers after swapping the delays", logs)
    print("    answers moved %.1f s after the delays were swapped" % t)
    assert ask(AP_CLIENT) == [Y], ask(AP_CLIENT)
    # Stable afterwards (no flapping with steady RTTs).
    for _ in range(10):
        assert ask(EU_CLIENT) == [Y] and ask(US_CLIENT) == [X]
        time.sleep(0.1)


# --- network namespaces -----------------------------------------------------



def sh(*argv, check=True):
    p = subprocess.run(list(argv), capture_output=True, text=True, timeout=20)
    if check and p.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(argv), p.returncode,
                                                 (p.stderr or p.stdout).strip()))
    return p


def socket_in_netns(ns, family, kind):
    """A socket created inside network namespace ns (it stays there)."""
    import socket
    return gslbtest.in_netns(ns, lambda: socket.socket(family, kind), timeout=5)


class Netns:
    """Namespaces, veth pairs and qdiscs created by this test; destroy()
    removes all of them (qdiscs first, then namespaces) and tolerates
    partial setups."""

    def __init__(self):
        self.tag = "%d" % os.getpid()
        self.namespaces = []
        self.qdiscs = []        # (namespace, device)

    def add_ns(self, name):
        name = "gslbt-%s-%s" % (name, self.tag)
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        return name

    def link(self, hub, hub_dev, ns, ns_dev, hub_addr, ns_addr):
        # Created directly inside the two namespaces: nothing appears in
        # the root namespace.
        sh("ip", "link", "add", "name", hub_dev, "netns", hub, "type", "veth",
           "peer", "name", ns_dev, "netns", ns)
        sh("ip", "-n", hub, "addr", "add", hub_addr, "dev", hub_dev)
        sh("ip", "-n", ns, "addr", "add", ns_addr, "dev", ns_dev)
        sh("ip", "-n", hub, "link", "set", hub_dev, "up")
        sh("ip", "-n", ns, "link", "set", ns_dev, "up")

    def delay(self, ns, dev, ms):
        verb = "change" if (ns, dev) in self.qdiscs else "add"
        sh("ip", "netns", "exec", ns, "tc", "qdisc", verb, "dev", dev, "root",
           "netem", "delay", "%dms" % ms)
        if verb == "add":
            self.qdiscs.append((ns, dev))

    def destroy(self):
        problems = []
        for ns, dev in reversed(self.qdiscs):
            p = sh("ip", "netns", "exec", ns, "tc", "qdisc", "del", "dev", dev, "root",
                   check=False)
            if p.returncode != 0:
                problems.append("tc qdisc del dev %s in %s: %s" % (dev, ns, p.stderr.strip()))
        self.qdiscs = []
        for ns in reversed(self.namespaces):
            p = sh("ip", "netns", "del", ns, check=False)
            if p.returncode != 0:
                problems.append("ip netns del %s: %s" % (ns, p.stderr.strip()))
        self.namespaces = []
        left = [n for n in sh("ip", "netns", "list").stdout.split() if n.endswith("-" + self.tag)
                and n.startswith("gslbt-")]
        if left:
            problems.append("namespaces left: %s" % left)
        if problems:
            raise AssertionError("cleanup: " + "; ".join(problems))


def remove_stale_namespaces():
    """Namespaces of an earlier run of this test that was killed before its
    cleanup (gslbt-NAME-PID with PID gone): their processes are stopped (by
    the PIDs `ip netns pids` lists) and the namespaces deleted."""
    try:
        names = sh("ip", "netns", "list").stdout.split()
    except (RuntimeError, OSError):
        return
    for name in names:
        m = re.match(r"^gslbt-[a-z0-9]+-(\d+)$", name)
        if not m or os.path.exists("/proc/" + m.group(1)):
            continue
        for pid in sh("ip", "netns", "pids", name, check=False).stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (OSError, ValueError):
                pass
        sh("ip", "netns", "del", name, check=False)
        print("    removed stale namespace %s" % name)


def netns_supported():
    """None if namespaces, veth and netem all work here, else why not.
    Leaves nothing behind."""
    if os.geteuid() != 0:
        return "not root (network namespaces need CAP_NET_ADMIN)"
    n = Netns()
    try:
        try:
            a, b = n.add_ns("chk"), n.add_ns("chk2")
        except RuntimeError as e:
            return "cannot create network namespaces: %s" % e
        try:
            n.link(a, "gslbt0", b, "gslbt1", "10.200.255.1/30", "10.200.255.2/30")
        except RuntimeError as e:
            return "cannot create veth pairs: %s" % e
        try:
            n.delay(a, "gslbt0", 1)
        except RuntimeError as e:
            return "kernel has no netem qdisc (CONFIG_NET_SCH_NETEM; " \
                   "`modprobe sch_netem`): %s" % e
        return None
    finally:
        n.destroy()


@test
def test_latency_netns_netem():
    remove_stale_namespaces()
    why = netns_supported()
    if why:
        raise Skip(why)
    n = Netns()
    procs = []
    try:
        hub = n.add_ns("hub")
        bns = []
        for i in (1, 2):
            ns = n.add_ns("b%d" % i)
            n.link(hub, "gth%d" % i, ns, "gtb%d" % i, "10.200.%d.1/30" % i,
                   "10.200.%d.2/30" % i)
            bns.append(ns)
        # Backends: python3 -m http.server inside each backend namespace.
        www = tmpdir()
        with open(os.path.join(www, "index.html"), "w") as f:
            f.write("OK\n")
        for i, ns in enumerate(bns, 1):
            procs.append(Proc(["ip", "netns", "exec", ns, sys.executable, "-m", "http.server",
                               "8000", "--bind", "10.200.%d.2" % i, "--directory", www]))
        mmdb = make_mmdb()
        db = os.path.join(tmpdir(), "gslb.db")
        tok = token_file()
        gslbctl(db, "init")
        gslbctl(db, "service", "add", SVC, "--policy", "latency", "--ttl", "5")
        # Geo (the answer before any RTT is known) would give X, in
        # Frankfurt, to the Frankfurt client; Y is placed in Tokyo.
        for i, target, lat, lon in ((1, X, "50.11", "8.68"), (2, Y, "35.69", "139.69")):
            gslbctl(db, "endpoint", "add", SVC, target, "--lat", lat, "--lon", lon,
                    "--check", "http://10.200.%d.2:8000/" % i, "--check-interval", "1",
                    "--check-rise", "2")
        # dnsd and the agent in the hub namespace (its own loopback).
        dns_port, api_port = 5300, 8053
        dnsd = Proc(["ip", "netns", "exec", hub, os.path.join(BIN, "dnsd"),
                     "--listen", "127.0.0.1:%d" % dns_port,
                     "--zone", os.path.join(ZONES, "gslb.example.com.zone"), "--db", db,
                     "--geoip", mmdb, "--api", "127.0.0.1:%d" % api_port,
                     "--api-token-file", tok, "--check-interval", "1", "--threads", "2"])
        procs.append(dnsd)
        agent = Proc(["ip", "netns", "exec", hub, os.path.join(BIN, "gslb-probe"),
                      "--name", "probe-eu", "--region", "eu", "--lat", "50.11",
                      "--lon", "8.68", "--server", "http://127.0.0.1:%d" % api_port,
                      "--token-file", tok, "--interval", "1"])
        procs.append(agent)
        import socket
        sock = socket_in_netns(hub, socket.AF_INET, socket.SOCK_DGRAM)
        on_cleanup(sock.close)

        sock.settimeout(1)

        def ask():
            q = ecs_query(SVC, "A", EU_CLIENT, 24)
            try:
                sock.sendto(q.to_wire(), ("127.0.0.1", dns_port))
                for _ in range(5):      # skip late answers to earlier queries
                    r = dns.message.from_wire(sock.recvfrom(4096)[0])
                    if r.id == q.id:
                        break
                else:
                    return None
            except (OSError, dns.exception.DNSException):
                return None
            return answer_texts(r) if r.rcode() == dns.rcode.NOERROR else None

        def logs():
            return "--- dnsd\n%s\n--- agent\n%s\n--- explain\n%s" % (
                dnsd.output()[-2000:], agent.output()[-2000:],
                gslbctl(db, "explain", SVC, "--client", EU_CLIENT + "/24", "--geoip", mmdb,
                        check=False).stdout)

        timed(lambda: ask() == [X], 10, "dnsd answering (geo: X) in the hub namespace", logs)
        # 40 ms towards backend 1, 1 ms towards backend 2: Y (backend 2).
        n.delay(hub, "gth1", 40)
        n.delay(hub, "gth2", 1)
        t = timed(lambda: ask() == [Y], 10, "answer Y (backend 1 delayed 40 ms)", logs)
        print("    netem: Y answered after %.1f s" % t)
        st = json.loads(gslbctl(db, "status", "--json").stdout)
        rtt = {e["target"]: e["latency"][0]["rtt_ms"] for e in st["services"][0]["endpoints"]}
        assert rtt[X] > 30 and rtt[Y] < rtt[X], rtt
        ex = json.loads(gslbctl(db, "explain", SVC, "--client", EU_CLIENT + "/24",
                                "--geoip", mmdb, "--json").stdout)
        why = {e["target"]: e["reason"] for e in ex["endpoints"]}
        assert ex["answer"] == [Y] and "rtt" in why[Y] and "rtt" in why[X], ex
        # Move the delay: the answer follows.
        n.delay(hub, "gth1", 1)
        n.delay(hub, "gth2", 60)
        t = timed(lambda: ask() == [X], 12, "answer X after moving the delay", logs)
        print("    netem: answer moved to X %.1f s after the delays changed" % t)
    finally:
        for p in reversed(procs):
            p.stop()
        n.destroy()


if __name__ == "__main__":
    # SIGTERM (a runner's timeout) unwinds through the finally blocks, so
    # namespaces and processes are still removed.
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    run()
