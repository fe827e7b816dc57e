#!/usr/bin/env bash
# bench/dnssec.sh - what online signing costs: dnsd unsigned, dnsd signed
# (warm signature cache) and Knot DNS with mod-onlinesign, on the same zone
# (bench/genzone.py mix: 10,000 hosts, 100,000 queries), one worker thread
# each, plus random new names (every answer needs fresh signatures) and one
# weighted balanced name. Needs bin/ built, ldnsutils (ldns-keygen) and,
# for the Knot line, knot; for the XDP lines (the static mix through dnsd
# --xdp lo in a network namespace of its own), root, ip netns and ethtool.
# Run: bash bench/dnssec.sh  (about 6 minutes).
#
# The figure that matters on a shared machine is the server's own CPU time
# per answered query (utime + stime from /proc/PID/stat over the run); q/s
# are printed too but depend on what else runs. Each line is the median of
# ROUNDS runs of SECONDS seconds. Every process started is stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
SECONDS_RUN=${SECONDS_RUN:-4}
T=$(mktemp -d /tmp/bench-dnssec.XXXXXX)
PIDS=()
XNS=""		# the XDP part's network namespace, deleted on exit
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	if [ -n "$XNS" ]; then sleep 0.5; ip netns delete "$XNS" 2>/dev/null || true; fi
	rm -rf "$T"
}
trap cleanup EXIT

mkdir -p build/bench
cc -O2 -D_GNU_SOURCE -o build/bench/loadgen bench/loadgen.c
LG=build/bench/loadgen
python3 bench/genzone.py mix "$T/bench.zone" "$T/q.txt" 10000 100000 >/dev/null
for i in $(seq 1 300000); do echo "r$i.bench.test. A"; done > "$T/rnd.txt"
for i in $(seq 1 1000); do echo "wt.bench.test. A"; done > "$T/wt.txt"
mkdir "$T/keys"
(cd "$T/keys" && ldns-keygen -a ECDSAP256SHA256 -k bench.test >/dev/null &&
 ldns-keygen -a ECDSAP256SHA256 bench.test >/dev/null && rm -f ./*.ds)
bin/gslbctl --db "$T/gs.db" init >/dev/null
bin/gslbctl --db "$T/gs.db" service add wt.bench.test. --policy weighted --answers 2 >/dev/null
for i in 1 2 3 4; do bin/gslbctl --db "$T/gs.db" endpoint add wt.bench.test. "198.51.100.$i" >/dev/null; done

port() { python3 -c "import socket;s=socket.socket();s.bind(('127.0.0.1',0));print(s.getsockname()[1])"; }
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ticks=$(getconf CLK_TCK)

# run NAME PID PORT QUERYFILE LOADGEN-FLAGS: median us/query and q/s
run() {
	local name=$1 pid=$2 p=$3 f=$4 flags=$5 out c0 c1 n qps res=()
	for _ in $(seq 1 "$ROUNDS"); do
		c0=$(cpu "$pid")
		out=$($LG -d "$f" -p "$p" -l "$SECONDS_RUN" -w 128 -c 4 -b 64 $flags 2>&1 | grep RESULT)
		c1=$(cpu "$pid")
		n=$(echo "$out" | grep -o 'answered=[0-9]*' | cut -d= -f2)
		qps=$(echo "$out" | grep -o 'qps=[0-9]*' | cut -d= -f2)
		res+=("$(python3 -c "print('%.2f %s' % (($c1 - $c0) * 1e6 / $ticks / max($n, 1), $qps))")")
	done
	printf '%s\n' "${res[@]}" | sort -n | sed -n "$(( (ROUNDS + 1) / 2 ))p" |
		awk -v n="$name" '{printf "%-44s %8s us/query  %8s q/s\n", n, $1, $2}'
}

# wait_up PORT [NAME/TYPE]: until the server answers (host1.bench.test./A).
wait_up() {
	for _ in $(seq 1 100); do
		$LG -P "${2:-host1.bench.test./A}" -p "$1" -t 2000 >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "server on port $1 did not answer" >&2
	return 1
}

P1=$(port)
bin/dnsd --zone "$T/bench.zone" --db "$T/gs.db" --dnssec-keys "$T/keys" --dnssec-cache-mb 64 \
	--dnssec-sign-rate 0 --listen "127.0.0.1:$P1" --threads 1 >"$T/dnsd.log" 2>&1 &
D1=$!; PIDS+=("$D1")
wait_up "$P1"
# warm the signature cache
$LG -d "$T/q.txt" -p "$P1" -n 200000 -l 120 -w 128 -c 4 -b 64 -D >/dev/null 2>&1
$LG -d "$T/wt.txt" -p "$P1" -l 1 -w 128 -c 4 -b 64 -D >/dev/null 2>&1
echo "== DNSSEC cost (ECDSA P-256, one worker thread, median of $ROUNDS x ${SECONDS_RUN}s)"
run "dnsd static mix, unsigned (EDNS, no DO)" "$D1" "$P1" "$T/q.txt" -e
run "dnsd static mix, signed (DO, warm cache)" "$D1" "$P1" "$T/q.txt" -D
run "dnsd weighted name, unsigned" "$D1" "$P1" "$T/wt.txt" -e
run "dnsd weighted name, signed (warm cache)" "$D1" "$P1" "$T/wt.txt" -D
run "dnsd random new names, signed (1 new sig each)" "$D1" "$P1" "$T/rnd.txt" -D

# 100,000 balanced names x 4 endpoints (bench/gensvc.py) and a geo service
# asked with random ECS subnets (bench/gengeo.py, 100,000 queries), signed
# by a second dnsd: CPU per answer with a cold cache (every service's answer
# RRset signed for the first time) and warm, the signature cache's memory
# (RSS growth over the cold pass, per service), and the geo service with
# ECS signed vs unsigned.
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
mkdir -p "$T/svc" "$T/keys2" "$T/geo"
(cd "$T/keys2" && ldns-keygen -a ECDSAP256SHA256 -k svc.test >/dev/null &&
 ldns-keygen -a ECDSAP256SHA256 svc.test >/dev/null &&
 ldns-keygen -a ECDSAP256SHA256 -k geo.test >/dev/null &&
 ldns-keygen -a ECDSAP256SHA256 geo.test >/dev/null && rm -f ./*.ds)
bin/gslbctl --db "$T/svc/s.db" init >/dev/null
/usr/bin/python3 bench/gensvc.py "$T/svc/s.db" "$T/svc" 100000 >/dev/null
/usr/bin/python3 bench/gengeo.py "$T/geo" 30000 100000 >/dev/null
perl tests/tools/mkmmdb.pl "$T/geo/geo.tsv" "$T/geo/geo.mmdb"
bin/gslbctl --db "$T/svc/s.db" service add geo.geo.test --policy geo --ttl 30 >/dev/null
while IFS=$'\t' read -r dc addr lat lon; do
	bin/gslbctl --db "$T/svc/s.db" endpoint add geo.geo.test "$addr" --region "$dc" \
		--lat "$lat" --lon "$lon" >/dev/null
done < "$T/geo/dcs.tsv"
P3=$(port)
bin/dnsd --zone "$T/svc/svc.zone" --zone "$T/geo/dnsd.zone" --db "$T/svc/s.db" \
	--geoip "$T/geo/geo.mmdb" --dnssec-keys "$T/keys2" --dnssec-cache-mb 256 \
	--dnssec-sign-rate 0 --listen "127.0.0.1:$P3" --threads 1 >"$T/dnsd3.log" 2>&1 &
D3=$!; PIDS+=("$D3")
wait_up "$P3" "s1.svc.test./A"
# one pass each: cold (all 100,000 answers signed now), then warm
once() { # label file flags: CPU us per answer over exactly one pass
	local c0 c1 out n
	c0=$(cpu "$D3")
	out=$($LG -d "$2" -p "$P3" -n 100000 -l 120 -w 128 -c 4 -b 64 $3 2>&1 | grep RESULT)
	c1=$(cpu "$D3")
	n=$(echo "$out" | grep -o 'answered=[0-9]*' | cut -d= -f2)
	python3 -c "print('%-44s %8.2f us/query  %8s' % ('$1', ($c1 - $c0) * 1e6 / $ticks / max($n, 1), '$(echo "$out" | grep -o 'qps=[0-9]*')'))"
}
r0=$(rss "$D3")
once "100k names x 4, unsigned (first pass)" "$T/svc/q-svc.txt" -e
r1=$(rss "$D3")
once "100k names x 4, signed, cold cache" "$T/svc/q-svc.txt" -D
r2=$(rss "$D3")
once "100k names x 4, signed, warm cache" "$T/svc/q-svc.txt" -D
# The cache is allocated and touched when the worker starts (--dnssec-cache-mb
# 256), so RSS hardly grows while it fills: what 100k names x 4 need is the
# entries their answers fill, 96 octets per distinct answer RRset.
python3 -c "print('signature cache for 100k names x 4 (answered once each): 256 MiB per worker, allocated at start; RSS growth over the signing pass %.1f MiB; one pass fills one entry per name: 100,000 x 96 octets = 9.2 MiB' % (($r2 - $r1) / 1024))"
run "geo + random ECS subnets, unsigned" "$D3" "$P3" "$T/geo/q-geo.txt" -e
run "geo + random ECS subnets, signed" "$D3" "$P3" "$T/geo/q-geo.txt" -D
kill "$D3"

if command -v knotd >/dev/null; then
	P2=$(port)
	mkdir -p "$T/knot/db"
	cat > "$T/knot/knot.conf" <<EOF
server:
    rundir: "$T/knot"
    pidfile: "$T/knot/knot.pid"
    listen: 127.0.0.1@$P2
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "$T/knot/db"
log:
  - target: stderr
    any: warning
policy:
  - id: p256
    algorithm: ecdsap256sha256
mod-onlinesign:
  - id: os
    policy: p256
template:
  - id: default
    storage: "$T/knot"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: off
zone:
  - domain: bench.test.
    file: "$T/bench.zone"
    module: mod-onlinesign/os
EOF
	knotd -c "$T/knot/knot.conf" >"$T/knot/log" 2>&1 &
	K=$!; PIDS+=("$K")
	wait_up "$P2"
	$LG -d "$T/q.txt" -p "$P2" -n 20000 -l 60 -w 128 -c 4 -b 64 -D >/dev/null 2>&1
	run "knot mod-onlinesign static mix, unsigned" "$K" "$P2" "$T/q.txt" -e
	run "knot mod-onlinesign static mix, signed" "$K" "$P2" "$T/q.txt" -D
	run "knot mod-onlinesign random new names" "$K" "$P2" "$T/rnd.txt" -D
else
	echo "knot: not installed, its lines are left out"
fi

# The static mix through AF_XDP: dnsd --xdp lo, alone in a network namespace
# of this run's own (gslb-dnssec-PID-xdp), lo set up as make bench's XDP part
# does (accept_local and route_localnet, so the answers an XDP program sends
# back are not dropped as martians; UDP segmentation off, so each query
# reaches XDP as a frame of its own). The loadgen runs in the namespace too.
# On lo the XDP program runs in the sender's context, so dnsd's CPU time
# here is its own share of the work (parse, answer, sign, rings); the
# signed/unsigned ratio is what compares with the socket lines.
xdp_part() {
	local ns=gslb-dnssec-$$-xdp P4 D4 err
	if [ "$(id -u)" != 0 ] || ! command -v ethtool >/dev/null; then
		echo "xdp: needs root, ip netns and ethtool; its lines are left out"
		return 0
	fi
	if ! err=$(ip netns add "$ns" 2>&1); then
		echo "xdp: cannot create network namespace $ns: $err; left out"
		return 0
	fi
	XNS=$ns
	if ! err=$( { ip netns exec "$ns" ip link set dev lo up &&
		ip netns exec "$ns" sysctl -qw net.ipv4.conf.lo.accept_local=1 \
			net.ipv4.conf.lo.route_localnet=1 &&
		ip netns exec "$ns" ethtool -K lo tx-udp-segmentation off; } 2>&1); then
		echo "xdp: namespace $ns: lo settings failed: $err; left out"
		return 0
	fi
	P4=$(port)
	ip netns exec "$ns" bin/dnsd --zone "$T/bench.zone" --dnssec-keys "$T/keys" \
		--dnssec-cache-mb 64 --dnssec-sign-rate 0 --listen "127.0.0.1:$P4" \
		--threads 1 --xdp lo >"$T/dnsd4.log" 2>&1 &
	D4=$!; PIDS+=("$D4")
	LG="ip netns exec $ns build/bench/loadgen"
	if ! wait_up "$P4" || ! grep -q '^dnsd: xdp lo: .* mode' "$T/dnsd4.log"; then
		echo "xdp: dnsd did not answer with XDP attached: $(grep -i -m2 xdp "$T/dnsd4.log" | tr '\n' ' ')"
		LG=build/bench/loadgen
		return 0
	fi
	echo "== the static mix through AF_XDP ($(grep -m1 -o 'xdp lo: .*' "$T/dnsd4.log"))"
	$LG -d "$T/q.txt" -p "$P4" -n 200000 -l 120 -w 128 -c 4 -b 64 -D >/dev/null 2>&1
	run "dnsd --xdp static mix, unsigned" "$D4" "$P4" "$T/q.txt" -e
	run "dnsd --xdp static mix, signed (warm cache)" "$D4" "$P4" "$T/q.txt" -D
	LG=build/bench/loadgen
	kill "$D4"
}
xdp_part
