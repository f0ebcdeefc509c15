//! How long the host kept this test process from running: a thread that
//! sleeps 5 ms at a time and keeps the longest oversleep.
//!
//! A liveness bound such as "the longest gap between two answers is under
//! 1 s" is diem's to keep only while the machine runs it. On a shared CI
//! host a stolen or overcommitted CPU can stop every process for a second
//! or two (a local run once saw a 1.8 s gap that way, while the test
//! beside it got 32 answers in 3 s); the meter sees the same stop, and the
//! test allows the gap that much more. A stall of diem alone
//! — a blocked runtime, a slow restart — is not seen by the meter, so the
//! bound still catches it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const TICK: Duration = Duration::from_millis(5);

/// A running meter; [`StallMeter::stop`] gives the longest stall seen.
pub struct StallMeter {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Duration>,
}

impl StallMeter {
    /// Starts measuring.
    pub fn start() -> StallMeter {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut longest = Duration::ZERO;
            while !flag.load(Ordering::Acquire) {
                let before = Instant::now();
                std::thread::sleep(TICK);
                longest = longest.max(before.elapsed().saturating_sub(TICK));
            }
            longest
        });
        StallMeter { stop, thread }
    }

    /// Stops measuring; the longest time the thread overslept its tick.
    pub fn stop(self) -> Duration {
        self.stop.store(true, Ordering::Release);
        self.thread.join().expect("stall meter")
    }
}
