//! Who the client is.
//!
//! The peer address, unless the peer is a trusted proxy
//! (`limiter.trusted_proxies`): then the forwarding header is walked **from
//! the right** — each proxy appends the address it received the request
//! from — skipping trusted proxies, and the first address that is not one
//! is the client (nginx's `real_ip_recursive on`, Envoy's
//! `xff_num_trusted_hops`). Whatever a client writes at the left of the
//! header is never believed. The header is `X-Forwarded-For`, or RFC 7239's
//! `Forwarded: for=…` with `limiter.client_header = "forwarded"`. A header
//! that is missing or malformed where it matters means the last trusted
//! proxy's own address — never an error. IPv4-mapped IPv6 addresses are
//! written as IPv4, so one client has one key.
//!
//! ```
//! use hyper::header::{HeaderMap, HeaderValue};
//! use diem::config::ClientHeader;
//! use diem::http::client_ip::client_ip;
//!
//! let proxy = "127.0.0.1".parse().unwrap();
//! let trusted = vec!["127.0.0.1/32".parse().unwrap()];
//! let mut h = HeaderMap::new();
//! // nginx's $proxy_add_x_forwarded_for after a client forged the first entry:
//! h.insert("x-forwarded-for", HeaderValue::from_static("198.51.100.7, 203.0.113.9"));
//! let xff = ClientHeader::XForwardedFor;
//! assert_eq!(client_ip(proxy, &h, &trusted, xff).to_string(), "203.0.113.9");
//! // An untrusted peer cannot choose its key.
//! assert_eq!(client_ip("192.0.2.9".parse().unwrap(), &h, &trusted, xff).to_string(), "192.0.2.9");
//! // Garbage from a trusted proxy: the proxy itself.
//! h.insert("x-forwarded-for", HeaderValue::from_static("not an address"));
//! assert_eq!(client_ip(proxy, &h, &trusted, xff).to_string(), "127.0.0.1");
//! // RFC 7239.
//! h.insert("forwarded", HeaderValue::from_static("for=192.0.2.60;proto=http, for=\"[2001:db8::1]:4711\""));
//! assert_eq!(client_ip(proxy, &h, &trusted, ClientHeader::Forwarded).to_string(), "2001:db8::1");
//! ```

use std::net::{IpAddr, SocketAddr};

use hyper::header::{HeaderMap, HeaderName, FORWARDED};
use ipnet::IpNet;

use crate::config::ClientHeader;

/// `X-Forwarded-For` (not among `http`'s standard names).
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn trusted_peer(ip: IpAddr, trusted: &[IpNet]) -> bool {
    trusted.iter().any(|net| net.contains(&ip))
}

/// One `X-Forwarded-For` element: an address, perhaps with a port.
fn xff_element(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    s.parse::<IpAddr>()
        .ok()
        .or_else(|| s.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

/// The `for=` node of one RFC 7239 element: `192.0.2.60`,
/// `"[2001:db8::1]:4711"`, `"192.0.2.60:80"`; `unknown` and obfuscated
/// identifiers are not addresses.
fn forwarded_element(element: &str) -> Option<IpAddr> {
    let node = element.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        k.trim().eq_ignore_ascii_case("for").then_some(v.trim())
    })?;
    let node = node.trim_matches('"');
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    node.parse::<IpAddr>()
        .ok()
        .or_else(|| node.parse::<SocketAddr>().ok().map(|a| a.ip()))
}

/// The client's address for rate limiting and logs.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet], header: ClientHeader) -> IpAddr {
    let peer = canonical(peer);
    if !trusted_peer(peer, trusted) {
        return peer;
    }
    let (name, parse): (HeaderName, fn(&str) -> Option<IpAddr>) = match header {
        ClientHeader::XForwardedFor => (X_FORWARDED_FOR, xff_element),
        ClientHeader::Forwarded => (FORWARDED, forwarded_element),
    };
    let lines = headers.get_all(&name);
    if lines.iter().any(|value| value.to_str().is_err()) {
        return peer;
    }
    // Several header lines are one list, in order: walked from the last
    // element of the last line (no list is built).
    let elements = lines
        .iter()
        .rev()
        .flat_map(|value| value.to_str().unwrap_or_default().rsplit(','));
    let mut client = peer;
    for element in elements {
        match parse(element) {
            Some(ip) => {
                client = canonical(ip);
                if !trusted_peer(client, trusted) {
                    return client;
                }
            }
            // Malformed where a trusted proxy wrote: stop at the last
            // address known to be a trusted proxy's.
            None => return client,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn ip(xff: &[&str], trusted: &[&str]) -> String {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        let trusted: Vec<IpNet> = trusted
            .iter()
            .map(|t| {
                t.parse()
                    .or_else(|_| t.parse::<IpAddr>().map(IpNet::from))
                    .unwrap()
            })
            .collect();
        client_ip(
            "10.0.0.1".parse().unwrap(),
            &h,
            &trusted,
            ClientHeader::XForwardedFor,
        )
        .to_string()
    }

    #[test]
    fn rightmost_untrusted_wins() {
        assert_eq!(ip(&["198.51.100.1, 203.0.113.9"], &["10.0.0.1"]), "203.0.113.9");
        assert_eq!(
            ip(&["198.51.100.1, 203.0.113.9, 10.0.0.2"], &["10.0.0.0/8"]),
            "203.0.113.9"
        );
        assert_eq!(ip(&["198.51.100.1", "203.0.113.9"], &["10.0.0.1"]), "203.0.113.9");
        assert_eq!(
            ip(&["10.0.0.3, 10.0.0.2"], &["10.0.0.0/8"]),
            "10.0.0.3",
            "all trusted: the leftmost"
        );
        assert_eq!(ip(&[], &["10.0.0.1"]), "10.0.0.1", "no header: the proxy");
        assert_eq!(ip(&["203.0.113.9:5555"], &["10.0.0.1"]), "203.0.113.9");
        assert_eq!(ip(&["::ffff:203.0.113.9"], &["10.0.0.1"]), "203.0.113.9");
    }

    #[test]
    fn malformed_means_the_last_trusted_hop() {
        assert_eq!(ip(&["junk"], &["10.0.0.1"]), "10.0.0.1");
        assert_eq!(ip(&["203.0.113.9, junk"], &["10.0.0.1"]), "10.0.0.1");
        assert_eq!(ip(&["junk, 10.0.0.2"], &["10.0.0.0/8"]), "10.0.0.2");
        assert_eq!(ip(&[""], &["10.0.0.1"]), "10.0.0.1");
    }

    #[test]
    fn a_line_that_is_not_text_means_the_proxy() {
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", HeaderValue::from_static("203.0.113.9"));
        h.append(
            "x-forwarded-for",
            HeaderValue::from_bytes(b"198.51.100.\xff").unwrap(),
        );
        let trusted = ["10.0.0.1/32".parse().unwrap()];
        let peer = "10.0.0.1".parse().unwrap();
        assert_eq!(client_ip(peer, &h, &trusted, ClientHeader::XForwardedFor), peer);
    }

    #[test]
    fn forwarded_elements() {
        assert_eq!(forwarded_element("for=192.0.2.43"), "192.0.2.43".parse().ok());
        assert_eq!(
            forwarded_element("proto=https;For=\"[2001:db8:cafe::17]:4711\""),
            "2001:db8:cafe::17".parse().ok()
        );
        assert_eq!(forwarded_element("for=unknown"), None);
        assert_eq!(forwarded_element("for=_hidden"), None);
        assert_eq!(forwarded_element("by=192.0.2.1"), None);
    }
}
