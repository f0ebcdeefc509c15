//! The hash of limit keys in the limiter's own maps (the local store, the
//! deny cache): SipHash-1-3 under a random key, as std's `RandomState` —
//! a client choosing its addresses cannot aim them at one bucket — but fed
//! the key in one write.
//!
//! `IpNet`'s derived `Hash` writes three small pieces (the variant, the
//! address, the prefix length), and each write into std's SipHasher is a
//! call with its own buffering: ~190 instructions per hash, and a request
//! decided by Redis hashed its key five to six times (the deny cache's
//! shard and map, the local store's shard and map where the TAT Redis
//! answered is kept, the map growing): ~1,100 instructions of a ~27,000
//! instruction request (docs/benchmarks.md). Here the pieces are gathered
//! in a buffer and hashed once when the hash is asked for.
//!
//! ```
//! use std::hash::BuildHasher;
//! use diem::limiter::key_hash::KeyHashState;
//!
//! let state = KeyHashState::new();
//! let key: ipnet::IpNet = "192.0.2.1/32".parse().unwrap();
//! assert_eq!(state.hash_one(key), state.hash_one(key));
//! let other: ipnet::IpNet = "192.0.2.2/32".parse().unwrap();
//! assert_ne!(state.hash_one(key), state.hash_one(other));
//! ```

use std::hash::{BuildHasher, DefaultHasher, Hasher, RandomState};

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

#[cfg(test)]
mod tests;
