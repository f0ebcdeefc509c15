#!/usr/bin/env bash
# Live upgrades under load, with measured figures.
#
#   benches/upgrade.sh [UPGRADES] [SECONDS] [ROUNDS]     (default 3 20 2)
#
# One diem (release build, the 10,032-sentence corpus from PostgreSQL,
# limiter off, http.shutdown_delay 2s) serves two wrk loads at once: 48
# keep-alive connections, and 16 connections that send `Connection: close`
# (a new TCP connection per request, so connections keep arriving in the
# accept queue throughout). Each round runs the loads for SECONDS without an
# upgrade, then for SECONDS with UPGRADES `diem ctl upgrade`s evenly spaced,
# alternating between two copies of the binary (a different file each
# time). It prints the requests and errors by kind (wrk: connect, read,
# write, timeout, non-2xx), the p99 with and without upgrades, and each
# upgrade's phases (start, init, hand-over, from the reply) and how long
# the old process took to drain and exit.
set -euo pipefail
cd "$(dirname "$0")/.."
UPGRADES=${1:-3}
SECS=${2:-20}
ROUNDS=${3:-2}
. scripts/services.sh
ensure_services
ensure_tools wrk:wrk
cargo build -q --release --bin diem
PG_URL=${DIEM_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
SCHEMA=bench_upgrade
OUT=$(mktemp -d)
. benches/corpus.sh
PORT=18390
SOCK=$OUT/diem.sock
cp target/release/diem "$OUT/diem-a"
cp target/release/diem "$OUT/diem-b"
cleanup() {
    local pid
    pid=$("$OUT/diem-a" ctl --socket "$SOCK" --json ping 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])' 2>/dev/null || true)
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    kill "${FIRST:-}" 2>/dev/null || true
    rm -rf "$OUT"
}
trap cleanup EXIT
DIEM_POSTGRES__URL=$PG_URL DIEM_POSTGRES__SCHEMA=$SCHEMA target/release/diem import "$(bench_corpus "$OUT")" >&2
(cd "$OUT" && exec env DIEM_HTTP__ADDR=127.0.0.1:$PORT DIEM_POSTGRES__URL=$PG_URL DIEM_POSTGRES__SCHEMA=$SCHEMA \
    DIEM_LIMITER__ENABLED=false DIEM_LOG__FILTER=warn,diem::upgrade=info DIEM_CONTROL__SOCKET=$SOCK \
    DIEM_HTTP__SHUTDOWN_DELAY=2s "$OUT/diem-a" serve) >>"$OUT/diem.log" 2>&1 &
FIRST=$!
for _ in $(seq 1 200); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/readyz" && break; sleep 0.05; done

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# alive PID: running and not a zombie.
alive() { [ -r "/proc/$1/stat" ] && ! awk '{exit ($3=="Z"||$3=="X")?0:1}' "/proc/$1/stat"; }
# load NAME: both wrk runs in the background, results in $OUT/NAME.{keep,close}
load() {
    wrk -t1 -c48 -d"${SECS}s" --timeout 10s -s benches/wrk.lua "http://127.0.0.1:$PORT" -- "/hitokoto/v2/?encode=json" >"$OUT/$1.keep" 2>&1 &
    WRK_KEEP=$!
    wrk -t1 -c16 -d"${SECS}s" --timeout 10s -s benches/wrk.lua "http://127.0.0.1:$PORT" -- "/hitokoto/v2/?encode=json" close >"$OUT/$1.close" 2>&1 &
    WRK_CLOSE=$!
}
finish() { wait "$WRK_KEEP" || true; wait "$WRK_CLOSE" || true; }

n=0
for round in $(seq 1 "$ROUNDS"); do
    load "base$round"
    finish
    load "upg$round"
    gap=$(python3 -c "print($SECS / ($UPGRADES + 1))")
    for _ in $(seq 1 "$UPGRADES"); do
        sleep "$gap"
        n=$((n + 1))
        binary=$OUT/diem-a; [ $((n % 2)) = 1 ] && binary=$OUT/diem-b
        "$OUT/diem-a" ctl --socket "$SOCK" --json upgrade --binary "$binary" >"$OUT/up$n.json" 2>"$OUT/up$n.err" || true
        replied=$(now_ms)
        old=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["old"]["pid"])' "$OUT/up$n.json" 2>/dev/null || echo 0)
        while [ "$old" != 0 ] && alive "$old"; do sleep 0.01; done
        echo $(( $(now_ms) - replied )) >"$OUT/up$n.drain"
    done
    finish
done

field() { sed -n "s/.*[ ^]$2=\([^ ]*\).*/\1/p" "$1" | head -1; }
echo "# $(date -u +%FT%TZ) $(nproc) cores; wrk 48 keep-alive + 16 new-connection clients, ${SECS} s per run, $UPGRADES upgrades per upgrade run; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| run | requests | non-2xx | connect | read | write | timeout | p50 ms (keep-alive / new conn) | p99 ms (keep-alive / new conn) | p99.9 ms (keep-alive / new conn) |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for round in $(seq 1 "$ROUNDS"); do
    for run in "base$round" "upg$round"; do
        k=$OUT/$run.keep; c=$OUT/$run.close
        sum() { echo $(( $(field "$k" "$1") + $(field "$c" "$1") )); }
        label="round $round, no upgrade"; [ "${run#upg}" != "$run" ] && label="round $round, $UPGRADES upgrades"
        echo "| $label | $(sum requests) | $(sum non2xx) | $(sum connect) | $(sum read) | $(sum write) | $(sum timeout) | $(field "$k" p50_ms) / $(field "$c" p50_ms) | $(field "$k" p99_ms) / $(field "$c" p99_ms) | $(field "$k" p999_ms) / $(field "$c" p999_ms) |"
    done
done
echo
echo "| upgrade | old pid -> new pid | start ms | init ms | hand-over ms | total ms | old process drained and exited after (ms) |"
echo "|---|---|---|---|---|---|---|"
for i in $(seq 1 "$n"); do
    if [ -s "$OUT/up$i.json" ]; then
        python3 - "$OUT/up$i.json" "$(cat "$OUT/up$i.drain")" "$i" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
p = r["phases"]
print(f"| {sys.argv[3]} | {r['old']['pid']} -> {r['new']['pid']} | {p['start_ms']} | {p['init_ms']} | {p['handover_ms']} | {r['total_ms']} | {sys.argv[2]} |")
PY
    else
        echo "| $i | failed: $(head -1 "$OUT/up$i.err") | | | | | |"
    fi
done
