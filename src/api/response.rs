//! Building responses: bodies with their content types, and JSON errors.
//!
//! Every error body has the same shape: `{"error": CODE, "message": TEXT}`,
//! plus `"parameter": NAME` when one request parameter is at fault. Like
//! every JSON body of the API it is script-safe: an echoed `</script>` or
//! U+2028 comes back escaped.
//!
//! ```
//! use diem::api::response::error;
//! use hyper::StatusCode;
//!
//! let r = error(StatusCode::NOT_FOUND, "not_found", "no sentence matches");
//! assert_eq!(r.status(), 404);
//! assert_eq!(r.headers()["content-type"], "application/json; charset=utf-8");
//! ```

use std::sync::OnceLock;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use hyper::{Response, StatusCode};

use crate::api::request::HttpResponse;
use crate::store::sentence::script_safe_json;

/// `text/plain; charset=utf-8`.
pub const TEXT: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");
/// `application/json; charset=utf-8`.
pub const JSON: HeaderValue = HeaderValue::from_static("application/json; charset=utf-8");
/// `text/javascript; charset=utf-8` (RFC 9239).
pub const JAVASCRIPT: HeaderValue = HeaderValue::from_static("text/javascript; charset=utf-8");

/// `X-RateLimit-Limit` (a constant: a name given as a string would be
/// parsed again on every insert).
pub const X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
/// `X-RateLimit-Remaining`.
pub const X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
/// `X-RateLimit-Reset`.
pub const X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// How long a cache may keep a sentence fetched by its uuid without asking
/// again (it can be deleted; then a cache serves it for at most this long).
pub const SENTENCE_CACHE_CONTROL: HeaderValue = HeaderValue::from_static("public, max-age=60");

/// A 200 with its `Cache-Control` and a strong `ETag` (a hash of the body);
/// a `304 Not Modified` without the body when `If-None-Match` names that
/// tag (or is `*`). Other statuses pass unchanged.
///
/// ```
/// use hyper::header::{HeaderMap, HeaderValue, ETAG, IF_NONE_MATCH};
/// use hyper::StatusCode;
/// use diem::api::response::{body, cacheable, JSON};
///
/// let first = cacheable(body(StatusCode::OK, JSON, "{}"), &HeaderMap::new());
/// let tag = first.headers()[ETAG].clone();
/// let mut again = HeaderMap::new();
/// again.insert(IF_NONE_MATCH, tag);
/// let second = cacheable(body(StatusCode::OK, JSON, "{}"), &again);
/// assert_eq!(second.status(), StatusCode::NOT_MODIFIED);
/// ```
pub fn cacheable(mut r: HttpResponse, request: &hyper::HeaderMap) -> HttpResponse {
    use http_body_util::BodyExt;
    use std::hash::{Hash, Hasher};
    if r.status() != StatusCode::OK {
        return r;
    }
    // The body is whole (`Full`): its one frame is read without waiting.
    let bytes = match futures::FutureExt::now_or_never(r.body_mut().frame()) {
        Some(Some(Ok(frame))) => frame.into_data().unwrap_or_default(),
        _ => Bytes::new(),
    };
    // SipHash with fixed keys: every node gives one sentence the same tag.
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut hasher);
    let tag = format!("\"{:016x}\"", hasher.finish());
    let matches = request
        .get_all(hyper::header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == tag);
    let mut out = if matches {
        let mut m = Response::new(Full::new(Bytes::new()));
        *m.status_mut() = StatusCode::NOT_MODIFIED;
        m
    } else {
        let mut whole = Response::new(Full::new(bytes));
        *whole.headers_mut() = std::mem::take(r.headers_mut());
        whole
    };
    let h = out.headers_mut();
    h.insert(hyper::header::CACHE_CONTROL, SENTENCE_CACHE_CONTROL);
    if let Ok(v) = HeaderValue::from_str(&tag) {
        h.insert(hyper::header::ETAG, v);
    }
    out
}

/// Numbers below this come from a table, without allocating.
const SMALL_NUMBERS: u64 = 1024;

/// `n` as a header value. The rate-limit headers of every request carry
/// three numbers, which under any usual limit are small: those below 1,024
/// are clones of values made once (no allocation; `HeaderValue::from(n)`
/// allocates each time).
///
/// ```
/// use diem::api::response::number;
///
/// assert_eq!(number(7), "7");
/// assert_eq!(number(1023), "1023");
/// assert_eq!(number(86_400), "86400");
/// ```
pub fn number(n: u64) -> HeaderValue {
    static SMALL: OnceLock<Vec<HeaderValue>> = OnceLock::new();
    let small = SMALL.get_or_init(|| {
        (0..SMALL_NUMBERS)
            .map(|i| HeaderValue::from_static(Box::leak(i.to_string().into_boxed_str())))
            .collect()
    });
    usize::try_from(n)
        .ok()
        .and_then(|i| small.get(i))
        .cloned()
        .unwrap_or_else(|| HeaderValue::from(n))
}

/// `Cache-Control: no-store`, on every random answer.
pub const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");

/// A response with `body` of `content_type`. Its map has the first size,
/// room for six fields: the answer's own and the two the connection adds
/// when the limiter did not decide; a limited answer gets a prebuilt head
/// instead, which takes this map's values ([`head`](crate::http::head)).
pub fn body(status: StatusCode, content_type: HeaderValue, body: impl Into<Bytes>) -> HttpResponse {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, content_type);
    r
}

fn json_error(status: StatusCode, code: &str, message: &str, parameter: Option<&str>) -> HttpResponse {
    let mut v = serde_json::json!({ "error": code, "message": message });
    if let Some(p) = parameter {
        v["parameter"] = serde_json::Value::from(p);
    }
    body(status, JSON, script_safe_json(&v))
}

/// A JSON error.
pub fn error(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    json_error(status, code, message, None)
}

/// 400 naming the parameter at fault.
pub fn bad_parameter(parameter: &str, message: &str) -> HttpResponse {
    json_error(StatusCode::BAD_REQUEST, "bad_parameter", message, Some(parameter))
}

/// A JSON error with `Retry-After: secs`.
pub fn retry_later(status: StatusCode, code: &str, message: &str, secs: u64) -> HttpResponse {
    let mut r = error(status, code, message);
    r.headers_mut().insert(RETRY_AFTER, number(secs));
    r
}

/// The body of a 429 from the rate limiter: always the same, so it is a
/// constant rather than JSON built per refusal (most 429s come from the
/// deny cache, which otherwise allocates nothing); a test checks it is
/// byte for byte what [`error`] would build.
const RATE_LIMITED: &[u8] =
    br#"{"error":"rate_limited","message":"too many requests from this address; see Retry-After"}"#;

/// 429 from the rate limiter, with `Retry-After: secs`.
pub fn rate_limited(secs: u64) -> HttpResponse {
    let mut r = body(
        StatusCode::TOO_MANY_REQUESTS,
        JSON,
        Bytes::from_static(RATE_LIMITED),
    );
    r.headers_mut().insert(RETRY_AFTER, number(secs));
    r
}

/// 503: the node is overloaded; retry in a second.
pub fn overloaded() -> HttpResponse {
    retry_later(
        StatusCode::SERVICE_UNAVAILABLE,
        "overloaded",
        "too many requests in flight; retry shortly",
        1,
    )
}

/// 500: the handler of this request crashed (the worker was replaced).
pub fn crashed() -> HttpResponse {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        "the request failed inside its handler",
    )
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    fn bytes(r: HttpResponse) -> Bytes {
        futures::executor::block_on(r.into_body().collect())
            .map(|c| c.to_bytes())
            .unwrap_or_default()
    }

    #[test]
    fn the_rate_limited_body_is_the_error_body() {
        let built = error(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests from this address; see Retry-After",
        );
        let r = rate_limited(12);
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[CONTENT_TYPE], built.headers()[CONTENT_TYPE]);
        assert_eq!(r.headers()[RETRY_AFTER], "12");
        assert_eq!(bytes(r), bytes(built));
    }

    #[test]
    fn numbers_are_decimal_on_both_sides_of_the_table() {
        for n in [0, 1, 9, 10, 1023, 1024, 1025, u64::MAX] {
            assert_eq!(number(n), HeaderValue::from(n), "{n}");
        }
    }

    #[test]
    fn error_bodies_are_script_safe() {
        let r = bad_parameter("from", "echo: </script>\u{2028}");
        let bytes = futures::executor::block_on(r.into_body().collect())
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains(r"\u003c/script\u003e\u2028"), "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(v["parameter"], "from");
    }
}
