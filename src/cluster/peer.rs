//! A peer actor (`diem/cluster/peers/N`): keeps this node connected to one
//! member address. When no session to it exists it connects, and on
//! failure tries again after a backoff from 100 ms doubling to
//! `cluster.reconnect_max` (1 s): a member that comes back is reached
//! within that. While the session is up it only checks, at that pace.
//!
//! With cluster TLS it dials with TLS (this member's certificate, the
//! other's checked against the CA and `cluster.tls_server_name`).
//!
//! The membership actor starts one for every address it learns (the seeds,
//! resolved; every member a session reports), so every known member is
//! reconnected, not only the seeds.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use ractor_cluster::{NodeServerMessage, RactorMessage};
use supervisors::{Backoff, Counted};

use crate::cluster::shared::session_addr;
use crate::node::Node;

/// The address a peer actor keeps connected (its instance argument).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PeerAddr(pub(crate) String);

/// Messages of a peer actor.
#[derive(Debug, RactorMessage)]
pub(crate) enum PeerMsg {
    /// Check the session, connect when there is none (internal timer).
    Attempt,
}

/// A peer actor.
#[derive(Debug)]
pub(crate) struct Peer {
    /// The node it serves.
    pub(crate) node: Arc<Node>,
}

/// Its state.
#[derive(Debug)]
pub(crate) struct PeerState {
    addr: String,
    failures: u32,
    /// A connection was opened at the last attempt.
    dialled: bool,
}

/// Whether a session to `addr` exists (by the address the member
/// advertises, or the one this node dialled).
async fn connected(server: &ActorRef<NodeServerMessage>, addr: &str) -> bool {
    match ractor::call_t!(server, NodeServerMessage::GetSessions, 500) {
        Ok(sessions) => sessions
            .values()
            .any(|s| s.peer_addr == addr || session_addr(s).is_some_and(|a| a == addr)),
        Err(_) => false,
    }
}

impl Actor for Peer {
    type Msg = PeerMsg;
    type State = PeerState;
    type Arguments = PeerAddr;

    async fn pre_start(
        &self,
        myself: ActorRef<PeerMsg>,
        addr: PeerAddr,
    ) -> Result<PeerState, ActorProcessingErr> {
        Counted::of(myself.clone()).send(PeerMsg::Attempt)?;
        Ok(PeerState {
            addr: addr.0,
            failures: 0,
            dialled: false,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<PeerMsg>,
        msg: PeerMsg,
        state: &mut PeerState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            PeerMsg::Attempt => {
                let max = self.node.config().cluster.reconnect_max;
                let backoff = Backoff::new(Duration::from_millis(100), max.get());
                let next = match self.node.cluster.server() {
                    None => Duration::from_millis(100),
                    Some(server) if connected(&server, &state.addr).await => {
                        state.failures = 0;
                        state.dialled = false;
                        self.node.cluster.set_refused(&state.addr, None);
                        max.get()
                    }
                    Some(server) => {
                        if state.dialled {
                            // The last connection did not become a session
                            // (refused handshake, or the member is gone).
                            state.failures = state.failures.saturating_add(1);
                            if state.failures >= 2 {
                                self.node.cluster.set_refused(
                                    &state.addr,
                                    Some(
                                        "it accepts connections but no session follows: it refuses this node \
                                         (another cluster.cookie, or a member of the same name is live there)"
                                            .to_owned(),
                                    ),
                                );
                            }
                        }
                        let addr = state.addr.as_str();
                        let connect = async {
                            match self.node.cluster.tls() {
                                Some(tls) => {
                                    let (connector, name) = (tls.connector.clone(), tls.server_name.clone());
                                    ractor_cluster::client_connect_enc(&server, addr, connector, name).await
                                }
                                None => ractor_cluster::client_connect(&server, addr).await,
                            }
                        };
                        match tokio::time::timeout(Duration::from_secs(2), connect).await {
                            Ok(Ok(())) => {
                                state.dialled = true;
                                // Give the handshake time before looking again.
                                backoff.delay(state.failures).max(Duration::from_millis(250))
                            }
                            Ok(Err(e)) => {
                                state.dialled = false;
                                state.failures = state.failures.saturating_add(1);
                                let tls = matches!(e, ractor_cluster::ClientConnectErr::Encryption(_));
                                if tls && state.failures == 1 {
                                    tracing::warn!(addr = %state.addr, error = %e, "cluster peer refused: TLS handshake failed");
                                }
                                if tls || state.failures >= 2 {
                                    let why = if tls {
                                        format!("TLS handshake failed: {e}")
                                    } else {
                                        format!("unreachable: {e}")
                                    };
                                    self.node.cluster.set_refused(&state.addr, Some(why));
                                }
                                tracing::debug!(addr = %state.addr, error = %e, "cluster peer unreachable");
                                backoff.delay(state.failures)
                            }
                            Err(_) => {
                                state.dialled = false;
                                state.failures = state.failures.saturating_add(1);
                                backoff.delay(state.failures)
                            }
                        }
                    }
                };
                Counted::of(myself.clone()).send_after(next, || PeerMsg::Attempt);
            }
        }
        Ok(())
    }
}
