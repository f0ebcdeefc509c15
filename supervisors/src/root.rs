//! The root of a tree and its keeper (Erlang's `heart`).
//!
//! A root supervisor has no supervisor above it to learn how it exited.
//! [`start_root`] links it to a small keeper actor that records its exit
//! reason, so that a program can wait for the root and, if it gave up
//! (exit reason `shutdown` without having been asked to stop), exit non-zero
//! and let systemd or Kubernetes start it again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use tokio::sync::{oneshot, watch};

use crate::client::SupervisorRef;
use crate::error::{spawn_error, SupervisorError};
use crate::event::EventBus;
use crate::exit_reason::ExitReason;
use crate::supervisor::{Supervisor, SupervisorArgs, SupervisorSpec};

/// A running root supervisor. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Root {
    supervisor: SupervisorRef,
    exit: watch::Receiver<Option<ExitReason>>,
    requested: Arc<AtomicBool>,
}

/// Starts `spec` as the root supervisor of a tree called `name` (its path).
/// Fails, naming the child, if a child fails to start.
pub async fn start_root(name: &str, spec: SupervisorSpec, events: EventBus) -> Result<Root, SupervisorError> {
    let (started_tx, started_rx) = oneshot::channel();
    let (exit_tx, exit) = watch::channel(None);
    let args = SupervisorArgs {
        spec,
        path: name.to_owned(),
        events,
    };
    Actor::spawn(None, Keeper, (args, started_tx, exit_tx))
        .await
        .map_err(|e| spawn_error(name, e))?;
    let supervisor = started_rx
        .await
        .map_err(|_| SupervisorError::Unavailable("root keeper stopped".into()))?;
    Ok(Root {
        supervisor,
        exit,
        requested: Arc::new(AtomicBool::new(false)),
    })
}

impl Root {
    /// The root supervisor.
    pub fn supervisor(&self) -> &SupervisorRef {
        &self.supervisor
    }

    /// Waits until the root supervisor has stopped and returns its exit
    /// reason.
    pub async fn wait(&self) -> ExitReason {
        let mut exit = self.exit.clone();
        let reason = match exit.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone().unwrap_or(ExitReason::Killed),
            Err(_) => ExitReason::Killed,
        };
        reason
    }

    /// Whether [`shutdown`](Self::shutdown) was called. A root that stopped
    /// without it gave up (or shut down automatically): a program should then
    /// exit non-zero.
    pub fn stop_was_requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }

    /// Stops the tree (reason `shutdown`, children in reverse start order)
    /// and waits for it.
    pub async fn shutdown(&self) -> ExitReason {
        self.requested.store(true, Ordering::SeqCst);
        self.supervisor.stop(ExitReason::Shutdown).await;
        self.wait().await
    }
}

struct Keeper;

/// The keeper takes no messages: it only watches the root.
enum KeeperMsg {}

#[cfg(feature = "cluster")]
impl ractor::Message for KeeperMsg {}

struct KeeperState {
    exit: watch::Sender<Option<ExitReason>>,
}

impl Actor for Keeper {
    type Msg = KeeperMsg;
    type State = KeeperState;
    type Arguments = (
        SupervisorArgs,
        oneshot::Sender<SupervisorRef>,
        watch::Sender<Option<ExitReason>>,
    );

    async fn pre_start(
        &self,
        myself: ActorRef<KeeperMsg>,
        args: Self::Arguments,
    ) -> Result<KeeperState, ActorProcessingErr> {
        let (args, started, exit) = args;
        let (sup, _) = Supervisor::spawn_with(args, Some(myself.get_cell())).await?;
        let _ = started.send(sup);
        Ok(KeeperState { exit })
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<KeeperMsg>,
        event: SupervisionEvent,
        state: &mut KeeperState,
    ) -> Result<(), ActorProcessingErr> {
        let reason = match event {
            SupervisionEvent::ActorTerminated(_, _, reason) => {
                ExitReason::from_stop_reason(reason.as_deref())
            }
            SupervisionEvent::ActorFailed(_, err) => ExitReason::Error(err.to_string()),
            _ => return Ok(()),
        };
        state.exit.send_replace(Some(reason));
        myself.stop(None);
        Ok(())
    }
}
