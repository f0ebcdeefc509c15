//! Every actor's load, live (issue 30): `diem ctl top`, stuck handlers,
//! growing mailboxes and `diem ctl diagnose`, on a real node.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::server::{eventually, Options, TestServer};

/// The workers' rows (`diem/workers/N`) of `ctl top --json`.
fn workers(top: &Value) -> Vec<Value> {
    top["actors"]
        .as_array()
        .expect("actors")
        .iter()
        .filter(|a| a["path"].as_str().is_some_and(|p| p.starts_with("diem/workers/")))
        .cloned()
        .collect()
}

/// A node serving (from the embedded corpus: the load is what matters).
async fn serving(opts: Options) -> Arc<TestServer> {
    let s = TestServer::start(opts).await;
    eventually(Duration::from_secs(30), "the node is ready", || async {
        (s.get("/readyz").await.status == 200).then_some(())
    })
    .await;
    Arc::new(s)
}

async fn top_json(s: &TestServer) -> Value {
    let (code, out, err) = s.ctl_cli(&["top", "--json"]).await;
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).expect("top --json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workers_message_rates_add_up_to_the_requests_served() {
    let s = serving(Options::no_limit()).await;
    // An open loop: 200 requests a second for 4 s, paced.
    let rate = 200u32;
    let load = {
        let s = s.clone();
        tokio::spawn(async move {
            let start = tokio::time::Instant::now();
            let mut tasks = Vec::new();
            for i in 0..rate * 4 {
                let s = s.clone();
                let at = start + Duration::from_secs(1) * i / rate;
                tasks.push(tokio::spawn(async move {
                    tokio::time::sleep_until(at).await;
                    s.get("/hitokoto/v2/").await.status
                }));
            }
            let mut ok = 0;
            for t in tasks {
                ok += usize::from(t.await.unwrap() == 200);
            }
            ok
        })
    };
    tokio::time::sleep(Duration::from_millis(2_600)).await;
    let top = top_json(&s).await;
    assert_eq!(load.await.unwrap(), (rate * 4) as usize, "every request answered");
    let rows = workers(&top);
    assert_eq!(rows.len(), 4, "one row per worker: {top}");
    let sum: f64 = rows.iter().map(|r| r["messages_per_s"].as_f64().unwrap()).sum();
    eprintln!("workers' messages/s in ctl top: {sum:.1} (served: {rate}/s); {rows:?}");
    assert!(
        (sum - f64::from(rate)).abs() <= f64::from(rate) * 0.10,
        "the workers' rates add up to the requests served (within 10 %): {sum} vs {rate}"
    );
    for r in &rows {
        for key in [
            "path",
            "mailbox",
            "mailbox_max",
            "messages_per_s",
            "handle_p99_us",
            "busy_ms",
            "restarts",
        ] {
            assert!(r.get(key).is_some(), "{key} in {r}");
        }
        assert_eq!(r["state"], "running");
        assert!(r["handle_p99_us"].as_u64().is_some(), "{r}");
    }
    // Every actor of the tree has a row; the sampler counts itself.
    let paths: Vec<&str> = top["actors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["path"].as_str())
        .collect();
    for p in ["diem/limiter", "diem/load", "diem/store/corpus", "diem/workers"] {
        assert!(paths.contains(&p), "{p} in {paths:?}");
    }
    let sampler = top["actors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["path"] == "diem/load")
        .unwrap()
        .clone();
    assert!(
        sampler["messages_per_s"].as_f64().unwrap() >= 30.0,
        "its own ticks: {sampler}"
    );
    // Sorted as asked, and the text screen.
    let (code, text, _) = s.ctl_cli(&["top", "--sort", "restarts", "--limit", "3"]).await;
    assert_eq!(code, 0);
    assert!(text.starts_with("ACTOR"), "{text}");
    assert_eq!(text.lines().count(), 1 + 3 + 1, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_handler_is_reported_stuck_within_200_ms_of_its_100th() {
    // With sentences of its own: `diagnose` has nothing else to say.
    let s = Arc::new(
        TestServer::start_with(
            Options::no_limit().env("DIEM_OBSERVER__STUCK_AFTER", "100ms"),
            &[('a', "x", "y")],
        )
        .await,
    );
    let (code, out, _) = s.ctl_cli(&["diagnose"]).await;
    assert_eq!(code, 0, "nothing wrong yet: {out}");
    let sent = Instant::now();
    let stalled = {
        let s = s.clone();
        tokio::spawn(async move {
            s.request("GET", "/hitokoto/v2/", &[("x-diem-fault", "stall=500")], "")
                .await
                .status
        })
    };
    let worker_stuck = |l: &str| l.contains("actor stuck") && l.contains("diem/workers/");
    let reported = eventually(Duration::from_secs(2), "the stuck handler is logged", || async {
        s.logs().lines().any(worker_stuck).then(Instant::now)
    })
    .await;
    let after = reported.duration_since(sent);
    eprintln!(
        "stall=500: reported stuck {} ms after the request was sent",
        after.as_millis()
    );
    assert!(
        after <= Duration::from_millis(300),
        "reported within 200 ms of the handler's 100th ms: {after:?}"
    );
    let line = s.logs().lines().find(|l| worker_stuck(l)).unwrap().to_owned();
    assert!(
        line.contains("handling=Job"),
        "names the actor and the message: {line}"
    );
    // While it runs: ctl top, ctl diagnose (exit 1 at least), the metric.
    let top = top_json(&s).await;
    let busy: Vec<_> = workers(&top)
        .into_iter()
        .filter(|r| r["busy_ms"].as_u64().unwrap() >= 100)
        .collect();
    assert_eq!(busy.len(), 1, "{top}");
    assert_eq!(busy[0]["running"], "Job", "{top}");
    let (code, json, err) = s.ctl_cli(&["diagnose", "--json"]).await;
    let report: Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json} {err}"));
    eprintln!("{report}");
    assert!(
        code >= 1,
        "diagnose exits 1 or 2 on a stuck handler: {code} {report}"
    );
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["area"] == "stuck" && f["detail"].as_str().unwrap().contains("diem/workers/")),
        "{report}"
    );
    assert_eq!(stalled.await.unwrap(), 200);
    let metrics = s.get("/metrics").await.body;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("diem_actor_stuck_total{actor=\"diem/workers/") && l.ends_with(" 1")),
        "{metrics}"
    );
    // Once it is done, no longer stuck; diagnose says ok again.
    let code = eventually(Duration::from_secs(5), "diagnose ok again", || async {
        let (code, _, _) = s.ctl_cli(&["diagnose"]).await;
        (code == 0).then_some(code)
    })
    .await;
    assert_eq!(code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_growing_mailbox_is_reported() {
    let s = serving(
        Options::no_limit()
            .env("DIEM_WORKERS__COUNT", 2)
            .env("DIEM_WORKERS__QUEUE_DEPTH", 64)
            .env("DIEM_OBSERVER__MAILBOX_WARN", 3),
    )
    .await;
    let mut tasks = Vec::new();
    // Both workers stalled, then requests queue behind them.
    for i in 0..12 {
        let s = s.clone();
        let fault = if i < 2 { "stall=1500" } else { "none" };
        tasks.push(tokio::spawn(async move {
            s.request("GET", "/hitokoto/v2/", &[("x-diem-fault", fault)], "")
                .await
                .status
        }));
        if i < 2 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    eventually(Duration::from_secs(2), "the long mailbox is logged", || async {
        s.logs()
            .contains("mailbox over observer.mailbox_warn")
            .then_some(())
    })
    .await;
    let top = top_json(&s).await;
    let longest = workers(&top)
        .iter()
        .map(|r| r["mailbox"].as_u64().unwrap())
        .max()
        .unwrap();
    assert!(longest > 3, "{top}");
    let (code, out, _) = s.ctl_cli(&["diagnose"]).await;
    eprintln!("{out}");
    assert!(
        code >= 1 && out.contains("mailbox") && out.contains("level:"),
        "{code} {out}"
    );
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let stats = s.ctl(json!({"cmd": "stats"})).await;
    assert_eq!(stats["ok"], true);
    let metrics = s.get("/metrics").await.body;
    assert!(
        metrics.contains("diem_actor_mailbox_warnings_total{actor=\"diem/workers/"),
        "{metrics}"
    );
}
