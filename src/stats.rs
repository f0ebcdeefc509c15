//! `stats`: the node's figures in one typed report — requests, latencies,
//! limiter, PostgreSQL pool, corpus, workers, restarts, memory — read
//! straight from the metric atomics and the node's published state.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use supervisors::snapshot;

use crate::api::route::Route;
use crate::limiter::backend::Backend;
use crate::limiter::gcra::Params;
use crate::metrics::{quantile, MethodClass, LATENCY_BUCKETS};
use crate::metrics_actor::sample_gauges;
use crate::node::Node;
use crate::store::corpus_shared::CorpusStatus;
use crate::store::pg_shared::PgStatus;

/// Latency of one route (all methods) or of all routes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct LatencySummary {
    /// Requests measured.
    pub count: u64,
    /// Median, ms.
    pub p50_ms: Option<f64>,
    /// 90th percentile, ms.
    pub p90_ms: Option<f64>,
    /// 99th percentile, ms.
    pub p99_ms: Option<f64>,
    /// 99.9th percentile, ms.
    pub p999_ms: Option<f64>,
}

impl LatencySummary {
    /// The summary of per-bucket `counts`.
    pub(crate) fn of(counts: &[u64]) -> Self {
        let ms = |q| quantile(counts, q).map(|s| (s * 1e6).round() / 1e3);
        Self {
            count: counts.iter().sum(),
            p50_ms: ms(0.5),
            p90_ms: ms(0.9),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
        }
    }
}

/// The limiter's section.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct LimiterStats {
    /// Whether requests are limited.
    pub enabled: bool,
    /// Which store decides now.
    pub backend: Backend,
    /// The GCRA parameters.
    pub params: Params,
    /// Decisions by `<backend>_<allowed|limited>`.
    pub decisions: BTreeMap<String, u64>,
    /// Client keys the local fallback remembers.
    pub local_keys: usize,
    /// Refused clients the deny cache answers for.
    #[serde(default)]
    pub deny_cache_keys: usize,
    /// Refusals answered from the deny cache so far.
    #[serde(default)]
    pub cached_refusals: u64,
    /// The Redis the limiter decides in.
    #[serde(default)]
    pub redis: RedisStats,
}

/// The limiter's Redis: what it is and how it is reached.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct RedisStats {
    /// `standalone`, `cluster` or `sentinel`, as `redis.url` says.
    pub topology: String,
    /// Whether the connections speak TLS (`rediss`).
    pub tls: bool,
    /// Whether requests are decided on the hot-path connection
    /// (`limiter/pipe.rs`), not through fred (only while Redis decides).
    pub hot_path: bool,
    /// Why Redis does not decide now, when it does not.
    pub error: Option<String>,
    /// `redis.wait_replicas`: replicas each decision waits for (0: none).
    #[serde(default)]
    pub wait_replicas: u32,
    /// `WAIT`s that came back with fewer replicas (their batches decided
    /// locally), so far.
    #[serde(default)]
    pub wait_short: u64,
    /// Primaries the Sentinels switched to (`+switch-master`) that the
    /// limiter moved to, so far.
    #[serde(default)]
    pub sentinel_switches: u64,
}

/// The worker pool's section.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct WorkerStats {
    /// Workers running.
    pub size: usize,
    /// Workers wanted.
    pub desired: usize,
    /// Requests admitted and not answered.
    pub in_flight: usize,
    /// The admission bound.
    pub capacity: usize,
}

/// The HTTP listener's section.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct HttpStats {
    /// Connections open.
    pub connections_open: usize,
}

/// The admin listener's section: what outsiders hold open there.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct AdminStats {
    /// Browser sessions logged in.
    pub sessions: usize,
    /// Event streams open (of this node and of other members).
    pub viewers: usize,
    /// Other members' views polled now (one each, however many watch).
    pub remote_feeds: usize,
}

/// The memory section.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct MemoryStats {
    /// Resident set size.
    pub rss_bytes: Option<u64>,
}

/// The whole report.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Stats {
    /// Milliseconds since the node started.
    pub uptime_ms: u64,
    /// Requests answered, by route and status.
    pub requests: BTreeMap<String, BTreeMap<String, u64>>,
    /// Latency by route, and `all`.
    pub latency: BTreeMap<String, LatencySummary>,
    /// The limiter.
    pub limiter: LimiterStats,
    /// The PostgreSQL pool.
    pub postgres: PgStatus,
    /// The corpus.
    pub corpus: CorpusStatus,
    /// The worker pool.
    pub workers: WorkerStats,
    /// The HTTP listener.
    pub http: HttpStats,
    /// The admin listener.
    #[serde(default)]
    pub admin: AdminStats,
    /// Restarts of each child, by path.
    pub restarts: BTreeMap<String, u64>,
    /// Memory.
    pub memory: MemoryStats,
}

/// The node's report now.
pub(crate) async fn collect(node: &Node) -> Stats {
    sample_gauges(node);
    let mut requests: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for (route, status, n) in node.metrics.request_counts() {
        requests
            .entry(route.as_str().to_owned())
            .or_default()
            .insert(status.to_owned(), n);
    }
    let mut latency = BTreeMap::new();
    let mut all = [0u64; LATENCY_BUCKETS.len() + 1];
    for route in Route::ALL {
        let mut counts = [0u64; LATENCY_BUCKETS.len() + 1];
        for method in MethodClass::ALL {
            for (sum, n) in counts
                .iter_mut()
                .zip(node.metrics.latency(route, method).counts())
            {
                *sum += n;
            }
        }
        for (sum, n) in all.iter_mut().zip(counts) {
            *sum += n;
        }
        if counts.iter().any(|&n| n > 0) {
            latency.insert(route.as_str().to_owned(), LatencySummary::of(&counts));
        }
    }
    if all.iter().any(|&n| n > 0) {
        latency.insert("all".to_owned(), LatencySummary::of(&all));
    }
    let decisions = Backend::ALL
        .iter()
        .flat_map(|&b| {
            [false, true].map(|limited| {
                let result = if limited { "limited" } else { "allowed" };
                (
                    format!("{}_{result}", b.as_str()),
                    node.metrics.decisions(b, limited),
                )
            })
        })
        .collect();
    let restarts = match node.root() {
        Some(root) => match snapshot(root).await {
            Ok(tree) => tree.iter().map(|n| (n.path.clone(), n.restarts)).collect(),
            Err(_) => BTreeMap::new(),
        },
        None => BTreeMap::new(),
    };
    let settings = node.limiter.settings();
    Stats {
        uptime_ms: u64::try_from(node.started_at.elapsed().as_millis()).unwrap_or(u64::MAX),
        requests,
        latency,
        limiter: LimiterStats {
            enabled: settings.enabled,
            backend: node.limiter.backend(),
            params: settings.params,
            decisions,
            local_keys: node.limiter.local().len(),
            deny_cache_keys: node.limiter.deny_cache().len(),
            cached_refusals: node.metrics.cached_refusals(),
            redis: node.with_config(|c| RedisStats {
                topology: c.redis.topology().to_owned(),
                tls: c.redis.uses_tls(),
                hot_path: node.limiter.hot_path(),
                error: node.limiter.why_local().map(|e| e.to_string()),
                wait_replicas: c.redis.wait_replicas,
                wait_short: node.limiter.wait_short(),
                sentinel_switches: node.limiter.switches(),
            }),
        },
        postgres: node.pg.status(),
        corpus: node.corpus.status(),
        workers: WorkerStats {
            size: node.workers.size(),
            desired: node.workers.target().get(),
            in_flight: node.workers.in_flight(),
            capacity: node.workers.capacity(),
        },
        http: HttpStats {
            connections_open: node.http.open_connections(),
        },
        admin: AdminStats {
            sessions: node.admin.sessions(),
            viewers: node.observer.watching(),
            remote_feeds: node.observer.remote_feeds(),
        },
        restarts,
        memory: MemoryStats {
            rss_bytes: crate::metrics::rss_bytes(),
        },
    }
}

/// The sums of several nodes' `stats`: requests by route and status,
/// limiter decisions, workers, open connections, memory.
pub(crate) fn totals<'a>(nodes: impl Iterator<Item = &'a serde_json::Value>) -> serde_json::Value {
    use serde_json::{json, Value};
    let mut requests: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut decisions: BTreeMap<String, u64> = BTreeMap::new();
    let (mut workers, mut in_flight, mut connections, mut rss, mut count) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let num = |v: &Value| v.as_u64().unwrap_or(0);
    for s in nodes {
        count += 1;
        if let Some(routes) = s["requests"].as_object() {
            for (route, statuses) in routes {
                for (status, n) in statuses.as_object().into_iter().flatten() {
                    *requests
                        .entry(route.clone())
                        .or_default()
                        .entry(status.clone())
                        .or_default() += num(n);
                }
            }
        }
        for (k, n) in s["limiter"]["decisions"].as_object().into_iter().flatten() {
            *decisions.entry(k.clone()).or_default() += num(n);
        }
        workers += num(&s["workers"]["size"]);
        in_flight += num(&s["workers"]["in_flight"]);
        connections += num(&s["http"]["connections_open"]);
        rss += num(&s["memory"]["rss_bytes"]);
    }
    json!({
        "nodes": count,
        "requests": requests,
        "limiter_decisions": decisions,
        "workers": workers,
        "in_flight": in_flight,
        "connections_open": connections,
        "rss_bytes": rss,
    })
}
