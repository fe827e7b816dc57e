"""Helpers for integration tests: run the real binaries on loopback, in a
temporary directory, on free ports; stop everything by PID, also on failure.

A test file defines functions decorated with @test and ends with
    if __name__ == "__main__": run()
which runs them in order and prints 'N passed, N failed'.
"""
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.flags

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("BIN", os.path.join(ROOT, "bin"))
# How much slower the binaries under test are than a normal build: set by
# `make asan` and `make tsan` (GSLB_TIME_FACTOR). A test that bounds how
# long something may take multiplies its bound by this; one that measures
# speed itself skips (Skip, with the reason) when it is above 1.
TIME_FACTOR = max(1.0, float(os.environ.get("GSLB_TIME_FACTOR") or 1))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
ZONES = os.path.join(ROOT, "zones")

_tests = []
_procs = []
_cleanups = []


class Skip(Exception):
    """Raised by a test that cannot run here (a missing kernel feature, not
    root): it is reported and counted as skipped, never as passed."""


def on_cleanup(fn):
    """Runs fn after the current test, also on failure (last in, first out)."""
    _cleanups.append(fn)


def test(fn):
    _tests.append(fn)
    return fn


def forget_tests():
    """Drops the tests registered so far: a script that imports another
    test script for its helpers then runs only the tests it defines."""
    del _tests[:]


# tests/run_tests.py runs several scripts at once and gives each running
# script a block of ports of its own (GSLB_PORT_BLOCK=K: ports PORT_BASE +
# K * PORT_SPAN and up), below the kernel's ephemeral range, so two scripts
# never pick the same port and no client socket's ephemeral port takes one.
# Within a script the ports are handed out in turn, so a script never gets a
# port twice while it has free ones. Without a block (a script run by hand)
# the kernel picks, and the ports a script was given are not given again.
PORT_BASE, PORT_SPAN = 12000, 500
_port_block = os.environ.get("GSLB_PORT_BLOCK")
_port_next = [0]
_ports_given = set()


def _port_is_free(family, host, port):
    s = socket.socket(family, socket.SOCK_STREAM)
    u = socket.socket(family, socket.SOCK_DGRAM)
    try:
        s.bind((host, port))
        u.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()
        u.close()


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    """A port free for both UDP and TCP on host."""
    if _port_block is not None and _port_block.isdigit():
        base = PORT_BASE + int(_port_block) * PORT_SPAN
        for _ in range(PORT_SPAN):
            port = base + _port_next[0] % PORT_SPAN
            _port_next[0] += 1
            if _port_is_free(family, host, port):
                return port
        raise RuntimeError("no free port in %d-%d" % (base, base + PORT_SPAN - 1))
    for _ in range(50):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.bind((host, 0))
        port = s.getsockname()[1]
        s.close()
        if port not in _ports_given and _port_is_free(family, host, port):
            _ports_given.add(port)
            return port
    raise RuntimeError("no free port")


class Proc:
    """A started program; .stop() sends SIGTERM and waits, then SIGKILL."""

    def __init__(self, argv, cwd=None, env=None):
        self.argv = argv
        self.log_path = tempfile.mktemp(prefix="gslbtest-", suffix=".log")
        self.log = open(self.log_path, "w+")
        self.p = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                  cwd=cwd, env=env)
        _procs.append(self)

    @property
    def pid(self):
        return self.p.pid

    def output(self):
        self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def alive(self):
        return self.p.poll() is None

    def signal(self, sig):
        if self.alive():
            os.kill(self.p.pid, sig)

    def stop(self, timeout=10):
        if self.alive():
            os.kill(self.p.pid, signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.p.pid, signal.SIGKILL)
                self.p.wait(5)
        if self in _procs:
            _procs.remove(self)
        return self.p.returncode

    def kill(self):
        if self.alive():
            os.kill(self.p.pid, signal.SIGKILL)
            self.p.wait(5)
        if self in _procs:
            _procs.remove(self)


def stop_all():
    for p in list(_procs):
        try:
            p.kill()
        except Exception:
            pass


class Dnsd(Proc):
    """bin/dnsd on a free loopback port; waits until it answers."""

    def __init__(self, args, port=None, host="127.0.0.1", wait=True, env=None):
        self.host = host
        self.port = port or free_port()
        argv = [os.path.join(BIN, "dnsd")]
        if not any(a == "--listen" for a in args):
            argv += ["--listen", "%s:%d" % (host, self.port)]
        argv += list(args)
        super().__init__(argv, env=env)
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout=10):
        timeout *= TIME_FACTOR
        deadline = time.monotonic() + timeout
        q = dns.message.make_query("ready.invalid.", "A")
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError("dnsd exited: %s" % self.output())
            try:
                dns.query.udp(q, self.host, port=self.port, timeout=0.2)
                return
            except Exception:
                time.sleep(0.05)
        raise RuntimeError("dnsd did not answer within %ss: %s" % (timeout, self.output()))

    def udp(self, qname, qtype="A", **kw):
        q = kw.pop("query", None) or make_query(qname, qtype, **kw)
        return dns.query.udp(q, self.host, port=self.port, timeout=2)

    def tcp(self, qname, qtype="A", **kw):
        q = kw.pop("query", None) or make_query(qname, qtype, **kw)
        return dns.query.tcp(q, self.host, port=self.port, timeout=2)


def make_query(qname, qtype="A", **kw):
    return dns.message.make_query(qname, qtype, **kw)


def rrset_texts(section):
    """Sorted 'name ttl type rdata' strings of a section, names lower-cased."""
    out = []
    for rrset in section:
        for rd in rrset:
            out.append("%s %d %s %s" % (rrset.name.to_text().lower(), rrset.ttl,
                                        dns.rdatatype.to_text(rrset.rdtype), rd.to_text()))
    return sorted(out)


def tmpdir():
    d = tempfile.mkdtemp(prefix="gslbtest-")
    _tmpdirs.append(d)
    return d


_tmpdirs = []


def run():
    passed = failed = skipped = 0
    only = os.environ.get("TEST")
    for fn in _tests:
        if only and only != fn.__name__:
            continue
        t0 = time.monotonic()
        try:
            fn()
            passed += 1
            print("ok   %s (%.2fs)" % (fn.__name__, time.monotonic() - t0), flush=True)
        except Skip as e:
            skipped += 1
            print("SKIP %s: %s" % (fn.__name__, e), flush=True)
        except Exception:
            failed += 1
            print("FAIL %s" % fn.__name__, flush=True)
            traceback.print_exc(file=sys.stdout)
        finally:
            while _cleanups:
                try:
                    _cleanups.pop()()
                except Exception:
                    pass
            stop_all()
    for d in _tmpdirs:
        shutil.rmtree(d, ignore_errors=True)
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    sys.exit(1 if failed else 0)


def gslbctl(db, *args, check=True):
    """Runs bin/gslbctl --db DB ARGS; raises with its stderr when check and
    it fails. Returns the CompletedProcess."""
    argv = [os.path.join(BIN, "gslbctl"), "--db", db] + [str(a) for a in args]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=30 * TIME_FACTOR)
    if check and p.returncode != 0:
        raise AssertionError("gslbctl %s failed (%d): %s" % (" ".join(map(str, args)),
                                                            p.returncode, p.stderr))
    return p


def make_mmdb(tsv=None, out=None):
    """A test GeoIP database generated now from a TSV table (never a
    third-party database)."""
    tsv = tsv or os.path.join(FIXTURES, "geo", "networks.tsv")
    out = out or os.path.join(tmpdir(), "test.mmdb")
    subprocess.run(["perl", os.path.join(ROOT, "tests", "tools", "mkmmdb.pl"), tsv, out],
                   check=True, capture_output=True, timeout=60)
    return out


def sanitizer():
    """'ThreadSanitizer' or 'AddressSanitizer' when BIN's dnsd is built
    with it (make tsan, make asan), else None."""
    try:
        with open(os.path.join(BIN, "dnsd"), "rb") as f:
            data = f.read()
    except OSError:
        return None
    if b"__tsan_init" in data:
        return "ThreadSanitizer"
    if b"__asan_init" in data:
        return "AddressSanitizer"
    return None


def wait_for(fn, timeout=5.0, interval=0.05):
    """Polls fn() until it returns a true value or timeout seconds (times
    TIME_FACTOR) pass; returns the last value."""
    deadline = time.monotonic() + timeout * TIME_FACTOR
    v = fn()
    while not v and time.monotonic() < deadline:
        time.sleep(interval)
        v = fn()
    return v


def answer_texts(r):
    """Rdata texts of the answer section, in order (owner and TTL left out)."""
    return [rd.to_text() for rs in r.answer for rd in rs]


def ecs_query(qname, qtype, subnet, prefix, **kw):
    import dns.edns
    return dns.message.make_query(qname, qtype, use_edns=0,
                                  options=[dns.edns.ECSOption(subnet, prefix)], **kw)


CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def in_netns(ns, fn, timeout=15):
    """fn() run by a short-lived thread that has joined namespace ns (its
    sockets are created there); the test process itself never leaves its
    own namespace. Returns fn's value or raises its exception."""
    out = {}

    def work():
        try:
            fd = os.open("/var/run/netns/" + ns, os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns " + ns)
            finally:
                os.close(fd)
            out["v"] = fn()
        except BaseException as e:     # noqa: B036 - handed to the caller
            out["e"] = e
    t = threading.Thread(target=work, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise AssertionError("in namespace %s: no result within %ss" % (ns, timeout))
    if "e" in out:
        raise out["e"]
    return out.get("v")


ETCD = "/usr/bin/etcd"


class EtcdCluster:
    """n real etcd members (Debian's etcd-server) on free loopback ports, in
    a temporary directory, with --pre-vote and short heartbeat/election
    times; stopped by PID after the test (on_cleanup) and at exit.

    .urls: the client URLs; .put/.get/.delete/.range/.status go through the
    JSON gateway with urllib (keys and values are str); .leader() is the
    index of the current leader; .kill(i) sends SIGKILL, .stop(i) SIGTERM,
    .start(i) restarts member i on its data directory; .stop_all() stops
    every member, .start_all() restarts them."""

    def __init__(self, n=3, compaction=None, wait=True, data_dir=None):
        import atexit
        if not os.access(ETCD, os.X_OK):
            raise Skip("no %s (Debian package etcd-server)" % ETCD)
        self.n = n
        # data_dir: where the members keep their data (a tmpfs makes etcd's
        # fsync free, e.g. to seed many revisions fast in a bench); default
        # a temporary directory.
        self.dir = tempfile.mkdtemp(prefix="etcd-", dir=data_dir) if data_dir else tmpdir()
        if data_dir:
            on_cleanup(lambda: shutil.rmtree(self.dir, ignore_errors=True))
        self.names = ["m%d" % i for i in range(n)]
        # 2n distinct ports (free_port() never hands out a port twice).
        ports = [free_port() for _ in range(2 * n)]
        self.client_ports, self.peer_ports = ports[:n], ports[n:]
        self.urls = ["http://127.0.0.1:%d" % p for p in self.client_ports]
        self.token = "gslbtest-%d-%d" % (os.getpid(), self.client_ports[0])
        self.compaction = compaction
        self.procs = [None] * n
        self._started = [False] * n
        on_cleanup(self.stop_all)
        atexit.register(self.stop_all)
        for i in range(n):
            self.start(i, wait=False)
        if wait:
            self.wait_ready()

    def _argv(self, i):
        cluster = ",".join("%s=http://127.0.0.1:%d" % (self.names[k], self.peer_ports[k])
                           for k in range(self.n))
        argv = [ETCD, "--name", self.names[i],
                "--data-dir", os.path.join(self.dir, self.names[i]),
                "--listen-client-urls", self.urls[i],
                "--advertise-client-urls", self.urls[i],
                "--listen-peer-urls", "http://127.0.0.1:%d" % self.peer_ports[i],
                "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % self.peer_ports[i],
                "--initial-cluster", cluster,
                "--initial-cluster-state", "new",
                "--initial-cluster-token", self.token,
                "--pre-vote",
                "--heartbeat-interval", str(int(50 * TIME_FACTOR)),
                "--election-timeout", str(int(500 * TIME_FACTOR)),
                "--log-level", "warn", "--logger", "zap"]
        if self.compaction:
            argv += ["--auto-compaction-mode", "revision",
                     "--auto-compaction-retention", str(self.compaction)]
        return argv

    def start(self, i, wait=True):
        """Starts (or restarts) member i; with wait, until it serves reads."""
        p = self.procs[i]
        if p is not None and p.alive():
            return
        self.procs[i] = Proc(self._argv(i))
        if wait:
            self.wait_ready([i])

    def start_all(self, wait=True):
        for i in range(self.n):
            self.start(i, wait=False)
        if wait:
            self.wait_ready()

    def alive(self, i):
        return self.procs[i] is not None and self.procs[i].alive()

    def kill(self, i):
        """SIGKILL member i."""
        if self.procs[i] is not None:
            self.procs[i].kill()

    def stop(self, i):
        """SIGTERM member i and wait."""
        if self.procs[i] is not None:
            self.procs[i].stop()

    def stop_all(self):
        for i in range(self.n):
            try:
                self.kill(i)
            except Exception:
                pass

    def wait_ready(self, members=None, timeout=20):
        """Waits until each member answers a linearizable read (it has a
        leader)."""
        members = range(self.n) if members is None else members
        deadline = time.monotonic() + timeout * TIME_FACTOR
        for i in members:
            while True:
                try:
                    self.call("/v3/kv/range", {"key": _b64("/")}, member=i, timeout=2)
                    break
                except Exception as e:
                    if not self.alive(i):
                        raise RuntimeError("etcd %s exited: %s" % (self.names[i],
                                                                   self.procs[i].output()))
                    if time.monotonic() > deadline:
                        raise RuntimeError("etcd %s not ready: %s" % (self.names[i], e))
                    time.sleep(0.1)

    def call(self, path, body, member=None, timeout=5):
        """POSTs body (a dict) to the gateway of member (None: the first
        live one that answers); returns the reply's JSON."""
        import json
        import urllib.request
        order = [member] if member is not None else \
            [i for i in range(self.n) if self.alive(i)]
        last = None
        for i in order:
            req = urllib.request.Request(self.urls[i] + path, data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=timeout * TIME_FACTOR) as r:
                    return json.loads(r.read())
            except Exception as e:
                last = e
        raise RuntimeError("etcd %s: %s" % (path, last))

    def put(self, key, value, member=None):
        """Puts key = value (str or bytes); returns the new revision."""
        r = self.call("/v3/kv/put", {"key": _b64(key), "value": _b64(value)}, member)
        return int(r["header"]["revision"])

    def get(self, key, member=None):
        """The value of key as str, or None."""
        r = self.call("/v3/kv/range", {"key": _b64(key)}, member)
        kvs = r.get("kvs") or []
        return _unb64(kvs[0].get("value", "")) if kvs else None

    def range(self, prefix, member=None):
        """(revision, {key: value}) of every key under prefix."""
        r = self.call("/v3/kv/range", {"key": _b64(prefix),
                                       "range_end": _b64(_prefix_end(prefix))}, member)
        return (int(r["header"]["revision"]),
                {_unb64(kv["key"]): _unb64(kv.get("value", "")) for kv in r.get("kvs") or []})

    def delete(self, key, prefix=False, member=None):
        """Deletes key (or every key under it); returns the new revision."""
        body = {"key": _b64(key)}
        if prefix:
            body["range_end"] = _b64(_prefix_end(key))
        r = self.call("/v3/kv/deleterange", body, member)
        return int(r["header"]["revision"])

    def revision(self, member=None):
        """The store's current revision."""
        r = self.call("/v3/kv/range", {"key": _b64("/"), "limit": 1}, member)
        return int(r["header"]["revision"])

    def compact(self, revision, member=None):
        """Compacts history up to revision (physical: waits for it)."""
        self.call("/v3/kv/compaction", {"revision": str(revision), "physical": True}, member)

    def leader(self):
        """Index of the member that is leader now, or None."""
        for i in range(self.n):
            if not self.alive(i):
                continue
            try:
                r = self.call("/v3/maintenance/status", {}, member=i, timeout=2)
            except Exception:
                continue
            if r.get("leader") and r.get("leader") == r.get("header", {}).get("member_id"):
                return i
        return None


def _b64(s):
    import base64
    if isinstance(s, str):
        s = s.encode()
    return base64.b64encode(s).decode()


def _unb64(s):
    import base64
    return base64.b64decode(s).decode("utf-8", errors="replace")


def _prefix_end(prefix):
    b = bytearray(prefix.encode() if isinstance(prefix, str) else prefix)
    while b:
        if b[-1] < 0xff:
            b[-1] += 1
            return bytes(b)
        b.pop()
    return b"\0"
