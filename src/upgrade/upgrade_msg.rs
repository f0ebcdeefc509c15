//! What the upgrader actor ([`upgrader`](super::upgrader)) accepts and
//! answers, apart from the actor, so that what it publishes
//! ([`shared`](super::shared)) and those who ask for an upgrade (the
//! control commands, the signal handler) need nothing of it.

use std::path::PathBuf;
use std::time::Duration;

use ractor::RpcReplyPort;
use ractor_cluster::RactorMessage;
use serde::Serialize;

/// Messages of the upgrader.
#[derive(Debug, RactorMessage)]
pub(crate) enum UpgradeMsg {
    /// Start an upgrade and answer when it is done (or has failed).
    Start {
        /// The new binary (`None`: the running executable's path, read
        /// again from disk).
        binary: Option<PathBuf>,
        /// How long the new process may take to be ready.
        timeout: Duration,
        /// Where the outcome goes.
        reply: RpcReplyPort<Result<UpgradeReport, UpgradeError>>,
    },
    /// The upgrade task ended (the next may start).
    Finished,
}

/// A process of the upgrade.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Process {
    /// Its pid.
    pub pid: u32,
    /// Its version.
    pub version: String,
}

/// How long each phase of an upgrade took, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Phases {
    /// From the command to the new process connected for the hand-over
    /// (fork, exec, its start-up).
    pub start_ms: u64,
    /// From the sockets passed to the new process ready (its tree up, the
    /// snapshot loaded, Redis connected if this process had it).
    pub init_ms: u64,
    /// From ready to the new process accepting and this one no longer
    /// accepting (the switch).
    pub handover_ms: u64,
}

/// A completed upgrade.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct UpgradeReport {
    /// The process that served before (it now drains and exits 0).
    pub old: Process,
    /// The process that serves now.
    pub new: Process,
    /// The binary the new process runs.
    pub binary: String,
    /// The phases.
    pub phases: Phases,
    /// The whole upgrade, in milliseconds.
    pub total_ms: u64,
}

/// Why an upgrade did not happen. In every case the running process goes
/// on serving, and the new one, if it was started, has been stopped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum UpgradeError {
    /// One is already running.
    #[error("an upgrade is already running (started {since_ms} ms ago); only one runs at a time")]
    Busy {
        /// How long it has been running.
        since_ms: u64,
    },
    /// The node is shutting down.
    #[error("the node is shutting down")]
    Draining,
    /// The upgrader cannot be reached.
    #[error("the upgrader is not running: {0}")]
    Unavailable(String),
    /// The binary cannot be used.
    #[error("cannot start {binary}: {reason}")]
    Spawn {
        /// The binary.
        binary: String,
        /// Why.
        reason: String,
    },
    /// The new process exited before it was ready.
    #[error("the new process ({binary}) exited with {status} before it was ready; its last lines:\n{log}")]
    Exited {
        /// The binary.
        binary: String,
        /// Its exit status.
        status: String,
        /// Its last log lines.
        log: String,
    },
    /// The new process was not ready in time.
    #[error(
        "the new process ({binary}) was not ready within {timeout:?}; stopped it; its last lines:\n{log}"
    )]
    NotReady {
        /// The binary.
        binary: String,
        /// The time it had.
        timeout: Duration,
        /// Its last log lines.
        log: String,
    },
    /// The hand-over failed.
    #[error("the hand-over to the new process failed: {reason}; stopped it; its last lines:\n{log}")]
    Failed {
        /// Why.
        reason: String,
        /// Its last log lines.
        log: String,
    },
}

impl UpgradeError {
    /// The error code of the control reply.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            UpgradeError::Busy { .. } => "busy",
            UpgradeError::Draining | UpgradeError::Unavailable(_) => "unavailable",
            UpgradeError::Spawn { .. } => "invalid_binary",
            UpgradeError::Exited { .. } | UpgradeError::NotReady { .. } | UpgradeError::Failed { .. } => {
                "upgrade_failed"
            }
        }
    }
}
