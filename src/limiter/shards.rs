//! A map of limit keys split into 64 shards, each behind a lock held for
//! one lookup, so that two requests contend only when their keys share a
//! shard; the shape of the local store and of the deny cache. A key is
//! hashed once per lookup ([`Hashed`]): the hash picks its shard and its
//! place in the shard's map.
//!
//! ```
//! use diem::limiter::shards::Shards;
//!
//! let shards: Shards<u32> = Shards::new(640);
//! let key: ipnet::IpNet = "192.0.2.1/32".parse().unwrap();
//! let (hashed, shard) = shards.of(key);
//! shard.lock().unwrap().insert(hashed, 7);
//! assert_eq!(shards.len(), 1);
//! ```

use std::collections::HashMap;
use std::sync::Mutex;

use ipnet::IpNet;

use crate::limiter::key_hash::{Hashed, KeyHashState, PassThrough};

/// How many shards.
const SHARDS: usize = 64;

/// One shard: keys and their values.
pub type Shard<V> = HashMap<Hashed, V, PassThrough>;

/// The shards, and the keyed hash that places keys in them.
#[derive(Debug)]
pub struct Shards<V> {
    shards: Vec<Mutex<Shard<V>>>,
    hasher: KeyHashState,
    per_shard: usize,
}

impl<V> Shards<V> {
    /// Shards for about `max_keys` keys in all.
    pub fn new(max_keys: usize) -> Self {
        Self {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(HashMap::with_hasher(PassThrough)))
                .collect(),
            hasher: KeyHashState::new(),
            per_shard: (max_keys / SHARDS).max(1),
        }
    }

    /// `key` hashed, and its shard.
    pub fn of(&self, key: IpNet) -> (Hashed, &Mutex<Shard<V>>) {
        let key = Hashed::new(key, &self.hasher);
        (key, &self.shards[key.shard(SHARDS)])
    }

    /// Keeps `value` for `key` in `shard` (one of these, locked), bounded:
    /// a full shard first drops the entries that are no longer `live`; if
    /// it is still full, a new key is not kept (decided next time as an
    /// unknown client).
    pub fn keep(&self, shard: &mut Shard<V>, key: Hashed, value: V, mut live: impl FnMut(&V) -> bool) {
        if shard.len() >= self.per_shard && !shard.contains_key(&key) {
            shard.retain(|_, v| live(v));
            if shard.len() >= self.per_shard {
                return;
            }
        }
        shard.insert(key, value);
    }

    /// Every shard.
    pub fn all(&self) -> impl Iterator<Item = &Mutex<Shard<V>>> {
        self.shards.iter()
    }

    /// Keys held now.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().map_or(0, |s| s.len())).sum()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
