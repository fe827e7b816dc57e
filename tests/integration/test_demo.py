#!/usr/bin/python3
"""`make run` works: the demo starts, and every command it prints gives the
answer it promises (tests/demo.py --selftest), including a failover driven
by a real health check."""
import os
import subprocess
import sys

from gslbtest import ROOT, run, test


@test
def demo_commands_work():
    p = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "demo.py"), "--selftest"],
                       capture_output=True, text=True, timeout=120, cwd=ROOT)
    if p.returncode != 0 or "0 failed" not in p.stdout:
        raise AssertionError(p.stdout + p.stderr)


if __name__ == "__main__":
    run()
