//! A diem process started for one test, on its own port, schema, Redis key
//! prefix and control socket.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::HeaderMap;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader as AsyncBufReader};

use super::services::{drop_schema_blocking, pg_url, redis_url, unique};

/// How a test server is started.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// PostgreSQL URL (default: the test database).
    pub pg_url: Option<String>,
    /// Redis URL (default: the test Redis).
    pub redis_url: Option<String>,
    /// Use this schema instead of a fresh one (it is then not dropped).
    pub schema: Option<String>,
    /// Extra environment, e.g. `("DIEM_LIMITER__BURST", "2")`.
    pub env: Vec<(String, String)>,
    /// A config file's content (passed with --config).
    pub config: Option<String>,
}

impl Options {
    /// A node with rate limiting off (most tests send many requests from
    /// one address).
    pub fn no_limit() -> Self {
        Self::default().env("DIEM_LIMITER__ENABLED", false)
    }

    /// Adds an environment variable.
    pub fn env(mut self, key: &str, value: impl ToString) -> Self {
        self.env.push((key.to_owned(), value.to_string()));
        self
    }
}

/// An HTTP response, read in full.
#[derive(Debug)]
pub struct Resp {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// Body as text.
    pub body: String,
}

impl Resp {
    /// A header as text ("" if absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// A running diem.
pub struct TestServer {
    child: Option<Child>,
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Its schema.
    pub schema: String,
    own_schema: bool,
    /// Its Redis key prefix.
    pub prefix: String,
    /// Its control socket.
    pub socket: PathBuf,
    /// Its config file, if it has one.
    pub config_path: Option<PathBuf>,
    /// Its working directory.
    pub dir: tempfile::TempDir,
    logs: Arc<Mutex<Vec<String>>>,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    /// Processes that took over from it (live upgrade), killed on drop.
    successors: Mutex<Vec<u32>>,
}

impl TestServer {
    /// Starts diem and waits until it listens (not until it is ready).
    pub async fn start(opts: Options) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let (schema, own_schema) = match &opts.schema {
            Some(s) => (s.clone(), false),
            None => (unique("t_"), true),
        };
        let prefix = format!("{}:", unique("t"));
        let socket = dir.path().join("diem.sock");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_diem"));
        cmd.env_clear()
            .current_dir(dir.path())
            // No RUST_BACKTRACE: the first backtrace a process prints loads
            // the debug binary's DWARF, ~0.24 s of CPU and +226 MiB of RSS,
            // and std's panic lock holds every other panicking thread (so
            // both runtime threads) for that long: three concurrent
            // panicking requests took 0.29 s each, against 0.01 s without.
            // The panic message and its file:line are still in the log.
            .env("DIEM_HTTP__ADDR", "127.0.0.1:0")
            .env("DIEM_POSTGRES__URL", opts.pg_url.clone().unwrap_or_else(pg_url))
            .env("DIEM_POSTGRES__SCHEMA", &schema)
            .env("DIEM_POSTGRES__RETRY_MAX", "500ms")
            .env("DIEM_POSTGRES__HEALTH_INTERVAL", "200ms")
            .env("DIEM_POSTGRES__CONNECT_TIMEOUT", "1s")
            .env(
                "DIEM_REDIS__URL",
                opts.redis_url.clone().unwrap_or_else(redis_url),
            )
            .env("DIEM_REDIS__KEY_PREFIX", &prefix)
            .env("DIEM_REDIS__HEALTH_INTERVAL", "200ms")
            .env("DIEM_CONTROL__SOCKET", &socket)
            // Each test's own admin port (tests that use it read it from the log).
            .env("DIEM_ADMIN__ADDR", "127.0.0.1:0")
            .env("DIEM_WORKERS__COUNT", "4")
            .env("DIEM_LOG__FILTER", "info,diem::access=warn")
            .env("DIEM_HTTP__SHUTDOWN_GRACE", "10s")
            // Tests that exercise the shutdown delay set it themselves.
            .env("DIEM_HTTP__SHUTDOWN_DELAY", "0s");
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        let mut config_path = None;
        if let Some(text) = &opts.config {
            let path = dir.path().join("diem.toml");
            std::fs::write(&path, text).expect("write config");
            cmd.arg("--config").arg(&path);
            config_path = Some(path);
        }
        cmd.arg("serve").stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn diem");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        if let Some(stderr) = child.stderr.take() {
            let logs = logs.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Some(addr) = line.split("listening on ").nth(1) {
                        let addr = addr.split_whitespace().next().unwrap_or("").to_owned();
                        let _ = tx.send(addr);
                    }
                    if line.contains("diem started") {
                        let _ = started_tx.send(());
                    }
                    logs.lock().expect("logs").push(line);
                }
            });
        }
        let addr = tokio::task::spawn_blocking(move || {
            let addr = rx.recv_timeout(Duration::from_secs(30));
            // The listener logs its address while the tree is still
            // starting; the control socket answers "the tree is not running"
            // until the root is published, which "diem started" follows.
            // (A process that exits first ends the wait at once.)
            let _ = started_rx.recv_timeout(Duration::from_secs(30));
            addr
        })
        .await
        .expect("join");
        let addr: SocketAddr = match addr {
            Ok(a) => a.parse().expect("listening address"),
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "diem did not start; its log:\n{}",
                    logs.lock().expect("logs").join("\n")
                );
            }
        };
        // A pooled connection is dropped well before the server's header
        // deadline (`http.header_read_timeout`, 5 s) closes it: with both
        // at 5 s a request could go out on a connection the server was
        // closing that instant (`IncompleteMessage`, seen once under CI's
        // load). A client must give up an idle connection first.
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(2))
            .build_http();
        TestServer {
            child: Some(child),
            addr,
            schema,
            own_schema,
            prefix,
            socket,
            config_path,
            dir,
            logs,
            client,
            successors: Mutex::new(Vec::new()),
        }
    }

    /// Remembers a process that took over from this one (killed on drop).
    pub fn took_over(&self, pid: u32) {
        self.successors.lock().expect("successors").push(pid);
    }

    /// Starts diem and waits until `/readyz` says ready.
    pub async fn start_ready(opts: Options) -> TestServer {
        let s = Self::start(opts).await;
        s.wait_ready(Duration::from_secs(30)).await;
        s
    }

    /// Starts diem, imports `sentences` into its schema, waits until ready.
    pub async fn start_with(opts: Options, sentences: &[super::services::Line<'_>]) -> TestServer {
        let s = Self::start(opts).await;
        let bundle = super::services::write_bundle(s.dir.path(), sentences);
        let (code, out, err) = super::services::import(&s.schema, &bundle).await;
        assert_eq!(code, 0, "import: {out}{err}");
        s.wait_ready(Duration::from_secs(30)).await;
        s
    }

    /// `http://ADDR{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends a request.
    pub async fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Resp {
        let mut req = hyper::Request::builder().method(method).uri(self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(Full::new(Bytes::from(body.to_owned())))
            .expect("request");
        let resp = tokio::time::timeout(Duration::from_secs(30), self.client.request(req))
            .await
            .expect("response within 30 s")
            .expect("response");
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.expect("body").to_bytes();
        Resp {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Resp {
        self.request("GET", path, &[], "").await
    }

    /// `POST /hitokoto/v2/` with `body`, authorised by the admin `token`.
    pub async fn post(&self, token: &str, body: &str) -> Resp {
        let auth = format!("Bearer {token}");
        self.request("POST", "/hitokoto/v2/", &[("authorization", &auth)], body)
            .await
    }

    /// Waits until `/readyz` answers 200 and notes nothing about
    /// PostgreSQL or the corpus: the node serves PostgreSQL's sentences.
    pub async fn wait_ready(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let r = self.get("/readyz").await;
            let notes = serde_json::from_str::<Value>(&r.body)
                .map(|v| v["notes"].to_string())
                .unwrap_or_default();
            if r.status == 200 && !notes.contains("postgres") && !notes.contains("corpus") {
                return;
            }
            if Instant::now() > deadline {
                panic!("not ready within {within:?}: {}\nlog:\n{}", r.body, self.logs());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Sends one control request; `None` if the connection fails or
    /// closes without a reply (for polling across a hand-over, when the old
    /// process closes its control socket with connections still queued).
    pub async fn try_ctl(&self, request: Value) -> Option<Value> {
        self.ctl_exchange(request).await.ok()
    }

    /// Sends one control request and returns the reply.
    pub async fn ctl(&self, request: Value) -> Value {
        self.ctl_exchange(request).await.unwrap_or_else(|e| panic!("{e}"))
    }

    async fn ctl_exchange(&self, request: Value) -> Result<Value, String> {
        let mut stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|e| format!("control socket: {e}"))?;
        let mut line = request.to_string();
        line.push('\n');
        // A refused connection is answered before the request is read: the
        // write may fail, the reply still comes.
        let _ = stream.write_all(line.as_bytes()).await;
        let mut reader = AsyncBufReader::new(stream);
        let mut reply = String::new();
        tokio::time::timeout(Duration::from_secs(60), reader.read_line(&mut reply))
            .await
            .map_err(|_| "no reply within 60 s".to_owned())?
            .map_err(|e| format!("read: {e}"))?;
        serde_json::from_str(&reply).map_err(|e| format!("bad reply ({e}): {reply}"))
    }

    /// Runs `diem ctl ARGS` against this server; returns (code, stdout, stderr).
    pub async fn ctl_cli(&self, args: &[&str]) -> (i32, String, String) {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_diem"));
        cmd.env_clear().current_dir(self.dir.path()).arg("ctl");
        if !args.contains(&"--socket") {
            cmd.arg("--socket").arg(&self.socket);
        }
        let out = cmd.args(args).output().await.expect("run diem ctl");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Everything it logged so far.
    pub fn logs(&self) -> String {
        self.logs.lock().expect("logs").join("\n")
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) {
        self.signal(rustix::process::Signal::TERM);
    }

    /// Sends `signal` (SIGKILL, SIGSTOP, SIGCONT, …).
    pub fn signal(&self, signal: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_raw(self.pid() as i32).expect("pid");
        rustix::process::kill_process(pid, signal).expect("kill");
    }

    /// Waits for the process to exit; returns its exit code.
    pub async fn wait_exit(&mut self, within: Duration) -> i32 {
        let deadline = Instant::now() + within;
        let child = self.child.as_mut().expect("running");
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                panic!("diem did not exit within {within:?}; log:\n{}", self.logs());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        for pid in self.successors.lock().map(|p| p.clone()).unwrap_or_default() {
            if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if self.own_schema {
            drop_schema_blocking(self.schema.clone());
        }
    }
}

/// The node at `path` in a `tree` reply (panics if absent).
pub fn tree_node<'a>(tree: &'a Value, path: &str) -> &'a Value {
    fn find<'a>(n: &'a Value, path: &str) -> Option<&'a Value> {
        if n["path"] == path {
            return Some(n);
        }
        n["children"].as_array()?.iter().find_map(|c| find(c, path))
    }
    find(&tree["tree"], path).unwrap_or_else(|| panic!("no {path} in {tree}"))
}

/// Runs `diem ARGS` to completion in `dir` with only `env` set; returns
/// (exit code, stdout, stderr).
pub async fn run_diem(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_diem"))
        .env_clear()
        .envs(env.iter().copied())
        .current_dir(dir)
        .args(args)
        .output()
        .await
        .expect("run diem");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Restarts of the node at `path` and of everything below it, in a `tree`
/// reply.
pub fn restarts_under(tree: &Value, path: &str) -> u64 {
    fn sum(n: &Value) -> u64 {
        n["restarts"].as_u64().unwrap_or(0) + n["children"].as_array().map_or(0, |c| c.iter().map(sum).sum())
    }
    let node = tree_node(tree, path);
    sum(node) - node["restarts"].as_u64().unwrap_or(0)
}

impl TestServer {
    /// Waits until the worker pool has `n` requests in flight (admitted,
    /// not yet answered).
    pub async fn wait_in_flight(&self, n: u64) {
        eventually(
            Duration::from_secs(10),
            &format!("{n} requests in flight"),
            || async {
                let stats = self.ctl(serde_json::json!({"cmd": "stats"})).await;
                (stats["workers"]["in_flight"].as_u64() >= Some(n)).then_some(())
            },
        )
        .await
    }

    /// Waits until the node has answered at least `n` requests.
    pub async fn wait_answered(&self, n: u64) {
        eventually(
            Duration::from_secs(10),
            &format!("{n} requests answered"),
            || async {
                let stats = self.ctl(serde_json::json!({"cmd": "stats"})).await;
                let answered: u64 = stats["requests"]
                    .as_object()
                    .map(|routes| {
                        routes
                            .values()
                            .filter_map(|s| s.as_object())
                            .flat_map(|s| s.values().filter_map(Value::as_u64))
                            .sum()
                    })
                    .unwrap_or(0);
                (answered >= n).then_some(())
            },
        )
        .await
    }
}

/// Polls `check` every 10 ms until it returns `Some`, or panics after `within`
/// with `what`.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("{what}: not within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
