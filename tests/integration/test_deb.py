#!/usr/bin/python3
"""The Debian packages: `make deb` (dpkg-buildpackage -us -uc -b from a copy
of the tree, then lintian, which must report no error) builds gslb-dnsd,
gslb-probe and gslbctl; each holds its programs, man pages, units and
examples; installing them with dpkg creates the gslb system user and
/etc/gslb (root:gslb 0750), enables and starts nothing (no unit symlink, and
the units refuse to start without their configuration); the installed dnsd
runs; purging removes the files again.

Installing needs root and dpkg's lock: without them the install part is
skipped with the reason (the build and lintian still ran)."""
# run_tests: alone
# (it installs the packages with dpkg, which the whole machine shares)

import glob
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from gslbtest import ROOT, ZONES, Skip, on_cleanup, run, sanitizer, test, tmpdir  # noqa: E402

PKGS = ["gslb-dnsd", "gslb-probe", "gslbctl"]
FILES = {
    "gslb-dnsd": ["./usr/sbin/dnsd", "./lib/systemd/system/dnsd.service",
                  "./usr/share/man/man8/dnsd.8.gz", "./usr/share/man/man5/dnsd.conf.5.gz",
                  "./usr/share/doc/gslb-dnsd/examples/dnsd.conf.example",
                  "./usr/share/doc/gslb-dnsd/examples/dnsd-alerts.yml",
                  "./usr/share/doc/gslb-dnsd/examples/dnsd-dashboard.json",
                  "./usr/share/doc/gslb-dnsd/copyright"],
    "gslb-probe": ["./usr/sbin/gslb-probe", "./lib/systemd/system/gslb-probe@.service",
                   "./usr/share/man/man8/gslb-probe.8.gz",
                   "./usr/share/doc/gslb-probe/examples/probe.env.example"],
    "gslbctl": ["./usr/bin/gslbctl", "./usr/share/man/man8/gslbctl.8.gz"],
}


def sh(argv, timeout=120, check=True, env=None):
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    if check and p.returncode != 0:
        raise AssertionError("%s: exit %d\n%s\n%s" % (" ".join(argv), p.returncode,
                                                      p.stdout[-3000:], p.stderr[-3000:]))
    return p


@test
def test_make_deb_lintian_install_purge():
    # The packages are built from the sources with their own flags: the
    # binaries under test (BIN) are not in them, so a sanitizer run (make
    # asan/tsan) would only repeat make test's run, at 1-2 minutes a time.
    if sanitizer():
        raise Skip("the packages never hold the %s build under test; make test builds "
                   "and checks them" % sanitizer())
    build = tmpdir()
    env = dict(os.environ, DEB_BUILD_OPTIONS="parallel=2 nocheck")
    p = sh(["make", "-C", ROOT, "deb", "BUILD=" + build], timeout=280, env=env)
    assert "lintian --fail-on error" in p.stdout, p.stdout[-2000:]
    errors = [ln for ln in (p.stdout + p.stderr).splitlines() if re.match(r"^E: ", ln)]
    assert not errors, errors
    debs = {}
    for pkg in PKGS:
        found = glob.glob(os.path.join(build, "deb", "%s_*.deb" % pkg))
        assert len(found) == 1, (pkg, os.listdir(os.path.join(build, "deb")))
        debs[pkg] = found[0]
        listing = sh(["dpkg-deb", "-c", found[0]]).stdout
        for f in FILES[pkg]:
            assert re.search(r" %s$" % re.escape(f), listing, re.M), (pkg, f, listing)
    # the unit in the package names the installed binary and its config
    x = tmpdir()
    sh(["dpkg-deb", "-x", debs["gslb-dnsd"], x])
    with open(os.path.join(x, "lib/systemd/system/dnsd.service")) as f:
        unit = f.read()
    assert "ExecStart=/usr/sbin/dnsd --config /etc/gslb/dnsd.conf" in unit
    assert "ConditionPathExists=/etc/gslb/dnsd.conf" in unit

    if os.geteuid() != 0:
        raise Skip("installing the packages needs root (built and lintian-clean)")
    if sh(["dpkg-query", "-W", "gslb-dnsd"], check=False).returncode == 0:
        raise Skip("gslb-dnsd is already installed on this machine: not touching it")

    def purge():
        sh(["dpkg", "--purge"] + PKGS, check=False, timeout=120)
    on_cleanup(purge)
    inst = sh(["dpkg", "-i"] + list(debs.values()), check=False, timeout=180)
    if inst.returncode != 0 and "lock" in inst.stderr:
        raise Skip("dpkg is locked by another process: %s" % inst.stderr.strip()[:200])
    assert inst.returncode == 0, inst.stdout + inst.stderr
    pw = sh(["getent", "passwd", "gslb"]).stdout.split(":")
    assert pw[5] == "/var/lib/gslb" and pw[6].strip() in ("/usr/sbin/nologin", "/bin/false"), pw
    st = os.stat("/etc/gslb")
    assert oct(st.st_mode & 0o777) == "0o750" and st.st_uid == 0, oct(st.st_mode)
    assert sh(["getent", "group", "gslb"]).stdout.split(":")[2] == str(st.st_gid)
    # nothing enabled, nothing to start without configuration
    wants = glob.glob("/etc/systemd/system/*.wants/dnsd.service") + \
        glob.glob("/etc/systemd/system/*.wants/gslb-probe@*.service")
    assert not wants, wants
    assert not os.path.exists("/etc/gslb/dnsd.conf")
    v = sh(["/usr/sbin/dnsd", "--version"]).stdout
    assert v.startswith("dnsd "), v
    chk = sh(["/usr/sbin/dnsd", "--check", "--zone",
              os.path.join(ZONES, "gslb.example.com.zone")])
    assert chk.returncode == 0
    assert sh(["/usr/bin/gslbctl", "--help"], check=False).returncode in (0, 2)
    # the installed units pass systemd's own check
    ver = sh(["systemd-analyze", "verify", "/lib/systemd/system/dnsd.service"], check=False)
    assert "dnsd.service" not in ver.stderr or "ExecStart" not in ver.stderr, ver.stderr
    purge()
    for f in ("/usr/sbin/dnsd", "/usr/sbin/gslb-probe", "/usr/bin/gslbctl",
              "/lib/systemd/system/dnsd.service"):
        assert not os.path.exists(f), f


if __name__ == "__main__":
    run()
