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

2. Query rate (--rounds, default 3, of --seconds, default 6): dnsd (one
   thread, CPU 0) saturated by build/bench/loadgen (CPU 1) with ECS queries
   from the same subnets, alternating a plain failover service and one in a
   running shift (stage 1 of 2, 50%); medians and "SHIFTQPS ratio=X"
   (target >= 0.95).

Everything on 127.0.0.1 in a temporary directory; every process is stopped
by its PID at the end, also on errors. Exit 0 when the ratio is >= 0.95."""
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("BIN", os.path.join(ROOT, "bin"))
LOADGEN = os.path.join(ROOT, "build", "bench", "loadgen")
FO = "fo.gslb.example.com."
SH = "sh.gslb.example.com."
OLD, NEW = "192.0.2.1", "192.0.2.2"


def free_port():
    for _ in range(50):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            u.close()
            s.close()
        return port
    raise SystemExit("no free port")


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
    rig_tmp = tempfile.mkdtemp(dir=tmp)
    db = os.path.join(rig_tmp, "gslb.db")
    ctl(db, "init")
    for name in (FO, SH):
        ctl(db, "service", "add", name, "--policy", "failover", "--ttl", 30)
        ctl(db, "endpoint", "add", name, OLD, "--priority", 1)
        ctl(db, "endpoint", "add", name, NEW, "--priority", 2)
    ctl(db, "shift", SH, NEW, "--steps", "50,100", "--every", 100000)
    files = {}
    for name in (FO, SH):
        files[name] = os.path.join(rig_tmp, name + "q")
        with open(files[name], "w") as f:
            for s in subnets:
                f.write("%s A %s/24\n" % (name, s))
    port = free_port()
    dn = subprocess.Popen(["taskset", "-c", "0", os.path.join(BIN, "dnsd"), "--zone",
                           os.path.join(ROOT, "zones", "gslb.example.com.zone"), "--db", db,
                           "--listen", "127.0.0.1:%d" % port, "--threads", "1"],
                          stderr=subprocess.DEVNULL)
    res = {FO: [], SH: []}
    try:
        time.sleep(1)
        got = ask(port, SH, range(len(subnets)), subnets)
        moved = sum(1 for a, _ in got.values() if a == NEW) / max(1, len(got))
        print("shift service: %.1f%% of the subnets on the target" % (100 * moved))
        for rnd in range(rounds):
            for name in (FO, SH):
                out = subprocess.run(["taskset", "-c", "1", LOADGEN, "-d", files[name],
                                      "-s", "127.0.0.1", "-p", str(port), "-l", str(seconds)],
                                     capture_output=True, text=True,
                                     timeout=seconds + 60).stdout
                m = re.search(r"RESULT .*?qps=([0-9.]+)", out)
                if not m:
                    raise SystemExit("loadgen: no RESULT line:\n" + out)
                res[name].append(float(m.group(1)))
                print("round %d %-22s %9.0f q/s" % (rnd + 1, name, res[name][-1]), flush=True)
    finally:
        dn.terminate()
        dn.wait(10)
    a, b = statistics.median(res[FO]), statistics.median(res[SH])
    print("median: %.0f q/s plain failover, %.0f q/s in a shift" % (a, b))
    print("SHIFTQPS ratio=%.3f" % (b / a))
    return b / a


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=6)
    ap.add_argument("--rounds", type=int, default=3)
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
