#!/usr/bin/python3
"""Log formats of the real binaries: `log-format json` (dnsd's flag and
config key, gslb-probe's --log-format) writes one JSON object a line with
the keys ts, level, prog, msg; `journal` sends native journal entries with
structured fields (MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, GSLB_LEVEL,
GSLB_SUBJECT); `auto` picks the journal when stderr is systemd's journal
stream (JOURNAL_STREAM) and text otherwise; a bad value is refused.

No journald runs here: the journal test runs dnsd in a private mount
namespace where /run/systemd/journal is a directory of the test's, whose
"socket" is a datagram socket the test reads - what sd_journal_send() writes
to is then exactly what journald would receive."""
import json
import os
import re
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from gslbtest import (BIN, ZONES, Dnsd, Proc, Skip, free_port, gslbctl, run,  # noqa: E402
                      test, tmpdir, wait_for)

ZONE = os.path.join(ZONES, "gslb.example.com.zone")
KEYS = {"ts", "level", "prog", "msg"}


def json_lines(text):
    out = []
    for ln in text.splitlines():
        o = json.loads(ln)          # every line is one object
        assert isinstance(o, dict) and KEYS <= set(o), ln
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", o["ts"]), o
        assert o["level"] in ("err", "warn", "info", "debug"), o
        out.append(o)
    return out


@test
def test_dnsd_json_lines():
    d = tmpdir()
    db = os.path.join(d, "gslb.db")
    gslbctl(db, "init")
    gslbctl(db, "service", "add", "www.gslb.example.com", "--policy", "failover")
    gslbctl(db, "endpoint", "add", "www.gslb.example.com", "192.0.2.1")
    conf = os.path.join(d, "dnsd.conf")
    with open(conf, "w") as f:
        f.write("log-format json\n")
    # a file name with a quote, a backslash and a tab: escaped in the line
    odd = os.path.join(d, 'q"uo\\te\t.zone')
    with open(ZONE) as src, open(odd, "w") as dst:
        dst.write(src.read())
    dn = Dnsd(["--config", conf, "--zone", odd, "--db", db, "--threads", "1"])
    gslbctl(db, "service", "add", "outside.example.org", "--policy", "failover")
    assert wait_for(lambda: "outside.example.org" in dn.output(), 5), dn.output()
    dn.stop()
    lines = json_lines(dn.output())
    assert len(lines) >= 4, lines
    assert all(o["prog"] == "dnsd" for o in lines), lines
    assert any(o["msg"].startswith("zone gslb.example.com.: loaded") and o["level"] == "info"
               for o in lines), lines
    assert any(odd in o["msg"] for o in lines), lines
    assert any("outside.example.org." in o["msg"] and o["level"] == "warn" for o in lines), lines
    assert lines[-1]["msg"] == "stopped", lines[-1]
    # the flag wins over the key; text is the default off systemd
    dn = Dnsd(["--config", conf, "--log-format", "text", "--zone", ZONE, "--threads", "1"])
    dn.stop()
    assert dn.output().startswith("dnsd: zone gslb.example.com.: loaded"), dn.output()[:200]
    dn = Dnsd(["--zone", ZONE, "--threads", "1"])
    dn.stop()
    assert dn.output().startswith("dnsd: "), dn.output()[:200]
    # a bad value: refused with the reason, in --check too
    for argv in (["--log-format", "xml"], ["--check", "--log-format", "xml"]):
        p = subprocess.run([os.path.join(BIN, "dnsd"), "--zone", ZONE] + argv,
                           capture_output=True, text=True, timeout=20)
        assert p.returncode != 0 and "log-format: 'xml'" in p.stderr, (argv, p.stderr)


@test
def test_probe_json_lines():
    d = tmpdir()
    tok = os.path.join(d, "token")
    with open(tok, "w") as f:
        f.write("t\n")
    port = free_port()
    p = Proc([os.path.join(BIN, "gslb-probe"), "--name", "a1", "--region", "eu",
              "--server", "http://127.0.0.1:%d" % port, "--token-file", tok,
              "--interval", "1", "--refresh", "0.2", "--log-format", "json"])
    assert wait_for(lambda: "127.0.0.1:%d" % port in p.output(), 10), p.output()
    p.stop()
    lines = json_lines(p.output())
    assert lines and all(o["prog"] in ("gslb-probe", "") or o["prog"].startswith("probe")
                         for o in lines), lines
    assert any(o["level"] in ("warn", "err") for o in lines), lines
    bad = subprocess.run([os.path.join(BIN, "gslb-probe"), "--log-format", "xml"],
                         capture_output=True, text=True, timeout=10)
    assert bad.returncode != 0 and "--log-format 'xml'" in bad.stderr, bad.stderr


def parse_native(dgram):
    """The journal's native protocol: FIELD=value\\n, or FIELD\\n then a
    64-bit little-endian length and the binary value and \\n."""
    out, i = {}, 0
    while i < len(dgram):
        nl = dgram.index(b"\n", i)
        line = dgram[i:nl]
        if b"=" in line:
            k, v = line.split(b"=", 1)
            i = nl + 1
        else:
            k = line
            n = int.from_bytes(dgram[nl + 1:nl + 9], "little")
            v = dgram[nl + 9:nl + 9 + n]
            i = nl + 9 + n + 1
        out[k.decode()] = v.decode(errors="replace")
    return out


def run_with_fake_journal(argv, env_extra=None, seconds=1.5):
    """Runs argv in a private mount namespace whose /run/systemd/journal is
    ours; returns (entries received, stderr text)."""
    d = tmpdir()
    jdir = os.path.join(d, "journal")
    os.makedirs(jdir)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(os.path.join(jdir, "socket"))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.settimeout(0.2)
    errf = os.path.join(d, "stderr")
    env = dict(os.environ)
    env.update(env_extra or {})
    script = ('mkdir -p /run/systemd/journal && mount --bind "$0" /run/systemd/journal && '
              'exec "$@"')
    with open(errf, "w") as ef:
        if "JOURNAL_STREAM" in (env_extra or {}):
            st = os.fstat(ef.fileno())
            env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
        try:
            p = subprocess.Popen(["unshare", "-m", "sh", "-c", script, jdir] + argv,
                                 stdout=subprocess.DEVNULL, stderr=ef, env=env)
        except OSError as e:
            raise Skip("cannot run unshare: %s" % e)
        entries = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                entries.append(parse_native(sock.recv(1 << 16)))
            except socket.timeout:
                pass
        p.terminate()
        p.wait(10)
        while True:
            try:
                entries.append(parse_native(sock.recv(1 << 16)))
            except (socket.timeout, BlockingIOError):
                break
    sock.close()
    with open(errf) as f:
        err = f.read()
    if not entries and ("unshare failed" in err or "mount:" in err):
        raise Skip("no private mount namespace here: %s" % err.strip()[:200])
    return entries, err


@test
def test_journal_structured_fields():
    d = tmpdir()
    db = os.path.join(d, "gslb.db")
    gslbctl(db, "init")
    dnsd = os.path.join(BIN, "dnsd")
    port = free_port()
    base = [dnsd, "--zone", ZONE, "--db", db, "--listen", "127.0.0.1:%d" % port,
            "--threads", "1"]
    entries, err = run_with_fake_journal(base + ["--log-format", "journal"])
    assert entries, err
    for e in entries:
        assert e["SYSLOG_IDENTIFIER"] == "dnsd" and e["PRIORITY"] in "3467", e
        assert e["GSLB_LEVEL"] in ("err", "warn", "info", "debug"), e
    z = [e for e in entries if e["MESSAGE"].startswith("zone gslb.example.com.: loaded")]
    assert z and z[0]["PRIORITY"] == "6" and z[0]["GSLB_SUBJECT"] == "zone gslb.example.com.", z
    assert any(e["MESSAGE"].startswith("db %s:" % db) for e in entries), entries
    assert err == "", err             # nothing on stderr: it all went to the journal
    # auto: the journal when stderr is the journal's stream (as systemd says) ...
    entries, err = run_with_fake_journal(base, {"JOURNAL_STREAM": "set below"})
    assert entries and err == "", (entries, err)
    # ... and text when it is not
    entries, err = run_with_fake_journal(base)
    assert not entries and err.startswith("dnsd: zone gslb.example.com.: loaded"), (entries, err)


if __name__ == "__main__":
    run()
