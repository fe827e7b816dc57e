#!/usr/bin/python3
"""Packaging: make install/uninstall into a DESTDIR (every file, its mode, the
unit paths), the systemd units (required keys, systemd-analyze verify, their
command lines run as systemd would, with a fake NOTIFY_SOCKET), the example
configuration (every key, all of it valid), the man pages (render without
warnings, name every option, subcommand and JSON key), gslb-probe's notify
sequence, and the README's list of metrics."""
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import urllib.request

import dns.message
import dns.query

from gslbtest import (BIN, Skip, ROOT, ZONES, Proc, Dnsd, free_port, gslbctl, make_mmdb, run,
                      test, tmpdir, wait_for)

PROGS = {"dnsd": "sbin", "gslb-probe": "sbin", "gslbctl": "bin"}
MAN = {"dnsd.8": "man8", "gslb-probe.8": "man8", "gslbctl.8": "man8", "dnsd.conf.5": "man5"}
UNITS = ["dnsd.service", "gslb-probe@.service"]
ETC = ["dnsd.conf.example", "probe.env.example"]


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def make_install(target, **vars):
    """make TARGET with VARS, installing the binaries already built in BIN
    (-o: never rebuilt here) and writing generated files under a private
    BUILD. Returns the CompletedProcess (raises on failure)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    argv = ["make", "-s", "-C", ROOT, target, "BIN=" + BIN,
            "BUILD=" + os.path.join(tmpdir(), "build")]
    for p in PROGS:
        argv += ["-o", os.path.join(BIN, p)]
    argv += ["%s=%s" % kv for kv in vars.items()]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
    expect(p.returncode == 0, "%s: %s%s" % (" ".join(argv), p.stdout, p.stderr))
    return p


def installed_files(prefix="/usr", sysconf="/etc"):
    """Relative path (under DESTDIR) -> expected mode."""
    out = {}
    for p, d in PROGS.items():
        out["%s/%s/%s" % (prefix, d, p)] = 0o755
    for m, d in MAN.items():
        out["%s/share/man/%s/%s" % (prefix, d, m)] = 0o644
    for u in UNITS:
        out["%s/lib/systemd/system/%s" % (prefix, u)] = 0o644
    for e in ETC:
        out["%s/gslb/%s" % (sysconf, e)] = 0o644
    return {k.lstrip("/"): v for k, v in out.items()}


def parse_unit(path):
    """{section: [(key, value), ...]} of a unit file (keys may repeat)."""
    units, sec = {}, None
    with open(path) as f:
        for ln in f:
            ln = ln.strip()
            if not ln or ln[0] in "#;":
                continue
            if ln.startswith("["):
                sec = ln.strip("[]")
                units.setdefault(sec, [])
                continue
            k, _, v = ln.partition("=")
            units[sec].append((k.strip(), v.strip()))
    return units


def unit_get(u, sec, key):
    vals = [v for k, v in u.get(sec, []) if k == key]
    return vals[-1] if vals else None


def help_keys():
    """The option names `dnsd --help` lists (without --config/--check)."""
    out = subprocess.run([os.path.join(BIN, "dnsd"), "--help"], capture_output=True,
                         text=True, timeout=10).stdout
    keys = re.findall(r"^  --([a-z0-9-]+)\s", out, re.M)
    keys = [k for k in keys if k not in ("config", "check", "help")]
    expect(len(keys) >= 25 and "listen" in keys and "rrl-table-size" in keys, out)
    return keys


def roff_text(path):
    """The man page source with the escapes that matter here undone."""
    with open(path) as f:
        s = f.read()
    s = s.replace("\\-", "-").replace("\\(aq", "'").replace("\\e", "\\")
    return re.sub(r"\\f[BIRP]", "", s)


def render_warnings(path):
    """Warnings of man(1) and groff for one page ('' when clean)."""
    expect(shutil.which("man") and shutil.which("groff"),
           "man or groff missing: Debian man-db and groff-base (make deps)")
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8")
    p = subprocess.run(["man", "--warnings", "-l", path], capture_output=True, text=True,
                       timeout=60, env=env)
    g = subprocess.run(["groff", "-man", "-ww", "-z", path], capture_output=True, text=True,
                       timeout=60)
    bad = p.stderr + g.stderr
    if p.returncode or g.returncode:
        bad += "exit %d/%d" % (p.returncode, g.returncode)
    expect(len(p.stdout) > 500 or bad, "%s rendered to almost nothing" % path)
    return bad


class NotifySocket:
    """A fake systemd notification socket."""

    def __init__(self):
        self.path = os.path.join(tmpdir(), "notify.sock")
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.s.bind(self.path)
        self.s.settimeout(10)

    def recv(self):
        return self.s.recv(4096).decode()

    def close(self):
        self.s.close()


@test
def install_into_destdir_and_uninstall():
    dest = tmpdir()
    make_install("install", DESTDIR=dest, PREFIX="/usr")
    want = installed_files()
    got = set()
    for d, _, files in os.walk(dest):
        got |= {os.path.relpath(os.path.join(d, f), dest) for f in files}
    expect(got == set(want), "installed %s, want %s" % (sorted(got), sorted(want)))
    for rel, mode in want.items():
        st = os.stat(os.path.join(dest, rel))
        expect(st.st_mode & 0o7777 == mode, "%s: mode %o, want %o" % (rel, st.st_mode, mode))
    for p, d in PROGS.items():
        expect(subprocess.run(["cmp", os.path.join(BIN, p), os.path.join(dest, "usr", d, p)])
               .returncode == 0, "%s differs from the build" % p)
    for rel in want:
        if rel.startswith(("usr/lib/systemd", "etc/")):
            with open(os.path.join(dest, rel)) as f:
                text = f.read()
            expect(not re.findall(r"@[A-Z_]+@", text),
                   "%s: placeholder left: %s" % (rel, re.findall(r"@[A-Z_]+@", text)))
    # The units run what make install put there.
    unitdir = os.path.join(dest, "usr/lib/systemd/system")
    for unit, prog in [("dnsd.service", "dnsd"), ("gslb-probe@.service", "gslb-probe")]:
        u = parse_unit(os.path.join(unitdir, unit))
        exe = shlex.split(unit_get(u, "Service", "ExecStart"))[0]
        expect(exe == "/usr/sbin/" + prog, "%s: ExecStart %s" % (unit, exe))
        expect(os.access(dest + exe, os.X_OK), exe)
    u = parse_unit(os.path.join(unitdir, "dnsd.service"))
    expect("--config /etc/gslb/dnsd.conf" in unit_get(u, "Service", "ExecStart"), u)
    # Ordered after a local etcd, never depending on it (dnsd serves its
    # replica while etcd is down).
    expect("etcd.service" in unit_get(u, "Unit", "After").split(), u)
    expect(not any("etcd" in v for k, v in u["Unit"]
                   if k in ("Requires", "Requisite", "BindsTo", "PartOf", "Wants")), u)
    u = parse_unit(os.path.join(unitdir, "gslb-probe@.service"))
    expect(unit_get(u, "Service", "EnvironmentFile") == "/etc/gslb/probe-%i.env", u)
    # Another PREFIX moves everything but /etc, and the unit paths follow.
    dest2 = tmpdir()
    make_install("install", DESTDIR=dest2)                # PREFIX defaults to /usr/local
    u = parse_unit(os.path.join(dest2, "usr/local/lib/systemd/system/dnsd.service"))
    expect(unit_get(u, "Service", "ExecStart").startswith("/usr/local/sbin/dnsd "), u)
    expect(os.path.exists(os.path.join(dest2, "etc/gslb/dnsd.conf.example")), "etc")
    # uninstall removes every file, keeps what the operator wrote.
    with open(os.path.join(dest, "etc/gslb/dnsd.conf"), "w") as f:
        f.write("listen 127.0.0.1:53\n")
    make_install("uninstall", DESTDIR=dest, PREFIX="/usr")
    left = []
    for d, _, files in os.walk(dest):
        left += [os.path.relpath(os.path.join(d, f), dest) for f in files]
    expect(left == ["etc/gslb/dnsd.conf"], "left after uninstall: %s" % left)
    os.unlink(os.path.join(dest, "etc/gslb/dnsd.conf"))
    make_install("uninstall", DESTDIR=dest, PREFIX="/usr")  # twice is fine
    expect(not os.path.exists(os.path.join(dest, "etc/gslb")), "empty etc/gslb kept")


@test
def units_have_the_required_settings():
    dest = tmpdir()
    make_install("install", DESTDIR=dest, PREFIX="/usr")
    unitdir = os.path.join(dest, "usr/lib/systemd/system")
    common = {
        "Type": "notify", "User": "gslb", "Group": "gslb", "NoNewPrivileges": "yes",
        "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
        "Restart": "on-failure",
    }
    dnsd = dict(common, ExecReload="/bin/kill -HUP $MAINPID", StateDirectory="gslb",
                ReadWritePaths="/var/lib/gslb", AmbientCapabilities="CAP_NET_BIND_SERVICE",
                CapabilityBoundingSet="CAP_NET_BIND_SERVICE")
    probe = dict(common, CapabilityBoundingSet="", AmbientCapabilities="")
    for unit, want in [("dnsd.service", dnsd), ("gslb-probe@.service", probe)]:
        u = parse_unit(os.path.join(unitdir, unit))
        expect(set(u) == {"Unit", "Service", "Install"}, (unit, list(u)))
        for k, v in want.items():
            expect(unit_get(u, "Service", k) == v,
                   "%s: %s=%r, want %r" % (unit, k, unit_get(u, "Service", k), v))
        fams = set((unit_get(u, "Service", "RestrictAddressFamilies") or "").split())
        expect(fams == {"AF_INET", "AF_INET6", "AF_UNIX"}, (unit, fams))
        expect(int(unit_get(u, "Service", "LimitNOFILE")) >= 16384, unit)
        expect(unit_get(u, "Install", "WantedBy") == "multi-user.target", unit)
        expect("man:" in (unit_get(u, "Unit", "Documentation") or ""), unit)
    u = parse_unit(os.path.join(unitdir, "gslb-probe@.service"))
    expect(unit_get(u, "Service", "ExecStart") ==
           "/usr/sbin/gslb-probe --name %i $PROBE_OPTIONS", u)


@test
def systemd_analyze_verify():
    sa = shutil.which("systemd-analyze")
    if not sa:
        raise Skip("no systemd-analyze (Debian package systemd)")
    # Installed under a PREFIX in the temporary directory, so that ExecStart
    # names binaries that exist (verify checks they are executable).
    d = tmpdir()
    make_install("install", PREFIX=os.path.join(d, "p"), SYSCONFDIR=os.path.join(d, "etc"))
    unitdir = os.path.join(d, "p/lib/systemd/system")
    inst = os.path.join(d, "gslb-probe@eu1.service")   # a template needs an instance
    shutil.copy(os.path.join(unitdir, "gslb-probe@.service"), inst)

    def verify(*paths):
        return subprocess.run([sa, "verify", "--man=no"] + list(paths), capture_output=True,
                              text=True, timeout=60)
    p = verify(os.path.join(unitdir, "dnsd.service"), inst)
    expect(p.returncode == 0 and not p.stderr.strip(), p.stdout + p.stderr)
    # The check can fail: a misspelt key, a binary that is not there.
    bad = os.path.join(d, "bad.service")
    with open(os.path.join(unitdir, "dnsd.service")) as f:
        text = f.read()
    with open(bad, "w") as f:
        f.write(text.replace("ProtectHome=", "ProtectHom="))
    p = verify(bad)
    expect("ProtectHom" in p.stderr, p.stderr)
    with open(bad, "w") as f:
        f.write(text.replace(os.path.join(d, "p/sbin/dnsd"), os.path.join(d, "nothere")))
    p = verify(bad)
    expect(p.returncode != 0, p.stderr)


@test
def unit_command_lines_run_as_systemd_would():
    """Runs each unit's ExecStart (from a DESTDIR install) with the example
    configuration adapted to loopback, a fake NOTIFY_SOCKET and the unit's
    environment file, and ExecReload's signal: READY, RELOADING/READY,
    STOPPING, exit 0."""
    dest = tmpdir()
    make_install("install", DESTDIR=dest, PREFIX="/usr")
    d = tmpdir()
    tok = os.path.join(d, "token")
    with open(tok, "w") as f:
        f.write("s3cret\n")
    db = os.path.join(d, "gslb.db")
    gslbctl(db, "init")
    gslbctl(db, "service", "add", "www.gslb.example.com", "--policy", "failover")
    be = socket.socket()                       # a TCP backend the agent checks
    be.bind(("127.0.0.1", 0))
    be.listen(16)
    gslbctl(db, "endpoint", "add", "www.gslb.example.com", "192.0.2.1", "--check",
            "tcp://127.0.0.1:%d" % be.getsockname()[1], "--check-interval", "1",
            "--check-rise", "1")
    port, api = free_port(), free_port()
    conf = os.path.join(d, "dnsd.conf")
    with open(os.path.join(dest, "etc/gslb/dnsd.conf.example")) as f:
        text = f.read()
    text = (text.replace("0.0.0.0:53", "127.0.0.1:%d" % port)
            .replace("[::]:53", "[::1]:%d" % port)
            .replace("/etc/gslb/gslb.example.com.zone", os.path.join(ZONES, "gslb.example.com.zone"))
            .replace("/var/lib/gslb/gslb.db", db).replace("/etc/gslb/token", tok)
            .replace("127.0.0.1:8053", "127.0.0.1:%d" % api))
    with open(conf, "w") as f:
        f.write(text)
    u = parse_unit(os.path.join(dest, "usr/lib/systemd/system/dnsd.service"))
    argv = shlex.split(unit_get(u, "Service", "ExecStart"))
    argv = [dest + argv[0]] + [conf if a == "/etc/gslb/dnsd.conf" else a for a in argv[1:]]
    ns = NotifySocket()
    p = Proc(argv, env=dict(os.environ, NOTIFY_SOCKET=ns.path))
    m = ns.recv()
    expect("READY=1" in m and "MAINPID=%d" % p.pid in m, m)
    for host in ["127.0.0.1", "::1"]:          # READY means serving already
        r = dns.query.udp(dns.message.make_query("www.gslb.example.com.", "A"), host,
                          port=port, timeout=2)
        expect([rd.to_text() for rs in r.answer for rd in rs] == ["192.0.2.1"], p.output())
    # ExecReload: /bin/kill -HUP $MAINPID
    reload = unit_get(u, "Service", "ExecReload").replace("$MAINPID", str(p.pid))
    expect(subprocess.run(shlex.split(reload), timeout=10).returncode == 0, reload)
    expect("RELOADING=1" in ns.recv(), "no RELOADING")
    expect("READY=1" in ns.recv(), "no READY after reload")

    # The probe template, instance "eu1", with the example environment file.
    pu = parse_unit(os.path.join(dest, "usr/lib/systemd/system/gslb-probe@.service"))
    envfile = unit_get(pu, "Service", "EnvironmentFile").replace("%i", "eu1")
    with open(os.path.join(dest, "etc/gslb/probe.env.example")) as f:
        penv = f.read().replace("http://127.0.0.1:8053", "http://127.0.0.1:%d" % api) \
                       .replace("/etc/gslb/token", tok)
    with open(os.path.join(d, os.path.basename(envfile)), "w") as f:
        f.write(penv)
    opts = dict(ln.split("=", 1) for ln in penv.splitlines() if ln and not ln.startswith("#"))
    expect(set(opts) == {"PROBE_OPTIONS"}, opts)
    pargv = []
    for a in shlex.split(unit_get(pu, "Service", "ExecStart")):
        if a == "$PROBE_OPTIONS":
            pargv += opts["PROBE_OPTIONS"].split()      # systemd splits unquoted $VAR
        else:
            pargv.append(a.replace("%i", "eu1"))
    pargv[0] = dest + pargv[0]
    pns = NotifySocket()
    probe = Proc(pargv, env=dict(os.environ, NOTIFY_SOCKET=pns.path))
    m = pns.recv()
    expect("READY=1" in m and "MAINPID=%d" % probe.pid in m and "eu1" in m, m)

    def agent_up():
        doc = json.loads(urllib.request.urlopen("http://127.0.0.1:%d/v1/status" % api,
                                                timeout=5).read())
        ep = doc["services"][0]["endpoints"][0]
        return ep["health"] == "up" and [a["agent"] for a in ep["agents"]] == ["eu1"]
    expect(wait_for(agent_up, timeout=10), probe.output() + p.output())
    probe.signal(signal.SIGTERM)
    expect("STOPPING=1" in pns.recv(), "probe: no STOPPING")
    expect(probe.p.wait(10) == 0, probe.output())
    p.signal(signal.SIGTERM)
    expect("STOPPING=1" in ns.recv(), "dnsd: no STOPPING")
    expect(p.p.wait(10) == 0, p.output())
    ns.close()
    pns.close()
    be.close()


@test
def example_config_names_every_key_and_all_of_it_is_valid():
    keys = help_keys()
    with open(os.path.join(ROOT, "dist/dnsd.conf.example")) as f:
        text = f.read()
    settings = re.findall(r"^#?([a-z][a-z0-9-]*) \S", text, re.M)
    missing = [k for k in keys if k not in settings]
    expect(not missing, "dnsd.conf.example lacks %s" % missing)
    unknown = [k for k in settings if k not in keys]
    expect(not unknown, "dnsd.conf.example: not dnsd keys: %s" % unknown)
    # Every commented setting switched on at once (paths made local) passes
    # dnsd --check.
    d = tmpdir()
    db = os.path.join(d, "gslb.db")
    gslbctl(db, "init")
    tok = os.path.join(d, "token")
    with open(tok, "w") as f:
        f.write("t\n")
    # --check reads the credentials and the TLS pair as a start would
    creds = os.path.join(d, "api-tokens")
    with open(creds, "w") as f:
        f.write("admin op example-config-token-0123456789\n")
    os.chmod(creds, 0o600)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                    "/CN=localhost", "-keyout", os.path.join(d, "api.key"),
                    "-out", os.path.join(d, "api.pem")],
                   check=True, capture_output=True, timeout=60)
    # a revocation list of that certificate's key (api-tls-client-crl)
    with open(os.path.join(d, "ca.cnf"), "w") as f:
        f.write("[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\ndefault_md = sha256\n"
                "default_crl_days = 2\n")
    open(os.path.join(d, "index.txt"), "w").close()
    subprocess.run(["openssl", "ca", "-config", "ca.cnf", "-gencrl", "-keyfile", "api.key",
                    "-cert", "api.pem", "-out", "crl.pem"], cwd=d, check=True,
                   capture_output=True, timeout=60)
    text = re.sub(r"^#([a-z])", r"\1", text, flags=re.M)
    text = (text.replace("@SYSCONFDIR@/gslb/gslb.example.com.zone",
                         os.path.join(ZONES, "gslb.example.com.zone"))
            .replace("@SYSCONFDIR@/gslb/api-tokens", creds)
            .replace("@SYSCONFDIR@/gslb/api.pem", os.path.join(d, "api.pem"))
            .replace("@SYSCONFDIR@/gslb/api.key", os.path.join(d, "api.key"))
            .replace("@SYSCONFDIR@/gslb/agents-ca.pem", os.path.join(d, "api.pem"))
            .replace("@SYSCONFDIR@/gslb/agents-crl.pem", os.path.join(d, "crl.pem"))
            .replace("@SYSCONFDIR@/gslb/token", tok).replace("/var/lib/gslb/gslb.db", db)
            .replace("@SYSCONFDIR@/gslb/keys", d)
            .replace("/var/lib/GeoIP/GeoLite2-City.mmdb", make_mmdb()))
    conf = os.path.join(d, "all.conf")
    with open(conf, "w") as f:
        f.write(text)
    p = subprocess.run([os.path.join(BIN, "dnsd"), "--check", "--config", conf],
                       capture_output=True, text=True, timeout=60)
    expect(p.returncode == 0, p.stdout + p.stderr)
    # ... and the check would have caught a bad line.
    with open(conf, "a") as f:
        f.write("rrl-slipp 3\n")
    p = subprocess.run([os.path.join(BIN, "dnsd"), "--check", "--config", conf],
                       capture_output=True, text=True, timeout=60)
    expect(p.returncode != 0 and "did you mean 'rrl-slip'" in p.stderr, p.stderr)


@test
def man_pages_render_without_warnings():
    for m in MAN:
        bad = render_warnings(os.path.join(ROOT, "man", m))
        expect(not bad, "%s: %s" % (m, bad))
    # The check can fail: an unknown macro, an unbreakable line, bad quoting.
    d = tmpdir()
    bad = os.path.join(d, "bad.8")
    with open(bad, "w") as f:
        f.write(".TH BAD 8\n.SH NAME\nbad \\- bad\n.SH DESCRIPTION\n.TP\n"
                ".B {\"a\", \"b\": \"c\", \"d\", \"e\": [\"f\", \"g\"], "
                "\"hhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh\", \"i\"}\n.XYZZY\n" + "x" * 40 + "\n")
    expect(render_warnings(bad), "no warnings for a broken page")


@test
def man_pages_document_every_option():
    dnsd8 = roff_text(os.path.join(ROOT, "man/dnsd.8"))
    conf5 = roff_text(os.path.join(ROOT, "man/dnsd.conf.5"))
    for k in help_keys() + ["config", "check", "help", "version"]:
        expect("--" + k + " " in dnsd8 or "--" + k + "\n" in dnsd8, "dnsd.8: --%s" % k)
    for k in help_keys():
        expect(re.search(r"^\.BI? %s\b" % re.escape(k), conf5, re.M), "dnsd.conf.5: %s" % k)
    for sig in ["SIGHUP", "SIGTERM", "SIGINT", "READY=1", "RELOADING=1", "STOPPING=1",
                "EXIT STATUS", "SEE ALSO", "FILES", "EXAMPLES"]:
        expect(sig in dnsd8, "dnsd.8: %s" % sig)
    probe8 = roff_text(os.path.join(ROOT, "man/gslb-probe.8"))
    out = subprocess.run([os.path.join(BIN, "gslb-probe"), "--help"], capture_output=True,
                         text=True, timeout=10).stdout
    for opt in set(re.findall(r"--[a-z][a-z-]+", out)):
        expect(opt in probe8, "gslb-probe.8: %s" % opt)
    for s in ["READY=1", "STOPPING=1", "SIGTERM", "EXIT STATUS", "gslb-probe@"]:
        expect(s in probe8, "gslb-probe.8: %s" % s)
    # gslbctl: every subcommand has its section, every option its mention.
    ctl8 = roff_text(os.path.join(ROOT, "man/gslbctl.8"))
    ctl = os.path.join(BIN, "gslbctl")
    usage = subprocess.run([ctl, "--help"], capture_output=True, text=True, timeout=10).stdout
    cmds = []
    for ln in usage.splitlines():
        m = re.match(r"  ([a-z]+)(?: (add|set|list|show|rm|drain|undrain))?\b", ln)
        if m:
            cmds.append(" ".join(w for w in m.groups() if w))
    expect(len(cmds) >= 19, cmds)
    for c in cmds:
        expect(re.search(r"^\.SS %s$" % c, ctl8, re.M), "gslbctl.8: no section %s" % c)
        h = subprocess.run([ctl] + c.split() + ["--help"], capture_output=True, text=True,
                           timeout=10).stdout
        for opt in set(re.findall(r"--[a-z][a-z0-9-]+", h)):
            expect(opt in ctl8, "gslbctl.8: %s (%s)" % (opt, c))
    for s in ["GSLB_DB", "EXIT STATUS", "TARGET", "user_version"]:
        expect(s in ctl8, "gslbctl.8: %s" % s)


def json_keys(v, out):
    if isinstance(v, dict):
        for k, x in v.items():
            out.add(k)
            json_keys(x, out)
    elif isinstance(v, list):
        for x in v:
            json_keys(x, out)
    return out


@test
def gslbctl_man_page_names_every_json_key():
    """Every key the --json outputs carry (and export) is in gslbctl(8)'s
    JSON OUTPUT section."""
    ctl8 = roff_text(os.path.join(ROOT, "man/gslbctl.8"))
    sect = ctl8[ctl8.index(".SH JSON OUTPUT"):ctl8.index(".SH", ctl8.index(".SH JSON OUTPUT") + 4)]
    d = tmpdir()
    db = os.path.join(d, "g.db")
    gslbctl(db, "init")
    gslbctl(db, "service", "add", "www.gslb.example.com", "--policy", "latency")
    gslbctl(db, "endpoint", "add", "www.gslb.example.com", "192.0.2.1", "--lat", "50",
            "--lon", "8", "--check", "tcp://127.0.0.1:9")
    gslbctl(db, "endpoint", "add", "www.gslb.example.com", "192.0.2.2")
    gslbctl(db, "rule", "add", "www.gslb.example.com", "country:DE", "192.0.2.2")
    import sqlite3
    c = sqlite3.connect(db)     # an agent's result and an invalid row, as dnsd would see them
    c.executescript("""
        INSERT INTO probes (id, name, region, lat, lon, last_seen) VALUES (1, 'a1', 'eu', 50, 8, 1);
        INSERT INTO health VALUES (1, 1, 'up', 1, 2.5, 'ok', 1, 1, 1);
        INSERT INTO endpoint_health VALUES (1, 'up', 0, 1, '1 of 1 fresh agents report up');
        INSERT INTO latency VALUES ('eu', 1, 2.5, 3, 1);
        INSERT INTO endpoints (service_id, target) VALUES (1, 'not-an-address');""")
    c.commit()
    c.close()
    outs = {
        "status": ["status", "--json"],
        "explain": ["explain", "www.gslb.example.com", "--client", "127.0.1.5",
                    "--geoip", make_mmdb(), "--json"],
        "service list": ["service", "list", "--json"],
        "service show": ["service", "show", "www.gslb.example.com", "--json"],
        "rule list": ["rule", "list", "www.gslb.example.com", "--json"],
        "export": ["export"],
    }
    for what, args in outs.items():
        doc = json.loads(gslbctl(db, *args).stdout)
        if what == "status":
            ep = doc["services"][0]["endpoints"][0]
            expect(ep["agents"] and ep["latency"] and doc["problems"], doc)
        if what == "explain":
            expect(doc["location"], doc)
        for k in sorted(json_keys(doc, set())):
            expect('"%s"' % k in sect, "gslbctl.8 JSON OUTPUT: %s lacks \"%s\"" % (what, k))


@test
def readme_operations_lists_every_metric():
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    expect("## Operations" in readme, "README has no Operations section")
    ops = readme[readme.index("## Operations"):]
    nxt = re.search(r"^## ", ops[3:], re.M)
    ops = ops[:nxt.start() + 3] if nxt else ops
    d = tmpdir()
    tok = os.path.join(d, "token")
    with open(tok, "w") as f:
        f.write("t\n")
    db = os.path.join(d, "g.db")
    gslbctl(db, "init")
    gslbctl(db, "service", "add", "www.gslb.example.com", "--policy", "failover")
    be = socket.socket()                     # checked by an agent: RTT and agent metrics
    be.bind(("127.0.0.1", 0))
    be.listen(16)
    gslbctl(db, "endpoint", "add", "www.gslb.example.com", "192.0.2.1", "--check",
            "tcp://127.0.0.1:%d" % be.getsockname()[1], "--check-interval", "1")
    api = free_port()
    srv = Dnsd(["--zone", os.path.join(ZONES, "gslb.example.com.zone"), "--db", db,
                "--api", "127.0.0.1:%d" % api, "--api-token-file", tok])
    probe = Proc([os.path.join(BIN, "gslb-probe"), "--name", "a1", "--region", "eu",
                  "--server", "http://127.0.0.1:%d" % api, "--token-file", tok])
    srv.udp("www.gslb.example.com.", "A")

    def scrape():
        t = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % api, timeout=5).read().decode()
        return t if re.search(r"^dnsd_\w*rtt\w*\{", t, re.M) else None
    text = wait_for(scrape, timeout=10)
    expect(text, "no RTT metrics after 10 s: %s" % probe.output())
    names = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
    expect(len(names) >= 15, text)
    missing = sorted(n for n in names if "`%s" % n not in ops)
    expect(not missing, "README Operations lacks %s" % missing)
    labels = {}
    for name, lab in re.findall(r"^(dnsd_\w+)\{([^}]*)\}", text, re.M):
        labels.setdefault(name, set()).update(re.findall(r"([a-z_]+)=", lab))
    documented = {n: set(l.split(",")) for n, l in re.findall(r"`(dnsd_\w+)\{([a-z_,]+)\}`", ops)}
    expect(len(labels) >= 5, text)
    for name, lab in labels.items():
        expect(documented.get(name) == lab, "README Operations: %s{%s}, documented %s"
               % (name, ",".join(sorted(lab)), documented.get(name)))
    probe.stop()
    srv.stop()
    be.close()


@test
def probe_notify_sequence():
    ns = NotifySocket()
    tok = os.path.join(tmpdir(), "token")
    with open(tok, "w") as f:
        f.write("t\n")
    p = Proc([os.path.join(BIN, "gslb-probe"), "--name", "n1", "--region", "eu",
              "--server", "http://127.0.0.1:%d" % free_port(), "--token-file", tok],
             env=dict(os.environ, NOTIFY_SOCKET=ns.path))
    m = ns.recv()
    expect(m.startswith("READY=1") and "MAINPID=%d" % p.pid in m and "region eu" in m, m)
    # READY comes just before the agent's loop is set up: signal it once
    # its handlers are in (the start line).
    expect(wait_for(lambda: "probe n1: region eu" in p.output()), p.output())
    p.signal(signal.SIGINT)
    expect(ns.recv() == "STOPPING=1", "no STOPPING")
    expect(p.p.wait(10) == 0, p.output())
    # A bad option never says READY.
    bad = subprocess.run([os.path.join(BIN, "gslb-probe"), "--name", "n1", "--region", "eu",
                          "--server", "http://127.0.0.1:1", "--token-file", "/nonexistent"],
                         env=dict(os.environ, NOTIFY_SOCKET=ns.path), capture_output=True,
                         text=True, timeout=10)
    expect(bad.returncode == 1 and "/nonexistent" in bad.stderr, bad.stderr)
    ns.s.settimeout(0.3)
    try:
        m = ns.recv()
        raise AssertionError("notified after a failed start: %s" % m)
    except socket.timeout:
        pass
    ns.close()


if __name__ == "__main__":
    run()
