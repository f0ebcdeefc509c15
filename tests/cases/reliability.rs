//! Reliability under real faults while real load runs: crash storms, every
//! long-lived actor killed, PostgreSQL and Redis outages through the fault
//! proxy, restart intensity, overload, hostile HTTP, shutdown under load.
//!
//! Bounds asserted here (generous, so a loaded CI machine does not flake;
//! the measured figures are in docs/reliability.md):
//! * after killing an actor not on the request path, no request fails and
//!   the longest gap between two successful responses stays under 1 s (plus
//!   however long the host stopped the test process itself, see
//!   `support/stall.rs`);
//! * `/readyz` notes a PostgreSQL outage within 3 s (staying 200: the node
//!   still serves) and its end within 10 s.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::load::{by_status, Load, Outcome, Plan};
use crate::support::proxy::{FaultProxy, Mode};
use crate::support::server::{eventually, restarts_under, tree_node, Options, TestServer};
use crate::support::services::{pg, pg_addr, pg_url, redis_addr, redis_url, via};
use crate::support::stall::StallMeter;

fn child<'a>(tree: &'a Value, path: &str) -> &'a Value {
    tree_node(tree, path)
}

/// The longest time no request was answered: when it began (from the
/// load's start) and how long it lasted.
fn longest_gap(outcomes: &[Outcome]) -> (Duration, Duration) {
    let mut done: Vec<Duration> = outcomes
        .iter()
        .filter(|o| o.status == Some(200))
        .map(|o| o.at + o.latency)
        .collect();
    done.sort();
    done.windows(2)
        .map(|w| (w[0], w[1] - w[0]))
        .max_by_key(|(_, gap)| *gap)
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_crash_storm_fails_only_the_crashing_requests() {
    let s = TestServer::start_with(Options::no_limit(), &[('a', "x", "y")]).await;
    // The load runs until the kills are over and it has been answered again.
    let load = Load::start(s.addr, Plan::new("/hitokoto/v2/", 8, Duration::from_secs(60)));
    let mut crash_plan = Plan::new("/hitokoto/v2/", 2, Duration::from_secs(10));
    crash_plan.max_requests = 40;
    crash_plan.headers = vec![("x-diem-fault".into(), "panic".into())];
    let crashes = Load::start(s.addr, crash_plan).join().await;
    let kills = 10;
    for i in 0..kills {
        let path = format!("diem/workers/{}", 1 + i % 4);
        assert_eq!(s.ctl(json!({"cmd": "kill", "path": path})).await["ok"], true);
    }
    let before = load.completed();
    eventually(
        Duration::from_secs(20),
        "200 requests answered after the kills",
        || async { (load.completed() >= before + 200).then_some(()) },
    )
    .await;
    let outcomes = load.finish().await;
    assert_eq!(
        by_status(&crashes),
        [(Some(500), 40)].into_iter().collect(),
        "every crashing request fails, with 500"
    );
    let failed = outcomes.iter().filter(|o| o.status != Some(200)).count();
    assert!(
        failed <= kills,
        "only a request inside a killed handler may fail: {:?}",
        by_status(&outcomes)
    );
    assert!(outcomes
        .iter()
        .all(|o| o.status.is_none_or(|s| s == 200 || s == 500)));
    let tree = s.ctl(json!({"cmd": "tree"})).await;
    let pool = child(&tree, "diem/workers");
    assert_eq!(pool["size"], 4, "the pool is whole again");
    let restarts = restarts_under(&tree, "diem/workers");
    assert_eq!(restarts, 40 + kills as u64, "every crash was a restart");
    assert_eq!(pool["restarts"], 0, "the pool itself never gave up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_long_lived_actor_killed_in_turn_under_load() {
    const TOKEN: &str = "t0ken-0123456789abcdef";
    let s = TestServer::start_with(
        Options::no_limit().env("DIEM_ADMIN__TOKEN", TOKEN),
        &[('a', "x", "y")],
    )
    .await;
    let meter = StallMeter::start();
    let load = Load::start(s.addr, Plan::new("/hitokoto/v2/", 6, Duration::from_secs(6)));
    // A writer: every 201 it gets must be in PostgreSQL at the end.
    let (writer_addr, auth, load_started) = (s.addr, format!("Bearer {TOKEN}"), load.started());
    let writer = tokio::spawn(async move {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
        let mut acknowledged = Vec::new();
        let mut statuses = BTreeMap::new();
        // The slowest write: when it was sent (from the load's start) and
        // how long it took.
        let mut slowest = (Duration::ZERO, Duration::ZERO);
        let mut i = 0;
        while load_started.elapsed() < Duration::from_secs(5) {
            i += 1;
            let body = json!({"hitokoto": format!("durable {i}"), "from": "writer", "type": "l"}).to_string();
            let req = hyper::Request::post(format!("http://{writer_addr}/hitokoto/v2/"))
                .header("authorization", &auth)
                .body(http_body_util::Full::new(bytes::Bytes::from(body)))
                .unwrap();
            let sent = Instant::now();
            let status = match client.request(req).await {
                Ok(r) => r.status().as_u16(),
                Err(_) => 0,
            };
            let took = sent.elapsed();
            if took > slowest.1 {
                slowest = (sent - load_started, took);
            }
            *statuses.entry(status).or_insert(0) += 1;
            if status == 201 {
                acknowledged.push(format!("durable {i}"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (acknowledged, statuses, slowest)
    });
    let paths = [
        "diem/store",
        "diem/limiter",
        "diem/store/postgres",
        "diem/store/corpus",
        "diem/listener",
        "diem/control",
        "diem/metrics",
    ];
    // When each kill was asked for and answered, from the load's start.
    let mut kills = Vec::new();
    for path in paths {
        tokio::time::sleep(Duration::from_millis(400)).await;
        let asked = load.started().elapsed();
        let reply = eventually(Duration::from_secs(5), "control socket answers", || async {
            match tokio::net::UnixStream::connect(&s.socket).await {
                Ok(_) => Some(s.ctl(json!({"cmd": "kill", "path": path})).await),
                Err(_) => None,
            }
        })
        .await;
        assert_eq!(reply["state"], "running", "{path}: {reply}");
        kills.push(format!("{path} {asked:.3?}..{:.3?}", load.started().elapsed()));
    }
    let outcomes = load.join().await;
    let (acknowledged, statuses, (slowest_at, slowest)) = writer.await.unwrap();
    assert_eq!(
        by_status(&outcomes),
        [(Some(200), outcomes.len())].into_iter().collect(),
        "reads never failed"
    );
    let ((gap_from, gap), host_stall) = (longest_gap(&outcomes), meter.stop());
    assert!(
        gap < Duration::from_secs(1) + host_stall,
        "the API kept answering: longest gap {gap:?} from {gap_from:.3?} (the host stopped this \
         process for up to {host_stall:?}); kills: {kills:?}; slowest write {slowest:.3?} from \
         {slowest_at:.3?}"
    );
    assert!(!acknowledged.is_empty(), "{statuses:?}");
    assert!(
        statuses.keys().all(|s| *s == 201 || *s == 503),
        "writes succeed or are refused cleanly: {statuses:?}"
    );
    let rows: Vec<String> = pg()
        .await
        .query(
            &format!(
                "SELECT hitokoto FROM {}.sentences WHERE \"from\" = 'writer'",
                s.schema
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for w in &acknowledged {
        assert!(rows.contains(w), "acknowledged write `{w}` is in PostgreSQL");
    }
    let tree = s.ctl(json!({"cmd": "tree"})).await;
    for path in paths {
        assert!(child(&tree, path)["restarts"].as_u64().unwrap() >= 1, "{path}");
        assert_eq!(child(&tree, path)["state"], "running");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_reads_go_on_writes_refused_readiness_follows() {
    const TOKEN: &str = "t0ken-0123456789abcdef";
    let proxy = FaultProxy::start(pg_addr()).await;
    let opts = Options {
        pg_url: Some(via(&pg_url(), proxy.addr)),
        ..Options::no_limit().env("DIEM_ADMIN__TOKEN", TOKEN)
    };
    let s = TestServer::start_with(opts, &[('a', "x", "y"), ('b', "z", "w")]).await;
    let load = Load::start(
        s.addr,
        Plan::new("/hitokoto/v2/?encode=json", 4, Duration::from_secs(6)),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;

    proxy.set(Mode::BlackHole);
    proxy.cut();
    let outage = Instant::now();
    // The node still serves (reads from its snapshot): ready, with the
    // outage noted.
    let degraded_after = eventually(Duration::from_secs(3), "readiness reports the outage", || async {
        let r = s.get("/readyz").await;
        (r.status == 200 && r.body.contains("postgres: unreachable")).then(|| outage.elapsed())
    })
    .await;
    let auth = format!("Bearer {TOKEN}");
    for i in 0..3 {
        let body = json!({"hitokoto": format!("lost? {i}"), "from": "t"}).to_string();
        let r = s
            .request("POST", "/hitokoto/v2/", &[("authorization", &auth)], &body)
            .await;
        assert_eq!(r.status, 503, "{}", r.body);
        assert!(!r.header("retry-after").is_empty());
    }
    tokio::time::sleep(Duration::from_secs(3)).await;

    proxy.set(Mode::Pass);
    let healed = Instant::now();
    eventually(
        Duration::from_secs(10),
        "readiness stops noting the outage",
        || async {
            let r = s.get("/readyz").await;
            (r.status == 200 && !r.body.contains("postgres")).then_some(())
        },
    )
    .await;
    let recovered_after = healed.elapsed();
    let outcomes = load.join().await;
    assert_eq!(
        by_status(&outcomes),
        [(Some(200), outcomes.len())].into_iter().collect(),
        "reads: 100%"
    );
    let r = s
        .request(
            "POST",
            "/hitokoto/v2/",
            &[("authorization", &auth)],
            &json!({"hitokoto": "after", "from": "t"}).to_string(),
        )
        .await;
    assert_eq!(r.status, 201);
    let n: i64 = pg()
        .await
        .query_one(
            &format!(
                "SELECT count(*) FROM {}.sentences WHERE hitokoto LIKE 'lost?%'",
                s.schema
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "no refused write was made");
    eprintln!(
        "postgres outage: degraded after {degraded_after:?}, ready again {recovered_after:?} after healing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_no_5xx_no_fresh_budget() {
    let proxy = FaultProxy::start(redis_addr()).await;
    let opts = Options {
        redis_url: Some(via(&redis_url(), proxy.addr)),
        ..Options::default()
            .env("DIEM_LIMITER__BURST", 4)
            .env("DIEM_LIMITER__COUNT", 1)
            .env("DIEM_LIMITER__PERIOD", "1h")
            .env("DIEM_LIMITER__TRUSTED_PROXIES", "127.0.0.1")
            .env("DIEM_REDIS__COMMAND_TIMEOUT", "100ms")
    };
    let s = TestServer::start_with(opts, &[('a', "x", "y")]).await;
    // Many clients (distinct X-Forwarded-For), 20 requests each, over the outage.
    let mut plan = Plan::new("/hitokoto/v2/", 4, Duration::from_secs(4));
    plan.headers = vec![("x-forwarded-for".into(), "198.51.100.{seq}".into())];
    plan.max_requests = 200;
    let hammer = |ip: &'static str| {
        let mut p = Plan::new("/hitokoto/v2/", 1, Duration::from_secs(6));
        p.headers = vec![("x-forwarded-for".into(), ip.into())];
        p
    };
    let one_client = Load::start(s.addr, hammer("203.0.113.50"));
    tokio::time::sleep(Duration::from_millis(700)).await;
    proxy.set(Mode::BlackHole);
    proxy.cut();
    eventually(Duration::from_secs(3), "limiter falls back", || async {
        (s.ctl(json!({"cmd": "stats"})).await["limiter"]["backend"] == "local").then_some(())
    })
    .await;
    // Deciding locally is said where an operator looks, without failing
    // readiness (the node still serves and still limits).
    let ready = s.ctl(json!({"cmd": "ready"})).await;
    assert_eq!(ready["ready"], true, "{ready}");
    assert!(
        ready["notes"].to_string().contains("limiter: deciding locally"),
        "{ready}"
    );
    let many = Load::start(s.addr, plan).join().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    proxy.set(Mode::Pass);
    eventually(Duration::from_secs(5), "limiter back on redis", || async {
        (s.ctl(json!({"cmd": "stats"})).await["limiter"]["backend"] == "redis").then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let one = one_client.finish().await;
    let all: Vec<&Outcome> = one.iter().chain(many.iter()).collect();
    assert!(
        all.iter().all(|o| matches!(o.status, Some(200 | 429))),
        "no 5xx: {:?}",
        by_status(&one)
    );
    assert_eq!(
        by_status(&many),
        [(Some(200), 200)].into_iter().collect(),
        "distinct clients each within budget"
    );
    // One client: its budget of 5 (one an hour), whichever store decided —
    // the local store continues from Redis's TAT (no fresh budget on the
    // switch), and Redis hears what was admitted locally before it decides
    // again.
    let allowed = one.iter().filter(|o| o.status == Some(200)).count();
    assert_eq!(allowed, 5, "one client allowed {allowed} of {}", one.len());
    assert!(one.len() > 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_that_cannot_start_escalates_to_the_root_and_the_process_exits_1() {
    let opts = Options::no_limit().env("FAULT_CRASH_AT_START", "diem/store/corpus@2");
    let mut s = TestServer::start_with(opts, &[('a', "x", "y")]).await;
    let load = Load::start(s.addr, Plan::new("/hitokoto/v2/", 2, Duration::from_secs(30)));
    // Let the load get going, so that "it served until the end" means something.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (code, _, _) = s.ctl_cli(&["kill", "diem/store/corpus"]).await;
    assert!(code == 0 || code == 1);
    let exit = s.wait_exit(Duration::from_secs(20)).await;
    assert_eq!(
        exit, 1,
        "the root gave up: exit non-zero so the service manager restarts diem"
    );
    let logs = s.logs();
    let lines: Vec<&str> = logs.lines().collect();
    let gave_up = |path: &str| {
        let field = format!("path={path}");
        lines
            .iter()
            .position(|l| l.contains("reached max restart intensity") && l.trim_end().ends_with(&field))
    };
    let (store_gave_up, root_gave_up) = (gave_up("diem/store"), gave_up("diem"));
    assert!(store_gave_up.is_some() && root_gave_up.is_some(), "{logs}");
    assert!(
        store_gave_up < root_gave_up,
        "the store gave up first, then the root"
    );
    assert!(logs.contains("injected fault: diem/store/corpus fails to start"));
    let outcomes = load.finish().await;
    assert!(
        outcomes.iter().filter(|o| o.status == Some(200)).count() > 10,
        "it served until the end"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_is_refused_at_once_and_leaves_the_node_healthy() {
    let opts = Options::no_limit()
        .env("DIEM_WORKERS__COUNT", 2)
        .env("DIEM_WORKERS__QUEUE_DEPTH", 4);
    let s = TestServer::start_with(opts, &[('a', "x", "y")]).await;
    let mut plan = Plan::new("/hitokoto/v2/", 64, Duration::from_secs(3));
    plan.headers = vec![("x-diem-fault".into(), "stall=20".into())];
    let outcomes = Load::start(s.addr, plan).join().await;
    let accepted: Vec<&Outcome> = outcomes.iter().filter(|o| o.status == Some(200)).collect();
    let refused: Vec<&Outcome> = outcomes.iter().filter(|o| o.status == Some(503)).collect();
    assert_eq!(
        accepted.len() + refused.len(),
        outcomes.len(),
        "{:?}",
        by_status(&outcomes)
    );
    assert!(
        accepted.len() > 50 && refused.len() > accepted.len(),
        "{:?}",
        by_status(&outcomes)
    );
    let max = |v: &[&Outcome]| v.iter().map(|o| o.latency).max().unwrap_or_default();
    // Capacity 8, two workers: an admitted request waits behind at most
    // three others of 20 ms each.
    assert!(
        max(&accepted) < Duration::from_millis(1_000),
        "accepted latency bounded: {:?}",
        max(&accepted)
    );
    assert!(
        max(&refused) < Duration::from_millis(500),
        "refused at once: {:?}",
        max(&refused)
    );
    let stats = s.ctl(json!({"cmd": "stats"})).await;
    let rss = stats["memory"]["rss_bytes"].as_u64().unwrap();
    assert!(rss < 128 * 1024 * 1024, "rss {rss}");
    assert_eq!(stats["workers"]["in_flight"], 0);
    assert_eq!(s.get("/readyz").await.status, 200);
    assert_eq!(s.get("/hitokoto/v2/").await.status, 200);
}

async fn raw_exchange(addr: std::net::SocketAddr, bytes: &[u8]) -> String {
    let mut c = TcpStream::connect(addr).await.unwrap();
    let _ = c.write_all(bytes).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn status_of(response: &str) -> Option<u16> {
    response.split(' ').nth(1)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_http_gets_4xx_or_a_closed_connection() {
    let opts = Options::no_limit()
        .env("DIEM_HTTP__HEADER_READ_TIMEOUT", "500ms")
        .env("DIEM_HTTP__BODY_READ_TIMEOUT", "500ms")
        .env("DIEM_ADMIN__TOKEN", "hostile-t0ken-0123456789");
    let s = TestServer::start_with(opts, &[('a', "x", "y")]).await;
    let bystander = Load::start(s.addr, Plan::new("/hitokoto/v2/", 2, Duration::from_secs(4)));
    let addr = s.addr;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("bad request line", b"GARBAGE\r\n\r\n".to_vec()),
        ("bad version", b"GET / HTTP/9.9\r\n\r\n".to_vec()),
        ("binary", vec![0, 159, 146, 150, 255, 13, 10, 13, 10]),
        (
            "oversized headers",
            format!("GET /hitokoto/v2/ HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(40_000)).into_bytes(),
        ),
        (
            "huge body",
            b"POST /hitokoto/v2/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer hostile-t0ken-0123456789\r\nContent-Length: 10000000\r\n\r\n{}".to_vec(),
        ),
        (
            "truncated body",
            b"POST /hitokoto/v2/ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer hostile-t0ken-0123456789\r\nContent-Length: 100\r\n\r\n{\"hito".to_vec(),
        ),
        ("bad chunked", b"POST /hitokoto/v2/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec()),
        ("invalid utf-8 in query", b"GET /hitokoto/v2/?encode=\xff\xfe&c=\xc3 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
    ];
    for (what, bytes) in cases {
        let response = raw_exchange(addr, &bytes).await;
        if what == "huge body" {
            assert_eq!(
                status_of(&response),
                Some(413),
                "refused on its declared length: {response}"
            );
        }
        if what == "oversized headers" {
            assert_eq!(status_of(&response), Some(431), "{response}");
        }
        match status_of(&response) {
            None => {}
            Some(code) => assert!((400..500).contains(&code) || code == 200, "{what}: {response}"),
        }
        assert!(
            !response.contains(" 500 ") && !response.contains(" 503 "),
            "{what}: {response}"
        );
    }
    // Slowloris: headers trickling in are cut off after the header timeout.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    let _ = slow.write_all(b"GET /hitokoto/v2/ HTTP/1.1\r\nHost: x\r\n").await;
    let mut closed = false;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if slow.write_all(b"X-Slow: 1\r\n").await.is_err() {
            closed = true;
            break;
        }
    }
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), slow.read_to_end(&mut rest)).await;
    assert!(
        closed || started.elapsed() < Duration::from_secs(4),
        "a slow client is cut off"
    );
    // Hostile values in every parameter: 4xx or a sentence, never 5xx.
    let hostile = [
        "%00",
        "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "-1",
        "99999999999999999999",
        "%FF%FE",
        "a%0D%0ASet-Cookie:x=1",
        &"x".repeat(4_000),
        "1e9",
        "NaN",
        "..%2F..%2Fetc%2Fpasswd",
        "%E2%80%A8",
    ];
    for p in ["encode", "callback", "length", "c", "min_length", "max_length"] {
        for v in hostile {
            let r = s.get(&format!("/hitokoto/v2/?{p}={v}")).await;
            assert!(
                r.status == 200 || r.status == 400 || r.status == 404,
                "{p}={v}: {}",
                r.status
            );
            assert!(!r.headers.contains_key("set-cookie"));
            let decoded: String = form_urlencoded::parse(format!("v={v}").as_bytes())
                .map(|(_, v)| v.into_owned())
                .collect();
            if p == "callback" && !diem::api::query::is_callback(&decoded) {
                assert_eq!(r.status, 400, "callback={v}");
            }
        }
    }
    let outcomes = bystander.join().await;
    assert_eq!(
        by_status(&outcomes),
        [(Some(200), outcomes.len())].into_iter().collect(),
        "other clients unaffected"
    );
    assert_eq!(s.get("/readyz").await.status, 200);
    let tree = s.ctl(json!({"cmd": "tree"})).await;
    assert_eq!(child(&tree, "diem/workers")["size"], 4);
}

/// Reads one response of a keep-alive connection (head and
/// `Content-Length` body); its status, or `None` if the connection closed.
async fn read_response(c: &mut TcpStream) -> Option<u16> {
    let mut got = Vec::new();
    let mut byte = [0; 1];
    while !got.ends_with(b"\r\n\r\n") {
        if c.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        got.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&got).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    c.read_exact(&mut body).await.ok()?;
    status_of(&head)
}

/// `http.header_read_timeout` runs from the connection's opening or the
/// end of its previous request, and not while a request is handled: a
/// keep-alive client that sends more often than that keeps its connection
/// however long it stays, even across a slow request; one that stops is
/// closed quietly; one that stalls inside a head is cut off and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_header_deadline_restarts_with_each_request() {
    let opts = Options::no_limit().env("DIEM_HTTP__HEADER_READ_TIMEOUT", "1s");
    let s = TestServer::start_with(opts, &[('a', "x", "y")]).await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    let started = Instant::now();
    let mut answered = 0;
    while started.elapsed() < Duration::from_millis(2500) {
        c.write_all(b"GET /hitokoto/v2/?encode=text HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(read_response(&mut c).await, Some(200), "request {answered}");
        answered += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // A request that takes longer than the timeout is not cut off.
    c.write_all(b"GET /hitokoto/v2/ HTTP/1.1\r\nHost: x\r\nX-Diem-Fault: stall=1500\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_response(&mut c).await, Some(200), "the slow request");
    // Then nothing: closed once the timeout has passed, not before.
    let idle = Instant::now();
    let closed = tokio::time::timeout(Duration::from_secs(10), read_response(&mut c)).await;
    assert_eq!(closed, Ok(None), "an idle connection is closed");
    assert!(
        idle.elapsed() >= Duration::from_millis(900),
        "closed after {:?}, before the timeout",
        idle.elapsed()
    );
    // Part of a head, then a stall.
    let mut slow = TcpStream::connect(s.addr).await.unwrap();
    slow.write_all(b"GET /hitokoto/v2/ HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let cut = tokio::time::timeout(Duration::from_secs(10), read_response(&mut slow)).await;
    assert_eq!(cut, Ok(None), "a stalled head is cut off");
    // Only the stalled head is a refusal; the idle connection is not.
    let metrics = s.get("/metrics").await.body;
    assert!(
        metrics.contains("diem_http_rejected_total{reason=\"header_timeout\"} 1\n"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_drops_no_request_in_flight() {
    let mut s = TestServer::start_with(
        Options::no_limit().env("DIEM_WORKERS__COUNT", 8),
        &[('a', "x", "y")],
    )
    .await;
    let mut plan = Plan::new("/hitokoto/v2/", 16, Duration::from_secs(10));
    plan.headers = vec![("x-diem-fault".into(), "stall=150".into())];
    let load = Load::start(s.addr, plan);
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let sigterm_at = Instant::now();
    s.sigterm();
    assert_eq!(s.wait_exit(Duration::from_secs(15)).await, 0);
    let outcomes = load.finish().await;
    let before: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.at + Duration::from_millis(50) < Duration::from_millis(1_000))
        .collect();
    let _ = sigterm_at;
    assert!(before.len() > 40, "{}", before.len());
    assert!(
        before.iter().all(|o| o.status == Some(200)),
        "every request sent before SIGTERM was answered 200: {:?}",
        before
            .iter()
            .filter(|o| o.status != Some(200))
            .take(3)
            .collect::<Vec<_>>()
    );
}
