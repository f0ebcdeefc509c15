//! The control socket actor (`diem/control`).
//!
//! It binds the Unix socket (`control.socket`), mode 0600, and accepts
//! control connections. Each connection is a task of its own that checks
//! the peer's credentials (`SO_PEERCRED`: the server's own uid or root, else
//! refused with a logged reason), then reads one JSON request per line
//! (at most 64 KiB; nothing for `control.idle_timeout` closes it) and
//! writes one reply per line. At most `control.max_connections` are served
//! at once; more are told so and closed.
//!
//! At start, a socket file left by a dead process is replaced, while one
//! that another process answers on makes the start fail (so two nodes never
//! share a socket), and anything that is not a socket is left alone. The
//! file is removed when the actor stops or is killed; the next incarnation
//! binds it again.

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
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

/// The bound socket file; removed when dropped if it is still ours.
#[derive(Debug)]
struct SocketFile {
    path: PathBuf,
    inode: u64,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path).is_ok_and(|m| m.ino() == self.inode);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The actor's state: the socket file and the accept loop.
#[derive(Debug)]
pub(crate) struct ControlState {
    _accept: OwnedTask,
    _file: SocketFile,
}

/// Why the control socket cannot be bound.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SocketError {
    /// Something that is not a socket is at the path.
    #[error("control socket path {0} exists and is not a socket; remove it or set control.socket")]
    NotASocket(String),
    /// Another process answers on the socket.
    #[error(
        "control socket {0} is in use by a running process (another diem?); stop it or set control.socket"
    )]
    InUse(String),
    /// A file operation failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was tried.
        action: &'static str,
        /// The path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SocketError {
    let path = path.display().to_string();
    move |source| SocketError::Io { action, path, source }
}

/// Makes room for a socket at `path`: removes a stale one, refuses a live
/// one or anything that is not a socket.
fn clear_stale(path: &Path) -> Result<(), SocketError> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        return Err(SocketError::NotASocket(path.display().to_string()));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(SocketError::InUse(path.display().to_string())),
        Err(_) => std::fs::remove_file(path).map_err(io("remove the stale control socket", path)),
    }
}

fn bind(path: &Path) -> Result<(UnixListener, SocketFile), SocketError> {
    clear_stale(path)?;
    if let Some(dir) = path.parent().filter(|d| !d.exists()) {
        std::fs::create_dir_all(dir).map_err(io("create the directory of", path))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io("set the mode of the directory of", path))?;
    }
    let listener = UnixListener::bind(path).map_err(io("bind the control socket", path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(io("set the mode of", path))?;
    let inode = std::fs::symlink_metadata(path)
        .map(|m| m.ino())
        .unwrap_or_default();
    Ok((
        listener,
        SocketFile {
            path: path.to_owned(),
            inode,
        },
    ))
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
                let reply = commands::execute(&node, &line, &caller).await;
                if out.send(reply).await.is_err() {
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
        let path = self.node.config().control.socket_path();
        let (listener, file) = bind(&path)?;
        tracing::info!(path = %path.display(), "control socket ready");
        let accept = OwnedTask::spawn(accept_loop(self.node.clone(), listener), move || {
            let _ = myself.send_message(ControlMsg::LoopEnded("the control accept loop ended".into()));
        });
        Ok(ControlState {
            _accept: accept,
            _file: file,
        })
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
