#!/bin/sh
# Run one scenario with real Erlang/OTP and print its canonical trace.
# usage: supervisors/tests/otp/run.sh supervisors/tests/otp/scenarios/01_one_for_one_basic.sup
# Needs erlc and erl (Debian: apt-get install -y erlang-base erlang-dev).
set -e
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${SUP_TRACE_BUILD:-$(dirname "$(mktemp -u)")/sup_trace_build}
mkdir -p "$BUILD"
if [ ! -f "$BUILD/sup_trace.beam" ] || [ "$HERE/sup_trace.erl" -nt "$BUILD/sup_trace.beam" ]; then
  erlc -o "$BUILD" "$HERE/sup_trace.erl"
fi
exec erl -noshell -pa "$BUILD" -run sup_trace main "$1"
