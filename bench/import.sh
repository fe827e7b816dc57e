#!/bin/bash
# bench/import.sh [SERVICES] [CHANGED_EVERY] - the cost of a configuration
# import on a large store while dnsd answers: a store of SERVICES services
# x 4 endpoints (bench/gensvc.py), its export with the first endpoint's
# weight changed in every CHANGED_EVERY-th service (default 100: 1%), then
# `gslbctl import` of it while bench/loadgen sends 2000 queries/s for the
# services to dnsd on that store. Prints the import's wall time, CPU and
# memory, the rows it wrote (audit rows of the new version), and
# loadgen's RESULT line (lost, SERVFAIL, NXDOMAIN). Loopback only; every
# process it starts is stopped by PID.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${1:-100000}
EVERY=${2:-100}
D=$(mktemp -d /tmp/gslb-import-bench.XXXXXX)
trap 'kill $DPID $LPID 2>/dev/null || true; rm -rf "$D"' EXIT
DPID= LPID=
cc -O2 -std=c11 -D_GNU_SOURCE -Wall -Wextra -o "$D/loadgen" "$ROOT/bench/loadgen.c"
"$ROOT/bin/gslbctl" --db "$D/g.db" init >/dev/null
/usr/bin/python3 "$ROOT/bench/gensvc.py" "$D/g.db" "$D/out" "$N"
"$ROOT/bin/gslbctl" --db "$D/g.db" export > "$D/e.json"
/usr/bin/python3 - "$D/e.json" "$D/f.json" "$EVERY" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for i, s in enumerate(d["services"]):
    if i % int(sys.argv[3]) == 0:
        s["endpoints"][0]["weight"] += 1
json.dump(d, open(sys.argv[2], "w"))
PY
PORT=$(/usr/bin/python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$ROOT/bin/dnsd" --listen 127.0.0.1:$PORT --zone "$D/out/svc.zone" --db "$D/g.db" \
	--threads 1 > "$D/dnsd.log" 2>&1 &
DPID=$!
for _ in $(seq 1 120); do
	"$D/loadgen" -P b1.svc.test/A -p $PORT -t 1000 >/dev/null 2>&1 && break
	sleep 1
done
# loadgen in 10 s rounds until the import is over (and one round after).
(while [ ! -e "$D/done" ]; do
	"$D/loadgen" -d "$D/out/q-svc.txt" -p $PORT -Q 2000 -l 10 -t 1000 2>&1 |
		grep RESULT >> "$D/loadgen.out"
done) &
LPID=$!
sleep 5
/usr/bin/time -f "import: wall %e s, cpu %U+%S s, max rss %M kB" \
	"$ROOT/bin/gslbctl" --db "$D/g.db" --quiet import "$D/f.json"
echo "rows written: $(sqlite3 "$D/g.db" "SELECT count(*) FROM audit WHERE version = (SELECT version FROM store_version)") changes (one row each, plus as many audit rows and the version)"
sleep 10
touch "$D/done"
wait $LPID || true
awk '{ for (i = 2; i <= NF; i++) { split($i, kv, "="); sum[kv[1]] += kv[2] } }
     END { printf "answers during the import: sent %d answered %d lost %d late %d " \
           "noerror %d servfail %d nxdomain %d\n", sum["sent"], sum["answered"],
           sum["lost"], sum["late"], sum["noerror"], sum["servfail"], sum["nxdomain"] }' \
	"$D/loadgen.out"
