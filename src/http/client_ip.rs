//! Who the client is.
//!
//! The peer address, unless the peer is a trusted proxy
//! (`limiter.trusted_proxies`): then the first address of the first
//! `X-Forwarded-For` header, if it is a valid address. IPv4-mapped IPv6
//! addresses are written as IPv4, so one client has one key.
//!
//! ```
//! use hyper::header::{HeaderMap, HeaderValue};
//! use diem::http::client_ip::client_ip;
//!
//! let mut h = HeaderMap::new();
//! h.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.7, 10.0.0.2"));
//! let proxy = "10.0.0.1".parse().unwrap();
//! let trusted = vec!["10.0.0.0/8".parse().unwrap()];
//! assert_eq!(client_ip(proxy, &h, &trusted).to_string(), "203.0.113.7");
//! // An untrusted peer cannot choose its key.
//! assert_eq!(client_ip("192.0.2.9".parse().unwrap(), &h, &trusted).to_string(), "192.0.2.9");
//! ```

use std::net::IpAddr;

use hyper::header::HeaderMap;
use ipnet::IpNet;

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The client's address for rate limiting and logs.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = canonical(peer);
    if trusted.is_empty() || !trusted.iter().any(|net| net.contains(&peer)) {
        return peer;
    }
    headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .and_then(|first| first.trim().parse::<IpAddr>().ok())
        .map_or(peer, canonical)
}
