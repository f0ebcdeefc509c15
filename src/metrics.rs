//! Metrics: what the node counts, readable in process (`ctl stats`, the
//! observer) and rendered in the Prometheus text format (`/metrics`) by
//! prometheus-client.
//!
//! The request path never looks a metric up: [`Metrics`] holds one atomic
//! counter per (route, status) and one fixed-bucket histogram per (route,
//! method), so recording a request is two atomic adds and a bucket search.
//! The same atomics are what `stats` reads and what `/metrics` renders —
//! one set of numbers, never parsed back from text. Gauges (pool state,
//! worker count, RSS, …) are sampled by the metrics actor every second and
//! again when `/metrics` is rendered.
//!
//! ```
//! use std::time::Duration;
//! use diem::api::route::Route;
//! use diem::metrics::{Metrics, MethodClass};
//!
//! let m = Metrics::new("node-1");
//! m.request(Route::Hitokoto, MethodClass::Get, 200, Duration::from_micros(300));
//! assert_eq!(m.requests(Route::Hitokoto, 200), 1);
//! let text = m.render();
//! assert!(text.contains("diem_http_requests_total{route=\"hitokoto\",status=\"200\"} 1"));
//! assert!(text.contains("diem_build_info{version="));
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::api::route::Route;
use crate::limiter::backend::Backend;

/// Latency bucket bounds, seconds.
pub const LATENCY_BUCKETS: [f64; 17] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Every reason of `diem_http_rejected_total`, registered at 0 from the
/// start.
pub const REJECTION_REASONS: [&str; 9] = [
    "malformed",
    "too_large",
    "http2_preface",
    "header_timeout",
    "connection_limit",
    "writes_disabled",
    "auth_failed",
    "auth_throttled",
    "admin_connection_limit",
];

/// Status codes with their own counter; others count as `other`.
pub const STATUSES: [u16; 16] = [
    200, 201, 204, 400, 401, 403, 404, 405, 408, 413, 429, 431, 500, 503, 504, 0,
];

fn status_label(code: u16) -> &'static str {
    match code {
        200 => "200",
        201 => "201",
        204 => "204",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        408 => "408",
        413 => "413",
        429 => "429",
        431 => "431",
        500 => "500",
        503 => "503",
        504 => "504",
        _ => "other",
    }
}

fn status_index(code: u16) -> usize {
    STATUSES
        .iter()
        .position(|&c| c == code)
        .unwrap_or(STATUSES.len() - 1)
}

/// The methods latency is kept apart by: a read is never slowed, in the
/// figures, by a write waiting for its body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MethodClass {
    /// `GET` and `HEAD`.
    Get,
    /// `POST`.
    Post,
    /// `DELETE`.
    Delete,
    /// Anything else (`OPTIONS`, unknown methods).
    Other,
}

impl MethodClass {
    /// Every class, in label order.
    pub const ALL: [MethodClass; 4] = [Self::Get, Self::Post, Self::Delete, Self::Other];

    /// The class of a method.
    pub fn of(method: &hyper::Method) -> Self {
        match *method {
            hyper::Method::GET | hyper::Method::HEAD => Self::Get,
            hyper::Method::POST => Self::Post,
            hyper::Method::DELETE => Self::Delete,
            _ => Self::Other,
        }
    }

    /// The `method` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Delete => "DELETE",
            Self::Other => "other",
        }
    }
}

/// A fixed-bucket latency histogram: one atomic per bucket, no lock.
#[derive(Debug, Default)]
pub struct Latency {
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_ns: AtomicU64,
}

impl Latency {
    /// Records one observation.
    pub fn record(&self, latency: Duration) {
        let secs = latency.as_secs_f64();
        let i = LATENCY_BUCKETS.partition_point(|&le| le < secs);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Observations per bucket (not cumulative), the last one `+Inf`.
    pub fn counts(&self) -> [u64; LATENCY_BUCKETS.len() + 1] {
        std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed))
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.counts().iter().sum()
    }

    /// The sum of observations, seconds.
    pub fn sum_secs(&self) -> f64 {
        self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9
    }
}

/// Bucket bounds paired with `counts`, `+Inf` last (what an encoder and
/// [`quantile`] take).
pub fn with_bounds(counts: &[u64]) -> Vec<(f64, u64)> {
    LATENCY_BUCKETS
        .iter()
        .copied()
        .chain(std::iter::once(f64::INFINITY))
        .zip(counts.iter().copied())
        .collect()
}

/// The `q` quantile (0..1) of per-bucket `counts` (not cumulative),
/// interpolated linearly inside the bucket as Prometheus'
/// `histogram_quantile` does. `None` without observations.
pub fn quantile(counts: &[u64], q: f64) -> Option<f64> {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let (mut below, mut lower) = (0.0, 0.0);
    for (le, n) in with_bounds(counts) {
        let upto = below + n as f64;
        if upto >= rank {
            if le.is_infinite() {
                return Some(lower);
            }
            let frac = if n > 0 { (rank - below) / n as f64 } else { 0.0 };
            return Some(lower + (le - lower) * frac);
        }
        (below, lower) = (upto, le);
    }
    Some(lower)
}

/// The request counters and latencies, encoded by hand into the registry
/// (one [`Collector`]) so that they stay plain atomics.
#[derive(Debug)]
struct RequestMetrics {
    /// `[route][status]`.
    counts: Vec<[Counter; STATUSES.len()]>,
    /// `[route][method]`.
    latency: Vec<[Latency; 4]>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteStatus {
    route: &'static str,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteMethod {
    route: &'static str,
    method: &'static str,
}

impl Collector for RequestMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(
            "diem_http_requests",
            "HTTP requests answered, by route and status",
            None,
            MetricType::Counter,
        )?;
        for (route, counts) in Route::ALL.iter().zip(&self.counts) {
            for (&status, counter) in STATUSES.iter().zip(counts) {
                let labels = RouteStatus {
                    route: route.as_str(),
                    status: status_label(status),
                };
                ConstCounter::new(counter.get()).encode(family.encode_family(&labels)?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "diem_http_request_duration_seconds",
            "Time from a request's head to its response, by route and method",
            None,
            MetricType::Histogram,
        )?;
        for (route, by_method) in Route::ALL.iter().zip(&self.latency) {
            for (method, h) in MethodClass::ALL.iter().zip(by_method) {
                let counts = h.counts();
                let count: u64 = counts.iter().sum();
                if count == 0 && !(*route == Route::Hitokoto && *method == MethodClass::Get) {
                    continue;
                }
                let labels = RouteMethod {
                    route: route.as_str(),
                    method: method.as_str(),
                };
                family.encode_family(&labels)?.encode_histogram::<RouteMethod>(
                    h.sum_secs(),
                    count,
                    &with_bounds(&counts),
                    None,
                )?;
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    backend: &'static str,
    result: &'static str,
}

/// Labels of `diem_supervisor_restarts_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RestartLabels {
    /// The child's path (dynamic instances under their pool, `diem/workers/*`).
    pub path: String,
    /// The class of the exit that caused it ([`supervisors::ExitReason::kind`]).
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: &'static str,
}

/// Gauges sampled from the node's state.
#[derive(Debug, Default)]
pub struct Gauges {
    /// `diem_postgres_up`.
    pub postgres_up: Gauge,
    /// `diem_postgres_pool_connections{state}`.
    pub postgres_pool: Family<StateLabel, Gauge>,
    /// `diem_workers`.
    pub workers: Gauge,
    /// `diem_workers_desired`.
    pub workers_desired: Gauge,
    /// `diem_requests_in_flight`.
    pub in_flight: Gauge,
    /// `diem_http_connections_open`.
    pub connections_open: Gauge,
    /// `diem_corpus_sentences`.
    pub corpus_sentences: Gauge,
    /// `diem_corpus_source{source}`.
    pub corpus_source: Family<SourceLabel, Gauge>,
    /// `diem_limiter_backend{backend}`.
    pub limiter_backend: Family<BackendLabel, Gauge>,
    /// `diem_redis_info{topology,tls,hot_path}`: 1 for the Redis as it is
    /// now (a label set that no longer holds is set to 0).
    pub redis_info: Family<RedisInfoLabel, Gauge>,
    /// `diem_corpus_rows_read`: rows the corpus actor read from PostgreSQL.
    pub corpus_rows_read: Gauge,
    /// `diem_redis_wait_short_total`: `WAIT`s that came back with fewer
    /// replicas than `redis.wait_replicas` (brought up to the limiter's
    /// count when sampled).
    pub redis_wait_short: Counter,
    /// `diem_limiter_local_keys`.
    pub limiter_local_keys: Gauge,
    /// `diem_limiter_deny_cache_keys`.
    pub limiter_deny_cache_keys: Gauge,
    /// `process_resident_memory_bytes`.
    pub rss_bytes: Gauge,
    /// `diem_uptime_seconds`.
    pub uptime_seconds: Gauge,
}

/// A `state` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    /// The state.
    pub state: &'static str,
}

/// A `source` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabel {
    /// The source.
    pub source: &'static str,
}

/// A `backend` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BackendLabel {
    /// The backend.
    pub backend: &'static str,
}

/// The labels of `diem_redis_info`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RedisInfoLabel {
    /// `standalone`, `sentinel` or `cluster`.
    pub topology: &'static str,
    /// `true` for a `rediss` URL.
    pub tls: &'static str,
    /// `true` while requests are decided on the hot-path connections.
    pub hot_path: &'static str,
}

/// An `actor` label: a path of the tree (bounded: a pool's worker is
/// named by its instance id, not by request).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActorLabel {
    /// The actor's path.
    pub actor: String,
}

/// The node's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: std::sync::Arc<RequestMetrics>,
    decisions: [Counter; 4],
    cached_refusals: Counter,
    restarts: Family<RestartLabels, Counter>,
    rejected: Family<Reason, Counter>,
    actor_stuck: Family<ActorLabel, Counter>,
    actor_mailbox: Family<ActorLabel, Counter>,
    /// The sampled gauges.
    pub gauges: std::sync::Arc<Gauges>,
}

impl Metrics {
    /// Every metric of a node named `node`, registered at zero.
    pub fn new(node: &str) -> Self {
        let mut registry = Registry::default();
        let requests = std::sync::Arc::new(RequestMetrics {
            counts: Route::ALL.iter().map(|_| Default::default()).collect(),
            latency: Route::ALL.iter().map(|_| Default::default()).collect(),
        });
        registry.register_collector(Box::new(requests.clone()));
        let decisions_family = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "diem_limiter_decisions",
            "Rate-limit decisions, by the store that decided and the result",
            decisions_family.clone(),
        );
        let decision = |backend: Backend, result| {
            decisions_family
                .get_or_create(&DecisionLabels {
                    backend: backend.as_str(),
                    result,
                })
                .clone()
        };
        let decisions = [
            decision(Backend::Redis, "allowed"),
            decision(Backend::Redis, "limited"),
            decision(Backend::Local, "allowed"),
            decision(Backend::Local, "limited"),
        ];
        let restarts = Family::<RestartLabels, Counter>::default();
        registry.register(
            "diem_supervisor_restarts",
            "Restarts of each child by its supervisor, by the class of the exit that caused them",
            restarts.clone(),
        );
        let rejected = Family::<Reason, Counter>::default();
        registry.register(
            "diem_http_rejected",
            "Requests and connections refused before reaching a handler (malformed, too large, \
             HTTP/2 preface, header timeout, connection limit, failed authentication, the admin \
             listener's connection limit)",
            rejected.clone(),
        );
        // Every reason from the start, at 0: an alert on a rate needs the
        // series before its first increment.
        for reason in REJECTION_REASONS {
            let _ = rejected.get_or_create(&Reason { reason });
        }
        registry.register(
            "diem_build",
            "The running build",
            Info::new(vec![
                ("version".to_owned(), env!("CARGO_PKG_VERSION").to_owned()),
                ("node".to_owned(), node.to_owned()),
            ]),
        );
        let gauges = std::sync::Arc::new(Gauges::default());
        let g = &gauges;
        for (name, help, metric) in [
            (
                "diem_postgres_up",
                "Whether PostgreSQL answers (1) or not (0)",
                &g.postgres_up,
            ),
            ("diem_workers", "Request workers running", &g.workers),
            (
                "diem_workers_desired",
                "Request workers wanted",
                &g.workers_desired,
            ),
            (
                "diem_requests_in_flight",
                "Requests admitted and not yet answered",
                &g.in_flight,
            ),
            (
                "diem_http_connections_open",
                "HTTP connections open",
                &g.connections_open,
            ),
            (
                "diem_corpus_sentences",
                "Sentences in the served corpus",
                &g.corpus_sentences,
            ),
            (
                "diem_limiter_local_keys",
                "Client keys the local limiter remembers",
                &g.limiter_local_keys,
            ),
            (
                "diem_limiter_deny_cache_keys",
                "Refused clients the deny cache answers for until their retry time",
                &g.limiter_deny_cache_keys,
            ),
            (
                "process_resident_memory_bytes",
                "Resident memory of the process",
                &g.rss_bytes,
            ),
            (
                "diem_uptime_seconds",
                "Seconds since the node started",
                &g.uptime_seconds,
            ),
        ] {
            registry.register(name, help, metric.clone());
        }
        registry.register(
            "diem_postgres_pool_connections",
            "PostgreSQL pool connections, by state (max, open, idle, waiting)",
            g.postgres_pool.clone(),
        );
        registry.register(
            "diem_corpus_source",
            "Where the served corpus comes from (1 for the current source)",
            g.corpus_source.clone(),
        );
        registry.register(
            "diem_limiter_backend",
            "Which store decides rate limits now (1 for the current one)",
            g.limiter_backend.clone(),
        );
        registry.register(
            "diem_redis_info",
            "The limiter's Redis: topology (standalone, sentinel, cluster), TLS, and whether requests are decided on the hot-path connections (1 for the current state)",
            g.redis_info.clone(),
        );
        registry.register(
            "diem_redis_wait_short",
            "WAITs that came back with fewer replicas than redis.wait_replicas (their batches decided locally)",
            g.redis_wait_short.clone(),
        );
        registry.register(
            "diem_corpus_rows_read",
            "Rows the corpus actor read from PostgreSQL (whole loads and notified rows)",
            g.corpus_rows_read.clone(),
        );
        let actor_stuck = Family::<ActorLabel, Counter>::default();
        registry.register(
            "diem_actor_stuck",
            "Handlers that ran longer than observer.stuck_after, per actor (a pool's worker by its instance id)",
            actor_stuck.clone(),
        );
        let actor_mailbox = Family::<ActorLabel, Counter>::default();
        registry.register(
            "diem_actor_mailbox_warnings",
            "Times an actor's mailbox grew over observer.mailbox_warn",
            actor_mailbox.clone(),
        );
        let cached_refusals = Counter::default();
        registry.register(
            "diem_limiter_cached_refusals",
            "Refusals answered from the deny cache (Redis refused the client earlier and its retry time has not come; also counted in diem_limiter_decisions as redis, limited)",
            cached_refusals.clone(),
        );
        Self {
            registry,
            requests,
            decisions,
            cached_refusals,
            restarts,
            rejected,
            actor_stuck,
            actor_mailbox,
            gauges,
        }
    }

    /// Counts a handler of the actor at `path` reported stuck.
    pub fn actor_stuck(&self, path: &str) {
        self.actor_stuck
            .get_or_create(&ActorLabel {
                actor: path.to_owned(),
            })
            .inc();
    }

    /// Counts a mailbox of the actor at `path` reported over the warning.
    pub fn actor_mailbox_warning(&self, path: &str) {
        self.actor_mailbox
            .get_or_create(&ActorLabel {
                actor: path.to_owned(),
            })
            .inc();
    }

    /// Counts one answered request.
    pub fn request(&self, route: Route, method: MethodClass, status: u16, latency: Duration) {
        let r = route.index();
        self.requests.counts[r][status_index(status)].inc();
        self.requests.latency[r][method as usize].record(latency);
    }

    /// Requests of `route` answered with `status` so far.
    pub fn requests(&self, route: Route, status: u16) -> u64 {
        self.requests.counts[route.index()][status_index(status)].get()
    }

    /// Every (route, status) count that is not zero.
    pub fn request_counts(&self) -> Vec<(Route, &'static str, u64)> {
        let mut out = Vec::new();
        for (route, counts) in Route::ALL.iter().zip(&self.requests.counts) {
            for (&status, c) in STATUSES.iter().zip(counts) {
                if c.get() > 0 {
                    out.push((*route, status_label(status), c.get()));
                }
            }
        }
        out
    }

    /// The latency histogram of `route` and `method`.
    pub fn latency(&self, route: Route, method: MethodClass) -> &Latency {
        &self.requests.latency[route.index()][method as usize]
    }

    /// Counts one limiter decision.
    pub fn decision(&self, backend: Backend, limited: bool) {
        self.decisions[decision_index(backend, limited)].inc();
    }

    /// Counts one refusal answered from the deny cache.
    pub fn cached_refusal(&self) {
        self.cached_refusals.inc();
    }

    /// Refusals answered from the deny cache so far.
    pub fn cached_refusals(&self) -> u64 {
        self.cached_refusals.get()
    }

    /// Decisions so far by `backend` and result.
    pub fn decisions(&self, backend: Backend, limited: bool) -> u64 {
        self.decisions[decision_index(backend, limited)].get()
    }

    /// Counts one restart of the child at `path` for an exit of class
    /// `reason`.
    pub fn restart(&self, path: &str, reason: &str) {
        self.restarts.get_or_create(&restart_labels(path, reason)).inc();
    }

    /// Makes the restart counters of `path` exist at zero (for the exit
    /// classes alerting cares about), so that `increase()` works from the
    /// first restart.
    pub fn declare_child(&self, path: &str) {
        for reason in ["error", "injected"] {
            let _ = self.restarts.get_or_create(&restart_labels(path, reason));
        }
    }

    /// Restarts of `path` so far, all reasons.
    pub fn restarts_of(&self, path: &str) -> u64 {
        let label = restart_label(path);
        ["error", "injected", "killed", "shutdown", "normal"]
            .iter()
            .filter_map(|reason| {
                self.restarts.get(&RestartLabels {
                    path: label.clone(),
                    reason: (*reason).to_owned(),
                })
            })
            .map(|c| c.get())
            .sum()
    }

    /// One connection refused by the admin listener (it holds 128 at most).
    pub fn admin_refused(&self) {
        self.rejected("admin_connection_limit");
    }

    /// Counts a request or connection refused before a handler, by reason
    /// (one of [`REJECTION_REASONS`]).
    pub fn rejected(&self, reason: &'static str) {
        self.rejected.get_or_create(&Reason { reason }).inc();
    }

    /// The Prometheus text of every metric.
    pub fn render(&self) -> String {
        let mut text = String::new();
        if prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry).is_err() {
            tracing::error!("rendering the metrics failed");
        }
        text
    }
}

fn decision_index(backend: Backend, limited: bool) -> usize {
    let base = match backend {
        Backend::Redis => 0,
        Backend::Local => 2,
    };
    base + usize::from(limited)
}

/// Dynamic instances count under their pool: `diem/workers/3` →
/// `diem/workers/*`.
fn restart_label(path: &str) -> String {
    match path.rsplit_once('/') {
        Some((parent, id)) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{parent}/*")
        }
        _ => path.to_owned(),
    }
}

fn restart_labels(path: &str, reason: &str) -> RestartLabels {
    RestartLabels {
        path: restart_label(path),
        reason: reason.to_owned(),
    }
}

/// Resident set size of this process in bytes (Linux), if readable.
pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate() {
        let mut counts = [0u64; LATENCY_BUCKETS.len() + 1];
        // 50 at or below 0.1 s, 50 in (0.1, 0.25].
        counts[LATENCY_BUCKETS.iter().position(|&b| b == 0.1).unwrap()] = 50;
        counts[LATENCY_BUCKETS.iter().position(|&b| b == 0.25).unwrap()] = 50;
        assert_eq!(quantile(&counts, 0.5), Some(0.1));
        let q = quantile(&counts, 0.75).unwrap();
        assert!((q - 0.175).abs() < 1e-9, "{q}");
        assert_eq!(quantile(&[0; 18], 0.5), None);
    }

    #[test]
    fn histograms_bucket_by_upper_bound() {
        let h = Latency::default();
        h.record(Duration::from_micros(50));
        h.record(Duration::from_micros(51));
        h.record(Duration::from_secs(60));
        let c = h.counts();
        assert_eq!((c[0], c[1], c[LATENCY_BUCKETS.len()]), (1, 1, 1));
        assert_eq!(h.count(), 3);
    }

    #[test]
    fn every_family_has_help_and_restarts_start_at_zero() {
        let m = Metrics::new("n");
        m.declare_child("diem/workers/1");
        m.restart("diem/workers/2", "injected");
        m.rejected("malformed");
        let text = m.render();
        for line in text.lines().filter(|l| l.starts_with("# TYPE")) {
            let name = line.split_whitespace().nth(2).unwrap();
            assert!(text.contains(&format!("# HELP {name} ")), "no HELP for {name}");
        }
        assert!(
            text.contains("diem_supervisor_restarts_total{path=\"diem/workers/*\",reason=\"error\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("diem_supervisor_restarts_total{path=\"diem/workers/*\",reason=\"injected\"} 1")
        );
        assert_eq!(m.restarts_of("diem/workers/9"), 1);
    }
}
