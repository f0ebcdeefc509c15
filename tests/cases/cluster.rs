//! The cluster: membership through one seed, failure detection, one view
//! and rolling operations across nodes, exact shared state, and HAProxy in
//! front of three nodes.

use std::time::{Duration, Instant};

use rustix::process::Signal;
use serde_json::{json, Value};

use crate::support::cluster::{answered, members, state_of, wait_members, Certs, Haproxy, Plan, COOKIE};
use crate::support::load::{by_status, Load, Plan as LoadPlan};
use crate::support::server::{eventually, run_diem, Options, TestServer};

const TOKEN: &str = "cluster-t0ken-0123456789";

#[tokio::test]
async fn three_nodes_form_one_cluster_through_one_seed() {
    let plan = Plan::new(3);
    let nodes = plan.start_all(Options::no_limit()).await;
    // n3 seeded only n2, n1 nothing: everyone still knows everyone.
    assert_eq!(
        members(&nodes[0]).await,
        [
            ("n2".to_owned(), "up".to_owned()),
            ("n3".to_owned(), "up".to_owned())
        ]
    );
    let (code, out, _) = nodes[0].ctl_cli(&["cluster"]).await;
    assert_eq!(code, 0);
    assert!(
        out.contains("n1 *") && out.contains("n3") && out.contains("up"),
        "{out}"
    );
    // Any command on another member, through this one.
    let (code, out, err) = nodes[0].ctl_cli(&["--node", "n3", "ping"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("on n3 (pid {})", nodes[2].pid())), "{out}");
    let r = nodes[0].ctl(json!({"cmd": "ping", "node": "n2", "id": 9})).await;
    assert_eq!(
        (r["node"].as_str(), r["id"].as_i64()),
        (Some("n2"), Some(9)),
        "{r}"
    );
    let r = nodes[0].ctl(json!({"cmd": "ping", "node": "nobody"})).await;
    assert_eq!(r["error"]["code"], "unreachable", "{r}");
    // One view of every tree, and stats with totals.
    let (code, out, _) = nodes[1].ctl_cli(&["--cluster", "tree", "--json"]).await;
    assert_eq!(code, 0);
    let trees: Value = serde_json::from_str(&out).unwrap();
    for n in ["n1", "n2", "n3"] {
        assert_eq!(trees["nodes"][n]["tree"]["path"], "diem", "{n}: {trees}");
        assert!(
            trees["nodes"][n]["tree"]["children"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["id"] == "cluster"),
            "{trees}"
        );
    }
    // Every member's actors (issue 30), and one diagnosis of the fleet.
    let (code, out, _) = nodes[1]
        .ctl_cli(&["--cluster", "top", "--json", "--limit", "3"])
        .await;
    assert_eq!(code, 0);
    let tops: Value = serde_json::from_str(&out).unwrap();
    for n in ["n1", "n2", "n3"] {
        assert_eq!(
            tops["nodes"][n]["actors"].as_array().map(Vec::len),
            Some(3),
            "{n}: {tops}"
        );
    }
    let (_, out, _) = nodes[0]
        .ctl_cli(&["--node", "n2", "top", "--sort", "mailbox"])
        .await;
    assert!(out.starts_with("ACTOR"), "{out}");
    let (code, out, _) = nodes[0].ctl_cli(&["--cluster", "diagnose"]).await;
    assert!(
        out.contains("== n1") && out.contains("== n3") && out.contains("level:"),
        "{out}"
    );
    assert!((0..=2).contains(&code), "{code}");
    for n in &nodes {
        n.get("/hitokoto/v2/").await;
    }
    let stats = nodes[2].ctl(json!({"cmd": "stats", "cluster": true})).await;
    assert_eq!(stats["totals"]["nodes"], 3, "{stats}");
    assert!(
        stats["totals"]["requests"]["hitokoto"]["200"].as_u64() >= Some(3),
        "{stats}"
    );
    // The command ran where it was sent, audited with where it came from.
    assert!(
        nodes[2].logs().contains("via=\"member=n1"),
        "audited on n3 with its origin"
    );
    // A node with another cookie is refused, and it is logged.
    let intruder = plan.outsider(
        "intruder",
        Options::no_limit().env("DIEM_CLUSTER__COOKIE", format!("{COOKIE}-not")),
    );
    let intruder = TestServer::start(intruder).await;
    eventually(Duration::from_secs(10), "the refusal logged", || async {
        nodes[0]
            .logs()
            .contains("cluster peer refused: authentication failed")
            .then_some(())
    })
    .await;
    assert_eq!(state_of(&nodes[0], "intruder").await, "absent");
    assert!(members(&intruder).await.is_empty());
}

#[tokio::test]
async fn shared_state_is_exact_across_three_nodes() {
    let plan = Plan::new(3);
    let extra = Options::default()
        .env("DIEM_LIMITER__BURST", 2)
        .env("DIEM_LIMITER__COUNT", 1)
        .env("DIEM_LIMITER__PERIOD", "60s")
        .env("DIEM_ADMIN__TOKEN", TOKEN);
    let nodes = plan.start_all(extra).await;
    // One client (127.0.0.1), requests spread round-robin: burst + 1 in
    // all, because the limit lives in Redis.
    let mut statuses = Vec::new();
    for i in 0..9 {
        statuses.push(nodes[i % 3].get("/hitokoto/v2/").await.status);
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429, 429, 429, 429, 429]);
    // A sentence written on one node is served by all three within a second.
    let body = json!({"hitokoto": "everywhere", "from": "n1"}).to_string();
    let r = nodes[0].post(TOKEN, &body).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let location = r.header("location").to_owned();
    let written = Instant::now();
    for n in &nodes {
        eventually(Duration::from_secs(1), "the sentence served", || async {
            (n.get(&location).await.status == 200).then_some(())
        })
        .await;
    }
    assert!(
        written.elapsed() < Duration::from_secs(1),
        "{:?}",
        written.elapsed()
    );
}

#[tokio::test]
async fn rolling_operations_go_one_node_at_a_time_and_stop_at_the_first_failure() {
    let plan = Plan::new(3);
    let config = "[limiter]\nburst = 4\n";
    let mut nodes = Vec::new();
    for i in 0..3 {
        nodes.push(
            plan.start(
                i,
                Options {
                    config: Some(config.into()),
                    ..Options::no_limit()
                },
            )
            .await,
        );
    }
    for n in &nodes {
        wait_members(n, 2, Duration::from_secs(20)).await;
    }
    let r = nodes[0]
        .ctl(json!({"cmd": "restart", "path": "diem/workers", "cluster": true}))
        .await;
    assert_eq!(r["ok"], true, "{r}");
    let steps: Vec<&str> = r["rolling"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["node"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["n1", "n2", "n3"], "{r}");
    assert_eq!(r["rolling"][1]["answer"]["replaced"], 4, "{r}");
    assert!(r["rolling"][2]["ready_after_ms"].is_u64());
    assert_eq!(r["stopped_at"], Value::Null);
    // n2's new config is invalid: the rolling reload stops there.
    for (i, n) in nodes.iter().enumerate() {
        let text = if i == 1 {
            "[limiter]\nburst = \"x\"\n"
        } else {
            "[limiter]\nburst = 9\n"
        };
        std::fs::write(n.config_path.as_ref().unwrap(), text).unwrap();
    }
    let (code, out, _) = nodes[2].ctl_cli(&["--cluster", "reload"]).await;
    assert_eq!(code, 0);
    assert!(
        out.contains("n1: done") && out.contains("n2: STOPPED") && !out.contains("n3: done"),
        "{out}"
    );
    assert!(out.contains("limiter.burst"), "{out}");
    let mut bursts = Vec::new();
    for n in &nodes {
        bursts.push(n.ctl(json!({"cmd": "stats"})).await["limiter"]["params"]["burst"].clone());
    }
    assert_eq!(bursts, [json!(9), json!(4), json!(4)], "n3 was not reached");
    // Commands that do not run cluster-wide say so.
    let r = nodes[0].ctl(json!({"cmd": "shutdown", "cluster": true})).await;
    assert_eq!(r["error"]["code"], "unsupported");
    nodes.clear();
}

async fn haproxy_cluster(delay: &str) -> (Plan, Vec<TestServer>, Haproxy) {
    let plan = Plan::new(3);
    let extra = Options::no_limit().env("DIEM_HTTP__SHUTDOWN_DELAY", delay);
    let nodes = plan.start_all(extra).await;
    let backends: Vec<(String, u16)> = plan
        .members
        .iter()
        .map(|m| (m.name.clone(), m.http_port))
        .collect();
    let lb = Haproxy::start(&backends).await;
    for m in &plan.members {
        lb.wait_server(&m.name, true, Duration::from_secs(10)).await;
    }
    (plan, nodes, lb)
}

fn loads(lb: &Haproxy, secs: u64) -> (Load, Load) {
    let mut fresh = LoadPlan::new("/hitokoto/v2/", 4, Duration::from_secs(secs));
    fresh.headers = vec![("connection".into(), "close".into())];
    (
        Load::start(
            lb.addr,
            LoadPlan::new("/hitokoto/v2/", 4, Duration::from_secs(secs)),
        ),
        Load::start(lb.addr, fresh),
    )
}

async fn all_ok(load: Load) -> usize {
    let outcomes = load.join().await;
    assert_eq!(
        by_status(&outcomes),
        [(Some(200), outcomes.len())].into_iter().collect(),
        "every request through HAProxy succeeded"
    );
    outcomes.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_haproxy_a_sigterm_loses_nothing() {
    let (_plan, mut nodes, lb) = haproxy_cluster("1s").await;
    let (keep_alive, fresh) = loads(&lb, 4);
    tokio::time::sleep(Duration::from_secs(1)).await;
    nodes[1].sigterm();
    assert_eq!(nodes[1].wait_exit(Duration::from_secs(15)).await, 0);
    assert!(all_ok(keep_alive).await > 50);
    assert!(all_ok(fresh).await > 50);
    lb.wait_server("n2", false, Duration::from_secs(5)).await;
    assert_eq!(state_of(&nodes[0], "n2").await, "down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_haproxy_a_sigkill_fails_no_get_and_the_node_rejoins() {
    let (plan, mut nodes, lb) = haproxy_cluster("1s").await;
    let (keep_alive, fresh) = loads(&lb, 4);
    tokio::time::sleep(Duration::from_secs(1)).await;
    nodes[1].signal(Signal::KILL);
    let killed = Instant::now();
    let seen_down = eventually(Duration::from_secs(5), "n1 sees n2 down", || async {
        (state_of(&nodes[0], "n2").await == "down").then(|| killed.elapsed())
    })
    .await;
    assert!(all_ok(keep_alive).await > 50);
    assert!(all_ok(fresh).await > 50);
    eprintln!("n2 killed: down on n1 after {seen_down:?}");
    // Started again with the same name and ports: back in the cluster and
    // in HAProxy's pool, taking traffic.
    nodes[1] = plan
        .start(1, Options::no_limit().env("DIEM_HTTP__SHUTDOWN_DELAY", "1s"))
        .await;
    eventually(Duration::from_secs(10), "n2 up again on n1", || async {
        (state_of(&nodes[0], "n2").await == "up").then_some(())
    })
    .await;
    lb.wait_server("n2", true, Duration::from_secs(10)).await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    for _ in 0..30 {
        let uri: hyper::Uri = format!("http://{}/hitokoto/v2/", lb.addr).parse().unwrap();
        let _ = client.get(uri).await;
    }
    assert!(answered(&nodes[1]).await > 0, "HAProxy sends to n2 again");
}

#[tokio::test]
async fn a_stopped_node_is_down_within_seconds_and_up_again_when_it_resumes() {
    let plan = Plan::new(3);
    let nodes = plan.start_all(Options::no_limit()).await;
    nodes[1].signal(Signal::STOP);
    let stopped = Instant::now();
    let down_after = eventually(Duration::from_secs(10), "n2 down", || async {
        (state_of(&nodes[0], "n2").await == "down").then(|| stopped.elapsed())
    })
    .await;
    eventually(Duration::from_secs(10), "n3 sees n2 down too", || async {
        (state_of(&nodes[2], "n2").await == "down").then_some(())
    })
    .await;
    nodes[1].signal(Signal::CONT);
    let resumed = Instant::now();
    let up_after = eventually(Duration::from_secs(10), "n2 up", || async {
        (state_of(&nodes[0], "n2").await == "up").then(|| resumed.elapsed())
    })
    .await;
    eprintln!("n2 stopped: down after {down_after:?}; resumed: up after {up_after:?}");
    wait_members(&nodes[1], 2, Duration::from_secs(10)).await;
}

#[tokio::test]
async fn with_tls_members_learn_each_other_and_refuse_peers_without_the_ca() {
    let certs = Certs::new();
    let mut tls = Options::no_limit();
    tls.env.extend(certs.env());
    let plan = Plan::new(3);
    // n3 seeded only n2: it learns n1 from n2's list (ractor_cluster's own
    // transitive connections are off with TLS).
    let nodes = plan.start_all(tls.clone()).await;
    let view = nodes[2].ctl(json!({"cmd": "cluster"})).await;
    let n1 = view["members"]
        .as_array()
        .and_then(|ms| ms.iter().find(|m| m["name"] == "n1"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        n1["addr"],
        format!("127.0.0.1:{}", plan.members[0].cluster_port),
        "the advertised address, not the node server's internal port: {view}"
    );
    let tree = nodes[0].ctl(json!({"cmd": "tree"})).await;
    assert!(tree.to_string().contains("\"diem/cluster/tls\""), "{tree}");
    let (code, out, err) = nodes[0].ctl_cli(&["--node", "n3", "ping"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("on n3 (pid {})", nodes[2].pid())), "{out}");

    // Right cookie, no TLS: refused by the TLS listener, logged.
    let plain = TestServer::start(plan.outsider("plain", Options::no_limit())).await;
    eventually(Duration::from_secs(10), "the plain peer refused", || async {
        nodes[0]
            .logs()
            .contains("cluster peer refused: TLS handshake failed")
            .then_some(())
    })
    .await;
    // Right cookie, a certificate from another CA: refused both ways.
    let other = Certs::new();
    let mut foreign = Options::no_limit();
    foreign.env.extend(other.env());
    let foreign = TestServer::start(plan.outsider("foreign", foreign)).await;
    eventually(Duration::from_secs(10), "the foreign peer refused", || async {
        foreign
            .logs()
            .contains("cluster peer refused: TLS handshake failed")
            .then_some(())
    })
    .await;
    // Connections that never speak do not keep a member out: n4, seeded
    // only n1, joins while they are open.
    let port = plan.members[0].cluster_port;
    let mut silent = Vec::new();
    for _ in 0..8 {
        silent.push(tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    }
    let n4 = TestServer::start(plan.outsider("n4", tls.clone())).await;
    wait_members(&n4, 3, Duration::from_secs(20)).await;
    drop(silent);
    for name in ["plain", "foreign"] {
        assert_eq!(state_of(&nodes[0], name).await, "absent", "{name}");
        assert_eq!(state_of(&nodes[2], name).await, "absent", "{name}");
    }
    assert!(members(&plain).await.is_empty());
    assert!(members(&foreign).await.is_empty());
    // Renewed certificates take effect with a restart of the subtree,
    // which binds the cluster port again and rejoins.
    let r = nodes[0]
        .ctl(json!({"cmd": "restart", "path": "diem/cluster"}))
        .await;
    assert_eq!(r["ok"], true, "{r}");
    wait_members(&nodes[0], 3, Duration::from_secs(20)).await;

    // The files are checked before the node starts, naming the key.
    let dir = tempfile::tempdir().unwrap();
    let base = [
        ("DIEM_CLUSTER__ENABLED", "true"),
        ("DIEM_CLUSTER__COOKIE", COOKIE),
    ];
    let cert = certs.path("cluster.crt");
    let missing = dir.path().join("none.crt").display().to_string();
    let foreign_key = other.path("cluster.key");
    let ca = certs.path("cluster-ca.crt");
    for (env, key, says) in [
        (
            vec![("DIEM_CLUSTER__TLS_CERT", cert.as_str())],
            "cluster.tls_key",
            "go together",
        ),
        (
            vec![
                ("DIEM_CLUSTER__TLS_CERT", missing.as_str()),
                ("DIEM_CLUSTER__TLS_KEY", foreign_key.as_str()),
                ("DIEM_CLUSTER__TLS_CA", ca.as_str()),
            ],
            "cluster.tls_cert",
            "cannot read",
        ),
        (
            vec![
                ("DIEM_CLUSTER__TLS_CERT", cert.as_str()),
                ("DIEM_CLUSTER__TLS_KEY", foreign_key.as_str()),
                ("DIEM_CLUSTER__TLS_CA", ca.as_str()),
            ],
            "cluster.tls_key",
            "does not match",
        ),
    ] {
        let env: Vec<_> = base.iter().copied().chain(env).collect();
        let (code, _, err) = run_diem(dir.path(), &["config", "check"], &env).await;
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(key) && err.contains(says), "{key}: {err}");
    }
}
