#!/usr/bin/env bash
# The cluster behind a real load balancer, under load, with measured figures.
#
#   benches/cluster.sh [STEADY_SECONDS]     (default 60)
#
# Three diem nodes (release build, the 10,032-sentence corpus, limiter on with
# 127.0.0.1 trusted and a distinct X-Forwarded-For per request) on loopback
# ports form one cluster; HAProxy in front balances round-robin, checks
# /readyz every 200 ms (fall 2, rise 2) and retries failed GETs elsewhere
# (retry-on all-retryable-errors, option redispatch). wrk drives it at full
# load (2 threads, 64 connections) through:
#
#   1. a steady run of STEADY_SECONDS: any member seen down or suspect by
#      another is a false detection;
#   2. the scenario: SIGTERM n2 (then started again), SIGKILL n3 (then
#      started again), SIGSTOP n2 for 8 s (then SIGCONT).
#
# It prints the requests and failures by cause, the time each node took to
# be seen down and up again by n1, and whether cluster membership and
# HAProxy's view agreed after each change.
#
# TLS=1 benches/cluster.sh runs the members with mutual TLS (a CA and a
# member certificate made with openssl, as docs/cluster.md shows).
set -euo pipefail
cd "$(dirname "$0")/.."
STEADY=${1:-60}
. scripts/services.sh
ensure_services
ensure_tools wrk:wrk haproxy:haproxy
cargo build -q --release --bin diem
DIEM=$PWD/target/release/diem
PG_URL=${DIEM_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
SCHEMA=bench_cluster
OUT=$(mktemp -d)
. benches/corpus.sh
PIDS=()
cleanup() {
    for p in "${PIDS[@]}" ${HAPROXY_PID:-}; do kill -CONT "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
    rm -rf "$OUT"
}
trap cleanup EXIT
TLS_ENV=()
if [ "${TLS:-0}" = 1 ]; then
    (cd "$OUT" &&
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=diem-cluster-ca \
            -keyout cluster-ca.key -out cluster-ca.crt 2>/dev/null &&
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=diem-cluster \
            -keyout cluster.key -out cluster.csr 2>/dev/null &&
        printf 'subjectAltName=DNS:diem-cluster\nextendedKeyUsage=serverAuth,clientAuth\n' >cluster.ext &&
        openssl x509 -req -in cluster.csr -CA cluster-ca.crt -CAkey cluster-ca.key -CAcreateserial -days 1 \
            -extfile cluster.ext -out cluster.crt 2>/dev/null)
    TLS_ENV=(DIEM_CLUSTER__TLS_CERT=$OUT/cluster.crt DIEM_CLUSTER__TLS_KEY=$OUT/cluster.key
        DIEM_CLUSTER__TLS_CA=$OUT/cluster-ca.crt)
fi
DIEM_POSTGRES__URL=$PG_URL DIEM_POSTGRES__SCHEMA=$SCHEMA "$DIEM" import "$(bench_corpus "$OUT")" >&2

http_port() { echo $((18280 + $1)); }
cluster_port() { echo $((14380 + $1)); }
start_node() {
    local i=$1 seed=""
    [ "$i" != 1 ] && seed=127.0.0.1:$(cluster_port 1)
    (cd "$OUT" && exec env DIEM_HTTP__ADDR=127.0.0.1:$(http_port "$i") DIEM_NODE__NAME=n$i \
        DIEM_POSTGRES__URL=$PG_URL DIEM_POSTGRES__SCHEMA=$SCHEMA DIEM_REDIS__KEY_PREFIX=benchcl$$: \
        DIEM_LIMITER__TRUSTED_PROXIES=127.0.0.1 DIEM_LOG__FILTER=warn,diem::cluster=info \
        DIEM_CONTROL__SOCKET=$OUT/n$i.sock DIEM_HTTP__SHUTDOWN_DELAY=1s DIEM_ADMIN__ADDR=127.0.0.1:$((18480 + i)) \
        DIEM_CLUSTER__ENABLED=true DIEM_CLUSTER__LISTEN=127.0.0.1:$(cluster_port "$i") \
        DIEM_CLUSTER__SEEDS=$seed DIEM_CLUSTER__COOKIE=bench-cluster-cookie-0123 ${TLS_ENV[@]+"${TLS_ENV[@]}"} \
        "$DIEM" serve) >>"$OUT/n$i.log" 2>&1 &
    PIDS[$i]=$!
}
# state OBSERVER MEMBER: the member's state as OBSERVER sees it.
state() {
    "$DIEM" ctl --socket "$OUT/n$1.sock" --json cluster 2>/dev/null | python3 -c '
import json, sys
try:
    ms = {m["name"]: m["state"] for m in json.load(sys.stdin)["members"]}
except Exception:
    ms = {}
print(ms.get(sys.argv[1], "absent"))' "n$2"
}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# wait_state OBSERVER MEMBER STATE TIMEOUT_S: prints the ms it took, or "timeout".
wait_state() {
    local start; start=$(now_ms)
    while [ "$(state "$1" "$2")" != "$3" ]; do
        if [ $(( $(now_ms) - start )) -gt $(( $4 * 1000 )) ]; then echo timeout; return; fi
        sleep 0.02
    done
    echo $(( $(now_ms) - start ))
}
# haproxy_state MEMBER: up or down in HAProxy's view.
haproxy_state() {
    echo "show servers state be" | python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.stdin.buffer.read())
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk: break
    data += chunk
for line in data.decode().splitlines():
    f = line.split()
    if len(f) > 5 and f[1] == "be" and f[3] == sys.argv[2]:
        print("up" if f[5] == "2" else "down")' "$OUT/haproxy.sock" "n$1"
}
agree() {
    # membership (as n1 sees it; n1 itself is up) against HAProxy, for every node
    local out="" m h
    for i in 2 3; do
        m=$(state 1 "$i"); h=$(haproxy_state "$i")
        [ "$m" = "$h" ] || out="$out n$i:member=$m,haproxy=$h"
    done
    echo "${out:-yes}"
}

for i in 1 2 3; do start_node "$i"; done
for i in 1 2 3; do
    for _ in $(seq 1 200); do curl -sf -o /dev/null "http://127.0.0.1:$(http_port "$i")/readyz" && break; sleep 0.05; done
done
for i in 2 3; do wait_state 1 "$i" up 20 >/dev/null; done
HAPORT=18280
cat >"$OUT/haproxy.cfg" <<CFG
global
  maxconn 4096
  stats socket $OUT/haproxy.sock mode 600 level admin
defaults
  mode http
  timeout connect 1s
  timeout client 30s
  timeout server 30s
  retries 3
  option redispatch 1
  retry-on all-retryable-errors
frontend fe
  bind 127.0.0.1:$HAPORT
  default_backend be
backend be
  balance roundrobin
  option httpchk GET /readyz
  http-check expect status 200
  default-server inter 200ms fall 2 rise 2
  server n1 127.0.0.1:$(http_port 1) check
  server n2 127.0.0.1:$(http_port 2) check
  server n3 127.0.0.1:$(http_port 3) check
CFG
haproxy -db -f "$OUT/haproxy.cfg" >"$OUT/haproxy.log" 2>&1 &
HAPROXY_PID=$!
sleep 1

# 1. Steady load: no false detection.
wrk -t2 -c64 -d"${STEADY}s" --timeout 10s -s benches/wrk.lua "http://127.0.0.1:$HAPORT" -- "/hitokoto/v2/?encode=json" >"$OUT/steady.txt" 2>&1 &
WRK=$!
false_downs=0
while kill -0 $WRK 2>/dev/null; do
    for o in 1 2 3; do for m in 1 2 3; do
        [ "$o" = "$m" ] && continue
        s=$(state "$o" "$m")
        [ "$s" = up ] || { false_downs=$((false_downs + 1)); echo "n$o saw n$m $s" >>"$OUT/false.txt"; }
    done; done
    sleep 0.2
done
wait $WRK || true
steady=$(grep ^RESULT "$OUT/steady.txt" || echo "RESULT")

# 2. The scenario, under load.
wrk -t2 -c64 -d45s --timeout 10s -s benches/wrk.lua "http://127.0.0.1:$HAPORT" -- "/hitokoto/v2/?encode=json" >"$OUT/scenario.txt" 2>&1 &
WRK=$!
sleep 3
kill -TERM "${PIDS[2]}"; term_down=$(wait_state 1 2 down 10); wait "${PIDS[2]}" 2>/dev/null || true
sleep 1; agree_term=$(agree)
start_node 2; term_up=$(wait_state 1 2 up 20); sleep 1; agree_term_back=$(agree)
sleep 3
kill -KILL "${PIDS[3]}"; kill_down=$(wait_state 1 3 down 10); wait "${PIDS[3]}" 2>/dev/null || true
sleep 1; agree_kill=$(agree)
start_node 3; kill_up=$(wait_state 1 3 up 20); sleep 1; agree_kill_back=$(agree)
sleep 3
kill -STOP "${PIDS[2]}"; stop_down=$(wait_state 1 2 down 15)
sleep $((8 - 3)); agree_stop=$(agree)
kill -CONT "${PIDS[2]}"; stop_up=$(wait_state 1 2 up 15); sleep 1; agree_stop_back=$(agree)
wait $WRK || true
scenario=$(grep ^RESULT "$OUT/scenario.txt" || echo "RESULT")

field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
echo "# $(date -u +%FT%TZ) $(nproc) cores; 3 nodes$([ "${TLS:-0}" = 1 ] && echo ' (cluster TLS)') + HAProxy $(haproxy -v | head -1 | awk '{print $3}') on loopback; wrk -t2 -c64; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| run | requests | req/s | non-2xx | connect errors | read errors | write errors | timeouts |"
echo "|---|---|---|---|---|---|---|---|"
for run in steady scenario; do
    r=${!run}
    echo "| $run | $(field "$r" requests) | $(field "$r" rps) | $(field "$r" non2xx) | $(field "$r" connect) | $(field "$r" read) | $(field "$r" write) | $(field "$r" timeout) |"
done
echo
echo "false detections during the steady run (${STEADY} s, every member by every other every 200 ms): $false_downs"
echo
echo "| event | seen down by n1 after (ms) | seen up again after (ms) | membership and HAProxy agree (down / back) |"
echo "|---|---|---|---|"
echo "| SIGTERM n2, then restart | $term_down | $term_up | $agree_term / $agree_term_back |"
echo "| SIGKILL n3, then restart | $kill_down | $kill_up | $agree_kill / $agree_kill_back |"
echo "| SIGSTOP n2 8 s, then SIGCONT | $stop_down | $stop_up | $agree_stop / $agree_stop_back |"
