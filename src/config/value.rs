//! What the sections' checks share: list values, the bounds of secrets,
//! the shapes of addresses and identifiers. A leaf: it imports nothing of
//! the sections nor of `config.rs`.

use serde::{Deserialize, Deserializer};

use super::error::ConfigError;

/// The shortest admin token accepted: a guessable token is refused at start.
pub const MIN_TOKEN_BYTES: usize = 16;

/// A list, or (as the environment gives it) a comma-separated string;
/// items trimmed, empty ones dropped.
pub(crate) fn string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        List(Vec<String>),
        Csv(String),
    }
    let items = match Raw::deserialize(d)? {
        Raw::List(v) => v,
        Raw::Csv(s) => s.split(',').map(str::to_owned).collect(),
    };
    Ok(items
        .iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect())
}

/// A value out of range.
pub(crate) fn invalid(key: &'static str, expected: &str) -> Result<(), ConfigError> {
    Err(ConfigError::Invalid {
        key,
        expected: expected.to_owned(),
    })
}

/// `host:port` with a name, an IPv4 address or a bracketed IPv6 address
/// (a bare `::1` is a host, not an address with a port).
///
/// ```
/// use diem::config::is_host_port;
/// assert!(is_host_port("db.example:5432") && is_host_port("[::1]:4369"));
/// assert!(!is_host_port("::1") && !is_host_port("host:0"));
/// ```
pub fn is_host_port(s: &str) -> bool {
    s.parse::<std::net::SocketAddr>().is_ok()
        || s.rsplit_once(':').is_some_and(|(h, p)| {
            !h.is_empty()
                && !h.contains([':', '[', ']', '/', ' ', '@'])
                && p.parse::<u16>().is_ok_and(|p| p > 0)
        })
}

/// Whether `s` is a plain SQL identifier we can interpolate unquoted.
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && s.len() <= 48
}
