//! The upgrader actor (`diem/upgrade`): replaces this process with a new
//! one — a new binary, or the same — without refusing a connection.
//!
//! One upgrade at a time: a second request while one runs is refused
//! ([`UpgradeError::Busy`]). The upgrade itself is a task the actor owns,
//! so the actor keeps answering while it runs, and killing the actor
//! aborts the upgrade (and stops the new process, which has not taken over
//! yet). The steps are in [`upgrade`](super)'s documentation; any failure
//! before the new process accepts leaves this one serving as before.

use std::collections::VecDeque;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef};
use supervisors::Counted;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::UnixListener;
use tokio::process::{Child, ChildStderr, Command};

use crate::node::Node;
use crate::owned_task::OwnedTask;
use crate::private_dir::not_private;
use crate::store::snapshot::Source;
use crate::tree_paths::{child, EXCLUSIVE};
use crate::upgrade::upgrade_msg::{Phases, Process, UpgradeError, UpgradeMsg, UpgradeReport};
use crate::upgrade::wire::{Channel, Message, Needs, Passed, WireError, SOCKET_VAR};

/// How many of the new process's last log lines a failure report quotes.
const TAIL_LINES: usize = 20;

/// How long the new process has to start accepting once told to.
const SWITCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The upgrader actor.
#[derive(Debug)]
pub(crate) struct Upgrader {
    /// The node it upgrades.
    pub node: Arc<Node>,
}

/// The upgrade running now, if any.
#[derive(Debug, Default)]
pub(crate) struct UpgraderState {
    running: Option<(Instant, OwnedTask)>,
}

impl Actor for Upgrader {
    type Msg = UpgradeMsg;
    type State = UpgraderState;
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<UpgradeMsg>,
        _: (),
    ) -> Result<UpgraderState, ActorProcessingErr> {
        self.node.upgrade.publish(Some(myself));
        Ok(UpgraderState::default())
    }

    async fn post_stop(
        &self,
        _: ActorRef<UpgradeMsg>,
        _: &mut UpgraderState,
    ) -> Result<(), ActorProcessingErr> {
        self.node.upgrade.publish(None);
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<UpgradeMsg>,
        msg: UpgradeMsg,
        state: &mut UpgraderState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            UpgradeMsg::Start {
                binary,
                timeout,
                reply,
            } => {
                if let Some((since, _)) = &state.running {
                    let since_ms = u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX);
                    let _ = reply.send(Err(UpgradeError::Busy { since_ms }));
                    return Ok(());
                }
                if self.node.is_draining() {
                    let _ = reply.send(Err(UpgradeError::Draining));
                    return Ok(());
                }
                let node = self.node.clone();
                let task = OwnedTask::spawn(
                    async move {
                        let outcome = upgrade(&node, binary, timeout).await;
                        let _ = reply.send(outcome);
                    },
                    move || {
                        let _ = Counted::of(myself.clone()).send(UpgradeMsg::Finished);
                    },
                );
                state.running = Some((Instant::now(), task));
            }
            UpgradeMsg::Finished => state.running = None,
        }
        Ok(())
    }
}

/// The binary an upgrade runs: `binary`, or the path this process was
/// started from, read again from disk (a binary replaced by a package
/// manager shows as "PATH (deleted)"; the new file is at PATH).
fn binary_path(binary: Option<PathBuf>) -> Result<PathBuf, UpgradeError> {
    if let Some(binary) = binary {
        return Ok(binary);
    }
    let exe = std::env::current_exe().map_err(|e| UpgradeError::Spawn {
        binary: "the running executable".into(),
        reason: e.to_string(),
    })?;
    let shown = exe.to_string_lossy();
    Ok(match shown.strip_suffix(" (deleted)") {
        Some(path) => PathBuf::from(path),
        None => exe,
    })
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The new process until it has taken over: killed if the upgrade fails
/// or is aborted (the upgrader killed), left running once it serves.
struct Candidate {
    child: Child,
    serves: bool,
    tail: Arc<Mutex<VecDeque<String>>>,
    tail_done: tokio::sync::watch::Receiver<bool>,
    binary: String,
}

impl Drop for Candidate {
    fn drop(&mut self) {
        if !self.serves {
            self.kill_group();
            let _ = self.child.start_kill();
        }
    }
}

impl Candidate {
    /// Its last log lines, once what it wrote before it stopped is read.
    async fn last_lines(&self) -> String {
        let mut done = self.tail_done.clone();
        let _ = tokio::time::timeout(Duration::from_millis(500), done.wait_for(|d| *d)).await;
        let lines = self.tail.lock().map(|t| t.iter().cloned().collect::<Vec<_>>());
        let lines = lines.unwrap_or_default();
        if lines.is_empty() {
            "(none)".to_owned()
        } else {
            lines.join("\n")
        }
    }

    /// SIGKILL to its process group: what it started goes too (a wrapper
    /// script's own children, say), not only the process itself.
    fn kill_group(&self) {
        let pgid = self
            .child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .and_then(rustix::process::Pid::from_raw);
        if let Some(pgid) = pgid {
            let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
        }
    }

    /// Stops it and what it started (SIGKILL: it has not accepted
    /// anything) and reaps it.
    async fn stop(&mut self) {
        self.kill_group();
        let _ = self.child.kill().await;
    }

    /// The error for a failure at this point: its exit, or what went wrong.
    async fn fail(mut self, stop: Stop, timeout: Duration) -> UpgradeError {
        let exited = match &stop {
            Stop::Exited(status) => Some(status.clone()),
            _ => None,
        };
        if exited.is_none() {
            self.stop().await;
        }
        let log = self.last_lines().await;
        let binary = self.binary.clone();
        match stop {
            Stop::Exited(status) => UpgradeError::Exited { binary, status, log },
            Stop::Timeout => UpgradeError::NotReady { binary, timeout, log },
            Stop::Wire(e) => UpgradeError::Failed {
                reason: e.to_string(),
                log,
            },
            Stop::Refused(reason) => UpgradeError::Failed { reason, log },
        }
    }
}

/// Why a step of the hand-over did not complete.
enum Stop {
    Exited(String),
    Timeout,
    Wire(WireError),
    Refused(String),
}

/// Runs `step` until it completes, the candidate exits, or `deadline`.
async fn step<T>(
    candidate: &mut Candidate,
    deadline: tokio::time::Instant,
    step: impl std::future::Future<Output = Result<T, WireError>>,
) -> Result<T, Stop> {
    let done = tokio::select! {
        done = step => done,
        status = candidate.child.wait() => return Err(Stop::Exited(match status {
            Ok(s) => s.to_string(),
            Err(e) => format!("an unknown status ({e})"),
        })),
        _ = tokio::time::sleep_until(deadline) => return Err(Stop::Timeout),
    };
    match done {
        Ok(v) => Ok(v),
        // A closed channel is most often the process exiting: say so.
        Err(e) => match tokio::time::timeout(Duration::from_secs(1), candidate.child.wait()).await {
            Ok(Ok(status)) => Err(Stop::Exited(status.to_string())),
            _ => Err(Stop::Wire(e)),
        },
    }
}

/// Copies the candidate's stderr to this process's, keeping the last lines.
fn tail(stderr: ChildStderr) -> (Arc<Mutex<VecDeque<String>>>, tokio::sync::watch::Receiver<bool>) {
    let lines = Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_LINES)));
    let (done_tx, done_rx) = tokio::sync::watch::channel(false);
    let keep = lines.clone();
    tokio::spawn(async move {
        let mut reader = BufReader::new(stderr);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line).trim_end().to_owned();
                    eprintln!("{text}");
                    if let Ok(mut l) = keep.lock() {
                        if l.len() == TAIL_LINES {
                            l.pop_front();
                        }
                        l.push_back(text);
                    }
                }
            }
        }
        let _ = done_tx.send(true);
    });
    (lines, done_rx)
}

/// The hand-over socket: beside the control socket (a directory only this
/// user can write, checked again here), else in a fresh private directory
/// of its own (`mkdtemp`, mode 0700) — never at a guessable name in a shared
/// directory; removed when dropped.
struct HandoverSocket {
    path: PathBuf,
    listener: UnixListener,
    _private: Option<tempfile::TempDir>,
}

impl HandoverSocket {
    fn bind(node: &Node) -> std::io::Result<Self> {
        let name = format!(".diem-upgrade-{}.sock", std::process::id());
        let beside = node
            .control
            .path()
            .and_then(|p| p.parent().map(|d| d.join(&name)))
            .filter(|p| p.as_os_str().len() < 100)
            .filter(|p| p.parent().is_some_and(|d| not_private(d).is_none()));
        let (path, private) = match beside {
            Some(path) => (path, None),
            None => {
                let dir = tempfile::Builder::new().prefix("diem-upgrade-").tempdir()?;
                (dir.path().join("handover.sock"), Some(dir))
            }
        };
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        Ok(Self {
            path,
            listener,
            _private: private,
        })
    }
}

impl Drop for HandoverSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Accepts the candidate's connection, refusing any other process.
async fn accept(socket: &HandoverSocket, pid: u32) -> Result<Channel, WireError> {
    loop {
        let (stream, _) = socket.listener.accept().await?;
        let channel = Channel::new(stream);
        match channel.peer_pid() {
            Some(peer) if u32::try_from(peer).ok() == Some(pid) => return Ok(channel),
            peer => tracing::warn!(
                ?peer,
                expected = pid,
                "hand-over connection refused: not the new process"
            ),
        }
    }
}

fn io_failure(binary: &Path) -> impl Fn(std::io::Error) -> UpgradeError + '_ {
    move |e| UpgradeError::Spawn {
        binary: binary.display().to_string(),
        reason: e.to_string(),
    }
}

/// What the new process must have before it is ready: what this one has.
fn needs(node: &Node) -> Needs {
    Needs {
        redis: node.limiter.backend() == crate::limiter::backend::Backend::Redis,
        postgres_corpus: node.corpus.status().source != Source::Embedded,
    }
}

/// Stops accepting here and releases what only one process may hold; the
/// new process accepts on the same sockets already.
async fn release(node: &Node) {
    let Some(root) = node.root() else { return };
    let _ = root.terminate_child(child::LISTENER).await;
    node.http.close();
    let _ = root.terminate_child(child::CONTROL).await;
    node.control.hand_over();
    // What only one process may hold: the new one starts these once told
    // they are free.
    for id in EXCLUSIVE {
        let _ = root.terminate_child(id).await;
    }
}

/// Runs one upgrade.
async fn upgrade(
    node: &Arc<Node>,
    binary: Option<PathBuf>,
    timeout: Duration,
) -> Result<UpgradeReport, UpgradeError> {
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + timeout;
    let binary = binary_path(binary)?;
    let shown = binary.display().to_string();
    tracing::info!(binary = %shown, timeout = ?timeout, "upgrade: starting the new process");
    let socket = HandoverSocket::bind(node).map_err(|e| UpgradeError::Failed {
        reason: format!("cannot bind the hand-over socket: {e}"),
        log: String::new(),
    })?;
    let passed: Vec<OwnedFd> = vec![
        node.http.duplicate().map_err(io_failure(&binary))?,
        node.control.duplicate().map_err(io_failure(&binary))?,
        rustix::io::fcntl_dupfd_cloexec(std::io::stderr(), 3)
            .map_err(std::io::Error::from)
            .map_err(io_failure(&binary))?,
    ];
    let mut child = Command::new(&binary)
        .args(std::env::args_os().skip(1))
        .env(SOCKET_VAR, &socket.path)
        // systemd's variables were for this process: the sockets come over
        // the hand-over socket, the watchdog applies to whichever process
        // pings.
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID")
        .env_remove("LISTEN_FDNAMES")
        .env_remove("WATCHDOG_PID")
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped())
        // A process group of its own, so that a failed candidate is
        // stopped with everything it started.
        .process_group(0)
        .spawn()
        .map_err(io_failure(&binary))?;
    let pid = child.id().unwrap_or_default();
    let (lines, tail_done) = match child.stderr.take() {
        Some(stderr) => tail(stderr),
        None => (Arc::default(), tokio::sync::watch::channel(true).1),
    };
    let mut candidate = Candidate {
        child,
        serves: false,
        tail: lines,
        tail_done,
        binary: shown.clone(),
    };

    macro_rules! or_fail {
        ($e:expr) => {
            match $e {
                Ok(v) => v,
                Err(stop) => return Err(candidate.fail(stop, timeout).await),
            }
        };
    }

    let mut channel = or_fail!(step(&mut candidate, deadline, accept(&socket, pid)).await);
    let connected = Instant::now();
    let hello = Message::Hello {
        old_pid: std::process::id(),
        old_version: env!("CARGO_PKG_VERSION").to_owned(),
        passed: vec![Passed::Http, Passed::Control, Passed::Stderr],
        needs: needs(node),
    };
    let fds: Vec<_> = passed.iter().map(AsFd::as_fd).collect();
    or_fail!(step(&mut candidate, deadline, channel.send(&hello, &fds)).await);
    drop(fds);
    drop(passed);
    let (pid_new, version) = match or_fail!(step(&mut candidate, deadline, channel.recv()).await).0 {
        Message::Ready { pid, version } => (pid, version),
        Message::Failed { reason } => return Err(candidate.fail(Stop::Refused(reason), timeout).await),
        other => {
            let reason = format!("unexpected message {other:?}");
            return Err(candidate.fail(Stop::Refused(reason), timeout).await);
        }
    };
    let ready = Instant::now();
    if node.is_draining() {
        let reason = "this node began shutting down meanwhile".to_owned();
        return Err(candidate.fail(Stop::Refused(reason), timeout).await);
    }
    // From here on the new process is the one that serves.
    let switch = tokio::time::Instant::now() + SWITCH_TIMEOUT;
    or_fail!(step(&mut candidate, switch, channel.send(&Message::Go, &[])).await);
    match or_fail!(step(&mut candidate, switch, channel.recv()).await).0 {
        Message::Accepting => candidate.serves = true,
        other => {
            let reason = format!("unexpected message {other:?}");
            return Err(candidate.fail(Stop::Refused(reason), timeout).await);
        }
    }
    release(node).await;
    if let Err(e) = channel.send(&Message::Released, &[]).await {
        tracing::warn!(error = %e, "upgrade: could not tell the new process the cluster port is free");
    }
    let done = Instant::now();
    crate::systemd::main_pid(
        pid_new,
        &format!(
            "upgraded: pid {pid_new} serves; pid {} drains",
            std::process::id()
        ),
    );
    let report = UpgradeReport {
        old: Process {
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        },
        new: Process {
            pid: pid_new,
            version,
        },
        binary: shown,
        phases: Phases {
            start_ms: millis(connected - started),
            init_ms: millis(ready - connected),
            handover_ms: millis(done - ready),
        },
        total_ms: millis(done - started),
    };
    tracing::info!(
        new_pid = report.new.pid,
        new_version = %report.new.version,
        start_ms = report.phases.start_ms,
        init_ms = report.phases.init_ms,
        handover_ms = report.phases.handover_ms,
        "upgrade: the new process serves; draining this one"
    );
    node.handed_over();
    Ok(report)
}
