#!/usr/bin/env bash
# Redis's key expiry and the limiter-on tail latency (issue 13, lead 5).
#
#   benches/redis_expiry.sh [SECONDS] [ROUNDS] ["SETTING VALUE" ...]
#   (default 20 s, 2 rounds, settings "hz 10" "hz 100")
#
# One release diem, limiter on, 127.0.0.1 trusted and a new client per
# request (benches/wrk.lua), so Redis creates one key per request and
# expires each an emission interval (10 s) later. For each Redis setting in
# turn (CONFIG SET, interleaved, ROUNDS times over; 25 s between runs so the
# previous run's keys are gone) it prints wrk's figures and the longest
# `expire-cycle` Redis's latency monitor saw. Redis's settings are put back
# at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-20}
ROUNDS=${2:-2}
shift $(($# > 2 ? 2 : $#))
SETTINGS=("$@")
[ ${#SETTINGS[@]} -gt 0 ] || SETTINGS=("hz 10" "hz 100")
. scripts/services.sh
ensure_services
ensure_tools wrk:wrk
cargo build -q --release --bin diem
DIEM=$PWD/target/release/diem
OUT=$(mktemp -d)
PORT=18996
declare -A SAVED
for s in "${SETTINGS[@]}"; do
    k=${s%% *}
    SAVED[$k]=$(redis-cli CONFIG GET "$k" | sed -n 2p)
done
THRESHOLD=$(redis-cli CONFIG GET latency-monitor-threshold | sed -n 2p)
cleanup() {
    [ -n "${PID:-}" ] && kill -9 "$PID" 2>/dev/null || true
    for k in "${!SAVED[@]}"; do redis-cli CONFIG SET "$k" "${SAVED[$k]}" >/dev/null; done
    redis-cli CONFIG SET latency-monitor-threshold "$THRESHOLD" >/dev/null
    rm -rf "$OUT"
}
trap cleanup EXIT
redis-cli CONFIG SET latency-monitor-threshold 1 >/dev/null

echo "# $(date -u +%FT%TZ) $(nproc) cores; wrk -t2 -c64 -d${SECS}s, a new client per request; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| Redis setting | round | requests/s | p50 ms | p99 ms | p99.9 ms | expire-cycle max ms |"
echo "|---|---|---|---|---|---|---|"
for round in $(seq 1 "$ROUNDS"); do
    for s in "${SETTINGS[@]}"; do
        # shellcheck disable=SC2086
        redis-cli CONFIG SET $s >/dev/null
        sleep 25
        redis-cli LATENCY RESET >/dev/null
        env DIEM_HTTP__ADDR=127.0.0.1:$PORT DIEM_CONTROL__SOCKET=$OUT/diem.sock DIEM_ADMIN__ADDR= \
            DIEM_LOG__FILTER=warn DIEM_REDIS__KEY_PREFIX=bexp$round$$: DIEM_LIMITER__TRUSTED_PROXIES=127.0.0.1 \
            "$DIEM" serve >"$OUT/diem.log" 2>&1 &
        PID=$!
        sleep 3
        r=$(wrk -t2 -c64 -d"${SECS}s" --timeout 10s -s benches/wrk.lua "http://127.0.0.1:$PORT" \
            -- /hitokoto/v2/?encode=json | grep ^RESULT || true)
        kill -9 "$PID"; wait "$PID" 2>/dev/null || true; PID=
        cycle=$(redis-cli LATENCY LATEST | paste -sd' ' | grep -o 'expire-cycle [0-9]* [0-9]* [0-9]*' | awk '{print $4}')
        field() { echo "$r" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
        echo "| \`$s\` | $round | $(field rps) | $(field p50_ms) | $(field p99_ms) | $(field p999_ms) | ${cycle:-none} |"
    done
done
