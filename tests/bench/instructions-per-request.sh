#!/bin/bash
# User-space instructions the server spends per request, under callgrind: a measure that does
# not move with the machine's load (BENCHMARKS.md, "Second pass"). Counts only what runs
# while wrk loads the server (instrumentation is switched on for that window alone), divided
# by the requests wrk counted. The kernel's part is not counted.
#
#   tests/bench/instructions-per-request.sh target/release/catalog-server        # GET -> 304
#   GET200=1 tests/bench/instructions-per-request.sh target/release/catalog-server
#
# Needs valgrind (callgrind_control) and wrk: apt-get install valgrind wrk.
set -euo pipefail
. "$(dirname "$0")/common.sh"
BIN=${1:?usage: $0 path/to/catalog-server}
PORT=${PORT:-18095}
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$DIR/cg.out" \
  "$BIN" --addr "127.0.0.1:$PORT" --db "$DIR/catalog.db" 2>"$DIR/log" >/dev/null &
VPID=$!
HEADER=$(load_header "$PORT")
wrk -t1 -c4 -d2s -H "$HEADER" "http://127.0.0.1:$PORT/products/1" >/dev/null
callgrind_control -i on "$VPID" >/dev/null
OUT=$(wrk -t1 -c4 -d"${SECONDS_LOADED:-8}"s -H "$HEADER" "http://127.0.0.1:$PORT/products/1")
callgrind_control -i off "$VPID" >/dev/null
REQUESTS=$(echo "$OUT" | awk '/requests in/{print $1}')
kill "$VPID"; wait "$VPID" 2>/dev/null || true
IR=$(grep -h '^totals:' "$DIR"/cg.out* | head -1 | awk '{print $2}')
echo "$(basename "$BIN") requests=$REQUESTS instructions=$IR per_request=$((IR / REQUESTS))"
