//! `[observer]`: what counts as trouble in an actor's load (`diem ctl
//! top`, `ctl diagnose`, the observer page, the log).

use serde::{Deserialize, Serialize};

use super::error::ConfigError;
use super::value::invalid;
use super::wait::Wait;

/// `[observer]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObserverConfig {
    /// (live) A handler running longer than this is reported stuck: a
    /// warning naming the actor and its message, an event on the observer
    /// page, `diem_actor_stuck_total{actor}`.
    pub stuck_after: Wait,
    /// (live) A mailbox longer than this is reported the same way
    /// (`diem_actor_mailbox_warnings_total{actor}`).
    pub mailbox_warn: u64,
}

impl Default for ObserverConfig {
    fn default() -> Self {
        Self {
            stuck_after: Wait::from_millis(100),
            mailbox_warn: 1_000,
        }
    }
}

impl ObserverConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.stuck_after.get() < std::time::Duration::from_millis(10) {
            return invalid(
                "observer.stuck_after",
                "at least 10ms (handlers are sampled every 25 ms)",
            );
        }
        if self.mailbox_warn == 0 {
            return invalid("observer.mailbox_warn", "at least 1");
        }
        Ok(())
    }
}
