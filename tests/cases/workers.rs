//! Workers and the listener: a handler panic fails one request only, a
//! slow request holds no other, the pool's bound answers 503 at once,
//! graceful shutdown drains, the root giving up exits non-zero.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::load::{by_status, Load, Plan};
use crate::support::server::{eventually, restarts_under, tree_node, Options, TestServer};
use crate::support::services::pg;

async fn worker_restarts(s: &TestServer) -> u64 {
    restarts_under(&s.ctl(json!({"cmd": "tree"})).await, "diem/workers")
}

#[tokio::test]
async fn a_handler_panic_fails_that_request_only() {
    let s = TestServer::start_with(Options::no_limit(), &[('a', "fine", "x")]).await;
    // 2 s of load: over 50 requests around the panic even on a busy 2-core
    // host (800 ms gave 45 once, with a build running beside the suite).
    let load = Load::start(s.addr, Plan::new("/hitokoto/v2/", 8, Duration::from_secs(2)));
    s.wait_answered(8).await;
    let r = s
        .request("GET", "/hitokoto/v2/", &[("x-diem-fault", "panic")], "")
        .await;
    assert_eq!(r.status, 500);
    assert_eq!(r.json()["error"], "internal_error");
    let outcomes = load.join().await;
    assert!(outcomes.len() > 50, "{}", outcomes.len());
    assert_eq!(
        by_status(&outcomes),
        [(Some(200), outcomes.len())].into_iter().collect()
    );
    assert_eq!(worker_restarts(&s).await, 1, "the worker was replaced");
    let tree = s.ctl(json!({"cmd": "tree"})).await.to_string();
    assert!(
        tree.contains("injected fault"),
        "the exit reason carries the panic: {tree}"
    );
    assert!(s
        .get("/metrics")
        .await
        .body
        .contains("diem_supervisor_restarts_total{path=\"diem/workers/*\",reason=\"error\"} 1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_slow_in_postgres_holds_no_read() {
    const TOKEN: &str = "t0ken-0123456789abcdef";
    const HELD: Duration = Duration::from_secs(2);
    let s = TestServer::start_with(
        Options::no_limit().env("DIEM_ADMIN__TOKEN", TOKEN),
        &[('a', "x", "y")],
    )
    .await;
    // PostgreSQL itself holds this one insert, as a slow commit would.
    pg().await
        .batch_execute(&format!(
            "CREATE FUNCTION {0}.hold() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
                 IF NEW.hitokoto = 'held' THEN PERFORM pg_sleep({1}); END IF;
                 RETURN NEW;
             END $$;
             CREATE TRIGGER hold BEFORE INSERT ON {0}.sentences
                 FOR EACH ROW EXECUTE FUNCTION {0}.hold();",
            s.schema,
            HELD.as_secs()
        ))
        .await
        .expect("the trigger");
    let load = Load::start(s.addr, Plan::new("/hitokoto/v2/", 6, Duration::from_secs(60)));
    s.wait_answered(50).await;
    let body = json!({"hitokoto": "held", "from": "test", "type": "l"}).to_string();
    let sent = load.started().elapsed();
    let w = s.post(TOKEN, &body).await;
    let answered = load.started().elapsed();
    let outcomes = load.finish().await;
    assert_eq!(w.status, 201, "{}", w.body);
    assert!(
        answered - sent >= HELD,
        "the write was held {:?}",
        answered - sent
    );
    // Reads answered while the write was held, after its first 500 ms
    // (reads queued behind it before the fix could still finish then).
    let window = (sent + Duration::from_millis(500))..answered;
    let during = outcomes
        .iter()
        .filter(|o| o.status == Some(200) && window.contains(&(o.at + o.latency)))
        .count();
    assert!(
        during >= 50,
        "reads went on while one worker waited on PostgreSQL: {during} answered in {window:.3?}"
    );
    assert_eq!(
        by_status(&outcomes),
        [(Some(200), outcomes.len())].into_iter().collect(),
        "no read failed"
    );
}

#[tokio::test]
async fn past_the_pool_bound_requests_get_503_at_once() {
    let opts = Options::no_limit()
        .env("DIEM_WORKERS__COUNT", 1)
        .env("DIEM_WORKERS__QUEUE_DEPTH", 2);
    let s = TestServer::start_with(opts, &[('a', "x", "y")]).await;
    // Two slow requests fill the pool (1 worker × depth 2).
    let slow: Vec<_> = (0..2)
        .map(|_| {
            let url = s.addr;
            tokio::spawn(async move {
                let mut plan = Plan::new("/hitokoto/v2/", 1, Duration::from_secs(5));
                plan.max_requests = 1;
                plan.headers = vec![("x-diem-fault".into(), "stall=800".into())];
                Load::start(url, plan).join().await
            })
        })
        .collect();
    s.wait_in_flight(2).await;
    let started = Instant::now();
    let r = s.get("/hitokoto/v2/").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), "1");
    assert!(
        started.elapsed() < Duration::from_millis(400),
        "refused at once, not queued"
    );
    assert_eq!(
        s.get("/healthz").await.status,
        200,
        "liveness is answered without a worker"
    );
    for t in slow {
        assert_eq!(t.await.unwrap()[0].status, Some(200));
    }
    assert_eq!(s.get("/hitokoto/v2/").await.status, 200);
}

#[tokio::test]
async fn sigterm_drains_in_flight_requests_and_exits_0() {
    let mut s = TestServer::start_with(Options::no_limit(), &[('a', "x", "y")]).await;
    let mut plan = Plan::new("/hitokoto/v2/", 4, Duration::from_secs(10));
    plan.max_requests = 4;
    plan.headers = vec![("x-diem-fault".into(), "stall=1000".into())];
    let in_flight = Load::start(s.addr, plan);
    s.wait_in_flight(4).await;
    s.sigterm();
    let outcomes = in_flight.join().await;
    assert_eq!(
        by_status(&outcomes),
        [(Some(200), 4)].into_iter().collect(),
        "{outcomes:?}"
    );
    assert_eq!(s.wait_exit(Duration::from_secs(10)).await, 0);
    assert!(
        tokio::net::TcpStream::connect(s.addr).await.is_err(),
        "the socket is closed"
    );
    assert!(!s.socket.exists(), "the control socket is removed at exit");
    let logs = s.logs();
    assert!(
        logs.contains("draining connections") && logs.contains("diem stopped"),
        "{logs}"
    );
}

#[tokio::test]
async fn ctl_shutdown_is_the_same_graceful_shutdown() {
    let mut s = TestServer::start_with(Options::no_limit(), &[('a', "x", "y")]).await;
    let mut plan = Plan::new("/hitokoto/v2/", 2, Duration::from_secs(10));
    plan.max_requests = 2;
    plan.headers = vec![("x-diem-fault".into(), "stall=600".into())];
    let in_flight = Load::start(s.addr, plan);
    s.wait_in_flight(2).await;
    let reply = s.ctl(json!({"cmd": "shutdown", "grace_secs": 5})).await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(
        by_status(&in_flight.join().await),
        [(Some(200), 2)].into_iter().collect()
    );
    assert_eq!(s.wait_exit(Duration::from_secs(10)).await, 0);
}

#[tokio::test]
async fn a_listener_restart_refuses_no_connection() {
    let s = TestServer::start_with(Options::no_limit(), &[('a', "x", "y")]).await;
    let mut plan = Plan::new("/hitokoto/v2/", 6, Duration::from_millis(1500));
    // New connection for each request: a refused connect would show.
    plan.headers = vec![("connection".into(), "close".into())];
    let load = Load::start(s.addr, plan);
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(
            s.ctl(json!({"cmd": "kill", "path": "diem/listener"})).await["ok"],
            true
        );
    }
    let outcomes = load.join().await;
    assert_eq!(
        by_status(&outcomes),
        [(Some(200), outcomes.len())].into_iter().collect()
    );
    let tree = s.ctl(json!({"cmd": "tree"})).await;
    assert_eq!(tree_node(&tree, "diem/listener")["restarts"], 5);
}

#[tokio::test]
async fn when_the_root_gives_up_the_process_exits_non_zero() {
    // Intensity 10 in 60 s at the root: the 11th restart of a root child
    // within a minute makes the root give up.
    let mut s = TestServer::start(Options::no_limit()).await;
    for i in 0..10 {
        let reply = s.ctl(json!({"cmd": "kill", "path": "diem/metrics"})).await;
        assert_eq!(reply["ok"], true, "kill {i}: {reply}");
    }
    // The 11th would exceed the intensity: refused, and the node serves on.
    let (code, _, err) = s.ctl_cli(&["kill", "diem/metrics"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("would_exceed_intensity") && err.contains("10 of its 10"),
        "{err}"
    );
    assert!(s.is_running());
    // Forced, it goes through: the reply may not make it out before the process exits.
    let (code, _, _) = s.ctl_cli(&["kill", "diem/metrics", "--force"]).await;
    assert!(code == 0 || code == 1, "{code}");
    assert_eq!(s.wait_exit(Duration::from_secs(10)).await, 1);
    let logs = s.logs();
    assert!(
        logs.contains("reached max restart intensity") && logs.contains("the root supervisor gave up"),
        "{logs}"
    );
    eventually(Duration::from_secs(2), "control socket removed", || async {
        (!s.socket.exists()).then_some(())
    })
    .await;
}
