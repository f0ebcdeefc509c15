//! Supervision events: what the tree did, for logs, metrics and operators.
//!
//! Every supervisor of a tree reports to one [`EventBus`]. Each event is
//! also emitted as a `tracing` event (target `supervisors`). Consumers either
//! [`subscribe`](EventBus::subscribe) (an async broadcast channel; a slow
//! subscriber misses events rather than slowing the tree) or add a
//! [`listener`](EventBus::add_listener), a synchronous callback run inside
//! the supervisor at the moment of the decision (keep it short: counters).
//!
//! ```
//! use supervisors::{Event, EventBus};
//!
//! let bus = EventBus::new();
//! let mut rx = bus.subscribe();
//! bus.emit(Event::GaveUp { path: "app/db".into() });
//! assert!(matches!(rx.try_recv(), Ok(Event::GaveUp { .. })));
//! ```

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use serde::Serialize;
use tokio::sync::broadcast;

use crate::exit_reason::ExitReason;

/// One supervision event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum Event {
    /// A child was started for the first time (or by `start_child` /
    /// `restart_child`).
    Started {
        /// The child's path.
        path: String,
        /// The new process's actor id.
        actor: String,
        /// Starts of this child so far, this one included.
        incarnation: u64,
    },
    /// A child exited, on its own or terminated by its supervisor.
    Exited {
        /// The child's path.
        path: String,
        /// The process's actor id.
        actor: String,
        /// Why it exited.
        reason: ExitReason,
    },
    /// A supervisor restarted a child after an exit.
    Restarted {
        /// The child's path.
        path: String,
        /// The new process's actor id.
        actor: String,
        /// Restarts of this child so far.
        restarts: u64,
        /// Why it was restarted: its own exit reason, or `shutdown` for a
        /// sibling restarted with it by `one_for_all` / `rest_for_one`.
        reason: ExitReason,
    },
    /// A supervisor exceeded its restart intensity and is shutting down.
    GaveUp {
        /// The supervisor's path.
        path: String,
    },
}

type Listener = Arc<dyn Fn(&Event) + Send + Sync>;

struct Inner {
    tx: broadcast::Sender<Event>,
    listeners: RwLock<Vec<Listener>>,
    has_listeners: AtomicBool,
}

/// The event bus of one supervision tree. Cheap to clone.
#[derive(Clone)]
pub struct EventBus {
    inner: Arc<Inner>,
}

impl fmt::Debug for EventBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventBus")
            .field("subscribers", &self.inner.tx.receiver_count())
            .finish_non_exhaustive()
    }
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    /// A bus whose subscribers may lag by up to 1024 events.
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(1024);
        Self {
            inner: Arc::new(Inner {
                tx,
                listeners: RwLock::new(Vec::new()),
                has_listeners: AtomicBool::new(false),
            }),
        }
    }

    /// A receiver of every event emitted from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.tx.subscribe()
    }

    /// Adds a synchronous listener, called in order with every event.
    pub fn add_listener(&self, listener: impl Fn(&Event) + Send + Sync + 'static) {
        if let Ok(mut listeners) = self.inner.listeners.write() {
            listeners.push(Arc::new(listener));
            self.inner.has_listeners.store(true, Ordering::Relaxed);
        }
    }

    /// Whether anything would see an event now: a listener, a subscriber
    /// or an enabled `tracing` subscriber for target `supervisors`.
    pub fn is_observed(&self) -> bool {
        self.inner.has_listeners.load(Ordering::Relaxed)
            || self.inner.tx.receiver_count() > 0
            || tracing::enabled!(target: "supervisors", tracing::Level::ERROR)
    }

    /// Emits the event `make` builds, building it only if
    /// [observed](Self::is_observed): keeps the restart path free of
    /// allocations when nobody watches.
    pub fn emit_with(&self, make: impl FnOnce() -> Event) {
        if self.is_observed() {
            self.emit(make());
        }
    }

    /// Emits an event: a `tracing` event, the listeners, the subscribers.
    pub fn emit(&self, event: Event) {
        match &event {
            Event::Started {
                path,
                actor,
                incarnation,
            } => {
                tracing::debug!(target: "supervisors", %path, %actor, incarnation, "child started")
            }
            Event::Exited { path, actor, reason } if reason.is_normal() => {
                tracing::debug!(target: "supervisors", %path, %actor, %reason, "child exited")
            }
            Event::Exited {
                path,
                actor,
                reason: reason @ ExitReason::Injected(_),
            } => {
                tracing::info!(target: "supervisors", %path, %actor, %reason, "child exited (injected fault)")
            }
            Event::Exited { path, actor, reason } => {
                tracing::warn!(target: "supervisors", %path, %actor, %reason, "child exited")
            }
            Event::Restarted {
                path,
                actor,
                restarts,
                reason,
            } => {
                tracing::info!(target: "supervisors", %path, %actor, restarts, %reason, "child restarted")
            }
            Event::GaveUp { path } => {
                tracing::error!(target: "supervisors", %path, "reached max restart intensity, shutting down")
            }
        }
        if let Ok(listeners) = self.inner.listeners.read() {
            for listener in listeners.iter() {
                listener(&event);
            }
        }
        if self.inner.tx.receiver_count() > 0 {
            let _ = self.inner.tx.send(event);
        }
    }
}
