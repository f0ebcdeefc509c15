//! `[runtime]`: the tokio runtime.

use serde::{Deserialize, Serialize};

/// `[runtime]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Worker threads of the tokio runtime; 0 means one per core.
    pub worker_threads: usize,
}
