//! How diem reaches PostgreSQL: the connection settings of a
//! [`PostgresConfig`], one connection, and the pool.
//!
//! Every connection — pooled, the corpus actor's LISTEN connection,
//! `diem migrate`, `diem import` — is made here, with the same settings:
//! the URL, `connect_timeout`, and `search_path`, `statement_timeout` and
//! `application_name` set at connect.

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::{Client, Connection, Socket};

use crate::config::PostgresConfig;
use crate::store::tls::{PgTls, RustlsStream};
use crate::store::{within, StoreError};

/// The connection settings of `cfg` — URL, timeouts, `search_path` — and
/// the TLS its URL asks for ([`PgTls`]).
pub fn pg_config(cfg: &PostgresConfig) -> Result<(tokio_postgres::Config, PgTls), StoreError> {
    let (url, tls) = PgTls::from_url(&cfg.url).map_err(|e| StoreError::Other(e.to_string()))?;
    let mut c: tokio_postgres::Config = url.parse()?;
    c.ssl_mode(tls.tokio_mode());
    c.connect_timeout(cfg.connect_timeout.get());
    c.options(format!(
        "-c search_path={} -c statement_timeout={} -c client_min_messages=warning",
        cfg.schema,
        cfg.statement_timeout.as_millis()
    ));
    if c.get_application_name().is_none() {
        c.application_name("diem");
    }
    Ok((c, tls))
}

/// A pool for `cfg` (no connection is opened until one is needed).
pub fn build_pool(cfg: &PostgresConfig) -> Result<Pool, StoreError> {
    let (config, tls) = pg_config(cfg)?;
    let manager = Manager::from_config(
        config,
        tls.connector(),
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let timeout = Some(cfg.connect_timeout.get());
    Pool::builder(manager)
        .max_size(cfg.pool_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(timeout)
        .create_timeout(timeout)
        .recycle_timeout(timeout)
        .build()
        .map_err(|e| StoreError::Other(format!("cannot build the pool: {e}")))
}

/// One connection outside the pool, within `connect_timeout`; the caller
/// drives the returned [`Connection`] (its notifications included).
pub async fn connect(
    cfg: &PostgresConfig,
) -> Result<(Client, Connection<Socket, RustlsStream<Socket>>), StoreError> {
    let (config, tls) = pg_config(cfg)?;
    within(cfg.connect_timeout.get(), async {
        config.connect(tls.connector()).await.map_err(StoreError::from)
    })
    .await
}

/// One connection outside the pool (for `migrate` and `import`); its driver
/// runs as a task that ends when the connection does.
pub async fn connect_detached(cfg: &PostgresConfig) -> Result<Client, StoreError> {
    let (client, connection) = connect(cfg).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "postgres connection closed");
        }
    });
    Ok(client)
}
