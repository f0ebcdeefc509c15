//! `redis.wait_replicas` (issue 29): each decision is given only once a
//! replica holds it (Redis's `WAIT` after every batch), so a failover can
//! forget none. A primary and its replica of the test's own; the replica is
//! frozen (SIGSTOP) for 1.5 s under load, as a replica that lags:
//!
//! - with `wait_replicas = 1`, every request is still answered, and no
//!   Redis decision is given while the replica holds nothing new — those
//!   requests decide locally (the node's share of the fleet) — and Redis
//!   decides again once it is back;
//! - with `wait_replicas = 0` (the default), Redis goes on deciding: those
//!   are the decisions a failover at that moment would forget (counted).

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::support::cluster::free_port;
use crate::support::history::{check, drive, fleet, now_us, Bound, Record, BURST_4_T_1S};
use crate::support::redis_servers::{answering, RedisProc};
use crate::support::server::eventually;

/// A primary and a replica that holds what the primary wrote.
async fn primary_and_replica() -> (RedisProc, RedisProc) {
    let primary = RedisProc::start(free_port(), &[]);
    answering(&primary).await;
    let port = primary.port.to_string();
    let replica = RedisProc::start(free_port(), &["--replicaof", "127.0.0.1", &port]);
    answering(&replica).await;
    eventually(
        Duration::from_secs(20),
        "the replica follows the primary",
        || async {
            replica
                .cli(&["INFO", "replication"])
                .contains("master_link_status:up")
                .then_some(())
        },
    )
    .await;
    (primary, replica)
}

/// Drives three nodes (`wait_replicas` as given) through a replica frozen
/// for 1.5 s; returns the history, the freeze's window (µs) and the nodes.
async fn through_a_frozen_replica(
    wait_replicas: &str,
    tag: &str,
) -> (
    Vec<Record>,
    (i64, i64),
    Arc<Vec<crate::support::server::TestServer>>,
) {
    let (primary, replica) = primary_and_replica().await;
    let url = format!("redis://127.0.0.1:{}", primary.port);
    let prefix = format!("rw{}{tag}:", std::process::id());
    let mut env = BURST_4_T_1S.to_vec();
    env.push(("DIEM_REDIS__WAIT_REPLICAS", wait_replicas));
    env.push(("DIEM_REDIS__WAIT_TIMEOUT", "50ms"));
    let nodes = Arc::new(fleet(&url, &prefix, &env).await);
    let load = {
        let nodes = nodes.clone();
        let tag = tag.to_owned();
        tokio::spawn(async move { drive(&nodes, 20, 48, Duration::from_millis(125), &tag).await })
    };
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let frozen_at = now_us();
    replica.signal("STOP");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let thawed_at = now_us();
    replica.signal("CONT");
    let (history, failures) = load.await.unwrap();
    assert!(
        failures.is_empty(),
        "every request answered 200 or 429: {failures:?}"
    );
    drop((primary, replica));
    (history, (frozen_at, thawed_at), nodes)
}

/// Redis's decisions (cached refusals apart) made inside `window`, from
/// `margin` µs after it opens (the batch in flight when it froze).
fn redis_decisions_within(history: &[Record], (from, to): (i64, i64), margin: i64) -> usize {
    history
        .iter()
        .filter(|r| r.store == "redis" && r.at_us > from + margin && r.at_us < to)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_wait_replicas_no_decision_is_given_that_the_replica_does_not_hold() {
    let (history, window, nodes) = through_a_frozen_replica("1", "192.0").await;
    // A batch that began before the freeze may be answered after it: its
    // WAIT is that of writes the replica received (100 ms of margin).
    let unreplicated = redis_decisions_within(&history, window, 100_000);
    let local = history
        .iter()
        .filter(|r| r.store == "local" && r.at_us > window.0 && r.at_us < window.1)
        .count();
    let after = history
        .iter()
        .filter(|r| r.store == "redis" && r.at_us > window.1)
        .count();
    let report = check(
        &history,
        Bound {
            burst: 4,
            emission_us: 1_000_000,
        },
    );
    eprintln!(
        "wait_replicas=1, replica frozen 1.5 s: {unreplicated} Redis decisions while it was frozen, {local} local, {after} by Redis after; {report:?}"
    );
    assert_eq!(unreplicated, 0, "no decision the replica does not hold");
    assert!(local > 0, "the frozen replica's time decided locally");
    assert!(after > 0, "Redis decides again once the replica is back");
    assert_eq!(report.max_excess_redis_only, 0, "{report:?}");
    assert!(report.max_excess <= 5, "{report:?}");
    let mut short = 0;
    for s in nodes.iter() {
        let redis = s.ctl(json!({"cmd": "stats"})).await["limiter"]["redis"].clone();
        assert_eq!(redis["wait_replicas"], 1, "{redis}");
        short += redis["wait_short"].as_u64().unwrap_or(0);
        let metrics = s.get("/metrics").await.body;
        assert!(metrics.contains("diem_redis_wait_short_total"), "{metrics}");
    }
    assert!(short > 0, "the short WAITs are counted");
    let (code, text, _) = nodes[0].ctl_cli(&["stats"]).await;
    assert_eq!(code, 0);
    assert!(text.contains("redis wait"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_wait_replicas_redis_decides_what_the_replica_does_not_hold() {
    let (history, window, _nodes) = through_a_frozen_replica("0", "198.18").await;
    let unreplicated = redis_decisions_within(&history, window, 100_000);
    let admitted = history
        .iter()
        .filter(|r| r.store == "redis" && r.allowed && r.at_us > window.0 + 100_000 && r.at_us < window.1)
        .count();
    eprintln!(
        "wait_replicas=0, replica frozen 1.5 s: {unreplicated} Redis decisions the replica did not hold, {admitted} of them admissions (what a failover then would forget)"
    );
    assert!(admitted > 0, "Redis admitted on without its replica");
}
