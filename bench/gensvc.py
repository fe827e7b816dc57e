#!/usr/bin/python3
"""bench/gensvc.py - the 100k-balanced-names bench (bench_services).

  gensvc.py DB OUTDIR [SERVICES]
  gensvc.py --json FILE [SERVICES]

DB must be a store created by `gslbctl --db DB init` (the schema of
db/schema.sql) and empty; SERVICES (default 100,000) services with 4
endpoints each are inserted into it in one transaction, straight into the
services and endpoints tables:
  b<i>.svc.test.  i % 3 == 0: failover, priorities 0/10/20/30 (1 answer)
                  i % 3 == 1: weighted, weights 1..4 (1 answer)
                  i % 3 == 2: all (4 answers)
  endpoints 10.x.y.z, distinct over the whole store; no checks (healthy).
Into OUTDIR:
  svc.zone       zone svc.test. with the static twin of every service:
                 s<i>.svc.test. with the same A records a query gets (the
                 first endpoint, or all four for the 'all' services)
  q-static.txt   one query per static name, in a random order
  q-svc.txt      one query per service, in the same order (same lengths)
  last           the name of the last service inserted
With --json, the same services are written to FILE as the document
`gslbctl export` would print for that store, compact (one line), in name
order: what `gslbctl import` reads (bench/import.sh).
Deterministic (fixed seed).
"""
import os
import random
import sqlite3
import sys

POLICIES = ("failover", "weighted", "all")


def addr(n):
    return "10.%d.%d.%d" % ((n >> 16) & 255, (n >> 8) & 255, n & 255)


def write_json(path, n):
    """The export document of the store main() fills, compact, written
    one service at a time."""
    ep = ('{"target":"%s","weight":%d,"priority":%d,"region":null,'
          '"lat":null,"lon":null,"bias":0.0,"admin":"auto","drained":false,'
          '"check":null}')
    with open(path, "w") as f:
        f.write('{"version":1,"services":[')
        for k, i in enumerate(sorted(range(n), key=lambda i: "b%d.svc.test." % i)):
            pol = POLICIES[i % 3]
            eps = ",".join(ep % (addr(4 * i + j), j + 1 if pol == "weighted" else 1,
                                 10 * j if pol == "failover" else 0)
                           for j in sorted(range(4), key=lambda j: addr(4 * i + j)))
            f.write('%s{"name":"b%d.svc.test.","policy":"%s","ttl":30,'
                    '"answers":null,"sticky":false,"when_down":"open",'
                    '"endpoints":[%s],"rules":[]}' % ("," if k else "", i, pol, eps))
        f.write("]}\n")
    return 0


def main(argv):
    if len(argv) in (3, 4) and argv[1] == "--json":
        n = int(argv[3]) if len(argv) == 4 else 100000
        if not 1 <= n <= 1000000:
            sys.stderr.write("gensvc.py: SERVICES must be 1..1000000\n")
            return 2
        return write_json(argv[2], n)
    if len(argv) not in (3, 4):
        sys.stderr.write(__doc__)
        return 2
    db, out = argv[1], argv[2]
    n = int(argv[3]) if len(argv) == 4 else 100000
    if not 1 <= n <= 1000000:
        sys.stderr.write("gensvc.py: SERVICES must be 1..1000000\n")
        return 2
    if not os.path.exists(db):
        sys.stderr.write("gensvc.py: %s: no such store (run gslbctl init "
                         "first)\n" % db)
        return 2
    os.makedirs(out, exist_ok=True)
    con = sqlite3.connect(db)
    ver = con.execute("PRAGMA user_version").fetchone()[0]
    # Later schema versions only add tables and columns with defaults.
    if ver < 2:
        sys.stderr.write("gensvc.py: %s: schema version %d, expected 2 or "
                         "later\n" % (db, ver))
        return 1
    if con.execute("SELECT count(*) FROM services").fetchone()[0]:
        sys.stderr.write("gensvc.py: %s: store is not empty\n" % db)
        return 1
    services, endpoints = [], []
    for i in range(n):
        pol = POLICIES[i % 3]
        services.append((i + 1, "b%d.svc.test." % i, pol, 30))
        for k in range(4):
            e = 4 * i + k
            endpoints.append((e + 1, i + 1, addr(e), k + 1 if pol == "weighted" else 1,
                              10 * k if pol == "failover" else 0))
    with con:
        con.executemany("INSERT INTO services (id, name, policy, ttl) "
                        "VALUES (?, ?, ?, ?)", services)
        con.executemany("INSERT INTO endpoints (id, service_id, target, "
                        "weight, priority) VALUES (?, ?, ?, ?, ?)", endpoints)
    con.close()
    with open(os.path.join(out, "svc.zone"), "w") as f:
        f.write("$ORIGIN svc.test.\n$TTL 30\n"
                "@ IN SOA ns1.svc.test. hostmaster.svc.test. 1 3600 600 "
                "1209600 30\n@ IN NS ns1\nns1 IN A 127.0.0.1\n")
        for i in range(n):
            k = 4 if POLICIES[i % 3] == "all" else 1
            for j in range(k):
                f.write("s%d IN A %s\n" % (i, addr(4 * i + j)))
    order = list(range(n))
    random.Random(42).shuffle(order)
    with open(os.path.join(out, "q-static.txt"), "w") as fs, \
            open(os.path.join(out, "q-svc.txt"), "w") as fb:
        for i in order:
            fs.write("s%d.svc.test. A\n" % i)
            fb.write("b%d.svc.test. A\n" % i)
    with open(os.path.join(out, "last"), "w") as f:
        f.write("b%d.svc.test.\n" % (n - 1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
