#!/usr/bin/python3
"""bench/report.py - summary table and ratio lines for bench/run.sh.

  report.py SAT_TSV MEM_TSV

SAT_TSV: one line per (round, server): round, server, answered q/s, lost,
answered, server CPU seconds (utime+stime from /proc/PID/stat), loadgen CPU
seconds, loadgen wall seconds.  MEM_TSV: server, load seconds, VmRSS kB.
Either file may be missing (that part was skipped or failed).
Medians over rounds; ratios are ours (dnsd) over each peer.
"""
import os
import statistics
import sys

QPS_TARGETS = {"gdnsd": 1.2, "knot": 1.4}
PEERS = ("gdnsd", "knot")


def rows(path, width):
    if not os.path.exists(path):
        return []
    out = []
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) == width:
                out.append(parts)
    return out


def saturation(path):
    per = {}
    for r in rows(path, 9):
        _, srv, qps, lost, ans, scpu, lcpu, wall, other = r
        ans = int(ans)
        d = per.setdefault(srv, {"qps": [], "lost": 0, "sus": [], "lus": [],
                                 "busy": [], "lbusy": [], "other": []})
        d["qps"].append(float(qps))
        d["lost"] += int(lost)
        if ans:
            d["sus"].append(float(scpu) * 1e6 / ans)
            d["lus"].append(float(lcpu) * 1e6 / ans)
        d["busy"].append(100 * float(scpu) / float(wall))
        d["lbusy"].append(100 * float(lcpu) / float(wall))
        d["other"].append(float(other))
    if not per:
        return {}
    med = statistics.median
    print("== Summary: saturation (median over %d rounds)"
          % max(len(d["qps"]) for d in per.values()))
    print("  %-6s %10s %8s %9s %9s %8s %8s %7s %s"
          % ("server", "q/s", "lost", "srv us/q", "lg us/q",
             "srv CPU", "lg CPU", "others", "loadgen cheaper"))
    for srv, d in per.items():
        sus = med(d["sus"]) if d["sus"] else float("nan")
        lus = med(d["lus"]) if d["lus"] else float("nan")
        print("  %-6s %10.0f %8d %9.2f %9.2f %7.0f%% %7.0f%% %6.0f%% %s"
              % (srv, med(d["qps"]), d["lost"], sus, lus, med(d["busy"]),
                 med(d["lbusy"]), med(d["other"]),
                 "yes" if lus < sus else "NO"))
    noisy = [s for s, d in per.items() if med(d["other"]) > 10]
    if noisy:
        print("  NOTE: other processes used more than 10%% of a CPU during "
              "the runs of %s; q/s is unreliable there (us/q much less so)"
              % ", ".join(noisy))
    return {s: {"qps": med(d["qps"]), "lost": d["lost"],
                "us": med(d["sus"]) if d["sus"] else None}
            for s, d in per.items()}


def memory(path):
    mem = {}
    r = rows(path, 3)
    if not r:
        return mem
    print("== Summary: memory zone")
    print("  %-6s %10s %10s" % ("server", "load s", "RSS MiB"))
    for srv, load, rss in r:
        mem[srv] = (float(load), int(rss))
        print("  %-6s %10.2f %10.1f" % (srv, float(load), int(rss) / 1024))
    return mem


def verdict(ok):
    return "met" if ok else "MISSED"


def main(argv):
    if len(argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    sat = saturation(argv[1])
    mem = memory(argv[2])
    print("== Ratios (ours / peer, same run)")
    ours = sat.get("dnsd")
    for peer in PEERS:
        if peer not in sat:
            continue
        if ours is None:
            print("ratio qps dnsd/%s: n/a (dnsd not measured)" % peer)
            continue
        r = ours["qps"] / sat[peer]["qps"] if sat[peer]["qps"] else 0
        t = QPS_TARGETS[peer]
        print("ratio qps dnsd/%s: %.2f (target >= %.1f, %s)"
              % (peer, r, t, verdict(r >= t)))
        if ours["us"] and sat[peer]["us"]:
            print("ratio CPU us/query dnsd/%s: %.2f (lower is better)"
                  % (peer, ours["us"] / sat[peer]["us"]))
    if ours is not None:
        print("lost queries dnsd: %d (target 0, %s)"
              % (ours["lost"], verdict(ours["lost"] == 0)))
    if "knot" in mem:
        if "dnsd" in mem:
            r = mem["dnsd"][1] / mem["knot"][1]
            print("ratio RSS dnsd/knot: %.2f (target <= 1.0, %s)"
                  % (r, verdict(r <= 1.0)))
            print("ratio load time dnsd/knot: %.2f"
                  % (mem["dnsd"][0] / mem["knot"][0]
                     if mem["knot"][0] else 0))
        else:
            print("ratio RSS dnsd/knot: n/a (dnsd not measured)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
