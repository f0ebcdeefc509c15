//! [`SupervisorRef`]: the supervisor API (OTP's `supervisor:start_child/2`,
//! `terminate_child/2`, ...) as async calls on a running supervisor, and
//! the operations an operator runs on a tree: [`scale_to`], [`kill_child`],
//! [`rolling_restart`].
//!
//! ```
//! use ractor::{Actor, ActorProcessingErr, ActorRef};
//! use supervisors::*;
//!
//! struct Idle;
//! impl Actor for Idle {
//!     type Msg = ();
//!     type State = ();
//!     type Arguments = ();
//!     async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
//!         Ok(())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let pool = SupervisorSpec::new(SupervisorFlags::new(Strategy::Dynamic).intensity(5))
//!     .child(ChildSpec::worker("w", |ctx| async move { ctx.spawn(Idle, ()).await }))
//!     .sized(2);
//! let root = start_root("pool", pool, EventBus::new()).await.unwrap();
//! let sup = root.supervisor();
//! assert_eq!(sup.scale_to(4).await.unwrap(), Scaled { from: 2, to: 4 });
//! // A kill is answered once the replacement runs.
//! let killed = sup.kill_child("1", None, false).await.unwrap();
//! assert_eq!(killed.reason.to_string(), "{injected,killed}");
//! assert!(matches!(killed.outcome, KillOutcome::Replaced(_)));
//! assert_eq!(sup.rolling_restart().await.unwrap(), 4);
//! assert_eq!(sup.inspect().await.unwrap().running().count(), 4);
//! root.shutdown().await;
//! # }
//! ```
//!
//! [`scale_to`]: SupervisorRef::scale_to
//! [`kill_child`]: SupervisorRef::kill_child
//! [`rolling_restart`]: SupervisorRef::rolling_restart

use ractor::rpc::CallResult;
use ractor::{ActorCell, ActorRef, RpcReplyPort};

use crate::child::{ChildCount, ChildInfo};
use crate::child_spec::{ChildArgs, ChildSpec};
use crate::error::SupervisorError;
use crate::exit_reason::ExitReason;
use crate::flags::Strategy;
use crate::message::{ArgsBox, Killed, Scaled, StartChildArg, StartedChild, SupervisorInfo, SupervisorMsg};

/// A handle on a running supervisor. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SupervisorRef {
    actor: ActorRef<SupervisorMsg>,
}

impl From<ActorRef<SupervisorMsg>> for SupervisorRef {
    fn from(actor: ActorRef<SupervisorMsg>) -> Self {
        Self { actor }
    }
}

impl SupervisorRef {
    /// The handle of the supervisor running as `cell`, if `cell` is one.
    pub fn from_cell(cell: ActorCell) -> Option<Self> {
        (cell.is_message_type_of::<SupervisorMsg>() == Some(true)).then(|| Self { actor: cell.into() })
    }

    /// The underlying actor.
    pub fn actor(&self) -> &ActorRef<SupervisorMsg> {
        &self.actor
    }

    async fn call<T: Send + 'static>(
        &self,
        msg: impl FnOnce(RpcReplyPort<T>) -> SupervisorMsg,
    ) -> Result<T, SupervisorError> {
        match self.actor.call(msg, None).await {
            Ok(CallResult::Success(v)) => Ok(v),
            Ok(CallResult::Timeout) => Err(SupervisorError::Unavailable("call timed out".into())),
            Ok(CallResult::SenderError) => Err(SupervisorError::Unavailable("supervisor stopped".into())),
            Err(e) => Err(SupervisorError::Unavailable(e.to_string())),
        }
    }

    /// Adds and starts a child on a static supervisor.
    pub async fn start_child(&self, spec: ChildSpec) -> Result<StartedChild, SupervisorError> {
        self.call(|r| SupervisorMsg::StartChild(StartChildArg::Spec(spec), r))
            .await?
    }

    /// Starts a new instance on a dynamic supervisor with these extra
    /// arguments; returns its instance id.
    pub async fn start_instance(&self, args: ChildArgs) -> Result<StartedChild, SupervisorError> {
        self.call(|r| SupervisorMsg::StartChild(StartChildArg::Args(ArgsBox(Some(args))), r))
            .await?
    }

    /// A dynamic supervisor: starts or stops instances (newest first) until
    /// `n` run; a [sized](crate::SupervisorSpec::sized) one also restarts
    /// with `n` from now on.
    pub async fn scale_to(&self, n: usize) -> Result<Scaled, SupervisorError> {
        self.call(|r| SupervisorMsg::Scale(n, r)).await?
    }

    /// Kills child `id` as an injected fault — outright, or by a graceful
    /// stop with `reason` — and returns once its supervisor has reacted:
    /// the replacement runs, or the child is not restarted. Its exit is
    /// recorded as `{injected, Reason}`. Refused when the restart would
    /// exceed the restart intensity (the supervisor would give up), unless
    /// `force`.
    pub async fn kill_child(
        &self,
        id: &str,
        reason: Option<String>,
        force: bool,
    ) -> Result<Killed, SupervisorError> {
        let id = id.to_owned();
        self.call(|reply| SupervisorMsg::Kill {
            id,
            reason,
            force,
            reply,
        })
        .await?
    }

    /// Replaces every running child, one at a time, each by a graceful
    /// stop and a fresh start: for a dynamic supervisor a new instance is
    /// started before the old one stops (so capacity never drops), for a
    /// static one each child is terminated and restarted in start order.
    /// Returns how many were replaced. Not in OTP.
    pub async fn rolling_restart(&self) -> Result<usize, SupervisorError> {
        let info = self.inspect().await?;
        let running: Vec<String> = info.running().map(|c| c.id.clone()).collect();
        for id in &running {
            if info.flags.strategy == Strategy::Dynamic {
                self.call(|r| SupervisorMsg::StartChild(StartChildArg::Args(ArgsBox(None)), r))
                    .await??;
                self.terminate_child(id).await?;
            } else {
                self.terminate_child(id).await?;
                self.restart_child(id).await?;
            }
        }
        Ok(running.len())
    }

    /// Replaces one instance of a dynamic supervisor: a new one starts,
    /// then `id` stops gracefully. Returns the new instance.
    pub async fn replace_instance(&self, id: &str) -> Result<StartedChild, SupervisorError> {
        let started = self
            .call(|r| SupervisorMsg::StartChild(StartChildArg::Args(ArgsBox(None)), r))
            .await??;
        self.terminate_child(id).await?;
        Ok(started)
    }

    /// Whether this is a dynamic (`simple_one_for_one`) supervisor.
    pub async fn is_dynamic(&self) -> Result<bool, SupervisorError> {
        Ok(self.inspect().await?.flags.strategy == Strategy::Dynamic)
    }

    /// Terminates a child; a temporary child's spec (or a dynamic instance)
    /// is removed, others are kept as stopped.
    pub async fn terminate_child(&self, id: &str) -> Result<(), SupervisorError> {
        let id = id.to_owned();
        self.call(|r| SupervisorMsg::TerminateChild(id, r)).await?
    }

    /// Starts a stopped child again.
    pub async fn restart_child(&self, id: &str) -> Result<StartedChild, SupervisorError> {
        let id = id.to_owned();
        self.call(|r| SupervisorMsg::RestartChild(id, r)).await?
    }

    /// Removes a stopped child's spec.
    pub async fn delete_child(&self, id: &str) -> Result<(), SupervisorError> {
        let id = id.to_owned();
        self.call(|r| SupervisorMsg::DeleteChild(id, r)).await?
    }

    /// The children in reverse start order.
    pub async fn which_children(&self) -> Result<Vec<ChildInfo>, SupervisorError> {
        self.call(SupervisorMsg::WhichChildren).await
    }

    /// Counts of specs, running children, supervisors and workers.
    pub async fn count_children(&self) -> Result<ChildCount, SupervisorError> {
        self.call(SupervisorMsg::CountChildren).await
    }

    /// The supervisor's description and its children in start order.
    pub async fn inspect(&self) -> Result<SupervisorInfo, SupervisorError> {
        self.call(SupervisorMsg::Inspect).await
    }

    /// Stops the supervisor with `reason` (its children first, in reverse
    /// start order) and waits until it is gone.
    pub async fn stop(&self, reason: ExitReason) {
        let cell = self.actor.get_cell();
        cell.stop(Some(reason.to_stop_reason()));
        let _ = cell.wait(None).await;
    }
}
