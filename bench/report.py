#!/usr/bin/python3
"""bench/report.py - summary table and ratio lines for bench/run.sh.

  report.py SAT_TSV MEM_TSV [GEO_TSV COMPARE SVC_TSV SVCMEM FAILOVER_TSV
            [XDP_TSV XDPGEO_TSV XDPCOMPARE]]

SAT_TSV: one line per (round, server): round, server, answered q/s, lost,
answered, server CPU seconds (utime+stime from /proc/PID/stat), loadgen CPU
seconds, loadgen wall seconds, other processes' CPU %.  MEM_TSV: server,
load seconds, VmRSS kB.  GEO_TSV and SVC_TSV: lines like SAT_TSV whose
server column is a run label (dnsd-static, dnsd-geo, gdnsd-geo, ...;
dnsd-static, dnsd-services).  COMPARE: "key<TAB>value" lines (total, same,
differ, failed) from geocompare.py.  SVCMEM: "key<TAB>value" lines
(services, endpoints, load_s, rss_kb, zone_rss_kb).  FAILOVER_TSV: run, seconds until
the first answer without the killed endpoint, seconds until it was back.
XDP_TSV and XDPGEO_TSV: lines like SAT_TSV from the XDP part (servers
dnsd-xdp, knot-xdp, dnsd-sock, knot-sock, gdnsd-sock; dnsd-xdp-static,
dnsd-xdp-geo, gdnsd-geo, gdnsd-static), XDPCOMPARE like COMPARE.
Any file may be missing (that part was skipped or failed).
Medians over rounds; ratios are ours (dnsd) over each peer.
"""
import os
import statistics
import sys

QPS_TARGETS = {"gdnsd": 1.2, "knot": 1.4}
PEERS = ("gdnsd", "knot")
# A server using less CPU than this (median, % of one CPU) was not
# saturated: its q/s is a lower bound of what it can do.
SATURATED = 95.0


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


def saturation(path, title="saturation"):
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
    print("== Summary: %s (median over %d rounds)"
          % (title, max(len(d["qps"]) for d in per.values())))
    print("  %-13s %10s %8s %9s %9s %8s %8s %7s %s"
          % ("server", "q/s", "lost", "srv us/q", "lg us/q",
             "srv CPU", "lg CPU", "others", "loadgen cheaper"))
    for srv, d in per.items():
        sus = med(d["sus"]) if d["sus"] else float("nan")
        lus = med(d["lus"]) if d["lus"] else float("nan")
        print("  %-13s %10.0f %8d %9.2f %9.2f %7.0f%% %7.0f%% %6.0f%% %s"
              % (srv, med(d["qps"]), d["lost"], sus, lus, med(d["busy"]),
                 med(d["lbusy"]), med(d["other"]),
                 "yes" if lus < sus else "NO"))
    noisy = [s for s, d in per.items() if med(d["other"]) > 10]
    if noisy:
        print("  NOTE: other processes used more than 10%% of a CPU during "
              "the runs of %s; q/s is unreliable there (us/q much less so)"
              % ", ".join(noisy))
    return {s: {"qps": med(d["qps"]), "lost": d["lost"],
                "us": med(d["sus"]) if d["sus"] else None,
                "lus": med(d["lus"]) if d["lus"] else None,
                "busy": med(d["busy"]), "lbusy": med(d["lbusy"]),
                "other": med(d["other"])}
            for s, d in per.items()}


def limits(res):
    """Says plainly, per server, whether the generator was cheaper and
    whether the server was the limit; returns the servers whose q/s is only
    a lower bound (not saturated)."""
    bound = set()
    for srv, d in res.items():
        if d["us"] is None or d["lus"] is None:
            continue
        if d["busy"] < SATURATED:
            bound.add(srv)
        if d["lus"] < d["us"] and d["busy"] >= SATURATED:
            continue
        if d["lus"] >= d["us"]:
            what = ("the loadgen is NOT cheaper than %s: %.2f us per answer "
                    "against the server's %.2f" % (srv, d["lus"], d["us"]))
        else:
            what = ("the loadgen is cheaper than %s (%.2f vs %.2f us/q)"
                    % (srv, d["lus"], d["us"]))
        if d["busy"] >= SATURATED:
            what += ("; the server still used %.0f%% of its CPU, so it was "
                     "the limit and its q/s stands" % d["busy"])
        elif d["lbusy"] >= 90:
            what += ("; the server used only %.0f%% of its CPU and the "
                     "loadgen %.0f%%: the loadgen was the bottleneck, %s's "
                     "q/s is a lower bound" % (d["busy"], d["lbusy"], srv))
        else:
            what += ("; neither was saturated (server %.0f%%, loadgen "
                     "%.0f%%, others %.0f%%): %s's q/s is a lower bound"
                     % (d["busy"], d["lbusy"], d["other"], srv))
        print("  NOTE: " + what)
    return bound


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


def keyvals(path):
    out = {}
    for k, v in rows(path, 2):
        out[k] = v
    return out


def ratio_line(name, num, den, target, op):
    """'ratio NAME: R (target OP T, met|MISSED)' on q/s medians."""
    if num is None or den is None or not den["qps"]:
        print("ratio %s: n/a (not measured)" % name)
        return
    r = num["qps"] / den["qps"]
    ok = r >= target if op == ">=" else r <= target
    extra = ""
    if num["us"] and den["us"]:
        extra = "; CPU us/query %.2f vs %.2f" % (num["us"], den["us"])
    print("ratio %s: %.2f (target %s %g, %s%s)"
          % (name, r, op, target, verdict(ok), extra))


def qps_line(name, res, ours, peer, target, bound):
    """'ratio qps NAME: R (target >= T, met|MISSED)' for res[ours] over
    res[peer], plus the CPU line; target None: for information.  bound:
    servers whose q/s is a lower bound (not saturated), said on the line."""
    num, den = res.get(ours), res.get(peer)
    if num is None or den is None or not den["qps"]:
        print("ratio qps %s: n/a (not measured)" % name)
        return
    r = num["qps"] / den["qps"]
    notes = []
    if target is None:
        notes.append("for information")
    else:
        notes.append("target >= %g, %s" % (target, verdict(r >= target)))
    for who, d in ((ours, num), (peer, den)):
        if who in bound:
            notes.append("%s not saturated (%.0f%% CPU): its q/s is a lower "
                         "bound" % (who, d["busy"]))
    print("ratio qps %s: %.2f (%s)" % (name, r, "; ".join(notes)))
    if num["us"] and den["us"]:
        print("ratio CPU us/query %s: %.2f (lower is better; %.2f vs %.2f)"
              % (name, num["us"] / den["us"], num["us"], den["us"]))


def xdp_ratios(xdp, xgeo, xcmp, bound):
    print("== Ratios, XDP part (each server in its own network namespace)")
    if not xdp:
        print("ratio qps dnsd-xdp: n/a (XDP part skipped or failed)")
        return
    ours = xdp.get("dnsd-xdp")
    if ours is None:
        print("ratio qps dnsd-xdp: n/a (dnsd-xdp not measured)")
        return
    qps_line("dnsd-xdp/gdnsd", xdp, "dnsd-xdp", "gdnsd-sock", 1.2, bound)
    qps_line("dnsd-xdp/knot-xdp", xdp, "dnsd-xdp", "knot-xdp", 1.4, bound)
    qps_line("dnsd-xdp/knot (sockets)", xdp, "dnsd-xdp", "knot-sock", None,
             bound)
    qps_line("dnsd-xdp/dnsd (sockets)", xdp, "dnsd-xdp", "dnsd-sock", None,
             bound)
    print("lost queries dnsd-xdp: %d (target 0, %s)"
          % (ours["lost"], verdict(ours["lost"] == 0)))
    print("lost queries, XDP part: %s" % ", ".join(
        "%s %d" % (s, d["lost"]) for s, d in xdp.items()))
    if ours["lus"] is not None and ours["us"]:
        cheaper = ours["lus"] < ours["us"]
        print("loadgen cheaper than dnsd-xdp: %s (%.2f vs %.2f us/q; "
              "server CPU %.0f%%, loadgen CPU %.0f%%)%s"
              % ("yes" if cheaper else "NO", ours["lus"], ours["us"],
                 ours["busy"], ours["lbusy"],
                 "" if cheaper else
                 (": the server was still saturated, its q/s stands"
                  if "dnsd-xdp" not in bound else
                  ": dnsd-xdp's q/s and its ratios are lower bounds")))
    if xgeo:
        ratio_line("geo dnsd-xdp/gdnsd", xgeo.get("dnsd-xdp-geo"),
                   xgeo.get("gdnsd-geo"), 1.2, ">=")
        ratio_line("geo/static dnsd-xdp", xgeo.get("dnsd-xdp-geo"),
                   xgeo.get("dnsd-xdp-static"), 0.9, ">=")
        if "dnsd-xdp-geo" in xgeo:
            print("lost queries dnsd-xdp geo: %d (target 0, %s)"
                  % (xgeo["dnsd-xdp-geo"]["lost"],
                     verdict(xgeo["dnsd-xdp-geo"]["lost"] == 0)))
        gb = sorted(s for s in bound if s in xgeo)
        if gb:
            print("  (not saturated, q/s a lower bound: %s)" % ", ".join(gb))
    if xcmp:
        print("same geo answers dnsd-xdp/gdnsd: %s of %s (%s differ, %s "
              "unanswered)" % (xcmp.get("same"), xcmp.get("total"),
                               xcmp.get("differ"), xcmp.get("failed")))


def geo_summary(path, cmp_path):
    geo = saturation(path, "geo + ECS") if path else {}
    cmp = keyvals(cmp_path) if cmp_path else {}
    return geo, cmp


def failover_summary(path):
    r = rows(path, 3) if path else []
    if not r:
        return None
    fo = [float(x[1]) for x in r if x[1] != "timeout"]
    fb = [float(x[2]) for x in r if x[2] != "timeout"]
    timeouts = sum(1 for x in r if x[1] == "timeout")
    print("== Summary: failover (%d runs)" % len(r))
    print("  failover s: %s" % " ".join(x[1] for x in r))
    print("  failback s: %s" % " ".join(x[2] for x in r))
    return (statistics.median(fo) if fo and not timeouts else None,
            statistics.median(fb) if fb else None, timeouts)


def main(argv):
    if len(argv) not in (3, 8, 11):
        sys.stderr.write(__doc__)
        return 2
    sat = saturation(argv[1])
    mem = memory(argv[2])
    more = argv[3:8] if len(argv) >= 8 else [None] * 5
    geo, cmp = geo_summary(more[0], more[1])
    svc = saturation(more[2], "100k balanced names") if more[2] else {}
    svcmem = keyvals(more[3]) if more[3] else {}
    if svcmem:
        print("  store: %s services, %s endpoints; dnsd load %.2f s "
              "(start to the last service answering), RSS %.1f MiB "
              "(static zone alone %.1f MiB)"
              % (svcmem.get("services", "?"), svcmem.get("endpoints", "?"),
                 float(svcmem.get("load_s", 0)),
                 int(svcmem.get("rss_kb", 0)) / 1024,
                 int(svcmem.get("zone_rss_kb", 0)) / 1024))
    fo = failover_summary(more[4]) if more[4] else None
    xmore = argv[8:] if len(argv) == 11 else [None] * 3
    xdp = saturation(xmore[0], "XDP part, own network namespaces") \
        if xmore[0] else {}
    bound = limits(xdp)
    xgeo = saturation(xmore[1], "XDP part, geo + ECS") if xmore[1] else {}
    bound |= limits(xgeo)
    xcmp = keyvals(xmore[2]) if xmore[2] else {}
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
    if geo:
        ratio_line("geo/static dnsd", geo.get("dnsd-geo"),
                   geo.get("dnsd-static"), 0.9, ">=")
        ratio_line("geo dnsd/gdnsd", geo.get("dnsd-geo"),
                   geo.get("gdnsd-geo"), 1.2, ">=")
        if "dnsd-geo" in geo:
            print("lost queries dnsd geo: %d (target 0, %s)"
                  % (geo["dnsd-geo"]["lost"],
                     verdict(geo["dnsd-geo"]["lost"] == 0)))
    if cmp:
        print("same geo answers dnsd/gdnsd: %s of %s (%s differ, %s "
              "unanswered)" % (cmp.get("same"), cmp.get("total"),
                               cmp.get("differ"), cmp.get("failed")))
    if svc:
        ratio_line("100k names/static dnsd", svc.get("dnsd-services"),
                   svc.get("dnsd-static"), 0.95, ">=")
    if fo is not None:
        med, back, timeouts = fo
        if med is None:
            print("failover median: n/a (%d runs timed out) (target <= 3.0 "
                  "s, MISSED)" % timeouts)
        else:
            print("failover median: %.2f s (target <= 3.0 s, %s)"
                  % (med, verdict(med <= 3.0)))
        if back is not None:
            print("failback median: %.2f s (check_rise 2)" % back)
    if len(argv) == 11:
        xdp_ratios(xdp, xgeo, xcmp, bound)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
