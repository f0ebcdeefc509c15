//! Metrics: counters and histograms recorded with the `metrics` facade and
//! exported in the Prometheus text format by `metrics-exporter-prometheus`.
//!
//! The request path never looks a metric up by name: [`Metrics`] resolves
//! each (route, status) counter and each route's latency histogram once and
//! keeps the handles, so recording is an atomic add. Gauges (pool state,
//! worker count, RSS, …) are sampled when `/metrics` is rendered. `diem ctl
//! stats` reads the same rendered text back ([`parse`]), so the two never
//! disagree.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets, seconds.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// The routes requests are counted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    /// `/hitokoto/v2/` (GET, HEAD, POST, OPTIONS).
    Hitokoto,
    /// `/hitokoto/v2/{uuid}` (DELETE).
    Sentence,
    /// `/healthz`.
    Healthz,
    /// `/readyz`.
    Readyz,
    /// `/metrics`.
    Metrics,
    /// Anything else.
    Other,
}

impl Route {
    const ALL: [Route; 6] = [
        Route::Hitokoto,
        Route::Sentence,
        Route::Healthz,
        Route::Readyz,
        Route::Metrics,
        Route::Other,
    ];

    /// The `route` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Route::Hitokoto => "hitokoto",
            Route::Sentence => "sentence",
            Route::Healthz => "healthz",
            Route::Readyz => "readyz",
            Route::Metrics => "metrics",
            Route::Other => "other",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Status codes with their own counter; others count as `other`.
const STATUSES: [u16; 16] = [
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

/// The node's metric handles.
#[derive(Debug)]
pub struct Metrics {
    handle: PrometheusHandle,
    requests: Vec<Vec<Counter>>,
    latency: Vec<Histogram>,
    decisions: [Counter; 4],
}

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("diem_http_request_duration_seconds".into()),
                    LATENCY_BUCKETS,
                )
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Only the first node of a process installs the global recorder
            // (tests may build several nodes in one process).
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

impl Metrics {
    /// Registers every request metric.
    pub fn new() -> Self {
        let handle = handle();
        let requests = Route::ALL
            .iter()
            .map(|r| {
                STATUSES
                    .iter()
                    .map(|&s| {
                        metrics::counter!("diem_http_requests_total", "route" => r.as_str(), "status" => status_label(s))
                    })
                    .collect()
            })
            .collect();
        let latency = Route::ALL
            .iter()
            .map(|r| metrics::histogram!("diem_http_request_duration_seconds", "route" => r.as_str()))
            .collect();
        let decision = |backend: &'static str, result: &'static str| metrics::counter!("diem_limiter_decisions_total", "backend" => backend, "result" => result);
        Self {
            handle,
            requests,
            latency,
            decisions: [
                decision("redis", "allowed"),
                decision("redis", "limited"),
                decision("local", "allowed"),
                decision("local", "limited"),
            ],
        }
    }

    /// Counts one answered request.
    pub fn request(&self, route: Route, status: u16, latency: Duration) {
        let s = STATUSES
            .iter()
            .position(|&c| c == status)
            .unwrap_or(STATUSES.len() - 1);
        if let Some(c) = self.requests.get(route.index()).and_then(|v| v.get(s)) {
            c.increment(1);
        }
        if let Some(h) = self.latency.get(route.index()) {
            h.record(latency.as_secs_f64());
        }
    }

    /// Counts one limiter decision.
    pub fn decision(&self, backend: crate::limiter::Backend, limited: bool) {
        let i = match backend {
            crate::limiter::Backend::Redis => 0,
            crate::limiter::Backend::Local => 2,
        } + usize::from(limited);
        self.decisions[i].increment(1);
    }

    /// Counts one restart of the child at `path` (dynamic instances are
    /// counted under their pool, `diem/workers/*`).
    pub fn restart(&self, path: &str) {
        let label = match path.rsplit_once('/') {
            Some((parent, id)) if id.bytes().all(|b| b.is_ascii_digit()) => format!("{parent}/*"),
            _ => path.to_owned(),
        };
        metrics::counter!("diem_supervisor_restarts_total", "path" => label).increment(1);
    }

    /// Drains histogram samples into their buckets (run periodically).
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }

    /// The Prometheus text of every metric.
    pub fn render(&self) -> String {
        self.handle.render()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Sets a gauge (sampled values, at render time).
pub fn gauge(name: &'static str, labels: &[(&'static str, String)], value: f64) {
    let labels: Vec<metrics::Label> = labels
        .iter()
        .map(|(k, v)| metrics::Label::new(*k, v.clone()))
        .collect();
    metrics::gauge!(name, labels).set(value);
}

/// One sample of the Prometheus text format.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name.
    pub name: String,
    /// Labels, by name.
    pub labels: BTreeMap<String, String>,
    /// Value.
    pub value: f64,
}

/// Parses the Prometheus text format (the subset the exporter writes).
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|line| {
            let (head, value) = line.rsplit_once(' ')?;
            let value: f64 = value.parse().ok()?;
            let (name, labels) = match head.split_once('{') {
                Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}')?)),
                None => (head, BTreeMap::new()),
            };
            Some(Sample {
                name: name.to_owned(),
                labels,
                value,
            })
        })
        .collect()
}

fn parse_labels(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = s;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        value.push(if n == 'n' { '\n' } else { n });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.insert(key.trim_start_matches(',').to_owned(), value);
        rest = &after[end..];
    }
    out
}

/// The `q` quantile (0..1) from cumulative histogram buckets `(le, count)`,
/// interpolated linearly inside the bucket, as Prometheus'
/// `histogram_quantile` does.
pub fn quantile(buckets: &[(f64, f64)], q: f64) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut prev = (0.0, 0.0);
    for &(le, count) in buckets {
        if count >= rank {
            if le.is_infinite() {
                return Some(prev.0);
            }
            let width = count - prev.1;
            let frac = if width > 0.0 { (rank - prev.1) / width } else { 0.0 };
            return Some(prev.0 + (le - prev.0) * frac);
        }
        prev = (le, count);
    }
    Some(prev.0)
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
    fn parses_the_text_format() {
        let text = "# TYPE x counter\nx{route=\"a\",status=\"200\"} 3\ny 1.5\nz{p=\"a\\\"b\"} 2\n";
        let s = parse(text);
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].labels["status"], "200");
        assert_eq!(s[1].value, 1.5);
        assert_eq!(s[2].labels["p"], "a\"b");
    }

    #[test]
    fn quantiles_interpolate() {
        let b = [(0.1, 50.0), (0.2, 100.0), (f64::INFINITY, 100.0)];
        assert_eq!(quantile(&b, 0.5), Some(0.1));
        let q = quantile(&b, 0.75).unwrap();
        assert!((q - 0.15).abs() < 1e-9);
    }
}
