# Sourced by benchmark scripts that need a Redis Cluster (instructions.sh's
# cluster modes):
#
#   redis_cluster_start DIR FIRST_PORT
#
# starts six redis-servers (FIRST_PORT … FIRST_PORT+5, cluster bus ports
# +1000) in DIR, makes them a cluster of three primaries with a replica
# each, waits until it is ok, and sets REDIS_CLUSTER_URL (fred's
# redis-cluster:// form). redis_cluster_stop stops them (call it on exit).
redis_cluster_start() {
    local dir=$1 first=$2 p addrs=()
    REDIS_CLUSTER_PORTS=()
    for p in $(seq "$first" $((first + 5))); do
        mkdir -p "$dir/redis-$p"
        (cd "$dir/redis-$p" && redis-server --bind 127.0.0.1 --port "$p" --save "" --appendonly no \
            --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 2000 \
            --cluster-port $((p + 1000)) --daemonize yes --logfile log)
        REDIS_CLUSTER_PORTS+=("$p")
        addrs+=("127.0.0.1:$p")
    done
    for p in "${REDIS_CLUSTER_PORTS[@]}"; do
        for _ in $(seq 1 50); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.1; done
    done
    redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes >/dev/null
    for p in "${REDIS_CLUSTER_PORTS[@]}"; do
        for _ in $(seq 1 100); do
            redis-cli -p "$p" cluster info | grep -q cluster_state:ok && break
            sleep 0.1
        done
    done
    REDIS_CLUSTER_URL="redis-cluster://127.0.0.1:$first"
    local sep='?'
    for p in "${REDIS_CLUSTER_PORTS[@]:1}"; do
        REDIS_CLUSTER_URL+="${sep}node=127.0.0.1:$p"
        sep='&'
    done
}

redis_cluster_stop() {
    local p
    for p in "${REDIS_CLUSTER_PORTS[@]:-}"; do
        [ -n "$p" ] && redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true
    done
}
