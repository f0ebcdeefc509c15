use std::hash::{BuildHasher, Hasher};

use super::*;

/// The same bytes give the same hash however they are split into writes,
/// long inputs included (what SipHash of the whole would give).
#[test]
fn the_hash_is_of_the_bytes_not_of_the_writes() {
    let state = KeyHashState::new();
    let bytes: Vec<u8> = (0u8..100).collect();
    let whole = {
        let mut h = state.build_hasher();
        h.write(&bytes);
        h.finish()
    };
    for split in [1, 3, 8, 25, 31, 32, 33, 64] {
        let mut h = state.build_hasher();
        for piece in bytes.chunks(split) {
            h.write(piece);
        }
        assert_eq!(h.finish(), whole, "pieces of {split}");
    }
    let mut sip = state.0.build_hasher();
    sip.write(&bytes);
    assert_eq!(sip.finish(), whole, "SipHash of the whole");
}

#[test]
fn each_state_has_a_key_of_its_own() {
    let key: ipnet::IpNet = "2001:db8::/64".parse().unwrap();
    let (a, b) = (KeyHashState::new(), KeyHashState::new());
    assert_ne!(a.hash_one(key), b.hash_one(key));
}

/// A map keyed by `Hashed` finds every key it holds, and only those, as it
/// grows (its keys moved by the hash they carry).
#[test]
fn a_pass_through_map_finds_its_keys() {
    let state = KeyHashState::new();
    let mut map = std::collections::HashMap::with_hasher(PassThrough);
    let key = |i: u32| {
        Hashed::new(
            ipnet::IpNet::from(std::net::IpAddr::from(i.to_be_bytes())),
            &state,
        )
    };
    for i in 0..10_000u32 {
        map.insert(key(i), i);
    }
    assert!((0..10_000u32).all(|i| map.get(&key(i)) == Some(&i)));
    assert_eq!(map.get(&key(10_001)), None);
    let mut shards = [0usize; 64];
    for i in 0..10_000u32 {
        shards[key(i).shard(64)] += 1;
    }
    assert!(
        shards.iter().all(|&n| n > 80),
        "spread over the shards: {shards:?}"
    );
}
