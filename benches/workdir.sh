# Sourced by the benchmark scripts that run one server at a time
# (cpu_share.sh, instructions.sh):
#
#   bench_workdir DIEM_BINARY SCHEMA      (PG_URL set before)
#   bench_serve NAME SECONDS COMMAND...   (PORT set before)
#
# sets OUT, a temporary directory with an empty run/ for the servers to
# start in (so that they run on their defaults plus the environment, not
# on config/diem.toml), removed on exit; PID, the server running now,
# which is killed and awaited on exit however the script ends (a server
# left behind would hold its port and load the next benchmark); and
# imports the benchmark corpus (benches/corpus.sh) into SCHEMA.
bench_workdir() {
    local diem=$1 schema=$2 corpus
    OUT=$(mktemp -d)
    mkdir -p "$OUT/run"
    PID=
    trap bench_cleanup EXIT
    corpus=$(bench_corpus "$OUT")
    (cd "$OUT/run" && DIEM_POSTGRES__URL=$PG_URL DIEM_POSTGRES__SCHEMA=$schema "$diem" import "$corpus") >&2
}

# Starts COMMAND in $OUT/run (output in $OUT/NAME.log), sets PID, and
# waits up to SECONDS for it to answer on $PORT; exits with the log's tail
# if it does not.
bench_serve() {
    local name=$1 seconds=$2
    shift 2
    (cd "$OUT/run" && exec "$@") >"$OUT/$name.log" 2>&1 &
    PID=$!
    for _ in $(seq 1 $((seconds * 10))); do
        curl -sf -o /dev/null "http://127.0.0.1:$PORT/hitokoto/v2/" && return 0
        sleep 0.1
    done
    tail -5 "$OUT/$name.log" >&2
    echo "error: $name did not answer on $PORT within ${seconds}s" >&2
    exit 1
}

bench_cleanup() {
    if [ -n "${PID:-}" ]; then
        kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
    fi
    rm -rf "$OUT"
}
