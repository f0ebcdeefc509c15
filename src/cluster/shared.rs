//! What the cluster publishes for the node: the node server (for actors
//! that open sessions), the member view (for `ctl cluster`, readiness of
//! rolling operations, the observer), session events (for the membership
//! actor), and the way to run a control request on other members (for the
//! control plane, which imports nothing of the cluster). Filled by the
//! cluster actors, read without a message.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};
use ractor::ActorRef;
use ractor_cluster::node::NodeServerSessionInformation;
use ractor_cluster::{NodeServerMessage, NodeSessionMessage};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::broadcast;

use crate::cluster::fanout::{self, Answer, Rolling};
use crate::cluster::noise::NOISE;
use crate::cluster::remote::{self, RemoteError};
use crate::cluster::tls::ClusterTls;
use crate::config::{is_host_port, Config};

/// Longest a command forwarded to another member may take.
pub const REMOTE_TIMEOUT: Duration = Duration::from_secs(120);

/// How long each member of a rolling operation may take to be ready again.
pub const ROLLING_READY_WITHIN: Duration = Duration::from_secs(30);

/// A member's state, as the failure detector sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberState {
    /// Connected and answering heartbeats.
    Up,
    /// Connected but silent past `cluster.suspect_after`.
    Suspect,
    /// Not connected, or silent past `cluster.down_after`.
    Down,
}

impl std::fmt::Display for MemberState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Up => "up",
            Self::Suspect => "suspect",
            Self::Down => "down",
        })
    }
}

/// One member, as `ctl cluster` shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemberView {
    /// Its name (`cluster.name`).
    pub name: String,
    /// The address it advertises.
    pub addr: String,
    /// Up, suspect or down.
    pub state: MemberState,
    /// Milliseconds in this state.
    pub since_ms: u64,
    /// Round-trip time of its last heartbeat, ms.
    pub rtt_ms: Option<f64>,
    /// Milliseconds since it was last heard from.
    pub last_heard_ms: Option<u64>,
    /// Whether this is the node answering.
    #[serde(default)]
    pub this_node: bool,
}

/// A change of a session with another node, from the node server.
#[derive(Clone, Debug)]
pub enum SessionEvent {
    /// A session opened (not yet authenticated).
    Opened {
        /// The session actor.
        session: ActorRef<NodeSessionMessage>,
        /// The peer's network address.
        peer_addr: String,
    },
    /// A session passed the cookie challenge.
    Authenticated {
        /// The session actor's id.
        session: ractor::ActorId,
    },
    /// A session authenticated and synchronised: the member is reachable.
    Ready {
        /// The member name.
        name: String,
        /// The address it advertises.
        addr: String,
        /// The session actor.
        session: ActorRef<NodeSessionMessage>,
    },
    /// A session ended.
    Closed {
        /// The member name, if the session got that far.
        name: Option<String>,
        /// The peer's network address.
        peer_addr: String,
        /// The session actor's id.
        session: ractor::ActorId,
    },
}

/// The cluster as the node sees it.
#[derive(Debug)]
pub struct ClusterShared {
    server: ArcSwapOption<ActorRef<NodeServerMessage>>,
    tls: ArcSwapOption<ClusterTls>,
    members: ArcSwap<Vec<MemberView>>,
    events: broadcast::Sender<SessionEvent>,
    /// Addresses this node dials without a session, and why.
    refused: std::sync::Mutex<std::collections::BTreeMap<String, String>>,
}

impl Default for ClusterShared {
    fn default() -> Self {
        Self {
            server: ArcSwapOption::empty(),
            tls: ArcSwapOption::empty(),
            members: ArcSwap::from_pointee(Vec::new()),
            events: broadcast::Sender::new(1024),
            refused: std::sync::Mutex::new(std::collections::BTreeMap::new()),
        }
    }
}

impl ClusterShared {
    /// The node server, while it runs.
    pub fn server(&self) -> Option<Arc<ActorRef<NodeServerMessage>>> {
        self.server.load_full()
    }

    /// The TLS members dial each other with, while the node server runs
    /// with TLS.
    pub fn tls(&self) -> Option<Arc<ClusterTls>> {
        self.tls.load_full()
    }

    /// Publishes (or withdraws) the node server and its TLS.
    pub fn set_server(&self, server: Option<ActorRef<NodeServerMessage>>, tls: Option<ClusterTls>) {
        self.tls.store(tls.map(Arc::new));
        self.server.store(server.map(Arc::new));
    }

    /// The members other than this node, in name order.
    pub fn members(&self) -> Arc<Vec<MemberView>> {
        self.members.load_full()
    }

    /// Publishes the member view.
    pub fn set_members(&self, members: Vec<MemberView>) {
        self.members.store(Arc::new(members));
    }

    /// Records why dialling `addr` gave no session (`None`: it has one).
    pub fn set_refused(&self, addr: &str, why: Option<String>) {
        if let Ok(mut refused) = self.refused.lock() {
            match why {
                Some(why) => {
                    refused.insert(addr.to_owned(), why);
                }
                None => {
                    refused.remove(addr);
                }
            }
        }
    }

    /// The addresses this node dials without a session, and why: a seed
    /// with another cookie, a failed TLS handshake, a member that is gone.
    pub fn refused(&self) -> std::collections::BTreeMap<String, String> {
        self.refused.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// This node and the members it knows, as `ctl cluster` and the
    /// observer show them.
    pub fn view(&self, config: &Config, uptime: Duration) -> Vec<MemberView> {
        let mut members = vec![MemberView {
            name: config.cluster.member_name(&config.node),
            addr: config.cluster.advertised(),
            state: MemberState::Up,
            since_ms: u64::try_from(uptime.as_millis()).unwrap_or(u64::MAX),
            rtt_ms: None,
            last_heard_ms: None,
            this_node: true,
        }];
        members.extend(self.members().iter().cloned());
        members
    }

    /// Connections refused at the cluster port since the start, by reason.
    pub fn refused_at_port(&self) -> BTreeMap<&'static str, u64> {
        NOISE
            .totals()
            .into_iter()
            .map(|(reason, n)| (reason.as_str(), n))
            .collect()
    }

    /// Runs the control request `line` on `member` (through its endpoint)
    /// on behalf of `origin`; its reply line.
    pub async fn forward(&self, member: &str, line: String, origin: String) -> Result<String, RemoteError> {
        remote::control(member, line, origin, REMOTE_TIMEOUT).await
    }

    /// `request` on every member at once, this one included (through its
    /// own endpoint, so that it runs the same way everywhere); the answers
    /// by member.
    pub async fn everywhere(&self, this: &str, request: &Value, origin: &str) -> BTreeMap<String, Answer> {
        fanout::everywhere(this, request, origin, REMOTE_TIMEOUT).await
    }

    /// `request` on one member at a time, each ready again before the next.
    pub async fn rolling(&self, this: &str, request: &Value, origin: &str) -> Rolling {
        fanout::rolling(this, request, origin, REMOTE_TIMEOUT, ROLLING_READY_WITHIN).await
    }

    /// Receives session events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<SessionEvent> {
        self.events.subscribe()
    }

    /// Reports a session event.
    pub fn report(&self, event: SessionEvent) {
        let _ = self.events.send(event);
    }
}

/// The member name of a session (`name@host` without `@host`), once the
/// peer has named itself.
pub fn session_member(ses: &NodeServerSessionInformation) -> Option<String> {
    ses.peer_name
        .as_ref()
        .map(|p| p.name.split('@').next().unwrap_or_default().to_owned())
}

/// The address a session's member advertises. With TLS a member names
/// itself `name@host:port` (its node server listens on an internal port,
/// so the `connection_string` ractor_cluster builds from it is not the
/// address to dial); without, `connection_string` is `host:port`.
pub fn session_addr(ses: &NodeServerSessionInformation) -> Option<String> {
    let peer = ses.peer_name.as_ref()?;
    match peer.name.split_once('@') {
        Some((_, addr)) if is_host_port(addr) => Some(addr.to_owned()),
        _ => Some(peer.connection_string.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::is_host_port;

    #[test]
    fn host_port_takes_names_ipv4_and_bracketed_ipv6_only() {
        for ok in [
            "10.0.0.1:4370",
            "[::1]:4370",
            "diem-0.diem-cluster.ns.svc:4370",
            "localhost:1",
        ] {
            assert!(is_host_port(ok), "{ok}");
        }
        for bad in [
            "::1",
            "::1:4370",
            "host",
            ":4370",
            "host:",
            "host:0",
            "a b:1",
            "x@y:1",
            "host:65536",
        ] {
            assert!(!is_host_port(bad), "{bad}");
        }
    }
}
