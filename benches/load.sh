#!/usr/bin/env bash
# Load benchmark: diem against the ceiling of this machine, in one run.
#
#   benches/load.sh [SECONDS_PER_RUN]      (default 10)
#
# 1. builds release binaries (diem and examples/ceiling.rs);
# 2. runs the ceiling: a minimal hyper 1 server answering a fixed body;
# 3. runs diem against the real PostgreSQL and Redis with the corpus of
#    ../shared/data/hitokoto-sentences, in three modes: limiter on (127.0.0.1
#    trusted, a distinct X-Forwarded-For per request: every request checked,
#    none refused), limiter off, and reads per request from PostgreSQL;
# 4. drives each with the same wrk settings (2 threads, 64 and 256
#    connections) on /hitokoto/v2/?encode=json and /hitokoto/v2/;
# 5. prints one table: requests/s, p50, p99, p99.9, peak RSS, CPU seconds
#    of the server, and throughput as a ratio of the ceiling.
# Access logging is off in every diem mode (log filter `warn`), as it would
# be in any high-rate deployment; docs/benchmarks.md gives its cost.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
CONNS=${CONNS:-"64 256"}
PORT=18180
. scripts/services.sh
ensure_services
if ! command -v wrk >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null \
        || { echo "error: wrk is not installed (apt-get install wrk)" >&2; exit 1; }
fi
cargo build -q --release --bin diem --example ceiling
DIEM=target/release/diem
CEILING=target/release/examples/ceiling
PG_URL=${DIEM_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
SCHEMA=bench_load
OUT=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$OUT"' EXIT

DIEM_POSTGRES__URL=$PG_URL DIEM_POSTGRES__SCHEMA=$SCHEMA "$DIEM" import ../shared/data/hitokoto-sentences >&2
TCK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

wait_port() {
    for _ in $(seq 1 200); do
        curl -sf -o /dev/null "http://127.0.0.1:$PORT/hitokoto/v2/" && return 0
        sleep 0.05
    done
    echo "error: server on $PORT did not answer" >&2
    return 1
}

# run_mode NAME -- command...
run_mode() {
    local name=$1; shift
    "$@" >"$OUT/$name.log" 2>&1 &
    local pid=$!
    wait_port
    sleep 1
    for conns in $CONNS; do
        for path in "/hitokoto/v2/?encode=json" "/hitokoto/v2/"; do
            local before after
            before=$(cpu_ticks $pid)
            wrk -t2 -c"$conns" -d"${SECS}s" --timeout 10s -s benches/wrk.lua "http://127.0.0.1:$PORT" -- "$path" \
                >"$OUT/wrk.txt" 2>&1
            after=$(cpu_ticks $pid)
            local result
            result=$(grep '^RESULT' "$OUT/wrk.txt" || echo "RESULT rps=0")
            echo "$name $conns $path $result cpu_s=$(awk -v a="$after" -v b="$before" -v t="$TCK" 'BEGIN{printf "%.1f", (a-b)/t}')" >>"$OUT/results"
        done
    done
    local hwm
    hwm=$(awk '/VmHWM/{print $2}' "/proc/$pid/status")
    echo "$name $hwm" >>"$OUT/rss"
    kill -TERM $pid; wait $pid 2>/dev/null || true
}

diem_env=(env DIEM_HTTP__ADDR=127.0.0.1:$PORT DIEM_POSTGRES__URL=$PG_URL DIEM_POSTGRES__SCHEMA=$SCHEMA
    DIEM_REDIS__KEY_PREFIX=bench: DIEM_LOG__FILTER=warn DIEM_CONTROL__SOCKET=$OUT/diem.sock)
run_mode ceiling "$CEILING" --addr 127.0.0.1:$PORT --layout multi
run_mode limiter_on "${diem_env[@]}" DIEM_LIMITER__TRUSTED_PROXIES=127.0.0.1 "$DIEM"
run_mode limiter_off "${diem_env[@]}" DIEM_LIMITER__ENABLED=false "$DIEM"
run_mode pg_query "${diem_env[@]}" DIEM_LIMITER__ENABLED=false DIEM_POSTGRES__READS=query "$DIEM"

echo "# $(date -u +%FT%TZ) $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; wrk -t2 -d${SECS}s; load $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$OUT/results" "$OUT/rss" <<'PY'
import sys
rows = []
for line in open(sys.argv[1]):
    parts = line.split()
    mode, conns, path = parts[0], int(parts[1]), parts[2]
    kv = dict(p.split("=", 1) for p in parts[4:])
    rows.append((mode, conns, path, kv))
rss = {l.split()[0]: int(l.split()[1]) for l in open(sys.argv[2])}
ceiling = {(c, p): float(kv["rps"]) for m, c, p, kv in rows if m == "ceiling"}
print(f"| mode | conns | path | req/s | p50 ms | p99 ms | p99.9 ms | non-2xx | peak RSS MiB | server CPU s | × ceiling |")
print(f"|---|---|---|---|---|---|---|---|---|---|---|")
for m, c, p, kv in rows:
    rps = float(kv.get("rps", 0))
    ratio = rps / ceiling[(c, p)] if ceiling.get((c, p)) else 0
    print(f"| {m} | {c} | `{p}` | {rps:,.0f} | {kv.get('p50_ms')} | {kv.get('p99_ms')} | {kv.get('p999_ms')} | "
          f"{int(kv.get('non2xx', 0)) + int(kv.get('socket_errors', 0))} | {rss.get(m, 0)/1024:.1f} | {kv.get('cpu_s')} | {ratio:.2f} |")
PY
