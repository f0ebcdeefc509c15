//! What the observer publishes for the admin listener and the rest of the
//! node: the viewers' count, the frames broadcast to them, and the last
//! 200 supervision and operator events. Written by the event bus listener,
//! the control commands and the publisher actor
//! ([`publisher`](super::publisher)); read by each viewer's stream.
//!
//! No viewer, no work: with nobody subscribed the publisher sleeps, and an
//! event costs one push into a bounded ring (supervision events are rare:
//! restarts, not requests).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::Serialize;
use supervisors::Event;
use tokio::sync::{broadcast, watch, Notify};

/// Events kept for a new viewer.
pub(crate) const EVENTS_KEPT: usize = 200;

/// Frames a viewer may fall behind by before it is dropped (its browser
/// reconnects and starts again from a snapshot).
const FRAMES_QUEUED: usize = 32;

/// Most viewers at once, of this node and of other members together; one
/// more is refused (503) rather than held.
pub(crate) const MAX_VIEWERS: usize = 64;

/// Plot points kept (5 minutes of one a second).
pub(crate) const HISTORY: usize = 300;

/// One point of the live plots.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub(crate) struct Point {
    /// Milliseconds since the Unix epoch.
    pub t: u64,
    /// Requests answered per second.
    pub rps: f64,
    /// Median latency over the second, ms.
    pub p50_ms: Option<f64>,
    /// 99th percentile over the second, ms.
    pub p99_ms: Option<f64>,
}

/// One entry of the event log.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct LoggedEvent {
    /// Its number, counting from 1 since the node started.
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// `started`, `exited`, `restarted`, `gave_up`, or an operator action
    /// (`scale`, `reload`, `kill`, `restart`, `upgrade`, `log_level`).
    pub kind: String,
    /// The tree path it concerns, if any.
    pub path: Option<String>,
    /// Why, or what was done.
    pub detail: String,
}

/// What an operator did, for the event log (typed, so that a renamed
/// field of a reply cannot silently empty the log).
#[derive(Clone, Debug)]
pub(crate) enum OperatorAction {
    /// `kill`: the child died with `reason`; replaced in that many µs, or
    /// now in `state`.
    Kill {
        /// The child.
        path: String,
        /// Its exit reason.
        reason: String,
        /// How long its replacement took, when it was replaced.
        replaced_in_us: Option<u64>,
        /// Its state after, when it was not replaced.
        state: String,
    },
    /// `restart`.
    Restart {
        /// The child or subtree.
        path: String,
    },
    /// `scale`.
    Scale {
        /// The pool.
        pool: String,
        /// Its size before.
        from: usize,
        /// Its size after.
        to: usize,
    },
    /// `reload`, with the keys that changed.
    Reload {
        /// The keys.
        changed: Vec<String>,
    },
    /// `log-level`, with the new filter.
    LogLevel {
        /// The filter.
        filter: String,
    },
    /// `upgrade`: the process that served and the one that serves now.
    Upgrade {
        /// The old process.
        old_pid: u32,
        /// The new process.
        new_pid: u32,
        /// The new process's version.
        version: String,
    },
}

/// The observer's shared state.
#[derive(Debug)]
pub(crate) struct ObserverShared {
    viewers: Arc<AtomicUsize>,
    events: Mutex<(u64, VecDeque<LoggedEvent>)>,
    frames: broadcast::Sender<Bytes>,
    history: Mutex<VecDeque<Point>>,
    changed: Notify,
    arrived: Notify,
    /// Viewers of any node, against [`MAX_VIEWERS`].
    watching: Arc<AtomicUsize>,
    /// Another member's view, polled once for every viewer of it: the
    /// latest frame per member.
    remote: Mutex<HashMap<String, watch::Receiver<Option<Bytes>>>>,
}

impl Default for ObserverShared {
    fn default() -> Self {
        Self {
            viewers: Arc::new(AtomicUsize::new(0)),
            events: Mutex::new((0, VecDeque::with_capacity(EVENTS_KEPT))),
            frames: broadcast::channel(FRAMES_QUEUED).0,
            history: Mutex::new(VecDeque::with_capacity(HISTORY)),
            changed: Notify::new(),
            arrived: Notify::new(),
            watching: Arc::new(AtomicUsize::new(0)),
            remote: Mutex::new(HashMap::new()),
        }
    }
}

/// A viewer's place; the count drops with it.
#[derive(Debug)]
pub(crate) struct Viewer {
    viewers: Arc<AtomicUsize>,
    /// The frames broadcast from now on.
    pub frames: broadcast::Receiver<Bytes>,
}

impl Drop for Viewer {
    fn drop(&mut self) {
        self.viewers.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A viewer's place among [`MAX_VIEWERS`]; given back when dropped.
#[derive(Debug)]
pub(crate) struct Seat(Arc<AtomicUsize>);

impl Drop for Seat {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl ObserverShared {
    /// Viewers now.
    pub(crate) fn viewers(&self) -> usize {
        self.viewers.load(Ordering::Acquire)
    }

    /// Viewers of any node now.
    pub(crate) fn watching(&self) -> usize {
        self.watching.load(Ordering::Acquire)
    }

    /// A seat for one more viewer, if fewer than [`MAX_VIEWERS`] watch.
    pub(crate) fn seat(&self) -> Option<Seat> {
        let taken = self
            .watching
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_VIEWERS).then_some(n + 1)
            });
        taken.is_ok().then(|| Seat(self.watching.clone()))
    }

    /// The shared feed of `member`'s view: the running one, or a new one
    /// that `start` polls (it gets the sender, and stops when no receiver
    /// is left).
    pub(crate) fn remote_feed(
        &self,
        member: &str,
        start: impl FnOnce(watch::Sender<Option<Bytes>>),
    ) -> watch::Receiver<Option<Bytes>> {
        let Ok(mut feeds) = self.remote.lock() else {
            let (tx, rx) = watch::channel(None);
            start(tx);
            return rx;
        };
        feeds.retain(|_, rx| rx.has_changed().is_ok());
        if let Some(rx) = feeds.get(member) {
            return rx.clone();
        }
        let (tx, rx) = watch::channel(None);
        feeds.insert(member.to_owned(), rx.clone());
        start(tx);
        rx
    }

    /// Feeds of other members running now.
    pub(crate) fn remote_feeds(&self) -> usize {
        self.remote
            .lock()
            .map(|f| f.values().filter(|rx| rx.has_changed().is_ok()).count())
            .unwrap_or(0)
    }

    /// Registers a viewer (and wakes the publisher).
    pub(crate) fn subscribe(&self) -> Viewer {
        let frames = self.frames.subscribe();
        self.viewers.fetch_add(1, Ordering::AcqRel);
        self.arrived.notify_one();
        Viewer {
            viewers: self.viewers.clone(),
            frames,
        }
    }

    /// Records what the tree's supervisors reported.
    pub(crate) fn supervision(&self, event: &Event) {
        match event {
            Event::Started {
                path, incarnation, ..
            } => {
                self.record("started", Some(path), format!("incarnation {incarnation}"));
            }
            Event::Exited { path, reason, .. } => self.record("exited", Some(path), reason.to_string()),
            Event::Restarted {
                path,
                restarts,
                reason,
                ..
            } => self.record(
                "restarted",
                Some(path),
                format!("restart {restarts} after {reason}"),
            ),
            Event::GaveUp { path } => {
                self.record("gave_up", Some(path), "restart intensity exceeded".to_owned())
            }
        }
    }

    /// Records what an operator did.
    pub(crate) fn operator(&self, action: OperatorAction) {
        let (kind, path, detail) = match action {
            OperatorAction::Kill {
                path,
                reason,
                replaced_in_us: Some(us),
                ..
            } => (
                "kill",
                Some(path),
                format!("{reason} (injected); replaced in {us} µs"),
            ),
            OperatorAction::Kill {
                path,
                reason,
                replaced_in_us: None,
                state,
            } => ("kill", Some(path), format!("{reason} (injected); now {state}")),
            OperatorAction::Restart { path } => ("restart", Some(path), "graceful restart".to_owned()),
            OperatorAction::Scale { pool, from, to } => ("scale", Some(pool), format!("{from} -> {to}")),
            OperatorAction::Reload { changed } => ("reload", None, format!("changed: {changed:?}")),
            OperatorAction::LogLevel { filter } => ("log_level", None, format!("filter {filter}")),
            OperatorAction::Upgrade {
                old_pid,
                new_pid,
                version,
            } => (
                "upgrade",
                None,
                format!("pid {old_pid} -> pid {new_pid} ({version})"),
            ),
        };
        self.record(kind, path.as_deref(), detail);
    }

    /// Records trouble the load sampler found in the actor at `path`
    /// (`stuck`, `mailbox`).
    pub(crate) fn trouble(&self, kind: &str, path: &str, detail: String) {
        self.record(kind, Some(path), detail);
    }

    /// Records an event; tells the publisher if anyone watches.
    fn record(&self, kind: &str, path: Option<&str>, detail: String) {
        if let Ok(mut guard) = self.events.lock() {
            let (seq, events) = &mut *guard;
            *seq += 1;
            if events.len() == EVENTS_KEPT {
                events.pop_front();
            }
            events.push_back(LoggedEvent {
                seq: *seq,
                at_ms: now_ms(),
                kind: kind.to_owned(),
                path: path.map(str::to_owned),
                detail,
            });
        }
        if self.viewers() > 0 {
            self.changed.notify_one();
        }
    }

    /// The events kept with a number above `seq`, oldest first (all of
    /// them for 0).
    pub(crate) fn since(&self, seq: u64) -> Vec<LoggedEvent> {
        self.events
            .lock()
            .map(|g| g.1.iter().filter(|e| e.seq > seq).cloned().collect())
            .unwrap_or_default()
    }

    /// Keeps a plot point (the last [`HISTORY`]).
    pub(crate) fn push_point(&self, point: Point) {
        if let Ok(mut h) = self.history.lock() {
            if h.len() == HISTORY {
                h.pop_front();
            }
            h.push_back(point);
        }
    }

    /// The plot points kept, oldest first.
    pub(crate) fn history(&self) -> Vec<Point> {
        self.history
            .lock()
            .map(|h| h.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Sends a frame to every viewer.
    pub(crate) fn broadcast(&self, frame: Bytes) {
        let _ = self.frames.send(frame);
    }

    /// Waits for a change worth a frame.
    pub(crate) async fn changed(&self) {
        self.changed.notified().await;
    }

    /// Waits for a viewer to arrive.
    pub(crate) async fn viewer_arrived(&self) {
        self.arrived.notified().await;
    }
}
