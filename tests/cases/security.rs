//! Every admin surface as safe as the control socket (issue 27): the admin
//! listener authenticates every caller, loopback included (another uid gets
//! nothing); a login link of `ctl observe` opens one session once; the page
//! never forces a kill; a new token ends every session; guesses are
//! throttled per client and logged at most once a second; no secret is
//! printed; runtime directories of another user are refused; viewers and
//! connections are bounded.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use serde_json::json;

use super::observer::{admin, admin_addr, observe, operator_session};
use crate::support::cluster::{members, wait_members, Certs, Plan};
use crate::support::server::{eventually, run_diem, tree_node, Options, TestServer};

const TOKEN: &str = "security-t0ken-0123456789";

/// Whether this test process may switch uid (CI runs as root).
fn root() -> bool {
    rustix::process::geteuid().is_root()
}

/// `curl` run as uid/gid 65534 (nobody): (HTTP status, body).
fn curl_as_nobody(args: &[&str]) -> (u16, String) {
    let out = std::process::Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "curl",
            "-s",
            "-w",
            "\n%{http_code}",
        ])
        .args(args)
        .env_clear()
        .current_dir("/")
        .output()
        .expect("setpriv and curl (scripts/test installs them)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_owned())
}

#[tokio::test]
async fn on_loopback_another_user_gets_nothing_of_the_admin_listener() {
    assert!(
        root(),
        "this test runs the client as uid 65534: run it as root (CI does)"
    );
    let s = TestServer::start(Options::no_limit()).await;
    let addr = admin_addr(&s).await;
    let base = format!("http://{addr}");
    let (status, body) = curl_as_nobody(&[&format!("{base}/observer")]);
    assert_eq!(status, 401, "{body}");
    assert!(
        body.contains("ctl observe") && !body.contains("diem/workers"),
        "{body}"
    );
    let (status, _) = curl_as_nobody(&["-N", "--max-time", "2", &format!("{base}/observer/events")]);
    assert_eq!(status, 401);
    for action in [
        r#"{"cmd":"kill","path":"diem","force":true}"#,
        r#"{"cmd":"kill","path":"diem/workers/1"}"#,
        r#"{"cmd":"log-level","filter":"trace"}"#,
        r#"{"cmd":"reload"}"#,
    ] {
        let (status, body) = curl_as_nobody(&[
            "-X",
            "POST",
            "-H",
            "X-Diem-Csrf: 1",
            "-H",
            "Content-Type: application/json",
            "--data",
            action,
            &format!("{base}/observer/action"),
        ]);
        assert_eq!(status, 401, "{action}: {body}");
    }
    // A preflight is never granted, and says nothing of logging in.
    let (status, body) = curl_as_nobody(&[
        "-X",
        "OPTIONS",
        "-H",
        "Origin: http://evil.example",
        "-H",
        "Access-Control-Request-Method: POST",
        &format!("{base}/observer/action"),
    ]);
    assert_eq!(status, 405, "{body}");
    // Nothing ran: no restart, no new log level.
    let tree = s.ctl(json!({"cmd": "tree"})).await;
    assert_eq!(tree_node(&tree, "diem/workers/1")["restarts"], 0, "{tree}");
    assert!(!s.logs().contains("log filter changed"));
}

#[tokio::test]
async fn a_login_link_opens_one_session_the_page_never_forces_and_a_new_token_ends_sessions() {
    // The token as a Secret made from a file gives it: a trailing newline.
    let config = |token: &str| format!("[admin]\ntoken = \"{token}\\n\"\n");
    let s = TestServer::start(Options {
        config: Some(config(TOKEN)),
        ..Options::no_limit()
    })
    .await;
    let reply = observe(&s).await;
    let link = reply["url"].as_str().unwrap().to_owned();
    assert!(link.contains("/observer/login?ticket="), "{reply}");
    let (addr, cookie) = operator_session(&s).await;
    // The link of `operator_session` was a second one; the first is unspent
    // and works once, then never again.
    let first = link.trim_start_matches(&format!("http://{addr}"));
    assert_eq!(admin(&addr, "GET", first, &[], "").await.0, 303);
    assert_eq!(
        admin(&addr, "GET", first, &[], "").await.0,
        401,
        "a link is spent once"
    );

    let with_cookie = [("Cookie", cookie.as_str()), ("X-Diem-Csrf", "1")];
    let (status, _, body) = admin(&addr, "GET", "/observer/events", &with_cookie[..1], "").await;
    assert_eq!(status, 200);
    assert!(body.contains("event: snapshot"), "{body}");
    // A forced kill is for the control socket only.
    let (status, _, body) = admin(
        &addr,
        "POST",
        "/observer/action",
        &with_cookie,
        r#"{"cmd":"kill","path":"diem/workers/2","force":true}"#,
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("not_allowed"), "{body}");
    let (status, _, body) = admin(
        &addr,
        "POST",
        "/observer/action",
        &with_cookie,
        r#"{"cmd":"kill","path":"diem/workers/2"}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    eventually(
        Duration::from_secs(5),
        "the kill audited with its session",
        || async {
            s.logs()
                .lines()
                .any(|l| {
                    l.contains("diem::audit") && l.contains("admin-http 127.0.0.1:") && l.contains("session=")
                })
                .then_some(())
        },
    )
    .await;
    // The trimmed token works as a bearer token.
    let bearer = format!("Bearer {TOKEN}");
    let events_with = |headers: Vec<(&'static str, String)>| {
        let addr = addr.clone();
        async move {
            let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            admin(&addr, "GET", "/observer/events", &headers, "").await.0
        }
    };
    assert_eq!(
        events_with(vec![("Authorization", bearer.clone())]).await,
        200,
        "the token, trimmed, matches"
    );

    // Rotating the token ends every session.
    let new_token = "rotated-t0ken-9876543210";
    std::fs::write(s.dir.path().join("diem.toml"), config(new_token)).unwrap();
    let reload = s.ctl(json!({"cmd": "reload"})).await;
    assert_eq!(reload["ok"], true, "{reload}");
    assert_eq!(
        events_with(vec![("Cookie", cookie.clone())]).await,
        401,
        "a session of the old token ends"
    );
    assert_eq!(
        events_with(vec![("Authorization", bearer)]).await,
        401,
        "the old token no longer works"
    );
    assert!(!s.logs().contains(TOKEN) && !s.logs().contains(new_token));
}

#[tokio::test]
async fn token_guesses_are_throttled_per_client_and_logged_once_a_second() {
    let s = TestServer::start(Options::no_limit().env("DIEM_ADMIN__TOKEN", TOKEN)).await;
    let addr = admin_addr(&s).await;
    let wrong = format!("Bearer {}", "x".repeat(TOKEN.len()));
    let mut statuses = Vec::new();
    let guessing = std::time::Instant::now();
    for _ in 0..30 {
        statuses.push(
            admin(&addr, "GET", "/observer/events", &[("Authorization", &wrong)], "")
                .await
                .0,
        );
    }
    assert!(statuses[..10].iter().all(|&c| c == 401), "{statuses:?}");
    assert!(statuses[10..].iter().all(|&c| c == 429), "{statuses:?}");
    // Throttled: the right token too, with Retry-After.
    let right = format!("Bearer {TOKEN}");
    let (status, head, _) = admin(&addr, "GET", "/observer/events", &[("Authorization", &right)], "").await;
    assert_eq!(status, 429, "{head}");
    assert!(head.to_ascii_lowercase().contains("retry-after:"), "{head}");
    // So is a made-up login link, and a guess at the write API is counted
    // under the same key.
    assert_eq!(
        admin(&addr, "GET", "/observer/login?ticket=00", &[], "").await.0,
        429
    );
    let w = s
        .post("wrong-token-0123456789", r#"{"hitokoto":"x","from":"y"}"#)
        .await;
    assert_eq!(w.status, 429);
    // 31 failures: one line a second at most, whatever the host's pace.
    let took = guessing.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let lines = s
        .logs()
        .lines()
        .filter(|l| l.contains("failed authentications since the last such line"))
        .count();
    let most = 1 + usize::try_from(took.as_secs()).unwrap_or(usize::MAX);
    assert!(
        (1..=most).contains(&lines),
        "{lines} lines for 31 failures in {took:?}"
    );
    // An IPv4-mapped address is its IPv4 client, for the limiter too.
    let got = s
        .ctl(json!({"cmd": "limiter", "action": "get", "addr": "::ffff:192.0.2.7"}))
        .await;
    assert_eq!(got["key"], "192.0.2.7", "{got}");
}

#[tokio::test]
async fn no_secret_is_ever_printed() {
    // Every secret-bearing key, each in every form a user writes it.
    let secrets = [
        "s3cret-admin-t0ken-aaaa",
        "s3cret-cluster-c00kie-bbbb",
        "s3cretpguser",
        "s3cretpgquery",
        "s3cretredis",
    ];
    let dir = tempfile::tempdir().unwrap();
    let pg = crate::support::services::pg_url().replacen(
        "://postgres@",
        &format!("://postgres:{}@", secrets[2]),
        1,
    );
    let pg_query = format!(
        "postgres://postgres@127.0.0.1:5432/postgres?password={}",
        secrets[3]
    );
    let pg_conninfo = "host=127.0.0.1 user=postgres password='s3cret conninfo' dbname=postgres";
    let redis = format!("redis://:{}@127.0.0.1:6379", secrets[4]);
    for pg_url in [pg.as_str(), pg_query.as_str(), pg_conninfo] {
        let env = [
            ("DIEM_ADMIN__TOKEN", secrets[0]),
            ("DIEM_CLUSTER__COOKIE", secrets[1]),
            ("DIEM_POSTGRES__URL", pg_url),
            ("DIEM_REDIS__URL", redis.as_str()),
        ];
        for args in [&["config", "show"][..], &["config", "check"][..]] {
            let (code, out, err) = run_diem(dir.path(), args, &env).await;
            assert_eq!(code, 0, "{args:?}: {err}");
            for secret in secrets.iter().copied().chain(["s3cret conninfo"]) {
                assert!(
                    !out.contains(secret) && !err.contains(secret),
                    "{args:?} printed {secret}: {out}{err}"
                );
            }
        }
    }
    let (_, out, _) = run_diem(
        dir.path(),
        &["config", "show"],
        &[("DIEM_CLUSTER__COOKIE", secrets[1])],
    )
    .await;
    assert!(out.contains("cookie = \"<redacted>\""), "{out}");

    // A running node: its logs and its reports.
    let s = TestServer::start(Options {
        pg_url: Some(pg),
        redis_url: Some(redis),
        ..Options::no_limit()
            .env("DIEM_ADMIN__TOKEN", secrets[0])
            .env("DIEM_CLUSTER__COOKIE", secrets[1])
    })
    .await;
    let stats = s.ctl(json!({"cmd": "stats"})).await.to_string();
    let (_, observe_out, _) = s.ctl_cli(&["observe"]).await;
    let (_, stats_out, _) = s.ctl_cli(&["stats"]).await;
    // Redis refuses the password (it has none): the error is logged.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let logs = s.logs();
    for secret in secrets {
        for (what, text) in [
            ("logs", &logs),
            ("stats", &stats),
            ("ctl stats", &stats_out),
            ("ctl observe", &observe_out),
        ] {
            assert!(!text.contains(secret), "{what} printed {secret}");
        }
    }
}

#[tokio::test]
async fn runtime_directories_of_another_user_are_refused() {
    assert!(
        root(),
        "this test makes directories of another uid: run it as root (CI does)"
    );
    let base = tempfile::tempdir().unwrap();
    // Taken over before diem made it: owned by another user.
    let taken = base.path().join("diem-0");
    std::fs::create_dir(&taken).unwrap();
    std::fs::set_permissions(&taken, std::fs::Permissions::from_mode(0o700)).unwrap();
    rustix::fs::chown(&taken, Some(rustix::fs::Uid::from_raw(65534)), None).unwrap();
    // Ours, but anyone may write in it.
    let open = base.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    for dir in [&taken, &open] {
        let socket = dir.join("diem.sock");
        let (code, _, err) = run_diem(
            base.path(),
            &["serve"],
            &[
                ("DIEM_CONTROL__SOCKET", socket.to_str().unwrap()),
                ("DIEM_HTTP__ADDR", "127.0.0.1:0"),
                ("DIEM_ADMIN__ADDR", ""),
            ],
        )
        .await;
        assert_ne!(code, 0, "{err}");
        assert!(
            err.contains(&format!(
                "refusing the control socket's directory {}",
                dir.display()
            )),
            "{err}"
        );
    }

    // `diem ctl` tells a socket of a third user nothing: a listener run by
    // uid 65534 in a directory every user can reach, asked by uid 65533.
    let shared = base.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let fake = shared.join("diem.sock");
    let mut squatter = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c"])
        .arg(format!(
            "import socket,os,time\ns=socket.socket(socket.AF_UNIX)\ns.bind('{}')\nos.chmod('{}',0o777)\ns.listen(8)\nc,_=s.accept()\nprint(c.recv(4096).decode(),flush=True)\ntime.sleep(5)",
            fake.display(),
            fake.display()
        ))
        .env_clear()
        .current_dir("/")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    eventually(Duration::from_secs(5), "the squatter listens", || async {
        fake.exists().then_some(())
    })
    .await;
    let out = std::process::Command::new("setpriv")
        .args([
            "--reuid=65533",
            "--regid=65533",
            "--clear-groups",
            env!("CARGO_BIN_EXE_diem"),
            "ctl",
            "--socket",
        ])
        .arg(&fake)
        .arg("shutdown")
        .env_clear()
        .current_dir("/")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(err.contains("served by uid 65534"), "{err}");
    let _ = squatter.kill();
    let heard = squatter.wait_with_output().unwrap();
    assert!(
        !String::from_utf8_lossy(&heard.stdout).contains("shutdown"),
        "the squatter heard the command"
    );
}

/// File descriptors the process `pid` holds.
fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// Resident memory of `pid`, KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_thousand_stuck_viewers_hold_bounded_memory_and_descriptors() {
    use tokio::io::AsyncWriteExt;
    let s = TestServer::start(Options::no_limit()).await;
    let (addr, cookie) = operator_session(&s).await;
    let target: std::net::SocketAddr = addr.parse().unwrap();
    let (fds_before, rss_before) = (fds(s.pid()), rss_kib(s.pid()));
    // 1,000 viewers that ask for the stream and never read a byte (a tiny
    // receive buffer, so that theirs fills at once).
    let mut held = Vec::new();
    for _ in 0..1000 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(2048).unwrap();
        let Ok(mut stream) = socket.connect(target).await else {
            continue;
        };
        let _ = stream
            .write_all(
                format!("GET /observer/events HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\n\r\n")
                    .as_bytes(),
            )
            .await;
        held.push(stream);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stats = s.ctl(json!({"cmd": "stats"})).await;
    let viewers = stats["admin"]["viewers"].as_u64().unwrap();
    assert!(viewers <= 64, "viewers are capped: {stats}");
    let (fds_during, rss_during) = (fds(s.pid()), rss_kib(s.pid()));
    assert!(
        fds_during <= fds_before + 128 + 8,
        "descriptors bounded by the connection cap: {fds_before} -> {fds_during}"
    );
    eprintln!("1,000 stuck viewers: fds {fds_before} -> {fds_during}, RSS {rss_before} -> {rss_during} KiB, viewers {viewers}");
    // A viewer that stops reading is dropped at its write deadline: none
    // is left once their buffers filled and the deadline passed.
    eventually(Duration::from_secs(60), "stuck viewers dropped", || async {
        let stats = s.ctl(json!({"cmd": "stats"})).await;
        (stats["admin"]["viewers"] == 0).then_some(())
    })
    .await;
    let rss_after = rss_kib(s.pid());
    eprintln!(
        "after the write deadline: RSS {rss_after} KiB, fds {}",
        fds(s.pid())
    );
    assert!(
        rss_after < rss_before + 64 * 1024,
        "memory bounded: {rss_before} -> {rss_after} KiB"
    );
    // The page still answers its operator.
    let (status, _, _) = admin(&addr, "GET", "/observer", &[("Cookie", &cookie)], "").await;
    assert_eq!(status, 200);
    drop(held);
}

#[tokio::test]
async fn write_bodies_name_the_field_and_refuse_what_shows_nothing_or_is_not_json() {
    let s = TestServer::start(Options::no_limit().env("DIEM_ADMIN__TOKEN", TOKEN)).await;
    eventually(Duration::from_secs(30), "PostgreSQL reached", || async {
        let r = s.get("/readyz").await;
        (r.status == 200 && !r.body.contains("postgres")).then_some(())
    })
    .await;
    let auth = format!("Bearer {TOKEN}");
    let post = |body: String, content_type: Option<&'static str>| {
        let auth = auth.clone();
        let s = &s;
        async move {
            let mut headers = vec![("authorization", auth.as_str())];
            if let Some(t) = content_type {
                headers.push(("content-type", t));
            }
            s.request("POST", "/hitokoto/v2/", &headers, &body).await
        }
    };
    // A type error names its field.
    let r = post(r#"{"hitokoto":"a sentence","from":5}"#.into(), None).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["parameter"], "from", "{}", r.body);
    // Only invisible characters: refused.
    let r = post(r#"{"hitokoto":"\u200b\u200b\ufeff","from":"x"}"#.into(), None).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["parameter"], "hitokoto", "{}", r.body);
    // Names are bounded.
    for field in ["from", "from_who", "creator"] {
        let mut body = json!({"hitokoto": "a sentence", "from": "x"});
        body[field] = json!("n".repeat(256));
        let r = post(body.to_string(), None).await;
        assert_eq!(r.status, 400, "{field}: {}", r.body);
        assert_eq!(r.json()["parameter"], field, "{}", r.body);
    }
    // A body declared as something else than JSON: 415; JSON or none: read.
    let ok = json!({"hitokoto": "a sentence of the security test", "from": "x"}).to_string();
    let r = post(ok.clone(), Some("application/x-www-form-urlencoded")).await;
    assert_eq!(r.status, 415, "{}", r.body);
    let r = post(ok.clone(), Some("application/json; charset=utf-8")).await;
    assert_eq!(r.status, 201, "{}", r.body);
}

#[tokio::test]
async fn an_access_line_carries_a_bounded_uri_and_refusals_are_sampled() {
    let s = TestServer::start(
        Options::default()
            .env("DIEM_LOG__FILTER", "info")
            .env("DIEM_LIMITER__BURST", "0")
            .env("DIEM_LIMITER__COUNT", "1")
            .env("DIEM_LIMITER__PERIOD", "1h"),
    )
    .await;
    let long = format!("/hitokoto/v2/?callback={}", "c".repeat(10_000));
    for _ in 0..50 {
        let _ = s.get(&long).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let logs = s.logs();
    let access: Vec<&str> = logs.lines().filter(|l| l.contains("diem::access")).collect();
    assert!(!access.is_empty(), "no access line: {logs}");
    assert!(access.iter().all(|l| l.len() < 1024), "an access line is bounded");
    assert!(access.iter().any(|l| l.contains("(10023 bytes)")), "{access:?}");
    // 1 allowed, 49 refused within a second or two: a few lines, not 50.
    assert!(access.len() <= 5, "{} access lines for 50 requests", access.len());
}

/// Log lines of `s` so far.
fn log_lines(s: &TestServer) -> usize {
    s.logs().lines().count()
}

#[tokio::test]
async fn a_flood_of_bad_cluster_connections_writes_a_few_lines_and_a_wrong_cookie_is_visible() {
    use tokio::io::AsyncWriteExt;
    // Two planned, one started: the second's place seeds the stranger.
    let plan = Plan::new(2);
    let node = plan.start(0, Options::no_limit()).await;
    eventually(Duration::from_secs(10), "the cluster listener", || async {
        node.logs().contains("cluster listener ready").then_some(())
    })
    .await;
    let port = plan.members[0].cluster_port;
    let before = log_lines(&node);
    // 10,000 connections that send what is not the protocol, 100 at once.
    let started = std::time::Instant::now();
    let mut sent = 0;
    for _ in 0..100 {
        let batch: Vec<_> = (0..100)
            .map(|i| {
                tokio::spawn(async move {
                    let Ok(mut c) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
                        return false;
                    };
                    let garbage = format!("GET /{i} HTTP/1.1\r\nHost: x\r\n\r\n{}", "\u{1}".repeat(64));
                    let _ = c.write_all(garbage.as_bytes()).await;
                    let _ = c.shutdown().await;
                    true
                })
            })
            .collect();
        for b in batch {
            sent += usize::from(b.await.unwrap_or(false));
        }
    }
    let took = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let logs = node.logs();
    let new_lines: Vec<&str> = logs.lines().skip(before).collect();
    let written = new_lines.len();
    // What they were: each line's message, without its time, counted.
    let mut kinds = std::collections::BTreeMap::<String, usize>::new();
    for line in &new_lines {
        let message = line.split_once("  ").map_or(*line, |(_, rest)| rest);
        *kinds.entry(message.chars().take(90).collect()).or_default() += 1;
    }
    eprintln!("{sent} bad cluster connections in {took:?}: {written} log lines: {kinds:#?}");
    assert!(sent >= 9_000, "{sent} connections made");
    assert!(
        written <= 100,
        "{written} lines for {sent} bad connections: {kinds:#?}"
    );
    let view = node.ctl(json!({"cmd": "cluster"})).await;
    assert!(
        view["refused_at_cluster_port"]["bad_stream"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "counted: {view}"
    );

    // A node with another cookie: refused, and it says so in `ctl cluster`
    // and its /readyz notes; the member it knocks at stays quiet.
    let before = log_lines(&node);
    let stranger = TestServer::start(plan.outsider(
        "stranger",
        Options::no_limit().env("DIEM_CLUSTER__COOKIE", "another-cookie-0123456789"),
    ))
    .await;
    let seed = format!("127.0.0.1:{port}");
    let why = eventually(Duration::from_secs(15), "the refusal is visible", || async {
        let view = stranger.ctl(json!({"cmd": "cluster"})).await;
        view["no_session_with"][&seed].as_str().map(str::to_owned)
    })
    .await;
    assert!(why.contains("cluster.cookie"), "{why}");
    let ready = stranger.get("/readyz").await;
    assert!(
        ready.body.contains(&format!("cluster: no session with {seed}")),
        "{}",
        ready.body
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let written = log_lines(&node) - before;
    assert!(
        written <= 8,
        "{written} lines on the member for a few seconds of a wrong cookie"
    );
    let view = node.ctl(json!({"cmd": "cluster"})).await;
    assert!(
        view["refused_at_cluster_port"]["auth_failed"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "{view}"
    );
    assert!(members(&node).await.is_empty(), "the stranger is no member");
}

#[tokio::test]
async fn idle_connections_from_one_host_cannot_keep_a_tls_member_out() {
    let certs = Certs::new();
    let mut tls = Options::no_limit();
    tls.env.extend(certs.env());
    let plan = Plan::new(2);
    let n1 = plan.start(0, tls.clone()).await;
    eventually(Duration::from_secs(10), "the TLS listener", || async {
        n1.logs().contains("cluster listener ready (TLS)").then_some(())
    })
    .await;
    let port = plan.members[0].cluster_port;
    // Another host (127.0.0.2) holds 100 connections open, opening a new
    // one whenever one is closed, and sends nothing.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let holders: Vec<_> = (0..100)
        .map(|_| {
            let stop = stop.clone();
            tokio::spawn(async move {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let socket = tokio::net::TcpSocket::new_v4().unwrap();
                    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
                    match socket.connect(([127, 0, 0, 1], port).into()).await {
                        Ok(mut c) => {
                            let mut buf = [0u8; 1];
                            // Held until the member closes it.
                            let _ = tokio::io::AsyncReadExt::read(&mut c, &mut buf).await;
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let joined = std::time::Instant::now();
    let n2 = plan.start(1, tls.clone()).await;
    wait_members(&n2, 1, Duration::from_secs(20)).await;
    eprintln!(
        "a member joined in {:?} under 100 idle connections from another host",
        joined.elapsed()
    );
    // The holders were refused: past the per-address limit at once, and
    // the admitted ones at the first-bytes deadline.
    eventually(Duration::from_secs(5), "the refusals counted", || async {
        let view = n1.ctl(json!({"cmd": "cluster"})).await;
        let port_refusals = &view["refused_at_cluster_port"];
        (port_refusals["per_address_limit"].as_u64().unwrap_or(0) > 0
            && port_refusals["no_first_bytes"].as_u64().unwrap_or(0) > 0)
            .then_some(())
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for h in holders {
        h.abort();
    }
}

#[tokio::test]
async fn a_second_node_under_a_live_members_name_is_refused_and_displaces_nothing() {
    let certs = Certs::new();
    let mut tls = Options::no_limit();
    tls.env.extend(certs.env());
    let plan = Plan::new(2);
    let nodes = plan.start_all(tls.clone()).await;
    let real = format!("127.0.0.1:{}", plan.members[1].cluster_port);
    // An impostor named n2, seeding n1.
    let mut impostor_opts = plan.outsider("impostor", tls.clone());
    impostor_opts.env.push(("DIEM_CLUSTER__NAME".into(), "n2".into()));
    let impostor = TestServer::start(impostor_opts).await;
    eventually(Duration::from_secs(15), "the collision is named", || async {
        nodes[0]
            .logs()
            .contains("cluster: a second member named n2 at")
            .then_some(())
    })
    .await;
    // n1 keeps the real n2, up, at its own address, all along.
    for _ in 0..10 {
        let view = nodes[0].ctl(json!({"cmd": "cluster"})).await;
        let n2 = view["members"]
            .as_array()
            .and_then(|ms| ms.iter().find(|m| m["name"] == "n2"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            (n2["addr"].as_str(), n2["state"].as_str()),
            (Some(real.as_str()), Some("up")),
            "{view}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Both sides say why.
    let seed = format!("127.0.0.1:{}", plan.members[0].cluster_port);
    let why = eventually(
        Duration::from_secs(10),
        "the impostor sees it is refused",
        || async {
            let view = impostor.ctl(json!({"cmd": "cluster"})).await;
            view["no_session_with"][&seed].as_str().map(str::to_owned)
        },
    )
    .await;
    assert!(why.contains("same name") || why.contains("member name"), "{why}");
    let view = nodes[0].ctl(json!({"cmd": "cluster"})).await;
    assert!(
        view["no_session_with"]
            .to_string()
            .contains("taken by the live member"),
        "{view}"
    );
    let lines = nodes[0]
        .logs()
        .lines()
        .filter(|l| l.contains("a second member named n2"))
        .count();
    assert_eq!(lines, 1, "named once a minute, not per retry");
}

#[tokio::test]
async fn viewers_of_another_member_share_one_feed_and_forwarded_actions_name_the_member() {
    let plan = Plan::new(2);
    let nodes = plan.start_all(Options::no_limit()).await;
    let (addr, cookie) = operator_session(&nodes[0]).await;
    let before = nodes[1]
        .logs()
        .lines()
        .filter(|l| l.contains("observer-feed"))
        .count();
    // Three viewers of n2 through n1, for three seconds.
    let viewers: Vec<_> = (0..3)
        .map(|_| {
            let (addr, cookie) = (addr.clone(), cookie.clone());
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
                c.write_all(
                    format!(
                        "GET /observer/events?node=n2 HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\n\r\n"
                    )
                    .as_bytes(),
                )
                .await
                .unwrap();
                let mut out = Vec::new();
                let _ = tokio::time::timeout(Duration::from_secs(3), c.read_to_end(&mut out)).await;
                String::from_utf8_lossy(&out).into_owned()
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stats = nodes[0].ctl(json!({"cmd": "stats"})).await;
    assert_eq!(
        stats["admin"]["remote_feeds"], 1,
        "one feed for three viewers: {stats}"
    );
    assert_eq!(stats["admin"]["viewers"], 3, "{stats}");
    for v in viewers {
        let text = v.await.unwrap();
        assert!(
            text.contains("event: snapshot") && text.contains("\"remote\":true"),
            "{text}"
        );
    }
    // Two commands (tree, stats) a second for all three, not for each.
    let asked = nodes[1]
        .logs()
        .lines()
        .filter(|l| l.contains("observer-feed"))
        .count()
        - before;
    assert!(asked <= 2 * 5, "{asked} commands on n2 for 3 viewers over ~3 s");
    // An action from n1's page on n2: audited on n2 with the member it
    // came through, the browser's address and its session.
    let (status, _, body) = admin(
        &addr,
        "POST",
        "/observer/action",
        &[("Cookie", &cookie), ("X-Diem-Csrf", "1")],
        r#"{"cmd":"kill","path":"diem/workers/1","node":"n2"}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    eventually(
        Duration::from_secs(5),
        "n2 audits where the kill came from",
        || async {
            nodes[1]
                .logs()
                .lines()
                .any(|l| {
                    l.contains("diem::audit")
                        && l.contains("member=n1 admin-http 127.0.0.1:")
                        && l.contains("session=")
                })
                .then_some(())
        },
    )
    .await;
    // The feed stops once nobody watches.
    eventually(Duration::from_secs(5), "the feed stops", || async {
        let stats = nodes[0].ctl(json!({"cmd": "stats"})).await;
        (stats["admin"]["remote_feeds"] == 0).then_some(())
    })
    .await;
}

#[tokio::test]
async fn config_check_says_what_it_ignored_trimmed_and_where_a_bad_value_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run_diem(
        dir.path(),
        &["config", "check"],
        &[
            ("DIEM_REDIS_URL", "redis://elsewhere:6379"),
            ("DIEM_ADMIN__TOKEN", "  spaced-t0ken-0123456789\n"),
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("DIEM_REDIS_URL is ignored") && out.contains("DIEM_REDIS__URL"),
        "{out}"
    );
    assert!(
        out.contains("`admin.token` (from DIEM_ADMIN__TOKEN) has whitespace around it"),
        "{out}"
    );
    assert!(!out.contains("spaced-t0ken"), "{out}");
    // Whitespace inside a secret: refused, saying where it came from.
    let (code, _, err) = run_diem(
        dir.path(),
        &["config", "check"],
        &[("DIEM_ADMIN__TOKEN", "two words-0123456789")],
    )
    .await;
    assert_eq!(code, 2);
    assert!(
        err.contains("admin.token") && err.contains("from DIEM_ADMIN__TOKEN"),
        "{err}"
    );
    assert!(!err.contains("two words"), "{err}");
    // A value out of range names the file it is in.
    std::fs::write(dir.path().join("bad.toml"), "[workers]\ncount = 0\n").unwrap();
    let (code, _, err) = run_diem(dir.path(), &["--config", "bad.toml", "config", "check"], &[]).await;
    assert_eq!(code, 2);
    assert!(
        err.contains("`workers.count`") && err.contains("bad.toml"),
        "{err}"
    );
    // The serving node warns of the near miss.
    let s = TestServer::start(Options::no_limit().env("DIEM_REDIS_URL", "redis://elsewhere:6379")).await;
    // Every rejection reason is a series from the start, at 0.
    let metrics = s.get("/metrics").await.body;
    for reason in [
        "auth_failed",
        "auth_throttled",
        "admin_connection_limit",
        "header_timeout",
    ] {
        assert!(
            metrics.contains(&format!("diem_http_rejected_total{{reason=\"{reason}\"}} 0")),
            "{reason}: {metrics}"
        );
    }
    eventually(Duration::from_secs(5), "the near miss is warned of", || async {
        s.logs().contains("did you mean DIEM_REDIS__URL").then_some(())
    })
    .await;
}
