//! `[log]`: the log filter and format.

use serde::{Deserialize, Serialize};

use super::error::ConfigError;
use super::value::invalid;

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable (coloured on a terminal).
    Human,
    /// One JSON object per line.
    Json,
}

/// `[log]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `RUST_LOG`-style filter (`RUST_LOG` wins when set).
    pub filter: String,
    /// Line format.
    pub format: LogFormat,
    /// One line per request at target `diem::access`.
    pub access: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            filter: "info".to_owned(),
            format: LogFormat::Human,
            access: true,
        }
    }
}

impl LogConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.filter) {
            return invalid("log.filter", &format!("a tracing filter ({e})"));
        }
        Ok(())
    }
}
