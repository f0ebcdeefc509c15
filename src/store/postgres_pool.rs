//! The PostgreSQL pool actor (`diem/store/postgres`).
//!
//! It owns the deadpool-postgres pool and publishes it in [`PgShared`], where
//! request handlers take connections from it. PostgreSQL being down is not a
//! crash: the actor keeps probing (applying the migrations on the first
//! success) with a backoff from 100 ms doubling to `postgres.retry_max_ms`,
//! reports the store as down meanwhile, and as ready again as soon as a
//! probe succeeds — no restart needed. Once up, it checks the pool every
//! `postgres.health_interval_ms`.
//!
//! Every query made through [`PgShared::timed`] has a client-side deadline
//! as well as the server's `statement_timeout`, so a network that swallows
//! packets (a black hole, not a refused connection) fails requests within a
//! bound instead of hanging them; the connection involved is discarded.

use std::future::Future;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde::Serialize;
use tokio_postgres::{Client, NoTls};

use crate::config::PostgresConfig;
use crate::node::Node;
use crate::store::migrations;
use crate::store::StoreError;

const DOWN: u8 = 0;
const READY: u8 = 1;

/// The connection settings of `cfg`: URL, timeouts, `search_path`.
pub fn pg_config(cfg: &PostgresConfig) -> Result<tokio_postgres::Config, StoreError> {
    let mut c: tokio_postgres::Config = cfg.url.parse()?;
    c.connect_timeout(Duration::from_millis(cfg.connect_timeout_ms));
    c.options(format!(
        "-c search_path={} -c statement_timeout={} -c client_min_messages=warning",
        cfg.schema, cfg.statement_timeout_ms
    ));
    if c.get_application_name().is_none() {
        c.application_name("diem");
    }
    Ok(c)
}

/// A pool for `cfg` (no connection is opened until one is needed).
pub fn build_pool(cfg: &PostgresConfig) -> Result<Pool, StoreError> {
    let manager = Manager::from_config(
        pg_config(cfg)?,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let timeout = Some(Duration::from_millis(cfg.connect_timeout_ms));
    Pool::builder(manager)
        .max_size(cfg.pool_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(timeout)
        .create_timeout(timeout)
        .recycle_timeout(timeout)
        .build()
        .map_err(|e| StoreError::Other(format!("cannot build the pool: {e}")))
}

/// One connection outside the pool (for LISTEN, `migrate`, `import`); its
/// driver runs as a task that ends when the connection does.
pub async fn connect(cfg: &PostgresConfig) -> Result<Client, StoreError> {
    let config = pg_config(cfg)?;
    let deadline = Duration::from_millis(cfg.connect_timeout_ms);
    let (client, connection) = tokio::time::timeout(deadline, config.connect(NoTls))
        .await
        .map_err(|_| StoreError::Unavailable(format!("no answer within {deadline:?}")))??;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "postgres connection closed");
        }
    });
    Ok(client)
}

/// The pool as the rest of the node sees it.
#[derive(Debug, Default)]
pub struct PgShared {
    pool: ArcSwapOption<Pool>,
    state: AtomicU8,
    error: Mutex<Option<String>>,
    deadline_ms: std::sync::atomic::AtomicU64,
}

/// What `stats` and `/readyz` report about the pool.
#[derive(Debug, Clone, Serialize)]
pub struct PgStatus {
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
    pub fn pool(&self) -> Option<Arc<Pool>> {
        if self.state.load(Ordering::Acquire) == READY {
            self.pool.load_full()
        } else {
            None
        }
    }

    /// Whether PostgreSQL is ready.
    pub fn is_ready(&self) -> bool {
        self.state.load(Ordering::Acquire) == READY
    }

    /// The pool's state.
    pub fn status(&self) -> PgStatus {
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

    fn set(&self, ready: bool, error: Option<String>) {
        let was = self
            .state
            .swap(if ready { READY } else { DOWN }, Ordering::AcqRel);
        let Ok(mut last) = self.error.lock() else { return };
        if was == READY && !ready {
            tracing::warn!(
                error = error.as_deref().unwrap_or(""),
                "postgres is down; retrying"
            );
        } else if was != READY && ready {
            tracing::info!("postgres is ready");
        } else if !ready && last.is_none() {
            // The first failure since start: say why the embedded corpus is
            // served (the current error is in /readyz from then on).
            tracing::warn!(
                error = error.as_deref().unwrap_or(""),
                "postgres is unreachable; retrying"
            );
        }
        *last = error;
    }

    /// Runs `op` on a pooled connection within the client-side deadline;
    /// on a timeout or a broken connection the connection is discarded.
    pub async fn timed<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: FnOnce(Arc<Object>) -> Fut,
        Fut: Future<Output = Result<T, tokio_postgres::Error>>,
    {
        let pool = self
            .pool()
            .ok_or_else(|| StoreError::Unavailable("postgres is down".into()))?;
        let deadline = Duration::from_millis(self.deadline_ms.load(Ordering::Relaxed).max(1));
        let object = tokio::time::timeout(deadline, pool.get())
            .await
            .map_err(|_| StoreError::Unavailable(format!("no connection within {deadline:?}")))??;
        let object = Arc::new(object);
        let result = tokio::time::timeout(deadline, op(object.clone())).await;
        let discard = match &result {
            Err(_) => true,
            Ok(Err(e)) => e.is_closed() || e.code().is_none(),
            Ok(Ok(_)) => false,
        };
        if discard {
            if let Ok(object) = Arc::try_unwrap(object) {
                drop(Object::take(object));
            }
        }
        match result {
            Err(_) => Err(StoreError::Unavailable(format!("no answer within {deadline:?}"))),
            Ok(r) => r.map_err(StoreError::from),
        }
    }
}

/// Messages of the pool actor.
#[derive(Debug)]
pub enum PgMsg {
    /// Probe PostgreSQL (internal timer).
    Tick,
    /// Change the pool size (`reload`).
    Resize(usize),
}

/// The pool actor.
#[derive(Debug)]
pub struct PostgresPool {
    /// The node it serves.
    pub node: Arc<Node>,
}

/// The pool actor's state.
#[derive(Debug)]
pub struct PgState {
    pool: Pool,
    migrated: bool,
    backoff: Duration,
}

impl PostgresPool {
    async fn probe(&self, state: &mut PgState) -> Result<(), StoreError> {
        let cfg = self.node.config().postgres.clone();
        let deadline = Duration::from_millis(cfg.connect_timeout_ms + cfg.statement_timeout_ms);
        let work = async {
            let mut client = state.pool.get().await?;
            if !state.migrated {
                let applied = migrations::migrate(&mut client, &cfg.schema).await?;
                if !applied.is_empty() {
                    tracing::info!(?applied, schema = %cfg.schema, "migrations applied");
                }
            } else {
                client.simple_query("SELECT 1").await?;
            }
            Ok::<_, StoreError>(client)
        };
        match tokio::time::timeout(deadline, work).await {
            Ok(Ok(_)) => {
                state.migrated = true;
                Ok(())
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(StoreError::Unavailable(format!("no answer within {deadline:?}"))),
        }
    }
}

impl Actor for PostgresPool {
    type Msg = PgMsg;
    type State = PgState;
    type Arguments = ();

    async fn pre_start(&self, myself: ActorRef<PgMsg>, _: ()) -> Result<PgState, ActorProcessingErr> {
        let cfg = self.node.config().postgres.clone();
        let pool = build_pool(&cfg)?;
        self.node.pg.deadline_ms.store(
            cfg.connect_timeout_ms + cfg.statement_timeout_ms,
            Ordering::Relaxed,
        );
        self.node.pg.pool.store(Some(Arc::new(pool.clone())));
        myself.send_message(PgMsg::Tick)?;
        Ok(PgState {
            pool,
            migrated: false,
            backoff: Duration::from_millis(100),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<PgMsg>,
        msg: PgMsg,
        state: &mut PgState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            PgMsg::Tick => {
                let cfg = self.node.config().postgres.clone();
                let next = match self.probe(state).await {
                    Ok(()) => {
                        self.node.pg.set(true, None);
                        state.backoff = Duration::from_millis(100);
                        Duration::from_millis(cfg.health_interval_ms)
                    }
                    Err(e) => {
                        self.node.pg.set(false, Some(e.to_string()));
                        let wait = state.backoff;
                        state.backoff = (wait * 2).min(Duration::from_millis(cfg.retry_max_ms));
                        wait
                    }
                };
                myself.send_after(next, || PgMsg::Tick);
            }
            PgMsg::Resize(size) => {
                state.pool.resize(size);
                tracing::info!(size, "postgres pool resized");
            }
        }
        Ok(())
    }

    async fn post_stop(&self, _: ActorRef<PgMsg>, state: &mut PgState) -> Result<(), ActorProcessingErr> {
        self.node.pg.state.store(DOWN, Ordering::Release);
        state.pool.close();
        Ok(())
    }
}
