//! Readiness: whether this node can serve (`/readyz`, for a load balancer
//! or Kubernetes).
//!
//! Ready means: the supervision tree is whole (every child running, the
//! worker pool at its wanted size), the node is not shutting down, and it
//! has a corpus to serve. That is all a load balancer needs to know: a node
//! answers reads from its snapshot whether or not PostgreSQL answers, and
//! limits locally whether or not Redis does. Taking every node out of
//! rotation because a *shared* dependency failed would turn a degradation
//! into a full outage, so PostgreSQL, Redis and an embedded corpus are
//! listed in `notes` and in metrics, and do not fail readiness — unless
//! `http.strict_readiness` asks for it.
//!
//! The report is public: it names what is degraded in a few words, never
//! a raw error text (that is in the logs, `ctl stats` and metrics).

use serde::{Deserialize, Serialize};
use supervisors::{snapshot, ChildState};

use crate::limiter::backend::Backend;
use crate::node::Node;
use crate::store::snapshot::Source;
use crate::tls_files::refusal;

/// The readiness report (`/readyz`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Readiness {
    /// Whether the node is ready.
    pub ready: bool,
    /// What keeps it from being ready.
    pub degraded: Vec<String>,
    /// Degradations that do not make it unready (in strict mode they do:
    /// they are then listed in `degraded`).
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
            Err(_) => degraded.push("tree: not answering".to_owned()),
        },
        None => degraded.push("tree: not started".to_owned()),
    }
    let corpus = node.corpus.status();
    if corpus.sentences == 0 {
        degraded.push("corpus: no sentence to serve".to_owned());
    }
    if !node.pg.is_ready() {
        let error = node.pg.status().error.unwrap_or_default();
        notes.push(match tls_refusal(&error) {
            Some(why) => format!(
                "postgres: TLS refused ({why}; see postgres.url); writes fail, reads come from the snapshot"
            ),
            None => "postgres: unreachable (writes fail; reads come from the snapshot)".to_owned(),
        });
    }
    if corpus.source == Source::Embedded {
        notes.push("corpus: serving the embedded default".to_owned());
    } else if !corpus.listening {
        notes.push("corpus: not listening for changes (serving the last snapshot)".to_owned());
    }
    let settings = node.limiter.settings();
    if settings.enabled && node.limiter.backend() == Backend::Local {
        let why = node.limiter.why_local();
        notes.push(match why.as_deref().and_then(|w| refusal(w)) {
            Some(why) => format!(
                "limiter: deciding locally (redis TLS refused: {why}; see redis.tls_ca and redis.tls_verify_hostname)"
            ),
            None => "limiter: deciding locally (redis unreachable)".to_owned(),
        });
    }
    for (addr, why) in node.cluster.refused() {
        notes.push(format!("cluster: no session with {addr}: {why}"));
    }
    if node.with_config(|c| c.http.strict_readiness) {
        degraded.append(&mut notes);
    }
    Readiness {
        ready: degraded.is_empty(),
        degraded,
        notes,
    }
}

/// A few words for a certificate PostgreSQL's TLS refused, from the
/// store's error (its text stays in the log and `ctl stats`).
fn tls_refusal(error: &str) -> Option<&'static str> {
    if !error.contains("postgres.url: TLS") {
        return None;
    }
    Some(refusal(error).unwrap_or("the handshake failed"))
}
