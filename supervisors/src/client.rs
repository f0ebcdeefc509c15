//! [`SupervisorRef`]: the supervisor API (OTP's `supervisor:start_child/2`,
//! `terminate_child/2`, ...) as async calls on a running supervisor.

use ractor::rpc::CallResult;
use ractor::{ActorCell, ActorRef, RpcReplyPort};

use crate::child::{ChildCount, ChildInfo};
use crate::child_spec::{ChildArgs, ChildSpec};
use crate::error::SupervisorError;
use crate::exit_reason::ExitReason;
use crate::supervisor::{ArgsBox, StartChildArg, StartedChild, SupervisorInfo, SupervisorMsg};

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
        self.call(|r| SupervisorMsg::StartChild(StartChildArg::Args(ArgsBox(args)), r))
            .await?
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
