//! # supervisors
//!
//! Erlang/OTP's `supervisor` behaviour on [ractor]: restart strategies
//! (`one_for_one`, `one_for_all`, `rest_for_one`, and `simple_one_for_one`
//! as [`Strategy::Dynamic`]), restart intensity and period, child specs with
//! restart types and shutdown timeouts, ordered start and shutdown,
//! significant children and auto shutdown, and the dynamic child API
//! (`start_child`, `terminate_child`, `restart_child`, `delete_child`,
//! `which_children`, `count_children`) with OTP's error cases.
//!
//! ractor alone links actors and reports their exits, but its default
//! supervisor reaction is to stop when a child stops. A [`Supervisor`] here
//! behaves point for point like OTP 25's; the conformance suite in
//! `tests/otp_conformance.rs` replays scenarios against traces recorded from
//! real Erlang. What differs from OTP, and why, is in `docs/supervisors.md`.
//!
//! Beyond OTP, and off unless asked for: per-child restart [`Backoff`],
//! a serialisable [`snapshot()`] of the whole tree, an [`EventBus`] of
//! supervision events, and the operations an operator runs on a live tree
//! ([`SupervisorRef::scale_to`] with a [`PoolSize`] kept across restarts,
//! [`SupervisorRef::kill_child`] answered once the replacement runs,
//! [`Resolved::restart`], rolling for a pool), and every actor's load —
//! mailbox, messages handled, handler time, the handler running now
//! ([`ActorLoad`], [`loads`], sent through [`Counted`] handles) — what
//! Erlang's `process_info` and etop show.
//!
//! With the `cluster` feature (for programs that enable ractor's `cluster`
//! feature, e.g. through ractor_cluster), the crate's message types
//! implement `ractor::Message` themselves, as that feature requires.
//!
//! ```
//! use ractor::{Actor, ActorProcessingErr, ActorRef};
//! use supervisors::*;
//!
//! struct Worker;
//! impl Actor for Worker {
//!     type Msg = ();
//!     type State = ();
//!     type Arguments = ();
//!     async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
//!         Ok(())
//!     }
//!     async fn handle(&self, _: ActorRef<()>, _: (), _: &mut ()) -> Result<(), ActorProcessingErr> {
//!         panic!("boom") // a crash: the supervisor restarts this worker
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let spec = SupervisorSpec::new(SupervisorFlags::new(Strategy::OneForOne).intensity(3))
//!     .child(ChildSpec::worker("w", |ctx| async move { ctx.spawn(Worker, ()).await }));
//! let root = start_root("app", spec, EventBus::new()).await.unwrap();
//! let before = root.supervisor().which_children().await.unwrap()[0].actor.clone().unwrap();
//! before.send_message(()).unwrap();
//! before.wait(None).await.unwrap();
//! let after = root.supervisor().which_children().await.unwrap();
//! assert_eq!(after[0].restarts, 1);
//! assert!(after[0].last_exit.as_ref().unwrap().to_string().contains("boom"));
//! root.shutdown().await;
//! # }
//! ```

// Dev-dependencies are in scope of the unit tests: checked outside them.
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

mod backoff;
mod child;
mod child_spec;
mod client;
mod counted;
mod error;
mod event;
mod exit_reason;
mod flags;
mod instrumented;
mod intensity;
mod load;
mod message;
mod pool_size;
mod registry;
mod root;
mod snapshot;
mod supervisor;
mod task;

pub use backoff::Backoff;
pub use child::{ChildCount, ChildInfo, ChildState};
pub use child_spec::{ChildArgs, ChildKind, ChildSpec, Restart, Shutdown, StartCtx, StartFn, StartFuture};
pub use client::SupervisorRef;
pub use counted::Counted;
pub use error::SupervisorError;
pub use event::{Event, EventBus};
pub use exit_reason::ExitReason;
pub use flags::{AutoShutdown, Strategy, SupervisorFlags};
pub use intensity::RestartWindow;
pub use load::{quantile_us, ActorLoad, LoadSample, Running, BUCKETS};
pub use message::{
    ArgsBox, Incarnation, KillOutcome, Killed, Scaled, StartChildArg, StartedChild, SupervisorInfo,
    SupervisorMsg,
};
pub use pool_size::PoolSize;
pub use registry::{for_each_load, kind_name, load_of, loads};
pub use root::{start_root, Root};
pub use snapshot::{resolve, snapshot, Intensity, Resolved, Restarted, TreeNode};
pub use supervisor::{Supervisor, SupervisorArgs, SupervisorSpec, SupervisorState};
pub use task::TaskResult;
