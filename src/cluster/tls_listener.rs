//! The cluster TLS listener (`diem/cluster/tls`, a task child, only with
//! cluster TLS): binds `cluster.listen`, runs each TLS handshake in a task of its
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
//! A busy port does not fail the node's start: the child tries again with
//! a backoff, as the node server does without TLS.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::ActorProcessingErr;
use ractor_cluster::{NetworkStream, NodeServerMessage};
use supervisors::{Backoff, TaskResult};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::cluster::noise::{Reason, NOISE};
use crate::node::Node;

/// Handshakes in progress at most.
pub const MAX_HANDSHAKES: usize = 64;

/// Handshakes in progress from one address at most.
pub const MAX_HANDSHAKES_PER_ADDRESS: usize = 4;

/// How long a new connection may stay silent before its first bytes.
pub const FIRST_BYTES: Duration = Duration::from_secs(1);

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

/// Binds the cluster port — or, when it is busy, returns a loop that
/// binds it with a backoff first — and returns the accept loop.
pub(crate) async fn start(
    node: Arc<Node>,
) -> Result<impl Future<Output = TaskResult> + Send, ActorProcessingErr> {
    let Some(tls) = node.cluster.tls() else {
        return Err("cluster TLS is not configured (the node server publishes it)".into());
    };
    let listen = node.config().cluster.listen;
    // The first attempt happens here, so that a free port is bound before
    // the tree goes on; a busy one is retried in the loop.
    let bound = match TcpListener::bind(listen).await {
        Ok(listener) => Some(listener),
        Err(e) => {
            tracing::warn!(%listen, error = %e, "cannot start the cluster listener; retrying");
            None
        }
    };
    Ok(async move {
        let listener = match bound {
            Some(listener) => listener,
            None => bind_with_backoff(&node, listen).await,
        };
        tracing::info!(%listen, "cluster listener ready (TLS)");
        accept_loop(node, listener, tls.acceptor.clone()).await
    })
}

async fn bind_with_backoff(node: &Node, listen: SocketAddr) -> TcpListener {
    let mut failures = 1u32;
    loop {
        let wait = Backoff::new(
            Duration::from_millis(100),
            node.config().cluster.reconnect_max.get(),
        )
        .delay(failures);
        tokio::time::sleep(wait).await;
        match TcpListener::bind(listen).await {
            Ok(listener) => return listener,
            Err(_) => failures = failures.saturating_add(1),
        }
    }
}

async fn accept_loop(node: Arc<Node>, listener: TcpListener, acceptor: TlsAcceptor) -> TaskResult {
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
                    handshakes.spawn(handshake(acceptor.clone(), stream, peer, deadline.get()));
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
