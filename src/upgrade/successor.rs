//! The new process's side of an upgrade: it was started with
//! `DIEM_UPGRADE_SOCKET` set, fetches the sockets from the running process,
//! builds its tree with its accept loops held, and takes over when told.

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UnixStream;

use crate::limiter::backend::Backend;
use crate::node::Node;
use crate::store::snapshot::Source;
use crate::upgrade::wire::{Channel, Message, Needs, Passed, WireError, SOCKET_VAR};

/// Why this process could not take over.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TakeOverError {
    /// The hand-over channel failed.
    #[error("upgrade: {0}")]
    Wire(#[from] WireError),
    /// The running process sent something else than expected.
    #[error("upgrade: expected {expected}, received {received}")]
    Protocol {
        /// What was expected.
        expected: &'static str,
        /// What came.
        received: String,
    },
    /// A socket is missing from the hello.
    #[error("upgrade: the running process did not pass the {0} socket")]
    Missing(&'static str),
    /// The hand-over socket cannot be reached.
    #[error("upgrade: cannot reach the hand-over socket {path}: {source}")]
    Connect {
        /// Its path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// The sockets received from the running process.
#[derive(Debug)]
pub(crate) struct Inherited {
    /// The HTTP listening socket.
    pub(crate) http: std::net::TcpListener,
    /// The control socket.
    pub(crate) control: std::os::unix::net::UnixListener,
    /// The running process's stderr.
    stderr: Option<OwnedFd>,
}

/// This process's end of an upgrade in progress.
#[derive(Debug)]
pub(crate) struct Successor {
    channel: Channel,
    needs: Needs,
    old_pid: u32,
    old_version: String,
}

/// Connects to the running process when this one was started by an
/// upgrade (`None` otherwise) and receives its sockets.
pub(crate) async fn connect() -> Option<Result<(Successor, Inherited), TakeOverError>> {
    let path = std::env::var_os(SOCKET_VAR).filter(|p| !p.is_empty())?;
    Some(fetch(std::path::PathBuf::from(path)).await)
}

async fn fetch(path: std::path::PathBuf) -> Result<(Successor, Inherited), TakeOverError> {
    let stream = UnixStream::connect(&path)
        .await
        .map_err(|source| TakeOverError::Connect {
            path: path.display().to_string(),
            source,
        })?;
    let mut channel = Channel::new(stream);
    let (hello, fds) = channel.recv().await?;
    let Message::Hello {
        old_pid,
        old_version,
        passed,
        needs,
    } = hello
    else {
        return Err(TakeOverError::Protocol {
            expected: "hello",
            received: format!("{hello:?}"),
        });
    };
    let (mut http, mut control, mut stderr) = (None, None, None);
    for (what, fd) in passed.into_iter().zip(fds) {
        match what {
            Passed::Http => http = Some(std::net::TcpListener::from(fd)),
            Passed::Control => control = Some(std::os::unix::net::UnixListener::from(fd)),
            Passed::Stderr => stderr = Some(fd),
        }
    }
    let inherited = Inherited {
        http: http.ok_or(TakeOverError::Missing("http"))?,
        control: control.ok_or(TakeOverError::Missing("control"))?,
        stderr,
    };
    Ok((
        Successor {
            channel,
            needs,
            old_pid,
            old_version,
        },
        inherited,
    ))
}

/// What this process still lacks to be as ready as the running one.
fn missing(node: &Node, needs: Needs) -> Vec<&'static str> {
    let mut missing = Vec::new();
    if needs.redis && node.limiter.backend() != Backend::Redis {
        missing.push("redis");
    }
    if needs.postgres_corpus && node.corpus.status().source == Source::Embedded {
        missing.push("the corpus from postgres");
    }
    missing
}

impl Successor {
    /// The process being replaced.
    pub(crate) fn old_pid(&self) -> u32 {
        self.old_pid
    }

    /// Its version.
    pub(crate) fn old_version(&self) -> &str {
        &self.old_version
    }

    /// Waits until this node has what the running one has and its tree is
    /// whole, says ready, and on "go" opens the accept loops, says so, and
    /// waits for the running process to release the rest. Then logs go
    /// where the old process's went, and what the old process released (the
    /// cluster, the admin listener) starts.
    pub(crate) async fn take_over(
        mut self,
        node: &Arc<Node>,
        inherited_stderr: Option<OwnedFd>,
        start_exclusive: impl std::future::Future<Output = ()>,
    ) -> Result<(), TakeOverError> {
        let began = Instant::now();
        let mut last_said = Instant::now();
        loop {
            let lacking = missing(node, self.needs);
            let readiness = crate::health::readiness(node).await;
            if lacking.is_empty() && readiness.ready {
                break;
            }
            if last_said.elapsed() >= Duration::from_secs(1) {
                tracing::info!(waiting_for = ?lacking, degraded = ?readiness.degraded, "upgrade: not ready yet");
                last_said = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tracing::info!(
            init_ms = began.elapsed().as_millis() as u64,
            "upgrade: ready; telling pid {}",
            self.old_pid
        );
        self.channel
            .send(
                &Message::Ready {
                    pid: std::process::id(),
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                },
                &[],
            )
            .await?;
        match self.channel.recv().await?.0 {
            Message::Go => {}
            other => {
                return Err(TakeOverError::Protocol {
                    expected: "go",
                    received: format!("{other:?}"),
                })
            }
        }
        node.http.open_gate();
        self.channel.send(&Message::Accepting, &[]).await?;
        match self.channel.recv().await {
            Ok((Message::Released, _)) => {}
            Ok((other, _)) => {
                tracing::warn!(message = ?other, "upgrade: unexpected message; taking over anyway")
            }
            Err(e) => {
                tracing::warn!(error = %e, "upgrade: the old process went away before releasing; taking over anyway")
            }
        }
        if let Some(stderr) = inherited_stderr {
            if let Err(e) = rustix::stdio::dup2_stderr(&stderr) {
                tracing::warn!(error = %e, "upgrade: cannot log to the old process's stderr; logging to the pipe");
            }
        }
        start_exclusive.await;
        tracing::info!(
            pid = std::process::id(),
            old_pid = self.old_pid,
            old_version = %self.old_version,
            "upgrade: this process serves now"
        );
        Ok(())
    }
}

impl Inherited {
    /// The old process's stderr, for [`Successor::take_over`].
    pub(crate) fn take_stderr(&mut self) -> Option<OwnedFd> {
        self.stderr.take()
    }
}
