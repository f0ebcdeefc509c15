//! Safe behind a proxy and in a fleet: real client addresses, a
//! Kubernetes-safe lifecycle, config from the environment, the write API's
//! hygiene, and what operators see.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::load::{by_status, Load, Plan};
use crate::support::proxy::{FaultProxy, Mode};
use crate::support::server::{eventually, run_diem, Options, TestServer};
use crate::support::services::{import_with, redis_addr, redis_url, unique, via, write_bundle};

const TOKEN: &str = "fleet-t0ken-0123456789";

/// burst 2 (3 at once), one more per minute; 127.0.0.1 is a trusted proxy.
fn behind_proxy() -> Options {
    Options::default()
        .env("DIEM_LIMITER__BURST", 2)
        .env("DIEM_LIMITER__COUNT", 1)
        .env("DIEM_LIMITER__PERIOD", "60s")
        .env("DIEM_LIMITER__TRUSTED_PROXIES", "127.0.0.1")
}

async fn statuses(s: &TestServer, headers: &[Vec<(&str, String)>]) -> Vec<u16> {
    let mut out = Vec::new();
    for h in headers {
        let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
        out.push(s.request("GET", "/hitokoto/v2/", &h, "").await.status);
    }
    out
}

#[tokio::test]
async fn forged_and_ipv6_addresses_get_no_fresh_budget() {
    let s = TestServer::start_with(behind_proxy(), &[('a', "x", "y")]).await;
    // nginx's $proxy_add_x_forwarded_for after the client forged the first
    // entry: the rightmost untrusted address is the client.
    let forged: Vec<_> = (1..=5)
        .map(|i| vec![("x-forwarded-for", format!("198.51.100.{i}, 203.0.113.9"))])
        .collect();
    assert_eq!(statuses(&s, &forged).await, [200, 200, 200, 429, 429]);
    let stats = s
        .ctl(json!({"cmd": "limiter", "action": "get", "addr": "203.0.113.9"}))
        .await;
    assert_eq!(
        (
            stats["key"].as_str(),
            stats["limited"].as_bool(),
            stats["remaining"].as_u64()
        ),
        (Some("203.0.113.9"), Some(true), Some(0)),
        "{stats}"
    );
    let forged_key = s
        .ctl(json!({"cmd": "limiter", "action": "get", "addr": "198.51.100.1"}))
        .await;
    assert_eq!(
        forged_key["remaining"], 3,
        "the forged address was never charged: {forged_key}"
    );
    // A /64 is one client.
    let v6: Vec<_> = (1..=4)
        .map(|i| vec![("x-forwarded-for", format!("2001:db8:1:2::{i:x}"))])
        .collect();
    assert_eq!(statuses(&s, &v6).await, [200, 200, 200, 429]);
    let state = s
        .ctl(json!({"cmd": "limiter", "action": "get", "addr": "2001:db8:1:2:ffff::1"}))
        .await;
    assert_eq!(state["key"], "2001:db8:1:2::/64", "{state}");
    assert_eq!(state["backend"], "redis");
    // Reset forgets it, in Redis and locally.
    let (code, out, err) = s.ctl_cli(&["limiter", "reset", "2001:db8:1:2::7"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("2001:db8:1:2::/64") && out.contains("redis: true"),
        "{out}"
    );
    assert_eq!(statuses(&s, &v6[..1]).await, [200]);
    // Garbage from a trusted proxy means the proxy itself, never a 500.
    let r = s
        .request(
            "GET",
            "/hitokoto/v2/",
            &[("x-forwarded-for", "not-an-address")],
            "",
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        s.ctl(json!({"cmd": "limiter", "action": "get", "addr": "127.0.0.1"}))
            .await["remaining"],
        2
    );
}

#[tokio::test]
async fn rfc7239_forwarded_is_read_when_configured() {
    let s = TestServer::start(behind_proxy().env("DIEM_LIMITER__CLIENT_HEADER", "forwarded")).await;
    let forged: Vec<_> = (1..=4)
        .map(|i| {
            vec![(
                "forwarded",
                format!("for=198.51.100.{i};proto=http, for=\"[2001:db8::9]:4711\""),
            )]
        })
        .collect();
    assert_eq!(statuses(&s, &forged).await, [200, 200, 200, 429]);
    let r = s.get("/hitokoto/v2/").await;
    assert_eq!(r.status, 200, "no header: the proxy's own key, a fresh one");
}

#[tokio::test]
async fn a_raised_limit_frees_held_clients_at_once() {
    let config = "[limiter]\nburst = 2\ncount = 1\nperiod = \"1h\"\n";
    let s = TestServer::start_with(
        Options {
            config: Some(config.into()),
            ..Options::default()
        },
        &[('a', "x", "y")],
    )
    .await;
    for _ in 0..3 {
        assert_eq!(s.get("/hitokoto/v2/").await.status, 200);
    }
    let r = s.get("/hitokoto/v2/").await;
    assert_eq!(r.status, 429);
    assert!(
        r.header("retry-after").parse::<u64>().unwrap() > 1000,
        "held for the old period"
    );
    std::fs::write(
        s.config_path.as_ref().unwrap(),
        "[limiter]\nburst = 2\ncount = 3600\nperiod = \"1h\"\n",
    )
    .unwrap();
    let r = s.ctl(json!({"cmd": "reload"})).await;
    assert_eq!(r["ok"], true, "{r}");
    let freed = eventually(Duration::from_secs(5), "allowed under the new limit", || async {
        let r = s.get("/hitokoto/v2/").await;
        (r.status == 200).then_some(r)
    })
    .await;
    assert_eq!(freed.header("x-ratelimit-limit"), "3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stays_ready_to_serve_through_the_delay() {
    let mut s = TestServer::start_with(
        Options::no_limit().env("DIEM_HTTP__SHUTDOWN_DELAY", "2s"),
        &[('a', "x", "y")],
    )
    .await;
    let mut fresh = Plan::new("/hitokoto/v2/", 4, Duration::from_secs(4));
    fresh.headers = vec![("connection".into(), "close".into())];
    let load_started = Instant::now();
    let new_connections = Load::start(s.addr, fresh);
    let keep_alive = Load::start(s.addr, Plan::new("/hitokoto/v2/", 4, Duration::from_secs(4)));
    s.wait_answered(20).await;
    s.sigterm();
    let signalled = Instant::now();
    let r = eventually(Duration::from_secs(1), "not ready at once", || async {
        let r = s.get("/readyz").await;
        (r.status == 503).then_some(r)
    })
    .await;
    assert!(signalled.elapsed() < Duration::from_secs(1));
    assert!(r.body.contains("shutting down"), "{}", r.body);
    assert_eq!(
        r.header("connection"),
        "close",
        "clients are told to go elsewhere"
    );
    let during = s.get("/hitokoto/v2/").await;
    assert_eq!(during.status, 200, "still serving during the delay");
    assert_eq!(s.wait_exit(Duration::from_secs(15)).await, 0);
    assert!(
        signalled.elapsed() >= Duration::from_secs(2),
        "the delay was honoured"
    );
    // Everything sent before the listener closed (the delay, less a
    // margin for the request in flight) was served.
    let closed_at = signalled.duration_since(load_started) + Duration::from_millis(1_800);
    for load in [new_connections, keep_alive] {
        let outcomes = load.join().await;
        let before: Vec<_> = outcomes.iter().filter(|o| o.at < closed_at).cloned().collect();
        assert!(before.len() > 20, "{}", before.len());
        assert_eq!(
            by_status(&before),
            [(Some(200), before.len())].into_iter().collect(),
            "no refused connection and no failed request while unready"
        );
    }
}

#[tokio::test]
async fn kubernetes_variables_are_ignored_and_strings_stay_strings() {
    let opts = Options::no_limit()
        .env("DIEM_PORT", "tcp://10.0.0.7:8080")
        .env("DIEM_SERVICE_HOST", "10.0.0.7")
        .env("DIEM_API_PORT_8080_TCP", "tcp://10.0.0.7:8080")
        .env("DIEM_NODE__NAME", "42")
        .env("DIEM_ADMIN__TOKEN", "1234567890123456")
        .env("DIEM_LOG__ACCESS", "No");
    let s = TestServer::start_with(opts, &[('a', "x", "y")]).await;
    assert_eq!(s.ctl(json!({"cmd": "ping"})).await["node"], "42");
    let body = json!({"hitokoto": "typed", "from": "env"}).to_string();
    let r = s
        .request(
            "POST",
            "/hitokoto/v2/",
            &[("authorization", "Bearer 1234567890123456")],
            &body,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
}

#[tokio::test]
async fn config_errors_name_one_key_and_config_check_and_show_work_offline() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run_diem(
        dir.path(),
        &["config", "check"],
        &[("DIEM_WORKERS__COUNT", "many")],
    )
    .await;
    assert_eq!(code, 2);
    assert!(
        err.contains("`workers.count`") && err.contains("DIEM_WORKERS__COUNT") && !err.contains("default."),
        "{err}"
    );
    let (code, _, err) = run_diem(dir.path(), &["serve"], &[("DIEM_HTTP__ADRR", "x")]).await;
    assert_eq!(code, 2);
    assert!(
        err.contains("`http.adrr`") && err.contains("no such config key"),
        "{err}"
    );
    let (code, _, err) = run_diem(dir.path(), &["--config", "/tmp", "config", "check"], &[]).await;
    assert_eq!(code, 2);
    assert!(err.contains("/tmp") && err.contains("is a directory"), "{err}");
    let (code, _, err) = run_diem(dir.path(), &["serve"], &[("DIEM_ADMIN__TOKEN", "short")]).await;
    assert_eq!(code, 2);
    assert!(err.contains("admin.token") && err.contains("16 bytes"), "{err}");
    let (code, out, _) = run_diem(dir.path(), &["config", "check"], &[]).await;
    assert_eq!((code, out.trim()), (0, "config is valid"));
    std::fs::write(dir.path().join("d.toml"), "[workers]\ncount = 3\n").unwrap();
    let env = [
        ("DIEM_ADMIN__TOKEN", "very-secret-token-123"),
        ("DIEM_POSTGRES__URL", "postgres://app:hunter2@db:5432/diem"),
    ];
    let (code, out, _) = run_diem(dir.path(), &["--config", "d.toml", "config", "show"], &env).await;
    assert_eq!(code, 0);
    assert!(!out.contains("very-secret") && !out.contains("hunter2"), "{out}");
    assert!(
        out.contains("token = \"<redacted>\"  # DIEM_ADMIN__TOKEN"),
        "{out}"
    );
    assert!(out.contains("count = 3  # ") && out.contains("d.toml"), "{out}");
    assert!(out.contains("max = 256  # default"), "{out}");
}

#[tokio::test]
async fn the_default_control_socket_is_an_absolute_runtime_path() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = dir.path().join("run");
    let runtime_text = runtime.to_str().unwrap().to_owned();
    let (code, _, err) = run_diem(
        dir.path(),
        &["ctl", "ping"],
        &[("XDG_RUNTIME_DIR", &runtime_text)],
    )
    .await;
    assert_eq!(code, 2);
    assert!(err.contains(&format!("{runtime_text}/diem.sock")), "{err}");
    let (_, _, err) = run_diem(
        dir.path(),
        &["ctl", "ping"],
        &[("RUNTIME_DIRECTORY", "/run/diem")],
    )
    .await;
    assert!(
        err.contains("/run/diem/diem.sock"),
        "systemd's RuntimeDirectory: {err}"
    );
    let (_, _, err) = run_diem(dir.path(), &["ctl", "ping"], &[]).await;
    let expected = if rustix::process::geteuid().is_root() {
        "/run/diem/diem.sock".to_owned()
    } else {
        format!("diem-{}/diem.sock", rustix::process::geteuid().as_raw())
    };
    assert!(err.contains(&expected) && !err.contains(" diem.sock"), "{err}");
    // Offline: help needs no socket.
    let (code, out, _) = run_diem(dir.path(), &["ctl", "help"], &[]).await;
    assert_eq!(code, 0);
    assert!(out.contains("limiter") && out.contains("kill"), "{out}");
}

#[tokio::test]
async fn redis_unreachable_at_start_is_logged() {
    let proxy = FaultProxy::start(redis_addr()).await;
    proxy.set(Mode::Refuse);
    let s = TestServer::start(Options {
        redis_url: Some(via(&redis_url(), proxy.addr)),
        ..Options::default()
    })
    .await;
    eventually(Duration::from_secs(5), "the start logs it", || async {
        s.logs().contains("redis is unreachable").then_some(())
    })
    .await;
}

async fn raw_exchange(s: &TestServer, bytes: &[u8], wait: Duration) -> (String, Duration) {
    let started = Instant::now();
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(bytes).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(wait, c.read(&mut buf))
        .await
        .unwrap_or(Ok(0))
        .unwrap_or(0);
    (String::from_utf8_lossy(&buf[..n]).into_owned(), started.elapsed())
}

#[tokio::test]
async fn the_write_api_guards_its_token_and_refuses_what_it_cannot_store() {
    let opts = Options::no_limit()
        .env("DIEM_ADMIN__TOKEN", TOKEN)
        .env("DIEM_HTTP__BODY_READ_TIMEOUT", "10s");
    let s = TestServer::start_with(opts, &[('a', "x", "y")]).await;
    let auth = format!("bearer {TOKEN}");
    let post = |body: Value| {
        let auth = auth.clone();
        let s = &s;
        async move {
            s.request(
                "POST",
                "/hitokoto/v2/",
                &[("authorization", &auth)],
                &body.to_string(),
            )
            .await
        }
    };
    // Bad fields: 400 naming the field, never a 503 to retry.
    for (body, field) in [
        (json!({"hitokoto": "a\u{0}b", "from": "x"}), "hitokoto"),
        (json!({"hitokoto": "   ", "from": "x"}), "hitokoto"),
        (json!({"hitokoto": "ok", "from": " "}), "from"),
        (
            json!({"hitokoto": "ok", "from": "x", "from_who": "\u{0}"}),
            "from_who",
        ),
    ] {
        let r = post(body).await;
        assert_eq!(
            (r.status, r.json()["parameter"].as_str()),
            (400, Some(field)),
            "{}",
            r.body
        );
        assert_eq!(r.header("retry-after"), "");
    }
    // Accepted (the scheme in any case), served at once with every field,
    // script-safe.
    let r = post(json!({"hitokoto": "</script>\u{2028}", "from": "l-test", "type": "l"})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(
        !r.body.contains("</script>") && r.body.contains("\\u003c/script\\u003e"),
        "{}",
        r.body
    );
    assert_eq!(r.header("x-content-type-options"), "nosniff");
    let location = r.header("location").to_owned();
    let one = s.get(&location).await;
    assert_eq!(one.status, 200, "read-your-writes: {}", one.body);
    let fields = one.json();
    for f in [
        "id",
        "uuid",
        "hitokoto",
        "type",
        "from",
        "from_who",
        "creator",
        "length",
        "created_at",
    ] {
        assert!(fields.get(f).is_some(), "{f} in {fields}");
    }
    let picked = s.get("/hitokoto/v2/?c=l&encode=json").await;
    assert_eq!(
        picked.status, 200,
        "the writer's snapshot has it: {}",
        picked.body
    );
    let r = s
        .request(
            "DELETE",
            &location,
            &[("authorization", &format!("Bearer {TOKEN}"))],
            "",
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(s.get(&location).await.status, 404, "gone at once on the writer");
    assert_eq!(s.get("/hitokoto/v2/not-a-uuid").await.status, 400);
    // An error echoing a hostile value is script-safe too.
    let r = s.get("/hitokoto/v2/?encode=%3C/script%3E").await;
    assert_eq!(r.status, 400);
    assert!(!r.body.contains("</script>"), "{}", r.body);
    // The token is checked before the body: a client that never sends its
    // body is refused at once, not after the body timeout.
    let (head, took) = raw_exchange(
        &s,
        b"POST /hitokoto/v2/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong-token-0000000000\r\nContent-Length: 1000\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    // Failed attempts are throttled: ten, then 429, even with the token.
    let mut codes = Vec::new();
    for _ in 0..11 {
        let r = s
            .request(
                "POST",
                "/hitokoto/v2/",
                &[("authorization", "Bearer nope-nope-nope-nope")],
                "{}",
            )
            .await;
        codes.push(r.status);
    }
    assert_eq!(codes.iter().filter(|&&c| c == 401).count(), 9, "{codes:?}");
    assert_eq!(codes[9..], [429, 429], "{codes:?}");
    let r = post(json!({"hitokoto": "late", "from": "x"})).await;
    assert_eq!(r.status, 429);
    assert!(!r.header("retry-after").is_empty());
    let metrics = s.get("/metrics").await.body;
    assert!(
        metrics.contains("diem_http_rejected_total{reason=\"auth_failed\"} 10"),
        "{metrics}"
    );
}

#[tokio::test]
async fn operators_get_an_audit_trail_and_a_ctl_that_bends() {
    let s = TestServer::start_with(
        Options {
            config: Some("[http]\nbacklog = 1024\n".into()),
            ..Options::no_limit()
        },
        &[('a', "x", "y")],
    )
    .await;
    let r = s.ctl(json!({"cmd": "restart", "path": "diem/listener"})).await;
    assert_eq!(r["ok"], true);
    let pid = std::process::id();
    eventually(Duration::from_secs(3), "the restart is audited", || async {
        let logs = s.logs();
        logs.lines()
            .any(|l| {
                l.contains("control command")
                    && l.contains("restart")
                    && l.contains("uid=")
                    && l.contains(&format!("pid={pid}"))
            })
            .then_some(())
    })
    .await;
    let r = s.ctl(json!({"cmd": "kill", "path": "diem/limiter"})).await;
    assert_eq!(r["ok"], true);
    let metrics = s.get("/metrics").await.body;
    assert!(
        metrics.contains("diem_supervisor_restarts_total{path=\"diem/limiter\",reason=\"injected\"} 1"),
        "{metrics}"
    );
    // Options anywhere on the line.
    let (code, out, _) = s.ctl_cli(&["tree", "--json"]).await;
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["tree"]["path"],
        "diem"
    );
    // Human stats, in sections.
    let (code, out, _) = s.ctl_cli(&["stats"]).await;
    assert_eq!(code, 0);
    for section in [
        "requests", "latency", "limiter", "postgres", "workers", "restarts", "memory",
    ] {
        assert!(
            out.lines()
                .any(|l| l.trim_start() == section || l.starts_with(section)),
            "{section}: {out}"
        );
    }
    // A second reload still reports what needs a restart.
    std::fs::write(s.config_path.as_ref().unwrap(), "[http]\nbacklog = 77\n").unwrap();
    for _ in 0..2 {
        let r = s.ctl(json!({"cmd": "reload"})).await;
        assert_eq!(
            r["needs_restart"],
            json!([{"key": "http.backlog", "restart": "process"}]),
            "{r}"
        );
    }
    // --watch redraws until interrupted.
    let mut watch = tokio::process::Command::new(env!("CARGO_BIN_EXE_diem"))
        .env_clear()
        .args(["ctl", "--socket"])
        .arg(&s.socket)
        .args(["tree", "--watch"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let _ = watch.start_kill();
    let out = watch.wait_with_output().await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.matches("diem [one_for_one]").count() >= 2, "{text}");
    // A silent socket: the client gives up after --timeout, naming it.
    let silent_path = s.dir.path().join("silent.sock");
    let silent = tokio::net::UnixListener::bind(&silent_path).unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((c, _)) = silent.accept().await {
            held.push(c);
        }
    });
    let started = Instant::now();
    let (code, _, err) = s
        .ctl_cli(&[
            "--socket",
            silent_path.to_str().unwrap(),
            "--timeout",
            "1s",
            "ping",
        ])
        .await;
    assert_eq!(code, 1);
    assert!(err.contains("no reply within"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    hold.abort();
}

#[tokio::test]
async fn metrics_name_every_family_and_count_what_never_reached_a_handler() {
    let opts = Options::no_limit()
        .env("DIEM_ADMIN__TOKEN", TOKEN)
        .env("DIEM_HTTP__MAX_CONNECTIONS", 2);
    let s = TestServer::start_with(opts, &[('a', "x", "y")]).await;
    let body = json!({"hitokoto": "timed", "from": "x"}).to_string();
    let r = s.post(TOKEN, &body).await;
    assert_eq!(r.status, 201);
    raw_exchange(&s, b"GARBAGE\r\n\r\n", Duration::from_secs(2)).await;
    raw_exchange(&s, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", Duration::from_secs(2)).await;
    // Connections beyond http.max_connections (2) wait in the backlog:
    // counted when the limit is hit.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(s.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(held);
    let text = eventually(Duration::from_secs(5), "the connection limit counted", || async {
        let text = s.get("/metrics").await.body;
        text.contains("reason=\"connection_limit\"").then_some(text)
    })
    .await;
    for line in text.lines().filter(|l| l.starts_with("# TYPE")) {
        let name = line.split_whitespace().nth(2).unwrap();
        assert!(text.contains(&format!("# HELP {name} ")), "no HELP for {name}");
    }
    for expected in [
        "diem_supervisor_restarts_total{path=\"diem/listener\",reason=\"error\"} 0",
        "diem_supervisor_restarts_total{path=\"diem/workers/*\",reason=\"injected\"} 0",
        "diem_http_rejected_total{reason=\"malformed\"} 1",
        "diem_http_rejected_total{reason=\"http2_preface\"} 1",
        "diem_http_request_duration_seconds_count{route=\"hitokoto\",method=\"POST\"} 1",
        "diem_http_request_duration_seconds_count{route=\"readyz\",method=\"GET\"}",
    ] {
        assert!(text.contains(expected), "{expected}:\n{text}");
    }
    assert!(
        text.lines()
            .any(|l| l.starts_with("diem_build_info{") && l.contains("version=\"") && l.contains("node=\"")),
        "{text}"
    );
}

#[tokio::test]
async fn import_prune_deletes_what_the_bundle_dropped() {
    let schema = unique("t_");
    let dir = tempfile::tempdir().unwrap();
    let first = write_bundle(
        dir.path(),
        &[('a', "one", "x"), ('a', "two", "x"), ('b', "three", "x")],
    );
    let (code, out, err) = import_with(&schema, &first, &[]).await;
    assert_eq!(code, 0, "{out}{err}");
    let only_one = write_bundle(dir.path(), &[('a', "one", "x")]);
    let (code, out, err) = import_with(&schema, &only_one, &["--prune"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("1 unchanged, 1 deleted"), "{out}");
    // `b` is not in the bundle: left alone.
    assert_eq!(crate::support::services::count(&schema).await, 2);
    crate::support::services::drop_schema_blocking(schema);
}
