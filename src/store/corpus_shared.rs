//! The published corpus: the snapshot every read is served from, and the
//! corpus actor's view of PostgreSQL. Published by the corpus actor
//! ([`corpus`](super::corpus)), read by request handlers with one atomic
//! load.
//!
//! The snapshot lives here, not in the actor: while the actor restarts, or
//! PostgreSQL is down, reads go on from the last snapshot. Until a
//! PostgreSQL snapshot has been loaded (or while the table is empty) the
//! embedded corpus is served.
//!
//! Read-your-writes: a write this node made is applied to its snapshot
//! before the write is acknowledged ([`CorpusShared::apply_local`]), and
//! re-applied to any snapshot loaded from a query that started before the
//! write ([`CorpusShared::publish_loaded`]), so the writing node never
//! serves a state older than its own acknowledged write.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};

use uuid::Uuid;

use crate::store::embedded;
use crate::store::sentence::Sentence;
use crate::store::snapshot::{Snapshot, Source};

/// A change this node made to the sentences.
#[derive(Debug, Clone)]
pub(crate) enum LocalWrite {
    /// A sentence inserted.
    Added(Sentence),
    /// A sentence deleted.
    Removed(Uuid),
}

impl LocalWrite {
    fn apply(&self, s: &Snapshot) -> Snapshot {
        match self {
            LocalWrite::Added(sentence) => s.changed(Some(sentence), None),
            LocalWrite::Removed(uuid) => s.changed(None, Some(*uuid)),
        }
    }
}

/// The snapshot and the corpus actor's state.
#[derive(Debug)]
pub(crate) struct CorpusShared {
    snapshot: ArcSwap<Snapshot>,
    listening: AtomicBool,
    error: Mutex<Option<String>>,
    local: Mutex<Vec<(Instant, LocalWrite)>>,
    rows_read: AtomicU64,
    full_loads: AtomicU64,
}

impl Default for CorpusShared {
    fn default() -> Self {
        Self {
            snapshot: ArcSwap::from_pointee(Snapshot::build(embedded::sentences(), Source::Embedded)),
            listening: AtomicBool::new(false),
            error: Mutex::new(None),
            local: Mutex::new(Vec::new()),
            rows_read: AtomicU64::new(0),
            full_loads: AtomicU64::new(0),
        }
    }
}

/// What `stats` and `/readyz` report about the corpus.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CorpusStatus {
    /// Where the served sentences come from.
    pub source: Source,
    /// How many there are.
    pub sentences: usize,
    /// Whether the actor is connected and listening for changes.
    pub listening: bool,
    /// The last error, if any.
    pub error: Option<String>,
    /// Rows the corpus actor has read from PostgreSQL so far (whole loads
    /// and notified rows).
    #[serde(default)]
    pub rows_read: u64,
    /// Whole-table loads so far (at a (re)connection, a `TRUNCATE`, a
    /// burst of changes); every other change read only its rows.
    #[serde(default)]
    pub full_loads: u64,
}

impl CorpusShared {
    /// The snapshot reads are served from (one atomic load).
    pub(crate) fn load(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.snapshot.load()
    }

    /// Publishes a snapshot loaded by a query that started at `started`,
    /// with this node's writes since then applied on top.
    pub(crate) fn publish_loaded(&self, snapshot: Snapshot, started: Instant) {
        let Ok(mut local) = self.local.lock() else {
            self.snapshot.store(Arc::new(snapshot));
            return;
        };
        // Writes committed before the query started are in what it loaded.
        local.retain(|(at, _)| *at >= started);
        let snapshot = local.iter().fold(snapshot, |s, (_, w)| w.apply(&s));
        self.snapshot.store(Arc::new(snapshot));
    }

    /// Counts `rows` read from PostgreSQL by the corpus actor, in a
    /// whole-table load or not.
    pub(crate) fn count_read(&self, rows: usize, whole: bool) {
        self.rows_read.fetch_add(rows as u64, Ordering::Relaxed);
        if whole {
            self.full_loads.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Applies changed rows read by a query that started at `started` —
    /// `upserts` as they are now, `removed` gone — to the snapshot served,
    /// with this node's writes since then applied again on top (the query
    /// may have read a row before this node changed it).
    pub(crate) fn publish_changes(&self, upserts: Vec<Sentence>, removed: &[Uuid], started: Instant) {
        let Ok(mut local) = self.local.lock() else { return };
        local.retain(|(at, _)| *at >= started);
        let changed = self.snapshot.load().with_changes(upserts, removed);
        let snapshot = local.iter().fold(changed, |s, (_, w)| w.apply(&s));
        self.snapshot.store(Arc::new(snapshot));
    }

    /// Serves a write this node made (and PostgreSQL committed) at once.
    pub(crate) fn apply_local(&self, write: LocalWrite) {
        let Ok(mut local) = self.local.lock() else { return };
        let next = write.apply(&self.snapshot.load());
        local.push((Instant::now(), write));
        self.snapshot.store(Arc::new(next));
    }

    /// The corpus's state.
    pub(crate) fn status(&self) -> CorpusStatus {
        let s = self.snapshot.load();
        CorpusStatus {
            source: s.source().clone(),
            sentences: s.len(),
            listening: self.listening.load(Ordering::Acquire),
            error: self.error.lock().ok().and_then(|e| e.clone()),
            rows_read: self.rows_read.load(Ordering::Relaxed),
            full_loads: self.full_loads.load(Ordering::Relaxed),
        }
    }

    /// Records whether the actor is listening, and why not.
    pub(crate) fn set_listening(&self, listening: bool, error: Option<String>) {
        self.listening.store(listening, Ordering::Release);
        if let Ok(mut e) = self.error.lock() {
            *e = error;
        }
    }
}
