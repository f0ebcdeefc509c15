# Sourced by the benchmark scripts that run one server at a time
# (cpu_share.sh, instructions.sh):
#
#   bench_workdir DIEM_BINARY SCHEMA      (PG_URL set before)
#
# sets OUT, a temporary directory with an empty run/ for the servers to
# start in (so that they run on their defaults plus the environment, not
# on config/diem.toml), removed on exit; PID, the server running now,
# which is killed and awaited on exit however the script ends (a server
# left behind would hold its port and load the next benchmark); and
# imports ../shared's corpus into SCHEMA.
bench_workdir() {
    local diem=$1 schema=$2 corpus
    OUT=$(mktemp -d)
    mkdir -p "$OUT/run"
    PID=
    trap bench_cleanup EXIT
    corpus=$(cd ../shared/data/hitokoto-sentences && pwd)
    (cd "$OUT/run" && DIEM_POSTGRES__URL=$PG_URL DIEM_POSTGRES__SCHEMA=$schema "$diem" import "$corpus") >&2
}

bench_cleanup() {
    if [ -n "${PID:-}" ]; then
        kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
    fi
    rm -rf "$OUT"
}
