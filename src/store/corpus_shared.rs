//! The published corpus: the snapshot every read is served from, and the
//! corpus actor's view of PostgreSQL. Published by the corpus actor
//! ([`corpus`](super::corpus)), read by request handlers with one atomic
//! load.
//!
//! The snapshot lives here, not in the actor: while the actor restarts, or
//! PostgreSQL is down, reads go on from the last snapshot. Until a
//! PostgreSQL snapshot has been loaded (or while the table is empty) the
//! embedded corpus is served.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};

use crate::store::embedded;
use crate::store::snapshot::{Snapshot, Source};

/// The snapshot and the corpus actor's state.
#[derive(Debug)]
pub(crate) struct CorpusShared {
    snapshot: ArcSwap<Snapshot>,
    listening: AtomicBool,
    error: Mutex<Option<String>>,
}

impl Default for CorpusShared {
    fn default() -> Self {
        Self {
            snapshot: ArcSwap::from_pointee(Snapshot::build(embedded::sentences(), Source::Embedded)),
            listening: AtomicBool::new(false),
            error: Mutex::new(None),
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
}

impl CorpusShared {
    /// The snapshot reads are served from (one atomic load).
    pub(crate) fn load(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.snapshot.load()
    }

    /// Publishes a new snapshot.
    pub(crate) fn publish(&self, snapshot: Snapshot) {
        self.snapshot.store(Arc::new(snapshot));
    }

    /// The corpus's state.
    pub(crate) fn status(&self) -> CorpusStatus {
        let s = self.snapshot.load();
        CorpusStatus {
            source: s.source().clone(),
            sentences: s.len(),
            listening: self.listening.load(Ordering::Acquire),
            error: self.error.lock().ok().and_then(|e| e.clone()),
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
