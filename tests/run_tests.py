#!/usr/bin/python3
"""Runs every test: the unit binaries given as arguments, then each
tests/integration/test_*.py. Each prints 'N passed, N failed' as its last
such line; this sums them and ends with one line over everything.

ONLY=substring limits the integration scripts run (for development).

Sanitizer reports: every process a test starts (dnsd, gslbctl, gslb-probe,
the unit binaries) inherits TSAN_OPTIONS/ASAN_OPTIONS/UBSAN_OPTIONS with
log_path into one directory made for this run, so a report goes to a file
named after the process's PID instead of an output no test may read. After
each unit binary and each script the runner looks for new files there: a
report fails that test (its first lines are printed) whatever the test
itself concluded. The directory is removed at the end when it is empty.
"""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

LINE = re.compile(r"^(\d+) passed, (\d+) failed(?:, (\d+) skipped)?")
HERE = os.path.dirname(os.path.abspath(__file__))


def run(cmd, timeout):
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout, text=True, errors="replace")
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


def sanitizer_logs():
    """Creates this run's report directory and points every sanitizer's
    log_path there (appended: it wins over an earlier log_path)."""
    d = tempfile.mkdtemp(prefix="gslb-sanitizer-")
    for var in SAN_VARS:
        old = os.environ.get(var, "")
        os.environ[var] = (old + ":" if old else "") + "log_path=" + os.path.join(d, "report")
    return d


def new_reports(d, seen):
    """Reports written to d since the last call: (files, report count,
    the first lines of the first file)."""
    files = sorted(f for f in os.listdir(d) if f not in seen)
    seen.update(files)
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
    total_p = total_f = total_s = 0
    bad = []
    logs = sanitizer_logs()
    seen = set()
    total_reports = 0
    san = sanitizer_of(os.environ.get("BIN", os.path.join(os.path.dirname(HERE), "bin")))
    for cmd, timeout in [([u], 120) for u in units] + \
                        [(["/usr/bin/python3", s], 300) for s in scripts]:
        p, f, sk, out, rc, secs = run(cmd, timeout)
        name = os.path.basename(cmd[-1])
        files, n_rep, head = new_reports(logs, seen)
        san_text = ""
        if files:
            total_reports += n_rep
            f += 1
            san_text = "sanitizer: %d report(s) from %d process(es), in %s; the first:\n%s\n" % (
                n_rep, len(files), logs, "\n".join(head))
        total_p += p
        total_f += f
        total_s += sk
        print("%-36s %4d passed, %d failed%s  (%.1fs)" %
              (name, p, f, ", %d skipped" % sk if sk else "", secs), flush=True)
        for ln in out.splitlines():
            if ln.startswith("SKIP "):
                print("    " + ln)
        if f:
            bad.append(name)
            # Each failed test's name and its exception, however long
            # the output after it, then the output's end.
            lines = out.splitlines()
            for i, ln in enumerate(lines):
                if ln.startswith("FAIL "):
                    err = next((x for x in lines[i + 1:i + 200] if EXC.match(x)), "")
                    print("    %s: %s" % (ln, err[:500]))
            sys.stdout.write("".join("    " + ln + "\n" for ln in lines[-60:]))
            sys.stdout.write("".join("    " + ln + "\n" for ln in san_text.splitlines()))
    if bad:
        print("failing: " + " ".join(bad))
    if san:
        print("%s reports: %d%s" % (san, total_reports,
                                     " (in %s)" % logs if total_reports else ""))
    if not os.listdir(logs):
        shutil.rmtree(logs, ignore_errors=True)
    print("%d passed, %d failed, %d skipped" % (total_p, total_f, total_s))
    return 1 if total_f else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
