//! Paths of the supervision tree that code outside it names: the root, the
//! worker pool, the children that the process's life cycle stops by id.
//!
//! ```
//! assert_eq!(diem::tree_paths::POOL, "diem/workers");
//! ```

/// The root's name: every path starts with it.
pub const ROOT: &str = "diem";

/// The request worker pool.
pub const POOL: &str = "diem/workers";

/// The PostgreSQL pool actor.
pub const POSTGRES: &str = "diem/store/postgres";

/// The cluster's peer actors (with `[cluster] enabled`).
pub const CLUSTER_PEERS: &str = "diem/cluster/peers";

/// The root's children that the process's own life cycle stops by id
/// (shutdown stops the listener first; an upgrade hands the listener, the
/// control socket and the cluster to the new process).
pub mod child {
    /// `diem/listener`.
    pub const LISTENER: &str = "listener";
    /// `diem/control`.
    pub const CONTROL: &str = "control";
    /// `diem/cluster`.
    pub const CLUSTER: &str = "cluster";
    /// `diem/upgrade`.
    pub const UPGRADE: &str = "upgrade";
    /// `diem/watchdog`.
    pub const WATCHDOG: &str = "watchdog";
    /// `diem/observer`.
    pub const OBSERVER: &str = "observer";
    /// `diem/admin`.
    pub const ADMIN: &str = "admin";
}

/// The upgrader actor.
pub const UPGRADE: &str = "diem/upgrade";
