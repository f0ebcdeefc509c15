//! The in-process limiter used while Redis is unreachable: the same GCRA
//! with the same parameters, its TATs in memory.
//!
//! Keys live in 64 shards, each a `Mutex<HashMap>` held only for one
//! decision, so two requests contend only when their addresses hash to the
//! same shard. Memory is bounded: [`LocalStore::sweep`] (run by the limiter
//! actor every few seconds) drops keys whose TAT has passed — a key in
//! that state decides exactly like an unknown one — and a full shard sweeps
//! itself before taking a new key; if it is still full the request is
//! decided as for a new client and not remembered.
//!
//! ```
//! use ipnet::IpNet;
//! use diem::limiter::gcra::Params;
//! use diem::limiter::local::LocalStore;
//!
//! let store = LocalStore::new(1_000);
//! let p = Params { burst: 1, count: 1, period_secs: 60 };
//! let ip: IpNet = "192.0.2.1/32".parse().unwrap();
//! assert!(!store.check(ip, &p).limited);
//! assert!(!store.check(ip, &p).limited);
//! assert!(store.check(ip, &p).limited); // burst + 1 = 2 allowed at once
//! ```

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::Instant;

use ipnet::IpNet;

use crate::limiter::gcra::{decide, peek, Params, Throttle};

const SHARDS: usize = 64;

/// The local GCRA store.
#[derive(Debug)]
pub struct LocalStore {
    shards: Vec<Mutex<HashMap<IpNet, i64>>>,
    hasher: RandomState,
    per_shard: usize,
    epoch: Instant,
}

impl LocalStore {
    /// A store remembering at most about `max_keys` clients.
    pub fn new(max_keys: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            per_shard: (max_keys / SHARDS).max(1),
            epoch: Instant::now(),
        }
    }

    fn now_us(&self) -> i64 {
        i64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(i64::MAX)
    }

    fn shard(&self, ip: &IpNet) -> &Mutex<HashMap<IpNet, i64>> {
        &self.shards[(self.hasher.hash_one(ip) as usize) % SHARDS]
    }

    /// The state of `ip`'s key, spending nothing.
    pub fn peek(&self, ip: IpNet, params: &Params) -> Throttle {
        let now = self.now_us();
        let tat = self
            .shard(&ip)
            .lock()
            .ok()
            .and_then(|s| s.get(&ip).copied())
            .filter(|&t| t > now);
        peek(params, tat, now)
    }

    /// Forgets `ip`'s key.
    pub fn forget(&self, ip: &IpNet) {
        if let Ok(mut shard) = self.shard(ip).lock() {
            shard.remove(ip);
        }
    }

    /// Decides one request from `ip`.
    pub fn check(&self, ip: IpNet, params: &Params) -> Throttle {
        let now = self.now_us();
        let Ok(mut shard) = self.shard(&ip).lock() else {
            // A poisoned shard only means a panic elsewhere mid-update of a
            // plain map of integers: decide as for a new client.
            return decide(params, None, now, 1).0;
        };
        let tat = shard.get(&ip).copied().filter(|&t| t > now);
        let (throttle, stored) = decide(params, tat, now, 1);
        if let Some(new_tat) = stored {
            if shard.len() >= self.per_shard && !shard.contains_key(&ip) {
                shard.retain(|_, t| *t > now);
            }
            if shard.len() < self.per_shard || shard.contains_key(&ip) {
                shard.insert(ip, new_tat);
            }
        }
        throttle
    }

    /// Forgets keys whose TAT has passed. Returns how many remain.
    pub fn sweep(&self) -> usize {
        let now = self.now_us();
        self.shards
            .iter()
            .filter_map(|s| s.lock().ok())
            .map(|mut s| {
                s.retain(|_, t| *t > now);
                s.len()
            })
            .sum()
    }

    /// Keys remembered now.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .filter_map(|s| s.lock().ok())
            .map(|s| s.len())
            .sum()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_stays_bounded() {
        let store = LocalStore::new(640);
        let p = Params {
            burst: 0,
            count: 1,
            period_secs: 3600,
        };
        for i in 0..10_000u32 {
            store.check(IpNet::from(std::net::IpAddr::from(i.to_be_bytes())), &p);
        }
        assert!(store.len() <= 640, "{}", store.len());
    }

    #[test]
    fn sweep_forgets_expired_keys() {
        let store = LocalStore::new(100);
        let p = Params {
            burst: 0,
            count: 1_000_000,
            period_secs: 1,
        };
        store.check("192.0.2.1/32".parse().unwrap(), &p);
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert_eq!(store.sweep(), 0);
    }
}
