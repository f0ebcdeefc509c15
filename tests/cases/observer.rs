//! The observer page in a real browser (headless Chromium, driven through
//! the DevTools protocol), its event stream, and the admin listener's
//! access rules.

use std::time::{Duration, Instant};

use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::page::ScreenshotParams;
use futures::StreamExt;
use serde_json::{json, Value};

use crate::support::load::{Load, Plan};
use crate::support::server::{eventually, run_diem, tree_node, Options, TestServer};

const TOKEN: &str = "observer-t0ken-0123456789";

/// The observer's URL, from `ctl observe` (once the admin listener, started
/// after the HTTP listener, is up).
async fn observer_url(s: &TestServer) -> String {
    observe(s).await["url"].as_str().unwrap_or_default().to_owned()
}

/// `ctl observe`'s reply, once the admin listener is up.
pub(super) async fn observe(s: &TestServer) -> Value {
    eventually(Duration::from_secs(10), "the admin listener is up", || async {
        let reply = s.ctl(json!({"cmd": "observe"})).await;
        reply["url"].is_string().then_some(reply)
    })
    .await
}

/// The admin listener's `host:port`, from `ctl observe`'s page URL.
pub(super) async fn admin_addr(s: &TestServer) -> String {
    observe(s).await["page"]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches("http://")
        .trim_end_matches("/observer")
        .to_owned()
}

/// A session cookie (`diem_admin=…`) from the `Set-Cookie` of `head`.
pub(super) fn cookie_of(head: &str) -> String {
    let line = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no Set-Cookie: {head}"));
    assert!(
        line.contains("HttpOnly") && line.contains("SameSite=Strict"),
        "{line}"
    );
    line.split_once(':')
        .unwrap()
        .1
        .trim()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

/// A session of the operator at the host: `ctl observe`'s one-time link,
/// opened once. Returns (admin address, `Cookie` value).
pub(super) async fn operator_session(s: &TestServer) -> (String, String) {
    let reply = observe(s).await;
    let link = reply["url"].as_str().unwrap().to_owned();
    let addr = admin_addr(s).await;
    let path = link.trim_start_matches(&format!("http://{addr}"));
    let (status, head, _) = admin(&addr, "GET", path, &[], "").await;
    assert_eq!(status, 303, "the login link: {head}");
    assert!(
        head.contains("location: /observer") || head.contains("Location: /observer"),
        "{head}"
    );
    (addr, cookie_of(&head))
}

/// Headless Chromium (Debian's `chromium`), its event handler running.
pub(super) async fn browser(profile: &std::path::Path) -> (Browser, tokio::task::JoinHandle<()>) {
    let chromium = crate::support::cluster::which("chromium").unwrap_or_else(|| {
        panic!("chromium is not installed: scripts/test installs it (apt-get install chromium)")
    });
    let config = BrowserConfig::builder()
        .chrome_executable(chromium)
        .no_sandbox()
        .user_data_dir(profile)
        .window_size(1400, 1000)
        .viewport(None)
        .arg("--disable-gpu")
        .arg("--disable-dev-shm-usage")
        .build()
        .unwrap();
    let (browser, mut handler) = Browser::launch(config).await.unwrap();
    let events = tokio::spawn(async move { while handler.next().await.is_some() {} });
    (browser, events)
}

/// Evaluates `js` in the page and returns its value.
pub(super) async fn eval(page: &chromiumoxide::Page, js: &str) -> Value {
    page.evaluate(js)
        .await
        .map(|r| r.into_value::<Value>().unwrap_or(Value::Null))
        .unwrap_or(Value::Null)
}

/// The restart count the page shows for `path`.
async fn restarts_shown(page: &chromiumoxide::Page, path: &str) -> Option<u64> {
    let js = format!(
        "(() => {{ const e = document.querySelector('.row[data-path=\"{path}\"] [data-restarts]'); return e ? Number(e.dataset.restarts) : null; }})()"
    );
    eval(page, &js).await.as_u64()
}

/// The observer page of `s` open in headless Chromium, once the tree has
/// arrived over its event stream.
struct OpenPage {
    _profile: tempfile::TempDir,
    browser: Browser,
    events: tokio::task::JoinHandle<()>,
    page: chromiumoxide::Page,
}

impl OpenPage {
    async fn open(s: &TestServer) -> Self {
        let url = observer_url(s).await;
        let profile = tempfile::tempdir().unwrap();
        let (browser, events) = browser(profile.path()).await;
        let page = browser.new_page(url.as_str()).await.unwrap();
        eventually(Duration::from_secs(20), "the page shows the tree", || async {
            (restarts_shown(&page, "diem/workers/1").await == Some(0)).then_some(())
        })
        .await;
        Self {
            _profile: profile,
            browser,
            events,
            page,
        }
    }

    async fn close(mut self) {
        self.browser.close().await.unwrap();
        let _ = self.browser.wait().await;
        self.events.abort();
    }
}

#[tokio::test]
async fn the_page_shows_a_restart_without_a_reload_and_its_actions_are_audited() {
    let s = TestServer::start(Options::no_limit()).await;
    // The tree arrives over the event stream.
    let open = OpenPage::open(&s).await;
    let page = &open.page;
    for path in [
        "diem",
        "diem/store",
        "diem/store/postgres",
        "diem/limiter",
        "diem/listener",
        "diem/workers",
    ] {
        let shown = eval(
            page,
            &format!("!!document.querySelector('.row[data-path=\"{path}\"]')"),
        )
        .await;
        assert_eq!(shown, Value::Bool(true), "{path} is on the page");
    }
    // A worker killed over the control socket: its count rises on the page
    // within a second, without a reload (the marker survives).
    eval(page, "window.__marker = 42").await;
    let killed = Instant::now();
    let reply = s.ctl(json!({"cmd": "kill", "path": "diem/workers/1"})).await;
    assert_eq!(reply["ok"], true, "{reply}");
    loop {
        if restarts_shown(page, "diem/workers/1").await == Some(1) {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(1),
            "the restart did not reach the page within a second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let shown_after = killed.elapsed();
    assert_eq!(
        eval(page, "window.__marker").await,
        json!(42),
        "the page was not reloaded"
    );
    assert_eq!(
        eval(
            page,
            "document.getElementById('events').textContent.includes('diem/workers/1')"
        )
        .await,
        Value::Bool(true),
        "the event log lists the restart"
    );
    eprintln!("kill to page: {shown_after:?}");

    // An action from the page: scale the pool (the confirmation accepted).
    eval(
        page,
        "window.confirm = () => true; \
         document.querySelector('[data-scale-for=\"diem/workers\"]').value = 6; \
         document.querySelector('button[data-act=\"scale\"][data-path=\"diem/workers\"]').click(); true",
    )
    .await;
    eventually(Duration::from_secs(10), "the pool is scaled to 6", || async {
        let tree = s.ctl(json!({"cmd": "tree"})).await;
        (tree_node(&tree, "diem/workers")["size"] == 6).then_some(())
    })
    .await;
    // The log comes through a pipe the test reads on its own thread: the
    // line may arrive after the pool has been seen at 6.
    eventually(
        Duration::from_secs(5),
        "the page's action in the audit log",
        || async {
            s.logs()
                .lines()
                .any(|l| {
                    l.contains("diem::audit")
                        && l.contains("admin-http")
                        && l.contains("session=")
                        && l.contains("\"scale\"")
                })
                .then_some(())
        },
    )
    .await;

    // What a reply (another member's, say) puts in a number's place reaches
    // the page as text, never as HTML.
    let injected = eval(
        page,
        "(() => { const w = state.tree.children.find((c) => c.path === 'diem/workers'); \
         w.restarts = '<b id=\"pwn1\">x</b>'; w.size = '<b id=\"pwn2\">x</b>'; renderTree(); \
         renderMembers([{ name: 'm', state: 'up', addr: 'a', rtt_ms: '<b id=\"pwn3\">x</b>' }]); \
         return ['pwn1', 'pwn2', 'pwn3'].some((id) => document.getElementById(id)); })()",
    )
    .await;
    assert_eq!(injected, Value::Bool(false), "a reply's fields are escaped");

    // A screenshot with a little traffic on the plots.
    let load = Load::start(s.addr, Plan::new("/hitokoto/v2/", 4, Duration::from_secs(6)));
    tokio::time::sleep(Duration::from_secs(6)).await;
    load.join().await;
    let shot = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("observer.png");
    page.save_screenshot(ScreenshotParams::builder().full_page(true).build(), &shot)
        .await
        .unwrap();
    if let Ok(to) = std::env::var("DIEM_OBSERVER_SCREENSHOT") {
        std::fs::copy(&shot, to).unwrap();
    }
    open.close().await;
}

/// A raw HTTP/1.1 exchange with the admin listener: (status, head, body).
pub(super) async fn admin(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    // An event stream never ends: read what comes within a moment.
    let _ = tokio::time::timeout(Duration::from_millis(500), stream.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

#[tokio::test]
async fn off_loopback_the_admin_listener_asks_for_the_token() {
    // Refused at start without a token.
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run_diem(
        dir.path(),
        &["config", "check"],
        &[("DIEM_ADMIN__ADDR", "0.0.0.0:8081")],
    )
    .await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("admin.token"), "{err}");

    let s = TestServer::start(
        Options::no_limit()
            .env("DIEM_ADMIN__ADDR", "0.0.0.0:0")
            .env("DIEM_ADMIN__TOKEN", TOKEN),
    )
    .await;
    let addr = admin_addr(&s).await;
    let scale = r#"{"cmd":"scale","pool":"diem/workers","n":5}"#;
    let csrf = ("X-Diem-Csrf", "1");

    // Without the token: the login form, and nothing else.
    let (status, _, body) = admin(&addr, "GET", "/observer", &[], "").await;
    assert_eq!(status, 401);
    assert!(body.contains("Admin token"), "the login form: {body}");
    assert!(!body.contains("diem/workers"), "nothing of the tree: {body}");
    assert_eq!(admin(&addr, "GET", "/observer/events", &[], "").await.0, 401);
    assert_eq!(
        admin(&addr, "POST", "/observer/action", &[csrf], scale).await.0,
        401
    );
    let bad = format!("Bearer {}", "x".repeat(TOKEN.len()));
    assert_eq!(
        admin(
            &addr,
            "POST",
            "/observer/action",
            &[csrf, ("Authorization", &bad)],
            scale
        )
        .await
        .0,
        401
    );
    let tree = s.ctl(json!({"cmd": "tree"})).await;
    assert_eq!(tree_node(&tree, "diem/workers")["size"], 4, "no action ran");

    // With it: a bearer token, or a login's session cookie.
    let bearer = format!("Bearer {TOKEN}");
    let (status, _, body) = admin(
        &addr,
        "POST",
        "/observer/action",
        &[csrf, ("Authorization", &bearer)],
        scale,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // The CSRF defence holds even with the token.
    let (status, _, _) = admin(
        &addr,
        "POST",
        "/observer/action",
        &[("Authorization", &bearer)],
        scale,
    )
    .await;
    assert_eq!(status, 403);
    let (status, _, _) = admin(
        &addr,
        "POST",
        "/observer/action",
        &[
            csrf,
            ("Authorization", &bearer),
            ("Origin", "http://evil.example"),
        ],
        scale,
    )
    .await;
    assert_eq!(status, 403);
    let form = ("Content-Type", "application/x-www-form-urlencoded");
    assert_eq!(
        admin(&addr, "POST", "/observer/login", &[csrf, form], "token=wrong")
            .await
            .0,
        401
    );
    assert_eq!(
        admin(
            &addr,
            "POST",
            "/observer/login",
            &[form],
            &format!("token={TOKEN}")
        )
        .await
        .0,
        403
    );
    let (status, head, _) = admin(
        &addr,
        "POST",
        "/observer/login",
        &[csrf, form],
        &format!("token={TOKEN}"),
    )
    .await;
    assert_eq!(status, 200, "{head}");
    let cookie = cookie_of(&head);
    let (status, head, body) = admin(&addr, "GET", "/observer/events", &[("Cookie", &cookie)], "").await;
    assert_eq!(status, 200, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/event-stream"),
        "{head}"
    );
    assert!(body.contains("event: snapshot"), "{body}");
    // The token is never echoed or logged.
    assert!(!s.logs().contains(TOKEN));
}

#[tokio::test]
async fn a_storm_of_restarts_is_coalesced_to_ten_frames_a_second() {
    let s = TestServer::start(Options::no_limit()).await;
    let (addr, cookie) = operator_session(&s).await;
    // A storm of worker kills with a viewer: at most 10 frames a second.
    let viewer = tokio::spawn({
        let addr = addr.clone();
        async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
            stream
                .write_all(
                    format!("GET /observer/events HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\n\r\n")
                        .as_bytes(),
                )
                .await
                .unwrap();
            let mut out = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(3), stream.read_to_end(&mut out)).await;
            String::from_utf8_lossy(&out).into_owned()
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..30 {
        let path = format!("diem/workers/{}", 1 + i % 4);
        let _ = s.ctl(json!({"cmd": "kill", "path": path})).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let text = viewer.await.unwrap();
    let frames = text.matches("\nevent: ").count() + usize::from(text.starts_with("event: "));
    let snapshot = text.matches("event: snapshot").count();
    assert_eq!(snapshot, 1, "{text}");
    // ~2.7 s of stream: a snapshot and at most 10 frames a second.
    assert!(frames <= 1 + 28, "{frames} frames in under 3 s");
    assert!(
        text.matches("event: tree").count() >= 3,
        "restarts pushed: {frames} frames"
    );
}

/// Issue 30: the page's actor table (sortable, a sparkline of each actor's
/// message rate) and a stalled worker marked stuck on the tree and in the
/// table as soon as the load sampler reports it.
#[tokio::test]
async fn the_page_marks_a_stalled_worker_stuck_and_shows_each_actor_s_load() {
    let s = TestServer::start(Options::no_limit().env("DIEM_OBSERVER__STUCK_AFTER", "100ms")).await;
    let open = OpenPage::open(&s).await;
    let page = &open.page;
    // A little traffic: the workers' rows and their sparklines fill in.
    let load = Load::start(s.addr, Plan::new("/hitokoto/v2/", 2, Duration::from_secs(3)));
    let js = "(() => { const r = document.querySelector('#actors tr[data-path=\"diem/workers/1\"]'); \
              return r ? [Number(r.children[2].textContent), r.querySelectorAll('polyline').length] : null; })()";
    eventually(
        Duration::from_secs(10),
        "a worker's load and sparkline on the page",
        || async {
            let v = eval(page, js).await;
            (v[0].as_f64().is_some_and(|r| r > 0.0) && v[1] == 1).then_some(())
        },
    )
    .await;
    load.join().await;
    // Sorted by a click on a column.
    eval(
        page,
        "document.querySelector('#actors th[data-sort=\"mailbox\"]').click()",
    )
    .await;
    assert_eq!(
        eval(page, "document.querySelector('#actors th.sorted').dataset.sort").await,
        "mailbox"
    );

    let sent = Instant::now();
    let stalled = {
        let addr = s.addr;
        tokio::spawn(async move {
            let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            c.write_all(b"GET /hitokoto/v2/ HTTP/1.1\r\nHost: x\r\nX-Diem-Fault: stall=1500\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            let mut out = Vec::new();
            let _ = c.read_to_end(&mut out).await;
        })
    };
    let marked = "(() => [...document.querySelectorAll('.row[data-stuck]')].map((r) => r.dataset.path)\
                  .concat([...document.querySelectorAll('#actors tr[data-stuck]')].map((r) => 'table:' + r.dataset.path)))()";
    let shown = eventually(
        Duration::from_secs(3),
        "the page marks the stalled worker",
        || async {
            let v = eval(page, marked).await;
            let paths: Vec<String> = serde_json::from_value(v).unwrap_or_default();
            let tree = paths.iter().any(|p| p.starts_with("diem/workers/"));
            let table = paths.iter().any(|p| p.starts_with("table:diem/workers/"));
            (tree && table).then(Instant::now)
        },
    )
    .await;
    let after = shown.duration_since(sent);
    eprintln!(
        "stall=1500: marked stuck on the page {} ms after the request was sent",
        after.as_millis()
    );
    assert!(after <= Duration::from_millis(1_000), "marked at once: {after:?}");
    stalled.await.unwrap();
    // Once the handler returns, the mark goes.
    eventually(
        Duration::from_secs(5),
        "the mark goes once the handler returns",
        || async {
            let v = eval(page, marked).await;
            (v.as_array().is_some_and(|a| a.is_empty())).then_some(())
        },
    )
    .await;
    open.close().await;
}
