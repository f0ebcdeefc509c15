#!/usr/bin/env bash
# The actor-layer figures of diem and of Erlang/OTP 25, measured in one
# session on this machine, printed side by side with the ratio.
#
#   benches/erlang_side_by_side.sh          # full run (~6 min on 2 cores)
#   QUICK=1 benches/erlang_side_by_side.sh  # shorter criterion and Erlang runs
#
# Runs `cargo bench` for supervisors/benches/supervision.rs and
# benches/actors.rs, then benches/otp/bench.sh (bench.erl: the same
# operations on OTP's own supervisor and gen_server), then reads
# criterion's medians (target/criterion/*/*/new/estimates.json) and the
# Erlang medians and prints one table. Needs erl (apt-get install
# erlang-base erlang-dev, done here when missing and run as root).
set -euo pipefail
cd "$(dirname "$0")/.."
OTP_DIR=${OTP_DIR:-benches/otp}
if ! command -v erl >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq erlang-base erlang-dev >/dev/null
    else
        echo "error: erl not found; install erlang-base and erlang-dev" >&2
        exit 1
    fi
fi
extra=()
[ -n "${QUICK:-}" ] && extra=(--measurement-time 2 --warm-up-time 1)
echo "# $(date -u +%FT%TZ) $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, load $(cut -d' ' -f1-3 /proc/loadavg)"
cargo bench -q -p supervisors --bench supervision -- --noplot "${extra[@]}" >/tmp/diem-bench-supervision.txt 2>&1
cargo bench -q --bench actors -- --noplot "${extra[@]}" >/tmp/diem-bench-actors.txt 2>&1
"$OTP_DIR/bench.sh" "$([ -n "${QUICK:-}" ] && echo quick || echo full)" >/tmp/diem-bench-erlang.txt 2>&1
python3 - /tmp/diem-bench-erlang.txt <<'PY'
import json, re, sys, pathlib
root = pathlib.Path("target/criterion")
def ns(group, name):
    p = root / group / name / "new" / "estimates.json"
    if not p.exists():
        return None
    return json.loads(p.read_text())["median"]["point_estimate"]
erl = {}
section = None
for line in open(sys.argv[1]):
    m = re.match(r"^([a-z]\d?)\) (.*)", line)
    if m:
        section = m.group(1) + ("_tp" if "throughput" in m.group(2) else "")
        continue
    m = re.search(r"median=([\d.]+) (us|calls/s|msgs/s)", line)
    if m and section and section not in erl:
        v = float(m.group(1))
        erl[section] = v * 1000 if m.group(2) == "us" else 1e9 / v
rows = [
    ("call round trip", "call", 1, "b"),
    ("message send (cast), per message", "send", 1, "b3_tp"),
    ("restart: crash -> replacement answers", "restart", 1, "a"),
    ("restart: kill -> replacement answers", "restart_kill", 1, "a2"),
    ("one_for_all restart of 100 children", "one_for_all_100", 1, "d"),
    ("spawn + stop, per actor (100k)", "spawn_stop_100k", 100_000, "c"),
    ("dispatch connection -> worker -> back (handler incl.)", "dispatch", 1, None),
]
def fmt(v):
    if v is None:
        return "—"
    return f"{v/1000:.2f} µs" if v >= 1000 else f"{v:.0f} ns"
print(f"{'benchmark':<54} {'diem multi_thread_2':>20} {'diem current_thread':>20} {'Erlang/OTP 25':>14} {'Erlang ÷ diem (MT)':>19}")
for label, name, per, key in rows:
    mt, ct = ns("multi_thread_2", name), ns("current_thread", name)
    mt = mt / per if mt else None
    ct = ct / per if ct else None
    e = erl.get(key) if key else None
    ratio = f"{e/mt:.2f}×" if (e and mt) else "—"
    print(f"{label:<54} {fmt(mt):>20} {fmt(ct):>20} {fmt(e):>14} {ratio:>19}")
for label, name in [("local limiter decision", "limiter_local"), ("pick, unfiltered", "pick/all"), ("pick, c=a", "pick/c=a"), ("pick, c=a,d,k & length<20", "pick/c=a,d,k&length=20")]:
    print(f"{label:<54} {fmt(ns('sync', name)):>20} {'':>20} {'—':>14} {'—':>19}")
PY
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
