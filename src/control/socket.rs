//! The control socket (`diem/control`), a task child.
//!
//! It accepts control connections on a duplicate of the node's control
//! socket ([`shared`](super::shared): bound once per process, mode
//! 0600, or received from systemd or the upgraded process). Each
//! connection is a task of its own that checks the peer's credentials
//! (`SO_PEERCRED`: the server's own uid or root, else refused with a logged
//! reason), then reads one JSON request per line (at most 64 KiB; nothing
//! for `control.idle_timeout` closes it) and writes one reply per line. At
//! most `control.max_connections` are served at once; more are told so
//! and closed. Killing the actor stops the accept loop only: the socket
//! stays, connections arriving meanwhile wait in its backlog, and the
//! sessions already open go on.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use ractor::ActorProcessingErr;
use supervisors::TaskResult;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::codec::{FramedRead, FramedWrite, LinesCodec, LinesCodecError};

use crate::control::caller::Caller;
use crate::control::execute::execute;
use crate::control::protocol::{error, ProtoError};
use crate::node::Node;

/// Longest request line.
pub(crate) const MAX_LINE: usize = 64 * 1024;

async fn refuse(stream: UnixStream, e: ProtoError) {
    let mut out = FramedWrite::new(stream, LinesCodec::new());
    let _ = tokio::time::timeout(Duration::from_secs(1), out.send(error(None, &e))).await;
}

/// Takes a duplicate of the node's control socket and returns its accept
/// loop.
pub(crate) async fn start(
    node: Arc<Node>,
) -> Result<impl Future<Output = TaskResult> + Send, ActorProcessingErr> {
    let listener = node.control.listener()?;
    if let Some(path) = node.control.path() {
        tracing::info!(path = %path.display(), "control socket ready");
    }
    Ok(accept_loop(node, listener))
}

async fn accept_loop(node: Arc<Node>, listener: UnixListener) -> TaskResult {
    let max = node.config().control.max_connections;
    let slots = Arc::new(Semaphore::new(max));
    let me = rustix::process::geteuid().as_raw();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "control accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let caller = match stream.peer_cred() {
            Ok(cred) => Caller::local(cred.uid(), cred.pid()),
            Err(e) => {
                tracing::warn!(error = %e, "control connection refused: peer credentials unavailable");
                continue;
            }
        };
        match caller.uid.unwrap_or(u32::MAX) {
            uid if uid == me || uid == 0 => {}
            uid => {
                tracing::warn!(
                    uid,
                    "control connection refused: peer uid is neither {me} nor root"
                );
                tokio::spawn(refuse(
                    stream,
                    ProtoError::new("forbidden", format!("uid {uid} may not use this control socket")),
                ));
                continue;
            }
        }
        match slots.clone().try_acquire_owned() {
            Ok(permit) => {
                tokio::spawn(session(node.clone(), stream, caller, permit));
            }
            Err(_) => {
                tracing::warn!(max, "control connection refused: too many connections");
                tokio::spawn(refuse(
                    stream,
                    ProtoError::new(
                        "too_many_connections",
                        format!("at most {max} control connections at once"),
                    ),
                ));
            }
        }
    }
}

/// Serves one control connection.
async fn session(node: Arc<Node>, stream: UnixStream, caller: Caller, _permit: OwnedSemaphorePermit) {
    let idle = node.config().control.idle_timeout;
    let (read, write) = stream.into_split();
    let mut lines = FramedRead::new(read, LinesCodec::new_with_max_length(MAX_LINE));
    let mut out = FramedWrite::new(write, LinesCodec::new());
    loop {
        let reply = match tokio::time::timeout(idle.get(), lines.next()).await {
            Err(_) => Some(error(
                None,
                &ProtoError::new(
                    "timeout",
                    format!("no request for {} ms; closing", idle.as_millis()),
                ),
            )),
            Ok(None) => return,
            Ok(Some(Err(LinesCodecError::MaxLineLengthExceeded))) => Some(error(
                None,
                &ProtoError::new(
                    "line_too_long",
                    format!("a request line must be at most {MAX_LINE} bytes"),
                ),
            )),
            Ok(Some(Err(LinesCodecError::Io(e)))) => Some(error(
                None,
                &ProtoError::new("bad_request", format!("unreadable request: {e}")),
            )),
            Ok(Some(Ok(line))) => {
                if line.trim().is_empty() {
                    continue;
                }
                let busy = node.control.busy();
                let reply = execute(&node, &line, &caller).await;
                let sent = out.send(reply).await;
                drop(busy);
                if sent.is_err() {
                    return;
                }
                None
            }
        };
        // Errors that end the session: say why, then close.
        if let Some(reply) = reply {
            let _ = tokio::time::timeout(Duration::from_secs(1), out.send(reply)).await;
            return;
        }
    }
}
