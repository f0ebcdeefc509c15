//! `[workers]`: the request worker pool.

use serde::{Deserialize, Serialize};

use super::error::ConfigError;
use super::value::invalid;

/// `[workers]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkersConfig {
    /// Workers started (changeable live with `scale` or `reload`).
    pub count: usize,
    /// Upper bound for `count` and `scale`.
    pub max: usize,
    /// Requests admitted per worker; past `count * queue_depth` requests
    /// in flight, new ones get 503 at once.
    pub queue_depth: usize,
}

impl Default for WorkersConfig {
    fn default() -> Self {
        Self {
            count: 8,
            max: 256,
            queue_depth: 64,
        }
    }
}

impl WorkersConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.max == 0 || self.max > 100_000 {
            return invalid("workers.max", "a number from 1 to 100000");
        }
        if self.count == 0 || self.count > self.max {
            return invalid(
                "workers.count",
                &format!("a number from 1 to workers.max ({})", self.max),
            );
        }
        if self.queue_depth == 0 {
            return invalid("workers.queue_depth", "a number of at least 1");
        }
        Ok(())
    }
}
