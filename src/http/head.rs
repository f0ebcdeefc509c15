//! The fields the connection adds to every answer's head: the CORS grant,
//! `X-Content-Type-Options: nosniff`, `Cache-Control: no-store` on a
//! random answer, `Connection: close` while draining, and, when the
//! limiter decided, the legacy `X-RateLimit-*` three and the IETF
//! `RateLimit-Policy` and `RateLimit` (the same decision).
//!
//! Each field inserted into a `HeaderMap` costs ~200 instructions (its
//! name hashed — byte by byte for the non-standard names of the rate-limit
//! fields — the table probed, the entry pushed). So the heads of limited
//! answers, up to eight fields from here, are prebuilt: an answer whose own
//! fields are `Content-Type` and at most one of `Cache-Control` or
//! `Retry-After` (a refusal), granted to every origin, gets a
//! clone of the map of its shape with every field in place, and the values
//! that differ per answer written by their position (a random answer's
//! `no-store` is in place: it is never inserted) — 380–620
//! instructions fewer per limited request, measured (docs/benchmarks.md). A clone is not free (each
//! field's name and value cloned, two allocations): for the two fields of
//! an answer the limiter did not decide, inserting them is cheaper, and
//! so is it for every other answer. Both ways give the same fields in the
//! same order (tested).
//!
//! ```
//! use hyper::header::{HeaderMap, CONTENT_TYPE};
//! use diem::api::cors::Grant;
//! use diem::api::response::JSON;
//! use diem::http::head::{complete, Added, Limits};
//! use diem::limiter::fields::ratelimit_policy;
//!
//! let mut h = HeaderMap::new();
//! h.insert(CONTENT_TYPE, JSON);
//! let policy = ratelimit_policy(35, 36, 360);
//! let limits = Limits { limit: 36, remaining: 35, reset_secs: 10, policy };
//! let added = Added { grant: Grant::Any, limits: Some(limits), no_store: true, draining: false };
//! complete(&mut h, added);
//! assert_eq!(h["cache-control"], "no-store");
//! assert_eq!(h["access-control-allow-origin"], "*");
//! assert_eq!(h["x-ratelimit-remaining"], "35");
//! assert_eq!(h["ratelimit"], "\"default\";r=35;t=10");
//! ```

use std::sync::OnceLock;

use hyper::header::{
    HeaderMap, HeaderName, HeaderValue, ACCESS_CONTROL_ALLOW_ORIGIN, CACHE_CONTROL, CONNECTION, CONTENT_TYPE,
    RETRY_AFTER, X_CONTENT_TYPE_OPTIONS,
};

use crate::api::cors::{self, Grant};
use crate::api::response::{number, NO_STORE, X_RATELIMIT_LIMIT, X_RATELIMIT_REMAINING, X_RATELIMIT_RESET};
use crate::limiter::fields::{ratelimit, RATELIMIT, RATELIMIT_POLICY};

/// What the rate-limit fields of one answer say.
#[derive(Debug, Clone)]
pub struct Limits {
    /// `X-RateLimit-Limit`.
    pub limit: u64,
    /// `X-RateLimit-Remaining`, and `r` of `RateLimit`.
    pub remaining: u64,
    /// `X-RateLimit-Reset`, and `t` of `RateLimit`.
    pub reset_secs: u64,
    /// `RateLimit-Policy` (made once per setting of the limiter).
    pub policy: HeaderValue,
}

/// What the connection adds to one answer's head.
#[derive(Debug, Clone)]
pub struct Added {
    /// The CORS grant.
    pub grant: Grant,
    /// The rate-limit fields, when the limiter decided.
    pub limits: Option<Limits>,
    /// `Cache-Control: no-store` (a random answer).
    pub no_store: bool,
    /// `Connection: close` (the node is shutting down).
    pub draining: bool,
}

/// `X-Content-Type-Options: nosniff`.
const NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");

/// `Access-Control-Allow-Origin: *`.
const ANY_ORIGIN: HeaderValue = HeaderValue::from_static("*");

/// A value a prebuilt head holds until the answer's own is written over it.
const PLACEHOLDER: HeaderValue = HeaderValue::from_static("-");

/// The field an answer has besides `Content-Type`, in the prebuilt shapes.
const SECOND: [Option<HeaderName>; 3] = [None, Some(CACHE_CONTROL), Some(RETRY_AFTER)];

/// The shape with `Cache-Control` in [`SECOND`].
const WITH_CACHE_CONTROL: usize = 1;

/// The prebuilt heads of limited answers, by the answer's second field
/// ([`SECOND`]).
fn heads() -> &'static [HeaderMap; 3] {
    static HEADS: OnceLock<[HeaderMap; 3]> = OnceLock::new();
    HEADS.get_or_init(|| {
        SECOND.map(|second| {
            let mut h = HeaderMap::with_capacity(9);
            h.insert(CONTENT_TYPE, PLACEHOLDER);
            if let Some(second) = second {
                h.insert(second, PLACEHOLDER);
            }
            h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, ANY_ORIGIN);
            h.insert(X_CONTENT_TYPE_OPTIONS, NOSNIFF);
            for name in [
                X_RATELIMIT_LIMIT,
                X_RATELIMIT_REMAINING,
                X_RATELIMIT_RESET,
                RATELIMIT_POLICY,
                RATELIMIT,
            ] {
                h.insert(name, PLACEHOLDER);
            }
            h
        })
    })
}

/// The position in [`SECOND`] of the shape of `headers`, if it is one of
/// the prebuilt ones: `Content-Type` first, then at most one more field,
/// each with one value.
fn shape(headers: &HeaderMap) -> Option<usize> {
    if headers.len() != headers.keys_len() || headers.len() > 2 {
        return None;
    }
    let mut names = headers.keys();
    if names.next() != Some(&CONTENT_TYPE) {
        return None;
    }
    let second = names.next();
    SECOND.iter().position(|s| s.as_ref() == second)
}

/// Adds the connection's fields to `headers`, an answer's: the CORS
/// grant, `nosniff`, `no-store`, `Connection: close` when draining, and
/// the rate-limit fields.
pub fn complete(headers: &mut HeaderMap, added: Added) {
    let Added {
        grant,
        limits,
        no_store,
        draining,
    } = added;
    let Some(l) = limits else {
        return insert_each(headers, grant, None, no_store, draining);
    };
    // A random answer has `Content-Type` alone: its head is the shape
    // with `Cache-Control`, whose `no-store` is put in below.
    let prebuilt = match shape(headers) {
        Some(0) if no_store => Some(WITH_CACHE_CONTROL),
        Some(second) if !no_store => Some(second),
        _ => None,
    };
    match prebuilt {
        Some(second) if matches!(grant, Grant::Any) && !draining => {
            let mut head = heads()[second].clone();
            let mut slots = head.values_mut();
            let mut put = |value: HeaderValue| {
                if let Some(slot) = slots.next() {
                    *slot = value;
                }
            };
            // The answer's own values, moved in order (no clone).
            for value in headers.values_mut() {
                put(std::mem::replace(value, PLACEHOLDER));
            }
            if no_store {
                put(NO_STORE);
            }
            // The origin's and nosniff's are in place.
            put(ANY_ORIGIN);
            put(NOSNIFF);
            put(number(l.limit));
            put(number(l.remaining));
            put(number(l.reset_secs));
            put(l.policy);
            put(ratelimit(l.remaining, l.reset_secs));
            *headers = head;
        }
        _ => insert_each(headers, grant, Some(l), no_store, draining),
    }
}

/// The fields inserted one by one (an answer of another shape, a grant
/// that is not `*`, a draining node).
fn insert_each(
    headers: &mut HeaderMap,
    grant: Grant,
    limits: Option<Limits>,
    no_store: bool,
    draining: bool,
) {
    if no_store {
        headers.insert(CACHE_CONTROL, NO_STORE);
    }
    cors::apply(grant, headers);
    headers.insert(X_CONTENT_TYPE_OPTIONS, NOSNIFF);
    if draining {
        // Shutting down: a keep-alive client reconnects (elsewhere) for its
        // next request instead of finding this connection closed under it.
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    if let Some(l) = limits {
        headers.insert(X_RATELIMIT_LIMIT, number(l.limit));
        headers.insert(X_RATELIMIT_REMAINING, number(l.remaining));
        headers.insert(X_RATELIMIT_RESET, number(l.reset_secs));
        // The IETF fields, from the same decision.
        headers.insert(RATELIMIT_POLICY, l.policy);
        headers.insert(RATELIMIT, ratelimit(l.remaining, l.reset_secs));
    }
}

#[cfg(test)]
mod tests;
