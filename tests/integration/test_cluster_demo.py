#!/usr/bin/python3
"""`make cluster-demo` works: three etcd members and three dnsd start, and
every command it prints gives the answer it promises
(tests/cluster_demo.py --selftest), a flip in etcd included."""
import os
import subprocess
import sys

from gslbtest import ROOT, TIME_FACTOR, Skip, run, test


@test
def cluster_demo_commands_work():
    if not os.access("/usr/bin/etcd", os.X_OK):
        raise Skip("no /usr/bin/etcd (Debian package etcd-server)")
    p = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "cluster_demo.py"), "--selftest"],
                       capture_output=True, text=True, timeout=120 * TIME_FACTOR, cwd=ROOT)
    if p.returncode != 0 or "0 failed" not in p.stdout:
        raise AssertionError(p.stdout + p.stderr)


if __name__ == "__main__":
    run()
