#!/usr/bin/python3
"""bin/gslbctl driven for real on temporary stores: every subcommand, the
--json keys of gslbctl(8), each bad input (one-line stderr, non-zero exit,
`sqlite3 .dump` unchanged), flip semantics, export -> import -> export
equality, import to a new path, and the corrupt-file error."""
import json
import os
import re
import subprocess

from gslbtest import BIN, FIXTURES, run, test, tmpdir

GSLBCTL = os.path.join(BIN, "gslbctl")
SVC = "www.gslb.example.com."


def ctl(db, *args, ok=True, stdin=None):
    """Runs gslbctl --db db args; returns (rc, stdout, stderr)."""
    p = subprocess.run([GSLBCTL, "--db", db] + list(args), input=stdin,
                       capture_output=True, text=True, timeout=30)
    if ok and p.returncode != 0:
        raise AssertionError("gslbctl %s failed (%d): %s" % (" ".join(args), p.returncode,
                                                             p.stderr))
    return p.returncode, p.stdout, p.stderr


def ctl_json(db, *args):
    return json.loads(ctl(db, *args, "--json")[1])


def dump(db):
    return subprocess.run(["sqlite3", db, ".dump"], capture_output=True, text=True,
                          timeout=30, check=True).stdout


def sql(db, text):
    subprocess.run(["sqlite3", db], input=text, capture_output=True, text=True,
                   timeout=30, check=True)


def new_db(fixture=True):
    d = tmpdir()
    db = os.path.join(d, "gslb.db")
    ctl(db, "init")
    if fixture:
        with open(os.path.join(FIXTURES, "gslb_basic.sql")) as f:
            sql(db, f.read())
    return db


def endpoints(db, svc=SVC):
    show = ctl_json(db, "service", "show", svc)
    return {e["target"]: e for e in show["endpoints"]}


def assert_eq(a, b, what=""):
    if a != b:
        raise AssertionError("%s: %r != %r" % (what, a, b))


@test
def help_and_version():
    rc, out, _ = ctl("x", "--help")
    for word in ("init", "service add", "service list", "endpoint add", "endpoint set",
                 "endpoint drain", "endpoint undrain", "rule add", "flip", "status",
                 "explain", "export", "import"):
        assert word in out, word
    rc, out, _ = ctl("x", "--version")
    assert out.startswith("gslbctl "), out
    for sub in (["init"], ["service", "add"], ["service", "list"], ["service", "show"],
                ["service", "rm"], ["endpoint", "add"], ["endpoint", "set"],
                ["endpoint", "drain"], ["endpoint", "undrain"], ["endpoint", "rm"],
                ["rule", "add"], ["flip"], ["status"], ["explain"], ["export"], ["import"]):
        rc, out, _ = ctl("x", *(sub + ["--help"]))
        assert out.startswith("usage: gslbctl"), (sub, out)
    rc, out, err = ctl("x", ok=False)
    assert rc != 0


@test
def init_creates_schema_and_is_idempotent():
    d = tmpdir()
    db = os.path.join(d, "new.db")
    ctl(db, "init")
    ctl(db, "init")
    out = subprocess.run(["sqlite3", db, "PRAGMA user_version; PRAGMA journal_mode;"],
                         capture_output=True, text=True, check=True).stdout.split()
    with open(os.path.join(os.path.dirname(FIXTURES), "..", "db", "store.h")) as f:
        ver = re.search(r"#define STORE_SCHEMA_VERSION (\d+)", f.read()).group(1)
    assert_eq(out, [ver, "wal"], "version/journal")
    assert_eq(ctl_json(db, "service", "list"), [], "empty list")


@test
def service_add_list_show_rm():
    db = new_db(fixture=False)
    ctl(db, "service", "add", "WWW.Example.COM", "--policy", "failover")
    ctl(db, "service", "add", "all.example.com.", "--policy", "all", "--ttl", "60",
        "--answers", "4", "--when-down", "closed")
    ctl(db, "service", "add", "st.example.com", "--policy", "weighted", "--sticky",
        "--when-down", "sorry.example.net.")
    lst = ctl_json(db, "service", "list")
    assert_eq([s["name"] for s in lst],
              ["all.example.com.", "st.example.com.", "www.example.com."], "names sorted")
    for s in lst:
        for k in ("name", "policy", "ttl"):
            assert k in s, k
    by = {s["name"]: s for s in lst}
    assert_eq(by["www.example.com."]["ttl"], 30, "default ttl")
    assert_eq(by["all.example.com."]["ttl"], 60, "ttl")
    show = ctl_json(db, "service", "show", "st.example.com")
    assert_eq((show["name"], show["policy"], show["sticky"], show["when_down"]),
              ("st.example.com.", "weighted", True, "sorry.example.net."), "show")
    assert_eq(show["endpoints"], [], "no endpoints")
    rc, out, _ = ctl(db, "service", "list")
    assert "www.example.com. failover ttl 30" in out, out
    assert_eq([s["name"] for s in ctl_json(db, "service", "list", "WWW.example.com")],
              ["www.example.com."], "list NAME")
    ctl(db, "service", "set", "all.example.com", "--answers", "default", "--ttl", "5")
    show = ctl_json(db, "service", "show", "all.example.com")
    assert_eq((show["answers"], show["ttl"]), (None, 5), "service set")
    ctl(db, "--force", "service", "rm", "www.example.com")
    assert_eq(len(ctl_json(db, "service", "list")), 2, "after rm")


@test
def endpoint_add_set_drain_rm():
    db = new_db()
    ctl(db, "endpoint", "add", SVC, "2001:DB8::0:7", "--weight", "5", "--priority", "3",
        "--region", "ap", "--lat", "35.7", "--lon", "139.7", "--bias", "-20",
        "--check", "tcp://[2001:db8::7]:443")
    ep = endpoints(db)["2001:db8::7"]
    assert_eq((ep["weight"], ep["priority"], ep["region"], ep["lat"], ep["lon"], ep["bias"],
               ep["admin"], ep["drained"], ep["check"]["url"]),
              (5, 3, "ap", 35.7, 139.7, -20.0, "auto", False, "tcp://[2001:db8::7]:443"),
              "added")
    ctl(db, "--force", "endpoint", "set", SVC, "2001:db8::7", "--admin", "down", "--weight", "0",
        "--check", "")
    ep = endpoints(db)["2001:db8::7"]
    assert_eq((ep["admin"], ep["weight"], ep["priority"], ep["check"]),
              ("down", 0, 3, None), "set keeps others")
    # A CNAME target needs its trailing dot (else it is not a TARGET).
    rc, _, err = ctl(db, "endpoint", "drain", SVC, "lb-eu.example.net", ok=False)
    assert rc != 0 and "bad target" in err, err


@test
def endpoint_drain_undrain_rm():
    db = new_db()
    ctl(db, "--force", "endpoint", "drain", SVC, "lb-eu.example.net.")
    assert endpoints(db)["lb-eu.example.net."]["drained"] is True
    ctl(db, "endpoint", "undrain", SVC, "LB-EU.example.net.")
    assert endpoints(db)["lb-eu.example.net."]["drained"] is False
    ctl(db, "--force", "endpoint", "rm", SVC, "lb-us.example.net.")
    assert_eq(list(endpoints(db)), ["lb-eu.example.net."], "after rm")
    # Removing the only target of a rule removes the rule.
    ctl(db, "--force", "endpoint", "rm", "geo.gslb.example.com", "192.0.2.21")
    assert_eq(ctl_json(db, "rule", "list", "geo.gslb.example.com"), [], "rule gone")


@test
def rules_add_list_rm():
    db = new_db()
    g = "geo.gslb.example.com"
    ctl(db, "rule", "add", g, "country:de", "192.0.2.20")
    ctl(db, "rule", "add", g, "continent:NA", "192.0.2.21", "192.0.2.20")
    ctl(db, "rule", "add", g, "2001:db8:1::/48", "192.0.2.21")
    rules = ctl_json(db, "rule", "list", g)
    assert_eq([r["match"] for r in rules],
              ["10.0.0.0/8", "2001:db8:1::/48", "continent:NA", "country:DE"], "rules")
    assert_eq(rules[2]["targets"], ["192.0.2.20", "192.0.2.21"], "targets sorted")
    ctl(db, "rule", "rm", g, "country:DE")
    assert_eq(len(ctl_json(db, "rule", "list", g)), 3, "after rm")


@test
def flip_semantics():
    db = new_db()
    ctl(db, "flip", SVC, "lb-us.example.net.")
    eps = endpoints(db)
    assert eps["lb-us.example.net."]["priority"] < eps["lb-eu.example.net."]["priority"], eps
    ex = ctl_json(db, "explain", SVC, "--client", "192.0.2.1")
    assert_eq(ex["answer"], ["lb-us.example.net."], "answer after flip")
    ctl(db, "flip", SVC, "lb-eu.example.net.")
    ex = ctl_json(db, "explain", SVC, "--client", "192.0.2.1")
    assert_eq(ex["answer"], ["lb-eu.example.net."], "answer after flip back")
    # Three endpoints: the others keep their order.
    ctl(db, "endpoint", "add", SVC, "lb-ap.example.net.", "--priority", "20")
    before = endpoints(db)
    ctl(db, "flip", SVC, "lb-ap.example.net.")
    after = endpoints(db)
    others = sorted((t for t in after if t != "lb-ap.example.net."),
                    key=lambda t: before[t]["priority"])
    prios = [after[t]["priority"] for t in others]
    assert prios == sorted(prios) and len(set(prios)) == len(prios), (before, after)
    assert all(after["lb-ap.example.net."]["priority"] < p for p in prios), after
    # Flipping to the one already first changes nothing.
    d0 = dump(db)
    ctl(db, "flip", SVC, "lb-ap.example.net.")
    assert_eq(dump(db), d0, "flip to first")
    # Priorities at 0 everywhere: the others move up by one.
    db2 = new_db(fixture=False)
    ctl(db2, "service", "add", "f.example.com", "--policy", "failover")
    for t in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
        ctl(db2, "endpoint", "add", "f.example.com", t)
    ctl(db2, "endpoint", "set", "f.example.com", "192.0.2.2", "--priority", "1")
    ctl(db2, "flip", "f.example.com", "192.0.2.3")
    eps = endpoints(db2, "f.example.com")
    assert_eq({t: e["priority"] for t, e in eps.items()},
              {"192.0.2.1": 1, "192.0.2.2": 2, "192.0.2.3": 0}, "shifted")
    # No room to shift: refused, nothing changed.
    ctl(db2, "endpoint", "set", "f.example.com", "192.0.2.2", "--priority", "65535")
    ctl(db2, "endpoint", "set", "f.example.com", "192.0.2.3", "--priority", "0")
    ctl(db2, "endpoint", "set", "f.example.com", "192.0.2.1", "--priority", "7")
    d0 = dump(db2)
    rc, _, err = ctl(db2, "flip", "f.example.com", "192.0.2.1", ok=False)
    assert rc != 0 and "65535" in err and err.count("\n") == 1, err
    assert_eq(dump(db2), d0, "flip without room")


BAD = [
    # (argv, stderr must contain)
    (["service", "add", "bad..name", "--policy", "failover"], "empty label"),
    (["service", "add", "x.example.com", "--policy", "nosuch"], "unknown policy"),
    (["service", "add", "x.example.com"], "--policy is required"),
    (["service", "add", SVC, "--policy", "failover"], "already exists"),
    (["service", "add", "x.example.com", "--policy", "all", "--ttl", "-1"], "ttl"),
    (["service", "add", "x.example.com", "--policy", "all", "--answers", "17"], "answers"),
    (["service", "add", "x.example.com", "--policy", "all", "--when-down", "maybe"],
     "when-down"),
    (["service", "add", "x.example.com", "--policy", "all", "--bogus", "1"],
     "unknown option"),
    (["service", "rm", "nosuch.example.com"], "not found"),
    (["service", "show", "nosuch.example.com"], "not found"),
    (["endpoint", "add", SVC, "300.1.2.3"], "bad target"),
    (["endpoint", "add", SVC, "lb.example.net"], "bad target"),
    (["endpoint", "add", SVC, "bad_label!.example.net."], "bad target"),
    (["endpoint", "add", SVC, "-lb.example.net."], "bad target"),
    (["endpoint", "add", SVC, "1.2.3.4."], "bad target"),
    (["endpoint", "add", SVC, "192.0.2.9", "--weight", "-1"], "weight"),
    (["endpoint", "add", SVC, "192.0.2.9", "--weight", "65536"], "weight"),
    (["endpoint", "add", SVC, "192.0.2.9", "--weight", "99999999999999999999999"], "weight"),
    (["endpoint", "add", SVC, "192.0.2.9", "--weight", "ten"], "weight"),
    (["endpoint", "add", SVC, "192.0.2.9", "--priority", "70000"], "priority"),
    (["endpoint", "add", SVC, "192.0.2.9", "--lat", "95.2", "--lon", "0"], "latitude"),
    (["endpoint", "add", SVC, "192.0.2.9", "--lat", "10", "--lon", "181"], "longitude"),
    (["endpoint", "add", SVC, "192.0.2.9", "--lat", "10"], "--lat and --lon"),
    (["endpoint", "add", SVC, "192.0.2.9", "--bias", "100"], "bias"),
    (["endpoint", "add", SVC, "192.0.2.9", "--check", "ftp://x/"], "check"),
    (["endpoint", "add", SVC, "lb-eu.example.net."], "already an endpoint"),
    (["endpoint", "add", "nosuch.example.com", "192.0.2.9"], "not found"),
    (["endpoint", "set", SVC, "192.0.2.99", "--weight", "3"], "not an endpoint"),
    (["endpoint", "set", SVC, "lb-eu.example.net.", "--admin", "sideways"], "admin"),
    (["endpoint", "drain", SVC, "lb-eu.example.net"], "bad target"),
    (["endpoint", "rm", SVC, "192.0.2.99"], "not an endpoint"),
    (["rule", "add", "geo.gslb.example.com", "10.0.0.1/8", "192.0.2.20"], "bad rule"),
    (["rule", "add", "geo.gslb.example.com", "country:ZZ", "192.0.2.20"], "unknown country"),
    (["rule", "add", "geo.gslb.example.com", "continent:XX", "192.0.2.20"], "continent"),
    (["rule", "add", "geo.gslb.example.com", "country:DE", "192.0.2.99"], "not an endpoint"),
    (["rule", "add", "geo.gslb.example.com", "country:DE", "192.0.2.20", "192.0.2.99"],
     "not an endpoint"),
    (["rule", "add", "geo.gslb.example.com", "10.0.0.0/8", "192.0.2.20"], "already exists"),
    (["rule", "rm", "geo.gslb.example.com", "country:FR"], "no rule"),
    (["flip", SVC, "lb-ap.example.net."], "not an endpoint"),
    (["flip", SVC, "192.0.2.10"], "not an endpoint"),
    (["flip", "nosuch.example.com", "lb-eu.example.net."], "not found"),
    (["explain", SVC], "--client"),
    (["explain", SVC, "--client", "not-an-ip"], "not an IPv4 or IPv6"),
    (["explain", "nosuch.example.com", "--client", "192.0.2.1"], "not found"),
    (["status", "nosuch.example.com"], "not found"),
    (["frobnicate"], "unknown command"),
    (["service", "frobnicate"], "unknown or missing subcommand"),
    (["service", "add"], "usage"),
]


@test
def bad_input_is_one_line_and_changes_nothing():
    db = new_db()
    d0 = dump(db)
    for argv, needle in BAD:
        rc, out, err = ctl(db, *argv, ok=False)
        assert rc != 0, argv
        lines = err.strip("\n").split("\n")
        assert len(lines) == 1 and lines[0].startswith("gslbctl: "), (argv, err)
        assert needle in err, (argv, needle, err)
        assert_eq(dump(db), d0, "dump after %r" % argv)


@test
def flip_to_drained_or_forced_down_fails():
    db = new_db()
    ctl(db, "--force", "endpoint", "drain", SVC, "lb-us.example.net.")
    d0 = dump(db)
    rc, _, err = ctl(db, "flip", SVC, "lb-us.example.net.", ok=False)
    assert rc != 0 and "drained" in err, err
    assert_eq(dump(db), d0, "drained flip")
    ctl(db, "endpoint", "undrain", SVC, "lb-us.example.net.")
    ctl(db, "--force", "endpoint", "set", SVC, "lb-us.example.net.", "--admin", "down")
    d0 = dump(db)
    rc, _, err = ctl(db, "flip", SVC, "lb-us.example.net.", ok=False)
    assert rc != 0 and "forced down" in err, err
    assert_eq(dump(db), d0, "forced-down flip")


@test
def status_json_keys_and_health():
    db = new_db()
    sql(db, """
        INSERT INTO probes (id, name, region, lat, lon, last_seen)
            VALUES (1, 'probe-eu', 'eu', 50, 8, 1000);
        INSERT INTO health VALUES (1, 1, 'down', 0, NULL, 'status 503', 990, 991, 900);
        INSERT INTO endpoint_health VALUES (1, 'down', 0, 900, 'probe-eu: status 503');
        INSERT INTO latency VALUES ('eu', 2, 80.5, 12, 995);
    """)
    st = ctl_json(db, "status")
    svcs = {s["name"]: s for s in st["services"]}
    for s in st["services"]:
        for k in ("name", "policy", "endpoints"):
            assert k in s, k
        for e in s["endpoints"]:
            for k in ("target", "health", "admin", "drained", "weight", "priority"):
                assert k in e, k
            assert e["health"] in ("up", "down", "unknown")
    eps = {e["target"]: e for e in svcs[SVC]["endpoints"]}
    assert_eq(eps["lb-eu.example.net."]["health"], "down", "reported down")
    assert_eq(eps["lb-us.example.net."]["health"], "unknown", "checked, no report")
    assert_eq(eps["lb-eu.example.net."]["agents"][0]["detail"], "status 503", "agent")
    assert_eq(eps["lb-us.example.net."]["latency"][0]["rtt_ms"], 80.5, "rtt")
    weps = {e["target"]: e for e in svcs["api.gslb.example.com."]["endpoints"]}
    assert_eq(weps["192.0.2.10"]["health"], "up", "no check is up")
    one = ctl_json(db, "status", "api.gslb.example.com")
    assert_eq([s["name"] for s in one["services"]], ["api.gslb.example.com."], "one")
    rc, out, _ = ctl(db, "status")
    assert "lb-eu.example.net." in out and "down" in out, out
    # explain follows the stored health: eu is down, so us answers.
    ex = ctl_json(db, "explain", SVC, "--client", "192.0.2.1")
    assert_eq(ex["answer"], ["lb-us.example.net."], "failover on health")
    why = {e["target"]: e for e in ex["endpoints"]}
    assert not why["lb-eu.example.net."]["chosen"]
    assert "unhealthy" in why["lb-eu.example.net."]["reason"], why


@test
def explain_json_keys_and_policies():
    db = new_db()
    ex = ctl_json(db, "explain", SVC, "--client", "192.0.2.1")
    for k in ("service", "client", "answer", "endpoints"):
        assert k in ex, k
    for e in ex["endpoints"]:
        for k in ("target", "chosen", "reason"):
            assert k in e, k
    assert_eq(ex["answer"], ["lb-eu.example.net."], "failover answer")
    assert_eq(ex["service"], SVC, "service")
    # Drain eu: us answers; both drained: fail open.
    ctl(db, "--force", "endpoint", "drain", SVC, "lb-eu.example.net.")
    assert_eq(ctl_json(db, "explain", SVC, "--client", "192.0.2.1")["answer"],
              ["lb-us.example.net."], "drained")
    ctl(db, "--force", "endpoint", "drain", SVC, "lb-us.example.net.")
    ex = ctl_json(db, "explain", SVC, "--client", "192.0.2.1")
    assert_eq((ex["answer"], ex["mode"]), (["lb-eu.example.net."], "open"), "fail open")
    ctl(db, "service", "set", SVC, "--when-down", "closed")
    ex = ctl_json(db, "explain", SVC, "--client", "192.0.2.1")
    assert_eq((ex["answer"], ex["servfail"]), ([], True), "closed")
    ctl(db, "service", "set", SVC, "--when-down", "sorry.example.org.")
    ex = ctl_json(db, "explain", SVC, "--client", "192.0.2.1")
    assert_eq(ex["answer"], ["sorry.example.org."], "fallback target")
    # Geo: client location by hand; the CIDR rule wins over distance.
    g = "geo.gslb.example.com"
    ex = ctl_json(db, "explain", g, "--client", "198.51.100.1", "--lat", "48.9", "--lon", "2.3")
    assert_eq(ex["answer"], ["192.0.2.20"], "paris -> eu")
    ex = ctl_json(db, "explain", g, "--client", "198.51.100.1", "--lat", "34", "--lon", "-118")
    assert_eq(ex["answer"], ["192.0.2.21"], "los angeles -> us")
    ex = ctl_json(db, "explain", g, "--client", "10.1.2.3", "--lat", "48.9", "--lon", "2.3")
    assert_eq(ex["answer"], ["192.0.2.21"], "rule 10/8 -> us")
    assert_eq(ex["scope"], 8, "scope of the rule")
    rc, out, _ = ctl(db, "explain", g, "--client", "10.1.2.3")
    assert "rule 10.0.0.0/8" in out and "192.0.2.20" in out, out


@test
def explain_with_geoip():
    """--geoip: the client's location comes from the MMDB, as in dnsd."""
    d = tmpdir()
    mmdb = os.path.join(d, "test.mmdb")
    root = os.path.dirname(FIXTURES)
    subprocess.run(["perl", os.path.join(root, "tools", "mkmmdb.pl"),
                    os.path.join(FIXTURES, "geo", "networks.tsv"), mmdb],
                   check=True, capture_output=True, timeout=60)
    db = new_db()
    g = "geo.gslb.example.com"
    ex = ctl_json(db, "explain", g, "--client", "127.0.1.5", "--geoip", mmdb)
    assert_eq((ex["answer"], ex["location"]["country"], ex["scope"]),
              (["192.0.2.20"], "DE", 24), "frankfurt")
    ex = ctl_json(db, "explain", g, "--client", "127.0.2.0/24", "--geoip", mmdb)
    assert_eq((ex["answer"], ex["location"]["country"]), (["192.0.2.21"], "US"), "ashburn")
    why = {e["target"]: e for e in ex["endpoints"]}
    assert why["192.0.2.21"]["distance_km"] < why["192.0.2.20"]["distance_km"], why
    # ECS source /0: not located; the default location decides, scope 0.
    ex = ctl_json(db, "explain", g, "--client", "127.0.1.0/0", "--geoip", mmdb,
                  "--default-location", "US")
    assert_eq((ex["answer"], ex["location"]["country"], ex["scope"]),
              (["192.0.2.21"], "US", 0), "ecs /0")
    # Unknown to the GeoIP data: the default location.
    ex = ctl_json(db, "explain", g, "--client", "203.0.113.9", "--geoip", mmdb,
                  "--default-location", "50.1,8.7")
    assert_eq(ex["answer"], ["192.0.2.20"], "default location")
    rc, _, err = ctl(db, "explain", g, "--client", "127.0.1.5", "--geoip",
                     os.path.join(d, "nope.mmdb"), ok=False)
    assert rc != 0 and "nope.mmdb" in err and err.count("\n") == 1, err


@test
def explain_sticky_follows_the_subnet():
    """Sticky weighted: every address of a /24 (dnsd's default IPv4 cap)
    gets the same answer; the scope is that /24."""
    db = new_db()
    ctl(db, "service", "set", "api.gslb.example.com", "--sticky")
    for net in range(20):
        answers = set()
        for host in (1, 77, 254):
            ex = ctl_json(db, "explain", "api.gslb.example.com",
                          "--client", "198.51.%d.%d" % (net, host))
            answers.add(tuple(ex["answer"]))
            assert_eq(ex["scope"], 24, "sticky scope")
        assert_eq(len(answers), 1, "198.51.%d.0/24" % net)


@test
def export_import_roundtrip():
    db = new_db()
    ctl(db, "endpoint", "set", SVC, "lb-eu.example.net.", "--check-interval", "5",
        "--check-expect", "200-299", "--check-body", "ok", "--check-host", "www.example.com",
        "--check-insecure", "--bias", "12.5")
    ctl(db, "--force", "endpoint", "drain", SVC, "lb-us.example.net.")
    ctl(db, "endpoint", "set", SVC, "lb-us.example.net.", "--lat", "12.345678901234567",
        "--lon", "-0.1")
    ctl(db, "service", "set", "api.gslb.example.com", "--sticky", "--answers", "2")
    ctl(db, "rule", "add", "geo.gslb.example.com", "country:FR", "192.0.2.20")
    _, e1, _ = ctl(db, "export")
    doc = json.loads(e1)
    assert_eq(doc["version"], 1, "version")
    assert '"lon": -0.1,' in e1 and '"lat": 50.1,' in e1, e1
    d = tmpdir()
    path = os.path.join(d, "copy.db")      # does not exist yet
    with open(os.path.join(d, "config.json"), "w") as f:
        f.write(e1)
    ctl(path, "import", os.path.join(d, "config.json"))
    _, e2, _ = ctl(path, "export")
    assert_eq(e2, e1, "export -> import -> export")
    # import replaces everything, from stdin too.
    small = {"version": 1, "services": [{"name": "only.example.com", "policy": "all",
                                          "endpoints": [{"target": "192.0.2.1"}]}]}
    ctl(path, "--force", "import", "-", stdin=json.dumps(small))
    assert_eq([s["name"] for s in ctl_json(path, "service", "list")],
              ["only.example.com."], "replaced")


@test
def import_bad_changes_nothing():
    db = new_db()
    d0 = dump(db)
    d = tmpdir()
    cases = [
        ("{not json", "import"),
        (json.dumps({"services": [{"name": "a.example.com", "policy": "nosuch"}]}),
         "unknown policy"),
        (json.dumps({"services": [{"name": "a.example.com", "policy": "all",
                                   "endpoints": [{"target": "300.1.1.1"}]}]}), "bad target"),
        (json.dumps({"services": [{"name": "a.example.com", "policy": "all",
                                   "endpoints": [{"target": "192.0.2.1", "weight": 70000}]}]}),
         "weight"),
        (json.dumps({"services": [{"name": "a.example.com", "policy": "all", "colour": 1}]}),
         "unknown key"),
        (json.dumps({"services": [{"name": "a.example.com", "policy": "all"},
                                  {"name": "A.example.com.", "policy": "all"}]}),
         "already exists"),
        (json.dumps({"version": 2, "services": []}), "version"),
    ]
    for i, (text, needle) in enumerate(cases):
        p = os.path.join(d, "bad%d.json" % i)
        with open(p, "w") as f:
            f.write(text)
        rc, _, err = ctl(db, "import", p, ok=False)
        assert rc != 0 and needle in err and err.count("\n") == 1, (text, err)
        assert_eq(dump(db), d0, "dump after bad import %d" % i)


@test
def corrupt_and_missing_store():
    d = tmpdir()
    bad = os.path.join(d, "corrupt.db")
    with open(bad, "wb") as f:
        f.write(b"definitely not an sqlite database" * 100)
    for argv in (["service", "list"], ["status"], ["export"], ["init"]):
        rc, _, err = ctl(bad, *argv, ok=False)
        assert rc != 0, argv
        assert_eq(err, "gslbctl: db: %s: file is not a database\n" % bad, "corrupt")
    missing = os.path.join(d, "missing.db")
    rc, _, err = ctl(missing, "service", "add", "a.example.com", "--policy", "all", ok=False)
    assert rc != 0 and "missing.db" in err and err.count("\n") == 1, err
    assert not os.path.exists(missing)


@test
def endpoint_limit_per_service():
    db = new_db(fixture=False)
    ctl(db, "service", "add", "many.gslb.example.com", "--policy", "all")
    sql(db, "INSERT INTO endpoints (service_id, target) SELECT s.id, '10.1.' || (n / 250) || "
            "'.' || (n % 250) FROM services s, (WITH RECURSIVE c(n) AS (SELECT 0 UNION ALL "
            "SELECT n + 1 FROM c WHERE n < 255) SELECT n FROM c)")
    before = dump(db)
    rc, _, err = ctl(db, "endpoint", "add", "many.gslb.example.com", "192.0.2.1", ok=False)
    assert rc != 0 and len(err.strip().splitlines()) == 1 and "256 endpoints" in err, err
    assert_eq(dump(db), before, "store changed")


if __name__ == "__main__":
    run()
