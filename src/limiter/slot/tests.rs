//! Unit tests of [`slot`](super): the hash against redis-protocol's.

use super::slot;

#[test]
fn slots_are_redis_s() {
    let mut keys: Vec<String> = (0..2_000)
        .map(|i| format!("diem:rl:198.51.{}.{}", i / 250, i % 250))
        .collect();
    keys.extend(
        [
            "", "{", "}", "{}", "{}x", "a{b}c", "a{}b{c}", "{a}{b}", "x{y", "é{ü}",
        ]
        .map(String::from),
    );
    for key in keys {
        assert_eq!(slot(&key), fred::util::redis_keyslot(key.as_bytes()), "{key:?}");
    }
}
