//! The limiter behind Redis Sentinel (issue 29): a primary, its replica and
//! three Sentinels of the test's own. Requests are decided on the hot-path
//! connection to the primary the Sentinels name; exact while it lives
//! (64 clients × 45 requests: 36 each); when it is killed, every request is
//! answered, and decisions come back to Redis — the hot-path connection to
//! the promoted replica — soon after the Sentinels switch: each node hears
//! the switch on the Sentinels' `+switch-master` channel and moves at once.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::support::history::{after_failover, drive, exact_on, fleet, now_us, BURST_4_T_1S};
use crate::support::redis_servers::RedisSentinels;
use crate::support::server::eventually;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_decides_exactly_on_the_hot_path_and_follows_a_failover() {
    let mut set = RedisSentinels::start().await;
    let url = set.url();

    let prefix = format!("rs{}:", std::process::id());
    let nodes = exact_on(&url, &prefix, "sentinel").await;
    drop(nodes);

    // The primary killed mid-run.
    let prefix = format!("rsk{}:", std::process::id());
    let nodes = Arc::new(fleet(&url, &prefix, &BURST_4_T_1S).await);
    let old = set.primary().expect("the sentinels name a primary");
    let load = {
        let nodes = nodes.clone();
        tokio::spawn(async move { drive(&nodes, 30, 80, Duration::from_millis(125), "203.0").await })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let killed_at = now_us();
    set.servers.iter_mut().find(|s| s.port == old).unwrap().kill();
    let switched_at = eventually(Duration::from_secs(20), "the sentinels switch", || async {
        set.primary().filter(|&p| p != old).map(|_| now_us())
    })
    .await;
    let (history, failures) = load.await.unwrap();
    after_failover("redis sentinel", &history, &failures, 3, killed_at, switched_at);
    // On the hot path again, to the promoted replica, moved there by the
    // Sentinels' `+switch-master` (once per switch, whichever of the three
    // Sentinels said it first).
    for s in nodes.iter() {
        let limiter = s.ctl(json!({"cmd": "stats"})).await["limiter"].clone();
        assert_eq!(limiter["backend"], "redis", "{limiter}");
        assert_eq!(limiter["redis"]["hot_path"], true, "{limiter}");
        assert_eq!(limiter["redis"]["sentinel_switches"], 1, "{limiter}");
    }
}
