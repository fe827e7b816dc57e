#!/usr/bin/python3
"""Writes the seed corpora of the text-input fuzz targets: zone (the zone
files of zones/ and tests/fixtures/zones/ and small variants), config (dnsd
option files, some with command-line flags after a NUL), report (POST
/v1/reports bodies), http (HTTP responses, prefixed by the target's two
control octets), checks (GET /v1/checks documents and URL lines) and store
(rows for fuzz_store, one "T|values" line each).
Deterministic; rerun after changing the cases:
    tests/fuzz/make_text_seeds.py [tests/fuzz/corpus]
Existing seed-* files of these corpora are replaced; crash-* files stay."""
import glob
import hashlib
import json
import os
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def zone_seeds():
    files = sorted(glob.glob(os.path.join(ROOT, "zones", "*.zone")) +
                   glob.glob(os.path.join(ROOT, "tests", "fixtures", "zones", "*.zone")))
    for f in files:
        yield open(f, "rb").read()
    soa = b"@ IN SOA ns1 hostmaster 1 7200 1800 1209600 300\n"
    head = b"$ORIGIN t.test.\n$TTL 60\n" + soa + b"  IN NS ns1\nns1 IN A 192.0.2.53\n"
    bodies = [b"", b"www IN A 192.0.2.1\nwww IN AAAA 2001:db8::1\n",
              b"*.w IN A 192.0.2.2\nx.y.z IN TXT \"deep\"\n",
              b"sub IN NS ns.sub\nns.sub IN A 192.0.2.9\nsub IN DS 1 8 2 "
              b"49FD46E6C4B45C55D4AC69CBD3CD34AC1AFE51DE6A6DC0E57F64B1E4D1B0A1A2\n",
              b"a IN CNAME b\nb IN CNAME c\nc IN CNAME a\n",
              b"mx IN MX 10 mail\nmail IN A 192.0.2.25\n_s._tcp IN SRV 0 1 80 mail\n",
              b"big IN TXT \"" + b"x" * 250 + b"\" \"" + b"y" * 250 + b"\"\n",
              b"t IN TYPE65280 \\# 3 010203\nc2 IN CAA 0 issue \"ca.example\"\n",
              b"p IN PTR t.test.\nh IN HINFO \"cpu\" \"os\"\nl IN LOC 52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000m 10m\n",
              b"ml IN SOA x y 2 3 4 5 6\n",            # a second SOA: error
              b"out.example. IN A 192.0.2.1\n",         # outside the zone
              b"$INCLUDE other.zone\n",
              b"cl CH TXT \"chaos\"\n",
              b"(\n", b"w IN A 300.1.2.3\n"]
    for b in bodies:
        yield head + b
    yield b"t.test. 60 IN SOA ns1.t.test. h.t.test. (\n 1 ; serial\n 2 3 4 5 )\nt.test. IN NS ns1.t.test.\n"
    yield b"$ORIGIN .\n@ IN SOA a. b. 1 2 3 4 5\n@ IN NS a.\n"
    yield b"www IN A 192.0.2.1\n"                     # no origin, no SOA


def config_seeds():
    base = (b"# dnsd options\nlisten 127.0.0.1:5300\nlisten [::1]:5300\nzone zones/example.com.zone\n"
            b"db /tmp/gslb.db\ngeoip /tmp/x.mmdb\napi 127.0.0.1:8053\napi-token-file /tmp/token\n"
            b"threads 2\nnsid ns1\nmax-udp-size 1232\ntcp-idle-timeout 10\ntcp-max-clients 250\n"
            b"ecs-max-v4 24\necs-max-v6 56\ndb-poll-ms 250\ncheck-interval 10\nquorum-percent 50\n"
            b"log-level info\ndefault-location 50.1,8.7\nrrl-rate 20\nrrl-slip 2\n"
            b"rrl-ipv4-prefix 24\nrrl-ipv6-prefix 56\nrrl-whitelist 127.0.5.0/24\nrrl-table-size 16384\n")
    yield base
    yield b"listen=127.0.0.1:53\nthreads = 4 # comment\n\r\n\t\n"
    yield b"threds 2\nmax-udp-size 70000\nthreads 1\nthreads 2\nlisten\n"
    yield b"listen 127.0.0.1:53\n" * 70
    yield b"rrl-whitelist 10.0.0.0/8\nrrl-whitelist bad\nuser nobody\n"
    yield b"zone a\x00--zone\nb\n--threads\n3\n--listen=127.0.0.1:1\n--check"
    yield base + b"\x00--listen\n[::1]:53\n--rrl-rate=0\n--unknown\nx\n--threads"
    yield b"\x00--db\n/tmp/x.db\n--max-udp-size\n4096\nstray"
    yield b"max-udp-size 511\ntcp-max-clients 0\nquorum-percent 101\nlog-level loud\n"
    yield b"# only a comment"
    yield b"api-token-file " + b"p" * 5000 + b"\n"


def report_seeds():
    ok = {"agent": "eu-1", "region": "eu", "lat": 50.1, "lon": 8.7,
          "results": [{"id": 7, "state": "down", "ok": False, "rtt_ms": None,
                       "ts": 1700000000.123, "detail": "connect: Connection refused"},
                      {"id": 8, "state": "up", "ok": True, "rtt_ms": 1.5, "ts": 1700000001}]}
    yield json.dumps(ok).encode()
    yield json.dumps({"agent": "a", "region": "r", "results": []}).encode()
    variants = [("lat", None), ("lon", 200), ("agent", ""), ("agent", "x" * 70),
                ("region", "a\tb"), ("results", {}), ("results", [1]),
                ("results", [{"id": -1}]), ("results", [{"id": 4294967296, "state": "up"}]),
                ("results", [{"id": 1, "state": "maybe", "ok": True, "ts": 1}]),
                ("results", [{"id": 1, "state": "up", "ok": 1, "ts": 1}]),
                ("results", [{"id": 1, "state": "up", "ok": True, "ts": 0}]),
                ("results", [{"id": 1, "state": "up", "ok": True, "ts": 1, "rtt_ms": 4e6}]),
                ("results", [{"id": 1, "state": "unknown", "ok": True, "ts": 1, "detail": "d" * 600}]),
                ("results", [{"id": 1, "state": "up", "ok": True, "ts": 1, "detail": 5}])]
    for k, v in variants:
        d = dict(ok)
        d[k] = v
        yield json.dumps(d).encode()
    yield b'{"agent":"a","agent":"b","region":"r","results":[]}'
    yield b'{"agent":"a","region":"r","results":[' + b",".join(
        b'{"id":%d,"state":"up","ok":true,"ts":1e9,"rtt_ms":0.5}' % i for i in range(50)) + b"]}"
    yield b"[1,2,3]"
    yield b'{"agent": "a", "region": "r", "lat": 1e999, "lon": 0, "results": []}'
    yield b'{"agent":"\\u0000x","region":"r","results":[]}'
    yield b"{" * 100
    yield b""


def http_seeds():
    resp = [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK",
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall healthy here",
            b"HTTP/1.0 503 Service Unavailable\r\n\r\n",
            b"HTTP/1.1 301 Moved\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nOK\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nxxOK",
            b"HTTP/1.1 200 OK\r\ncontent-length: -5\r\n\r\nhealthy",
            b"HTTP/1.1 200 OK\nContent-Length: 7\n\nhealthy",
            b"HTTP/2 200\r\n\r\n", b"SSH-2.0-OpenSSH_9.2\r\n", b"HTTP/1.1 2000 Big\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nX: " + b"a" * 17000 + b"\r\n\r\nOK",
            b"HTTP/1.1 200 OK\r\n\r\n" + b"z" * 6000 + b"OK",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\nOK",
            b"HTTP/1.1 200", b""]
    for i, r in enumerate(resp):
        for ctl in (0x00, 0x04 | 1, 0x08 | 2, 0x0c | 3):
            yield bytes([ctl, (i * 37 + ctl) & 0xff]) + r


def checks_seeds():
    doc = {"generation": 12, "checks": [
        {"id": 7, "service": "www.gslb.example.com.", "target": "192.0.2.1",
         "url": "http://192.0.2.1:8080/health", "interval": 5, "timeout": 2,
         "rise": 3, "fall": 2, "tls_verify": True, "expect": "200-399",
         "body": "OK", "host": "www.example.com", "rcode": None},
        {"id": 8, "url": "tcp://192.0.2.2:443"},
        {"id": 9, "url": "https://[2001:db8::1]:8443/h?x=1", "tls_verify": False, "expect": "200"},
        {"id": 10, "url": "dns://127.0.0.1:5300/www.example.com", "rcode": "NXDOMAIN"},
        {"id": 11, "url": "dns://[::1]/x.", "rcode": 3, "interval": None}]}
    yield json.dumps(doc).encode()
    bad = [{"id": -1, "url": "tcp://a:1"}, {"id": 1, "url": "ftp://x/"}, {"id": 1, "url": 5},
           {"id": 1, "url": "tcp://a:1", "interval": 0.5}, {"id": 1, "url": "tcp://a:1", "timeout": 301},
           {"id": 1, "url": "tcp://a:1", "rise": 1.5}, {"id": 1, "url": "tcp://a:1", "fall": 101},
           {"id": 1, "url": "http://a/", "expect": "600"}, {"id": 1, "url": "http://a/", "expect": "300-200"},
           {"id": 1, "url": "http://a/", "body": "b" * 300}, {"id": 1, "url": "http://a/", "host": "a b"},
           {"id": 1, "url": "dns://a/x", "rcode": "WHAT"}, {"id": 1, "url": "dns://a/x", "rcode": 16},
           {"id": 1, "url": "http://a/", "tls_verify": "yes"}, "string", None]
    for b in bad:
        yield json.dumps({"checks": [b]}).encode()
    yield json.dumps([c for c in doc["checks"]]).encode()
    yield (b"tcp://192.0.2.1:443\nhttp://[::1/\n200-399\n599\nNOERROR\n15\n"
           b"http://127.0.0.1:8053\nhttp://[::1]:8053/prefix\nhttp://h:0/\n")
    yield b"dns://127.0.0.1/a..b\nhttps://h:65536/\nhttp://h/a b\nREFUSED\n100-100\n99\n"
    yield b"http://" + b"h" * 300 + b"/\nhttp://h/" + b"p" * 1100 + b"\n"


def store_seeds():
    good = ("s|1|www.gslb.example.com.|failover|30||0|open\n"
            "e|1|1|192.0.2.1|1|0|eu|50.1|8.7|0|auto|0\n"
            "e|2|1|2001:db8::1|1|1|us|40.7|-74|10|auto|0\n"
            "e|3|1|lb.example.net.|1|2||||0|down|0\n"
            "s|2|geo.gslb.example.com.|geo|60|2|0|closed\n"
            "e|4|2|192.0.2.4|1|0|eu|48.8|2.3|-20|auto|0|tcp://192.0.2.4:80|5|2|3|2|1|200-399|OK|h\n"
            "e|5|2|192.0.2.5|2|0|ap|1.3|103.8|99|up|1\n"
            "r|1|2|cidr|192.0.2.0/24\nt|1|4\nr|2|2|country|DE\nt|2|5\nr|3|2|continent|EU\nt|3|4\n")
    yield good.encode()
    for pol in ("weighted", "latency", "all", "roundrobin", "bogus", ""):
        yield good.replace("|failover|", "|%s|" % pol).encode()
    yield (good + "s|3|w.gslb.example.com.|weighted|30|16|1|fallback.example.net.\n"
           "e|6|3|192.0.2.6|0\ne|7|3|192.0.2.7|65535\ne|8|3|192.0.2.8|70000\n").encode()
    bad = ["s|9|not a name|failover", "s|9|x.|failover|-1|0|2|", "s|9|y.|all|30|99|0|maybe",
           "e|9|1|300.1.2.3", "e|9|1|host-without-dot", "e|9|99|192.0.2.9", "e|9|1|192.0.2.9|-5|-1",
           "e|9|1|192.0.2.9|1|0||95.2|200|150|sideways|7", "e|9|1|192.0.2.9|1|0||1.5",
           "e|9|1|192.0.2.9|1|0||||0|auto|0|ftp://x/|0|-1|0|101|5|999-1|b|h h",
           "r|9|1|cidr|10.0.0.0/33", "r|9|1|cidr|not-cidr", "r|9|1|country|XYZ", "r|9|1|planet|earth",
           "t|1|99", "t|99|1", "e|9|1|1.2.3.4.", "s|9|" + "a" * 70 + ".x.|failover"]
    for b in bad:
        yield (good + b + "\n").encode()
    yield b""
    yield "\n".join("e|%d|1|10.0.%d.%d|%d|%d" % (i + 10, i // 256, i % 256, i % 7, i % 3)
                     for i in range(200)).encode() + b"\n" + good.encode()


def write(outdir, name, seeds):
    d = os.path.join(outdir, name)
    os.makedirs(d, exist_ok=True)
    for f in glob.glob(os.path.join(d, "seed-*")):
        os.unlink(f)
    n = 0
    for s in seeds:
        with open(os.path.join(d, "seed-" + hashlib.sha1(s).hexdigest()[:16]), "wb") as f:
            f.write(s)
        n += 1
    print("%d seeds in %s" % (n, d))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")
    write(out, "zone", zone_seeds())
    write(out, "config", config_seeds())
    write(out, "report", report_seeds())
    write(out, "http", http_seeds())
    write(out, "checks", checks_seeds())
    write(out, "store", store_seeds())


if __name__ == "__main__":
    main()
