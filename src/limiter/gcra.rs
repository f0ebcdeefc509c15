//! GCRA, exactly as redis-cell's `CL.THROTTLE key max_burst count period
//! [quantity]` computes it, in integer microseconds.
//!
//! The emission interval is `period / count`; the delay-variation tolerance
//! is `emission × (max_burst + 1)`. Each key stores one number, its
//! theoretical arrival time (TAT). A request is allowed when
//! `max(TAT, now) + emission × quantity − tolerance ≤ now`; the TAT then
//! advances and the key expires when it falls back to `now`. The Lua script
//! in [`redis_limiter`](super::redis_limiter) runs the same arithmetic inside
//! Redis; a property test checks the two agree step for step.
//!
//! ```
//! use diem::limiter::gcra::{decide, Params};
//!
//! // The original DIEM-API limit: burst 35, 36 requests per 360 s.
//! let p = Params { burst: 35, count: 36, period_secs: 360 };
//! let (first, tat) = decide(&p, None, 0, 1);
//! assert!(!first.limited);
//! assert_eq!((first.limit, first.remaining), (36, 35));
//! let mut tat = tat;
//! for _ in 1..36 {
//!     let (t, next) = decide(&p, tat, 0, 1);
//!     assert!(!t.limited);
//!     tat = next;
//! }
//! let (refused, _) = decide(&p, tat, 0, 1);
//! assert!(refused.limited);
//! assert_eq!(refused.retry_after_us, 10_000_000); // one emission interval
//! ```

use serde::{Deserialize, Serialize};

/// The limit: `max_burst`, `count` per `period_secs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params {
    /// Requests allowed at once beyond the steady rate.
    pub burst: u64,
    /// Requests per period.
    pub count: u64,
    /// The period in seconds.
    pub period_secs: u64,
}

impl Params {
    /// Time between two requests at the steady rate, µs (at least 1).
    pub fn emission_us(&self) -> i64 {
        let us = self.period_secs.saturating_mul(1_000_000) / self.count.max(1);
        i64::try_from(us).unwrap_or(i64::MAX).max(1)
    }

    /// The delay-variation tolerance, µs.
    pub fn tolerance_us(&self) -> i64 {
        let limit = i64::try_from(self.limit()).unwrap_or(i64::MAX);
        self.emission_us().saturating_mul(limit)
    }

    /// `X-RateLimit-Limit`: `max_burst + 1`.
    pub fn limit(&self) -> u64 {
        self.burst.saturating_add(1)
    }
}

/// One decision, as `CL.THROTTLE` replies it (times in µs here).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Throttle {
    /// Whether the request is refused.
    pub limited: bool,
    /// `max_burst + 1`.
    pub limit: u64,
    /// Requests left at once.
    pub remaining: u64,
    /// When a refused request may retry, µs; -1 when allowed.
    pub retry_after_us: i64,
    /// When the key is back to a full burst, µs.
    pub reset_after_us: i64,
}

impl Throttle {
    /// The reply of redis-cell's `CL.THROTTLE`: times in whole seconds,
    /// truncated, retry -1 when allowed.
    pub fn cl_throttle_reply(&self) -> [i64; 5] {
        let secs = |us: i64| if us < 0 { -1 } else { us / 1_000_000 };
        [
            i64::from(self.limited),
            i64::try_from(self.limit).unwrap_or(i64::MAX),
            i64::try_from(self.remaining).unwrap_or(i64::MAX),
            secs(self.retry_after_us),
            secs(self.reset_after_us),
        ]
    }

    /// `Retry-After` in whole seconds, rounded up, at least 1.
    pub fn retry_after_secs(&self) -> u64 {
        u64::try_from(self.retry_after_us.max(0)).map_or(1, |us| us.div_ceil(1_000_000).max(1))
    }

    /// `X-RateLimit-Reset` in whole seconds, rounded up.
    pub fn reset_secs(&self) -> u64 {
        u64::try_from(self.reset_after_us.max(0)).map_or(0, |us| us.div_ceil(1_000_000))
    }
}

/// Decides one request of `quantity` for a key whose stored TAT is `tat`
/// (`None`: unknown or expired) at time `now` (µs). Returns the decision
/// and the TAT to store (unchanged when refused).
///
/// A stored TAT beyond `now + tolerance` can only come from other
/// parameters (a `reload` changed the limit while the client was held): it
/// is read — and, when refused, stored — as `now + tolerance`, a client
/// that has just used its whole burst under the limit in effect, so it is
/// never made to wait out an old, longer retry. With constant parameters a
/// TAT never exceeds that bound, so redis-cell's decisions are unchanged.
pub fn decide(p: &Params, tat: Option<i64>, now: i64, quantity: u64) -> (Throttle, Option<i64>) {
    let emission = p.emission_us();
    let tolerance = p.tolerance_us();
    let increment = emission.saturating_mul(i64::try_from(quantity).unwrap_or(i64::MAX));
    let full = now.saturating_add(tolerance);
    let clamped = tat.is_some_and(|t| t > full);
    let current = tat.map_or(now, |t| t.min(full));
    let new_tat = current.max(now).saturating_add(increment);
    let diff = now - (new_tat - tolerance);
    let (limited, retry, ttl, stored) = if diff < 0 {
        let retry = if increment <= tolerance { -diff } else { -1 };
        (
            true,
            retry,
            current - now,
            if clamped { Some(current) } else { tat },
        )
    } else {
        (false, -1, new_tat - now, Some(new_tat))
    };
    let next = tolerance - ttl;
    let remaining = if next > 0 { next / emission } else { 0 };
    let throttle = Throttle {
        limited,
        limit: p.limit(),
        remaining: u64::try_from(remaining).unwrap_or(0),
        retry_after_us: retry,
        reset_after_us: ttl,
    };
    (throttle, stored)
}

/// The state of a key without spending anything: `remaining` and `reset`
/// as now, `limited` and `retry_after_us` for the next request.
pub fn peek(p: &Params, tat: Option<i64>, now: i64) -> Throttle {
    let (next, _) = decide(p, tat, now, 1);
    let (current, _) = decide(p, tat, now, 0);
    Throttle {
        limited: next.limited,
        retry_after_us: next.retry_after_us,
        ..current
    }
}

/// The node's clock in µs since the Unix epoch: the time of every decision,
/// in Redis and in the local fallback alike, so a TAT Redis returned means
/// the same in the local store. Decisions use the clock of the node making
/// them (nodes are expected to run NTP: a skew of δ shifts a client's
/// budget by δ, negligible against emission intervals of seconds).
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Params = Params {
        burst: 35,
        count: 36,
        period_secs: 360,
    };

    #[test]
    fn refills_one_per_emission_interval() {
        let mut tat = None;
        for _ in 0..36 {
            let (t, next) = decide(&P, tat, 0, 1);
            assert!(!t.limited);
            tat = next;
        }
        let (t, _) = decide(&P, tat, 0, 1);
        assert!(t.limited);
        assert_eq!(t.cl_throttle_reply(), [1, 36, 0, 10, 360]);
        assert_eq!(t.retry_after_secs(), 10);
        // Ten seconds later exactly one more is allowed.
        let (t, next) = decide(&P, tat, 10_000_000, 1);
        assert!(!t.limited);
        assert_eq!(t.remaining, 0);
        let (t, _) = decide(&P, next, 10_000_000, 1);
        assert!(t.limited);
    }

    #[test]
    fn a_raised_limit_applies_to_held_clients_at_once() {
        // Held under 36 per hour: the TAT is an hour ahead.
        let old = Params {
            burst: 35,
            count: 36,
            period_secs: 3600,
        };
        let mut tat = None;
        for _ in 0..36 {
            tat = decide(&old, tat, 0, 1).1;
        }
        assert!(decide(&old, tat, 0, 1).0.limited);
        // Raised to 3600 per hour (burst 35): full under the new limit, so
        // one new emission (1 s) away, not an hour.
        let new = Params {
            burst: 35,
            count: 3600,
            period_secs: 3600,
        };
        let (t, stored) = decide(&new, tat, 1_000_000, 1);
        assert!(t.limited);
        assert_eq!(t.retry_after_us, 1_000_000);
        assert_eq!(stored, Some(1_000_000 + 36_000_000), "the new bound is stored");
        let (t, _) = decide(&new, stored, 2_000_000, 1);
        assert!(!t.limited, "{t:?}");
    }

    #[test]
    fn an_expired_key_is_a_fresh_key() {
        let (fresh, _) = decide(&P, None, 5, 1);
        let (old, _) = decide(&P, Some(1), 5, 1);
        assert_eq!(fresh, old);
        assert_eq!(fresh.cl_throttle_reply(), [0, 36, 35, -1, 10]);
    }
}
