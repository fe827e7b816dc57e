#!/bin/bash
# bench/run.sh - `make bench`: bin/dnsd against Knot DNS and gdnsd, measured
# in the same run on this machine.  See bench/README.md for the method.
#
# Environment:
#   BENCH_SECONDS   seconds per saturation round per server (default 10)
#   BENCH_ROUNDS    saturation rounds; servers take turns (default 3)
#   BENCH_QUICK=1   a 1-2 minute run: 1 round of 4 s, short latency runs,
#                   a 200k-record memory zone
#   BENCH_WINDOW    loadgen queries in flight at saturation (default 128;
#                   much more overflows the servers' default 208 KiB socket
#                   receive buffers and shows up as lost queries)
#   BENCH_SOCKETS   loadgen UDP sockets / source ports (default 4)
#   BENCH_BATCH     loadgen sendmmsg/recvmmsg batch (default 64)
#   BENCH_RATE      fixed rate for the latency runs (default 50000)
#   BENCH_LAT_SECONDS  length of each latency run (default 10)
#   BENCH_MEM_RECORDS  records in the memory zone (default 1000000)
#   BENCH_SERVERS   servers to measure (default "dnsd knot gdnsd")
#   BENCH_SKIP      parts to skip, any of "sat lat mem geo svc failover xdp"
#   BENCH_XDP=0     skip the XDP part (it needs root, ip netns and ethtool;
#                   it is skipped with a reason when XDP cannot attach)
#   BENCH_GEO_NETWORKS  networks in the generated MMDB (default 30000;
#                   quick 20000)
#   BENCH_SERVICES  balanced names in the store (default 100000)
#   BENCH_FAILOVER_RUNS  failover runs (default 7; quick 3)
#
# Every server runs pinned to CPU 0 with one query thread; the load generator
# and dnsperf run pinned to CPU 1.  Traffic goes to 127.0.0.1 only.  Every
# process started here is stopped by its PID on exit.  The XDP part runs
# each server in a network namespace of its own (gslb-bench-PID-NAME), so
# the host's lo is never touched; every namespace is deleted on exit.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/bench/out
RESULTS=$OUT/results.txt
LOADGEN=$ROOT/build/bench/loadgen

QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then
	DEF_SECONDS=4 DEF_ROUNDS=1 DEF_LAT=3 DEF_MEM=200000 DEF_GEO=20000
	DEF_FO=3
else
	DEF_SECONDS=10 DEF_ROUNDS=3 DEF_LAT=10 DEF_MEM=1000000 DEF_GEO=30000
	DEF_FO=7
fi
GEO_NETWORKS=${BENCH_GEO_NETWORKS:-$DEF_GEO}
SVC_COUNT=${BENCH_SERVICES:-100000}
FO_RUNS=${BENCH_FAILOVER_RUNS:-$DEF_FO}
SAT_SECONDS=${BENCH_SECONDS:-$DEF_SECONDS}
ROUNDS=${BENCH_ROUNDS:-$DEF_ROUNDS}
LAT_SECONDS=${BENCH_LAT_SECONDS:-$DEF_LAT}
MEM_RECORDS=${BENCH_MEM_RECORDS:-$DEF_MEM}
WINDOW=${BENCH_WINDOW:-128}
SOCKETS=${BENCH_SOCKETS:-4}
BATCH=${BENCH_BATCH:-64}
RATE=${BENCH_RATE:-50000}
SERVERS=${BENCH_SERVERS:-dnsd knot gdnsd}
SKIP=${BENCH_SKIP:-}
XDP_ON=${BENCH_XDP:-1}
SERVER_CPU=0
CLIENT_CPU=1
CLK_TCK=$(getconf CLK_TCK)

mkdir -p "$OUT"
: > "$RESULTS"
T=$(mktemp -d /tmp/gslb-bench.XXXXXX)
declare -A PID PORT NS
STARTED=()	# every PID we started, in order
NETNS=()	# every network namespace we created (XDP part)
NSX=()		# command prefix of the next start_*: ip netns exec NS
PROBE=""	# PID of launch's probe while it runs
FAILED=0

say() { printf '%s\n' "$*" | tee -a "$RESULTS"; }
die() { say "bench: $*"; exit 1; }

# Stop one process we started: SIGTERM, up to 10 s, then SIGKILL.
# Prints nothing; returns the exit status of the process (or 255 if killed).
stop_pid() {
	local pid=$1 i
	kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return $?; }
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		return 255
	fi
	wait "$pid" 2>/dev/null
}

# Delete one namespace we created (after its processes are stopped): an XDP
# program left on its lo (Knot's stays after knotd exits) is removed first;
# the namespace's lo, and with it anything still attached, goes with it.
netns_delete() {
	local ns=$1 n kept=()
	ip netns exec "$ns" ip link set dev lo xdpgeneric off 2>/dev/null
	ip netns delete "$ns" 2>/dev/null
	for n in "${NETNS[@]}"; do [ "$n" = "$ns" ] || kept+=("$n"); done
	NETNS=("${kept[@]}")
}

cleanup() {
	local pid ns
	[ -n "$PROBE" ] && kill "$PROBE" 2>/dev/null
	for pid in "${STARTED[@]}"; do
		stop_pid "$pid"
	done
	for ns in "${NETNS[@]}"; do
		netns_delete "$ns"
	done
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- setup -------------------------------------------------------------------

install_deps() {
	local missing=() cmd pkg
	local pairs="dnsperf:dnsperf knotd:knot gdnsd:gdnsd taskset:util-linux python3:python3 cc:gcc"
	# The XDP part's namespaces and lo settings; it runs only as root, so
	# without root these are not needed (the part says it is skipped).
	[ "$(id -u)" = 0 ] && pairs+=" ethtool:ethtool ip:iproute2"
	for pair in $pairs; do
		cmd=${pair%%:*} pkg=${pair#*:}
		command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	[ "$(id -u)" = 0 ] || die "missing ${missing[*]}; run as root or apt-get install them"
	say "bench: installing ${missing[*]} from Debian"
	# Keep the packages' own services from starting on port 53 while we
	# install (only when no policy is in place already; removed after).
	local policy=/usr/sbin/policy-rc.d ours=0
	if [ ! -e $policy ]; then
		printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy && ours=1
	fi
	apt-get update -q >/dev/null &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
		--no-install-recommends "${missing[@]}" >"$T/apt.log" 2>&1
	local rc=$?
	[ $ours = 1 ] && rm -f $policy
	[ $rc = 0 ] || { cat "$T/apt.log"; die "apt-get install failed"; }
}

build_loadgen() {
	mkdir -p "$(dirname "$LOADGEN")"
	if [ ! -x "$LOADGEN" ] || [ "$ROOT/bench/loadgen.c" -nt "$LOADGEN" ]; then
		cc -O2 -std=c11 -D_GNU_SOURCE -Wall -Wextra -o "$LOADGEN" \
			"$ROOT/bench/loadgen.c" || die "loadgen does not build"
	fi
}

# A port free for both UDP and TCP on 127.0.0.1, not handed out before.
free_port() {
	/usr/bin/python3 - "$@" <<'EOF'
import socket, sys
used = set(int(a) for a in sys.argv[1:])
for _ in range(100):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    p = u.getsockname()[1]
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        t.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        t.close(); u.close()
    if p not in used and p > 1024:
        print(p); break
EOF
}

# --- servers -----------------------------------------------------------------
# start_SERVER ZONEFILE ORIGIN PORT DIR: exec the server in the foreground,
# pinned to SERVER_CPU, one query thread; stdout/stderr to DIR/log.  With
# NSX set (ip netns exec NS), inside that namespace: ip and taskset both
# exec, so $! is still the server's own PID.

# DNSD_ARGS: more dnsd options (--db, --geoip) for the next start.
# GDNSD_PLUGINS: a plugins => { ... } stanza for the next gdnsd config, and
# GDNSD_GEOIP an MMDB linked into its geoip directory.  KNOT_XDP=1: the
# next Knot also answers UDP through XDP on lo (its xdp: section).
DNSD_ARGS=()
GDNSD_PLUGINS=""
GDNSD_GEOIP=""
KNOT_XDP=0
LABEL_W=12	# width of the run label in sat_one's lines

start_dnsd() {
	local zone=$1 port=$3 dir=$4
	"${NSX[@]}" taskset -c $SERVER_CPU "$ROOT/bin/dnsd" --listen 127.0.0.1:"$port" \
		--zone "$zone" --threads 1 "${DNSD_ARGS[@]}" >"$dir/log" 2>&1 &
	LAST_PID=$!
}

start_knot() {
	local zone=$1 origin=$2 port=$3 dir=$4 xdp="" level=notice
	mkdir -p "$dir/db"
	# XDP on lo, UDP only (TCP keeps the socket); at log level info
	# Knot says whether the interface was initialized.
	[ "$KNOT_XDP" = 1 ] && xdp=$'xdp:\n    listen: lo@'$port$'\n    udp: on\n    tcp: off'
	[ -n "${NSX[*]}" ] && level=info
	cat > "$dir/knot.conf" <<EOF
server:
    rundir: "$dir"
    pidfile: "$dir/knot.pid"
    listen: 127.0.0.1@$port
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
$xdp
control:
    listen: "$dir/knot.sock"
database:
    storage: "$dir/db"
log:
  - target: stderr
    any: $level
template:
  - id: default
    storage: "$dir"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: off
zone:
  - domain: $origin
    file: "$zone"
EOF
	"${NSX[@]}" taskset -c $SERVER_CPU knotd -c "$dir/knot.conf" >"$dir/log" 2>&1 &
	LAST_PID=$!
}

start_gdnsd() {
	local zone=$1 origin=$2 port=$3 dir=$4
	mkdir -p "$dir/zones" "$dir/run" "$dir/state" "$dir/geoip"
	ln -sf "$zone" "$dir/zones/${origin%.}"
	[ -n "$GDNSD_GEOIP" ] && ln -sf "$GDNSD_GEOIP" "$dir/geoip/"
	# experimental_no_chain => false: follow CNAMEs inside the zone like
	# dnsd and Knot do, so all three answer the same records.
	cat > "$dir/config" <<EOF
options => {
  listen => [ 127.0.0.1:$port ]
  udp_threads => 1
  tcp_threads => 1
  run_dir => $dir/run
  state_dir => $dir/state
  experimental_no_chain => false
}
$GDNSD_PLUGINS
EOF
	"${NSX[@]}" taskset -c $SERVER_CPU gdnsd -c "$dir" start >"$dir/log" 2>&1 &
	LAST_PID=$!
}

server_version() {
	case $1 in
	dnsd) echo "dnsd ($(git -C "$ROOT" log -1 --format='%h %cs' 2>/dev/null))" ;;
	knot) knotd --version 2>&1 | head -1 ;;
	gdnsd) gdnsd -V 2>&1 | grep -m1 -o 'gdnsd version [0-9.]*' ;;
	esac
}

# on_ns KEY CMD...: CMD in the network namespace of server KEY (NS[KEY],
# the XDP part), or here when KEY has none.
on_ns() {
	local key=$1
	shift
	if [ -n "${NS[$key]:-}" ]; then
		ip netns exec "${NS[$key]}" "$@"
	else
		"$@"
	fi
}

# launch NAME KEY ZONEFILE ORIGIN PROBENAME: start server NAME as KEY (its
# instance name; in namespace NS[KEY] if set), wait until it answers
# PROBENAME/A with data.  Sets PID[KEY], PORT[KEY] and LOAD_S (seconds from
# start to that first answer).  A server that exits before answering fails
# at once (its PID[KEY] is then unset).
launch() {
	local name=$1 key=$2 zone=$3 origin=$4 probe=$5 t0 t1 ppid first rc
	local dir=$T/$key
	mkdir -p "$dir"
	PORT[$key]=$(free_port "${PORT[@]}")
	[ -n "${PORT[$key]}" ] || die "no free port"
	NSX=()
	[ -n "${NS[$key]:-}" ] && NSX=(ip netns exec "${NS[$key]}")
	t0=$(date +%s%N)
	"start_$name" "$zone" "$origin" "${PORT[$key]}" "$dir"
	PID[$key]=$LAST_PID
	STARTED+=("$LAST_PID")
	# Not through on_ns: $! must be the probe itself (ip and taskset
	# exec), so that it can be stopped by its PID.
	"${NSX[@]}" taskset -c $CLIENT_CPU "$LOADGEN" -p "${PORT[$key]}" \
		-P "$probe/A" -t 120000 >"$dir/probe" 2>&1 &
	ppid=$!
	PROBE=$ppid
	NSX=()
	# Whichever ends first: the probe (answered or timed out) or the server.
	wait -n -p first "$ppid" "${PID[$key]}"
	rc=$?
	PROBE=""
	t1=$(date +%s%N)
	if [ "$first" != "$ppid" ]; then
		kill "$ppid" 2>/dev/null
		wait "$ppid" 2>/dev/null
		say "bench: $key exited with status $rc before answering $probe/A; its log:"
		tail -20 "$dir/log" | tee -a "$RESULTS"
		unset "PID[$key]"
		return 1
	fi
	if [ "$rc" != 0 ]; then
		say "bench: $key did not answer $probe/A within 120 s; its log:"
		tail -20 "$dir/log" | tee -a "$RESULTS"
		return 1
	fi
	LOAD_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
	kill -0 "${PID[$key]}" 2>/dev/null || return 1
}

# halt KEY: stop the server, complain if it did not exit 0 on SIGTERM.
halt() {
	local key=$1 rc
	stop_pid "${PID[$key]}"
	rc=$?
	# The contract says dnsd exits 0 on SIGTERM; gdnsd re-raises the
	# signal (status 143), which is its normal way out.
	case $key in dnsd|*-dnsd|dnsd-*|*-dnsd-*) [ $rc = 0 ] || say "bench: note: $key exited with status $rc after SIGTERM" ;; esac
	unset "PID[$key]"
}

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# Busy ticks (everything but idle and iowait) of CPUs 0 and 1 together.
busy_ticks() { awk '/^cpu[01] / { b += $2 + $3 + $4 + $7 + $8 + $9 } END { print b }' /proc/stat; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# kv KEY LINE: value of KEY=... in a loadgen RESULT line.
kv() { printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }

# --- parts of the bench --------------------------------------------------------

# Same answers from everyone: one pass over the query file at low concurrency;
# rcode counts and the number of answer records must agree.  Servers KEY...
# (default: $ACTIVE), each queried in its own namespace if it has one.
check_same_answers() {
	local s res line ref="" w=6
	say ""
	say "== Same answers: one pass over the $NQUERIES queries (rcodes, answer RRs)"
	[ $# -gt 0 ] && w=10
	for s in ${@:-$ACTIVE}; do
		res=$(on_ns "$s" taskset -c $CLIENT_CPU "$LOADGEN" -p "${PORT[$s]}" -d "$QUERIES" \
			-n "$NQUERIES" -l 60 -w 16 -c 2 | grep '^RESULT')
		line=$(printf 'noerror=%s nxdomain=%s servfail=%s refused=%s answer_rrs=%s lost=%s' \
			"$(kv noerror "$res")" "$(kv nxdomain "$res")" "$(kv servfail "$res")" \
			"$(kv refused "$res")" "$(kv ancount "$res")" "$(kv lost "$res")")
		say "$(printf '  %-*s %s' "$w" "$s" "$line")"
		if [ -z "$ref" ]; then
			ref=$line
		elif [ "$line" != "$ref" ]; then
			say "  WARNING: $s answers differ from the first server; the ratios compare different work"
		fi
	done
}

# sat_one ROUND KEY LABEL QFILE TSV: one closed-loop run of SAT_SECONDS
# against server KEY with QFILE; appends a line (round, LABEL, q/s, lost,
# answered, server CPU s, loadgen CPU s, wall s, others %) to TSV and prints
# it.  The server CPU is utime+stime of KEY's process over the run.
sat_one() {
	local r=$1 key=$2 label=$3 qfile=$4 tsv=$5 res t0 t1 b0 b1 srv_s other
	t0=$(cpu_ticks "${PID[$key]}")
	b0=$(busy_ticks)
	res=$(on_ns "$key" taskset -c $CLIENT_CPU "$LOADGEN" -p "${PORT[$key]}" -d "$qfile" \
		-l "$SAT_SECONDS" -w "$WINDOW" -c "$SOCKETS" -b "$BATCH" | grep '^RESULT')
	t1=$(cpu_ticks "${PID[$key]}")
	b1=$(busy_ticks)
	[ -n "$res" ] || { say "bench: loadgen failed against $label"; FAILED=1; return 1; }
	srv_s=$(awk -v a="$t0" -v b="$t1" -v hz="$CLK_TCK" 'BEGIN { print (b - a) / hz }')
	# Other processes on our two CPUs during the run, in % of one CPU: a
	# shared machine makes such rounds unreliable.
	other=$(awk -v b="$((b1 - b0))" -v s="$srv_s" -v l="$(kv cpu_s "$res")" \
		-v w="$(kv wall_s "$res")" -v hz="$CLK_TCK" \
		'BEGIN { o = (b / hz - s - l) / w * 100; printf "%.0f", o < 0 ? 0 : o }')
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$label" "$(kv qps "$res")" \
		"$(kv lost "$res")" "$(kv answered "$res")" "$srv_s" \
		"$(kv cpu_s "$res")" "$(kv wall_s "$res")" "$other" >> "$tsv"
	say "$(printf '  round %d %-*s %8s q/s  lost %-5s server %5.2f us/q %3.0f%% CPU  loadgen %5.2f us/q %3.0f%% CPU  others %3s%%' \
		"$r" "$LABEL_W" "$label" "$(kv qps "$res")" "$(kv lost "$res")" \
		"$(awk -v c="$srv_s" -v n="$(kv answered "$res")" 'BEGIN { print n ? c * 1e6 / n : 0 }')" \
		"$(awk -v c="$srv_s" -v w="$(kv wall_s "$res")" 'BEGIN { print 100 * c / w }')" \
		"$(kv cpu_us_per_q "$res")" \
		"$(awk -v c="$(kv cpu_s "$res")" -v w="$(kv wall_s "$res")" 'BEGIN { print 100 * c / w }')" \
		"$other")"
}

# Saturation: ROUNDS rounds, each server SAT_SECONDS in turn (the order rotates
# every round).  One line per (round, server) into $T/sat.tsv.
saturation() {
	local r s order i
	local -a list=($ACTIVE)
	say ""
	say "== Saturation: closed loop, $WINDOW queries in flight over $SOCKETS sockets (batch $BATCH, UDP GSO), $ROUNDS x ${SAT_SECONDS} s per server"
	for ((r = 1; r <= ROUNDS; r++)); do
		order=""
		for ((i = 0; i < ${#list[@]}; i++)); do
			order+="${list[$(((i + r - 1) % ${#list[@]}))]} "
		done
		for s in $order; do
			sat_one "$r" "$s" "$s" "$QUERIES" "$T/sat.tsv"
		done
	done
}

# Latency at a fixed rate: dnsperf (avg, stddev, max) and loadgen in open
# loop (percentiles), each LAT_SECONDS against each server.
latency() {
	local s out lg
	say ""
	say "== Latency at a fixed rate of $RATE q/s, $LAT_SECONDS s each (dnsperf, then loadgen open loop)"
	say "$(printf '  %-6s %9s %7s %9s %9s %9s | %7s %7s %7s %7s %6s' server \
		'dp q/s' 'dp lost' 'avg us' 'sd us' 'max us' 'p50 us' 'p90 us' 'p99 us' 'p99.9' lost)"
	for s in $ACTIVE; do
		out=$(taskset -c $CLIENT_CPU dnsperf -s 127.0.0.1 -p "${PORT[$s]}" \
			-d "$QUERIES" -l "$LAT_SECONDS" -Q "$RATE" -c 4 -q 1000 2>&1)
		printf '%s\n' "$out" > "$T/dnsperf.$s"
		lg=$(taskset -c $CLIENT_CPU "$LOADGEN" -p "${PORT[$s]}" -d "$QUERIES" \
			-l "$LAT_SECONDS" -Q "$RATE" -c "$SOCKETS")
		say "$(printf '%s\n' "$out" | awk -v s="$s" -v lg="$lg" '
			/Queries per second:/ { qps = $4 }
			/Queries lost:/ { lost = $3 }
			/Average Latency/ { avg = $4 * 1e6; sub(/,/, "", $6); max = $8 }
			/Latency StdDev/ { sd = $4 * 1e6 }
			END {
				sub(/\)/, "", max); max *= 1e6
				n = split(lg, w, /[ \n]+/)
				for (i = 1; i <= n; i++) {
					if (w[i] == "p50") p50 = w[i + 1]
					if (w[i] == "p90") p90 = w[i + 1]
					if (w[i] == "p99") p99 = w[i + 1]
					if (w[i] == "p99.9") p999 = w[i + 1]
					if (w[i] ~ /^lost=/) { sub(/lost=/, "", w[i]); ll = w[i] }
				}
				printf "  %-6s %9.0f %7s %9.0f %9.0f %9.0f | %7s %7s %7s %7s %6s\n",
				       s, qps, lost, avg, sd, max, p50, p90, p99, p999, ll
			}')"
	done
}

# Memory: each server alone on a MEM_RECORDS-record zone: time from start to
# the first answer for the zone's last name, then VmRSS.
memory() {
	local s zone=$T/mem.test
	say ""
	say "== Memory: a zone of $MEM_RECORDS records (mem.test.), each server alone"
	/usr/bin/python3 "$ROOT/bench/genzone.py" big "$zone" "$MEM_RECORDS" "$T/mem.last" ||
		die "genzone big failed"
	local last
	last=$(cat "$T/mem.last")
	say "$(printf '  %-6s %10s %10s' server 'load s' 'RSS MiB')"
	for s in $MEM_SERVERS; do
		if ! launch "$s" "mem-$s" "$zone" mem.test. "$last"; then
			say "$(printf '  %-6s %10s' "$s" 'FAILED')"
			FAILED=1
			[ -n "${PID[mem-$s]:-}" ] && halt "mem-$s"
			continue
		fi
		sleep 1	# let background work (Knot: zone commit) settle
		local rss
		rss=$(rss_kb "${PID[mem-$s]}")
		printf '%s\t%s\t%s\n' "$s" "$LOAD_S" "$rss" >> "$T/mem.tsv"
		say "$(printf '  %-6s %10s %10.1f' "$s" "$LOAD_S" "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')")"
		halt "mem-$s"
	done
}

# rotate_runs ROUND RUN...: each RUN is KEY:LABEL:QFILE; runs them with
# sat_one into $RUN_TSV, the order rotated by the round number.
rotate_runs() {
	local r=$1 i n run key label qfile
	shift
	n=$#
	local -a runs=("$@")
	for ((i = 0; i < n; i++)); do
		run=${runs[$(((i + r - 1) % n))]}
		key=${run%%:*} run=${run#*:}
		label=${run%%:*} qfile=${run#*:}
		sat_one "$r" "$key" "$label" "$qfile" "$RUN_TSV"
	done
}

# The geo inputs in $T/geo (gengeo.py, the MMDB, dnsd's store with the geo
# service), made once for the geo part and the XDP part's geo run.  Sets
# GEO_NAMES, GEO_COORDS and GEO_DCMAP (gdnsd's datacenters, auto_dc_coords
# and dcmap).  Returns 1 when something failed (said and FAILED set).
GEO_READY=0
geo_inputs() {
	local g=$T/geo dc addr lat lon
	[ "$GEO_READY" = 1 ] && return 0
	GEO_NAMES="" GEO_COORDS="" GEO_DCMAP=""
	/usr/bin/python3 "$ROOT/bench/gengeo.py" "$g" "$GEO_NETWORKS" 100000 ||
		{ say "bench: gengeo failed"; FAILED=1; return 1; }
	perl "$ROOT/tests/tools/mkmmdb.pl" "$g/geo.tsv" "$g/geo.mmdb" ||
		{ say "bench: mkmmdb failed"; FAILED=1; return 1; }
	"$ROOT/bin/gslbctl" --db "$g/geo.db" init >/dev/null &&
	"$ROOT/bin/gslbctl" --db "$g/geo.db" service add geo.geo.test --policy geo --ttl 30 ||
		{ FAILED=1; return 1; }
	while IFS=$'\t' read -r dc addr lat lon; do
		"$ROOT/bin/gslbctl" --db "$g/geo.db" endpoint add geo.geo.test "$addr" \
			--region "$dc" --lat "$lat" --lon "$lon" || { FAILED=1; return 1; }
		GEO_NAMES+="$dc, " GEO_COORDS+="$dc => [ $lat, $lon ], " GEO_DCMAP+="$dc => $addr, "
	done < "$g/dcs.tsv"
	GEO_READY=1
}

# gdnsd's plugin_geoip stanza for the geo inputs (city auto mode).
gdnsd_geo_plugins() {
	cat <<EOF
plugins => { geoip => {
  maps => { m => {
    geoip2_db => geo.mmdb
    datacenters => [ ${GEO_NAMES%, } ]
    auto_dc_coords => { ${GEO_COORDS%, } }
  } }
  resources => { geores => { map => m, dcmap => { ${GEO_DCMAP%, } } } }
} }
EOF
}

# Geo answers with ECS (issue 4): dnsd's geo service against gdnsd's geoip
# plugin (city auto mode) on the same generated MMDB and the same queries,
# and dnsd's static name with the same ECS options.  Results in $T/geo.tsv.
bench_geo() {
	local g=$T/geo r
	say ""
	say "== Geo + ECS: dnsd geo service vs gdnsd plugin_geoip, same MMDB ($GEO_NETWORKS networks) and queries"
	geo_inputs || return
	say "  MMDB: $(grep -c '^[0-9.]*/' "$g/geo.tsv") IPv4 + $(grep -c '^[0-9a-f]*:' "$g/geo.tsv") IPv6 networks around 48 cities, $(du -k "$g/geo.mmdb" | cut -f1) KiB; 100,000 queries with ECS (IPv4 /24, IPv6 /56; $(grep -c ':' "$g/q-geo.txt") IPv6), $(sort -u "$g/q-geo.txt" | wc -l) distinct"
	say "  data centres (dnsd endpoints = gdnsd datacenters): ${GEO_COORDS%, }"
	local ok=""
	DNSD_ARGS=(--db "$g/geo.db" --geoip "$g/geo.mmdb")
	if launch dnsd geo-dnsd "$g/dnsd.zone" geo.test. geo.geo.test.; then
		ok+="dnsd "
	else
		say "bench: dnsd with --geoip failed to start"; FAILED=1
	fi
	DNSD_ARGS=()
	if case " $SERVERS " in *" gdnsd "*) true ;; *) false ;; esac; then
		GDNSD_GEOIP=$g/geo.mmdb
		GDNSD_PLUGINS=$(gdnsd_geo_plugins)
		if launch gdnsd geo-gdnsd "$g/gdnsd.zone" geo.test. geo.geo.test.; then
			ok+="gdnsd "
		else
			say "bench: gdnsd with plugin_geoip failed to start"; FAILED=1
		fi
		GDNSD_PLUGINS="" GDNSD_GEOIP=""
	fi
	if [ "$ok" = "dnsd gdnsd " ]; then
		local cmp
		cmp=$(/usr/bin/python3 "$ROOT/bench/geocompare.py" "$g/q-sample.txt" \
			"${PORT[geo-dnsd]}" "${PORT[geo-gdnsd]}" dnsd gdnsd)
		say "  same answers (first 2,000 queries, A records compared):"
		say "$(printf '%s\n' "$cmp" | sed 's/^COMPARE/  COMPARE/')"
		printf '%s\n' "$cmp" | grep '^COMPARE' | tr ' ' '\n' | sed -n 's/=/\t/p' > "$g/compare"
		grep -q 'differ=0 failed=0' <<<"$cmp" ||
			say "  WARNING: dnsd and gdnsd answer some subnets differently (listed above)"
	fi
	local -a runs=()
	case $ok in *dnsd*) runs+=("geo-dnsd:dnsd-static:$g/q-static.txt" "geo-dnsd:dnsd-geo:$g/q-geo.txt") ;; esac
	case $ok in *gdnsd*) runs+=("geo-gdnsd:gdnsd-geo:$g/q-geo.txt" "geo-gdnsd:gdnsd-static:$g/q-static.txt") ;; esac
	if [ ${#runs[@]} -gt 0 ]; then
		say "  saturation, $ROUNDS x ${SAT_SECONDS} s each: static = sta.geo.test (zone A record), geo = geo.geo.test, same ECS options"
		RUN_TSV=$T/geo.tsv
		for ((r = 1; r <= ROUNDS; r++)); do
			rotate_runs "$r" "${runs[@]}"
		done
	fi
	for s in geo-dnsd geo-gdnsd; do
		[ -n "${PID[$s]:-}" ] && halt "$s"
	done
}

# 100,000 balanced names x 4 endpoints (issue 3): the store is written
# straight into the schema by gensvc.py, checked with dnsd --check, then
# dnsd's load time and RSS, and q/s over all services against the same
# number of static names (same answers) in the same server.
bench_services() {
	local d=$T/svc r rss rss0 chk last
	say ""
	say "== Balanced names: $SVC_COUNT services x 4 endpoints (failover, weighted, all) vs as many static names"
	mkdir -p "$d"
	"$ROOT/bin/gslbctl" --db "$d/svc.db" init >/dev/null ||
		{ say "bench: gslbctl init failed"; FAILED=1; return; }
	/usr/bin/python3 "$ROOT/bench/gensvc.py" "$d/svc.db" "$d" "$SVC_COUNT" ||
		{ say "bench: gensvc failed"; FAILED=1; return; }
	last=$(cat "$d/last")
	if ! chk=$("$ROOT/bin/dnsd" --check --db "$d/svc.db" --zone "$d/svc.zone" 2>&1); then
		say "bench: dnsd --check failed on the generated store:"
		say "$(printf '%s\n' "$chk" | tail -5)"
		FAILED=1
		return
	fi
	say "  dnsd --check: $(printf '%s\n' "$chk" | grep -m1 'services' | sed 's/^dnsd: //')"
	# The static zone alone first, for the RSS the store adds.
	if launch dnsd svc-zone "$d/svc.zone" svc.test. s0.svc.test.; then
		sleep 1
		rss0=$(rss_kb "${PID[svc-zone]}")
		halt svc-zone
	fi
	DNSD_ARGS=(--db "$d/svc.db")
	if ! launch dnsd svc-dnsd "$d/svc.zone" svc.test. "$last"; then
		DNSD_ARGS=()
		say "bench: dnsd with $SVC_COUNT services failed to start"
		FAILED=1
		[ -n "${PID[svc-dnsd]:-}" ] && halt svc-dnsd
		return
	fi
	DNSD_ARGS=()
	sleep 1
	rss=$(rss_kb "${PID[svc-dnsd]}")
	{
		printf 'services\t%s\nendpoints\t%s\n' "$SVC_COUNT" "$((4 * SVC_COUNT))"
		printf 'load_s\t%s\nrss_kb\t%s\nzone_rss_kb\t%s\n' "$LOAD_S" "$rss" "${rss0:-0}"
	} > "$T/svcmem.tsv"
	say "$(printf '  load %s s (start to an answer for %s), RSS %.1f MiB (the static zone alone: %.1f MiB)' \
		"$LOAD_S" "$last" "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" \
		"$(awk -v k="${rss0:-0}" 'BEGIN { print k / 1024 }')")"
	local q res
	for q in static svc; do
		res=$(taskset -c $CLIENT_CPU "$LOADGEN" -p "${PORT[svc-dnsd]}" -d "$d/q-$q.txt" \
			-n "$SVC_COUNT" -l 60 -w 16 -c 2 | grep '^RESULT')
		say "$(printf '  one pass, %-6s noerror=%s nxdomain=%s servfail=%s answer_rrs=%s lost=%s' "$q" \
			"$(kv noerror "$res")" "$(kv nxdomain "$res")" "$(kv servfail "$res")" \
			"$(kv ancount "$res")" "$(kv lost "$res")")"
	done
	say "  saturation, $ROUNDS x ${SAT_SECONDS} s each: $SVC_COUNT queries, each name once per pass, same order"
	RUN_TSV=$T/svc.tsv
	for ((r = 1; r <= ROUNDS; r++)); do
		rotate_runs "$r" "svc-dnsd:dnsd-static:$d/q-static.txt" "svc-dnsd:dnsd-services:$d/q-svc.txt"
	done
	halt svc-dnsd
}
# Failover time (issue 5): bench/failover.py starts its own dnsd, agents and
# backends and stops them by PID; one line per run into $T/failover.tsv.
bench_failover() {
	say ""
	say "== Failover: $FO_RUNS runs, active backend killed, first answer without it"
	/usr/bin/python3 "$ROOT/bench/failover.py" --runs "$FO_RUNS" \
		--tsv "$T/failover.tsv" 2>&1 | grep -v '^FAILOVER ' | sed 's/^/  /' | tee -a "$RESULTS"
	[ "${PIPESTATUS[0]}" = 0 ] || { say "bench: failover part failed"; FAILED=1; }
}

# --- XDP part -------------------------------------------------------------------
# Every server of this part runs in a network namespace of its own, made
# here: its lo is up, accepts the frames an XDP program sends back in
# (accept_local, route_localnet: without them the kernel drops dnsd's IPv4
# answers as martians) and segments UDP GSO messages before XDP sees them
# (tx-udp-segmentation off: the loadgen sends GSO messages, and with the
# offload on lo hands them to XDP whole, several queries in one frame).
# One XDP program per interface: a namespace per server keeps dnsd's and
# Knot's apart, and the host's lo untouched.  Socket-mode servers get the
# same namespace settings, so the part compares like with like.

# netns_new NAME: creates gslb-bench-$$-NAME with those settings; sets
# NS_NEW.  Returns 1 with the reason in XDP_WHY.
netns_new() {
	local ns=gslb-bench-$$-$1 err
	if ! err=$(ip netns add "$ns" 2>&1); then
		XDP_WHY="cannot create network namespace $ns: $err"
		return 1
	fi
	NETNS+=("$ns")
	if ! err=$( { ip netns exec "$ns" ip link set dev lo up &&
		ip netns exec "$ns" sysctl -qw net.ipv4.conf.lo.accept_local=1 \
			net.ipv4.conf.lo.route_localnet=1 &&
		ip netns exec "$ns" ethtool -K lo tx-udp-segmentation off; } 2>&1); then
		XDP_WHY="namespace $ns: lo settings failed: $err"
		netns_delete "$ns"
		return 1
	fi
	if ! ip netns exec "$ns" ethtool -k lo 2>/dev/null | grep -q '^tx-udp-segmentation: off'; then
		XDP_WHY="namespace $ns: tx-udp-segmentation is still on for lo"
		netns_delete "$ns"
		return 1
	fi
	NS_NEW=$ns
}

# xdp_launch NAME KEY MODE ZONE ORIGIN PROBE: server NAME as KEY in a new
# namespace, MODE xdp (dnsd --xdp lo; Knot's xdp: section) or sock.  For
# xdp, checks in the server's log that the program is attached.  Returns 1
# with the reason in XDP_WHY (the server, if started, is stopped);
# XDP_NOATTACH=1 when the server answered but XDP was not attached.
xdp_launch() {
	local name=$1 key=$2 mode=$3 zone=$4 origin=$5 probe=$6 log ok=1
	XDP_NOATTACH=0
	netns_new "$key" || return 1
	NS[$key]=$NS_NEW
	[ "$mode" = xdp ] && case $name in
		dnsd) DNSD_ARGS+=(--xdp lo) ;;
		knot) KNOT_XDP=1 ;;
	esac
	local lines
	launch "$name" "$key" "$zone" "$origin" "$probe" || ok=0
	KNOT_XDP=0
	log=$T/$key/log
	lines=$(grep -i -m3 'xdp' "$log" 2>/dev/null | tr '\n' ' ' | sed 's/ *$//')
	[ -n "$lines" ] || lines=$(tail -3 "$log" 2>/dev/null | tr '\n' ' ' | sed 's/ *$//')
	if [ $ok = 0 ]; then
		if [ -n "${PID[$key]:-}" ] && kill -0 "${PID[$key]}" 2>/dev/null; then
			XDP_WHY="$key did not answer $probe/A within 120 s (log: $lines)"
		else
			XDP_WHY="$key exited before answering: $lines"
		fi
	elif [ "$mode" = xdp ]; then
		case $name in
		dnsd) grep -q '^dnsd: xdp lo: .* mode' "$log" || ok=0 ;;
		knot) grep -q 'initialized XDP interface lo' "$log" || ok=0 ;;
		esac
		if [ $ok = 0 ]; then
			XDP_NOATTACH=1
			XDP_WHY="$key answered, but its log does not say XDP is attached to lo: $lines"
		fi
	fi
	if [ $ok = 0 ]; then
		xdp_halt "$key"
		return 1
	fi
	say "bench: $(printf '%-10s' "$key") $(server_version "$name") in $NS_NEW on 127.0.0.1:${PORT[$key]}, $( [ "$mode" = xdp ] && { grep -m1 -o 'xdp lo: .*' "$log" || grep -m1 -o 'initialized XDP interface lo.*' "$log"; } || echo sockets), answered after $LOAD_S s"
}

# xdp_halt KEY: stop the server and delete its namespace (Knot's program
# is taken off its lo first: it stays attached after knotd exits).
xdp_halt() {
	local key=$1
	[ -n "${PID[$key]:-}" ] && halt "$key"
	if [ -n "${NS[$key]:-}" ]; then
		netns_delete "${NS[$key]}"
		unset "NS[$key]"
	fi
}

# The XDP part on the 10k-host mix: dnsd --xdp lo, Knot with XDP on lo, and
# dnsd, Knot and gdnsd with sockets, each alone in its namespace; the same
# answers check, then the rounds rotated as in the main saturation part.
# One line per (round, server) into $T/xdp.tsv.
bench_xdp() {
	local s r keys="" name mode why=""
	local -a runs=()
	say ""
	say "== XDP part: each server alone in a network namespace, lo with XDP settings (accept_local=1, route_localnet=1, tx-udp-segmentation off)"
	if [ "$XDP_ON" = 0 ]; then
		why="BENCH_XDP=0"
	elif case " $SKIP " in *" xdp "*) true ;; *) false ;; esac; then
		why="BENCH_SKIP has xdp"
	elif [ "$(id -u)" != 0 ]; then
		why="not root (XDP programs, network namespaces and ethtool -K need root)"
	elif [ ! -x "$ROOT/bin/dnsd" ]; then
		why="bin/dnsd is missing"
	elif ! command -v ip >/dev/null || ! command -v ethtool >/dev/null; then
		why="ip (iproute2) or ethtool is missing"
	elif case " $SERVERS " in *" dnsd "*) false ;; *) true ;; esac; then
		why="dnsd is not in BENCH_SERVERS"
	fi
	if [ -n "$why" ]; then
		say "xdp part skipped: $why"
		return
	fi
	# dnsd --xdp first: when its program cannot attach there is no part.
	DNSD_ARGS=()
	if ! xdp_launch dnsd dnsd-xdp xdp "$ZONE" bench.test. host0.bench.test.; then
		DNSD_ARGS=()
		say "xdp part skipped: $XDP_WHY"
		return
	fi
	DNSD_ARGS=()
	keys="dnsd-xdp "
	for s in knot:knot-xdp:xdp dnsd:dnsd-sock:sock knot:knot-sock:sock gdnsd:gdnsd-sock:sock; do
		name=${s%%:*} s=${s#*:}
		mode=${s#*:} s=${s%%:*}
		case " $SERVERS " in *" $name "*) ;; *) continue ;; esac
		if xdp_launch "$name" "$s" "$mode" "$ZONE" bench.test. host0.bench.test.; then
			keys+="$s "
		else
			say "bench: $s left out: $XDP_WHY"
			# A server that did not start fails the run; Knot
			# without XDP on this kernel does not.
			[ "$XDP_NOATTACH" = 1 ] || FAILED=1
		fi
	done
	check_same_answers $keys
	for s in $keys; do runs+=("$s:$s:$QUERIES"); done
	say "  saturation: closed loop, $WINDOW queries in flight over $SOCKETS sockets (batch $BATCH, UDP GSO), $ROUNDS x ${SAT_SECONDS} s per server, order rotated per round"
	RUN_TSV=$T/xdp.tsv
	for ((r = 1; r <= ROUNDS; r++)); do
		rotate_runs "$r" "${runs[@]}"
	done
	for s in $keys; do xdp_halt "$s"; done
	bench_xdp_geo
}

# geo_dump KEY QFILE OUT: the answers of server KEY (in its namespace) to
# the ECS queries of QFILE, one "SUBNET<TAB>rcode records" line each (NONE
# when unanswered), built and read by geocompare.py's own functions.
geo_dump() {
	on_ns "$1" /usr/bin/python3 - "$ROOT/bench" "$2" "${PORT[$1]}" > "$3" <<'EOF'
import random, socket, sys
sys.path.insert(0, sys.argv[1])
import geocompare as g
port = int(sys.argv[3])
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
rng = random.Random(7)
with open(sys.argv[2]) as f:
    for line in f:
        w = line.split()
        if len(w) != 3:
            continue
        qid = rng.randrange(65536)
        a = g.ask(sock, port, g.build(qid, w[0], g.TYPES[w[1].upper()], w[2]), qid)
        print("%s\t%s" % (w[2], "NONE" if a is None else
                          "%d %s" % (a[0], " ".join(a[1]) or "-")))
EOF
}

# The XDP part's geo + ECS run: dnsd --xdp lo with the geo part's store and
# MMDB (geo name, and the static name for geo/static) against gdnsd's
# plugin_geoip with sockets (gdnsd has no XDP mode), each in its namespace.
# Results in $T/xdpgeo.tsv and $T/xdpgeo.compare.
bench_xdp_geo() {
	local g=$T/geo r ok=""
	say ""
	say "== XDP part, geo + ECS: dnsd --xdp lo geo service vs gdnsd plugin_geoip (sockets), same MMDB ($GEO_NETWORKS networks) and queries, each in its namespace"
	geo_inputs || return
	DNSD_ARGS=(--db "$g/geo.db" --geoip "$g/geo.mmdb")
	if xdp_launch dnsd geo-dnsd-xdp xdp "$g/dnsd.zone" geo.test. geo.geo.test.; then
		ok+="dnsd "
	else
		say "bench: geo-dnsd-xdp left out: $XDP_WHY"; FAILED=1
	fi
	DNSD_ARGS=()
	if case " $SERVERS " in *" gdnsd "*) true ;; *) false ;; esac; then
		GDNSD_GEOIP=$g/geo.mmdb
		GDNSD_PLUGINS=$(gdnsd_geo_plugins)
		if xdp_launch gdnsd geo-gdnsd-sock sock "$g/gdnsd.zone" geo.test. geo.geo.test.; then
			ok+="gdnsd "
		else
			say "bench: geo-gdnsd-sock left out: $XDP_WHY"; FAILED=1
		fi
		GDNSD_PLUGINS="" GDNSD_GEOIP=""
	fi
	if [ "$ok" = "dnsd gdnsd " ]; then
		# Two namespaces, so no one client reaches both: each server's
		# answers to the first 2,000 queries are dumped in its own.
		geo_dump geo-dnsd-xdp "$g/q-sample.txt" "$T/xdpgeo.a"
		geo_dump geo-gdnsd-sock "$g/q-sample.txt" "$T/xdpgeo.b"
		local cmp
		cmp=$(paste "$T/xdpgeo.a" "$T/xdpgeo.b" | awk -F'\t' '
			{ n++
			  if ($2 == "NONE" || $4 == "NONE") {
				f++
				if (shown++ < 10) printf "  no answer from %s for %s\n", $2 == "NONE" ? "dnsd-xdp" : "gdnsd", $1
			  } else if ($2 == $4) s++
			  else { d++; if (shown++ < 10) printf "  %s: dnsd-xdp rcode %s, gdnsd rcode %s\n", $1, $2, $4 } }
			END { printf "COMPARE total=%d same=%d differ=%d failed=%d\n", n, s, d, f }')
		say "  same answers (first 2,000 queries, A records compared):"
		say "$(printf '%s\n' "$cmp" | sed 's/^COMPARE/  COMPARE/')"
		printf '%s\n' "$cmp" | grep '^COMPARE' | tr ' ' '\n' | sed -n 's/=/\t/p' > "$T/xdpgeo.compare"
		grep -q 'differ=0 failed=0' <<<"$cmp" ||
			say "  WARNING: dnsd-xdp and gdnsd answer some subnets differently (listed above)"
	fi
	local -a runs=()
	case $ok in *dnsd*) runs+=("geo-dnsd-xdp:dnsd-xdp-static:$g/q-static.txt" "geo-dnsd-xdp:dnsd-xdp-geo:$g/q-geo.txt") ;; esac
	case $ok in *gdnsd*) runs+=("geo-gdnsd-sock:gdnsd-geo:$g/q-geo.txt" "geo-gdnsd-sock:gdnsd-static:$g/q-static.txt") ;; esac
	if [ ${#runs[@]} -gt 0 ]; then
		say "  saturation, $ROUNDS x ${SAT_SECONDS} s each: static = sta.geo.test (zone A record), geo = geo.geo.test, same ECS options"
		RUN_TSV=$T/xdpgeo.tsv
		LABEL_W=15
		for ((r = 1; r <= ROUNDS; r++)); do
			rotate_runs "$r" "${runs[@]}"
		done
	fi
	LABEL_W=12
	xdp_halt geo-dnsd-xdp
	xdp_halt geo-gdnsd-sock
}

# --- main ----------------------------------------------------------------------

install_deps
build_loadgen

say "bench: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), kernel $(uname -r)"
say "bench: servers pinned to CPU $SERVER_CPU (one query thread each), loadgen and dnsperf to CPU $CLIENT_CPU"

ZONE=$T/bench.test
QUERIES=$T/queries.txt
/usr/bin/python3 "$ROOT/bench/genzone.py" mix "$ZONE" "$QUERIES" 10000 100000 ||
	die "genzone mix failed"
NQUERIES=$(wc -l < "$QUERIES")
say "bench: zone bench.test. with $(grep -c ' IN ' "$ZONE") records; $NQUERIES queries: 30% A, 15% AAAA, 15% MX, 15% CNAME, 15% NXDOMAIN, 10% NODATA"

ACTIVE=""
MEM_SERVERS=""
for s in $SERVERS; do
	if [ "$s" = dnsd ] && [ ! -x "$ROOT/bin/dnsd" ]; then
		say "bench: dnsd: bin/dnsd is missing (not built yet); measuring the peers only"
		FAILED=1
		continue
	fi
	if launch "$s" "$s" "$ZONE" bench.test. host0.bench.test.; then
		ACTIVE+="$s "
		MEM_SERVERS+="$s "
		say "bench: $(printf '%-6s' "$s") $(server_version "$s") on 127.0.0.1:${PORT[$s]}, answered after $LOAD_S s"
	else
		say "bench: $s failed to start; left out"
		FAILED=1
		[ -n "${PID[$s]:-}" ] && halt "$s"
	fi
done
[ -n "$ACTIVE" ] || die "no server could be started"

check_same_answers
case " $SKIP " in *" sat "*) ;; *) saturation ;; esac
case " $SKIP " in *" lat "*) ;; *) latency ;; esac
for s in $ACTIVE; do halt "$s"; done
case " $SKIP " in *" mem "*) ;; *) memory ;; esac
if [ -x "$ROOT/bin/dnsd" ]; then
	case " $SKIP " in *" geo "*) ;; *) bench_geo ;; esac
	case " $SKIP " in *" svc "*) ;; *) bench_services ;; esac
	case " $SKIP " in *" failover "*) ;; *) bench_failover ;; esac
fi
bench_xdp

say ""
/usr/bin/python3 "$ROOT/bench/report.py" "$T/sat.tsv" "$T/mem.tsv" "$T/geo.tsv" \
	"$T/geo/compare" "$T/svc.tsv" "$T/svcmem.tsv" "$T/failover.tsv" \
	"$T/xdp.tsv" "$T/xdpgeo.tsv" "$T/xdpgeo.compare" | tee -a "$RESULTS"
say ""
say "bench: results in bench/out/results.txt"
exit $FAILED
