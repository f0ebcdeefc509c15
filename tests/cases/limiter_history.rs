//! The limiter's decisions checked against GCRA's bound by the
//! decision-history checker (issue 29): three nodes on one Redis that
//! flaps (`CLIENT PAUSE 400` every second), 40 clients at 8 requests/s.
//! Each node switches between Redis and local decisions; a switch must not
//! hand out a fresh budget (the local fallback continues from what Redis
//! last said about each client, and decisions go back to Redis only after
//! health checks that run the script pass twice in a row).

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::cluster::{free_port, which};
use crate::support::history::{check, excess, Bound, Record};
use crate::support::server::{eventually, Options, TestServer};

/// A Redis of the test's own, on a loopback port of its own (a pause must
/// not stall the other tests' Redis).
struct OwnRedis {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl OwnRedis {
    async fn start() -> OwnRedis {
        let server = which("redis-server").expect("redis-server: apt-get install -y redis-server");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = Command::new(server)
            .current_dir(dir.path())
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let redis = OwnRedis {
            child,
            port,
            _dir: dir,
        };
        eventually(Duration::from_secs(20), "the test's Redis starts", || async {
            redis.cli(&["PING"]).filter(|out| out.contains("PONG"))
        })
        .await;
        redis
    }

    fn cli(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .output()
            .ok()?;
        Some(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_checker_finds_admissions_over_the_bound() {
    let bound = Bound {
        burst: 4,
        emission_us: 1_000_000,
    };
    // A burst of 5, then one a second: exactly the bound.
    let exact: Vec<i64> = (0..5).chain((1..6).map(|s| s * 1_000_000)).collect();
    assert_eq!(excess(&exact, bound), 0);
    // A sixth in the burst, and two in the second second: over by 1, by 2.
    assert_eq!(excess(&[0, 1, 2, 3, 4, 5], bound), 1);
    let mut twice = exact.clone();
    twice.extend([1_000_001, 1_500_000]);
    twice.sort_unstable();
    assert_eq!(excess(&twice, bound), 2);
    // Per client: another client's admissions are not this one's.
    let record = |client: &str, at_us: i64| Record {
        node: 0,
        client: client.to_owned(),
        at_us,
        allowed: true,
        store: "local".to_owned(),
    };
    let history: Vec<Record> = (0..5)
        .map(|t| record("a", t))
        .chain((0..5).map(|t| record("b", t)))
        .collect();
    let report = check(&history, bound);
    assert_eq!(
        (report.clients, report.clients_over, report.max_excess),
        (2, 0, 0)
    );
}

const CLIENTS: usize = 40;
const PER_SECOND: u64 = 8;
const SECONDS: u64 = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_redis_costs_at_most_one_burst_per_client_on_three_nodes() {
    let redis = OwnRedis::start().await;
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let prefix = format!("flap{}:", std::process::id());
    let mut nodes = Vec::new();
    for _ in 0..3 {
        let opts = Options {
            redis_url: Some(url.clone()),
            ..Options::default()
        }
        .env("DIEM_REDIS__KEY_PREFIX", &prefix)
        .env("DIEM_LIMITER__TRUSTED_PROXIES", "127.0.0.1")
        .env("DIEM_LIMITER__FLEET_SIZE", 3)
        // burst 4, 5 per 5 s: T = 1 s.
        .env("DIEM_LIMITER__BURST", 4)
        .env("DIEM_LIMITER__COUNT", 5)
        .env("DIEM_LIMITER__PERIOD", "5s");
        nodes.push(TestServer::start(opts).await);
    }
    for s in &nodes {
        eventually(Duration::from_secs(20), "redis decides", || async {
            (s.ctl(json!({"cmd": "stats"})).await["limiter"]["backend"] == "redis").then_some(())
        })
        .await;
    }
    let nodes = Arc::new(nodes);
    let history = Arc::new(Mutex::new(Vec::new()));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let start = tokio::time::Instant::now() + Duration::from_millis(200);

    // The fault: Redis paused 400 ms at the start of every second.
    let port = redis.port;
    let pauser = tokio::spawn(async move {
        for second in 0..SECONDS {
            tokio::time::sleep_until(start + Duration::from_secs(second)).await;
            let _ = tokio::process::Command::new("redis-cli")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                    "CLIENT",
                    "PAUSE",
                    "400",
                ])
                .stdout(Stdio::null())
                .status()
                .await;
        }
    });
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let (nodes, history, failures) = (nodes.clone(), history.clone(), failures.clone());
        clients.push(tokio::spawn(async move {
            let client = format!("198.51.100.{}", c + 1);
            let every = Duration::from_micros(1_000_000 / PER_SECOND);
            // Spread over the interval, so the clients do not move in step.
            let offset = every * u32::try_from(c).unwrap() / u32::try_from(CLIENTS).unwrap();
            for k in 0..PER_SECOND * SECONDS {
                tokio::time::sleep_until(start + offset + every * u32::try_from(k).unwrap()).await;
                let node = (c + usize::try_from(k).unwrap()) % nodes.len();
                let r = nodes[node]
                    .request("GET", "/hitokoto/v2/", &[("x-forwarded-for", &client)], "")
                    .await;
                match Record::of(node, &client, r.status, r.header("x-diem-decided")) {
                    Some(record) if r.status == 200 || r.status == 429 => {
                        history.lock().unwrap().push(record)
                    }
                    _ => failures.lock().unwrap().push(format!("{} {}", r.status, r.body)),
                }
            }
        }));
    }
    let began = Instant::now();
    for c in clients {
        c.await.unwrap();
    }
    pauser.await.unwrap();
    let took = began.elapsed();

    let failures = failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "every request answered 200 or 429: {failures:?}"
    );
    let history = history.lock().unwrap().clone();
    assert_eq!(
        history.len(),
        CLIENTS * usize::try_from(PER_SECOND * SECONDS).unwrap()
    );
    let bound = Bound {
        burst: 4,
        emission_us: 1_000_000,
    };
    let report = check(&history, bound);
    let switches: Vec<usize> = nodes
        .iter()
        .map(|s| s.logs().matches("deciding locally").count())
        .collect();
    eprintln!(
        "flapping redis, 3 nodes, {CLIENTS} clients × {PER_SECOND}/s for {took:?}: {report:?}; switches to local per node: {switches:?}"
    );
    assert!(
        report.by_store.get("local").copied().unwrap_or(0) > 0,
        "the pauses made the nodes decide locally: {report:?}"
    );
    assert_eq!(
        report.max_excess_redis_only, 0,
        "Redis alone is exact: {report:?}"
    );
    assert!(
        report.max_excess <= bound.burst + 1,
        "at most burst + 1 extra admissions per client over the run: {report:?}"
    );
}
