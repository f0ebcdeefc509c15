//! The control socket and `diem ctl`: every command, kills and restarts
//! under load, scaling, reload, permissions, and bad input.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::support::load::{by_status, Load, Plan};
use crate::support::server::{eventually, tree_node, Options, TestServer};

fn child<'a>(tree: &'a Value, path: &str) -> &'a Value {
    tree_node(tree, path)
}

async fn all_ok(load: Load) -> usize {
    let outcomes = load.join().await;
    let statuses = by_status(&outcomes);
    assert_eq!(
        statuses,
        [(Some(200), outcomes.len())].into_iter().collect(),
        "{statuses:?}"
    );
    outcomes.len()
}

#[tokio::test]
async fn reads_help_ping_tree_stats() {
    let s = TestServer::start_with(Options::no_limit(), &[('a', "x", "y")]).await;
    let help = s.ctl(json!({"cmd": "help", "id": 1})).await;
    assert_eq!((help["ok"].clone(), help["id"].clone()), (json!(true), json!(1)));
    let cmds: Vec<&str> = help["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["cmd"].as_str().unwrap())
        .collect();
    assert_eq!(
        cmds,
        [
            "help",
            "ping",
            "tree",
            "stats",
            "top",
            "diagnose",
            "restart",
            "kill",
            "scale",
            "reload",
            "limiter",
            "log-level",
            "ready",
            "cluster",
            "observe",
            "upgrade",
            "shutdown"
        ]
    );

    let ping = s.ctl(json!({"cmd": "ping"})).await;
    assert_eq!(ping["version"], env!("CARGO_PKG_VERSION"));
    assert!(ping["uptime_ms"].as_u64().is_some() && ping["node"].is_string());

    let tree = s.ctl(json!({"cmd": "tree"})).await;
    for path in [
        "diem",
        "diem/store",
        "diem/store/postgres",
        "diem/store/corpus",
        "diem/limiter",
        "diem/control",
        "diem/workers",
        "diem/workers/1",
        "diem/listener",
    ] {
        let n = child(&tree, path);
        for field in [
            "path",
            "id",
            "kind",
            "state",
            "restarts",
            "last_exit",
            "uptime_ms",
            "children",
        ] {
            assert!(n.get(field).is_some(), "{path} lacks {field}: {n}");
        }
        assert_eq!(n["state"], "running");
    }
    let pool = child(&tree, "diem/workers");
    assert_eq!(
        (pool["size"].clone(), pool["queue_depth"].clone()),
        (json!(4), json!(0))
    );
    assert_eq!(child(&tree, "diem/store")["kind"], "supervisor");
    assert_eq!(child(&tree, "diem/listener")["kind"], "worker");

    s.get("/hitokoto/v2/").await;
    let stats = s.ctl(json!({"cmd": "stats"})).await;
    assert_eq!(stats["requests"]["hitokoto"]["200"], 1, "{stats}");
    assert!(
        stats["latency"]["hitokoto"]["p99_ms"].as_f64().is_some(),
        "{stats}"
    );
    assert_eq!(stats["limiter"]["enabled"], false);
    assert!(stats["limiter"]["backend"].is_string());
    assert_eq!(stats["postgres"]["ready"], true);
    assert!(stats["memory"]["rss_bytes"].as_u64().unwrap() > 1_000_000);
    assert_eq!(stats["restarts"]["diem/listener"], 0);
}

#[tokio::test]
async fn kills_are_crashes_the_tree_repairs_while_the_api_answers() {
    let s = TestServer::start_with(Options::no_limit(), &[('a', "x", "y")]).await;
    let load = Load::start(s.addr, Plan::new("/hitokoto/v2/", 4, Duration::from_secs(3)));
    for path in [
        "diem/workers/2",
        "diem/limiter",
        "diem/store/postgres",
        "diem/store/corpus",
        "diem/listener",
        "diem/control",
    ] {
        let before = s.ctl(json!({"cmd": "tree"})).await;
        let old = child(&before, path)["actor"].clone();
        let reply = s.ctl(json!({"cmd": "kill", "path": path})).await;
        assert_eq!(reply["ok"], true, "{reply}");
        assert_eq!(reply["died"]["actor"], old, "{reply}");
        assert_eq!(reply["died"]["reason"], "killed");
        assert_eq!(reply["state"], "running", "{reply}");
        assert_ne!(reply["replaced_by"]["actor"], old);
        assert_eq!(reply["replaced_by"]["incarnation"], 2, "{reply}");
        // The control socket comes back after its own kill; wait for it.
        let after = eventually(Duration::from_secs(5), "control socket back", || async {
            match UnixStream::connect(&s.socket).await {
                Ok(_) => Some(s.ctl(json!({"cmd": "tree"})).await),
                Err(_) => None,
            }
        })
        .await;
        let n = child(&after, path);
        assert_eq!(
            (n["restarts"].clone(), n["last_exit"].clone()),
            (json!(1), json!("{injected,killed}")),
            "{path}: {n}"
        );
        assert_eq!(
            s.get("/hitokoto/v2/").await.status,
            200,
            "API answers after killing {path}"
        );
    }
    // A reason makes an abnormal exit with that reason.
    let reply = s
        .ctl(json!({"cmd": "kill", "path": "diem/workers/3", "reason": "chaos"}))
        .await;
    assert_eq!(reply["died"]["reason"], "chaos");
    let tree = s.ctl(json!({"cmd": "tree"})).await;
    assert_eq!(child(&tree, "diem/workers/3")["last_exit"], "{injected,chaos}");
    assert!(all_ok(load).await > 20);
}

#[tokio::test]
async fn restarts_are_graceful_and_rolling_for_the_pool() {
    let s = TestServer::start_with(Options::no_limit(), &[('a', "x", "y")]).await;
    let load = Load::start(s.addr, Plan::new("/hitokoto/v2/", 6, Duration::from_secs(2)));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = s.ctl(json!({"cmd": "restart", "path": "diem/workers"})).await;
    assert_eq!(
        (r["rolling"].clone(), r["replaced"].clone()),
        (json!(true), json!(4)),
        "{r}"
    );
    let r = s.ctl(json!({"cmd": "restart", "path": "diem/listener"})).await;
    assert_eq!(r["new"]["incarnation"], 2, "{r}");
    let r = s.ctl(json!({"cmd": "restart", "path": "diem/store"})).await;
    assert_eq!(r["ok"], true, "{r}");
    let r = s.ctl(json!({"cmd": "restart", "path": "diem/workers/5"})).await;
    assert!(
        r["replaced_by"].as_str().unwrap().starts_with("diem/workers/"),
        "{r}"
    );
    assert!(all_ok(load).await > 20);
    let tree = s.ctl(json!({"cmd": "tree"})).await;
    assert_eq!(child(&tree, "diem/workers")["size"], 4);
    let r = s.ctl(json!({"cmd": "restart", "path": "diem"})).await;
    assert_eq!(r["error"]["code"], "unsupported");
}

#[tokio::test]
async fn scaling_under_load_fails_no_request() {
    let s = TestServer::start_with(
        Options::no_limit().env("DIEM_WORKERS__MAX", 12),
        &[('a', "x", "y")],
    )
    .await;
    let load = Load::start(s.addr, Plan::new("/hitokoto/v2/", 8, Duration::from_secs(2)));
    for n in [12, 2, 9, 1, 4] {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let r = s
            .ctl(json!({"cmd": "scale", "pool": "diem/workers", "n": n}))
            .await;
        assert_eq!(r["to"], n, "{r}");
        let tree = s.ctl(json!({"cmd": "tree"})).await;
        assert_eq!(child(&tree, "diem/workers")["size"], n);
    }
    assert!(all_ok(load).await > 20);
    let r = s
        .ctl(json!({"cmd": "scale", "pool": "diem/workers", "n": 13}))
        .await;
    assert_eq!(r["error"]["code"], "invalid_argument", "bounded by workers.max");
    let r = s
        .ctl(json!({"cmd": "scale", "pool": "diem/workers", "n": 0}))
        .await;
    assert_eq!(r["error"]["code"], "invalid_argument");
    let r = s
        .ctl(json!({"cmd": "scale", "pool": "diem/listener", "n": 2}))
        .await;
    assert_eq!(r["error"]["code"], "not_a_pool");
    // A restarted pool comes back at the scaled size.
    s.ctl(json!({"cmd": "kill", "path": "diem/workers"})).await;
    let tree = eventually(Duration::from_secs(5), "pool back", || async {
        let t = s.ctl(json!({"cmd": "tree"})).await;
        (child(&t, "diem/workers")["size"] == 4).then_some(t)
    })
    .await;
    assert_eq!(child(&tree, "diem/workers")["restarts"], 1);
}

#[tokio::test]
async fn reload_applies_what_it_can_and_rejects_an_invalid_file_whole() {
    let config = "[limiter]\nburst = 4\ncount = 1\nperiod = \"60s\"\n";
    let s = TestServer::start_with(
        Options {
            config: Some(config.into()),
            ..Options::default()
        },
        &[('a', "x", "y")],
    )
    .await;
    assert_eq!(s.get("/hitokoto/v2/").await.header("x-ratelimit-limit"), "5");
    let path = s.config_path.clone().unwrap();

    // (Keys set in the environment win over the file, as at start: the
    // test server sets workers.count and http.addr there.)
    std::fs::write(
        &path,
        "[limiter]\nburst = 9\ncount = 1\nperiod = \"60s\"\n[workers]\nqueue_depth = 16\n\
         [postgres]\npool_size = 3\n[http]\nbacklog = 77\n",
    )
    .unwrap();
    let r = s.ctl(json!({"cmd": "reload"})).await;
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(
        r["changed"],
        json!([
            "http.backlog",
            "limiter.burst",
            "postgres.pool_size",
            "workers.queue_depth"
        ]),
        "{r}"
    );
    assert_eq!(
        r["needs_restart"],
        json!([{"key": "http.backlog", "restart": "process"}])
    );
    let r2 = s.get("/hitokoto/v2/").await;
    assert_eq!(r2.header("x-ratelimit-limit"), "10", "the new burst took effect");
    let tree = s.ctl(json!({"cmd": "tree"})).await;
    assert_eq!(child(&tree, "diem/workers")["capacity"], 4 * 16);
    let stats = s.ctl(json!({"cmd": "stats"})).await;
    assert_eq!(stats["postgres"]["max_size"], 3, "{stats}");

    std::fs::write(&path, "[limiter]\nburst = 1\n[workers]\nqueue_depth = \"many\"\n").unwrap();
    let r = s.ctl(json!({"cmd": "reload"})).await;
    assert_eq!(r["error"]["code"], "invalid_config", "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("workers.queue_depth"),
        "{r}"
    );
    assert_eq!(
        s.get("/hitokoto/v2/").await.header("x-ratelimit-limit"),
        "10",
        "nothing applied"
    );

    let r = s.ctl(json!({"cmd": "log-level", "filter": "debug"})).await;
    assert_eq!(
        (r["filter"].clone(), r["ok"].clone()),
        (json!("debug"), json!(true))
    );
    let r = s.ctl(json!({"cmd": "log-level", "filter": "=[bad"})).await;
    assert_eq!(r["error"]["code"], "invalid_argument", "{r}");
}

#[tokio::test]
async fn ctl_prints_like_pstree_and_exits_by_outcome() {
    let s = TestServer::start(Options::no_limit()).await;
    let (code, out, _) = s.ctl_cli(&["tree"]).await;
    assert_eq!(code, 0);
    assert!(out.starts_with("diem [one_for_one] running"), "{out}");
    assert!(
        out.contains("├── store [one_for_one] running") && out.contains("│   ├── postgres running"),
        "{out}"
    );
    assert!(
        out.contains("├── listener running") && out.contains("└── admin running") && !out.contains('\x1b'),
        "no colour off a terminal: {out}"
    );
    let (code, out, _) = s.ctl_cli(&["--json", "ping"]).await;
    assert_eq!(code, 0);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["ok"], true);
    let (code, _, err) = s.ctl_cli(&["kill", "diem/nope"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("not_found"), "{err}");
    let (code, out, _) = s.ctl_cli(&["scale", "diem/workers", "3"]).await;
    assert_eq!((code, out.contains("to: 3")), (0, true), "{out}");
    let missing = s.dir.path().join("missing.sock");
    let (code, _, err) = s.ctl_cli(&["--socket", missing.to_str().unwrap(), "ping"]).await;
    assert_eq!(code, 2);
    assert!(err.contains(missing.to_str().unwrap()), "names the path: {err}");
}

async fn raw(s: &TestServer, bytes: &[u8]) -> Vec<Value> {
    let mut stream = UnixStream::connect(&s.socket).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    stream.shutdown().await.unwrap();
    let mut text = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut text))
        .await
        .unwrap()
        .unwrap();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[tokio::test]
async fn bad_input_gets_an_error_reply_and_harms_nothing() {
    let s = TestServer::start_with(
        Options::no_limit()
            .env("DIEM_CONTROL__IDLE_TIMEOUT", "300ms")
            .env("DIEM_CONTROL__MAX_CONNECTIONS", 8),
        &[('a', "x", "y")],
    )
    .await;
    let replies = raw(
        &s,
        b"{nope\n[1,2]\n{\"cmd\":\"fly\",\"id\":\"a\"}\n{\"cmd\":\"kill\",\"path\":7}\n{\"cmd\":\"scale\",\"pool\":\"diem/workers\",\"n\":\"x\"}\n\
          {\"cmd\":\"kill\",\"path\":\"diem/none\"}\n{\"cmd\":\"restart\",\"path\":\"elsewhere\"}\n\n{\"cmd\":\"ping\"}\n",
    )
    .await;
    let codes: Vec<&str> = replies
        .iter()
        .map(|r| r["error"]["code"].as_str().unwrap_or("ok"))
        .collect();
    assert_eq!(
        codes,
        [
            "bad_json",
            "bad_request",
            "unknown_command",
            "invalid_argument",
            "invalid_argument",
            "not_found",
            "not_found",
            "ok"
        ]
    );
    assert_eq!(replies[2]["id"], "a", "the id is echoed on errors too");

    // A line over 64 KiB: an error, then the connection closes.
    let mut long = vec![b'x'; 70 * 1024];
    long.push(b'\n');
    let replies = raw(&s, &long).await;
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0]["error"]["code"], "line_too_long");

    // A client that sends nothing is told and closed after the idle timeout.
    let stream = UnixStream::connect(&s.socket).await.unwrap();
    let mut lines = BufReader::new(stream).lines();
    let line = tokio::time::timeout(Duration::from_secs(5), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&line).unwrap()["error"]["code"],
        "timeout"
    );
    assert!(lines.next_line().await.unwrap().is_none(), "closed");

    // Hundreds of connections at once: the ones over the limit are refused,
    // serving and the other control clients go on.
    let mut held = Vec::new();
    for _ in 0..300 {
        if let Ok(c) = UnixStream::connect(&s.socket).await {
            held.push(c);
        }
    }
    let mut refused = 0;
    for c in held.iter_mut().skip(8) {
        let mut buf = String::new();
        if tokio::time::timeout(Duration::from_secs(2), BufReader::new(c).read_line(&mut buf))
            .await
            .is_ok()
            && buf.contains("too_many_connections")
        {
            refused += 1;
        }
    }
    assert!(refused >= 250, "{refused} refused");
    assert_eq!(s.get("/hitokoto/v2/").await.status, 200);
    drop(held);
    let ping = eventually(Duration::from_secs(3), "control usable again", || async {
        let r = s.ctl(json!({"cmd": "ping"})).await;
        (r["ok"] == true).then_some(r)
    })
    .await;
    assert_eq!(ping["ok"], true);
}

#[tokio::test]
async fn the_socket_is_private_checked_replaced_when_stale_and_exclusive_when_live() {
    let s = TestServer::start(Options::no_limit()).await;
    let meta = std::fs::metadata(&s.socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);

    // A second node on the same socket path does not start, and says why.
    let clash = TestServer::start(Options {
        env: vec![("DIEM_CONTROL__SOCKET".into(), s.socket.display().to_string())],
        ..Options::no_limit()
    });
    let Err(err) = tokio::time::timeout(Duration::from_secs(40), tokio::spawn(clash))
        .await
        .unwrap()
    else {
        panic!("a second node on a live control socket must not start");
    };
    let payload = err.into_panic();
    let msg = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(msg.contains("is in use by a running process"), "{msg}");

    if rustix::process::geteuid().is_root() {
        // Another uid that can reach the file is refused by SO_PEERCRED.
        std::fs::set_permissions(s.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let as_nobody = |socket_mode: u32| {
            std::fs::set_permissions(&s.socket, std::fs::Permissions::from_mode(socket_mode)).unwrap();
            std::process::Command::new("setpriv")
                .args([
                    "--reuid=65534",
                    "--regid=65534",
                    "--clear-groups",
                    env!("CARGO_BIN_EXE_diem"),
                    "ctl",
                    "--socket",
                ])
                .arg(&s.socket)
                .arg("ping")
                .env_clear()
                .current_dir("/")
                .output()
                .unwrap()
        };
        let out = as_nobody(0o600);
        assert_eq!(out.status.code(), Some(2), "mode 0600 keeps other users out");
        let out = as_nobody(0o666);
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("uid 65534 may not use this control socket"), "{err}");
        eventually(Duration::from_secs(2), "refusal logged", || async {
            s.logs()
                .contains("control connection refused: peer uid")
                .then_some(())
        })
        .await;
    } else {
        eprintln!("not root: the foreign-uid part of this test needs root to switch uid (CI runs as root)");
    }

    // A stale socket file (no process behind it) is replaced at start.
    let dir = tempfile::tempdir().unwrap();
    let stale = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert!(stale.exists());
    let fresh = TestServer::start(Options {
        env: vec![("DIEM_CONTROL__SOCKET".into(), stale.display().to_string())],
        ..Options::no_limit()
    })
    .await;
    let mut c = UnixStream::connect(&stale).await.unwrap();
    c.write_all(b"{\"cmd\":\"ping\"}\n").await.unwrap();
    let mut line = String::new();
    BufReader::new(c).read_line(&mut line).await.unwrap();
    assert!(line.contains("\"ok\":true"), "{line}");
    drop(fresh);
}
