//! Live upgrade (`diem ctl upgrade`, SIGUSR2) under load: no refused
//! connection, no failed request; failures leave the old process serving;
//! and the systemd protocol (notify socket, watchdog, socket activation)
//! played for real.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::load::{by_status, Load, Outcome, Plan};
use crate::support::server::eventually;
use crate::support::server::{Options, TestServer};
use crate::support::services::Line;

const CORPUS: &[Line<'static>] = &[('a', "upgrade one", "t"), ('b', "upgrade two", "t")];

/// A script at `dir/name` with `body`, executable.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A copy of the diem binary at `dir/name` (a "new" binary: another file).
fn copy_of_diem(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::copy(env!("CARGO_BIN_EXE_diem"), &path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Whether `pid` runs (a zombie waiting to be reaped has exited).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next());
        !matches!(state, Some(Some('Z' | 'X')) | None)
    })
}

/// Runs `diem ctl --json upgrade ARGS`; returns the exit code, the reply
/// (stdout) and stderr.
async fn upgrade(s: &TestServer, args: &[&str]) -> (i32, Value, String) {
    let mut all = vec!["--json", "upgrade"];
    all.extend_from_slice(args);
    let (code, out, err) = s.ctl_cli(&all).await;
    let reply = serde_json::from_str(out.trim()).unwrap_or(Value::Null);
    (code, reply, err)
}

/// Every outcome was a 200; the slowest took less than `within`.
fn all_served(outcomes: &[Outcome], within: Duration, what: &str) {
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| o.status != Some(200)).collect();
    assert!(
        failed.is_empty(),
        "{what}: {} of {} requests failed, e.g. {:?}; by status {:?}",
        failed.len(),
        outcomes.len(),
        failed.iter().take(5).collect::<Vec<_>>(),
        by_status(outcomes)
    );
    let slowest = outcomes.iter().map(|o| o.latency).max().unwrap_or_default();
    assert!(slowest < within, "{what}: a request took {slowest:?}");
    assert!(outcomes.len() > 100, "{what}: only {} requests", outcomes.len());
}

/// Reads the datagrams sent to a NOTIFY_SOCKET.
struct Notify {
    socket: UnixDatagram,
    path: PathBuf,
}

impl Notify {
    fn bind(dir: &Path) -> Notify {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        Notify { socket, path }
    }

    /// Every datagram received within `window`, with its arrival time.
    async fn collect(&self, window: Duration) -> Vec<(Instant, String)> {
        let socket = self.socket.try_clone().unwrap();
        tokio::task::spawn_blocking(move || {
            let end = Instant::now() + window;
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            while Instant::now() < end {
                if let Ok(n) = socket.recv(&mut buf) {
                    got.push((Instant::now(), String::from_utf8_lossy(&buf[..n]).into_owned()));
                }
            }
            got
        })
        .await
        .unwrap()
    }

    /// Waits for a datagram containing `line`; returns all it read.
    async fn until(&self, line: &str, within: Duration) -> Vec<String> {
        let end = Instant::now() + within;
        let mut seen = Vec::new();
        while Instant::now() < end {
            for (_, d) in self.collect(Duration::from_millis(100)).await {
                let found = d.lines().any(|l| l == line || l.starts_with(line));
                seen.push(d);
                if found {
                    return seen;
                }
            }
        }
        panic!("no `{line}` within {within:?}; received {seen:?}");
    }
}

#[tokio::test]
async fn three_upgrades_under_load_refuse_no_connection_and_fail_no_request() {
    let dir = tempfile::tempdir().unwrap();
    let notify = Notify::bind(dir.path());
    let s = TestServer::start_with(
        Options::no_limit()
            .env("NOTIFY_SOCKET", notify.path.display())
            .env("DIEM_HTTP__SHUTDOWN_DELAY", "2s"),
        CORPUS,
    )
    .await;
    notify.until("READY=1", Duration::from_secs(10)).await;
    let next = copy_of_diem(dir.path(), "diem-next");
    let original = PathBuf::from(env!("CARGO_BIN_EXE_diem"));

    // Keep-alive clients and a new connection per request, both at once.
    let keep_alive = Load::start(s.addr, Plan::new("/hitokoto/v2/", 8, Duration::from_secs(10)));
    let fresh = Load::start(
        s.addr,
        Plan::new("/hitokoto/v2/", 4, Duration::from_secs(10)).fresh(),
    );
    let mut pid = s.pid();
    for (i, binary) in [&next, &original, &next].iter().enumerate() {
        tokio::time::sleep(Duration::from_millis(2_000)).await;
        let (code, reply, err) = upgrade(&s, &["--binary", binary.to_str().unwrap()]).await;
        assert_eq!(code, 0, "upgrade {i}: {reply} {err}\n{}", s.logs());
        let new_pid = reply["new"]["pid"].as_u64().unwrap() as u32;
        s.took_over(new_pid);
        assert_eq!(reply["old"]["pid"], pid, "upgrade {i}: {reply}");
        assert_ne!(new_pid, pid, "upgrade {i}: {reply}");
        assert_eq!(reply["new"]["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(reply["binary"], binary.display().to_string());
        for phase in ["start_ms", "init_ms", "handover_ms"] {
            assert!(reply["phases"][phase].is_u64(), "{reply}");
        }
        // systemd learns the new main pid, and the new process is ready.
        let said = notify
            .until(&format!("MAINPID={new_pid}"), Duration::from_secs(5))
            .await;
        assert!(!said.iter().any(|d| d.contains("STOPPING=1")), "{said:?}");
        let ping = s.ctl(json!({"cmd": "ping"})).await;
        assert_eq!(ping["pid"], new_pid, "the control socket moved: {ping}");
        // The old process drains and exits.
        let old = pid;
        eventually(Duration::from_secs(15), "the old process exits", || async {
            (!alive(old)).then_some(())
        })
        .await;
        pid = new_pid;
    }
    let outcomes: Vec<Outcome> = keep_alive
        .join()
        .await
        .into_iter()
        .chain(fresh.join().await)
        .collect();
    all_served(&outcomes, Duration::from_secs(5), "during three upgrades");

    // The control socket is the new process's: it answers, and its tree is whole.
    let ready = s.ctl(json!({"cmd": "ready"})).await;
    assert_eq!(ready["ready"], true, "{ready}");
    let stopped = s.ctl(json!({"cmd": "shutdown"})).await;
    assert_eq!(stopped["ok"], true);
    eventually(Duration::from_secs(15), "the last process exits", || async {
        (!alive(pid)).then_some(())
    })
    .await;
    assert!(!s.socket.exists(), "the last process removes the control socket");
}

#[tokio::test]
async fn a_failed_upgrade_leaves_the_old_process_serving() {
    let s = TestServer::start_with(Options::no_limit(), CORPUS).await;
    let dir = tempfile::tempdir().unwrap();
    let exits = script(
        dir.path(),
        "exits",
        "echo 'boom: this build cannot start' >&2\nexit 3",
    );
    let never = script(
        dir.path(),
        "never-ready",
        "echo 'starting slowly' >&2\nexec sleep 600",
    );
    let crashes = script(
        dir.path(),
        "crashes",
        &format!(
            "exec env FAULT_CRASH_AT_START=diem/store/corpus@1 {} \"$@\"",
            env!("CARGO_BIN_EXE_diem")
        ),
    );
    let pid = s.pid();
    let keep_alive = Load::start(s.addr, Plan::new("/hitokoto/v2/", 4, Duration::from_secs(60)));
    let fresh = Load::start(
        s.addr,
        Plan::new("/hitokoto/v2/", 2, Duration::from_secs(60)).fresh(),
    );

    let (code, reply, err) = upgrade(&s, &["--binary", exits.to_str().unwrap()]).await;
    assert_eq!(code, 1, "{reply} {err}");
    assert!(err.contains("exited with exit status: 3"), "{err}");
    assert!(
        err.contains("boom: this build cannot start"),
        "the child's last lines: {err}"
    );

    let (code, _, err) = upgrade(&s, &["--binary", crashes.to_str().unwrap()]).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("before it was ready"), "{err}");
    assert!(err.contains("injected fault"), "the child's last lines: {err}");

    let begun = Instant::now();
    let (code, _, err) = upgrade(&s, &["--binary", never.to_str().unwrap(), "--timeout", "2"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not ready within 2s"), "{err}");
    assert!(err.contains("starting slowly"), "{err}");
    assert!(begun.elapsed() < Duration::from_secs(10));

    // A wrapper that starts a child of its own and then never gets ready:
    // the failed upgrade stops the child too (the candidate's process group).
    let pidfile = dir.path().join("grandchild.pid");
    let wrapper = script(
        dir.path(),
        "wrapper",
        &format!("sleep 600 &\necho $! > {}\nwait", pidfile.display()),
    );
    let (code, _, err) = upgrade(&s, &["--binary", wrapper.to_str().unwrap(), "--timeout", "2"]).await;
    assert_eq!(code, 1, "{err}");
    let grandchild: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    crate::support::server::eventually(Duration::from_secs(5), "the wrapper's child is gone", || async {
        let state = std::fs::read_to_string(format!("/proc/{grandchild}/stat")).unwrap_or_default();
        // Gone, or a zombie waiting for init to reap it.
        (state.is_empty() || state.contains(") Z ")).then_some(())
    })
    .await;

    let (code, _, err) = upgrade(&s, &["--binary", "/nonexistent/diem"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cannot start /nonexistent/diem"), "{err}");

    // One at a time: a second upgrade while one runs is refused.
    let slow = {
        let socket = s.socket.clone();
        let never = never.clone();
        tokio::spawn(async move {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_diem"))
                .args(["ctl", "--socket"])
                .arg(&socket)
                .args(["upgrade", "--timeout", "3", "--binary"])
                .arg(&never)
                .output()
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (code, _, err) = upgrade(&s, &[]).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("already running"), "{err}");
    assert!(!slow.await.unwrap().status.success());

    keep_alive.finish().await;
    let outcomes: Vec<Outcome> = fresh.finish().await;
    all_served(&outcomes, Duration::from_secs(5), "through failed upgrades");
    let ping = s.ctl(json!({"cmd": "ping"})).await;
    assert_eq!(ping["pid"], pid, "the old process still serves");
    assert!(s.get("/hitokoto/v2/").await.status == 200);
    // No new process is left behind.
    let tree = s.ctl(json!({"cmd": "tree"})).await;
    assert_eq!(
        crate::support::server::tree_node(&tree, "diem/upgrade")["state"],
        "running"
    );
}

#[tokio::test]
async fn sigusr2_upgrades_to_the_binary_at_the_running_path() {
    let mut s = TestServer::start(Options::no_limit()).await;
    let pid = s.pid();
    s.signal(rustix::process::Signal::USR2);
    let after = eventually(Duration::from_secs(15), "a new process serves", || async {
        // A ping queued on the old process's socket as it hands over is
        // reset (seen once): poll again.
        let ping = s.try_ctl(json!({"cmd": "ping"})).await?;
        (ping["pid"] != pid).then_some(ping)
    })
    .await;
    s.took_over(after["pid"].as_u64().unwrap() as u32);
    assert_eq!(
        s.wait_exit(Duration::from_secs(15)).await,
        0,
        "the old process exits 0"
    );
    assert_eq!(s.get("/hitokoto/v2/").await.status, 200);
    // Written before the old process exited; the thread reading its stderr
    // may not have it yet.
    eventually(
        Duration::from_secs(5),
        "the old process logged the upgrade",
        || async { s.logs().contains("upgrade (SIGUSR2) done").then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn systemd_notify_ready_reload_watchdog_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let notify = Notify::bind(dir.path());
    let s = TestServer::start(
        Options::no_limit()
            .env("NOTIFY_SOCKET", notify.path.display())
            // WatchdogSec=600ms: a ping every 300 ms.
            .env("WATCHDOG_USEC", 600_000),
    )
    .await;
    let said = notify.until("READY=1", Duration::from_secs(10)).await;
    assert!(
        said.iter()
            .any(|d| d.lines().any(|l| l.starts_with("STATUS=serving "))),
        "{said:?}"
    );
    let pings: Vec<Instant> = notify
        .collect(Duration::from_secs(3))
        .await
        .into_iter()
        .filter(|(_, d)| d.lines().any(|l| l == "WATCHDOG=1"))
        .map(|(at, _)| at)
        .collect();
    // Every 300 ms: about 10 in 3 s (a loaded machine may delay a few).
    assert!((6..=12).contains(&pings.len()), "{} pings in 3 s", pings.len());
    let longest = pings.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert!(
        longest < Duration::from_millis(600),
        "a gap of {longest:?} between pings"
    );

    let reply = s.ctl(json!({"cmd": "reload"})).await;
    assert_eq!(reply["ok"], true, "{reply}");
    let said = notify.until("READY=1", Duration::from_secs(5)).await;
    let reloading = said
        .iter()
        .find(|d| d.contains("RELOADING=1"))
        .expect("RELOADING=1");
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");

    // A wedged root supervisor stops the pings.
    let wedged = s
        .request("GET", "/hitokoto/v2/", &[("x-diem-fault", "wedge-root")], "")
        .await;
    assert_eq!(wedged.status, 200);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let after: Vec<_> = notify
        .collect(Duration::from_secs(2))
        .await
        .into_iter()
        .filter(|(_, d)| d.contains("WATCHDOG=1"))
        .collect();
    assert!(
        after.is_empty(),
        "pings went on with the root wedged: {}",
        after.len()
    );
    assert!(s.logs().contains("watchdog: not pinging systemd"), "{}", s.logs());
    drop(s);

    // STOPPING=1 when the drain begins.
    let mut s = TestServer::start(Options::no_limit().env("NOTIFY_SOCKET", notify.path.display())).await;
    notify.until("READY=1", Duration::from_secs(10)).await;
    s.sigterm();
    notify.until("STOPPING=1", Duration::from_secs(10)).await;
    assert_eq!(s.wait_exit(Duration::from_secs(15)).await, 0);
}

#[tokio::test]
async fn socket_activation_serves_the_connection_that_started_it() {
    let activate = crate::support::cluster::which("systemd-socket-activate").unwrap_or_else(|| {
        panic!("systemd-socket-activate is not installed: scripts/test installs it (apt-get install systemd)")
    });
    let dir = tempfile::tempdir().unwrap();
    let port = crate::support::cluster::free_port();
    let control = dir.path().join("ctl.sock");
    let unused = dir.path().join("unused.sock");
    let schema = crate::support::services::unique("t_");
    let mut activator = std::process::Command::new(activate)
        .arg("-l")
        .arg(format!("127.0.0.1:{port}"))
        .arg("-l")
        .arg(&control)
        .arg("--fdname=http:control")
        .args([
            "-E",
            "DIEM_LIMITER__ENABLED=false",
            "-E",
            "DIEM_HTTP__SHUTDOWN_DELAY=0s",
        ])
        .arg("-E")
        .arg(format!(
            "DIEM_POSTGRES__URL={}",
            crate::support::services::pg_url()
        ))
        .arg("-E")
        .arg(format!("DIEM_POSTGRES__SCHEMA={schema}"))
        .arg("-E")
        .arg(format!(
            "DIEM_REDIS__URL={}",
            crate::support::services::redis_url()
        ))
        // Neither is used: the sockets come from systemd.
        .args(["-E", "DIEM_HTTP__ADDR=127.0.0.1:1"])
        .arg("-E")
        .arg(format!("DIEM_CONTROL__SOCKET={}", unused.display()))
        .arg(env!("CARGO_BIN_EXE_diem"))
        .arg("serve")
        .current_dir(dir.path())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The socket exists before diem does: the first connection starts diem
    // and is served by it.
    let stream = eventually(
        Duration::from_secs(10),
        "the activation socket listens",
        || async { std::net::TcpStream::connect(("127.0.0.1", port)).ok() },
    )
    .await;
    let response = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = stream;
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        stream
            .write_all(b"GET /hitokoto/v2/?encode=json HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut text = String::new();
        let _ = stream.read_to_string(&mut text);
        text
    })
    .await
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"hitokoto\""), "{response}");
    // The control socket is the passed one, not control.socket.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_diem"))
        .args(["ctl", "--json", "--socket"])
        .arg(&control)
        .arg("ping")
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ping: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(ping["pid"], activator.id(), "systemd-socket-activate execs diem");
    assert!(!unused.exists());
    // systemd owns the socket: diem leaves the file when it exits.
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(activator.id() as i32).unwrap(),
        rustix::process::Signal::TERM,
    )
    .unwrap();
    let status = activator.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(
        control.exists(),
        "the passed control socket's file is systemd's to remove"
    );
    crate::support::services::drop_schema_blocking(schema);
}

#[tokio::test]
async fn an_upgraded_member_rejoins_its_cluster_under_its_name() {
    let plan = crate::support::cluster::Plan::new(2);
    let nodes = plan.start_all(Options::no_limit()).await;
    let (code, reply, err) = upgrade(&nodes[0], &[]).await;
    assert_eq!(code, 0, "{reply} {err}");
    let new_pid = reply["new"]["pid"].as_u64().unwrap() as u32;
    nodes[0].took_over(new_pid);
    // The new process holds the cluster port the old one released, and
    // both sides see each other up again.
    crate::support::cluster::wait_members(&nodes[0], 1, Duration::from_secs(20)).await;
    eventually(Duration::from_secs(20), "n2 sees the new n1 up", || async {
        let state = crate::support::cluster::state_of(&nodes[1], "n1").await;
        (state == "up").then_some(())
    })
    .await;
    let ping = nodes[1].ctl(json!({"cmd": "ping", "node": "n1"})).await;
    assert_eq!(ping["pid"], new_pid, "{ping}");
    // An upgrade is refused through another member.
    let refused = nodes[1].ctl(json!({"cmd": "upgrade", "node": "n1"})).await;
    assert_eq!(refused["error"]["code"], "unsupported", "{refused}");
    let tree = nodes[0].ctl(json!({"cmd": "tree"})).await;
    assert_eq!(
        crate::support::server::tree_node(&tree, "diem/cluster")["state"],
        "running"
    );
}

#[tokio::test]
async fn the_systemd_units_of_deploy_are_valid() {
    let analyze = crate::support::cluster::which("systemd-analyze").unwrap_or_else(|| {
        panic!("systemd-analyze is not installed: scripts/test installs it (apt-get install systemd)")
    });
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // The binary the units name must exist: point them at the test build.
    let service = std::fs::read_to_string(root.join("deploy/systemd/diem.service"))
        .unwrap()
        .replace("/usr/local/bin/diem", env!("CARGO_BIN_EXE_diem"));
    assert!(service.contains("Type=notify") && service.contains("WatchdogSec="));
    std::fs::write(dir.path().join("diem.service"), service).unwrap();
    std::fs::copy(
        root.join("deploy/systemd/diem.socket"),
        dir.path().join("diem.socket"),
    )
    .unwrap();
    let out = std::process::Command::new(analyze)
        .arg("verify")
        .arg(dir.path().join("diem.service"))
        .arg(dir.path().join("diem.socket"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // Unknown keys are only warned about: any warning fails the test.
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("diem.s")).collect();
    assert!(warnings.is_empty(), "{warnings:?}");
}
