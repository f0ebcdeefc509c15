//! The admin token of the write API: `Authorization: Bearer <admin.token>`.
//!
//! Checked by the connection **before the body is read**, so a client
//! without the token cannot hold a connection open for the body timeout.
//! The scheme is case-insensitive (RFC 7235); the token is compared in
//! constant time. Failed attempts are throttled per client address: after
//! [`FAILURES_PER_MINUTE`] in a minute, the client's write requests get 429
//! — even with the right token — until its budget refills, so the token
//! cannot be guessed at request rate.
//!
//! The same [`Guard`] counts every failed token check of the node — the
//! write API, the admin listener's bearer tokens, logins, login links and
//! session cookies — under the rate limiter's client key (an IPv4-mapped
//! IPv6 address is its IPv4 address), and logs the failures at most once a
//! second, with their count, so guessing cannot flood the log either.
//!
//! ```
//! use hyper::header::{HeaderMap, HeaderValue, AUTHORIZATION};
//! use diem::api::auth::bearer;
//!
//! let mut h = HeaderMap::new();
//! h.insert(AUTHORIZATION, HeaderValue::from_static("bearer s3cret-token-0123"));
//! assert_eq!(bearer(&h), Some(&b"s3cret-token-0123"[..]));
//! h.insert(AUTHORIZATION, HeaderValue::from_static("Basic dXNlcjpwYXNz"));
//! assert_eq!(bearer(&h), None);
//! ```

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hyper::header::{HeaderMap, HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use hyper::StatusCode;

use crate::api::request::HttpResponse;
use crate::api::response::{error, retry_later};
use crate::limiter::gcra::Params;
use crate::limiter::local::LocalStore;
use crate::node::Node;

/// Failed authentications a client may make per minute.
pub const FAILURES_PER_MINUTE: u64 = 10;

/// The GCRA of failed attempts: 10 at once, then one more every 6 s.
pub const FAILURE_LIMIT: Params = Params {
    burst: FAILURES_PER_MINUTE - 1,
    count: FAILURES_PER_MINUTE,
    period_secs: 60,
};

/// Clients whose failures are remembered at once (older ones are swept).
const GUARDED_CLIENTS: usize = 100_000;

/// Failed token checks, throttled per client key and logged at most once a
/// second.
#[derive(Debug)]
pub(crate) struct Guard {
    failures: LocalStore,
    log: Mutex<FailureLog>,
}

/// Failures not yet logged.
#[derive(Debug, Default)]
struct FailureLog {
    unlogged: u64,
    last_line: Option<Instant>,
}

impl Default for Guard {
    fn default() -> Self {
        Self {
            failures: LocalStore::new(GUARDED_CLIENTS),
            log: Mutex::new(FailureLog::default()),
        }
    }
}

impl Guard {
    /// Seconds `key` must wait before its next attempt, when it has failed
    /// too often; `None` when it may try.
    pub(crate) fn throttled(&self, key: ipnet::IpNet) -> Option<u64> {
        let t = self.failures.peek(key, &FAILURE_LIMIT);
        t.limited.then(|| t.retry_after_secs())
    }

    /// Counts one failed check by `client` (under `key`) on `surface`;
    /// the seconds it must now wait when this failure throttles it.
    pub(crate) fn failed(&self, key: ipnet::IpNet, client: IpAddr, surface: &'static str) -> Option<u64> {
        let t = self.failures.check(key, &FAILURE_LIMIT);
        if let Ok(mut log) = self.log.lock() {
            log.unlogged += 1;
            let now = Instant::now();
            if log.last_line.is_none_or(|at| now.duration_since(at) >= Duration::from_secs(1)) {
                tracing::warn!(
                    failures = log.unlogged,
                    latest_client = %client,
                    latest_surface = surface,
                    "failed authentications since the last such line (logged at most once a second)"
                );
                log.unlogged = 0;
                log.last_line = Some(now);
            }
        }
        t.limited.then(|| t.retry_after_secs())
    }

    /// Forgets the failures of clients whose budget has refilled.
    pub(crate) fn sweep(&self) -> usize {
        self.failures.sweep()
    }
}

/// The token of an `Authorization: Bearer …` header (any case of the
/// scheme), if there is one.
pub fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(AUTHORIZATION)?.as_bytes();
    let space = value.iter().position(|b| *b == b' ')?;
    let (scheme, rest) = value.split_at(space);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// Constant-time comparison, so the token cannot be guessed byte by byte
/// from response times.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks a write request's token for `client`, counting failures against
/// its budget.
pub(crate) fn authorize(node: &Node, client: IpAddr, headers: &HeaderMap) -> Result<(), Refusal> {
    let token = node.with_config(|c| c.admin.token.clone());
    if token.is_empty() {
        return Err(Refusal::Disabled);
    }
    let key = node.limiter.key_of(client);
    if let Some(retry_after_secs) = node.auth.throttled(key) {
        return Err(Refusal::Throttled { retry_after_secs });
    }
    match bearer(headers) {
        Some(given) if same(given, token.as_bytes()) => Ok(()),
        _ => match node.auth.failed(key, client, "write API") {
            Some(retry_after_secs) => Err(Refusal::Throttled { retry_after_secs }),
            None => Err(Refusal::Unauthorized),
        },
    }
}

/// Why a write was refused before its body was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No token is configured: writes are off (403).
    Disabled,
    /// The token is missing or wrong (401).
    Unauthorized,
    /// Too many failed attempts from this client (429).
    Throttled {
        /// Seconds until it may try again.
        retry_after_secs: u64,
    },
}

impl Refusal {
    /// The response.
    pub fn response(self) -> HttpResponse {
        match self {
            Refusal::Disabled => error(
                StatusCode::FORBIDDEN,
                "writes_disabled",
                "writes are disabled on this node (admin.token is not set)",
            ),
            Refusal::Unauthorized => {
                let mut r = error(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "a valid `Authorization: Bearer <token>` header is required",
                );
                r.headers_mut()
                    .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                r
            }
            Refusal::Throttled { retry_after_secs } => retry_later(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_failed_authentications",
                "too many failed authentications from this address; see Retry-After",
                retry_after_secs,
            ),
        }
    }

    /// The label it is counted under.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::Disabled => "writes_disabled",
            Refusal::Unauthorized => "auth_failed",
            Refusal::Throttled { .. } => "auth_throttled",
        }
    }
}
