//! What the cluster port refused, counted and summarised: never a log line
//! per connection.
//!
//! Anyone who can reach the cluster port can open connections to it. Each
//! one made ractor_cluster log ~5 lines (session opened, framing error,
//! closed…): 10,000 connections of garbage were 70,000 lines. So
//! ractor_cluster's own lines are not printed at the default filter
//! (`telemetry` keeps them out unless the filter names `ractor_cluster`,
//! e.g. `ctl log-level info,ractor_cluster=info`), and every refusal — by
//! ractor_cluster (a failed cookie challenge, a stream that is not the
//! protocol) or by diem's TLS listener (no first bytes in time, too many
//! handshakes from one address or in all, a failed TLS handshake) — is
//! counted here by [`Reason`]. At most one warning a second sums up the
//! refusals since the last one ([`Noise::flush`], called by the cluster's
//! actors, never from inside the logging layer); `ctl cluster` shows the
//! totals.
//!
//! It is a process-wide counter ([`NOISE`]), because the logging layer
//! that sees ractor_cluster's lines is installed before any node exists.
//! This module imports nothing of diem.
//!
//! ```
//! use diem::cluster::noise::{Noise, Reason};
//!
//! let noise = Noise::new();
//! noise.refused(Reason::BadStream);
//! noise.refused(Reason::BadStream);
//! noise.flush(); // one warning: bad_stream=2
//! assert_eq!(noise.totals()[&Reason::BadStream], 2);
//! ```

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;

/// Why the cluster port refused a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The peer failed the cookie challenge (another `cluster.cookie`).
    AuthFailed,
    /// What came was not ractor_cluster's protocol.
    BadStream,
    /// The TLS handshake failed (no certificate, another CA, another name).
    TlsFailed,
    /// Nothing arrived within the first-bytes deadline.
    NoFirstBytes,
    /// Too many handshakes from this address at once.
    PerAddress,
    /// Too many handshakes in all at once.
    SlotsFull,
}

impl Reason {
    /// Every reason, in order.
    pub const ALL: [Reason; 6] = [
        Reason::AuthFailed,
        Reason::BadStream,
        Reason::TlsFailed,
        Reason::NoFirstBytes,
        Reason::PerAddress,
        Reason::SlotsFull,
    ];

    /// Its name in logs, metrics and `ctl cluster`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::AuthFailed => "auth_failed",
            Reason::BadStream => "bad_stream",
            Reason::TlsFailed => "tls_failed",
            Reason::NoFirstBytes => "no_first_bytes",
            Reason::PerAddress => "per_address_limit",
            Reason::SlotsFull => "handshake_slots_full",
        }
    }

    /// The refusal one of ractor_cluster's lines reports, if any.
    pub fn of_ractor_cluster_line(message: &str) -> Option<Reason> {
        if message.contains("authentication failure") {
            Some(Reason::AuthFailed)
        } else if message.contains("framing error")
            || message.contains("unauthenticated NodeSession")
            || message.contains("Failed to startup")
        {
            Some(Reason::BadStream)
        } else if message.contains("secure socket") {
            Some(Reason::TlsFailed)
        } else {
            None
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The counts of refusals, and when the last summary was logged.
#[derive(Debug)]
pub struct Noise {
    totals: [AtomicU64; 6],
    unlogged: Mutex<([u64; 6], Option<Instant>)>,
    verbose: AtomicBool,
}

/// The process's cluster-port refusals.
pub static NOISE: Noise = Noise::new();

impl Default for Noise {
    fn default() -> Self {
        Self::new()
    }
}

impl Noise {
    /// No refusal yet.
    pub const fn new() -> Self {
        Self {
            totals: [const { AtomicU64::new(0) }; 6],
            unlogged: Mutex::new(([0; 6], None)),
            verbose: AtomicBool::new(false),
        }
    }

    /// Counts one refusal. It logs nothing itself — it is called from
    /// inside the logging layer, where a new event would be dispatched in
    /// the middle of another one — [`Noise::flush`] does.
    pub fn refused(&self, reason: Reason) {
        self.totals[reason.index()].fetch_add(1, Ordering::Relaxed);
        if let Ok(mut guard) = self.unlogged.lock() {
            guard.0[reason.index()] += 1;
        }
    }

    /// Logs the refusals counted since the last summary, if there are any
    /// and a second has passed since it (the cluster's actors call this
    /// on their ticks and after refusing).
    pub fn flush(&self) {
        let due = {
            let Ok(mut guard) = self.unlogged.lock() else {
                return;
            };
            let (counts, last) = &mut *guard;
            let now = Instant::now();
            if counts.iter().all(|n| *n == 0) || last.is_some_and(|at| now.duration_since(at).as_secs() < 1) {
                None
            } else {
                *last = Some(now);
                Some(std::mem::take(counts))
            }
        };
        if let Some(counts) = due {
            let summary: Vec<String> = Reason::ALL
                .iter()
                .filter(|r| counts[r.index()] > 0)
                .map(|r| format!("{}={}", r.as_str(), counts[r.index()]))
                .collect();
            tracing::warn!(
                target: "diem::cluster",
                refused = %summary.join(" "),
                "cluster port: connections refused since the last such line (logged at most once a second; `ctl cluster` has the totals)"
            );
        }
    }

    /// Refusals by reason since the process started.
    pub fn totals(&self) -> BTreeMap<Reason, u64> {
        Reason::ALL
            .iter()
            .map(|r| (*r, self.totals[r.index()].load(Ordering::Relaxed)))
            .collect()
    }

    /// Whether ractor_cluster's own lines are printed (the log filter names
    /// `ractor_cluster`).
    pub fn verbose(&self) -> bool {
        self.verbose.load(Ordering::Relaxed)
    }

    /// Prints ractor_cluster's own lines, or not.
    pub fn set_verbose(&self, on: bool) {
        self.verbose.store(on, Ordering::Relaxed);
    }
}
