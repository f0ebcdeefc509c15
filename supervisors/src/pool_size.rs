//! [`PoolSize`]: how many instances a dynamic supervisor runs, kept across
//! its restarts.
//!
//! OTP's `simple_one_for_one` supervisor starts empty every time it starts;
//! instances come from `start_child` calls. A pool of interchangeable
//! workers wants the opposite: a size that `scale_to` changes and that a
//! restarted pool comes back at. [`SupervisorSpec::sized`] gives the spec a
//! `PoolSize`; the spec (and so every restart of the supervisor) shares it.
//!
//! ```
//! use supervisors::PoolSize;
//!
//! let size = PoolSize::new(4);
//! let shared = size.clone();
//! assert_eq!(shared.get(), 4);
//! ```
//!
//! [`SupervisorSpec::sized`]: crate::SupervisorSpec::sized

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The wanted number of instances of a dynamic supervisor. Cheap to clone;
/// clones share the value.
#[derive(Clone, Debug, Default)]
pub struct PoolSize(Arc<AtomicUsize>);

impl PoolSize {
    /// A size of `n`.
    pub fn new(n: usize) -> Self {
        Self(Arc::new(AtomicUsize::new(n)))
    }

    /// The wanted number of instances.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }

    pub(crate) fn set(&self, n: usize) {
        self.0.store(n, Ordering::Release);
    }
}
