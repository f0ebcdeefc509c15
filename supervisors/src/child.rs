//! A supervisor's record of one child, and the views of it that calls return.

use std::sync::Arc;
use std::time::Instant;

use ractor::ActorCell;
use serde::{Deserialize, Serialize};

use crate::child_spec::{ChildArgs, ChildKind, ChildSpec};
use crate::exit_reason::ExitReason;

/// The state of a child as `which_children` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildState {
    /// A process is running for this child.
    Running,
    /// The spec is kept but no process runs (OTP's `undefined`).
    Stopped,
    /// A restart is pending (backoff, or a failed start being retried).
    Restarting,
}

impl std::fmt::Display for ChildState {
    /// `running`, `stopped` or `restarting`, as in JSON.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Running => "running",
            Self::Stopped => "stopped",
            Self::Restarting => "restarting",
        })
    }
}

/// One child as returned by `which_children` and `inspect`.
#[derive(Clone, Debug)]
pub struct ChildInfo {
    /// The child's id (for a dynamic instance, its instance number).
    pub id: String,
    /// The child's path in the tree.
    pub path: String,
    /// The running process, if any.
    pub actor: Option<ActorCell>,
    /// Running, stopped or restarting.
    pub state: ChildState,
    /// Worker or supervisor.
    pub kind: ChildKind,
    /// Restarts made by the supervisor after exits.
    pub restarts: u64,
    /// Processes started for this child so far.
    pub incarnation: u64,
    /// Why the previous process exited, if one did.
    pub last_exit: Option<ExitReason>,
    /// When the current process started.
    pub started_at: Option<Instant>,
}

/// Counts returned by `count_children` (OTP's `specs`, `active`,
/// `supervisors`, `workers`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildCount {
    /// All child specs (dynamic: all instances).
    pub specs: usize,
    /// Children with a running process.
    pub active: usize,
    /// Children that are supervisors.
    pub supervisors: usize,
    /// Children that are workers.
    pub workers: usize,
}

/// The supervisor-side record of a child.
pub(crate) struct Child {
    pub(crate) spec: ChildSpec,
    pub(crate) id: Arc<str>,
    pub(crate) path: Arc<str>,
    pub(crate) args: Option<ChildArgs>,
    pub(crate) actor: Option<ActorCell>,
    pub(crate) state: ChildState,
    pub(crate) incarnation: u64,
    pub(crate) restarts: u64,
    pub(crate) last_exit: Option<ExitReason>,
    pub(crate) started_at: Option<Instant>,
    pub(crate) backoff_attempt: u32,
}

impl Child {
    pub(crate) fn new(spec: ChildSpec, id: Arc<str>, path: Arc<str>, args: Option<ChildArgs>) -> Self {
        Self {
            spec,
            id,
            path,
            args,
            actor: None,
            state: ChildState::Stopped,
            incarnation: 0,
            restarts: 0,
            last_exit: None,
            started_at: None,
            backoff_attempt: 0,
        }
    }

    pub(crate) fn info(&self) -> ChildInfo {
        ChildInfo {
            id: self.id.to_string(),
            path: self.path.to_string(),
            actor: self.actor.clone(),
            state: self.state,
            kind: self.spec.kind,
            restarts: self.restarts,
            incarnation: self.incarnation,
            last_exit: self.last_exit.clone(),
            started_at: self.started_at,
        }
    }
}
