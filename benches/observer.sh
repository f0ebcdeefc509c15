#!/usr/bin/env bash
# The observer's cost, measured.
#
#   benches/observer.sh [SECONDS] [ROUNDS]     (default 10 s, 3 rounds)
#
# One release diem (the 10,032-sentence corpus, limiter off) under wrk load
# (2 threads, 64 connections, /hitokoto/v2/?encode=json), with 0 and with 5
# observer viewers (event streams held open by curl), and idle with 0 and 5
# viewers, interleaved ROUNDS times: requests/s and diem's CPU seconds per
# run, medians. Then the latency
# from `ctl kill` of a worker to the restart's frame on a stream, 100 kills
# without load and 100 under load (benches/observer_latency.py).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
ROUNDS=${2:-3}
. scripts/services.sh
ensure_services
ensure_tools wrk:wrk curl:curl
cargo build -q --release --bin diem
DIEM=$PWD/target/release/diem
PG_URL=${DIEM_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
OUT=$(mktemp -d)
PORT=18397
ADMIN=127.0.0.1:18398
SOCK=$OUT/diem.sock
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$OUT"' EXIT
. benches/corpus.sh
CORPUS=$(bench_corpus "$OUT")
(cd "$OUT" && DIEM_POSTGRES__URL=$PG_URL DIEM_POSTGRES__SCHEMA=bench_observer "$DIEM" import "$CORPUS") >&2
(cd "$OUT" && exec env DIEM_HTTP__ADDR=127.0.0.1:$PORT DIEM_ADMIN__ADDR=$ADMIN DIEM_POSTGRES__URL=$PG_URL \
    DIEM_POSTGRES__SCHEMA=bench_observer DIEM_LIMITER__ENABLED=false DIEM_LOG__FILTER=warn \
    DIEM_CONTROL__SOCKET=$SOCK "$DIEM" serve) >"$OUT/diem.log" 2>&1 &
PID=$!
for _ in $(seq 1 200); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/readyz" && break; sleep 0.05; done
TCK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }

run() { # load|idle VIEWERS
    local viewers=() before after rps=0
    for _ in $(seq 1 "$2"); do curl -sN -o /dev/null "http://$ADMIN/observer/events" & viewers+=($!); done
    sleep 1
    before=$(cpu_ticks)
    if [ "$1" = load ]; then
        wrk -t2 -c64 -d"${SECS}s" -s benches/wrk.lua "http://127.0.0.1:$PORT" -- "/hitokoto/v2/?encode=json" >"$OUT/wrk.txt" 2>&1
        rps=$(sed -n 's/.*rps=\([0-9]*\).*/\1/p' "$OUT/wrk.txt")
    else
        sleep "$SECS"
    fi
    after=$(cpu_ticks)
    for v in "${viewers[@]}"; do kill "$v" 2>/dev/null || true; done
    echo "$1 $2 $rps $(awk -v a="$after" -v b="$before" -v t="$TCK" 'BEGIN{printf "%.2f", (a-b)/t}')" >>"$OUT/runs"
}
for _ in $(seq 1 "$ROUNDS"); do run load 0; run load 5; run idle 0; run idle 5; done

echo "# $(date -u +%FT%TZ) $(nproc) cores; wrk -t2 -c64 -d${SECS}s; medians of $ROUNDS rounds, interleaved; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
python3 - "$OUT/runs" "$SECS" <<'PY'
import sys, statistics, collections
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    kind, v, rps, cpu = line.split()
    runs[(kind, int(v))].append((float(rps), float(cpu)))
secs = float(sys.argv[2])
print("| load | viewers | req/s | diem CPU s | CPU µs per request |")
print("|---|---|---|---|---|")
for (kind, v) in sorted(runs):
    rps = statistics.median(r for r, _ in runs[(kind, v)])
    cpu = statistics.median(c for _, c in runs[(kind, v)])
    per = f"{cpu * 1e6 / (rps * secs):.1f}" if rps > 0 else ""
    print(f"| {kind} | {v} | {rps:,.0f} | {cpu:.2f} | {per} |")
PY
echo
echo "kill -> frame on the stream, no load:    $(python3 benches/observer_latency.py "$ADMIN" "$SOCK" 100)"
wrk -t2 -c64 -d60s -s benches/wrk.lua "http://127.0.0.1:$PORT" -- "/hitokoto/v2/?encode=json" >/dev/null 2>&1 &
WRK=$!
sleep 1
echo "kill -> frame on the stream, under load: $(python3 benches/observer_latency.py "$ADMIN" "$SOCK" 100)"
kill $WRK 2>/dev/null || true
