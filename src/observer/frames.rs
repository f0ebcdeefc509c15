//! The frames of the observer's event stream (`text/event-stream`): what
//! each one holds, and how it is written.
//!
//! * `snapshot`, once per connection: the node, the members, the tree, the
//!   service figures, the plot history and the event log.
//! * `tree`, after supervision or operator events (at most every 100 ms):
//!   the tree, the events since the last frame, and the actors in trouble
//!   (a stuck handler is an event: the page marks it at once).
//! * `stats`, every second: the service figures, one plot point
//!   (requests per second, p50 and p99 over that second) and every
//!   actor's load (`ctl top`'s rows).
//!
//! The `snapshot`'s `load` also holds each actor's message rates over the
//! last five minutes (the load sampler keeps them from the start, watched
//! or not).

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde_json::{json, Value};

use crate::api::route::Route;
use crate::metrics::{quantile, MethodClass, LATENCY_BUCKETS};
use crate::node::Node;
use crate::observer::shared::{LoggedEvent, Point};

/// The counters a point is the difference of.
#[derive(Clone, Debug)]
pub(crate) struct Totals {
    at: std::time::Instant,
    buckets: [u64; LATENCY_BUCKETS.len() + 1],
}

impl Totals {
    /// The node's counters now.
    pub(crate) fn now(node: &Node) -> Self {
        let mut buckets = [0u64; LATENCY_BUCKETS.len() + 1];
        for route in Route::ALL {
            for method in MethodClass::ALL {
                for (sum, n) in buckets
                    .iter_mut()
                    .zip(node.metrics.latency(route, method).counts())
                {
                    *sum += n;
                }
            }
        }
        Self {
            at: std::time::Instant::now(),
            buckets,
        }
    }

    /// The point between `earlier` and this.
    pub(crate) fn since(&self, earlier: &Totals) -> Point {
        let delta: Vec<u64> = self
            .buckets
            .iter()
            .zip(&earlier.buckets)
            .map(|(a, b)| a.saturating_sub(*b))
            .collect();
        let n: u64 = delta.iter().sum();
        let secs = self.at.duration_since(earlier.at).as_secs_f64().max(1e-3);
        let ms = |q| quantile(&delta, q).map(|s| (s * 1e6).round() / 1e3);
        Point {
            t: now_ms(),
            rps: (n as f64 / secs * 10.0).round() / 10.0,
            p50_ms: ms(0.5),
            p99_ms: ms(0.99),
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// One `text/event-stream` frame: `event: NAME`, `data: JSON`.
pub(crate) fn frame(name: &str, data: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

/// This node and the members it knows (none without the cluster).
pub(crate) fn members(node: &Node) -> Value {
    if !node.with_config(|c| c.cluster.enabled) {
        return json!([]);
    }
    let view = node.cluster.view(&node.config(), node.started_at.elapsed());
    serde_json::to_value(view).unwrap_or(Value::Null)
}

/// The tree with the pool's admission figures, as `ctl tree` shows it.
pub(crate) async fn tree(node: &Node) -> Value {
    match node.tree().await {
        Ok(tree) => serde_json::to_value(tree).unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

/// The service figures, as `ctl stats` reports them.
pub(crate) async fn stats(node: &Node) -> Value {
    serde_json::to_value(crate::stats::collect(node).await).unwrap_or(Value::Null)
}

/// Every actor's load: the load sampler's rows and the trouble now, and
/// with `history` each actor's message rates over the last five minutes.
pub(crate) fn load(node: &Node, history: bool) -> Value {
    let rows = node.load.rows();
    let mut v = json!({
        "actors": &*rows,
        "trouble": &*node.load.trouble(),
    });
    if history {
        let rates: serde_json::Map<String, Value> = node
            .load
            .with_history(|h| {
                rows.iter()
                    .filter_map(|r| h.rates(&r.path).map(|rates| (r.path.clone(), json!(rates))))
                    .collect()
            })
            .unwrap_or_default();
        v["history"] = Value::Object(rates);
    }
    v
}

/// The `snapshot` frame.
pub(crate) async fn snapshot(node: &Node, history: &[Point], events: &[LoggedEvent]) -> Bytes {
    let config = node.config();
    let data = json!({
        "node": config.node.name,
        "member": config.cluster.enabled.then(|| config.cluster.member_name(&config.node)),
        "version": env!("CARGO_PKG_VERSION"),
        "pid": std::process::id(),
        "members": members(node),
        "tree": tree(node).await,
        "stats": stats(node).await,
        "history": history,
        "events": events,
        "load": load(node, true),
    });
    frame("snapshot", &data)
}

/// The `tree` frame.
pub(crate) async fn tree_frame(node: &Node, events: &[LoggedEvent]) -> Bytes {
    let data = json!({
        "tree": tree(node).await,
        "members": members(node),
        "events": events,
        "trouble": &*node.load.trouble(),
    });
    frame("tree", &data)
}

/// The `stats` frame.
pub(crate) async fn stats_frame(node: &Node, point: Point) -> Bytes {
    let data = json!({
        "point": point,
        "stats": stats(node).await,
        "members": members(node),
        "load": load(node, false),
    });
    frame("stats", &data)
}
