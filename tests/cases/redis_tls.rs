//! Redis over TLS (issue 29): a real Redis that speaks TLS only and asks
//! every client for a certificate (`--port 0`, `--tls-auth-clients yes`),
//! started by the test on a loopback port of its own with certificates of
//! a throwaway CA. Two nodes on it share one budget per client — decided in
//! Redis, on the hot-path connection, over TLS — and every wrong setting is
//! said as such: a refused certificate is not "unreachable".

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::support::cluster::{free_port, which};
use crate::support::pki::Pki;
use crate::support::server::{eventually, run_diem, Options, TestServer};

/// A Redis that accepts TLS only, with client certificates.
struct TlsRedis {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl TlsRedis {
    async fn start(pki: &Pki) -> TlsRedis {
        let server = which("redis-server").expect("redis-server: apt-get install -y redis-server");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = Command::new(server)
            .current_dir(dir.path())
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
            ])
            .args(["--tls-cert-file", &pki.path("server.crt")])
            .args(["--tls-key-file", &pki.path("server.key")])
            .args(["--tls-ca-cert-file", &pki.path("ca.pem")])
            .args(["--tls-auth-clients", "yes"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let redis = TlsRedis {
            child,
            port,
            _dir: dir,
        };
        eventually(Duration::from_secs(20), "the TLS-only Redis starts", || async {
            redis.cli(pki, &["PING"]).filter(|out| out.contains("PONG"))
        })
        .await;
        redis
    }

    /// `redis-cli` over TLS with the client certificate; its output.
    fn cli(&self, pki: &Pki, args: &[&str]) -> Option<String> {
        let out = Command::new("redis-cli")
            .args(["-h", "localhost", "-p", &self.port.to_string(), "--tls"])
            .args(["--cacert", &pki.path("ca.pem")])
            .args([
                "--cert",
                &pki.path("client.crt"),
                "--key",
                &pki.path("client.key"),
            ])
            .args(args)
            .output()
            .ok()?;
        Some(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A node limiting in the TLS Redis at `url` with `prefix`, presenting the
/// client certificate; `extra` environment on top.
async fn node(pki: &Pki, url: &str, prefix: &str, extra: &[(&str, &str)]) -> TestServer {
    let mut opts = Options {
        redis_url: Some(url.to_owned()),
        ..Options::default()
    }
    .env("DIEM_REDIS__KEY_PREFIX", prefix)
    .env("DIEM_REDIS__TLS_CA", pki.path("ca.pem"))
    .env("DIEM_REDIS__TLS_CERT", pki.path("client.crt"))
    .env("DIEM_REDIS__TLS_KEY", pki.path("client.key"))
    // A loaded CI machine: TLS handshakes are not what this test times.
    .env("DIEM_REDIS__COMMAND_TIMEOUT", "1s")
    // 5 at once, then one an hour: the budget does not refill in the test.
    .env("DIEM_LIMITER__BURST", 4)
    .env("DIEM_LIMITER__COUNT", 1)
    .env("DIEM_LIMITER__PERIOD", "1h");
    for (k, v) in extra {
        opts = opts.env(k, v);
    }
    TestServer::start(opts).await
}

/// The limiter's section of `ctl stats`, once Redis decides (the node's
/// last stats and log if it does not within 30 s).
async fn deciding_in_redis(s: &TestServer) -> serde_json::Value {
    let start = std::time::Instant::now();
    loop {
        let stats = s.ctl(json!({"cmd": "stats"})).await;
        if stats["limiter"]["backend"] == "redis" {
            return stats["limiter"].clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "redis does not decide within 30 s: {}\n{}",
            stats["limiter"],
            s.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The `/readyz` notes once they say the limiter decides locally.
async fn local_because(s: &TestServer) -> String {
    eventually(
        Duration::from_secs(20),
        "readyz says why the limiter is local",
        || async {
            let notes = s.get("/readyz").await.json()["notes"].to_string();
            notes.contains("limiter: deciding locally").then_some(notes)
        },
    )
    .await
}

#[tokio::test]
async fn two_nodes_share_one_budget_in_a_tls_only_redis_and_refusals_are_said_as_such() {
    let pki = Pki::new();
    let redis = TlsRedis::start(&pki).await;
    let url = format!("rediss://localhost:{}", redis.port);
    let prefix = format!("rtls{}:", std::process::id());

    // Two nodes, one budget: decided in Redis, on the hot-path connection
    // (a TLS user gets the hot path).
    let (a, b) = one_budget_over_tls(&pki, &url, &prefix, "standalone").await;
    let keys = redis
        .cli(&pki, &["--scan", "--pattern", &format!("{prefix}*")])
        .unwrap_or_default();
    assert!(keys.contains(&format!("{prefix}rl:127.0.0.1")), "{keys}");
    eventually(Duration::from_secs(5), "the metrics name TLS", || async {
        let body = a.get("/metrics").await.body;
        body.contains(r#"diem_redis_info{topology="standalone",tls="true",hot_path="true"} 1"#)
            .then_some(())
    })
    .await;
    let (_, text, _) = a.ctl_cli(&["stats"]).await;
    assert!(text.contains("standalone, TLS, hot-path connection"), "{text}");
    drop((a, b));

    // `config check --connect` tries Redis with the configured TLS.
    let dir = tempfile::tempdir().unwrap();
    let env = |ca: &str, url: &str| {
        vec![
            ("DIEM_REDIS__URL".to_owned(), url.to_owned()),
            ("DIEM_REDIS__TLS_CA".to_owned(), pki.path(ca)),
            ("DIEM_REDIS__TLS_CERT".to_owned(), pki.path("client.crt")),
            ("DIEM_REDIS__TLS_KEY".to_owned(), pki.path("client.key")),
        ]
    };
    let run = |env: Vec<(String, String)>, args: &'static [&'static str]| {
        let dir = dir.path().to_owned();
        async move {
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let (code, out, err) = run_diem(&dir, args, &env).await;
            (code, format!("{out}{err}"))
        }
    };
    let (code, out) = run(env("ca.pem", &url), &["config", "check", "--connect"]).await;
    assert!(out.contains("redis: ok"), "{code}: {out}");

    // A CA that did not sign the server's certificate: the node limits
    // locally and says why, in /readyz, `ctl stats` and the log.
    let wrong_ca = node(
        &pki,
        &url,
        &prefix,
        &[("DIEM_REDIS__TLS_CA", &pki.path("other-ca.pem"))],
    )
    .await;
    let notes = local_because(&wrong_ca).await;
    let limiter = wrong_ca.ctl(json!({"cmd": "stats"})).await["limiter"].clone();
    assert!(
        notes.contains("redis TLS refused: a certificate from an unknown CA"),
        "{notes} {limiter} {}",
        wrong_ca.logs()
    );
    assert!(
        notes.contains("redis TLS refused: a certificate from an unknown CA"),
        "{notes}"
    );
    let limiter = wrong_ca.ctl(json!({"cmd": "stats"})).await["limiter"].clone();
    assert_eq!(limiter["backend"], "local", "{limiter}");
    assert!(
        limiter["redis"]["error"].to_string().contains("UnknownIssuer"),
        "{limiter}"
    );
    eventually(Duration::from_secs(10), "the log says TLS refused", || async {
        wrong_ca.logs().contains("redis TLS refused").then_some(())
    })
    .await;
    let (code, out) = run(env("other-ca.pem", &url), &["config", "check", "--connect"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("redis: FAILED") && out.contains("UnknownIssuer"),
        "{out}"
    );
    drop(wrong_ca);

    // 127.0.0.1 is not a name the certificate carries: refused, unless the
    // name is not checked (the chain still is).
    let by_address = format!("rediss://127.0.0.1:{}", redis.port);
    let wrong_name = node(&pki, &by_address, &prefix, &[]).await;
    let notes = local_because(&wrong_name).await;
    assert!(notes.contains("a certificate for another host name"), "{notes}");
    drop(wrong_name);
    let unnamed = node(
        &pki,
        &by_address,
        &prefix,
        &[("DIEM_REDIS__TLS_VERIFY_HOSTNAME", "false")],
    )
    .await;
    let limiter = deciding_in_redis(&unnamed).await;
    assert_eq!(limiter["redis"]["hot_path"], true, "{limiter}");
    // The budget is the one the first two nodes spent.
    assert_eq!(unnamed.get("/hitokoto/v2/").await.status, 429);
    drop(unnamed);

    // Wrong settings are named before anything connects.
    let plain = "redis://127.0.0.1:6379";
    for (env, says) in [
        (env("ca.pem", plain), "redis.tls_ca"),
        (env("nonexistent.pem", &url), "redis.tls_ca"),
        (
            vec![
                ("DIEM_REDIS__URL".to_owned(), url.clone()),
                ("DIEM_REDIS__TLS_CERT".to_owned(), pki.path("client.crt")),
            ],
            "redis.tls_cert",
        ),
    ] {
        let (code, out) = run(env, &["config", "check"]).await;
        assert_eq!(code, 2, "{says}: {out}");
        assert!(out.contains(says), "{says}: {out}");
    }
}

/// Two nodes on the TLS store at `url` (a `topology`) with key `prefix`:
/// each decides in Redis on the TLS hot path, and together they give one
/// client one budget (5 of 12), none of it decided locally. Returns them.
async fn one_budget_over_tls(pki: &Pki, url: &str, prefix: &str, topology: &str) -> (TestServer, TestServer) {
    let a = node(pki, url, prefix, &[]).await;
    let b = node(pki, url, prefix, &[]).await;
    for s in [&a, &b] {
        let limiter = deciding_in_redis(s).await;
        assert_eq!(
            (
                &limiter["redis"]["topology"],
                &limiter["redis"]["tls"],
                &limiter["redis"]["hot_path"]
            ),
            (&json!(topology), &json!(true), &json!(true)),
            "{limiter}"
        );
    }
    let mut allowed = 0;
    for i in 0..12 {
        let s = if i % 2 == 0 { &a } else { &b };
        let r = s.get("/hitokoto/v2/").await;
        assert!(r.status == 200 || r.status == 429, "{}: {}", r.status, r.body);
        allowed += usize::from(r.status == 200);
    }
    assert_eq!(allowed, 5, "one budget of 5 for the client across both nodes");
    let stats = a.ctl(json!({"cmd": "stats"})).await["limiter"]["decisions"].clone();
    assert_eq!(stats["local_allowed"], 0, "{stats}");
    (a, b)
}

/// `rediss-cluster://`: a Redis Cluster speaking TLS only (clients,
/// replication and the cluster bus), reached by the addresses its nodes
/// announce (127.0.0.1, in their certificates): decided in Redis, on one
/// TLS hot-path connection per primary, one budget for two nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_only_redis_cluster_decides_on_the_hot_path() {
    let pki = Pki::new();
    let cluster = crate::support::redis_servers::RedisCluster::start_tls(&pki).await;
    let url = cluster.url();
    assert!(url.starts_with("rediss-cluster://"), "{url}");
    let prefix = format!("rtlsc{}:", std::process::id());
    one_budget_over_tls(&pki, &url, &prefix, "cluster").await;
}

/// `rediss-sentinel://`: a primary, its replica and three Sentinels, all
/// speaking TLS only: decided in Redis, on the TLS hot-path connection to
/// the primary the Sentinels name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_only_sentinels_decide_on_the_hot_path() {
    let pki = Pki::new();
    let set = crate::support::redis_servers::RedisSentinels::start_tls(&pki).await;
    let url = set.url();
    assert!(url.starts_with("rediss-sentinel://"), "{url}");
    let prefix = format!("rtlss{}:", std::process::id());
    one_budget_over_tls(&pki, &url, &prefix, "sentinel").await;
}
