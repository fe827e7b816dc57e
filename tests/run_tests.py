#!/usr/bin/python3
"""Runs every test: the unit binaries given as arguments, then each
tests/integration/test_*.py. Each prints 'N passed, N failed' as its last
such line; this sums them and ends with one line over everything.

ONLY=substring limits the integration scripts run (for development).

Several tests run at once (TEST_JOBS, default 3: most of a test's time is
waiting for timers, probes and other processes, not CPU). Each running test
gets a block of ports K in GSLB_PORT_BLOCK, from which
tests/integration/gslbtest.py takes its ports, so two tests never pick the
same one. A block is claimed with an flock on a file of its own under
PORT_LOCKS, held while the test runs, so two runners started at the same
time (two checkouts on one machine) never hand out the same block either. A script whose text
has the line "# run_tests: alone" (it measures timing closely, loads every
CPU, or changes the machine: network namespaces, installed files) runs after
the others, with nothing else running. Each test's output is printed whole
when it ends. The longest tests start first: each run records how long each
test took in tests/.durations (not versioned), and the next run, also of
another build, orders by it.

Sanitizer reports: every process a test starts (dnsd, gslbctl, gslb-probe,
the unit binaries) inherits TSAN_OPTIONS/ASAN_OPTIONS/UBSAN_OPTIONS with
log_path into a directory of that test's own (under one made for this run),
so a report goes to a file named after the process's PID instead of an
output no test may read, and is charged to the test that caused it. When a
unit binary or a script ends the runner looks there: a report fails that
test (its first lines are printed) whatever the test itself concluded. The
directories are removed at the end when they are empty.
"""
import concurrent.futures
import fcntl
import glob
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

# The blocks: PORT_SPAN ports each from PORT_BASE up to the kernel's
# ephemeral range (gslbtest.py has the same two numbers).
PORT_BASE, PORT_SPAN = 12000, 500
PORT_LOCKS = "/tmp/gslb-port-blocks"


def port_blocks():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return max(1, (low - PORT_BASE) // PORT_SPAN)


def claim_block(deadline_s=900):
    """(K, fd): the first block no runner on this machine holds, its lock
    held until fd is closed. Waits while every block is taken."""
    os.makedirs(PORT_LOCKS, exist_ok=True)
    n = port_blocks()
    end = time.monotonic() + deadline_s
    while True:
        for k in range(n):
            fd = os.open(os.path.join(PORT_LOCKS, "%d.lock" % k), os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return k, fd
            except OSError:
                os.close(fd)
        if time.monotonic() > end:
            raise RuntimeError("no free port block in %s after %d s" % (PORT_LOCKS, deadline_s))
        time.sleep(0.5)


LINE = re.compile(r"^(\d+) passed, (\d+) failed(?:, (\d+) skipped)?")
HERE = os.path.dirname(os.path.abspath(__file__))


def run(cmd, timeout, env):
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout, text=True, errors="replace", env=env)
        out, rc = p.stdout, p.returncode
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        out += "\n(timed out after %ds)\n" % timeout
        rc = -1
    passed = failed = None
    skipped = 0
    for ln in out.splitlines():
        m = LINE.match(ln.strip())
        if m:
            passed, failed = int(m.group(1)), int(m.group(2))
            skipped = int(m.group(3) or 0)
    if passed is None:
        passed, failed = 0, 1
    elif rc != 0 and failed == 0:
        failed = 1
    return passed, failed, skipped, out, rc, time.monotonic() - t0


EXC = re.compile(r"^\w+(Error|Exception)\b")
SAN_VARS = ("TSAN_OPTIONS", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")
# The first line of each kind of report.
SAN_REPORT = re.compile(r"^(WARNING: ThreadSanitizer:|==\d+==ERROR: |==\d+==WARNING: |"
                        r"SUMMARY: UndefinedBehaviorSanitizer|.*: runtime error: )")


def sanitizer_env(d, name):
    """The environment of one test: every sanitizer's log_path in a
    directory of its own under d (appended: it wins over an earlier
    log_path)."""
    env = dict(os.environ)
    sub = os.path.join(d, name)
    os.makedirs(sub, exist_ok=True)
    for var in SAN_VARS:
        old = env.get(var, "")
        env[var] = (old + ":" if old else "") + "log_path=" + os.path.join(sub, "report")
    return env, sub


def reports(d):
    """The reports in d: (files, report count, the first lines of the
    first file)."""
    files = sorted(os.listdir(d))
    count, head, reporting = 0, [], []
    for f in files:
        with open(os.path.join(d, f), errors="replace") as fh:
            lines = fh.read().splitlines()
        n = sum(1 for ln in lines if SAN_REPORT.match(ln))
        # A file without a report line holds only notices, such as LSan's
        # "Unable to get registers from thread" from a process that a
        # crash test kills -9 while it runs its exit-time leak check.
        if not n:
            continue
        count += n
        reporting.append(f)
        if not head:
            head = ["%s:" % f] + lines[:80]
    return reporting, count, head


DURATIONS = os.path.join(HERE, ".durations")


def load_durations():
    """name -> seconds of the last run ({} when there was none)."""
    d = {}
    try:
        with open(DURATIONS) as f:
            for ln in f:
                parts = ln.split()
                if len(parts) == 2:
                    d[parts[0]] = float(parts[1])
    except (OSError, ValueError):
        return {}
    return d


def save_durations(d):
    try:
        with open(DURATIONS + ".new", "w") as f:
            f.writelines("%s %s\n" % kv for kv in sorted(d.items()))
        os.replace(DURATIONS + ".new", DURATIONS)
    except OSError:
        pass


def alone(path):
    try:
        with open(path, errors="replace") as f:
            return any(ln.strip() == "# run_tests: alone" for ln in f)
    except OSError:
        return False


def sanitizer_of(bin_dir):
    """'ThreadSanitizer', 'AddressSanitizer' or None: what dnsd was built with."""
    try:
        with open(os.path.join(bin_dir, "dnsd"), "rb") as f:
            data = f.read()
    except OSError:
        return None
    if b"__tsan_init" in data:
        return "ThreadSanitizer"
    if b"__asan_init" in data:
        return "AddressSanitizer"
    return None


def main(argv):
    unit_only = "--unit-only" in argv
    units = [a for a in argv if not a.startswith("--")]
    scripts = []
    if not unit_only:
        scripts = sorted(glob.glob(os.path.join(HERE, "integration", "test_*.py")))
        only = os.environ.get("ONLY")
        if only:
            scripts = [s for s in scripts if only in os.path.basename(s)]
    jobs = max(1, int(os.environ.get("TEST_JOBS") or 3))
    logs = tempfile.mkdtemp(prefix="gslb-sanitizer-")
    san = sanitizer_of(os.environ.get("BIN", os.path.join(os.path.dirname(HERE), "bin")))
    together = [([u], 120) for u in units] + \
               [(["/usr/bin/python3", s], 300) for s in scripts if not alone(s)]
    by_itself = [(["/usr/bin/python3", s], 300) for s in scripts if alone(s)]
    durations = load_durations()
    together.sort(key=lambda ct: -durations.get(os.path.basename(ct[0][-1]), 0))
    total = {"p": 0, "f": 0, "s": 0, "reports": 0}
    bad = []
    lock = threading.Lock()
    slots = queue.Queue()
    for k in range(jobs):
        slots.put(k)

    def one(cmd, timeout):
        name = os.path.basename(cmd[-1])
        env, sub = sanitizer_env(logs, name)
        slot = slots.get()
        block, fd = claim_block()
        try:
            env["GSLB_PORT_BLOCK"] = str(block)
            p, f, sk, out, rc, secs = run(cmd, timeout, env)
        finally:
            os.close(fd)
            slots.put(slot)
        files, n_rep, head = reports(sub)
        san_text = ""
        if files:
            f += 1
            san_text = "sanitizer: %d report(s) from %d process(es), in %s; the first:\n%s\n" % (
                n_rep, len(files), sub, "\n".join(head))
        text = ["%-36s %4d passed, %d failed%s  (%.1fs)" %
                (name, p, f, ", %d skipped" % sk if sk else "", secs)]
        text += ["    " + ln for ln in out.splitlines() if ln.startswith("SKIP ")]
        if f:
            # Each failed test's name and its exception, however long
            # the output after it, then the output's end.
            lines = out.splitlines()
            for i, ln in enumerate(lines):
                if ln.startswith("FAIL "):
                    err = next((x for x in lines[i + 1:i + 200] if EXC.match(x)), "")
                    text.append("    %s: %s" % (ln, err[:500]))
            text += ["    " + ln for ln in lines[-60:]]
            text += ["    " + ln for ln in san_text.splitlines()]
        with lock:
            durations[name] = round(secs, 1)
            total["p"] += p
            total["f"] += f
            total["s"] += sk
            total["reports"] += n_rep if files else 0
            if f:
                bad.append(name)
            sys.stdout.write("".join(ln + "\n" for ln in text))
            sys.stdout.flush()
        if not os.listdir(sub):
            os.rmdir(sub)

    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        for fut in [pool.submit(one, c, t) for c, t in together]:
            fut.result()
    for c, t in by_itself:
        one(c, t)
    save_durations(durations)
    if bad:
        print("failing: " + " ".join(bad))
    if san:
        print("%s reports: %d%s" % (san, total["reports"],
                                     " (in %s)" % logs if total["reports"] else ""))
    if not os.listdir(logs):
        shutil.rmtree(logs, ignore_errors=True)
    print("%d passed, %d failed, %d skipped" % (total["p"], total["f"], total["s"]))
    return 1 if total["f"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
