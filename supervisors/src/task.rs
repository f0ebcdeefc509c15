//! A child that is one task: OTP's `proc_lib:start_link` with a loop.
//!
//! Many children own one loop and nothing else — an accept loop, a
//! publisher, a ticker. In OTP such a process is started with
//! `proc_lib:start_link/3`: its start function sets up (and fails the
//! start if it cannot), acknowledges, then runs its loop; the process
//! exits when the loop returns, with the loop's reason. [`ChildSpec::task`](crate::ChildSpec::task)
//! is that shape on ractor: its start function returns a future (the
//! loop) once set up; the child exits when the loop ends — `normal` when it
//! returns `Ok(())`, a crash with the error (or the panic's message)
//! otherwise — and the loop is dropped (cancelled) when the supervisor
//! stops or kills the child.
//!
//! ```
//! use std::time::Duration;
//! use supervisors::*;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let spec = SupervisorSpec::new(SupervisorFlags::new(Strategy::OneForOne).intensity(5))
//!     .child(ChildSpec::task("ticker", |ctx| async move {
//!         // Set-up: an error here fails the start.
//!         let every = Duration::from_millis(1);
//!         let first = ctx.incarnation == 1;
//!         // The loop: its end is the child's exit.
//!         Ok(async move {
//!             tokio::time::sleep(every).await;
//!             if first {
//!                 return Err("the ticker gave up".into());
//!             }
//!             std::future::pending().await
//!         })
//!     }));
//! let root = start_root("app", spec, EventBus::new()).await.unwrap();
//! tokio::time::sleep(Duration::from_millis(50)).await;
//! let children = root.supervisor().which_children().await.unwrap();
//! assert_eq!(children[0].restarts, 1);
//! assert!(children[0].last_exit.as_ref().unwrap().to_string().contains("gave up"));
//! root.shutdown().await;
//! # }
//! ```

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;

use futures::FutureExt;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::task::JoinHandle;

/// What a task child's loop returns: `Ok(())` is a normal exit, an error
/// a crash with that reason.
pub type TaskResult = Result<(), ActorProcessingErr>;

/// The boxed loop of a task child.
pub(crate) type TaskLoop = Pin<Box<dyn Future<Output = TaskResult> + Send>>;

/// The actor that runs a task child's loop.
#[derive(Debug)]
pub(crate) struct TaskActor;

/// The loop ended, with this outcome.
#[derive(Debug)]
pub(crate) struct Ended(Result<(), String>);

#[cfg(feature = "cluster")]
impl ractor::Message for Ended {}

/// The running loop, cancelled when the actor's state is dropped — on a
/// stop, a kill or a crash alike.
#[derive(Debug)]
pub(crate) struct Running(JoinHandle<()>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panicked".to_owned())
}

impl Actor for TaskActor {
    type Msg = Ended;
    type State = Running;
    type Arguments = TaskLoop;

    async fn pre_start(
        &self,
        myself: ActorRef<Ended>,
        body: TaskLoop,
    ) -> Result<Running, ActorProcessingErr> {
        Ok(Running(tokio::spawn(async move {
            let outcome = match AssertUnwindSafe(body).catch_unwind().await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(panic) => Err(panic_message(panic.as_ref())),
            };
            let _ = myself.send_message(Ended(outcome));
        })))
    }

    async fn handle(
        &self,
        myself: ActorRef<Ended>,
        msg: Ended,
        _: &mut Running,
    ) -> Result<(), ActorProcessingErr> {
        match msg.0 {
            Ok(()) => {
                myself.stop(None);
                Ok(())
            }
            Err(reason) => Err(reason.into()),
        }
    }
}
