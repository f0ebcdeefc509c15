//! Readiness: whether this node serves what it should.
//!
//! Ready means: the supervision tree is whole (every child running, the
//! worker pool at its wanted size), PostgreSQL is reachable, and the corpus
//! served is PostgreSQL's rather than the embedded default, and the node is
//! not shutting down. Anything else is listed in `degraded` and makes
//! `/readyz` answer 503, so a load balancer sends traffic elsewhere.
//!
//! The limiter deciding locally because Redis is unreachable is listed in
//! `notes` but does not make the node unready: the node still serves
//! correctly and enforces the limit per node, and taking every node out of
//! rotation because a shared Redis is down would turn a degraded limiter
//! into an outage.

use serde::{Deserialize, Serialize};
use supervisors::{snapshot, ChildState};

use crate::limiter::backend::Backend;
use crate::node::Node;
use crate::store::snapshot::Source;

/// The readiness report (`/readyz`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Readiness {
    /// Whether the node is ready.
    pub ready: bool,
    /// What keeps it from being ready.
    pub degraded: Vec<String>,
    /// Degradations that do not make it unready.
    pub notes: Vec<String>,
}

/// Checks the node.
pub(crate) async fn readiness(node: &Node) -> Readiness {
    let mut degraded = Vec::new();
    let mut notes = Vec::new();
    if node.is_draining() {
        degraded.push("node: shutting down".to_owned());
    }
    match node.root() {
        Some(root) => match snapshot(root).await {
            Ok(tree) => {
                degraded.extend(
                    tree.iter()
                        .filter(|n| n.state != ChildState::Running)
                        .map(|n| format!("{}: {}", n.path, n.state)),
                );
                let wanted = node.workers.target().get();
                let running = node.workers.size();
                if running < wanted {
                    degraded.push(format!(
                        "{}/workers: {running} of {wanted} workers running",
                        tree.path
                    ));
                }
            }
            Err(e) => degraded.push(format!("tree: {e}")),
        },
        None => degraded.push("tree: not started".to_owned()),
    }
    if !node.pg.is_ready() {
        let status = node.pg.status();
        degraded.push(format!(
            "postgres: {}",
            status.error.unwrap_or_else(|| "not connected yet".to_owned())
        ));
    }
    let corpus = node.corpus.status();
    if corpus.source == Source::Embedded {
        degraded.push("corpus: serving the embedded default".to_owned());
    }
    if !corpus.listening && corpus.source != Source::Embedded {
        notes.push("corpus: not listening for changes (serving the last snapshot)".to_owned());
    }
    let settings = node.limiter.settings();
    if settings.enabled && node.limiter.backend() == Backend::Local {
        notes.push("limiter: deciding locally (redis unreachable)".to_owned());
    }
    Readiness {
        ready: degraded.is_empty(),
        degraded,
        notes,
    }
}
