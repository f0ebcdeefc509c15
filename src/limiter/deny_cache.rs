//! An exact local cache of Redis's refusals.
//!
//! GCRA never moves a key's theoretical arrival time (TAT) when it refuses,
//! and nobody's allowed request can move it before the refused client's
//! retry time (Redis would refuse those too). So once Redis has refused a
//! client whose key holds TAT `t`, every request of that client before
//! `t + emission − tolerance` (its retry time) is refused, on every node,
//! with headers computed from that same `t`: the node answers them from
//! here, exactly as Redis would, without a round trip — Envoy's rate-limit
//! service keeps the same kind of over-limit cache. Abusive clients, the
//! ones the limiter exists for, then cost a hash lookup.
//!
//! What could make an entry wrong is dropped with it: `ctl limiter reset`
//! forgets the client here too (on every member, with the cluster), and a
//! change of the limit clears the cache ([`DenyCache::clear`]). Entries
//! expire by themselves at the retry time; memory is bounded (64 shards of
//! at most `max_keys / 64` entries, swept with the local store; a full
//! shard caches nothing more, which only costs round trips).
//!
//! ```
//! use diem::limiter::deny_cache::DenyCache;
//! use diem::limiter::gcra::{decide, Params};
//!
//! let p = Params { burst: 0, count: 1, period_secs: 10 };
//! let cache = DenyCache::new(1_000);
//! let ip = "192.0.2.7/32".parse().unwrap();
//! // Redis allowed one request at t = 0 (TAT 10 s) and refused the next.
//! let (_, tat) = decide(&p, None, 0, 1);
//! let (refused, _) = decide(&p, tat, 1_000_000, 1);
//! assert!(refused.limited);
//! cache.refused(ip, tat.unwrap(), 1_000_000, &refused);
//! // Until the retry time, the cache answers exactly as Redis would.
//! assert_eq!(cache.check(&ip, &p, 4_000_000), Some(decide(&p, tat, 4_000_000, 1).0));
//! assert_eq!(cache.check(&ip, &p, 10_000_000), None); // then it is Redis's again
//! ```

use ipnet::IpNet;

use crate::limiter::gcra::{decide, Params, Throttle};
use crate::limiter::shards::Shards;

/// A refused key: its TAT and until when it stays refused (µs, the
/// deciding node's clock, as the TATs in Redis).
#[derive(Clone, Copy, Debug)]
struct Refused {
    tat: i64,
    until: i64,
}

/// The cache.
#[derive(Debug)]
pub struct DenyCache {
    shards: Shards<Refused>,
}

impl DenyCache {
    /// A cache of at most about `max_keys` refused clients.
    pub fn new(max_keys: usize) -> Self {
        Self {
            shards: Shards::new(max_keys),
        }
    }

    /// Redis's answer for `key` at `now`, if Redis refused it before and
    /// its retry time has not come: the same decision Redis would make.
    pub fn check(&self, key: &IpNet, params: &Params, now: i64) -> Option<Throttle> {
        let (key, shard) = self.shards.of(*key);
        let mut shard = shard.lock().ok()?;
        let entry = *shard.get(&key)?;
        if now >= entry.until {
            shard.remove(&key);
            return None;
        }
        drop(shard);
        let (throttle, _) = decide(params, Some(entry.tat), now, 1);
        // With the parameters the entry was made under this is always a
        // refusal; anything else means the entry no longer applies.
        throttle.limited.then_some(throttle)
    }

    /// Records that Redis refused `key` at `now` (µs), its key holding `tat`.
    pub fn refused(&self, key: IpNet, tat: i64, now: i64, throttle: &Throttle) {
        if !throttle.limited || throttle.retry_after_us <= 0 {
            return;
        }
        let until = now.saturating_add(throttle.retry_after_us);
        let (key, shard) = self.shards.of(key);
        let Ok(mut shard) = shard.lock() else {
            return;
        };
        self.shards
            .keep(&mut shard, key, Refused { tat, until }, |e| e.until > now);
    }

    /// Forgets `key` (its limit was reset).
    pub fn forget(&self, key: &IpNet) {
        let (key, shard) = self.shards.of(*key);
        if let Ok(mut shard) = shard.lock() {
            shard.remove(&key);
        }
    }

    /// Forgets everything (the limit changed).
    pub fn clear(&self) {
        for shard in self.shards.all() {
            if let Ok(mut s) = shard.lock() {
                s.clear();
            }
        }
    }

    /// Drops the entries whose retry time has come (`now` in µs).
    pub fn sweep(&self, now: i64) {
        for shard in self.shards.all() {
            if let Ok(mut s) = shard.lock() {
                s.retain(|_, e| e.until > now);
            }
        }
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.shards.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
