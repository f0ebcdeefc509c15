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
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};
use deadpool_postgres::{Object, Pool};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::store::queries::ReadStatements;
use crate::store::{within, StoreError};

/// A connection every read request shares (`postgres.read_connections`):
/// tokio-postgres pipelines the queries of concurrent tasks on one client,
/// so one round trip — one `write`, one wake-up of the PostgreSQL backend —
/// carries the reads of many requests, where a pooled connection carries
/// one.
#[derive(Debug)]
pub(crate) struct Reader {
    /// The client.
    pub(crate) client: tokio_postgres::Client,
    /// The read statements, prepared on it.
    pub(crate) statements: ReadStatements,
}

/// The pool, whether PostgreSQL is ready, and the last error.
#[derive(Debug)]
pub(crate) struct PgShared {
    pool: ArcSwapOption<Pool>,
    readers: ArcSwap<Vec<Arc<Reader>>>,
    next_reader: AtomicUsize,
    ready: watch::Sender<bool>,
    error: Mutex<Option<String>>,
    server: Mutex<Option<String>>,
    deadline_ms: AtomicU64,
}

impl Default for PgShared {
    fn default() -> Self {
        Self {
            pool: ArcSwapOption::empty(),
            readers: ArcSwap::from_pointee(Vec::new()),
            next_reader: AtomicUsize::new(0),
            ready: watch::Sender::new(false),
            error: Mutex::new(None),
            server: Mutex::new(None),
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
    /// Shared read connections open (`postgres.read_connections`).
    #[serde(default)]
    pub read_connections: usize,
    /// The server the pool's last probe reached (`address:port`, as the
    /// server sees itself): with several hosts in `postgres.url` and
    /// `target_session_attrs=read-write`, the primary.
    #[serde(default)]
    pub server: Option<String>,
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
            read_connections: self
                .readers
                .load()
                .iter()
                .filter(|r| !r.client.is_closed())
                .count(),
            server: self.server.lock().ok().and_then(|s| s.clone()),
        }
    }

    /// Records the server the pool's probe reached.
    pub(crate) fn set_server(&self, server: Option<String>) {
        if let Ok(mut s) = self.server.lock() {
            *s = server;
        }
    }

    /// Resizes the published pool (`reload` of `postgres.pool_size`); an
    /// error when no pool actor runs.
    pub(crate) fn resize(&self, size: usize) -> Result<(), &'static str> {
        let pool = self
            .pool()
            .ok_or("the PostgreSQL pool actor (diem/store/postgres) is not running")?;
        pool.resize(size);
        tracing::info!(size, "postgres pool resized");
        Ok(())
    }

    /// Publishes a new pool (the pool actor, at start) and the client-side
    /// deadline of its queries.
    pub(crate) fn publish(&self, pool: Pool, deadline: Duration) {
        let ms = u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX).max(1);
        self.deadline_ms.store(ms, Ordering::Relaxed);
        self.pool.store(Some(Arc::new(pool)));
    }

    /// The shared read connections (the pool actor keeps them).
    pub(crate) fn set_readers(&self, readers: Vec<Arc<Reader>>) {
        self.readers.store(Arc::new(readers));
    }

    /// The shared read connections now open (for the pool actor).
    pub(crate) fn readers(&self) -> Arc<Vec<Arc<Reader>>> {
        self.readers.load_full()
    }

    /// Runs a read on a shared read connection, taken in turn, within the
    /// client-side deadline; without one (none configured, none open yet,
    /// PostgreSQL not ready), on a pooled connection.
    pub(crate) async fn read<T>(
        &self,
        op: impl AsyncFnOnce(&tokio_postgres::Client, &ReadStatements) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, StoreError> {
        let reader = if self.is_ready() {
            let readers = self.readers.load();
            let n = readers.len();
            (n > 0)
                .then(|| readers[self.next_reader.fetch_add(1, Ordering::Relaxed) % n].clone())
                // A closed one (PostgreSQL restarted) until the pool actor
                // replaces it: the pool serves meanwhile.
                .filter(|r| !r.client.is_closed())
        } else {
            None
        };
        match reader {
            Some(reader) => {
                let deadline = Duration::from_millis(self.deadline_ms.load(Ordering::Relaxed));
                within(deadline, async {
                    Ok(op(&reader.client, &reader.statements).await?)
                })
                .await
            }
            None => {
                self.timed(|c| async move {
                    let statements = ReadStatements::cached(&c).await?;
                    op(&c, &statements).await
                })
                .await
            }
        }
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
        } else if !ready && (last.is_none() || refused_by_tls(&error) != refused_by_tls(&last)) {
            // The first failure since start: say why the embedded corpus is
            // served (the current error is in `ctl stats` from then on) —
            // and again when it turns from an outage into a certificate
            // refused, or back: that one is a setting to fix.
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

/// Whether a failure is a certificate PostgreSQL's TLS refused (the store
/// names those as `postgres.url`'s).
fn refused_by_tls(error: &Option<String>) -> bool {
    error.as_deref().is_some_and(|e| e.contains("postgres.url: TLS"))
}
