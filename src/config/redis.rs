//! `[redis]`: the shared store of the rate limiter.

use serde::{Deserialize, Serialize};

use super::error::ConfigError;
use super::value::invalid;
use super::wait::Wait;

/// `[redis]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// Connection URL.
    pub url: String,
    /// Prefix of every key diem writes.
    pub key_prefix: String,
    /// Longest wait for a reply before the limiter falls back to local.
    pub command_timeout: Wait,
    /// Interval of the health check while Redis is down.
    pub health_interval: Wait,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379".to_owned(),
            key_prefix: "diem:".to_owned(),
            command_timeout: Wait::from_millis(250),
            health_interval: Wait::from_millis(500),
        }
    }
}

impl RedisConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if let Err(e) = fred::types::config::Config::from_url(&self.url) {
            return invalid("redis.url", &format!("a Redis URL ({e})"));
        }
        Ok(())
    }
}
