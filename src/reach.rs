//! `diem config check --connect`: tries both stores with the configured
//! URLs — TLS included — and says, per store, what works or why not.
//!
//! The node itself never fails for a store that is down (it serves its
//! snapshot and limits locally); this is for the operator who wants to
//! know before the node is started, e.g. with a managed store's URL just
//! pasted.

use std::time::Duration;

use fred::prelude::{ClientLike, EventInterface};

use crate::config::show::redact_secrets;
use crate::config::{split_tls_params, Config};
use crate::limiter::redis_limiter::client;
use crate::limiter::redis_tls::client_tls;
use crate::store::connection::connect_detached;

/// How long each store may take to answer.
const WITHIN: Duration = Duration::from_secs(10);

/// One store's outcome: what answered, or why nothing did.
#[derive(Debug)]
pub struct Reached {
    /// `postgres` or `redis`.
    pub store: &'static str,
    /// What answered, or the error.
    pub outcome: Result<String, String>,
}

async fn postgres(config: &Config) -> Result<String, String> {
    // The mode as the URL names it (the connection reads the files).
    let mode = split_tls_params(&config.postgres.url)
        .1
        .mode
        .unwrap_or_else(|| "prefer".to_owned());
    let work = async {
        let client = connect_detached(&config.postgres)
            .await
            .map_err(|e| e.to_string())?;
        let row = client
            .query_one("select version()", &[])
            .await
            .map_err(|e| e.to_string())?;
        let version: String = row.get(0);
        Ok::<_, String>(version)
    };
    let version = tokio::time::timeout(WITHIN, work)
        .await
        .map_err(|_| format!("no answer within {WITHIN:?}"))??;
    let short = version.split(" on ").next().unwrap_or(&version).to_owned();
    Ok(format!(
        "{short} at {} (sslmode {mode})",
        redact_secrets(&config.postgres.url)
    ))
}

async fn redis(config: &Config) -> Result<String, String> {
    let url = &config.redis.url;
    let tls = client_tls(&config.redis).map_err(|e| e.to_string())?;
    // A one-shot check: the node's own command timeout (250 ms by default)
    // is no bound for a first TLS handshake on a busy machine.
    let timeout = config.redis.command_timeout.get().max(Duration::from_secs(5));
    let c = client(url, tls, timeout).map_err(|e| e.to_string())?;
    // The connection's own errors (a certificate refused) reach a command
    // only as a timeout: kept to say why.
    let mut errors = c.error_rx();
    let work = async {
        let _task = c.init().await.map_err(|e| e.to_string())?;
        let pong: String = c.ping(None).await.map_err(|e| e.to_string())?;
        let _ = c.quit().await;
        Ok::<_, String>(pong)
    };
    let outcome = tokio::time::timeout(WITHIN, work)
        .await
        .map_err(|_| format!("no answer within {WITHIN:?}"))
        .and_then(|r| r);
    let pong = outcome.map_err(|e| {
        let mut last = None;
        while let Ok((error, _)) = errors.try_recv() {
            last = Some(error.to_string());
        }
        match last {
            Some(conn) => format!("{e}; the connection: {conn}"),
            None => e,
        }
    })?;
    Ok(format!(
        "{} ({pong}; {}{})",
        redact_secrets(url),
        config.redis.topology(),
        if config.redis.uses_tls() { ", TLS" } else { "" }
    ))
}

/// Tries PostgreSQL and Redis as `config` reaches them.
pub async fn reach(config: &Config) -> Vec<Reached> {
    let (pg, rd) = tokio::join!(postgres(config), redis(config));
    vec![
        Reached {
            store: "postgres",
            outcome: pg,
        },
        Reached {
            store: "redis",
            outcome: rd,
        },
    ]
}
