# Shared by scripts/bench.sh and scripts/ab.sh (sourced, not run): the
# relay flags that lift the rate limits, starting and stopping relays by
# PID, and one `hush bench` run appended to $RUNS_FILE. Needs BIN (the
# directory holding hush-relay and hush), OUT and RUNS_FILE.

# Lift the per-connection and per-address frame and byte rates and the registration
# quota: every bench identity registers from 127.0.0.1.
LIFT=(--rate-per-sec 1000000 --rate-burst 1000000 --ip-rate-burst 0 --registration-burst 0
      --byte-rate-per-sec 0 --ip-byte-rate-burst 0)

PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

wait_http() { # PORT: until /healthz answers, at most 10 s
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$1/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "relay on port $1 did not come up" >&2
  return 1
}

# start_relay PORT STORE [EXTRA...]: sets RPID. STORE is redb, memory or a
# redis:// URL.
start_relay() {
  local port=$1 store=$2; shift 2
  local args=(--listen "127.0.0.1:$port" "${LIFT[@]}")
  case $store in
    redis://*) args+=(--redis "$store") ;;
    *) args+=(--store "$store" --data-dir "$(mktemp -d "${TMPDIR:-/tmp}/hush-bench-data.XXXXXX")") ;;
  esac
  RUST_LOG=warn "$BIN/hush-relay" "${args[@]}" "$@" >"$OUT/relay-$port.log" 2>&1 &
  RPID=$!
  PIDS+=("$RPID")
  wait_http "$port"
}

stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# bench ROW STORE RELAY_URLS RELAY_PIDS [FLAGS...]: one run, appended to runs.jsonl.
bench() {
  local row=$1 store=$2 urls=$3 pids=$4; shift 4
  local line
  line=$(timeout 600 "$BIN/hush" bench --relay "$urls" --relay-pid "$pids" --json "$@")
  jq -c --arg row "$row" --arg store "$store" '. + {row: $row, store: $store}' <<<"$line" \
    | tee -a "$RUNS_FILE"
}

