//! The in-process limiter used while Redis is unreachable: the same GCRA
//! with the same parameters, its TATs in memory, on the same clock as
//! Redis's decisions ([`now_us`]). While Redis decides, every decision's TAT
//! is remembered here too ([`LocalStore::remember`]), so a switch to local
//! decisions continues from what Redis last said about each client instead
//! of handing out a fresh budget.
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

use ipnet::IpNet;

use crate::limiter::gcra::{decide, now_us, peek, Params, Throttle};
use crate::limiter::shards::Shards;

/// A client's TAT, and whether a local decision moved it since Redis last
/// heard of it (to be written back when Redis decides again).
#[derive(Clone, Copy, Debug)]
struct Entry {
    tat: i64,
    local: bool,
}

/// The local GCRA store.
#[derive(Debug)]
pub struct LocalStore {
    shards: Shards<Entry>,
}

impl LocalStore {
    /// A store remembering at most about `max_keys` clients.
    pub fn new(max_keys: usize) -> Self {
        Self {
            shards: Shards::new(max_keys),
        }
    }

    /// The state of `ip`'s key, spending nothing.
    pub fn peek(&self, ip: IpNet, params: &Params) -> Throttle {
        let now = now_us();
        let (key, shard) = self.shards.of(ip);
        let tat = shard
            .lock()
            .ok()
            .and_then(|s| s.get(&key).map(|e| e.tat))
            .filter(|&t| t > now);
        peek(params, tat, now)
    }

    /// Forgets `ip`'s key.
    pub fn forget(&self, ip: &IpNet) {
        let (key, shard) = self.shards.of(*ip);
        if let Ok(mut shard) = shard.lock() {
            shard.remove(&key);
        }
    }

    /// Decides one request from `ip`.
    pub fn check(&self, ip: IpNet, params: &Params) -> Throttle {
        self.check_costing(ip, params, 1)
    }

    /// Decides one request from `ip` that costs `cost` emission intervals
    /// (a node's share of a fleet deciding locally: `limiter.fleet_size`).
    pub fn check_costing(&self, ip: IpNet, params: &Params, cost: u64) -> Throttle {
        let now = now_us();
        let (key, shard) = self.shards.of(ip);
        let Ok(mut shard) = shard.lock() else {
            // A poisoned shard only means a panic elsewhere mid-update of a
            // plain map of integers: decide as for a new client.
            return decide(params, None, now, cost).0;
        };
        let tat = shard.get(&key).map(|e| e.tat).filter(|&t| t > now);
        let (throttle, stored) = decide(params, tat, now, cost);
        if let Some(new_tat) = stored {
            self.shards.keep(
                &mut shard,
                key,
                Entry {
                    tat: new_tat,
                    local: true,
                },
                |e| e.tat > now,
            );
        }
        throttle
    }

    /// Remembers `tat` (µs, [`now_us`]'s clock) as `ip`'s TAT, as Redis
    /// decided at `now`: where a local decision continues from. Bounded as
    /// [`LocalStore::check`] (a full shard sweeps itself; if still full,
    /// the key is not remembered). A TAT already past is forgotten.
    pub fn remember(&self, ip: IpNet, tat: i64, now: i64) {
        let (key, shard) = self.shards.of(ip);
        let Ok(mut shard) = shard.lock() else {
            return;
        };
        if tat <= now {
            shard.remove(&key);
            return;
        }
        self.shards
            .keep(&mut shard, key, Entry { tat, local: false }, |e| e.tat > now);
    }

    /// The clients whose TAT a local decision moved since Redis last
    /// decided for them, with that TAT (still ahead of now): what Redis must
    /// hear before it decides again, or it would hand out the budget they
    /// spent meanwhile. They count as told from now on.
    pub fn take_local(&self) -> Vec<(IpNet, i64)> {
        let now = now_us();
        let mut out = Vec::new();
        for shard in self.shards.all() {
            let Ok(mut shard) = shard.lock() else { continue };
            for (key, e) in shard.iter_mut() {
                if e.local && e.tat > now {
                    out.push((key.key, e.tat));
                }
                e.local = false;
            }
        }
        out
    }

    /// Forgets keys whose TAT has passed. Returns how many remain.
    pub fn sweep(&self) -> usize {
        let now = now_us();
        self.shards
            .all()
            .filter_map(|s| s.lock().ok())
            .map(|mut s| {
                s.retain(|_, e| e.tat > now);
                s.len()
            })
            .sum()
    }

    /// Keys remembered now.
    pub fn len(&self) -> usize {
        self.shards.len()
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
