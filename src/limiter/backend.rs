//! [`Backend`]: which store decided a request — Redis, or the in-process
//! fallback.

use serde::{Deserialize, Serialize};

/// Which store decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// Redis.
    Redis,
    /// The in-process fallback.
    Local,
}

impl Backend {
    /// Both, Redis first.
    pub const ALL: [Backend; 2] = [Backend::Redis, Backend::Local];

    /// `redis` or `local`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Redis => "redis",
            Backend::Local => "local",
        }
    }
}
