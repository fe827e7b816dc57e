#!/usr/bin/python3
"""Runs every test: the unit binaries given as arguments, then each
tests/integration/test_*.py. Each prints 'N passed, N failed' as its last
such line; this sums them and ends with one line over everything.

ONLY=substring limits the integration scripts run (for development).
"""
import glob
import os
import re
import subprocess
import sys
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
    for cmd, timeout in [([u], 120) for u in units] + \
                        [(["/usr/bin/python3", s], 300) for s in scripts]:
        p, f, sk, out, rc, secs = run(cmd, timeout)
        name = os.path.basename(cmd[-1])
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
            sys.stdout.write("".join("    " + ln + "\n" for ln in out.splitlines()[-60:]))
    if bad:
        print("failing: " + " ".join(bad))
    print("%d passed, %d failed, %d skipped" % (total_p, total_f, total_s))
    return 1 if total_f else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
