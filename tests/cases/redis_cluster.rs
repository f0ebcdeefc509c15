//! The limiter on a real Redis Cluster (issue 29): three primaries with a
//! replica each, started by the test on loopback ports of its own. Every
//! decision is checked by the decision-history checker: exact while the
//! cluster is whole (64 clients × 45 requests: 36 each, as a standalone
//! Redis), and bounded when a primary is killed mid-run — every request
//! answered, decisions back in Redis soon after the replica's promotion.

use std::sync::Arc;
use std::time::Duration;

use crate::support::history::{after_failover, check, drive, exact_on, fleet, now_us, Bound, BURST_4_T_1S};
use crate::support::redis_servers::RedisCluster;
use crate::support::server::eventually;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_cluster_decides_exactly_and_survives_a_primary_s_death() {
    let mut cluster = RedisCluster::start().await;
    let url = cluster.url();

    // Whole: the defaults (36 at once), 64 clients × 45 requests on three
    // nodes: 36 each, every one decided by Redis.
    let prefix = format!("rc{}:", std::process::id());
    let nodes = exact_on(&url, &prefix, "cluster").await;
    eventually(
        Duration::from_secs(5),
        "the metrics name the topology",
        || async {
            let body = nodes[0].get("/metrics").await.body;
            body.contains(r#"diem_redis_info{topology="cluster",tls="false",hot_path="true"} 1"#)
                .then_some(())
        },
    )
    .await;

    // A resharding under load: 2,000 slots moved from one primary to
    // another while 32 new clients spend their budgets. The nodes meet
    // MOVED and ASK on their hot-path connections: those requests are
    // decided through fred (which follows them), the slot map is read
    // again, and the decisions stay exact.
    let primaries = cluster.primaries();
    let ids: Vec<String> = primaries
        .iter()
        .map(|p| {
            crate::support::redis_servers::cli(*p, &["CLUSTER", "MYID"])
                .trim()
                .to_owned()
        })
        .collect();
    let load = {
        let nodes = nodes.clone();
        tokio::spawn(async move { drive(&nodes, 32, 45, Duration::from_millis(60), "192.0").await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let moved = tokio::process::Command::new("redis-cli")
        .args(["--cluster", "reshard", &format!("127.0.0.1:{}", primaries[0])])
        .args(["--cluster-from", &ids[0], "--cluster-to", &ids[1]])
        .args(["--cluster-slots", "2000", "--cluster-yes"])
        .output()
        .await
        .unwrap();
    assert!(
        moved.status.success(),
        "{}",
        String::from_utf8_lossy(&moved.stderr)
    );
    let (history, failures) = load.await.unwrap();
    assert!(failures.is_empty(), "{failures:?}");
    let report = check(
        &history,
        Bound {
            burst: 35,
            emission_us: 10_000_000,
        },
    );
    eprintln!("redis cluster, resharded under load: {report:?}");
    for s in nodes.iter() {
        for line in s
            .logs()
            .lines()
            .filter(|l| l.contains("WARN") && l.contains("limiter"))
        {
            eprintln!("  {line}");
        }
    }
    assert_eq!(report.admitted, 32 * 36, "{report:?}");
    assert_eq!(report.max_excess, 0, "{report:?}");
    let resynced: usize = nodes
        .iter()
        .map(|s| s.logs().matches("a cluster slot moved").count())
        .sum();
    eprintln!("slot map read again {resynced} times across the nodes");
    drop(nodes);

    // A primary killed mid-run: burst 4, 5 per 5 s, 30 clients at 8/s for
    // 10 s, the first primary SIGKILLed after 2 s.
    let prefix = format!("rk{}:", std::process::id());
    let nodes = Arc::new(fleet(&url, &prefix, &BURST_4_T_1S).await);
    let before = cluster.primaries();
    assert_eq!(before.len(), 3, "{before:?}");
    let load = {
        let nodes = nodes.clone();
        tokio::spawn(async move { drive(&nodes, 30, 80, Duration::from_millis(125), "203.0").await })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let victim = before[0];
    let killed_at = now_us();
    cluster
        .nodes
        .iter_mut()
        .find(|n| n.port == victim)
        .unwrap()
        .kill();
    // The store's own failover: a replica promoted in the victim's place.
    let promoted_at = eventually(Duration::from_secs(15), "a replica is promoted", || async {
        let now = cluster.primaries();
        (now.len() == 3 && !now.contains(&victim)).then(now_us)
    })
    .await;
    let (history, failures) = load.await.unwrap();
    after_failover("redis cluster", &history, &failures, 3, killed_at, promoted_at);
}
