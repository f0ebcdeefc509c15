//! Why a configuration cannot be used.

use std::path::PathBuf;

use thiserror::Error;

/// A configuration that cannot be used, with the key and what was expected.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("config file {path}: {reason}")]
    File {
        /// The path given.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Values with the wrong type or unknown keys, one line each.
    #[error("invalid config: {}", .0.join("; "))]
    Load(Vec<String>),
    /// An environment variable that cannot be a config value.
    #[error("invalid config: `{key}` (from {variable}): {message}")]
    Env {
        /// The variable, e.g. `DIEM_WORKERS__COUNT`.
        variable: String,
        /// The key it sets, e.g. `workers.count`.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A value has the right type but is out of range.
    #[error("invalid config: `{key}`: {expected}")]
    Invalid {
        /// The dotted key, e.g. `workers.count`.
        key: &'static str,
        /// What was expected.
        expected: String,
    },
}
