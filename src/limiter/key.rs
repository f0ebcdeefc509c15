//! The rate-limit key of a client, and its text in Redis keys and logs.

use std::net::IpAddr;

use ipnet::IpNet;

/// The rate-limit key of a client: an IPv4 address as is, an IPv6 address
/// by its first `ipv6_prefix` bits (a /64 is one subscriber; an attacker
/// holding one must not get 2^64 budgets). An IPv4-mapped IPv6 address
/// (`::ffff:192.0.2.1`, what a dual-stack `[::]` socket reports for an
/// IPv4 client) is its IPv4 address: each IPv4 client keeps a key of its
/// own rather than sharing `::/64` with every other.
///
/// ```
/// use diem::limiter::key::limit_key;
///
/// let a = limit_key("2001:db8:1:2:aaaa::1".parse().unwrap(), 64);
/// let b = limit_key("2001:db8:1:2:bbbb::9".parse().unwrap(), 64);
/// assert_eq!(a, b);
/// assert_eq!(a.to_string(), "2001:db8:1:2::/64");
/// assert_eq!(limit_key("192.0.2.1".parse().unwrap(), 64).to_string(), "192.0.2.1/32");
/// assert_eq!(limit_key("::ffff:192.0.2.1".parse().unwrap(), 64).to_string(), "192.0.2.1/32");
/// ```
pub fn limit_key(ip: IpAddr, ipv6_prefix: u8) -> IpNet {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpNet::from(IpAddr::V4(v4)),
        IpAddr::V6(v6) => ipnet::Ipv6Net::new(v6, ipv6_prefix.min(128))
            .map(|n| IpNet::V6(n.trunc()))
            .unwrap_or_else(|_| IpNet::from(IpAddr::V6(v6))),
    }
}

/// The text of a limit key: an address for a single address, `net/len`
/// for an IPv6 prefix (`192.0.2.1`, `2001:db8:1:2::/64`).
pub fn key_text(key: &IpNet) -> String {
    let mut text = String::with_capacity(KEY_TEXT_MAX);
    push_key_text(&mut text, key);
    text
}

/// The longest [`key_text`]: an IPv6 prefix of 127 bits, written out in
/// full with its length (`ffff:…:fffe/127`; a single address has no
/// `/len`).
pub const KEY_TEXT_MAX: usize = 43;

/// Appends [`key_text`] of `key` to `out` (a Redis key is built in one
/// allocation this way).
pub fn push_key_text(out: &mut String, key: &IpNet) {
    use std::fmt::Write as _;
    match key {
        // Every request's key with the limiter on: written by hand, since
        // `fmt` costs more than the rest of building the key.
        IpNet::V4(net) if net.prefix_len() == 32 => {
            for (i, octet) in net.addr().octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                if octet >= 100 {
                    out.push(char::from(b'0' + octet / 100));
                }
                if octet >= 10 {
                    out.push(char::from(b'0' + octet / 10 % 10));
                }
                out.push(char::from(b'0' + octet % 10));
            }
        }
        _ if key.prefix_len() == key.max_prefix_len() => {
            let _ = write!(out, "{}", key.addr());
        }
        _ => {
            let _ = write!(out, "{key}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_key_text_is_std_s_address_text() {
        for a in [
            "0.0.0.0",
            "255.255.255.255",
            "10.0.100.9",
            "192.0.2.1",
            "1.20.199.250",
        ] {
            let ip: IpAddr = a.parse().unwrap();
            assert_eq!(key_text(&limit_key(ip, 64)), a);
        }
    }

    proptest::proptest! {
        #[test]
        fn every_ipv4_key_is_written_as_std_writes_it(a: u32) {
            let ip = std::net::Ipv4Addr::from(a);
            proptest::prop_assert_eq!(key_text(&limit_key(IpAddr::V4(ip), 64)), ip.to_string());
        }
    }
}
