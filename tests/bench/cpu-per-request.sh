#!/bin/bash
# Server CPU per request (utime + stime from /proc) and requests/s of two server binaries,
# interleaved round by round so that both see the same machine (BENCHMARKS.md, "Second pass").
# Each round: a fresh database, wrk 1 s of warm-up, then 5 s measured.
#
#   tests/bench/cpu-per-request.sh old/catalog-server target/release/catalog-server [rounds]
#   GET200=1 tests/bench/cpu-per-request.sh A B      # GET -> 200 instead of 304
#
# Needs wrk: apt-get install wrk.
set -euo pipefail
. "$(dirname "$0")/common.sh"
ROUNDS=${3:-3}
one() {
  local bin=$1 port=$2 dir pid header out t0 t1 requests
  dir=$(mktemp -d)
  "$bin" --addr "127.0.0.1:$port" --db "$dir/catalog.db" 2>"$dir/log" &
  pid=$!
  header=$(load_header "$port")
  wrk -t2 -c8 -d1s -H "$header" "http://127.0.0.1:$port/products/1" >/dev/null
  t0=$(awk '{print $14+$15}' "/proc/$pid/stat")
  out=$(wrk -t2 -c8 -d5s -H "$header" "http://127.0.0.1:$port/products/1")
  t1=$(awk '{print $14+$15}' "/proc/$pid/stat")
  requests=$(echo "$out" | awk '/requests in/{print $1}')
  printf "%-40s %10s req/s  %6s us CPU per request\n" "$bin" \
    "$(echo "$out" | awk '/Requests\/sec/{print $2}')" \
    "$(echo "($t1-$t0)*10000/$requests" | bc -l | cut -c1-5)"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$dir"
}
for _ in $(seq "$ROUNDS"); do
  one "$1" 18091
  one "$2" 18092
done
