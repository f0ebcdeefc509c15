//! The limiter's decisions checked against GCRA's bound by the
//! decision-history checker (issue 29): three nodes on one Redis that
//! flaps (`CLIENT PAUSE 400` every second), 40 clients at 8 requests/s.
//! Each node switches between Redis and local decisions; a switch must not
//! hand out a fresh budget (the local fallback continues from what Redis
//! last said about each client, and decisions go back to Redis only after
//! health checks that run the script pass twice in a row).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::cluster::free_port;
use crate::support::history::{check, drive, excess, fleet, Bound, Record, BURST_4_T_1S};
use crate::support::redis_servers::{answering, RedisProc};

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
    // A Redis of the test's own: a pause must not stall the other tests'.
    let redis = RedisProc::start(free_port(), &[]);
    answering(&redis).await;
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let prefix = format!("flap{}:", std::process::id());
    // burst 4, 5 per 5 s: T = 1 s.
    let nodes = Arc::new(fleet(&url, &prefix, &BURST_4_T_1S).await);
    // The fault: Redis paused 400 ms at the start of every second.
    let port = redis.port;
    let start = tokio::time::Instant::now() + Duration::from_millis(100);
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
                .stdout(std::process::Stdio::null())
                .status()
                .await;
        }
    });
    let began = Instant::now();
    let every = Duration::from_micros(1_000_000 / PER_SECOND);
    let (history, failures) = drive(&nodes, CLIENTS, (PER_SECOND * SECONDS) as usize, every, "198.51").await;
    pauser.await.unwrap();
    let took = began.elapsed();

    assert!(
        failures.is_empty(),
        "every request answered 200 or 429: {failures:?}"
    );
    assert_eq!(history.len(), CLIENTS * (PER_SECOND * SECONDS) as usize);
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
