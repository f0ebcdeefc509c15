//! The rate limiter: CL.THROTTLE semantics in Redis, headers, trusted
//! proxies, expiry, and the local fallback while Redis is down.

use std::sync::Arc;
use std::time::Duration;

use diem::limiter::gcra::{decide, Params, Throttle};
use diem::limiter::pipe::{Pipe, PipeError, Target};
use diem::limiter::pipes::Pipes;
use diem::limiter::redis_handle::{eval, eval_on_pipes, SCRIPT};
use diem::limiter::redis_limiter::client;
use fred::prelude::{ClientLike, KeysInterface, LuaInterface};
use proptest::prelude::*;
use serde_json::json;

use crate::support::proxy::{FaultProxy, Mode};
use crate::support::server::{eventually, Options, TestServer};
use crate::support::services::{redis_addr, redis_url, unique, via};

/// burst 2 (3 at once), then one more per `period_secs` (the tests stay
/// far from the refill time unless they wait for it on purpose).
fn tight(period_secs: u64) -> Options {
    Options::default()
        .env("DIEM_LIMITER__BURST", 2)
        .env("DIEM_LIMITER__COUNT", 1)
        .env("DIEM_LIMITER__PERIOD", format!("{period_secs}s"))
}

async fn backend(s: &TestServer) -> String {
    s.ctl(json!({"cmd": "stats"})).await["limiter"]["backend"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn trips_with_headers_and_refills() {
    let s = TestServer::start(tight(1)).await;
    eventually(Duration::from_secs(10), "limiter on redis", || async {
        (backend(&s).await == "redis").then_some(())
    })
    .await;
    for (remaining, reset) in [("2", "1"), ("1", "2"), ("0", "3")] {
        let r = s.get("/hitokoto/v2/").await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.header("x-ratelimit-limit"), "3");
        assert_eq!(r.header("x-ratelimit-remaining"), remaining);
        assert_eq!(r.header("x-ratelimit-reset"), reset);
    }
    let r = s.get("/hitokoto/v2/").await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), "1");
    assert_eq!(r.header("x-ratelimit-remaining"), "0");
    assert_eq!(r.json()["error"], "rate_limited");
    // Other routes are not limited.
    assert_eq!(s.get("/healthz").await.status, 200);
    assert_eq!(s.get("/readyz").await.header("x-ratelimit-limit"), "");
    tokio::time::sleep(Duration::from_millis(1_050)).await;
    assert_eq!(
        s.get("/hitokoto/v2/").await.status,
        200,
        "refilled after one emission interval"
    );
    assert_eq!(s.get("/hitokoto/v2/").await.status, 429);

    // Decided in Redis, under this node's prefix, with an expiry.
    let stats = s.ctl(json!({"cmd": "stats"})).await;
    assert!(
        stats["limiter"]["decisions"]["redis_limited"].as_u64().unwrap() >= 2,
        "{stats}"
    );
    assert_eq!(stats["limiter"]["decisions"]["local_allowed"], 0);
    let redis = client(&redis_url(), None, Duration::from_secs(2)).unwrap();
    redis.init().await.unwrap();
    let ttl: i64 = redis.pttl(format!("{}rl:127.0.0.1", s.prefix)).await.unwrap();
    assert!(ttl > 0 && ttl <= 3_000, "keys expire: pttl = {ttl}");
}

#[tokio::test]
async fn forwarded_for_counts_only_from_trusted_proxies() {
    let s = TestServer::start(tight(60).env("DIEM_LIMITER__TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1")).await;
    for client in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
        for _ in 0..3 {
            let r = s
                .request("GET", "/hitokoto/v2/", &[("x-forwarded-for", client)], "")
                .await;
            assert_eq!(r.status, 200, "{client} has its own budget");
        }
        let r = s
            .request(
                "GET",
                "/hitokoto/v2/",
                &[("x-forwarded-for", &format!("{client}, 10.1.1.1"))],
                "",
            )
            .await;
        assert_eq!(r.status, 429, "the first address is the client");
    }

    let untrusting = TestServer::start(tight(60)).await;
    for (i, client) in ["203.0.113.1", "203.0.113.2", "203.0.113.3", "203.0.113.4"]
        .iter()
        .enumerate()
    {
        let r = untrusting
            .request("GET", "/hitokoto/v2/", &[("x-forwarded-for", client)], "")
            .await;
        assert_eq!(
            r.status,
            if i < 3 { 200 } else { 429 },
            "an untrusted peer cannot pick its key"
        );
    }
}

#[tokio::test]
async fn redis_down_falls_back_locally_and_comes_back() {
    let proxy = FaultProxy::start(redis_addr()).await;
    let opts = tight(60).env("DIEM_REDIS__COMMAND_TIMEOUT", "100ms");
    let opts = Options {
        redis_url: Some(via(&redis_url(), proxy.addr)),
        ..opts
    };
    let s = TestServer::start(opts).await;
    eventually(Duration::from_secs(10), "limiter on redis", || async {
        (backend(&s).await == "redis").then_some(())
    })
    .await;

    proxy.set(Mode::BlackHole);
    proxy.cut();
    // Throughout the outage: no 5xx, and the limit still holds (per node).
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(s.get("/hitokoto/v2/").await.status);
    }
    assert!(statuses.iter().all(|s| *s == 200 || *s == 429), "{statuses:?}");
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        3,
        "burst + 1 allowed: {statuses:?}"
    );
    eventually(Duration::from_secs(5), "fallback reported", || async {
        let r = s.get("/readyz").await;
        (backend(&s).await == "local" && r.body.contains("limiter: deciding locally")).then_some(())
    })
    .await;
    let r = s.get("/hitokoto/v2/").await;
    assert_eq!(r.status, 429, "still limited locally");
    assert!(s
        .get("/metrics")
        .await
        .body
        .contains("diem_limiter_backend{backend=\"local\"} 1"));

    proxy.set(Mode::Pass);
    eventually(Duration::from_secs(10), "back on redis", || async {
        (backend(&s).await == "redis").then_some(())
    })
    .await;
    let stats = s.ctl(json!({"cmd": "stats"})).await;
    assert!(
        stats["limiter"]["decisions"]["local_limited"].as_u64().unwrap() >= 1,
        "{stats}"
    );
}

/// The GCRA script loaded in the test Redis, and the two ways diem runs
/// it: through fred, and on the hot-path connection.
struct Script {
    redis: fred::prelude::Client,
    sha: Arc<str>,
    pipe: Pipe,
}

impl Script {
    /// Redis's decision for one request on `key` at `now` (µs), through fred.
    async fn decide(&self, key: &str, params: &Params, now: i64) -> Throttle {
        eval(
            &self.redis,
            &self.sha,
            vec![key.to_owned()],
            params,
            Some(now),
            Duration::from_secs(2),
            None,
        )
        .await
        .unwrap()[0]
    }

    /// The same on the hot-path connection (as the batcher runs it).
    async fn decide_on_pipe(&self, key: &str, params: &Params, now: i64) -> Throttle {
        eval_on_pipes(
            &Pipes::One(self.pipe.clone()),
            &self.redis,
            &|| {},
            &self.sha,
            vec![key.to_owned()],
            params,
            now,
            Duration::from_secs(2),
            None,
        )
        .await
        .unwrap()[0]
    }
}

/// A current-thread runtime (for proptest bodies) and, in it, a Redis
/// client with the GCRA script loaded and a hot-path connection.
fn with_script<T>(run: impl AsyncFnOnce(Script) -> T) -> T {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let redis = client(&redis_url(), None, Duration::from_secs(2)).unwrap();
        redis.init().await.unwrap();
        let sha: String = redis.script_load(SCRIPT).await.unwrap();
        let target = Target::of_url(&redis_url(), None).expect("a single Redis server");
        let (pipe, drive) = Pipe::connect(&target, Duration::from_secs(2), None)
            .await
            .unwrap();
        let drive = tokio::spawn(drive);
        let out = run(Script {
            redis,
            sha: sha.into(),
            pipe,
        })
        .await;
        drive.abort();
        out
    })
}

/// Step by step, the script decides as the local GCRA, through fred and
/// on the hot-path connection alike (each on its own key).
fn script_matches_rust(params: Params, steps: Vec<(u32, u8)>) {
    with_script(async |script| {
        let (key, piped) = (unique("t_gcra:"), unique("t_gcra_pipe:"));
        let mut now: i64 = 1_700_000_000_000_000;
        let mut tat = None;
        for (dt_ms, _) in steps {
            now += i64::from(dt_ms) * 1_000;
            let in_redis = script.decide(&key, &params, now).await;
            let on_pipe = script.decide_on_pipe(&piped, &params, now).await;
            let (in_rust, next) = decide(&params, tat.filter(|&t| t > now), now, 1);
            assert_eq!(in_redis, in_rust, "at {now}");
            assert_eq!(on_pipe, in_rust, "on the pipe at {now}");
            if next.is_some() {
                tat = next;
            }
        }
        let _: i64 = script.redis.del(vec![key, piped]).await.unwrap();
    });
}

/// Several keys in one call on the hot-path connection, in the same write
/// as `SET … NX GET`s: each decided as alone, in order.
#[test]
fn one_script_call_on_the_pipe_decides_several_keys() {
    with_script(async |script| {
        let params = Params {
            burst: 1,
            count: 1,
            period_secs: 60,
        };
        let now: i64 = 1_700_000_000_000_000;
        let keys: Vec<String> = (0..3).map(|_| unique("t_gcra_many:")).collect();
        // The second key has spent its burst already: refused.
        for _ in 0..2 {
            script.decide(&keys[1], &params, now).await;
        }
        // The third key is given one spent request by a `SET … NX GET`
        // queued just before the script (so in the same write).
        let set = script.pipe.set_nx_get(keys[2].clone(), now + 60_000_000, 60_000);
        let pipes = Pipes::One(script.pipe.clone());
        let call = eval_on_pipes(
            &pipes,
            &script.redis,
            &|| {},
            &script.sha,
            keys.clone(),
            &params,
            now,
            Duration::from_secs(2),
            None,
        );
        let (held, decided) = tokio::join!(set, call);
        let decided = decided.unwrap();
        assert_eq!(decided.len(), 3);
        assert!(!decided[0].limited && decided[0].remaining == 1, "{decided:?}");
        assert!(decided[1].limited, "{decided:?}");
        // Each reply is its own command's: the `SET` found nothing, and the
        // script saw the request it stored.
        assert_eq!(held.unwrap(), None);
        assert!(!decided[2].limited && decided[2].remaining == 0, "{decided:?}");
        let _: i64 = script.redis.del(keys).await.unwrap();
    });
}

/// A script Redis does not hold is answered `NOSCRIPT` to that call only:
/// the connection stays up for the next command.
#[test]
fn noscript_on_the_pipe_is_an_answer_not_a_failure() {
    with_script(async |script| {
        let unknown = "0000000000000000000000000000000000000000";
        let key = unique("t_noscript:");
        let answer = script
            .pipe
            .evalsha(unknown.into(), vec![key.clone()].into(), vec![1])
            .await;
        assert!(
            matches!(&answer, Err(PipeError::Answered(e)) if e.starts_with("NOSCRIPT")),
            "{answer:?}"
        );
        assert_eq!(
            script.pipe.set_nx_get(key.clone(), 7, 10_000).await.unwrap(),
            None
        );
        assert_eq!(
            script.pipe.set_nx_get(key.clone(), 8, 10_000).await.unwrap(),
            Some(7)
        );
        let _: i64 = script.redis.del(key).await.unwrap();
    });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// The Lua script in Redis and the local GCRA decide the same, step by step.
    #[test]
    fn the_script_and_the_local_gcra_agree(
        burst in 0u64..6,
        count in 1u64..20,
        period_secs in 1u64..5,
        steps in proptest::collection::vec((0u32..400, 0u8..1), 1..40),
    ) {
        script_matches_rust(Params { burst, count, period_secs }, steps);
    }
}

/// Several nodes, each with its own deny cache, against one Redis: every
/// answer a node gives from its cache equals what Redis alone answers at
/// that moment (asked for reference: a refusal writes nothing in Redis, so
/// asking changes nothing when the cache is right).
fn deny_caches_match_redis(params: Params, steps: Vec<(u8, u8, u32)>) -> usize {
    use diem::limiter::deny_cache::DenyCache;
    with_script(async |script| {
        let prefix = unique("t_deny:");
        let nodes: Vec<DenyCache> = (0..3).map(|_| DenyCache::new(1_000)).collect();
        let mut now: i64 = 1_700_000_000_000_000;
        let mut answered_from_cache = 0;
        for (node, client, dt_ms) in steps {
            now += i64::from(dt_ms) * 1_000;
            let cache = &nodes[usize::from(node % 3)];
            let ip: ipnet::IpNet = format!("192.0.2.{}/32", client % 4).parse().unwrap();
            let key = format!("{prefix}{ip}");
            let cached = cache.check(&ip, &params, now);
            let in_redis = script.decide(&key, &params, now).await;
            match cached {
                Some(answer) => {
                    answered_from_cache += 1;
                    assert_eq!(answer, in_redis, "node {node}, {ip} at {now}");
                }
                None if in_redis.limited => {
                    cache.refused(ip, now + in_redis.reset_after_us, now, &in_redis);
                }
                None => {}
            }
        }
        for client in 0..4 {
            let _: i64 = script
                .redis
                .del(format!("{prefix}192.0.2.{client}/32"))
                .await
                .unwrap();
        }
        answered_from_cache
    })
}

#[test]
fn deny_caches_answer_a_hammering_client_from_every_node() {
    // One client, every 50 ms, round robin over three nodes, for 6 s under
    // one request per 2 s: most answers come from the caches.
    let steps = (0..120u32).map(|i| ((i % 3) as u8, 0, 50)).collect();
    let hits = deny_caches_match_redis(
        Params {
            burst: 0,
            count: 1,
            period_secs: 2,
        },
        steps,
    );
    assert!(hits > 80, "{hits} answers from the caches");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// The deny cache answers exactly as Redis would, across nodes.
    #[test]
    fn deny_caches_of_several_nodes_answer_as_redis_alone(
        burst in 0u64..4,
        count in 1u64..10,
        period_secs in 1u64..4,
        steps in proptest::collection::vec((0u8..3, 0u8..4, 0u32..300), 1..80),
    ) {
        let _ = deny_caches_match_redis(Params { burst, count, period_secs }, steps);
    }
}

#[tokio::test]
async fn refused_clients_are_answered_from_the_deny_cache_until_their_retry_time() {
    let s = TestServer::start(tight(2)).await;
    eventually(Duration::from_secs(10), "limiter on redis", || async {
        (backend(&s).await == "redis").then_some(())
    })
    .await;
    for _ in 0..3 {
        assert_eq!(s.get("/hitokoto/v2/").await.status, 200);
    }
    // The first refusal is Redis's; the next ones the cache's, with the
    // same headers.
    let first = s.get("/hitokoto/v2/").await;
    assert_eq!(first.status, 429);
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let r = s.get("/hitokoto/v2/").await;
        assert_eq!(
            (
                r.header("retry-after"),
                r.header("x-ratelimit-remaining"),
                r.header("x-ratelimit-limit")
            ),
            (first.header("retry-after"), "0", "3")
        );
        statuses.push(r.status);
    }
    assert_eq!(statuses, [429; 5]);
    let stats = s.ctl(json!({"cmd": "stats"})).await;
    assert_eq!(stats["limiter"]["cached_refusals"], 5, "{stats}");
    assert_eq!(stats["limiter"]["deny_cache_keys"], 1, "{stats}");
    // A reset forgets the client here too: the next request is a new client's.
    let reset = s
        .ctl(json!({"cmd": "limiter", "action": "reset", "addr": "127.0.0.1"}))
        .await;
    assert_eq!(reset["ok"], true, "{reset}");
    assert_eq!(s.get("/hitokoto/v2/").await.status, 200);
    // After the retry time, Redis decides again (and allows one more).
    for _ in 0..2 {
        s.get("/hitokoto/v2/").await;
    }
    assert_eq!(s.get("/hitokoto/v2/").await.status, 429);
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert_eq!(s.get("/hitokoto/v2/").await.status, 200);
    let metrics = s.get("/metrics").await.body;
    assert!(
        metrics.contains("diem_limiter_cached_refusals_total"),
        "{metrics}"
    );
}
