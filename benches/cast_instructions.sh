#!/usr/bin/env bash
# The actor layer's cast row in user-space instructions per message
# (issue 30's "cast row before/after"): examples/cast.rs under callgrind,
# raw (ractor alone) against counted (started by a supervisor, sent
# through a counting handle), each the difference of a run of 2·N and a
# run of N messages, so the start and the exit cancel out. Instructions,
# not time: the host's noise (±15 %) is larger than the difference.
#
#   benches/cast_instructions.sh [N]      (default 100000)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
. scripts/services.sh
ensure_tools valgrind:valgrind
cargo build -q --release --example cast
CAST=$PWD/target/release/examples/cast
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
total() { # mode n → instructions of the whole run
    valgrind --tool=callgrind --callgrind-out-file="$OUT/cg" "$CAST" "$1" "$2" 2>&1 \
        | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
echo "# $(date -u +%FT%TZ) $(nproc) cores; $(valgrind --version); N=$N"
echo "| mode | instructions / message |"
echo "|---|---|"
declare -A per
for mode in raw counted; do
    one=$(total "$mode" "$N")
    two=$(total "$mode" $((2 * N)))
    per[$mode]=$(( (two - one) / N ))
    echo "| $mode | ${per[$mode]} |"
done
awk -v r="${per[raw]}" -v c="${per[counted]}" 'BEGIN { printf "counted / raw: %.3f (%+.1f %%)\n", c / r, (c / r - 1) * 100 }'
