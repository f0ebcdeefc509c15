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
//! The same [`Guard`](crate::api::credentials) counts every failed token check of the node — the
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

use hyper::header::{HeaderMap, HeaderValue, WWW_AUTHENTICATE};
use hyper::StatusCode;

use crate::api::request::HttpResponse;
use crate::api::response::{error, retry_later};
use crate::node::Node;

pub use crate::api::credentials::{bearer, same, FAILURES_PER_MINUTE, FAILURE_LIMIT};

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
