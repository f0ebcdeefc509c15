//! The control socket actor (`diem/control`).
//!
//! It accepts control connections on a duplicate of the node's control
//! socket ([`listening`](super::listening): bound once per process, mode
//! 0600, or received from systemd or the upgraded process). Each
//! connection is a task of its own that checks the peer's credentials
//! (`SO_PEERCRED`: the server's own uid or root, else refused with a logged
//! reason), then reads one JSON request per line (at most 64 KiB; nothing
//! for `control.idle_timeout` closes it) and writes one reply per line. At
//! most `control.max_connections` are served at once; more are told so
//! and closed. Killing the actor stops the accept loop only: the socket
//! stays, connections arriving meanwhile wait in its backlog, and the
//! sessions already open go on.

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use ractor_cluster::RactorMessage;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::codec::{FramedRead, FramedWrite, LinesCodec, LinesCodecError};

use crate::control::commands::{self, Caller};
use crate::control::protocol::{error, ProtoError};
use crate::node::Node;
use crate::owned_task::OwnedTask;

/// Longest request line.
pub(crate) const MAX_LINE: usize = 64 * 1024;

/// Messages of the control socket actor.
#[derive(Debug, RactorMessage)]
pub(crate) enum ControlMsg {
    /// The accept loop ended (a crash of the actor).
    LoopEnded(String),
}

/// The control socket actor.
#[derive(Debug)]
pub(crate) struct ControlSocket {
    /// The node it controls.
    pub node: Arc<Node>,
}

/// The actor's state: the accept loop.
#[derive(Debug)]
pub(crate) struct ControlState {
    _accept: OwnedTask,
}

async fn refuse(stream: UnixStream, e: ProtoError) {
    let mut out = FramedWrite::new(stream, LinesCodec::new());
    let _ = tokio::time::timeout(Duration::from_secs(1), out.send(error(None, &e))).await;
}

async fn accept_loop(node: Arc<Node>, listener: UnixListener) {
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
        let reply = match tokio::time::timeout(idle, lines.next()).await {
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
                let reply = commands::execute(&node, &line, &caller).await;
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

impl Actor for ControlSocket {
    type Msg = ControlMsg;
    type State = ControlState;
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<ControlMsg>,
        _: (),
    ) -> Result<ControlState, ActorProcessingErr> {
        let listener = self.node.control.listener()?;
        if let Some(path) = self.node.control.path() {
            tracing::info!(path = %path.display(), "control socket ready");
        }
        let accept = OwnedTask::spawn(accept_loop(self.node.clone(), listener), move || {
            let _ = myself.send_message(ControlMsg::LoopEnded("the control accept loop ended".into()));
        });
        Ok(ControlState { _accept: accept })
    }

    async fn handle(
        &self,
        _: ActorRef<ControlMsg>,
        msg: ControlMsg,
        _: &mut ControlState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ControlMsg::LoopEnded(reason) => Err(reason.into()),
        }
    }
}
