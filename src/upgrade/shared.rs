//! What the upgrader actor publishes: its handle, so that the control
//! commands and the signal handler reach it without a path to resolve (a
//! restarted upgrader publishes its new handle at its start).

use std::path::PathBuf;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use ractor::ActorRef;

use crate::upgrade::upgrade_msg::{UpgradeError, UpgradeMsg, UpgradeReport};

/// The upgrader's handle, while it runs.
#[derive(Debug, Default)]
pub(crate) struct UpgradeShared {
    upgrader: ArcSwapOption<ActorRef<UpgradeMsg>>,
}

impl UpgradeShared {
    /// Publishes (or withdraws) the upgrader's handle.
    pub(crate) fn publish(&self, upgrader: Option<ActorRef<UpgradeMsg>>) {
        self.upgrader.store(upgrader.map(std::sync::Arc::new));
    }

    /// Asks the upgrader for an upgrade and waits for its outcome.
    pub(crate) async fn request(
        &self,
        binary: Option<PathBuf>,
        timeout: Duration,
    ) -> Result<UpgradeReport, UpgradeError> {
        let upgrader = self
            .upgrader
            .load_full()
            .ok_or_else(|| UpgradeError::Unavailable("the upgrader (diem/upgrade) is not running".into()))?;
        let called = supervisors::Counted::of(ActorRef::clone(&upgrader))
            .call(
                |reply| UpgradeMsg::Start {
                    binary,
                    timeout,
                    reply,
                },
                None,
            )
            .await;
        match called {
            Ok(ractor::rpc::CallResult::Success(report)) => report,
            Ok(_) => Err(UpgradeError::Unavailable(
                "the upgrader stopped before it answered".into(),
            )),
            Err(e) => Err(UpgradeError::Unavailable(e.to_string())),
        }
    }
}
