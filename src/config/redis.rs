//! `[redis]`: the shared store of the rate limiter.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::error::ConfigError;
use super::value::invalid;
use super::wait::Wait;

/// `[redis]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// Connection URL: `redis://` (plain TCP) or `rediss://` (TLS), and
    /// fred's `-cluster` and `-sentinel` forms of each.
    pub url: String,
    /// Prefix of every key diem writes.
    pub key_prefix: String,
    /// Longest wait for a reply before the limiter falls back to local.
    pub command_timeout: Wait,
    /// Interval of the health check while Redis is down.
    pub health_interval: Wait,
    /// With a `rediss` URL: the PEM file of the CA the server's certificate
    /// is checked against; empty: the system's roots.
    pub tls_ca: PathBuf,
    /// With a `rediss` URL: a client certificate (PEM), for a server that
    /// asks for one (`tls-auth-clients yes`); with `tls_key`.
    pub tls_cert: PathBuf,
    /// The private key (PEM) of `tls_cert`.
    pub tls_key: PathBuf,
    /// With a `rediss` URL: whether the server's certificate must name the
    /// host of the URL. Some managed Redis (GCP Memorystore) present
    /// certificates without it; the chain is checked either way.
    pub tls_verify_hostname: bool,
    /// Replicas that must hold each decision before it is given (Redis's
    /// `WAIT` after every batch): a failover then forgets none. 0 (the
    /// default): Redis's asynchronous replication, one round trip less.
    pub wait_replicas: u32,
    /// With `wait_replicas`: how long a batch waits for them; fewer in
    /// time and its requests decide locally, as if Redis had failed.
    pub wait_timeout: Wait,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379".to_owned(),
            key_prefix: "diem:".to_owned(),
            command_timeout: Wait::from_millis(250),
            health_interval: Wait::from_millis(500),
            tls_ca: PathBuf::new(),
            tls_cert: PathBuf::new(),
            tls_key: PathBuf::new(),
            tls_verify_hostname: true,
            wait_replicas: 0,
            wait_timeout: Wait::from_millis(100),
        }
    }
}

/// fred's reading of a Redis URL, without the TLS configuration fred
/// would build for a `rediss` scheme: it reads the system's root
/// certificates each time it parses one, and diem parses the URL at every
/// check, connection and hand-over of the hot path; the TLS diem uses is
/// its own (`limiter::redis_tls`), set on the client once.
///
/// ```
/// use diem::config::parse_redis_url as parse_url;
///
/// let c = parse_url("rediss://:pw@cache.example:6380/2").unwrap();
/// assert!(c.tls.is_none());
/// assert_eq!((c.password.as_deref(), c.database), (Some("pw"), Some(2)));
/// assert!(parse_url("rediss-cluster://a:7000?node=b:7000").unwrap().server.is_clustered());
/// ```
pub fn parse_url(url: &str) -> Result<fred::types::config::Config, fred::error::Error> {
    let plain = match url.split_once("://") {
        Some((scheme, rest)) => {
            let scheme = match scheme {
                s if s.starts_with("rediss") => s.replacen("rediss", "redis", 1),
                s if s.starts_with("valkeys") => s.replacen("valkeys", "valkey", 1),
                s => s.to_owned(),
            };
            format!("{scheme}://{rest}")
        }
        None => url.to_owned(),
    };
    fred::types::config::Config::from_url(&plain)
}

impl RedisConfig {
    /// Whether the URL asks for TLS (`rediss`, `rediss-cluster`,
    /// `rediss-sentinel`, and fred's `valkeys` forms).
    pub fn uses_tls(&self) -> bool {
        let scheme = self.url.split("://").next().unwrap_or("");
        matches!(scheme.split('-').next(), Some("rediss" | "valkeys"))
    }

    /// `standalone`, `sentinel` or `cluster`: the topology the URL's
    /// scheme names (`redis-cluster://`, `rediss-sentinel://`…).
    pub fn topology(&self) -> &'static str {
        let scheme = self.url.split("://").next().unwrap_or("");
        if scheme.ends_with("-cluster") {
            "cluster"
        } else if scheme.ends_with("-sentinel") {
            "sentinel"
        } else {
            "standalone"
        }
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if let Err(e) = parse_url(&self.url) {
            return invalid("redis.url", &format!("a Redis URL ({e})"));
        }
        if !self.uses_tls() {
            for (key, path) in [
                ("redis.tls_ca", &self.tls_ca),
                ("redis.tls_cert", &self.tls_cert),
                ("redis.tls_key", &self.tls_key),
            ] {
                if !path.as_os_str().is_empty() {
                    return invalid(
                        key,
                        "empty unless redis.url is a TLS URL (rediss://, rediss-cluster://, rediss-sentinel://)",
                    );
                }
            }
        }
        if self.wait_replicas > 0
            && (self.wait_timeout.get() < std::time::Duration::from_millis(1)
                || self.wait_timeout >= self.command_timeout)
        {
            return invalid(
                "redis.wait_timeout",
                "at least 1ms and shorter than redis.command_timeout with redis.wait_replicas (a batch's replies, WAIT's included, must come within the command timeout)",
            );
        }
        if self.tls_cert.as_os_str().is_empty() != self.tls_key.as_os_str().is_empty() {
            return invalid("redis.tls_cert", "set with redis.tls_key (both or neither)");
        }
        Ok(())
    }
}
