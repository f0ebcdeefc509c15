//! What a supervisor is asked and what it answers: the messages behind
//! [`SupervisorRef`](crate::SupervisorRef)'s calls and the values they
//! return.
//!
//! Use [`SupervisorRef`](crate::SupervisorRef) rather than building the
//! messages by hand.

use std::time::Instant;

use ractor::{ActorCell, RpcReplyPort};

use crate::child::{ChildCount, ChildInfo};
use crate::child_spec::{ChildArgs, ChildSpec};
use crate::error::SupervisorError;
use crate::exit_reason::ExitReason;
use crate::flags::SupervisorFlags;

/// The first argument of `start_child`.
#[derive(Clone, Debug)]
pub enum StartChildArg {
    /// A new child spec, for a static supervisor.
    Spec(ChildSpec),
    /// Extra arguments of a new instance, for a dynamic supervisor.
    Args(ArgsBox),
}

/// Extra arguments of a dynamic instance, wrapped for `Debug` (`None`: the
/// instance gets none).
#[derive(Clone)]
pub struct ArgsBox(pub Option<ChildArgs>);

impl std::fmt::Debug for ArgsBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ArgsBox(..)")
    }
}

/// A child started by `start_child` or `restart_child`.
#[derive(Clone, Debug)]
pub struct StartedChild {
    /// Its id (for a dynamic instance, the instance number).
    pub id: String,
    /// Its process.
    pub cell: ActorCell,
}

/// What a supervisor says about itself and its children.
#[derive(Clone, Debug)]
pub struct SupervisorInfo {
    /// Its path.
    pub path: String,
    /// Its flags.
    pub flags: SupervisorFlags,
    /// When it started.
    pub started_at: Instant,
    /// Restarts inside its intensity window now: at `flags.intensity`, the
    /// next restart makes it give up.
    pub restarts_in_window: usize,
    /// A sized dynamic supervisor's wanted number of instances (see
    /// [`SupervisorSpec::sized`](crate::SupervisorSpec::sized)).
    pub target: Option<usize>,
    /// Its children in start order.
    pub children: Vec<ChildInfo>,
}

impl SupervisorInfo {
    /// The children with a running process, in start order.
    pub fn running(&self) -> impl Iterator<Item = &ChildInfo> {
        self.children.iter().filter(|c| c.actor.is_some())
    }
}

/// The result of [`SupervisorRef::scale_to`](crate::SupervisorRef::scale_to).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Scaled {
    /// Running instances before.
    pub from: usize,
    /// Running instances now.
    pub to: usize,
}

/// One process of a child: which actor, and which start of the child it was.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Incarnation {
    /// The actor id.
    pub actor: String,
    /// Starts of the child so far when this process started (1 = first).
    pub incarnation: u64,
}

/// What became of a child after
/// [`SupervisorRef::kill_child`](crate::SupervisorRef::kill_child).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KillOutcome {
    /// The supervisor restarted it; the replacement runs.
    Replaced(Incarnation),
    /// It was not restarted (its restart type says so, or a backoff delays
    /// it): its state is `stopped` or `restarting`.
    NotRestarted,
}

/// The answer to [`SupervisorRef::kill_child`](crate::SupervisorRef::kill_child).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Killed {
    /// The process that was killed.
    pub died: Incarnation,
    /// Its recorded exit reason.
    pub reason: ExitReason,
    /// What happened next.
    pub outcome: KillOutcome,
    /// From the kill to the replacement running, measured by the supervisor.
    pub recovery_us: Option<u64>,
}

/// The messages a supervisor handles.
#[derive(Debug)]
pub enum SupervisorMsg {
    /// OTP's `start_child/2`.
    StartChild(StartChildArg, RpcReplyPort<Result<StartedChild, SupervisorError>>),
    /// OTP's `terminate_child/2`.
    TerminateChild(String, RpcReplyPort<Result<(), SupervisorError>>),
    /// OTP's `restart_child/2`.
    RestartChild(String, RpcReplyPort<Result<StartedChild, SupervisorError>>),
    /// OTP's `delete_child/2`.
    DeleteChild(String, RpcReplyPort<Result<(), SupervisorError>>),
    /// OTP's `which_children/1` (reverse start order).
    WhichChildren(RpcReplyPort<Vec<ChildInfo>>),
    /// OTP's `count_children/1`.
    CountChildren(RpcReplyPort<ChildCount>),
    /// The supervisor's own description and its children in start order.
    Inspect(RpcReplyPort<SupervisorInfo>),
    /// A dynamic supervisor: start or stop instances until `n` run.
    Scale(usize, RpcReplyPort<Result<Scaled, SupervisorError>>),
    /// Kill a child as an injected fault; the reply comes once the
    /// supervisor has reacted (the replacement runs, or it will not).
    Kill {
        /// The child's id.
        id: String,
        /// A reason for a graceful stop; `None` kills outright.
        reason: Option<String>,
        /// Kill even if the restart would exceed the restart intensity.
        force: bool,
        /// Where the outcome goes.
        reply: RpcReplyPort<Result<Killed, SupervisorError>>,
    },
    /// Internal: a delayed restart (backoff) or a retry after a failed start.
    Retry {
        /// The child's key.
        key: u64,
        /// Whether this attempt counts towards the intensity.
        counts: bool,
    },
}

#[cfg(feature = "cluster")]
impl ractor::Message for SupervisorMsg {}
