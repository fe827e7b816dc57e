#!/usr/bin/python3
"""`make run`: the whole system on loopback in one command.

Starts bin/dnsd with the example zones, a demo SQLite store (a failover
service between two load-balancer CNAMEs, a geo service and a weighted
service), a demo GeoIP database generated now from
tests/fixtures/geo/demo.tsv, two small HTTP backends and two probe agents
("eu" and "us"). Prints what to try; Ctrl-C stops everything it started.

  tests/demo.py              run until Ctrl-C
  tests/demo.py --selftest   run the printed commands, check them, stop
"""
import http.server
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("BIN", os.path.join(ROOT, "bin"))
DEMO = os.path.join(ROOT, "build", "demo")
procs = []


def free_port(preferred):
    for port in [preferred] + [0] * 20:
        try:
            t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            t.bind(("127.0.0.1", port))
            port = t.getsockname()[1]
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.bind(("127.0.0.1", port))
            u.close()
            t.close()
            return port
        except OSError:
            continue
    raise SystemExit("demo: no free port")


def start(name, argv):
    log = open(os.path.join(DEMO, name + ".log"), "w")
    p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    procs.append((name, p))
    return p


def stop_all():
    for name, p in reversed(procs):
        if p.poll() is None:
            p.terminate()
    for name, p in reversed(procs):
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
    procs.clear()


def gslbctl(db, *args):
    subprocess.run([os.path.join(BIN, "gslbctl"), "--db", db] + list(args), check=True,
                   stdout=subprocess.DEVNULL)


class Backend(http.server.BaseHTTPRequestHandler):
    """A load balancer's health page: 200 'OK' until told to fail."""

    def do_GET(self):
        ok = self.server.healthy
        body = b"OK\n" if ok else b"maintenance\n"
        self.send_response(200 if ok else 503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def backend(port):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Backend)
    srv.healthy = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def setup():
    os.makedirs(DEMO, exist_ok=True)
    for f in os.listdir(DEMO):
        os.unlink(os.path.join(DEMO, f))
    mmdb = os.path.join(DEMO, "demo.mmdb")
    subprocess.run(["perl", os.path.join(ROOT, "tests", "tools", "mkmmdb.pl"),
                    os.path.join(ROOT, "tests", "fixtures", "geo", "demo.tsv"), mmdb],
                   check=True)
    token = os.path.join(DEMO, "token")
    with open(token, "w") as f:
        f.write("demo-token-%d\n" % os.getpid())
    eu_port, us_port = free_port(8081), free_port(8082)
    backends = {"eu": backend(eu_port), "us": backend(us_port)}
    db = os.path.join(DEMO, "gslb.db")
    gslbctl(db, "init")
    www = "www.gslb.example.com."
    gslbctl(db, "service", "add", www, "--policy", "failover", "--ttl", "10")
    gslbctl(db, "endpoint", "add", www, "lb-eu.example.net.", "--priority", "10", "--region", "eu",
            "--check", "http://127.0.0.1:%d/health" % eu_port, "--check-interval", "1",
            "--check-rise", "2", "--check-fall", "2", "--check-body", "OK")
    gslbctl(db, "endpoint", "add", www, "lb-us.example.net.", "--priority", "20", "--region", "us",
            "--check", "http://127.0.0.1:%d/health" % us_port, "--check-interval", "1",
            "--check-rise", "2", "--check-fall", "2", "--check-body", "OK")
    geo = "geo.gslb.example.com."
    gslbctl(db, "service", "add", geo, "--policy", "geo")
    for addr, region, lat, lon in [("192.0.2.10", "eu-frankfurt", "50.11", "8.68"),
                                   ("198.51.100.10", "us-ashburn", "39.04", "-77.49"),
                                   ("203.0.113.10", "ap-tokyo", "35.69", "139.69")]:
        gslbctl(db, "endpoint", "add", geo, addr, "--region", region, "--lat", lat, "--lon", lon)
    wtd = "weighted.gslb.example.com."
    gslbctl(db, "service", "add", wtd, "--policy", "weighted")
    for addr, w in [("192.0.2.21", "70"), ("192.0.2.22", "20"), ("192.0.2.23", "10")]:
        gslbctl(db, "endpoint", "add", wtd, addr, "--weight", w)

    dns_port, api_port = free_port(5300), free_port(8053)
    api = "http://127.0.0.1:%d" % api_port
    dnsd = start("dnsd", [os.path.join(BIN, "dnsd"), "--listen", "127.0.0.1:%d" % dns_port,
                          "--zone", os.path.join(ROOT, "zones", "example.com.zone"),
                          "--zone", os.path.join(ROOT, "zones", "gslb.example.com.zone"),
                          "--db", db, "--geoip", mmdb, "--api", "127.0.0.1:%d" % api_port,
                          "--api-token-file", token, "--check-interval", "1", "--threads", "2"])
    wait_dns(dns_port, dnsd)
    for name, region, lat, lon in [("probe-eu", "eu", "50.11", "8.68"),
                                   ("probe-us", "us", "39.04", "-77.49")]:
        start(name, [os.path.join(BIN, "gslb-probe"), "--name", name, "--region", region,
                     "--lat", lat, "--lon", lon, "--server", api, "--token-file", token,
                     "--interval", "1"])
    return dict(db=db, dns_port=dns_port, api=api, backends=backends, token=token)


def wait_dns(port, p, timeout=10):
    q = bytes.fromhex("00010000000100000000000003777777076578616d706c6503636f6d0000010001")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise SystemExit("demo: dnsd exited; see %s/dnsd.log" % DEMO)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.2)
            try:
                s.sendto(q, ("127.0.0.1", port))
                s.recv(512)
                return
            except OSError:
                time.sleep(0.05)
    raise SystemExit("demo: dnsd did not answer")


def commands(env):
    dig = "dig @127.0.0.1 -p %d +noall +answer" % env["dns_port"]
    ctl = "bin/gslbctl --db build/demo/gslb.db"
    return [
        ("Failover between two load-balancer CNAMEs (both healthy: eu wins)",
         "%s www.gslb.example.com A" % dig, "lb-eu.example.net."),
        ("Geo: the nearest region for a client in Frankfurt (ECS)",
         "%s geo.gslb.example.com A +subnet=127.0.1.0/24" % dig, "192.0.2.10"),
        ("... in Ashburn", "%s geo.gslb.example.com A +subnet=127.0.2.0/24" % dig, "198.51.100.10"),
        ("... in Tokyo", "%s geo.gslb.example.com A +subnet=127.0.3.0/24" % dig, "203.0.113.10"),
        ("... in Sao Paulo (nearest is Ashburn)",
         "%s geo.gslb.example.com A +subnet=127.0.5.0/24" % dig, "198.51.100.10"),
        ("Weighted 70/20/10: ask a few times",
         "%s weighted.gslb.example.com A" % dig, "192.0.2.2"),
        ("Flip the failover service to the us load balancer",
         "%s flip www.gslb.example.com lb-us.example.net." % ctl, None),
        ("... and dig follows within a second",
         "sleep 1; %s www.gslb.example.com A" % dig, "lb-us.example.net."),
        ("Drain it: traffic goes back to eu",
         "%s endpoint drain www.gslb.example.com lb-us.example.net." % ctl, None),
        ("", "sleep 1; %s www.gslb.example.com A" % dig, "lb-eu.example.net."),
        ("Health as the probe agents see it", "%s status" % ctl, "www.gslb.example.com"),
        ("Why a client gets its answer",
         "%s explain geo.gslb.example.com --client 127.0.3.1 --geoip build/demo/demo.mmdb" % ctl,
         "203.0.113.10"),
        ("Metrics", "curl -s %s/metrics | grep -E '^dnsd_(responses|endpoint_healthy)' | head" % env["api"],
         "dnsd_responses_total"),
    ]


def show(env):
    print()
    print("GSLB demo running on loopback (logs in build/demo/):")
    print("  dnsd           127.0.0.1:%d (DNS), %s (API)" % (env["dns_port"], env["api"]))
    print("  probe agents   probe-eu, probe-us (checking two HTTP backends every second)")
    print("  zones          example.com, gslb.example.com;  store build/demo/gslb.db")
    print()
    for title, cmd, _ in commands(env):
        if title:
            print("# " + title)
        print("  " + cmd)
    print()
    print("# Take the eu backend down (it answers 503) and watch www fail over in ~2 s:")
    print("  kill -USR1 %d      # toggles the eu backend's health; USR2 toggles us" % os.getpid())
    print()
    print("Ctrl-C stops everything.")
    sys.stdout.flush()


def www_up(env):
    """Every endpoint of the failover service up, as dnsd's API says."""
    try:
        with urllib.request.urlopen(env["api"] + "/v1/status", timeout=2) as r:
            doc = json.load(r)
    except (OSError, ValueError):
        return False
    eps = [e for s in doc.get("services", []) if s.get("name") == "www.gslb.example.com."
           for e in s.get("endpoints", [])]
    return len(eps) == 2 and all(e.get("health") == "up" for e in eps)


def selftest(env):
    bad = 0
    # A sanitizer build (make asan/tsan) is slower: its waits scale with
    # GSLB_TIME_FACTOR, and its own gslbctl runs the commands (the printed
    # bin/gslbctl is what `make run` built).
    factor = max(1.0, float(os.environ.get("GSLB_TIME_FACTOR") or 1))
    # until the agents have reported both backends up (at most 10 s)
    deadline = time.monotonic() + 10 * factor
    while time.monotonic() < deadline and not www_up(env):
        time.sleep(0.2)
    for title, cmd, want in commands(env):
        cmd = cmd.replace("bin/gslbctl ", shlex.quote(os.path.join(BIN, "gslbctl")) + " ")
        cmd = cmd.replace("sleep 1;", "sleep %g;" % factor)
        p = subprocess.run(["bash", "-c", cmd], cwd=ROOT, capture_output=True, text=True, timeout=30)
        # (the weighted one checks the common prefix of .21, .22 and .23)
        ok = p.returncode == 0 and (want is None or want in p.stdout)
        print("%s %s" % ("ok  " if ok else "FAIL", cmd))
        if not ok:
            bad += 1
            print(p.stdout + p.stderr)
    # the metrics with agents, RTTs and per-endpoint answers pass promtool
    text = subprocess.run(["curl", "-s", env["api"] + "/metrics"], capture_output=True,
                          timeout=10).stdout
    p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, timeout=30)
    ok = p.returncode == 0 and b"dnsd_endpoint_rtt_seconds{agent=" in text and \
        b"dnsd_agent_last_report_age_seconds{agent=" in text
    print("%s promtool check metrics (with agents and RTTs)" % ("ok  " if ok else "FAIL"))
    if not ok:
        bad += 1
        print(p.stdout.decode() + p.stderr.decode())
    # failover: the eu backend fails its health check
    subprocess.run([os.path.join(BIN, "gslbctl"), "--db", env["db"], "endpoint", "undrain",
                    "www.gslb.example.com.", "lb-us.example.net."], check=True)
    subprocess.run([os.path.join(BIN, "gslbctl"), "--db", env["db"], "flip",
                    "www.gslb.example.com.", "lb-eu.example.net."], check=True)
    env["backends"]["eu"].healthy = False
    t0 = time.monotonic()
    got = ""
    while time.monotonic() - t0 < 10 * factor:
        got = subprocess.run(["dig", "@127.0.0.1", "-p", str(env["dns_port"]), "+short",
                              "www.gslb.example.com", "A"], capture_output=True, text=True).stdout
        if "lb-us.example.net." in got:
            break
        time.sleep(0.1)
    ok = "lb-us.example.net." in got
    print("%s failover after the eu backend failed: %.1f s" % ("ok  " if ok else "FAIL", time.monotonic() - t0))
    bad += not ok
    print("%d passed, %d failed" % (len(commands(env)) + 2 - bad, bad))
    return 1 if bad else 0


def main():
    env = None
    try:
        env = setup()
        if "--selftest" in sys.argv:
            return selftest(env)
        show(env)
        def toggle(region):
            b = env["backends"][region]
            b.healthy = not b.healthy
            print("demo: %s backend now %s" % (region, "healthy" if b.healthy else "failing (503)"),
                  flush=True)
        signal.signal(signal.SIGUSR1, lambda *a: toggle("eu"))
        signal.signal(signal.SIGUSR2, lambda *a: toggle("us"))
        while all(p.poll() is None for _, p in procs):
            time.sleep(0.5)
        for name, p in procs:
            if p.poll() is not None:
                print("demo: %s exited (%s); see build/demo/%s.log" % (name, p.returncode, name))
        return 1
    except KeyboardInterrupt:
        print("\ndemo: stopping")
        return 0
    finally:
        stop_all()


if __name__ == "__main__":
    sys.exit(main())
