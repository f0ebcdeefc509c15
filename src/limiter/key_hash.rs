//! The hash of limit keys in the limiter's own maps (the local store, the
//! deny cache): SipHash-1-3 under a random key, as std's `RandomState` —
//! a client choosing its addresses cannot aim them at one bucket — computed
//! once per lookup and fed the key in one write.
//!
//! Each map is split into shards (a lock each); a key's shard and its
//! place in the shard's map both come from one hash ([`Hashed`]), which
//! the map keeps beside the key, so that a growing map moves its keys
//! without hashing them again ([`PassThrough`]). Before, a request decided
//! by Redis hashed its key five to six times (the deny cache's shard and
//! map, the local store's shard and map where the TAT Redis answered is
//! kept, the map growing), each time through `IpNet`'s derived `Hash`,
//! three small writes into std's SipHasher at ~190 instructions a hash:
//! ~1,100 instructions of a ~27,000-instruction request
//! (docs/benchmarks.md). Now it is two hashes, of one write each.
//!
//! ```
//! use diem::limiter::key_hash::{Hashed, KeyHashState};
//!
//! let state = KeyHashState::new();
//! let key: ipnet::IpNet = "192.0.2.1/32".parse().unwrap();
//! assert_eq!(Hashed::new(key, &state), Hashed::new(key, &state));
//! let other: ipnet::IpNet = "192.0.2.2/32".parse().unwrap();
//! assert_ne!(Hashed::new(key, &state), Hashed::new(other, &state));
//! assert!(Hashed::new(key, &state).shard(64) < 64);
//! ```

use std::hash::{BuildHasher, DefaultHasher, Hash, Hasher, RandomState};

use ipnet::IpNet;

/// Bytes gathered before they are hashed: an IPv6 key is 25 (the variant's
/// 8, the address's 16, the prefix length's 1).
const GATHERED: usize = 32;

/// Builds [`KeyHasher`]s under one random key (each `new` draws another,
/// as `RandomState::new`).
#[derive(Clone, Debug, Default)]
pub struct KeyHashState(RandomState);

impl KeyHashState {
    /// A state with a key of its own.
    pub fn new() -> Self {
        Self(RandomState::new())
    }
}

impl BuildHasher for KeyHashState {
    type Hasher = KeyHasher;

    fn build_hasher(&self) -> KeyHasher {
        KeyHasher {
            sip: self.0.build_hasher(),
            gathered: [0; GATHERED],
            len: 0,
        }
    }
}

/// SipHash-1-3 of everything written, the writes gathered first.
#[derive(Clone, Debug)]
pub struct KeyHasher {
    sip: DefaultHasher,
    gathered: [u8; GATHERED],
    len: usize,
}

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        if self.len + bytes.len() > GATHERED {
            // More than a key: what was gathered goes to the hash first,
            // so the order of the bytes is kept.
            self.sip.write(&self.gathered[..self.len]);
            self.len = 0;
            if bytes.len() > GATHERED {
                self.sip.write(bytes);
                return;
            }
        }
        self.gathered[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    fn finish(&self) -> u64 {
        let mut sip = self.sip.clone();
        sip.write(&self.gathered[..self.len]);
        sip.finish()
    }
}

/// A limit key and its hash under one store's [`KeyHashState`]: the key of
/// that store's maps (with [`PassThrough`]), and of its shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hashed {
    /// The key.
    pub key: IpNet,
    hash: u64,
}

impl Hashed {
    /// `key` hashed under `state`.
    pub fn new(key: IpNet, state: &KeyHashState) -> Self {
        Self {
            key,
            hash: state.hash_one(key),
        }
    }

    /// Which of `shards` shards it lives in: from the hash's middle bits,
    /// which a map of fewer than 2^32 buckets does not use (it places a key
    /// by the low bits and tags it with the top seven).
    pub fn shard(&self, shards: usize) -> usize {
        usize::try_from(self.hash >> 32).unwrap_or(0) % shards.max(1)
    }
}

impl Hash for Hashed {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// Builds the hashers of a map keyed by [`Hashed`]: each passes the hash
/// the key carries through.
#[derive(Clone, Copy, Debug, Default)]
pub struct PassThrough;

impl BuildHasher for PassThrough {
    type Hasher = PassThroughHasher;

    fn build_hasher(&self) -> PassThroughHasher {
        PassThroughHasher(0)
    }
}

/// The hash a [`Hashed`] key carries.
#[derive(Clone, Copy, Debug)]
pub struct PassThroughHasher(u64);

impl Hasher for PassThroughHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is expected; anything else is still a hash.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests;
