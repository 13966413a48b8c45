# bench/lib.sh: what the benchmark scripts (bench/peers.sh, bench/scale.sh)
# share. Sourced by them once they have parsed their flags; reads BENCH (the
# script's name, for log lines and the temporary directory), BUILD (build
# eric first when set), KEEP (keep the temporary directory) and RAW (echo
# each run's JSON figures).
#
# - logging, Debian packages, the open files limit, building eric;
# - a temporary directory and the processes started for the run: every one
#   is stopped when the script exits, however it exits;
# - free ports, waits for readiness, a private redis-server, eric nodes;
# - `eric load peer` runs and their JSON figures.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

log() { echo "$BENCH: $*" >&2; }
die() { log "$*"; exit 1; }

# ---------------------------------------------------------------- set-up

apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "$* missing and no apt-get here; install it by hand"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  log "installing $* from Debian's packages"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# Raises the soft open files limit to $1 (each stream is a descriptor in
# the load tool and one in the server); sets FILES.
raise_file_limit() {
  local need="$1" hard
  hard="$(ulimit -Hn)"
  if [ "$hard" != unlimited ] && [ "$hard" -lt "$need" ]; then
    ulimit -Hn "$need" 2>/dev/null \
      || die "open files hard limit is $hard, $need needed: raise it (ulimit -Hn) or ask for fewer streams"
  fi
  ulimit -Sn "$need"
  FILES="$need"
}

# Sets ERIC to the release binary, built first unless --no-build.
build_eric() {
  local target="${CARGO_TARGET_DIR:-$ROOT/target}"
  if [ -n "$BUILD" ]; then
    log "building eric (release)"
    (cd "$ROOT" && cargo build --release --quiet -p eric-bin)
  fi
  ERIC="$target/release/eric"
  [ -x "$ERIC" ] || die "$ERIC missing: build it (drop --no-build)"
}

# The machine, for a table's header.
machine() {
  echo "$(nproc) cores ($(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)), $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
}

# ---------------------------------------------------------------- processes

WORK="$(mktemp -d -t "eric-$BENCH.XXXXXX")"
PIDS=()

# Stops every process started so far: TERM, then KILL after 10 s.
stop_all() {
  local pid i
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for i in $(seq 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  PIDS=()
}

on_exit() {
  stop_all
  if [ -n "$KEEP" ]; then
    log "files kept in $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap on_exit EXIT
trap 'exit 130' INT TERM

# Ports come from below the kernel's ephemeral range: the load tool's ten
# thousand outgoing connections take ports from that range, and a server
# started later could find its port taken.
EPHEMERAL_LOW="$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)"
NEXT_PORT=$((10000 + RANDOM % (EPHEMERAL_LOW - 12000)))
# Sets PORT to a port nothing listens on.
take_port() {
  while (exec 3<>"/dev/tcp/127.0.0.1/$NEXT_PORT") 2>/dev/null; do
    NEXT_PORT=$((NEXT_PORT + 1))
  done
  PORT=$NEXT_PORT
  NEXT_PORT=$((NEXT_PORT + 1))
}

# Waits until the command after `what` and `log` succeeds, polling every
# 0.1 s for up to WAIT_SECONDS (default 30); if it does not, says so with
# the end of `log`.
wait_for() {
  local what="$1" log="$2" i
  shift 2
  for i in $(seq $((${WAIT_SECONDS:-30} * 10))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  log "$what did not come up; the end of $log:"
  tail -5 "$log" >&2 || true
  exit 1
}

# Starts a private redis-server named $1, with further arguments after it
# (cluster mode); sets REDIS_PORT, REDIS_PID.
start_redis() {
  local dir="$WORK/redis-$1"
  shift
  mkdir -p "$dir"
  take_port
  REDIS_PORT=$PORT
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$dir" --logfile "$dir/redis.log" "$@" &
  REDIS_PID=$!
  PIDS+=("$REDIS_PID")
  wait_for "redis-server" "$dir/redis.log" redis-cli -p "$REDIS_PORT" ping
}

# Starts an eric node (on Redis when $2 is a URL); sets URL, PID.
start_eric() {
  local name="$1" redis="${2:-}"
  take_port
  URL="http://127.0.0.1:$PORT"
  local args=(serve --http "127.0.0.1:$PORT")
  [ -z "$redis" ] || args+=(--redis "$redis")
  # No access log: nginx's is off too (bench/nchan.conf.in), and a line
  # per request would be measured with the server.
  ERIC__LOG__FILTER="info,eric::access=off" \
    "$ERIC" "${args[@]}" >"$WORK/eric-$name.log" 2>&1 &
  PID=$!
  PIDS+=("$PID")
  wait_for "eric $name" "$WORK/eric-$name.log" curl -fs -o /dev/null "$URL/readyz"
}

# ---------------------------------------------------------------- runs

# eric's /v1 set-up calls (not measured).
eric_post() {
  curl -fsS -o /dev/null -X POST -H 'Content-Type: application/json' -d "$2" "$1"
}

# A top-level number of a one-line JSON object.
json_number() {
  sed -n "s/.*[{,]\"$2\":\([-0-9.eE+]*\).*/\1/p" "$1"
}

RUN=0
# Runs `eric load --json peer ...`, keeping its figures in $OUT.
load() {
  RUN=$((RUN + 1))
  OUT="$WORK/run-$RUN.json"
  "$ERIC" load --json peer "$@" >"$OUT"
  [ -z "$RAW" ] || log "$(cat "$OUT")"
}

# The median of the arguments.
median() {
  printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
