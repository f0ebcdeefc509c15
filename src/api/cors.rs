//! Which browser pages may read an answer (CORS): `http.cors_origins` for
//! the read routes, `http.cors_write_origins` for the write routes (`POST`,
//! `DELETE`, and a preflight that asks for one of them). `*` — the
//! default, a public read API — grants every origin with
//! `Access-Control-Allow-Origin: *`; a list grants the origins in it, each
//! echoed, with `Vary: Origin` so that a cache keeps one answer per
//! origin; any other origin gets no grant (the browser then refuses the
//! page the answer). With `*` no request field is read.
//!
//! ```
//! use hyper::header::{HeaderMap, HeaderValue, ORIGIN};
//! use diem::api::cors::{grant, Grant};
//!
//! let any = vec!["*".to_owned()];
//! assert_eq!(grant(&any, &HeaderMap::new()), Grant::Any);
//! let blog = vec!["https://blog.example".to_owned()];
//! let mut h = HeaderMap::new();
//! h.insert(ORIGIN, HeaderValue::from_static("https://blog.example"));
//! assert_eq!(grant(&blog, &h), Grant::Origin(HeaderValue::from_static("https://blog.example")));
//! h.insert(ORIGIN, HeaderValue::from_static("https://evil.example"));
//! assert_eq!(grant(&blog, &h), Grant::Refused);
//! ```

use hyper::header::{
    HeaderMap, HeaderValue, ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use hyper::Method;

use crate::config::HttpConfig;

/// What an answer grants the page that asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Grant {
    /// Every origin (`*`).
    Any,
    /// This origin, echoed (`Vary: Origin`).
    Origin(HeaderValue),
    /// None (`Vary: Origin` only).
    Refused,
}

/// The grant of `allowed` to the request with `headers`.
pub fn grant(allowed: &[String], headers: &HeaderMap) -> Grant {
    if allowed.iter().any(|o| o == "*") {
        return Grant::Any;
    }
    match headers.get(ORIGIN) {
        Some(origin) if allowed.iter().any(|o| o.as_bytes() == origin.as_bytes()) => {
            Grant::Origin(origin.clone())
        }
        _ => Grant::Refused,
    }
}

/// The grant for a request to a route that writes (`write`) or reads,
/// under `http`'s lists; a preflight counts as a write when it asks for
/// `POST` or `DELETE`.
pub fn decide(http: &HttpConfig, write: bool, method: &Method, headers: &HeaderMap) -> Grant {
    let write = write
        || (method == Method::OPTIONS
            && headers
                .get(ACCESS_CONTROL_REQUEST_METHOD)
                .is_some_and(|m| m == "POST" || m == "DELETE"));
    grant(
        if write {
            &http.cors_write_origins
        } else {
            &http.cors_origins
        },
        headers,
    )
}

/// Writes the grant into an answer's headers.
pub fn apply(grant: Grant, headers: &mut HeaderMap) {
    match grant {
        Grant::Any => {
            headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        }
        Grant::Origin(origin) => {
            headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            headers.append(VARY, HeaderValue::from_static("Origin"));
        }
        Grant::Refused => {
            headers.append(VARY, HeaderValue::from_static("Origin"));
        }
    }
}
