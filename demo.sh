#!/usr/bin/env bash
# The race demo in one command: builds, starts a seeded server on a fresh SQLite database,
# and opens two clients (alice and bob) side by side in tmux with the server log below.
# Quitting both clients (q) ends the demo and stops everything it started.
#
# ./demo.sh --help says how to use it.
set -euo pipefail
cd "$(dirname "$0")"

usage() {
  cat <<'USAGE'
Usage: ./demo.sh [--lost-update] [--bot] [--help]

Starts a seeded catalog server on a fresh SQLite database in a temporary directory and
opens two clients, alice and bob, side by side in tmux, with the server's log below.
A blue line in each window walks you through the race on product 1.

  --lost-update   run the same race without If-Match: bob silently overwrites alice
  --bot           also start `catalog bot --user carol`, editing random products
  --help          this text

In the demo: click a window (or Ctrl-b and an arrow) to type in it; press r in the log
pane to restart the server (the clients reconnect and keep their edits); q in both
client windows ends the demo, stops the server and removes the temporary directory.
Without tmux, the server runs here and the two client commands are printed.
USAGE
}

LOST=0
BOT=0
for arg in "$@"; do
  case "$arg" in
    --lost-update) LOST=1 ;;
    --bot) BOT=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown option $arg" >&2; usage >&2; exit 2 ;;
  esac
done

TARGET="${CARGO_TARGET_DIR:-target}"
case "$TARGET" in /*) ;; *) TARGET="$PWD/$TARGET" ;; esac
BIN="$TARGET/debug"
if [ -z "${CATALOG_DEMO_SKIP_BUILD:-}" ]; then
  echo "Building the server and the client (the first build takes a few minutes)..."
  # Package by package, as `cargo run -p catalog-server` and `cargo run -p catalog-client`
  # build them, so running either by hand afterwards rebuilds nothing.
  cargo build -p catalog-server
  cargo build -p catalog-client --bin catalog
fi

DIR="$(mktemp -d "${TMPDIR:-/tmp}/catalog-demo.XXXXXX")"
SOCKET="${CATALOG_DEMO_TMUX_SOCKET:-catalog-demo-$$}"
SERVER_ARGS=(--db "$DIR/catalog.db" --addr 127.0.0.1:0)
BOB_ARGS=()
if [ "$LOST" = 1 ]; then
  SERVER_ARGS+=(--allow-unconditional)
  BOB_ARGS+=(--no-if-match)
fi

# The server's pid lives in a file: a restart (r in the log pane) replaces it.
start_server() {
  RUST_LOG="${RUST_LOG:-info}" "$BIN/catalog-server" "${SERVER_ARGS[@]}" >>"$DIR/server.log" 2>&1 &
  echo $! >"$DIR/server.pid"
}
stop_server() {
  local pid
  pid="$(cat "$DIR/server.pid" 2>/dev/null || true)"
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  # Graceful shutdown finishes within seconds; never leave one running.
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}
# The log exists before the server's shell opens it, so reading it for the address never
# races the server's start (sed on a missing file fails, and with pipefail ends the demo).
: >"$DIR/server.log"
start_server
SERVER_PID="$(cat "$DIR/server.pid")"
BOT_PID=
WATCH_PID=

cleanup() {
  trap - EXIT INT TERM
  [ -n "$BOT_PID" ] && kill "$BOT_PID" 2>/dev/null || true
  [ -n "$WATCH_PID" ] && kill "$WATCH_PID" 2>/dev/null || true
  tmux -L "$SOCKET" kill-server 2>/dev/null || true
  stop_server
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

# Restarts on request, on the same database and address, so the clients come back.
SERVER_ARGS=(--db "$DIR/catalog.db" --addr "${ADDR#http://}")
(
  while sleep 0.2; do
    if [ -f "$DIR/restart" ]; then
      rm -f "$DIR/restart"
      echo "--- demo: restarting the server ---" >>"$DIR/server.log"
      stop_server
      start_server
    fi
  done
) &
WATCH_PID=$!
if [ "$LOST" = 1 ]; then
  SERVER_ARGS+=(--allow-unconditional)
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
  "${T[@]}" set-option -g status-left "#[bold] catalog demo: q in both windows ends it; click a window (or Ctrl-b arrow) to switch; r in the log restarts the server #[default]" >/dev/null
  "${T[@]}" set-option -g status-left-length 120 >/dev/null
  "${T[@]}" set-option -g status-right "" >/dev/null
  "${T[@]}" split-window -h -t demo:race "$(pane "$BOB" bob)"
  "${T[@]}" split-window -v -f -l 8 -t demo:race "tail -n +1 -f '$DIR/server.log' & while read -rsn1 k; do [ \"\$k\" = r ] && touch '$DIR/restart'; done"
  "${T[@]}" select-pane -t demo:race.0
  TMUX= "${T[@]}" attach-session -t demo || true
else
  cat <<MSG
The demo server is running at $ADDR (database in $DIR).
To restart it (the clients reconnect and keep their edits): touch $DIR/restart
Without tmux, open two more terminals and run, one in each:

  $ALICE
  $BOB

Then follow the blue line at the bottom of each window. Its log is below; press Ctrl-C
here to stop the server when you are done.

MSG
  tail -n +1 -f "$DIR/server.log" &
  TAIL_PID=$!
  # Until Ctrl-C (the cleanup stops the server, restarted or not).
  wait "$TAIL_PID" || true
fi
