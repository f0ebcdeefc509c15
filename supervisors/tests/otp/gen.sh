#!/bin/sh
# Regenerate expected/<name>.trace for every scenarios/<name>.sup with real
# Erlang/OTP, and expected/OTP_VERSION with the release that printed them.
# Each scenario runs RUNS times (default 3) and the runs must agree; a
# mismatch (nondeterminism) is reported and makes the script fail.
# The conformance test (supervisors/tests/otp_conformance.rs) compares the
# crate's traces with these. One command: supervisors/tests/otp/gen.sh
set -e
HERE=$(cd "$(dirname "$0")" && pwd)
RUNS=${RUNS:-3}
command -v erlc >/dev/null || { echo "erlc is missing: apt-get install -y erlang-base erlang-dev" >&2; exit 2; }
BUILD=${SUP_TRACE_BUILD:-$(dirname "$(mktemp -u)")/sup_trace_build}
mkdir -p "$BUILD" "$HERE/expected"
erlc -o "$BUILD" "$HERE/sup_trace.erl"
fail=0
for f in "$HERE"/scenarios/*.sup; do
  name=$(basename "$f" .sup)
  out="$HERE/expected/$name.trace"
  SUP_TRACE_BUILD="$BUILD" "$HERE/run.sh" "$f" > "$out.tmp"
  i=1
  while [ $i -lt "$RUNS" ]; do
    SUP_TRACE_BUILD="$BUILD" "$HERE/run.sh" "$f" > "$out.chk"
    if ! cmp -s "$out.tmp" "$out.chk"; then
      echo "NONDETERMINISTIC: $name"; diff "$out.tmp" "$out.chk" || true; fail=1
    fi
    i=$((i+1))
  done
  rm -f "$out.chk"
  mv "$out.tmp" "$out"
  echo "ok $name ($(wc -l < "$out") lines)"
done
erl -noshell -eval 'io:format("OTP ~s, erts ~s~n", [erlang:system_info(otp_release), erlang:system_info(version)]), halt().' > "$HERE/expected/OTP_VERSION"
exit $fail
