//! RFC 9457 problem details: every error as `application/problem+json`
//! when the client's `Accept` prefers it; diem's own JSON errors stay the
//! default. The `Accept` field is read only when the answer is an error
//! ([`shaped`], wherever the request's fields are at hand: the connection
//! for the errors it makes, the worker for its handlers', the connection
//! again for a crashed handler, whose request comes back with the crash),
//! so a successful request pays nothing for it.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE};
use hyper::Response;

use crate::api::request::HttpResponse;
use crate::store::sentence::script_safe_json;

/// `application/problem+json`.
pub const PROBLEM_JSON: HeaderValue = HeaderValue::from_static("application/problem+json");

/// Whether an `Accept` field prefers problem details to diem's own JSON
/// errors: `application/problem+json` listed with a quality above 0 and
/// not below `application/json`'s (which, when not listed, is that of
/// `application/*` or `*/*`).
///
/// ```
/// use hyper::header::HeaderValue;
/// use diem::api::problem::prefers_problem;
///
/// let accept = |v: &'static str| prefers_problem(&HeaderValue::from_static(v));
/// assert!(accept("application/problem+json"));
/// assert!(accept("application/problem+json, application/json;q=0.9"));
/// assert!(!accept("application/json, application/problem+json;q=0.5"));
/// assert!(!accept("*/*"));
/// ```
pub fn prefers_problem(accept: &HeaderValue) -> bool {
    let Ok(value) = accept.to_str() else {
        return false;
    };
    let mut problem: Option<f32> = None;
    let mut json: Option<f32> = None;
    let mut wildcard: f32 = 0.0;
    for range in value.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if media.eq_ignore_ascii_case("application/problem+json") {
            problem = Some(q);
        } else if media.eq_ignore_ascii_case("application/json") {
            json = Some(q);
        } else if media == "*/*" || media.eq_ignore_ascii_case("application/*") {
            wildcard = wildcard.max(q);
        }
    }
    problem.is_some_and(|p| p > 0.0 && p >= json.unwrap_or(wildcard))
}

/// `r` as the client whose request had `headers` prefers it: an error as
/// problem details if its `Accept` says so ([`prefers_problem`]), anything
/// else unchanged — without a look at the fields.
///
/// ```
/// use hyper::header::{HeaderMap, HeaderValue, ACCEPT};
/// use hyper::StatusCode;
/// use diem::api::problem::shaped;
/// use diem::api::response::error;
///
/// let mut headers = HeaderMap::new();
/// headers.insert(ACCEPT, HeaderValue::from_static("application/problem+json"));
/// let r = shaped(error(StatusCode::NOT_FOUND, "not_found", "no such route"), &headers);
/// assert_eq!(r.headers()["content-type"], "application/problem+json");
/// let r = shaped(error(StatusCode::NOT_FOUND, "not_found", "no such route"), &HeaderMap::new());
/// assert_eq!(r.headers()["content-type"], "application/json; charset=utf-8");
/// ```
pub fn shaped(r: HttpResponse, headers: &HeaderMap) -> HttpResponse {
    if r.status().as_u16() < 400 {
        return r;
    }
    match headers.get(ACCEPT) {
        Some(accept) if prefers_problem(accept) => as_problem(r),
        _ => r,
    }
}

/// An error response of diem's JSON shape (`{"error", "message",
/// "parameter"?}`) as problem details: `type` (`urn:diem:problem:<error>`),
/// `title` (the status's reason phrase), `status`, `detail` (the message),
/// `parameter` kept as an extension member, and for a 429 the draft's
/// `violated-policies` (`["default"]`, the policy `RateLimit-Policy`
/// names). The headers stay (`Retry-After` included); other responses
/// pass unchanged.
pub fn as_problem(r: HttpResponse) -> HttpResponse {
    let status = r.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return r;
    }
    let (mut parts, mut body) = r.into_parts();
    // The body is whole (`Full`): its one frame is read without waiting.
    let bytes = match futures::FutureExt::now_or_never(body.frame()) {
        Some(Some(Ok(frame))) => frame.into_data().unwrap_or_default(),
        _ => Bytes::new(),
    };
    let Ok(own) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Response::from_parts(parts, Full::new(bytes));
    };
    let code = own["error"].as_str().unwrap_or("error");
    let mut problem = serde_json::json!({
        "type": format!("urn:diem:problem:{code}"),
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": own["message"],
    });
    if let Some(p) = own.get("parameter") {
        problem["parameter"] = p.clone();
    }
    if status == hyper::StatusCode::TOO_MANY_REQUESTS {
        problem["violated-policies"] = serde_json::json!(["default"]);
    }
    parts.headers.insert(CONTENT_TYPE, PROBLEM_JSON);
    parts.headers.remove(hyper::header::CONTENT_LENGTH);
    Response::from_parts(parts, Full::new(script_safe_json(&problem).into()))
}
