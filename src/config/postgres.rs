//! `[postgres]`: the sentences' database.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::ConfigError;
use super::value::{invalid, is_identifier};
use super::wait::Wait;

/// libpq's values of `sslmode`.
const SSL_MODES: [&str; 6] = [
    "disable",
    "allow",
    "prefer",
    "require",
    "verify-ca",
    "verify-full",
];

/// Where reads of `GET /hitokoto/v2/` come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadMode {
    /// The in-memory snapshot kept fresh from PostgreSQL (the default).
    Snapshot,
    /// One PostgreSQL query per request.
    Query,
}

/// `[postgres]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PostgresConfig {
    /// Connection URL.
    pub url: String,
    /// Schema holding diem's tables (created if missing).
    pub schema: String,
    /// Connections in the pool.
    pub pool_size: usize,
    /// Time to connect or to wait for a pooled connection.
    pub connect_timeout: Wait,
    /// Longest time a statement may run.
    pub statement_timeout: Wait,
    /// Longest delay between two connection attempts while PostgreSQL is down.
    pub retry_max: Wait,
    /// Interval of the health check of the pool.
    pub health_interval: Wait,
    /// Where reads come from.
    pub reads: ReadMode,
    /// With `reads = "query"`: connections every read request shares
    /// (tokio-postgres pipelines the queries of concurrent requests on
    /// each); 0 takes a pooled connection per read instead.
    pub read_connections: usize,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        Self {
            url: "postgres://postgres@127.0.0.1:5432/diem".to_owned(),
            schema: "public".to_owned(),
            pool_size: 16,
            connect_timeout: Wait::from_secs(2),
            statement_timeout: Wait::from_secs(5),
            retry_max: Wait::from_secs(5),
            health_interval: Wait::from_secs(1),
            reads: ReadMode::Snapshot,
            read_connections: 2,
        }
    }
}

impl PostgresConfig {
    /// The longest a query may take from the client's side: a connection,
    /// then the statement.
    pub fn query_deadline(&self) -> Duration {
        self.connect_timeout.get() + self.statement_timeout.get()
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.pool_size == 0 {
            return invalid("postgres.pool_size", "a number of at least 1");
        }
        if !is_identifier(&self.schema) {
            return invalid(
                "postgres.schema",
                "an identifier of lower-case letters, digits and `_`, starting with a letter or `_`",
            );
        }
        let (url, tls) = split_tls_params(&self.url);
        if let Some(mode) = tls.mode.as_deref().filter(|m| !SSL_MODES.contains(m)) {
            return invalid(
                "postgres.url",
                &format!(
                    "sslmode `{mode}`: expected disable, allow, prefer, require, verify-ca or verify-full"
                ),
            );
        }
        if let Err(e) = url.parse::<tokio_postgres::Config>() {
            return invalid("postgres.url", &format!("a PostgreSQL URL ({e})"));
        }
        Ok(())
    }
}

/// libpq's TLS parameters, taken out of a `postgres.url` (tokio-postgres
/// knows none but three values of `sslmode`).
#[derive(Debug, Default)]
pub struct TlsParams {
    /// `sslmode`.
    pub mode: Option<String>,
    /// `sslrootcert`.
    pub root: Option<String>,
    /// `sslcert`.
    pub cert: Option<String>,
    /// `sslkey`.
    pub key: Option<String>,
}

/// Splits libpq's TLS parameters off `url` (the URL form's query, or the
/// `key=value` form's words); returns the rest and them.
///
/// ```
/// use diem::config::split_tls_params;
///
/// let (rest, tls) = split_tls_params("postgres://db/x?sslmode=verify-full&sslrootcert=%2Fca.pem&connect_timeout=2");
/// assert_eq!(rest, "postgres://db/x?connect_timeout=2");
/// assert_eq!(tls.mode.as_deref(), Some("verify-full"));
/// assert_eq!(tls.root.as_deref(), Some("/ca.pem"));
/// ```
pub fn split_tls_params(url: &str) -> (String, TlsParams) {
    let mut params = TlsParams::default();
    let mut take = |key: &str, value: String| -> bool {
        let slot = match key {
            "sslmode" => &mut params.mode,
            "sslrootcert" => &mut params.root,
            "sslcert" => &mut params.cert,
            "sslkey" => &mut params.key,
            _ => return false,
        };
        *slot = Some(value);
        true
    };
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let Some((base, query)) = url.split_once('?') else {
            return (url.to_owned(), params);
        };
        let kept: Vec<&str> = query
            .split('&')
            .filter(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                !take(
                    k,
                    percent_encoding::percent_decode_str(v)
                        .decode_utf8_lossy()
                        .into_owned(),
                )
            })
            .collect();
        let rest = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        (rest, params)
    } else {
        let kept: Vec<&str> = url
            .split_whitespace()
            .filter(|word| {
                let (k, v) = word.split_once('=').unwrap_or((word, ""));
                !take(k.trim(), v.trim_matches('\'').to_owned())
            })
            .collect();
        (kept.join(" "), params)
    }
}
