//! Paths of the supervision tree that code outside it names: the root, and
//! the worker pool.
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
