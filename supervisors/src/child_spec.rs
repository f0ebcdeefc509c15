//! Child specifications: OTP's `#{id, start, restart, shutdown, type,
//! significant}`.
//!
//! A [`ChildSpec`] tells a supervisor how to start a child (a function it
//! calls again on every restart), when to restart it ([`Restart`]) and how
//! to stop it ([`Shutdown`]).
//!
//! ```
//! use ractor::{Actor, ActorProcessingErr, ActorRef};
//! use supervisors::{ChildSpec, Restart, Shutdown};
//!
//! struct Echo;
//! impl Actor for Echo {
//!     type Msg = ();
//!     type State = ();
//!     type Arguments = ();
//!     async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
//!         Ok(())
//!     }
//! }
//!
//! let spec = ChildSpec::worker("echo", |ctx| async move { ctx.spawn(Echo, ()).await })
//!     .restart(Restart::Transient)
//!     .shutdown(Shutdown::BrutalKill);
//! assert_eq!(spec.id, "echo");
//! ```

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorCell, ActorProcessingErr};
use serde::{Deserialize, Serialize};

use crate::backoff::Backoff;
use crate::event::EventBus;
use crate::instrumented::Instrumented;
use crate::load::ActorLoad;
use crate::task::{TaskActor, TaskLoop, TaskResult};

/// When a child is restarted (OTP's `restart`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Restart {
    /// Always restarted, whatever the exit reason (the default).
    #[default]
    Permanent,
    /// Restarted only after an abnormal exit (not `normal`, `shutdown` or
    /// `{shutdown, _}`).
    Transient,
    /// Never restarted; its spec is removed when it exits.
    Temporary,
}

/// How a child is stopped (OTP's `shutdown`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shutdown {
    /// Killed at once; its cleanup (`post_stop`) does not run.
    BrutalKill,
    /// Asked to stop (reason `shutdown`) and killed if it has not stopped
    /// within the timeout.
    Timeout(Duration),
    /// Asked to stop and waited for as long as it takes (the default for
    /// supervisors, so that they can stop their own subtrees).
    Infinity,
}

/// Whether a child is a worker or a supervisor (OTP's `type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildKind {
    /// A worker.
    Worker,
    /// A supervisor.
    Supervisor,
}

/// Extra start arguments of a dynamic (`simple_one_for_one`) instance,
/// handed to the template's start function on every (re)start.
pub type ChildArgs = Arc<dyn Any + Send + Sync>;

/// The boxed future a start function returns.
pub type StartFuture = Pin<Box<dyn Future<Output = Result<ActorCell, ActorProcessingErr>> + Send>>;

/// A start function: called for the first start and again for every
/// restart. It must spawn the child linked to `ctx.supervisor` (use
/// [`StartCtx::spawn`]) and return its cell once the child has started.
pub type StartFn = Arc<dyn Fn(StartCtx) -> StartFuture + Send + Sync>;

/// What a start function is given.
#[derive(Clone)]
pub struct StartCtx {
    /// The supervisor that the child must be linked to.
    pub supervisor: ActorCell,
    /// The child's id within its supervisor.
    pub id: String,
    /// The child's path in the tree, e.g. `diem/workers/3`.
    pub path: String,
    /// How many times a process was started for this child so far,
    /// this one included (1 on the first start).
    pub incarnation: u64,
    /// The extra arguments of a dynamic instance, if any.
    pub args: Option<ChildArgs>,
    /// The tree's event bus, for child supervisors.
    pub events: EventBus,
}

impl fmt::Debug for StartCtx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StartCtx")
            .field("id", &self.id)
            .field("path", &self.path)
            .field("incarnation", &self.incarnation)
            .finish_non_exhaustive()
    }
}

impl StartCtx {
    /// Spawns `actor` linked to the supervisor and returns its cell once
    /// its `pre_start` has succeeded. The actor's messages are counted and
    /// timed in an [`ActorLoad`] of its path (see
    /// [`loads`](crate::loads)); its message type's `Debug` names their
    /// kinds.
    pub async fn spawn<A>(&self, actor: A, args: A::Arguments) -> Result<ActorCell, ActorProcessingErr>
    where
        A: Actor,
        A::Msg: std::fmt::Debug,
    {
        self.spawn_as(None, actor, args).await
    }

    /// Like [`spawn`](Self::spawn), registering the actor under `name`
    /// (ractor's named registry: `ractor::registry::where_is(name)`; a
    /// remote node sees the name too). A name still held by a dying
    /// previous incarnation makes the start fail, and the supervisor
    /// retries it.
    pub async fn spawn_named<A>(
        &self,
        name: String,
        actor: A,
        args: A::Arguments,
    ) -> Result<ActorCell, ActorProcessingErr>
    where
        A: Actor,
        A::Msg: std::fmt::Debug,
    {
        self.spawn_as(Some(name), actor, args).await
    }

    async fn spawn_as<A>(
        &self,
        name: Option<String>,
        actor: A,
        args: A::Arguments,
    ) -> Result<ActorCell, ActorProcessingErr>
    where
        A: Actor,
        A::Msg: std::fmt::Debug,
    {
        let actor = Instrumented {
            actor,
            load: Arc::new(ActorLoad::new(self.path.as_str().into())),
        };
        match self.supervisor.spawn_linked(name, actor, args).await {
            Ok((actor_ref, _join)) => Ok(actor_ref.get_cell()),
            // The child's own start error (or panic message), not ractor's wrapper.
            Err(ractor::SpawnErr::StartupFailed(inner)) => Err(inner),
            Err(e) => Err(e.into()),
        }
    }

    /// The extra arguments of a dynamic instance, downcast to `T`.
    pub fn args<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.args.as_ref().and_then(|a| a.downcast_ref::<T>())
    }
}

/// The specification of one child.
#[derive(Clone)]
pub struct ChildSpec {
    /// Unique id among the supervisor's children.
    pub id: String,
    /// Starts the child; called again on every restart.
    pub start: StartFn,
    /// When the child is restarted.
    pub restart: Restart,
    /// How the child is stopped.
    pub shutdown: Shutdown,
    /// Worker or supervisor.
    pub kind: ChildKind,
    /// Whether the child's exit can trigger the supervisor's auto shutdown.
    pub significant: bool,
    /// Optional restart backoff (not in OTP; `None` by default).
    pub backoff: Option<Backoff>,
}

impl fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildSpec")
            .field("id", &self.id)
            .field("restart", &self.restart)
            .field("shutdown", &self.shutdown)
            .field("kind", &self.kind)
            .field("significant", &self.significant)
            .field("backoff", &self.backoff)
            .finish_non_exhaustive()
    }
}

impl ChildSpec {
    /// A permanent worker stopped with a 5000 ms timeout (OTP's defaults).
    pub fn worker<F, Fut>(id: impl Into<String>, start: F) -> Self
    where
        F: Fn(StartCtx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ActorCell, ActorProcessingErr>> + Send + 'static,
    {
        Self {
            id: id.into(),
            start: Arc::new(move |ctx| Box::pin(start(ctx))),
            restart: Restart::Permanent,
            shutdown: Shutdown::Timeout(Duration::from_millis(5000)),
            kind: ChildKind::Worker,
            significant: false,
            backoff: None,
        }
    }

    /// A permanent worker that is one task:
    /// `start` sets up — an error fails the start, as OTP's `init` — and
    /// returns the loop; the child exits when the loop ends (`normal` on
    /// `Ok(())`, a crash with the error or the panic's message otherwise)
    /// and the loop is cancelled when the child is stopped or killed.
    /// OTP's `proc_lib:start_link` with a loop.
    ///
    /// ```
    /// use supervisors::ChildSpec;
    ///
    /// let spec = ChildSpec::task("accept", |ctx| async move {
    ///     let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    ///     tracing::info!(path = %ctx.path, "listening");
    ///     Ok(async move {
    ///         loop {
    ///             let (_stream, _peer) = listener.accept().await?;
    ///         }
    ///     })
    /// });
    /// assert_eq!(spec.id, "accept");
    /// ```
    pub fn task<F, Fut, L>(id: impl Into<String>, start: F) -> Self
    where
        F: Fn(StartCtx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<L, ActorProcessingErr>> + Send + 'static,
        L: Future<Output = TaskResult> + Send + 'static,
    {
        let start = Arc::new(start);
        Self::worker(id, move |ctx: StartCtx| {
            let start = start.clone();
            async move {
                let body: TaskLoop = Box::pin(start(ctx.clone()).await?);
                ctx.spawn(TaskActor, body).await
            }
        })
    }

    /// Sets the restart type.
    pub fn restart(mut self, restart: Restart) -> Self {
        self.restart = restart;
        self
    }

    /// Sets the shutdown.
    pub fn shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// Marks the child significant (only with transient or temporary).
    pub fn significant(mut self, significant: bool) -> Self {
        self.significant = significant;
        self
    }

    /// Sets a restart backoff.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = Some(backoff);
        self
    }

    /// Sets the kind (worker or supervisor).
    pub fn kind(mut self, kind: ChildKind) -> Self {
        self.kind = kind;
        self
    }
}
