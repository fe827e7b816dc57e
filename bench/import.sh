#!/bin/bash
# bench/import.sh [SERVICES] [CHANGED_EVERY] - the cost of gslbctl import
# and export on a large store. SERVICES (default 100000) services x 4
# endpoints (bench/gensvc.py):
#  1. import of the whole document into an empty store (every row new);
#  2. export of that store;
#  3. the export with the first endpoint's weight changed in every
#     CHANGED_EVERY-th service (default 100: 1%), imported while
#     bench/loadgen sends 2000 queries/s for the services to dnsd on that
#     store, with loadgen's RESULT (lost, SERVFAIL, NXDOMAIN).
# Each gslbctl run prints its wall time, CPU time, peak RSS (/usr/bin/time)
# and rows written per second of wall time (configuration rows, audit rows
# and changes rows of the new version). Loopback only; every process it
# starts is stopped by PID. A million services need ~3 GB of disk in
# TMPDIR (default /tmp) and several minutes.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${1:-100000}
EVERY=${2:-100}
CTL="$ROOT/bin/gslbctl"
D=$(mktemp -d "${TMPDIR:-/tmp}/gslb-import-bench.XXXXXX")
trap 'kill $DPID $LPID 2>/dev/null || true; rm -rf "$D"' EXIT
DPID= LPID=

# measure LABEL DB CMD...: runs CMD under /usr/bin/time and prints its
# figures (no newline); sets wall and rows (audit and changes rows of DB's
# newest version).
measure() {
	local label=$1 db=$2
	shift 2
	/usr/bin/time -o "$D/time" -f "%e %U %S %M" "$@"
	read -r wall user sys rss < "$D/time"
	rows=$(sqlite3 "$db" "SELECT (SELECT count(*) FROM audit WHERE version = v) +
		(SELECT count(*) FROM changes WHERE version = v) FROM
		(SELECT version AS v FROM store_version)")
	awk -v l="$label" -v w="$wall" -v u="$user" -v s="$sys" -v r="$rss" 'BEGIN {
		printf "%s: wall %.1f s, cpu %.1f s (user %.1f + sys %.1f), peak RSS %.0f MB",
		       l, w, u + s, u, s, r / 1024 }'
}

cc -O2 -std=c11 -D_GNU_SOURCE -Wall -Wextra -o "$D/loadgen" "$ROOT/bench/loadgen.c"
echo "services: $N x 4 endpoints"

# 1. Every row new: the generated document into an empty store.
/usr/bin/python3 "$ROOT/bench/gensvc.py" --json "$D/doc.json" "$N"
echo "document: $(stat -c %s "$D/doc.json") bytes"
"$CTL" --db "$D/full.db" init >/dev/null
measure "import, empty store" "$D/full.db" "$CTL" --db "$D/full.db" --quiet import "$D/doc.json"
cfg=$(sqlite3 "$D/full.db" "SELECT (SELECT count(*) FROM services) + (SELECT count(*) FROM endpoints)")
awk -v c="$cfg" -v r="$rows" -v w="$wall" 'BEGIN {
	printf ", %d configuration rows + %d audit/changes rows = %.0f rows/s\n", c, r, (c + r) / w }'
rm -f "$D/doc.json"

# 2. Export.
/usr/bin/time -o "$D/time" -f "%e %U %S %M" "$CTL" --db "$D/full.db" export > "$D/e.json"
read -r wall user sys rss < "$D/time"
awk -v w="$wall" -v u="$user" -v s="$sys" -v r="$rss" -v b="$(stat -c %s "$D/e.json")" 'BEGIN {
	printf "export: wall %.1f s, cpu %.1f s, peak RSS %.0f MB, %d bytes\n", w, u + s, r / 1024, b }'
rm -f "$D/full.db" "$D/full.db-wal" "$D/full.db-shm"

# 3. 1% changed while dnsd answers from the store (gensvc's, with its zone
# and queries; its export is the same document).
"$CTL" --db "$D/g.db" init >/dev/null
/usr/bin/python3 "$ROOT/bench/gensvc.py" "$D/g.db" "$D/out" "$N"
# The first weight of every EVERY-th service plus one, streamed (the
# export has one key per line).
awk -v every="$EVERY" '
	/^      "name": / { n++; bump = ((n - 1) % every == 0) }
	bump && /^          "weight": / {
		match($0, /[0-9]+/)
		$0 = substr($0, 1, RSTART - 1) (substr($0, RSTART, RLENGTH) + 1) substr($0, RSTART + RLENGTH)
		bump = 0
	}
	{ print }' "$D/e.json" > "$D/f.json"
rm -f "$D/e.json"
PORT=$(/usr/bin/python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$ROOT/bin/dnsd" --listen 127.0.0.1:$PORT --zone "$D/out/svc.zone" --db "$D/g.db" \
	--threads 1 > "$D/dnsd.log" 2>&1 &
DPID=$!
for _ in $(seq 1 300); do
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
measure "import, $((100 / EVERY))% changed, dnsd serving" "$D/g.db" \
	"$CTL" --db "$D/g.db" --quiet import "$D/f.json"
echo ", $rows audit/changes rows"
sleep 10
touch "$D/done"
wait $LPID || true
awk '{ for (i = 2; i <= NF; i++) { split($i, kv, "="); sum[kv[1]] += kv[2] } }
     END { printf "answers during the import: sent %d answered %d lost %d late %d " \
           "noerror %d servfail %d nxdomain %d\n", sum["sent"], sum["answered"],
           sum["lost"], sum["late"], sum["noerror"], sum["servfail"], sum["nxdomain"] }' \
	"$D/loadgen.out"
