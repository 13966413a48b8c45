#!/usr/bin/env bash
# bench/peers.sh: eric and nchan (nginx's pub/sub module) side by side,
# driven by one client, `eric load peer` (a plain POST to publish, a plain
# SSE GET to read: no eric-specific API in the measured part). Each server
# runs in memory, and as two nodes on one private Redis, publishing on one
# node and holding the streams on the other. Prints a table of the figures
# with the ratio eric/nchan.
#
# Scenarios (sizes are flags, see --help):
#   fan-out     N streams on one channel, M messages published to it:
#               deliveries/s from the first publish until every stream has
#               every message.
#   per-stream  N streams, each with its own channel (nchan) or its own
#               listener on one channel (eric; and, on a second row, its
#               own channel); rounds of one message to each stream, a round
#               ending when every stream has its message: deliveries/s.
#   idle        N idle streams on one channel: the server's memory growth
#               per stream (all of its processes: eric, or nginx's master
#               and workers; on Redis, the node holding the streams, and
#               Redis apart) and its CPU use over a window.
# Every scenario runs on freshly started servers; throughput runs are
# repeated (--repeat) on fresh channels and the median is reported.
#
# Installs nginx, libnginx-mod-nchan, redis-server, redis-tools and curl from
# Debian's packages when missing, builds eric in release, and runs every
# process on private ports of 127.0.0.1 with its files in a temporary
# directory; each one it started is stopped when it exits, however it exits.
# (On a host with systemd, installing nginx also starts Debian's own nginx
# service on port 80; the script neither uses nor stops it.)
# Shared with bench/scale.sh: bench/lib.sh.
set -euo pipefail

NCHAN_MODULE=/usr/lib/nginx/modules/ngx_nchan_module.so

FANOUT_STREAMS=1000
FANOUT_MESSAGES=200
PER_STREAM_STREAMS=100
ROUNDS=200
IDLE_STREAMS=10000
WINDOW=30
REPEAT=3
SETUPS="memory redis"
SCENARIOS="fanout per-stream idle"
BUILD=1
KEEP=""
RAW=""

usage() {
  cat <<EOF
Usage: bench/peers.sh [options]
  --quick                 small sizes, one repeat (a check that all works)
  --fanout-streams N      streams of the fan-out (default $FANOUT_STREAMS)
  --fanout-messages M     messages of the fan-out (default $FANOUT_MESSAGES)
  --per-stream-streams N  streams of the per-stream rounds (default $PER_STREAM_STREAMS)
  --rounds R              rounds of one message per stream (default $ROUNDS)
  --idle-streams N        idle streams (default $IDLE_STREAMS)
  --window S              seconds the idle streams idle (default $WINDOW)
  --repeat K              runs of each throughput scenario; the median counts (default $REPEAT)
  --setups LIST           "memory", "redis" or both (default "$SETUPS")
  --scenarios LIST        of "fanout per-stream idle" (default all)
  --no-build              use the eric binary built already (target/release/eric)
  --raw                   also print each run's JSON figures (on stderr)
  --keep                  keep the temporary directory (logs, configs, figures)
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    --quick)
      FANOUT_STREAMS=100 FANOUT_MESSAGES=20 PER_STREAM_STREAMS=20 ROUNDS=20
      IDLE_STREAMS=500 WINDOW=3 REPEAT=1 ;;
    --fanout-streams) FANOUT_STREAMS="$2"; shift ;;
    --fanout-messages) FANOUT_MESSAGES="$2"; shift ;;
    --per-stream-streams) PER_STREAM_STREAMS="$2"; shift ;;
    --rounds) ROUNDS="$2"; shift ;;
    --idle-streams) IDLE_STREAMS="$2"; shift ;;
    --window) WINDOW="$2"; shift ;;
    --repeat) REPEAT="$2"; shift ;;
    --setups) SETUPS="$2"; shift ;;
    --scenarios) SCENARIOS="$2"; shift ;;
    --no-build) BUILD="" ;;
    --raw) RAW=1 ;;
    --keep) KEEP=1 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
  shift
done

BENCH=peers
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

# ---------------------------------------------------------------- set-up

ensure_deps() {
  local missing=()
  [ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || missing+=(nginx)
  [ -f "$NCHAN_MODULE" ] || missing+=(libnginx-mod-nchan)
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  if [ ${#missing[@]} -gt 0 ]; then
    apt_install "${missing[@]}"
  fi
  NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
}

# A process's children, from /proc (procps may not be installed).
children() {
  local stat
  for stat in /proc/[0-9]*/stat; do
    [ "$(sed 's/.*) //' "$stat" 2>/dev/null | cut -d' ' -f2)" = "$1" ] || continue
    stat="${stat#/proc/}"
    echo "${stat%/stat}"
  done
}

# Whether process $1 has $2 children.
has_children() {
  [ "$(children "$1" | wc -l)" -eq "$2" ]
}

# Starts an nginx with nchan (on the Redis at port $2 when given); sets
# URL, PID (its master) and WORKER_PIDS.
start_nchan() {
  local name="$1" redis="${2:-}" dir="$WORK/nginx-$1" workers user="" upstream="" pass=""
  mkdir -p "$dir"
  take_port
  URL="http://127.0.0.1:$PORT"
  workers="$(nproc)"
  [ "$(id -u)" -ne 0 ] || user="user $(id -un) $(id -gn);"
  if [ -n "$redis" ]; then
    upstream="    upstream peers_redis { nchan_redis_server redis://127.0.0.1:$redis; }"
    pass="            nchan_redis_pass peers_redis;"
  fi
  # One worker may end up holding every connection.
  sed -e "s|@MODULE@|$NCHAN_MODULE|" -e "s|@USER@|$user|" -e "s|@DIR@|$dir|g" \
    -e "s|@PORT@|$PORT|" -e "s|@FILES@|$FILES|" \
    -e "s|@CONNECTIONS@|$((FILES - 1024))|" -e "s|@UPSTREAM@|$upstream|" \
    -e "s|@REDIS_PASS@|$pass|" "$ROOT/bench/nchan.conf.in" >"$dir/nginx.conf"
  sed -i "s/^worker_processes auto;/worker_processes $workers;/" "$dir/nginx.conf"
  "$NGINX" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" >"$dir/out.log" 2>&1 &
  PID=$!
  PIDS+=("$PID")
  wait_for "nginx $name" "$dir/error.log" curl -fs -o /dev/null "$URL/ready"
  wait_for "nginx $name's $workers workers" "$dir/error.log" has_children "$PID" "$workers"
  WORKER_PIDS="$(children "$PID" | paste -sd, -)"
}

# Starts one server kind ($1: eric or nchan) in a setup ($2: memory or
# redis). Sets PUB (the node to publish to), SUB (the node holding the
# streams), SERVER_PIDS (SUB's processes) and BACKEND_PIDS (Redis).
start_setup() {
  local kind="$1" setup="$2"
  BACKEND_PIDS=""
  if [ "$setup" = memory ]; then
    "start_$kind" solo
    PUB="$URL" SUB="$URL"
  else
    start_redis "$kind"
    BACKEND_PIDS="$REDIS_PID"
    local redis="$REDIS_PORT"
    [ "$kind" = nchan ] || redis="redis://127.0.0.1:$REDIS_PORT"
    "start_$kind" a "$redis"
    PUB="$URL"
    "start_$kind" b "$redis"
    SUB="$URL"
  fi
  SERVER_PIDS="$PID"
  [ "$kind" = eric ] || SERVER_PIDS="$PID,$WORKER_PIDS"
}

# ---------------------------------------------------------------- runs

# One run of a throughput scenario ($1: fanout, per-stream, per-channel)
# for $KIND; sets VALUE (deliveries/s).
throughput() {
  local scenario="$1" id="r$RUN-$RANDOM" i pub sub
  case "$KIND/$scenario" in
    nchan/fanout) pub="$PUB/pub/fan-$id" sub="$SUB/sub/fan-$id" ;;
    nchan/per-stream) pub="$PUB/pub/ps-$id-{i}" sub="$SUB/sub/ps-$id-{i}" ;;
    eric/fanout)
      eric_post "$PUB/v1/channels" "{\"id\":\"fan-$id\"}"
      pub="$PUB/v1/channels/fan-$id/messages" sub="$SUB/v1/channels/fan-$id/events" ;;
    eric/per-stream)
      eric_post "$PUB/v1/channels" "{\"id\":\"ps-$id\"}"
      for i in $(seq 0 $((PER_STREAM_STREAMS - 1))); do
        eric_post "$PUB/v1/channels/ps-$id/listeners" "{\"id\":\"l$i\"}"
      done
      pub="$PUB/v1/channels/ps-$id/listeners/l{i}/messages"
      sub="$SUB/v1/channels/ps-$id/listeners/l{i}/events" ;;
    eric/per-channel)
      for i in $(seq 0 $((PER_STREAM_STREAMS - 1))); do
        eric_post "$PUB/v1/channels" "{\"id\":\"pc-$id-$i\"}"
      done
      pub="$PUB/v1/channels/pc-$id-{i}/messages" sub="$SUB/v1/channels/pc-$id-{i}/events" ;;
  esac
  if [ "$scenario" = fanout ]; then
    load fanout --publish-url "$pub" --stream-url "$sub" \
      --streams "$FANOUT_STREAMS" --messages "$FANOUT_MESSAGES"
  else
    load per-stream --publish-url "$pub" --stream-url "$sub" \
      --streams "$PER_STREAM_STREAMS" --rounds "$ROUNDS"
  fi
  VALUE="$(json_number "$OUT" delivery_rate)"
}

declare -A RESULT

# Runs scenario $1 for $2 (eric or nchan) in setup $3 on fresh servers.
measure() {
  local scenario="$1" setup="$3" values=() r
  KIND="$2"
  start_setup "$KIND" "$setup"
  if [ "$scenario" = idle ]; then
    local sub="$SUB/sub/idle" backend=()
    if [ "$KIND" = eric ]; then
      eric_post "$PUB/v1/channels" '{"id":"idle"}'
      sub="$SUB/v1/channels/idle/events"
    fi
    [ -z "$BACKEND_PIDS" ] || backend=(--backend-pid "$BACKEND_PIDS")
    load idle --stream-url "$sub" --streams "$IDLE_STREAMS" --window "$WINDOW" \
      --pid "$SERVER_PIDS" "${backend[@]}"
    local key
    for key in pss_per_stream_bytes rss_per_stream_bytes cpu_percent \
      backend_rss_per_stream_bytes streams_lost; do
      RESULT["idle-$key/$setup/$KIND"]="$(json_number "$OUT" "$key")"
    done
    log "idle, $setup, $KIND: $(json_number "$OUT" pss_per_stream_bytes) B/stream (PSS)," \
      "$(json_number "$OUT" cpu_percent) % CPU"
    [ "$(json_number "$OUT" streams_lost)" = 0 ] \
      || log "warning: $(json_number "$OUT" streams_lost) idle streams ended during the window"
  else
    for r in $(seq "$REPEAT"); do
      throughput "$scenario"
      values+=("$VALUE")
      log "$scenario, $setup, $KIND, run $r: $VALUE deliveries/s"
    done
    RESULT["$scenario/$setup/$KIND"]="$(median "${values[@]}")"
  fi
  stop_all
}

# ---------------------------------------------------------------- table

# A row of the table, if both figures exist: name, unit, nchan's figure,
# eric's, which is better ("higher" or "lower"), and optionally a divisor
# and the decimals to show.
row() {
  awk -v name="$1" -v unit="$2" -v n="$3" -v e="$4" -v better="$5" \
    -v scale="${6:-1}" -v decimals="${7:-0}" 'BEGIN {
    if (n == "" || e == "") exit
    ratio = (n + 0 > 0) ? sprintf("%.2f", e / n) : "-"
    fmt = "%12." decimals "f"
    printf "%-68s %-12s " fmt " " fmt "  %10s  %s is better\n", name, unit, n / scale, e / scale, ratio, better
  }'
}

print_table() {
  local setup label
  printf '%-68s %-12s %12s %12s  %10s\n' scenario unit nchan eric eric/nchan
  for setup in $SETUPS; do
    if [ "$setup" = memory ]; then label="in memory"; else label="2 nodes on Redis"; fi
    row "fan-out $FANOUT_STREAMS streams x $FANOUT_MESSAGES msgs, $label" deliveries/s \
      "${RESULT[fanout/$setup/nchan]:-}" "${RESULT[fanout/$setup/eric]:-}" higher
    row "per-stream $PER_STREAM_STREAMS x $ROUNDS rounds, $label (eric: listener each)" \
      deliveries/s "${RESULT[per-stream/$setup/nchan]:-}" "${RESULT[per-stream/$setup/eric]:-}" higher
    row "per-stream $PER_STREAM_STREAMS x $ROUNDS rounds, $label (eric: channel each)" \
      deliveries/s "${RESULT[per-stream/$setup/nchan]:-}" "${RESULT[per-channel/$setup/eric]:-}" higher
    row "idle $IDLE_STREAMS streams, $label: server PSS per stream" KiB \
      "${RESULT[idle-pss_per_stream_bytes/$setup/nchan]:-}" \
      "${RESULT[idle-pss_per_stream_bytes/$setup/eric]:-}" lower 1024 2
    row "idle $IDLE_STREAMS streams, $label: server RSS per stream" KiB \
      "${RESULT[idle-rss_per_stream_bytes/$setup/nchan]:-}" \
      "${RESULT[idle-rss_per_stream_bytes/$setup/eric]:-}" lower 1024 2
    row "idle $IDLE_STREAMS streams, $label: Redis RSS per stream" KiB \
      "${RESULT[idle-backend_rss_per_stream_bytes/$setup/nchan]:-}" \
      "${RESULT[idle-backend_rss_per_stream_bytes/$setup/eric]:-}" lower 1024 2
    row "idle $IDLE_STREAMS streams, $label: server CPU over ${WINDOW} s" "% of a core" \
      "${RESULT[idle-cpu_percent/$setup/nchan]:-}" "${RESULT[idle-cpu_percent/$setup/eric]:-}" lower 1 2
  done
}

# ---------------------------------------------------------------- main

ensure_deps
raise_file_limit $((IDLE_STREAMS + FANOUT_STREAMS + 4096))
build_eric
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
log "load average before: $LOAD_BEFORE"
for setup in $SETUPS; do
  for scenario in $SCENARIOS; do
    measure "$scenario" nchan "$setup"
    measure "$scenario" eric "$setup"
    [ "$scenario" != per-stream ] || measure per-channel eric "$setup"
  done
done

cat <<EOF
eric vs nchan, $(date -u +%Y-%m-%dT%H:%MZ)
machine: $(machine); load average (1, 5, 15 min) before $LOAD_BEFORE, after $(cut -d' ' -f1-3 /proc/loadavg)
eric $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'), $("$NGINX" -v 2>&1 | sed 's/.*: //') with nchan $(dpkg-query -W -f '${Version}' libnginx-mod-nchan 2>/dev/null || echo '?'), redis $(redis-server --version | sed 's/.* v=\([^ ]*\).*/\1/')
throughput: median of $REPEAT runs; idle: one run, window ${WINDOW} s
EOF
print_table
