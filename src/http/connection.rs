//! One HTTP/1.1 connection, from request to response.
//!
//! hyper reads each request head (bounded: `http.max_header_bytes`, and
//! `http.header_read_timeout` against slow clients, kept by
//! [`head_deadline`](crate::http::head_deadline)). Its [`Endpoint`] is
//! decided once ([`route`](crate::api::route)) and carried with it. Then, in
//! order:
//!
//! 1. an inline endpoint (`GET /healthz`) is answered here, without a worker;
//! 2. admission: past the pool's bound, 503 with `Retry-After` at once;
//! 3. a write endpoint's admin token, before its body is read (401, 403, or
//!    429 after too many failures: [`auth`]);
//! 4. rate limit (a limited endpoint: `GET /hitokoto/v2/`): 429 with
//!    `Retry-After` when refused, `X-RateLimit-*` headers either way;
//! 5. the body is read in full, bounded in size (413) and time (408), so a
//!    slow or huge upload never reaches a worker;
//! 6. a worker handles the request ([`WorkerPool::dispatch`]); a crash in
//!    its handler is answered 500.
//!
//! Then `Access-Control-Allow-Origin: *` and `X-Content-Type-Options:
//! nosniff` are added (and `Connection: close` while the node shuts down),
//! the request is counted and, if enabled, logged (target `diem::access`).
//!
//! [`WorkerPool::dispatch`]: crate::workers::pool::WorkerPool::dispatch

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue, CONNECTION};
use hyper::StatusCode;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;

use crate::api::request::{HttpResponse, Request};
use crate::api::route::Endpoint;
use crate::api::{auth, cors, ops, problem, response};
use crate::http::client_ip::client_ip;
use crate::http::head::{self, Limits};
use crate::http::head_deadline::{Expired, HeadDeadline, Watched};
use crate::limiter::{Check, Decision, LimiterSettings};
use crate::metrics::MethodClass;
use crate::node::Node;
use crate::workers::pool::{DispatchError, Unanswered};

/// Serves one connection until the client closes it, a limit closes it,
/// or shutdown drains it.
pub(crate) async fn serve(
    node: Arc<Node>,
    stream: TcpStream,
    peer: SocketAddr,
    slot: Option<OwnedSemaphorePermit>,
) {
    let _slot = slot;
    let _open = node.http.opened();
    let (header_timeout, max_buf) =
        node.with_config(|c| (c.http.header_read_timeout, c.http.max_header_bytes));
    let deadline = Arc::new(HeadDeadline::new(header_timeout.get()));
    let io = TokioIo::new(Watched::new(stream, deadline.clone()));
    // The service borrows the node and the deadline from this task: no
    // reference count is taken per request.
    let (svc_node, svc_deadline) = (&*node, &*deadline);
    let service = hyper::service::service_fn(move |req| {
        svc_deadline.request_started();
        // Boxed: the request's future is large (limiter, body, dispatch) and
        // hyper moves the future it is given; a pointer moves cheaply.
        Box::pin(async move {
            let (response, end) = respond(svc_node, peer, req).await;
            svc_deadline.request_done(end.into());
            Ok::<_, Infallible>(response)
        })
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The header read timeout is kept by `deadline`, not by hyper's timer
    // per request (see head_deadline); without a timer hyper has none.
    builder
        .header_read_timeout(None)
        .max_buf_size(max_buf)
        .keep_alive(true);
    let conn = builder.serve_connection(io, service);
    let served = node.http.watch(conn);
    // The connection first: a head that has come is read before the
    // deadline is looked at.
    let refused = tokio::select! {
        biased;
        result = served => match result {
            Ok(()) => None,
            Err(e) => match rejection(&e) {
                Some(reason) => Some((reason, e.to_string())),
                None => {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                    None
                }
            },
        },
        expired = deadline.expired() => (expired == Expired::Partial).then(|| {
            ("header_timeout", format!("no complete request head within {header_timeout:?}"))
        }),
    };
    if let Some((reason, error)) = refused {
        node.metrics.rejected(reason);
        if node.http.may_log_rejection() {
            tracing::info!(%peer, reason, %error, "request refused before a handler (logged once a second at most)");
        }
    }
}

/// The class of a request hyper refused itself (it answered 400 or 431,
/// or closed), for counting; `None` for a connection that just ended.
fn rejection(e: &hyper::Error) -> Option<&'static str> {
    if e.is_parse_too_large() {
        Some("too_large")
    } else if e.is_parse() {
        if e.to_string().contains("HTTP2") {
            Some("http2_preface")
        } else {
            Some("malformed")
        }
    } else {
        None
    }
}

/// Reads a request's body in full. A body that has ended (every `GET`'s)
/// is answered without waiting; only one to read waits, in a boxed future:
/// the wait (a timer and the collected chunks) would otherwise be part of
/// every request's future, copied with it.
async fn read_body(node: &Node, body: Incoming) -> Result<Bytes, HttpResponse> {
    if hyper::body::Body::is_end_stream(&body) {
        return Ok(Bytes::new());
    }
    Box::pin(read_to_end(node, body)).await
}

async fn read_to_end(node: &Node, body: Incoming) -> Result<Bytes, HttpResponse> {
    let (limit, timeout) = node.with_config(|c| (c.http.max_body_bytes, c.http.body_read_timeout));
    let too_large = || {
        response::error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            &format!("the body must be at most {limit} bytes"),
        )
    };
    // A declared length over the limit is refused before reading anything.
    if usize::try_from(hyper::body::Body::size_hint(&body).lower()).map_or(true, |n| n > limit) {
        return Err(too_large());
    }
    match tokio::time::timeout(timeout.get(), Limited::new(body, limit).collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Ok(Err(e)) => Err(response::error(
            StatusCode::BAD_REQUEST,
            "bad_body",
            &format!("the body could not be read: {e}"),
        )),
        Err(_) => {
            let mut r = response::error(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                "the body was not received in time",
            );
            r.headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
            Err(r)
        }
    }
}

/// The client's address ([`client_ip`] under the limiter's trusted
/// proxies). Read only where it is used — a write's token check, the rate
/// limit, the access log — so that a request none of them concerns does
/// not parse the forwarding header.
fn client_of(settings: &LimiterSettings, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    client_ip(peer, headers, &settings.trusted_proxies, settings.client_header)
}

/// The limiter's decision on a request, and the `RateLimit-Policy` of
/// the settings it was made under.
struct Decided {
    decision: Decision,
    policy: HeaderValue,
}

async fn answer(
    node: &Node,
    endpoint: Endpoint,
    peer: IpAddr,
    req: hyper::Request<Incoming>,
) -> (HttpResponse, Option<Decided>) {
    if endpoint.inline {
        return (ops::healthz(), None);
    }
    // The errors made here are shaped as the client prefers (problem
    // details), its fields at hand; a handler's are shaped by its worker.
    let Some(_admission) = node.workers.admit() else {
        return (problem::shaped(response::overloaded(), req.headers()), None);
    };
    if endpoint.write {
        let client = client_of(&node.limiter.settings(), peer, req.headers());
        if let Err(refusal) = auth::authorize(node, client, req.headers()) {
            node.metrics.rejected(refusal.label());
            return (problem::shaped(refusal.response(), req.headers()), None);
        }
    }
    // One load of the settings for the switch, the client, its decision
    // and the policy its answer names.
    let check = if endpoint.limited {
        let settings = node.limiter.settings();
        settings.enabled.then(|| {
            let client = client_of(&settings, peer, req.headers());
            (Check::new(&settings, client), settings.policy.clone())
        })
    } else {
        None
    };
    let decision = match check {
        Some((check, policy)) => Some(Decided {
            decision: node.limiter.decide(check).await,
            policy,
        }),
        None => None,
    };
    if let Some(Decided { decision: d, .. }) = &decision {
        node.metrics.decision(d.backend, d.throttle.limited);
        if d.cached {
            node.metrics.cached_refusal();
        }
        if d.throttle.limited {
            let refused = response::rate_limited(d.throttle.retry_after_secs());
            return (problem::shaped(refused, req.headers()), decision);
        }
    }
    let (parts, body) = req.into_parts();
    let body = match read_body(node, body).await {
        Ok(b) => b,
        Err(r) => return (problem::shaped(r, &parts.headers), decision),
    };
    let response = match node
        .workers
        .dispatch(Request {
            parts: Box::new(parts),
            body,
            endpoint,
        })
        .await
    {
        Ok(r) => r,
        Err(Unanswered { why, request }) => {
            let r = match why {
                DispatchError::Crashed => response::crashed(),
                DispatchError::Unavailable => response::overloaded(),
            };
            match request {
                Some(request) => problem::shaped(r, &request.parts.headers),
                None => r,
            }
        }
    };
    (response, decision)
}

/// Longest URI an access line carries, bytes; a longer one is cut and its
/// length told.
const LOGGED_URI_MAX: usize = 256;

/// A URI as logged: at most [`LOGGED_URI_MAX`] bytes of it.
struct Capped<'a>(&'a hyper::Uri);

impl std::fmt::Display for Capped<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = self.0.path_and_query().map_or("/", |pq| pq.as_str());
        match text.get(..LOGGED_URI_MAX) {
            Some(head) if text.len() > LOGGED_URI_MAX => write!(f, "{head}…({} bytes)", text.len()),
            _ => f.write_str(text),
        }
    }
}

/// Answers one request; also returns when the answer was ready (the
/// clock read that timed it), from which the wait for the next head runs.
async fn respond(node: &Node, peer: SocketAddr, req: hyper::Request<Incoming>) -> (HttpResponse, Instant) {
    let start = Instant::now();
    let endpoint = Endpoint::of(req.method(), req.uri().path());
    let method = MethodClass::of(req.method());
    // One load of the config for the access log and the CORS grant.
    let (access, grant) = node.with_config(|c| {
        let grant = cors::decide(&c.http, endpoint.write, req.method(), req.headers());
        (c.log.access, grant)
    });
    let access = access && tracing::enabled!(target: "diem::access", tracing::Level::INFO);
    let logged = access.then(|| {
        let client = client_of(&node.limiter.settings(), peer.ip(), req.headers());
        (req.method().clone(), req.uri().clone(), client)
    });
    let (mut response, decision) = answer(node, endpoint, peer.ip(), req).await;
    #[cfg(feature = "faults")]
    let decided = decision.as_ref().map(|l| l.decision);
    let limits = decision.map(|Decided { decision: d, policy }| Limits {
        limit: d.throttle.limit,
        remaining: d.throttle.remaining,
        reset_secs: d.throttle.reset_secs(),
        policy,
    });
    let added = head::Added {
        grant,
        limits,
        no_store: endpoint.random(),
        draining: node.is_draining(),
    };
    head::complete(response.headers_mut(), added);
    #[cfg(feature = "faults")]
    if let Some(d) = &decided {
        crate::faults::decided(response.headers_mut(), d);
    }
    let end = Instant::now();
    let latency = end - start;
    let status = response.status().as_u16();
    node.metrics.request(endpoint.route, method, status, latency);
    // A client refused by the limiter is logged at most once a second:
    // a flood of 429s must not become a flood of lines.
    let logged = logged.filter(|_| status != 429 || node.http.may_log_rejection());
    if let Some((method, uri, client)) = logged {
        tracing::info!(
            target: "diem::access",
            %method,
            uri = %Capped(&uri),
            status,
            latency_us = latency.as_micros() as u64,
            %client,
            "request"
        );
    }
    (response, end)
}
