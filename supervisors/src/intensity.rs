//! Restart-intensity bookkeeping: "at most N restarts within P".
//!
//! OTP keeps every restart time of the window in a list and measures its
//! length on each restart, which costs O(restarts in the window). Here the
//! window is a queue that is never longer than `intensity + 1`: each restart
//! pushes one instant and pops the expired ones, so a restart costs O(1)
//! amortised however high the intensity.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use supervisors::RestartWindow;
//!
//! let mut w = RestartWindow::new(2, Duration::from_secs(5));
//! let t = Instant::now();
//! assert!(w.add(t));
//! assert!(w.add(t));
//! assert!(!w.add(t), "the third restart within 5 s exceeds intensity 2");
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// A sliding window of recent restarts.
#[derive(Debug, Clone)]
pub struct RestartWindow {
    intensity: u32,
    period: Duration,
    stamps: VecDeque<Instant>,
}

impl RestartWindow {
    /// A window allowing `intensity` restarts within `period`.
    pub fn new(intensity: u32, period: Duration) -> Self {
        Self {
            intensity,
            period,
            stamps: VecDeque::new(),
        }
    }

    /// Records a restart at `now`. Returns `false` when this restart exceeds
    /// the intensity (more than `intensity` restarts within `period`, the
    /// new one included): the supervisor must then give up.
    pub fn add(&mut self, now: Instant) -> bool {
        while let Some(&front) = self.stamps.front() {
            if now.saturating_duration_since(front) > self.period {
                self.stamps.pop_front();
            } else {
                break;
            }
        }
        self.stamps.push_back(now);
        if self.stamps.len() > self.intensity as usize {
            // Keep the queue bounded even if the caller carries on.
            self.stamps.pop_front();
            return false;
        }
        true
    }

    /// Restarts inside the window at `now` (expired ones not counted).
    pub fn in_window(&self, now: Instant) -> usize {
        self.stamps
            .iter()
            .filter(|&&t| now.saturating_duration_since(t) <= self.period)
            .count()
    }

    /// Whether one more restart at `now` would exceed the intensity (the
    /// supervisor would give up).
    pub fn would_exceed(&self, now: Instant) -> bool {
        self.in_window(now) + 1 > self.intensity as usize
    }

    /// Restarts recorded (some may have left the window since).
    pub fn len(&self) -> usize {
        self.stamps.len()
    }

    /// Whether no restart is inside the window.
    pub fn is_empty(&self) -> bool {
        self.stamps.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_intensity_gives_up_on_first_restart() {
        let mut w = RestartWindow::new(0, Duration::from_secs(5));
        assert!(!w.add(Instant::now()));
    }

    #[test]
    fn old_restarts_leave_the_window() {
        let mut w = RestartWindow::new(1, Duration::from_millis(100));
        let t = Instant::now();
        assert!(w.add(t));
        assert!(w.add(t + Duration::from_millis(150)));
        assert!(!w.add(t + Duration::from_millis(200)));
    }

    #[test]
    fn tells_whether_the_next_restart_would_give_up() {
        let mut w = RestartWindow::new(2, Duration::from_millis(100));
        let t = Instant::now();
        assert!(!w.would_exceed(t));
        w.add(t);
        assert!(!w.would_exceed(t));
        w.add(t);
        assert!(w.would_exceed(t));
        assert_eq!(w.in_window(t + Duration::from_millis(150)), 0);
        assert!(!w.would_exceed(t + Duration::from_millis(150)));
    }

    #[test]
    fn stays_bounded_under_a_storm() {
        let mut w = RestartWindow::new(1_000, Duration::from_secs(3600));
        let t = Instant::now();
        for _ in 0..1_000 {
            assert!(w.add(t));
        }
        assert!(!w.add(t));
        assert!(w.len() <= 1_000);
    }
}
