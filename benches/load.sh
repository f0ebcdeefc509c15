#!/usr/bin/env bash
# Load benchmark: diem against the ceiling of this machine, in one run.
#
#   benches/load.sh [SECONDS_PER_RUN] [ROUNDS]      (default 10 s, 3 rounds)
#
# MODES selects and orders the modes (default: ceiling limiter_on zipf
# limiter_off pg_query); BASELINE=/path/to/an/older/diem adds the modes
# baseline_on, baseline_zipf, baseline_off and baseline_pg (that binary in
# the same four modes) to compare two builds in one run; CONNS sets the
# connection counts (default "64 256"), PATHS the paths (default both).
# percore_off and percore_on (not in the default list) run diem in the
# per-core layout: one copy per core of one runtime thread each, on one
# socket (benches/percore.py); their CPU and RSS are the copies' sums.
#
# 1. builds release binaries (diem and examples/ceiling.rs);
# 2. runs the ceiling: a minimal hyper 1 server answering a fixed body;
# 3. runs diem against the real PostgreSQL and Redis with the corpus of
#    benchmark corpus (benches/corpus.sh), in three modes: limiter on (127.0.0.1
#    trusted, a distinct X-Forwarded-For per request: every request checked,
#    none refused), zipf (limiter on, client addresses drawn from a Zipf
#    distribution over 100,000 addresses: heavy clients refused, a long tail
#    new), limiter off, and reads per request from PostgreSQL;
# 4. drives each with the same wrk settings (2 threads, 64 and 256
#    connections) on /hitokoto/v2/?encode=json and /hitokoto/v2/;
# 5. prints one table: requests/s, p50, p99, p99.9, peak RSS, CPU seconds
#    of the server, and throughput as a ratio of the ceiling.
# The modes run in turn, ROUNDS times over, and the table gives each figure's
# median over the rounds: the machine's noise (other tenants of the host)
# then hits every mode alike, so the ratios hold. Every other round runs
# them in reverse order: a mode's place in the sequence was worth 3-4 %
# (2026-12-02: the same two builds measured -4 % and +4 % against each
# other with their order swapped).
# Access logging is off in every diem mode (log filter `warn`), as it would
# be in any high-rate deployment; docs/benchmarks.md gives its cost.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
ROUNDS=${2:-3}
CONNS=${CONNS:-"64 256"}
MODES=${MODES:-"ceiling limiter_on zipf limiter_off pg_query"}
PATHS=${PATHS:-"/hitokoto/v2/?encode=json /hitokoto/v2/"}
BASELINE=${BASELINE:-}
if [ -n "$BASELINE" ] && [[ " $MODES " != *" baseline_"* ]]; then
    MODES="$MODES baseline_on baseline_zipf baseline_off baseline_pg"
fi
PORT=18180
. scripts/services.sh
ensure_services
if ! command -v wrk >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null \
        || { echo "error: wrk is not installed (apt-get install wrk)" >&2; exit 1; }
fi
cargo build -q --release --bin diem --example ceiling
DIEM=$PWD/target/release/diem
CEILING=$PWD/target/release/examples/ceiling
PERCORE=$PWD/benches/percore.py
PG_URL=${DIEM_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
SCHEMA=bench_load
OUT=$(mktemp -d)
mkdir -p "$OUT/run"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$OUT"' EXIT

# From the empty directory too: the import, like every diem below, runs on
# the built-in defaults plus the environment, not on config/diem.toml.
. benches/corpus.sh
CORPUS=$(bench_corpus "$OUT")
(cd "$OUT/run" && DIEM_POSTGRES__URL=$PG_URL DIEM_POSTGRES__SCHEMA=$SCHEMA "$DIEM" import "$CORPUS") >&2
TCK=$(getconf CLK_TCK)
# A server's processes: itself and its children (the percore modes' diem
# copies under benches/percore.py).
server_pids() { echo "$1" $(pgrep -P "$1"); }
# CPU ticks of a server, summed over its processes.
cpu_ticks() {
    local p t=0
    for p in $(server_pids "$1"); do
        t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
    done
    echo "$t"
}

wait_port() {
    for _ in $(seq 1 200); do
        curl -sf -o /dev/null "http://127.0.0.1:$PORT/hitokoto/v2/" && return 0
        sleep 0.05
    done
    echo "error: server on $PORT did not answer" >&2
    return 1
}

# run_mode NAME -- command...   (WRK_MODE: the script's client mode)
run_mode() {
    local name=$1; shift
    # From an empty directory: every diem runs on its built-in defaults plus
    # the environment below (an older build would not read today's
    # config/diem.toml).
    (cd "$OUT/run" && exec "$@") >"$OUT/$name.log" 2>&1 &
    local pid=$!
    wait_port || { tail -5 "$OUT/$name.log" >&2; exit 1; }
    sleep 1
    for conns in $CONNS; do
        for path in $PATHS; do
            local before after
            before=$(cpu_ticks $pid)
            wrk -t2 -c"$conns" -d"${SECS}s" --timeout 10s -s benches/wrk.lua "http://127.0.0.1:$PORT" -- "$path" ${WRK_MODE:-} \
                >"$OUT/wrk.txt" 2>&1
            after=$(cpu_ticks $pid)
            local result
            result=$(grep '^RESULT' "$OUT/wrk.txt" || echo "RESULT rps=0")
            echo "$name $conns $path $result cpu_s=$(awk -v a="$after" -v b="$before" -v t="$TCK" 'BEGIN{printf "%.1f", (a-b)/t}')" >>"$OUT/results"
        done
    done
    local hwm
    # Peak RSS, summed over the server's processes.
    hwm=$(for p in $(server_pids $pid); do awk '/VmHWM/{print $2}' "/proc/$p/status"; done | awk '{s += $1} END {print s}')
    echo "$name $hwm" >>"$OUT/rss"
    kill -TERM $pid; wait $pid 2>/dev/null || true
}

for round in $(seq 1 "$ROUNDS"); do
    # A fresh key prefix per round: every client is new to Redis, as in the
    # first round (keys of earlier rounds would still be held).
    diem_env=(env DIEM_HTTP__ADDR=127.0.0.1:$PORT DIEM_POSTGRES__URL=$PG_URL DIEM_POSTGRES__SCHEMA=$SCHEMA
        DIEM_REDIS__KEY_PREFIX=bench$round$$: DIEM_LOG__FILTER=warn DIEM_CONTROL__SOCKET=$OUT/diem.sock)
    order=$MODES
    if [ $((round % 2)) -eq 0 ]; then
        order=$(echo "$MODES" | tr ' ' '\n' | tac | tr '\n' ' ')
    fi
    for mode in $order; do
        case $mode in
            ceiling) run_mode ceiling "$CEILING" --addr 127.0.0.1:$PORT --layout multi ;;
            limiter_on) run_mode limiter_on "${diem_env[@]}" DIEM_LIMITER__TRUSTED_PROXIES=127.0.0.1 "$DIEM" ;;
            zipf) WRK_MODE=zipf run_mode zipf "${diem_env[@]}" DIEM_REDIS__KEY_PREFIX=benchz$round$$: DIEM_LIMITER__TRUSTED_PROXIES=127.0.0.1 "$DIEM" ;;
            baseline_on) run_mode baseline_on "${diem_env[@]}" DIEM_REDIS__KEY_PREFIX=benchb$round$$: DIEM_LIMITER__TRUSTED_PROXIES=127.0.0.1 "$BASELINE" ;;
            baseline_zipf) WRK_MODE=zipf run_mode baseline_zipf "${diem_env[@]}" DIEM_REDIS__KEY_PREFIX=benchbz$round$$: DIEM_LIMITER__TRUSTED_PROXIES=127.0.0.1 "$BASELINE" ;;
            baseline_pg) run_mode baseline_pg "${diem_env[@]}" DIEM_LIMITER__ENABLED=false DIEM_POSTGRES__READS=query "$BASELINE" ;;
            limiter_off) run_mode limiter_off "${diem_env[@]}" DIEM_LIMITER__ENABLED=false "$DIEM" ;;
            # The copies share no admin port (off) and each has its own control socket.
            percore_off) run_mode percore_off "${diem_env[@]}" DIEM_LIMITER__ENABLED=false DIEM_ADMIN__ADDR= CTL=$OUT/pc.sock \
                "$PERCORE" $PORT "$(nproc)" -- "$DIEM" ;;
            percore_on) run_mode percore_on "${diem_env[@]}" DIEM_REDIS__KEY_PREFIX=benchp$round$$: DIEM_LIMITER__TRUSTED_PROXIES=127.0.0.1 \
                DIEM_ADMIN__ADDR= CTL=$OUT/pc.sock "$PERCORE" $PORT "$(nproc)" -- "$DIEM" ;;
            pg_query) run_mode pg_query "${diem_env[@]}" DIEM_LIMITER__ENABLED=false DIEM_POSTGRES__READS=query "$DIEM" ;;
            baseline_off) run_mode baseline_off "${diem_env[@]}" DIEM_LIMITER__ENABLED=false "$BASELINE" ;;
            *) echo "error: unknown mode $mode" >&2; exit 2 ;;
        esac
    done
done

echo "# $(date -u +%FT%TZ) $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; wrk -t2 -d${SECS}s; medians of $ROUNDS rounds; load $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$OUT/results" "$OUT/rss" <<'PY'
import sys, statistics, collections
runs = collections.defaultdict(list)
order = []
for line in open(sys.argv[1]):
    parts = line.split()
    key = (parts[0], int(parts[1]), parts[2])
    if key not in runs:
        order.append(key)
    runs[key].append(dict(p.split("=", 1) for p in parts[4:]))
rss = collections.defaultdict(list)
for l in open(sys.argv[2]):
    rss[l.split()[0]].append(int(l.split()[1]))
med = lambda rs, k: statistics.median(float(r.get(k, 0)) for r in rs)
ceiling = {(c, p): med(rs, "rps") for (m, c, p), rs in runs.items() if m == "ceiling"}
print("| mode | conns | path | req/s | p50 ms | p99 ms | p99.9 ms | non-2xx | allowed / refused (zipf) | peak RSS MiB | server CPU s | × ceiling |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for key in order:
    m, c, p = key
    rs = runs[key]
    rps = med(rs, "rps")
    zipf = "zipf" in m
    refused = sum(int(r.get("non2xx", 0)) for r in rs)
    total = sum(int(r.get("requests", 0)) for r in rs)
    # In the zipf modes, 429s are the limiter at work, not errors.
    bad = sum(int(r.get("socket_errors", 0)) for r in rs) + (0 if zipf else refused)
    split = f"{total - refused:,} / {refused:,}" if zipf else ""
    ratio = rps / ceiling[(c, p)] if ceiling.get((c, p)) else 0
    print(f"| {m} | {c} | `{p}` | {rps:,.0f} | {med(rs, 'p50_ms'):.3f} | {med(rs, 'p99_ms'):.3f} | "
          f"{med(rs, 'p999_ms'):.3f} | {bad} | {split} | {max(rss[m])/1024:.1f} | {med(rs, 'cpu_s'):.1f} | {ratio:.2f} |")
PY
