//! The cluster TLS listener actor (`diem/cluster/tls`, only with cluster
//! TLS): binds `cluster.listen`, runs each TLS handshake in a task of its
//! own with a deadline, and hands the encrypted stream to the node server,
//! which starts the member's session (the cookie challenge comes next).
//!
//! ractor_cluster 0.16 can accept TLS itself, but it runs each handshake
//! inside its accept loop, without a deadline: one peer that opens a TCP
//! connection and sends nothing would stop every later member from
//! joining. So with TLS the node server listens on an internal loopback
//! port (TLS too) and this actor owns the cluster port:
//!
//! * the first bytes of the handshake must come within [`FIRST_BYTES`] (a
//!   member's TLS client sends its hello at once): an idle connection is
//!   closed then, not held for the whole handshake deadline;
//! * a handshake has `cluster.down_after` to complete;
//! * at most [`MAX_HANDSHAKES`] run at once, at most
//!   [`MAX_HANDSHAKES_PER_ADDRESS`] of them from one address; a connection
//!   beyond either is closed at once — so one host's idle connections
//!   cannot keep a restarting member out;
//! * every refusal is counted by reason in [`NOISE`] (a warning sums them
//!   up at most once a second); a refused handshake (no certificate, one
//!   the CA did not sign, another name) is also logged with the peer's
//!   address, once a minute per host.
//!
//! A busy port does not fail the node's start: the actor tries again with
//! a backoff, as the node server does without TLS.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef};
use ractor_cluster::{NetworkStream, NodeServerMessage, RactorMessage};
use supervisors::Backoff;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::cluster::noise::{Reason, NOISE};
use crate::node::Node;
use crate::owned_task::OwnedTask;

/// Handshakes in progress at most.
pub const MAX_HANDSHAKES: usize = 64;

/// Handshakes in progress from one address at most.
pub const MAX_HANDSHAKES_PER_ADDRESS: usize = 4;

/// How long a new connection may stay silent before its first bytes.
pub const FIRST_BYTES: Duration = Duration::from_secs(1);

/// Messages of the TLS listener.
#[derive(Debug, RactorMessage)]
pub(crate) enum TlsListenerMsg {
    /// Bind the cluster port (or try again).
    Bind,
    /// The accept loop ended.
    LoopEnded,
}

/// The TLS listener actor.
#[derive(Debug)]
pub(crate) struct TlsListener {
    /// The node it serves.
    pub(crate) node: Arc<Node>,
}

/// Its state: the accept loop, once the port is bound.
#[derive(Debug)]
pub(crate) struct TlsListenerState {
    accept: Option<OwnedTask>,
    failures: u32,
}

type Handshake = (SocketAddr, Result<Box<NetworkStream>, Refused>);

async fn handshake(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    deadline: Duration,
) -> Handshake {
    let local = match stream.local_addr() {
        Ok(a) => a,
        Err(e) => return (peer, Err(Refused::Tls(e.to_string()))),
    };
    let _ = stream.set_nodelay(true);
    let mut first = [0u8; 1];
    match tokio::time::timeout(FIRST_BYTES, stream.peek(&mut first)).await {
        Ok(Ok(n)) if n > 0 => {}
        Ok(Ok(_)) => return (peer, Err(Refused::Closed)),
        Ok(Err(e)) => return (peer, Err(Refused::Tls(e.to_string()))),
        Err(_) => return (peer, Err(Refused::Silent)),
    }
    let outcome = match tokio::time::timeout(deadline, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => Ok(Box::new(NetworkStream::TlsServer {
            peer_addr: peer,
            local_addr: local,
            stream,
        })),
        Ok(Err(e)) => Err(Refused::Tls(e.to_string())),
        Err(_) => Err(Refused::Tls(format!("no TLS handshake within {deadline:?}"))),
    };
    (peer, outcome)
}

/// Why a handshake did not give a stream.
#[derive(Debug)]
enum Refused {
    /// Nothing came within [`FIRST_BYTES`].
    Silent,
    /// The peer closed before sending anything (a port probe).
    Closed,
    /// The TLS handshake failed.
    Tls(String),
}

async fn accept_loop(node: Arc<Node>, listener: TcpListener, acceptor: TlsAcceptor) {
    let mut handshakes: JoinSet<Handshake> = JoinSet::new();
    let mut per_address: HashMap<IpAddr, usize> = HashMap::new();
    let mut refused: HashMap<IpAddr, Instant> = HashMap::new();
    loop {
        NOISE.flush();
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((_, peer)) if handshakes.len() >= MAX_HANDSHAKES => {
                    NOISE.refused(Reason::SlotsFull);
                    tracing::debug!(%peer, "cluster connection closed: {MAX_HANDSHAKES} TLS handshakes already in progress");
                }
                Ok((_, peer)) if per_address.get(&peer.ip()).is_some_and(|n| *n >= MAX_HANDSHAKES_PER_ADDRESS) => {
                    NOISE.refused(Reason::PerAddress);
                    tracing::debug!(%peer, "cluster connection closed: {MAX_HANDSHAKES_PER_ADDRESS} TLS handshakes from its address in progress");
                }
                Ok((stream, peer)) => {
                    *per_address.entry(peer.ip()).or_default() += 1;
                    let deadline = node.config().cluster.down_after;
                    handshakes.spawn(handshake(acceptor.clone(), stream, peer, deadline));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cluster accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(done) = handshakes.join_next(), if !handshakes.is_empty() => {
                let (peer, outcome) = match done {
                    Ok(handshake) => handshake,
                    Err(e) => {
                        // A handshake task panicked: its address's count is
                        // rebuilt from the tasks still running.
                        tracing::warn!(error = %e, "a cluster TLS handshake task failed");
                        per_address.clear();
                        continue;
                    }
                };
                if let std::collections::hash_map::Entry::Occupied(mut n) = per_address.entry(peer.ip()) {
                    *n.get_mut() -= 1;
                    if *n.get() == 0 {
                        n.remove();
                    }
                }
                match outcome {
                    Ok(stream) => match node.cluster.server() {
                        Some(server) => {
                            let _ = server.cast(NodeServerMessage::ConnectionOpened { stream, is_server: true });
                        }
                        None => tracing::debug!("cluster connection dropped: the node server is not running"),
                    },
                    Err(Refused::Silent) => NOISE.refused(Reason::NoFirstBytes),
                    Err(Refused::Closed) => {}
                    Err(Refused::Tls(reason)) => {
                        NOISE.refused(Reason::TlsFailed);
                        refused.retain(|_, t| t.elapsed() < Duration::from_secs(60));
                        if let std::collections::hash_map::Entry::Vacant(first) = refused.entry(peer.ip()) {
                            tracing::warn!(%peer, %reason, "cluster peer refused: TLS handshake failed; logged once a minute per host");
                            first.insert(Instant::now());
                        }
                    }
                }
            }
        }
    }
}

impl Actor for TlsListener {
    type Msg = TlsListenerMsg;
    type State = TlsListenerState;
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<TlsListenerMsg>,
        _: (),
    ) -> Result<TlsListenerState, ActorProcessingErr> {
        let mut state = TlsListenerState {
            accept: None,
            failures: 0,
        };
        // The first attempt happens here, so that a free port is bound
        // before the tree goes on; a busy one is retried in the background.
        self.handle(myself, TlsListenerMsg::Bind, &mut state).await?;
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<TlsListenerMsg>,
        msg: TlsListenerMsg,
        state: &mut TlsListenerState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            TlsListenerMsg::Bind if state.accept.is_none() => {
                let Some(tls) = self.node.cluster.tls() else {
                    return Err("cluster TLS is not configured (the node server publishes it)".into());
                };
                let config = self.node.config();
                let listen = config.cluster.listen;
                match TcpListener::bind(listen).await {
                    Ok(listener) => {
                        tracing::info!(%listen, "cluster listener ready (TLS)");
                        let me = myself.clone();
                        state.accept = Some(OwnedTask::spawn(
                            accept_loop(self.node.clone(), listener, tls.acceptor.clone()),
                            move || {
                                let _ = me.send_message(TlsListenerMsg::LoopEnded);
                            },
                        ));
                        state.failures = 0;
                    }
                    Err(e) => {
                        state.failures = state.failures.saturating_add(1);
                        if state.failures == 1 {
                            tracing::warn!(%listen, error = %e, "cannot start the cluster listener; retrying");
                        }
                        let wait = Backoff::new(Duration::from_millis(100), config.cluster.reconnect_max)
                            .delay(state.failures);
                        myself.send_after(wait, || TlsListenerMsg::Bind);
                    }
                }
            }
            TlsListenerMsg::Bind => {}
            TlsListenerMsg::LoopEnded => return Err("the cluster accept loop ended".into()),
        }
        Ok(())
    }
}
