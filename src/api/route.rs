//! The route table: what a request is for and how it is served, decided
//! once from its method and path and carried with it.
//!
//! | path | route | policy |
//! |---|---|---|
//! | `/hitokoto/v2/`, `/hitokoto/v2` | [`Route::Hitokoto`] | a worker; `GET`/`HEAD` rate-limited; `POST` needs the admin token |
//! | `/hitokoto/v2/{uuid}` | [`Route::Sentence`] | a worker; `DELETE` needs the admin token |
//! | `/healthz` | [`Route::Healthz`] | `GET`/`HEAD` answered by the connection (no worker: an overloaded pool is not a dead process) |
//! | `/readyz`, `/metrics`, `/openapi.json` | [`Route::Readyz`], [`Route::Metrics`], [`Route::OpenApi`] | a worker |
//! | anything else | [`Route::Other`] | a worker (404) |
//!
//! ```
//! use hyper::Method;
//! use diem::api::route::{Endpoint, Route};
//!
//! let e = Endpoint::of(&Method::GET, "/hitokoto/v2/");
//! assert_eq!((e.route, e.limited, e.inline), (Route::Hitokoto, true, false));
//! assert!(!Endpoint::of(&Method::POST, "/hitokoto/v2/").limited);
//! assert!(Endpoint::of(&Method::POST, "/hitokoto/v2/").write);
//! assert!(Endpoint::of(&Method::DELETE, "/hitokoto/v2/4f1c").write);
//! assert!(!Endpoint::of(&Method::GET, "/hitokoto/v2/4f1c").write);
//! assert!(Endpoint::of(&Method::HEAD, "/healthz").inline);
//! assert!(!Endpoint::of(&Method::POST, "/healthz").inline);
//! assert_eq!(Endpoint::of(&Method::GET, "/hitokoto/v2/4f1c").route, Route::Sentence);
//! ```

use hyper::Method;

/// The routes requests are counted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    /// `/hitokoto/v2/` (GET, HEAD, POST, OPTIONS).
    Hitokoto,
    /// `/hitokoto/v2/{uuid}`.
    Sentence,
    /// `/healthz`.
    Healthz,
    /// `/readyz`.
    Readyz,
    /// `/metrics`.
    Metrics,
    /// `/openapi.json`: the API's description.
    OpenApi,
    /// Anything else.
    Other,
}

impl Route {
    /// Every route, in label order.
    pub const ALL: [Route; 7] = [
        Route::Hitokoto,
        Route::Sentence,
        Route::Healthz,
        Route::Readyz,
        Route::Metrics,
        Route::OpenApi,
        Route::Other,
    ];

    /// The route of a path.
    pub fn of(path: &str) -> Route {
        match path {
            "/hitokoto/v2/" | "/hitokoto/v2" => Route::Hitokoto,
            "/healthz" => Route::Healthz,
            "/readyz" => Route::Readyz,
            "/metrics" => Route::Metrics,
            "/openapi.json" => Route::OpenApi,
            p if p.starts_with("/hitokoto/v2/") => Route::Sentence,
            _ => Route::Other,
        }
    }

    /// The `route` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Route::Hitokoto => "hitokoto",
            Route::Sentence => "sentence",
            Route::Healthz => "healthz",
            Route::Readyz => "readyz",
            Route::Metrics => "metrics",
            Route::OpenApi => "openapi",
            Route::Other => "other",
        }
    }

    /// The route's path as the OpenAPI document (`/openapi.json`) writes
    /// it; `None` for [`Route::Other`].
    pub fn path(self) -> Option<&'static str> {
        match self {
            Route::Hitokoto => Some("/hitokoto/v2/"),
            Route::Sentence => Some("/hitokoto/v2/{uuid}"),
            Route::Healthz => Some("/healthz"),
            Route::Readyz => Some("/readyz"),
            Route::Metrics => Some("/metrics"),
            Route::OpenApi => Some("/openapi.json"),
            Route::Other => None,
        }
    }

    /// Its position in [`Route::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// A request's route and how it is served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The route.
    pub route: Route,
    /// Whether the client's rate limit applies (`GET`/`HEAD /hitokoto/v2/`).
    pub limited: bool,
    /// Whether the connection answers it without a worker (`GET`/`HEAD
    /// /healthz`).
    pub inline: bool,
    /// Whether the method only reads (`GET`, `HEAD`).
    pub read: bool,
    /// Whether it changes the sentences and needs the admin token, checked
    /// before the body is read (`POST /hitokoto/v2/`, `DELETE
    /// /hitokoto/v2/{uuid}`).
    pub write: bool,
}

impl Endpoint {
    /// The endpoint of `method` on `path`.
    pub fn of(method: &Method, path: &str) -> Endpoint {
        let route = Route::of(path);
        let read = matches!(*method, Method::GET | Method::HEAD);
        let write = matches!(
            (route, method),
            (Route::Hitokoto, &Method::POST) | (Route::Sentence, &Method::DELETE)
        );
        Endpoint {
            route,
            limited: read && route == Route::Hitokoto,
            inline: read && route == Route::Healthz,
            read,
            write,
        }
    }

    /// Whether its answer is a random one (`GET`/`HEAD /hitokoto/v2/`),
    /// which no cache may keep: each is `Cache-Control: no-store`, its
    /// errors too (a refusal is the client's own, not another's).
    pub fn random(self) -> bool {
        self.read && self.route == Route::Hitokoto
    }
}
