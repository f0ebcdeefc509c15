# Sourced by the benchmark scripts:
#
#   bench_corpus DIR
#
# prints the sentences bundle to import: $DIEM_BENCH_CORPUS when it is set
# (e.g. the real hitokoto sentences-bundle, docs/operations.md), else a
# synthetic bundle of the real one's size and length distribution, written
# into DIR/corpus by benches/corpus.py (same seed, same bundle).
bench_corpus() {
    if [ -n "${DIEM_BENCH_CORPUS:-}" ]; then
        (cd "$DIEM_BENCH_CORPUS" && pwd)
        return
    fi
    python3 benches/corpus.py "$1/corpus" >&2
    echo "$1/corpus"
}
