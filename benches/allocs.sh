#!/usr/bin/env bash
# Heap allocations per request (issue 13, lead 4), counted exactly by
# uprobes on the entry points of the allocator the binaries link, jemalloc
# (`_rjem_malloc`/`_rjem_mallocx`, `_rjem_realloc`/`_rjem_rallocx`,
# `_rjem_calloc`: `perf probe`), for the ceiling and for diem in the load.sh
# modes.
#
#   benches/allocs.sh [SECONDS]     (default 8 s per mode)
#
# Each server runs alone under `wrk -t2 -c64` on `/hitokoto/v2/?encode=json`
# (benches/wrk.lua: a new X-Forwarded-For per request; in the zipf mode,
# addresses drawn as in load.sh's, most of them refused); `perf stat -p`
# counts the probes' hits in the server's threads over the whole wrk run,
# which are divided by the requests wrk completed. The uprobes slow every
# allocation down, so the requests/s here mean nothing; the counts are
# exact (start-up allocations fall outside the counted window).
# Needs root (uprobes).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-8}
. scripts/services.sh
ensure_services
ensure_tools wrk:wrk perf:linux-perf
cargo build -q --release --bin diem --example ceiling
DIEM=$PWD/target/release/diem
CEILING=$PWD/target/release/examples/ceiling
# Rust's allocations reach jemalloc through these (tikv-jemallocator:
# malloc or mallocx by alignment, realloc or rallocx, calloc).
ENTRIES="_rjem_malloc _rjem_mallocx _rjem_realloc _rjem_rallocx _rjem_calloc"
for bin in "$DIEM" "$CEILING"; do
    # Probes of an earlier build would sit at its addresses: start afresh.
    perf probe -q -d "probe_$(basename "$bin"):*" 2>/dev/null || true
    for f in $ENTRIES; do # GROUP:EVENT=FUNC; event names must differ between the binaries
        perf probe -q -x "$bin" --add "probe_$(basename "$bin"):$(basename "$bin")${f#_rjem}=$f" 2>/dev/null || true
    done
done
events() { # the probe events of binary $1
    local name e= f
    name=$(basename "$1")
    for f in $ENTRIES; do e="$e${e:+,}probe_$name:$name${f#_rjem}"; done
    echo "$e"
}
PG_URL=${DIEM_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
SCHEMA=bench_allocs
OUT=$(mktemp -d)
. benches/corpus.sh
PORT=18995
cleanup() {
    [ -n "${PID:-}" ] && kill -9 "$PID" 2>/dev/null || true
    rm -rf "$OUT"
}
trap cleanup EXIT
DIEM_POSTGRES__URL=$PG_URL DIEM_POSTGRES__SCHEMA=$SCHEMA "$DIEM" import "$(bench_corpus "$OUT")" >&2

count() {
    local name=$1 bin=$2; shift 2
    "$@" >"$OUT/server.log" 2>&1 &
    PID=$!
    sleep 3
    perf stat -x, -o "$OUT/stat.txt" -e "$(events "$bin")" -p "$PID" \
        -- sleep $((SECS + 1)) &
    local stat=$!
    sleep 0.5
    local r
    r=$(wrk -t2 -c64 -d"${SECS}s" --timeout 10s -s benches/wrk.lua "http://127.0.0.1:$PORT" \
        -- /hitokoto/v2/?encode=json ${WRK_MODE:-} | grep ^RESULT || true)
    wait "$stat"
    kill -9 "$PID"; wait "$PID" 2>/dev/null || true; PID=
    python3 - "$name" "$r" "$OUT/stat.txt" <<'PY'
import sys
name, result, stat = sys.argv[1], sys.argv[2], sys.argv[3]
req = int(dict(kv.split("=") for kv in result.split()[1:]).get("requests", 0))
hits = {}
for line in open(stat):
    p = line.strip().split(",")
    if len(p) > 2 and p[2].startswith("probe_"):
        kind = p[2].rsplit("_", 1)[1]
        kind = {"mallocx": "malloc", "rallocx": "realloc"}.get(kind, kind)
        hits[kind] = hits.get(kind, 0) + int(p[0])
per = lambda k: f"{hits.get(k, 0) / req:.2f}" if req else "-"
print(f"| {name} | {req:,} | {per('malloc')} | {per('realloc')} | {per('calloc')} |")
PY
}

diem_env=(env DIEM_HTTP__ADDR=127.0.0.1:$PORT DIEM_CONTROL__SOCKET=$OUT/diem.sock DIEM_ADMIN__ADDR=
    DIEM_LOG__FILTER=warn DIEM_POSTGRES__URL=$PG_URL DIEM_POSTGRES__SCHEMA=$SCHEMA DIEM_REDIS__KEY_PREFIX=balloc$$:)
echo "# $(date -u +%FT%TZ) $(nproc) cores; wrk -t2 -c64 -d${SECS}s; uprobes on jemalloc's entry points"
echo
echo "| server | requests | malloc / request | realloc / request | calloc / request |"
echo "|---|---|---|---|---|"
count ceiling "$CEILING" "$CEILING" --addr 127.0.0.1:$PORT
count limiter_off "$DIEM" "${diem_env[@]}" DIEM_LIMITER__ENABLED=false "$DIEM" serve
count limiter_on "$DIEM" "${diem_env[@]}" DIEM_LIMITER__TRUSTED_PROXIES=127.0.0.1 "$DIEM" serve
WRK_MODE=zipf count zipf "$DIEM" "${diem_env[@]}" DIEM_LIMITER__TRUSTED_PROXIES=127.0.0.1 DIEM_REDIS__KEY_PREFIX=ballocz$$: "$DIEM" serve
count pg_query "$DIEM" "${diem_env[@]}" DIEM_LIMITER__ENABLED=false DIEM_POSTGRES__READS=query "$DIEM" serve
