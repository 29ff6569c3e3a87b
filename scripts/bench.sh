#!/usr/bin/env bash
# Runs the rows of docs/benchmarks.md with `hush bench` against release
# builds of hush-relay. Every process it starts listens on 127.0.0.1, is
# stopped by its PID, and every run is bounded (`timeout`).
#
# usage: scripts/bench.sh [ROW...]
#   a        100 pairs x 2000 msgs, 256 B, window 32, --no-encrypt (redb, then memory)
#   a-enc    the same, end-to-end encrypted (redb)
#   b        1000 pairs x 200 msgs, window 32, --no-encrypt (redb, memory)
#   d        1 pair, window 1 (unloaded latency): memory 20000 msgs, redb 2000
#   half     100 pairs x 2000 at half of row a's median throughput (needs row a first)
#   c        idle memory: 5000 and 19000 authenticated idle connections (memory store)
#   queued   100,000 queued messages drained by one client (redb, memory)
#   cluster  row a on two relays sharing one redis-server (senders on relay 1,
#            receivers on relay 2), relay and redis CPU reported separately
# Default: all rows, in that order. Results: one JSON object per run in
# $OUT/runs.jsonl (the `hush bench --json` summary plus "row" and "store"),
# and a table in $OUT/summary.txt.
# env: RUNS (3 for a, a-enc, cluster; 1 elsewhere), OUT (bench-results/DATE),
#      PORT (7310), REDIS_PORT (7390), CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
PORT=${PORT:-7310}
REDIS_PORT=${REDIS_PORT:-7390}
OUT=${OUT:-bench-results/$(date -u +%Y%m%d-%H%M%S)}
BIN=${CARGO_TARGET_DIR:-target}/release
ROWS=("$@")
[[ ${#ROWS[@]} -gt 0 ]] || ROWS=(a a-enc b d half c queued cluster)

cargo build --release --locked --quiet -p hush-relay -p hush-cli
mkdir -p "$OUT"
RUNS_FILE=$OUT/runs.jsonl
touch "$RUNS_FILE"

# shellcheck source=scripts/bench-common.sh
source scripts/bench-common.sh

# single ROW STORE RUNS "EXTRA RELAY FLAGS" BENCH FLAGS...
single() {
  local row=$1 store=$2 runs=$3 extra=$4; shift 4
  local i
  for i in $(seq "$runs"); do
    # shellcheck disable=SC2086
    start_relay "$PORT" "$store" $extra
    bench "$row" "$store" "ws://127.0.0.1:$PORT" "$RPID" "$@"
    stop "$RPID"
  done
}

median_throughput() { # ROW STORE
  jq -s --arg row "$1" --arg store "$2" \
    '[.[] | select(.row == $row and .store == $store) | .throughput] | sort
     | if length == 0 then empty else .[(length - 1) / 2 | floor] end' "$RUNS_FILE"
}

A=(--pairs 100 --messages 2000 --window 32 --no-encrypt)
for row in "${ROWS[@]}"; do
  case $row in
    a) single a redb "$RUNS" "" "${A[@]}"; single a memory "$RUNS" "" "${A[@]}" ;;
    a-enc) single a-enc redb "$RUNS" "" --pairs 100 --messages 2000 --window 32 --encrypt ;;
    b)
      for store in redb memory; do
        single b "$store" 1 "--max-connections-per-ip 5000" \
          --pairs 1000 --messages 200 --window 32 --no-encrypt
      done ;;
    d)
      single d memory 1 "" --pairs 1 --messages 20000 --window 1 --no-encrypt
      single d redb 1 "" --pairs 1 --messages 2000 --window 1 --no-encrypt ;;
    half)
      for store in memory redb; do
        peak=$(median_throughput a "$store")
        [[ -n $peak ]] || { echo "row half needs row a ($store) first" >&2; exit 2; }
        rate=$(jq -n --argjson p "$peak" '$p / 2 | floor')
        single half "$store" 1 "" --pairs 100 --messages 2000 --rate "$rate" --no-encrypt
      done ;;
    c)
      for n in 5000 19000; do
        single c memory 1 "--max-connections-per-ip 20000 --max-connections 60000" \
          --pairs 1 --messages 200 --idle-connections "$n" --no-encrypt
      done ;;
    queued)
      single queued redb 1 "--mailbox-max-envelopes 200000" \
        --pairs 1 --messages 100000 --window 256 --queued --no-encrypt
      single queued memory 1 "--mailbox-max-envelopes 200000" \
        --pairs 1 --messages 100000 --window 256 --queued --no-encrypt ;;
    cluster)
      redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
        >"$OUT/redis.log" 2>&1 &
      REDIS_PID=$!
      PIDS+=("$REDIS_PID")
      for _ in $(seq 100); do
        redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
        sleep 0.1
      done
      for i in $(seq "$RUNS"); do
        redis-cli -p "$REDIS_PORT" flushall >/dev/null
        start_relay "$PORT" "redis://127.0.0.1:$REDIS_PORT"; R1=$RPID
        start_relay "$((PORT + 1))" "redis://127.0.0.1:$REDIS_PORT"; R2=$RPID
        redis-cli -p "$REDIS_PORT" config resetstat >/dev/null
        bench cluster redis "ws://127.0.0.1:$PORT,ws://127.0.0.1:$((PORT + 1))" "$R1,$R2" \
          --store-pid "$REDIS_PID" "${A[@]}"
        # Which commands the run cost Redis (setup and warm-up included).
        redis-cli -p "$REDIS_PORT" info commandstats >"$OUT/redis-commandstats-$i.txt"
        stop "$R1"; stop "$R2"
      done
      stop "$REDIS_PID" ;;
    *) echo "unknown row $row" >&2; exit 2 ;;
  esac
done

jq -r -s '
  ["row", "store", "msgs/s", "p50", "p99", "p999", "max ms", "relay us/msg", "store us/msg",
   "relay util", "RSS KiB", "KiB/idle conn", "drain ms", "loadgen us/msg", "other util",
   "lost", "dup"],
  (.[] | [.row, .store, (.throughput | floor), .p50_ms, .p99_ms, .p999_ms, .max_ms,
          .server_us_per_msg, .store_us_per_msg, .server_util, .server_rss_kib,
          .server_kib_per_idle_conn, .drain_ms, .loadgen_us_per_msg, .other_util,
          .lost, .duplicated])
  | map(if type == "number" then (. * 1000 | round / 1000) else . end) | @tsv' \
  "$RUNS_FILE" | column -t -s $'\t' | tee "$OUT/summary.txt"
