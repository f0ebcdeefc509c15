//! Who may use the admin listener, and how a browser proves it.
//!
//! * Bound to a loopback address, the listener is open to local users (as
//!   the control socket is to its uid); bound to any other address — a
//!   wildcard such as `0.0.0.0` included — every request needs the admin
//!   token: `Authorization: Bearer TOKEN`, or a session cookie from the
//!   login form (`diem_admin`, `HttpOnly`, `SameSite=Strict`, 12 h). Failed
//!   logins count against the client like the write API's (10 a minute,
//!   then 429).
//! * Whatever the address, a request that changes something (an action, a
//!   login) must carry `X-Diem-Csrf: 1` — a header a cross-site form cannot
//!   send and a cross-site script cannot send without a CORS preflight,
//!   which is never granted — and, when the browser names its `Origin`, come
//!   from this listener's own origin. On loopback the `Host` must be a
//!   loopback name, so that a DNS-rebinding page cannot reach it either.
//!
//! ```
//! use hyper::header::{HeaderMap, HeaderValue};
//! use diem::admin::access::same_origin;
//!
//! let mut h = HeaderMap::new();
//! h.insert("host", HeaderValue::from_static("127.0.0.1:8081"));
//! assert!(same_origin(&h));
//! h.insert("origin", HeaderValue::from_static("http://127.0.0.1:8081"));
//! assert!(same_origin(&h));
//! h.insert("origin", HeaderValue::from_static("https://evil.example"));
//! assert!(!same_origin(&h));
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hyper::header::{HeaderMap, COOKIE, HOST, ORIGIN};

use crate::api::auth::{bearer, same};

/// The session cookie's name.
pub const COOKIE_NAME: &str = "diem_admin";

/// How long a login lasts.
pub const SESSION: Duration = Duration::from_secs(12 * 3600);

/// The header every state-changing request carries.
pub const CSRF_HEADER: &str = "x-diem-csrf";

/// Most sessions kept at once (older ones are dropped first).
const MAX_SESSIONS: usize = 1_000;

/// The listener's access rules and its logged-in sessions.
#[derive(Debug)]
pub struct Access {
    open: bool,
    sessions: Mutex<HashMap<String, Instant>>,
}

impl Access {
    /// The rules for a listener bound to `addr`.
    pub fn for_addr(addr: SocketAddr) -> Self {
        Self {
            open: addr.ip().is_loopback(),
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the token is not asked for (a loopback bind).
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Whether the request is authenticated (or needs not be).
    pub fn admits(&self, token: &str, headers: &HeaderMap) -> bool {
        if self.open {
            return true;
        }
        if token.is_empty() {
            return false;
        }
        if bearer(headers).is_some_and(|b| same(b, token.as_bytes())) {
            return true;
        }
        match session_of(headers) {
            Some(id) => self
                .sessions
                .lock()
                .ok()
                .and_then(|s| s.get(id).copied())
                .is_some_and(|until| Instant::now() < until),
            None => false,
        }
    }

    /// Checks `offered` against `token`; on success a new session id.
    pub fn login(&self, token: &str, offered: &str) -> Option<String> {
        if token.is_empty() || !same(offered.as_bytes(), token.as_bytes()) {
            return None;
        }
        // Two v4 UUIDs: 244 random bits from the operating system.
        let id = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        if let Ok(mut sessions) = self.sessions.lock() {
            let now = Instant::now();
            sessions.retain(|_, until| *until > now);
            if sessions.len() >= MAX_SESSIONS {
                if let Some(oldest) = sessions.iter().min_by_key(|(_, u)| **u).map(|(k, _)| k.clone()) {
                    sessions.remove(&oldest);
                }
            }
            sessions.insert(id.clone(), now + SESSION);
        }
        Some(id)
    }

    /// Ends the session the request carries.
    pub fn logout(&self, headers: &HeaderMap) {
        if let (Some(id), Ok(mut sessions)) = (session_of(headers), self.sessions.lock()) {
            sessions.remove(id);
        }
    }

    /// Whether `Host` is acceptable: on loopback, a loopback name only.
    pub fn host_allowed(&self, headers: &HeaderMap) -> bool {
        if !self.open {
            return true;
        }
        let Some(host) = headers.get(HOST).and_then(|h| h.to_str().ok()) else {
            return false;
        };
        let name = match host.rsplit_once(':') {
            Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
            _ => host,
        };
        let name = name.trim_start_matches('[').trim_end_matches(']');
        name.eq_ignore_ascii_case("localhost")
            || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

/// The session id of the request's cookie, if any.
fn session_of(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value)
}

/// Whether the request comes from this listener's own origin: no
/// `Origin` (not a cross-site browser request) or `http://<Host>`.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    let host = headers.get(HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    !host.is_empty() && (origin == format!("http://{host}") || origin == format!("https://{host}"))
}

/// Whether a state-changing request carries the CSRF defence.
pub fn csrf_ok(headers: &HeaderMap) -> bool {
    headers.get(CSRF_HEADER).is_some_and(|v| v.as_bytes() == b"1") && same_origin(headers)
}
