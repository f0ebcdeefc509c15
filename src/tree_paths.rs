//! The names of the supervision tree: every child's id, from which
//! [`tree`](crate::tree) builds the tree, and the few paths code outside
//! it names (a unit test keeps each path equal to the ids it joins).
//!
//! ```
//! use diem::tree_paths::{child, POOL, ROOT};
//! assert_eq!(POOL, format!("{ROOT}/{}", child::WORKERS));
//! ```

/// The root's name: every path starts with it.
pub const ROOT: &str = "diem";

/// The root's children, in start order.
pub mod child {
    /// `diem/store`: the store subtree.
    pub const STORE: &str = "store";
    /// `diem/limiter`: the Redis limiter.
    pub const LIMITER: &str = "limiter";
    /// `diem/metrics`: the gauge sampler.
    pub const METRICS: &str = "metrics";
    /// `diem/load`: the load sampler (every actor's load, stuck handlers).
    pub const LOAD: &str = "load";
    /// `diem/control`: the control socket.
    pub const CONTROL: &str = "control";
    /// `diem/upgrade`: the upgrader.
    pub const UPGRADE: &str = "upgrade";
    /// `diem/cluster`: the cluster subtree (with `[cluster] enabled`).
    pub const CLUSTER: &str = "cluster";
    /// `diem/workers`: the request worker pool.
    pub const WORKERS: &str = "workers";
    /// `diem/listener`: the HTTP listener.
    pub const LISTENER: &str = "listener";
    /// `diem/observer`: the observer's frame publisher.
    pub const OBSERVER: &str = "observer";
    /// `diem/admin`: the admin listener (with `admin.addr` set).
    pub const ADMIN: &str = "admin";
    /// `diem/watchdog`: systemd's watchdog (under systemd).
    pub const WATCHDOG: &str = "watchdog";
}

/// The children of `diem/store`.
pub mod store {
    /// `diem/store/postgres`: the pool actor.
    pub const POSTGRES: &str = "postgres";
    /// `diem/store/corpus`: the snapshot keeper.
    pub const CORPUS: &str = "corpus";
}

/// The children of `diem/cluster`.
pub mod cluster {
    /// `diem/cluster/server`: the ractor_cluster node server.
    pub const SERVER: &str = "server";
    /// `diem/cluster/tls`: the cluster port with TLS.
    pub const TLS: &str = "tls";
    /// `diem/cluster/endpoint`: this node's endpoint for the others.
    pub const ENDPOINT: &str = "endpoint";
    /// `diem/cluster/membership`: the member table and failure detector.
    pub const MEMBERSHIP: &str = "membership";
    /// `diem/cluster/peers`: a peer actor per member address.
    pub const PEERS: &str = "peers";
}

/// The templates of the dynamic pools (their instances are numbered).
pub mod template {
    /// A request worker of `diem/workers`.
    pub const WORKER: &str = "worker";
    /// A peer actor of `diem/cluster/peers`.
    pub const PEER: &str = "peer";
}

/// The children of the root that hold what only one process may hold —
/// the cluster's port, the admin listener's port. A process started by an
/// upgrade starts them once the old process has released them; the old
/// process releases exactly these.
pub const EXCLUSIVE: [&str; 2] = [child::CLUSTER, child::ADMIN];

/// The request worker pool: `diem/workers`.
pub const POOL: &str = "diem/workers";

/// The cluster's peer actors: `diem/cluster/peers`.
pub const CLUSTER_PEERS: &str = "diem/cluster/peers";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_paths_join_the_ids() {
        assert_eq!(POOL, format!("{ROOT}/{}", child::WORKERS));
        assert_eq!(
            CLUSTER_PEERS,
            format!("{ROOT}/{}/{}", child::CLUSTER, cluster::PEERS)
        );
    }
}
