#!/usr/bin/env bash
# make fuzz: builds the libFuzzer targets with clang (ASan+UBSan) into
# build-fuzz/ and runs each for FUZZ_SECONDS (default 60) on the seed corpus.
# New inputs go to build-fuzz/corpus-*, never into the committed corpus;
# crashes are left as build-fuzz/crash-* and fail the run.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${FUZZ_SECONDS:-60}
pkgs="ldns libmaxminddb libevent libevent_openssl libevent_pthreads sqlite3 jansson liburcu-qsbr openssl libsystemd libxdp libbpf"
flags="-g -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -std=c11 -D_GNU_SOURCE -I. $(pkg-config --cflags $pkgs)"
mkdir -p build-fuzz/obj
# The generated sources (the embedded XDP program, schema and status page),
# like the build's.
make -s generated
objs=()
shopt -s nullglob
# An object is stale when its source or any header is newer (a struct that
# changed under an old object makes the targets read garbage).
newest_h=$(ls -t common/*.h geo/*.h health/*.h policy/*.h db/*.h cluster/*.h dnsd/*.h | head -1)
for src in common/*.c geo/*.c health/*.c policy/*.c db/*.c cluster/*.c dnsd/*.c build/dnsd/xdp_filter_obj.c build/db/schema_sql.c build/web/*.c build/docs/*.c; do
  case "$src" in *_main.c|*.bpf.c) continue ;; esac
  o=build-fuzz/obj/$(echo "$src" | tr / _).o
  if [ ! -e "$o" ] || [ "$src" -nt "$o" ] || [ "$newest_h" -nt "$o" ]; then
    clang $flags -c "$src" -o "$o"
  fi
  objs+=("$o")
done
status=0
for target in tests/fuzz/fuzz_*.c; do
  name=$(basename "$target" .c)
  corpus=tests/fuzz/corpus/${name#fuzz_}
  clang $flags -fsanitize=fuzzer "$target" "${objs[@]}" -o "build-fuzz/$name" $(pkg-config --libs $pkgs) -lpthread -lm
  mkdir -p "build-fuzz/corpus-$name"
  echo "fuzz: $name for ${secs}s"
  if ! "build-fuzz/$name" -max_total_time="$secs" -timeout=5 -rss_limit_mb=2048 \
       -artifact_prefix="build-fuzz/" -print_final_stats=1 \
       "build-fuzz/corpus-$name" "$corpus" 2>&1 | tee "build-fuzz/$name.log" | grep -E "^#[0-9]+.*(DONE|pulse)|stat::number_of_executed_units|ERROR|crash" ; then
    :
  fi
  if grep -q "ERROR: libFuzzer\|ERROR: AddressSanitizer\|runtime error" "build-fuzz/$name.log"; then
    echo "fuzz: $name FAILED (see build-fuzz/$name.log)"; status=1
  fi
done
exit $status
