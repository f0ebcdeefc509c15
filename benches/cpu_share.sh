#!/usr/bin/env bash
# Where the machine's cores go under load: per process (wrk, the server,
# Redis), the kernel's softirq share and what stays idle (issue 13).
#
#   benches/cpu_share.sh [SECONDS] [ROUNDS] [MODE ...]
#   (default 8 s, 3 rounds, modes ceiling off on zipf)
#
# MODE: ceiling (examples/ceiling.rs), off (diem, limiter off), on (diem,
# limiter on, a new client per request), zipf (limiter on, the Zipf mix of
# benches/wrk.lua). BINARIES="/path/a /path/b" runs each diem mode once per
# binary (default: this tree's release build), interleaved, so builds
# compare in one run; every other round runs in reverse order. wrk -t2
# -c$CONNS (default 64) on /hitokoto/v2/?encode=json with benches/wrk.lua,
# as benches/load.sh.
#
# For each run it samples /proc/stat and the processes' CPU ticks over the
# middle of the run (from 2 s in to 2 s before the end) and Redis's
# commandstats (reset before each run): SET and EVALSHA calls and the µs
# Redis spent in them. It prints one line per run, then the medians per
# mode and binary. Shares are of the whole machine: 100 % per core.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-8}
ROUNDS=${2:-3}
shift $(($# > 2 ? 2 : $#))
MODES=("$@")
[ ${#MODES[@]} -gt 0 ] || MODES=(ceiling off on zipf)
CONNS=${CONNS:-64}
[ "$SECS" -ge 6 ] || { echo "error: SECONDS must be at least 6 (2 s are left out at each end)" >&2; exit 2; }
. scripts/services.sh
ensure_services
ensure_tools wrk:wrk
cargo build -q --release --bin diem --example ceiling
BINARIES=${BINARIES:-$PWD/target/release/diem}
CEILING=$PWD/target/release/examples/ceiling
PG_URL=${DIEM_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
SCHEMA=bench_cpu
PORT=18997
. benches/corpus.sh
. benches/workdir.sh
bench_workdir "$(set -- $BINARIES; echo "$1")" "$SCHEMA"
REDIS_PID=$(pgrep -xo redis-server) || { echo "error: no redis-server process to measure" >&2; exit 1; }

ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
stat_line() { head -1 /proc/stat; }

# run NAME BINARY MODE
run() {
    local name=$1 bin=$2 mode=$3 wrk_mode=
    local env=(DIEM_HTTP__ADDR=127.0.0.1:$PORT DIEM_POSTGRES__URL=$PG_URL DIEM_POSTGRES__SCHEMA=$SCHEMA
        DIEM_REDIS__KEY_PREFIX=cpu$$r$RANDOM: DIEM_LOG__FILTER=warn DIEM_ADMIN__ADDR=
        DIEM_CONTROL__SOCKET=$OUT/diem.sock DIEM_LIMITER__TRUSTED_PROXIES=127.0.0.1)
    local cmd
    case $mode in
        ceiling) cmd=("$CEILING" --addr 127.0.0.1:$PORT --layout multi) ;;
        off) cmd=(env "${env[@]}" DIEM_LIMITER__ENABLED=false "$bin") ;;
        on) cmd=(env "${env[@]}" "$bin") ;;
        zipf) cmd=(env "${env[@]}" "$bin"); wrk_mode=zipf ;;
        *) echo "error: unknown mode $mode (ceiling, off, on, zipf)" >&2; exit 2 ;;
    esac
    bench_serve "$name" 10 "${cmd[@]}"
    sleep 1
    redis-cli CONFIG RESETSTAT >/dev/null
    wrk -t2 -c"$CONNS" -d"${SECS}s" --timeout 10s -s benches/wrk.lua "http://127.0.0.1:$PORT" \
        -- "/hitokoto/v2/?encode=json" $wrk_mode >"$OUT/wrk.txt" 2>&1 &
    local wrk_pid=$! window=$((SECS - 4))
    sleep 2
    local s0 w0 d0 r0 s1 w1 d1 r1
    s0=$(stat_line); w0=$(ticks $wrk_pid); d0=$(ticks $PID); r0=$(ticks "$REDIS_PID")
    sleep "$window"
    s1=$(stat_line); w1=$(ticks $wrk_pid); d1=$(ticks $PID); r1=$(ticks "$REDIS_PID")
    wait $wrk_pid
    local cmd
    cmd=$(redis-cli INFO commandstats | tr -d '\r' | awk -F'[:,=]' '
        /^cmdstat_set:/ {set=$3; setus=$5}
        /^cmdstat_evalsha:/ {ev=$3; evus=$5}
        END {printf "set_calls=%d set_us=%d evalsha_calls=%d evalsha_us=%d", set, setus, ev, evus}')
    local result
    result=$(grep '^RESULT' "$OUT/wrk.txt" || echo "RESULT rps=0")
    python3 - "$name" "$mode" "$window" "$(getconf CLK_TCK)" "$s0" "$s1" $((w1 - w0)) $((d1 - d0)) $((r1 - r0)) "$result" "$cmd" <<'PY' >>"$OUT/lines"
import sys
name, mode, window, tck, s0, s1, w, d, r, result, cmd = sys.argv[1:]
a = list(map(int, s0.split()[1:9])); b = list(map(int, s1.split()[1:9]))
delta = [y - x for x, y in zip(a, b)]
total = sum(delta) or 1
cores = total / (float(window) * int(tck))
share = lambda v: 100.0 * v / total * cores
proc = lambda t: 100.0 * int(t) / (float(window) * int(tck))
fields = dict(kv.split("=") for kv in (result.split()[1:] + cmd.split()))
print(f"{name} {mode} rps={fields.get('rps', 0)} p99_ms={fields.get('p99_ms', 0)} "
      f"wrk={proc(w):.0f} server={proc(d):.0f} redis={proc(r):.0f} "
      f"user={share(delta[0] + delta[1]):.0f} system={share(delta[2]):.0f} softirq={share(delta[6]):.0f} "
      f"idle={share(delta[3] + delta[4]):.0f} steal={share(delta[7]):.0f} "
      f"set_calls={fields.get('set_calls', 0)} set_us={fields.get('set_us', 0)} "
      f"evalsha_calls={fields.get('evalsha_calls', 0)} evalsha_us={fields.get('evalsha_us', 0)}")
PY
    tail -1 "$OUT/lines"
    kill "$PID"; wait "$PID" 2>/dev/null || true
    PID=
}

echo "# $(date -u +%FT%TZ) $(nproc) cores; wrk -t2 -c$CONNS -d${SECS}s; shares of the whole machine over the middle $((SECS - 4)) s; load $(cut -d' ' -f1-3 /proc/loadavg)"
# Every other round runs the modes, and the binaries within a mode, in
# reverse order, as benches/load.sh does: a run's place in the sequence was
# worth 3-4 % by itself there.
for round in $(seq 1 "$ROUNDS"); do
    modes=("${MODES[@]}")
    bins=$BINARIES
    if [ $((round % 2)) -eq 0 ]; then
        mapfile -t modes < <(printf '%s\n' "${MODES[@]}" | tac)
        bins=$(printf '%s\n' $BINARIES | tac | tr '\n' ' ')
    fi
    for mode in "${modes[@]}"; do
        if [ "$mode" = ceiling ]; then
            run ceiling "$CEILING" ceiling
        else
            for bin in $bins; do
                run "$(basename "$bin")" "$bin" "$mode"
            done
        fi
    done
done
python3 - "$OUT/lines" <<'PY'
import collections, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    f = line.split()
    runs[(f[1], f[0])].append(dict(kv.split("=") for kv in f[2:]))
cols = ["rps", "p99_ms", "wrk", "server", "redis", "softirq", "idle", "steal", "set_calls", "evalsha_calls", "evalsha_us"]
print()
print("| mode | server | " + " | ".join(c.replace("_", " ") for c in cols) + " |")
print("|---|---|" + "---|" * len(cols))
for (mode, name), rs in runs.items():
    med = lambda c: statistics.median(float(r[c]) for r in rs)
    cells = []
    for c in cols:
        v = med(c)
        cells.append(f"{v:.3f}" if c == "p99_ms" else f"{v:,.0f}" + (" %" if c in ("wrk", "server", "redis", "softirq", "idle", "steal") else ""))
    print(f"| {mode} | {name} | " + " | ".join(cells) + " |")
PY
