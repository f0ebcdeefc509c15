//! Who may use the admin listener, and how a browser proves it.
//!
//! * **Every caller authenticates**, on loopback too: loopback is shared by
//!   every user of the host and every container of a pod, so it is no
//!   boundary. A request is admitted with the admin token
//!   (`Authorization: Bearer TOKEN`) or a session cookie (`diem_admin`,
//!   `HttpOnly`, `SameSite=Strict`, 12 h). A session comes from the login
//!   form (the token), or from a **login link**: `diem ctl observe` — whose
//!   caller the control socket has already authenticated by its peer uid —
//!   asks the node for a one-time ticket, valid for
//!   [`TICKET_LIFETIME`], and prints `…/observer/login?ticket=…` (as
//!   Jupyter's token URL). Opening it once sets the cookie; the ticket is
//!   then spent.
//! * **Sessions end when the token changes** (a `reload` that rotates
//!   `admin.token` logs every browser out), and at most [`MAX_SESSIONS`]
//!   are kept (the oldest dropped first).
//! * Whatever the address, a request that changes something (an action, a
//!   login) must carry `X-Diem-Csrf: 1` — a header a cross-site form cannot
//!   send and a cross-site script cannot send without a CORS preflight,
//!   which is never granted — and, when the browser names its `Origin`, come
//!   from this listener's own origin. On a loopback bind the `Host` must be a
//!   loopback name, so that a DNS-rebinding page cannot reach it either.
//! * Failed checks (a wrong bearer token, an unknown cookie or ticket, a
//!   wrong login) count against the client in the node's
//!   [`Guard`](crate::api::auth) like the write API's: 10 a minute, then
//!   429 even for the right credential.
//!
//! ```
//! use hyper::header::{HeaderMap, HeaderValue};
//! use diem::admin::access::same_origin;
//!
//! let mut h = HeaderMap::new();
//! h.insert("host", HeaderValue::from_static("127.0.0.1:8081"));
//! assert!(same_origin(&h));
//! h.insert("origin", HeaderValue::from_static("http://127.0.0.1:8081"));
//! assert!(same_origin(&h));
//! h.insert("origin", HeaderValue::from_static("https://evil.example"));
//! assert!(!same_origin(&h));
//! ```

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hyper::header::{HeaderMap, COOKIE, HOST, ORIGIN};
use serde::Serialize;

use crate::api::credentials::{bearer, same};

/// The session cookie's name.
pub const COOKIE_NAME: &str = "diem_admin";

/// How long a login lasts.
pub const SESSION: Duration = Duration::from_secs(12 * 3600);

/// How long a login link of `diem ctl observe` may wait to be opened.
pub const TICKET_LIFETIME: Duration = Duration::from_secs(120);

/// The header every state-changing request carries.
pub const CSRF_HEADER: &str = "x-diem-csrf";

/// Most sessions kept at once (older ones are dropped first).
pub const MAX_SESSIONS: usize = 1_000;

/// Most unspent login links kept at once (older ones are dropped first).
const MAX_TICKETS: usize = 64;

/// How a request proved who it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Proof {
    /// The admin token itself, as a bearer token.
    Token,
    /// A session, named by its label (not its secret id).
    Session(String),
}

impl std::fmt::Display for Proof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Proof::Token => f.write_str("bearer-token"),
            Proof::Session(label) => write!(f, "session={label}"),
        }
    }
}

/// A one-time login link (`diem ctl observe`'s reply).
#[derive(Clone, Debug, Serialize)]
pub struct LoginLink {
    /// The link: it opens a session once, within `expires_in_secs`.
    pub url: String,
    /// The page itself (a login form without a session).
    pub page: String,
    /// How long the link is valid.
    pub expires_in_secs: u64,
}

/// What a request's credentials come to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Admitted.
    Admitted(Proof),
    /// No credential at all.
    Anonymous,
    /// A credential that is wrong or no longer valid (counted as a failure).
    Refused,
}

/// One logged-in browser.
#[derive(Debug)]
struct Session {
    until: Instant,
    label: String,
}

/// The sessions, the unspent tickets and the token they were made under.
#[derive(Debug, Default)]
struct State {
    sessions: HashMap<String, Session>,
    tickets: HashMap<String, Instant>,
    /// The token in effect when the sessions were made: when the
    /// configured one differs, every session ends.
    token: String,
}

impl State {
    /// Ends every session if the token changed since they were made.
    fn follow(&mut self, token: &str) {
        if self.token != token {
            if !self.sessions.is_empty() {
                tracing::info!(
                    target: "diem::audit",
                    ended = self.sessions.len(),
                    "admin.token changed: every admin session ended"
                );
            }
            self.sessions.clear();
            self.token = token.to_owned();
        }
    }
}

/// The listener's logged-in sessions and unspent login links.
#[derive(Debug, Default)]
pub struct Access {
    state: Mutex<State>,
}

/// 256 random bits from the operating system, as 64 hex digits.
fn secret() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

impl Access {
    /// What the request's credentials come to, `token` being the
    /// configured admin token (empty: none).
    pub fn verdict(&self, token: &str, headers: &HeaderMap) -> Verdict {
        if let Some(given) = bearer(headers) {
            return if !token.is_empty() && same(given, token.as_bytes()) {
                Verdict::Admitted(Proof::Token)
            } else {
                Verdict::Refused
            };
        }
        let Some(id) = session_of(headers) else {
            return Verdict::Anonymous;
        };
        let Ok(mut state) = self.state.lock() else {
            return Verdict::Refused;
        };
        state.follow(token);
        let now = Instant::now();
        match state.sessions.get(id) {
            Some(s) if now < s.until => Verdict::Admitted(Proof::Session(s.label.clone())),
            _ => Verdict::Refused,
        }
    }

    /// Checks `offered` against `token`; on success a new session id and
    /// its label.
    pub fn login(&self, token: &str, offered: &str) -> Option<(String, String)> {
        if token.is_empty() || !same(offered.as_bytes(), token.as_bytes()) {
            return None;
        }
        Some(self.open_session(token))
    }

    /// A one-time login link's ticket, valid for [`TICKET_LIFETIME`].
    pub fn mint_ticket(&self) -> String {
        let ticket = secret();
        if let Ok(mut state) = self.state.lock() {
            let now = Instant::now();
            state.tickets.retain(|_, until| *until > now);
            if state.tickets.len() >= MAX_TICKETS {
                if let Some(oldest) = state
                    .tickets
                    .iter()
                    .min_by_key(|(_, u)| **u)
                    .map(|(k, _)| k.clone())
                {
                    state.tickets.remove(&oldest);
                }
            }
            state.tickets.insert(ticket.clone(), now + TICKET_LIFETIME);
        }
        ticket
    }

    /// A one-time login link to the admin listener bound at `addr` (on
    /// `port`: `addr` may ask for any port): what `diem ctl observe` prints.
    pub fn login_link(&self, addr: SocketAddr, port: u16) -> LoginLink {
        let host = match addr.ip() {
            ip if ip.is_unspecified() => "127.0.0.1".to_owned(),
            IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        let ticket = self.mint_ticket();
        LoginLink {
            url: format!("http://{host}:{port}/observer/login?ticket={ticket}"),
            page: format!("http://{host}:{port}/observer"),
            expires_in_secs: TICKET_LIFETIME.as_secs(),
        }
    }

    /// Spends `ticket`; on success a new session id and its label.
    pub fn redeem(&self, token: &str, ticket: &str) -> Option<(String, String)> {
        let valid = {
            let mut state = self.state.lock().ok()?;
            // Constant time per stored ticket, so a guess learns nothing
            // from how long the look-up took.
            let found = state
                .tickets
                .keys()
                .find(|k| same(k.as_bytes(), ticket.as_bytes()))
                .cloned();
            found
                .and_then(|k| state.tickets.remove(&k))
                .is_some_and(|until| Instant::now() < until)
        };
        valid.then(|| self.open_session(token))
    }

    fn open_session(&self, token: &str) -> (String, String) {
        let id = secret();
        // A short public name for the audit log (the id itself is secret).
        let label = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
        if let Ok(mut state) = self.state.lock() {
            state.follow(token);
            let now = Instant::now();
            state.sessions.retain(|_, s| s.until > now);
            if state.sessions.len() >= MAX_SESSIONS {
                if let Some(oldest) = state
                    .sessions
                    .iter()
                    .min_by_key(|(_, s)| s.until)
                    .map(|(k, _)| k.clone())
                {
                    state.sessions.remove(&oldest);
                }
            }
            state.sessions.insert(
                id.clone(),
                Session {
                    until: now + SESSION,
                    label: label.clone(),
                },
            );
        }
        (id, label)
    }

    /// Ends the session the request carries.
    pub fn logout(&self, headers: &HeaderMap) {
        if let (Some(id), Ok(mut state)) = (session_of(headers), self.state.lock()) {
            state.sessions.remove(id);
        }
    }

    /// Sessions open now.
    pub fn sessions(&self) -> usize {
        let now = Instant::now();
        self.state
            .lock()
            .map(|s| s.sessions.values().filter(|s| s.until > now).count())
            .unwrap_or(0)
    }
}

/// Whether `Host` is acceptable for a listener bound to a loopback address
/// (`loopback_bind`): a loopback name only, so that a DNS-rebinding page
/// cannot reach it.
pub fn host_allowed(loopback_bind: bool, headers: &HeaderMap) -> bool {
    if !loopback_bind {
        return true;
    }
    let Some(host) = headers.get(HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The session id of the request's cookie, if any.
fn session_of(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value)
}

/// Whether the request comes from this listener's own origin: no
/// `Origin` (not a cross-site browser request) or `http://<Host>`.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    let host = headers.get(HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    !host.is_empty() && (origin == format!("http://{host}") || origin == format!("https://{host}"))
}

/// Whether a state-changing request carries the CSRF defence.
pub fn csrf_ok(headers: &HeaderMap) -> bool {
    headers.get(CSRF_HEADER).is_some_and(|v| v.as_bytes() == b"1") && same_origin(headers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn with_cookie(id: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_str(&format!("{COOKIE_NAME}={id}")).unwrap(),
        );
        h
    }

    #[test]
    fn nobody_is_admitted_without_a_credential() {
        let a = Access::default();
        assert_eq!(a.verdict("", &HeaderMap::new()), Verdict::Anonymous);
        assert_eq!(
            a.verdict("0123456789abcdef", &HeaderMap::new()),
            Verdict::Anonymous
        );
        assert_eq!(a.verdict("", &with_cookie("made-up")), Verdict::Refused);
    }

    #[test]
    fn a_ticket_opens_one_session_once() {
        let a = Access::default();
        let ticket = a.mint_ticket();
        let (id, label) = a.redeem("", &ticket).unwrap();
        assert_eq!(
            a.verdict("", &with_cookie(&id)),
            Verdict::Admitted(Proof::Session(label))
        );
        assert!(a.redeem("", &ticket).is_none(), "a ticket is spent once");
        assert!(a.redeem("", "0000").is_none());
    }

    #[test]
    fn a_new_token_ends_every_session() {
        let a = Access::default();
        let (id, _) = a.login("old-token-0123456789", "old-token-0123456789").unwrap();
        let (by_ticket, _) = a.redeem("old-token-0123456789", &a.mint_ticket()).unwrap();
        assert!(matches!(
            a.verdict("old-token-0123456789", &with_cookie(&id)),
            Verdict::Admitted(_)
        ));
        assert_eq!(
            a.verdict("new-token-0123456789", &with_cookie(&id)),
            Verdict::Refused
        );
        assert_eq!(
            a.verdict("new-token-0123456789", &with_cookie(&by_ticket)),
            Verdict::Refused
        );
        assert_eq!(a.sessions(), 0);
    }

    #[test]
    fn sessions_and_tickets_are_bounded() {
        let a = Access::default();
        for _ in 0..MAX_SESSIONS + 10 {
            let _ = a.redeem("", &a.mint_ticket());
        }
        assert_eq!(a.sessions(), MAX_SESSIONS);
        for _ in 0..MAX_TICKETS * 2 {
            let _ = a.mint_ticket();
        }
        assert!(a.state.lock().unwrap().tickets.len() <= MAX_TICKETS);
    }
}
