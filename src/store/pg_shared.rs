//! The PostgreSQL pool as the rest of the node sees it: published by the
//! pool actor ([`postgres_pool`](super::postgres_pool)), read by request
//! handlers, readiness and `stats`.
//!
//! Every query made through [`PgShared::timed`] has a client-side deadline
//! as well as the server's `statement_timeout`, so a network that swallows
//! packets (a black hole, not a refused connection) fails requests within a
//! bound instead of hanging them; the connection involved is discarded.
//! [`PgShared::ready`] lets an actor that needs the migrated schema wait for
//! it without polling.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use deadpool_postgres::{Object, Pool};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::store::{within, StoreError};

/// The pool, whether PostgreSQL is ready, and the last error.
#[derive(Debug)]
pub(crate) struct PgShared {
    pool: ArcSwapOption<Pool>,
    ready: watch::Sender<bool>,
    error: Mutex<Option<String>>,
    deadline_ms: AtomicU64,
}

impl Default for PgShared {
    fn default() -> Self {
        Self {
            pool: ArcSwapOption::empty(),
            ready: watch::Sender::new(false),
            error: Mutex::new(None),
            deadline_ms: AtomicU64::new(7_000),
        }
    }
}

/// What `stats` and `/readyz` report about the pool.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PgStatus {
    /// Whether the last probe succeeded (migrations applied).
    pub ready: bool,
    /// The last error while not ready.
    pub error: Option<String>,
    /// Pool capacity.
    pub max_size: usize,
    /// Connections open.
    pub size: usize,
    /// Connections idle in the pool.
    pub available: usize,
    /// Requests waiting for a connection.
    pub waiting: usize,
}

impl PgShared {
    /// The pool, when PostgreSQL is ready.
    pub(crate) fn pool(&self) -> Option<Arc<Pool>> {
        if self.is_ready() {
            self.pool.load_full()
        } else {
            None
        }
    }

    /// Whether PostgreSQL is ready.
    pub(crate) fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// A receiver that sees readiness change (`wait_for(|r| *r)` waits for
    /// the migrated schema).
    pub(crate) fn ready(&self) -> watch::Receiver<bool> {
        self.ready.subscribe()
    }

    /// The pool's state.
    pub(crate) fn status(&self) -> PgStatus {
        let status = self.pool.load().as_ref().map(|p| p.status());
        PgStatus {
            ready: self.is_ready(),
            error: self.error.lock().ok().and_then(|e| e.clone()),
            max_size: status.map_or(0, |s| s.max_size),
            size: status.map_or(0, |s| s.size),
            available: status.map_or(0, |s| s.available),
            waiting: status.map_or(0, |s| s.waiting),
        }
    }

    /// Publishes a new pool (the pool actor, at start) and the client-side
    /// deadline of its queries.
    pub(crate) fn publish(&self, pool: Pool, deadline: Duration) {
        let ms = u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX).max(1);
        self.deadline_ms.store(ms, Ordering::Relaxed);
        self.pool.store(Some(Arc::new(pool)));
    }

    /// Marks the pool unusable while its actor is gone (no log line: the
    /// supervisor reports the exit).
    pub(crate) fn withdraw(&self) {
        self.ready.send_replace(false);
    }

    /// Records a probe's outcome, logging each change once.
    pub(crate) fn set(&self, ready: bool, error: Option<String>) {
        let was = self.ready.send_replace(ready);
        let Ok(mut last) = self.error.lock() else { return };
        if was && !ready {
            tracing::warn!(
                error = error.as_deref().unwrap_or(""),
                "postgres is down; retrying"
            );
        } else if !was && ready {
            tracing::info!("postgres is ready");
        } else if !ready && last.is_none() {
            // The first failure since start: say why the embedded corpus is
            // served (the current error is in `ctl stats` from then on).
            tracing::warn!(
                error = error.as_deref().unwrap_or(""),
                "postgres is unreachable; retrying"
            );
        }
        *last = error;
    }

    /// Runs `op` on a pooled connection within the client-side deadline;
    /// on a timeout or a broken connection the connection is discarded.
    pub(crate) async fn timed<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(Arc<Object>) -> Fut,
        Fut: Future<Output = Result<T, tokio_postgres::Error>>,
    {
        let pool = self
            .pool()
            .ok_or_else(|| StoreError::Unavailable("postgres is down".into()))?;
        let deadline = Duration::from_millis(self.deadline_ms.load(Ordering::Relaxed));
        let object = Arc::new(within(deadline, async { Ok(pool.get().await?) }).await?);
        let result = within(deadline, async { Ok(op(object.clone()).await?) }).await;
        let discard = match &result {
            Err(StoreError::Postgres(e)) => e.is_closed() || e.code().is_none(),
            Err(_) => true,
            Ok(_) => false,
        };
        if discard {
            if let Ok(object) = Arc::try_unwrap(object) {
                drop(Object::take(object));
            }
        }
        result
    }
}
