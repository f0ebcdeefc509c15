#!/usr/bin/env bash
# Instructions per request, counted by valgrind's callgrind: a figure the
# host's noise does not move (issue 13). Throughput on this shared machine
# swings ±10–15 % between runs; the instruction count of the same binary
# under the same load repeats within about 1 %, so a change to the request
# path's user-space work can be seen here even when it is below the noise
# of benches/load.sh. It says nothing about the kernel's share (system
# calls, wake-ups), which callgrind does not see.
#
#   benches/instructions.sh [SECONDS] [MODE ...]
#   (default 10 s; modes ceiling hop off on)
#
# MODE: ceiling (examples/ceiling.rs), hop (the ceiling plus one ractor
# message to a worker actor and back per request, as diem's dispatch),
# off (diem, limiter off), on (diem, limiter on, a new client per request),
# zipf (limiter on, the Zipf mix of benches/wrk.lua), cluster (limiter on,
# a new client per request, on a Redis Cluster of three primaries and three
# replicas the script starts on ports 17301-17306, benches/redis_cluster.sh),
# replica (limiter on, a new client per request, on a Redis primary with a
# replica the script starts on ports 17311-17312, benches/redis_replica.sh),
# wait (the same with redis.wait_replicas = 1: WAIT after every batch).
# BASELINE=/path/to/diem adds base_off, base_on and base_zipf (and
# base_cluster, base_replica on request): that binary in the same modes.
#
# Each server runs under `valgrind --tool=callgrind`; after 200 warm-up
# requests the counters are zeroed, the server idles 3 s (its background
# work: timers, health checks), then `wrk -t1 -c8` drives it for SECONDS on
# /hitokoto/v2/?encode=json. The table gives user-space instructions per
# request with the idle rate subtracted, the share in memcpy/memmove (moves
# of large futures and messages show there), the requests served, and the
# share of the load's limiter decisions Redis made (the rest were local:
# compare Redis modes only between runs where Redis decided).
# TOP=N also prints each mode's N costliest functions (self cost); KEEP=DIR
# keeps each mode's callgrind file of the load as DIR/MODE.callgrind (for
# callgrind_annotate --inclusive=yes --tree=caller).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
shift $(($# > 0 ? 1 : 0))
MODES=("$@")
[ ${#MODES[@]} -gt 0 ] || MODES=(ceiling hop off on)
if [ -n "${BASELINE:-}" ] && [ $# -eq 0 ]; then MODES+=(base_off base_on); fi
. scripts/services.sh
ensure_services
ensure_tools wrk:wrk valgrind:valgrind
cargo build -q --release --bin diem --example ceiling
DIEM=$PWD/target/release/diem
CEILING=$PWD/target/release/examples/ceiling
PG_URL=${DIEM_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
SCHEMA=bench_instructions
PORT=18994
URL=http://127.0.0.1:$PORT
. benches/corpus.sh
. benches/workdir.sh
bench_workdir "$DIEM" "$SCHEMA"
if [[ " ${MODES[*]} " == *cluster* ]]; then
    . benches/redis_cluster.sh
    trap 'redis_cluster_stop; bench_cleanup' EXIT
    redis_cluster_start "$OUT" 17301
fi
if [[ " ${MODES[*]} " == *replica* || " ${MODES[*]} " == *" wait "* ]]; then
    . benches/redis_replica.sh
    trap 'redis_replica_stop; if declare -F redis_cluster_stop >/dev/null; then redis_cluster_stop; fi; bench_cleanup' EXIT
    redis_replica_start "$OUT" 17311
fi

# The self cost per function of a callgrind file, and the total (the
# functions' names merged across the source files their inlined code
# comes from).
SELF_COST=$(cat <<'PY'
import re, sys, collections
names, cost, fn, after_call = {}, collections.Counter(), None, False
for line in open(sys.argv[1]):
    if line.startswith(("fn=", "cfn=")):
        m = re.match(r"c?fn=\((\d+)\)(?: (.*))?", line.rstrip("\n"))
        if m.group(2):
            names[m.group(1)] = m.group(2)
        if line.startswith("fn="):
            fn = names.get(m.group(1))
    elif line.startswith("calls="):
        after_call = True
    elif line[:1].isdigit() or line[:1] in "+-*":
        if after_call:
            after_call = False  # the inclusive cost of a call, not self cost
        else:
            parts = line.split()
            if fn and len(parts) >= 2:
                cost[fn] += int(parts[1])
for name, c in cost.most_common():
    print(c, name)
PY
)

# The limiter's decision counters of the server on $PORT, by store (the
# requests of the load are the difference of two readings): a mode that
# means Redis to decide but whose Redis was withdrawn (a health check
# that timed out under valgrind's slowdown) measures the local limiter.
decisions() {
    curl -sf "$URL/metrics" | grep '^diem_limiter_decisions_total{' || true
}

# measure NAME WRK_MODE [VAR=VALUE ...] PROGRAM [ARG ...]
measure() {
    local name=$1 wrk_mode=$2 vars=()
    # Each run's own files: a mode measured twice in one invocation must
    # not read the callgrind dumps of its first run.
    RUNS=$((${RUNS:-0} + 1))
    local run="$name-$RUNS"
    shift 2
    while [[ $1 == *=* ]]; do vars+=("$1"); shift; done
    # valgrind runs the server itself, so the environment is set around it
    # (an `env` inside would be the program callgrind measured).
    bench_serve "$run" 60 env "${vars[@]}" valgrind --tool=callgrind --callgrind-out-file="$OUT/$run.%p" "$@"
    for _ in $(seq 1 200); do curl -sf -o /dev/null "$URL/hitokoto/v2/?encode=json" || true; done
    decisions >"$OUT/$run.before"
    callgrind_control -z "$PID" >/dev/null 2>&1
    sleep 3
    callgrind_control -d idle "$PID" >/dev/null 2>&1
    callgrind_control -z "$PID" >/dev/null 2>&1
    wrk -t1 -c8 -d"${SECS}s" --timeout 10s -s benches/wrk.lua "$URL" -- "/hitokoto/v2/?encode=json" $wrk_mode \
        >"$OUT/wrk.txt" 2>&1
    callgrind_control -d load "$PID" >/dev/null 2>&1
    decisions >"$OUT/$run.after"
    kill "$PID"
    wait "$PID" 2>/dev/null || true
    PID=
    local result idle load
    result=$(grep '^RESULT' "$OUT/wrk.txt" || echo "RESULT requests=0")
    idle=$(grep -l '^desc: Trigger: .*idle' "$OUT/$run".* | head -1)
    load=$(grep -l '^desc: Trigger: .*load' "$OUT/$run".* | head -1)
    python3 -c "$SELF_COST" "$idle" >"$OUT/$run.idle"
    python3 -c "$SELF_COST" "$load" >"$OUT/$run.self"
    if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp "$load" "$KEEP/$run.callgrind" && cp "$OUT/$run.log" "$KEEP/$run.log"; fi
    python3 - "$name" "$SECS" "$result" "$OUT/$run.idle" "$OUT/$run.self" "${TOP:-0}" "$OUT/$run.before" "$OUT/$run.after" <<'PY'
import sys
name, secs, result, idle_f, self_f, top, before_f, after_f = sys.argv[1:]
def decided(f):
    by = {"redis": 0, "local": 0}
    for line in open(f):
        if line.startswith("diem_limiter_decisions_total{"):
            store = line.split('backend="', 1)[1].split('"', 1)[0]
            by[store] = by.get(store, 0) + float(line.rsplit(" ", 1)[1])
    return by
before, after = decided(before_f), decided(after_f)
redis = after["redis"] - before["redis"]
local = after["local"] - before["local"]
by_redis = f"{100.0 * redis / (redis + local):.0f} %" if redis + local else "–"
if local:
    print(f"warning: {name}: {local:.0f} of the load's decisions were local (Redis withdrawn):"
          " this run does not measure the Redis path", file=sys.stderr)
fields = dict(kv.split("=") for kv in result.split()[1:])
requests = int(fields.get("requests", 0)) or 1
total = lambda f: sum(int(l.split(" ", 1)[0]) for l in open(f))
idle_per_s = total(idle_f) / 3.0
load = [(int(c), n.strip()) for c, n in (l.split(" ", 1) for l in open(self_f))]
load_total = sum(c for c, _ in load)
net = load_total - idle_per_s * float(secs)
moves = sum(c for c, n in load if "memcpy" in n or "memmove" in n)
print(f"| {name} | {net / requests:,.0f} | {100.0 * moves / load_total:.1f} % | {idle_per_s / 1e6:.2f} M | {requests:,} | {by_redis} |")
for c, n in load[: int(top)]:
    print(f"|   | {c / requests:,.0f} | {100.0 * c / load_total:.1f} % | {n[:100]} | | |")
PY
}

echo "# $(date -u +%FT%TZ) $(nproc) cores; valgrind $(valgrind --version | sed 's/valgrind-//'); wrk -t1 -c8 -d${SECS}s under callgrind"
echo "| mode | instructions / request | in memcpy | idle instructions / s | requests | decided by Redis |"
echo "|---|---|---|---|---|---|"
env_common=(DIEM_HTTP__ADDR=127.0.0.1:$PORT DIEM_POSTGRES__URL=$PG_URL DIEM_POSTGRES__SCHEMA=$SCHEMA
    DIEM_LOG__FILTER=warn DIEM_ADMIN__ADDR= DIEM_CONTROL__SOCKET=$OUT/diem.sock DIEM_LIMITER__TRUSTED_PROXIES=127.0.0.1
    # valgrind runs the server ~50× slower: with the default 250 ms a first
    # connection or a health check can time out, and Redis is withdrawn for
    # the whole run (until 2026-12-08 the standalone modes often measured
    # the local limiter: "decided by Redis" said 0 %).
    DIEM_REDIS__COMMAND_TIMEOUT=2s)
for mode in "${MODES[@]}"; do
    bin=$DIEM
    case $mode in base_*) bin=${BASELINE:?BASELINE=/path/to/diem is needed for $mode} ;; esac
    vars=("${env_common[@]}" DIEM_REDIS__KEY_PREFIX=ins$$$mode:)
    case $mode in
        ceiling) measure ceiling "" "$CEILING" --addr 127.0.0.1:$PORT --layout multi ;;
        hop) measure hop "" "$CEILING" --addr 127.0.0.1:$PORT --layout multi --hop actor ;;
        off | base_off) measure "$mode" "" "${vars[@]}" DIEM_LIMITER__ENABLED=false "$bin" ;;
        on | base_on) measure "$mode" "" "${vars[@]}" "$bin" ;;
        zipf | base_zipf) measure "$mode" zipf "${vars[@]}" "$bin" ;;
        cluster | base_cluster) measure "$mode" "" "${vars[@]}" DIEM_REDIS__URL="$REDIS_CLUSTER_URL" "$bin" ;;
        replica | base_replica) measure "$mode" "" "${vars[@]}" DIEM_REDIS__URL="$REDIS_REPLICA_URL" "$bin" ;;
        wait) measure wait "" "${vars[@]}" DIEM_REDIS__URL="$REDIS_REPLICA_URL" DIEM_REDIS__WAIT_REPLICAS=1 "$bin" ;;
        *) echo "error: unknown mode $mode (ceiling, hop, off, on, zipf, cluster, replica, wait, base_off, base_on, base_zipf, base_cluster, base_replica)" >&2; exit 2 ;;
    esac
done
