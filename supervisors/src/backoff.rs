//! Per-child restart backoff: Kubernetes' CrashLoopBackOff in milliseconds.
//!
//! Not part of OTP and off by default (a [`ChildSpec`](crate::ChildSpec)
//! without a backoff restarts at once, exactly as OTP does). With a backoff,
//! the n-th consecutive restart of a child waits
//! `min(cap, initial * 2^(n-1))`, spread by ±`jitter` so that many children
//! crashing together do not restart in lockstep. A child that ran cleanly for
//! `reset_after` starts again from `initial`. Restarts still count towards
//! the supervisor's intensity when the crash happens.
//!
//! ```
//! use std::time::Duration;
//! use supervisors::Backoff;
//!
//! let b = Backoff::new(Duration::from_millis(1), Duration::from_millis(100)).jitter(0.0);
//! assert_eq!(b.delay(1), Duration::from_millis(1));
//! assert_eq!(b.delay(3), Duration::from_millis(4));
//! assert_eq!(b.delay(30), Duration::from_millis(100));
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// An exponential restart backoff with cap, jitter and reset.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Backoff {
    /// Delay before the first restart of a crash loop.
    pub initial: Duration,
    /// Longest delay.
    pub cap: Duration,
    /// Relative spread of each delay, 0.0 to 1.0 (default 0.1: ±10%).
    pub jitter: f64,
    /// A child that ran this long before exiting restarts without delay
    /// history (default 10 s).
    pub reset_after: Duration,
}

impl Backoff {
    /// A backoff from `initial` doubling up to `cap`, ±10% jitter, reset
    /// after 10 s of clean running.
    pub fn new(initial: Duration, cap: Duration) -> Self {
        Self {
            initial,
            cap,
            jitter: 0.1,
            reset_after: Duration::from_secs(10),
        }
    }

    /// Sets the jitter (clamped to 0.0..=1.0).
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = jitter.clamp(0.0, 1.0);
        self
    }

    /// Sets the clean-running time that resets the backoff.
    pub fn reset_after(mut self, reset_after: Duration) -> Self {
        self.reset_after = reset_after;
        self
    }

    /// The delay before restart number `attempt` (1-based) of a crash loop.
    pub fn delay(&self, attempt: u32) -> Duration {
        let shift = attempt.saturating_sub(1).min(31);
        let base = self.initial.saturating_mul(1u32 << shift).min(self.cap);
        if self.jitter == 0.0 {
            return base;
        }
        let spread = 1.0 + self.jitter * (fastrand::f64() * 2.0 - 1.0);
        base.mul_f64(spread).min(self.cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_bounds() {
        let b = Backoff::new(Duration::from_millis(10), Duration::from_secs(1));
        for attempt in 1..20 {
            let d = b.delay(attempt);
            let base = Duration::from_millis(10)
                .saturating_mul(1 << (attempt - 1).min(31))
                .min(Duration::from_secs(1));
            assert!(d <= Duration::from_secs(1));
            assert!(d >= base.mul_f64(0.9));
        }
    }
}
