#!/usr/bin/env bash
# The runtime-layout experiment: the minimal hyper server in diem's layout
# (one multi-thread runtime) and in the alternative (one current-thread
# runtime per core, each with its own SO_REUSEPORT listener), each without
# and with one actor hop per request (as diem's worker dispatch), driven
# alike by wrk. Rounds alternate the layouts to spread machine noise.
#
#   benches/layout.sh [SECONDS_PER_RUN] [ROUNDS]     (default 8 s, 3 rounds)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-8}
ROUNDS=${2:-3}
PORT=18190
cargo build -q --release --example ceiling
OUT=$(mktemp)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -f "$OUT"' EXIT
for round in $(seq 1 "$ROUNDS"); do
    for layout in multi per-core; do
        for hop in none actor; do
            target/release/examples/ceiling --addr 127.0.0.1:$PORT --layout $layout --hop $hop 2>/dev/null &
            pid=$!
            sleep 0.5
            r=$(wrk -t2 -c64 -d"${SECS}s" -s benches/wrk.lua "http://127.0.0.1:$PORT" -- / | grep '^RESULT')
            echo "$layout $hop $r" >>"$OUT"
            kill $pid; wait $pid 2>/dev/null || true
        done
    done
done
echo "# $(date -u +%FT%TZ) $(nproc) cores; wrk -t2 -c64 -d${SECS}s, $ROUNDS rounds; medians"
python3 - "$OUT" <<'PY'
import sys, statistics, collections
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    p = line.split()
    kv = dict(x.split("=", 1) for x in p[3:])
    runs[(p[0], p[1])].append(kv)
print("| layout | hop | req/s | p50 ms | p99 ms | p99.9 ms |")
print("|---|---|---|---|---|---|")
for (layout, hop), rs in runs.items():
    med = lambda k: statistics.median(float(r[k]) for r in rs)
    print(f"| {layout} | {hop} | {med('rps'):,.0f} | {med('p50_ms'):.3f} | {med('p99_ms'):.3f} | {med('p999_ms'):.3f} |")
PY
