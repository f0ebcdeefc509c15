//! `[postgres]`: the sentences' database.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{invalid, is_identifier, ConfigError, Wait};

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
        if let Err(e) = self.url.parse::<tokio_postgres::Config>() {
            return invalid("postgres.url", &format!("a PostgreSQL URL ({e})"));
        }
        Ok(())
    }
}
