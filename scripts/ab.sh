#!/usr/bin/env bash
# A/B of two builds on row a of docs/benchmarks.md (100 pairs x 2000
# messages of 256 B, window 32, --no-encrypt), alternating the builds run by
# run so that drift of the machine hits both alike. Each build's own `hush`
# drives its own `hush-relay`.
#
# usage: scripts/ab.sh DIR_A DIR_B [STORE...]
#   DIR_A, DIR_B  directories holding release builds of hush-relay and hush
#   STORE         redb and/or memory (default: both)
# env: RUNS (pairs of runs per store, default 3), OUT (bench-results/ab-DATE),
#      PORT (7310).
# Results: one JSON object per run in $OUT/runs.jsonl (with "build" and
# "store"), and medians per build and store in $OUT/summary.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

[[ $# -ge 2 ]] || { sed -n '2,13p' "$0" >&2; exit 2; }
DIR_A=$1 DIR_B=$2; shift 2
STORES=("$@")
[[ ${#STORES[@]} -gt 0 ]] || STORES=(redb memory)
RUNS=${RUNS:-3}
PORT=${PORT:-7310}
OUT=${OUT:-bench-results/ab-$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
RUNS_FILE=$OUT/runs.jsonl
touch "$RUNS_FILE"

# shellcheck source=scripts/bench-common.sh
source scripts/bench-common.sh

A=(--pairs 100 --messages 2000 --window 32 --no-encrypt)
for store in "${STORES[@]}"; do
  for i in $(seq "$RUNS"); do
    # Alternate which build goes first, too.
    order=(a b); (( i % 2 == 0 )) && order=(b a)
    for build in "${order[@]}"; do
      if [[ $build == a ]]; then BIN=$DIR_A; else BIN=$DIR_B; fi
      start_relay "$PORT" "$store"
      bench "$build" "$store" "ws://127.0.0.1:$PORT" "$RPID" "${A[@]}" >/dev/null
      stop "$RPID"
    done
  done
done

jq -r -s '
  ["build", "store", "runs", "msgs/s", "relay us/msg", "p50 ms", "p99 ms"],
  (group_by([.store, .row])[]
   | def med(f): map(f) | sort | .[(length - 1) / 2 | floor];
     [.[0].row, .[0].store, length, (med(.throughput) | floor),
      (med(.server_us_per_msg) * 100 | round / 100), med(.p50_ms), med(.p99_ms)])
  | @tsv' "$RUNS_FILE" | column -t -s $'\t' | tee "$OUT/summary.txt"
