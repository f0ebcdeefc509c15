//! What the admin listener answers. Every route but the login ones needs
//! a caller who proved itself ([`access`](super::access)).
//!
//! | request | answer |
//! |---|---|
//! | `GET /observer` | the page; without a session, the login form (401), nothing of the tree |
//! | `GET /observer/login?ticket=…` | spends a one-time link of `diem ctl observe`: a session cookie, then back to the page (303) |
//! | `POST /observer/login` | `token=…` (a form): a session cookie |
//! | `GET /observer/events[?node=NAME]` | the event stream (`text/event-stream`): a `snapshot`, then `tree` and `stats` frames; another member's view is polled every second through the cluster, once however many watch it; 503 past 64 viewers |
//! | `POST /observer/action` | a control request the page may send ([`Policy::admin_page`](crate::control::policy::Policy::admin_page); `"node"` for another member), run and audited as on the control socket; the control reply |
//! | `POST /observer/logout` | ends the session |
//!
//! Any other method on these paths is 405 with `Allow` (a CORS preflight
//! included: none is ever granted); a client throttled for failed
//! authentications gets 429 with `Retry-After` on every route.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{
    HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE, LOCATION, RETRY_AFTER, SET_COOKIE, WWW_AUTHENTICATE,
    X_CONTENT_TYPE_OPTIONS,
};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

use crate::admin::access::{csrf_ok, host_allowed, Proof, Verdict, COOKIE_NAME, SESSION};
use crate::control::caller::Caller;
use crate::control::execute::execute;
use crate::control::protocol;
use crate::node::Node;
use crate::observer::frames;
use crate::observer::shared::MAX_VIEWERS;

/// The page: one file, script and style inside, no build step, no CDN.
const PAGE: &str = include_str!("observer.html");

/// The login form.
const LOGIN: &str = include_str!("login.html");

/// The largest request body (an action or a login).
const MAX_BODY: usize = 16 * 1024;

/// A response body: whole, or a stream.
pub(crate) type Body = UnsyncBoxBody<Bytes, Infallible>;

fn whole(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()).boxed_unsync());
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn json_reply(status: StatusCode, value: &Value) -> Response<Body> {
    whole(status, "application/json", value.to_string())
}

fn refused(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    json_reply(
        status,
        &json!({"ok": false, "error": {"code": code, "message": message}}),
    )
}

/// The page's own headers: no framing by others, no outside scripts.
fn page(body: &'static str) -> Response<Body> {
    let mut r = whole(StatusCode::OK, "text/html; charset=utf-8", body);
    let h = r.headers_mut();
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    r
}

/// What the listener knows of itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bound {
    /// Whether it is bound to a loopback address (then the `Host` must be a
    /// loopback name).
    pub loopback: bool,
}

/// 429 with `Retry-After`.
fn throttled(retry_after_secs: u64) -> Response<Body> {
    let mut r = refused(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_failed_authentications",
        "too many failed authentications from this address; see Retry-After",
    );
    r.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(retry_after_secs));
    r
}

/// Counts a failed credential of `peer` on `surface`: the 429 to answer
/// when that failure throttles it.
fn failed(node: &Node, peer: SocketAddr, surface: &'static str) -> Option<Response<Body>> {
    node.auth
        .failed(node.limiter.key_of(peer.ip()), peer.ip(), surface)
        .map(throttled)
}

/// How to log in, for a 401.
const LOG_IN: &str =
    "log in: open the link `diem ctl observe` prints, or send `Authorization: Bearer <admin.token>`";

/// 401 with `message`.
fn unauthorized(message: &str) -> Response<Body> {
    let mut r = refused(StatusCode::UNAUTHORIZED, "unauthorized", message);
    r.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"diem-admin\""),
    );
    r
}

/// Answers one request of the admin listener.
pub(crate) async fn handle(
    node: Arc<Node>,
    bound: Bound,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Result<Response<Body>, Infallible> {
    let headers = req.headers();
    if !host_allowed(bound.loopback, headers) {
        return Ok(refused(
            StatusCode::MISDIRECTED_REQUEST,
            "bad_host",
            "this listener answers only to a loopback host name",
        ));
    }
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let allow = match path.as_str() {
        "/" | "/observer/" | "/observer" | "/observer/events" => Some("GET, HEAD"),
        "/observer/login" => Some("GET, HEAD, POST"),
        "/observer/action" | "/observer/logout" => Some("POST"),
        _ => None,
    };
    let Some(allow) = allow else {
        return Ok(refused(StatusCode::NOT_FOUND, "not_found", "no such admin route"));
    };
    let method_ok = match method {
        Method::GET | Method::HEAD => allow.contains("GET"),
        Method::POST => allow.contains("POST"),
        _ => false,
    };
    if !method_ok {
        // Never a CORS grant: a preflight (OPTIONS) gets this too.
        let mut r = refused(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "method not allowed here",
        );
        r.headers_mut().insert(ALLOW, HeaderValue::from_static(allow));
        return Ok(r);
    }
    let key = node.limiter.key_of(peer.ip());
    if let Some(retry) = node.auth.throttled(key) {
        return Ok(throttled(retry));
    }
    let token = node.with_config(|c| c.admin.token.clone());
    if path == "/observer/login" {
        return Ok(match method {
            Method::POST => login(&node, &token, req, peer).await,
            _ => redeem(&node, &token, req.uri().query(), peer),
        });
    }
    if matches!(path.as_str(), "/" | "/observer/") {
        let mut r = whole(StatusCode::FOUND, "text/plain", "");
        r.headers_mut()
            .insert(LOCATION, HeaderValue::from_static("/observer"));
        return Ok(r);
    }
    let proof = match node.admin.verdict(&token, headers) {
        Verdict::Admitted(proof) => proof,
        Verdict::Anonymous if path == "/observer" => return Ok(login_page()),
        Verdict::Anonymous => return Ok(unauthorized(LOG_IN)),
        Verdict::Refused => {
            if let Some(refusal) = failed(&node, peer, "admin listener") {
                return Ok(refusal);
            }
            // A stale cookie (a restart, a new token): the form again.
            return Ok(if path == "/observer" {
                login_page()
            } else {
                unauthorized(LOG_IN)
            });
        }
    };
    Ok(match path.as_str() {
        "/observer" => page(PAGE),
        "/observer/events" => events(node, req.uri().query()).await,
        "/observer/action" => action(&node, req, peer, &proof).await,
        _ if csrf_ok(headers) => {
            node.admin.logout(headers);
            tracing::info!(target: "diem::audit", client = %peer, via = "admin", %proof, "admin logout");
            let mut r = json_reply(StatusCode::OK, &json!({"ok": true}));
            if let Ok(v) = HeaderValue::from_str(&format!(
                "{COOKIE_NAME}=; HttpOnly; SameSite=Strict; Path=/observer; Max-Age=0"
            )) {
                r.headers_mut().insert(SET_COOKIE, v);
            }
            r
        }
        _ => refused(
            StatusCode::FORBIDDEN,
            "csrf",
            "a logout must come from the page itself",
        ),
    })
}

/// The login form, with 401: nothing of the tree is shown.
fn login_page() -> Response<Body> {
    let mut r = page(LOGIN);
    *r.status_mut() = StatusCode::UNAUTHORIZED;
    r
}

/// A response that sets a new session's cookie.
fn with_session(mut r: Response<Body>, id: &str) -> Response<Body> {
    let cookie = format!(
        "{COOKIE_NAME}={id}; HttpOnly; SameSite=Strict; Path=/observer; Max-Age={}",
        SESSION.as_secs()
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(SET_COOKIE, v);
    }
    r
}

/// `GET /observer/login?ticket=…`: spends a login link of `diem ctl
/// observe` for a session, then back to the page.
fn redeem(node: &Node, token: &str, query: Option<&str>, peer: SocketAddr) -> Response<Body> {
    let ticket = query
        .and_then(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "ticket")
                .map(|(_, v)| v.into_owned())
        })
        .unwrap_or_default();
    match node.admin.redeem(token, &ticket) {
        Some((id, label)) => {
            tracing::info!(target: "diem::audit", client = %peer, via = "admin", session = %label, "admin login (a link of ctl observe)");
            let mut r = whole(StatusCode::SEE_OTHER, "text/plain", "");
            r.headers_mut()
                .insert(LOCATION, HeaderValue::from_static("/observer"));
            with_session(r, &id)
        }
        None => failed(node, peer, "admin login link").unwrap_or_else(|| {
            unauthorized("this login link is unknown, spent or expired: run `diem ctl observe` for a new one")
        }),
    }
}

/// The request's body, at most [`MAX_BODY`] bytes.
async fn read_body(req: Request<Incoming>) -> Result<Bytes, Response<Body>> {
    match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => Ok(b.to_bytes()),
        Err(_) => Err(refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "the request body is larger than 16 KiB",
        )),
    }
}

async fn login(node: &Node, token: &str, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
    if !csrf_ok(req.headers()) {
        return refused(
            StatusCode::FORBIDDEN,
            "csrf",
            "a login must come from the page itself",
        );
    }
    let body = match read_body(req).await {
        Ok(body) => body,
        Err(refusal) => return refusal,
    };
    let offered = form_urlencoded::parse(&body)
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    match node.admin.login(token, &offered) {
        Some((id, label)) => {
            tracing::info!(target: "diem::audit", client = %peer, via = "admin", session = %label, "admin login (the token)");
            with_session(json_reply(StatusCode::OK, &json!({"ok": true})), &id)
        }
        None => failed(node, peer, "admin login").unwrap_or_else(|| {
            refused(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                if token.is_empty() {
                    "no admin.token is set: open the link `diem ctl observe` prints"
                } else {
                    "wrong token"
                },
            )
        }),
    }
}

async fn action(node: &Arc<Node>, req: Request<Incoming>, peer: SocketAddr, who: &Proof) -> Response<Body> {
    if !csrf_ok(req.headers()) {
        return refused(
            StatusCode::FORBIDDEN,
            "csrf",
            "an action must come from the page itself (X-Diem-Csrf, same origin)",
        );
    }
    let body = match read_body(req).await {
        Ok(body) => body,
        Err(refusal) => return refusal,
    };
    let line = String::from_utf8_lossy(&body).into_owned();
    match protocol::parse_request(&line) {
        Ok(request) if request.command.policy().admin_page => {}
        Ok(_) => {
            return refused(
                StatusCode::FORBIDDEN,
                "not_allowed",
                "the page may run kill (not forced), restart, scale, reload and log-level",
            )
        }
        Err((_, e)) => return refused(StatusCode::BAD_REQUEST, e.code, &e.message),
    }
    let caller = Caller::remote(format!("admin-http {peer} {who}"));
    let reply = execute(node, &line, &caller).await;
    let value: Value = serde_json::from_str(&reply).unwrap_or(Value::Null);
    let status = if value["ok"] == Value::Bool(true) {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    json_reply(status, &value)
}

/// The event stream of this node, or of another member (`?node=NAME`);
/// 503 past [`MAX_VIEWERS`] viewers.
async fn events(node: Arc<Node>, query: Option<&str>) -> Response<Body> {
    let member = query.and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "node")
            .map(|(_, v)| v.into_owned())
    });
    let Some(seat) = node.observer.seat() else {
        let mut r = refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_viewers",
            &format!("{MAX_VIEWERS} viewers watch already; try again later"),
        );
        r.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("5"));
        return r;
    };
    let this = node.with_config(|c| c.cluster.enabled.then(|| c.cluster.member_name(&c.node)));
    let stream = match member.filter(|m| Some(m) != this.as_ref()) {
        Some(member) => remote_stream(&node, &member).boxed(),
        None => local_stream(node).await.boxed(),
    };
    // The seat is given back when the stream ends or the viewer leaves.
    let stream = stream.map(move |b| {
        let _seat = &seat;
        Ok::<_, Infallible>(Frame::data(b))
    });
    let body = StreamBody::new(stream);
    let mut r = Response::new(BodyExt::boxed_unsync(body));
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    r
}

/// A snapshot, then the publisher's frames; ends (the browser reconnects
/// and starts over) if this viewer falls too far behind.
async fn local_stream(node: Arc<Node>) -> impl futures::Stream<Item = Bytes> + Send {
    let viewer = node.observer.subscribe();
    let snapshot = frames::snapshot(&node, &node.observer.history(), &node.observer.since(0)).await;
    let frames = futures::stream::unfold(viewer, |mut viewer| async move {
        match viewer.frames.recv().await {
            Ok(frame) => Some((frame, viewer)),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                tracing::info!(behind = n, "observer: a slow viewer was dropped");
                None
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => None,
        }
    });
    futures::stream::once(async move { snapshot }).chain(frames)
}

/// Another member's view: the latest frame of its one shared feed, then
/// each new one (a viewer that falls behind skips to the latest).
fn remote_stream(node: &Arc<Node>, member: &str) -> impl futures::Stream<Item = Bytes> + Send {
    let feed = node.observer.remote_feed(member, |tx| {
        tokio::spawn(poll_member(node.clone(), member.to_owned(), tx));
    });
    futures::stream::unfold((feed, true), |(mut feed, first)| async move {
        let ready = first && feed.borrow().is_some();
        if !ready && feed.changed().await.is_err() {
            return None;
        }
        let frame = feed.borrow_and_update().clone()?;
        Some((frame, (feed, false)))
    })
}

/// Polls `member`'s tree and stats every second into `tx`, while anyone
/// watches (a receiver besides the node's own map entry).
async fn poll_member(node: Arc<Node>, member: String, tx: tokio::sync::watch::Sender<Option<Bytes>>) {
    let origin = node.with_config(|c| format!("member={} observer-feed", c.cluster.member_name(&c.node)));
    loop {
        let ask = |cmd: &'static str| {
            let (member, origin) = (member.clone(), origin.clone());
            async move {
                crate::cluster::remote::control(
                    &member,
                    json!({"cmd": cmd}).to_string(),
                    origin,
                    Duration::from_secs(5),
                )
                .await
                .ok()
                .and_then(|line| serde_json::from_str::<Value>(&line).ok())
            }
        };
        let (tree, stats) = tokio::join!(ask("tree"), ask("stats"));
        let data = match (tree, stats) {
            (Some(tree), Some(stats)) => json!({
                "node": member,
                "member": member,
                "remote": true,
                "members": frames::members(&node),
                "tree": tree["tree"],
                "stats": stats,
                "history": [],
                "events": [],
            }),
            _ => {
                json!({"node": member, "member": member, "remote": true, "unreachable": true, "members": frames::members(&node)})
            }
        };
        tx.send_replace(Some(frames::frame("snapshot", &data)));
        tokio::time::sleep(Duration::from_secs(1)).await;
        if tx.receiver_count() <= 1 {
            return;
        }
    }
}
