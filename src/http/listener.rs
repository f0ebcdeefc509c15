//! The HTTP listener (`diem/listener`, a task child): accepts connections and
//! starts a connection task for each. Nothing else.
//!
//! It accepts on a duplicate of the node's listening socket (see
//! [`shared`](super::shared)), so a restart loses no connection. It is a
//! task child ([`ChildSpec::task`](supervisors::ChildSpec::task)): the accept
//! loop is the child, cancelled when it stops; should the loop end by
//! itself (it should not), the child crashes and its supervisor restarts it. Connection tasks are not the
//! listener's children: they keep serving while it restarts and are drained
//! on shutdown. At most `http.max_connections` are open at once; further
//! clients wait in the backlog.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ractor::ActorProcessingErr;
use supervisors::TaskResult;

use crate::http::connection;
use crate::node::Node;

/// Sets up the listener (a duplicate of the node's socket) and returns its
/// accept loop.
pub(crate) async fn start(
    node: Arc<Node>,
) -> Result<impl Future<Output = TaskResult> + Send, ActorProcessingErr> {
    let tcp = node.http.listener()?;
    let addr = tcp.local_addr()?;
    tracing::info!("listening on {addr}");
    Ok(accept_loop(node, tcp))
}

async fn accept_loop(node: Arc<Node>, tcp: tokio::net::TcpListener) -> TaskResult {
    let slots = node.http.slots();
    node.http.gate_opened().await;
    loop {
        let permit = match &slots {
            Some(s) => match s.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    // At http.max_connections: the next clients wait in the
                    // backlog until a connection closes.
                    node.metrics.rejected("connection_limit");
                    if node.http.may_log_rejection() {
                        tracing::info!("at http.max_connections: new connections wait in the backlog");
                    }
                    s.clone().acquire_owned().await.ok()
                }
            },
            None => None,
        };
        match tcp.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(connection::serve(node.clone(), stream, peer, permit));
            }
            Err(e) => {
                // Out of file descriptors, a connection reset before accept:
                // none of these is the listener's fault. Pause and go on.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}
