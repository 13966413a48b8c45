#!/usr/bin/env bash
# bench/scale.sh: scale-out. 1, 2 and 3 eric nodes on one private
# redis-server, and on a private three-primary Redis Cluster, driven by one
# client, `eric load peer`, which spreads its streams and its publishes
# over every node in turn (a plain POST to publish, a plain SSE GET to
# read; channels are made beforehand with curl on /v1). Prints one table:
# setup x nodes x scenario -> figure, with the CPU each kind of process
# used over the measured part (in % of one core: the load tool, the eric
# nodes, the Redis servers), to tell which process is the limit.
#
# Scenarios (sizes are flags, see --help):
#   publish          K channels (64: on the cluster, spread over its three
#                    shards), one stream each, the streams spread over the
#                    nodes; M messages, each to the next channel, posted
#                    through every node in turn, P in flight: messages/s from
#                    the first publish until every stream has each of its
#                    channel's messages.
#   fanout           N streams on one channel, spread over the nodes; M
#                    messages posted through every node in turn:
#                    deliveries/s until every stream has every message.
#   fanout-channels  N streams over C channels (3: on the cluster, one per
#                    shard), each channel's streams spread over every node;
#                    M messages per channel, so each stream still gets M:
#                    deliveries/s.
# Each setup and node count runs on freshly started servers, its scenarios
# one after the other on fresh channels; each figure is the median of
# --repeat runs (each CPU figure too, apart).
#
# On the cluster, channel names are chosen so the channels of a run spread
# as evenly as they can over the shards (eric's keys of channel c hash on
# {c}: the slot is CLUSTER KEYSLOT c).
#
# Installs redis-server, redis-tools and curl from Debian's packages when
# missing, builds eric in release, and runs every process on private ports
# of 127.0.0.1 with its files in a temporary directory; each one it
# started is stopped when it exits, however it exits. Shared functions:
# bench/lib.sh.
set -euo pipefail

PUBLISH_CHANNELS=64
PUBLISH_MESSAGES=20000
PUBLISHERS=32
FANOUT_STREAMS=1000
FANOUT_MESSAGES=200
FANOUT_CHANNELS=3
FANOUT_PUBLISHERS=4
REPEAT=3
SETUPS="single cluster"
NODES="1 2 3"
SCENARIOS="publish fanout fanout-channels"
BUILD=1
KEEP=""
RAW=""

usage() {
  cat <<EOF
Usage: bench/scale.sh [options]
  --quick                  small sizes, one repeat (a check that all works)
  --publish-channels K     channels of the publish scenario, a stream each (default $PUBLISH_CHANNELS)
  --publish-messages M     messages of the publish scenario (default $PUBLISH_MESSAGES)
  --publishers P           publishes in flight in the publish scenario (default $PUBLISHERS)
  --fanout-streams N       streams of the fan-outs (default $FANOUT_STREAMS)
  --fanout-messages M      messages per channel of the fan-outs (default $FANOUT_MESSAGES)
  --fanout-channels C      channels of fanout-channels (default $FANOUT_CHANNELS)
  --fanout-publishers P    publishes in flight in the fan-outs (default $FANOUT_PUBLISHERS)
  --repeat R               runs of each scenario; the median counts (default $REPEAT)
  --setups LIST            "single" (one redis-server), "cluster" (three primaries) or both (default "$SETUPS")
  --nodes LIST             eric node counts (default "$NODES")
  --scenarios LIST         of "publish fanout fanout-channels" (default all)
  --no-build               use the eric binary built already (target/release/eric)
  --raw                    also print each run's JSON figures (on stderr)
  --keep                   keep the temporary directory (logs, figures)
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    --quick)
      PUBLISH_MESSAGES=2000 FANOUT_STREAMS=100 FANOUT_MESSAGES=20 REPEAT=1 ;;
    --publish-channels) PUBLISH_CHANNELS="$2"; shift ;;
    --publish-messages) PUBLISH_MESSAGES="$2"; shift ;;
    --publishers) PUBLISHERS="$2"; shift ;;
    --fanout-streams) FANOUT_STREAMS="$2"; shift ;;
    --fanout-messages) FANOUT_MESSAGES="$2"; shift ;;
    --fanout-channels) FANOUT_CHANNELS="$2"; shift ;;
    --fanout-publishers) FANOUT_PUBLISHERS="$2"; shift ;;
    --repeat) REPEAT="$2"; shift ;;
    --setups) SETUPS="$2"; shift ;;
    --nodes) NODES="$2"; shift ;;
    --scenarios) SCENARIOS="$2"; shift ;;
    --no-build) BUILD="" ;;
    --raw) RAW=1 ;;
    --keep) KEEP=1 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
  shift
done

BENCH=scale
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

# ---------------------------------------------------------------- set-up

ensure_deps() {
  local missing=()
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  if [ ${#missing[@]} -gt 0 ]; then
    apt_install "${missing[@]}"
  fi
}

# Whether every node of the cluster says cluster_state:ok.
cluster_ok() {
  local port
  for port in "${CLUSTER_PORTS[@]}"; do
    [[ "$(redis-cli -p "$port" cluster info)" == *cluster_state:ok* ]] || return 1
  done
}

# Starts a private three-primary Redis Cluster (named $1: each start needs
# fresh directories, a node's nodes.conf being its membership) and waits
# until every node says it is up; sets REDIS (the seeds eric is given),
# CLUSTER_PORTS, REDIS_PIDS and SLOT_MAP (a file of "first last shard"
# slot ranges).
start_cluster() {
  local name="$1" s bus addrs=()
  CLUSTER_PORTS=() REDIS_PIDS=()
  for s in 1 2 3; do
    # The cluster bus gets a port of its own: the default (port + 10000)
    # may lie in the ephemeral range, where the load tool's connections are.
    take_port
    bus=$PORT
    start_redis "$name-$s" --cluster-enabled yes --cluster-port "$bus" \
      --cluster-config-file nodes.conf --cluster-node-timeout 5000
    CLUSTER_PORTS+=("$REDIS_PORT")
    REDIS_PIDS+=("$REDIS_PID")
    addrs+=("127.0.0.1:$REDIS_PORT")
  done
  local created="$WORK/$name-create.log"
  redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes >"$created" 2>&1 \
    || die "redis-cli --cluster create failed: $(tail -3 "$created")"
  # The nodes learn of one another by gossip, in one-second steps.
  WAIT_SECONDS=60 wait_for "the Redis Cluster" "$created" cluster_ok
  REDIS="$(printf 'redis://%s,' "${addrs[@]}")"
  REDIS="${REDIS%,}"
  SLOT_MAP="$WORK/slot-map"
  redis-cli -p "${CLUSTER_PORTS[0]}" cluster nodes | awk '
    $3 ~ /master/ {
      shard++
      for (f = 9; f <= NF; f++) {
        if ($f ~ /^\[/) continue   # a slot being migrated
        n = split($f, r, "-")
        print r[1], (n > 1 ? r[2] : r[1]), shard
      }
    }' >"$SLOT_MAP"
}

# Starts the setup's Redis ($1: single or cluster) and $2 eric nodes on it;
# sets NODE_URLS, NODE_PIDS, REDIS_PIDS.
start_setup() {
  local setup="$1" nodes="$2" n
  SETUP="$setup"
  if [ "$setup" = single ]; then
    start_redis "single-$nodes"
    REDIS="redis://127.0.0.1:$REDIS_PORT" REDIS_PIDS=("$REDIS_PID") CLUSTER_PORTS=()
  else
    start_cluster "cluster-$nodes"
  fi
  NODE_URLS=() NODE_PIDS=()
  for n in $(seq "$nodes"); do
    start_eric "$setup-$nodes-$n" "$REDIS"
    NODE_URLS+=("$URL")
    NODE_PIDS+=("$PID")
  done
  log "$setup, $nodes node(s): eric $(IFS=,; echo "${NODE_PIDS[*]}"), redis $(IFS=,; echo "${REDIS_PIDS[*]}")"
}

# ---------------------------------------------------------------- runs

# Picks the channel ids of a run, PREFIX-0 to PREFIX-($1 - 1), and sets
# PREFIX. On the cluster, of 20 prefixes it takes the one whose channels
# spread most evenly over the shards (the fewest on the fullest shard),
# and logs the spread.
choose_channels() {
  local count="$1" base="r$RUN-$RANDOM" tries=20 best
  PREFIX="$base-0"
  [ "$SETUP" = cluster ] || return 0
  local c k
  for c in $(seq 0 $((tries - 1))); do
    for k in $(seq 0 $((count - 1))); do
      echo "CLUSTER KEYSLOT $base-$c-$k"
    done
  done | redis-cli -p "${CLUSTER_PORTS[0]}" >"$WORK/slots"
  best="$(awk -v count="$count" -v tries="$tries" '
    NR == FNR { first[NR] = $1; last[NR] = $2; owner[NR] = $3; ranges = NR; next }
    {
      try = int((FNR - 1) / count)
      for (r = 1; r <= ranges; r++) if ($1 >= first[r] && $1 <= last[r]) break
      n[try, owner[r]]++
      if (owner[r] > shards) shards = owner[r]
    }
    END {
      for (t = 0; t < tries; t++) {
        most = 0; spread = ""
        for (s = 1; s <= shards; s++) {
          if (n[t, s] > most) most = n[t, s]
          spread = spread " " (n[t, s] + 0)
        }
        if (best == "" || most < best_most) { best = t; best_most = most; best_spread = spread }
      }
      print best best_spread
    }' "$SLOT_MAP" "$WORK/slots")"
  PREFIX="$base-${best%% *}"
  log "channels $PREFIX-*, per shard: ${best#* }"
}

# Creates channels PREFIX-0 to PREFIX-($1 - 1) through the first node.
create_channels() {
  local k
  for k in $(seq 0 $(($1 - 1))); do
    eric_post "${NODE_URLS[0]}/v1/channels" "{\"id\":\"$PREFIX-$k\"}"
  done
}

# Sets URL_ARGS: every node's --publish-url and --stream-url for channels
# PREFIX-{k} ({k} is 0 with one channel).
node_urls() {
  local url
  URL_ARGS=()
  for url in "${NODE_URLS[@]}"; do
    URL_ARGS+=(--publish-url "$url/v1/channels/$PREFIX-{k}/messages"
      --stream-url "$url/v1/channels/$PREFIX-{k}/events")
  done
}

# One run of scenario $1 on the running setup; sets VALUE, MEASURED (the
# seconds measured) and CPU_* (% of a core over the measured part: the load
# tool, the nodes summed and the busiest, Redis summed and the busiest).
run_once() {
  local scenario="$1" channels streams messages publishers key
  case "$scenario" in
    publish)
      channels=$PUBLISH_CHANNELS streams=$PUBLISH_CHANNELS
      messages=$PUBLISH_MESSAGES publishers=$PUBLISHERS key=message_rate ;;
    fanout)
      channels=1 streams=$FANOUT_STREAMS
      messages=$FANOUT_MESSAGES publishers=$FANOUT_PUBLISHERS key=delivery_rate ;;
    fanout-channels)
      channels=$FANOUT_CHANNELS streams=$FANOUT_STREAMS
      messages=$((FANOUT_MESSAGES * FANOUT_CHANNELS)) publishers=$FANOUT_PUBLISHERS
      key=delivery_rate ;;
    *) die "unknown scenario $scenario" ;;
  esac
  choose_channels "$channels"
  create_channels "$channels"
  node_urls
  local pids
  pids="$(IFS=,; echo "${NODE_PIDS[*]},${REDIS_PIDS[*]}")"
  load fanout "${URL_ARGS[@]}" --channels "$channels" --streams "$streams" \
    --messages "$messages" --publishers "$publishers" --cpu-pid "$pids"
  VALUE="$(json_number "$OUT" "$key")"
  MEASURED="$(json_number "$OUT" seconds)"
  cpu_figures
}

# Reads the run's cpu_percent object ({"self": x, "<pid>": y, ...}) into
# CPU_LOAD, CPU_ERIC (sum), CPU_ERIC_MAX, CPU_REDIS (sum), CPU_REDIS_MAX.
cpu_figures() {
  local figures
  figures="$(sed -n 's/.*"cpu_percent":{\([^}]*\)}.*/\1/p' "$OUT" | tr -d '"' | tr ',' '\n')"
  read -r CPU_LOAD CPU_ERIC CPU_ERIC_MAX CPU_REDIS CPU_REDIS_MAX < <(
    echo "$figures" | awk -F: -v eric=",$(IFS=,; echo "${NODE_PIDS[*]}")," \
      -v redis=",$(IFS=,; echo "${REDIS_PIDS[*]}")," '
      $1 == "self" { load = $2 }
      index(eric, "," $1 ",") { e += $2; if ($2 > em) em = $2 }
      index(redis, "," $1 ",") { r += $2; if ($2 > rm) rm = $2 }
      END { printf "%.1f %.1f %.1f %.1f %.1f\n", load, e, em, r, rm }')
}

declare -A RESULT

# Runs every scenario $REPEAT times on setup $1 with $2 nodes, on fresh
# servers; keeps the medians in RESULT.
measure() {
  local setup="$1" nodes="$2" scenario r col
  start_setup "$setup" "$nodes"
  for scenario in $SCENARIOS; do
    declare -A runs=()
    for r in $(seq "$REPEAT"); do
      run_once "$scenario"
      runs[value]+=" $VALUE" runs[seconds]+=" $MEASURED" runs[load]+=" $CPU_LOAD" runs[eric]+=" $CPU_ERIC"
      runs[eric_max]+=" $CPU_ERIC_MAX" runs[redis]+=" $CPU_REDIS" runs[redis_max]+=" $CPU_REDIS_MAX"
      log "$scenario, $setup, $nodes node(s), run $r: $VALUE/s; CPU % of a core:" \
        "load $CPU_LOAD, eric $CPU_ERIC (max $CPU_ERIC_MAX), redis $CPU_REDIS (max $CPU_REDIS_MAX)"
    done
    for col in value seconds load eric eric_max redis redis_max; do
      # shellcheck disable=SC2086 # the runs' figures, one word each
      RESULT["$setup/$nodes/$scenario/$col"]="$(median ${runs[$col]})"
    done
  done
  stop_all
}

# ---------------------------------------------------------------- table

scenario_label() {
  case "$1" in
    publish) echo "publish, $PUBLISH_CHANNELS channels x 1 stream, $PUBLISH_MESSAGES msgs" ;;
    fanout) echo "fan-out, $FANOUT_STREAMS streams x $FANOUT_MESSAGES msgs, 1 channel" ;;
    fanout-channels)
      echo "fan-out, $FANOUT_STREAMS streams x $FANOUT_MESSAGES msgs, $FANOUT_CHANNELS channels" ;;
  esac
}

scenario_unit() {
  case "$1" in
    publish) echo messages/s ;;
    *) echo deliveries/s ;;
  esac
}

print_table() {
  local setup nodes scenario label k
  printf '%-12s %5s  %-48s %10s %-12s %6s | %6s %15s %15s %6s\n' setup nodes scenario figure unit \
    seconds load "eric (max)" "redis (max)" total
  for setup in $SETUPS; do
    if [ "$setup" = single ]; then label="one Redis"; else label="cluster x3"; fi
    for nodes in $NODES; do
      for scenario in $SCENARIOS; do
        k="$setup/$nodes/$scenario"
        [ -n "${RESULT[$k/value]:-}" ] || continue
        awk -v setup="$label" -v nodes="$nodes" -v name="$(scenario_label "$scenario")" \
          -v unit="$(scenario_unit "$scenario")" -v value="${RESULT[$k/value]}" \
          -v seconds="${RESULT[$k/seconds]}" \
          -v load="${RESULT[$k/load]}" -v eric="${RESULT[$k/eric]}" \
          -v eric_max="${RESULT[$k/eric_max]}" -v redis="${RESULT[$k/redis]}" \
          -v redis_max="${RESULT[$k/redis_max]}" 'BEGIN {
          printf "%-12s %5s  %-48s %10.0f %-12s %6.2f | %6.1f %15s %15s %6.1f\n", setup, nodes, name,
            value, unit, seconds, load, sprintf("%.1f (%.1f)", eric, eric_max),
            sprintf("%.1f (%.1f)", redis, redis_max), load + eric + redis
        }'
      done
    done
  done
}

# ---------------------------------------------------------------- main

ensure_deps
raise_file_limit $((FANOUT_STREAMS + PUBLISH_CHANNELS + 4096))
build_eric
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
log "load average before: $LOAD_BEFORE"
for setup in $SETUPS; do
  for nodes in $NODES; do
    measure "$setup" "$nodes"
  done
done

cat <<EOF
eric scale-out, $(date -u +%Y-%m-%dT%H:%MZ)
machine: $(machine); load average (1, 5, 15 min) before $LOAD_BEFORE, after $(cut -d' ' -f1-3 /proc/loadavg)
eric $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'), redis $(redis-server --version | sed 's/.* v=\([^ ]*\).*/\1/'); one Redis: one redis-server; cluster x3: three primaries, no replicas
median of $REPEAT run(s); seconds: the measured part, from the first publish to the last delivery
CPU over the measured part, in % of one core ($(nproc) cores: $(($(nproc) * 100)) %): load = eric load; eric, redis = summed over their processes, the busiest in brackets (read in clock ticks of $((1000 / $(getconf CLK_TCK))) ms: coarse over a short measured part)
EOF
print_table
