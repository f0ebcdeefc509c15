# Sourced by benchmark scripts that need a Redis primary with a replica
# (instructions.sh's replica and wait modes):
#
#   redis_replica_start DIR PORT
#
# starts a primary on PORT and its replica on PORT+1 in DIR, waits until
# the replica follows, and sets REDIS_REPLICA_URL (the primary's URL).
# redis_replica_stop stops them (call it on exit).
redis_replica_start() {
    local dir=$1 port=$2 p
    REDIS_REPLICA_PORTS=("$port" $((port + 1)))
    for p in "${REDIS_REPLICA_PORTS[@]}"; do
        mkdir -p "$dir/redis-$p"
        local follow=()
        [ "$p" = "$port" ] || follow=(--replicaof 127.0.0.1 "$port")
        (cd "$dir/redis-$p" && redis-server --bind 127.0.0.1 --port "$p" --save "" --appendonly no \
            "${follow[@]}" --daemonize yes --logfile log)
        for _ in $(seq 1 50); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.1; done
    done
    for _ in $(seq 1 100); do
        redis-cli -p $((port + 1)) info replication | grep -q master_link_status:up && break
        sleep 0.1
    done
    REDIS_REPLICA_URL="redis://127.0.0.1:$port"
}

redis_replica_stop() {
    local p
    for p in "${REDIS_REPLICA_PORTS[@]:-}"; do
        [ -n "$p" ] && redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true
    done
}
