//! A task that belongs to an actor beside its mailbox: the limiter's
//! batcher and hot-path connection, the upgrade in progress, the corpus
//! actor's wait, the membership's event forwarder. (A child that is only a
//! loop is a task child instead: `supervisors::ChildSpec::task`.)
//!
//! The task is aborted when the [`OwnedTask`] is dropped — it lives in the
//! actor's state, so it dies with the actor however the actor exits — and
//! `on_end` runs when the task ends, whatever ends it, so that an actor can
//! crash (and be restarted by its supervisor) when a loop it depends on
//! stops by itself.

use std::future::Future;

use tokio::task::JoinHandle;

/// A spawned task, aborted when dropped.
#[derive(Debug)]
pub(crate) struct OwnedTask(JoinHandle<()>);

struct OnEnd<F: FnOnce()>(Option<F>);

impl<F: FnOnce()> Drop for OnEnd<F> {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

impl OwnedTask {
    /// Spawns `work`; `on_end` runs when it returns, panics or is aborted.
    pub(crate) fn spawn<W, E>(work: W, on_end: E) -> Self
    where
        W: Future<Output = ()> + Send + 'static,
        E: FnOnce() + Send + 'static,
    {
        let guard = OnEnd(Some(on_end));
        Self(tokio::spawn(async move {
            let _guard = guard;
            work.await;
        }))
    }
}

impl Drop for OwnedTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}
