//! Credentials, apart from any handler: the bearer token of a request,
//! the constant-time comparison, and the node's [`Guard`] of failed
//! checks — shared by the write API ([`auth`](super::auth)) and the admin
//! listener ([`access`](crate::admin::access)). It imports nothing of
//! either, so the node can hold the guard.
//!
//! ```
//! use hyper::header::{HeaderMap, HeaderValue, AUTHORIZATION};
//! use diem::api::credentials::{bearer, same};
//!
//! let mut h = HeaderMap::new();
//! h.insert(AUTHORIZATION, HeaderValue::from_static("bearer s3cret-token-0123"));
//! assert_eq!(bearer(&h), Some(&b"s3cret-token-0123"[..]));
//! assert!(same(b"s3cret-token-0123", b"s3cret-token-0123"));
//! assert!(!same(b"s3cret-token-0123", b"s3cret-token-0124"));
//! ```

use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hyper::header::{HeaderMap, AUTHORIZATION};

use crate::limiter::gcra::Params;
use crate::limiter::local::LocalStore;

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
pub struct Guard {
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
            if log
                .last_line
                .is_none_or(|at| now.duration_since(at) >= Duration::from_secs(1))
            {
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
