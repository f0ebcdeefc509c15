//! Redis over TLS: the rustls configuration a `rediss` URL (and its
//! `-cluster` and `-sentinel` forms) connects with, for fred's connections
//! and the hot-path one ([`pipe`](super::pipe)) alike. The server's chain
//! is checked against `redis.tls_ca` (a PEM file; the system's roots when
//! empty), its name against the URL's host unless
//! `redis.tls_verify_hostname = false` (for managed Redis whose
//! certificates do not name the host, as GCP Memorystore's; the chain is
//! checked either way), and `redis.tls_cert` + `redis.tls_key` are
//! presented to a server that asks for a client certificate.
//!
//! ```
//! use diem::config::RedisConfig;
//! use diem::limiter::redis_tls::client_tls;
//!
//! // A plain URL: no TLS.
//! assert!(client_tls(&RedisConfig::default()).unwrap().is_none());
//! let tls = RedisConfig {
//!     url: "rediss://cache.example:6380".into(),
//!     tls_ca: "/nonexistent/ca.pem".into(),
//!     ..RedisConfig::default()
//! };
//! assert_eq!(client_tls(&tls).unwrap_err().key, "redis.tls_ca");
//! ```

use std::sync::Arc;

use tokio_rustls::rustls::ClientConfig;

use crate::config::{Config, ConfigError, RedisConfig};
use crate::tls_files::{client_config, err, identity, roots, TlsError};

/// The TLS `config` asks for: `None` for a plain URL; an error names the
/// setting at fault.
pub fn client_tls(config: &RedisConfig) -> Result<Option<Arc<ClientConfig>>, TlsError> {
    if !config.uses_tls() {
        return Ok(None);
    }
    let ca = config.tls_ca.to_string_lossy();
    let roots = roots("redis.tls_ca", if ca.is_empty() { "system" } else { &ca })?;
    let nonempty = |p: &std::path::PathBuf| (!p.as_os_str().is_empty()).then(|| p.clone());
    let (cert, key) = (nonempty(&config.tls_cert), nonempty(&config.tls_key));
    let identity = identity(
        ("redis.tls_cert", cert.as_deref()),
        ("redis.tls_key", key.as_deref()),
    )?;
    client_config(Some(roots), config.tls_verify_hostname, identity)
        .map(|c| Some(Arc::new(c)))
        .map_err(|e| err("redis.tls_key", e))
}

/// What `redis`'s TLS files hold, checked as the limiter will read them:
/// `diem config check`, the start of every command and `reload` call it.
pub fn check(config: &Config) -> Result<(), ConfigError> {
    client_tls(&config.redis)
        .map(|_| ())
        .map_err(|e| ConfigError::Invalid {
            key: e.key,
            expected: e.reason,
        })
}
