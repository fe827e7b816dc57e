#!/usr/bin/python3
"""bench/shift.py - staged traffic shifts, measured.

  shift.py [--clients N] [--seconds S] [--rounds R] [--skip-qps] [--skip-sim]

1. Resolver population (--clients, default 2,000 ECS /24 subnets, each a
   resolver with a TTL-respecting cache that asks again when its answer
   expires; their first expiries spread over one TTL): the service fo.gslb.example.com (failover, TTL 10, endpoints
   192.0.2.1 'old' and 192.0.2.2 'new', HTTP checks of two backends on
   loopback, one real gslb-probe, interval 1 s, fall 2) is moved to 'new'
   whose backend dies 4 s after the move starts, once with a plain flip
   and once with a staged shift (steps 5,25,50,100 every 10 s) that rolls
   back by itself. Every 0.5 s: the share of resolvers whose cached answer
   is the dead target. Prints the curve and the client-seconds spent on the
   dead target for each, and "SHIFTSIM flip_cs=X shift_cs=Y ratio=Y/X".

2. Query rate (--rounds, default 9, of --seconds, default 3, per
   service): dnsd (one thread, CPU 0) saturated by build/bench/loadgen
   (CPU 1) with ECS queries from the same subnets at a plain failover
   service, one in a running shift (stage 1 of 2, 50%) and a geo service
   spilling over (its nearest endpoint down by a real agent's checks, its
   clients spread over two others by capacity), interleaved with the order
   rotating every round; per round, each rate over that round's plain
   rate, and the medians of those ratios: "SHIFTQPS ratio=X" and
   "SPILLQPS ratio=Y" (target >= 0.95 both; a median of paired ratios is
   robust to the machine's load changing between rounds). On a machine
   shared with other work the rate mostly measures the neighbours, so the
   same rounds also give dnsd's CPU time per answer (utime + stime from
   /proc, over loadgen's answered count): "SHIFTCPU ratio" and "SPILLCPU
   ratio" are plain / shift and plain / spill of that (>= 0.95: at most
   about 5% more work per answer).

Everything on 127.0.0.1 in a temporary directory; every process is stopped
by its PID at the end, also on errors. Exit 0 when both ratios are >= 0.95."""
import argparse
import json
import os
import random
import re
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

from benchlib import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("BIN", os.path.join(ROOT, "bin"))
LOADGEN = os.path.join(ROOT, "build", "bench", "loadgen")
FO = "fo.gslb.example.com."
SH = "sh.gslb.example.com."
SP = "sp.gslb.example.com."
OLD, NEW = "192.0.2.1", "192.0.2.2"


def cpu_seconds(pid):
    """User + system CPU time of process pid so far (/proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ctl(db, *args):
    subprocess.run([os.path.join(BIN, "gslbctl"), "--db", db] + [str(a) for a in args],
                   check=True, capture_output=True, text=True)


def qwire(i, name, subnet):
    """An A query for name with ECS subnet/24, id i."""
    q = struct.pack("!HHHHHH", i, 0, 1, 0, 0, 1)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack("!HH", 1, 1)
    addr = socket.inet_aton(subnet)[:3]
    opt = struct.pack("!HHHBB", 8, 7, 1, 24, 0) + addr
    q += b"\0" + struct.pack("!HHIH", 41, 1232, 0, len(opt)) + opt
    return q


def ask(port, name, idx, subnets):
    """{i: (address, ttl)} for the clients idx, one UDP socket, batches."""
    out = {}
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.5)
    qlen = len(name.rstrip(".")) + 2 + 4
    try:
        for _ in range(3):
            todo = [i for i in idx if i not in out]
            for k in range(0, len(todo), 250):
                batch = todo[k:k + 250]
                for i in batch:
                    s.sendto(qwire(i, name, subnets[i]), ("127.0.0.1", port))
                for _ in batch:
                    try:
                        w = s.recv(4096)
                    except socket.timeout:
                        break
                    qid, _, _, an = struct.unpack("!HHHH", w[:8])
                    if an < 1:
                        continue
                    rr = 12 + qlen
                    ttl = struct.unpack("!I", w[rr + 6:rr + 10])[0]
                    out[qid] = (socket.inet_ntoa(w[rr + 12:rr + 16]), ttl)
    finally:
        s.close()
    return out


class Rig:
    def __init__(self, tmp, name):
        self.tmp = tempfile.mkdtemp(dir=tmp)
        self.procs = []
        self.db = os.path.join(self.tmp, "gslb.db")
        self.tok = os.path.join(self.tmp, "token")
        with open(self.tok, "w") as f:
            f.write("bench\n")
        self.bports = [free_port(), free_port()]
        for p in self.bports:
            self.procs.append(subprocess.Popen([sys.executable, os.path.join(
                ROOT, "bench", "failover.py"), "--backend", str(p)]))
        ctl(self.db, "init")
        ctl(self.db, "service", "add", name, "--policy", "failover", "--ttl", 10)
        for k, t in enumerate((OLD, NEW)):
            ctl(self.db, "endpoint", "add", name, t, "--priority", k + 1, "--check",
                "http://127.0.0.1:%d/" % self.bports[k], "--check-interval", 1,
                "--check-fall", 2, "--check-rise", 2)
        self.port, self.api_port = free_port(), free_port()
        self.api = "http://127.0.0.1:%d" % self.api_port
        self.dnsd = subprocess.Popen([os.path.join(BIN, "dnsd"), "--zone",
                                      os.path.join(ROOT, "zones", "gslb.example.com.zone"),
                                      "--db", self.db, "--listen", "127.0.0.1:%d" % self.port,
                                      "--api", "127.0.0.1:%d" % self.api_port,
                                      "--api-token-file", self.tok, "--check-interval", "1"],
                                     stderr=subprocess.DEVNULL)
        self.procs.append(self.dnsd)
        self.procs.append(subprocess.Popen([os.path.join(BIN, "gslb-probe"), "--name", "p",
                                            "--region", "r", "--server", self.api,
                                            "--token-file", self.tok, "--interval", "1"],
                                           stderr=subprocess.DEVNULL))

    def healthy(self):
        try:
            with urllib.request.urlopen(self.api + "/v1/status", timeout=2) as r:
                doc = json.loads(r.read())
            return all(e["health"] == "up" for s in doc["services"] for e in s["endpoints"])
        except OSError:
            return False

    def stop(self):
        for p in self.procs:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def simulate(tmp, mode, subnets, seconds=40):
    """Client-seconds on the dead target, and the curve."""
    rig = Rig(tmp, FO)
    try:
        for _ in range(100):
            if rig.healthy():
                break
            time.sleep(0.2)
        else:
            raise SystemExit("backends never healthy")
        n = len(subnets)
        cache = {}          # client -> (answer, expires)
        first = ask(rig.port, FO, range(n), subnets)
        now = time.monotonic()
        rnd = random.Random(7)
        # Resolvers asked at different times: expiries spread over a TTL.
        for i, (a, ttl) in first.items():
            cache[i] = (a, now + rnd.uniform(0, ttl))
        t0 = time.monotonic()
        if mode == "flip":
            ctl(rig.db, "flip", FO, NEW)
        else:
            ctl(rig.db, "shift", FO, NEW, "--steps", "5,25,50,100", "--every", 10)
        killed = False
        curve, cs = [], 0.0
        while time.monotonic() - t0 < seconds:
            t = time.monotonic()
            if not killed and t - t0 >= 4:
                rig.procs[1].kill()        # the new target's backend dies
                killed = True
            due = [i for i in range(n) if cache.get(i, (None, 0))[1] <= t]
            for i, (a, ttl) in ask(rig.port, FO, due, subnets).items():
                cache[i] = (a, t + max(ttl, 1))
            share = sum(1 for a, _ in cache.values() if a == NEW) / n
            if killed:
                cs += share * n * 0.5
            curve.append((t - t0, share))
            time.sleep(max(0, 0.5 - (time.monotonic() - t)))
        return cs, curve
    finally:
        rig.stop()


def qps(tmp, rounds, seconds, subnets):
    """Query rates of a plain failover service, one in a running shift and
    a geo service spilling (its nearest endpoint down by a real agent's
    checks), measured in interleaved rounds (the order rotates each round so
    no service always runs first), each round's rates divided by that
    round's plain rate; the medians of those ratios."""
    rig_tmp = tempfile.mkdtemp(dir=tmp)
    db = os.path.join(rig_tmp, "gslb.db")
    tok = os.path.join(rig_tmp, "token")
    with open(tok, "w") as f:
        f.write("bench\n")
    ctl(db, "init")
    for name in (FO, SH):
        ctl(db, "service", "add", name, "--policy", "failover", "--ttl", 30)
        ctl(db, "endpoint", "add", name, OLD, "--priority", 1)
        ctl(db, "endpoint", "add", name, NEW, "--priority", 2)
    ctl(db, "shift", SH, NEW, "--steps", "50,100", "--every", 100000)
    # Spill: eu (nearest to every client: --default-location) is checked
    # on a port nobody listens on, so the agent takes it down; its clients
    # spread over west and east (capacities 1:2).
    ctl(db, "service", "add", SP, "--policy", "geo", "--ttl", 30)
    ctl(db, "endpoint", "add", SP, OLD, "--lat", 50.11, "--lon", 8.68, "--capacity", 1,
        "--region", "eu", "--check", "tcp://127.0.0.1:%d" % free_port(),
        "--check-interval", 1, "--check-fall", 1)
    ctl(db, "endpoint", "add", SP, NEW, "--lat", 50.11, "--lon", -11.32, "--capacity", 1,
        "--region", "west")
    ctl(db, "endpoint", "add", SP, "192.0.2.3", "--lat", 50.11, "--lon", 28.68,
        "--capacity", 2, "--region", "east")
    names = (FO, SH, SP)
    files = {}
    for name in names:
        files[name] = os.path.join(rig_tmp, name + "q")
        with open(files[name], "w") as f:
            for s in subnets:
                f.write("%s A %s/24\n" % (name, s))
    port, api_port = free_port(), free_port()
    api = "http://127.0.0.1:%d" % api_port
    dn = subprocess.Popen(["taskset", "-c", "0", os.path.join(BIN, "dnsd"), "--zone",
                           os.path.join(ROOT, "zones", "gslb.example.com.zone"), "--db", db,
                           "--listen", "127.0.0.1:%d" % port, "--threads", "1",
                           "--api", "127.0.0.1:%d" % api_port, "--api-token-file", tok,
                           "--default-location", "50.11,8.68"],
                          stderr=subprocess.DEVNULL)
    agent = subprocess.Popen([os.path.join(BIN, "gslb-probe"), "--name", "p", "--region", "r",
                              "--server", api, "--token-file", tok, "--interval", "1"],
                             stderr=subprocess.DEVNULL)
    res = {n: [] for n in names}
    cpu = {n: [] for n in names}        # dnsd CPU seconds per answer
    ratio = {SH: [], SP: []}
    cratio = {SH: [], SP: []}
    try:
        time.sleep(1)
        got = ask(port, SH, range(len(subnets)), subnets)
        moved = sum(1 for a, _ in got.values() if a == NEW) / max(1, len(got))
        print("shift service: %.1f%% of the subnets on the target" % (100 * moved))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            got = ask(port, SP, range(len(subnets)), subnets)
            if got and all(a != OLD for a, _ in got.values()):
                break
            time.sleep(0.5)
        west = sum(1 for a, _ in got.values() if a == NEW) / max(1, len(got))
        print("spill service: eu down, %.1f%% of the subnets on west, %.1f%% on east" % (
            100 * west, 100 * (1 - west)))
        if any(a == OLD for a, _ in got.values()):
            raise SystemExit("spill service: eu never went down")
        for rnd in range(rounds):
            order = names[rnd % 3:] + names[:rnd % 3]
            for name in order:
                c0 = cpu_seconds(dn.pid)
                out = subprocess.run(["taskset", "-c", "1", LOADGEN, "-d", files[name],
                                      "-s", "127.0.0.1", "-p", str(port), "-l", str(seconds)],
                                     capture_output=True, text=True,
                                     timeout=seconds + 60).stdout
                c1 = cpu_seconds(dn.pid)
                m = re.search(r"RESULT .*?answered=(\d+).*?qps=([0-9.]+)", out)
                if not m:
                    raise SystemExit("loadgen: no RESULT line:\n" + out)
                res[name].append(float(m.group(2)))
                cpu[name].append((c1 - c0) / max(1, int(m.group(1))))
            for name in (SH, SP):
                ratio[name].append(res[name][-1] / res[FO][-1])
                cratio[name].append(cpu[FO][-1] / cpu[name][-1])
            print("round %d: %s" % (rnd + 1, "  ".join(
                "%s %.0f q/s" % (n.split(".")[0], res[n][-1]) for n in names)), flush=True)
    finally:
        for p in (agent, dn):
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
    for name in names:
        print("median %-22s %9.0f q/s" % (name, statistics.median(res[name])))
    r_sh, r_sp = statistics.median(ratio[SH]), statistics.median(ratio[SP])
    print("per-round ratios to plain failover: shift %s; spill %s" % (
        " ".join("%.3f" % r for r in ratio[SH]), " ".join("%.3f" % r for r in ratio[SP])))
    print("SHIFTQPS ratio=%.3f" % r_sh)
    print("SPILLQPS ratio=%.3f" % r_sp)
    for name in names:
        print("median dnsd CPU per answer %-22s %6.2f us" % (name, 1e6 * statistics.median(
            cpu[name])))
    print("per-round CPU-per-answer ratios (plain / this): shift %s; spill %s" % (
        " ".join("%.3f" % r for r in cratio[SH]), " ".join("%.3f" % r for r in cratio[SP])))
    print("SHIFTCPU ratio=%.3f" % statistics.median(cratio[SH]))
    print("SPILLCPU ratio=%.3f" % statistics.median(cratio[SP]))
    return min(r_sh, r_sp)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--skip-qps", action="store_true")
    ap.add_argument("--skip-sim", action="store_true")
    a = ap.parse_args()
    subnets = ["10.%d.%d.0" % (i // 250, i % 250) for i in range(a.clients)]
    if not os.path.exists(LOADGEN) or \
            os.path.getmtime(LOADGEN) < os.path.getmtime(os.path.join(ROOT, "bench", "loadgen.c")):
        os.makedirs(os.path.dirname(LOADGEN), exist_ok=True)
        subprocess.run(["cc", "-O2", "-std=c11", "-D_GNU_SOURCE", "-o", LOADGEN,
                        os.path.join(ROOT, "bench", "loadgen.c")], check=True)
    tmp = tempfile.mkdtemp(prefix="gslb-shiftbench-")
    ok = True
    try:
        if not a.skip_sim:
            out = {}
            for mode in ("flip", "shift"):
                cs, curve = simulate(tmp, mode, subnets)
                out[mode] = cs
                print("%s: client-seconds on the dead target %.0f" % (mode, cs))
                print("  t(s) share: " + " ".join("%.0f:%.2f" % (t, s) for t, s in curve[::4]))
            print("SHIFTSIM flip_cs=%.0f shift_cs=%.0f ratio=%.3f" % (
                out["flip"], out["shift"], out["shift"] / max(1, out["flip"])))
        if not a.skip_qps:
            ok = qps(tmp, a.rounds, a.seconds, subnets) >= 0.95
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
