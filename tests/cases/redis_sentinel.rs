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
use crate::support::redis_servers::{Passwords, RedisSentinels};
use crate::support::server::{eventually, Options, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_decides_exactly_on_the_hot_path_and_follows_a_failover() {
    let mut set = RedisSentinels::start().await;
    let url = set.url();

    let prefix = format!("rs{}:", std::process::id());
    let nodes = exact_on(&url, &prefix, "sentinel").await;
    drop(nodes);

    primary_killed(&mut set, &format!("rsk{}:", std::process::id()), "redis sentinel").await;
}

/// Sentinels and servers that require passwords, each their own (the
/// servers' in the URL's user part, the Sentinels' as `sentinelPassword`):
/// the nodes decide in Redis on the hot path, and follow a failover — the
/// `+switch-master` subscription authenticates to the Sentinels with
/// theirs. A wrong Sentinel password is said as such, and the node decides
/// locally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinels_that_require_passwords() {
    let mut set = RedisSentinels::start_with_passwords(Passwords {
        servers: "data-secret".into(),
        sentinels: "sentinel-secret".into(),
    })
    .await;
    let url = set.url();

    let wrong = TestServer::start(Options {
        redis_url: Some(url.replace("sentinelPassword=sentinel-secret", "sentinelPassword=wrong")),
        ..Options::default()
    })
    .await;
    let why = eventually(
        Duration::from_secs(20),
        "the node says why it decides locally",
        || async {
            let limiter = wrong.ctl(json!({"cmd": "stats"})).await["limiter"].clone();
            let why = limiter["redis"]["error"].as_str().unwrap_or_default().to_owned();
            (limiter["backend"] == "local" && why.contains("switch watch")).then_some(why)
        },
    )
    .await;
    eprintln!("wrong sentinel password: {why}");
    assert!(why.to_lowercase().contains("pass"), "{why}");
    assert!(
        !why.contains("sentinel-secret") && !why.contains("data-secret"),
        "{why}"
    );
    drop(wrong);

    primary_killed(
        &mut set,
        &format!("rsp{}:", std::process::id()),
        "redis sentinel with passwords",
    )
    .await;
}

/// Three nodes on `set` (key prefix `prefix`) under load; the primary
/// killed mid-run: every request answered, the excess within a failover's
/// bound, each node back in Redis on the hot path — moved to the promoted
/// replica by the Sentinels' `+switch-master` (once per switch, whichever
/// of the three Sentinels said it first).
async fn primary_killed(set: &mut RedisSentinels, prefix: &str, what: &str) {
    let nodes = Arc::new(fleet(&set.url(), prefix, &BURST_4_T_1S).await);
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
    // Shown if the test fails: how each node followed the switch, and
    // what its limiter says now.
    let mut limiters = Vec::new();
    for (i, s) in nodes.iter().enumerate() {
        for line in s.logs().lines().filter(|l| l.contains("rate limiter")) {
            eprintln!("node {i}: {line}");
        }
        let limiter = s.ctl(json!({"cmd": "stats"})).await["limiter"].clone();
        eprintln!("node {i}: {limiter}");
        limiters.push(limiter);
    }
    after_failover(what, &history, &failures, 3, killed_at, switched_at);
    for limiter in limiters {
        assert_eq!(limiter["backend"], "redis", "{limiter}");
        assert_eq!(limiter["redis"]["hot_path"], true, "{limiter}");
        assert_eq!(limiter["redis"]["sentinel_switches"], 1, "{limiter}");
    }
}
