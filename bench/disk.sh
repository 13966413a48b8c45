#!/usr/bin/env bash
# bench/disk.sh: the disk engine's figures (BENCHMARKS.md, "The disk
# engine"), on release builds:
#   dispatch   HTTP dispatch rate, 64 connections: memory, disk everysec,
#              disk always, disk no
#   batch      the same with pipelined requests (--batch): the client's
#              cost per request becomes small, so the server's shows
#   restart    1,000 channels x 10 listeners x 100 queued messages: fill
#              a data directory, then the time `eric serve` takes to be
#              ready on it, and the file's size per queued message
#   steady     disk use under steady dispatch-and-consume (streams drain
#              while 64 connections dispatch), sampled every 10 s
# Usage: bench/disk.sh [dispatch|restart|steady]...  (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p eric-bin
cargo build --release -q -p eric-disk --example fill
target=${CARGO_TARGET_DIR:-target}
ERIC=$target/release/eric
FILL=$target/release/examples/fill
PORT=${PORT:-18480}
URL=http://127.0.0.1:$PORT
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

# Starts `eric serve` with the given flags; waits until /readyz answers.
serve() {
  ERIC__LOG__FILTER=info,eric::access=off "$ERIC" serve --http "127.0.0.1:$PORT" "$@" \
    2>"$work/serve.log" &
  server=$!
  for _ in $(seq 1 600); do
    curl -fs "$URL/readyz" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "server did not become ready" >&2
  exit 1
}

stop() {
  kill -TERM "$server"
  wait "$server" 2>/dev/null || true
}

dispatch() {
  for setup in "--memory" "--data-dir $work/everysec --fsync everysec" \
    "--data-dir $work/always --fsync always" "--data-dir $work/no --fsync no"; do
    # shellcheck disable=SC2086
    serve $setup
    echo "== dispatch, 64 connections, $setup"
    "$ERIC" load --url "$URL" dispatch --connections 64 --duration 10
    stop
  done
}

batch() {
  for setup in "--memory" "--data-dir $work/b-everysec --fsync everysec" \
    "--data-dir $work/b-always --fsync always"; do
    # shellcheck disable=SC2086
    serve $setup
    echo "== dispatch, 64 connections pipelining 32 requests each, $setup"
    "$ERIC" load --url "$URL" dispatch --connections 64 --batch --duration 10
    curl -s "$URL/metrics" | grep -E "^eric_disk_(commits|syncs|writes)_total" || true
    stop
  done
}

restart() {
  echo "== restart: fill 1,000 x 10 x 100"
  "$FILL" "$work/restart" 1000 10 100
  du -b "$work/restart/eric.redb"
  for run in 1 2 3; do
    start=$(date +%s.%N)
    serve --data-dir "$work/restart"
    ready=$(date +%s.%N)
    echo "run $run: ready after $(echo "$ready - $start" | bc) s (process start to /readyz)"
    grep -E "data file open|channels restored" "$work/serve.log" | sed -E 's/.*(data file open|channels restored)/\1/'
    stop
  done
}

steady() {
  serve --data-dir "$work/steady" --fsync everysec
  echo "== steady dispatch and consume (64 connections, streams draining), 60 s"
  "$ERIC" load --url "$URL" dispatch --connections 64 --duration 60 --drain --listeners 10 &
  load=$!
  for t in 10 20 30 40 50 60; do
    sleep 10
    echo "t=${t}s file $(du -b "$work/steady/eric.redb" | cut -f1) bytes"
  done
  wait "$load"
  stop
  echo "after stop: $(du -b "$work/steady/eric.redb" | cut -f1) bytes"
}

for what in "${@:-dispatch batch restart steady}"; do
  for w in $what; do "$w"; done
done
