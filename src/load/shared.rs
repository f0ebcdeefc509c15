//! What the load sampler ([`sampler`](super::sampler)) publishes: every
//! actor's load over the last second, the handlers stuck now, the
//! mailboxes over `observer.mailbox_warn`, and the history. Read by `ctl
//! top`, `ctl diagnose`, the observer page and the metrics; written only
//! by the sampler.

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};

use crate::load::history::History;

/// One actor's load, as `diem ctl top --json` gives it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ActorRow {
    /// Its path in the tree.
    pub path: String,
    /// Messages waiting now.
    pub mailbox: u64,
    /// The longest the mailbox was over the last second.
    pub mailbox_max: u64,
    /// Messages handled per second, over the last second.
    pub messages_per_s: f64,
    /// Handler time, median over the last second (µs, the upper bound of
    /// its power-of-two bucket); `None` without a message.
    pub handle_p50_us: Option<u64>,
    /// Handler time, 99th percentile over the last second (µs, likewise).
    pub handle_p99_us: Option<u64>,
    /// The longest handler of this incarnation (µs).
    pub handle_max_us: u64,
    /// How long the running handler has run (ms; 0 when idle).
    pub busy_ms: u64,
    /// The running handler's message kind (empty when idle).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub running: String,
    /// Restarts of this child (filled in from the tree by `ctl top`).
    #[serde(default)]
    pub restarts: u64,
    /// Running, restarting or stopped (filled in from the tree).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub state: String,
}

/// A handler running longer than `observer.stuck_after`, or a mailbox
/// longer than `observer.mailbox_warn`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trouble {
    /// The actor's path.
    pub path: String,
    /// `stuck` or `mailbox`.
    pub kind: String,
    /// The stuck handler's message kind.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// How long the handler has run (ms), for `stuck`.
    #[serde(default)]
    pub busy_ms: u64,
    /// The mailbox's length, for `mailbox`.
    #[serde(default)]
    pub mailbox: u64,
}

/// The sampler's publications.
#[derive(Debug, Default)]
pub struct LoadShared {
    rows: ArcSwap<Vec<ActorRow>>,
    trouble: ArcSwap<Vec<Trouble>>,
    history: Mutex<History>,
    /// Nanoseconds of the sampler's work in its last second (its own
    /// cost, as observer_cli prints it).
    cost_ns: std::sync::atomic::AtomicU64,
}

impl LoadShared {
    /// Every actor's row of the last second, busiest first.
    pub fn rows(&self) -> Arc<Vec<ActorRow>> {
        self.rows.load_full()
    }

    /// The handlers stuck and the mailboxes too long, now.
    pub fn trouble(&self) -> Arc<Vec<Trouble>> {
        self.trouble.load_full()
    }

    /// Runs `f` on the history.
    pub fn with_history<T>(&self, f: impl FnOnce(&History) -> T) -> Option<T> {
        self.history.lock().ok().map(|h| f(&h))
    }

    /// The sampler's CPU time in its last second of work, ns.
    pub fn cost_ns(&self) -> u64 {
        self.cost_ns.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn publish_rows(&self, rows: Vec<ActorRow>, cost_ns: u64) {
        self.rows.store(Arc::new(rows));
        self.cost_ns.store(cost_ns, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn publish_trouble(&self, trouble: Vec<Trouble>) {
        if **self.trouble.load() != trouble {
            self.trouble.store(Arc::new(trouble));
        }
    }

    pub(crate) fn update_history(&self, f: impl FnOnce(&mut History)) {
        if let Ok(mut h) = self.history.lock() {
            f(&mut h);
        }
    }
}
