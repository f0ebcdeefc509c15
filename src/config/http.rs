//! `[http]`: the HTTP listener.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::error::ConfigError;
use super::value::{invalid, string_list};
use super::wait::Wait;

/// `[http]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Address to listen on; port 0 picks a free port.
    pub addr: SocketAddr,
    /// Listen backlog.
    pub backlog: u32,
    /// Connections served at once; more wait in the backlog.
    pub max_connections: usize,
    /// Time a client has to send a request's headers, from the
    /// connection's opening or its previous request's end; also how long
    /// an idle keep-alive connection stays open
    /// (`src/http/head_deadline.rs`).
    pub header_read_timeout: Wait,
    /// Time a client has to send a request's body.
    pub body_read_timeout: Wait,
    /// Largest request head (request line and headers) in bytes.
    pub max_header_bytes: usize,
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// On shutdown, how long the node goes on accepting and serving after
    /// `/readyz` turned 503, so that load balancers stop sending first.
    pub shutdown_delay: Wait<0>,
    /// Time in-flight requests get to finish on shutdown.
    pub shutdown_grace: Wait,
    /// `/readyz` also fails while PostgreSQL or Redis is unreachable or the
    /// embedded corpus is served (off: those are shared dependencies, and a
    /// node still serves without them).
    pub strict_readiness: bool,
    /// Origins whose pages may read the API (CORS): `*` for any, or a
    /// list (echoed with `Vary: Origin`). Live.
    #[serde(deserialize_with = "string_list")]
    pub cors_origins: Vec<String>,
    /// The same for the write routes (`POST`, `DELETE` and their
    /// preflights). Live.
    #[serde(deserialize_with = "string_list")]
    pub cors_write_origins: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            backlog: 1024,
            max_connections: 10_000,
            header_read_timeout: Wait::from_secs(5),
            body_read_timeout: Wait::from_secs(10),
            max_header_bytes: 16 * 1024,
            max_body_bytes: 64 * 1024,
            shutdown_delay: Wait::from_secs(5),
            shutdown_grace: Wait::from_secs(30),
            strict_readiness: false,
            cors_origins: vec!["*".to_owned()],
            cors_write_origins: vec!["*".to_owned()],
        }
    }
}

impl HttpConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.max_header_bytes < 8192 {
            return invalid("http.max_header_bytes", "at least 8192");
        }
        if self.max_connections == 0 {
            return invalid("http.max_connections", "a number of at least 1");
        }
        for (key, origins) in [
            ("http.cors_origins", &self.cors_origins),
            ("http.cors_write_origins", &self.cors_write_origins),
        ] {
            if let Some(bad) = origins.iter().find(|o| !is_origin(o)) {
                return invalid(
                    key,
                    &format!("\"*\" or origins such as https://blog.example (scheme://host[:port], no path), found `{bad}`"),
                );
            }
        }
        Ok(())
    }
}

/// `*`, or a serialized origin: `scheme://host[:port]`, no path.
fn is_origin(o: &str) -> bool {
    o == "*"
        || o.split_once("://").is_some_and(|(scheme, rest)| {
            !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                && !rest.is_empty()
                && !rest.contains(['/', '?', '#', ' ', '*'])
        })
}
