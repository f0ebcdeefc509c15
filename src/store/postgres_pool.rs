//! The PostgreSQL pool actor (`diem/store/postgres`).
//!
//! It owns the deadpool-postgres pool and publishes it in the node's
//! [`PgShared`](crate::store::pg_shared::PgShared), where request handlers
//! take connections from it. PostgreSQL being down is not a crash: the
//! actor keeps probing (applying the migrations on the first success) with
//! a [`Backoff`] from 100 ms to `postgres.retry_max`, reports the store as
//! down meanwhile, and as ready again as soon as a probe succeeds — no
//! restart needed. Once up, it checks the pool every
//! `postgres.health_interval`.
//!
//! With `postgres.reads = "query"` it also keeps `postgres.read_connections`
//! connections that every read request shares (see
//! [`Reader`]): opened once PostgreSQL is
//! ready, replaced at the next check when one closes, dropped while
//! PostgreSQL is down (reads then fail over to the snapshot as before).

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use ractor_cluster::RactorMessage;
use supervisors::{Backoff, Counted};

use crate::config::ReadMode;
use crate::node::Node;
use crate::store::connection::{build_pool, connect_detached};
use crate::store::pg_shared::Reader;
use crate::store::queries::ReadStatements;
use crate::store::{migrations, within, StoreError};

/// Messages of the pool actor.
#[derive(Debug, RactorMessage)]
pub(crate) enum PgMsg {
    /// Probe PostgreSQL (internal timer).
    Tick,
}

/// The pool actor.
#[derive(Debug)]
pub(crate) struct PostgresPool {
    /// The node it serves.
    pub node: Arc<Node>,
}

/// The pool actor's state.
#[derive(Debug)]
pub(crate) struct PgState {
    pool: Pool,
    migrated: bool,
    failures: u32,
}

/// The backoff between probes while PostgreSQL is down.
fn backoff(retry_max: Duration) -> Backoff {
    Backoff::new(Duration::from_millis(100), retry_max)
}

impl PostgresPool {
    async fn probe(&self, state: &mut PgState) -> Result<(), StoreError> {
        let cfg = self.node.config().postgres.clone();
        within(cfg.query_deadline(), async {
            let mut client = state.pool.get().await?;
            if !state.migrated {
                let applied = migrations::migrate(&mut client, &cfg.schema).await?;
                if !applied.is_empty() {
                    tracing::info!(?applied, schema = %cfg.schema, "migrations applied");
                }
                state.migrated = true;
            }
            // Which server answered: the primary, with several hosts.
            let row = client
                .query_one(
                    "SELECT coalesce(host(inet_server_addr()), 'local socket'), coalesce(inet_server_port(), 0)",
                    &[],
                )
                .await?;
            let (host, port): (String, i32) = (row.get(0), row.get(1));
            self.node.pg.set_server(Some(if port == 0 { host } else { format!("{host}:{port}") }));
            Ok(())
        })
        .await
    }

    /// Opens shared read connections up to `postgres.read_connections`
    /// (with `reads = "query"`), replacing those that closed.
    async fn keep_readers(&self) -> Result<(), StoreError> {
        let cfg = self.node.config().postgres.clone();
        let wanted = if cfg.reads == ReadMode::Query {
            cfg.read_connections
        } else {
            0
        };
        let current = self.node.pg.readers();
        let mut readers: Vec<Arc<Reader>> = current
            .iter()
            .filter(|r| !r.client.is_closed())
            .take(wanted)
            .cloned()
            .collect();
        let mut changed = readers.len() != current.len();
        while readers.len() < wanted {
            let client = connect_detached(&cfg).await?;
            let statements = within(cfg.query_deadline(), async {
                Ok(ReadStatements::prepare(&client).await?)
            })
            .await?;
            readers.push(Arc::new(Reader { client, statements }));
            changed = true;
        }
        if changed {
            self.node.pg.set_readers(readers);
        }
        Ok(())
    }
}

impl Actor for PostgresPool {
    type Msg = PgMsg;
    type State = PgState;
    type Arguments = ();

    async fn pre_start(&self, myself: ActorRef<PgMsg>, _: ()) -> Result<PgState, ActorProcessingErr> {
        let cfg = self.node.config().postgres.clone();
        let pool = build_pool(&cfg)?;
        self.node.pg.publish(pool.clone(), cfg.query_deadline());
        Counted::of(myself.clone()).send(PgMsg::Tick)?;
        Ok(PgState {
            pool,
            migrated: false,
            failures: 0,
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
                        if let Err(e) = self.keep_readers().await {
                            tracing::debug!(error = %e, "cannot open a shared read connection; reads take pooled ones");
                        }
                        self.node.pg.set(true, None);
                        state.failures = 0;
                        cfg.health_interval.get()
                    }
                    Err(e) => {
                        self.node.pg.set_readers(Vec::new());
                        self.node.pg.set(false, Some(e.to_string()));
                        state.failures = state.failures.saturating_add(1);
                        backoff(cfg.retry_max.get()).delay(state.failures)
                    }
                };
                Counted::of(myself.clone()).send_after(next, || PgMsg::Tick);
            }
        }
        Ok(())
    }

    async fn post_stop(&self, _: ActorRef<PgMsg>, state: &mut PgState) -> Result<(), ActorProcessingErr> {
        self.node.pg.withdraw();
        self.node.pg.set_readers(Vec::new());
        state.pool.close();
        Ok(())
    }
}
