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
//! * a handshake has `cluster.down_after` to complete;
//! * at most [`MAX_HANDSHAKES`] run at once; a connection beyond them is
//!   closed at once;
//! * a refused handshake (no certificate, one the CA did not sign, another
//!   name) is logged with the peer's address, once a minute per host.
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

use crate::node::Node;
use crate::owned_task::OwnedTask;

/// Handshakes in progress at most.
pub const MAX_HANDSHAKES: usize = 64;

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

type Handshake = (SocketAddr, Result<Box<NetworkStream>, String>);

async fn handshake(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    deadline: Duration,
) -> Handshake {
    let local = match stream.local_addr() {
        Ok(a) => a,
        Err(e) => return (peer, Err(e.to_string())),
    };
    let _ = stream.set_nodelay(true);
    let outcome = match tokio::time::timeout(deadline, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => Ok(Box::new(NetworkStream::TlsServer {
            peer_addr: peer,
            local_addr: local,
            stream,
        })),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no TLS handshake within {deadline:?}")),
    };
    (peer, outcome)
}

async fn accept_loop(node: Arc<Node>, listener: TcpListener, acceptor: TlsAcceptor) {
    let mut handshakes: JoinSet<Handshake> = JoinSet::new();
    let mut refused: HashMap<IpAddr, Instant> = HashMap::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) if handshakes.len() < MAX_HANDSHAKES => {
                    let deadline = node.config().cluster.down_after;
                    handshakes.spawn(handshake(acceptor.clone(), stream, peer, deadline));
                }
                Ok((_, peer)) => {
                    tracing::debug!(%peer, "cluster connection closed: {MAX_HANDSHAKES} TLS handshakes already in progress");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cluster accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(done) = handshakes.join_next(), if !handshakes.is_empty() => match done {
                Ok((_, Ok(stream))) => match node.cluster.server() {
                    Some(server) => {
                        let _ = server.cast(NodeServerMessage::ConnectionOpened { stream, is_server: true });
                    }
                    None => tracing::debug!("cluster connection dropped: the node server is not running"),
                },
                Ok((peer, Err(reason))) => {
                    refused.retain(|_, t| t.elapsed() < Duration::from_secs(60));
                    if let std::collections::hash_map::Entry::Vacant(first) = refused.entry(peer.ip()) {
                        tracing::warn!(%peer, %reason, "cluster peer refused: TLS handshake failed; logged once a minute");
                        first.insert(Instant::now());
                    }
                }
                Err(e) => tracing::warn!(error = %e, "a cluster TLS handshake task failed"),
            },
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
