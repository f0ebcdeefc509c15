//! An in-process HTTP load generator (hyper, keep-alive, loopback) that
//! records the outcome of every request.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// One request's outcome.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// When it was sent, from the start of the run.
    pub at: Duration,
    /// How long it took.
    pub latency: Duration,
    /// Its status, or `None` when it failed without one.
    pub status: Option<u16>,
    /// The error, when it failed without a status.
    pub error: Option<String>,
    /// Its sequence number.
    pub seq: u64,
}

/// How to load.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Stop after this long.
    pub duration: Duration,
    /// Stop after this many requests (whichever comes first).
    pub max_requests: u64,
    /// Path and query.
    pub path: String,
    /// Extra headers; `{seq}` in a value is replaced by the sequence number,
    /// `{ip}` by an IPv4 address distinct for each request.
    pub headers: Vec<(String, String)>,
    /// Per-request timeout.
    pub timeout: Duration,
    /// A new connection for every request (no keep-alive).
    pub fresh_connections: bool,
}

impl Plan {
    /// `concurrency` clients on `path` for `duration`.
    pub fn new(path: &str, concurrency: usize, duration: Duration) -> Plan {
        Plan {
            concurrency,
            duration,
            max_requests: u64::MAX,
            path: path.to_owned(),
            headers: Vec::new(),
            timeout: Duration::from_secs(10),
            fresh_connections: false,
        }
    }

    /// The same, with a new connection for every request.
    pub fn fresh(mut self) -> Plan {
        self.fresh_connections = true;
        self
    }
}

/// A load run in the background.
pub struct Load {
    started: Instant,
    stop: Arc<AtomicBool>,
    completed: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<Vec<Outcome>>,
}

impl Load {
    /// Starts loading `addr`.
    pub fn start(addr: SocketAddr, plan: Plan) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let completed = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let task = tokio::spawn(run(addr, plan, started, stop.clone(), completed.clone()));
        Load {
            started,
            stop,
            completed,
            task,
        }
    }

    /// The instant every [`Outcome::at`] counts from.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// How many requests have completed so far (answered or failed).
    pub fn completed(&self) -> u64 {
        self.completed.load(Ordering::Acquire)
    }

    /// Stops and returns every outcome, in order of sending.
    pub async fn finish(self) -> Vec<Outcome> {
        self.stop.store(true, Ordering::Release);
        let mut v = self.task.await.expect("load task");
        v.sort_by_key(|o| o.seq);
        v
    }

    /// Waits for the plan to complete and returns every outcome.
    pub async fn join(self) -> Vec<Outcome> {
        let mut v = self.task.await.expect("load task");
        v.sort_by_key(|o| o.seq);
        v
    }
}

async fn run(
    addr: SocketAddr,
    plan: Plan,
    start: Instant,
    stop: Arc<AtomicBool>,
    completed: Arc<AtomicU64>,
) -> Vec<Outcome> {
    let idle = if plan.fresh_connections {
        0
    } else {
        plan.concurrency
    };
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(idle)
        .build_http();
    let seq = Arc::new(AtomicU64::new(0));
    let plan = Arc::new(plan);
    let mut tasks = Vec::new();
    for _ in 0..plan.concurrency {
        let (client, seq, plan, stop) = (client.clone(), seq.clone(), plan.clone(), stop.clone());
        let completed = completed.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            while !stop.load(Ordering::Acquire) && start.elapsed() < plan.duration {
                let n = seq.fetch_add(1, Ordering::AcqRel);
                if n >= plan.max_requests {
                    break;
                }
                let mut req = hyper::Request::builder().uri(format!("http://{addr}{}", plan.path));
                for (k, v) in &plan.headers {
                    let ip = format!("10.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255);
                    req = req.header(
                        k.as_str(),
                        v.replace("{seq}", &n.to_string()).replace("{ip}", &ip),
                    );
                }
                let req = req.body(Empty::new()).expect("request");
                let at = start.elapsed();
                let sent = Instant::now();
                let result = tokio::time::timeout(plan.timeout, async {
                    let resp = client.request(req).await.map_err(|e| format!("{e:?}"))?;
                    let status = resp.status().as_u16();
                    resp.into_body().collect().await.map_err(|e| format!("{e:?}"))?;
                    Ok::<_, String>(status)
                })
                .await;
                let (status, error) = match result {
                    Ok(Ok(s)) => (Some(s), None),
                    Ok(Err(e)) => (None, Some(e)),
                    Err(_) => (None, Some("timeout".to_owned())),
                };
                completed.fetch_add(1, Ordering::AcqRel);
                out.push(Outcome {
                    at,
                    latency: sent.elapsed(),
                    status,
                    error,
                    seq: n,
                });
            }
            out
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("load worker"));
    }
    all
}

/// Counts outcomes by status (`None`: transport error).
pub fn by_status(outcomes: &[Outcome]) -> std::collections::BTreeMap<Option<u16>, usize> {
    let mut m = std::collections::BTreeMap::new();
    for o in outcomes {
        *m.entry(o.status).or_insert(0) += 1;
    }
    m
}
