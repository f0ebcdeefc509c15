//! The supervisor behaviour: an actor that starts, watches and restarts its
//! children exactly as OTP's `supervisor` does.
//!
//! A [`Supervisor`] is a ractor actor. It is started from a
//! [`SupervisorSpec`] (flags and child specs), starts its children in order
//! inside its own `pre_start` (so its start fails, naming the child, if one
//! of them fails), reacts to their exits by the restart strategy, gives up
//! when the restart intensity is exceeded, and stops its children in reverse
//! start order when it stops.
//!
//! ```
//! use ractor::{Actor, ActorProcessingErr, ActorRef};
//! use supervisors::{ChildSpec, EventBus, Strategy, SupervisorFlags, SupervisorSpec, start_root};
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
//! let spec = SupervisorSpec::new(SupervisorFlags::new(Strategy::OneForOne))
//!     .child(ChildSpec::worker("a", |ctx| async move { ctx.spawn(Idle, ()).await }))
//!     .child(ChildSpec::worker("b", |ctx| async move { ctx.spawn(Idle, ()).await }));
//! let root = start_root("app", spec, EventBus::new()).await.unwrap();
//! let ids: Vec<_> = root.supervisor().which_children().await.unwrap()
//!     .into_iter().map(|c| c.id).collect();
//! assert_eq!(ids, ["b", "a"]); // reverse start order, as OTP
//! root.shutdown().await;
//! # }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::concurrency::JoinHandle;
use ractor::{
    Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, ActorStatus, RpcReplyPort, SupervisionEvent,
};

use crate::child::{Child, ChildCount, ChildState};
use crate::child_spec::{ChildArgs, ChildKind, ChildSpec, Restart, Shutdown, StartCtx};
use crate::client::SupervisorRef;
use crate::error::{spawn_error, SupervisorError};
use crate::event::{Event, EventBus};
use crate::exit_reason::ExitReason;
use crate::flags::{AutoShutdown, Strategy, SupervisorFlags};
use crate::intensity::RestartWindow;
use crate::message::{
    ArgsBox, Incarnation, KillOutcome, Killed, Scaled, StartChildArg, StartedChild, SupervisorInfo,
    SupervisorMsg,
};
use crate::pool_size::PoolSize;

// ---- The specification: flags and children (OTP's init/1 result) ----

/// A supervisor's flags and its children's specs (OTP's `init/1` result).
/// For [`Strategy::Dynamic`], `children` holds exactly one spec: the
/// template of every instance.
#[derive(Clone, Debug)]
pub struct SupervisorSpec {
    /// The supervisor flags.
    pub flags: SupervisorFlags,
    /// The children, in start order (or the dynamic template).
    pub children: Vec<ChildSpec>,
    /// [`Strategy::Dynamic`] only, not in OTP: how many instances (without
    /// extra arguments) the supervisor runs, at every start and after
    /// [`SupervisorRef::scale_to`]. `None` starts empty, as OTP's
    /// `simple_one_for_one`.
    pub size: Option<PoolSize>,
}

impl SupervisorSpec {
    /// A spec with these flags and no children yet.
    pub fn new(flags: SupervisorFlags) -> Self {
        Self {
            flags,
            children: Vec::new(),
            size: None,
        }
    }

    /// Dynamic supervisors: run `n` instances, at every start (see
    /// [`SupervisorSpec::size`]).
    pub fn sized(mut self, n: usize) -> Self {
        self.size = Some(PoolSize::new(n));
        self
    }

    /// Appends a child (start order is the order of calls).
    pub fn child(mut self, spec: ChildSpec) -> Self {
        self.children.push(spec);
        self
    }

    /// This supervisor as a child of another one: a permanent child of kind
    /// supervisor with shutdown `infinity` (OTP's defaults).
    pub fn into_child_spec(self, id: impl Into<String>) -> ChildSpec {
        let spec = self;
        ChildSpec::worker(id, move |ctx: StartCtx| {
            let args = SupervisorArgs {
                spec: spec.clone(),
                path: ctx.path.clone(),
                events: ctx.events.clone(),
            };
            async move { ctx.spawn(Supervisor, args).await }
        })
        .kind(ChildKind::Supervisor)
        .shutdown(Shutdown::Infinity)
    }
}

// ---- The actor and its state ----

/// What a [`Supervisor`] actor is started with.
#[derive(Clone, Debug)]
pub struct SupervisorArgs {
    /// Flags and children.
    pub spec: SupervisorSpec,
    /// The supervisor's path in the tree (e.g. `diem/store`).
    pub path: String,
    /// Where the supervisor reports what it does.
    pub events: EventBus,
}

/// The supervisor actor. Start it with [`start_root`](crate::start_root),
/// as a child with [`SupervisorSpec::into_child_spec`], or spawn it yourself
/// with [`SupervisorArgs`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Supervisor;

impl Supervisor {
    /// Spawns a supervisor linked to `parent` (or unlinked with `None`).
    pub async fn spawn_with(
        args: SupervisorArgs,
        parent: Option<ActorCell>,
    ) -> Result<(SupervisorRef, JoinHandle<()>), SupervisorError> {
        let path = args.path.clone();
        let spawned = match parent {
            Some(p) => Actor::spawn_linked(None, Supervisor, args, p).await,
            None => Actor::spawn(None, Supervisor, args).await,
        };
        spawned
            .map(|(r, h)| (SupervisorRef::from(r), h))
            .map_err(|e| spawn_error(&path, e))
    }
}

/// A `kill` waiting for its supervisor's reaction.
struct KillWaiter {
    reply: RpcReplyPort<Result<Killed, SupervisorError>>,
    died: Incarnation,
    reason: ExitReason,
    at: Instant,
}

impl KillWaiter {
    fn answer(self, outcome: KillOutcome) {
        let recovery_us = matches!(outcome, KillOutcome::Replaced(_))
            .then(|| u64::try_from(self.at.elapsed().as_micros()).unwrap_or(u64::MAX));
        let _ = self.reply.send(Ok(Killed {
            died: self.died,
            reason: self.reason,
            outcome,
            recovery_us,
        }));
    }
}

/// The supervisor's state (OTP's `#state{}`).
pub struct SupervisorState {
    myself: ActorCell,
    flags: SupervisorFlags,
    path: Arc<str>,
    events: EventBus,
    template: Option<ChildSpec>,
    size: PoolSize,
    kills: HashMap<u64, KillWaiter>,
    children: BTreeMap<u64, Child>,
    by_actor: HashMap<ActorId, u64>,
    by_id: HashMap<Arc<str>, u64>,
    next_key: u64,
    window: RestartWindow,
    started_at: Instant,
    stopping: bool,
}

impl std::fmt::Debug for SupervisorState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SupervisorState")
            .field("path", &self.path)
            .field("flags", &self.flags)
            .field("children", &self.children.len())
            .finish_non_exhaustive()
    }
}

// ---- Child specs checked at start and at start_child ----

fn validate(flags: &SupervisorFlags, spec: &ChildSpec) -> Result<(), SupervisorError> {
    let bad = |reason: &str| {
        Err(SupervisorError::BadSpec {
            id: spec.id.clone(),
            reason: reason.to_owned(),
        })
    };
    if spec.significant && spec.restart == Restart::Permanent {
        return bad("a significant child must be transient or temporary");
    }
    if spec.significant && flags.auto_shutdown == AutoShutdown::Never {
        return bad("significant children need auto_shutdown any_significant or all_significant");
    }
    if spec.id.is_empty() || spec.id.contains('/') {
        return bad("the id must be non-empty and contain no '/'");
    }
    Ok(())
}

impl SupervisorState {
    // ---- The child table ----

    fn child_path(&self, id: &str) -> Arc<str> {
        Arc::from(format!("{}/{}", self.path, id))
    }

    fn insert(&mut self, spec: ChildSpec, id: Arc<str>, args: Option<ChildArgs>) -> u64 {
        let key = self.next_key;
        self.next_key += 1;
        let path = self.child_path(&id);
        self.by_id.insert(id.clone(), key);
        self.children.insert(key, Child::new(spec, id, path, args));
        key
    }

    fn remove(&mut self, key: u64) {
        if let Some(waiter) = self.kills.remove(&key) {
            waiter.answer(KillOutcome::NotRestarted);
        }
        if let Some(child) = self.children.remove(&key) {
            self.by_id.remove(&child.id);
            if let Some(cell) = &child.actor {
                self.by_actor.remove(&cell.get_id());
            }
        }
    }

    // ---- Starting and stopping children, in order ----

    /// Starts a process for child `key`; `Err` is
    /// [`SupervisorError::StartFailed`] with the child's own start error.
    async fn start_one(&mut self, key: u64) -> Result<ActorCell, SupervisorError> {
        let failed = |id: &str, reason: String| SupervisorError::StartFailed {
            id: id.to_owned(),
            reason,
        };
        let Some(child) = self.children.get(&key) else {
            return Err(failed(&key.to_string(), "no such child".into()));
        };
        let id = child.id.clone();
        let ctx = StartCtx {
            supervisor: self.myself.clone(),
            id: child.id.to_string(),
            path: child.path.to_string(),
            incarnation: child.incarnation + 1,
            args: child.args.clone(),
            events: self.events.clone(),
        };
        let start = child.spec.start.clone();
        let started = start(ctx).await;
        let Some(child) = self.children.get_mut(&key) else {
            return Err(failed(&id, "child removed while starting".into()));
        };
        match started {
            Ok(cell) => {
                child.incarnation += 1;
                child.actor = Some(cell.clone());
                child.state = ChildState::Running;
                child.started_at = Some(Instant::now());
                self.by_actor.insert(cell.get_id(), key);
                Ok(cell)
            }
            Err(e) => Err(failed(&id, e.to_string())),
        }
    }

    /// Terminates child `key`'s process by its shutdown spec, reports the
    /// exit and leaves the child `Stopped`. Returns the exit reason.
    async fn terminate_one(&mut self, key: u64) -> Option<ExitReason> {
        let child = self.children.get_mut(&key)?;
        child.state = ChildState::Stopped;
        let cell = child.actor.take()?;
        let shutdown = child.spec.shutdown;
        self.by_actor.remove(&cell.get_id());
        let reason = shutdown_cell(&cell, shutdown).await;
        let child = self.children.get_mut(&key)?;
        child.last_exit = Some(reason.clone());
        child.started_at = None;
        let path = child.path.clone();
        self.events.emit_with(|| Event::Exited {
            path: path.to_string(),
            actor: cell.get_id().to_string(),
            reason: reason.clone(),
        });
        Some(reason)
    }

    /// Terminates every child: reverse start order, one at a time, or all at
    /// once for a dynamic supervisor (as OTP does).
    async fn terminate_all(&mut self) {
        let keys: Vec<u64> = self.children.keys().rev().copied().collect();
        if self.flags.strategy == Strategy::Dynamic {
            self.terminate_keys(&keys).await;
            return;
        }
        for key in keys {
            self.terminate_one(key).await;
        }
    }

    /// Terminates the children `keys` all at once (dynamic instances) and
    /// reports their exits.
    async fn terminate_keys(&mut self, keys: &[u64]) {
        let mut stopping = Vec::new();
        for key in keys {
            if let Some(child) = self.children.get_mut(key) {
                if let Some(cell) = child.actor.take() {
                    child.state = ChildState::Stopped;
                    child.started_at = None;
                    self.by_actor.remove(&cell.get_id());
                    stopping.push((*key, child.path.clone(), cell, child.spec.shutdown));
                }
            }
        }
        let waits = stopping
            .into_iter()
            .map(|(key, path, cell, shutdown)| async move {
                let reason = shutdown_cell(&cell, shutdown).await;
                (key, path, cell, reason)
            });
        for (key, path, cell, reason) in futures::future::join_all(waits).await {
            if let Some(child) = self.children.get_mut(&key) {
                child.last_exit = Some(reason.clone());
            }
            self.events.emit_with(|| Event::Exited {
                path: path.to_string(),
                actor: cell.get_id().to_string(),
                reason,
            });
        }
    }

    // ---- Exits, the restart strategy and intensity ----

    /// Handles the exit of a child process (OTP's `restart_child/3` path).
    async fn child_exited(&mut self, key: u64, reason: ExitReason) {
        let Some(child) = self.children.get_mut(&key) else {
            return;
        };
        let Some(cell) = child.actor.take() else { return };
        self.by_actor.remove(&cell.get_id());
        // An operator's kill is recorded as injected, whatever ractor reports.
        let reason = match self.kills.get(&key) {
            Some(waiter) => waiter.reason.clone(),
            None => reason,
        };
        let ran_for = child.started_at.take().map(|t| t.elapsed()).unwrap_or_default();
        child.last_exit = Some(reason.clone());
        child.state = ChildState::Stopped;
        let restart = child.spec.restart;
        let significant = child.spec.significant;
        let path = child.path.clone();
        self.events.emit_with(|| Event::Exited {
            path: path.to_string(),
            actor: cell.get_id().to_string(),
            reason: reason.clone(),
        });

        let needs_restart = match restart {
            Restart::Permanent => true,
            Restart::Transient => !reason.is_normal(),
            Restart::Temporary => false,
        };
        if !needs_restart {
            if let Some(waiter) = self.kills.remove(&key) {
                waiter.answer(KillOutcome::NotRestarted);
            }
            if restart == Restart::Temporary || self.flags.strategy == Strategy::Dynamic {
                self.remove(key);
            }
            if significant {
                self.check_auto_shutdown();
            }
            return;
        }

        if !self.window.add(Instant::now()) {
            self.give_up();
            return;
        }

        let delay = match self.children.get_mut(&key) {
            Some(child) => match child.spec.backoff {
                Some(backoff) => {
                    if ran_for >= backoff.reset_after {
                        child.backoff_attempt = 0;
                    }
                    child.backoff_attempt = child.backoff_attempt.saturating_add(1);
                    backoff.delay(child.backoff_attempt)
                }
                None => Duration::ZERO,
            },
            None => return,
        };
        if delay.is_zero() {
            self.restart(key, reason).await;
        } else {
            if let Some(waiter) = self.kills.remove(&key) {
                waiter.answer(KillOutcome::NotRestarted);
            }
            self.schedule_retry(key, false, delay);
        }
    }

    fn schedule_retry(&mut self, key: u64, counts: bool, delay: Duration) {
        if let Some(child) = self.children.get_mut(&key) {
            child.state = ChildState::Restarting;
        }
        let myself = self.myself.clone();
        let msg = SupervisorMsg::Retry { key, counts };
        if delay.is_zero() {
            let _ = myself.send_message(msg);
        } else {
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _ = myself.send_message(msg);
            });
        }
    }

    fn check_auto_shutdown(&mut self) {
        let stop = match self.flags.auto_shutdown {
            AutoShutdown::Never => false,
            AutoShutdown::AnySignificant => true,
            AutoShutdown::AllSignificant => !self
                .children
                .values()
                .any(|c| c.spec.significant && c.actor.is_some()),
        };
        if stop {
            self.stopping = true;
            self.myself.stop(Some(ExitReason::Shutdown.to_stop_reason()));
        }
    }

    fn give_up(&mut self) {
        self.stopping = true;
        for (_, waiter) in self.kills.drain() {
            let _ = waiter.reply.send(Err(SupervisorError::Unavailable(format!(
                "`{}` reached its restart intensity and gave up",
                self.path
            ))));
        }
        let path = self.path.clone();
        self.events.emit(Event::GaveUp {
            path: path.to_string(),
        });
        self.myself.stop(Some(ExitReason::Shutdown.to_stop_reason()));
    }

    /// Restarts child `key` by the strategy (it has already exited with
    /// `reason`).
    async fn restart(&mut self, key: u64, reason: ExitReason) {
        let group: Vec<u64> = match self.flags.strategy {
            Strategy::OneForOne | Strategy::Dynamic => Vec::new(),
            Strategy::OneForAll => self.children.keys().copied().filter(|k| *k != key).collect(),
            Strategy::RestForOne => self.children.range(key + 1..).map(|(k, _)| *k).collect(),
        };
        for &k in group.iter().rev() {
            self.terminate_one(k).await;
            if self
                .children
                .get(&k)
                .is_some_and(|c| c.spec.restart == Restart::Temporary)
            {
                self.remove(k);
            }
        }
        let mut to_start = group;
        to_start.push(key);
        to_start.sort_unstable();
        for (i, &k) in to_start.iter().enumerate() {
            if !self.children.contains_key(&k) {
                continue;
            }
            match self.start_one(k).await {
                Ok(cell) => {
                    if let Some(child) = self.children.get_mut(&k) {
                        child.restarts += 1;
                        let (path, restarts, incarnation) =
                            (child.path.clone(), child.restarts, child.incarnation);
                        let reason = if k == key {
                            reason.clone()
                        } else {
                            ExitReason::Shutdown
                        };
                        self.events.emit_with(|| Event::Restarted {
                            path: path.to_string(),
                            actor: cell.get_id().to_string(),
                            restarts,
                            reason,
                        });
                        if let Some(waiter) = self.kills.remove(&k) {
                            waiter.answer(KillOutcome::Replaced(Incarnation {
                                actor: cell.get_id().to_string(),
                                incarnation,
                            }));
                        }
                    }
                }
                Err(reason) => {
                    tracing::error!(target: "supervisors", supervisor = %self.path, %reason, "restart failed, will retry");
                    for &rest in &to_start[i..] {
                        if let Some(child) = self.children.get_mut(&rest) {
                            child.state = ChildState::Restarting;
                        }
                    }
                    // A kill waiting on these children is answered when
                    // the retry starts them (or the supervisor gives up).
                    self.schedule_retry(k, true, Duration::ZERO);
                    return;
                }
            }
        }
    }

    // ---- The dynamic child API (start/terminate/restart/delete_child, count, which) ----

    async fn start_child(&mut self, arg: StartChildArg) -> Result<StartedChild, SupervisorError> {
        let (spec, id, args) = match (arg, &self.template) {
            (StartChildArg::Args(ArgsBox(args)), Some(template)) => {
                let id: Arc<str> = Arc::from(self.next_key.to_string());
                (template.clone(), id, args)
            }
            (StartChildArg::Spec(spec), None) => {
                validate(&self.flags, &spec)?;
                if let Some(key) = self.by_id.get(spec.id.as_str()) {
                    let running = self.children.get(key).is_some_and(|c| c.actor.is_some());
                    return Err(if running {
                        SupervisorError::AlreadyStarted(spec.id)
                    } else {
                        SupervisorError::AlreadyPresent(spec.id)
                    });
                }
                let id: Arc<str> = Arc::from(spec.id.as_str());
                (spec, id, None)
            }
            (StartChildArg::Args(_), None) => {
                return Err(SupervisorError::BadStartArgument(
                    self.path.to_string(),
                    "a child spec",
                ))
            }
            (StartChildArg::Spec(_), Some(_)) => {
                return Err(SupervisorError::BadStartArgument(
                    self.path.to_string(),
                    "instance arguments",
                ))
            }
        };
        let key = self.insert(spec, id.clone(), args);
        match self.start_one(key).await {
            Ok(cell) => {
                self.emit_started(key, &cell);
                Ok(StartedChild {
                    id: id.to_string(),
                    cell,
                })
            }
            Err(e) => {
                self.remove(key);
                Err(e)
            }
        }
    }

    fn emit_started(&self, key: u64, cell: &ActorCell) {
        if let Some(child) = self.children.get(&key) {
            self.events.emit_with(|| Event::Started {
                path: child.path.to_string(),
                actor: cell.get_id().to_string(),
                incarnation: child.incarnation,
            });
        }
    }

    fn key_of(&self, id: &str) -> Result<u64, SupervisorError> {
        self.by_id
            .get(id)
            .copied()
            .ok_or_else(|| SupervisorError::NotFound(id.to_owned()))
    }

    async fn terminate_child(&mut self, id: &str) -> Result<(), SupervisorError> {
        let key = self.key_of(id)?;
        self.terminate_one(key).await;
        let remove = self.template.is_some()
            || self
                .children
                .get(&key)
                .is_some_and(|c| c.spec.restart == Restart::Temporary);
        if remove {
            self.remove(key);
        }
        Ok(())
    }

    fn check_stopped(&self, id: &str) -> Result<u64, SupervisorError> {
        if self.template.is_some() {
            return Err(SupervisorError::SimpleOneForOne);
        }
        let key = self.key_of(id)?;
        match self.children.get(&key).map(|c| c.state) {
            Some(ChildState::Running) => Err(SupervisorError::Running(id.to_owned())),
            Some(ChildState::Restarting) => Err(SupervisorError::Restarting(id.to_owned())),
            _ => Ok(key),
        }
    }

    async fn restart_child(&mut self, id: &str) -> Result<StartedChild, SupervisorError> {
        let key = self.check_stopped(id)?;
        let cell = self.start_one(key).await?;
        self.emit_started(key, &cell);
        Ok(StartedChild {
            id: id.to_owned(),
            cell,
        })
    }

    fn delete_child(&mut self, id: &str) -> Result<(), SupervisorError> {
        let key = self.check_stopped(id)?;
        self.remove(key);
        Ok(())
    }

    fn count(&self) -> ChildCount {
        let mut count = ChildCount {
            specs: self.children.len(),
            ..ChildCount::default()
        };
        for child in self.children.values() {
            if child.actor.is_some() {
                count.active += 1;
            }
            match child.spec.kind {
                ChildKind::Supervisor => count.supervisors += 1,
                ChildKind::Worker => count.workers += 1,
            }
        }
        count
    }

    fn info(&self) -> SupervisorInfo {
        SupervisorInfo {
            path: self.path.to_string(),
            flags: self.flags,
            started_at: self.started_at,
            restarts_in_window: self.window.in_window(Instant::now()),
            target: self.template.is_some().then(|| self.size.get()),
            children: self.children.values().map(Child::info).collect(),
        }
    }

    // ---- Operator actions beyond OTP: scale, kill with its replacement, retries ----

    /// Starts or stops instances of a dynamic supervisor until `n` run;
    /// the newest go first, all at once, as OTP stops a dynamic
    /// supervisor's children.
    async fn scale(&mut self, n: usize) -> Result<Scaled, SupervisorError> {
        if self.template.is_none() {
            return Err(SupervisorError::NotDynamic(self.path.to_string()));
        }
        self.size.set(n);
        let running: Vec<u64> = self
            .children
            .iter()
            .filter(|(_, c)| c.actor.is_some())
            .map(|(k, _)| *k)
            .collect();
        let from = running.len();
        for _ in from..n {
            self.start_child(StartChildArg::Args(ArgsBox(None))).await?;
        }
        if n < from {
            let surplus: Vec<u64> = running[n..].to_vec();
            self.terminate_keys(&surplus).await;
            for key in surplus {
                self.remove(key);
            }
        }
        Ok(Scaled { from, to: n })
    }

    /// Kills child `id` as an injected fault; the answer waits for the
    /// supervisor's reaction (see [`KillWaiter`]).
    fn kill(
        &mut self,
        id: &str,
        reason: Option<String>,
        force: bool,
        reply: RpcReplyPort<Result<Killed, SupervisorError>>,
    ) {
        let refuse = |reply: RpcReplyPort<_>, e| {
            let _ = reply.send(Err(e));
        };
        let key = match self.key_of(id) {
            Ok(key) => key,
            Err(e) => return refuse(reply, e),
        };
        let Some(child) = self.children.get(&key) else {
            return refuse(reply, SupervisorError::NotFound(id.to_owned()));
        };
        let Some(cell) = child.actor.clone() else {
            return refuse(reply, SupervisorError::NotRunning(id.to_owned()));
        };
        let restarts = child.spec.restart != Restart::Temporary;
        if restarts && !force && self.window.would_exceed(Instant::now()) {
            return refuse(
                reply,
                SupervisorError::WouldExceedIntensity {
                    id: id.to_owned(),
                    supervisor: self.path.to_string(),
                    in_window: self.window.in_window(Instant::now()),
                    intensity: self.flags.intensity,
                    period: self.flags.period,
                },
            );
        }
        if self.kills.contains_key(&key) {
            return refuse(reply, SupervisorError::Restarting(id.to_owned()));
        }
        let injected = ExitReason::Injected(reason.clone().unwrap_or_else(|| "killed".to_owned()));
        self.kills.insert(
            key,
            KillWaiter {
                reply,
                died: Incarnation {
                    actor: cell.get_id().to_string(),
                    incarnation: child.incarnation,
                },
                reason: injected.clone(),
                at: Instant::now(),
            },
        );
        match reason {
            None => cell.kill(),
            Some(_) => cell.stop(Some(injected.to_stop_reason())),
        }
    }

    async fn retry(&mut self, key: u64, counts: bool) {
        if self.children.get(&key).map(|c| c.state) != Some(ChildState::Restarting) {
            return;
        }
        if counts && !self.window.add(Instant::now()) {
            self.give_up();
            return;
        }
        let reason = self
            .children
            .get(&key)
            .and_then(|c| c.last_exit.clone())
            .unwrap_or(ExitReason::Shutdown);
        self.restart(key, reason).await;
    }
}

// ---- Shutdown of one child (brutal_kill, timeout, infinity) ----

/// Stops `cell` by `shutdown` and waits for it to be gone.
async fn shutdown_cell(cell: &ActorCell, shutdown: Shutdown) -> ExitReason {
    if cell.get_status() == ActorStatus::Stopped {
        return ExitReason::Shutdown;
    }
    match shutdown {
        Shutdown::BrutalKill => {
            cell.kill();
            let _ = cell.wait(None).await;
            ExitReason::Killed
        }
        Shutdown::Timeout(limit) => {
            cell.stop(Some(ExitReason::Shutdown.to_stop_reason()));
            if cell.wait(Some(limit)).await.is_ok() {
                ExitReason::Shutdown
            } else {
                cell.kill();
                let _ = cell.wait(None).await;
                ExitReason::Killed
            }
        }
        Shutdown::Infinity => {
            cell.stop(Some(ExitReason::Shutdown.to_stop_reason()));
            let _ = cell.wait(None).await;
            ExitReason::Shutdown
        }
    }
}

// ---- The behaviour: messages and supervision events ----

impl Actor for Supervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<SupervisorMsg>,
        args: SupervisorArgs,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        let SupervisorArgs { spec, path, events } = args;
        let flags = spec.flags;
        if flags.period.is_zero() {
            return Err(Box::new(SupervisorError::BadSpec {
                id: path,
                reason: "period must be positive".into(),
            }));
        }
        let mut state = SupervisorState {
            myself: myself.get_cell(),
            flags,
            path: Arc::from(path),
            events,
            template: None,
            size: spec.size.clone().unwrap_or_default(),
            kills: HashMap::new(),
            children: BTreeMap::new(),
            by_actor: HashMap::new(),
            by_id: HashMap::new(),
            next_key: 1,
            window: RestartWindow::new(flags.intensity, flags.period),
            started_at: Instant::now(),
            stopping: false,
        };
        if flags.strategy == Strategy::Dynamic {
            let mut children = spec.children.into_iter();
            let (Some(template), None) = (children.next(), children.next()) else {
                return Err(Box::new(SupervisorError::BadSpec {
                    id: state.path.to_string(),
                    reason: "a simple_one_for_one supervisor needs exactly one child spec".into(),
                }));
            };
            validate(&flags, &template)?;
            state.template = Some(template);
            for _ in 0..state.size.get() {
                if let Err(e) = state.start_child(StartChildArg::Args(ArgsBox(None))).await {
                    state.terminate_all().await;
                    return Err(Box::new(e));
                }
            }
            return Ok(state);
        }
        for child in spec.children {
            validate(&flags, &child)?;
            if state.by_id.contains_key(child.id.as_str()) {
                return Err(Box::new(SupervisorError::BadSpec {
                    id: child.id,
                    reason: "duplicate child id".into(),
                }));
            }
            let id: Arc<str> = Arc::from(child.id.as_str());
            let key = state.insert(child, id.clone(), None);
            match state.start_one(key).await {
                Ok(cell) => state.emit_started(key, &cell),
                Err(e) => {
                    state.remove(key);
                    state.terminate_all().await;
                    return Err(Box::new(e));
                }
            }
        }
        Ok(state)
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<SupervisorMsg>,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        state.stopping = true;
        state.terminate_all().await;
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<SupervisorMsg>,
        msg: SupervisorMsg,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        if state.stopping {
            return Ok(());
        }
        match msg {
            SupervisorMsg::StartChild(arg, reply) => {
                let result = state.start_child(arg).await;
                let _ = reply.send(result);
            }
            SupervisorMsg::TerminateChild(id, reply) => {
                let result = state.terminate_child(&id).await;
                let _ = reply.send(result);
            }
            SupervisorMsg::RestartChild(id, reply) => {
                let result = state.restart_child(&id).await;
                let _ = reply.send(result);
            }
            SupervisorMsg::DeleteChild(id, reply) => {
                let _ = reply.send(state.delete_child(&id));
            }
            SupervisorMsg::WhichChildren(reply) => {
                let _ = reply.send(state.children.values().rev().map(Child::info).collect());
            }
            SupervisorMsg::CountChildren(reply) => {
                let _ = reply.send(state.count());
            }
            SupervisorMsg::Inspect(reply) => {
                let _ = reply.send(state.info());
            }
            SupervisorMsg::Scale(n, reply) => {
                let result = state.scale(n).await;
                let _ = reply.send(result);
            }
            SupervisorMsg::Kill {
                id,
                reason,
                force,
                reply,
            } => state.kill(&id, reason, force, reply),
            SupervisorMsg::Retry { key, counts } => state.retry(key, counts).await,
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<SupervisorMsg>,
        event: SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let (id, reason) = match event {
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                (cell.get_id(), ExitReason::from_stop_reason(reason.as_deref()))
            }
            SupervisionEvent::ActorFailed(cell, err) => (cell.get_id(), ExitReason::Error(err.to_string())),
            _ => return Ok(()),
        };
        if state.stopping {
            return Ok(());
        }
        if let Some(key) = state.by_actor.get(&id).copied() {
            state.child_exited(key, reason).await;
        }
        Ok(())
    }
}
