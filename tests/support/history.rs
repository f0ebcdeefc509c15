//! The decision-history checker (issue 29): every limited request a test
//! makes is recorded — node, client key, when the node decided it, allowed
//! or not, which store decided (the `faults` build's `X-Diem-Decided`) —
//! and checked offline, per client, against GCRA's bound: in any window
//! [t1, t2] at most `burst + 1 + ⌊(t2 − t1) / T⌋` requests are admitted.
//! What goes beyond it is the excess: a limiter that hands out budget it
//! should not.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use super::server::{eventually, Options, TestServer};

/// One decision.
#[derive(Clone, Debug)]
pub struct Record {
    /// Which node answered.
    pub node: usize,
    /// The client's key.
    pub client: String,
    /// When the node decided (µs since the Unix epoch).
    pub at_us: i64,
    /// Whether it was admitted.
    pub allowed: bool,
    /// `redis`, `redis-cached` or `local`.
    pub store: String,
}

impl Record {
    /// The record of a response's headers (`None` if it carries no
    /// decision: not a limited answer, or not the `faults` build).
    pub fn of(node: usize, client: &str, status: u16, decided: &str) -> Option<Record> {
        let (store, at) = decided.split_once(";at=")?;
        Some(Record {
            node,
            client: client.to_owned(),
            at_us: at.parse().ok()?,
            allowed: status != 429,
            store: store.to_owned(),
        })
    }
}

/// The limit of the fault tests: burst 4, 5 per 5 s (T = 1 s; at most 15
/// admitted per client in 10 s).
pub const BURST_4_T_1S: [(&str, &str); 3] = [
    ("DIEM_LIMITER__BURST", "4"),
    ("DIEM_LIMITER__COUNT", "5"),
    ("DIEM_LIMITER__PERIOD", "5s"),
];

/// Now, µs since the Unix epoch (the clock the nodes' decision times are on).
pub fn now_us() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(since.as_micros()).unwrap()
}

/// GCRA's parameters: `burst` and the emission interval `T`.
#[derive(Clone, Copy, Debug)]
pub struct Bound {
    /// `limiter.burst`.
    pub burst: u64,
    /// `T = period / count`, µs.
    pub emission_us: i64,
}

/// Time the recorded decision times may be off by (the local store reads
/// its clock a few µs after the time recorded): a window is judged as if
/// that much longer.
const SLACK_US: i64 = 1_000;

/// The most admissions beyond the bound in any window of `admitted`
/// (decision times, sorted), and how many windows ending at a distinct
/// admission went over.
pub fn excess(admitted: &[i64], bound: Bound) -> u64 {
    let mut worst = 0i64;
    for (i, &t1) in admitted.iter().enumerate() {
        for (j, &t2) in admitted.iter().enumerate().skip(i) {
            let n = (j - i + 1) as i64;
            let allowed = bound.burst as i64 + 1 + (t2 - t1 + SLACK_US) / bound.emission_us;
            worst = worst.max(n - allowed);
        }
    }
    worst.max(0) as u64
}

/// What a history shows.
#[derive(Debug, Default)]
pub struct Report {
    /// Requests admitted, refused.
    pub admitted: u64,
    /// Requests refused.
    pub refused: u64,
    /// Decisions by store.
    pub by_store: BTreeMap<String, u64>,
    /// Clients whose admissions went over the bound.
    pub clients_over: usize,
    /// Clients.
    pub clients: usize,
    /// The largest excess of one client (all its admissions, any store).
    pub max_excess: u64,
    /// The largest excess of one client counting only Redis's admissions
    /// (0 for an exact limiter: Redis alone never goes over).
    pub max_excess_redis_only: u64,
}

/// Checks `history` against `bound`.
pub fn check(history: &[Record], bound: Bound) -> Report {
    let mut report = Report::default();
    let mut per_client: BTreeMap<&str, Vec<&Record>> = BTreeMap::new();
    for r in history {
        per_client.entry(&r.client).or_default().push(r);
        *report.by_store.entry(r.store.clone()).or_default() += 1;
        if r.allowed {
            report.admitted += 1;
        } else {
            report.refused += 1;
        }
    }
    report.clients = per_client.len();
    for records in per_client.values() {
        let mut all: Vec<i64> = records.iter().filter(|r| r.allowed).map(|r| r.at_us).collect();
        let mut redis: Vec<i64> = records
            .iter()
            .filter(|r| r.allowed && r.store.starts_with("redis"))
            .map(|r| r.at_us)
            .collect();
        all.sort_unstable();
        redis.sort_unstable();
        let e = excess(&all, bound);
        report.clients_over += usize::from(e > 0);
        report.max_excess = report.max_excess.max(e);
        report.max_excess_redis_only = report.max_excess_redis_only.max(excess(&redis, bound));
    }
    report
}

/// Three nodes limiting in `url` with one key prefix, clients named by a
/// trusted `X-Forwarded-For`, and `env` on top.
pub async fn fleet(url: &str, prefix: &str, env: &[(&str, &str)]) -> Vec<TestServer> {
    let mut nodes = Vec::new();
    for _ in 0..3 {
        let mut opts = Options {
            redis_url: Some(url.to_owned()),
            ..Options::default()
        }
        .env("DIEM_REDIS__KEY_PREFIX", prefix)
        .env("DIEM_LIMITER__TRUSTED_PROXIES", "127.0.0.1")
        .env("DIEM_LIMITER__FLEET_SIZE", 3);
        for (k, v) in env {
            opts = opts.env(k, v);
        }
        nodes.push(TestServer::start(opts).await);
    }
    for s in &nodes {
        eventually(Duration::from_secs(30), "redis decides", || async {
            (s.ctl(json!({"cmd": "stats"})).await["limiter"]["backend"] == "redis").then_some(())
        })
        .await;
    }
    nodes
}

/// `clients` clients, each sending `per_client` requests `every` apart
/// round the nodes; every decision recorded. Requests that are not 200 or
/// 429 are returned as failures.
pub async fn drive(
    nodes: &Arc<Vec<TestServer>>,
    clients: usize,
    per_client: usize,
    every: Duration,
    tag: &str,
) -> (Vec<Record>, Vec<String>) {
    let history = Arc::new(Mutex::new(Vec::new()));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let start = tokio::time::Instant::now() + Duration::from_millis(100);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (nodes, history, failures) = (nodes.clone(), history.clone(), failures.clone());
        let client = format!("{tag}.{}.{}", c / 250, c % 250 + 1);
        tasks.push(tokio::spawn(async move {
            let offset = every * u32::try_from(c).unwrap() / u32::try_from(clients).unwrap();
            for k in 0..per_client {
                tokio::time::sleep_until(start + offset + every * u32::try_from(k).unwrap()).await;
                let node = (c + k) % nodes.len();
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
    for t in tasks {
        t.await.unwrap();
    }
    let history = history.lock().unwrap().clone();
    let failures = failures.lock().unwrap().clone();
    (history, failures)
}

/// What a primary's death cost, from the history of a run through it
/// (burst 4, T = 1 s): the checker's report, and for each of `nodes` the
/// ms after `failed_over_at` (µs) at which its last local decision was made
/// (0 if none came after). Asserts that every request was answered, that
/// Redis alone stayed exact, that the excess stayed within `burst + 1`,
/// and that each node was back in Redis within 1 s of the failover.
pub fn after_failover(
    what: &str,
    history: &[Record],
    failures: &[String],
    nodes: usize,
    killed_at: i64,
    failed_over_at: i64,
) -> Report {
    assert!(
        failures.is_empty(),
        "every request answered 200 or 429: {failures:?}"
    );
    let report = check(
        history,
        Bound {
            burst: 4,
            emission_us: 1_000_000,
        },
    );
    let back: Vec<i64> = (0..nodes)
        .map(|node| {
            history
                .iter()
                .filter(|r| r.node == node && r.store == "local")
                .map(|r| r.at_us)
                .max()
                .map_or(0, |last| (last - failed_over_at).max(0) / 1000)
        })
        .collect();
    eprintln!(
        "{what}, primary killed: failed over {} ms after the kill; local decisions ended {back:?} ms after it (per node); {report:?}",
        (failed_over_at - killed_at) / 1000
    );
    assert_eq!(report.max_excess_redis_only, 0, "{report:?}");
    assert!(
        report.max_excess <= 5,
        "at most burst + 1 extra admissions per client: {report:?}"
    );
    assert!(
        back.iter().all(|&ms| ms <= 1_000),
        "decisions back in Redis within 1 s of the failover: {back:?}"
    );
    report
}

/// Three nodes on the store at `url` (a `topology`, on the hot path) with
/// the default limit (36 at once), 64 clients × 45 requests: exactly 36
/// each, every decision Redis's (as on a standalone Redis). Returns the
/// nodes for more.
pub async fn exact_on(url: &str, prefix: &str, topology: &str) -> Arc<Vec<TestServer>> {
    let nodes = Arc::new(fleet(url, prefix, &[]).await);
    for s in nodes.iter() {
        let limiter = s.ctl(json!({"cmd": "stats"})).await["limiter"].clone();
        assert_eq!(limiter["redis"]["topology"], topology, "{limiter}");
        assert_eq!(limiter["redis"]["hot_path"], true, "on the hot path: {limiter}");
    }
    let (history, failures) = drive(&nodes, 64, 45, Duration::from_millis(20), "198.51").await;
    assert!(failures.is_empty(), "{failures:?}");
    let mut allowed = BTreeMap::<&str, usize>::new();
    for r in &history {
        *allowed.entry(&r.client).or_default() += usize::from(r.allowed);
    }
    assert_eq!(allowed.len(), 64);
    assert!(
        allowed.values().all(|&n| n == 36),
        "36 each, as a standalone Redis: {allowed:?}"
    );
    let report = check(
        &history,
        Bound {
            burst: 35,
            emission_us: 10_000_000,
        },
    );
    eprintln!("redis {topology}, whole: {report:?}");
    assert_eq!(report.by_store.get("local"), None, "{report:?}");
    assert_eq!(report.max_excess, 0, "{report:?}");
    nodes
}
