//! The chaos run: `cargo bench --bench chaos`.
//!
//! Starts diem (the optimised build) against the real PostgreSQL and Redis,
//! each behind a fault proxy, with a 10,032-sentence corpus (synthetic, or
//! `$DIEM_BENCH_CORPUS`: `benches/support/corpus.rs`), puts it under steady load (16
//! keep-alive clients, each request from a distinct address through a
//! trusted proxy, so every request is rate-checked and none refused), and
//! runs a fixed, seeded schedule of faults for about a minute:
//!
//! * worker crashes: a random worker killed every 300–700 ms;
//! * actor kills: the limiter, the corpus, the PostgreSQL pool, the
//!   listener, the control socket, the metrics actor, the store subtree and
//!   the whole worker pool, one at a time;
//! * a PostgreSQL outage (packets black-holed, connections cut) of 6 s;
//! * a Redis outage (likewise) of 6 s;
//! * an overload burst: 512 extra clients for 3 s against a pool that
//!   admits 64 requests in flight.
//!
//! It prints requests sent, succeeded and failed by cause, faults injected,
//! recovery time per fault (median and max), availability, peak RSS; the
//! last line is `availability: X% failed-unexpected: N`. A failure is
//! *attributable* when it is a 500 (a request inside a killed handler) or a
//! 503 shed during the overload burst; anything else is unexpected.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    dead_code,
    unreachable_pub
)]

// The test suite's harness: fault proxy, load generator, server, services.
#[path = "support/corpus.rs"]
mod corpus;
#[path = "../tests/support/load.rs"]
mod load;
#[path = "../tests/support/proxy.rs"]
mod proxy;
#[path = "../tests/support/server.rs"]
mod server;
#[path = "../tests/support/services.rs"]
mod services;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use load::{Load, Outcome, Plan};
use proxy::{FaultProxy, Mode};
use serde_json::{json, Value};
use server::{Options, TestServer};
use services::{pg_addr, pg_url, redis_addr, redis_url, via};

const SEED: u64 = 42;
const RUN: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Faults {
    injected: BTreeMap<&'static str, usize>,
    recovery: BTreeMap<&'static str, Vec<Duration>>,
}

impl Faults {
    fn record(&mut self, kind: &'static str, recovery: Option<Duration>) {
        *self.injected.entry(kind).or_default() += 1;
        if let Some(r) = recovery {
            self.recovery.entry(kind).or_default().push(r);
        }
    }
}

async fn ctl(s: &TestServer, request: Value) -> Value {
    // The control socket itself is killed once: wait for it to come back.
    for _ in 0..500 {
        if tokio::net::UnixStream::connect(&s.socket).await.is_ok() {
            return s.ctl(request).await;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("the control socket did not come back");
}

async fn kill(s: &TestServer, path: &str) -> Option<Duration> {
    let reply = ctl(s, json!({"cmd": "kill", "path": path})).await;
    assert_eq!(reply["ok"], true, "kill {path}: {reply}");
    reply["replaced_by"]["recovery_us"]
        .as_u64()
        .map(Duration::from_micros)
}

async fn wait_until<F, Fut>(within: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < within {
        if check().await {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

fn percentile(v: &mut [Duration], q: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort();
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn fmt(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{} µs", d.as_micros())
    } else {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    }
}

async fn chaos() {
    let corpus = corpus::dir();
    let pg_proxy = FaultProxy::start(pg_addr()).await;
    let redis_proxy = FaultProxy::start(redis_addr()).await;
    let opts = Options {
        pg_url: Some(via(&pg_url(), pg_proxy.addr)),
        redis_url: Some(via(&redis_url(), redis_proxy.addr)),
        ..Options::default()
            .env("DIEM_WORKERS__COUNT", 8)
            .env("DIEM_WORKERS__QUEUE_DEPTH", 8)
            .env("DIEM_LIMITER__TRUSTED_PROXIES", "127.0.0.1")
            .env("DIEM_LOG__FILTER", "warn,diem::http::listener=info")
            .env("DIEM_POSTGRES__CONNECT_TIMEOUT", "500ms")
            .env("DIEM_REDIS__COMMAND_TIMEOUT", "100ms")
    };
    let server = TestServer::start(opts).await;
    let (code, out, err) = services::import(&server.schema, &corpus).await;
    assert_eq!(code, 0, "import: {out}{err}");
    server.wait_ready(Duration::from_secs(30)).await;
    let pid = server.pid();

    let mut steady_plan = Plan::new("/hitokoto/v2/?encode=json", 16, RUN);
    steady_plan.headers = vec![("x-forwarded-for".into(), "{ip}".into())];
    steady_plan.timeout = Duration::from_secs(5);
    let started = Instant::now();
    let steady = Load::start(server.addr, steady_plan);
    let mut rng = fastrand::Rng::with_seed(SEED);
    let mut faults = Faults::default();
    let at = |s: u64| started + Duration::from_secs(s);
    let actor_kills: Vec<(u64, &'static str)> = vec![
        (6, "diem/limiter"),
        (9, "diem/store/corpus"),
        (12, "diem/store/postgres"),
        (15, "diem/listener"),
        (18, "diem/control"),
        (21, "diem/metrics"),
        (24, "diem/store"),
        (27, "diem/workers"),
    ];
    let (pg_down, pg_up) = (at(30), at(36));
    let (redis_down, redis_up) = (at(39), at(45));
    let (burst_start, burst_end) = (at(48), at(51));
    let mut next_actor = 0;
    let mut pg_state = 0;
    let mut redis_state = 0;
    let mut burst: Option<Load> = None;
    let mut burst_outcomes = Vec::new();
    let mut readiness = BTreeMap::new();
    let mut next_crash = started + Duration::from_secs(3);
    while started.elapsed() < RUN - Duration::from_secs(3) {
        let now = Instant::now();
        if now >= next_crash && now < at(55) {
            let w = format!("diem/workers/{}", 1 + rng.usize(..8));
            // The pool's instance ids are 1..8 until the pool restarts.
            let reply = ctl(&server, json!({"cmd": "kill", "path": w})).await;
            if reply["ok"] == true {
                let r = reply["replaced_by"]["recovery_us"]
                    .as_u64()
                    .map(Duration::from_micros);
                faults.record("worker crash", r);
            } else {
                // After the pool's restart the ids moved on: pick from the tree.
                let tree = ctl(&server, json!({"cmd": "tree"})).await;
                let pool = tree["tree"]["children"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|c| c["id"] == "workers")
                    .cloned()
                    .unwrap_or(Value::Null);
                if let Some(ws) = pool["children"].as_array().filter(|w| !w.is_empty()) {
                    let path = ws[rng.usize(..ws.len())]["path"]
                        .as_str()
                        .unwrap_or("")
                        .to_owned();
                    let r = kill(&server, &path).await;
                    faults.record("worker crash", r);
                }
            }
            next_crash = now + Duration::from_millis(300 + rng.u64(..400));
        }
        if next_actor < actor_kills.len() && now >= at(actor_kills[next_actor].0) {
            let r = kill(&server, actor_kills[next_actor].1).await;
            faults.record(actor_kills[next_actor].1, r);
            next_actor += 1;
        }
        if pg_state == 0 && now >= pg_down {
            pg_proxy.set(Mode::BlackHole);
            pg_proxy.cut();
            // The node still serves: readiness stays 200 and notes the outage.
            let detected = wait_until(Duration::from_secs(5), || async {
                server.get("/readyz").await.body.contains("postgres: unreachable")
            })
            .await;
            readiness.insert("postgres outage: noted by readiness after", detected);
            pg_state = 1;
        }
        if pg_state == 1 && now >= pg_up {
            pg_proxy.set(Mode::Pass);
            let r = wait_until(Duration::from_secs(15), || async {
                let r = server.get("/readyz").await;
                r.status == 200 && !r.body.contains("postgres")
            })
            .await;
            faults.record("postgres outage (6 s)", r);
            pg_state = 2;
        }
        if redis_state == 0 && now >= redis_down {
            redis_proxy.set(Mode::BlackHole);
            redis_proxy.cut();
            let detected = wait_until(Duration::from_secs(5), || async {
                ctl(&server, json!({"cmd": "stats"})).await["limiter"]["backend"] == "local"
            })
            .await;
            readiness.insert("redis outage: local fallback after", detected);
            redis_state = 1;
        }
        if redis_state == 1 && now >= redis_up {
            redis_proxy.set(Mode::Pass);
            let r = wait_until(Duration::from_secs(15), || async {
                ctl(&server, json!({"cmd": "stats"})).await["limiter"]["backend"] == "redis"
            })
            .await;
            faults.record("redis outage (6 s)", r);
            redis_state = 2;
        }
        if burst.is_none() && burst_outcomes.is_empty() && now >= burst_start {
            let mut plan = Plan::new("/hitokoto/v2/?encode=json", 512, burst_end - burst_start);
            plan.headers = vec![("x-forwarded-for".into(), "{ip}".into())];
            burst = Some(Load::start(server.addr, plan));
        }
        if now >= burst_end {
            if let Some(b) = burst.take() {
                burst_outcomes = b.join().await;
                let r = wait_until(Duration::from_secs(10), || async {
                    let st = ctl(&server, json!({"cmd": "stats"})).await;
                    st["workers"]["in_flight"].as_u64().unwrap_or(u64::MAX) <= 16
                        && server.get("/readyz").await.status == 200
                })
                .await;
                faults.record("overload burst (512 clients, 3 s)", r);
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let outcomes = steady.join().await;
    let hwm = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()))
        })
        .unwrap_or(0);
    let tree = ctl(&server, json!({"cmd": "tree"})).await;
    let ping = ctl(&server, json!({"cmd": "ping"})).await;
    assert_eq!(ping["pid"], pid, "the process never restarted");

    // Classify.
    let rel = |t: Instant| t - started;
    let in_window = |o: &Outcome, a: Instant, b: Instant| o.at >= rel(a) && o.at <= rel(b);
    let mut by_cause: BTreeMap<String, usize> = BTreeMap::new();
    let mut unexpected = 0;
    let mut ok = 0;
    for o in &outcomes {
        match o.status {
            Some(200) => ok += 1,
            Some(500) => {
                *by_cause
                    .entry("500: request inside a killed handler".into())
                    .or_default() += 1
            }
            Some(503) if in_window(o, burst_start, burst_end + Duration::from_secs(1)) => {
                *by_cause
                    .entry("503: shed during the overload burst".into())
                    .or_default() += 1
            }
            other => {
                unexpected += 1;
                let what = match (other, &o.error) {
                    (Some(s), _) => format!("unexpected: status {s}"),
                    (None, Some(e)) => format!("unexpected: {}", e.chars().take(60).collect::<String>()),
                    (None, None) => "unexpected: ?".into(),
                };
                *by_cause.entry(what).or_default() += 1;
            }
        }
    }
    let burst_unexpected = burst_outcomes
        .iter()
        .filter(|o| !matches!(o.status, Some(200) | Some(503)))
        .count();
    unexpected += burst_unexpected;
    let outage_reads = |a: Instant, b: Instant| {
        let w: Vec<&Outcome> = outcomes.iter().filter(|o| in_window(o, a, b)).collect();
        let good = w.iter().filter(|o| o.status == Some(200)).count();
        (good, w.len())
    };
    let (pg_ok, pg_n) = outage_reads(pg_down, pg_up);
    let (rd_ok, rd_n) = outage_reads(redis_down, redis_up);
    let kills: usize = faults.injected.values().sum();

    println!("\n## diem chaos run (seed {SEED}, {} s)\n", RUN.as_secs());
    println!("| requests (steady load, 16 clients) | {} |", outcomes.len());
    println!("|---|---|");
    println!("| succeeded | {ok} |");
    for (cause, n) in &by_cause {
        println!("| failed — {cause} | {n} |");
    }
    println!(
        "| overload burst requests (512 clients, 3 s) | {} sent, {} succeeded, {} shed with 503 |",
        burst_outcomes.len(),
        burst_outcomes.iter().filter(|o| o.status == Some(200)).count(),
        burst_outcomes.iter().filter(|o| o.status == Some(503)).count()
    );
    println!("| reads during the postgres outage | {pg_ok} of {pg_n} succeeded |");
    println!("| reads during the redis outage | {rd_ok} of {rd_n} succeeded |");
    println!("| faults injected | {kills} |");
    println!("| peak RSS | {:.1} MiB |", hwm as f64 / 1024.0);
    println!(
        "| restarts of the root's children (tree) | {} |",
        tree["tree"]["children"]
            .as_array()
            .map(|c| c.iter().map(|n| n["restarts"].as_u64().unwrap_or(0)).sum::<u64>())
            .unwrap_or(0)
    );
    println!("\n| fault | injected | recovery median | recovery max |");
    println!("|---|---|---|---|");
    for (kind, n) in &faults.injected {
        let mut r = faults.recovery.get(kind).cloned().unwrap_or_default();
        let (med, max) = (percentile(&mut r, 0.5), percentile(&mut r, 1.0));
        println!("| {kind} | {n} | {} | {} |", fmt(med), fmt(max));
    }
    for (what, d) in &readiness {
        println!("| {what} | | {} | |", d.map_or("not seen".into(), fmt));
    }
    let availability = 100.0 * ok as f64 / outcomes.len().max(1) as f64;
    println!("\navailability: {availability:.3}% failed-unexpected: {unexpected}");
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing
    // meaningful: only run under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        println!("chaos: run with `cargo bench --bench chaos`");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(chaos());
}
