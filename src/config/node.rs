//! `[node]`: this node.

use serde::{Deserialize, Serialize};

/// `[node]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// The node's name in `ping`, logs and metrics (default: the host name).
    pub name: String,
}

impl Default for NodeConfig {
    fn default() -> Self {
        let name = std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "diem".to_owned());
        Self { name }
    }
}
