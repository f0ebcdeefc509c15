//! The HTTP API, as the workers run it.
//!
//! | method and path | handler |
//! |---|---|
//! | `GET`/`HEAD /hitokoto/v2/` | [`hitokoto::get`]: a random sentence |
//! | `POST /hitokoto/v2/` | [`write::post`]: add a sentence |
//! | `GET`/`HEAD /hitokoto/v2/{uuid}` | [`write::get`]: one sentence, every field |
//! | `DELETE /hitokoto/v2/{uuid}` | [`write::delete`]: remove one |
//! | `OPTIONS` on both | CORS preflight |
//! | `GET /readyz`, `/metrics` | [`ops`] |
//!
//! `GET /healthz` never reaches a worker: the connection answers it
//! ([`route`] says which requests are answered where). Every response
//! carries `Access-Control-Allow-Origin: *` (added by the connection).
//! Errors are JSON ([`response`]).

pub mod auth;
pub mod cors;
pub mod credentials;
pub(crate) mod hitokoto;
pub(crate) mod ops;
pub mod problem;
pub mod query;
pub mod request;
pub mod response;
pub mod route;
pub(crate) mod write;

use hyper::header::{HeaderValue, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ALLOW};
use hyper::{Method, StatusCode};

use crate::api::request::{HttpResponse, Request};
use crate::api::response::{body, error, TEXT};
use crate::api::route::Route;
use crate::node::Node;

fn allow(methods: &'static str) -> HttpResponse {
    let mut r = error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        &format!("allowed methods: {methods}"),
    );
    r.headers_mut().insert(ALLOW, HeaderValue::from_static(methods));
    r
}

fn preflight(methods: &'static str) -> HttpResponse {
    let mut r = body(StatusCode::NO_CONTENT, TEXT, bytes::Bytes::new());
    let h = r.headers_mut();
    h.insert(ALLOW, HeaderValue::from_static(methods));
    h.insert(ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(methods));
    h.insert(
        ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Authorization, Content-Type"),
    );
    r
}

/// The OpenAPI 3.1 description of this API, served at `/openapi.json`
/// (`src/api/openapi.json`; a test checks it with a real validator and
/// against the routes the server has).
pub const OPENAPI: &str = include_str!("api/openapi.json");

fn sentence_id(path: &str) -> &str {
    path.trim_start_matches("/hitokoto/v2/")
}

/// Handles one request (inside a worker).
///
/// The handlers that wait on PostgreSQL (writes, reads by id, readiness)
/// are boxed: their futures are kilobytes, and an unboxed one would make
/// every request's future that large — copied into the worker's message
/// loop on each request, the snapshot reads included. Boxed, they cost one
/// allocation on their own (rare) requests instead.
pub async fn handle(node: &Node, request: &Request, rng: &mut fastrand::Rng) -> HttpResponse {
    // An error as the client prefers it (problem details): its fields are
    // here, and read only for an error.
    let r = by_route(node, request, rng).await;
    problem::shaped(r, &request.parts.headers)
}

/// The answer of the route `request` is for.
async fn by_route(node: &Node, request: &Request, rng: &mut fastrand::Rng) -> HttpResponse {
    #[cfg(feature = "faults")]
    crate::faults::inject(node, &request.parts.headers).await;

    let method = request.parts.method.clone();
    let path = request.parts.uri.path();
    match (request.endpoint.route, method) {
        // A random answer: its `Cache-Control: no-store` is the
        // connection's (`Endpoint::random`), put in with its other fields.
        (Route::Hitokoto, Method::GET | Method::HEAD) => hitokoto::get(node, request, rng).await,
        (Route::Hitokoto, Method::POST) => Box::pin(write::post(node, request)).await,
        (Route::Hitokoto, Method::OPTIONS) => preflight("GET, HEAD, POST, OPTIONS"),
        (Route::Hitokoto, _) => allow("GET, HEAD, POST, OPTIONS"),
        (Route::Sentence, Method::GET | Method::HEAD) => {
            // Cacheable, revalidated by its ETag (off the hot path: a read by id).
            let r = Box::pin(write::get(node, sentence_id(path))).await;
            response::cacheable(r, &request.parts.headers)
        }
        (Route::Sentence, Method::DELETE) => Box::pin(write::delete(node, sentence_id(path))).await,
        (Route::Sentence, Method::OPTIONS) => preflight("GET, HEAD, DELETE, OPTIONS"),
        (Route::Sentence, _) => allow("GET, HEAD, DELETE, OPTIONS"),
        (Route::Readyz, Method::GET | Method::HEAD) => Box::pin(ops::readyz(node)).await,
        (Route::Metrics, Method::GET | Method::HEAD) => ops::metrics(node),
        (Route::OpenApi, Method::GET | Method::HEAD) => {
            body(StatusCode::OK, response::JSON, OPENAPI.as_bytes())
        }
        (Route::Healthz | Route::Readyz | Route::Metrics | Route::OpenApi, _) => allow("GET, HEAD"),
        (Route::Other, _) => error(StatusCode::NOT_FOUND, "not_found", "no such route"),
    }
}
