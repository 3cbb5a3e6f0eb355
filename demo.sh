#!/usr/bin/env bash
# The race demo in one command: builds, starts a seeded server on a fresh SQLite database,
# and opens two clients (alice and bob) side by side in tmux with the server log below.
# Quitting both clients (q) ends the demo and stops everything it started.
#
#   ./demo.sh                 the guided race: If-Match catches bob's stale save (412)
#   ./demo.sh --lost-update   the same race without If-Match: bob silently overwrites alice
#   ./demo.sh --bot           also start `catalog bot` (carol), editing random products
set -euo pipefail
cd "$(dirname "$0")"

LOST=0
BOT=0
for arg in "$@"; do
  case "$arg" in
    --lost-update) LOST=1 ;;
    --bot) BOT=1 ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $arg (try --help)" >&2; exit 2 ;;
  esac
done

TARGET="${CARGO_TARGET_DIR:-target}"
case "$TARGET" in /*) ;; *) TARGET="$PWD/$TARGET" ;; esac
BIN="$TARGET/debug"
if [ -z "${CATALOG_DEMO_SKIP_BUILD:-}" ]; then
  echo "Building the server and the client (the first build takes a few minutes)..."
  cargo build --bins
fi

DIR="$(mktemp -d "${TMPDIR:-/tmp}/catalog-demo.XXXXXX")"
SOCKET="${CATALOG_DEMO_TMUX_SOCKET:-catalog-demo-$$}"
SERVER_ARGS=(--db "$DIR/catalog.db" --addr 127.0.0.1:0)
BOB_ARGS=()
if [ "$LOST" = 1 ]; then
  SERVER_ARGS+=(--allow-unconditional)
  BOB_ARGS+=(--no-if-match)
fi

RUST_LOG="${RUST_LOG:-info}" "$BIN/catalog-server" "${SERVER_ARGS[@]}" >"$DIR/server.log" 2>&1 &
SERVER_PID=$!
BOT_PID=

cleanup() {
  trap - EXIT INT TERM
  [ -n "$BOT_PID" ] && kill "$BOT_PID" 2>/dev/null || true
  tmux -L "$SOCKET" kill-server 2>/dev/null || true
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

ADDR=
for _ in $(seq 1 300); do
  ADDR="$(sed -n 's/.*listening on \(http:\/\/[0-9.:]*\).*/\1/p' "$DIR/server.log" | head -1)"
  [ -n "$ADDR" ] && break
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "The server did not start:" >&2
    cat "$DIR/server.log" >&2
    exit 1
  fi
  sleep 0.1
done
if [ -z "$ADDR" ]; then
  echo "The server did not report its address; its log is $DIR/server.log" >&2
  exit 1
fi

if [ "$BOT" = 1 ]; then
  "$BIN/catalog" bot --server "$ADDR" --user carol --every 3s >"$DIR/bot.log" 2>&1 &
  BOT_PID=$!
fi

CLIENT="$BIN/catalog"
ALICE="$CLIENT --server $ADDR --user alice --guide price"
BOB="$CLIENT --server $ADDR --user bob --guide stock ${BOB_ARGS[*]:-}"

if command -v tmux >/dev/null 2>&1 && [ -z "${CATALOG_DEMO_NO_TMUX:-}" ]; then
  T=(tmux -L "$SOCKET" -f /dev/null)
  # When a client quits it marks itself done; the second one to quit ends the session.
  pane() {
    echo "$1; touch '$DIR/$2.done'; if [ -f '$DIR/alice.done' ] && [ -f '$DIR/bob.done' ]; then tmux -L '$SOCKET' kill-server; fi"
  }
  SIZE=()
  if [ -t 0 ] && SZ="$(stty size 2>/dev/null)"; then
    SIZE=(-x "${SZ#* }" -y "$(( ${SZ% *} - 1 ))")
  fi
  "${T[@]}" new-session -d -s demo -n race "${SIZE[@]}" "$(pane "$ALICE" alice)"
  "${T[@]}" set-option -g escape-time 0 >/dev/null
  "${T[@]}" set-option -g mouse on >/dev/null
  "${T[@]}" set-option -g status-left "#[bold] catalog demo: q in both windows ends it; click a window (or Ctrl-b arrow) to switch #[default]" >/dev/null
  "${T[@]}" set-option -g status-left-length 120 >/dev/null
  "${T[@]}" set-option -g status-right "" >/dev/null
  "${T[@]}" split-window -h -t demo:race "$(pane "$BOB" bob)"
  "${T[@]}" split-window -v -f -l 8 -t demo:race "tail -n +1 -f '$DIR/server.log'"
  "${T[@]}" select-pane -t demo:race.0
  TMUX= "${T[@]}" attach-session -t demo || true
else
  cat <<MSG
The demo server is running at $ADDR (database in $DIR).
Without tmux, open two more terminals and run, one in each:

  $ALICE
  $BOB

Then follow the blue line at the bottom of each window. Its log is below; press Ctrl-C
here to stop the server when you are done.

MSG
  tail -n +1 -f "$DIR/server.log" &
  TAIL_PID=$!
  wait "$SERVER_PID" || true
  kill "$TAIL_PID" 2>/dev/null || true
fi
