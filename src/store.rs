//! The sentence store: PostgreSQL (the source of truth), the in-memory
//! snapshot every read is served from, and the actors that keep the two
//! together.
//!
//! * [`postgres_pool`]: the pool actor, owner of the deadpool-postgres pool;
//!   it applies the migrations and keeps retrying while PostgreSQL is down.
//!   It publishes the pool in [`pg_shared`].
//! * [`corpus`]: the corpus actor, which loads the snapshot and reloads it
//!   when PostgreSQL says the sentences changed (LISTEN/NOTIFY). It
//!   publishes the snapshot in [`corpus_shared`].
//! * [`connection`]: how every connection to PostgreSQL is made.
//! * [`snapshot`], [`sentence`]: the in-memory corpus and its bodies.
//! * [`embedded`]: the corpus compiled into the binary.
//! * [`migrations`], [`queries`], [`bundle`], [`import`]: schema, SQL, and
//!   `diem import`.

pub mod bundle;
pub mod connection;
pub(crate) mod corpus;
pub(crate) mod corpus_shared;
pub mod embedded;
pub mod import;
pub mod migrations;
pub(crate) mod pg_shared;
pub(crate) mod postgres_pool;
pub(crate) mod queries;
pub mod sentence;
pub mod snapshot;
pub mod tls;

use std::future::Future;
use std::time::Duration;

use thiserror::Error;

/// An error and its sources, joined: "error connecting to server: Connection
/// refused (os error 111)" rather than the first link alone.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    tls_named(text)
}

/// A failed TLS handshake — a certificate that does not verify — is a
/// setting of postgres.url, not an outage: the text says so.
fn tls_named(text: String) -> String {
    if text.contains("TLS handshake") {
        format!("postgres.url: TLS: {text} (see its sslmode and sslrootcert)")
    } else {
        text
    }
}

/// A PostgreSQL error with the server's message, not just "db error".
fn describe(e: &tokio_postgres::Error) -> String {
    use std::error::Error as _;
    match (e.as_db_error(), e.source()) {
        (Some(db), _) => format!("{}: {}", db.severity(), db.message()),
        (None, Some(source)) => tls_named(format!("{e}: {source}")),
        (None, None) => e.to_string(),
    }
}

/// A store operation that failed.
#[derive(Debug, Error)]
pub enum StoreError {
    /// PostgreSQL answered with an error or the connection failed.
    #[error("postgres: {}", describe(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// No pooled connection could be had.
    #[error("postgres pool: {}", chain(.0))]
    Pool(#[from] deadpool_postgres::PoolError),
    /// PostgreSQL is not reachable now.
    #[error("postgres is unavailable: {0}")]
    Unavailable(String),
    /// A bundle could not be read.
    #[error(transparent)]
    Bundle(#[from] bundle::BundleError),
    /// Anything else, with a description.
    #[error("{0}")]
    Other(String),
}

/// Runs `work` within `deadline`; past it, [`StoreError::Unavailable`]
/// ("no answer within …"): a network that swallows packets fails the
/// operation instead of hanging it.
pub async fn within<T>(
    deadline: Duration,
    work: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout(deadline, work)
        .await
        .map_err(|_| StoreError::Unavailable(format!("no answer within {deadline:?}")))?
}
