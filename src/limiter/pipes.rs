//! The limiter's hot-path connections ([`pipe`](super::pipe)): one to a
//! single server (or to the primary the Sentinels name), or, on a Redis
//! Cluster, one per primary with the cluster's slot table — each key's
//! command goes to the primary that owns its hash slot, each batch's
//! script call is split by slot (a script's keys must share one), and one
//! `write` per batch goes to each primary.
//!
//! A primary that answers `MOVED` or `ASK` (its slots moved: a resharding,
//! a failover) has that request decided through fred, which follows the
//! redirection, and the limiter actor is told to read the slot map again
//! and connect anew (`LimiterMsg::Moved`).
//!
use fred::types::cluster::ClusterRouting;

use crate::limiter::pipe::Pipe;
use crate::limiter::slot::{slot, SLOTS};

/// The hot-path connections.
#[derive(Debug, Clone)]
pub enum Pipes {
    /// One server (standalone, or the Sentinels' primary).
    One(Pipe),
    /// A cluster: for each hash slot, the index of its primary's connection.
    Cluster {
        /// `owner[slot]`: index into `pipes`.
        owner: std::sync::Arc<[u8]>,
        /// One connection per primary.
        pipes: Vec<Pipe>,
    },
}

impl Pipes {
    /// The connection for `key`: on a cluster, that of its slot's primary.
    pub fn for_key(&self, key: &str) -> &Pipe {
        match self {
            Pipes::One(pipe) => pipe,
            Pipes::Cluster { owner, pipes } => &pipes[usize::from(owner[usize::from(slot(key))])],
        }
    }

    /// Whether keys must be grouped by slot (a cluster).
    pub fn is_cluster(&self) -> bool {
        matches!(self, Pipes::Cluster { .. })
    }

    /// The slot table of `routing` for connections made in the order of
    /// `primaries` (each slot's primary, by `host:port`); `None` if a slot
    /// has no primary among them or there are more than 256 primaries.
    pub fn cluster(routing: &ClusterRouting, primaries: &[String], pipes: Vec<Pipe>) -> Option<Pipes> {
        if primaries.len() > usize::from(u8::MAX) + 1 || primaries.len() != pipes.len() {
            return None;
        }
        let mut owner = vec![u8::MAX; SLOTS];
        let mut covered = 0usize;
        for range in routing.slots() {
            let addr = format!("{}:{}", range.primary.host, range.primary.port);
            let index = u8::try_from(primaries.iter().position(|p| *p == addr)?).ok()?;
            for s in range.start..=range.end {
                if let Some(o) = owner.get_mut(usize::from(s)) {
                    *o = index;
                    covered += 1;
                }
            }
        }
        (covered == SLOTS).then(|| Pipes::Cluster {
            owner: owner.into(),
            pipes,
        })
    }
}

/// Whether Redis answered that a slot moved (`MOVED`, `ASK`).
pub fn is_redirect(error: &str) -> bool {
    error.starts_with("MOVED ") || error.starts_with("ASK ")
}
