//! What the admin listener answers.
//!
//! | request | answer |
//! |---|---|
//! | `GET /observer` | the page (or, when the token is asked for and none was given, the login form) |
//! | `GET /observer/events[?node=NAME]` | the event stream (`text/event-stream`): a `snapshot`, then `tree` and `stats` frames; another member's view is polled every second through the cluster |
//! | `POST /observer/action` | a control request (`kill`, `restart`, `scale`, `reload`, `log-level`; `"node"` for another member), run and audited as on the control socket; the control reply |
//! | `POST /observer/login` | `token=…` (a form): a session cookie, then back to the page |
//! | `POST /observer/logout` | ends the session |

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, LOCATION, SET_COOKIE, X_CONTENT_TYPE_OPTIONS};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

use crate::admin::access::{csrf_ok, Access, COOKIE_NAME, SESSION};
use crate::api::auth::FAILURE_LIMIT;
use crate::control::commands::{self, Caller};
use crate::control::protocol::{self, Command};
use crate::node::Node;
use crate::observer::frames;

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

/// The commands the page may run.
fn allowed(command: &Command) -> bool {
    matches!(
        command,
        Command::Kill { .. }
            | Command::Restart { .. }
            | Command::Scale { .. }
            | Command::Reload
            | Command::LogLevel { .. }
    )
}

/// Answers one request of the admin listener.
pub(crate) async fn handle(
    node: Arc<Node>,
    access: Arc<Access>,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Result<Response<Body>, Infallible> {
    let headers = req.headers();
    if !access.host_allowed(headers) {
        return Ok(refused(
            StatusCode::MISDIRECTED_REQUEST,
            "bad_host",
            "this listener answers only to a loopback host name",
        ));
    }
    let token = node.with_config(|c| c.admin.token.clone());
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    if method == Method::POST && path == "/observer/login" {
        return Ok(login(&node, &access, &token, req, peer).await);
    }
    let admitted = access.admits(&token, headers);
    Ok(match (method, path.as_str()) {
        (Method::GET, "/" | "/observer/") => {
            let mut r = whole(StatusCode::FOUND, "text/plain", "");
            r.headers_mut()
                .insert(LOCATION, HeaderValue::from_static("/observer"));
            r
        }
        (Method::GET, "/observer") if admitted => page(PAGE),
        (Method::GET, "/observer") => page(LOGIN),
        (Method::GET, "/observer/events") if admitted => events(node, req.uri().query()).await,
        (Method::POST, "/observer/action") if admitted => action(&node, req, peer).await,
        (Method::POST, "/observer/logout") if csrf_ok(headers) => {
            access.logout(headers);
            let mut r = json_reply(StatusCode::OK, &json!({"ok": true}));
            if let Ok(v) = HeaderValue::from_str(&format!(
                "{COOKIE_NAME}=; HttpOnly; SameSite=Strict; Path=/observer; Max-Age=0"
            )) {
                r.headers_mut().insert(SET_COOKIE, v);
            }
            r
        }
        (_, "/observer/events" | "/observer/action") => {
            if crate::api::auth::bearer(headers).is_some() {
                let key = node.limiter.key_of(peer.ip());
                let _ = node.auth_failures.check(key, &FAILURE_LIMIT);
                tracing::info!(client = %peer.ip(), "failed authentication on the admin listener");
            }
            refused(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "log in at /observer, or send `Authorization: Bearer <admin.token>`",
            )
        }
        _ => refused(StatusCode::NOT_FOUND, "not_found", "no such admin route"),
    })
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

async fn login(
    node: &Node,
    access: &Access,
    token: &str,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Response<Body> {
    if !csrf_ok(req.headers()) {
        return refused(
            StatusCode::FORBIDDEN,
            "csrf",
            "a login must come from the page itself",
        );
    }
    let key = node.limiter.key_of(peer.ip());
    let before = node.auth_failures.peek(key, &FAILURE_LIMIT);
    if before.limited {
        return refused(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_failed_authentications",
            "too many failed logins from this address; wait a minute",
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
    match access.login(token, &offered) {
        Some(id) => {
            tracing::info!(target: "diem::audit", client = %peer, via = "admin", "admin login");
            let mut r = json_reply(StatusCode::OK, &json!({"ok": true}));
            let cookie = format!(
                "{COOKIE_NAME}={id}; HttpOnly; SameSite=Strict; Path=/observer; Max-Age={}",
                SESSION.as_secs()
            );
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(SET_COOKIE, v);
            }
            r
        }
        None => {
            let _ = node.auth_failures.check(key, &FAILURE_LIMIT);
            tracing::info!(target: "diem::audit", client = %peer, via = "admin", "admin login refused");
            refused(StatusCode::UNAUTHORIZED, "unauthorized", "wrong token")
        }
    }
}

async fn action(node: &Arc<Node>, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
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
        Ok(request) if allowed(&request.command) => {}
        Ok(_) => {
            return refused(
                StatusCode::FORBIDDEN,
                "not_allowed",
                "the page may run kill, restart, scale, reload and log-level",
            )
        }
        Err((_, e)) => return refused(StatusCode::BAD_REQUEST, e.code, &e.message),
    }
    let caller = Caller::admin(peer);
    let reply = commands::execute(node, &line, &caller).await;
    let value: Value = serde_json::from_str(&reply).unwrap_or(Value::Null);
    let status = if value["ok"] == Value::Bool(true) {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    json_reply(status, &value)
}

/// The event stream of this node, or of another member (`?node=NAME`).
async fn events(node: Arc<Node>, query: Option<&str>) -> Response<Body> {
    let member = query.and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "node")
            .map(|(_, v)| v.into_owned())
    });
    let this = node.with_config(|c| c.cluster.enabled.then(|| c.cluster.member_name(&c.node)));
    let stream = match member.filter(|m| Some(m) != this.as_ref()) {
        Some(member) => remote_stream(node, member).boxed(),
        None => local_stream(node).await.boxed(),
    };
    let body = StreamBody::new(stream.map(|b| Ok::<_, Infallible>(Frame::data(b))));
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

/// Another member's view, polled every second through the cluster.
fn remote_stream(node: Arc<Node>, member: String) -> impl futures::Stream<Item = Bytes> + Send {
    futures::stream::unfold((node, member, true), |(node, member, first)| async move {
        if !first {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let ask = |cmd: &'static str| {
            let member = member.clone();
            async move {
                crate::cluster::remote::control(
                    &member,
                    json!({"cmd": cmd}).to_string(),
                    "observer".into(),
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
        Some((frames::frame("snapshot", &data), (node, member, false)))
    })
}
